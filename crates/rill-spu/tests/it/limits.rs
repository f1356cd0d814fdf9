use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::ApiVersionsRequest;

use rill_test_support::*;

#[tokio::test]
async fn frames_over_the_limit_close_the_connection_and_the_spu_goes_on() {
    let spu = TestSpu::start_with(|c| c.max_frame_bytes = 64 * 1024).await;
    for size in [64 * 1024 + 1, i32::MAX, -1, -100_000] {
        let mut c = spu.client().await;
        let mut frame = BytesMut::new();
        frame.put_i32(size);
        c.send_raw(&frame).await;
        assert!(c.is_closed().await, "size {size}");
    }
    let mut c = spu.client().await;
    assert_eq!(c.send(ApiVersionsRequest::default(), 3).await.error_code, 0);
    spu.stop().await;
}

#[tokio::test]
async fn garbage_and_truncated_requests_close_only_their_connection() {
    let spu = TestSpu::start().await;
    let cases: Vec<Vec<u8>> = vec![
        vec![0, 0, 0, 2, 0, 18],                   // frame shorter than a header
        vec![0, 0, 0, 8, 0, 3, 0, 12, 0, 0, 0, 1], // Metadata v12 cut off after the header
        (0..200u8).map(|i| i.wrapping_mul(37)).collect(), // noise
    ];
    for bytes in cases {
        let mut c = spu.client().await;
        c.send_raw(&bytes).await;
        // Either closed, or waiting for the rest of a frame that never comes;
        // the SPU must stay up in both cases.
        drop(c);
    }
    let mut c = spu.client().await;
    assert_eq!(c.send(ApiVersionsRequest::default(), 3).await.error_code, 0);
    spu.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused() {
    let spu = TestSpu::start_with(|c| c.max_connections = 2).await;
    let mut a = spu.client().await;
    let mut b = spu.client().await;
    assert_eq!(a.send(ApiVersionsRequest::default(), 3).await.error_code, 0);
    assert_eq!(b.send(ApiVersionsRequest::default(), 3).await.error_code, 0);
    let mut third = spu.client().await;
    assert!(third.is_closed().await);
    drop(a);
    // A slot frees up once a connection goes.
    let mut fourth = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut c = spu.client().await;
        let mut frame = BytesMut::new();
        frame.put_i32(10);
        frame.put_i16(18);
        frame.put_i16(0);
        frame.put_i32(5);
        frame.put_i16(-1);
        c.send_raw(&frame).await;
        if c.read_frame().await.is_some() {
            fourth = Some(c);
            break;
        }
    }
    assert!(fourth.is_some(), "a freed slot is reused");
    spu.stop().await;
}

#[tokio::test]
async fn a_lying_array_count_closes_the_connection_without_harm() {
    // Metadata v1 whose topic array claims 2^31 - 1 entries in a 14-byte
    // frame: decoding must refuse it, not try to allocate for it.
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    let mut frame = BytesMut::new();
    frame.put_i32(14);
    frame.put_i16(3);
    frame.put_i16(1);
    frame.put_i32(1);
    frame.put_i16(-1);
    frame.put_i32(i32::MAX);
    c.send_raw(&frame).await;
    assert!(c.is_closed().await);
    let mut c = spu.client().await;
    assert_eq!(c.send(ApiVersionsRequest::default(), 3).await.error_code, 0);
    spu.stop().await;
}

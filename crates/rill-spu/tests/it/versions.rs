use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::Decodable;
use rill_spu::SUPPORTED_APIS;

use rill_test_support::*;

#[tokio::test]
async fn api_versions_advertise_exactly_what_is_implemented() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    for version in 0..=3 {
        let resp = c.send(ApiVersionsRequest::default(), version).await;
        assert_eq!(resp.error_code, 0);
        let got: Vec<(i16, i16, i16)> = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(got, SUPPORTED_APIS.to_vec(), "v{version}");
    }
    spu.stop().await;
}

#[tokio::test]
async fn an_unsupported_api_versions_version_gets_a_v0_answer() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    // ApiVersions v99, correlation id 42, null client id.
    let mut frame = BytesMut::new();
    frame.put_i32(10);
    frame.put_i16(18);
    frame.put_i16(99);
    frame.put_i32(42);
    frame.put_i16(-1);
    c.send_raw(&frame).await;
    let mut body = c.read_frame().await.unwrap();
    let header = ResponseHeader::decode(&mut body, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
    let resp = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(resp.error_code, ResponseError::UnsupportedVersion.code());
    assert!(resp
        .api_keys
        .iter()
        .any(|k| k.api_key == 18 && k.max_version == 3));
    spu.stop().await;
}

#[tokio::test]
async fn other_unsupported_versions_and_unknown_keys_close_the_connection() {
    let spu = TestSpu::start().await;
    for (key, version) in [(0i16, 2i16), (1, 3), (3, 13), (9999, 0), (-1, 0)] {
        let mut c = spu.client().await;
        let mut frame = BytesMut::new();
        frame.put_i32(10);
        frame.put_i16(key);
        frame.put_i16(version);
        frame.put_i32(1);
        frame.put_i16(-1);
        c.send_raw(&frame).await;
        assert!(c.is_closed().await, "key {key} v{version}");
    }
    // The SPU still serves.
    let mut c = spu.client().await;
    let resp = c.send(ApiVersionsRequest::default(), 3).await;
    assert_eq!(resp.error_code, 0);
    spu.stop().await;
}

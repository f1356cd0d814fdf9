//! The connection timeouts, on in-memory pipes (`tokio::io::duplex`,
//! served by `SpuHandle::serve_stream`) with paused time: a request frame
//! trickled in (slow loris) must arrive whole within `request_timeout` of its
//! first byte, and a connection silent between requests is closed after
//! `connection_idle_timeout`. Paused time makes the bounds exact: the tests
//! check the close happens at the deadline, and not a millisecond before,
//! with the real defaults (30 s, 10 min) and no real waiting.
//!
//! Only the SPU's listener uses real TCP here (it binds 127.0.0.1:0 and is
//! never connected to): a real socket wait could let paused time jump.

use std::time::Duration;

use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::Decodable;
use rill_test_support::*;
use tokio::io::{duplex, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Kafka's and the SPU's defaults.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
const MS: Duration = Duration::from_millis(1);

async fn spu(max_connections: usize) -> TestSpu {
    TestSpu::builder()
        .request_timeout(REQUEST_TIMEOUT)
        .connection_idle_timeout(IDLE_TIMEOUT)
        .max_connections(max_connections)
        .start()
        .await
}

/// A client on one end of a pipe whose other end the SPU serves; the task
/// ends when the SPU closes the connection.
fn connect(spu: &TestSpu) -> (KafkaClient<DuplexStream>, JoinHandle<()>) {
    let (client, server) = duplex(64 * 1024);
    (KafkaClient::over(client), spu.serve_stream(server))
}

/// An ApiVersions v3 request frame, size prefix included.
fn request(c: &mut KafkaClient<DuplexStream>) -> Vec<u8> {
    c.encode(&ApiVersionsRequest::default(), 3).1.to_vec()
}

/// Writes `bytes` one at a time: the first at once, the last exactly
/// `last_at` later, the others spread between them in whole milliseconds
/// (the timer's resolution). Stops quietly if the SPU closed the pipe.
async fn trickle(c: &mut KafkaClient<DuplexStream>, bytes: &[u8], last_at: Duration) {
    let start = Instant::now();
    let gaps = bytes.len() as u64 - 1;
    let gap = Duration::from_millis(last_at.as_millis() as u64 / gaps);
    for (i, b) in bytes.iter().enumerate() {
        if i + 1 == bytes.len() {
            tokio::time::sleep_until(start + last_at).await;
        } else if i > 0 {
            tokio::time::sleep(gap).await;
        }
        if c.stream().write_all(&[*b]).await.is_err() {
            return;
        }
    }
}

/// Reads the answer to an ApiVersions request and checks it is one.
async fn assert_answered(c: &mut KafkaClient<DuplexStream>, what: &str) {
    let mut body = c
        .read_frame()
        .await
        .unwrap_or_else(|| panic!("{what}: closed instead of answering"));
    ResponseHeader::decode(&mut body, 0).unwrap();
    let resp = ApiVersionsResponse::decode(&mut body, 3).unwrap();
    assert_eq!(resp.error_code, 0, "{what}");
}

/// Waits for the SPU to close the connection; returns when, after `since`.
async fn closed_after(task: JoinHandle<()>, since: Instant) -> Duration {
    task.await.expect("the connection task ends cleanly");
    since.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_frame_trickled_in_just_within_the_request_timeout_is_answered() {
    let spu = spu(4).await;
    let (mut c, task) = connect(&spu);
    let frame = request(&mut c);
    // The last byte lands 1 ms before the deadline set by the first.
    let start = Instant::now();
    trickle(&mut c, &frame, REQUEST_TIMEOUT - MS).await;
    assert_eq!(start.elapsed(), REQUEST_TIMEOUT - MS);
    assert_answered(&mut c, "trickled within the timeout").await;
    // The deadline was for that frame only: the next starts afresh.
    let next = request(&mut c);
    trickle(&mut c, &next, REQUEST_TIMEOUT - MS).await;
    assert_answered(&mut c, "a second trickled frame").await;
    assert!(!task.is_finished());
    spu.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_frame_trickled_in_past_the_request_timeout_is_cut_off_at_the_deadline() {
    let spu = spu(1).await;
    let (mut c, task) = connect(&spu);
    // The only slot is taken: a second connection is refused.
    let (_other, refused) = duplex(1024);
    assert!(spu.handle.as_ref().unwrap().serve_stream(refused).is_none());

    let frame = request(&mut c);
    // Every byte but the last by the deadline; the last 1 ms after it.
    let start = Instant::now();
    let cut = tokio::select! {
        biased;
        after = closed_after(task, start) => after,
        _ = trickle(&mut c, &frame, REQUEST_TIMEOUT + MS) => panic!("the whole frame went in"),
    };
    assert_eq!(
        cut, REQUEST_TIMEOUT,
        "cut off at the deadline of the first byte"
    );
    assert!(c.read_frame().await.is_none(), "closed, unanswered");

    // Its slot was given back.
    let (mut d, _task) = connect(&spu);
    let frame = request(&mut d);
    d.send_raw(&frame).await;
    assert_answered(&mut d, "after the slow loris was cut off").await;
    spu.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_silent_just_within_the_idle_timeout_stays_open() {
    let spu = spu(4).await;
    let (mut c, task) = connect(&spu);
    // Silent from the start, then silent after each answer.
    for round in 0..3 {
        tokio::time::sleep(IDLE_TIMEOUT - MS).await;
        let frame = request(&mut c);
        c.send_raw(&frame).await;
        assert_answered(&mut c, &format!("round {round}")).await;
    }
    assert!(!task.is_finished());
    spu.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_silent_past_the_idle_timeout_is_closed_and_its_slot_freed() {
    let spu = spu(1).await;
    let (mut c, task) = connect(&spu);
    let frame = request(&mut c);
    c.send_raw(&frame).await;
    assert_answered(&mut c, "before going silent").await;
    let silent_since = Instant::now();
    assert_eq!(
        closed_after(task, silent_since).await,
        IDLE_TIMEOUT,
        "closed at the idle deadline"
    );
    assert!(c.is_closed().await);

    let (mut d, _task) = connect(&spu);
    let frame = request(&mut d);
    d.send_raw(&frame).await;
    assert_answered(&mut d, "in the freed slot").await;
    spu.stop().await;
}

#[tokio::test(start_paused = true)]
async fn slow_loris_connections_do_not_stop_others() {
    // 150 connections trickle a request a byte at a time, well within the
    // request timeout; meanwhile every fresh client is answered at once
    // (no time passes: nothing waits on the trickling connections).
    let spu = spu(200).await;
    let mut slow: Vec<_> = (0..150).map(|_| connect(&spu)).collect();
    let frame = request(&mut slow[0].0);
    let start = Instant::now();
    for sent in 0..frame.len() - 1 {
        for (c, _) in slow.iter_mut() {
            c.stream().write_all(&frame[sent..sent + 1]).await.unwrap();
        }
        let (mut fresh, _task) = connect(&spu);
        let asked = Instant::now();
        let req = request(&mut fresh);
        fresh.send_raw(&req).await;
        assert_answered(&mut fresh, "beside the slow loris").await;
        assert_eq!(asked.elapsed(), Duration::ZERO, "served late");
        tokio::time::sleep(Duration::from_millis(20 + (sent as u64 * 7) % 30)).await;
    }
    assert!(start.elapsed() < REQUEST_TIMEOUT);
    // The last byte completes every trickled request: each is answered.
    for (c, task) in slow.iter_mut() {
        c.stream()
            .write_all(&frame[frame.len() - 1..])
            .await
            .unwrap();
        assert_answered(c, "a completed slow request").await;
        assert!(!task.is_finished());
    }
    spu.stop().await;
}

//! Hostile input over real TCP: random bytes, truncated frames, bad length
//! prefixes, unknown APIs, bad CRCs, lying counts, overflowing varints,
//! oversized batches and connection storms (slow-loris and idle
//! connections are in `timeouts.rs`, on pipes with paused time). After each case the
//! SPU still serves a real produce and fetch, the records stored before it
//! read back byte for byte, and the test process (the SPU runs in it) stays
//! within a memory bound.
//!
//! Each case asserts its outcome: a Kafka error code where the frame is well
//! formed, the connection closed by the SPU where it is not.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, FetchRequest, ProduceRequest, ProduceResponse,
    RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use rill_protocol::Compression;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use rill_test_support::*;

/// Bound on the test process's peak resident memory (the SPU runs in it).
/// Generous: the point is that a 2 GiB length prefix or a thousand
/// connections do not turn into gigabytes.
const MAX_RSS_KIB: u64 = 400 * 1024;

/// The frame limit these SPUs run with.
const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// A small deterministic generator (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// `(VmRSS, VmHWM)` of this process in KiB.
pub fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn produce_req(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1500)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

fn fetch_req(topic: &str, offset: i64) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(i32::MAX)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

fn code(resp: &ProduceResponse) -> i16 {
    resp.responses[0].partition_responses[0].error_code
}

/// A whole request frame, size prefix included.
fn frame_of<R: Request>(req: &R, version: i16, cid: i32) -> BytesMut {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(cid)
        .with_client_id(Some(StrBytes::from_static_str("hostile")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, R::header_version(version))
        .unwrap();
    req.encode(&mut body, version).unwrap();
    prefixed(&body)
}

fn prefixed(body: &[u8]) -> BytesMut {
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(body);
    frame
}

/// Rewrites a batch's length and CRC after its bytes were changed, so only
/// the change itself is wrong.
fn reseal(batch: &mut [u8]) {
    let len = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Reads until the SPU closes the connection. `Some(bytes received)` if it
/// closed within `within`, `None` if it was still open.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<usize> {
    let mut got = 0;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got += n,
        }
    }
}

/// Sends `bytes` on a fresh connection and asserts the SPU closes it
/// without answering.
async fn assert_closed_unanswered(addr: std::net::SocketAddr, bytes: &[u8], what: &str) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let got = closed_within(&mut s, Duration::from_secs(5)).await;
    assert_eq!(
        got,
        Some(0),
        "{what}: expected the SPU to close, unanswered"
    );
}

/// An SPU with a topic `safe` holding known records.
struct Fixture {
    spu: TestSpu,
    stored: Vec<(i64, Vec<u8>)>,
}

impl Fixture {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tune: impl FnOnce(&mut rill_spu::SpuConfig)) -> Self {
        let spu = TestSpu::start_with(|c| {
            c.max_frame_bytes = MAX_FRAME_BYTES;
            tune(c);
        })
        .await;
        let mut c = spu.client().await;
        create_topic(&mut c, "safe", 1, &[("max.message.bytes", "10000")]).await;
        let mut fx = Self {
            spu,
            stored: Vec::new(),
        };
        for i in 0..3 {
            fx.produce_ok(&mut c, &format!("before-{i}")).await;
        }
        fx
    }

    async fn produce_ok(&mut self, c: &mut KafkaClient, value: &str) {
        let b = batch(&[value.as_bytes()], 1000, Compression::Lz4);
        let resp = c.send(produce_req("safe", 0, b), 9).await;
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "{:?}", p.error_message);
        assert_eq!(
            p.base_offset,
            self.stored.len() as i64,
            "offsets contiguous"
        );
        self.stored.push((p.base_offset, value.as_bytes().to_vec()));
    }

    /// The SPU serves a real produce and fetch, everything stored reads back
    /// intact, and memory is within the bound. Prints the figures.
    async fn assert_healthy(&mut self, case: &str) {
        let mut c = self.spu.client().await;
        self.produce_ok(&mut c, &format!("after-{case}")).await;
        let resp = c.send(fetch_req("safe", 0), 12).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        assert_eq!(p.high_watermark, self.stored.len() as i64);
        assert_eq!(
            values(p.records.as_ref().unwrap()),
            self.stored,
            "{case}: stored data changed"
        );
        let (rss, hwm) = memory_kib();
        println!(
            "hostile {case}: SPU serves, {} records intact, VmRSS {} MiB, VmHWM {} MiB",
            self.stored.len(),
            rss / 1024,
            hwm / 1024
        );
        assert!(
            hwm < MAX_RSS_KIB,
            "{case}: peak RSS {hwm} KiB over {MAX_RSS_KIB}"
        );
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.spu.addr
    }

    async fn stop(self) {
        self.spu.stop().await;
    }
}

#[tokio::test]
async fn random_bytes_close_the_connection() {
    let mut fx = Fixture::start().await;
    let mut rng = Rng(0x5eed_0001);
    for i in 0..300 {
        let len = 1 + rng.below(4096) as usize;
        let mut bytes = rng.bytes(len);
        if i % 2 == 1 {
            // A size prefix that fits, so the noise reaches the request
            // decoders rather than the frame check.
            let n = (len - 4.min(len)) as i32;
            if len >= 4 {
                bytes[..4].copy_from_slice(&n.to_be_bytes());
            }
        }
        let mut s = TcpStream::connect(fx.addr()).await.unwrap();
        let _ = s.write_all(&bytes).await;
        // No more bytes are coming: whatever the SPU made of them, it must
        // end the connection (an answer first is allowed: noise can be a
        // valid request, though it practically never is).
        let _ = s.shutdown().await;
        assert!(
            closed_within(&mut s, Duration::from_secs(5))
                .await
                .is_some(),
            "input {i} ({len} bytes) left the connection open"
        );
    }
    fx.assert_healthy("random-bytes").await;
    fx.stop().await;
}

#[tokio::test]
async fn truncated_frames_close_the_connection_unanswered() {
    let mut fx = Fixture::start().await;
    let records = batch(&[b"never stored", b"at all"], 5, Compression::None);
    for version in [3, 9] {
        let whole = frame_of(&produce_req("safe", 0, records.clone()), version, 7);
        let body = &whole[4..];
        for cut in (0..body.len()).step_by(3) {
            // Framed correctly, but the request inside ends early.
            assert_closed_unanswered(
                fx.addr(),
                &prefixed(&body[..cut]),
                &format!("v{version} cut at {cut}"),
            )
            .await;
        }
        // The prefix promises more than arrives, then the client goes.
        let mut s = TcpStream::connect(fx.addr()).await.unwrap();
        s.write_all(&whole[..whole.len() / 2]).await.unwrap();
        s.shutdown().await.unwrap();
        assert_eq!(closed_within(&mut s, Duration::from_secs(5)).await, Some(0));
    }
    fx.assert_healthy("truncated").await;
    fx.stop().await;
}

#[tokio::test]
async fn huge_and_negative_length_prefixes_close_before_allocating() {
    let mut fx = Fixture::start().await;
    let (rss_before, _) = memory_kib();
    for size in [
        MAX_FRAME_BYTES as i32 + 1,
        64 << 20,
        i32::MAX,
        -1,
        -4,
        i32::MIN,
    ] {
        let mut s = TcpStream::connect(fx.addr()).await.unwrap();
        s.write_all(&size.to_be_bytes()).await.unwrap();
        assert_eq!(
            closed_within(&mut s, Duration::from_secs(5)).await,
            Some(0),
            "size prefix {size}"
        );
    }
    // A prefix within the bound, then nothing: the SPU waits for the frame
    // but has not allocated it in resident memory.
    let mut waiting = Vec::new();
    for _ in 0..100 {
        let mut s = TcpStream::connect(fx.addr()).await.unwrap();
        s.write_all(&(MAX_FRAME_BYTES as i32).to_be_bytes())
            .await
            .unwrap();
        waiting.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (rss_after, _) = memory_kib();
    println!(
        "100 connections each promising a {} KiB frame: VmRSS {} -> {} MiB",
        MAX_FRAME_BYTES / 1024,
        rss_before / 1024,
        rss_after / 1024
    );
    assert!(
        rss_after < rss_before + 50 * 1024,
        "promised frames became resident memory: {rss_before} -> {rss_after} KiB"
    );
    drop(waiting);
    fx.assert_healthy("length-prefixes").await;
    fx.stop().await;
}

#[tokio::test]
async fn unknown_api_keys_and_versions() {
    let mut fx = Fixture::start().await;
    let header = |key: i16, version: i16| {
        let mut b = BytesMut::new();
        b.put_i16(key);
        b.put_i16(version);
        b.put_i32(42);
        b.put_i16(-1); // null client id
        b
    };
    for (key, version) in [
        (9999, 0),
        (-1, 0),
        (i16::MAX, 3),
        (10, 3), // FindCoordinator: a real Kafka API this SPU does not implement
        (11, 7), // JoinGroup
        (0, 2),  // Produce below the supported range
        (0, 99), // and above it
        (1, -1), // Fetch, negative version
        (3, 13), // Metadata above the range
    ] {
        assert_closed_unanswered(
            fx.addr(),
            &prefixed(&header(key, version)),
            &format!("API {key} v{version}"),
        )
        .await;
    }
    // An unsupported ApiVersions version is answered with a v0 body that
    // carries UNSUPPORTED_VERSION (35) and the supported list.
    let mut s = TcpStream::connect(fx.addr()).await.unwrap();
    s.write_all(&prefixed(&header(18, 99))).await.unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).await.unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).await.unwrap();
    let mut body = Bytes::from(body);
    assert_eq!(
        ResponseHeader::decode(&mut body, 0).unwrap().correlation_id,
        42
    );
    let resp = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(resp.error_code, ResponseError::UnsupportedVersion.code());
    assert!(resp.api_keys.iter().any(|k| k.api_key == 0));
    fx.assert_healthy("unknown-apis").await;
    fx.stop().await;
}

#[tokio::test]
async fn bad_crcs_lying_counts_and_overflowing_varints_get_corrupt_message() {
    let mut fx = Fixture::start().await;
    let mut c = fx.spu.client().await;
    let good = batch(&[b"one", b"two"], 9, Compression::None).to_vec();

    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for at in [17, 21, 30, 57, 61, good.len() - 1] {
        let mut b = good.clone();
        b[at] ^= 0x40;
        cases.push((format!("byte {at} flipped, CRC left"), b));
    }
    for count in [0, 1, 3, 1000, i32::MAX, -1, i32::MIN] {
        let mut b = good.clone();
        b[57..61].copy_from_slice(&count.to_be_bytes());
        reseal(&mut b);
        cases.push((format!("records_count {count}, CRC fixed"), b));
    }
    for delta in [0, 5, -1, i32::MAX] {
        let mut b = good.clone();
        b[23..27].copy_from_slice(&delta.to_be_bytes());
        reseal(&mut b);
        cases.push((format!("last_offset_delta {delta}, CRC fixed"), b));
    }
    // The first record's length varint, then its key length, made into
    // varints that never end or overflow 64 bits.
    for varint in [
        vec![0xff; 10],
        vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        vec![0x80; 20],
    ] {
        let mut b = good[..61].to_vec();
        b.extend_from_slice(&varint);
        reseal(&mut b);
        cases.push((format!("record length varint {varint:02x?}"), b));
        let mut b = good[..61].to_vec();
        // length 20, attributes 0, ts delta 0, offset delta 0, then the key.
        b.extend_from_slice(&[40, 0, 0, 0]);
        b.extend_from_slice(&varint);
        b.resize(61 + 21, 0);
        reseal(&mut b);
        cases.push((format!("key length varint {varint:02x?}"), b));
    }
    let mut b = good.clone();
    b[16] = 1; // magic 1
    reseal(&mut b);
    cases.push(("magic 1".into(), b));
    let mut b = good.clone();
    b.truncate(40);
    cases.push(("batch cut inside its header".into(), b));

    for (what, bytes) in cases {
        let resp = c.send(produce_req("safe", 0, Bytes::from(bytes)), 9).await;
        assert_eq!(
            code(&resp),
            ResponseError::CorruptMessage.code(),
            "{what}: expected CORRUPT_MESSAGE"
        );
    }
    fx.assert_healthy("corrupt-batches").await;
    fx.stop().await;
}

#[tokio::test]
async fn overflowing_varints_in_a_flexible_request_close_the_connection() {
    let fx = Fixture::start().await;
    // Metadata v12 (flexible): the topics array length is a compact varint.
    let mut body = BytesMut::new();
    body.put_i16(3);
    body.put_i16(12);
    body.put_i32(1);
    body.put_i16(-1); // client id
    body.put_u8(0); // header tagged fields
    let mut healthy = fx;
    for varint in [
        vec![0xffu8; 6],
        vec![0x80; 5],
        vec![0xff, 0xff, 0xff, 0xff, 0x7f],
    ] {
        let mut b = body.clone();
        b.extend_from_slice(&varint);
        assert_closed_unanswered(healthy.addr(), &prefixed(&b), &format!("{varint:02x?}")).await;
    }
    // Classic encodings: an array count and a string length claiming far
    // more than the frame holds.
    let mut classic = BytesMut::new();
    classic.put_i16(3);
    classic.put_i16(1);
    classic.put_i32(1);
    classic.put_i16(-1);
    let mut array = classic.clone();
    array.put_i32(i32::MAX);
    assert_closed_unanswered(healthy.addr(), &prefixed(&array), "array count i32::MAX").await;
    let mut string = classic;
    string.put_i32(1);
    string.put_i16(i16::MAX);
    string.put_slice(b"short");
    assert_closed_unanswered(healthy.addr(), &prefixed(&string), "string length i16::MAX").await;
    healthy.assert_healthy("varints").await;
    healthy.stop().await;
}

#[tokio::test]
async fn oversized_batches_and_frames() {
    let mut fx = Fixture::start().await;
    let mut c = fx.spu.client().await;
    // Over the topic's max.message.bytes (10000): MESSAGE_TOO_LARGE.
    let big = vec![b'x'; 20_000];
    let resp = c
        .send(
            produce_req("safe", 0, batch(&[&big], 1, Compression::None)),
            9,
        )
        .await;
    assert_eq!(code(&resp), ResponseError::MessageTooLarge.code());
    // A batch whose length field claims more than the request carries.
    let mut b = batch(&[b"short"], 1, Compression::None).to_vec();
    b[8..12].copy_from_slice(&(5_000_000i32).to_be_bytes());
    let resp = c.send(produce_req("safe", 0, Bytes::from(b)), 9).await;
    assert_eq!(
        code(&resp),
        ResponseError::CorruptMessage.code(),
        "length past the end: CORRUPT_MESSAGE"
    );
    // A request frame over the SPU's frame limit: closed before it is read.
    let huge = vec![b'y'; MAX_FRAME_BYTES + 10];
    let frame = frame_of(
        &produce_req("safe", 0, batch(&[&huge], 1, Compression::None)),
        9,
        1,
    );
    let mut s = TcpStream::connect(fx.addr()).await.unwrap();
    let _ = s.write_all(&frame).await;
    assert_eq!(closed_within(&mut s, Duration::from_secs(5)).await, Some(0));
    fx.assert_healthy("oversized").await;
    fx.stop().await;
}

#[tokio::test]
async fn thousands_of_connections_opened_and_dropped() {
    let mut fx = Fixture::start_with(|c| c.max_connections = 256).await;
    let rounds = 30;
    let per_round = 100;
    let mut rng = Rng(0x5eed_0003);
    for round in 0..rounds {
        let mut open = Vec::with_capacity(per_round);
        for _ in 0..per_round {
            open.push(TcpStream::connect(fx.addr()).await.unwrap());
        }
        for (i, s) in open.iter_mut().enumerate() {
            match (i + round) % 3 {
                // Some say nothing, some send half a frame, some a request
                // they do not wait for.
                0 => {}
                1 => {
                    let _ = s.write_all(&[0, 0, 0, 50, 0, 18]).await;
                }
                _ => {
                    let f = frame_of(&ApiVersionsRequest::default(), 3, i as i32);
                    let _ = s.write_all(&f).await;
                }
            }
        }
        if rng.below(2) == 0 {
            // Reset rather than close: linger 0 sends RST.
            for s in &open {
                let _ = s.set_zero_linger();
            }
        }
        drop(open);
    }
    // 3000 connections came and went through 256 slots: every slot must
    // have been given back, so a full set of new connections is served.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut clients = Vec::new();
    for _ in 0..200 {
        let mut c = None;
        for _ in 0..50 {
            let mut s = TcpStream::connect(fx.addr()).await.unwrap();
            s.write_all(&frame_of(&ApiVersionsRequest::default(), 3, 1))
                .await
                .unwrap();
            let mut size = [0u8; 4];
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut size)).await
            {
                c = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        clients.push(c.expect("a connection slot was never given back"));
    }
    println!(
        "{} connections opened and dropped, then 200 held at once",
        rounds * per_round
    );
    fx.assert_healthy("connection-storm").await;
    drop(clients);
    fx.stop().await;
}

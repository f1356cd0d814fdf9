use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    FetchRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest, ProduceResponse,
};
use rill_protocol::Compression;

use rill_test_support::*;

fn produce(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(1500)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

fn first(resp: &ProduceResponse) -> (i16, i64) {
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn fetch(
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: i32,
    wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(i32::MAX)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(max_bytes)])])
}

#[tokio::test]
async fn produce_then_fetch_every_codec_byte_for_byte() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    let mut next = 0;
    for (i, codec) in Compression::ALL.into_iter().enumerate() {
        let values: Vec<Vec<u8>> = (0..10)
            .map(|j| format!("{codec:?}-{j}").repeat(20).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        let sent = batch(&refs, 1000 * i as i64, codec);
        for version in [3, 9] {
            let (code, base) = first(&c.send(produce("t", 0, sent.clone(), -1), version).await);
            assert_eq!((code, base), (0, next), "{codec:?} v{version}");
            let resp = c.send(fetch("t", 0, next, 1 << 20, 0, 0), 12).await;
            let p = &resp.responses[0].partitions[0];
            assert_eq!(p.error_code, 0);
            assert_eq!(p.high_watermark, next + 10);
            let got = p.records.clone().unwrap();
            assert_eq!(got.len(), sent.len());
            assert_eq!(&got[8..], &sent[8..], "stored as it arrived");
            let got_values: Vec<Vec<u8>> = values_of(&got);
            assert_eq!(got_values, values);
            next += 10;
        }
    }
    // Fetch v4 (the oldest advertised) reads the same data.
    let resp = c.send(fetch("t", 0, 0, 1 << 30, 0, 0), 4).await;
    assert_eq!(
        values(resp.responses[0].partitions[0].records.as_ref().unwrap()).len() as i64,
        next
    );
    spu.stop().await;
}

fn values_of(records: &Bytes) -> Vec<Vec<u8>> {
    values(records).into_iter().map(|(_, v)| v).collect()
}

#[tokio::test]
async fn produce_errors_carry_kafka_codes_and_harm_nothing() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "t", 2, &[("max.message.bytes", "2000")]).await;
    create_topic(&mut c, "zstd-only", 1, &[("compression.type", "zstd")]).await;
    let good = batch(&[b"kept"], 1, Compression::None);
    assert_eq!(
        first(&c.send(produce("t", 0, good.clone(), 1), 9).await),
        (0, 0)
    );

    assert_eq!(
        first(&c.send(produce("missing", 0, good.clone(), 1), 9).await).0,
        ResponseError::UnknownTopicOrPartition.code(),
        "unknown topic"
    );
    assert_eq!(
        first(&c.send(produce("t", 7, good.clone(), 1), 9).await).0,
        ResponseError::UnknownTopicOrPartition.code(),
        "unknown partition"
    );
    let mut bad_crc = good.to_vec();
    *bad_crc.last_mut().unwrap() ^= 1;
    assert_eq!(
        first(&c.send(produce("t", 0, Bytes::from(bad_crc), 1), 9).await).0,
        ResponseError::CorruptMessage.code()
    );
    assert_eq!(
        first(
            &c.send(
                produce("t", 0, Bytes::from_static(b"garbage!garbage!"), 1),
                9
            )
            .await
        )
        .0,
        ResponseError::CorruptMessage.code()
    );
    let big = vec![7u8; 3000];
    let too_big = batch(&[&big], 1, Compression::None);
    assert_eq!(
        first(&c.send(produce("t", 0, too_big, 1), 9).await).0,
        ResponseError::MessageTooLarge.code()
    );
    assert_eq!(
        first(&c.send(produce("zstd-only", 0, good.clone(), 1), 9).await).0,
        ResponseError::InvalidRecord.code()
    );
    assert_eq!(
        first(
            &c.send(
                produce("zstd-only", 0, batch(&[b"z"], 1, Compression::Zstd), 1),
                9
            )
            .await
        ),
        (0, 0)
    );
    assert_eq!(
        first(&c.send(produce("t", 0, good.clone(), 5), 9).await).0,
        ResponseError::InvalidRequiredAcks.code()
    );

    let resp = c.send(fetch("t", 0, 0, 1 << 20, 0, 0), 12).await;
    assert_eq!(
        values(resp.responses[0].partitions[0].records.as_ref().unwrap()),
        vec![(0, b"kept".to_vec())]
    );
    assert_eq!(
        first(&c.send(produce("t", 0, good, 1), 9).await),
        (0, 1),
        "the next offset is unharmed"
    );
    spu.stop().await;
}

/// Produce requests sent back to back are admitted while earlier ones
/// wait for their answers (the connection pipelines them): the answers
/// still come in request order, the records are stored in request order,
/// and a request of another kind in between is answered after the
/// produces before it and before those after it.
#[tokio::test]
async fn pipelined_produces_are_answered_and_stored_in_order() {
    use kafka_protocol::messages::{MetadataResponse, ResponseHeader};
    use kafka_protocol::protocol::Decodable;

    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "pipe", 1, &[]).await;
    const PRODUCES: usize = 24;
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for i in 0..PRODUCES {
        if i == PRODUCES / 2 {
            let (cid, frame) = c.encode(&MetadataRequest::default().with_topics(None), 12);
            wire.extend_from_slice(&frame);
            expected.push((cid, None));
        }
        let records = batch(&[format!("v{i}").as_bytes()], 1, Compression::None);
        let (cid, frame) = c.encode(&produce("pipe", 0, records, 1), 9);
        wire.extend_from_slice(&frame);
        expected.push((cid, Some(i as i64)));
    }
    // All at once: the SPU has every request before the first answer.
    c.send_raw(&wire).await;
    for (cid, offset) in expected {
        let mut body = c.read_frame().await.expect("an answer");
        let version = if offset.is_some() { 9 } else { 12 };
        let header_version = if offset.is_some() {
            <ProduceResponse as kafka_protocol::protocol::HeaderVersion>::header_version(9)
        } else {
            <MetadataResponse as kafka_protocol::protocol::HeaderVersion>::header_version(12)
        };
        let header = ResponseHeader::decode(&mut body, header_version).unwrap();
        assert_eq!(header.correlation_id, cid, "answers in request order");
        match offset {
            Some(offset) => {
                let resp = ProduceResponse::decode(&mut body, version).unwrap();
                assert_eq!(first(&resp), (0, offset), "stored in request order");
            }
            None => {
                MetadataResponse::decode(&mut body, version).unwrap();
            }
        }
    }
    let resp = c.send(fetch("pipe", 0, 0, 1 << 20, 0, 0), 12).await;
    let stored = values(resp.responses[0].partitions[0].records.as_ref().unwrap());
    let want: Vec<(i64, Vec<u8>)> = (0..PRODUCES)
        .map(|i| (i as i64, format!("v{i}").into_bytes()))
        .collect();
    assert_eq!(stored, want);
    spu.stop().await;
}

/// Produce requests (v9, acks 1) of one batch each, for `topic`
/// partition 0, encoded back to back: the bytes and their correlation ids.
fn produce_frames<S>(
    c: &mut KafkaClient<S>,
    topic: &str,
    batches: impl IntoIterator<Item = Bytes>,
) -> (Vec<u8>, Vec<i32>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut wire = Vec::new();
    let mut cids = Vec::new();
    for records in batches {
        let (cid, frame) = c.encode(&produce(topic, 0, records, 1), 9);
        wire.extend_from_slice(&frame);
        cids.push(cid);
    }
    (wire, cids)
}

/// Reads one produce answer per correlation id, checking they come in that
/// order and that the i-th was stored at offset i.
async fn assert_produces_answered_in_order<S>(c: &mut KafkaClient<S>, cids: Vec<i32>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use kafka_protocol::messages::ResponseHeader;
    use kafka_protocol::protocol::Decodable;

    for (i, cid) in cids.into_iter().enumerate() {
        let mut body = c.read_frame().await.expect("an answer");
        let header_version =
            <ProduceResponse as kafka_protocol::protocol::HeaderVersion>::header_version(9);
        let header = ResponseHeader::decode(&mut body, header_version).unwrap();
        assert_eq!(header.correlation_id, cid, "answers in request order");
        let resp = ProduceResponse::decode(&mut body, 9).unwrap();
        assert_eq!(first(&resp), (0, i as i64), "stored in request order");
    }
}

/// The server's end of a pipe, counting the writes made to it.
struct CountedWrites {
    inner: tokio::io::DuplexStream,
    writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl tokio::io::AsyncRead for CountedWrites {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CountedWrites {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let done = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if done.is_ready() {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        done
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Produces that arrive together (read in one go) have their answers
/// written together: fewer writes than requests, each answer whole and in
/// order, every record stored.
#[tokio::test]
async fn answers_to_produces_read_together_leave_in_one_write() {
    let spu = TestSpu::start().await;
    let mut admin = spu.client().await;
    create_topic(&mut admin, "together", 1, &[]).await;
    let (client, server) = tokio::io::duplex(256 * 1024);
    let writes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let task = spu.serve_stream(CountedWrites {
        inner: server,
        writes: writes.clone(),
    });
    let mut c = KafkaClient::over(client);
    const PRODUCES: usize = 20;
    let (wire, cids) = produce_frames(
        &mut c,
        "together",
        (0..PRODUCES).map(|i| batch(&[format!("v{i}").as_bytes()], 1, Compression::None)),
    );
    // One write into the pipe: the SPU reads every request at once.
    c.send_raw(&wire).await;
    assert_produces_answered_in_order(&mut c, cids).await;
    let writes = writes.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        writes < PRODUCES / 2,
        "{PRODUCES} answers took {writes} writes"
    );
    let resp = admin.send(fetch("together", 0, 0, 1 << 20, 0, 0), 12).await;
    assert_eq!(
        values(resp.responses[0].partitions[0].records.as_ref().unwrap()).len(),
        PRODUCES
    );
    drop(c);
    task.await.expect("the connection task ends cleanly");
    spu.stop().await;
}

/// Produce frames larger than the connection's first read buffer, sent
/// back to back in one write (more than a megabyte): the SPU reads ahead
/// across frame boundaries once a read fills its buffer, and every
/// request is still answered in order and stored whole, byte for byte.
#[tokio::test]
async fn large_back_to_back_produces_read_ahead_in_order() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "ahead", 1, &[]).await;
    const PRODUCES: usize = 12;
    const VALUE_BYTES: usize = 100 * 1024;
    let value = |i: usize| -> Vec<u8> { (0..VALUE_BYTES).map(|j| (i * 31 + j) as u8).collect() };
    let (wire, cids) = produce_frames(
        &mut c,
        "ahead",
        (0..PRODUCES).map(|i| batch(&[value(i).as_slice()], i as i64, Compression::None)),
    );
    c.send_raw(&wire).await;
    assert_produces_answered_in_order(&mut c, cids).await;
    let mut stored = Vec::new();
    while stored.len() < PRODUCES {
        let resp = c
            .send(fetch("ahead", 0, stored.len() as i64, 4 << 20, 0, 0), 12)
            .await;
        let got = values(resp.responses[0].partitions[0].records.as_ref().unwrap());
        assert!(!got.is_empty(), "the fetch made progress");
        stored.extend(got);
    }
    let want: Vec<(i64, Vec<u8>)> = (0..PRODUCES).map(|i| (i as i64, value(i))).collect();
    assert_eq!(stored, want);
    spu.stop().await;
}

#[tokio::test]
async fn acks_zero_gets_no_answer_but_is_stored() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "fire", 1, &[]).await;
    for i in 0..5 {
        c.send_only(
            produce(
                "fire",
                0,
                batch(&[format!("v{i}").as_bytes()], i, Compression::Lz4),
                0,
            ),
            9,
        )
        .await;
    }
    // The next answer on the connection is the Metadata's (send checks the
    // correlation id).
    c.send(MetadataRequest::default().with_topics(None), 12)
        .await;
    let resp = c.send(fetch("fire", 0, 0, 1 << 20, 0, 0), 12).await;
    assert_eq!(
        values(resp.responses[0].partitions[0].records.as_ref().unwrap()).len(),
        5
    );
    spu.stop().await;
}

#[tokio::test]
async fn fetch_long_polls_until_data_or_max_wait() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "poll", 1, &[]).await;
    // Nothing arrives: the answer comes after about max_wait, empty.
    let started = Instant::now();
    let resp = c.send(fetch("poll", 0, 0, 1 << 20, 400, 1), 12).await;
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
    assert!(resp.responses[0].partitions[0]
        .records
        .as_ref()
        .unwrap()
        .is_empty());
    // Data arrives mid-wait: the answer comes with it, well before max_wait.
    let addr = spu.addr;
    let producer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut p = KafkaClient::connect(addr).await;
        p.send(
            produce("poll", 0, batch(&[b"wake"], 1, Compression::None), 1),
            9,
        )
        .await
    });
    let started = Instant::now();
    let resp = c.send(fetch("poll", 0, 0, 1 << 20, 10_000, 1), 12).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        values(resp.responses[0].partitions[0].records.as_ref().unwrap()),
        vec![(0, b"wake".to_vec())]
    );
    producer.await.unwrap();
    spu.stop().await;
}

#[tokio::test]
async fn fetch_returns_a_whole_batch_larger_than_max_bytes_and_range_errors() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "big", 1, &[]).await;
    let big = vec![1u8; 50_000];
    c.send(
        produce("big", 0, batch(&[&big], 1, Compression::None), 1),
        9,
    )
    .await;
    c.send(
        produce("big", 0, batch(&[b"small"], 2, Compression::None), 1),
        9,
    )
    .await;
    let resp = c.send(fetch("big", 0, 0, 100, 0, 0), 12).await;
    let got = values(resp.responses[0].partitions[0].records.as_ref().unwrap());
    assert_eq!(got.len(), 1, "exactly the first batch, whole");
    assert_eq!(got[0].1.len(), 50_000);
    let resp = c.send(fetch("big", 0, 99, 100, 0, 0), 12).await;
    assert_eq!(
        resp.responses[0].partitions[0].error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    let resp = c.send(fetch("nope", 0, 0, 100, 0, 0), 12).await;
    assert_eq!(
        resp.responses[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    spu.stop().await;
}

#[tokio::test]
async fn list_offsets_earliest_latest_by_time_and_max_time() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "time", 1, &[]).await;
    // Records stamped 1000..1004, 2000..2004, 3000..3004.
    for i in 1..=3i64 {
        let v: Vec<Vec<u8>> = (0..5).map(|j| vec![j as u8]).collect();
        let refs: Vec<&[u8]> = v.iter().map(|x| x.as_slice()).collect();
        c.send(
            produce("time", 0, batch(&refs, 1000 * i, Compression::Snappy), 1),
            9,
        )
        .await;
    }
    let ask = |ts: i64| {
        ListOffsetsRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name("time"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(ts)])])
    };
    for version in [1, 7] {
        let at = |resp: kafka_protocol::messages::ListOffsetsResponse| {
            let p = &resp.topics[0].partitions[0];
            (p.error_code, p.offset, p.timestamp)
        };
        assert_eq!(at(c.send(ask(-2), version).await).1, 0, "earliest");
        assert_eq!(at(c.send(ask(-1), version).await).1, 15, "latest");
        assert_eq!(at(c.send(ask(2002), version).await), (0, 7, 2002));
        assert_eq!(at(c.send(ask(2500), version).await), (0, 10, 3000));
        assert_eq!(
            at(c.send(ask(9999), version).await),
            (0, -1, -1),
            "nothing that late"
        );
    }
    let p = c.send(ask(-3), 7).await;
    assert_eq!(
        (
            p.topics[0].partitions[0].offset,
            p.topics[0].partitions[0].timestamp
        ),
        (14, 3004),
        "max timestamp"
    );
    spu.stop().await;
}

#[tokio::test]
async fn the_spu_caps_fetch_size_whatever_the_client_asks() {
    let spu = TestSpu::start_with(|c| c.max_fetch_bytes = 1000).await;
    let mut c = spu.client().await;
    create_topic(&mut c, "capped", 1, &[]).await;
    let v = vec![3u8; 500];
    for i in 0..3 {
        c.send(
            produce("capped", 0, batch(&[&v], i, Compression::None), 1),
            9,
        )
        .await;
    }
    let resp = c.send(fetch("capped", 0, 0, i32::MAX, 0, 0), 12).await;
    assert_eq!(
        values(resp.responses[0].partitions[0].records.as_ref().unwrap()).len(),
        1
    );
    spu.stop().await;
}

#[tokio::test]
async fn acknowledged_records_are_readable_after_a_crash() {
    let mut spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "crashy", 1, &[]).await;
    for i in 0..20 {
        let (code, base) = first(
            &c.send(
                produce("crashy", 0, batch(&[b"a", b"b"], i, Compression::None), -1),
                9,
            )
            .await,
        );
        assert_eq!((code, base), (0, 2 * i));
    }
    drop(c);
    spu.crash_and_restart().await;
    let mut c = spu.client().await;
    let resp = c.send(fetch("crashy", 0, 0, 1 << 20, 0, 0), 12).await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!(
        p.high_watermark, 40,
        "every acknowledged record is committed after recovery"
    );
    assert_eq!(values(p.records.as_ref().unwrap()).len(), 40);
    let mut read_committed = fetch("crashy", 0, 0, 1 << 20, 0, 0);
    read_committed.isolation_level = 1;
    let resp = c.send(read_committed, 12).await;
    assert_eq!(
        values(resp.responses[0].partitions[0].records.as_ref().unwrap()).len(),
        40
    );
    assert_eq!(
        first(
            &c.send(
                produce("crashy", 0, batch(&[b"c"], 99, Compression::None), 1),
                9
            )
            .await
        )
        .1,
        40
    );
    spu.stop().await;
}

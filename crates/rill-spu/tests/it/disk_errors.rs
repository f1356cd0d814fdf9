//! A real SPU whose partition logs live on `rill_storage::SimBackend`
//! (`SpuConfig::storage`): failing writes, torn writes and power cuts under
//! it. Produce gets KAFKA_STORAGE_ERROR (56), the SPU stays up, what was
//! stored reads back intact, and produce works again once the disk does
//! (after a restart for a log whose tail became unknown, as Kafka takes a
//! failed log directory offline until restart).

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, FetchRequest, ProduceRequest,
};
use rill_protocol::batch::split_batches;
use rill_protocol::{Compression, RecordBatch};
use rill_storage::{FlushPolicy, SimBackend};

use rill_test_support::*;

/// An SPU whose partition logs live on a fresh simulated disk.
async fn sim_spu(flush: FlushPolicy) -> TestSpu {
    TestSpu::builder()
        .sim(SimBackend::new())
        .flush(flush)
        .start()
        .await
}

fn produce_req(topic: &str, partition: i32, value: &str) -> ProduceRequest {
    let records = batch(&[value.as_bytes()], 1, Compression::None);
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1500)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// `(error code, base offset)` of a one-partition produce.
async fn produce(c: &mut KafkaClient, topic: &str, partition: i32, value: &str) -> (i16, i64) {
    let resp = c.send(produce_req(topic, partition, value), 9).await;
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Every (offset, value) of a partition, fetched until the high watermark
/// (one fetch stops at a segment's end).
async fn read_all(c: &mut KafkaClient, topic: &str, partition: i32) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut next = 0;
    loop {
        let req = FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_bytes(i32::MAX)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(next)
                    .with_partition_max_bytes(1 << 20)])]);
        let resp = c.send(req, 12).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(
            p.error_code, 0,
            "fetch {topic}-{partition} at {next}: log start {}, high watermark {}",
            p.log_start_offset, p.high_watermark
        );
        let records: Bytes = p.records.clone().unwrap_or_default();
        for b in split_batches(&records) {
            let batch = RecordBatch::new(b.unwrap()).unwrap();
            for r in batch.records(1 << 20).unwrap().iter() {
                let r = r.unwrap();
                out.push((
                    r.offset,
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                ));
            }
            next = batch.header.next_offset();
        }
        if next >= p.high_watermark || records.is_empty() {
            return out;
        }
    }
}

/// Produces `values` to a partition, asserting each is acknowledged at the
/// next offset; returns what is now expected in it.
async fn produce_ok(
    c: &mut KafkaClient,
    topic: &str,
    partition: i32,
    expected: &mut Vec<(i64, String)>,
    values: &[&str],
) {
    for v in values {
        let (code, offset) = produce(c, topic, partition, v).await;
        assert_eq!(code, 0, "{v}");
        assert_eq!(offset, expected.len() as i64, "{v}: offsets contiguous");
        expected.push((offset, v.to_string()));
    }
}

#[tokio::test]
async fn failing_writes_get_storage_error_and_harm_nothing() {
    let mut spu = sim_spu(FlushPolicy::Never).await;
    let mut c = spu.client().await;
    create_topic(&mut c, "d", 2, &[]).await;
    let mut p0 = Vec::new();
    let mut p1 = Vec::new();
    produce_ok(&mut c, "d", 0, &mut p0, &["a", "b", "c"]).await;
    produce_ok(&mut c, "d", 1, &mut p1, &["x"]).await;

    spu.sim().set_fail_writes(true);
    for i in 0..5 {
        assert_eq!(
            produce(&mut c, "d", 0, &format!("lost-{i}")).await.0,
            ResponseError::KafkaStorageError.code()
        );
    }
    assert_eq!(
        produce(&mut c, "d", 1, "lost").await.0,
        ResponseError::KafkaStorageError.code()
    );
    // Creating a topic needs the disk too.
    let resp = c
        .send(
            CreateTopicsRequest::default().with_topics(vec![creatable("new", 1, 1, &[])]),
            7,
        )
        .await;
    assert_eq!(
        resp.topics[0].error_code,
        ResponseError::KafkaStorageError.code()
    );
    // The SPU is up, and what was stored reads back.
    assert_eq!(c.send(ApiVersionsRequest::default(), 3).await.error_code, 0);
    assert_eq!(read_all(&mut c, "d", 0).await, p0);
    assert_eq!(read_all(&mut c, "d", 1).await, p1);

    // The disk comes back. A log whose failed write could not be undone
    // stays refused until it is recovered by a restart.
    spu.sim().set_fail_writes(false);
    let after = produce(&mut c, "d", 0, "maybe").await;
    if after.0 == 0 {
        assert_eq!(after.1, p0.len() as i64, "contiguous after the failure");
        p0.push((after.1, "maybe".into()));
    } else {
        assert_eq!(after.0, ResponseError::KafkaStorageError.code());
    }
    spu.restart().await;
    let mut c = spu.client().await;
    assert_eq!(read_all(&mut c, "d", 0).await, p0);
    assert_eq!(read_all(&mut c, "d", 1).await, p1);
    produce_ok(&mut c, "d", 0, &mut p0, &["d", "e"]).await;
    produce_ok(&mut c, "d", 1, &mut p1, &["y"]).await;
    create_topic(&mut c, "new", 1, &[]).await;
    assert_eq!(read_all(&mut c, "d", 0).await, p0);
    println!(
        "disk errors: 6 produces refused with 56, {} + {} records intact, produce works after recovery",
        p0.len(),
        p1.len()
    );
    spu.stop().await;
}

#[tokio::test]
async fn a_torn_write_is_refused_and_cut_off_at_recovery() {
    for flush in [FlushPolicy::Never, FlushPolicy::Always] {
        for budget in [0u64, 1, 20, 61, 70] {
            let mut spu = sim_spu(flush).await;
            let mut c = spu.client().await;
            create_topic(&mut c, "t", 1, &[]).await;
            let mut expected = Vec::new();
            produce_ok(&mut c, "t", 0, &mut expected, &["one", "two"]).await;
            // The disk fills up part way through the next batch.
            spu.sim().set_write_budget(Some(budget));
            assert_eq!(
                produce(&mut c, "t", 0, "torn").await.0,
                ResponseError::KafkaStorageError.code(),
                "{flush:?} budget {budget}"
            );
            assert_eq!(read_all(&mut c, "t", 0).await, expected);
            spu.sim().set_write_budget(None);
            spu.restart().await;
            let mut c = spu.client().await;
            assert_eq!(
                read_all(&mut c, "t", 0).await,
                expected,
                "{flush:?} {budget}"
            );
            produce_ok(&mut c, "t", 0, &mut expected, &["three"]).await;
            assert_eq!(read_all(&mut c, "t", 0).await, expected);
            spu.stop().await;
        }
    }
}

#[tokio::test]
async fn power_cut_under_a_running_spu() {
    // flush = always: every acknowledged record survives.
    let mut spu = sim_spu(FlushPolicy::Always).await;
    let mut c = spu.client().await;
    create_topic(
        &mut c,
        "p",
        1,
        &[("segment.bytes", "1024"), ("retention.ms", "-1")],
    )
    .await;
    let mut expected = Vec::new();
    let values: Vec<String> = (0..40).map(|i| format!("acked-{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    produce_ok(&mut c, "p", 0, &mut expected, &refs).await;
    spu.crash_with_power_cut().await;
    let mut c = spu.client().await;
    assert_eq!(read_all(&mut c, "p", 0).await, expected);
    produce_ok(&mut c, "p", 0, &mut expected, &["next"]).await;
    spu.stop().await;

    // flush = never: only an unsynced tail may go; what is left is a
    // contiguous prefix of what was acknowledged, and the log takes appends.
    let mut spu = sim_spu(FlushPolicy::Never).await;
    let mut c = spu.client().await;
    create_topic(
        &mut c,
        "p",
        1,
        &[("segment.bytes", "1024"), ("retention.ms", "-1")],
    )
    .await;
    let mut acked = Vec::new();
    produce_ok(&mut c, "p", 0, &mut acked, &refs).await;
    spu.crash_with_power_cut().await;
    let mut c = spu.client().await;
    let mut kept = read_all(&mut c, "p", 0).await;
    assert!(kept.len() <= acked.len());
    assert_eq!(kept[..], acked[..kept.len()], "a prefix of what was acked");
    println!(
        "power cut, flush never: {} of {} acknowledged records kept (rolled segments are synced)",
        kept.len(),
        acked.len()
    );
    produce_ok(&mut c, "p", 0, &mut kept, &["after"]).await;
    spu.stop().await;
}

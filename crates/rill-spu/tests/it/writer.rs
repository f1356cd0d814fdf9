//! Appends run on each partition's writer thread, not on the tokio
//! workers: with `--flush always` on a disk whose fsync hangs, other
//! connections are still answered and the request timeout still fires; and
//! many producers to one partition keep their order and get distinct,
//! dense offsets. Appends queued while an fsync runs are stored with one
//! write and one fsync (group commit). With `--flush never`, small appends
//! to an idle writer are made in place, without the writer thread.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, FetchRequest, MetadataRequest, ProduceRequest,
};
use kafka_protocol::protocol::Decodable;
use rill_protocol::Compression;
use rill_storage::{Backend, FileBackend, FlushPolicy, OpenMode, SimBackend, StorageFile};

use rill_test_support::*;

/// Longest an fsync waits at a closed gate. Had appends run on the async
/// threads, a test's runtime would hang in that fsync; the gate then opens
/// by itself and marks the test failed rather than hanging it.
const GATE_LIMIT: Duration = Duration::from_secs(20);

/// Record sets up to this size may be appended in place.
const IN_PLACE_LIMIT_BYTES: usize = rill_spu::INLINE_APPEND_MAX_BYTES;

/// A gate fsync waits at while it is closed.
#[derive(Debug, Default)]
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
    /// fsyncs waiting at the gate right now.
    waiting: AtomicUsize,
    /// fsyncs that passed (or are waiting), ever.
    syncs: AtomicUsize,
    /// An fsync waited `GATE_LIMIT` and went through the closed gate.
    forced: AtomicBool,
}

impl Gate {
    fn set_closed(&self, closed: bool) {
        *self.closed.lock().unwrap() = closed;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let closed = self.closed.lock().unwrap();
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let (_closed, waited) = self
            .opened
            .wait_timeout_while(closed, GATE_LIMIT, |closed| *closed)
            .unwrap();
        if waited.timed_out() {
            self.forced.store(true, Ordering::SeqCst);
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    /// Fails the test if an fsync had to force the gate.
    fn check_not_forced(&self) {
        assert!(
            !self.forced.load(Ordering::SeqCst),
            "an fsync hung the async threads until the gate gave way"
        );
    }
}

/// Real files whose fsync blocks while the gate is closed: a disk that
/// takes as long as the test wants to make data durable.
#[derive(Debug)]
struct SlowSyncDisk(Arc<Gate>);

#[derive(Debug)]
struct SlowSyncFile(Box<dyn StorageFile>, Arc<Gate>);

impl StorageFile for SlowSyncFile {
    fn byte_len(&self) -> io::Result<u64> {
        self.0.byte_len()
    }
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.0.write_all_at(buf, pos)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.1.pass();
        self.0.sync_data()
    }
}

impl Backend for SlowSyncDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        FileBackend.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        FileBackend.list(dir)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(SlowSyncFile(
            FileBackend.open(path, mode)?,
            self.0.clone(),
        )))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        FileBackend.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        FileBackend.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.pass();
        FileBackend.sync_dir(dir)
    }
}

fn produce_req(topic: &str, values: &[&[u8]]) -> ProduceRequest {
    produce_records(topic, batch(values, 1, Compression::None))
}

fn produce_records(topic: &str, records: bytes::Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

/// `(error code, base offset)` of a one-partition produce response frame.
fn ack(frame: Option<bytes::Bytes>) -> (i16, i64) {
    let mut frame = frame.expect("a produce response");
    let _header = kafka_protocol::messages::ResponseHeader::decode(&mut frame, 1).unwrap();
    let resp = kafka_protocol::messages::ProduceResponse::decode(&mut frame, 9).unwrap();
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Waits until `n` fsyncs are blocked at the gate.
async fn until_waiting(gate: &Gate, n: usize) {
    let reached = tokio::time::timeout(Duration::from_secs(5), async {
        while gate.waiting.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{n} fsyncs never waited at the gate");
}

fn fetch_req(topic: &str, offset: i64) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(i32::MAX)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

/// Every `(offset, value)` of partition 0, up to the high watermark.
async fn read_all(c: &mut KafkaClient, topic: &str) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let next = out.last().map_or(0, |(o, _)| o + 1);
        let resp = c.send(fetch_req(topic, next), 12).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        let got = values(&p.records.clone().unwrap_or_default());
        let done = got.is_empty() || got.last().is_some_and(|(o, _)| o + 1 >= p.high_watermark);
        out.extend(got);
        if done {
            return out;
        }
    }
}

// A current-thread runtime: had the append (and its fsync) run on the
// runtime's thread, nothing else could be answered while the fsync hangs.
#[tokio::test]
async fn a_hung_fsync_stalls_only_its_produce() {
    let gate = Arc::new(Gate::default());
    let spu = TestSpu::builder()
        .storage(Arc::new(SlowSyncDisk(gate.clone())))
        .flush(FlushPolicy::Always)
        .request_timeout(Duration::from_secs(2))
        .start()
        .await;
    let mut admin = KafkaClient::connect(spu.addr).await;
    create_topic(&mut admin, "slow", 1, &[]).await;

    gate.set_closed(true);
    let mut producer = KafkaClient::connect(spu.addr).await;
    let (_, frame) = producer.encode(&produce_req("slow", &[b"first"]), 9);
    producer.send_raw(&frame).await;
    // Wait until the produce is inside its fsync.
    until_waiting(&gate, 1).await;

    // A consumer of the same partition waits for the log (off the async
    // threads) ...
    let mut consumer = KafkaClient::connect(spu.addr).await;
    let (_, fetch) = consumer.encode(&fetch_req("slow", 0), 12);
    consumer.send_raw(&fetch).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // ... and another connection is answered promptly, fsync still hanging.
    let prompt = Duration::from_millis(500);
    let versions = tokio::time::timeout(prompt, admin.send(ApiVersionsRequest::default(), 3))
        .await
        .expect("ApiVersions answered while a produce waits on fsync");
    assert_eq!(versions.error_code, 0);
    let metadata = tokio::time::timeout(
        prompt,
        admin.send(MetadataRequest::default().with_topics(None), 12),
    )
    .await
    .expect("Metadata answered while a produce waits on fsync");
    assert_eq!(metadata.topics.len(), 1);
    assert_eq!(gate.waiting.load(Ordering::SeqCst), 1, "fsync still hangs");

    // The produce's request timeout (2 s) fires though the fsync hangs on.
    assert!(
        producer.closed_within(Duration::from_secs(5)).await,
        "the request timeout closes the waiting produce's connection"
    );
    assert_eq!(gate.waiting.load(Ordering::SeqCst), 1, "fsync still hangs");

    // So does the waiting fetch's.
    assert!(
        consumer.closed_within(Duration::from_secs(5)).await,
        "the request timeout closes the waiting fetch's connection"
    );
    assert_eq!(gate.waiting.load(Ordering::SeqCst), 1, "fsync still hangs");

    // The disk recovers: the abandoned append completes, and the next
    // lands after it.
    gate.set_closed(false);
    let mut again = KafkaClient::connect(spu.addr).await;
    let resp = again.send(produce_req("slow", &[b"second"]), 9).await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 1));
    let stored = read_all(&mut again, "slow").await;
    assert_eq!(
        stored,
        vec![(0, b"first".to_vec()), (1, b"second".to_vec())]
    );
    gate.check_not_forced();
    spu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_to_one_partition_keep_order_and_offsets() {
    concurrent_producers(FlushPolicy::Always, None).await;
}

/// With `--flush never` small record sets are appended in place when the
/// writer is idle and large ones go to the writer thread; mixed, from many
/// connections at once, they still get dense offsets in each producer's
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_and_queued_appends_mixed_keep_order_and_offsets() {
    concurrent_producers(FlushPolicy::Never, Some(4)).await;
}

/// Producers on their own connections, all to one partition; with
/// `big_every`, every that many requests carries one record larger than
/// an in-place append may be.
async fn concurrent_producers(flush: FlushPolicy, big_every: Option<usize>) {
    const PRODUCERS: usize = 8;
    const REQUESTS: usize = 40;
    const RECORDS: usize = 3;
    let spu = TestSpu::builder()
        .sim(SimBackend::new())
        .flush(flush)
        .start()
        .await;
    let mut admin = KafkaClient::connect(spu.addr).await;
    create_topic(&mut admin, "shared", 1, &[]).await;

    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let addr = spu.addr;
        tasks.push(tokio::spawn(async move {
            let mut c = KafkaClient::connect(addr).await;
            let mut acked = Vec::new();
            for r in 0..REQUESTS {
                let big = big_every.is_some_and(|n| r % n == 0);
                let vals: Vec<Vec<u8>> = (0..RECORDS)
                    .map(|i| {
                        let mut v = format!("p{p}-r{r}-{i}").into_bytes();
                        if big && i == 0 {
                            v.resize(IN_PLACE_LIMIT_BYTES + 1, b'.');
                        }
                        v
                    })
                    .collect();
                let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
                let resp = c.send(produce_req("shared", &refs), 9).await;
                let part = &resp.responses[0].partition_responses[0];
                assert_eq!(part.error_code, 0, "{:?}", part.error_message);
                acked.push((part.base_offset, vals));
            }
            acked
        }));
    }
    let mut expected = std::collections::BTreeMap::new();
    for t in tasks {
        let acked = t.await.unwrap();
        // Each producer's requests were stored in the order it sent them.
        assert!(acked.windows(2).all(|w| w[0].0 < w[1].0));
        for (base, vals) in acked {
            for (i, v) in vals.into_iter().enumerate() {
                let clash = expected.insert(base + i as i64, v);
                assert!(clash.is_none(), "offset {} given twice", base + i as i64);
            }
        }
    }
    let total = (PRODUCERS * REQUESTS * RECORDS) as i64;
    // Dense: offsets 0..total, each where its acknowledgement said.
    assert_eq!(
        expected.keys().copied().collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>()
    );
    let stored = read_all(&mut admin, "shared").await;
    assert_eq!(stored, expected.into_iter().collect::<Vec<_>>());
    spu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_queued_during_an_fsync_share_the_next_one() {
    const WAITING: usize = 6;
    let gate = Arc::new(Gate::default());
    let spu = TestSpu::builder()
        .storage(Arc::new(SlowSyncDisk(gate.clone())))
        .flush(FlushPolicy::Always)
        .start()
        .await;
    let mut admin = KafkaClient::connect(spu.addr).await;
    create_topic(&mut admin, "group", 1, &[]).await;

    gate.set_closed(true);
    let mut first = KafkaClient::connect(spu.addr).await;
    let (_, frame) = first.encode(&produce_req("group", &[b"a0"]), 9);
    first.send_raw(&frame).await;
    until_waiting(&gate, 1).await;
    let syncs_before = gate.syncs.load(Ordering::SeqCst);
    // More producers queue behind the hanging fsync.
    let mut others = Vec::new();
    for i in 1..=WAITING {
        let mut c = KafkaClient::connect(spu.addr).await;
        let value = format!("a{i}");
        let (_, frame) = c.encode(&produce_req("group", &[value.as_bytes()]), 9);
        c.send_raw(&frame).await;
        others.push(c);
    }
    // Let them reach the writer's queue (they cannot be answered yet).
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.set_closed(false);

    assert_eq!(ack(first.read_frame().await), (0, 0));
    // Offset -> value, from the acknowledgements.
    let mut expected = std::collections::BTreeMap::from([(0, b"a0".to_vec())]);
    for (i, c) in others.iter_mut().enumerate() {
        let (code, offset) = ack(c.read_frame().await);
        assert_eq!(code, 0);
        expected.insert(offset, format!("a{}", i + 1).into_bytes());
    }
    assert_eq!(
        expected.keys().copied().collect::<Vec<_>>(),
        (0..=WAITING as i64).collect::<Vec<_>>()
    );
    // The first append's fsync, then one for all the others.
    assert_eq!(gate.syncs.load(Ordering::SeqCst) - syncs_before, 1);
    // Each record sits where its acknowledgement said.
    let stored = read_all(&mut admin, "group").await;
    assert_eq!(stored, expected.into_iter().collect::<Vec<_>>());
    gate.check_not_forced();
    spu.stop().await;
}

/// In a group: a corrupt record set is refused alone (the others are then
/// appended one at a time), and an idempotent producer's next batch queued
/// in the same group as its previous one is accepted, not taken for a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_refuses_only_the_bad_record_set() {
    let gate = Arc::new(Gate::default());
    let spu = TestSpu::builder()
        .storage(Arc::new(SlowSyncDisk(gate.clone())))
        .flush(FlushPolicy::Always)
        .start()
        .await;
    let mut admin = KafkaClient::connect(spu.addr).await;
    create_topic(&mut admin, "mixed", 1, &[]).await;

    gate.set_closed(true);
    let mut first = KafkaClient::connect(spu.addr).await;
    let (_, frame) = first.encode(&produce_req("mixed", &[b"a0"]), 9);
    first.send_raw(&frame).await;
    until_waiting(&gate, 1).await;
    let syncs_before = gate.syncs.load(Ordering::SeqCst);

    let mut corrupt = batch(&[b"bad"], 1, Compression::None).to_vec();
    if let Some(last) = corrupt.last_mut() {
        *last ^= 0xff; // the CRC no longer matches
    }
    let queued = [
        idempotent_batch(7, 0, 0, 2),
        bytes::Bytes::from(corrupt),
        idempotent_batch(7, 0, 2, 1),
        batch(&[b"plain"], 1, Compression::None),
    ];
    let mut clients = Vec::new();
    for records in queued {
        let mut c = KafkaClient::connect(spu.addr).await;
        let (_, frame) = c.encode(&produce_records("mixed", records), 9);
        c.send_raw(&frame).await;
        clients.push(c);
        // Into the writer's queue in this order.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gate.set_closed(false);
    assert_eq!(ack(first.read_frame().await), (0, 0));
    let mut acks = Vec::new();
    for c in &mut clients {
        acks.push(ack(c.read_frame().await));
    }
    const CORRUPT_MESSAGE: i16 = 2;
    assert_eq!(acks, vec![(0, 1), (CORRUPT_MESSAGE, -1), (0, 3), (0, 4)]);
    // One group [s0-s1, bad, s2, plain] (producer 7 twice: s2 is checked
    // against s0-s1 recorded provisionally), refused whole, so one at a
    // time: an fsync each for s0-s1, s2 and plain.
    assert_eq!(gate.syncs.load(Ordering::SeqCst) - syncs_before, 3);
    let stored: Vec<Vec<u8>> = read_all(&mut admin, "mixed")
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(stored, [&b"a0"[..], b"s0", b"s1", b"s2", b"plain"]);
    gate.check_not_forced();
    spu.stop().await;
}

/// One idempotent producer with five record sets in flight (the client's
/// limit), all queued behind an fsync, plus a retry of one of them: the
/// five share one fsync, get dense offsets in sequence order, and the retry
/// is answered as a duplicate with its original offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotent_producers_pipeline_shares_one_fsync() {
    let gate = Arc::new(Gate::default());
    let spu = TestSpu::builder()
        .storage(Arc::new(SlowSyncDisk(gate.clone())))
        .flush(FlushPolicy::Always)
        .start()
        .await;
    let mut admin = KafkaClient::connect(spu.addr).await;
    create_topic(&mut admin, "pipeline", 1, &[]).await;

    gate.set_closed(true);
    let mut first = KafkaClient::connect(spu.addr).await;
    let (_, frame) = first.encode(&produce_req("pipeline", &[b"a0"]), 9);
    first.send_raw(&frame).await;
    until_waiting(&gate, 1).await;
    let syncs_before = gate.syncs.load(Ordering::SeqCst);

    // Sequences 0-1, 2-3, 4-5, 6-7, 8-9, then 4-5 again.
    let mut clients = Vec::new();
    for seq in [0, 2, 4, 6, 8, 4] {
        let mut c = KafkaClient::connect(spu.addr).await;
        let (_, frame) = c.encode(
            &produce_records("pipeline", idempotent_batch(9, 0, seq, 2)),
            9,
        );
        c.send_raw(&frame).await;
        clients.push(c);
        // Into the writer's queue in this order.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gate.set_closed(false);
    assert_eq!(ack(first.read_frame().await), (0, 0));
    let mut acks = Vec::new();
    for c in &mut clients {
        acks.push(ack(c.read_frame().await));
    }
    const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    assert_eq!(
        acks,
        vec![
            (0, 1),
            (0, 3),
            (0, 5),
            (0, 7),
            (0, 9),
            (DUPLICATE_SEQUENCE_NUMBER, 5)
        ]
    );
    // The first append's fsync, then one for the whole pipeline.
    assert_eq!(gate.syncs.load(Ordering::SeqCst) - syncs_before, 1);
    assert_eq!(read_all(&mut admin, "pipeline").await.len(), 11);
    gate.check_not_forced();
    spu.stop().await;
}

/// One connection pipelining an idempotent producer's requests (as Kafka
/// clients do, up to five in flight): the SPU admits each while the earlier
/// ones wait for their fsync, so they reach the writer together and share
/// one fsync, answered in request order with dense offsets. Served one
/// request at a time, each would have waited for its own fsync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connections_pipelined_produces_share_one_fsync() {
    let gate = Arc::new(Gate::default());
    let spu = TestSpu::builder()
        .storage(Arc::new(SlowSyncDisk(gate.clone())))
        .flush(FlushPolicy::Always)
        .start()
        .await;
    let mut admin = KafkaClient::connect(spu.addr).await;
    create_topic(&mut admin, "piped", 1, &[]).await;

    gate.set_closed(true);
    let mut first = KafkaClient::connect(spu.addr).await;
    let (_, frame) = first.encode(&produce_req("piped", &[b"a0"]), 9);
    first.send_raw(&frame).await;
    until_waiting(&gate, 1).await;
    let syncs_before = gate.syncs.load(Ordering::SeqCst);

    // Sequences 0-1, 2-3, 4-5, 6-7, 8-9 on one connection, back to back.
    let mut c = KafkaClient::connect(spu.addr).await;
    let mut wire = Vec::new();
    for seq in [0, 2, 4, 6, 8] {
        let (_, frame) = c.encode(&produce_records("piped", idempotent_batch(9, 0, seq, 2)), 9);
        wire.extend_from_slice(&frame);
    }
    c.send_raw(&wire).await;
    // Let the connection admit them all into the writer's queue.
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.set_closed(false);
    assert_eq!(ack(first.read_frame().await), (0, 0));
    let mut acks = Vec::new();
    for _ in 0..5 {
        acks.push(ack(c.read_frame().await));
    }
    assert_eq!(acks, vec![(0, 1), (0, 3), (0, 5), (0, 7), (0, 9)]);
    // The first append's fsync, then one for the whole pipeline.
    assert_eq!(gate.syncs.load(Ordering::SeqCst) - syncs_before, 1);
    assert_eq!(read_all(&mut admin, "piped").await.len(), 11);
    gate.check_not_forced();
    spu.stop().await;
}

/// Writer threads running in this process (named `rill-writer <partition>`;
/// Linux keeps the first 15 bytes of a thread's name).
fn writer_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("rill-writer"))
        .count()
}

/// `--flush never`: a small record set that finds its partition's writer
/// idle is appended in place (no writer thread starts); a larger one starts
/// the writer thread; offsets and contents are as acknowledged either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_appends_to_an_idle_never_log_are_made_in_place() {
    let spu = TestSpu::builder()
        .sim(SimBackend::new())
        .flush(FlushPolicy::Never)
        .start()
        .await;
    let mut c = KafkaClient::connect(spu.addr).await;
    create_topic(&mut c, "solo", 1, &[]).await;
    let before = writer_threads();
    let mut expected = Vec::new();
    let mut produce = async |c: &mut KafkaClient, value: Vec<u8>| {
        let resp = c.send(produce_req("solo", &[&value]), 9).await;
        let part = &resp.responses[0].partition_responses[0];
        assert_eq!(part.error_code, 0, "{:?}", part.error_message);
        assert_eq!(part.base_offset, expected.len() as i64);
        expected.push((part.base_offset, value));
    };
    for i in 0..5 {
        produce(&mut c, format!("small-{i}").into_bytes()).await;
    }
    assert_eq!(
        writer_threads(),
        before,
        "a small append started a writer thread"
    );
    produce(&mut c, vec![b'b'; IN_PLACE_LIMIT_BYTES + 1]).await;
    assert_eq!(writer_threads(), before + 1, "a large append ran in place");
    produce(&mut c, b"small-after".to_vec()).await;
    assert_eq!(read_all(&mut c, "solo").await, expected);
    spu.stop().await;
}

//! The client against three SPUs in this process sharing one in-memory
//! metadata store: producers and consumers follow each partition's
//! leader, ride out an SPU going away and coming back, and Metadata is
//! asked of another SPU when the bootstrap one is away.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rill::producer::partition_for_key;
use rill::{
    ConsumerConfig, ConsumerRecord, DeliverySemantic, MultiPartitionStream, Offset, RetryPolicy,
    RetryStrategy, Rill, RillError, TopicProducerConfigBuilder,
};
use rill_cluster::MemoryStore;

use crate::spu::TestSpu;

/// Short, so a crashed SPU's partitions lose their leader quickly.
pub(crate) const SESSION: Duration = Duration::from_millis(1000);
/// How long a test waits for the cluster to settle or a record to come.
pub(crate) const SETTLE: Duration = Duration::from_secs(20);
pub(crate) const PARTITIONS: u32 = 6;

/// A producer that retries every 50 ms for up to 30 s: long enough to
/// outlast an SPU that is away and comes back.
pub(crate) fn patient() -> rill::TopicProducerConfig {
    TopicProducerConfigBuilder::default()
        .linger(Duration::from_millis(1))
        .delivery_semantic(DeliverySemantic::AtLeastOnce(RetryPolicy {
            max_retries: 10_000,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(50),
            timeout: Duration::from_secs(30),
            strategy: RetryStrategy::FixedDelay,
        }))
        .build()
        .unwrap()
}

async fn member(store: &MemoryStore, id: i32) -> TestSpu {
    TestSpu::builder()
        .cluster_member(store, id, SESSION)
        .start()
        .await
}

async fn three() -> Vec<TestSpu> {
    let store = MemoryStore::new();
    let mut spus = Vec::new();
    for id in 0..3 {
        spus.push(member(&store, id).await);
    }
    spus
}

/// Polls `check` until it gives `Some`, or panics after [`SETTLE`].
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates `topic` with six partitions and waits until each has a leader:
/// the leaders by partition, as `describe_topic` reports them.
async fn six_partitions(rill: &Rill, topic: &str) -> Vec<i32> {
    rill.admin()
        .create_topic(topic, PARTITIONS as i32, 1, &[])
        .await
        .unwrap();
    leaders(rill, topic, |ls| ls.iter().all(Option::is_some))
        .await
        .into_iter()
        .map(|l| l.expect("a leader"))
        .collect()
}

/// Each partition's leader once `done` holds for them.
pub(crate) async fn leaders(
    rill: &Rill,
    topic: &str,
    done: impl Fn(&[Option<i32>]) -> bool,
) -> Vec<Option<i32>> {
    eventually("the partitions' leaders", || async {
        let d = rill.admin().describe_topic(topic).await.ok()?;
        let ls: Vec<Option<i32>> = d.partition_details.iter().map(|p| p.leader).collect();
        done(&ls).then_some(ls)
    })
    .await
}

/// A key that the producer places on each partition, by partition.
pub(crate) fn key_for_each_partition() -> Vec<String> {
    (0..PARTITIONS)
        .map(|p| {
            (0..)
                .map(|i| format!("key-{i}"))
                .find(|k| partition_for_key(k.as_bytes(), PARTITIONS) == p)
                .expect("some key lands on each partition")
        })
        .collect()
}

/// The next record, or a panic naming `what` after [`SETTLE`].
pub(crate) async fn next_within(stream: &mut MultiPartitionStream, what: &str) -> ConsumerRecord {
    tokio::time::timeout(SETTLE, stream.next())
        .await
        .unwrap_or_else(|_| panic!("no record within {SETTLE:?}: {what}"))
        .unwrap()
}

/// Reads until `try_next` says nothing more: what was read.
pub(crate) async fn drain(stream: &mut MultiPartitionStream) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    while let Some(r) = stream.try_next().await.unwrap() {
        out.push(r);
    }
    out
}

/// Reads `topic` from the beginning: exactly `n` records and nothing
/// more, each key's values (numbers) in the order they were stored.
pub(crate) async fn read_by_key(
    rill: &Rill,
    topic: &str,
    n: usize,
) -> BTreeMap<String, Vec<usize>> {
    let mut stream = rill
        .consumer(topic, None, Offset::beginning(), ConsumerConfig::default())
        .await
        .unwrap();
    let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for _ in 0..n {
        let r = next_within(&mut stream, &format!("reading back {topic}")).await;
        let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
        by_key
            .entry(key)
            .or_default()
            .push(text(&r).parse().unwrap());
    }
    assert!(drain(&mut stream).await.is_empty(), "{topic}: nothing more");
    by_key
}

pub(crate) fn text(r: &ConsumerRecord) -> String {
    String::from_utf8(r.value.to_vec()).unwrap()
}

#[tokio::test]
async fn a_keyed_producer_spreads_over_three_spus_and_one_consumer_reads_each_key_in_order() {
    let spus = three().await;
    let rill = Rill::connect_to(&spus[0].addr()).await.unwrap();
    let leaders = six_partitions(&rill, "orders").await;
    let distinct: BTreeSet<i32> = leaders.iter().copied().collect();
    assert_eq!(distinct, BTreeSet::from([0, 1, 2]), "leaders {leaders:?}");
    let d = rill.admin().describe_topic("orders").await.unwrap();
    for p in &d.partition_details {
        assert_eq!(p.replicas, vec![leaders[p.partition as usize]]);
        assert_eq!(p.isr, p.replicas);
    }

    // Keyed records, idempotent (the default), several batches in flight.
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::from_millis(2))
        .batch_size(500)
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("orders", config)
        .await
        .unwrap();
    const KEYS: usize = 24;
    const N: usize = 1200;
    let mut outputs = Vec::new();
    for i in 0..N {
        let key = format!("customer-{}", i % KEYS);
        outputs.push(producer.send(key, format!("{}", i / KEYS)).await.unwrap());
    }
    producer.flush().await.unwrap();
    let mut used = BTreeSet::new();
    for o in outputs {
        used.insert(o.wait().await.unwrap().partition);
    }
    let spus_used: BTreeSet<i32> = used.iter().map(|p| leaders[*p as usize]).collect();
    assert_eq!(spus_used, BTreeSet::from([0, 1, 2]), "partitions {used:?}");
    for p in &used {
        let dir = spus[leaders[*p as usize] as usize]
            .data_dir()
            .join(format!("orders-{p}"));
        assert!(dir.is_dir(), "{} holds orders-{p}", dir.display());
    }

    // One consumer of every partition: each key's records in send order,
    // each once.
    let by_key = read_by_key(&rill, "orders", N).await;
    assert_eq!(by_key.len(), KEYS);
    for (key, seqs) in by_key {
        assert_eq!(seqs, (0..N / KEYS).collect::<Vec<_>>(), "{key}");
    }
    for s in spus {
        s.stop().await;
    }
}

#[tokio::test]
async fn an_spu_going_away_fails_or_holds_only_its_partitions_and_nothing_is_lost_or_doubled() {
    let mut spus = three().await;
    let rill = Rill::connect_to(&spus[0].addr()).await.unwrap();
    let leaders = six_partitions(&rill, "events").await;
    // Away: an SPU other than the one the client was given.
    let away = 2;
    let its: Vec<u32> = (0..PARTITIONS)
        .filter(|p| leaders[*p as usize] == away)
        .collect();
    assert!(!its.is_empty(), "leaders {leaders:?}");
    let keys = key_for_each_partition();
    let durable = patient();
    let producer = rill
        .topic_producer_with_config("events", durable)
        .await
        .unwrap();
    for (p, key) in keys.iter().enumerate() {
        let at = producer
            .send(key.as_str(), format!("before-{p}"))
            .await
            .unwrap();
        assert_eq!(at.wait().await.unwrap().partition, p as u32);
    }
    let mut stream = rill
        .consumer(
            "events",
            None,
            Offset::beginning(),
            ConsumerConfig::default(),
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..PARTITIONS {
        seen.push(next_within(&mut stream, "records from before").await);
    }

    spus[away as usize].stop_for_now().await;

    // A short policy: its partitions fail within the policy's timeout, the
    // others take the record.
    let short_timeout = Duration::from_secs(2);
    let short = TopicProducerConfigBuilder::default()
        .linger(Duration::from_millis(1))
        .delivery_semantic(DeliverySemantic::AtLeastOnce(RetryPolicy {
            max_retries: 1000,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            timeout: short_timeout,
            strategy: RetryStrategy::FixedDelay,
        }))
        .build()
        .unwrap();
    let impatient = rill
        .topic_producer_with_config("events", short)
        .await
        .unwrap();
    let started = Instant::now();
    let mut outputs = Vec::new();
    for (p, key) in keys.iter().enumerate() {
        outputs.push((
            p as u32,
            impatient.send(key.as_str(), "short").await.unwrap(),
        ));
    }
    for (p, o) in outputs {
        let answer = o.wait().await;
        if its.contains(&p) {
            let err = answer.unwrap_err();
            assert!(
                matches!(
                    err,
                    RillError::Timeout { .. } | RillError::RetriesExhausted { .. }
                ),
                "{p}: {err}"
            );
        } else {
            assert_eq!(answer.unwrap().partition, p);
        }
    }
    let took = started.elapsed();
    assert!(
        took < short_timeout + Duration::from_secs(5),
        "failed after {took:?}"
    );

    // The patient producer: the live partitions take their records while
    // the SPU is away, its own wait for it.
    const EACH: usize = 20;
    let mut waiting = Vec::new();
    for i in 0..EACH {
        for (p, key) in keys.iter().enumerate() {
            let o = producer
                .send(key.as_str(), format!("during-{p}-{i}"))
                .await
                .unwrap();
            waiting.push((p as u32, o));
        }
    }
    let (held, live): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(p, _)| its.contains(p));
    for (p, o) in live {
        let at = tokio::time::timeout(SETTLE, o.wait())
            .await
            .expect("a live partition answers while the SPU is away")
            .unwrap();
        assert_eq!(at.partition, p);
    }
    // The consumer goes on with the live partitions meanwhile.
    let live_records = (PARTITIONS as usize - its.len()) * (EACH + 1);
    for _ in 0..live_records {
        let r = next_within(&mut stream, "live partitions while an SPU is away").await;
        assert!(!its.contains(&r.partition), "{r:?} from the away SPU");
        seen.push(r);
    }
    assert!(
        held.iter().all(|(_, o)| o.try_wait().is_none()),
        "the away SPU's partitions wait for it"
    );

    spus[away as usize].start_again().await;
    for (p, o) in held {
        let at = tokio::time::timeout(SETTLE, o.wait())
            .await
            .expect("answered once the SPU is back")
            .unwrap();
        assert_eq!(at.partition, p);
    }
    // The consumer resumes the returned SPU's partitions.
    for _ in 0..its.len() * EACH {
        seen.push(next_within(&mut stream, "the returned SPU's partitions").await);
    }
    seen.extend(drain(&mut stream).await);

    // Per partition: offsets 0.. without gaps, each value once, in order.
    let mut by_partition: HashMap<u32, Vec<&ConsumerRecord>> = HashMap::new();
    for r in &seen {
        by_partition.entry(r.partition).or_default().push(r);
    }
    for p in 0..PARTITIONS {
        let records = &by_partition[&p];
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..records.len() as i64).collect::<Vec<_>>());
        let values: Vec<String> = records
            .iter()
            .map(|r| text(r))
            .filter(|v| v != "short")
            .collect();
        let mut expected = vec![format!("before-{p}")];
        expected.extend((0..EACH).map(|i| format!("during-{p}-{i}")));
        assert_eq!(values, expected, "partition {p}");
        let shorts = records.iter().filter(|r| text(r) == "short").count();
        let want = usize::from(!its.contains(&p));
        assert_eq!(shorts, want, "the short-policy record in partition {p}");
    }
    for s in spus {
        s.stop().await;
    }
}

#[tokio::test]
async fn metadata_comes_from_another_spu_while_the_bootstrap_spu_is_away() {
    let mut spus = three().await;
    let rill = Rill::connect_to(&spus[0].addr()).await.unwrap();
    let before = six_partitions(&rill, "meta").await;

    spus[0].stop_for_now().await;
    // Asked of another SPU: the bootstrap SPU's partitions lose their
    // leader, the others keep theirs.
    let after = leaders(&rill, "meta", |ls| {
        ls.iter().zip(&before).all(|(now, was)| match was {
            0 => now.is_none(),
            was => *now == Some(*was),
        })
    })
    .await;
    assert_eq!(after.len(), PARTITIONS as usize);
    let topics = rill.admin().list_topics().await.unwrap();
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].partitions, PARTITIONS);

    // A new producer (its producer id from another SPU) reaches the
    // partitions whose leaders are up.
    let producer = rill.topic_producer("meta").await.unwrap();
    let keys = key_for_each_partition();
    for (p, key) in keys.iter().enumerate() {
        if before[p] == 0 {
            continue;
        }
        let at = producer
            .send(key.as_str(), "while the bootstrap SPU is away")
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!((at.partition, at.offset), (p as u32, 0));
    }
    spus[0].start_again().await;
    leaders(&rill, "meta", |ls| ls.iter().all(Option::is_some)).await;
    for s in spus {
        s.stop().await;
    }
}

#[tokio::test]
async fn a_leader_that_crashes_and_returns_stores_each_idempotent_record_once_in_order() {
    let mut spus = three().await;
    let rill = Rill::connect_to(&spus[0].addr()).await.unwrap();
    let leaders = six_partitions(&rill, "crash").await;
    let away = 1;
    assert!(leaders.contains(&away), "leaders {leaders:?}");
    let keys = key_for_each_partition();
    let config = patient();
    let producer = rill
        .topic_producer_with_config("crash", config)
        .await
        .unwrap();
    let mut stream = rill
        .consumer(
            "crash",
            None,
            Offset::beginning(),
            ConsumerConfig::default(),
        )
        .await
        .unwrap();
    const ROUNDS: usize = 40;
    let mut outputs = Vec::new();
    let send_rounds = |from: usize, to: usize| {
        let producer = producer.clone();
        let keys = keys.clone();
        async move {
            let mut out = Vec::new();
            for i in from..to {
                for (p, key) in keys.iter().enumerate() {
                    let o = producer
                        .send(key.as_str(), format!("{p}-{i}"))
                        .await
                        .unwrap();
                    out.push(o);
                }
            }
            out
        }
    };
    // Batches in flight when the leader dies lose their answers; the
    // leader stays listed until its session lapses, then has none.
    outputs.extend(send_rounds(0, 10).await);
    spus[away as usize].crash();
    outputs.extend(send_rounds(10, 20).await);
    leaders_without(&rill, "crash", away).await;
    outputs.extend(send_rounds(20, 30).await);
    spus[away as usize].start_again().await;
    outputs.extend(send_rounds(30, ROUNDS).await);
    for o in outputs {
        tokio::time::timeout(SETTLE, o.wait())
            .await
            .expect("answered within the policy")
            .unwrap();
    }
    let mut by_partition: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for _ in 0..ROUNDS * PARTITIONS as usize {
        let r = next_within(&mut stream, "every record once").await;
        by_partition.entry(r.partition).or_default().push(text(&r));
    }
    let more = drain(&mut stream).await;
    assert!(more.is_empty(), "stored twice: {more:?}");
    for (p, values) in by_partition {
        let expected: Vec<String> = (0..ROUNDS).map(|i| format!("{p}-{i}")).collect();
        assert_eq!(values, expected, "partition {p}");
    }
    for s in spus {
        s.stop().await;
    }
}

/// Waits until `spu`'s partitions of `topic` have no leader (its session
/// lapsed) while the others keep theirs.
async fn leaders_without(rill: &Rill, topic: &str, spu: i32) {
    let before = leaders(rill, topic, |_| true).await;
    leaders(rill, topic, |ls| {
        ls.iter().zip(&before).all(|(now, was)| match was {
            Some(was) if *was == spu => now.is_none(),
            was => now == was,
        })
    })
    .await;
}

#[tokio::test]
async fn idle_leaders_long_polls_do_not_hold_back_records_from_another_leader() {
    let spus = three().await;
    let rill = Rill::connect_to(&spus[0].addr()).await.unwrap();
    let leaders = six_partitions(&rill, "quiet").await;
    let long_wait = Duration::from_secs(5);
    let config = ConsumerConfig {
        max_wait: long_wait,
        ..ConsumerConfig::default()
    };
    let mut stream = rill
        .consumer("quiet", None, Offset::end(), config)
        .await
        .unwrap();
    // The same client: the consumer's parked Fetches (on connections of
    // its own) hold up neither its Produce nor its Metadata requests.
    let producer = rill.topic_producer("quiet").await.unwrap();
    let keys = key_for_each_partition();
    // Every leader long-polls; then one partition gets a record at a time.
    for (p, key) in keys.iter().enumerate() {
        let reading = tokio::spawn(async move {
            let r = next_within(&mut stream, "a record while others idle").await;
            (r, stream, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(200)).await; // the polls are parked
        let sent = Instant::now();
        producer
            .send(key.as_str(), format!("only-{p}"))
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        let acked = Instant::now();
        assert!(
            acked - sent < long_wait / 2,
            "partition {p} answered {:?} after the send",
            acked - sent
        );
        let (r, back, read_at) = reading.await.unwrap();
        stream = back;
        assert_eq!((r.partition, text(&r)), (p as u32, format!("only-{p}")));
        let lag = read_at.saturating_duration_since(acked);
        assert!(
            lag < long_wait / 2,
            "partition {p} (SPU {}) read {lag:?} after its answer",
            leaders[p]
        );
    }
    for s in spus {
        s.stop().await;
    }
}

//! Three SPUs in this process sharing one in-memory metadata store (the
//! same semantics as etcd, tested against it in rill-cluster): placement,
//! the Kafka face of a cluster, an SPU going away and coming back, topic
//! deletion everywhere, producer ids unique across SPUs.

use std::collections::BTreeSet;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, DeleteTopicsRequest, DescribeClusterRequest, FetchRequest,
    InitProducerIdRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse, ProduceRequest,
};
use rill_cluster::MemoryStore;
use rill_protocol::Compression;
use rill_spu::{ClusterSettings, ClusterStore, Spu, SpuConfig};

use rill_test_support::*;

/// Short, so a stopped SPU's partitions lose their leader quickly.
const SESSION: Duration = Duration::from_millis(1000);
/// How long a test waits for the cluster to settle.
const SETTLE: Duration = Duration::from_secs(15);

async fn member(store: &MemoryStore, id: i32) -> TestSpu {
    TestSpu::builder()
        .cluster_member(store, id, SESSION)
        .start()
        .await
}

async fn three(store: &MemoryStore) -> Vec<TestSpu> {
    let mut spus = Vec::new();
    for id in 0..3 {
        spus.push(member(store, id).await);
    }
    spus
}

async fn metadata(c: &mut KafkaClient, topic: &str) -> MetadataResponse {
    c.send(
        MetadataRequest::default().with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(topic_name(topic))),
        ])),
        12,
    )
    .await
}

/// Polls `check` until it gives `Some`, or panics after [`SETTLE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each partition's leader, once every partition has one.
async fn leaders(spu: &TestSpu, topic: &str, partitions: usize) -> Vec<i32> {
    eventually("every partition has a leader", || async {
        let mut c = spu.client().await;
        let m = metadata(&mut c, topic).await;
        let t = m.topics.first()?;
        let mut ls: Vec<(i32, i32)> = t
            .partitions
            .iter()
            .filter(|p| p.error_code == 0)
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        ls.sort_unstable();
        (ls.len() == partitions).then(|| ls.into_iter().map(|(_, l)| l).collect())
    })
    .await
}

fn produce(topic: &str, partition: i32, value: &[u8]) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch(&[value], 1_000, Compression::None)))])])
}

/// Produces one record; the error code and base offset.
async fn send(spu: &TestSpu, topic: &str, partition: i32, value: &[u8]) -> (i16, i64) {
    let mut c = spu.client().await;
    let resp = c.send(produce(topic, partition, value), 9).await;
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Produces one record where it must be taken, retrying as Kafka clients
/// do while the leader opens a partition it was just given (the store says
/// "leader" a moment before that SPU has opened the log) or is being given
/// it back: the offset.
async fn send_ok(spu: &TestSpu, topic: &str, partition: i32, value: &[u8]) -> i64 {
    eventually("the leader takes the record", || async {
        match send(spu, topic, partition, value).await {
            (0, offset) => Some(offset),
            (code, _)
                if code == ResponseError::NotLeaderOrFollower.code()
                    || code == ResponseError::LeaderNotAvailable.code() =>
            {
                None
            }
            (code, _) => panic!("producing to {topic}-{partition}: error {code}"),
        }
    })
    .await
}

/// Every value stored in one partition, read from `spu`.
async fn read_all(spu: &TestSpu, topic: &str, partition: i32) -> (i16, Vec<Vec<u8>>) {
    let mut c = spu.client().await;
    let resp = c
        .send(
            FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(0)
                .with_max_bytes(i32::MAX)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20)])]),
            12,
        )
        .await;
    let p = &resp.responses[0].partitions[0];
    let records = p.records.clone().unwrap_or_default();
    (
        p.error_code,
        values(&records).into_iter().map(|(_, v)| v).collect(),
    )
}

#[tokio::test]
async fn partitions_spread_over_three_spus_and_each_serves_only_its_own() {
    let store = MemoryStore::new();
    let spus = three(&store).await;
    let mut c = spus[1].client().await;
    create_topic(&mut c, "orders", 6, &[]).await;
    let leaders = leaders(&spus[2], "orders", 6).await;
    let distinct: BTreeSet<i32> = leaders.iter().copied().collect();
    assert_eq!(distinct, BTreeSet::from([0, 1, 2]), "leaders {leaders:?}");

    // Metadata from any SPU: three brokers, a controller, replicas and ISR.
    let m = metadata(&mut c, "orders").await;
    let brokers: BTreeSet<i32> = m.brokers.iter().map(|b| b.node_id.0).collect();
    assert_eq!(brokers, BTreeSet::from([0, 1, 2]));
    for b in &m.brokers {
        assert_eq!(
            format!("{}:{}", b.host.as_str(), b.port),
            spus[b.node_id.0 as usize].addr()
        );
    }
    assert!((0..3).contains(&m.controller_id.0));
    for p in &m.topics[0].partitions {
        assert_eq!(p.replica_nodes, vec![p.leader_id]);
        assert_eq!(p.isr_nodes, vec![p.leader_id]);
    }
    let described = c.send(DescribeClusterRequest::default(), 1).await;
    assert_eq!(described.error_code, 0);
    assert_eq!(described.brokers.len(), 3);
    assert_eq!(described.controller_id, m.controller_id);

    // Every partition takes records at its leader, and only there.
    for (p, leader) in leaders.iter().enumerate() {
        let p = p as i32;
        let at = &spus[*leader as usize];
        let offset = send_ok(at, "orders", p, format!("v{p}").as_bytes()).await;
        assert_eq!(offset, 0, "partition {p} at its leader {leader}");
        let other = &spus[((*leader + 1) % 3) as usize];
        let (code, _) = send(other, "orders", p, b"misdirected").await;
        assert_eq!(code, ResponseError::NotLeaderOrFollower.code());
        let (code, _) = read_all(other, "orders", p).await;
        assert_eq!(code, ResponseError::NotLeaderOrFollower.code());
        assert_eq!(
            read_all(at, "orders", p).await,
            (0, vec![format!("v{p}").into_bytes()])
        );
    }
    for s in spus {
        s.stop().await;
    }
}

/// ListOffsets for the end of `topic`-0 at `spu` as `replica_id`: the
/// error code and offset.
async fn log_end(spu: &TestSpu, topic: &str, replica_id: i32) -> (i16, i64) {
    let mut c = spu.client().await;
    let resp = c
        .send(
            ListOffsetsRequest::default()
                .with_replica_id(BrokerId(replica_id))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)])]),
            7,
        )
        .await;
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset)
}

#[tokio::test]
async fn any_replica_answers_the_debugging_replica_id_with_its_log_end_clients_only_the_leader() {
    let store = MemoryStore::new();
    let spus = three(&store).await;
    let mut c = spus[0].client().await;
    eventually("SPU 0 sees all three members", || async {
        let mut c = spus[0].client().await;
        (metadata(&mut c, "none").await.brokers.len() == 3).then_some(())
    })
    .await;
    let resp = c
        .send(
            CreateTopicsRequest::default()
                .with_timeout_ms(10_000)
                .with_topics(vec![creatable("copied", 1, 3, &[])]),
            7,
        )
        .await;
    assert_eq!(
        resp.topics[0].error_code, 0,
        "{:?}",
        resp.topics[0].error_message
    );
    let leader = leaders(&spus[0], "copied", 1).await[0] as usize;
    for i in 0..3 {
        send_ok(&spus[leader], "copied", 0, format!("v{i}").as_bytes()).await;
    }
    for (id, spu) in spus.iter().enumerate() {
        // A follower's copy reaches the leader's end as it fetches.
        let end = eventually("the copy caught up", || async {
            let (code, end) = log_end(spu, "copied", -2).await;
            assert_eq!(code, 0, "SPU {id} answers the debugging id");
            (end == 3).then_some(end)
        })
        .await;
        assert_eq!(end, 3);
        let (code, _) = log_end(spu, "copied", -1).await;
        if id == leader {
            assert_eq!(code, 0);
        } else {
            assert_eq!(code, ResponseError::NotLeaderOrFollower.code(), "SPU {id}");
        }
    }
    for s in spus {
        s.stop().await;
    }
}

/// Explicit replicas by partition, as CreateTopics gives them.
type Rows<'a> = [(i32, &'a [i32])];

/// CreateTopics for `name` with explicit replicas per partition.
fn assigned(name: &str, rows: &[(i32, &[i32])]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(
            rows.iter()
                .map(|(p, ids)| {
                    CreatableReplicaAssignment::default()
                        .with_partition_index(*p)
                        .with_broker_ids(ids.iter().map(|i| BrokerId(*i)).collect())
                })
                .collect(),
        )
}

#[tokio::test]
async fn explicit_replica_assignments_are_obeyed_and_invalid_ones_refused() {
    let store = MemoryStore::new();
    let spus = three(&store).await;
    let mut c = spus[0].client().await;
    eventually("SPU 0 sees all three members", || async {
        let mut c = spus[0].client().await;
        (metadata(&mut c, "none").await.brokers.len() == 3).then_some(())
    })
    .await;
    let rows: [(i32, &[i32]); 3] = [(1, &[1, 2]), (0, &[2, 0]), (2, &[2, 1])];
    let resp = c
        .send(
            CreateTopicsRequest::default()
                .with_timeout_ms(10_000)
                .with_topics(vec![assigned("placed", &rows)]),
            7,
        )
        .await;
    let t = &resp.topics[0];
    assert_eq!(t.error_code, 0, "{:?}", t.error_message);
    assert_eq!((t.num_partitions, t.replication_factor), (3, 2));
    // Every partition on the replicas asked for, led by the first.
    assert_eq!(leaders(&spus[1], "placed", 3).await, [2, 1, 2]);
    let m = metadata(&mut c, "placed").await;
    for (p, ids) in rows {
        let part = m.topics[0]
            .partitions
            .iter()
            .find(|x| x.partition_index == p)
            .unwrap();
        let replicas: Vec<i32> = part.replica_nodes.iter().map(|b| b.0).collect();
        assert_eq!(replicas, ids, "partition {p}");
    }
    // The assigned leader takes records; SPU 0 holds no copy of partition 2.
    assert_eq!(send_ok(&spus[2], "placed", 0, b"first").await, 0);
    let (code, _) = send(&spus[0], "placed", 2, b"misdirected").await;
    assert_eq!(code, ResponseError::NotLeaderOrFollower.code());

    let bad: [(&Rows<'_>, &str); 5] = [
        (&[(0, &[0, 1]), (2, &[1, 2])], "outside 0..2"),
        (&[(0, &[0, 1]), (0, &[1, 2])], "assigned twice"),
        (&[(0, &[1, 1])], "named twice"),
        (&[(0, &[0, 7])], "SPU 7 is not a member"),
        (&[(0, &[0, 1]), (1, &[2])], "the same number"),
    ];
    for (i, (rows, why)) in bad.into_iter().enumerate() {
        let name = format!("refused-{i}");
        let resp = c
            .send(
                CreateTopicsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(vec![assigned(&name, rows)]),
                7,
            )
            .await;
        let t = &resp.topics[0];
        assert_eq!(
            t.error_code,
            ResponseError::InvalidReplicaAssignment.code(),
            "{rows:?}"
        );
        let message = t.error_message.as_deref().unwrap_or_default();
        assert!(message.contains(why), "{message:?} should say {why:?}");
        let m = metadata(&mut c, &name).await;
        assert_eq!(
            m.topics[0].error_code,
            ResponseError::UnknownTopicOrPartition.code(),
            "{name} was not created"
        );
    }
    for s in spus {
        s.stop().await;
    }
}

#[tokio::test]
async fn a_stopped_spu_leaves_its_partitions_leaderless_and_takes_them_back_with_nothing_lost() {
    let store = MemoryStore::new();
    let mut spus = three(&store).await;
    let mut c = spus[0].client().await;
    create_topic(&mut c, "events", 6, &[]).await;
    let before = leaders(&spus[0], "events", 6).await;
    for (p, l) in before.iter().enumerate() {
        assert_eq!(
            send_ok(&spus[*l as usize], "events", p as i32, b"before").await,
            0
        );
    }
    let away = *before.last().expect("six partitions");
    let survivor = ((away + 1) % 3) as usize;

    // Stopped (leaving the cluster): its partitions have no leader, the
    // others keep working.
    spus[away as usize].stop_for_now().await;
    let leaderless: Vec<i32> =
        eventually("the stopped SPU's partitions lose their leader", || async {
            let mut c = spus[survivor].client().await;
            let m = metadata(&mut c, "events").await;
            let gone: Vec<i32> = m.topics[0]
                .partitions
                .iter()
                .filter(|p| p.error_code == ResponseError::LeaderNotAvailable.code())
                .map(|p| p.partition_index)
                .collect();
            (m.brokers.len() == 2 && !gone.is_empty()).then_some(gone)
        })
        .await;
    let expected: Vec<i32> = (0..6).filter(|p| before[*p as usize] == away).collect();
    assert_eq!(leaderless, expected);
    for (p, l) in before.iter().enumerate() {
        let p = p as i32;
        if *l == away {
            let (code, _) = send(&spus[survivor], "events", p, b"nowhere").await;
            assert_eq!(code, ResponseError::LeaderNotAvailable.code());
        } else {
            let (code, offset) = send(&spus[*l as usize], "events", p, b"during").await;
            assert_eq!((code, offset), (0, 1));
        }
    }

    // Back on the same data: it leads its partitions again, at a later
    // epoch, with what it had.
    spus[away as usize].start_again().await;
    let after = leaders(&spus[survivor], "events", 6).await;
    assert_eq!(after, before);
    let mut c = spus[survivor].client().await;
    let m = metadata(&mut c, "events").await;
    for p in &m.topics[0].partitions {
        if p.leader_id.0 == away {
            assert!(p.leader_epoch >= 1, "a new epoch after the return: {p:?}");
        }
    }
    for p in expected {
        let back = &spus[away as usize];
        assert_eq!(send_ok(back, "events", p, b"after").await, 1);
        assert_eq!(
            read_all(back, "events", p).await,
            (0, vec![b"before".to_vec(), b"after".to_vec()])
        );
    }
    for s in spus {
        s.stop().await;
    }
}

#[tokio::test]
async fn deleting_a_topic_removes_it_everywhere_and_producer_ids_are_unique() {
    let store = MemoryStore::new();
    let spus = three(&store).await;
    let mut c = spus[0].client().await;
    create_topic(&mut c, "gone", 3, &[]).await;
    let leaders = leaders(&spus[0], "gone", 3).await;
    for (p, l) in leaders.iter().enumerate() {
        assert_eq!(send_ok(&spus[*l as usize], "gone", p as i32, b"x").await, 0);
    }
    let dirs: Vec<_> = (0..3)
        .map(|p| {
            spus[leaders[p] as usize]
                .data_dir()
                .join(format!("gone-{p}"))
        })
        .collect();
    assert!(dirs.iter().all(|d| d.exists()));
    let resp = c
        .send(
            DeleteTopicsRequest::default()
                .with_topic_names(vec![topic_name("gone")])
                .with_timeout_ms(5000),
            4,
        )
        .await;
    assert_eq!(resp.responses[0].error_code, 0);
    eventually("every SPU deleted its partitions' files", || async {
        dirs.iter().all(|d| !d.exists()).then_some(())
    })
    .await;
    let m = metadata(&mut c, "gone").await;
    assert_eq!(
        m.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let resp = c
        .send(
            DeleteTopicsRequest::default()
                .with_topic_names(vec![topic_name("gone")])
                .with_timeout_ms(5000),
            4,
        )
        .await;
    assert_eq!(
        resp.responses[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    // Creating it again: a new, empty topic.
    create_topic(&mut c, "gone", 3, &[]).await;
    let again = self::leaders(&spus[0], "gone", 3).await;
    for (p, l) in again.iter().enumerate() {
        let at = &spus[*l as usize];
        let stored = eventually("the new leader serves the partition", || async {
            let (code, stored) = read_all(at, "gone", p as i32).await;
            (code == 0).then_some(stored)
        })
        .await;
        assert_eq!(
            stored,
            Vec::<Vec<u8>>::new(),
            "the re-created gone-{p} is empty"
        );
    }

    let mut ids = BTreeSet::new();
    for s in &spus {
        let mut c = s.client().await;
        for _ in 0..3 {
            let resp = c
                .send(
                    InitProducerIdRequest::default()
                        .with_transaction_timeout_ms(60_000)
                        .with_producer_id(kafka_protocol::messages::ProducerId(-1))
                        .with_producer_epoch(-1),
                    4,
                )
                .await;
            assert_eq!(resp.error_code, 0);
            assert!(
                ids.insert(resp.producer_id.0),
                "{:?} given twice",
                resp.producer_id
            );
        }
    }
    for s in spus {
        s.stop().await;
    }
}

#[tokio::test]
async fn an_spu_id_already_in_the_cluster_is_refused() {
    let store = MemoryStore::new();
    let first = member(&store, 7).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = SpuConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
    config.node_id = 7;
    config.cluster = Some(ClusterSettings {
        store: ClusterStore::Memory(store.clone()),
        session_timeout: SESSION,
        replica_lag_time_max: ClusterSettings::DEFAULT_REPLICA_LAG_TIME_MAX,
    });
    let err = Spu::start(config).await.unwrap_err();
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(chain.contains("SPU id 7 is already registered"), "{chain}");
    first.stop().await;
}

#[tokio::test]
async fn an_spu_restarted_right_after_a_crash_waits_for_its_old_session_and_comes_back() {
    let store = MemoryStore::new();
    let mut spus = three(&store).await;
    let mut c = spus[0].client().await;
    create_topic(&mut c, "crashy", 3, &[]).await;
    let led = leaders(&spus[0], "crashy", 3).await;
    let p = led
        .iter()
        .position(|l| *l == 1)
        .expect("SPU 1 leads one partition") as i32;
    assert_eq!(send_ok(&spus[1], "crashy", p, b"kept").await, 0);
    // kill -9, then at once a new start with the same id: its registration
    // is still there until the old session lapses.
    spus[1].crash();
    let started = tokio::time::Instant::now();
    spus[1].start_again().await;
    assert!(
        started.elapsed() < SESSION + Duration::from_secs(3),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(send_ok(&spus[1], "crashy", p, b"after").await, 1);
    assert_eq!(
        read_all(&spus[1], "crashy", p).await,
        (0, vec![b"kept".to_vec(), b"after".to_vec()])
    );
    for s in spus {
        s.stop().await;
    }
}

#[tokio::test]
async fn partitions_added_and_configs_changed_through_the_store_reach_every_spu() {
    use crate::alter::{config_value, describe, grow, incremental};
    let store = MemoryStore::new();
    let spus = three(&store).await;
    let mut c = spus[0].client().await;
    create_topic(&mut c, "grown", 2, &[]).await;
    leaders(&spus[0], "grown", 2).await;

    // Refusals, checked against the store.
    let resp = c.send(grow("grown", 2, false), 3).await;
    assert_eq!(
        resp.results[0].error_code,
        ResponseError::InvalidPartitions.code()
    );
    let resp = c.send(grow("missing", 4, false), 3).await;
    assert_eq!(
        resp.results[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let resp = c.send(grow("grown", 10_001, false), 3).await;
    assert_eq!(
        resp.results[0].error_code,
        ResponseError::InvalidPartitions.code()
    );
    let resp = c.send(grow("grown", 5, true), 3).await;
    assert_eq!(resp.results[0].error_code, 0);
    assert_eq!(
        metadata(&mut c, "grown").await.topics[0].partitions.len(),
        2
    );

    // Grown at another SPU than the one it was created at: the controller
    // places the new partitions over the three SPUs.
    let mut c1 = spus[1].client().await;
    let resp = c1.send(grow("grown", 6, false), 1).await;
    assert_eq!(
        resp.results[0].error_code, 0,
        "{:?}",
        resp.results[0].error_message
    );
    let leaders = leaders(&spus[2], "grown", 6).await;
    let distinct: BTreeSet<i32> = leaders.iter().copied().collect();
    assert_eq!(distinct, BTreeSet::from([0, 1, 2]), "leaders {leaders:?}");
    for (p, l) in leaders.iter().enumerate() {
        let at = &spus[*l as usize];
        assert_eq!(send_ok(at, "grown", p as i32, b"v").await, 0, "grown-{p}");
    }

    // A config changed at one SPU: in the store, described by every SPU,
    // and taken by the open logs of every partition's leader.
    let mut c2 = spus[2].client().await;
    let resp = c2
        .send(
            incremental("grown", &[("max.message.bytes", Some("200"))], false),
            1,
        )
        .await;
    assert_eq!(resp.responses[0].error_code, 0);
    for s in &spus {
        eventually("every SPU describes the new config", || async {
            let mut c = s.client().await;
            let configs = describe(&mut c, "grown").await;
            (config_value(&configs, "max.message.bytes") == ("200".into(), 1)).then_some(())
        })
        .await;
    }
    let big = [9u8; 300];
    for (p, l) in leaders.iter().enumerate() {
        let at = &spus[*l as usize];
        eventually("the leader refuses a batch over the new limit", || async {
            let (code, _) = send(at, "grown", p as i32, &big).await;
            (code == ResponseError::MessageTooLarge.code()).then_some(())
        })
        .await;
    }
    let resp = c2
        .send(
            incremental("grown", &[("cleanup.policy", Some("compact"))], false),
            1,
        )
        .await;
    assert_eq!(
        resp.responses[0].error_code,
        ResponseError::InvalidConfig.code()
    );
    for s in spus {
        s.stop().await;
    }
}

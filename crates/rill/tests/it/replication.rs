//! Replication on three SPUs in this process sharing one in-memory store:
//! `ReadCommitted` (acks=all) answers once every in-sync replica has the
//! batch, replicas hold the same bytes at the same offsets, a crashed
//! leader loses nothing acknowledged, and too few in-sync replicas make
//! `acks=all` refuse while `acks=1` goes on.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use rill::{DeliverySemantic, Isolation, Rill, RillError, TopicProducerConfigBuilder};
use rill_cluster::MemoryStore;

use crate::cluster::{eventually, leaders, patient, read_by_key, SESSION};
use crate::spu::TestSpu;

/// Short, so a silent follower leaves the ISR within a test.
const LAG: Duration = Duration::from_millis(1500);

async fn replica(store: &MemoryStore, id: i32) -> TestSpu {
    TestSpu::builder()
        .cluster_member(store, id, SESSION)
        .tune(|c| {
            if let Some(cluster) = c.cluster.as_mut() {
                cluster.replica_lag_time_max = LAG;
            }
        })
        .start()
        .await
}

async fn three(store: &MemoryStore) -> Vec<TestSpu> {
    let mut spus = Vec::new();
    for id in 0..3 {
        spus.push(replica(store, id).await);
    }
    spus
}

/// Creates `topic` with three copies of each partition and waits until
/// every partition has a leader and all three in sync.
async fn replicated(rill: &Rill, topic: &str, partitions: i32, min_insync: &str) {
    rill.admin()
        .create_topic(topic, partitions, 3, &[("min.insync.replicas", min_insync)])
        .await
        .unwrap();
    eventually("three in-sync copies of each partition", || async {
        let d = rill.admin().describe_topic(topic).await.ok()?;
        (d.partition_details.len() == partitions as usize
            && d.partition_details
                .iter()
                .all(|p| p.leader.is_some() && p.replicas.len() == 3 && p.isr.len() == 3))
        .then_some(())
    })
    .await;
}

/// One copy's bytes: its segments' batches in offset order.
fn copy_bytes(dir: &Path) -> Vec<u8> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    // Segment files are named by their zero-padded base offset.
    logs.sort();
    logs.iter()
        .flat_map(|p| std::fs::read(p).unwrap_or_default())
        .collect()
}

fn copies(spus: &[TestSpu], topic: &str, p: u32) -> Vec<Vec<u8>> {
    spus.iter()
        .map(|s| copy_bytes(&s.data_dir().join(format!("{topic}-{p}"))))
        .collect()
}

fn committed() -> TopicProducerConfigBuilder {
    let mut b = TopicProducerConfigBuilder::default();
    b.isolation(Isolation::ReadCommitted)
        .linger(Duration::from_millis(2));
    b
}

#[tokio::test]
async fn read_committed_is_answered_once_every_in_sync_replica_has_the_same_bytes() {
    let store = MemoryStore::new();
    let spus = three(&store).await;
    let rill = Rill::connect_to(&spus[0].addr()).await.unwrap();
    replicated(&rill, "copies", 3, "2").await;
    let producer = rill
        .topic_producer_with_config("copies", committed().build().unwrap())
        .await
        .unwrap();
    const N: usize = 600;
    let mut outputs = Vec::new();
    for i in 0..N {
        outputs.push(
            producer
                .send(format!("k{}", i % 12), format!("{}", i / 12))
                .await
                .unwrap(),
        );
    }
    producer.flush().await.unwrap();
    for o in outputs {
        o.wait().await.unwrap();
    }
    // Acknowledged with acks=all: every in-sync copy has it already.
    for p in 0..3 {
        let c = copies(&spus, "copies", p);
        assert!(!c[0].is_empty(), "partition {p} holds records");
        assert!(
            c.iter().all(|x| x == &c[0]),
            "partition {p}: copies differ ({:?} bytes)",
            c.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }
    let by_key = read_by_key(&rill, "copies", N).await;
    for (key, seqs) in by_key {
        assert_eq!(seqs, (0..N / 12).collect::<Vec<_>>(), "{key}");
    }
    for s in spus {
        s.stop().await;
    }
}

#[tokio::test]
async fn a_crashed_leader_loses_no_acknowledged_record_and_rejoins_as_an_identical_copy() {
    let store = MemoryStore::new();
    let mut spus = three(&store).await;
    let rill = Rill::connect_to(&spus[0].addr()).await.unwrap();
    replicated(&rill, "ledger", 2, "2").await;
    let first = leaders(&rill, "ledger", |ls| ls.iter().all(Option::is_some)).await;
    // Crash the leader of partition 0 (not the bootstrap SPU, so the
    // client keeps its first connection).
    let victim = first[0].unwrap() as usize;
    let mut config = patient();
    config.isolation = Isolation::ReadCommitted;
    let producer = rill
        .topic_producer_with_config("ledger", config)
        .await
        .unwrap();
    const KEYS: usize = 8;
    const N: usize = 800;
    let mut outputs = Vec::new();
    let mut crashed_at = None;
    for i in 0..N {
        if i == N / 4 {
            spus[victim].crash();
            crashed_at = Some(std::time::Instant::now());
        }
        if i == N / 2 {
            // Another in-sync copy leads partition 0 now, at a new epoch.
            let moved = leaders(&rill, "ledger", |ls| {
                ls[0].is_some_and(|l| l as usize != victim)
            })
            .await;
            assert_ne!(moved[0], first[0]);
            spus[victim].start_again().await;
        }
        outputs.push(
            producer
                .send(format!("key-{}", i % KEYS), format!("{}", i / KEYS))
                .await
                .unwrap(),
        );
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    producer.flush().await.unwrap();
    let mut failed = Vec::new();
    for (i, o) in outputs.into_iter().enumerate() {
        if let Err(e) = o.wait().await {
            failed.push((i, e.to_string()));
        }
    }
    assert!(failed.is_empty(), "not acknowledged: {failed:?}");
    assert!(crashed_at.is_some());
    // Every acknowledged record once, each key in order.
    let by_key = read_by_key(&rill, "ledger", N).await;
    for (key, seqs) in &by_key {
        assert_eq!(seqs, &(0..N / KEYS).collect::<Vec<_>>(), "{key}");
    }
    // The crashed copy truncated what it alone had, caught up, and holds
    // the same bytes as the others.
    for p in 0..2 {
        eventually("identical copies after the restart", || async {
            let c = copies(&spus, "ledger", p);
            c.iter().all(|x| x == &c[0]).then_some(())
        })
        .await;
    }
    for s in spus {
        s.stop().await;
    }
}

#[tokio::test]
async fn with_too_few_replicas_in_sync_acks_all_is_refused_and_acks_one_goes_on() {
    let store = MemoryStore::new();
    let mut spus = three(&store).await;
    let rill = Rill::connect_to(&spus[0].addr()).await.unwrap();
    replicated(&rill, "strict", 1, "2").await;
    let leader = leaders(&rill, "strict", |ls| ls.iter().all(Option::is_some)).await[0].unwrap();
    let others: Vec<usize> = (0..3).filter(|i| *i != leader as usize).collect();
    let rill = Rill::connect_to(&spus[leader as usize].addr())
        .await
        .unwrap();
    for &o in &others {
        spus[o].crash();
    }
    let mut once = committed();
    once.delivery_semantic(DeliverySemantic::AtMostOnce)
        .timeout(Duration::from_millis(1000));
    let strict = rill
        .topic_producer_with_config("strict", once.build().unwrap())
        .await
        .unwrap();
    // Once the followers have been silent for the lag time, the leader
    // is the ISR alone: below min.insync.replicas.
    let code = eventually("NOT_ENOUGH_REPLICAS", || async {
        match strict.send("k", "v").await.ok()?.wait().await {
            Err(RillError::Broker { code, .. }) if code == 19 => Some(code),
            _ => None,
        }
    })
    .await;
    assert_eq!(code, 19);
    let d = rill.admin().describe_topic("strict").await.unwrap();
    assert_eq!(d.partition_details[0].isr, vec![leader]);
    let mut loose = TopicProducerConfigBuilder::default();
    loose.isolation(Isolation::ReadUncommitted);
    let loose = rill
        .topic_producer_with_config("strict", loose.build().unwrap())
        .await
        .unwrap();
    loose
        .send("k", "one copy")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    // The followers return, catch up and rejoin: acks=all goes through.
    for &o in &others {
        spus[o].start_again().await;
    }
    eventually("acks=all accepted again", || async {
        strict.send("k", "v").await.ok()?.wait().await.ok()
    })
    .await;
    let isr: BTreeSet<i32> = eventually("the ISR whole again", || async {
        let d = rill.admin().describe_topic("strict").await.ok()?;
        let isr: BTreeSet<i32> = d.partition_details[0].isr.iter().copied().collect();
        (isr.len() == 3).then_some(isr)
    })
    .await;
    assert_eq!(isr, BTreeSet::from([0, 1, 2]));
    for s in spus {
        s.stop().await;
    }
}

#[tokio::test]
async fn each_replica_reports_its_own_log_end_and_lags_nothing_once_caught_up() {
    let store = MemoryStore::new();
    let mut spus = three(&store).await;
    let rill = Rill::connect_to(&spus[0].addr()).await.unwrap();
    replicated(&rill, "tracked", 2, "2").await;
    let producer = rill
        .topic_producer_with_config("tracked", committed().build().unwrap())
        .await
        .unwrap();
    const N: i64 = 300;
    let mut outputs = Vec::new();
    for i in 0..N {
        outputs.push(producer.send(format!("k{i}"), "v").await.unwrap());
    }
    producer.flush().await.unwrap();
    for o in outputs {
        o.wait().await.unwrap();
    }
    // Every copy ends where its leader's does: lag 0 for all three.
    let admin = rill.admin();
    let caught_up = eventually("every replica caught up", || async {
        let d = admin.describe_topic("tracked").await.ok()?;
        let mut all = Vec::new();
        for p in &d.partition_details {
            let ends = admin.replica_log_ends("tracked", p).await;
            let leader_end = ends.iter().find(|e| Some(e.replica) == p.leader)?.log_end?;
            let caught_up = ends.len() == 3
                && ends
                    .iter()
                    .all(|e| e.log_end == Some(leader_end) && e.lag == Some(0));
            if !caught_up {
                return None;
            }
            all.push(leader_end);
        }
        Some(all)
    })
    .await;
    assert_eq!(caught_up.iter().sum::<i64>(), N, "log ends {caught_up:?}");
    // A follower's SPU gone: its copy is unknown, the others still known.
    let d = admin.describe_topic("tracked").await.unwrap();
    let p = &d.partition_details[0];
    let follower = *p
        .replicas
        .iter()
        .find(|r| Some(**r) != p.leader && **r != 0)
        .unwrap();
    spus[follower as usize].crash();
    let ends = admin.replica_log_ends("tracked", p).await;
    for e in &ends {
        if e.replica == follower {
            assert_eq!((e.log_end, e.lag), (None, None), "{ends:?}");
        } else {
            let end = caught_up[p.partition as usize];
            assert_eq!((e.log_end, e.lag), (Some(end), Some(0)), "{ends:?}");
        }
    }
    for s in spus {
        s.stop().await;
    }
}

#[tokio::test]
async fn a_gracefully_stopped_leader_hands_over_first_and_producers_see_no_error() {
    let store = MemoryStore::new();
    let mut spus = three(&store).await;
    let rill = Rill::connect_to(&spus[0].addr()).await.unwrap();
    replicated(&rill, "handover", 3, "2").await;
    let before = rill.admin().describe_topic("handover").await.unwrap();
    // A leader other than the bootstrap SPU (the client keeps its first
    // connection); placement spreads three leaders over the three SPUs.
    let victim = before
        .partition_details
        .iter()
        .filter_map(|p| p.leader)
        .find(|l| *l != 0)
        .expect("a partition led by SPU 1 or 2");
    let mut config = patient();
    config.isolation = Isolation::ReadCommitted;
    config.idempotent = true;
    let producer = rill
        .topic_producer_with_config("handover", config)
        .await
        .unwrap();
    const KEYS: usize = 12;
    const N: usize = 1200;
    let mut outputs = Vec::new();
    let mut stopping = None;
    for i in 0..N {
        if i == N / 4 {
            // The server's own shutdown path, as SIGTERM and `rill cluster
            // stop` take it, while the producer goes on.
            let handle = spus[victim as usize].handle.take().unwrap();
            stopping = Some(tokio::spawn(async move {
                let started = std::time::Instant::now();
                handle.shutdown().await;
                started.elapsed()
            }));
        }
        outputs.push(
            producer
                .send(format!("key-{}", i % KEYS), format!("{}", i / KEYS))
                .await
                .expect("send takes the record"),
        );
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    producer.flush().await.unwrap();
    let mut failed = Vec::new();
    for (i, o) in outputs.into_iter().enumerate() {
        if let Err(e) = o.wait().await {
            failed.push((i, e.to_string()));
        }
    }
    assert!(failed.is_empty(), "not acknowledged: {failed:?}");
    // The stop ended as soon as the controller had moved its leaderships,
    // not at the bound of the wait for that.
    let took = stopping.unwrap().await.unwrap();
    assert!(
        took < Duration::from_secs(5),
        "the graceful stop took {took:?}: leadership was not handed over"
    );
    // Each partition the stopped SPU led has another leader, at a newer
    // epoch; once its session is gone it is in no ISR.
    let after = eventually("the stopped SPU out of every ISR", || async {
        let d = rill.admin().describe_topic("handover").await.ok()?;
        d.partition_details
            .iter()
            .all(|p| !p.isr.contains(&victim))
            .then_some(d)
    })
    .await;
    for (b, a) in before
        .partition_details
        .iter()
        .zip(&after.partition_details)
    {
        let leader = a.leader.expect("every partition has a leader");
        assert_ne!(leader, victim, "partition {}", a.partition);
        if b.leader == Some(victim) {
            assert!(a.leader_epoch > b.leader_epoch, "{b:?} -> {a:?}");
        }
    }
    // Every acknowledged record once, each key in order.
    let by_key = read_by_key(&rill, "handover", N).await;
    for (key, seqs) in &by_key {
        assert_eq!(seqs, &(0..N / KEYS).collect::<Vec<_>>(), "{key}");
    }
    for s in spus {
        s.stop().await;
    }
}

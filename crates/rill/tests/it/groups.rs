//! Consumer group members (`Rill::consumer_group`) against a real SPU:
//! partitions shared among members, each record read by one member,
//! hand-over on leave and on a lapsed session from committed offsets,
//! resume after an SPU crash.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rill::{
    GroupConfig, GroupConsumer, Offset, Rebalance, RecordKey, Rill, TopicPartition,
    TopicProducerConfigBuilder,
};
use tokio::sync::mpsc;

use crate::spu::TestSpu;

/// An SPU whose groups settle in moments (Kafka's 3 s initial rebalance
/// delay and 6 s least session timeout are for production).
async fn quick_spu() -> TestSpu {
    TestSpu::start_with(|c| {
        c.groups.limits.initial_rebalance_delay = Duration::from_millis(200);
        c.groups.limits.min_session_timeout = Duration::from_millis(500);
    })
    .await
}

type Assignments = Arc<Mutex<BTreeMap<String, Vec<TopicPartition>>>>;

/// A member config that records each member's latest assignment under
/// `name` in `seen`.
fn config(name: &str, seen: &Assignments, auto_commit: Option<Duration>) -> GroupConfig {
    let seen = seen.clone();
    let name = name.to_owned();
    GroupConfig {
        session_timeout: Duration::from_millis(1_500),
        rebalance_timeout: Duration::from_secs(10),
        heartbeat_interval: Duration::from_millis(200),
        auto_commit,
        reset: Offset::Beginning,
        on_rebalance: Some(Arc::new(move |e| {
            let mut seen = seen.lock().unwrap();
            match e {
                Rebalance::Assigned(parts) => {
                    seen.insert(name.clone(), parts.clone());
                }
                Rebalance::Revoked(_) => {
                    seen.remove(&name);
                }
            }
        })),
        ..GroupConfig::default()
    }
}

/// Reads with `member` until stopped, sending `(member, partition,
/// offset, value)` for each record; gives the member back when `stop` is
/// dropped or sent.
fn read_on(
    name: &'static str,
    mut member: GroupConsumer,
    out: mpsc::UnboundedSender<(&'static str, u32, i64, String)>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<GroupConsumer> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = member.next() => {
                    let r = r.expect("a record");
                    let value = String::from_utf8_lossy(&r.record.value).into_owned();
                    let _ = out.send((name, r.record.partition, r.record.offset, value));
                }
                _ = &mut stop => return member,
            }
        }
    })
}

async fn produce(rill: &Rill, topic: &str, from: usize, to: usize) {
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::from_millis(1))
        .build()
        .unwrap();
    let p = rill
        .topic_producer_with_config(topic, config)
        .await
        .unwrap();
    for i in from..to {
        p.send(format!("k{i}"), format!("v{i}")).await.unwrap();
    }
    p.flush().await.unwrap();
}

/// Waits until `seen` holds exactly `members` with `per` partitions each.
async fn settled(seen: &Assignments, members: &[&str], per: &[usize]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        {
            let s = seen.lock().unwrap();
            let sizes: Vec<usize> = members
                .iter()
                .map(|m| s.get(*m).map_or(usize::MAX, Vec::len))
                .collect();
            if s.len() == members.len() && sizes == per {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the group did not settle: {s:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn collect(
    rx: &mut mpsc::UnboundedReceiver<(&'static str, u32, i64, String)>,
    n: usize,
) -> Vec<(&'static str, u32, i64, String)> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
            Ok(Some(r)) => got.push(r),
            _ => panic!("only {} of {n} records came", got.len()),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_share_the_partitions_and_each_record_is_read_once() {
    let spu = quick_spu().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin()
        .create_topic("shared", 6, 1, &[])
        .await
        .unwrap();
    let seen = Assignments::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    for name in ["a", "b"] {
        let m = rill
            .consumer_group("readers", &["shared"], config(name, &seen, None))
            .await
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        stops.push(stop);
        tasks.push(read_on(name, m, tx.clone(), stopped));
    }
    settled(&seen, &["a", "b"], &[3, 3]).await;
    let assignment = seen.lock().unwrap().clone();
    let all: BTreeSet<u32> = assignment
        .values()
        .flatten()
        .map(|tp| tp.partition)
        .collect();
    assert_eq!(all, (0..6).collect(), "every partition assigned once");

    produce(&rill, "shared", 0, 600).await;
    let got = collect(&mut rx, 600).await;
    let distinct: BTreeSet<(u32, i64)> = got.iter().map(|(_, p, o, _)| (*p, *o)).collect();
    assert_eq!(distinct.len(), 600, "no record read twice");
    for (member, partition, _, _) in &got {
        assert!(
            assignment[*member]
                .iter()
                .any(|tp| tp.partition == *partition),
            "{member} read partition {partition} it was not given"
        );
    }
    let values: BTreeSet<String> = got.into_iter().map(|(_, _, _, v)| v).collect();
    assert_eq!(values.len(), 600);
    // Nothing more comes: no record is delivered twice.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err(),
        "a record came twice"
    );
    drop(stops);
    for t in tasks {
        t.await.unwrap().close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_leaves_hands_its_partitions_over_at_its_commits() {
    let spu = quick_spu().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin()
        .create_topic("handover", 4, 1, &[])
        .await
        .unwrap();
    let seen = Assignments::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let every = Some(Duration::from_millis(100));
    let a = rill
        .consumer_group("g", &["handover"], config("a", &seen, every))
        .await
        .unwrap();
    let b = rill
        .consumer_group("g", &["handover"], config("b", &seen, every))
        .await
        .unwrap();
    let (stop_a, stopped_a) = tokio::sync::oneshot::channel();
    let (stop_b, stopped_b) = tokio::sync::oneshot::channel();
    let task_a = read_on("a", a, tx.clone(), stopped_a);
    let task_b = read_on("b", b, tx.clone(), stopped_b);
    settled(&seen, &["a", "b"], &[2, 2]).await;
    produce(&rill, "handover", 0, 400).await;
    let first = collect(&mut rx, 400).await;
    assert!(first.iter().any(|r| r.0 == "b") && first.iter().any(|r| r.0 == "a"));

    // b leaves: its close commits where it stopped, then a takes over.
    stop_b.send(()).unwrap();
    let b = task_b.await.unwrap();
    let b_parts: Vec<TopicPartition> = b.assignment();
    b.close().await.unwrap();
    settled(&seen, &["a"], &[4]).await;
    produce(&rill, "handover", 400, 800).await;
    let second = collect(&mut rx, 400).await;
    assert!(second.iter().all(|r| r.0 == "a"), "only a is left");
    let values: BTreeSet<String> = second.iter().map(|r| r.3.clone()).collect();
    let expected: BTreeSet<String> = (400..800).map(|i| format!("v{i}")).collect();
    assert_eq!(values, expected, "a read exactly the new records");
    assert!(second
        .iter()
        .any(|r| b_parts.iter().any(|tp| tp.partition == r.1)));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err(),
        "a record came twice"
    );
    stop_a.send(()).unwrap();
    task_a.await.unwrap().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_heartbeating_is_replaced_after_its_session() {
    let spu = quick_spu().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("lapse", 2, 1, &[]).await.unwrap();
    let seen = Assignments::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let a = rill
        .consumer_group("g", &["lapse"], config("a", &seen, None))
        .await
        .unwrap();
    let b = rill
        .consumer_group("g", &["lapse"], config("b", &seen, None))
        .await
        .unwrap();
    let (_stop_a, stopped_a) = tokio::sync::oneshot::channel();
    let (stop_b, stopped_b) = tokio::sync::oneshot::channel();
    let task_a = read_on("a", a, tx.clone(), stopped_a);
    let task_b = read_on("b", b, tx.clone(), stopped_b);
    settled(&seen, &["a", "b"], &[1, 1]).await;
    // b vanishes without leaving (dropped: no heartbeats, no LeaveGroup).
    stop_b.send(()).unwrap();
    drop(task_b.await.unwrap());
    seen.lock().unwrap().remove("b");
    settled(&seen, &["a"], &[2]).await;
    produce(&rill, "lapse", 0, 100).await;
    let got = collect(&mut rx, 100).await;
    assert!(got.iter().all(|r| r.0 == "a"));
    let partitions: BTreeSet<u32> = got.iter().map(|r| r.1).collect();
    assert_eq!(partitions, BTreeSet::from([0, 1]));
    task_a.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_crash_and_a_new_member_resumes_there() {
    let mut spu = quick_spu().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin()
        .create_topic("resume", 1, 1, &[])
        .await
        .unwrap();
    produce(&rill, "resume", 0, 200).await;
    let seen = Assignments::default();

    // Nothing committed and reset End: only new records.
    let mut late = rill
        .consumer_group(
            "late",
            &["resume"],
            GroupConfig {
                reset: Offset::End,
                ..config("late", &seen, None)
            },
        )
        .await
        .unwrap();
    assert_eq!(late.try_next().await.unwrap(), None);
    assert_eq!(
        late.positions().values().copied().collect::<Vec<_>>(),
        vec![200]
    );
    late.close().await.unwrap();

    let mut m = rill
        .consumer_group("g", &["resume"], config("m", &seen, None))
        .await
        .unwrap();
    for i in 0..120 {
        let r = m.next().await.unwrap();
        assert_eq!(r.record.offset, i);
        assert_eq!(&*r.topic, "resume");
    }
    m.commit().await.unwrap();
    let described = rill.admin().describe_group("g").await.unwrap();
    let p = &described.partitions[0];
    assert_eq!(
        (p.committed, p.log_end, p.lag),
        (Some(120), Some(200), Some(80))
    );
    assert_eq!(described.members.len(), 1);
    drop(m);

    spu.crash_and_restart().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    let mut again = rill
        .consumer_group("g", &["resume"], config("again", &seen, None))
        .await
        .unwrap();
    // The dropped member's session lapses first (1.5 s), then this one
    // gets the partition at the committed offset.
    let r = tokio::time::timeout(Duration::from_secs(20), again.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.record.offset, 120, "resumed at the committed offset");
    assert_eq!(&r.record.value[..], b"v120");
    again.close().await.unwrap();
}

#[tokio::test]
async fn bad_group_settings_are_refused_before_anything_is_sent() {
    let spu = quick_spu().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("t", 1, 1, &[]).await.unwrap();
    let err = |r: Result<GroupConsumer, rill::RillError>| r.unwrap_err().to_string();
    let e = err(rill
        .consumer_group("", &["t"], GroupConfig::default())
        .await);
    assert!(e.contains("group id is empty"), "{e}");
    let e = err(rill.consumer_group("g", &[], GroupConfig::default()).await);
    assert!(e.contains("no topics"), "{e}");
    let e = err(rill
        .consumer_group("g", &["missing"], GroupConfig::default())
        .await);
    assert!(e.contains("missing"), "{e}");
    let bad = GroupConfig {
        heartbeat_interval: Duration::from_secs(20),
        ..GroupConfig::default()
    };
    let e = err(rill.consumer_group("g", &["t"], bad).await);
    assert!(e.contains("heartbeat interval"), "{e}");
    // A session timeout the SPU refuses comes back as its error.
    let mut m = rill
        .consumer_group(
            "g",
            &["t"],
            GroupConfig {
                session_timeout: Duration::from_millis(300),
                heartbeat_interval: Duration::from_millis(100),
                ..GroupConfig::default()
            },
        )
        .await
        .unwrap();
    let e = m.next().await.unwrap_err().to_string();
    assert!(e.contains("INVALID_SESSION_TIMEOUT"), "{e}");
    let _ = RecordKey::NULL;
}

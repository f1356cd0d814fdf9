//! Three SPUs' members over one store, on virtual time: every view shows
//! the placed topic and its leaders; one SPU dies and the views show its
//! partitions leaderless; the controller dies and another takes over.

use std::sync::Arc;
use std::time::Duration;

use rill_cluster::{
    keys, ClusterMember, ClusterView, Expect, MemoryStore, MetadataStore, TopicSpec, NO_LEADER,
};

const TIMEOUT: Duration = Duration::from_millis(6000);

async fn until(member: &ClusterMember, ready: impl Fn(&ClusterView) -> bool) -> Arc<ClusterView> {
    let mut rx = member.subscribe();
    let seen = tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|v| ready(v)))
        .await
        .expect("the view did not get there within 30 s of virtual time")
        .expect("member stopped")
        .clone();
    seen
}

#[tokio::test(start_paused = true)]
async fn every_member_sees_placement_failures_and_a_new_controller() {
    let store = MemoryStore::new();
    let mut members = Vec::new();
    for id in 0..3u32 {
        members.push(Some(
            ClusterMember::start(
                store.clone(),
                id,
                &format!("127.0.0.1:{}", 9092 + id),
                TIMEOUT,
            )
            .await
            .unwrap(),
        ));
    }
    let spec = TopicSpec {
        id: 1,
        partitions: 6,
        replication: 1,
        configs: vec![],
        assignment: vec![],
    };
    store
        .put(&keys::topic("t"), spec.encode(), Expect::Absent, None)
        .await
        .unwrap();
    let placed = until(members[2].as_ref().unwrap(), |v| {
        v.topic_partitions("t").count() == 6
    })
    .await;
    assert_eq!(placed.spus.len(), 3);
    let controller = placed.controller.expect("a controller");
    for m in members.iter().flatten() {
        let v = until(m, |v| v.topic_partitions("t").count() == 6).await;
        assert_eq!(
            v.partitions,
            placed.partitions,
            "SPU {} sees the same",
            m.id()
        );
    }
    // A non-controller SPU dies.
    let victim = (0..3).find(|id| *id != controller).unwrap();
    members[victim as usize] = None;
    let witness = members.iter().flatten().next().unwrap();
    let after = until(witness, |v| {
        !v.spus.contains_key(&victim) && v.topic_partitions("t").any(|(_, s)| s.leader == NO_LEADER)
    })
    .await;
    for (p, s) in after.topic_partitions("t") {
        let before = &placed.partitions[&("t".to_string(), p)];
        let expected = if before.leader == victim as i32 {
            NO_LEADER
        } else {
            before.leader
        };
        assert_eq!(s.leader, expected, "partition {p}");
    }
    // The controller dies too: the last SPU takes over and still acts.
    members[controller as usize] = None;
    let last = members.iter().flatten().next().unwrap();
    let id = last.id();
    until(last, |v| v.controller == Some(id)).await;
    store.delete(&keys::topic("t"), Expect::Any).await.unwrap();
    until(last, |v| v.topic_partitions("t").count() == 0).await;
}

/// A member that is not the controller and loses its session (it lost the
/// store for longer than the session timeout, as an SPU cut off from etcd
/// does) registers again once it can: it must not stay in its campaign,
/// waiting for the live controller's key to go, out of the cluster for
/// good (found by the reliability isolation suite).
#[tokio::test(start_paused = true)]
async fn a_member_whose_session_lapsed_registers_again() {
    let store = MemoryStore::new();
    let first = ClusterMember::start(store.clone(), 0, "127.0.0.1:9092", TIMEOUT)
        .await
        .unwrap();
    until(&first, |v| v.controller == Some(0)).await;
    let second = ClusterMember::start(store.clone(), 1, "127.0.0.1:9093", TIMEOUT)
        .await
        .unwrap();
    until(&first, |v| v.spus.contains_key(&1)).await;
    let lease = store
        .get(&keys::spu(1))
        .await
        .unwrap()
        .and_then(|e| e.lease)
        .expect("SPU 1's registration has a lease");
    // The session lapses (as at the session timeout).
    store.revoke_lease(lease).await.unwrap();
    until(&first, |v| !v.spus.contains_key(&1)).await;
    let back = until(&first, |v| v.spus.contains_key(&1)).await;
    assert_eq!(back.controller, Some(0), "the controller stays");
    let again = store.get(&keys::spu(1)).await.unwrap().unwrap();
    assert_ne!(again.lease, Some(lease), "a new session");
    drop(second);
}

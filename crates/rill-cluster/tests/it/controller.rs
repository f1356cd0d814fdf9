//! The controller against a store, on virtual time: it places a new topic,
//! moves leadership off a dead SPU (or leaves a partition leaderless when
//! no in-sync copy lives), gives it back, survives its own failover, and a
//! deposed controller writes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use rill_cluster::controller::{self, apply, load_view, Action, ControllerError};
use rill_cluster::{
    campaign, keys, Expect, MemoryStore, MetadataStore, PartitionState, Session, TopicSpec,
    NO_LEADER,
};

const TIMEOUT: Duration = Duration::from_millis(6000);

async fn join(store: &MemoryStore, id: u32) -> Session {
    Session::join(store, id, &format!("127.0.0.1:{}", 9092 + id), TIMEOUT)
        .await
        .unwrap()
}

/// Runs SPU `session`'s campaign and controller in a task.
fn control(store: &MemoryStore, session: Session) -> tokio::task::JoinHandle<Session> {
    let store = store.clone();
    tokio::spawn(async move {
        let leadership = campaign(&store, &session).await.unwrap();
        let _ = controller::run(&store, &session, leadership).await;
        session
    })
}

/// Partition states of `topic` once `ready` holds for them (polling on
/// virtual time).
async fn wait_for(
    store: &MemoryStore,
    topic: &str,
    ready: impl Fn(&BTreeMap<u32, PartitionState>) -> bool,
) -> BTreeMap<u32, PartitionState> {
    for _ in 0..400 {
        let view = load_view(store).await.unwrap();
        let states: BTreeMap<u32, PartitionState> = view
            .partitions
            .into_iter()
            .filter(|((t, _), _)| t == topic)
            .map(|((_, p), (s, _))| (p, s))
            .collect();
        if ready(&states) {
            return states;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the controller did not get there in 20 s of virtual time");
}

fn leaders(states: &BTreeMap<u32, PartitionState>) -> Vec<i32> {
    states.values().map(|s| s.leader).collect()
}

#[tokio::test(start_paused = true)]
async fn the_controller_places_fails_over_and_gives_leadership_back() {
    let store = MemoryStore::new();
    let s0 = join(&store, 0).await;
    let mut s1 = Some(join(&store, 1).await);
    let s2 = join(&store, 2).await;
    let c0 = control(&store, s0);
    let topic = TopicSpec {
        id: 1,
        partitions: 6,
        replication: 1,
        configs: vec![],
        assignment: vec![],
    };
    store
        .put(&keys::topic("orders"), topic.encode(), Expect::Absent, None)
        .await
        .unwrap();
    let placed = wait_for(&store, "orders", |s| s.len() == 6).await;
    let mut per_spu: BTreeMap<i32, usize> = BTreeMap::new();
    for l in leaders(&placed) {
        *per_spu.entry(l).or_default() += 1;
    }
    assert_eq!(
        per_spu.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{per_spu:?}"
    );

    // SPU 1 dies: its two partitions have no other copy, so no leader.
    drop(s1.take());
    let down = wait_for(&store, "orders", |s| leaders(s).contains(&NO_LEADER)).await;
    for (p, state) in &down {
        let before = &placed[p];
        if before.leader == 1 {
            assert_eq!(
                (state.leader, state.leader_epoch),
                (NO_LEADER, 1),
                "partition {p}"
            );
            assert_eq!(state.isr, [1], "the ISR keeps the copy that had everything");
        } else {
            assert_eq!(state, before, "others untouched");
        }
    }
    // It comes back: its partitions lead again, with a new epoch.
    let _s1 = join(&store, 1).await;
    let back = wait_for(&store, "orders", |s| !leaders(s).contains(&NO_LEADER)).await;
    assert_eq!(leaders(&back), leaders(&placed));
    assert!(back
        .values()
        .filter(|s| s.leader == 1)
        .all(|s| s.leader_epoch == 2));

    // The controller dies; SPU 2 takes over and still acts.
    c0.abort();
    let c2 = control(&store, s2);
    store
        .delete(&keys::topic("orders"), Expect::Any)
        .await
        .unwrap();
    wait_for(&store, "orders", |s| s.is_empty()).await;
    c2.abort();
}

#[tokio::test(start_paused = true)]
async fn a_deposed_controller_writes_nothing() {
    let store = MemoryStore::new();
    let s0 = join(&store, 0).await;
    let old = campaign(&store, &s0).await.unwrap();
    // Its session lapses (paused too long); another SPU is elected.
    store.revoke_lease(s0.lease()).await.unwrap();
    let s1 = join(&store, 1).await;
    campaign(&store, &s1).await.unwrap();
    let action = Action::Create {
        topic: "t".into(),
        partition: 0,
        state: PartitionState::new(vec![0]),
    };
    assert_eq!(
        apply(&store, &[action], old).await,
        Err(ControllerError::Deposed)
    );
    assert!(store.get(&keys::partition("t", 0)).await.unwrap().is_none());
}

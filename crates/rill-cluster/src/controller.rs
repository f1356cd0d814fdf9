//! The controller: from what the store says (live SPUs, topics, partition
//! states) it decides what to write, as a pure function ([`plan`]), and a
//! small loop ([`run`]) lists, plans, writes and waits for the next change.
//!
//! What it decides:
//! - a topic whose partitions have no state yet gets them placed: on the
//!   replicas its creator assigned, else by [`crate::place`]; each led by
//!   its first replica;
//! - a partition whose topic is gone is deleted;
//! - a partition whose leader is not live gets a new leader: the first
//!   live member of its ISR, and the ISR loses its dead members; with no
//!   live ISR member it has no leader (`-1`, `LEADER_NOT_AVAILABLE`) and
//!   keeps its last ISR, so the replica that had everything leads again
//!   when it returns. A replica outside the ISR leads only if the topic
//!   enables unclean election. Every leader change bumps `leader_epoch`;
//! - an ISR member whose current session began after the partition's
//!   state was written restarted since (the controller may not have seen
//!   it go: both changes can reach it in one look, or it was elected after
//!   the restart); its log may have lost an unsynced tail, so it is
//!   handled as a failure and a return, as Kafka handles a bounced broker
//!   ([`bounced`]): it leaves the ISR unless nobody else is left in it, and
//!   a leader so restarted gives way to a member that stayed up, or, with
//!   none, leads again only at the next epoch;
//! - a follower that is not live leaves the ISR of a partition whose
//!   leader is (at the same leader epoch);
//! - a partition led by an SPU that is stopping gracefully (its mark under
//!   [`keys::STOPPING`]) is handed to the first other live member of its
//!   ISR not stopping too, and the stopping SPU leaves the ISR (controlled
//!   shutdown: producers see a retriable `NOT_LEADER_OR_FOLLOWER`, never
//!   a leaderless partition); with no such member it keeps leading;
//! - a partition led by another replica while its preferred one (the
//!   first) is alive, not stopping and in the ISR goes back to the
//!   preferred one.
//!
//! Every write is guarded on the controller's own election key, so a
//! deposed controller (its session lapsed while it was paused, say) writes
//! nothing: two controllers never act at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::keys;
use crate::membership::{Leadership, Session};
use crate::model::{PartitionState, TopicSpec, NO_LEADER};
use crate::placement::place;
use crate::store::{Expect, Guard, MetadataStore, Revision, StoreError};

/// How long the controller waits for a change before looking again anyway.
const IDLE_RECHECK: Duration = Duration::from_secs(5);

/// What the controller sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub live: BTreeSet<u32>,
    /// The revision at which each live SPU's current session registered
    /// (its registration key's, written once per session): a partition
    /// state written before its leader's session began was written for an
    /// earlier run of that SPU.
    pub joined: BTreeMap<u32, Revision>,
    /// Live SPUs stopping gracefully: they lead nothing they can hand over.
    pub stopping: BTreeSet<u32>,
    pub topics: BTreeMap<String, (TopicSpec, Revision)>,
    pub partitions: BTreeMap<(String, u32), (PartitionState, Revision)>,
    /// The store's revision when listed (the last of the three listings).
    pub revision: Revision,
}

/// One write the controller makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create {
        topic: String,
        partition: u32,
        state: PartitionState,
    },
    Update {
        topic: String,
        partition: u32,
        state: PartitionState,
        expect: Revision,
    },
    Delete {
        topic: String,
        partition: u32,
        expect: Revision,
    },
}

/// Where a topic's placement starts: stable per name, so topics spread.
fn start_for(name: &str) -> usize {
    // FNV-1a: stable across runs and builds, unlike std's hasher.
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) as usize
}

/// The writes that bring the store to what the controller wants.
pub fn plan(view: &View) -> Vec<Action> {
    let mut actions = Vec::new();
    let live: Vec<u32> = view.live.iter().copied().collect();
    for (name, (spec, _)) in &view.topics {
        let missing: Vec<u32> = (0..spec.partitions)
            .filter(|p| !view.partitions.contains_key(&(name.clone(), *p)))
            .collect();
        if missing.is_empty() {
            continue;
        }
        // Partitions beyond the creator's assignment (added later, or
        // none given) are placed over the live SPUs.
        let assigned = |p: u32| spec.assignment.get(p as usize);
        let placed = if missing.iter().all(|p| assigned(*p).is_some()) {
            Vec::new()
        } else {
            match place(
                &live,
                spec.partitions,
                usize::from(spec.replication),
                start_for(name),
            ) {
                Ok(placed) => placed,
                Err(e) => {
                    tracing::warn!(topic = %name, error = %e, "cannot place the topic yet");
                    continue;
                }
            }
        };
        for p in missing {
            if let Some(replicas) = assigned(p).or_else(|| placed.get(p as usize)) {
                actions.push(Action::Create {
                    topic: name.clone(),
                    partition: p,
                    state: PartitionState::new(replicas.clone()),
                });
            }
        }
    }
    // Where leadership may go back to: not to an SPU about to stop.
    let staying: BTreeSet<u32> = view.live.difference(&view.stopping).copied().collect();
    for ((name, p), (state, revision)) in &view.partitions {
        let Some((spec, _)) = view.topics.get(name) else {
            actions.push(Action::Delete {
                topic: name.clone(),
                partition: *p,
                expect: *revision,
            });
            continue;
        };
        let next = bounced(state, *revision, &view.joined, &view.live)
            .or_else(|| elect(state, &view.live, spec.unclean_election()))
            .or_else(|| hand_over(state, &view.live, &view.stopping))
            .or_else(|| fence(state, &view.live))
            .or_else(|| prefer(state, &staying));
        if let Some(next) = next {
            actions.push(Action::Update {
                topic: name.clone(),
                partition: *p,
                state: next,
                expect: *revision,
            });
        }
    }
    actions
}

/// The partition's next state if its leader must change.
fn elect(state: &PartitionState, live: &BTreeSet<u32>, unclean: bool) -> Option<PartitionState> {
    if state.leader().is_some_and(|l| live.contains(&l)) {
        return None;
    }
    let live_isr: Vec<u32> = state
        .isr
        .iter()
        .copied()
        .filter(|r| live.contains(r))
        .collect();
    let (leader, isr) = if let Some(first) = live_isr.first() {
        (*first as i32, live_isr.clone())
    } else if let Some(r) = state.replicas.iter().find(|r| unclean && live.contains(r)) {
        (*r as i32, vec![*r])
    } else {
        // Nobody in sync is alive: no leader, and the ISR keeps its last
        // members (whoever returns first with everything leads again).
        (NO_LEADER, state.isr.clone())
    };
    if leader == state.leader && isr == state.isr {
        return None;
    }
    Some(PartitionState {
        leader,
        isr,
        leader_epoch: state.leader_epoch + i32::from(leader != state.leader),
        partition_epoch: state.partition_epoch + 1,
        replicas: state.replicas.clone(),
    })
}

/// ISR members that registered again after the state was written (live,
/// their session newer than the state) went down and came back since it
/// was written, though the controller may never have seen them gone. With
/// `flush never` such a member may have lost an unsynced tail that it once
/// reported as held, so it counts as in sync no more. As for a failure
/// followed by a return: the restarted members leave the ISR unless that
/// would empty it (then every member restarted, and what they hold is all
/// there is); the leader stays if it stayed up, else the first live member
/// left leads, or nobody (`-1`) until one returns. A leader that restarted
/// and leads again does so at the next epoch: records it writes at offsets
/// of a lost tail must not look like the ones its followers still hold
/// there under the old epoch (KIP-101 compares epochs; bug 8). The members
/// that left rejoin through their leader once caught up.
fn bounced(
    state: &PartitionState,
    revision: Revision,
    joined: &BTreeMap<u32, Revision>,
    live: &BTreeSet<u32>,
) -> Option<PartitionState> {
    let restarted: BTreeSet<u32> = state
        .isr
        .iter()
        .copied()
        .filter(|r| live.contains(r) && joined.get(r).is_some_and(|j| *j > revision))
        .collect();
    if restarted.is_empty() {
        return None;
    }
    let stayed: Vec<u32> = state
        .isr
        .iter()
        .copied()
        .filter(|r| !restarted.contains(r))
        .collect();
    let isr = if stayed.is_empty() {
        state.isr.clone()
    } else {
        stayed
    };
    let leader_restarted = state.leader().is_some_and(|l| restarted.contains(&l));
    let leader = match state.leader() {
        Some(l) if !leader_restarted && live.contains(&l) => state.leader,
        _ => isr
            .iter()
            .find(|r| live.contains(r))
            .map_or(NO_LEADER, |r| *r as i32),
    };
    Some(PartitionState {
        leader,
        isr,
        leader_epoch: state.leader_epoch + i32::from(leader != state.leader || leader_restarted),
        partition_epoch: state.partition_epoch + 1,
        replicas: state.replicas.clone(),
    })
}

/// Dead followers out of the ISR of a partition whose leader is alive: a
/// follower whose session lapsed will not fetch again, and `acks=all`
/// should not wait for the leader's replica lag time to find that out
/// (as Kafka drops a fenced broker from every ISR). Removing a member only
/// lets the high watermark rise to what the remaining members all have,
/// so it is always safe. The leader adopts the new ISR from the store.
fn fence(state: &PartitionState, live: &BTreeSet<u32>) -> Option<PartitionState> {
    let leader = state.leader()?;
    let isr: Vec<u32> = state
        .isr
        .iter()
        .copied()
        .filter(|r| *r == leader || live.contains(r))
        .collect();
    (isr != state.isr).then(|| PartitionState {
        isr,
        partition_epoch: state.partition_epoch + 1,
        ..state.clone()
    })
}

/// Leadership away from an SPU stopping gracefully, before it goes: to the
/// first other live ISR member that is not stopping too, at the next
/// leader epoch (the stopping leader's last appends are fenced). The
/// stopping SPU leaves the ISR, so `acks=all` does not wait on a copy that
/// is about to stop fetching. Without another live in-sync replica the
/// partition stays where it is: a leader for a while more is better than
/// none (it goes through [`elect`] once the SPU's session is gone).
fn hand_over(
    state: &PartitionState,
    live: &BTreeSet<u32>,
    stopping: &BTreeSet<u32>,
) -> Option<PartitionState> {
    let leader = state.leader()?;
    if !stopping.contains(&leader) {
        return None;
    }
    let next = *state
        .isr
        .iter()
        .find(|r| **r != leader && live.contains(r) && !stopping.contains(r))?;
    Some(PartitionState {
        leader: next as i32,
        isr: state.isr.iter().copied().filter(|r| *r != leader).collect(),
        leader_epoch: state.leader_epoch + 1,
        partition_epoch: state.partition_epoch + 1,
        replicas: state.replicas.clone(),
    })
}

/// Leadership back to the partition's preferred replica (its first, where
/// placement spread leaders over the SPUs) once that replica is alive and
/// in sync again after a failover, so leaders do not pile up on the SPUs
/// that stayed up (Kafka's `auto.leader.rebalance.enable`, here at once).
fn prefer(state: &PartitionState, live: &BTreeSet<u32>) -> Option<PartitionState> {
    let preferred = *state.replicas.first()?;
    let leader = state.leader()?;
    if leader == preferred || !live.contains(&preferred) || !state.isr.contains(&preferred) {
        return None;
    }
    Some(PartitionState {
        leader: preferred as i32,
        leader_epoch: state.leader_epoch + 1,
        partition_epoch: state.partition_epoch + 1,
        ..state.clone()
    })
}

/// Lists what the controller needs to see, in one listing of `/rill/`
/// (one revision: a watch from it misses nothing).
pub async fn load_view<S: MetadataStore>(store: &S) -> Result<View, StoreError> {
    let listing = store.list(keys::ROOT).await?;
    let mut view = View {
        revision: listing.revision,
        ..View::default()
    };
    for e in listing.entries {
        if let Some(id) = keys::spu_id(&e.key) {
            view.live.insert(id);
            view.joined.insert(id, e.mod_revision);
        } else if let Some(id) = keys::stopping_id(&e.key) {
            view.stopping.insert(id);
        } else if let Some(name) = e.key.strip_prefix(keys::TOPICS) {
            view.topics.insert(
                name.to_owned(),
                (TopicSpec::decode(&e.value)?, e.mod_revision),
            );
        } else if let Some(at) = keys::parse_partition(&e.key) {
            view.partitions
                .insert(at, (PartitionState::decode(&e.value)?, e.mod_revision));
        }
    }
    Ok(view)
}

/// Why the controller stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// Another SPU holds the election key now (or the session lapsed).
    #[error("no longer the controller")]
    Deposed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `actions`, each guarded on the controller's election. Stops at
/// the first conflict on a partition (the view was stale: list again) and
/// says how many went through.
pub async fn apply<S: MetadataStore>(
    store: &S,
    actions: &[Action],
    leadership: Leadership,
) -> Result<usize, ControllerError> {
    let guard = Some(Guard {
        key: keys::CONTROLLER,
        mod_revision: leadership.revision,
    });
    for (done, action) in actions.iter().enumerate() {
        let result = match action {
            Action::Create {
                topic,
                partition,
                state,
            } => {
                store
                    .put_guarded(
                        &keys::partition(topic, *partition),
                        state.encode(),
                        Expect::Absent,
                        None,
                        guard,
                    )
                    .await
            }
            Action::Update {
                topic,
                partition,
                state,
                expect,
            } => {
                tracing::info!(topic = %topic, partition, leader = state.leader, epoch = state.leader_epoch, "partition leader changed");
                store
                    .put_guarded(
                        &keys::partition(topic, *partition),
                        state.encode(),
                        Expect::ModRevision(*expect),
                        None,
                        guard,
                    )
                    .await
            }
            Action::Delete {
                topic,
                partition,
                expect,
            } => {
                store
                    .delete_guarded(
                        &keys::partition(topic, *partition),
                        Expect::ModRevision(*expect),
                        guard,
                    )
                    .await
            }
        };
        match result {
            Ok(_) => {}
            Err(StoreError::Conflict { key, .. }) if key == keys::CONTROLLER => {
                return Err(ControllerError::Deposed)
            }
            Err(StoreError::Conflict { .. }) => return Ok(done),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(actions.len())
}

/// Acts as controller until deposed or the session lapses: list, plan,
/// write, then wait for the next change under `/rill/`.
pub async fn run<S: MetadataStore>(
    store: &S,
    session: &Session,
    leadership: Leadership,
) -> Result<(), ControllerError> {
    loop {
        if session.is_lost() {
            return Err(ControllerError::Deposed);
        }
        let view = load_view(store).await?;
        let actions = plan(&view);
        if !actions.is_empty() {
            apply(store, &actions, leadership).await?;
            continue; // look again at what the writes changed
        }
        let mut watch = store.watch(keys::ROOT, view.revision).await?;
        // Any change under /rill/ (or a quiet while) means: look again.
        let _ = tokio::time::timeout(IDLE_RECHECK, watch.next()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(partitions: u32, replication: u16) -> TopicSpec {
        TopicSpec {
            id: 1,
            partitions,
            replication,
            configs: vec![],
            assignment: vec![],
        }
    }

    fn view(live: &[u32]) -> View {
        View {
            live: live.iter().copied().collect(),
            ..View::default()
        }
    }

    #[test]
    fn a_new_topic_is_placed_over_the_live_spus() {
        let mut v = view(&[0, 1, 2]);
        v.topics.insert("t".into(), (spec(6, 1), 1));
        let actions = plan(&v);
        assert_eq!(actions.len(), 6);
        let leaders: BTreeSet<i32> = actions
            .iter()
            .map(|a| match a {
                Action::Create { state, .. } => state.leader,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(leaders.len(), 3, "every SPU leads some");
    }

    #[test]
    fn an_assigned_topic_is_created_on_its_replicas_led_by_the_first() {
        let mut v = view(&[0, 1, 2]);
        let assigned = TopicSpec {
            assignment: vec![vec![2, 1], vec![2, 0]],
            ..spec(3, 2)
        };
        v.topics.insert("t".into(), (assigned, 1));
        let actions = plan(&v);
        let states: Vec<(u32, &PartitionState)> = actions
            .iter()
            .map(|a| match a {
                Action::Create {
                    partition, state, ..
                } => (*partition, state),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(states.len(), 3);
        assert_eq!(states[0].1.replicas, [2, 1]);
        assert_eq!(states[0].1.leader, 2);
        assert_eq!(states[1].1.replicas, [2, 0]);
        assert_eq!(
            states[2].1.replicas.len(),
            2,
            "a partition beyond the assignment is placed"
        );
    }

    #[test]
    fn a_dead_leader_is_replaced_from_the_isr_with_a_new_epoch() {
        let mut v = view(&[1, 2]);
        v.topics.insert("t".into(), (spec(1, 3), 1));
        let state = PartitionState {
            replicas: vec![0, 1, 2],
            leader: 0,
            leader_epoch: 3,
            isr: vec![0, 2],
            partition_epoch: 5,
        };
        v.partitions.insert(("t".into(), 0), (state, 7));
        let actions = plan(&v);
        let [Action::Update { state, expect, .. }] = actions.as_slice() else {
            panic!("{actions:?}")
        };
        assert_eq!(*expect, 7);
        assert_eq!(state.leader, 2, "from the ISR, not replica 1 (out of sync)");
        assert_eq!(state.isr, [2]);
        assert_eq!((state.leader_epoch, state.partition_epoch), (4, 6));
    }

    #[test]
    fn the_preferred_replica_leads_again_once_back_in_sync() {
        let mut v = view(&[0, 1, 2]);
        v.topics.insert("t".into(), (spec(1, 3), 1));
        let moved = PartitionState {
            replicas: vec![0, 1, 2],
            leader: 1,
            leader_epoch: 4,
            isr: vec![1, 2],
            partition_epoch: 6,
        };
        // Back but not caught up: leadership stays.
        v.partitions.insert(("t".into(), 0), (moved.clone(), 8));
        assert!(plan(&v).is_empty());
        // In the ISR again: it leads, at the next epoch.
        let synced = PartitionState {
            isr: vec![0, 1, 2],
            partition_epoch: 7,
            ..moved
        };
        v.partitions.insert(("t".into(), 0), (synced, 9));
        let actions = plan(&v);
        let [Action::Update { state, expect, .. }] = actions.as_slice() else {
            panic!("{actions:?}")
        };
        assert_eq!(*expect, 9);
        assert_eq!((state.leader, state.leader_epoch), (0, 5));
        assert_eq!(state.isr, [0, 1, 2]);
    }

    #[test]
    fn a_stopping_leader_hands_over_to_another_live_isr_member_and_does_not_get_it_back() {
        let mut v = view(&[0, 1, 2]);
        v.stopping.insert(0);
        v.topics.insert("t".into(), (spec(1, 3), 1));
        let state = PartitionState {
            replicas: vec![0, 1, 2],
            leader: 0,
            leader_epoch: 2,
            isr: vec![0, 1, 2],
            partition_epoch: 3,
        };
        v.partitions.insert(("t".into(), 0), (state.clone(), 5));
        let actions = plan(&v);
        let [Action::Update {
            state: next,
            expect,
            ..
        }] = actions.as_slice()
        else {
            panic!("{actions:?}")
        };
        assert_eq!(*expect, 5);
        assert_eq!(
            (next.leader, next.leader_epoch, next.partition_epoch),
            (1, 3, 4)
        );
        assert_eq!(next.isr, [1, 2], "the stopping SPU leaves the ISR");
        assert_eq!(next.replicas, [0, 1, 2]);
        // Caught up again as a follower, the preferred replica still does
        // not lead while it is stopping.
        let rejoined = PartitionState {
            isr: vec![1, 2, 0],
            partition_epoch: 5,
            ..next.clone()
        };
        v.partitions.insert(("t".into(), 0), (rejoined, 6));
        assert!(plan(&v).is_empty(), "{:?}", plan(&v));
        // A stopping SPU is not handed leadership either: 1 stops too, 2
        // is the only one left to lead.
        let mut stopping: BTreeSet<u32> = [0, 1].into();
        let to_two = hand_over(&state, &v.live, &stopping).unwrap();
        assert_eq!((to_two.leader, to_two.isr.as_slice()), (2, &[1, 2][..]));
        // Nobody else in sync and alive: it keeps leading until it goes.
        stopping.insert(2);
        assert_eq!(hand_over(&state, &v.live, &stopping), None);
        let alone = PartitionState {
            isr: vec![0],
            ..state.clone()
        };
        assert_eq!(hand_over(&alone, &v.live, &[0].into()), None);
        assert_eq!(hand_over(&state, &[0].into(), &[0].into()), None);
    }

    #[test]
    fn a_dead_follower_leaves_the_isr_at_the_same_leader_epoch() {
        let mut v = view(&[0, 2]);
        v.topics.insert("t".into(), (spec(1, 3), 1));
        let state = PartitionState {
            replicas: vec![0, 1, 2],
            leader: 0,
            leader_epoch: 2,
            isr: vec![0, 1, 2],
            partition_epoch: 3,
        };
        v.partitions.insert(("t".into(), 0), (state, 5));
        let actions = plan(&v);
        let [Action::Update { state, .. }] = actions.as_slice() else {
            panic!("{actions:?}")
        };
        assert_eq!(state.isr, [0, 2]);
        assert_eq!(
            (state.leader, state.leader_epoch, state.partition_epoch),
            (0, 2, 4)
        );
    }

    /// The partition state (leader 0, ISR all three) was written at
    /// revision 40; `joined` gives each live SPU's session start.
    fn bounce_view(live: &[u32], joined: &[(u32, Revision)]) -> (View, PartitionState) {
        let mut v = view(live);
        v.topics.insert("t".into(), (spec(1, 3), 1));
        let state = PartitionState {
            replicas: vec![0, 1, 2],
            leader: 0,
            leader_epoch: 0,
            isr: vec![0, 1, 2],
            partition_epoch: 2,
        };
        v.partitions.insert(("t".into(), 0), (state.clone(), 40));
        v.joined.extend(joined.iter().copied());
        (v, state)
    }

    fn only_update(v: &View) -> PartitionState {
        let actions = plan(v);
        let [Action::Update {
            state: next,
            expect: 40,
            ..
        }] = actions.as_slice()
        else {
            panic!("{actions:?}")
        };
        next.clone()
    }

    /// Bug 8 (RELIABILITY.md): all three SPUs lost power at once and came
    /// back. SPU 0, recorded as leader at epoch 0, once went on at epoch 0
    /// from a log that had lost its unsynced tail, writing new records at
    /// offsets its followers still held from before under the same epoch.
    /// Every member restarted: the first leads, at the next epoch.
    #[test]
    fn every_isr_member_back_in_a_new_session_the_first_leads_at_the_next_epoch() {
        let (mut v, state) = bounce_view(&[0, 1, 2], &[(0, 57), (1, 58), (2, 59)]);
        let next = only_update(&v);
        assert_eq!(
            (next.leader, next.leader_epoch, next.partition_epoch),
            (0, 1, 3)
        );
        assert_eq!(next.isr, [0, 1, 2], "nobody better to wait for");
        // Written after their sessions began: nothing more to do.
        v.partitions.insert(("t".into(), 0), (next, 60));
        assert!(plan(&v).is_empty());
        // Sessions older than the state are left alone.
        let (mut v, _) = bounce_view(&[0, 1, 2], &[(0, 12), (1, 45), (2, 46)]);
        v.partitions.insert(("t".into(), 0), (state, 50));
        assert!(plan(&v).is_empty());
    }

    /// Only the recorded leader is back yet: it may have lost a tail the
    /// others hold, so it waits for them.
    #[test]
    fn a_leader_back_alone_in_a_new_session_does_not_lead_before_the_others_return() {
        let (v, _) = bounce_view(&[0], &[(0, 57)]);
        let next = only_update(&v);
        assert_eq!((next.leader, next.leader_epoch), (NO_LEADER, 1));
        assert_eq!(next.isr, [1, 2]);
    }

    /// Bug 11 (RELIABILITY.md): the leader lost power and was back
    /// before the controller looked. It used to lead again at the next
    /// epoch, and the followers truncated the acknowledged tail it had
    /// lost. A member that stayed up leads instead.
    #[test]
    fn a_leader_restarted_unseen_gives_way_to_a_member_that_stayed_up() {
        let (v, _) = bounce_view(&[0, 1, 2], &[(0, 57), (1, 12), (2, 13)]);
        let next = only_update(&v);
        assert_eq!((next.leader, next.leader_epoch), (1, 1));
        assert_eq!(next.isr, [1, 2], "0 rejoins once caught up");
    }

    /// The CI failure of bug 11: follower 2 lost power and came back, then
    /// leader 0 died, and the controller saw both at once. 2 may lack what
    /// was acknowledged: it must not lead; the partition waits for 0.
    #[test]
    fn a_follower_restarted_unseen_is_not_elected_when_the_leader_dies() {
        let (v, _) = bounce_view(&[1, 2], &[(1, 12), (2, 57)]);
        let next = only_update(&v);
        assert_eq!((next.leader, next.leader_epoch), (1, 1), "1 stayed up");
        assert_eq!(next.isr, [0, 1], "2 out; dead 0 goes in the next write");
        let (mut v, _) = bounce_view(&[2], &[(2, 57)]);
        v.partitions.get_mut(&("t".to_owned(), 0)).unwrap().0.isr = vec![0, 2];
        let next = only_update(&v);
        assert_eq!((next.leader, next.isr.as_slice()), (NO_LEADER, &[0][..]));
        // A follower restarted under a leader that stayed up just leaves.
        let (v, _) = bounce_view(&[0, 1, 2], &[(0, 10), (1, 11), (2, 57)]);
        let next = only_update(&v);
        assert_eq!(
            (next.leader, next.leader_epoch, next.isr.as_slice()),
            (0, 0, &[0, 1][..])
        );
    }

    #[test]
    fn without_a_live_isr_member_there_is_no_leader_unless_unclean() {
        let state = PartitionState {
            replicas: vec![0, 1],
            leader: 0,
            leader_epoch: 1,
            isr: vec![0],
            partition_epoch: 1,
        };
        let live: BTreeSet<u32> = [1].into();
        let next = elect(&state, &live, false).unwrap();
        assert_eq!((next.leader, next.isr.as_slice()), (NO_LEADER, &[0][..]));
        assert_eq!(
            elect(&next, &live, false),
            None,
            "nothing changes while 0 is away"
        );
        let unclean = elect(&state, &live, true).unwrap();
        assert_eq!((unclean.leader, unclean.isr.as_slice()), (1, &[1][..]));
        // 0 returns: it leads again.
        let back = elect(&next, &[0, 1].into(), false).unwrap();
        assert_eq!((back.leader, back.leader_epoch), (0, 3));
    }

    #[test]
    fn partitions_of_a_deleted_topic_go() {
        let mut v = view(&[0]);
        v.partitions
            .insert(("gone".into(), 0), (PartitionState::new(vec![0]), 4));
        assert_eq!(
            plan(&v),
            [Action::Delete {
                topic: "gone".into(),
                partition: 0,
                expect: 4
            }]
        );
    }

    #[test]
    fn a_healthy_cluster_needs_no_writes() {
        let mut v = view(&[0, 1]);
        v.topics.insert("t".into(), (spec(2, 2), 1));
        for (p, replicas) in [(0, vec![0, 1]), (1, vec![1, 0])] {
            v.partitions
                .insert(("t".into(), p), (PartitionState::new(replicas), 2));
        }
        assert!(plan(&v).is_empty());
    }
}

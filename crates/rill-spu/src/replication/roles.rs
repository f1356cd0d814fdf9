//! What this SPU does for each partition it holds in a cluster, as the
//! store says: lead it (a [`Leadership`] at the store's leader epoch, the
//! epoch written into the log's leader-epoch history before any request is
//! let in), follow it (a copy loop from the leader), or neither (no leader
//! now). And the ISR changes a leader proposes, written to the store with
//! compare-and-swap on the partition's state.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rill_cluster::{keys, AnyStore, Expect, MetadataStore, PartitionState, Revision};
use tokio::task::JoinHandle;

use super::follower::{self, FollowTarget};
use super::isr::IsrConfig;
use super::leader::Leadership;
use crate::registry::{Partition, Registry, NOT_LEADER};
use crate::writer::{lock, raise_high_watermark};

/// How often leaders look for ISR changes to write.
pub const ISR_CHECK_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Following {
    target: FollowTarget,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Following {
    fn end(self) {
        self.stop.store(true, Ordering::Release);
        self.task.abort();
    }
}

/// This SPU's replication roles.
#[derive(Debug)]
pub(crate) struct Roles {
    me: u32,
    replica_lag_time_max: Duration,
    runtime: tokio::runtime::Handle,
    following: Mutex<HashMap<(String, i32), Following>>,
    /// Set when the SPU leaves: a reconcile still running on a blocking
    /// thread (it cannot be aborted) starts no copy loop after that.
    closed: AtomicBool,
}

impl Roles {
    pub fn new(me: u32, replica_lag_time_max: Duration, runtime: tokio::runtime::Handle) -> Self {
        Self {
            me,
            replica_lag_time_max,
            runtime,
            following: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// Leads `partition` at `state`'s leader epoch (blocking: writes the
    /// leader-epoch file). Nothing changes if it already does, but the
    /// followers' `sessions` (the store revision of each live SPU's
    /// registration) are noted: one in a new session restarted.
    pub fn lead(
        &self,
        topic: &str,
        p: i32,
        partition: &Arc<Partition>,
        state: &PartitionState,
        min_insync_replicas: i32,
        sessions: &BTreeMap<u32, Revision>,
    ) {
        let epoch = state.leader_epoch;
        if partition.leader_epoch() == epoch {
            if let Some(l) = partition.leadership().filter(|l| l.epoch == epoch) {
                // Still leading; the controller may have dropped a dead
                // follower from the ISR in the store.
                l.note_sessions(sessions);
                if let Some(hw) = l.adopt_isr(&state.isr, state.partition_epoch) {
                    raise_high_watermark(&mut partition.log(), hw);
                }
                return;
            }
        }
        self.stop_following(topic, p);
        // No request gets in while the leadership changes hands.
        partition.set_leader_epoch(NOT_LEADER);
        let leadership = {
            let mut log = partition.log();
            if let Err(e) = log.begin_leader_epoch(epoch) {
                tracing::error!(topic, partition = p, epoch, error = %e, "cannot record the leader epoch; not leading");
                return;
            }
            let config = IsrConfig {
                replica_lag_time_max: self.replica_lag_time_max,
                min_insync_replicas: usize::try_from(min_insync_replicas).unwrap_or(1),
            };
            let l = Leadership::new(
                epoch,
                state.partition_epoch,
                config,
                self.me,
                &state.replicas,
                state.isr.clone(),
                log.log_end_offset() as i64,
                log.high_watermark() as i64,
                Instant::now(),
            );
            l.note_sessions(sessions);
            raise_high_watermark(&mut log, l.high_watermark());
            Arc::new(l)
        };
        partition.set_leadership(Some(leadership));
        partition.set_leader_epoch(epoch);
        tracing::info!(topic, partition = p, epoch, "leading");
    }

    /// Follows `partition` from `leader` at `leader_addr`, or (`None`)
    /// copies nothing now (it has no leader).
    pub fn follow(
        &self,
        topic: &str,
        p: i32,
        partition: &Arc<Partition>,
        leader: Option<(u32, String)>,
        leader_epoch: i32,
    ) {
        partition.set_leader_epoch(NOT_LEADER);
        partition.set_leadership(None);
        let Some((leader, leader_addr)) = leader else {
            self.stop_following(topic, p);
            return;
        };
        let target = FollowTarget {
            topic: topic.to_owned(),
            partition: p,
            leader,
            leader_addr,
            leader_epoch,
        };
        let key = (topic.to_owned(), p);
        let mut following = lock(&self.following);
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        if following
            .get(&key)
            .is_some_and(|f| f.target == target && !f.task.is_finished())
        {
            return;
        }
        if let Some(old) = following.remove(&key) {
            old.end();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let task = self.runtime.spawn(follower::run(
            self.me,
            target.clone(),
            partition.clone(),
            stop.clone(),
        ));
        tracing::info!(topic, partition = p, leader, leader_epoch, "following");
        following.insert(key, Following { target, stop, task });
    }

    pub fn stop_following(&self, topic: &str, p: i32) {
        if let Some(f) = lock(&self.following).remove(&(topic.to_owned(), p)) {
            f.end();
        }
    }

    /// Stops every copy loop whose partition `keep` does not name.
    pub fn retain_following(&self, keep: impl Fn(&str, i32) -> bool) {
        let mut following = lock(&self.following);
        let gone: Vec<_> = following
            .keys()
            .filter(|(t, p)| !keep(t, *p))
            .cloned()
            .collect();
        for key in gone {
            if let Some(f) = following.remove(&key) {
                f.end();
            }
        }
    }

    /// Stops every copy loop, for good (the SPU is leaving).
    pub fn stop_all(&self) {
        {
            let _following = lock(&self.following);
            self.closed.store(true, Ordering::Release);
        }
        self.retain_following(|_, _| false);
    }
}

/// Every `ISR_CHECK_INTERVAL`, writes the ISR changes this SPU's leaders
/// propose; runs until the task is aborted.
pub(crate) async fn write_isr_changes(me: u32, registry: Arc<Registry>, store: AnyStore) {
    let mut tick = tokio::time::interval(ISR_CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for topic in registry.topics() {
            for (p, partition) in topic.hosted() {
                let Some(l) = partition.leadership() else {
                    continue;
                };
                let known = l.isr_version();
                let Some(isr) = l.poll_isr_change(Instant::now()) else {
                    continue;
                };
                let at = Held {
                    epoch: l.epoch,
                    partition_epoch: known,
                };
                match write_isr(&store, me, &topic.spec.name, p as u32, at, &isr).await {
                    Ok(partition_epoch) => {
                        tracing::info!(topic = %topic.spec.name, partition = p, ?isr, "ISR changed");
                        let hw = l.on_isr_committed(isr, partition_epoch);
                        raise_high_watermark(&mut partition.log(), hw);
                        registry.notify_appended();
                    }
                    Err(why) => {
                        tracing::debug!(topic = %topic.spec.name, partition = p, %why, "ISR change not written");
                        l.on_isr_refused();
                    }
                }
            }
        }
    }
}

/// The partition state a leader's ISR proposal was made from.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// The leader epoch it leads at.
    epoch: i32,
    /// The partition epoch of the state whose ISR it held.
    partition_epoch: i32,
}

/// Writes `isr` into the partition's state if this SPU still leads it at
/// `held.epoch` and the state is still the one the proposal was made from
/// (compare-and-swap: a controller's write in between wins, as Kafka's
/// AlterPartition refuses a stale partition epoch; else a member the
/// controller just removed, dead or restarted, would be written back).
/// The partition epoch of the state written.
async fn write_isr(
    store: &AnyStore,
    me: u32,
    topic: &str,
    p: u32,
    held: Held,
    isr: &[u32],
) -> Result<i32, String> {
    let epoch = held.epoch;
    let key = keys::partition(topic, p);
    let entry = store
        .get(&key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the partition is gone")?;
    let state = PartitionState::decode(&entry.value).map_err(|e| e.to_string())?;
    if state.leader() != Some(me) || state.leader_epoch != epoch {
        return Err(format!(
            "no longer the leader at epoch {epoch} (leader {} at {})",
            state.leader, state.leader_epoch
        ));
    }
    if state.partition_epoch != held.partition_epoch {
        return Err(format!(
            "the state changed since (partition epoch {}, the proposal's {})",
            state.partition_epoch, held.partition_epoch
        ));
    }
    let next = PartitionState {
        isr: isr.to_vec(),
        partition_epoch: state.partition_epoch + 1,
        ..state
    };
    store
        .put(
            &key,
            next.encode(),
            Expect::ModRevision(entry.mod_revision),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(next.partition_epoch)
}

//! A partition this SPU leads in a cluster: its [`IsrState`] behind a lock,
//! shared by the writer (appends move the leader's log end), the Fetch
//! handler (followers' fetch offsets move theirs), the produce handler
//! (`acks=all` waits for the high watermark) and the ISR task (changes to
//! the ISR are written to the store).
//!
//! Lock order: this lock is taken with the partition's log lock held (by
//! the writer), never the other way round: the Fetch handler takes this
//! one, lets it go, then takes the log to raise its high watermark.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use tokio::sync::watch;

use super::isr::{AckAll, IsrConfig, IsrState};
use crate::writer::lock;

/// Where the writer and the handlers find the partition's leadership:
/// `None` on a single SPU (its one copy is the whole ISR: every append is
/// committed at once) and on a follower.
pub(crate) type LeaderSlot = Arc<Mutex<Option<Arc<Leadership>>>>;

#[derive(Debug)]
pub(crate) struct Leadership {
    /// The leader epoch this leadership began at.
    pub epoch: i32,
    /// The partition epoch of the store's state whose ISR `state` holds:
    /// a view of the store older than that (a listing made before this
    /// leader's own ISR write, published after it) is not adopted. Taken
    /// before `state` when both are.
    isr_version: Mutex<i32>,
    state: Mutex<IsrState>,
    /// The high watermark as it moves, for `acks=all` waiters.
    high_watermark: watch::Sender<i64>,
    /// Set when this SPU stops leading at this epoch: waiters give up.
    resigned: std::sync::atomic::AtomicBool,
}

impl Leadership {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        epoch: i32,
        partition_epoch: i32,
        config: IsrConfig,
        me: u32,
        replicas: &[u32],
        isr: Vec<u32>,
        log_end: i64,
        high_watermark: i64,
        now: Instant,
    ) -> Self {
        let state = IsrState::new(config, me, replicas, isr, log_end, high_watermark, now);
        let (tx, _) = watch::channel(state.high_watermark());
        Self {
            epoch,
            isr_version: Mutex::new(partition_epoch),
            state: Mutex::new(state),
            high_watermark: tx,
            resigned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn publish(&self, hw: i64) {
        self.high_watermark.send_if_modified(|v| {
            let moved = hw > *v;
            if moved {
                *v = hw;
            }
            moved
        });
    }

    /// The leader's log now ends at `log_end`; the high watermark after.
    pub fn on_append(&self, log_end: i64) -> i64 {
        let hw = {
            let mut s = lock(&self.state);
            s.on_append(log_end);
            s.high_watermark()
        };
        self.publish(hw);
        hw
    }

    /// A follower asked for `fetch_offset`: the high watermark, if it moved.
    pub fn on_follower_fetch(&self, now: Instant, follower: u32, fetch_offset: i64) -> Option<i64> {
        let hw = {
            let mut s = lock(&self.state);
            s.on_follower_fetch(now, follower, fetch_offset)
                .then(|| s.high_watermark())
        };
        if let Some(hw) = hw {
            self.publish(hw);
        }
        hw
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    pub fn isr(&self) -> Vec<u32> {
        lock(&self.state).isr().to_vec()
    }

    /// Before an `acks=all` append: `NOT_ENOUGH_REPLICAS` when the ISR is
    /// smaller than `min.insync.replicas` (nothing is appended then).
    pub fn check_enough_replicas(&self) -> Result<(), ResponseError> {
        match lock(&self.state).ack_all(0) {
            AckAll::NotEnoughReplicas => Err(ResponseError::NotEnoughReplicas),
            _ => Ok(()),
        }
    }

    /// Waits until the high watermark reaches `end` (the offset after the
    /// batch): every in-sync replica has the batch. Errors: the ISR fell
    /// below `min.insync.replicas` after the append, or `deadline` passed.
    pub async fn wait_committed(
        &self,
        end: i64,
        deadline: tokio::time::Instant,
    ) -> Result<(), ResponseError> {
        let mut rx = self.high_watermark.subscribe();
        loop {
            if self.resigned.load(std::sync::atomic::Ordering::Acquire) {
                return Err(ResponseError::NotLeaderOrFollower);
            }
            match lock(&self.state).ack_all(end) {
                AckAll::Committed => return Ok(()),
                AckAll::NotEnoughReplicas => {
                    return Err(ResponseError::NotEnoughReplicasAfterAppend)
                }
                AckAll::Wait => {}
            }
            rx.borrow_and_update();
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return Err(ResponseError::NotLeaderOrFollower);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(ResponseError::RequestTimedOut);
                }
            }
        }
    }

    /// The ISR change to write to the store now, if any.
    pub fn poll_isr_change(&self, now: Instant) -> Option<Vec<u32>> {
        lock(&self.state).poll_isr_change(now)
    }

    /// The sessions of the SPUs the store holds as live (store revision
    /// of each registration): a follower in a new session restarted.
    pub fn note_sessions(&self, sessions: &std::collections::BTreeMap<u32, i64>) {
        let mut s = lock(&self.state);
        for (spu, session) in sessions {
            s.on_follower_session(*spu, *session);
        }
    }

    /// The partition epoch of the store's state whose ISR this leader
    /// holds.
    pub fn isr_version(&self) -> i32 {
        *lock(&self.isr_version)
    }

    /// The proposed ISR is in the store, in its state of `partition_epoch`;
    /// the high watermark after.
    pub fn on_isr_committed(&self, isr: Vec<u32>, partition_epoch: i32) -> i64 {
        let mut version = lock(&self.isr_version);
        *version = (*version).max(partition_epoch);
        self.take_isr(isr)
    }

    fn take_isr(&self, isr: Vec<u32>) -> i64 {
        let hw = {
            let mut s = lock(&self.state);
            s.on_isr_committed(isr);
            s.high_watermark()
        };
        self.publish(hw);
        self.nudge();
        hw
    }

    /// The store's ISR at this leadership's epoch, in its state of
    /// `partition_epoch`, when that state is newer than the one whose ISR
    /// we hold and the ISR differs (the controller removed a follower):
    /// taken as committed. An older state is ignored: adopting it could
    /// drop a member this leader has just written back in, and the high
    /// watermark would then move without a replica the store counts in
    /// sync (and may elect). The high watermark after, if the ISR changed.
    pub fn adopt_isr(&self, stored: &[u32], partition_epoch: i32) -> Option<i64> {
        let mut version = lock(&self.isr_version);
        if partition_epoch <= *version {
            return None;
        }
        *version = partition_epoch;
        let mut ours = self.isr();
        let mut theirs = stored.to_vec();
        ours.sort_unstable();
        theirs.sort_unstable();
        (ours != theirs).then(|| self.take_isr(stored.to_vec()))
    }

    pub fn on_isr_refused(&self) {
        lock(&self.state).on_isr_refused();
    }

    /// This SPU no longer leads at this epoch: `acks=all` waiters are
    /// answered `NOT_LEADER_OR_FOLLOWER` (the client retries at the new
    /// leader; an idempotent batch it already has is a duplicate there).
    pub fn resign(&self) {
        self.resigned
            .store(true, std::sync::atomic::Ordering::Release);
        self.nudge();
    }

    /// Wakes `acks=all` waiters to look again (the ISR changed).
    pub fn nudge(&self) {
        self.high_watermark.send_modify(|_| {});
    }
}

/// The leadership in `slot`, if this SPU leads.
pub(crate) fn current(slot: &LeaderSlot) -> Option<Arc<Leadership>> {
    lock(slot).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listing of the store made before this leader's own ISR write and
    /// published after it must not take back the member it wrote in: the
    /// high watermark would move without a replica the store counts in
    /// sync.
    #[test]
    fn a_view_older_than_the_leaders_own_isr_write_is_not_adopted() {
        let config = IsrConfig {
            min_insync_replicas: 2,
            ..IsrConfig::default()
        };
        let l = Leadership::new(
            1,
            4,
            config,
            0,
            &[0, 1, 2],
            vec![0, 1],
            0,
            0,
            Instant::now(),
        );
        assert_eq!(l.adopt_isr(&[0, 1], 4), None, "the state it began from");
        l.on_isr_committed(vec![0, 1, 2], 5);
        assert_eq!(l.isr_version(), 5);
        assert_eq!(l.adopt_isr(&[0, 1], 4), None, "an older state");
        assert_eq!(l.isr(), [0, 1, 2]);
        // The controller fences 1 in a newer state: adopted.
        assert!(l.adopt_isr(&[0, 2], 6).is_some());
        assert_eq!((l.isr(), l.isr_version()), (vec![0, 2], 6));
        assert_eq!(l.adopt_isr(&[0, 2], 7), None, "newer, same ISR");
        assert_eq!(l.isr_version(), 7);
    }
}

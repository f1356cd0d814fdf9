//! A partition leader's view of its followers (Kafka's ISR model), as a
//! state machine with time passed in:
//!
//! - the leader learns each follower's log end from the offset it asks for
//!   in its next Fetch ([`IsrState::on_follower_fetch`]);
//! - the high watermark is the smallest log end in the ISR (the leader's
//!   own included): consumers see records up to it, and `acks=all` is
//!   answered once it covers the batch ([`IsrState::ack_all`]);
//! - a follower that has not caught up with the leader's log end for
//!   `replica_lag_time_max` leaves the ISR; one that reaches the high
//!   watermark joins it again ([`IsrState::poll_isr_change`]). A change is
//!   only proposed here: it takes effect once written to the metadata
//!   store with CAS ([`IsrState::on_isr_committed`]), so a leader that
//!   cannot write cannot shrink the ISR to itself and acknowledge alone;
//! - what a follower reported counts only while it is known to still hold
//!   it: a follower that left the ISR, or whose SPU began a new session
//!   (it restarted, and under `flush never` may have lost an unsynced
//!   tail), must fetch again before it can rejoin, and an ISR member that
//!   asks for less than the high watermark (it lost records it had) leaves
//!   the ISR ([`IsrState::on_follower_session`]);
//! - the high watermark never goes back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Kafka's default `replica.lag.time.max.ms`.
pub const DEFAULT_REPLICA_LAG_TIME_MAX: Duration = Duration::from_secs(10);

/// The settings the ISR logic needs.
#[derive(Debug, Clone, Copy)]
pub struct IsrConfig {
    /// A follower behind for longer than this leaves the ISR.
    pub replica_lag_time_max: Duration,
    /// `min.insync.replicas`: fewer in the ISR and `acks=all` is refused.
    pub min_insync_replicas: usize,
}

impl Default for IsrConfig {
    fn default() -> Self {
        Self {
            replica_lag_time_max: DEFAULT_REPLICA_LAG_TIME_MAX,
            min_insync_replicas: 1,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Follower {
    /// The offset it asked for last: everything before it, it has.
    log_end: i64,
    /// When it last had everything the leader had.
    caught_up_at: Instant,
    /// The store revision at which its SPU's session began, once known.
    session: Option<i64>,
}

/// What `acks=all` may answer for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckAll {
    /// The high watermark covers it: every in-sync replica has it.
    Committed,
    /// Not yet: wait for followers (or the request timeout).
    Wait,
    /// The ISR is smaller than `min.insync.replicas`
    /// (`NOT_ENOUGH_REPLICAS`).
    NotEnoughReplicas,
}

/// The leader's side of one partition's replication.
#[derive(Debug, Clone)]
pub struct IsrState {
    config: IsrConfig,
    leader: u32,
    isr: Vec<u32>,
    log_end: i64,
    high_watermark: i64,
    followers: BTreeMap<u32, Follower>,
    /// An ISR change proposed and not yet committed or refused.
    proposed: Option<Vec<u32>>,
    /// The leader's log end when this leadership began: a follower joins
    /// the ISR only once it has reached it (as Kafka's `isFollowerInSync`),
    /// so an ISR member always holds what this leader's epoch built on.
    epoch_start: i64,
}

impl IsrState {
    /// A new leader of `replicas` with `isr` (from the partition state),
    /// its log ending at `log_end` and the high watermark it had.
    pub fn new(
        config: IsrConfig,
        leader: u32,
        replicas: &[u32],
        isr: Vec<u32>,
        log_end: i64,
        high_watermark: i64,
        now: Instant,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|r| **r != leader)
            .map(|r| {
                // Followers in the ISR get a full lag window to show up.
                let log_end = if isr.contains(r) { high_watermark } else { 0 };
                (
                    *r,
                    Follower {
                        log_end,
                        caught_up_at: now,
                        session: None,
                    },
                )
            })
            .collect();
        let mut state = Self {
            config,
            leader,
            isr,
            log_end,
            high_watermark: high_watermark.min(log_end),
            followers,
            proposed: None,
            epoch_start: log_end,
        };
        state.advance_high_watermark();
        state
    }

    pub fn isr(&self) -> &[u32] {
        &self.isr
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The leader appended: its log now ends at `log_end`.
    pub fn on_append(&mut self, log_end: i64) {
        self.log_end = log_end;
        self.advance_high_watermark();
    }

    /// A follower fetched from `fetch_offset`: it has everything before.
    /// Says whether the high watermark moved (waiting `acks=all` requests
    /// may be answered, consumers may read further).
    pub fn on_follower_fetch(&mut self, now: Instant, follower: u32, fetch_offset: i64) -> bool {
        let Some(f) = self.followers.get_mut(&follower) else {
            return false; // not a replica of this partition
        };
        f.log_end = fetch_offset.min(self.log_end);
        if f.log_end >= self.log_end {
            f.caught_up_at = now;
        }
        self.advance_high_watermark()
    }

    /// The follower's SPU is in the session that began at store revision
    /// `session`. A session other than the one seen before means it
    /// restarted: what it reported before says nothing of what it holds
    /// now, so it counts as holding nothing until it fetches again (and,
    /// if in the ISR, is proposed out at the next poll).
    pub fn on_follower_session(&mut self, follower: u32, session: i64) {
        if let Some(f) = self.followers.get_mut(&follower) {
            if f.session.is_some_and(|s| s != session) {
                f.log_end = 0;
            }
            f.session = Some(session);
        }
    }

    fn advance_high_watermark(&mut self) -> bool {
        let lowest = self
            .isr
            .iter()
            .map(|r| {
                if *r == self.leader {
                    self.log_end
                } else {
                    self.followers.get(r).map_or(self.log_end, |f| f.log_end)
                }
            })
            .min()
            .unwrap_or(self.log_end);
        if lowest > self.high_watermark {
            self.high_watermark = lowest;
            true
        } else {
            false
        }
    }

    /// What `acks=all` may say for a batch ending before `batch_end`.
    pub fn ack_all(&self, batch_end: i64) -> AckAll {
        if self.isr.len() < self.config.min_insync_replicas {
            AckAll::NotEnoughReplicas
        } else if self.high_watermark >= batch_end {
            AckAll::Committed
        } else {
            AckAll::Wait
        }
    }

    /// The ISR change to write to the store now, if any: laggards out,
    /// followers caught up to the high watermark in. `None` while a change
    /// is in flight.
    pub fn poll_isr_change(&mut self, now: Instant) -> Option<Vec<u32>> {
        if self.proposed.is_some() {
            return None;
        }
        let lag = self.config.replica_lag_time_max;
        let hw = self.high_watermark;
        // Out: laggards, and members that no longer hold what the high
        // watermark says every member holds (it restarted and lost a tail).
        let mut next: Vec<u32> = self
            .isr
            .iter()
            .copied()
            .filter(|r| {
                *r == self.leader
                    || self.followers.get(r).is_some_and(|f| {
                        now.saturating_duration_since(f.caught_up_at) <= lag && f.log_end >= hw
                    })
            })
            .collect();
        // Only followers outside the ISR now may join: one just found
        // lagging is not let back in by the high watermark it holds down.
        for (r, f) in &self.followers {
            if !self.isr.contains(r) && f.log_end >= self.high_watermark.max(self.epoch_start) {
                next.push(*r);
            }
        }
        next.sort_unstable();
        let mut current = self.isr.clone();
        current.sort_unstable();
        if next == current {
            return None;
        }
        self.proposed = Some(next.clone());
        Some(next)
    }

    /// The proposed ISR was written to the store.
    pub fn on_isr_committed(&mut self, isr: Vec<u32>) {
        self.proposed = None;
        // A member that left rejoins on a fetch made after it left, not on
        // what it reported before (it may be dead, or back with less).
        for r in self.isr.iter().filter(|r| !isr.contains(r)) {
            if let Some(f) = self.followers.get_mut(r) {
                f.log_end = 0;
            }
        }
        self.isr = isr;
        self.advance_high_watermark();
    }

    /// The write was refused (the state changed under us, or the store is
    /// away): the ISR stays as it was; the next poll proposes again.
    pub fn on_isr_refused(&mut self) {
        self.proposed = None;
    }

    /// When the next follower would fall out of the ISR if it stays silent.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.isr
            .iter()
            .filter_map(|r| self.followers.get(r))
            .map(|f| f.caught_up_at + self.config.replica_lag_time_max)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: Duration = Duration::from_secs(10);

    fn leader_of_three(now: Instant) -> IsrState {
        let config = IsrConfig {
            replica_lag_time_max: LAG,
            min_insync_replicas: 2,
        };
        IsrState::new(config, 0, &[0, 1, 2], vec![0, 1, 2], 0, 0, now)
    }

    #[test]
    fn the_high_watermark_is_the_slowest_in_sync_log_end_and_never_goes_back() {
        let t0 = Instant::now();
        let mut s = leader_of_three(t0);
        s.on_append(100);
        assert_eq!(s.high_watermark(), 0);
        assert_eq!(s.ack_all(100), AckAll::Wait);
        assert!(!s.on_follower_fetch(t0, 1, 100), "2 has nothing yet");
        assert!(s.on_follower_fetch(t0, 2, 60));
        assert_eq!(s.high_watermark(), 60);
        assert_eq!(s.ack_all(60), AckAll::Committed);
        assert_eq!(s.ack_all(61), AckAll::Wait);
        // A follower that asks for less (it truncated) does not pull it back.
        s.on_follower_fetch(t0, 2, 10);
        assert_eq!(s.high_watermark(), 60);
        s.on_follower_fetch(t0, 2, 100);
        assert_eq!(s.high_watermark(), 100);
    }

    #[test]
    fn a_laggard_leaves_after_the_lag_time_and_returns_once_caught_up() {
        let t0 = Instant::now();
        let mut s = leader_of_three(t0);
        s.on_append(50);
        s.on_follower_fetch(t0, 1, 50);
        s.on_follower_fetch(t0, 2, 50);
        assert_eq!(s.high_watermark(), 50);
        s.on_append(80);
        // 1 keeps up, 2 goes silent.
        let mut now = t0;
        for _ in 0..10 {
            now += Duration::from_secs(1);
            s.on_follower_fetch(now, 1, 80);
            assert_eq!(
                s.poll_isr_change(now),
                None,
                "2 is still within the lag time"
            );
        }
        assert_eq!(s.poll_timeout(), Some(t0 + LAG));
        now = t0 + LAG + Duration::from_millis(1);
        assert_eq!(s.poll_isr_change(now), Some(vec![0, 1]));
        assert_eq!(s.poll_isr_change(now), None, "one change at a time");
        assert_eq!(
            s.high_watermark(),
            50,
            "nothing moves before the store says so"
        );
        s.on_isr_committed(vec![0, 1]);
        assert_eq!(s.high_watermark(), 80, "2 no longer holds it back");
        // 2 fetches again, behind: not back yet; caught up: back in.
        s.on_follower_fetch(now, 2, 60);
        assert_eq!(s.poll_isr_change(now), None);
        s.on_follower_fetch(now, 2, 80);
        assert_eq!(s.poll_isr_change(now), Some(vec![0, 1, 2]));
        s.on_isr_committed(vec![0, 1, 2]);
        assert_eq!(s.isr(), [0, 1, 2]);
    }

    #[test]
    fn a_refused_isr_change_changes_nothing_and_min_insync_is_enforced() {
        let t0 = Instant::now();
        let mut s = leader_of_three(t0);
        s.on_append(10);
        let later = t0 + LAG * 2;
        assert_eq!(s.poll_isr_change(later), Some(vec![0]));
        s.on_isr_refused();
        assert_eq!(
            s.isr(),
            [0, 1, 2],
            "the leader cannot shrink the ISR on its own"
        );
        assert_eq!(s.ack_all(10), AckAll::Wait, "nor acknowledge alone");
        assert_eq!(s.poll_isr_change(later), Some(vec![0]));
        s.on_isr_committed(vec![0]);
        assert_eq!(
            s.ack_all(10),
            AckAll::NotEnoughReplicas,
            "1 in sync, 2 required"
        );
    }

    /// Bug 11 (RELIABILITY.md): a follower's SPU lost power and came back
    /// in a new session with less than it had reported. The leader must
    /// not count its old fetch offset: it leaves the ISR and rejoins only
    /// once it has fetched up to the high watermark again.
    #[test]
    fn a_follower_back_in_a_new_session_leaves_the_isr_until_it_fetches_again() {
        let t0 = Instant::now();
        let mut s = leader_of_three(t0);
        s.on_follower_session(1, 10);
        s.on_follower_session(2, 11);
        s.on_append(50);
        s.on_follower_fetch(t0, 1, 50);
        s.on_follower_fetch(t0, 2, 50);
        assert_eq!(s.high_watermark(), 50);
        s.on_follower_session(2, 11);
        assert_eq!(s.poll_isr_change(t0), None, "the same session");
        s.on_follower_session(2, 30);
        assert_eq!(s.poll_isr_change(t0), Some(vec![0, 1]));
        s.on_isr_committed(vec![0, 1]);
        assert_eq!(s.poll_isr_change(t0), None, "not back before it fetches");
        s.on_follower_fetch(t0, 2, 40);
        assert_eq!(s.poll_isr_change(t0), None, "behind the high watermark");
        s.on_follower_fetch(t0, 2, 50);
        assert_eq!(s.poll_isr_change(t0), Some(vec![0, 1, 2]));
    }

    /// A member asking for less than the high watermark lost records every
    /// member was counted as holding: out, whatever the lag time says.
    #[test]
    fn an_isr_member_asking_below_the_high_watermark_leaves() {
        let t0 = Instant::now();
        let mut s = leader_of_three(t0);
        s.on_append(50);
        s.on_follower_fetch(t0, 1, 50);
        s.on_follower_fetch(t0, 2, 50);
        s.on_follower_fetch(t0, 1, 20);
        assert_eq!(s.high_watermark(), 50);
        assert_eq!(s.poll_isr_change(t0), Some(vec![0, 2]));
    }

    /// A member the controller fenced (its session lapsed) is not let back
    /// in on the fetch offset it reported before it died.
    #[test]
    fn a_fenced_member_rejoins_only_on_a_later_fetch() {
        let t0 = Instant::now();
        let mut s = leader_of_three(t0);
        s.on_append(50);
        s.on_follower_fetch(t0, 1, 50);
        s.on_follower_fetch(t0, 2, 50);
        s.on_isr_committed(vec![0, 1]);
        assert_eq!(s.poll_isr_change(t0), None);
        s.on_follower_fetch(t0, 2, 50);
        assert_eq!(s.poll_isr_change(t0), Some(vec![0, 1, 2]));
    }

    #[test]
    fn fetches_from_strangers_are_ignored() {
        let t0 = Instant::now();
        let mut s = leader_of_three(t0);
        s.on_append(10);
        assert!(!s.on_follower_fetch(t0, 9, 10));
        assert_eq!(s.high_watermark(), 0);
    }
}

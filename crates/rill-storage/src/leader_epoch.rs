//! The leader-epoch file of a partition (Kafka's leader-epoch checkpoint):
//! which offset each leader epoch started at. A follower of a new leader
//! uses it to find where their logs diverge, and truncates there before it
//! fetches on, so a record that only a deposed leader had is dropped
//! instead of kept beside the new leader's different record at the same
//! offset.
//!
//! One small text file, replaced atomically (temp file, fsync, rename, fsync
//! directory) and guarded by a CRC: a damaged file is an error, not a
//! silently empty history.

use std::path::Path;

use crate::error::IoContext;
use crate::io::{Backend, OpenMode};
use crate::StorageError;

const FILE_NAME: &str = "leader-epochs";
const TMP_NAME: &str = "leader-epochs.tmp";
const FORMAT_LINE: &str = "rill-leader-epochs 1";
/// Bound on the file's size (an entry is a few dozen bytes; epochs are
/// pruned as the log start moves).
pub const MAX_LEADER_EPOCH_FILE_BYTES: u64 = 1024 * 1024;

/// A leader epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: u64,
}

/// The epochs of one partition's log, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochs {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochs {
    /// Reads the file in `dir`; empty when there is none.
    pub fn open(backend: &dyn Backend, dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(FILE_NAME);
        let file = match backend.open(&path, OpenMode::Existing) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).ctx("open", &path),
        };
        let len = file.byte_len().ctx("stat", &path)?;
        let corrupt = |reason: &str| StorageError::Corrupt {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        if len > MAX_LEADER_EPOCH_FILE_BYTES {
            return Err(corrupt("leader-epoch file too large"));
        }
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, 0).ctx("read", &path)?;
        let text = std::str::from_utf8(&buf).map_err(|_| corrupt("not UTF-8"))?;
        decode(text).ok_or_else(|| corrupt("damaged leader-epoch file"))
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The latest epoch and its start.
    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// The oldest epoch still in the history.
    pub fn first(&self) -> Option<EpochEntry> {
        self.entries.first().copied()
    }

    /// Records that `epoch` starts at `start_offset` (a new leader, before
    /// its first append). An epoch not above the latest changes nothing.
    /// Says whether the history changed (then [`Self::save`] it).
    pub fn assign(&mut self, epoch: i32, start_offset: u64) -> bool {
        if self.latest().is_some_and(|l| l.epoch >= epoch) {
            return false;
        }
        // A start before the latest's would make the history go backwards:
        // the entries it overlaps are dropped (their records are gone).
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Kafka's OffsetForLeaderEpoch: for a follower whose latest epoch is
    /// `epoch`, the largest epoch of ours not above it and the offset
    /// where that epoch ended here (the next epoch's start, or `log_end`
    /// for the latest). `None` when every epoch of ours is newer (the
    /// follower must truncate to its own start of ours).
    pub fn end_offset_for(&self, epoch: i32, log_end: u64) -> Option<EpochEntry> {
        let at = self.entries.iter().rposition(|e| e.epoch <= epoch)?;
        let end = self
            .entries
            .get(at + 1)
            .map_or(log_end, |next| next.start_offset);
        Some(EpochEntry {
            epoch: self.entries.get(at)?.epoch,
            start_offset: end,
        })
    }

    /// The log was cut back to end at `offset`: epochs starting there or
    /// later are forgotten.
    pub fn truncate_to(&mut self, offset: u64) {
        self.entries.retain(|e| e.start_offset < offset);
    }

    /// The log now starts at `offset` (retention): epochs that ended before
    /// it are dropped, the one holding it starts there.
    pub fn advance_start(&mut self, offset: u64) {
        let keep_from = self
            .entries
            .iter()
            .rposition(|e| e.start_offset <= offset)
            .unwrap_or(0);
        self.entries.drain(..keep_from);
        if let Some(first) = self.entries.first_mut() {
            first.start_offset = first.start_offset.max(offset);
        }
    }

    /// Writes the history durably.
    pub fn save(&self, backend: &dyn Backend, dir: &Path) -> Result<(), StorageError> {
        crate::sealed::replace(
            backend,
            dir,
            TMP_NAME,
            FILE_NAME,
            encode(&self.entries).as_bytes(),
        )
    }
}

/// One round of a follower finding where its log agrees with its
/// leader's (Kafka's OffsetsForLeaderEpoch truncation, KIP-101/279).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// The logs agree up to here: cut the follower's log to end here.
    At(u64),
    /// The leader never had the epoch asked about, and this older epoch of
    /// the follower's may also differ: ask the leader about it.
    AskAgain(i32),
}

/// Given the leader's answer to OffsetForLeaderEpoch (its latest epoch at
/// or before the one asked, and where that epoch ends on its side), where
/// the follower (its log ending at `follower_end`) must cut, or which
/// epoch to ask about next. Records written under the same epoch are the
/// same on both sides (one leader per epoch), so the logs agree up to the
/// end of the latest epoch both have, and no further.
pub fn truncation_step(
    follower: &LeaderEpochs,
    follower_end: u64,
    leader_answer: Option<EpochEntry>,
) -> Truncation {
    // Before the follower's first epoch (a log from before replication)
    // nothing is stamped and nothing can be compared: it stays.
    let first_start = follower.entries.first().map_or(0, |e| e.start_offset);
    let Some(answer) = leader_answer else {
        // The leader has no epoch that old: every stamped record differs.
        return Truncation::At(first_start.min(follower_end));
    };
    match follower.end_offset_for(answer.epoch, follower_end) {
        Some(ours) if ours.epoch == answer.epoch => {
            Truncation::At(answer.start_offset.min(ours.start_offset).min(follower_end))
        }
        // Our latest epoch at or before the leader's is older than the
        // leader's: the leader may have written over it in between.
        Some(ours) => Truncation::AskAgain(ours.epoch),
        None => Truncation::At(first_start.min(follower_end)),
    }
}

/// Where a follower must cut its log (ending at `follower_end`): asks
/// `leader` (the leader's OffsetForLeaderEpoch answer for an epoch) about
/// its latest epoch, and again about older ones while the answers say the
/// leader never had them. Each round asks about an older epoch, so it
/// ends; a follower without epochs keeps its log (the caller decides what
/// an unstamped log keeps).
pub fn truncation_offset(
    follower: &LeaderEpochs,
    follower_end: u64,
    mut leader: impl FnMut(i32) -> Option<EpochEntry>,
) -> u64 {
    let Some(mut asked) = follower.latest().map(|e| e.epoch) else {
        return follower_end;
    };
    loop {
        match truncation_step(follower, follower_end, leader(asked)) {
            Truncation::At(at) => return at,
            Truncation::AskAgain(older) if older < asked => asked = older,
            // Cannot happen (the step only asks about older epochs); stop
            // at the start of the stamped log rather than loop.
            Truncation::AskAgain(_) => {
                return follower
                    .entries
                    .first()
                    .map_or(0, |e| e.start_offset)
                    .min(follower_end)
            }
        }
    }
}

fn encode(entries: &[EpochEntry]) -> String {
    let mut body = format!("{FORMAT_LINE}\ncount {}\n", entries.len());
    for e in entries {
        body.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
    }
    crate::sealed::seal(&body)
}

fn decode(text: &str) -> Option<LeaderEpochs> {
    let body = crate::sealed::unseal(text)?;
    let mut lines = body.lines();
    if lines.next()? != FORMAT_LINE {
        return None;
    }
    let count: usize = lines.next()?.strip_prefix("count ")?.parse().ok()?;
    let mut entries = Vec::new();
    for line in lines {
        let (epoch, start) = line.split_once(' ')?;
        let entry = EpochEntry {
            epoch: epoch.parse().ok()?,
            start_offset: start.parse().ok()?,
        };
        if entries.last().is_some_and(|l: &EpochEntry| {
            l.epoch >= entry.epoch || l.start_offset > entry.start_offset
        }) {
            return None; // epochs and starts only grow
        }
        entries.push(entry);
    }
    (entries.len() == count).then_some(LeaderEpochs { entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileBackend;

    fn epochs(list: &[(i32, u64)]) -> LeaderEpochs {
        let mut e = LeaderEpochs::default();
        for (epoch, start) in list {
            assert!(e.assign(*epoch, *start));
        }
        e
    }

    #[test]
    fn offsets_for_epochs_as_kafka_answers_them() {
        let e = epochs(&[(1, 0), (3, 100), (4, 250)]);
        let at = |epoch| {
            e.end_offset_for(epoch, 400)
                .map(|x| (x.epoch, x.start_offset))
        };
        assert_eq!(at(1), Some((1, 100)), "epoch 1 ended where 3 began");
        assert_eq!(at(2), Some((1, 100)), "no epoch 2 here: the one before it");
        assert_eq!(at(3), Some((3, 250)));
        assert_eq!(at(4), Some((4, 400)), "the latest ends at the log end");
        assert_eq!(at(9), Some((4, 400)));
        assert_eq!(at(0), None);
        assert!(
            !epochs(&[(5, 10)]).clone().assign(5, 20),
            "epochs only grow"
        );
    }

    #[test]
    fn a_follower_cuts_what_only_a_deposed_leader_had() {
        // The follower led epoch 2 from 100 and wrote to 130, but the new
        // leader (epoch 3) took over when epoch 2 ended at 120 on its side.
        let leader = epochs(&[(1, 0), (2, 100), (3, 120)]);
        let follower = epochs(&[(1, 0), (2, 100)]);
        let ask = |e| leader.end_offset_for(e, 200);
        assert_eq!(truncation_offset(&follower, 130, ask), 120);
        // A follower that is simply behind keeps everything.
        assert_eq!(truncation_offset(&follower, 110, ask), 110);
        // The leader never saw epoch 2: cut back to where epoch 1 ended.
        let other = epochs(&[(1, 0), (3, 90)]);
        assert_eq!(
            truncation_offset(&follower, 130, |e| other.end_offset_for(e, 200)),
            90
        );
        // Nothing in common at all.
        assert_eq!(truncation_offset(&follower, 130, |_| None), 0);
    }

    #[test]
    fn a_follower_whose_epoch_the_leader_never_had_asks_again() {
        // Found by the replication simulation: the follower led epoch 1
        // over an empty log (0..9); the leader kept epoch 0's records at
        // 0..2, then led epoch 5 from 2. The leader's answer for epoch 1
        // is "epoch 0, ends at 2", an epoch the follower never had: none
        // of the follower's records is the leader's.
        let leader = epochs(&[(0, 0), (5, 2), (7, 12)]);
        let follower = epochs(&[(1, 0)]);
        assert_eq!(
            truncation_step(&follower, 9, leader.end_offset_for(1, 12)),
            Truncation::At(0)
        );
        assert_eq!(
            truncation_offset(&follower, 9, |e| leader.end_offset_for(e, 12)),
            0
        );
        // Two rounds: the follower has epochs 0 and 3; the leader has 0 to
        // 40, then 2 from 40. Asked about 3 it answers "2 ends at 90"; the
        // follower's latest epoch at or before 2 is 0, so it asks about 0:
        // "0 ends at 40", and the follower (epoch 0 to 50) cuts at 40.
        let leader = epochs(&[(0, 0), (2, 40), (4, 90)]);
        let follower = epochs(&[(0, 0), (3, 50)]);
        assert_eq!(
            truncation_step(&follower, 70, leader.end_offset_for(3, 120)),
            Truncation::AskAgain(0)
        );
        let mut asked = Vec::new();
        let cut = truncation_offset(&follower, 70, |e| {
            asked.push(e);
            leader.end_offset_for(e, 120)
        });
        assert_eq!((cut, asked), (40, vec![3, 0]));
    }

    #[test]
    fn truncation_and_retention_keep_the_history_consistent() {
        let mut e = epochs(&[(1, 0), (3, 100), (4, 250)]);
        e.truncate_to(250);
        assert_eq!(e.latest().map(|l| l.epoch), Some(3));
        e.advance_start(150);
        assert_eq!(
            e.entries(),
            [EpochEntry {
                epoch: 3,
                start_offset: 150
            }]
        );
        let mut overlap = epochs(&[(1, 0), (2, 50)]);
        overlap.assign(5, 40);
        assert_eq!(overlap.entries().len(), 2, "epoch 2's entry (from 50) went");
    }

    #[test]
    fn the_file_round_trips_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend;
        assert_eq!(
            LeaderEpochs::open(&backend, dir.path()).unwrap(),
            LeaderEpochs::default()
        );
        let e = epochs(&[(1, 0), (7, 1234)]);
        e.save(&backend, dir.path()).unwrap();
        assert_eq!(LeaderEpochs::open(&backend, dir.path()).unwrap(), e);
        let path = dir.path().join(FILE_NAME);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("1234", "1235");
        std::fs::write(&path, text).unwrap();
        assert!(matches!(
            LeaderEpochs::open(&backend, dir.path()),
            Err(StorageError::Corrupt { .. })
        ));
    }
}

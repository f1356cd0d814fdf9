//! One completion per batch, not per record: `send` hands out the batch's
//! slot and the record's index in it, and the lane fills the slot once with
//! the batch's answer. Every record's `wait` reads the same slot, so the hot
//! path makes no channel and no allocation per record.
//!
//! A batch the SPU refuses as too large is split and its halves are sent
//! (and answered) separately; the slot then has one part per half and is
//! answered once every part is.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tokio::sync::Notify;

use crate::RillError;

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The partition the record went to.
    pub partition: u32,
    /// Its offset there (-1 when the SPU did not say, as with acks 0).
    pub offset: i64,
}

impl RecordMetadata {
    /// The record's offset in its partition (Fluvio's name).
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The partition the record went to (Fluvio's name).
    pub fn partition_id(&self) -> u32 {
        self.partition
    }
}

/// A part's answer: its partition and base offset, or the error that ended
/// it.
pub(super) type Answer = Result<(u32, i64), RillError>;

/// The answer of each part of a batch, by the index of its first record.
type Parts = Vec<(usize, Answer)>;

/// A batch's answer, written once when its last part is answered, and when
/// that was.
#[derive(Debug)]
pub(super) struct BatchSlot {
    answer: OnceLock<(Parts, Instant)>,
    /// Parts answered so far, until all are.
    answered_parts: Mutex<Parts>,
    /// Parts not yet answered (1 unless the batch was split).
    open_parts: AtomicUsize,
    answered: Notify,
}

impl Default for BatchSlot {
    fn default() -> Self {
        Self {
            answer: OnceLock::new(),
            answered_parts: Mutex::new(Vec::new()),
            open_parts: AtomicUsize::new(1),
            answered: Notify::new(),
        }
    }
}

fn place(parts: &Parts, index: usize) -> Result<RecordMetadata, RillError> {
    // Parts are sorted by first index; the record is in the last part that
    // starts at or before it.
    let (first, answer) = parts
        .iter()
        .rev()
        .find(|(first, _)| *first <= index)
        .or(parts.first())
        .ok_or(RillError::ProducerClosed)?;
    answer.clone().map(|(partition, base)| RecordMetadata {
        partition,
        offset: if base < 0 {
            -1
        } else {
            base + (index - first) as i64
        },
    })
}

impl BatchSlot {
    /// Records one part's answer; says whether it was the last one.
    fn set(&self, first: usize, answer: Answer) -> bool {
        let mut parts = self
            .answered_parts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        parts.push((first, answer));
        if self.open_parts.fetch_sub(1, Ordering::AcqRel) != 1 {
            return false;
        }
        let mut all = std::mem::take(&mut *parts);
        drop(parts);
        all.sort_by_key(|(first, _)| *first);
        if self.answer.set((all, Instant::now())).is_ok() {
            self.answered.notify_waiters();
        }
        true
    }

    /// Whether every part has been answered.
    pub(super) fn is_answered(&self) -> bool {
        self.answer.get().is_some()
    }

    /// The record's place if the answer has come, and when it came.
    pub(super) fn try_get(
        &self,
        index: usize,
    ) -> Option<(Result<RecordMetadata, RillError>, Instant)> {
        self.answer
            .get()
            .map(|(parts, at)| (place(parts, index), *at))
    }

    /// Waits for the answer: the place of the record at `index` (or the
    /// error) and when the answer came.
    pub(super) async fn wait(&self, index: usize) -> (Result<RecordMetadata, RillError>, Instant) {
        loop {
            // Registered before looking, so an answer set in between wakes us.
            let answered = self.answered.notified();
            if let Some(done) = self.try_get(index) {
                return done;
            }
            answered.await;
        }
    }

    /// Waits until every part has been answered.
    pub(super) async fn wait_answered(&self) {
        loop {
            let answered = self.answered.notified();
            if self.is_answered() {
                return;
            }
            answered.await;
        }
    }
}

/// The sending side of (a part of) a batch's slot. Dropped unanswered (the
/// producer went away), it answers `ProducerClosed` so no `wait` hangs.
#[derive(Debug)]
pub(super) struct BatchCompletion {
    slot: Arc<BatchSlot>,
    /// Index in the batch of this part's first record.
    first: usize,
    /// The batch's number, for `flush` (see `topic_producer::State`).
    id: u64,
    done: bool,
}

impl BatchCompletion {
    /// A completion for a new batch numbered `id`.
    pub(super) fn new(id: u64) -> Self {
        Self {
            slot: Arc::default(),
            first: 0,
            id,
            done: false,
        }
    }

    /// The slot the batch's records wait on.
    pub(super) fn slot(&self) -> Arc<BatchSlot> {
        self.slot.clone()
    }

    /// The batch's number.
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// Answers every record of this part; says whether the whole batch is
    /// now answered.
    pub(super) fn finish(mut self, answer: Answer) -> bool {
        self.done = true;
        self.slot.set(self.first, answer)
    }
}

impl super::pipeline::Completion for BatchCompletion {
    fn split_at(mut self, records: usize) -> (Self, Self) {
        self.slot.open_parts.fetch_add(1, Ordering::AcqRel);
        let second = Self {
            slot: self.slot.clone(),
            first: self.first + records,
            id: self.id,
            done: false,
        };
        let first = Self {
            slot: self.slot.clone(),
            first: self.first,
            id: self.id,
            done: false,
        };
        // `self` hands its part over to the two halves.
        self.done = true;
        (first, second)
    }
}

impl Drop for BatchCompletion {
    fn drop(&mut self) {
        if !self.done {
            self.slot.set(self.first, Err(RillError::ProducerClosed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pipeline::Completion;
    use super::*;

    #[test]
    fn a_split_batch_answers_each_record_from_its_half() {
        let c = BatchCompletion::new(1);
        let slot = c.slot();
        let (a, b) = c.split_at(3);
        assert!(!b.finish(Ok((2, 500))), "one half still open");
        assert!(slot.try_get(0).is_none());
        assert!(a.finish(Ok((2, 100))));
        assert_eq!(slot.try_get(0).unwrap().0.unwrap().offset, 100);
        assert_eq!(slot.try_get(2).unwrap().0.unwrap().offset, 102);
        assert_eq!(slot.try_get(3).unwrap().0.unwrap().offset, 500);
        assert_eq!(slot.try_get(4).unwrap().0.unwrap().offset(), 501);
        assert_eq!(slot.try_get(4).unwrap().0.unwrap().partition_id(), 2);
    }

    #[test]
    fn a_dropped_completion_answers_producer_closed() {
        let c = BatchCompletion::new(1);
        let slot = c.slot();
        drop(c);
        assert!(matches!(
            slot.try_get(0).unwrap().0,
            Err(RillError::ProducerClosed)
        ));
    }
}

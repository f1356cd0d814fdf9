//! One completion per batch, not per record: `send` hands out the batch's
//! slot and the record's index in it, and the lane fills the slot once with
//! the batch's answer. Every record's `wait` reads the same slot, so the hot
//! path makes no channel and no allocation per record.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::sync::Notify;

use super::topic_producer::RecordMetadata;
use crate::RillError;

type Answer = Result<(u32, i64), RillError>;

/// A batch's answer: its partition and base offset, or the error that ended
/// it, and when it came. Written once.
#[derive(Debug, Default)]
pub(super) struct BatchSlot {
    answer: OnceLock<(Answer, Instant)>,
    answered: Notify,
}

fn place(answer: &Answer, index: usize) -> Result<RecordMetadata, RillError> {
    answer.clone().map(|(partition, base)| RecordMetadata {
        partition,
        offset: if base < 0 { -1 } else { base + index as i64 },
    })
}

impl BatchSlot {
    fn set(&self, answer: Answer) {
        if self.answer.set((answer, Instant::now())).is_ok() {
            self.answered.notify_waiters();
        }
    }

    /// The record's place if the answer has come, and when it came.
    pub(super) fn try_get(
        &self,
        index: usize,
    ) -> Option<(Result<RecordMetadata, RillError>, Instant)> {
        self.answer
            .get()
            .map(|(answer, at)| (place(answer, index), *at))
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
}

/// The sending side of a batch's slot. Dropped unanswered (the producer
/// went away), it answers `ProducerClosed` so no `wait` hangs.
#[derive(Debug, Default)]
pub(super) struct BatchCompletion(Arc<BatchSlot>);

impl BatchCompletion {
    /// The slot the batch's records wait on.
    pub(super) fn slot(&self) -> Arc<BatchSlot> {
        self.0.clone()
    }

    /// Answers every record of the batch.
    pub(super) fn finish(self, answer: Result<(u32, i64), RillError>) {
        self.0.set(answer);
    }
}

impl Drop for BatchCompletion {
    fn drop(&mut self) {
        self.0.set(Err(RillError::ProducerClosed));
    }
}

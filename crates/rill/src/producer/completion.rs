//! One completion per batch, not per record: `send` hands out the batch's
//! slot and the record's index in it, and the lane fills the slot once with
//! the batch's answer. Every record's `wait` reads the same slot, so the hot
//! path makes no channel and no allocation per record.

use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

use super::topic_producer::RecordMetadata;
use crate::RillError;

/// A batch's answer: its partition and base offset, or the error that ended
/// it. Written once.
#[derive(Debug, Default)]
pub(super) struct BatchSlot {
    answer: OnceLock<Result<(u32, i64), RillError>>,
    answered: Notify,
}

impl BatchSlot {
    fn set(&self, answer: Result<(u32, i64), RillError>) {
        if self.answer.set(answer).is_ok() {
            self.answered.notify_waiters();
        }
    }

    /// Waits for the answer and gives the place of the record at `index`.
    pub(super) async fn wait(&self, index: usize) -> Result<RecordMetadata, RillError> {
        loop {
            // Registered before looking, so an answer set in between wakes us.
            let answered = self.answered.notified();
            if let Some(answer) = self.answer.get() {
                return answer.clone().map(|(partition, base)| RecordMetadata {
                    partition,
                    offset: if base < 0 { -1 } else { base + index as i64 },
                });
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

//! Per-partition producer state for idempotent producers: the epoch and the
//! last few batches of each producer id, so a retried batch is recognised
//! (answered with its original offset, not stored twice) and a gap in the
//! sequence is refused.

use std::collections::{HashMap, VecDeque};

use kafka_protocol::error::ResponseError;
use rill_protocol::BatchHeader;

/// Batches remembered per producer and partition (Kafka keeps five, the
/// most a client may have in flight).
pub const REMEMBERED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SeenBatch {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

#[derive(Debug, Default, Clone)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<SeenBatch>,
}

/// What to do with an incoming batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Append,
    /// Already stored at this base offset.
    Duplicate(i64),
    Refuse {
        code: ResponseError,
        message: String,
    },
}

#[derive(Debug, Default)]
pub(crate) struct ProducerTable {
    producers: HashMap<i64, ProducerEntry>,
}

/// Producers' entries as they were before a group's provisional records.
#[derive(Debug)]
pub(crate) struct SavedProducers(HashMap<i64, Option<ProducerEntry>>);

fn last_seq(h: &BatchHeader) -> i32 {
    // Sequences wrap at i32::MAX back to 0, as in Kafka.
    ((i64::from(h.base_sequence) + i64::from(h.last_offset_delta)) % (i64::from(i32::MAX) + 1))
        as i32
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerTable {
    pub fn check(&self, h: &BatchHeader) -> Verdict {
        if !h.has_producer_id() {
            return Verdict::Append;
        }
        if h.base_sequence < 0 {
            return Verdict::Refuse {
                code: ResponseError::InvalidRecord,
                message: "an idempotent batch needs a base sequence".into(),
            };
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // Unknown here: new, or older than what the SPU remembers. A
            // new producer starts at 0. A later sequence is refused rather
            // than taken as a start: a batch before it may have been
            // refused for a reason that has since passed (this SPU was not
            // yet the partition's leader) and will come again, and storing
            // this one first would turn that retry into a sequence error.
            // The client renumbers under a new producer id when nothing
            // before the refused batch is outstanding.
            return if h.base_sequence == 0 {
                Verdict::Append
            } else {
                Verdict::Refuse {
                    code: ResponseError::UnknownProducerId,
                    message: format!(
                        "producer {} is unknown to this partition; its first batch must \
                         start at sequence 0, not {}",
                        h.producer_id, h.base_sequence
                    ),
                }
            };
        };
        if h.producer_epoch < entry.epoch {
            return Verdict::Refuse {
                code: ResponseError::InvalidProducerEpoch,
                message: format!(
                    "epoch {} is older than the producer's current epoch {}",
                    h.producer_epoch, entry.epoch
                ),
            };
        }
        if h.producer_epoch > entry.epoch {
            return if h.base_sequence == 0 {
                Verdict::Append
            } else {
                Verdict::Refuse {
                    code: ResponseError::OutOfOrderSequenceNumber,
                    message: format!(
                        "a new epoch must start at sequence 0, not {}",
                        h.base_sequence
                    ),
                }
            };
        }
        let last = last_seq(h);
        if let Some(seen) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last)
        {
            return Verdict::Duplicate(seen.base_offset);
        }
        let expected = entry.batches.back().map_or(0, |b| next_seq(b.last_seq));
        if h.base_sequence != expected {
            return Verdict::Refuse {
                code: ResponseError::OutOfOrderSequenceNumber,
                message: format!("sequence {} where {expected} was due", h.base_sequence),
            };
        }
        Verdict::Append
    }

    /// The state of the producers in `ids`, for [`ProducerTable::restore`]:
    /// a group commit records its batches provisionally to check the next
    /// ones from the same producer, then puts the table back.
    pub fn save(&self, ids: impl IntoIterator<Item = i64>) -> SavedProducers {
        let mut saved = HashMap::new();
        for id in ids {
            saved
                .entry(id)
                .or_insert_with(|| self.producers.get(&id).cloned());
        }
        SavedProducers(saved)
    }

    /// Puts back the producers [`ProducerTable::save`] saved.
    pub fn restore(&mut self, saved: SavedProducers) {
        for (id, entry) in saved.0 {
            match entry {
                Some(e) => {
                    self.producers.insert(id, e);
                }
                None => {
                    self.producers.remove(&id);
                }
            }
        }
    }

    /// Remembers a batch stored at `base_offset`.
    pub fn record(&mut self, h: &BatchHeader, base_offset: i64) {
        if !h.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch > entry.epoch || entry.batches.is_empty() {
            if h.producer_epoch != entry.epoch {
                entry.batches.clear();
            }
            entry.epoch = h.producer_epoch;
        }
        entry.batches.push_back(SeenBatch {
            first_seq: h.base_sequence,
            last_seq: last_seq(h),
            base_offset,
        });
        while entry.batches.len() > REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rill_protocol::{Compression, NewRecord, RecordBatchBuilder};

    fn header(pid: i64, epoch: i16, seq: i32, records: usize) -> BatchHeader {
        let mut b = RecordBatchBuilder::new(Compression::None).producer(pid, epoch, seq);
        for _ in 0..records {
            b.push(&NewRecord::new(None, b"v", 1)).unwrap();
        }
        BatchHeader::parse(&b.build().unwrap()).unwrap()
    }

    #[test]
    fn duplicates_gaps_and_epochs() {
        let mut t = ProducerTable::default();
        let a = header(7, 0, 0, 3);
        assert_eq!(t.check(&a), Verdict::Append);
        t.record(&a, 100);
        assert_eq!(t.check(&a), Verdict::Duplicate(100));
        let gap = header(7, 0, 5, 1);
        assert!(matches!(
            t.check(&gap),
            Verdict::Refuse {
                code: ResponseError::OutOfOrderSequenceNumber,
                ..
            }
        ));
        let next = header(7, 0, 3, 2);
        assert_eq!(t.check(&next), Verdict::Append);
        t.record(&next, 103);
        assert!(matches!(
            t.check(&header(7, -1, 5, 1)),
            Verdict::Refuse { .. }
        ));
        let old_epoch = {
            let mut t2 = ProducerTable::default();
            t2.record(&header(8, 2, 0, 1), 0);
            t2.check(&header(8, 1, 1, 1))
        };
        assert!(matches!(
            old_epoch,
            Verdict::Refuse {
                code: ResponseError::InvalidProducerEpoch,
                ..
            }
        ));
        // A new epoch starts again at 0.
        assert_eq!(t.check(&header(7, 1, 0, 1)), Verdict::Append);
        assert!(matches!(
            t.check(&header(7, 1, 4, 1)),
            Verdict::Refuse {
                code: ResponseError::OutOfOrderSequenceNumber,
                ..
            }
        ));
        // Non-idempotent batches pass untouched.
        assert_eq!(t.check(&header(-1, -1, -1, 1)), Verdict::Append);
    }

    #[test]
    fn an_unknown_producer_must_start_at_sequence_zero() {
        let t = ProducerTable::default();
        assert!(matches!(
            t.check(&header(9, 0, 50, 2)),
            Verdict::Refuse {
                code: ResponseError::UnknownProducerId,
                ..
            }
        ));
        assert_eq!(t.check(&header(9, 0, 0, 2)), Verdict::Append);
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut t = ProducerTable::default();
        for i in 0..7 {
            let h = header(1, 0, i, 1);
            assert_eq!(t.check(&h), Verdict::Append);
            t.record(&h, i64::from(i));
        }
        assert_eq!(t.check(&header(1, 0, 6, 1)), Verdict::Duplicate(6));
        assert_eq!(t.check(&header(1, 0, 2, 1)), Verdict::Duplicate(2));
        // The oldest two are forgotten: no longer recognised as duplicates.
        assert!(matches!(
            t.check(&header(1, 0, 0, 1)),
            Verdict::Refuse {
                code: ResponseError::OutOfOrderSequenceNumber,
                ..
            }
        ));
    }
}

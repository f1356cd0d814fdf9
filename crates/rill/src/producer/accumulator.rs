//! The producer's batching, as a state machine with time passed in.
//!
//! `push(partition, record, token, now)` puts a record in its partition's
//! open batch; `ready(now)` hands out the batches due to be sent (full, or
//! open for `linger`, or flushed); `next_deadline()` says when the next one
//! falls due, so the async task only sleeps until then and sends. Nothing
//! here sleeps or does I/O, and tests drive it with made-up instants.
//!
//! `T` is whatever the caller wants back per record when its batch is
//! answered (a oneshot sender in the real producer).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rill_protocol::batch::HEADER_BYTES;
use rill_protocol::{BatchError, Compression, NewRecord, RecordBatchBuilder};

/// Most bytes a new batch's buffer is made for up front (it grows beyond
/// when records need it). A batch is given room for `batch_size_bytes` when
/// it opens, as Kafka's producer allocates `batch.size`: filling it then
/// never copies the records already in it to a larger buffer (with 64 KiB
/// batches of 1 KiB records that was a copy of every batch and fresh pages
/// each time, about 4 % of the producer's CPU). The cap keeps a very large
/// `batch_size` from reserving that much per partition before records come.
pub const MAX_PREALLOCATED_BATCH_BYTES: usize = 1024 * 1024;

/// Settings the accumulator needs. Names carry their units.
#[derive(Debug, Clone)]
pub struct AccumulatorConfig {
    /// A batch is closed once its uncompressed size reaches this.
    pub batch_size_bytes: usize,
    /// How long a batch waits for more records after its first one.
    pub linger: Duration,
    /// A record whose batch would exceed this is refused.
    pub max_request_size_bytes: usize,
    /// Codec for every batch.
    pub compression: Compression,
    /// Bound on uncompressed bytes held for unsent and unanswered batches.
    pub buffer_memory_bytes: usize,
}

/// Why a record was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    #[error(
        "record of {size} bytes (as a batch) exceeds max_request_size of {max_request_size} bytes"
    )]
    /// The record's batch would exceed `max_request_size`.
    RecordTooLarge {
        /// Bytes of the record as a batch of its own.
        size: usize,
        /// The configured limit.
        max_request_size: usize,
    },
    /// `buffer_memory` is full: wait for answers to free it, then retry.
    #[error("producer buffer full: {buffered} of {buffer_memory} bytes in use")]
    BufferFull {
        /// Bytes held now.
        buffered: usize,
        /// The configured bound.
        buffer_memory: usize,
    },
    #[error(transparent)]
    /// The record could not be encoded.
    Batch(#[from] BatchError),
}

/// What a push did to the batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// The record started a new batch (its linger deadline now runs).
    pub batch_opened: bool,
    /// A batch was closed and is due now.
    pub batch_closed: bool,
}

/// A closed batch, ready to send: its records are encoded; giving it a
/// producer id and sequence, compressing it and writing its header is left
/// to the partition's pipeline, outside whatever lock guards the
/// accumulator. (Sequence numbers are the pipeline's alone: they are given
/// at a batch's first send.)
#[derive(Debug)]
pub struct ReadyBatch<T, B = ()> {
    /// The partition the batch is for.
    pub partition: u32,
    /// The batch, to be finished (compressed and sealed) by the caller.
    pub batch: RecordBatchBuilder,
    /// One token per record, in offset order.
    pub tokens: Vec<T>,
    /// Buffer memory this batch holds until [`Accumulator::release`].
    pub reserved_bytes: usize,
    /// Records in the batch.
    pub records: usize,
    /// The batch's own value, made when it opened (the producer keeps one
    /// completion per batch rather than one per record).
    pub slot: B,
}

#[derive(Debug)]
struct OpenBatch<T, B> {
    builder: RecordBatchBuilder,
    opened: Instant,
    tokens: Vec<T>,
    slot: B,
}

#[derive(Debug)]
struct PartitionQueue<T, B> {
    open: Option<OpenBatch<T, B>>,
    closed: VecDeque<OpenBatch<T, B>>,
}

impl<T, B> Default for PartitionQueue<T, B> {
    fn default() -> Self {
        Self {
            open: None,
            closed: VecDeque::new(),
        }
    }
}

/// Records waiting to be sent, per partition. `T` is a value per record,
/// `B` one per batch (made when the batch opens: `B::default()` for
/// [`Accumulator::push`], the caller's function for
/// [`Accumulator::push_into`]).
#[derive(Debug)]
pub struct Accumulator<T, B = ()> {
    config: AccumulatorConfig,
    partitions: Vec<PartitionQueue<T, B>>,
    buffered_bytes: usize,
}

impl<T, B> Accumulator<T, B> {
    /// An empty accumulator.
    pub fn new(config: AccumulatorConfig) -> Self {
        Self {
            config,
            partitions: Vec::new(),
            buffered_bytes: 0,
        }
    }

    /// Bytes held for batches not yet answered.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Whether any record waits to be handed out.
    pub fn is_empty(&self) -> bool {
        self.partitions
            .iter()
            .all(|q| q.open.is_none() && q.closed.is_empty())
    }

    fn queue(&mut self, partition: u32) -> &mut PartitionQueue<T, B> {
        let i = partition as usize;
        if self.partitions.len() <= i {
            self.partitions.resize_with(i + 1, PartitionQueue::default);
        }
        &mut self.partitions[i]
    }

    /// Adds a record to `partition`'s open batch, closing that batch first
    /// if the record would take it past `batch_size`, and after if it is
    /// full. A record larger than `batch_size` (within `max_request_size`)
    /// travels alone. Says whether a batch was opened or closed: either
    /// moves the next deadline, so a sleeping sender must look again.
    pub fn push(
        &mut self,
        partition: u32,
        record: &NewRecord<'_>,
        token: T,
        now: Instant,
    ) -> Result<Pushed, PushError>
    where
        B: Default,
    {
        self.push_into(partition, record, token, now, B::default, |_| ())
            .map(|(pushed, (), _)| pushed)
    }

    /// [`Self::push`], making the batch value with `open` if the record
    /// opens a batch, and also giving what `read` makes of the record's
    /// batch value and the record's index in its batch.
    pub fn push_into<R>(
        &mut self,
        partition: u32,
        record: &NewRecord<'_>,
        token: T,
        now: Instant,
        open: impl FnOnce() -> B,
        read: impl FnOnce(&B) -> R,
    ) -> Result<(Pushed, R, usize), PushError> {
        let compression = self.config.compression;
        let batch_size = self.config.batch_size_bytes;
        let probe = RecordBatchBuilder::new(compression);
        let record_bytes = probe.encoded_len(record)?;
        let alone = HEADER_BYTES + record_bytes;
        if alone > self.config.max_request_size_bytes {
            return Err(PushError::RecordTooLarge {
                size: alone,
                max_request_size: self.config.max_request_size_bytes,
            });
        }
        if self.buffered_bytes + record_bytes > self.config.buffer_memory_bytes
            && self.buffered_bytes > 0
        {
            return Err(PushError::BufferFull {
                buffered: self.buffered_bytes,
                buffer_memory: self.config.buffer_memory_bytes,
            });
        }
        let queue = self.queue(partition);
        let mut closed = false;
        if let Some(open) = &queue.open {
            let would_be = open.builder.uncompressed_bytes() + open.builder.encoded_len(record)?;
            if !open.builder.is_empty() && would_be > batch_size {
                if let Some(full) = queue.open.take() {
                    queue.closed.push_back(full);
                    closed = true;
                }
            }
        }
        let opened = queue.open.is_none();
        let open = queue.open.get_or_insert_with(|| OpenBatch {
            builder: RecordBatchBuilder::with_capacity(
                compression,
                batch_size
                    .min(MAX_PREALLOCATED_BATCH_BYTES)
                    .saturating_sub(HEADER_BYTES),
            ),
            opened: now,
            tokens: Vec::new(),
            slot: open(),
        });
        let before = open.builder.uncompressed_bytes();
        open.builder.push(record)?;
        open.tokens.push(token);
        let index = open.tokens.len() - 1;
        let value = read(&open.slot);
        let added = open.builder.uncompressed_bytes() - before;
        if open.builder.uncompressed_bytes() >= batch_size {
            if let Some(full) = queue.open.take() {
                queue.closed.push_back(full);
                closed = true;
            }
        }
        self.buffered_bytes += added;
        Ok((
            Pushed {
                batch_opened: opened,
                batch_closed: closed,
            },
            value,
            index,
        ))
    }

    /// Closes every open batch, so the next `ready` hands them all out. The
    /// producer also calls it when `send` finds the buffer full: lingering
    /// batches are what would free it (as Kafka's accumulator does for
    /// callers waiting on memory).
    pub fn flush(&mut self) {
        for q in &mut self.partitions {
            if let Some(open) = q.open.take() {
                q.closed.push_back(open);
            }
        }
    }

    /// Closes batches open for `linger` or longer, then hands out closed
    /// batches, oldest first per partition, at most `allowance(partition)`
    /// of them (the sender's free in-flight slots). Batches beyond that wait,
    /// and records that arrive meanwhile keep filling the open batch, so
    /// they share the next request.
    pub fn ready(
        &mut self,
        now: Instant,
        mut allowance: impl FnMut(u32) -> usize,
    ) -> Vec<ReadyBatch<T, B>> {
        let linger = self.config.linger;
        let mut out = Vec::new();
        for (i, q) in self.partitions.iter_mut().enumerate() {
            let partition = i as u32;
            let mut slots = allowance(partition);
            if slots == 0 {
                continue;
            }
            if q.open
                .as_ref()
                .is_some_and(|o| now.saturating_duration_since(o.opened) >= linger)
            {
                if let Some(open) = q.open.take() {
                    q.closed.push_back(open);
                }
            }
            while slots > 0 {
                let Some(batch) = q.closed.pop_front() else {
                    break;
                };
                slots -= 1;
                let reserved_bytes = batch.builder.uncompressed_bytes() - HEADER_BYTES;
                out.push(ReadyBatch {
                    partition,
                    records: batch.builder.len(),
                    batch: batch.builder,
                    tokens: batch.tokens,
                    reserved_bytes,
                    slot: batch.slot,
                });
            }
        }
        out
    }

    /// When the earliest batch of a partition that `can_send` falls due:
    /// an open batch when its linger runs out, a closed one at once. A
    /// partition that cannot send (no free in-flight slot) is left out, so
    /// its due batch never hides another partition's linger deadline; an
    /// answer that frees its slot wakes the sender anyway.
    pub fn next_deadline(&self, can_send: impl Fn(u32) -> bool) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for (i, q) in self.partitions.iter().enumerate() {
            if !can_send(i as u32) {
                continue;
            }
            if let Some(first) = q.closed.front() {
                earliest = Some(earliest.map_or(first.opened, |e| e.min(first.opened)));
            }
            if let Some(open) = &q.open {
                let due = open.opened + self.config.linger;
                earliest = Some(earliest.map_or(due, |e| e.min(due)));
            }
        }
        earliest
    }

    /// Gives back the buffer memory of an answered (or failed) batch.
    pub fn release(&mut self, reserved_bytes: usize) {
        self.buffered_bytes = self.buffered_bytes.saturating_sub(reserved_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rill_protocol::batch::validate_batch;
    use rill_protocol::RecordBatch;

    fn config(batch_size: usize, linger_ms: u64) -> AccumulatorConfig {
        AccumulatorConfig {
            batch_size_bytes: batch_size,
            linger: Duration::from_millis(linger_ms),
            max_request_size_bytes: 10_000,
            compression: Compression::None,
            buffer_memory_bytes: 100_000,
        }
    }

    fn rec(value: &[u8]) -> NewRecord<'_> {
        NewRecord::new(None, value, 1)
    }

    fn all(_: u32) -> usize {
        usize::MAX
    }

    fn values(batch: &ReadyBatch<u32>) -> usize {
        let bytes = batch.batch.build().unwrap();
        validate_batch(&bytes, &Default::default()).unwrap();
        RecordBatch::new(&bytes)
            .unwrap()
            .records(1 << 20)
            .unwrap()
            .iter()
            .count()
    }

    #[test]
    fn a_batch_waits_for_linger_then_goes() {
        let t0 = Instant::now();
        let mut acc = Accumulator::<_, ()>::new(config(16_384, 100));
        acc.push(0, &rec(b"a"), 1, t0).unwrap();
        acc.push(0, &rec(b"b"), 2, t0 + Duration::from_millis(50))
            .unwrap();
        assert_eq!(
            acc.next_deadline(|_| true),
            Some(t0 + Duration::from_millis(100))
        );
        assert!(acc.ready(t0 + Duration::from_millis(99), all).is_empty());
        let out = acc.ready(t0 + Duration::from_millis(100), all);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].tokens, vec![1, 2]);
        assert_eq!(values(&out[0]), 2);
        assert_eq!(acc.next_deadline(|_| true), None);
        assert!(acc.is_empty());
    }

    #[test]
    fn batch_size_boundaries() {
        let t0 = Instant::now();
        let probe = RecordBatchBuilder::new(Compression::None);
        let one = probe.encoded_len(&rec(&[7u8; 100])).unwrap();
        // Room for exactly three records.
        let mut acc = Accumulator::<_, ()>::new(config(HEADER_BYTES + 3 * one, 1000));
        for i in 0..3 {
            let pushed = acc.push(0, &rec(&[7u8; 100]), i, t0).unwrap();
            assert_eq!(
                pushed.batch_opened,
                i == 0,
                "the first record opens the batch"
            );
            assert_eq!(
                pushed.batch_closed,
                i == 2,
                "the third record fills the batch"
            );
        }
        acc.push(0, &rec(&[7u8; 100]), 3, t0).unwrap();
        let out = acc.ready(t0, all);
        assert_eq!(
            out.len(),
            1,
            "the full batch goes at once, the fourth record waits"
        );
        assert_eq!(out[0].tokens, vec![0, 1, 2]);
        assert!(out[0].batch.build().unwrap().len() <= HEADER_BYTES + 3 * one);
    }

    #[test]
    fn a_record_larger_than_batch_size_travels_alone() {
        let t0 = Instant::now();
        let mut acc = Accumulator::<_, ()>::new(config(200, 1000));
        acc.push(0, &rec(b"small"), 0, t0).unwrap();
        acc.push(0, &rec(&[1u8; 500]), 1, t0).unwrap();
        acc.push(0, &rec(b"after"), 2, t0).unwrap();
        let out = acc.ready(t0, all);
        let tokens: Vec<Vec<u32>> = out.iter().map(|b| b.tokens.clone()).collect();
        assert_eq!(
            tokens,
            vec![vec![0], vec![1]],
            "small closed, big alone, 'after' still open"
        );
        acc.flush();
        assert_eq!(acc.ready(t0, all)[0].tokens, vec![2]);
    }

    #[test]
    fn a_record_over_max_request_size_is_refused_with_both_numbers() {
        let mut acc: Accumulator<u32> = Accumulator::<_, ()>::new(config(16_384, 0));
        let err = acc
            .push(0, &rec(&[0u8; 20_000]), 0, Instant::now())
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(
            err,
            PushError::RecordTooLarge {
                max_request_size: 10_000,
                ..
            }
        ));
        assert!(msg.contains("10000") && msg.contains("2007"), "{msg}");
        assert!(acc.is_empty());
    }

    #[test]
    fn linger_zero_sends_at_once_but_shares_while_blocked() {
        let t0 = Instant::now();
        let mut acc = Accumulator::<_, ()>::new(config(16_384, 0));
        acc.push(0, &rec(b"a"), 0, t0).unwrap();
        assert_eq!(acc.next_deadline(|_| true), Some(t0));
        assert_eq!(acc.ready(t0, all).len(), 1);
        // While partition 0 has a request in flight, records pile up in one
        // batch and go together when it may send again.
        for i in 1..5 {
            acc.push(0, &rec(b"b"), i, t0).unwrap();
        }
        assert!(acc.ready(t0, |_| 0).is_empty());
        let out = acc.ready(t0, all);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].tokens, vec![1, 2, 3, 4]);
    }

    #[test]
    fn no_more_batches_than_the_allowance() {
        let t0 = Instant::now();
        let probe = RecordBatchBuilder::new(Compression::None);
        let one = probe.encoded_len(&rec(b"v")).unwrap();
        let mut acc = Accumulator::<_, ()>::new(config(HEADER_BYTES + one, 1000));
        for i in 0..5 {
            acc.push(0, &rec(b"v"), i, t0).unwrap();
        }
        let first = acc.ready(t0, |_| 1);
        assert_eq!(first.len(), 1, "one slot, one batch");
        assert_eq!(first[0].tokens, vec![0]);
        let rest = acc.ready(t0, |_| 2);
        let tokens: Vec<u32> = rest.iter().flat_map(|b| b.tokens.clone()).collect();
        assert_eq!(tokens, vec![1, 2], "the oldest go first");
    }

    #[test]
    fn flush_sends_everything_and_partitions_are_separate() {
        let t0 = Instant::now();
        let mut acc = Accumulator::<_, ()>::new(config(16_384, 60_000));
        acc.push(0, &rec(b"a"), 0, t0).unwrap();
        acc.push(2, &rec(b"b"), 1, t0).unwrap();
        assert!(acc.ready(t0, all).is_empty());
        acc.flush();
        let out = acc.ready(t0, all);
        let parts: Vec<u32> = out.iter().map(|b| b.partition).collect();
        assert_eq!(parts, vec![0, 2]);
    }

    #[test]
    fn buffer_memory_bounds_what_waits() {
        let t0 = Instant::now();
        let mut cfg = config(16_384, 0);
        cfg.buffer_memory_bytes = 1_000;
        let mut acc = Accumulator::<_, ()>::new(cfg);
        let mut taken = 0;
        while acc.push(0, &rec(&[0u8; 90]), taken, t0).is_ok() {
            taken += 1;
        }
        assert!(acc.buffered_bytes() <= 1_000);
        // The same record again does not fit; nothing was taken by the try.
        let before = acc.buffered_bytes();
        assert!(matches!(
            acc.push(0, &rec(&[0u8; 90]), 99, t0),
            Err(PushError::BufferFull { .. })
        ));
        assert_eq!(acc.buffered_bytes(), before);
        let out = acc.ready(t0, all);
        for b in &out {
            acc.release(b.reserved_bytes);
        }
        assert_eq!(acc.buffered_bytes(), 0);
        assert!(
            acc.push(0, &rec(&[0u8; 90]), 99, t0).is_ok(),
            "space again once answered"
        );
    }

    #[test]
    fn compression_applies_per_batch() {
        let t0 = Instant::now();
        for codec in Compression::ALL {
            let mut cfg = config(16_384, 0);
            cfg.compression = codec;
            let mut acc = Accumulator::<_, ()>::new(cfg);
            for i in 0..50 {
                acc.push(0, &rec(&[b'z'; 200]), i, t0).unwrap();
            }
            let out = acc.ready(t0, all);
            assert_eq!(values(&out[0]), 50, "{codec:?}");
            let header = rill_protocol::BatchHeader::parse(&out[0].batch.build().unwrap()).unwrap();
            assert_eq!(header.compression().unwrap(), codec);
        }
    }

    #[test]
    fn a_partition_without_a_free_slot_does_not_hide_another_partitions_linger() {
        let t0 = Instant::now();
        let mut acc = Accumulator::<_, ()>::new(config(16_384, 100));
        // Partition 0 has a closed batch, due now, but no free slot.
        acc.push(0, &rec(b"a"), 0, t0).unwrap();
        acc.flush();
        acc.push(1, &rec(b"b"), 1, t0 + Duration::from_millis(10))
            .unwrap();
        assert_eq!(
            acc.next_deadline(|_| true),
            Some(t0),
            "partition 0 is due now"
        );
        assert_eq!(
            acc.next_deadline(|p| p != 0),
            Some(t0 + Duration::from_millis(110)),
            "partition 1's linger still counts while partition 0 waits for a slot"
        );
        let out = acc.ready(t0 + Duration::from_millis(110), |p| usize::from(p != 0));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].partition, 1);
    }
}

//! The partition log: segments in offset order, the last one active.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rill_protocol::batch::{
    set_base_offset, set_partition_leader_epoch, split_batches, validate_batch, BatchHeader,
};

use crate::checkpoint::{self, Checkpoint};
use crate::config::{FlushPolicy, LogConfig};
use crate::error::IoContext;
use crate::io::Backend;
use crate::leader_epoch::{EpochEntry, LeaderEpochs};
use crate::segment::{file_name, parse_file_name, BatchMeta, Segment};
use crate::slice::Batches;
use crate::StorageError;

/// Most batches one `append` or `append_replica` call accepts (a produce
/// request carries one per partition in practice; a replica fetch is bounded
/// by its byte limit, and this keeps one call's validation bounded too).
pub const MAX_BATCHES_PER_APPEND: usize = 1024;

/// What an append stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
    /// Whether the data was fsynced before `append` returned.
    pub durable: bool,
}

/// Whole batches read from the log, with the log's bounds at that moment:
/// in memory (`Vec<u8>`), or as [`Batches`] that may be left in their file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult<B = Vec<u8>> {
    /// Concatenated batches, exactly as stored (may be empty).
    pub batches: B,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
    pub high_watermark: u64,
}

/// What a retention pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    pub log_start_offset: u64,
}

/// The first record at or after a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub offset: u64,
    pub timestamp: i64,
}

/// An ordered, durable log of record batches for one partition.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    backend: Arc<dyn Backend>,
    config: LogConfig,
    /// Keyed by base offset; never empty; the last is the active segment.
    segments: BTreeMap<u64, Segment>,
    log_start_offset: u64,
    high_watermark: u64,
    /// Offsets below this are fsynced.
    recovery_point: u64,
    unflushed_records: u64,
    last_flush: Instant,
    failed: bool,
    /// Which offset each leader epoch started at (persisted beside the
    /// segments); a follower uses it to find where it diverged.
    epochs: LeaderEpochs,
    /// The epoch `append` stamps into each batch, once this log's SPU leads
    /// it (`begin_leader_epoch`). `None`: batches keep the epoch they came
    /// with, as before replication existed.
    leader_epoch: Option<i32>,
    /// The partition leader epoch of the last batch stored, kept in memory
    /// so asking costs no read.
    last_batch_epoch: Option<i32>,
}

/// Bytes at the front of a batch that an append may rewrite: the base
/// offset (0..8), the length (8..12, kept) and the partition leader epoch
/// (12..16). The CRC covers none of them.
pub const REWRITTEN_HEADER_BYTES: usize = 16;

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering from whatever state a
    /// crash left: a torn tail is cut to the last whole batch, indexes that
    /// are missing or make no sense are rebuilt, segments left behind by an
    /// interrupted retention pass are removed.
    pub fn open(
        backend: Arc<dyn Backend>,
        dir: impl Into<PathBuf>,
        config: LogConfig,
    ) -> Result<Self, StorageError> {
        config.check()?;
        let dir = dir.into();
        backend.create_dir_all(&dir).ctx("create directory", &dir)?;
        let names = backend.list(&dir).ctx("list", &dir)?;
        let cp = checkpoint::read(backend.as_ref(), &dir);
        // No file (a data directory from before replication): an empty
        // history. A damaged one is an error: guessing could keep a record
        // that a new leader does not have.
        let epochs = LeaderEpochs::open(backend.as_ref(), &dir)?;
        let mut bases: Vec<u64> = names
            .iter()
            .filter_map(|n| parse_file_name(n, "log"))
            .collect();
        bases.sort_unstable();
        remove_strays(backend.as_ref(), &dir, &names, &bases)?;

        let log_start_checkpoint = cp.map_or(0, |c| c.log_start_offset);
        let recovery_point = cp.map_or(0, |c| c.recovery_point);
        let mut segments = BTreeMap::new();
        let mut dropped_after_gap = false;
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            // Past a hole, or wholly below the log start (left by an
            // interrupted retention pass): not part of the log.
            if dropped_after_gap || next_base.is_some_and(|n| n <= log_start_checkpoint) {
                delete_segment_files(backend.as_ref(), &dir, base)?;
                continue;
            }
            let interval = config.index_interval_bytes;
            let segment = match next_base {
                Some(next) if next <= recovery_point => {
                    Segment::open_closed(backend.as_ref(), &dir, base, next, interval)?
                }
                _ => {
                    let (mut seg, end) =
                        Segment::open_recovering(backend.as_ref(), &dir, base, interval)?;
                    if next_base.is_some() {
                        seg.seal()?;
                    }
                    // A closed segment that lost its tail leaves a hole: what
                    // follows it cannot be trusted to be contiguous.
                    if next_base.is_some_and(|n| end.next_offset != n) {
                        dropped_after_gap = true;
                    }
                    seg
                }
            };
            segments.insert(base, segment);
        }
        if segments.is_empty() {
            let base = log_start_checkpoint;
            let seg = Segment::create(backend.as_ref(), &dir, base, config.index_interval_bytes)?;
            segments.insert(base, seg);
        }
        backend.sync_dir(&dir).ctx("fsync directory", &dir)?;

        let first_base = segments.keys().next().copied().unwrap_or(0);
        let log_end = segments
            .values()
            .next_back()
            .map_or(0, Segment::next_offset);
        let log_start_offset = log_start_checkpoint.max(first_base).min(log_end);
        // Without a checkpoint, everything stored counts as committed: on a
        // single node the leader's log is the committed log.
        let high_watermark = cp.map_or(log_end, |c| c.high_watermark).min(log_end);
        let mut log = Self {
            dir,
            backend,
            config,
            segments,
            log_start_offset,
            high_watermark,
            recovery_point: 0,
            unflushed_records: 0,
            last_flush: Instant::now(),
            failed: false,
            epochs,
            leader_epoch: None,
            last_batch_epoch: None,
        };
        log.flush()?;
        // Recovery may have cut a torn tail whose epochs were already
        // recorded (the history is saved before the data it describes), and
        // an interrupted retention pass may have moved the start without it.
        // An epoch starting exactly at the log end is kept: it is true (a
        // leader that began its epoch and wrote nothing yet).
        let mut trimmed = log.epochs.clone();
        trimmed.truncate_to(log_end.saturating_add(1));
        trimmed.advance_start(log.log_start_offset);
        log.replace_epochs(trimmed)?;
        log.last_batch_epoch = log.find_last_batch_epoch()?;
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Changes the settings of an open log (a topic's config altered at run
    /// time), checked as [`PartitionLog::open`] checks them. Each takes
    /// effect at its next use: `max_batch_bytes` and `max_decompressed_bytes`
    /// at the next append, `segment_bytes` at the next roll check (a smaller
    /// size rolls the active segment at the next append that would pass
    /// it), retention at the next [`PartitionLog::apply_retention`], the
    /// flush policy at the next append or [`PartitionLog::flush_if_due`],
    /// and `index_interval_bytes` from the next segment on (a segment keeps
    /// the interval it was opened with).
    pub fn reconfigure(&mut self, config: LogConfig) -> Result<(), StorageError> {
        config.check()?;
        self.config = config;
        Ok(())
    }

    /// First offset still stored.
    pub fn log_start_offset(&self) -> u64 {
        self.log_start_offset
    }

    /// Offset the next record will get.
    pub fn log_end_offset(&self) -> u64 {
        self.active().next_offset()
    }

    /// Offsets below this are committed (readable at `ReadCommitted`).
    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    /// Moves the high watermark, clamped to the log end. It may only grow.
    pub fn set_high_watermark(&mut self, offset: u64) {
        self.high_watermark = self.high_watermark.max(offset.min(self.log_end_offset()));
    }

    /// Bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<u64> {
        self.segments.keys().copied().collect()
    }

    fn active(&self) -> &Segment {
        // `segments` is never empty: open creates one, retention keeps the last.
        self.segments
            .values()
            .next_back()
            .unwrap_or_else(|| unreachable!("a log always has an active segment"))
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .unwrap_or_else(|| unreachable!("a log always has an active segment"))
    }

    /// Appends one or more whole batches (a produce request's record set).
    /// Every batch is validated first (length, magic, CRC, record count,
    /// offset deltas); if any fails, nothing is written. Each batch's
    /// `base_offset` is rewritten in `batches` to its place in the log, and,
    /// after [`Self::begin_leader_epoch`], its `partition_leader_epoch` to
    /// that epoch (then an append after a newer epoch reached the log, as a
    /// follower, is refused with [`StorageError::StaleLeaderEpoch`]); the
    /// bytes are stored as they are otherwise.
    pub fn append(&mut self, batches: &mut [u8]) -> Result<AppendInfo, StorageError> {
        let (metas, last_epoch) = self.prepare_append(batches)?;
        let mut pos = 0usize;
        for meta in &metas {
            self.stamp(batches.get_mut(pos..).unwrap_or_default(), meta)?;
            pos += meta.bytes as usize;
        }
        self.write_batches(&[batches], &metas, last_epoch)
    }

    /// [`Self::append`] of batches the caller cannot have rewritten (a
    /// shared buffer): the same checks and the same bytes stored, without
    /// copying the batches. Each batch's first [`REWRITTEN_HEADER_BYTES`]
    /// are stamped in a copy and written before the rest of the batch as it
    /// is, all in one vectored write.
    pub fn append_shared(&mut self, batches: &[u8]) -> Result<AppendInfo, StorageError> {
        let (metas, last_epoch) = self.prepare_append(batches)?;
        let mut heads = vec![[0u8; REWRITTEN_HEADER_BYTES]; metas.len()];
        let mut rests: Vec<&[u8]> = Vec::with_capacity(metas.len());
        let mut pos = 0usize;
        for (meta, head) in metas.iter().zip(&mut heads) {
            // Validated: every batch is longer than its header.
            let batch = batches
                .get(pos..pos + meta.bytes as usize)
                .unwrap_or_default();
            let (front, rest) = batch.split_at(REWRITTEN_HEADER_BYTES.min(batch.len()));
            head.get_mut(..front.len())
                .unwrap_or_default()
                .copy_from_slice(front);
            self.stamp(head, meta)?;
            rests.push(rest);
            pos += meta.bytes as usize;
        }
        let pieces: Vec<&[u8]> = heads
            .iter()
            .zip(&rests)
            .flat_map(|(head, rest)| [&head[..], rest])
            .collect();
        self.write_batches(&pieces, &metas, last_epoch)
    }

    /// Writes the batch's place in the log into the header at the front of
    /// `batch`: its base offset and, after [`Self::begin_leader_epoch`],
    /// the leader epoch (both outside the CRC).
    fn stamp(&self, batch: &mut [u8], meta: &BatchMeta) -> Result<(), StorageError> {
        set_base_offset(batch, meta.base_offset as i64)?;
        if let Some(epoch) = self.leader_epoch {
            set_partition_leader_epoch(batch, epoch)?;
        }
        Ok(())
    }

    /// What both appends check before writing: the batches validate, the
    /// leader epoch is known, the active segment has room (rolling if
    /// not). Returns each batch's place and the epoch of the last one.
    fn prepare_append(
        &mut self,
        batches: &[u8],
    ) -> Result<(Vec<BatchMeta>, Option<i32>), StorageError> {
        self.check_writable()?;
        if batches.is_empty() {
            return Err(StorageError::EmptyAppend);
        }
        let limits = self.config.limits();
        let mut metas: Vec<BatchMeta> = Vec::with_capacity(1);
        let mut next = self.log_end_offset();
        let mut last_header_epoch = None;
        for slice in split_batches(batches) {
            let slice = slice?;
            if metas.len() == MAX_BATCHES_PER_APPEND {
                return Err(StorageError::Config(format!(
                    "more than {MAX_BATCHES_PER_APPEND} batches in one append"
                )));
            }
            let header: BatchHeader = validate_batch(slice, &limits)?;
            last_header_epoch = Some(header.partition_leader_epoch);
            let count = u64::from(header.records_count.unsigned_abs());
            metas.push(BatchMeta {
                base_offset: next,
                next_offset: next + count,
                max_timestamp: header.max_timestamp,
                bytes: slice.len() as u64,
            });
            next += count;
        }
        // A leader stamps its epoch into every batch; the history must say
        // where that epoch started before any batch of it is stored.
        if let Some(epoch) = self.leader_epoch {
            // A newer epoch reached this log (it followed another leader
            // since): this SPU no longer leads in `epoch`.
            if let Some(latest) = self.epochs.latest().filter(|l| l.epoch > epoch) {
                return Err(StorageError::StaleLeaderEpoch {
                    epoch,
                    latest: latest.epoch,
                });
            }
            // Cloned only at an epoch change: not on every append.
            if self.epochs.latest().map(|l| l.epoch) != Some(epoch) {
                let mut epochs = self.epochs.clone();
                note_epoch(&mut epochs, epoch, self.log_end_offset());
                self.replace_epochs(epochs)?;
            }
        }
        self.roll_if_needed(batches.len() as u64, next)?;
        Ok((metas, self.leader_epoch.or(last_header_epoch)))
    }

    /// Whether [`Self::append`] of `bytes` would touch nothing but the page
    /// cache: the flush policy is `Never`, the active segment has room (no
    /// roll, which creates and fsyncs files) and no new leader epoch must
    /// be saved first. Callers on an async thread use it to decide whether
    /// they may append in place instead of handing the append to a thread
    /// that may block. `bytes` also bounds the record count (a record
    /// takes more than one byte), so the 32-bit relative offsets are
    /// checked without parsing.
    pub fn append_is_light(&self, bytes: usize) -> bool {
        let active = self.active();
        let bytes = bytes as u64;
        let epoch_known = match self.leader_epoch {
            None => true,
            Some(epoch) => self.epochs.latest().map(|l| l.epoch) == Some(epoch),
        };
        self.config.flush == FlushPolicy::Never
            && !self.failed
            && epoch_known
            && active.size() + bytes <= self.config.segment_bytes
            && self.log_end_offset() + bytes - active.base_offset() <= u64::from(u32::MAX)
    }

    /// Follower append: whole batches copied from the leader, stored byte
    /// for byte (their base offsets, partition leader epochs and CRCs as the
    /// leader wrote them). Validated like [`Self::append`] (length, magic,
    /// CRC, counts); the first batch must start at the log end and each next
    /// one right after the previous one, else
    /// [`StorageError::ReplicaOffsetMismatch`] and nothing is written. Each
    /// new partition leader epoch in the headers is recorded in the
    /// leader-epoch history (persisted, before the data) at the base offset
    /// of its first batch.
    pub fn append_replica(&mut self, batches: &[u8]) -> Result<AppendInfo, StorageError> {
        self.check_writable()?;
        if batches.is_empty() {
            return Err(StorageError::EmptyAppend);
        }
        let limits = self.config.limits();
        let mut metas: Vec<BatchMeta> = Vec::with_capacity(1);
        // The history as these batches change it; cloned only at an epoch
        // change, not on every fetch.
        let mut epochs: Option<LeaderEpochs> = None;
        let mut next = self.log_end_offset();
        let mut last_epoch = None;
        for slice in split_batches(batches) {
            let slice = slice?;
            if metas.len() == MAX_BATCHES_PER_APPEND {
                return Err(StorageError::Config(format!(
                    "more than {MAX_BATCHES_PER_APPEND} batches in one append"
                )));
            }
            let header = validate_batch(slice, &limits)?;
            if u64::try_from(header.base_offset).ok() != Some(next) {
                return Err(StorageError::ReplicaOffsetMismatch {
                    expected: next,
                    found: header.base_offset,
                });
            }
            let count = u64::from(header.records_count.unsigned_abs());
            let epoch = header.partition_leader_epoch;
            let current = epochs.as_ref().unwrap_or(&self.epochs);
            if epoch >= 0 && current.latest().map(|l| l.epoch) != Some(epoch) {
                let changed = epochs.get_or_insert_with(|| self.epochs.clone());
                note_epoch(changed, epoch, next);
            }
            last_epoch = Some(header.partition_leader_epoch);
            metas.push(BatchMeta {
                base_offset: next,
                next_offset: next + count,
                max_timestamp: header.max_timestamp,
                bytes: slice.len() as u64,
            });
            next += count;
        }
        // Kafka's order: the history first. Should the data then be lost,
        // recovery at open drops the epochs past the recovered end.
        if let Some(epochs) = epochs {
            self.replace_epochs(epochs)?;
        }
        self.roll_if_needed(batches.len() as u64, next)?;
        self.write_batches(&[batches], &metas, last_epoch)
    }

    fn check_writable(&self) -> Result<(), StorageError> {
        if self.failed {
            return Err(StorageError::Failed {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// Rolls the active segment if `bytes` more would take it past
    /// `segment_bytes`, or if offsets up to `next` would not fit its 32-bit
    /// relative offsets.
    fn roll_if_needed(&mut self, bytes: u64, next: u64) -> Result<(), StorageError> {
        let active = self.active();
        let too_big = active.size() > 0 && active.size() + bytes > self.config.segment_bytes;
        let offsets_overflow = next - active.base_offset() > u64::from(u32::MAX);
        if too_big || offsets_overflow {
            self.roll()?;
        }
        Ok(())
    }

    /// Writes validated batches (described by `metas`) to the active segment
    /// and applies the flush policy.
    fn write_batches(
        &mut self,
        batches: &[&[u8]],
        metas: &[BatchMeta],
        last_epoch: Option<i32>,
    ) -> Result<AppendInfo, StorageError> {
        let base_offset = self.log_end_offset();
        let next = metas.last().map_or(base_offset, |m| m.next_offset);
        let records: u64 = next - base_offset;
        let segment_bytes = self.config.segment_bytes;
        if let Err((err, restored)) = self.active_mut().append(batches, metas, segment_bytes) {
            // A write that could not be undone leaves the tail unknown: stop
            // writing until recovery on reopen sorts it out.
            self.failed = !restored;
            return Err(err);
        }
        if last_epoch.is_some() {
            self.last_batch_epoch = last_epoch;
        }
        self.unflushed_records += records;
        let durable = match self.config.flush {
            FlushPolicy::Always => {
                self.sync_active()?;
                true
            }
            FlushPolicy::Interval { messages, interval } => {
                if self.unflushed_records >= messages || self.last_flush.elapsed() >= interval {
                    self.sync_active()?;
                    true
                } else {
                    false
                }
            }
            FlushPolicy::Never => false,
        };
        Ok(AppendInfo {
            base_offset,
            last_offset: next.saturating_sub(1),
            durable,
        })
    }

    /// Saves `epochs` as the history if it differs from the current one.
    fn replace_epochs(&mut self, epochs: LeaderEpochs) -> Result<(), StorageError> {
        if epochs != self.epochs {
            epochs.save(self.backend.as_ref(), &self.dir)?;
            self.epochs = epochs;
        }
        Ok(())
    }

    /// The epoch of the newest batch, read from the last segment that holds
    /// one.
    fn find_last_batch_epoch(&self) -> Result<Option<i32>, StorageError> {
        for seg in self.segments.values().rev() {
            if let Some(h) = seg.last_header()? {
                return Ok(Some(h.partition_leader_epoch));
            }
        }
        Ok(None)
    }

    /// Removes every record at or after `offset` (a follower cutting back to
    /// where its log and the new leader's agree). `offset` must be within
    /// `log_start_offset()..=log_end_offset()`; an offset inside a batch
    /// cuts at that batch's start (a batch is never split). Returns the new
    /// log end. Truncating to the log end changes nothing.
    ///
    /// Order, so that a crash at any step never brings a removed record back
    /// and never keeps history the data contradicts: the leader-epoch
    /// history is cut and saved (less history only makes a follower
    /// truncate more, never less); the checkpoint is written with the high
    /// watermark and recovery point lowered (so reopen scans the cut
    /// segment and sees the gap to any segment after it, which it then
    /// drops); the segment holding the cut is cut and fsynced; later
    /// segments are deleted and the directory fsynced.
    pub fn truncate_to(&mut self, offset: u64) -> Result<u64, StorageError> {
        self.check_writable()?;
        let end = self.log_end_offset();
        if offset < self.log_start_offset || offset > end {
            return Err(self.out_of_range(offset));
        }
        if offset == end {
            return Ok(end);
        }
        let Some((&seg_base, seg)) = self.segments.range(..=offset).next_back() else {
            return Err(self.out_of_range(offset));
        };
        let Some((pos, cut)) = seg.batch_start(offset)? else {
            return Err(StorageError::Corrupt {
                path: self.dir.join(file_name(seg_base, "log")),
                reason: format!("offset {offset} is not where the index says"),
            });
        };
        if let Err(e) = self.cut_at(seg_base, pos, cut) {
            // The history, the checkpoint or the segments may be half cut:
            // refuse writes until reopen recovers a consistent state from
            // the disk (each step leaves one that recovery handles).
            self.failed = true;
            return Err(e);
        }
        // The cut segment was fsynced and the ones before it were sealed:
        // everything below the cut is durable.
        self.recovery_point = cut;
        self.unflushed_records = 0;
        self.last_flush = Instant::now();
        self.last_batch_epoch = self.find_last_batch_epoch()?;
        Ok(cut)
    }

    /// The steps of [`Self::truncate_to`] that write, in their order.
    fn cut_at(&mut self, seg_base: u64, pos: u64, cut: u64) -> Result<(), StorageError> {
        let mut epochs = self.epochs.clone();
        epochs.truncate_to(cut);
        self.replace_epochs(epochs)?;
        self.high_watermark = self.high_watermark.min(cut);
        self.recovery_point = self.recovery_point.min(cut);
        // The log start sits on a batch boundary (retention moves it to a
        // segment base), so this only matters for a start inside a batch.
        self.log_start_offset = self.log_start_offset.min(cut);
        self.write_checkpoint()?;
        if let Some(seg) = self.segments.get_mut(&seg_base) {
            seg.truncate(pos, cut)?;
        }
        let doomed: Vec<u64> = self
            .segments
            .range(seg_base.saturating_add(1)..)
            .map(|(b, _)| *b)
            .collect();
        for base in doomed {
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete(self.backend.as_ref())?;
            }
        }
        self.backend
            .sync_dir(&self.dir)
            .ctx("fsync directory", &self.dir)
    }

    /// Leader: from now on this log is written in leader epoch `epoch`.
    /// Records `(epoch, log_end_offset())` in the leader-epoch history and
    /// persists it, unless the latest entry already has this epoch (then it
    /// only resumes stamping). An epoch below the latest is refused
    /// ([`StorageError::StaleLeaderEpoch`]), a negative one too (Kafka's -1
    /// means "no epoch"). Every later [`Self::append`] stamps `epoch` into
    /// each batch's `partitionLeaderEpoch` (outside the CRC).
    pub fn begin_leader_epoch(&mut self, epoch: i32) -> Result<(), StorageError> {
        self.check_writable()?;
        if epoch < 0 {
            return Err(StorageError::Config(format!(
                "leader epoch {epoch} must not be negative"
            )));
        }
        if let Some(latest) = self.epochs.latest() {
            if epoch < latest.epoch {
                return Err(StorageError::StaleLeaderEpoch {
                    epoch,
                    latest: latest.epoch,
                });
            }
        }
        let mut epochs = self.epochs.clone();
        note_epoch(&mut epochs, epoch, self.log_end_offset());
        self.replace_epochs(epochs)?;
        self.leader_epoch = Some(epoch);
        Ok(())
    }

    /// The leader-epoch history (loaded at `open` from the partition
    /// directory).
    pub fn leader_epochs(&self) -> &LeaderEpochs {
        &self.epochs
    }

    /// Kafka's OffsetForLeaderEpoch answer for `epoch`: the largest epoch of
    /// ours not above it and the offset where it ends here (the next
    /// epoch's start, or the log end for the latest). `None` if all of ours
    /// are newer.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<EpochEntry> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The partition leader epoch of the last batch in the log: -1 for
    /// batches written before epochs were stamped, `None` for an empty log.
    pub fn last_batch_epoch(&self) -> Option<i32> {
        self.last_batch_epoch
    }

    fn sync_active(&mut self) -> Result<(), StorageError> {
        if let Err(e) = self.active_mut().sync() {
            // After a failed fsync the kernel may have dropped the dirty
            // pages; nothing since the last good fsync can be trusted.
            self.failed = true;
            return Err(e);
        }
        self.recovery_point = self.log_end_offset();
        self.unflushed_records = 0;
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Closes the active segment and starts a new one at the log end.
    fn roll(&mut self) -> Result<(), StorageError> {
        let next = self.log_end_offset();
        self.active_mut().seal()?;
        self.recovery_point = next;
        let seg = Segment::create(
            self.backend.as_ref(),
            &self.dir,
            next,
            self.config.index_interval_bytes,
        )?;
        self.segments.insert(next, seg);
        self.write_checkpoint()
    }

    fn write_checkpoint(&self) -> Result<(), StorageError> {
        checkpoint::write(
            self.backend.as_ref(),
            &self.dir,
            &Checkpoint {
                log_start_offset: self.log_start_offset,
                high_watermark: self.high_watermark,
                recovery_point: self.recovery_point,
            },
        )
    }

    /// fsyncs the active segment, writes the indexes and the checkpoint.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.check_writable()?;
        let suspects: Vec<u64> = self
            .segments
            .iter()
            .filter(|(_, s)| s.index_suspect())
            .map(|(b, _)| *b)
            .collect();
        for base in suspects {
            if let Some(seg) = self.segments.get_mut(&base) {
                seg.rebuild()?;
            }
        }
        self.active_mut().write_indexes()?;
        self.sync_active()?;
        self.write_checkpoint()
    }

    /// For `FlushPolicy::Interval`: flushes if the interval has passed since
    /// the last fsync and something is unflushed. Returns whether it did.
    pub fn flush_if_due(&mut self, now: Instant) -> Result<bool, StorageError> {
        let FlushPolicy::Interval { interval, .. } = self.config.flush else {
            return Ok(false);
        };
        if self.unflushed_records == 0 || now.saturating_duration_since(self.last_flush) < interval
        {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// Flushes everything and closes the files.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.flush()
    }

    fn out_of_range(&self, offset: u64) -> StorageError {
        StorageError::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset(),
        }
    }

    /// Whole batches starting with the one that holds `offset`: at least one
    /// (even if larger than `max_bytes`), then more while they fit. Reads
    /// stay within one segment; an offset at the log end gives no batches.
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<ReadResult, StorageError> {
        self.read_until(offset, max_bytes, self.log_end_offset())
    }

    /// Like [`Self::read`], but only committed batches (below the high
    /// watermark), for `ReadCommitted` consumers.
    pub fn read_committed(
        &self,
        offset: u64,
        max_bytes: usize,
    ) -> Result<ReadResult, StorageError> {
        self.read_until(offset, max_bytes, self.high_watermark)
    }

    /// Like [`Self::read`] (`committed`: [`Self::read_committed`]), but a
    /// read of a real file is handed out as its byte range when it is
    /// [`MAX_SLICE_BATCHES`] batches or fewer, for the caller to send
    /// without reading it; otherwise the bytes are read as by `read`.
    pub fn read_batches(
        &self,
        offset: u64,
        max_bytes: usize,
        committed: bool,
    ) -> Result<ReadResult<Batches>, StorageError> {
        let end = if committed {
            self.high_watermark
        } else {
            self.log_end_offset()
        };
        self.read_with(offset, end, Batches::Bytes(Vec::new()), |seg, pos| {
            Ok(match seg.slice_from(pos, max_bytes, end)? {
                Some(slice) => Batches::File(slice),
                None => Batches::Bytes(seg.read_from(pos, max_bytes, end)?),
            })
        })
    }

    fn read_until(
        &self,
        offset: u64,
        max_bytes: usize,
        end: u64,
    ) -> Result<ReadResult, StorageError> {
        self.read_with(offset, end, Vec::new(), |seg, pos| {
            seg.read_from(pos, max_bytes, end)
        })
    }

    /// Checks `offset`, finds the batch that holds it, and has `read` take
    /// batches from its position (`none` when `offset` is at `end`).
    fn read_with<B>(
        &self,
        offset: u64,
        end: u64,
        none: B,
        read: impl FnOnce(&Segment, u64) -> Result<B, StorageError>,
    ) -> Result<ReadResult<B>, StorageError> {
        let log_end_offset = self.log_end_offset();
        if offset < self.log_start_offset || offset > log_end_offset {
            return Err(self.out_of_range(offset));
        }
        let mut result = ReadResult {
            batches: none,
            log_start_offset: self.log_start_offset,
            log_end_offset,
            high_watermark: self.high_watermark,
        };
        if offset >= end {
            return Ok(result);
        }
        let Some((_, seg)) = self.segments.range(..=offset).next_back() else {
            return Err(self.out_of_range(offset));
        };
        let Some(pos) = seg.find_position(offset)? else {
            return Err(StorageError::Corrupt {
                path: self.dir.join(file_name(seg.base_offset(), "log")),
                reason: format!("offset {offset} is not where the index says"),
            });
        };
        result.batches = read(seg, pos)?;
        Ok(result)
    }

    /// The first record whose timestamp is at or after `timestamp`
    /// (ListOffsets by time), or `None` if every record is older.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, StorageError> {
        for seg in self.segments.values() {
            if let Some((offset, ts)) = seg.offset_for_timestamp(timestamp)? {
                return Ok(Some(TimestampOffset {
                    offset: offset.max(self.log_start_offset),
                    timestamp: ts,
                }));
            }
        }
        Ok(None)
    }

    /// Headers of every batch in the last `segments` segments, oldest first:
    /// what an SPU needs to rebuild producer state after a restart, without
    /// reading any record.
    pub fn recent_batch_headers(
        &self,
        segments: usize,
    ) -> Result<Vec<rill_protocol::BatchHeader>, StorageError> {
        let skip = self.segments.len().saturating_sub(segments);
        let mut out = Vec::new();
        for seg in self.segments.values().skip(skip) {
            out.extend(seg.headers()?);
        }
        Ok(out)
    }

    /// The first record with the largest timestamp in the log (ListOffsets
    /// with `MAX_TIMESTAMP`), or `None` for an empty log.
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>, StorageError> {
        let newest = self
            .segments
            .values()
            .filter(|s| s.max_timestamp() >= 0)
            .fold(None::<&Segment>, |best, s| match best {
                Some(b) if b.max_timestamp() >= s.max_timestamp() => Some(b),
                _ => Some(s),
            });
        let Some(seg) = newest else {
            return Ok(None);
        };
        Ok(seg
            .offset_for_timestamp(seg.max_timestamp())?
            .map(|(offset, timestamp)| TimestampOffset { offset, timestamp }))
    }

    /// Deletes closed segments past `retention_ms` (their newest record older
    /// than `now_ms - retention_ms`) and, oldest first, those the log can lose
    /// while staying at least `retention_bytes` large. The active segment is
    /// kept. The new log start offset is made durable before any file goes.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome, StorageError> {
        let mut doomed = Vec::new();
        let mut remaining = self.size_bytes();
        let closed = self.segments.len().saturating_sub(1);
        for seg in self.segments.values().take(closed) {
            let expired = self.config.retention_ms.is_some_and(|ms| {
                seg.max_timestamp() >= 0
                    && now_ms.saturating_sub(seg.max_timestamp()) > ms.min(i64::MAX as u64) as i64
            });
            let oversized = self
                .config
                .retention_bytes
                .is_some_and(|max| remaining.saturating_sub(seg.size()) >= max);
            if !(expired || oversized) {
                break;
            }
            remaining -= seg.size();
            doomed.push(seg.base_offset());
        }
        self.delete_segments(doomed)
    }

    /// Deletes the closed segments whose every record is below `offset`
    /// (the next segment starts at or before it), moving the log start
    /// there, as retention does. For logs that rewrite what they still need
    /// past `offset` (the offsets topic's snapshots) and for followers
    /// taking their leader's log start. The active segment is kept.
    pub fn delete_segments_below(&mut self, offset: u64) -> Result<RetentionOutcome, StorageError> {
        let bases: Vec<u64> = self.segments.keys().copied().collect();
        let doomed = bases
            .iter()
            .zip(bases.iter().skip(1))
            .take_while(|(_, next)| **next <= offset)
            .map(|(base, _)| *base)
            .collect();
        self.delete_segments(doomed)
    }

    /// Deletes `doomed` (base offsets of the oldest closed segments, in
    /// order): the new log start is made durable before any file goes.
    fn delete_segments(&mut self, doomed: Vec<u64>) -> Result<RetentionOutcome, StorageError> {
        let mut outcome = RetentionOutcome {
            log_start_offset: self.log_start_offset,
            ..Default::default()
        };
        let Some(&last) = doomed.last() else {
            return Ok(outcome);
        };
        let new_start = self
            .segments
            .range(last + 1..)
            .next()
            .map_or(self.log_end_offset(), |(b, _)| *b);
        self.log_start_offset = self.log_start_offset.max(new_start);
        self.write_checkpoint()?;
        // After the checkpoint: a crash in between leaves epochs below the
        // log start, which open trims again.
        let mut epochs = self.epochs.clone();
        epochs.advance_start(self.log_start_offset);
        self.replace_epochs(epochs)?;
        for base in doomed {
            if let Some(seg) = self.segments.remove(&base) {
                outcome.bytes_deleted += seg.size();
                outcome.segments_deleted += 1;
                seg.delete(self.backend.as_ref())?;
            }
        }
        self.backend
            .sync_dir(&self.dir)
            .ctx("fsync directory", &self.dir)?;
        outcome.log_start_offset = self.log_start_offset;
        // Retention may have taken every batch (only an empty active
        // segment left).
        self.last_batch_epoch = self.find_last_batch_epoch()?;
        Ok(outcome)
    }

    /// Time since the last fsync, for callers that schedule interval flushes.
    pub fn since_last_flush(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_flush)
    }
}

/// Records that the batches from `start` on are written in `epoch`, as the
/// leader's own history would: a newer epoch starts there; an older one than
/// the latest (a follower that had begun an epoch of its own at its log end,
/// then fetched the new leader's older batches) first drops the entries from
/// `start` on, which no stored record backs. Says nothing if `epoch` is
/// already the latest.
fn note_epoch(epochs: &mut LeaderEpochs, epoch: i32, start: u64) {
    match epochs.latest() {
        Some(latest) if latest.epoch == epoch => {}
        Some(latest) if latest.epoch > epoch => {
            epochs.truncate_to(start);
            epochs.assign(epoch, start);
        }
        _ => {
            epochs.assign(epoch, start);
        }
    }
}

fn delete_segment_files(backend: &dyn Backend, dir: &Path, base: u64) -> Result<(), StorageError> {
    for ext in ["log", "index", "timeindex"] {
        let path = dir.join(file_name(base, ext));
        backend.remove(&path).ctx("delete", &path)?;
    }
    Ok(())
}

/// Index files and temp files that no log segment owns are removed.
fn remove_strays(
    backend: &dyn Backend,
    dir: &Path,
    names: &[String],
    bases: &[u64],
) -> Result<(), StorageError> {
    for name in names {
        let owned = ["index", "timeindex"]
            .iter()
            .find_map(|ext| parse_file_name(name, ext))
            .map(|base| bases.binary_search(&base).is_ok());
        let stray = owned == Some(false) || name.ends_with(".tmp");
        if stray {
            let path = dir.join(name);
            backend.remove(&path).ctx("delete", &path)?;
        }
    }
    Ok(())
}

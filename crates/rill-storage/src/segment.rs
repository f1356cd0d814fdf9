//! One segment: a log file of whole batches and its two sparse indexes.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rill_protocol::batch::{peek_batch_len, verify_stored_batch, BatchHeader, RecordBatch};

use crate::error::IoContext;
use crate::index::{IndexFile, OffsetEntry, TimeEntry};
use crate::io::{discard_stale, Backend, OpenMode, StorageFile};
use crate::slice::{FileSlice, MAX_SLICE_BATCHES};
use crate::StorageError;

/// Bytes read at a time while scanning a segment.
const SCAN_CHUNK_BYTES: usize = 1 << 20;
/// Bytes of a batch header read to step from batch to batch.
const HEADER_BYTES: usize = rill_protocol::batch::HEADER_BYTES;
/// Most a timestamp lookup expands one batch to find the record.
const MAX_LOOKUP_DECOMPRESSED_BYTES: usize = 64 << 20;
/// Newest batches whose place a segment keeps in memory, so a read near the
/// end of the log (a consumer keeping up, a follower) finds its batch and
/// the batches after it without reading their headers from the file (the
/// sparse offset index would have it step header by header from the last
/// entry: a dozen reads for small batches). 40 bytes each.
const RECENT_BATCHES: usize = 64;
/// Disk blocks an active segment allocates ahead of its end, at most (and
/// never past the segment's size limit). Appends into blocks allocated
/// beforehand skip the file system's per-page delayed allocation, which
/// cost ext4 about a third of each buffered write here and stalled for
/// whole seconds now and then; the file's size stays the bytes written.
/// Sealing a segment gives the unused blocks back.
pub(crate) const ALLOCATE_AHEAD_BYTES: u64 = 4 << 20;

pub(crate) fn file_name(base_offset: u64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// Parses `00000000000000000042.log` into 42.
pub(crate) fn parse_file_name(name: &str, ext: &str) -> Option<u64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// What a batch contributes to a segment's bookkeeping.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchMeta {
    pub base_offset: u64,
    pub next_offset: u64,
    pub max_timestamp: i64,
    pub bytes: u64,
}

impl BatchMeta {
    pub fn of(header: &BatchHeader, bytes: u64) -> Self {
        Self {
            base_offset: header.base_offset as u64,
            next_offset: header.next_offset() as u64,
            max_timestamp: header.max_timestamp,
            bytes,
        }
    }
}

/// Whole batches placed by the offset index (see `Segment::indexed_run`).
#[derive(Debug, Clone, Copy)]
struct IndexedRun {
    /// Bytes from the read's position to the entry's batch.
    bytes: u64,
    /// Offsets those batches span: their records, in a log without gaps.
    offsets: u64,
    /// Base offset the batch at the entry must have.
    next_base: u64,
}

/// How [`Segment::slice_on`] ended.
#[derive(Debug)]
enum Stepped {
    Slice(FileSlice),
    /// More than [`MAX_SLICE_BATCHES`] headers to read.
    TooMany,
    /// The batch at the index entry is not the one the entry names.
    IndexWrong,
}

/// How a scan of a segment ended.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// Bytes of whole, valid, contiguous batches from the start.
    pub valid_bytes: u64,
    /// Offset after the last valid batch.
    pub next_offset: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub stopped: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: u64,
    path: PathBuf,
    file: Box<dyn StorageFile>,
    size: u64,
    next_offset: u64,
    max_timestamp: i64,
    offset_index: IndexFile<OffsetEntry>,
    time_index: IndexFile<TimeEntry>,
    bytes_since_index: u64,
    index_interval_bytes: u64,
    /// Set when a lookup found the offset index disagreeing with the log;
    /// the log rebuilds the index at its next write.
    index_suspect: AtomicBool,
    /// The last [`RECENT_BATCHES`] batches written or scanned since the
    /// segment was opened, with their positions, in file order.
    recent: VecDeque<(u64, BatchMeta)>,
    /// File position up to which disk blocks were asked for
    /// ([`ALLOCATE_AHEAD_BYTES`]); 0 until the first append.
    allocated_to: u64,
}

impl Segment {
    fn paths(dir: &Path, base_offset: u64) -> [PathBuf; 3] {
        ["log", "index", "timeindex"].map(|ext| dir.join(file_name(base_offset, ext)))
    }

    /// Creates a new, empty segment and makes its directory entries durable.
    pub fn create(
        backend: &dyn Backend,
        dir: &Path,
        base_offset: u64,
        index_interval_bytes: u64,
    ) -> Result<Self, StorageError> {
        let [log, index, timeindex] = Self::paths(dir, base_offset);
        let file = backend.open(&log, OpenMode::Create).ctx("create", &log)?;
        discard_stale(file.as_ref(), &log)?;
        let offset_index = IndexFile::create(backend, &index)?;
        let time_index = IndexFile::create(backend, &timeindex)?;
        backend.sync_dir(dir).ctx("fsync directory", dir)?;
        Ok(Self {
            base_offset,
            path: log,
            file,
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_index,
            time_index,
            bytes_since_index: 0,
            index_interval_bytes,
            index_suspect: AtomicBool::new(false),
            recent: VecDeque::new(),
            allocated_to: 0,
        })
    }

    /// Opens a segment by scanning every batch: truncates a torn or corrupt
    /// tail and rebuilds both indexes. Used for the active segment and for
    /// any segment past the recovery point.
    pub fn open_recovering(
        backend: &dyn Backend,
        dir: &Path,
        base_offset: u64,
        index_interval_bytes: u64,
    ) -> Result<(Self, ScanEnd), StorageError> {
        let mut seg = Self::open_files(backend, dir, base_offset, index_interval_bytes)?;
        let end = seg.rebuild()?;
        if end.valid_bytes < seg.file.byte_len().ctx("stat", &seg.path)? {
            seg.file
                .set_len(end.valid_bytes)
                .ctx("truncate", &seg.path)?;
            seg.file.sync_data().ctx("fsync", &seg.path)?;
        }
        Ok((seg, end))
    }

    /// Opens a closed segment known to be whole (below the recovery point),
    /// trusting its indexes if they make sense and rebuilding them if not.
    pub fn open_closed(
        backend: &dyn Backend,
        dir: &Path,
        base_offset: u64,
        next_offset: u64,
        index_interval_bytes: u64,
    ) -> Result<Self, StorageError> {
        let [log, index, timeindex] = Self::paths(dir, base_offset);
        let file = backend.open(&log, OpenMode::Existing).ctx("open", &log)?;
        let size = file.byte_len().ctx("stat", &log)?;
        let offsets = IndexFile::<OffsetEntry>::load(backend, &index)?;
        let times = IndexFile::<TimeEntry>::load(backend, &timeindex)?;
        let span = next_offset.saturating_sub(base_offset);
        let sane = match (&offsets, &times) {
            (Some(o), Some(t)) => {
                offsets_make_sense(o.entries(), size, span, index_interval_bytes)
                    && times_make_sense(t.entries(), o.entries())
            }
            _ => false,
        };
        if let (true, Some(offset_index), Some(time_index)) = (sane, offsets, times) {
            let max_timestamp = time_index.last().map_or(-1, |e| e.timestamp);
            return Ok(Self {
                base_offset,
                path: log,
                file,
                size,
                next_offset,
                max_timestamp,
                offset_index,
                time_index,
                bytes_since_index: 0,
                index_interval_bytes,
                index_suspect: AtomicBool::new(false),
                recent: VecDeque::new(),
                allocated_to: 0,
            });
        }
        let (mut seg, end) =
            Self::open_recovering(backend, dir, base_offset, index_interval_bytes)?;
        seg.seal()?;
        if end.stopped.is_some() || end.next_offset != next_offset {
            return Err(StorageError::Corrupt {
                path: seg.path.clone(),
                reason: format!(
                    "closed segment ends at offset {} but the next segment starts at {next_offset}{}",
                    end.next_offset,
                    end.stopped.map(|s| format!(" ({s})")).unwrap_or_default()
                ),
            });
        }
        Ok(seg)
    }

    fn open_files(
        backend: &dyn Backend,
        dir: &Path,
        base_offset: u64,
        index_interval_bytes: u64,
    ) -> Result<Self, StorageError> {
        let [log, index, timeindex] = Self::paths(dir, base_offset);
        let file = backend.open(&log, OpenMode::Existing).ctx("open", &log)?;
        let size = file.byte_len().ctx("stat", &log)?;
        Ok(Self {
            base_offset,
            path: log,
            file,
            size,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_index: IndexFile::create(backend, &index)?,
            time_index: IndexFile::create(backend, &timeindex)?,
            bytes_since_index: 0,
            index_interval_bytes,
            index_suspect: AtomicBool::new(false),
            recent: VecDeque::new(),
            allocated_to: 0,
        })
    }

    /// Re-reads the whole log file and rebuilds both indexes from it. The
    /// segment's size and next offset become those of its valid prefix.
    pub fn rebuild(&mut self) -> Result<ScanEnd, StorageError> {
        self.offset_index.clear()?;
        self.time_index.clear()?;
        self.recent.clear();
        self.bytes_since_index = 0;
        self.max_timestamp = -1;
        let file_len = self.file.byte_len().ctx("stat", &self.path)?;
        let mut metas = Vec::new();
        let end = scan(
            self.file.as_ref(),
            &self.path,
            file_len,
            self.base_offset,
            |pos, h| {
                metas.push((pos, BatchMeta::of(h, h.total_bytes().unwrap_or(0) as u64)));
            },
        )?;
        for (pos, meta) in metas {
            self.note_batch(pos, &meta);
        }
        self.size = end.valid_bytes;
        self.next_offset = end.next_offset;
        self.offset_index.write_pending()?;
        self.time_index.write_pending()?;
        self.index_suspect.store(false, Ordering::Relaxed);
        Ok(end)
    }

    pub fn base_offset(&self) -> u64 {
        self.base_offset
    }

    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    pub fn index_suspect(&self) -> bool {
        self.index_suspect.load(Ordering::Relaxed)
    }

    /// Records a batch written at `pos` in the in-memory indexes.
    fn note_batch(&mut self, pos: u64, meta: &BatchMeta) {
        if self.recent.len() == RECENT_BATCHES {
            self.recent.pop_front();
        }
        self.recent.push_back((pos, *meta));
        self.max_timestamp = self.max_timestamp.max(meta.max_timestamp);
        if self.bytes_since_index >= self.index_interval_bytes {
            let relative_offset = (meta.base_offset - self.base_offset) as u32;
            self.offset_index.push(OffsetEntry {
                relative_offset,
                position: pos as u32,
            });
            if self
                .time_index
                .last()
                .is_none_or(|e| self.max_timestamp > e.timestamp)
            {
                self.time_index.push(TimeEntry {
                    timestamp: self.max_timestamp,
                    relative_offset,
                });
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += meta.bytes;
    }

    /// Writes `bytes` (whole batches, described by `metas`) at the end of the
    /// segment, whose size may grow to `limit` bytes. On a failed write the
    /// file is cut back to its old size; the returned flag says whether that
    /// cut succeeded.
    pub fn append(
        &mut self,
        pieces: &[&[u8]],
        metas: &[BatchMeta],
        limit: u64,
    ) -> Result<(), (StorageError, bool)> {
        let end = self.size + metas.iter().map(|m| m.bytes).sum::<u64>();
        self.allocate_ahead(end, limit);
        if let Err(e) = self.file.write_all_pieces_at(pieces, self.size) {
            let restored = self.file.set_len(self.size).is_ok();
            // The cut also freed any blocks allocated past the end.
            self.allocated_to = self.size;
            return Err((
                StorageError::Io {
                    op: "append to",
                    path: self.path.clone(),
                    source: e,
                },
                restored,
            ));
        }
        let mut pos = self.size;
        for meta in metas {
            self.note_batch(pos, meta);
            pos += meta.bytes;
            self.next_offset = meta.next_offset;
        }
        self.size = pos;
        Ok(())
    }

    /// Asks for disk blocks up to [`ALLOCATE_AHEAD_BYTES`] past `end` (not
    /// past `limit`) once `end` passes what was asked for before. A failure
    /// (a file system without `fallocate`) only means slower writes; it is
    /// not retried before the next step.
    fn allocate_ahead(&mut self, end: u64, limit: u64) {
        if end <= self.allocated_to {
            return;
        }
        let from = self.allocated_to.max(self.size);
        let to = (end + ALLOCATE_AHEAD_BYTES).min(limit.max(end));
        let _ = self.file.allocate(from, to - from);
        self.allocated_to = to;
    }

    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.file.sync_data().ctx("fsync", &self.path)
    }

    /// Writes pending index entries (not fsynced: indexes are rebuilt on
    /// recovery).
    pub fn write_indexes(&mut self) -> Result<(), StorageError> {
        self.offset_index.write_pending()?;
        self.time_index.write_pending()
    }

    /// Seals a segment that stops being active: the time index gets a final
    /// entry for the segment's newest timestamp (retention reads it after a
    /// restart), and everything is fsynced.
    pub fn seal(&mut self) -> Result<(), StorageError> {
        if self
            .time_index
            .last()
            .is_none_or(|e| self.max_timestamp > e.timestamp)
            && self.next_offset > self.base_offset
        {
            let relative_offset = self.offset_index.last().map_or(0, |e| e.relative_offset);
            self.time_index.push(TimeEntry {
                timestamp: self.max_timestamp,
                relative_offset,
            });
        }
        if self.allocated_to > self.size {
            // A cut to its own size frees the blocks allocated past the end.
            self.file.set_len(self.size).ctx("truncate", &self.path)?;
            self.allocated_to = self.size;
        }
        self.sync()?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Position and base offset of the batch holding `offset`, if this
    /// segment has it.
    pub fn batch_start(&self, offset: u64) -> Result<Option<(u64, u64)>, StorageError> {
        let Some(pos) = self.find_position(offset)? else {
            return Ok(None);
        };
        Ok(self
            .read_header_at(pos)?
            .map(|h| (pos, h.base_offset as u64)))
    }

    /// The header of the last batch, if the segment has any: found through
    /// the offset index, so only the batches after its last entry are read.
    pub fn last_header(&self) -> Result<Option<BatchHeader>, StorageError> {
        if self.next_offset == self.base_offset {
            return Ok(None);
        }
        match self.find_position(self.next_offset - 1)? {
            Some(pos) => self.read_header_at(pos),
            None => Ok(None),
        }
    }

    /// Cuts the segment to its first `pos` bytes, which must end on a batch
    /// boundary with `next_offset` next. The cut is fsynced before anything
    /// else happens, so a power cut cannot bring the removed batches back
    /// under data written later. The indexes are rebuilt by a scan of what
    /// is left: truncation is rare (a follower meeting a new leader), and a
    /// scan cannot leave an entry that points past the cut (the seal's
    /// time-index entry may cover batches after the last offset entry, so
    /// trimming entries alone would keep a stale max timestamp).
    pub fn truncate(&mut self, pos: u64, next_offset: u64) -> Result<(), StorageError> {
        self.file.set_len(pos).ctx("truncate", &self.path)?;
        self.allocated_to = pos;
        self.file.sync_data().ctx("fsync", &self.path)?;
        let end = self.rebuild()?;
        if end.stopped.is_some() || end.valid_bytes != pos || end.next_offset != next_offset {
            return Err(StorageError::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "cut at byte {pos} should end at offset {next_offset}, scan ended at byte {} offset {}{}",
                    end.valid_bytes,
                    end.next_offset,
                    end.stopped.map(|s| format!(" ({s})")).unwrap_or_default()
                ),
            });
        }
        Ok(())
    }

    /// Removes the segment's three files.
    pub fn delete(self, backend: &dyn Backend) -> Result<(), StorageError> {
        for path in [
            self.path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ] {
            backend.remove(&path).ctx("delete", &path)?;
        }
        Ok(())
    }

    fn read_header_at(&self, pos: u64) -> Result<Option<BatchHeader>, StorageError> {
        if pos + HEADER_BYTES as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_BYTES];
        self.file
            .read_exact_at(&mut buf, pos)
            .ctx("read", &self.path)?;
        Ok(BatchHeader::parse(&buf).ok())
    }

    /// Byte position of the batch holding `offset`, if this segment has it.
    pub fn find_position(&self, offset: u64) -> Result<Option<u64>, StorageError> {
        if offset < self.base_offset || offset >= self.next_offset {
            return Ok(None);
        }
        // The batch holding `offset` is known when it is a recent one and
        // not the oldest remembered (a batch not remembered may lie before
        // it), unless that one starts the segment.
        let at = self
            .recent
            .partition_point(|(_, b)| b.next_offset <= offset);
        if let Some(&(pos, _)) = self.recent.get(at) {
            if at > 0 || pos == 0 {
                return Ok(Some(pos));
            }
        }
        let target = (offset - self.base_offset) as u32;
        let start = match self.offset_index.floor(|e| e.relative_offset <= target) {
            None => 0,
            Some(entry) => {
                let pos = u64::from(entry.position);
                let expected = self.base_offset + u64::from(entry.relative_offset);
                match self.read_header_at(pos)? {
                    Some(h) if h.base_offset as u64 == expected => pos,
                    _ => {
                        // The index lies: answer from a scan, fix it later.
                        self.index_suspect.store(true, Ordering::Relaxed);
                        0
                    }
                }
            }
        };
        self.walk_to(start, |h| h.last_offset() as u64 >= offset)
    }

    /// What [`Self::slice_from`] needs of the batch at `pos`: its base
    /// offset, length and record count, from memory when it is recent,
    /// else from its header.
    fn batch_at(&self, pos: u64) -> Result<Option<(u64, u64, u64)>, StorageError> {
        if let Ok(at) = self.recent.binary_search_by_key(&pos, |(p, _)| *p) {
            if let Some((_, b)) = self.recent.get(at) {
                return Ok(Some((
                    b.base_offset,
                    b.bytes,
                    b.next_offset - b.base_offset,
                )));
            }
        }
        let Some(h) = self.read_header_at(pos)? else {
            return Ok(None);
        };
        match h.total_bytes() {
            Some(n) if n >= HEADER_BYTES => Ok(Some((
                h.base_offset as u64,
                n as u64,
                u64::from(h.records_count.unsigned_abs()),
            ))),
            _ => Err(StorageError::Corrupt {
                path: self.path.clone(),
                reason: format!("bad batch length at position {pos}"),
            }),
        }
    }

    /// Steps batch by batch from `pos` to the first batch that `stop` accepts.
    fn walk_to(
        &self,
        mut pos: u64,
        stop: impl Fn(&BatchHeader) -> bool,
    ) -> Result<Option<u64>, StorageError> {
        while let Some(h) = self.read_header_at(pos)? {
            if stop(&h) {
                return Ok(Some(pos));
            }
            match h.total_bytes() {
                Some(n) if n >= HEADER_BYTES => pos += n as u64,
                _ => {
                    return Err(StorageError::Corrupt {
                        path: self.path.clone(),
                        reason: format!("bad batch length at position {pos}"),
                    })
                }
            }
        }
        Ok(None)
    }

    /// The header of every batch, in order (61 bytes read per batch; the
    /// records are not read).
    pub fn headers(&self) -> Result<Vec<BatchHeader>, StorageError> {
        let mut out = Vec::new();
        let mut pos = 0u64;
        while let Some(h) = self.read_header_at(pos)? {
            match h.total_bytes() {
                Some(n) if n >= HEADER_BYTES => pos += n as u64,
                _ => break,
            }
            out.push(h);
        }
        Ok(out)
    }

    /// Whole batches from `pos`: at least one, then more while the total stays
    /// within `max_bytes`; none that start at or past `end_offset`.
    pub fn read_from(
        &self,
        pos: u64,
        max_bytes: usize,
        end_offset: u64,
    ) -> Result<Vec<u8>, StorageError> {
        let available = self.size.saturating_sub(pos);
        let want = available.min(max_bytes.max(HEADER_BYTES) as u64) as usize;
        let mut buf = self.file.read_vec_at(want, pos).ctx("read", &self.path)?;
        let mut keep = 0usize;
        loop {
            let rest = buf.get(keep..).unwrap_or_default();
            let total = match peek_batch_len(rest) {
                Ok(Some(total)) => total,
                Ok(None) => break,
                Err(e) => {
                    return Err(StorageError::Corrupt {
                        path: self.path.clone(),
                        reason: format!("at position {}: {e}", pos + keep as u64),
                    })
                }
            };
            let header = match rest.get(..HEADER_BYTES) {
                Some(h) => BatchHeader::parse(h).ok(),
                None if keep == 0 => {
                    // The chunk was the bare minimum; the header is at pos.
                    self.read_header_at(pos)?
                }
                None => None,
            };
            if header.is_none_or(|h| h.base_offset as u64 >= end_offset) {
                break;
            }
            if total > rest.len() {
                if keep == 0 && (total as u64) <= available {
                    // The first batch is larger than max_bytes: send it whole.
                    buf.resize(total, 0);
                    self.file
                        .read_exact_at(&mut buf, pos)
                        .ctx("read", &self.path)?;
                    keep = total;
                }
                break;
            }
            keep += total;
        }
        buf.truncate(keep);
        Ok(buf)
    }

    /// The batches [`Self::read_from`] would read, as a range of this
    /// segment's file found from the offset index and their headers;
    /// `None` when the file is not a real one or the range would take
    /// more than [`MAX_SLICE_BATCHES`] headers past what the index placed
    /// (the caller reads them instead).
    pub fn slice_from(
        &self,
        pos: u64,
        max_bytes: usize,
        end_offset: u64,
    ) -> Result<Option<FileSlice>, StorageError> {
        let Some(file) = self.file.shared_file() else {
            return Ok(None);
        };
        if let Some(run) = self.indexed_run(pos, max_bytes, end_offset)? {
            match self.slice_on(file.clone(), pos, max_bytes, end_offset, Some(run))? {
                Stepped::Slice(slice) => return Ok(Some(slice)),
                Stepped::TooMany => return Ok(None),
                // The index lies: walk from `pos` batch by batch, as
                // without it, and have the log rebuild it.
                Stepped::IndexWrong => self.index_suspect.store(true, Ordering::Relaxed),
            }
        }
        match self.slice_on(file, pos, max_bytes, end_offset, None)? {
            Stepped::Slice(slice) => Ok(Some(slice)),
            Stepped::TooMany | Stepped::IndexWrong => Ok(None),
        }
    }

    /// Steps batch by batch from `pos`, or from the end of `run` (after
    /// checking that the batch there is the one the index said), taking
    /// batches as [`Self::read_from`] does.
    fn slice_on(
        &self,
        file: std::sync::Arc<std::fs::File>,
        pos: u64,
        max_bytes: usize,
        end_offset: u64,
        run: Option<IndexedRun>,
    ) -> Result<Stepped, StorageError> {
        let (mut len, mut records) = run.map_or((0, 0), |r| (r.bytes, r.offsets));
        for step in 0..MAX_SLICE_BATCHES {
            let batch = match run.filter(|_| step == 0) {
                None => self.batch_at(pos + len)?,
                // A wrong entry may point into a batch: what is there
                // need not even parse.
                Some(r) => match self.batch_at(pos + len) {
                    Ok(Some(b)) if b.0 == r.next_base => Some(b),
                    _ => return Ok(Stepped::IndexWrong),
                },
            };
            // Nothing at or past `end_offset`, no batch cut short, and the
            // first batch whole even past `max_bytes`.
            let fits = batch.filter(|&(base_offset, total, _)| {
                let past_limit = len > 0 && len + total > max_bytes as u64;
                base_offset < end_offset && pos + len + total <= self.size && !past_limit
            });
            let Some((_, total, count)) = fits else {
                return Ok(Stepped::Slice(FileSlice {
                    file,
                    pos,
                    len,
                    records,
                }));
            };
            len += total;
            records += count;
        }
        Ok(Stepped::TooMany)
    }

    /// The batches from `pos` that the offset index alone places: up to
    /// its last entry within `max_bytes` of `pos` whose offset is at most
    /// `end_offset`. Every entry marks where a batch starts, so every
    /// batch before it lies whole within the limit and starts below
    /// `end_offset`; a read from far back (a consumer catching up, a new
    /// follower) then reads about four headers (the first batch's, the
    /// entry's, and the few after it) where it read one per batch (17
    /// for a Fetch of 1 MiB in 64 KiB batches). `None` when no entry
    /// lies past `pos`. The caller checks the batch at the entry against
    /// it (a wrong index falls back to the walk).
    fn indexed_run(
        &self,
        pos: u64,
        max_bytes: usize,
        end_offset: u64,
    ) -> Result<Option<IndexedRun>, StorageError> {
        let limit = pos.saturating_add(max_bytes as u64);
        let Some(entry) = self.offset_index.floor(|e| {
            u64::from(e.position) <= limit
                && self.base_offset + u64::from(e.relative_offset) <= end_offset
        }) else {
            return Ok(None);
        };
        let at = u64::from(entry.position);
        let next_base = self.base_offset + u64::from(entry.relative_offset);
        if at <= pos || at > self.size {
            return Ok(None);
        }
        let Some((first_base, _, _)) = self.batch_at(pos)? else {
            return Ok(None);
        };
        if next_base <= first_base {
            self.index_suspect.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        Ok(Some(IndexedRun {
            bytes: at - pos,
            offsets: next_base - first_base,
            next_base,
        }))
    }

    /// First record at or after `timestamp` in this segment, as
    /// `(offset, its timestamp)`.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>, StorageError> {
        if self.max_timestamp < timestamp {
            return Ok(None);
        }
        // Every batch up to an entry's offset is older than its timestamp.
        let start = match self.time_index.floor(|e| e.timestamp < timestamp) {
            None => 0,
            Some(t) => {
                let pos = self
                    .offset_index
                    .floor(|e| e.relative_offset <= t.relative_offset)
                    .map_or(0, |e| u64::from(e.position));
                match self.read_header_at(pos)? {
                    Some(h)
                        if h.base_offset as u64
                            <= self.base_offset + u64::from(t.relative_offset) =>
                    {
                        pos
                    }
                    _ => 0,
                }
            }
        };
        let Some(pos) = self.walk_to(start, |h| h.max_timestamp >= timestamp)? else {
            return Ok(None);
        };
        let bytes = self.read_from(pos, 0, u64::MAX)?;
        let corrupt = |e: rill_protocol::BatchError| StorageError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let batch = RecordBatch::new(&bytes).map_err(corrupt)?;
        let records = batch
            .records(MAX_LOOKUP_DECOMPRESSED_BYTES)
            .map_err(corrupt)?;
        for record in records.iter() {
            let record = record.map_err(corrupt)?;
            if record.timestamp >= timestamp {
                return Ok(Some((record.offset as u64, record.timestamp)));
            }
        }
        // The batch claims a max timestamp none of its records has; answer
        // with the batch itself rather than skip it.
        Ok(Some((
            batch.header.base_offset as u64,
            batch.header.max_timestamp,
        )))
    }
}

fn offsets_make_sense(entries: &[OffsetEntry], size: u64, span: u64, interval: u64) -> bool {
    let ordered = entries.windows(2).all(
        |w| matches!(w, [a, b] if a.relative_offset < b.relative_offset && a.position < b.position),
    );
    let in_bounds = entries
        .iter()
        .all(|e| u64::from(e.position) < size && u64::from(e.relative_offset) < span);
    // A segment longer than two index intervals must have entries.
    let present = !entries.is_empty() || size <= 2 * interval;
    ordered && in_bounds && present
}

fn times_make_sense(times: &[TimeEntry], offsets: &[OffsetEntry]) -> bool {
    let ordered = times
        .windows(2)
        .all(|w| matches!(w, [a, b] if a.timestamp < b.timestamp && a.relative_offset <= b.relative_offset));
    let last_offset = offsets.last().map_or(0, |e| e.relative_offset);
    ordered && times.iter().all(|t| t.relative_offset <= last_offset)
}

/// Walks the batches of a segment file from its start, checking each one's
/// length, magic, CRC and that offsets run on without a gap, calling `each`
/// for every good batch. Stops at the first bad or torn batch.
fn scan(
    file: &dyn StorageFile,
    path: &Path,
    file_len: u64,
    base_offset: u64,
    mut each: impl FnMut(u64, &BatchHeader),
) -> Result<ScanEnd, StorageError> {
    let mut pos = 0u64;
    let mut expected = base_offset;
    let mut chunk: Vec<u8> = Vec::new();
    let mut chunk_start = 0u64;
    let stop = |pos: u64, expected: u64, why: String| ScanEnd {
        valid_bytes: pos,
        next_offset: expected,
        stopped: Some(why),
    };
    let refill = |chunk: &mut Vec<u8>, at: u64, want: usize| -> Result<(), StorageError> {
        let want = (want as u64).min(file_len - at) as usize;
        chunk.resize(want, 0);
        file.read_exact_at(chunk, at).ctx("read", path)
    };
    while pos < file_len {
        let mut rel = (pos - chunk_start) as usize;
        if rel + 12 > chunk.len() {
            refill(&mut chunk, pos, SCAN_CHUNK_BYTES)?;
            chunk_start = pos;
            rel = 0;
        }
        let total = match peek_batch_len(chunk.get(rel..).unwrap_or_default()) {
            Ok(Some(total)) => total,
            Ok(None) => return Ok(stop(pos, expected, "torn batch length".into())),
            Err(e) => return Ok(stop(pos, expected, e.to_string())),
        };
        if pos + total as u64 > file_len {
            return Ok(stop(pos, expected, format!("torn batch of {total} bytes")));
        }
        if rel + total > chunk.len() {
            refill(&mut chunk, pos, SCAN_CHUNK_BYTES.max(total))?;
            chunk_start = pos;
            rel = 0;
        }
        let bytes = chunk.get(rel..rel + total).unwrap_or_default();
        let header = match verify_stored_batch(bytes) {
            Ok(h) => h,
            Err(e) => return Ok(stop(pos, expected, e.to_string())),
        };
        if header.base_offset as u64 != expected {
            return Ok(stop(
                pos,
                expected,
                format!(
                    "batch at offset {} where {expected} was due",
                    header.base_offset
                ),
            ));
        }
        if header.next_offset() as u64 - base_offset > u64::from(u32::MAX) {
            return Ok(stop(
                pos,
                expected,
                "offset beyond the segment's range".into(),
            ));
        }
        each(pos, &header);
        pos += total as u64;
        expected = header.next_offset() as u64;
    }
    Ok(ScanEnd {
        valid_bytes: pos,
        next_offset: expected,
        stopped: None,
    })
}

//! Sparse indexes kept beside each segment.
//!
//! - offset index (`.index`): 8-byte entries, the relative base offset of a
//!   batch (u32) and its byte position in the segment (u32);
//! - time index (`.timeindex`): 12-byte entries, the largest timestamp seen
//!   so far in the segment (i64) and the relative base offset of the batch
//!   where it was reached (u32).
//!
//! An entry is added every `index_interval_bytes` of log. Entries live in
//! memory for lookups and are written to the file in bulk when the log
//! flushes, rolls or closes: indexes are rebuilt from the log on recovery, so
//! they never need to be durable before the data is.

use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::io::{Backend, OpenMode, StorageFile};
use crate::StorageError;

/// One index entry's encoding.
pub(crate) trait Entry: Copy + std::fmt::Debug {
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Option<Self>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

fn be_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(OffsetEntry {
            relative_offset: be_u32(bytes)?,
            position: be_u32(bytes.get(4..)?)?,
        })
    }
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(TimeEntry {
            timestamp: i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?),
            relative_offset: be_u32(bytes.get(8..)?)?,
        })
    }
}

/// An index file and its entries in memory.
#[derive(Debug)]
pub(crate) struct IndexFile<E: Entry> {
    path: PathBuf,
    file: Box<dyn StorageFile>,
    entries: Vec<E>,
    /// Entries already written to the file.
    written: usize,
}

impl<E: Entry> IndexFile<E> {
    /// Opens `path` as an empty index, discarding what it held.
    pub fn create(backend: &dyn Backend, path: &Path) -> Result<Self, StorageError> {
        let file = backend.open(path, OpenMode::Create).ctx("create", path)?;
        crate::io::discard_stale(file.as_ref(), path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            entries: Vec::new(),
            written: 0,
        })
    }

    /// Loads the entries of an existing index. `Ok(None)` when the file is
    /// missing or its size is not a whole number of entries; the caller then
    /// checks the entries' sense and rebuilds if needed.
    pub fn load(backend: &dyn Backend, path: &Path) -> Result<Option<Self>, StorageError> {
        let file = match backend.open(path, OpenMode::Existing) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx("open", path),
        };
        let len = file.byte_len().ctx("stat", path)?;
        if len % E::SIZE as u64 != 0 {
            return Ok(None);
        }
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0).ctx("read", path)?;
        let entries: Option<Vec<E>> = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        let Some(entries) = entries else {
            return Ok(None);
        };
        let written = entries.len();
        Ok(Some(Self {
            path: path.to_path_buf(),
            file,
            entries,
            written,
        }))
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    pub fn push(&mut self, entry: E) {
        self.entries.push(entry);
    }

    /// The last entry for which `is_at_or_before` holds, entries being sorted.
    pub fn floor(&self, is_at_or_before: impl Fn(&E) -> bool) -> Option<E> {
        let n = self.entries.partition_point(is_at_or_before);
        n.checked_sub(1).and_then(|i| self.entries.get(i)).copied()
    }

    /// Writes entries not yet in the file.
    pub fn write_pending(&mut self) -> Result<(), StorageError> {
        let pending = self.entries.get(self.written..).unwrap_or_default();
        if pending.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(pending.len() * E::SIZE);
        for e in pending {
            e.encode(&mut bytes);
        }
        let pos = (self.written * E::SIZE) as u64;
        self.file
            .write_all_at(&bytes, pos)
            .ctx("write index", &self.path)?;
        self.written = self.entries.len();
        Ok(())
    }

    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.write_pending()?;
        self.file.sync_data().ctx("fsync index", &self.path)
    }

    /// Drops every entry, in memory and on disk.
    pub fn clear(&mut self) -> Result<(), StorageError> {
        self.entries.clear();
        self.written = 0;
        self.file.set_len(0).ctx("truncate index", &self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

//! fsync latency: a [`Backend`] that times the `sync_data` of every file
//! it opens, around whichever backend stores the logs.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;
use rill_storage::{Backend, OpenMode, StorageFile};

/// `inner`, with each file's fsyncs observed in `histogram`.
#[derive(Debug)]
pub(crate) struct TimedBackend {
    inner: Arc<dyn Backend>,
    histogram: Histogram,
}

impl TimedBackend {
    pub fn new(inner: Arc<dyn Backend>, histogram: Histogram) -> Self {
        Self { inner, histogram }
    }
}

#[derive(Debug)]
struct TimedFile {
    inner: Box<dyn StorageFile>,
    histogram: Histogram,
}

impl StorageFile for TimedFile {
    fn byte_len(&self) -> io::Result<u64> {
        self.inner.byte_len()
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, pos)
    }

    fn read_vec_at(&self, len: usize, pos: u64) -> io::Result<Vec<u8>> {
        self.inner.read_vec_at(len, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, pos)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        let started = Instant::now();
        let result = self.inner.sync_data();
        self.histogram.observe(super::seconds(started.elapsed()));
        result
    }

    fn shared_file(&self) -> Option<Arc<std::fs::File>> {
        self.inner.shared_file()
    }
}

impl Backend for TimedBackend {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(TimedFile {
            inner: self.inner.open(path, mode)?,
            histogram: self.histogram.clone(),
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

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

    fn write_all_pieces_at(&self, pieces: &[&[u8]], pos: u64) -> io::Result<()> {
        self.inner.write_all_pieces_at(pieces, pos)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn allocate(&self, pos: u64, len: u64) -> io::Result<()> {
        self.inner.allocate(pos, len)
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A file that only notes which of its methods were called.
    #[derive(Debug, Default)]
    struct Noted(Arc<Mutex<Vec<&'static str>>>);

    impl Noted {
        fn note(&self, call: &'static str) -> io::Result<()> {
            self.0.lock().unwrap().push(call);
            Ok(())
        }
    }

    impl StorageFile for Noted {
        fn byte_len(&self) -> io::Result<u64> {
            self.note("byte_len").map(|()| 0)
        }
        fn read_exact_at(&self, _: &mut [u8], _: u64) -> io::Result<()> {
            self.note("read_exact_at")
        }
        fn write_all_at(&self, _: &[u8], _: u64) -> io::Result<()> {
            self.note("write_all_at")
        }
        fn write_all_pieces_at(&self, _: &[&[u8]], _: u64) -> io::Result<()> {
            self.note("write_all_pieces_at")
        }
        fn set_len(&self, _: u64) -> io::Result<()> {
            self.note("set_len")
        }
        fn allocate(&self, _: u64, _: u64) -> io::Result<()> {
            self.note("allocate")
        }
        fn sync_data(&self) -> io::Result<()> {
            self.note("sync_data")
        }
    }

    #[derive(Debug, Default)]
    struct NotedBackend(Arc<Mutex<Vec<&'static str>>>);

    impl Backend for NotedBackend {
        fn create_dir_all(&self, _: &Path) -> io::Result<()> {
            Ok(())
        }
        fn list(&self, _: &Path) -> io::Result<Vec<String>> {
            Ok(Vec::new())
        }
        fn open(&self, _: &Path, _: OpenMode) -> io::Result<Box<dyn StorageFile>> {
            Ok(Box::new(Noted(self.0.clone())))
        }
        fn remove(&self, _: &Path) -> io::Result<()> {
            Ok(())
        }
        fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
            Ok(())
        }
        fn sync_dir(&self, _: &Path) -> io::Result<()> {
            Ok(())
        }
    }

    /// The timing wrapper hands every call to the file it wraps, the ones
    /// with a default body included: a vectored write must stay one call
    /// (not one write per piece) and a block allocation must reach the
    /// real file.
    #[test]
    fn every_call_reaches_the_wrapped_file_and_syncs_are_timed() {
        let inner = NotedBackend::default();
        let calls = inner.0.clone();
        let histogram = Histogram::new([0.001, 0.01]);
        let timed = TimedBackend::new(Arc::new(inner), histogram.clone());
        let file = timed.open(Path::new("f"), OpenMode::Create).unwrap();
        file.write_all_at(b"a", 0).unwrap();
        file.write_all_pieces_at(&[b"b", b"c"], 1).unwrap();
        file.allocate(0, 4096).unwrap();
        file.set_len(3).unwrap();
        file.sync_data().unwrap();
        assert_eq!(
            *calls.lock().unwrap(),
            [
                "write_all_at",
                "write_all_pieces_at",
                "allocate",
                "set_len",
                "sync_data"
            ]
        );
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("fsync", "t", histogram);
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("fsync_count 1"), "{text}");
    }
}

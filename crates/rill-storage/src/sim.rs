//! An in-memory [`Backend`] for tests: it remembers what was made durable,
//! can cut the power (everything not fsynced is lost), and can fail writes.
//!
//! The model: a file's bytes become durable at `sync_data`; a directory's
//! entries (which names point at which files) become durable at `sync_dir`.
//! A power cut puts back the durable names and, in each file, the durable
//! bytes.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::io::{Backend, OpenMode, StorageFile};

#[derive(Debug, Default)]
struct Node {
    data: Vec<u8>,
    durable: Vec<u8>,
}

type NodeRef = Arc<Mutex<Node>>;

#[derive(Debug, Default)]
struct Fs {
    names: BTreeMap<PathBuf, NodeRef>,
    durable_names: BTreeMap<PathBuf, NodeRef>,
    dirs: Vec<PathBuf>,
    fail_writes: bool,
    /// Bytes that may still be written before writes start failing; a write
    /// that crosses it lands in part, as a torn write would.
    write_budget: Option<u64>,
}

/// The simulated disk. Clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct SimBackend {
    fs: Arc<Mutex<Fs>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another test thread must not hide this one's result.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn injected() -> io::Error {
    io::Error::other("injected write failure (SimBackend)")
}

impl SimBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loses every write that was not made durable, as a power cut would.
    pub fn power_cut(&self) {
        let mut fs = lock(&self.fs);
        fs.names = fs.durable_names.clone();
        for node in fs.names.values() {
            let mut n = lock(node);
            n.data = n.durable.clone();
        }
    }

    /// While on, every write, truncate and sync fails.
    pub fn set_fail_writes(&self, fail: bool) {
        lock(&self.fs).fail_writes = fail;
    }

    /// Lets `bytes` more bytes be written, then fails writes (the write that
    /// crosses the budget lands in part). `None` lifts the budget.
    pub fn set_write_budget(&self, bytes: Option<u64>) {
        lock(&self.fs).write_budget = bytes;
    }

    /// A file's current bytes, for tests that inspect or damage the disk.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let fs = lock(&self.fs);
        fs.names.get(path).map(|n| lock(n).data.clone())
    }

    /// Replaces a file's bytes (current and durable), for damage tests.
    pub fn overwrite(&self, path: &Path, bytes: Vec<u8>) {
        let mut fs = lock(&self.fs);
        let node = fs.names.entry(path.to_path_buf()).or_default().clone();
        fs.durable_names.insert(path.to_path_buf(), node.clone());
        let mut n = lock(&node);
        n.data = bytes.clone();
        n.durable = bytes;
    }

    /// Removes a file at once and durably, for damage tests.
    pub fn delete(&self, path: &Path) {
        let mut fs = lock(&self.fs);
        fs.names.remove(path);
        fs.durable_names.remove(path);
    }
}

#[derive(Debug)]
struct SimFile {
    fs: Arc<Mutex<Fs>>,
    node: NodeRef,
}

impl SimFile {
    /// How many of `len` bytes may be written now.
    fn allowance(&self, len: usize) -> io::Result<usize> {
        let mut fs = lock(&self.fs);
        if fs.fail_writes {
            return Err(injected());
        }
        match fs.write_budget.as_mut() {
            None => Ok(len),
            Some(budget) => {
                let allowed = (*budget).min(len as u64) as usize;
                *budget -= allowed as u64;
                Ok(allowed)
            }
        }
    }

    fn check_writable(&self) -> io::Result<()> {
        let fs = lock(&self.fs);
        if fs.fail_writes || fs.write_budget == Some(0) {
            return Err(injected());
        }
        Ok(())
    }
}

impl StorageFile for SimFile {
    fn byte_len(&self) -> io::Result<u64> {
        Ok(lock(&self.node).data.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let node = lock(&self.node);
        let start = usize::try_from(pos).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| node.data.get(start..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        let allowed = self.allowance(buf.len())?;
        let mut node = lock(&self.node);
        let start = pos as usize;
        let end = start + allowed;
        if node.data.len() < end {
            node.data.resize(end, 0);
        }
        if let (Some(dst), Some(src)) = (node.data.get_mut(start..end), buf.get(..allowed)) {
            dst.copy_from_slice(src);
        }
        if allowed < buf.len() {
            return Err(injected());
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        // Cutting a file back frees space, so it works even when the budget
        // is spent (as truncation does on a full disk); only a failing disk
        // refuses it.
        if lock(&self.fs).fail_writes {
            return Err(injected());
        }
        lock(&self.node).data.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.check_writable()?;
        let mut node = lock(&self.node);
        node.durable = node.data.clone();
        Ok(())
    }
}

impl Backend for SimBackend {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut fs = lock(&self.fs);
        if !fs.dirs.iter().any(|d| d == dir) {
            fs.dirs.push(dir.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let fs = lock(&self.fs);
        Ok(fs
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let mut fs = lock(&self.fs);
        let node = match (fs.names.get(path), mode) {
            (Some(node), _) => node.clone(),
            (None, OpenMode::Existing) => return Err(io::ErrorKind::NotFound.into()),
            (None, OpenMode::Create) => {
                if fs.fail_writes {
                    return Err(injected());
                }
                let node = NodeRef::default();
                fs.names.insert(path.to_path_buf(), node.clone());
                node
            }
        };
        Ok(Box::new(SimFile {
            fs: self.fs.clone(),
            node,
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        lock(&self.fs).names.remove(path);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = lock(&self.fs);
        if fs.fail_writes {
            return Err(injected());
        }
        let node = fs.names.remove(from).ok_or(io::ErrorKind::NotFound)?;
        fs.names.insert(to.to_path_buf(), node);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut fs = lock(&self.fs);
        if fs.fail_writes {
            return Err(injected());
        }
        let Fs {
            names,
            durable_names,
            ..
        } = &mut *fs;
        durable_names.retain(|p, _| p.parent() != Some(dir));
        for (p, node) in names.iter() {
            if p.parent() == Some(dir) {
                durable_names.insert(p.clone(), node.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_cut_keeps_only_synced_state() {
        let sim = SimBackend::new();
        let dir = Path::new("/d");
        let a = sim.open(&dir.join("a"), OpenMode::Create).unwrap();
        a.write_all_at(b"hello", 0).unwrap();
        sim.sync_dir(dir).unwrap();
        a.sync_data().unwrap();
        a.write_all_at(b" world", 5).unwrap();
        let b = sim.open(&dir.join("b"), OpenMode::Create).unwrap();
        b.write_all_at(b"never synced dir", 0).unwrap();
        b.sync_data().unwrap();
        sim.power_cut();
        assert_eq!(sim.contents(&dir.join("a")).unwrap(), b"hello");
        assert!(sim.contents(&dir.join("b")).is_none());
    }

    #[test]
    fn write_budget_tears_a_write() {
        let sim = SimBackend::new();
        let f = sim.open(Path::new("/f"), OpenMode::Create).unwrap();
        sim.set_write_budget(Some(3));
        assert!(f.write_all_at(b"abcdef", 0).is_err());
        assert_eq!(f.byte_len().unwrap(), 3);
        assert!(f.sync_data().is_err());
        sim.set_write_budget(None);
        f.write_all_at(b"def", 3).unwrap();
        let mut buf = [0u8; 6];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"abcdef");
    }
}

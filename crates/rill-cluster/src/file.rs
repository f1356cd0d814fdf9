//! The local file backend, for one SPU without etcd: the memory backend's
//! semantics, with every change that outlives a restart appended to a log
//! and fsynced before the write returns. At open the log is replayed (a
//! torn last record is cut off); once it has grown well past the live data
//! it is rewritten as a snapshot (a new file, fsynced, renamed over the
//! old, the directory fsynced). Keys under a lease do not outlive a
//! restart: their holder is gone with the process.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::memory::MemoryStore;
use crate::state::{Change, State};
use crate::store::{
    Entry, Expect, Guard, LeaseId, Listing, MetadataStore, Revision, StoreError, Watch,
};

const LOG_NAME: &str = "metadata.log";
/// The log is rewritten as a snapshot once it is this large and at least
/// twice the snapshot's size.
const COMPACT_LOG_BYTES: u64 = 1024 * 1024;
/// Bound on one record's payload (a key and value), checked before reading
/// it so a damaged length cannot make the open allocate wildly.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;
const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_REVISION: u8 = 3;

#[derive(Debug)]
struct Log {
    path: PathBuf,
    file: File,
    bytes: u64,
}

/// Cheap to clone; clones share the store and its file.
#[derive(Debug, Clone)]
pub struct FileStore {
    memory: MemoryStore,
    log: Arc<Mutex<Log>>,
}

fn unavailable(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

fn encode(change: &Change) -> Vec<u8> {
    let mut p = Vec::new();
    let put_bytes = |p: &mut Vec<u8>, b: &[u8]| {
        p.extend_from_slice(&(b.len() as u32).to_be_bytes());
        p.extend_from_slice(b);
    };
    match change {
        Change::Put {
            key,
            value,
            revision,
        } => {
            p.push(OP_PUT);
            p.extend_from_slice(&revision.to_be_bytes());
            put_bytes(&mut p, key.as_bytes());
            put_bytes(&mut p, value);
        }
        Change::Delete { key, revision } => {
            p.push(OP_DELETE);
            p.extend_from_slice(&revision.to_be_bytes());
            put_bytes(&mut p, key.as_bytes());
        }
        Change::Revision(revision) => {
            p.push(OP_REVISION);
            p.extend_from_slice(&revision.to_be_bytes());
        }
    }
    let mut record = Vec::with_capacity(p.len() + 8);
    record.extend_from_slice(&(p.len() as u32).to_be_bytes());
    record.extend_from_slice(&crc32c::crc32c(&p).to_be_bytes());
    record.extend_from_slice(&p);
    record
}

/// A cursor over one record's payload that cannot read past it.
struct Payload<'a>(&'a [u8]);

impl<'a> Payload<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn i64(&mut self) -> Option<i64> {
        self.take(8)?.try_into().ok().map(i64::from_be_bytes)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(len)
    }
}

fn decode(payload: &[u8]) -> Option<Change> {
    let mut p = Payload(payload);
    let op = p.u8()?;
    let revision = p.i64()?;
    let change = match op {
        OP_PUT => Change::Put {
            key: String::from_utf8(p.bytes()?.to_vec()).ok()?,
            value: p.bytes()?.to_vec(),
            revision,
        },
        OP_DELETE => Change::Delete {
            key: String::from_utf8(p.bytes()?.to_vec()).ok()?,
            revision,
        },
        OP_REVISION => Change::Revision(revision),
        _ => return None,
    };
    p.0.is_empty().then_some(change)
}

/// The changes in `bytes`, and how many bytes of whole, valid records lead
/// it (the rest is a torn or damaged tail).
fn read_log(bytes: &[u8]) -> (Vec<Change>, usize) {
    let mut changes = Vec::new();
    let mut at = 0;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_RECORD_BYTES {
            break;
        }
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let Some(change) = decode(payload) else { break };
        changes.push(change);
        at += 8 + len;
    }
    (changes, at)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| unavailable(dir, e))
}

impl FileStore {
    /// Opens (or creates) the store in `dir`. Must be called inside a tokio
    /// runtime.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(|e| unavailable(dir, e))?;
        // The directory's own name must be durable too, or a power cut can
        // drop it with the fsynced log inside (the power-cut suite found
        // this for the SPU's directories). Idempotent, so done every open.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        let path = dir.join(LOG_NAME);
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)
                    .map_err(|e| unavailable(&path, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(unavailable(&path, e)),
        }
        let (changes, valid) = read_log(&bytes);
        if valid < bytes.len() {
            tracing::warn!(path = %path.display(), cut = bytes.len() - valid, "metadata log: torn tail cut off");
        }
        let mut state = State::default();
        for change in changes {
            state.replay(change);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| unavailable(&path, e))?;
        file.set_len(valid as u64)
            .map_err(|e| unavailable(&path, e))?;
        file.sync_all().map_err(|e| unavailable(&path, e))?;
        sync_dir(dir)?;
        Ok(Self {
            memory: MemoryStore::from_state(state),
            log: Arc::new(Mutex::new(Log {
                path,
                file,
                bytes: valid as u64,
            })),
        })
    }

    /// Appends changes and fsyncs, before the write is answered. (Metadata
    /// writes are rare: topic creation, producer-id blocks.)
    fn persist(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for c in changes {
            out.extend_from_slice(&encode(c));
        }
        let path = log.path.clone();
        log.file
            .write_all(&out)
            .and_then(|()| log.file.sync_data())
            .map_err(|e| unavailable(&path, e))?;
        log.bytes += out.len() as u64;
        if log.bytes >= COMPACT_LOG_BYTES {
            let snapshot = self.memory.lock().snapshot();
            let bytes: Vec<u8> = snapshot.iter().flat_map(encode).collect();
            if log.bytes >= 2 * bytes.len() as u64 {
                self.compact(&mut log, &bytes)?;
            }
        }
        Ok(())
    }

    fn compact(&self, log: &mut Log, snapshot: &[u8]) -> Result<(), StoreError> {
        let dir = log.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let tmp = dir.join(format!("{LOG_NAME}.tmp"));
        let mut f = File::create(&tmp).map_err(|e| unavailable(&tmp, e))?;
        f.write_all(snapshot)
            .and_then(|()| f.sync_all())
            .map_err(|e| unavailable(&tmp, e))?;
        fs::rename(&tmp, &log.path).map_err(|e| unavailable(&log.path, e))?;
        sync_dir(&dir)?;
        log.file = OpenOptions::new()
            .append(true)
            .open(&log.path)
            .map_err(|e| unavailable(&log.path, e))?;
        log.bytes = snapshot.len() as u64;
        tracing::debug!(bytes = log.bytes, "metadata log compacted");
        Ok(())
    }

    /// Runs one state change and logs it. The change is applied in memory
    /// first (under the state lock the check and the change are one step);
    /// if logging fails the write is reported failed, and the store should
    /// be reopened (the file is the truth).
    fn write<T>(
        &self,
        f: impl FnOnce(&mut State, Instant) -> Result<(T, Vec<Change>), StoreError>,
    ) -> Result<T, StoreError> {
        let (out, changes) = {
            let mut s = self.memory.lock();
            let now = Instant::now();
            let mut changes = s.expire(now);
            let (out, more) = f(&mut s, now)?;
            changes.extend(more);
            (out, changes)
        };
        self.persist(&changes)?;
        Ok(out)
    }
}

impl MetadataStore for FileStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.memory.get(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        self.memory.list(prefix).await
    }

    async fn put_guarded(
        &self,
        key: &str,
        value: Vec<u8>,
        expect: Expect,
        lease: Option<LeaseId>,
        guard: Option<Guard<'_>>,
    ) -> Result<Revision, StoreError> {
        self.write(|s, now| {
            let (rev, change) = s.put(key, value, expect, lease, guard, now)?;
            Ok((rev, vec![change]))
        })
    }

    async fn delete_guarded(
        &self,
        key: &str,
        expect: Expect,
        guard: Option<Guard<'_>>,
    ) -> Result<Revision, StoreError> {
        self.write(|s, now| {
            let (rev, change) = s.delete(key, expect, guard, now)?;
            Ok((rev, change.into_iter().collect()))
        })
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        self.memory.grant_lease(ttl).await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.memory.keep_alive(lease).await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.write(|s, now| Ok(((), s.revoke(lease, now)?)))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StoreError> {
        self.memory.watch(prefix, after).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut() {
        let changes = vec![
            Change::Put {
                key: "/a".into(),
                value: b"1".to_vec(),
                revision: 1,
            },
            Change::Revision(2),
            Change::Delete {
                key: "/a".into(),
                revision: 3,
            },
        ];
        let mut bytes: Vec<u8> = changes.iter().flat_map(encode).collect();
        let whole = bytes.len();
        assert_eq!(read_log(&bytes), (changes.clone(), whole));
        bytes.extend_from_slice(&encode(&Change::Revision(4))[..5]);
        assert_eq!(
            read_log(&bytes),
            (changes.clone(), whole),
            "torn record ignored"
        );
        bytes.truncate(whole);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert_eq!(read_log(&bytes).0.len(), 2, "a damaged record ends the log");
    }
}

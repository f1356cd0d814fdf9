//! The file system's state without FUSE: what a program sees, and what a
//! power cut would leave.
//!
//! Every file has two contents: `visible` (what reads return) and `durable`
//! (what survives a cut). Writes and truncations change `visible` at once
//! and queue as pending operations; `fsync` of the file applies them to
//! `durable`. Every directory has two entry tables the same way: creates,
//! renames and unlinks change `entries`; `fsync` of the directory copies them
//! to `durable`. A cut makes the durable state the visible one: files and
//! names not made durable are gone, and a file keeps only what its last
//! fsync wrote. With a seed, a cut also keeps a random prefix of the pending
//! writes, the last one cut at a random byte (a torn write, inside a page).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};

/// The root directory's inode number (FUSE's).
pub const ROOT: u64 = 1;

/// Bytes of unsynced writes one file may hold before its oldest pending
/// write is written back (becomes durable), as a kernel's writeback would:
/// this bounds the memory a file that is never fsynced takes.
pub const MAX_PENDING_BYTES_PER_FILE: usize = 64 << 20;

/// A failure, as the errno FUSE sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

pub const ENOENT: Errno = Errno(libc::ENOENT);
pub const EEXIST: Errno = Errno(libc::EEXIST);
pub const ENOTDIR: Errno = Errno(libc::ENOTDIR);
pub const EISDIR: Errno = Errno(libc::EISDIR);
pub const ENOTEMPTY: Errno = Errno(libc::ENOTEMPTY);
pub const EINVAL: Errno = Errno(libc::EINVAL);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

#[derive(Debug, Clone)]
enum Op {
    Write { offset: usize, bytes: Vec<u8> },
    SetLen(usize),
}

impl Op {
    fn apply(&self, data: &mut Vec<u8>) {
        match self {
            Op::Write { offset, bytes } => write_at(data, *offset, bytes),
            Op::SetLen(len) => data.resize(*len, 0),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Op::Write { bytes, .. } => bytes.len(),
            Op::SetLen(_) => 0,
        }
    }
}

fn write_at(data: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset..end].copy_from_slice(bytes);
}

#[derive(Debug, Default)]
struct FileNode {
    visible: Vec<u8>,
    durable: Vec<u8>,
    pending: VecDeque<Op>,
    pending_bytes: usize,
}

#[derive(Debug, Default)]
struct DirNode {
    entries: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
}

#[derive(Debug)]
enum Node {
    File(FileNode),
    Dir(DirNode),
}

/// What a cut threw away.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Unsynced bytes written that the cut dropped.
    pub bytes_dropped: u64,
    /// Unsynced bytes kept by a torn cut (a prefix of the pending writes).
    pub bytes_torn_kept: u64,
    /// Files and directories no durable name reaches: created without a
    /// directory fsync, or unlinked and that made durable.
    pub nodes_dropped: u64,
}

/// The whole file system.
#[derive(Debug)]
pub struct Model {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    /// An empty file system (its root directory only). Inode numbers start
    /// at `ROOT + 2`: `ROOT + 1` is left to the FUSE layer's control file.
    pub fn new() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::Dir(DirNode::default()));
        Model {
            nodes,
            next_ino: ROOT + 2,
        }
    }

    fn dir(&self, ino: u64) -> Result<&DirNode, Errno> {
        match self.nodes.get(&ino) {
            Some(Node::Dir(d)) => Ok(d),
            Some(Node::File(_)) => Err(ENOTDIR),
            None => Err(ENOENT),
        }
    }

    fn dir_mut(&mut self, ino: u64) -> Result<&mut DirNode, Errno> {
        match self.nodes.get_mut(&ino) {
            Some(Node::Dir(d)) => Ok(d),
            Some(Node::File(_)) => Err(ENOTDIR),
            None => Err(ENOENT),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut FileNode, Errno> {
        match self.nodes.get_mut(&ino) {
            Some(Node::File(f)) => Ok(f),
            Some(Node::Dir(_)) => Err(EISDIR),
            None => Err(ENOENT),
        }
    }

    /// The inode named `name` in `parent`.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        self.dir(parent)?.entries.get(name).copied().ok_or(ENOENT)
    }

    /// Kind and size (visible) of an inode.
    pub fn attr(&self, ino: u64) -> Result<(Kind, u64), Errno> {
        match self.nodes.get(&ino) {
            Some(Node::File(f)) => Ok((Kind::File, f.visible.len() as u64)),
            Some(Node::Dir(d)) => Ok((Kind::Dir, d.entries.len() as u64)),
            None => Err(ENOENT),
        }
    }

    fn add(&mut self, parent: u64, name: &OsStr, node: Node) -> Result<u64, Errno> {
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        self.dir_mut(parent)?.entries.insert(name.to_owned(), ino);
        Ok(ino)
    }

    /// A new empty file; its name is durable only once `parent` is fsynced.
    pub fn create(&mut self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        self.add(parent, name, Node::File(FileNode::default()))
    }

    /// A new empty directory; durable only once `parent` is fsynced.
    pub fn mkdir(&mut self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        self.add(parent, name, Node::Dir(DirNode::default()))
    }

    /// Removes a file's name. The node itself stays until a cut: an
    /// unsynced unlink leaves the durable name pointing at it.
    pub fn unlink(&mut self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        if self.attr(ino)?.0 == Kind::Dir {
            return Err(EISDIR);
        }
        self.dir_mut(parent)?.entries.remove(name);
        Ok(())
    }

    /// Removes an empty directory's name.
    pub fn rmdir(&mut self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        if !self.dir(ino)?.entries.is_empty() {
            return Err(ENOTEMPTY);
        }
        self.dir_mut(parent)?.entries.remove(name);
        Ok(())
    }

    /// Moves a name, replacing what `new_name` named (a file, or an empty
    /// directory). Durable once both directories are fsynced.
    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
    ) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        let moving = self.attr(ino)?.0;
        if let Ok(old) = self.lookup(new_parent, new_name) {
            match (moving, self.attr(old)?.0) {
                (Kind::File, Kind::Dir) => return Err(EISDIR),
                (Kind::Dir, Kind::File) => return Err(ENOTDIR),
                (Kind::Dir, Kind::Dir) if !self.dir(old)?.entries.is_empty() => {
                    return Err(ENOTEMPTY)
                }
                _ => {}
            }
        }
        if moving == Kind::Dir && (ino == new_parent || self.is_under(new_parent, ino)) {
            return Err(EINVAL);
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.dir_mut(new_parent)?
            .entries
            .insert(new_name.to_owned(), ino);
        Ok(())
    }

    /// Whether `ino` is somewhere below directory `dir` (visible entries).
    fn is_under(&self, ino: u64, dir: u64) -> bool {
        let mut stack = vec![dir];
        let mut seen = HashSet::new();
        while let Some(d) = stack.pop() {
            if !seen.insert(d) {
                continue;
            }
            if let Ok(node) = self.dir(d) {
                for &child in node.entries.values() {
                    if child == ino {
                        return true;
                    }
                    stack.push(child);
                }
            }
        }
        false
    }

    /// The visible entries of a directory, in name order.
    pub fn entries(&self, dir: u64) -> Result<Vec<(OsString, u64, Kind)>, Errno> {
        let d = self.dir(dir)?;
        Ok(d.entries
            .iter()
            .filter_map(|(n, &i)| self.attr(i).ok().map(|(k, _)| (n.clone(), i, k)))
            .collect())
    }

    /// Up to `len` bytes of a file from `offset`.
    pub fn read(&self, ino: u64, offset: u64, len: usize) -> Result<&[u8], Errno> {
        match self.nodes.get(&ino) {
            Some(Node::File(f)) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(f.visible.len());
                let end = start.saturating_add(len).min(f.visible.len());
                Ok(&f.visible[start..end])
            }
            Some(Node::Dir(_)) => Err(EISDIR),
            None => Err(ENOENT),
        }
    }

    /// Writes `bytes` at `offset` (extending the file with zeros as needed).
    pub fn write(&mut self, ino: u64, offset: u64, bytes: &[u8]) -> Result<(), Errno> {
        let offset = usize::try_from(offset).map_err(|_| EINVAL)?;
        let f = self.file_mut(ino)?;
        write_at(&mut f.visible, offset, bytes);
        f.push(Op::Write {
            offset,
            bytes: bytes.to_vec(),
        });
        Ok(())
    }

    /// Truncates or extends a file.
    pub fn set_len(&mut self, ino: u64, len: u64) -> Result<(), Errno> {
        let len = usize::try_from(len).map_err(|_| EINVAL)?;
        let f = self.file_mut(ino)?;
        f.visible.resize(len, 0);
        f.push(Op::SetLen(len));
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file (its content) or of a directory (its
    /// entries). Either way only that node becomes durable.
    pub fn fsync(&mut self, ino: u64) -> Result<(), Errno> {
        match self.nodes.get_mut(&ino) {
            Some(Node::File(f)) => {
                while f.write_back_oldest() {}
                Ok(())
            }
            Some(Node::Dir(d)) => {
                d.durable = d.entries.clone();
                Ok(())
            }
            None => Err(ENOENT),
        }
    }

    /// A power cut: the durable state becomes the whole state. With `seed`,
    /// each file also keeps a random prefix of its pending writes, the last
    /// kept one torn at a random byte.
    pub fn cut(&mut self, seed: Option<u64>) -> CutReport {
        let mut report = CutReport::default();
        let mut rng = seed.map(Rng::new);
        for node in self.nodes.values_mut() {
            match node {
                Node::Dir(d) => d.entries = d.durable.clone(),
                Node::File(f) => {
                    let mut kept = 0;
                    if let Some(rng) = rng.as_mut() {
                        kept = f.keep_torn_prefix(rng);
                    }
                    report.bytes_torn_kept += kept as u64;
                    report.bytes_dropped += (f.pending_bytes - kept) as u64;
                    f.pending.clear();
                    f.pending_bytes = 0;
                    f.visible = f.durable.clone();
                }
            }
        }
        // Nodes no durable name reaches are gone.
        let mut reachable = HashSet::from([ROOT]);
        let mut stack = vec![ROOT];
        while let Some(d) = stack.pop() {
            if let Some(Node::Dir(dir)) = self.nodes.get(&d) {
                for &child in dir.durable.values() {
                    if reachable.insert(child) {
                        stack.push(child);
                    }
                }
            }
        }
        let before = self.nodes.len();
        self.nodes.retain(|ino, _| reachable.contains(ino));
        report.nodes_dropped = (before - self.nodes.len()) as u64;
        report
    }
}

impl FileNode {
    fn push(&mut self, op: Op) {
        self.pending_bytes += op.bytes();
        self.pending.push_back(op);
        while self.pending_bytes > MAX_PENDING_BYTES_PER_FILE && self.write_back_oldest() {}
    }

    /// Makes the oldest pending operation durable; false when none is left.
    fn write_back_oldest(&mut self) -> bool {
        let Some(op) = self.pending.pop_front() else {
            return false;
        };
        self.pending_bytes -= op.bytes();
        op.apply(&mut self.durable);
        true
    }

    /// Applies a random prefix of the pending operations to `durable`, the
    /// last one possibly torn; returns the pending bytes so kept.
    fn keep_torn_prefix(&mut self, rng: &mut Rng) -> usize {
        let n = self.pending.len();
        let whole = rng.below(n as u64 + 1) as usize;
        let mut kept = 0;
        for op in self.pending.iter().take(whole) {
            op.apply(&mut self.durable);
            kept += op.bytes();
        }
        if let Some(Op::Write { offset, bytes }) = self.pending.get(whole) {
            let part = rng.below(bytes.len() as u64 + 1) as usize;
            if part > 0 {
                write_at(&mut self.durable, *offset, &bytes[..part]);
                kept += part;
            }
        }
        kept
    }
}

/// xorshift64*: reproducible from the seed a test prints.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Spread nearby seeds apart; xorshift needs a non-zero state.
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

#[cfg(test)]
mod tests;

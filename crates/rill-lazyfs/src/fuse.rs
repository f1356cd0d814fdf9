//! The [`Model`] served over FUSE, plus the control file that cuts power.
//!
//! Every open is `direct_io` and every attribute and entry has a zero TTL:
//! the kernel caches nothing, so after a cut a reader sees exactly what
//! survived (no stale page-cache pages). The SPU does not mmap its files,
//! which direct I/O would forbid.

use std::ffi::OsStr;
use std::io::Write;
use std::time::{Duration, SystemTime};

use fuser::consts::FOPEN_DIRECT_IO;
use fuser::{
    FileAttr, FileType, Filesystem, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow,
};

use crate::model::{Errno, Kind, Model, EINVAL, ROOT};
use crate::CONTROL_FILE;

/// The control file's inode number (the model leaves it free).
const CONTROL: u64 = ROOT + 1;

/// Nothing is cached by the kernel: see the module docs.
const TTL: Duration = Duration::ZERO;

/// The FUSE file system: the model, and how many cuts it has taken.
#[derive(Debug)]
pub struct LazyFs {
    model: Model,
    cuts: u64,
    started: SystemTime,
}

impl Default for LazyFs {
    fn default() -> Self {
        LazyFs {
            model: Model::new(),
            cuts: 0,
            started: SystemTime::now(),
        }
    }
}

impl LazyFs {
    fn attr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let (kind, size) = if ino == CONTROL {
            (Kind::File, 0)
        } else {
            self.model.attr(ino)?
        };
        let (kind, perm, nlink) = match kind {
            Kind::File => (FileType::RegularFile, 0o644, 1),
            Kind::Dir => (FileType::Directory, 0o755, 2),
        };
        Ok(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
            crtime: self.started,
            kind,
            perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn entry(&self, ino: Result<u64, Errno>, reply: ReplyEntry) {
        match ino.and_then(|ino| self.attr(ino)) {
            Ok(attr) => reply.entry(&TTL, &attr, 0),
            Err(e) => reply.error(e.0),
        }
    }

    /// `cut` or `cut SEED` written to the control file. Prints what was
    /// dropped on stdout, one line per cut, for the test's log.
    fn control(&mut self, command: &[u8]) -> Result<(), Errno> {
        let text = std::str::from_utf8(command).map_err(|_| EINVAL)?;
        let mut words = text.split_whitespace();
        if words.next() != Some("cut") {
            return Err(EINVAL);
        }
        let seed = match words.next() {
            Some(s) => Some(s.parse().map_err(|_| EINVAL)?),
            None => None,
        };
        let report = self.model.cut(seed);
        self.cuts += 1;
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "rill-lazyfs: cut {} (seed {seed:?}): dropped {} unsynced bytes and {} files or directories no durable name reaches, kept {} torn bytes",
            self.cuts, report.bytes_dropped, report.nodes_dropped, report.bytes_torn_kept
        );
        let _ = out.flush();
        Ok(())
    }
}

fn done(result: Result<(), Errno>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e.0),
    }
}

impl Filesystem for LazyFs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        if parent == ROOT && name == CONTROL_FILE {
            return self.entry(Ok(CONTROL), reply);
        }
        self.entry(self.model.lookup(parent, name), reply);
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.attr(ino) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e.0),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        // Only the size matters to a power cut; modes and times are not kept.
        let resized = match size {
            Some(len) if ino != CONTROL => self.model.set_len(ino, len),
            _ => Ok(()),
        };
        match resized.and_then(|()| self.attr(ino)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e.0),
        }
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let ino = self.model.mkdir(parent, name);
        self.entry(ino, reply);
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        done(self.model.unlink(parent, name), reply);
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        done(self.model.rmdir(parent, name), reply);
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        // RENAME_NOREPLACE and RENAME_EXCHANGE are not modelled.
        if flags != 0 {
            return reply.error(libc::EINVAL);
        }
        done(self.model.rename(parent, name, new_parent, new_name), reply);
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        match self.attr(ino) {
            Ok(_) => reply.opened(0, FOPEN_DIRECT_IO),
            Err(e) => reply.error(e.0),
        }
    }

    fn create(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        match self
            .model
            .create(parent, name)
            .and_then(|ino| self.attr(ino))
        {
            Ok(attr) => reply.created(&TTL, &attr, 0, 0, FOPEN_DIRECT_IO),
            Err(e) => reply.error(e.0),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        if ino == CONTROL {
            return reply.data(&[]);
        }
        let offset = u64::try_from(offset).unwrap_or(0);
        match self.model.read(ino, offset, size as usize) {
            Ok(bytes) => reply.data(bytes),
            Err(e) => reply.error(e.0),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        let written = if ino == CONTROL {
            self.control(data)
        } else {
            let offset = u64::try_from(offset).unwrap_or(0);
            self.model.write(ino, offset, data)
        };
        match written {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e.0),
        }
    }

    fn flush(&mut self, _req: &Request<'_>, _ino: u64, _fh: u64, _lock: u64, reply: ReplyEmpty) {
        // close() makes nothing durable.
        reply.ok();
    }

    fn fsync(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, _data: bool, reply: ReplyEmpty) {
        done(self.model.fsync(ino), reply);
    }

    fn fsyncdir(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, _data: bool, reply: ReplyEmpty) {
        done(self.model.fsync(ino), reply);
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.model.entries(ino) {
            Ok(entries) => entries,
            Err(e) => return reply.error(e.0),
        };
        let dots = [
            (OsStr::new(".").to_owned(), ino, Kind::Dir),
            (OsStr::new("..").to_owned(), ROOT, Kind::Dir),
        ];
        let all = dots.into_iter().chain(entries);
        for (i, (name, ino, kind)) in all.enumerate().skip(offset.max(0) as usize) {
            let kind = match kind {
                Kind::File => FileType::RegularFile,
                Kind::Dir => FileType::Directory,
            };
            // The offset given is where the next call resumes.
            if reply.add(ino, i as i64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fallocate(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        _offset: i64,
        _length: i64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(libc::EOPNOTSUPP);
    }
}

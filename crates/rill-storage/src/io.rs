//! The small I/O surface the log needs, so tests can swap the disk out.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Whether `open` may create the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Open, creating an empty file if none exists.
    Create,
    /// Open a file that must exist.
    Existing,
}

/// A file opened through a [`Backend`]. Reads and writes are positional, so a
/// handle carries no cursor and can be shared by readers.
pub trait StorageFile: Send + Sync + Debug {
    /// Current size of the file in bytes.
    fn byte_len(&self) -> io::Result<u64>;
    /// Fills `buf` from `pos`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
    /// `len` bytes from `pos` in a new buffer, or `UnexpectedEof`. This
    /// default zero-fills the buffer and reads into it; a real file reads
    /// straight into the buffer's unfilled capacity.
    fn read_vec_at(&self, len: usize, pos: u64) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, pos)?;
        Ok(buf)
    }
    /// Writes all of `buf` at `pos`.
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// Writes `pieces` back to back from `pos`, as one write of their
    /// concatenation would (the log writes a batch's rewritten header and
    /// its untouched rest without first copying them together). This
    /// default writes them one at a time; a real file uses vectored writes.
    fn write_all_pieces_at(&self, pieces: &[&[u8]], pos: u64) -> io::Result<()> {
        let mut at = pos;
        for piece in pieces {
            self.write_all_at(piece, at)?;
            at += piece.len() as u64;
        }
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Gives the file disk blocks for `len` bytes from `pos` without
    /// changing its size, so later writes there find their blocks already
    /// allocated. A hint: the default (simulated disks) does nothing.
    fn allocate(&self, _pos: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// Makes the file's data durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// The operating system's file behind this handle, when there is one,
    /// so a reader can have the kernel send a range of it to a socket
    /// (`sendfile`) without reading it. Files of simulated disks have none.
    fn shared_file(&self) -> Option<Arc<File>> {
        None
    }
}

/// Directory and file operations.
pub trait Backend: Send + Sync + Debug {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries (created, renamed, removed files) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// Real files through `std::fs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileBackend;

/// A file, and a turn for reads through its cursor (every other access is
/// positional and leaves the cursor alone).
#[derive(Debug)]
struct RealFile(Arc<File>, Mutex<()>);

impl StorageFile for RealFile {
    fn byte_len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        FileExt::read_exact_at(&*self.0, buf, pos)
    }

    /// Through the cursor (seek, then read): `read_to_end` on a `File`
    /// fills the vector's spare capacity without zeroing it first, which
    /// a positional read of a slice cannot do. A Fetch of a megabyte
    /// spent a tenth of the SPU's time in that memset.
    fn read_vec_at(&self, len: usize, pos: u64) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(len);
        let _turn = self.1.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = &*self.0;
        file.seek(SeekFrom::Start(pos))?;
        file.take(len as u64).read_to_end(&mut buf)?;
        if buf.len() < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} of {len} bytes at {pos}", buf.len()),
            ));
        }
        Ok(buf)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        FileExt::write_all_at(&*self.0, buf, pos)
    }

    /// One positional vectored write (`pwritev`) per call, as long as the
    /// kernel takes every byte (positional vectored writes are not in
    /// stable `std`).
    fn write_all_pieces_at(&self, pieces: &[&[u8]], pos: u64) -> io::Result<()> {
        if let [one] = pieces {
            return FileExt::write_all_at(&*self.0, one, pos);
        }
        let mut slices: Vec<io::IoSlice<'_>> = pieces.iter().map(|p| io::IoSlice::new(p)).collect();
        let mut rest = &mut slices[..];
        let mut at = pos;
        while !rest.is_empty() {
            match write_vectored_at(&self.0, rest, at) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    io::IoSlice::advance_slices(&mut rest, n);
                    at += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn allocate(&self, pos: u64, len: u64) -> io::Result<()> {
        allocate_keeping_size(&self.0, pos, len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn shared_file(&self) -> Option<Arc<File>> {
        Some(self.0.clone())
    }
}

impl Backend for FileBackend {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        create_dir_all_durable(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(mode == OpenMode::Create)
            .truncate(false)
            .open(path)?;
        Ok(Box::new(RealFile(Arc::new(file), Mutex::new(()))))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Most pieces one `pwritev` takes (Linux's `IOV_MAX`); more go in later
/// calls.
const MAX_PIECES_PER_WRITE: usize = 1024;

/// A file position or length as `off_t`, or `InvalidInput`.
fn off_t(n: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(n).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// `pwritev`: as many bytes of `slices` as the kernel takes, from `pos`.
#[allow(unsafe_code)]
fn write_vectored_at(file: &File, slices: &[io::IoSlice<'_>], pos: u64) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let count = slices.len().min(MAX_PIECES_PER_WRITE) as libc::c_int;
    let pos = off_t(pos)?;
    // SAFETY: `file` is borrowed for the whole call, so its descriptor is
    // open; `IoSlice` is ABI-compatible with `iovec` on Unix (std documents
    // it), and the kernel only reads the first `count` entries, which live
    // as long as the borrow of `slices`.
    let n = unsafe {
        libc::pwritev(
            file.as_raw_fd(),
            slices.as_ptr().cast::<libc::iovec>(),
            count,
            pos,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `fallocate(FALLOC_FL_KEEP_SIZE)`: blocks for `len` bytes from `pos`,
/// the file's size unchanged (so a reader or a recovery scan still sees
/// exactly the bytes written). `std` has no call for it.
#[allow(unsafe_code)]
fn allocate_keeping_size(file: &File, pos: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (pos, len) = (off_t(pos)?, off_t(len)?);
    // SAFETY: `file` is borrowed for the whole call, so its descriptor is
    // open; fallocate takes no pointers.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, pos, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `create_dir_all`, made durable: the parent of every directory it
/// creates is fsynced, and so is the parent of `dir` even when `dir` was
/// already there (a process killed between the create and that fsync left
/// it undurable). Without it a power cut drops a new directory with every
/// fsynced file in it: the power-cut suite lost whole topics so.
pub fn create_dir_all_durable(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.is_dir() {
        missing.push(at);
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    for created in missing.iter().rev() {
        match std::fs::create_dir(created) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        sync_parent(created)?;
    }
    if missing.is_empty() {
        sync_parent(dir)?;
    }
    Ok(())
}

fn sync_parent(dir: &Path) -> io::Result<()> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

/// Empties a file that a create found holding stale bytes. A file that is
/// already empty is left alone: on ext4, truncating to zero and then writing
/// marks the file as "replaced", and closing it then starts writeback of all
/// its data (`auto_da_alloc`), which would tax every new segment.
pub(crate) fn discard_stale(
    file: &dyn StorageFile,
    path: &std::path::Path,
) -> Result<(), crate::StorageError> {
    use crate::error::IoContext;
    if file.byte_len().ctx("stat", path)? > 0 {
        file.set_len(0).ctx("truncate", path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real file's `read_vec_at` (through the cursor, into unfilled
    /// capacity) gives what the zero-filling default gives, wherever it
    /// reads, with positional writes in between; a read past the end is
    /// `UnexpectedEof` either way.
    #[test]
    fn read_vec_at_matches_positional_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = FileBackend.open(&path, OpenMode::Create).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all_at(&data, 0).unwrap();
        for (pos, len) in [
            (0, 0),
            (0, 1),
            (7, 65_536),
            (123_457, 100_000),
            (0, 300_000),
        ] {
            let mut expected = vec![0u8; len];
            file.read_exact_at(&mut expected, pos).unwrap();
            let got = file.read_vec_at(len, pos).unwrap();
            assert_eq!(got, expected, "{len} at {pos}");
            assert_eq!(got, data[pos as usize..pos as usize + len]);
            file.write_all_at(&data[299_990..], 299_990).unwrap();
        }
        let err = file.read_vec_at(2, 299_999).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}

//! Stored batches handed out as a range of their segment file, for a
//! reader that has the kernel send them to a socket (`sendfile`) instead
//! of reading them into memory and writing them out again.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Most batch headers one zero-copy read walks to find where its range
/// ends, past the batches the offset index placed (its last entry within
/// the read's bytes). A read that would take more (a log of small batches
/// and a sparse index) is read into memory instead: copying small batches
/// costs less than a header read per batch.
pub const MAX_SLICE_BATCHES: usize = 128;

/// Whole batches as a byte range of a segment file.
#[derive(Debug, Clone)]
pub struct FileSlice {
    /// The segment's file, kept open for as long as the slice lives (a
    /// segment that retention removes meanwhile stays readable).
    pub file: Arc<File>,
    /// Byte position of the first batch in the file.
    pub pos: u64,
    /// Bytes in the range: whole batches only.
    pub len: u64,
    /// Records in those batches (their headers' counts).
    pub records: u64,
}

impl FileSlice {
    /// The slice's bytes, read into memory: for a writer that cannot have
    /// the kernel send them (not a socket), or an answer that must be
    /// encoded whole.
    pub fn read_bytes(&self) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_into(&mut buf)?;
        Ok(buf)
    }

    /// Appends the slice's bytes to `buf` (a frame being put together).
    /// A file that ends before the slice does fails with `UnexpectedEof`.
    pub fn read_into(&self, buf: &mut Vec<u8>) -> io::Result<()> {
        let len = usize::try_from(self.len).map_err(io::Error::other)?;
        let start = buf.len();
        buf.resize(start + len, 0);
        let (_, tail) = buf.split_at_mut(start);
        let read = self.file.read_exact_at(tail, self.pos);
        if read.is_err() {
            buf.truncate(start);
        }
        read
    }
}

/// Whole batches, exactly as stored: read into memory, or left in their
/// file.
#[derive(Debug, Clone)]
pub enum Batches {
    Bytes(Vec<u8>),
    File(FileSlice),
}

impl Batches {
    /// Bytes of all the batches.
    pub fn byte_len(&self) -> u64 {
        match self {
            Batches::Bytes(b) => b.len() as u64,
            Batches::File(f) => f.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.byte_len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn read_into_appends_the_range_and_a_short_file_leaves_the_buffer_as_it_was() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        let file = Arc::new(f);
        let slice = |pos, len| FileSlice {
            file: file.clone(),
            pos,
            len,
            records: 0,
        };
        let mut buf = b"head:".to_vec();
        slice(2, 5).read_into(&mut buf).unwrap();
        assert_eq!(buf, b"head:23456");
        let err = slice(8, 5).read_into(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(buf, b"head:23456", "nothing of the failed read is kept");
        assert_eq!(slice(0, 3).read_bytes().unwrap(), b"012");
    }
}

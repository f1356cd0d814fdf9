//! The per-partition checkpoint: log start offset, high watermark and
//! recovery point, in one small text file replaced atomically
//! (write temp, fsync, rename, fsync dir) and guarded by a CRC so a damaged
//! file reads as absent rather than as wrong numbers.

use std::path::Path;

use crate::io::{Backend, OpenMode};
use crate::StorageError;

pub(crate) const FILE_NAME: &str = "checkpoint";
const TMP_NAME: &str = "checkpoint.tmp";
const FORMAT_LINE: &str = "rill-checkpoint 1";
/// A checkpoint is a few dozen bytes; anything longer is not one of ours.
const MAX_CHECKPOINT_BYTES: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Checkpoint {
    pub log_start_offset: u64,
    pub high_watermark: u64,
    /// Every offset below this was fsynced: recovery need not scan it.
    pub recovery_point: u64,
}

impl Checkpoint {
    fn encode(&self) -> String {
        crate::sealed::seal(&format!(
            "{FORMAT_LINE}\nlog_start_offset {}\nhigh_watermark {}\nrecovery_point {}\n",
            self.log_start_offset, self.high_watermark, self.recovery_point
        ))
    }

    fn decode(text: &str) -> Option<Self> {
        let body = crate::sealed::unseal(text)?;
        let mut lines = body.lines();
        if lines.next()? != FORMAT_LINE {
            return None;
        }
        let mut field = |name: &str| -> Option<u64> {
            lines
                .next()?
                .strip_prefix(name)?
                .strip_prefix(' ')?
                .parse()
                .ok()
        };
        Some(Checkpoint {
            log_start_offset: field("log_start_offset")?,
            high_watermark: field("high_watermark")?,
            recovery_point: field("recovery_point")?,
        })
    }
}

/// Reads the checkpoint; `None` when it is missing or damaged.
pub(crate) fn read(backend: &dyn Backend, dir: &Path) -> Option<Checkpoint> {
    let file = backend
        .open(&dir.join(FILE_NAME), OpenMode::Existing)
        .ok()?;
    let len = file.byte_len().ok()?;
    if len > MAX_CHECKPOINT_BYTES {
        return None;
    }
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0).ok()?;
    Checkpoint::decode(std::str::from_utf8(&buf).ok()?)
}

pub(crate) fn write(
    backend: &dyn Backend,
    dir: &Path,
    cp: &Checkpoint,
) -> Result<(), StorageError> {
    crate::sealed::replace(backend, dir, TMP_NAME, FILE_NAME, cp.encode().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let cp = Checkpoint {
            log_start_offset: 5,
            high_watermark: 90,
            recovery_point: 88,
        };
        let text = cp.encode();
        assert_eq!(Checkpoint::decode(&text), Some(cp));
        let damaged = text.replace("90", "91");
        assert_eq!(Checkpoint::decode(&damaged), None);
        assert_eq!(Checkpoint::decode(""), None);
        assert_eq!(Checkpoint::decode("garbage\n"), None);
    }
}

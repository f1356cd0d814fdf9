//! Small text files guarded by a CRC and replaced atomically (the
//! checkpoint, the leader-epoch file): a damaged file reads as damaged,
//! never as other numbers, and a crash mid-write leaves the old file.

use std::path::Path;

use crate::error::IoContext;
use crate::io::{Backend, OpenMode};
use crate::StorageError;

/// `body` followed by a `crc32c` line over it.
pub(crate) fn seal(body: &str) -> String {
    let crc = crc32c::crc32c(body.as_bytes());
    format!("{body}crc32c {crc:08x}\n")
}

/// The body of a sealed text (its last line included), if its CRC holds.
pub(crate) fn unseal(text: &str) -> Option<&str> {
    let (body, crc_line) = text.strip_suffix('\n')?.rsplit_once('\n')?;
    let body = text.get(..body.len() + 1)?;
    let crc = u32::from_str_radix(crc_line.strip_prefix("crc32c ")?, 16).ok()?;
    (crc == crc32c::crc32c(body.as_bytes())).then_some(body)
}

/// Replaces `dir/name` with `bytes`: written to `dir/tmp_name`, fsynced,
/// renamed over it, the directory fsynced.
pub(crate) fn replace(
    backend: &dyn Backend,
    dir: &Path,
    tmp_name: &str,
    name: &str,
    bytes: &[u8],
) -> Result<(), StorageError> {
    let tmp = dir.join(tmp_name);
    let target = dir.join(name);
    let file = backend.open(&tmp, OpenMode::Create).ctx("create", &tmp)?;
    crate::io::discard_stale(file.as_ref(), &tmp)?;
    file.write_all_at(bytes, 0).ctx("write", &tmp)?;
    file.sync_data().ctx("fsync", &tmp)?;
    drop(file);
    backend.rename(&tmp, &target).ctx("rename", &tmp)?;
    backend.sync_dir(dir).ctx("fsync directory", dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_round_trips_and_any_change_breaks_the_seal() {
        let text = seal("format 1\nvalue 42\n");
        assert_eq!(unseal(&text), Some("format 1\nvalue 42\n"));
        assert_eq!(unseal(&text.replace("42", "43")), None);
        assert_eq!(unseal(""), None);
        assert_eq!(unseal("no seal\n"), None);
    }
}

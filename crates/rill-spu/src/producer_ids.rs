//! Producer ids for idempotent producers: unique for the life of the data
//! directory, never reused across restarts. Ids are handed out from blocks
//! whose end is made durable before any id in the block is given.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::SpuError;

/// Ids reserved per durable write.
const BLOCK: i64 = 1000;

#[derive(Debug)]
pub(crate) struct ProducerIds {
    path: PathBuf,
    /// (next id to give, end of the durable block)
    state: Mutex<(i64, i64)>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpuError + '_ {
    move |source| SpuError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl ProducerIds {
    pub fn open(meta_dir: &Path) -> Result<Self, SpuError> {
        let path = meta_dir.join("producer_ids");
        let reserved = match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<i64>().map_err(|_| SpuError::Metadata {
                path: path.clone(),
                reason: format!("not a number: {text:?}"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(&path)(e)),
        };
        // Everything below `reserved` may have been handed out before.
        Ok(Self {
            path,
            state: Mutex::new((reserved, reserved)),
        })
    }

    fn persist(&self, end: i64) -> Result<(), SpuError> {
        let tmp = self.path.with_extension("tmp");
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(format!("{end}\n").as_bytes())
            .map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    }

    /// A fresh id.
    pub fn next(&self) -> Result<i64, SpuError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.0 >= st.1 {
            let end = st.1 + BLOCK;
            self.persist(end)?;
            st.1 = end;
        }
        let id = st.0;
        st.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = ProducerIds::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| a.next().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(a);
        let b = ProducerIds::open(dir.path()).unwrap();
        assert!(
            b.next().unwrap() >= BLOCK,
            "a restart skips the whole reserved block"
        );
    }
}

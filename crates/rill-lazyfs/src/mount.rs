//! A [`LazyFs`] mounted from inside a test process: served by a background
//! thread, cut through its control file, unmounted when dropped (on every
//! exit path of a test, panics included; `auto_unmount` covers a test
//! process that is killed).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, MountOption};

use crate::{LazyFs, CONTROL_FILE};

/// How long a mount may take to answer before [`Mount::new`] gives up.
const MOUNT_WAIT: Duration = Duration::from_secs(10);

/// Why power-cut tests cannot run here, if they cannot: no `/dev/fuse` or
/// no `fusermount3` on the PATH.
pub fn unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse is absent".to_string());
    }
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("fusermount3").is_file())
    });
    (!on_path).then(|| "fusermount3 is not on the PATH (Debian's fuse3)".to_string())
}

/// A mounted, initially empty [`LazyFs`].
#[derive(Debug)]
pub struct Mount {
    path: PathBuf,
    session: Option<BackgroundSession>,
}

impl Mount {
    /// Mounts at `path` (an existing empty directory) and waits until the
    /// mount answers.
    pub fn new(path: impl Into<PathBuf>) -> io::Result<Mount> {
        let path = path.into();
        let options = [
            MountOption::FSName("rill-lazyfs".to_string()),
            MountOption::AutoUnmount,
            MountOption::AllowRoot,
        ];
        let session = fuser::spawn_mount2(LazyFs::default(), &path, &options)?;
        let mount = Mount {
            path,
            session: Some(session),
        };
        let deadline = Instant::now() + MOUNT_WAIT;
        while std::fs::metadata(mount.control()).is_err() {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} did not answer", mount.path.display()),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(mount)
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the directory `name` at the mount's root and makes it
    /// durable (the root fsynced), as a data directory set up on a real
    /// disk before its server starts would be.
    pub fn durable_dir(&self, name: &str) -> io::Result<PathBuf> {
        let dir = self.path.join(name);
        std::fs::create_dir(&dir)?;
        std::fs::File::open(&self.path)?.sync_all()?;
        Ok(dir)
    }

    fn control(&self) -> PathBuf {
        self.path.join(CONTROL_FILE)
    }

    /// Cuts the power: everything not durable is gone when this returns.
    /// With `seed`, a random prefix of each file's unsynced writes stays,
    /// the last one torn at a byte.
    pub fn cut(&self, seed: Option<u64>) -> io::Result<()> {
        let command = match seed {
            Some(seed) => format!("cut {seed}"),
            None => "cut".to_string(),
        };
        std::fs::write(self.control(), command)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Unmount by mountpoint now: with `auto_unmount` dropping the session
        // only asks fusermount3's helper to, and a test runner that kills
        // the test's process group can kill that helper first. Lazy (`-z`):
        // a process still holding a file there does not keep it mounted.
        let _ = Command::new("fusermount3")
            .args(["-u", "-z", "-q", "--"])
            .arg(&self.path)
            .status();
        drop(self.session.take());
    }
}

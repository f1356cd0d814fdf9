//! `rill-lazyfs MOUNTPOINT`: serves an empty [`rill_lazyfs::LazyFs`] at
//! MOUNTPOINT until it is unmounted (`fusermount3 -u MOUNTPOINT`).
//!
//! Everything lives in this process's memory, the durable state included:
//! the file system outlives the SPU it serves, and a cut (`echo cut SEED >
//! MOUNTPOINT/.lazyfs-control`) leaves in place what a power cut would have
//! left on a disk, for the SPU to restart on. It mounts with
//! `auto_unmount`: if this process dies, fusermount3 unmounts the mount.

use std::process::ExitCode;

use fuser::MountOption;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mountpoint] = args.as_slice() else {
        eprintln!("usage: rill-lazyfs MOUNTPOINT");
        return ExitCode::from(2);
    };
    let options = [
        MountOption::FSName("rill-lazyfs".to_string()),
        MountOption::AutoUnmount,
        MountOption::AllowRoot,
    ];
    match fuser::mount2(rill_lazyfs::LazyFs::default(), mountpoint, &options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rill-lazyfs: mounting at {mountpoint}: {e}");
            ExitCode::FAILURE
        }
    }
}

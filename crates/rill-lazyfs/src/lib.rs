//! A file system that forgets what was not made durable, for power-cut
//! tests of the SPU (issue #21).
//!
//! [`model`] is the state: what reads see, and what survives a cut (only
//! what `fsync`/`fdatasync` of the file, and for new, renamed or removed
//! names `fsync` of the directory, made durable). The `rill-lazyfs` binary
//! serves it over FUSE; writing to its control file cuts the power.

pub mod model;

/// The control file in the root of the mount: writing `cut` to it drops
/// everything not durable; `cut SEED` also keeps a random prefix of the
/// pending writes (torn at a byte), drawn from `SEED`.
pub const CONTROL_FILE: &str = ".lazyfs-control";

mod fuse;
pub mod mount;

pub use fuse::LazyFs;

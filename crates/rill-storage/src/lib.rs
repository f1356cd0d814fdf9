//! Rill's partition log: the ordered, durable list of record batches that
//! one partition keeps.
//!
//! A [`PartitionLog`] lives in its own directory as segments named by their
//! base offset (`%020d.log`), each with a sparse offset index (`.index`) and
//! a time index (`.timeindex`), plus a `checkpoint` file (log start offset,
//! high watermark, recovery point) and a `leader-epochs` file (where each
//! leader epoch started, for replication). Batches are stored exactly as
//! they arrived; only `base_offset` (and, once the log's SPU leads it in an
//! epoch, `partition_leader_epoch`) is rewritten, neither of which the batch
//! CRC covers. A follower's batches (`append_replica`) are stored byte for
//! byte as the leader wrote them.
//!
//! All file access goes through the small [`Backend`] trait: [`FileBackend`]
//! for real files, [`SimBackend`] for tests that cut the power or fail
//! writes. No networking here.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod checkpoint;
mod config;
mod error;
mod index;
mod io;
mod leader_epoch;
mod log;
mod sealed;
mod segment;
mod sim;
mod slice;

pub use config::{FlushPolicy, LogConfig};
pub use error::StorageError;
pub use io::{create_dir_all_durable, Backend, FileBackend, OpenMode, StorageFile};
pub use leader_epoch::{
    truncation_offset, truncation_step, EpochEntry, LeaderEpochs, Truncation,
    MAX_LEADER_EPOCH_FILE_BYTES,
};
pub use log::{AppendInfo, PartitionLog, ReadResult, RetentionOutcome, TimestampOffset};
pub use sim::SimBackend;
pub use slice::{Batches, FileSlice, MAX_SLICE_BATCHES};

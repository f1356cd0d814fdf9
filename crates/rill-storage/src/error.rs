use std::path::PathBuf;

use rill_protocol::BatchError;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The batch given to `append` was refused; nothing was written.
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// `append` was given no bytes.
    #[error("append of an empty record set")]
    EmptyAppend,
    /// A read asked for an offset the log does not hold.
    #[error("offset {offset} is outside the log [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: u64,
        log_start_offset: u64,
        log_end_offset: u64,
    },
    /// The file system refused an operation.
    #[error("I/O error while trying to {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An earlier write or fsync failed in a way that leaves the file's state
    /// unknown; the log refuses writes until it is reopened (and recovered).
    #[error("log {} stopped after a failed write; reopen it to recover", dir.display())]
    Failed { dir: PathBuf },
    /// Stored bytes that cannot be read back as batches.
    #[error("corrupt data in {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// A replica append whose batches do not continue the log: the batch at
    /// `found` where `expected` (the log end, or the end of the batch
    /// before it) was due. Nothing was written.
    #[error("replica batch at offset {found} where {expected} was due")]
    ReplicaOffsetMismatch { expected: u64, found: i64 },
    /// `begin_leader_epoch` with an epoch older than the latest one the log
    /// has seen (a deposed leader must not write again).
    #[error("leader epoch {epoch} is older than the log's latest epoch {latest}")]
    StaleLeaderEpoch { epoch: i32, latest: i32 },
    /// A configuration value out of range.
    #[error("invalid log configuration: {0}")]
    Config(String),
}

pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}

use std::path::PathBuf;

/// Why the SPU could not start or keep its state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpuError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("topic metadata in {} is unreadable: {reason}", path.display())]
    Metadata { path: PathBuf, reason: String },
    #[error(transparent)]
    Storage(#[from] rill_storage::StorageError),
    /// The cluster's metadata store could not be reached or refused us.
    #[error("cluster metadata store")]
    Store(#[from] rill_cluster::StoreError),
    /// Joining the cluster failed (the store away, or the id taken).
    #[error("joining the cluster")]
    Membership(#[from] rill_cluster::MembershipError),
}

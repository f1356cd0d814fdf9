//! The metadata store's contract. Every backend (the local file, etcd, and
//! memory for simulations) gives the same semantics, which the conformance
//! tests in `tests/it` check against each:
//!
//! - **Revisions.** The store has one revision counter; every change bumps
//!   it and stamps the changed key with it (`mod_revision`), as etcd does.
//! - **Compare-and-swap.** A write names what it expects of the key
//!   ([`Expect`]): absent, at a given `mod_revision`, or anything. A write
//!   whose expectation fails changes nothing and says
//!   [`StoreError::Conflict`]. Two writers racing on one key: exactly one
//!   wins; the other re-reads.
//! - **Leases.** A key written with a lease disappears when the lease
//!   expires (its holder stopped renewing within its TTL) or is revoked:
//!   an SPU's registration vanishes when the SPU dies.
//! - **Watches.** A watch of a prefix from a revision delivers every change
//!   after it, in revision order, deletes by expiry included. A watcher
//!   that falls too far behind gets [`StoreError::WatchLost`] and must list
//!   again: watches are bounded queues, never unbounded buffers.

use std::future::Future;
use std::time::Duration;

/// The store's revision counter (etcd's `revision`).
pub type Revision = i64;
/// A lease's id (etcd's lease id).
pub type LeaseId = i64;

/// Events a watch holds for a slow reader before the watch is dropped
/// (the reader then lists again).
pub const WATCH_QUEUE_EVENTS: usize = 1024;

/// A key's value and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision of the key's last change.
    pub mod_revision: Revision,
    /// The lease the key lives under, if any.
    pub lease: Option<LeaseId>,
}

/// The keys under a prefix, as of one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Sorted by key.
    pub entries: Vec<Entry>,
    /// The store's revision when listed: watch from here to miss nothing.
    pub revision: Revision,
}

/// What a write expects of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No condition.
    Any,
    /// The key must not exist.
    Absent,
    /// The key must exist with this `mod_revision`.
    ModRevision(Revision),
}

/// A second condition on a write: another key must still be at this
/// `mod_revision` (a controller guards its writes on its own election key,
/// so a deposed controller's writes fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard<'a> {
    pub key: &'a str,
    pub mod_revision: Revision,
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    Put(Entry),
    Delete { key: String, mod_revision: Revision },
}

impl WatchEvent {
    /// The key changed.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put(e) => &e.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }

    /// The revision of the change.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put(e) => e.mod_revision,
            WatchEvent::Delete { mod_revision, .. } => *mod_revision,
        }
    }
}

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The write's expectation did not hold; nothing changed.
    #[error("{key}: expected {expected:?}, found revision {actual:?}")]
    Conflict {
        key: String,
        expected: Expect,
        /// The key's `mod_revision`, `None` if absent.
        actual: Option<Revision>,
    },
    /// The lease expired, was revoked, or never existed.
    #[error("lease {0} not found (expired or revoked)")]
    LeaseNotFound(LeaseId),
    /// The watch fell behind (or asked for revisions no longer kept):
    /// list again and watch from the listing's revision.
    #[error("watch lost: {0}")]
    WatchLost(String),
    /// The store cannot be reached (etcd down) or its file failed.
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    /// The stored data cannot be read back.
    #[error("metadata store corrupt: {0}")]
    Corrupt(String),
}

/// A stream of changes; see [`MetadataStore::watch`].
#[derive(Debug)]
pub struct Watch {
    pub(crate) rx: tokio::sync::mpsc::Receiver<Result<WatchEvent, StoreError>>,
}

impl Watch {
    /// The next change, an error once the watch is lost, `None` when the
    /// store is gone.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        self.rx.recv().await
    }
}

/// Cluster metadata as keys and values with revisions, compare-and-swap,
/// leases and watches (the subset of etcd's API Rill needs).
pub trait MetadataStore: Send + Sync + 'static {
    /// The key's entry, if present.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Entry>, StoreError>> + Send;

    /// Every key starting with `prefix`, sorted, with the store's revision.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Listing, StoreError>> + Send;

    /// Writes `value` at `key` if `expect` holds (and `guard`, if given),
    /// under `lease` if given; the new revision. Both conditions are
    /// checked and the write done in one step.
    fn put_guarded(
        &self,
        key: &str,
        value: Vec<u8>,
        expect: Expect,
        lease: Option<LeaseId>,
        guard: Option<Guard<'_>>,
    ) -> impl Future<Output = Result<Revision, StoreError>> + Send;

    /// Deletes `key` if `expect` holds (and `guard`, if given); deleting an
    /// absent key under `Expect::Any` is no error. The new revision.
    fn delete_guarded(
        &self,
        key: &str,
        expect: Expect,
        guard: Option<Guard<'_>>,
    ) -> impl Future<Output = Result<Revision, StoreError>> + Send;

    /// [`Self::put_guarded`] without a guard.
    fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        expect: Expect,
        lease: Option<LeaseId>,
    ) -> impl Future<Output = Result<Revision, StoreError>> + Send {
        self.put_guarded(key, value, expect, lease, None)
    }

    /// [`Self::delete_guarded`] without a guard.
    fn delete(
        &self,
        key: &str,
        expect: Expect,
    ) -> impl Future<Output = Result<Revision, StoreError>> + Send {
        self.delete_guarded(key, expect, None)
    }

    /// A lease that expires `ttl` after its last renewal.
    fn grant_lease(
        &self,
        ttl: Duration,
    ) -> impl Future<Output = Result<LeaseId, StoreError>> + Send;

    /// Renews the lease for another TTL.
    fn keep_alive(&self, lease: LeaseId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends the lease now; its keys are deleted.
    fn revoke_lease(&self, lease: LeaseId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every change to keys under `prefix` after revision `after`.
    fn watch(
        &self,
        prefix: &str,
        after: Revision,
    ) -> impl Future<Output = Result<Watch, StoreError>> + Send;
}

//! One store type for code that picks its backend at run time (the SPU:
//! etcd in a cluster, memory in simulation tests), so it need not be
//! generic over [`MetadataStore`].

use std::time::Duration;

use crate::store::{
    Entry, Expect, Guard, LeaseId, Listing, MetadataStore, Revision, StoreError, Watch,
};
use crate::{EtcdStore, FileStore, MemoryStore};

/// Any of the three backends.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// Boxed: etcd's client is large, and the enum is cloned around.
    Etcd(Box<EtcdStore>),
    File(FileStore),
    Memory(MemoryStore),
}

/// Runs the same call on whichever backend this is.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Etcd($s) => $call.await,
            AnyStore::File($s) => $call.await,
            AnyStore::Memory($s) => $call.await,
        }
    };
}

impl MetadataStore for AnyStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        each!(self, s => s.get(key))
    }

    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        each!(self, s => s.list(prefix))
    }

    async fn put_guarded(
        &self,
        key: &str,
        value: Vec<u8>,
        expect: Expect,
        lease: Option<LeaseId>,
        guard: Option<Guard<'_>>,
    ) -> Result<Revision, StoreError> {
        each!(self, s => s.put_guarded(key, value, expect, lease, guard))
    }

    async fn delete_guarded(
        &self,
        key: &str,
        expect: Expect,
        guard: Option<Guard<'_>>,
    ) -> Result<Revision, StoreError> {
        each!(self, s => s.delete_guarded(key, expect, guard))
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        each!(self, s => s.grant_lease(ttl))
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        each!(self, s => s.keep_alive(lease))
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        each!(self, s => s.revoke_lease(lease))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StoreError> {
        each!(self, s => s.watch(prefix, after))
    }
}

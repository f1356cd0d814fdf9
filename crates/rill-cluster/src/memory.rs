//! The in-memory backend: etcd's semantics without etcd, for simulation
//! tests (with tokio's paused clock, leases expire on virtual time).

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::state::State;
use crate::store::{
    Entry, Expect, Guard, LeaseId, Listing, MetadataStore, Revision, StoreError, Watch,
};

/// How often the reaper looks for expired leases when none is due sooner.
const REAP_IDLE_INTERVAL: Duration = Duration::from_millis(250);

/// Cheap to clone; clones share the store. Lease expiry runs in a task
/// that ends with the last clone.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    /// An empty store. Must be called inside a tokio runtime (its lease
    /// reaper is a task).
    pub fn new() -> Self {
        Self::from_state(State::default())
    }

    pub(crate) fn from_state(state: State) -> Self {
        let state = Arc::new(Mutex::new(state));
        tokio::spawn(reap(Arc::downgrade(&state)));
        Self { state }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Deletes the keys of expired leases, so watchers hear of a dead holder
/// even when nobody writes.
async fn reap(state: Weak<Mutex<State>>) {
    loop {
        let next = {
            let Some(state) = state.upgrade() else { return };
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.expire(Instant::now());
            s.next_expiry()
        };
        let idle = Instant::now() + REAP_IDLE_INTERVAL;
        tokio::time::sleep_until(next.map_or(idle, |t| t.min(idle))).await;
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MetadataStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let mut s = self.lock();
        s.expire(Instant::now());
        Ok(s.get(key))
    }

    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        let mut s = self.lock();
        s.expire(Instant::now());
        Ok(s.list(prefix))
    }

    async fn put_guarded(
        &self,
        key: &str,
        value: Vec<u8>,
        expect: Expect,
        lease: Option<LeaseId>,
        guard: Option<Guard<'_>>,
    ) -> Result<Revision, StoreError> {
        let now = Instant::now();
        Ok(self.lock().put(key, value, expect, lease, guard, now)?.0)
    }

    async fn delete_guarded(
        &self,
        key: &str,
        expect: Expect,
        guard: Option<Guard<'_>>,
    ) -> Result<Revision, StoreError> {
        Ok(self.lock().delete(key, expect, guard, Instant::now())?.0)
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        Ok(self.lock().grant(ttl, Instant::now()))
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.lock().keep_alive(lease, Instant::now())
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.lock().revoke(lease, Instant::now()).map(|_| ())
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StoreError> {
        let mut s = self.lock();
        s.expire(Instant::now());
        s.watch(prefix, after)
    }
}

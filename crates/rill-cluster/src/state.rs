//! The store's semantics as plain data with time passed in: keys with
//! revisions, compare-and-swap, leases, watch history. The memory and file
//! backends wrap it (the file backend also logs each change); etcd has its
//! own, and the conformance tests hold all three to the same behaviour.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::store::{
    Entry, Expect, Guard, LeaseId, Listing, Revision, StoreError, Watch, WatchEvent,
    WATCH_QUEUE_EVENTS,
};

/// Changes kept for watches that start in the past; older starts get
/// `WatchLost` (as etcd's compaction does).
pub(crate) const HISTORY_EVENTS: usize = 4096;

#[derive(Debug, Clone)]
struct Stored {
    value: Vec<u8>,
    mod_revision: Revision,
    lease: Option<LeaseId>,
}

#[derive(Debug)]
struct Lease {
    ttl: Duration,
    expires_at: Instant,
    keys: BTreeSet<String>,
}

#[derive(Debug)]
struct Watcher {
    prefix: String,
    tx: mpsc::Sender<Result<WatchEvent, StoreError>>,
}

/// One change, as the file backend logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A key written without a lease (it outlives a restart).
    Put {
        key: String,
        value: Vec<u8>,
        revision: Revision,
    },
    /// A key deleted.
    Delete { key: String, revision: Revision },
    /// The revision moved for a change that does not outlive a restart
    /// (a key under a lease): revisions never go back.
    Revision(Revision),
}

#[derive(Debug, Default)]
pub(crate) struct State {
    entries: BTreeMap<String, Stored>,
    revision: Revision,
    leases: HashMap<LeaseId, Lease>,
    next_lease: LeaseId,
    history: VecDeque<WatchEvent>,
    watchers: Vec<Watcher>,
}

impl State {
    fn entry(key: &str, s: &Stored) -> Entry {
        Entry {
            key: key.to_owned(),
            value: s.value.clone(),
            mod_revision: s.mod_revision,
            lease: s.lease,
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<Entry> {
        self.entries.get(key).map(|s| Self::entry(key, s))
    }

    pub(crate) fn list(&self, prefix: &str) -> Listing {
        Listing {
            entries: self
                .entries
                .range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, s)| Self::entry(k, s))
                .collect(),
            revision: self.revision,
        }
    }

    fn check(&self, key: &str, expect: Expect) -> Result<(), StoreError> {
        let actual = self.entries.get(key).map(|s| s.mod_revision);
        let holds = match expect {
            Expect::Any => true,
            Expect::Absent => actual.is_none(),
            Expect::ModRevision(r) => actual == Some(r),
        };
        if holds {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                key: key.to_owned(),
                expected: expect,
                actual,
            })
        }
    }

    fn check_guard(&self, guard: Option<Guard<'_>>) -> Result<(), StoreError> {
        match guard {
            Some(g) => self.check(g.key, Expect::ModRevision(g.mod_revision)),
            None => Ok(()),
        }
    }

    pub(crate) fn put(
        &mut self,
        key: &str,
        value: Vec<u8>,
        expect: Expect,
        lease: Option<LeaseId>,
        guard: Option<Guard<'_>>,
        now: Instant,
    ) -> Result<(Revision, Change), StoreError> {
        self.expire(now);
        self.check_guard(guard)?;
        self.check(key, expect)?;
        if let Some(id) = lease {
            let l = self
                .leases
                .get_mut(&id)
                .ok_or(StoreError::LeaseNotFound(id))?;
            l.keys.insert(key.to_owned());
        }
        if let Some(old) = self.entries.get(key).and_then(|s| s.lease) {
            if Some(old) != lease {
                if let Some(l) = self.leases.get_mut(&old) {
                    l.keys.remove(key);
                }
            }
        }
        self.revision += 1;
        let revision = self.revision;
        let stored = Stored {
            value,
            mod_revision: revision,
            lease,
        };
        self.notify(WatchEvent::Put(Self::entry(key, &stored)));
        let change = if lease.is_some() {
            Change::Revision(revision)
        } else {
            Change::Put {
                key: key.to_owned(),
                value: stored.value.clone(),
                revision,
            }
        };
        self.entries.insert(key.to_owned(), stored);
        Ok((revision, change))
    }

    pub(crate) fn delete(
        &mut self,
        key: &str,
        expect: Expect,
        guard: Option<Guard<'_>>,
        now: Instant,
    ) -> Result<(Revision, Option<Change>), StoreError> {
        self.expire(now);
        self.check_guard(guard)?;
        self.check(key, expect)?;
        Ok(match self.remove(key) {
            Some(change) => (self.revision, Some(change)),
            None => (self.revision, None),
        })
    }

    /// Removes a key (a change), if present.
    fn remove(&mut self, key: &str) -> Option<Change> {
        let old = self.entries.remove(key)?;
        if let Some(l) = old.lease.and_then(|id| self.leases.get_mut(&id)) {
            l.keys.remove(key);
        }
        self.revision += 1;
        let revision = self.revision;
        self.notify(WatchEvent::Delete {
            key: key.to_owned(),
            mod_revision: revision,
        });
        Some(if old.lease.is_some() {
            Change::Revision(revision)
        } else {
            Change::Delete {
                key: key.to_owned(),
                revision,
            }
        })
    }

    pub(crate) fn grant(&mut self, ttl: Duration, now: Instant) -> LeaseId {
        self.expire(now);
        self.next_lease += 1;
        let id = self.next_lease;
        self.leases.insert(
            id,
            Lease {
                ttl,
                expires_at: now + ttl,
                keys: BTreeSet::new(),
            },
        );
        id
    }

    pub(crate) fn keep_alive(&mut self, id: LeaseId, now: Instant) -> Result<(), StoreError> {
        self.expire(now);
        let lease = self
            .leases
            .get_mut(&id)
            .ok_or(StoreError::LeaseNotFound(id))?;
        lease.expires_at = now + lease.ttl;
        Ok(())
    }

    pub(crate) fn revoke(&mut self, id: LeaseId, now: Instant) -> Result<Vec<Change>, StoreError> {
        self.expire(now);
        let lease = self
            .leases
            .remove(&id)
            .ok_or(StoreError::LeaseNotFound(id))?;
        Ok(lease.keys.iter().filter_map(|k| self.remove(k)).collect())
    }

    /// Ends the leases expired at `now`, deleting their keys.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Change> {
        let expired: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, l)| l.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut changes = Vec::new();
        for id in expired {
            if let Some(lease) = self.leases.remove(&id) {
                tracing::debug!(lease = id, keys = lease.keys.len(), "lease expired");
                changes.extend(lease.keys.iter().filter_map(|k| self.remove(k)));
            }
        }
        changes
    }

    /// When the next lease expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.leases.values().map(|l| l.expires_at).min()
    }

    pub(crate) fn watch(&mut self, prefix: &str, after: Revision) -> Result<Watch, StoreError> {
        let oldest = self
            .history
            .front()
            .map_or(self.revision + 1, |e| e.revision());
        if after + 1 < oldest && after < self.revision {
            return Err(StoreError::WatchLost(format!(
                "revision {after} is older than the history kept (from {oldest})"
            )));
        }
        let (tx, rx) = mpsc::channel(WATCH_QUEUE_EVENTS);
        let past: Vec<WatchEvent> = self
            .history
            .iter()
            .filter(|e| e.revision() > after && e.key().starts_with(prefix))
            .cloned()
            .collect();
        if past.len() >= WATCH_QUEUE_EVENTS {
            return Err(StoreError::WatchLost(format!(
                "{} changes since revision {after}: list again",
                past.len()
            )));
        }
        for e in past {
            let _ = tx.try_send(Ok(e));
        }
        self.watchers.push(Watcher {
            prefix: prefix.to_owned(),
            tx,
        });
        Ok(Watch { rx })
    }

    fn notify(&mut self, event: WatchEvent) {
        self.history.push_back(event.clone());
        if self.history.len() > HISTORY_EVENTS {
            self.history.pop_front();
        }
        self.watchers.retain(|w| {
            if w.tx.is_closed() {
                return false;
            }
            if !event.key().starts_with(&w.prefix) {
                return true;
            }
            // The last slot is kept for the news that the watch is lost.
            if w.tx.capacity() <= 1 {
                let _ = w.tx.try_send(Err(StoreError::WatchLost(format!(
                    "more than {WATCH_QUEUE_EVENTS} changes unread"
                ))));
                return false;
            }
            w.tx.try_send(Ok(event.clone())).is_ok()
        });
    }

    /// Replays a logged change (file backend, at open).
    pub(crate) fn replay(&mut self, change: Change) {
        match change {
            Change::Put {
                key,
                value,
                revision,
            } => {
                self.entries.insert(
                    key,
                    Stored {
                        value,
                        mod_revision: revision,
                        lease: None,
                    },
                );
                self.revision = self.revision.max(revision);
            }
            Change::Delete { key, revision } => {
                self.entries.remove(&key);
                self.revision = self.revision.max(revision);
            }
            Change::Revision(revision) => self.revision = self.revision.max(revision),
        }
    }

    /// The changes that rebuild the keys that outlive a restart.
    pub(crate) fn snapshot(&self) -> Vec<Change> {
        let mut out: Vec<Change> = self
            .entries
            .iter()
            .filter(|(_, s)| s.lease.is_none())
            .map(|(k, s)| Change::Put {
                key: k.clone(),
                value: s.value.clone(),
                revision: s.mod_revision,
            })
            .collect();
        out.push(Change::Revision(self.revision));
        out
    }
}

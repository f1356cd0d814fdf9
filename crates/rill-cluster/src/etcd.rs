//! The etcd backend (etcd v3 through `etcd-client`): compare-and-swap is an
//! etcd transaction on the key's `mod_revision` (or its `create_revision`
//! being 0 for "absent"), leases and watches are etcd's own. etcd does the
//! consensus; Rill never grows its own.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, Txn, TxnOp,
    WatchOptions,
};
use tokio::sync::mpsc;

use crate::store::{
    Entry, Expect, Guard, LeaseId, Listing, MetadataStore, Revision, StoreError, Watch, WatchEvent,
    WATCH_QUEUE_EVENTS,
};

/// How long connecting to etcd may take before the store says it is
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one etcd request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an HTTP/2 ping goes to etcd, busy or idle, and how long its
/// answer may take: a connection that went silent without being closed (a
/// partition that dropped it on the way, a middlebox that forgot it) is
/// given up and a new one made. Without it every request times out on the
/// dead connection until the kernel's retransmissions give up (~15 min),
/// and an SPU whose session lapsed cannot register again meanwhile.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(2);
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(3);

/// A connection to an etcd cluster. Cheap to clone.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    endpoints: Vec<String>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

fn unavailable(e: etcd_client::Error) -> StoreError {
    // gRPC transport errors print their whole debug chain; the common
    // causes are said plainly.
    let text = e.to_string();
    let plain = if text.contains("Connection refused") || text.contains("ConnectionRefused") {
        "connection refused (is etcd running there?)".to_owned()
    } else if text.contains("tcp connect error") {
        "cannot connect".to_owned()
    } else {
        text
    };
    StoreError::Unavailable(format!("etcd: {plain}"))
}

/// An error reaching etcd at `endpoints`, naming them.
fn at(endpoints: &[String], e: etcd_client::Error) -> StoreError {
    match unavailable(e) {
        StoreError::Unavailable(m) => StoreError::Unavailable(format!(
            "cannot reach etcd at {}: {}",
            endpoints.join(","),
            m.trim_start_matches("etcd: ")
        )),
        other => other,
    }
}

/// An error about a lease: etcd says "requested lease not found" for one
/// that expired or was revoked.
fn lease_error(e: etcd_client::Error, lease: LeaseId) -> StoreError {
    if e.to_string().contains("lease not found") {
        StoreError::LeaseNotFound(lease)
    } else {
        unavailable(e)
    }
}

fn entry(kv: &KeyValue) -> Result<Entry, StoreError> {
    Ok(Entry {
        key: kv
            .key_str()
            .map_err(|e| StoreError::Corrupt(format!("a key is not UTF-8: {e}")))?
            .to_owned(),
        value: kv.value().to_vec(),
        mod_revision: kv.mod_revision(),
        lease: (kv.lease() != 0).then_some(kv.lease()),
    })
}

fn compare(key: &str, expect: Expect) -> Option<Compare> {
    match expect {
        Expect::Any => None,
        Expect::Absent => Some(Compare::create_revision(key, CompareOp::Equal, 0)),
        Expect::ModRevision(r) => Some(Compare::mod_revision(key, CompareOp::Equal, r)),
    }
}

/// The transaction's conditions: the key's own and the guard's.
fn conditions(key: &str, expect: Expect, guard: Option<Guard<'_>>) -> Vec<Compare> {
    compare(key, expect)
        .into_iter()
        .chain(guard.and_then(|g| compare(g.key, Expect::ModRevision(g.mod_revision))))
        .collect()
}

impl EtcdStore {
    /// Connects to `endpoints` (`http://127.0.0.1:2379`); a clear error
    /// when none answers within [`CONNECT_TIMEOUT`].
    pub async fn connect(endpoints: &[String]) -> Result<Self, StoreError> {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT)
            .with_keep_alive_while_idle(true);
        let mut client =
            tokio::time::timeout(CONNECT_TIMEOUT, Client::connect(endpoints, Some(options)))
                .await
                .map_err(|_| {
                    StoreError::Unavailable(format!("etcd at {endpoints:?} does not answer"))
                })?
                .map_err(|e| at(endpoints, e))?;
        // Connecting is lazy: ask something so an absent etcd is seen now.
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            client.get("/", Some(GetOptions::new().with_count_only())),
        )
        .await
        .map_err(|_| StoreError::Unavailable(format!("etcd at {endpoints:?} does not answer")))?
        .map_err(|e| at(endpoints, e))?;
        Ok(Self {
            client,
            endpoints: endpoints.to_vec(),
        })
    }

    /// The key's `mod_revision` now (for a conflict's report).
    async fn actual(&self, key: &str) -> Result<Option<Revision>, StoreError> {
        Ok(self.get(key).await?.map(|e| e.mod_revision))
    }

    /// Which condition of a failed transaction failed: the guard's first.
    async fn conflict(&self, key: &str, expect: Expect, guard: Option<Guard<'_>>) -> StoreError {
        if let Some(g) = guard {
            match self.actual(g.key).await {
                Ok(actual) if actual != Some(g.mod_revision) => {
                    return StoreError::Conflict {
                        key: g.key.to_owned(),
                        expected: Expect::ModRevision(g.mod_revision),
                        actual,
                    }
                }
                Err(e) => return e,
                Ok(_) => {}
            }
        }
        match self.actual(key).await {
            Ok(actual) => StoreError::Conflict {
                key: key.to_owned(),
                expected: expect,
                actual,
            },
            Err(e) => e,
        }
    }
}

impl MetadataStore for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let resp = self
            .client
            .clone()
            .get(key, None)
            .await
            .map_err(unavailable)?;
        resp.kvs().first().map(entry).transpose()
    }

    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        let resp = self
            .client
            .clone()
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await
            .map_err(unavailable)?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let mut entries = resp
            .kvs()
            .iter()
            .map(entry)
            .collect::<Result<Vec<_>, _>>()?;
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Listing { entries, revision })
    }

    async fn put_guarded(
        &self,
        key: &str,
        value: Vec<u8>,
        expect: Expect,
        lease: Option<LeaseId>,
        guard: Option<Guard<'_>>,
    ) -> Result<Revision, StoreError> {
        let options = lease.map(|l| PutOptions::new().with_lease(l));
        let put = TxnOp::put(key, value, options);
        let txn = Txn::new()
            .when(conditions(key, expect, guard))
            .and_then([put]);
        let resp = self
            .client
            .clone()
            .txn(txn)
            .await
            .map_err(|e| lease_error(e, lease.unwrap_or_default()))?;
        if !resp.succeeded() {
            return Err(self.conflict(key, expect, guard).await);
        }
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    async fn delete_guarded(
        &self,
        key: &str,
        expect: Expect,
        guard: Option<Guard<'_>>,
    ) -> Result<Revision, StoreError> {
        let delete = TxnOp::delete(key, None);
        let txn = Txn::new()
            .when(conditions(key, expect, guard))
            .and_then([delete]);
        let resp = self.client.clone().txn(txn).await.map_err(unavailable)?;
        if !resp.succeeded() {
            return Err(self.conflict(key, expect, guard).await);
        }
        // A delete of nothing does not move etcd's revision; the header
        // gives the store's revision either way.
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        // etcd counts TTLs in whole seconds.
        let seconds = ttl.as_secs_f64().ceil().max(1.0) as i64;
        let resp = self
            .client
            .clone()
            .lease_grant(seconds, None)
            .await
            .map_err(unavailable)?;
        Ok(resp.id())
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        let (mut keeper, mut stream) = self
            .client
            .clone()
            .lease_keep_alive(lease)
            .await
            .map_err(|e| lease_error(e, lease))?;
        keeper
            .keep_alive()
            .await
            .map_err(|e| lease_error(e, lease))?;
        match stream.message().await.map_err(|e| lease_error(e, lease))? {
            Some(resp) if resp.ttl() > 0 => Ok(()),
            _ => Err(StoreError::LeaseNotFound(lease)),
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.client
            .clone()
            .lease_revoke(lease)
            .await
            .map(|_| ())
            .map_err(|e| lease_error(e, lease))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StoreError> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(after + 1);
        let mut stream = self
            .client
            .clone()
            .watch(prefix, Some(options))
            .await
            .map_err(unavailable)?;
        let (tx, rx) = mpsc::channel(WATCH_QUEUE_EVENTS);
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    m = stream.message() => m,
                    () = tx.closed() => return, // the reader went away
                };
                let resp = match message {
                    Ok(Some(resp)) => resp,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(unavailable(e))).await;
                        return;
                    }
                };
                if resp.canceled() {
                    let why = if resp.compact_revision() > 0 {
                        format!("etcd compacted past revision {after}")
                    } else {
                        format!("etcd cancelled the watch: {}", resp.cancel_reason())
                    };
                    let _ = tx.send(Err(StoreError::WatchLost(why))).await;
                    return;
                }
                for event in resp.events() {
                    let Some(kv) = event.kv() else { continue };
                    let out = match (event.event_type(), entry(kv)) {
                        (EventType::Put, Ok(e)) => Ok(WatchEvent::Put(e)),
                        (EventType::Delete, Ok(e)) => Ok(WatchEvent::Delete {
                            key: e.key,
                            mod_revision: e.mod_revision,
                        }),
                        (_, Err(e)) => Err(e),
                    };
                    // A reader that leaves the queue full loses the watch,
                    // as with the other backends.
                    if tx.capacity() <= 1 {
                        let _ = tx
                            .send(Err(StoreError::WatchLost(format!(
                                "more than {WATCH_QUEUE_EVENTS} changes unread"
                            ))))
                            .await;
                        return;
                    }
                    if tx.send(out).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Watch { rx })
    }
}

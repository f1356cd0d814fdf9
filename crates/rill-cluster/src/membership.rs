//! SPU membership and the controller election, over any [`MetadataStore`].
//!
//! An SPU joins by writing its registration under a lease of
//! `session_timeout` that a background task renews every third of it; if
//! the SPU dies (or loses the store for longer than the timeout) the lease
//! lapses and the registration vanishes, which every watcher sees. The
//! controller is whoever wrote `/rill/controller` (absent-only, under its
//! session lease): one at a time by construction, and when it dies its key
//! lapses with its session and the next campaigner takes it.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::keys;
use crate::store::{Expect, LeaseId, MetadataStore, Revision, StoreError, WatchEvent};

/// Kafka's and Rill's default: an SPU silent this long is gone.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_millis(6000);
/// Renewals per session timeout (a renewal may be lost or late twice).
const RENEWALS_PER_TIMEOUT: u32 = 3;

/// Why joining or campaigning failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// A live SPU is registered with this id already.
    #[error("SPU id {0} is already registered by a live SPU")]
    DuplicateId(u32),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An SPU's membership: its registration, kept alive until
/// [`Session::leave`] or drop (after a drop the registration lapses at the
/// session timeout).
#[derive(Debug)]
pub struct Session {
    id: u32,
    lease: LeaseId,
    renewals: JoinHandle<()>,
    lost: watch::Receiver<bool>,
}

impl Session {
    /// Registers SPU `id` at `advertised` (`host:port`).
    pub async fn join<S: MetadataStore + Clone>(
        store: &S,
        id: u32,
        advertised: &str,
        timeout: Duration,
    ) -> Result<Self, MembershipError> {
        let lease = store.grant_lease(timeout).await?;
        let key = keys::spu(id);
        match store
            .put(
                &key,
                advertised.as_bytes().to_vec(),
                Expect::Absent,
                Some(lease),
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => {
                let _ = store.revoke_lease(lease).await;
                return Err(MembershipError::DuplicateId(id));
            }
            Err(e) => return Err(e.into()),
        }
        let (lost_tx, lost) = watch::channel(false);
        let renewals = tokio::spawn(renew(store.clone(), lease, timeout, lost_tx));
        tracing::info!(spu = id, advertised, ?timeout, "joined the cluster");
        Ok(Self {
            id,
            lease,
            renewals,
            lost,
        })
    }

    /// The SPU's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The session's lease: keys written under it vanish with the SPU.
    pub fn lease(&self) -> LeaseId {
        self.lease
    }

    /// Whether the session lapsed (the store no longer knows its lease).
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Waits until the session lapses. (Takes `&self`, so it can be awaited
    /// alongside work that holds the session, such as a campaign.)
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        let _ = lost.wait_for(|lost| *lost).await;
    }

    /// Leaves at once: the registration (and the controller key, if held)
    /// is deleted now rather than at the timeout.
    pub async fn leave<S: MetadataStore>(self, store: &S) -> Result<(), StoreError> {
        self.renewals.abort();
        match store.revoke_lease(self.lease).await {
            Ok(()) | Err(StoreError::LeaseNotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.renewals.abort();
    }
}

async fn renew<S: MetadataStore>(
    store: S,
    lease: LeaseId,
    timeout: Duration,
    lost: watch::Sender<bool>,
) {
    let every = timeout / RENEWALS_PER_TIMEOUT;
    loop {
        tokio::time::sleep(every).await;
        match store.keep_alive(lease).await {
            Ok(()) => {}
            Err(StoreError::LeaseNotFound(_)) => {
                tracing::warn!(lease, "session lost: the store no longer knows the lease");
                let _ = lost.send(true);
                return;
            }
            // The store is away: keep trying; the lease decides.
            Err(e) => tracing::warn!(error = %e, "session renewal failed"),
        }
    }
}

/// The live SPUs: id and advertised address, by id.
pub async fn live_spus<S: MetadataStore>(store: &S) -> Result<Vec<(u32, String)>, StoreError> {
    let listing = store.list(keys::SPUS).await?;
    Ok(listing
        .entries
        .into_iter()
        .filter_map(|e| Some((keys::spu_id(&e.key)?, String::from_utf8(e.value).ok()?)))
        .collect())
}

/// The controller's SPU id, if one is elected.
pub async fn controller<S: MetadataStore>(store: &S) -> Result<Option<u32>, StoreError> {
    Ok(store
        .get(keys::CONTROLLER)
        .await?
        .and_then(|e| String::from_utf8(e.value).ok()?.parse().ok()))
}

/// Proof of being the controller: the revision the key was written at.
/// (Controller writes can be guarded on it: a deposed controller's key has
/// another revision.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    pub revision: Revision,
}

/// Waits until this session becomes the controller.
pub async fn campaign<S: MetadataStore>(
    store: &S,
    session: &Session,
) -> Result<Leadership, StoreError> {
    let me = session.id().to_string().into_bytes();
    loop {
        match store
            .put(
                keys::CONTROLLER,
                me.clone(),
                Expect::Absent,
                Some(session.lease()),
            )
            .await
        {
            Ok(revision) => {
                tracing::info!(spu = session.id(), "elected controller");
                return Ok(Leadership { revision });
            }
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        // Someone holds it: wait for its key to go, then try again.
        let Some(held) = store.get(keys::CONTROLLER).await? else {
            continue;
        };
        let mut watch = store.watch(keys::CONTROLLER, held.mod_revision).await?;
        loop {
            match watch.next().await {
                Some(Ok(WatchEvent::Delete { .. })) | None | Some(Err(_)) => break,
                Some(Ok(WatchEvent::Put(_))) => {}
            }
        }
    }
}

//! What an SPU runs to be part of a cluster: its session, its turn as
//! controller when elected, and a live view of the cluster's metadata that
//! the SPU's request handlers read (who is alive, which topics exist, who
//! leads each partition).
//!
//! The view is rebuilt from listings whenever something under `/rill/`
//! changes (a watch wakes the loop) and published through a
//! `tokio::sync::watch` channel: readers take the latest `Arc<ClusterView>`
//! without locks or waiting.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::controller::{self, ControllerError};
use crate::keys;
use crate::membership::{campaign, MembershipError, Session};
use crate::model::{PartitionState, TopicSpec};
use crate::store::{Expect, LeaseId, MetadataStore, Revision, StoreError};

/// How long the view loop waits before listing again after a failure
/// (the store away).
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// How long the view loop waits for a change before listing anyway.
const IDLE_RELIST: Duration = Duration::from_secs(5);

/// The cluster as one SPU last saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Live SPUs and their advertised addresses.
    pub spus: BTreeMap<u32, String>,
    /// Live SPUs stopping gracefully (handing their leaderships over).
    pub stopping: BTreeSet<u32>,
    pub topics: BTreeMap<String, TopicSpec>,
    pub partitions: BTreeMap<(String, u32), PartitionState>,
    /// The revision of each partition state's last write.
    pub state_revisions: BTreeMap<(String, u32), Revision>,
    /// The revision at which each live SPU's current session registered.
    pub joined: BTreeMap<u32, Revision>,
    /// The controller's SPU id.
    pub controller: Option<u32>,
    /// The store's revision this view reflects.
    pub revision: Revision,
}

impl ClusterView {
    /// The partitions of `topic`, by number.
    pub fn topic_partitions(&self, topic: &str) -> impl Iterator<Item = (u32, &PartitionState)> {
        self.partitions
            .range((topic.to_owned(), 0)..=(topic.to_owned(), u32::MAX))
            .map(|((_, p), s)| (*p, s))
    }

    /// Whether `partition`'s state names `spu` as leader from before its
    /// current session: the SPU restarted since, and the controller will
    /// hand the partition to a member that stayed up or give it the next
    /// leader epoch (`controller::bounced`); until then it must not lead
    /// at the old one.
    pub fn leader_from_before_session(&self, topic: &str, partition: u32, spu: u32) -> bool {
        let at = (topic.to_owned(), partition);
        self.partitions.get(&at).and_then(PartitionState::leader) == Some(spu)
            && matches!(
                (self.state_revisions.get(&at), self.joined.get(&spu)),
                (Some(written), Some(joined)) if written < joined
            )
    }

    /// The leader of one partition, if it has one.
    pub fn leader(&self, topic: &str, partition: u32) -> Option<u32> {
        self.partitions
            .get(&(topic.to_owned(), partition))
            .and_then(PartitionState::leader)
    }
}

/// Lists everything a view holds, in one listing of `/rill/`.
pub async fn load<S: MetadataStore>(store: &S) -> Result<ClusterView, StoreError> {
    let listing = store.list(keys::ROOT).await?;
    let mut view = ClusterView {
        revision: listing.revision,
        ..ClusterView::default()
    };
    for e in listing.entries {
        if let Some(id) = keys::spu_id(&e.key) {
            view.spus
                .insert(id, String::from_utf8_lossy(&e.value).into_owned());
            view.joined.insert(id, e.mod_revision);
        } else if let Some(id) = keys::stopping_id(&e.key) {
            view.stopping.insert(id);
        } else if e.key == keys::CONTROLLER {
            view.controller = std::str::from_utf8(&e.value)
                .ok()
                .and_then(|v| v.parse().ok());
        } else if let Some(name) = e.key.strip_prefix(keys::TOPICS) {
            view.topics
                .insert(name.to_owned(), TopicSpec::decode(&e.value)?);
        } else if let Some(at) = keys::parse_partition(&e.key) {
            view.state_revisions.insert(at.clone(), e.mod_revision);
            view.partitions
                .insert(at, PartitionState::decode(&e.value)?);
        }
    }
    Ok(view)
}

/// Marks SPU `id` as stopping gracefully, under its session's `lease` (the
/// mark goes when it leaves or its session lapses): the controller hands
/// the leadership of its partitions to other in-sync replicas (controlled
/// shutdown).
pub async fn mark_stopping<S: MetadataStore>(
    store: &S,
    id: u32,
    lease: LeaseId,
) -> Result<(), StoreError> {
    store
        .put(&keys::stopping(id), Vec::new(), Expect::Any, Some(lease))
        .await
        .map(|_| ())
}

/// An SPU's part in the cluster; dropping it stops its tasks (its
/// registration then lapses at the session timeout).
#[derive(Debug)]
pub struct ClusterMember {
    id: u32,
    view: watch::Receiver<Arc<ClusterView>>,
    /// The current session's lease (a new one after a re-join).
    lease: watch::Receiver<LeaseId>,
    tasks: Vec<JoinHandle<()>>,
}

impl ClusterMember {
    /// Joins as SPU `id` at `advertised`, takes its turn as controller, and
    /// keeps a view. Fails at once if the id is taken or the store is away.
    pub async fn start<S: MetadataStore + Clone>(
        store: S,
        id: u32,
        advertised: &str,
        session_timeout: Duration,
    ) -> Result<Self, MembershipError> {
        let session = Session::join(&store, id, advertised, session_timeout).await?;
        let first = load(&store).await?;
        let (tx, view) = watch::channel(Arc::new(first));
        let (lease_tx, lease) = watch::channel(session.lease());
        let duty = tokio::spawn(controller_duty(
            store.clone(),
            session,
            lease_tx,
            id,
            advertised.to_owned(),
            session_timeout,
        ));
        let watcher = tokio::spawn(keep_view(store, tx));
        Ok(Self {
            id,
            view,
            lease,
            tasks: vec![duty, watcher],
        })
    }

    /// Leaves the cluster now: stops its tasks and revokes the session, so
    /// the registration (and the controller key, if this SPU holds it) is
    /// gone at once rather than at the session timeout.
    pub async fn leave<S: MetadataStore>(self, store: &S) -> Result<(), StoreError> {
        for t in &self.tasks {
            t.abort();
        }
        let lease = *self.lease.borrow();
        match store.revoke_lease(lease).await {
            Ok(()) | Err(StoreError::LeaseNotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The current session's lease: keys written under it go when this
    /// SPU leaves or its session lapses.
    pub fn lease(&self) -> LeaseId {
        *self.lease.borrow()
    }

    /// This SPU's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The latest view.
    pub fn view(&self) -> Arc<ClusterView> {
        self.view.borrow().clone()
    }

    /// A receiver that wakes at every new view.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterView>> {
        self.view.clone()
    }
}

impl Drop for ClusterMember {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Campaigns, acts as controller while elected, campaigns again when
/// deposed; re-joins with a new session if the old one lapsed.
async fn controller_duty<S: MetadataStore + Clone>(
    store: S,
    mut session: Session,
    lease: watch::Sender<LeaseId>,
    id: u32,
    advertised: String,
    timeout: Duration,
) {
    loop {
        if session.is_lost() {
            match Session::join(&store, id, &advertised, timeout).await {
                Ok(s) => {
                    lease.send_replace(s.lease());
                    session = s;
                }
                Err(e) => {
                    tracing::warn!(spu = id, error = %e, "re-joining the cluster failed");
                    tokio::time::sleep(RETRY_DELAY).await;
                    continue;
                }
            }
        }
        // A campaign waits (unbounded) for the controller key to go: a
        // session that lapses meanwhile (the SPU lost the store for longer
        // than the session timeout) must end it, or this SPU would never
        // register again and stay out of the cluster for good.
        let duty = async {
            match campaign(&store, &session).await {
                Ok(leadership) => controller::run(&store, &session, leadership).await,
                Err(e) => Err(ControllerError::Store(e)),
            }
        };
        let result = tokio::select! {
            result = duty => result,
            () = session.lost() => {
                tracing::warn!(spu = id, "session lapsed: re-joining the cluster");
                continue;
            }
        };
        if let Err(e) = result {
            tracing::info!(spu = id, error = %e, "controller duty interrupted");
            tokio::time::sleep(RETRY_DELAY).await;
        }
    }
}

/// Rebuilds and publishes the view at every change under `/rill/`.
async fn keep_view<S: MetadataStore>(store: S, tx: watch::Sender<Arc<ClusterView>>) {
    loop {
        let view = match load(&store).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "listing cluster metadata failed");
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
        };
        let revision = view.revision;
        if **tx.borrow() != view {
            tx.send_replace(Arc::new(view));
        }
        match store.watch(keys::ROOT, revision).await {
            Ok(mut w) => {
                let _ = tokio::time::timeout(IDLE_RELIST, w.next()).await;
            }
            Err(_) => tokio::time::sleep(RETRY_DELAY).await,
        }
        if tx.is_closed() {
            return;
        }
    }
}

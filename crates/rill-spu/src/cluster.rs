//! The SPU as a member of a cluster (design.md section 8): its session and
//! turn as controller ([`ClusterMember`]), the topic writes it makes for
//! CreateTopics and DeleteTopics, producer-id blocks, and the loop that
//! opens and drops partition logs as the cluster's metadata assigns them.
//!
//! What this SPU holds follows the store: every partition whose replicas
//! name this SPU is opened, led when the store names this SPU its leader
//! (at the store's leader epoch) and followed otherwise. A topic deleted
//! from the store while this SPU held it has its files deleted; files of
//! topics the store does not know when the SPU starts are left alone (an
//! emptied or replaced store must not wipe data).

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use rill_cluster::{
    keys, member, producer_ids, AnyStore, ClusterMember, ClusterView, EtcdStore, Expect,
    MembershipError, MetadataStore, StoreError,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ClusterSettings, ClusterStore};
use crate::registry::{check_partition_growth, Registry, TopicError};
use crate::replication::roles::{write_isr_changes, Roles};
use crate::topic::{TopicConfig, TopicSpec, TOPIC_CONFIG_KEYS};
use crate::SpuError;

/// Longest CreateTopics and DeleteTopics wait for the controller to place
/// or remove the partitions, whatever the request's timeout says.
const MAX_ADMIN_WAIT: Duration = Duration::from_secs(10);
/// Reads and CAS writes tried for one update of a topic's entry before
/// giving up (each retry follows another writer's change).
const TOPIC_UPDATE_ATTEMPTS: usize = 10;

/// Longest a graceful stop waits for the controller to hand the
/// leadership of this SPU's partitions to other in-sync replicas
/// (controlled shutdown) before it leaves anyway.
pub(crate) const CONTROLLED_SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Beyond the session timeout, how long a starting SPU waits for a
/// registration of its id to lapse.
const DUPLICATE_ID_GRACE: Duration = Duration::from_secs(2);
/// How often it looks again meanwhile.
const DUPLICATE_ID_RETRY: Duration = Duration::from_millis(250);

/// This SPU's link to the cluster.
#[derive(Debug)]
pub(crate) struct ClusterLink {
    id: u32,
    store: AnyStore,
    member: Mutex<Option<ClusterMember>>,
    view: watch::Receiver<Arc<ClusterView>>,
    /// Producer ids taken from the store and not yet given out.
    producer_ids: tokio::sync::Mutex<Range<i64>>,
    follow: Mutex<Option<JoinHandle<()>>>,
    /// Leading, following: what this SPU does for each partition it holds.
    roles: Arc<Roles>,
    /// Writes the ISR changes of the partitions this SPU leads.
    isr_writer: Mutex<Option<JoinHandle<()>>>,
}

impl ClusterLink {
    /// Connects to the store and joins as SPU `id` at `advertised`. A clear
    /// error when the store does not answer or the id is taken.
    pub async fn join(
        settings: &ClusterSettings,
        id: i32,
        advertised: &(String, u16),
    ) -> Result<Self, SpuError> {
        let id = u32::try_from(id).map_err(|_| {
            SpuError::Store(StoreError::Unavailable(format!(
                "an SPU id must be 0 or more, got {id}"
            )))
        })?;
        let store = match &settings.store {
            ClusterStore::Etcd(endpoints) => {
                AnyStore::Etcd(Box::new(EtcdStore::connect(endpoints).await?))
            }
            ClusterStore::Memory(m) => AnyStore::Memory(m.clone()),
        };
        let address = format!("{}:{}", advertised.0, advertised.1);
        // An SPU restarted right after a crash finds its own registration
        // still there until the old session lapses: wait for that (bounded)
        // rather than refuse. Another live SPU with this id is refused after
        // the same wait.
        let give_up = tokio::time::Instant::now() + settings.session_timeout + DUPLICATE_ID_GRACE;
        let member = loop {
            match ClusterMember::start(store.clone(), id, &address, settings.session_timeout).await
            {
                Err(MembershipError::DuplicateId(_)) if tokio::time::Instant::now() < give_up => {
                    tracing::info!(
                        spu = id,
                        "SPU id registered: waiting for the previous session to lapse"
                    );
                    tokio::time::sleep(DUPLICATE_ID_RETRY).await;
                }
                other => break other?,
            }
        };
        let view = member.subscribe();
        Ok(Self {
            id,
            store,
            member: Mutex::new(Some(member)),
            view,
            producer_ids: tokio::sync::Mutex::new(0..0),
            follow: Mutex::new(None),
            roles: Arc::new(Roles::new(
                id,
                settings.replica_lag_time_max,
                tokio::runtime::Handle::current(),
            )),
            isr_writer: Mutex::new(None),
        })
    }

    /// A receiver of the cluster's metadata as it changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterView>> {
        self.view.clone()
    }

    pub fn view(&self) -> Arc<ClusterView> {
        self.view.borrow().clone()
    }

    /// Opens what the store assigns to this SPU now, then keeps following
    /// it in a task.
    pub async fn follow(self: &Arc<Self>, registry: Arc<Registry>) {
        let mut seen = BTreeSet::new();
        let view = self.view();
        let id = self.id;
        let (first, roles) = (registry.clone(), self.roles.clone());
        seen = tokio::task::spawn_blocking(move || {
            reconcile(&first, &roles, id, &view, &mut seen);
            seen
        })
        .await
        .unwrap_or_default();
        let mut rx = self.subscribe();
        let roles = self.roles.clone();
        let isr_registry = registry.clone();
        let task = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let view = rx.borrow_and_update().clone();
                let (registry, roles) = (registry.clone(), roles.clone());
                let mut held = std::mem::take(&mut seen);
                held = tokio::task::spawn_blocking(move || {
                    reconcile(&registry, &roles, id, &view, &mut held);
                    held
                })
                .await
                .unwrap_or_default();
                seen = held;
            }
        });
        *self.follow.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        let isr = tokio::spawn(write_isr_changes(id, isr_registry, self.store.clone()));
        *self.isr_writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(isr);
    }

    /// Controlled shutdown: marks this SPU as stopping in the store, so the
    /// controller moves the leadership of every partition it leads to
    /// another in-sync replica at a new leader epoch, and waits until the
    /// store shows it leads nothing that another live in-sync replica
    /// could (at most [`CONTROLLED_SHUTDOWN_WAIT`]). Meanwhile the SPU
    /// keeps serving: requests for partitions handed over are answered
    /// `NOT_LEADER_OR_FOLLOWER` (retriable; clients move to the new leader).
    pub async fn hand_over(&self) {
        let lease = match self
            .member
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some(m) => m.lease(),
            None => return,
        };
        if let Err(e) = member::mark_stopping(&self.store, self.id, lease).await {
            tracing::warn!(error = %e, "cannot mark this SPU as stopping; leaving without handing leadership over");
            return;
        }
        let me = self.id;
        let handed = |v: &ClusterView| {
            v.partitions.values().all(|s| {
                s.leader() != Some(me)
                    || !s
                        .isr
                        .iter()
                        .any(|r| *r != me && v.spus.contains_key(r) && !v.stopping.contains(r))
            })
        };
        let mut rx = self.subscribe();
        let started = tokio::time::Instant::now();
        // The view's read guard is let go at once, not held while logging.
        let done = tokio::time::timeout(CONTROLLED_SHUTDOWN_WAIT, rx.wait_for(|v| handed(v)))
            .await
            .is_ok_and(|r| r.is_ok());
        if done {
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "leadership handed over"
            );
        } else {
            tracing::warn!(
                wait = ?CONTROLLED_SHUTDOWN_WAIT,
                "leadership not all handed over in time; leaving anyway"
            );
        }
    }

    /// Leaves the cluster at once (graceful shutdown).
    pub async fn leave(&self) {
        self.stop_tasks();
        let member = self.member.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(member) = member {
            if let Err(e) = member.leave(&self.store).await {
                tracing::warn!(error = %e, "leaving the cluster failed; the session will lapse");
            }
        }
    }

    /// Stops following the store, copying from leaders and writing ISR
    /// changes (on leaving, and when the SPU is dropped after a crash).
    fn stop_tasks(&self) {
        for slot in [&self.follow, &self.isr_writer] {
            if let Some(task) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                task.abort();
            }
        }
        self.roles.stop_all();
    }

    /// Writes a new topic to the store; the controller places its
    /// partitions. Waits (bounded) until every partition has a leader.
    pub async fn create_topic(
        &self,
        spec: &TopicSpec,
        wait: Duration,
    ) -> Result<uuid::Uuid, TopicError> {
        self.create_topic_assigned(spec, Vec::new(), wait).await
    }

    /// [`Self::create_topic`] with the replicas of each partition chosen
    /// by the caller (checked already; empty: the controller places them).
    pub async fn create_topic_assigned(
        &self,
        spec: &TopicSpec,
        assignment: Vec<Vec<u32>>,
        wait: Duration,
    ) -> Result<uuid::Uuid, TopicError> {
        let id = crate::registry::topic_id(&spec.name);
        let defaults = TopicConfig::default().pairs();
        let stored = rill_cluster::TopicSpec {
            id: id.as_u128(),
            partitions: u32::try_from(spec.partitions).unwrap_or(0),
            replication: u16::try_from(spec.replication_factor).unwrap_or(0),
            configs: spec
                .config
                .pairs()
                .into_iter()
                .filter(|pair| !defaults.contains(pair))
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            assignment,
        };
        match self
            .store
            .put(
                &keys::topic(&spec.name),
                stored.encode(),
                Expect::Absent,
                None,
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => {
                return Err(TopicError::new(
                    ResponseError::TopicAlreadyExists,
                    format!("topic {:?} already exists", spec.name),
                ))
            }
            Err(e) => return Err(unavailable(e)),
        }
        tracing::info!(topic = %spec.name, partitions = spec.partitions, "topic created in the cluster");
        let name = spec.name.clone();
        let count = stored.partitions;
        self.wait_for(wait, |v| {
            v.topic_partitions(&name)
                .filter(|(_, s)| s.leader().is_some())
                .count()
                == count as usize
        })
        .await;
        Ok(id)
    }

    /// Deletes a topic from the store; the controller deletes its
    /// partitions, and each SPU its files. Waits (bounded) for the
    /// partitions to go.
    pub async fn delete_topic(&self, name: &str, wait: Duration) -> Result<uuid::Uuid, TopicError> {
        let key = keys::topic(name);
        let missing = || {
            TopicError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("topic {name:?} does not exist"),
            )
        };
        let entry = self
            .store
            .get(&key)
            .await
            .map_err(unavailable)?
            .ok_or_else(missing)?;
        let id = rill_cluster::TopicSpec::decode(&entry.value)
            .map(|s| uuid::Uuid::from_u128(s.id))
            .unwrap_or_default();
        match self
            .store
            .delete(&key, Expect::ModRevision(entry.mod_revision))
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => return Err(missing()),
            Err(e) => return Err(unavailable(e)),
        }
        tracing::info!(topic = %name, "topic deleted from the cluster");
        let name = name.to_owned();
        self.wait_for(wait, |v| v.topic_partitions(&name).next().is_none())
            .await;
        Ok(id)
    }

    /// Grows a topic to `count` partitions: a CAS update of its entry in
    /// the store (the controller places the partitions that have no state
    /// yet). Waits (bounded) until every partition has a leader. With
    /// `validate_only` only the checks run, against the store's entry.
    pub async fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
        wait: Duration,
    ) -> Result<(), TopicError> {
        let stored = self
            .update_topic(
                name,
                |stored| {
                    let current = i32::try_from(stored.partitions).unwrap_or(i32::MAX);
                    check_partition_growth(name, current, count)?;
                    let mut next = stored.clone();
                    next.partitions = u32::try_from(count).unwrap_or(0);
                    Ok(next)
                },
                validate_only,
            )
            .await?;
        if validate_only {
            return Ok(());
        }
        tracing::info!(topic = %name, partitions = count, "partitions added in the cluster");
        let total = stored.partitions as usize;
        let name = name.to_owned();
        self.wait_for(wait, |v| {
            v.topic_partitions(&name)
                .filter(|(_, s)| s.leader().is_some())
                .count()
                >= total
        })
        .await;
        Ok(())
    }

    /// Changes a topic's config: `change` makes the new config from the
    /// stored one, written with a CAS update of the topic's entry (every
    /// SPU holding the topic then reconfigures its logs). Waits (bounded)
    /// until this SPU's view has it, so a DescribeConfigs right after shows
    /// it. Returns the new config.
    pub async fn alter_topic_config(
        &self,
        name: &str,
        change: impl Fn(&TopicConfig) -> Result<TopicConfig, TopicError>,
        validate_only: bool,
    ) -> Result<TopicConfig, TopicError> {
        let defaults = TopicConfig::default().pairs();
        let stored = self
            .update_topic(
                name,
                |stored| {
                    let config = change(&local_spec(name, stored).config)?;
                    let mut next = stored.clone();
                    // Keys this SPU does not know are kept as they were.
                    next.configs
                        .retain(|(k, _)| !TOPIC_CONFIG_KEYS.contains(&k.as_str()));
                    next.configs.extend(
                        config
                            .pairs()
                            .into_iter()
                            .filter(|pair| !defaults.contains(pair))
                            .map(|(k, v)| (k.to_owned(), v)),
                    );
                    next.configs.sort();
                    Ok(next)
                },
                validate_only,
            )
            .await?;
        let config = local_spec(name, &stored).config;
        if !validate_only {
            tracing::info!(topic = %name, "topic config changed in the cluster");
            let name = name.to_owned();
            self.wait_for(MAX_ADMIN_WAIT, |v| v.topics.get(&name) == Some(&stored))
                .await;
        }
        Ok(config)
    }

    /// Reads a topic's entry, makes the next one with `next`, and writes it
    /// if nobody wrote the entry in between (else reads again). With
    /// `validate_only` nothing is written. Returns the entry written.
    async fn update_topic(
        &self,
        name: &str,
        next: impl Fn(&rill_cluster::TopicSpec) -> Result<rill_cluster::TopicSpec, TopicError>,
        validate_only: bool,
    ) -> Result<rill_cluster::TopicSpec, TopicError> {
        let key = keys::topic(name);
        for _ in 0..TOPIC_UPDATE_ATTEMPTS {
            let entry = self
                .store
                .get(&key)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| {
                    TopicError::new(
                        ResponseError::UnknownTopicOrPartition,
                        format!("topic {name:?} does not exist"),
                    )
                })?;
            let stored = rill_cluster::TopicSpec::decode(&entry.value).map_err(unavailable)?;
            let updated = next(&stored)?;
            if validate_only || updated == stored {
                return Ok(updated);
            }
            match self
                .store
                .put(
                    &key,
                    updated.encode(),
                    Expect::ModRevision(entry.mod_revision),
                    None,
                )
                .await
            {
                Ok(_) => return Ok(updated),
                // Changed (or deleted) since it was read: read it again.
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(TopicError::new(
            ResponseError::RequestTimedOut,
            format!("topic {name:?} kept changing in the store while being updated; try again"),
        ))
    }

    /// A topic as the store has it now, in the SPU's form.
    pub fn topic_spec(&self, name: &str) -> Option<TopicSpec> {
        self.view().topics.get(name).map(|s| local_spec(name, s))
    }

    /// Waits until the view satisfies `done`, for at most `wait` (capped).
    async fn wait_for(&self, wait: Duration, done: impl Fn(&ClusterView) -> bool) {
        let mut rx = self.subscribe();
        let _ = tokio::time::timeout(wait.min(MAX_ADMIN_WAIT), rx.wait_for(|v| done(v))).await;
    }

    /// A producer id unique in the cluster.
    pub async fn new_producer_id(&self) -> Result<i64, StoreError> {
        let mut block = self.producer_ids.lock().await;
        if block.is_empty() {
            *block = producer_ids::allocate_block(&self.store).await?;
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
    }
}

impl Drop for ClusterLink {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

fn unavailable(e: StoreError) -> TopicError {
    // Retriable for clients: the store (and so the controller) is away.
    TopicError::new(
        ResponseError::RequestTimedOut,
        format!("the cluster's metadata store: {e}"),
    )
}

/// The SPU's form of a topic stored in the cluster.
fn local_spec(name: &str, stored: &rill_cluster::TopicSpec) -> TopicSpec {
    let mut config = TopicConfig::default();
    for (k, v) in &stored.configs {
        if let Err(e) = config.set(k, v) {
            tracing::warn!(topic = %name, config = %k, error = %e, "ignoring a stored topic config");
        }
    }
    TopicSpec {
        name: name.to_owned(),
        partitions: i32::try_from(stored.partitions).unwrap_or(i32::MAX),
        replication_factor: i16::try_from(stored.replication).unwrap_or(i16::MAX),
        config,
    }
}

/// Brings what the registry holds in line with `view`: opens this SPU's
/// partitions, sets leadership, and drops topics deleted from the cluster.
/// `seen` is the topics this SPU held from the store; only those are ever
/// deleted.
fn reconcile(
    registry: &Registry,
    roles: &Roles,
    me: u32,
    view: &ClusterView,
    seen: &mut BTreeSet<String>,
) {
    // Held topics whose spec changed (more partitions, another config)
    // first, so partitions opened below start with the new config.
    for (name, stored) in &view.topics {
        registry.respec(&local_spec(name, stored), uuid::Uuid::from_u128(stored.id));
    }
    for ((name, p), state) in &view.partitions {
        if !state.replicas.contains(&me) {
            continue;
        }
        let Some(stored) = view.topics.get(name) else {
            continue;
        };
        let spec = local_spec(name, stored);
        let id = uuid::Uuid::from_u128(stored.id);
        let p = *p as i32;
        match registry.host(&spec, id, p) {
            Ok(partition) => {
                seen.insert(name.clone());
                match state.leader() {
                    // Made leader by an earlier run of this SPU: not at
                    // that epoch (its log may have lost a tail its
                    // followers hold); the controller gives the next one.
                    Some(l) if l == me && view.leader_from_before_session(name, p as u32, me) => {
                        roles.follow(name, p, &partition, None, state.leader_epoch)
                    }
                    Some(l) if l == me => roles.lead(
                        name,
                        p,
                        &partition,
                        state,
                        spec.config.min_insync_replicas,
                        &view.joined,
                    ),
                    Some(l) => {
                        let addr = view.spus.get(&l).cloned();
                        roles.follow(
                            name,
                            p,
                            &partition,
                            addr.map(|a| (l, a)),
                            state.leader_epoch,
                        )
                    }
                    None => roles.follow(name, p, &partition, None, state.leader_epoch),
                }
            }
            Err(e) => {
                tracing::error!(topic = %name, partition = p, error = %e, "cannot open a partition assigned to this SPU")
            }
        }
    }
    // Topics held before and now gone from the store were deleted.
    let gone: Vec<String> = seen
        .iter()
        .filter(|name| {
            !view.topics.contains_key(*name) && view.topic_partitions(name).next().is_none()
        })
        .cloned()
        .collect();
    for name in gone {
        registry.unhost(&name, true);
        seen.remove(&name);
    }
    // Partitions the view no longer gives this SPU are neither led nor
    // followed (a topic re-created under a held name had the old id's
    // partitions replaced by `host`).
    let assigned = |topic: &str, p: i32| {
        u32::try_from(p)
            .ok()
            .and_then(|p| view.partitions.get(&(topic.to_owned(), p)))
            .is_some_and(|s| s.replicas.contains(&me) && s.leader().is_some_and(|l| l != me))
    };
    roles.retain_following(assigned);
    for topic in registry.topics() {
        for (p, partition) in topic.hosted() {
            let led = view
                .partitions
                .get(&(topic.spec.name.clone(), p as u32))
                .is_some_and(|s| s.replicas.contains(&me) && s.leader() == Some(me));
            if !led {
                partition.set_leader_epoch(crate::registry::NOT_LEADER);
                partition.set_leadership(None);
            }
        }
    }
}

//! The topics this SPU hosts and their partition logs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, TryLockError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use rill_cluster::ClusterView;
use rill_storage::{Backend, FileBackend, PartitionLog};
use tokio::sync::watch;

use crate::config::SpuConfig;
use crate::idempotence::ProducerTable;
use crate::meta::MetaStore;
use crate::metrics::fsync::TimedBackend;
use crate::metrics::{Metrics, PartitionCounters};
use crate::producer_ids::ProducerIds;
use crate::replication::leader::{current, LeaderSlot, Leadership};
use crate::topic::{validate_topic_name, TopicConfig, TopicSpec};
use crate::writer::{lock, Queued, SharedLog, SharedProducers, Writer, WriterRole};
use crate::SpuError;

/// Most partitions one topic may have.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// How a read takes a partition's log lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogAccess {
    /// Give up if it is held (on an async thread).
    Try,
    /// Wait for it (on a blocking thread).
    Wait,
}

/// One partition: its log behind a lock held only for the length of a
/// storage call (never across an await), and the writer thread every append
/// goes through.
#[derive(Debug)]
pub(crate) struct Partition {
    log: SharedLog,
    writer: Writer,
    /// Idempotent producers' recent batches (the writer checks appends
    /// against them; a follower records what it copies, so it knows them
    /// if it comes to lead).
    producers: SharedProducers,
    /// Set while this SPU leads the partition in a cluster.
    leader: LeaderSlot,
    /// The leader epoch while this SPU leads the partition, else
    /// [`NOT_LEADER`]. Always 0 on a single SPU; in a cluster, set from the
    /// partition's state in the store.
    leader_epoch: AtomicI32,
    /// Its metric counters (the writer holds a clone).
    counters: PartitionCounters,
}

/// [`Partition`]'s leader epoch when this SPU does not lead it.
pub(crate) const NOT_LEADER: i32 = -1;

/// Segments (the active one and the one before) scanned at open to rebuild
/// idempotent producers' state.
const PRODUCER_STATE_SEGMENTS: usize = 2;

impl Partition {
    /// The log, for reads; appends go through [`Partition::submit`].
    pub fn log(&self) -> MutexGuard<'_, PartitionLog> {
        lock(&self.log)
    }

    /// The log, for reads on an async thread: `None` when the lock is held
    /// (the writer is in an append, maybe an fsync or a segment roll) and
    /// `access` says not to wait.
    pub fn read_log(&self, access: LogAccess) -> Option<MutexGuard<'_, PartitionLog>> {
        match access {
            LogAccess::Wait => Some(self.log()),
            LogAccess::Try => match self.log.try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            },
        }
    }

    /// Queues `records` for this partition's writer thread; await
    /// [`Queued::answer`] for the outcome.
    pub async fn submit(&self, records: Bytes) -> Queued {
        self.writer.submit(records).await
    }

    /// Whether this SPU leads the partition now.
    pub fn is_leader(&self) -> bool {
        self.leader_epoch() != NOT_LEADER
    }

    /// The leader epoch this SPU leads with, or [`NOT_LEADER`].
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Release);
    }

    /// The replication state while this SPU leads in a cluster.
    pub fn leadership(&self) -> Option<Arc<Leadership>> {
        current(&self.leader)
    }

    /// Leads with `leadership` (`None`: stops leading), before the epoch
    /// that lets requests in is set.
    pub fn set_leadership(&self, leadership: Option<Arc<Leadership>>) {
        let old = std::mem::replace(&mut *lock(&self.leader), leadership);
        if let Some(old) = old {
            old.resign();
        }
    }

    pub fn producers(&self) -> &SharedProducers {
        &self.producers
    }

    pub fn counters(&self) -> &PartitionCounters {
        &self.counters
    }
}

/// Idempotent producers' state as the log's recent batches give it (at
/// open, and after a follower cut its log back).
pub(crate) fn rebuild_producers(log: &PartitionLog) -> Result<ProducerTable, SpuError> {
    let mut producers = ProducerTable::default();
    for h in log.recent_batch_headers(PRODUCER_STATE_SEGMENTS)? {
        producers.record(&h, h.base_offset);
    }
    Ok(producers)
}

#[derive(Debug)]
pub(crate) struct Topic {
    pub spec: TopicSpec,
    pub id: uuid::Uuid,
    /// By partition number; `None` where this SPU holds no copy (in a
    /// cluster, other SPUs hold the rest).
    pub partitions: Vec<Option<Arc<Partition>>>,
}

impl Topic {
    /// Partition `index` if this SPU holds a copy of it.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .and_then(Option::as_ref)
    }

    /// The partitions this SPU holds, with their numbers.
    pub fn hosted(&self) -> impl Iterator<Item = (usize, &Arc<Partition>)> {
        self.partitions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
    }
}

/// A failed topic operation, as a Kafka error code and a message.
#[derive(Debug)]
pub(crate) struct TopicError {
    pub code: ResponseError,
    pub message: String,
}

impl TopicError {
    pub(crate) fn new(code: ResponseError, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

fn unknown_topic(name: &str) -> TopicError {
    TopicError::new(
        ResponseError::UnknownTopicOrPartition,
        format!("topic {name:?} does not exist"),
    )
}

/// Checks CreatePartitions' new total against a topic's `current` count:
/// more than now, at most [`MAX_PARTITIONS_PER_TOPIC`]
/// (`INVALID_PARTITIONS` otherwise, as Kafka answers).
pub(crate) fn check_partition_growth(
    name: &str,
    current: i32,
    count: i32,
) -> Result<(), TopicError> {
    if count <= current {
        return Err(TopicError::new(
            ResponseError::InvalidPartitions,
            format!(
                "topic {name:?} has {current} partition{}; the new count must be more, got {count} (partitions cannot be removed)",
                if current == 1 { "" } else { "s" }
            ),
        ));
    }
    if count > MAX_PARTITIONS_PER_TOPIC {
        return Err(TopicError::new(
            ResponseError::InvalidPartitions,
            format!("a topic has at most {MAX_PARTITIONS_PER_TOPIC} partitions, got {count}"),
        ));
    }
    Ok(())
}

#[derive(Debug)]
pub(crate) struct Registry {
    config: Arc<SpuConfig>,
    backend: Arc<dyn Backend>,
    meta: MetaStore,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Bumped after every append, so long-polling fetches wake up.
    appended: watch::Sender<u64>,
    /// Serialises create and delete so two of them cannot race on one name.
    admin: Mutex<()>,
    producer_ids: ProducerIds,
    /// In a cluster, the latest view of its metadata (who leads what);
    /// `None` on a single SPU.
    cluster: Option<watch::Receiver<Arc<ClusterView>>>,
    metrics: Arc<Metrics>,
}

pub(crate) fn topic_id(name: &str) -> uuid::Uuid {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let hash = u64::from(crc32c::crc32c(name.as_bytes())) << 32 | u64::from(std::process::id());
    uuid::Uuid::from_u64_pair(nanos, hash)
}

impl Registry {
    /// Loads every stored topic and opens (recovers) its partition logs.
    /// In a cluster (`cluster` given) nothing is loaded here: the partitions
    /// this SPU holds are opened as the cluster's metadata assigns them
    /// ([`Registry::host`]).
    pub fn open(
        config: Arc<SpuConfig>,
        cluster: Option<watch::Receiver<Arc<ClusterView>>>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SpuError> {
        let meta = MetaStore::open(&config.data_dir)?;
        let backend: Arc<dyn Backend> = config
            .storage
            .clone()
            .unwrap_or_else(|| Arc::new(FileBackend));
        let backend = Arc::new(TimedBackend::new(backend, metrics.fsync_duration.clone()));
        let (appended, _) = watch::channel(0);
        let producer_ids = ProducerIds::open(&config.data_dir.join("__rill_meta"))?;
        let registry = Self {
            producer_ids,
            config,
            backend,
            meta,
            topics: RwLock::new(HashMap::new()),
            appended,
            admin: Mutex::new(()),
            cluster,
            metrics,
        };
        if registry.cluster.is_some() {
            return Ok(registry);
        }
        for (spec, id) in registry.meta.load_all()? {
            let topic = registry.open_topic(spec, id)?;
            registry
                .write_topics()
                .insert(topic.spec.name.clone(), Arc::new(topic));
        }
        Ok(registry)
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{partition}"))
    }

    fn open_topic(&self, spec: TopicSpec, id: uuid::Uuid) -> Result<Topic, SpuError> {
        let mut partitions = Vec::with_capacity(spec.partitions.max(0) as usize);
        for p in 0..spec.partitions {
            // A single SPU leads all its partitions, always at epoch 0.
            partitions.push(Some(self.open_partition(&spec, p, 0)?));
        }
        Ok(Topic {
            spec,
            id,
            partitions,
        })
    }

    /// Opens (recovers) one partition's log and starts its writer.
    fn open_partition(
        &self,
        spec: &TopicSpec,
        p: i32,
        leader_epoch: i32,
    ) -> Result<Arc<Partition>, SpuError> {
        let mut log = PartitionLog::open(
            self.backend.clone(),
            self.partition_dir(&spec.name, p),
            spec.config.log_config(self.config.flush),
        )?;
        // On a single SPU its one copy is every copy: whatever survived in
        // the log was acknowledged at every isolation level, so it is
        // committed (the checkpointed high watermark can lag after a crash).
        // In a cluster the checkpointed high watermark stands: records past
        // it may not be on the other in-sync replicas yet, and the leader's
        // ISR bookkeeping moves it on.
        if !self.in_cluster() {
            let end = log.log_end_offset();
            log.set_high_watermark(end);
        }
        let producers = rebuild_producers(&log)?;
        let log = Arc::new(Mutex::new(log));
        let producers = Arc::new(Mutex::new(producers));
        let leader = LeaderSlot::default();
        let counters = self.metrics.partition(&spec.name, p);
        let writer = Writer::new(
            format!("{}-{p}", spec.name),
            log.clone(),
            producers.clone(),
            WriterRole {
                slot: leader.clone(),
                clustered: self.in_cluster(),
                counters: counters.clone(),
            },
        );
        Ok(Arc::new(Partition {
            log,
            writer,
            producers,
            leader,
            leader_epoch: AtomicI32::new(leader_epoch),
            counters,
        }))
    }

    /// In a cluster: holds a copy of partition `p` of `spec`, opening its
    /// log (not led: [`NOT_LEADER`]) if it is not open yet; the replication
    /// roles decide whether it is led. A topic re-created under the same
    /// name (a new id) replaces the old one's partitions.
    pub fn host(
        &self,
        spec: &TopicSpec,
        id: uuid::Uuid,
        p: i32,
    ) -> Result<Arc<Partition>, SpuError> {
        let held = self.topic(&spec.name);
        if held.as_ref().is_some_and(|t| t.id != id) {
            // Deleted and created again since the last look: the old
            // topic's files share the names of the new one's.
            self.unhost(&spec.name, true);
        }
        let existing = held.filter(|t| t.id == id);
        if let Some(part) = existing.as_ref().and_then(|t| t.partition(p)) {
            return Ok(part.clone());
        }
        let opened = self.open_partition(spec, p, NOT_LEADER)?;
        let mut topics = self.write_topics();
        let mut partitions = match topics.get(&spec.name) {
            Some(t) if t.id == id => t.partitions.clone(),
            _ => Vec::new(),
        };
        let count = spec.partitions.max(0) as usize;
        partitions.resize(count.max(partitions.len()), None);
        if let Some(slot) = usize::try_from(p).ok().and_then(|i| partitions.get_mut(i)) {
            *slot = Some(opened.clone());
        }
        topics.insert(
            spec.name.clone(),
            Arc::new(Topic {
                spec: spec.clone(),
                id,
                partitions,
            }),
        );
        Ok(opened)
    }

    /// In a cluster: stops holding a topic, and deletes its files when it
    /// was deleted from the cluster (rather than moved elsewhere).
    pub fn unhost(&self, name: &str, delete_files: bool) {
        let Some(topic) = self.write_topics().remove(name) else {
            return;
        };
        if !delete_files {
            return;
        }
        for (p, _) in topic.hosted() {
            self.metrics.forget(name, p as i32);
            let dir = self.partition_dir(name, p as i32);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove partition directory");
            }
        }
        tracing::info!(topic = %name, "topic's partitions deleted");
    }

    /// Whether this SPU is a member of a cluster.
    pub fn in_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// The cluster's metadata as last seen (`None` on a single SPU).
    pub fn cluster_view(&self) -> Option<Arc<ClusterView>> {
        self.cluster.as_ref().map(|v| v.borrow().clone())
    }

    /// Partition `index` of `topic`, if this SPU leads it; otherwise the
    /// error a client is told: `UNKNOWN_TOPIC_OR_PARTITION`, or in a
    /// cluster `LEADER_NOT_AVAILABLE` (no SPU leads it now) or
    /// `NOT_LEADER_OR_FOLLOWER` (another SPU does).
    pub fn leading(&self, topic: &str, index: i32) -> Result<Arc<Partition>, ResponseError> {
        if let Some(p) = self
            .topic(topic)
            .and_then(|t| t.partition(index).filter(|p| p.is_leader()).cloned())
        {
            return Ok(p);
        }
        let Some(view) = self.cluster_view() else {
            return Err(ResponseError::UnknownTopicOrPartition);
        };
        let state = u32::try_from(index)
            .ok()
            .and_then(|i| view.partitions.get(&(topic.to_owned(), i)));
        match state {
            None => Err(ResponseError::UnknownTopicOrPartition),
            Some(s) if s.leader().is_none() => Err(ResponseError::LeaderNotAvailable),
            Some(_) => Err(ResponseError::NotLeaderOrFollower),
        }
    }

    /// Partition `index` of `topic` if this SPU holds a copy of it, leader
    /// or follower (for Kafka's debugging replica id, which may ask any
    /// replica); otherwise [`Self::leading`]'s error.
    pub fn hosting(&self, topic: &str, index: i32) -> Result<Arc<Partition>, ResponseError> {
        match self.topic(topic).and_then(|t| t.partition(index).cloned()) {
            Some(p) => Ok(p),
            None => self.leading(topic, index),
        }
    }

    fn write_topics(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_topics(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config(&self) -> &SpuConfig {
        &self.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.read_topics().get(name).cloned()
    }

    /// Every topic, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self.read_topics().values().cloned().collect();
        all.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        all
    }

    /// Checks a spec as CreateTopics would, without creating anything.
    pub fn validate(&self, spec: &TopicSpec) -> Result<(), TopicError> {
        validate_topic_name(&spec.name)
            .map_err(|m| TopicError::new(ResponseError::InvalidTopicException, m))?;
        if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&spec.partitions) {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!(
                    "partitions must be in 1..={MAX_PARTITIONS_PER_TOPIC}, got {}",
                    spec.partitions
                ),
            ));
        }
        // Each live SPU can hold one copy (one SPU alone: one copy).
        let view = self.cluster_view();
        let spus = view
            .as_ref()
            .map_or(1, |v| i16::try_from(v.spus.len()).unwrap_or(i16::MAX));
        if spec.replication_factor < 1 || spec.replication_factor > spus {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "replication factor {} must be between 1 and the number of SPUs ({spus})",
                    spec.replication_factor
                ),
            ));
        }
        let exists = match &view {
            Some(v) => v.topics.contains_key(&spec.name),
            None => self.read_topics().contains_key(&spec.name),
        };
        if exists {
            return Err(TopicError::new(
                ResponseError::TopicAlreadyExists,
                format!("topic {:?} already exists", spec.name),
            ));
        }
        Ok(())
    }

    /// Creates a topic: metadata first (durable), then its partition logs.
    pub fn create(&self, spec: TopicSpec) -> Result<Arc<Topic>, TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        self.validate(&spec)?;
        let id = topic_id(&spec.name);
        let storage =
            |e: SpuError| TopicError::new(ResponseError::KafkaStorageError, e.to_string());
        self.meta.save(&spec, id).map_err(storage)?;
        let topic = match self.open_topic(spec.clone(), id) {
            Ok(t) => Arc::new(t),
            Err(e) => {
                let _ = self.meta.remove(&spec.name);
                return Err(storage(e));
            }
        };
        self.write_topics().insert(spec.name.clone(), topic.clone());
        tracing::info!(topic = %spec.name, partitions = spec.partitions, "topic created");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions on a single SPU (CreatePartitions):
    /// the new partitions' logs are opened first (off the async threads:
    /// call from a blocking thread), then the metadata file records the
    /// count, then the new partitions are served. With `validate_only`
    /// only the checks run.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self.topic(name).ok_or_else(|| unknown_topic(name))?;
        let old = topic.spec.partitions;
        check_partition_growth(name, old, count)?;
        if validate_only {
            return Ok(());
        }
        let mut spec = topic.spec.clone();
        spec.partitions = count;
        let storage =
            |e: SpuError| TopicError::new(ResponseError::KafkaStorageError, e.to_string());
        let mut partitions = topic.partitions.clone();
        for p in old..count {
            match self.open_partition(&spec, p, 0) {
                Ok(part) => partitions.push(Some(part)),
                Err(e) => {
                    drop(partitions);
                    self.remove_partition_dirs(name, old..p + 1);
                    return Err(storage(e));
                }
            }
        }
        if let Err(e) = self.meta.save(&spec, topic.id) {
            drop(partitions);
            self.remove_partition_dirs(name, old..count);
            return Err(storage(e));
        }
        self.write_topics().insert(
            name.to_owned(),
            Arc::new(Topic {
                spec,
                id: topic.id,
                partitions,
            }),
        );
        tracing::info!(topic = %name, old, new = count, "partitions added");
        Ok(())
    }

    /// Changes a topic's config on a single SPU (IncrementalAlterConfigs,
    /// AlterConfigs): `change` makes the new config from the current one;
    /// the metadata file records it, then every partition log takes the
    /// storage settings (from their next use) and produce the rest. Call
    /// from a blocking thread. With `validate_only` only the checks run.
    /// Returns the new config.
    pub fn alter_config(
        &self,
        name: &str,
        change: impl FnOnce(&TopicConfig) -> Result<TopicConfig, TopicError>,
        validate_only: bool,
    ) -> Result<TopicConfig, TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self.topic(name).ok_or_else(|| unknown_topic(name))?;
        let config = change(&topic.spec.config)?;
        if validate_only || config == topic.spec.config {
            return Ok(config);
        }
        let mut spec = topic.spec.clone();
        spec.config = config.clone();
        self.meta
            .save(&spec, topic.id)
            .map_err(|e| TopicError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        self.reconfigure_logs(&topic, &config);
        self.write_topics().insert(
            name.to_owned(),
            Arc::new(Topic {
                spec,
                id: topic.id,
                partitions: topic.partitions.clone(),
            }),
        );
        tracing::info!(topic = %name, "topic config changed");
        Ok(config)
    }

    /// In a cluster: takes a held topic's spec as the store has it now (a
    /// grown partition count, a changed config), reconfiguring its open
    /// logs. Partitions newly assigned to this SPU are opened by
    /// [`Registry::host`]. Nothing happens for a topic not held, or held
    /// under another id.
    pub fn respec(&self, spec: &TopicSpec, id: uuid::Uuid) {
        let Some(topic) = self.topic(&spec.name).filter(|t| t.id == id) else {
            return;
        };
        if topic.spec == *spec {
            return;
        }
        if topic.spec.config != spec.config {
            self.reconfigure_logs(&topic, &spec.config);
        }
        let mut partitions = topic.partitions.clone();
        let count = spec.partitions.max(0) as usize;
        partitions.resize(count.max(partitions.len()), None);
        self.write_topics().insert(
            spec.name.clone(),
            Arc::new(Topic {
                spec: spec.clone(),
                id,
                partitions,
            }),
        );
        tracing::info!(topic = %spec.name, partitions = spec.partitions, "topic spec changed in the cluster");
    }

    /// Gives every open log of `topic` the storage settings of `config`.
    fn reconfigure_logs(&self, topic: &Topic, config: &TopicConfig) {
        let log_config = config.log_config(self.config.flush);
        for (p, part) in topic.hosted() {
            if let Err(e) = part.log().reconfigure(log_config.clone()) {
                tracing::warn!(topic = %topic.spec.name, partition = p, error = %e, "a partition log refused the new config");
            }
        }
    }

    fn remove_partition_dirs(&self, name: &str, partitions: std::ops::Range<i32>) {
        for p in partitions {
            let dir = self.partition_dir(name, p);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not remove partition directory");
                }
            }
        }
    }

    /// Deletes a topic: gone from metadata first, then its files.
    pub fn delete(&self, name: &str) -> Result<(), TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let Some(topic) = self.write_topics().remove(name) else {
            return Err(TopicError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("topic {name:?} does not exist"),
            ));
        };
        self.meta
            .remove(name)
            .map_err(|e| TopicError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        for (p, _) in topic.hosted() {
            self.metrics.forget(name, p as i32);
            let dir = self.partition_dir(name, p as i32);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove partition directory");
            }
        }
        tracing::info!(topic = %name, "topic deleted");
        Ok(())
    }

    /// A producer id never given before, for InitProducerId.
    pub fn new_producer_id(&self) -> Result<i64, SpuError> {
        self.producer_ids.next()
    }

    /// Wakes long-polling fetches.
    pub fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Whether a Fetch is parked for appends (a consumer or a follower
    /// long-polling), so the last append has just woken it.
    pub fn fetches_waiting(&self) -> bool {
        self.appended.receiver_count() > 0
    }

    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Runs retention and due interval flushes over every partition.
    pub fn housekeeping(&self) {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        for topic in self.topics() {
            for (i, p) in topic.hosted() {
                let mut log = p.log();
                match log.apply_retention(now_ms) {
                    Ok(out) if out.segments_deleted > 0 => tracing::info!(
                        topic = %topic.spec.name, partition = i,
                        segments = out.segments_deleted, bytes = out.bytes_deleted,
                        log_start_offset = out.log_start_offset, "retention deleted segments"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(topic = %topic.spec.name, partition = i, error = %e, "retention failed")
                    }
                }
            }
        }
        self.flush_due();
    }

    /// fsyncs the logs whose flush interval has passed (`FlushPolicy::Interval`).
    pub fn flush_due(&self) {
        for topic in self.topics() {
            for (i, p) in topic.hosted() {
                if let Err(e) = p.log().flush_if_due(std::time::Instant::now()) {
                    tracing::warn!(topic = %topic.spec.name, partition = i, error = %e, "flush failed");
                }
            }
        }
    }

    /// Flushes every log; used at shutdown.
    pub fn flush_all(&self) {
        for topic in self.topics() {
            for (i, p) in topic.hosted() {
                if let Err(e) = p.log().flush() {
                    tracing::warn!(topic = %topic.spec.name, partition = i, error = %e, "flush at shutdown failed");
                }
            }
        }
    }
}

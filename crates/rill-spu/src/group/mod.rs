//! The group coordinator: consumer groups (Kafka's classic protocol) and
//! their committed offsets.
//!
//! - [`state`]: one group's membership as a state machine with time passed
//!   in; no I/O.
//! - [`offsets`]: the records of the offsets topic and the table they
//!   rebuild.
//! - This module, the shell: every group of this SPU behind one lock (held
//!   only for a state machine call, never across an await), the parked
//!   JoinGroup and SyncGroup requests (a oneshot per member, answered by the
//!   machine's completions), a tick (the server calls [`Coordinator::tick`]
//!   every [`TICK`]), and the durable offsets: each commit is appended to
//!   the group's partition of [`OFFSETS_TOPIC`] before it is answered, and
//!   the table is rebuilt from that partition the first time the SPU
//!   coordinates one of its groups (after every start).
//!
//! The coordinator of a group is the SPU that leads its offsets partition,
//! `(java_hash(group) & 0x7fffffff) % partitions` as Kafka computes it. On
//! a single SPU that is always this SPU; in a cluster the other SPUs answer
//! `NOT_COORDINATOR`, and FindCoordinator names the leader.

pub mod offsets;
pub mod state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use rill_protocol::batch::{split_batches, NewRecord, RecordBatch, RecordBatchBuilder};
use rill_protocol::Compression;
use tokio::sync::oneshot;

use self::offsets::{Committed, OffsetKey, OffsetTable, Replay, SNAPSHOT_HEADER};
pub use self::state::GroupLimits;
use self::state::{
    Completion, Group, GroupState, JoinRequest, JoinResponse, MemberDescription, Outcome,
    SyncResponse,
};
use crate::api::Context;
use crate::registry::{Partition, Registry};
use crate::topic::{TopicConfig, TopicSpec};

/// The internal topic of committed offsets (Kafka's name).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// How often the server ticks the coordinator (session expiry and join
/// timeouts are checked this often; they may fire up to this late).
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// Longest metadata string kept with a committed offset (Kafka's
/// `offset.metadata.max.bytes`); longer is `OFFSET_METADATA_TOO_LARGE`.
pub const MAX_OFFSET_METADATA_BYTES: usize = 4096;
/// Bytes read from the offsets log per read while replaying it.
/// The offsets topic's replication factor in a cluster (Kafka's
/// `offsets.topic.replication.factor`), or the number of live SPUs when
/// fewer (Kafka refuses to create it then; Rill starts smaller rather than
/// leave groups without a coordinator).
pub const OFFSETS_REPLICATION_FACTOR: usize = 3;
/// How long an offset commit waits for the offsets partition's in-sync
/// replicas (Kafka's `offsets.commit.timeout.ms`).
pub const OFFSETS_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
const REPLAY_READ_BYTES: usize = 1024 * 1024;
/// Largest decompressed batch accepted while replaying (the SPU writes
/// them uncompressed; a larger one is skipped).
const REPLAY_MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

/// How the coordinator is bounded. Every limit is named with its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    /// Bounds on each group (members, timeouts, initial delay).
    pub limits: GroupLimits,
    /// Most groups one SPU coordinates (with members or with committed
    /// offsets); a new group beyond it is refused with
    /// `COORDINATOR_NOT_AVAILABLE`.
    pub max_groups: usize,
    /// Partitions of the offsets topic when the SPU creates it (Kafka's
    /// `offsets.topic.num.partitions`, 50 there). It cannot change later:
    /// groups are placed by it.
    pub offsets_topic_partitions: i32,
    /// Segment size of the offsets topic when the SPU creates it, in bytes:
    /// only whole segments are deleted after a snapshot.
    pub offsets_segment_bytes: u64,
    /// An offsets partition larger than this, in bytes, is compacted: the
    /// coordinator appends a snapshot of its live entries and deletes the
    /// segments before it (Kafka compacts the topic by key instead).
    pub offsets_compact_after_bytes: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            limits: GroupLimits::default(),
            max_groups: 10_000,
            offsets_topic_partitions: 8,
            offsets_segment_bytes: 16 * 1024 * 1024,
            offsets_compact_after_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Kafka's `Utils.abs(groupId.hashCode()) % partitions`: Java's
/// `String.hashCode` over UTF-16 code units.
pub fn offsets_partition(group: &str, partitions: i32) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    (hash & 0x7fff_ffff) % partitions.max(1)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A group and the requests parked on it.
#[derive(Debug)]
struct Entry {
    group: Group,
    joins: HashMap<String, oneshot::Sender<JoinResponse>>,
    syncs: HashMap<String, oneshot::Sender<SyncResponse>>,
}

impl Entry {
    fn deliver(&mut self) {
        for c in self.group.drain_completions() {
            match c {
                Completion::Join {
                    member_id,
                    response,
                } => {
                    if let Some(tx) = self.joins.remove(&member_id) {
                        let _ = tx.send(response);
                    }
                }
                Completion::Sync {
                    member_id,
                    response,
                } => {
                    if let Some(tx) = self.syncs.remove(&member_id) {
                        let _ = tx.send(response);
                    }
                }
            }
        }
    }
}

/// One partition's commit to append.
#[derive(Debug, Clone)]
pub(crate) struct Commit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// A topic's committed offsets by partition (`None`: nothing committed).
pub(crate) type TopicOffsets = (String, Vec<(i32, Option<Committed>)>);

/// A group as DescribeGroups and ListGroups show it.
#[derive(Debug, Clone)]
pub(crate) struct GroupDescription {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every group this SPU coordinates.
#[derive(Debug)]
pub(crate) struct Coordinator {
    config: GroupConfig,
    groups: Mutex<HashMap<String, Entry>>,
    offsets: Mutex<OffsetTable>,
    /// The offsets partitions replayed into the table, each with the leader
    /// epoch it was replayed under (`None` on a single SPU): a partition
    /// led again at a later epoch is replayed again, since another SPU may
    /// have taken commits meanwhile.
    loaded: Mutex<HashMap<i32, Option<i32>>>,
    /// One load or topic creation at a time.
    loading: tokio::sync::Mutex<()>,
    /// Offsets partitions a snapshot is being written to.
    compacting: Mutex<std::collections::HashSet<i32>>,
    /// Each offsets partition's size after its last snapshot, in bytes: the
    /// next one waits until the log is twice that (or the configured
    /// threshold), so a large live table does not snapshot on every commit.
    compacted_size: Mutex<HashMap<i32, u64>>,
    /// Member ids carry this, so ids given after a restart are new.
    nonce: AtomicU64,
    /// Set at shutdown: no request is parked any more.
    closed: std::sync::atomic::AtomicBool,
}

impl Coordinator {
    pub fn new(config: GroupConfig) -> Self {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self {
            config,
            groups: Mutex::new(HashMap::new()),
            offsets: Mutex::new(OffsetTable::default()),
            loaded: Mutex::new(HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
            compacting: Mutex::new(std::collections::HashSet::new()),
            compacted_size: Mutex::new(HashMap::new()),
            nonce: AtomicU64::new(start & 0xffff_ffff_ffff),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// How long a JoinGroup or SyncGroup may be parked at most: a join
    /// phase ends by the rebalance timeout, a sync waits at most for the
    /// leader's session to expire.
    pub fn longest_park(&self) -> Duration {
        let l = &self.config.limits;
        l.max_rebalance_timeout.max(l.max_session_timeout) + TICK
    }

    /// The offsets topic's partition count: the store's (or the local
    /// topic's) if it exists, else what this SPU would create.
    fn partitions(&self, ctx: &Context) -> i32 {
        if let Some(link) = &ctx.cluster {
            if let Some(spec) = link.topic_spec(OFFSETS_TOPIC) {
                return spec.partitions;
            }
        } else if let Some(t) = ctx.registry.topic(OFFSETS_TOPIC) {
            return t.spec.partitions;
        }
        self.config.offsets_topic_partitions
    }

    pub fn partition_of(&self, ctx: &Context, group: &str) -> i32 {
        offsets_partition(group, self.partitions(ctx))
    }

    fn offsets_spec(&self, replication_factor: i16) -> TopicSpec {
        TopicSpec {
            name: OFFSETS_TOPIC.to_owned(),
            partitions: self.config.offsets_topic_partitions,
            replication_factor,
            config: TopicConfig {
                // Committed offsets are kept until their group is deleted.
                retention_ms: -1,
                retention_bytes: -1,
                segment_bytes: i64::try_from(self.config.offsets_segment_bytes).unwrap_or(i64::MAX),
                ..TopicConfig::default()
            },
        }
    }

    /// Creates the offsets topic if it does not exist: in local files on a
    /// single SPU, through the store in a cluster.
    async fn ensure_topic(&self, ctx: &Context) -> Result<(), ResponseError> {
        let exists = match &ctx.cluster {
            Some(link) => link.topic_spec(OFFSETS_TOPIC).is_some(),
            None => ctx.registry.topic(OFFSETS_TOPIC).is_some(),
        };
        if exists {
            return Ok(());
        }
        let _one = self.loading.lock().await;
        let replication = ctx.cluster.as_ref().map_or(1, |link| {
            link.view().spus.len().clamp(1, OFFSETS_REPLICATION_FACTOR)
        });
        let spec = self.offsets_spec(i16::try_from(replication).unwrap_or(1));
        let created = match &ctx.cluster {
            Some(link) => {
                if link.topic_spec(OFFSETS_TOPIC).is_some() {
                    return Ok(());
                }
                link.create_topic(&spec, Duration::from_secs(5))
                    .await
                    .map(|_| ())
            }
            None => {
                if ctx.registry.topic(OFFSETS_TOPIC).is_some() {
                    return Ok(());
                }
                let registry = ctx.registry.clone();
                tokio::task::spawn_blocking(move || registry.create(spec).map(|_| ()))
                    .await
                    .unwrap_or_else(|e| {
                        Err(crate::registry::TopicError::new(
                            ResponseError::KafkaStorageError,
                            e.to_string(),
                        ))
                    })
            }
        };
        match created {
            Ok(()) => {
                tracing::info!(topic = OFFSETS_TOPIC, "offsets topic created");
                Ok(())
            }
            Err(e) if e.code == ResponseError::TopicAlreadyExists => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e.message, "could not create the offsets topic");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }

    /// Whether this SPU coordinates `group`; if so, its offsets partition,
    /// replayed into the table. Otherwise the error a client is told.
    async fn coordinate(
        &self,
        ctx: &Context,
        group: &str,
    ) -> Result<Arc<Partition>, ResponseError> {
        if group.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        self.ensure_topic(ctx).await?;
        let p = self.partition_of(ctx, group);
        let part = match ctx.registry.leading(OFFSETS_TOPIC, p) {
            Ok(part) => part,
            Err(ResponseError::UnknownTopicOrPartition | ResponseError::LeaderNotAvailable) => {
                self.unload(p);
                return Err(if ctx.cluster.is_some() {
                    ResponseError::CoordinatorNotAvailable
                } else {
                    ResponseError::CoordinatorLoadInProgress
                });
            }
            Err(_) => {
                self.unload(p);
                // The store may already name this SPU while its registry
                // has not opened the partition yet: a moment.
                let mine = ctx.cluster.as_ref().is_some_and(|link| {
                    let node = u32::try_from(ctx.registry.config().node_id).ok();
                    u32::try_from(p)
                        .ok()
                        .and_then(|i| link.view().leader(OFFSETS_TOPIC, i))
                        .is_some_and(|l| Some(l) == node)
                });
                return Err(if mine {
                    ResponseError::CoordinatorLoadInProgress
                } else {
                    ResponseError::NotCoordinator
                });
            }
        };
        let epoch = part.leadership().map(|l| l.epoch);
        if lock(&self.loaded).get(&p).is_some_and(|at| *at != epoch) {
            self.unload(p);
        }
        self.load(p, &part).await?;
        Ok(part)
    }

    fn unload(&self, p: i32) {
        if lock(&self.loaded).remove(&p).is_some() {
            self.forget_partition(p);
        }
    }

    /// Drops the table's entries and the groups of offsets partition `p`.
    fn forget_partition(&self, p: i32) {
        let n = self.config_partitions_guess();
        let mut table = lock(&self.offsets);
        let gone: Vec<String> = table
            .group_ids()
            .filter(|g| offsets_partition(g, n) == p)
            .map(str::to_owned)
            .collect();
        for g in gone {
            table.remove_group(&g);
        }
        drop(table);
        lock(&self.groups).retain(|g, _| offsets_partition(g, n) != p);
    }

    fn config_partitions_guess(&self) -> i32 {
        self.config.offsets_topic_partitions
    }

    /// Replays offsets partition `p` into the table, once.
    async fn load(&self, p: i32, part: &Arc<Partition>) -> Result<(), ResponseError> {
        if lock(&self.loaded).contains_key(&p) {
            return Ok(());
        }
        let _one = self.loading.lock().await;
        if lock(&self.loaded).contains_key(&p) {
            return Ok(());
        }
        let epoch = part.leadership().map(|l| l.epoch);
        let part = part.clone();
        let replayed = tokio::task::spawn_blocking(move || replay(&part, None))
            .await
            .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        match replayed {
            Ok(table) => {
                let mut mine = lock(&self.offsets);
                let mut records = 0;
                for (k, c) in table.entries() {
                    mine.apply(k, Some(c.clone()));
                    records += 1;
                }
                drop(mine);
                lock(&self.loaded).insert(p, epoch);
                tracing::info!(partition = p, offsets = records, "offsets partition loaded");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "could not replay the offsets log");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }

    /// Loads every offsets partition this SPU leads (for ListGroups).
    async fn load_all(&self, ctx: &Context) {
        let Some(topic) = ctx.registry.topic(OFFSETS_TOPIC) else {
            return;
        };
        for (p, part) in topic.hosted() {
            if part.is_leader() {
                let _ = self.load(p as i32, part).await;
            }
        }
    }

    /// FindCoordinator: the SPU that coordinates `group`, as
    /// `(node id, host, port)`.
    pub async fn find(
        &self,
        ctx: &Context,
        group: &str,
    ) -> Result<(i32, String, i32), ResponseError> {
        if group.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        self.ensure_topic(ctx).await?;
        let p = self.partition_of(ctx, group);
        let Some(link) = &ctx.cluster else {
            let (host, port) = ctx.advertised.clone();
            return Ok((ctx.registry.config().node_id, host, i32::from(port)));
        };
        let view = link.view();
        let leader = u32::try_from(p)
            .ok()
            .and_then(|i| view.partitions.get(&(OFFSETS_TOPIC.to_owned(), i)))
            .and_then(|s| s.leader());
        let Some(leader) = leader else {
            return Err(ResponseError::CoordinatorNotAvailable);
        };
        let spu = view
            .spus
            .get(&leader)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let (host, port) = split_address(spu).ok_or(ResponseError::CoordinatorNotAvailable)?;
        Ok((leader as i32, host, port))
    }

    /// Runs `f` on the group's entry, creating the group if `create` (and
    /// the limit allows), then answers whatever it completed.
    fn with_group<T>(
        &self,
        group: &str,
        create: bool,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> Result<T, ResponseError> {
        if self.closed.load(Ordering::Acquire) {
            // Shutting down: nothing may be parked now.
            return Err(ResponseError::NotCoordinator);
        }
        let mut groups = lock(&self.groups);
        if !groups.contains_key(group) {
            if !create {
                return Err(ResponseError::UnknownMemberId);
            }
            let known_offsets = lock(&self.offsets).group(group).is_some();
            if !known_offsets && groups.len() >= self.config.max_groups {
                tracing::warn!(
                    group,
                    limit = self.config.max_groups,
                    "group refused: too many groups"
                );
                return Err(ResponseError::CoordinatorNotAvailable);
            }
            let nonce = self.nonce.fetch_add(1, Ordering::Relaxed);
            groups.insert(
                group.to_owned(),
                Entry {
                    group: Group::new(group, self.config.limits, nonce),
                    joins: HashMap::new(),
                    syncs: HashMap::new(),
                },
            );
        }
        let entry = groups
            .get_mut(group)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let out = f(entry);
        entry.deliver();
        // A refused join leaves nothing behind.
        if entry.group.is_idle() && entry.joins.is_empty() && entry.syncs.is_empty() {
            groups.remove(group);
        }
        Ok(out)
    }

    pub async fn join(&self, ctx: &Context, group: &str, req: JoinRequest) -> JoinResponse {
        let member = req.member_id.clone();
        if let Err(e) = self.coordinate(ctx, group).await {
            return JoinResponse::error(e, &member);
        }
        let parked = self.with_group(group, true, |entry| {
            match entry.group.join(req, Instant::now()) {
                Outcome::Done(r) => Err(Box::new(r)),
                Outcome::Parked(id) => {
                    let (tx, rx) = oneshot::channel();
                    // A member asking again replaces its older request,
                    // whose handler then answers NOT_COORDINATOR.
                    entry.joins.insert(id, tx);
                    Ok(rx)
                }
            }
        });
        match parked {
            Err(e) => JoinResponse::error(e, &member),
            Ok(Err(done)) => *done,
            Ok(Ok(rx)) => rx
                .await
                .unwrap_or_else(|_| JoinResponse::error(ResponseError::NotCoordinator, &member)),
        }
    }

    pub async fn sync(
        &self,
        ctx: &Context,
        group: &str,
        member_id: &str,
        generation: i32,
        protocol: Option<(String, String)>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResponse {
        if let Err(e) = self.coordinate(ctx, group).await {
            return SyncResponse::error(e);
        }
        let parked = self.with_group(group, false, |entry| {
            let protocol = protocol.as_ref().map(|(t, n)| (t.as_str(), n.as_str()));
            match entry
                .group
                .sync(member_id, generation, protocol, assignments, Instant::now())
            {
                Outcome::Done(r) => Err(r),
                Outcome::Parked(id) => {
                    let (tx, rx) = oneshot::channel();
                    entry.syncs.insert(id, tx);
                    Ok(rx)
                }
            }
        });
        match parked {
            Err(e) => SyncResponse::error(e),
            Ok(Err(done)) => done,
            Ok(Ok(rx)) => rx
                .await
                .unwrap_or_else(|_| SyncResponse::error(ResponseError::NotCoordinator)),
        }
    }

    pub async fn heartbeat(
        &self,
        ctx: &Context,
        group: &str,
        member_id: &str,
        generation: i32,
    ) -> Option<ResponseError> {
        if let Err(e) = self.coordinate(ctx, group).await {
            return Some(e);
        }
        self.with_group(group, false, |entry| {
            entry.group.heartbeat(member_id, generation, Instant::now())
        })
        .unwrap_or_else(Some)
    }

    /// LeaveGroup: the group's error, then each member's.
    pub async fn leave(
        &self,
        ctx: &Context,
        group: &str,
        members: &[String],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.coordinate(ctx, group).await?;
        let now = Instant::now();
        match self.with_group(group, false, |entry| {
            members
                .iter()
                .map(|m| entry.group.leave(m, now))
                .collect::<Vec<_>>()
        }) {
            Ok(v) => {
                self.drop_if_idle(group);
                Ok(v)
            }
            Err(_) => Ok(members
                .iter()
                .map(|_| Some(ResponseError::UnknownMemberId))
                .collect()),
        }
    }

    /// Forgets an empty group with nothing parked (its offsets stay).
    fn drop_if_idle(&self, group: &str) {
        let mut groups = lock(&self.groups);
        if groups
            .get(group)
            .is_some_and(|e| e.group.is_idle() && e.joins.is_empty() && e.syncs.is_empty())
        {
            groups.remove(group);
        }
    }

    /// Expires sessions and ends join phases that are due.
    pub fn tick(&self, now: Instant) {
        let mut groups = lock(&self.groups);
        for entry in groups.values_mut() {
            if entry.group.next_deadline().is_some_and(|d| d <= now) {
                entry.group.tick(now);
                entry.deliver();
            }
        }
        groups.retain(|_, e| !(e.group.is_idle() && e.joins.is_empty() && e.syncs.is_empty()));
    }

    /// Every committed offset this coordinator holds, for the lag metrics.
    pub fn committed(&self) -> Vec<(OffsetKey, i64)> {
        lock(&self.offsets)
            .entries()
            .map(|(key, c)| (key, c.offset))
            .collect()
    }

    /// At shutdown: every parked request is answered `NOT_COORDINATOR`
    /// (its sender dropped), so connections finish at once.
    pub fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        for entry in lock(&self.groups).values_mut() {
            entry.joins.clear();
            entry.syncs.clear();
        }
    }

    /// OffsetCommit: one answer per commit, in order. Appended to the
    /// offsets log before it is answered.
    pub async fn commit(
        &self,
        ctx: &Context,
        group: &str,
        member_id: &str,
        generation: i32,
        commits: Vec<Commit>,
    ) -> Vec<Option<ResponseError>> {
        let all = |e: ResponseError| commits.iter().map(|_| Some(e)).collect::<Vec<_>>();
        let part = match self.coordinate(ctx, group).await {
            Ok(p) => p,
            Err(e) => return all(e),
        };
        let checked = {
            let groups = lock(&self.groups);
            match groups.get(group) {
                Some(entry) => entry.group.check_commit(member_id, generation),
                None if generation < 0 => Ok(()),
                None => Err(ResponseError::UnknownMemberId),
            }
        };
        if let Err(e) = checked {
            return all(e);
        }
        {
            let groups = lock(&self.groups);
            let known = groups.contains_key(group) || lock(&self.offsets).group(group).is_some();
            let count = groups.len() + lock(&self.offsets).group_ids().count();
            if !known && count >= self.config.max_groups {
                return all(ResponseError::CoordinatorNotAvailable);
            }
        }
        let ts = now_ms();
        let mut answers = Vec::with_capacity(commits.len());
        let mut records: Vec<(OffsetKey, Committed)> = Vec::new();
        for c in &commits {
            let metadata = c.metadata.clone().unwrap_or_default();
            let error = if metadata.len() > MAX_OFFSET_METADATA_BYTES {
                Some(ResponseError::OffsetMetadataTooLarge)
            } else if !partition_exists(ctx, &c.topic, c.partition) {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                records.push((
                    OffsetKey {
                        group: group.to_owned(),
                        topic: c.topic.clone(),
                        partition: c.partition,
                    },
                    Committed {
                        offset: c.offset,
                        leader_epoch: c.leader_epoch,
                        metadata,
                        commit_timestamp_ms: ts,
                    },
                ));
                None
            };
            answers.push(error);
        }
        if records.is_empty() {
            return answers;
        }
        let encoded: Vec<(Bytes, Option<Bytes>)> = records
            .iter()
            .map(|(k, c)| (k.encode(), Some(c.encode())))
            .collect();
        if let Err(e) = append(&part, &encoded, ctx.registry.as_ref(), None).await {
            return answers.into_iter().map(|a| a.or(Some(e))).collect();
        }
        {
            let mut table = lock(&self.offsets);
            for (k, c) in records {
                table.apply(k, Some(c));
            }
        }
        self.compact_if_due(self.partition_of(ctx, group), &part, ctx.registry.as_ref())
            .await;
        answers
    }

    /// OffsetFetch: `topics` `None` is every partition the group has
    /// committed. Unknown partitions get offset -1.
    pub async fn fetch(
        &self,
        ctx: &Context,
        group: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Vec<TopicOffsets>, ResponseError> {
        self.coordinate(ctx, group).await?;
        let table = lock(&self.offsets);
        Ok(match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(t, ps)| {
                    let found = ps
                        .into_iter()
                        .map(|p| (p, table.get(group, &t, p).cloned()))
                        .collect();
                    (t, found)
                })
                .collect(),
            None => {
                let mut out: Vec<TopicOffsets> = Vec::new();
                for ((t, p), c) in table.group(group).into_iter().flatten() {
                    match out.last_mut() {
                        Some((last, ps)) if last == t => ps.push((*p, Some(c.clone()))),
                        _ => out.push((t.clone(), vec![(*p, Some(c.clone()))])),
                    }
                }
                out
            }
        })
    }

    /// DescribeGroups of one group. A group this SPU does not know is
    /// `Dead` (as Kafka answers).
    pub async fn describe(
        &self,
        ctx: &Context,
        group: &str,
    ) -> Result<GroupDescription, ResponseError> {
        self.coordinate(ctx, group).await?;
        let groups = lock(&self.groups);
        if let Some(e) = groups.get(group) {
            let g = &e.group;
            return Ok(GroupDescription {
                state: g.state().name(),
                protocol_type: g.protocol_type().unwrap_or_default().to_owned(),
                protocol: g.protocol().unwrap_or_default().to_owned(),
                members: g.describe(),
            });
        }
        let state = if lock(&self.offsets).group(group).is_some() {
            GroupState::Empty
        } else {
            GroupState::Dead
        };
        Ok(GroupDescription {
            state: state.name(),
            protocol_type: if state == GroupState::Empty {
                "consumer".into()
            } else {
                String::new()
            },
            protocol: String::new(),
            members: Vec::new(),
        })
    }

    /// ListGroups: every group this SPU coordinates, with its protocol
    /// type and state.
    pub async fn list(&self, ctx: &Context) -> Vec<(String, String, &'static str)> {
        self.load_all(ctx).await;
        let mut out: HashMap<String, (String, &'static str)> = HashMap::new();
        for g in lock(&self.offsets).group_ids() {
            out.insert(
                g.to_owned(),
                ("consumer".to_owned(), GroupState::Empty.name()),
            );
        }
        for (id, e) in lock(&self.groups).iter() {
            if e.group.state() == GroupState::Dead {
                continue;
            }
            let ty = e.group.protocol_type().unwrap_or("consumer").to_owned();
            out.insert(id.clone(), (ty, e.group.state().name()));
        }
        let mut out: Vec<_> = out.into_iter().map(|(g, (t, s))| (g, t, s)).collect();
        out.sort();
        out
    }

    /// DeleteGroups of one group: only when it has no members; its offsets
    /// get tombstones in the log, then leave the table.
    pub async fn delete(&self, ctx: &Context, group: &str) -> Option<ResponseError> {
        let part = match self.coordinate(ctx, group).await {
            Ok(p) => p,
            Err(e) => return Some(e),
        };
        {
            let mut groups = lock(&self.groups);
            if let Some(e) = groups.get_mut(group) {
                if e.group.state() != GroupState::Empty {
                    return Some(ResponseError::NonEmptyGroup);
                }
            }
        }
        let keys: Vec<OffsetKey> = lock(&self.offsets)
            .group(group)
            .map(|offsets| {
                offsets
                    .keys()
                    .map(|(t, p)| OffsetKey {
                        group: group.to_owned(),
                        topic: t.clone(),
                        partition: *p,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let had_entry = lock(&self.groups).contains_key(group);
        if keys.is_empty() && !had_entry {
            return Some(ResponseError::GroupIdNotFound);
        }
        if !keys.is_empty() {
            let tombstones: Vec<(Bytes, Option<Bytes>)> =
                keys.iter().map(|k| (k.encode(), None)).collect();
            if let Err(e) = append(&part, &tombstones, ctx.registry.as_ref(), None).await {
                return Some(e);
            }
        }
        lock(&self.offsets).remove_group(group);
        let mut groups = lock(&self.groups);
        if let Some(e) = groups.get_mut(group) {
            // Joined by someone since the check: keep it, offsets are gone.
            if e.group.delete().is_ok() {
                groups.remove(group);
            }
        }
        tracing::info!(group, "group deleted");
        None
    }
}

/// `host:port` → `(host, port)`.
fn split_address(addr: &str) -> Option<(String, i32)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host.trim_matches(['[', ']']).to_owned(), port.parse().ok()?))
}

fn partition_exists(ctx: &Context, topic: &str, partition: i32) -> bool {
    if partition < 0 || topic == OFFSETS_TOPIC {
        return false;
    }
    if let Some(link) = &ctx.cluster {
        return link
            .topic_spec(topic)
            .is_some_and(|s| partition < s.partitions);
    }
    ctx.registry
        .topic(topic)
        .is_some_and(|t| partition < t.spec.partitions)
}

/// Appends records (key, value or tombstone) to an offsets partition as
/// one batch (snapshot records carry [`SNAPSHOT_HEADER`] with `as_of`), and waits for the writer's answer and, in a cluster, for the
/// in-sync replicas (as Kafka's commits use `acks=all`).
async fn append(
    part: &Partition,
    records: &[(Bytes, Option<Bytes>)],
    registry: &Registry,
    as_of: Option<i64>,
) -> Result<(), ResponseError> {
    let ts = now_ms();
    let mut builder = RecordBatchBuilder::new(Compression::None);
    let as_of_bytes = as_of.map(i64::to_be_bytes);
    let snapshot_header = as_of_bytes
        .as_ref()
        .map(|b| (SNAPSHOT_HEADER, Some(&b[..])));
    let headers: &[(&[u8], Option<&[u8]>)] = match &snapshot_header {
        Some(h) => std::slice::from_ref(h),
        None => &[],
    };
    for (k, v) in records {
        let record = NewRecord {
            key: Some(k),
            value: v.as_deref(),
            headers,
            timestamp: ts,
        };
        builder
            .push(&record)
            .map_err(|_| ResponseError::OffsetMetadataTooLarge)?;
    }
    let batch = builder
        .finish()
        .map_err(|_| ResponseError::OffsetMetadataTooLarge)?;
    let admitted = part.leadership();
    let answer = part.submit(Bytes::from(batch)).await.answer().await;
    if answer.error_code != 0 {
        tracing::warn!(code = answer.error_code, message = ?answer.error_message, "offsets append failed");
        // A commit not stored is retriable for the client.
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    registry.notify_appended();
    if let Some(leadership) = admitted {
        let end = answer.base_offset + records.len() as i64;
        let deadline = tokio::time::Instant::now() + OFFSETS_COMMIT_TIMEOUT;
        if let Err(code) = leadership.wait_committed(end, deadline).await {
            tracing::warn!(?code, "offsets commit not on the in-sync replicas in time");
            return Err(ResponseError::CoordinatorNotAvailable);
        }
    }
    Ok(())
}

/// Why an offsets log could not be replayed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ReplayError {
    #[error(transparent)]
    Storage(#[from] rill_storage::StorageError),
}

/// Reads an offsets partition (to `until`, or all of it) into a table (a
/// blocking call).
fn replay(part: &Partition, until: Option<u64>) -> Result<OffsetTable, ReplayError> {
    let log = part.log();
    let mut table = Replay::default();
    let mut offset = log.log_start_offset();
    let end = until.map_or(log.log_end_offset(), |u| u.min(log.log_end_offset()));
    while offset < end {
        let read = log.read(offset, REPLAY_READ_BYTES)?;
        if read.batches.is_empty() {
            break;
        }
        let before = offset;
        for slice in split_batches(&read.batches) {
            let Ok(bytes) = slice else { break };
            let Ok(batch) = RecordBatch::new(bytes) else {
                break;
            };
            let next = u64::try_from(batch.header.next_offset()).unwrap_or(offset);
            match batch.records(REPLAY_MAX_BATCH_BYTES) {
                Ok(set) => {
                    for record in set.iter() {
                        match record {
                            Ok(r) if r.offset >= offset as i64 && r.offset < end as i64 => {
                                let as_of = r
                                    .headers
                                    .iter()
                                    .find(|h| h.key == SNAPSHOT_HEADER)
                                    .and_then(|h| h.value?.try_into().ok())
                                    .map(i64::from_be_bytes);
                                table.record(r.offset, r.key, r.value, as_of)
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "skipping the rest of an offsets batch");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "skipping an offsets batch"),
            }
            offset = offset.max(next);
        }
        if offset == before {
            break;
        }
    }
    Ok(table.table)
}

/// Most records in one snapshot batch.
const SNAPSHOT_BATCH_RECORDS: usize = 10_000;

impl Coordinator {
    /// Compacts offsets partition `p` when it has grown past the threshold
    /// (see [`GroupConfig::offsets_compact_after_bytes`]): replays it to its
    /// end `E`, appends every live entry as a snapshot record "as of `E`"
    /// (see [`offsets::Replay`]), then deletes the segments wholly below
    /// `E`. A crash part way leaves the old segments, so nothing is lost;
    /// the commit that triggered it waits for it (about one replay).
    async fn compact_if_due(&self, p: i32, part: &Arc<Partition>, registry: &Registry) {
        let size = part.log().size_bytes();
        let after = lock(&self.compacted_size).get(&p).copied().unwrap_or(0);
        if size
            < self
                .config
                .offsets_compact_after_bytes
                .max(after.saturating_mul(2))
        {
            return;
        }
        if !lock(&self.compacting).insert(p) {
            return;
        }
        let result = self.write_snapshot(part, registry).await;
        lock(&self.compacting).remove(&p);
        match result {
            Ok((as_of, entries, deleted)) => {
                let size = part.log().size_bytes();
                lock(&self.compacted_size).insert(p, size);
                tracing::info!(
                    partition = p,
                    as_of,
                    entries,
                    segments_deleted = deleted,
                    size,
                    "offsets partition compacted"
                );
            }
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "offsets compaction failed; the log is kept whole")
            }
        }
    }

    async fn write_snapshot(
        &self,
        part: &Arc<Partition>,
        registry: &Registry,
    ) -> Result<(u64, usize, usize), String> {
        let reader = part.clone();
        let (as_of, table) = tokio::task::spawn_blocking(move || {
            let end = reader.log().log_end_offset();
            replay(&reader, Some(end)).map(|t| (end, t))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let entries: Vec<(Bytes, Option<Bytes>)> = table
            .entries()
            .map(|(k, c)| (k.encode(), Some(c.encode())))
            .collect();
        let as_of_i64 = i64::try_from(as_of).map_err(|e| e.to_string())?;
        for chunk in entries.chunks(SNAPSHOT_BATCH_RECORDS) {
            append(part, chunk, registry, Some(as_of_i64))
                .await
                .map_err(|e| format!("appending the snapshot: {e:?}"))?;
        }
        let owner = part.clone();
        let deleted = tokio::task::spawn_blocking(move || owner.log().delete_segments_below(as_of))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok((as_of, entries.len(), deleted.segments_deleted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_land_where_kafka_puts_them() {
        // Java: "my-group".hashCode() == -1906497762; & 0x7fffffff % 50 == 36.
        assert_eq!(offsets_partition("my-group", 50), 36);
        assert_eq!(offsets_partition("", 8), 0);
        let long = "a-long-group-name-whose-hash-overflows";
        assert!((0..8).contains(&offsets_partition(long, 8)));
        assert_eq!(offsets_partition("x", 0), 0);
    }

    #[test]
    fn addresses_split() {
        assert_eq!(
            split_address("127.0.0.1:9092"),
            Some(("127.0.0.1".into(), 9092))
        );
        assert_eq!(split_address("[::1]:9"), Some(("::1".into(), 9)));
        assert_eq!(split_address("nope"), None);
    }
}

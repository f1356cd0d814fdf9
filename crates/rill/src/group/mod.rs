//! A member of a consumer group: [`crate::Rill::consumer_group`].
//!
//! The group's coordinator (an SPU) decides who is in the group; the
//! members decide who reads what. On every rebalance each member joins
//! (JoinGroup), the leader the coordinator picked splits the partitions of
//! the subscribed topics with the range assignor (`protocol`) and hands the
//! split out (SyncGroup), and each member reads its partitions from the
//! group's committed offsets (OffsetFetch), or from the reset position
//! where nothing is committed. A background task heartbeats; a rebalance
//! it hears of is carried out on the next `next`/`try_next` call.
//!
//! Delivery is at least once: the offset committed for a partition is the
//! one after the last record `next` returned. Records returned after the
//! last commit may be read again by whoever holds the partition next.
//! Before partitions are given up in a rebalance, and on
//! [`GroupConsumer::close`], the positions are committed when auto-commit
//! is on, so the window is only what a member that dies read since its
//! last commit.

mod coordinator;
pub(crate) mod protocol;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::ClientInner;
use crate::connection::Connection;
use crate::consumer::{ConsumerConfig, ConsumerRecord, MultiPartitionStream, Offset};
use crate::RillError;

pub(crate) use coordinator::find_coordinator;
use coordinator::{is_coordinator_gone, Generation};

/// How long a member waits before asking again after the coordinator was
/// lost or a join was refused with a retriable error.
const REJOIN_BACKOFF: Duration = Duration::from_millis(200);

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
}

/// What a rebalance did to this member, as its callback is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebalance {
    /// These partitions are no longer this member's (their positions were
    /// committed first when auto-commit is on). Called before rejoining.
    Revoked(Vec<TopicPartition>),
    /// These partitions are this member's from now on (possibly none).
    Assigned(Vec<TopicPartition>),
}

/// Called on each rebalance; see [`GroupConfig::on_rebalance`].
pub type RebalanceCallback = Arc<dyn Fn(&Rebalance) + Send + Sync>;

/// Settings of a group member. The defaults are Kafka's consumer's, except
/// the session timeout (10 s, the classic protocol's default).
#[derive(Clone)]
pub struct GroupConfig {
    /// How long the coordinator keeps a member that stopped heartbeating
    /// (`session.timeout.ms`); the SPU accepts 6 s to 30 min.
    pub session_timeout: Duration,
    /// How long a rebalance waits for members to rejoin
    /// (`max.poll.interval.ms`): a member must call `next`/`try_next`
    /// within this time of a rebalance starting, or it is dropped.
    pub rebalance_timeout: Duration,
    /// Time between heartbeats (`heartbeat.interval.ms`); keep it well
    /// below the session timeout.
    pub heartbeat_interval: Duration,
    /// Commit the positions this often (`auto.commit.interval.ms`), and
    /// before partitions are revoked and on close; `None`: only
    /// [`GroupConsumer::commit`] commits.
    pub auto_commit: Option<Duration>,
    /// Where a partition with no committed offset (or one outside the log,
    /// such as below a retention cut) is read from (`auto.offset.reset`):
    /// `Offset::End` (Kafka's `latest`, the default) or `Offset::Beginning`
    /// (`earliest`); any [`Offset`] is accepted.
    pub reset: Offset,
    /// How partitions are fetched.
    pub consumer: ConsumerConfig,
    /// Told of each revocation and assignment, on the task that calls
    /// `next`/`try_next`.
    pub on_rebalance: Option<RebalanceCallback>,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            auto_commit: Some(Duration::from_secs(5)),
            reset: Offset::End,
            consumer: ConsumerConfig::default(),
            on_rebalance: None,
        }
    }
}

impl std::fmt::Debug for GroupConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConfig")
            .field("session_timeout", &self.session_timeout)
            .field("rebalance_timeout", &self.rebalance_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("auto_commit", &self.auto_commit)
            .field("reset", &self.reset)
            .field("consumer", &self.consumer)
            .field("on_rebalance", &self.on_rebalance.is_some())
            .finish()
    }
}

impl GroupConfig {
    fn check(&self) -> Result<(), RillError> {
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.session_timeout {
            return Err(RillError::Config(format!(
                "heartbeat interval {:?} must be above 0 and below the session timeout {:?}",
                self.heartbeat_interval, self.session_timeout
            )));
        }
        if self.auto_commit.is_some_and(|d| d.is_zero()) {
            return Err(RillError::Config(
                "auto-commit interval must be above 0".into(),
            ));
        }
        Ok(())
    }
}

/// A record read by a group member, with its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// The topic it came from.
    pub topic: Arc<str>,
    /// The record (its partition, offset, key, value, headers).
    pub record: ConsumerRecord,
}

/// What the heartbeat task (or a failed commit) found: the member must
/// rejoin, maybe as a new member, maybe at a coordinator found again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Trouble {
    rejoin: bool,
    new_member: bool,
    find_coordinator: bool,
}

impl Trouble {
    fn from_error(e: &RillError) -> Option<Trouble> {
        let code = match e {
            RillError::Broker { code, .. } => Some(*code),
            _ => None,
        };
        if is_coordinator_gone(e) {
            return Some(Trouble {
                rejoin: true,
                new_member: false,
                find_coordinator: true,
            });
        }
        let code = code?;
        if code == ResponseError::UnknownMemberId.code() {
            return Some(Trouble {
                rejoin: true,
                new_member: true,
                find_coordinator: false,
            });
        }
        let rejoin = [
            ResponseError::RebalanceInProgress.code(),
            ResponseError::IllegalGeneration.code(),
        ]
        .contains(&code);
        rejoin.then_some(Trouble {
            rejoin: true,
            ..Trouble::default()
        })
    }

    fn merge(&mut self, other: Trouble) {
        self.rejoin |= other.rejoin;
        self.new_member |= other.new_member;
        self.find_coordinator |= other.find_coordinator;
    }
}

/// One assigned topic: its stream and the position of each partition (the
/// offset after the last record returned).
#[derive(Debug)]
struct Assigned {
    topic: Arc<str>,
    stream: MultiPartitionStream,
    positions: BTreeMap<u32, i64>,
}

/// A member of a consumer group, reading the partitions the group gives
/// it. Made by [`crate::Rill::consumer_group`]; joins on the first
/// `next`/`try_next`. Dropping it stops its heartbeats (the coordinator
/// drops it after the session timeout); [`GroupConsumer::close`] leaves at
/// once.
#[derive(Debug)]
pub struct GroupConsumer {
    client: Arc<ClientInner>,
    group: String,
    topics: Vec<String>,
    config: GroupConfig,
    conn: Option<Arc<Connection>>,
    coordinator_addr: Option<String>,
    /// Kept across rejoins (a rejoin as the same member is cheaper).
    member_id: String,
    gen: Option<Generation>,
    assigned: Vec<Assigned>,
    /// The group's committed offset of each assigned partition, as known.
    committed: BTreeMap<(String, i32), i64>,
    trouble: watch::Sender<Trouble>,
    heartbeat: Option<JoinHandle<()>>,
    next_commit: Option<Instant>,
    /// Which assigned topic is read first next time (round robin).
    turn: usize,
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

impl GroupConsumer {
    pub(crate) async fn new(
        client: Arc<ClientInner>,
        group: &str,
        topics: &[&str],
        config: GroupConfig,
    ) -> Result<Self, RillError> {
        config.check()?;
        if group.is_empty() {
            return Err(RillError::Config("the group id is empty".into()));
        }
        if topics.is_empty() {
            return Err(RillError::Config("no topics to subscribe to".into()));
        }
        let mut names: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        names.sort();
        names.dedup();
        for t in &names {
            client.partitions(t).await?;
        }
        Ok(Self {
            client,
            group: group.to_owned(),
            topics: names,
            config,
            conn: None,
            coordinator_addr: None,
            member_id: String::new(),
            gen: None,
            assigned: Vec::new(),
            committed: BTreeMap::new(),
            trouble: watch::channel(Trouble::default()).0,
            heartbeat: None,
            next_commit: None,
            turn: 0,
        })
    }

    /// The group id.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The member id the coordinator gave (empty before the first join).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The generation joined (-1 before the first join).
    pub fn generation(&self) -> i32 {
        self.gen.as_ref().map_or(-1, |g| g.generation)
    }

    /// The partitions this member reads now, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let mut out: Vec<TopicPartition> = self
            .assigned
            .iter()
            .flat_map(|a| {
                a.positions.keys().map(|p| TopicPartition {
                    topic: a.topic.to_string(),
                    partition: *p,
                })
            })
            .collect();
        out.sort();
        out
    }

    /// The next offset to read of each assigned partition.
    pub fn positions(&self) -> BTreeMap<TopicPartition, i64> {
        self.assigned
            .iter()
            .flat_map(|a| {
                a.positions.iter().map(|(p, o)| {
                    (
                        TopicPartition {
                            topic: a.topic.to_string(),
                            partition: *p,
                        },
                        *o,
                    )
                })
            })
            .collect()
    }

    /// The next record of any assigned partition, waiting for one. Joins
    /// the group first if needed, and carries out a rebalance the
    /// heartbeats heard of.
    pub async fn next(&mut self) -> Result<GroupRecord, RillError> {
        loop {
            self.maintain().await?;
            // Records already fetched come without building a future per
            // topic (the common case while reading a backlog).
            if let Some((i, record)) = self.take_buffered() {
                return Ok(self.returned(i, record));
            }
            let mut told = self.trouble.subscribe();
            if told.borrow().rejoin {
                continue;
            }
            let commit_at = self.next_commit;
            let first = self.turn;
            let got = tokio::select! {
                r = next_of_any(&mut self.assigned, first) => Some(r),
                _ = told.changed() => None,
                _ = sleep_until(commit_at) => None,
            };
            if let Some(r) = got {
                let (i, record) = r?;
                return Ok(self.returned(i, record));
            }
        }
    }

    /// The next record if one comes within the SPUs' long-poll wait; `None`
    /// once every assigned partition's leader answered with nothing new (or
    /// nothing is assigned). Joins or rebalances first, as `next`.
    pub async fn try_next(&mut self) -> Result<Option<GroupRecord>, RillError> {
        self.maintain().await?;
        let n = self.assigned.len();
        for k in 0..n {
            let i = (self.turn + k) % n;
            if let Some(record) = self.assigned[i].stream.try_next().await? {
                return Ok(Some(self.returned(i, record)));
            }
        }
        Ok(None)
    }

    /// Commits the position of every assigned partition (the offset after
    /// the last record returned). Fails with the coordinator's error when
    /// the group rebalanced meanwhile (`REBALANCE_IN_PROGRESS`,
    /// `ILLEGAL_GENERATION`, `UNKNOWN_MEMBER_ID`); the member then rejoins
    /// on its next read, and another member may read those records again.
    pub async fn commit(&mut self) -> Result<(), RillError> {
        let Some(gen) = self.gen.clone() else {
            return Ok(());
        };
        let mut due = BTreeMap::new();
        for a in &self.assigned {
            for (p, o) in &a.positions {
                let key = (a.topic.to_string(), *p as i32);
                if self.committed.get(&key) != Some(o) {
                    due.insert(key, *o);
                }
            }
        }
        if due.is_empty() {
            return Ok(());
        }
        let conn = self.connection().await?;
        match coordinator::commit(&conn, &self.group, &gen, &due).await {
            Ok(()) => {
                self.committed.extend(due);
                Ok(())
            }
            Err(e) => {
                if let Some(t) = Trouble::from_error(&e) {
                    self.trouble.send_modify(|cur| cur.merge(t));
                }
                Err(e)
            }
        }
    }

    /// Commits (when auto-commit is on), tells the callback its partitions
    /// are revoked, and leaves the group at once, so the others take over
    /// its partitions without waiting for its session to lapse.
    pub async fn close(mut self) -> Result<(), RillError> {
        self.stop_heartbeat();
        let Some(gen) = self.gen.clone() else {
            return Ok(());
        };
        let committed = if self.config.auto_commit.is_some() {
            self.commit().await
        } else {
            Ok(())
        };
        let revoked = self.assignment();
        self.assigned.clear();
        self.tell(Rebalance::Revoked(revoked));
        let conn = self.connection().await?;
        coordinator::leave(&conn, &self.group, &gen.member_id).await?;
        self.gen = None;
        committed
    }

    /// This member as a `futures_core::Stream` of records (see
    /// [`GroupRecordStream`]).
    pub fn into_stream(self) -> GroupRecordStream {
        GroupRecordStream {
            idle: Some(self),
            pending: None,
        }
    }

    /// A record already fetched, from the topic whose turn it is on.
    fn take_buffered(&mut self) -> Option<(usize, ConsumerRecord)> {
        let n = self.assigned.len();
        (0..n).find_map(|k| {
            let i = (self.turn + k) % n;
            self.assigned[i].stream.next_buffered().map(|r| (i, r))
        })
    }

    fn returned(&mut self, i: usize, record: ConsumerRecord) -> GroupRecord {
        let a = &mut self.assigned[i];
        a.positions.insert(record.partition, record.offset + 1);
        self.turn = i + 1;
        GroupRecord {
            topic: a.topic.clone(),
            record,
        }
    }

    /// Joins if not a member, rebalances if told to, commits if due.
    async fn maintain(&mut self) -> Result<(), RillError> {
        if self.gen.is_none() || self.trouble.borrow().rejoin {
            self.rejoin().await?;
        }
        if let (Some(at), Some(every)) = (self.next_commit, self.config.auto_commit) {
            if Instant::now() >= at {
                self.next_commit = Some(Instant::now() + every);
                if let Err(e) = self.commit().await {
                    tracing::warn!(group = %self.group, error = %e, "auto-commit failed");
                }
            }
        }
        Ok(())
    }

    async fn connection(&mut self) -> Result<Arc<Connection>, RillError> {
        if let Some(c) = self.conn.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let (conn, addr) = find_coordinator(&self.client, &self.group).await?;
        self.conn = Some(conn.clone());
        self.coordinator_addr = Some(addr);
        Ok(conn)
    }

    fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }

    fn tell(&self, event: Rebalance) {
        if let Some(cb) = &self.config.on_rebalance {
            cb(&event);
        }
    }

    /// Gives up the current partitions (committing them first when
    /// auto-commit is on) and joins until a generation is complete.
    async fn rejoin(&mut self) -> Result<(), RillError> {
        if self.gen.is_some() && !self.assigned.is_empty() {
            if self.config.auto_commit.is_some() {
                if let Err(e) = self.commit().await {
                    tracing::info!(group = %self.group, error = %e, "commit before rebalance failed");
                }
            }
            let revoked = self.assignment();
            self.assigned.clear();
            self.tell(Rebalance::Revoked(revoked));
        }
        self.stop_heartbeat();
        self.gen = None;
        let give_up_at = Instant::now() + self.config.rebalance_timeout;
        loop {
            let trouble = self.trouble.send_replace(Trouble::default());
            if trouble.new_member {
                self.member_id.clear();
            }
            if trouble.find_coordinator {
                self.conn = None;
            }
            let attempt = async {
                let conn = self.connection().await?;
                self.join_and_sync(&conn).await
            }
            .await;
            match attempt {
                Ok(()) => break,
                Err(e) if Instant::now() < give_up_at => match Trouble::from_error(&e) {
                    Some(t) => {
                        tracing::debug!(group = %self.group, error = %e, "joining again");
                        self.trouble.send_modify(|cur| cur.merge(t));
                        tokio::time::sleep(REJOIN_BACKOFF).await;
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
        self.start_heartbeat();
        self.next_commit = self.config.auto_commit.map(|d| Instant::now() + d);
        self.tell(Rebalance::Assigned(self.assignment()));
        Ok(())
    }

    async fn join_and_sync(&mut self, conn: &Arc<Connection>) -> Result<(), RillError> {
        let metadata = Bytes::from(protocol::encode_subscription(&self.topics));
        let group = self.group.clone();
        let (session, rebalance) = (self.config.session_timeout, self.config.rebalance_timeout);
        let join = |member_id: String| {
            let metadata = metadata.clone();
            let conn = conn.clone();
            let group = group.clone();
            async move {
                coordinator::join(
                    &conn,
                    &group,
                    &member_id,
                    session,
                    rebalance,
                    protocol::RANGE,
                    metadata,
                )
                .await
            }
        };
        let mut joined = join(self.member_id.clone()).await?;
        if joined.generation == -1 {
            // JoinGroup v4+: a new member first learns its id.
            self.member_id = joined.member_id.clone();
            joined = join(self.member_id.clone()).await?;
        }
        self.member_id = joined.member_id.clone();
        let gen = Generation {
            generation: joined.generation,
            member_id: joined.member_id.clone(),
        };
        let assignments = if joined.leader == joined.member_id {
            self.assign(&joined.members).await?
        } else {
            Vec::new()
        };
        let bytes = coordinator::sync(
            conn,
            &self.group,
            &gen,
            &joined.protocol,
            assignments,
            self.config.rebalance_timeout,
        )
        .await?;
        let mine = if bytes.is_empty() {
            BTreeMap::new()
        } else {
            protocol::decode_assignment(&bytes).ok_or_else(|| {
                RillError::Protocol(format!(
                    "group {:?}: the assignment from the leader is not Kafka's consumer protocol",
                    self.group
                ))
            })?
        };
        self.start_reading(conn, &mine).await?;
        self.gen = Some(gen);
        Ok(())
    }

    /// As the group's leader: every member's partitions (range assignor).
    async fn assign(
        &self,
        members: &[(String, Bytes)],
    ) -> Result<Vec<(String, Vec<u8>)>, RillError> {
        let mut subscriptions = BTreeMap::new();
        for (member, metadata) in members {
            let topics = protocol::decode_subscription(metadata).unwrap_or_else(|| {
                tracing::warn!(group = %self.group, %member, "a member's subscription is unreadable: it gets nothing");
                Vec::new()
            });
            subscriptions.insert(member.clone(), topics);
        }
        let mut counts = BTreeMap::new();
        for topic in subscriptions.values().flatten() {
            if counts.contains_key(topic) {
                continue;
            }
            match self.client.partitions(topic).await {
                Ok(n) => {
                    counts.insert(topic.clone(), n);
                }
                Err(e) => {
                    tracing::warn!(group = %self.group, %topic, error = %e, "a subscribed topic is not assigned")
                }
            }
        }
        Ok(protocol::range_assign(&subscriptions, &counts)
            .into_iter()
            .map(|(m, a)| (m, protocol::encode_assignment(&a)))
            .collect())
    }

    /// Positions for `mine` (committed, else the reset policy) and a
    /// stream per topic.
    async fn start_reading(
        &mut self,
        conn: &Connection,
        mine: &BTreeMap<String, Vec<i32>>,
    ) -> Result<(), RillError> {
        let mine: BTreeMap<String, Vec<i32>> = mine
            .iter()
            .filter(|(t, ps)| self.topics.contains(t) && !ps.is_empty())
            .map(|(t, ps)| (t.clone(), ps.clone()))
            .collect();
        let committed = coordinator::fetch_offsets(conn, &self.group, &mine).await?;
        self.committed = committed.clone();
        let mut assigned = Vec::new();
        for (topic, parts) in &mine {
            let mut positions = BTreeMap::new();
            for &p in parts {
                let Ok(index) = u32::try_from(p) else {
                    continue;
                };
                let consumer = crate::PartitionConsumer {
                    client: self.client.clone(),
                    topic: topic.clone(),
                    partition: index,
                    config: self.config.consumer.clone(),
                };
                let start = match committed.get(&(topic.clone(), p)) {
                    Some(&c) => {
                        let begin = consumer.start_offset(Offset::Beginning).await?;
                        let end = consumer.start_offset(Offset::End).await?;
                        if (begin..=end).contains(&c) {
                            c
                        } else {
                            tracing::info!(group = %self.group, %topic, partition = p, committed = c, begin, end, "committed offset outside the log: reset");
                            consumer.start_offset(self.config.reset).await?
                        }
                    }
                    None => consumer.start_offset(self.config.reset).await?,
                };
                positions.insert(index, start);
            }
            let stream = MultiPartitionStream::new(
                self.client.clone(),
                topic,
                self.config.consumer.clone(),
                positions.iter().map(|(p, o)| (*p, *o)),
            );
            assigned.push(Assigned {
                topic: Arc::from(topic.as_str()),
                stream,
                positions,
            });
        }
        self.assigned = assigned;
        Ok(())
    }

    fn start_heartbeat(&mut self) {
        let (Some(addr), Some(gen)) = (self.coordinator_addr.clone(), self.gen.clone()) else {
            return;
        };
        let trouble = self.trouble.clone();
        let group = self.group.clone();
        let every = self.config.heartbeat_interval;
        self.heartbeat = Some(tokio::spawn(async move {
            heartbeat_loop(addr, group, gen, every, trouble).await;
        }));
    }
}

/// Heartbeats every `every` on a connection of its own (a JoinGroup parked
/// on the member's main connection must not hold them up), telling the
/// member when it must rejoin. Ends when the member is no longer in the
/// generation.
async fn heartbeat_loop(
    addr: String,
    group: String,
    gen: Generation,
    every: Duration,
    trouble: watch::Sender<Trouble>,
) {
    let mut conn: Option<Arc<Connection>> = None;
    loop {
        tokio::time::sleep(every).await;
        let c = match conn.as_ref().filter(|c| !c.is_closed()) {
            Some(c) => c.clone(),
            None => match Connection::connect(&addr).await {
                Ok(c) => {
                    conn = Some(c.clone());
                    c
                }
                Err(e) => {
                    tracing::debug!(%group, error = %e, "heartbeat: coordinator unreachable");
                    trouble.send_modify(|t| t.merge(Trouble::from_error(&e).unwrap_or_default()));
                    return;
                }
            },
        };
        match coordinator::heartbeat(&c, &group, &gen).await {
            Ok(()) => {}
            Err(e) => {
                let Some(t) = Trouble::from_error(&e) else {
                    tracing::warn!(%group, error = %e, "heartbeat failed");
                    continue;
                };
                trouble.send_modify(|cur| cur.merge(t));
                // In a join phase the coordinator still wants heartbeats
                // until the member rejoins; otherwise it is out.
                if e.code() != Some(ResponseError::RebalanceInProgress.code()) {
                    return;
                }
            }
        }
    }
}

/// The next record of any of `assigned`, starting with `first` (so no
/// topic starves another); waits forever when nothing is assigned.
async fn next_of_any(
    assigned: &mut [Assigned],
    first: usize,
) -> Result<(usize, ConsumerRecord), RillError> {
    use std::future::Future;
    use std::pin::Pin;
    type Next<'a> =
        Pin<Box<dyn Future<Output = (usize, Result<ConsumerRecord, RillError>)> + Send + 'a>>;
    let n = assigned.len();
    if n == 0 {
        return std::future::pending().await;
    }
    let mut futures: Vec<(usize, Next<'_>)> = assigned
        .iter_mut()
        .enumerate()
        .map(|(i, a)| {
            let f: Next<'_> = Box::pin(async move { (i, a.stream.next().await) });
            ((i + n - first % n) % n, f)
        })
        .collect();
    futures.sort_by_key(|(order, _)| *order);
    let (i, r) = std::future::poll_fn(|cx| {
        for (_, f) in futures.iter_mut() {
            if let std::task::Poll::Ready(x) = f.as_mut().poll(cx) {
                return std::task::Poll::Ready(x);
            }
        }
        std::task::Poll::Pending
    })
    .await;
    Ok((i, r?))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// A [`futures_core::Stream`] of a group member's records, from
/// [`GroupConsumer::into_stream`]. It never ends by itself; an error is
/// yielded once and the stream goes on.
pub struct GroupRecordStream {
    idle: Option<GroupConsumer>,
    #[allow(clippy::type_complexity)]
    pending: Option<
        std::pin::Pin<
            Box<
                dyn std::future::Future<Output = (Result<GroupRecord, RillError>, GroupConsumer)>
                    + Send,
            >,
        >,
    >,
}

impl std::fmt::Debug for GroupRecordStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupRecordStream")
            .field("waiting", &self.pending.is_some())
            .finish()
    }
}

impl futures_core::Stream for GroupRecordStream {
    type Item = Result<GroupRecord, RillError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.pending.is_none() {
            let Some(mut member) = this.idle.take() else {
                return std::task::Poll::Ready(None);
            };
            this.pending = Some(Box::pin(async move {
                let r = member.next().await;
                (r, member)
            }));
        }
        let Some(fut) = this.pending.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        match fut.as_mut().poll(cx) {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready((item, member)) => {
                this.pending = None;
                this.idle = Some(member);
                std::task::Poll::Ready(Some(item))
            }
        }
    }
}

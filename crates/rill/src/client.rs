//! `Rill`: the handle to a cluster. It keeps a connection to the SPU it was
//! given (reconnecting with backoff when it breaks) and, in a cluster of
//! several SPUs, one to each partition leader it sends to, as the last
//! Metadata answer placed them; it hands out producers and the admin.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::routes::{describe_partitions, PartitionDescription, Route, Routes};
use crate::{ResponseError, RillError};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = ResponseError::UnknownTopicOrPartition.code();
const LEADER_NOT_AVAILABLE: i16 = ResponseError::LeaderNotAvailable.code();

/// Where `Rill::connect()` looks when neither `RILL_ADDR` nor a profile says.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9092";
/// Attempts to reconnect before an operation gives up.
const RECONNECT_ATTEMPTS: u32 = 5;
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// Attempts at a Metadata request whose connection broke or whose answer
/// did not come (each on whatever connection is good by then).
const METADATA_ATTEMPTS: u32 = 3;
/// How long a Metadata answer may take before its connection is dropped.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster address: `RILL_ADDR`, else the profile `rill cluster start`
/// wrote (`$RILL_HOME/config.toml`, default `~/.rill/config.toml`), else
/// `127.0.0.1:9092`.
pub fn discover_addr() -> String {
    if let Ok(addr) = std::env::var("RILL_ADDR") {
        if !addr.trim().is_empty() {
            return addr.trim().to_owned();
        }
    }
    let home = std::env::var_os("RILL_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".rill")));
    if let Some(text) = home.and_then(|h| std::fs::read_to_string(h.join("config.toml")).ok()) {
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == "addr" {
                    return v.trim().trim_matches('"').to_owned();
                }
            }
        }
    }
    DEFAULT_ADDR.to_owned()
}

/// One connection slot per SPU address: connecting to one SPU (which may
/// be down, and take a while to give up on) never holds up the others.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>;

/// The client's shared state: connections (one per SPU) and routes.
///
/// On errors: a broken connection is replaced on the next request to that
/// SPU; Metadata (and the other requests any SPU answers) go to the
/// bootstrap SPU or, when it cannot be reached and the client has seen a
/// cluster, to any other SPU an earlier answer named.
#[derive(Debug)]
pub(crate) struct ClientInner {
    pub(crate) addr: String,
    /// Connection slots by address; bounded by the SPUs Metadata names.
    slots: std::sync::Mutex<HashMap<String, Slot>>,
    routes: std::sync::Mutex<Routes>,
}

impl ClientInner {
    fn new(addr: &str, conn: Arc<Connection>) -> Self {
        let slots = HashMap::from([(
            addr.to_owned(),
            Arc::new(tokio::sync::Mutex::new(Some(conn))),
        )]);
        Self {
            addr: addr.to_owned(),
            slots: std::sync::Mutex::new(slots),
            routes: std::sync::Mutex::default(),
        }
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot(&self, addr: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(addr.to_owned()).or_default().clone()
    }

    /// The live connection to `addr`, connecting (up to `attempts` times,
    /// with backoff) if there is none or it broke.
    async fn connection_to(&self, addr: &str, attempts: u32) -> Result<Arc<Connection>, RillError> {
        let slot = self.slot(addr);
        let mut slot = slot.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = connect_with_retries(addr, attempts, None).await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// The open connection to `addr`, if there is one and nobody is
    /// connecting to it right now.
    fn live_connection(&self, addr: &str) -> Option<Arc<Connection>> {
        let slot = self.slot(addr);
        let guard = slot.try_lock().ok()?;
        guard.as_ref().filter(|c| !c.is_closed()).cloned()
    }

    /// The live connection to the SPU the client was given, reconnecting
    /// (with backoff) if it broke.
    pub async fn connection(&self) -> Result<Arc<Connection>, RillError> {
        self.connection_to(&self.addr, RECONNECT_ATTEMPTS).await
    }

    /// A connection for a request any SPU answers (Metadata, producer ids,
    /// topic administration): the bootstrap SPU's, else (once a Metadata
    /// answer listed several SPUs) any open one, else the first SPU ever
    /// named that accepts a connection, trying each in turn, in rounds with
    /// backoff. With one SPU this is [`Self::connection`].
    pub async fn any_connection(&self) -> Result<Arc<Connection>, RillError> {
        let others: Vec<String> = self
            .routes()
            .known_addrs()
            .into_iter()
            .filter(|a| *a != self.addr)
            .collect();
        if others.is_empty() {
            return self.connection().await;
        }
        let candidates: Vec<&str> = std::iter::once(self.addr.as_str())
            .chain(others.iter().map(String::as_str))
            .collect();
        if let Some(c) = candidates.iter().find_map(|a| self.live_connection(a)) {
            return Ok(c);
        }
        let mut last = None;
        for round in 0..RECONNECT_ATTEMPTS {
            if round > 0 {
                tokio::time::sleep(RECONNECT_BACKOFF * round).await;
            }
            for addr in &candidates {
                match self.connection_to(addr, 1).await {
                    Ok(c) => return Ok(c),
                    Err(e) => last = Some(e),
                }
            }
        }
        Err(last.unwrap_or_else(|| RillError::Connect {
            addr: self.addr.clone(),
            reason: "no SPU to try".into(),
        }))
    }

    /// Whether the client follows partition leaders: a Metadata answer
    /// listed several SPUs.
    pub fn is_cluster(&self) -> bool {
        self.routes().is_cluster()
    }

    /// Where requests for `topic`'s `partition` go, as the last Metadata
    /// answer placed its leader.
    pub(crate) fn route(&self, topic: &str, partition: u32) -> Route {
        match self.routes().route(topic, partition) {
            Route::Leader(addr) if addr == self.addr => Route::Bootstrap,
            route => route,
        }
    }

    /// The connection to SPU `id` if the last Metadata answer listed it
    /// as alive (`None` otherwise), trying to connect once. With one SPU
    /// that is the SPU the client was given, as it was reached.
    pub(crate) async fn spu_connection(&self, id: i32) -> Option<Arc<Connection>> {
        if !self.is_cluster() {
            return self.connection().await.ok();
        }
        let addr = self.routes().live_addr(id)?;
        let addr = if addr == self.addr {
            self.addr.clone()
        } else {
            addr
        };
        self.connection_to(&addr, 1).await.ok()
    }

    /// The connection for `route`; a partition with no leader is
    /// `LEADER_NOT_AVAILABLE` (retriable) for `what`.
    pub(crate) async fn route_connection(
        &self,
        route: &Route,
        what: impl FnOnce() -> String,
    ) -> Result<Arc<Connection>, RillError> {
        match route {
            Route::Bootstrap => self.connection().await,
            Route::Leader(addr) => self.connection_to(addr, RECONNECT_ATTEMPTS).await,
            Route::NoLeader => Err(RillError::broker(what(), LEADER_NOT_AVAILABLE, None)),
        }
    }

    /// A new connection of the caller's own to `route`'s SPU, for long
    /// polls: an SPU answers a connection's requests one at a time, so a
    /// Fetch parked on a shared connection would hold up the producers'
    /// and Metadata requests behind it. With `receive_buffer`, that many
    /// bytes of receive buffer are asked for before connecting (see
    /// `receive_buffer`).
    pub(crate) async fn own_connection(
        &self,
        route: &Route,
        receive_buffer: Option<usize>,
        what: impl FnOnce() -> String,
    ) -> Result<Arc<Connection>, RillError> {
        match route {
            Route::Bootstrap => {
                connect_with_retries(&self.addr, RECONNECT_ATTEMPTS, receive_buffer).await
            }
            Route::Leader(addr) => {
                connect_with_retries(addr, RECONNECT_ATTEMPTS, receive_buffer).await
            }
            Route::NoLeader => Err(RillError::broker(what(), LEADER_NOT_AVAILABLE, None)),
        }
    }

    /// The connection to the leader of `topic`'s `partition`, as the last
    /// Metadata answer placed it.
    pub async fn leader_connection(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Arc<Connection>, RillError> {
        let route = self.route(topic, partition);
        self.route_connection(&route, || format!("producing to {topic}-{partition}"))
            .await
    }

    /// Sends `req` to any SPU (see [`Self::any_connection`]) and learns
    /// the SPUs its answer lists. A connection lost on the way, or an
    /// answer that does not come, is tried again on another connection.
    pub async fn metadata(&self, req: MetadataRequest) -> Result<MetadataResponse, RillError> {
        let mut last = None;
        // With one SPU a lost connection is the caller's to see, as it was.
        let attempts = if self.is_cluster() {
            METADATA_ATTEMPTS
        } else {
            1
        };
        for _ in 0..attempts {
            let conn = self.any_connection().await?;
            let version = conn.version::<MetadataRequest>(12)?;
            match tokio::time::timeout(METADATA_TIMEOUT, conn.send(req.clone(), version)).await {
                Ok(Ok(resp)) => {
                    self.routes().learn(&resp);
                    return Ok(resp);
                }
                Ok(Err(e @ RillError::Transport { .. })) => last = Some(e),
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    // Its answer may still come and be taken for another's.
                    conn.abort();
                    last = Some(RillError::Timeout {
                        what: "Metadata".into(),
                        after: METADATA_TIMEOUT,
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| RillError::Protocol("no Metadata attempt made".into())))
    }

    /// `topic`'s partitions as the cluster describes them (noting where
    /// each partition's leader is).
    pub async fn topic_metadata(
        &self,
        topic: &str,
    ) -> Result<Vec<PartitionDescription>, RillError> {
        let req = MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_string(topic.to_owned())),
            ))]));
        let resp = self.metadata(req).await?;
        let t = resp
            .topics
            .first()
            .ok_or_else(|| RillError::Protocol("Metadata answer without the topic".into()))?;
        match t.error_code {
            0 => {
                let partitions = describe_partitions(t);
                self.routes().set_leaders(topic, &partitions);
                Ok(partitions)
            }
            UNKNOWN_TOPIC_OR_PARTITION => Err(RillError::TopicNotFound(topic.to_owned())),
            code => Err(RillError::broker(
                format!("Metadata for {topic:?}"),
                code,
                None,
            )),
        }
    }

    /// Partition count of `topic`, asking the cluster (and noting where
    /// each partition's leader is).
    pub async fn partitions(&self, topic: &str) -> Result<u32, RillError> {
        Ok(self.topic_metadata(topic).await?.len() as u32)
    }
}

/// Connects to `addr`, trying again with backoff.
async fn connect_with_retries(
    addr: &str,
    attempts: u32,
    receive_buffer: Option<usize>,
) -> Result<Arc<Connection>, RillError> {
    let mut last = None;
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(RECONNECT_BACKOFF * attempt).await;
        }
        match Connection::connect_with(addr, receive_buffer).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| RillError::Connect {
        addr: addr.to_owned(),
        reason: "no attempt made".into(),
    }))
}

/// A connection to a Rill cluster. Cheap to clone.
///
/// It starts with the SPU it is given. Once a Metadata answer lists several
/// SPUs it keeps a connection per SPU, sends each partition's requests to
/// its leader, and asks Metadata (and producer ids, and topic
/// administration) of the given SPU or, while that one cannot be reached,
/// of any other SPU an earlier answer named. With one SPU everything goes
/// to the given address, as it was reached. What producers and consumers do
/// on each error: [`crate::TopicProducer`], [`crate::MultiPartitionStream`].
#[derive(Debug, Clone)]
pub struct Rill {
    pub(crate) inner: Arc<ClientInner>,
}

impl Rill {
    /// Connects to the cluster found by [`discover_addr`].
    pub async fn connect() -> Result<Self, RillError> {
        Self::connect_to(&discover_addr()).await
    }

    /// Connects to the SPU at `addr` (`host:port`).
    pub async fn connect_to(addr: &str) -> Result<Self, RillError> {
        let conn = Connection::connect(addr).await?;
        Ok(Self {
            inner: Arc::new(ClientInner::new(addr, conn)),
        })
    }

    /// The `host:port` this handle connects to.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// A producer for `topic` with the default settings.
    pub async fn topic_producer(&self, topic: &str) -> Result<crate::TopicProducer, RillError> {
        self.topic_producer_with_config(
            topic,
            crate::TopicProducerConfigBuilder::default().build()?,
        )
        .await
    }

    /// A producer for `topic` with `config`.
    pub async fn topic_producer_with_config(
        &self,
        topic: &str,
        config: crate::TopicProducerConfig,
    ) -> Result<crate::TopicProducer, RillError> {
        let partitions = self.inner.partitions(topic).await?;
        crate::producer::TopicProducer::start(
            self.inner.clone(),
            topic.to_owned(),
            partitions,
            config,
        )
        .await
    }

    /// A consumer of one partition, with the default settings.
    pub async fn partition_consumer(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<crate::PartitionConsumer, RillError> {
        self.partition_consumer_with_config(topic, partition, crate::ConsumerConfig::default())
            .await
    }

    /// A consumer of one partition with `config`.
    pub async fn partition_consumer_with_config(
        &self,
        topic: &str,
        partition: u32,
        config: crate::ConsumerConfig,
    ) -> Result<crate::PartitionConsumer, RillError> {
        let partitions = self.inner.partitions(topic).await?;
        if partition >= partitions {
            return Err(RillError::broker(
                format!("consuming {topic}-{partition} ({partitions} partitions)"),
                UNKNOWN_TOPIC_OR_PARTITION,
                None,
            ));
        }
        Ok(crate::PartitionConsumer {
            client: self.inner.clone(),
            topic: topic.to_owned(),
            partition,
            config,
        })
    }

    /// Reads every partition of `topic` (or those in `partitions`) from
    /// `offset`, one Fetch for all of them per round.
    pub async fn consumer(
        &self,
        topic: &str,
        partitions: Option<&[u32]>,
        offset: crate::Offset,
        config: crate::ConsumerConfig,
    ) -> Result<crate::MultiPartitionStream, RillError> {
        let count = self.inner.partitions(topic).await?;
        let all: Vec<u32> = (0..count).collect();
        let wanted = partitions.unwrap_or(&all);
        if let Some(bad) = wanted.iter().find(|p| **p >= count) {
            return Err(RillError::broker(
                format!("consuming {topic}-{bad} ({count} partitions)"),
                UNKNOWN_TOPIC_OR_PARTITION,
                None,
            ));
        }
        crate::MultiPartitionStream::start(self.inner.clone(), topic, wanted, offset, config).await
    }

    /// A member of consumer group `group` reading `topics` (which must
    /// exist): the group's coordinator shares their partitions among its
    /// members, each partition read by one member, from where the group
    /// committed. The group is joined on the first read; see
    /// [`crate::GroupConsumer`] for the delivery promise and
    /// [`crate::GroupConfig`] for auto-commit, the reset policy and the
    /// rebalance callback.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rill::RillError> {
    /// use rill::{GroupConfig, Offset, Rill};
    /// let rill = Rill::connect().await?;
    /// let mut member = rill
    ///     .consumer_group("billing", &["orders"], GroupConfig {
    ///         reset: Offset::Beginning,
    ///         ..GroupConfig::default()
    ///     })
    ///     .await?;
    /// while let Some(r) = member.try_next().await? {
    ///     println!("{}-{}@{}", r.topic, r.record.partition, r.record.offset);
    /// }
    /// member.close().await?; // commits what was returned, leaves the group
    /// # Ok(())
    /// # }
    /// ```
    pub async fn consumer_group(
        &self,
        group: &str,
        topics: &[&str],
        config: crate::GroupConfig,
    ) -> Result<crate::GroupConsumer, RillError> {
        crate::GroupConsumer::new(self.inner.clone(), group, topics, config).await
    }

    /// Topic administration.
    pub fn admin(&self) -> crate::Admin {
        crate::Admin {
            client: self.inner.clone(),
        }
    }
}

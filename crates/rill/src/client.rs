//! `Rill`: the handle to a cluster. It keeps a connection to the SPU it was
//! given (reconnecting with backoff when it breaks) and, in a cluster of
//! several SPUs, one to each partition leader it sends to, as the last
//! Metadata answer placed them; it hands out producers and the admin.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::ResponseError;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = ResponseError::UnknownTopicOrPartition.code();
const LEADER_NOT_AVAILABLE: i16 = ResponseError::LeaderNotAvailable.code();
use crate::RillError;

/// Where `Rill::connect()` looks when neither `RILL_ADDR` nor a profile says.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9092";
/// Attempts to reconnect before an operation gives up.
const RECONNECT_ATTEMPTS: u32 = 5;
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);

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

/// Where requests for a partition go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// The SPU the client was pointed at: the only SPU there is, or the
    /// leader is not known yet (its answer will say if it is wrong).
    Bootstrap,
    /// The leader's advertised address.
    Leader(String),
    /// The partition has no leader now (`LEADER_NOT_AVAILABLE`).
    NoLeader,
}

/// What the last Metadata answers said about SPUs and leaders.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Node id → advertised `host:port`.
    brokers: BTreeMap<i32, String>,
    /// Topic → the leader's node id per partition (-1: none).
    leaders: HashMap<String, Vec<i32>>,
}

impl Routes {
    /// The route to `topic`'s `partition`. With one SPU (or none known)
    /// everything goes to the address the client was given, as it was
    /// reached: an SPU's advertised address may not be reachable from
    /// here (a proxy, a container), while the given one is.
    pub(crate) fn route(&self, topic: &str, partition: u32) -> Route {
        if self.brokers.len() <= 1 {
            return Route::Bootstrap;
        }
        match self
            .leaders
            .get(topic)
            .and_then(|l| l.get(partition as usize))
        {
            Some(-1) => Route::NoLeader,
            Some(id) => self
                .brokers
                .get(id)
                .map_or(Route::Bootstrap, |addr| Route::Leader(addr.clone())),
            None => Route::Bootstrap,
        }
    }
}

#[derive(Debug)]
pub(crate) struct ClientInner {
    addr: String,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
    routes: std::sync::Mutex<Routes>,
    /// Connections to leaders other than the bootstrap SPU, by address.
    leaders: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
}

impl ClientInner {
    fn new(addr: &str, conn: Arc<Connection>) -> Self {
        Self {
            addr: addr.to_owned(),
            conn: tokio::sync::Mutex::new(Some(conn)),
            routes: std::sync::Mutex::default(),
            leaders: tokio::sync::Mutex::default(),
        }
    }

    /// The live connection, reconnecting (with backoff) if it broke.
    pub async fn connection(&self) -> Result<Arc<Connection>, RillError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = connect_with_retries(&self.addr).await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// The connection to the leader of `topic`'s `partition`, as the last
    /// Metadata answer placed it.
    pub async fn leader_connection(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Arc<Connection>, RillError> {
        let route = self
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .route(topic, partition);
        match route {
            Route::Bootstrap => self.connection().await,
            Route::NoLeader => Err(RillError::broker(
                format!("producing to {topic}-{partition}"),
                LEADER_NOT_AVAILABLE,
                None,
            )),
            Route::Leader(addr) if addr == self.addr => self.connection().await,
            Route::Leader(addr) => {
                let mut conns = self.leaders.lock().await;
                if let Some(c) = conns.get(&addr).filter(|c| !c.is_closed()) {
                    return Ok(c.clone());
                }
                let c = connect_with_retries(&addr).await?;
                conns.insert(addr, c.clone());
                Ok(c)
            }
        }
    }

    /// Partition count of `topic`, asking the SPU (and noting where each
    /// partition's leader is).
    pub async fn partitions(&self, topic: &str) -> Result<u32, RillError> {
        let conn = self.connection().await?;
        let version = conn.version::<MetadataRequest>(12)?;
        let req = MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_string(topic.to_owned())),
            ))]));
        let resp = conn.send(req, version).await?;
        let t = resp
            .topics
            .first()
            .ok_or_else(|| RillError::Protocol("Metadata answer without the topic".into()))?;
        match t.error_code {
            0 => {
                let mut leaders = vec![-1; t.partitions.len()];
                for p in &t.partitions {
                    if let Some(slot) = usize::try_from(p.partition_index)
                        .ok()
                        .and_then(|i| leaders.get_mut(i))
                    {
                        *slot = if p.error_code == 0 { p.leader_id.0 } else { -1 };
                    }
                }
                let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
                routes.brokers = resp
                    .brokers
                    .iter()
                    .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
                    .collect();
                routes.leaders.insert(topic.to_owned(), leaders);
                Ok(t.partitions.len() as u32)
            }
            UNKNOWN_TOPIC_OR_PARTITION => Err(RillError::TopicNotFound(topic.to_owned())),
            code => Err(RillError::broker(
                format!("Metadata for {topic:?}"),
                code,
                None,
            )),
        }
    }
}

/// Connects to `addr`, trying again with backoff.
async fn connect_with_retries(addr: &str) -> Result<Arc<Connection>, RillError> {
    let mut last = None;
    for attempt in 0..RECONNECT_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(RECONNECT_BACKOFF * attempt).await;
        }
        match Connection::connect(addr).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| RillError::Connect {
        addr: addr.to_owned(),
        reason: "no attempt made".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spu_means_the_given_address_many_mean_the_leader() {
        let mut r = Routes::default();
        assert_eq!(r.route("t", 0), Route::Bootstrap, "nothing known yet");
        r.brokers.insert(0, "10.0.0.1:9092".into());
        r.leaders.insert("t".into(), vec![0, -1]);
        assert_eq!(
            r.route("t", 0),
            Route::Bootstrap,
            "one SPU: as it was reached"
        );
        r.brokers.insert(1, "127.0.0.1:9093".into());
        r.leaders.insert("t".into(), vec![1, -1, 0]);
        assert_eq!(r.route("t", 0), Route::Leader("127.0.0.1:9093".into()));
        assert_eq!(r.route("t", 1), Route::NoLeader);
        assert_eq!(r.route("t", 2), Route::Leader("10.0.0.1:9092".into()));
        assert_eq!(
            r.route("t", 7),
            Route::Bootstrap,
            "a partition not known yet"
        );
        assert_eq!(r.route("other", 0), Route::Bootstrap);
    }
}

/// A connection to a Rill cluster. Cheap to clone.
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

    /// Topic administration.
    pub fn admin(&self) -> crate::Admin {
        crate::Admin {
            client: self.inner.clone(),
        }
    }
}

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rill_storage::{Backend, FlushPolicy};

/// How an SPU runs. Every limit is named with its unit.
#[derive(Debug, Clone)]
pub struct SpuConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Host and port given to clients in Metadata; defaults to the bound
    /// address.
    pub advertised: Option<(String, u16)>,
    /// Where partition logs and topic metadata live.
    pub data_dir: PathBuf,
    /// This SPU's broker id in Metadata.
    pub node_id: i32,
    /// Largest request frame; a larger size prefix closes the connection
    /// before anything is allocated for it.
    pub max_frame_bytes: usize,
    /// Connections beyond this are closed as soon as they are accepted.
    pub max_connections: usize,
    /// A request not answered within this is abandoned and the connection
    /// closed; so is a connection whose request frame, once its first byte
    /// arrived, is not received whole within this (slow-loris clients).
    pub request_timeout: Duration,
    /// A connection silent this long between requests is closed (Kafka's
    /// `connections.max.idle.ms`, 10 minutes by default), so connections
    /// that never send anything do not hold `max_connections` slots forever.
    pub connection_idle_timeout: Duration,
    /// Longest a Fetch may wait for data, whatever the client asks.
    pub max_fetch_wait: Duration,
    /// Most record bytes in one Fetch response, whatever the client asks
    /// (Kafka's `fetch.max.bytes`); a first batch larger than this is still
    /// sent whole.
    pub max_fetch_bytes: usize,
    /// Producing to or asking Metadata for a missing topic creates it.
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic, and of CreateTopics with -1.
    pub default_partitions: i32,
    /// How often retention runs over every partition.
    pub retention_check_interval: Duration,
    /// Durability of every partition log.
    pub flush: FlushPolicy,
    /// Where partition logs are stored: `None` (the default) is the real
    /// file system. Tests put `rill_storage::SimBackend` here to fail
    /// writes or cut the power under a running SPU; topic metadata and
    /// producer-id blocks stay in files under `data_dir` either way.
    pub storage: Option<Arc<dyn Backend>>,
    /// `None` (the default): one SPU with its topic metadata in local
    /// files. `Some`: a member of a cluster whose metadata is in a shared
    /// store (design.md section 8); `node_id` is its SPU id there.
    pub cluster: Option<ClusterSettings>,
    /// Where to serve Prometheus metrics and health checks over HTTP
    /// (`/metrics`, `/health/live`, `/health/ready`); `None` (the
    /// default): not served. Port 0 picks a free port.
    pub metrics_listen: Option<SocketAddr>,
    /// Consumer groups: bounds on members, groups and timeouts, and the
    /// offsets topic's partition count.
    pub groups: crate::group::GroupConfig,
}

/// How an SPU joins a cluster.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// Where the cluster's metadata lives.
    pub store: ClusterStore,
    /// The SPU's registration lapses this long after it stops renewing it
    /// (it died or lost the store); its partitions then lose their leader.
    pub session_timeout: Duration,
    /// Kafka's `replica.lag.time.max.ms`: a follower that has not caught up
    /// with its leader for this long leaves the ISR.
    pub replica_lag_time_max: Duration,
}

/// The cluster's metadata store.
#[derive(Debug, Clone)]
pub enum ClusterStore {
    /// etcd at these endpoints (`http://127.0.0.1:2379`).
    Etcd(Vec<String>),
    /// A store in this process, shared by SPUs started with clones of it
    /// (simulation tests).
    Memory(rill_cluster::MemoryStore),
}

impl ClusterSettings {
    /// The default session timeout (`--session-timeout-ms`).
    pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_millis(6000);
    /// The default `replica.lag.time.max.ms` (Kafka's).
    pub const DEFAULT_REPLICA_LAG_TIME_MAX: Duration = Duration::from_secs(10);

    /// etcd at `endpoints`, default session timeout.
    pub fn etcd(endpoints: Vec<String>) -> Self {
        Self {
            store: ClusterStore::Etcd(endpoints),
            session_timeout: Self::DEFAULT_SESSION_TIMEOUT,
            replica_lag_time_max: Self::DEFAULT_REPLICA_LAG_TIME_MAX,
        }
    }
}

impl SpuConfig {
    /// Defaults for a local single-node cluster, data under `data_dir`.
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen,
            advertised: None,
            data_dir: data_dir.into(),
            node_id: 0,
            // Kafka's socket.request.max.bytes.
            max_frame_bytes: 100 * 1024 * 1024,
            max_connections: 1024,
            request_timeout: Duration::from_secs(30),
            connection_idle_timeout: Duration::from_secs(600),
            max_fetch_wait: Duration::from_secs(30),
            max_fetch_bytes: 55 * 1024 * 1024,
            auto_create_topics: false,
            default_partitions: 1,
            retention_check_interval: Duration::from_secs(5),
            flush: FlushPolicy::Never,
            storage: None,
            cluster: None,
            metrics_listen: None,
            groups: crate::group::GroupConfig::default(),
        }
    }
}

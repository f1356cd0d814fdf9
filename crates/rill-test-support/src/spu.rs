//! An SPU in the test process: `rill_spu::Spu` on `127.0.0.1:0` with its
//! data in a temp dir.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rill_spu::{Spu, SpuConfig, SpuError, SpuHandle};
use rill_storage::{Backend, FlushPolicy, SimBackend};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::KafkaClient;

/// How long a restart keeps trying to bind the old port: an aborted SPU
/// lets its listener go a moment later, not at once.
const REBIND_FOR: Duration = Duration::from_secs(5);

/// Settings for a [`TestSpu`]; what is not set is [`SpuConfig::new`]'s
/// default. Kept by the SPU and used again by every restart.
#[derive(Debug)]
pub struct TestSpuBuilder {
    /// The template; `listen` and `data_dir` are set at start.
    config: SpuConfig,
    sim: Option<SimBackend>,
}

impl TestSpuBuilder {
    /// Durability of every partition log.
    pub fn flush(mut self, flush: FlushPolicy) -> Self {
        self.config.flush = flush;
        self
    }

    /// Partition logs on this storage backend instead of files.
    pub fn storage(mut self, storage: Arc<dyn Backend>) -> Self {
        self.config.storage = Some(storage);
        self.sim = None;
        self
    }

    /// Partition logs on a simulated disk, which [`TestSpu::sim`] then
    /// hands out to fail writes or cut the power.
    pub fn sim(mut self, sim: SimBackend) -> Self {
        self.config.storage = Some(Arc::new(sim.clone()));
        self.sim = Some(sim);
        self
    }

    /// Producing to or asking Metadata for a missing topic creates it.
    pub fn auto_create_topics(mut self, on: bool) -> Self {
        self.config.auto_create_topics = on;
        self
    }

    /// The largest request frame.
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.config.max_frame_bytes = bytes;
        self
    }

    /// Connections beyond this are closed when accepted.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.config.max_connections = connections;
        self
    }

    /// Deadline for answering a request and for receiving a started frame.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// A connection silent this long between requests is closed.
    pub fn connection_idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.connection_idle_timeout = timeout;
        self
    }

    /// A member of a cluster whose metadata is `store` (shared by the SPUs
    /// of one test), as SPU `id`, its registration lapsing `session` after
    /// it stops renewing it.
    pub fn cluster_member(
        mut self,
        store: &rill_cluster::MemoryStore,
        id: i32,
        session: Duration,
    ) -> Self {
        self.config.node_id = id;
        self.config.cluster = Some(rill_spu::ClusterSettings {
            store: rill_spu::ClusterStore::Memory(store.clone()),
            session_timeout: session,
            replica_lag_time_max: rill_spu::ClusterSettings::DEFAULT_REPLICA_LAG_TIME_MAX,
        });
        self
    }

    /// Any other setting, by editing the config directly (`listen` and
    /// `data_dir` are overwritten at start).
    pub fn tune(mut self, tune: impl FnOnce(&mut SpuConfig)) -> Self {
        tune(&mut self.config);
        self
    }

    /// Starts the SPU on `127.0.0.1:0` with its data in a new temp dir.
    pub async fn start(self) -> TestSpu {
        let dir = tempfile::tempdir().expect("a temp dir for the SPU");
        let mut config = self.config;
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.data_dir = dir.path().join("data");
        let handle = Spu::start(config.clone()).await.expect("the SPU starts");
        let addr = handle.local_addr();
        // Restarts come back on the same port, so clients that know the
        // address reconnect.
        config.listen = addr;
        TestSpu {
            handle: Some(handle),
            addr,
            dir,
            config,
            sim: self.sim,
        }
    }
}

/// An SPU in this process, stopped by the test (or aborted when dropped).
///
/// Restarts ([`start_again`](Self::start_again), [`restart`](Self::restart),
/// [`crash_and_restart`](Self::crash_and_restart)) keep the port, the data
/// and every setting of the builder.
#[derive(Debug)]
pub struct TestSpu {
    /// `None` while stopped.
    pub handle: Option<SpuHandle>,
    /// Where it listens, the same across restarts.
    pub addr: SocketAddr,
    /// The temp dir; data lives in its `data` subdirectory.
    pub dir: tempfile::TempDir,
    config: SpuConfig,
    sim: Option<SimBackend>,
}

impl TestSpu {
    /// Settings first, then [`TestSpuBuilder::start`].
    pub fn builder() -> TestSpuBuilder {
        TestSpuBuilder {
            config: SpuConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), PathBuf::new()),
            sim: None,
        }
    }

    /// An SPU with the default settings.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// An SPU with settings edited by `tune`.
    pub async fn start_with(tune: impl FnOnce(&mut SpuConfig)) -> Self {
        Self::builder().tune(tune).start().await
    }

    /// The address as `host:port`, for clients that take a string.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The SPU's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// The settings it runs with.
    pub fn config(&self) -> &SpuConfig {
        &self.config
    }

    /// The simulated disk; panics unless built with [`TestSpuBuilder::sim`].
    pub fn sim(&self) -> &SimBackend {
        self.sim
            .as_ref()
            .expect("this TestSpu was not built with TestSpuBuilder::sim")
    }

    /// A raw Kafka client connected over TCP.
    pub async fn client(&self) -> KafkaClient {
        KafkaClient::connect(self.addr).await
    }

    /// Serves an in-memory stream as a connection (see
    /// [`SpuHandle::serve_stream`]); panics if the SPU is stopped or every
    /// connection slot is taken.
    pub fn serve_stream<S>(&self, stream: S) -> tokio::task::JoinHandle<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.handle
            .as_ref()
            .expect("the SPU is running")
            .serve_stream(stream)
            .expect("a free connection slot")
    }

    /// Stops gracefully (flushing the logs); [`start_again`](Self::start_again)
    /// brings it back on the same port and data.
    pub async fn stop_for_now(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }

    /// Starts again on the same port and data with the same settings.
    pub async fn start_again(&mut self) {
        assert!(self.handle.is_none(), "the SPU is still running");
        let started = tokio::time::Instant::now();
        let handle = loop {
            match Spu::start(self.config.clone()).await {
                Ok(h) => break h,
                Err(SpuError::Bind { .. }) if started.elapsed() < REBIND_FOR => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the SPU did not start again on {}: {e}", self.addr),
            }
        };
        self.handle = Some(handle);
    }

    /// Stops gracefully and starts again.
    pub async fn restart(&mut self) {
        self.stop_for_now().await;
        self.start_again().await;
    }

    /// Stops at once without flushing, as `kill -9` would (what was written
    /// stays in the page cache).
    pub fn crash(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }

    /// [`crash`](Self::crash), then [`start_again`](Self::start_again).
    pub async fn crash_and_restart(&mut self) {
        self.crash();
        self.start_again().await;
    }

    /// `kill -9`, then the simulated disk loses what was not synced, then a
    /// start on what it kept. Needs [`TestSpuBuilder::sim`].
    pub async fn crash_with_power_cut(&mut self) {
        self.crash();
        // Let the aborted tasks go before the disk changes under them.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.sim().power_cut();
        self.start_again().await;
    }

    /// Stops gracefully; the data goes with the temp dir.
    pub async fn stop(mut self) {
        self.stop_for_now().await;
    }
}

impl Drop for TestSpu {
    fn drop(&mut self) {
        // A test that failed before stopping its SPU: stop serving now
        // rather than when the runtime goes.
        self.crash();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsRequest;

    #[tokio::test]
    async fn settings_port_and_data_survive_restarts() {
        let mut spu = TestSpu::builder()
            .flush(FlushPolicy::Always)
            .max_frame_bytes(4096)
            .auto_create_topics(true)
            .start()
            .await;
        let addr = spu.addr;
        let mut c = spu.client().await;
        crate::create_topic(&mut c, "kept", 1, &[]).await;
        spu.restart().await;
        spu.crash_and_restart().await;
        assert_eq!(spu.addr, addr);
        assert_eq!(spu.handle.as_ref().unwrap().local_addr(), addr);
        assert_eq!(spu.config().max_frame_bytes, 4096);
        assert!(spu.config().auto_create_topics);
        assert_eq!(spu.config().flush, FlushPolicy::Always);
        assert!(spu.data_dir().join("kept-0").is_dir());
        let mut c = spu.client().await;
        let versions = c.send(ApiVersionsRequest::default(), 3).await;
        assert_eq!(versions.error_code, 0);
        spu.stop().await;
    }
}

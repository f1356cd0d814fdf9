//! The listener: accepts connections within the connection limit, runs
//! housekeeping (retention, interval flushes) on a timer, and shuts down
//! gracefully.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::api::Context;
use crate::cluster::ClusterLink;
use crate::config::SpuConfig;
use crate::connection;
use crate::group::{Coordinator, TICK};
use crate::metrics::http::{self, Exporter};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::SpuError;

/// Starts SPUs.
#[derive(Debug)]
pub struct Spu;

/// A running SPU.
#[derive(Debug)]
pub struct SpuHandle {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    /// Closes the connections: set by the server once it has handed its
    /// leaderships over, after `shutdown`.
    close: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
    /// What [`SpuHandle::serve_stream`] needs to serve a connection the
    /// listener did not accept.
    ctx: Arc<Context>,
    config: Arc<SpuConfig>,
    slots: Arc<Semaphore>,
    /// The metrics endpoint's address and task, when it is served.
    metrics: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
}

impl Spu {
    /// Opens the data directory (recovering every partition log), binds the
    /// listener and starts serving. Returns once the port is bound.
    pub async fn start(config: SpuConfig) -> Result<SpuHandle, SpuError> {
        let config = Arc::new(config);
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| SpuError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| SpuError::Bind {
            addr: config.listen,
            source,
        })?;
        // The metrics endpoint answers from the start (`/health/ready`
        // says 503 until the SPU is up); it stops when connections close.
        let metrics = Arc::new(Metrics::new());
        let (close_tx, close) = watch::channel(false);
        let exporter = Arc::new(Exporter {
            metrics: metrics.clone(),
            ctx: std::sync::OnceLock::new(),
        });
        let metrics_server = match config.metrics_listen {
            Some(addr) => {
                let listener = http::bind(addr).await?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| SpuError::Bind { addr, source })?;
                tracing::info!(addr = %bound, "metrics listening");
                let task = tokio::spawn(http::serve(listener, exporter.clone(), close.clone()));
                Some((bound, task))
            }
            None => None,
        };
        let advertised = config
            .advertised
            .clone()
            .unwrap_or_else(|| (local_addr.ip().to_string(), local_addr.port()));
        // In a cluster: join first (the advertised address is known once
        // bound), then open what the store assigns to this SPU.
        let cluster = match &config.cluster {
            Some(settings) => Some(Arc::new(
                ClusterLink::join(settings, config.node_id, &advertised).await?,
            )),
            None => None,
        };
        let opening = config.clone();
        let view = cluster.as_ref().map(|c| c.subscribe());
        let opened = metrics.clone();
        let registry = tokio::task::spawn_blocking(move || Registry::open(opening, view, opened))
            .await
            .map_err(|e| SpuError::Io {
                path: config.data_dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })??;
        let registry = Arc::new(registry);
        if let Some(link) = &cluster {
            link.follow(registry.clone()).await;
        }
        let ctx = Arc::new(Context {
            registry,
            advertised,
            cluster,
            groups: Arc::new(Coordinator::new(config.groups)),
        });
        let _ = exporter.ctx.set(ctx.clone());
        metrics.set_ready(true);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let slots = Arc::new(Semaphore::new(config.max_connections));
        tracing::info!(addr = %local_addr, data = %config.data_dir.display(), "SPU listening");
        let task = tokio::spawn(run(
            listener,
            ctx.clone(),
            config.clone(),
            slots.clone(),
            shutdown_rx,
            close_tx,
        ));
        Ok(SpuHandle {
            local_addr,
            shutdown,
            close,
            task,
            ctx,
            config,
            slots,
            metrics: metrics_server,
        })
    }
}

impl SpuHandle {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the metrics endpoint is bound to, when
    /// `metrics_listen` asked for one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(addr, _)| *addr)
    }

    /// Serves a connection that did not come through the listener: any byte
    /// stream, such as one end of a `tokio::io::duplex` pipe. Tests use it to
    /// drive the connection timeouts with paused time. The connection is
    /// served exactly as an accepted TCP one (same limits, same timeouts, a
    /// slot of `max_connections`, closed by shutdown); it is logged with the
    /// peer address `0.0.0.0:0`.
    ///
    /// Returns the connection's task, which ends when the connection is
    /// closed, or `None` when every connection slot is taken (the stream is
    /// dropped, as the listener drops a connection over the limit).
    pub fn serve_stream<S>(&self, stream: S) -> Option<tokio::task::JoinHandle<()>>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        let peer = SocketAddr::from(([0, 0, 0, 0], 0));
        Some(tokio::spawn(connection::serve(
            stream,
            peer,
            self.ctx.clone(),
            self.config.clone(),
            self.close.clone(),
            permit,
        )))
    }

    /// Stops at once, without finishing requests or flushing logs: what a
    /// crash (`kill -9`) does, for tests of recovery. Data already written
    /// stays in the page cache and on disk.
    pub fn abort(self) {
        self.task.abort();
        if let Some((_, task)) = self.metrics {
            task.abort();
        }
    }

    /// In a cluster, first hands the leadership of its partitions to other
    /// in-sync replicas while still serving (controlled shutdown, bounded
    /// by `CONTROLLED_SHUTDOWN_WAIT`). Then stops accepting, lets
    /// connections finish the request they are serving (within the request
    /// timeout), leaves the cluster, flushes and closes every log.
    pub async fn shutdown(self) {
        self.ctx.registry.metrics().set_ready(false);
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        if let Some((_, task)) = self.metrics {
            let _ = task.await;
        }
    }
}

async fn run(
    listener: TcpListener,
    ctx: Arc<Context>,
    config: Arc<SpuConfig>,
    slots: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
    close: watch::Sender<bool>,
) {
    let mut connections = JoinSet::new();
    let mut housekeeping = tokio::time::interval(config.retention_check_interval);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // `--flush interval`: a partition that stops receiving appends must
    // still be fsynced within its interval, not at the next housekeeping
    // (seconds later). The power-cut suite lost records so. Checked four
    // times per interval, so the tail is fsynced within 1.25 intervals.
    let flush_interval = match config.flush {
        rill_storage::FlushPolicy::Interval { interval, .. } => Some(interval),
        _ => None,
    };
    let mut flush_tick = tokio::time::interval(
        flush_interval.map_or(std::time::Duration::from_secs(3600), |i| {
            (i / 4).max(std::time::Duration::from_millis(10))
        }),
    );
    flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut group_tick = tokio::time::interval(TICK);
    group_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The controlled shutdown under way: the SPU goes on accepting and
    // serving until it ends, so clients are told NOT_LEADER_OR_FOLLOWER
    // (and move) rather than lose their connection to a leader.
    let mut handing_over: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        tokio::select! {
            _ = shutdown.changed(), if handing_over.is_none() => match &ctx.cluster {
                Some(link) => {
                    let link = link.clone();
                    handing_over = Some(tokio::spawn(async move { link.hand_over().await }));
                }
                None => break,
            },
            _ = async { if let Some(h) = handing_over.as_mut() { let _ = h.await; } },
                if handing_over.is_some() => break,
            _ = housekeeping.tick() => {
                let registry = ctx.registry.clone();
                // File work off the async threads.
                let _ = tokio::task::spawn_blocking(move || registry.housekeeping()).await;
            }
            _ = flush_tick.tick(), if flush_interval.is_some() => {
                let registry = ctx.registry.clone();
                let _ = tokio::task::spawn_blocking(move || registry.flush_due()).await;
            }
            _ = group_tick.tick() => ctx.groups.tick(std::time::Instant::now()),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let _ = stream.set_nodelay(true);
                        connections.spawn(connection::serve(
                            stream, peer, ctx.clone(), config.clone(), close.subscribe(), permit,
                        ));
                    }
                    Err(_) => {
                        tracing::warn!(%peer, limit = config.max_connections, "connection refused: too many connections");
                        drop(stream);
                    }
                },
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = close.send(true);
    // Parked JoinGroup and SyncGroup requests are answered now, so their
    // connections can finish.
    ctx.groups.shutdown();
    let drained = tokio::time::timeout(config.request_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still busy at shutdown were closed");
        connections.shutdown().await;
    }
    if let Some(link) = &ctx.cluster {
        link.leave().await;
    }
    let registry = ctx.registry.clone();
    let _ = tokio::task::spawn_blocking(move || registry.flush_all()).await;
    tracing::info!("SPU stopped");
}

//! One client connection, served by one task: it splits whole frames off
//! what it read, answers them one at a time, in order (as Kafka clients
//! expect), then reads on. Nothing is read ahead beyond the socket's own
//! buffer, so a connection holds at most one frame and the read buffer.
//!
//! The loop works on any byte stream, not only TCP: tests serve an
//! in-memory `tokio::io::duplex` pipe with paused time to check the
//! timeouts without waiting for them.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rill_protocol::FrameDecoder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, OwnedSemaphorePermit};

use crate::api::{self, Context, Outcome};
use crate::config::SpuConfig;
use crate::metrics::seconds;
use prometheus_client::metrics::gauge::Gauge;

/// Read buffer to start with; it grows to the frame being read.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Serves one connection until the peer closes it, a timeout or a bad frame
/// closes it, or the SPU shuts down. `peer` is only for the logs. Reading and
/// answering take turns, so the stream is not split.
pub(crate) async fn serve<S>(
    mut stream: S,
    peer: SocketAddr,
    ctx: Arc<Context>,
    config: Arc<SpuConfig>,
    mut shutdown: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let decoder = FrameDecoder::new(config.max_frame_bytes);
    let request_timeout = config.request_timeout;
    tracing::debug!(%peer, "connection opened");
    let _open = Counted::new(&ctx.registry.metrics().connections_open);
    let mut buf = BytesMut::with_capacity(READ_BUFFER_BYTES);
    // When the first byte of the frame being read arrived. A started
    // frame must arrive whole within the request timeout, so a client
    // trickling bytes (slow loris) cannot hold a connection slot forever.
    let mut frame_started: Option<tokio::time::Instant> = None;
    loop {
        // Answer every whole frame read so far, in order, before reading on.
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    frame_started = None;
                    if !answer(&ctx, &config, peer, &mut stream, frame.freeze()).await {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                    return;
                }
            }
        }
        if buf.is_empty() {
            frame_started = None;
        } else if frame_started.is_none() {
            frame_started = Some(tokio::time::Instant::now());
        }
        // Between requests the connection may stay silent for the idle
        // timeout (Kafka's connections.max.idle.ms); inside a request frame,
        // for the request timeout.
        let (deadline, why) = match frame_started {
            Some(t) => (
                t + request_timeout,
                "request not received whole within the request timeout",
            ),
            None => (
                tokio::time::Instant::now() + config.connection_idle_timeout,
                "idle for the connection idle timeout",
            ),
        };
        tokio::select! {
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
            },
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep_until(deadline) => {
                tracing::info!(%peer, "closing connection: {why}");
                break;
            }
        }
    }
    tracing::debug!(%peer, "connection closed");
}

/// Holds one up on a gauge while it lives.
struct Counted(Gauge);

impl Counted {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Handles one request, timing Produce and Fetch.
async fn handle(ctx: &Context, frame: Bytes) -> Outcome {
    let metrics = ctx.registry.metrics();
    let _in_flight = Counted::new(&metrics.requests_in_flight);
    let histogram = match frame.get(..2) {
        Some([0, 0]) => Some(&metrics.produce_duration),
        Some([0, 1]) => Some(&metrics.fetch_duration),
        _ => None,
    };
    let started = std::time::Instant::now();
    let outcome = api::handle(ctx, frame).await;
    if let Some(h) = histogram {
        h.observe(seconds(started.elapsed()));
    }
    outcome
}

/// Handles one request and writes its answer; false when the connection
/// must close.
async fn answer<W: AsyncWrite + Unpin>(
    ctx: &Context,
    config: &SpuConfig,
    peer: SocketAddr,
    wr: &mut W,
    frame: Bytes,
) -> bool {
    // JoinGroup (11) and SyncGroup (14) are parked by the coordinator, which
    // answers them within its own bounds; they get those on top.
    let timeout = match frame.get(..2) {
        Some([0, 11] | [0, 14]) => config.request_timeout + ctx.groups.longest_park(),
        _ => config.request_timeout,
    };
    match tokio::time::timeout(timeout, handle(ctx, frame)).await {
        Err(_) => {
            tracing::warn!(%peer, timeout = ?config.request_timeout, "closing connection: request timed out");
            false
        }
        // The flush is free on TCP; a buffered stream needs it to send.
        Ok(Outcome::Respond(bytes)) => match async {
            wr.write_all(&bytes).await?;
            wr.flush().await
        }
        .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "write failed");
                false
            }
        },
        Ok(Outcome::Silent) => true,
        Ok(Outcome::Close(reason)) => {
            tracing::warn!(%peer, %reason, "closing connection");
            false
        }
    }
}

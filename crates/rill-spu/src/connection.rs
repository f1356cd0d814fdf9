//! One client connection, served by one task: it splits whole frames off
//! what it read, answers them one at a time, in order (as Kafka clients
//! expect), then reads on. Nothing is read ahead beyond the socket's own
//! buffer, so a connection holds at most one frame and the read buffer.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rill_protocol::FrameDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};

use crate::api::{self, Context, Outcome};
use crate::config::SpuConfig;

/// Read buffer to start with; it grows to the frame being read.
const READ_BUFFER_BYTES: usize = 64 * 1024;

pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Context>,
    config: Arc<SpuConfig>,
    mut shutdown: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let decoder = FrameDecoder::new(config.max_frame_bytes);
    let request_timeout = config.request_timeout;
    tracing::debug!(%peer, "connection opened");
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
                    if !answer(&ctx, &config, peer, &mut wr, frame.freeze()).await {
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
            read = rd.read_buf(&mut buf) => match read {
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

/// Handles one request and writes its answer; false when the connection
/// must close.
async fn answer(
    ctx: &Context,
    config: &SpuConfig,
    peer: SocketAddr,
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    frame: Bytes,
) -> bool {
    match tokio::time::timeout(config.request_timeout, api::handle(ctx, frame)).await {
        Err(_) => {
            tracing::warn!(%peer, timeout = ?config.request_timeout, "closing connection: request timed out");
            false
        }
        Ok(Outcome::Respond(bytes)) => match wr.write_all(&bytes).await {
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

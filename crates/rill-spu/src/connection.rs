//! One client connection: a reader that splits frames off the socket (at
//! most `max_in_flight_per_connection` waiting), and a worker that answers
//! them one at a time, in order, as Kafka clients expect.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rill_protocol::FrameDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};

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
    let (tx, mut rx) = mpsc::channel::<Bytes>(config.max_in_flight_per_connection.max(1));
    let decoder = FrameDecoder::new(config.max_frame_bytes);
    let request_timeout = config.request_timeout;
    tracing::debug!(%peer, "connection opened");

    let reader = async move {
        let mut buf = BytesMut::with_capacity(READ_BUFFER_BYTES);
        // When the first byte of the frame being read arrived. A started
        // frame must arrive whole within the request timeout, so a client
        // trickling bytes (slow loris) cannot hold a connection slot forever.
        let mut frame_started: Option<tokio::time::Instant> = None;
        loop {
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        frame_started = None;
                        if tx.send(frame.freeze()).await.is_err() {
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
            let frame_deadline = async {
                match frame_started {
                    Some(t) => tokio::time::sleep_until(t + request_timeout).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = rd.read_buf(&mut buf) => match read {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "read failed");
                        return;
                    }
                },
                _ = shutdown.changed() => return,
                _ = frame_deadline => {
                    tracing::warn!(%peer, timeout = ?request_timeout, "closing connection: request not received whole within the request timeout");
                    return;
                }
            }
        }
    };

    let worker = async move {
        while let Some(frame) = rx.recv().await {
            let answered =
                tokio::time::timeout(config.request_timeout, api::handle(&ctx, frame)).await;
            match answered {
                Err(_) => {
                    tracing::warn!(%peer, timeout = ?config.request_timeout, "closing connection: request timed out");
                    return;
                }
                Ok(Outcome::Respond(bytes)) => {
                    if let Err(e) = wr.write_all(&bytes).await {
                        tracing::debug!(%peer, error = %e, "write failed");
                        return;
                    }
                }
                Ok(Outcome::Silent) => {}
                Ok(Outcome::Close(reason)) => {
                    tracing::warn!(%peer, %reason, "closing connection");
                    return;
                }
            }
        }
    };

    tokio::pin!(reader, worker);
    tokio::select! {
        _ = &mut worker => {}
        // The reader stopped (EOF, bad frame, shutdown): answer what was
        // already read, then close.
        _ = &mut reader => worker.await,
    }
    tracing::debug!(%peer, "connection closed");
}

//! One client connection, served by one task: it splits whole frames off
//! what it read and answers them in order (as Kafka clients expect). A
//! Produce is admitted (its record sets handed to their writers, in order)
//! and its answer awaited beside the reading of the next frames, up to
//! [`MAX_PIPELINED_PRODUCES`]: a producer with several requests in flight
//! then has them written together (one write, and with `--flush always`
//! one fsync) instead of one per round trip. Any other request waits until
//! every earlier answer is written, then is answered before reading on.
//! Answers to produces appended in place while the next request was already
//! read whole are held and written with the next answer (see [`Held`]).
//! Nothing is read ahead beyond the socket's own buffer, those produces
//! and [`READ_AHEAD_BYTES`] of buffer.
//!
//! The loop works on any byte stream, not only TCP: tests serve an
//! in-memory `tokio::io::duplex` pipe with paused time to check the
//! timeouts without waiting for them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rill_protocol::FrameDecoder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::task::JoinHandle;

use crate::api::{self, Context, Outcome, Started};
use crate::config::SpuConfig;
use crate::metrics::seconds;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// Read buffer to start with; it grows to the frame being read.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Room made for the next read once a read filled all the room it had
/// (more was likely waiting): a producer with several requests in flight
/// then has them read in one call instead of one read (and often one
/// wake-up) per request, since the frame decoder only makes room for the
/// rest of the frame it is in. Bounds a connection's read buffer beside
/// the frame limit.
pub(crate) const READ_AHEAD_BYTES: usize = 256 * 1024;

/// Most produce requests of one connection admitted and not yet answered
/// (Kafka clients send up to 5 by default). Each holds its record sets
/// until written, so with the frame limit this bounds a connection's
/// memory.
pub(crate) const MAX_PIPELINED_PRODUCES: usize = 8;

/// Most bytes of answers held back while the next request is already read
/// whole (see [`Held`]).
const HELD_ANSWER_BYTES: usize = 16 * 1024;

/// A produce answer on its way: `None` when it did not come within the
/// request timeout.
type Pending = JoinHandle<Option<Outcome>>;

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
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut held = Held::default();
    // The last read took all the room there was.
    let mut read_filled = false;
    loop {
        // Begin every whole frame read so far, in order, before reading on.
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    frame_started = None;
                    let frame = frame.freeze();
                    let next_is_whole = whole_frame_ahead(&decoder, &buf);
                    let mut out = Out {
                        stream: &mut stream,
                        held: &mut held,
                    };
                    let go_on = if api::is_produce(&frame) {
                        admit(
                            &ctx,
                            &config,
                            peer,
                            &mut out,
                            &mut pending,
                            frame,
                            next_is_whole,
                        )
                        .await
                    } else {
                        drain(peer, &mut out, &mut pending, 0).await
                            && answer(&ctx, &config, peer, &mut out, frame).await
                    };
                    if !go_on {
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
        // Nothing more to answer before reading: what was held goes now.
        if !held.write_to(peer, &mut stream).await {
            return;
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
        if read_filled && buf.capacity() - buf.len() < READ_AHEAD_BYTES {
            buf.reserve(READ_AHEAD_BYTES);
        }
        let room = buf.capacity() - buf.len();
        tokio::select! {
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) => break,
                Ok(n) => read_filled = n >= room,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
            },
            done = async { pending.front_mut().expect("guarded").await }, if !pending.is_empty() => {
                pending.pop_front();
                let mut out = Out {
                    stream: &mut stream,
                    held: &mut held,
                };
                if !send_done(peer, &mut out, done).await {
                    return;
                }
            }
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep_until(deadline), if pending.is_empty() => {
                tracing::info!(%peer, "closing connection: {why}");
                break;
            }
        }
    }
    // Answers already promised still go out (their records are written).
    let mut out = Out {
        stream: &mut stream,
        held: &mut held,
    };
    if drain(peer, &mut out, &mut pending, 0).await {
        held.write_to(peer, &mut stream).await;
    }
    tracing::debug!(%peer, "connection closed");
}

/// Admits a Produce (after the oldest answers, while too many wait) and
/// leaves its answer to come; false when the connection must close.
async fn admit<S: AsyncWrite + Unpin + 'static>(
    ctx: &Arc<Context>,
    config: &SpuConfig,
    peer: SocketAddr,
    out: &mut Out<'_, S>,
    pending: &mut VecDeque<Pending>,
    frame: Bytes,
    next_is_whole: bool,
) -> bool {
    if !drain(peer, out, pending, MAX_PIPELINED_PRODUCES - 1).await {
        return false;
    }
    // Counted and timed from admission to answer.
    let tracked = Tracked::new(ctx, &frame);
    // Admission waits for room in the writers' queues: bounded too.
    let started = match tokio::time::timeout(config.request_timeout, api::start(ctx, frame)).await {
        Ok(started) => started,
        Err(_) => {
            tracing::warn!(%peer, timeout = ?config.request_timeout, "closing connection: request timed out");
            return false;
        }
    };
    match started {
        Started::Done(outcome) => {
            drain(peer, out, pending, 0).await && send(peer, out, outcome).await
        }
        // Appended in place with nothing before it to answer: answered
        // here, without a task and its wake-up.
        Started::Produce(produce) if pending.is_empty() && produce.is_answered() => {
            let outcome = produce.finish(ctx).await;
            tracked.done();
            if ctx.registry.fetches_waiting() {
                // The Fetches this append woke (consumers, followers) go
                // first: their answers leave before this one, so a record
                // reaches its readers without waiting behind its own
                // acknowledgement's write and the wake-up of the producer
                // it costs.
                tokio::task::yield_now().await;
            } else if next_is_whole {
                // The next request is already here: its answer and this
                // one leave in one write, one wake-up of the producer.
                if let Outcome::Respond(bytes) = &outcome {
                    if out.held.hold(bytes) {
                        return true;
                    }
                }
            }
            send(peer, out, outcome).await
        }
        Started::Produce(produce) => {
            let ctx = ctx.clone();
            let timeout = config.request_timeout;
            pending.push_back(tokio::spawn(async move {
                let done = tokio::time::timeout(timeout, produce.finish(&ctx))
                    .await
                    .ok();
                tracked.done();
                done
            }));
            true
        }
    }
}

/// Writes the oldest answers until at most `keep` wait; false when the
/// connection must close.
async fn drain<W: AsyncWrite + Unpin + 'static>(
    peer: SocketAddr,
    wr: &mut Out<'_, W>,
    pending: &mut VecDeque<Pending>,
    keep: usize,
) -> bool {
    while pending.len() > keep {
        let Some(next) = pending.pop_front() else {
            break;
        };
        if !send_done(peer, wr, next.await).await {
            return false;
        }
    }
    true
}

/// Writes a produce answer that came; false when the connection must close.
async fn send_done<W: AsyncWrite + Unpin + 'static>(
    peer: SocketAddr,
    wr: &mut Out<'_, W>,
    done: Result<Option<Outcome>, tokio::task::JoinError>,
) -> bool {
    match done {
        Ok(Some(outcome)) => send(peer, wr, outcome).await,
        Ok(None) => {
            tracing::warn!(%peer, "closing connection: produce request timed out");
            false
        }
        Err(e) => {
            tracing::error!(%peer, error = %e, "closing connection: produce task failed");
            false
        }
    }
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

/// A request in flight, counted on the gauge while it lives; Produce and
/// Fetch are timed until [`Tracked::done`].
struct Tracked {
    _in_flight: Counted,
    histogram: Option<Histogram>,
    started: std::time::Instant,
}

impl Tracked {
    fn new(ctx: &Context, frame: &[u8]) -> Self {
        let metrics = ctx.registry.metrics();
        let histogram = match frame.get(..2) {
            Some([0, 0]) => Some(metrics.produce_duration.clone()),
            Some([0, 1]) => Some(metrics.fetch_duration.clone()),
            _ => None,
        };
        Self {
            _in_flight: Counted::new(&metrics.requests_in_flight),
            histogram,
            started: std::time::Instant::now(),
        }
    }

    fn done(self) {
        if let Some(h) = &self.histogram {
            h.observe(seconds(self.started.elapsed()));
        }
    }
}

/// Handles one request, counted and timed.
async fn handle(ctx: &Context, frame: Bytes) -> Outcome {
    let tracked = Tracked::new(ctx, &frame);
    let outcome = api::handle(ctx, frame).await;
    tracked.done();
    outcome
}

/// Handles one request and writes its answer; false when the connection
/// must close.
async fn answer<W: AsyncWrite + Unpin + 'static>(
    ctx: &Context,
    config: &SpuConfig,
    peer: SocketAddr,
    wr: &mut Out<'_, W>,
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
        Ok(outcome) => send(peer, wr, outcome).await,
    }
}

/// Whether `buf` already holds the next frame whole (a bad prefix counts as
/// not: the decoder reports it in turn).
fn whole_frame_ahead(decoder: &FrameDecoder, buf: &[u8]) -> bool {
    matches!(decoder.declared_size(buf), Ok(Some(size))
        if buf.len().saturating_sub(rill_protocol::frame::FRAME_PREFIX_BYTES) >= size)
}

/// Where answers go: the stream, after whatever answers are held.
struct Out<'a, W> {
    stream: &'a mut W,
    held: &'a mut Held,
}

/// Answers of produces appended in place, held back while the connection's
/// next request was already read whole: they go out with the next answer
/// written (or before the connection reads again), so pipelined requests
/// cost the producer one wake-up per read rather than one per request. At
/// most [`HELD_ANSWER_BYTES`], and never across a read or a wait.
#[derive(Default)]
struct Held(Vec<u8>);

impl Held {
    /// Takes `answer` if there is room; false when it must be sent.
    fn hold(&mut self, answer: &[u8]) -> bool {
        let room = self.0.len() + answer.len() <= HELD_ANSWER_BYTES;
        if room {
            self.0.extend_from_slice(answer);
        }
        room
    }

    /// Writes what is held; false when the connection must close.
    async fn write_to<W: AsyncWrite + Unpin>(&mut self, peer: SocketAddr, wr: &mut W) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let written = write_bytes(peer, wr, &self.0).await;
        self.0.clear();
        written
    }
}

/// Writes `bytes` whole; false when the connection must close.
async fn write_bytes<W: AsyncWrite + Unpin>(peer: SocketAddr, wr: &mut W, bytes: &[u8]) -> bool {
    // The flush is free on TCP; a buffered stream needs it to send.
    let written = async {
        wr.write_all(bytes).await?;
        wr.flush().await
    }
    .await;
    log_failure(peer, written)
}

/// True when `written` is Ok; a failure is logged and closes the connection.
fn log_failure(peer: SocketAddr, written: std::io::Result<()>) -> bool {
    match written {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "write failed");
            false
        }
    }
}

/// Writes an answer, after any held ones; false when the connection must
/// close.
async fn send<W: AsyncWrite + Unpin + 'static>(
    peer: SocketAddr,
    out: &mut Out<'_, W>,
    outcome: Outcome,
) -> bool {
    let Out { stream: wr, held } = out;
    match outcome {
        // Held answers and a small one like this leave in one write.
        Outcome::Respond(bytes) if !held.0.is_empty() && held.hold(&bytes) => {
            held.write_to(peer, wr).await
        }
        Outcome::Respond(bytes) => {
            held.write_to(peer, wr).await && write_bytes(peer, wr, &bytes).await
        }
        Outcome::RespondPieces(pieces) => {
            held.write_to(peer, wr).await
                && log_failure(peer, crate::sendfile::write_pieces(&mut **wr, pieces).await)
        }
        Outcome::Silent => true,
        Outcome::Close(reason) => {
            // Answers held for earlier requests still leave first.
            held.write_to(peer, wr).await;
            tracing::warn!(%peer, %reason, "closing connection");
            false
        }
    }
}

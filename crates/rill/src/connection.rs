//! One TCP connection to an SPU: requests go out with a correlation id and
//! answers come back in the same order (Kafka's rule), matched to their
//! callers. At most `MAX_IN_FLIGHT_REQUESTS` wait for answers at a time.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ProduceRequest, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use rill_protocol::frame::FRAME_PREFIX_BYTES;
use rill_protocol::FrameDecoder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{oneshot, Notify, Semaphore};

use crate::low_water::{LowWater, MAX_LOW_WATER_BYTES, MIN_LOW_WATER_BYTES};
use crate::recycle::{BufferPool, LARGE_ANSWER_BYTES};
use crate::RillError;

/// Requests sent and not yet answered, per connection.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 64;
/// Largest response accepted (a Fetch answer is bounded by its max_bytes).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
pub(crate) const CLIENT_ID: &str = "rill";
/// How long connecting (TCP, then the ApiVersions handshake) may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a connection's reading ended.
type Ended = (std::io::ErrorKind, String);

/// Reads answers off the socket and hands each to its waiter until the
/// connection fails, the SPU breaks the protocol, or `abort` is notified;
/// returns why it ended. An answer of [`LARGE_ANSWER_BYTES`] or more is read
/// straight into a buffer of its own from the connection's pool (one copy,
/// no page faults once the pool has one); smaller ones are split off the
/// read buffer.
async fn read_answers<R: AsyncRead + LowWater + Unpin>(
    reader: &mut R,
    waiting: &Mutex<VecDeque<(i32, Waiter)>>,
    abort: &Notify,
) -> Ended {
    use std::io::ErrorKind;
    let decoder = FrameDecoder::new(MAX_RESPONSE_BYTES);
    let pool = BufferPool::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let answer = match decoder.declared_size(&buf) {
            Err(e) => return (ErrorKind::InvalidData, e.to_string()),
            Ok(Some(size)) if size >= LARGE_ANSWER_BYTES => {
                buf.advance(FRAME_PREFIX_BYTES);
                let mut body = pool.take(size);
                let buffered = buf.len().min(size);
                body.extend_from_slice(&buf[..buffered]);
                buf.advance(buffered);
                // Held back to bytes this answer still owes (see
                // `low_water`), so a complete answer is never waited on.
                let mut mark = 1;
                while body.len() < size {
                    let missing = size - body.len();
                    let wanted = if mark == 1 && missing < MIN_LOW_WATER_BYTES {
                        1
                    } else if mark == 1 {
                        missing.min(MAX_LOW_WATER_BYTES)
                    } else {
                        mark.min(missing)
                    };
                    if wanted != mark {
                        reader.set_low_water(wanted);
                        mark = wanted;
                    }
                    if let Err(ended) =
                        read_some(reader, &mut (&mut body).limit(missing), abort).await
                    {
                        return ended;
                    }
                }
                if mark != 1 {
                    reader.set_low_water(1);
                }
                pool.share(body)
            }
            Ok(_) => match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frame.freeze(),
                Ok(None) => {
                    if let Err(ended) = read_some(reader, &mut buf, abort).await {
                        return ended;
                    }
                    continue;
                }
                Err(e) => return (ErrorKind::InvalidData, e.to_string()),
            },
        };
        let Some(cid) = answer.first_chunk::<4>().map(|b| i32::from_be_bytes(*b)) else {
            return (
                ErrorKind::InvalidData,
                "response without a correlation id".to_string(),
            );
        };
        let waiter = waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        match waiter {
            Some((expected, (tx, _slot))) if expected == cid => {
                let _ = tx.send(Ok(answer));
            }
            _ => {
                return (
                    ErrorKind::InvalidData,
                    format!("unexpected correlation id {cid}"),
                )
            }
        }
    }
}

/// One read into `buf`, or why the connection ended.
async fn read_some<R: AsyncRead + Unpin, B: BufMut>(
    reader: &mut R,
    buf: &mut B,
    abort: &Notify,
) -> Result<(), Ended> {
    use std::io::ErrorKind;
    tokio::select! {
        read = reader.read_buf(buf) => match read {
            Ok(0) => Err((ErrorKind::UnexpectedEof, "closed by the SPU".to_string())),
            Ok(_) => Ok(()),
            Err(e) => Err((e.kind(), e.to_string())),
        },
        _ = abort.notified() => Err((
            ErrorKind::TimedOut,
            "closed by the client after a request timed out".to_string(),
        )),
    }
}

/// A TCP connection to `addr`, its receive buffer set first when asked
/// (before the handshake, so the window scale agreed there allows it).
async fn open(addr: &str, receive_buffer: Option<usize>) -> std::io::Result<TcpStream> {
    let Some(bytes) = receive_buffer else {
        return TcpStream::connect(addr).await;
    };
    let mut last = None;
    for to in tokio::net::lookup_host(addr).await? {
        let socket = if to.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // A hint: refused, the connection works with the system's buffer.
        if let Err(e) = socket.set_recv_buffer_size(u32::try_from(bytes).unwrap_or(u32::MAX)) {
            tracing::debug!(error = %e, bytes, "SO_RCVBUF not set");
        }
        match socket.connect(to).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address found")))
}

/// Who waits for an answer, and the in-flight slot the request holds until
/// its answer is read off the socket. (Released there, not when the caller
/// takes the answer: a caller that waits for a slot before it reads the
/// answers it already has must not hold slots other callers wait for.)
type Waiter = (
    oneshot::Sender<Result<Bytes, RillError>>,
    tokio::sync::OwnedSemaphorePermit,
);

#[derive(Debug)]
pub(crate) struct Connection {
    addr: String,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    waiting: Arc<Mutex<VecDeque<(i32, Waiter)>>>,
    next_cid: AtomicI32,
    slots: Arc<Semaphore>,
    closed: Arc<AtomicBool>,
    /// Wakes the reader task to close the connection (see [`Self::abort`]).
    abort: Arc<Notify>,
    /// The SPU's highest version of each API key.
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    pub async fn connect(addr: &str) -> Result<Arc<Self>, RillError> {
        Self::connect_with(addr, None).await
    }

    /// [`Self::connect`] with a receive buffer of `receive_buffer` bytes
    /// set before connecting (see `receive_buffer`); `None` keeps the
    /// system's.
    pub async fn connect_with(
        addr: &str,
        receive_buffer: Option<usize>,
    ) -> Result<Arc<Self>, RillError> {
        let connect_err = |reason: String| RillError::Connect {
            addr: addr.to_owned(),
            reason,
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, open(addr, receive_buffer))
            .await
            .map_err(|_| connect_err("timed out".into()))?
            .map_err(|e| connect_err(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (mut reader, writer) = stream.into_split();
        let waiting: Arc<Mutex<VecDeque<(i32, Waiter)>>> = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let mut conn = Connection {
            addr: addr.to_owned(),
            writer: tokio::sync::Mutex::new(writer),
            waiting: waiting.clone(),
            next_cid: AtomicI32::new(1),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT_REQUESTS)),
            closed: closed.clone(),
            abort: Arc::new(Notify::new()),
            versions: HashMap::new(),
        };
        let reader_addr = addr.to_owned();
        let abort = conn.abort.clone();
        tokio::spawn(async move {
            let (kind, reason) = read_answers(&mut reader, &waiting, &abort).await;
            closed.store(true, Ordering::Release);
            let mut waiting = waiting.lock().unwrap_or_else(|p| p.into_inner());
            for (_, (tx, _slot)) in waiting.drain(..) {
                let _ = tx.send(Err(RillError::transport(
                    &reader_addr,
                    kind,
                    reason.clone(),
                )));
            }
        });
        // An SPU that accepts but never answers (stopped, hung) must not
        // hold whoever connects: the handshake has the connect timeout too.
        let resp =
            tokio::time::timeout(CONNECT_TIMEOUT, conn.send(ApiVersionsRequest::default(), 0))
                .await
                .map_err(|_| {
                    connect_err(format!("no ApiVersions answer within {CONNECT_TIMEOUT:?}"))
                })??;
        conn.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(Arc::new(conn))
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The highest version both sides speak of `R`.
    pub fn version<R: Request>(&self, ours_max: i16) -> Result<i16, RillError> {
        let unsupported = || RillError::Unsupported {
            api: ApiKey::try_from(R::KEY)
                .map(|k| format!("{k:?}"))
                .unwrap_or_else(|_| format!("API key {}", R::KEY)),
        };
        let (min, max) = self
            .versions
            .get(&R::KEY)
            .copied()
            .ok_or_else(unsupported)?;
        let v = ours_max.min(max);
        if v < min {
            return Err(unsupported());
        }
        Ok(v)
    }

    fn encode<R: Request>(&self, req: &R, version: i16, cid: i32) -> Result<BytesMut, RillError> {
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(cid)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut buf = BytesMut::with_capacity(128);
        buf.put_i32(0);
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(|e| RillError::Protocol(e.to_string()))?;
        req.encode(&mut buf, version)
            .map_err(|e| RillError::Protocol(e.to_string()))?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        Ok(buf)
    }

    /// Sends a request and waits for its answer.
    pub async fn send<R: Request>(&self, req: R, version: i16) -> Result<R::Response, RillError> {
        self.start(req, version).await?.answer().await
    }

    /// Writes a request and returns at once; the answer comes from
    /// [`PendingAnswer::answer`]. Requests started one after another from
    /// one task reach the SPU in that order, which the producer relies on to
    /// pipeline a partition's batches.
    pub async fn start<R: Request>(
        &self,
        req: R,
        version: i16,
    ) -> Result<PendingAnswer<R>, RillError> {
        self.start_frame(version, |cid| {
            Ok((self.encode(&req, version, cid)?.freeze(), Bytes::new()))
        })
        .await
    }

    /// Writes a one-partition Produce request whose record batches stay in
    /// `records` (one vectored write, no copy into the request); the answer
    /// comes from [`PendingAnswer::answer`] as for [`Self::start`].
    pub async fn start_produce(
        &self,
        front: impl FnOnce(i32) -> Result<Vec<u8>, rill_protocol::BatchError>,
        version: i16,
        records: Bytes,
    ) -> Result<PendingAnswer<ProduceRequest>, RillError> {
        self.start_frame(version, |cid| {
            let head = front(cid).map_err(|e| RillError::Protocol(e.to_string()))?;
            Ok((Bytes::from(head), records))
        })
        .await
    }

    /// Takes an in-flight slot and a correlation id, writes the frame that
    /// `frame(cid)` gives (a head and a tail, sent as one), and returns the
    /// pending answer.
    async fn start_frame<R: Request>(
        &self,
        version: i16,
        frame: impl FnOnce(i32) -> Result<(Bytes, Bytes), RillError>,
    ) -> Result<PendingAnswer<R>, RillError> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.lost(std::io::ErrorKind::NotConnected, "closed"))?;
        let cid = self.next_cid.fetch_add(1, Ordering::Relaxed);
        let (head, tail) = frame(cid)?;
        let rx = self.write_frame(cid, head, tail, slot).await?;
        Ok(PendingAnswer {
            rx,
            version,
            addr: self.addr.clone(),
            _request: std::marker::PhantomData,
        })
    }

    /// Registers `cid` for its answer and writes `head` then `tail`, under
    /// one lock so answers keep request order.
    async fn write_frame(
        &self,
        cid: i32,
        head: Bytes,
        tail: Bytes,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<oneshot::Receiver<Result<Bytes, RillError>>, RillError> {
        let (tx, rx) = oneshot::channel();
        let mut writer = self.writer.lock().await;
        if self.is_closed() {
            return Err(self.lost(std::io::ErrorKind::NotConnected, "closed"));
        }
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((cid, (tx, slot)));
        let mut frame = head.chain(tail);
        writer
            .write_all_buf(&mut frame)
            .await
            .map_err(|e| self.lost(e.kind(), &e.to_string()))?;
        Ok(rx)
    }

    fn lost(&self, kind: std::io::ErrorKind, reason: &str) -> RillError {
        RillError::transport(&self.addr, kind, reason)
    }

    /// Closes the connection on purpose (a request on it timed out, so its
    /// answers can no longer be trusted to come): every request waiting on
    /// it fails with a transport error, and the client makes a new one.
    pub fn abort(&self) {
        self.closed.store(true, Ordering::Release);
        self.abort.notify_one();
    }
}

/// A request written to the SPU whose answer has not been taken yet. (Its
/// in-flight slot is freed when the answer arrives.)
#[derive(Debug)]
pub(crate) struct PendingAnswer<R: Request> {
    rx: oneshot::Receiver<Result<Bytes, RillError>>,
    version: i16,
    addr: String,
    _request: std::marker::PhantomData<fn() -> R>,
}

impl<R: Request> PendingAnswer<R> {
    /// Waits for the answer and decodes it.
    pub async fn answer(self) -> Result<R::Response, RillError> {
        let mut body = self.rx.await.map_err(|_| {
            RillError::transport(&self.addr, std::io::ErrorKind::BrokenPipe, "reader stopped")
        })??;
        let header_version = if R::KEY == ApiKey::ApiVersions as i16 {
            0
        } else {
            R::Response::header_version(self.version)
        };
        ResponseHeader::decode(&mut body, header_version)
            .map_err(|e| RillError::Protocol(e.to_string()))?;
        R::Response::decode(&mut body, self.version).map_err(|e| RillError::Protocol(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn frame(cid: i32, body_bytes: usize, fill: u8) -> Vec<u8> {
        let mut f = Vec::with_capacity(8 + body_bytes);
        f.extend_from_slice(&((4 + body_bytes) as i32).to_be_bytes());
        f.extend_from_slice(&cid.to_be_bytes());
        f.extend(std::iter::repeat_n(fill, body_bytes));
        f
    }

    /// A receive buffer asked for is on the socket once it is connected
    /// (the kernel reports at least what was asked, within its cap); a
    /// socket not asked keeps the system's smaller starting buffer.
    #[tokio::test]
    async fn a_receive_buffer_asked_for_is_set_before_connecting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cap: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let asked = cap.min(2 << 20);
        let receive_buffer = |s: TcpStream| {
            TcpSocket::from_std_stream(s.into_std().unwrap())
                .recv_buffer_size()
                .unwrap() as usize
        };
        let set = receive_buffer(open(&addr, Some(asked)).await.unwrap());
        let plain = receive_buffer(open(&addr, None).await.unwrap());
        assert!(set >= asked, "asked {asked}, the socket has {set}");
        assert!(plain < set, "the system's {plain} against the asked {set}");
    }

    /// Large answers (read into pooled buffers) and small ones (split off
    /// the read buffer), cut at awkward places on the wire, each reach its
    /// waiter whole and in order; a wrong correlation id ends the reading.
    #[tokio::test]
    async fn answers_of_every_size_reach_their_waiters_across_any_cut() {
        let sizes = [
            10,
            LARGE_ANSWER_BYTES * 3 + 5,
            0,
            LARGE_ANSWER_BYTES - 4,
            100_000,
            7,
        ];
        let wire: Vec<u8> = sizes
            .iter()
            .enumerate()
            .flat_map(|(i, &n)| frame(i as i32 + 1, n, i as u8))
            .chain(frame(99, 3, 0))
            .collect();
        let slots = Arc::new(Semaphore::new(sizes.len() + 1));
        let waiting: Mutex<VecDeque<(i32, Waiter)>> = Mutex::default();
        let mut answers = Vec::new();
        for cid in 1..=sizes.len() as i32 + 1 {
            let (tx, rx) = oneshot::channel();
            let permit = slots.clone().try_acquire_owned().unwrap();
            waiting.lock().unwrap().push_back((cid, (tx, permit)));
            answers.push(rx);
        }
        let frame_ends: Vec<usize> = sizes
            .iter()
            .chain(&[3])
            .scan(0, |end, &n| {
                *end += 8 + n;
                Some(*end)
            })
            .collect();
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let mut client = Marked {
            inner: client,
            delivered: 0,
            marks: Default::default(),
        };
        let writer = tokio::spawn(async move {
            // Cuts inside prefixes, inside bodies and across frames.
            for piece in wire.chunks(50_001) {
                for part in piece.chunks(piece.len().div_ceil(3)) {
                    server.write_all(part).await.unwrap();
                }
            }
            server
        });
        let abort = Notify::new();
        let (kind, reason) = read_answers(&mut client, &waiting, &abort).await;
        assert_eq!(kind, std::io::ErrorKind::InvalidData);
        assert!(reason.contains("unexpected correlation id 99"), "{reason}");
        for (i, (rx, &n)) in answers.iter_mut().zip(&sizes).enumerate() {
            let answer = rx.try_recv().unwrap().unwrap();
            assert_eq!(&answer[..4], &(i as i32 + 1).to_be_bytes());
            assert_eq!(answer.len(), 4 + n);
            assert!(answer[4..].iter().all(|&b| b == i as u8), "answer {i}");
        }
        drop(writer.await.unwrap());
        // Low-water marks: set while the large answers stream in, never
        // past the end of the answer being read, back to 1 after it.
        let marks = client.marks.into_inner().unwrap();
        assert!(marks.iter().any(|&(_, m)| m > 1), "{marks:?}");
        for &(at, mark) in &marks {
            let end = frame_ends.iter().find(|&&e| e > at).unwrap();
            assert!(
                at + mark <= *end,
                "mark {mark} at {at}, answer ends at {end}"
            );
        }
        assert_eq!(marks.last().map(|m| m.1), Some(1));
    }

    /// A pipe that records each low-water mark with the bytes read before it.
    struct Marked {
        inner: tokio::io::DuplexStream,
        delivered: usize,
        marks: Mutex<Vec<(usize, usize)>>,
    }

    impl LowWater for Marked {
        fn set_low_water(&self, bytes: usize) {
            self.marks.lock().unwrap().push((self.delivered, bytes));
        }
    }

    impl AsyncRead for Marked {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let before = buf.filled().len();
            let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
            self.delivered += buf.filled().len() - before;
            polled
        }
    }

    #[tokio::test]
    async fn a_closed_socket_or_an_abort_ends_the_reading() {
        let waiting: Mutex<VecDeque<(i32, Waiter)>> = Mutex::default();
        let abort = Notify::new();
        let (mut client, mut server) = tokio::io::duplex(1024);
        // Half of a large answer, then the SPU goes.
        server
            .write_all(&frame(1, LARGE_ANSWER_BYTES, 0)[..500])
            .await
            .unwrap();
        drop(server);
        let (kind, _) = read_answers(&mut client, &waiting, &abort).await;
        assert_eq!(kind, std::io::ErrorKind::UnexpectedEof);

        let (mut client, _server) = tokio::io::duplex(1024);
        abort.notify_one();
        let (kind, _) = read_answers(&mut client, &waiting, &abort).await;
        assert_eq!(kind, std::io::ErrorKind::TimedOut);
    }
}

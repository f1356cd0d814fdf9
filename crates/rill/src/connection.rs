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
use rill_protocol::FrameDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify, Semaphore};

use crate::RillError;

/// Requests sent and not yet answered, per connection.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 64;
/// Largest response accepted (a Fetch answer is bounded by its max_bytes).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
pub(crate) const CLIENT_ID: &str = "rill";
/// How long connecting (TCP, then the ApiVersions handshake) may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
        let connect_err = |reason: String| RillError::Connect {
            addr: addr.to_owned(),
            reason,
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
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
            use std::io::ErrorKind;
            let decoder = FrameDecoder::new(MAX_RESPONSE_BYTES);
            let mut buf = BytesMut::with_capacity(64 * 1024);
            let (kind, reason) = loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        let mut frame = frame.freeze();
                        if frame.len() < 4 {
                            break (
                                ErrorKind::InvalidData,
                                "response without a correlation id".to_string(),
                            );
                        }
                        let cid = frame.clone().get_i32();
                        let waiter = waiting
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .pop_front();
                        match waiter {
                            Some((expected, (tx, _slot))) if expected == cid => {
                                let _ = tx.send(Ok(std::mem::take(&mut frame)));
                            }
                            _ => {
                                break (
                                    ErrorKind::InvalidData,
                                    format!("unexpected correlation id {cid}"),
                                )
                            }
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => break (ErrorKind::InvalidData, e.to_string()),
                }
                tokio::select! {
                    read = reader.read_buf(&mut buf) => match read {
                        Ok(0) => break (ErrorKind::UnexpectedEof, "closed by the SPU".to_string()),
                        Ok(_) => {}
                        Err(e) => break (e.kind(), e.to_string()),
                    },
                    _ = abort.notified() => {
                        break (
                            ErrorKind::TimedOut,
                            "closed by the client after a request timed out".to_string(),
                        )
                    }
                }
            };
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

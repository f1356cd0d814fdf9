//! A TCP fault proxy for the isolation suite (`tests/it/isolation.rs`):
//! it listens on `127.0.0.1:0` and relays each connection to an upstream
//! address, byte for byte, until told to isolate.
//!
//! Two faults, for every connection through the proxy or (Kafka mode only)
//! for the connections one SPU makes, recognised by the client id of their
//! first request (`rill-spu-<id>`, what a follower's copy loop sends):
//!
//! - [`Fault::Cut`]: open connections are closed at once; new ones are
//!   accepted and closed (a reset network, a refused connection);
//! - [`Fault::Blackhole`]: open connections stop carrying bytes either way
//!   and stay open; new ones are accepted and never relayed (a silent
//!   partition: no FIN, no RST, only the clients' own timeouts end it).
//!
//! [`Proxy::heal`] lets new connections through again; connections held by
//! a blackhole are closed then (the partition outlived them, as a TCP
//! connection dies when its retransmissions give up or a middlebox forgets
//! it).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest a connection to the upstream may take.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A first Kafka request frame larger than this is not a client's: the
/// connection is closed.
const MAX_FIRST_FRAME: usize = 64 * 1024 * 1024;
/// The client id prefix of an SPU's own requests to another SPU.
const SPU_CLIENT_ID: &str = "rill-spu-";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Cut,
    Blackhole,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Faults {
    /// Every connection through the proxy.
    all: Option<Fault>,
    /// Connections SPU `id` makes (Kafka mode).
    from_spu: Vec<(u32, Fault)>,
}

impl Faults {
    /// The fault on a connection of `spu` (`None`: a client's).
    fn on(&self, spu: Option<u32>) -> Option<Fault> {
        self.all.or_else(|| {
            let id = spu?;
            self.from_spu
                .iter()
                .find(|(s, _)| *s == id)
                .map(|(_, f)| *f)
        })
    }
}

/// One proxy; stopped (with every connection through it) when dropped.
#[derive(Debug)]
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    upstream: Arc<Mutex<Option<SocketAddr>>>,
    faults: watch::Sender<Faults>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0`. With `kafka`, each connection's first
    /// request is read to learn whether an SPU makes it. Connections made
    /// before [`set_upstream`](Self::set_upstream) are closed.
    pub async fn start(kafka: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a proxy on 127.0.0.1:0");
        let addr = listener.local_addr().expect("the proxy's address");
        let upstream: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let (faults, _) = watch::channel(Faults::default());
        let (up, rx) = (upstream.clone(), faults.subscribe());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { continue };
                        let _ = client.set_nodelay(true);
                        let to = *up.lock().unwrap_or_else(|p| p.into_inner());
                        conns.spawn(serve(client, to, kafka, rx.clone()));
                    }
                    // Reap finished connections.
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Self {
            addr,
            upstream,
            faults,
            task,
        }
    }

    /// Where connections made from now on go.
    pub fn set_upstream(&self, to: SocketAddr) {
        *self.upstream.lock().unwrap_or_else(|p| p.into_inner()) = Some(to);
    }

    /// `fault` on every connection through this proxy.
    pub fn isolate(&self, fault: Fault) {
        self.faults.send_modify(|f| f.all = Some(fault));
    }

    /// `fault` on the connections SPU `spu` makes through this proxy.
    pub fn isolate_spu(&self, spu: u32, fault: Fault) {
        self.faults.send_modify(|f| {
            f.from_spu.retain(|(s, _)| *s != spu);
            f.from_spu.push((spu, fault));
        });
    }

    /// No fault: new connections are relayed; blackholed ones close.
    pub fn heal(&self) {
        self.faults.send_replace(Faults::default());
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet: every connection task
        // is aborted and its sockets closed.
        self.task.abort();
    }
}

/// Returns once a fault is on a connection of `spu`.
async fn until_fault(faults: &mut watch::Receiver<Faults>, spu: Option<u32>) -> Fault {
    match faults.wait_for(|f| f.on(spu).is_some()).await {
        Ok(f) => f.on(spu).unwrap_or(Fault::Cut),
        // The proxy is gone.
        Err(_) => Fault::Cut,
    }
}

/// What a fault does to a connection: a cut returns at once (the caller
/// drops the sockets); a blackhole holds them, silent, until healed.
async fn suffer(fault: Fault, faults: &mut watch::Receiver<Faults>, spu: Option<u32>) {
    if fault == Fault::Blackhole {
        let _ = faults.wait_for(|f| f.on(spu).is_none()).await;
    }
}

/// One whole Kafka request frame (size prefix included), or `None` at EOF.
async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await.ok()?;
    let len = usize::try_from(i32::from_be_bytes(size)).ok()?;
    if len > MAX_FIRST_FRAME {
        return None;
    }
    let mut frame = vec![0u8; 4 + len];
    frame[..4].copy_from_slice(&size);
    stream.read_exact(&mut frame[4..]).await.ok()?;
    Some(frame)
}

/// The SPU id in a request's client id (`rill-spu-<id>`): the request
/// header is api key, version, correlation id (8 bytes), then the client
/// id as a nullable string (i16 length) in every header version.
fn spu_of(frame: &[u8]) -> Option<u32> {
    let body = frame.get(4..)?;
    let len = usize::try_from(i16::from_be_bytes([*body.get(8)?, *body.get(9)?])).ok()?;
    let id = std::str::from_utf8(body.get(10..10 + len)?).ok()?;
    id.strip_prefix(SPU_CLIENT_ID)?.parse().ok()
}

async fn serve(
    mut client: TcpStream,
    upstream: Option<SocketAddr>,
    kafka: bool,
    mut faults: watch::Receiver<Faults>,
) {
    let Some(upstream) = upstream else { return };
    // Whose connection: known from its first request in Kafka mode.
    let mut first = None;
    let mut spu = None;
    if kafka {
        tokio::select! {
            frame = read_frame(&mut client) => {
                let Some(frame) = frame else { return };
                spu = spu_of(&frame);
                first = Some(frame);
            }
            fault = until_fault(&mut faults, None) => {
                return suffer(fault, &mut faults, None).await;
            }
        }
    }
    let now = faults.borrow_and_update().on(spu);
    if let Some(fault) = now {
        return suffer(fault, &mut faults, spu).await;
    }
    let connect = tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(upstream));
    let Ok(Ok(mut server)) = connect.await else {
        return;
    };
    let _ = server.set_nodelay(true);
    if let Some(frame) = first {
        if server.write_all(&frame).await.is_err() {
            return;
        }
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        fault = until_fault(&mut faults, spu) => {
            // Both sockets stay open (held here) while a blackhole lasts.
            suffer(fault, &mut faults, spu).await;
        }
    }
    drop(server);
    drop(client);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_id_names_the_spu() {
        let mut body = vec![0, 1, 0, 12, 0, 0, 0, 7];
        body.extend_from_slice(&(10i16).to_be_bytes());
        body.extend_from_slice(b"rill-spu-2");
        body.extend_from_slice(&[0, 0]);
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        assert_eq!(spu_of(&frame), Some(2));
        let mut other = frame.clone();
        other[4 + 10..4 + 20].copy_from_slice(b"rdkafka-00");
        assert_eq!(spu_of(&other), None);
        // A null client id.
        let mut null = frame;
        null[4 + 8..4 + 10].copy_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(spu_of(&null), None);
        assert_eq!(spu_of(&[0, 0, 0, 2, 0, 1]), None);
    }

    #[tokio::test]
    async fn cuts_blackholes_and_heals() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let proxy = Proxy::start(false).await;
        proxy.set_upstream(echo_addr);
        let ping = |mut s: TcpStream| async move {
            s.write_all(b"ping").await.ok()?;
            let mut buf = [0u8; 4];
            tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut buf))
                .await
                .ok()?
                .ok()?;
            Some((s, buf))
        };
        let s = TcpStream::connect(proxy.addr).await.unwrap();
        let (s, buf) = ping(s).await.expect("relayed");
        assert_eq!(&buf, b"ping");
        // Blackhole: the open connection goes silent, a new one too.
        proxy.isolate(Fault::Blackhole);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(ping(s).await.is_none());
        let s = TcpStream::connect(proxy.addr).await.unwrap();
        assert!(ping(s).await.is_none());
        // Healed: new connections are relayed.
        proxy.heal();
        let s = TcpStream::connect(proxy.addr).await.unwrap();
        let (mut s, _) = ping(s).await.expect("relayed after healing");
        // Cut: the open connection is closed.
        proxy.isolate(Fault::Cut);
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
        proxy.heal();
        let s = TcpStream::connect(proxy.addr).await.unwrap();
        assert!(ping(s).await.is_some());
    }
}

//! A fault-injecting TCP proxy for tests: it relays Kafka frames between a
//! client and the SPU, and can drop the connection instead of relaying an
//! answer (the request was served, the client never hears), delay answers,
//! or blackhole them, until healed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PASS: u8 = 0;
const DROP_EVERY_NTH_ANSWER: u8 = 1;
const BLACKHOLE: u8 = 2;
const CUT_PRODUCE: u8 = 3;
/// Produce requests are what `cut_produce` cuts.
const PRODUCE_API_KEY: i16 = ApiKey::Produce as i16;

#[derive(Debug)]
struct Control {
    mode: AtomicU8,
    nth: AtomicU64,
    answers: AtomicU64,
    dropped: AtomicU64,
    delay_ms: AtomicU64,
    /// The most Produce requests ever waiting for their answer at once (on
    /// one connection).
    max_outstanding: AtomicU64,
    /// Client connections accepted so far (also the number of the last).
    accepted: AtomicU64,
    /// Connections numbered up to this one never get another answer.
    hung_up_to: AtomicU64,
    /// When each Produce request cut by [`FaultProxy::cut_produce`] arrived.
    cut_at: std::sync::Mutex<Vec<std::time::Instant>>,
}

/// A proxy on `127.0.0.1:0` in front of one upstream address; clients
/// connect to [`FaultProxy::addr`]. Each client connection gets its own
/// upstream connection. Stopped when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    control: Arc<Control>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0`, relaying everything to `upstream` until a
    /// fault is set.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy on 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let control = Arc::new(Control {
            mode: AtomicU8::new(PASS),
            nth: AtomicU64::new(0),
            answers: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
            max_outstanding: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            hung_up_to: AtomicU64::new(0),
            cut_at: std::sync::Mutex::new(Vec::new()),
        });
        let c = control.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let number = c.accepted.fetch_add(1, Ordering::SeqCst) + 1;
                let c = c.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    relay(client, server, c, number).await;
                });
            }
        });
        Self {
            addr,
            control,
            task,
        }
    }

    /// Cut the connection instead of relaying every `n`-th answer.
    pub fn drop_every_nth_answer(&self, n: u64) {
        self.control.nth.store(n, Ordering::SeqCst);
        self.control
            .mode
            .store(DROP_EVERY_NTH_ANSWER, Ordering::SeqCst);
    }

    /// Hold every answer forever (the connection stays open).
    pub fn blackhole(&self) {
        self.control.mode.store(BLACKHOLE, Ordering::SeqCst);
    }

    /// Delay every answer.
    pub fn delay(&self, by: Duration) {
        self.control
            .delay_ms
            .store(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// Cut the connection whenever a Produce request arrives, before the SPU
    /// sees it (nothing is stored), noting the time.
    pub fn cut_produce(&self) {
        self.control.mode.store(CUT_PRODUCE, Ordering::SeqCst);
    }

    /// When each cut Produce request arrived, in order; clears the list.
    pub fn take_cut_times(&self) -> Vec<std::time::Instant> {
        std::mem::take(&mut *self.control.cut_at.lock().unwrap())
    }

    /// Back to relaying everything at once.
    pub fn heal(&self) {
        self.control.mode.store(PASS, Ordering::SeqCst);
        self.control.delay_ms.store(0, Ordering::SeqCst);
    }

    /// How many answers were cut so far.
    pub fn dropped(&self) -> u64 {
        self.control.dropped.load(Ordering::SeqCst)
    }

    /// Every connection open now hangs: its requests still reach the SPU,
    /// but no answer comes back on it, ever, while it stays open.
    /// Connections made later are served (a hung SPU connection, as a
    /// half-dead NAT or socket gives).
    pub fn hang_open_connections(&self) {
        let open = self.control.accepted.load(Ordering::SeqCst);
        self.control.hung_up_to.store(open, Ordering::SeqCst);
    }

    /// Client connections accepted so far (a client that drops a
    /// connection and makes a new one counts twice).
    pub fn accepted(&self) -> u64 {
        self.control.accepted.load(Ordering::SeqCst)
    }

    /// The most Produce requests one connection had waiting for answers at
    /// once.
    pub fn max_outstanding(&self) -> u64 {
        self.control.max_outstanding.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, server: TcpStream, c: Arc<Control>, number: u64) {
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    // Whether each request waiting for its answer is a Produce (answers
    // come in request order), to know how many Produce requests wait: the
    // pipelining the tests look at, whatever Metadata goes alongside.
    let kinds = Arc::new(std::sync::Mutex::new(
        std::collections::VecDeque::<bool>::new(),
    ));
    let produce_waiting = Arc::new(AtomicU64::new(0));
    let (up_kinds, up_waiting, up_c) = (kinds.clone(), produce_waiting.clone(), c.clone());
    let up = async move {
        loop {
            let mut size = [0u8; 4];
            if client_rd.read_exact(&mut size).await.is_err() {
                return;
            }
            let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
            if client_rd.read_exact(&mut body).await.is_err() {
                return;
            }
            let api_key = i16::from_be_bytes([body[0], body[1]]);
            if api_key == PRODUCE_API_KEY && up_c.mode.load(Ordering::SeqCst) == CUT_PRODUCE {
                up_c.cut_at.lock().unwrap().push(std::time::Instant::now());
                return;
            }
            let produce = api_key == PRODUCE_API_KEY;
            up_kinds.lock().unwrap().push_back(produce);
            if produce {
                let waiting = up_waiting.fetch_add(1, Ordering::SeqCst) + 1;
                up_c.max_outstanding.fetch_max(waiting, Ordering::SeqCst);
            }
            if server_wr.write_all(&size).await.is_err()
                || server_wr.write_all(&body).await.is_err()
            {
                return;
            }
        }
    };
    let down = async move {
        loop {
            let mut size = [0u8; 4];
            if server_rd.read_exact(&mut size).await.is_err() {
                return;
            }
            let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
            if server_rd.read_exact(&mut body).await.is_err() {
                return;
            }
            let delay = c.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if number <= c.hung_up_to.load(Ordering::SeqCst) {
                continue; // hung: answers are swallowed
            }
            if kinds.lock().unwrap().pop_front() == Some(true) {
                produce_waiting.fetch_sub(1, Ordering::SeqCst);
            }
            let count = c.answers.fetch_add(1, Ordering::SeqCst) + 1;
            match c.mode.load(Ordering::SeqCst) {
                DROP_EVERY_NTH_ANSWER
                    if count.is_multiple_of(c.nth.load(Ordering::SeqCst).max(1)) =>
                {
                    c.dropped.fetch_add(1, Ordering::SeqCst);
                    return; // both halves go: the connection is cut
                }
                BLACKHOLE => {
                    // Swallow answers until healed.
                    while c.mode.load(Ordering::SeqCst) == BLACKHOLE {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    return;
                }
                _ => {}
            }
            if client_wr.write_all(&size).await.is_err()
                || client_wr.write_all(&body).await.is_err()
            {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

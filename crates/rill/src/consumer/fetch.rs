//! Reading several partitions whose leaders may be different SPUs.
//!
//! Partitions are grouped by leader, and each group's Fetch runs on its
//! own (at most one per SPU, at most one per partition, so a partition's
//! records still come in offset order): a future the stream polls itself,
//! not a spawned task, so an answer wakes the consumer directly. A round
//! takes the first answer with records; an SPU with nothing new long-polls
//! on its own and never holds back records another SPU already sent (the
//! alternative, one joint round with a capped wait, would either delay
//! records by the idle SPU's wait or poll idle SPUs far more often). The
//! Fetches go on the stream's own connections, one per SPU: an SPU answers
//! a connection's requests in turn, and a parked long poll on the client's
//! shared connection would hold up its producers and Metadata.
//!
//! What happens on each error, in a cluster (a Metadata answer listed
//! several SPUs):
//! - `NOT_LEADER_OR_FOLLOWER`, `LEADER_NOT_AVAILABLE`,
//!   `UNKNOWN_TOPIC_OR_PARTITION`, a fenced or unknown leader epoch, a lost
//!   or refused connection, or a Fetch unanswered past its wait: the
//!   partition waits [`RETRY_BACKOFF`], Metadata is asked again (at most
//!   once per backoff), and reading goes on at the partition's new leader.
//! - A partition with no leader is not fetched; Metadata is asked again
//!   every backoff until it has one (the consumer keeps waiting, as Kafka
//!   consumers do; `try_next` returns `None` meanwhile).
//! - Any other error (an offset out of range, a malformed answer) is
//!   returned; the stream goes on from where it was if asked again.
//!
//! With one SPU every error is returned as it comes, as before.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use rill_protocol::batch::{split_batches, BatchHeader};
use rill_protocol::RecordBatch;

use super::{topic_name, ConsumerConfig, ConsumerRecord};
use crate::client::ClientInner;
use crate::config::Isolation;
use crate::connection::Connection;
use crate::routes::Route;
use crate::RillError;

/// Most a compressed batch may expand to on the consumer side.
const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;
/// How long a partition whose leader failed waits before it is fetched
/// again, and the least time between two Metadata requests of a stream
/// (Kafka's `retry.backoff.ms`).
pub(super) const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Beyond the long-poll wait, how long a Fetch answer may take before its
/// connection counts as lost.
const FETCH_SLACK: Duration = Duration::from_secs(10);

/// Errors that mean "the leader is elsewhere, or away": the client asks
/// where it is now and goes on.
const LEADER_CODES: [i16; 5] = [
    ResponseError::NotLeaderOrFollower.code(),
    ResponseError::LeaderNotAvailable.code(),
    ResponseError::UnknownTopicOrPartition.code(),
    ResponseError::FencedLeaderEpoch.code(),
    ResponseError::UnknownLeaderEpoch.code(),
];

/// Whether `e` means the partition's leader moved, is away, or could not
/// be reached: worth a Metadata refresh and another try.
pub(super) fn is_leader_trouble(e: &RillError) -> bool {
    match e {
        RillError::Transport { .. } | RillError::Connect { .. } | RillError::Timeout { .. } => true,
        RillError::Broker { code, .. } => LEADER_CODES.contains(code),
        _ => false,
    }
}

/// One partition's reading position.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) partition: u32,
    /// The next offset to fetch.
    pub(super) offset: i64,
    /// From the last answer for it.
    pub(super) high_watermark: Option<i64>,
    /// A Fetch for it is under way.
    fetching: bool,
    /// After a leader error: not fetched again before then.
    retry_at: Option<Instant>,
}

/// What one partition's part of a Fetch answer said.
#[derive(Debug)]
enum PartitionAnswer {
    /// Batches as fetched, not yet decoded: the next Fetch goes out
    /// first (its offset comes from the batch headers alone), so the SPU
    /// sends the next answer while these records are decoded.
    Records {
        partition: u32,
        from: i64,
        next: i64,
        data: Bytes,
        high_watermark: i64,
    },
    Failed {
        partition: u32,
        from: i64,
        code: i16,
    },
}

/// One Fetch's outcome.
#[derive(Debug)]
struct Fetched {
    route: Route,
    asked: Vec<(u32, i64)>,
    /// The connection it used, kept for the next Fetch to that SPU.
    conn: Option<Arc<Connection>>,
    result: Result<Vec<PartitionAnswer>, RillError>,
}

/// Reads several partitions of one topic, each at its leader: records come
/// in offset order within each partition, partitions interleaved.
///
/// In a cluster, a partition whose leader moved or went away is found
/// again through Metadata and read on from where it was; one without a
/// leader is waited for (`next` waits, `try_next` gives `None`). With one
/// SPU every error is returned. Errors that are not about leaders (an
/// offset out of range) are returned either way; asking again goes on
/// from where the stream was.
#[derive(Debug)]
pub struct MultiPartitionStream {
    client: Arc<ClientInner>,
    topic: String,
    config: ConsumerConfig,
    pub(super) slots: Vec<Slot>,
    pub(super) buffer: VecDeque<ConsumerRecord>,
    /// One Fetch per leader at most; dropped (abandoned) with the stream.
    fetches: InFlight<Fetched>,
    /// The stream's own connection to each leader it reads from (see
    /// [`ClientInner::own_connection`]): at most one per SPU, since each
    /// SPU has at most one Fetch of the stream under way.
    conns: HashMap<Route, Arc<Connection>>,
    /// Metadata is to be asked again before the next round.
    stale: bool,
    refreshed_at: Option<Instant>,
}

impl MultiPartitionStream {
    /// A stream over `positions` (`(partition, next offset)`).
    pub(crate) fn new(
        client: Arc<ClientInner>,
        topic: &str,
        config: ConsumerConfig,
        positions: impl IntoIterator<Item = (u32, i64)>,
    ) -> Self {
        Self {
            client,
            topic: topic.to_owned(),
            config,
            slots: positions
                .into_iter()
                .map(|(partition, offset)| Slot {
                    partition,
                    offset,
                    high_watermark: None,
                    fetching: false,
                    retry_at: None,
                })
                .collect(),
            buffer: VecDeque::new(),
            fetches: InFlight::default(),
            conns: HashMap::new(),
            stale: false,
            refreshed_at: None,
        }
    }

    pub(crate) async fn start(
        client: Arc<ClientInner>,
        topic: &str,
        partitions: &[u32],
        offset: super::Offset,
        config: ConsumerConfig,
    ) -> Result<Self, RillError> {
        let mut positions = Vec::with_capacity(partitions.len());
        for &p in partitions {
            let single = super::PartitionConsumer {
                client: client.clone(),
                topic: topic.to_owned(),
                partition: p,
                config: config.clone(),
            };
            positions.push((p, single.start_offset(offset).await?));
        }
        Ok(Self::new(client, topic, config, positions))
    }

    /// The next record of any partition, waiting if none has one yet.
    pub async fn next(&mut self) -> Result<ConsumerRecord, RillError> {
        loop {
            if let Some(r) = self.buffer.pop_front() {
                // The next Fetch runs while these records are taken, as
                // Kafka consumers prefetch: at most one Fetch per partition
                // is under way, so this holds at most two answers.
                if self.fetches.is_empty() {
                    self.launch();
                }
                return Ok(r);
            }
            self.round(true).await?;
        }
    }

    /// The next record if one arrives within the SPUs' long-poll wait:
    /// `None` once every leader answered with nothing new (partitions
    /// without a leader count as having nothing).
    pub async fn try_next(&mut self) -> Result<Option<ConsumerRecord>, RillError> {
        if self.buffer.is_empty() {
            self.round(false).await?;
        }
        Ok(self.buffer.pop_front())
    }

    /// The next record already fetched, without waiting or fetching (None
    /// when the last fetch's records are all taken).
    pub fn next_buffered(&mut self) -> Option<ConsumerRecord> {
        self.buffer.pop_front()
    }

    /// Fetches until records come, or until every Fetch under way when it
    /// began has answered with none; with `retry_early`, also until a
    /// partition's wait after a leader error is over (so `next` does not
    /// leave it waiting behind another SPU's long poll).
    async fn round(&mut self, retry_early: bool) -> Result<(), RillError> {
        self.refresh_if_due().await;
        self.launch();
        let mut waiting = self.fetches.len();
        if waiting == 0 {
            // Nothing can be fetched now (no leaders, or all wait out a
            // failure): wait a little rather than spin.
            let now = Instant::now();
            let until = self
                .slots
                .iter()
                .filter_map(|s| s.retry_at)
                .min()
                .map_or(now + RETRY_BACKOFF, |t| t.min(now + RETRY_BACKOFF));
            tokio::time::sleep_until(until.into()).await;
            return Ok(());
        }
        while waiting > 0 {
            let retry_at = self
                .slots
                .iter()
                .filter(|s| retry_early && !s.fetching)
                .filter_map(|s| s.retry_at)
                .min();
            // `next` is cancel safe: a Fetch that ends while the timer
            // wins stays in the set for the next round.
            let fetched = tokio::select! {
                fetched = self.fetches.next() => fetched,
                _ = sleep_until(retry_at), if retry_at.is_some() => break,
            };
            let Some(fetched) = fetched else {
                break;
            };
            waiting -= 1;
            self.absorb(fetched)?;
            if !self.buffer.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Asks where the leaders are, if an error said they moved and the
    /// last refresh is at least [`RETRY_BACKOFF`] old. A failure is only
    /// logged: the next round tries again.
    async fn refresh_if_due(&mut self) {
        let now = Instant::now();
        if !self.stale || self.refreshed_at.is_some_and(|t| now < t + RETRY_BACKOFF) {
            return;
        }
        self.refreshed_at = Some(now);
        match self.client.partitions(&self.topic).await {
            Ok(_) => self.stale = false,
            Err(e) => tracing::debug!(topic = %self.topic, error = %e, "metadata refresh failed"),
        }
    }

    /// Starts a Fetch per leader for the partitions that have a leader and
    /// no Fetch under way.
    fn launch(&mut self) {
        let now = Instant::now();
        let mut groups: BTreeMap<Route, Vec<(u32, i64)>> = BTreeMap::new();
        for s in &mut self.slots {
            if s.fetching || s.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            s.retry_at = None;
            match self.client.route(&self.topic, s.partition) {
                Route::NoLeader => {
                    self.stale = true;
                    s.retry_at = Some(now + RETRY_BACKOFF);
                }
                route => groups
                    .entry(route)
                    .or_default()
                    .push((s.partition, s.offset)),
            }
        }
        for (route, asked) in groups {
            for s in self
                .slots
                .iter_mut()
                .filter(|s| asked.iter().any(|(p, _)| *p == s.partition))
            {
                s.fetching = true;
            }
            let conn = self.conns.remove(&route).filter(|c| !c.is_closed());
            let fetch = fetch_from(
                self.client.clone(),
                conn,
                route,
                self.topic.clone(),
                self.config.clone(),
                asked,
            );
            self.fetches.push(fetch);
        }
    }

    /// Takes in a Fetch's outcome: records to the buffer, positions on,
    /// leader trouble noted for a refresh.
    fn absorb(&mut self, fetched: Fetched) -> Result<(), RillError> {
        let now = Instant::now();
        for (p, _) in &fetched.asked {
            if let Some(s) = self.slots.iter_mut().find(|s| s.partition == *p) {
                s.fetching = false;
            }
        }
        if let Some(conn) = fetched.conn.filter(|c| !c.is_closed()) {
            self.conns.insert(fetched.route.clone(), conn);
        }
        let cluster = self.client.is_cluster();
        let answers = match fetched.result {
            Ok(answers) => answers,
            Err(e) if cluster && is_leader_trouble(&e) => {
                tracing::debug!(topic = %self.topic, error = %e, "fetch failed: asking where the leaders are");
                self.stale = true;
                for (p, _) in &fetched.asked {
                    self.back_off(*p, now);
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut fetched_data = Vec::new();
        for answer in answers {
            match answer {
                PartitionAnswer::Records {
                    partition,
                    from,
                    next,
                    data,
                    high_watermark,
                } => {
                    let Some(s) = self.slots.iter_mut().find(|s| s.partition == partition) else {
                        continue;
                    };
                    if s.offset != from {
                        continue; // not the position asked for (a stale prefetch)
                    }
                    s.offset = next;
                    s.high_watermark = Some(high_watermark);
                    if !data.is_empty() {
                        fetched_data.push((partition, from, data));
                    }
                }
                PartitionAnswer::Failed {
                    partition, code, ..
                } if cluster && LEADER_CODES.contains(&code) => {
                    tracing::debug!(topic = %self.topic, partition, code, "leader moved or away");
                    self.stale = true;
                    self.back_off(partition, now);
                }
                PartitionAnswer::Failed {
                    partition,
                    from,
                    code,
                } => {
                    return Err(RillError::broker(
                        format!("fetching {}-{partition} at {from}", self.topic),
                        code,
                        None,
                    ))
                }
            }
        }
        if fetched_data.is_empty() {
            return Ok(());
        }
        // Prefetch: the next Fetch of these partitions runs while their
        // records are decoded and taken (still one Fetch per partition,
        // so at most two answers are held).
        self.launch();
        for (partition, from, data) in fetched_data {
            if let Err(e) = decode_records(&data, partition, from, &mut self.buffer) {
                // Back to the bad batch: the prefetch's answer no longer
                // matches the position and is dropped when it comes.
                if let Some(s) = self.slots.iter_mut().find(|s| s.partition == partition) {
                    s.offset = from;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn back_off(&mut self, partition: u32, now: Instant) {
        if let Some(s) = self.slots.iter_mut().find(|s| s.partition == partition) {
            s.retry_at = Some(now + RETRY_BACKOFF);
        }
    }
}

/// The Fetches under way, polled by the stream's own task instead of
/// spawned: an answer wakes the consumer directly (no task in between, no
/// worker woken to run one), and nothing runs without the stream.
struct InFlight<T> {
    /// In a `Mutex` only so the set is `Sync` (streams are shared by
    /// reference across awaits); it is only reached through `&mut self`,
    /// with `get_mut`, never locked.
    running: std::sync::Mutex<Vec<Boxed<T>>>,
    done: VecDeque<T>,
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        Self {
            running: Default::default(),
            done: VecDeque::new(),
        }
    }
}

impl<T> std::fmt::Debug for InFlight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("running", &self.running.lock().map_or(0, |r| r.len()))
            .field("done", &self.done.len())
            .finish()
    }
}

impl<T> InFlight<T> {
    /// Adds a Fetch and polls it once at once, so its request is written
    /// now (a prefetch goes out before the records before it are decoded).
    /// That poll's waker does nothing: the stream polls again, with its
    /// own, when it waits for an answer.
    fn push(&mut self, fetch: impl Future<Output = T> + Send + 'static) {
        let mut fetch: Boxed<T> = Box::pin(fetch);
        match fetch
            .as_mut()
            .poll(&mut TaskContext::from_waker(Waker::noop()))
        {
            Poll::Ready(fetched) => self.done.push_back(fetched),
            Poll::Pending => self.running_mut().push(fetch),
        }
    }

    fn running_mut(&mut self) -> &mut Vec<Boxed<T>> {
        self.running.get_mut().unwrap_or_else(|p| p.into_inner())
    }

    fn len(&mut self) -> usize {
        self.running_mut().len() + self.done.len()
    }

    fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// The next Fetch to end (`None` when none is under way). Cancel
    /// safe: the Fetches stay in the set until one ends.
    async fn next(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| {
            if let Some(fetched) = self.done.pop_front() {
                return Poll::Ready(Some(fetched));
            }
            let running = self.running_mut();
            if running.is_empty() {
                return Poll::Ready(None);
            }
            for i in 0..running.len() {
                if let Poll::Ready(fetched) = running[i].as_mut().poll(cx) {
                    drop(running.swap_remove(i));
                    return Poll::Ready(Some(fetched));
                }
            }
            Poll::Pending
        })
        .await
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// One Fetch for `asked` (`(partition, offset)`) at `route`, decoded, on
/// `conn` or, without one, a new connection of the stream's own.
async fn fetch_from(
    client: Arc<ClientInner>,
    conn: Option<Arc<Connection>>,
    route: Route,
    topic: String,
    config: ConsumerConfig,
    asked: Vec<(u32, i64)>,
) -> Fetched {
    let conn = match conn {
        Some(c) => Ok(c),
        None => {
            client
                .own_connection(
                    &route,
                    crate::receive_buffer::for_fetches(config.max_bytes),
                    || format!("fetching from {topic}"),
                )
                .await
        }
    };
    let (conn, result) = match conn {
        Ok(c) => {
            let result = fetch(&c, &topic, &config, &asked).await;
            (Some(c), result)
        }
        Err(e) => (None, Err(e)),
    };
    Fetched {
        route,
        asked,
        conn,
        result,
    }
}

async fn fetch(
    conn: &Connection,
    topic: &str,
    config: &ConsumerConfig,
    asked: &[(u32, i64)],
) -> Result<Vec<PartitionAnswer>, RillError> {
    let version = conn.version::<FetchRequest>(12)?;
    let isolation = match config.isolation {
        Isolation::ReadUncommitted => 0,
        Isolation::ReadCommitted => 1,
    };
    let partitions = asked
        .iter()
        .map(|&(p, offset)| {
            FetchPartition::default()
                .with_partition(p as i32)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(config.max_bytes)
        })
        .collect();
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(config.max_wait.as_millis().min(i32::MAX as u128) as i32)
        .with_min_bytes(1)
        .with_max_bytes(config.max_bytes)
        .with_isolation_level(isolation)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(partitions)]);
    let allowed = config.max_wait + FETCH_SLACK;
    let resp = match tokio::time::timeout(allowed, conn.send(req, version)).await {
        Ok(answer) => answer?,
        Err(_) => {
            // Its answer may still come and be taken for another's.
            conn.abort();
            return Err(RillError::Timeout {
                what: format!("fetching from {topic}"),
                after: allowed,
            });
        }
    };
    let mut out = Vec::with_capacity(asked.len());
    for p in resp.responses.iter().flat_map(|t| &t.partitions) {
        let partition = p.partition_index as u32;
        let Some(&(_, from)) = asked.iter().find(|(q, _)| *q == partition) else {
            continue;
        };
        if p.error_code != 0 {
            out.push(PartitionAnswer::Failed {
                partition,
                from,
                code: p.error_code,
            });
            continue;
        }
        let data = p.records.clone().unwrap_or_default();
        out.push(PartitionAnswer::Records {
            partition,
            from,
            next: next_offset(&data, from),
            data,
            high_watermark: p.high_watermark,
        });
    }
    Ok(out)
}

/// `part` as a view of `frame` when it lies inside it (records of an
/// uncompressed batch: no allocation, no copy), else a copy (records
/// decompressed into a buffer of their own).
fn share(frame: &Bytes, part: &[u8]) -> Bytes {
    let outer = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
    let start = part.as_ptr() as usize;
    if part.is_empty() || !outer.contains(&start) || start + part.len() > outer.end {
        return Bytes::copy_from_slice(part);
    }
    frame.slice_ref(part)
}

/// The offset to fetch after `records` (fetched from `from`), from the
/// batch headers alone (a response may end inside a batch: the next fetch
/// gets that one whole).
fn next_offset(records: &[u8], mut from: i64) -> i64 {
    for slice in split_batches(records) {
        let Some(header) = slice.ok().and_then(|b| BatchHeader::parse(b).ok()) else {
            break;
        };
        from = from.max(header.next_offset());
    }
    from
}

/// Decodes fetched batches into `out`, skipping records before `from`
/// (the offset to fetch next is [`next_offset`]'s).
fn decode_records(
    records: &Bytes,
    partition: u32,
    from: i64,
    out: &mut VecDeque<ConsumerRecord>,
) -> Result<(), RillError> {
    for slice in split_batches(records) {
        // A response may end inside a batch; the next fetch gets it whole.
        let Ok(slice) = slice else { break };
        let bad = |e: rill_protocol::BatchError| RillError::Protocol(e.to_string());
        let batch = RecordBatch::new(slice).map_err(bad)?;
        if !batch.header.attributes.is_control() {
            let set = batch.records(MAX_DECOMPRESSED_BYTES).map_err(bad)?;
            for r in set.iter() {
                let r = r.map_err(bad)?;
                if r.offset < from {
                    continue;
                }
                out.push_back(ConsumerRecord {
                    partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key.map(|k| share(records, k)),
                    value: share(records, r.value.unwrap_or_default()),
                    headers: r
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                String::from_utf8_lossy(h.key).into_owned(),
                                h.value.map(Bytes::copy_from_slice),
                            )
                        })
                        .collect(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A pushed Fetch has run up to its first wait before `push` returns
    /// (its request is written: the prefetch goes out before decoding);
    /// Fetches end in the order their answers come, whatever order they
    /// were pushed in; a `next` given up midway loses nothing.
    #[tokio::test]
    async fn fetches_start_when_pushed_and_end_in_answer_order() {
        let mut set: InFlight<u32> = InFlight::default();
        assert!(set.next().await.is_none());

        let started = Arc::new(AtomicBool::new(false));
        let (tx1, rx1) = tokio::sync::oneshot::channel::<()>();
        let flag = started.clone();
        set.push(async move {
            flag.store(true, Ordering::SeqCst);
            rx1.await.unwrap();
            1
        });
        assert!(started.load(Ordering::SeqCst), "not polled at push");
        let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
        set.push(async move {
            rx2.await.unwrap();
            2
        });
        set.push(async { 3 }); // done at once
        assert_eq!(set.len(), 3);
        assert_eq!(set.next().await, Some(3));

        // Nothing is ready: a `next` cut short by a timer keeps both.
        let cut = tokio::time::timeout(Duration::from_millis(20), set.next()).await;
        assert!(cut.is_err());
        assert_eq!(set.len(), 2);

        tx2.send(()).unwrap();
        assert_eq!(set.next().await, Some(2));
        tx1.send(()).unwrap();
        assert_eq!(set.next().await, Some(1));
        assert!(set.is_empty());
        assert!(set.next().await.is_none());
    }
}

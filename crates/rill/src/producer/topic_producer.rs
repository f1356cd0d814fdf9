//! The async producer: `send` feeds the accumulator; one sender task sleeps
//! until a batch is due and hands it to its partition's lane (`lane.rs`),
//! which sends it, retries it and completes each record's output.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rill_protocol::NewRecord;
use tokio::sync::{mpsc, oneshot, Notify};

use super::completion::{BatchCompletion, BatchSlot};

use super::lane::{self, Flight};
use super::{Accumulator, AccumulatorConfig, PartitionPicker, PushError};
use crate::client::ClientInner;
use crate::config::{DeliverySemantic, TopicProducerConfig};
use crate::RillError;

/// Requests in flight per partition when sequence numbers keep order (an
/// idempotent producer) or order under retry does not matter (at most once).
const PIPELINED_IN_FLIGHT: u32 = 5;
/// At least once without idempotence keeps one request in flight per
/// partition: a retried batch must not overtake a later one.
const ORDERED_IN_FLIGHT: u32 = 1;
/// How old the partition count may grow before `send` asks for it again
/// (Kafka's `metadata.max.age.ms` is 5 minutes; a topic re-created with more
/// partitions is seen sooner here).
const METADATA_MAX_AGE: Duration = Duration::from_secs(60);

/// A producer id and epoch from the SPU, for idempotent sends.
pub(super) async fn init_producer_id(client: &ClientInner) -> Result<(i64, i16), RillError> {
    use kafka_protocol::messages::InitProducerIdRequest;
    let conn = client.connection().await?;
    let version = conn.version::<InitProducerIdRequest>(4)?;
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let resp = conn.send(req, version).await?;
    match resp.error_code {
        0 => Ok((resp.producer_id.0, resp.producer_epoch)),
        code => Err(RillError::broker("InitProducerId", code, None)),
    }
}

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The partition the record went to.
    pub partition: u32,
    /// Its offset there (-1 when the SPU did not say, as with acks 0).
    pub offset: i64,
}

/// What `send` returns at once; `wait` gives the record's place once its
/// batch is acknowledged, or the error that ended it.
#[derive(Debug)]
pub struct ProduceOutput {
    slot: Arc<BatchSlot>,
    index: usize,
}

impl ProduceOutput {
    /// Waits for the record's batch to be answered: its place, or the error
    /// that ended it. Under `AtLeastOnce` that is after any retries; under
    /// `AtMostOnce` it is the single attempt's answer. "Answered" means at the
    /// producer's isolation: the leader has it (`ReadUncommitted`) or every
    /// in-sync replica has it (`ReadCommitted`).
    pub async fn wait(self) -> Result<RecordMetadata, RillError> {
        self.slot.wait(self.index).await.0
    }

    /// Like [`Self::wait`] without giving up the output, with the instant
    /// the answer arrived (for measuring `send` to acknowledgement).
    pub async fn answered(&self) -> (Result<RecordMetadata, RillError>, Instant) {
        self.slot.wait(self.index).await
    }

    /// The answer without waiting: `None` while the batch is unanswered,
    /// else the record's place (or the error) and the instant the answer
    /// arrived, which lets a caller measure `send` to acknowledgement
    /// exactly however late it looks.
    pub fn try_wait(&self) -> Option<(Result<RecordMetadata, RillError>, Instant)> {
        self.slot.try_get(self.index)
    }
}

/// A record key; `RecordKey::NULL` for none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey(Option<Vec<u8>>);

impl RecordKey {
    /// No key: the partitioner places the record.
    pub const NULL: RecordKey = RecordKey(None);
}

impl From<&str> for RecordKey {
    fn from(s: &str) -> Self {
        RecordKey(Some(s.as_bytes().to_vec()))
    }
}
impl From<String> for RecordKey {
    fn from(s: String) -> Self {
        RecordKey(Some(s.into_bytes()))
    }
}
impl From<&[u8]> for RecordKey {
    fn from(b: &[u8]) -> Self {
        RecordKey(Some(b.to_vec()))
    }
}
impl From<Vec<u8>> for RecordKey {
    fn from(b: Vec<u8>) -> Self {
        RecordKey(Some(b))
    }
}
impl<K: Into<RecordKey>> From<Option<K>> for RecordKey {
    fn from(k: Option<K>) -> Self {
        k.map_or(RecordKey::NULL, Into::into)
    }
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) acc: Accumulator<(), BatchCompletion>,
    picker: PartitionPicker,
    /// Batches handed to each partition's lane and not yet completed.
    in_flight: Vec<u32>,
    flush_waiters: Vec<oneshot::Sender<()>>,
    /// When the partition count was last asked for.
    metadata_at: Instant,
    /// Each partition's lane, started with its first batch.
    lanes: Vec<Option<mpsc::UnboundedSender<Flight>>>,
}

impl State {
    fn idle(&self) -> bool {
        self.acc.is_empty() && self.in_flight.iter().all(|n| *n == 0)
    }
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) client: Arc<ClientInner>,
    pub(super) topic: String,
    /// The topic's partition count as last seen.
    partitions: AtomicU32,
    pub(super) config: TopicProducerConfig,
    state: Mutex<State>,
    wake: Notify,
    space: Notify,
    closed: AtomicBool,
    /// A metadata refresh is under way.
    refreshing: AtomicBool,
    /// Record timestamps without a second clock read per record.
    clock: WallClock,
    /// The partition count may be wrong (an answer said so, or the last
    /// refresh failed): the next `send` asks again.
    metadata_stale: AtomicBool,
}

impl Inner {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn max_in_flight(&self) -> u32 {
        match self.config.delivery_semantic {
            DeliverySemantic::AtMostOnce => PIPELINED_IN_FLIGHT,
            DeliverySemantic::AtLeastOnce(_) if self.config.idempotent => PIPELINED_IN_FLIGHT,
            DeliverySemantic::AtLeastOnce(_) => ORDERED_IN_FLIGHT,
        }
    }

    /// Hands the batches due at `now` to their lanes, as many as each lane
    /// has room for. Says whether batches are due that had no room (then
    /// only an answer can change anything). Done under the state lock, so a
    /// lane renumbering its sequences sees every batch stamped before it.
    fn hand_over(self: &Arc<Self>, st: &mut State, now: Instant) -> bool {
        let max_in_flight = self.max_in_flight();
        let State {
            acc,
            in_flight,
            lanes,
            ..
        } = st;
        let batches = acc.ready(now, |p| {
            in_flight
                .get(p as usize)
                .map_or(0, |n| max_in_flight.saturating_sub(*n) as usize)
        });
        for batch in batches {
            let partition = batch.partition;
            if let Some(n) = in_flight.get_mut(partition as usize) {
                *n += 1;
            }
            let i = partition as usize;
            if lanes.len() <= i {
                lanes.resize_with(i + 1, || None);
            }
            let lane = lanes[i].get_or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(lane::run(self.clone(), partition, rx));
                tx
            });
            // The lane holds at most `max_in_flight` batches (the allowance
            // above), so this channel stays bounded.
            let _ = lane.send(Flight::new(batch, self.config.delivery_semantic));
        }
        acc.next_deadline().is_some_and(|d| d <= now)
    }

    /// A lane finished a batch: frees its memory and slot, wakes whoever
    /// waits for space, for a slot, or for the producer to drain.
    pub(super) fn batch_done(&self, partition: u32, reserved_bytes: usize) {
        let waiters = {
            let mut st = self.state();
            st.acc.release(reserved_bytes);
            if let Some(n) = st.in_flight.get_mut(partition as usize) {
                *n = n.saturating_sub(1);
            }
            if st.idle() {
                std::mem::take(&mut st.flush_waiters)
            } else {
                Vec::new()
            }
        };
        for w in waiters {
            let _ = w.send(());
        }
        self.space.notify_waiters();
        self.wake.notify_one();
    }

    /// Asks the SPU for the topic's partition count in the background (one
    /// request at a time), after `NOT_LEADER_OR_FOLLOWER`, an unknown
    /// partition, or when the count grew old.
    pub(super) fn refresh_metadata_soon(self: &Arc<Self>) {
        self.metadata_stale.store(true, Ordering::Release);
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            match inner.client.partitions(&inner.topic).await {
                Ok(count) if count > 0 => {
                    let mut st = inner.state();
                    if st.in_flight.len() < count as usize {
                        st.in_flight.resize(count as usize, 0);
                    }
                    st.metadata_at = Instant::now();
                    inner.metadata_stale.store(false, Ordering::Release);
                    let old = inner.partitions.swap(count, Ordering::AcqRel);
                    if old != count {
                        tracing::info!(topic = %inner.topic, old, new = count, "partition count changed");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "metadata refresh failed"),
            }
            inner.refreshing.store(false, Ordering::Release);
        });
    }
}

/// Unix time read once, then carried forward by the monotonic clock `send`
/// reads anyway: one clock read per record instead of two. (A wall-clock
/// step after the producer started is not followed.)
#[derive(Debug)]
struct WallClock {
    at: Instant,
    unix_ms: i64,
}

impl WallClock {
    fn new() -> Self {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self {
            at: Instant::now(),
            unix_ms,
        }
    }

    fn unix_millis(&self, now: Instant) -> i64 {
        self.unix_ms + now.saturating_duration_since(self.at).as_millis() as i64
    }
}

/// Produces records to one topic. Cheap to clone; all clones share batches.
#[derive(Debug, Clone)]
pub struct TopicProducer {
    inner: Arc<Inner>,
}

impl TopicProducer {
    pub(crate) async fn start(
        client: Arc<ClientInner>,
        topic: String,
        partitions: u32,
        config: TopicProducerConfig,
    ) -> Result<Self, RillError> {
        let idempotent_producer = if config.idempotent {
            Some(init_producer_id(&client).await?)
        } else {
            None
        };
        let acc = Accumulator::new(AccumulatorConfig {
            idempotent_producer,
            batch_size_bytes: config.batch_size,
            linger: config.linger,
            max_request_size_bytes: config.max_request_size,
            compression: config.compression,
            buffer_memory_bytes: config.buffer_memory,
        });
        let inner = Arc::new(Inner {
            client,
            topic,
            partitions: AtomicU32::new(partitions.max(1)),
            config,
            state: Mutex::new(State {
                acc,
                picker: PartitionPicker::default(),
                in_flight: vec![0; partitions.max(1) as usize],
                flush_waiters: Vec::new(),
                metadata_at: Instant::now(),
                lanes: Vec::new(),
            }),
            wake: Notify::new(),
            space: Notify::new(),
            closed: AtomicBool::new(false),
            refreshing: AtomicBool::new(false),
            clock: WallClock::new(),
            metadata_stale: AtomicBool::new(false),
        });
        tokio::spawn(sender(inner.clone()));
        Ok(Self { inner })
    }

    /// The topic this producer writes to.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// The topic's partition count as the producer last learned it. It is
    /// asked for again after `NOT_LEADER_OR_FOLLOWER` or an unknown
    /// partition, and once it is a minute old, so a topic re-created with
    /// more partitions is used in full.
    pub fn partition_count(&self) -> u32 {
        self.inner.partitions.load(Ordering::Acquire)
    }

    /// Queues a record and returns at once; it awaits only while
    /// `buffer_memory` is full.
    pub async fn send<K: Into<RecordKey>, V: AsRef<[u8]>>(
        &self,
        key: K,
        value: V,
    ) -> Result<ProduceOutput, RillError> {
        self.send_with_headers(key, value, &[]).await
    }

    /// Like [`Self::send`], with Kafka record headers (`name`, value).
    pub async fn send_with_headers<K: Into<RecordKey>, V: AsRef<[u8]>>(
        &self,
        key: K,
        value: V,
        headers: &[(&str, &[u8])],
    ) -> Result<ProduceOutput, RillError> {
        let key = key.into();
        let value = value.as_ref();
        let headers: Vec<(&[u8], Option<&[u8]>)> = headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), Some(*v)))
            .collect();
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(RillError::ProducerClosed);
        }
        let now = Instant::now();
        let record = NewRecord {
            key: key.0.as_deref(),
            value: Some(value),
            headers: &headers,
            timestamp: inner.clock.unix_millis(now),
        };
        // Registered only once the buffer was found full, then the push is
        // tried again before waiting, so a release in between is not missed.
        let mut space = std::pin::pin!(inner.space.notified());
        let mut registered = false;
        loop {
            {
                let mut st = inner.state();
                let partitions = inner.partitions.load(Ordering::Acquire);
                if now.saturating_duration_since(st.metadata_at) > METADATA_MAX_AGE
                    || inner.metadata_stale.load(Ordering::Acquire)
                {
                    st.metadata_at = now;
                    self.inner.refresh_metadata_soon();
                }
                let partition =
                    st.picker
                        .pick(&inner.config.partitioner, record.key, value, partitions);
                match st
                    .acc
                    .push_into(partition, &record, (), now, BatchCompletion::slot)
                {
                    Ok((pushed, slot, index)) => {
                        if pushed.batch_closed {
                            st.picker.batch_closed(
                                &inner.config.partitioner,
                                partition,
                                partitions,
                            );
                        }
                        if inner.config.linger.is_zero() && pushed.batch_opened {
                            // Due at once: hand it over here rather than
                            // wake the sender task for it (one task switch
                            // less on the latency path). Batches that could
                            // not go yet are the sender's after an answer.
                            inner.hand_over(&mut st, now);
                        } else if pushed.batch_opened || pushed.batch_closed {
                            // A new batch's deadline, or a batch due now:
                            // the sender must look again.
                            drop(st);
                            inner.wake.notify_one();
                        }
                        return Ok(ProduceOutput { slot, index });
                    }
                    Err(PushError::RecordTooLarge {
                        size,
                        max_request_size,
                    }) => {
                        return Err(RillError::RecordTooLarge {
                            size,
                            max_request_size,
                        })
                    }
                    Err(PushError::BufferFull { .. }) => {}
                    Err(e) => return Err(RillError::Protocol(e.to_string())),
                }
            }
            if registered {
                space.as_mut().await;
                space.set(inner.space.notified());
                registered = false;
            } else {
                space.as_mut().enable();
                registered = true;
            }
        }
    }

    /// Sends every record of `values` (keyless) and returns their outputs.
    pub async fn send_all<K, V, I>(&self, records: I) -> Result<Vec<ProduceOutput>, RillError>
    where
        K: Into<RecordKey>,
        V: AsRef<[u8]>,
        I: IntoIterator<Item = (K, V)>,
    {
        let mut outputs = Vec::new();
        for (k, v) in records {
            outputs.push(self.send(k, v).await?);
        }
        Ok(outputs)
    }

    /// Sends everything pending now and waits until every batch is answered.
    pub async fn flush(&self) -> Result<(), RillError> {
        let rx = {
            let mut st = self.inner.state();
            st.acc.flush();
            if st.idle() {
                return Ok(());
            }
            let (tx, rx) = oneshot::channel();
            st.flush_waiters.push(tx);
            rx
        };
        self.inner.wake.notify_one();
        rx.await.map_err(|_| RillError::ProducerClosed)
    }

    /// Flushes, then stops the sender task.
    pub async fn close(self) -> Result<(), RillError> {
        self.flush().await?;
        self.inner.closed.store(true, Ordering::Release);
        self.inner.wake.notify_one();
        Ok(())
    }
}

async fn sender(inner: Arc<Inner>) {
    // Set when batches are due but their partitions are all busy: then only
    // an answer (or a new batch) can change anything, and each wakes us.
    let mut stalled = false;
    loop {
        let deadline = if stalled {
            None
        } else {
            inner.state().acc.next_deadline()
        };
        let wake = inner.wake.notified();
        match deadline {
            Some(at) => {
                let at = tokio::time::Instant::from_std(at);
                tokio::select! {
                    _ = wake => {}
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            None => wake.await,
        }
        {
            let mut st = inner.state();
            stalled = inner.hand_over(&mut st, Instant::now());
            if inner.closed.load(Ordering::Acquire) && st.idle() {
                // Dropping the lanes' senders lets each lane end once empty.
                st.lanes.clear();
                return;
            }
        }
    }
}

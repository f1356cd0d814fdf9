//! The async producer: `send` feeds the accumulator; one sender task sleeps
//! until a batch is due and hands it to its partition's lane (`lane.rs`),
//! which drives the partition's pipeline (`pipeline.rs`): sending, retries,
//! sequence numbers and deadlines.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rill_protocol::NewRecord;
use tokio::sync::mpsc;

use super::completion::{BatchCompletion, BatchSlot, RecordMetadata};
use super::lane;
use super::shared::{init_producer_id, Inner, State};
use super::{Accumulator, AccumulatorConfig, PushError};
use crate::client::ClientInner;
use crate::config::TopicProducerConfig;
use crate::RillError;

/// How old the partition count may grow before `send` asks for it again
/// (Kafka's `metadata.max.age.ms` is 5 minutes; a topic re-created with more
/// partitions is seen sooner here).
const METADATA_MAX_AGE: Duration = Duration::from_secs(60);

/// What `send` returns at once; `wait` gives the record's place once its
/// batch is acknowledged, or the error that ended it.
#[derive(Debug)]
pub struct ProduceOutput {
    slot: Arc<BatchSlot>,
    index: usize,
    sent: Instant,
}

impl ProduceOutput {
    /// When `send` took the record (the instant its timestamp was read,
    /// before any wait for buffer memory): with the instant of
    /// [`Self::answered`] or [`Self::try_wait`], the record's send to
    /// acknowledgement latency without reading the clock again.
    pub fn sent_at(&self) -> Instant {
        self.sent
    }

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
impl<const N: usize> From<&[u8; N]> for RecordKey {
    fn from(b: &[u8; N]) -> Self {
        RecordKey(Some(b.to_vec()))
    }
}
impl From<&Vec<u8>> for RecordKey {
    fn from(b: &Vec<u8>) -> Self {
        RecordKey(Some(b.clone()))
    }
}
impl<K: Into<RecordKey>> From<Option<K>> for RecordKey {
    fn from(k: Option<K>) -> Self {
        k.map_or(RecordKey::NULL, Into::into)
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

/// Hands the batches due at `now` to their lanes, as many as each lane
/// has room for (`max_in_flight` handed and unfinished per partition, so
/// the lanes' channels stay bounded).
fn hand_over(inner: &Arc<Inner>, st: &mut State, now: Instant) {
    let max_in_flight = inner.max_in_flight();
    let State {
        acc, handed, lanes, ..
    } = st;
    let batches = acc.ready(now, |p| {
        handed
            .get(p as usize)
            .map_or(0, |n| max_in_flight.saturating_sub(*n) as usize)
    });
    for batch in batches {
        let partition = batch.partition;
        let i = partition as usize;
        if handed.len() <= i {
            handed.resize(i + 1, 0);
        }
        handed[i] += 1;
        if lanes.len() <= i {
            lanes.resize_with(i + 1, || None);
        }
        let lane = lanes[i].get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(lane::run(inner.clone(), partition, rx));
            tx
        });
        let _ = lane.send(batch);
    }
}

/// The first handle's drop (of a producer and its clones) lets the tasks
/// end: the sender hands out what is left and the lanes deliver it within
/// their grace time.
#[derive(Debug)]
struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.closing.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }
}

/// Produces records to one topic. Cheap to clone; all clones share batches.
/// Dropping the last clone ends the producer's tasks once what it holds is
/// delivered (within 30 s; `close()` waits for all of it).
///
/// # Leaders and errors
///
/// Each partition's batches go to its leader, over one connection per SPU,
/// as the last Metadata answer placed it (with one SPU, to the address the
/// client was given). What an attempt's failure does:
///
/// - `NOT_LEADER_OR_FOLLOWER`, `LEADER_NOT_AVAILABLE` (also when Metadata
///   already says the partition has no leader), `UNKNOWN_TOPIC_OR_PARTITION`,
///   or a lost or refused connection: Metadata is asked again in the
///   background (from any SPU the client knows) and, under `AtLeastOnce`,
///   the batch goes again to the leader found, after the policy's delay,
///   within its `timeout`. Order within a partition is kept (later batches
///   in flight go again behind it) and, with idempotence, a batch keeps its
///   producer id and sequence, so one stored before its answer was lost is
///   not stored twice.
/// - Other retriable errors: retried the same way, without the refresh.
/// - Anything else, or the policy running out: the batch's records fail
///   with the error (`Timeout` or `RetriesExhausted` for a partition whose
///   SPU stayed away); other partitions go on.
/// - Under `AtMostOnce`: one attempt, its error reported; Metadata is still
///   refreshed so the next batch finds the leader.
///
/// A topic's partition count is asked for again after those errors and once
/// a minute; new records use a grown count.
#[derive(Debug, Clone)]
pub struct TopicProducer {
    inner: Arc<Inner>,
    _owner: Arc<Owner>,
    clock: Arc<WallClock>,
}

impl TopicProducer {
    pub(crate) async fn start(
        client: Arc<ClientInner>,
        topic: String,
        partitions: u32,
        config: TopicProducerConfig,
    ) -> Result<Self, RillError> {
        let producer = if config.idempotent {
            Some(init_producer_id(&client).await?)
        } else {
            None
        };
        let acc = Accumulator::new(AccumulatorConfig {
            batch_size_bytes: config.batch_size,
            linger: config.linger,
            max_request_size_bytes: config.max_request_size,
            compression: config.compression,
            buffer_memory_bytes: config.buffer_memory,
        });
        let inner = Arc::new(Inner::new(
            client,
            topic,
            partitions,
            config,
            producer,
            State::new(acc, partitions),
        ));
        tokio::spawn(sender(inner.clone()));
        Ok(Self {
            _owner: Arc::new(Owner(inner.clone())),
            inner,
            clock: Arc::new(WallClock::new()),
        })
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

    /// Asks the SPU for the topic's partition count now rather than at the
    /// next refresh (once a minute, or after an error): after partitions
    /// were added (`Admin::create_partitions`), new records are spread over
    /// all of them from the next `send`. Returns the count.
    pub async fn refresh_partition_count(&self) -> Result<u32, RillError> {
        let count = self.inner.client.partitions(&self.inner.topic).await?;
        self.inner.learned_partition_count(count);
        Ok(self.partition_count())
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
        if inner.closing.load(Ordering::Acquire) {
            return Err(RillError::ProducerClosed);
        }
        let now = Instant::now();
        let record = NewRecord {
            key: key.0.as_deref(),
            value: Some(value),
            headers: &headers,
            timestamp: self.clock.unix_millis(now),
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
                    inner.refresh_metadata_soon();
                }
                let partition =
                    st.picker
                        .pick(&inner.config.partitioner, record.key, value, partitions);
                let State {
                    acc,
                    unanswered,
                    next_batch,
                    ..
                } = &mut *st;
                let open = || {
                    let completion = BatchCompletion::new(*next_batch);
                    unanswered.insert(*next_batch, completion.slot());
                    *next_batch += 1;
                    completion
                };
                match acc.push_into(partition, &record, (), now, open, BatchCompletion::slot) {
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
                            hand_over(inner, &mut st, now);
                        } else if pushed.batch_opened || pushed.batch_closed {
                            // A new batch's deadline, or a batch due now:
                            // the sender must look again.
                            drop(st);
                            inner.wake.notify_one();
                        }
                        return Ok(ProduceOutput {
                            slot,
                            index,
                            sent: now,
                        });
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
                    Err(PushError::BufferFull { .. }) => {
                        // Lingering batches are what would free the buffer:
                        // every non-empty batch is due now.
                        if !registered {
                            st.acc.flush();
                            drop(st);
                            inner.wake.notify_one();
                        }
                    }
                    Err(e) => return Err(RillError::Encode(e.to_string())),
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

    /// Sends every record of `records` and returns their outputs.
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

    /// Sends every record sent before this call now, and waits until each of
    /// their batches is answered (records sent meanwhile, by this or another
    /// clone, are not waited for). Failed records report through their own
    /// outputs.
    pub async fn flush(&self) -> Result<(), RillError> {
        let slots: Vec<Arc<BatchSlot>> = {
            let mut st = self.inner.state();
            st.acc.flush();
            st.unanswered.values().cloned().collect()
        };
        if slots.is_empty() {
            return Ok(());
        }
        self.inner.wake.notify_one();
        for slot in slots {
            slot.wait_answered().await;
        }
        Ok(())
    }

    /// Flushes, then lets the producer's tasks end: later `send`s (from
    /// any clone) fail with `ProducerClosed`.
    pub async fn close(self) -> Result<(), RillError> {
        self.flush().await?;
        self.inner.closing.store(true, Ordering::Release);
        self.inner.wake.notify_one();
        Ok(())
    }
}

async fn sender(inner: Arc<Inner>) {
    let max_in_flight = inner.max_in_flight();
    loop {
        let closing = inner.closing.load(Ordering::Acquire);
        let wake = inner.wake.notified();
        {
            let mut st = inner.state();
            if closing {
                st.acc.flush();
            }
            hand_over(&inner, &mut st, Instant::now());
            if closing && st.acc.is_empty() {
                // Dropping the lanes' senders lets each lane end once it
                // has delivered what it holds.
                st.lanes.clear();
                return;
            }
        }
        // Partitions with every slot taken are left out: only an answer
        // (which wakes us) lets them go on, and their due batches must not
        // hide other partitions' linger deadlines.
        let deadline = {
            let st = inner.state();
            st.acc
                .next_deadline(|p| st.handed.get(p as usize).is_none_or(|n| *n < max_in_flight))
        };
        match deadline {
            Some(at) => {
                tokio::select! {
                    _ = wake => {}
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                }
            }
            None => wake.await,
        }
    }
}

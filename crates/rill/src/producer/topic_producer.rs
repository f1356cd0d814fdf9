//! The async producer: `send` feeds the accumulator, one sender task sleeps
//! until a batch is due, sends it, and completes each record's output.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rill_protocol::NewRecord;
use tokio::sync::{oneshot, Notify};

use super::{Accumulator, AccumulatorConfig, PartitionPicker, PushError, ReadyBatch};
use crate::client::ClientInner;
use crate::config::{DeliverySemantic, TopicProducerConfig};
use crate::RillError;

/// Requests in flight per partition. At least once keeps one so a retried
/// batch cannot overtake a later one (no idempotence yet); at most once
/// pipelines.
const AT_LEAST_ONCE_IN_FLIGHT: u32 = 1;
const AT_MOST_ONCE_IN_FLIGHT: u32 = 5;
const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;

/// A producer id and epoch from the SPU, for idempotent sends.
async fn init_producer_id(client: &ClientInner) -> Result<(i64, i16), RillError> {
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

/// Produce version the client speaks at most.
const PRODUCE_VERSION: i16 = 9;

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The partition the record went to.
    pub partition: u32,
    /// Its offset there (-1 when the SPU did not say, as with acks 0).
    pub offset: i64,
}

type Completion = oneshot::Sender<Result<RecordMetadata, RillError>>;

/// What `send` returns at once; `wait` gives the record's place once its
/// batch is acknowledged, or the error that ended it.
#[derive(Debug)]
pub struct ProduceOutput {
    rx: oneshot::Receiver<Result<RecordMetadata, RillError>>,
}

impl ProduceOutput {
    /// Waits for the record's batch to be answered: its place, or the error
    /// that ended it. Under `AtLeastOnce` that is after any retries; under
    /// `AtMostOnce` it is the single attempt's answer. "Answered" means at the
    /// producer's isolation: the leader has it (`ReadUncommitted`) or every
    /// in-sync replica has it (`ReadCommitted`).
    pub async fn wait(self) -> Result<RecordMetadata, RillError> {
        self.rx.await.map_err(|_| RillError::ProducerClosed)?
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
struct State {
    acc: Accumulator<Completion>,
    picker: PartitionPicker,
    in_flight: Vec<u32>,
    flush_waiters: Vec<oneshot::Sender<()>>,
}

impl State {
    fn idle(&self) -> bool {
        self.acc.is_empty() && self.in_flight.iter().all(|n| *n == 0)
    }
}

#[derive(Debug)]
struct Inner {
    client: Arc<ClientInner>,
    topic: String,
    partitions: u32,
    config: TopicProducerConfig,
    state: Mutex<State>,
    wake: Notify,
    space: Notify,
    closed: AtomicBool,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn max_in_flight(&self) -> u32 {
        match self.config.delivery_semantic {
            DeliverySemantic::AtMostOnce => AT_MOST_ONCE_IN_FLIGHT,
            DeliverySemantic::AtLeastOnce(_) => AT_LEAST_ONCE_IN_FLIGHT,
        }
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
            partitions: partitions.max(1),
            config,
            state: Mutex::new(State {
                acc,
                picker: PartitionPicker::default(),
                in_flight: vec![0; partitions.max(1) as usize],
                flush_waiters: Vec::new(),
            }),
            wake: Notify::new(),
            space: Notify::new(),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(sender(inner.clone()));
        Ok(Self { inner })
    }

    /// The topic this producer writes to.
    pub fn topic(&self) -> &str {
        &self.inner.topic
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
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let record = NewRecord {
            key: key.0.as_deref(),
            value: Some(value),
            headers: &headers,
            timestamp,
        };
        loop {
            // Register for "space freed" before looking, so a release between
            // the look and the wait is not missed.
            let space = inner.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            let (tx, rx) = oneshot::channel();
            {
                let mut st = inner.state();
                let partition = st.picker.pick(
                    &inner.config.partitioner,
                    record.key,
                    value,
                    inner.partitions,
                );
                match st.acc.push(partition, &record, tx, Instant::now()) {
                    Ok(pushed) => {
                        if pushed.batch_closed {
                            st.picker.batch_closed(
                                &inner.config.partitioner,
                                partition,
                                inner.partitions,
                            );
                        }
                        drop(st);
                        // A new batch's deadline, or a batch due now: the
                        // sender must look again.
                        if pushed.batch_opened || pushed.batch_closed {
                            inner.wake.notify_one();
                        }
                        return Ok(ProduceOutput { rx });
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
            space.await;
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
    let max_in_flight = inner.max_in_flight();
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
        let batches = {
            let mut st = inner.state();
            let in_flight = st.in_flight.clone();
            let ready = st.acc.ready(Instant::now(), |p| {
                in_flight
                    .get(p as usize)
                    .map_or(0, |n| max_in_flight.saturating_sub(*n) as usize)
            });
            match ready {
                Ok(batches) => {
                    for b in &batches {
                        if let Some(n) = st.in_flight.get_mut(b.partition as usize) {
                            *n += 1;
                        }
                    }
                    batches
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not encode a batch");
                    Vec::new()
                }
            }
        };
        stalled = batches.is_empty()
            && inner
                .state()
                .acc
                .next_deadline()
                .is_some_and(|d| d <= Instant::now());
        for batch in batches {
            tokio::spawn(deliver(inner.clone(), batch));
        }
        if inner.closed.load(Ordering::Acquire) && inner.state().idle() {
            return;
        }
    }
}

/// Sends one batch (retrying per policy), completes its records, frees its
/// memory and in-flight slot.
async fn deliver(inner: Arc<Inner>, batch: ReadyBatch<Completion>) {
    let ReadyBatch {
        partition,
        bytes,
        tokens,
        reserved_bytes,
    } = batch;
    let records = bytes::Bytes::from(bytes);
    let result = match inner.config.delivery_semantic {
        DeliverySemantic::AtMostOnce => attempt(&inner, partition, records).await,
        DeliverySemantic::AtLeastOnce(policy) => {
            let started = Instant::now();
            let mut delays = policy.delays();
            loop {
                match attempt(&inner, partition, records.clone()).await {
                    Err(e) if e.is_retriable() => match delays.next() {
                        Some(delay) if started.elapsed() + delay < policy.timeout => {
                            tracing::debug!(error = %e, ?delay, "retrying batch");
                            tokio::time::sleep(delay).await;
                        }
                        _ => break Err(e),
                    },
                    other => break other,
                }
            }
        }
    };
    for (i, tx) in tokens.into_iter().enumerate() {
        let _ = tx.send(result.clone().map(|base| RecordMetadata {
            partition,
            offset: if base < 0 { -1 } else { base + i as i64 },
        }));
    }
    let waiters = {
        let mut st = inner.state();
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
    inner.space.notify_waiters();
    inner.wake.notify_one();
}

/// One Produce request for one batch: the base offset, or why not.
async fn attempt(inner: &Inner, partition: u32, records: bytes::Bytes) -> Result<i64, RillError> {
    let conn = inner.client.connection().await?;
    let version = conn.version::<ProduceRequest>(PRODUCE_VERSION)?;
    let timeout = inner.config.timeout;
    let req = ProduceRequest::default()
        .with_acks(inner.config.isolation.acks())
        .with_timeout_ms(timeout.as_millis() as i32)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(inner.topic.clone())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition as i32)
                .with_records(Some(records))])]);
    // The SPU answers within the producer's timeout; allow the round trip.
    let wait = timeout + Duration::from_secs(5);
    let resp = tokio::time::timeout(wait, conn.send(req, version))
        .await
        .map_err(|_| RillError::Timeout(wait))??;
    let p = resp
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or_else(|| RillError::Protocol("Produce answer without the partition".into()))?;
    match p.error_code {
        0 => Ok(p.base_offset),
        // An earlier attempt of this very batch was stored (its answer was
        // lost): the SPU gives the original offset.
        DUPLICATE_SEQUENCE_NUMBER => Ok(p.base_offset),
        code => Err(RillError::broker(
            format!("producing to {}-{partition}", inner.topic),
            code,
            p.error_message.as_ref().map(|m| m.to_string()),
        )),
    }
}

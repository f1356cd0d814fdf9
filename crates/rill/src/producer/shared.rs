//! What a producer's tasks share: the accumulator under one lock, the
//! partition count, the bookkeeping that `flush` and `send` wait on. The
//! sender task (`topic_producer.rs`) and the partition lanes (`lane.rs`)
//! both use it; it knows neither.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify};

use super::completion::{BatchCompletion, BatchSlot};
use super::{Accumulator, PartitionPicker, ReadyBatch};
use crate::client::ClientInner;
use crate::config::{DeliverySemantic, TopicProducerConfig};
use crate::RillError;

/// Requests in flight per partition when sequence numbers keep order (an
/// idempotent producer) or order under retry does not matter (at most once).
const PIPELINED_IN_FLIGHT: u32 = 5;
/// At least once without idempotence keeps one request in flight per
/// partition: a retried batch must not overtake a later one.
const ORDERED_IN_FLIGHT: u32 = 1;
/// Beyond the producer's `timeout` (which the SPU honours), how long an
/// answer may take on the wire before the attempt counts as lost.
pub(super) const ANSWER_SLACK: Duration = Duration::from_secs(5);

/// A batch handed from the accumulator to its partition's lane.
pub(super) type Handed = ReadyBatch<(), BatchCompletion>;

/// A producer id and epoch from the SPU, for idempotent sends.
pub(super) async fn init_producer_id(client: &ClientInner) -> Result<(i64, i16), RillError> {
    use kafka_protocol::messages::InitProducerIdRequest;
    // Producer ids are unique across the cluster: any SPU may give one.
    let conn = client.any_connection().await?;
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

#[derive(Debug)]
pub(super) struct State {
    pub(super) acc: Accumulator<(), BatchCompletion>,
    pub(super) picker: PartitionPicker,
    /// Batches handed to each partition's lane and not yet finished.
    pub(super) handed: Vec<u32>,
    /// Every batch opened and not yet answered, by number: `flush` waits
    /// for those opened before it.
    pub(super) unanswered: BTreeMap<u64, Arc<BatchSlot>>,
    /// The number of the next batch to open.
    pub(super) next_batch: u64,
    /// When the partition count was last asked for.
    pub(super) metadata_at: Instant,
    /// Each partition's lane, started with its first batch.
    pub(super) lanes: Vec<Option<mpsc::UnboundedSender<Handed>>>,
}

impl State {
    pub(super) fn new(acc: Accumulator<(), BatchCompletion>, partitions: u32) -> Self {
        Self {
            acc,
            picker: PartitionPicker::default(),
            handed: vec![0; partitions.max(1) as usize],
            unanswered: BTreeMap::new(),
            next_batch: 0,
            metadata_at: Instant::now(),
            lanes: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) client: Arc<ClientInner>,
    pub(super) topic: String,
    /// The topic's partition count as last seen.
    pub(super) partitions: AtomicU32,
    pub(super) config: TopicProducerConfig,
    /// The producer id and epoch every lane starts with (idempotence).
    pub(super) producer: Option<(i64, i16)>,
    state: Mutex<State>,
    /// Wakes the sender task: a batch opened or closed, a slot freed, or
    /// the producer is closing.
    pub(super) wake: Notify,
    /// Wakes `send`s waiting for buffer memory.
    pub(super) space: Notify,
    /// No more `send`s; the tasks end once what is held is delivered.
    pub(super) closing: AtomicBool,
    /// A metadata refresh is under way.
    refreshing: AtomicBool,
    /// The partition count may be wrong (an answer said so, or the last
    /// refresh failed): the next `send` asks again.
    pub(super) metadata_stale: AtomicBool,
}

impl Inner {
    pub(super) fn new(
        client: Arc<ClientInner>,
        topic: String,
        partitions: u32,
        config: TopicProducerConfig,
        producer: Option<(i64, i16)>,
        state: State,
    ) -> Self {
        Self {
            client,
            topic,
            partitions: AtomicU32::new(partitions.max(1)),
            config,
            producer,
            state: Mutex::new(state),
            wake: Notify::new(),
            space: Notify::new(),
            closing: AtomicBool::new(false),
            refreshing: AtomicBool::new(false),
            metadata_stale: AtomicBool::new(false),
        }
    }

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

    /// A lane finished (a part of) a batch: frees its memory and, unless it
    /// was the second half of a split, its hand-over slot; forgets the
    /// batch once all of it is answered; wakes whoever waits.
    pub(super) fn batch_done(
        &self,
        partition: u32,
        reserved_bytes: usize,
        frees_slot: bool,
        answered_batch: Option<u64>,
    ) {
        {
            let mut st = self.state();
            st.acc.release(reserved_bytes);
            if frees_slot {
                if let Some(n) = st.handed.get_mut(partition as usize) {
                    *n = n.saturating_sub(1);
                }
            }
            if let Some(id) = answered_batch {
                st.unanswered.remove(&id);
            }
        }
        if reserved_bytes > 0 {
            self.space.notify_waiters();
        }
        if frees_slot {
            self.wake.notify_one();
        }
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
                Ok(count) => inner.learned_partition_count(count),
                Err(e) => tracing::debug!(error = %e, "metadata refresh failed"),
            }
            inner.refreshing.store(false, Ordering::Release);
        });
    }

    /// Takes the topic's partition count from a Metadata answer: new
    /// records are spread over all of them from now on.
    pub(super) fn learned_partition_count(&self, count: u32) {
        if count == 0 {
            return;
        }
        let mut st = self.state();
        if st.handed.len() < count as usize {
            st.handed.resize(count as usize, 0);
        }
        st.metadata_at = Instant::now();
        self.metadata_stale.store(false, Ordering::Release);
        let old = self.partitions.swap(count, Ordering::AcqRel);
        if old != count {
            tracing::info!(topic = %self.topic, old, new = count, "partition count changed");
        }
    }
}

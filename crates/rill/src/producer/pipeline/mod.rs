//! One partition's send path as a state machine with no I/O and time passed
//! in (quinn-proto's connection is the model): it owns the partition's
//! queue of batches, the in-flight window, sequence numbers, retry rounds
//! and every deadline. The async lane (`lane.rs`) only moves bytes:
//!
//! - [`PartitionPipeline::enqueue`] takes a closed batch;
//! - [`PartitionPipeline::poll_transmit`] gives the next request to write;
//! - [`PartitionPipeline::on_answer`] / [`PartitionPipeline::on_transport_error`]
//!   take what came back for an attempt;
//! - [`PartitionPipeline::poll_timeout`] says when to call
//!   [`PartitionPipeline::handle_timeout`];
//! - [`PartitionPipeline::poll_event`] gives what the driver must do:
//!   complete a batch (and free its memory), refresh metadata, fetch a
//!   producer id, drop the connection.
//!
//! The promises it keeps, each with a test below on made-up instants:
//!
//! - **Order.** Batches leave in order, up to `max_in_flight` unanswered.
//!   When one fails, the later ones in flight fail behind it (the SPU
//!   refuses a sequence gap, or the connection broke): the round drains,
//!   then the failed batches go again, oldest first, after the retry delay.
//!   A batch that failed only because an earlier one did (an echo) spends
//!   none of its own retries.
//! - **Time.** Under `AtLeastOnce` a batch's whole life, from its first send
//!   and every attempt included, ends within the policy's `timeout`. One
//!   attempt waits at most `request_timeout` for its answer; an attempt
//!   that runs past that (or past the batch's life) has its connection
//!   dropped, never reused, since its answer may still come and would be
//!   taken for another request's.
//! - **Size.** A batch the SPU refuses with `MESSAGE_TOO_LARGE` that holds
//!   several records is split in two halves, which go again in its place
//!   with the same sequence numbers (nothing of it was stored).
//! - **No duplicates after a failure.** A batch keeps its producer id and
//!   sequence from its first send for good: a batch whose fate is unknown is
//!   never renumbered, so a retry can only be recognised as a duplicate.
//!   After a batch fails for good its sequence is a possible hole; the first
//!   later batch the SPU refuses as out of order (with nothing earlier
//!   failing in that round) is known not stored, and neither is any later
//!   batch of that producer id, so those, and only those, are renumbered
//!   under a new producer id. The same holds for the first batch of a round
//!   refused with `UNKNOWN_PRODUCER_ID` (the SPU lost the producer's state).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use rill_protocol::{NewRecord, RecordBatch, RecordBatchBuilder};

use super::retry::{RetryDelays, RetryPolicy};
use crate::RillError;

const MESSAGE_TOO_LARGE: i16 = ResponseError::MessageTooLarge.code();
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = ResponseError::OutOfOrderSequenceNumber.code();
const UNKNOWN_PRODUCER_ID: i16 = ResponseError::UnknownProducerId.code();
const DUPLICATE_SEQUENCE_NUMBER: i16 = ResponseError::DuplicateSequenceNumber.code();
const UNKNOWN_TOPIC_OR_PARTITION: i16 = ResponseError::UnknownTopicOrPartition.code();
const NOT_LEADER_OR_FOLLOWER: i16 = ResponseError::NotLeaderOrFollower.code();
const LEADER_NOT_AVAILABLE: i16 = ResponseError::LeaderNotAvailable.code();
/// Wait before asking again for a producer id the SPU could not give (it is
/// down); the batches' own timeouts bound the waiting.
pub(crate) const PRODUCER_ID_RETRY_DELAY: Duration = Duration::from_millis(100);
/// Sequence numbers wrap at `i32::MAX` back to 0, as Kafka's do.
const SEQUENCE_MODULUS: i64 = i32::MAX as i64 + 1;

/// What stands for a batch's records toward the caller. A batch split in
/// two needs its token split too.
pub(crate) trait Completion: Sized {
    /// The tokens of the first `records` records and of the rest.
    fn split_at(self, records: usize) -> (Self, Self);
}

/// A partition pipeline's settings.
#[derive(Debug, Clone)]
pub(crate) struct PipelineConfig {
    /// For error messages.
    pub topic: String,
    /// For error messages and requests.
    pub partition: u32,
    /// `None` under `AtMostOnce`: one attempt, no retry.
    pub policy: Option<RetryPolicy>,
    /// Batches carry a producer id and sequence numbers.
    pub idempotent: bool,
    /// Requests in flight at most.
    pub max_in_flight: usize,
    /// How long one attempt waits for its answer.
    pub request_timeout: Duration,
    /// Bound on the bytes a split may decompress.
    pub max_request_size_bytes: usize,
}

/// The producer id, epoch and base sequence a batch was sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
}

#[derive(Debug)]
enum Body {
    /// Records encoded, header not written: sealed at the first send,
    /// when the batch gets its sequence.
    Open(RecordBatchBuilder),
    /// As sent, with the identity written in it.
    Sealed(Bytes, Option<Identity>),
}

/// A batch in the pipeline, with its retry state.
#[derive(Debug)]
pub(crate) struct Batch<C> {
    body: Body,
    records: usize,
    reserved_bytes: usize,
    /// Whether its completion frees one of the partition's hand-over slots
    /// (the second half of a split batch does not: it was never handed
    /// over on its own).
    frees_slot: bool,
    token: C,
    identity: Option<Identity>,
    first_send: Option<Instant>,
    attempts: u32,
    delays: Option<RetryDelays>,
}

impl<C> Batch<C> {
    /// A closed batch of `records` records holding `reserved_bytes` of the
    /// producer's buffer memory.
    pub(crate) fn new(
        builder: RecordBatchBuilder,
        records: usize,
        reserved_bytes: usize,
        token: C,
    ) -> Self {
        Self {
            body: Body::Open(builder),
            records,
            reserved_bytes,
            frees_slot: true,
            token,
            identity: None,
            first_send: None,
            attempts: 0,
            delays: None,
        }
    }
}

#[derive(Debug)]
struct InFlight<C> {
    attempt: u64,
    /// The answer must come by then.
    deadline: Instant,
    batch: Batch<C>,
}

/// What the driver must do.
#[derive(Debug)]
pub(crate) enum Event<C> {
    /// A batch is finished: its base offset, or the error that ended it.
    Done {
        token: C,
        reserved_bytes: usize,
        frees_slot: bool,
        result: Result<i64, RillError>,
    },
    /// An answer said the partition moved or is unknown.
    RefreshMetadata,
    /// Ask the SPU for a new producer id, then call
    /// [`PartitionPipeline::on_producer_id`].
    NeedProducerId,
    /// A request timed out: close its connection (every attempt that was in
    /// flight has been counted as cut).
    DropConnection,
}

/// A request to write: one batch, one attempt.
#[derive(Debug)]
pub(crate) struct Transmit {
    pub attempt: u64,
    pub records: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProducerId {
    Have,
    /// Asked for, no answer yet.
    Asked,
    /// The last ask failed: ask again then.
    RetryAt(Instant),
}

/// One partition's send path. `C` is what the caller gets back per batch.
#[derive(Debug)]
pub(crate) struct PartitionPipeline<C> {
    config: PipelineConfig,
    /// Batches to send, in order (retried ones first).
    queue: VecDeque<Batch<C>>,
    /// Sent and unanswered, in the order sent.
    in_flight: VecDeque<InFlight<C>>,
    /// Batches of this round that failed and go again once it drains.
    retry: Vec<Batch<C>>,
    /// A batch of this round failed: later failures may be its echo, and
    /// nothing new leaves until the round drains.
    broken: bool,
    /// The next send waits until then (a retry delay).
    resume_at: Option<Instant>,
    /// The producer id and epoch new batches get; `None` while a new one
    /// is awaited.
    producer: Option<(i64, i16)>,
    producer_id: ProducerId,
    next_sequence: i32,
    /// A batch under this producer id failed for good: its sequence may be
    /// a hole the SPU refuses forever.
    gap: Option<i64>,
    /// Renumber the batches of this producer id when the round drains.
    renumber: Option<i64>,
    events: VecDeque<Event<C>>,
    next_attempt: u64,
}

impl<C: Completion> PartitionPipeline<C> {
    /// An empty pipeline; `producer` is the producer id and epoch of an
    /// idempotent producer.
    pub(crate) fn new(config: PipelineConfig, producer: Option<(i64, i16)>) -> Self {
        let producer_id = if config.idempotent && producer.is_none() {
            ProducerId::RetryAt(Instant::now())
        } else {
            ProducerId::Have
        };
        Self {
            config,
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            retry: Vec::new(),
            broken: false,
            resume_at: None,
            producer,
            producer_id,
            next_sequence: 0,
            gap: None,
            renumber: None,
            events: VecDeque::new(),
            next_attempt: 0,
        }
    }

    /// Batches held: queued, in flight or waiting for a retry.
    pub(crate) fn len(&self) -> usize {
        self.queue.len() + self.in_flight.len() + self.retry.len()
    }

    /// Whether nothing is held.
    pub(crate) fn is_idle(&self) -> bool {
        self.len() == 0
    }

    /// Takes a closed batch; it leaves after every batch taken before it.
    pub(crate) fn enqueue(&mut self, mut batch: Batch<C>) {
        batch.delays = self.config.policy.map(|p| p.delays());
        self.queue.push_back(batch);
    }

    fn what(&self) -> String {
        format!(
            "producing to {}-{}",
            self.config.topic, self.config.partition
        )
    }

    /// When `batch`'s life ends (`None` before its first send).
    fn life_end(&self, batch: &Batch<C>) -> Option<Instant> {
        let life = self
            .config
            .policy
            .map_or(self.config.request_timeout, |p| p.timeout);
        batch.first_send.map(|t| t + life)
    }

    fn expired(&self, batch: &Batch<C>, now: Instant) -> bool {
        self.life_end(batch).is_some_and(|end| end <= now)
    }

    fn life_timeout(&self, batch: &Batch<C>) -> RillError {
        RillError::Timeout {
            what: format!("{} ({} attempts)", self.what(), batch.attempts),
            after: self
                .config
                .policy
                .map_or(self.config.request_timeout, |p| p.timeout),
        }
    }

    /// The next request to write, if one may leave now.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        loop {
            if self.broken || !self.retry.is_empty() {
                return None; // the round drains first
            }
            if self.producer_id != ProducerId::Have {
                return None;
            }
            if self.resume_at.is_some_and(|t| t > now) {
                return None;
            }
            self.resume_at = None;
            if self.in_flight.len() >= self.config.max_in_flight {
                return None;
            }
            let mut batch = self.queue.pop_front()?;
            if self.expired(&batch, now) {
                let error = self.life_timeout(&batch);
                self.fail(batch, error);
                continue;
            }
            if self.config.idempotent && batch.identity.is_none() {
                let Some((producer_id, epoch)) = self.producer else {
                    self.queue.push_front(batch);
                    self.want_producer_id(now);
                    return None;
                };
                batch.identity = Some(Identity {
                    producer_id,
                    epoch,
                    base_sequence: self.next_sequence,
                });
                self.next_sequence = ((i64::from(self.next_sequence) + batch.records as i64)
                    % SEQUENCE_MODULUS) as i32;
            }
            let records = match seal(&mut batch) {
                Ok(bytes) => bytes,
                Err(e) => {
                    // Nothing left: give its sequence numbers back.
                    if let Some(id) = batch.identity.take() {
                        self.next_sequence = id.base_sequence;
                    }
                    self.fail(batch, e);
                    continue;
                }
            };
            batch.first_send.get_or_insert(now);
            batch.attempts += 1;
            let answer_by = now + self.config.request_timeout;
            let deadline = self
                .life_end(&batch)
                .map_or(answer_by, |end| end.min(answer_by));
            let attempt = self.next_attempt;
            self.next_attempt += 1;
            self.in_flight.push_back(InFlight {
                attempt,
                deadline,
                batch,
            });
            return Some(Transmit { attempt, records });
        }
    }

    /// The SPU answered `attempt` with `code` (0, or a Kafka error code),
    /// `base_offset` and maybe a message.
    pub(crate) fn on_answer(
        &mut self,
        now: Instant,
        attempt: u64,
        code: i16,
        base_offset: i64,
        message: Option<String>,
    ) {
        let Some(flight) = self.take_flight(attempt) else {
            return; // cut earlier (its connection was dropped)
        };
        let batch = flight.batch;
        match code {
            // A duplicate is an earlier attempt of this very batch, stored
            // with its answer lost: the SPU gives the original offset.
            0 | DUPLICATE_SEQUENCE_NUMBER => self.done(batch, Ok(base_offset)),
            MESSAGE_TOO_LARGE if batch.records > 1 => self.split(batch),
            code => {
                let error = RillError::broker(self.what(), code, message);
                self.failed_attempt(now, batch, error, Some(code));
            }
        }
        self.end_round_if_drained(now);
    }

    /// Writing `attempt` failed, or its connection broke before the answer.
    pub(crate) fn on_transport_error(&mut self, now: Instant, attempt: u64, error: RillError) {
        if let Some(flight) = self.take_flight(attempt) {
            self.failed_attempt(now, flight.batch, error, None);
            self.end_round_if_drained(now);
        }
    }

    /// The answer to [`Event::NeedProducerId`].
    pub(crate) fn on_producer_id(&mut self, now: Instant, result: Result<(i64, i16), RillError>) {
        match result {
            Ok(producer) => {
                self.producer = Some(producer);
                self.next_sequence = 0;
                self.gap = None;
                self.producer_id = ProducerId::Have;
            }
            Err(error) => {
                self.producer_id = ProducerId::RetryAt(now + PRODUCER_ID_RETRY_DELAY);
                self.expire_queued(now, Some(&error));
            }
        }
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let answers = self.in_flight.iter().map(|f| f.deadline).min();
        let resume = self.resume_at.filter(|_| !self.queue.is_empty());
        let producer_id = match self.producer_id {
            ProducerId::RetryAt(t) => Some(t),
            _ => None,
        };
        let lives = self.queue.iter().filter_map(|b| self.life_end(b)).min();
        [answers, resume, producer_id, lives]
            .into_iter()
            .flatten()
            .min()
    }

    /// Acts on every deadline passed at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.in_flight.iter().any(|f| f.deadline <= now) {
            // The connection goes: whatever else was in flight on it is cut.
            self.events.push_back(Event::DropConnection);
            let cut: Vec<InFlight<C>> = self.in_flight.drain(..).collect();
            for flight in cut {
                let error = if flight.deadline <= now {
                    RillError::Timeout {
                        what: self.what(),
                        after: self.config.request_timeout,
                    }
                } else {
                    RillError::Transport {
                        addr: String::new(),
                        kind: std::io::ErrorKind::TimedOut,
                        reason: "dropped after another request on it timed out".into(),
                    }
                };
                self.failed_attempt(now, flight.batch, error, None);
            }
            self.end_round_if_drained(now);
        }
        if let ProducerId::RetryAt(t) = self.producer_id {
            if t <= now && !self.queue.is_empty() {
                self.want_producer_id(now);
            }
        }
        self.expire_queued(now, None);
    }

    /// What the driver must do next.
    pub(crate) fn poll_event(&mut self) -> Option<Event<C>> {
        self.events.pop_front()
    }

    /// Ends every batch held with `ProducerClosed` (the producer is gone
    /// and its grace time ran out). Batches in flight may still be stored.
    pub(crate) fn abandon(&mut self) {
        let held: Vec<Batch<C>> = self
            .in_flight
            .drain(..)
            .map(|f| f.batch)
            .chain(self.retry.drain(..))
            .chain(self.queue.drain(..))
            .collect();
        for batch in held {
            self.fail(batch, RillError::ProducerClosed);
        }
    }

    fn take_flight(&mut self, attempt: u64) -> Option<InFlight<C>> {
        let at = self.in_flight.iter().position(|f| f.attempt == attempt)?;
        self.in_flight.remove(at)
    }

    fn want_producer_id(&mut self, now: Instant) {
        if self.producer_id == ProducerId::Asked {
            return;
        }
        self.producer_id = ProducerId::Asked;
        self.events.push_back(Event::NeedProducerId);
        // Waiting for an id is part of a batch's life: with the SPU gone
        // for good, they end at their timeout rather than wait forever.
        for batch in &mut self.queue {
            batch.first_send.get_or_insert(now);
        }
    }

    /// Fails the queued batches whose life ended.
    fn expire_queued(&mut self, now: Instant, why: Option<&RillError>) {
        if !self.queue.iter().any(|b| self.expired(b, now)) {
            return;
        }
        let queue = std::mem::take(&mut self.queue);
        for batch in queue {
            if self.expired(&batch, now) {
                let error = why.cloned().unwrap_or_else(|| self.life_timeout(&batch));
                self.fail(batch, error);
            } else {
                self.queue.push_back(batch);
            }
        }
    }

    /// Decides what a failed attempt means for its batch and the round.
    fn failed_attempt(
        &mut self,
        now: Instant,
        mut batch: Batch<C>,
        error: RillError,
        code: Option<i16>,
    ) {
        // The partition may have moved (or its leader died with the
        // connection): ask where it is now.
        if code.is_none()
            || matches!(
                code,
                Some(UNKNOWN_TOPIC_OR_PARTITION | NOT_LEADER_OR_FOLLOWER | LEADER_NOT_AVAILABLE)
            )
        {
            self.events.push_back(Event::RefreshMetadata);
        }
        if batch.delays.is_none() {
            return self.fail(batch, error); // at most once
        }
        let out_of_order = code == Some(OUT_OF_ORDER_SEQUENCE_NUMBER);
        let unknown_producer = code == Some(UNKNOWN_PRODUCER_ID);
        let id = batch.identity;
        let hole = out_of_order && id.is_some_and(|id| Some(id.producer_id) == self.gap);
        if (hole || unknown_producer) && !self.broken {
            // Every batch before it is answered, and either a batch of this
            // producer id failed for good or the SPU knows nothing of the
            // id: this one is not stored, nor any after it.
            self.renumber = id.map(|id| id.producer_id);
            self.broken = true;
            self.retry.push(batch);
            return;
        }
        // Refused only because an earlier batch of the round failed (a
        // gap), or because the SPU has not met the producer yet (the batch
        // before it, which starts the sequence, failed).
        let echo = self.broken && (error.is_retriable() || out_of_order || unknown_producer);
        self.broken = true;
        let life_end = self.life_end(&batch);
        if life_end.is_some_and(|end| end <= now) {
            let timeout = self.life_timeout(&batch);
            return self.fail(batch, timeout);
        }
        let delay = if echo {
            Duration::ZERO
        } else if error.is_retriable() {
            match batch.delays.as_mut().and_then(Iterator::next) {
                Some(delay) if life_end.is_none_or(|end| now + delay < end) => delay,
                Some(_) => {
                    let timeout = self.life_timeout(&batch);
                    return self.fail(batch, timeout);
                }
                None => {
                    let error = RillError::RetriesExhausted {
                        what: self.what(),
                        attempts: batch.attempts,
                        last: Box::new(error),
                    };
                    return self.fail(batch, error);
                }
            }
        } else {
            return self.fail(batch, error);
        };
        tracing::debug!(error = %error, ?delay, partition = self.config.partition, "sending the batch again");
        let at = now + delay;
        self.resume_at = Some(self.resume_at.map_or(at, |t| t.max(at)));
        self.retry.push(batch);
    }

    /// Splits a batch the SPU found too large; its halves go again in its
    /// place, with its sequence numbers (nothing of it was stored).
    fn split(&mut self, batch: Batch<C>) {
        let Body::Sealed(bytes, _) = &batch.body else {
            return self.fail(
                batch,
                RillError::Encode("an unsent batch was answered".into()),
            );
        };
        let halves = match split_records(bytes, batch.records, self.config.max_request_size_bytes) {
            Ok(halves) => halves,
            Err(e) => return self.fail(batch, e),
        };
        let ((first, first_records), (second, second_records)) = halves;
        let (first_token, second_token) = batch.token.split_at(first_records);
        let identity = |offset: usize| {
            batch.identity.map(|id| Identity {
                base_sequence: ((i64::from(id.base_sequence) + offset as i64) % SEQUENCE_MODULUS)
                    as i32,
                ..id
            })
        };
        let half = |builder, records, reserved_bytes, frees_slot, token, identity| Batch {
            body: Body::Open(builder),
            records,
            reserved_bytes,
            frees_slot,
            token,
            identity,
            first_send: batch.first_send,
            attempts: batch.attempts,
            delays: batch.delays.clone(),
        };
        let a = half(
            first,
            first_records,
            batch.reserved_bytes,
            batch.frees_slot,
            first_token,
            identity(0),
        );
        let b = half(
            second,
            second_records,
            0,
            false,
            second_token,
            identity(first_records),
        );
        tracing::debug!(
            partition = self.config.partition,
            records = batch.records,
            "batch too large for the SPU: split in two"
        );
        if self.config.policy.is_some() {
            // Later batches in flight will be refused as out of order (an
            // echo): the round drains, then the halves lead.
            self.broken = true;
            self.retry.push(a);
            self.retry.push(b);
        } else {
            self.queue.push_front(b);
            self.queue.push_front(a);
        }
    }

    /// Once nothing of the round is in flight, its failed batches lead the
    /// queue again, in their order.
    fn end_round_if_drained(&mut self, now: Instant) {
        let round_failed = self.broken || !self.retry.is_empty();
        if !self.in_flight.is_empty() || !round_failed {
            return;
        }
        for batch in self.retry.drain(..).rev() {
            self.queue.push_front(batch);
        }
        self.broken = false;
        if let Some(producer_id) = self.renumber.take() {
            for batch in &mut self.queue {
                if batch
                    .identity
                    .is_some_and(|id| id.producer_id == producer_id)
                {
                    batch.identity = None;
                }
            }
            tracing::debug!(
                partition = self.config.partition,
                "sequence broken: new producer id"
            );
            self.producer = None;
            self.gap = None;
            self.want_producer_id(now);
        }
    }

    fn done(&mut self, batch: Batch<C>, result: Result<i64, RillError>) {
        self.events.push_back(Event::Done {
            token: batch.token,
            reserved_bytes: batch.reserved_bytes,
            frees_slot: batch.frees_slot,
            result,
        });
    }

    /// Ends a batch with `error`. A batch sent with a sequence may or may
    /// not be stored: its sequence is a possible hole.
    fn fail(&mut self, batch: Batch<C>, error: RillError) {
        if let (Some(id), Some(_)) = (batch.identity, batch.first_send) {
            self.gap = Some(id.producer_id);
        }
        self.done(batch, Err(error));
    }
}

/// The batch's bytes with its identity written in, sealing it first if it
/// is still open.
fn seal<C>(batch: &mut Batch<C>) -> Result<Bytes, RillError> {
    let identity = batch.identity;
    let bytes = match &mut batch.body {
        Body::Open(builder) => {
            if let Some(id) = identity {
                builder.set_producer(id.producer_id, id.epoch, id.base_sequence);
            }
            let builder = std::mem::replace(builder, RecordBatchBuilder::new(Default::default()));
            let mut sealed = builder
                .finish()
                .map_err(|e| RillError::Encode(e.to_string()))?;
            // Batches get room for a full batch when they open; one sent
            // far from full (linger ran out) gives the rest back while it
            // waits for its answer (the allocator shrinks in place).
            if sealed.capacity() > 2 * sealed.len() {
                sealed.shrink_to_fit();
            }
            Bytes::from(sealed)
        }
        Body::Sealed(bytes, sealed_with) if *sealed_with == identity => return Ok(bytes.clone()),
        Body::Sealed(bytes, _) => {
            // Renumbered since it was sealed (rare): rewrite the header.
            let mut copy = bytes.to_vec();
            let id = identity.map_or((-1, -1, -1), |id| {
                (id.producer_id, id.epoch, id.base_sequence)
            });
            rill_protocol::batch::set_producer(&mut copy, id.0, id.1, id.2)
                .map_err(|e| RillError::Encode(e.to_string()))?;
            Bytes::from(copy)
        }
    };
    batch.body = Body::Sealed(bytes.clone(), identity);
    Ok(bytes)
}

type Half = (RecordBatchBuilder, usize);

/// The records of a sealed batch, as two open batches: the first half and
/// the rest.
fn split_records(
    bytes: &[u8],
    records: usize,
    max_bytes: usize,
) -> Result<(Half, Half), RillError> {
    let bad = |e: rill_protocol::BatchError| RillError::Encode(format!("splitting a batch: {e}"));
    let batch = RecordBatch::new(bytes).map_err(bad)?;
    let compression = batch
        .header
        .compression()
        .map_err(|e| RillError::Encode(e.to_string()))?;
    let set = batch.records(max_bytes.saturating_mul(4)).map_err(bad)?;
    let first_records = records / 2;
    let mut first = RecordBatchBuilder::new(compression);
    let mut second = RecordBatchBuilder::new(compression);
    for (i, record) in set.iter().enumerate() {
        let record = record.map_err(bad)?;
        let headers: Vec<(&[u8], Option<&[u8]>)> =
            record.headers.iter().map(|h| (h.key, h.value)).collect();
        let new = NewRecord {
            key: record.key,
            value: record.value,
            headers: &headers,
            timestamp: record.timestamp,
        };
        let half = if i < first_records {
            &mut first
        } else {
            &mut second
        };
        half.push(&new).map_err(bad)?;
    }
    let (a, b) = (first.len(), second.len());
    Ok(((first, a), (second, b)))
}

#[cfg(test)]
mod tests;

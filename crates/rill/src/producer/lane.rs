//! One partition's lane: its batches leave in sequence order over one
//! connection, up to `max_in_flight` unanswered at a time, and their answers
//! are taken in the same order.
//!
//! Order under retry: when a batch fails, every later batch in flight fails
//! behind it too (the SPU refuses a sequence gap, or the connection broke),
//! so the lane lets the round drain, waits the failed batch's retry delay and
//! sends the failed batches again, oldest first. Batches that failed only
//! because an earlier one did spend none of their own retries, but still end
//! at their `timeout`.
//!
//! A batch that fails for good leaves a hole in the partition's sequence
//! numbers that the SPU would refuse forever. An idempotent lane then asks
//! for a new producer id and renumbers what it still holds from 0, so the
//! producer keeps working for later records.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use rill_protocol::produce::{produce_request_front, ProduceFront, PRODUCE_FRONT_VERSIONS};
use tokio::sync::mpsc;

use super::completion::BatchCompletion;
use rill_protocol::{Compression, RecordBatchBuilder};

use super::retry::RetryDelays;
use super::topic_producer::{init_producer_id, Inner};
use super::ReadyBatch;
use crate::config::DeliverySemantic;
use crate::RillError;

/// Produce version the client speaks at most: the last one without tagged
/// fields, which `produce_request_front` writes (batches are not copied).
const PRODUCE_VERSION: i16 = 8;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
/// Wait before asking again for a producer id when the SPU could not give
/// one (it is down): the batches' own timeouts bound the waiting.
const PRODUCER_ID_RETRY_DELAY: Duration = Duration::from_millis(100);
/// Beyond the producer's `timeout` (which the SPU honours), how long an
/// answer may take on the wire before the attempt counts as lost.
const ANSWER_SLACK: Duration = Duration::from_secs(5);

/// A batch's bytes: as handed over (records encoded, not yet compressed or
/// sealed), then as sent.
#[derive(Debug)]
enum Body {
    Unfinished(RecordBatchBuilder),
    Finished(Bytes),
}

/// A batch handed to a lane, with its retry state.
#[derive(Debug)]
pub(super) struct Flight {
    body: Body,
    /// Answers the batch's records.
    completion: BatchCompletion,
    records: usize,
    reserved_bytes: usize,
    /// When the first attempt went out: every attempt ends within
    /// `timeout` of it.
    first_attempt: Option<Instant>,
    /// The delays left (`None` under `AtMostOnce`: no retry).
    delays: Option<RetryDelays>,
}

impl Flight {
    pub(super) fn new(batch: ReadyBatch<(), BatchCompletion>, semantic: DeliverySemantic) -> Self {
        Self {
            body: Body::Unfinished(batch.batch),
            completion: batch.slot,
            records: batch.records,
            reserved_bytes: batch.reserved_bytes,
            first_attempt: None,
            delays: match semantic {
                DeliverySemantic::AtMostOnce => None,
                DeliverySemantic::AtLeastOnce(policy) => Some(policy.delays()),
            },
        }
    }

    /// Compresses and seals the batch if that is still to do (here, in the
    /// lane's task, not under the producer's lock where `send` waits).
    fn finish(&mut self) -> Result<&Bytes, RillError> {
        if let Body::Unfinished(builder) = &mut self.body {
            let builder = std::mem::replace(builder, RecordBatchBuilder::new(Compression::None));
            let bytes = builder
                .finish()
                .map_err(|e| RillError::Protocol(e.to_string()))?;
            self.body = Body::Finished(Bytes::from(bytes));
        }
        match &self.body {
            Body::Finished(bytes) => Ok(bytes),
            Body::Unfinished(_) => Err(RillError::Protocol("batch not finished".into())),
        }
    }

    fn is_finished(&self) -> bool {
        matches!(self.body, Body::Finished(_))
    }

    /// Whether `timeout` since the first attempt has passed at `at`.
    fn timed_out(&self, at: Instant, timeout: Duration) -> bool {
        self.first_attempt
            .is_some_and(|t| at.saturating_duration_since(t) >= timeout)
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<ProduceResponse, RillError>> + Send>>;

/// What the lane does with a failed batch.
enum Verdict {
    /// Send it again after this delay (zero: as soon as the round drained).
    Retry(Duration),
    /// It failed for good.
    Fail,
}

#[derive(Debug, Default)]
struct Round {
    /// Failed batches of the current round, oldest first, to send again.
    retry: Vec<Flight>,
    /// A batch of this round failed: later failures may be its echo.
    broken: bool,
    /// The first batch to send again waits until then.
    resume_at: Option<Instant>,
}

/// Runs one partition's lane until the producer closes and nothing is left.
pub(super) async fn run(
    inner: Arc<Inner>,
    partition: u32,
    mut incoming: mpsc::UnboundedReceiver<Flight>,
) {
    let max_in_flight = inner.max_in_flight() as usize;
    let policy_timeout = match inner.config.delivery_semantic {
        DeliverySemantic::AtLeastOnce(p) => p.timeout,
        DeliverySemantic::AtMostOnce => Duration::MAX,
    };
    let mut queued: VecDeque<Flight> = VecDeque::new();
    let mut sent: VecDeque<(Flight, Answer)> = VecDeque::new();
    let mut round = Round::default();
    let mut restart_sequences = false;
    let mut incoming_open = true;

    loop {
        let resumable =
            round.retry.is_empty() && round.resume_at.is_none_or(|t| t <= Instant::now());
        if resumable && sent.is_empty() && restart_sequences {
            match renumber(&inner, partition, &mut incoming, &mut queued).await {
                Ok(()) => restart_sequences = false,
                Err(e) => {
                    tracing::debug!(error = %e, "no new producer id yet");
                    fail_expired(&inner, partition, &mut queued, policy_timeout, &e);
                    round.resume_at = Some(Instant::now() + PRODUCER_ID_RETRY_DELAY);
                }
            }
        }
        let resumable =
            resumable && !restart_sequences && round.resume_at.is_none_or(|t| t <= Instant::now());
        if resumable {
            round.resume_at = None;
            while sent.len() < max_in_flight {
                let Some(mut flight) = queued.pop_front() else {
                    break;
                };
                flight.first_attempt.get_or_insert_with(Instant::now);
                let sending = match flight.finish() {
                    Ok(bytes) => start(&inner, partition, bytes.clone()).await,
                    Err(e) => Err(e),
                };
                match sending {
                    Ok(answer) => sent.push_back((flight, answer)),
                    // A batch that could not leave while earlier ones are in
                    // flight keeps its place: their answers decide the round.
                    Err(_) if !sent.is_empty() && flight.is_finished() => {
                        queued.push_front(flight);
                        break;
                    }
                    // Otherwise its failure counts now (one that could not
                    // even be compressed fails for good).
                    Err(e) => {
                        settle(
                            &inner,
                            partition,
                            flight,
                            Err(e),
                            &mut round,
                            &mut restart_sequences,
                        );
                        break;
                    }
                }
            }
        }
        if sent.is_empty()
            && !queued.is_empty()
            && round.retry.is_empty()
            && round.resume_at.is_none()
        {
            // A batch failed for good before it left (it is answered) and
            // nothing is in flight to wake the lane: go on with the rest now.
            continue;
        }
        if sent.is_empty() && !round.retry.is_empty() {
            // The round drained: the failed batches go first, in order.
            for f in round.retry.drain(..).rev() {
                queued.push_front(f);
            }
            round.broken = false;
            continue;
        }
        if !incoming_open && sent.is_empty() && queued.is_empty() {
            return;
        }
        let wake_at = round
            .resume_at
            .filter(|_| sent.is_empty())
            .map(tokio::time::Instant::from_std);
        tokio::select! {
            answer = async { sent.front_mut().map(|(_, a)| a) .expect("guarded").await }, if !sent.is_empty() => {
                if let Some((flight, _)) = sent.pop_front() {
                    let result = answer.and_then(|resp| read_answer(&inner, partition, &resp));
                    settle(&inner, partition, flight, result, &mut round, &mut restart_sequences);
                }
            }
            next = incoming.recv(), if incoming_open => match next {
                Some(flight) => queued.push_back(flight),
                None => incoming_open = false,
            },
            _ = sleep_until(wake_at), if wake_at.is_some() => {}
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Decides what a batch's answer means for it and for the round.
fn settle(
    inner: &Arc<Inner>,
    partition: u32,
    mut flight: Flight,
    result: Result<i64, RillError>,
    round: &mut Round,
    restart_sequences: &mut bool,
) {
    let error = match result {
        Ok(base) => return complete(inner, partition, flight, Ok(base)),
        Err(e) => e,
    };
    if let RillError::Broker { code, .. } = &error {
        if matches!(*code, UNKNOWN_TOPIC_OR_PARTITION | NOT_LEADER_OR_FOLLOWER) {
            inner.refresh_metadata_soon();
        }
    }
    let now = Instant::now();
    let timeout = match inner.config.delivery_semantic {
        DeliverySemantic::AtLeastOnce(p) => p.timeout,
        DeliverySemantic::AtMostOnce => Duration::ZERO,
    };
    let echo = round.broken
        && (error.is_retriable() || broker_code(&error) == Some(OUT_OF_ORDER_SEQUENCE_NUMBER));
    let verdict = if flight.delays.is_none() || flight.timed_out(now, timeout) {
        Verdict::Fail
    } else if echo {
        // It failed because an earlier batch did: no retry of its own spent.
        Verdict::Retry(Duration::ZERO)
    } else if error.is_retriable() {
        match flight.delays.as_mut().and_then(Iterator::next) {
            Some(delay) if !flight.timed_out(now + delay, timeout) => Verdict::Retry(delay),
            _ => Verdict::Fail,
        }
    } else {
        Verdict::Fail
    };
    round.broken = true;
    match verdict {
        Verdict::Retry(delay) => {
            tracing::debug!(error = %error, ?delay, partition, "sending the batch again");
            let at = now + delay;
            round.resume_at = Some(round.resume_at.map_or(at, |t| t.max(at)));
            round.retry.push(flight);
        }
        Verdict::Fail => {
            if inner.config.idempotent {
                *restart_sequences = true;
            }
            complete(inner, partition, flight, Err(error));
        }
    }
}

fn broker_code(e: &RillError) -> Option<i16> {
    match e {
        RillError::Broker { code, .. } => Some(*code),
        _ => None,
    }
}

/// Ends every queued batch whose `timeout` has passed, with `why`.
fn fail_expired(
    inner: &Inner,
    partition: u32,
    queued: &mut VecDeque<Flight>,
    timeout: Duration,
    why: &RillError,
) {
    let now = Instant::now();
    let (expired, kept): (Vec<Flight>, Vec<Flight>) = queued
        .drain(..)
        .partition(|f| f.delays.is_none() || f.timed_out(now, timeout));
    queued.extend(kept);
    for f in expired {
        complete(inner, partition, f, Err(why.clone()));
    }
}

/// Takes a new producer id for this partition and renumbers, from 0, every
/// batch the lane holds and every batch the accumulator will hand it.
async fn renumber(
    inner: &Inner,
    partition: u32,
    incoming: &mut mpsc::UnboundedReceiver<Flight>,
    queued: &mut VecDeque<Flight>,
) -> Result<(), RillError> {
    let (producer_id, epoch) = init_producer_id(&inner.client).await?;
    // Under the state lock no batch can be handed to the lane meanwhile:
    // the sender passes them on while holding it.
    let mut st = inner.state();
    while let Ok(f) = incoming.try_recv() {
        queued.push_back(f);
    }
    let mut sequence: i64 = 0;
    for f in queued.iter_mut() {
        let mut bytes = f.finish()?.to_vec();
        rill_protocol::batch::set_producer(&mut bytes, producer_id, epoch, sequence as i32)
            .map_err(|e| RillError::Protocol(e.to_string()))?;
        f.body = Body::Finished(Bytes::from(bytes));
        sequence = (sequence + f.records as i64) % (i64::from(i32::MAX) + 1);
    }
    st.acc
        .restart_sequences(partition, (producer_id, epoch), sequence as i32);
    tracing::debug!(
        partition,
        producer_id,
        "sequences restarted under a new producer id"
    );
    Ok(())
}

/// Writes one Produce request for one batch; the answer comes later.
async fn start(inner: &Inner, partition: u32, records: Bytes) -> Result<Answer, RillError> {
    let conn = inner.client.connection().await?;
    let version = conn.version::<ProduceRequest>(PRODUCE_VERSION)?;
    if version < *PRODUCE_FRONT_VERSIONS.start() {
        return Err(RillError::Unsupported {
            api: format!("Produce v{}+", PRODUCE_FRONT_VERSIONS.start()),
        });
    }
    let timeout = inner.config.timeout;
    let front = |correlation_id| {
        produce_request_front(
            &ProduceFront {
                version,
                correlation_id,
                client_id: crate::connection::CLIENT_ID,
                acks: inner.config.isolation.acks(),
                timeout_ms: timeout.as_millis().min(i32::MAX as u128) as i32,
                topic: &inner.topic,
                partition: partition as i32,
            },
            records.len(),
        )
    };
    let pending = conn.start_produce(front, version, records.clone()).await?;
    // The SPU answers within the producer's timeout; allow the round trip.
    let wait = timeout + ANSWER_SLACK;
    Ok(Box::pin(async move {
        tokio::time::timeout(wait, pending.answer())
            .await
            .map_err(|_| RillError::Timeout(wait))?
    }))
}

/// The base offset a Produce answer gives the batch, or why not.
fn read_answer(inner: &Inner, partition: u32, resp: &ProduceResponse) -> Result<i64, RillError> {
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

/// Completes a batch's records, frees its memory and in-flight slot.
fn complete(inner: &Inner, partition: u32, flight: Flight, result: Result<i64, RillError>) {
    flight
        .completion
        .finish(result.map(|base| (partition, base)));
    inner.batch_done(partition, flight.reserved_bytes);
}

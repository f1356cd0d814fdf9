//! One partition's lane: the async driver of its [`PartitionPipeline`]. It
//! only moves bytes and time: it feeds the pipeline the batches handed to
//! it, the answers and the clock, writes the requests the pipeline gives,
//! and does what the pipeline's events say. Every decision (order, retry,
//! deadlines, sequence numbers, splits) is the pipeline's.

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
use super::pipeline::{Batch, Event, PartitionPipeline, PipelineConfig};
use super::shared::{init_producer_id, Handed, Inner, ANSWER_SLACK};
use crate::config::DeliverySemantic;
use crate::connection::Connection;
use crate::RillError;

/// Produce version the client speaks at most: the last one without tagged
/// fields, which `produce_request_front` writes (batches are not copied).
const PRODUCE_VERSION: i16 = 8;
/// Once the producer is dropped, how long its lanes go on delivering what
/// they hold before ending it with `ProducerClosed`. (`close()` waits for
/// everything instead.)
pub(super) const DROP_GRACE: Duration = Duration::from_secs(30);

type AnswerFuture = Pin<Box<dyn Future<Output = Result<ProduceResponse, RillError>> + Send>>;

/// An attempt written and waiting for its answer.
struct Pending {
    attempt: u64,
    conn: Arc<Connection>,
    answer: AnswerFuture,
}

fn pipeline_config(inner: &Inner, partition: u32) -> PipelineConfig {
    PipelineConfig {
        topic: inner.topic.clone(),
        partition,
        policy: match inner.config.delivery_semantic {
            DeliverySemantic::AtMostOnce => None,
            DeliverySemantic::AtLeastOnce(policy) => Some(policy),
        },
        idempotent: inner.config.idempotent,
        max_in_flight: inner.max_in_flight() as usize,
        request_timeout: inner.config.timeout + ANSWER_SLACK,
        max_request_size_bytes: inner.config.max_request_size,
    }
}

/// Runs one partition's lane until its sender is gone and nothing is held
/// (or the grace time after a drop ran out).
pub(super) async fn run(
    inner: Arc<Inner>,
    partition: u32,
    mut incoming: mpsc::UnboundedReceiver<Handed>,
) {
    let mut pipe: PartitionPipeline<BatchCompletion> =
        PartitionPipeline::new(pipeline_config(&inner, partition), inner.producer);
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut incoming_open = true;
    // Set once the producer is gone: what is still held must be delivered
    // by then.
    let mut give_up_at: Option<Instant> = None;
    // One timer for the lane's deadlines, armed at the earliest one and
    // moved only when a deadline comes sooner than it: a timer registered
    // anew each turn (once per request) made the runtime wake its own
    // driver (an eventfd write and an extra `epoll_wait`) once per record
    // at linger 0. Waking early is harmless: the turn finds nothing due
    // and arms it again.
    let timer = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;
    loop {
        let now = Instant::now();
        pipe.handle_timeout(now);
        // The clock is read at each send: writing one may have taken a
        // while (a reconnect), and deadlines start at the send.
        while let Some(t) = pipe.poll_transmit(Instant::now()) {
            // Writing (connecting first, maybe) is bounded by the deadlines
            // the pipeline keeps, this attempt's included.
            let started = match pipe.poll_timeout() {
                Some(by) => {
                    let allowed = by.saturating_duration_since(Instant::now());
                    tokio::time::timeout(allowed, start(&inner, partition, t.records))
                        .await
                        .unwrap_or_else(|_| {
                            Err(RillError::Timeout {
                                what: format!("connecting to send to {}-{partition}", inner.topic),
                                after: allowed,
                            })
                        })
                }
                None => start(&inner, partition, t.records).await,
            };
            match started {
                Ok((conn, answer)) => pending.push_back(Pending {
                    attempt: t.attempt,
                    conn,
                    answer,
                }),
                Err(e) => pipe.on_transport_error(Instant::now(), t.attempt, e),
            }
        }
        let mut acted = false;
        while let Some(event) = pipe.poll_event() {
            acted = true;
            match event {
                Event::Done {
                    token,
                    reserved_bytes,
                    frees_slot,
                    result,
                } => {
                    let id = token.id();
                    let whole = token.finish(result.map(|base| (partition, base)));
                    inner.batch_done(partition, reserved_bytes, frees_slot, whole.then_some(id));
                }
                Event::RefreshMetadata => inner.refresh_metadata_soon(),
                Event::NeedProducerId => {
                    // Nothing of this partition is in flight meanwhile: the
                    // pipeline asks only once its round drained.
                    let answer = init_producer_id(&inner.client).await;
                    pipe.on_producer_id(Instant::now(), answer);
                }
                Event::DropConnection => {
                    for p in pending.drain(..) {
                        p.conn.abort();
                    }
                }
            }
        }
        if acted {
            continue; // events may have let more go
        }
        if !incoming_open && pipe.is_idle() {
            return;
        }
        if give_up_at.is_some_and(|t| t <= now) {
            tracing::warn!(topic = %inner.topic, partition, "producer dropped: giving up on what it still held");
            pipe.abandon();
            pending.clear();
            continue;
        }
        let wake_at = [pipe.poll_timeout(), give_up_at]
            .into_iter()
            .flatten()
            .min();
        if let Some(at) = wake_at.filter(|at| armed.is_none_or(|a| *at < a)) {
            timer.as_mut().reset(tokio::time::Instant::from_std(at));
            armed = Some(at);
        }
        tokio::select! {
            answer = async { (&mut pending.front_mut().expect("guarded").answer).await }, if !pending.is_empty() => {
                if let Some(p) = pending.pop_front() {
                    let now = Instant::now();
                    match answer.and_then(|resp| read_answer(&resp)) {
                        Ok((code, base, message)) => pipe.on_answer(now, p.attempt, code, base, message),
                        Err(e) => pipe.on_transport_error(now, p.attempt, e),
                    }
                }
            }
            next = incoming.recv(), if incoming_open => match next {
                Some(batch) => {
                    pipe.enqueue(Batch::new(batch.batch, batch.records, batch.reserved_bytes, batch.slot));
                    while let Ok(batch) = incoming.try_recv() {
                        pipe.enqueue(Batch::new(batch.batch, batch.records, batch.reserved_bytes, batch.slot));
                    }
                }
                None => {
                    incoming_open = false;
                    if inner.closing.load(std::sync::atomic::Ordering::Acquire) {
                        give_up_at = Some(Instant::now() + DROP_GRACE);
                    }
                }
            },
            _ = &mut timer, if armed.is_some() => armed = None,
        }
    }
}

/// Writes one Produce request for one batch; the answer comes later.
async fn start(
    inner: &Inner,
    partition: u32,
    records: Bytes,
) -> Result<(Arc<Connection>, AnswerFuture), RillError> {
    let conn = inner
        .client
        .leader_connection(&inner.topic, partition)
        .await?;
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
    let answer = conn.start_produce(front, version, records.clone()).await?;
    Ok((conn, Box::pin(answer.answer())))
}

/// The error code, base offset and message of a one-partition Produce
/// answer.
fn read_answer(resp: &ProduceResponse) -> Result<(i16, i64, Option<String>), RillError> {
    let p = resp
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or_else(|| RillError::Protocol("Produce answer without the partition".into()))?;
    Ok((
        p.error_code,
        p.base_offset,
        p.error_message.as_ref().map(|m| m.to_string()),
    ))
}

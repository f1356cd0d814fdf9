//! One writer per partition: the thread that appends to its log.
//!
//! Appends, the fsync of `FlushPolicy::Always` and segment rolls are
//! blocking file work; they run here, never on the tokio workers, so a slow
//! disk stalls only the produce requests waiting on that partition, and the
//! request timeout can still fire on them. Produce handlers send each record
//! set through a bounded queue and await the writer's answer.
//!
//! The writer is a plain thread, started on the first append to its
//! partition (a topic with thousands of partitions costs no thread until
//! they are written) and ended when the partition goes: the queue's last
//! sender is the partition's. It takes every append queued (up to
//! [`MAX_GROUP_APPENDS`]) in one wake-up, writes them in queue order, and
//! answers each as soon as it is stored (with `FlushPolicy::Always`, once
//! its fsync returned: `PartitionLog::append` syncs before it returns).
//!
//! Being the only writer of its partition, it also owns the idempotence
//! check: check, append and record happen with no other append in between.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::protocol::StrBytes;
use rill_protocol::batch::{split_batches, BatchHeader};
use rill_storage::PartitionLog;
use tokio::sync::{mpsc, oneshot};

use crate::api::storage_error_code;
use crate::idempotence::{ProducerTable, Verdict};

/// Appends waiting in one partition's queue, counted in record sets (one
/// produce request's records for that partition). A full queue makes the
/// produce handler wait, within the request timeout: back-pressure, not
/// memory. (Each queued record set belongs to a request a connection is
/// serving, so the bytes are bounded by `max_connections` frames anyway.)
pub(crate) const WRITER_QUEUE_APPENDS: usize = 128;
/// Most appends the writer takes from its queue in one wake-up.
pub(crate) const MAX_GROUP_APPENDS: usize = 64;
/// Stack of a writer thread: it runs no recursion, only storage calls.
const WRITER_STACK_BYTES: usize = 256 * 1024;

/// A log behind a lock held only for the length of a storage call (never
/// across an await).
pub(crate) type SharedLog = Arc<Mutex<PartitionLog>>;
/// Idempotent producers' recent batches; taken before the log when both are
/// needed.
pub(crate) type SharedProducers = Arc<Mutex<ProducerTable>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the log half-written
    // (appends validate before writing), so carry on.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One record set for the writer, and where its answer goes.
#[derive(Debug)]
struct Append {
    records: Bytes,
    reply: oneshot::Sender<PartitionProduceResponse>,
}

/// The produce side of one partition's writer.
#[derive(Debug)]
pub(crate) struct Writer {
    /// For the thread's name and the logs: `topic-partition`.
    name: String,
    log: SharedLog,
    producers: SharedProducers,
    /// The queue into the running thread; `None` before the first append.
    queue: Mutex<Option<mpsc::Sender<Append>>>,
}

fn failure(code: ResponseError, message: String) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message)))
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
}

impl Writer {
    pub fn new(name: String, log: SharedLog, producers: SharedProducers) -> Self {
        Self {
            name,
            log,
            producers,
            queue: Mutex::new(None),
        }
    }

    /// The queue into the writer thread, starting the thread if it is not
    /// running (first append, or it died).
    fn queue(&self) -> std::io::Result<mpsc::Sender<Append>> {
        let mut slot = lock(&self.queue);
        if let Some(tx) = slot.as_ref().filter(|tx| !tx.is_closed()) {
            return Ok(tx.clone());
        }
        let (tx, rx) = mpsc::channel(WRITER_QUEUE_APPENDS);
        let (log, producers) = (self.log.clone(), self.producers.clone());
        std::thread::Builder::new()
            .name(format!("rill-writer {}", self.name))
            .stack_size(WRITER_STACK_BYTES)
            .spawn(move || run(rx, &log, &producers))?;
        *slot = Some(tx.clone());
        Ok(tx)
    }

    /// Queues `records` (one or more whole batches) for the writer, waiting
    /// for room in the queue; the answer comes through [`Queued::answer`].
    pub async fn submit(&self, records: Bytes) -> Queued {
        let queue = match self.queue() {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(partition = %self.name, error = %e, "cannot start the partition writer");
                return Queued::Answered(failure(
                    ResponseError::KafkaStorageError,
                    format!("cannot start the partition writer: {e}"),
                ));
            }
        };
        let (reply, answer) = oneshot::channel();
        match queue.send(Append { records, reply }).await {
            Ok(()) => Queued::Waiting(answer),
            Err(_) => Queued::Answered(failure(
                ResponseError::KafkaStorageError,
                "the partition writer stopped".into(),
            )),
        }
    }
}

/// An append handed to a writer.
#[derive(Debug)]
pub(crate) enum Queued {
    Waiting(oneshot::Receiver<PartitionProduceResponse>),
    /// Refused before it reached the writer.
    Answered(PartitionProduceResponse),
}

impl Queued {
    /// The writer's answer (without the partition index).
    pub async fn answer(self) -> PartitionProduceResponse {
        match self {
            Queued::Answered(resp) => resp,
            Queued::Waiting(rx) => rx.await.unwrap_or_else(|_| {
                failure(
                    ResponseError::KafkaStorageError,
                    "the partition writer stopped before answering".into(),
                )
            }),
        }
    }
}

/// The writer thread: until every sender is gone, take what is queued and
/// write it.
fn run(
    mut rx: mpsc::Receiver<Append>,
    log: &Mutex<PartitionLog>,
    producers: &Mutex<ProducerTable>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP_APPENDS);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP_APPENDS {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        for Append { records, reply } in group.drain(..) {
            // A requester that gave up (timeout, closed connection) still
            // gets its append: it was accepted and may be retried as a
            // duplicate, which idempotence recognises.
            let _ = reply.send(write(log, producers, &records));
        }
    }
}

/// One record set: idempotence check, append, high watermark.
fn write(
    log: &Mutex<PartitionLog>,
    producers: &Mutex<ProducerTable>,
    records: &[u8],
) -> PartitionProduceResponse {
    let mut resp = PartitionProduceResponse::default()
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1);
    // Idempotent producers: a retried batch is answered with its original
    // offset, a gap or a stale epoch is refused. (Clients send one batch per
    // partition per request; each batch is checked against what is stored.)
    let headers: Vec<BatchHeader> = split_batches(records)
        .filter_map(|b| b.ok().and_then(|b| BatchHeader::parse(b).ok()))
        .collect();
    let mut producers = lock(producers);
    for h in &headers {
        match producers.check(h) {
            Verdict::Append => {}
            Verdict::Duplicate(base_offset) => {
                resp.error_code = ResponseError::DuplicateSequenceNumber.code();
                resp.base_offset = base_offset;
                resp.log_start_offset = lock(log).log_start_offset() as i64;
                return resp;
            }
            Verdict::Refuse { code, message } => {
                return resp
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message)));
            }
        }
    }
    // The log rewrites base_offset in place, so it needs its own copy.
    let mut buf = records.to_vec();
    let mut log = lock(log);
    match log.append(&mut buf) {
        Ok(info) => {
            // One SPU is the whole in-sync replica set: the batch is
            // committed as soon as the leader has it, for acks 1 and all.
            let end = log.log_end_offset();
            log.set_high_watermark(end);
            resp.base_offset = info.base_offset as i64;
            resp.log_start_offset = log.log_start_offset() as i64;
            let mut base = info.base_offset as i64;
            for h in &headers {
                producers.record(h, base);
                base += i64::from(h.last_offset_delta) + 1;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, dir = %log.dir().display(), "produce refused");
            resp.error_code = storage_error_code(&e);
            resp.error_message = Some(StrBytes::from_string(e.to_string()));
        }
    }
    resp
}

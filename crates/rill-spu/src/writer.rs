//! One writer per partition: the thread that appends to its log.
//!
//! Appends, the fsync of `FlushPolicy::Always` and segment rolls are
//! blocking file work; they run here, never on the tokio workers, so a slow
//! disk stalls only the produce requests waiting on that partition, and the
//! request timeout can still fire on them. Produce handlers send each record
//! set through a bounded queue and await the writer's answer. One exception,
//! for latency and CPU: a record set of at most
//! [`INLINE_APPEND_MAX_BYTES`] that finds the writer idle, on a log whose
//! append is page-cache work only (flush `never`, no roll), is appended in
//! place by the produce handler ([`Writer::submit`]).
//!
//! The writer is a plain thread, started on the first append to its
//! partition (a topic with thousands of partitions costs no thread until
//! they are written) and ended when the partition goes: the queue's last
//! sender is the partition's. It takes every append queued (up to
//! [`MAX_GROUP_APPENDS`]) in one wake-up and writes them in queue order.
//!
//! Group commit (`FlushPolicy::Always`): the record sets taken together are
//! checked (idempotence) one by one, then stored by one `PartitionLog::append`
//! of their concatenation, so one write and one fsync cover them all, and
//! each is answered with its own base offset once that fsync returned. An
//! idempotent producer's record sets in one group (it keeps up to five in
//! flight) are checked in order, each against the ones before it recorded
//! provisionally at the offsets the append will give them. A group holds at
//! most [`MAX_GROUP_BYTES`] (it is copied into one buffer), and if the log
//! refuses the whole
//! (a bad batch in one record set: nothing is written then) the writer
//! appends them one at a time so each gets its own answer. Without
//! `Always` the log does not fsync per append and record sets are appended
//! one at a time.
//!
//! Being the only writer of its partition, it also owns the idempotence
//! check: check, append and record happen with no other append in between.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::protocol::StrBytes;
use rill_protocol::batch::{split_batches, BatchHeader};
use rill_storage::{FlushPolicy, PartitionLog, StorageError};
use tokio::sync::{mpsc, oneshot};

use crate::api::storage_error_code;
use crate::idempotence::{ProducerTable, Verdict};
use crate::metrics::PartitionCounters;
use crate::replication::leader::{current, LeaderSlot};

/// Appends waiting in one partition's queue, counted in record sets (one
/// produce request's records for that partition). A full queue makes the
/// produce handler wait, within the request timeout: back-pressure, not
/// memory. (Each queued record set belongs to a request a connection is
/// serving, so the bytes are bounded by `max_connections` frames anyway.)
pub(crate) const WRITER_QUEUE_APPENDS: usize = 128;
/// Most appends the writer takes from its queue in one wake-up.
pub(crate) const MAX_GROUP_APPENDS: usize = 64;
/// Most batches in one group commit (the storage's limit per append).
const MAX_GROUP_BATCHES: usize = 1024;
/// Most record bytes one group commit copies into its append; a record
/// set larger than this is committed alone.
const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;
/// Largest record set the produce handler appends in place (on its own
/// async thread) when the writer is idle and the append is page-cache work
/// only (see [`Writer::submit`]). A copy of 256 KiB into the page cache
/// holds the async thread for tens of microseconds, less than the two
/// thread wake-ups of the hand-off it saves (with 64 KiB batches the
/// hand-off cost the SPU half its CPU); larger record sets go to the
/// writer thread, so one huge request does not hold the thread longer.
pub const INLINE_APPEND_MAX_BYTES: usize = 256 * 1024;
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

/// What the writer needs to know of the partition's leadership.
#[derive(Debug, Clone)]
pub(crate) struct WriterRole {
    pub slot: LeaderSlot,
    /// In a cluster an append is only made while this SPU leads (a
    /// request admitted just before leadership moved is refused, not
    /// written into a log that is about to follow another).
    pub clustered: bool,
    /// The partition's produce counters, bumped after each append.
    pub counters: PartitionCounters,
}

impl WriterRole {
    /// Counts an appended record set: its records (from the batch
    /// headers already parsed) and bytes.
    fn count(&self, headers: &[BatchHeader], bytes: usize) {
        let records: u64 = headers
            .iter()
            .map(|h| u64::from(h.records_count.unsigned_abs()))
            .sum();
        self.counters.produce_records.inc_by(records);
        self.counters.produce_bytes.inc_by(bytes as u64);
    }
}

impl WriterRole {
    /// `Some` refusal when this SPU may not append now.
    fn refusal(&self) -> Option<PartitionProduceResponse> {
        (self.clustered && current(&self.slot).is_none()).then(|| {
            failure(
                ResponseError::NotLeaderOrFollower,
                "this SPU no longer leads the partition".into(),
            )
        })
    }
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
    leader: WriterRole,
    /// The queue into the running thread; `None` before the first append.
    queue: Mutex<Option<mpsc::Sender<Append>>>,
    /// Appends handed to this writer and not answered yet: queued, being
    /// written by the thread, or being written in place. An append is made
    /// in place only when it takes this from 0 to 1, so it never overtakes
    /// one queued before it (a producer's sequence numbers stay in order).
    busy: Arc<AtomicUsize>,
}

fn failure(code: ResponseError, message: String) -> PartitionProduceResponse {
    failure_code(code.code(), message)
}

fn failure_code(code: i16, message: String) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(message)))
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
}

impl Writer {
    pub fn new(
        name: String,
        log: SharedLog,
        producers: SharedProducers,
        leader: WriterRole,
    ) -> Self {
        Self {
            name,
            log,
            producers,
            leader,
            queue: Mutex::new(None),
            busy: Arc::new(AtomicUsize::new(0)),
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
        let (leader, busy) = (self.leader.clone(), self.busy.clone());
        std::thread::Builder::new()
            .name(format!("rill-writer {}", self.name))
            .stack_size(WRITER_STACK_BYTES)
            .spawn(move || run(rx, &log, &producers, &leader, &busy))?;
        *slot = Some(tx.clone());
        Ok(tx)
    }

    /// Queues `records` (one or more whole batches) for the writer, waiting
    /// for room in the queue; the answer comes through [`Queued::answer`].
    ///
    /// A record set of at most [`INLINE_APPEND_MAX_BYTES`] is appended
    /// here instead, on the caller's thread, when nothing else is queued or
    /// being written and the log says the append is page-cache work only
    /// ([`PartitionLog::append_is_light`]: flush policy `never`, no segment
    /// roll). That copy is cheaper than the hand-off it saves: the round
    /// trip through the writer thread (two thread wake-ups, tens of
    /// microseconds on a small VM) that a lone record at linger 0 would
    /// wait for, and that a stream of large batches would pay per request.
    /// Anything that may block on the disk still runs on the writer thread.
    pub async fn submit(&self, records: Bytes) -> Queued {
        if let Some(answer) = self.append_in_place(&records) {
            return Queued::Answered(answer);
        }
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
        self.busy.fetch_add(1, Ordering::AcqRel);
        match queue.send(Append { records, reply }).await {
            Ok(()) => Queued::Waiting(answer),
            Err(_) => {
                self.busy.fetch_sub(1, Ordering::AcqRel);
                Queued::Answered(failure(
                    ResponseError::KafkaStorageError,
                    "the partition writer stopped".into(),
                ))
            }
        }
    }

    /// The in-place append of [`Self::submit`], or `None` when the record
    /// set must go to the writer thread.
    fn append_in_place(&self, records: &Bytes) -> Option<PartitionProduceResponse> {
        if records.len() > INLINE_APPEND_MAX_BYTES
            || self
                .busy
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return None;
        }
        // Never wait for the log here: whoever holds it (a reader, the
        // housekeeping) may be doing file work.
        let light = match self.log.try_lock() {
            Ok(log) => log.append_is_light(records.len()),
            Err(_) => false,
        };
        if !light {
            self.busy.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let answer = write(&self.log, &self.producers, &self.leader, records);
        self.busy.fetch_sub(1, Ordering::AcqRel);
        Some(answer)
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
    leader: &WriterRole,
    busy: &AtomicUsize,
) {
    let group_commit = lock(log).config().flush == FlushPolicy::Always;
    let mut group = Vec::with_capacity(MAX_GROUP_APPENDS);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP_APPENDS {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let taken = group.len();
        if group_commit && taken > 1 {
            commit_group(log, producers, leader, &mut group);
        }
        for Append { records, reply } in group.drain(..) {
            // A requester that gave up (timeout, closed connection) still
            // gets its append: it was accepted and may be retried as a
            // duplicate, which idempotence recognises.
            let _ = reply.send(write(log, producers, leader, &records));
        }
        busy.fetch_sub(taken, Ordering::AcqRel);
    }
}

fn headers(records: &[u8]) -> Vec<BatchHeader> {
    split_batches(records)
        .filter_map(|b| b.ok().and_then(|b| BatchHeader::parse(b).ok()))
        .collect()
}

/// Group commit of everything in `group`, in chunks that stay within
/// [`MAX_GROUP_BATCHES`] and [`MAX_GROUP_BYTES`]; leaves `group` empty.
fn commit_group(
    log: &Mutex<PartitionLog>,
    producers: &Mutex<ProducerTable>,
    leader: &WriterRole,
    group: &mut Vec<Append>,
) {
    let mut chunk: Vec<(Append, Vec<BatchHeader>)> = Vec::with_capacity(group.len());
    let (mut batches, mut bytes) = (0, 0);
    for append in group.drain(..) {
        let hs = headers(&append.records);
        let full = batches + hs.len() > MAX_GROUP_BATCHES
            || bytes + append.records.len() > MAX_GROUP_BYTES;
        if !chunk.is_empty() && full {
            commit_chunk(log, producers, leader, std::mem::take(&mut chunk));
            (batches, bytes) = (0, 0);
        }
        batches += hs.len();
        bytes += append.records.len();
        chunk.push((append, hs));
    }
    commit_chunk(log, producers, leader, chunk);
}

/// Record sets checked one by one, then appended (and fsynced) as one.
///
/// One idempotent producer may have several record sets in the chunk (up
/// to five in flight): each accepted one is recorded provisionally, at the
/// offset the log will give it, so the next one's sequence is checked
/// against it; the table is put back before the append and recorded for
/// real once the append is done. A retry of a record set of this same chunk
/// is answered only after the chunk is durable.
fn commit_chunk(
    log: &Mutex<PartitionLog>,
    producers: &Mutex<ProducerTable>,
    leader: &WriterRole,
    chunk: Vec<(Append, Vec<BatchHeader>)>,
) {
    let mut table = lock(producers);
    let (start, log_start_offset) = {
        let l = lock(log);
        (l.log_end_offset() as i64, l.log_start_offset() as i64)
    };
    let saved = table.save(
        chunk
            .iter()
            .flat_map(|(_, hs)| hs.iter().filter(|h| h.has_producer_id()))
            .map(|h| h.producer_id),
    );
    let mut accepted = Vec::with_capacity(chunk.len());
    // Retries of record sets in this chunk, answered after it.
    let mut retries = Vec::new();
    let mut next = start;
    for (append, hs) in chunk {
        match check(&table, &hs, log_start_offset) {
            Some(answer) if answer.base_offset >= start => retries.push((append, answer)),
            Some(answer) => {
                let _ = append.reply.send(answer);
            }
            None => {
                for h in &hs {
                    table.record(h, next);
                    next += i64::from(h.records_count.unsigned_abs());
                }
                accepted.push((append, hs));
            }
        }
    }
    table.restore(saved);
    if accepted.len() <= 1 || leader.refusal().is_some() {
        drop(table);
        for (Append { records, reply }, _) in accepted {
            let _ = reply.send(write(log, producers, leader, &records));
        }
        for (Append { records, reply }, _) in retries {
            let _ = reply.send(write(log, producers, leader, &records));
        }
        return;
    }
    let mut buf = Vec::with_capacity(accepted.iter().map(|(a, _)| a.records.len()).sum());
    for (append, _) in &accepted {
        buf.extend_from_slice(&append.records);
    }
    let mut log_guard = lock(log);
    match log_guard.append(&mut buf) {
        Ok(info) => {
            after_append(&mut log_guard, leader);
            let log_start_offset = log_guard.log_start_offset() as i64;
            drop(log_guard);
            // The log gives each batch `records_count` offsets, in order.
            let mut next = info.base_offset as i64;
            for (append, hs) in accepted {
                leader.count(&hs, append.records.len());
                let base_offset = next;
                for h in &hs {
                    table.record(h, next);
                    next += i64::from(h.records_count.unsigned_abs());
                }
                let _ = append.reply.send(
                    PartitionProduceResponse::default()
                        .with_base_offset(base_offset)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(log_start_offset),
                );
            }
            drop(table);
            // Checked again now that the chunk is recorded: a duplicate's
            // answer, or (had the offsets moved) its own append.
            for (Append { records, reply }, _) in retries {
                let _ = reply.send(write(log, producers, leader, &records));
            }
        }
        // Refused before anything was written: one at a time, so only the
        // bad record set is refused.
        Err(
            StorageError::InvalidBatch(_) | StorageError::EmptyAppend | StorageError::Config(_),
        ) => {
            drop(log_guard);
            drop(table);
            for (Append { records, reply }, _) in accepted
                .into_iter()
                .chain(retries.into_iter().map(|(a, _)| (a, Vec::new())))
            {
                let _ = reply.send(write(log, producers, leader, &records));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, dir = %log_guard.dir().display(), "produce refused");
            let answer = failure_code(storage_error_code(&e), e.to_string());
            for append in accepted
                .into_iter()
                .map(|(a, _)| a)
                .chain(retries.into_iter().map(|(a, _)| a))
            {
                let _ = append.reply.send(answer.clone());
            }
        }
    }
}

/// The idempotence verdict on a record set: `None` to append it, else the
/// answer (a duplicate's original offset, or the refusal).
fn check(
    table: &ProducerTable,
    hs: &[BatchHeader],
    log_start_offset: i64,
) -> Option<PartitionProduceResponse> {
    // Clients send one batch per partition per request; each batch is
    // checked against what is stored.
    for h in hs {
        match table.check(h) {
            Verdict::Append => {}
            Verdict::Duplicate(base_offset) => {
                return Some(
                    PartitionProduceResponse::default()
                        .with_error_code(ResponseError::DuplicateSequenceNumber.code())
                        .with_base_offset(base_offset)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(log_start_offset),
                );
            }
            Verdict::Refuse { code, message } => return Some(failure(code, message)),
        }
    }
    None
}

/// One record set: idempotence check, append, high watermark.
fn write(
    log: &Mutex<PartitionLog>,
    producers: &Mutex<ProducerTable>,
    leader: &WriterRole,
    records: &[u8],
) -> PartitionProduceResponse {
    // Idempotent producers: a retried batch is answered with its original
    // offset, a gap or a stale epoch is refused.
    let headers = headers(records);
    let mut producers = lock(producers);
    let log_start_offset = lock(log).log_start_offset() as i64;
    if let Some(answer) = check(&producers, &headers, log_start_offset) {
        return answer;
    }
    if let Some(refused) = leader.refusal() {
        return refused;
    }
    // Shared bytes (the request's): the log writes each batch's rewritten
    // header beside the rest instead of rewriting a copy (a copy of every
    // record set was 3 % of the SPU's CPU under a stream of 64 KiB batches).
    let mut log = lock(log);
    match log.append_shared(records) {
        Ok(info) => {
            after_append(&mut log, leader);
            leader.count(&headers, records.len());
            let mut base = info.base_offset as i64;
            for h in &headers {
                producers.record(h, base);
                base += i64::from(h.last_offset_delta) + 1;
            }
            PartitionProduceResponse::default()
                .with_base_offset(info.base_offset as i64)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(log.log_start_offset() as i64)
        }
        Err(e) => {
            tracing::warn!(error = %e, dir = %log.dir().display(), "produce refused");
            failure_code(storage_error_code(&e), e.to_string())
        }
    }
}

/// Moves the high watermark after an append: to the log end on a single
/// SPU (its one copy is the whole in-sync replica set, so a batch is
/// committed as soon as it is written, for acks 1 and all); as the ISR
/// allows for a leader in a cluster.
fn after_append(log: &mut PartitionLog, leader: &WriterRole) {
    let end = log.log_end_offset();
    match current(&leader.slot) {
        None => log.set_high_watermark(end),
        Some(l) => {
            let hw = l.on_append(end as i64);
            raise_high_watermark(log, hw);
        }
    }
}

/// Sets the log's high watermark to `hw` unless it is already there or
/// past it (two threads may report it out of order), never past the end.
pub(crate) fn raise_high_watermark(log: &mut PartitionLog, hw: i64) {
    let hw = u64::try_from(hw).unwrap_or(0).min(log.log_end_offset());
    if hw > log.high_watermark() {
        log.set_high_watermark(hw);
    }
}

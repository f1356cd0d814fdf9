//! Fetch (key 1): whole batches from an offset, with long polling.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use rill_protocol::batch::{split_batches, BatchHeader};
use rill_storage::{Batches, FileSlice, StorageError};

use super::reader::{Reader, Result};
use super::Context;
use super::{read_logs, storage_error_code};
use crate::registry::{LogAccess, Partition, Registry};
use crate::writer::raise_high_watermark;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<FetchRequest> {
    r.set_flexible(v >= 12);
    let mut req = FetchRequest::default()
        .with_replica_id(BrokerId(r.i32()?))
        .with_max_wait_ms(r.i32()?)
        .with_min_bytes(r.i32()?)
        .with_max_bytes(r.i32()?)
        .with_isolation_level(r.i8()?);
    if v >= 7 {
        req.session_id = r.i32()?;
        req.session_epoch = r.i32()?;
    } else {
        req.session_epoch = -1;
    }
    req.topics = r.array(|r| {
        let topic = r.topic_name()?;
        let partitions = r.array(|r| {
            let mut p = FetchPartition::default().with_partition(r.i32()?);
            p.current_leader_epoch = if v >= 9 { r.i32()? } else { -1 };
            p.fetch_offset = r.i64()?;
            p.last_fetched_epoch = if v >= 12 { r.i32()? } else { -1 };
            p.log_start_offset = if v >= 5 { r.i64()? } else { -1 };
            p.partition_max_bytes = r.i32()?;
            p.unknown_tagged_fields = r.no_known_tags()?;
            Ok(p)
        })?;
        let mut t = FetchTopic::default()
            .with_topic(topic)
            .with_partitions(partitions);
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    if v >= 7 {
        req.forgotten_topics_data = r.array(|r| {
            let topic = r.topic_name()?;
            let partitions = r.array(|r| r.i32())?;
            let mut f = ForgottenTopic::default()
                .with_topic(topic)
                .with_partitions(partitions);
            f.unknown_tagged_fields = r.no_known_tags()?;
            Ok(f)
        })?;
    }
    if v >= 11 {
        req.rack_id = r.string()?;
    }
    let mut cluster_id = None;
    req.unknown_tagged_fields = r.tagged(|tag, value| {
        if tag != 0 {
            return Ok(false);
        }
        // cluster_id: a compact nullable string inside the tag's bytes.
        let mut inner = Reader::new(value);
        inner.set_flexible(true);
        cluster_id = inner.nullable_string()?;
        Ok(true)
    })?;
    req.cluster_id = cluster_id;
    Ok(req)
}

/// A consumer's read of one partition, counted once its response is sent.
struct Read {
    partition: Arc<Partition>,
    records: u64,
    bytes: u64,
}

/// A Fetch answer: the response, and for each of its partitions in order
/// the file slice that holds its records when they were left in their
/// segment file (the response's own `records` is empty there).
#[derive(Debug)]
pub(crate) struct Answer {
    pub resp: FetchResponse,
    pub files: Vec<Option<FileSlice>>,
}

/// One pass: the answer, its record bytes, and what consumers read.
struct Pass {
    answer: Answer,
    total: usize,
    reads: Vec<Read>,
}

/// Records in the whole batches of `batches`.
fn count_records(batches: &[u8]) -> u64 {
    split_batches(batches)
        .filter_map(|b| b.ok().and_then(|b| BatchHeader::parse(b).ok()))
        .map(|h| u64::from(h.records_count.unsigned_abs()))
        .sum()
}

/// One pass over the partitions asked for: the response and its record
/// bytes; `None` when a log was busy and `access` says not to wait.
fn fetch_once(registry: &Registry, req: &FetchRequest, access: LogAccess) -> Option<Pass> {
    let cap = registry.config().max_fetch_bytes;
    let mut pass = PassState {
        registry,
        access,
        from_replica: req.replica_id.0 >= 0,
        budget: usize::try_from(req.max_bytes)
            .ok()
            .filter(|&n| n > 0)
            .map_or(cap, |n| n.min(cap)),
        busy: false,
        total: 0,
        reads: Vec::new(),
    };
    let mut files = Vec::new();
    let responses = req
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|fp| {
                    let (pd, file) = pass.partition(&topic.topic, fp);
                    files.push(file);
                    pd
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    (!pass.busy).then(|| Pass {
        answer: Answer {
            resp: FetchResponse::default().with_responses(responses),
            files,
        },
        total: pass.total,
        reads: pass.reads,
    })
}

/// A pass under way: what is left of the response's byte budget, and what
/// was read so far.
struct PassState<'a> {
    registry: &'a Registry,
    access: LogAccess,
    from_replica: bool,
    budget: usize,
    /// A log was busy and `access` said not to wait.
    busy: bool,
    total: usize,
    reads: Vec<Read>,
}

impl PassState<'_> {
    /// One partition: its response, and the file slice holding its records
    /// when they stay in their file.
    fn partition(
        &mut self,
        topic: &kafka_protocol::messages::TopicName,
        fp: &FetchPartition,
    ) -> (PartitionData, Option<FileSlice>) {
        let mut pd = PartitionData::default()
            .with_partition_index(fp.partition)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_aborted_transactions(Some(Vec::new()))
            .with_preferred_read_replica(BrokerId(-1))
            .with_records(Some(Bytes::new()));
        let partition = match self.registry.leading(topic, fp.partition) {
            Ok(p) => p,
            Err(code) => {
                pd.error_code = code.code();
                return (pd, None);
            }
        };
        if let Some(code) = epoch_mismatch(fp.current_leader_epoch, &partition) {
            pd.error_code = code.code();
            return (pd, None);
        }
        let Some(log) = partition.read_log(self.access) else {
            self.busy = true;
            return (pd, None);
        };
        pd.high_watermark = log.high_watermark() as i64;
        pd.last_stable_offset = log.high_watermark() as i64;
        pd.log_start_offset = log.log_start_offset() as i64;
        let Ok(offset) = u64::try_from(fp.fetch_offset) else {
            pd.error_code = ResponseError::OffsetOutOfRange.code();
            return (pd, None);
        };
        // Once the response is full, later partitions get nothing; the
        // first batch is always sent whole.
        if self.budget == 0 {
            return (pd, None);
        }
        let limit = usize::try_from(fp.partition_max_bytes)
            .unwrap_or(0)
            .min(self.budget);
        // A follower copies the whole log; consumers (either isolation:
        // Rill has no transactions, so the last stable offset is the high
        // watermark) read what is committed.
        match log.read_batches(offset, limit, !self.from_replica) {
            Ok(r) => {
                let bytes = r.batches.byte_len();
                self.budget = self.budget.saturating_sub(bytes as usize);
                self.total += bytes as usize;
                let (records, file) = match r.batches {
                    Batches::Bytes(b) => {
                        let records = count_records(&b);
                        pd.records = Some(Bytes::from(b));
                        (records, None)
                    }
                    Batches::File(f) => (f.records, Some(f)),
                };
                if !self.from_replica && bytes > 0 {
                    self.reads.push(Read {
                        records,
                        bytes,
                        partition: partition.clone(),
                    });
                }
                (pd, file)
            }
            Err(e @ StorageError::OffsetOutOfRange { .. }) => {
                tracing::debug!(error = %e, "fetch out of range");
                pd.error_code = ResponseError::OffsetOutOfRange.code();
                (pd, None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetch failed");
                pd.error_code = storage_error_code(&e);
                (pd, None)
            }
        }
    }
}

/// Counts what consumers read in the response being sent.
fn counted(pass: Pass) -> Answer {
    for r in pass.reads {
        let c = r.partition.counters();
        c.fetch_records.inc_by(r.records);
        c.fetch_bytes.inc_by(r.bytes);
    }
    pass.answer
}

/// [`fetch_once`], off the async thread if a log is busy.
async fn fetch_now(registry: &Arc<Registry>, req: &Arc<FetchRequest>) -> Pass {
    let (registry, req) = (registry.clone(), req.clone());
    read_logs(move |access| fetch_once(&registry, &req, access)).await
}

/// `FENCED_LEADER_EPOCH` / `UNKNOWN_LEADER_EPOCH` when the client's idea
/// of the leader epoch (Fetch v9+; -1 when it has none) is older / newer
/// than this leader's.
pub(super) fn epoch_mismatch(asked: i32, partition: &Partition) -> Option<ResponseError> {
    let mine = partition.leader_epoch();
    match asked {
        a if a < 0 || a == mine => None,
        a if a < mine => Some(ResponseError::FencedLeaderEpoch),
        _ => Some(ResponseError::UnknownLeaderEpoch),
    }
}

/// A follower's Fetch says how far its copy reaches (everything before
/// the offset it asks for): the leader's ISR and high watermark move on,
/// and consumers waiting for committed records look again.
async fn follower_positions(registry: &Arc<Registry>, req: &FetchRequest) {
    let Ok(follower) = u32::try_from(req.replica_id.0) else {
        return;
    };
    let now = std::time::Instant::now();
    let mut moved = Vec::new();
    for topic in &req.topics {
        for fp in &topic.partitions {
            let Ok(partition) = registry.leading(&topic.topic, fp.partition) else {
                continue;
            };
            if epoch_mismatch(fp.current_leader_epoch, &partition).is_some() {
                continue;
            }
            let Some(leadership) = partition.leadership() else {
                continue;
            };
            if let Some(hw) = leadership.on_follower_fetch(now, follower, fp.fetch_offset) {
                moved.push((partition, hw));
            }
        }
    }
    if moved.is_empty() {
        return;
    }
    let raise = move |access: LogAccess| {
        for (partition, hw) in &moved {
            let mut log = partition.read_log(access)?;
            raise_high_watermark(&mut log, *hw);
        }
        Some(())
    };
    read_logs(raise).await;
    registry.notify_appended();
}

/// Answers at once if `min_bytes` are there, else waits for appends until
/// they are or `max_wait_ms` (capped by the SPU's limit) has passed.
pub(super) async fn handle(ctx: &Context, req: FetchRequest) -> Answer {
    if req.replica_id.0 >= 0 {
        follower_positions(&ctx.registry, &req).await;
    }
    let req = Arc::new(req);
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0))
        .min(ctx.registry.config().max_fetch_wait);
    let deadline = tokio::time::Instant::now() + wait;
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let mut appends = ctx.registry.subscribe_appends();
    loop {
        appends.borrow_and_update();
        let pass = fetch_now(&ctx.registry, &req).await;
        let has_error = pass
            .answer
            .resp
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code.is_err());
        if pass.total >= min_bytes.max(1) || has_error || tokio::time::Instant::now() >= deadline {
            return counted(pass);
        }
        tokio::select! {
            changed = appends.changed() => {
                if changed.is_err() {
                    return counted(pass);
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                return counted(fetch_now(&ctx.registry, &req).await);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{name, s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 4..=12 {
            let mut p = FetchPartition::default()
                .with_partition(1)
                .with_fetch_offset(99)
                .with_partition_max_bytes(1 << 20);
            if v >= 9 {
                p.current_leader_epoch = 3;
            }
            if v >= 12 {
                p.last_fetched_epoch = 2;
            }
            if v >= 5 {
                p.log_start_offset = 7;
            }
            let mut req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(50 << 20)
                .with_isolation_level(1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(name("t"))
                    .with_partitions(vec![p])]);
            if v >= 7 {
                req.session_id = 5;
                req.session_epoch = 6;
                req.forgotten_topics_data = vec![ForgottenTopic::default()
                    .with_topic(name("old"))
                    .with_partitions(vec![0, 4])];
            }
            if v >= 11 {
                req.rack_id = s("rack-1");
            }
            if v >= 12 {
                req.cluster_id = Some(s("rill-local"));
            }
            same(req, v, decode);
        }
    }
}

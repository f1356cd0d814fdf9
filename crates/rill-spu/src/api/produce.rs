//! Produce (key 0): record sets appended by each partition's writer.

use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use rill_protocol::batch::{split_batches, BatchHeader};

use std::sync::Arc;

use bytes::Bytes;

use super::metadata::auto_create;
use super::reader::{Reader, Result};
use super::Context;
use crate::group::OFFSETS_TOPIC;
use crate::registry::Partition;
use crate::replication::leader::Leadership;
use crate::topic::TopicCompression;
use crate::writer::Queued;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<ProduceRequest> {
    r.set_flexible(v >= 9);
    let transactional_id = r.nullable_string()?.map(TransactionalId);
    let acks = r.i16()?;
    let timeout_ms = r.i32()?;
    let topic_data = r.array(|r| {
        let name = r.topic_name()?;
        let partition_data = r.array(|r| {
            let index = r.i32()?;
            let records = r.nullable_bytes()?;
            let mut p = PartitionProduceData::default()
                .with_index(index)
                .with_records(records);
            p.unknown_tagged_fields = r.no_known_tags()?;
            Ok(p)
        })?;
        let mut t = TopicProduceData::default()
            .with_name(name)
            .with_partition_data(partition_data);
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    let mut req = ProduceRequest::default()
        .with_transactional_id(transactional_id)
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topic_data);
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

/// A batch in another codec than the topic requires, described.
fn check_codec(records: &[u8], required: TopicCompression) -> Option<String> {
    let TopicCompression::Required(codec) = required else {
        return None;
    };
    for batch in split_batches(records) {
        // Malformed batches are refused by validation with a better code.
        let header = batch.ok().and_then(|b| BatchHeader::parse(b).ok())?;
        match header.compression() {
            Ok(c) if c == codec => {}
            Ok(c) => {
                return Some(format!(
                    "batch compressed with {} but the topic requires {}",
                    c.name(),
                    codec.name()
                ))
            }
            Err(_) => return None,
        }
    }
    None
}

/// One partition of a request, on its way through.
#[derive(Debug)]
enum Slot {
    /// Answered without reaching the writer.
    Refused(PartitionProduceResponse),
    /// To be written.
    Write(Arc<Partition>, Bytes),
    /// Handed to the writer; its answer is awaited in order.
    Queued,
}

fn refused(index: i32, code: ResponseError, message: String) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message)))
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
}

/// Why partition `index` of `topic` cannot be written here, for a client.
pub(super) fn not_here(code: ResponseError, topic: &str, index: i32) -> String {
    match code {
        ResponseError::LeaderNotAvailable => {
            format!("partition {index} of {topic:?} has no leader now (its SPU is down)")
        }
        ResponseError::NotLeaderOrFollower => {
            format!("this SPU does not lead partition {index} of {topic:?}")
        }
        _ => format!("topic {topic:?} has no partition {index}"),
    }
}

/// A request whose record sets are with their writers, answers to come.
/// A connection may admit the next request before this one's answers
/// arrive: each partition's writer takes record sets in the order they
/// were admitted, so the order of a pipeline is kept.
#[derive(Debug)]
pub(crate) struct Admitted {
    acks: i16,
    timeout_ms: i32,
    topics: Vec<(kafka_protocol::messages::TopicName, Vec<(i32, Slot)>)>,
    queued: Vec<(Option<Arc<Leadership>>, i64, Queued)>,
}

/// Checks every partition's record set and hands the good ones to their
/// partitions' writers at once (so partitions are written in parallel);
/// [`Admitted::finish`] waits for the answers.
pub(crate) async fn admit(ctx: &Context, req: ProduceRequest) -> Admitted {
    let acks_ok = (-1..=1).contains(&req.acks);
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let found = ctx
            .registry
            .topic(&topic.name)
            .or_else(|| auto_create(ctx, &topic.name));
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            let index = pd.index;
            let refuse = |code, message| Slot::Refused(refused(index, code, message));
            let pending = if topic.name.as_str() == OFFSETS_TOPIC {
                // Written only by the group coordinator.
                refuse(
                    ResponseError::InvalidTopicException,
                    format!("{OFFSETS_TOPIC} is internal: commit offsets with OffsetCommit"),
                )
            } else if !acks_ok {
                refuse(
                    ResponseError::InvalidRequiredAcks,
                    format!("acks {} is not 0, 1 or -1", req.acks),
                )
            } else {
                match (ctx.registry.leading(&topic.name, index), &found, pd.records) {
                    (Err(ResponseError::UnknownTopicOrPartition), None, _) => refuse(
                        ResponseError::UnknownTopicOrPartition,
                        format!("topic {:?} does not exist", topic.name.as_str()),
                    ),
                    (Err(code), _, _) => refuse(code, not_here(code, &topic.name, index)),
                    (Ok(_), _, None) => refuse(ResponseError::CorruptMessage, "no records".into()),
                    (Ok(p), Some(t), Some(records)) => {
                        match check_codec(&records, t.spec.config.compression) {
                            Some(message) => refuse(ResponseError::InvalidRecord, message),
                            None => match enough_replicas(&p, req.acks, &t.spec) {
                                Some((code, message)) => refuse(code, message),
                                None => Slot::Write(p, records),
                            },
                        }
                    }
                    (Ok(_), None, Some(_)) => refuse(
                        ResponseError::UnknownTopicOrPartition,
                        not_here(ResponseError::UnknownTopicOrPartition, &topic.name, index),
                    ),
                }
            };
            partitions.push((index, pending));
        }
        topics.push((topic.name, partitions));
    }
    // Every writer gets its record set before any answer is awaited, so
    // the partitions of one request are written in parallel.
    let mut queued = Vec::new();
    for (_, partitions) in &mut topics {
        for (_, slot) in partitions.iter_mut() {
            if !matches!(slot, Slot::Write(..)) {
                continue;
            }
            if let Slot::Write(partition, records) = std::mem::replace(slot, Slot::Queued) {
                // The leadership the batch was admitted under: acks=all
                // waits on it, and if it ends first (another SPU leads
                // now) the batch is not acknowledged.
                let admitted = partition.leadership();
                // Only acks=all needs the batch's end offset; other
                // requests skip the walk over the batch headers.
                let records_count = if req.acks == -1 && admitted.is_some() {
                    count_records(&records)
                } else {
                    0
                };
                queued.push((admitted, records_count, partition.submit(records).await));
            }
        }
    }
    Admitted {
        acks: req.acks,
        timeout_ms: req.timeout_ms,
        topics,
        queued,
    }
}

impl Admitted {
    /// Whether [`Self::finish`] has nothing to wait for: every record set
    /// was answered at admission (refused, or appended in place) and none
    /// waits on in-sync replicas.
    pub(crate) fn is_answered(&self) -> bool {
        self.queued.iter().all(|(admitted, _, q)| {
            matches!(q, Queued::Answered(_)) && (self.acks != -1 || admitted.is_none())
        })
    }

    /// Waits for every writer's answer (and, for acks=all, the in-sync
    /// replicas), and puts the response together.
    pub(crate) async fn finish(self, ctx: &Context) -> ProduceResponse {
        let Admitted {
            acks,
            timeout_ms,
            topics,
            queued,
        } = self;
        let mut answers = Vec::with_capacity(queued.len());
        let mut waits = Vec::new();
        let clustered = ctx.registry.in_cluster();
        for (admitted, records_count, q) in queued {
            let mut answer = q.answer().await;
            let stored = answer.error_code.is_ok() || answer.error_code == DUPLICATE;
            if stored && acks == -1 {
                match admitted {
                    Some(l) => waits.push((answers.len(), l, answer.base_offset + records_count)),
                    // Leadership moved between admission and now: not known
                    // to be on the in-sync replicas.
                    None if clustered => {
                        answer = refused(
                            0,
                            ResponseError::NotLeaderOrFollower,
                            "leadership moved while the batch was written".into(),
                        )
                    }
                    None => {}
                }
            }
            answers.push(answer);
        }
        if answers.iter().any(|a| a.error_code.is_ok()) {
            // Followers and consumers waiting in Fetch look now.
            ctx.registry.notify_appended();
        }
        // acks=all: each batch is answered once every in-sync replica has it.
        let deadline = tokio::time::Instant::now() + ack_all_wait(ctx, timeout_ms);
        let waited = (!waits.is_empty()).then(std::time::Instant::now);
        for (at, leadership, end) in waits {
            if let Err(code) = leadership.wait_committed(end, deadline).await {
                if let Some(a) = answers.get_mut(at) {
                    *a = PartitionProduceResponse::default()
                        .with_error_code(code.code())
                        .with_error_message(Some(StrBytes::from_string(not_committed(code))))
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1);
                }
            }
        }
        if let Some(started) = waited {
            let wait = crate::metrics::seconds(started.elapsed());
            ctx.registry.metrics().ack_all_wait.observe(wait);
        }
        let mut answers = answers.into_iter();
        let mut responses = Vec::with_capacity(topics.len());
        for (name, partitions) in topics {
            let partition_responses = partitions
                .into_iter()
                .map(|(index, slot)| match slot {
                    Slot::Refused(resp) => resp,
                    Slot::Write(..) | Slot::Queued => {
                        let resp = answers.next().unwrap_or_else(|| {
                            refused(index, ResponseError::UnknownServerError, "no answer".into())
                        });
                        resp.with_index(index)
                    }
                })
                .collect();
            responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(partition_responses),
            );
        }
        ProduceResponse::default().with_responses(responses)
    }
}

const DUPLICATE: i16 = ResponseError::DuplicateSequenceNumber.code();

/// Records in a record set (the offsets its batches take).
fn count_records(records: &[u8]) -> i64 {
    split_batches(records)
        .filter_map(|b| b.ok().and_then(|b| BatchHeader::parse(b).ok()))
        .map(|h| i64::from(h.records_count.unsigned_abs()))
        .sum()
}

/// How long `acks=all` waits for the in-sync replicas: the request's
/// timeout, within the SPU's own request timeout (so the answer goes out
/// before the connection gives up on the request).
fn ack_all_wait(ctx: &Context, timeout_ms: i32) -> std::time::Duration {
    let asked = std::time::Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
    asked.min(ctx.registry.config().request_timeout.mul_f64(0.9))
}

/// `NOT_ENOUGH_REPLICAS` before an `acks=all` append when the ISR is
/// smaller than the topic's `min.insync.replicas` (nothing is written).
fn enough_replicas(
    partition: &Partition,
    acks: i16,
    spec: &crate::topic::TopicSpec,
) -> Option<(ResponseError, String)> {
    if acks != -1 {
        return None;
    }
    let leadership = partition.leadership()?;
    leadership.check_enough_replicas().err().map(|code| {
        (
            code,
            format!(
                "{} in-sync replica(s) where min.insync.replicas is {}",
                leadership.isr().len(),
                spec.config.min_insync_replicas
            ),
        )
    })
}

/// Why an appended batch was not acknowledged with `acks=all`.
fn not_committed(code: ResponseError) -> String {
    match code {
        ResponseError::NotEnoughReplicasAfterAppend => {
            "written by the leader, but the ISR fell below min.insync.replicas before the \
             replicas had it"
                .into()
        }
        ResponseError::RequestTimedOut => {
            "written by the leader, but not by every in-sync replica within the timeout".into()
        }
        _ => "leadership changed before the in-sync replicas had the batch".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{name, s, same};
    use crate::api::reader::DecodeError;
    use bytes::Bytes;

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 3..=9 {
            let req = ProduceRequest::default()
                .with_transactional_id(None)
                .with_acks(-1)
                .with_timeout_ms(1500)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(name("t"))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(2)
                            .with_records(Some(Bytes::from_static(b"batch bytes"))),
                        PartitionProduceData::default()
                            .with_index(3)
                            .with_records(None),
                    ])]);
            same(req.clone(), v, decode);
            same(
                req.with_transactional_id(Some(TransactionalId(s("tx")))),
                v,
                decode,
            );
        }
    }

    #[test]
    fn records_longer_than_the_frame_are_an_error() {
        // Records claiming 2 GiB in a few bytes.
        let mut body = vec![
            0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0,
        ];
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        let mut r = Reader::new(Bytes::from(body));
        assert_eq!(
            decode(&mut r, 3),
            Err(DecodeError::Truncated {
                needed: i32::MAX as usize,
                left: 0
            })
        );
    }
}

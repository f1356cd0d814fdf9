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
use crate::topic::TopicCompression;

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

/// Checks every partition's record set, hands the good ones to their
/// partitions' writers at once (so partitions are written in parallel),
/// then waits for every answer.
pub(super) async fn handle(ctx: &Context, req: ProduceRequest) -> ProduceResponse {
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
                            None => Slot::Write(p, records),
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
                queued.push(partition.submit(records).await);
            }
        }
    }
    let mut answers = Vec::with_capacity(queued.len());
    for q in queued {
        answers.push(q.answer().await);
    }
    let mut answers = answers.into_iter();
    let mut appended = false;
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
                    appended |= resp.error_code.is_ok();
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
    if appended {
        ctx.registry.notify_appended();
    }
    ProduceResponse::default().with_responses(responses)
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

//! OffsetForLeaderEpoch (key 23): where a leader epoch ends in this
//! leader's log. A follower of a new leader asks it for its own latest
//! epoch and cuts its log back to the answer before fetching on (its tail
//! past that point was never committed); Kafka consumers ask it to check
//! their position after a leader change.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    BrokerId, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};

use super::read_logs;
use super::reader::{Reader, Result};
use super::Context;
use crate::registry::{LogAccess, Registry};

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<OffsetForLeaderEpochRequest> {
    r.set_flexible(v >= 4);
    let mut req = OffsetForLeaderEpochRequest::default();
    req.replica_id = BrokerId(if v >= 3 { r.i32()? } else { -2 });
    req.topics = r.array(|r| {
        let topic = r.topic_name()?;
        let partitions = r.array(|r| {
            let mut p = OffsetForLeaderPartition::default().with_partition(r.i32()?);
            p.current_leader_epoch = if v >= 2 { r.i32()? } else { -1 };
            p.leader_epoch = r.i32()?;
            p.unknown_tagged_fields = r.no_known_tags()?;
            Ok(p)
        })?;
        let mut t = OffsetForLeaderTopic::default()
            .with_topic(topic)
            .with_partitions(partitions);
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(
    ctx: &Context,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let registry = ctx.registry.clone();
    read_logs(move |access| answer(&registry, &req, access)).await
}

fn answer(
    registry: &Registry,
    req: &OffsetForLeaderEpochRequest,
    access: LogAccess,
) -> Option<OffsetForLeaderEpochResponse> {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let mut out = EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            let partition = match registry.leading(&t.topic, p.partition) {
                Ok(partition) => partition,
                Err(code) => {
                    partitions.push(out.with_error_code(code.code()));
                    continue;
                }
            };
            let mine = partition.leader_epoch();
            if p.current_leader_epoch >= 0 && p.current_leader_epoch != mine {
                let code = if p.current_leader_epoch < mine {
                    ResponseError::FencedLeaderEpoch
                } else {
                    ResponseError::UnknownLeaderEpoch
                };
                partitions.push(out.with_error_code(code.code()));
                continue;
            }
            let log = partition.read_log(access)?;
            if let Some(e) = log.end_offset_for_epoch(p.leader_epoch) {
                out.leader_epoch = e.epoch;
                out.end_offset = e.start_offset as i64;
            }
            partitions.push(out);
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions),
        );
    }
    Some(OffsetForLeaderEpochResponse::default().with_topics(topics))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{name, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 2..=4 {
            let mut req = OffsetForLeaderEpochRequest::default().with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(name("t"))
                    .with_partitions(vec![OffsetForLeaderPartition::default()
                        .with_partition(3)
                        .with_current_leader_epoch(7)
                        .with_leader_epoch(5)]),
            ]);
            req.replica_id = BrokerId(if v >= 3 { 2 } else { -2 });
            same(req, v, decode);
        }
    }
}

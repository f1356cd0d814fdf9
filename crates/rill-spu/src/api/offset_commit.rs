//! OffsetCommit (key 8, v2-8): a group's consumed positions, appended to
//! the offsets log before the answer (so they survive a crash of the SPU).

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetCommitResponse};

use super::reader::{Reader, Result};
use super::Context;
use crate::group::Commit;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<OffsetCommitRequest> {
    r.set_flexible(v >= 8);
    let mut req = OffsetCommitRequest::default()
        .with_group_id(GroupId(r.string()?))
        .with_generation_id_or_member_epoch(r.i32()?)
        .with_member_id(r.string()?);
    if v >= 7 {
        req.group_instance_id = r.nullable_string()?;
    }
    if v <= 4 {
        req.retention_time_ms = r.i64()?;
    }
    req.topics = r.array(|r| {
        let name = r.topic_name()?;
        let partitions = r.array(|r| {
            let mut p = OffsetCommitRequestPartition::default()
                .with_partition_index(r.i32()?)
                .with_committed_offset(r.i64()?);
            if v >= 6 {
                p.committed_leader_epoch = r.i32()?;
            }
            p.committed_metadata = r.nullable_string()?;
            p.unknown_tagged_fields = r.no_known_tags()?;
            Ok(p)
        })?;
        let mut t = OffsetCommitRequestTopic::default()
            .with_name(name)
            .with_partitions(partitions);
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(ctx: &Context, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let commits: Vec<Commit> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| Commit {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let mut errors = ctx
        .groups
        .commit(
            ctx,
            req.group_id.as_str(),
            req.member_id.as_str(),
            req.generation_id_or_member_epoch,
            commits,
        )
        .await
        .into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(errors.next().flatten().map_or(0, |e| e.code()))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{name, s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 2..=8 {
            let mut p = OffsetCommitRequestPartition::default()
                .with_partition_index(2)
                .with_committed_offset(99)
                .with_committed_metadata(None);
            if v >= 6 {
                p.committed_leader_epoch = 4;
            }
            let mut req = OffsetCommitRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id_or_member_epoch(3)
                .with_member_id(s("m"))
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![
                        p,
                        OffsetCommitRequestPartition::default().with_committed_offset(5),
                    ])]);
            if v >= 7 {
                req.group_instance_id = Some(s("i"));
            }
            if v <= 4 {
                req.retention_time_ms = 1000;
            }
            same(req, v, decode);
        }
    }
}

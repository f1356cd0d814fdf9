//! OffsetFetch (key 9, v1-7): a group's committed offsets (-1 where
//! nothing is committed); from v2, no topics means every committed one.

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::reader::{Reader, Result};
use super::Context;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<OffsetFetchRequest> {
    r.set_flexible(v >= 6);
    let mut req = OffsetFetchRequest::default().with_group_id(GroupId(r.string()?));
    let topic = |r: &mut Reader| {
        let mut t = OffsetFetchRequestTopic::default()
            .with_name(r.topic_name()?)
            .with_partition_indexes(r.array(|r| r.i32())?);
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    };
    req.topics = if v >= 2 {
        r.nullable_array(topic)?
    } else {
        Some(r.array(topic)?)
    };
    if v >= 7 {
        req.require_stable = r.bool()?;
    }
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(ctx: &Context, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let asked = req.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    match ctx.groups.fetch(ctx, req.group_id.as_str(), asked).await {
        Err(e) => OffsetFetchResponse::default().with_error_code(e.code()),
        Ok(found) => OffsetFetchResponse::default().with_topics(
            found
                .into_iter()
                .map(|(t, ps)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t)))
                        .with_partitions(
                            ps.into_iter()
                                .map(|(p, c)| {
                                    let out = OffsetFetchResponsePartition::default()
                                        .with_partition_index(p);
                                    match c {
                                        Some(c) => out
                                            .with_committed_offset(c.offset)
                                            .with_committed_leader_epoch(c.leader_epoch)
                                            .with_metadata(Some(StrBytes::from_string(c.metadata))),
                                        None => out
                                            .with_committed_offset(-1)
                                            .with_committed_leader_epoch(-1)
                                            .with_metadata(Some(StrBytes::default())),
                                    }
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{name, s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 1..=7 {
            let mut req = OffsetFetchRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(name("t"))
                    .with_partition_indexes(vec![0, 1, 2])]));
            if v >= 7 {
                req.require_stable = true;
            }
            same(req.clone(), v, decode);
            if v >= 2 {
                same(req.with_topics(None), v, decode);
            }
        }
    }
}

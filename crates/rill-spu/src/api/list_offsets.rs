//! ListOffsets (key 2): earliest, latest, by timestamp, max timestamp.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse};

use super::reader::{Reader, Result};
use super::Context;
use super::{read_logs, storage_error_code};
use crate::registry::{LogAccess, Registry};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// Kafka's debugging replica id: any replica of a partition answers it,
/// with its own log's offsets (how `rill partition list` shows each
/// replica's log end and lag). Ordinary clients (-1) are sent to the leader.
const DEBUGGING_REPLICA: i32 = -2;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<ListOffsetsRequest> {
    r.set_flexible(v >= 6);
    let mut req = ListOffsetsRequest::default().with_replica_id(BrokerId(r.i32()?));
    if v >= 2 {
        req.isolation_level = r.i8()?;
    }
    req.topics = r.array(|r| {
        let name = r.topic_name()?;
        let partitions = r.array(|r| {
            let mut p = ListOffsetsPartition::default().with_partition_index(r.i32()?);
            p.current_leader_epoch = if v >= 4 { r.i32()? } else { -1 };
            p.timestamp = r.i64()?;
            p.unknown_tagged_fields = r.no_known_tags()?;
            Ok(p)
        })?;
        let mut t = ListOffsetsTopic::default()
            .with_name(name)
            .with_partitions(partitions);
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(
    ctx: &Context,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let registry = ctx.registry.clone();
    read_logs(move |access| lookup(&registry, &req, version, access)).await
}

/// Every partition's answer; `None` when a log was busy and `access` says
/// not to wait.
fn lookup(
    registry: &Registry,
    req: &ListOffsetsRequest,
    version: i16,
    access: LogAccess,
) -> Option<ListOffsetsResponse> {
    let mut busy = false;
    let topics = req
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|lp| {
                    let mut out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(lp.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(if version >= 4 { 0 } else { -1 });
                    let found = if req.replica_id.0 == DEBUGGING_REPLICA {
                        registry.hosting(&topic.name, lp.partition_index)
                    } else {
                        registry.leading(&topic.name, lp.partition_index)
                    };
                    let partition = match found {
                        Ok(p) => p,
                        Err(code) => {
                            out.error_code = code.code();
                            return out;
                        }
                    };
                    if version >= 4 {
                        out.leader_epoch = partition.leader_epoch().max(0);
                    }
                    let Some(log) = partition.read_log(access) else {
                        busy = true;
                        return out;
                    };
                    match lp.timestamp {
                        EARLIEST => out.offset = log.log_start_offset() as i64,
                        // Clients see the log up to the high watermark at
                        // either isolation (no transactions: the last stable
                        // offset is the high watermark); a replica or the
                        // debugging id, the end of this copy's log.
                        LATEST => {
                            out.offset =
                                if req.replica_id.0 >= 0 || req.replica_id.0 == DEBUGGING_REPLICA {
                                    log.log_end_offset() as i64
                                } else {
                                    log.high_watermark() as i64
                                }
                        }
                        MAX_TIMESTAMP => match log.max_timestamp_offset() {
                            Ok(Some(found)) => {
                                out.offset = found.offset as i64;
                                out.timestamp = found.timestamp;
                            }
                            Ok(None) => {}
                            Err(e) => out.error_code = storage_error_code(&e),
                        },
                        ts if ts >= 0 => match log.offset_for_timestamp(ts) {
                            Ok(Some(found)) => {
                                out.offset = found.offset as i64;
                                out.timestamp = found.timestamp;
                            }
                            Ok(None) => {}
                            Err(e) => out.error_code = storage_error_code(&e),
                        },
                        _ => out.error_code = ResponseError::InvalidRequest.code(),
                    }
                    out
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    (!busy).then(|| ListOffsetsResponse::default().with_topics(topics))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{name, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 1..=7 {
            let mut p = ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-2);
            if v >= 4 {
                p.current_leader_epoch = 1;
            }
            let mut req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![p])]);
            if v >= 2 {
                req.isolation_level = 1;
            }
            same(req, v, decode);
        }
    }
}

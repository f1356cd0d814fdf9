use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::produce::storage_error_code;
use super::Context;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const READ_COMMITTED: i8 = 1;

pub(super) fn handle(ctx: &Context, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let found = ctx.registry.topic(&topic.name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|lp| {
                    let mut out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(lp.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(if version >= 4 { 0 } else { -1 });
                    let partition = found.as_ref().and_then(|t| {
                        usize::try_from(lp.partition_index)
                            .ok()
                            .and_then(|i| t.partitions.get(i))
                    });
                    let Some(partition) = partition else {
                        out.error_code = ResponseError::UnknownTopicOrPartition.code();
                        return out;
                    };
                    let log = partition.log();
                    match lp.timestamp {
                        EARLIEST => out.offset = log.log_start_offset() as i64,
                        LATEST => {
                            out.offset = if req.isolation_level == READ_COMMITTED {
                                log.high_watermark() as i64
                            } else {
                                log.log_end_offset() as i64
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
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

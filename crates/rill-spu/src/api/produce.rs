use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use rill_protocol::batch::{split_batches, BatchHeader};
use rill_protocol::BatchError;
use rill_storage::StorageError;

use super::metadata::auto_create;
use super::Context;
use crate::idempotence::Verdict;
use crate::registry::Partition;
use crate::topic::TopicCompression;

/// The Kafka error code for a refused append, and what to tell the client.
pub(super) fn storage_error_code(e: &StorageError) -> i16 {
    let error = match e {
        StorageError::InvalidBatch(BatchError::TooLarge { .. }) => ResponseError::MessageTooLarge,
        StorageError::InvalidBatch(_) | StorageError::EmptyAppend => ResponseError::CorruptMessage,
        StorageError::Config(_) => ResponseError::InvalidRequest,
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        _ => ResponseError::KafkaStorageError,
    };
    error.code()
}

fn check_codec(records: &[u8], required: TopicCompression) -> Result<(), String> {
    let TopicCompression::Required(codec) = required else {
        return Ok(());
    };
    for batch in split_batches(records) {
        let Ok(header) = batch
            .map_err(|e| e.to_string())
            .and_then(|b| BatchHeader::parse(b).map_err(|e| e.to_string()))
        else {
            // Malformed batches are refused by validation with a better code.
            return Ok(());
        };
        match header.compression() {
            Ok(c) if c == codec => {}
            Ok(c) => {
                return Err(format!(
                    "batch compressed with {} but the topic requires {}",
                    c.name(),
                    codec.name()
                ))
            }
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

fn append(
    partition: &Partition,
    records: &[u8],
    required: TopicCompression,
) -> PartitionProduceResponse {
    let mut resp = PartitionProduceResponse::default()
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1);
    if let Err(message) = check_codec(records, required) {
        return resp
            .with_error_code(ResponseError::InvalidRecord.code())
            .with_error_message(Some(StrBytes::from_string(message)));
    }
    // Idempotent producers: a retried batch is answered with its original
    // offset, a gap or a stale epoch is refused. (Clients send one batch per
    // partition per request; each batch is checked against what is stored.)
    let headers: Vec<BatchHeader> = split_batches(records)
        .filter_map(|b| b.ok().and_then(|b| BatchHeader::parse(b).ok()))
        .collect();
    let mut producers = partition.producers();
    for h in &headers {
        match producers.check(h) {
            Verdict::Append => {}
            Verdict::Duplicate(base_offset) => {
                resp.error_code = ResponseError::DuplicateSequenceNumber.code();
                resp.base_offset = base_offset;
                resp.log_start_offset = partition.log().log_start_offset() as i64;
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
    let mut log = partition.log();
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

pub(super) fn handle(ctx: &Context, req: ProduceRequest) -> ProduceResponse {
    let acks_ok = (-1..=1).contains(&req.acks);
    let mut appended = false;
    let responses = req
        .topic_data
        .into_iter()
        .map(|topic| {
            let found = ctx
                .registry
                .topic(&topic.name)
                .or_else(|| auto_create(ctx, &topic.name));
            let partition_responses = topic
                .partition_data
                .into_iter()
                .map(|pd| {
                    let index = pd.index;
                    let error = |code: ResponseError, msg: String| {
                        PartitionProduceResponse::default()
                            .with_index(index)
                            .with_error_code(code.code())
                            .with_error_message(Some(StrBytes::from_string(msg)))
                            .with_base_offset(-1)
                            .with_log_append_time_ms(-1)
                            .with_log_start_offset(-1)
                    };
                    if !acks_ok {
                        return error(
                            ResponseError::InvalidRequiredAcks,
                            format!("acks {} is not 0, 1 or -1", req.acks),
                        );
                    }
                    let Some(t) = &found else {
                        return error(
                            ResponseError::UnknownTopicOrPartition,
                            format!("topic {:?} does not exist", topic.name.as_str()),
                        );
                    };
                    let Some(p) = usize::try_from(index)
                        .ok()
                        .and_then(|i| t.partitions.get(i))
                    else {
                        return error(
                            ResponseError::UnknownTopicOrPartition,
                            format!("topic {:?} has no partition {index}", topic.name.as_str()),
                        );
                    };
                    let Some(records) = pd.records else {
                        return error(ResponseError::CorruptMessage, "no records".into());
                    };
                    let resp = append(p, &records, t.spec.config.compression).with_index(index);
                    appended |= resp.error_code.is_ok();
                    resp
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partition_responses)
        })
        .collect();
    if appended {
        ctx.registry.notify_appended();
    }
    ProduceResponse::default().with_responses(responses)
}

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use rill_storage::StorageError;

use super::produce::storage_error_code;
use super::Context;

/// Kafka's isolation level byte for READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

fn fetch_once(ctx: &Context, req: &FetchRequest) -> (FetchResponse, usize) {
    let cap = ctx.registry.config().max_fetch_bytes;
    let mut budget = usize::try_from(req.max_bytes)
        .ok()
        .filter(|&n| n > 0)
        .map_or(cap, |n| n.min(cap));
    let mut total = 0usize;
    let responses = req
        .topics
        .iter()
        .map(|topic| {
            let found = ctx.registry.topic(&topic.topic);
            let partitions = topic
                .partitions
                .iter()
                .map(|fp| {
                    let mut pd = PartitionData::default()
                        .with_partition_index(fp.partition)
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1)
                        .with_aborted_transactions(Some(Vec::new()))
                        .with_preferred_read_replica(BrokerId(-1))
                        .with_records(Some(Bytes::new()));
                    let partition = found.as_ref().and_then(|t| {
                        usize::try_from(fp.partition)
                            .ok()
                            .and_then(|i| t.partitions.get(i))
                    });
                    let Some(partition) = partition else {
                        pd.error_code = ResponseError::UnknownTopicOrPartition.code();
                        return pd;
                    };
                    let log = partition.log();
                    pd.high_watermark = log.high_watermark() as i64;
                    pd.last_stable_offset = log.high_watermark() as i64;
                    pd.log_start_offset = log.log_start_offset() as i64;
                    let Ok(offset) = u64::try_from(fp.fetch_offset) else {
                        pd.error_code = ResponseError::OffsetOutOfRange.code();
                        return pd;
                    };
                    // Once the response is full, later partitions get
                    // nothing; the first batch is always sent whole.
                    if budget == 0 {
                        return pd;
                    }
                    let limit = usize::try_from(fp.partition_max_bytes)
                        .unwrap_or(0)
                        .min(budget);
                    let read = if req.isolation_level == READ_COMMITTED {
                        log.read_committed(offset, limit)
                    } else {
                        log.read(offset, limit)
                    };
                    match read {
                        Ok(r) => {
                            budget = budget.saturating_sub(r.batches.len());
                            total += r.batches.len();
                            pd.records = Some(Bytes::from(r.batches));
                        }
                        Err(e @ StorageError::OffsetOutOfRange { .. }) => {
                            tracing::debug!(error = %e, "fetch out of range");
                            pd.error_code = ResponseError::OffsetOutOfRange.code();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "fetch failed");
                            pd.error_code = storage_error_code(&e);
                        }
                    }
                    pd
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    (FetchResponse::default().with_responses(responses), total)
}

/// Answers at once if `min_bytes` are there, else waits for appends until
/// they are or `max_wait_ms` (capped by the SPU's limit) has passed.
pub(super) async fn handle(ctx: &Context, req: FetchRequest) -> FetchResponse {
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0))
        .min(ctx.registry.config().max_fetch_wait);
    let deadline = tokio::time::Instant::now() + wait;
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let mut appends = ctx.registry.subscribe_appends();
    loop {
        appends.borrow_and_update();
        let (resp, total) = fetch_once(ctx, &req);
        let has_error = resp
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code.is_err());
        if total >= min_bytes.max(1) || has_error || tokio::time::Instant::now() >= deadline {
            return resp;
        }
        tokio::select! {
            changed = appends.changed() => {
                if changed.is_err() {
                    return resp;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                return fetch_once(ctx, &req).0;
            }
        }
    }
}

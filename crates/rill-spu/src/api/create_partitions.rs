//! CreatePartitions (key 37): a topic grown to a new total of partitions.
//!
//! On a single SPU the new partitions' logs are opened (off the async
//! threads) and the topic's metadata file records the count; in a cluster
//! the topic's entry in the store is updated with CAS and the controller
//! places the new partitions. Explicit assignments are refused (as in
//! CreateTopics in a cluster): the SPU places partitions itself.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{BrokerId, CreatePartitionsRequest, CreatePartitionsResponse};

use super::describe_configs::msg;
use super::reader::{Reader, Result};
use super::Context;
use crate::registry::TopicError;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<CreatePartitionsRequest> {
    r.set_flexible(v >= 2);
    let topics = r.array(|r| {
        let mut t = CreatePartitionsTopic::default()
            .with_name(r.topic_name()?)
            .with_count(r.i32()?);
        t.assignments = r.nullable_array(|r| {
            let mut a = CreatePartitionsAssignment::default()
                .with_broker_ids(r.array(|r| r.i32().map(BrokerId))?);
            a.unknown_tagged_fields = r.no_known_tags()?;
            Ok(a)
        })?;
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    let mut req = CreatePartitionsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(r.i32()?)
        .with_validate_only(r.bool()?);
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(
    ctx: &Context,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let wait = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
    let mut results = Vec::with_capacity(req.topics.len());
    let mut seen = std::collections::HashSet::new();
    for t in req.topics {
        let name = t.name.as_str().to_owned();
        let outcome = if !seen.insert(name.clone()) {
            Err(TopicError::new(
                ResponseError::InvalidRequest,
                format!("topic {name:?} is named more than once in the request"),
            ))
        } else {
            grow(ctx, &name, &t, req.validate_only, wait).await
        };
        let result = CreatePartitionsTopicResult::default().with_name(t.name);
        results.push(match outcome {
            Ok(()) => result,
            Err(e) => {
                tracing::info!(topic = %name, code = e.code.code(), reason = %e.message, "create partitions refused");
                result
                    .with_error_code(e.code.code())
                    .with_error_message(msg(e.message))
            }
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// Grows one topic (or checks it, `validate_only`).
async fn grow(
    ctx: &Context,
    name: &str,
    t: &CreatePartitionsTopic,
    validate_only: bool,
    wait: Duration,
) -> std::result::Result<(), TopicError> {
    if t.assignments.is_some() {
        return Err(TopicError::new(
            ResponseError::InvalidReplicaAssignment,
            "explicit assignments of new partitions are not supported: give only the count",
        ));
    }
    let count = t.count;
    if let Some(link) = &ctx.cluster {
        return link.add_partitions(name, count, validate_only, wait).await;
    }
    let registry = ctx.registry.clone();
    let owned = name.to_owned();
    tokio::task::spawn_blocking(move || registry.add_partitions(&owned, count, validate_only))
        .await
        .unwrap_or_else(|e| {
            Err(TopicError::new(
                ResponseError::KafkaStorageError,
                format!("adding partitions failed: {e}"),
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{name, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=3 {
            let req = CreatePartitionsRequest::default()
                .with_timeout_ms(30_000)
                .with_validate_only(true)
                .with_topics(vec![
                    CreatePartitionsTopic::default()
                        .with_name(name("grown"))
                        .with_count(6)
                        .with_assignments(None),
                    CreatePartitionsTopic::default()
                        .with_name(name("placed"))
                        .with_count(2)
                        .with_assignments(Some(vec![CreatePartitionsAssignment::default()
                            .with_broker_ids(vec![BrokerId(0), BrokerId(2)])])),
                ]);
            same(req, v, decode);
        }
    }
}

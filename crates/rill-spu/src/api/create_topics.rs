//! CreateTopics (key 19): topics made by an administrator.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{BrokerId, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::describe_configs::{described, msg, SOURCE_DEFAULT, SOURCE_TOPIC};
use super::reader::{Reader, Result};
use super::Context;
use crate::registry::TopicError;
use crate::topic::{TopicConfig, TopicSpec};
use std::time::Duration;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<CreateTopicsRequest> {
    r.set_flexible(v >= 5);
    let topics = r.array(|r| {
        let mut t = CreatableTopic::default()
            .with_name(r.topic_name()?)
            .with_num_partitions(r.i32()?)
            .with_replication_factor(r.i16()?);
        t.assignments = r.array(|r| {
            let mut a = CreatableReplicaAssignment::default().with_partition_index(r.i32()?);
            a.broker_ids = r.array(|r| r.i32().map(BrokerId))?;
            a.unknown_tagged_fields = r.no_known_tags()?;
            Ok(a)
        })?;
        t.configs = r.array(|r| {
            let mut c = CreatableTopicConfig::default()
                .with_name(r.string()?)
                .with_value(r.nullable_string()?);
            c.unknown_tagged_fields = r.no_known_tags()?;
            Ok(c)
        })?;
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    let mut req = CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(r.i32()?)
        .with_validate_only(r.bool()?);
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(ctx: &Context, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let wait = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        topics.push(create_one(ctx, t, req.validate_only, wait).await);
    }
    CreateTopicsResponse::default().with_topics(topics)
}

/// Creates one topic (or checks it, `validate_only`): in local files on a
/// single SPU (off the async threads), through the store in a cluster.
async fn create_one(
    ctx: &Context,
    t: CreatableTopic,
    validate_only: bool,
    wait: Duration,
) -> CreatableTopicResult {
    let registry = &ctx.registry;
    let node = registry.config().node_id;
    {
        {
            let name = t.name.as_str().to_owned();
            let result = CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_num_partitions(-1)
                .with_replication_factor(-1);
            let fail = |code: i16, m: String| {
                tracing::info!(topic = %name, code, reason = %m, "create topic refused");
                result
                    .clone()
                    .with_error_code(code)
                    .with_error_message(msg(m))
            };
            let (partitions, replication_factor) = if t.assignments.is_empty() {
                let p = if t.num_partitions == -1 {
                    registry.config().default_partitions
                } else {
                    t.num_partitions
                };
                let r = if t.replication_factor == -1 {
                    1
                } else {
                    t.replication_factor
                };
                (p, r)
            } else {
                if t.num_partitions != -1 || t.replication_factor != -1 {
                    return fail(
                        ResponseError::InvalidRequest.code(),
                        "give either assignments or partitions and replication factor".into(),
                    );
                }
                let mut sorted: Vec<i32> =
                    t.assignments.iter().map(|a| a.partition_index).collect();
                sorted.sort_unstable();
                let dense = sorted.iter().enumerate().all(|(i, p)| *p == i as i32);
                let on_this_spu = t
                    .assignments
                    .iter()
                    .all(|a| a.broker_ids.iter().all(|b| b.0 == node));
                if ctx.cluster.is_some() {
                    return fail(
                        ResponseError::InvalidReplicaAssignment.code(),
                        "explicit replica assignments are not supported in a cluster yet: give partitions and a replication factor".into(),
                    );
                }
                if !dense || !on_this_spu {
                    return fail(
                        ResponseError::InvalidReplicaAssignment.code(),
                        format!("assignments must name partitions 0..n on SPU {node}"),
                    );
                }
                let r = t
                    .assignments
                    .first()
                    .map_or(1, |a| a.broker_ids.len() as i16);
                (t.assignments.len() as i32, r)
            };
            let mut config = TopicConfig::default();
            for c in &t.configs {
                if let Some(value) = &c.value {
                    if let Err(m) = config.set(c.name.as_str(), value.as_str()) {
                        return fail(ResponseError::InvalidConfig.code(), m);
                    }
                }
            }
            let spec = TopicSpec {
                name: name.clone(),
                partitions,
                replication_factor,
                config,
            };
            let outcome = if validate_only {
                registry.validate(&spec).map(|()| None)
            } else if let Some(link) = &ctx.cluster {
                match registry.validate(&spec) {
                    Ok(()) => link.create_topic(&spec, wait).await.map(Some),
                    Err(e) => Err(e),
                }
            } else {
                let registry = registry.clone();
                let creating = spec.clone();
                tokio::task::spawn_blocking(move || registry.create(creating).map(|t| Some(t.id)))
                    .await
                    .unwrap_or_else(|e| {
                        Err(TopicError::new(
                            ResponseError::KafkaStorageError,
                            format!("creating the topic failed: {e}"),
                        ))
                    })
            };
            match outcome {
                Err(e) => fail(e.code.code(), e.message),
                Ok(id) => result
                    .with_topic_id(id.unwrap_or_default())
                    .with_num_partitions(spec.partitions)
                    .with_replication_factor(spec.replication_factor)
                    .with_configs(Some(
                        described(&spec.config)
                            .into_iter()
                            .map(|(k, v, is_default)| {
                                CreatableTopicConfigs::default()
                                    .with_name(StrBytes::from_static_str(k))
                                    .with_value(msg(v))
                                    .with_config_source(if is_default {
                                        SOURCE_DEFAULT
                                    } else {
                                        SOURCE_TOPIC
                                    })
                            })
                            .collect(),
                    )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{name, s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 2..=7 {
            let req = CreateTopicsRequest::default()
                .with_timeout_ms(30_000)
                .with_validate_only(true)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(name("new"))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_assignments(vec![CreatableReplicaAssignment::default()
                        .with_partition_index(0)
                        .with_broker_ids(vec![BrokerId(0)])])
                    .with_configs(vec![
                        CreatableTopicConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("1000"))),
                        CreatableTopicConfig::default()
                            .with_name(s("segment.bytes"))
                            .with_value(None),
                    ])]);
            same(req, v, decode);
        }
    }
}

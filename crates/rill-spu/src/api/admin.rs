use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::Context;
use crate::topic::{TopicConfig, TopicSpec};

/// DescribeConfigs resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;
/// Config types (DescribeConfigs v3+).
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

fn msg(s: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.into()))
}

fn config_type(key: &str) -> i8 {
    match key {
        "retention.ms" | "retention.bytes" => TYPE_LONG,
        "segment.bytes" | "max.message.bytes" => TYPE_INT,
        "cleanup.policy" => TYPE_LIST,
        _ => TYPE_STRING,
    }
}

/// `(key, value, is_default)` for every setting of a topic.
fn described(config: &TopicConfig) -> Vec<(&'static str, String, bool)> {
    let defaults = TopicConfig::default().pairs();
    config
        .pairs()
        .into_iter()
        .map(|(k, v)| {
            let is_default = defaults.iter().any(|(dk, dv)| *dk == k && *dv == v);
            (k, v, is_default)
        })
        .collect()
}

pub(super) fn create_topics(ctx: &Context, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let registry = &ctx.registry;
    let node = registry.config().node_id;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
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
            let outcome = if req.validate_only {
                registry.validate(&spec).map(|()| None)
            } else {
                registry.create(spec.clone()).map(|t| Some(t.id))
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
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

pub(super) fn delete_topics(ctx: &Context, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    // v0-5 name topics in topic_names; v6 in topics, by name or by id.
    let mut wanted: Vec<(Option<TopicName>, uuid::Uuid)> = req
        .topic_names
        .into_iter()
        .map(|n| (Some(n), uuid::Uuid::nil()))
        .collect();
    wanted.extend(req.topics.into_iter().map(|t| (t.name, t.topic_id)));
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let name = name.or_else(|| {
                ctx.registry
                    .topics()
                    .iter()
                    .find(|t| t.id == id && !id.is_nil())
                    .map(|t| TopicName(StrBytes::from_string(t.spec.name.clone())))
            });
            let result = DeletableTopicResult::default()
                .with_name(name.clone())
                .with_topic_id(id);
            let Some(name) = name else {
                return result
                    .with_error_code(ResponseError::UnknownTopicId.code())
                    .with_error_message(msg(format!("no topic has id {id}")));
            };
            let topic_id = ctx.registry.topic(&name).map(|t| t.id).unwrap_or(id);
            match ctx.registry.delete(&name) {
                Ok(()) => result.with_topic_id(topic_id),
                Err(e) => result
                    .with_error_code(e.code.code())
                    .with_error_message(msg(e.message)),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

pub(super) fn describe_configs(
    ctx: &Context,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match r.resource_type {
                RESOURCE_TOPIC => {
                    let Some(topic) = ctx.registry.topic(r.resource_name.as_str()) else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(msg(format!(
                                "topic {:?} does not exist",
                                r.resource_name.as_str()
                            )));
                    };
                    let keys = r.configuration_keys;
                    let configs = described(&topic.spec.config)
                        .into_iter()
                        .filter(|(k, _, _)| {
                            keys.as_ref()
                                .is_none_or(|ks| ks.iter().any(|x| x.as_str() == *k))
                        })
                        .map(|(k, v, is_default)| {
                            DescribeConfigsResourceResult::default()
                                .with_name(StrBytes::from_static_str(k))
                                .with_value(msg(v))
                                .with_config_source(if is_default {
                                    SOURCE_DEFAULT
                                } else {
                                    SOURCE_TOPIC
                                })
                                .with_config_type(config_type(k))
                        })
                        .collect();
                    result.with_configs(configs)
                }
                // The SPU has no dynamic broker configs to show.
                RESOURCE_BROKER => result,
                other => result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(msg(format!("resource type {other} is not supported"))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

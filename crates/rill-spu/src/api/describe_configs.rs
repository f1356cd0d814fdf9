//! DescribeConfigs (key 32): a topic's settings, as Kafka names them.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::reader::{Reader, Result};
use super::Context;
use crate::topic::TopicConfig;

/// DescribeConfigs resource types.
pub(super) const RESOURCE_TOPIC: i8 = 2;
pub(super) const RESOURCE_BROKER: i8 = 4;
/// Config sources.
pub(super) const SOURCE_TOPIC: i8 = 1;
pub(super) const SOURCE_DEFAULT: i8 = 5;
/// Config types (DescribeConfigs v3+).
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

pub(super) fn msg(s: impl Into<String>) -> Option<StrBytes> {
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
pub(super) fn described(config: &TopicConfig) -> Vec<(&'static str, String, bool)> {
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

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<DescribeConfigsRequest> {
    r.set_flexible(v >= 4);
    let resources = r.array(|r| {
        let mut res = DescribeConfigsResource::default()
            .with_resource_type(r.i8()?)
            .with_resource_name(r.string()?)
            .with_configuration_keys(r.nullable_array(|r| r.string())?);
        res.unknown_tagged_fields = r.no_known_tags()?;
        Ok(res)
    })?;
    let mut req = DescribeConfigsRequest::default()
        .with_resources(resources)
        .with_include_synonyms(r.bool()?);
    if v >= 3 {
        req.include_documentation = r.bool()?;
    }
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) fn handle(ctx: &Context, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match r.resource_type {
                RESOURCE_TOPIC => {
                    // In a cluster, as the store has it (this SPU may hold
                    // none of the topic's partitions, and a change is there
                    // first); on a single SPU, as the registry has it.
                    let name = r.resource_name.as_str();
                    let config = match &ctx.cluster {
                        Some(link) => link.topic_spec(name).map(|s| s.config),
                        None => ctx.registry.topic(name).map(|t| t.spec.config.clone()),
                    };
                    let Some(config) = config else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(msg(format!(
                                "topic {:?} does not exist",
                                r.resource_name.as_str()
                            )));
                    };
                    let keys = r.configuration_keys;
                    let configs = described(&config)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 1..=4 {
            let mut req = DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s("t"))
                        .with_configuration_keys(None),
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s("u"))
                        .with_configuration_keys(Some(vec![s("retention.ms")])),
                ]);
            if v >= 3 {
                req.include_documentation = true;
            }
            same(req, v, decode);
        }
    }
}

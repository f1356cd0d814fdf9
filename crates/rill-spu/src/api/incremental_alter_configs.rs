//! IncrementalAlterConfigs (key 44): some of a topic's settings set or
//! reset to their defaults, the rest left as they are.
//!
//! On a single SPU the topic's metadata file records the new config and
//! the open partition logs take it (off the async threads); in a cluster
//! the topic's entry in the store is updated with CAS and every SPU holding
//! the topic reconfigures its logs. Every setting Rill supports can change
//! at run time: `retention.ms` and `retention.bytes` at the next retention
//! pass, `max.message.bytes` and `compression.type` at the next produce,
//! `segment.bytes` at the next segment roll. A setting Rill does not
//! support, or a value it cannot take (`cleanup.policy=compact`), is
//! refused with `INVALID_CONFIG` and a message saying why.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::describe_configs::{msg, RESOURCE_BROKER, RESOURCE_TOPIC};
use super::reader::{Reader, Result};
use super::Context;
use crate::registry::TopicError;
use crate::topic::{TopicConfig, TOPIC_CONFIG_KEYS};

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<IncrementalAlterConfigsRequest> {
    r.set_flexible(v >= 1);
    let resources = r.array(|r| {
        let mut res = AlterConfigsResource::default()
            .with_resource_type(r.i8()?)
            .with_resource_name(r.string()?);
        res.configs = r.array(|r| {
            let mut c = AlterableConfig::default()
                .with_name(r.string()?)
                .with_config_operation(r.i8()?)
                .with_value(r.nullable_string()?);
            c.unknown_tagged_fields = r.no_known_tags()?;
            Ok(c)
        })?;
        res.unknown_tagged_fields = r.no_known_tags()?;
        Ok(res)
    })?;
    let mut req = IncrementalAlterConfigsRequest::default()
        .with_resources(resources)
        .with_validate_only(r.bool()?);
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(
    ctx: &Context,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in req.resources {
        let outcome = alter_one(ctx, &res, req.validate_only).await;
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        responses.push(match outcome {
            Ok(()) => response,
            Err(e) => response
                .with_error_code(e.code.code())
                .with_error_message(msg(e.message)),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// One change as asked: the key, and the value to set (`None`: back to
/// the default).
type Change = (String, Option<String>);

async fn alter_one(
    ctx: &Context,
    res: &AlterConfigsResource,
    validate_only: bool,
) -> std::result::Result<(), TopicError> {
    check_resource(res.resource_type)?;
    let mut changes: Vec<Change> = Vec::with_capacity(res.configs.len());
    for c in &res.configs {
        let key = c.name.as_str().to_owned();
        if changes.iter().any(|(k, _)| *k == key) {
            return Err(TopicError::new(
                ResponseError::InvalidRequest,
                format!("config {key:?} is named more than once"),
            ));
        }
        let value = match c.config_operation {
            OP_SET => Some(
                c.value
                    .as_ref()
                    .ok_or_else(|| {
                        TopicError::new(
                            ResponseError::InvalidRequest,
                            format!("setting {key:?} needs a value"),
                        )
                    })?
                    .as_str()
                    .to_owned(),
            ),
            OP_DELETE => None,
            OP_APPEND | OP_SUBTRACT => {
                return Err(TopicError::new(
                    ResponseError::InvalidConfig,
                    format!(
                        "APPEND and SUBTRACT apply to list configs; {key:?} is not one Rill can change that way (cleanup.policy supports only \"delete\")"
                    ),
                ))
            }
            other => {
                return Err(TopicError::new(
                    ResponseError::InvalidRequest,
                    format!("unknown config operation {other}"),
                ))
            }
        };
        changes.push((key, value));
    }
    let name = res.resource_name.as_str();
    alter_topic(
        ctx,
        name,
        move |current| apply(current, &changes),
        validate_only,
    )
    .await
}

/// Refuses what is not a topic: the SPU has no broker settings that
/// change at run time.
pub(super) fn check_resource(resource_type: i8) -> std::result::Result<(), TopicError> {
    match resource_type {
        RESOURCE_TOPIC => Ok(()),
        RESOURCE_BROKER => Err(TopicError::new(
            ResponseError::InvalidRequest,
            "SPU settings cannot be changed at run time; only topic configs can",
        )),
        other => Err(TopicError::new(
            ResponseError::InvalidRequest,
            format!("resource type {other} is not supported; only topics (2) are"),
        )),
    }
}

/// `current` with `changes` applied: each key set to its value, or to its
/// default for `None`.
pub(super) fn apply(
    current: &TopicConfig,
    changes: &[Change],
) -> std::result::Result<TopicConfig, TopicError> {
    let defaults = TopicConfig::default().pairs();
    let mut config = current.clone();
    for (key, value) in changes {
        let value = match value {
            Some(v) => v.clone(),
            None => match defaults.iter().find(|(k, _)| k == key) {
                Some((_, d)) => d.clone(),
                None => return Err(unsupported(key)),
            },
        };
        if !TOPIC_CONFIG_KEYS.contains(&key.as_str()) {
            return Err(unsupported(key));
        }
        config
            .set(key, &value)
            .map_err(|m| TopicError::new(ResponseError::InvalidConfig, m))?;
    }
    Ok(config)
}

fn unsupported(key: &str) -> TopicError {
    TopicError::new(
        ResponseError::InvalidConfig,
        format!(
            "topic config {key:?} is not supported by Rill (it supports {})",
            TOPIC_CONFIG_KEYS.join(", ")
        ),
    )
}

/// Applies `change` to topic `name`'s config: on a single SPU through the
/// registry (metadata file, open logs) on a blocking thread, in a cluster
/// through the store.
pub(super) async fn alter_topic<F>(
    ctx: &Context,
    name: &str,
    change: F,
    validate_only: bool,
) -> std::result::Result<(), TopicError>
where
    F: Fn(&TopicConfig) -> std::result::Result<TopicConfig, TopicError> + Send + 'static,
{
    let result = if let Some(link) = &ctx.cluster {
        link.alter_topic_config(name, change, validate_only)
            .await
            .map(|_| ())
    } else {
        let registry = ctx.registry.clone();
        let owned = name.to_owned();
        tokio::task::spawn_blocking(move || {
            registry
                .alter_config(&owned, |c| change(c), validate_only)
                .map(|_| ())
        })
        .await
        .unwrap_or_else(|e| {
            Err(TopicError::new(
                ResponseError::KafkaStorageError,
                format!("changing the topic config failed: {e}"),
            ))
        })
    };
    if let Err(e) = &result {
        tracing::info!(topic = %name, code = e.code.code(), reason = %e.message, "config change refused");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=1 {
            let req = IncrementalAlterConfigsRequest::default()
                .with_validate_only(true)
                .with_resources(vec![AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configs(vec![
                        AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_config_operation(OP_SET)
                            .with_value(Some(s("1000"))),
                        AlterableConfig::default()
                            .with_name(s("segment.bytes"))
                            .with_config_operation(OP_DELETE)
                            .with_value(None),
                    ])]);
            same(req, v, decode);
        }
    }

    #[test]
    fn changes_apply_in_order_and_refuse_what_rill_cannot_do() {
        let mut current = TopicConfig::default();
        current.set("segment.bytes", "1048576").unwrap();
        let changed = apply(
            &current,
            &[
                ("retention.ms".into(), Some("1000".into())),
                ("segment.bytes".into(), None),
            ],
        )
        .unwrap();
        assert_eq!(changed.retention_ms, 1000);
        assert_eq!(changed.segment_bytes, TopicConfig::default().segment_bytes);
        for (key, value, says) in [
            (
                "message.timestamp.type",
                Some("LogAppendTime"),
                "not supported by Rill",
            ),
            ("message.timestamp.type", None, "not supported by Rill"),
            ("cleanup.policy", Some("compact"), "only \"delete\""),
            ("retention.ms", Some("soon"), "not a number"),
        ] {
            let e = apply(&current, &[(key.into(), value.map(str::to_owned))]).unwrap_err();
            assert_eq!(e.code, ResponseError::InvalidConfig, "{key}");
            assert!(e.message.contains(says), "{key}: {}", e.message);
        }
    }
}

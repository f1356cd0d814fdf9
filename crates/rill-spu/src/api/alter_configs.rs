//! AlterConfigs (key 33), the older form kafka-python's `alter_configs`
//! sends: a topic's whole config replaced by the settings given (any not
//! given goes back to its default). Applied as IncrementalAlterConfigs
//! applies its changes.

use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::describe_configs::msg;
use super::incremental_alter_configs::{alter_topic, apply, check_resource};
use super::reader::{Reader, Result};
use super::Context;
use crate::registry::TopicError;
use crate::topic::TopicConfig;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<AlterConfigsRequest> {
    r.set_flexible(v >= 2);
    let resources = r.array(|r| {
        let mut res = AlterConfigsResource::default()
            .with_resource_type(r.i8()?)
            .with_resource_name(r.string()?);
        res.configs = r.array(|r| {
            let mut c = AlterableConfig::default()
                .with_name(r.string()?)
                .with_value(r.nullable_string()?);
            c.unknown_tagged_fields = r.no_known_tags()?;
            Ok(c)
        })?;
        res.unknown_tagged_fields = r.no_known_tags()?;
        Ok(res)
    })?;
    let mut req = AlterConfigsRequest::default()
        .with_resources(resources)
        .with_validate_only(r.bool()?);
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(ctx: &Context, req: AlterConfigsRequest) -> AlterConfigsResponse {
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
    AlterConfigsResponse::default().with_responses(responses)
}

async fn alter_one(
    ctx: &Context,
    res: &AlterConfigsResource,
    validate_only: bool,
) -> std::result::Result<(), TopicError> {
    check_resource(res.resource_type)?;
    // Every setting: the value given, else back to the default.
    let changes: Vec<(String, Option<String>)> = res
        .configs
        .iter()
        .map(|c| {
            (
                c.name.as_str().to_owned(),
                c.value.as_ref().map(|v| v.as_str().to_owned()),
            )
        })
        .collect();
    alter_topic(
        ctx,
        res.resource_name.as_str(),
        move |_| apply(&TopicConfig::default(), &changes),
        validate_only,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=2 {
            let req = AlterConfigsRequest::default()
                .with_validate_only(true)
                .with_resources(vec![AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configs(vec![
                        AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("1000"))),
                        AlterableConfig::default()
                            .with_name(s("segment.bytes"))
                            .with_value(None),
                    ])]);
            same(req, v, decode);
        }
    }
}

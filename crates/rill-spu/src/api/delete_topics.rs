//! DeleteTopics (key 20): by name, or (v6) by topic id.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::describe_configs::msg;
use super::reader::{Reader, Result};
use super::Context;
use crate::registry::TopicError;
use std::time::Duration;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<DeleteTopicsRequest> {
    r.set_flexible(v >= 4);
    let mut req = DeleteTopicsRequest::default();
    if v >= 6 {
        req.topics = r.array(|r| {
            let mut t = DeleteTopicState::default()
                .with_name(r.nullable_string()?.map(TopicName))
                .with_topic_id(r.uuid()?);
            t.unknown_tagged_fields = r.no_known_tags()?;
            Ok(t)
        })?;
    } else {
        req.topic_names = r.array(|r| r.topic_name())?;
    }
    req.timeout_ms = r.i32()?;
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(ctx: &Context, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let wait = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
    // v0-5 name topics in topic_names; v6 in topics, by name or by id.
    let mut wanted: Vec<(Option<TopicName>, uuid::Uuid)> = req
        .topic_names
        .into_iter()
        .map(|n| (Some(n), uuid::Uuid::nil()))
        .collect();
    wanted.extend(req.topics.into_iter().map(|t| (t.name, t.topic_id)));
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        responses.push(delete_one(ctx, name, id, wait).await);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Deletes one topic, named or (v6) by id: its local files on a single
/// SPU (off the async threads), through the store in a cluster.
async fn delete_one(
    ctx: &Context,
    name: Option<TopicName>,
    id: uuid::Uuid,
    wait: Duration,
) -> DeletableTopicResult {
    let view = ctx.registry.cluster_view();
    let name = name.or_else(|| {
        if id.is_nil() {
            return None;
        }
        let found = match &view {
            Some(v) => v
                .topics
                .iter()
                .find(|(_, s)| uuid::Uuid::from_u128(s.id) == id)
                .map(|(n, _)| n.clone()),
            None => ctx
                .registry
                .topics()
                .iter()
                .find(|t| t.id == id)
                .map(|t| t.spec.name.clone()),
        };
        found.map(|n| TopicName(StrBytes::from_string(n)))
    });
    let result = DeletableTopicResult::default()
        .with_name(name.clone())
        .with_topic_id(id);
    let Some(name) = name else {
        return result
            .with_error_code(ResponseError::UnknownTopicId.code())
            .with_error_message(msg(format!("no topic has id {id}")));
    };
    let outcome = match &ctx.cluster {
        Some(link) => link.delete_topic(&name, wait).await,
        None => {
            let registry = ctx.registry.clone();
            let topic_id = registry.topic(&name).map(|t| t.id).unwrap_or(id);
            let deleting = name.to_string();
            tokio::task::spawn_blocking(move || registry.delete(&deleting).map(|()| topic_id))
                .await
                .unwrap_or_else(|e| {
                    Err(TopicError::new(
                        ResponseError::KafkaStorageError,
                        format!("deleting the topic failed: {e}"),
                    ))
                })
        }
    };
    match outcome {
        Ok(topic_id) => result.with_topic_id(topic_id),
        Err(e) => result
            .with_error_code(e.code.code())
            .with_error_message(msg(e.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{name, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 1..=6 {
            let mut req = DeleteTopicsRequest::default().with_timeout_ms(1000);
            if v >= 6 {
                req.topics = vec![
                    DeleteTopicState::default().with_name(Some(name("a"))),
                    DeleteTopicState::default()
                        .with_name(None)
                        .with_topic_id(uuid::Uuid::from_u128(9)),
                ];
            } else {
                req.topic_names = vec![name("a"), name("b")];
            }
            same(req, v, decode);
        }
    }
}

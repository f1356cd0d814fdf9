use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Context;
use crate::registry::Topic;
use crate::topic::{validate_topic_name, TopicConfig, TopicSpec};

/// The cluster id Metadata reports for a single-node local cluster.
pub(crate) const CLUSTER_ID: &str = "rill-local";
/// "Authorized operations not requested" in Metadata.
const OPERATIONS_OMITTED: i32 = i32::MIN;

fn topic_entry(topic: &Topic, node: i32) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(
            topic.spec.name.clone(),
        ))))
        .with_topic_id(topic.id)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
        .with_partitions(
            (0..topic.spec.partitions)
                .map(|p| {
                    MetadataResponsePartition::default()
                        .with_partition_index(p)
                        .with_leader_id(BrokerId(node))
                        .with_leader_epoch(0)
                        .with_replica_nodes(vec![BrokerId(node)])
                        .with_isr_nodes(vec![BrokerId(node)])
                })
                .collect(),
        )
}

fn error_entry(name: Option<TopicName>, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name)
        .with_error_code(code)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

/// Creates `name` with the SPU's defaults if auto-creation is on.
pub(super) fn auto_create(ctx: &Context, name: &str) -> Option<std::sync::Arc<Topic>> {
    let config = ctx.registry.config();
    if !config.auto_create_topics {
        return None;
    }
    let spec = TopicSpec {
        name: name.to_owned(),
        partitions: config.default_partitions,
        replication_factor: 1,
        config: TopicConfig::default(),
    };
    match ctx.registry.create(spec) {
        Ok(t) => Some(t),
        // Another request may have created it in the meantime.
        Err(_) => ctx.registry.topic(name),
    }
}

pub(super) fn handle(ctx: &Context, req: MetadataRequest, version: i16) -> MetadataResponse {
    let node = ctx.registry.config().node_id;
    let (host, port) = &ctx.advertised;
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(node))
        .with_host(StrBytes::from_string(host.clone()))
        .with_port(i32::from(*port));
    // v0 has no null: an empty list asks for every topic.
    let wanted = match req.topics {
        None => None,
        Some(list) if list.is_empty() && version == 0 => None,
        Some(list) => Some(list),
    };
    // Before v4 the request has no flag and Kafka auto-creates.
    let may_create = version < 4 || req.allow_auto_topic_creation;
    let topics = match wanted {
        None => ctx
            .registry
            .topics()
            .iter()
            .map(|t| topic_entry(t, node))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|t| {
                let Some(name) = t.name else {
                    // Lookup by topic id (v10+).
                    return match ctx.registry.topics().iter().find(|x| x.id == t.topic_id) {
                        Some(topic) => topic_entry(topic, node),
                        None => error_entry(None, ResponseError::UnknownTopicId.code())
                            .with_topic_id(t.topic_id),
                    };
                };
                if validate_topic_name(&name).is_err() {
                    return error_entry(Some(name), ResponseError::InvalidTopicException.code());
                }
                let found = ctx
                    .registry
                    .topic(&name)
                    .or_else(|| may_create.then(|| auto_create(ctx, &name)).flatten());
                match found {
                    Some(topic) => topic_entry(&topic, node),
                    None => error_entry(Some(name), ResponseError::UnknownTopicOrPartition.code()),
                }
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER_ID)))
        .with_controller_id(BrokerId(node))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

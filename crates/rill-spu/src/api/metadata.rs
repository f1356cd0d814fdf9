//! Metadata (key 3): brokers (this SPU), topics and their partitions.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use std::time::Duration;

use rill_cluster::{ClusterView, PartitionState};

use super::reader::{DecodeError, Reader, Result};
use super::Context;
use crate::cluster::ClusterLink;
use crate::group::OFFSETS_TOPIC;
use crate::registry::Topic;
use crate::topic::{validate_topic_name, TopicConfig, TopicSpec};

/// The cluster id Metadata reports for a single-node local cluster.
pub(crate) const CLUSTER_ID: &str = "rill-local";
/// The cluster id Metadata reports for a cluster of SPUs.
pub(crate) const CLUSTER_ID_MULTI: &str = "rill-cluster";
/// "Authorized operations not requested" in Metadata.
const OPERATIONS_OMITTED: i32 = i32::MIN;

fn topic_entry(topic: &Topic, node: i32) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(
            topic.spec.name.clone(),
        ))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.spec.name == OFFSETS_TOPIC)
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
    // In a cluster, Metadata creates through the store (`handle`).
    if !config.auto_create_topics || ctx.registry.in_cluster() {
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

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<MetadataRequest> {
    r.set_flexible(v >= 9);
    let topics = r.nullable_array(|r| {
        let topic_id = if v >= 10 {
            r.uuid()?
        } else {
            uuid::Uuid::nil()
        };
        let name = if v >= 10 {
            r.nullable_string()?.map(TopicName)
        } else {
            Some(r.topic_name()?)
        };
        let mut t = MetadataRequestTopic::default()
            .with_topic_id(topic_id)
            .with_name(name);
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    if v == 0 && topics.is_none() {
        return Err(DecodeError::NullNotAllowed("the topics array (v0)"));
    }
    let mut req = MetadataRequest::default().with_topics(topics);
    req.allow_auto_topic_creation = if v >= 4 { r.bool()? } else { true };
    if (8..=10).contains(&v) {
        req.include_cluster_authorized_operations = r.bool()?;
    }
    if v >= 8 {
        req.include_topic_authorized_operations = r.bool()?;
    }
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(ctx: &Context, req: MetadataRequest, version: i16) -> MetadataResponse {
    if let Some(link) = &ctx.cluster {
        return cluster_metadata(ctx, link, req, version).await;
    }
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
        // The offsets topic is listed only when asked for by name, as Kafka
        // hides __consumer_offsets.
        None => ctx
            .registry
            .topics()
            .iter()
            .filter(|t| t.spec.name != OFFSETS_TOPIC)
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

/// One partition as the cluster's metadata has it.
fn cluster_partition(p: u32, state: &PartitionState) -> MetadataResponsePartition {
    let ids = |v: &[u32]| v.iter().map(|id| BrokerId(*id as i32)).collect::<Vec<_>>();
    let error = if state.leader().is_none() {
        ResponseError::LeaderNotAvailable.code()
    } else {
        0
    };
    MetadataResponsePartition::default()
        .with_error_code(error)
        .with_partition_index(p as i32)
        .with_leader_id(BrokerId(state.leader))
        .with_leader_epoch(state.leader_epoch)
        .with_replica_nodes(ids(&state.replicas))
        .with_isr_nodes(ids(&state.isr))
}

fn cluster_topic(view: &ClusterView, name: &str) -> Option<MetadataResponseTopic> {
    let stored = view.topics.get(name)?;
    let partitions: Vec<_> = view
        .topic_partitions(name)
        .map(|(p, s)| cluster_partition(p, s))
        .collect();
    // Created, not placed yet: Kafka's answer for a topic being created.
    let error = if partitions.len() < stored.partitions as usize {
        ResponseError::LeaderNotAvailable.code()
    } else {
        0
    };
    Some(
        MetadataResponseTopic::default()
            .with_error_code(error)
            .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))
            .with_topic_id(uuid::Uuid::from_u128(stored.id))
            .with_is_internal(name == OFFSETS_TOPIC)
            .with_topic_authorized_operations(OPERATIONS_OMITTED)
            .with_partitions(partitions),
    )
}

/// The "controller" Kafka clients send admin requests to: the elected
/// controller, or while none is (an election under way) this SPU. Any SPU
/// takes CreateTopics and DeleteTopics (they are writes to the store), and
/// a Kafka admin client told "no controller" waits for one without asking
/// again soon (librdkafka refreshes metadata only every few minutes then).
pub(super) fn admin_target(view: &ClusterView, me: i32) -> i32 {
    view.controller.map_or(me, |c| c as i32)
}

/// Every live SPU as a Metadata broker.
pub(super) fn cluster_brokers(view: &ClusterView) -> Vec<(i32, String, i32)> {
    view.spus
        .iter()
        .filter_map(|(id, address)| {
            let (host, port) = address.rsplit_once(':')?;
            Some((*id as i32, host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

/// Metadata in a cluster: the store's view of SPUs, topics and leaders.
/// A missing topic is created through the store when auto-creation is on
/// (answered `LEADER_NOT_AVAILABLE` until the controller places it, as
/// Kafka does).
async fn cluster_metadata(
    ctx: &Context,
    link: &ClusterLink,
    req: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let config = ctx.registry.config();
    let may_create = (version < 4 || req.allow_auto_topic_creation) && config.auto_create_topics;
    let wanted = match req.topics {
        Some(list) if !(list.is_empty() && version == 0) => Some(list),
        _ => None,
    };
    let view = link.view();
    let topics = match wanted {
        None => view
            .topics
            .keys()
            .filter(|name| name.as_str() != OFFSETS_TOPIC)
            .filter_map(|name| cluster_topic(&view, name))
            .collect(),
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for t in list {
                let Some(name) = t.name else {
                    let by_id = view
                        .topics
                        .iter()
                        .find(|(_, s)| uuid::Uuid::from_u128(s.id) == t.topic_id)
                        .and_then(|(name, _)| cluster_topic(&view, name));
                    out.push(by_id.unwrap_or_else(|| {
                        error_entry(None, ResponseError::UnknownTopicId.code())
                            .with_topic_id(t.topic_id)
                    }));
                    continue;
                };
                if validate_topic_name(&name).is_err() {
                    out.push(error_entry(
                        Some(name),
                        ResponseError::InvalidTopicException.code(),
                    ));
                    continue;
                }
                if let Some(entry) = cluster_topic(&view, &name) {
                    out.push(entry);
                    continue;
                }
                let code = if may_create {
                    let spec = TopicSpec {
                        name: name.to_string(),
                        partitions: config.default_partitions,
                        replication_factor: 1,
                        config: TopicConfig::default(),
                    };
                    match link.create_topic(&spec, Duration::ZERO).await {
                        Ok(_) => ResponseError::LeaderNotAvailable,
                        Err(e) if e.code == ResponseError::TopicAlreadyExists => {
                            ResponseError::LeaderNotAvailable
                        }
                        Err(e) => e.code,
                    }
                } else {
                    ResponseError::UnknownTopicOrPartition
                };
                out.push(error_entry(Some(name), code.code()));
            }
            out
        }
    };
    let brokers = cluster_brokers(&view)
        .into_iter()
        .map(|(id, host, port)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_string(host))
                .with_port(port)
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER_ID_MULTI)))
        .with_controller_id(BrokerId(admin_target(&view, ctx.registry.config().node_id)))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{name, same};
    use bytes::Bytes;

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=12 {
            let topic = |n: &str| {
                let mut t = MetadataRequestTopic::default().with_name(Some(name(n)));
                if v >= 10 {
                    t.topic_id = uuid::Uuid::from_u128(0x1234);
                }
                t
            };
            let mut req =
                MetadataRequest::default().with_topics(Some(vec![topic("a"), topic("bb")]));
            if v >= 4 {
                req.allow_auto_topic_creation = false;
            }
            if (8..=10).contains(&v) {
                req.include_cluster_authorized_operations = true;
            }
            if v >= 8 {
                req.include_topic_authorized_operations = true;
            }
            same(req, v, decode);
            if v >= 1 {
                same(MetadataRequest::default().with_topics(None), v, decode);
            }
        }
    }

    #[test]
    fn lying_counts_are_errors_not_allocations() {
        // v1 with 2^31 - 1 topics in 4 bytes.
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]));
        assert_eq!(
            decode(&mut r, 1),
            Err(DecodeError::ArrayTooLong {
                count: i32::MAX as u64,
                left: 0
            })
        );
        // Flexible: a compact array of 2^32 - 2 elements.
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]));
        assert!(matches!(
            decode(&mut r, 12),
            Err(DecodeError::ArrayTooLong { .. })
        ));
        // v0 cannot say "every topic" with null.
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]));
        assert!(matches!(
            decode(&mut r, 0),
            Err(DecodeError::NullNotAllowed(_))
        ));
    }
}

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
use std::collections::BTreeSet;
use std::time::Duration;

/// Most partitions an explicit assignment may list (the SPU's limit on a
/// topic's partitions).
const MAX_ASSIGNED_PARTITIONS: usize = crate::registry::MAX_PARTITIONS_PER_TOPIC as usize;

/// CreateTopics' explicit replica assignments as replicas by partition
/// (preferred leader first), if valid: every partition 0..n listed once,
/// each with the same number of distinct SPU ids, all of them `members`.
/// Otherwise the reason, for `INVALID_REPLICA_ASSIGNMENT`.
fn check_assignment(
    assignments: &[CreatableReplicaAssignment],
    members: &BTreeSet<u32>,
) -> std::result::Result<Vec<Vec<u32>>, String> {
    if assignments.len() > MAX_ASSIGNED_PARTITIONS {
        return Err(format!(
            "{} partitions assigned, over the limit of {MAX_ASSIGNED_PARTITIONS}",
            assignments.len()
        ));
    }
    let mut by_partition: Vec<Option<Vec<u32>>> = vec![None; assignments.len()];
    for a in assignments {
        let p = a.partition_index;
        let slot = usize::try_from(p)
            .ok()
            .and_then(|i| by_partition.get_mut(i))
            .ok_or_else(|| {
                format!(
                    "partition {p} is outside 0..{}: assignments must list partitions 0..n",
                    assignments.len()
                )
            })?;
        if slot.is_some() {
            return Err(format!("partition {p} is assigned twice"));
        }
        let mut replicas = Vec::with_capacity(a.broker_ids.len());
        for b in &a.broker_ids {
            let id = u32::try_from(b.0)
                .ok()
                .filter(|id| members.contains(id))
                .ok_or_else(|| {
                    format!(
                        "partition {p}: SPU {} is not a member of the cluster (members: {})",
                        b.0,
                        members
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                })?;
            if replicas.contains(&id) {
                return Err(format!("partition {p}: SPU {id} is named twice"));
            }
            replicas.push(id);
        }
        if replicas.is_empty() {
            return Err(format!("partition {p} has no replicas"));
        }
        *slot = Some(replicas);
    }
    // Every slot is filled: n distinct indexes in 0..n.
    let assignment: Vec<Vec<u32>> = by_partition.into_iter().flatten().collect();
    let copies = assignment.first().map_or(0, Vec::len);
    if let Some((p, r)) = assignment
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() != copies)
    {
        return Err(format!(
            "partition {p} has {} replicas, partition 0 has {copies}: every partition needs the same number",
            r.len()
        ));
    }
    Ok(assignment)
}

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
            // Replicas the request chose, by partition; empty when the
            // controller (or the single SPU) places them.
            let mut assignment: Vec<Vec<u32>> = Vec::new();
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
                // The SPUs a replica may be on: the cluster's live members,
                // or this SPU alone.
                let members: BTreeSet<u32> = match &ctx.cluster {
                    Some(link) => link.view().spus.keys().copied().collect(),
                    None => u32::try_from(node).into_iter().collect(),
                };
                assignment = match check_assignment(&t.assignments, &members) {
                    Ok(a) => a,
                    Err(m) => return fail(ResponseError::InvalidReplicaAssignment.code(), m),
                };
                let r = assignment.first().map_or(1, |a| a.len() as i16);
                (assignment.len() as i32, r)
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
                    Ok(()) => link
                        .create_topic_assigned(&spec, assignment, wait)
                        .await
                        .map(Some),
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

    fn assigned(rows: &[(i32, &[i32])]) -> Vec<CreatableReplicaAssignment> {
        rows.iter()
            .map(|(p, ids)| {
                CreatableReplicaAssignment::default()
                    .with_partition_index(*p)
                    .with_broker_ids(ids.iter().map(|i| BrokerId(*i)).collect())
            })
            .collect()
    }

    #[test]
    fn assignments_must_list_each_partition_once_with_the_same_distinct_members() {
        let members: BTreeSet<u32> = [0, 1, 2].into();
        assert_eq!(
            check_assignment(&assigned(&[(1, &[0, 2]), (0, &[2, 1])]), &members),
            Ok(vec![vec![2, 1], vec![0, 2]]),
            "by partition, in the given order (the first leads)"
        );
        for (bad, why) in [
            (assigned(&[(0, &[0]), (2, &[1])]), "outside 0..2"),
            (assigned(&[(0, &[0]), (0, &[1])]), "assigned twice"),
            (assigned(&[(0, &[0, 0])]), "named twice"),
            (assigned(&[(0, &[0, 3])]), "SPU 3 is not a member"),
            (assigned(&[(0, &[-1])]), "SPU -1 is not a member"),
            (assigned(&[(0, &[0, 1]), (1, &[2])]), "the same number"),
            (assigned(&[(0, &[])]), "no replicas"),
        ] {
            let e = check_assignment(&bad, &members).unwrap_err();
            assert!(e.contains(why), "{e:?} should say {why:?}");
        }
    }
}

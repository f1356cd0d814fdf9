//! Consumer groups as an administrator sees them: list, describe (members,
//! assignment, committed offset, log end and lag per partition), reset a
//! group's offsets while it has no members, delete a group. Each group is
//! asked of its coordinator (FindCoordinator); ListGroups asks every SPU.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest, MetadataRequest,
    OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::group::find_coordinator;
use crate::group::protocol::decode_assignment;
use crate::{Admin, Offset, RillError};

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group: String,
    /// `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Stable`.
    pub state: String,
    /// `consumer` for Kafka consumers.
    pub protocol_type: String,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The id the coordinator gave it.
    pub member_id: String,
    /// Its client's `client.id`.
    pub client_id: String,
    /// Where it connects from, as the SPU saw it (may be empty).
    pub client_host: String,
    /// Its partitions by topic (decoded from Kafka's consumer protocol;
    /// empty when the assignment is in another format).
    pub assignment: BTreeMap<String, Vec<i32>>,
}

/// Where a group stands on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset (`None`: nothing committed).
    pub committed: Option<i64>,
    /// The partition's log end offset now (`None`: not known).
    pub log_end: Option<i64>,
    /// `log_end - committed` when both are known.
    pub lag: Option<i64>,
    /// The member that holds the partition now, if any.
    pub member: Option<String>,
}

/// A group as DescribeGroups and OffsetFetch show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group: String,
    /// The group's state (Kafka's names).
    pub state: String,
    /// The assignor the members agreed on (`range`, ...).
    pub protocol: String,
    /// Its members now.
    pub members: Vec<GroupMember>,
    /// Every partition the group has committed or a member holds, sorted.
    pub partitions: Vec<GroupPartition>,
}

/// Where [`Admin::reset_group_offsets`] puts a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// Each partition's log start offset.
    Earliest,
    /// Each partition's log end offset (nothing left to read).
    Latest,
    /// This offset on every partition, clamped to the log.
    Offset(i64),
}

fn gid(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_owned()))
}

fn check(what: impl FnOnce() -> String, code: i16) -> Result<(), RillError> {
    if code == 0 {
        Ok(())
    } else {
        Err(RillError::broker(what(), code, None))
    }
}

impl Admin {
    /// A connection to the SPU that coordinates `group`.
    async fn coordinator(&self, group: &str) -> Result<Arc<Connection>, RillError> {
        Ok(find_coordinator(&self.client, group).await?.0)
    }

    /// Every group of the cluster, sorted by name.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, RillError> {
        let md = self
            .client
            .metadata(MetadataRequest::default().with_topics(Some(vec![])))
            .await?;
        let mut addrs: Vec<String> = md
            .brokers
            .iter()
            .map(|b| format!("{}:{}", b.host.as_str(), b.port))
            .collect();
        if addrs.is_empty() {
            addrs.push(self.client.addr.clone());
        }
        let mut out = Vec::new();
        for addr in addrs {
            let conn = Connection::connect(&addr).await?;
            let version = conn.version::<ListGroupsRequest>(4)?;
            let resp = conn.send(ListGroupsRequest::default(), version).await?;
            check(|| "listing groups".into(), resp.error_code)?;
            out.extend(resp.groups.into_iter().map(|g| GroupListing {
                group: g.group_id.to_string(),
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
            }));
        }
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out.dedup_by(|a, b| a.group == b.group);
        Ok(out)
    }

    /// A group's state, members and, per partition, its committed offset,
    /// the log end and the lag. A group that does not exist is an error.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, RillError> {
        let conn = self.coordinator(group).await?;
        let version = conn.version::<DescribeGroupsRequest>(5)?;
        let resp = conn
            .send(
                DescribeGroupsRequest::default().with_groups(vec![gid(group)]),
                version,
            )
            .await?;
        let g = resp
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| RillError::Protocol("DescribeGroups answer is empty".into()))?;
        check(|| format!("describing group {group:?}"), g.error_code)?;
        if g.group_state.as_str() == "Dead" {
            return Err(RillError::broker(
                format!("describing group {group:?}"),
                ResponseError::GroupIdNotFound.code(),
                Some("no such group".into()),
            ));
        }
        let members: Vec<GroupMember> = g
            .members
            .iter()
            .map(|m| GroupMember {
                member_id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: decode_assignment(&m.member_assignment).unwrap_or_default(),
            })
            .collect();
        let version = conn.version::<OffsetFetchRequest>(7)?;
        let fetched = conn
            .send(
                OffsetFetchRequest::default()
                    .with_group_id(gid(group))
                    .with_topics(None),
                version.max(2),
            )
            .await?;
        check(
            || format!("fetching the offsets of group {group:?}"),
            fetched.error_code,
        )?;
        let mut parts: BTreeMap<(String, i32), GroupPartition> = BTreeMap::new();
        for t in &fetched.topics {
            for p in &t.partitions {
                let key = (t.name.to_string(), p.partition_index);
                parts.insert(
                    key.clone(),
                    GroupPartition {
                        topic: key.0,
                        partition: key.1,
                        committed: (p.committed_offset >= 0).then_some(p.committed_offset),
                        log_end: None,
                        lag: None,
                        member: None,
                    },
                );
            }
        }
        for m in &members {
            for (t, ps) in &m.assignment {
                for p in ps {
                    let e = parts
                        .entry((t.clone(), *p))
                        .or_insert_with(|| GroupPartition {
                            topic: t.clone(),
                            partition: *p,
                            committed: None,
                            log_end: None,
                            lag: None,
                            member: None,
                        });
                    e.member = Some(m.member_id.clone());
                }
            }
        }
        for p in parts.values_mut() {
            let Ok(index) = u32::try_from(p.partition) else {
                continue;
            };
            let consumer = crate::PartitionConsumer {
                client: self.client.clone(),
                topic: p.topic.clone(),
                partition: index,
                config: crate::ConsumerConfig::default(),
            };
            if let Ok(end) = consumer.start_offset(Offset::End).await {
                p.log_end = Some(end);
                p.lag = p.committed.map(|c| (end - c).max(0));
            }
        }
        Ok(GroupDescription {
            group: group.to_owned(),
            state: g.group_state.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
            partitions: parts.into_values().collect(),
        })
    }

    /// Sets `group`'s committed offset on every partition of `topic` (the
    /// earliest or latest offset now, or `N`, clamped to the log). Only
    /// while the group has no members: the SPU refuses it otherwise, and so
    /// does this, with a plain error. Returns the new offsets.
    pub async fn reset_group_offsets(
        &self,
        group: &str,
        topic: &str,
        to: ResetTo,
    ) -> Result<Vec<(i32, i64)>, RillError> {
        let conn = self.coordinator(group).await?;
        let described = conn
            .send(
                DescribeGroupsRequest::default().with_groups(vec![gid(group)]),
                conn.version::<DescribeGroupsRequest>(5)?,
            )
            .await?;
        if let Some(g) = described.groups.first() {
            if !g.members.is_empty() {
                return Err(RillError::GroupNotEmpty {
                    group: group.to_owned(),
                    members: g.members.len(),
                    state: g.group_state.to_string(),
                });
            }
        }
        let count = self.client.partitions(topic).await?;
        let mut offsets = Vec::new();
        for p in 0..count {
            let consumer = crate::PartitionConsumer {
                client: self.client.clone(),
                topic: topic.to_owned(),
                partition: p,
                config: crate::ConsumerConfig::default(),
            };
            let begin = consumer.start_offset(Offset::Beginning).await?;
            let end = consumer.start_offset(Offset::End).await?;
            let offset = match to {
                ResetTo::Earliest => begin,
                ResetTo::Latest => end,
                ResetTo::Offset(n) => n.clamp(begin, end),
            };
            offsets.push((p as i32, offset));
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(gid(group))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|(p, o)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(*o)
                        })
                        .collect(),
                )]);
        let resp = conn
            .send(req, conn.version::<OffsetCommitRequest>(8)?)
            .await?;
        for p in resp.topics.iter().flat_map(|t| t.partitions.iter()) {
            if p.error_code == ResponseError::UnknownMemberId.code()
                || p.error_code == ResponseError::RebalanceInProgress.code()
            {
                return Err(RillError::GroupNotEmpty {
                    group: group.to_owned(),
                    members: 1,
                    state: "joining".into(),
                });
            }
            check(
                || format!("resetting {topic}-{} of group {group:?}", p.partition_index),
                p.error_code,
            )?;
        }
        Ok(offsets)
    }

    /// Deletes a group without members, and its committed offsets.
    pub async fn delete_group(&self, group: &str) -> Result<(), RillError> {
        let conn = self.coordinator(group).await?;
        let version = conn.version::<DeleteGroupsRequest>(2)?;
        let resp = conn
            .send(
                DeleteGroupsRequest::default().with_groups_names(vec![gid(group)]),
                version,
            )
            .await?;
        let code = resp.results.first().map_or(0, |r| r.error_code);
        check(|| format!("deleting group {group:?}"), code)
    }
}

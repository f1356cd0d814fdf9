//! The requests a group member sends its coordinator (the SPU that leads
//! the group's `__consumer_offsets` partition): JoinGroup, SyncGroup,
//! Heartbeat, OffsetFetch, OffsetCommit, LeaveGroup. Each answers with the
//! Kafka error code it got; the member (`super::GroupConsumer`) decides
//! what a code means for it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::ClientInner;
use crate::connection::Connection;
use crate::RillError;

/// How many times finding a coordinator is tried (100 ms apart) while the
/// answer is a retriable error (the offsets partition has no leader yet).
const FIND_ATTEMPTS: u32 = 50;
const FIND_BACKOFF: Duration = Duration::from_millis(100);
/// How long a request other than JoinGroup/SyncGroup may take before the
/// coordinator counts as lost.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Beyond the rebalance timeout, how long a parked JoinGroup/SyncGroup may
/// take to be answered.
const JOIN_SLACK: Duration = Duration::from_secs(5);

pub(crate) fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_owned()))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// A connection of its own to the SPU that coordinates `group`, and that
/// SPU's address, found with FindCoordinator on any SPU; retriable answers
/// are tried again.
pub(crate) async fn find_coordinator(
    client: &ClientInner,
    group: &str,
) -> Result<(Arc<Connection>, String), RillError> {
    let mut last = None;
    for _ in 0..FIND_ATTEMPTS {
        let conn = client.any_connection().await?;
        let version = conn.version::<FindCoordinatorRequest>(3)?;
        let resp = conn
            .send(
                FindCoordinatorRequest::default().with_key(s(group)),
                version,
            )
            .await?;
        if resp.error_code == 0 {
            let addr = format!("{}:{}", resp.host.as_str(), resp.port);
            return Ok((Connection::connect(&addr).await?, addr));
        }
        let err = RillError::broker(
            format!("finding the coordinator of group {group:?}"),
            resp.error_code,
            None,
        );
        if !err.is_retriable() {
            return Err(err);
        }
        last = Some(err);
        tokio::time::sleep(FIND_BACKOFF).await;
    }
    Err(last.unwrap_or_else(|| RillError::Protocol("no coordinator".into())))
}

/// What a JoinGroup answered.
#[derive(Debug)]
pub(super) struct Joined {
    pub generation: i32,
    pub member_id: String,
    pub leader: String,
    pub protocol: String,
    /// Every member's subscription metadata (only in the leader's answer).
    pub members: Vec<(String, Bytes)>,
}

/// One member's identity in its current generation.
#[derive(Debug, Clone)]
pub(super) struct Generation {
    pub generation: i32,
    pub member_id: String,
}

/// Error codes that mean: find the coordinator again.
pub(super) fn is_coordinator_gone(e: &RillError) -> bool {
    match e {
        RillError::Transport { .. } | RillError::Connect { .. } | RillError::Timeout { .. } => true,
        RillError::Broker { code, .. } => [
            ResponseError::NotCoordinator.code(),
            ResponseError::CoordinatorNotAvailable.code(),
            ResponseError::CoordinatorLoadInProgress.code(),
        ]
        .contains(code),
        _ => false,
    }
}

async fn timed<T>(
    what: &str,
    after: Duration,
    f: impl std::future::Future<Output = Result<T, RillError>>,
) -> Result<T, RillError> {
    tokio::time::timeout(after, f)
        .await
        .map_err(|_| RillError::Timeout {
            what: what.to_owned(),
            after,
        })?
}

fn code_err(what: impl Into<String>, code: i16) -> Result<(), RillError> {
    if code == 0 {
        Ok(())
    } else {
        Err(RillError::broker(what.into(), code, None))
    }
}

/// JoinGroup with one protocol (`protocol`, `metadata`). The answer's
/// error code is returned as an error; `MEMBER_ID_REQUIRED` comes back as
/// `Ok` with `generation == -1` and the id to join with.
pub(super) async fn join(
    conn: &Connection,
    group: &str,
    member_id: &str,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol: &str,
    metadata: Bytes,
) -> Result<Joined, RillError> {
    let version = conn.version::<JoinGroupRequest>(7)?;
    let req = JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(millis(session_timeout))
        .with_rebalance_timeout_ms(millis(rebalance_timeout))
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s(protocol))
            .with_metadata(metadata)]);
    let resp = timed(
        "JoinGroup",
        rebalance_timeout + JOIN_SLACK,
        conn.send(req, version),
    )
    .await?;
    if resp.error_code == ResponseError::MemberIdRequired.code() {
        return Ok(Joined {
            generation: -1,
            member_id: resp.member_id.to_string(),
            leader: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        });
    }
    code_err(format!("joining group {group:?}"), resp.error_code)?;
    Ok(Joined {
        generation: resp.generation_id,
        member_id: resp.member_id.to_string(),
        leader: resp.leader.to_string(),
        protocol: resp
            .protocol_name
            .map(|p| p.to_string())
            .unwrap_or_default(),
        members: resp
            .members
            .into_iter()
            .map(|m| (m.member_id.to_string(), m.metadata))
            .collect(),
    })
}

/// SyncGroup: the leader sends every member's assignment, the others none;
/// each gets its own back.
pub(super) async fn sync(
    conn: &Connection,
    group: &str,
    gen: &Generation,
    protocol: &str,
    assignments: Vec<(String, Vec<u8>)>,
    rebalance_timeout: Duration,
) -> Result<Bytes, RillError> {
    let version = conn.version::<SyncGroupRequest>(5)?;
    let req = SyncGroupRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(gen.generation)
        .with_member_id(s(&gen.member_id))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s(protocol)))
        .with_assignments(
            assignments
                .into_iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(&m))
                        .with_assignment(Bytes::from(a))
                })
                .collect(),
        );
    let resp = timed(
        "SyncGroup",
        rebalance_timeout + JOIN_SLACK,
        conn.send(req, version),
    )
    .await?;
    code_err(format!("syncing group {group:?}"), resp.error_code)?;
    Ok(resp.assignment)
}

/// One Heartbeat; its error code as an error.
pub(super) async fn heartbeat(
    conn: &Connection,
    group: &str,
    gen: &Generation,
) -> Result<(), RillError> {
    let version = conn.version::<HeartbeatRequest>(4)?;
    let req = HeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(gen.generation)
        .with_member_id(s(&gen.member_id));
    let resp = timed("Heartbeat", REQUEST_TIMEOUT, conn.send(req, version)).await?;
    code_err(format!("heartbeat in group {group:?}"), resp.error_code)
}

/// The group's committed offset of each of `partitions` (topic →
/// partitions); a partition with nothing committed is left out.
pub(super) async fn fetch_offsets(
    conn: &Connection,
    group: &str,
    partitions: &BTreeMap<String, Vec<i32>>,
) -> Result<BTreeMap<(String, i32), i64>, RillError> {
    let version = conn.version::<OffsetFetchRequest>(7)?;
    let topics = partitions
        .iter()
        .map(|(t, ps)| {
            OffsetFetchRequestTopic::default()
                .with_name(TopicName(s(t)))
                .with_partition_indexes(ps.clone())
        })
        .collect();
    let req = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(Some(topics));
    let resp = timed("OffsetFetch", REQUEST_TIMEOUT, conn.send(req, version)).await?;
    code_err(
        format!("fetching the offsets of group {group:?}"),
        resp.error_code,
    )?;
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            code_err(
                format!(
                    "fetching the offset of group {group:?} on {}-{}",
                    t.name.as_str(),
                    p.partition_index
                ),
                p.error_code,
            )?;
            if p.committed_offset >= 0 {
                out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// Commits `offsets` ((topic, partition) → next offset to read) in `gen`;
/// the first partition's error code, if any, as an error.
pub(super) async fn commit(
    conn: &Connection,
    group: &str,
    gen: &Generation,
    offsets: &BTreeMap<(String, i32), i64>,
) -> Result<(), RillError> {
    let version = conn.version::<OffsetCommitRequest>(8)?;
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((t, p), o) in offsets {
        topics.entry(t).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o),
        );
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(gen.generation)
        .with_member_id(s(&gen.member_id))
        .with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let resp = timed("OffsetCommit", REQUEST_TIMEOUT, conn.send(req, version)).await?;
    for t in &resp.topics {
        for p in &t.partitions {
            code_err(
                format!(
                    "committing group {group:?}'s offset on {}-{}",
                    t.name.as_str(),
                    p.partition_index
                ),
                p.error_code,
            )?;
        }
    }
    Ok(())
}

/// LeaveGroup for `member_id` (v3+ name members in a list).
pub(super) async fn leave(
    conn: &Connection,
    group: &str,
    member_id: &str,
) -> Result<(), RillError> {
    let version = conn.version::<LeaveGroupRequest>(4)?;
    let mut req = LeaveGroupRequest::default().with_group_id(group_id(group));
    if version >= 3 {
        req = req.with_members(vec![MemberIdentity::default().with_member_id(s(member_id))]);
    } else {
        req = req.with_member_id(s(member_id));
    }
    let resp = timed("LeaveGroup", REQUEST_TIMEOUT, conn.send(req, version)).await?;
    code_err(format!("leaving group {group:?}"), resp.error_code)?;
    for m in &resp.members {
        code_err(format!("leaving group {group:?}"), m.error_code)?;
    }
    Ok(())
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

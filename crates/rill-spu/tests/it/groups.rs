//! Consumer groups and committed offsets over real TCP with the
//! kafka-protocol types: whole join/sync/heartbeat/commit/fetch flows, a
//! crash and restart, hostile input.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest,
    ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest, ProduceRequest,
    SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use rill_spu::SpuConfig;
use rill_test_support::*;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Short timeouts so the tests run in moments.
fn quick(c: &mut SpuConfig) {
    c.groups.limits.initial_rebalance_delay = Duration::from_millis(200);
    c.groups.limits.min_session_timeout = Duration::from_millis(100);
}

fn join_req(group: &str, member: &str, session_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(5_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"subscription"))])
}

/// Joins as a new member the v5 way (MEMBER_ID_REQUIRED, then again with
/// the id); returns the answer to the second join.
async fn join(c: &mut KafkaClient, group: &str, session_ms: i32) -> JoinGroupResponse {
    let first = c.send(join_req(group, "", session_ms), 5).await;
    assert_eq!(first.error_code, code(ResponseError::MemberIdRequired));
    assert!(!first.member_id.is_empty());
    c.send(join_req(group, first.member_id.as_str(), session_ms), 5)
        .await
}

fn commit_req(
    group: &str,
    member: &str,
    generation: i32,
    offsets: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(
            offsets
                .iter()
                .map(|(t, p, o)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(vec![OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                            .with_committed_metadata(Some(s("meta")))])
                })
                .collect(),
        )
}

async fn fetch_offset(
    c: &mut KafkaClient,
    group: &str,
    topic: &str,
    partition: i32,
    v: i16,
) -> i64 {
    let resp = c
        .send(
            OffsetFetchRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(vec![partition])])),
            v,
        )
        .await;
    assert_eq!(resp.error_code, 0);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.committed_offset
}

#[tokio::test]
async fn two_members_join_sync_heartbeat_commit_and_leave() {
    let spu = TestSpu::start_with(quick).await;
    let mut admin = spu.client().await;
    create_topic(&mut admin, "orders", 4, &[]).await;

    // FindCoordinator: this SPU, at its address.
    for v in [0, 3] {
        let found = admin
            .send(FindCoordinatorRequest::default().with_key(s("g1")), v)
            .await;
        assert_eq!(found.error_code, 0, "v{v}");
        assert_eq!(found.node_id.0, 0);
        assert_eq!(found.port, i32::from(spu.addr.port()));
    }

    // Two members, each on its own connection (a parked join holds it).
    let mut a = spu.client().await;
    let mut b = spu.client().await;
    let (ra, rb) = tokio::join!(join(&mut a, "g1", 5_000), join(&mut b, "g1", 5_000));
    assert_eq!((ra.error_code, rb.error_code), (0, 0));
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    assert_eq!(ra.leader, rb.leader);
    assert_eq!(ra.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
    let (mut leader, mut follower, lr, fr) = if ra.leader == ra.member_id {
        (a, b, ra, rb)
    } else {
        (b, a, rb, ra)
    };
    assert_eq!(lr.members.len(), 2, "the leader gets every member");
    assert!(fr.members.is_empty());
    assert!(lr.members.iter().all(|m| m.metadata == "subscription"));

    // The follower's SyncGroup waits for the leader's.
    let sync = |member: &StrBytes, assignments: Vec<SyncGroupRequestAssignment>| {
        SyncGroupRequest::default()
            .with_group_id(GroupId(s("g1")))
            .with_generation_id(1)
            .with_member_id(member.clone())
            .with_assignments(assignments)
    };
    let follower_sync = sync(&fr.member_id, vec![]);
    let leader_sync = sync(
        &lr.member_id,
        vec![
            SyncGroupRequestAssignment::default()
                .with_member_id(lr.member_id.clone())
                .with_assignment(Bytes::from_static(b"partitions 0,1")),
            SyncGroupRequestAssignment::default()
                .with_member_id(fr.member_id.clone())
                .with_assignment(Bytes::from_static(b"partitions 2,3")),
        ],
    );
    let waiting = tokio::spawn(async move {
        let r = follower.send(follower_sync, 3).await;
        (follower, r)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiting.is_finished(),
        "the follower's sync waits for the leader"
    );
    let ls = leader.send(leader_sync, 5).await;
    assert_eq!(ls.error_code, 0);
    assert_eq!(ls.assignment, "partitions 0,1");
    let (mut follower, fs) = waiting.await.unwrap();
    assert_eq!(fs.error_code, 0);
    assert_eq!(fs.assignment, "partitions 2,3");

    // Heartbeats, stale generations, strangers.
    let hb = |m: &StrBytes, generation| {
        HeartbeatRequest::default()
            .with_group_id(GroupId(s("g1")))
            .with_generation_id(generation)
            .with_member_id(m.clone())
    };
    assert_eq!(leader.send(hb(&lr.member_id, 1), 4).await.error_code, 0);
    assert_eq!(
        leader.send(hb(&lr.member_id, 0), 4).await.error_code,
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        leader.send(hb(&s("stranger"), 1), 0).await.error_code,
        code(ResponseError::UnknownMemberId)
    );

    // Commits from members of the generation; a stranger and an unknown
    // topic are refused.
    let committed = leader
        .send(
            commit_req(
                "g1",
                lr.member_id.as_str(),
                1,
                &[("orders", 0, 17), ("orders", 1, 3), ("nope", 0, 1)],
            ),
            8,
        )
        .await;
    let errors: Vec<i16> = committed
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect();
    assert_eq!(errors, [0, 0, code(ResponseError::UnknownTopicOrPartition)]);
    let stranger = leader
        .send(commit_req("g1", "stranger", 1, &[("orders", 0, 99)]), 2)
        .await;
    assert_eq!(
        stranger.topics[0].partitions[0].error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(fetch_offset(&mut follower, "g1", "orders", 0, 7).await, 17);
    assert_eq!(fetch_offset(&mut follower, "g1", "orders", 1, 1).await, 3);
    assert_eq!(fetch_offset(&mut follower, "g1", "orders", 2, 5).await, -1);
    // All of the group's offsets (v2+: null topics).
    let all = follower
        .send(
            OffsetFetchRequest::default()
                .with_group_id(GroupId(s("g1")))
                .with_topics(None),
            6,
        )
        .await;
    assert_eq!(all.topics.len(), 1);
    assert_eq!(all.topics[0].partitions.len(), 2);

    // DescribeGroups and ListGroups see it Stable with its members.
    let described = admin
        .send(
            DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(s("g1")), GroupId(s("never"))]),
            5,
        )
        .await;
    let g = &described.groups[0];
    assert_eq!(g.error_code, 0);
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!(g.protocol_data.as_str(), "range");
    assert_eq!(g.members.len(), 2);
    assert!(g
        .members
        .iter()
        .any(|m| m.member_assignment == "partitions 2,3"));
    assert!(g.members.iter().all(|m| m.client_id.as_str() == "rill-it"));
    assert_eq!(described.groups[1].group_state.as_str(), "Dead");
    let listed = admin.send(ListGroupsRequest::default(), 4).await;
    assert_eq!(listed.groups.len(), 1);
    assert_eq!(listed.groups[0].group_id.as_str(), "g1");
    assert_eq!(listed.groups[0].group_state.as_str(), "Stable");

    // Deleting a group with members is refused.
    let deleted = admin
        .send(
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g1"))]),
            2,
        )
        .await;
    assert_eq!(
        deleted.results[0].error_code,
        code(ResponseError::NonEmptyGroup)
    );

    // The follower leaves (v3 batch form): the leader is told to rejoin,
    // and alone makes generation 2.
    let left = follower
        .send(
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s("g1")))
                .with_members(vec![
                    MemberIdentity::default().with_member_id(fr.member_id.clone())
                ]),
            4,
        )
        .await;
    assert_eq!(left.error_code, 0);
    assert_eq!(left.members[0].error_code, 0);
    assert_eq!(
        leader.send(hb(&lr.member_id, 1), 4).await.error_code,
        code(ResponseError::RebalanceInProgress)
    );
    // Commit on revoke: the old generation may still commit now.
    let revoke = leader
        .send(
            commit_req("g1", lr.member_id.as_str(), 1, &[("orders", 0, 20)]),
            8,
        )
        .await;
    assert_eq!(revoke.topics[0].partitions[0].error_code, 0);
    let again = leader
        .send(join_req("g1", lr.member_id.as_str(), 5_000), 5)
        .await;
    assert_eq!(again.error_code, 0);
    assert_eq!(again.generation_id, 2);
    assert_eq!(again.members.len(), 1);

    // The offsets topic: hidden from listings, shown by name, closed to
    // producers.
    let md = admin
        .send(MetadataRequest::default().with_topics(None), 12)
        .await;
    assert!(md
        .topics
        .iter()
        .all(|t| t.name.as_ref().map(|n| n.as_str()) != Some("__consumer_offsets")));
    let md = admin
        .send(
            MetadataRequest::default()
                .with_topics(Some(vec![MetadataRequestTopic::default()
                    .with_name(Some(topic_name("__consumer_offsets")))])),
            12,
        )
        .await;
    assert_eq!(md.topics[0].error_code, 0);
    assert!(md.topics[0].is_internal);
    assert!(!md.topics[0].partitions.is_empty());
    let produced = admin
        .send(
            ProduceRequest::default()
                .with_acks(1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic_name("__consumer_offsets"))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(
                            &[b"x"],
                            0,
                            rill_protocol::Compression::None,
                        )))])]),
            9,
        )
        .await;
    assert_eq!(
        produced.responses[0].partition_responses[0].error_code,
        code(ResponseError::InvalidTopicException)
    );
    spu.stop().await;
}

#[tokio::test]
async fn a_member_that_stops_heartbeating_is_expired() {
    let spu = TestSpu::start_with(quick).await;
    let mut a = spu.client().await;
    let mut b = spu.client().await;
    let (ra, rb) = tokio::join!(join(&mut a, "g", 400), join(&mut b, "g", 400));
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    for (c, r) in [(&mut a, &ra), (&mut b, &rb)] {
        let sync = SyncGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_generation_id(1)
            .with_member_id(r.member_id.clone())
            .with_assignments(vec![]);
        if r.leader == r.member_id {
            assert_eq!(c.send(sync, 3).await.error_code, 0);
        }
    }
    // a keeps heartbeating, b goes silent.
    let hb = HeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id(1)
        .with_member_id(ra.member_id.clone());
    let mut told = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let e = a.send(hb.clone(), 4).await.error_code;
        if e != 0 {
            told = Some(e);
            break;
        }
    }
    assert_eq!(told, Some(code(ResponseError::RebalanceInProgress)));
    let again = a.send(join_req("g", ra.member_id.as_str(), 400), 5).await;
    assert_eq!(again.generation_id, 2);
    assert_eq!(again.members.len(), 1);
    assert_eq!(again.leader, ra.member_id);
    spu.stop().await;
}

#[tokio::test]
async fn committed_offsets_survive_a_crash_and_deletion_survives_a_restart() {
    let mut spu = TestSpu::start_with(quick).await;
    let mut c = spu.client().await;
    create_topic(&mut c, "t", 2, &[]).await;
    // Simple commits (no members, generation -1), several times; the last
    // one counts. Old versions (v2 commit, v1 fetch) as kafka-python sends.
    for (i, v) in [(5i64, 2i16), (9, 8), (12, 5)] {
        let r = c
            .send(
                commit_req("keep", "", -1, &[("t", 0, i), ("t", 1, i * 2)]),
                v,
            )
            .await;
        assert!(r
            .topics
            .iter()
            .all(|t| t.partitions.iter().all(|p| p.error_code == 0)));
    }
    let r = c.send(commit_req("gone", "", -1, &[("t", 0, 1)]), 8).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    // kill -9: what was answered must be there after the restart.
    spu.crash_and_restart().await;
    let mut c = spu.client().await;
    assert_eq!(fetch_offset(&mut c, "keep", "t", 0, 1).await, 12);
    assert_eq!(fetch_offset(&mut c, "keep", "t", 1, 7).await, 24);
    assert_eq!(fetch_offset(&mut c, "gone", "t", 0, 3).await, 1);
    let listed = c.send(ListGroupsRequest::default(), 2).await;
    let mut ids: Vec<&str> = listed.groups.iter().map(|g| g.group_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["gone", "keep"]);
    let deleted = c
        .send(
            DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(s("gone")), GroupId(s("never"))]),
            1,
        )
        .await;
    assert_eq!(deleted.results[0].error_code, 0);
    assert_eq!(
        deleted.results[1].error_code,
        code(ResponseError::GroupIdNotFound)
    );
    // The tombstones are in the log: still gone after a restart.
    spu.restart().await;
    let mut c = spu.client().await;
    assert_eq!(fetch_offset(&mut c, "gone", "t", 0, 7).await, -1);
    assert_eq!(fetch_offset(&mut c, "keep", "t", 0, 7).await, 12);
    spu.stop().await;
}

/// Bytes of the offsets topic's files under the SPU's data dir.
fn offsets_bytes(dir: &std::path::Path) -> u64 {
    fn walk(d: &std::path::Path, inside: bool) -> u64 {
        let Ok(entries) = std::fs::read_dir(d) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| {
                let path = e.path();
                let here = inside
                    || e.file_name()
                        .to_string_lossy()
                        .contains("__consumer_offsets");
                match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&path, here),
                    Ok(m) if here => m.len(),
                    _ => 0,
                }
            })
            .sum()
    }
    walk(dir, false)
}

#[tokio::test]
async fn the_offsets_log_is_compacted_and_replays_to_the_same_offsets() {
    let mut spu = TestSpu::start_with(|c| {
        quick(c);
        c.groups.offsets_topic_partitions = 1;
        c.groups.offsets_segment_bytes = 4096;
        c.groups.offsets_compact_after_bytes = 16 * 1024;
    })
    .await;
    let mut c = spu.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    // 10 groups commit 150 times each: ~1,500 records, far more than the
    // threshold, while only 10 entries are live.
    for round in 0..150i64 {
        for g in 0..10 {
            if g == 3 && round > 100 {
                continue; // deleted at round 100
            }
            let r = c
                .send(
                    commit_req(&format!("g{g}"), "", -1, &[("t", 0, round * 10 + g)]),
                    8,
                )
                .await;
            assert_eq!(r.topics[0].partitions[0].error_code, 0);
        }
        if round == 100 {
            let deleted = c
                .send(
                    DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g3"))]),
                    1,
                )
                .await;
            assert_eq!(deleted.results[0].error_code, 0);
        }
    }
    let size = offsets_bytes(&spu.data_dir());
    assert!(
        size < 64 * 1024,
        "the offsets log was not compacted: {size} bytes"
    );
    let earliest = c
        .send(
            ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name("__consumer_offsets"))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-2)])]),
            1,
        )
        .await;
    let start = earliest.topics[0].partitions[0].offset;
    assert!(
        start > 1000,
        "segments before the snapshots were deleted: start {start}"
    );
    // kill -9, then a replay of what is left gives every last commit, and
    // the deleted group stays deleted.
    spu.crash_and_restart().await;
    let mut c = spu.client().await;
    for g in 0..10 {
        let expected = if g == 3 { -1 } else { 149 * 10 + g };
        assert_eq!(
            fetch_offset(&mut c, &format!("g{g}"), "t", 0, 7).await,
            expected,
            "group g{g}"
        );
    }
}

#[tokio::test]
async fn hostile_group_requests_get_clear_errors_and_the_spu_keeps_serving() {
    let spu = TestSpu::start_with(|c| {
        quick(c);
        c.groups.limits.max_members = 100;
        c.groups.max_groups = 5;
    })
    .await;
    let mut c = spu.client().await;
    // Absurd timeouts.
    for (session, rebalance) in [
        (1, 5_000),
        (i32::MAX, 5_000),
        (5_000, i32::MAX),
        (-5, 5_000),
        (5_000, 0),
    ] {
        let r = c
            .send(
                join_req("h", "", session).with_rebalance_timeout_ms(rebalance),
                5,
            )
            .await;
        assert_eq!(
            r.error_code,
            code(ResponseError::InvalidSessionTimeout),
            "{session} {rebalance}"
        );
    }
    // No protocols, an empty group id.
    let r = c
        .send(join_req("h", "", 5_000).with_protocols(vec![]), 5)
        .await;
    assert_eq!(r.error_code, code(ResponseError::InconsistentGroupProtocol));
    let r = c.send(join_req("", "", 5_000), 5).await;
    assert_eq!(r.error_code, code(ResponseError::InvalidGroupId));
    // A metadata string over the limit.
    create_topic(&mut c, "t", 1, &[]).await;
    let mut big = commit_req("h", "", -1, &[("t", 0, 1)]);
    big.topics[0].partitions[0].committed_metadata = Some(s(&"m".repeat(5000)));
    let r = c.send(big, 8).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::OffsetMetadataTooLarge)
    );

    // 1,000 members join one group at once, over 10 connections: the
    // first 100 get ids, the rest GROUP_MAX_SIZE_REACHED.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let mut conn = spu.client().await;
        tasks.push(tokio::spawn(async move {
            let mut codes = Vec::new();
            for _ in 0..100 {
                codes.push(conn.send(join_req("crowd", "", 5_000), 5).await.error_code);
            }
            codes
        }));
    }
    let mut given = 0;
    let mut full = 0;
    for t in tasks {
        for code_ in t.await.unwrap() {
            if code_ == code(ResponseError::MemberIdRequired) {
                given += 1;
            } else if code_ == code(ResponseError::GroupMaxSizeReached) {
                full += 1;
            } else {
                panic!("unexpected error {code_}");
            }
        }
    }
    assert_eq!((given, full), (100, 900));

    // Groups beyond the limit (5: "crowd" is one) are refused.
    let mut refused = 0;
    for i in 0..10 {
        let r = c.send(join_req(&format!("many-{i}"), "", 5_000), 5).await;
        if r.error_code == code(ResponseError::CoordinatorNotAvailable) {
            refused += 1;
        } else {
            assert_eq!(r.error_code, code(ResponseError::MemberIdRequired));
        }
    }
    assert_eq!(refused, 6);

    // A JoinGroup whose protocols array claims 2^31 - 1 entries: the
    // connection is closed, nothing is allocated for it.
    let mut bad = spu.client().await;
    let mut frame = Vec::new();
    frame.extend_from_slice(&[0, 11, 0, 1, 0, 0, 0, 9, 0xff, 0xff]); // JoinGroup v1, cid 9, null client id
    frame.extend_from_slice(&[
        0, 1, b'g', 0, 0, 0x13, 0x88, 0, 0, 0x13, 0x88, 0, 0, 0, 1, b'c',
    ]);
    frame.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
    let mut sized = (frame.len() as i32).to_be_bytes().to_vec();
    sized.extend_from_slice(&frame);
    bad.send_raw(&sized).await;
    assert!(bad.is_closed().await);
    // A truncated SyncGroup too.
    let mut bad = spu.client().await;
    bad.send_raw(&[0, 0, 0, 12, 0, 14, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 9])
        .await;
    assert!(bad.is_closed().await);

    // Still serving.
    let found = c
        .send(FindCoordinatorRequest::default().with_key(s("after")), 1)
        .await;
    assert_eq!(found.error_code, 0);
    let md = c
        .send(MetadataRequest::default().with_topics(None), 12)
        .await;
    assert_eq!(md.topics.len(), 1);
    spu.stop().await;
}

/// Three SPUs sharing an in-memory store: the offsets topic is created
/// through the store on first need; every SPU names the same coordinator
/// (the leader of the group's offsets partition); the others answer
/// NOT_COORDINATOR; commits go to the coordinator.
#[tokio::test]
async fn in_a_cluster_the_leader_of_the_offsets_partition_coordinates() {
    let store = rill_cluster::MemoryStore::new();
    let mut spus = Vec::new();
    for id in 0..3 {
        spus.push(
            TestSpu::builder()
                .cluster_member(&store, id, Duration::from_millis(1000))
                .tune(|c| {
                    quick(c);
                    c.groups.offsets_topic_partitions = 3;
                })
                .start()
                .await,
        );
    }
    let mut c0 = spus[0].client().await;
    let created = c0
        .send(
            kafka_protocol::messages::CreateTopicsRequest::default()
                .with_topics(vec![creatable("t", 3, 1, &[])])
                .with_timeout_ms(10_000),
            7,
        )
        .await;
    assert_eq!(created.topics[0].error_code, 0);
    // The first FindCoordinator creates the offsets topic; until its
    // partitions have leaders the answer is COORDINATOR_NOT_AVAILABLE.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (node, port) = loop {
        let found = c0
            .send(FindCoordinatorRequest::default().with_key(s("cg")), 3)
            .await;
        if found.error_code == 0 {
            break (found.node_id.0, found.port);
        }
        assert_eq!(
            found.error_code,
            code(ResponseError::CoordinatorNotAvailable)
        );
        assert!(tokio::time::Instant::now() < deadline, "no coordinator");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let coordinator = spus
        .iter()
        .position(|s| s.addr.port() as i32 == port)
        .unwrap();
    assert_eq!(coordinator as i32, node);
    for spu in &spus {
        let mut c = spu.client().await;
        let found = c
            .send(FindCoordinatorRequest::default().with_key(s("cg")), 1)
            .await;
        assert_eq!((found.error_code, found.node_id.0), (0, node));
    }
    // The topic is hidden from listings on every SPU.
    let md = c0
        .send(MetadataRequest::default().with_topics(None), 12)
        .await;
    assert_eq!(md.topics.len(), 1);
    // Commits: refused elsewhere, accepted by the coordinator (once it
    // leads the partition and knows topic t).
    for (i, spu) in spus.iter().enumerate() {
        let mut c = spu.client().await;
        let mut tries = 0;
        let e = loop {
            let r = c.send(commit_req("cg", "", -1, &[("t", 1, 42)]), 8).await;
            let e = r.topics[0].partitions[0].error_code;
            // The coordinator may not have opened its partition yet.
            if e != code(ResponseError::CoordinatorLoadInProgress) || tries > 100 {
                break e;
            }
            tries += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if i == coordinator {
            assert_eq!(e, 0);
        } else {
            assert_eq!(e, code(ResponseError::NotCoordinator), "SPU {i}");
            let hb = c
                .send(
                    HeartbeatRequest::default()
                        .with_group_id(GroupId(s("cg")))
                        .with_member_id(s("m")),
                    4,
                )
                .await;
            assert_eq!(hb.error_code, code(ResponseError::NotCoordinator));
        }
    }
    let mut cc = spus[coordinator].client().await;
    assert_eq!(fetch_offset(&mut cc, "cg", "t", 1, 7).await, 42);
    // A group joins through the coordinator.
    let joined = join(&mut cc, "cg", 5_000).await;
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    for spu in spus {
        spu.stop().await;
    }
}

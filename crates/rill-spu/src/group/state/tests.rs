//! The state machine on virtual time: no sleeping, `now` moves by hand.

use super::*;

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

fn limits() -> GroupLimits {
    GroupLimits {
        max_members: 4,
        min_session_timeout: Duration::from_secs(1),
        max_session_timeout: Duration::from_secs(60),
        max_rebalance_timeout: Duration::from_secs(60),
        initial_rebalance_delay: Duration::from_secs(3),
    }
}

fn req(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_owned(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
    }
}

/// Joins a new member (the v4 dance: MEMBER_ID_REQUIRED, then again with
/// the id); returns its id. The join is parked.
fn join_new(g: &mut Group, now: Instant) -> String {
    let Outcome::Done(first) = g.join(req("", &["range"]), now) else {
        panic!("first join parked");
    };
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    let id = first.member_id.clone();
    assert!(!id.is_empty());
    assert_eq!(
        g.join(req(&id, &["range"]), now),
        Outcome::Parked(id.clone())
    );
    id
}

fn joins(g: &mut Group) -> Vec<(String, JoinResponse)> {
    g.drain_completions()
        .into_iter()
        .map(|c| match c {
            Completion::Join {
                member_id,
                response,
            } => (member_id, response),
            other => panic!("expected a join answer, got {other:?}"),
        })
        .collect()
}

fn syncs(g: &mut Group) -> Vec<(String, SyncResponse)> {
    g.drain_completions()
        .into_iter()
        .map(|c| match c {
            Completion::Sync {
                member_id,
                response,
            } => (member_id, response),
            other => panic!("expected a sync answer, got {other:?}"),
        })
        .collect()
}

/// Two members through a whole rebalance to Stable; returns (t, a, b)
/// with `a` the leader.
fn stable_pair(g: &mut Group, t0: Instant) -> (Instant, String, String) {
    let a = join_new(g, t0);
    let b = join_new(g, t0 + Duration::from_secs(1));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    // Both joined, but the initial delay (3 s) is not over.
    g.tick(t0 + Duration::from_secs(2));
    assert!(g.drain_completions().is_empty());
    assert_eq!(g.next_deadline(), Some(t0 + Duration::from_secs(3)));
    let t = t0 + Duration::from_secs(3);
    g.tick(t);
    let answers = joins(g);
    assert_eq!(answers.len(), 2);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(g.generation(), 1);
    let leader = g.leader().unwrap().to_owned();
    for (id, r) in &answers {
        assert_eq!(r.error, None);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        assert_eq!(r.leader, leader);
        assert_eq!(r.members.len(), if *id == leader { 2 } else { 0 });
    }
    let follower = if leader == a { b } else { a };
    // The follower's sync waits for the leader's.
    assert_eq!(
        g.sync(&follower, 1, None, vec![], t),
        Outcome::Parked(follower.clone())
    );
    assert!(g.drain_completions().is_empty());
    let assignments = vec![
        (leader.clone(), Bytes::from_static(b"L")),
        (follower.clone(), Bytes::from_static(b"F")),
    ];
    assert_eq!(
        g.sync(&leader, 1, Some(("consumer", "range")), assignments, t),
        Outcome::Parked(leader.clone())
    );
    let mut answers = syncs(g);
    answers.sort_by_key(|(id, _)| (id != &leader, id.clone()));
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].1.assignment, Bytes::from_static(b"L"));
    assert_eq!(answers[1].1.assignment, Bytes::from_static(b"F"));
    assert_eq!(g.state(), GroupState::Stable);
    (t, leader, follower)
}

#[test]
fn two_members_join_sync_and_heartbeat() {
    let t0 = Instant::now();
    let mut g = Group::new("g", limits(), 7);
    let (t, leader, follower) = stable_pair(&mut g, t0);
    assert_eq!(g.heartbeat(&leader, 1, t + Duration::from_secs(5)), None);
    assert_eq!(
        g.heartbeat(&follower, 0, t),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        g.heartbeat("nobody", 1, t),
        Some(ResponseError::UnknownMemberId)
    );
    // A late sync in Stable is answered at once with its assignment.
    let Outcome::Done(again) = g.sync(&follower, 1, None, vec![], t) else {
        panic!("parked in Stable");
    };
    assert_eq!(again.assignment, Bytes::from_static(b"F"));
    let described = g.describe();
    assert_eq!(described.len(), 2);
    assert!(described.iter().all(|m| m.metadata == "meta-range"));
}

#[test]
fn a_leave_rebalances_the_rest() {
    let t0 = Instant::now();
    let mut g = Group::new("g", limits(), 7);
    let (t, leader, follower) = stable_pair(&mut g, t0);
    assert_eq!(g.leave(&follower, t), None);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    // The leader learns it from its heartbeat and joins again.
    assert_eq!(
        g.heartbeat(&leader, 1, t),
        Some(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        g.join(req(&leader, &["range"]), t),
        Outcome::Parked(leader.clone())
    );
    let answers = joins(&mut g);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].1.generation_id, 2);
    assert_eq!(answers[0].1.members.len(), 1);
    // The last one leaves: Empty, and offsets may be committed by anyone.
    g.leave(&leader, t);
    assert!(g.drain_completions().is_empty());
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.check_commit("", -1), Ok(()));
    assert_eq!(g.leave(&leader, t), Some(ResponseError::UnknownMemberId));
}

#[test]
fn a_member_that_stops_heartbeating_is_removed() {
    let t0 = Instant::now();
    let mut g = Group::new("g", limits(), 7);
    let (t, leader, follower) = stable_pair(&mut g, t0);
    // The leader heartbeats, the follower does not.
    let mut now = t;
    for _ in 0..2 {
        now += Duration::from_secs(4);
        g.tick(now);
        assert_eq!(g.heartbeat(&leader, 1, now), None, "at {now:?}");
    }
    assert_eq!(g.next_deadline(), Some(t + SESSION));
    g.tick(t + SESSION);
    assert_eq!(g.member_count(), 1);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&follower, 1, now),
        Some(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        g.join(req(&leader, &["range"]), now),
        Outcome::Parked(leader.clone())
    );
    assert_eq!(joins(&mut g)[0].1.generation_id, 2);
}

#[test]
fn a_member_that_does_not_rejoin_in_time_is_dropped() {
    let t0 = Instant::now();
    let mut g = Group::new("g", limits(), 7);
    let (t, leader, follower) = stable_pair(&mut g, t0);
    // A third member triggers a rebalance; only the leader comes back,
    // the follower keeps heartbeating but never joins again.
    let c = join_new(&mut g, t);
    assert_eq!(
        g.join(req(&leader, &["range"]), t),
        Outcome::Parked(leader.clone())
    );
    let mut now = t;
    while now < t + REBALANCE - Duration::from_secs(5) {
        now += Duration::from_secs(5);
        g.heartbeat(&follower, 1, now);
        g.tick(now);
        assert!(g.drain_completions().is_empty());
    }
    // The rebalance timeout ends the join phase without it.
    assert_eq!(g.next_deadline(), Some(t + REBALANCE));
    g.tick(t + REBALANCE);
    let answers = joins(&mut g);
    let ids: Vec<&str> = answers.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(answers.len(), 2);
    assert!(ids.contains(&leader.as_str()) && ids.contains(&c.as_str()));
    assert_eq!(g.member_count(), 2);
    // Its late join is refused: it must join as a new member.
    let Outcome::Done(late) = g.join(req(&follower, &["range"]), t + REBALANCE) else {
        panic!("late join parked");
    };
    assert_eq!(late.error, Some(ResponseError::UnknownMemberId));
}

#[test]
fn a_rebalance_during_a_rebalance() {
    let t0 = Instant::now();
    let mut g = Group::new("g", limits(), 7);
    let (t, leader, follower) = stable_pair(&mut g, t0);
    // A new member: rebalance. Both old members join, the generation 2
    // answers go out; before the leader syncs, a fourth member joins.
    let c = join_new(&mut g, t);
    g.join(req(&leader, &["range"]), t);
    g.join(req(&follower, &["range"]), t);
    assert_eq!(joins(&mut g).len(), 3);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(g.sync(&c, 2, None, vec![], t), Outcome::Parked(c.clone()));
    let d = join_new(&mut g, t);
    // The parked sync is told to rejoin; so are heartbeats.
    let answers = syncs(&mut g);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, c);
    assert_eq!(answers[0].1.error, Some(ResponseError::RebalanceInProgress));
    assert_eq!(
        g.heartbeat(&leader, 2, t),
        Some(ResponseError::RebalanceInProgress)
    );
    // The leader's sync of the old generation is refused.
    assert_eq!(
        g.sync(&leader, 1, None, vec![], t),
        Outcome::Done(SyncResponse::error(ResponseError::IllegalGeneration))
    );
    for id in [&leader, &follower, &c] {
        g.join(req(id, &["range"]), t);
    }
    let answers = joins(&mut g);
    assert_eq!(answers.len(), 4);
    assert!(answers.iter().any(|(id, _)| *id == d));
    assert!(answers.iter().all(|(_, r)| r.generation_id == 3));
    assert_eq!(g.leader(), Some(leader.as_str()), "the leader stays");
}

#[test]
fn limits_and_protocols_are_checked() {
    let t0 = Instant::now();
    let mut g = Group::new("g", limits(), 7);
    let mut short = req("", &["range"]);
    short.session_timeout = Duration::from_millis(10);
    assert_eq!(
        g.join(short, t0),
        Outcome::Done(JoinResponse::error(
            ResponseError::InvalidSessionTimeout,
            ""
        ))
    );
    let mut long = req("", &["range"]);
    long.rebalance_timeout = Duration::from_secs(3600);
    assert!(matches!(
        g.join(long, t0),
        Outcome::Done(JoinResponse {
            error: Some(ResponseError::InvalidSessionTimeout),
            ..
        })
    ));
    assert!(matches!(
        g.join(req("", &[]), t0),
        Outcome::Done(JoinResponse {
            error: Some(ResponseError::InconsistentGroupProtocol),
            ..
        })
    ));
    assert!(matches!(
        g.join(req("who", &["range"]), t0),
        Outcome::Done(JoinResponse {
            error: Some(ResponseError::UnknownMemberId),
            ..
        })
    ));
    let _a = join_new(&mut g, t0);
    // No protocol in common with the member already there.
    assert!(matches!(
        g.join(req("", &["roundrobin"]), t0),
        Outcome::Done(JoinResponse {
            error: Some(ResponseError::InconsistentGroupProtocol),
            ..
        })
    ));
    // At most 4 members, counting ids handed out and not used yet.
    for _ in 0..3 {
        assert!(matches!(
            g.join(req("", &["range", "roundrobin"]), t0),
            Outcome::Done(JoinResponse {
                error: Some(ResponseError::MemberIdRequired),
                ..
            })
        ));
    }
    assert!(matches!(
        g.join(req("", &["range"]), t0),
        Outcome::Done(JoinResponse {
            error: Some(ResponseError::GroupMaxSizeReached),
            ..
        })
    ));
    // Unused ids lapse after their session timeout, freeing room.
    g.tick(t0 + SESSION);
    assert!(matches!(
        g.join(req("", &["range"]), t0 + SESSION),
        Outcome::Done(JoinResponse {
            error: Some(ResponseError::MemberIdRequired),
            ..
        })
    ));
}

#[test]
fn old_protocol_versions_join_without_the_member_id_dance() {
    let t0 = Instant::now();
    let mut g = Group::new("g", limits(), 7);
    let mut r = req("", &["roundrobin", "range"]);
    r.require_known_member_id = false;
    let Outcome::Parked(a) = g.join(r.clone(), t0) else {
        panic!("not parked");
    };
    let mut r2 = req("", &["range", "roundrobin"]);
    r2.require_known_member_id = false;
    let Outcome::Parked(b) = g.join(r2.clone(), t0) else {
        panic!("not parked");
    };
    let mut r3 = r2.clone();
    r3.member_id.clear();
    let Outcome::Parked(_) = g.join(r3, t0) else {
        panic!("not parked");
    };
    assert_ne!(a, b);
    g.tick(t0 + Duration::from_secs(3));
    let answers = joins(&mut g);
    assert_eq!(answers.len(), 3);
    // Two of three prefer range.
    assert!(answers
        .iter()
        .all(|(_, r)| r.protocol_name.as_deref() == Some("range")));
}

#[test]
fn commits_and_deletion_follow_the_state() {
    let t0 = Instant::now();
    let mut g = Group::new("g", limits(), 7);
    let a = join_new(&mut g, t0);
    g.tick(t0 + Duration::from_secs(3));
    joins(&mut g);
    assert_eq!(
        g.check_commit(&a, 1),
        Err(ResponseError::RebalanceInProgress)
    );
    assert_eq!(g.delete(), Err(ResponseError::NonEmptyGroup));
    assert_eq!(g.check_commit("", -1), Err(ResponseError::UnknownMemberId));
    g.sync(&a, 1, None, vec![(a.clone(), Bytes::from_static(b"x"))], t0);
    g.drain_completions();
    assert_eq!(g.check_commit(&a, 1), Ok(()));
    assert_eq!(g.check_commit(&a, 0), Err(ResponseError::IllegalGeneration));
    // During a join phase the old generation may still commit (commit on
    // revoke).
    let _b = join_new(&mut g, t0);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.check_commit(&a, 1), Ok(()));
    // Session of a expires while it never rejoins; b alone.
    g.tick(t0 + REBALANCE);
    assert_eq!(g.member_count(), 1);
    let last = g.member_ids().next().unwrap().to_owned();
    assert_eq!(g.leave(&last, t0 + REBALANCE), None);
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.delete(), Ok(()));
    assert_eq!(g.state(), GroupState::Dead);
    assert_eq!(g.delete(), Err(ResponseError::GroupIdNotFound));
}

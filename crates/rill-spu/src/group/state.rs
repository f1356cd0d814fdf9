//! One consumer group's membership: Kafka's classic group protocol as a
//! state machine with time passed in (`now` on every call), no I/O, no
//! clock of its own. The network shell ([`super::Coordinator`]) parks
//! JoinGroup and SyncGroup requests that cannot be answered at once
//! ([`Parked`]) and answers them with the [`Completion`]s this machine
//! queues, drained with [`Group::drain_completions`] after every call.
//! [`Group::tick`] (at or after [`Group::next_deadline`]) expires members
//! that stopped heartbeating and ends a join phase past its timeout.
//!
//! States, as Kafka's `GroupCoordinator`:
//!
//! - `Empty`: no members (committed offsets may still exist).
//! - `PreparingRebalance`: the join phase. It ends when every member of the
//!   last generation has joined again (and, for a group that was empty,
//!   not before the initial rebalance delay), or at the rebalance timeout
//!   (the longest of the members'), dropping those that did not rejoin.
//!   The new generation's JoinGroup answers go out together; the leader's
//!   carries every member's metadata.
//! - `CompletingRebalance`: waiting for the leader's SyncGroup with the
//!   assignment; followers' SyncGroups wait for it.
//! - `Stable`: everyone has its assignment; heartbeats keep members.
//! - `Dead`: deleted (DeleteGroups); the shell forgets it.
//!
//! Assignment is client-side, as in Kafka: the leader computes it.
//! Static membership (`group.instance.id`) is not implemented: a member
//! that sends one is an ordinary dynamic member.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

/// Where a group is in its life (Kafka's names, as DescribeGroups and
/// ListGroups show them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka gives the state.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// The bounds every group is held to. Each is named with its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    /// Most members (joined, or given an id and expected back) in one
    /// group; more get `GROUP_MAX_SIZE_REACHED` (Kafka's `group.max.size`).
    pub max_members: usize,
    /// Shortest session timeout a member may ask for (Kafka's
    /// `group.min.session.timeout.ms`); shorter is `INVALID_SESSION_TIMEOUT`.
    pub min_session_timeout: Duration,
    /// Longest session timeout (`group.max.session.timeout.ms`).
    pub max_session_timeout: Duration,
    /// Longest rebalance timeout (a consumer's `max.poll.interval.ms`);
    /// longer is `INVALID_SESSION_TIMEOUT`. A parked JoinGroup waits at
    /// most this long.
    pub max_rebalance_timeout: Duration,
    /// How long the first join phase of an empty group waits for more
    /// members (Kafka's `group.initial.rebalance.delay.ms`), so members
    /// starting together share one generation.
    pub initial_rebalance_delay: Duration,
}

impl Default for GroupLimits {
    fn default() -> Self {
        Self {
            max_members: 256,
            min_session_timeout: Duration::from_millis(6_000),
            max_session_timeout: Duration::from_millis(1_800_000),
            max_rebalance_timeout: Duration::from_millis(1_800_000),
            initial_rebalance_delay: Duration::from_millis(3_000),
        }
    }
}

/// A JoinGroup, as the state machine needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinRequest {
    /// Empty for a member joining for the first time.
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// `(name, metadata)` in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member is first given its id with
    /// `MEMBER_ID_REQUIRED` and must join again with it.
    pub require_known_member_id: bool,
}

/// A member as the leader's JoinGroup answer lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResponse {
    pub error: Option<ResponseError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol; only the
    /// leader's answer has them.
    pub members: Vec<JoinedMember>,
}

impl JoinResponse {
    pub fn error(error: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

/// A SyncGroup answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncResponse {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(error: ResponseError) -> Self {
        Self {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// What a call that may have to wait answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// The answer, now.
    Done(T),
    /// Parked under this member id: the answer comes as a [`Completion`].
    Parked(String),
}

/// An answer to a parked request.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    Join {
        member_id: String,
        response: JoinResponse,
    },
    Sync {
        member_id: String,
        response: SyncResponse,
    },
}

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Its metadata for the group's protocol.
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    /// It is expired (removed) at this instant unless it heartbeats.
    session_deadline: Instant,
    /// Its JoinGroup waits for the join phase to end.
    join_parked: bool,
    /// Its SyncGroup waits for the leader's.
    sync_parked: bool,
}

impl Member {
    fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(name, _)| name == p))
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }
}

/// One consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    id: String,
    limits: GroupLimits,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Ids given with `MEMBER_ID_REQUIRED`, with when they lapse unless
    /// the member joins with them.
    pending: HashMap<String, Instant>,
    /// PreparingRebalance: the join phase ends by this instant.
    join_deadline: Option<Instant>,
    /// PreparingRebalance of a group that was empty: not before this.
    join_not_before: Option<Instant>,
    /// Makes member ids unique across the SPU's restarts.
    nonce: u64,
    next_member: u64,
    completions: Vec<Completion>,
}

impl Group {
    /// A new, empty group. `nonce` goes into member ids, so ids given
    /// after a restart of the SPU differ from those given before.
    pub fn new(id: impl Into<String>, limits: GroupLimits, nonce: u64) -> Self {
        Self {
            id: id.into(),
            limits,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            join_deadline: None,
            join_not_before: None,
            nonce,
            next_member: 0,
            completions: Vec::new(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// No members and no ids handed out: nothing to remember but the
    /// committed offsets (kept elsewhere).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, GroupState::Empty | GroupState::Dead)
            && self.members.is_empty()
            && self.pending.is_empty()
    }

    pub fn member_ids(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// The answers to parked requests queued since the last drain.
    pub fn drain_completions(&mut self) -> Vec<Completion> {
        std::mem::take(&mut self.completions)
    }

    /// Every member, for DescribeGroups.
    pub fn describe(&self) -> Vec<MemberDescription> {
        let protocol = self.protocol.as_deref();
        self.members
            .iter()
            .map(|(id, m)| MemberDescription {
                member_id: id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m.metadata(protocol),
                assignment: m.assignment.clone(),
            })
            .collect()
    }

    /// The next instant [`Group::tick`] has something to do, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let sessions = self
            .members
            .values()
            .filter(|m| !m.join_parked)
            .map(|m| m.session_deadline);
        let pending = self.pending.values().copied();
        let join = match self.state {
            GroupState::PreparingRebalance => {
                let ready = self.members.values().all(|m| m.join_parked);
                let end = if ready {
                    self.join_not_before.or(self.join_deadline)
                } else {
                    self.join_deadline
                };
                end.into_iter().chain(self.join_deadline)
            }
            _ => None.into_iter().chain(None),
        };
        sessions.chain(pending).chain(join).min()
    }

    fn new_member_id(&mut self, client_id: &str) -> String {
        self.next_member += 1;
        // Client ids are the client's; keep the id short and printable.
        let prefix: String = client_id
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        let prefix = if prefix.is_empty() { "member" } else { &prefix };
        format!("{prefix}-{:x}-{}", self.nonce, self.next_member)
    }

    fn check_timeouts(&self, req: &JoinRequest) -> Result<(), ResponseError> {
        let l = &self.limits;
        if req.session_timeout < l.min_session_timeout
            || req.session_timeout > l.max_session_timeout
            || req.rebalance_timeout.is_zero()
            || req.rebalance_timeout > l.max_rebalance_timeout
        {
            return Err(ResponseError::InvalidSessionTimeout);
        }
        Ok(())
    }

    /// Whether `req`'s protocols can live with the group's members (the
    /// member `except` left out: it is the one joining again).
    fn compatible(&self, req: &JoinRequest, except: Option<&str>) -> bool {
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return false;
        }
        let others: Vec<&Member> = self
            .members
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != except)
            .map(|(_, m)| m)
            .collect();
        if others.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(req.protocol_type.as_str()) {
            return false;
        }
        req.protocols
            .iter()
            .any(|(name, _)| others.iter().all(|m| m.supports(name)))
    }

    /// JoinGroup.
    pub fn join(&mut self, req: JoinRequest, now: Instant) -> Outcome<JoinResponse> {
        let refuse = |e| Outcome::Done(JoinResponse::error(e, &req.member_id));
        if self.state == GroupState::Dead {
            return refuse(ResponseError::CoordinatorNotAvailable);
        }
        if let Err(e) = self.check_timeouts(&req) {
            return refuse(e);
        }
        let known = !req.member_id.is_empty() && self.members.contains_key(&req.member_id);
        let except = known.then_some(req.member_id.as_str());
        if !self.compatible(&req, except) {
            return refuse(ResponseError::InconsistentGroupProtocol);
        }
        if req.member_id.is_empty() {
            if self.members.len() + self.pending.len() >= self.limits.max_members {
                return refuse(ResponseError::GroupMaxSizeReached);
            }
            let id = self.new_member_id(&req.client_id);
            if req.require_known_member_id {
                self.pending.insert(id.clone(), now + req.session_timeout);
                return Outcome::Done(JoinResponse::error(ResponseError::MemberIdRequired, &id));
            }
            return self.add_member(id, req, now);
        }
        if self.pending.remove(&req.member_id).is_some() {
            let id = req.member_id.clone();
            return self.add_member(id, req, now);
        }
        if !known {
            return refuse(ResponseError::UnknownMemberId);
        }
        self.rejoin(req, now)
    }

    fn add_member(&mut self, id: String, req: JoinRequest, now: Instant) -> Outcome<JoinResponse> {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        self.members.insert(
            id.clone(),
            Member {
                instance_id: req.instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout: req.session_timeout,
                rebalance_timeout: req.rebalance_timeout,
                protocols: req.protocols,
                assignment: Bytes::new(),
                session_deadline: now + req.session_timeout,
                join_parked: true,
                sync_parked: false,
            },
        );
        self.prepare_rebalance(now);
        self.try_complete_join(now);
        Outcome::Parked(id)
    }

    fn rejoin(&mut self, req: JoinRequest, now: Instant) -> Outcome<JoinResponse> {
        let id = req.member_id.clone();
        let Some(member) = self.members.get_mut(&id) else {
            return Outcome::Done(JoinResponse::error(ResponseError::UnknownMemberId, &id));
        };
        let same = member.protocols == req.protocols;
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.protocols = req.protocols;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.session_deadline = now + member.session_timeout;
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        match self.state {
            GroupState::CompletingRebalance | GroupState::Stable if same && !is_leader => {
                // A follower that lost its answer: the current generation.
                Outcome::Done(self.join_answer(&id, false))
            }
            GroupState::CompletingRebalance if same => Outcome::Done(self.join_answer(&id, true)),
            _ => {
                // Asked again while parked (a new connection): the shell
                // replaces the older request.
                if let Some(m) = self.members.get_mut(&id) {
                    m.join_parked = true;
                }
                self.prepare_rebalance(now);
                self.try_complete_join(now);
                Outcome::Parked(id)
            }
        }
    }

    fn join_answer(&self, member_id: &str, with_members: bool) -> JoinResponse {
        let protocol = self.protocol.as_deref();
        let members = if with_members {
            self.members
                .iter()
                .map(|(id, m)| JoinedMember {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata(protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_owned(),
            members,
        }
    }

    /// Enters (or stays in) the join phase.
    fn prepare_rebalance(&mut self, now: Instant) {
        match self.state {
            GroupState::PreparingRebalance | GroupState::Dead => return,
            GroupState::CompletingRebalance => {
                self.fail_parked_syncs(ResponseError::RebalanceInProgress)
            }
            GroupState::Stable => {}
            GroupState::Empty => {
                self.join_not_before = Some(now + self.limits.initial_rebalance_delay);
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.join_deadline = Some(now + timeout);
        if let Some(not_before) = self.join_not_before {
            self.join_not_before = Some(not_before.min(now + timeout));
        }
        self.state = GroupState::PreparingRebalance;
    }

    fn fail_parked_syncs(&mut self, error: ResponseError) {
        for (id, m) in self.members.iter_mut().filter(|(_, m)| m.sync_parked) {
            m.sync_parked = false;
            self.completions.push(Completion::Sync {
                member_id: id.clone(),
                response: SyncResponse::error(error),
            });
        }
    }

    /// Ends the join phase if every member has joined (and the initial
    /// delay is over), or if its deadline has passed.
    fn try_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_parked);
        let delay_over = self.join_not_before.is_none_or(|t| now >= t);
        let timed_out = self.join_deadline.is_some_and(|t| now >= t);
        if (all_joined && delay_over) || timed_out {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        // Members that did not join again in time are out.
        self.members.retain(|_, m| m.join_parked);
        self.generation = self.generation.wrapping_add(1).max(1);
        self.join_deadline = None;
        self.join_not_before = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            return;
        }
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let answer = self.join_answer(&id, id == leader);
            if let Some(m) = self.members.get_mut(&id) {
                m.join_parked = false;
                m.assignment = Bytes::new();
                m.session_deadline = now + m.session_timeout;
            }
            self.completions.push(Completion::Join {
                member_id: id,
                response: answer,
            });
        }
    }

    /// Kafka's choice: among the protocols every member supports, each
    /// member votes for the one it prefers most; most votes wins (ties:
    /// the first member's preference order).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| self.members.values().all(|m| m.supports(n)))
            .collect();
        let mut best: Option<(&str, usize)> = None;
        for c in &candidates {
            let votes = self
                .members
                .values()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .find(|n| candidates.contains(n))
                        == Some(c)
                })
                .count();
            if best.is_none_or(|(_, v)| votes > v) {
                best = Some((c, votes));
            }
        }
        best.map(|(c, _)| c.to_owned())
    }

    /// Checks a member and generation as SyncGroup, Heartbeat and
    /// OffsetCommit do.
    fn check_member(&self, member_id: &str, generation: i32) -> Result<(), ResponseError> {
        if matches!(self.state, GroupState::Empty | GroupState::Dead)
            || !self.members.contains_key(member_id)
        {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// SyncGroup. `assignments` counts only from the leader.
    pub fn sync(
        &mut self,
        member_id: &str,
        generation: i32,
        protocol: Option<(&str, &str)>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Outcome<SyncResponse> {
        if let Err(e) = self.check_member(member_id, generation) {
            return Outcome::Done(SyncResponse::error(e));
        }
        if let Some((ty, name)) = protocol {
            if self.protocol_type.as_deref() != Some(ty) || self.protocol.as_deref() != Some(name) {
                return Outcome::Done(SyncResponse::error(
                    ResponseError::InconsistentGroupProtocol,
                ));
            }
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.session_deadline = now + m.session_timeout;
        }
        match self.state {
            GroupState::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.sync_parked = true;
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for (id, m) in self.members.iter_mut() {
                        m.assignment = given.remove(id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    let answers: Vec<Completion> = self
                        .members
                        .iter_mut()
                        .filter(|(_, m)| m.sync_parked)
                        .map(|(id, m)| {
                            m.sync_parked = false;
                            Completion::Sync {
                                member_id: id.clone(),
                                response: SyncResponse {
                                    error: None,
                                    protocol_type: self.protocol_type.clone(),
                                    protocol_name: self.protocol.clone(),
                                    assignment: m.assignment.clone(),
                                },
                            }
                        })
                        .collect();
                    self.completions.extend(answers);
                }
                Outcome::Parked(member_id.to_owned())
            }
            GroupState::Stable => Outcome::Done(SyncResponse {
                error: None,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol.clone(),
                assignment: self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default(),
            }),
            _ => Outcome::Done(SyncResponse::error(ResponseError::RebalanceInProgress)),
        }
    }

    /// Heartbeat: `None` is success.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        generation: i32,
        now: Instant,
    ) -> Option<ResponseError> {
        if let Err(e) = self.check_member(member_id, generation) {
            return Some(e);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.session_deadline = now + m.session_timeout;
        }
        match self.state {
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            _ => None,
        }
    }

    /// LeaveGroup of one member: `None` is success.
    pub fn leave(&mut self, member_id: &str, now: Instant) -> Option<ResponseError> {
        if self.pending.remove(member_id).is_some() {
            return None;
        }
        let Some(m) = self.members.remove(member_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        self.answer_removed(member_id, &m);
        self.member_removed(now);
        None
    }

    fn answer_removed(&mut self, id: &str, m: &Member) {
        if m.join_parked {
            self.completions.push(Completion::Join {
                member_id: id.to_owned(),
                response: JoinResponse::error(ResponseError::UnknownMemberId, id),
            });
        }
        if m.sync_parked {
            self.completions.push(Completion::Sync {
                member_id: id.to_owned(),
                response: SyncResponse::error(ResponseError::UnknownMemberId),
            });
        }
    }

    fn member_removed(&mut self, now: Instant) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now);
                self.try_complete_join(now);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
        if self.members.is_empty() && self.state == GroupState::PreparingRebalance {
            self.complete_join(now);
        }
    }

    /// Expires members whose session ran out and ids never used, and ends a
    /// join phase that is due.
    pub fn tick(&mut self, now: Instant) {
        self.pending.retain(|_, lapse| *lapse > now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| !m.join_parked && m.session_deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            if let Some(m) = self.members.remove(id) {
                tracing::info!(group = %self.id, member = %id, "member's session expired");
                self.answer_removed(id, &m);
            }
        }
        if !expired.is_empty() {
            self.member_removed(now);
        }
        self.try_complete_join(now);
    }

    /// Whether OffsetCommit from this member at this generation is
    /// accepted: from a member of the current generation (also during a
    /// join phase, so a consumer can commit while its partitions are
    /// revoked), or with generation -1 and no member id when the group has
    /// no members (a consumer that assigns partitions itself).
    pub fn check_commit(&self, member_id: &str, generation: i32) -> Result<(), ResponseError> {
        if generation < 0 && member_id.is_empty() && self.members.is_empty() {
            return Ok(());
        }
        if self.state == GroupState::CompletingRebalance && self.members.contains_key(member_id) {
            return Err(ResponseError::RebalanceInProgress);
        }
        self.check_member(member_id, generation)
    }

    /// DeleteGroups: only an empty group; then it is dead.
    pub fn delete(&mut self) -> Result<(), ResponseError> {
        match self.state {
            GroupState::Empty => {
                self.state = GroupState::Dead;
                Ok(())
            }
            GroupState::Dead => Err(ResponseError::GroupIdNotFound),
            _ => Err(ResponseError::NonEmptyGroup),
        }
    }
}

#[cfg(test)]
mod tests;

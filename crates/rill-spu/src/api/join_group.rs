//! JoinGroup (key 11, v0-7): a member joins (or rejoins) a consumer group;
//! the answer is parked until the join phase ends (see `group::state`).

use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{GroupId, JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::reader::{DecodeError, Reader, Result};
use super::Context;
use crate::group::state::JoinRequest;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<JoinGroupRequest> {
    r.set_flexible(v >= 6);
    let mut req = JoinGroupRequest::default()
        .with_group_id(GroupId(r.string()?))
        .with_session_timeout_ms(r.i32()?);
    if v >= 1 {
        req.rebalance_timeout_ms = r.i32()?;
    }
    req.member_id = r.string()?;
    if v >= 5 {
        req.group_instance_id = r.nullable_string()?;
    }
    req.protocol_type = r.string()?;
    req.protocols = r.array(|r| {
        let mut p = JoinGroupRequestProtocol::default()
            .with_name(r.string()?)
            .with_metadata(
                r.nullable_bytes()?
                    .ok_or(DecodeError::NullNotAllowed("protocol metadata"))?,
            );
        p.unknown_tagged_fields = r.no_known_tags()?;
        Ok(p)
    })?;
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

fn ms(v: i32) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}

pub(super) async fn handle(
    ctx: &Context,
    req: JoinGroupRequest,
    version: i16,
    client_id: Option<&str>,
) -> JoinGroupResponse {
    // v0 has no rebalance timeout: the session timeout serves (as Kafka).
    let rebalance = if req.rebalance_timeout_ms < 0 {
        req.session_timeout_ms
    } else {
        req.rebalance_timeout_ms
    };
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client_id.unwrap_or_default().to_owned(),
        client_host: String::new(),
        session_timeout: if req.session_timeout_ms < 0 {
            Duration::ZERO
        } else {
            ms(req.session_timeout_ms)
        },
        rebalance_timeout: ms(rebalance),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let r = ctx.groups.join(ctx, req.group_id.as_str(), join).await;
    let s = |x: String| StrBytes::from_string(x);
    JoinGroupResponse::default()
        .with_error_code(r.error.map_or(0, |e| e.code()))
        .with_generation_id(r.generation_id)
        .with_protocol_type(r.protocol_type.map(s))
        .with_protocol_name(if version >= 7 {
            r.protocol_name.map(s)
        } else {
            // Non-nullable before v7.
            Some(s(r.protocol_name.unwrap_or_default()))
        })
        .with_leader(s(r.leader))
        .with_member_id(s(r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(s(m.member_id))
                        .with_group_instance_id(m.instance_id.map(s))
                        .with_metadata(m.metadata)
                })
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};
    use bytes::Bytes;

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=7 {
            let mut req = JoinGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_session_timeout_ms(10_000)
                .with_member_id(s("m-1"))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(s("range"))
                        .with_metadata(Bytes::from_static(b"\x00\x01meta")),
                    JoinGroupRequestProtocol::default().with_name(s("roundrobin")),
                ]);
            if v >= 1 {
                req.rebalance_timeout_ms = 30_000;
            }
            if v >= 5 {
                req.group_instance_id = Some(s("static-1"));
            }
            same(req, v, decode);
        }
    }
}

//! LeaveGroup (key 13, v0-4): members leave (one before v3, a batch from
//! v3); the group rebalances without them.

use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{GroupId, LeaveGroupRequest, LeaveGroupResponse};

use super::reader::{Reader, Result};
use super::Context;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<LeaveGroupRequest> {
    r.set_flexible(v >= 4);
    let mut req = LeaveGroupRequest::default().with_group_id(GroupId(r.string()?));
    if v <= 2 {
        req.member_id = r.string()?;
    } else {
        req.members = r.array(|r| {
            let mut m = MemberIdentity::default()
                .with_member_id(r.string()?)
                .with_group_instance_id(r.nullable_string()?);
            if v >= 5 {
                m.reason = r.nullable_string()?;
            }
            m.unknown_tagged_fields = r.no_known_tags()?;
            Ok(m)
        })?;
    }
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(
    ctx: &Context,
    req: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let members: Vec<String> = if version <= 2 {
        vec![req.member_id.to_string()]
    } else {
        req.members
            .iter()
            .map(|m| m.member_id.to_string())
            .collect()
    };
    let resp = LeaveGroupResponse::default();
    match ctx.groups.leave(ctx, req.group_id.as_str(), &members).await {
        Err(e) => resp.with_error_code(e.code()),
        Ok(errors) if version <= 2 => {
            resp.with_error_code(errors.first().copied().flatten().map_or(0, |e| e.code()))
        }
        Ok(errors) => resp.with_members(
            req.members
                .into_iter()
                .zip(errors)
                .map(|(m, e)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(e.map_or(0, |e| e.code()))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=4 {
            let mut req = LeaveGroupRequest::default().with_group_id(GroupId(s("g")));
            if v <= 2 {
                req.member_id = s("m");
            } else {
                req.members = vec![
                    MemberIdentity::default().with_member_id(s("m")),
                    MemberIdentity::default()
                        .with_member_id(s("n"))
                        .with_group_instance_id(Some(s("i"))),
                ];
            }
            same(req, v, decode);
        }
    }
}

//! SyncGroup (key 14, v0-5): the leader hands out the assignment; every
//! member's answer (parked until the leader's arrives) carries its own.

use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{GroupId, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::reader::{DecodeError, Reader, Result};
use super::Context;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<SyncGroupRequest> {
    r.set_flexible(v >= 4);
    let mut req = SyncGroupRequest::default()
        .with_group_id(GroupId(r.string()?))
        .with_generation_id(r.i32()?)
        .with_member_id(r.string()?);
    if v >= 3 {
        req.group_instance_id = r.nullable_string()?;
    }
    if v >= 5 {
        req.protocol_type = r.nullable_string()?;
        req.protocol_name = r.nullable_string()?;
    }
    req.assignments = r.array(|r| {
        let mut a = SyncGroupRequestAssignment::default()
            .with_member_id(r.string()?)
            .with_assignment(
                r.nullable_bytes()?
                    .ok_or(DecodeError::NullNotAllowed("an assignment"))?,
            );
        a.unknown_tagged_fields = r.no_known_tags()?;
        Ok(a)
    })?;
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(ctx: &Context, req: SyncGroupRequest) -> SyncGroupResponse {
    let protocol = match (&req.protocol_type, &req.protocol_name) {
        (Some(t), Some(n)) => Some((t.to_string(), n.to_string())),
        _ => None,
    };
    let assignments = req
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let r = ctx
        .groups
        .sync(
            ctx,
            req.group_id.as_str(),
            req.member_id.as_str(),
            req.generation_id,
            protocol,
            assignments,
        )
        .await;
    SyncGroupResponse::default()
        .with_error_code(r.error.map_or(0, |e| e.code()))
        .with_protocol_type(r.protocol_type.map(StrBytes::from_string))
        .with_protocol_name(r.protocol_name.map(StrBytes::from_string))
        .with_assignment(r.assignment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};
    use bytes::Bytes;

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=5 {
            let mut req = SyncGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id(3)
                .with_member_id(s("m-1"))
                .with_assignments(vec![SyncGroupRequestAssignment::default()
                    .with_member_id(s("m-1"))
                    .with_assignment(Bytes::from_static(b"\x00\x00abc"))]);
            if v >= 3 {
                req.group_instance_id = Some(s("i"));
            }
            if v >= 5 {
                req.protocol_type = Some(s("consumer"));
                req.protocol_name = Some(s("range"));
            }
            same(req, v, decode);
        }
    }
}

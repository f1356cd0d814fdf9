//! Heartbeat (key 12, v0-4): a member says it is alive; the answer says
//! whether a rebalance is in progress (join again).

use kafka_protocol::messages::{GroupId, HeartbeatRequest, HeartbeatResponse};

use super::reader::{Reader, Result};
use super::Context;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<HeartbeatRequest> {
    r.set_flexible(v >= 4);
    let mut req = HeartbeatRequest::default()
        .with_group_id(GroupId(r.string()?))
        .with_generation_id(r.i32()?)
        .with_member_id(r.string()?);
    if v >= 3 {
        req.group_instance_id = r.nullable_string()?;
    }
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(ctx: &Context, req: HeartbeatRequest) -> HeartbeatResponse {
    let error = ctx
        .groups
        .heartbeat(
            ctx,
            req.group_id.as_str(),
            req.member_id.as_str(),
            req.generation_id,
        )
        .await;
    HeartbeatResponse::default().with_error_code(error.map_or(0, |e| e.code()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=4 {
            let mut req = HeartbeatRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id(7)
                .with_member_id(s("m"));
            if v >= 3 {
                req.group_instance_id = Some(s("i"));
            }
            same(req, v, decode);
        }
    }
}

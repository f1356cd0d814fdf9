//! FindCoordinator (key 10, v0-3): which SPU coordinates a consumer group
//! (the leader of the group's offsets partition). Transaction coordinators
//! (key type 1) are not supported.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::reader::{Reader, Result};
use super::Context;

const KEY_TYPE_GROUP: i8 = 0;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<FindCoordinatorRequest> {
    r.set_flexible(v >= 3);
    let mut req = FindCoordinatorRequest::default().with_key(r.string()?);
    if v >= 1 {
        req.key_type = r.i8()?;
    }
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(ctx: &Context, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let resp = FindCoordinatorResponse::default()
        .with_node_id(BrokerId(-1))
        .with_port(-1);
    if req.key_type != KEY_TYPE_GROUP {
        return resp
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "only group coordinators (key type 0): Rill has no transactions",
            )));
    }
    match ctx.groups.find(ctx, req.key.as_str()).await {
        Ok((node, host, port)) => resp
            .with_node_id(BrokerId(node))
            .with_host(StrBytes::from_string(host))
            .with_port(port),
        Err(e) => resp.with_error_code(e.code()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=3 {
            let mut req = FindCoordinatorRequest::default().with_key(s("group-ü"));
            if v >= 1 {
                req.key_type = 1;
            }
            same(req, v, decode);
        }
    }
}

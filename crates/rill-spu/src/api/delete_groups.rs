//! DeleteGroups (key 42, v0-2): removes groups without members and their
//! committed offsets (tombstones in the offsets log).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};

use super::reader::{Reader, Result};
use super::Context;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<DeleteGroupsRequest> {
    r.set_flexible(v >= 2);
    let mut req =
        DeleteGroupsRequest::default().with_groups_names(r.array(|r| Ok(GroupId(r.string()?)))?);
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(ctx: &Context, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in req.groups_names {
        let error = ctx.groups.delete(ctx, id.as_str()).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(error.map_or(0, |e| e.code())),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=2 {
            let req = DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(s("a")), GroupId(s("b-ü"))]);
            same(req, v, decode);
        }
    }
}

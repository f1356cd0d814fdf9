//! ListGroups (key 16, v0-4): the groups this SPU coordinates (with
//! members or committed offsets); v4 filters by state.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::reader::{Reader, Result};
use super::Context;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<ListGroupsRequest> {
    r.set_flexible(v >= 3);
    let mut req = ListGroupsRequest::default();
    if v >= 4 {
        req.states_filter = r.array(|r| r.string())?;
    }
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(ctx: &Context, req: ListGroupsRequest) -> ListGroupsResponse {
    let wanted = |state: &str| {
        req.states_filter.is_empty()
            || req
                .states_filter
                .iter()
                .any(|f| f.as_str().eq_ignore_ascii_case(state))
    };
    let groups = ctx
        .groups
        .list(ctx)
        .await
        .into_iter()
        .filter(|(_, _, state)| wanted(state))
        .map(|(id, ty, state)| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(id)))
                .with_protocol_type(StrBytes::from_string(ty))
                .with_group_state(StrBytes::from_static_str(state))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=4 {
            let mut req = ListGroupsRequest::default();
            if v >= 4 {
                req.states_filter = vec![s("Stable"), s("Empty")];
            }
            same(req, v, decode);
        }
    }
}

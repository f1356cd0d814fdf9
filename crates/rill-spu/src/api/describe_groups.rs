//! DescribeGroups (key 15, v0-5): state, protocol and members (with their
//! metadata and assignment) of each group.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;

use super::reader::{Reader, Result};
use super::Context;

/// Kafka's "authorized operations not requested".
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<DescribeGroupsRequest> {
    r.set_flexible(v >= 5);
    let mut req =
        DescribeGroupsRequest::default().with_groups(r.array(|r| Ok(GroupId(r.string()?)))?);
    if v >= 3 {
        req.include_authorized_operations = r.bool()?;
    }
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) async fn handle(ctx: &Context, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let s = StrBytes::from_string;
    let mut groups = Vec::with_capacity(req.groups.len());
    for id in req.groups {
        let out = DescribedGroup::default()
            .with_group_id(id.clone())
            .with_authorized_operations(OPERATIONS_OMITTED);
        groups.push(match ctx.groups.describe(ctx, id.as_str()).await {
            Err(e) => out
                .with_error_code(e.code())
                .with_group_state(StrBytes::from_static_str("Dead")),
            Ok(d) => out
                .with_group_state(StrBytes::from_static_str(d.state))
                .with_protocol_type(s(d.protocol_type))
                .with_protocol_data(s(d.protocol))
                .with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(s(m.member_id))
                                .with_group_instance_id(m.instance_id.map(s))
                                .with_client_id(s(m.client_id))
                                .with_client_host(s(m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment)
                        })
                        .collect(),
                ),
        });
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=5 {
            let mut req = DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(s("a")), GroupId(s("b"))]);
            if v >= 3 {
                req.include_authorized_operations = true;
            }
            same(req, v, decode);
        }
    }
}

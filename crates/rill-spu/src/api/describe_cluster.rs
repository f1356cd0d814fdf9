//! DescribeCluster (key 60): the SPUs and the controller, as an admin
//! client (Kafka's `AdminClient.describeCluster`) asks for them. A single
//! SPU describes itself.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::metadata::{admin_target, cluster_brokers, CLUSTER_ID, CLUSTER_ID_MULTI};
use super::reader::{Reader, Result};
use super::Context;

/// Kafka's "authorized operations not requested".
const OPERATIONS_OMITTED: i32 = i32::MIN;
/// The only endpoint type Rill has: brokers (`1`).
const ENDPOINT_BROKERS: i8 = 1;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<DescribeClusterRequest> {
    r.set_flexible(true);
    let mut req =
        DescribeClusterRequest::default().with_include_cluster_authorized_operations(r.bool()?);
    req.endpoint_type = if v >= 1 { r.i8()? } else { ENDPOINT_BROKERS };
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(super) fn handle(ctx: &Context, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let resp = DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_BROKERS)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED);
    if req.endpoint_type != ENDPOINT_BROKERS {
        return resp
            .with_error_code(kafka_protocol::error::ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Rill SPUs serve brokers only (endpoint type 1)",
            )));
    }
    let broker = |id: i32, host: String, port: i32| {
        DescribeClusterBroker::default()
            .with_broker_id(BrokerId(id))
            .with_host(StrBytes::from_string(host))
            .with_port(port)
    };
    match ctx.registry.cluster_view() {
        Some(view) => resp
            .with_cluster_id(StrBytes::from_static_str(CLUSTER_ID_MULTI))
            .with_controller_id(BrokerId(admin_target(&view, ctx.registry.config().node_id)))
            .with_brokers(
                cluster_brokers(&view)
                    .into_iter()
                    .map(|(id, host, port)| broker(id, host, port))
                    .collect(),
            ),
        None => {
            let node = ctx.registry.config().node_id;
            let (host, port) = &ctx.advertised;
            resp.with_cluster_id(StrBytes::from_static_str(CLUSTER_ID))
                .with_controller_id(BrokerId(node))
                .with_brokers(vec![broker(node, host.clone(), i32::from(*port))])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::same;

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=1 {
            let mut req =
                DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
            if v >= 1 {
                req.endpoint_type = 2;
            } else {
                req.endpoint_type = ENDPOINT_BROKERS;
            }
            same(req, v, decode);
        }
    }
}

//! The one decode entry for request frames, used by the server and by the
//! fuzz targets alike: API key and version checked against what this SPU
//! implements, then the header, then the body by the API's own module.

use bytes::Bytes;
use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, ApiVersionsRequest, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteGroupsRequest, DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest,
    DescribeGroupsRequest, FetchRequest, FindCoordinatorRequest, HeartbeatRequest,
    IncrementalAlterConfigsRequest, InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest, RequestHeader,
    SyncGroupRequest,
};

use super::reader::{DecodeError, Reader};
use super::{
    alter_configs, api_versions, create_partitions, create_topics, delete_groups, delete_topics,
    describe_cluster, describe_configs, describe_groups, fetch, find_coordinator, heartbeat,
    incremental_alter_configs, init_producer_id, join_group, leave_group, list_groups,
    list_offsets, metadata, offset_commit, offset_fetch, offset_for_leader_epoch, produce,
    supported, sync_group,
};

/// A request frame, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub header: RequestHeader,
    pub request: Request,
}

/// The body of every request this SPU implements.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    ApiVersions(ApiVersionsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    DescribeConfigs(DescribeConfigsRequest),
    InitProducerId(InitProducerIdRequest),
    DescribeCluster(DescribeClusterRequest),
    CreatePartitions(CreatePartitionsRequest),
    AlterConfigs(AlterConfigsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    DescribeGroups(DescribeGroupsRequest),
    ListGroups(ListGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
}

impl Request {
    pub fn api_key(&self) -> ApiKey {
        match self {
            Request::Produce(_) => ApiKey::Produce,
            Request::Fetch(_) => ApiKey::Fetch,
            Request::ListOffsets(_) => ApiKey::ListOffsets,
            Request::Metadata(_) => ApiKey::Metadata,
            Request::ApiVersions(_) => ApiKey::ApiVersions,
            Request::CreateTopics(_) => ApiKey::CreateTopics,
            Request::DeleteTopics(_) => ApiKey::DeleteTopics,
            Request::DescribeConfigs(_) => ApiKey::DescribeConfigs,
            Request::InitProducerId(_) => ApiKey::InitProducerId,
            Request::DescribeCluster(_) => ApiKey::DescribeCluster,
            Request::CreatePartitions(_) => ApiKey::CreatePartitions,
            Request::AlterConfigs(_) => ApiKey::AlterConfigs,
            Request::IncrementalAlterConfigs(_) => ApiKey::IncrementalAlterConfigs,
            Request::OffsetForLeaderEpoch(_) => ApiKey::OffsetForLeaderEpoch,
            Request::FindCoordinator(_) => ApiKey::FindCoordinator,
            Request::JoinGroup(_) => ApiKey::JoinGroup,
            Request::SyncGroup(_) => ApiKey::SyncGroup,
            Request::Heartbeat(_) => ApiKey::Heartbeat,
            Request::LeaveGroup(_) => ApiKey::LeaveGroup,
            Request::OffsetCommit(_) => ApiKey::OffsetCommit,
            Request::OffsetFetch(_) => ApiKey::OffsetFetch,
            Request::DescribeGroups(_) => ApiKey::DescribeGroups,
            Request::ListGroups(_) => ApiKey::ListGroups,
            Request::DeleteGroups(_) => ApiKey::DeleteGroups,
        }
    }
}

/// Why a frame is not a request this SPU can handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Fewer than the 4 bytes of API key and version.
    #[error("request of {len} bytes has no header")]
    NoHeader { len: usize },
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A known API this SPU does not implement, or not at this version.
    /// `correlation_id` is there when the frame has one, so an ApiVersions
    /// request can still be answered (with v0 and `UNSUPPORTED_VERSION`).
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
        correlation_id: Option<i32>,
    },
    #[error("malformed {api:?} v{version} request header: {source}")]
    MalformedHeader {
        api: ApiKey,
        version: i16,
        source: DecodeError,
    },
    #[error("malformed {api:?} v{version} request: {source}")]
    Malformed {
        api: ApiKey,
        version: i16,
        source: DecodeError,
    },
}

fn peek_i16(frame: &[u8], at: usize) -> Option<i16> {
    let b = frame.get(at..at + 2)?;
    Some(i16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

fn peek_i32(frame: &[u8], at: usize) -> Option<i32> {
    let b: [u8; 4] = frame.get(at..at + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(b))
}

/// The API and version of a supported request, or why it is not one.
fn check(key: i16, version: i16, frame: &[u8]) -> Result<ApiKey, RequestError> {
    let api = ApiKey::try_from(key).map_err(|_| RequestError::UnknownApiKey(key))?;
    if !supported(key, version) {
        return Err(RequestError::UnsupportedVersion {
            api,
            version,
            // Right after key and version in every header version.
            correlation_id: peek_i32(frame, 4),
        });
    }
    Ok(api)
}

/// Decodes one request frame (without its size prefix). Bytes after the
/// body are ignored, as Kafka does.
pub fn decode(frame: Bytes) -> Result<Decoded, RequestError> {
    let (Some(key), Some(version)) = (peek_i16(&frame, 0), peek_i16(&frame, 2)) else {
        return Err(RequestError::NoHeader { len: frame.len() });
    };
    let api = check(key, version, &frame)?;
    let mut r = Reader::new(frame);
    let header = header(&mut r, api.request_header_version(version)).map_err(|source| {
        RequestError::MalformedHeader {
            api,
            version,
            source,
        }
    })?;
    let request = body(&mut r, api, version)?;
    Ok(Decoded { header, request })
}

/// Decodes `body` as version `version` of API `key`, without a header, so
/// a fuzzer reaches every request decoder directly.
pub fn decode_body(key: i16, version: i16, body: Bytes) -> Result<Request, RequestError> {
    let api = check(key, version, &[])?;
    self::body(&mut Reader::new(body), api, version)
}

/// The request header (v1 or v2); the reader becomes flexible for v2.
fn header(r: &mut Reader, header_version: i16) -> Result<RequestHeader, DecodeError> {
    let key = r.i16()?;
    let version = r.i16()?;
    let cid = r.i32()?;
    // The client id keeps its classic i16 length even in header v2.
    let client_id = if header_version >= 1 {
        r.nullable_string()?
    } else {
        None
    };
    let mut h = RequestHeader::default()
        .with_request_api_key(key)
        .with_request_api_version(version)
        .with_correlation_id(cid)
        .with_client_id(client_id);
    if header_version >= 2 {
        r.set_flexible(true);
        h.unknown_tagged_fields = r.no_known_tags()?;
    }
    Ok(h)
}

fn body(r: &mut Reader, api: ApiKey, v: i16) -> Result<Request, RequestError> {
    let request = match api {
        ApiKey::Produce => produce::decode(r, v).map(Request::Produce),
        ApiKey::Fetch => fetch::decode(r, v).map(Request::Fetch),
        ApiKey::ListOffsets => list_offsets::decode(r, v).map(Request::ListOffsets),
        ApiKey::Metadata => metadata::decode(r, v).map(Request::Metadata),
        ApiKey::ApiVersions => api_versions::decode(r, v).map(Request::ApiVersions),
        ApiKey::CreateTopics => create_topics::decode(r, v).map(Request::CreateTopics),
        ApiKey::DeleteTopics => delete_topics::decode(r, v).map(Request::DeleteTopics),
        ApiKey::DescribeConfigs => describe_configs::decode(r, v).map(Request::DescribeConfigs),
        ApiKey::InitProducerId => init_producer_id::decode(r, v).map(Request::InitProducerId),
        ApiKey::DescribeCluster => describe_cluster::decode(r, v).map(Request::DescribeCluster),
        ApiKey::CreatePartitions => create_partitions::decode(r, v).map(Request::CreatePartitions),
        ApiKey::AlterConfigs => alter_configs::decode(r, v).map(Request::AlterConfigs),
        ApiKey::IncrementalAlterConfigs => {
            incremental_alter_configs::decode(r, v).map(Request::IncrementalAlterConfigs)
        }
        ApiKey::OffsetForLeaderEpoch => {
            offset_for_leader_epoch::decode(r, v).map(Request::OffsetForLeaderEpoch)
        }
        ApiKey::FindCoordinator => find_coordinator::decode(r, v).map(Request::FindCoordinator),
        ApiKey::JoinGroup => join_group::decode(r, v).map(Request::JoinGroup),
        ApiKey::SyncGroup => sync_group::decode(r, v).map(Request::SyncGroup),
        ApiKey::Heartbeat => heartbeat::decode(r, v).map(Request::Heartbeat),
        ApiKey::LeaveGroup => leave_group::decode(r, v).map(Request::LeaveGroup),
        ApiKey::OffsetCommit => offset_commit::decode(r, v).map(Request::OffsetCommit),
        ApiKey::OffsetFetch => offset_fetch::decode(r, v).map(Request::OffsetFetch),
        ApiKey::DescribeGroups => describe_groups::decode(r, v).map(Request::DescribeGroups),
        ApiKey::ListGroups => list_groups::decode(r, v).map(Request::ListGroups),
        ApiKey::DeleteGroups => delete_groups::decode(r, v).map(Request::DeleteGroups),
        // `supported` lists only the APIs above.
        _ => {
            return Err(RequestError::UnsupportedVersion {
                api,
                version: v,
                correlation_id: None,
            })
        }
    };
    request.map_err(|source| RequestError::Malformed {
        api,
        version: v,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::s;
    use crate::api::SUPPORTED_APIS;
    use bytes::BytesMut;
    use kafka_protocol::protocol::Encodable;
    use proptest::prelude::*;

    fn frame<M: Encodable>(api: ApiKey, v: i16, cid: i32, body: &M) -> Bytes {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(v)
            .with_correlation_id(cid)
            .with_client_id(Some(s("client-ü")))
            .encode(&mut buf, api.request_header_version(v))
            .unwrap();
        body.encode(&mut buf, v).unwrap();
        buf.freeze()
    }

    #[test]
    fn headers_match_kafka_protocol() {
        for hv in [1i16, 2] {
            let h = RequestHeader::default()
                .with_request_api_key(3)
                .with_request_api_version(12)
                .with_correlation_id(77)
                .with_client_id(Some(s("client-ü")));
            let mut buf = BytesMut::new();
            h.encode(&mut buf, hv).unwrap();
            let mut r = Reader::new(buf.freeze());
            assert_eq!(header(&mut r, hv).unwrap(), h);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn whole_frames_decode_to_their_request() {
        for v in [0i16, 9, 12] {
            let req = MetadataRequest::default().with_topics(Some(vec![]));
            let d = decode(frame(ApiKey::Metadata, v, 5, &req)).unwrap();
            assert_eq!(d.header.correlation_id, 5);
            assert_eq!(d.header.request_api_version, v);
            assert_eq!(d.header.client_id.as_deref(), Some("client-ü"));
            assert_eq!(d.request, Request::Metadata(req));
            assert_eq!(d.request.api_key(), ApiKey::Metadata);
        }
        let req = ApiVersionsRequest::default()
            .with_client_software_name(s("rill"))
            .with_client_software_version(s("1"));
        let d = decode(frame(ApiKey::ApiVersions, 3, 9, &req)).unwrap();
        assert_eq!(d.request, Request::ApiVersions(req));
    }

    #[test]
    fn refusals_are_typed() {
        assert_eq!(
            decode(Bytes::from_static(&[0, 3, 0])),
            Err(RequestError::NoHeader { len: 3 })
        );
        assert_eq!(
            decode(Bytes::from_static(&[0x7f, 0, 0, 0])),
            Err(RequestError::UnknownApiKey(0x7f00))
        );
        // ApiVersions v99 with correlation id 7: answerable.
        assert_eq!(
            decode(Bytes::from_static(&[0, 18, 0, 99, 0, 0, 0, 7])),
            Err(RequestError::UnsupportedVersion {
                api: ApiKey::ApiVersions,
                version: 99,
                correlation_id: Some(7)
            })
        );
        // AddPartitionsToTxn is known but not implemented.
        assert!(matches!(
            decode(Bytes::from_static(&[0, 24, 0, 1, 0, 0, 0, 1])),
            Err(RequestError::UnsupportedVersion {
                api: ApiKey::AddPartitionsToTxn,
                ..
            })
        ));
        // Metadata v1 header cut inside the client id.
        assert_eq!(
            decode(Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 9, b'a'])),
            Err(RequestError::MalformedHeader {
                api: ApiKey::Metadata,
                version: 1,
                source: DecodeError::Truncated { needed: 9, left: 1 }
            })
        );
        // Metadata v1 whose body claims 2^31 - 1 topics.
        let bad = decode(Bytes::from_static(&[
            0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
        ]));
        assert_eq!(
            bad,
            Err(RequestError::Malformed {
                api: ApiKey::Metadata,
                version: 1,
                source: DecodeError::ArrayTooLong {
                    count: i32::MAX as u64,
                    left: 0
                }
            })
        );
        assert_eq!(
            bad.unwrap_err().to_string(),
            "malformed Metadata v1 request: array claims 2147483647 elements with 0 bytes left"
        );
        assert!(matches!(
            decode_body(18, 4, Bytes::new()),
            Err(RequestError::UnsupportedVersion { .. })
        ));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), pick in 0usize..64, v in 0i16..13) {
            let bytes = Bytes::from(data);
            let _ = decode(bytes.clone());
            let _ = header(&mut Reader::new(bytes.clone()), 2);
            let (key, min, max) = SUPPORTED_APIS[pick % SUPPORTED_APIS.len()];
            let _ = decode_body(key, v.clamp(min, max), bytes);
        }
    }
}

//! The Kafka APIs. Each API is one module that owns its decoder (over the
//! bounded [`reader::Reader`]) and its handler; [`request::decode`] is the
//! one decode entry, shared with the fuzz targets; [`handle`] dispatches a
//! decoded request to its handler and encodes the response.

pub(crate) mod alter_configs;
pub(crate) mod api_versions;
pub(crate) mod create_partitions;
pub(crate) mod create_topics;
pub(crate) mod delete_groups;
pub(crate) mod delete_topics;
pub(crate) mod describe_cluster;
pub(crate) mod describe_configs;
pub(crate) mod describe_groups;
pub(crate) mod fetch;
pub(crate) mod fetch_frame;
pub(crate) mod find_coordinator;
pub(crate) mod heartbeat;
pub(crate) mod incremental_alter_configs;
pub(crate) mod init_producer_id;
pub(crate) mod join_group;
pub(crate) mod leave_group;
pub(crate) mod list_groups;
pub(crate) mod list_offsets;
pub(crate) mod metadata;
pub(crate) mod offset_commit;
pub(crate) mod offset_fetch;
pub(crate) mod offset_for_leader_epoch;
pub(crate) mod produce;
pub(crate) mod reader;
pub(crate) mod request;
pub(crate) mod sync_group;

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use rill_protocol::BatchError;
use rill_storage::StorageError;

use self::request::{Decoded, Request, RequestError};
use crate::registry::{LogAccess, Registry};

/// `(api key, lowest version, highest version)` of every API this SPU
/// implements; ApiVersions advertises exactly this.
pub const SUPPORTED_APIS: &[(i16, i16, i16)] = &[
    (0, 3, 9),  // Produce
    (1, 4, 12), // Fetch
    (2, 1, 7),  // ListOffsets
    (3, 0, 12), // Metadata
    (8, 2, 8),  // OffsetCommit
    (9, 1, 7),  // OffsetFetch
    (10, 0, 3), // FindCoordinator (groups)
    (11, 0, 7), // JoinGroup
    (12, 0, 4), // Heartbeat
    (13, 0, 4), // LeaveGroup
    (14, 0, 5), // SyncGroup
    (15, 0, 5), // DescribeGroups
    (16, 0, 4), // ListGroups
    (18, 0, 3), // ApiVersions
    (19, 2, 7), // CreateTopics
    (20, 1, 6), // DeleteTopics
    (22, 0, 4), // InitProducerId (idempotent producers; no transactions)
    (23, 2, 4), // OffsetForLeaderEpoch (followers; consumers' position checks)
    (32, 1, 4), // DescribeConfigs
    (33, 0, 2), // AlterConfigs (topics)
    (37, 0, 3), // CreatePartitions
    (42, 0, 2), // DeleteGroups
    (44, 0, 1), // IncrementalAlterConfigs (topics)
    (60, 0, 1), // DescribeCluster
];

pub(crate) fn supported(key: i16, version: i16) -> bool {
    SUPPORTED_APIS
        .iter()
        .any(|&(k, min, max)| k == key && (min..=max).contains(&version))
}

/// The Kafka error code for a refused append or a failed read.
pub(crate) fn storage_error_code(e: &StorageError) -> i16 {
    let error = match e {
        StorageError::InvalidBatch(BatchError::TooLarge { .. }) => ResponseError::MessageTooLarge,
        StorageError::InvalidBatch(_) | StorageError::EmptyAppend => ResponseError::CorruptMessage,
        StorageError::Config(_) => ResponseError::InvalidRequest,
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        _ => ResponseError::KafkaStorageError,
    };
    error.code()
}

/// Runs a read of partition logs on the async thread when every log it
/// needs is free (`read(LogAccess::Try)` gives `Some`), else on a blocking
/// thread that waits for them: a writer in a slow fsync or a segment roll
/// holds its log's lock, and must not stall a tokio worker through a reader.
pub(crate) async fn read_logs<T, F>(read: F) -> T
where
    T: Send + 'static,
    F: Fn(LogAccess) -> Option<T> + Send + Sync + 'static,
{
    if let Some(done) = read(LogAccess::Try) {
        return done;
    }
    let read = Arc::new(read);
    let blocking = read.clone();
    match tokio::task::spawn_blocking(move || blocking(LogAccess::Wait)).await {
        Ok(Some(done)) => done,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Not reached (a read that waits always ends); read here rather
        // than fail.
        _ => loop {
            if let Some(done) = read(LogAccess::Wait) {
                break done;
            }
        },
    }
}

/// Why a connection is closed after a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CloseReason {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("encoding the {api:?} v{version} response: {source}")]
    Encode {
        api: ApiKey,
        version: i16,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{api:?} v{version} response of {bytes} bytes is too large for a frame")]
    TooLarge {
        api: ApiKey,
        version: i16,
        bytes: usize,
    },
}

/// What the connection does after a request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send this frame (size prefix included).
    Respond(BytesMut),
    /// Send this frame, some of it from segment files (a Fetch).
    RespondPieces(fetch_frame::Pieces),
    /// Say nothing (Produce with acks 0).
    Silent,
    /// Close the connection; the reason is logged.
    Close(CloseReason),
}

/// What handlers share.
#[derive(Debug)]
pub(crate) struct Context {
    pub registry: Arc<Registry>,
    /// Host and port clients are told to connect to.
    pub advertised: (String, u16),
    /// The cluster this SPU is a member of; `None` for a single SPU.
    pub cluster: Option<Arc<crate::cluster::ClusterLink>>,
    /// The group coordinator (consumer groups, committed offsets).
    pub groups: Arc<crate::group::Coordinator>,
}

/// Most bytes a response buffer is given before encoding: the SPU's own
/// cap on a Fetch answer (`max_fetch_bytes` defaults to 55 MiB) plus room.
const MAX_PRESIZED_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A response frame: size, header, body.
fn encode<M: Encodable>(
    api: ApiKey,
    correlation_id: i32,
    header_version: i16,
    version: i16,
    body: &M,
) -> Outcome {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    // Sized once up front: a Fetch answer of a megabyte grown from a small
    // buffer would be copied over a dozen times on the way.
    let size = header
        .compute_size(header_version)
        .and_then(|h| body.compute_size(version).map(|b| h + b))
        .unwrap_or(0);
    let mut buf = BytesMut::with_capacity(4 + size.min(MAX_PRESIZED_RESPONSE_BYTES));
    buf.put_i32(0); // size, filled below
    let encoded = header
        .encode(&mut buf, header_version)
        .and_then(|()| body.encode(&mut buf, version));
    if let Err(e) = encoded {
        return Outcome::Close(CloseReason::Encode {
            api,
            version,
            source: e.into(),
        });
    }
    let bytes = buf.len() - 4;
    let Ok(size) = i32::try_from(bytes) else {
        return Outcome::Close(CloseReason::TooLarge {
            api,
            version,
            bytes,
        });
    };
    if let Some(prefix) = buf.get_mut(..4) {
        prefix.copy_from_slice(&size.to_be_bytes());
    }
    Outcome::Respond(buf)
}

/// A Fetch answer's frame: in pieces when some records stay in their
/// files, else (or when the piece encoder does not write the response)
/// in one buffer.
fn encode_fetch(cid: i32, hv: i16, version: i16, answer: fetch::Answer) -> Outcome {
    let fetch::Answer { mut resp, files } = answer;
    if files.iter().all(Option::is_none) {
        return encode(ApiKey::Fetch, cid, hv, version, &resp);
    }
    if let Some(pieces) = fetch_frame::encode(cid, hv, version, &resp, &files) {
        return Outcome::RespondPieces(pieces);
    }
    let partitions = resp.responses.iter_mut().flat_map(|t| &mut t.partitions);
    for (p, file) in partitions.zip(files) {
        if let Some(slice) = file {
            match slice.read_bytes() {
                Ok(bytes) => p.records = Some(Bytes::from(bytes)),
                Err(e) => {
                    return Outcome::Close(CloseReason::Encode {
                        api: ApiKey::Fetch,
                        version,
                        source: e.into(),
                    })
                }
            }
        }
    }
    encode(ApiKey::Fetch, cid, hv, version, &resp)
}

/// Whether a request frame (without its size prefix) is a Produce: the
/// one request a connection answers later while it reads on.
pub(crate) fn is_produce(frame: &[u8]) -> bool {
    frame.get(..2) == Some(&[0, 0])
}

/// A request begun: answered already, or a Produce whose record sets are
/// with their writers and whose answers are to come.
#[derive(Debug)]
pub(crate) enum Started {
    Done(Outcome),
    Produce(PendingProduce),
}

/// A Produce admitted, with what its response frame needs.
#[derive(Debug)]
pub(crate) struct PendingProduce {
    admitted: produce::Admitted,
    acks: i16,
    correlation_id: i32,
    header_version: i16,
    version: i16,
}

impl PendingProduce {
    /// Hands the request's record sets to their writers.
    async fn admit(
        ctx: &Context,
        req: kafka_protocol::messages::ProduceRequest,
        correlation_id: i32,
        header_version: i16,
        version: i16,
    ) -> Self {
        let acks = req.acks;
        Self {
            admitted: produce::admit(ctx, req).await,
            acks,
            correlation_id,
            header_version,
            version,
        }
    }

    /// Whether [`Self::finish`] would return at once (see
    /// [`produce::Admitted::is_answered`]).
    pub(crate) fn is_answered(&self) -> bool {
        self.admitted.is_answered()
    }

    /// Waits for the writers' (and for acks=all the replicas') answers and
    /// encodes the response; acks=0 gets none.
    pub(crate) async fn finish(self, ctx: &Context) -> Outcome {
        let resp = self.admitted.finish(ctx).await;
        if self.acks == 0 {
            return Outcome::Silent;
        }
        encode(
            ApiKey::Produce,
            self.correlation_id,
            self.header_version,
            self.version,
            &resp,
        )
    }
}

/// Handles one request frame (without its size prefix).
pub(crate) async fn handle(ctx: &Context, frame: Bytes) -> Outcome {
    match start(ctx, frame).await {
        Started::Done(outcome) => outcome,
        Started::Produce(pending) => pending.finish(ctx).await,
    }
}

/// Begins one request frame (without its size prefix): a Produce is
/// admitted and left to finish, anything else is answered.
pub(crate) async fn start(ctx: &Context, frame: Bytes) -> Started {
    let Decoded { header, request } = match request::decode(frame) {
        Ok(decoded) => decoded,
        Err(RequestError::UnsupportedVersion {
            api: ApiKey::ApiVersions,
            correlation_id: Some(cid),
            ..
        }) => {
            // Kafka answers an ApiVersions it cannot parse with a v0 body
            // that lists what it supports, so the client can retry with a
            // version that works.
            let body = api_versions::handle(Some(ResponseError::UnsupportedVersion));
            return Started::Done(encode(ApiKey::ApiVersions, cid, 0, 0, &body));
        }
        Err(e) => return Started::Done(Outcome::Close(e.into())),
    };
    let api = request.api_key();
    let version = header.request_api_version;
    let cid = header.correlation_id;
    tracing::trace!(?api, version, cid, client = ?header.client_id, "request");
    let hv = api.response_header_version(version);
    match request {
        Request::Produce(req) => {
            Started::Produce(PendingProduce::admit(ctx, req, cid, hv, version).await)
        }
        other => Started::Done(answer(ctx, api, cid, hv, version, other, &header).await),
    }
}

/// Answers a decoded request (a Produce whole; [`start`] begins one instead).
async fn answer(
    ctx: &Context,
    api: ApiKey,
    cid: i32,
    hv: i16,
    version: i16,
    request: Request,
    header: &kafka_protocol::messages::RequestHeader,
) -> Outcome {
    match request {
        // The ApiVersions response header is always v0.
        Request::ApiVersions(_) => encode(api, cid, 0, version, &api_versions::handle(None)),
        Request::Metadata(req) => {
            let resp = metadata::handle(ctx, req, version).await;
            encode(api, cid, hv, version, &resp)
        }
        // `start` begins a Produce itself; answered whole here all the same.
        Request::Produce(req) => {
            PendingProduce::admit(ctx, req, cid, hv, version)
                .await
                .finish(ctx)
                .await
        }
        Request::Fetch(req) => {
            let answer = fetch::handle(ctx, req).await;
            encode_fetch(cid, hv, version, answer)
        }
        Request::ListOffsets(req) => {
            let resp = list_offsets::handle(ctx, req, version).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::CreateTopics(req) => {
            let resp = create_topics::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::DeleteTopics(req) => {
            let resp = delete_topics::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::DescribeConfigs(req) => {
            let resp = describe_configs::handle(ctx, req);
            encode(api, cid, hv, version, &resp)
        }
        Request::DescribeCluster(req) => {
            let resp = describe_cluster::handle(ctx, req);
            encode(api, cid, hv, version, &resp)
        }
        Request::InitProducerId(req) => {
            let resp = init_producer_id::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::CreatePartitions(req) => {
            let resp = create_partitions::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::AlterConfigs(req) => {
            let resp = alter_configs::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::FindCoordinator(req) => {
            let resp = find_coordinator::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::JoinGroup(req) => {
            let client = header.client_id.as_ref().map(|c| c.as_str());
            let resp = join_group::handle(ctx, req, version, client).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::SyncGroup(req) => {
            let resp = sync_group::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::Heartbeat(req) => {
            let resp = heartbeat::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::LeaveGroup(req) => {
            let resp = leave_group::handle(ctx, req, version).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::OffsetCommit(req) => {
            let resp = offset_commit::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::OffsetFetch(req) => {
            let resp = offset_fetch::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::DescribeGroups(req) => {
            let resp = describe_groups::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::ListGroups(req) => {
            let resp = list_groups::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::DeleteGroups(req) => {
            let resp = delete_groups::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::IncrementalAlterConfigs(req) => {
            let resp = incremental_alter_configs::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
        Request::OffsetForLeaderEpoch(req) => {
            let resp = offset_for_leader_epoch::handle(ctx, req).await;
            encode(api, cid, hv, version, &resp)
        }
    }
}

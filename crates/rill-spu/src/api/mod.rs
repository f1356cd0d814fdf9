//! Request dispatch: decode the header, check the version against what this
//! SPU implements, run the handler, encode the response.

mod admin;
pub(crate) mod decode;
mod fetch;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod produce;
mod versions;

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use self::decode::Reader;

use crate::registry::Registry;

/// `(api key, lowest version, highest version)` of every API this SPU
/// implements; ApiVersions advertises exactly this.
pub const SUPPORTED_APIS: &[(i16, i16, i16)] = &[
    (0, 3, 9),  // Produce
    (1, 4, 12), // Fetch
    (2, 1, 7),  // ListOffsets
    (3, 0, 12), // Metadata
    (18, 0, 3), // ApiVersions
    (19, 2, 7), // CreateTopics
    (20, 1, 6), // DeleteTopics
    (22, 0, 4), // InitProducerId (idempotent producers; no transactions)
    (32, 1, 4), // DescribeConfigs
];

pub(crate) fn supported(key: i16, version: i16) -> bool {
    SUPPORTED_APIS
        .iter()
        .any(|&(k, min, max)| k == key && (min..=max).contains(&version))
}

/// What the connection does after a request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send this frame (size prefix included).
    Respond(BytesMut),
    /// Say nothing (Produce with acks 0).
    Silent,
    /// Close the connection; the reason is logged.
    Close(String),
}

/// What handlers share.
#[derive(Debug)]
pub(crate) struct Context {
    pub registry: Arc<Registry>,
    /// Host and port clients are told to connect to.
    pub advertised: (String, u16),
}

fn encode<M: Encodable>(
    correlation_id: i32,
    header_version: i16,
    version: i16,
    body: &M,
) -> Result<BytesMut, String> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0); // size, filled below
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| format!("encoding response header: {e}"))?;
    body.encode(&mut buf, version)
        .map_err(|e| format!("encoding response: {e}"))?;
    let size = i32::try_from(buf.len() - 4).map_err(|_| "response too large".to_string())?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}

/// Handles one request frame (without its size prefix).
pub(crate) async fn handle(ctx: &Context, mut frame: Bytes) -> Outcome {
    match handle_inner(ctx, &mut frame).await {
        Ok(outcome) => outcome,
        Err(reason) => Outcome::Close(reason),
    }
}

async fn handle_inner(ctx: &Context, buf: &mut Bytes) -> Result<Outcome, String> {
    let frame = buf.clone();
    // The header decoder peeks at these bytes without checking the length.
    let (Some(key), Some(version)) = (
        buf.get(0..2).map(|b| i16::from_be_bytes([b[0], b[1]])),
        buf.get(2..4).map(|b| i16::from_be_bytes([b[0], b[1]])),
    ) else {
        return Err(format!("request of {} bytes has no header", buf.len()));
    };
    let api = ApiKey::try_from(key).map_err(|_| format!("unknown API key {key}"))?;
    let header_version = api.request_header_version(version);
    if api == ApiKey::ApiVersions && !supported(key, version) {
        // Kafka answers an ApiVersions it cannot parse with a v0 body that
        // lists what it supports, so the client can retry with a version
        // that works. The correlation id sits right after key and version.
        let correlation_id = buf
            .get(4..8)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or("ApiVersions request without a correlation id")?;
        let body = versions::response(Some(ResponseError::UnsupportedVersion));
        return encode(correlation_id, 0, 0, &body).map(Outcome::Respond);
    }
    if !supported(key, version) {
        return Err(format!("unsupported version {version} of {api:?}"));
    }
    let mut r = Reader::new(frame);
    let header = decode::header(&mut r, header_version)
        .map_err(|e| format!("malformed request header: {e}"))?;
    let bad = |e: String| format!("malformed {api:?} v{version} request: {e}");
    let cid = header.correlation_id;
    tracing::trace!(?api, version, cid, client = ?header.client_id, "request");
    let resp_header_version = api.response_header_version(version);
    let out = match api {
        ApiKey::ApiVersions => {
            let _req = decode::api_versions(&mut r, version).map_err(bad)?;
            // The ApiVersions response header is always v0.
            encode(cid, 0, version, &versions::response(None))
        }
        ApiKey::Metadata => {
            let req = decode::metadata(&mut r, version).map_err(bad)?;
            let resp = metadata::handle(ctx, req, version);
            encode(cid, resp_header_version, version, &resp)
        }
        ApiKey::Produce => {
            let req = decode::produce(&mut r, version).map_err(bad)?;
            let acks = req.acks;
            let resp = produce::handle(ctx, req);
            if acks == 0 {
                return Ok(Outcome::Silent);
            }
            encode(cid, resp_header_version, version, &resp)
        }
        ApiKey::Fetch => {
            let req = decode::fetch(&mut r, version).map_err(bad)?;
            let resp = fetch::handle(ctx, req).await;
            encode(cid, resp_header_version, version, &resp)
        }
        ApiKey::ListOffsets => {
            let req = decode::list_offsets(&mut r, version).map_err(bad)?;
            let resp = list_offsets::handle(ctx, req, version);
            encode(cid, resp_header_version, version, &resp)
        }
        ApiKey::CreateTopics => {
            let req = decode::create_topics(&mut r, version).map_err(bad)?;
            let resp = admin::create_topics(ctx, req);
            encode(cid, resp_header_version, version, &resp)
        }
        ApiKey::DeleteTopics => {
            let req = decode::delete_topics(&mut r, version).map_err(bad)?;
            let resp = admin::delete_topics(ctx, req);
            encode(cid, resp_header_version, version, &resp)
        }
        ApiKey::DescribeConfigs => {
            let req = decode::describe_configs(&mut r, version).map_err(bad)?;
            let resp = admin::describe_configs(ctx, req);
            encode(cid, resp_header_version, version, &resp)
        }
        ApiKey::InitProducerId => {
            let req = decode::init_producer_id(&mut r, version).map_err(bad)?;
            let resp = init_producer_id::handle(ctx, req);
            encode(cid, resp_header_version, version, &resp)
        }
        other => return Err(format!("{other:?} is not implemented")),
    };
    out.map(Outcome::Respond)
}

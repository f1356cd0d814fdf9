//! Entry points for the fuzz targets in `fuzz/` and the tests that replay
//! their corpus. Not part of the SPU's API: hidden from the docs and free
//! to change.

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use crate::api::decode::{self, Reader};
use crate::api::supported;

/// Decodes one request frame (without its size prefix) as the SPU does
/// before handling it: API key and version checked against what this SPU
/// implements, then the header, then the body. Returns the API key of a
/// request that decodes; an `Err` is what closes the connection.
pub fn decode_request(frame: Bytes) -> Result<i16, String> {
    let (Some(key), Some(version)) = (
        frame.get(0..2).map(|b| i16::from_be_bytes([b[0], b[1]])),
        frame.get(2..4).map(|b| i16::from_be_bytes([b[0], b[1]])),
    ) else {
        return Err("no header".into());
    };
    if !supported(key, version) {
        return Err(format!("unsupported API {key} v{version}"));
    }
    let api = ApiKey::try_from(key).map_err(|_| format!("unknown API key {key}"))?;
    let mut r = Reader::new(frame);
    let header = decode::header(&mut r, api.request_header_version(version))?;
    if header.request_api_key != key || header.request_api_version != version {
        return Err("header disagrees with the peeked key and version".into());
    }
    decode_body_with(&mut r, key, version)?;
    Ok(key)
}

/// Decodes `body` as version `version` of API `key`, without a header, so a
/// fuzzer reaches every request decoder directly. Unsupported `(key,
/// version)` pairs are an `Err`.
pub fn decode_body(key: i16, version: i16, body: Bytes) -> Result<(), String> {
    if !supported(key, version) {
        return Err(format!("unsupported API {key} v{version}"));
    }
    decode_body_with(&mut Reader::new(body), key, version)
}

fn decode_body_with(r: &mut Reader, key: i16, v: i16) -> Result<(), String> {
    let api = ApiKey::try_from(key).map_err(|_| format!("unknown API key {key}"))?;
    match api {
        ApiKey::ApiVersions => decode::api_versions(r, v).map(drop),
        ApiKey::Metadata => decode::metadata(r, v).map(drop),
        ApiKey::Produce => decode::produce(r, v).map(drop),
        ApiKey::Fetch => decode::fetch(r, v).map(drop),
        ApiKey::ListOffsets => decode::list_offsets(r, v).map(drop),
        ApiKey::CreateTopics => decode::create_topics(r, v).map(drop),
        ApiKey::DeleteTopics => decode::delete_topics(r, v).map(drop),
        ApiKey::DescribeConfigs => decode::describe_configs(r, v).map(drop),
        ApiKey::InitProducerId => decode::init_producer_id(r, v).map(drop),
        other => Err(format!("{other:?} has no decoder")),
    }
}

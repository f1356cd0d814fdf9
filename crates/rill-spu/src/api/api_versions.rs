//! ApiVersions (key 18): what this SPU implements, exactly.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::reader::{Reader, Result};
use super::SUPPORTED_APIS;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<ApiVersionsRequest> {
    r.set_flexible(v >= 3);
    let mut req = ApiVersionsRequest::default();
    if v >= 3 {
        req.client_software_name = r.string()?;
        req.client_software_version = r.string()?;
        req.unknown_tagged_fields = r.no_known_tags()?;
    }
    Ok(req)
}

/// The answer to every ApiVersions: `error` is set when the request's
/// version is one this SPU cannot parse (sent as v0, so the client can
/// retry with a version listed here).
pub(super) fn handle(error: Option<ResponseError>) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error.map_or(0, |e| e.code()))
        .with_api_keys(
            SUPPORTED_APIS
                .iter()
                .map(|&(key, min, max)| {
                    ApiVersion::default()
                        .with_api_key(key)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
        .with_finalized_features_epoch(-1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=3 {
            let mut req = ApiVersionsRequest::default();
            if v >= 3 {
                req = req
                    .with_client_software_name(s("librdkafka"))
                    .with_client_software_version(s("2.0.2"));
            }
            same(req, v, decode);
        }
    }
}

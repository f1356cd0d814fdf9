//! InitProducerId (key 22): producer ids for idempotent producers (no
//! transactions).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, TransactionalId,
};

use super::reader::{Reader, Result};
use super::Context;

pub(crate) fn decode(r: &mut Reader, v: i16) -> Result<InitProducerIdRequest> {
    r.set_flexible(v >= 2);
    let mut req = InitProducerIdRequest::default()
        .with_transactional_id(r.nullable_string()?.map(TransactionalId))
        .with_transaction_timeout_ms(r.i32()?);
    if v >= 3 {
        req.producer_id = ProducerId(r.i64()?);
        req.producer_epoch = r.i16()?;
    } else {
        req.producer_id = ProducerId(-1);
        req.producer_epoch = -1;
    }
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

/// A new producer id with epoch 0, or (v3+, an id the client already has)
/// the same id with the next epoch. Transactions are not supported.
pub(super) async fn handle(ctx: &Context, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.as_ref().is_some_and(|t| !t.is_empty()) {
        return resp.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 {
        // Epoch bump: fence the producer's older incarnation.
        if req.producer_epoch == i16::MAX {
            return resp.with_error_code(ResponseError::InvalidProducerEpoch.code());
        }
        return resp
            .with_producer_id(req.producer_id)
            .with_producer_epoch(req.producer_epoch + 1);
    }
    // In a cluster ids come from blocks in the store, unique across SPUs.
    let id = match &ctx.cluster {
        Some(link) => link.new_producer_id().await.map_err(|e| e.to_string()),
        None => {
            let registry = ctx.registry.clone();
            tokio::task::spawn_blocking(move || registry.new_producer_id())
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
        }
    };
    match id {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "could not allocate a producer id");
            resp.with_error_code(ResponseError::KafkaStorageError.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reader::testing::{s, same};

    #[test]
    fn decode_matches_kafka_protocol() {
        for v in 0..=4 {
            let mut req = InitProducerIdRequest::default().with_transaction_timeout_ms(60_000);
            if v >= 3 {
                req.producer_id = ProducerId(42);
                req.producer_epoch = 3;
            } else {
                req.producer_id = ProducerId(-1);
                req.producer_epoch = -1;
            }
            same(req.clone(), v, decode);
            same(
                req.with_transactional_id(Some(TransactionalId(s("tx")))),
                v,
                decode,
            );
        }
    }
}

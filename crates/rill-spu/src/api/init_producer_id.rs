use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::Context;

/// A new producer id with epoch 0, or (v3+, an id the client already has)
/// the same id with the next epoch. Transactions are not supported.
pub(super) fn handle(ctx: &Context, req: InitProducerIdRequest) -> InitProducerIdResponse {
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
    match ctx.registry.new_producer_id() {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "could not allocate a producer id");
            resp.with_error_code(ResponseError::KafkaStorageError.code())
        }
    }
}

//! `RillError` on its way to JavaScript. A napi error carries only a
//! message, so the message is encoded as fields separated by U+0001:
//! class, Kafka code (or empty), Kafka's name for it, retriable, the Rust
//! message. `lib/errors.js` turns it into the `RillError` subclass with
//! `code`, `errorName` and `retriable`.

use napi::Status;
use rill::{ResponseError, RillError};

/// The JavaScript class for `err` (a given-up retry takes its last error's).
fn class_name(err: &RillError) -> &'static str {
    const UNKNOWN_TOPIC: i16 = ResponseError::UnknownTopicOrPartition.code();
    const TOO_LARGE: i16 = ResponseError::MessageTooLarge.code();
    const TIMED_OUT: i16 = ResponseError::RequestTimedOut.code();
    match err {
        RillError::Connect { .. } | RillError::Transport { .. } => "RillConnectionError",
        RillError::TopicNotFound(_) => "TopicNotFoundError",
        RillError::RecordTooLarge { .. } => "RecordTooLargeError",
        RillError::Timeout { .. } => "RillTimeoutError",
        RillError::Config(_) => "ConfigError",
        RillError::ProducerClosed => "ProducerClosedError",
        RillError::RetriesExhausted { last, .. } => class_name(last),
        RillError::Broker { code, .. } => match *code {
            UNKNOWN_TOPIC => "TopicNotFoundError",
            TOO_LARGE => "RecordTooLargeError",
            TIMED_OUT => "RillTimeoutError",
            _ => "BrokerError",
        },
        _ => "RillError",
    }
}

/// The napi error for a client error (see the module's docs).
pub fn to_napi(err: RillError) -> napi::Error {
    let code = err.code();
    let reason = format!(
        "\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}",
        class_name(&err),
        code.map(|c| c.to_string()).unwrap_or_default(),
        code.map(rill::error_name).unwrap_or_default(),
        err.is_retriable(),
        err
    );
    napi::Error::new(Status::GenericFailure, reason)
}

/// A `ConfigError` for a bad argument.
pub fn config_error(message: impl Into<String>) -> napi::Error {
    to_napi(RillError::Config(message.into()))
}

/// `Result<T, RillError>` into `napi::Result<T>`.
pub trait IntoNapiResult<T> {
    /// Maps the error to its encoded napi error.
    fn js(self) -> napi::Result<T>;
}

impl<T> IntoNapiResult<T> for Result<T, RillError> {
    fn js(self) -> napi::Result<T> {
        self.map_err(to_napi)
    }
}

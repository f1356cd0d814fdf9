use std::time::Duration;

/// Why a client operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RillError {
    /// No SPU answered at the address.
    #[error("no SPU answers at {addr}: {reason} (start one with `rill cluster start`)")]
    Connect {
        /// The `host:port` tried.
        addr: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// An established connection broke; the request may or may not have
    /// been served (retriable).
    #[error("connection to {addr} lost: {reason}")]
    Transport {
        /// The SPU's `host:port`.
        addr: String,
        /// What broke.
        reason: String,
    },
    /// The SPU answered with a Kafka error code.
    #[error("{what} failed with Kafka error {code} ({name}){}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The operation.
        what: String,
        /// The Kafka error code.
        code: i16,
        /// Kafka's name for the code.
        name: &'static str,
        /// The SPU's message, if it gave one.
        message: Option<String>,
    },
    /// The SPU does not speak a version of this API the client can use.
    #[error("the SPU does not support {api}")]
    Unsupported {
        /// The API's name.
        api: String,
    },
    /// A setting is out of range or contradicts another.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The record's batch would exceed `max_request_size`; nothing was sent.
    #[error("record of {size} bytes exceeds max_request_size of {max_request_size} bytes")]
    RecordTooLarge {
        /// Bytes of the record as a batch of its own.
        size: usize,
        /// The producer's `max_request_size`.
        max_request_size: usize,
    },
    /// No answer within the time allowed (retriable).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The topic does not exist.
    #[error("topic {0:?} not found")]
    TopicNotFound(String),
    /// The producer was closed before the record's batch was answered.
    #[error("the producer was closed")]
    ProducerClosed,
    /// The SPU's answer could not be decoded.
    #[error("malformed data from the SPU: {0}")]
    Protocol(String),
}

/// The name Kafka gives an error code, for messages.
pub fn error_name(code: i16) -> &'static str {
    match code {
        0 => "NONE",
        1 => "OFFSET_OUT_OF_RANGE",
        2 => "CORRUPT_MESSAGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        10 => "MESSAGE_TOO_LARGE",
        13 => "NETWORK_EXCEPTION",
        17 => "INVALID_TOPIC_EXCEPTION",
        19 => "NOT_ENOUGH_REPLICAS",
        20 => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        21 => "INVALID_REQUIRED_ACKS",
        35 => "UNSUPPORTED_VERSION",
        36 => "TOPIC_ALREADY_EXISTS",
        37 => "INVALID_PARTITIONS",
        38 => "INVALID_REPLICATION_FACTOR",
        40 => "INVALID_CONFIG",
        42 => "INVALID_REQUEST",
        56 => "KAFKA_STORAGE_ERROR",
        87 => "INVALID_RECORD",
        _ => "UNKNOWN",
    }
}

/// Kafka's retriable errors: a produce that failed with one may succeed if
/// sent again.
pub fn is_retriable(code: i16) -> bool {
    matches!(code, 3 | 5 | 6 | 7 | 13 | 19 | 20 | 56)
}

impl RillError {
    pub(crate) fn broker(what: impl Into<String>, code: i16, message: Option<String>) -> Self {
        RillError::Broker {
            what: what.into(),
            code,
            name: error_name(code),
            message,
        }
    }

    /// Whether sending the same request again may work.
    pub fn is_retriable(&self) -> bool {
        match self {
            RillError::Transport { .. } | RillError::Connect { .. } | RillError::Timeout(_) => true,
            RillError::Broker { code, .. } => is_retriable(*code),
            _ => false,
        }
    }
}

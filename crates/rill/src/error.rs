//! The client's one error type. Kafka error codes, their names and whether
//! they are worth retrying come from `kafka-protocol`'s `ResponseError`
//! (Kafka's own table), not from a list kept here.

use std::io;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

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
        /// The I/O error's kind (`Other` when the connection was closed on
        /// purpose, e.g. after a request timed out).
        kind: io::ErrorKind,
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
        /// Kafka's name for the code (`MESSAGE_TOO_LARGE`).
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
    #[error("{what}: no answer within {after:?}")]
    Timeout {
        /// The operation, with its topic and partition where it has one.
        what: String,
        /// The time allowed.
        after: Duration,
    },
    /// The retry policy ran out: every attempt failed, the last with
    /// `last`.
    #[error("{what}: gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// The operation, with its topic and partition.
        what: String,
        /// Attempts made, the first one included.
        attempts: u32,
        /// The last attempt's error.
        last: Box<RillError>,
    },
    /// The topic does not exist.
    #[error("topic {0:?} not found")]
    TopicNotFound(String),
    /// The producer was closed (or dropped and its grace time ran out)
    /// before the record's batch was answered.
    #[error("the producer was closed")]
    ProducerClosed,
    /// Records could not be encoded or compressed here, before anything was
    /// sent (not the SPU's fault, not retriable).
    #[error("could not encode the batch: {0}")]
    Encode(String),
    /// An operation that needs a consumer group without members (offsets
    /// reset) found members in it.
    #[error("group {group:?} has {members} member(s) ({state}): its offsets can be reset only while it is empty; stop its consumers first")]
    GroupNotEmpty {
        /// The group.
        group: String,
        /// How many members it has.
        members: usize,
        /// Its state.
        state: String,
    },
    /// The SPU's answer could not be decoded.
    #[error("malformed data from the SPU: {0}")]
    Protocol(String),
}

/// The name Kafka gives an error code (`MESSAGE_TOO_LARGE`), for messages.
pub fn error_name(code: i16) -> &'static str {
    ResponseError::try_from_code(code).map_or("NONE", |e| screaming_name(e))
}

/// Kafka's retriable errors: a request that failed with one may succeed if
/// sent again.
pub fn is_retriable(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

/// `ResponseError` prints names in CamelCase; Kafka's documentation, its
/// logs and its clients say `MESSAGE_TOO_LARGE`. The names are a fixed set,
/// so each is converted once and kept.
fn screaming_name(e: ResponseError) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashMap<i16, &'static str>>> = OnceLock::new();
    if let ResponseError::Unknown(_) = e {
        return "UNKNOWN";
    }
    let names = NAMES.get_or_init(Default::default);
    let mut names = names.lock().unwrap_or_else(|p| p.into_inner());
    names.entry(e.code()).or_insert_with(|| {
        let camel = e.to_string();
        let mut out = String::with_capacity(camel.len() + 8);
        for (i, c) in camel.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        Box::leak(out.into_boxed_str())
    })
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

    pub(crate) fn transport(addr: &str, kind: io::ErrorKind, reason: impl Into<String>) -> Self {
        RillError::Transport {
            addr: addr.to_owned(),
            kind,
            reason: reason.into(),
        }
    }

    /// The Kafka error code, when the SPU answered with one (also inside
    /// [`RillError::RetriesExhausted`]).
    pub fn code(&self) -> Option<i16> {
        match self {
            RillError::Broker { code, .. } => Some(*code),
            RillError::RetriesExhausted { last, .. } => last.code(),
            _ => None,
        }
    }

    /// Whether sending the same request again may work.
    pub fn is_retriable(&self) -> bool {
        match self {
            RillError::Transport { .. } | RillError::Connect { .. } | RillError::Timeout { .. } => {
                true
            }
            RillError::Broker { code, .. } => is_retriable(*code),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_retriability_come_from_kafkas_table() {
        assert_eq!(error_name(10), "MESSAGE_TOO_LARGE");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(56), "KAFKA_STORAGE_ERROR");
        assert_eq!(error_name(45), "OUT_OF_ORDER_SEQUENCE_NUMBER");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(30_000), "UNKNOWN");
        assert!(is_retriable(6) && is_retriable(7) && is_retriable(19));
        assert!(!is_retriable(10) && !is_retriable(87) && !is_retriable(45));
    }

    #[test]
    fn a_given_up_error_keeps_its_code_and_counts_attempts() {
        let e = RillError::RetriesExhausted {
            what: "producing to t-0".into(),
            attempts: 3,
            last: Box::new(RillError::broker("producing to t-0", 7, None)),
        };
        assert_eq!(e.code(), Some(7));
        assert!(!e.is_retriable(), "the policy gave up");
        let text = e.to_string();
        assert!(
            text.contains("3 attempts") && text.contains("REQUEST_TIMED_OUT"),
            "{text}"
        );
    }
}

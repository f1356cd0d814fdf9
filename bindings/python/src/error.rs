//! `RillError` as Python exceptions. The classes live in `rill/_support.py`
//! (so they can also derive from Python's `ConnectionError`,
//! `TimeoutError` and `ValueError`); each carries the Rust message, `code`
//! (the Kafka error code, or None) and `retriable`.

use pyo3::prelude::*;
use rill::{ResponseError, RillError};

use crate::runtime::support_attr;

/// The Python class for `err` (a given-up retry takes its last error's).
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

/// The Python exception for a client error.
pub fn to_py(err: RillError) -> PyErr {
    Python::with_gil(|py| {
        let build = || -> PyResult<PyErr> {
            let class = support_attr(py, class_name(&err))?;
            let exc = class.call1((err.to_string(),))?;
            exc.setattr("code", err.code())?;
            exc.setattr("retriable", err.is_retriable())?;
            Ok(PyErr::from_value(exc))
        };
        build().unwrap_or_else(|e| e)
    })
}

/// `Result<T, RillError>` into `PyResult<T>`.
pub trait IntoPyResult<T> {
    /// Maps the error to its Python exception.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, RillError> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

//! Producer settings: `TopicProducerConfigBuilder`, `DeliverySemantic`,
//! `RetryPolicy`, `RetryStrategy`, `Isolation`, with the Rust names.

use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt};

use crate::error::IntoPyResult;

/// A duration from Python: a `datetime.timedelta`, or a number of
/// milliseconds.
pub fn duration_arg(obj: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let ms: f64 = if obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>() {
        obj.extract()?
    } else if let Ok(seconds) = obj.call_method0("total_seconds") {
        seconds.extract::<f64>()? * 1000.0
    } else {
        return Err(PyTypeError::new_err(
            "expected a datetime.timedelta or a number of milliseconds",
        ));
    };
    if !ms.is_finite() || ms < 0.0 {
        return Err(PyValueError::new_err(format!(
            "a duration must be finite and not negative, got {ms} ms"
        )));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

/// A `datetime.timedelta` for a duration.
pub fn timedelta(py: Python<'_>, d: Duration) -> PyResult<PyObject> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("microseconds", d.as_micros() as u64)?;
    Ok(py
        .import("datetime")?
        .getattr("timedelta")?
        .call((), Some(&kwargs))?
        .unbind())
}

/// How the delay between retries grows.
#[pyclass(module = "rill", eq, eq_int, frozen, hash)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryStrategy {
    /// `initial_delay` every time.
    #[pyo3(name = "FIXED_DELAY")]
    FixedDelay,
    /// initial, initial, 2x, 3x, 5x, 8x ... capped at `max_delay`.
    #[pyo3(name = "FIBONACCI_BACKOFF")]
    FibonacciBackoff,
    /// initial x 10^(n-1), capped at `max_delay`.
    #[pyo3(name = "EXPONENTIAL_BACKOFF")]
    ExponentialBackoff,
}

impl From<RetryStrategy> for rill::RetryStrategy {
    fn from(s: RetryStrategy) -> Self {
        match s {
            RetryStrategy::FixedDelay => rill::RetryStrategy::FixedDelay,
            RetryStrategy::FibonacciBackoff => rill::RetryStrategy::FibonacciBackoff,
            RetryStrategy::ExponentialBackoff => rill::RetryStrategy::ExponentialBackoff,
        }
    }
}

/// When the SPU acknowledges a batch.
#[pyclass(module = "rill", eq, eq_int, frozen, hash)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// Once the leader has it (Kafka acks 1); the default.
    #[pyo3(name = "READ_UNCOMMITTED")]
    ReadUncommitted,
    /// Once every in-sync replica has it (Kafka acks all).
    #[pyo3(name = "READ_COMMITTED")]
    ReadCommitted,
}

impl From<Isolation> for rill::Isolation {
    fn from(i: Isolation) -> Self {
        match i {
            Isolation::ReadUncommitted => rill::Isolation::ReadUncommitted,
            Isolation::ReadCommitted => rill::Isolation::ReadCommitted,
        }
    }
}

/// At most `max_retries` retries, `strategy` delays between them, all
/// attempts within `timeout`. Durations are `timedelta`s or milliseconds.
#[pyclass(module = "rill", frozen)]
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub inner: rill::RetryPolicy,
}

#[pymethods]
impl RetryPolicy {
    #[new]
    #[pyo3(signature = (max_retries=None, initial_delay=None, max_delay=None, timeout=None, strategy=None))]
    fn new(
        max_retries: Option<usize>,
        initial_delay: Option<&Bound<'_, PyAny>>,
        max_delay: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        strategy: Option<RetryStrategy>,
    ) -> PyResult<Self> {
        let mut p = rill::RetryPolicy::default();
        if let Some(n) = max_retries {
            p.max_retries = n;
        }
        if let Some(d) = initial_delay {
            p.initial_delay = duration_arg(d)?;
        }
        if let Some(d) = max_delay {
            p.max_delay = duration_arg(d)?;
        }
        if let Some(d) = timeout {
            p.timeout = duration_arg(d)?;
        }
        if let Some(s) = strategy {
            p.strategy = s.into();
        }
        Ok(Self { inner: p })
    }

    #[getter]
    fn max_retries(&self) -> usize {
        self.inner.max_retries
    }
    #[getter]
    fn initial_delay(&self, py: Python<'_>) -> PyResult<PyObject> {
        timedelta(py, self.inner.initial_delay)
    }
    #[getter]
    fn max_delay(&self, py: Python<'_>) -> PyResult<PyObject> {
        timedelta(py, self.inner.max_delay)
    }
    #[getter]
    fn timeout(&self, py: Python<'_>) -> PyResult<PyObject> {
        timedelta(py, self.inner.timeout)
    }
    #[getter]
    fn strategy(&self) -> RetryStrategy {
        match self.inner.strategy {
            rill::RetryStrategy::FixedDelay => RetryStrategy::FixedDelay,
            rill::RetryStrategy::FibonacciBackoff => RetryStrategy::FibonacciBackoff,
            _ => RetryStrategy::ExponentialBackoff,
        }
    }

    /// The delay before each retry, in order (`max_retries` of them).
    fn delays(&self, py: Python<'_>) -> PyResult<Vec<PyObject>> {
        self.inner.delays().map(|d| timedelta(py, d)).collect()
    }

    fn __repr__(&self) -> String {
        let p = &self.inner;
        format!(
            "RetryPolicy(max_retries={}, initial_delay={:?}, max_delay={:?}, timeout={:?}, strategy={:?})",
            p.max_retries, p.initial_delay, p.max_delay, p.timeout, p.strategy
        )
    }
}

/// How hard the producer tries to deliver: `DeliverySemantic.at_most_once()`
/// or `DeliverySemantic.at_least_once(RetryPolicy(...))`.
#[pyclass(module = "rill", frozen)]
#[derive(Debug, Clone, Copy)]
pub struct DeliverySemantic {
    pub inner: rill::DeliverySemantic,
}

#[pymethods]
impl DeliverySemantic {
    /// Each batch sent once, no retry; `wait()` still reports the answer.
    #[staticmethod]
    fn at_most_once() -> Self {
        Self {
            inner: rill::DeliverySemantic::AtMostOnce,
        }
    }

    /// Failed batches are sent again per `policy` (the default policy when
    /// None); order within a partition is kept.
    #[staticmethod]
    #[pyo3(signature = (policy=None))]
    fn at_least_once(policy: Option<RetryPolicy>) -> Self {
        Self {
            inner: rill::DeliverySemantic::AtLeastOnce(policy.map(|p| p.inner).unwrap_or_default()),
        }
    }

    fn __repr__(&self) -> String {
        format!("DeliverySemantic.{:?}", self.inner)
    }
}

/// A producer's settings, made by `TopicProducerConfigBuilder.build()`.
#[pyclass(module = "rill", frozen)]
#[derive(Debug, Clone)]
pub struct TopicProducerConfig {
    pub inner: rill::TopicProducerConfig,
}

#[pymethods]
impl TopicProducerConfig {
    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// Builds a `TopicProducerConfig`; each setter returns the builder, and
/// every setting left out has the documented default.
#[pyclass(module = "rill")]
#[derive(Debug, Clone, Default)]
pub struct TopicProducerConfigBuilder {
    inner: rill::TopicProducerConfigBuilder,
}

fn compression(name: &str) -> PyResult<rill::Compression> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "none" => rill::Compression::None,
        "gzip" => rill::Compression::Gzip,
        "snappy" => rill::Compression::Snappy,
        "lz4" => rill::Compression::Lz4,
        "zstd" => rill::Compression::Zstd,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown compression {other:?}: none, gzip, snappy, lz4 or zstd"
            )))
        }
    })
}

type Builder<'py> = PyRefMut<'py, TopicProducerConfigBuilder>;

#[pymethods]
impl TopicProducerConfigBuilder {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Most uncompressed bytes in one batch (16 KiB).
    fn batch_size(mut slf: Builder<'_>, n: usize) -> Builder<'_> {
        slf.inner.batch_size(n);
        slf
    }
    /// How long a batch waits for more records (100 ms): timedelta or ms.
    fn linger<'py>(mut slf: Builder<'py>, d: &Bound<'py, PyAny>) -> PyResult<Builder<'py>> {
        slf.inner.linger(duration_arg(d)?);
        Ok(slf)
    }
    /// "none" (default), "gzip", "snappy", "lz4" or "zstd".
    fn compression<'py>(mut slf: Builder<'py>, name: &str) -> PyResult<Builder<'py>> {
        slf.inner.compression(compression(name)?);
        Ok(slf)
    }
    /// At most once, or at least once with a retry policy (the default).
    fn delivery_semantic(mut slf: Builder<'_>, s: DeliverySemantic) -> Builder<'_> {
        slf.inner.delivery_semantic(s.inner);
        slf
    }
    /// READ_UNCOMMITTED (acks 1, default) or READ_COMMITTED (acks all).
    fn isolation(mut slf: Builder<'_>, i: Isolation) -> Builder<'_> {
        slf.inner.isolation(i.into());
        slf
    }
    /// How long the SPU may wait for the isolation level (1500 ms).
    fn timeout<'py>(mut slf: Builder<'py>, d: &Bound<'py, PyAny>) -> PyResult<Builder<'py>> {
        slf.inner.timeout(duration_arg(d)?);
        Ok(slf)
    }
    /// Largest request; bigger records are refused (1 MiB).
    fn max_request_size(mut slf: Builder<'_>, n: usize) -> Builder<'_> {
        slf.inner.max_request_size(n);
        slf
    }
    /// Bound on bytes waiting in the producer; `send` blocks while it is
    /// full (32 MiB).
    fn buffer_memory(mut slf: Builder<'_>, n: usize) -> Builder<'_> {
        slf.inner.buffer_memory(n);
        slf
    }
    /// Placement of keyless records: "round_robin" (default) or "sticky".
    fn partitioner<'py>(mut slf: Builder<'py>, name: &str) -> PyResult<Builder<'py>> {
        let p = match name {
            "round_robin" | "round-robin" => rill::Partitioner::RoundRobin,
            "sticky" => rill::Partitioner::Sticky,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown partitioner {other:?}: round_robin or sticky"
                )))
            }
        };
        slf.inner.partitioner(p);
        Ok(slf)
    }
    /// Producer id and sequence numbers (on with at-least-once).
    fn idempotent(mut slf: Builder<'_>, on: bool) -> Builder<'_> {
        slf.inner.idempotent(on);
        slf
    }

    /// The configuration, or `ConfigError` saying which settings clash.
    fn build(&self) -> PyResult<TopicProducerConfig> {
        Ok(TopicProducerConfig {
            inner: self.inner.build().py()?,
        })
    }
}

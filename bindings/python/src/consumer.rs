//! `Offset`, `PartitionConsumer`, `RecordStream`, `ConsumerRecord`.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use rill::{ConsumerRecord as RustRecord, RillError};
use tokio::sync::Mutex;

use crate::error::{to_py, IntoPyResult};
use crate::runtime::{block, to_asyncio};

/// Where a consumer starts: `Offset.beginning()`, `Offset.end()`,
/// `Offset.absolute(n)`, `Offset.from_end(n)`.
#[pyclass(module = "rill", frozen)]
#[derive(Debug, Clone, Copy)]
pub struct Offset {
    pub inner: rill::Offset,
}

#[pymethods]
impl Offset {
    /// The first record still stored.
    #[staticmethod]
    fn beginning() -> Self {
        Self {
            inner: rill::Offset::beginning(),
        }
    }
    /// Only records produced from now on.
    #[staticmethod]
    fn end() -> Self {
        Self {
            inner: rill::Offset::end(),
        }
    }
    /// This exact offset (not negative).
    #[staticmethod]
    fn absolute(offset: i64) -> PyResult<Self> {
        Ok(Self {
            inner: rill::Offset::absolute(offset).py()?,
        })
    }
    /// `n` records before the end.
    #[staticmethod]
    fn from_end(n: i64) -> Self {
        Self {
            inner: rill::Offset::from_end(n),
        }
    }
    fn __repr__(&self) -> String {
        format!("Offset.{:?}", self.inner)
    }
}

/// One record read back.
#[pyclass(module = "rill", frozen)]
#[derive(Debug)]
pub struct ConsumerRecord {
    inner: RustRecord,
}

#[pymethods]
impl ConsumerRecord {
    /// The partition it came from.
    #[getter]
    fn partition(&self) -> u32 {
        self.inner.partition
    }
    /// Its offset in that partition.
    #[getter]
    fn offset(&self) -> i64 {
        self.inner.offset
    }
    /// Milliseconds since the Unix epoch.
    #[getter]
    fn timestamp(&self) -> i64 {
        self.inner.timestamp
    }
    /// The key as bytes, or None.
    #[getter]
    fn key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.key.as_ref().map(|k| PyBytes::new(py, k))
    }
    /// The value as bytes.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.value)
    }
    /// Headers: a list of (name, bytes or None).
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .inner
            .headers
            .iter()
            .map(|(k, v)| {
                let v = v.as_ref().map(|v| PyBytes::new(py, v));
                PyTuple::new(py, [k.into_pyobject(py)?.into_any(), v.into_pyobject(py)?])
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }
    /// The value decoded as UTF-8 (invalid bytes replaced).
    fn value_string(&self) -> String {
        String::from_utf8_lossy(&self.inner.value).into_owned()
    }
    /// The key decoded as UTF-8, or None.
    fn key_string(&self) -> Option<String> {
        self.inner
            .key
            .as_ref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
    }
    fn __repr__(&self) -> String {
        format!(
            "ConsumerRecord(partition={}, offset={}, key={:?}, value={:?})",
            self.inner.partition,
            self.inner.offset,
            self.inner
                .key
                .as_ref()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            String::from_utf8_lossy(&self.inner.value)
        )
    }
}

#[derive(Debug)]
enum Source {
    One(rill::ConsumerStream),
    Many(rill::MultiPartitionStream),
}

impl Source {
    async fn next(&mut self) -> Result<RustRecord, RillError> {
        match self {
            Source::One(s) => s.next().await,
            Source::Many(s) => s.next().await,
        }
    }
    async fn try_next(&mut self) -> Result<Option<RustRecord>, RillError> {
        match self {
            Source::One(s) => s.try_next().await,
            Source::Many(s) => s.try_next().await,
        }
    }
}

/// Records from a start offset on, for `for` and `async for`. It never
/// ends by itself: at the end it waits for new records (Ctrl-C stops a
/// blocking wait); `try_next()` returns None instead when none arrives
/// within the SPU's long-poll wait.
#[pyclass(module = "rill", frozen)]
#[derive(Debug)]
pub struct RecordStream {
    source: Arc<Mutex<Source>>,
}

fn record(py: Python<'_>, r: Result<RustRecord, RillError>) -> PyResult<PyObject> {
    Ok(Py::new(py, ConsumerRecord { inner: r.py()? })?.into_any())
}

#[pymethods]
impl RecordStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<ConsumerRecord> {
        let source = self.source.clone();
        let r = block(py, async move { source.lock().await.next().await })?;
        Ok(ConsumerRecord { inner: r.py()? })
    }

    /// The next record, or None if none arrives within the long-poll wait.
    fn try_next(&self, py: Python<'_>) -> PyResult<Option<ConsumerRecord>> {
        let source = self.source.clone();
        let r = block(py, async move { source.lock().await.try_next().await })?;
        Ok(r.py()?.map(|inner| ConsumerRecord { inner }))
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let source = self.source.clone();
        to_asyncio(py, async move { source.lock().await.next().await }, record)
    }

    /// `await stream.async_try_next()`: the asyncio form of `try_next`.
    fn async_try_next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let source = self.source.clone();
        to_asyncio(
            py,
            async move { source.lock().await.try_next().await },
            |py, r| match r.map_err(to_py)? {
                Some(inner) => Ok(Py::new(py, ConsumerRecord { inner })?.into_any()),
                None => Ok(py.None()),
            },
        )
    }
}

impl RecordStream {
    pub fn partition(s: rill::ConsumerStream) -> Self {
        Self {
            source: Arc::new(Mutex::new(Source::One(s))),
        }
    }
    pub fn multi(s: rill::MultiPartitionStream) -> Self {
        Self {
            source: Arc::new(Mutex::new(Source::Many(s))),
        }
    }
}

/// Reads one partition of a topic.
#[pyclass(module = "rill", frozen)]
#[derive(Debug)]
pub struct PartitionConsumer {
    pub inner: rill::PartitionConsumer,
}

#[pymethods]
impl PartitionConsumer {
    /// A stream of records from `offset` on (`Offset.beginning()` if None).
    #[pyo3(signature = (offset=None))]
    fn stream(&self, py: Python<'_>, offset: Option<Offset>) -> PyResult<RecordStream> {
        let offset = offset.map_or(rill::Offset::Beginning, |o| o.inner);
        let s = block(py, self.inner.stream(offset))?.py()?;
        Ok(RecordStream::partition(s))
    }

    /// `await consumer.async_stream(offset)`: the asyncio form of `stream`.
    #[pyo3(signature = (offset=None))]
    fn async_stream<'py>(
        &self,
        py: Python<'py>,
        offset: Option<Offset>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let offset = offset.map_or(rill::Offset::Beginning, |o| o.inner);
        let consumer = self.inner.clone();
        to_asyncio(py, async move { consumer.stream(offset).await }, |py, r| {
            Ok(Py::new(py, RecordStream::partition(r.map_err(to_py)?))?.into_any())
        })
    }
}

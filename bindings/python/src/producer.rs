//! `TopicProducer`, `ProduceOutput`: blocking calls and their `async_`
//! twins over `rill::TopicProducer`.

use std::borrow::Cow;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};
use rill::{RecordKey, RecordMetadata, RillError};

use crate::error::{to_py, IntoPyResult};
use crate::runtime::{block, poll_now, ready_future, support_attr, to_asyncio};

/// Bytes of a key, value or header value: `bytes` (not copied), `str`
/// (UTF-8) or `bytearray`.
pub fn data<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = obj.downcast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(s) = obj.downcast::<PyString>() {
        return Ok(Cow::Owned(s.to_cow()?.into_owned().into_bytes()));
    }
    if let Ok(b) = obj.downcast::<PyByteArray>() {
        return Ok(Cow::Owned(b.to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "expected bytes or str, got {}",
        obj.get_type().name()?
    )))
}

fn key_of(key: Option<&Bound<'_, PyAny>>) -> PyResult<RecordKey> {
    match key {
        None => Ok(RecordKey::NULL),
        Some(k) if k.is_none() => Ok(RecordKey::NULL),
        Some(k) => Ok(RecordKey::from(&*data(k)?)),
    }
}

type Headers = Vec<(String, Vec<u8>)>;

fn headers_of(headers: Option<&Bound<'_, PyAny>>) -> PyResult<Headers> {
    let Some(h) = headers.filter(|h| !h.is_none()) else {
        return Ok(Vec::new());
    };
    // A mapping's items, or an iterable of (name, value) pairs.
    let items = if h.hasattr("items")? {
        h.call_method0("items")?
    } else {
        h.clone()
    };
    items
        .try_iter()?
        .map(|pair| {
            let (name, value): (String, Bound<'_, PyAny>) = pair?.extract()?;
            Ok((name, data(&value)?.into_owned()))
        })
        .collect()
}

fn metadata(py: Python<'_>, m: RecordMetadata) -> PyResult<PyObject> {
    Ok(support_attr(py, "RecordMetadata")?
        .call1((m.partition, m.offset))?
        .unbind())
}

/// What `send` returns at once; `wait()` gives the record's
/// `RecordMetadata(partition, offset)` once its batch is acknowledged.
#[pyclass(module = "rill", frozen)]
#[derive(Debug)]
pub struct ProduceOutput {
    inner: Arc<rill::ProduceOutput>,
}

#[pymethods]
impl ProduceOutput {
    /// Blocks (GIL released, Ctrl-C honoured) until the record's batch is
    /// answered; its `RecordMetadata`, or the `RillError` that ended it.
    fn wait(&self, py: Python<'_>) -> PyResult<PyObject> {
        let (answer, _) = block(py, self.inner.answered())?;
        metadata(py, answer.py()?)
    }

    /// `await output.async_wait()`: the asyncio form of `wait`.
    fn async_wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let out = self.inner.clone();
        to_asyncio(py, async move { out.answered().await.0 }, |py, r| {
            metadata(py, r.map_err(to_py)?)
        })
    }

    /// The answer if it has come: `RecordMetadata`, raises the error, or
    /// None while the batch is unanswered.
    fn try_wait(&self, py: Python<'_>) -> PyResult<Option<PyObject>> {
        match self.inner.try_wait() {
            None => Ok(None),
            Some((answer, _)) => metadata(py, answer.py()?).map(Some),
        }
    }
}

/// Produces records to one topic. Safe to share between threads; all
/// sends share batches. Use as a context manager to `close()` at the end.
#[pyclass(module = "rill", frozen)]
#[derive(Debug)]
pub struct TopicProducer {
    pub inner: rill::TopicProducer,
}

fn output(r: Result<rill::ProduceOutput, RillError>) -> PyResult<ProduceOutput> {
    Ok(ProduceOutput {
        inner: Arc::new(r.py()?),
    })
}

impl TopicProducer {
    fn send_bytes(
        &self,
        py: Python<'_>,
        key: RecordKey,
        value: &[u8],
        headers: &Headers,
    ) -> PyResult<ProduceOutput> {
        let refs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        output(block(py, self.inner.send_with_headers(key, value, &refs))?)
    }
}

#[pymethods]
impl TopicProducer {
    /// Queues a record (key None for none; bytes or str) and returns its
    /// `ProduceOutput` at once; blocks only while `buffer_memory` is full.
    /// `headers`: a dict or (name, value) pairs.
    #[pyo3(signature = (key, value, headers=None))]
    fn send(
        &self,
        py: Python<'_>,
        key: Option<&Bound<'_, PyAny>>,
        value: &Bound<'_, PyAny>,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<ProduceOutput> {
        let key = key_of(key)?;
        let value = data(value)?;
        let headers = headers_of(headers)?;
        self.send_bytes(py, key, &value, &headers)
    }

    /// Sends a keyless record whose value is `value` (UTF-8).
    fn send_string(&self, py: Python<'_>, value: &Bound<'_, PyString>) -> PyResult<ProduceOutput> {
        let value = data(value.as_any())?;
        self.send_bytes(py, RecordKey::NULL, &value, &Vec::new())
    }

    /// Sends every `(key, value)` pair of `records`; their outputs in order.
    fn send_all(&self, py: Python<'_>, records: &Bound<'_, PyAny>) -> PyResult<Vec<ProduceOutput>> {
        let mut outputs = Vec::new();
        for pair in records.try_iter()? {
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
            let key = key_of(Some(&key))?;
            outputs.push(self.send_bytes(py, key, &data(&value)?, &Vec::new())?);
        }
        Ok(outputs)
    }

    /// Sends what is pending now and blocks until each batch is answered
    /// (failures report through each record's output).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        block(py, self.inner.flush())?.py()
    }

    /// Flushes, then ends the producer: later sends raise
    /// `ProducerClosedError`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        block(py, self.inner.clone().close())?.py()
    }

    /// `await producer.async_send(key, value)`: the asyncio form of `send`;
    /// the awaited result is the `ProduceOutput`.
    #[pyo3(signature = (key, value, headers=None))]
    fn async_send<'py>(
        &self,
        py: Python<'py>,
        key: Option<&Bound<'py, PyAny>>,
        value: &Bound<'py, PyAny>,
        headers: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = key_of(key)?;
        let value = data(value)?;
        let headers = headers_of(headers)?;
        // Room in the buffer (the usual case): done here, no task.
        {
            let refs: Vec<(&str, &[u8])> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            let fut = std::pin::pin!(self.inner.send_with_headers(key.clone(), &*value, &refs));
            if let Some(r) = poll_now(fut) {
                let out = output(r).and_then(|o| Ok(Py::new(py, o)?.into_any()));
                return ready_future(py, out);
            }
        }
        let producer = self.inner.clone();
        let value = value.into_owned();
        to_asyncio(
            py,
            async move {
                let refs: Vec<(&str, &[u8])> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_slice()))
                    .collect();
                producer.send_with_headers(key, &value, &refs).await
            },
            |py, r| Ok(Py::new(py, output(r)?)?.into_any()),
        )
    }

    /// `await producer.async_flush()`: the asyncio form of `flush`.
    fn async_flush<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let producer = self.inner.clone();
        to_asyncio(py, async move { producer.flush().await }, |py, r| {
            r.map_err(to_py)?;
            Ok(py.None())
        })
    }

    /// The topic's partition count as the producer last learned it.
    fn partition_count(&self) -> u32 {
        self.inner.partition_count()
    }

    /// The topic this producer writes to.
    #[getter]
    fn topic(&self) -> &str {
        self.inner.topic()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

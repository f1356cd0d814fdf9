//! `Rill` (the cluster handle) and `RillAdmin` (topics).

use std::collections::HashMap;

use pyo3::prelude::*;

use crate::config::TopicProducerConfig;
use crate::consumer::{Offset, PartitionConsumer, RecordStream};
use crate::error::{to_py, IntoPyResult};
use crate::producer::TopicProducer;
use crate::runtime::{block, to_asyncio};

/// A connection to a Rill cluster: `Rill.connect()` (RILL_ADDR, else the
/// profile `rill cluster start` wrote, else 127.0.0.1:9092) or
/// `Rill.connect("host:port")`. Safe to share between threads.
#[pyclass(module = "rill", frozen)]
#[derive(Debug, Clone)]
pub struct Rill {
    inner: rill::Rill,
}

#[pymethods]
impl Rill {
    /// Connects (blocking) to `addr`, or to the discovered cluster.
    #[staticmethod]
    #[pyo3(signature = (addr=None))]
    fn connect(py: Python<'_>, addr: Option<String>) -> PyResult<Self> {
        let addr = addr.unwrap_or_else(rill::discover_addr);
        let inner = block(py, rill::Rill::connect_to(&addr))?.py()?;
        Ok(Self { inner })
    }

    /// `await Rill.async_connect(addr)`: the asyncio form of `connect`.
    #[staticmethod]
    #[pyo3(signature = (addr=None))]
    fn async_connect(py: Python<'_>, addr: Option<String>) -> PyResult<Bound<'_, PyAny>> {
        let addr = addr.unwrap_or_else(rill::discover_addr);
        to_asyncio(
            py,
            async move { rill::Rill::connect_to(&addr).await },
            |py, r| {
                Ok(Py::new(
                    py,
                    Rill {
                        inner: r.map_err(to_py)?,
                    },
                )?
                .into_any())
            },
        )
    }

    /// The `host:port` this handle connects to.
    #[getter]
    fn addr(&self) -> &str {
        self.inner.addr()
    }

    /// A producer for `topic` with the default settings.
    fn topic_producer(&self, py: Python<'_>, topic: &str) -> PyResult<TopicProducer> {
        let inner = block(py, self.inner.topic_producer(topic))?.py()?;
        Ok(TopicProducer { inner })
    }

    /// A producer for `topic` with `config` (`TopicProducerConfigBuilder().build()`).
    fn topic_producer_with_config(
        &self,
        py: Python<'_>,
        topic: &str,
        config: &TopicProducerConfig,
    ) -> PyResult<TopicProducer> {
        let fut = self
            .inner
            .topic_producer_with_config(topic, config.inner.clone());
        let inner = block(py, fut)?.py()?;
        Ok(TopicProducer { inner })
    }

    /// `await rill.async_topic_producer_with_config(topic, config)`; config
    /// None means the defaults.
    #[pyo3(signature = (topic, config=None))]
    fn async_topic_producer<'py>(
        &self,
        py: Python<'py>,
        topic: String,
        config: Option<TopicProducerConfig>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rill = self.inner.clone();
        let config = match config {
            Some(c) => c.inner,
            None => rill::TopicProducerConfigBuilder::default().build().py()?,
        };
        to_asyncio(
            py,
            async move { rill.topic_producer_with_config(&topic, config).await },
            |py, r| {
                Ok(Py::new(
                    py,
                    TopicProducer {
                        inner: r.map_err(to_py)?,
                    },
                )?
                .into_any())
            },
        )
    }

    /// A consumer of one partition.
    fn partition_consumer(
        &self,
        py: Python<'_>,
        topic: &str,
        partition: u32,
    ) -> PyResult<PartitionConsumer> {
        let inner = block(py, self.inner.partition_consumer(topic, partition))?.py()?;
        Ok(PartitionConsumer { inner })
    }

    /// Reads every partition of `topic` (or those in `partitions`) from
    /// `offset` (`Offset.beginning()` if None): one stream, records in
    /// offset order within each partition, partitions interleaved.
    #[pyo3(signature = (topic, partitions=None, offset=None))]
    fn consumer(
        &self,
        py: Python<'_>,
        topic: &str,
        partitions: Option<Vec<u32>>,
        offset: Option<Offset>,
    ) -> PyResult<RecordStream> {
        let offset = offset.map_or(rill::Offset::Beginning, |o| o.inner);
        let fut = self.inner.consumer(
            topic,
            partitions.as_deref(),
            offset,
            rill::ConsumerConfig::default(),
        );
        Ok(RecordStream::multi(block(py, fut)?.py()?))
    }

    /// Topic administration.
    fn admin(&self) -> RillAdmin {
        RillAdmin {
            inner: self.inner.admin(),
        }
    }

    fn __repr__(&self) -> String {
        format!("Rill(addr={:?})", self.inner.addr())
    }
}

/// A topic's name and partition count.
#[pyclass(module = "rill", frozen, get_all)]
#[derive(Debug, Clone)]
pub struct TopicInfo {
    /// The topic's name.
    name: String,
    /// Its partition count.
    partitions: u32,
}

#[pymethods]
impl TopicInfo {
    fn __repr__(&self) -> String {
        format!(
            "TopicInfo(name={:?}, partitions={})",
            self.name, self.partitions
        )
    }
}

/// Creates, lists and deletes topics: `rill.admin()`.
#[pyclass(module = "rill", frozen)]
#[derive(Debug)]
pub struct RillAdmin {
    inner: rill::Admin,
}

#[pymethods]
impl RillAdmin {
    /// Creates `topic` with `partitions`, `replication` and Kafka topic
    /// configs (`{"retention.ms": "60000"}`).
    #[pyo3(signature = (topic, partitions=1, replication=1, configs=None))]
    fn create_topic(
        &self,
        py: Python<'_>,
        topic: &str,
        partitions: i32,
        replication: i16,
        configs: Option<HashMap<String, String>>,
    ) -> PyResult<()> {
        let configs = configs.unwrap_or_default();
        let pairs: Vec<(&str, &str)> = configs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        block(
            py,
            self.inner
                .create_topic(topic, partitions, replication, &pairs),
        )?
        .py()
    }

    /// Every topic, sorted by name.
    fn list_topics(&self, py: Python<'_>) -> PyResult<Vec<TopicInfo>> {
        let topics = block(py, self.inner.list_topics())?.py()?;
        Ok(topics
            .into_iter()
            .map(|t| TopicInfo {
                name: t.name,
                partitions: t.partitions,
            })
            .collect())
    }

    /// Deletes `topic` and all its records.
    fn delete_topic(&self, py: Python<'_>, topic: &str) -> PyResult<()> {
        block(py, self.inner.delete_topic(topic))?.py()
    }
}

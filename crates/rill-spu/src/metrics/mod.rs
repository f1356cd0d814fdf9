//! Prometheus metrics of one SPU, served as OpenMetrics text by
//! [`http`] at `--metrics-listen`.
//!
//! Two kinds. Events (records and bytes produced and fetched, request
//! latencies, fsyncs, connections) are counted where they happen, on
//! atomics: each partition takes its counter handles once, when it is
//! opened ([`PartitionCounters`]), so the produce path does no lookup,
//! lock or allocation per record. State (offsets, ISR, disk bytes, lag,
//! process memory) is read from the registry at scrape time ([`state`]).

pub(crate) mod fsync;
pub(crate) mod http;
mod process;
mod state;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry as PromRegistry;

use crate::api::Context;

/// Latency buckets in seconds: 100 µs doubling to about 13 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_1, 2.0, 18)
}

/// A partition's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

/// A partition's event counters, taken once when it is opened.
#[derive(Debug, Clone, Default)]
pub(crate) struct PartitionCounters {
    pub produce_records: Counter,
    pub produce_bytes: Counter,
    pub fetch_records: Counter,
    pub fetch_bytes: Counter,
}

/// Every metric counted as events happen.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: PromRegistry,
    produce_records: Family<PartitionLabels, Counter>,
    produce_bytes: Family<PartitionLabels, Counter>,
    fetch_records: Family<PartitionLabels, Counter>,
    fetch_bytes: Family<PartitionLabels, Counter>,
    pub produce_duration: Histogram,
    pub fetch_duration: Histogram,
    pub ack_all_wait: Histogram,
    pub fsync_duration: Histogram,
    pub connections_open: Gauge,
    pub requests_in_flight: Gauge,
    /// Joined the cluster and loaded the partitions, not shutting down.
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = PromRegistry::default();
        let produce_records = Family::<PartitionLabels, Counter>::default();
        let produce_bytes = Family::<PartitionLabels, Counter>::default();
        let fetch_records = Family::<PartitionLabels, Counter>::default();
        let fetch_bytes = Family::<PartitionLabels, Counter>::default();
        let histogram = || Histogram::new(latency_buckets());
        let (produce_duration, fetch_duration) = (histogram(), histogram());
        let (ack_all_wait, fsync_duration) = (histogram(), histogram());
        let connections_open = Gauge::default();
        let requests_in_flight = Gauge::default();
        // Counters get `_total` from the encoder.
        registry.register(
            "rill_produce_records",
            "Records appended by produce requests, per partition",
            produce_records.clone(),
        );
        registry.register(
            "rill_produce_bytes",
            "Record-set bytes appended by produce requests, per partition",
            produce_bytes.clone(),
        );
        registry.register(
            "rill_fetch_records",
            "Records sent to consumers by fetch requests, per partition",
            fetch_records.clone(),
        );
        registry.register(
            "rill_fetch_bytes",
            "Record-batch bytes sent to consumers by fetch requests, per partition",
            fetch_bytes.clone(),
        );
        registry.register(
            "rill_produce_request_duration_seconds",
            "Produce requests from decoded to answered (acks=all waits included)",
            produce_duration.clone(),
        );
        registry.register(
            "rill_fetch_request_duration_seconds",
            "Fetch requests from decoded to answered (long-poll waits included)",
            fetch_duration.clone(),
        );
        registry.register(
            "rill_produce_ack_all_wait_seconds",
            "How long acks=all produce requests waited for the in-sync replicas",
            ack_all_wait.clone(),
        );
        registry.register(
            "rill_fsync_duration_seconds",
            "fdatasync calls on partition log and index files",
            fsync_duration.clone(),
        );
        registry.register(
            "rill_connections_open",
            "Kafka protocol connections open now",
            connections_open.clone(),
        );
        registry.register(
            "rill_requests_in_flight",
            "Kafka protocol requests being handled now",
            requests_in_flight.clone(),
        );
        Self {
            registry,
            produce_records,
            produce_bytes,
            fetch_records,
            fetch_bytes,
            produce_duration,
            fetch_duration,
            ack_all_wait,
            fsync_duration,
            connections_open,
            requests_in_flight,
            ready: AtomicBool::new(false),
        }
    }

    /// The counters of partition `partition` of `topic`: shared with
    /// every earlier handle of that partition (a reopened partition counts
    /// on).
    pub fn partition(&self, topic: &str, partition: i32) -> PartitionCounters {
        let labels = PartitionLabels {
            topic: topic.to_owned(),
            partition,
        };
        PartitionCounters {
            produce_records: self.produce_records.get_or_create_owned(&labels),
            produce_bytes: self.produce_bytes.get_or_create_owned(&labels),
            fetch_records: self.fetch_records.get_or_create_owned(&labels),
            fetch_bytes: self.fetch_bytes.get_or_create_owned(&labels),
        }
    }

    /// Forgets a deleted partition's counters, so it leaves the scrape.
    pub fn forget(&self, topic: &str, partition: i32) {
        let labels = PartitionLabels {
            topic: topic.to_owned(),
            partition,
        };
        for family in [
            &self.produce_records,
            &self.produce_bytes,
            &self.fetch_records,
            &self.fetch_bytes,
        ] {
            family.remove(&labels);
        }
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Seconds of `d`, for a histogram.
pub(crate) fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The whole exposition: event metrics, then state read now (when the SPU
/// is up: `ctx` is `None` while it starts), then `# EOF`. Takes partition
/// log locks: call on a blocking thread.
pub(crate) fn render(metrics: &Metrics, ctx: Option<&Context>) -> Result<String, std::fmt::Error> {
    use prometheus_client::encoding::text::{encode_eof, encode_registry};
    let mut out = String::with_capacity(16 * 1024);
    encode_registry(&mut out, &metrics.registry)?;
    // State read now, into a registry of its own for this scrape.
    let mut now = PromRegistry::default();
    process::register(&mut now);
    if let Some(ctx) = ctx {
        state::register(&mut now, ctx);
    }
    encode_registry(&mut out, &now)?;
    encode_eof(&mut out)?;
    Ok(out)
}

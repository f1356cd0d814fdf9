//! Producer settings from JavaScript. `lib/config.js` checks the user's
//! object (or builder) for unknown keys and flattens it into a
//! `ProducerConfig`; here each value is checked and the Rust builder makes
//! the `rill::TopicProducerConfig`, so every default is the Rust one.

use std::time::Duration;

use napi_derive::napi;

use crate::error::{config_error, IntoNapiResult};

/// The flattened settings; every field left out keeps its default.
#[napi(object)]
#[derive(Debug, Default)]
pub struct ProducerConfig {
    /// Most uncompressed bytes in one batch.
    pub batch_size: Option<f64>,
    /// How long a batch waits for more records, in milliseconds.
    pub linger_ms: Option<f64>,
    /// "none", "gzip", "snappy", "lz4" or "zstd".
    pub compression: Option<String>,
    /// "atMostOnce" or "atLeastOnce".
    pub delivery_semantic: Option<String>,
    /// At-least-once: most retries after the first attempt.
    pub max_retries: Option<f64>,
    /// At-least-once: the first delay, in milliseconds.
    pub initial_delay_ms: Option<f64>,
    /// At-least-once: no delay is longer, in milliseconds.
    pub max_delay_ms: Option<f64>,
    /// At-least-once: all attempts within this many milliseconds.
    pub retry_timeout_ms: Option<f64>,
    /// At-least-once: "exponential", "fibonacci" or "fixed".
    pub strategy: Option<String>,
    /// "readUncommitted" or "readCommitted".
    pub isolation: Option<String>,
    /// How long the SPU may wait for the isolation level, in milliseconds.
    pub timeout_ms: Option<f64>,
    /// Largest request in bytes.
    pub max_request_size: Option<f64>,
    /// Bound on bytes waiting in the producer.
    pub buffer_memory: Option<f64>,
    /// "roundRobin" or "sticky".
    pub partitioner: Option<String>,
    /// Producer id and sequence numbers.
    pub idempotent: Option<bool>,
}

fn millis(name: &str, ms: f64) -> napi::Result<Duration> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(config_error(format!(
            "{name} must be a finite, non-negative number of milliseconds, got {ms}"
        )));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

fn count(name: &str, n: f64) -> napi::Result<usize> {
    if !n.is_finite() || n < 0.0 || n.fract() != 0.0 || n > 9.0e15 {
        return Err(config_error(format!(
            "{name} must be a non-negative integer, got {n}"
        )));
    }
    Ok(n as usize)
}

fn compression(name: &str) -> napi::Result<rill::Compression> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "none" => rill::Compression::None,
        "gzip" => rill::Compression::Gzip,
        "snappy" => rill::Compression::Snappy,
        "lz4" => rill::Compression::Lz4,
        "zstd" => rill::Compression::Zstd,
        other => {
            return Err(config_error(format!(
                "unknown compression {other:?}: none, gzip, snappy, lz4 or zstd"
            )))
        }
    })
}

fn retry_policy(c: &ProducerConfig) -> napi::Result<rill::RetryPolicy> {
    let mut p = rill::RetryPolicy::default();
    if let Some(n) = c.max_retries {
        p.max_retries = count("maxRetries", n)?;
    }
    if let Some(ms) = c.initial_delay_ms {
        p.initial_delay = millis("initialDelayMs", ms)?;
    }
    if let Some(ms) = c.max_delay_ms {
        p.max_delay = millis("maxDelayMs", ms)?;
    }
    if let Some(ms) = c.retry_timeout_ms {
        p.timeout = millis("timeoutMs", ms)?;
    }
    if let Some(s) = &c.strategy {
        p.strategy = match s.as_str() {
            "exponential" | "exponentialBackoff" => rill::RetryStrategy::ExponentialBackoff,
            "fibonacci" | "fibonacciBackoff" => rill::RetryStrategy::FibonacciBackoff,
            "fixed" | "fixedDelay" => rill::RetryStrategy::FixedDelay,
            other => {
                return Err(config_error(format!(
                    "unknown retry strategy {other:?}: exponential, fibonacci or fixed"
                )))
            }
        };
    }
    Ok(p)
}

/// The Rust configuration for `c`, or a `ConfigError` naming the setting.
pub fn build(c: &ProducerConfig) -> napi::Result<rill::TopicProducerConfig> {
    let mut b = rill::TopicProducerConfigBuilder::default();
    if let Some(n) = c.batch_size {
        b.batch_size(count("batchSize", n)?);
    }
    if let Some(ms) = c.linger_ms {
        b.linger(millis("linger", ms)?);
    }
    if let Some(name) = &c.compression {
        b.compression(compression(name)?);
    }
    match c.delivery_semantic.as_deref() {
        None | Some("atLeastOnce") => {
            b.delivery_semantic(rill::DeliverySemantic::AtLeastOnce(retry_policy(c)?));
        }
        Some("atMostOnce") => {
            b.delivery_semantic(rill::DeliverySemantic::AtMostOnce);
        }
        Some(other) => {
            return Err(config_error(format!(
                "unknown delivery semantic {other:?}: atMostOnce or atLeastOnce"
            )))
        }
    }
    if let Some(i) = &c.isolation {
        b.isolation(match i.as_str() {
            "readUncommitted" => rill::Isolation::ReadUncommitted,
            "readCommitted" => rill::Isolation::ReadCommitted,
            other => {
                return Err(config_error(format!(
                    "unknown isolation {other:?}: readUncommitted or readCommitted"
                )))
            }
        });
    }
    if let Some(ms) = c.timeout_ms {
        b.timeout(millis("timeout", ms)?);
    }
    if let Some(n) = c.max_request_size {
        b.max_request_size(count("maxRequestSize", n)?);
    }
    if let Some(n) = c.buffer_memory {
        b.buffer_memory(count("bufferMemory", n)?);
    }
    if let Some(p) = &c.partitioner {
        b.partitioner(match p.as_str() {
            "roundRobin" | "round_robin" => rill::Partitioner::RoundRobin,
            "sticky" => rill::Partitioner::Sticky,
            other => {
                return Err(config_error(format!(
                    "unknown partitioner {other:?}: roundRobin or sticky"
                )))
            }
        });
    }
    if let Some(on) = c.idempotent {
        b.idempotent(on);
    }
    b.build().js()
}

/// Checks `config` as `topicProducerWithConfig` would, without connecting
/// (the builder's `build()`); throws the `ConfigError`.
#[napi]
pub fn check_producer_config(config: ProducerConfig) -> napi::Result<()> {
    build(&config).map(|_| ())
}

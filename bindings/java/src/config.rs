//! A producer's settings arrive as one `long[]` (`TopicProducerConfig.
//! toNative()` on the Java side; -1 means "not set", durations are
//! nanoseconds) and become the Rust builder's settings, so defaults and
//! checks are the Rust client's own.

use std::time::Duration;

use jni::objects::{JClass, JLongArray};
use jni::JNIEnv;
use rill::{
    Compression, DeliverySemantic, Isolation, Partitioner, RetryPolicy, RetryStrategy, RillError,
    TopicProducerConfig, TopicProducerConfigBuilder,
};

use crate::error::{guard, Failure, Result};

// The slots of the array; TopicProducerConfig.java has the same list.
const BATCH_SIZE: usize = 0;
const LINGER: usize = 1;
const COMPRESSION: usize = 2;
const SEMANTIC: usize = 3;
const MAX_RETRIES: usize = 4;
const INITIAL_DELAY: usize = 5;
const MAX_DELAY: usize = 6;
const RETRY_TIMEOUT: usize = 7;
const STRATEGY: usize = 8;
const ISOLATION: usize = 9;
const TIMEOUT: usize = 10;
const MAX_REQUEST_SIZE: usize = 11;
const BUFFER_MEMORY: usize = 12;
const PARTITIONER: usize = 13;
const IDEMPOTENT: usize = 14;
const LEN: usize = 15;

fn bad(what: &str, v: i64) -> RillError {
    RillError::Config(format!("{what} {v} is out of range"))
}

fn size(what: &str, v: i64) -> std::result::Result<usize, RillError> {
    usize::try_from(v).map_err(|_| bad(what, v))
}

fn nanos(what: &str, v: i64) -> std::result::Result<Duration, RillError> {
    u64::try_from(v)
        .map(Duration::from_nanos)
        .map_err(|_| bad(what, v))
}

/// The Rust configuration for the Java settings.
pub fn from_slots(s: &[i64]) -> std::result::Result<TopicProducerConfig, RillError> {
    if s.len() != LEN {
        return Err(RillError::Config(format!(
            "expected {LEN} settings, got {}",
            s.len()
        )));
    }
    let set = |i: usize| (s[i] != -1).then_some(s[i]);
    let mut b = TopicProducerConfigBuilder::default();
    if let Some(v) = set(BATCH_SIZE) {
        b.batch_size(size("batch_size", v)?);
    }
    if let Some(v) = set(LINGER) {
        b.linger(nanos("linger", v)?);
    }
    if let Some(v) = set(COMPRESSION) {
        b.compression(match v {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return Err(bad("compression", v)),
        });
    }
    match set(SEMANTIC) {
        None => {}
        Some(0) => {
            b.delivery_semantic(DeliverySemantic::AtMostOnce);
        }
        Some(1) => {
            let mut p = RetryPolicy::default();
            if let Some(v) = set(MAX_RETRIES) {
                p.max_retries = size("max_retries", v)?;
            }
            if let Some(v) = set(INITIAL_DELAY) {
                p.initial_delay = nanos("initial_delay", v)?;
            }
            if let Some(v) = set(MAX_DELAY) {
                p.max_delay = nanos("max_delay", v)?;
            }
            if let Some(v) = set(RETRY_TIMEOUT) {
                p.timeout = nanos("timeout", v)?;
            }
            if let Some(v) = set(STRATEGY) {
                p.strategy = match v {
                    0 => RetryStrategy::FixedDelay,
                    1 => RetryStrategy::FibonacciBackoff,
                    2 => RetryStrategy::ExponentialBackoff,
                    _ => return Err(bad("retry strategy", v)),
                };
            }
            b.delivery_semantic(DeliverySemantic::AtLeastOnce(p));
        }
        Some(v) => return Err(bad("delivery semantic", v)),
    }
    if let Some(v) = set(ISOLATION) {
        b.isolation(match v {
            0 => Isolation::ReadUncommitted,
            1 => Isolation::ReadCommitted,
            _ => return Err(bad("isolation", v)),
        });
    }
    if let Some(v) = set(TIMEOUT) {
        b.timeout(nanos("timeout", v)?);
    }
    if let Some(v) = set(MAX_REQUEST_SIZE) {
        b.max_request_size(size("max_request_size", v)?);
    }
    if let Some(v) = set(BUFFER_MEMORY) {
        b.buffer_memory(size("buffer_memory", v)?);
    }
    if let Some(v) = set(PARTITIONER) {
        b.partitioner(match v {
            0 => Partitioner::RoundRobin,
            1 => Partitioner::Sticky,
            _ => return Err(bad("partitioner", v)),
        });
    }
    match set(IDEMPOTENT) {
        None => {}
        Some(0) => {
            b.idempotent(false);
        }
        Some(1) => {
            b.idempotent(true);
        }
        Some(v) => return Err(bad("idempotent", v)),
    }
    b.build()
}

/// The settings of a Java `long[]` (null: the defaults).
pub fn read(env: &mut JNIEnv<'_>, slots: &JLongArray<'_>) -> Result<TopicProducerConfig> {
    if slots.is_null() {
        return Ok(TopicProducerConfigBuilder::default().build()?);
    }
    let len = env.get_array_length(slots)?;
    let mut buf = vec![0i64; usize::try_from(len).unwrap_or(0)];
    env.get_long_array_region(slots, 0, &mut buf)?;
    from_slots(&buf).map_err(Failure::from)
}

/// `Native.validateConfig(long[])`: throws `ConfigException` when the
/// settings do not fit together (what `TopicProducerConfig.build()` checks).
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_validateConfig<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    slots: JLongArray<'l>,
) {
    guard(&mut env, (), |env| read(env, &slots).map(drop))
}

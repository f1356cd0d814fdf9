//! Topic names, specs and per-topic configs, validated as Kafka does.

use std::time::Duration;

use rill_protocol::Compression;
use rill_storage::{FlushPolicy, LogConfig};

/// Longest topic name: Kafka allows 249, but the SPU keeps a topic's
/// metadata in `<name>.topic.tmp` before renaming it, and a file name holds
/// 255 bytes, so 245 is what can be stored (refused up front with
/// `INVALID_TOPIC_EXCEPTION` rather than failing later on the disk).
pub const MAX_TOPIC_NAME_CHARS: usize = 245;
/// Names starting with this are the SPU's own (`__rill_meta`).
pub const RESERVED_TOPIC_PREFIX: &str = "__rill";

/// Checks a topic name: `[a-zA-Z0-9._-]`, 1..=249 chars, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name.len() > MAX_TOPIC_NAME_CHARS {
        return Err(format!(
            "topic name is {} chars, over the limit of {MAX_TOPIC_NAME_CHARS}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be {name:?}"));
    }
    if name.starts_with(RESERVED_TOPIC_PREFIX) {
        return Err(format!(
            "topic names starting with {RESERVED_TOPIC_PREFIX:?} are reserved for the SPU"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains {bad:?}; only ASCII letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

/// What a topic's records must be compressed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopicCompression {
    /// Whatever the producer chose (Kafka's `producer`).
    #[default]
    Producer,
    /// Batches must arrive with this codec. Rill never recompresses, so a
    /// batch in another codec is refused with `INVALID_RECORD`.
    Required(Compression),
}

/// The per-topic settings Rill supports, with Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// `retention.ms`; -1 keeps records forever.
    pub retention_ms: i64,
    /// `retention.bytes` per partition; -1 for no bound.
    pub retention_bytes: i64,
    /// `segment.bytes`.
    pub segment_bytes: i64,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: i32,
    /// `compression.type`.
    pub compression: TopicCompression,
    /// `min.insync.replicas`: with fewer replicas in sync, `acks=all`
    /// (`ReadCommitted`) is refused with `NOT_ENOUGH_REPLICAS`.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`: a replica outside the ISR may lead
    /// when no in-sync one is alive (acknowledged records may be lost).
    pub unclean_leader_election: bool,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            segment_bytes: 1 << 30,
            max_message_bytes: 1_048_588,
            compression: TopicCompression::Producer,
            min_insync_replicas: 1,
            unclean_leader_election: false,
        }
    }
}

/// Config names `TopicConfig` understands.
pub const TOPIC_CONFIG_KEYS: [&str; 8] = [
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "max.message.bytes",
    "compression.type",
    "cleanup.policy",
    "min.insync.replicas",
    "unclean.leader.election.enable",
];

/// Largest `min.insync.replicas` accepted (no topic has more copies than a
/// cluster has SPUs; this bounds a typo).
pub const MAX_MIN_INSYNC_REPLICAS: i32 = 64;

/// Smallest `segment.bytes` accepted (Kafka's lower bound is 14 bytes; a
/// segment must hold at least a batch header).
const MIN_SEGMENT_BYTES: i64 = 1024;

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{key}: {value:?} is not a number"))
}

impl TopicConfig {
    /// Applies one `key=value` on top of the current values.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "retention.ms" => {
                let v: i64 = parse_num(key, value)?;
                if v < -1 {
                    return Err(format!("retention.ms must be -1 or >= 0, got {v}"));
                }
                self.retention_ms = v;
            }
            "retention.bytes" => {
                let v: i64 = parse_num(key, value)?;
                if v < -1 {
                    return Err(format!("retention.bytes must be -1 or >= 0, got {v}"));
                }
                self.retention_bytes = v;
            }
            "segment.bytes" => {
                let v: i64 = parse_num(key, value)?;
                if !(MIN_SEGMENT_BYTES..=i64::from(i32::MAX)).contains(&v) {
                    return Err(format!(
                        "segment.bytes must be in {MIN_SEGMENT_BYTES}..={}, got {v}",
                        i32::MAX
                    ));
                }
                self.segment_bytes = v;
            }
            "max.message.bytes" => {
                let v: i32 = parse_num(key, value)?;
                if v < 0 {
                    return Err(format!("max.message.bytes must be >= 0, got {v}"));
                }
                self.max_message_bytes = v;
            }
            "compression.type" => {
                self.compression = match value.trim().to_ascii_lowercase().as_str() {
                    "producer" => TopicCompression::Producer,
                    "uncompressed" | "none" => TopicCompression::Required(Compression::None),
                    other => TopicCompression::Required(other.parse().map_err(|_| {
                        format!(
                            "compression.type {value:?} is not one of producer, none, gzip, snappy, lz4, zstd"
                        )
                    })?),
                };
            }
            "min.insync.replicas" => {
                let v: i32 = parse_num(key, value)?;
                if !(1..=MAX_MIN_INSYNC_REPLICAS).contains(&v) {
                    return Err(format!(
                        "min.insync.replicas must be in 1..={MAX_MIN_INSYNC_REPLICAS}, got {v}"
                    ));
                }
                self.min_insync_replicas = v;
            }
            "unclean.leader.election.enable" => {
                self.unclean_leader_election = match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(format!(
                            "unclean.leader.election.enable must be true or false, got {value:?}"
                        ))
                    }
                };
            }
            "cleanup.policy" => {
                if value.trim() != "delete" {
                    return Err(format!(
                        "cleanup.policy {value:?} is not supported (only \"delete\")"
                    ));
                }
            }
            other => return Err(format!("unknown topic config {other:?}")),
        }
        Ok(())
    }

    /// Every setting as Kafka names and writes it.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("retention.ms", self.retention_ms.to_string()),
            ("retention.bytes", self.retention_bytes.to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            (
                "compression.type",
                match self.compression {
                    TopicCompression::Producer => "producer".into(),
                    TopicCompression::Required(c) => c.name().into(),
                },
            ),
            ("cleanup.policy", "delete".into()),
            ("min.insync.replicas", self.min_insync_replicas.to_string()),
            (
                "unclean.leader.election.enable",
                self.unclean_leader_election.to_string(),
            ),
        ]
    }

    /// The storage settings for one partition of this topic.
    pub fn log_config(&self, flush: FlushPolicy) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes.max(MIN_SEGMENT_BYTES) as u64,
            retention_ms: u64::try_from(self.retention_ms).ok(),
            retention_bytes: u64::try_from(self.retention_bytes).ok(),
            flush,
            max_batch_bytes: usize::try_from(self.max_message_bytes).unwrap_or(0),
            ..LogConfig::default()
        }
    }

    pub fn retention(&self) -> Option<Duration> {
        u64::try_from(self.retention_ms)
            .ok()
            .map(Duration::from_millis)
    }
}

/// A topic as created: name, partitions, replication factor, configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub config: TopicConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "orders.v1", "x_y-z", "_rill", &"n".repeat(245)] {
            assert!(validate_topic_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a b",
            "topic/1",
            "ü",
            "__rill_meta",
            "__rillx",
            &"n".repeat(246),
        ] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn configs() {
        let mut c = TopicConfig::default();
        c.set("retention.ms", "-1").unwrap();
        c.set("compression.type", "zstd").unwrap();
        c.set("segment.bytes", "1048576").unwrap();
        assert_eq!(c.retention(), None);
        assert_eq!(c.compression, TopicCompression::Required(Compression::Zstd));
        assert!(c.set("retention.ms", "soon").is_err());
        assert!(c.set("segment.bytes", "10").is_err());
        assert!(c.set("cleanup.policy", "compact").is_err());
        assert!(c.set("no.such.key", "1").is_err());
        assert!(c.set("compression.type", "brotli").is_err());
        c.set("min.insync.replicas", "2").unwrap();
        c.set("unclean.leader.election.enable", "true").unwrap();
        assert!(c.set("min.insync.replicas", "0").is_err());
        assert!(c.set("unclean.leader.election.enable", "yes").is_err());
        let mut back = TopicConfig::default();
        for (k, v) in c.pairs() {
            back.set(k, &v).unwrap();
        }
        assert_eq!(back, c);
    }
}

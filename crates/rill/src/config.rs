//! Producer settings (design.md §2), with Fluvio's names and defaults.

use std::time::Duration;

use rill_protocol::Compression;

use crate::producer::{Partitioner, RetryPolicy};
use crate::RillError;

/// How hard the producer tries to deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverySemantic {
    /// Each batch is sent once, without waiting for the previous answer and
    /// without retry; `wait()` still reports the SPU's answer.
    AtMostOnce,
    /// A batch that fails with a transport error or a retriable error code is
    /// sent again per the policy. Order within a partition is kept.
    AtLeastOnce(RetryPolicy),
}

impl Default for DeliverySemantic {
    fn default() -> Self {
        DeliverySemantic::AtLeastOnce(RetryPolicy::default())
    }
}

/// When the SPU acknowledges a batch, and so what an acknowledgement
/// promises.
///
/// On one SPU (the default `rill cluster start`) the two are the same: the
/// SPU's one copy is every copy. In a cluster, with a topic's replication
/// factor above 1:
///
/// - [`ReadUncommitted`](Self::ReadUncommitted) is acknowledged once the
///   partition's leader has appended the batch. If the leader dies before
///   a follower copied it, a follower that lacks it may become leader and
///   the batch is gone (the old leader cuts it from its log when it
///   returns). Fast; loss possible on a leader failure.
/// - [`ReadCommitted`](Self::ReadCommitted) is acknowledged once every
///   replica in the in-sync set (ISR) has the batch, i.e. the partition's
///   high watermark covers it. Only ISR members can become leader (unless
///   the topic sets `unclean.leader.election.enable`), so an acknowledged
///   batch survives any failure that leaves one ISR member. When the ISR is
///   smaller than the topic's `min.insync.replicas`, the SPU refuses the
///   batch with `NOT_ENOUGH_REPLICAS` (nothing stored) or, if the ISR shrank
///   after the append, `NOT_ENOUGH_REPLICAS_AFTER_APPEND`; both are
///   retriable, and an idempotent producer's retry is recognised as the
///   same batch. Consumers never see a record before it is committed.
///
/// Without `fsync` on every append (`--flush always`), "has the batch"
/// means in the SPU's page cache: a power cut of every replica at once can
/// still lose it (see RELIABILITY.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Acknowledged once the leader has it (Kafka acks 1).
    #[default]
    ReadUncommitted,
    /// Acknowledged once every in-sync replica has it (Kafka acks all).
    ReadCommitted,
}

impl Isolation {
    pub(crate) fn acks(self) -> i16 {
        match self {
            Isolation::ReadUncommitted => 1,
            Isolation::ReadCommitted => -1,
        }
    }
}

/// A producer's settings; build one with [`TopicProducerConfigBuilder`].
#[derive(Debug, Clone)]
pub struct TopicProducerConfig {
    /// Most uncompressed bytes in one batch.
    pub batch_size: usize,
    /// How long a new batch waits for more records (0: send as soon as possible).
    pub linger: Duration,
    /// Per-batch codec.
    pub compression: Compression,
    /// At most once, or at least once with a retry policy.
    pub delivery_semantic: DeliverySemantic,
    /// When a batch counts as acknowledged (acks 1 or acks all).
    pub isolation: Isolation,
    /// How long the SPU may wait for the isolation level before answering.
    pub timeout: Duration,
    /// Largest request; a record whose batch would exceed it is refused.
    pub max_request_size: usize,
    /// Bound on bytes waiting in the producer; `send` waits while it is full.
    pub buffer_memory: usize,
    /// Placement of keyless records (keys always follow murmur2).
    pub partitioner: Partitioner,
    /// Producer id + sequence numbers, so a retried batch is never stored
    /// twice and up to 5 batches per partition may be in flight with order
    /// kept. Only with `AtLeastOnce`; on by default there.
    pub idempotent: bool,
}

/// Builds a [`TopicProducerConfig`]; every setting has Fluvio's default.
#[derive(Debug, Clone, Default)]
pub struct TopicProducerConfigBuilder {
    batch_size: Option<usize>,
    linger: Option<Duration>,
    compression: Option<Compression>,
    delivery_semantic: Option<DeliverySemantic>,
    isolation: Option<Isolation>,
    timeout: Option<Duration>,
    max_request_size: Option<usize>,
    buffer_memory: Option<usize>,
    partitioner: Option<Partitioner>,
    idempotent: Option<bool>,
}

macro_rules! setter {
    ($name:ident, $ty:ty, $doc:literal) => {
        #[doc = $doc]
        pub fn $name(&mut self, value: $ty) -> &mut Self {
            self.$name = Some(value);
            self
        }
    };
}

impl TopicProducerConfigBuilder {
    setter!(
        batch_size,
        usize,
        "Most uncompressed bytes in one batch (16 KiB)."
    );
    setter!(
        linger,
        Duration,
        "How long a batch waits for more records (100 ms)."
    );
    setter!(compression, Compression, "Per-batch codec (none).");
    setter!(
        delivery_semantic,
        DeliverySemantic,
        "At most once, or at least once with a retry policy (default)."
    );
    setter!(
        isolation,
        Isolation,
        "ReadUncommitted (acks 1, default) or ReadCommitted (acks all)."
    );
    setter!(
        timeout,
        Duration,
        "How long the SPU may wait for the isolation level (1500 ms)."
    );
    setter!(
        max_request_size,
        usize,
        "Largest request; bigger records are refused (1 MiB)."
    );
    setter!(
        buffer_memory,
        usize,
        "Bound on bytes waiting in the producer (32 MiB)."
    );
    setter!(
        partitioner,
        Partitioner,
        "Placement of keyless records (round-robin)."
    );

    setter!(
        idempotent,
        bool,
        "Producer id and sequences so retries never duplicate (on with AtLeastOnce)."
    );

    /// The configuration, or why the settings do not fit together.
    pub fn build(&self) -> Result<TopicProducerConfig, RillError> {
        let config = TopicProducerConfig {
            // The default batch size shrinks to fit a smaller request
            // limit; a batch size the user gave is checked below instead.
            batch_size: self
                .batch_size
                .unwrap_or((16 * 1024).min(self.max_request_size.unwrap_or(1024 * 1024))),
            linger: self.linger.unwrap_or(Duration::from_millis(100)),
            compression: self.compression.unwrap_or_default(),
            delivery_semantic: self.delivery_semantic.unwrap_or_default(),
            isolation: self.isolation.unwrap_or_default(),
            timeout: self.timeout.unwrap_or(Duration::from_millis(1500)),
            max_request_size: self.max_request_size.unwrap_or(1024 * 1024),
            buffer_memory: self.buffer_memory.unwrap_or(32 * 1024 * 1024),
            partitioner: self.partitioner.clone().unwrap_or_default(),
            idempotent: false,
        };
        let at_least_once = matches!(config.delivery_semantic, DeliverySemantic::AtLeastOnce(_));
        if self.idempotent == Some(true) && !at_least_once {
            return Err(RillError::Config(
                "idempotence needs the AtLeastOnce delivery semantic".into(),
            ));
        }
        let config = TopicProducerConfig {
            idempotent: self.idempotent.unwrap_or(at_least_once),
            ..config
        };
        if config.batch_size == 0 {
            return Err(RillError::Config(
                "batch_size must be at least 1 byte".into(),
            ));
        }
        if config.batch_size > config.max_request_size {
            // Such batches could never be sent whole: refuse rather than
            // quietly cap, so the numbers the user chose are the ones used.
            return Err(RillError::Config(format!(
                "batch_size ({} bytes) exceeds max_request_size ({} bytes): a full batch could never be sent; lower batch_size or raise max_request_size",
                config.batch_size, config.max_request_size
            )));
        }
        if config.buffer_memory < config.max_request_size {
            return Err(RillError::Config(format!(
                "buffer_memory ({} bytes) must hold at least one max_request_size ({} bytes)",
                config.buffer_memory, config.max_request_size
            )));
        }
        if config.timeout > Duration::from_millis(i32::MAX as u64) {
            return Err(RillError::Config(
                "timeout must fit in i32 milliseconds".into(),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_maps_to_kafka_acks() {
        assert_eq!(Isolation::ReadUncommitted.acks(), 1, "the leader has it");
        assert_eq!(Isolation::ReadCommitted.acks(), -1, "every in-sync replica");
        let config = TopicProducerConfigBuilder::default().build().unwrap();
        assert_eq!(config.isolation, Isolation::ReadUncommitted, "the default");
    }

    #[test]
    fn a_batch_size_that_cannot_fit_in_a_request_is_refused() {
        let err = TopicProducerConfigBuilder::default()
            .batch_size(2 * 1024 * 1024)
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("2097152") && err.contains("1048576"), "{err}");
        let fits = TopicProducerConfigBuilder::default()
            .batch_size(2 * 1024 * 1024)
            .max_request_size(2 * 1024 * 1024)
            .buffer_memory(32 * 1024 * 1024)
            .build();
        assert!(fits.is_ok());
        let capped = TopicProducerConfigBuilder::default()
            .max_request_size(1000)
            .build()
            .unwrap();
        assert_eq!(
            capped.batch_size, 1000,
            "the default batch size fits the request"
        );
    }
}

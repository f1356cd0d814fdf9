use std::time::Duration;

use rill_protocol::batch::ValidationLimits;

use crate::StorageError;

/// When appended data is forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushPolicy {
    /// fsync before `append` returns: an acknowledged batch survives a power
    /// cut.
    Always,
    /// fsync once `messages` records are unflushed or `interval` has passed
    /// since the last fsync (Kafka's `flush.messages` / `flush.ms`), checked
    /// on append and by [`crate::PartitionLog::flush_if_due`].
    Interval { messages: u64, interval: Duration },
    /// Leave it to the page cache (Kafka's default): survives a process crash
    /// (`kill -9`), not a power cut. Segments are still fsynced when they roll
    /// and when the log closes.
    #[default]
    Never,
}

/// Settings of one partition log. Names carry their units.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A segment rolls once the next append would take it past this size.
    pub segment_bytes: u64,
    /// An offset-index and time-index entry is added every this many bytes.
    pub index_interval_bytes: u64,
    /// Closed segments whose newest record is older than this are deleted;
    /// `None` keeps them forever.
    pub retention_ms: Option<u64>,
    /// Oldest closed segments are deleted while the log stays at least this
    /// large without them; `None` for no size bound.
    pub retention_bytes: Option<u64>,
    pub flush: FlushPolicy,
    /// Largest batch `append` accepts (Kafka's `max.message.bytes`).
    pub max_batch_bytes: usize,
    /// Most bytes a compressed batch may expand to while it is validated.
    pub max_decompressed_bytes: usize,
}

/// Kafka's `segment.bytes` default: 1 GiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
/// Positions in the offset index are 32-bit: segments stay under 2 GiB.
pub const MAX_SEGMENT_BYTES: u64 = (i32::MAX as u64) + 1;
/// Seven days, Kafka's `retention.ms` default.
pub const DEFAULT_RETENTION_MS: u64 = 7 * 24 * 60 * 60 * 1000;

impl Default for LogConfig {
    fn default() -> Self {
        let limits = ValidationLimits::default();
        Self {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            index_interval_bytes: 4096,
            retention_ms: Some(DEFAULT_RETENTION_MS),
            retention_bytes: None,
            flush: FlushPolicy::Never,
            max_batch_bytes: limits.max_batch_bytes,
            max_decompressed_bytes: limits.max_decompressed_bytes,
        }
    }
}

impl LogConfig {
    pub(crate) fn check(&self) -> Result<(), StorageError> {
        if self.segment_bytes == 0 || self.segment_bytes > MAX_SEGMENT_BYTES {
            return Err(StorageError::Config(format!(
                "segment_bytes {} must be in 1..={MAX_SEGMENT_BYTES}",
                self.segment_bytes
            )));
        }
        if self.index_interval_bytes == 0 {
            return Err(StorageError::Config(
                "index_interval_bytes must be at least 1".into(),
            ));
        }
        if let FlushPolicy::Interval { messages: 0, .. } = self.flush {
            return Err(StorageError::Config(
                "flush interval messages must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn limits(&self) -> ValidationLimits {
        ValidationLimits {
            max_batch_bytes: self.max_batch_bytes,
            max_decompressed_bytes: self.max_decompressed_bytes,
        }
    }
}

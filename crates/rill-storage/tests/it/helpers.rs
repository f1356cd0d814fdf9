use std::path::{Path, PathBuf};
use std::sync::Arc;

use rill_protocol::{Compression, NewRecord, RecordBatch, RecordBatchBuilder};
use rill_storage::{Backend, LogConfig, PartitionLog, SimBackend};

pub const DIR: &str = "/sim/topic-0";

pub fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

/// A batch of `values`, record i stamped `ts + i`.
pub fn batch_of(values: &[Vec<u8>], ts: i64, codec: Compression) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(codec);
    for (i, v) in values.iter().enumerate() {
        b.push(&NewRecord::new(None, v, ts + i as i64)).unwrap();
    }
    b.build().unwrap()
}

/// A batch of `n` records whose values name their batch and position.
pub fn batch(tag: u64, n: usize, ts: i64) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("b{tag}-r{i}").into_bytes())
        .collect();
    batch_of(&values, ts, Compression::None)
}

pub fn open(backend: &SimBackend, config: LogConfig) -> PartitionLog {
    PartitionLog::open(Arc::new(backend.clone()) as Arc<dyn Backend>, dir(), config).unwrap()
}

pub fn small_segments(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 128,
        retention_ms: None,
        ..LogConfig::default()
    }
}

/// Every record from the log start to the end, as (offset, value).
pub fn read_all(log: &PartitionLog) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let res = log.read(offset, 1000).unwrap();
        assert!(!res.batches.is_empty(), "no batch at offset {offset}");
        for slice in rill_protocol::batch::split_batches(&res.batches) {
            let batch = RecordBatch::new(slice.unwrap()).unwrap();
            for r in batch.records(1 << 24).unwrap().iter() {
                let r = r.unwrap();
                let at = r.offset as u64;
                if at >= offset {
                    out.push((at, r.value.unwrap().to_vec()));
                }
            }
            offset = batch.header.next_offset() as u64;
        }
    }
    out
}

pub fn log_file(base: u64) -> PathBuf {
    Path::new(DIR).join(format!("{base:020}.log"))
}

pub fn index_file(base: u64, ext: &str) -> PathBuf {
    Path::new(DIR).join(format!("{base:020}.{ext}"))
}

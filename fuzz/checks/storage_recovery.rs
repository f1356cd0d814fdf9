//! Storage recovery from arbitrary segment bytes: a partition directory on
//! the simulated disk whose segment (and, if the first byte says so, offset
//! index) holds the input. Opening the log must not panic; whatever it
//! keeps must read back as whole batches with contiguous offsets that pass
//! the stored-batch check (length, magic, CRC, offsets); it must take an
//! append at its end; and a reopen must find the same log.
//!
//! Recovery does not walk the records inside a batch (as Kafka's does not):
//! a batch with a valid CRC but records that do not decode, which only a
//! forged CRC can produce (the fuzzer forges them), is kept; reading its
//! records must fail cleanly, not panic.
//!
//! Shared by the fuzz target and the corpus replay test.

use std::path::Path;
use std::sync::Arc;

use rill_protocol::batch::{split_batches, verify_stored_batch};
use rill_protocol::{Compression, NewRecord, RecordBatch, RecordBatchBuilder};
use rill_storage::{Backend, LogConfig, PartitionLog, SimBackend};

const DIR: &str = "/sim/fuzz-0";

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 64,
        retention_ms: None,
        max_batch_bytes: 64 * 1024,
        max_decompressed_bytes: 256 * 1024,
        ..LogConfig::default()
    }
}

fn open(sim: &SimBackend) -> PartitionLog {
    PartitionLog::open(Arc::new(sim.clone()) as Arc<dyn Backend>, DIR, config())
        .expect("a log over any bytes opens (recovery cuts what is bad)")
}

/// Reads every batch from the log start to its end; returns the batches'
/// (base offset, next offset).
fn read_all(log: &PartitionLog) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let res = log.read(offset, 1 << 20).expect("a recovered log reads");
        assert!(
            !res.batches.is_empty(),
            "no batch at {offset} below the end {end}"
        );
        for slice in split_batches(&res.batches) {
            let slice = slice.expect("whole batches");
            verify_stored_batch(slice).expect("a kept batch passes the stored-batch check");
            let batch = RecordBatch::new(slice).expect("a valid batch");
            let base = batch.header.base_offset as u64;
            let next = batch.header.next_offset() as u64;
            assert!(
                base <= offset && next > offset,
                "offsets not contiguous at {offset}"
            );
            if let Ok(records) = batch.records(1 << 20) {
                for record in records.iter() {
                    let _ = record.map(|r| (r.offset, r.key.map(<[u8]>::len)));
                }
            }
            out.push((base, next));
            offset = next;
        }
    }
    out
}

/// The whole check for one input. Panics on a bug.
pub fn check(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let sim = SimBackend::new();
    let dir = Path::new(DIR);
    let base = u64::from(selector >> 4) * 7;
    let name = |ext: &str| dir.join(format!("{base:020}.{ext}"));
    if selector & 1 == 1 && rest.len() >= 2 {
        // Split: the segment, then bytes posing as its offset index.
        let cut = usize::from(rest[0]) % rest.len();
        sim.overwrite(&name("log"), rest[1..cut.max(1)].to_vec());
        sim.overwrite(&name("index"), rest[cut.max(1)..].to_vec());
    } else {
        sim.overwrite(&name("log"), rest.to_vec());
    }
    let mut log = open(&sim);
    let end = log.log_end_offset();
    let batches = read_all(&log);
    assert_eq!(batches.last().map_or(log.log_start_offset(), |b| b.1), end);

    let mut builder = RecordBatchBuilder::new(Compression::None);
    builder
        .push(&NewRecord::new(Some(b"k"), b"after recovery", 1))
        .expect("push");
    let mut batch = builder.build().expect("build");
    let info = log
        .append(&mut batch)
        .expect("a recovered log takes appends");
    assert_eq!(
        info.base_offset, end,
        "the append lands at the recovered end"
    );
    drop(log);

    let log = open(&sim);
    assert_eq!(log.log_end_offset(), end + 1, "a reopen finds the same log");
    let again = read_all(&log);
    assert_eq!(
        &again[..again.len() - 1],
        &batches[..],
        "a reopen keeps what was recovered"
    );
}

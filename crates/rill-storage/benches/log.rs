//! Partition log throughput against plain file I/O in the same directory.
//!
//! - `append/partition_log`: 16 KiB record batches of ~100-byte records
//!   appended one per call to a [`PartitionLog`] (`FileBackend`,
//!   `FlushPolicy::Never`, so the page cache takes the writes);
//!   `append/plain_write`: the same bytes written with `File::write_all`,
//!   one call per batch.
//! - `read/partition_log`: a pre-filled log read from offset 0 to its end
//!   with `max_bytes` = 1 MiB; `read/plain_read`: the segment file itself
//!   read sequentially in 1 MiB `read` calls into one reused buffer.
//!
//! - `validate/*`: the CPU part of an append alone (no I/O), to explain the
//!   gap between the two `append` rows.
//!
//! Each measurement moves a fixed volume (64 MiB) so the two sides of a pair
//! are timed on identical work; compare their throughputs within one run.
//!
//! `append` rewrites only `base_offset` in place, which the batch CRC does
//! not cover, so one batch buffer stays valid and is appended again and
//! again: neither side copies the batch, and both write from the same
//! buffer. Opening the log or creating the file, and removing them
//! afterwards, are outside the timed region.
//!
//! Run: `cargo bench -p rill-storage --bench log`.

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use rill_protocol::batch::{split_batches, validate_batch, verify_stored_batch, ValidationLimits};
use rill_protocol::{BatchHeader, Compression, NewRecord, RecordBatchBuilder};
use rill_storage::{FileBackend, FlushPolicy, LogConfig, PartitionLog};

/// Largest size of one record batch, header included.
const BATCH_BYTES: usize = 16 * 1024;
/// Value size of each record (no key, no headers).
const RECORD_VALUE_BYTES: usize = 100;
/// Bytes written or read by one timed iteration.
const VOLUME_BYTES: usize = 64 * 1024 * 1024;
/// `max_bytes` of each log read, and the plain read's chunk.
const READ_CHUNK_BYTES: usize = 1024 * 1024;

fn config() -> LogConfig {
    LogConfig {
        flush: FlushPolicy::Never,
        retention_ms: None,
        ..LogConfig::default()
    }
}

fn open_log(dir: &Path) -> PartitionLog {
    PartitionLog::open(Arc::new(FileBackend), dir, config()).expect("open log")
}

/// One uncompressed batch of as many ~100-byte records as fit in 16 KiB.
/// Values vary from record to record, like real payloads.
fn build_batch() -> Vec<u8> {
    let mut builder = RecordBatchBuilder::with_capacity(Compression::None, BATCH_BYTES);
    let base_ts = 1_700_000_000_000i64;
    let mut value = vec![0u8; RECORD_VALUE_BYTES];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0.. {
        for byte in value.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *byte = b'a' + (seed % 26) as u8;
        }
        let record = NewRecord::new(None, &value, base_ts + i);
        let len = builder.encoded_len(&record).expect("record size");
        if builder.uncompressed_bytes() + len > BATCH_BYTES {
            break;
        }
        builder.push(&record).expect("push record");
    }
    builder.build().expect("build batch")
}

/// A fresh, empty path in `root` for one iteration.
fn fresh_path(root: &Path, name: &str, counter: &mut u64) -> PathBuf {
    *counter += 1;
    root.join(format!("{name}-{counter}"))
}

fn bench_append(c: &mut Criterion) {
    let mut batch = build_batch();
    let batches = VOLUME_BYTES / batch.len();
    let volume = (batches * batch.len()) as u64;
    let root = tempfile::tempdir().expect("tempdir");
    let mut counter = 0u64;

    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Bytes(volume));
    // Tens of milliseconds an iteration: the same count in every sample.
    group.sampling_mode(SamplingMode::Flat);

    group.bench_function("partition_log", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let dir = fresh_path(root.path(), "log", &mut counter);
                let mut log = open_log(&dir);
                let start = Instant::now();
                for _ in 0..batches {
                    black_box(log.append(&mut batch).expect("append"));
                }
                elapsed += start.elapsed();
                assert_eq!(log.size_bytes(), volume);
                drop(log);
                std::fs::remove_dir_all(&dir).expect("remove log");
            }
            elapsed
        });
    });

    group.bench_function("plain_write", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let path = fresh_path(root.path(), "plain", &mut counter);
                let mut file = File::create(&path).expect("create file");
                let start = Instant::now();
                for _ in 0..batches {
                    file.write_all(black_box(&batch)).expect("write");
                }
                elapsed += start.elapsed();
                assert_eq!(file.metadata().expect("stat").len(), volume);
                drop(file);
                std::fs::remove_file(&path).expect("remove file");
            }
            elapsed
        });
    });

    group.finish();
}

/// The CPU part of an append, without I/O: the full check `append` runs on
/// every batch (`validate_batch`: CRC and a walk over every record), and the
/// cheap check recovery runs on stored batches (`verify_stored_batch`:
/// length, magic, CRC). Same batch and volume as `append`.
fn bench_validate(c: &mut Criterion) {
    let batch = build_batch();
    let batches = VOLUME_BYTES / batch.len();
    let volume = (batches * batch.len()) as u64;
    let limits = ValidationLimits::default();

    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Bytes(volume));
    group.bench_function("validate_batch", |b| {
        b.iter(|| {
            for _ in 0..batches {
                black_box(validate_batch(black_box(&batch), &limits).expect("valid"));
            }
        });
    });
    group.bench_function("verify_stored_batch", |b| {
        b.iter(|| {
            for _ in 0..batches {
                black_box(verify_stored_batch(black_box(&batch)).expect("valid"));
            }
        });
    });
    group.finish();
}

/// Offset after the last batch of a read.
fn next_offset(batches: &[u8]) -> u64 {
    let last = split_batches(batches)
        .last()
        .expect("a read returns a batch")
        .expect("whole batches");
    BatchHeader::parse(last).expect("header").next_offset() as u64
}

fn bench_read(c: &mut Criterion) {
    let mut batch = build_batch();
    let batches = VOLUME_BYTES / batch.len();
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("topic-0");
    let mut log = open_log(&dir);
    for _ in 0..batches {
        log.append(&mut batch).expect("append");
    }
    log.flush().expect("flush");
    let volume = log.size_bytes();
    let end = log.log_end_offset();
    let segment = dir.join(format!("{:020}.log", 0));
    assert_eq!(
        std::fs::metadata(&segment).expect("segment").len(),
        volume,
        "the log is one segment"
    );

    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Bytes(volume));

    group.bench_function("partition_log", |b| {
        b.iter(|| {
            let mut offset = 0u64;
            let mut bytes = 0usize;
            while offset < end {
                let read = log.read(offset, READ_CHUNK_BYTES).expect("read");
                bytes += read.batches.len();
                offset = next_offset(&read.batches);
            }
            assert_eq!(bytes as u64, volume);
            bytes
        });
    });

    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    group.bench_function("plain_read", |b| {
        b.iter(|| {
            let mut file = File::open(&segment).expect("open segment");
            let mut bytes = 0usize;
            loop {
                let n = file.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                bytes += n;
                black_box(&buf[..n]);
            }
            assert_eq!(bytes as u64, volume);
            bytes
        });
    });

    group.finish();
}

fn config_criterion() -> Criterion {
    // Short runs: this is meant to run on a shared 2-core machine.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config_criterion();
    targets = bench_append, bench_read, bench_validate
}
criterion_main!(benches);

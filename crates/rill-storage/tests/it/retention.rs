use rill_storage::{LogConfig, SimBackend, StorageError};

use crate::helpers::*;

#[test]
fn time_retention_deletes_old_closed_segments_only() {
    let sim = SimBackend::new();
    let cfg = LogConfig {
        retention_ms: Some(10_000),
        ..small_segments(800)
    };
    let mut log = open(&sim, cfg.clone());
    // Timestamps 0, 1000, ..., 49_000.
    for i in 0..50 {
        log.append(&mut batch(i, 2, i as i64 * 1000)).unwrap();
    }
    let segments_before = log.segment_count();
    assert!(segments_before > 4);
    // Nothing is older than 10 s at t = 50 s? Records up to 40 s are.
    let outcome = log.apply_retention(50_000).unwrap();
    assert!(outcome.segments_deleted > 0);
    let start = log.log_start_offset();
    assert_eq!(outcome.log_start_offset, start);
    assert_eq!(start, log.segment_base_offsets()[0]);
    // What is left: every remaining closed segment has a record newer than 40 s.
    let remaining = read_all(&log);
    assert_eq!(remaining.first().unwrap().0, start);
    assert!(remaining.len() as u64 == log.log_end_offset() - start);
    // Reading below the start is out of range; offsets are not reused.
    assert!(matches!(
        log.read(start - 1, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    let next = log.append(&mut batch(100, 1, 60_000)).unwrap();
    assert_eq!(next.base_offset, 100);
    // Far in the future everything closed goes, the active segment stays.
    log.apply_retention(10_000_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert!(log.read(log.log_start_offset(), 100).is_ok());
    // The log start survives a restart.
    let start = log.log_start_offset();
    log.close().unwrap();
    let log = open(&sim, cfg);
    assert_eq!(log.log_start_offset(), start);
    assert_eq!(log.log_end_offset(), 101);
}

#[test]
fn size_retention_keeps_at_least_the_bound() {
    let sim = SimBackend::new();
    let cfg = LogConfig {
        retention_bytes: Some(5_000),
        ..small_segments(1_000)
    };
    let mut log = open(&sim, cfg);
    for i in 0..100 {
        log.append(&mut batch(i, 2, 1)).unwrap();
    }
    let before = log.size_bytes();
    let outcome = log.apply_retention(0).unwrap();
    assert!(outcome.segments_deleted > 0);
    assert_eq!(log.size_bytes(), before - outcome.bytes_deleted);
    assert!(log.size_bytes() >= 5_000, "kept {}", log.size_bytes());
    // Removing one more segment would take it under the bound.
    let oldest = sim
        .contents(&log_file(log.segment_base_offsets()[0]))
        .unwrap()
        .len() as u64;
    assert!(log.size_bytes() - oldest < 5_000);
    assert_eq!(
        log.apply_retention(0).unwrap().segments_deleted,
        0,
        "a second pass is a no-op"
    );
}

#[test]
fn no_retention_keeps_everything() {
    let sim = SimBackend::new();
    let mut log = open(&sim, small_segments(500));
    for i in 0..40 {
        log.append(&mut batch(i, 2, 0)).unwrap();
    }
    assert_eq!(log.apply_retention(i64::MAX).unwrap().segments_deleted, 0);
    assert_eq!(log.log_start_offset(), 0);
}

#[test]
fn deleting_below_an_offset_takes_only_segments_wholly_below_it() {
    let sim = SimBackend::new();
    let cfg = small_segments(800);
    let mut log = open(&sim, cfg.clone());
    for i in 0..50 {
        log.append(&mut batch(i, 2, 1)).unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() > 4);
    // An offset inside the third segment: the first two go, the third stays.
    let cut = bases[2] + 1;
    let outcome = log.delete_segments_below(cut).unwrap();
    assert_eq!(outcome.segments_deleted, 2);
    assert_eq!(log.log_start_offset(), bases[2]);
    assert_eq!(read_all(&log).first().unwrap().0, bases[2]);
    // Below the start again: nothing more.
    assert_eq!(log.delete_segments_below(cut).unwrap().segments_deleted, 0);
    // Past the end: every closed segment goes, the active one stays.
    log.delete_segments_below(u64::MAX).unwrap();
    assert_eq!(log.segment_count(), 1);
    let start = log.log_start_offset();
    assert_eq!(start, *bases.last().unwrap());
    log.close().unwrap();
    let log = open(&sim, cfg);
    assert_eq!(log.log_start_offset(), start, "the new start is durable");
    assert_eq!(log.log_end_offset(), 100);
}

use std::sync::Arc;

use rill_protocol::batch::{split_batches, BatchHeader};
use rill_protocol::Compression;
use rill_storage::{
    Batches, FileBackend, FlushPolicy, LogConfig, PartitionLog, SimBackend, StorageError,
    MAX_SLICE_BATCHES,
};

use crate::helpers::*;

#[test]
fn offsets_start_at_zero_and_grow_by_record() {
    let sim = SimBackend::new();
    let mut log = open(&sim, LogConfig::default());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let a = log.append(&mut batch(0, 3, 1000)).unwrap();
    let b = log.append(&mut batch(1, 2, 1003)).unwrap();
    assert_eq!((a.base_offset, a.last_offset), (0, 2));
    assert_eq!((b.base_offset, b.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);
    let offsets: Vec<u64> = read_all(&log).iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
}

#[test]
fn stored_batches_are_byte_identical_but_for_base_offset() {
    let sim = SimBackend::new();
    let mut log = open(&sim, LogConfig::default());
    log.append(&mut batch(0, 2, 1)).unwrap();
    for codec in Compression::ALL {
        let original = batch_of(&[b"x".repeat(500), b"y".repeat(10)], 77, codec);
        let mut sent = original.clone();
        let info = log.append(&mut sent).unwrap();
        let got = log.read(info.base_offset, 1).unwrap().batches;
        assert_eq!(got.len(), original.len(), "{codec:?}");
        assert_eq!(
            &got[8..],
            &original[8..],
            "{codec:?}: only base_offset may change"
        );
        assert_eq!(
            BatchHeader::parse(&got).unwrap().base_offset as u64,
            info.base_offset
        );
    }
}

#[test]
fn read_returns_one_whole_batch_even_past_max_bytes() {
    let sim = SimBackend::new();
    let mut log = open(&sim, LogConfig::default());
    let big = batch_of(&[vec![7u8; 10_000]], 1, Compression::None);
    log.append(&mut big.clone()).unwrap();
    log.append(&mut batch(1, 1, 2)).unwrap();
    let res = log.read(0, 100).unwrap();
    assert_eq!(
        res.batches.len(),
        big.len(),
        "exactly the first batch, whole"
    );
    // With room for both, both come back.
    let res = log.read(0, 1 << 20).unwrap();
    assert_eq!(split_batches(&res.batches).count(), 2);
    // An offset inside a batch returns that whole batch.
    let mut three = batch(2, 3, 5);
    let info = log.append(&mut three).unwrap();
    let res = log.read(info.base_offset + 2, 10).unwrap();
    assert_eq!(
        BatchHeader::parse(&res.batches).unwrap().base_offset as u64,
        info.base_offset
    );
}

#[test]
fn reads_outside_the_log_are_errors_and_the_end_is_empty() {
    let sim = SimBackend::new();
    let mut log = open(&sim, LogConfig::default());
    log.append(&mut batch(0, 4, 1)).unwrap();
    assert!(log.read(4, 100).unwrap().batches.is_empty());
    assert!(matches!(
        log.read(5, 100),
        Err(StorageError::OffsetOutOfRange {
            offset: 5,
            log_start_offset: 0,
            log_end_offset: 4
        })
    ));
}

#[test]
fn bad_batches_are_refused_and_nothing_stored_changes() {
    let sim = SimBackend::new();
    let mut log = open(
        &sim,
        LogConfig {
            max_batch_bytes: 2_000,
            ..LogConfig::default()
        },
    );
    log.append(&mut batch(0, 3, 1)).unwrap();
    let before = sim.contents(&log_file(0)).unwrap();

    let mut bad_crc = batch(1, 2, 2);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    assert!(matches!(
        log.append(&mut bad_crc),
        Err(StorageError::InvalidBatch(_))
    ));
    let mut too_big = batch_of(&[vec![0u8; 3_000]], 1, Compression::None);
    assert!(matches!(
        log.append(&mut too_big),
        Err(StorageError::InvalidBatch(_))
    ));
    // A good batch followed by a torn one: all or nothing.
    let mut mixed = batch(2, 1, 3);
    mixed.extend_from_slice(&batch(3, 1, 4)[..30]);
    assert!(log.append(&mut mixed).is_err());
    assert!(matches!(
        log.append(&mut []),
        Err(StorageError::EmptyAppend)
    ));

    assert_eq!(sim.contents(&log_file(0)).unwrap(), before);
    assert_eq!(log.log_end_offset(), 3);
    let next = log.append(&mut batch(4, 1, 5)).unwrap();
    assert_eq!(next.base_offset, 3);
}

#[test]
fn several_batches_in_one_append_get_consecutive_offsets() {
    let sim = SimBackend::new();
    let mut log = open(&sim, LogConfig::default());
    let mut set = batch(0, 2, 1);
    set.extend_from_slice(&batch(1, 3, 2));
    let info = log.append(&mut set).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 4));
    let headers: Vec<i64> = split_batches(&log.read(0, 1 << 20).unwrap().batches)
        .map(|b| BatchHeader::parse(b.unwrap()).unwrap().base_offset)
        .collect();
    assert_eq!(headers, vec![0, 2]);
}

#[test]
fn segments_roll_at_segment_bytes_and_reads_cross_them() {
    let sim = SimBackend::new();
    let mut log = open(&sim, small_segments(1_000));
    for i in 0..50 {
        log.append(&mut batch(i, 3, i as i64 * 10)).unwrap();
    }
    assert!(log.segment_count() >= 5, "{} segments", log.segment_count());
    for (base, next) in log
        .segment_base_offsets()
        .iter()
        .zip(log.segment_base_offsets().iter().skip(1))
    {
        assert!(base < next);
        let size = sim.contents(&log_file(*base)).unwrap().len();
        assert!(size <= 1_000, "segment {base} has {size} bytes");
    }
    let all = read_all(&log);
    assert_eq!(all.len(), 150);
    assert!(all.iter().enumerate().all(|(i, (o, _))| *o == i as u64));
    assert_eq!(all[149].1, b"b49-r2");
}

#[test]
fn high_watermark_bounds_committed_reads_and_persists() {
    let sim = SimBackend::new();
    let mut log = open(&sim, LogConfig::default());
    log.append(&mut batch(0, 2, 1)).unwrap();
    log.set_high_watermark(2);
    log.append(&mut batch(1, 2, 2)).unwrap();
    assert_eq!(log.high_watermark(), 2);
    assert!(log.read_committed(2, 1000).unwrap().batches.is_empty());
    assert!(!log.read(2, 1000).unwrap().batches.is_empty());
    log.set_high_watermark(1); // never moves back
    assert_eq!(log.high_watermark(), 2);
    log.set_high_watermark(99); // clamped to the log end
    assert_eq!(log.high_watermark(), 4);
    log.close().unwrap();
    let log = open(&sim, LogConfig::default());
    assert_eq!(log.high_watermark(), 4);
}

#[test]
fn timestamps_find_the_first_record_at_or_after() {
    let sim = SimBackend::new();
    let mut log = open(&sim, small_segments(600));
    // Batch i holds records stamped 1000*i + 0..4.
    for i in 0..40u64 {
        log.append(&mut batch(i, 5, 1000 * i as i64)).unwrap();
    }
    assert!(log.segment_count() > 3);
    for i in 0..40u64 {
        for j in 0..5u64 {
            let ts = (1000 * i + j) as i64;
            let found = log.offset_for_timestamp(ts).unwrap().unwrap();
            assert_eq!(found.offset, 5 * i + j, "timestamp {ts}");
            assert_eq!(found.timestamp, ts);
        }
        // Between batches: the next batch's first record.
        if i < 39 {
            let found = log
                .offset_for_timestamp((1000 * i + 500) as i64)
                .unwrap()
                .unwrap();
            assert_eq!(found.offset, 5 * (i + 1));
        }
    }
    assert_eq!(log.offset_for_timestamp(1_000_000).unwrap(), None);
    // The same answers after a restart (indexes read back from disk).
    log.close().unwrap();
    let log = open(&sim, small_segments(600));
    assert_eq!(
        log.offset_for_timestamp(17_003).unwrap().unwrap().offset,
        88
    );
}

#[test]
fn flush_policies_report_durability() {
    let sim = SimBackend::new();
    let mut always = open(
        &sim,
        LogConfig {
            flush: FlushPolicy::Always,
            ..LogConfig::default()
        },
    );
    assert!(always.append(&mut batch(0, 1, 1)).unwrap().durable);
    drop(always);

    let sim = SimBackend::new();
    let mut never = open(&sim, LogConfig::default());
    assert!(!never.append(&mut batch(0, 1, 1)).unwrap().durable);
    drop(never);

    let sim = SimBackend::new();
    let config = LogConfig {
        flush: FlushPolicy::Interval {
            messages: 3,
            interval: std::time::Duration::from_secs(3600),
        },
        ..LogConfig::default()
    };
    let mut every3 = open(&sim, config);
    let durable: Vec<bool> = (0..6)
        .map(|i| every3.append(&mut batch(i, 1, 1)).unwrap().durable)
        .collect();
    assert_eq!(durable, vec![false, false, true, false, false, true]);
    every3.append(&mut batch(9, 1, 1)).unwrap();
    let later = std::time::Instant::now() + std::time::Duration::from_secs(7200);
    assert!(every3.flush_if_due(later).unwrap());
    assert!(
        !every3.flush_if_due(later).unwrap(),
        "nothing left to flush"
    );
}

#[test]
fn real_files_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("orders-3");
    let config = small_segments(4096);
    let mut log = PartitionLog::open(Arc::new(FileBackend), &dir, config.clone()).unwrap();
    for i in 0..100 {
        log.append(&mut batch(i, 4, i as i64)).unwrap();
    }
    log.close().unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.contains(&"00000000000000000000.log".to_string()));
    assert!(names.contains(&"00000000000000000000.index".to_string()));
    assert!(names.contains(&"00000000000000000000.timeindex".to_string()));
    assert!(names.contains(&"checkpoint".to_string()));
    let log = PartitionLog::open(Arc::new(FileBackend), &dir, config).unwrap();
    assert_eq!(log.log_end_offset(), 400);
    let all = read_all(&log);
    assert_eq!(all.len(), 400);
    assert_eq!(all[399].1, b"b99-r3");
}

#[test]
fn failed_writes_leave_the_log_whole_and_it_recovers() {
    let sim = SimBackend::new();
    let mut log = open(&sim, LogConfig::default());
    log.append(&mut batch(0, 2, 1)).unwrap();
    // A write that lands in part, then fails: the tail is cut back.
    sim.set_write_budget(Some(20));
    assert!(matches!(
        log.append(&mut batch(1, 2, 2)),
        Err(StorageError::Io { .. })
    ));
    sim.set_write_budget(None);
    let info = log.append(&mut batch(2, 2, 3)).unwrap();
    assert_eq!(info.base_offset, 2);
    // Every write failing: appends fail, reads still work.
    sim.set_fail_writes(true);
    assert!(log.append(&mut batch(3, 1, 4)).is_err());
    assert_eq!(read_all(&log).len(), 4);
    sim.set_fail_writes(false);
    drop(log);
    let log = open(&sim, LogConfig::default());
    let values: Vec<Vec<u8>> = read_all(&log).into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        values,
        vec![
            b"b0-r0".to_vec(),
            b"b0-r1".to_vec(),
            b"b2-r0".to_vec(),
            b"b2-r1".to_vec()
        ]
    );
}

#[test]
fn an_open_log_takes_new_settings_at_their_next_use() {
    let sim = SimBackend::new();
    let mut log = open(&sim, LogConfig::default());
    log.append(&mut batch(0, 3, 1)).unwrap();
    // A larger batch than the new limit is refused from the next append.
    let mut big = batch_of(&[vec![0u8; 3_000]], 2, Compression::None);
    log.reconfigure(LogConfig {
        max_batch_bytes: 2_000,
        ..log.config().clone()
    })
    .unwrap();
    assert!(matches!(
        log.append(&mut big.clone()),
        Err(StorageError::InvalidBatch(_))
    ));
    log.reconfigure(LogConfig {
        max_batch_bytes: 10_000,
        ..log.config().clone()
    })
    .unwrap();
    log.append(&mut big).unwrap();
    // A smaller segment size rolls the active segment at the next append.
    assert_eq!(log.segment_count(), 1);
    log.reconfigure(small_segments(1_000)).unwrap();
    for i in 0..40 {
        log.append(&mut batch(10 + i, 3, 3)).unwrap();
    }
    assert!(log.segment_count() >= 3, "{} segments", log.segment_count());
    // Retention from the new settings: everything closed goes.
    log.reconfigure(LogConfig {
        retention_ms: Some(1),
        ..log.config().clone()
    })
    .unwrap();
    log.apply_retention(1_000_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    // Settings `open` refuses are refused here too, and nothing changes.
    let before = log.config().clone();
    assert!(matches!(
        log.reconfigure(LogConfig {
            segment_bytes: 0,
            ..before
        }),
        Err(StorageError::Config(_))
    ));
    assert_eq!(log.config().segment_bytes, 1_000);
}

/// The bytes of `batches`, read from their file when they were left there.
/// The records of whole batches, by their headers' counts.
fn records_in(batches: &[u8]) -> u64 {
    split_batches(batches)
        .map(|b| BatchHeader::parse(b.unwrap()).unwrap().records_count as u64)
        .sum()
}

fn batch_bytes(batches: &Batches) -> Vec<u8> {
    match batches {
        Batches::Bytes(b) => b.clone(),
        Batches::File(f) => f.read_bytes().unwrap(),
    }
}

#[test]
fn file_slices_hold_exactly_what_a_read_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("slices-0");
    let config = small_segments(64 * 1024);
    let mut log = PartitionLog::open(Arc::new(FileBackend), &dir, config).unwrap();
    // Batches of 1 to 9 records of different sizes, over several segments.
    for i in 0..60u64 {
        let values: Vec<Vec<u8>> = (0..1 + i % 9)
            .map(|r| vec![b'a' + (r % 26) as u8; 50 + (i as usize * 37) % 700])
            .collect();
        log.append(&mut batch_of(&values, i as i64, Compression::None))
            .unwrap();
    }
    log.set_high_watermark(log.log_end_offset() - 7);
    let end = log.log_end_offset();
    let mut slices = 0;
    for offset in (0..end).step_by(5) {
        for max_bytes in [0, 1, 500, 3000, 20_000, 1 << 20] {
            for committed in [false, true] {
                let want = if committed {
                    log.read_committed(offset, max_bytes)
                } else {
                    log.read(offset, max_bytes)
                }
                .unwrap();
                let got = log.read_batches(offset, max_bytes, committed).unwrap();
                let what = format!("offset {offset}, max {max_bytes}, committed {committed}");
                assert_eq!(batch_bytes(&got.batches), want.batches, "{what}");
                assert_eq!(got.batches.byte_len(), want.batches.len() as u64, "{what}");
                assert_eq!(got.high_watermark, want.high_watermark, "{what}");
                if let Batches::File(f) = &got.batches {
                    slices += 1;
                    assert_eq!(f.records, records_in(&want.batches), "{what}");
                }
            }
        }
    }
    assert!(slices > 100, "a real file gives slices ({slices})");
    // A simulated disk has no file to send from: the bytes are read.
    let sim = SimBackend::new();
    let mut log = open(&sim, LogConfig::default());
    log.append(&mut batch(0, 3, 1)).unwrap();
    let got = log.read_batches(0, 1 << 20, false).unwrap();
    assert!(matches!(got.batches, Batches::Bytes(ref b) if !b.is_empty()));
}

/// Many small batches are one slice when the offset index places most of
/// them (no header read per batch); with a sparse index, more than
/// `MAX_SLICE_BATCHES` headers to walk make the read copy them instead.
#[test]
fn many_small_batches_are_sliced_through_the_index_or_read() {
    let tmp = tempfile::tempdir().unwrap();
    let n = MAX_SLICE_BATCHES as u64 + 10;
    for (name, index_interval_bytes, sliced) in [("dense", 4096, true), ("sparse", 1 << 30, false)]
    {
        let config = LogConfig {
            index_interval_bytes,
            ..LogConfig::default()
        };
        let mut log =
            PartitionLog::open(Arc::new(FileBackend), tmp.path().join(name), config).unwrap();
        for i in 0..n {
            log.append(&mut batch(i, 1, i as i64)).unwrap();
        }
        let want = log.read(0, 1 << 20).unwrap().batches;
        let all = log.read_batches(0, 1 << 20, false).unwrap();
        assert_eq!(batch_bytes(&all.batches), want, "{name}");
        match all.batches {
            Batches::File(f) => {
                assert!(sliced, "{name}: more headers than a slice walks");
                assert_eq!(f.records, n, "{name}");
            }
            Batches::Bytes(_) => assert!(!sliced, "{name}: the index places the batches"),
        }
        let few = log.read_batches(n - 5, 1 << 20, false).unwrap();
        match few.batches {
            Batches::File(f) => assert_eq!(f.records, 5, "{name}"),
            other => panic!("{name}: five batches should be a slice: {other:?}"),
        }
    }
}

/// Reads from far back in a reopened log (no batch remembered, so the
/// slice's end comes from the offset index and the headers after its
/// entry) give exactly what `read` gives, and so they do when an entry of
/// the index points into the middle of a batch (the slice falls back to
/// walking the headers).
#[test]
fn slices_placed_by_the_index_match_reads_even_when_it_lies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("indexed-0");
    let config = LogConfig {
        index_interval_bytes: 700,
        ..small_segments(128 * 1024)
    };
    let mut log = PartitionLog::open(Arc::new(FileBackend), &dir, config.clone()).unwrap();
    // 400 batches of 1 to 9 records of different sizes, over a few segments.
    for i in 0..400u64 {
        let values: Vec<Vec<u8>> = (0..1 + i % 9)
            .map(|r| vec![b'a' + (r % 26) as u8; 20 + (i as usize * 37) % 300])
            .collect();
        log.append(&mut batch_of(&values, i as i64, Compression::None))
            .unwrap();
    }
    assert!(log.segment_count() >= 3, "{} segments", log.segment_count());
    log.close().unwrap();
    let first_index = dir.join(format!("{:020}.index", 0));
    let true_index = std::fs::read(&first_index).unwrap();
    assert!(true_index.len() >= 8 * 20, "entries to lie with");
    // The same index with one entry in the middle moved a byte into its
    // batch: offsets and positions still increasing, as a sane file.
    let mut lying = true_index.clone();
    let at = (true_index.len() / 8 / 2) * 8;
    let p = u32::from_be_bytes(lying[at + 4..at + 8].try_into().unwrap());
    lying[at + 4..at + 8].copy_from_slice(&(p + 1).to_be_bytes());
    for (what, index) in [("true index", &true_index), ("lying index", &lying)] {
        std::fs::write(&first_index, index).unwrap();
        let log = PartitionLog::open(Arc::new(FileBackend), &dir, config.clone()).unwrap();
        let end = log.log_end_offset();
        let mut slices = 0;
        for offset in (0..end).step_by(3) {
            for max_bytes in [0, 1, 900, 5000, 40_000, 1 << 20] {
                let want = log.read(offset, max_bytes).unwrap();
                let got = log.read_batches(offset, max_bytes, false).unwrap();
                let case = format!("{what}: offset {offset}, max {max_bytes}");
                assert_eq!(batch_bytes(&got.batches), want.batches, "{case}");
                if let Batches::File(f) = &got.batches {
                    slices += 1;
                    assert_eq!(f.records, records_in(&want.batches), "{case}");
                }
            }
        }
        assert!(slices > 1000, "{what}: reads give slices ({slices})");
    }
}

/// `append_is_light` (may an async thread append in place?) holds only for
/// page-cache work: flush policy `Never` and no segment roll ahead.
#[test]
fn an_append_is_light_only_without_fsync_or_roll() {
    let sim = SimBackend::new();
    let log_config = LogConfig {
        flush: FlushPolicy::Never,
        ..small_segments(1024)
    };
    let mut log = open(&sim, log_config);
    let one = batch(0, 1, 1);
    assert!(log.append_is_light(one.len()));
    log.append(&mut one.clone()).unwrap();
    assert!(log.append_is_light(one.len()));
    // The next append would take the segment past 1024 bytes: a roll.
    assert!(!log.append_is_light(1024));

    for flush in [
        FlushPolicy::Always,
        FlushPolicy::Interval {
            messages: 1_000,
            interval: std::time::Duration::from_secs(60),
        },
    ] {
        let sim = SimBackend::new();
        let log = open(
            &sim,
            LogConfig {
                flush,
                ..LogConfig::default()
            },
        );
        assert!(!log.append_is_light(one.len()), "{flush:?} may fsync");
    }
}

/// One stored batch: its offsets, its bytes as stored, and which segment
/// holds it (a read stops at the end of a segment).
struct Stored {
    base: u64,
    next: u64,
    bytes: Vec<u8>,
    segment: u64,
}

/// Appends `batch` and notes where it went; segments roll as the log's
/// rule says (past `segment_bytes`, unless the segment is empty).
fn append_noted(
    log: &mut PartitionLog,
    stored: &mut Vec<Stored>,
    segment_bytes: u64,
    mut b: Vec<u8>,
) {
    let info = log.append(&mut b).unwrap();
    let (mut segment, mut used) = (0, 0u64);
    if let Some(last) = stored.last() {
        segment = last.segment;
        used = stored
            .iter()
            .filter(|s| s.segment == segment)
            .map(|s| s.bytes.len() as u64)
            .sum();
    }
    if used > 0 && used + b.len() as u64 > segment_bytes {
        segment += 1;
    }
    stored.push(Stored {
        base: info.base_offset,
        next: info.last_offset + 1,
        bytes: b,
        segment,
    });
}

/// The batches a read of `offset` must return: from the one holding it,
/// whole batches of its segment while they fit `max_bytes` (the first one
/// always).
fn expected_read(stored: &[Stored], offset: u64, max_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut from = stored.iter().skip_while(|s| s.next <= offset).peekable();
    let Some(segment) = from.peek().map(|s| s.segment) else {
        return out;
    };
    for s in from.take_while(|s| s.segment == segment) {
        if !out.is_empty() && out.len() + s.bytes.len() > max_bytes {
            break;
        }
        out.extend_from_slice(&s.bytes);
    }
    out
}

/// Reads as bytes and as a file slice, both checked against `stored`.
fn check_every_offset(log: &PartitionLog, stored: &[Stored]) {
    use std::os::unix::fs::FileExt;
    let end = stored.last().map_or(0, |s| s.next);
    for offset in 0..end {
        for max_bytes in [1, 300, 5_000] {
            let want = expected_read(stored, offset, max_bytes);
            let got = log.read(offset, max_bytes).unwrap().batches;
            assert!(
                got == want,
                "read of offset {offset}, {max_bytes} bytes: {} bytes in {} batches, want {} in {}",
                got.len(),
                split_batches(&got).count(),
                want.len(),
                split_batches(&want).count()
            );
            let sliced = match log.read_batches(offset, max_bytes, false).unwrap().batches {
                Batches::Bytes(b) => b,
                Batches::File(f) => {
                    let mut b = vec![0u8; f.len as usize];
                    f.file.read_exact_at(&mut b, f.pos).unwrap();
                    let records: u64 = split_batches(&b)
                        .map(|s| {
                            u64::from(BatchHeader::parse(s.unwrap()).unwrap().records_count as u32)
                        })
                        .sum();
                    assert_eq!(f.records, records, "records of the slice at {offset}");
                    b
                }
            };
            assert!(
                sliced == want,
                "slice of offset {offset}, {max_bytes} bytes: {} bytes, want {}",
                sliced.len(),
                want.len()
            );
        }
    }
}

/// Reads near the end find their batches among the newest ones a segment
/// keeps in memory, older ones through the sparse index and the headers:
/// every offset reads the same batches either way, as bytes and as a file
/// slice, before and after a reopen and a truncation.
#[test]
fn every_offset_reads_its_batches_whether_recent_or_not() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("recent-0");
    const SEGMENT_BYTES: u64 = 8 * 1024;
    let config = LogConfig {
        segment_bytes: SEGMENT_BYTES,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(Arc::new(FileBackend), &dir, config.clone()).unwrap();
    // More batches than a segment remembers, over several segments.
    let mut stored = Vec::new();
    for i in 0..300u64 {
        let b = batch(i, 1 + (i % 3) as usize, i as i64);
        append_noted(&mut log, &mut stored, SEGMENT_BYTES, b);
    }
    assert!(stored.last().unwrap().segment >= 2, "several segments");
    check_every_offset(&log, &stored);
    log.close().unwrap();

    let mut log = PartitionLog::open(Arc::new(FileBackend), &dir, config).unwrap();
    check_every_offset(&log, &stored);
    // Cut inside the active segment: what is left still reads right, and
    // new batches after the cut too.
    let cut = stored[stored.len() - 10].base;
    log.truncate_to(cut).unwrap();
    stored.truncate(stored.len() - 10);
    for i in 300..320u64 {
        append_noted(&mut log, &mut stored, SEGMENT_BYTES, batch(i, 2, i as i64));
    }
    check_every_offset(&log, &stored);
}

/// `append_shared` (the batches' rewritten headers written beside their
/// untouched rest, with no copy) stores exactly what `append` (rewritten
/// in place) stores, on real files (vectored writes) and on the simulated
/// disk (one write per piece): record sets of several batches, with a
/// leader epoch stamped in, across segment rolls. The caller's bytes are
/// left as they were.
#[test]
fn shared_appends_store_what_in_place_appends_store() {
    let record_sets: Vec<Vec<u8>> = (0..40u64)
        .map(|i| {
            let mut set = Vec::new();
            for j in 0..1 + i % 3 {
                set.extend(batch(i * 10 + j, 1 + (i as usize % 4), i as i64 * 7));
            }
            set
        })
        .collect();
    let config = small_segments(2048);
    let tmp = tempfile::tempdir().unwrap();
    let segment_bytes = |dir: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| {
                let name = e.file_name().into_string().unwrap();
                (name, std::fs::read(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let mut written = Vec::new();
    for shared in [false, true] {
        let dir = tmp.path().join(format!("p-{shared}"));
        let mut log = PartitionLog::open(Arc::new(FileBackend), &dir, config.clone()).unwrap();
        log.begin_leader_epoch(3).unwrap();
        for set in &record_sets {
            let info = if shared {
                let before = set.clone();
                let info = log.append_shared(set).unwrap();
                assert_eq!(set, &before, "the caller's bytes are untouched");
                info
            } else {
                log.append(&mut set.clone()).unwrap()
            };
            assert!(info.last_offset >= info.base_offset);
        }
        log.close().unwrap();
        let files = segment_bytes(&dir);
        assert!(files.len() > 1, "the appends rolled segments");
        written.push(files);
        let log = PartitionLog::open(Arc::new(FileBackend), &dir, config.clone()).unwrap();
        let records: u64 = (0..40u64).map(|i| (1 + i % 4) * (1 + i % 3)).sum();
        assert_eq!(
            read_all(&log).len() as u64,
            records,
            "every record reads back"
        );
    }
    assert_eq!(written[0], written[1], "byte for byte the same segments");

    // The simulated disk's default (one write per piece): the same records.
    let sim = SimBackend::new();
    let mut log = open(&sim, config.clone());
    log.begin_leader_epoch(3).unwrap();
    for set in &record_sets {
        log.append_shared(set).unwrap();
    }
    let real =
        PartitionLog::open(Arc::new(FileBackend), tmp.path().join("p-true"), config).unwrap();
    assert_eq!(read_all(&log), read_all(&real));
}

/// On a real file system the active segment has disk blocks allocated
/// ahead of its end (never past the segment size limit) while its size
/// stays the bytes written; sealing it gives the spare blocks back, and a
/// reopen reads exactly what was appended.
#[test]
fn active_segments_allocate_ahead_and_sealed_ones_give_it_back() {
    use std::os::unix::fs::MetadataExt;
    const LIMIT: u64 = 1 << 20;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let mut log = PartitionLog::open(Arc::new(FileBackend), &dir, small_segments(LIMIT)).unwrap();
    let value = vec![b'v'; 4000];
    let mut appended = 0;
    let files = |dir: &std::path::Path| -> Vec<(u64, u64)> {
        let mut logs: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        logs.iter()
            .map(|p| {
                let m = std::fs::metadata(p).unwrap();
                (m.len(), m.blocks() * 512)
            })
            .collect()
    };
    while files(&dir).len() < 2 {
        // About 300 KB a batch: three fill a segment to some 900 KB, so
        // blocks kept up to the limit would show at the seal.
        let values: Vec<Vec<u8>> = (0..75).map(|_| value.clone()).collect();
        log.append(&mut batch_of(&values, 1, Compression::None))
            .unwrap();
        appended += 75;
    }
    let segments = files(&dir);
    let (sealed_len, sealed_allocated) = segments[0];
    let (active_len, active_allocated) = segments[1];
    assert!(
        sealed_len > LIMIT / 2 && sealed_len <= LIMIT,
        "{segments:?}"
    );
    assert!(
        sealed_allocated < sealed_len + 64 * 1024,
        "a sealed segment keeps no blocks past its end: {segments:?}"
    );
    assert!(active_len > 0 && active_len < LIMIT / 2, "{segments:?}");
    assert!(
        (LIMIT * 3 / 4..=LIMIT + 64 * 1024).contains(&active_allocated),
        "the active segment has blocks ahead, up to the limit: {segments:?}"
    );
    log.close().unwrap();
    let log = PartitionLog::open(Arc::new(FileBackend), &dir, small_segments(LIMIT)).unwrap();
    assert_eq!(
        files(&dir)[1].0,
        active_len,
        "a reopen finds no bytes past the end"
    );
    let records = read_all(&log);
    assert_eq!(records.len(), appended);
    assert!(records.iter().all(|(_, v)| v == &value));
}

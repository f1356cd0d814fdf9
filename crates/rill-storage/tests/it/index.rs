//! Indexes are an optimisation: when missing or damaged they are rebuilt,
//! and lookups always agree with a plain scan of the log.

use rill_protocol::batch::{split_batches, BatchHeader};
use rill_storage::{PartitionLog, SimBackend};

use crate::helpers::*;

/// (offset -> base offset of the batch holding it), by scanning every batch.
fn scan_truth(log: &PartitionLog) -> Vec<(u64, u64)> {
    let mut truth = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let res = log.read(offset, 1 << 30).unwrap();
        for b in split_batches(&res.batches) {
            let h = BatchHeader::parse(b.unwrap()).unwrap();
            for o in h.base_offset..h.next_offset() {
                truth.push((o as u64, h.base_offset as u64));
            }
            offset = h.next_offset() as u64;
        }
    }
    truth
}

fn lookups(log: &PartitionLog) -> Vec<(u64, u64)> {
    (log.log_start_offset()..log.log_end_offset())
        .map(|o| {
            let res = log.read(o, 1).unwrap();
            (
                o,
                BatchHeader::parse(&res.batches).unwrap().base_offset as u64,
            )
        })
        .collect()
}

fn filled(sim: &SimBackend) -> Vec<u64> {
    let mut log = open(sim, small_segments(3_000));
    for i in 0..120 {
        log.append(&mut batch(i, 1 + (i as usize % 4), i as i64 * 10))
            .unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 4);
    log.close().unwrap();
    bases
}

#[test]
fn deleted_indexes_are_rebuilt() {
    let sim = SimBackend::new();
    let bases = filled(&sim);
    let before = open(&sim, small_segments(3_000));
    let reference = lookups(&before);
    let ts_answer = before.offset_for_timestamp(555).unwrap();
    drop(before);
    for base in &bases {
        sim.delete(&index_file(*base, "index"));
        sim.delete(&index_file(*base, "timeindex"));
    }
    let log = open(&sim, small_segments(3_000));
    for base in &bases {
        let rebuilt = sim.contents(&index_file(*base, "index")).unwrap();
        assert!(!rebuilt.is_empty(), "index of segment {base} rebuilt");
        assert!(sim.contents(&index_file(*base, "timeindex")).is_some());
    }
    assert_eq!(lookups(&log), scan_truth(&log));
    assert_eq!(lookups(&log), reference);
    assert_eq!(log.offset_for_timestamp(555).unwrap(), ts_answer);
    assert!(ts_answer.is_some());
}

#[test]
fn corrupted_indexes_are_caught_or_rebuilt() {
    let sim = SimBackend::new();
    let bases = filled(&sim);
    let first = bases[0];
    let good = sim.contents(&index_file(first, "index")).unwrap();
    let damages: Vec<Vec<u8>> = vec![
        good[..good.len() - 3].to_vec(),      // not a whole number of entries
        vec![0xff; good.len()],               // positions past the end
        good.iter().rev().copied().collect(), // out of order
        {
            // Structurally fine but pointing at the wrong batch: swap two
            // entries' positions so offsets and positions stay increasing
            // but disagree with the log.
            let mut v = good.clone();
            let p1 = u32::from_be_bytes(v[4..8].try_into().unwrap());
            v[4..8].copy_from_slice(&(p1 + 1).to_be_bytes());
            v
        },
    ];
    for damaged in damages {
        sim.overwrite(&index_file(first, "index"), damaged);
        let mut log = open(&sim, small_segments(3_000));
        assert_eq!(lookups(&log), scan_truth(&log));
        log.flush().unwrap();
        let after = sim.contents(&index_file(first, "index")).unwrap();
        assert_eq!(after, good, "index rebuilt to its true contents");
    }
}

#[test]
fn damaged_time_index_is_rebuilt() {
    let sim = SimBackend::new();
    let bases = filled(&sim);
    let log = open(&sim, small_segments(3_000));
    let expected: Vec<_> = (0..1200)
        .step_by(7)
        .map(|t| log.offset_for_timestamp(t).unwrap())
        .collect();
    drop(log);
    for base in &bases {
        sim.overwrite(&index_file(*base, "timeindex"), vec![0x7f; 24]);
    }
    let log = open(&sim, small_segments(3_000));
    let got: Vec<_> = (0..1200)
        .step_by(7)
        .map(|t| log.offset_for_timestamp(t).unwrap())
        .collect();
    assert_eq!(got, expected);
}

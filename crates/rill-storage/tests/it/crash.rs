//! A process crash can leave any prefix of the last write on disk. Whatever
//! the cut, reopening keeps every whole batch before it and nothing after.

use rill_storage::{LogConfig, SimBackend};

use crate::helpers::*;

fn three_batches(sim: &SimBackend) -> (Vec<u8>, usize) {
    let mut log = open(sim, LogConfig::default());
    log.append(&mut batch(0, 3, 1)).unwrap();
    log.append(&mut batch(1, 2, 2)).unwrap();
    let before_last = sim.contents(&log_file(0)).unwrap().len();
    log.append(&mut batch(2, 4, 3)).unwrap();
    log.close().unwrap();
    (sim.contents(&log_file(0)).unwrap(), before_last)
}

#[test]
fn cut_at_every_byte_of_the_last_batch() {
    let sim = SimBackend::new();
    let (full, last_start) = three_batches(&sim);
    for cut in last_start..full.len() {
        let sim = SimBackend::new();
        sim.overwrite(&log_file(0), full[..cut].to_vec());
        let mut log = open(&sim, LogConfig::default());
        assert_eq!(log.log_end_offset(), 5, "cut at {cut}");
        let values: Vec<_> = read_all(&log)
            .into_iter()
            .map(|(o, v)| (o, String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(values.len(), 5);
        assert_eq!(values[4], (4, "b1-r1".to_string()));
        assert_eq!(
            sim.contents(&log_file(0)).unwrap().len(),
            last_start,
            "torn tail cut"
        );
        let next = log.append(&mut batch(9, 1, 4)).unwrap();
        assert_eq!(next.base_offset, 5, "cut at {cut}");
        assert_eq!(read_all(&log).last().unwrap().1, b"b9-r0");
    }
}

#[test]
fn the_whole_file_at_its_full_length_loses_nothing() {
    let sim = SimBackend::new();
    let (full, _) = three_batches(&sim);
    let sim = SimBackend::new();
    sim.overwrite(&log_file(0), full.clone());
    let log = open(&sim, LogConfig::default());
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(read_all(&log).len(), 9);
}

#[test]
fn garbage_after_the_last_batch_is_dropped() {
    let sim = SimBackend::new();
    let (full, _) = three_batches(&sim);
    for garbage in [
        vec![0u8; 100],
        vec![0xffu8; 7],
        b"not a batch at all, just words".repeat(5),
        {
            // A plausible header whose CRC is wrong.
            let mut fake = batch(7, 1, 1);
            let n = fake.len();
            fake[n - 1] ^= 0x55;
            fake
        },
    ] {
        let sim = SimBackend::new();
        let mut bytes = full.clone();
        bytes.extend_from_slice(&garbage);
        sim.overwrite(&log_file(0), bytes);
        let mut log = open(&sim, LogConfig::default());
        assert_eq!(log.log_end_offset(), 9);
        assert_eq!(sim.contents(&log_file(0)).unwrap(), full);
        assert_eq!(log.append(&mut batch(8, 1, 1)).unwrap().base_offset, 9);
    }
}

#[test]
fn a_corrupt_batch_in_the_middle_of_the_active_segment_cuts_there() {
    let sim = SimBackend::new();
    let (mut full, last_start) = three_batches(&sim);
    // Damage the second batch's payload: it and everything after goes, the
    // first batch stays. Offsets continue from the first batch.
    let second_start = batch(0, 3, 1).len();
    full[second_start + 70] ^= 0x01;
    assert!(second_start + 70 < last_start);
    let sim = SimBackend::new();
    sim.overwrite(&log_file(0), full);
    let log = open(&sim, LogConfig::default());
    assert_eq!(log.log_end_offset(), 3);
}

#[test]
fn reopen_after_a_crash_in_a_later_segment_keeps_earlier_segments() {
    let sim = SimBackend::new();
    let mut log = open(&sim, small_segments(500));
    for i in 0..30 {
        log.append(&mut batch(i, 3, i as i64)).unwrap();
    }
    let bases = log.segment_base_offsets();
    let last = *bases.last().unwrap();
    drop(log); // no close: a crash
    let bytes = sim.contents(&log_file(last)).unwrap();
    sim.overwrite(&log_file(last), bytes[..bytes.len() - 3].to_vec());
    let log = open(&sim, small_segments(500));
    assert_eq!(log.segment_base_offsets(), bases);
    let all = read_all(&log);
    assert_eq!(all.len(), 87, "the torn last batch of 3 records is gone");
    assert!(all.iter().enumerate().all(|(i, (o, _))| *o == i as u64));
}

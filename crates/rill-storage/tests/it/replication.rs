//! Replication support: follower appends stored byte for byte, truncation
//! back to where a follower and a new leader agree, and the leader-epoch
//! history that tells where that is.

use rill_protocol::batch::split_batches;
use rill_protocol::BatchHeader;
use rill_storage::{
    truncation_offset, EpochEntry, FlushPolicy, LogConfig, PartitionLog, SimBackend, StorageError,
};

use crate::helpers::*;

/// Every batch from the log start, as (base offset, stored bytes).
fn raw_batches(log: &PartitionLog) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let res = log.read(offset, 1000).unwrap();
        assert!(!res.batches.is_empty(), "no batch at offset {offset}");
        for slice in split_batches(&res.batches) {
            let slice = slice.unwrap();
            let h = BatchHeader::parse(slice).unwrap();
            out.push((h.base_offset as u64, slice.to_vec()));
            offset = h.next_offset() as u64;
        }
    }
    out
}

/// Copies everything the leader has from the follower's log end, the way a
/// fetch loop would: one read (within one segment) per replica append.
fn catch_up(follower: &mut PartitionLog, leader: &PartitionLog) {
    while follower.log_end_offset() < leader.log_end_offset() {
        let res = leader.read(follower.log_end_offset(), 700).unwrap();
        follower.append_replica(&res.batches).unwrap();
    }
}

fn epochs(log: &PartitionLog) -> Vec<(i32, u64)> {
    log.leader_epochs()
        .entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

fn entry(epoch: i32, start_offset: u64) -> EpochEntry {
    EpochEntry {
        epoch,
        start_offset,
    }
}

/// A leader that wrote 4 batches of 3 records in epoch 1 (offsets 0..12),
/// then 4 in epoch 3 (12..24), on small segments.
fn leader_with_two_epochs(sim: &SimBackend) -> PartitionLog {
    let mut log = open(sim, small_segments(600));
    log.begin_leader_epoch(1).unwrap();
    for i in 0..4 {
        log.append(&mut batch(i, 3, 100 + i as i64)).unwrap();
    }
    log.begin_leader_epoch(3).unwrap();
    for i in 4..8 {
        log.append(&mut batch(i, 3, 100 + i as i64)).unwrap();
    }
    log
}

#[test]
fn append_replica_stores_the_leaders_bytes_and_epochs() {
    let leader_sim = SimBackend::new();
    let leader = leader_with_two_epochs(&leader_sim);
    assert!(leader.segment_count() > 1);
    let sim = SimBackend::new();
    let mut follower = open(&sim, small_segments(600));
    assert_eq!(follower.last_batch_epoch(), None);
    catch_up(&mut follower, &leader);
    assert_eq!(raw_batches(&follower), raw_batches(&leader));
    assert_eq!(follower.log_end_offset(), 24);
    assert!(follower.segment_count() > 1, "the follower rolls too");
    assert_eq!(epochs(&follower), [(1, 0), (3, 12)]);
    assert_eq!(follower.last_batch_epoch(), Some(3));
    drop(follower);
    let follower = open(&sim, small_segments(600));
    assert_eq!(epochs(&follower), [(1, 0), (3, 12)], "persisted");
    assert_eq!(raw_batches(&follower), raw_batches(&leader));
    assert_eq!(follower.last_batch_epoch(), Some(3));
}

#[test]
fn append_replica_refuses_gaps_overlaps_and_damage_without_writing() {
    let leader_sim = SimBackend::new();
    let leader = leader_with_two_epochs(&leader_sim);
    let batches = raw_batches(&leader);
    let sim = SimBackend::new();
    let mut follower = open(&sim, small_segments(10_000));
    follower.append_replica(&batches[0].1).unwrap();
    let size = sim.contents(&log_file(0)).unwrap().len();
    let refused = |follower: &mut PartitionLog, bytes: &[u8]| {
        let err = follower.append_replica(bytes).unwrap_err();
        assert_eq!(follower.log_end_offset(), 3);
        assert_eq!(sim.contents(&log_file(0)).unwrap().len(), size);
        assert_eq!(epochs(follower), [(1, 0)]);
        err
    };
    // A gap: offset 6 where 3 is due.
    let err = refused(&mut follower, &batches[2].1);
    assert!(
        matches!(
            err,
            StorageError::ReplicaOffsetMismatch {
                expected: 3,
                found: 6
            }
        ),
        "{err}"
    );
    // An overlap: offset 0 again.
    let err = refused(&mut follower, &batches[0].1);
    assert!(matches!(err, StorageError::ReplicaOffsetMismatch { .. }));
    // The first batch is right, the second (epoch 3, at 12) leaves a gap.
    let mut two = batches[1].1.clone();
    two.extend_from_slice(&batches[4].1);
    let err = refused(&mut follower, &two);
    assert!(
        matches!(
            err,
            StorageError::ReplicaOffsetMismatch {
                expected: 6,
                found: 12
            }
        ),
        "{err}"
    );
    // A damaged batch.
    let mut bad = batches[1].1.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert!(matches!(
        refused(&mut follower, &bad),
        StorageError::InvalidBatch(_)
    ));
    assert!(matches!(
        refused(&mut follower, &[]),
        StorageError::EmptyAppend
    ));
    // The right one still goes in.
    follower.append_replica(&batches[1].1).unwrap();
    assert_eq!(follower.log_end_offset(), 6);
}

#[test]
fn append_replica_honours_the_flush_policy() {
    let leader_sim = SimBackend::new();
    let leader = leader_with_two_epochs(&leader_sim);
    let batches = raw_batches(&leader);
    let sim = SimBackend::new();
    let cfg = LogConfig {
        flush: FlushPolicy::Always,
        ..small_segments(600)
    };
    let mut follower = open(&sim, cfg.clone());
    for (_, bytes) in &batches {
        assert!(follower.append_replica(bytes).unwrap().durable);
    }
    drop(follower);
    sim.power_cut();
    let follower = open(&sim, cfg);
    assert_eq!(raw_batches(&follower), batches);
    assert_eq!(epochs(&follower), [(1, 0), (3, 12)]);
}

#[test]
fn begin_leader_epoch_stamps_persists_and_refuses_older_epochs() {
    let sim = SimBackend::new();
    let mut log = open(&sim, small_segments(600));
    log.append(&mut batch(0, 2, 1)).unwrap();
    assert_eq!(log.last_batch_epoch(), Some(-1), "unstamped, as before");
    assert!(log.leader_epochs().entries().is_empty());
    log.begin_leader_epoch(4).unwrap();
    log.append(&mut batch(1, 2, 2)).unwrap();
    log.begin_leader_epoch(4).unwrap(); // idempotent
    log.append(&mut batch(2, 2, 3)).unwrap();
    assert_eq!(epochs(&log), [(4, 2)]);
    assert_eq!(log.last_batch_epoch(), Some(4));
    assert!(matches!(
        log.begin_leader_epoch(3),
        Err(StorageError::StaleLeaderEpoch {
            epoch: 3,
            latest: 4
        })
    ));
    assert!(matches!(
        log.begin_leader_epoch(-1),
        Err(StorageError::Config(_))
    ));
    log.begin_leader_epoch(6).unwrap();
    log.append(&mut batch(3, 2, 4)).unwrap();
    let stamped: Vec<(u64, i32)> = raw_batches(&log)
        .iter()
        .map(|(b, bytes)| {
            let h = rill_protocol::batch::validate_batch(bytes, &Default::default()).unwrap();
            (*b, h.partition_leader_epoch)
        })
        .collect();
    assert_eq!(
        stamped,
        [(0, -1), (2, 4), (4, 4), (6, 6)],
        "CRCs still hold"
    );
    drop(log);
    let log = open(&sim, small_segments(600));
    assert_eq!(epochs(&log), [(4, 2), (6, 6)]);
    assert_eq!(log.last_batch_epoch(), Some(6));
}

#[test]
fn end_offset_for_epoch_answers_as_kafka_does() {
    let sim = SimBackend::new();
    let mut log = open(&sim, small_segments(600));
    assert_eq!(log.end_offset_for_epoch(5), None, "no history");
    for (epoch, tag) in [(1, 0u64), (3, 1), (4, 2)] {
        log.begin_leader_epoch(epoch).unwrap();
        log.append(&mut batch(tag, 5, 1)).unwrap();
    }
    assert_eq!(epochs(&log), [(1, 0), (3, 5), (4, 10)]);
    assert_eq!(log.end_offset_for_epoch(0), None, "all of ours are newer");
    assert_eq!(log.end_offset_for_epoch(1), Some(entry(1, 5)));
    assert_eq!(log.end_offset_for_epoch(2), Some(entry(1, 5)));
    assert_eq!(log.end_offset_for_epoch(3), Some(entry(3, 10)));
    assert_eq!(log.end_offset_for_epoch(4), Some(entry(4, 15)));
    assert_eq!(log.end_offset_for_epoch(7), Some(entry(4, 15)));
}

/// 10 batches of 3 records (offsets 0..30), timestamps 1000 + 10 * i + r,
/// epoch 2, on segments of about 3 batches each.
fn ten_batches(sim: &SimBackend, cfg: LogConfig) -> PartitionLog {
    let mut log = open(sim, cfg);
    log.begin_leader_epoch(2).unwrap();
    for i in 0..10u64 {
        log.append(&mut batch(i, 3, 1000 + 10 * i as i64)).unwrap();
        if i == 5 {
            log.begin_leader_epoch(5).unwrap();
        }
    }
    log.set_high_watermark(30);
    log
}

fn values(log: &PartitionLog) -> Vec<(u64, String)> {
    read_all(log)
        .into_iter()
        .map(|(o, v)| (o, String::from_utf8(v).unwrap()))
        .collect()
}

fn expected(end: u64) -> Vec<(u64, String)> {
    (0..end)
        .map(|o| (o, format!("b{}-r{}", o / 3, o % 3)))
        .collect()
}

#[test]
fn truncate_mid_segment_at_a_batch_boundary_and_inside_a_batch() {
    for (offset, cut) in [(12u64, 12u64), (13, 12), (14, 12)] {
        let sim = SimBackend::new();
        let cfg = small_segments(300);
        let mut log = ten_batches(&sim, cfg.clone());
        let segments_before = log.segment_base_offsets();
        assert_eq!(log.truncate_to(offset).unwrap(), cut, "to {offset}");
        assert_eq!(log.log_end_offset(), cut);
        assert_eq!(log.high_watermark(), cut, "HW lowered");
        assert_eq!(values(&log), expected(cut));
        assert!(log
            .segment_base_offsets()
            .iter()
            .all(|b| segments_before.contains(b) && *b <= cut));
        assert_eq!(epochs(&log), [(2, 0)], "epoch 5 began at 18");
        assert_eq!(log.last_batch_epoch(), Some(2));
        // Lookups by time answer from what is left.
        let at = log
            .offset_for_timestamp(1000 + 10 * 3 + 1)
            .unwrap()
            .unwrap();
        assert_eq!((at.offset, at.timestamp), (10, 1031));
        assert_eq!(log.offset_for_timestamp(1000 + 10 * 4).unwrap(), None);
        let newest = log.max_timestamp_offset().unwrap().unwrap();
        assert_eq!((newest.offset, newest.timestamp), (11, 1032));
        // Appends go on at the cut, contiguous, in a new epoch.
        log.begin_leader_epoch(7).unwrap();
        let info = log.append(&mut batch(40, 2, 5000)).unwrap();
        assert_eq!(info.base_offset, cut);
        assert_eq!(epochs(&log), [(2, 0), (7, cut)]);
        let mut want = expected(cut);
        want.extend([(cut, "b40-r0".into()), (cut + 1, "b40-r1".into())]);
        assert_eq!(values(&log), want);
        for o in 0..cut + 2 {
            let first = log.read(o, 1).unwrap();
            let h = BatchHeader::parse(&first.batches).unwrap();
            assert!(h.base_offset as u64 <= o && o < h.next_offset() as u64);
        }
        drop(log);
        let log = open(&sim, cfg);
        assert_eq!(values(&log), want, "reopened");
        assert_eq!(epochs(&log), [(2, 0), (7, cut)]);
        assert_eq!(log.high_watermark(), cut);
    }
}

#[test]
fn truncate_across_segments_deletes_whole_segments() {
    let sim = SimBackend::new();
    let cfg = small_segments(300);
    let mut log = ten_batches(&sim, cfg.clone());
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 4, "{bases:?}");
    let second = bases[1];
    assert_eq!(log.truncate_to(second + 1).unwrap(), second);
    assert_eq!(log.segment_base_offsets(), &bases[..2]);
    for base in &bases[2..] {
        assert!(sim.contents(&log_file(*base)).is_none(), "{base} deleted");
        assert!(sim.contents(&index_file(*base, "index")).is_none());
    }
    assert_eq!(
        sim.contents(&log_file(second)).unwrap().len(),
        0,
        "a cut at a segment's base empties it"
    );
    assert_eq!(values(&log), expected(second));
    assert_eq!(log.last_batch_epoch(), Some(2), "from the segment before");
    log.append(&mut batch(50, 1, 1)).unwrap();
    assert_eq!(log.log_end_offset(), second + 1);
    drop(log);
    let log = open(&sim, cfg);
    assert_eq!(log.segment_base_offsets(), &bases[..2]);
    assert_eq!(read_all(&log).len() as u64, second + 1);
}

#[test]
fn truncate_to_the_start_the_end_and_out_of_range() {
    let sim = SimBackend::new();
    let cfg = small_segments(300);
    let mut log = ten_batches(&sim, cfg.clone());
    let before = raw_batches(&log);
    let segments = log.segment_count();
    assert_eq!(log.truncate_to(30).unwrap(), 30, "the end: a no-op");
    assert_eq!(raw_batches(&log), before);
    assert_eq!(log.segment_count(), segments);
    assert_eq!(log.high_watermark(), 30);
    assert!(matches!(
        log.truncate_to(31),
        Err(StorageError::OffsetOutOfRange { offset: 31, .. })
    ));
    assert_eq!(log.truncate_to(0).unwrap(), 0);
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.segment_count(), 1);
    assert!(read_all(&log).is_empty());
    assert!(log.leader_epochs().entries().is_empty());
    assert_eq!(log.last_batch_epoch(), None);
    assert_eq!(log.high_watermark(), 0);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
    drop(log);
    let mut log = open(&sim, cfg);
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.append(&mut batch(1, 1, 1)).unwrap().base_offset, 0);

    // Below the log start (after retention) is out of range too.
    let sim = SimBackend::new();
    let cfg = LogConfig {
        retention_bytes: Some(600),
        ..small_segments(300)
    };
    let mut log = ten_batches(&sim, cfg);
    log.apply_retention(0).unwrap();
    let start = log.log_start_offset();
    assert!(start > 0);
    assert_eq!(log.leader_epochs().entries()[0].start_offset, start.min(18));
    assert!(matches!(
        log.truncate_to(start - 1),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.truncate_to(start).unwrap(), start);
    assert_eq!(log.log_end_offset(), start);
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn a_power_cut_after_truncation_never_brings_records_back() {
    for flush in [FlushPolicy::Always, FlushPolicy::Never] {
        for offset in [0u64, 4, 9, 16, 27] {
            let sim = SimBackend::new();
            let cfg = LogConfig {
                flush,
                ..small_segments(300)
            };
            let mut log = ten_batches(&sim, cfg.clone());
            log.flush().unwrap();
            let cut = log.truncate_to(offset).unwrap();
            drop(log);
            sim.power_cut();
            let mut log = open(&sim, cfg.clone());
            assert_eq!(log.log_end_offset(), cut, "{flush:?} to {offset}");
            assert_eq!(values(&log), expected(cut));
            assert!(epochs(&log).iter().all(|(_, s)| *s < cut.max(1)));
            // New, different records at the cut, not synced (under Never),
            // then another cut: whatever survives is a prefix of the
            // truncated log plus the new records, never the old ones.
            log.append(&mut batch(70, 2, 1)).unwrap();
            drop(log);
            sim.power_cut();
            let log = open(&sim, cfg);
            let got = values(&log);
            assert_eq!(got[..cut as usize], expected(cut)[..]);
            for (o, v) in &got[cut as usize..] {
                assert_eq!(v, &format!("b70-r{}", o - cut));
            }
        }
    }
}

#[test]
fn a_truncation_cut_short_by_a_failing_disk_leaves_the_old_or_the_new_log() {
    let cfg = LogConfig {
        flush: FlushPolicy::Always,
        ..small_segments(300)
    };
    for offset in [4u64, 16] {
        let mut outcomes = std::collections::BTreeSet::new();
        for budget in 0..400 {
            let sim = SimBackend::new();
            let mut log = ten_batches(&sim, cfg.clone());
            sim.set_write_budget(Some(budget));
            let result = log.truncate_to(offset);
            let cut = offset - offset % 3;
            if result.is_err() {
                assert!(
                    matches!(
                        log.append(&mut batch(1, 1, 1)),
                        Err(StorageError::Failed { .. })
                    ),
                    "a half-done truncation stops the log"
                );
            }
            drop(log);
            sim.power_cut();
            sim.set_write_budget(None);
            let mut log = open(&sim, cfg.clone());
            let end = log.log_end_offset();
            outcomes.insert((result.is_ok(), end));
            if result.is_ok() {
                assert_eq!(end, cut, "budget {budget}");
            } else {
                assert!(end == cut || end == 30, "budget {budget}: end {end}");
            }
            assert_eq!(values(&log), expected(end), "budget {budget}");
            assert!(log.high_watermark() <= end);
            assert!(
                epochs(&log).iter().all(|(_, s)| *s <= end),
                "budget {budget}: {:?}",
                epochs(&log)
            );
            assert_eq!(log.append(&mut batch(90, 1, 1)).unwrap().base_offset, end);
        }
        assert!(outcomes.contains(&(true, offset - offset % 3)));
        assert!(outcomes.contains(&(false, 30)));
    }
}

#[test]
fn recovery_drops_epochs_whose_records_were_lost() {
    let leader_sim = SimBackend::new();
    let leader = leader_with_two_epochs(&leader_sim);
    let batches = raw_batches(&leader);
    let sim = SimBackend::new();
    let cfg = small_segments(100_000);
    let mut follower = open(&sim, cfg.clone());
    for (_, bytes) in &batches[..4] {
        follower.append_replica(bytes).unwrap();
    }
    follower.flush().unwrap();
    // Epoch 3's first batch: the history is saved (fsynced) first, the
    // data is not fsynced under `Never`.
    follower.append_replica(&batches[4].1).unwrap();
    follower.append_replica(&batches[5].1).unwrap();
    assert_eq!(epochs(&follower), [(1, 0), (3, 12)]);
    drop(follower);
    sim.power_cut();
    let follower = open(&sim, cfg.clone());
    assert_eq!(follower.log_end_offset(), 12);
    assert_eq!(
        epochs(&follower),
        [(1, 0), (3, 12)],
        "an epoch starting at the log end is kept"
    );
    drop(follower);
    // Lose one more batch (a torn tail): epoch 3 now starts past the end.
    let file = sim.contents(&log_file(0)).unwrap();
    let keep = file.len() - batches[3].1.len() / 2;
    sim.overwrite(&log_file(0), file[..keep].to_vec());
    let follower = open(&sim, cfg.clone());
    assert_eq!(follower.log_end_offset(), 9);
    assert_eq!(epochs(&follower), [(1, 0)]);
    drop(follower);
    let follower = open(&sim, cfg);
    assert_eq!(epochs(&follower), [(1, 0)], "and persisted so");
}

#[test]
fn an_older_epoch_after_a_begun_one_replaces_it() {
    // This SPU led epoch 5 briefly, wrote nothing, and now follows a leader
    // whose records at that offset are still of epoch 3.
    let leader_sim = SimBackend::new();
    let leader = leader_with_two_epochs(&leader_sim);
    let batches = raw_batches(&leader);
    let sim = SimBackend::new();
    let mut follower = open(&sim, small_segments(100_000));
    for (_, bytes) in &batches[..5] {
        follower.append_replica(bytes).unwrap();
    }
    follower.begin_leader_epoch(5).unwrap();
    assert_eq!(epochs(&follower), [(1, 0), (3, 12), (5, 15)]);
    follower.append_replica(&batches[5].1).unwrap();
    assert_eq!(epochs(&follower), [(1, 0), (3, 12)]);
    assert_eq!(follower.last_batch_epoch(), Some(3));
}

#[test]
fn a_leader_that_saw_a_newer_epoch_may_not_append_in_its_old_one() {
    let leader_sim = SimBackend::new();
    let leader = leader_with_two_epochs(&leader_sim);
    let batches = raw_batches(&leader);
    let sim = SimBackend::new();
    let mut log = open(&sim, small_segments(100_000));
    log.begin_leader_epoch(1).unwrap();
    for (_, bytes) in &batches {
        log.append_replica(bytes).unwrap();
    }
    assert!(matches!(
        log.append(&mut batch(9, 1, 1)),
        Err(StorageError::StaleLeaderEpoch {
            epoch: 1,
            latest: 3
        })
    ));
    assert_eq!(log.log_end_offset(), 24);
}

#[test]
fn a_diverged_follower_truncates_to_a_prefix_of_the_new_leader() {
    // A leads epoch 1; B follows.
    let (sim_a, sim_b) = (SimBackend::new(), SimBackend::new());
    let cfg = small_segments(400);
    let mut a = open(&sim_a, cfg.clone());
    let mut b = open(&sim_b, cfg.clone());
    a.begin_leader_epoch(1).unwrap();
    for i in 0..5 {
        a.append(&mut batch(i, 2, i as i64)).unwrap();
    }
    catch_up(&mut b, &a);
    // A goes on in epoch 2; B copies only part of it before A dies.
    a.begin_leader_epoch(2).unwrap();
    for i in 5..9 {
        a.append(&mut batch(i, 2, i as i64)).unwrap();
    }
    let part = a.read(b.log_end_offset(), 1).unwrap();
    b.append_replica(&part.batches).unwrap();
    assert_eq!(b.log_end_offset(), 12);
    // B becomes leader in epoch 3 and writes its own records.
    b.begin_leader_epoch(3).unwrap();
    for i in 100..104 {
        b.append(&mut batch(i, 3, i as i64)).unwrap();
    }
    // A comes back as a follower: asks B about its latest epoch, truncates.
    let a_latest = a.leader_epochs().latest().unwrap().epoch;
    assert_eq!(a_latest, 2);
    let answer = b.end_offset_for_epoch(a_latest);
    assert_eq!(answer, Some(entry(2, 12)));
    let at = truncation_offset(a.leader_epochs(), a.log_end_offset(), |e| {
        b.end_offset_for_epoch(e)
    });
    assert_eq!(at, 12);
    assert_eq!(a.truncate_to(at).unwrap(), 12);
    let a_now = raw_batches(&a);
    let b_now = raw_batches(&b);
    assert_eq!(a_now[..], b_now[..a_now.len()], "a prefix of the leader");
    catch_up(&mut a, &b);
    assert_eq!(raw_batches(&a), raw_batches(&b));
    assert_eq!(epochs(&a), epochs(&b));
    assert_eq!(epochs(&a), [(1, 0), (2, 10), (3, 12)]);
    assert_eq!(a.last_batch_epoch(), Some(3));
    drop(a);
    let a = open(&sim_a, cfg);
    assert_eq!(raw_batches(&a), raw_batches(&b));
}

mod model {
    //! Random appends, epochs, truncations, reopens and power cuts against
    //! a plain list of the batches (and epochs) the log should hold.

    use proptest::prelude::*;
    use rill_storage::{FlushPolicy, LogConfig, PartitionLog, SimBackend};

    use super::{epochs, raw_batches, values};
    use crate::helpers::*;

    #[derive(Debug, Clone)]
    enum Op {
        Begin { bump: i32 },
        Append { records: usize },
        Truncate { at: prop::sample::Index },
        Reopen,
        PowerCut,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => (0i32..3).prop_map(|bump| Op::Begin { bump }),
            6 => (1usize..5).prop_map(|records| Op::Append { records }),
            2 => any::<prop::sample::Index>().prop_map(|at| Op::Truncate { at }),
            1 => Just(Op::Reopen),
            1 => Just(Op::PowerCut),
        ]
    }

    #[derive(Default)]
    struct Model {
        /// (base offset, records, epoch in the header, tag) per batch.
        batches: Vec<(u64, u64, i32, u64)>,
        epochs: Vec<(i32, u64)>,
        /// The epoch `append` stamps, if `begin_leader_epoch` was called
        /// since the log was opened.
        stamp: Option<i32>,
        epoch: i32,
        end: u64,
    }

    impl Model {
        /// `epoch` starts at the log end unless it is the latest already;
        /// entries starting there or later are replaced.
        fn assign(&mut self, epoch: i32) {
            if self.epochs.last().map(|e| e.0) != Some(epoch) {
                let end = self.end;
                self.epochs.retain(|e| e.1 < end);
                self.epochs.push((epoch, end));
            }
        }
    }

    fn config() -> LogConfig {
        LogConfig {
            flush: FlushPolicy::Always,
            ..small_segments(700)
        }
    }

    fn reopen(sim: &SimBackend, log: &mut Option<PartitionLog>, model: &mut Model, cut: bool) {
        drop(log.take());
        if cut {
            sim.power_cut();
        }
        *log = Some(open(sim, config()));
        model.stamp = None;
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn truncation_and_epochs_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
            let sim = SimBackend::new();
            let mut log = Some(open(&sim, config()));
            let mut model = Model::default();
            let mut tag = 0u64;
            for op in ops {
                let l = log.as_mut().unwrap();
                match op {
                    Op::Begin { bump } => {
                        model.epoch += bump;
                        l.begin_leader_epoch(model.epoch).unwrap();
                        model.assign(model.epoch);
                        model.stamp = Some(model.epoch);
                    }
                    Op::Append { records } => {
                        tag += 1;
                        let info = l.append(&mut batch(tag, records, tag as i64)).unwrap();
                        prop_assert_eq!(info.base_offset, model.end);
                        if let Some(e) = model.stamp {
                            model.assign(e);
                        }
                        model.batches.push((model.end, records as u64, model.stamp.unwrap_or(-1), tag));
                        model.end += records as u64;
                    }
                    Op::Truncate { at } => {
                        let offset = at.index(model.end as usize + 1) as u64;
                        let cut = model
                            .batches
                            .iter()
                            .find(|b| b.0 + b.1 > offset)
                            .map_or(model.end, |b| b.0);
                        prop_assert_eq!(l.truncate_to(offset).unwrap(), cut);
                        model.batches.retain(|b| b.0 < cut);
                        model.epochs.retain(|e| e.1 < cut || cut == model.end);
                        model.end = cut;
                    }
                    Op::Reopen => reopen(&sim, &mut log, &mut model, false),
                    Op::PowerCut => reopen(&sim, &mut log, &mut model, true),
                }
                let l = log.as_ref().unwrap();
                prop_assert_eq!(l.log_end_offset(), model.end);
                prop_assert_eq!(epochs(l), model.epochs.clone());
                prop_assert_eq!(l.last_batch_epoch(), model.batches.last().map(|b| b.2));
                let stored: Vec<(u64, i32)> = raw_batches(l)
                    .iter()
                    .map(|(o, bytes)| (*o, rill_protocol::BatchHeader::parse(bytes).unwrap().partition_leader_epoch))
                    .collect();
                let want: Vec<(u64, i32)> = model.batches.iter().map(|b| (b.0, b.2)).collect();
                prop_assert_eq!(stored, want);
                let want_values: Vec<(u64, String)> = model
                    .batches
                    .iter()
                    .flat_map(|b| (0..b.1).map(move |r| (b.0 + r, format!("b{}-r{r}", b.3))))
                    .collect();
                prop_assert_eq!(values(l), want_values);
            }
        }
    }
}

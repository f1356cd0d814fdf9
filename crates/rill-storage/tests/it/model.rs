//! Model test: random appends, reads, reopens, crashes and retention runs
//! against a plain Vec of the records the log should hold.

use proptest::prelude::*;
use rill_protocol::batch::{split_batches, RecordBatch};
use rill_protocol::Compression;
use rill_storage::{LogConfig, PartitionLog, SimBackend};

use crate::helpers::*;

const RETENTION_MS: u64 = 5_000;

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        value_len: usize,
        codec: u8,
    },
    Read {
        at: prop::sample::Index,
        max_bytes: usize,
    },
    Reopen,
    Crash,
    Retention,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..6, 0usize..300, 0u8..5).prop_map(|(records, value_len, codec)| Op::Append { records, value_len, codec }),
        3 => (any::<prop::sample::Index>(), 0usize..4000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => Just(Op::Retention),
    ]
}

struct Model {
    /// (offset, timestamp, value) of every record the log should hold.
    records: Vec<(u64, i64, Vec<u8>)>,
    next_offset: u64,
}

fn config() -> LogConfig {
    LogConfig {
        retention_ms: Some(RETENTION_MS),
        ..small_segments(1_500)
    }
}

fn check_read(log: &PartitionLog, model: &Model, offset: u64, max_bytes: usize) {
    let res = log.read(offset, max_bytes).unwrap();
    if offset == model.next_offset {
        assert!(res.batches.is_empty());
        return;
    }
    let mut first = true;
    let mut total = 0;
    for slice in split_batches(&res.batches) {
        let slice = slice.unwrap();
        total += slice.len();
        if !first {
            assert!(total <= max_bytes, "a second batch beyond max_bytes");
        }
        let batch = RecordBatch::new(slice).unwrap();
        if first {
            assert!(batch.header.base_offset as u64 <= offset);
            assert!(batch.header.last_offset() as u64 >= offset);
        }
        first = false;
        for r in batch.records(1 << 24).unwrap().iter() {
            let r = r.unwrap();
            let i = model
                .records
                .partition_point(|(o, _, _)| *o < r.offset as u64);
            let (o, ts, v) = &model.records[i];
            assert_eq!(*o, r.offset as u64);
            assert_eq!(*ts, r.timestamp);
            assert_eq!(v.as_slice(), r.value.unwrap());
        }
    }
    assert!(!first, "a read inside the log returns at least one batch");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        let sim = SimBackend::new();
        let mut log = Some(open(&sim, config()));
        let mut model = Model { records: Vec::new(), next_offset: 0 };
        let mut now: i64 = 0;
        for op in ops {
            let l = log.as_mut().unwrap();
            match op {
                Op::Append { records, value_len, codec } => {
                    now += 1000;
                    let values: Vec<Vec<u8>> = (0..records)
                        .map(|i| vec![(model.next_offset as usize + i) as u8; value_len])
                        .collect();
                    let codec = Compression::from_id(codec).unwrap();
                    let info = l.append(&mut batch_of(&values, now, codec)).unwrap();
                    prop_assert_eq!(info.base_offset, model.next_offset);
                    for (i, v) in values.into_iter().enumerate() {
                        model.records.push((model.next_offset, now + i as i64, v));
                        model.next_offset += 1;
                    }
                }
                Op::Read { at, max_bytes } => {
                    let start = l.log_start_offset();
                    let span = (model.next_offset - start + 1) as usize;
                    let offset = start + at.index(span) as u64;
                    check_read(l, &model, offset, max_bytes);
                }
                Op::Reopen => {
                    log.take().unwrap().close().unwrap();
                    log = Some(open(&sim, config()));
                }
                Op::Crash => {
                    drop(log.take());
                    log = Some(open(&sim, config()));
                }
                Op::Retention => {
                    let before = l.log_start_offset();
                    let active_base = *l.segment_base_offsets().last().unwrap();
                    l.apply_retention(now).unwrap();
                    let after = l.log_start_offset();
                    prop_assert!(after >= before);
                    prop_assert!(after <= active_base, "the active segment is kept");
                    let cutoff = now - RETENTION_MS as i64;
                    for (o, ts, _) in model.records.iter().filter(|(o, _, _)| *o < after) {
                        prop_assert!(*ts < cutoff, "record {} at {} deleted before its time", o, ts);
                    }
                    model.records.retain(|(o, _, _)| *o >= after);
                }
            }
            let l = log.as_ref().unwrap();
            prop_assert_eq!(l.log_end_offset(), model.next_offset);
            let start = model.records.first().map_or(model.next_offset, |r| r.0);
            prop_assert_eq!(l.log_start_offset(), start);
        }
        let l = log.take().unwrap();
        let all = read_all(&l);
        prop_assert_eq!(all.len(), model.records.len());
        for ((o, v), (mo, _, mv)) in all.iter().zip(&model.records) {
            prop_assert_eq!(o, mo);
            prop_assert_eq!(v, mv);
        }
    }
}

//! Record batches v2 as a producer would send them.

use bytes::Bytes;
use rill_protocol::batch::split_batches;
use rill_protocol::{Compression, NewRecord, RecordBatch, RecordBatchBuilder};

/// A batch of `values` stamped `ts`, `ts + 1`, ..., record `i` keyed `k<i>`.
pub fn batch(values: &[&[u8]], ts: i64, codec: Compression) -> Bytes {
    let mut b = RecordBatchBuilder::new(codec);
    let keys: Vec<Vec<u8>> = (0..values.len())
        .map(|i| format!("k{i}").into_bytes())
        .collect();
    for (i, v) in values.iter().enumerate() {
        b.push(&NewRecord::new(Some(&keys[i]), v, ts + i as i64))
            .expect("a test batch is within the limits");
    }
    Bytes::from(b.build().expect("a test batch encodes"))
}

/// An idempotent producer's batch: `n` unkeyed records from producer `pid`
/// at `epoch`, the first with sequence `seq`; record `i`'s value is
/// `s<seq + i>`, so what was stored shows which sequences it came from.
pub fn idempotent_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None).producer(pid, epoch, seq);
    for i in 0..n {
        b.push(&NewRecord::new(
            None,
            format!("s{}", seq as usize + i).as_bytes(),
            1,
        ))
        .expect("a test batch is within the limits");
    }
    Bytes::from(b.build().expect("a test batch encodes"))
}

/// Every `(offset, value)` in `records` (batches as a Fetch returns them);
/// panics on a batch that does not decode, which is what the tests check.
pub fn values(records: &Bytes) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for slice in split_batches(records) {
        let batch = RecordBatch::new(slice.expect("a whole batch")).expect("a valid batch");
        for r in batch.records(1 << 24).expect("records decode").iter() {
            let r = r.expect("a valid record");
            out.push((r.offset, r.value.map(|v| v.to_vec()).unwrap_or_default()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_read_back_with_their_offsets_and_values() {
        let b = batch(&[b"a", b"bc"], 10, Compression::Lz4);
        assert_eq!(values(&b), vec![(0, b"a".to_vec()), (1, b"bc".to_vec())]);
        let header = RecordBatch::new(&b).unwrap().header;
        assert_eq!(header.base_timestamp, 10);

        let i = idempotent_batch(7, 2, 5, 3);
        let header = RecordBatch::new(&i).unwrap().header;
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (7, 2, 5)
        );
        let got: Vec<Vec<u8>> = values(&i).into_iter().map(|(_, v)| v).collect();
        assert_eq!(got, vec![b"s5".to_vec(), b"s6".to_vec(), b"s7".to_vec()]);
    }
}

//! Record batch decoding on arbitrary bytes: validation, splitting a record
//! set into batches, and reading every record and header of each batch.
//! Nothing here may panic; where the validator accepted a batch, reading it
//! must succeed and agree with it.
//!
//! Shared by the fuzz target and by the workspace test that replays the
//! committed corpus (`crates/rill-spu/tests/it/fuzz_corpus.rs`).

use std::hint::black_box;

use rill_protocol::batch::{
    peek_batch_len, split_batches, validate_batch, verify_stored_batch, BatchHeader,
    ValidationLimits,
};
use rill_protocol::RecordBatch;

/// Small limits: a fuzz input is a few KiB, and a decompression bomb must be
/// refused, not allocated.
const LIMITS: ValidationLimits = ValidationLimits {
    max_batch_bytes: 64 * 1024,
    max_decompressed_bytes: 256 * 1024,
};

/// The whole check for one input. Panics on a bug.
pub fn check(data: &[u8]) {
    check_batch(data);
    let _ = peek_batch_len(data);
    for slice in split_batches(data) {
        match slice {
            Ok(batch) => check_batch(batch),
            Err(_) => break,
        }
    }
}

/// Validates `bytes` as one batch, then reads it record by record whatever
/// the validator said.
fn check_batch(bytes: &[u8]) {
    let validated = validate_batch(bytes, &LIMITS).ok();
    let _ = verify_stored_batch(bytes);
    let records_read = read_all(bytes);
    if let Some(header) = validated {
        // An accepted batch reads back whole: every record decodes, and there
        // are as many as the header says.
        assert_eq!(
            records_read,
            Some(header.records_count as usize),
            "validate_batch accepted a batch whose records do not read back"
        );
        if header.base_offset >= 0 {
            assert!(
                verify_stored_batch(bytes).is_ok(),
                "validate_batch accepted a batch that verify_stored_batch refuses"
            );
        }
    }
}

/// Reads every record and header of the batch at the start of `bytes`.
/// Returns how many records decoded, or `None` if anything failed.
fn read_all(bytes: &[u8]) -> Option<usize> {
    let batch = RecordBatch::new(bytes).ok()?;
    touch_header(&batch.header);
    let _ = batch.payload().len();
    let records = batch.records(LIMITS.max_decompressed_bytes).ok()?;
    let _ = records.uncompressed_bytes();
    let mut count = 0usize;
    let mut failed = false;
    for record in records.iter() {
        let Ok(record) = record else {
            failed = true;
            continue;
        };
        black_box((record.offset, record.timestamp, record.attributes));
        black_box(record.key.map(<[u8]>::len));
        black_box(record.value.map(<[u8]>::len));
        let mut headers = 0usize;
        for header in record.headers.iter() {
            black_box((header.key.len(), header.value.map(<[u8]>::len)));
            headers += 1;
        }
        // Headers were checked when the record was read.
        assert_eq!(
            headers,
            record.headers.len(),
            "header iteration stopped early"
        );
        count += 1;
    }
    (!failed).then_some(count)
}

fn touch_header(header: &BatchHeader) {
    black_box((
        header.total_bytes(),
        header.last_offset(),
        header.next_offset(),
        header.compression().ok(),
        header.has_producer_id(),
        header.attributes.timestamp_type(),
        header.attributes.is_transactional(),
        header.attributes.is_control(),
    ));
}

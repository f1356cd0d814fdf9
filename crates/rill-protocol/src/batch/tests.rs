use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq)]
struct Owned {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    timestamp: i64,
}

fn owned() -> impl Strategy<Value = Owned> {
    (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 0..10),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            ),
            0..4,
        ),
        // Around "now", with some jitter both ways.
        1_700_000_000_000i64..1_700_000_100_000,
    )
        .prop_map(|(key, value, headers, timestamp)| Owned {
            key,
            value,
            headers,
            timestamp,
        })
}

fn build(codec: Compression, records: &[Owned]) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(codec);
    for r in records {
        let headers: Vec<(&[u8], Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect();
        let rec = NewRecord {
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &headers,
            timestamp: r.timestamp,
        };
        let before = b.uncompressed_bytes();
        let predicted = b.encoded_len(&rec).unwrap();
        b.push(&rec).unwrap();
        assert_eq!(b.uncompressed_bytes() - before, predicted);
    }
    b.build().unwrap()
}

fn read_back(bytes: &[u8]) -> Vec<Owned> {
    let batch = RecordBatch::new(bytes).unwrap();
    let set = batch.records(1 << 26).unwrap();
    set.iter()
        .map(|r| {
            let r = r.unwrap();
            Owned {
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                headers: r
                    .headers
                    .iter()
                    .map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec)))
                    .collect(),
                timestamp: r.timestamp,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn round_trip_with_every_codec(records in proptest::collection::vec(owned(), 1..40), base in 0i64..1_000_000) {
        for codec in Compression::ALL {
            let mut bytes = build(codec, &records);
            set_base_offset(&mut bytes, base).unwrap();
            let header = validate_batch(&bytes, &ValidationLimits::default()).unwrap();
            prop_assert_eq!(header.records_count as usize, records.len());
            prop_assert_eq!(header.base_offset, base);
            prop_assert_eq!(header.compression().unwrap(), codec);
            prop_assert_eq!(header.max_timestamp, records.iter().map(|r| r.timestamp).max().unwrap());
            prop_assert_eq!(&read_back(&bytes), &records);
            let offsets: Vec<i64> = RecordBatch::new(&bytes).unwrap().records(1 << 26).unwrap()
                .iter().map(|r| r.unwrap().offset).collect();
            let expected: Vec<i64> = (base..base + records.len() as i64).collect();
            prop_assert_eq!(offsets, expected);
        }
    }

    #[test]
    fn any_single_byte_flip_is_caught(records in proptest::collection::vec(owned(), 1..5), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = build(Compression::None, &records);
        let i = at.index(bytes.len());
        // base_offset and partition_leader_epoch are outside the CRC by design.
        prop_assume!(!(0..8).contains(&i) && !(12..16).contains(&i));
        bytes[i] ^= 1 << bit;
        prop_assert!(validate_batch(&bytes, &ValidationLimits::default()).is_err());
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = validate_batch(&data, &ValidationLimits::default());
        for b in split_batches(&data).flatten() {
            let _ = validate_batch(b, &ValidationLimits::default());
        }
    }
}

#[test]
fn header_layout_matches_the_spec() {
    let mut b = RecordBatchBuilder::new(Compression::None).producer(42, 3, 7);
    b.push(&NewRecord::new(Some(b"k"), b"v", 1000)).unwrap();
    b.push(&NewRecord::new(None, b"w", 1005)).unwrap();
    let bytes = b.build().unwrap();
    let h = BatchHeader::parse(&bytes).unwrap();
    assert_eq!(h.total_bytes(), Some(bytes.len()));
    assert_eq!(h.magic, 2);
    assert_eq!(h.last_offset_delta, 1);
    assert_eq!(h.records_count, 2);
    assert_eq!(h.base_timestamp, 1000);
    assert_eq!(h.max_timestamp, 1005);
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (42, 3, 7)
    );
    assert_eq!(h.crc, crc32c::crc32c(&bytes[21..]));
    // The first record, hand-decoded: length 8 (zig-zag 16), attributes 0,
    // ts delta 0, offset delta 0, key len 1 (2) "k", value len 1 (2) "v",
    // no headers.
    assert_eq!(&bytes[61..70], &[16, 0, 0, 0, 2, b'k', 2, b'v', 0]);
}

#[test]
fn validation_names_each_fault() {
    let limits = ValidationLimits::default();
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.push(&NewRecord::new(None, b"hello", 1)).unwrap();
    let good = b.build().unwrap();
    validate_batch(&good, &limits).unwrap();

    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 0xff;
    assert!(matches!(
        validate_batch(&bad_crc, &limits),
        Err(BatchError::CrcMismatch { .. })
    ));

    let mut bad_magic = good.clone();
    bad_magic[16] = 1;
    assert!(matches!(
        validate_batch(&bad_magic, &limits),
        Err(BatchError::UnsupportedMagic(1))
    ));

    assert!(matches!(
        validate_batch(&good[..good.len() - 1], &limits),
        Err(BatchError::LengthMismatch { .. })
    ));

    // A count that lies, with the CRC recomputed so only the count is wrong.
    let mut lying = good.clone();
    lying[57..61].copy_from_slice(&2i32.to_be_bytes());
    lying[23..27].copy_from_slice(&1i32.to_be_bytes());
    let crc = batch_crc(&lying);
    lying[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        validate_batch(&lying, &limits),
        Err(BatchError::CountMismatch { .. })
    ));

    let small = ValidationLimits {
        max_batch_bytes: 10,
        ..limits
    };
    assert!(matches!(
        validate_batch(&good, &small),
        Err(BatchError::TooLarge { .. })
    ));
}

#[test]
fn decompression_bomb_is_refused() {
    let mut b = RecordBatchBuilder::new(Compression::Zstd);
    let big = vec![0u8; 1 << 20];
    b.push(&NewRecord::new(None, &big, 1)).unwrap();
    let bytes = b.build().unwrap();
    assert!(bytes.len() < 10_000);
    let limits = ValidationLimits {
        max_decompressed_bytes: 1 << 16,
        ..Default::default()
    };
    assert!(matches!(
        validate_batch(&bytes, &limits),
        Err(BatchError::Compression(
            crate::CompressionError::TooLarge { .. }
        ))
    ));
}

#[test]
fn split_finds_each_batch_and_flags_a_torn_tail() {
    let mut all = Vec::new();
    for i in 0..3 {
        let mut b = RecordBatchBuilder::new(Compression::None);
        b.push(&NewRecord::new(None, format!("v{i}").as_bytes(), i))
            .unwrap();
        b.build_into(&mut all).unwrap();
    }
    let whole: Vec<_> = split_batches(&all).collect::<Result<_, _>>().unwrap();
    assert_eq!(whole.len(), 3);
    let torn: Vec<_> = split_batches(&all[..all.len() - 3]).collect();
    assert_eq!(torn.len(), 3);
    assert!(torn[2].is_err());
}

#[test]
fn log_append_time_batches_report_max_timestamp() {
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.push(&NewRecord::new(None, b"a", 10)).unwrap();
    let mut bytes = b.build().unwrap();
    // Broker-side rewrite: set the timestamp-type bit and max_timestamp.
    bytes[22] |= 1 << 3;
    bytes[35..43].copy_from_slice(&999i64.to_be_bytes());
    let crc = batch_crc(&bytes);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    let batch = RecordBatch::new(&bytes).unwrap();
    assert_eq!(
        batch.header.attributes.timestamp_type(),
        TimestampType::LogAppendTime
    );
    let set = batch.records(1024).unwrap();
    assert_eq!(set.iter().next().unwrap().unwrap().timestamp, 999);
}

#[test]
fn a_record_whose_fields_overrun_it_is_refused_even_with_a_good_crc() {
    let limits = ValidationLimits::default();
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.push(&NewRecord::new(Some(b"k"), b"value", 1)).unwrap();
    b.push(&NewRecord::new(None, b"w", 2)).unwrap();
    let good = b.build().unwrap();
    // Record 0 starts at 61: length, attributes, ts delta, offset delta, then
    // the key length (zig-zag 1 = 2). Claim a 60-byte key instead.
    for (at, value, what) in [
        (65usize, 120u8, "key overruns"),
        (64, 2, "offset delta 1 for record 0"),
    ] {
        let mut bad = good.clone();
        bad[at] = value;
        let crc = batch_crc(&bad);
        bad[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(
            matches!(
                validate_batch(&bad, &limits),
                Err(BatchError::BadRecord { index: 0, .. })
            ),
            "{what}: {:?}",
            validate_batch(&bad, &limits)
        );
    }
}

#[test]
fn set_producer_restamps_and_keeps_the_batch_valid() {
    let mut b = RecordBatchBuilder::new(Compression::Lz4).producer(42, 3, 7);
    for i in 0..20u8 {
        b.push(&NewRecord {
            key: None,
            value: Some(&[i; 50]),
            headers: &[],
            timestamp: 1000,
        })
        .unwrap();
    }
    let mut bytes = b.build().unwrap();
    set_producer(&mut bytes, 99, 0, 1234).unwrap();
    let h = BatchHeader::parse(&bytes).unwrap();
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (99, 0, 1234)
    );
    validate_batch(&bytes, &ValidationLimits::default()).unwrap();
    let set = RecordBatch::new(&bytes)
        .unwrap()
        .records(usize::MAX)
        .unwrap();
    let values: Vec<_> = set.iter().map(|r| r.unwrap().value.unwrap()[0]).collect();
    assert_eq!(values, (0..20).collect::<Vec<u8>>());
    // A cut batch is refused, not half rewritten.
    assert!(set_producer(&mut bytes[..40], 1, 1, 1).is_err());
}

#[test]
fn finish_gives_the_same_bytes_as_build() {
    for codec in [Compression::None, Compression::Lz4] {
        let empty = RecordBatchBuilder::new(codec);
        assert_eq!(empty.build().unwrap(), empty.clone().finish().unwrap());
        let mut b = RecordBatchBuilder::new(codec).producer(5, 1, 9);
        for i in 0..50u8 {
            b.push(&NewRecord::new(Some(&[i]), &[i; 30], 1000 + i64::from(i)))
                .unwrap();
        }
        let built = b.build().unwrap();
        assert!(b.uncompressed_bytes() > HEADER_BYTES);
        assert_eq!(built, b.finish().unwrap(), "{codec:?}");
        validate_batch(&built, &ValidationLimits::default()).unwrap();
    }
}

#[test]
fn set_partition_leader_epoch_restamps_and_keeps_the_crc_valid() {
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.push(&NewRecord::new(None, b"v", 5)).unwrap();
    let mut bytes = b.build().unwrap();
    assert_eq!(
        BatchHeader::parse(&bytes).unwrap().partition_leader_epoch,
        -1
    );
    let crc_before = BatchHeader::parse(&bytes).unwrap().crc;
    set_partition_leader_epoch(&mut bytes, 7).unwrap();
    let h = validate_batch(&bytes, &ValidationLimits::default()).unwrap();
    assert_eq!(h.partition_leader_epoch, 7);
    assert_eq!(h.crc, crc_before, "the epoch is outside the CRC");
    assert_eq!(&bytes[12..16], &7i32.to_be_bytes());
    assert!(set_partition_leader_epoch(&mut bytes[..15], 1).is_err());
}

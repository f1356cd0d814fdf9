//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! same checks the cargo-fuzz targets run (`fuzz/checks/<target>.rs`,
//! included here), so CI exercises every decoder on every input the fuzzer
//! kept without needing a nightly toolchain or sanitizers.

use std::path::{Path, PathBuf};

#[path = "../../../../fuzz/checks/batch_decode.rs"]
mod batch_decode;
#[path = "../../../../fuzz/checks/frame_decode.rs"]
mod frame_decode;
#[path = "../../../../fuzz/checks/request_decode.rs"]
mod request_decode;
#[path = "../../../../fuzz/checks/storage_recovery.rs"]
mod storage_recovery;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Runs `check` on every file of a target's corpus; returns how many.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", file.display());
    }
    println!("{target}: {} corpus inputs replayed", files.len());
    files.len()
}

#[test]
fn batch_decode_corpus() {
    assert!(replay("batch_decode", batch_decode::check) >= 500);
}

#[test]
fn frame_decode_corpus() {
    assert!(replay("frame_decode", frame_decode::check) >= 50);
}

#[test]
fn request_decode_corpus() {
    assert!(replay("request_decode", request_decode::check) >= 500);
}

#[test]
fn storage_recovery_corpus() {
    assert!(replay("storage_recovery", storage_recovery::check) >= 40);
}

/// The checks themselves catch what they are meant to: a stored log that
/// a reopen would change, a frame decoder fed nothing, a decoder given a
/// supported version.
#[test]
fn the_checks_run_on_simple_inputs() {
    frame_decode::check(&[3, 0, 0, 0, 2, 0, 18, 0, 0, 0, 0]);
    request_decode::check(&[0, 18, 0, 0, 0, 18, 0, 3]);
    storage_recovery::check(&[0]);
    batch_decode::check(&[]);
}

/// Writes the structured seeds of `request_decode`, `frame_decode` and
/// `storage_recovery` into `fuzz/corpus/` (committed). Run by hand after a
/// change to the supported APIs:
/// `cargo test -p rill-spu --test it fuzz_corpus::write_seeds -- --ignored`.
#[test]
#[ignore = "writes seed files into fuzz/corpus; run by hand"]
fn write_seeds() {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Encodable, Request, StrBytes};
    use rill_spu::SUPPORTED_APIS;

    fn frame<R: Request + Default>(version: i16) -> (Vec<u8>, Vec<u8>) {
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("seed")));
        let mut f = BytesMut::new();
        header.encode(&mut f, R::header_version(version)).unwrap();
        let mut body = BytesMut::new();
        R::default().encode(&mut body, version).unwrap();
        f.extend_from_slice(&body);
        (f.to_vec(), body.to_vec())
    }
    let dir = corpus_dir("request_decode");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, &(key, min, max)) in SUPPORTED_APIS.iter().enumerate() {
        for v in min..=max {
            let (f, body) = match key {
                0 => frame::<ProduceRequest>(v),
                1 => frame::<FetchRequest>(v),
                2 => frame::<ListOffsetsRequest>(v),
                3 => frame::<MetadataRequest>(v),
                18 => frame::<ApiVersionsRequest>(v),
                19 => frame::<CreateTopicsRequest>(v),
                20 => frame::<DeleteTopicsRequest>(v),
                22 => frame::<InitProducerIdRequest>(v),
                32 => frame::<DescribeConfigsRequest>(v),
                33 => frame::<AlterConfigsRequest>(v),
                37 => frame::<CreatePartitionsRequest>(v),
                44 => frame::<IncrementalAlterConfigsRequest>(v),
                60 => frame::<DescribeClusterRequest>(v),
                _ => unreachable!("a new API: add it here"),
            };
            std::fs::write(dir.join(format!("seed-frame-{key}-v{v}")), f).unwrap();
            // Body form: selector bytes that map onto (key, v), then the body.
            let mut b = vec![0, i as u8, 0, (v - min) as u8];
            b.extend_from_slice(&body);
            std::fs::write(dir.join(format!("seed-body-{key}-v{v}")), b).unwrap();
        }
    }

    let dir = corpus_dir("frame_decode");
    std::fs::create_dir_all(&dir).unwrap();
    let mut two = BytesMut::new();
    two.put_u8(3);
    for payload in [&b"abc"[..], &[0u8; 40][..]] {
        two.put_i32(payload.len() as i32);
        two.put_slice(payload);
    }
    std::fs::write(dir.join("seed-two-frames"), &two).unwrap();
    std::fs::write(dir.join("seed-too-large"), [1, 0, 0, 2, 1, 9]).unwrap();
    std::fs::write(dir.join("seed-negative"), [7, 0xff, 0xff, 0xff, 0xfe]).unwrap();

    // Segments: one batch, and two batches with contiguous offsets.
    let dir = corpus_dir("storage_recovery");
    std::fs::create_dir_all(&dir).unwrap();
    let one = rill_test_support::batch(&[b"a", b"b", b"c"], 5, rill_protocol::Compression::None);
    let mut seg = vec![0u8];
    seg.extend_from_slice(&one);
    std::fs::write(dir.join("seed-one-batch"), &seg).unwrap();
    let mut second =
        rill_test_support::batch(&[b"d"], 9, rill_protocol::Compression::Zstd).to_vec();
    second[..8].copy_from_slice(&3i64.to_be_bytes());
    seg.extend_from_slice(&second);
    std::fs::write(dir.join("seed-two-batches"), &seg).unwrap();
}

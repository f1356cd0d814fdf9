//! A Fetch response frame whose record sets may stay in their segment
//! files: encoded as pieces (bytes, a file range, bytes, ...) for the
//! connection to write, the file ranges with `sendfile`, so a consumer's
//! records go from the page cache to the socket without passing through
//! the SPU's memory.
//!
//! Written by hand for the versions the SPU serves (4 to 12) and the
//! fields it sets; a response with anything else (tagged fields, a
//! version outside that range) gives `None` and goes through
//! kafka-protocol's encoder instead. A test checks the pieces, put
//! together, against kafka-protocol's bytes for every version.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::protocol::Encodable;
use rill_storage::FileSlice;

/// The Fetch versions this encoder writes.
const VERSIONS: std::ops::RangeInclusive<i16> = 4..=12;

/// One piece of a response frame.
#[derive(Debug)]
pub(crate) enum Piece {
    Bytes(BytesMut),
    /// Stored batches, sent from their file as they are.
    File(FileSlice),
}

/// A response frame (size prefix included) in pieces.
#[derive(Debug)]
pub(crate) struct Pieces {
    pub pieces: Vec<Piece>,
}

impl Pieces {
    /// Bytes of the whole frame.
    pub(crate) fn byte_len(&self) -> u64 {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Bytes(b) => b.len() as u64,
                Piece::File(s) => s.len,
            })
            .sum()
    }
}

/// Writes Kafka's primitive types into the current piece.
struct Writer {
    done: Vec<Piece>,
    cur: BytesMut,
    flexible: bool,
    file_bytes: usize,
}

impl Writer {
    fn uvarint(&mut self, mut n: u32) {
        while n >= 0x80 {
            self.cur.put_u8((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        self.cur.put_u8(n as u8);
    }

    /// An array's or a string's length (compact: n + 1 as a varint).
    fn len(&mut self, n: usize, classic: impl FnOnce(&mut BytesMut, usize)) -> Option<()> {
        if self.flexible {
            self.uvarint(u32::try_from(n).ok()?.checked_add(1)?);
        } else {
            classic(&mut self.cur, n);
        }
        Some(())
    }

    fn array_len(&mut self, n: usize) -> Option<()> {
        let n32 = i32::try_from(n).ok()?;
        self.len(n, |b, _| b.put_i32(n32))
    }

    fn string(&mut self, s: &str) -> Option<()> {
        let n16 = i16::try_from(s.len()).ok()?;
        self.len(s.len(), |b, _| b.put_i16(n16))?;
        self.cur.put_slice(s.as_bytes());
        Some(())
    }

    /// A nullable byte string's length (compact: 0 for null).
    fn bytes_len(&mut self, n: usize) -> Option<()> {
        let n32 = i32::try_from(n).ok()?;
        self.len(n, |b, _| b.put_i32(n32))
    }

    /// No tagged fields (flexible versions only).
    fn no_tags(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }

    fn file(&mut self, slice: FileSlice) -> Option<()> {
        self.bytes_len(usize::try_from(slice.len).ok()?)?;
        self.file_bytes = self
            .file_bytes
            .checked_add(usize::try_from(slice.len).ok()?)?;
        let before = self.cur.split();
        self.done.push(Piece::Bytes(before));
        self.done.push(Piece::File(slice));
        Some(())
    }
}

/// Whether a partition has only what this encoder writes.
fn plain(p: &PartitionData, version: i16) -> bool {
    p.unknown_tagged_fields.is_empty()
        && p.diverging_epoch == Default::default()
        && p.current_leader == Default::default()
        && p.snapshot_id == Default::default()
        && (version >= 11 || p.preferred_read_replica.0 == -1)
}

/// The frame of `resp` with the records of partition `i` (in response
/// order) taken from `files[i]` when it is `Some`; `None` when the
/// response has something this encoder does not write.
pub(crate) fn encode(
    correlation_id: i32,
    header_version: i16,
    version: i16,
    resp: &FetchResponse,
    files: &[Option<FileSlice>],
) -> Option<Pieces> {
    let partitions = resp.responses.iter().flat_map(|t| &t.partitions);
    let shape_ok = VERSIONS.contains(&version)
        && files.len() == partitions.clone().count()
        && resp.unknown_tagged_fields.is_empty()
        && resp.node_endpoints.is_empty()
        && (version >= 7 || resp.session_id == 0)
        && resp
            .responses
            .iter()
            .all(|t| t.unknown_tagged_fields.is_empty())
        && partitions.clone().all(|p| plain(p, version));
    if !shape_ok {
        return None;
    }
    let mut w = Writer {
        done: Vec::new(),
        cur: BytesMut::with_capacity(256),
        flexible: version >= 12,
        file_bytes: 0,
    };
    w.cur.put_i32(0); // the frame's size, filled in below
    w.cur.put_i32(correlation_id);
    if header_version >= 1 {
        w.uvarint(0);
    }
    w.cur.put_i32(resp.throttle_time_ms);
    if version >= 7 {
        w.cur.put_i16(resp.error_code);
        w.cur.put_i32(resp.session_id);
    }
    let mut files = files.iter();
    w.array_len(resp.responses.len())?;
    for topic in &resp.responses {
        w.string(topic.topic.as_str())?;
        w.array_len(topic.partitions.len())?;
        for p in &topic.partitions {
            partition(&mut w, p, version, files.next()?.clone())?;
        }
        w.no_tags();
    }
    w.no_tags();
    let Writer {
        mut done,
        cur,
        file_bytes,
        ..
    } = w;
    done.push(Piece::Bytes(cur));
    let in_memory: usize = done
        .iter()
        .map(|p| match p {
            Piece::Bytes(b) => b.len(),
            Piece::File(_) => 0,
        })
        .sum();
    let frame_bytes = in_memory.checked_add(file_bytes)?;
    let size = i32::try_from(frame_bytes - 4).ok()?;
    if let Some(Piece::Bytes(first)) = done.first_mut() {
        first.get_mut(..4)?.copy_from_slice(&size.to_be_bytes());
    }
    done.retain(|p| !matches!(p, Piece::Bytes(b) if b.is_empty()));
    Some(Pieces { pieces: done })
}

fn partition(
    w: &mut Writer,
    p: &PartitionData,
    version: i16,
    file: Option<FileSlice>,
) -> Option<()> {
    w.cur.put_i32(p.partition_index);
    w.cur.put_i16(p.error_code);
    w.cur.put_i64(p.high_watermark);
    w.cur.put_i64(p.last_stable_offset);
    if version >= 5 {
        w.cur.put_i64(p.log_start_offset);
    }
    match &p.aborted_transactions {
        None if w.flexible => w.uvarint(0),
        None => w.cur.put_i32(-1),
        Some(aborted) => {
            w.array_len(aborted.len())?;
            for a in aborted {
                a.encode(&mut w.cur, version).ok()?;
            }
        }
    }
    if version >= 11 {
        w.cur.put_i32(p.preferred_read_replica.0);
    }
    match (file, &p.records) {
        (Some(slice), _) => w.file(slice)?,
        (None, None) if w.flexible => w.uvarint(0),
        (None, None) => w.cur.put_i32(-1),
        (None, Some(records)) => {
            w.bytes_len(records.len())?;
            w.cur.put_slice(records);
        }
    }
    w.no_tags();
    Some(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, EpochEndOffset, FetchableTopicResponse,
    };
    use kafka_protocol::messages::{ApiKey, BrokerId, ResponseHeader, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    /// A file of distinct bytes, and slices of it.
    fn file() -> Arc<std::fs::File> {
        let mut f = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        f.write_all(&bytes).unwrap();
        Arc::new(f)
    }

    fn slice(file: &Arc<std::fs::File>, pos: u64, len: u64) -> FileSlice {
        FileSlice {
            file: file.clone(),
            pos,
            len,
            records: 1,
        }
    }

    fn partition(index: i32, version: i16) -> PartitionData {
        let mut p = PartitionData::default()
            .with_partition_index(index)
            .with_high_watermark(1000 + i64::from(index))
            .with_last_stable_offset(900)
            .with_log_start_offset(if version >= 5 { 7 } else { -1 })
            .with_aborted_transactions(Some(Vec::new()))
            .with_records(Some(Bytes::new()));
        if version >= 11 {
            p.preferred_read_replica = BrokerId(-1);
        }
        p
    }

    /// The frame kafka-protocol writes for `resp`.
    fn reference(cid: i32, hv: i16, version: i16, resp: &FetchResponse) -> Vec<u8> {
        let header = ResponseHeader::default().with_correlation_id(cid);
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, hv).unwrap();
        resp.encode(&mut buf, version).unwrap();
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        buf.to_vec()
    }

    fn joined(pieces: Pieces) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces.pieces {
            match p {
                Piece::Bytes(b) => out.extend_from_slice(&b),
                Piece::File(f) => out.extend_from_slice(&f.read_bytes().unwrap()),
            }
        }
        out
    }

    #[test]
    fn pieces_put_together_are_kafka_protocols_frame_for_every_version() {
        let f = file();
        for version in VERSIONS {
            let hv = ApiKey::Fetch.response_header_version(version);
            // Topic a: a file slice, in-memory records, an error with null
            // records. Topic b: a long file slice, aborted transactions.
            let mut a0 = partition(0, version);
            let mut a1 = partition(1, version);
            a1.records = Some(Bytes::from_static(b"in memory records"));
            let mut a2 = partition(2, version);
            a2.error_code = 6;
            a2.records = None;
            a2.aborted_transactions = None;
            let mut b0 = partition(0, version);
            b0.aborted_transactions = Some(vec![AbortedTransaction::default()
                .with_producer_id(kafka_protocol::messages::ProducerId(42))
                .with_first_offset(17)]);
            let files = vec![
                Some(slice(&f, 10, 300)),
                None,
                None,
                Some(slice(&f, 1000, 3500)),
            ];
            let topic = |name: &str, partitions| {
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_string(name.into())))
                    .with_partitions(partitions)
            };
            let mut resp = FetchResponse::default()
                .with_throttle_time_ms(3)
                .with_responses(vec![
                    topic("alpha", vec![a0.clone(), a1.clone(), a2.clone()]),
                    topic("bravo", vec![b0.clone()]),
                ]);
            if version >= 7 {
                resp.session_id = 9;
            }
            let pieces = encode(77, hv, version, &resp, &files).expect("plain response");
            assert_eq!(
                pieces
                    .pieces
                    .iter()
                    .filter(|p| matches!(p, Piece::File(_)))
                    .count(),
                2,
                "v{version}: both slices stay in their file"
            );
            // The same response with the slices' bytes as its records.
            a0.records = Some(files[0].as_ref().unwrap().read_bytes().unwrap().into());
            b0.records = Some(files[3].as_ref().unwrap().read_bytes().unwrap().into());
            resp.responses = vec![topic("alpha", vec![a0, a1, a2]), topic("bravo", vec![b0])];
            assert_eq!(
                joined(pieces),
                reference(77, hv, version, &resp),
                "v{version}"
            );
        }
    }

    #[test]
    fn what_the_piece_encoder_does_not_write_is_left_to_kafka_protocol() {
        let f = file();
        let mut p = partition(0, 12);
        p.diverging_epoch = EpochEndOffset::default().with_epoch(3).with_end_offset(9);
        let resp = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![p])]);
        assert!(encode(1, 1, 12, &resp, &[Some(slice(&f, 0, 10))]).is_none());
        let plain = FetchResponse::default();
        assert!(
            encode(1, 1, 13, &plain, &[]).is_none(),
            "v13 names topics by id"
        );
        assert!(
            encode(1, 1, 12, &plain, &[None]).is_none(),
            "one file entry per partition"
        );
    }
}

//! Committed offsets: the records of the internal offsets topic, and the
//! table they rebuild.
//!
//! Each commit is a record of `__consumer_offsets` in Kafka's own format,
//! so a Kafka tool reading the topic would understand it:
//!
//! - key (version 1): `i16 version, string group, string topic, i32 partition`
//! - value (version 3): `i16 version, i64 offset, i32 leader epoch,
//!   string metadata, i64 commit timestamp (ms)`
//! - a null value is a tombstone: the group's offset for that partition is
//!   gone (DeleteGroups, `rill group delete`).
//!
//! Strings are an i16 length then UTF-8. Key versions 0 and 1 are commits;
//! version 2 (Kafka's group metadata, which Rill does not write) and any
//! unknown version are skipped on replay, as are records that do not
//! decode: the log is read on every start and must never stop it.
//!
//! On open the SPU replays the partition in order (last record per key
//! wins, tombstones remove). Instead of Kafka's compaction by key, the
//! coordinator keeps the log bounded with snapshots: past a size it
//! appends every live entry again, marked as a snapshot (see [`Replay`]),
//! and deletes the segments before it.

use std::collections::{BTreeMap, HashMap};

use bytes::{BufMut, Bytes, BytesMut};

/// Why an offsets record does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetsRecordError {
    #[error("offsets record ends early")]
    Truncated,
    #[error("offsets record string is not UTF-8")]
    NotUtf8,
    #[error("offsets record has a negative string length")]
    NegativeLength,
    /// A key version that is not an offset commit (2: group metadata).
    #[error("offsets record key version {0} is not an offset commit")]
    OtherKey(i16),
    #[error("offsets record value version {0} is not known")]
    UnknownValue(i16),
}

/// Which offset a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OffsetKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

const KEY_VERSION: i16 = 1;
const VALUE_VERSION: i16 = 3;

fn put_string(buf: &mut BytesMut, s: &str) {
    // Group, topic and metadata strings are bounded below i16::MAX by the
    // request decoder (an i16 length); truncate rather than wrap if not.
    let bytes = s.as_bytes();
    let len = bytes.len().min(i16::MAX as usize);
    buf.put_i16(len as i16);
    buf.put_slice(bytes.get(..len).unwrap_or_default());
}

impl OffsetKey {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(10 + self.group.len() + self.topic.len());
        buf.put_i16(KEY_VERSION);
        put_string(&mut buf, &self.group);
        put_string(&mut buf, &self.topic);
        buf.put_i32(self.partition);
        buf.freeze()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, OffsetsRecordError> {
        let mut c = Cursor(bytes);
        let version = c.i16()?;
        if !(0..=1).contains(&version) {
            return Err(OffsetsRecordError::OtherKey(version));
        }
        Ok(Self {
            group: c.string()?,
            topic: c.string()?,
            partition: c.i32()?,
        })
    }
}

impl Committed {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(26 + self.metadata.len());
        buf.put_i16(VALUE_VERSION);
        buf.put_i64(self.offset);
        buf.put_i32(self.leader_epoch);
        put_string(&mut buf, &self.metadata);
        buf.put_i64(self.commit_timestamp_ms);
        buf.freeze()
    }

    /// Values of versions 1 and 3 (Kafka's; 1 has an expiry timestamp
    /// after the commit timestamp and no leader epoch, 2 neither).
    pub fn decode(bytes: &[u8]) -> Result<Self, OffsetsRecordError> {
        let mut c = Cursor(bytes);
        let version = c.i16()?;
        match version {
            0..=2 => {
                let offset = c.i64()?;
                let metadata = c.string()?;
                let commit_timestamp_ms = c.i64()?;
                Ok(Self {
                    offset,
                    leader_epoch: -1,
                    metadata,
                    commit_timestamp_ms,
                })
            }
            3 => Ok(Self {
                offset: c.i64()?,
                leader_epoch: c.i32()?,
                metadata: c.string()?,
                commit_timestamp_ms: c.i64()?,
            }),
            v => Err(OffsetsRecordError::UnknownValue(v)),
        }
    }
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], OffsetsRecordError> {
        let head = self.0.get(..N).ok_or(OffsetsRecordError::Truncated)?;
        let out: [u8; N] = head.try_into().map_err(|_| OffsetsRecordError::Truncated)?;
        self.0 = self.0.get(N..).unwrap_or_default();
        Ok(out)
    }

    fn i16(&mut self) -> Result<i16, OffsetsRecordError> {
        self.take::<2>().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, OffsetsRecordError> {
        self.take::<4>().map(i32::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, OffsetsRecordError> {
        self.take::<8>().map(i64::from_be_bytes)
    }

    fn string(&mut self) -> Result<String, OffsetsRecordError> {
        let len = usize::try_from(self.i16()?).map_err(|_| OffsetsRecordError::NegativeLength)?;
        let bytes = self.0.get(..len).ok_or(OffsetsRecordError::Truncated)?;
        self.0 = self.0.get(len..).unwrap_or_default();
        String::from_utf8(bytes.to_vec()).map_err(|_| OffsetsRecordError::NotUtf8)
    }
}

/// The record header that marks a snapshot record: its value is the
/// offset (`i64`, big-endian) whose state the snapshot carries.
pub const SNAPSHOT_HEADER: &[u8] = b"rill.offsets.snapshot-as-of";

/// Rebuilds the table from the log in offset order, snapshots included.
///
/// A snapshot (written when the log grows, see `super::compact`) repeats
/// every live entry as of log offset `E`, after which the segments wholly
/// below `E` are deleted. It is appended after commits that came while it
/// was built, so a snapshot record must not undo them: it applies only to
/// a key no record at or past `E` has set. Keys last set below `E` get the
/// same value again, and keys whose records were deleted get it back.
#[derive(Debug, Default)]
pub struct Replay {
    pub table: OffsetTable,
    /// The offset of the record that last set each key.
    set_at: HashMap<OffsetKey, i64>,
}

impl Replay {
    /// One stored record at `offset`; `as_of` is its snapshot header's
    /// offset, if it is a snapshot record.
    pub fn record(
        &mut self,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        as_of: Option<i64>,
    ) {
        let Some(key) = key else { return };
        let key = match OffsetKey::decode(key) {
            Ok(k) => k,
            Err(OffsetsRecordError::OtherKey(_)) => return,
            Err(e) => {
                tracing::warn!(error = %e, "skipping an offsets record");
                return;
            }
        };
        if let Some(e) = as_of {
            if self.set_at.get(&key).is_some_and(|at| *at >= e) {
                return;
            }
        }
        match value.map(Committed::decode).transpose() {
            Ok(v) => {
                self.set_at.insert(key.clone(), offset);
                self.table.apply(key, v);
            }
            Err(e) => tracing::warn!(error = %e, "skipping an offsets record"),
        }
    }
}

/// Every group's committed offsets, as the log says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OffsetTable {
    groups: HashMap<String, BTreeMap<(String, i32), Committed>>,
}

impl OffsetTable {
    /// Applies one record of the log: a commit, or a tombstone (`None`).
    pub fn apply(&mut self, key: OffsetKey, value: Option<Committed>) {
        match value {
            Some(c) => {
                self.groups
                    .entry(key.group)
                    .or_default()
                    .insert((key.topic, key.partition), c);
            }
            None => {
                if let Some(g) = self.groups.get_mut(&key.group) {
                    g.remove(&(key.topic, key.partition));
                    if g.is_empty() {
                        self.groups.remove(&key.group);
                    }
                }
            }
        }
    }

    pub fn group(&self, group: &str) -> Option<&BTreeMap<(String, i32), Committed>> {
        self.groups.get(group)
    }

    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&Committed> {
        self.groups
            .get(group)
            .and_then(|g| g.get(&(topic.to_owned(), partition)))
    }

    /// Groups with at least one committed offset.
    pub fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Live entries (one per group, topic and partition).
    pub fn len(&self) -> usize {
        self.groups.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Every live entry, for a snapshot.
    pub fn entries(&self) -> impl Iterator<Item = (OffsetKey, &Committed)> {
        self.groups.iter().flat_map(|(g, offsets)| {
            offsets.iter().map(move |((t, p), c)| {
                (
                    OffsetKey {
                        group: g.clone(),
                        topic: t.clone(),
                        partition: *p,
                    },
                    c,
                )
            })
        })
    }

    /// Drops a group's offsets from the table (the log gets tombstones
    /// first), returning the keys removed.
    pub fn remove_group(&mut self, group: &str) -> Vec<OffsetKey> {
        self.groups
            .remove(group)
            .map(|offsets| {
                offsets
                    .into_keys()
                    .map(|(topic, partition)| OffsetKey {
                        group: group.to_owned(),
                        topic,
                        partition,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(g: &str, t: &str, p: i32) -> OffsetKey {
        OffsetKey {
            group: g.into(),
            topic: t.into(),
            partition: p,
        }
    }

    fn committed(offset: i64) -> Committed {
        Committed {
            offset,
            leader_epoch: 2,
            metadata: "m-ü".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn records_round_trip_in_kafkas_layout() {
        let k = key("grp", "t", 3);
        let bytes = k.encode();
        // version 1, "grp", "t", partition 3
        assert_eq!(
            &bytes[..],
            &[0, 1, 0, 3, b'g', b'r', b'p', 0, 1, b't', 0, 0, 0, 3]
        );
        assert_eq!(OffsetKey::decode(&bytes), Ok(k));
        let v = committed(42);
        let bytes = v.encode();
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(&bytes[2..10], &42i64.to_be_bytes());
        assert_eq!(Committed::decode(&bytes), Ok(v));
    }

    #[test]
    fn broken_records_are_errors_not_panics() {
        let good = key("g", "t", 0).encode();
        for n in 0..good.len() {
            assert!(OffsetKey::decode(&good[..n]).is_err(), "cut at {n}");
        }
        let good = committed(1).encode();
        for n in 0..good.len() {
            assert!(Committed::decode(&good[..n]).is_err(), "cut at {n}");
        }
        assert_eq!(
            OffsetKey::decode(&[0, 2, 0, 1, b'g']),
            Err(OffsetsRecordError::OtherKey(2))
        );
        assert_eq!(
            OffsetKey::decode(&[0, 1, 0xff, 0xff]),
            Err(OffsetsRecordError::NegativeLength)
        );
        assert_eq!(
            OffsetKey::decode(&[0, 1, 0, 1, 0xff, 0, 0]),
            Err(OffsetsRecordError::NotUtf8)
        );
        assert_eq!(
            Committed::decode(&[0, 9]),
            Err(OffsetsRecordError::UnknownValue(9))
        );
    }

    #[test]
    fn replay_keeps_the_last_record_per_key_and_honours_tombstones() {
        let mut r = Replay::default();
        let records: Vec<(Bytes, Option<Bytes>)> = vec![
            (key("a", "t", 0).encode(), Some(committed(5).encode())),
            (key("a", "t", 1).encode(), Some(committed(7).encode())),
            (key("b", "t", 0).encode(), Some(committed(1).encode())),
            (key("a", "t", 0).encode(), Some(committed(9).encode())),
            (key("b", "t", 0).encode(), None),
            // Not ours, or broken: skipped.
            (Bytes::from_static(&[0, 2, 0, 1, b'x']), Some(Bytes::new())),
            (
                key("c", "t", 0).encode(),
                Some(Bytes::from_static(&[0, 3, 1])),
            ),
        ];
        for (at, (k, v)) in records.iter().enumerate() {
            r.record(at as i64, Some(k), v.as_deref(), None);
        }
        r.record(99, None, None, None);
        let mut t = r.table;
        assert_eq!(t.get("a", "t", 0).map(|c| c.offset), Some(9));
        assert_eq!(t.get("a", "t", 1).map(|c| c.offset), Some(7));
        assert_eq!(t.get("b", "t", 0), None);
        assert!(t.group("b").is_none());
        assert!(t.group("c").is_none());
        assert_eq!(t.len(), 2);
        let mut ids: Vec<&str> = t.group_ids().collect();
        ids.sort();
        assert_eq!(ids, ["a"]);
        // A snapshot of the entries replays to the same table.
        let mut again = Replay::default();
        for (k, c) in t.entries() {
            again.record(0, Some(&k.encode()), Some(&c.encode()), Some(0));
        }
        assert_eq!(again.table, t);
        let removed = t.remove_group("a");
        assert_eq!(removed.len(), 2);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn snapshot_records_never_undo_later_commits() {
        let (a, b, c) = (key("g", "t", 0), key("g", "t", 1), key("h", "t", 0));
        let enc = |k: &OffsetKey| k.encode();
        let val = |o: i64| committed(o).encode();
        let mut r = Replay::default();
        // History: a=1 at 0, b=2 at 1, c=3 at 2, c deleted at 3.
        r.record(0, Some(&enc(&a)), Some(&val(1)), None);
        r.record(1, Some(&enc(&b)), Some(&val(2)), None);
        r.record(2, Some(&enc(&c)), Some(&val(3)), None);
        r.record(3, Some(&enc(&c)), None, None);
        // A snapshot as of offset 4 is built; meanwhile a=10 lands at 4.
        r.record(4, Some(&enc(&a)), Some(&val(10)), None);
        // The snapshot (state at 4: a=1, b=2) lands at 5 and 6.
        r.record(5, Some(&enc(&a)), Some(&val(1)), Some(4));
        r.record(6, Some(&enc(&b)), Some(&val(2)), Some(4));
        assert_eq!(r.table.get("g", "t", 0).map(|c| c.offset), Some(10));
        assert_eq!(r.table.get("g", "t", 1).map(|c| c.offset), Some(2));
        assert_eq!(
            r.table.get("h", "t", 0),
            None,
            "a deleted group stays deleted"
        );

        // After offsets below 4 are deleted, replay sees only 4.. and gets
        // the same table.
        let mut after = Replay::default();
        after.record(4, Some(&enc(&a)), Some(&val(10)), None);
        after.record(5, Some(&enc(&a)), Some(&val(1)), Some(4));
        after.record(6, Some(&enc(&b)), Some(&val(2)), Some(4));
        assert_eq!(after.table, r.table);
    }
}

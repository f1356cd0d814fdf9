//! Which partition a record goes to.
//!
//! The golden rule: two records with the same key always go to the same
//! partition, and to the one the Kafka Java client would pick, so Rill and
//! Java producers co-partition: `(murmur2(key) & 0x7fffffff) % partitions`.
//! Keyless records go round-robin record by record (the default), or stick
//! to one partition until its batch is sent (`Sticky`), or wherever a user
//! function says.

use std::fmt;
use std::sync::Arc;

/// The Kafka Java client's `Utils.murmur2` (32-bit MurmurHash2, seed
/// 0x9747b28c, little-endian blocks), as a signed value like Java's.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut blocks = data.chunks_exact(4);
    for block in blocks.by_ref() {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, byte) in tail.iter().enumerate().rev() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client's default partitioner gives `key`.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    (murmur2(key) as u32 & 0x7fff_ffff) % partitions.max(1)
}

/// A user's choice of partition: given the key (if any), the value and the
/// partition count, return a partition in `0..partitions`.
pub type PartitionFn = dyn Fn(Option<&[u8]>, &[u8], u32) -> u32 + Send + Sync;

/// How keyless records (and, for `Custom`, every record) are placed.
#[derive(Clone, Default)]
pub enum Partitioner {
    /// Keyless records cycle over the partitions, one record at a time.
    #[default]
    RoundRobin,
    /// Keyless records fill one partition's batch, then move to the next.
    Sticky,
    /// The function places every record, keyed or not.
    Custom(Arc<PartitionFn>),
}

impl fmt::Debug for Partitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partitioner::RoundRobin => f.write_str("RoundRobin"),
            Partitioner::Sticky => f.write_str("Sticky"),
            Partitioner::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// The partitioner's running state for one topic.
#[derive(Debug, Default)]
pub struct PartitionPicker {
    next: u32,
}

impl PartitionPicker {
    /// Picks a partition for one record. `batch_closed` tells a sticky
    /// picker that the partition it stuck to has just sent its batch.
    pub fn pick(
        &mut self,
        partitioner: &Partitioner,
        key: Option<&[u8]>,
        value: &[u8],
        partitions: u32,
    ) -> u32 {
        let partitions = partitions.max(1);
        match (partitioner, key) {
            (Partitioner::Custom(f), _) => f(key, value, partitions) % partitions,
            (_, Some(key)) => partition_for_key(key, partitions),
            (Partitioner::RoundRobin, None) => {
                let p = self.next % partitions;
                self.next = self.next.wrapping_add(1);
                p
            }
            (Partitioner::Sticky, None) => self.next % partitions,
        }
    }

    /// Sticky placement moves on once its partition's batch is closed.
    pub fn batch_closed(&mut self, partitioner: &Partitioner, partition: u32, partitions: u32) {
        if matches!(partitioner, Partitioner::Sticky) && self.next % partitions.max(1) == partition
        {
            self.next = self.next.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Apache Kafka's UtilsTest.testMurmur2.
        let vectors: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, want) in vectors {
            assert_eq!(murmur2(key), want, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn same_key_same_partition_and_in_range() {
        for partitions in [1u32, 3, 7, 100] {
            for i in 0..500 {
                let key = format!("user-{i}");
                let p = partition_for_key(key.as_bytes(), partitions);
                assert!(p < partitions);
                assert_eq!(p, partition_for_key(key.as_bytes(), partitions));
            }
        }
        // "21" hashes to -973932308: & 0x7fffffff = 1173551340, % 10 = 0.
        assert_eq!(partition_for_key(b"21", 10), 1_173_551_340 % 10);
    }

    #[test]
    fn round_robin_cycles_record_by_record() {
        let mut picker = PartitionPicker::default();
        let got: Vec<u32> = (0..7)
            .map(|_| picker.pick(&Partitioner::RoundRobin, None, b"v", 3))
            .collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2, 0]);
        // Keys ignore the rotation.
        let keyed = picker.pick(&Partitioner::RoundRobin, Some(b"21"), b"v", 10);
        assert_eq!(keyed, partition_for_key(b"21", 10));
    }

    #[test]
    fn sticky_stays_until_its_batch_closes() {
        let mut picker = PartitionPicker::default();
        let s = Partitioner::Sticky;
        let first: Vec<u32> = (0..4).map(|_| picker.pick(&s, None, b"v", 3)).collect();
        assert_eq!(first, vec![0, 0, 0, 0]);
        picker.batch_closed(&s, 2, 3); // another partition's batch: no move
        assert_eq!(picker.pick(&s, None, b"v", 3), 0);
        picker.batch_closed(&s, 0, 3);
        assert_eq!(picker.pick(&s, None, b"v", 3), 1);
    }

    #[test]
    fn custom_function_places_every_record() {
        let f = Partitioner::Custom(Arc::new(|_k: Option<&[u8]>, v: &[u8], n: u32| {
            v.len() as u32 % n
        }));
        let mut picker = PartitionPicker::default();
        assert_eq!(picker.pick(&f, Some(b"21"), b"abcd", 3), 1);
        assert_eq!(picker.pick(&f, None, b"ab", 3), 2);
    }
}

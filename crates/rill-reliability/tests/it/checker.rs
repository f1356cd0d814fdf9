//! A Jepsen-style checker for the suites that kill SPUs while producers
//! write: given what each producer was told (its acknowledgements) and what
//! a consumer read back afterwards, it finds every broken promise.
//!
//! Records follow one convention, whoever wrote them (Rill or librdkafka):
//! the key is `p<producer>-k<n>` and the value `<key>-<sequence>`, where the
//! sequence counts that key's records from 0, zero-padded to 8 digits, so
//! values compare in the order they were sent. `<producer>` is the
//! producer's index in the histories given to [`check`].
//!
//! What it checks:
//!
//! - **offsets**: each (partition, offset) read once, and every partition's
//!   offsets run 0, 1, 2, … with no gap (no retention in these suites);
//! - **no record from nowhere**: every record read names a producer given
//!   and its value belongs to its key;
//! - **keys**: each key stays in one partition;
//! - **order** (every producer): per key, in offset order, a value below the
//!   highest seen so far may only be a second copy of one already read (an
//!   at-least-once retry of a batch whose answer was lost), never a first;
//! - **lost** (producers that promise it, acks all): every acknowledged
//!   record is read at the partition and offset it was acknowledged with,
//!   with its key and value. For the others (acks 1) the acknowledged
//!   records not read there are counted, not judged: `missing` (read
//!   nowhere) and `moved` (read, at another offset);
//! - **duplicates** (idempotent and at-most-once producers): no value read
//!   twice; for the others counted.

use std::collections::{BTreeMap, HashMap, HashSet};

/// One acknowledged record: the producer was told it is stored at
/// `partition`, `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    pub key: String,
    pub value: String,
    pub partition: u32,
    pub offset: i64,
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub partition: u32,
    pub offset: i64,
    pub key: String,
    pub value: String,
}

/// What a producer promises about its acknowledged records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promise {
    /// Every acknowledged record is kept (acks all).
    pub no_loss: bool,
    /// No record is stored twice (idempotent, at-most-once).
    pub no_duplicates: bool,
}

/// One producer's side of the history.
#[derive(Debug, Clone)]
pub struct History<'a> {
    pub name: String,
    pub promise: Promise,
    pub acked: &'a [Acked],
}

/// What the checker found for one producer.
#[derive(Debug, Clone, Default)]
pub struct ProducerOutcome {
    pub name: String,
    pub no_loss: bool,
    pub no_duplicates: bool,
    pub acked: usize,
    /// Records read back that this producer wrote (copies included).
    pub read: usize,
    /// Acknowledged records not read at their acknowledged place, with
    /// what was read there instead (if anything).
    pub lost: Vec<(Acked, Option<Stored>)>,
    /// Of `lost`: read nowhere.
    pub missing: usize,
    /// Of `lost`: read, but at another partition or offset.
    pub moved: usize,
    /// Copies beyond the first, over all its values.
    pub duplicates: usize,
}

/// Everything the checker found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Records read.
    pub read: usize,
    /// Per producer, in the order given.
    pub producers: Vec<ProducerOutcome>,
    /// An offset read twice, or a gap.
    pub offset_errors: Vec<String>,
    /// A record whose key names no producer given, or whose value is not
    /// its key's.
    pub foreign: Vec<String>,
    /// A key read in two partitions.
    pub split_keys: Vec<String>,
    /// A first copy read after a later value of its key.
    pub order_errors: Vec<String>,
}

impl Outcome {
    /// Every broken promise, one line each (empty: the history is fine).
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        v.extend(self.offset_errors.iter().cloned());
        v.extend(self.foreign.iter().cloned());
        v.extend(self.split_keys.iter().cloned());
        v.extend(self.order_errors.iter().cloned());
        for p in &self.producers {
            if p.no_loss && !p.lost.is_empty() {
                v.push(format!(
                    "{}: lost {} acknowledged records ({} read nowhere, {} at another offset), first {:?}",
                    p.name,
                    p.lost.len(),
                    p.missing,
                    p.moved,
                    &p.lost[..p.lost.len().min(3)]
                ));
            }
            if p.no_duplicates && p.duplicates > 0 {
                v.push(format!("{}: {} duplicates stored", p.name, p.duplicates));
            }
        }
        v
    }

    /// Lost acknowledged records over the producers that promise none.
    pub fn lost_promised(&self) -> usize {
        self.producers
            .iter()
            .filter(|p| p.no_loss)
            .map(|p| p.lost.len())
            .sum()
    }

    /// Panics listing every violation, if there is any.
    pub fn assert_ok(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "{} violations:\n{}", v.len(), v.join("\n"));
    }
}

/// The producer index in a key `p<producer>-k<n>`.
fn producer_of(key: &str) -> Option<usize> {
    key.strip_prefix('p')?.split_once("-k")?.0.parse().ok()
}

/// Checks `stored` (what was read back, in any order) against the
/// producers' histories; index `i` of `producers` wrote the keys `p<i>-…`.
pub fn check(stored: &[Stored], producers: &[History<'_>]) -> Outcome {
    const SHOWN: usize = 20;
    let mut out = Outcome {
        read: stored.len(),
        producers: producers
            .iter()
            .map(|h| ProducerOutcome {
                name: h.name.clone(),
                no_loss: h.promise.no_loss,
                no_duplicates: h.promise.no_duplicates,
                acked: h.acked.len(),
                ..ProducerOutcome::default()
            })
            .collect(),
        ..Outcome::default()
    };

    // Offsets: once each, contiguous from 0.
    let mut at: BTreeMap<(u32, i64), &Stored> = BTreeMap::new();
    for r in stored {
        if at.insert((r.partition, r.offset), r).is_some() {
            out.offset_errors.push(format!(
                "partition {} offset {} read twice",
                r.partition, r.offset
            ));
        }
    }
    let mut expected: HashMap<u32, i64> = HashMap::new();
    for &(p, offset) in at.keys() {
        let next = expected.entry(p).or_insert(0);
        if offset != *next {
            out.offset_errors.push(format!(
                "partition {p}: offset {offset} follows {} (gap)",
                *next - 1
            ));
        }
        *next = offset + 1;
    }

    // Records from nowhere, keys in two partitions, copies, and per key the
    // values in offset order.
    let mut copies: HashMap<&str, usize> = HashMap::new();
    let mut per_key: HashMap<&str, (u32, Vec<&Stored>)> = HashMap::new();
    let mut placed: HashMap<&str, Vec<&Stored>> = HashMap::new();
    for r in at.values() {
        let owner = producer_of(&r.key).filter(|&i| i < producers.len());
        let belongs = r
            .value
            .strip_prefix(r.key.as_str())
            .is_some_and(|rest| rest.starts_with('-'));
        let Some(owner) = owner.filter(|_| belongs) else {
            if out.foreign.len() < SHOWN {
                out.foreign.push(format!(
                    "partition {} offset {}: record {}={} from no producer of this run",
                    r.partition, r.offset, r.key, r.value
                ));
            }
            continue;
        };
        out.producers[owner].read += 1;
        let n = copies.entry(r.value.as_str()).or_default();
        *n += 1;
        if *n > 1 {
            out.producers[owner].duplicates += 1;
        }
        placed.entry(r.value.as_str()).or_default().push(r);
        let entry = per_key
            .entry(r.key.as_str())
            .or_insert((r.partition, Vec::new()));
        if entry.0 != r.partition {
            if out.split_keys.len() < SHOWN {
                out.split_keys.push(format!(
                    "key {} in partitions {} and {}",
                    r.key, entry.0, r.partition
                ));
            }
            continue;
        }
        entry.1.push(r);
    }

    // Order per key (records are in offset order within their partition).
    let mut keys: Vec<_> = per_key.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (key, (p, records)) in keys {
        let mut seen = HashSet::new();
        let mut highest = "";
        for (i, r) in records.iter().enumerate() {
            let first_copy = seen.insert(r.value.as_str());
            if first_copy && r.value.as_str() < highest && out.order_errors.len() < SHOWN {
                let around: Vec<String> = records[i.saturating_sub(3)..(i + 3).min(records.len())]
                    .iter()
                    .map(|r| format!("{}:{}", r.offset, r.value))
                    .collect();
                out.order_errors.push(format!(
                    "key {key} (partition {p}): {} at offset {} after {highest}: {around:?}",
                    r.value, r.offset
                ));
            }
            highest = highest.max(r.value.as_str());
        }
    }

    // Acknowledged, then read where acknowledged.
    for (i, h) in producers.iter().enumerate() {
        for a in h.acked {
            let there = at.get(&(a.partition, a.offset));
            if there.is_some_and(|r| r.key == a.key && r.value == a.value) {
                continue;
            }
            let o = &mut out.producers[i];
            if placed.contains_key(a.value.as_str()) {
                o.moved += 1;
            } else {
                o.missing += 1;
            }
            o.lost.push((a.clone(), there.map(|r| (*r).clone())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACKS_ALL_IDEMPOTENT: Promise = Promise {
        no_loss: true,
        no_duplicates: true,
    };
    const ACKS_ALL_AT_LEAST_ONCE: Promise = Promise {
        no_loss: true,
        no_duplicates: false,
    };
    const ACKS_ONE: Promise = Promise {
        no_loss: false,
        no_duplicates: false,
    };

    fn rec(partition: u32, offset: i64, key: &str, seq: u32) -> Stored {
        Stored {
            partition,
            offset,
            key: key.to_string(),
            value: format!("{key}-{seq:08}"),
        }
    }

    fn ack(r: &Stored) -> Acked {
        Acked {
            key: r.key.clone(),
            value: r.value.clone(),
            partition: r.partition,
            offset: r.offset,
        }
    }

    fn history<'a>(name: &str, promise: Promise, acked: &'a [Acked]) -> History<'a> {
        History {
            name: name.to_string(),
            promise,
            acked,
        }
    }

    /// Two producers, two partitions, interleaved: p0's keys k0 → 0 and
    /// k1 → 1, p1's k0 → 1.
    fn clean() -> Vec<Stored> {
        vec![
            rec(0, 0, "p0-k0", 0),
            rec(0, 1, "p0-k0", 1),
            rec(1, 0, "p0-k1", 0),
            rec(1, 1, "p1-k0", 0),
            rec(0, 2, "p0-k0", 2),
            rec(1, 2, "p1-k0", 1),
        ]
    }

    #[test]
    fn a_clean_history_passes() {
        let stored = clean();
        let a0: Vec<Acked> = stored
            .iter()
            .filter(|r| r.key.starts_with("p0"))
            .map(ack)
            .collect();
        let a1: Vec<Acked> = stored
            .iter()
            .filter(|r| r.key.starts_with("p1"))
            .map(ack)
            .collect();
        let out = check(
            &stored,
            &[
                history("a", ACKS_ALL_IDEMPOTENT, &a0),
                history("b", ACKS_ONE, &a1),
            ],
        );
        assert!(out.violations().is_empty(), "{:?}", out.violations());
        assert_eq!(out.read, 6);
        assert_eq!((out.producers[0].acked, out.producers[0].read), (4, 4));
        assert_eq!((out.producers[1].acked, out.producers[1].read), (2, 2));
        assert_eq!(out.lost_promised(), 0);
        out.assert_ok();
    }

    #[test]
    fn an_acknowledged_record_read_nowhere_is_lost() {
        let mut stored = clean();
        let acked: Vec<Acked> = stored
            .iter()
            .filter(|r| r.key.starts_with("p0"))
            .map(ack)
            .collect();
        // The last record of partition 0 is gone.
        stored.retain(|r| (r.partition, r.offset) != (0, 2));
        let out = check(
            &stored,
            &[
                history("a", ACKS_ALL_IDEMPOTENT, &acked),
                history("b", ACKS_ONE, &[]),
            ],
        );
        assert_eq!(out.producers[0].lost.len(), 1);
        assert_eq!(out.producers[0].missing, 1);
        assert_eq!(out.producers[0].lost[0].1, None);
        assert_eq!(out.lost_promised(), 1);
        assert_eq!(out.violations().len(), 1, "{:?}", out.violations());
        assert!(out.violations()[0].contains("lost 1"));
    }

    #[test]
    fn another_record_at_the_acknowledged_offset_is_a_loss() {
        // Acknowledged at 0/2, but after a failover 0/2 holds another
        // record (a divergent tail that was kept, or offsets reused).
        let mut stored = clean();
        let acked = vec![ack(&stored[4])];
        stored[4].value = "p0-k0-00000003".to_string();
        let out = check(
            &stored,
            &[
                history("a", ACKS_ALL_AT_LEAST_ONCE, &acked),
                history("b", ACKS_ONE, &[]),
            ],
        );
        assert_eq!(out.producers[0].lost.len(), 1);
        assert_eq!(out.producers[0].missing, 1);
        assert_eq!(out.producers[0].lost[0].1.as_ref(), Some(&stored[4]));
        assert!(!out.violations().is_empty());
    }

    #[test]
    fn a_record_read_at_another_offset_than_acknowledged_is_moved() {
        let stored = clean();
        let mut a = ack(&stored[1]);
        a.offset = 7;
        let out = check(
            &stored,
            &[
                history("a", ACKS_ALL_IDEMPOTENT, &[a]),
                history("b", ACKS_ONE, &[]),
            ],
        );
        assert_eq!((out.producers[0].missing, out.producers[0].moved), (0, 1));
        assert_eq!(out.lost_promised(), 1);
    }

    #[test]
    fn acks_one_losses_are_counted_not_judged() {
        let mut stored = clean();
        let acked: Vec<Acked> = stored
            .iter()
            .filter(|r| r.key.starts_with("p1"))
            .map(ack)
            .collect();
        stored.retain(|r| (r.partition, r.offset) != (1, 2));
        let out = check(
            &stored,
            &[
                history("a", ACKS_ALL_IDEMPOTENT, &[]),
                history("b", ACKS_ONE, &acked),
            ],
        );
        assert_eq!(out.producers[1].missing, 1);
        assert_eq!(out.lost_promised(), 0);
        assert!(out.violations().is_empty(), "{:?}", out.violations());
    }

    #[test]
    fn duplicates_fail_idempotent_producers_only() {
        let mut stored = clean();
        // A second copy of p0-k0-1 and of p1-k0-1 at the ends.
        stored.push(rec(0, 3, "p0-k0", 1));
        stored.push(rec(1, 3, "p1-k0", 1));
        let idempotent = check(
            &stored,
            &[
                history("a", ACKS_ALL_IDEMPOTENT, &[]),
                history("b", ACKS_ONE, &[]),
            ],
        );
        assert_eq!(idempotent.producers[0].duplicates, 1);
        assert_eq!(idempotent.producers[1].duplicates, 1);
        assert_eq!(
            idempotent.violations().len(),
            1,
            "{:?}",
            idempotent.violations()
        );
        assert!(idempotent.violations()[0].contains("a: 1 duplicates"));
        // A second copy out of order is a retry, not an order error.
        assert!(idempotent.order_errors.is_empty());
        let at_least_once = check(
            &stored,
            &[
                history("a", ACKS_ALL_AT_LEAST_ONCE, &[]),
                history("b", ACKS_ONE, &[]),
            ],
        );
        assert!(at_least_once.violations().is_empty());
    }

    #[test]
    fn a_first_copy_after_a_later_value_is_out_of_order() {
        let mut stored = clean();
        // p0-k0: 0, 2, 1 in offset order.
        stored[1].value = "p0-k0-00000002".to_string();
        stored[4].value = "p0-k0-00000001".to_string();
        let out = check(
            &stored,
            &[history("a", ACKS_ONE, &[]), history("b", ACKS_ONE, &[])],
        );
        assert_eq!(out.order_errors.len(), 1, "{:?}", out.order_errors);
        assert!(out.order_errors[0].contains("p0-k0-00000001 at offset 2"));
    }

    #[test]
    fn gaps_and_offsets_read_twice_are_errors() {
        let mut stored = clean();
        stored.retain(|r| (r.partition, r.offset) != (1, 1));
        stored.push(rec(0, 2, "p0-k0", 2));
        let out = check(
            &stored,
            &[history("a", ACKS_ONE, &[]), history("b", ACKS_ONE, &[])],
        );
        assert_eq!(out.offset_errors.len(), 2, "{:?}", out.offset_errors);
        assert!(out.offset_errors.iter().any(|e| e.contains("read twice")));
        assert!(out
            .offset_errors
            .iter()
            .any(|e| e.contains("partition 1: offset 2 follows 0")));
        // A partition that starts past 0 has a gap too.
        let out = check(&[rec(0, 1, "p0-k0", 0)], &[history("a", ACKS_ONE, &[])]);
        assert_eq!(out.offset_errors.len(), 1);
    }

    #[test]
    fn a_key_in_two_partitions_and_records_from_nowhere_are_errors() {
        let mut stored = clean();
        stored.push(rec(1, 3, "p0-k0", 3));
        stored.push(rec(0, 3, "p9-k0", 0));
        stored.push(Stored {
            partition: 0,
            offset: 4,
            key: "p0-k0".into(),
            value: "p0-k1-00000009".into(),
        });
        let out = check(
            &stored,
            &[history("a", ACKS_ONE, &[]), history("b", ACKS_ONE, &[])],
        );
        assert_eq!(out.split_keys.len(), 1, "{:?}", out.split_keys);
        assert_eq!(out.foreign.len(), 2, "{:?}", out.foreign);
        assert_eq!(out.violations().len(), 3);
    }

    #[test]
    fn producer_numbers_come_from_keys() {
        assert_eq!(producer_of("p0-k3"), Some(0));
        assert_eq!(producer_of("p12-k0"), Some(12));
        assert_eq!(producer_of("x0-k3"), None);
        assert_eq!(producer_of("p-k3"), None);
        assert_eq!(producer_of("p1"), None);
    }
}

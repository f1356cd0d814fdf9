//! Kafka's consumer protocol, the bytes group members exchange through the
//! coordinator (which never reads them): a member's subscription (in its
//! JoinGroup), each member's assignment (in the leader's SyncGroup), and
//! the range assignor that computes assignments. Pure functions, no I/O.
//!
//! Layouts (version 0, which every Kafka client reads):
//! - subscription: `i16 version, [topic: string], user_data: bytes`
//! - assignment: `i16 version, [topic: string, [partition: i32]], user_data: bytes`
//!
//! Arrays and bytes have an `i32` length (-1 = null), strings an `i16` one.

use std::collections::BTreeMap;

/// The assignor Rill's members offer: Kafka's `range`, which every Kafka
/// consumer also knows, so Rill and Kafka consumers can share a group.
pub const RANGE: &str = "range";

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Topic names are at most 249 bytes (checked on create), far within i16.
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&i32::try_from(n).unwrap_or(i32::MAX).to_be_bytes());
}

/// A subscription to `topics`, version 0, no user data.
pub fn encode_subscription(topics: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + topics.iter().map(|t| t.len() + 2).sum::<usize>());
    out.extend_from_slice(&0i16.to_be_bytes());
    put_len(&mut out, topics.len());
    for t in topics {
        put_str(&mut out, t);
    }
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out
}

/// An assignment of `partitions` by topic, version 0, no user data.
pub fn encode_assignment(partitions: &BTreeMap<String, Vec<i32>>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    put_len(&mut out, partitions.len());
    for (topic, ps) in partitions {
        put_str(&mut out, topic);
        put_len(&mut out, ps.len());
        for p in ps {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out
}

/// Reads big-endian fields from a byte slice; every read is checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(b)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        Some(std::str::from_utf8(self.take(len)?).ok()?.to_owned())
    }
    /// An array's length; each element takes at least `min_size` bytes, so
    /// a forged length cannot make the caller loop past the data.
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = usize::try_from(self.i32()?).unwrap_or(0);
        (n.saturating_mul(min_size) <= self.bytes.len() - self.at).then_some(n)
    }
}

/// The topics of a member's subscription; `None` if it is not one.
pub fn decode_subscription(bytes: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader { bytes, at: 0 };
    let _version = r.i16()?;
    let n = r.count(2)?;
    (0..n).map(|_| r.string()).collect()
}

/// Kafka's consumer protocol assignment as partitions by topic; `None` if
/// it is not one.
pub fn decode_assignment(bytes: &[u8]) -> Option<BTreeMap<String, Vec<i32>>> {
    let mut r = Reader { bytes, at: 0 };
    let _version = r.i16()?;
    let topics = r.count(6)?;
    let mut out = BTreeMap::new();
    for _ in 0..topics {
        let name = r.string()?;
        let n = r.count(4)?;
        let parts = (0..n).map(|_| r.i32()).collect::<Option<Vec<i32>>>()?;
        out.insert(name, parts);
    }
    Some(out)
}

/// Kafka's range assignor: for each topic, its subscribers sorted by member
/// id; partitions split into contiguous ranges, the first `count % members`
/// members taking one more. `subscriptions` is member id → topics;
/// `partitions` is topic → partition count (a topic missing there gets no
/// assignment). Every member appears in the result, possibly with nothing.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, u32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partitions {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let per = count as usize / members.len();
        let extra = count as usize % members.len();
        let mut next = 0usize;
        for (i, m) in members.into_iter().enumerate() {
            let take = per + usize::from(i < extra);
            if take == 0 {
                continue;
            }
            let range: Vec<i32> = (next..next + take).map(|p| p as i32).collect();
            next += take;
            if let Some(slot) = out.get_mut(m) {
                slot.insert(topic.clone(), range);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_protocol_assignments_decode() {
        // version 0, 1 topic "t" with partitions 0 and 2, no user data.
        let bytes = [
            0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff,
            0xff,
        ];
        let a = decode_assignment(&bytes).unwrap();
        assert_eq!(a.get("t"), Some(&vec![0, 2]));
        for n in 0..13 {
            assert_eq!(decode_assignment(&bytes[..n]), None, "cut at {n}");
        }
    }

    #[test]
    fn subscriptions_and_assignments_round_trip() {
        let topics = vec!["events".to_owned(), "b".to_owned()];
        assert_eq!(
            decode_subscription(&encode_subscription(&topics)),
            Some(topics)
        );
        let mut a = BTreeMap::new();
        a.insert("events".to_owned(), vec![0, 1, 5]);
        a.insert("x".to_owned(), vec![]);
        assert_eq!(decode_assignment(&encode_assignment(&a)), Some(a));
    }

    #[test]
    fn forged_lengths_are_refused_not_followed() {
        // version 0, then a topic count of 2^31-1 with no data behind it.
        let bytes = [0, 0, 0x7f, 0xff, 0xff, 0xff];
        assert_eq!(decode_subscription(&bytes), None);
        assert_eq!(decode_assignment(&bytes), None);
        // A negative string length.
        let bytes = [0, 0, 0, 0, 0, 1, 0xff, 0xff];
        assert_eq!(decode_subscription(&bytes), None);
    }

    fn subs(members: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        members
            .iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    #[test]
    fn range_gives_contiguous_ranges_the_first_members_one_more() {
        let s = subs(&[("b", &["t"]), ("a", &["t"]), ("c", &["t"])]);
        let counts = BTreeMap::from([("t".to_owned(), 7u32)]);
        let a = range_assign(&s, &counts);
        assert_eq!(a["a"]["t"], vec![0, 1, 2]);
        assert_eq!(a["b"]["t"], vec![3, 4]);
        assert_eq!(a["c"]["t"], vec![5, 6]);
    }

    #[test]
    fn range_covers_every_partition_once_and_only_subscribers() {
        for members in 1..6usize {
            for count in 0..13u32 {
                let mut s = BTreeMap::new();
                for m in 0..members {
                    let topics = if m % 2 == 0 {
                        vec!["t".to_owned(), "u".to_owned()]
                    } else {
                        vec!["t".to_owned()]
                    };
                    s.insert(format!("m{m}"), topics);
                }
                let counts = BTreeMap::from([("t".to_owned(), count), ("u".to_owned(), count)]);
                let a = range_assign(&s, &counts);
                assert_eq!(a.len(), members, "every member listed");
                for topic in ["t", "u"] {
                    let mut seen: Vec<i32> = a
                        .iter()
                        .filter_map(|(m, ts)| {
                            let p = ts.get(topic)?;
                            assert!(s[m].iter().any(|t| t == topic), "{m} not subscribed");
                            Some(p.clone())
                        })
                        .flatten()
                        .collect();
                    seen.sort_unstable();
                    assert_eq!(seen, (0..count as i32).collect::<Vec<_>>());
                }
            }
        }
    }
}

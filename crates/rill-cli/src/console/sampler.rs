//! The console's own sampler: every [`SAMPLE_INTERVAL`] it asks the cluster
//! (through the Kafka protocol) for each topic's log end offsets (the
//! records produced so far) and the offsets its consumer groups committed
//! (the records consumed), and keeps the last [`WINDOW`] of samples per
//! topic in a ring. Rates are differences between samples.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// Time between two samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(3);
/// How far back the charts reach.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Samples kept per topic: one [`WINDOW`] of them.
pub const MAX_SAMPLES_PER_TOPIC: usize =
    (WINDOW.as_secs() / SAMPLE_INTERVAL.as_secs()) as usize + 1;
/// Topics sampled at most (the first ones by name); others have no charts.
pub const MAX_SAMPLED_TOPICS: usize = 256;

/// One sample of a topic: when, and the totals then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// Sum of the partitions' log end offsets.
    pub produced: i64,
    /// Sum over groups and partitions of committed offsets.
    pub consumed: i64,
}

/// A rate between two samples, per second, stamped with the later one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub at_ms: i64,
    pub produced_per_sec: f64,
    pub consumed_per_sec: f64,
}

/// The rings of samples, by topic. Time is passed in.
#[derive(Debug, Default)]
pub struct Samples {
    topics: HashMap<String, VecDeque<Sample>>,
}

impl Samples {
    /// Adds a sample for each topic of `totals` (topics not listed any more
    /// are dropped), keeping at most [`MAX_SAMPLES_PER_TOPIC`] each.
    pub fn record(&mut self, at_ms: i64, totals: &BTreeMap<String, (i64, i64)>) {
        self.topics.retain(|t, _| totals.contains_key(t));
        for (topic, &(produced, consumed)) in totals.iter().take(MAX_SAMPLED_TOPICS) {
            let ring = self.topics.entry(topic.clone()).or_default();
            if ring.len() == MAX_SAMPLES_PER_TOPIC {
                ring.pop_front();
            }
            ring.push_back(Sample {
                at_ms,
                produced,
                consumed,
            });
        }
    }

    /// Rates between consecutive samples of `topic` (none before two
    /// samples). A total that went down (a topic recreated, offsets reset)
    /// counts as 0.
    pub fn rates(&self, topic: &str) -> Vec<Rate> {
        let Some(ring) = self.topics.get(topic) else {
            return Vec::new();
        };
        ring.iter()
            .zip(ring.iter().skip(1))
            .filter(|(a, b)| b.at_ms > a.at_ms)
            .map(|(a, b)| {
                let secs = (b.at_ms - a.at_ms) as f64 / 1000.0;
                Rate {
                    at_ms: b.at_ms,
                    produced_per_sec: (b.produced - a.produced).max(0) as f64 / secs,
                    consumed_per_sec: (b.consumed - a.consumed).max(0) as f64 / secs,
                }
            })
            .collect()
    }
}

/// The samples shared by the sampler task and the HTTP handlers.
#[derive(Debug, Default)]
pub struct Shared(pub Mutex<Samples>);

impl Shared {
    pub fn record(&self, at_ms: i64, totals: &BTreeMap<String, (i64, i64)>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(at_ms, totals);
    }

    pub fn rates(&self, topic: &str) -> Vec<Rate> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rates(topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(entries: &[(&str, i64, i64)]) -> BTreeMap<String, (i64, i64)> {
        entries
            .iter()
            .map(|(t, p, c)| ((*t).to_owned(), (*p, *c)))
            .collect()
    }

    #[test]
    fn rates_are_differences_per_second_and_the_ring_is_bounded() {
        let mut s = Samples::default();
        assert!(s.rates("t").is_empty());
        s.record(0, &totals(&[("t", 0, 0)]));
        s.record(2000, &totals(&[("t", 100, 10)]));
        s.record(4000, &totals(&[("t", 50, 10)]));
        let r = s.rates("t");
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].at_ms, r[0].produced_per_sec, r[0].consumed_per_sec),
            (2000, 50.0, 5.0)
        );
        assert_eq!(
            r[1].produced_per_sec, 0.0,
            "a total going down is no negative rate"
        );
        for i in 0..(MAX_SAMPLES_PER_TOPIC as i64 * 2) {
            s.record(10_000 + i * 3000, &totals(&[("t", i, 0)]));
        }
        assert_eq!(s.rates("t").len(), MAX_SAMPLES_PER_TOPIC - 1);
        s.record(1_000_000_000, &totals(&[("u", 0, 0)]));
        assert!(
            s.rates("t").is_empty(),
            "a deleted topic's samples are dropped"
        );
    }
}

//! Where a new topic's partitions go: each partition's replicas on
//! distinct SPUs, the first of them its preferred leader, leaders spread
//! evenly over the live SPUs (their counts differ by at most one), and
//! each topic starting at a different SPU so small topics do not all lead
//! on the same one. Pure: the controller calls it with the SPUs it sees.

/// Why a topic cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    /// More copies asked for than there are live SPUs (Kafka's
    /// `INVALID_REPLICATION_FACTOR`).
    #[error("replication factor {replication} exceeds the {live} live SPUs")]
    TooFewSpus { replication: usize, live: usize },
    /// Zero partitions or zero copies.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

/// The replicas of each partition, leader first. `spus` are the live SPU
/// ids (any order); `start` picks where the round begins (the controller
/// passes a number that differs per topic).
pub fn place(
    spus: &[u32],
    partitions: u32,
    replication: usize,
    start: usize,
) -> Result<Vec<Vec<u32>>, PlacementError> {
    if partitions == 0 {
        return Err(PlacementError::Zero("partitions"));
    }
    if replication == 0 {
        return Err(PlacementError::Zero("replication factor"));
    }
    let mut spus = spus.to_vec();
    spus.sort_unstable();
    spus.dedup();
    let n = spus.len();
    if replication > n {
        return Err(PlacementError::TooFewSpus {
            replication,
            live: n,
        });
    }
    Ok((0..partitions as usize)
        .map(|p| {
            let first = start + p;
            // Followers shift by one more each full round, so the copies
            // of one SPU's partitions do not all land on its neighbour;
            // they stay within the n - 1 SPUs after the leader, so never
            // on it and never twice (Kafka's rack-unaware scheme).
            let others = (n - 1).max(1);
            let shift = (p / n) % others;
            (0..replication)
                .map(|r| {
                    let at = if r == 0 {
                        first
                    } else {
                        first + 1 + (shift + r - 1) % others
                    };
                    spus[at % n]
                })
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn leaders_spread_evenly_and_copies_never_share_an_spu() {
        for n in 1..=6u32 {
            let spus: Vec<u32> = (0..n).map(|i| i * 10).collect();
            for replication in 1..=n as usize {
                for partitions in 1..=13 {
                    for start in 0..4 {
                        let placed = place(&spus, partitions, replication, start).unwrap();
                        assert_eq!(placed.len(), partitions as usize);
                        let mut leaders: BTreeMap<u32, usize> = BTreeMap::new();
                        for replicas in &placed {
                            assert_eq!(replicas.len(), replication);
                            let distinct: BTreeSet<_> = replicas.iter().collect();
                            assert_eq!(distinct.len(), replication, "{replicas:?}");
                            *leaders.entry(replicas[0]).or_default() += 1;
                        }
                        let most = leaders.values().max().unwrap();
                        let least = if leaders.len() < n.min(partitions) as usize {
                            0
                        } else {
                            *leaders.values().min().unwrap()
                        };
                        assert!(
                            most - least <= 1,
                            "{n} SPUs, {partitions} partitions: {leaders:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn six_partitions_on_three_spus_lead_two_each() {
        let placed = place(&[3, 1, 2], 6, 1, 0).unwrap();
        let leaders: Vec<u32> = placed.iter().map(|r| r[0]).collect();
        assert_eq!(leaders, [1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn more_copies_than_spus_is_refused() {
        assert_eq!(
            place(&[1, 2], 3, 3, 0),
            Err(PlacementError::TooFewSpus {
                replication: 3,
                live: 2
            })
        );
        assert!(place(&[1], 0, 1, 0).is_err());
        assert!(place(&[1], 1, 0, 0).is_err());
    }
}

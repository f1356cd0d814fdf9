//! What the store holds about topics and partitions, and its encoding: a
//! few `name value` lines under a format line, readable with `etcdctl get`
//! and strict on the way in (an unknown format or a damaged field is an
//! error, never a guess).

use crate::store::StoreError;

const TOPIC_FORMAT: &str = "rill-topic 1";
const PARTITION_FORMAT: &str = "rill-partition 1";
/// No leader (Kafka's -1): the partition is unavailable.
pub const NO_LEADER: i32 = -1;

/// A topic as created: its partition count, copies and Kafka configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic's id (Kafka's topic UUID, as a number), given once at
    /// creation so a topic re-created under the same name is a new topic.
    pub id: u128,
    pub partitions: u32,
    pub replication: u16,
    /// Kafka config names and values (`retention.ms`, ...), sorted.
    pub configs: Vec<(String, String)>,
    /// Replicas chosen by whoever created the topic (CreateTopics'
    /// assignments), by partition, preferred leader first; empty when the
    /// controller places them. Partitions added later beyond it are placed
    /// by the controller.
    pub assignment: Vec<Vec<u32>>,
}

impl TopicSpec {
    /// A config's value, if set.
    pub fn config(&self, name: &str) -> Option<&str> {
        self.configs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a replica outside the ISR may become leader (losing what
    /// only the ISR had); Kafka's `unclean.leader.election.enable`, off by
    /// default.
    pub fn unclean_election(&self) -> bool {
        self.config("unclean.leader.election.enable") == Some("true")
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "{TOPIC_FORMAT}\nid {:032x}\npartitions {}\nreplication {}\n",
            self.id, self.partitions, self.replication
        );
        for (k, v) in &self.configs {
            out.push_str(&format!("config {k}={v}\n"));
        }
        // Only written when given, so topics placed by the controller keep
        // the encoding older SPUs read.
        for (p, replicas) in self.assignment.iter().enumerate() {
            let ids: Vec<String> = replicas.iter().map(u32::to_string).collect();
            out.push_str(&format!("assign {p}={}\n", ids.join(",")));
        }
        out.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let lines = lines(bytes, TOPIC_FORMAT)?;
        let mut spec = TopicSpec {
            id: 0,
            partitions: 0,
            replication: 0,
            configs: Vec::new(),
            assignment: Vec::new(),
        };
        for (name, value) in lines {
            match name {
                "id" => {
                    spec.id = u128::from_str_radix(value, 16)
                        .map_err(|_| corrupt(format!("topic id {value:?}")))?
                }
                "partitions" => spec.partitions = number(name, value)?,
                "replication" => spec.replication = number(name, value)?,
                "config" => {
                    let (k, v) = value
                        .split_once('=')
                        .ok_or_else(|| corrupt(format!("config line {value:?}")))?;
                    spec.configs.push((k.to_owned(), v.to_owned()));
                }
                "assign" => {
                    let (p, ids) = value
                        .split_once('=')
                        .ok_or_else(|| corrupt(format!("assign line {value:?}")))?;
                    // Written in partition order, so each line's number is
                    // the count before it.
                    if number::<usize>(name, p)? != spec.assignment.len() {
                        return Err(corrupt(format!("assign line {value:?} out of order")));
                    }
                    let replicas = ids
                        .split(',')
                        .map(|id| number(name, id))
                        .collect::<Result<Vec<u32>, _>>()?;
                    spec.assignment.push(replicas);
                }
                other => return Err(corrupt(format!("unknown topic field {other:?}"))),
            }
        }
        if spec.partitions == 0 || spec.replication == 0 {
            return Err(corrupt("topic without partitions or replication".into()));
        }
        spec.configs.sort();
        Ok(spec)
    }
}

/// A partition's state, written by the controller (leader changes) and,
/// with replication, by its leader (ISR changes), always with CAS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Every copy's SPU, preferred leader first.
    pub replicas: Vec<u32>,
    /// The leader's SPU id, or [`NO_LEADER`].
    pub leader: i32,
    /// Bumped at every leader change; requests from older epochs are fenced.
    pub leader_epoch: i32,
    /// The in-sync replicas.
    pub isr: Vec<u32>,
    /// Bumped at every change of this state.
    pub partition_epoch: i32,
}

impl PartitionState {
    /// A new partition led by its first replica, every replica in sync.
    pub fn new(replicas: Vec<u32>) -> Self {
        Self {
            leader: replicas.first().map_or(NO_LEADER, |l| *l as i32),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    /// The leader, if any.
    pub fn leader(&self) -> Option<u32> {
        u32::try_from(self.leader).ok()
    }

    pub fn encode(&self) -> Vec<u8> {
        let ids = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        format!(
            "{PARTITION_FORMAT}\nreplicas {}\nleader {}\nleader_epoch {}\nisr {}\npartition_epoch {}\n",
            ids(&self.replicas),
            self.leader,
            self.leader_epoch,
            ids(&self.isr),
            self.partition_epoch
        )
        .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let ids = |name: &str, v: &str| -> Result<Vec<u32>, StoreError> {
            if v.is_empty() {
                return Ok(Vec::new());
            }
            v.split(',').map(|id| number(name, id)).collect()
        };
        let mut state = PartitionState::new(Vec::new());
        let mut seen = 0;
        for (name, value) in lines(bytes, PARTITION_FORMAT)? {
            seen += 1;
            match name {
                "replicas" => state.replicas = ids(name, value)?,
                "leader" => state.leader = number(name, value)?,
                "leader_epoch" => state.leader_epoch = number(name, value)?,
                "isr" => state.isr = ids(name, value)?,
                "partition_epoch" => state.partition_epoch = number(name, value)?,
                other => return Err(corrupt(format!("unknown partition field {other:?}"))),
            }
        }
        if seen != 5 || state.replicas.is_empty() {
            return Err(corrupt("partition state incomplete".into()));
        }
        Ok(state)
    }
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(what)
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, StoreError> {
    value
        .parse()
        .map_err(|_| corrupt(format!("{name} {value:?} is not a number")))
}

/// The `name value` lines after the format line.
fn lines<'a>(bytes: &'a [u8], format: &str) -> Result<Vec<(&'a str, &'a str)>, StoreError> {
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt("not UTF-8".into()))?;
    let mut lines = text.lines();
    if lines.next() != Some(format) {
        return Err(corrupt(format!("expected {format:?}")));
    }
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split_once(' ')
                .ok_or_else(|| corrupt(format!("line {l:?}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_partitions_round_trip_and_damage_is_an_error() {
        let topic = TopicSpec {
            id: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            partitions: 6,
            replication: 3,
            configs: vec![
                ("retention.ms".into(), "1000".into()),
                ("unclean.leader.election.enable".into(), "true".into()),
            ],
            assignment: vec![],
        };
        assert_eq!(TopicSpec::decode(&topic.encode()).unwrap(), topic);
        assert!(topic.unclean_election());
        let assigned = TopicSpec {
            partitions: 2,
            assignment: vec![vec![2, 0, 1], vec![1, 2, 0]],
            ..topic.clone()
        };
        assert_eq!(TopicSpec::decode(&assigned.encode()).unwrap(), assigned);
        assert!(TopicSpec::decode(
            b"rill-topic 1\nid 1\npartitions 2\nreplication 1\nassign 1=0\n"
        )
        .is_err());
        let state = PartitionState {
            replicas: vec![2, 0, 1],
            leader: 0,
            leader_epoch: 4,
            isr: vec![0, 1],
            partition_epoch: 9,
        };
        assert_eq!(PartitionState::decode(&state.encode()).unwrap(), state);
        let leaderless = PartitionState {
            leader: NO_LEADER,
            isr: vec![],
            ..state.clone()
        };
        assert_eq!(
            PartitionState::decode(&leaderless.encode()).unwrap(),
            leaderless
        );
        assert!(PartitionState::decode(b"rill-partition 2\n").is_err());
        assert!(PartitionState::decode(b"rill-partition 1\nreplicas 1\n").is_err());
        assert!(TopicSpec::decode(b"rill-topic 1\npartitions x\nreplication 1\n").is_err());
        assert!(TopicSpec::decode(&[0xff, 0xfe]).is_err());
    }
}

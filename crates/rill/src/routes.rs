//! What the client knows of the cluster's layout, from Metadata answers:
//! the SPUs (live now, and every one ever named), each partition's leader,
//! replicas and ISR, and from that where a request for a partition goes.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::MetadataResponse;

/// Most SPUs remembered from earlier answers (a bound on the list of
/// fallbacks for Metadata when the bootstrap SPU is away).
const MAX_KNOWN_SPUS: usize = 1024;

/// Where requests for a partition go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Route {
    /// The SPU the client was pointed at: the only SPU there is, or the
    /// leader is not known yet (its answer will say if it is wrong).
    Bootstrap,
    /// The leader's advertised address.
    Leader(String),
    /// The partition has no leader now (`LEADER_NOT_AVAILABLE`).
    NoLeader,
}

/// One partition as a Metadata answer described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// The partition's index.
    pub partition: u32,
    /// The SPU that leads it, `None` while it has none
    /// (`LEADER_NOT_AVAILABLE`: its SPU is down).
    pub leader: Option<i32>,
    /// The leader's epoch (-1 if the SPU does not say).
    pub leader_epoch: i32,
    /// The SPUs that hold a copy, the leader first.
    pub replicas: Vec<i32>,
    /// The replicas in sync with the leader.
    pub isr: Vec<i32>,
}

/// What the last Metadata answers said about SPUs and leaders.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Node id → advertised `host:port`, as the last answer listed them
    /// (the live SPUs).
    brokers: BTreeMap<i32, String>,
    /// Every SPU any answer named, live or not: where Metadata may be
    /// asked when the bootstrap SPU is away.
    known: BTreeMap<i32, String>,
    /// An answer once listed more than one SPU: leaders are followed from
    /// then on, even while fewer are alive.
    cluster: bool,
    /// Topic → the leader's node id per partition (-1: none).
    leaders: HashMap<String, Vec<i32>>,
}

impl Routes {
    /// The route to `topic`'s `partition`. With one SPU (or none known)
    /// everything goes to the address the client was given, as it was
    /// reached: an SPU's advertised address may not be reachable from
    /// here (a proxy, a container), while the given one is.
    pub(crate) fn route(&self, topic: &str, partition: u32) -> Route {
        if !self.cluster {
            return Route::Bootstrap;
        }
        match self
            .leaders
            .get(topic)
            .and_then(|l| l.get(partition as usize))
        {
            Some(-1) => Route::NoLeader,
            Some(id) => self
                .brokers
                .get(id)
                .or_else(|| self.known.get(id))
                .map_or(Route::Bootstrap, |addr| Route::Leader(addr.clone())),
            None => Route::Bootstrap,
        }
    }

    /// The advertised address of SPU `id` if the last answer listed it
    /// (it is alive).
    pub(crate) fn live_addr(&self, id: i32) -> Option<String> {
        self.brokers.get(&id).cloned()
    }

    /// Whether the client follows leaders (an answer listed several SPUs).
    pub(crate) fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// Every SPU address ever named, live ones first, for requests any SPU
    /// can answer. Empty unless this is a cluster.
    pub(crate) fn known_addrs(&self) -> Vec<String> {
        if !self.cluster {
            return Vec::new();
        }
        let live = self.brokers.values();
        let away = self
            .known
            .iter()
            .filter(|(id, _)| !self.brokers.contains_key(id))
            .map(|(_, a)| a);
        live.chain(away).cloned().collect()
    }

    /// Takes in a Metadata answer: the SPUs it lists, and `topic`'s
    /// partitions when it describes that topic without error.
    pub(crate) fn learn(&mut self, resp: &MetadataResponse) {
        self.brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect();
        if self.brokers.len() > 1 {
            self.cluster = true;
        }
        for (id, addr) in &self.brokers {
            if self.known.len() < MAX_KNOWN_SPUS || self.known.contains_key(id) {
                self.known.insert(*id, addr.clone());
            }
        }
    }

    /// Records `topic`'s leaders from its described partitions.
    pub(crate) fn set_leaders(&mut self, topic: &str, partitions: &[PartitionDescription]) {
        let leaders = partitions.iter().map(|p| p.leader.unwrap_or(-1)).collect();
        self.leaders.insert(topic.to_owned(), leaders);
    }
}

/// The partitions of a topic's Metadata entry, by index; a partition
/// answered with an error (no leader) has `leader: None`.
pub(crate) fn describe_partitions(
    t: &kafka_protocol::messages::metadata_response::MetadataResponseTopic,
) -> Vec<PartitionDescription> {
    let mut out: Vec<PartitionDescription> = (0..t.partitions.len() as u32)
        .map(|partition| PartitionDescription {
            partition,
            leader: None,
            leader_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
        })
        .collect();
    for p in &t.partitions {
        let Some(slot) = usize::try_from(p.partition_index)
            .ok()
            .and_then(|i| out.get_mut(i))
        else {
            continue;
        };
        slot.leader = (p.error_code == 0 && p.leader_id.0 >= 0).then_some(p.leader_id.0);
        slot.leader_epoch = p.leader_epoch;
        slot.replicas = p.replica_nodes.iter().map(|b| b.0).collect();
        slot.isr = p.isr_nodes.iter().map(|b| b.0).collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(brokers: &[(i32, &str)]) -> MetadataResponse {
        use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
        use kafka_protocol::messages::BrokerId;
        use kafka_protocol::protocol::StrBytes;
        MetadataResponse::default().with_brokers(
            brokers
                .iter()
                .map(|(id, addr)| {
                    let (host, port) = addr.split_once(':').unwrap();
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(*id))
                        .with_host(StrBytes::from_string(host.to_owned()))
                        .with_port(port.parse().unwrap())
                })
                .collect(),
        )
    }

    fn led_by(leaders: &[i32]) -> Vec<PartitionDescription> {
        leaders
            .iter()
            .enumerate()
            .map(|(i, l)| PartitionDescription {
                partition: i as u32,
                leader: (*l >= 0).then_some(*l),
                leader_epoch: 0,
                replicas: vec![*l],
                isr: vec![*l],
            })
            .collect()
    }

    #[test]
    fn one_spu_means_the_given_address_many_mean_the_leader() {
        let mut r = Routes::default();
        assert_eq!(r.route("t", 0), Route::Bootstrap, "nothing known yet");
        r.learn(&answer(&[(0, "10.0.0.1:9092")]));
        r.set_leaders("t", &led_by(&[0, -1]));
        assert_eq!(
            r.route("t", 0),
            Route::Bootstrap,
            "one SPU: as it was reached"
        );
        assert!(r.known_addrs().is_empty(), "no fallbacks with one SPU");
        r.learn(&answer(&[(0, "10.0.0.1:9092"), (1, "127.0.0.1:9093")]));
        r.set_leaders("t", &led_by(&[1, -1, 0]));
        assert_eq!(r.route("t", 0), Route::Leader("127.0.0.1:9093".into()));
        assert_eq!(r.route("t", 1), Route::NoLeader);
        assert_eq!(r.route("t", 2), Route::Leader("10.0.0.1:9092".into()));
        assert_eq!(
            r.route("t", 7),
            Route::Bootstrap,
            "a partition not known yet"
        );
        assert_eq!(r.route("other", 0), Route::Bootstrap);

        // SPU 0 goes away: still a cluster, and still known as a fallback,
        // after the live ones.
        r.learn(&answer(&[(1, "127.0.0.1:9093")]));
        assert!(r.is_cluster());
        assert_eq!(r.route("t", 0), Route::Leader("127.0.0.1:9093".into()));
        assert_eq!(
            r.known_addrs(),
            vec!["127.0.0.1:9093".to_string(), "10.0.0.1:9092".to_string()]
        );
    }
}

//! What the cluster says about itself: its SPUs, its controller and the
//! partitions that have no leader now or too few copies in sync (for
//! `rill cluster status`), and how far each replica of a partition is
//! behind its leader (for `rill partition list`).

use std::time::Duration;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::{Admin, PartitionDescription, RillError};

/// Kafka's debugging replica id: a ListOffsets with it may be answered by
/// any replica of the partition, with its own log end.
const DEBUGGING_REPLICA: i32 = -2;
/// ListOffsets' timestamp for "the end of the log".
const LATEST: i64 = -1;
/// How long one replica's SPU is given to say where its log ends before
/// it is shown as unknown (an SPU that died since Metadata answered).
const REPLICA_ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// One replica of a partition, as its own SPU reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLogEnd {
    /// The replica's SPU id.
    pub replica: i32,
    /// The offset after the last record of its copy; `None` when its SPU
    /// could not be asked (down, or no answer in time).
    pub log_end: Option<i64>,
    /// Records it is behind the leader's log end (0 for the leader);
    /// `None` when its log end or the leader's is unknown.
    pub lag: Option<i64>,
}

/// An SPU as the cluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpuInfo {
    /// The SPU's id.
    pub id: i32,
    /// Its advertised `host:port`.
    pub addr: String,
}

/// The cluster as one SPU's Metadata answer describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Live SPUs, by id.
    pub spus: Vec<SpuInfo>,
    /// The controller's SPU id, if one is elected.
    pub controller: Option<i32>,
    /// `(topic, partition)` of every partition without a leader.
    pub leaderless: Vec<(String, u32)>,
    /// `(topic, partition)` of every partition with fewer replicas in sync
    /// than it has copies.
    pub under_replicated: Vec<(String, u32)>,
}

impl Admin {
    /// The SPUs, the controller and the partitions without a leader.
    pub async fn describe_cluster(&self) -> Result<ClusterInfo, RillError> {
        let conn = self.client.connection().await?;
        let version = conn.version::<MetadataRequest>(12)?;
        let resp = conn
            .send(MetadataRequest::default().with_topics(None), version)
            .await?;
        let mut spus: Vec<SpuInfo> = resp
            .brokers
            .iter()
            .map(|b| SpuInfo {
                id: b.node_id.0,
                addr: format!("{}:{}", b.host, b.port),
            })
            .collect();
        spus.sort_by_key(|s| s.id);
        let (mut leaderless, mut under_replicated) = (Vec::new(), Vec::new());
        for t in &resp.topics {
            let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
            for p in &t.partitions {
                let at = (name.clone(), p.partition_index.max(0) as u32);
                if p.leader_id.0 < 0 {
                    leaderless.push(at.clone());
                }
                if p.isr_nodes.len() < p.replica_nodes.len() {
                    under_replicated.push(at);
                }
            }
        }
        leaderless.sort();
        under_replicated.sort();
        Ok(ClusterInfo {
            spus,
            controller: (resp.controller_id.0 >= 0).then_some(resp.controller_id.0),
            leaderless,
            under_replicated,
        })
    }
}

impl Admin {
    /// Each replica's log end and lag behind the leader's log end, in the
    /// order of `partition.replicas`. Each replica's SPU is asked for its
    /// own copy; the leader is asked last, so a follower never appears
    /// ahead of it (the lag is clamped at 0 in case the leader changed in
    /// between).
    pub async fn replica_log_ends(
        &self,
        topic: &str,
        partition: &PartitionDescription,
    ) -> Vec<ReplicaLogEnd> {
        let mut ends: Vec<(i32, Option<i64>)> = Vec::new();
        for &replica in partition
            .replicas
            .iter()
            .filter(|r| Some(**r) != partition.leader)
        {
            ends.push((
                replica,
                self.log_end(replica, topic, partition.partition).await,
            ));
        }
        let leader_end = match partition.leader {
            Some(l) => self.log_end(l, topic, partition.partition).await,
            None => None,
        };
        partition
            .replicas
            .iter()
            .map(|&replica| {
                let log_end = if Some(replica) == partition.leader {
                    leader_end
                } else {
                    ends.iter()
                        .find(|(r, _)| *r == replica)
                        .and_then(|(_, e)| *e)
                };
                ReplicaLogEnd {
                    replica,
                    log_end,
                    lag: log_end.zip(leader_end).map(|(e, l)| (l - e).max(0)),
                }
            })
            .collect()
    }

    /// Where SPU `spu`'s copy of `topic`'s `partition` ends; `None` if it
    /// cannot be asked or does not answer.
    async fn log_end(&self, spu: i32, topic: &str, partition: u32) -> Option<i64> {
        let ask = async {
            let conn = self.client.spu_connection(spu).await?;
            let version = conn.version::<ListOffsetsRequest>(7).ok()?;
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(DEBUGGING_REPLICA))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(partition as i32)
                        .with_timestamp(LATEST)])]);
            let resp = conn.send(req, version).await.ok()?;
            let p = resp.topics.first()?.partitions.first()?;
            (p.error_code == 0 && p.offset >= 0).then_some(p.offset)
        };
        tokio::time::timeout(REPLICA_ASK_TIMEOUT, ask)
            .await
            .ok()
            .flatten()
    }
}

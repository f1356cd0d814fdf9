//! What the cluster says about itself: its SPUs, its controller and the
//! partitions that have no leader now or too few copies in sync (for
//! `rill cluster status`).

use kafka_protocol::messages::MetadataRequest;

use crate::{Admin, RillError};

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

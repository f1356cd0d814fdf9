//! Creating, deleting and listing topics. Every request here may go to
//! any SPU of a cluster (the store behind them is shared): the bootstrap
//! SPU, or another one an earlier Metadata answer named when it is away.

use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::ClientInner;
use crate::{PartitionDescription, RillError};

/// A topic as listed by the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic's name.
    pub name: String,
    /// How many partitions it has.
    pub partitions: u32,
}

/// A topic's partitions and configs, as the cluster reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic's name.
    pub name: String,
    /// How many partitions it has.
    pub partitions: u32,
    /// Every config with its value, and whether it was set on the topic
    /// (rather than a default).
    pub configs: Vec<(String, String, bool)>,
    /// Each partition's leader SPU (none while its SPU is down), leader
    /// epoch, replicas and in-sync replicas, by partition index.
    pub partition_details: Vec<PartitionDescription>,
}

/// Topic administration, from [`crate::Rill::admin`].
#[derive(Debug, Clone)]
pub struct Admin {
    pub(crate) client: Arc<ClientInner>,
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

impl Admin {
    /// Creates `topic` with `partitions`, `replication` and Kafka topic
    /// configs (`retention.ms`, `segment.bytes`, ...).
    pub async fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        replication: i16,
        configs: &[(&str, &str)],
    ) -> Result<(), RillError> {
        let conn = self.client.any_connection().await?;
        let version = conn.version::<CreateTopicsRequest>(7)?;
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(replication)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string((*k).to_owned()))
                                .with_value(Some(StrBytes::from_string((*v).to_owned())))
                        })
                        .collect(),
                )]);
        let resp = conn.send(req, version).await?;
        let t = resp
            .topics
            .first()
            .ok_or_else(|| RillError::Protocol("CreateTopics answer is empty".into()))?;
        match t.error_code {
            0 => Ok(()),
            code => Err(RillError::broker(
                format!("creating topic {topic:?}"),
                code,
                t.error_message.as_ref().map(|m| m.to_string()),
            )),
        }
    }

    /// Deletes `topic` and all its records.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), RillError> {
        let conn = self.client.any_connection().await?;
        let version = conn.version::<DeleteTopicsRequest>(5)?;
        let req = DeleteTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topic_names(vec![name(topic)]);
        let resp = conn.send(req, version).await?;
        let r = resp
            .responses
            .first()
            .ok_or_else(|| RillError::Protocol("DeleteTopics answer is empty".into()))?;
        match r.error_code {
            0 => Ok(()),
            code => Err(RillError::broker(
                format!("deleting topic {topic:?}"),
                code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )),
        }
    }

    /// Every topic, sorted by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>, RillError> {
        let resp = self
            .client
            .metadata(MetadataRequest::default().with_topics(None))
            .await?;
        let mut topics: Vec<TopicInfo> = resp
            .topics
            .iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| {
                Some(TopicInfo {
                    name: t.name.as_ref()?.to_string(),
                    partitions: t.partitions.len() as u32,
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Partitions (with their leaders) and configs of one topic.
    pub async fn describe_topic(&self, topic: &str) -> Result<TopicDescription, RillError> {
        let partition_details = self.client.topic_metadata(topic).await?;
        let partitions = partition_details.len() as u32;
        let conn = self.client.any_connection().await?;
        let version = conn.version::<DescribeConfigsRequest>(4)?;
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_string(topic.to_owned()))
                .with_configuration_keys(None),
        ]);
        let resp = conn.send(req, version).await?;
        let r = resp
            .results
            .first()
            .ok_or_else(|| RillError::Protocol("DescribeConfigs answer is empty".into()))?;
        if r.error_code != 0 {
            return Err(RillError::broker(
                format!("describing topic {topic:?}"),
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            ));
        }
        // Config source 1 is TOPIC_CONFIG: set on this topic.
        let configs = r
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    c.config_source == 1,
                )
            })
            .collect();
        Ok(TopicDescription {
            name: topic.to_owned(),
            partitions,
            configs,
            partition_details,
        })
    }
}

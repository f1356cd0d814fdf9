//! Changing a topic in place: more partitions (CreatePartitions) and its
//! configs (IncrementalAlterConfigs).

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::{Admin, RillError};

/// One change to a topic's config, for [`Admin::alter_topic_config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// Set a config (Kafka's name, e.g. `retention.ms`) to a value.
    Set(String, String),
    /// Put a config back to its default.
    Delete(String),
}

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
/// The resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl Admin {
    /// Grows `topic` to `total` partitions (Kafka's CreatePartitions takes
    /// the new total, not the number to add). Partitions cannot be removed:
    /// a `total` not above the current count is refused by the SPU with
    /// `INVALID_PARTITIONS`. Records with a key may go to another partition
    /// than before once producers see the new count.
    pub async fn create_partitions(&self, topic: &str, total: u32) -> Result<(), RillError> {
        let count = i32::try_from(total)
            .map_err(|_| RillError::Config(format!("{total} partitions is too many")))?;
        let conn = self.client.connection().await?;
        let version = conn.version::<CreatePartitionsRequest>(3)?;
        let req = CreatePartitionsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(TopicName(text(topic)))
                .with_count(count)
                .with_assignments(None)]);
        let resp = conn.send(req, version).await?;
        let r = resp
            .results
            .first()
            .ok_or_else(|| RillError::Protocol("CreatePartitions answer is empty".into()))?;
        match r.error_code {
            0 => Ok(()),
            code => Err(RillError::broker(
                format!("adding partitions to topic {topic:?}"),
                code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )),
        }
    }

    /// Changes some of `topic`'s configs, leaving the others as they are
    /// (IncrementalAlterConfigs). All the changes are applied, or none.
    pub async fn alter_topic_config(
        &self,
        topic: &str,
        changes: &[ConfigChange],
    ) -> Result<(), RillError> {
        let conn = self.client.connection().await?;
        let version = conn.version::<IncrementalAlterConfigsRequest>(1)?;
        let configs = changes
            .iter()
            .map(|c| match c {
                ConfigChange::Set(k, v) => AlterableConfig::default()
                    .with_name(text(k))
                    .with_config_operation(OP_SET)
                    .with_value(Some(text(v))),
                ConfigChange::Delete(k) => AlterableConfig::default()
                    .with_name(text(k))
                    .with_config_operation(OP_DELETE)
                    .with_value(None),
            })
            .collect();
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(text(topic))
                .with_configs(configs),
        ]);
        let resp = conn.send(req, version).await?;
        let r = resp
            .responses
            .first()
            .ok_or_else(|| RillError::Protocol("IncrementalAlterConfigs answer is empty".into()))?;
        match r.error_code {
            0 => Ok(()),
            code => Err(RillError::broker(
                format!("changing the config of topic {topic:?}"),
                code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )),
        }
    }
}

//! `NativeRill`: the connection, producers, consumers and topic admin.

use std::collections::HashMap;

use napi::{Env, JsObject};
use napi_derive::napi;

use crate::config::{build, ProducerConfig};
use crate::consumer::{offset, NativePartitionConsumer, NativeStream};
use crate::producer::NativeProducer;
use crate::runtime::promise;

/// A topic's name and partition count.
#[napi(object)]
#[derive(Debug)]
pub struct TopicInfo {
    /// The topic's name.
    pub name: String,
    /// Its partition count.
    pub partitions: u32,
}

/// A Promise of a connection to `addr`, or to the discovered cluster
/// (RILL_ADDR, else the profile `rill cluster start` wrote, else
/// 127.0.0.1:9092).
#[napi(ts_return_type = "Promise<NativeRill>")]
pub fn connect(env: Env, addr: Option<String>) -> napi::Result<JsObject> {
    let addr = addr.unwrap_or_else(rill::discover_addr);
    promise(
        &env,
        async move { rill::Rill::connect_to(&addr).await },
        |_, inner| Ok(NativeRill { inner }),
    )
}

/// A connection to a Rill cluster.
#[napi]
#[derive(Debug)]
pub struct NativeRill {
    inner: rill::Rill,
}

#[napi]
impl NativeRill {
    /// The `host:port` this handle connects to.
    #[napi(getter)]
    pub fn addr(&self) -> String {
        self.inner.addr().to_owned()
    }

    /// A Promise of a producer for `topic` with `config` (defaults for
    /// what it leaves out).
    #[napi(ts_return_type = "Promise<NativeProducer>")]
    pub fn topic_producer(
        &self,
        env: Env,
        topic: String,
        config: Option<ProducerConfig>,
    ) -> napi::Result<JsObject> {
        let config = build(&config.unwrap_or_default())?;
        let rill = self.inner.clone();
        promise(
            &env,
            async move { rill.topic_producer_with_config(&topic, config).await },
            |_, inner| Ok(NativeProducer { inner }),
        )
    }

    /// A Promise of a consumer of one partition.
    #[napi(ts_return_type = "Promise<NativePartitionConsumer>")]
    pub fn partition_consumer(
        &self,
        env: Env,
        topic: String,
        partition: u32,
    ) -> napi::Result<JsObject> {
        let rill = self.inner.clone();
        promise(
            &env,
            async move { rill.partition_consumer(&topic, partition).await },
            |_, inner| Ok(NativePartitionConsumer { inner }),
        )
    }

    /// A Promise of one stream over `partitions` (all when null) of
    /// `topic`, from the offset (`kind`, `value`).
    #[napi(ts_return_type = "Promise<NativeStream>")]
    pub fn consumer(
        &self,
        env: Env,
        topic: String,
        partitions: Option<Vec<u32>>,
        kind: String,
        value: i64,
    ) -> napi::Result<JsObject> {
        let offset = offset(&kind, value)?;
        let rill = self.inner.clone();
        promise(
            &env,
            async move {
                rill.consumer(
                    &topic,
                    partitions.as_deref(),
                    offset,
                    rill::ConsumerConfig::default(),
                )
                .await
            },
            |_, s| Ok(NativeStream::many(s)),
        )
    }

    /// Creates `topic` with `partitions`, `replication` and Kafka topic
    /// configs (`{"retention.ms": "60000"}`).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn create_topic(
        &self,
        env: Env,
        topic: String,
        partitions: i32,
        replication: i32,
        configs: Option<HashMap<String, String>>,
    ) -> napi::Result<JsObject> {
        let admin = self.inner.admin();
        let replication = i16::try_from(replication).unwrap_or(i16::MAX);
        promise(
            &env,
            async move {
                let configs = configs.unwrap_or_default();
                let pairs: Vec<(&str, &str)> = configs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                admin
                    .create_topic(&topic, partitions, replication, &pairs)
                    .await
            },
            |_, ()| Ok(()),
        )
    }

    /// Every topic, sorted by name.
    #[napi(ts_return_type = "Promise<Array<TopicInfo>>")]
    pub fn list_topics(&self, env: Env) -> napi::Result<JsObject> {
        let admin = self.inner.admin();
        promise(
            &env,
            async move { admin.list_topics().await },
            |_, topics| {
                Ok(topics
                    .into_iter()
                    .map(|t| TopicInfo {
                        name: t.name,
                        partitions: t.partitions,
                    })
                    .collect::<Vec<_>>())
            },
        )
    }

    /// Deletes `topic` and all its records.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete_topic(&self, env: Env, topic: String) -> napi::Result<JsObject> {
        let admin = self.inner.admin();
        promise(
            &env,
            async move { admin.delete_topic(&topic).await },
            |_, ()| Ok(()),
        )
    }
}

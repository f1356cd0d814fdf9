//! Topics changed in place on a single SPU: CreatePartitions,
//! IncrementalAlterConfigs and AlterConfigs (the cluster form is in
//! `cluster.rs`).

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource as FullResource, AlterableConfig as FullConfig,
};
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AlterConfigsRequest, BrokerId, CreatePartitionsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest,
};
use kafka_protocol::protocol::StrBytes;
use rill_protocol::Compression;

use rill_test_support::*;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub fn grow(name: &str, count: i32, validate_only: bool) -> CreatePartitionsRequest {
    CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(name))
            .with_count(count)
            .with_assignments(None)])
}

/// CreatePartitions' answer for one topic: code and message.
async fn grow_code(
    c: &mut KafkaClient,
    name: &str,
    count: i32,
    validate_only: bool,
    version: i16,
) -> (i16, String) {
    let resp = c.send(grow(name, count, validate_only), version).await;
    let r = &resp.results[0];
    assert_eq!(r.name.as_str(), name);
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// `(key, value)` for SET, `(key, None)` for DELETE.
pub fn incremental(
    name: &str,
    changes: &[(&str, Option<&str>)],
    validate_only: bool,
) -> IncrementalAlterConfigsRequest {
    IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text(name))
            .with_configs(
                changes
                    .iter()
                    .map(|(k, v)| {
                        AlterableConfig::default()
                            .with_name(text(k))
                            .with_config_operation(if v.is_some() { 0 } else { 1 })
                            .with_value(v.map(text))
                    })
                    .collect(),
            )])
}

async fn alter_code(
    c: &mut KafkaClient,
    req: IncrementalAlterConfigsRequest,
    version: i16,
) -> (i16, String) {
    let resp = c.send(req, version).await;
    let r = &resp.responses[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// Every config of a topic as DescribeConfigs gives it: name, value,
/// source (1: set on the topic, 5: default).
pub async fn describe(c: &mut KafkaClient, name: &str) -> Vec<(String, String, i8)> {
    let resp = c
        .send(
            DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(text(name))
                    .with_configuration_keys(None),
            ]),
            4,
        )
        .await;
    assert_eq!(resp.results[0].error_code, 0, "describing {name}");
    resp.results[0]
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                c.config_source,
            )
        })
        .collect()
}

pub fn config_value(configs: &[(String, String, i8)], key: &str) -> (String, i8) {
    configs
        .iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, v, s)| (v.clone(), *s))
        .unwrap_or_else(|| panic!("no {key} in {configs:?}"))
}

fn produce(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

async fn produce_code(c: &mut KafkaClient, topic: &str, partition: i32, records: Bytes) -> i16 {
    let resp = c.send(produce(topic, partition, records), 9).await;
    resp.responses[0].partition_responses[0].error_code
}

async fn partition_count(c: &mut KafkaClient, topic: &str) -> usize {
    let md = c
        .send(
            MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
            ])),
            12,
        )
        .await;
    assert_eq!(md.topics[0].error_code, 0);
    md.topics[0].partitions.len()
}

async fn earliest(c: &mut KafkaClient, topic: &str) -> i64 {
    let resp = c
        .send(
            ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-2)])]),
            7,
        )
        .await;
    resp.topics[0].partitions[0].offset
}

#[tokio::test]
async fn create_partitions_grows_a_topic_and_refuses_what_kafka_refuses() {
    let mut spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "grow", 2, &[]).await;
    let invalid = ResponseError::InvalidPartitions.code();
    for count in [1, 2] {
        let (code, message) = grow_code(&mut c, "grow", count, false, 3).await;
        assert_eq!(code, invalid, "{count}");
        assert!(message.contains("has 2 partitions"), "{message}");
    }
    let (code, message) = grow_code(&mut c, "grow", 10_001, false, 3).await;
    assert_eq!(code, invalid);
    assert!(message.contains("at most 10000"), "{message}");
    assert_eq!(
        grow_code(&mut c, "missing", 3, false, 3).await.0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    // Explicit assignments: the SPU places partitions itself.
    let mut placed = grow("grow", 3, false);
    placed.topics[0].assignments = Some(vec![
        CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(0)])
    ]);
    assert_eq!(
        c.send(placed, 3).await.results[0].error_code,
        ResponseError::InvalidReplicaAssignment.code()
    );
    // validate_only checks and changes nothing.
    assert_eq!(grow_code(&mut c, "grow", 4, true, 0).await.0, 0);
    assert_eq!(partition_count(&mut c, "grow").await, 2);
    // Every version librdkafka and kafka-python send.
    for (version, count) in [(0, 3), (1, 4), (2, 5), (3, 6)] {
        assert_eq!(
            grow_code(&mut c, "grow", count, false, version).await,
            (0, String::new()),
            "v{version}"
        );
        assert_eq!(partition_count(&mut c, "grow").await, count as usize);
    }
    // The new partitions take records, as the old ones do.
    for p in [0, 5] {
        let records = batch(&[format!("p{p}").as_bytes()], 1, Compression::None);
        assert_eq!(produce_code(&mut c, "grow", p, records).await, 0, "{p}");
    }
    assert_eq!(
        produce_code(&mut c, "grow", 6, batch(&[b"x"], 1, Compression::None)).await,
        ResponseError::UnknownTopicOrPartition.code()
    );
    // The count is in the metadata file: it survives a restart.
    drop(c);
    spu.restart().await;
    let mut c = spu.client().await;
    assert_eq!(partition_count(&mut c, "grow").await, 6);
    assert_eq!(
        produce_code(&mut c, "grow", 5, batch(&[b"again"], 2, Compression::None)).await,
        0
    );
    spu.stop().await;
}

#[tokio::test]
async fn incremental_alter_configs_changes_the_running_topic() {
    let mut spu =
        TestSpu::start_with(|c| c.retention_check_interval = Duration::from_millis(100)).await;
    let mut c = spu.client().await;
    create_topic(&mut c, "tuned", 1, &[("segment.bytes", "1048576")]).await;
    let big = || batch(&[&[7u8; 600][..]], 1, Compression::None);
    assert_eq!(produce_code(&mut c, "tuned", 0, big()).await, 0);

    // Settings that change: each is described and takes effect.
    let req = incremental(
        "tuned",
        &[
            ("max.message.bytes", Some("500")),
            ("retention.ms", Some("3600000")),
            ("segment.bytes", None),
        ],
        false,
    );
    assert_eq!(alter_code(&mut c, req, 1).await, (0, String::new()));
    let configs = describe(&mut c, "tuned").await;
    assert_eq!(
        config_value(&configs, "max.message.bytes"),
        ("500".into(), 1)
    );
    assert_eq!(
        config_value(&configs, "retention.ms"),
        ("3600000".into(), 1)
    );
    assert_eq!(
        config_value(&configs, "segment.bytes"),
        ("1073741824".into(), 5)
    );
    assert_eq!(
        produce_code(&mut c, "tuned", 0, big()).await,
        ResponseError::MessageTooLarge.code(),
        "the open log takes the new max.message.bytes"
    );
    // validate_only checks and changes nothing.
    let req = incremental("tuned", &[("max.message.bytes", None)], true);
    assert_eq!(alter_code(&mut c, req, 0).await.0, 0);
    assert_eq!(
        config_value(&describe(&mut c, "tuned").await, "max.message.bytes").0,
        "500"
    );
    // compression.type applies to the next produce.
    let req = incremental(
        "tuned",
        &[
            ("max.message.bytes", None),
            ("compression.type", Some("zstd")),
        ],
        false,
    );
    assert_eq!(alter_code(&mut c, req, 0).await.0, 0);
    assert_eq!(
        produce_code(&mut c, "tuned", 0, big()).await,
        ResponseError::InvalidRecord.code()
    );
    let zstd = batch(&[&[7u8; 600][..]], 1, Compression::Zstd);
    assert_eq!(produce_code(&mut c, "tuned", 0, zstd).await, 0);

    // What cannot be done is refused, and nothing of the request applies.
    let invalid = ResponseError::InvalidConfig.code();
    for (changes, says) in [
        (
            vec![
                ("retention.ms", Some("1")),
                ("message.timestamp.type", Some("LogAppendTime")),
            ],
            "not supported by Rill",
        ),
        (vec![("cleanup.policy", Some("compact"))], "only \"delete\""),
        (vec![("segment.bytes", Some("10"))], "segment.bytes must be"),
        (vec![("retention.ms", Some("soon"))], "not a number"),
    ] {
        let (code, message) = alter_code(&mut c, incremental("tuned", &changes, false), 1).await;
        assert_eq!(code, invalid, "{changes:?}");
        assert!(message.contains(says), "{changes:?}: {message}");
    }
    assert_eq!(
        config_value(&describe(&mut c, "tuned").await, "retention.ms").0,
        "3600000"
    );
    let mut append = incremental("tuned", &[("cleanup.policy", Some("delete"))], false);
    append.resources[0].configs[0].config_operation = 2;
    assert_eq!(alter_code(&mut c, append, 1).await.0, invalid);
    assert_eq!(
        alter_code(
            &mut c,
            incremental("missing", &[("retention.ms", Some("1"))], false),
            1
        )
        .await
        .0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let mut broker = incremental("0", &[("log.retention.ms", Some("1"))], false);
    broker.resources[0].resource_type = 4;
    assert_eq!(
        alter_code(&mut c, broker, 1).await.0,
        ResponseError::InvalidRequest.code()
    );

    // Retention from the new settings runs on the open log: small
    // segments, then a retention of 1 ms deletes the closed ones.
    let req = incremental(
        "tuned",
        &[("segment.bytes", Some("1024")), ("compression.type", None)],
        false,
    );
    assert_eq!(alter_code(&mut c, req, 1).await.0, 0);
    // Records of now: the retention of an hour keeps them.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for i in 0..6 {
        let records = batch(&[&[i as u8; 700][..]], now, Compression::None);
        assert_eq!(produce_code(&mut c, "tuned", 0, records).await, 0);
    }
    // Offsets 0 and 1 (stamped 1 ms after the epoch) may go already; the
    // records of now, at offsets 2 to 7, stay.
    assert!(earliest(&mut c, "tuned").await <= 2);
    let req = incremental("tuned", &[("retention.ms", Some("1"))], false);
    assert_eq!(alter_code(&mut c, req, 1).await.0, 0);
    // Every closed segment goes: the active one holds offset 7.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while earliest(&mut c, "tuned").await < 7 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The config is in the metadata file: it survives a restart.
    drop(c);
    spu.restart().await;
    let mut c = spu.client().await;
    let configs = describe(&mut c, "tuned").await;
    assert_eq!(config_value(&configs, "retention.ms"), ("1".into(), 1));
    assert_eq!(config_value(&configs, "segment.bytes"), ("1024".into(), 1));
    assert_eq!(
        config_value(&configs, "compression.type"),
        ("producer".into(), 5)
    );
    spu.stop().await;
}

#[tokio::test]
async fn alter_configs_replaces_the_whole_config() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(
        &mut c,
        "whole",
        1,
        &[("retention.ms", "60000"), ("compression.type", "lz4")],
    )
    .await;
    for version in 0..=2 {
        let req = AlterConfigsRequest::default().with_resources(vec![FullResource::default()
            .with_resource_type(2)
            .with_resource_name(text("whole"))
            .with_configs(vec![FullConfig::default()
                .with_name(text("max.message.bytes"))
                .with_value(Some(text(&format!(
                    "{}",
                    2_000_000 + i32::from(version)
                ))))])]);
        let resp = c.send(req, version).await;
        assert_eq!(resp.responses[0].error_code, 0, "v{version}");
        let configs = describe(&mut c, "whole").await;
        assert_eq!(
            config_value(&configs, "max.message.bytes"),
            (format!("{}", 2_000_000 + i32::from(version)), 1)
        );
        // Not given: back to the default.
        assert_eq!(
            config_value(&configs, "retention.ms"),
            ("604800000".into(), 5)
        );
        assert_eq!(
            config_value(&configs, "compression.type"),
            ("producer".into(), 5)
        );
    }
    let req = AlterConfigsRequest::default().with_resources(vec![FullResource::default()
        .with_resource_type(2)
        .with_resource_name(text("whole"))
        .with_configs(vec![FullConfig::default()
            .with_name(text("cleanup.policy"))
            .with_value(Some(text("compact")))])]);
    assert_eq!(
        c.send(req, 1).await.responses[0].error_code,
        ResponseError::InvalidConfig.code()
    );
    spu.stop().await;
}

use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, MetadataRequest,
    ProduceRequest,
};
use kafka_protocol::protocol::StrBytes;
use rill_protocol::Compression;

use rill_test_support::*;

async fn create_code(
    c: &mut KafkaClient,
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(&str, &str)],
) -> i16 {
    let resp = c
        .send(
            CreateTopicsRequest::default().with_topics(vec![creatable(
                name,
                partitions,
                replication,
                configs,
            )]),
            7,
        )
        .await;
    resp.topics[0].error_code
}

#[tokio::test]
async fn create_topics_checks_everything_kafka_checks() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    assert_eq!(create_code(&mut c, "orders", 3, 1, &[]).await, 0);
    assert_eq!(
        create_code(&mut c, "orders", 3, 1, &[]).await,
        ResponseError::TopicAlreadyExists.code()
    );
    assert_eq!(
        create_code(&mut c, "bad name!", 1, 1, &[]).await,
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        create_code(&mut c, "..", 1, 1, &[]).await,
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        create_code(&mut c, &"x".repeat(250), 1, 1, &[]).await,
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        create_code(&mut c, "zero", 0, 1, &[]).await,
        ResponseError::InvalidPartitions.code()
    );
    assert_eq!(
        create_code(&mut c, "negative", -5, 1, &[]).await,
        ResponseError::InvalidPartitions.code()
    );
    assert_eq!(
        create_code(&mut c, "rf3", 1, 3, &[]).await,
        ResponseError::InvalidReplicationFactor.code()
    );
    assert_eq!(
        create_code(&mut c, "cfg", 1, 1, &[("retention.ms", "soon")]).await,
        ResponseError::InvalidConfig.code()
    );
    assert_eq!(
        create_code(&mut c, "cfg", 1, 1, &[("no.such.thing", "1")]).await,
        ResponseError::InvalidConfig.code()
    );
    // -1 means the SPU's defaults.
    assert_eq!(create_code(&mut c, "defaults", -1, -1, &[]).await, 0);
    // validate_only creates nothing.
    let resp = c
        .send(
            CreateTopicsRequest::default()
                .with_validate_only(true)
                .with_topics(vec![creatable("dry", 2, 1, &[])]),
            7,
        )
        .await;
    assert_eq!(resp.topics[0].error_code, 0);
    let md = c
        .send(MetadataRequest::default().with_topics(None), 12)
        .await;
    let names: Vec<String> = md
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().as_str().to_owned())
        .collect();
    assert_eq!(names, vec!["defaults", "orders"]);
    assert_eq!(md.topics[1].partitions.len(), 3);
    assert_eq!(md.brokers.len(), 1);
    assert_eq!(md.brokers[0].port, spu.addr.port() as i32);
    spu.stop().await;
}

#[tokio::test]
async fn metadata_reports_unknown_and_invalid_topics() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    let ask = |names: &[&str]| {
        MetadataRequest::default().with_topics(Some(
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                .collect(),
        ))
    };
    let md = c.send(ask(&["missing", "bad/name"]), 12).await;
    assert_eq!(
        md.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        md.topics[1].error_code,
        ResponseError::InvalidTopicException.code()
    );
    // Older versions too (v1 as kafka-python might ask).
    let md = c.send(ask(&["missing"]), 1).await;
    assert_eq!(
        md.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    spu.stop().await;
}

#[tokio::test]
async fn auto_creation_when_turned_on() {
    let spu = TestSpu::start_with(|c| c.auto_create_topics = true).await;
    let mut c = spu.client().await;
    let md = c
        .send(
            MetadataRequest::default()
                .with_allow_auto_topic_creation(true)
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(topic_name("fresh")))
                ])),
            12,
        )
        .await;
    assert_eq!(md.topics[0].error_code, 0);
    // Producing to a missing topic creates it too.
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name("by-produce"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(&[b"x"], 1, Compression::None)))])]);
    let resp = c.send(produce, 9).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    spu.stop().await;
}

#[tokio::test]
async fn delete_topics_removes_data_and_metadata() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "doomed", 2, &[]).await;
    let data = spu.dir.path().join("data");
    assert!(data.join("doomed-0").exists());
    let resp = c
        .send(
            DeleteTopicsRequest::default().with_topic_names(vec![topic_name("doomed")]),
            5,
        )
        .await;
    assert_eq!(resp.responses[0].error_code, 0);
    assert!(!data.join("doomed-0").exists());
    assert!(!data.join("doomed-1").exists());
    let resp = c
        .send(
            DeleteTopicsRequest::default().with_topic_names(vec![topic_name("doomed")]),
            5,
        )
        .await;
    assert_eq!(
        resp.responses[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    // v6 names topics in a list of states.
    create_topic(&mut c, "again", 1, &[]).await;
    let resp = c
        .send(
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(topic_name("again")))
            ]),
            6,
        )
        .await;
    assert_eq!(resp.responses[0].error_code, 0);
    let md = c
        .send(MetadataRequest::default().with_topics(None), 12)
        .await;
    assert!(md.topics.is_empty());
    spu.stop().await;
}

#[tokio::test]
async fn describe_configs_shows_overrides_and_defaults() {
    let spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(
        &mut c,
        "tuned",
        1,
        &[("retention.ms", "60000"), ("compression.type", "lz4")],
    )
    .await;
    let resp = c
        .send(
            DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("tuned"))
                    .with_configuration_keys(None),
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("nope")),
            ]),
            4,
        )
        .await;
    let configs = &resp.results[0].configs;
    let get = |k: &str| configs.iter().find(|c| c.name.as_str() == k).unwrap();
    assert_eq!(
        get("retention.ms").value.as_ref().unwrap().as_str(),
        "60000"
    );
    assert_eq!(get("retention.ms").config_source, 1, "TOPIC_CONFIG");
    assert_eq!(
        get("compression.type").value.as_ref().unwrap().as_str(),
        "lz4"
    );
    assert_eq!(get("segment.bytes").config_source, 5, "DEFAULT_CONFIG");
    assert_eq!(
        resp.results[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    spu.stop().await;
}

#[tokio::test]
async fn topics_and_data_survive_a_restart() {
    let mut spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "durable", 2, &[("retention.ms", "-1")]).await;
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name("durable"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(1)
                .with_records(Some(batch(&[b"a", b"b"], 1, Compression::Gzip)))])]);
    assert_eq!(
        c.send(produce.clone(), 9).await.responses[0].partition_responses[0].base_offset,
        0
    );
    drop(c);
    spu.restart().await;
    let mut c = spu.client().await;
    let md = c
        .send(MetadataRequest::default().with_topics(None), 12)
        .await;
    assert_eq!(md.topics.len(), 1);
    assert_eq!(md.topics[0].partitions.len(), 2);
    let resp = c.send(produce, 9).await;
    assert_eq!(
        resp.responses[0].partition_responses[0].base_offset, 2,
        "offsets continue after restart"
    );
    spu.stop().await;
}

//! Topics changed in place (partitions added, configs altered) and
//! consumers that start at a time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rill::{ConfigChange, Offset, Rill, RillError};

use crate::spu::TestSpu;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn a_producer_uses_added_partitions_after_a_refresh() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    let admin = rill.admin();
    admin.create_topic("grow", 1, 1, &[]).await.unwrap();
    let producer = rill.topic_producer("grow").await.unwrap();
    for i in 0..10 {
        let md = producer
            .send(format!("k{i}"), "before")
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(md.partition, 0);
    }
    admin.create_partitions("grow", 3).await.unwrap();
    // Kafka's CreatePartitions takes the new total: not more is refused.
    let err = admin.create_partitions("grow", 3).await.unwrap_err();
    assert!(
        matches!(err, RillError::Broker { code: 37, .. }),
        "INVALID_PARTITIONS: {err}"
    );
    assert!(err.to_string().contains("has 3 partitions"), "{err}");
    assert!(matches!(
        admin.create_partitions("missing", 3).await.unwrap_err(),
        RillError::Broker { code: 3, .. }
    ));
    assert_eq!(admin.describe_topic("grow").await.unwrap().partitions, 3);

    // Without a refresh the producer keeps the count it knew (it asks
    // again once a minute); after one, keyed records spread over all three.
    assert_eq!(producer.partition_count(), 1);
    assert_eq!(producer.refresh_partition_count().await.unwrap(), 3);
    let mut used = [0; 3];
    for i in 0..30 {
        let md = producer
            .send(format!("k{i}"), "after")
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        used[md.partition as usize] += 1;
    }
    assert!(
        used.iter().all(|n| *n > 0),
        "records per partition {used:?}"
    );
    // Every new partition holds what was sent to it.
    for p in 1..3 {
        let consumer = rill.partition_consumer("grow", p).await.unwrap();
        let mut stream = consumer.stream(Offset::beginning()).await.unwrap();
        for _ in 0..used[p as usize] {
            assert_eq!(&stream.next().await.unwrap().value[..], b"after");
        }
    }
    spu.stop().await;
}

#[tokio::test]
async fn configs_are_altered_in_place() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    let admin = rill.admin();
    admin
        .create_topic("tuned", 1, 1, &[("segment.bytes", "1048576")])
        .await
        .unwrap();
    admin
        .alter_topic_config(
            "tuned",
            &[
                ConfigChange::Set("retention.ms".into(), "60000".into()),
                ConfigChange::Delete("segment.bytes".into()),
            ],
        )
        .await
        .unwrap();
    let d = admin.describe_topic("tuned").await.unwrap();
    let get = |k: &str| d.configs.iter().find(|c| c.0 == k).cloned().unwrap();
    assert_eq!(
        get("retention.ms"),
        ("retention.ms".into(), "60000".into(), true)
    );
    assert_eq!(
        get("segment.bytes"),
        ("segment.bytes".into(), "1073741824".into(), false)
    );
    let err = admin
        .alter_topic_config(
            "tuned",
            &[ConfigChange::Set(
                "message.timestamp.type".into(),
                "LogAppendTime".into(),
            )],
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("INVALID_CONFIG") && err.to_string().contains("not supported"),
        "{err}"
    );
    spu.stop().await;
}

#[tokio::test]
async fn consumers_start_at_a_time() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("timed", 1, 1, &[]).await.unwrap();
    let producer = rill.topic_producer("timed").await.unwrap();
    let send = |v: String| {
        let producer = producer.clone();
        async move {
            producer
                .send(rill::RecordKey::NULL, v)
                .await
                .unwrap()
                .wait()
                .await
                .unwrap()
        }
    };
    for i in 0..5 {
        send(format!("early{i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let middle = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 0..5 {
        send(format!("late{i}")).await;
    }
    let consumer = rill.partition_consumer("timed", 0).await.unwrap();
    let mut s = consumer
        .stream(Offset::timestamp(middle).unwrap())
        .await
        .unwrap();
    assert_eq!(s.next_offset(), 5);
    assert_eq!(&s.next().await.unwrap().value[..], b"late0");
    let s = consumer.stream(Offset::Timestamp(0)).await.unwrap();
    assert_eq!(s.next_offset(), 0, "before every record: the first");
    // After the last record: the end, so only new records come.
    let mut s = consumer
        .stream(Offset::timestamp(now_ms() + 60_000).unwrap())
        .await
        .unwrap();
    assert_eq!(s.next_offset(), 10);
    send("new".into()).await;
    let r = s.next().await.unwrap();
    assert_eq!((r.offset, &r.value[..]), (10, &b"new"[..]));
    assert!(Offset::timestamp(-1).is_err());
    // Every partition of a topic resolves the time on its own.
    let mut all = rill
        .consumer(
            "timed",
            None,
            Offset::Timestamp(middle),
            rill::ConsumerConfig::default(),
        )
        .await
        .unwrap();
    assert_eq!(all.next().await.unwrap().offset, 5);
    spu.stop().await;
}

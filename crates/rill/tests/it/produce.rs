use std::time::{Duration, Instant};

use rill::producer::partition_for_key;
use rill::{
    Compression, DeliverySemantic, Isolation, RecordKey, RetryPolicy, RetryStrategy, Rill,
    RillError, TopicProducerConfigBuilder,
};

use crate::spu::TestSpu;

#[tokio::test]
async fn the_seed_examples_run_as_written() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin()
        .create_topic("greetings", 1, 1, &[])
        .await
        .unwrap();

    // producers.md, at most once.
    let config = TopicProducerConfigBuilder::default()
        .delivery_semantic(DeliverySemantic::AtMostOnce)
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("greetings", config)
        .await
        .unwrap();
    let output = producer.send("Hello", "Rill!").await.unwrap();
    let md = output.wait().await.unwrap();
    assert_eq!((md.partition, md.offset), (0, 0));

    // producers.md, at least once with an exponential policy.
    let policy = RetryPolicy {
        max_retries: 5,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        strategy: RetryStrategy::ExponentialBackoff,
    };
    let config = TopicProducerConfigBuilder::default()
        .delivery_semantic(DeliverySemantic::AtLeastOnce(policy))
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("greetings", config)
        .await
        .unwrap();
    let md = producer
        .send("Hello", "again")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(md.offset, 1);
    spu.stop().await;
}

#[tokio::test]
async fn keys_land_where_the_java_client_puts_them_and_order_holds() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("keyed", 4, 1, &[]).await.unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::from_millis(5))
        .compression(Compression::Lz4)
        .isolation(Isolation::ReadCommitted)
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("keyed", config)
        .await
        .unwrap();
    let mut outputs = Vec::new();
    for i in 0..400 {
        let key = format!("user-{}", i % 13);
        outputs.push((
            key.clone(),
            producer.send(key, format!("v{i}")).await.unwrap(),
        ));
    }
    producer.flush().await.unwrap();
    let mut last_offset = std::collections::HashMap::new();
    for (key, out) in outputs {
        let md = out.wait().await.unwrap();
        assert_eq!(md.partition, partition_for_key(key.as_bytes(), 4), "{key}");
        // Within a partition, later sends get later offsets.
        let prev = last_offset.insert(md.partition, md.offset);
        assert!(prev.is_none_or(|p| p < md.offset));
    }
    spu.stop().await;
}

#[tokio::test]
async fn keyless_records_round_robin_and_linger_batches_them() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("rr", 3, 1, &[]).await.unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::from_millis(200))
        .build()
        .unwrap();
    let producer = rill.topic_producer_with_config("rr", config).await.unwrap();
    let started = Instant::now();
    let outs = producer
        .send_all((0..30).map(|i| (rill::RecordKey::NULL, format!("v{i}"))))
        .await
        .unwrap();
    let mut per_partition = [0i64; 3];
    for (i, out) in outs.into_iter().enumerate() {
        // The send instant each output carries starts a latency that
        // covers the linger its batch waited.
        let sent = out.sent_at();
        assert!(sent >= started, "sent_at is the send's instant");
        let (md, answered_at) = out.answered().await;
        assert!(
            answered_at.saturating_duration_since(sent) >= Duration::from_millis(190),
            "record {i}: {:?} from sent_at to the answer",
            answered_at.saturating_duration_since(sent)
        );
        let md = md.unwrap();
        assert_eq!(md.partition as usize, i % 3, "record {i} round-robin");
        assert_eq!(md.offset, per_partition[md.partition as usize]);
        per_partition[md.partition as usize] += 1;
    }
    // Nothing filled a batch, so the answers waited for linger.
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
    spu.stop().await;
}

#[tokio::test]
async fn a_refused_batch_fails_only_its_records() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin()
        .create_topic("small", 1, 1, &[("max.message.bytes", "1000")])
        .await
        .unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::ZERO)
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("small", config)
        .await
        .unwrap();
    let big = producer
        .send(rill::RecordKey::NULL, vec![0u8; 5000])
        .await
        .unwrap();
    let err = big.wait().await.unwrap_err();
    assert!(
        matches!(err, RillError::Broker { code: 10, .. }),
        "MESSAGE_TOO_LARGE, not retried: {err}"
    );
    let ok = producer
        .send("k", "fits")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(ok.offset, 0, "the producer keeps working");
    // Bigger than max_request_size: refused before sending, with both sizes.
    let config = TopicProducerConfigBuilder::default()
        .max_request_size(1000)
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("small", config)
        .await
        .unwrap();
    let err = producer.send("k", vec![0u8; 2000]).await.unwrap_err();
    assert!(
        matches!(
            err,
            RillError::RecordTooLarge {
                max_request_size: 1000,
                ..
            }
        ),
        "{err}"
    );
    spu.stop().await;
}

#[tokio::test]
async fn at_least_once_retries_across_an_spu_restart() {
    let mut spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("retry", 1, 1, &[]).await.unwrap();
    let policy = RetryPolicy {
        max_retries: 10,
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(300),
        timeout: Duration::from_secs(20),
        strategy: RetryStrategy::FixedDelay,
    };
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::ZERO)
        .delivery_semantic(DeliverySemantic::AtLeastOnce(policy))
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("retry", config)
        .await
        .unwrap();
    assert_eq!(
        producer
            .send("k", "before")
            .await
            .unwrap()
            .wait()
            .await
            .unwrap()
            .offset,
        0
    );
    spu.stop_for_now().await;
    let pending = producer.send("k", "during").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    spu.start_again().await;
    let md = pending.wait().await.unwrap();
    assert_eq!(md.offset, 1, "delivered once the SPU was back");

    // At most once does not retry: with the SPU gone, the error comes back.
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::ZERO)
        .delivery_semantic(DeliverySemantic::AtMostOnce)
        .build()
        .unwrap();
    let once = rill
        .topic_producer_with_config("retry", config)
        .await
        .unwrap();
    spu.stop_for_now().await;
    let err = once
        .send("k", "lost")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert!(err.is_retriable(), "a transport error: {err}");
    spu.start_again().await;
    spu.stop().await;
}

#[tokio::test]
async fn buffer_memory_makes_send_wait_instead_of_growing() {
    let mut spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin()
        .create_topic("bounded", 1, 1, &[])
        .await
        .unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::ZERO)
        .batch_size(1000)
        .max_request_size(2000)
        .buffer_memory(4000)
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("bounded", config)
        .await
        .unwrap();
    spu.stop_for_now().await;
    // With the SPU down nothing is answered: after ~4000 bytes send blocks.
    let mut sent = 0;
    let blocked = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            producer
                .send(rill::RecordKey::NULL, vec![1u8; 100])
                .await
                .unwrap();
            sent += 1;
        }
    })
    .await;
    assert!(blocked.is_err(), "send waited");
    assert!(
        sent <= 40,
        "{sent} records buffered with 4000 bytes of buffer_memory"
    );
    spu.start_again().await;
    producer.flush().await.unwrap();
    spu.stop().await;
}

#[tokio::test]
async fn at_least_once_is_idempotent_by_default() {
    let mut spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("idem", 1, 1, &[]).await.unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::from_millis(1))
        .batch_size(500)
        .build()
        .unwrap();
    assert!(config.idempotent);
    let producer = rill
        .topic_producer_with_config("idem", config)
        .await
        .unwrap();
    for i in 0..200 {
        producer
            .send(rill::RecordKey::NULL, format!("value {i:04}"))
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();
    let bad = TopicProducerConfigBuilder::default()
        .delivery_semantic(DeliverySemantic::AtMostOnce)
        .idempotent(true)
        .build();
    assert!(bad.is_err(), "idempotence needs at least once");

    let dir = spu.dir.path().join("data/idem-0");
    // Stopped but kept: dropping the TestSpu would delete its data.
    spu.stop_for_now().await;
    let log = rill_storage::PartitionLog::open(
        std::sync::Arc::new(rill_storage::FileBackend),
        dir,
        rill_storage::LogConfig::default(),
    )
    .unwrap();
    let headers = log.recent_batch_headers(10).unwrap();
    assert!(
        headers.len() > 3,
        "several batches: {} batches, log end {}",
        headers.len(),
        log.log_end_offset()
    );
    let pid = headers[0].producer_id;
    assert!(pid >= 0);
    let mut expected_seq = 0;
    for h in &headers {
        assert_eq!((h.producer_id, h.producer_epoch), (pid, 0));
        assert_eq!(h.base_sequence, expected_seq, "sequences run on");
        expected_seq += h.records_count;
    }
    assert_eq!(expected_seq, 200);
}

#[tokio::test]
async fn an_idempotent_producer_keeps_working_after_a_batch_fails_for_good() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin()
        .create_topic("gap", 1, 1, &[("max.message.bytes", "1000")])
        .await
        .unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::ZERO)
        .build()
        .unwrap();
    assert!(config.idempotent);
    let producer = rill
        .topic_producer_with_config("gap", config)
        .await
        .unwrap();
    let first = producer.send("k", "a").await.unwrap().wait().await.unwrap();
    assert_eq!(first.offset, 0);
    // Refused by the SPU for good: its sequence numbers become a gap.
    let big = producer.send("k", vec![0u8; 5000]).await.unwrap();
    assert!(matches!(
        big.wait().await.unwrap_err(),
        RillError::Broker { code: 10, .. }
    ));
    // Later records still go: the producer restarts its sequences under a
    // new producer id instead of being refused as out of order.
    let outputs = producer
        .send_all((0..20).map(|i| ("k", format!("after {i}"))))
        .await
        .unwrap();
    for (i, out) in outputs.into_iter().enumerate() {
        assert_eq!(out.wait().await.unwrap().offset, 1 + i as i64);
    }
    spu.stop().await;
}

#[tokio::test]
async fn a_topic_recreated_with_more_partitions_is_used_in_full() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    let admin = rill.admin();
    admin.create_topic("grow", 1, 1, &[]).await.unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::ZERO)
        .delivery_semantic(DeliverySemantic::AtLeastOnce(RetryPolicy {
            max_retries: 100,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(20),
            timeout: Duration::from_secs(20),
            strategy: rill::RetryStrategy::FixedDelay,
        }))
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("grow", config)
        .await
        .unwrap();
    producer
        .send(RecordKey::NULL, "one")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(producer.partition_count(), 1);
    admin.delete_topic("grow").await.unwrap();
    // Retried with UNKNOWN_TOPIC_OR_PARTITION until the topic is back.
    let pending = producer.send(RecordKey::NULL, "two").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    admin.create_topic("grow", 3, 1, &[]).await.unwrap();
    pending.wait().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while producer.partition_count() != 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the new count is seen"
        );
        producer.send(RecordKey::NULL, "probe").await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let outputs = producer
        .send_all((0..30).map(|i| (RecordKey::NULL, format!("v{i}"))))
        .await
        .unwrap();
    let mut used = std::collections::BTreeSet::new();
    for out in outputs {
        used.insert(out.wait().await.unwrap().partition);
    }
    assert_eq!(used, [0, 1, 2].into(), "round robin over all three");
    spu.stop().await;
}

#[tokio::test]
async fn every_record_is_answered_when_the_spu_is_gone() {
    let mut spu = TestSpu::start().await;
    let proxy = crate::proxy::FaultProxy::start(spu.addr).await;
    let rill = Rill::connect_to(&proxy.addr.to_string()).await.unwrap();
    rill.admin().create_topic("gone", 1, 1, &[]).await.unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::ZERO)
        .delivery_semantic(DeliverySemantic::AtMostOnce)
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("gone", config)
        .await
        .unwrap();
    // Slow answers: 5 batches in flight and more queued behind them in the
    // lane when the SPU goes away.
    proxy.delay(Duration::from_millis(300));
    let mut outputs = Vec::new();
    for i in 0..12 {
        outputs.push(
            producer
                .send(RecordKey::NULL, format!("v{i}"))
                .await
                .unwrap(),
        );
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    spu.stop_for_now().await;
    // Every record gets an answer (an error for those the SPU never
    // stored); none is left waiting behind a batch that failed to leave.
    for out in outputs {
        tokio::time::timeout(Duration::from_secs(30), out.wait())
            .await
            .expect("answered, not left waiting")
            .ok();
    }
    tokio::time::timeout(Duration::from_secs(30), producer.flush())
        .await
        .expect("flush ends")
        .unwrap();
}

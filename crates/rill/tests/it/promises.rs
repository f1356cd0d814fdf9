//! The producer's promises end to end, against a real SPU: it never stalls,
//! `flush` waits for what was sent before it, a batch too large for the
//! topic is split, and dropping the producer delivers what it holds and
//! ends its tasks.

use std::time::Duration;

use rill::{Offset, Rill, RillError, TopicProducerConfigBuilder};

use crate::spu::TestSpu;

/// A topic of `partitions` with `configs`, and a producer on it whose
/// batches linger a minute (so only the behaviour under test sends them).
async fn lingering_producer(
    rill: &Rill,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> rill::TopicProducer {
    rill.admin()
        .create_topic(topic, partitions, 1, configs)
        .await
        .unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::from_secs(60))
        .build()
        .unwrap();
    rill.topic_producer_with_config(topic, config)
        .await
        .unwrap()
}

/// Every value stored in `topic`'s `partition`, in offset order.
async fn stored(rill: &Rill, topic: &str, partition: u32) -> Vec<Vec<u8>> {
    let consumer = rill.partition_consumer(topic, partition).await.unwrap();
    let mut stream = consumer.stream(Offset::beginning()).await.unwrap();
    let mut out = Vec::new();
    while let Some(record) = stream.try_next().await.unwrap() {
        out.push(record.value.to_vec());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_partitions_keyless_with_64_kib_batches_run_to_completion() {
    // 1,000 open batches of 64 KiB need far more than the 4 MiB of buffer:
    // senders waiting for memory must make every lingering batch go, or
    // this waits for the minute-long linger.
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin()
        .create_topic("many", 1000, 1, &[])
        .await
        .unwrap();
    let config = TopicProducerConfigBuilder::default()
        .batch_size(64 * 1024)
        .linger(Duration::from_secs(60))
        .buffer_memory(4 * 1024 * 1024)
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("many", config)
        .await
        .unwrap();
    let records = 60_000;
    let run = async {
        let mut outputs = Vec::with_capacity(records);
        for i in 0..records {
            outputs.push(
                producer
                    .send(rill::RecordKey::NULL, format!("{i:0>96}"))
                    .await?,
            );
        }
        producer.flush().await?;
        let mut partitions = std::collections::HashSet::new();
        for o in outputs {
            partitions.insert(o.wait().await?.partition);
        }
        Ok::<_, RillError>(partitions.len())
    };
    let used = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the producer stalled")
        .unwrap();
    assert_eq!(used, 1000, "round-robin reached every partition");
    spu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_records_sent_before_it_not_for_idle() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("busy", 2, 1, &[]).await.unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::from_millis(200))
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("busy", config)
        .await
        .unwrap();
    // Another clone never stops sending: the producer is never idle.
    let busy = producer.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_busy = stop.clone();
    let background = tokio::spawn(async move {
        let mut n = 0u64;
        while !stop_busy.load(std::sync::atomic::Ordering::Relaxed) {
            busy.send("busy", n.to_string()).await.unwrap();
            n += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mine = producer.send("mine", "before the flush").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), producer.flush())
        .await
        .expect("flush waited for the other clone's records too")
        .unwrap();
    assert!(
        mine.try_wait().is_some(),
        "flush returned before the record was answered"
    );
    mine.wait().await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    background.await.unwrap();
    spu.stop().await;
}

#[tokio::test]
async fn a_batch_too_large_for_the_topic_is_split_and_stored_in_order() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    // The topic takes batches of at most 2,000 bytes; the producer makes
    // them up to 16 KiB.
    let producer = lingering_producer(&rill, "small", 1, &[("max.message.bytes", "2000")]).await;
    let mut outputs = Vec::new();
    for i in 0..100u32 {
        outputs.push(
            producer
                .send(rill::RecordKey::NULL, format!("{i:0>100}"))
                .await
                .unwrap(),
        );
    }
    producer.flush().await.unwrap();
    for (i, o) in outputs.into_iter().enumerate() {
        let md = o.wait().await.unwrap();
        assert_eq!(md.offset, i as i64, "in order, each stored once");
    }
    let values = stored(&rill, "small", 0).await;
    let expected: Vec<Vec<u8>> = (0..100u32)
        .map(|i| format!("{i:0>100}").into_bytes())
        .collect();
    assert_eq!(values, expected);
    spu.stop().await;
}

#[tokio::test]
async fn dropping_the_producer_and_client_delivers_what_they_held_and_ends_their_tasks() {
    let spu = TestSpu::start().await;
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let before = tasks();
    {
        let rill = Rill::connect_to(&spu.addr()).await.unwrap();
        let producer = lingering_producer(&rill, "dropped", 3, &[]).await;
        for i in 0..300u32 {
            producer
                .send(rill::RecordKey::NULL, i.to_string())
                .await
                .unwrap();
        }
        assert!(tasks() > before, "the producer runs tasks");
        // Neither flushed nor closed: dropped with every record lingering.
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks() > before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "{} tasks still alive, {before} before",
        tasks()
    );
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    let mut total = 0;
    for p in 0..3 {
        total += stored(&rill, "dropped", p).await.len();
    }
    assert_eq!(total, 300, "what the dropped producer held was delivered");
    spu.stop().await;
}

#[tokio::test]
async fn byte_string_literals_are_keys_and_metadata_has_fluvios_names() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("names", 4, 1, &[]).await.unwrap();
    let producer = rill.topic_producer("names").await.unwrap();
    let md = producer
        .send(b"key", "value")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let by_str = producer
        .send("key", "value")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(
        md.partition_id(),
        by_str.partition_id(),
        "b\"key\" and \"key\" are one key"
    );
    assert_eq!(md.offset() + 1, by_str.offset());
    spu.stop().await;
}

use std::time::Duration;

use rill::{ConsumerConfig, Offset, RecordKey, Rill, TopicProducerConfigBuilder};

use crate::spu::TestSpu;

/// Value i: its index in decimal, padded to a size that cycles from 10 B to
/// 2 MiB (a few large ones among many small).
fn value(i: usize) -> Vec<u8> {
    let size = match i % 50 {
        0 => 2 * 1024 * 1024,
        1..=5 => 64 * 1024,
        n => 10 + n * 7,
    };
    let mut v = format!("{i}:").into_bytes();
    v.resize(size.max(v.len()), b'x');
    v
}

#[tokio::test]
async fn every_offset_exactly_once_in_order_with_mixed_sizes() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin()
        .create_topic("mixed", 1, 1, &[("max.message.bytes", "4194304")])
        .await
        .unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::from_millis(2))
        .max_request_size(4 * 1024 * 1024)
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("mixed", config)
        .await
        .unwrap();
    const N: usize = 2_000;
    for i in 0..N {
        producer.send(RecordKey::NULL, value(i)).await.unwrap();
    }
    producer.flush().await.unwrap();

    // max_bytes smaller than the largest batches: they still come whole.
    let consumer = rill
        .partition_consumer_with_config(
            "mixed",
            0,
            ConsumerConfig {
                max_bytes: 100_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut stream = consumer.stream(Offset::beginning()).await.unwrap();
    for i in 0..N {
        let r = stream.next().await.unwrap();
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.len(), value(i).len(), "offset {i}");
        assert!(r.value.starts_with(format!("{i}:").as_bytes()));
    }
    assert_eq!(stream.try_next().await.unwrap(), None, "nothing more");
    spu.stop().await;
}

#[tokio::test]
async fn start_positions() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("pos", 2, 1, &[]).await.unwrap();
    let producer = rill.topic_producer("pos").await.unwrap();
    for i in 0..10 {
        // "21" hashes to partition 0 of 2 (1173551340 is even).
        producer.send("21", format!("v{i}")).await.unwrap();
    }
    producer.flush().await.unwrap();
    let consumer = rill.partition_consumer("pos", 0).await.unwrap();
    let mut s = consumer.stream(Offset::absolute(7).unwrap()).await.unwrap();
    assert_eq!(s.next().await.unwrap().value, "v7");
    let mut s = consumer.stream(Offset::from_end(3)).await.unwrap();
    assert_eq!(s.next().await.unwrap().offset, 7);
    let mut s = consumer.stream(Offset::from_end(100)).await.unwrap();
    assert_eq!(
        s.next().await.unwrap().offset,
        0,
        "clamped to the beginning"
    );
    let mut s = consumer.stream(Offset::end()).await.unwrap();
    assert_eq!(
        s.try_next().await.unwrap(),
        None,
        "only new records from the end"
    );
    producer
        .send("21", "new")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let r = s.next().await.unwrap();
    assert_eq!((r.offset, r.value.as_ref()), (10, &b"new"[..]));
    assert_eq!(r.key.as_deref(), Some(&b"21"[..]));
    assert!(Offset::absolute(-1).is_err());
    assert!(
        rill.partition_consumer("pos", 5).await.is_err(),
        "no partition 5"
    );
    spu.stop().await;
}

#[tokio::test]
async fn one_consumer_reads_every_partition_in_order() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("multi", 4, 1, &[]).await.unwrap();
    let producer = rill.topic_producer("multi").await.unwrap();
    for i in 0..1000 {
        producer
            .send(format!("k{}", i % 17), format!("{i}"))
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();
    let mut stream = rill
        .consumer(
            "multi",
            None,
            Offset::beginning(),
            ConsumerConfig::default(),
        )
        .await
        .unwrap();
    let mut last = std::collections::HashMap::new();
    let mut values = Vec::new();
    while let Some(r) = stream.try_next().await.unwrap() {
        let prev = last.insert(r.partition, r.offset);
        assert_eq!(
            r.offset,
            prev.map_or(0, |p| p + 1),
            "partition {} in order, no gap",
            r.partition
        );
        values.push(
            String::from_utf8(r.value.to_vec())
                .unwrap()
                .parse::<usize>()
                .unwrap(),
        );
    }
    assert_eq!(last.len(), 4, "every partition had records");
    values.sort_unstable();
    assert_eq!(values, (0..1000).collect::<Vec<_>>(), "every record once");
    // Only some partitions.
    let mut two = rill
        .consumer(
            "multi",
            Some(&[1, 3]),
            Offset::beginning(),
            ConsumerConfig::default(),
        )
        .await
        .unwrap();
    let first = two.next().await.unwrap();
    assert!(first.partition == 1 || first.partition == 3);
    assert!(rill
        .consumer(
            "multi",
            Some(&[9]),
            Offset::beginning(),
            ConsumerConfig::default()
        )
        .await
        .is_err());
    spu.stop().await;
}

/// Issue 4's consumer check: 300,000 records from 10 B to 2 MiB read back,
/// every offset exactly once, in order. Sizes: 2 MiB every 10,000th record,
/// 64 KiB every 1,000th, 10-200 B otherwise (about 110 MB in all).
#[tokio::test]
async fn three_hundred_thousand_mixed_records_none_skipped() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin()
        .create_topic("bulk", 1, 1, &[("max.message.bytes", "4194304")])
        .await
        .unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::from_millis(5))
        .batch_size(64 * 1024)
        .max_request_size(4 * 1024 * 1024)
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("bulk", config)
        .await
        .unwrap();
    const N: usize = 300_000;
    let size = |i: usize| match i {
        i if i % 10_000 == 0 => 2 * 1024 * 1024,
        i if i % 1_000 == 0 => 64 * 1024,
        i => 10 + (i * 31) % 191,
    };
    for i in 0..N {
        let mut v = (i as u32).to_be_bytes().to_vec();
        v.resize(size(i), (i % 251) as u8);
        producer.send(RecordKey::NULL, v).await.unwrap();
    }
    producer.flush().await.unwrap();
    let consumer = rill
        .partition_consumer_with_config(
            "bulk",
            0,
            ConsumerConfig {
                max_bytes: 256 * 1024,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut stream = consumer.stream(Offset::beginning()).await.unwrap();
    for i in 0..N {
        let r = stream.next().await.unwrap();
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.len(), size(i), "offset {i}");
        assert_eq!(&r.value[..4], &(i as u32).to_be_bytes());
    }
    assert_eq!(stream.try_next().await.unwrap(), None);
    spu.stop().await;
}

#[tokio::test]
async fn headers_travel_with_the_record() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("hdr", 1, 1, &[]).await.unwrap();
    let producer = rill.topic_producer("hdr").await.unwrap();
    producer
        .send_with_headers("k", "v", &[("trace-id", b"abc"), ("empty", b"")])
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let consumer = rill.partition_consumer("hdr", 0).await.unwrap();
    let r = consumer
        .stream(Offset::beginning())
        .await
        .unwrap()
        .next()
        .await
        .unwrap();
    let headers: Vec<(String, Vec<u8>)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default().to_vec()))
        .collect();
    assert_eq!(
        headers,
        vec![
            ("trace-id".into(), b"abc".to_vec()),
            ("empty".into(), Vec::new())
        ]
    );
    spu.stop().await;
}

#[tokio::test]
async fn consumers_are_futures_streams() {
    use futures_core::Stream;
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin()
        .create_topic("streamed", 1, 1, &[])
        .await
        .unwrap();
    let producer = rill.topic_producer("streamed").await.unwrap();
    for i in 0..20 {
        producer
            .send(RecordKey::NULL, format!("{i}"))
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();
    let consumer = rill.partition_consumer("streamed", 0).await.unwrap();
    let mut stream = consumer
        .stream(Offset::beginning())
        .await
        .unwrap()
        .into_stream();
    let mut got = Vec::new();
    while got.len() < 20 {
        let item = std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx)).await;
        let r = item.expect("the stream does not end").unwrap();
        got.push(String::from_utf8(r.value.to_vec()).unwrap());
    }
    assert_eq!(got, (0..20).map(|i| i.to_string()).collect::<Vec<_>>());
    spu.stop().await;
}

#[tokio::test]
async fn next_buffered_hands_over_only_what_a_fetch_brought() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    rill.admin().create_topic("buf", 1, 1, &[]).await.unwrap();
    let producer = rill.topic_producer("buf").await.unwrap();
    for i in 0..10 {
        producer
            .send(RecordKey::NULL, format!("r{i}"))
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();

    let consumer = rill.partition_consumer("buf", 0).await.unwrap();
    let mut stream = consumer.stream(Offset::beginning()).await.unwrap();
    assert!(stream.next_buffered().is_none(), "nothing fetched yet");
    assert_eq!(stream.next().await.unwrap().offset, 0);
    let rest: Vec<i64> = std::iter::from_fn(|| stream.next_buffered())
        .map(|r| r.offset)
        .collect();
    assert_eq!(
        rest,
        (1..10).collect::<Vec<_>>(),
        "one fetch brought all ten"
    );
    assert!(stream.next_buffered().is_none());
    assert_eq!(stream.next_offset(), 10);
    spu.stop().await;
}

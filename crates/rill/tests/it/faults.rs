//! Delivery guarantees under network faults, through [`FaultProxy`].

use std::collections::HashMap;
use std::time::Duration;

use rill::{
    ConsumerConfig, DeliverySemantic, Offset, RecordKey, RetryPolicy, RetryStrategy, Rill,
    TopicProducerConfigBuilder,
};

use crate::proxy::FaultProxy;
use crate::spu::TestSpu;

const N: usize = 600;

fn retrying() -> RetryPolicy {
    RetryPolicy {
        max_retries: 50,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        timeout: Duration::from_secs(60),
        strategy: RetryStrategy::FixedDelay,
    }
}

/// How many times each value was stored, and the values in offset order,
/// read straight from the SPU.
async fn stored(spu: &TestSpu, topic: &str) -> (HashMap<usize, usize>, Vec<usize>) {
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    let mut stream = rill
        .consumer(topic, None, Offset::beginning(), ConsumerConfig::default())
        .await
        .unwrap();
    let mut counts = HashMap::new();
    let mut order = Vec::new();
    while let Some(r) = stream.try_next().await.unwrap() {
        let v: usize = std::str::from_utf8(&r.value).unwrap().parse().unwrap();
        *counts.entry(v).or_insert(0) += 1;
        order.push(v);
    }
    (counts, order)
}

/// Stored counts, stored order, records acknowledged, answers dropped.
type Outcome = (HashMap<usize, usize>, Vec<usize>, usize, u64);

async fn run(semantic: DeliverySemantic, idempotent: bool, topic: &str) -> Outcome {
    let spu = TestSpu::start().await;
    let proxy = FaultProxy::start(spu.addr).await;
    let rill = Rill::connect_to(&proxy.addr.to_string()).await.unwrap();
    rill.admin().create_topic(topic, 1, 1, &[]).await.unwrap();
    let mut builder = TopicProducerConfigBuilder::default();
    builder
        .linger(Duration::from_millis(1))
        .batch_size(200)
        .delivery_semantic(semantic);
    if matches!(semantic, DeliverySemantic::AtLeastOnce(_)) {
        builder.idempotent(idempotent);
    }
    let producer = rill
        .topic_producer_with_config(topic, builder.build().unwrap())
        .await
        .unwrap();
    // From here on every 5th answer is lost after the SPU served it.
    proxy.drop_every_nth_answer(5);
    let mut outputs = Vec::new();
    for i in 0..N {
        outputs.push(producer.send(RecordKey::NULL, i.to_string()).await.unwrap());
    }
    let mut acknowledged = 0;
    let mut first_errors = Vec::new();
    for out in outputs {
        match out.wait().await {
            Ok(_) => acknowledged += 1,
            Err(e) if first_errors.len() < 3 => first_errors.push(e.to_string()),
            Err(_) => {}
        }
    }
    if !first_errors.is_empty() {
        eprintln!("first errors: {first_errors:?}");
    }
    proxy.heal();
    let dropped = proxy.dropped();
    let (counts, order) = stored(&spu, topic).await;
    spu.stop().await;
    (counts, order, acknowledged, dropped)
}

#[tokio::test]
async fn idempotent_at_least_once_stores_every_record_exactly_once_in_order() {
    let (counts, order, acked, dropped) =
        run(DeliverySemantic::AtLeastOnce(retrying()), true, "exact").await;
    assert_eq!(
        order,
        (0..N).collect::<Vec<_>>(),
        "exactly once, in send order"
    );
    assert!(dropped > 0, "the proxy did drop answers");
    assert_eq!(acked, N, "every record acknowledged");
    assert_eq!(counts.len(), N, "nothing lost");
    assert!(
        counts.values().all(|c| *c == 1),
        "nothing duplicated: {:?}",
        counts
            .iter()
            .filter(|(_, c)| **c > 1)
            .take(5)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn at_least_once_without_idempotence_loses_nothing() {
    let (counts, _, acked, dropped) =
        run(DeliverySemantic::AtLeastOnce(retrying()), false, "atleast").await;
    assert!(dropped > 0);
    assert_eq!(acked, N);
    assert_eq!(counts.len(), N, "every record stored at least once");
}

#[tokio::test]
async fn at_most_once_never_duplicates() {
    let (counts, _, acked, dropped) = run(DeliverySemantic::AtMostOnce, false, "atmost").await;
    assert!(dropped > 0);
    assert!(counts.values().all(|c| *c == 1), "never twice");
    assert!(acked <= counts.len(), "everything acknowledged is stored");
}

#[tokio::test]
async fn a_blackholed_spu_times_out_then_delivery_resumes_when_healed() {
    let spu = TestSpu::start().await;
    let proxy = FaultProxy::start(spu.addr).await;
    let rill = Rill::connect_to(&proxy.addr.to_string()).await.unwrap();
    rill.admin().create_topic("hole", 1, 1, &[]).await.unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::ZERO)
        .timeout(Duration::from_millis(200))
        .delivery_semantic(DeliverySemantic::AtLeastOnce(retrying()))
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("hole", config)
        .await
        .unwrap();
    proxy.delay(Duration::from_millis(20));
    assert_eq!(
        producer
            .send("k", "slow")
            .await
            .unwrap()
            .wait()
            .await
            .unwrap()
            .offset,
        0
    );
    proxy.blackhole();
    let pending = producer.send("k", "held").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.heal();
    let md = pending.wait().await.unwrap();
    assert_eq!(md.offset, 1, "delivered once, after the heal");
    spu.stop().await;
    drop(proxy);
}

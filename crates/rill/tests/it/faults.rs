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

/// What a faulty run left behind.
struct Outcome {
    /// How often each value was stored.
    counts: HashMap<usize, usize>,
    /// Stored values in offset order.
    order: Vec<usize>,
    acknowledged: usize,
    /// Answers the proxy cut.
    dropped: u64,
    /// The most requests in flight at once on one connection.
    max_outstanding: u64,
}

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
    let max_outstanding = proxy.max_outstanding();
    let (counts, order) = stored(&spu, topic).await;
    spu.stop().await;
    Outcome {
        counts,
        order,
        acknowledged,
        dropped,
        max_outstanding,
    }
}

#[tokio::test]
async fn idempotent_at_least_once_stores_every_record_exactly_once_in_order() {
    let Outcome {
        counts,
        order,
        acknowledged: acked,
        dropped,
        max_outstanding,
    } = run(DeliverySemantic::AtLeastOnce(retrying()), true, "exact").await;
    assert!(
        (2..=5).contains(&max_outstanding),
        "idempotence pipelines up to 5 batches per partition: {max_outstanding}"
    );
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
    let Outcome {
        counts,
        order,
        acknowledged: acked,
        dropped,
        max_outstanding,
    } = run(DeliverySemantic::AtLeastOnce(retrying()), false, "atleast").await;
    assert!(dropped > 0);
    assert_eq!(max_outstanding, 1, "one batch at a time keeps order");
    let mut seen = std::collections::HashSet::new();
    let first_copies: Vec<usize> = order.into_iter().filter(|v| seen.insert(*v)).collect();
    assert_eq!(
        first_copies,
        (0..N).collect::<Vec<_>>(),
        "order kept under retry"
    );
    assert_eq!(acked, N);
    assert_eq!(counts.len(), N, "every record stored at least once");
}

#[tokio::test]
async fn at_most_once_never_duplicates() {
    let Outcome {
        counts,
        acknowledged: acked,
        dropped,
        max_outstanding,
        ..
    } = run(DeliverySemantic::AtMostOnce, false, "atmost").await;
    assert!(dropped > 0);
    assert!(
        (2..=5).contains(&max_outstanding),
        "pipelined: {max_outstanding}"
    );
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

/// Sends one record through a proxy that cuts every Produce request, and
/// gives the producer's error and the gaps between its attempts.
async fn attempts_under(policy: RetryPolicy, topic: &str) -> (rill::RillError, Vec<Duration>) {
    let spu = TestSpu::start().await;
    let proxy = FaultProxy::start(spu.addr).await;
    let rill = Rill::connect_to(&proxy.addr.to_string()).await.unwrap();
    rill.admin().create_topic(topic, 1, 1, &[]).await.unwrap();
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::ZERO)
        .delivery_semantic(DeliverySemantic::AtLeastOnce(policy))
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config(topic, config)
        .await
        .unwrap();
    proxy.cut_produce();
    let err = producer
        .send("k", "v")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    let times = proxy.take_cut_times();
    spu.stop().await;
    (err, times.windows(2).map(|w| w[1] - w[0]).collect())
}

#[tokio::test]
async fn retries_wait_the_documented_delays_then_give_up() {
    // The seed example's policy: 10, 100, 1000, 2000, 2000 ms.
    let policy = RetryPolicy {
        max_retries: 5,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        strategy: RetryStrategy::ExponentialBackoff,
    };
    let (err, gaps) = attempts_under(policy, "delays").await;
    match &err {
        rill::RillError::RetriesExhausted { attempts, last, .. } => {
            assert_eq!(*attempts, 6, "1 attempt + 5 retries: {err}");
            assert!(
                last.is_retriable(),
                "the last attempt's transport error: {err}"
            );
        }
        other => panic!("expected the retries to run out, got {other}"),
    }
    assert!(
        err.to_string().contains("delays-0"),
        "names the partition: {err}"
    );
    let expected = [10, 100, 1000, 2000, 2000].map(Duration::from_millis);
    assert_eq!(
        gaps.len(),
        expected.len(),
        "1 attempt + 5 retries: {gaps:?}"
    );
    for (gap, want) in gaps.iter().zip(expected) {
        // Never early; late only by a reconnect on loopback (and a busy
        // machine), far less than the next step of the sequence.
        assert!(
            *gap >= want && *gap < want + Duration::from_millis(400),
            "gap {gap:?}, policy delay {want:?}: {gaps:?}"
        );
    }
}

#[tokio::test]
async fn the_retry_timeout_bounds_all_attempts() {
    // 10 ms, 100 ms fit in 500 ms; 1000 ms would not: 3 attempts.
    let policy = RetryPolicy {
        max_retries: 5,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
        timeout: Duration::from_millis(500),
        strategy: RetryStrategy::ExponentialBackoff,
    };
    let started = std::time::Instant::now();
    let (_, gaps) = attempts_under(policy, "bounded").await;
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn five_batches_in_flight_to_a_hung_spu_end_within_the_policy_timeout() {
    let spu = TestSpu::start().await;
    let proxy = FaultProxy::start(spu.addr).await;
    let rill = Rill::connect_to(&proxy.addr.to_string()).await.unwrap();
    rill.admin().create_topic("hung", 1, 1, &[]).await.unwrap();
    // One attempt may wait 200 ms + 5 s for its answer; the policy allows
    // each batch 2 s in all.
    let policy = RetryPolicy {
        max_retries: 5,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        strategy: RetryStrategy::ExponentialBackoff,
    };
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::ZERO)
        .timeout(Duration::from_millis(200))
        .delivery_semantic(DeliverySemantic::AtLeastOnce(policy))
        .build()
        .unwrap();
    let producer = rill
        .topic_producer_with_config("hung", config)
        .await
        .unwrap();
    proxy.hang_open_connections();
    let started = std::time::Instant::now();
    let mut outputs = Vec::new();
    for i in 0..5 {
        outputs.push(producer.send("k", format!("held {i}")).await.unwrap());
    }
    for output in outputs {
        let err = output.wait().await.unwrap_err();
        assert!(
            matches!(&err, rill::RillError::Timeout { what, .. } if what.contains("hung-0")),
            "{err}"
        );
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(3500),
        "every batch ended by its 2 s timeout, attempt included: {took:?}"
    );
    // The connection whose requests timed out is not used again: the
    // hung one would never answer, a new one does at once.
    let connections = proxy.accepted();
    let after = std::time::Instant::now();
    let md = producer
        .send("k", "after")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(
        after.elapsed() < Duration::from_secs(1),
        "{:?}",
        after.elapsed()
    );
    assert_eq!(proxy.accepted(), connections + 1, "one new connection");
    assert_eq!(
        md.offset, 5,
        "the hung connection's batches were stored, then this"
    );
    spu.stop().await;
}

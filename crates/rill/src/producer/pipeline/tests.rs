//! The pipeline's promises, on made-up instants: no sockets, no sleeping.

use std::time::{Duration, Instant};

use rill_protocol::{BatchHeader, Compression, NewRecord, RecordBatchBuilder};

use super::*;
use crate::producer::{RetryPolicy, RetryStrategy};

/// A batch's token: the numbers of its records.
#[derive(Debug, PartialEq, Eq)]
struct Records(Vec<u32>);

impl Completion for Records {
    fn split_at(self, records: usize) -> (Self, Self) {
        let mut first = self.0;
        let second = first.split_off(records);
        (Records(first), Records(second))
    }
}

const MS: Duration = Duration::from_millis(1);
const REQUEST_TIMEOUT: Duration = Duration::from_millis(6_500);

fn documented_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 5,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        strategy: RetryStrategy::ExponentialBackoff,
    }
}

fn config(policy: Option<RetryPolicy>, idempotent: bool) -> PipelineConfig {
    PipelineConfig {
        topic: "t".into(),
        partition: 3,
        policy,
        idempotent,
        max_in_flight: 5,
        request_timeout: REQUEST_TIMEOUT,
        max_request_size_bytes: 1 << 20,
    }
}

fn idempotent() -> PartitionPipeline<Records> {
    PartitionPipeline::new(config(Some(documented_policy()), true), Some((7, 0)))
}

/// A batch of the records numbered `ids`.
fn batch(ids: std::ops::Range<u32>) -> Batch<Records> {
    let mut builder = RecordBatchBuilder::new(Compression::Lz4);
    for id in ids.clone() {
        builder
            .push(&NewRecord::new(
                None,
                &id.to_be_bytes(),
                1_000 + i64::from(id),
            ))
            .unwrap();
    }
    Batch::new(builder, ids.len(), 100, Records(ids.collect()))
}

/// (producer id, base sequence, record count) of a transmitted batch.
fn identity(t: &Transmit) -> (i64, i32, i32) {
    let h = BatchHeader::parse(&t.records).unwrap();
    (h.producer_id, h.base_sequence, h.records_count)
}

/// Every finished batch so far: its records and result.
fn done(p: &mut PartitionPipeline<Records>) -> Vec<(Vec<u32>, Result<i64, RillError>)> {
    let mut out = Vec::new();
    while let Some(e) = p.poll_event() {
        if let Event::Done { token, result, .. } = e {
            out.push((token.0, result));
        }
    }
    out
}

/// Every finished batch so far, all delivered: its records and base offset.
fn delivered(p: &mut PartitionPipeline<Records>) -> Vec<(Vec<u32>, i64)> {
    done(p)
        .into_iter()
        .map(|(records, r)| (records, r.unwrap_or_else(|e| panic!("{e}"))))
        .collect()
}

fn events(p: &mut PartitionPipeline<Records>) -> Vec<String> {
    std::iter::from_fn(|| p.poll_event())
        .map(|e| match e {
            Event::Done { token, result, .. } => format!("done {:?} {}", token.0, result.is_ok()),
            Event::RefreshMetadata => "refresh".into(),
            Event::NeedProducerId => "producer id".into(),
            Event::DropConnection => "drop connection".into(),
        })
        .collect()
}

fn transport() -> RillError {
    RillError::transport("spu", std::io::ErrorKind::ConnectionReset, "reset")
}

/// Sends one batch that fails with a transport error at every attempt, at
/// once; gives the gaps between attempts and the final error.
fn gaps_under(policy: RetryPolicy) -> (Vec<Duration>, RillError) {
    let mut p = PartitionPipeline::new(config(Some(policy), true), Some((7, 0)));
    p.enqueue(batch(0..1));
    let mut now = Instant::now();
    let mut sent = Vec::new();
    loop {
        if let Some(t) = p.poll_transmit(now) {
            sent.push(now);
            p.on_transport_error(now, t.attempt, transport());
        }
        if let Some((_, Err(e))) = done(&mut p).pop() {
            return (sent.windows(2).map(|w| w[1] - w[0]).collect(), e);
        }
        now = p.poll_timeout().expect("a retry is due");
        p.handle_timeout(now);
    }
}

#[test]
fn the_documented_example_waits_exactly_10_100_1000_2000_2000_ms() {
    let (gaps, error) = gaps_under(documented_policy());
    assert_eq!(gaps, [10, 100, 1000, 2000, 2000].map(|n| n * MS));
    assert!(
        matches!(error, RillError::RetriesExhausted { attempts: 6, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("t-3"),
        "names the partition: {error}"
    );
}

#[test]
fn fibonacci_and_fixed_delays_follow_their_sequences() {
    let fibonacci = RetryPolicy {
        max_retries: 6,
        initial_delay: 10 * MS,
        max_delay: 60 * MS,
        timeout: Duration::from_secs(10),
        strategy: RetryStrategy::FibonacciBackoff,
    };
    assert_eq!(
        gaps_under(fibonacci).0,
        [10, 10, 20, 30, 50, 60].map(|n| n * MS)
    );
    let fixed = RetryPolicy {
        strategy: RetryStrategy::FixedDelay,
        max_retries: 3,
        ..fibonacci
    };
    assert_eq!(gaps_under(fixed).0, [10, 10, 10].map(|n| n * MS));
}

#[test]
fn the_timeout_bounds_a_batchs_whole_life_attempt_included() {
    // Five batches in flight to an SPU that never answers; the policy
    // allows 10 s, one attempt may wait 6.5 s for its answer.
    let mut p = idempotent();
    let t0 = Instant::now();
    for i in 0..5 {
        p.enqueue(batch(i..i + 1));
    }
    let mut now = t0;
    let mut ended = Vec::new();
    let mut drops = 0;
    while ended.len() < 5 {
        while p.poll_transmit(now).is_some() {}
        for e in events(&mut p) {
            if e == "drop connection" {
                drops += 1;
            } else if e.starts_with("done") {
                ended.push((now, e));
            }
        }
        if ended.len() == 5 {
            break;
        }
        now = p.poll_timeout().expect("something is due");
        p.handle_timeout(now);
    }
    for (at, e) in &ended {
        assert!(e.ends_with("false"), "{e}");
        assert!(
            *at - t0 <= Duration::from_secs(10),
            "ended {:?} after the first send",
            *at - t0
        );
    }
    assert_eq!(
        ended[0].0 - t0,
        Duration::from_secs(10),
        "not before its time either"
    );
    assert_eq!(
        drops, 2,
        "the timed-out connection is dropped at 6.5 s and at 10 s"
    );
}

#[test]
fn a_timed_out_request_drops_its_connection_and_its_late_answer_is_ignored() {
    let mut p = idempotent();
    let t0 = Instant::now();
    p.enqueue(batch(0..2));
    let first = p.poll_transmit(t0).unwrap();
    assert_eq!(p.poll_timeout(), Some(t0 + REQUEST_TIMEOUT));
    p.handle_timeout(t0 + REQUEST_TIMEOUT);
    assert_eq!(
        events(&mut p),
        ["drop connection", "refresh"],
        "the connection goes, and where the partition lives is asked again"
    );
    // The answer arrives after all (on the dropped connection): it must not
    // complete anything.
    p.on_answer(t0 + REQUEST_TIMEOUT + MS, first.attempt, 0, 40, None);
    assert!(events(&mut p).is_empty());
    // The retry goes after its delay, same identity, and its answer counts.
    let at = t0 + REQUEST_TIMEOUT + 10 * MS;
    assert!(p.poll_transmit(at - MS).is_none(), "not before the delay");
    let retry = p.poll_transmit(at).unwrap();
    assert_eq!(identity(&retry), identity(&first));
    p.on_answer(at, retry.attempt, DUPLICATE_SEQUENCE_NUMBER, 40, None);
    assert_eq!(delivered(&mut p), [(vec![0, 1], 40)]);
}

#[test]
fn at_most_five_in_flight_and_order_kept() {
    let mut p = idempotent();
    let now = Instant::now();
    for i in 0..7 {
        p.enqueue(batch(i * 2..i * 2 + 2));
    }
    let sent: Vec<Transmit> = std::iter::from_fn(|| p.poll_transmit(now)).collect();
    assert_eq!(sent.len(), 5);
    let seqs: Vec<i32> = sent.iter().map(|t| identity(t).1).collect();
    assert_eq!(seqs, [0, 2, 4, 6, 8]);
    p.on_answer(now, sent[0].attempt, 0, 100, None);
    let sixth = p.poll_transmit(now).unwrap();
    assert_eq!(identity(&sixth), (7, 10, 2));
    assert!(p.poll_transmit(now).is_none());
}

#[test]
fn after_a_failure_later_batches_go_again_in_order_and_echoes_spend_no_retry() {
    let policy = RetryPolicy {
        max_retries: 1,
        ..documented_policy()
    };
    let mut p = PartitionPipeline::new(config(Some(policy), true), Some((7, 0)));
    let t0 = Instant::now();
    for i in 0..3 {
        p.enqueue(batch(i..i + 1));
    }
    let round1: Vec<Transmit> = std::iter::from_fn(|| p.poll_transmit(t0)).collect();
    p.on_transport_error(t0, round1[0].attempt, transport());
    // The later ones are refused because of the gap the first left, or cut.
    p.on_answer(
        t0,
        round1[1].attempt,
        OUT_OF_ORDER_SEQUENCE_NUMBER,
        -1,
        None,
    );
    p.on_transport_error(t0, round1[2].attempt, transport());
    assert!(done(&mut p).is_empty(), "nothing failed for good");
    let t1 = t0 + 10 * MS;
    let round2: Vec<Transmit> = std::iter::from_fn(|| p.poll_transmit(t1)).collect();
    let ids: Vec<_> = round2.iter().map(identity).collect();
    assert_eq!(
        ids,
        round1.iter().map(identity).collect::<Vec<_>>(),
        "same order, same sequences"
    );
    // Batch 0 has spent its one retry; batches 1 and 2 have not.
    p.on_transport_error(t1, round2[0].attempt, transport());
    p.on_transport_error(t1, round2[1].attempt, transport());
    p.on_transport_error(t1, round2[2].attempt, transport());
    let failed = done(&mut p);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, [0]);
    let round3: Vec<Transmit> = std::iter::from_fn(|| p.poll_transmit(t1)).collect();
    assert_eq!(round3.len(), 2, "the echoes go again");
}

#[test]
fn a_batch_too_large_for_the_spu_is_split_with_its_sequences() {
    let mut p = idempotent();
    let now = Instant::now();
    p.enqueue(batch(0..5));
    p.enqueue(batch(5..6));
    let big = p.poll_transmit(now).unwrap();
    let next = p.poll_transmit(now).unwrap();
    assert_eq!(identity(&big), (7, 0, 5));
    p.on_answer(now, big.attempt, MESSAGE_TOO_LARGE, -1, None);
    p.on_answer(now, next.attempt, OUT_OF_ORDER_SEQUENCE_NUMBER, -1, None);
    let again: Vec<Transmit> = std::iter::from_fn(|| p.poll_transmit(now)).collect();
    let ids: Vec<_> = again.iter().map(identity).collect();
    assert_eq!(
        ids,
        [(7, 0, 2), (7, 2, 3), (7, 5, 1)],
        "halves first, then the echo"
    );
    p.on_answer(now, again[0].attempt, 0, 100, None);
    p.on_answer(now, again[1].attempt, 0, 102, None);
    p.on_answer(now, again[2].attempt, 0, 105, None);
    assert_eq!(
        delivered(&mut p),
        [(vec![0, 1], 100), (vec![2, 3, 4], 102), (vec![5], 105)]
    );
    // The halves' records survived the split intact.
    let records = RecordBatch::new(&again[1].records).unwrap();
    let set = records.records(1 << 20).unwrap();
    let values: Vec<Vec<u8>> = set
        .iter()
        .map(|r| r.unwrap().value.unwrap().to_vec())
        .collect();
    assert_eq!(values, [2u32, 3, 4].map(|v| v.to_be_bytes().to_vec()));
}

#[test]
fn a_single_record_too_large_fails_for_good() {
    let mut p = idempotent();
    let now = Instant::now();
    p.enqueue(batch(0..1));
    let t = p.poll_transmit(now).unwrap();
    p.on_answer(now, t.attempt, MESSAGE_TOO_LARGE, -1, None);
    let d = done(&mut p);
    assert!(
        matches!(&d[0].1, Err(RillError::Broker { code: 10, .. })),
        "{d:?}"
    );
}

#[test]
fn a_batch_whose_fate_is_unknown_is_never_renumbered() {
    // Batch 0 fails for good (non-retriable); batch 1, in flight behind it,
    // was cut: it may be stored (if batch 0 was), so it goes again under
    // its own producer id and sequence.
    let mut p = idempotent();
    let now = Instant::now();
    p.enqueue(batch(0..2));
    p.enqueue(batch(2..4));
    let a = p.poll_transmit(now).unwrap();
    let b = p.poll_transmit(now).unwrap();
    p.on_answer(now, a.attempt, 87, -1, Some("bad record".into()));
    p.on_transport_error(now, b.attempt, transport());
    assert_eq!(done(&mut p).len(), 1);
    let b_again = p.poll_transmit(now).unwrap();
    assert_eq!(
        identity(&b_again),
        identity(&b),
        "same producer id and sequence"
    );
    // Stored after all: a duplicate, answered with its first offset.
    p.on_answer(now, b_again.attempt, DUPLICATE_SEQUENCE_NUMBER, 12, None);
    assert_eq!(delivered(&mut p), [(vec![2, 3], 12)]);
    assert!(events(&mut p).is_empty(), "no new producer id was needed");
}

#[test]
fn only_batches_known_not_stored_get_a_new_producer_id() {
    let mut p = idempotent();
    let now = Instant::now();
    p.enqueue(batch(0..2));
    p.enqueue(batch(2..4));
    p.enqueue(batch(4..5));
    let a = p.poll_transmit(now).unwrap();
    let b = p.poll_transmit(now).unwrap();
    p.on_answer(now, a.attempt, 87, -1, None);
    p.on_transport_error(now, b.attempt, transport());
    done(&mut p);
    // Retried with its identity, batch 1 is refused as out of order: the
    // hole is real, so it and everything after it were never stored.
    let b_again = p.poll_transmit(now).unwrap();
    assert_eq!(identity(&b_again), identity(&b));
    p.on_answer(now, b_again.attempt, OUT_OF_ORDER_SEQUENCE_NUMBER, -1, None);
    assert_eq!(events(&mut p), ["producer id"]);
    assert!(
        p.poll_transmit(now).is_none(),
        "nothing leaves without an id"
    );
    p.on_producer_id(now, Ok((8, 0)));
    let renumbered: Vec<_> = std::iter::from_fn(|| p.poll_transmit(now))
        .map(|t| identity(&t))
        .collect();
    assert_eq!(renumbered, [(8, 0, 2), (8, 2, 1)]);
}

#[test]
fn a_later_batch_refused_because_the_first_was_is_sent_again_with_its_sequence() {
    // A partition's new leader refuses batch 0 (not yet leading), then
    // leads when batch 1 arrives: it has not met the producer, so batch 1
    // is refused too, and both go again, in order, numbered as before.
    let mut p = idempotent();
    let now = Instant::now();
    p.enqueue(batch(0..2));
    p.enqueue(batch(2..4));
    let a = p.poll_transmit(now).unwrap();
    let b = p.poll_transmit(now).unwrap();
    p.on_answer(now, a.attempt, NOT_LEADER_OR_FOLLOWER, -1, None);
    p.on_answer(now, b.attempt, UNKNOWN_PRODUCER_ID, -1, None);
    assert_eq!(events(&mut p), ["refresh"]);
    let later = now + 10 * MS;
    let again: Vec<_> = std::iter::from_fn(|| p.poll_transmit(later)).collect();
    assert_eq!(
        again.iter().map(identity).collect::<Vec<_>>(),
        [identity(&a), identity(&b)]
    );
    p.on_answer(later, again[0].attempt, 0, 0, None);
    p.on_answer(later, again[1].attempt, 0, 2, None);
    assert_eq!(delivered(&mut p), [(vec![0, 1], 0), (vec![2, 3], 2)]);
}

#[test]
fn a_producer_unknown_to_the_spu_is_renumbered_under_a_new_id() {
    let mut p = idempotent();
    let now = Instant::now();
    p.enqueue(batch(0..2));
    p.enqueue(batch(2..3));
    let a = p.poll_transmit(now).unwrap();
    p.on_answer(now, a.attempt, 0, 40, None);
    assert_eq!(delivered(&mut p), [(vec![0, 1], 40)]);
    // The SPU lost the producer's state (say, retention removed its
    // batches before a restart): nothing of batch 1 can be stored.
    let b = p.poll_transmit(now).unwrap();
    assert_eq!(identity(&b), (7, 2, 1));
    p.on_answer(now, b.attempt, UNKNOWN_PRODUCER_ID, -1, None);
    assert_eq!(events(&mut p), ["producer id"]);
    p.on_producer_id(now, Ok((8, 0)));
    let b_again = p.poll_transmit(now).unwrap();
    assert_eq!(identity(&b_again), (8, 0, 1));
}

#[test]
fn waiting_for_a_producer_id_ends_at_the_timeout() {
    let mut p = idempotent();
    let t0 = Instant::now();
    p.enqueue(batch(0..1));
    p.enqueue(batch(1..2));
    let a = p.poll_transmit(t0).unwrap();
    p.on_answer(t0, a.attempt, 87, -1, None);
    let b = p.poll_transmit(t0).unwrap();
    p.on_answer(t0, b.attempt, OUT_OF_ORDER_SEQUENCE_NUMBER, -1, None);
    assert!(events(&mut p).contains(&"producer id".to_string()));
    // The SPU is gone: every ask fails.
    let mut now = t0;
    loop {
        p.on_producer_id(now, Err(transport()));
        if let Some((_, Err(e))) = done(&mut p).pop() {
            assert!(now - t0 <= Duration::from_secs(10), "{e}");
            break;
        }
        now = p.poll_timeout().unwrap();
        p.handle_timeout(now);
    }
    assert!(p.is_idle());
}

#[test]
fn at_most_once_sends_once() {
    let mut p = PartitionPipeline::new(config(None, false), None);
    let now = Instant::now();
    p.enqueue(batch(0..1));
    let t = p.poll_transmit(now).unwrap();
    assert_eq!(identity(&t).0, -1, "no producer id");
    p.on_transport_error(now, t.attempt, transport());
    assert_eq!(done(&mut p).len(), 1);
    assert!(p.poll_transmit(now + Duration::from_secs(1)).is_none());
    assert!(p.is_idle());
}

#[test]
fn moved_partitions_ask_for_metadata() {
    let mut p = idempotent();
    let now = Instant::now();
    p.enqueue(batch(0..1));
    let t = p.poll_transmit(now).unwrap();
    p.on_answer(now, t.attempt, NOT_LEADER_OR_FOLLOWER, -1, None);
    assert_eq!(events(&mut p), ["refresh"]);
    let again = p.poll_transmit(now + 10 * MS).unwrap();
    p.on_answer(now, again.attempt, 0, 5, None);
    assert_eq!(delivered(&mut p), [(vec![0], 5)]);
}

#[test]
fn abandon_answers_everything_held() {
    let mut p = idempotent();
    let now = Instant::now();
    p.enqueue(batch(0..1));
    p.enqueue(batch(1..2));
    p.poll_transmit(now).unwrap();
    p.abandon();
    let d = done(&mut p);
    assert_eq!(d.len(), 2);
    assert!(d
        .iter()
        .all(|(_, r)| matches!(r, Err(RillError::ProducerClosed))));
    assert!(p.is_idle());
}

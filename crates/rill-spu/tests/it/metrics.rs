//! The metrics endpoint (`--metrics-listen`): counters that follow what was
//! produced and fetched, histograms, health checks, bounds, and 200 scrapes
//! at once. Real TCP on 127.0.0.1, port 0.

use std::net::SocketAddr;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, GroupId, OffsetCommitRequest, ProduceRequest,
};
use kafka_protocol::protocol::StrBytes;
use rill_protocol::Compression;
use rill_storage::FlushPolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use rill_test_support::*;

/// An SPU serving metrics on a free port, and that port.
async fn spu_with_metrics(flush: FlushPolicy) -> (TestSpu, SocketAddr) {
    let spu = TestSpu::builder()
        .flush(flush)
        .tune(|c| c.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0))))
        .start()
        .await;
    let addr = spu
        .handle
        .as_ref()
        .and_then(|h| h.metrics_addr())
        .expect("the metrics endpoint is bound");
    assert_ne!(addr.port(), 0);
    (spu, addr)
}

/// Sends `request` as is, reads to the end: (status code, body).
async fn http_raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8(response).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    assert!(head.contains("Connection: close"), "{head}");
    (status, body.to_owned())
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: rill\r\n\r\n").as_bytes(),
    )
    .await
}

async fn scrape(addr: SocketAddr) -> String {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "a whole exposition: {body}");
    body
}

/// The value of the sample `series` (name and labels as exposed), if there.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}

fn in_partition(name: &str, topic: &str, partition: i32) -> String {
    format!("{name}{{topic=\"{topic}\",partition=\"{partition}\"}}")
}

fn produce(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1500)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

fn fetch_all(topic: &str, partition: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(i32::MAX)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])])
}

fn records(n: usize, tag: &str) -> Bytes {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("{tag}-{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    batch(&refs, 1000, Compression::None)
}

#[tokio::test]
async fn counters_rise_by_what_was_produced_and_fetched() {
    let (spu, metrics) = spu_with_metrics(FlushPolicy::Always).await;
    let mut c = spu.client().await;
    create_topic(&mut c, "m", 2, &[]).await;
    let before = scrape(metrics).await;
    let produced =
        |body: &str, p| sample(body, &in_partition("rill_produce_records_total", "m", p));
    let produced_bytes =
        |body: &str, p| sample(body, &in_partition("rill_produce_bytes_total", "m", p));
    let requests = |body: &str| sample(body, "rill_produce_request_duration_seconds_count");
    // The partition's counters exist from its opening, at zero.
    assert_eq!(produced(&before, 0), Some(0.0));
    let requests_before = requests(&before).unwrap();

    let (mut sent_records, mut sent_bytes) = (0usize, 0usize);
    for (i, n) in [5usize, 7, 1, 20].into_iter().enumerate() {
        let set = records(n, &format!("r{i}"));
        let resp = c.send(produce("m", 0, set.clone()), 9).await;
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
        sent_records += n;
        sent_bytes += set.len();
    }
    // Another partition counts apart.
    c.send(produce("m", 1, records(3, "other")), 9).await;

    let after = scrape(metrics).await;
    assert_eq!(
        produced(&after, 0).unwrap() - produced(&before, 0).unwrap(),
        sent_records as f64
    );
    assert_eq!(
        produced_bytes(&after, 0).unwrap() - produced_bytes(&before, 0).unwrap(),
        sent_bytes as f64
    );
    assert_eq!(produced(&after, 1), Some(3.0));
    // Five produce requests were timed; each histogram has its buckets,
    // and the +Inf bucket holds every observation.
    assert!(
        requests(&after).unwrap() - requests_before >= 5.0,
        "{after}"
    );
    for name in [
        "rill_produce_request_duration_seconds",
        "rill_fsync_duration_seconds",
    ] {
        let buckets = after
            .lines()
            .filter(|l| l.starts_with(&format!("{name}_bucket{{le=")))
            .count();
        assert!(buckets > 10, "{name} has buckets: {after}");
        let count = sample(&after, &format!("{name}_count")).unwrap();
        let inf = sample(&after, &format!("{name}_bucket{{le=\"+Inf\"}}")).unwrap();
        assert_eq!(count, inf, "{name}");
    }
    // Every append was fsynced (flush always).
    assert!(sample(&after, "rill_fsync_duration_seconds_count").unwrap() >= 5.0);
    // The partition's state, read at the scrape.
    let end = sample(
        &after,
        &in_partition("rill_partition_log_end_offset", "m", 0),
    );
    assert_eq!(end, Some(sent_records as f64));
    let hw = sample(
        &after,
        &in_partition("rill_partition_high_watermark", "m", 0),
    );
    assert_eq!(hw, Some(sent_records as f64));
    assert_eq!(
        sample(&after, &in_partition("rill_partition_isr_size", "m", 0)),
        Some(1.0)
    );
    let disk = sample(&after, &in_partition("rill_partition_disk_bytes", "m", 0)).unwrap();
    assert!(disk >= sent_bytes as f64, "{disk} bytes on disk");
    assert_eq!(
        sample(&after, "rill_under_replicated_partitions"),
        Some(0.0)
    );
    assert_eq!(sample(&after, "rill_connections_open"), Some(1.0));
    assert!(sample(&after, "rill_process_resident_memory_bytes").unwrap() > 1e6);
    assert!(sample(&after, "rill_process_cpu_seconds_total").unwrap() >= 0.0);

    // A consumer reads partition 0 whole.
    let resp = c.send(fetch_all("m", 0), 12).await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let fetched = p.records.as_ref().unwrap();
    assert_eq!(values(fetched).len(), sent_records);
    let consumed = scrape(metrics).await;
    let fetch_records = in_partition("rill_fetch_records_total", "m", 0);
    let fetch_bytes = in_partition("rill_fetch_bytes_total", "m", 0);
    assert_eq!(
        sample(&consumed, &fetch_records).unwrap() - sample(&after, &fetch_records).unwrap(),
        sent_records as f64
    );
    assert_eq!(
        sample(&consumed, &fetch_bytes).unwrap() - sample(&after, &fetch_bytes).unwrap(),
        fetched.len() as f64
    );
    assert!(sample(&consumed, "rill_fetch_request_duration_seconds_count").unwrap() >= 1.0);
    spu.stop().await;
}

#[tokio::test]
async fn group_lag_is_the_high_watermark_minus_the_committed_offset() {
    let (spu, metrics) = spu_with_metrics(FlushPolicy::Never).await;
    let mut c = spu.client().await;
    create_topic(&mut c, "lagging", 1, &[]).await;
    c.send(produce("lagging", 0, records(10, "x")), 9).await;
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("readers")))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name("lagging"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(4)])]);
    let r = c.send(commit, 8).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let body = scrape(metrics).await;
    let lag = sample(
        &body,
        "rill_consumer_group_lag{group=\"readers\",topic=\"lagging\",partition=\"0\"}",
    );
    assert_eq!(lag, Some(6.0), "{body}");
    spu.stop().await;
}

#[tokio::test]
async fn two_hundred_scrapes_at_once_all_answer() {
    let (spu, metrics) = spu_with_metrics(FlushPolicy::Never).await;
    let mut c = spu.client().await;
    create_topic(&mut c, "busy", 4, &[]).await;
    let scrapes: Vec<_> = (0..200)
        .map(|_| tokio::spawn(async move { get(metrics, "/metrics").await }))
        .collect();
    for scrape in scrapes {
        let (status, body) = scrape.await.unwrap();
        assert_eq!(status, 200);
        assert!(body.ends_with("# EOF\n"));
        assert_eq!(
            sample(
                &body,
                &in_partition("rill_produce_records_total", "busy", 3)
            ),
            Some(0.0)
        );
    }
    spu.stop().await;
}

#[tokio::test]
async fn health_checks_unknown_paths_methods_and_oversized_heads() {
    let (spu, metrics) = spu_with_metrics(FlushPolicy::Never).await;
    assert_eq!(get(metrics, "/health/live").await, (200, "live\n".into()));
    assert_eq!(get(metrics, "/health/ready").await, (200, "ready\n".into()));
    assert_eq!(get(metrics, "/nothing/here").await.0, 404);
    let post = http_raw(
        metrics,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(post.0, 405);
    assert_eq!(http_raw(metrics, b"nonsense\r\n\r\n").await.0, 400);
    // A head past the limit is refused, and the endpoint serves on.
    let mut huge = b"GET /metrics HTTP/1.1\r\nX-Filler: ".to_vec();
    huge.resize(rill_spu::MAX_REQUEST_HEAD_BYTES + 4096, b'a');
    huge.extend_from_slice(b"\r\n\r\n");
    assert_eq!(http_raw(metrics, &huge).await.0, 431);
    scrape(metrics).await;
    // A connection that never sends a head holds one slot, not the server.
    let _silent = TcpStream::connect(metrics).await.unwrap();
    assert_eq!(get(metrics, "/health/live").await.0, 200);
    spu.stop().await;
}

//! The console's JSON API and its static pages. Everything it knows about
//! the cluster it asks through the Kafka protocol, with the `rill` client,
//! and the SPUs' metrics endpoints (sizes on disk, SPU health).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rill::{Offset, Rill, RillError};
use serde_json::{json, Value};

use super::http::{percent_decode, Handler, Request, Response};
use super::metrics::{self, Metrics};
use super::sampler::{self, Shared};

/// Time one API call may spend talking to the cluster.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time the live tail waits for a record that is not there yet.
pub const TAIL_WAIT: Duration = Duration::from_millis(300);
/// Records the tail starts with, per partition, when it opens.
pub const TAIL_START_RECORDS: i64 = 20;
/// Records one tail answer carries at most.
pub const MAX_TAIL_RECORDS: usize = 200;
/// Bytes of a key or value shown; longer ones are cut (and marked so).
pub const MAX_SHOWN_BYTES: usize = 4096;
/// Topics and groups listed at most.
pub const MAX_LISTED: usize = 500;
/// Most partitions of a new topic, and most copies of each.
pub const MAX_NEW_PARTITIONS: i64 = 10_000;
pub const MAX_NEW_REPLICATION: i64 = 16;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The console: where the cluster is, a client once connected, and the
/// sampler's rings.
#[derive(Debug)]
pub struct Console {
    bootstrap: String,
    client: tokio::sync::Mutex<Option<Rill>>,
    metrics: Metrics,
    pub samples: Arc<Shared>,
}

/// An API failure: its status and message.
struct ApiError(u16, String);

impl From<RillError> for ApiError {
    fn from(e: RillError) -> Self {
        let status = match &e {
            RillError::TopicNotFound(_) => 404,
            RillError::Connect { .. } | RillError::Transport { .. } | RillError::Timeout { .. } => {
                502
            }
            RillError::Config(_) | RillError::RecordTooLarge { .. } => 400,
            _ => match e.code() {
                // UNKNOWN_TOPIC_OR_PARTITION, GROUP_ID_NOT_FOUND
                Some(3) | Some(69) => 404,
                // TOPIC_ALREADY_EXISTS
                Some(36) => 409,
                // INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS,
                // INVALID_REPLICATION_FACTOR, INVALID_REQUEST, INVALID_CONFIG,
                // MESSAGE_TOO_LARGE
                Some(17 | 37 | 38 | 42 | 40 | 10) => 400,
                _ => 502,
            },
        };
        ApiError(status, e.to_string())
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(400, message.into())
}

type ApiResult = Result<Response, ApiError>;

impl Handler for Console {
    async fn handle(&self, req: Request) -> Response {
        match self.route(&req).await {
            Ok(r) => r,
            Err(ApiError(status, message)) => Response::error(status, &message),
        }
    }
}

impl Console {
    pub fn new(bootstrap: String, metrics: Vec<String>) -> Self {
        Console {
            bootstrap,
            client: tokio::sync::Mutex::new(None),
            metrics: Metrics::new(metrics),
            samples: Arc::new(Shared::default()),
        }
    }

    /// The client, connecting (again) if there is none.
    async fn client(&self) -> Result<Rill, ApiError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(CLUSTER_TIMEOUT, Rill::connect_to(&self.bootstrap))
            .await
            .map_err(|_| {
                ApiError(
                    502,
                    format!(
                        "no answer from {} within {CLUSTER_TIMEOUT:?}",
                        self.bootstrap
                    ),
                )
            })??;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs `op` with the client within [`CLUSTER_TIMEOUT`]; a failure to
    /// reach the cluster drops the client so the next call reconnects.
    async fn with_client<T, F, Fut>(&self, op: F) -> Result<T, ApiError>
    where
        F: FnOnce(Rill) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let c = self.client().await?;
        let result = match tokio::time::timeout(CLUSTER_TIMEOUT, op(c)).await {
            Ok(r) => r,
            Err(_) => Err(ApiError(
                502,
                format!("the cluster did not answer within {CLUSTER_TIMEOUT:?}"),
            )),
        };
        if matches!(&result, Err(ApiError(502, _))) {
            *self.client.lock().await = None;
        }
        result
    }

    async fn route(&self, req: &Request) -> ApiResult {
        // A JSON body only: another site's page cannot send one without a
        // CORS preflight, which the console does not allow (no forged
        // topics or records from a browser that visits a hostile page).
        if req.method == "POST" && req.content_type != "application/json" {
            return Err(ApiError(
                415,
                "send the body as JSON (Content-Type: application/json)".into(),
            ));
        }
        let segments: Vec<String> = req
            .path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (req.method.as_str(), segs.as_slice()) {
            ("GET", [""]) | ("GET", ["index.html"]) => {
                Ok(Response::new(200, "text/html; charset=utf-8", INDEX_HTML))
            }
            ("GET", ["app.js"]) => Ok(Response::new(200, "text/javascript; charset=utf-8", APP_JS)),
            ("GET", ["style.css"]) => Ok(Response::new(200, "text/css; charset=utf-8", STYLE_CSS)),
            ("GET", ["favicon.ico"]) => Ok(Response::new(204, "image/x-icon", Vec::new())),
            ("GET", ["api", "cluster"]) => Ok(self.cluster().await),
            ("GET", ["api", "topics"]) => self.topics().await,
            ("POST", ["api", "topics"]) => self.create_topic(&req.body).await,
            ("GET", ["api", "topics", t]) => self.topic(t).await,
            ("GET", ["api", "topics", t, "rates"]) => Ok(self.rates(t)),
            ("GET", ["api", "topics", t, "records"]) => {
                self.tail(t, req.param("from").as_deref()).await
            }
            ("POST", ["api", "topics", t, "records"]) => self.produce(t, &req.body).await,
            ("GET", ["api", "groups"]) => self.groups().await,
            (_, ["api", ..]) | (_, ["" | "index.html" | "app.js" | "style.css"]) => {
                let known = self.route_exists(&segs);
                if known {
                    Err(ApiError(
                        405,
                        format!("{} is not allowed on {}", req.method, req.path),
                    ))
                } else {
                    Err(ApiError(404, format!("no such page or API: {}", req.path)))
                }
            }
            _ => Err(ApiError(404, format!("no such page or API: {}", req.path))),
        }
    }

    fn route_exists(&self, segs: &[&str]) -> bool {
        matches!(
            segs,
            [""] | ["index.html" | "app.js" | "style.css"]
                | ["api", "cluster" | "topics" | "groups"]
                | ["api", "topics", _]
                | ["api", "topics", _, "rates" | "records"]
        )
    }

    /// SPUs, controller and health: whether the bootstrap SPU answers.
    async fn cluster(&self) -> Response {
        let bootstrap = self.bootstrap.clone();
        let info = self
            .with_client(|c| async move { Ok(c.admin().describe_cluster().await?) })
            .await;
        let scrapes = self.metrics.scrapes().await;
        let endpoints: Vec<Value> = scrapes
            .iter()
            .map(|s| {
                json!({
                    "addr": s.addr,
                    "ready": s.ready,
                    "rss_bytes": s.value("rill_process_resident_memory_bytes"),
                    "connections_open": s.value("rill_connections_open"),
                    "under_replicated": s.value("rill_under_replicated_partitions"),
                    "error": s.error,
                })
            })
            .collect();
        let configured = self.metrics.configured();
        let mut body = match info {
            Ok(info) => json!({
                "bootstrap": bootstrap,
                "healthy": true,
                "controller": info.controller,
                "spus": info.spus.iter().map(|s| json!({"id": s.id, "addr": s.addr})).collect::<Vec<_>>(),
                "leaderless": info.leaderless.iter().map(|(t, p)| json!({"topic": t, "partition": p})).collect::<Vec<_>>(),
                "under_replicated": info.under_replicated.iter().map(|(t, p)| json!({"topic": t, "partition": p})).collect::<Vec<_>>(),
                "sample_interval_ms": sampler::SAMPLE_INTERVAL.as_millis() as u64,
            }),
            Err(ApiError(_, message)) => json!({
                "bootstrap": bootstrap,
                "healthy": false,
                "error": message,
                "spus": [],
                "leaderless": [],
                "under_replicated": [],
            }),
        };
        body["metrics_configured"] = json!(configured);
        body["metrics"] = Value::Array(endpoints);
        Response::json(200, &body)
    }

    async fn topics(&self) -> ApiResult {
        let list = self
            .with_client(|c| async move {
                let mut out = Vec::new();
                for t in c.admin().list_topics().await?.into_iter().take(MAX_LISTED) {
                    out.push(describe(&c, &t.name).await?);
                }
                Ok(out)
            })
            .await?;
        let mut list = list;
        for t in &mut list {
            self.add_sizes(t).await;
        }
        Ok(Response::json(
            200,
            &json!({ "topics": list, "metrics_configured": self.metrics.configured() }),
        ))
    }

    async fn topic(&self, topic: &str) -> ApiResult {
        let topic = topic.to_owned();
        let mut t = self
            .with_client(|c| async move { describe(&c, &topic).await })
            .await?;
        self.add_sizes(&mut t).await;
        Ok(Response::json(200, &t))
    }

    /// Fills a described topic's `size_bytes`, and each partition's, from
    /// the metrics endpoints (`rill_partition_disk_bytes`); null where no
    /// endpoint reports it.
    async fn add_sizes(&self, topic: &mut Value) {
        topic["metrics_configured"] = json!(self.metrics.configured());
        if !self.metrics.configured() {
            return;
        }
        let scrapes = self.metrics.scrapes().await;
        let name = topic["name"].as_str().unwrap_or_default().to_owned();
        let sizes = metrics::partition_bytes(&scrapes, &name);
        if sizes.is_empty() {
            return;
        }
        if let Some(parts) = topic["partitions"].as_array_mut() {
            for p in parts {
                let size = p["partition"].as_i64().and_then(|i| sizes.get(&i));
                p["size_bytes"] = json!(size);
            }
        }
        topic["size_bytes"] = json!(sizes.values().sum::<u64>());
    }

    fn rates(&self, topic: &str) -> Response {
        let rates: Vec<Value> = self
            .samples
            .rates(topic)
            .iter()
            .map(|r| json!([r.at_ms, r.produced_per_sec, r.consumed_per_sec]))
            .collect();
        Response::json(
            200,
            &json!({
                "interval_ms": sampler::SAMPLE_INTERVAL.as_millis() as u64,
                "window_ms": sampler::WINDOW.as_millis() as u64,
                "rates": rates,
            }),
        )
    }

    async fn create_topic(&self, body: &[u8]) -> ApiResult {
        let v = parse_json(body)?;
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        check_topic_name(&name)?;
        let partitions = int_field(&v, "partitions", 1, 1, MAX_NEW_PARTITIONS)?;
        let replication = int_field(&v, "replication", 1, 1, MAX_NEW_REPLICATION)?;
        let n = name.clone();
        self.with_client(|c| async move {
            c.admin()
                .create_topic(&n, partitions as i32, replication as i16, &[])
                .await?;
            Ok(())
        })
        .await?;
        Ok(Response::json(
            201,
            &json!({"name": name, "partitions": partitions, "replication": replication}),
        ))
    }

    async fn produce(&self, topic: &str, body: &[u8]) -> ApiResult {
        let v = parse_json(body)?;
        let key = match v.get("key") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone().into_bytes()),
            Some(_) => return Err(bad_request("\"key\" must be a string")),
        };
        let value = match v.get("value") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(_) => return Err(bad_request("\"value\" must be a string")),
        };
        let mut headers = Vec::new();
        match v.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for h in items {
                    let name = h.get("name").and_then(Value::as_str).unwrap_or_default();
                    if name.is_empty() {
                        return Err(bad_request("every header needs a non-empty \"name\""));
                    }
                    let value = h.get("value").and_then(Value::as_str).unwrap_or_default();
                    headers.push((name.to_owned(), value.to_owned()));
                }
            }
            Some(_) => return Err(bad_request("\"headers\" must be a list of {name, value}")),
        }
        let topic = topic.to_owned();
        let (partition, offset) = self
            .with_client(|c| async move {
                let producer = c.topic_producer(&topic).await?;
                let hs: Vec<(&str, &[u8])> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_bytes()))
                    .collect();
                let out = producer
                    .send_with_headers(key, value.as_bytes(), &hs)
                    .await?;
                producer.flush().await?;
                let meta = out.wait().await?;
                producer.close().await?;
                Ok((meta.partition_id(), meta.offset()))
            })
            .await?;
        Ok(Response::json(
            201,
            &json!({"partition": partition, "offset": offset}),
        ))
    }

    /// Records after the positions in `from` (`partition:offset,...`); with
    /// none, the last [`TAIL_START_RECORDS`] of each partition. The answer
    /// says where to go on from.
    async fn tail(&self, topic: &str, from: Option<&str>) -> ApiResult {
        let mut positions: BTreeMap<u32, Option<i64>> = BTreeMap::new();
        if let Some(from) = from.filter(|f| !f.is_empty()) {
            for pos in from.split(',') {
                let parsed = pos
                    .split_once(':')
                    .and_then(|(p, o)| Some((p.parse::<u32>().ok()?, o.parse::<i64>().ok()?)));
                let Some((p, o)) = parsed else {
                    return Err(bad_request(format!(
                        "malformed position {pos:?}: expected PARTITION:OFFSET"
                    )));
                };
                positions.insert(p, Some(o));
            }
        }
        let topic = topic.to_owned();
        let (records, next) = self
            .with_client(|c| async move {
                let partitions = c.admin().describe_topic(&topic).await?.partitions;
                let mut records = Vec::new();
                let mut next = Vec::new();
                for p in 0..partitions {
                    let consumer = c.partition_consumer(&topic, p).await?;
                    let end = consumer.stream(Offset::End).await?.next_offset();
                    let start = consumer.stream(Offset::Beginning).await?.next_offset();
                    let at = match positions.get(&p).copied().flatten() {
                        Some(o) => o.clamp(start, end),
                        None => (end - TAIL_START_RECORDS).max(start),
                    };
                    let mut at_now = at;
                    if at < end && records.len() < MAX_TAIL_RECORDS {
                        let mut stream = consumer.stream(Offset::absolute(at)?).await?;
                        let first = tokio::time::timeout(TAIL_WAIT, stream.try_next()).await;
                        let mut got = match first {
                            Ok(Ok(Some(r))) => Some(r),
                            _ => None,
                        };
                        while let Some(r) = got {
                            at_now = r.offset + 1;
                            records.push(record_json(&r));
                            if at_now >= end || records.len() >= MAX_TAIL_RECORDS {
                                break;
                            }
                            got = stream.next_buffered();
                        }
                    }
                    next.push(format!("{p}:{at_now}"));
                }
                Ok((records, next.join(",")))
            })
            .await?;
        Ok(Response::json(
            200,
            &json!({"records": records, "next": next}),
        ))
    }

    async fn groups(&self) -> ApiResult {
        let groups = self
            .with_client(|c| async move {
                let admin = c.admin();
                let mut out = Vec::new();
                for g in admin.list_groups().await?.into_iter().take(MAX_LISTED) {
                    let d = match admin.describe_group(&g.group).await {
                        Ok(d) => d,
                        // Gone since it was listed.
                        Err(e) if e.code() == Some(69) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    out.push(json!({
                        "group": d.group,
                        "state": d.state,
                        "protocol": d.protocol,
                        "members": d.members.iter().map(|m| json!({
                            "member_id": m.member_id,
                            "client_id": m.client_id,
                            "client_host": m.client_host,
                            "assignment": m.assignment,
                        })).collect::<Vec<_>>(),
                        "partitions": d.partitions.iter().map(|p| json!({
                            "topic": p.topic,
                            "partition": p.partition,
                            "committed": p.committed,
                            "log_end": p.log_end,
                            "lag": p.lag,
                            "member": p.member,
                        })).collect::<Vec<_>>(),
                    }));
                }
                Ok(out)
            })
            .await?;
        Ok(Response::json(200, &json!({ "groups": groups })))
    }

    /// One round of the sampler: each topic's produced and consumed totals.
    pub async fn sample(&self) -> Result<BTreeMap<String, (i64, i64)>, String> {
        self.with_client(|c| async move {
            let mut totals = BTreeMap::new();
            for t in c
                .admin()
                .list_topics()
                .await?
                .into_iter()
                .take(sampler::MAX_SAMPLED_TOPICS)
            {
                let mut produced = 0;
                for p in 0..t.partitions {
                    let consumer = c.partition_consumer(&t.name, p).await?;
                    produced += consumer.stream(Offset::End).await?.next_offset();
                }
                totals.insert(t.name, (produced, 0i64));
            }
            let admin = c.admin();
            for g in admin.list_groups().await?.into_iter().take(MAX_LISTED) {
                let Ok(d) = admin.describe_group(&g.group).await else {
                    continue;
                };
                for p in d.partitions {
                    if let (Some(total), Some(committed)) = (totals.get_mut(&p.topic), p.committed)
                    {
                        total.1 += committed;
                    }
                }
            }
            Ok(totals)
        })
        .await
        .map_err(|ApiError(_, m)| m)
    }
}

/// A topic's partitions with their offsets, and its retention.
async fn describe(c: &Rill, topic: &str) -> Result<Value, ApiError> {
    let d = c.admin().describe_topic(topic).await?;
    let mut partitions = Vec::new();
    let mut records = 0;
    for p in &d.partition_details {
        let (start, end) = match p.leader {
            Some(_) => {
                let consumer = c.partition_consumer(topic, p.partition).await?;
                let start = consumer.stream(Offset::Beginning).await?.next_offset();
                let end = consumer.stream(Offset::End).await?.next_offset();
                records += end - start;
                (Some(start), Some(end))
            }
            None => (None, None),
        };
        partitions.push(json!({
            "partition": p.partition,
            "leader": p.leader,
            "replicas": p.replicas,
            "isr": p.isr,
            "log_start": start,
            "log_end": end,
            "size_bytes": null,
        }));
    }
    let config = |name: &str| {
        d.configs
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, _)| v.clone())
    };
    Ok(json!({
        "name": d.name,
        "partitions": partitions,
        "records": records,
        // The SPU does not serve DescribeLogDirs: the size comes from the
        // metrics endpoints (Console::add_sizes).
        "size_bytes": null,
        "retention_ms": config("retention.ms"),
        "retention_bytes": config("retention.bytes"),
        "configs": d.configs.iter().map(|(n, v, set)| json!({"name": n, "value": v, "set": set})).collect::<Vec<_>>(),
    }))
}

fn shown(bytes: &[u8]) -> Value {
    let cut = &bytes[..bytes.len().min(MAX_SHOWN_BYTES)];
    let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
    json!({
        "text": String::from_utf8_lossy(cut),
        "hex": hex,
        "utf8": std::str::from_utf8(cut).is_ok(),
        "len": bytes.len(),
        "truncated": bytes.len() > MAX_SHOWN_BYTES,
    })
}

fn record_json(r: &rill::ConsumerRecord) -> Value {
    json!({
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "key": r.key.as_deref().map(shown),
        "value": shown(&r.value),
        "headers": r.headers.iter().map(|(k, v)| json!({
            "name": k,
            "value": v.as_deref().map(shown),
        })).collect::<Vec<_>>(),
    })
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("the body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(bad_request("the body must be a JSON object"));
    }
    Ok(v)
}

/// Kafka's rule: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(bad_request("the topic needs a name"));
    }
    if name.len() > 249 {
        return Err(bad_request("a topic name has at most 249 characters"));
    }
    if name == "." || name == ".." {
        return Err(bad_request("a topic cannot be named \".\" or \"..\""));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(bad_request(format!(
            "invalid character {c:?} in topic name: use letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// An integer field from `min` to `max`, `default` when absent. Numbers
/// given as strings (from a form) are accepted.
fn int_field(v: &Value, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
    let n = match v.get(name) {
        None | Some(Value::Null) => default,
        Some(Value::String(s)) if s.trim().is_empty() => default,
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| bad_request(format!("{name} must be a whole number, not {s:?}")))?,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| bad_request(format!("{name} must be a whole number")))?,
        Some(_) => return Err(bad_request(format!("{name} must be a whole number"))),
    };
    if !(min..=max).contains(&n) {
        return Err(bad_request(format!(
            "{name} must be from {min} to {max}, not {n}"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_and_numbers_are_checked() {
        assert!(check_topic_name("orders.v2_x-1").is_ok());
        for bad in ["", ".", "..", "a b", "é", &"x".repeat(250)] {
            assert!(check_topic_name(bad).is_err(), "{bad:?}");
        }
        let v = json!({"p": "3", "q": 0, "r": "x", "s": ""});
        assert_eq!(int_field(&v, "p", 1, 1, 10).ok(), Some(3));
        assert_eq!(int_field(&v, "s", 1, 1, 10).ok(), Some(1));
        assert_eq!(int_field(&v, "missing", 2, 1, 10).ok(), Some(2));
        assert!(int_field(&v, "q", 1, 1, 10).is_err());
        assert!(int_field(&v, "r", 1, 1, 10).is_err());
    }

    #[test]
    fn long_values_are_cut_and_binary_ones_shown_in_hex() {
        let v = shown(&[0xff, 0x00, b'a']);
        assert_eq!(v["hex"], "ff0061");
        assert_eq!(v["utf8"], false);
        let long = vec![b'a'; MAX_SHOWN_BYTES + 1];
        let v = shown(&long);
        assert_eq!(v["truncated"], true);
        assert_eq!(v["len"], MAX_SHOWN_BYTES + 1);
    }
}

//! `rill topic create|list|describe|delete` and `rill partition list`
//! (`add-partitions` and `alter-config` are in `topic_change`).

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use rill::{Offset, ReplicaLogEnd, ResponseError, Rill, RillError, TopicDescription};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = ResponseError::UnknownTopicOrPartition.code();
const TOPIC_ALREADY_EXISTS: i16 = ResponseError::TopicAlreadyExists.code();

use crate::output::{self, json_array, table, Format, JsonObject};
use crate::units::{self, parse_retention, parse_size, parse_size_or_unlimited};
use crate::{usage, Global};

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    #[command(after_help = "Examples:
  rill topic create greetings
  rill topic create orders --partitions 6 --retention-time 7d --segment-size 256MiB
  rill topic create metrics -p 3 --compression-type zstd --max-partition-size 10GiB
  rill topic create blobs --max-message-bytes 8MiB
  rill topic create greetings --if-not-exists     # in scripts: fine if it is there")]
    Create(CreateArgs),
    /// List every topic.
    #[command(after_help = "Examples:
  rill topic list
  rill topic list -O json")]
    List {
        /// Output format.
        #[arg(short = 'O', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Show a topic's partitions and configs.
    #[command(after_help = "Examples:
  rill topic describe greetings
  rill topic describe greetings -O json")]
    Describe {
        /// The topic.
        name: String,
        /// Output format.
        #[arg(short = 'O', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Delete a topic and all its records.
    #[command(after_help = "Examples:
  rill topic delete greetings")]
    Delete {
        /// The topic.
        name: String,
    },
    /// Add partitions to a topic.
    AddPartitions(crate::topic_change::AddPartitionsArgs),
    /// Change a topic's configs (retention, sizes, compression).
    AlterConfig(crate::topic_change::AlterConfigArgs),
}

#[derive(Debug, Subcommand)]
pub enum PartitionCommand {
    /// List the partitions of every topic (or of one) with their offsets,
    /// replicas, in-sync replicas, and each replica's log end and lag
    /// (`replica:records`, `-` for an SPU that is down).
    #[command(after_help = "Examples:
  rill partition list
  rill partition list orders -O json")]
    List {
        /// Only this topic's partitions.
        topic: Option<String>,
        /// Output format.
        #[arg(short = 'O', long, value_enum, default_value_t)]
        output: Format,
    },
}

/// `compression.type` values a topic accepts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TopicCompression {
    /// Keep whatever codec each producer chose.
    Producer,
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The topic: letters, digits, '.', '_' and '-', at most 249.
    name: String,
    /// Number of partitions.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
    /// Copies of each partition (at most the number of SPUs).
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(i16).range(1..))]
    replication: i16,
    /// How long records are kept, e.g. 7d, 12h, 90min, or `unlimited`
    /// [default: 7d].
    #[arg(long, value_parser = parse_retention, value_name = "DURATION")]
    retention_time: Option<i64>,
    /// Size at which a partition's active segment rolls, e.g. 1GiB, 256MiB
    /// [default: 1GiB].
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    segment_size: Option<u64>,
    /// Most bytes a partition keeps; older segments are deleted past it,
    /// e.g. 10GiB, or `unlimited` [default: unlimited].
    #[arg(long, value_parser = parse_size_or_unlimited, value_name = "SIZE")]
    max_partition_size: Option<i64>,
    /// Largest record batch the topic accepts, e.g. 8MiB (Kafka's
    /// max.message.bytes) [default: 1MiB + 12B]. Producers sending records
    /// this large need `rill produce --max-request-size` as large.
    #[arg(long, value_parser = parse_message_bytes, value_name = "SIZE")]
    max_message_bytes: Option<i32>,
    /// Succeed without a change when the topic already exists (its
    /// settings are left as they are).
    #[arg(long)]
    if_not_exists: bool,
    /// Codec the topic requires of producers [default: producer].
    #[arg(long, value_enum)]
    compression_type: Option<TopicCompression>,
}

pub async fn run(cmd: TopicCommand, global: &Global) -> anyhow::Result<()> {
    let rill = global.connect().await?;
    match cmd {
        TopicCommand::Create(args) => create(&rill, args).await,
        TopicCommand::List { output } => list(&rill, output).await,
        TopicCommand::Describe { name, output } => describe(&rill, &name, output).await,
        TopicCommand::Delete { name } => {
            rill.admin().delete_topic(&name).await.map_err(not_found)?;
            output::print(&format!("topic \"{name}\" deleted\n"))
        }
        TopicCommand::AddPartitions(args) => crate::topic_change::add_partitions(&rill, args).await,
        TopicCommand::AlterConfig(args) => crate::topic_change::alter_config(&rill, args).await,
    }
}

/// An unknown topic answered as a Kafka error code, as the clearer error.
pub(crate) fn not_found(e: RillError) -> RillError {
    match e {
        RillError::Broker {
            what,
            code: UNKNOWN_TOPIC_OR_PARTITION,
            ..
        } => {
            let topic = what.split('"').nth(1).unwrap_or_default().to_owned();
            RillError::TopicNotFound(topic)
        }
        e => e,
    }
}

/// Topic names starting with this are Rill's own.
const RESERVED_PREFIX: &str = "__rill";
/// Longest name of a file or directory on the file systems Rill runs on.
const MAX_FILE_NAME_BYTES: usize = 255;
/// The SPU writes a topic's metadata to `<name>.topic.tmp` before renaming
/// it; the longest file name it makes of a topic name.
const METADATA_SUFFIX: &str = ".topic.tmp";

/// The longest topic name the SPU can store with `partitions` partitions:
/// Kafka's 249, and short enough that `<name>.topic.tmp` and the last
/// partition's directory `<name>-<partition>` fit in a file name.
pub fn max_topic_name_len(partitions: i32) -> usize {
    let last = partitions.saturating_sub(1).max(0).to_string();
    let suffix = METADATA_SUFFIX.len().max(1 + last.len());
    249.min(MAX_FILE_NAME_BYTES - suffix)
}

/// Refuses, before asking the SPU, a topic name that is reserved or too
/// long for the file names the SPU makes of it.
pub fn check_topic_name(name: &str, partitions: i32) -> anyhow::Result<()> {
    if name.starts_with(RESERVED_PREFIX) {
        usage!("topic names starting with {RESERVED_PREFIX} are reserved for Rill's own topics");
    }
    let max = max_topic_name_len(partitions);
    if name.len() > max {
        usage!(
            "the topic name is {} bytes; at most {max} fit (the SPU names files and \
             directories after the topic, and a file name holds {MAX_FILE_NAME_BYTES} bytes)",
            name.len()
        );
    }
    Ok(())
}

/// `max.message.bytes`: 1B up to 2GiB - 1 (an i32 in Kafka's configs).
fn parse_message_bytes(text: &str) -> Result<i32, String> {
    let n = parse_size(text)?;
    i32::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "must be between 1B and 2GiB".into())
}

async fn create(rill: &Rill, args: CreateArgs) -> anyhow::Result<()> {
    let mut configs: Vec<(&str, String)> = Vec::new();
    check_topic_name(&args.name, args.partitions)?;
    if let Some(ms) = args.retention_time {
        configs.push(("retention.ms", ms.to_string()));
    }
    if let Some(s) = args.segment_size {
        configs.push(("segment.bytes", s.to_string()));
    }
    if let Some(s) = args.max_partition_size {
        configs.push(("retention.bytes", s.to_string()));
    }
    if let Some(m) = args.max_message_bytes {
        configs.push(("max.message.bytes", m.to_string()));
    }
    if let Some(c) = args.compression_type {
        let value = format!("{c:?}").to_lowercase();
        configs.push(("compression.type", value));
    }
    let configs: Vec<(&str, &str)> = configs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match rill
        .admin()
        .create_topic(&args.name, args.partitions, args.replication, &configs)
        .await
    {
        Ok(()) => {}
        Err(RillError::Broker {
            code: TOPIC_ALREADY_EXISTS,
            ..
        }) if args.if_not_exists => {
            return output::print(&format!(
                "topic \"{}\" already exists (left as it is)\n",
                args.name
            ));
        }
        Err(RillError::Broker {
            code: TOPIC_ALREADY_EXISTS,
            ..
        }) => {
            bail!(
                "topic \"{}\" already exists (--if-not-exists accepts that)",
                args.name
            )
        }
        Err(e) => return Err(e.into()),
    }
    output::print(&format!(
        "topic \"{}\" created ({} partition{})\n",
        args.name,
        args.partitions,
        if args.partitions == 1 { "" } else { "s" }
    ))
}

fn config<'a>(d: &'a TopicDescription, name: &str) -> Option<&'a str> {
    d.configs
        .iter()
        .find(|(k, _, _)| k == name)
        .map(|(_, v, _)| v.as_str())
}

/// A config value as people read it: `604800000` ms as `7d`.
pub(crate) fn humane(name: &str, value: &str) -> String {
    match (name, value.parse::<i64>()) {
        ("retention.ms", Ok(ms)) => units::format_millis(ms),
        ("retention.bytes" | "segment.bytes" | "max.message.bytes", Ok(b)) => {
            units::format_bytes(b)
        }
        _ => value.to_owned(),
    }
}

async fn list(rill: &Rill, format: Format) -> anyhow::Result<()> {
    let admin = rill.admin();
    let mut topics = Vec::new();
    for t in admin.list_topics().await? {
        match admin.describe_topic(&t.name).await {
            Ok(d) => topics.push(d),
            // Deleted between the list and the describe.
            Err(RillError::TopicNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let text = match format {
        Format::Json => {
            let items = topics.iter().map(|d| {
                let mut obj = JsonObject::new()
                    .str("name", &d.name)
                    .raw("partitions", d.partitions);
                for (key, name) in [
                    ("retention_ms", "retention.ms"),
                    ("segment_bytes", "segment.bytes"),
                    ("retention_bytes", "retention.bytes"),
                ] {
                    obj = obj.raw(
                        key,
                        config(d, name)
                            .and_then(|v| v.parse::<i64>().ok())
                            .unwrap_or(-1),
                    );
                }
                obj.opt_str("compression_type", config(d, "compression.type"))
                    .finish()
            });
            json_array(items) + "\n"
        }
        Format::Table if topics.is_empty() => {
            "no topics (create one with `rill topic create NAME`)\n".into()
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = topics
                .iter()
                .map(|d| {
                    let show = |name| humane(name, config(d, name).unwrap_or("-"));
                    vec![
                        d.name.clone(),
                        d.partitions.to_string(),
                        show("retention.ms"),
                        show("segment.bytes"),
                        show("retention.bytes"),
                        show("compression.type"),
                    ]
                })
                .collect();
            table(
                &[
                    "NAME",
                    "PARTITIONS",
                    "RETENTION",
                    "SEGMENT SIZE",
                    "MAX PARTITION SIZE",
                    "COMPRESSION",
                ],
                &rows,
            )
        }
    };
    output::print(&text)
}

async fn describe(rill: &Rill, name: &str, format: Format) -> anyhow::Result<()> {
    let d = rill.admin().describe_topic(name).await?;
    let rows = offsets(rill, name, false).await?;
    let text = match format {
        Format::Json => {
            let configs = d.configs.iter().map(|(k, v, set)| {
                JsonObject::new()
                    .str("name", k)
                    .str("value", v)
                    .str("source", if *set { "topic" } else { "default" })
                    .finish()
            });
            let offsets = rows.iter().map(|r| r.json(JsonObject::new()).finish());
            JsonObject::new()
                .str("name", &d.name)
                .raw("partitions", d.partitions)
                .raw("configs", json_array(configs))
                .raw("offsets", json_array(offsets))
                .finish()
                + "\n"
        }
        Format::Table => {
            let configs: Vec<Vec<String>> = d
                .configs
                .iter()
                .map(|(k, v, set)| {
                    let shown = humane(k, v);
                    let value = if &shown == v {
                        v.clone()
                    } else {
                        format!("{v} ({shown})")
                    };
                    let source = if *set { "topic" } else { "default" };
                    vec![k.clone(), value, source.into()]
                })
                .collect();
            let offsets: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let [start, end, records] = r.offset_cells();
                    vec![
                        r.partition.to_string(),
                        r.leader_text(),
                        start,
                        end,
                        records,
                    ]
                })
                .collect();
            format!(
                "name:       {}\npartitions: {}\n\n{}\n{}",
                d.name,
                d.partitions,
                table(&["CONFIG", "VALUE", "SOURCE"], &configs),
                table(
                    &[
                        "PARTITION",
                        "LEADER",
                        "START OFFSET",
                        "END OFFSET",
                        "RECORDS"
                    ],
                    &offsets
                )
            )
        }
    };
    output::print(&text)
}

/// One partition's offsets: the first stored and the next to be written.
struct PartitionRow {
    topic: String,
    partition: u32,
    /// The leader SPU; `None` while the partition has none.
    leader: Option<i32>,
    /// First stored and next offsets; `None` when there is no leader to ask.
    offsets: Option<(i64, i64)>,
    /// The SPUs holding a copy, and those of them in sync with the leader.
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// Each replica's log end and lag behind the leader's, as its own SPU
    /// said (only asked for by `partition list`).
    replica_ends: Vec<ReplicaLogEnd>,
}

fn ids_text(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn ids_json(ids: &[i32]) -> String {
    format!("[{}]", ids_text(ids))
}

/// `replica:value` pairs for a table cell, `-` where unknown.
fn per_replica_text(ends: &[ReplicaLogEnd], value: fn(&ReplicaLogEnd) -> Option<i64>) -> String {
    ends.iter()
        .map(|e| {
            let v = value(e).map_or("-".to_owned(), |v| v.to_string());
            format!("{}:{v}", e.replica)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A JSON object from replica id (as a string key) to value, `null` where
/// unknown.
fn per_replica_json(ends: &[ReplicaLogEnd], value: fn(&ReplicaLogEnd) -> Option<i64>) -> String {
    ends.iter()
        .fold(JsonObject::new(), |o, e| {
            o.raw(
                &e.replica.to_string(),
                value(e).map_or("null".to_owned(), |v| v.to_string()),
            )
        })
        .finish()
}

impl PartitionRow {
    fn leader_text(&self) -> String {
        self.leader.map_or("none".to_owned(), |l| l.to_string())
    }

    /// Start, end and record count as table cells ("-" without a leader).
    fn offset_cells(&self) -> [String; 3] {
        match self.offsets {
            Some((start, end)) => [
                start.to_string(),
                end.to_string(),
                (end - start).to_string(),
            ],
            None => ["-".into(), "-".into(), "-".into()],
        }
    }

    /// The row's fields for JSON (`null` where unknown).
    fn json(&self, obj: JsonObject) -> JsonObject {
        let (start, end, records) = match self.offsets {
            Some((s, e)) => (s.to_string(), e.to_string(), (e - s).to_string()),
            None => ("null".into(), "null".into(), "null".into()),
        };
        let obj = obj
            .raw("partition", self.partition)
            .raw(
                "leader",
                self.leader.map_or("null".to_owned(), |l| l.to_string()),
            )
            .raw("start_offset", start)
            .raw("end_offset", end)
            .raw("records", records)
            .raw("replicas", ids_json(&self.replicas))
            .raw("isr", ids_json(&self.isr));
        // Only `partition list` asks each replica; `topic describe` does
        // not, and says nothing rather than empty maps.
        if self.replica_ends.is_empty() {
            return obj;
        }
        obj.raw(
            "replica_log_end",
            per_replica_json(&self.replica_ends, |e| e.log_end),
        )
        .raw(
            "replica_lag",
            per_replica_json(&self.replica_ends, |e| e.lag),
        )
    }
}

/// How long `partition list` and `topic describe` wait for one partition's
/// offsets before showing them as unknown.
const OFFSETS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Each partition's leader and its first stored and next offsets; a
/// partition without a leader (its SPU down) is listed without offsets
/// rather than waited for.
/// With `per_replica`, also each replica's log end and lag.
async fn offsets(rill: &Rill, topic: &str, per_replica: bool) -> anyhow::Result<Vec<PartitionRow>> {
    let details = rill.admin().describe_topic(topic).await?.partition_details;
    let mut rows = Vec::new();
    for d in details {
        let offsets = match d.leader {
            // The client has no public ListOffsets; a consumer's starting
            // position at each end gives the same two numbers. Bounded: a
            // leader that died since Metadata answered would otherwise be
            // waited for; its offsets are then shown as unknown.
            Some(_) => tokio::time::timeout(OFFSETS_WAIT, async {
                let consumer = rill.partition_consumer(topic, d.partition).await?;
                let start = consumer.stream(Offset::Beginning).await?.next_offset();
                let end = consumer.stream(Offset::End).await?.next_offset();
                Ok::<_, rill::RillError>((start, end))
            })
            .await
            .ok()
            .and_then(Result::ok),
            None => None,
        };
        let replica_ends = if per_replica {
            rill.admin().replica_log_ends(topic, &d).await
        } else {
            Vec::new()
        };
        rows.push(PartitionRow {
            topic: topic.to_owned(),
            partition: d.partition,
            leader: d.leader,
            offsets,
            replicas: d.replicas.clone(),
            isr: d.isr.clone(),
            replica_ends,
        });
    }
    Ok(rows)
}

pub async fn run_partition(cmd: PartitionCommand, global: &Global) -> anyhow::Result<()> {
    let PartitionCommand::List { topic, output } = cmd;
    let rill = global.connect().await?;
    let topics = match topic {
        Some(t) => vec![t],
        None => rill
            .admin()
            .list_topics()
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect(),
    };
    let mut rows = Vec::new();
    for topic in topics {
        rows.extend(offsets(&rill, &topic, true).await?);
    }
    let text = match output {
        Format::Json => {
            json_array(
                rows.iter()
                    .map(|r| r.json(JsonObject::new().str("topic", &r.topic)).finish()),
            ) + "\n"
        }
        Format::Table if rows.is_empty() => "no partitions (no topics yet)\n".into(),
        Format::Table => table(
            &[
                "TOPIC",
                "PARTITION",
                "LEADER",
                "START OFFSET",
                "END OFFSET",
                "RECORDS",
                "REPLICAS",
                "ISR",
                "LOG END",
                "LAG",
            ],
            &rows
                .iter()
                .map(|r| {
                    let [start, end, records] = r.offset_cells();
                    vec![
                        r.topic.clone(),
                        r.partition.to_string(),
                        r.leader_text(),
                        start,
                        end,
                        records,
                        ids_text(&r.replicas),
                        ids_text(&r.isr),
                        per_replica_text(&r.replica_ends, |e| e.log_end),
                        per_replica_text(&r.replica_ends, |e| e.lag),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    };
    output::print(&text)
}

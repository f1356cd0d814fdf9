//! `rill consume`: records of a topic to stdout, as text, a template or
//! JSON lines.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::task::Poll;
use std::time::Duration;

use anyhow::bail;
use clap::{ArgGroup, Args, ValueEnum};
use rill::{ConsumerConfig, ConsumerRecord, Offset, Rill};

use crate::output::{json_str, JsonObject};
use crate::units::parse_size;
use crate::{output, usage, watch, Global};

/// What a consumer may read (the producer's `--isolation` says when a
/// record counts as acknowledged instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadIsolation {
    /// Every record the leader has stored (default).
    #[value(name = "read_uncommitted")]
    ReadUncommitted,
    /// Only records every in-sync replica has (up to the high watermark).
    #[value(name = "read_committed")]
    ReadCommitted,
}

impl From<ReadIsolation> for rill::Isolation {
    fn from(i: ReadIsolation) -> Self {
        match i {
            ReadIsolation::ReadUncommitted => rill::Isolation::ReadUncommitted,
            ReadIsolation::ReadCommitted => rill::Isolation::ReadCommitted,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum RecordFormat {
    /// The value (with -k, `[key] value`), one record per line.
    #[default]
    Text,
    /// One JSON object per record and line.
    Json,
    /// The value's bytes exactly, no newline: for one binary record
    /// (`-n 1 -O raw > file`).
    Raw,
    /// The value in lowercase hex, one record per line.
    Hex,
    /// The value in base64 (RFC 4648, padded), one record per line.
    Base64,
}

/// RFC 4648 base64 with padding.
fn base64(bytes: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("origin").args(["beginning", "head", "tail", "start", "since", "start_time"])),
    after_help = "Examples:
  rill consume greetings                  # new records, until ctrl-c
  rill consume greetings -B -d            # everything stored, then stop
  rill consume greetings -T 10 -d -k      # the last 10 of each partition, with keys
  rill consume greetings -p 0 --start 42 --end 99
  rill consume greetings --since 1h -d    # what came in the last hour
  rill consume greetings --start-time 2026-12-01T09:00:00Z
  rill consume greetings -B -d -F '{{partition}}:{{offset}} {{time}} {{key}}={{value}}'
  rill consume greetings -B -d -O json | jq .value
  rill consume blobs --start 7 -n 1 -O raw > image.png
  rill consume greetings -B -n 1 -F '{{offset}}\\t{{headers}}\\t{{value}}'
  rill consume greetings -B | head -n 5
  rill consume greetings -G billing       # as a member of group billing: resume where it stopped
  rill consume greetings -G billing -B -d # the group's unread records (all, if it never read), then stop"
)]
pub struct ConsumeArgs {
    /// The topic.
    topic: String,
    /// Read as a member of this consumer group: the group's members share
    /// the partitions, reading resumes at the group's committed offsets, and
    /// what is printed is committed (every 5 s and on exit). Where the group
    /// has committed nothing, reading starts at the end (only new records),
    /// or at the beginning with -B.
    #[arg(
        short = 'G',
        long,
        value_name = "GROUP",
        conflicts_with_all = ["partitions", "all_partitions", "head", "tail", "start", "since", "start_time", "end"]
    )]
    group: Option<String>,
    /// Read only this partition (repeat for several).
    #[arg(short = 'p', long = "partition", value_name = "N")]
    partitions: Vec<u32>,
    /// Read every partition (what happens without -p).
    #[arg(short = 'A', long, conflicts_with = "partitions")]
    all_partitions: bool,
    /// Start at the first stored record.
    #[arg(short = 'B', long)]
    beginning: bool,
    /// Start N records after the first stored one, in each partition.
    #[arg(short = 'H', long, value_name = "N")]
    head: Option<u64>,
    /// Start N records before the end, in each partition.
    #[arg(short = 'T', long, value_name = "N")]
    tail: Option<u64>,
    /// Start at this offset (kept within what each partition stores).
    #[arg(long, value_name = "OFFSET")]
    start: Option<u64>,
    /// Start at the first record at most this long ago, in each partition
    /// (by record timestamp), e.g. 1h, 30m, 7d.
    #[arg(long, value_parser = crate::units::parse_positive_duration, value_name = "DURATION")]
    since: Option<Duration>,
    /// Start at the first record at or after this time, in each partition
    /// (by record timestamp), e.g. 2026-12-01T09:00:00Z, 2026-12-01T10:00:00+01:00,
    /// 2026-12-01 (midnight UTC). After the last record: only new records.
    #[arg(long, value_parser = crate::units::parse_rfc3339, value_name = "RFC3339")]
    start_time: Option<i64>,
    /// Stop after this offset (inclusive), in each partition.
    #[arg(long, value_name = "OFFSET")]
    end: Option<u64>,
    /// Stop after printing N records (in all).
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop at the end of what is stored now instead of waiting for more.
    #[arg(short = 'd', long)]
    disable_continuous: bool,
    /// Print the key too: `[key] value` (`[null]` for none).
    #[arg(short = 'k', long, conflicts_with_all = ["format", "output"])]
    key_value: bool,
    /// Print each record through a template with {{key}}, {{value}},
    /// {{offset}}, {{partition}}, {{time}} (RFC 3339), {{timestamp}} (ms),
    /// {{topic}} and {{headers}} (name=value,...); `\t`, `\n` and `\\`
    /// are unescaped. Each record ends with a newline.
    #[arg(short = 'F', long, conflicts_with = "output", value_parser = parse_template_arg)]
    format: Option<Template>,
    /// Output format.
    #[arg(short = 'O', long, value_enum, default_value_t)]
    output: RecordFormat,
    /// Which records may be read.
    #[arg(long, value_enum)]
    isolation: Option<ReadIsolation>,
    /// How long an unreachable SPU is tried again before giving up, e.g.
    /// 10s, 5m [default: 30s].
    #[arg(long, value_parser = crate::units::parse_positive_duration, value_name = "DURATION")]
    retry_timeout: Option<Duration>,
    /// Most bytes per fetch, e.g. 1MiB, 64KiB [default: 1MiB].
    #[arg(short = 'b', long, value_parser = parse_fetch_size, value_name = "SIZE")]
    maxbytes: Option<i32>,
}

/// Most bytes per fetch: 1B up to 2GiB - 1 (an i32 on the wire).
fn parse_fetch_size(text: &str) -> Result<i32, String> {
    let n = parse_size(text)?;
    i32::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "must be between 1B and 2GiB".into())
}

/// A parsed `-F` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

fn parse_template_arg(text: &str) -> Result<Template, String> {
    parse_template(&crate::units::unescape(text))
        .map(Template)
        .map_err(|e| e.to_string())
}

/// One piece of a `-F` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Key,
    Value,
    Offset,
    Partition,
    Time,
    Timestamp,
    Topic,
    Headers,
}

/// Splits a `-F` template; an unknown `{{name}}` is an error so a typo
/// does not print literally on every record.
fn parse_template(template: &str) -> anyhow::Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            bail!("an unclosed '{{{{' in {template:?}");
        };
        pieces.push(match after[..close].trim() {
            "key" => Piece::Key,
            "value" => Piece::Value,
            "offset" => Piece::Offset,
            "partition" => Piece::Partition,
            "time" => Piece::Time,
            "timestamp" => Piece::Timestamp,
            "topic" => Piece::Topic,
            "headers" => Piece::Headers,
            other => bail!(
                "unknown placeholder {{{{{other}}}}}; use key, value, offset, partition, time, timestamp, topic or headers"
            ),
        });
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

/// Milliseconds since the epoch as RFC 3339 UTC, e.g.
/// `2026-11-27T12:53:45.123Z`.
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// How each record is written.
enum Printer {
    Text { keys: bool },
    Template(Vec<Piece>),
    Json,
    Raw,
    Hex,
    Base64,
}

impl Printer {
    fn write(&self, topic: &str, r: &ConsumerRecord, out: &mut Vec<u8>) {
        match self {
            Printer::Text { keys } => {
                if *keys {
                    out.push(b'[');
                    out.extend_from_slice(r.key.as_deref().unwrap_or(b"null"));
                    out.extend_from_slice(b"] ");
                }
                out.extend_from_slice(&r.value);
            }
            Printer::Template(pieces) => {
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
                        Piece::Key => out.extend_from_slice(r.key.as_deref().unwrap_or(b"null")),
                        Piece::Value => out.extend_from_slice(&r.value),
                        Piece::Offset => out.extend_from_slice(r.offset.to_string().as_bytes()),
                        Piece::Partition => {
                            out.extend_from_slice(r.partition.to_string().as_bytes())
                        }
                        Piece::Time => out.extend_from_slice(rfc3339(r.timestamp).as_bytes()),
                        Piece::Timestamp => {
                            out.extend_from_slice(r.timestamp.to_string().as_bytes())
                        }
                        Piece::Topic => out.extend_from_slice(topic.as_bytes()),
                        // As kcat's %h: name=value,name=value.
                        Piece::Headers => {
                            for (i, (name, value)) in r.headers.iter().enumerate() {
                                if i > 0 {
                                    out.push(b',');
                                }
                                out.extend_from_slice(name.as_bytes());
                                if let Some(v) = value {
                                    out.push(b'=');
                                    out.extend_from_slice(v);
                                }
                            }
                        }
                    }
                }
            }
            Printer::Json => {
                // JSON strings are text: bytes that are not UTF-8 become U+FFFD.
                let mut headers = String::from("{");
                for (i, (name, value)) in r.headers.iter().enumerate() {
                    if i > 0 {
                        headers.push(',');
                    }
                    json_str(&mut headers, name);
                    headers.push(':');
                    match value {
                        Some(v) => json_str(&mut headers, &String::from_utf8_lossy(v)),
                        None => headers.push_str("null"),
                    }
                }
                headers.push('}');
                let key = r.key.as_deref().map(String::from_utf8_lossy);
                let obj = JsonObject::new()
                    .str("topic", topic)
                    .raw("partition", r.partition)
                    .raw("offset", r.offset)
                    .raw("timestamp", r.timestamp)
                    .opt_str("key", key.as_deref())
                    .str("value", &String::from_utf8_lossy(&r.value))
                    .raw("headers", headers)
                    .finish();
                out.extend_from_slice(obj.as_bytes());
            }
            Printer::Raw => {
                out.extend_from_slice(&r.value);
                return;
            }
            Printer::Hex => {
                for b in r.value.iter() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
            }
            Printer::Base64 => base64(&r.value, out),
        }
        out.push(b'\n');
    }
}

/// Resolves once stdout is a pipe whose reader has gone (`| head` is
/// done), so an idle continuous consumer ends instead of waiting for a
/// record it could not write anyway. Never resolves for files and
/// terminals, which cannot be watched or do not close.
async fn stdout_closed() {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    use tokio::io::Interest;
    use tokio::net::unix::pipe;
    // A duplicate of stdout registered only to learn its readiness; nothing
    // is written through it, so stdout itself stays blocking.
    let watched = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::fs::File::from)
        .filter(|f| f.metadata().is_ok_and(|m| m.file_type().is_fifo()))
        .and_then(|f| pipe::Sender::from_owned_fd_unchecked(f.into()).ok());
    let Some(pipe) = watched else {
        return std::future::pending().await;
    };
    loop {
        match pipe.ready(Interest::WRITABLE).await {
            Ok(ready) if ready.is_write_closed() => return,
            // Plain writability (the reader made room): clear it and wait
            // for the next change.
            Ok(_) => {
                let _ = pipe.try_io(|| Err::<(), _>(std::io::ErrorKind::WouldBlock.into()));
            }
            Err(_) => return std::future::pending().await,
        }
    }
}

/// Per partition: the first offset to print and the first not to.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: i64,
    until: Option<i64>,
}

pub async fn run(args: ConsumeArgs, global: &Global) -> anyhow::Result<()> {
    let printer = match (&args.format, args.output) {
        (Some(t), _) => Printer::Template(t.0.clone()),
        (None, RecordFormat::Json) => Printer::Json,
        (None, RecordFormat::Raw) => Printer::Raw,
        (None, RecordFormat::Hex) => Printer::Hex,
        (None, RecordFormat::Base64) => Printer::Base64,
        (None, RecordFormat::Text) => Printer::Text {
            keys: args.key_value,
        },
    };
    if let (Some(start), Some(end)) = (args.start, args.end) {
        if end < start {
            usage!("--end {end} is before --start {start}");
        }
    }
    let mut config = ConsumerConfig::default();
    if let Some(i) = args.isolation {
        config.isolation = i.into();
    }
    if let Some(b) = args.maxbytes {
        config.max_bytes = b;
    }
    let rill = global.connect().await?;
    if let Some(group) = &args.group {
        return consume_group(&rill, group, &args, config, &printer).await;
    }
    let count = match rill
        .admin()
        .list_topics()
        .await?
        .into_iter()
        .find(|t| t.name == args.topic)
    {
        Some(t) => t.partitions,
        None => return Err(rill::RillError::TopicNotFound(args.topic.clone()).into()),
    };
    let partitions: Vec<u32> = if args.partitions.is_empty() {
        (0..count).collect()
    } else {
        let mut ps = args.partitions.clone();
        ps.sort_unstable();
        ps.dedup();
        if let Some(bad) = ps.iter().find(|p| **p >= count) {
            bail!(
                "topic \"{}\" has {count} partition{}; partition {bad} does not exist",
                args.topic,
                if count == 1 { "" } else { "s" }
            );
        }
        ps
    };
    let (offset, windows) = plan(&rill, &args, &partitions, &config).await?;
    if windows
        .values()
        .all(|w| w.until.is_some_and(|u| w.from >= u))
    {
        return Ok(());
    }
    let consume =
        consume_through_outages(&rill, &args, &partitions, offset, config, &printer, windows);
    tokio::select! {
        r = consume => r,
        () = stdout_closed() => Ok(()),
    }
}

/// How often a lost SPU is tried again.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// Prints records; when the SPU cannot be reached, says so on stderr and
/// tries again every second from where it stopped, for up to the retry
/// timeout.
async fn consume_through_outages(
    rill: &Rill,
    args: &ConsumeArgs,
    partitions: &[u32],
    offset: Offset,
    config: ConsumerConfig,
    printer: &Printer,
    mut windows: HashMap<u32, Window>,
) -> anyhow::Result<()> {
    let give_up_after = args
        .retry_timeout
        .unwrap_or(crate::produce::cli_retry_policy().timeout);
    let mut progress = Progress::default();
    let mut outage: Option<(tokio::time::Instant, anyhow::Error)> = None;
    loop {
        // Where to go on: past the last record seen of every partition, or
        // where it started if a partition has shown nothing yet.
        let resume = if partitions.iter().all(|p| progress.next.contains_key(p)) {
            let min = progress.next.values().copied().min().unwrap_or(0);
            Offset::absolute(min)?
        } else {
            offset
        };
        let result = match rill
            .consumer(&args.topic, Some(partitions), resume, config.clone())
            .await
        {
            Ok(stream) => {
                if outage.take().is_some() {
                    output::eprint(&format!("SPU at {} answers again\n", rill.addr()));
                }
                print_records(stream, args, printer, &mut windows, &mut progress).await
            }
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) if watch::has_outage(&e) => {
                let since = match &outage {
                    Some((since, _)) => *since,
                    None => {
                        output::eprint(&format!(
                            "SPU at {} unreachable, retrying for up to {}s (--retry-timeout)\n",
                            rill.addr(),
                            give_up_after.as_secs()
                        ));
                        tokio::time::Instant::now()
                    }
                };
                if since.elapsed() >= give_up_after {
                    return Err(e.context(format!(
                        "SPU at {} unreachable for {}s; gave up (--retry-timeout) after printing {} records",
                        rill.addr(),
                        give_up_after.as_secs(),
                        progress.printed
                    )));
                }
                outage = Some((since, e));
                tokio::time::sleep(RECONNECT_EVERY).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What has been read so far, kept across reconnections.
#[derive(Debug, Default)]
struct Progress {
    /// Per partition, the offset after the last record the stream gave.
    next: HashMap<u32, i64>,
    printed: u64,
}

/// Where the stream starts and, per partition, which offsets to print.
async fn plan(
    rill: &Rill,
    args: &ConsumeArgs,
    partitions: &[u32],
    config: &ConsumerConfig,
) -> anyhow::Result<(Offset, HashMap<u32, Window>)> {
    let offset = match (args.beginning, args.head, args.tail) {
        (true, _, _) | (_, Some(_), _) => Offset::Beginning,
        (_, _, Some(n)) => Offset::from_end(i64::try_from(n).unwrap_or(i64::MAX)),
        _ if args.start.is_some() => Offset::Beginning,
        _ => match start_time(args)? {
            Some(ms) => Offset::Timestamp(ms),
            None => Offset::End,
        },
    };
    let needs_bounds = args.head.is_some() || args.start.is_some() || args.disable_continuous;
    let mut windows = HashMap::new();
    for &p in partitions {
        let mut window = Window {
            from: 0,
            until: args
                .end
                .map(|e| i64::try_from(e).unwrap_or(i64::MAX).saturating_add(1)),
        };
        if needs_bounds {
            let consumer = rill
                .partition_consumer_with_config(&args.topic, p, config.clone())
                .await?;
            let first = consumer.stream(Offset::Beginning).await?.next_offset();
            let last = consumer.stream(Offset::End).await?.next_offset();
            let wanted = match (args.head, args.start) {
                (Some(n), _) => first.saturating_add(i64::try_from(n).unwrap_or(i64::MAX)),
                (_, Some(s)) => i64::try_from(s).unwrap_or(i64::MAX),
                _ => first,
            };
            window.from = wanted.clamp(first, last);
            if args.disable_continuous {
                window.until = Some(window.until.map_or(last, |u| u.min(last)));
            }
        }
        windows.insert(p, window);
    }
    // One absolute start for all partitions when they agree; otherwise
    // the stream starts at the beginning and `from` skips per partition
    // (the client takes a single start offset for every partition).
    let offset = if args.head.is_some() || args.start.is_some() {
        let mut froms = windows.values().map(|w| w.from);
        match froms.next() {
            Some(first) if froms.all(|f| f == first) => Offset::absolute(first)?,
            _ => offset,
        }
    } else {
        offset
    };
    Ok((offset, windows))
}

/// `--since` or `--start-time` as milliseconds since the epoch.
fn start_time(args: &ConsumeArgs) -> anyhow::Result<Option<i64>> {
    if let Some(ms) = args.start_time {
        if ms < 0 {
            usage!("--start-time is before 1970, when record timestamps begin");
        }
        return Ok(Some(ms));
    }
    let Some(since) = args.since else {
        return Ok(None);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    match now.checked_sub(since) {
        Some(at) => Ok(Some(i64::try_from(at.as_millis()).unwrap_or(i64::MAX))),
        None => usage!("--since reaches back before 1970, when record timestamps begin"),
    }
}

async fn print_records(
    stream: rill::MultiPartitionStream,
    args: &ConsumeArgs,
    printer: &Printer,
    windows: &mut HashMap<u32, Window>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    let result = print_into(stream, args, printer, windows, progress, &mut buf).await;
    // What was read before an error is printed all the same.
    let mut out = std::io::stdout().lock();
    out.write_all(&buf)?;
    out.flush()?;
    result
}

async fn print_into(
    mut stream: rill::MultiPartitionStream,
    args: &ConsumeArgs,
    printer: &Printer,
    windows: &mut HashMap<u32, Window>,
    progress: &mut Progress,
    buf: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut open = windows.values().filter(|w| !finished(w)).count();
    loop {
        let record = {
            let next = stream.try_next();
            tokio::pin!(next);
            // Records already fetched come at once; before waiting on the
            // network, hand what is buffered to the reader.
            match std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await {
                Poll::Ready(r) => r?,
                Poll::Pending => {
                    out.write_all(buf)?;
                    out.flush()?;
                    buf.clear();
                    next.await?
                }
            }
        };
        let Some(record) = record else {
            // A long poll came back empty: with -d everything stored has
            // been read.
            if args.disable_continuous {
                break;
            }
            continue;
        };
        progress.next.insert(record.partition, record.offset + 1);
        let Some(window) = windows.get_mut(&record.partition) else {
            continue;
        };
        if record.offset < window.from || finished(window) {
            continue;
        }
        if window.until.is_some_and(|u| record.offset >= u) {
            window.from = i64::MAX;
            open -= 1;
        } else {
            printer.write(&args.topic, &record, buf);
            progress.printed += 1;
            if args.count.is_some_and(|n| progress.printed >= n) {
                break;
            }
            if buf.len() >= 64 * 1024 {
                out.write_all(buf)?;
                buf.clear();
            }
            window.from = record.offset + 1;
            if finished(window) {
                open -= 1;
            }
        }
        if open == 0 {
            break;
        }
    }
    Ok(())
}

/// How often `rill consume -G` commits what it has printed.
const GROUP_COMMIT_EVERY: Duration = Duration::from_secs(5);

/// `rill consume -G`: a member of `group` until the count, the end (-d),
/// ctrl-c, SIGTERM or a closed stdout; then it commits what it printed and
/// leaves the group, so the others take over at once. Commits cover only
/// records already written to stdout (every [`GROUP_COMMIT_EVERY`] and at
/// the end), so a record is never committed unprinted.
async fn consume_group(
    rill: &Rill,
    group: &str,
    args: &ConsumeArgs,
    consumer: ConsumerConfig,
    printer: &Printer,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let config = rill::GroupConfig {
        reset: if args.beginning {
            Offset::Beginning
        } else {
            Offset::End
        },
        auto_commit: None,
        consumer,
        ..rill::GroupConfig::default()
    };
    let mut member = rill
        .consumer_group(group, &[args.topic.as_str()], config)
        .await?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut printed = 0u64;
    let mut committed_at = tokio::time::Instant::now();
    let write_out = |buf: &mut Vec<u8>| -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(buf)?;
        out.flush()?;
        buf.clear();
        Ok(())
    };
    let read = async {
        loop {
            if committed_at.elapsed() >= GROUP_COMMIT_EVERY {
                write_out(&mut buf)?;
                if let Err(e) = member.commit().await {
                    output::eprint(&format!("commit failed (the group rebalanced?): {e}\n"));
                }
                committed_at = tokio::time::Instant::now();
            }
            let record = {
                let next = member.try_next();
                tokio::pin!(next);
                // As `print_into`: hand what is buffered to the reader
                // before waiting on the network.
                match std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await {
                    Poll::Ready(r) => r?,
                    Poll::Pending => {
                        write_out(&mut buf)?;
                        next.await?
                    }
                }
            };
            let Some(r) = record else {
                if args.disable_continuous {
                    return anyhow::Ok(());
                }
                continue;
            };
            printer.write(&r.topic, &r.record, &mut buf);
            printed += 1;
            if args.count.is_some_and(|n| printed >= n) {
                return Ok(());
            }
            if buf.len() >= 64 * 1024 {
                write_out(&mut buf)?;
            }
        }
    };
    let result = tokio::select! {
        r = read => r,
        _ = interrupt.recv() => Ok(()),
        _ = terminate.recv() => Ok(()),
        () = stdout_closed() => Ok(()),
    };
    // What was read is printed, then committed; if it could not be
    // printed, nothing more is committed and the group's next reader gets
    // it again.
    if write_out(&mut buf).is_err() {
        drop(member);
        return result;
    }
    let committed = member.commit().await;
    let left = member.close().await;
    result?;
    committed?;
    left?;
    Ok(())
}

fn finished(w: &Window) -> bool {
    w.until.is_some_and(|u| w.from >= u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn templates_parse_and_refuse_typos() {
        assert_eq!(
            parse_template("{{partition}}:{{ offset }} {{key}}={{value}}!").unwrap(),
            vec![
                Piece::Partition,
                Piece::Text(":".into()),
                Piece::Offset,
                Piece::Text(" ".into()),
                Piece::Key,
                Piece::Text("=".into()),
                Piece::Value,
                Piece::Text("!".into()),
            ]
        );
        assert!(parse_template("{{vaule}}")
            .unwrap_err()
            .to_string()
            .contains("unknown placeholder {{vaule}}"));
        assert!(parse_template("{{value").is_err());
        assert_eq!(
            parse_template("plain").unwrap(),
            vec![Piece::Text("plain".into())]
        );
    }

    #[test]
    fn base64_as_rfc4648() {
        for (input, expected) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foobar", "Zm9vYmFy"),
            (&[0xff, 0x00, 0xfe], "/wD+"),
        ] {
            let mut out = Vec::new();
            base64(input, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_784_025_999), "2026-11-27T12:53:45.999Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn printers_write_one_line_per_record() {
        let r = ConsumerRecord {
            partition: 1,
            offset: 7,
            timestamp: 0,
            key: Some(Bytes::from_static(b"k")),
            value: Bytes::from_static(b"v \"q\""),
            headers: vec![
                ("h".into(), Some(Bytes::from_static(b"x"))),
                ("n".into(), None),
            ],
        };
        let mut out = Vec::new();
        Printer::Text { keys: true }.write("t", &r, &mut out);
        Printer::Text { keys: false }.write("t", &r, &mut out);
        Printer::Template(parse_template("{{topic}}/{{partition}}@{{offset}} {{time}}").unwrap())
            .write("t", &r, &mut out);
        Printer::Json.write("t", &r, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[k] v \"q\"\nv \"q\"\nt/1@7 1970-01-01T00:00:00.000Z\n\
             {\"topic\":\"t\",\"partition\":1,\"offset\":7,\"timestamp\":0,\"key\":\"k\",\"value\":\"v \\\"q\\\"\",\"headers\":{\"h\":\"x\",\"n\":null}}\n"
        );
    }
}

//! `rill produce`: records from stdin or a file, one per line.

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rill::{
    Compression, DeliverySemantic, Isolation, Partitioner, ProduceOutput, RetryPolicy,
    RetryStrategy, RillError, TopicProducer, TopicProducerConfigBuilder,
};

use crate::units::{self, parse_duration, parse_nonzero_size, parse_positive_duration};
use crate::watch::{self, Watch};
use crate::{output, usage, Global};

const MESSAGE_TOO_LARGE: i16 = rill::ResponseError::MessageTooLarge.code();

/// Outputs waited for in send order while records stream. The bound keeps
/// memory flat on endless input; it is far above one batch's worth of
/// records, so waiting for the oldest rarely stalls sending.
pub const MAX_PENDING_OUTPUTS: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<Codec> for Compression {
    fn from(c: Codec) -> Self {
        match c {
            Codec::None => Compression::None,
            Codec::Gzip => Compression::Gzip,
            Codec::Snappy => Compression::Snappy,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Semantic {
    /// Sent once, never retried.
    AtMostOnce,
    /// Retried per the retry policy (default).
    AtLeastOnce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsolationArg {
    /// Acknowledged once the leader has it (acks 1, default).
    #[value(name = "read_uncommitted")]
    ReadUncommitted,
    /// Acknowledged once every in-sync replica has it (acks all).
    #[value(name = "read_committed")]
    ReadCommitted,
}

impl From<IsolationArg> for Isolation {
    fn from(i: IsolationArg) -> Self {
        match i {
            IsolationArg::ReadUncommitted => Isolation::ReadUncommitted,
            IsolationArg::ReadCommitted => Isolation::ReadCommitted,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    Fixed,
    Fibonacci,
    Exponential,
}

/// The producer's settings (design.md §2), shared by `produce` and
/// `benchmark produce`. Unset flags keep the client's defaults.
#[derive(Debug, Clone, Args)]
pub struct ProducerFlags {
    /// Per-batch codec [default: none].
    #[arg(long, value_enum)]
    pub compression: Option<Codec>,
    /// Most uncompressed bytes in one batch, e.g. 16KiB, 1MiB [default: 16KiB].
    #[arg(long, value_parser = parse_nonzero_size, value_name = "SIZE")]
    pub batch_size: Option<usize>,
    /// How long a new batch waits for more records, e.g. 0, 5ms [default: 100ms].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub linger: Option<Duration>,
    /// Largest request; bigger records are refused [default: 1MiB].
    #[arg(long, value_parser = parse_nonzero_size, value_name = "SIZE")]
    pub max_request_size: Option<usize>,
    /// Most bytes of records waiting in the producer; sending waits while
    /// it is full. At least one max request [default: 32MiB, or four max
    /// requests when --max-request-size is larger].
    #[arg(long, value_parser = parse_nonzero_size, value_name = "SIZE")]
    pub buffer_memory: Option<usize>,
    /// How hard to try [default: at-least-once].
    #[arg(long, value_enum)]
    pub delivery_semantic: Option<Semantic>,
    /// When a record counts as acknowledged [default: read_uncommitted].
    #[arg(long, value_enum)]
    pub isolation: Option<IsolationArg>,
    /// Producer id and sequence numbers, so retries never store a record
    /// twice [default: on with at-least-once].
    #[arg(long, overrides_with = "no_idempotent")]
    pub idempotent: bool,
    /// Turn idempotence off.
    #[arg(long)]
    pub no_idempotent: bool,
    /// Retries after the first attempt (at-least-once) [default: 20].
    #[arg(long, value_name = "N")]
    pub max_retries: Option<usize>,
    /// How the delay between retries grows [default: exponential].
    #[arg(long, value_enum)]
    pub retry_strategy: Option<StrategyArg>,
    /// The first retry delay [default: 20ms].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub initial_delay: Option<Duration>,
    /// No retry delay is longer than this [default: 5s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub max_delay: Option<Duration>,
    /// All attempts of a batch end within this: how long an unreachable SPU
    /// is waited for before the command gives up [default: 30s].
    #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION")]
    pub retry_timeout: Option<Duration>,
}

/// The command line's retry policy: the library's, except that an
/// unreachable SPU is waited for 30 s, not 300 s, with retries at most 5 s
/// apart, so a terminal user learns soon that a record could not be
/// delivered.
pub fn cli_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 20,
        max_delay: Duration::from_secs(5),
        timeout: Duration::from_secs(30),
        ..RetryPolicy::default()
    }
}

impl ProducerFlags {
    /// The builder these flags describe; the caller may add to it.
    pub fn builder(&self) -> anyhow::Result<TopicProducerConfigBuilder> {
        let mut b = TopicProducerConfigBuilder::default();
        if let Some(c) = self.compression {
            b.compression(c.into());
        }
        if let Some(s) = self.batch_size {
            b.batch_size(s);
        }
        if let Some(l) = self.linger {
            b.linger(l);
        }
        if let Some(m) = self.max_request_size {
            b.max_request_size(m);
            // The default buffer (32 MiB) must hold a few such requests.
            b.buffer_memory((32 << 20).max(m.saturating_mul(4)));
        }
        if let Some(m) = self.buffer_memory {
            b.buffer_memory(m);
        }
        if let Some(i) = self.isolation {
            b.isolation(i.into());
        }
        let retry_flags = self.max_retries.is_some()
            || self.retry_strategy.is_some()
            || self.initial_delay.is_some()
            || self.max_delay.is_some()
            || self.retry_timeout.is_some();
        match self.delivery_semantic {
            Some(Semantic::AtMostOnce) => {
                if retry_flags {
                    usage!("retry flags need --delivery-semantic at-least-once");
                }
                if self.idempotent {
                    usage!("--idempotent needs --delivery-semantic at-least-once");
                }
                b.delivery_semantic(DeliverySemantic::AtMostOnce);
            }
            Some(Semantic::AtLeastOnce) | None => {
                let d = cli_retry_policy();
                let policy = RetryPolicy {
                    max_retries: self.max_retries.unwrap_or(d.max_retries),
                    initial_delay: self.initial_delay.unwrap_or(d.initial_delay),
                    max_delay: self.max_delay.unwrap_or(d.max_delay),
                    timeout: self.retry_timeout.unwrap_or(d.timeout),
                    strategy: match self.retry_strategy {
                        None => d.strategy,
                        Some(StrategyArg::Fixed) => RetryStrategy::FixedDelay,
                        Some(StrategyArg::Fibonacci) => RetryStrategy::FibonacciBackoff,
                        Some(StrategyArg::Exponential) => RetryStrategy::ExponentialBackoff,
                    },
                };
                b.delivery_semantic(DeliverySemantic::AtLeastOnce(policy));
                if self.no_idempotent {
                    b.idempotent(false);
                }
            }
        }
        Ok(b)
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  echo 'hello' | rill produce greetings
  rill produce greetings                                # type lines; each is sent at once
  printf 'user1:alice\\nuser2:bob\\n' | rill produce users --key-separator :
  printf 'k\\tv\\n' | rill produce users -K '\\t' --header source=import
  rill produce logs -f app.log --compression zstd --linger 10ms
  rill produce blobs -f image.png --raw --key image.png --max-request-size 8MiB
                                                        # blobs: created with --max-message-bytes 8MiB
  seq 1 100000 | rill produce numbers -p 0 --delivery-semantic at-most-once")]
pub struct ProduceArgs {
    /// The topic.
    topic: String,
    /// The key is what comes before the first SEP on each line; a line
    /// without SEP is sent without a key. `\t`, `\n` and `\\` are
    /// unescaped, as kcat's -K does.
    #[arg(short = 'K', long, value_name = "SEP", conflicts_with = "key", value_parser = parse_separator)]
    key_separator: Option<String>,
    /// A header for every record, NAME=VALUE (repeat for several).
    #[arg(short = 'H', long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Give every record this key.
    #[arg(long)]
    key: Option<String>,
    /// Read records from this file instead of stdin.
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
    /// Send the whole input as one record instead of one per line.
    #[arg(long, conflicts_with = "key_separator")]
    raw: bool,
    /// Send every record to this partition (instead of by key or round-robin).
    #[arg(short = 'p', long)]
    partition: Option<u32>,
    #[command(flatten)]
    producer: ProducerFlags,
}

fn parse_separator(text: &str) -> Result<String, String> {
    match units::unescape(text) {
        sep if sep.is_empty() => {
            Err("the separator is empty; give at least one character, e.g. ':' or '\\t'".into())
        }
        sep => Ok(sep),
    }
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

impl ProduceArgs {
    /// Sends one record with the command's headers.
    async fn send(
        &self,
        producer: &TopicProducer,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<ProduceOutput, RillError> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        producer.send_with_headers(key, value, &headers).await
    }
}

/// One input record's key and value.
fn split_key<'a>(
    line: &'a [u8],
    args: &'a ProduceArgs,
    sep: Option<&[u8]>,
) -> (Option<&'a [u8]>, &'a [u8]) {
    if let Some(sep) = sep.filter(|s| !s.is_empty()) {
        if let Some(at) = line.windows(sep.len()).position(|w| w == sep) {
            return (Some(&line[..at]), &line[at + sep.len()..]);
        }
        return (None, line);
    }
    (args.key.as_deref().map(str::as_bytes), line)
}

pub async fn run(args: ProduceArgs, global: &Global) -> anyhow::Result<()> {
    let mut config = args.producer.builder()?;
    if let Some(path) = &args.file {
        if path.is_dir() {
            usage!("-f {}: is a directory; give a file", path.display());
        }
    }
    let rill = global.connect().await?;
    if let Some(p) = args.partition {
        let topics = rill.admin().list_topics().await?;
        let Some(t) = topics.iter().find(|t| t.name == args.topic) else {
            return Err(RillError::TopicNotFound(args.topic.clone()).into());
        };
        if p >= t.partitions {
            bail!(
                "topic \"{}\" has {} partition{}; --partition {p} does not exist",
                args.topic,
                t.partitions,
                if t.partitions == 1 { "" } else { "s" }
            );
        }
        config.partitioner(Partitioner::Custom(Arc::new(move |_, _, _| p)));
    }
    let config = config.build()?;
    let hang_after = config.linger + HANG_AFTER;
    let give_up_after = args
        .producer
        .retry_timeout
        .unwrap_or(cli_retry_policy().timeout);
    let producer = rill.topic_producer_with_config(&args.topic, config).await?;
    let watch = Watch::new(rill.addr(), hang_after, give_up_after);

    let input: Box<dyn Read + Send> = match &args.file {
        Some(path) => Box::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        ),
        None => Box::new(std::io::stdin()),
    };
    let interactive = args.file.is_none() && std::io::stdin().is_terminal();
    if args.raw {
        return raw(&producer, &args, input, watch).await;
    }
    if interactive {
        return interactive_loop(&producer, &args, watch).await;
    }
    let progress = args.file.as_ref().and_then(|path| {
        let len = std::fs::metadata(path).ok()?.len();
        std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(len);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        })
    });
    let result = stream(&producer, &args, input, progress.clone(), watch).await;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    result
}

/// A silence this long (plus the linger) while the SPU accepts connections
/// is reported as an SPU that does not answer.
const HANG_AFTER: Duration = Duration::from_secs(15);
/// How long ctrl-c waits for what the producer holds to be acknowledged.
pub const FLUSH_ON_INTERRUPT: Duration = Duration::from_secs(5);

/// The whole input as one record.
async fn raw(
    producer: &TopicProducer,
    args: &ProduceArgs,
    mut input: Box<dyn Read + Send>,
    mut watch: Watch,
) -> anyhow::Result<()> {
    let mut value = Vec::new();
    input.read_to_end(&mut value).context("reading the input")?;
    let (key, value) = split_key(&value, args, None);
    let size = key.map_or(0, <[u8]>::len) + value.len();
    let out = match args.send(producer, key, value).await {
        Ok(out) => out,
        Err(e) => return Err(explain(e, "the input", size)),
    };
    watch
        .wait(
            async {
                producer.flush().await?;
                out.wait().await
            },
            || "1 record waiting".into(),
        )
        .await?
        .map_err(|e| explain(e, "the input", size))
        .context("the record was not acknowledged")?;
    Ok(())
}

/// From a terminal: each line is sent and acknowledged before the next
/// prompt, so the user sees at once whether it went through. At the end
/// (ctrl-d, or ctrl-c: exit 130) a summary line says how many records were
/// acknowledged.
async fn interactive_loop(
    producer: &TopicProducer,
    args: &ProduceArgs,
    mut watch: Watch,
) -> anyhow::Result<()> {
    let sep = args.key_separator.as_deref().map(str::as_bytes);
    let mut lines = spawn_reader(Box::new(std::io::stdin()), None);
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the SIGINT handler")?;
    let (mut sent, mut acked) = (0u64, 0u64);
    let summary = |acked: u64, sent: u64| {
        format!(
            "{acked} of {sent} record{} acknowledged\n",
            if sent == 1 { "" } else { "s" }
        )
    };
    loop {
        output::eprint("> ");
        let line = tokio::select! {
            biased;
            _ = interrupt.recv() => None,
            line = lines.recv() => Some(line),
        };
        let line = match line {
            // ctrl-c: nothing is held, every record was waited for.
            None => {
                output::eprint(&format!("\ninterrupted: {}", summary(acked, sent)));
                return Err(output::Interrupted.into());
            }
            Some(None) => {
                output::eprint(&format!("\n{}", summary(acked, sent)));
                return Ok(());
            }
            Some(Some(Err(e))) => return Err(anyhow::Error::from(e).context("reading the input")),
            Some(Some(Ok(line))) => line,
        };
        let (key, value) = split_key(&line.bytes, args, sep);
        let size = key.map_or(0, <[u8]>::len) + value.len();
        sent += 1;
        let out = match args.send(producer, key, value).await {
            Ok(out) => out,
            Err(e) => {
                output::eprint(&format!("{}\n", explain(e, "the line", size)));
                continue;
            }
        };
        watch.waiting_from_now();
        let answer = watch.wait(
            async {
                producer.flush().await?;
                out.wait().await
            },
            || "1 record waiting".into(),
        );
        let answer = tokio::select! {
            biased;
            _ = interrupt.recv() => {
                output::eprint(&format!("\ninterrupted: {}", summary(acked, sent)));
                return Err(output::Interrupted.into());
            }
            answer = answer => answer,
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(gave_up) => {
                output::eprint(&format!("not acknowledged: {gave_up}\n"));
                continue;
            }
        };
        match answer {
            Ok(meta) => {
                watch.answered();
                acked += 1;
                output::eprint(&format!(
                    "Ok! (partition {}, offset {})\n",
                    meta.partition, meta.offset
                ));
            }
            Err(e) => output::eprint(&format!(
                "not acknowledged: {}\n",
                crate::message(&explain(e, "the line", size))
            )),
        }
    }
}

/// One input line.
struct Line {
    number: u64,
    bytes: Vec<u8>,
}

/// Reads `input` line by line on a thread of its own, so a blocking read
/// never holds up ctrl-c or the outage watcher.
fn spawn_reader(
    input: Box<dyn Read + Send>,
    progress: Option<indicatif::ProgressBar>,
) -> tokio::sync::mpsc::Receiver<std::io::Result<Line>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::with_capacity(1 << 20, input);
        let mut unreported_bytes = 0;
        for number in 1.. {
            let mut bytes = Vec::new();
            match reader.read_until(b'\n', &mut bytes) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(bar) = &progress {
                        unreported_bytes += n as u64;
                        if unreported_bytes >= 64 * 1024 {
                            bar.inc(std::mem::take(&mut unreported_bytes));
                        }
                    }
                    if bytes.last() == Some(&b'\n') {
                        bytes.pop();
                    }
                    if tx.blocking_send(Ok(Line { number, bytes })).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        if let Some(bar) = &progress {
            bar.inc(unreported_bytes);
        }
    });
    rx
}

/// A record sent and not yet answered.
struct Sent {
    line: u64,
    size: usize,
    output: ProduceOutput,
}

/// Counts of answers, shared between the loop that sends and the task
/// that waits for answers (so ctrl-c can report them at any moment).
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<anyhow::Error>>,
    /// The SPU could not be reached within the retry timeout.
    gave_up: std::sync::atomic::AtomicBool,
}

impl Tally {
    fn fail(&self, e: anyhow::Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(e);
    }

    fn waiting(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
            - self.acked.load(Ordering::Relaxed)
            - self.failed.load(Ordering::Relaxed)
    }
}

/// A refused record's error, with the line, its size and the setting to
/// change.
fn explain(e: RillError, line: &str, size: usize) -> anyhow::Error {
    let suggest = || units::format_bytes(i64::try_from(size.next_power_of_two()).unwrap_or(-1) * 2);
    match e {
        RillError::RecordTooLarge {
            max_request_size, ..
        } => anyhow::anyhow!(
            "{line} is {size} bytes, over the producer's --max-request-size of {} \
             (raise it, e.g. --max-request-size {}; the topic must accept it too: \
             `rill topic create NAME --max-message-bytes {}`, or for a topic that \
             exists `rill topic alter-config NAME --set max.message.bytes={}`)",
            units::format_bytes(i64::try_from(max_request_size).unwrap_or(-1)),
            suggest(),
            suggest(),
            suggest()
        ),
        e if e.code() == Some(MESSAGE_TOO_LARGE) => anyhow::Error::from(e).context(format!(
            "{line} ({size} bytes) is larger than the topic's max.message.bytes \
             (see `rill topic describe`; raise it with \
             `rill topic alter-config TOPIC --set max.message.bytes={}`)",
            suggest()
        )),
        e => e.into(),
    }
}

/// Waits for each sent record's answer in send order, counting them and
/// watching the SPU meanwhile.
async fn settle(mut rx: tokio::sync::mpsc::Receiver<Sent>, tally: Arc<Tally>, mut watch: Watch) {
    loop {
        let sent = match rx.try_recv() {
            Ok(sent) => sent,
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                let Some(sent) = rx.recv().await else {
                    return;
                };
                // Nothing was waiting until now.
                watch.waiting_from_now();
                sent
            }
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return,
        };
        let answer = watch
            .wait(sent.output.wait(), || match tally.waiting() {
                1 => "1 record waiting".to_owned(),
                n => format!("{n} records waiting"),
            })
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(gave_up) => {
                tally.fail(gave_up.into());
                tally.gave_up.store(true, Ordering::Release);
                return;
            }
        };
        match answer {
            Ok(_) => {
                watch.answered();
                tally.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if e.code().is_some() {
                    watch.answered();
                }
                let outage = watch::is_outage(&e);
                let line = format!("line {}", sent.line);
                let e = explain(e, &line, sent.size);
                if e.to_string().starts_with(&line) {
                    output::eprint(&format!("error: {}\n", crate::message(&e)));
                }
                if outage {
                    // The SPU stayed out of reach for the whole retry
                    // timeout: the records behind this one would each wait
                    // out a timeout of their own. Give up on all of them.
                    tally.fail(e.context(watch.gave_up()));
                    tally.gave_up.store(true, Ordering::Release);
                    return;
                }
                tally.fail(e);
            }
        }
    }
}

/// From a pipe or a file: records stream without waiting for each answer;
/// answers are counted in send order, at most `MAX_PENDING_OUTPUTS` open.
/// A record the producer or the SPU refuses is reported with its line
/// number and the input goes on; ctrl-c stops reading, waits a little for
/// what was sent and says how much was acknowledged.
async fn stream(
    producer: &TopicProducer,
    args: &ProduceArgs,
    input: Box<dyn Read + Send>,
    progress: Option<indicatif::ProgressBar>,
    watch: Watch,
) -> anyhow::Result<()> {
    let sep = args.key_separator.as_deref().map(str::as_bytes);
    let mut lines = spawn_reader(input, progress);
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the SIGINT handler")?;
    let tally = Arc::new(Tally::default());
    let (tx, rx) = tokio::sync::mpsc::channel(MAX_PENDING_OUTPUTS);
    let mut settler = tokio::spawn(settle(rx, tally.clone(), watch));
    // The settler ends early only when it gives up on an unreachable SPU.
    let mut settled = false;
    let mut read: u64 = 0;
    let mut read_error = None;
    let mut interrupted = false;
    loop {
        let line = tokio::select! {
            biased;
            _ = interrupt.recv() => { interrupted = true; break; }
            _ = &mut settler, if !settled => { settled = true; break; }
            line = lines.recv() => line,
        };
        let line = match line {
            None => break,
            Some(Err(e)) => {
                read_error = Some(anyhow::Error::from(e).context("reading the input"));
                break;
            }
            Some(Ok(line)) => line,
        };
        read += 1;
        let (key, value) = split_key(&line.bytes, args, sep);
        let size = key.map_or(0, <[u8]>::len) + value.len();
        let output = tokio::select! {
            biased;
            _ = interrupt.recv() => { interrupted = true; break; }
            _ = &mut settler, if !settled => { settled = true; break; }
            output = args.send(producer, key, value) => output,
        };
        let output = match output {
            Ok(output) => output,
            Err(e) => {
                let line = format!("line {}", line.number);
                let fatal = !matches!(e, RillError::RecordTooLarge { .. });
                let e = explain(e, &line, size);
                output::eprint(&format!("error: {}\n", crate::message(&e)));
                tally.fail(e);
                if fatal {
                    break;
                }
                continue;
            }
        };
        tally.sent.fetch_add(1, Ordering::Relaxed);
        let sent = Sent {
            line: line.number,
            size,
            output,
        };
        tokio::select! {
            biased;
            _ = interrupt.recv() => { interrupted = true; break; }
            _ = &mut settler, if !settled => { settled = true; break; }
            r = tx.send(sent) => if r.is_err() { break },
        }
    }
    drop(tx);
    if interrupted {
        // What was sent gets a short while to be acknowledged; a second
        // ctrl-c stops waiting.
        let answered = async {
            let _ = producer.flush().await;
            if !settled {
                let _ = settler.await;
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(FLUSH_ON_INTERRUPT, answered) => {}
            _ = interrupt.recv() => {}
        }
        output::eprint(&format!(
            "interrupted: {} of {read} records acknowledged\n",
            tally.acked.load(Ordering::Relaxed)
        ));
        return Err(output::Interrupted.into());
    }
    // Whatever stopped the loop, what was sent still deserves its answer,
    // unless the SPU could not be reached for the whole retry timeout.
    if !settled {
        let _ = producer.flush().await;
        let _ = settler.await;
    }
    let gave_up = tally.gave_up.load(Ordering::Acquire);
    let failed = read - tally.acked.load(Ordering::Relaxed);
    let first_error = tally
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    match (first_error, read_error) {
        (None, None) => Ok(()),
        (None, Some(e)) if read == 0 => Err(e),
        (None, Some(e)) => Err(e.context(format!(
            "{read} records read were acknowledged before the input failed"
        ))),
        (Some(e), _) => {
            let gave_up = if gave_up {
                format!("; the input was not read past line {read}")
            } else {
                String::new()
            };
            Err(e.context(format!(
                "{failed} of {read} records sent were not acknowledged{gave_up}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ProduceArgs,
    }

    impl ProducerFlags {
        fn config(&self) -> anyhow::Result<rill::TopicProducerConfig> {
            Ok(self.builder()?.build()?)
        }
    }

    fn parse(argv: &[&str]) -> Result<ProduceArgs, clap::Error> {
        Wrap::try_parse_from(std::iter::once("produce").chain(argv.iter().copied())).map(|w| w.args)
    }

    #[test]
    fn keys_come_from_the_separator_or_the_flag() {
        let args = parse(&["t", "--key-separator", "=>"]).unwrap();
        let sep = Some("=>".as_bytes());
        assert_eq!(
            split_key(b"k=>v=>w", &args, sep),
            (Some(&b"k"[..]), &b"v=>w"[..])
        );
        assert_eq!(split_key(b"no-sep", &args, sep), (None, &b"no-sep"[..]));
        let args = parse(&["t", "--key", "fixed"]).unwrap();
        assert_eq!(
            split_key(b"a:b", &args, None),
            (Some(&b"fixed"[..]), &b"a:b"[..])
        );
        let args = parse(&["t"]).unwrap();
        assert_eq!(split_key(b"a:b", &args, None), (None, &b"a:b"[..]));
    }

    #[test]
    fn producer_flags_become_the_config() {
        let args = parse(&[
            "t",
            "--compression",
            "zstd",
            "--batch-size",
            "64KiB",
            "--linger",
            "5ms",
            "--isolation",
            "read_committed",
            "--max-retries",
            "2",
            "--retry-strategy",
            "fibonacci",
            "--initial-delay",
            "10ms",
        ])
        .unwrap();
        let c = args.producer.config().unwrap();
        assert_eq!(c.compression, Compression::Zstd);
        assert_eq!(c.batch_size, 64 * 1024);
        assert_eq!(c.linger, Duration::from_millis(5));
        assert_eq!(c.isolation, Isolation::ReadCommitted);
        assert!(c.idempotent);
        let DeliverySemantic::AtLeastOnce(p) = c.delivery_semantic else {
            panic!("at least once by default");
        };
        assert_eq!(p.max_retries, 2);
        assert_eq!(p.strategy, RetryStrategy::FibonacciBackoff);
        assert_eq!(p.initial_delay, Duration::from_millis(10));

        let c = parse(&["t"]).unwrap().producer.config().unwrap();
        let DeliverySemantic::AtLeastOnce(p) = c.delivery_semantic else {
            panic!("at least once by default");
        };
        assert_eq!(
            p.timeout,
            Duration::from_secs(30),
            "a terminal's retry timeout"
        );
        assert_eq!(p.max_delay, Duration::from_secs(5));
        let c = parse(&["t", "--no-idempotent"])
            .unwrap()
            .producer
            .config()
            .unwrap();
        assert!(!c.idempotent);
        let c = parse(&["t", "--delivery-semantic", "at-most-once"])
            .unwrap()
            .producer
            .config()
            .unwrap();
        assert_eq!(c.delivery_semantic, DeliverySemantic::AtMostOnce);
        assert!(!c.idempotent);
        let c = parse(&["t", "--max-request-size", "16MiB"])
            .unwrap()
            .producer
            .config()
            .unwrap();
        assert_eq!(c.max_request_size, 16 << 20);
    }

    #[test]
    fn contradictions_are_refused() {
        let e = parse(&[
            "t",
            "--delivery-semantic",
            "at-most-once",
            "--max-retries",
            "3",
        ])
        .unwrap()
        .producer
        .config()
        .unwrap_err();
        assert!(e.to_string().contains("at-least-once"), "{e}");
        assert!(parse(&["t", "--key", "k", "--key-separator", ":"]).is_err());
        assert!(parse(&["t", "--linger", "10"]).is_err());
        assert!(parse(&["t", "--compression", "brotli"]).is_err());
        assert!(parse(&["t", "--batch-size", "0"]).is_err());
    }
}

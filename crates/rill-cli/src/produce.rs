//! `rill produce`: records from stdin or a file, one per line.

use std::collections::VecDeque;
use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rill::{
    Compression, DeliverySemantic, Isolation, Partitioner, ProduceOutput, RetryPolicy,
    RetryStrategy, RillError, TopicProducer, TopicProducerConfigBuilder,
};

use crate::units::{parse_duration, parse_nonzero_size};
use crate::usage;
use crate::{output, Global};

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
    /// Retries after the first attempt (at-least-once) [default: 4].
    #[arg(long, value_name = "N")]
    pub max_retries: Option<usize>,
    /// How the delay between retries grows [default: exponential].
    #[arg(long, value_enum)]
    pub retry_strategy: Option<StrategyArg>,
    /// The first retry delay [default: 20ms].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub initial_delay: Option<Duration>,
    /// No retry delay is longer than this [default: 200s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub max_delay: Option<Duration>,
    /// All attempts of a batch end within this [default: 300s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub retry_timeout: Option<Duration>,
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
                let d = RetryPolicy::default();
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
  rill produce logs -f app.log --compression zstd --linger 10ms
  rill produce blobs -f image.png --raw --key image.png --max-request-size 8MiB
  seq 1 100000 | rill produce numbers -p 0 --delivery-semantic at-most-once")]
pub struct ProduceArgs {
    /// The topic.
    topic: String,
    /// The key is what comes before the first SEP on each line; a line
    /// without SEP is sent without a key.
    #[arg(long, value_name = "SEP", conflicts_with = "key")]
    key_separator: Option<String>,
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
    let producer = rill
        .topic_producer_with_config(&args.topic, config.build()?)
        .await?;

    let input: Box<dyn Read> = match &args.file {
        Some(path) => Box::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        ),
        None => Box::new(std::io::stdin()),
    };
    let interactive = args.file.is_none() && std::io::stdin().is_terminal();
    if args.raw {
        let mut value = Vec::new();
        let mut input = input;
        input.read_to_end(&mut value).context("reading the input")?;
        let (key, value) = split_key(&value, &args, None);
        let out = producer.send(key, value).await?;
        producer.flush().await?;
        out.wait()
            .await
            .context("the record was not acknowledged")?;
        return Ok(());
    }
    if interactive {
        return interactive_loop(&producer, &args).await;
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
    let result = stream(&producer, &args, input, progress.as_ref()).await;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    result
}

/// From a terminal: each line is sent and acknowledged before the next
/// prompt, so the user sees at once whether it went through.
async fn interactive_loop(producer: &TopicProducer, args: &ProduceArgs) -> anyhow::Result<()> {
    let sep = args.key_separator.as_deref().map(str::as_bytes);
    let stdin = std::io::stdin();
    let mut line = Vec::new();
    loop {
        output::eprint("> ");
        line.clear();
        if stdin.lock().read_until(b'\n', &mut line)? == 0 {
            output::eprint("\n");
            return Ok(());
        }
        let record = line.strip_suffix(b"\n").unwrap_or(&line);
        let (key, value) = split_key(record, args, sep);
        let out = producer.send(key, value).await?;
        producer.flush().await?;
        let meta = out
            .wait()
            .await
            .context("the record was not acknowledged")?;
        output::eprint(&format!(
            "Ok! (partition {}, offset {})\n",
            meta.partition, meta.offset
        ));
    }
}

/// From a pipe or a file: records stream without waiting for each answer;
/// outputs are waited for in order, at most `MAX_PENDING_OUTPUTS` open.
async fn stream(
    producer: &TopicProducer,
    args: &ProduceArgs,
    input: Box<dyn Read>,
    progress: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<()> {
    let sep = args.key_separator.as_deref().map(str::as_bytes);
    let mut reader = std::io::BufReader::with_capacity(1 << 20, input);
    let mut pending: VecDeque<ProduceOutput> = VecDeque::with_capacity(MAX_PENDING_OUTPUTS);
    let mut line = Vec::new();
    let mut sent: u64 = 0;
    let mut failed: u64 = 0;
    let mut first_error: Option<anyhow::Error> = None;
    let mut unreported_bytes = 0;
    loop {
        line.clear();
        let n = match reader.read_until(b'\n', &mut line) {
            Ok(n) => n,
            Err(e) => {
                first_error = Some(anyhow::Error::from(e).context("reading the input"));
                break;
            }
        };
        if n == 0 {
            break;
        }
        if let Some(bar) = progress {
            unreported_bytes += n as u64;
            if unreported_bytes >= 64 * 1024 {
                bar.inc(std::mem::take(&mut unreported_bytes));
            }
        }
        let record = line.strip_suffix(b"\n").unwrap_or(&line);
        let (key, value) = split_key(record, args, sep);
        match producer.send(key, value).await {
            Ok(out) => pending.push_back(out),
            Err(e) => {
                failed += 1;
                first_error = Some(e.into());
                break;
            }
        }
        sent += 1;
        if pending.len() >= MAX_PENDING_OUTPUTS {
            if let Some(out) = pending.pop_front() {
                if let Err(e) = out.wait().await {
                    failed += 1;
                    first_error = Some(e.into());
                    break;
                }
            }
        }
    }
    // Whatever stopped the loop, what was sent still deserves its answer.
    if let Err(e) = producer.flush().await {
        first_error.get_or_insert(e.into());
    }
    for out in pending {
        if let Err(e) = out.wait().await {
            failed += 1;
            first_error.get_or_insert(e.into());
        }
    }
    if let Some(bar) = progress {
        bar.inc(unreported_bytes);
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(e.context(format!(
            "{failed} of {sent} records sent were not acknowledged"
        ))),
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

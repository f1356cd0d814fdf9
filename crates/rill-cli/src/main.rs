//! The `rill` command line. Thin: it parses flags and calls the libraries.

mod bench;
mod bench_consume;
mod bench_e2e;
mod cluster;
mod console;
mod consume;
mod group;
mod home;
mod multi;
mod output;
mod pace_timer;
mod produce;
mod profile;
mod spu;
mod topic;
mod topic_change;
mod units;
mod watch;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use rill::{Rill, RillError};

/// Rill: a streaming platform that speaks the Kafka wire protocol.
#[derive(Debug, Parser)]
#[command(
    name = "rill",
    version,
    about,
    after_help = "Examples:
  rill cluster start
  rill topic create greetings --partitions 2
  echo 'hello' | rill produce greetings
  rill consume greetings -B -d
  rill benchmark produce --count 100000 --record-size 1KiB"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every client command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The SPU to talk to (host:port) [default: the profile of `rill cluster
    /// start`, else 127.0.0.1:9092]. Not for `rill cluster` and `rill
    /// completions`, which talk to no SPU.
    #[arg(long, global = true, env = "RILL_ADDR", value_name = "HOST:PORT")]
    addr: Option<String>,
}

impl Global {
    /// The chosen cluster's address: --addr, else the profile's.
    pub fn addr_or_profile(&self) -> String {
        match self.addr.as_deref().map(str::trim) {
            Some(a) if !a.is_empty() => a.to_owned(),
            _ => rill::discover_addr(),
        }
    }

    /// Connects to the chosen cluster.
    pub async fn connect(&self) -> anyhow::Result<Rill> {
        let (addr, from) = match self.addr.as_deref().map(str::trim) {
            Some(a) if !a.is_empty() => (a.to_owned(), "--addr (or RILL_ADDR)"),
            _ => (rill::discover_addr(), "the profile"),
        };
        check_addr(&addr, from)?;
        Ok(Rill::connect_to(&addr).await?)
    }
}

/// Refuses an address that is not `HOST:PORT` before trying it, so a typo
/// is not reported as an SPU that does not answer.
fn check_addr(addr: &str, from: &str) -> anyhow::Result<()> {
    check_addr_syntax(addr, from)?;
    if let Err(e) = std::net::ToSocketAddrs::to_socket_addrs(addr) {
        usage!("invalid address {addr:?} from {from}: {e}");
    }
    Ok(())
}

/// `HOST:PORT` with a port from 1 to 65535 (the host is not looked up).
pub fn check_addr_syntax(addr: &str, from: &str) -> anyhow::Result<()> {
    let port = addr
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .filter(|p| *p != 0);
    if port.is_none() {
        usage!("invalid address {addr:?} from {from}: expected HOST:PORT, e.g. 127.0.0.1:9092");
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start, stop and inspect a local cluster (one SPU, or several with
    /// their metadata in etcd).
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Run one SPU of a cluster as a service.
    #[command(subcommand)]
    Spu(spu::SpuCommand),
    /// Create, list, describe, change and delete topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Inspect partitions.
    #[command(subcommand)]
    Partition(topic::PartitionCommand),
    /// List, describe, reset and delete consumer groups.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Name cluster addresses and choose the one commands use.
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// Send records to a topic, one per line of stdin or a file.
    Produce(produce::ProduceArgs),
    /// Read records from a topic.
    Consume(consume::ConsumeArgs),
    /// Measure the cluster.
    #[command(subcommand)]
    Benchmark(bench::BenchmarkCommand),
    /// Serve a web console for the cluster (overview, topics with rates
    /// and a live tail, consumer groups, forms to produce and create).
    Console(console::ConsoleArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  rill completions bash > /etc/bash_completion.d/rill
  rill completions zsh > \"${fpath[1]}/_rill\"
  rill completions fish > ~/.config/fish/completions/rill.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Runs `future` on a multi-threaded runtime: blocking reads of stdin in
/// the main future then never hold up the producer's sender task.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    block_on_with(None, future)
}

/// [`block_on`] with `workers` async threads (`None`: one per core).
fn block_on_with<F: std::future::Future>(
    workers: Option<usize>,
    future: F,
) -> anyhow::Result<F::Output> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(future))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global;
    match cli.command {
        Command::Cluster(cmd) => cluster::run(cmd),
        Command::Spu(cmd) => spu::run(cmd),
        Command::Profile(cmd) => profile::run(cmd),
        Command::Topic(cmd) => block_on(topic::run(cmd, &global))?,
        Command::Partition(cmd) => block_on(topic::run_partition(cmd, &global))?,
        Command::Group(cmd) => block_on(group::run(cmd, &global))?,
        Command::Produce(args) => block_on(produce::run(args, &global))?,
        Command::Consume(args) => block_on(consume::run(args, &global))?,
        Command::Benchmark(cmd) => block_on_with(cmd.runtime_workers(), bench::run(cmd, &global))?,
        Command::Console(args) => block_on(console::run(args, &global))?,
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "rill", &mut out);
            output::print(&String::from_utf8_lossy(&out))
        }
    }
}

/// The message for an error: the client's own, except where the command
/// line can say more plainly what to do. Context added on the way up (such
/// as how many records were not acknowledged) stays in front.
pub fn message(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        match cause.downcast_ref::<RillError>() {
            Some(RillError::Connect { addr, reason }) => {
                parts.push(format!(
                    "no SPU answers at {addr} — start one with `rill cluster start`\n  ({reason})"
                ));
                break;
            }
            Some(RillError::TopicNotFound(topic)) => {
                parts.push(format!("topic {topic:?} not found (see `rill topic list`)"));
                break;
            }
            _ => parts.push(cause.to_string()),
        }
    }
    parts.join(": ")
}

/// A mistake in the command line found after parsing (a value out of
/// range, flags that contradict each other): exit status 2, as clap's own
/// argument errors, with the flag's name in the message.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `Err(Usage)` as an `anyhow::Error`, like `bail!`.
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::Usage(format!($($arg)*))))
    };
}

/// `--addr` on a command that talks to no SPU (it is a global flag, so
/// clap accepts it anywhere): refused rather than silently ignored.
fn addr_ignored(cli: &Cli, matches: &clap::ArgMatches) -> Option<anyhow::Error> {
    let given = matches.value_source("addr") == Some(clap::parser::ValueSource::CommandLine);
    let name = match cli.command {
        Command::Cluster(_) => "rill cluster (it manages the local SPU; use --listen)",
        Command::Completions { .. } => "rill completions",
        Command::Profile(_) => "rill profile (give the address to `rill profile add`)",
        _ => return None,
    };
    given.then(|| anyhow::Error::new(Usage(format!("--addr does not apply to {name}"))))
}

/// Exit status for a command line clap accepted but the command refused.
const USAGE_EXIT: u8 = 2;

fn main() -> ExitCode {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            // `rill --help | head -1` must not panic either.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(USAGE_EXIT));
        }
    };
    let result = match addr_ignored(&cli, &matches) {
        Some(e) => Err(e),
        None => run(cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `rill consume t | head`: the reader has what it wanted.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        // The command said what it had done when ctrl-c came.
        Err(e) if e.chain().any(|c| c.is::<output::Interrupted>()) => ExitCode::from(130),
        Err(e) => {
            output::eprint(&format!("error: {}\n", message(&e)));
            if e.chain().any(|c| c.is::<Usage>()) {
                ExitCode::from(USAGE_EXIT)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_messages_keep_the_context_in_front() {
        let connect = RillError::Connect {
            addr: "127.0.0.1:9092".into(),
            reason: "Connection refused".into(),
        };
        let e = anyhow::Error::from(connect).context("3 of 10 records sent were not acknowledged");
        assert_eq!(
            message(&e),
            "3 of 10 records sent were not acknowledged: no SPU answers at 127.0.0.1:9092 \
             — start one with `rill cluster start`\n  (Connection refused)"
        );
        let e = anyhow::Error::from(RillError::TopicNotFound("t".into()));
        assert_eq!(message(&e), "topic \"t\" not found (see `rill topic list`)");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(message(&e), "outer: inner");
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        fn walk(cmd: &clap::Command, path: &str) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_subcommands().next().is_none() || cmd.get_name() == "rill" {
                let help = cmd
                    .get_after_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                assert!(
                    help.contains("Examples:"),
                    "`{path} --help` has no examples"
                );
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &path);
                }
            }
        }
        walk(&Cli::command(), "");
    }
}

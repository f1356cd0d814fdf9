//! `rill cluster start|stop|status`.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use rill_spu::{Spu, SpuConfig};
use rill_storage::FlushPolicy;

use crate::home;

/// How long `start` waits for the SPU to answer, and `stop` for it to exit.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start a single-node local cluster (one SPU) in the background.
    #[command(after_help = "Examples:
  rill cluster start
  rill cluster start --listen 127.0.0.1:9093 --flush always
  rill cluster start --foreground --listen 127.0.0.1:0 --data-dir /tmp/rill")]
    Start(StartArgs),
    /// Stop the SPU that `rill cluster start` started (SIGTERM, then wait).
    #[command(after_help = "Examples:
  rill cluster stop")]
    Stop,
    /// Say whether the local SPU runs and answers.
    #[command(after_help = "Examples:
  rill cluster status && echo up")]
    Status,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Flush {
    /// fsync before every acknowledgement
    Always,
    /// fsync every --flush-interval-ms
    Interval,
    /// leave it to the page cache (survives a process crash, not a power cut)
    Never,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Run in the foreground (for services and tests) instead of detaching.
    #[arg(long)]
    foreground: bool,
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    /// Where partition logs and topic metadata live [default: ~/.rill/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Create a topic when a client produces to or asks for a missing one.
    #[arg(long)]
    auto_create_topics: bool,
    /// Durability of the partition logs.
    #[arg(long, value_enum, default_value = "never")]
    flush: Flush,
    /// With --flush interval: milliseconds between fsyncs.
    #[arg(long, default_value_t = 1000)]
    flush_interval_ms: u64,
    /// Largest request frame in bytes.
    #[arg(long, default_value_t = 100 * 1024 * 1024)]
    max_frame_bytes: usize,
    /// Most client connections at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Milliseconds a request may take before its connection is closed.
    #[arg(long, default_value_t = 30_000)]
    request_timeout_ms: u64,
    /// Milliseconds a connection may stay silent between requests before it
    /// is closed (Kafka's connections.max.idle.ms).
    #[arg(long, default_value_t = 600_000)]
    connection_idle_timeout_ms: u64,
    /// Seconds between retention checks.
    #[arg(long, default_value_t = 5)]
    retention_check_secs: u64,
}

pub fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Start(args) if args.foreground => foreground(args),
        ClusterCommand::Start(args) => background(args),
        ClusterCommand::Stop => stop(),
        ClusterCommand::Status => status(),
    }
}

fn data_dir(args: &StartArgs) -> anyhow::Result<PathBuf> {
    Ok(match &args.data_dir {
        Some(d) => d.clone(),
        None => home::dir()?.join("data"),
    })
}

fn init_tracing() {
    let level = match std::env::var("RILL_LOG").as_deref() {
        Ok("error") => tracing::Level::ERROR,
        Ok("warn") => tracing::Level::WARN,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn foreground(args: StartArgs) -> anyhow::Result<()> {
    init_tracing();
    let mut config = SpuConfig::new(args.listen, data_dir(&args)?);
    config.auto_create_topics = args.auto_create_topics;
    config.max_frame_bytes = args.max_frame_bytes;
    config.max_connections = args.max_connections;
    config.request_timeout = Duration::from_millis(args.request_timeout_ms);
    config.connection_idle_timeout = Duration::from_millis(args.connection_idle_timeout_ms);
    config.retention_check_interval = Duration::from_secs(args.retention_check_secs.max(1));
    config.flush = match args.flush {
        Flush::Always => FlushPolicy::Always,
        Flush::Never => FlushPolicy::Never,
        Flush::Interval => FlushPolicy::Interval {
            messages: u64::MAX,
            interval: Duration::from_millis(args.flush_interval_ms),
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // Handlers first: whoever reads the line below may signal at once,
        // and a signal before the handlers would kill without a clean stop.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("installing the SIGINT handler")?;
        let spu = Spu::start(config).await?;
        // Tests and scripts read this line to learn the bound port.
        println!("rill SPU listening on {}", spu.local_addr());
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping: finishing in-flight requests and flushing logs");
        spu.shutdown().await;
        Ok(())
    })
}

/// The pid in the pid file, if that process still runs.
fn running_pid() -> anyhow::Result<Option<u32>> {
    let path = home::pid_file()?;
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return Ok(None);
    };
    Ok(alive(pid).then_some(pid))
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

fn answers(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .ok()
        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).ok())
        .is_some()
}

fn background(args: StartArgs) -> anyhow::Result<()> {
    let home = home::dir()?;
    let logs = home.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    if let Some(pid) = running_pid()? {
        let addr = home::profile_addr().unwrap_or_default();
        println!(
            "Rill is already running (pid {pid}) at {addr}. Stop it with `rill cluster stop`."
        );
        return Ok(());
    }
    if args.listen.port() == 0 {
        bail!("a background cluster needs a fixed port; use --foreground with port 0");
    }
    let data = data_dir(&args)?;
    let log_path = logs.join("spu.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let exe = std::env::current_exe().context("finding the rill binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(["cluster", "start", "--foreground", "--listen"])
        .arg(args.listen.to_string())
        .arg("--data-dir")
        .arg(&data)
        .arg("--flush")
        .arg(format!("{:?}", args.flush).to_lowercase())
        .arg("--flush-interval-ms")
        .arg(args.flush_interval_ms.to_string())
        .arg("--max-frame-bytes")
        .arg(args.max_frame_bytes.to_string())
        .arg("--max-connections")
        .arg(args.max_connections.to_string())
        .arg("--request-timeout-ms")
        .arg(args.request_timeout_ms.to_string())
        .arg("--connection-idle-timeout-ms")
        .arg(args.connection_idle_timeout_ms.to_string())
        .arg("--retention-check-secs")
        .arg(args.retention_check_secs.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: the terminal's ctrl-c does not reach it.
        .process_group(0);
    if args.auto_create_topics {
        cmd.arg("--auto-create-topics");
    }
    let mut child = cmd.spawn().context("starting the SPU")?;
    let pid = child.id();
    std::fs::write(home::pid_file()?, format!("{pid}\n")).context("writing the pid file")?;
    let addr = args.listen.to_string();
    let started = Instant::now();
    while !answers(&addr) {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the SPU exited ({status}) before answering; see {}:\n{}",
                log_path.display(),
                tail(&log_path)
            );
        }
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "the SPU did not answer at {addr} within {START_TIMEOUT:?}; see {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    home::write_profile(&addr)?;
    println!("Rill is running: one SPU at {addr} (pid {pid}).");
    println!("  data: {}", data.display());
    println!("  log:  {}", log_path.display());
    println!("  profile for clients: {}", home::profile()?.display());
    println!();
    println!("Try it:");
    println!("  rill topic create greetings");
    println!("  echo 'hello' | rill produce greetings");
    println!("  rill consume greetings -B -d");
    println!("Any Kafka client can use it too, e.g. kcat -b {addr}.");
    println!("Stop it with `rill cluster stop`.");
    Ok(())
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn stop() -> anyhow::Result<()> {
    let Some(pid) = running_pid()? else {
        println!("No Rill SPU is running.");
        let _ = std::fs::remove_file(home::pid_file()?);
        return Ok(());
    };
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("could not signal pid {pid}");
    }
    let started = Instant::now();
    while alive(pid) {
        if started.elapsed() > STOP_TIMEOUT {
            bail!("pid {pid} is still running {STOP_TIMEOUT:?} after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_file(home::pid_file()?).ok();
    println!("Rill stopped (pid {pid}).");
    Ok(())
}

fn status() -> anyhow::Result<()> {
    let addr = home::profile_addr();
    match (running_pid()?, addr) {
        (Some(pid), Some(addr)) if answers(&addr) => {
            println!("running: SPU pid {pid} answers at {addr}");
            Ok(())
        }
        (Some(pid), addr) => bail!(
            "SPU pid {pid} runs but does not answer at {}",
            addr.unwrap_or_else(|| "an unknown address".into())
        ),
        (None, _) => bail!("not running (start it with `rill cluster start`)"),
    }
}

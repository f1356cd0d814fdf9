//! `rill cluster start|stop|status`.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use rill_spu::{Spu, SpuConfig};
use rill_storage::FlushPolicy;

use crate::output::{Format, JsonObject};
use crate::{home, output};

/// How long `start` waits for the SPU to answer, and `stop` for it to exit.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Subcommand)]
// Parsed once per run: the size of `Start` costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum ClusterCommand {
    /// Start a local cluster in the background: one SPU with local
    /// metadata, or with --spus N, N SPUs and a local etcd.
    #[command(after_help = "Examples:
  rill cluster start
  rill cluster start --spus 3
  rill cluster start --spus 3 --listen 127.0.0.1:19092 --data-dir /tmp/rill3
  rill cluster start --spus 2 --etcd http://127.0.0.1:2379
  rill cluster start --listen 127.0.0.1:9093 --flush always
  rill cluster start --foreground --listen 127.0.0.1:0 --data-dir /tmp/rill")]
    Start(StartArgs),
    /// Stop what `rill cluster start` started (SIGTERM to each process by
    /// its pid, then wait).
    #[command(after_help = "Examples:
  rill cluster stop")]
    Stop,
    /// Say whether the local SPU (or every SPU of a local cluster) runs
    /// and answers; exits non-zero if one does not.
    #[command(after_help = "Examples:
  rill cluster status && echo up
  rill cluster status -O json")]
    Status {
        /// Output format.
        #[arg(short = 'O', long, value_enum, default_value = "table")]
        output: Format,
    },
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
    /// With --spus N, SPUs listen on this port and the N-1 after it.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub(crate) listen: SocketAddr,
    /// Where partition logs and topic metadata live [default: ~/.rill/data].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Start a cluster of this many SPUs with their metadata in etcd (a
    /// local etcd is started unless --etcd names one). Without it: one
    /// SPU with its metadata in local files, nothing else needed.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=crate::multi::MAX_LOCAL_SPUS as i64))]
    pub(crate) spus: Option<u16>,
    /// Use this etcd (`http://HOST:PORT`, comma-separated for several)
    /// instead of starting one; implies a cluster (--spus 1 by default).
    #[arg(long)]
    pub(crate) etcd: Option<String>,
    /// In a cluster: milliseconds after which a silent SPU's registration
    /// lapses and its partitions lose their leader.
    #[arg(long, default_value_t = 6000)]
    pub(crate) session_timeout_ms: u64,
    /// In a cluster: milliseconds a follower may stay behind its leader
    /// before it leaves the in-sync replicas (Kafka's
    /// replica.lag.time.max.ms).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) replica_lag_time_max_ms: u64,
    /// Serve the web console (`rill console`) here, talking to this SPU;
    /// port 0 picks a free port (printed at start) [default: 127.0.0.1:9644
    /// in the background, none with --foreground].
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) console_listen: Option<SocketAddr>,
    /// Serve no metrics endpoint (`cluster start` serves one by default).
    #[arg(long, conflicts_with = "metrics_listen")]
    pub(crate) no_metrics: bool,
    #[command(flatten)]
    pub(crate) spu: SpuOptions,
}

/// Where `cluster start` serves metrics: `--metrics-listen`, else a free
/// port on 127.0.0.1, unless `--no-metrics`.
pub(crate) fn metrics_listen(args: &StartArgs) -> Option<SocketAddr> {
    if args.no_metrics {
        return None;
    }
    Some(
        args.spu
            .metrics_listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
    )
}

/// Waits (within the start timeout) for the metrics address an SPU writes
/// to `path` once it serves.
pub(crate) fn wait_metrics_addr(path: &Path) -> anyhow::Result<SocketAddr> {
    let started = Instant::now();
    loop {
        if let Some(addr) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return Ok(addr);
        }
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "the SPU did not write its metrics address to {} within {START_TIMEOUT:?}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Settings of an SPU, shared by `cluster start` and `spu run`.
#[derive(Debug, Clone, Args)]
pub struct SpuOptions {
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
    /// Async threads that serve connections [default: one per core]. Where
    /// busy clients share the SPU's few cores (a benchmark on one machine),
    /// fewer threads mean fewer wake-ups of a second thread that the
    /// scheduler must first find a core for.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) async_threads: Option<u16>,
    /// Serve Prometheus metrics and health checks over HTTP here
    /// (`/metrics`, `/health/live`, `/health/ready`; port 0: a free port)
    /// [default: `spu run`: off; `cluster start`: 127.0.0.1:0, printed at
    /// start].
    #[arg(long)]
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// Write the bound metrics address to this file once serving (how
    /// `rill cluster start` learns the port its SPUs picked).
    #[arg(long, hide = true)]
    pub(crate) metrics_addr_file: Option<PathBuf>,
}

impl SpuOptions {
    /// Sets these options on `config`.
    pub fn apply(&self, config: &mut SpuConfig) {
        config.auto_create_topics = self.auto_create_topics;
        config.max_frame_bytes = self.max_frame_bytes;
        config.max_connections = self.max_connections;
        config.request_timeout = Duration::from_millis(self.request_timeout_ms);
        config.connection_idle_timeout = Duration::from_millis(self.connection_idle_timeout_ms);
        config.retention_check_interval = Duration::from_secs(self.retention_check_secs.max(1));
        config.metrics_listen = self.metrics_listen;
        config.flush = match self.flush {
            Flush::Always => FlushPolicy::Always,
            Flush::Never => FlushPolicy::Never,
            Flush::Interval => FlushPolicy::Interval {
                messages: u64::MAX,
                interval: Duration::from_millis(self.flush_interval_ms),
            },
        };
    }

    /// These options as command-line arguments, for a child process.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--flush".to_owned(),
            format!("{:?}", self.flush).to_lowercase(),
            "--flush-interval-ms".to_owned(),
            self.flush_interval_ms.to_string(),
            "--max-frame-bytes".to_owned(),
            self.max_frame_bytes.to_string(),
            "--max-connections".to_owned(),
            self.max_connections.to_string(),
            "--request-timeout-ms".to_owned(),
            self.request_timeout_ms.to_string(),
            "--connection-idle-timeout-ms".to_owned(),
            self.connection_idle_timeout_ms.to_string(),
            "--retention-check-secs".to_owned(),
            self.retention_check_secs.to_string(),
        ];
        if self.auto_create_topics {
            args.push("--auto-create-topics".to_owned());
        }
        if let Some(n) = self.async_threads {
            args.extend(["--async-threads".to_owned(), n.to_string()]);
        }
        args
    }
}

pub fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Start(args) if args.spus.is_some() || args.etcd.is_some() => {
            if args.foreground {
                bail!("--foreground runs one SPU alone; run each SPU of a cluster with `rill spu run`");
            }
            if args.console_listen.is_some() {
                bail!("--console-listen serves one SPU's console; for a cluster of SPUs run `rill console --listen ...` beside it");
            }
            crate::multi::start(args)
        }
        ClusterCommand::Start(args) if args.foreground => foreground(args),
        ClusterCommand::Start(args) => background(args),
        ClusterCommand::Stop if crate::multi::exists()? => crate::multi::stop(),
        ClusterCommand::Stop => stop(),
        ClusterCommand::Status { output } if crate::multi::exists()? => {
            crate::multi::status(output)
        }
        ClusterCommand::Status { output } => status(output),
    }
}

pub(crate) fn data_dir(args: &StartArgs) -> anyhow::Result<PathBuf> {
    Ok(match &args.data_dir {
        Some(d) => d.clone(),
        None => home::dir()?.join("data"),
    })
}

pub(crate) fn init_tracing() {
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
    let mut config = SpuConfig::new(args.listen, data_dir(&args)?);
    args.spu.apply(&mut config);
    config.metrics_listen = metrics_listen(&args);
    serve(
        config,
        args.spu.async_threads,
        args.console_listen,
        args.spu.metrics_addr_file.as_deref(),
        |addr, metrics| {
            // The first line is what tests and scripts read for the port.
            let mut banner = format!("rill SPU listening on {addr}\n");
            if let Some(m) = metrics {
                banner.push_str(&format!("rill SPU metrics at http://{m}/metrics\n"));
            }
            banner
        },
    )
}

/// Runs an SPU in this process until SIGINT or SIGTERM, then stops it
/// cleanly. `banner` (given the SPU's address and its metrics address, if
/// it serves metrics) is printed once it listens, then, with `console`, the
/// address of the web console served in this process; the metrics address
/// is written to `metrics_addr_file` if given.
pub(crate) fn serve(
    config: SpuConfig,
    async_threads: Option<u16>,
    console: Option<SocketAddr>,
    metrics_addr_file: Option<&Path>,
    banner: impl FnOnce(SocketAddr, Option<SocketAddr>) -> String,
) -> anyhow::Result<()> {
    init_tracing();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = async_threads {
        builder.worker_threads(usize::from(n));
    }
    let runtime = builder
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
        if let (Some(path), Some(m)) = (metrics_addr_file, spu.metrics_addr()) {
            home::write_whole(path, &format!("{m}\n"))?;
        }
        // The console is a convenience: without it the SPU serves on.
        let console = match console {
            Some(at) => match crate::console::spawn(
                at,
                spu.local_addr().to_string(),
                spu.metrics_addr().iter().map(ToString::to_string).collect(),
            )
            .await
            {
                Ok(addr) => Some(addr),
                Err(e) => {
                    tracing::warn!(error = %e, "the console (--console-listen) did not start");
                    None
                }
            },
            None => None,
        };
        // Tests and scripts read this line to learn the bound port. If
        // nobody reads stdout any more, the SPU runs on all the same.
        let _ = output::print(&banner(spu.local_addr(), spu.metrics_addr()));
        if let Some(addr) = console {
            let _ = output::print(&format!("console: http://{addr}/\n"));
        }
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
pub(crate) fn running_pid() -> anyhow::Result<Option<u32>> {
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
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Whether process `pid` holds a socket listening on `addr`'s port: the
/// inode of a LISTEN row of /proc/net/tcp{,6} for that port is one of the
/// process's open files. A TCP connect alone would take any program on the
/// port (a Kafka broker, an old SPU) for ours.
pub(crate) fn listens(pid: u32, addr: SocketAddr) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: Vec<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_owned())
        })
        .collect();
    let port = format!(":{:04X}", addr.port());
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        text.lines().skip(1).any(|row| {
            let cells: Vec<&str> = row.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            cells.len() > 9
                && cells[1].ends_with(&port)
                && cells[3] == "0A"
                && inodes.iter().any(|i| i == cells[9])
        })
    })
}

/// Whether a Kafka-speaking SPU answers ApiVersions at `addr`, within a
/// couple of seconds.
pub(crate) fn answers_api_versions(runtime: &tokio::runtime::Runtime, addr: SocketAddr) -> bool {
    runtime.block_on(async {
        matches!(
            tokio::time::timeout(
                Duration::from_secs(2),
                rill::Rill::connect_to(&addr.to_string())
            )
            .await,
            Ok(Ok(_))
        )
    })
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The address the running SPU was started on, as recorded by `start`.
fn recorded_addr() -> Option<SocketAddr> {
    let text = std::fs::read_to_string(home::addr_file().ok()?).ok()?;
    text.trim().parse().ok()
}

fn background(args: StartArgs) -> anyhow::Result<()> {
    let home = home::dir()?;
    let logs = home.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    if crate::multi::running()? {
        bail!(
            "a cluster of SPUs already runs from {}; stop it with `rill cluster stop`, or start a single SPU in its own cluster directory (RILL_HOME=/tmp/rill1 rill cluster start --listen ...)",
            home.display()
        );
    }
    if let Some(pid) = running_pid()? {
        let addr = recorded_addr()
            .map(|a| a.to_string())
            .or_else(home::profile_addr)
            .unwrap_or_else(|| "an unknown address".into());
        if addr == args.listen.to_string() {
            return output::print(&format!(
                "Rill is already running (pid {pid}) at {addr}. Stop it with `rill cluster stop`.\n"
            ));
        }
        bail!(
            "a cluster already runs from {} (pid {pid} at {addr}); stop it with `rill cluster stop`, \
             or start another one in its own cluster directory, e.g.\n  \
             RILL_HOME=/tmp/rill2 rill cluster start --listen {}",
            home.display(),
            args.listen
        );
    }
    if args.listen.port() == 0 {
        bail!("a background cluster needs a fixed port; use --foreground with port 0");
    }
    // The port must be free before the SPU starts: otherwise whatever holds
    // it would answer in the SPU's place.
    if let Err(e) = std::net::TcpListener::bind(args.listen) {
        bail!(
            "cannot listen on {}: {e}; another program holds the port (choose another with --listen)",
            args.listen
        );
    }
    // The console is a convenience: a busy port leaves it out, not the SPU.
    let console = args.console_listen.unwrap_or_else(|| {
        crate::console::DEFAULT_LISTEN
            .parse()
            .expect("a valid address")
    });
    let console = match std::net::TcpListener::bind(console) {
        Ok(_) if console.port() != 0 => Some(console),
        Ok(_) => bail!("a background cluster needs a fixed --console-listen port"),
        Err(e) => {
            output::eprint(&format!(
                "warning: no console: cannot listen on {console}: {e} (choose another with --console-listen)\n"
            ));
            None
        }
    };
    let data = data_dir(&args)?;
    let log_path = logs.join("spu.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let exe = std::env::current_exe().context("finding the rill binary")?;
    let metrics_file = home::metrics_addr_file()?;
    let _ = std::fs::remove_file(&metrics_file);
    let mut cmd = Command::new(exe);
    cmd.args(["cluster", "start", "--foreground", "--listen"])
        .arg(args.listen.to_string())
        .arg("--data-dir")
        .arg(&data)
        .args(args.spu.to_args())
        .args(
            console
                .iter()
                .flat_map(|c| ["--console-listen".to_owned(), c.to_string()]),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: the terminal's ctrl-c does not reach it.
        .process_group(0);
    match metrics_listen(&args) {
        Some(m) => cmd
            .arg("--metrics-listen")
            .arg(m.to_string())
            .arg("--metrics-addr-file")
            .arg(&metrics_file),
        None => cmd.arg("--no-metrics"),
    };
    let mut child = cmd.spawn().context("starting the SPU")?;
    let pid = child.id();
    std::fs::write(home::pid_file()?, format!("{pid}\n")).context("writing the pid file")?;
    std::fs::write(home::addr_file()?, format!("{}\n", args.listen))
        .context("writing the address file")?;
    let addr = args.listen;
    let runtime = runtime()?;
    let started = Instant::now();
    // Up only when our child holds the listening socket and answers as an
    // SPU: a TCP connect alone could reach another program.
    while !(listens(pid, addr) && answers_api_versions(&runtime, addr)) {
        if let Some(status) = child.try_wait()? {
            std::fs::remove_file(home::pid_file()?).ok();
            bail!(
                "the SPU exited ({status}) before answering; see {}:\n{}",
                log_path.display(),
                tail(&log_path)
            );
        }
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "the SPU (pid {pid}) did not answer at {addr} within {START_TIMEOUT:?}; see {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = match metrics_listen(&args) {
        Some(_) => format!(
            "\n  metrics: http://{}/metrics",
            wait_metrics_addr(&metrics_file)?
        ),
        None => String::new(),
    };
    let addr = addr.to_string();
    home::write_profile(&addr)?;
    let console = match console {
        Some(c) => format!("http://{c}/"),
        None => "not started (see the warning above)".to_owned(),
    };
    output::print(&format!(
        "Rill is running: one SPU at {addr} (pid {pid}).{metrics}
  console: {console}
  data: {}
  log:  {}
  profile for clients: {}

Try it:
  rill topic create greetings
  echo 'hello' | rill produce greetings
  rill consume greetings -B -d
Any Kafka client can use it too, e.g. kcat -b {addr}.
Stop it with `rill cluster stop`.
",
        data.display(),
        log_path.display(),
        home::profile()?.display()
    ))
}

pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn stop() -> anyhow::Result<()> {
    let Some(pid) = running_pid()? else {
        let _ = std::fs::remove_file(home::pid_file()?);
        return output::print("No Rill SPU is running.\n");
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
    std::fs::remove_file(home::metrics_addr_file()?).ok();
    output::print(&format!("Rill stopped (pid {pid}).\n"))
}

/// Running means: the recorded pid lives, holds the listening socket of the
/// recorded address, and that address answers ApiVersions.
fn status(format: Format) -> anyhow::Result<()> {
    let Some(pid) = running_pid()? else {
        bail!("not running (start it with `rill cluster start`)");
    };
    let Some(addr) = recorded_addr().or_else(|| home::profile_addr()?.parse().ok()) else {
        bail!("SPU pid {pid} runs but its address is unknown; restart it with `rill cluster stop` and `rill cluster start`");
    };
    if !listens(pid, addr) {
        bail!("pid {pid} runs but does not listen on {addr}: it is not the SPU `rill cluster start` started; restart with `rill cluster stop` and `rill cluster start`");
    }
    if !answers_api_versions(&runtime()?, addr) {
        bail!("SPU pid {pid} listens on {addr} but does not answer (ApiVersions)");
    }
    match format {
        Format::Json => output::print(&format!(
            "{}\n",
            JsonObject::new()
                .str("mode", "single")
                .raw(
                    "spus",
                    format!(
                        "[{}]",
                        JsonObject::new()
                            .raw("id", 0)
                            .str("addr", &addr.to_string())
                            .raw("pid", pid)
                            .raw("alive", true)
                            .finish()
                    )
                )
                .finish()
        )),
        Format::Table => output::print(&format!("running: SPU pid {pid} answers at {addr}\n")),
    }
}

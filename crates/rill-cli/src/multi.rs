//! `rill cluster start --spus N`: a local cluster of SPU processes with
//! their metadata in etcd (a local etcd process unless `--etcd` names one),
//! and `stop`/`status` for it.
//!
//! What runs is recorded in `<home>/cluster.state`, one process a line
//! (`etcd PID URL`, `spu ID PID ADDR`; pid 0 for an etcd not started
//! here), so `stop` signals exactly those pids and `status` checks them.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cluster::{alive, answers_api_versions, listens, runtime, tail, StartArgs};
use crate::home;
use crate::output::{self, json_array, table, Format, JsonObject};

/// Most SPUs `cluster start` runs on one machine.
pub const MAX_LOCAL_SPUS: u16 = 64;
/// How long `start` waits for etcd, each SPU and the controller election.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop` waits for a process to exit after SIGTERM before
/// sending SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A process of the local cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Etcd { pid: u32, url: String },
    Spu { id: u32, pid: u32, addr: SocketAddr },
}

fn state_file() -> anyhow::Result<PathBuf> {
    Ok(home::dir()?.join("cluster.state"))
}

fn read_state() -> anyhow::Result<Vec<Part>> {
    let path = state_file()?;
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let bad = || anyhow::anyhow!("{}: unreadable line {line:?}", path.display());
            match cells.as_slice() {
                ["etcd", pid, url] => Ok(Part::Etcd {
                    pid: pid.parse().map_err(|_| bad())?,
                    url: (*url).to_owned(),
                }),
                ["spu", id, pid, addr] => Ok(Part::Spu {
                    id: id.parse().map_err(|_| bad())?,
                    pid: pid.parse().map_err(|_| bad())?,
                    addr: addr.parse().map_err(|_| bad())?,
                }),
                _ => Err(bad()),
            }
        })
        .collect()
}

fn write_state(parts: &[Part]) -> anyhow::Result<()> {
    let text: String = parts
        .iter()
        .map(|p| match p {
            Part::Etcd { pid, url } => format!("etcd {pid} {url}\n"),
            Part::Spu { id, pid, addr } => format!("spu {id} {pid} {addr}\n"),
        })
        .collect();
    let path = state_file()?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// Whether a local cluster was started (and not stopped) from this home.
pub fn exists() -> anyhow::Result<bool> {
    Ok(state_file()?.exists())
}

/// Whether any recorded process of a local cluster still runs.
pub fn running() -> anyhow::Result<bool> {
    Ok(read_state()?.iter().any(|p| match p {
        Part::Etcd { pid, .. } | Part::Spu { pid, .. } => *pid != 0 && alive(*pid),
    }))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .context("finding a free port")?
        .local_addr()?
        .port())
}

/// Starts a process detached from the terminal (its own process group, so
/// the terminal's Ctrl-C does not reach it), output appended to `log`.
fn spawn(mut cmd: Command, log: &Path) -> anyhow::Result<Child> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0);
    Ok(cmd.spawn()?)
}

/// The local etcd's ports, kept beside its data so a restart finds its
/// member at the same peer address.
fn etcd_ports(data: &Path) -> anyhow::Result<(u16, u16)> {
    let path = data.join("etcd.ports");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let ports: Vec<u16> = text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if let [client, peer] = ports[..] {
            let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
            if free(client) && free(peer) {
                return Ok((client, peer));
            }
        }
    }
    let ports = (free_port()?, free_port()?);
    std::fs::write(&path, format!("{} {}\n", ports.0, ports.1))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(ports)
}

/// Starts etcd on loopback with its data under `data/etcd`; returns its
/// pid and client URL once it accepts connections.
fn start_etcd(data: &Path, logs: &Path) -> anyhow::Result<(u32, String)> {
    let (client_port, peer_port) = etcd_ports(data)?;
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let log = logs.join("etcd.log");
    let mut cmd = Command::new("etcd");
    cmd.arg("--name")
        .arg("rill")
        .arg("--data-dir")
        .arg(data.join("etcd"))
        .args(["--listen-client-urls", &client])
        .args(["--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("rill={peer}")]);
    let mut child = spawn(cmd, &log).map_err(|e| {
        anyhow::anyhow!(
            "cannot start etcd ({e}); install Debian's etcd-server (scripts/install-deps does), or give --etcd URL"
        )
    })?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", client_port)).is_err() {
        if let Some(status) = child.try_wait()? {
            bail!(
                "etcd exited ({status}) before listening; see {}:\n{}",
                log.display(),
                tail(&log)
            );
        }
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "etcd (pid {}) did not listen on {client} within {START_TIMEOUT:?}; see {}",
                child.id(),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((child.id(), client))
}

/// Sends SIGTERM to `pid` and waits for it to go; SIGKILL after
/// [`STOP_TIMEOUT`]. Whether it had to be killed.
fn terminate(pid: u32) -> anyhow::Result<bool> {
    if pid == 0 || !alive(pid) {
        return Ok(false);
    }
    let signal = |sig: &str| {
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .context("running kill")
    };
    signal("-TERM")?;
    let started = Instant::now();
    while alive(pid) {
        if started.elapsed() > STOP_TIMEOUT {
            signal("-KILL")?;
            std::thread::sleep(Duration::from_millis(100));
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(false)
}

/// Stops every recorded process: SPUs first (they leave the cluster
/// cleanly while etcd still runs), then etcd.
fn stop_parts(parts: &[Part]) -> anyhow::Result<Vec<String>> {
    let mut stopped = Vec::new();
    for p in parts {
        if let Part::Spu { id, pid, .. } = p {
            if alive(*pid) {
                let killed = terminate(*pid)?;
                stopped.push(format!(
                    "SPU {id} (pid {pid}{})",
                    if killed { ", killed" } else { "" }
                ));
            }
        }
    }
    for p in parts {
        if let Part::Etcd { pid, .. } = p {
            if *pid != 0 && alive(*pid) {
                terminate(*pid)?;
                stopped.push(format!("etcd (pid {pid})"));
            }
        }
    }
    Ok(stopped)
}

pub fn start(args: StartArgs) -> anyhow::Result<()> {
    let home = home::dir()?;
    let logs = home.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    if running()? {
        bail!(
            "a cluster already runs from {}; stop it with `rill cluster stop`, or start another in its own cluster directory, e.g.\n  RILL_HOME=/tmp/rill2 rill cluster start --spus 3 --listen 127.0.0.1:19092",
            home.display()
        );
    }
    if let Some(pid) = crate::cluster::running_pid()? {
        bail!(
            "a single SPU already runs from {} (pid {pid}); stop it with `rill cluster stop` first",
            home.display()
        );
    }
    let n = args.spus.unwrap_or(1);
    if args.listen.port() == 0 {
        bail!("a cluster needs a fixed first port (--listen HOST:PORT); its SPUs take that port and the next {}", n - 1);
    }
    let addrs: Vec<SocketAddr> = (0..n)
        .map(|i| {
            let port = args.listen.port().checked_add(i).ok_or_else(|| {
                anyhow::anyhow!("ports from {} on run past 65535", args.listen.port())
            })?;
            Ok(SocketAddr::new(args.listen.ip(), port))
        })
        .collect::<anyhow::Result<_>>()?;
    // Every port must be free first: whatever holds one would answer in an
    // SPU's place.
    for a in &addrs {
        if let Err(e) = std::net::TcpListener::bind(a) {
            bail!("cannot listen on {a}: {e}; another program holds the port (choose other ports with --listen)");
        }
    }
    let data = crate::cluster::data_dir(&args)?;
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let mut parts = Vec::new();
    let result = start_parts(&args, &data, &logs, &addrs, &mut parts);
    if let Err(e) = result {
        // Leave nothing half-started behind.
        let _ = stop_parts(&parts);
        let _ = std::fs::remove_file(state_file()?);
        return Err(e);
    }
    // Each SPU's metrics address, gathered into one file for other commands.
    let mut metrics = Vec::new();
    if crate::cluster::metrics_listen(&args).is_some() {
        let gathered = (|| -> anyhow::Result<()> {
            for i in 0..addrs.len() {
                let file = spu_metrics_file(i)?;
                metrics.push(crate::cluster::wait_metrics_addr(&file)?);
                let _ = std::fs::remove_file(file);
            }
            let lines: String = metrics.iter().map(|m| format!("{m}\n")).collect();
            home::write_whole(&home::metrics_addr_file()?, &lines)
        })();
        if let Err(e) = gathered {
            // An SPU that never came up: leave nothing half-started behind.
            let _ = stop_parts(&parts);
            let _ = std::fs::remove_file(state_file()?);
            return Err(e);
        }
    }
    let first = addrs[0].to_string();
    home::write_profile(&first)?;
    let etcd = parts
        .iter()
        .find_map(|p| match p {
            Part::Etcd { pid, url } if *pid != 0 => {
                Some(format!("{url} (pid {pid}, started here)"))
            }
            Part::Etcd { url, .. } => Some(url.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let spus: String = parts
        .iter()
        .filter_map(|p| match p {
            Part::Spu { id, pid, addr } => Some(match metrics.get(*id as usize) {
                Some(m) => {
                    format!("  SPU {id} at {addr} (pid {pid}), metrics http://{m}/metrics\n")
                }
                None => format!("  SPU {id} at {addr} (pid {pid})\n"),
            }),
            _ => None,
        })
        .collect();
    output::print(&format!(
        "Rill is running: a cluster of {n} SPU{} with its metadata in etcd.
{spus}  etcd: {etcd}
  data: {}
  logs: {}
  profile for clients: {}

Try it:
  rill topic create greetings --partitions 6
  rill partition list
  echo 'hello' | rill produce greetings
  rill consume greetings -B -d
  rill cluster status
Any Kafka client can use it too, e.g. kcat -b {first} -L.
Stop it with `rill cluster stop`.
",
        if n == 1 { "" } else { "s" },
        data.display(),
        logs.display(),
        home::profile()?.display()
    ))
}

/// Starts etcd (unless given) and the SPUs, recording each as it starts,
/// and waits until every SPU answers and a controller is elected.
fn start_parts(
    args: &StartArgs,
    data: &Path,
    logs: &Path,
    addrs: &[SocketAddr],
    parts: &mut Vec<Part>,
) -> anyhow::Result<()> {
    let url = match &args.etcd {
        Some(urls) => {
            parts.push(Part::Etcd {
                pid: 0,
                url: urls.clone(),
            });
            urls.clone()
        }
        None => {
            let (pid, url) = start_etcd(data, logs)?;
            parts.push(Part::Etcd {
                pid,
                url: url.clone(),
            });
            write_state(parts)?;
            url
        }
    };
    let exe = std::env::current_exe().context("finding the rill binary")?;
    let mut children = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let log = logs.join(format!("spu-{i}.log"));
        let mut cmd = Command::new(&exe);
        cmd.args(["spu", "run", "--id", &i.to_string(), "--etcd", &url])
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data.join(format!("spu-{i}")))
            .arg("--session-timeout-ms")
            .arg(args.session_timeout_ms.to_string())
            .arg("--replica-lag-time-max-ms")
            .arg(args.replica_lag_time_max_ms.to_string())
            .args(args.spu.to_args());
        if let Some(base) = crate::cluster::metrics_listen(args) {
            // A fixed port: SPU i takes it plus i, as with --listen.
            let port = match base.port() {
                0 => 0,
                p => p
                    .checked_add(i as u16)
                    .ok_or_else(|| anyhow::anyhow!("metrics ports from {p} on run past 65535"))?,
            };
            let file = spu_metrics_file(i)?;
            let _ = std::fs::remove_file(&file);
            cmd.arg("--metrics-listen")
                .arg(SocketAddr::new(base.ip(), port).to_string())
                .arg("--metrics-addr-file")
                .arg(file);
        }
        let child = spawn(cmd, &log).context("starting an SPU")?;
        parts.push(Part::Spu {
            id: i as u32,
            pid: child.id(),
            addr: *addr,
        });
        write_state(parts)?;
        children.push((i, *addr, child, log));
    }
    let runtime = runtime()?;
    let started = Instant::now();
    for (i, addr, child, log) in &mut children {
        let pid = child.id();
        while !(listens(pid, *addr) && answers_api_versions(&runtime, *addr)) {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "SPU {i} exited ({status}) before answering; see {}:\n{}",
                    log.display(),
                    tail(log)
                );
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "SPU {i} (pid {pid}) did not answer at {addr} within {START_TIMEOUT:?}; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Up when the cluster lists every SPU and has elected its controller.
    let first = addrs[0].to_string();
    let want = addrs.len();
    loop {
        let info = runtime.block_on(async {
            let rill = rill::Rill::connect_to(&first).await?;
            rill.admin().describe_cluster().await
        });
        match info {
            Ok(info) if info.spus.len() == want && info.controller.is_some() => return Ok(()),
            _ if started.elapsed() > START_TIMEOUT => bail!(
                "the cluster did not list its {want} SPUs with a controller within {START_TIMEOUT:?} (last answer: {info:?}); see the logs in {}",
                logs.display()
            ),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Where SPU `i` writes its metrics address as it starts.
fn spu_metrics_file(i: usize) -> anyhow::Result<std::path::PathBuf> {
    Ok(home::dir()?.join(format!("metrics_addr.spu-{i}")))
}

pub fn stop() -> anyhow::Result<()> {
    let parts = read_state()?;
    let stopped = stop_parts(&parts)?;
    std::fs::remove_file(state_file()?).ok();
    std::fs::remove_file(home::metrics_addr_file()?).ok();
    if stopped.is_empty() {
        return output::print("No Rill process was running; the cluster's record is cleared.\n");
    }
    output::print(&format!("Rill stopped: {}.\n", stopped.join(", ")))
}

/// Every recorded SPU with whether it runs and answers, the controller and
/// the partitions without a leader; an error (exit 1) after printing if an
/// SPU is down.
pub fn status(format: Format) -> anyhow::Result<()> {
    let parts = read_state()?;
    let runtime = runtime()?;
    let mut spus = Vec::new();
    let mut etcd = None;
    for p in &parts {
        match p {
            Part::Spu { id, pid, addr } => {
                let up =
                    alive(*pid) && listens(*pid, *addr) && answers_api_versions(&runtime, *addr);
                spus.push((*id, *addr, *pid, up));
            }
            Part::Etcd { pid, url } => etcd = Some((*pid, url.clone(), *pid == 0 || alive(*pid))),
        }
    }
    let answering = spus.iter().find(|s| s.3).map(|s| s.1.to_string());
    let info = match &answering {
        Some(addr) => runtime
            .block_on(async {
                let rill = rill::Rill::connect_to(addr).await?;
                rill.admin().describe_cluster().await
            })
            .ok(),
        None => None,
    };
    let controller = info.as_ref().and_then(|i| i.controller);
    let leaderless = info
        .as_ref()
        .map(|i| i.leaderless.clone())
        .unwrap_or_default();
    let under_replicated = info
        .as_ref()
        .map(|i| i.under_replicated.clone())
        .unwrap_or_default();
    let down = spus.iter().filter(|s| !s.3).count();
    let text = match format {
        Format::Json => {
            let spu_items = spus.iter().map(|(id, addr, pid, up)| {
                JsonObject::new()
                    .raw("id", id)
                    .str("addr", &addr.to_string())
                    .raw("pid", pid)
                    .raw("alive", up)
                    .finish()
            });
            let mut obj = JsonObject::new()
                .str("mode", "cluster")
                .raw("spus", json_array(spu_items))
                .raw(
                    "controller",
                    controller.map_or("null".to_owned(), |c| c.to_string()),
                );
            if let Some((pid, url, up)) = &etcd {
                obj = obj.raw(
                    "etcd",
                    JsonObject::new()
                        .str("url", url)
                        .raw(
                            "pid",
                            if *pid == 0 {
                                "null".to_owned()
                            } else {
                                pid.to_string()
                            },
                        )
                        .raw("alive", up)
                        .finish(),
                );
            }
            let leaderless_items = leaderless.iter().map(|(t, p)| {
                JsonObject::new()
                    .str("topic", t)
                    .raw("partition", p)
                    .finish()
            });
            let under_items = under_replicated.iter().map(|(t, p)| {
                JsonObject::new()
                    .str("topic", t)
                    .raw("partition", p)
                    .finish()
            });
            format!(
                "{}\n",
                obj.raw("leaderless", json_array(leaderless_items))
                    .raw("under_replicated", json_array(under_items))
                    .finish()
            )
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = spus
                .iter()
                .map(|(id, addr, pid, up)| {
                    vec![
                        id.to_string(),
                        addr.to_string(),
                        pid.to_string(),
                        if *up { "up" } else { "DOWN" }.to_owned(),
                        if controller == Some(*id as i32) {
                            "controller"
                        } else {
                            ""
                        }
                        .to_owned(),
                    ]
                })
                .collect();
            let mut out = table(&["SPU", "ADDRESS", "PID", "STATE", "ROLE"], &rows);
            if let Some((pid, url, up)) = &etcd {
                let state = if *up { "up" } else { "DOWN" };
                let who = if *pid == 0 {
                    "given with --etcd".to_owned()
                } else {
                    format!("pid {pid}")
                };
                out.push_str(&format!("etcd: {url} ({who}, {state})\n"));
            }
            if controller.is_none() {
                out.push_str("controller: none elected\n");
            }
            if leaderless.is_empty() {
                out.push_str("every partition has a leader\n");
            } else {
                let list: Vec<String> =
                    leaderless.iter().map(|(t, p)| format!("{t}-{p}")).collect();
                out.push_str(&format!(
                    "partitions without a leader: {}\n",
                    list.join(", ")
                ));
            }
            if !under_replicated.is_empty() {
                let list: Vec<String> = under_replicated
                    .iter()
                    .map(|(t, p)| format!("{t}-{p}"))
                    .collect();
                out.push_str(&format!(
                    "under-replicated partitions (fewer copies in sync than replicas): {}\n",
                    list.join(", ")
                ));
            }
            out
        }
    };
    output::print(&text)?;
    if spus.is_empty() {
        bail!("no SPU is recorded for this cluster; start it with `rill cluster start --spus N`");
    }
    if down > 0 {
        bail!(
            "{down} of {} SPUs are down (see the logs in {})",
            spus.len(),
            home::dir()?.join("logs").display()
        );
    }
    Ok(())
}

//! `rill spu run`: one SPU of a cluster as a service, in the foreground.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use rill_spu::{ClusterSettings, SpuConfig};

use crate::cluster::{serve, SpuOptions};

#[derive(Debug, Subcommand)]
pub enum SpuCommand {
    /// Run one SPU of a cluster in the foreground until SIGTERM or Ctrl-C
    /// (for systemd units and scripts; `rill cluster start --spus N` runs
    /// local ones for you).
    #[command(after_help = "Examples:
  rill spu run --id 0 --etcd http://127.0.0.1:2379 --listen 0.0.0.0:9092 --advertise spu0.example:9092 --data-dir /var/lib/rill
  rill spu run --id 1 --etcd http://10.0.0.5:2379,http://10.0.0.6:2379 --listen 127.0.0.1:9093 --data-dir /tmp/spu1")]
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// This SPU's id in the cluster (unique; 0 or more).
    #[arg(long)]
    id: u32,
    /// The cluster's etcd: `http://HOST:PORT`, comma-separated for several.
    #[arg(long, value_delimiter = ',', required = true)]
    etcd: Vec<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    /// `HOST:PORT` clients are told to connect to [default: the listen
    /// address].
    #[arg(long)]
    advertise: Option<String>,
    /// Where this SPU's partition logs live.
    #[arg(long)]
    data_dir: PathBuf,
    /// Milliseconds after which this SPU's registration lapses if it stops
    /// renewing it (it died or lost etcd); its partitions then lose their
    /// leader.
    #[arg(long, default_value_t = 6000)]
    session_timeout_ms: u64,
    /// Milliseconds a follower may stay behind its leader before it leaves
    /// the in-sync replicas (Kafka's replica.lag.time.max.ms).
    #[arg(long, default_value_t = 10_000)]
    replica_lag_time_max_ms: u64,
    #[command(flatten)]
    spu: SpuOptions,
}

pub fn run(cmd: SpuCommand) -> anyhow::Result<()> {
    match cmd {
        SpuCommand::Run(args) => run_spu(args),
    }
}

fn run_spu(args: RunArgs) -> anyhow::Result<()> {
    let mut config = SpuConfig::new(args.listen, args.data_dir);
    args.spu.apply(&mut config);
    config.node_id = i32::try_from(args.id)
        .map_err(|_| anyhow::anyhow!("--id {} is too large (at most {})", args.id, i32::MAX))?;
    if let Some(advertise) = &args.advertise {
        crate::check_addr_syntax(advertise, "--advertise")?;
        let (host, port) = advertise
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| anyhow::anyhow!("--advertise {advertise:?} is not HOST:PORT"))?;
        config.advertised = Some((host, port));
    }
    if args.session_timeout_ms < 100 {
        anyhow::bail!(
            "--session-timeout-ms must be at least 100 (got {})",
            args.session_timeout_ms
        );
    }
    let mut cluster = ClusterSettings::etcd(args.etcd);
    cluster.session_timeout = Duration::from_millis(args.session_timeout_ms);
    if args.replica_lag_time_max_ms < 100 {
        anyhow::bail!(
            "--replica-lag-time-max-ms must be at least 100 (got {})",
            args.replica_lag_time_max_ms
        );
    }
    cluster.replica_lag_time_max = Duration::from_millis(args.replica_lag_time_max_ms);
    config.cluster = Some(cluster);
    let id = args.id;
    serve(
        config,
        args.spu.async_threads,
        None,
        args.spu.metrics_addr_file.as_deref(),
        move |addr, metrics| {
            let mut banner = format!("rill SPU {id} listening on {addr}\n");
            if let Some(m) = metrics {
                banner.push_str(&format!("rill SPU {id} metrics at http://{m}/metrics\n"));
            }
            banner
        },
    )
}

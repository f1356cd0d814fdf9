//! `rill console`: a web console for a cluster, served from this binary
//! (pages embedded, no build step). It talks to the cluster only through
//! the Kafka protocol and the SPUs' metrics endpoints.

pub mod api;
pub mod http;
pub mod metrics;
pub mod sampler;

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;

use crate::output;

/// Where `rill console` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9644";

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rill console
  rill console --listen 0.0.0.0:9644
  rill console --listen 127.0.0.1:0 --bootstrap 127.0.0.1:9092
  rill console --metrics 127.0.0.1:9102,127.0.0.1:9103")]
pub struct ConsoleArgs {
    /// Address to serve the console on; port 0 picks a free port (the
    /// address is printed at start).
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "HOST:PORT")]
    listen: SocketAddr,
    /// The SPU to talk to [default: --addr, else the profile of `rill
    /// cluster start`, else 127.0.0.1:9092].
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap: Option<String>,
    /// The SPUs' metrics endpoints (`--metrics-listen`), where sizes on
    /// disk and SPU health come from; repeat or separate with commas
    /// [default: the lines of $RILL_HOME/metrics_addr, written by `rill
    /// cluster start`, else none].
    #[arg(long, value_name = "HOST:PORT", value_delimiter = ',')]
    metrics: Vec<String>,
}

/// The metrics endpoints: `--metrics`, else those `rill cluster start`
/// recorded, else none.
fn metrics_endpoints(given: &[String]) -> anyhow::Result<Vec<String>> {
    let given: Vec<String> = given
        .iter()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    if !given.is_empty() {
        for m in &given {
            crate::check_addr_syntax(m, "--metrics")?;
        }
        return Ok(given);
    }
    let Ok(path) = crate::home::metrics_addr_file() else {
        return Ok(Vec::new());
    };
    Ok(std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Starts the console's server and sampler on the current runtime; returns
/// the address it listens on. `metrics` are the SPUs' metrics endpoints.
pub async fn spawn(
    listen: SocketAddr,
    bootstrap: String,
    metrics: Vec<String>,
) -> anyhow::Result<SocketAddr> {
    let listener = http::bind(listen).await?;
    let addr = listener.local_addr()?;
    let console = Arc::new(api::Console::new(bootstrap, metrics));
    tokio::spawn(http::serve(listener, console.clone()));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(sampler::SAMPLE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match console.sample().await {
                Ok(totals) => console.samples.record(now_ms(), &totals),
                Err(e) => tracing::debug!(error = %e, "console: sampling failed"),
            }
        }
    });
    Ok(addr)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `rill console`: serves until ctrl-c or SIGTERM.
pub async fn run(args: ConsoleArgs, global: &crate::Global) -> anyhow::Result<()> {
    let bootstrap = match args.bootstrap.as_deref().map(str::trim) {
        Some(b) if !b.is_empty() => {
            crate::check_addr_syntax(b, "--bootstrap")?;
            b.to_owned()
        }
        _ => global.addr_or_profile(),
    };
    let metrics = metrics_endpoints(&args.metrics)?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let addr = spawn(args.listen, bootstrap.clone(), metrics.clone()).await?;
    let metrics = if metrics.is_empty() {
        "no metrics endpoints: sizes and SPU health not shown; see --metrics".to_owned()
    } else {
        format!("metrics at {}", metrics.join(", "))
    };
    output::print(&format!(
        "rill console listening on http://{addr}/ (cluster at {bootstrap}; {metrics})\n"
    ))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

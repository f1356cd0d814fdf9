//! The floor for a durable acknowledgement: append `size` bytes to a file
//! and fdatasync, one at a time, timing each append plus its sync.
//! Usage: fdatasync_loop DIR [COUNT] [SIZE]
//! Prints `fdatasync p50_us=.. p99_us=.. p999_us=.. ops_per_s=..`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use hdrhistogram::Histogram;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir: PathBuf = args
        .next()
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    let count: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2_000);
    let size: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let path = dir.join(format!("fdatasync-loop-{}.log", std::process::id()));
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    let record = vec![b'x'; size];
    let mut h = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        file.write_all(&record)?;
        file.sync_data()?;
        h.record((t.elapsed().as_nanos() as u64 / 1000).max(1))?;
    }
    let secs = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    println!(
        "fdatasync p50_us={} p99_us={} p999_us={} ops_per_s={:.0}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        count as f64 / secs
    );
    Ok(())
}

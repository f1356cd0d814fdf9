//! The process's resident memory and CPU time, from /proc (Linux; the
//! metrics are left out elsewhere).

use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The kernel's USER_HZ: /proc reports CPU times in these ticks, 100 a
/// second on every Linux architecture (whatever the kernel's own HZ).
const USER_HZ: f64 = 100.0;

/// Resident set size in bytes, from `VmRSS` (kB) of /proc/self/status.
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU seconds, from /proc/self/stat: `utime` and `stime`
/// are the 14th and 15th fields, the 12th and 13th after the
/// parenthesised command name (which may hold spaces).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Registers the process metrics as read now.
pub(super) fn register(registry: &mut Registry) {
    if let Some(bytes) = resident_bytes() {
        registry.register(
            "rill_process_resident_memory_bytes",
            "Resident memory of the SPU process",
            ConstGauge::new(bytes),
        );
    }
    if let Some(seconds) = cpu_seconds() {
        registry.register(
            "rill_process_cpu_seconds",
            "User and system CPU time of the SPU process",
            ConstCounter::<f64>::new(seconds),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(resident_bytes().is_some_and(|b| b > 0));
        assert!(cpu_seconds().is_some_and(|s| s >= 0.0));
    }
}

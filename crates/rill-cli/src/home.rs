//! `~/.rill`: the profile, the SPU's pid file, data and logs.

use std::path::PathBuf;

use anyhow::Context;

/// The Rill home: `$RILL_HOME` if set, else `~/.rill`.
pub fn dir() -> anyhow::Result<PathBuf> {
    if let Some(home) = std::env::var_os("RILL_HOME") {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME").context("HOME is not set; set RILL_HOME instead")?;
    Ok(PathBuf::from(home).join(".rill"))
}

pub fn profile() -> anyhow::Result<PathBuf> {
    Ok(dir()?.join("config.toml"))
}

pub fn pid_file() -> anyhow::Result<PathBuf> {
    Ok(dir()?.join("spu.pid"))
}

/// The address the background SPU was started on (`rill cluster status`
/// checks that its pid listens there).
pub fn addr_file() -> anyhow::Result<PathBuf> {
    Ok(dir()?.join("spu.addr"))
}

/// The metrics address of each SPU `rill cluster start` started, one
/// `HOST:PORT` a line (SPU 0 first); `/metrics`, `/health/live` and
/// `/health/ready` are served there.
pub fn metrics_addr_file() -> anyhow::Result<PathBuf> {
    Ok(dir()?.join("metrics_addr"))
}

/// Writes `text` to `path` whole or not at all (temp file, rename), so a
/// reader polling for it never sees half of it.
pub fn write_whole(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    // `.tmp` after the whole name: `with_extension` would give
    // `metrics_addr.spu-0` and `metrics_addr.spu-1` one temp file, and SPUs
    // starting together renamed each other's away.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Points the `local` profile at `addr` and makes it the one in use: what
/// the client reads (`Rill::connect()`). Other profiles are kept.
pub fn write_profile(addr: &str) -> anyhow::Result<()> {
    let mut p = crate::profile::Profiles::load()?;
    p.set(crate::profile::LOCAL, addr);
    p.current = Some(crate::profile::LOCAL.into());
    p.save()
}

/// The cluster address in the profile, if there is one.
pub fn profile_addr() -> Option<String> {
    let text = std::fs::read_to_string(profile().ok()?).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "addr").then(|| v.trim().trim_matches('"').to_owned())
    })
}

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

/// Writes the profile the client reads (`Rill::connect()`).
pub fn write_profile(addr: &str) -> anyhow::Result<()> {
    let path = profile()?;
    let text = format!(
        "# Written by `rill cluster start`; read by Rill clients.\n[cluster]\naddr = \"{addr}\"\n"
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// The cluster address in the profile, if there is one.
pub fn profile_addr() -> Option<String> {
    let text = std::fs::read_to_string(profile().ok()?).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "addr").then(|| v.trim().trim_matches('"').to_owned())
    })
}

//! `rill profile list|add|use|remove`: named cluster addresses, as Fluvio's
//! and rpk's profiles. They live in the profile file clients read
//! (`$RILL_HOME/config.toml`): the current profile's address comes first,
//! under `[cluster]`, where `Rill::connect()` finds it; every profile
//! follows under `[profile.NAME]`.

use clap::Subcommand;

use crate::output::{self, json_array, table, Format, JsonObject};
use crate::{home, usage};

/// The profile `rill cluster start` writes.
pub const LOCAL: &str = "local";

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// List the profiles; `*` marks the one in use.
    #[command(after_help = "Examples:
  rill profile list
  rill profile list -O json")]
    List {
        /// Output format.
        #[arg(short = 'O', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Add a profile (or change its address).
    #[command(after_help = "Examples:
  rill profile add staging 10.0.0.7:9092
  rill profile add prod kafka.example.com:9092 --use")]
    Add {
        /// The profile's name: letters, digits, '.', '_' and '-'.
        name: String,
        /// The cluster's address, HOST:PORT.
        #[arg(id = "cluster_addr", value_name = "HOST:PORT")]
        addr: String,
        /// Use it from now on.
        #[arg(long = "use")]
        use_it: bool,
    },
    /// Use a profile for every later command (and `Rill::connect()`).
    #[command(after_help = "Examples:
  rill profile use staging")]
    Use {
        /// The profile.
        name: String,
    },
    /// Remove a profile.
    #[command(after_help = "Examples:
  rill profile remove staging")]
    Remove {
        /// The profile.
        name: String,
    },
}

/// The profile file's contents.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Profiles {
    pub current: Option<String>,
    pub profiles: Vec<(String, String)>,
}

impl Profiles {
    /// Reads the file; a file written before profiles existed (only
    /// `[cluster] addr`) is one profile, `local`.
    pub fn load() -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(home::profile()?).unwrap_or_default();
        Ok(Self::parse(&text))
    }

    fn parse(text: &str) -> Self {
        let mut p = Profiles::default();
        let mut section = String::new();
        let mut cluster_addr = None;
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_owned();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"').to_owned();
            match (section.as_str(), key.trim()) {
                ("cluster", "addr") => cluster_addr = Some(value),
                ("cluster", "profile") => p.current = Some(value),
                (s, "addr") => {
                    if let Some(name) = s.strip_prefix("profile.") {
                        p.set(name, &value);
                    }
                }
                _ => {}
            }
        }
        if p.profiles.is_empty() {
            if let Some(addr) = cluster_addr {
                p.set(LOCAL, &addr);
                p.current = Some(LOCAL.into());
            }
        }
        p
    }

    fn render(&self) -> String {
        let mut text = String::from("# Written by `rill`; read by Rill clients.\n[cluster]\n");
        if let Some(addr) = self.current_addr() {
            text.push_str(&format!("addr = \"{addr}\"\n"));
        }
        if let Some(current) = &self.current {
            text.push_str(&format!("profile = \"{current}\"\n"));
        }
        for (name, addr) in &self.profiles {
            text.push_str(&format!("\n[profile.{name}]\naddr = \"{addr}\"\n"));
        }
        text
    }

    pub fn save(&self) -> anyhow::Result<()> {
        let path = home::profile()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, self.render())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
    }

    pub fn set(&mut self, name: &str, addr: &str) {
        match self.profiles.iter_mut().find(|(n, _)| n == name) {
            Some(p) => p.1 = addr.to_owned(),
            None => self.profiles.push((name.to_owned(), addr.to_owned())),
        }
    }

    fn current_addr(&self) -> Option<&str> {
        let current = self.current.as_deref()?;
        self.profiles
            .iter()
            .find(|(n, _)| n == current)
            .map(|(_, a)| a.as_str())
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        usage!("profile name {name:?}: use letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

fn unknown(name: &str, p: &Profiles) -> anyhow::Error {
    let names: Vec<&str> = p.profiles.iter().map(|(n, _)| n.as_str()).collect();
    anyhow::Error::new(crate::Usage(format!(
        "no profile {name:?} (profiles: {}; add one with `rill profile add NAME HOST:PORT`)",
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    )))
}

pub fn run(cmd: ProfileCommand) -> anyhow::Result<()> {
    let mut p = Profiles::load()?;
    match cmd {
        ProfileCommand::List { output } => {
            let text = match output {
                Format::Json => {
                    json_array(p.profiles.iter().map(|(name, addr)| {
                        JsonObject::new()
                            .str("name", name)
                            .str("addr", addr)
                            .raw("current", p.current.as_deref() == Some(name.as_str()))
                            .finish()
                    })) + "\n"
                }
                Format::Table if p.profiles.is_empty() => {
                    "no profiles (add one with `rill profile add NAME HOST:PORT`)\n".into()
                }
                Format::Table => table(
                    &["", "PROFILE", "ADDRESS"],
                    &p.profiles
                        .iter()
                        .map(|(name, addr)| {
                            let mark = if p.current.as_deref() == Some(name.as_str()) {
                                "*"
                            } else {
                                ""
                            };
                            vec![mark.to_owned(), name.clone(), addr.clone()]
                        })
                        .collect::<Vec<_>>(),
                ),
            };
            output::print(&text)
        }
        ProfileCommand::Add { name, addr, use_it } => {
            check_name(&name)?;
            crate::check_addr_syntax(&addr, "the profile")?;
            p.set(&name, &addr);
            if use_it || p.current.is_none() {
                p.current = Some(name.clone());
            }
            p.save()?;
            let using = if p.current.as_deref() == Some(name.as_str()) {
                " (in use)"
            } else {
                ""
            };
            output::print(&format!("profile \"{name}\" → {addr}{using}\n"))
        }
        ProfileCommand::Use { name } => {
            if !p.profiles.iter().any(|(n, _)| *n == name) {
                return Err(unknown(&name, &p));
            }
            p.current = Some(name.clone());
            p.save()?;
            let addr = p.current_addr().unwrap_or_default().to_owned();
            output::print(&format!("using profile \"{name}\" ({addr})\n"))
        }
        ProfileCommand::Remove { name } => {
            if !p.profiles.iter().any(|(n, _)| *n == name) {
                return Err(unknown(&name, &p));
            }
            p.profiles.retain(|(n, _)| *n != name);
            if p.current.as_deref() == Some(name.as_str()) {
                p.current = None;
            }
            p.save()?;
            output::print(&format!("profile \"{name}\" removed\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_address_comes_first_and_old_files_are_read() {
        let old = "# Written by `rill cluster start`\n[cluster]\naddr = \"127.0.0.1:9092\"\n";
        let p = Profiles::parse(old);
        assert_eq!(p.current.as_deref(), Some("local"));
        assert_eq!(p.profiles, vec![("local".into(), "127.0.0.1:9092".into())]);

        let mut p = p;
        p.set("prod", "kafka:9092");
        p.current = Some("prod".into());
        let text = p.render();
        // Clients take the first `addr` line.
        let first = text.lines().find(|l| l.starts_with("addr")).unwrap();
        assert_eq!(first, "addr = \"kafka:9092\"");
        assert_eq!(Profiles::parse(&text), p);
    }
}

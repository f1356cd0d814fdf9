//! `rill topic add-partitions` and `rill topic alter-config`: a topic
//! changed in place.

use clap::{ArgGroup, Args};
use rill::{ConfigChange, Rill};

use crate::topic::{humane, not_found};
use crate::units::{parse_retention, parse_size, parse_size_or_unlimited};
use crate::{output, usage};

/// Most partitions a topic may have (the SPU's limit).
const MAX_PARTITIONS: u32 = 10_000;

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("how_many").args(["count", "add"]).required(true)),
    after_help = "Examples:
  rill topic add-partitions orders --count 6     # 6 in all
  rill topic add-partitions orders --add 2       # 2 more than now

Partitions can only be added. Records with a key may go to another partition
than before once producers see the new count (`rill produce` asks when it
starts; the client library within a minute)."
)]
pub struct AddPartitionsArgs {
    /// The topic.
    name: String,
    /// The topic's new total of partitions (what Kafka's CreatePartitions
    /// takes): more than it has now.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PARTITIONS)))]
    count: Option<u32>,
    /// How many partitions to add to those it has.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PARTITIONS)))]
    add: Option<u32>,
}

pub async fn add_partitions(rill: &Rill, args: AddPartitionsArgs) -> anyhow::Result<()> {
    let admin = rill.admin();
    let current = admin.describe_topic(&args.name).await?.partitions;
    let total = match (args.count, args.add) {
        (Some(n), _) => {
            if n <= current {
                usage!(
                    "--count {n} is not more than the {current} partition{} topic \"{}\" has; \
                     partitions can only be added",
                    if current == 1 { "" } else { "s" },
                    args.name
                );
            }
            n
        }
        (None, Some(k)) => match current.checked_add(k).filter(|t| *t <= MAX_PARTITIONS) {
            Some(t) => t,
            None => usage!(
                "--add {k} would give topic \"{}\" {} partitions; a topic has at most {MAX_PARTITIONS}",
                args.name,
                u64::from(current) + u64::from(k)
            ),
        },
        // clap requires one of them.
        (None, None) => usage!("give --count N (the new total) or --add K"),
    };
    admin
        .create_partitions(&args.name, total)
        .await
        .map_err(not_found)?;
    output::print(&format!(
        "topic \"{}\" now has {total} partitions (was {current})\n",
        args.name
    ))
}

/// One `--set KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    key: String,
    value: String,
}

/// `KEY=VALUE`, with the CLI's units accepted where Kafka wants numbers:
/// `retention.ms=7d` (or `unlimited`), `segment.bytes=256MiB`,
/// `retention.bytes=10GiB` (or `unlimited`), `max.message.bytes=8MiB`.
fn parse_setting(text: &str) -> Result<Setting, String> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(format!("{text:?} is not KEY=VALUE, e.g. retention.ms=7d"));
    };
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() {
        return Err(format!("{text:?} has no config name before '='"));
    }
    if value.is_empty() {
        return Err(format!(
            "{key} has no value (use --delete {key} to put it back to its default)"
        ));
    }
    let numeric = value.parse::<i64>().is_ok();
    let value = match key {
        "retention.ms" if !numeric => parse_retention(value)?.to_string(),
        "retention.bytes" if !numeric => parse_size_or_unlimited(value)?.to_string(),
        "segment.bytes" | "max.message.bytes" if !numeric => parse_size(value)?.to_string(),
        _ => value.to_owned(),
    };
    Ok(Setting {
        key: key.to_owned(),
        value,
    })
}

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("changes").args(["set", "delete"]).required(true).multiple(true)),
    after_help = "Examples:
  rill topic alter-config orders --set retention.ms=1h
  rill topic alter-config blobs --set max.message.bytes=8MiB --set segment.bytes=256MiB
  rill topic alter-config orders --delete retention.ms      # back to the default
  rill topic alter-config orders --set retention.bytes=unlimited --set compression.type=zstd

Configs: retention.ms, retention.bytes, segment.bytes, max.message.bytes,
compression.type (producer, none, gzip, snappy, lz4, zstd) and cleanup.policy
(delete). Each takes effect on the running topic: retention at the next
retention pass, max.message.bytes and compression.type at the next produce,
segment.bytes at the next segment roll. Configs not given are left as they are."
)]
pub struct AlterConfigArgs {
    /// The topic.
    name: String,
    /// Set a config: KEY=VALUE (repeat for several).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    set: Vec<Setting>,
    /// Put a config back to its default (repeat for several).
    #[arg(long = "delete", value_name = "KEY")]
    delete: Vec<String>,
}

pub async fn alter_config(rill: &Rill, args: AlterConfigArgs) -> anyhow::Result<()> {
    let mut changes = Vec::with_capacity(args.set.len() + args.delete.len());
    let mut keys: Vec<String> = Vec::new();
    for s in &args.set {
        changes.push(ConfigChange::Set(s.key.clone(), s.value.clone()));
        keys.push(s.key.clone());
    }
    for k in &args.delete {
        let k = k.trim();
        if k.is_empty() {
            usage!("--delete needs a config name, e.g. --delete retention.ms");
        }
        changes.push(ConfigChange::Delete(k.to_owned()));
        keys.push(k.to_owned());
    }
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].contains(k) {
            usage!("{k} is given more than once (in --set or --delete)");
        }
    }
    let admin = rill.admin();
    admin
        .alter_topic_config(&args.name, &changes)
        .await
        .map_err(not_found)?;
    // What the SPU has now, as `topic describe` shows it.
    let described = admin.describe_topic(&args.name).await?;
    let mut text = String::new();
    for k in &keys {
        if let Some((_, value, set)) = described.configs.iter().find(|(name, _, _)| name == k) {
            let shown = humane(k, value);
            let value = if &shown == value {
                value.clone()
            } else {
                format!("{value} ({shown})")
            };
            let source = if *set { "" } else { " (default)" };
            text.push_str(&format!("topic \"{}\": {k} = {value}{source}\n", args.name));
        }
    }
    output::print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_take_the_cli_units() {
        let s = |k: &str, v: &str| {
            Ok(Setting {
                key: k.into(),
                value: v.into(),
            })
        };
        assert_eq!(
            parse_setting("retention.ms=1h"),
            s("retention.ms", "3600000")
        );
        assert_eq!(parse_setting("retention.ms=-1"), s("retention.ms", "-1"));
        assert_eq!(
            parse_setting("retention.ms=unlimited"),
            s("retention.ms", "-1")
        );
        assert_eq!(
            parse_setting(" segment.bytes = 1MiB "),
            s("segment.bytes", "1048576")
        );
        assert_eq!(
            parse_setting("retention.bytes=unlimited"),
            s("retention.bytes", "-1")
        );
        assert_eq!(
            parse_setting("compression.type=zstd"),
            s("compression.type", "zstd")
        );
        // Unknown configs pass through: the SPU says what it supports.
        assert_eq!(parse_setting("x.y=z"), s("x.y", "z"));
        assert!(parse_setting("retention.ms")
            .unwrap_err()
            .contains("KEY=VALUE"));
        assert!(parse_setting("=1").unwrap_err().contains("no config name"));
        assert!(parse_setting("retention.ms=")
            .unwrap_err()
            .contains("--delete"));
        assert!(parse_setting("retention.ms=1.5h")
            .unwrap_err()
            .contains("90m"));
        assert!(parse_setting("segment.bytes=lots").is_err());
    }
}

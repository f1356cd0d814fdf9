//! `rill group`: list, describe, reset and delete consumer groups.

use clap::{Args, Subcommand};
use rill::{GroupDescription, ResetTo, Rill};

use crate::output::{self, json_array, table, Format, JsonObject};
use crate::Global;

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List every consumer group (with members or committed offsets).
    #[command(after_help = "Examples:
  rill group list
  rill group list -O json")]
    List {
        /// Output format.
        #[arg(short = 'O', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Show a group's members, and per partition its committed offset, the
    /// log end and the lag.
    #[command(after_help = "Examples:
  rill group describe billing
  rill group describe billing -O json")]
    Describe {
        /// The group.
        group: String,
        /// Output format.
        #[arg(short = 'O', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Move a group's committed offsets on one topic (only while the group
    /// has no members).
    #[command(after_help = "Examples:
  rill group reset billing --topic orders --to-earliest
  rill group reset billing --topic orders --to-offset 1000")]
    Reset(ResetArgs),
    /// Delete a group without members, and its committed offsets.
    #[command(after_help = "Examples:
  rill group delete billing")]
    Delete {
        /// The group.
        group: String,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("to").required(true).args(["to_earliest", "to_latest", "to_offset"])))]
pub struct ResetArgs {
    /// The group.
    group: String,
    /// The topic whose partitions are reset (all of them).
    #[arg(long)]
    topic: String,
    /// Each partition's first offset still stored.
    #[arg(long)]
    to_earliest: bool,
    /// Each partition's end: the group skips what is there now.
    #[arg(long)]
    to_latest: bool,
    /// This offset on every partition (clamped to what is stored).
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
}

pub async fn run(cmd: GroupCommand, global: &Global) -> anyhow::Result<()> {
    let rill = global.connect().await?;
    match cmd {
        GroupCommand::List { output } => list(&rill, output).await,
        GroupCommand::Describe { group, output } => describe(&rill, &group, output).await,
        GroupCommand::Reset(args) => {
            let to = match (args.to_earliest, args.to_latest, args.to_offset) {
                (true, _, _) => ResetTo::Earliest,
                (_, true, _) => ResetTo::Latest,
                (_, _, Some(n)) => ResetTo::Offset(n),
                _ => unreachable!("clap requires one of them"),
            };
            let offsets = rill
                .admin()
                .reset_group_offsets(&args.group, &args.topic, to)
                .await?;
            let list: Vec<String> = offsets.iter().map(|(p, o)| format!("{p}:{o}")).collect();
            output::print(&format!(
                "group \"{}\" reset on topic \"{}\" (partition:offset) {}\n",
                args.group,
                args.topic,
                list.join(" ")
            ))
        }
        GroupCommand::Delete { group } => {
            rill.admin().delete_group(&group).await?;
            output::print(&format!("group \"{group}\" deleted\n"))
        }
    }
}

async fn list(rill: &Rill, format: Format) -> anyhow::Result<()> {
    let groups = rill.admin().list_groups().await?;
    let text = match format {
        Format::Json => {
            json_array(groups.iter().map(|g| {
                JsonObject::new()
                    .str("group", &g.group)
                    .str("state", &g.state)
                    .str("protocol_type", &g.protocol_type)
                    .finish()
            })) + "\n"
        }
        Format::Table if groups.is_empty() => "no consumer groups\n".to_owned(),
        Format::Table => table(
            &["GROUP", "STATE", "TYPE"],
            &groups
                .iter()
                .map(|g| vec![g.group.clone(), g.state.clone(), g.protocol_type.clone()])
                .collect::<Vec<_>>(),
        ),
    };
    output::print(&text)
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

async fn describe(rill: &Rill, group: &str, format: Format) -> anyhow::Result<()> {
    let d: GroupDescription = rill.admin().describe_group(group).await?;
    let text = match format {
        Format::Json => {
            let members = d.members.iter().map(|m| {
                let assignment = m.assignment.iter().map(|(t, ps)| {
                    JsonObject::new()
                        .str("topic", t)
                        .raw(
                            "partitions",
                            format!(
                                "[{}]",
                                ps.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
                            ),
                        )
                        .finish()
                });
                JsonObject::new()
                    .str("member_id", &m.member_id)
                    .str("client_id", &m.client_id)
                    .str("client_host", &m.client_host)
                    .raw("assignment", json_array(assignment))
                    .finish()
            });
            let partitions = d.partitions.iter().map(|p| {
                let num = |v: Option<i64>| v.map_or_else(|| "null".to_owned(), |v| v.to_string());
                JsonObject::new()
                    .str("topic", &p.topic)
                    .raw("partition", p.partition)
                    .raw("committed", num(p.committed))
                    .raw("log_end", num(p.log_end))
                    .raw("lag", num(p.lag))
                    .opt_str("member_id", p.member.as_deref())
                    .finish()
            });
            JsonObject::new()
                .str("group", &d.group)
                .str("state", &d.state)
                .str("protocol", &d.protocol)
                .raw("members", json_array(members))
                .raw("partitions", json_array(partitions))
                .finish()
                + "\n"
        }
        Format::Table => {
            let mut text = format!(
                "group {}: {}, {} member{}{}\n",
                d.group,
                d.state,
                d.members.len(),
                if d.members.len() == 1 { "" } else { "s" },
                if d.protocol.is_empty() {
                    String::new()
                } else {
                    format!(", assignor {}", d.protocol)
                }
            );
            if d.partitions.is_empty() {
                text.push_str("no committed offsets\n");
            } else {
                let rows: Vec<Vec<String>> = d
                    .partitions
                    .iter()
                    .map(|p| {
                        vec![
                            p.topic.clone(),
                            p.partition.to_string(),
                            opt(p.committed),
                            opt(p.log_end),
                            opt(p.lag),
                            p.member.clone().unwrap_or_else(|| "-".to_owned()),
                        ]
                    })
                    .collect();
                text.push_str(&table(
                    &[
                        "TOPIC",
                        "PARTITION",
                        "COMMITTED",
                        "LOG-END",
                        "LAG",
                        "MEMBER",
                    ],
                    &rows,
                ));
            }
            text
        }
    };
    output::print(&text)
}

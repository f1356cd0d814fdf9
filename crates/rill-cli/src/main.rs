//! The `rill` command line. Thin: it parses flags and calls the libraries.

mod cluster;
mod home;

use clap::{Parser, Subcommand};

/// Rill: a streaming platform that speaks the Kafka wire protocol.
#[derive(Debug, Parser)]
#[command(name = "rill", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start, stop and inspect the local single-node cluster.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Cluster(cmd) => cluster::run(cmd),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

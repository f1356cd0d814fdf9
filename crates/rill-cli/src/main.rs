//! The `rill` command line. Thin: it parses flags and calls the libraries.

use clap::Parser;

/// Rill: a streaming platform that speaks the Kafka wire protocol.
#[derive(Debug, Parser)]
#[command(name = "rill", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}

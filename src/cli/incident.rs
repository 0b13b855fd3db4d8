//! `picket incident bundle ALERT`: one tar.gz about an alert for whoever takes the incident on
//! (`alert::bundle`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Bundle an alert (its id, or its fold's id from `picket alerts list`): the alert in full,
    /// the container's alerts around it, the process tree, the image's SBOM and findings, any
    /// captures, a Markdown timeline and a manifest of SHA-256 hashes
    Bundle {
        id: String,
        /// The tar.gz to write (must not exist); default incident-ID.tar.gz here
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The container's alerts within this much of the alert: 10m, 1h
        #[arg(long, default_value = "10m")]
        window: String,
        /// Packet captures to include (picket respond capture)
        #[arg(long = "capture", value_name = "PCAP")]
        captures: Vec<PathBuf>,
    },
}

pub fn run(command: &IncidentCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let IncidentCommand::Bundle { id, output, window, captures } = command;
    let window_ms = crate::alert::triage::parse_duration(window).map_err(anyhow::Error::msg)?;
    let store = Store::open(&config.store_path())?;
    let output = output.clone().unwrap_or_else(|| PathBuf::from(format!("incident-{id}.tar.gz")));
    let manifest =
        crate::alert::bundle::write_bundle(&store, id, window_ms, captures, &output).map_err(anyhow::Error::msg)?;
    let mut text = format!("{} files written to {}", manifest.files.len() + 1, output.display());
    for missing in &manifest.missing {
        text.push_str(&format!("\nnot included: {missing}"));
    }
    crate::out!("{text}").context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

//! `picket cluster scan`: production scanning of what a cluster runs. Exit codes as for
//! `picket scan`: 0 done, 1 a finding at or above `--fail-on`, 2 error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::Config;
use crate::model::Severity;
use crate::report::cluster_scan::{self, ClusterScanFormat};
use crate::scan::{Platform, ScanOptions};
use crate::store::Store;
use crate::vulndb::{VulnDb, matcher};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Scan every image the cluster runs, once per digest (the kubelet's imageID), pulling with
    /// the pods' imagePullSecrets, and map the findings back to the workloads
    Scan {
        #[arg(short, long, value_enum, default_value_t = ClusterScanFormat::Table)]
        output: ClusterScanFormat,
        /// Write the report to FILE instead of standard output
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Exit 1 when a finding at or above this severity is found
        #[arg(long, value_name = "SEVERITY", value_parser = |s: &str| s.parse::<Severity>())]
        fail_on: Option<Severity>,
        /// With --fail-on: only findings that have a fixed version count
        #[arg(long)]
        ignore_unfixed: bool,
        /// Registries: allow plain HTTP and self-signed certificates
        #[arg(long)]
        insecure: bool,
        /// Registries: a PEM CA certificate to trust besides the system's
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Objects per list request (pages follow the server's continue tokens)
        #[arg(long, value_name = "N", default_value_t = crate::cluster::inventory::PAGE_SIZE, value_parser = clap::value_parser!(u32).range(1..))]
        chunk_size: u32,
    },
}

pub fn run(command: &ClusterCommand, config: &Config, context: Option<&str>) -> anyhow::Result<ExitCode> {
    let ClusterCommand::Scan { output, file, fail_on, ignore_unfixed, insecure, ca_file, chunk_size } = command;
    let store = Store::open(&config.store_path())?;
    let db = VulnDb::open(&store)?;
    if db.sources()?.is_empty() {
        return Err(matcher::MatchError::EmptyDatabase.into());
    }
    let options = ScanOptions {
        limits: config.scan_limits,
        platform: Platform::host(),
        registry: crate::registry::RegistryOptions { insecure: *insecure, ca_file: ca_file.clone(), auth_files: None },
        secrets: false,
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let (client, name) = crate::cluster::client_for(context).await?;
        let list = crate::cluster::inventory::ListOptions { page_size: *chunk_size, ..Default::default() };
        let inventory = crate::cluster::inventory::load_with(&client, &name, list).await?;
        for unlisted in &inventory.unlisted {
            crate::say!("picket: warning: context {name}: cannot {} ({})", unlisted.needs(), unlisted.message);
        }
        let mut progress = |index: usize, total: usize, reference: &str| {
            crate::say!("picket: [{}/{total}] {reference}", index + 1);
        };
        anyhow::Ok(crate::cluster::production::scan(&client, &inventory, &store, &options, &mut progress).await)
    })?;
    let bytes = cluster_scan::render(&report, *output).context("cannot encode the report")?;
    super::write_report(file.as_deref(), &bytes)?;
    if let Some(threshold) = fail_on {
        let failing = report.failing(*threshold, *ignore_unfixed);
        if failing > 0 {
            crate::say!("picket: gate failed: {failing} findings at {} or above", threshold.as_str());
            return Ok(ExitCode::from(super::scan::EXIT_POLICY));
        }
    }
    Ok(ExitCode::SUCCESS)
}

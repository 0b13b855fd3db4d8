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
    /// Several clusters side by side: each workload (namespace, kind, name) in every context
    /// named, with its images, failed checks and findings, differing ones first
    Compare {
        /// Two or more kubeconfig contexts
        #[arg(required = true, num_args = 2.., value_name = "CONTEXT")]
        contexts: Vec<String>,
        /// Only the workloads that differ
        #[arg(long)]
        differences: bool,
        #[arg(short, long, value_enum, default_value_t = CompareFormat::Table)]
        output: CompareFormat,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompareFormat {
    Table,
    Json,
}

pub fn run(command: &ClusterCommand, config: &Config, context: Option<&str>) -> anyhow::Result<ExitCode> {
    let (output, file, fail_on, ignore_unfixed, insecure, ca_file, chunk_size) = match command {
        ClusterCommand::Scan { output, file, fail_on, ignore_unfixed, insecure, ca_file, chunk_size } => {
            (output, file, fail_on, ignore_unfixed, insecure, ca_file, chunk_size)
        }
        ClusterCommand::Compare { contexts, differences, output } => {
            return compare(config, contexts, *differences, *output);
        }
    };
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

/// `picket cluster compare`: each context's workloads judged as the Workloads pane judges them,
/// lined up. A context that cannot be read is an error naming it.
fn compare(
    config: &Config,
    contexts: &[String],
    only_differences: bool,
    output: CompareFormat,
) -> anyhow::Result<ExitCode> {
    use crate::bench::k8s::compare;
    let store = Store::open(&config.store_path())?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let mut workloads = Vec::new();
    for context in contexts {
        let inventory = runtime.block_on(async {
            let (client, name) = crate::cluster::client_for(Some(context)).await?;
            anyhow::Ok(crate::cluster::inventory::load(&client, &name).await?)
        })?;
        for unlisted in &inventory.unlisted {
            crate::say!("picket: warning: context {context}: cannot {} ({})", unlisted.needs(), unlisted.message);
        }
        workloads.push(crate::bench::k8s::summary::judged_workloads(&inventory, &store).0);
    }
    let mut rows = compare::compare(&workloads);
    if only_differences {
        rows.retain(|r| r.differences.any());
    }
    if let CompareFormat::Json = output {
        let document = serde_json::json!({ "contexts": contexts, "workloads": rows });
        super::write_report(None, &serde_json::to_vec_pretty(&document)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut headers: Vec<String> = vec!["NAMESPACE".into(), "WORKLOAD".into()];
    headers.extend(contexts.iter().map(|c| c.to_uppercase()));
    headers.push("DIFFERS".into());
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![row.namespace.clone(), format!("{}/{}", row.kind, row.name)];
            cells.extend(row.sides.iter().map(|s| compare::side_text(s.as_ref())));
            cells.push(row.differences.describe(&row.sides, contexts));
            cells
        })
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| table.iter().map(|r| r[i].chars().count()).chain([headers[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = widths[i])).collect::<Vec<_>>().join("  ")
    };
    crate::out!("{}", line(&headers).trim_end()).context("cannot write to standard output")?;
    for row in &table {
        crate::out!("{}", line(row).trim_end()).context("cannot write to standard output")?;
    }
    Ok(ExitCode::SUCCESS)
}

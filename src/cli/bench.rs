//! `picket bench docker`: CIS benchmarks from the command line. Exit codes as for `picket
//! scan`: 0 done (and the gate passed), 1 a failed check at or above `--fail-on`, 2 error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::bench::files::HostFiles;
use crate::config::Config;
use crate::model::Severity;
use crate::report::DocumentInfo;
use crate::report::compliance::{self, BenchFormat};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// CIS Docker Benchmark: host, daemon, daemon files and running containers, through the
    /// engine's API (Docker Engine, or Podman's Docker-compatible API)
    Docker {
        /// The engine's API socket (unix://PATH or PATH) [default: $DOCKER_HOST, the configured
        /// engines, then /var/run/docker.sock and /run/podman/podman.sock]
        #[arg(long, value_name = "SOCKET")]
        host: Option<String>,
        #[command(flatten)]
        common: BenchArgs,
    },
    /// Cluster checks through the Kubernetes API (the current context, or --context): CIS
    /// Kubernetes Benchmark section 5, Pod Security Standards on every workload, RBAC risks
    K8s {
        /// More custom check files (*.yaml with CEL expressions) from this directory, besides
        /// the shipped ones and ~/.config/picket/checks
        #[arg(long, value_name = "DIR")]
        checks: Vec<PathBuf>,
        #[command(flatten)]
        common: BenchArgs,
    },
    /// CIS Kubernetes Benchmark sections 1-4 on this node (control plane, etcd, worker):
    /// running components, kubeadm manifests, kubelet unit and config, file modes and owners
    Node {
        #[command(flatten)]
        common: BenchArgs,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Where the host's files are (a mounted node filesystem); daemon files, audit rules,
    /// passwd and group are read under it
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = BenchFormat::Table)]
    pub output: BenchFormat,
    /// Write the report to FILE instead of standard output
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Exit 1 when a check of this severity or above fails
    #[arg(long, value_name = "SEVERITY", value_parser = |s: &str| s.parse::<Severity>())]
    pub fail_on: Option<Severity>,
}

pub fn run(command: &BenchCommand, config: &Config, context: Option<&str>) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::K8s { checks, common } => {
            // Checks are read first: a broken one is an error before the cluster is asked.
            let mut custom = crate::bench::custom::shipped()?;
            custom.extend(crate::bench::custom::load_dirs(&[config.config_dir.join("checks")], checks)?);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let inventory = runtime.block_on(async {
                let (client, name) = crate::cluster::client_for(context).await?;
                anyhow::Ok(crate::cluster::inventory::load(&client, &name).await?)
            })?;
            for forbidden in &inventory.forbidden {
                eprintln!(
                    "picket: warning: context {}: cannot {} ({})",
                    inventory.context,
                    forbidden.needs(),
                    forbidden.message
                );
            }
            let report = crate::bench::k8s::run_with(&inventory, &custom);
            finish(&report, common)
        }
        BenchCommand::Docker { host, common } => {
            let socket = match host {
                Some(host) => PathBuf::from(host.strip_prefix("unix://").unwrap_or(host)),
                None => {
                    let found = crate::engine::existing_sockets(&crate::engine::candidate_sockets(&config.engines));
                    let Some(first) = found.first() else {
                        anyhow::bail!("no container engine socket found; name one with --host unix://PATH");
                    };
                    if found.len() > 1 {
                        eprintln!("picket: benchmarking {} (--host picks another engine)", first.display());
                    }
                    first.clone()
                }
            };
            if !common.root.is_dir() {
                anyhow::bail!("--root {}: not a directory", common.root.display());
            }
            let files = HostFiles::new(&common.root);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let facts = runtime.block_on(crate::bench::docker::gather(&socket, &files))?;
            let report = crate::bench::docker::run(&facts, &files);
            finish(&report, common)
        }
        BenchCommand::Node { common } => {
            if !common.root.is_dir() {
                anyhow::bail!("--root {}: not a directory", common.root.display());
            }
            let files = HostFiles::new(&common.root);
            let facts = crate::bench::node::NodeFacts::gather(&files);
            for warning in &facts.warnings {
                eprintln!("picket: warning: {warning}");
            }
            let target = if files.is_live_host() {
                format!("node {}", crate::local::hostname())
            } else {
                format!("node files under {}", common.root.display())
            };
            let report = crate::bench::node::run(&facts, &files, &target);
            finish(&report, common)
        }
    }
}

fn finish(report: &crate::bench::BenchReport, common: &BenchArgs) -> anyhow::Result<ExitCode> {
    let color = super::colour_wanted(common.file.as_deref());
    let bytes =
        compliance::render(report, common.output, &DocumentInfo::now(), color).context("cannot encode the report")?;
    super::write_report(common.file.as_deref(), &bytes)?;
    if let Some(threshold) = common.fail_on {
        let failed = report.failures_at_or_above(threshold);
        if failed > 0 {
            eprintln!("picket: gate failed: {failed} failed results of checks at {} or above", threshold.as_str());
            return Ok(ExitCode::from(super::scan::EXIT_POLICY));
        }
    }
    Ok(ExitCode::SUCCESS)
}

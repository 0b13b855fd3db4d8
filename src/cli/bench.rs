//! `picket bench docker`: CIS benchmarks from the command line. Exit codes as for `picket
//! scan`: 0 done (and the gate passed), 1 a failed check at or above `--fail-on`, 2 error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::bench;
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
        /// Objects per list request (pages follow the server's continue tokens)
        #[arg(long, value_name = "N", default_value_t = crate::cluster::inventory::PAGE_SIZE, value_parser = clap::value_parser!(u32).range(1..))]
        chunk_size: u32,
        #[command(flatten)]
        common: BenchArgs,
    },
    /// CIS Kubernetes Benchmark sections 1-4 on this node (control plane, etcd, worker):
    /// running components, kubeadm manifests, kubelet unit and config, file modes and owners
    Node {
        #[command(flatten)]
        common: BenchArgs,
        /// Ask the node agent listening on SOCKET to run it (on its node, as root)
        #[arg(long, value_name = "SOCKET", num_args = 0..=1, default_missing_value = crate::agent::stream::DEFAULT_SOCKET, conflicts_with = "node")]
        agent: Option<PathBuf>,
        /// Benchmark this node of the cluster (--context): the picket agent pod on it answers,
        /// through a port-forward, so no SSH is needed
        #[arg(long, value_name = "NODE")]
        node: Option<String>,
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
    /// Hand every failed check to the response rules in DIR (category compliance) and wait up
    /// to 30 s for their sinks
    #[arg(long, value_name = "DIR")]
    pub respond: Option<PathBuf>,
}

/// `--fail-on` found no failure, but the benchmark could not read everything it needed.
pub const EXIT_INCOMPLETE: u8 = 3;

pub fn run(command: &BenchCommand, config: &Config, context: Option<&str>) -> anyhow::Result<ExitCode> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let (done, common) = match command {
        BenchCommand::K8s { checks, chunk_size, common } => {
            let options = bench::k8s::K8sOptions {
                context: context.map(str::to_string),
                check_dirs: vec![config.config_dir.join("checks")],
                required_check_dirs: checks.clone(),
                list: crate::cluster::inventory::ListOptions { page_size: *chunk_size, ..Default::default() },
            };
            (runtime.block_on(bench::k8s::run(&options))?, common)
        }
        BenchCommand::Docker { host, common } => {
            let options = bench::docker::DockerOptions {
                socket: host.as_ref().map(|h| PathBuf::from(h.strip_prefix("unix://").unwrap_or(h))),
                candidates: crate::engine::candidate_sockets(&config.engines),
                root: common.root.clone(),
            };
            (runtime.block_on(bench::docker::run(&options))?, common)
        }
        BenchCommand::Node { common, agent: Some(socket), .. } => {
            let done = runtime.block_on(async {
                let stream = tokio::net::UnixStream::connect(socket)
                    .await
                    .map_err(|e| anyhow::anyhow!("no agent at {}: {e} (picket agent run)", socket.display()))?;
                let what = format!("agent at {}", socket.display());
                crate::agent::client::request_bench_node(stream, &what, std::time::Duration::from_secs(120))
                    .await
                    .map_err(anyhow::Error::msg)
            })?;
            (done, common)
        }
        BenchCommand::Node { common, node: Some(node), .. } => {
            let done = runtime
                .block_on(crate::agent::client::bench_cluster_node(context, node))
                .map_err(anyhow::Error::msg)?;
            (done, common)
        }
        BenchCommand::Node { common, .. } => (runtime.block_on(bench::node::run(&common.root))?, common),
    };
    for note in &done.notes {
        crate::say!("picket: warning: {note}");
    }
    if let Some(dir) = &common.respond {
        respond(&runtime, config, dir, &done.report)?;
    }
    finish(&done.report, common)
}

/// Every failed result as a `compliance` event for the response rules in `dir`; waits (30 s at
/// most) for the sinks to take them. What a sink has not taken stays queued in the store.
fn respond(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    dir: &std::path::Path,
    report: &crate::bench::BenchReport,
) -> anyhow::Result<()> {
    use crate::agent::alert::{Action, Alert, Trigger};
    let response = crate::alert::respond::ResponseConfig::load(dir, true)?;
    let store = std::sync::Arc::new(crate::store::Store::open(&config.store_path())?);
    let now = crate::alert::now_unix_ms();
    let mut events = Vec::new();
    for check in &report.checks {
        for result in check.results.iter().filter(|r| r.status == crate::bench::Status::Fail) {
            events.push(crate::alert::StoredAlert {
                node: report.target.clone(),
                container: None,
                alert: Alert {
                    id: format!("compliance-{now}-{}-{}", check.meta.id, events.len()),
                    at_unix_ms: now,
                    rule: format!("compliance/{}", check.meta.id),
                    title: check.meta.title.clone(),
                    severity: check.meta.severity,
                    technique: String::new(),
                    why: format!("{}: {}", result.subject, result.evidence),
                    mode: crate::agent::enforce::Mode::Monitor,
                    action: Action::Alerted,
                    policy: format!("{} {}", report.benchmark, report.version),
                    event: Trigger { kind: "compliance".into(), path: result.subject.clone(), ..Trigger::default() },
                    ancestry: Vec::new(),
                    count: 1,
                },
            });
        }
    }
    let wait = std::time::Duration::from_secs(30);
    let (queued, waiting) = runtime
        .block_on(crate::alert::outbox::respond_once(store, response, &events, wait))
        .map_err(anyhow::Error::msg)?;
    crate::say!("picket: {} failed results, {queued} notifications{}", events.len(), still_queued(waiting));
    Ok(())
}

/// `, 3 still queued for their sinks (…)`, or nothing.
pub fn still_queued(waiting: usize) -> String {
    match waiting {
        0 => String::new(),
        n => format!(", {n} still queued for their sinks (picket respond status)"),
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
            crate::say!("picket: gate failed: {failed} failed results of checks at {} or above", threshold.as_str());
            return Ok(ExitCode::from(super::scan::EXIT_POLICY));
        }
        // A gate cannot pass what it could not see.
        if !report.unread.is_empty() {
            crate::say!(
                "picket: gate incomplete: {} could not be read, so the checks that needed them are not evaluated",
                report.unread.iter().map(|u| u.what.as_str()).collect::<Vec<_>>().join(", ")
            );
            return Ok(ExitCode::from(EXIT_INCOMPLETE));
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `picket agent`: the node agent. `run` loads the kernel programs and streams events as JSON
//! lines; `manifest` prints the DaemonSet (and RBAC) that runs it on every node of a cluster.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;

use crate::agent::policy::PolicyFile;
use crate::agent::runtime::{self, RunOptions};

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Load the kernel programs and print process and network events as JSON lines until
    /// interrupted (needs root)
    Run {
        /// Stop after this many seconds
        #[arg(long = "for", value_name = "SECONDS")]
        duration: Option<u64>,
        /// Only events attributed to a container
        #[arg(long)]
        containers_only: bool,
        /// Also serve the events on this unix socket (root-owned, mode 0600), for the console
        #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = crate::agent::stream::DEFAULT_SOCKET)]
        socket: Option<std::path::PathBuf>,
        /// Do not print events on standard output (with --socket)
        #[arg(long, requires = "socket")]
        quiet: bool,
        /// Also serve the socket's lines on this loopback TCP address (in the DaemonSet's pods,
        /// for the console's port-forward)
        #[arg(long, value_name = "ADDR", requires = "socket")]
        listen: Option<std::net::SocketAddr>,
        /// Enforce this policy file with the strongest mechanism this kernel allows (see `picket
        /// agent probe`; read again on SIGHUP, a bad file keeps the policy in force)
        #[arg(long, value_name = "FILE")]
        policy: Option<std::path::PathBuf>,
        /// Hold the policy's exec and file rules with this rung instead of the strongest one
        /// (to run a node as its weaker kernels would, or to avoid fanotify's verdict round trip)
        #[arg(long, value_name = "RUNG", value_parser = ["bpf-lsm", "fanotify", "signal"])]
        enforce_with: Option<String>,
        /// Report opens of files whose absolute path starts with PREFIX (repeatable, at most 16;
        /// `/etc/` is the directory, `/etc` also matches `/etcetera`); none: no file events
        #[arg(long = "watch", value_name = "PREFIX")]
        watch: Vec<String>,
        /// More detection rules: every *.yaml in DIR, after the shipped ones [default:
        /// ~/.config/picket/rules]
        #[arg(long = "rules", value_name = "DIR")]
        rules_dir: Option<std::path::PathBuf>,
        /// Run no detection rules (events only)
        #[arg(long, conflicts_with_all = ["rules_dir", "protect", "protect_host"])]
        no_rules: bool,
        /// Kill the process of a deniable detection in a container (reverse shells, miners,
        /// package managers, drift)
        #[arg(long)]
        protect: bool,
        /// Also on the host itself (never the agent or its parents)
        #[arg(long, requires = "protect")]
        protect_host: bool,
        /// Where the learned baselines and a policy applied through the socket are kept
        #[arg(long, value_name = "DIR", default_value = crate::learn::state::DEFAULT_DIR)]
        state_dir: std::path::PathBuf,
        /// Learn nothing (no baselines; the write-open sensing learning needs stays off)
        #[arg(long)]
        no_learn: bool,
        /// Enforce the cluster's PicketPolicies and PicketClusterPolicies (watched; --context, or
        /// the pod's service account in the DaemonSet) instead of a policy file
        #[arg(long, conflicts_with = "policy")]
        policies_from_cluster: bool,
        /// Put a group nothing polices into monitor mode (its learned policy) once it has learned
        /// nothing new for this long (30m, 6h, 2d)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "no_learn")]
        promote_after: Option<Duration>,
        /// Put a group promoted to monitor into protect mode after this long without a violation
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "no_learn")]
        protect_after: Option<Duration>,
    },
    /// Show which enforcement mechanism each control (exec, file, network) would use on this
    /// kernel, and why stronger ones are refused; nothing is enforced (needs root)
    Probe {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Check a policy file and show what it would enforce on the containers running now
    Policy {
        /// The policy file (YAML; see plugins-config/agent-policy.yaml)
        file: std::path::PathBuf,
    },
    /// Print the DaemonSet, ServiceAccount and RBAC that run the agent on every node
    Manifest {
        /// Namespace to put it in
        #[arg(long, default_value = "picket-system")]
        namespace: String,
        /// The image that holds the picket binary
        #[arg(long, default_value = crate::agent::manifest::DEFAULT_IMAGE)]
        image: String,
    },
}

/// `90s`, `30m`, `6h`, `2d`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("'{text}' is not a duration such as 90s, 30m, 6h or 2d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("'{text}': the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

pub fn run(command: &AgentCommand, context: Option<&str>) -> anyhow::Result<ExitCode> {
    match command {
        AgentCommand::Manifest { namespace, image } => {
            std::io::stdout()
                .lock()
                .write_all(crate::agent::manifest::manifest(namespace, image).as_bytes())
                .context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Run {
            duration,
            containers_only,
            socket,
            quiet,
            policy,
            listen,
            watch,
            rules_dir,
            no_rules,
            protect,
            protect_host,
            enforce_with,
            state_dir,
            no_learn,
            policies_from_cluster,
            promote_after,
            protect_after,
        } => {
            // A bad policy file stops the agent before it loads anything.
            let policy = match policy {
                Some(path) => Some((path.clone(), PolicyFile::load(path)?)),
                None => None,
            };
            // Bad rules stop the agent before it loads anything, as a bad policy does.
            let rules = match no_rules {
                true => None,
                false => {
                    let dir = rules_dir
                        .clone()
                        .or_else(|| crate::config::Dirs::discover().ok().map(|d| d.config_dir.join("rules")));
                    let dir = dir.unwrap_or_default();
                    Some(crate::rules::RuleSet::load(&dir, rules_dir.is_some())?)
                }
            };
            let options = RunOptions {
                rules,
                protect: crate::agent::detect::Protect { containers: *protect, host: *protect_host },
                duration: duration.map(Duration::from_secs),
                containers_only: *containers_only,
                socket: socket.clone(),
                quiet: *quiet,
                policy,
                listen: *listen,
                watch: watch.clone(),
                enforce_with: enforce_with.as_deref().and_then(crate::agent::enforce::Rung::parse),
                state_dir: Some(state_dir.clone()),
                learn: !*no_learn,
                cluster_policies: policies_from_cluster.then(|| context.map(String::from)),
                promote_after: *promote_after,
                protect_after: *protect_after,
            };
            tokio_runtime()?.block_on(runtime::run(options))?;
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Probe { json } => {
            // Loading LSM programs to try them needs aya inside a runtime.
            let ladder = tokio_runtime()?.block_on(async { crate::agent::enforce::ladder::probe() });
            let text = match json {
                true => serde_json::to_string_pretty(&ladder).context("cannot encode the ladder")? + "\n",
                false => ladder.table(),
            };
            std::io::stdout().lock().write_all(text.as_bytes()).context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Policy { file } => {
            let policy = PolicyFile::load(file)?;
            tokio_runtime()?.block_on(show_policy(file, &policy))
        }
    }
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn show_policy(path: &std::path::Path, policy: &PolicyFile) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: {} rules, valid", path.display(), policy.containers.len())?;
    for rule in &policy.containers {
        let who = match (&rule.name, &rule.id) {
            (Some(name), _) => format!("name {name}"),
            (None, id) => format!("id {}", id.as_deref().unwrap_or_default()),
        };
        let execs =
            rule.allow_exec.as_ref().map_or("any executable".to_string(), |l| format!("{} executables", l.len()));
        let connect = match &rule.connect {
            Some(spec) => {
                let allow =
                    spec.allow.as_ref().map_or("any destination".to_string(), |l| format!("{} allowed", l.len()));
                format!(", connect: {allow}, {} denied", spec.deny.len())
            }
            None => String::new(),
        };
        writeln!(
            out,
            "  {who}: {}, {execs}, {} file rules{connect}",
            format!("{:?}", rule.mode).to_lowercase(),
            rule.files.len()
        )?;
    }
    // What this kernel would enforce it with, and whether that rung can hold every rule.
    let ladder = crate::agent::enforce::ladder::probe();
    let rung = ladder.controls.iter().find(|c| c.control == "file").and_then(|c| c.chosen());
    match rung {
        Some(crate::agent::enforce::Rung::Fanotify) => {
            match crate::agent::enforce::fanotify::check(&policy.resolve_all()) {
                Ok(()) => writeln!(out, "enforced here with fanotify")?,
                Err(crate::agent::enforce::EnforceError::Unsupported { index, message, .. }) => {
                    writeln!(out, "cannot be enforced here (fanotify): containers[{index}]: {message}")?
                }
                Err(other) => writeln!(out, "cannot be enforced here (fanotify): {other}")?,
            }
        }
        Some(rung) => writeln!(out, "enforced here with {}", rung.as_str())?,
        None => writeln!(out, "nothing on this kernel can enforce it (see picket agent probe)")?,
    }
    if policy.containers.iter().any(|r| r.connect.is_some()) {
        let network = ladder.controls.iter().find(|c| c.control == "network");
        match network.and_then(|c| c.chosen()) {
            Some(rung) => writeln!(out, "connect rules enforced here with {}", rung.as_str())?,
            None => {
                let why = network.and_then(|c| c.tried.first()).and_then(|t| t.refused.clone()).unwrap_or_default();
                writeln!(out, "connect rules cannot be enforced here: {why}")?
            }
        }
    }
    let preview = runtime::preview_policy(policy).await;
    writeln!(out, "containers running now that rules name: {} ({} cgroups)", preview.named.len(), preview.cgroups)?;
    for container in &preview.named {
        let name = container.name.as_deref().unwrap_or("-");
        let id: String = container.id.chars().take(12).collect();
        writeln!(out, "  {id} {name} ({} cgroups)", container.cgroups.len())?;
    }
    Ok(ExitCode::SUCCESS)
}

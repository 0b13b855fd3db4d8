//! `picket policy …`: the policy format's CRDs, checking policy files, learning them from what
//! the agent saw, comparing, applying, testing against a recording, exporting.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the PicketPolicy and PicketClusterPolicy CRDs, or --apply them to the cluster
    /// (--context)
    Crd {
        /// Install them with server-side apply instead of printing
        #[arg(long)]
        apply: bool,
    },
    /// Check policy files (PicketPolicy / PicketClusterPolicy YAML, several documents each):
    /// every mistake with file:line:col; exit 2 when there is one
    Validate {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print the policy each group of containers was learned to need (PicketPolicy YAML, one
    /// document per group): its programs, where it writes, where it connects, what it accepts
    Learn {
        #[command(flatten)]
        source: BaselineSource,
        /// Only these groups (`local/IMAGE`, `namespace/Kind/name`; repeatable)
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// The policies' mode
        #[arg(long, default_value = "monitor", value_parser = ["discover", "monitor", "protect"])]
        mode: String,
    },
    /// Show what each group was seen doing: programs with their parents, files, peers, ports
    Show {
        #[command(flatten)]
        source: BaselineSource,
        /// Print the baselines as JSON
        #[arg(long)]
        json: bool,
    },
    /// Compare: what the groups were seen doing that FILE would flag, and what FILE allows that
    /// was never seen; with --in-force, FILE against the policy in force on the agent
    Diff {
        file: PathBuf,
        #[command(flatten)]
        source: BaselineSource,
        /// Compare FILE with the policy the agent enforces (its text), not with the baselines
        #[arg(long)]
        in_force: bool,
    },
    /// Put FILE in force: on the local agent through its socket (checked there; a policy that
    /// does not check leaves the one in force), or with --cluster on the cluster as CRDs
    /// (server-side apply, field manager picket) for the DaemonSet's agents
    Apply {
        file: PathBuf,
        /// The agent's socket
        #[arg(long, value_name = "SOCKET", default_value = crate::agent::stream::DEFAULT_SOCKET)]
        agent: PathBuf,
        /// Apply to the cluster (--context) instead of the local agent
        #[arg(long)]
        cluster: bool,
    },
    /// Print FILE's policies in another format: Kubernetes NetworkPolicy, CiliumNetworkPolicy,
    /// KubeArmorPolicy, or a seccomp profile per policy from the system calls its group was seen
    /// making; what a format cannot say is named on standard error, never dropped silently
    Export {
        file: PathBuf,
        #[arg(long = "as", value_name = "FORMAT", value_parser = ["networkpolicy", "ciliumnetworkpolicy", "kubearmor", "seccomp"])]
        format: String,
        /// Read the pods' labels (owners, group peers) and the DNS pods' labels from the cluster
        /// (--context); for seccomp, what the cluster's agents learned
        #[arg(long)]
        cluster: bool,
        /// seccomp: ask the agent on this socket for what it learned [the default source]
        #[arg(long, value_name = "SOCKET", num_args = 0..=1, default_missing_value = crate::agent::stream::DEFAULT_SOCKET)]
        agent: Option<PathBuf>,
        /// seccomp: a baselines file an agent kept (repeatable)
        #[arg(long = "baselines", value_name = "FILE")]
        baselines: Vec<PathBuf>,
        /// seccomp: write each profile to DIR/NAME.json (needed for more than one policy)
        #[arg(long = "out", value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// The policies applied so far, per target (the agent's socket, a cluster object): with
    /// TARGET its versions (who, when, from which file), with --show N one version's YAML
    History {
        target: Option<String>,
        #[arg(long, value_name = "N", requires = "target")]
        show: Option<u32>,
    },
    /// Apply version N of TARGET again (kept as a new version)
    Restore { target: String, version: u32 },
    /// Each group's mode on the local agent (set by hand or promoted), since when, and what broke
    /// its policy lately; groups the policy in force holds are named as such
    Modes {
        /// The agent's socket
        #[arg(long, value_name = "SOCKET", default_value = crate::agent::stream::DEFAULT_SOCKET)]
        agent: PathBuf,
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
    /// Set GROUP's mode on the local agent: monitor or protect put its learned policy in force
    /// in that mode, discover takes it out (learning goes on); logged in the agent's
    /// promotions.jsonl
    Mode {
        /// `local/IMAGE` or `namespace/Kind/name`, as `picket policy show` names it
        group: String,
        #[arg(value_parser = ["discover", "monitor", "protect"])]
        mode: String,
        #[arg(long, value_name = "SOCKET", default_value = crate::agent::stream::DEFAULT_SOCKET)]
        agent: PathBuf,
    },
    /// Accept violations of GROUP into its policy on the local agent (`exec:/usr/bin/curl`,
    /// `write:/var/cache/x`, `connect:10.0.0.7:443`, `accept:8080`, as `picket policy modes` lists
    /// them)
    Accept {
        group: String,
        #[arg(required = true, value_name = "VIOLATION")]
        violations: Vec<String>,
        #[arg(long, value_name = "SOCKET", default_value = crate::agent::stream::DEFAULT_SOCKET)]
        agent: PathBuf,
    },
    /// Replay a recorded agent stream (picket agent run > recorded.jsonl) against FILE and print
    /// what would be alerted or denied, offline; exit 1 when something would be
    Test {
        file: PathBuf,
        #[arg(long = "events", value_name = "RECORDED", required = true)]
        events: Vec<PathBuf>,
        /// Print the verdicts as JSON
        #[arg(long)]
        json: bool,
    },
}

/// Where baselines come from: the local agent (the default), recorded streams, kept files.
#[derive(Debug, clap::Args)]
pub struct BaselineSource {
    /// Ask the agent on this socket [default when no other source is given]
    #[arg(long, value_name = "SOCKET", num_args = 0..=1, default_missing_value = crate::agent::stream::DEFAULT_SOCKET)]
    agent: Option<PathBuf>,
    /// Learn from a recorded agent stream (JSON lines; repeatable)
    #[arg(long = "events", value_name = "RECORDED")]
    events: Vec<PathBuf>,
    /// A baselines file an agent kept (STATE_DIR/baselines.json; repeatable, merged)
    #[arg(long = "baselines", value_name = "FILE")]
    baselines: Vec<PathBuf>,
    /// What the cluster's agents published, every node's merged (--context)
    #[arg(long = "cluster")]
    cluster: bool,
    /// The namespace the agents run in (where they publish)
    #[arg(long, value_name = "NAMESPACE", default_value = crate::agent::manifest::NAMESPACE, requires = "cluster")]
    agent_namespace: String,
}

impl BaselineSource {
    fn load(
        &self,
        runtime: &tokio::runtime::Runtime,
        context: Option<&str>,
    ) -> anyhow::Result<crate::learn::Baselines> {
        let mut all = crate::learn::Baselines::default();
        if self.cluster {
            let (merged, unreadable) = runtime.block_on(async {
                let (client, _) = crate::cluster::client_for(context).await?;
                crate::agent::publish::read_all(&client, &self.agent_namespace).await.map_err(anyhow::Error::msg)
            })?;
            for name in unreadable {
                crate::say!("picket: {name}: does not read; skipped");
            }
            all.merge(&merged);
        }
        for path in &self.events {
            let text = crate::input::read_text(path, 1024 * 1024 * 1024)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let (learned, unread) = crate::agent::learning::learn_from_lines(text.lines().map(String::from));
            if unread > 0 {
                crate::say!("picket: {}: {unread} lines are not agent events; skipped", path.display());
            }
            all.merge(&learned);
        }
        for path in &self.baselines {
            let dir = path.parent().unwrap_or(std::path::Path::new("."));
            let (kept, note) = crate::learn::state::load_file(path)
                .with_context(|| format!("baselines {} (kept in {})", path.display(), dir.display()))?;
            if let Some(note) = note {
                crate::say!("picket: {note}");
            }
            all.merge(&kept);
        }
        let socket = match (&self.agent, self.events.is_empty() && self.baselines.is_empty() && !self.cluster) {
            (Some(socket), _) => Some(socket.clone()),
            (None, true) => Some(PathBuf::from(crate::agent::stream::DEFAULT_SOCKET)),
            (None, false) => None,
        };
        if let Some(socket) = socket {
            let reply = runtime
                .block_on(crate::agent::client::ask_local_agent(&socket, &crate::agent::wire::Request::Baselines))
                .map_err(anyhow::Error::msg)?;
            all.merge(&reply.baselines.unwrap_or_default());
        }
        Ok(all)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")
}

fn mode_of(text: &str) -> crate::policy::spec::Mode {
    use crate::policy::spec::Mode;
    match text {
        "discover" => Mode::Discover,
        "protect" => Mode::Protect,
        _ => Mode::Monitor,
    }
}

/// Keeps what was applied in the store's history; a store that cannot be opened is said, and
/// the apply stands.
fn keep(overrides: &crate::config::Overrides, target: &str, source: &str, yaml: &str, summary: &str) {
    let kept = crate::config::Config::load(overrides)
        .map_err(anyhow::Error::from)
        .and_then(|config| Ok(crate::store::Store::open(&config.store_path())?))
        .and_then(|store| {
            let history = crate::policy::history::PolicyHistory::open(&store)?;
            Ok(history.record(target, source, yaml, summary)?)
        });
    match kept {
        Ok(version) => crate::say!("picket: kept as version {version} of {target} (picket policy history)"),
        Err(e) => crate::say!("picket: not kept in the history: {e:#}"),
    }
}

pub fn run(
    command: &PolicyCommand,
    context: Option<&str>,
    overrides: &crate::config::Overrides,
) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Crd { apply: true } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                let (client, name) = crate::cluster::client_for(context).await?;
                for crd in crate::policy::spec::install_crds(&client, &name).await.map_err(anyhow::Error::msg)? {
                    crate::say!("picket: context {name}: applied CustomResourceDefinition {crd}");
                }
                anyhow::Ok(ExitCode::SUCCESS)
            })
        }
        PolicyCommand::Crd { apply: false } => {
            let text = crate::policy::spec::crds_yaml().map_err(anyhow::Error::msg)?;
            crate::out!("{}", text.trim_end()).context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Validate { files } => {
            let mut bad = 0;
            for file in files {
                let text = crate::yaml::read_file(file)?;
                let (documents, problems) = crate::policy::validate::validate_text(file, &text);
                for problem in &problems {
                    crate::say!("{problem}");
                }
                bad += problems.len();
                if problems.is_empty() {
                    let names: Vec<String> = documents.iter().map(|d| d.name()).collect();
                    crate::say!("{}: {} valid: {}", file.display(), documents.len(), names.join(", "));
                }
            }
            Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(super::EXIT_ERROR) })
        }
        PolicyCommand::Learn { source, groups, mode } => {
            let baselines = source.load(&runtime()?, context)?;
            let mut text = String::new();
            let mut shown = 0;
            for (key, baseline) in &baselines.groups {
                if !groups.is_empty() && !groups.contains(key) {
                    continue;
                }
                match crate::learn::to_policy::policy_of(baseline, mode_of(mode)) {
                    Ok(policy) => {
                        text.push_str("---\n");
                        text.push_str(&serde_saphyr::to_string(&policy).context("cannot write the policy as YAML")?);
                        shown += 1;
                    }
                    Err(e) => crate::say!("picket: {e}"),
                }
            }
            for missing in groups.iter().filter(|g| !baselines.groups.contains_key(*g)) {
                crate::say!("picket: group {missing}: nothing learned (groups: {})", group_list(&baselines));
            }
            if shown == 0 {
                crate::say!("picket: no policy to print: nothing learned yet");
                return Ok(ExitCode::from(super::EXIT_ERROR));
            }
            crate::out!("{}", text.trim_end()).context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Show { source, json } => {
            let baselines = source.load(&runtime()?, context)?;
            let text = match json {
                true => serde_json::to_string_pretty(&baselines).context("cannot write JSON")?,
                false => show_baselines(&baselines),
            };
            crate::out!("{}", text.trim_end()).context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Diff { file, source, in_force: true } => {
            let text = crate::yaml::read_file(file)?;
            let socket = source.agent.clone().unwrap_or_else(|| PathBuf::from(crate::agent::stream::DEFAULT_SOCKET));
            let reply = runtime()?
                .block_on(crate::agent::client::ask_local_agent(&socket, &crate::agent::wire::Request::Policy))
                .map_err(anyhow::Error::msg)?;
            let in_force = reply.policy.unwrap_or_default();
            let name = reply.policy_file.unwrap_or_else(|| "in force".into());
            let diff = similar::TextDiff::from_lines(&in_force, &text);
            let unified = diff.unified_diff().header(&name, &file.display().to_string()).to_string();
            if unified.is_empty() {
                crate::say!("picket: {} is the policy in force ({name})", file.display());
                return Ok(ExitCode::SUCCESS);
            }
            crate::out!("{}", unified.trim_end()).context("cannot write to standard output")?;
            Ok(ExitCode::from(1))
        }
        PolicyCommand::Diff { file, source, in_force: false } => {
            let policy = crate::agent::policy::PolicyFile::load(file)?;
            let baselines = source.load(&runtime()?, context)?;
            let diffs = crate::agent::replay::against_baselines(&policy, &baselines);
            let mut flagged = 0;
            let mut out = String::new();
            for diff in &diffs {
                let Some(index) = diff.rule else {
                    out.push_str(&format!("{}: no rule of {} names it\n", diff.group, file.display()));
                    continue;
                };
                flagged += diff.flagged.len();
                out.push_str(&format!("{} (containers[{index}]):\n", diff.group));
                for item in &diff.flagged {
                    out.push_str(&format!("  + {item}    (seen, not allowed)\n"));
                }
                for item in &diff.unused {
                    out.push_str(&format!("  - {item}    (allowed, never seen)\n"));
                }
                if diff.flagged.is_empty() && diff.unused.is_empty() {
                    out.push_str("  the policy allows what was seen, and nothing more it lists\n");
                }
            }
            crate::out!("{}", out.trim_end()).context("cannot write to standard output")?;
            Ok(if flagged == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        PolicyCommand::Apply { file, agent, cluster: false } => {
            let text = crate::yaml::read_file(file)?;
            apply_to_agent(file, &file.display().to_string(), &text, agent, overrides)
        }
        PolicyCommand::Apply { file, cluster: true, .. } => {
            let Some(documents) = checked_documents(file)? else { return Ok(ExitCode::from(super::EXIT_ERROR)) };
            apply_to_cluster(&file.display().to_string(), &documents, context, overrides)
        }
        PolicyCommand::History { target: None, .. } => {
            let store = open_store(overrides)?;
            let history = crate::policy::history::PolicyHistory::open(&store)?;
            let targets = history.targets()?;
            if targets.is_empty() {
                crate::say!("picket: no policy applied yet (picket policy apply)");
                return Ok(ExitCode::SUCCESS);
            }
            let mut out = String::from("TARGET\tVERSIONS\tLAST APPLIED\tBY\tFROM\n");
            for t in targets {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    t.target,
                    t.version,
                    when(t.at_unix_ms),
                    t.who,
                    t.source
                ));
            }
            crate::out!("{}", out.trim_end()).context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::History { target: Some(target), show } => {
            let store = open_store(overrides)?;
            let history = crate::policy::history::PolicyHistory::open(&store)?;
            if let Some(version) = show {
                let Some(found) = history.get(target, *version)? else {
                    anyhow::bail!("{target} has no version {version} (picket policy history {target:?})");
                };
                crate::out!("{}", found.yaml.trim_end()).context("cannot write to standard output")?;
                return Ok(ExitCode::SUCCESS);
            }
            let versions = history.versions(target)?;
            if versions.is_empty() {
                anyhow::bail!("no policy was applied to {target:?} (targets: picket policy history)");
            }
            let mut out = String::from("VERSION\tAPPLIED\tBY\tFROM\tIN FORCE\n");
            for v in versions {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    v.version,
                    when(v.at_unix_ms),
                    v.who,
                    v.source,
                    v.summary
                ));
            }
            crate::out!("{}", out.trim_end()).context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Modes { agent, json } => {
            let modes = runtime()?.block_on(crate::agent::client::modes(agent)).map_err(anyhow::Error::msg)?;
            let text = match json {
                true => {
                    serde_json::to_string_pretty(&serde_json::json!({ "groups": modes.groups, "held": modes.held }))
                        .context("cannot write JSON")?
                }
                false => show_modes(&modes),
            };
            crate::out!("{}", text.trim_end()).context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Mode { group, mode, agent } => {
            let mode: crate::policy::spec::Mode = mode.parse().map_err(anyhow::Error::msg)?;
            let said =
                runtime()?.block_on(crate::agent::client::set_mode(agent, group, mode)).map_err(anyhow::Error::msg)?;
            crate::say!("picket: {said}");
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Accept { group, violations, agent } => {
            let said = runtime()?
                .block_on(crate::agent::client::accept_violations(agent, group, violations))
                .map_err(anyhow::Error::msg)?;
            crate::say!("picket: {said}");
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Restore { target, version } => {
            let store = open_store(overrides)?;
            let found = crate::policy::history::PolicyHistory::open(&store)?.get(target, *version)?;
            drop(store);
            let Some(found) = found else {
                anyhow::bail!("{target} has no version {version} (picket policy history {target:?})");
            };
            let source = format!("restored from version {version}");
            if let Some(socket) = target.strip_prefix("agent ") {
                let file = std::path::Path::new("restored policy");
                return apply_to_agent(file, &source, &found.yaml, std::path::Path::new(socket), overrides);
            }
            let Some(rest) = target.strip_prefix("cluster ") else {
                anyhow::bail!("{target}: not a target picket applies to (agent SOCKET, cluster CONTEXT KIND NAME)");
            };
            let wanted = rest.split_once(' ').map(|(context, _)| context);
            let (documents, problems) =
                crate::policy::validate::validate_text(std::path::Path::new(&source), &found.yaml);
            if let Some(problem) = problems.first() {
                anyhow::bail!("version {version} of {target} no longer checks: {problem}");
            }
            apply_to_cluster(&source, &documents, wanted.or(context), overrides)
        }
        PolicyCommand::Export { file, format, cluster, agent, baselines, out } if format == "seccomp" => {
            let source = BaselineSource {
                agent: agent.clone(),
                events: Vec::new(),
                baselines: baselines.clone(),
                cluster: *cluster,
                agent_namespace: crate::agent::manifest::NAMESPACE.to_string(),
            };
            export_seccomp(file, &source, out.as_deref(), context)
        }
        PolicyCommand::Export { file, format, cluster, .. } => export(file, format, *cluster, context),
        PolicyCommand::Test { file, events, json } => {
            let policy = crate::agent::policy::PolicyFile::load(file)?;
            let mut all = crate::agent::replay::Replayed::default();
            for path in events {
                let text = crate::input::read_text(path, 1024 * 1024 * 1024)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let replayed = crate::agent::replay::replay(&policy, text.lines().map(String::from));
                if replayed.unread > 0 {
                    crate::say!("picket: {}: {} lines are not agent events; skipped", path.display(), replayed.unread);
                }
                all.judged += replayed.judged;
                all.unread += replayed.unread;
                all.verdicts.extend(replayed.verdicts);
            }
            let text = match json {
                true => serde_json::to_string_pretty(&all).context("cannot write JSON")?,
                false => {
                    let mut out = String::new();
                    for v in &all.verdicts {
                        out.push_str(&format!(
                            "line {}: {} {} {} in {} ({})\n",
                            v.line,
                            v.action.to_uppercase(),
                            v.rule,
                            v.subject,
                            v.container,
                            v.policy
                        ));
                    }
                    out.push_str(&format!(
                        "{} events judged, {} would be alerted or denied",
                        all.judged,
                        all.verdicts.iter().filter(|v| v.action != "recorded").count()
                    ));
                    out
                }
            };
            crate::out!("{}", text.trim_end()).context("cannot write to standard output")?;
            Ok(if all.verdicts.iter().any(|v| v.action != "recorded") { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
    }
}

/// FILE's policy documents; None when one has a mistake (each said with file:line:col).
fn checked_documents(file: &std::path::Path) -> anyhow::Result<Option<Vec<crate::policy::validate::Document>>> {
    let text = crate::yaml::read_file(file)?;
    let (documents, problems) = crate::policy::validate::validate_text(file, &text);
    for problem in &problems {
        crate::say!("{problem}");
    }
    Ok(problems.is_empty().then_some(documents))
}

fn open_store(overrides: &crate::config::Overrides) -> anyhow::Result<crate::store::Store> {
    let config = crate::config::Config::load(overrides)?;
    Ok(crate::store::Store::open(&config.store_path())?)
}

fn when(at_unix_ms: u64) -> String {
    jiff::Timestamp::from_millisecond(i64::try_from(at_unix_ms).unwrap_or(i64::MAX))
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| at_unix_ms.to_string())
}

fn apply_to_agent(
    file: &std::path::Path,
    source: &str,
    text: &str,
    agent: &std::path::Path,
    overrides: &crate::config::Overrides,
) -> anyhow::Result<ExitCode> {
    let applied =
        runtime()?.block_on(crate::agent::client::apply_policy(agent, file, text)).map_err(anyhow::Error::msg)?;
    crate::say!(
        "picket: {source} is in force on the agent at {} (kept as {}): {}",
        agent.display(),
        applied.kept_as,
        applied.summary
    );
    keep(overrides, &crate::policy::history::agent_target(agent), source, text, &applied.summary);
    Ok(ExitCode::SUCCESS)
}

fn apply_to_cluster(
    source: &str,
    documents: &[crate::policy::validate::Document],
    context: Option<&str>,
    overrides: &crate::config::Overrides,
) -> anyhow::Result<ExitCode> {
    let (name, applied) =
        runtime()?.block_on(crate::policy::apply::to_cluster(context, documents)).map_err(anyhow::Error::msg)?;
    for applied in applied {
        crate::say!("picket: context {name}: applied {applied}");
    }
    for document in documents {
        let yaml = document.yaml().unwrap_or_default();
        keep(overrides, &crate::policy::history::cluster_target(&name, &document.name()), source, &yaml, "");
    }
    Ok(ExitCode::SUCCESS)
}

/// A seccomp profile per PicketPolicy of FILE, from what its group was learned to call: printed
/// (one policy) or written to OUT/NAME.json.
fn export_seccomp(
    file: &std::path::Path,
    source: &BaselineSource,
    out: Option<&std::path::Path>,
    context: Option<&str>,
) -> anyhow::Result<ExitCode> {
    use crate::policy::validate::Document;
    let Some(documents) = checked_documents(file)? else { return Ok(ExitCode::from(super::EXIT_ERROR)) };
    let policies: Vec<&crate::policy::PicketPolicy> = documents
        .iter()
        .filter_map(|d| match d {
            Document::Policy(p) => Some(p),
            Document::ClusterPolicy(_) => None,
        })
        .collect();
    if policies.len() > 1 && out.is_none() {
        anyhow::bail!("{}: {} policies: give --out DIR for a profile each", file.display(), policies.len());
    }
    let baselines = source.load(&runtime()?, context)?;
    let calls: crate::policy::export::seccomp::GroupCalls =
        baselines.groups.into_iter().map(|(group, baseline)| (group, baseline.syscalls)).collect();
    let mut failed = 0;
    for policy in policies {
        let exported = match crate::policy::export::seccomp::export(policy, &calls) {
            Ok(exported) => exported,
            Err(e) => {
                crate::say!("picket: {e}");
                failed += 1;
                continue;
            }
        };
        for note in &exported.notes {
            crate::say!("picket: {note}");
        }
        let text = serde_json::to_string_pretty(&exported.object).context("cannot write JSON")?;
        match out {
            None => crate::out!("{text}").context("cannot write to standard output")?,
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
                let name = policy.metadata.name.clone().unwrap_or_else(|| "policy".into());
                let path = dir.join(format!("{name}.json"));
                std::fs::write(&path, format!("{text}\n"))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                crate::say!("picket: wrote {}", path.display());
            }
        }
    }
    Ok(if failed > 0 { ExitCode::from(super::EXIT_ERROR) } else { ExitCode::SUCCESS })
}

fn export(file: &std::path::Path, format: &str, cluster: bool, context: Option<&str>) -> anyhow::Result<ExitCode> {
    use crate::policy::export::{self, Labels};
    use crate::policy::validate::Document;
    let Some(documents) = checked_documents(file)? else { return Ok(ExitCode::from(super::EXIT_ERROR)) };
    let policies: Vec<crate::policy::PicketPolicy> = documents
        .iter()
        .filter_map(|d| match d {
            Document::Policy(p) => Some(p.clone()),
            Document::ClusterPolicy(_) => {
                crate::say!(
                    "picket: {}: cluster policies are not exported yet (one per namespace: a PicketPolicy each)",
                    d.name()
                );
                None
            }
        })
        .collect();
    let labels = match cluster {
        false => Labels::default(),
        true => {
            let specs: Vec<(String, crate::policy::PolicySpec)> = policies
                .iter()
                .map(|p| (p.metadata.namespace.clone().unwrap_or_else(|| "default".into()), p.spec.clone()))
                .collect();
            let wanted = export::wanted_workloads(&specs);
            let (labels, notes) = runtime()?.block_on(async {
                let (client, _) = crate::cluster::client_for(context).await?;
                anyhow::Ok(export::labels::from_cluster(&client, &wanted).await)
            })?;
            for note in notes {
                crate::say!("picket: {note}");
            }
            labels
        }
    };
    let mut out = String::new();
    let mut failed = 0;
    for policy in &policies {
        let exported = match format {
            "networkpolicy" => export::networkpolicy::export(policy, &labels)
                .map(|e| (serde_json::to_value(&e.object).unwrap_or_default(), e.notes)),
            "kubearmor" => export::kubearmor::export(policy, &labels).map(|e| (e.object, e.notes)),
            _ => export::cilium::export(policy, &labels).map(|e| (e.object, e.notes)),
        };
        match exported {
            Ok((object, notes)) => {
                for note in notes {
                    crate::say!("picket: {note}");
                }
                out.push_str("---\n");
                out.push_str(&serde_saphyr::to_string(&object).context("cannot write YAML")?);
            }
            Err(e) => {
                crate::say!("picket: {e}");
                failed += 1;
            }
        }
    }
    if !out.is_empty() {
        crate::out!("{}", out.trim_end()).context("cannot write to standard output")?;
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(super::EXIT_ERROR) })
}

fn group_list(baselines: &crate::learn::Baselines) -> String {
    let keys: Vec<&str> = baselines.groups.keys().map(String::as_str).collect();
    if keys.is_empty() { "none".into() } else { keys.join(", ") }
}

/// The baselines as text: per group, programs as a tree from those started from outside.
fn show_modes(modes: &crate::agent::client::Modes) -> String {
    let mut out = String::new();
    for (group, promoted) in &modes.groups {
        out.push_str(&format!("{group}: {} since {}\n", promoted.mode.as_str(), when(promoted.since_ms)));
        for v in &promoted.violations {
            out.push_str(&format!("  {} ({}, {}×, last {})\n", v.key(), v.action, v.count, when(v.last_ms)));
        }
    }
    for group in &modes.held {
        out.push_str(&format!("{group}: held by the policy in force\n"));
    }
    if out.is_empty() {
        out.push_str("no group has a mode yet: every group is in discover mode (picket policy mode GROUP monitor)\n");
    }
    out
}

fn show_baselines(baselines: &crate::learn::Baselines) -> String {
    let mut out = String::new();
    if baselines.groups.is_empty() {
        return "nothing learned yet".into();
    }
    for (key, b) in &baselines.groups {
        out.push_str(&format!("{key}  ({} observations)\n", b.observations));
        out.push_str("  programs:\n");
        let mut shown = std::collections::BTreeSet::new();
        let roots: Vec<&String> = b
            .processes
            .iter()
            .filter(|(_, s)| s.parents.contains("") || s.parents.is_empty())
            .map(|(e, _)| e)
            .collect();
        for root in roots {
            tree(b, root, 2, &mut shown, &mut out);
        }
        for exe in b.processes.keys().filter(|e| !shown.contains(*e)) {
            out.push_str(&format!(
                "    {exe}  (from {})\n",
                b.processes[exe].parents.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if !b.writes.is_empty() {
            out.push_str(&format!("  writes: {}\n", b.writes.iter().collect::<Vec<_>>().join(", ")));
        }
        if !b.reads.is_empty() {
            out.push_str(&format!("  reads: {}\n", b.reads.iter().collect::<Vec<_>>().join(", ")));
        }
        for flow in &b.egress {
            let names = b.names_of(flow).map(|n| format!(" ({})", n.iter().cloned().collect::<Vec<_>>().join(", ")));
            out.push_str(&format!("  connects to {flow}{}\n", names.unwrap_or_default()));
        }
        for listen in &b.listening {
            out.push_str(&format!("  accepts on port {} {:?}\n", listen.port, listen.protocol).to_lowercase());
        }
        if !b.suspicious.is_empty() {
            out.push_str(&format!(
                "  never learned (detections): {}\n",
                b.suspicious.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    out
}

fn tree(
    b: &crate::learn::Baseline,
    exe: &str,
    depth: usize,
    shown: &mut std::collections::BTreeSet<String>,
    out: &mut String,
) {
    if !shown.insert(exe.to_string()) || depth > 12 {
        return;
    }
    out.push_str(&format!("{}{exe}\n", "  ".repeat(depth)));
    for (child, seen) in &b.processes {
        if seen.parents.contains(exe) {
            tree(b, child, depth + 1, shown, out);
        }
    }
}

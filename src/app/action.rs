//! What can happen to the app: `Command`s a user can bind, and `Action`s (keys, task results)
//! that `update` turns into state changes and `Effect`s.

use std::collections::BTreeMap;
use std::time::Duration;

use crossterm::event::KeyEvent;

use std::sync::Arc;

use crate::agent::wire::WireEvent;
use crate::app::state::{AgentPod, BenchDone, BenchKind, FindingsData, StartedAgent, VulnDbSummary, WorkloadsData};
use crate::cluster::KubeContexts;
use crate::engine::EngineKind;
use crate::engine::{ContainerDetail, EngineProbe};
use crate::local::HostFacts;
use crate::scan::{Progress, Sbom};

/// What the Images pane shows of a stored SBOM, without its packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSbom {
    pub key: String,
    pub name: String,
    /// `docker`, `podman`, `oci-dir`, `docker-archive` …
    pub kind: String,
    pub config_digest: Option<String>,
    pub packages: usize,
    pub distro: Option<String>,
}

impl StoredSbom {
    pub fn of(key: String, sbom: &Sbom) -> Self {
        Self {
            key,
            name: sbom.source.name.clone(),
            kind: sbom.source.kind.clone(),
            config_digest: sbom.source.image.as_ref().map(|i| i.config_digest.clone()),
            packages: sbom.packages.len(),
            distro: sbom.distro.as_ref().map(|d| d.pretty_name.clone()),
        }
    }
}

pub use crate::config::command::Command;

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    Resize {
        width: u16,
        height: u16,
    },
    HostFacts(Box<HostFacts>),
    Engines(Vec<EngineProbe>),
    Contexts(Result<KubeContexts, String>),
    StoreSize(Result<u64, String>),
    ContainerDetail {
        request: u64,
        result: Result<Box<ContainerDetail>, String>,
    },
    PluginFinished {
        name: String,
        result: Result<String, String>,
    },
    StoredSboms(Result<Vec<StoredSbom>, String>),
    ScanProgress {
        request: u64,
        progress: Progress,
    },
    ScanFinished {
        request: u64,
        name: String,
        result: Result<StoredSbom, String>,
    },
    SbomLoaded {
        request: u64,
        result: Result<Arc<Sbom>, String>,
    },
    VulnDb(Result<VulnDbSummary, String>),
    FindingsLoaded {
        request: u64,
        result: Result<Arc<FindingsData>, String>,
    },
    /// An exception was written: where (`.picketignore`), or why not.
    FindingAccepted {
        id: String,
        result: Result<String, String>,
    },
    /// A benchmark run by `Effect::RunBench` finished.
    BenchFinished {
        request: u64,
        kind: BenchKind,
        result: Result<Arc<BenchDone>, String>,
    },
    /// The active context's workloads, judged.
    InventoryLoaded {
        request: u64,
        result: Result<Arc<WorkloadsData>, String>,
    },
    /// Lines read from the agent's socket, in order.
    AgentLines {
        conn: u64,
        events: Vec<WireEvent>,
        /// Lines that were not agent events (another program on the socket, a newer agent).
        unreadable: u64,
    },
    /// The agent connection ended or could not be made.
    AgentDown {
        conn: u64,
        reason: String,
    },
    /// The agent pods of a context's DaemonSet, or why they could not be listed.
    ClusterAgentsListed {
        conn: u64,
        result: Result<Vec<AgentPod>, String>,
    },
    /// One cluster agent's stream ended or could not be opened.
    ClusterAgentDown {
        conn: u64,
        pod: String,
        reason: String,
    },
    /// The console started the local agent, or why it could not.
    AgentStarted(Result<StartedAgent, String>),
    /// The agent's DaemonSet was applied to a context: the objects, or why not.
    AgentDeployed {
        context: String,
        result: Result<Vec<String>, String>,
    },
    /// A capture or bundle started from the Alerts pane ended: what to say.
    ForensicsDone(Result<String, String>),
    /// The Risk pane's scores, or why there are none.
    RiskLoaded {
        request: u64,
        result: Result<std::sync::Arc<crate::app::state::RiskData>, String>,
    },
    /// Each sink's delivery state (the Alerts pane's header).
    SinkStatus(Vec<crate::alert::outbox::SinkStatus>),
    /// The alerts and triage records kept in the store, folded (the Alerts pane).
    AlertsLoaded {
        request: u64,
        result: Result<Box<crate::app::state::AlertsLoad>, String>,
    },
    /// One fold of alerts in full, as lines.
    AlertDetailLoaded {
        id: String,
        result: Result<Vec<String>, String>,
    },
    /// The rule exception a false positive would write (the fold's key and the change), checked.
    FalsePositiveProposed(Result<(String, crate::alert::exception::Proposed), String>),
    /// A triage record was written: every record now, and what to say.
    AlertTriaged(Result<(crate::alert::triage::Triage, String), String>),
    /// The Admission pane's rows, or why there are none.
    AdmissionLoaded {
        request: u64,
        result: Result<std::sync::Arc<crate::app::state::AdmissionData>, String>,
    },
    /// The local agent's baselines (what each group was learned to do), or why not.
    BaselinesLoaded {
        request: u64,
        result: Result<crate::learn::Baselines, String>,
    },
    /// The modes the local agent keeps per group, with their violations (asked with the
    /// baselines), or why not.
    ModesLoaded {
        request: u64,
        result: Result<crate::agent::client::Modes, String>,
    },
    /// What the agent said of a mode set or a violation accepted.
    GroupChanged {
        result: Result<String, String>,
    },
    RegistriesLoaded {
        request: u64,
        result: Result<Vec<crate::crawl::overview::RegistryRow>, String>,
    },
    /// The registry results cluster jobs published in the active context.
    ClusterRegistriesLoaded {
        request: u64,
        result: Result<Vec<crate::crawl::in_cluster::Published>, String>,
    },
    /// The tags of one registry.
    RegistryTagsLoaded {
        request: u64,
        result: Result<Vec<crate::crawl::overview::TagRow>, String>,
    },
    /// A crawl started from the console got further.
    CrawlProgress {
        request: u64,
        name: String,
        progress: crate::crawl::CrawlProgress,
    },
    /// A crawl started from the console ended: what it did, or why it stopped.
    CrawlFinished {
        request: u64,
        name: String,
        result: Result<crate::crawl::CrawlReport, String>,
    },
    /// Where policies are in force, with their history.
    PoliciesLoaded {
        request: u64,
        result: Result<crate::app::state::PoliciesData, String>,
    },
    /// The editor's text was checked: its problems (none: the agent would take it).
    PolicyChecked {
        request: u64,
        problems: Vec<crate::policy::validate::Problem>,
    },
    /// The edited policy was applied: what the target said, or why it was refused.
    PolicyApplied {
        request: u64,
        result: Result<String, String>,
    },
    /// The text came back from `$EDITOR`, or why not.
    EditedExternally(Result<String, String>),
    ExpireToast(u64),
    RefreshTick,
    /// Alerts from an agent could not be kept in the store (they are still shown).
    AlertsNotKept(String),
}

/// A command a plugin runs, with its variables already expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRun {
    pub name: String,
    pub description: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub background: bool,
}

/// Work `update` asks for. Only `app::effects` (and the loop, for the terminal) carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    LoadHostFacts,
    LoadEngines,
    LoadContexts,
    LoadStoreSize,
    InspectContainer {
        request: u64,
        socket: std::path::PathBuf,
        id: String,
    },
    RunPlugin(PluginRun),
    ExpireToast {
        id: u64,
        after: Duration,
    },
    LoadStoredSboms,
    ScanImage {
        request: u64,
        name: String,
        kind: EngineKind,
        socket: std::path::PathBuf,
    },
    LoadSbom {
        request: u64,
        key: String,
    },
    LoadVulnDb,
    /// Match a stored SBOM against the database and apply the exceptions file.
    LoadFindings {
        request: u64,
        key: String,
        ignore_path: std::path::PathBuf,
    },
    AcceptFinding {
        path: std::path::PathBuf,
        id: String,
        package: Option<String>,
        reason: String,
        expires: Option<jiff::civil::Date>,
    },
    /// Run a benchmark: Docker on the first engine socket, the node at `/`, or the cluster of
    /// `context` (None: kubeconfig's current one).
    RunBench {
        request: u64,
        kind: BenchKind,
        context: Option<String>,
    },
    /// List the workloads of `context` and judge them (PSS baseline, CIS 5.2).
    LoadInventory {
        request: u64,
        context: Option<String>,
    },
    /// Read the agent's event lines from its socket; keep trying for `wait` if it is not there
    /// yet (an agent just started).
    ConnectAgent {
        conn: u64,
        socket: std::path::PathBuf,
        wait: Duration,
    },
    /// List the DaemonSet's agent pods of `context` and read each one's lines through a
    /// port-forward.
    ConnectClusterAgents {
        conn: u64,
        context: String,
    },
    /// Start `picket agent run --socket SOCKET` as a child of the console (root only).
    StartAgent {
        socket: std::path::PathBuf,
    },
    /// Server-side apply the agent's manifest (Namespace, RBAC, DaemonSet) to a context.
    DeployAgent {
        context: String,
    },
    /// The registries (config and added) with their last crawls and findings.
    /// The Admission pane: stored decisions, and the rules of `config_dir/admission/` over the
    /// context's running workloads.
    LoadAdmission {
        request: u64,
        context: Option<String>,
    },
    /// Capture the traffic of the container of alert (or fold) `id` into a pcap in `dir`.
    CaptureAlert {
        id: String,
        dir: std::path::PathBuf,
    },
    /// Quarantine the container of the fold (or alert) `id` through the agent at `socket`,
    /// logged as a response action.
    QuarantineAlert {
        id: String,
        socket: std::path::PathBuf,
    },
    /// Undo the response actions of the fold (or alert) `id`.
    UndoActions {
        id: String,
    },
    /// Write the incident bundle of alert (or fold) `id` into `dir`.
    BundleAlert {
        id: String,
        dir: std::path::PathBuf,
    },
    /// The Risk pane: the context's workloads scored.
    LoadRisk {
        request: u64,
        context: Option<String>,
    },
    /// The response sinks' delivery state.
    LoadSinkStatus,
    /// The Alerts pane: the newest kept alerts and the triage records, folded.
    LoadAlerts {
        request: u64,
    },
    /// One fold (by id) in full: `alert::detail`.
    LoadAlertDetail {
        id: String,
    },
    /// Write (Some) or remove (None) the triage record of the fold with `key`; `said` is the
    /// toast when done.
    TriageAlert {
        key: String,
        record: Option<crate::alert::triage::TriageRecord>,
        said: String,
    },
    /// Work out the rule exception that marks the fold a false positive.
    ProposeFalsePositive {
        id: String,
    },
    /// Write the exception (after the user said yes) and mark the fold.
    WriteFalsePositive {
        key: String,
        proposed: Box<crate::alert::exception::Proposed>,
    },
    /// Ask the local agent on `socket` for its baselines.
    LoadBaselines {
        request: u64,
        socket: std::path::PathBuf,
    },
    /// Set a group's mode on the local agent (`picket policy mode`).
    SetGroupMode {
        socket: std::path::PathBuf,
        group: String,
        mode: crate::policy::spec::Mode,
    },
    /// Accept a group's violation into its policy on the local agent (`picket policy accept`).
    AcceptViolation {
        socket: std::path::PathBuf,
        group: String,
        violation: String,
    },
    LoadRegistries {
        request: u64,
        /// The active context, whose published crawl results are read too.
        context: Option<String>,
    },
    LoadRegistryTags {
        request: u64,
        name: String,
    },
    /// Where policies are in force: the local agent's (asked on `socket`) and the history's
    /// targets.
    LoadPolicies {
        request: u64,
        socket: std::path::PathBuf,
    },
    /// Check an edited policy as the agent would.
    CheckPolicy {
        request: u64,
        text: String,
    },
    /// Put an edited policy in force and keep it in the history.
    ApplyPolicy {
        request: u64,
        target: crate::app::state::PolicyTarget,
        text: String,
    },
    /// Hand the text to `$EDITOR` (the loop gives it the terminal meanwhile).
    EditExternally {
        text: String,
    },
    /// Crawl one registry, reporting progress (what `picket registry scan NAME` does).
    CrawlRegistry {
        request: u64,
        name: String,
    },
}

//! Everything the screen shows. Changed only by `update`; read by `ui::render`.

mod admission;
pub mod alerts;
mod behaviour;
mod compare;
mod compliance;
mod containers;
mod contexts;
pub mod editor;
mod findings;
mod images;
mod network;
mod nodes;
mod policies;
mod registries;
mod risk;
mod workloads;

pub use admission::{AdmissionData, AdmissionRow, AdmissionState, RowSource, row_text as admission_row_text};
pub use alerts::{AlertsLoad, AlertsState, OpenedFold};
pub use behaviour::{BehaviourState, GroupMode, group_text};
pub use compare::CompareState;
pub use compliance::{BenchDone, BenchKind, BenchRun, CheckDetail, ComplianceState, check_text, result_text};
pub use containers::{DetailState, container_text};
pub use contexts::context_text;
pub use findings::{AcceptField, AcceptForm, FindingSort, FindingsData, FindingsState, finding_text};
pub use images::{ImageRow, PackagesState, ScanState, image_rows, image_text, package_text};
pub use network::NetworkState;
pub use nodes::{AgentLink, AgentPod, AgentStatus, ClusterAgents, ContainerActivity, NodesState, Proc, StartedAgent};
pub use policies::{PoliciesData, PoliciesState, PolicyEditor, PolicyRow, PolicyTarget};
pub use registries::{CrawlRun, RegistriesState, TagsState, registry_text, tag_text};
pub use risk::{RiskData, RiskState};
pub use workloads::{WorkloadsData, WorkloadsState, images_label, workload_text};

use std::collections::BTreeMap;
use std::path::PathBuf;

use std::collections::BTreeMap as Map;

use crate::app::action::{Effect, StoredSbom};
use crate::cluster::{ContextInfo, KubeContexts};
use crate::config::{Keymap, Plugins};
use crate::engine::{ContainerInfo, EngineProbe};
use crate::local::HostFacts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaneId {
    Overview,
    Containers,
    ContainerDetail,
    Images,
    Packages,
    Findings,
    FindingDetail,
    Compliance,
    /// One check of a benchmark in full.
    ComplianceCheck,
    Contexts,
    Workloads,
    /// The failed checks of one workload.
    WorkloadChecks,
    /// The node agent and the containers it sees.
    Nodes,
    /// One container's live processes and events, from the agent.
    NodeActivity,
    /// Registries picket crawls, with their last crawl and findings.
    Registries,
    /// The tags of one registry.
    RegistryTags,
    /// Several contexts' workloads side by side (`:ctx a,b`).
    Compare,
    /// One workload in each compared context.
    CompareWorkload,
    /// What the agent learned each group of containers does.
    Behaviour,
    /// One group's baseline in full.
    BehaviourGroup,
    /// Where policies are in force, with their history.
    Policies,
    /// A policy in the YAML editor.
    PolicyEditor,
    /// The webhook's decisions and the dry run of the rules over running workloads.
    Admission,
    /// One decision in full.
    AdmissionDecision,
    /// What applying the edited policy would change.
    PolicyDiff,
    /// Alerts from the agents, folded by rule, container and program.
    Alerts,
    /// One fold of alerts in full.
    AlertDetail,
    /// The context's workloads ranked by risk score.
    Risk,
    /// One workload's score explained.
    RiskDetail,
    /// The connections the agents report, as a table or a map.
    Network,
    /// One connection in full.
    NetworkFlow,
}

/// The panes `tab` cycles through, in order.
pub const TOP_PANES: [PaneId; 14] = [
    PaneId::Overview,
    PaneId::Containers,
    PaneId::Images,
    PaneId::Compliance,
    PaneId::Contexts,
    PaneId::Workloads,
    PaneId::Nodes,
    PaneId::Network,
    PaneId::Registries,
    PaneId::Behaviour,
    PaneId::Policies,
    PaneId::Admission,
    PaneId::Alerts,
    PaneId::Risk,
];

impl PaneId {
    /// The plugin scope of this pane.
    pub fn scope(self) -> &'static str {
        match self {
            Self::Overview => "overview",
            Self::Containers | Self::ContainerDetail => "containers",
            Self::Images | Self::Packages => "images",
            Self::Findings | Self::FindingDetail => "findings",
            Self::Compliance | Self::ComplianceCheck => "compliance",
            Self::Contexts => "contexts",
            Self::Workloads | Self::WorkloadChecks => "workloads",
            Self::Nodes | Self::NodeActivity => "nodes",
            Self::Registries | Self::RegistryTags => "registries",
            Self::Compare | Self::CompareWorkload => "compare",
            Self::Behaviour | Self::BehaviourGroup => "behaviour",
            Self::Policies | Self::PolicyEditor | Self::PolicyDiff => "policies",
            Self::Admission | Self::AdmissionDecision => "admission",
            Self::Alerts | Self::AlertDetail => "alerts",
            Self::Risk | Self::RiskDetail => "risk",
            Self::Network | Self::NetworkFlow => "network",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Overview => "overview",
            Self::Containers => "containers",
            Self::ContainerDetail => "container",
            Self::Images => "images",
            Self::Packages => "packages",
            Self::Findings => "findings",
            Self::FindingDetail => "finding",
            Self::Compliance => "compliance",
            Self::ComplianceCheck => "check",
            Self::Contexts => "contexts",
            Self::Workloads => "workloads",
            Self::WorkloadChecks => "workload",
            Self::Nodes => "nodes",
            Self::NodeActivity => "activity",
            Self::Registries => "registries",
            Self::RegistryTags => "tags",
            Self::Compare => "compare",
            Self::CompareWorkload => "compared",
            Self::Behaviour => "behaviour",
            Self::BehaviourGroup => "group",
            Self::Policies => "policies",
            Self::PolicyEditor => "policy",
            Self::PolicyDiff => "diff",
            Self::Admission => "admission",
            Self::AdmissionDecision => "decision",
            Self::Alerts => "alerts",
            Self::AlertDetail => "alert",
            Self::Risk => "risk",
            Self::RiskDetail => "score",
            Self::Network => "network",
            Self::NetworkFlow => "connection",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loadable<T> {
    Loading,
    Ready(T),
    Failed(String),
}

impl<T> Loadable<T> {
    pub fn ready(&self) -> Option<&T> {
        match self {
            Self::Ready(value) => Some(value),
            _ => None,
        }
    }
}

/// Selection and filter over a list of rows. `visible` holds indices into the rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListView {
    pub filter: String,
    pub visible: Vec<usize>,
    pub selected: usize,
}

impl ListView {
    /// Recomputes the visible rows from each row's searchable text (case-insensitive substring;
    /// a leading `!` inverts, as in k9s).
    pub fn refilter<'a>(&mut self, texts: impl Iterator<Item = String> + 'a) {
        let (invert, needle) = match self.filter.strip_prefix('!') {
            Some(rest) => (true, rest.to_lowercase()),
            None => (false, self.filter.to_lowercase()),
        };
        self.visible = texts
            .enumerate()
            .filter(|(_, text)| needle.is_empty() || text.to_lowercase().contains(&needle) != invert)
            .map(|(i, _)| i)
            .collect();
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
    }

    /// Index into the rows of the selected visible row.
    pub fn current(&self) -> Option<usize> {
        self.visible.get(self.selected).copied()
    }

    pub fn move_by(&mut self, delta: isize) {
        let last = self.visible.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    pub fn select_row(&mut self, row: usize) {
        if let Some(pos) = self.visible.iter().position(|&r| r == row) {
            self.selected = pos;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Filter {
        input: String,
    },
    Command {
        input: String,
    },
    Help,
    /// A question before something with consequences (a plugin marked `confirm`, a deployment).
    Confirm(Confirmation),
    /// Accepting the selected finding: the exception's reason and expiry being typed.
    Accept(AcceptForm),
    /// Typing into the policy editor's text.
    Insert,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub question: String,
    /// What exactly will happen (a command line, the objects applied).
    pub detail: String,
    /// Carried out on `y`.
    pub effect: Effect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub id: u64,
    pub text: String,
    pub is_error: bool,
}

/// The vulnerability database at a glance, for the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VulnDbSummary {
    pub sources: usize,
    pub advisories: u64,
    /// Age in seconds of the least recently updated source.
    pub oldest_age: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    pub path: PathBuf,
    pub size: Option<u64>,
    pub schema: u32,
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub version: &'static str,
    pub store: StoreInfo,
    /// The kubeconfig context picked with `--context` or `:ctx NAME`.
    pub context: Option<String>,
    pub host: Loadable<HostFacts>,
    pub engine_sockets_searched: Vec<PathBuf>,
    pub engines: Loadable<Vec<EngineProbe>>,
    pub engines_loading: bool,
    pub containers: Vec<ContainerInfo>,
    pub containers_view: ListView,
    pub contexts: Loadable<KubeContexts>,
    pub contexts_view: ListView,
    pub detail: Option<DetailState>,
    pub stored: Loadable<Vec<StoredSbom>>,
    pub images: Vec<ImageRow>,
    pub images_view: ListView,
    /// Scans under way, by image name.
    pub scans: Map<String, ScanState>,
    pub packages: Option<PackagesState>,
    pub findings: Option<FindingsState>,
    pub compliance: ComplianceState,
    /// The check open in the ComplianceCheck pane.
    pub check: Option<CheckDetail>,
    /// None until the Workloads pane is first shown (or after the context changes).
    pub workloads: Option<WorkloadsState>,
    /// None until the Nodes pane is first shown.
    pub nodes: Option<NodesState>,
    /// None until the Registries pane is first shown.
    pub registries: Option<RegistriesState>,
    /// The contexts compared with `:ctx a,b`, while that view is open.
    pub compare: Option<CompareState>,
    /// None until the Behaviour pane is first shown.
    pub behaviour: Option<BehaviourState>,
    /// None until the Policies pane is first shown.
    pub policies: Option<PoliciesState>,
    /// None until the Admission pane is first shown (or after the context changes).
    pub admission: Option<AdmissionState>,
    /// None until the Alerts pane is first shown.
    pub alerts: Option<AlertsState>,
    /// None until the Risk pane is first shown (or after the context changes).
    pub risk: Option<RiskState>,
    /// The Network pane (made when it is first shown; fed by every agent line from then on).
    pub network: Option<NetworkState>,
    /// Where the local agent serves its events.
    pub agent_socket: PathBuf,
    /// Whether picket runs as root (it may then start the agent itself).
    pub is_root: bool,
    /// This executable, for the commands the console tells the user to run.
    pub picket_exe: String,
    pub vulndb: Loadable<VulnDbSummary>,
    /// Where accepted findings are written (`.picketignore` in the directory picket started in).
    pub ignore_path: PathBuf,
    /// Navigation stack; the last entry is on screen. Never empty.
    pub nav: Vec<PaneId>,
    pub mode: Mode,
    pub toasts: Vec<Toast>,
    pub keymap: Keymap,
    pub plugins: Plugins,
    pub page_size: usize,
    pub should_quit: bool,
    pub next_id: u64,
}

impl AppState {
    pub fn new(store: StoreInfo, context: Option<String>, keymap: Keymap, plugins: Plugins) -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            store,
            context,
            host: Loadable::Loading,
            engine_sockets_searched: Vec::new(),
            engines: Loadable::Loading,
            engines_loading: true,
            containers: Vec::new(),
            containers_view: ListView::default(),
            contexts: Loadable::Loading,
            contexts_view: ListView::default(),
            detail: None,
            stored: Loadable::Loading,
            images: Vec::new(),
            images_view: ListView::default(),
            scans: Map::new(),
            packages: None,
            findings: None,
            compliance: ComplianceState::default(),
            check: None,
            workloads: None,
            nodes: None,
            registries: None,
            compare: None,
            behaviour: None,
            policies: None,
            admission: None,
            alerts: None,
            risk: None,
            network: None,
            agent_socket: PathBuf::from(crate::agent::stream::DEFAULT_SOCKET),
            is_root: false,
            picket_exe: "picket".to_string(),
            vulndb: Loadable::Loading,
            ignore_path: PathBuf::from(".picketignore"),
            nav: vec![PaneId::Overview],
            mode: Mode::Normal,
            toasts: Vec::new(),
            keymap,
            plugins,
            page_size: 20,
            should_quit: false,
            next_id: 1,
        }
    }

    pub fn pane(&self) -> PaneId {
        self.nav.last().copied().unwrap_or(PaneId::Overview)
    }

    pub fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The list behind the current pane, if it has one.
    pub fn list_view(&self) -> Option<&ListView> {
        match self.pane() {
            PaneId::Containers => Some(&self.containers_view),
            PaneId::Contexts => Some(&self.contexts_view),
            PaneId::Images => Some(&self.images_view),
            PaneId::Packages => self.packages.as_ref().map(|p| &p.view),
            PaneId::Findings => self.findings.as_ref().map(|f| &f.view),
            PaneId::Compliance => Some(&self.compliance.view),
            PaneId::ComplianceCheck => self.check.as_ref().map(|c| &c.view),
            PaneId::Workloads => self.workloads.as_ref().map(|w| &w.view),
            PaneId::WorkloadChecks => self.workloads.as_ref().map(|w| &w.checks_view),
            PaneId::Nodes => self.nodes.as_ref().map(|n| &n.view),
            PaneId::Registries => self.registries.as_ref().map(|r| &r.view),
            PaneId::RegistryTags => self.registries.as_ref().and_then(|r| r.tags.as_ref()).map(|t| &t.view),
            PaneId::Compare => self.compare.as_ref().map(|c| &c.view),
            PaneId::Behaviour => self.behaviour.as_ref().map(|b| &b.view),
            PaneId::Policies => self.policies.as_ref().map(|p| &p.view),
            PaneId::Admission => self.admission.as_ref().map(|a| &a.view),
            PaneId::Alerts => self.alerts.as_ref().map(|a| &a.view),
            PaneId::Risk => self.risk.as_ref().map(|r| &r.view),
            PaneId::Network => self.network.as_ref().filter(|n| !n.map).map(|n| &n.view),
            PaneId::Overview
            | PaneId::ContainerDetail
            | PaneId::FindingDetail
            | PaneId::NodeActivity
            | PaneId::CompareWorkload
            | PaneId::BehaviourGroup
            | PaneId::PolicyEditor
            | PaneId::PolicyDiff
            | PaneId::AdmissionDecision
            | PaneId::AlertDetail
            | PaneId::NetworkFlow
            | PaneId::RiskDetail => None,
        }
    }

    pub fn list_view_mut(&mut self) -> Option<&mut ListView> {
        match self.pane() {
            PaneId::Containers => Some(&mut self.containers_view),
            PaneId::Contexts => Some(&mut self.contexts_view),
            PaneId::Images => Some(&mut self.images_view),
            PaneId::Packages => self.packages.as_mut().map(|p| &mut p.view),
            PaneId::Findings => self.findings.as_mut().map(|f| &mut f.view),
            PaneId::Compliance => Some(&mut self.compliance.view),
            PaneId::ComplianceCheck => self.check.as_mut().map(|c| &mut c.view),
            PaneId::Workloads => self.workloads.as_mut().map(|w| &mut w.view),
            PaneId::WorkloadChecks => self.workloads.as_mut().map(|w| &mut w.checks_view),
            PaneId::Nodes => self.nodes.as_mut().map(|n| &mut n.view),
            PaneId::Registries => self.registries.as_mut().map(|r| &mut r.view),
            PaneId::RegistryTags => self.registries.as_mut().and_then(|r| r.tags.as_mut()).map(|t| &mut t.view),
            PaneId::Compare => self.compare.as_mut().map(|c| &mut c.view),
            PaneId::Behaviour => self.behaviour.as_mut().map(|b| &mut b.view),
            PaneId::Policies => self.policies.as_mut().map(|p| &mut p.view),
            PaneId::Admission => self.admission.as_mut().map(|a| &mut a.view),
            PaneId::Alerts => self.alerts.as_mut().map(|a| &mut a.view),
            PaneId::Risk => self.risk.as_mut().map(|r| &mut r.view),
            PaneId::Network => self.network.as_mut().filter(|n| !n.map).map(|n| &mut n.view),
            PaneId::Overview
            | PaneId::ContainerDetail
            | PaneId::FindingDetail
            | PaneId::NodeActivity
            | PaneId::CompareWorkload
            | PaneId::BehaviourGroup
            | PaneId::PolicyEditor
            | PaneId::PolicyDiff
            | PaneId::AdmissionDecision
            | PaneId::AlertDetail
            | PaneId::NetworkFlow
            | PaneId::RiskDetail => None,
        }
    }

    pub fn selected_image(&self) -> Option<&ImageRow> {
        self.images_view.current().and_then(|i| self.images.get(i))
    }

    pub fn selected_container(&self) -> Option<&ContainerInfo> {
        match self.pane() {
            PaneId::ContainerDetail => self.detail.as_ref().map(|d| &d.container),
            PaneId::Containers => self.containers_view.current().and_then(|i| self.containers.get(i)),
            _ => None,
        }
    }

    pub fn context_rows(&self) -> &[ContextInfo] {
        self.contexts.ready().map_or(&[], |c| c.contexts.as_slice())
    }

    pub fn selected_context(&self) -> Option<&ContextInfo> {
        self.contexts_view.current().and_then(|i| self.context_rows().get(i))
    }

    /// The active context: the one picked, else kubeconfig's current-context.
    pub fn active_context(&self) -> Option<&str> {
        self.context.as_deref().or_else(|| self.contexts.ready().and_then(|c| c.current.as_deref()))
    }

    /// Variables for a plugin started on the current selection.
    pub fn plugin_vars(&self) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        let mut set = |k: &str, v: &str| {
            vars.insert(k.to_string(), v.to_string());
        };
        set("PANE", self.pane().title());
        set("CONTEXT", self.active_context().unwrap_or("local"));
        if self.pane() == PaneId::Images
            && let Some(image) = self.selected_image()
        {
            set("NAME", &image.name);
            set("IMAGE", &image.name);
            set("ID", &image.id);
            if let Some((_, socket)) = &image.engine {
                set("ENGINE", &format!("unix://{}", socket.display()));
            }
        } else if let Some(c) = self.selected_container() {
            set("NAME", &c.name);
            set("ID", &c.id);
            set("IMAGE", &c.image);
            set("ENGINE", &format!("unix://{}", c.socket.display()));
            set("NAMESPACE", c.pod_namespace().unwrap_or_default());
        } else if self.pane() == PaneId::Contexts
            && let Some(ctx) = self.selected_context()
        {
            set("NAME", &ctx.name);
            set("CLUSTER", &ctx.cluster);
            set("NAMESPACE", &ctx.namespace);
        } else if matches!(self.pane(), PaneId::Workloads | PaneId::WorkloadChecks)
            && let Some(w) = self
                .workloads
                .as_ref()
                .and_then(|w| if self.pane() == PaneId::Workloads { w.selected() } else { w.opened() })
        {
            set("NAME", &w.name);
            set("NAMESPACE", &w.namespace);
            set("KIND", &w.kind);
        }
        vars
    }

    pub fn latest_toast(&self) -> Option<&Toast> {
        self.toasts.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_and_selection() {
        let mut view = ListView::default();
        let rows = ["web nginx", "db postgres", "cache redis", "web-2 nginx"];
        view.refilter(rows.iter().map(|s| s.to_string()));
        assert_eq!(view.visible, vec![0, 1, 2, 3]);
        view.move_by(10);
        assert_eq!(view.current(), Some(3));
        view.filter = "NGINX".into();
        view.refilter(rows.iter().map(|s| s.to_string()));
        assert_eq!(view.visible, vec![0, 3]);
        assert_eq!(view.selected, 1, "selection is clamped into the filtered rows");
        view.filter = "!nginx".into();
        view.refilter(rows.iter().map(|s| s.to_string()));
        assert_eq!(view.visible, vec![1, 2]);
        view.move_by(-5);
        assert_eq!(view.current(), Some(1));
        view.filter = "nothing-matches".into();
        view.refilter(rows.iter().map(|s| s.to_string()));
        assert_eq!(view.current(), None);
    }
}

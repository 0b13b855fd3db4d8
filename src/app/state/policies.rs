//! The Policies pane: where policies are in force (the local agent, cluster objects applied
//! from picket) with their history, and the YAML editor: a policy being changed, checked as it
//! is typed, compared with what is in force, and applied.

use std::path::PathBuf;

use super::editor::Buffer;
use super::{ListView, Loadable};
use crate::policy::validate::Problem;

/// Where a policy is put in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyTarget {
    /// The local agent, through its socket (the whole file it holds).
    Agent(PathBuf),
    /// One object in a cluster: the context it was applied to.
    Cluster { context: String, object: String },
}

impl PolicyTarget {
    /// The history's name of the target (`picket policy history` lists the same).
    pub fn label(&self) -> String {
        match self {
            Self::Agent(socket) => crate::policy::history::agent_target(socket),
            Self::Cluster { context, object } => crate::policy::history::cluster_target(context, object),
        }
    }
}

/// One row: a target with its last applied version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRow {
    pub target: PolicyTarget,
    /// Versions kept in the history (0: none applied from picket).
    pub versions: u32,
    pub last_applied_ms: Option<u64>,
    pub who: String,
    pub source: String,
    pub summary: String,
    /// The text in force: the agent's own answer, else the last version applied.
    pub text: Result<String, String>,
    /// Where the agent keeps it.
    pub kept_as: Option<String>,
}

/// What loading the pane found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoliciesData {
    pub rows: Vec<PolicyRow>,
}

#[derive(Debug, Clone)]
pub struct PolicyEditor {
    pub target: PolicyTarget,
    /// The text in force when the editor opened (or last applied): what the diff compares with.
    pub in_force: String,
    pub buffer: Buffer,
    /// Typing goes into the text (insert mode) rather than to the pane's keys.
    pub inserting: bool,
    /// The check under way: the latest text's, others are dropped when they come back.
    pub check_request: u64,
    pub problems: Vec<Problem>,
    /// False while the latest text is being checked.
    pub checked: bool,
    /// The diff preview (`d`): unified lines, made when asked, not per frame.
    pub diff: Vec<String>,
}

impl PolicyEditor {
    pub fn modified(&self) -> bool {
        self.buffer.text().trim_end() != self.in_force.trim_end()
    }

    /// The unified diff from what is in force to the text in the editor.
    pub fn make_diff(&mut self) {
        let text = self.buffer.text();
        let diff = similar::TextDiff::from_lines(&self.in_force, &text);
        let unified = diff.unified_diff().context_radius(3).header("in force", "edited").to_string();
        self.diff = unified.lines().map(str::to_string).collect();
    }

    /// `+3 -1` lines against what is in force.
    pub fn change_count(&self) -> (usize, usize) {
        let text = self.buffer.text();
        let diff = similar::TextDiff::from_lines(&self.in_force, &text);
        diff.iter_all_changes().fold((0, 0), |(added, removed), change| match change.tag() {
            similar::ChangeTag::Insert => (added + 1, removed),
            similar::ChangeTag::Delete => (added, removed + 1),
            similar::ChangeTag::Equal => (added, removed),
        })
    }
}

#[derive(Debug, Clone)]
pub struct PoliciesState {
    pub request: u64,
    pub data: Loadable<PoliciesData>,
    pub view: ListView,
    pub editor: Option<PolicyEditor>,
}

impl PoliciesState {
    pub fn new(request: u64) -> Self {
        Self { request, data: Loadable::Loading, view: ListView::default(), editor: None }
    }

    pub fn rows(&self) -> &[PolicyRow] {
        self.data.ready().map_or(&[], |d| d.rows.as_slice())
    }

    pub fn selected(&self) -> Option<&PolicyRow> {
        self.view.current().and_then(|i| self.rows().get(i))
    }

    pub fn refilter(&mut self) {
        let texts: Vec<String> =
            self.rows().iter().map(|r| format!("{} {} {}", r.target.label(), r.who, r.source)).collect();
        self.view.refilter(texts.into_iter());
    }
}

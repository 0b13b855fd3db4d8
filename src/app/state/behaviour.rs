//! The Behaviour pane: what the local agent learned each group of containers does (its
//! baselines, asked for on the agent's socket as `picket policy show` asks), and one group's
//! baseline in full.

use super::{ListView, Loadable};
use crate::agent::client::Modes;
use crate::agent::promotion::{Promoted, Violation};
use crate::learn::Baseline;
use crate::policy::spec::Mode;

#[derive(Debug, Clone, PartialEq)]
pub struct BehaviourState {
    pub request: u64,
    pub groups: Loadable<Vec<Baseline>>,
    /// The modes the agent keeps (an agent that keeps none says why).
    pub modes: Loadable<Modes>,
    pub view: ListView,
    /// The group opened with enter, by key.
    pub open: Option<String>,
    /// The selected violation of the open group.
    pub violation: usize,
    /// How far the open group's text is scrolled (lines).
    pub scroll: usize,
}

/// A group's mode as the pane shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupMode {
    /// Kept by the agent (set by hand or promoted).
    Kept(Mode),
    /// The policy in force (a file, an apply, the cluster's) holds it.
    Held,
}

impl BehaviourState {
    pub fn new(request: u64) -> Self {
        Self {
            request,
            groups: Loadable::Loading,
            modes: Loadable::Loading,
            view: ListView::default(),
            open: None,
            violation: 0,
            scroll: 0,
        }
    }

    pub fn mode_of(&self, group: &str) -> GroupMode {
        let Some(modes) = self.modes.ready() else { return GroupMode::Kept(Mode::Discover) };
        if modes.held.iter().any(|g| g == group) {
            return GroupMode::Held;
        }
        GroupMode::Kept(modes.groups.get(group).map_or(Mode::Discover, |p| p.mode))
    }

    pub fn promoted(&self, group: &str) -> Option<&Promoted> {
        self.modes.ready().and_then(|m| m.groups.get(group))
    }

    pub fn violations_of(&self, group: &str) -> &[Violation] {
        self.promoted(group).map_or(&[], |p| p.violations.as_slice())
    }

    pub fn list(&self) -> &[Baseline] {
        self.groups.ready().map_or(&[], Vec::as_slice)
    }

    pub fn selected(&self) -> Option<&Baseline> {
        self.view.current().and_then(|i| self.list().get(i))
    }

    pub fn opened(&self) -> Option<&Baseline> {
        let key = self.open.as_deref()?;
        self.list().iter().find(|b| b.group.key == key)
    }

    pub fn refilter(&mut self) {
        let texts: Vec<String> = self.list().iter().map(group_text).collect();
        self.view.refilter(texts.into_iter());
    }
}

/// What the filter matches a group by: its key and its programs.
pub fn group_text(baseline: &Baseline) -> String {
    let programs: Vec<&str> = baseline.processes.keys().map(String::as_str).collect();
    format!("{} {}", baseline.group.key, programs.join(" "))
}

//! The Behaviour pane: what the local agent learned each group of containers does (its
//! baselines, asked for on the agent's socket as `picket policy show` asks), and one group's
//! baseline in full.

use super::{ListView, Loadable};
use crate::learn::Baseline;

#[derive(Debug, Clone, PartialEq)]
pub struct BehaviourState {
    pub request: u64,
    pub groups: Loadable<Vec<Baseline>>,
    pub view: ListView,
    /// The group opened with enter, by key.
    pub open: Option<String>,
}

impl BehaviourState {
    pub fn new(request: u64) -> Self {
        Self { request, groups: Loadable::Loading, view: ListView::default(), open: None }
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

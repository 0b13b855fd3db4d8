//! The compare view (`:ctx a,b`): several contexts' workloads side by side, lined up by
//! `bench::k8s::compare` as `picket cluster compare` lines them up.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{ListView, Loadable, WorkloadsData};
use crate::bench::k8s::compare::{self, ComparedWorkload};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareState {
    pub contexts: Vec<String>,
    /// Each context's inventory, judged, as it arrives.
    pub loaded: BTreeMap<String, Loadable<Arc<WorkloadsData>>>,
    /// The inventory request sent for each context.
    pub requests: BTreeMap<u64, String>,
    pub rows: Vec<ComparedWorkload>,
    pub view: ListView,
    /// The workload open in the detail, by subject.
    pub opened: Option<String>,
}

impl CompareState {
    pub fn new(contexts: Vec<String>) -> Self {
        Self {
            loaded: contexts.iter().map(|c| (c.clone(), Loadable::Loading)).collect(),
            contexts,
            requests: BTreeMap::new(),
            rows: Vec::new(),
            view: ListView::default(),
            opened: None,
        }
    }

    /// Lines the rows up again from what has arrived (a context still loading or failed counts
    /// as having no workloads, and the title says which).
    pub fn rebuild(&mut self) {
        let selected = self.selected().map(ComparedWorkload::subject);
        let workloads: Vec<Vec<_>> = self
            .contexts
            .iter()
            .map(|c| self.loaded.get(c).and_then(|l| l.ready()).map(|d| d.rows.clone()).unwrap_or_default())
            .collect();
        self.rows = compare::compare(&workloads);
        self.refilter();
        if let Some(subject) = selected
            && let Some(row) = self.rows.iter().position(|r| r.subject() == subject)
        {
            self.view.select_row(row);
        }
    }

    pub fn refilter(&mut self) {
        let texts: Vec<String> = self
            .rows
            .iter()
            .map(|r| format!("{} {}", r.subject(), r.differences.describe(&r.sides, &self.contexts)))
            .collect();
        self.view.refilter(texts.into_iter());
    }

    pub fn selected(&self) -> Option<&ComparedWorkload> {
        self.view.current().and_then(|i| self.rows.get(i))
    }

    pub fn opened(&self) -> Option<&ComparedWorkload> {
        let subject = self.opened.as_deref()?;
        self.rows.iter().find(|r| r.subject() == subject)
    }

    /// All loaded, or why not, per context.
    pub fn pending(&self) -> Vec<String> {
        self.contexts
            .iter()
            .filter_map(|c| match self.loaded.get(c) {
                Some(Loadable::Loading) | None => Some(format!("{c}: loading…")),
                Some(Loadable::Failed(err)) => Some(format!("{c}: {err}")),
                Some(Loadable::Ready(_)) => None,
            })
            .collect()
    }
}

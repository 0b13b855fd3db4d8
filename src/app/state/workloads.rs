//! What the Workloads pane shows: the active context's workloads with their pod-security risk,
//! a namespace picked with `n`, and the failed checks of the one opened.

use std::sync::Arc;

use super::{ListView, Loadable};
use crate::bench::BenchReport;
use crate::bench::k8s::summary::WorkloadRisk;

/// What one inventory load gives: rows already judged (the checks run in the task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadsData {
    pub context: String,
    pub rows: Vec<WorkloadRisk>,
    /// The cluster checks the rows were judged with (for a check's full results).
    pub report: Arc<BenchReport>,
    /// Kinds the credentials could not list, with the RBAC they need.
    pub warnings: Vec<String>,
}

impl WorkloadsData {
    /// The namespaces that hold workloads, sorted.
    pub fn namespaces(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.rows.iter().map(|r| r.namespace.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadsState {
    pub request: u64,
    /// The context asked for (None: kubeconfig's current one).
    pub context: Option<String>,
    pub data: Loadable<Arc<WorkloadsData>>,
    /// Only this namespace's workloads (`n` cycles); None: all.
    pub namespace: Option<String>,
    pub view: ListView,
    /// The workload whose failed checks are open, by subject (`Deployment payments/api`).
    pub opened: Option<String>,
    pub checks_view: ListView,
}

impl WorkloadsState {
    pub fn new(request: u64, context: Option<String>) -> Self {
        Self {
            request,
            context,
            data: Loadable::Loading,
            namespace: None,
            view: ListView::default(),
            opened: None,
            checks_view: ListView::default(),
        }
    }

    pub fn rows(&self) -> &[WorkloadRisk] {
        self.data.ready().map_or(&[], |d| d.rows.as_slice())
    }

    pub fn selected(&self) -> Option<&WorkloadRisk> {
        self.view.current().and_then(|i| self.rows().get(i))
    }

    pub fn opened(&self) -> Option<&WorkloadRisk> {
        let subject = self.opened.as_deref()?;
        self.rows().iter().find(|r| r.subject() == subject)
    }

    /// Recomputes the visible rows: the `/` filter within the picked namespace.
    pub fn refilter(&mut self) {
        let texts: Vec<String> = self.rows().iter().map(workload_text).collect();
        self.view.refilter(texts.into_iter());
        if let Some(namespace) = self.namespace.clone() {
            let rows = self.data.ready().map(Arc::clone);
            let rows = rows.as_ref().map_or(&[][..], |d| d.rows.as_slice());
            self.view.visible.retain(|&i| rows.get(i).is_some_and(|r| r.namespace == namespace));
            self.view.selected = self.view.selected.min(self.view.visible.len().saturating_sub(1));
        }
    }

    pub fn refilter_checks(&mut self) {
        let texts: Vec<String> = self
            .opened()
            .map(|w| w.failed.iter().map(|f| format!("{} {} {} {}", f.id, f.severity, f.title, f.evidence)).collect())
            .unwrap_or_default();
        self.checks_view.refilter(texts.into_iter());
    }
}

/// `nginx:1.25 +1`: the first image and how many more.
pub fn images_label(images: &[String]) -> String {
    match images {
        [] => String::new(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} +{}", rest.len()),
    }
}

/// Searchable text of a workload row.
pub fn workload_text(w: &WorkloadRisk) -> String {
    let risk = w.risk().map(|s| s.as_str()).unwrap_or_default();
    format!("{} {} {} {} {risk}", w.namespace, w.kind, w.name, w.images.join(" "))
}

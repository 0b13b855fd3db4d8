//! What the Compliance pane and the check detail show: one run per benchmark, the one on
//! screen, and the check opened from it (or from a workload).

use std::sync::Arc;

use super::{ListView, Loadable};
use crate::bench::{BenchReport, CheckOutcome, CheckResult};

/// The benchmarks the console runs, in the order of their keys (`1`, `2`, `3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BenchKind {
    /// CIS Docker Benchmark on the first local engine socket.
    Docker,
    /// CIS Kubernetes Benchmark sections 1–4 on this node (root `/`).
    Node,
    /// Cluster checks on the active kubeconfig context.
    Cluster,
}

impl BenchKind {
    pub const ALL: [BenchKind; 3] = [Self::Docker, Self::Node, Self::Cluster];

    /// The tab label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Node => "node",
            Self::Cluster => "cluster",
        }
    }

    /// What is being run, for "running…".
    pub fn describe(self) -> &'static str {
        match self {
            Self::Docker => "CIS Docker Benchmark on the first local engine socket",
            Self::Node => "CIS Kubernetes Benchmark (node) on /",
            Self::Cluster => "cluster checks on the active context",
        }
    }
}

/// A finished benchmark: the report and what the run wants the reader to know (the socket
/// picked among several, files that could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchDone {
    pub report: BenchReport,
    pub notes: Vec<String>,
    /// Results per namespace, worked out once when the report arrives (cluster reports).
    pub namespaces: Vec<(String, crate::bench::Tally)>,
}

impl BenchDone {
    pub fn new(report: BenchReport, notes: Vec<String>) -> Self {
        let namespaces = report.tally_by_namespace();
        Self { report, notes, namespaces }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchRun {
    pub request: u64,
    pub result: Loadable<Arc<BenchDone>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComplianceState {
    /// Runs in the order of `BenchKind::ALL`; None: not run yet.
    pub runs: [Option<BenchRun>; 3],
    /// The run on screen.
    pub shown: Option<BenchKind>,
    /// Over the checks of the shown report.
    pub view: ListView,
}

impl ComplianceState {
    pub fn run(&self, kind: BenchKind) -> Option<&BenchRun> {
        self.runs[kind as usize].as_ref()
    }

    pub fn run_mut(&mut self, kind: BenchKind) -> &mut Option<BenchRun> {
        &mut self.runs[kind as usize]
    }

    pub fn shown_run(&self) -> Option<&BenchRun> {
        self.shown.and_then(|kind| self.run(kind))
    }

    /// The shown report, once it is there.
    pub fn report(&self) -> Option<&BenchDone> {
        self.shown_run().and_then(|run| run.result.ready()).map(Arc::as_ref)
    }

    /// Checks of the shown report, in the report's order.
    pub fn checks(&self) -> &[CheckOutcome] {
        self.report().map_or(&[], |done| done.report.checks.as_slice())
    }

    pub fn selected(&self) -> Option<&CheckOutcome> {
        self.view.current().and_then(|i| self.checks().get(i))
    }

    /// The kinds that have been run, in key order.
    pub fn run_kinds(&self) -> Vec<BenchKind> {
        BenchKind::ALL.into_iter().filter(|k| self.run(*k).is_some()).collect()
    }
}

/// One check in full, with a list over its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckDetail {
    /// `CIS Docker Benchmark v1.6.0`.
    pub benchmark: String,
    /// `5 Container Runtime`.
    pub section: String,
    pub check: CheckOutcome,
    pub view: ListView,
}

impl CheckDetail {
    pub fn new(report: &BenchReport, check: &CheckOutcome) -> Self {
        let title = report.sections.iter().find(|s| s.id == check.meta.section).map(|s| s.title.as_str());
        let section = match title {
            Some(title) if title != check.meta.section => format!("{} {title}", check.meta.section),
            _ => check.meta.section.clone(),
        };
        let mut detail = Self {
            benchmark: format!("{} v{}", report.benchmark, report.version),
            section,
            check: check.clone(),
            view: ListView::default(),
        };
        detail.refilter();
        detail
    }

    pub fn refilter(&mut self) {
        let texts: Vec<String> = self.check.results.iter().map(result_text).collect();
        self.view.refilter(texts.into_iter());
    }
}

/// Searchable text of a check row.
pub fn check_text(c: &CheckOutcome) -> String {
    format!("{} {} {} {} {}", c.status().as_str(), c.meta.id, c.meta.severity, c.meta.title, c.meta.section)
}

pub fn result_text(r: &CheckResult) -> String {
    format!("{} {} {}", r.status.as_str(), r.subject, r.evidence)
}

//! The Findings pane (and a finding's detail): one stored image's findings, their order, and the form that accepts one.

use std::sync::Arc;

use super::{ListView, Loadable};
use crate::gate::Suppressed;
use crate::model::Finding;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptForm {
    pub id: String,
    pub package: Option<String>,
    pub reason: String,
    /// `YYYY-MM-DD`, or empty for no expiry.
    pub expires: String,
    pub field: AcceptField,
    /// Why the last submit was refused.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptField {
    Reason,
    Expires,
}

/// What one image's findings view holds: matched findings and the accepted ones.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingsData {
    pub findings: Vec<Finding>,
    pub suppressed: Vec<Suppressed>,
    pub databases: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingSort {
    Severity,
    Package,
    Fixed,
}

impl FindingSort {
    pub fn label(self) -> &'static str {
        match self {
            Self::Severity => "severity",
            Self::Package => "package",
            Self::Fixed => "fixed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FindingsState {
    pub request: u64,
    pub title: String,
    /// The stored SBOM the findings are for.
    pub key: String,
    pub data: Loadable<Arc<FindingsData>>,
    pub sort: FindingSort,
    /// Indices into `data.findings`, in display order.
    pub order: Vec<usize>,
    pub view: ListView,
}

impl FindingsState {
    pub fn new(request: u64, title: String, key: String) -> Self {
        Self {
            request,
            title,
            key,
            data: Loadable::Loading,
            sort: FindingSort::Severity,
            order: Vec::new(),
            view: ListView::default(),
        }
    }

    /// Findings in display order.
    pub fn rows(&self) -> Vec<&Finding> {
        match &self.data {
            Loadable::Ready(data) => self.order.iter().filter_map(|&i| data.findings.get(i)).collect(),
            _ => Vec::new(),
        }
    }

    pub fn selected(&self) -> Option<&Finding> {
        let index = self.view.current()?;
        self.rows().get(index).copied()
    }

    /// Orders the rows by the current sort key (ties: severity, then id).
    pub fn resort(&mut self) {
        let Loadable::Ready(data) = &self.data else { return };
        let findings = &data.findings;
        let package = |f: &Finding| f.package.as_ref().map(|p| p.name.to_lowercase()).unwrap_or_default();
        let fixed = |f: &Finding| f.fixed_versions.first().cloned().unwrap_or_default();
        let mut order: Vec<usize> = (0..findings.len()).collect();
        let sort = self.sort;
        order.sort_by(|&a, &b| {
            let (x, y) = (&findings[a], &findings[b]);
            let by_severity = y.severity.cmp(&x.severity).then_with(|| x.id.cmp(&y.id));
            match sort {
                FindingSort::Severity => by_severity.then_with(|| package(x).cmp(&package(y))),
                FindingSort::Package => package(x).cmp(&package(y)).then(by_severity),
                // Findings with a fix first (the actionable ones), then by fixed version text.
                FindingSort::Fixed => fixed(x)
                    .is_empty()
                    .cmp(&fixed(y).is_empty())
                    .then_with(|| package(x).cmp(&package(y)))
                    .then(by_severity),
            }
        });
        self.order = order;
    }
}

pub fn finding_text(f: &Finding) -> String {
    let package = f.package.as_ref().map(|p| format!("{} {}", p.name, p.version)).unwrap_or_default();
    format!("{} {} {} {} {package} {}", f.id, f.aliases.join(" "), f.severity, f.kind.as_str(), f.title)
}

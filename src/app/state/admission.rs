//! The Admission pane: the webhook's decisions kept in the store, and the dry run of the rules
//! in force (`config_dir/admission/`) over the context's running workloads, one list with a
//! namespace picked with `n` and `/` matching rules, verdicts and names.

use std::sync::Arc;

use super::{ListView, Loadable};

/// Where a row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSource {
    /// A decision the webhook took (stored).
    Webhook,
    /// What the rules would decide on a running workload.
    DryRun,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionRow {
    pub source: RowSource,
    /// RFC 3339, for the webhook's decisions.
    pub at: Option<String>,
    /// `CREATE`, `UPDATE` (webhook), `running` (dry run).
    pub operation: String,
    pub namespace: String,
    /// `Deployment shop/api`.
    pub subject: String,
    /// allowed, warned, denied, exempt.
    pub verdict: String,
    /// The rules that matched.
    pub rules: Vec<String>,
    pub message: String,
    /// The AdmissionReview's decision in full (pretty JSON), for enter.
    pub detail: String,
}

impl AdmissionRow {
    /// A decision the webhook kept.
    pub fn of_record(record: crate::admission::review::DecisionRecord) -> Self {
        let detail = serde_json::to_string_pretty(&record).unwrap_or_default();
        let prefix = format!("picket denied {}: ", record.subject);
        let message = record.message.strip_prefix(&prefix).map(String::from).unwrap_or_else(|| record.message.clone());
        Self {
            source: RowSource::Webhook,
            at: Some(record.at),
            operation: record.operation,
            namespace: record.namespace,
            subject: record.subject,
            verdict: record.verdict,
            rules: record.rules.iter().map(|r| r.split(" (").next().unwrap_or(r).to_string()).collect(),
            message,
            detail,
        }
    }

    /// A running workload judged by the rules.
    pub fn of_dry_run(outcome: crate::admission::dry_run::DryRunOutcome) -> Self {
        let decision = &outcome.decision;
        let mut rules: Vec<String> =
            decision.denials.iter().chain(&decision.monitored).map(|m| m.rule.clone()).collect();
        rules.dedup();
        let matched: Vec<String> = decision
            .denials
            .iter()
            .chain(&decision.monitored)
            .map(|m| match &m.container {
                Some(container) => format!("{}: container {container}: {}", m.rule, m.why),
                None => format!("{}: {}", m.rule, m.why),
            })
            .collect();
        let message = if matched.is_empty() { decision.message.clone() } else { matched.join("; ") };
        Self {
            source: RowSource::DryRun,
            at: None,
            operation: "running".into(),
            namespace: outcome.namespace.clone(),
            subject: decision.subject.clone(),
            verdict: decision.verdict.as_str().into(),
            rules,
            message,
            detail: serde_json::to_string_pretty(&outcome).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdmissionData {
    pub rows: Vec<AdmissionRow>,
    /// Where the dry run's rules came from, and how many.
    pub rules: String,
    /// What could not be read (no rules, no cluster), each a sentence.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionState {
    pub request: u64,
    pub context: Option<String>,
    pub data: Loadable<Arc<AdmissionData>>,
    pub namespace: Option<String>,
    pub view: ListView,
    /// The row open in the detail view (an index into the rows).
    pub opened: Option<usize>,
    pub scroll: usize,
    /// A reading is under way (the rows shown stay until it is in).
    pub loading: bool,
}

impl AdmissionState {
    pub fn new(request: u64, context: Option<String>) -> Self {
        Self {
            request,
            context,
            data: Loadable::Loading,
            namespace: None,
            view: ListView::default(),
            opened: None,
            scroll: 0,
            loading: true,
        }
    }

    pub fn rows(&self) -> &[AdmissionRow] {
        self.data.ready().map_or(&[], |d| d.rows.as_slice())
    }

    pub fn selected_index(&self) -> Option<usize> {
        self.view.current()
    }

    pub fn opened(&self) -> Option<&AdmissionRow> {
        self.opened.and_then(|i| self.rows().get(i))
    }

    /// The namespaces rows are in, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.rows().iter().map(|r| r.namespace.clone()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The `/` filter within the picked namespace.
    pub fn refilter(&mut self) {
        let texts: Vec<String> = self.rows().iter().map(row_text).collect();
        self.view.refilter(texts.into_iter());
        if let Some(namespace) = self.namespace.clone() {
            let keep: Vec<bool> = self.rows().iter().map(|r| r.namespace == namespace).collect();
            self.view.visible.retain(|&i| keep.get(i).copied().unwrap_or(false));
            self.view.selected = self.view.selected.min(self.view.visible.len().saturating_sub(1));
        }
    }

    /// Verdict counts of one source: (allowed, warned, denied).
    pub fn counts(&self, source: RowSource) -> (usize, usize, usize) {
        let of = |v: &str| self.rows().iter().filter(|r| r.source == source && r.verdict == v).count();
        (of("allowed"), of("warned"), of("denied"))
    }
}

/// What the filter matches a row by.
pub fn row_text(row: &AdmissionRow) -> String {
    let source = match row.source {
        RowSource::Webhook => "webhook",
        RowSource::DryRun => "dry-run",
    };
    format!("{} {source} {} {} {}", row.verdict, row.subject, row.rules.join(" "), row.message)
}

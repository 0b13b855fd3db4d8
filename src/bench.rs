//! Benchmarks and compliance checks: each check has an id, a title, a severity, a rationale, a
//! remediation and references, and yields one result per subject it looked at (the daemon, a
//! file, a container, a workload). Gathering facts (sockets, files, processes, the API) is kept
//! apart from judging them, so every check is a pure function of facts a test can build.

pub mod docker;
pub mod files;
pub mod k8s;
pub mod node;

use std::path::PathBuf;

use serde::Serialize;

use crate::model::Severity;

/// A finished benchmark: the report, and what the run wants the reader to know (the engine
/// picked among several, facts that could not be read, kinds the cluster would not list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Benchmarked {
    pub report: BenchReport,
    pub notes: Vec<String>,
}

/// Why a benchmark could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("no container engine socket found (looked for {searched}); name one with --host unix://PATH")]
    NoEngine { searched: String },
    #[error("{}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error(transparent)]
    Gather(#[from] docker::GatherError),
    #[error("custom checks: {0}")]
    CustomChecks(#[from] k8s::custom::CustomCheckError),
    #[error(transparent)]
    Connect(#[from] crate::cluster::ConnectError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::inventory::ClusterError),
    #[error("the benchmark task failed: {0}")]
    Task(String),
}

/// Runs blocking gathering (files, /proc) off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, BenchError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| BenchError::Task(e.to_string()))
}

fn host_root(root: &std::path::Path) -> Result<files::HostFiles, BenchError> {
    if !root.is_dir() {
        return Err(BenchError::NotADirectory(root.to_path_buf()));
    }
    Ok(files::HostFiles::new(root))
}

/// The outcome of one check on one subject. Ordered worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// The subject does not meet the recommendation.
    Fail,
    /// Needs a person: a manual check, or facts that could not be read.
    Warn,
    Pass,
    /// Recorded for the reader; no judgement.
    Info,
    /// Does not apply here (no such file, no containers, another engine).
    Skip,
}

impl Status {
    pub const ALL: [Status; 5] = [Self::Fail, Self::Warn, Self::Pass, Self::Info, Self::Skip];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "FAIL",
            Self::Warn => "WARN",
            Self::Pass => "PASS",
            Self::Info => "INFO",
            Self::Skip => "SKIP",
        }
    }
}

/// Whether a tool can decide the check (CIS "Automated") or a person must (CIS "Manual").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Assessment {
    Automated,
    Manual,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CheckMeta {
    pub id: String,
    pub title: String,
    /// The id of the section the check belongs to (`BenchReport::sections`).
    pub section: String,
    pub severity: Severity,
    pub assessment: Assessment,
    pub rationale: String,
    pub remediation: String,
    pub references: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CheckResult {
    pub status: Status,
    /// What was looked at: `daemon`, a file path, `container web`, `Deployment default/api`.
    pub subject: String,
    /// What was seen, in words a reader can verify.
    pub evidence: String,
}

impl CheckResult {
    pub fn new(status: Status, subject: impl Into<String>, evidence: impl Into<String>) -> Self {
        Self { status, subject: subject.into(), evidence: evidence.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CheckOutcome {
    #[serde(flatten)]
    pub meta: CheckMeta,
    pub results: Vec<CheckResult>,
}

impl CheckOutcome {
    /// The worst status among the results (`Skip` when there are none).
    pub fn status(&self) -> Status {
        self.results.iter().map(|r| r.status).min().unwrap_or(Status::Skip)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Section {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BenchReport {
    /// e.g. `CIS Docker Benchmark`.
    pub benchmark: String,
    /// e.g. `1.6.0`.
    pub version: String,
    /// What was benchmarked: `Docker 20.10.24 at unix:///run/docker.sock`.
    pub target: String,
    pub sections: Vec<Section>,
    pub checks: Vec<CheckOutcome>,
    /// What the benchmark could not read (kinds a cluster would not list): the checks that
    /// needed them say so, and the report is partial.
    pub unread: Vec<Unread>,
}

/// Something a benchmark needed and could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Unread {
    /// `cronjobs.batch`, `pods`.
    pub what: String,
    /// `forbidden`, `not-served`, `failed`.
    pub why: String,
    /// The server's words, one line.
    pub message: String,
}

/// Counts of results by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub fail: usize,
    pub warn: usize,
    pub pass: usize,
    pub info: usize,
    pub skip: usize,
}

impl Tally {
    pub fn add(&mut self, status: Status) {
        match status {
            Status::Fail => self.fail += 1,
            Status::Warn => self.warn += 1,
            Status::Pass => self.pass += 1,
            Status::Info => self.info += 1,
            Status::Skip => self.skip += 1,
        }
    }

    pub fn get(&self, status: Status) -> usize {
        match status {
            Status::Fail => self.fail,
            Status::Warn => self.warn,
            Status::Pass => self.pass,
            Status::Info => self.info,
            Status::Skip => self.skip,
        }
    }
}

impl BenchReport {
    pub fn check(&self, id: &str) -> Option<&CheckOutcome> {
        self.checks.iter().find(|c| c.meta.id == id)
    }

    /// One count per check (its worst status), as kube-bench and docker-bench summarise.
    pub fn tally_checks(&self) -> Tally {
        let mut tally = Tally::default();
        for check in &self.checks {
            tally.add(check.status());
        }
        tally
    }

    /// Per section, one count per check.
    pub fn tally_by_section(&self) -> Vec<(&Section, Tally)> {
        self.sections
            .iter()
            .map(|section| {
                let mut tally = Tally::default();
                for check in self.checks.iter().filter(|c| c.meta.section == section.id) {
                    tally.add(check.status());
                }
                (section, tally)
            })
            .collect()
    }

    /// Per namespace, counts of results (a workload failing three checks counts three), the
    /// namespaces with most failures first. Empty for reports with no namespaced subjects.
    pub fn tally_by_namespace(&self) -> Vec<(String, Tally)> {
        let mut by: std::collections::BTreeMap<&str, Tally> = std::collections::BTreeMap::new();
        for result in self.checks.iter().flat_map(|c| &c.results) {
            if let Some(namespace) = subject_namespace(&result.subject) {
                by.entry(namespace).or_default().add(result.status);
            }
        }
        let mut out: Vec<(String, Tally)> = by.into_iter().map(|(ns, t)| (ns.to_string(), t)).collect();
        out.sort_by(|a, b| b.1.fail.cmp(&a.1.fail).then(b.1.warn.cmp(&a.1.warn)).then(a.0.cmp(&b.0)));
        out
    }

    /// Failed results of checks at or above `threshold`: what a gate fails on.
    pub fn failures_at_or_above(&self, threshold: Severity) -> usize {
        self.checks
            .iter()
            .filter(|c| c.meta.severity >= threshold)
            .flat_map(|c| &c.results)
            .filter(|r| r.status == Status::Fail)
            .count()
    }
}

/// The namespace a result's subject names: `Deployment payments/api`, `RoleBinding legacy/x`
/// and `Namespace legacy` name one; cluster-scoped objects, files and containers do not.
pub fn subject_namespace(subject: &str) -> Option<&str> {
    let (kind, rest) = subject.split_once(' ')?;
    if !kind.starts_with(|c: char| c.is_ascii_uppercase()) || kind.contains('/') {
        return None;
    }
    if kind == "Namespace" {
        return Some(rest);
    }
    let (namespace, name) = rest.split_once('/')?;
    let simple = |s: &str| !s.is_empty() && !s.contains(' ');
    (simple(namespace) && !name.is_empty()).then_some(namespace)
}

/// One check of a benchmark, the one shape every benchmark's checks have (Docker, node,
/// cluster, custom CEL checks): what it is, and how it judges the benchmark's facts. Gathering
/// facts is kept apart, so `judge` is a pure function a test can feed.
/// `Facts` is what the benchmark gathered, as its checks read it.
pub trait Check<Facts: ?Sized> {
    fn meta(&self) -> CheckMeta;
    /// One result per subject looked at (none: the check did not apply).
    fn judge(&self, facts: &Facts) -> Vec<CheckResult>;
}

/// Every check judged on the same facts, in the checks' order.
pub fn judge_all<F: ?Sized, C: Check<F>>(checks: &[C], facts: &F) -> Vec<CheckOutcome> {
    checks.iter().map(|check| CheckOutcome { meta: check.meta(), results: check.judge(facts) }).collect()
}

/// A check's fixed description, written once in a table per benchmark.
#[derive(Debug, Clone, Copy)]
pub struct CheckDef {
    pub id: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub assessment: Assessment,
    pub rationale: &'static str,
    pub remediation: &'static str,
}

/// The section of a CIS id is its first component: `5.12` is in `5`, `1.1.3` in `1`.
pub fn cis_section(id: &str) -> &str {
    id.split('.').next().unwrap_or(id)
}

impl Section {
    /// Sections from a benchmark's `(id, title)` table.
    pub fn list(table: &[(&str, &str)]) -> Vec<Section> {
        table.iter().map(|(id, title)| Section { id: (*id).into(), title: (*title).into() }).collect()
    }
}

impl CheckMeta {
    /// A CIS recommendation's metadata; the reference names the benchmark and the id.
    pub fn cis(def: &CheckDef, remediation: String, benchmark_reference: &str) -> Self {
        CheckMeta {
            id: def.id.to_string(),
            title: def.title.to_string(),
            section: cis_section(def.id).to_string(),
            severity: def.severity,
            assessment: def.assessment,
            rationale: def.rationale.to_string(),
            remediation,
            references: vec![format!("{benchmark_reference}, recommendation {}", def.id)],
        }
    }
}

impl CheckDef {
    pub fn section(&self) -> &'static str {
        cis_section(self.id)
    }

    pub fn meta(&self, benchmark_reference: &str) -> CheckMeta {
        CheckMeta::cis(self, self.remediation.to_string(), benchmark_reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(id: &str, section: &str, severity: Severity, statuses: &[Status]) -> CheckOutcome {
        CheckOutcome {
            meta: CheckMeta {
                id: id.into(),
                title: format!("check {id}"),
                section: section.into(),
                severity,
                assessment: Assessment::Automated,
                rationale: String::new(),
                remediation: String::new(),
                references: vec![],
            },
            results: statuses.iter().map(|s| CheckResult::new(*s, "x", "")).collect(),
        }
    }

    #[test]
    fn a_check_counts_once_with_its_worst_result() {
        let report = BenchReport {
            benchmark: "b".into(),
            version: "1".into(),
            target: "t".into(),
            unread: Vec::new(),
            sections: vec![
                Section { id: "1".into(), title: "one".into() },
                Section { id: "2".into(), title: "two".into() },
            ],
            checks: vec![
                outcome("1.1", "1", Severity::High, &[Status::Pass, Status::Fail, Status::Fail]),
                outcome("1.2", "1", Severity::Low, &[Status::Pass, Status::Warn]),
                outcome("2.1", "2", Severity::Medium, &[]),
            ],
        };
        let tally = report.tally_checks();
        assert_eq!((tally.fail, tally.warn, tally.pass, tally.skip), (1, 1, 0, 1));
        let sections = report.tally_by_section();
        assert_eq!(sections[0].1.fail, 1);
        assert_eq!(sections[1].1.skip, 1);
        assert_eq!(report.failures_at_or_above(Severity::High), 2);
        assert_eq!(report.failures_at_or_above(Severity::Critical), 0);
    }

    #[test]
    fn namespaces_come_from_namespaced_subjects_only() {
        assert_eq!(subject_namespace("Deployment payments/api"), Some("payments"));
        assert_eq!(subject_namespace("Namespace legacy"), Some("legacy"));
        assert_eq!(subject_namespace("RoleBinding legacy/dev-exec"), Some("legacy"));
        for none in [
            "ClusterRole ci",
            "container web",
            "/etc/docker",
            "kube-apiserver (/etc/x.yaml)",
            "what picket could list",
            "daemon",
        ] {
            assert_eq!(subject_namespace(none), None, "{none}");
        }
        let mut check = outcome("5.2.2", "5", Severity::High, &[]);
        check.results = vec![
            CheckResult::new(Status::Fail, "Pod a/x", ""),
            CheckResult::new(Status::Pass, "Pod b/y", ""),
            CheckResult::new(Status::Fail, "Deployment b/z", ""),
            CheckResult::new(Status::Fail, "Deployment b/w", ""),
            CheckResult::new(Status::Fail, "ClusterRole c", ""),
        ];
        let report = BenchReport {
            benchmark: "b".into(),
            version: "1".into(),
            target: "t".into(),
            unread: Vec::new(),
            sections: vec![],
            checks: vec![check],
        };
        let tally = report.tally_by_namespace();
        assert_eq!(
            tally.iter().map(|(ns, t)| (ns.as_str(), t.fail, t.pass)).collect::<Vec<_>>(),
            vec![("b", 2, 1), ("a", 1, 0)]
        );
    }

    #[test]
    fn section_is_the_first_id_component() {
        let def = CheckDef {
            id: "1.1.3",
            title: "t",
            severity: Severity::Low,
            assessment: Assessment::Manual,
            rationale: "",
            remediation: "",
        };
        assert_eq!(def.section(), "1");
        assert_eq!(def.meta("CIS X v1").references, vec!["CIS X v1, recommendation 1.1.3".to_string()]);
    }
}

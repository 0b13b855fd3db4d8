//! One alert in full, for `picket alerts show` and the Alerts pane's enter: the fold it belongs
//! to, its newest alert (event, process ancestry, container), the rule's why and the policy line
//! that decided, the triage record, and the findings of the container's image from its last
//! stored scan.

use serde::Serialize;

use super::fold::{Filter, Fold, fold_key};
use super::triage::{TriageLog, TriageRecord};
use super::{AlertLog, StoredAlert, time};
use crate::model::{FindingKind, Severity};
use crate::store::Store;

/// How many alerts are read back to find and fold one.
pub const SEARCHED: usize = 100_000;

#[derive(Debug, Clone, Serialize)]
pub struct AlertDetail {
    pub fold: Fold,
    pub alert: StoredAlert,
    /// The fold's key (rule, container, program), what triage records are kept by.
    #[serde(skip)]
    pub key: String,
    pub triage: Option<TriageRecord>,
    pub image: Option<ImageFindings>,
    /// Response actions taken for the fold's alerts (kill, pause, capture), newest first.
    pub actions: Vec<super::actions::ActionRecord>,
}

/// The container's image's findings at its last stored scan, matched against the database now.
#[derive(Debug, Clone, Serialize)]
pub struct ImageFindings {
    pub reference: String,
    /// None: the image was never scanned here.
    pub scanned: Option<ScannedImage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScannedImage {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub with_fix: usize,
    /// The most severe few: id, severity, package, fixed in.
    pub top: Vec<TopFinding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopFinding {
    pub id: String,
    pub severity: Severity,
    pub package: String,
    pub installed: String,
    pub fixed_in: Option<String>,
}

impl AlertDetail {
    /// The detail as lines of text: what `picket alerts show` prints and the pane shows.
    pub fn lines(&self) -> Vec<String> {
        let detail = self;
        let fold = &detail.fold;
        let alert = &detail.alert.alert;
        let event = &alert.event;
        let mut lines = vec![
            format!("{}  {}  [{}]", alert.severity, alert.title, alert.rule),
            format!(
                "fold {}: {} events, first {}, last {}, {}",
                fold.id,
                fold.count,
                time(fold.first_ms),
                time(fold.last_ms),
                fold.state.as_str()
            ),
        ];
        if let Some(record) = &detail.triage {
            lines.push(match record {
                TriageRecord::Acknowledged { at_ms, by } => format!("acknowledged by {by} at {}", time(*at_ms)),
                TriageRecord::Snoozed { until_ms, by, .. } => format!("snoozed by {by} until {}", time(*until_ms)),
                TriageRecord::FalsePositive { by, file, .. } => {
                    format!("marked a false positive by {by}: exception in {file}")
                }
            });
        }
        lines.push(String::new());
        lines.push(format!("why: {}", alert.why));
        if !alert.technique.is_empty() {
            lines.push(format!("ATT&CK: {}", alert.technique));
        }
        let mode = serde_json::to_value(alert.mode).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let action = alert.action.as_str();
        lines.push(format!("mode {mode}, {action}"));
        if !alert.policy.is_empty() {
            lines.push(format!("decided by: {}", alert.policy));
        }
        lines.push(String::new());
        lines.push(format!("event: {} at {} on node {}", event.kind, time(alert.at_unix_ms), detail.alert.node));
        lines.push(format!("  pid {} uid {} {} ({})", event.pid, event.uid, event.exe, event.comm));
        if !event.args.is_empty() {
            lines.push(format!("  args: {}", event.args.join(" ")));
        }
        if !event.path.is_empty() {
            lines.push(format!("  path: {}{}", event.path, if event.write { " (write)" } else { "" }));
        }
        if !event.remote.is_empty() {
            lines.push(format!("  remote: {}", event.remote));
        }
        if !event.local.is_empty() {
            lines.push(format!("  local: {}", event.local));
        }
        if !detail.actions.is_empty() {
            lines.push(String::new());
            lines.push("response actions:".into());
            for a in &detail.actions {
                let undo = match (a.undone_at_ms, &a.undo) {
                    (Some(at), _) => format!(" (undone {})", time(at)),
                    (None, Some(_)) => " (U undoes)".into(),
                    _ => String::new(),
                };
                lines.push(format!("  #{} {} {} {}: {}{undo}", a.id, time(a.at_ms), a.action, a.target, a.outcome));
            }
        }
        let tree = ancestry_tree(&detail.alert);
        if !tree.is_empty() {
            lines.push(String::new());
            lines.push("process tree:".into());
            lines.extend(tree.into_iter().map(|l| format!("  {l}")));
        }
        lines.push(String::new());
        match &detail.alert.container {
            None => lines.push("on the host".into()),
            Some(c) => {
                lines.push(format!(
                    "container: {} ({:?} {})",
                    fold.container,
                    c.runtime,
                    c.id.chars().take(12).collect::<String>()
                ));
                if let (Some(ns), Some(pod)) = (&c.pod_namespace, &c.pod_name) {
                    lines.push(format!("  pod {ns}/{pod}"));
                }
            }
        }
        if let Some(image) = &detail.image {
            match &image.scanned {
                None => lines.push(format!(
                    "image {}: never scanned here (picket scan image {})",
                    image.reference, image.reference
                )),
                Some(s) => {
                    lines.push(format!(
                        "image {}: {} critical, {} high, {} medium, {} low ({} with a fix)",
                        image.reference, s.critical, s.high, s.medium, s.low, s.with_fix
                    ));
                    for top in &s.top {
                        let fix = top.fixed_in.as_deref().map(|f| format!(" → {f}")).unwrap_or_default();
                        lines.push(format!("  {:<8} {} {} {}{fix}", top.severity, top.id, top.package, top.installed));
                    }
                }
            }
        }
        lines
    }
}

/// The fold (by its id) or the alert (by its id) `id` names, in full.
pub fn find(store: &Store, id: &str, now_ms: u64) -> Result<AlertDetail, String> {
    let alerts = AlertLog::open(store).and_then(|log| log.newest(SEARCHED)).map_err(|e| e.to_string())?;
    let triage = TriageLog::open(store).and_then(|log| log.load(now_ms)).map_err(|e| e.to_string())?;
    let all = Filter { all: true, ..Filter::default() };
    let folds = super::fold::fold(&alerts, triage.clone(), &all);
    // Newest first: the first alert of a fold is its newest.
    let fold_of = |a: &StoredAlert| super::fold::fold_id(&fold_key(a));
    let (fold, alert) = if let Some(fold) = folds.iter().find(|f| f.id == id) {
        (fold.clone(), alerts.iter().find(|a| fold_of(a) == fold.id).cloned())
    } else if let Some(alert) = alerts.iter().find(|a| a.alert.id == id) {
        let fold_id = fold_of(alert);
        (folds.iter().find(|f| f.id == fold_id).cloned().ok_or("the alert's fold is gone")?, Some(alert.clone()))
    } else {
        return Err(format!("no alert or fold has the id '{id}' (picket alerts list --all shows them)"));
    };
    let alert = alert.ok_or_else(|| format!("fold {} has no alert kept", fold.id))?;
    let key = fold_key(&alert);
    let image =
        alert.container.as_ref().and_then(|c| c.image.clone()).map(|reference| image_findings(store, reference));
    let ids: std::collections::HashSet<&str> =
        alerts.iter().filter(|a| fold_of(a) == fold.id).map(|a| a.alert.id.as_str()).collect();
    let actions = super::actions::ActionLog::open(store)
        .and_then(|log| log.newest(10_000))
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|a| ids.contains(a.alert.as_str()))
        .collect();
    Ok(AlertDetail { triage: triage.get(&key).cloned(), fold, alert, key, image, actions })
}

fn image_findings(store: &Store, reference: String) -> ImageFindings {
    let scanned = crate::scan::stored::find_reference(store, &reference).ok().flatten().and_then(|(_, sbom, _)| {
        let db = crate::vulndb::VulnDb::open(store).ok()?;
        let matched = crate::vulndb::matcher::match_sbom(&db, &sbom).ok()?;
        let mut vulns: Vec<_> = matched
            .findings
            .into_iter()
            .filter(|f| matches!(f.kind, FindingKind::Vulnerability | FindingKind::Advisory))
            .collect();
        vulns.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
        let count = |s: Severity| vulns.iter().filter(|f| f.severity == s).count();
        Some(ScannedImage {
            critical: count(Severity::Critical),
            high: count(Severity::High),
            medium: count(Severity::Medium),
            low: count(Severity::Low),
            with_fix: vulns.iter().filter(|f| !f.fixed_versions.is_empty()).count(),
            top: vulns
                .iter()
                .take(5)
                .map(|f| TopFinding {
                    id: f.id.clone(),
                    severity: f.severity,
                    package: f.package.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
                    installed: f.package.as_ref().map(|p| p.version.clone()).unwrap_or_default(),
                    fixed_in: f.fixed_versions.first().cloned(),
                })
                .collect(),
        })
    });
    ImageFindings { reference, scanned }
}

/// The process ancestry as an indented tree, the container's first process at the top.
pub fn ancestry_tree(alert: &StoredAlert) -> Vec<String> {
    let mut lines = Vec::new();
    for (depth, ancestor) in alert.alert.ancestry.iter().rev().enumerate() {
        let indent = if depth == 0 { String::new() } else { format!("{}└─ ", "   ".repeat(depth - 1)) };
        let args = if ancestor.args.is_empty() { String::new() } else { format!(" {}", ancestor.args.join(" ")) };
        let mut marks = Vec::new();
        if ancestor.exited {
            marks.push("exited");
        }
        if ancestor.replaced {
            marks.push("replaced by the next");
        }
        let marks = if marks.is_empty() { String::new() } else { format!("  ({})", marks.join(", ")) };
        lines.push(format!("{indent}[{}] {}{args}  uid {}{marks}", ancestor.pid, ancestor.exe, ancestor.uid));
    }
    lines
}

//! Several clusters side by side: the same workload (namespace, kind, name) in each context,
//! with its images, failed checks and findings, and what differs. What `picket cluster compare`
//! prints and the console's compare view (`:ctx a,b`) shows.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::summary::{VulnCounts, WorkloadRisk};

/// One workload as one context has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub images: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<(i32, i32)>,
    /// Failed check ids, sorted.
    pub failed: Vec<String>,
    /// Findings of its scanned images (critical, high, total); none when not scanned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vulnerabilities: Option<(usize, usize, usize)>,
}

/// What differs between the contexts that have a workload, and which contexts lack it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Differences {
    pub missing: bool,
    pub images: bool,
    pub checks: bool,
    pub vulnerabilities: bool,
}

impl Differences {
    pub fn any(&self) -> bool {
        self.missing || self.images || self.checks || self.vulnerabilities
    }

    /// `only in prod`, `images, checks`, `same`.
    pub fn describe(&self, sides: &[Option<Side>], contexts: &[String]) -> String {
        let mut parts = Vec::new();
        if self.missing {
            let present: Vec<&str> =
                sides.iter().zip(contexts).filter(|(s, _)| s.is_some()).map(|(_, c)| c.as_str()).collect();
            parts.push(format!("only in {}", present.join(", ")));
        }
        for (differs, what) in
            [(self.images, "images"), (self.checks, "checks"), (self.vulnerabilities, "vulnerabilities")]
        {
            if differs {
                parts.push(what.to_string());
            }
        }
        if parts.is_empty() { "same".into() } else { parts.join(", ") }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComparedWorkload {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    /// One per context, in the order asked; None where the context has no such workload.
    pub sides: Vec<Option<Side>>,
    pub differences: Differences,
}

impl ComparedWorkload {
    /// `Deployment payments/api`.
    pub fn subject(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

fn side(row: &WorkloadRisk) -> Side {
    let mut failed: Vec<String> = row.failed.iter().map(|f| f.id.clone()).collect();
    failed.sort();
    failed.dedup();
    Side {
        images: row.images.clone(),
        ready: row.ready,
        failed,
        vulnerabilities: row.vulnerabilities.map(|VulnCounts { critical, high, total }| (critical, high, total)),
    }
}

/// Lines up the workloads of each context (`contexts[i]` has `workloads[i]`) by namespace, kind
/// and name; differing ones first, then by namespace, kind, name.
pub fn compare(workloads: &[Vec<WorkloadRisk>]) -> Vec<ComparedWorkload> {
    let mut keys: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut by_context: Vec<BTreeMap<(String, String, String), Side>> = Vec::new();
    for rows in workloads {
        let mut map = BTreeMap::new();
        for row in rows {
            let key = (row.namespace.clone(), row.kind.clone(), row.name.clone());
            keys.insert(key.clone());
            map.insert(key, side(row));
        }
        by_context.push(map);
    }
    let mut out: Vec<ComparedWorkload> = keys
        .into_iter()
        .map(|key| {
            let sides: Vec<Option<Side>> = by_context.iter().map(|m| m.get(&key).cloned()).collect();
            let present: Vec<&Side> = sides.iter().flatten().collect();
            let differs = |f: &dyn Fn(&Side) -> String| present.windows(2).any(|w| f(w[0]) != f(w[1]));
            let differences = Differences {
                missing: present.len() < sides.len(),
                images: differs(&|s| s.images.join(" ")),
                checks: differs(&|s| s.failed.join(" ")),
                vulnerabilities: differs(&|s| format!("{:?}", s.vulnerabilities)),
            };
            let (namespace, kind, name) = key;
            ComparedWorkload { namespace, kind, name, sides, differences }
        })
        .collect();
    out.sort_by(|a, b| {
        b.differences
            .any()
            .cmp(&a.differences.any())
            .then_with(|| (&a.namespace, &a.kind, &a.name).cmp(&(&b.namespace, &b.kind, &b.name)))
    });
    out
}

/// A side in a cell: `nginx:1.25 · 2 failed · 1C/3H`, or `-` when the context lacks it.
pub fn side_text(side: Option<&Side>) -> String {
    let Some(side) = side else { return "-".into() };
    let short = |image: &String| -> String {
        let name = image.rsplit('/').next().unwrap_or(image);
        match name.split_once("@sha256:") {
            Some((repository, hex)) => format!("{repository}@{}", hex.get(..12).unwrap_or(hex)),
            None => name.to_string(),
        }
    };
    let mut text = side.images.iter().map(short).collect::<Vec<_>>().join(",");
    if !side.failed.is_empty() {
        text.push_str(&format!(" · {} failed", side.failed.len()));
    }
    if let Some((critical, high, _)) = side.vulnerabilities {
        text.push_str(&format!(" · {critical}C/{high}H"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::k8s::summary::FailedCheck;
    use crate::model::Severity;

    fn workload(name: &str, image: &str, failed: &[&str]) -> WorkloadRisk {
        WorkloadRisk {
            namespace: "shop".into(),
            kind: "Deployment".into(),
            name: name.into(),
            ready: Some((1, 1)),
            images: vec![image.into()],
            failed: failed
                .iter()
                .map(|id| FailedCheck {
                    id: (*id).into(),
                    title: String::new(),
                    severity: Severity::High,
                    evidence: String::new(),
                })
                .collect(),
            vulnerabilities: None,
        }
    }

    #[test]
    fn the_same_workload_lines_up_and_differences_come_first() {
        let staging = vec![workload("api", "reg/api:2", &[]), workload("web", "reg/web:1", &["pss-privileged"])];
        let prod = vec![
            workload("api", "reg/api:1", &[]),
            workload("web", "reg/web:1", &["pss-privileged"]),
            workload("debug", "busybox", &["pss-host-pid"]),
        ];
        let rows = compare(&[staging, prod]);
        let contexts = ["staging".to_string(), "prod".to_string()];
        let summary: Vec<(String, String)> =
            rows.iter().map(|r| (r.name.clone(), r.differences.describe(&r.sides, &contexts))).collect();
        assert_eq!(
            summary,
            [
                ("api".to_string(), "images".to_string()),
                ("debug".to_string(), "only in prod".to_string()),
                ("web".to_string(), "same".to_string()),
            ]
        );
        assert_eq!(side_text(rows[0].sides[0].as_ref()), "api:2");
        assert_eq!(side_text(rows[1].sides[0].as_ref()), "-");
        assert_eq!(side_text(rows[2].sides[1].as_ref()), "web:1 · 1 failed");
    }
}

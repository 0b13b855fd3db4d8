//! One row per workload for the console's Workloads pane: where it runs, how ready it is, its
//! images, and the pod-security checks it fails (Pod Security Standards baseline and CIS
//! Kubernetes 5.2), with the worst severity among them as its risk.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::PodSpec;

use super::ClusterFacts;
use crate::bench::{BenchReport, Status};
use crate::cluster::inventory::Inventory;
use crate::model::Severity;

/// A failed pod-security check of one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCheck {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub evidence: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRisk {
    pub namespace: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, `Job`, `Pod`.
    pub kind: String,
    pub name: String,
    /// Ready and desired replicas (pods for a DaemonSet, containers for a bare Pod); None for
    /// Jobs and CronJobs.
    pub ready: Option<(i32, i32)>,
    /// The images of the regular containers, in spec order.
    pub images: Vec<String>,
    /// Worst severity first, then by id.
    pub failed: Vec<FailedCheck>,
    /// Vulnerabilities of the images it runs that have been scanned (`picket cluster scan`),
    /// by the digest the kubelet reports; None when none of them has been.
    pub vulnerabilities: Option<VulnCounts>,
}

/// Findings of a workload's scanned images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VulnCounts {
    pub critical: usize,
    pub high: usize,
    pub total: usize,
}

impl VulnCounts {
    pub fn of(findings: &[crate::model::Finding]) -> Self {
        Self {
            critical: findings.iter().filter(|f| f.severity == Severity::Critical).count(),
            high: findings.iter().filter(|f| f.severity == Severity::High).count(),
            total: findings.len(),
        }
    }

    fn add(&mut self, other: VulnCounts) {
        self.critical += other.critical;
        self.high += other.high;
        self.total += other.total;
    }

    /// `2C 5H 31`: critical, high, all.
    pub fn label(&self) -> String {
        format!("{}C {}H {}", self.critical, self.high, self.total)
    }
}

/// Adds the scanned images' counts (by manifest digest) to the workloads that run them: a
/// pod's running containers, through its controller.
pub fn attach_vulnerabilities(
    images: &[crate::cluster::images::RunningImage],
    rows: &mut [WorkloadRisk],
    by_digest: &std::collections::BTreeMap<String, VulnCounts>,
) {
    for image in images {
        let Some(counts) = image.digest.as_ref().and_then(|d| by_digest.get(d)) else { continue };
        let owners: std::collections::BTreeSet<&str> =
            image.used_by.iter().map(|u| u.split(" (container ").next().unwrap_or(u)).collect();
        for row in rows.iter_mut().filter(|r| owners.contains(r.subject().as_str())) {
            row.vulnerabilities.get_or_insert_with(VulnCounts::default).add(*counts);
        }
    }
}

impl WorkloadRisk {
    /// The subject the checks name it by: `Deployment payments/api`.
    pub fn subject(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }

    /// The worst severity among the failed checks.
    pub fn risk(&self) -> Option<Severity> {
        self.failed.iter().map(|f| f.severity).max()
    }
}

/// Whether a check counts for a workload's risk: PSS baseline and CIS 5.2 (pod security).
pub fn is_pod_security(id: &str, section: &str) -> bool {
    section == "PSS baseline" || id.starts_with("5.2.")
}

fn images(spec: &PodSpec) -> Vec<String> {
    spec.containers.iter().filter_map(|c| c.image.clone()).collect()
}

fn ready_of(inv: &Inventory, kind: &str, namespace: &str, name: &str) -> Option<(i32, i32)> {
    let here = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        meta.name.as_deref() == Some(name) && meta.namespace.as_deref().unwrap_or("default") == namespace
    };
    match kind {
        "Deployment" => inv.deployments.iter().find(|d| here(&d.metadata)).map(|d| {
            let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
            (ready, d.spec.replicas.unwrap_or(1))
        }),
        "StatefulSet" => inv.stateful_sets.iter().find(|s| here(&s.metadata)).map(|s| {
            let ready = s.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
            (ready, s.spec.replicas.unwrap_or(1))
        }),
        "DaemonSet" => inv
            .daemon_sets
            .iter()
            .find(|d| here(&d.metadata))
            .and_then(|d| d.status.as_ref().map(|s| (s.number_ready, s.desired_number_scheduled))),
        "Pod" => inv.pods.iter().find(|p| here(&p.metadata)).map(|p| {
            let total = p.spec.as_ref().map_or(0, |s| s.containers.len());
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map_or(0, |statuses| statuses.iter().filter(|c| c.ready).count());
            (i32::try_from(ready).unwrap_or(i32::MAX), i32::try_from(total).unwrap_or(i32::MAX))
        }),
        _ => None,
    }
}

/// Every workload with its failed pod-security checks from `report` (what `bench::k8s::run_on`
/// gave for the same facts), sorted by namespace, kind and name.
pub fn workload_risks(facts: &ClusterFacts, report: &BenchReport) -> Vec<WorkloadRisk> {
    // Failed results by subject, gathered in one pass over the report.
    let mut failed_by_subject: HashMap<&str, Vec<FailedCheck>> = HashMap::new();
    for check in report.checks.iter().filter(|c| is_pod_security(&c.meta.id, &c.meta.section)) {
        for result in check.results.iter().filter(|r| r.status == Status::Fail) {
            failed_by_subject.entry(result.subject.as_str()).or_default().push(FailedCheck {
                id: check.meta.id.clone(),
                title: check.meta.title.clone(),
                severity: check.meta.severity,
                evidence: result.evidence.clone(),
            });
        }
    }
    let mut rows: Vec<WorkloadRisk> = facts
        .workloads
        .iter()
        .map(|w| {
            let mut failed = failed_by_subject.remove(w.subject().as_str()).unwrap_or_default();
            failed.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
            WorkloadRisk {
                namespace: w.namespace().to_string(),
                kind: w.kind.to_string(),
                name: w.name().to_string(),
                ready: ready_of(facts.inv, w.kind, w.namespace(), w.name()),
                images: images(w.spec),
                failed,
                vulnerabilities: None,
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.kind, &a.name).cmp(&(&b.namespace, &b.kind, &b.name)));
    rows
}

/// The workloads of an inventory, judged (pod security, CIS 5) and with the findings of their
/// images scanned before (stored SBOMs, by the digest the kubelet reports): what the Workloads
/// pane and `picket cluster compare` show.
pub fn judged_workloads(
    inventory: &crate::cluster::inventory::Inventory,
    store: &crate::store::Store,
) -> (Vec<WorkloadRisk>, crate::bench::BenchReport) {
    let facts = super::ClusterFacts::new(inventory);
    let report = super::judge_on(&facts, &[]);
    let mut rows = workload_risks(&facts, &report);
    let images = crate::cluster::images::running_images(inventory);
    let mut counts = std::collections::BTreeMap::new();
    for image in &images {
        let Some(digest) = &image.digest else { continue };
        let Ok(Some(sbom)) = crate::scan::stored::get(store, digest) else { continue };
        if let Ok(scanned) = crate::scan::assess(store, sbom, &crate::scan::Assessment::default()) {
            counts.insert(digest.clone(), VulnCounts::of(&scanned.findings));
        }
    }
    attach_vulnerabilities(&images, &mut rows, &counts);
    (rows, report)
}

#[cfg(test)]
mod vulnerability_tests {
    use super::*;

    #[test]
    fn scanned_images_are_counted_on_the_workloads_that_run_them() {
        let inv = crate::cluster::fixtures::inventory();
        let facts = crate::bench::k8s::ClusterFacts::new(&inv);
        let report = crate::bench::k8s::judge_on(&facts, &[]);
        let mut rows = workload_risks(&facts, &report);
        let api_digest = "sha256:4c1e5a9f0b3d2e7c6a8b9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c";
        let by_digest =
            std::collections::BTreeMap::from([(api_digest.to_string(), VulnCounts { critical: 1, high: 2, total: 9 })]);
        attach_vulnerabilities(&crate::cluster::images::running_images(&inv), &mut rows, &by_digest);
        let row = |subject: &str| rows.iter().find(|r| r.subject() == subject).unwrap_or_else(|| panic!("{subject}"));
        // The pod runs under ReplicaSet api-7d9f8b6c4, which the Deployment owns.
        assert_eq!(row("Deployment payments/api").vulnerabilities, Some(VulnCounts { critical: 1, high: 2, total: 9 }));
        assert_eq!(row("Deployment payments/api").vulnerabilities.map(|v| v.label()).as_deref(), Some("1C 2H 9"));
        assert_eq!(row("Pod default/debug-shell").vulnerabilities, None, "its image was not scanned");
        assert_eq!(row("Deployment legacy/web").vulnerabilities, None);
    }
}

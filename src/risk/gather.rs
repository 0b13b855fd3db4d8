//! The facts of a cluster's workloads for [`super::score`]: each workload's pod spec (exposure,
//! privileges), the Services and Ingresses that reach it, its failed pod-security checks, the
//! vulnerabilities of its scanned images (stored SBOMs by the digest the kubelet reports,
//! matched now, each package's use from the agents' baselines) and the open alerts of its pods'
//! containers.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::PodSpec;

use super::{AlertFact, CheckFact, DANGEROUS_CAPABILITIES, Score, VulnFact, WorkloadFacts};
use crate::alert::fold::{Fold, State};
use crate::bench::k8s::ClusterFacts;
use crate::cluster::inventory::Inventory;
use crate::learn::Baselines;
use crate::model::FindingKind;
use crate::store::Store;

/// Every workload of `inventory`, scored, the riskiest first. `baselines` are what the
/// cluster's agents published (`read_baselines`): what each workload's processes map.
pub fn score_cluster(inventory: &Inventory, store: &Store, folds: &[Fold], baselines: &Baselines) -> Vec<Score> {
    let mut scores: Vec<Score> = gather(inventory, store, folds, baselines).iter().map(super::score).collect();
    scores.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.subject.cmp(&b.subject)));
    scores
}

/// The baselines every node's agent published (in the agents' namespace): none, with the
/// reason, where they cannot be read (then no package's use is known).
pub async fn read_baselines(client: &kube::Client) -> (Baselines, Option<String>) {
    match crate::agent::publish::read_all(client, crate::agent::manifest::NAMESPACE).await {
        Ok((baselines, unreadable)) if unreadable.is_empty() => (baselines, None),
        Ok((baselines, unreadable)) => (baselines, Some(format!("unreadable baselines: {}", unreadable.join("; ")))),
        Err(e) => (Baselines::default(), Some(format!("{e}: which packages are in use is not known"))),
    }
}

pub fn gather(inventory: &Inventory, store: &Store, folds: &[Fold], baselines: &Baselines) -> Vec<WorkloadFacts> {
    let facts = ClusterFacts::new(inventory);
    let report = crate::bench::k8s::judge_on(&facts, &[]);
    let checks: HashMap<String, Vec<CheckFact>> = crate::bench::k8s::summary::workload_risks(&facts, &report)
        .into_iter()
        .map(|row| {
            let subject = format!("{} {}/{}", row.kind, row.namespace, row.name);
            let failed = row.failed.into_iter().map(|f| CheckFact { id: f.id, title: f.title, severity: f.severity });
            (subject, failed.collect())
        })
        .collect();
    let vulnerabilities = vulnerabilities_by_workload(inventory, store, baselines);
    let alerts = alerts_by_workload(inventory, folds);
    facts
        .workloads
        .iter()
        .map(|w| {
            let subject = w.subject();
            let images: Vec<String> = w.spec.containers.iter().filter_map(|c| c.image.clone()).collect();
            let (scanned, vulns) = vulnerabilities.get(&subject).cloned().unwrap_or_default();
            WorkloadFacts {
                namespace: w.namespace().to_string(),
                kind: w.kind.to_string(),
                name: w.name().to_string(),
                images,
                scanned,
                vulnerabilities: vulns,
                exposure: exposure(inventory, w.namespace(), w.spec, w.pod_meta.unwrap_or(w.meta)),
                privileges: privileges(w.spec),
                compliance: checks.get(&subject).cloned().unwrap_or_default(),
                alerts: alerts.get(&subject).cloned().unwrap_or_default(),
            }
        })
        .collect()
}

fn privileges(spec: &PodSpec) -> super::Privileges {
    let pod_security = spec.security_context.as_ref();
    let mut out = super::Privileges {
        host_pid: spec.host_pid == Some(true),
        host_ipc: spec.host_ipc == Some(true),
        ..super::Privileges::default()
    };
    for container in spec.init_containers.iter().flatten().chain(&spec.containers) {
        let security = container.security_context.as_ref();
        if security.and_then(|s| s.privileged) == Some(true) {
            out.privileged.push(container.name.clone());
        }
        let non_root = security.and_then(|s| s.run_as_non_root).or(pod_security.and_then(|s| s.run_as_non_root));
        let user = security.and_then(|s| s.run_as_user).or(pod_security.and_then(|s| s.run_as_user));
        if non_root != Some(true) && user.is_none_or(|u| u == 0) {
            out.root.push(container.name.clone());
        }
        for added in security.and_then(|s| s.capabilities.as_ref()).and_then(|c| c.add.as_ref()).into_iter().flatten() {
            let name = added.trim_start_matches("CAP_").to_ascii_uppercase();
            if DANGEROUS_CAPABILITIES.contains(&name.as_str()) {
                out.capabilities.push(format!("{name} ({})", container.name));
            }
        }
        if security.and_then(|s| s.allow_privilege_escalation) != Some(false)
            && security.and_then(|s| s.privileged) != Some(true)
        {
            out.escalation = true;
        }
    }
    out.host_paths =
        spec.volumes.iter().flatten().filter_map(|v| v.host_path.as_ref().map(|h| h.path.clone())).collect();
    out
}

fn exposure(
    inventory: &Inventory,
    namespace: &str,
    spec: &PodSpec,
    pod_meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> super::Exposure {
    let mut out = super::Exposure { host_network: spec.host_network == Some(true), ..super::Exposure::default() };
    for container in &spec.containers {
        for port in container.ports.iter().flatten() {
            if let Some(host_port) = port.host_port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0) {
                out.host_ports.push(host_port);
            }
        }
    }
    let empty = BTreeMap::new();
    let labels = pod_meta.labels.as_ref().unwrap_or(&empty);
    let mut selected = Vec::new();
    for service in inventory.services.iter().filter(|s| s.metadata.namespace.as_deref() == Some(namespace)) {
        let Some(spec) = &service.spec else { continue };
        let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else { continue };
        if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            continue;
        }
        let name = service.metadata.name.clone().unwrap_or_default();
        selected.push(name.clone());
        match spec.type_.as_deref() {
            Some("LoadBalancer") => out.public.push(format!("Service {namespace}/{name} (LoadBalancer)")),
            Some("NodePort") => {
                let ports: Vec<String> =
                    spec.ports.iter().flatten().filter_map(|p| p.node_port).map(|p| p.to_string()).collect();
                out.node_ports.push(format!("Service {namespace}/{name} (NodePort {})", ports.join(", ")));
            }
            _ => {}
        }
    }
    for ingress in inventory.ingresses.iter().filter(|i| i.metadata.namespace.as_deref() == Some(namespace)) {
        let Some(spec) = &ingress.spec else { continue };
        let backends = spec
            .rules
            .iter()
            .flatten()
            .filter_map(|r| r.http.as_ref())
            .flat_map(|h| h.paths.iter())
            .filter_map(|p| p.backend.service.as_ref().map(|s| s.name.clone()))
            .chain(spec.default_backend.as_ref().and_then(|b| b.service.as_ref().map(|s| s.name.clone())));
        if backends.into_iter().any(|b| selected.contains(&b)) {
            out.public.push(format!("Ingress {namespace}/{}", ingress.metadata.name.as_deref().unwrap_or_default()));
        }
    }
    out
}

/// Each workload's vulnerabilities from its scanned images (each id once), each marked in use
/// or not by its group's baseline, and whether any image of it was scanned.
fn vulnerabilities_by_workload(
    inventory: &Inventory,
    store: &Store,
    baselines: &Baselines,
) -> HashMap<String, (bool, Vec<VulnFact>)> {
    let mut out: HashMap<String, (bool, Vec<VulnFact>)> = HashMap::new();
    for image in crate::cluster::images::running_images(inventory) {
        let Some(digest) = &image.digest else { continue };
        let Ok(Some(sbom)) = crate::scan::stored::get(store, digest) else { continue };
        let files: HashMap<String, Vec<String>> =
            sbom.packages.iter().filter(|p| !p.files.is_empty()).map(|p| (p.purl.clone(), p.files.clone())).collect();
        let Ok(scanned) = crate::scan::assess(store, sbom, &crate::scan::Assessment::default()) else { continue };
        let vulns: Vec<(VulnFact, &[String])> = scanned
            .findings
            .iter()
            .filter(|f| matches!(f.kind, FindingKind::Vulnerability | FindingKind::Advisory))
            .map(|f| {
                let fact = VulnFact {
                    id: f.id.clone(),
                    severity: f.severity,
                    package: f.package.as_ref().map(|p| format!("{} {}", p.name, p.version)).unwrap_or_default(),
                    has_fix: !f.fixed_versions.is_empty(),
                    known_exploited: super::known_exploited(&f.references),
                    in_use: None,
                    used_file: None,
                };
                let package_files = f.package.as_ref().and_then(|p| files.get(&p.purl)).map_or(&[][..], Vec::as_slice);
                (fact, package_files)
            })
            .collect();
        for user in &image.used_by {
            let subject = user.split(" (container ").next().unwrap_or(user).to_string();
            let watched = group_key(&subject).and_then(|key| baselines.get(&key));
            let watched_ms = watched.map_or(0, |b| b.last_ms.saturating_sub(b.first_ms));
            let mapped = watched.map(|b| super::in_use::Mapped::new(&b.mapped));
            let entry = out.entry(subject).or_default();
            entry.0 = true;
            for (v, package_files) in &vulns {
                if entry.1.iter().any(|have| have.id == v.id && have.package == v.package) {
                    continue;
                }
                let mut v = v.clone();
                if let Some(found) = mapped.as_ref().map(|m| m.use_of(package_files)) {
                    (v.in_use, v.used_file) = super::in_use::known(found, watched_ms);
                }
                entry.1.push(v);
            }
        }
    }
    out
}

/// `Deployment shop/api` → `shop/Deployment/api`, the key the agents learn the workload under.
fn group_key(subject: &str) -> Option<String> {
    let (kind, rest) = subject.split_once(' ')?;
    let (namespace, name) = rest.split_once('/')?;
    Some(format!("{namespace}/{kind}/{name}"))
}

/// Open folds of alerts by the workload that owns the alerting pod.
fn alerts_by_workload(inventory: &Inventory, folds: &[Fold]) -> HashMap<String, Vec<AlertFact>> {
    let owners: HashMap<(String, String), String> = inventory
        .pods
        .iter()
        .map(|p| {
            let key = (p.metadata.namespace.clone().unwrap_or_default(), p.metadata.name.clone().unwrap_or_default());
            (key, crate::cluster::images::owner_of(inventory, p))
        })
        .collect();
    let mut out: HashMap<String, Vec<AlertFact>> = HashMap::new();
    for fold in folds.iter().filter(|f| f.state == State::Open) {
        let Some(namespace) = &fold.namespace else { continue };
        let Some(pod) = fold.container.split('/').nth(1) else { continue };
        let Some(owner) = owners.get(&(namespace.clone(), pod.to_string())) else { continue };
        out.entry(owner.clone()).or_default().push(AlertFact {
            rule: fold.rule.clone(),
            severity: fold.severity,
            count: fold.count,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_workload_is_known_by_the_key_its_agents_learn_it_under() {
        let group = crate::learn::GroupRef::workload("shop", "Deployment", "api");
        assert_eq!(super::group_key("Deployment shop/api").as_deref(), Some(group.key.as_str()));
        assert_eq!(super::group_key("garbage"), None);
    }
}

//! Policies in the formats clusters already run (`picket policy export --as …`): Kubernetes
//! NetworkPolicy, CiliumNetworkPolicy and KubeArmorPolicy. Pods are selected by labels there, so
//! a policy selecting by owner needs its workload's labels, and a group peer its group's: they
//! come from the cluster ([`labels`]) or from `selector.matchLabels`. What a format cannot say is
//! never dropped silently: each export returns its notes (a Block rule a NetworkPolicy cannot
//! hold, a DNS name it cannot name …).

pub mod cilium;
pub mod kubearmor;
pub mod labels;
pub mod networkpolicy;
pub mod seccomp;

use std::collections::BTreeMap;

use super::spec::{Owner, PolicySpec, Selector};

/// What the cluster said about labels: the pods of each selector, the cluster's DNS pods.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// `namespace/Kind/name` → the workload's pod labels.
    pub workloads: BTreeMap<String, BTreeMap<String, String>>,
    /// The DNS pods' labels (kube-dns's Service selector), in `kube-system`.
    pub dns: Option<BTreeMap<String, String>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExportError {
    #[error(
        "{policy}: the pods are picked by {what}; a {format} picks pods by labels: give selector.matchLabels, or --cluster to read the labels of {what} from the cluster"
    )]
    NeedsLabels { policy: String, what: String, format: &'static str },
    #[error("{policy}: a local group (selector.image or container alone) has no pods to select in a cluster")]
    NotPods { policy: String },
    #[error(
        "{policy}: its group is not known (no picket.dev/group annotation, and its selector names no owner or image)"
    )]
    NoGroup { policy: String },
    #[error(
        "{policy}: no system calls learned for group {group} (the agent learns them while it runs; read them with --agent, --baselines, --events or --cluster)"
    )]
    NoSyscalls { policy: String, group: String },
}

/// One exported object and what it could not say.
#[derive(Debug, Clone)]
pub struct Exported<T> {
    pub object: T,
    pub notes: Vec<String>,
}

/// What every export starts from: the policy's name, namespace, how notes name it, and the
/// labels of its pods.
pub struct Target {
    pub name: String,
    pub namespace: String,
    pub title: String,
    pub pods: BTreeMap<String, String>,
}

impl Target {
    pub fn of(
        policy: &crate::policy::PicketPolicy,
        labels: &Labels,
        format: &'static str,
    ) -> Result<Self, ExportError> {
        let name = policy.metadata.name.clone().unwrap_or_default();
        let namespace = policy.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let title = format!("PicketPolicy {namespace}/{name}");
        let pods = pod_labels(&title, &namespace, &policy.spec.selector, labels, format)?;
        Ok(Self { name, namespace, title, pods })
    }

    /// A custom resource of this target: `apiVersion`, `kind`, metadata with picket's label.
    pub fn object(&self, api_version: &str, kind: &str, spec: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": { "app.kubernetes.io/managed-by": "picket" },
            },
            "spec": spec,
        })
    }
}

/// The one PicketPolicy of a test's YAML.
#[cfg(test)]
pub fn one_policy(text: &str) -> crate::policy::PicketPolicy {
    let (documents, problems) = crate::policy::validate::validate_text(std::path::Path::new("p.yaml"), text);
    assert!(problems.is_empty(), "{problems:?}");
    match documents.into_iter().next() {
        Some(crate::policy::validate::Document::Policy(policy)) => policy,
        _ => panic!("one PicketPolicy"),
    }
}

/// `namespace/Kind/name` of an owner in `namespace`.
pub fn workload_key(namespace: &str, owner: &Owner) -> String {
    format!("{namespace}/{:?}/{}", owner.kind, owner.name)
}

/// The pod labels a selector means: its matchLabels, and its owner's labels from the cluster.
pub fn pod_labels(
    policy: &str,
    namespace: &str,
    selector: &Selector,
    labels: &Labels,
    format: &'static str,
) -> Result<BTreeMap<String, String>, ExportError> {
    let mut out = selector.match_labels.clone();
    if let Some(owner) = &selector.owner {
        let key = workload_key(namespace, owner);
        match labels.workloads.get(&key) {
            Some(found) => out.extend(found.clone()),
            None if out.is_empty() => {
                return Err(ExportError::NeedsLabels { policy: policy.into(), what: key, format });
            }
            None => {}
        }
    }
    if out.is_empty() {
        return Err(ExportError::NotPods { policy: policy.into() });
    }
    Ok(out)
}

/// The labels of a group peer (`namespace/Kind/name`), and its namespace; None when unknown.
pub fn group_labels(group: &str, labels: &Labels) -> Option<(String, BTreeMap<String, String>)> {
    let namespace = group.split('/').next()?.to_string();
    let (_, found) = labels.workloads.iter().find(|(k, _)| k.eq_ignore_ascii_case(group))?;
    Some((namespace, found.clone()))
}

/// Whether a rule is the learned policy's name-lookup rule: port 53, any peer.
pub fn is_dns_rule(rule: &super::spec::NetworkRule) -> bool {
    rule.peers.is_empty() && !rule.ports.is_empty() && rule.ports.iter().all(|p| p.port == "53")
}

/// The workloads a set of policies needs labels for: their owners and their group peers.
pub fn wanted_workloads(policies: &[(String, PolicySpec)]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (namespace, spec) in policies {
        if let Some(owner) = &spec.selector.owner {
            out.push((namespace.clone(), format!("{:?}", owner.kind), owner.name.clone()));
        }
        for rule in spec.ingress.iter().chain(&spec.egress) {
            for peer in &rule.peers {
                let Some(group) = &peer.group else { continue };
                let parts: Vec<&str> = group.splitn(3, '/').collect();
                if let [namespace, kind, name] = parts[..] {
                    out.push((namespace.to_string(), kind.to_string(), name.to_string()));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

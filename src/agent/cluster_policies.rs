//! The cluster's PicketPolicies and PicketClusterPolicies, watched by the agent (in its
//! DaemonSet pod, or `picket agent run --policies-from-cluster`): every change sends the whole
//! set, as one multi-document YAML text, for the agent's loop to put in force. An object the
//! agent cannot hold is left out and said, naming it; the others are enforced.

use futures::StreamExt as _;
use kube::runtime::watcher;

use crate::policy::{PicketClusterPolicy, PicketPolicy};

/// What the watch sends the agent's loop: the policies to hold and what was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPolicies {
    pub yaml: String,
    pub count: usize,
    pub left_out: Vec<String>,
}

/// The objects as one text of documents the agent holds; those it cannot hold are named.
pub fn combine(policies: &[PicketPolicy], cluster: &[PicketClusterPolicy]) -> ClusterPolicies {
    let mut documents: Vec<(String, String)> = Vec::new();
    for policy in policies {
        let name = format!(
            "PicketPolicy {}/{}",
            policy.metadata.namespace.as_deref().unwrap_or("default"),
            policy.metadata.name.as_deref().unwrap_or_default()
        );
        documents.push((name, document_yaml(policy)));
    }
    for policy in cluster {
        let name = format!("PicketClusterPolicy {}", policy.metadata.name.as_deref().unwrap_or_default());
        documents.push((name, document_yaml(policy)));
    }
    documents.sort();
    let mut yaml = String::new();
    let mut count = 0;
    let mut left_out = Vec::new();
    for (name, text) in documents {
        if text.is_empty() {
            left_out.push(format!("{name}: does not serialise"));
            continue;
        }
        // Each on its own first, so that one the agent cannot hold leaves the others in force.
        match super::policy::PolicyFile::parse(std::path::Path::new(&name), &text) {
            Ok(_) => {
                yaml.push_str("---\n");
                yaml.push_str(&text);
                count += 1;
            }
            Err(super::policy::PolicyFileError::File { message, .. }) => left_out.push(message),
            Err(super::policy::PolicyFileError::Rule { message, .. }) => left_out.push(format!("{name}: {message}")),
        }
    }
    ClusterPolicies { yaml, count, left_out }
}

/// The object as the policy file format reads it: apiVersion, kind, metadata (name and
/// namespace only), spec.
fn document_yaml<K: serde::Serialize + kube::Resource>(object: &K) -> String {
    let Ok(mut value) = serde_json::to_value(object) else { return String::new() };
    if let Some(metadata) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        metadata.retain(|key, _| key == "name" || key == "namespace");
    }
    serde_saphyr::to_string(&value).unwrap_or_default()
}

/// Watches both kinds until the receiver goes away; sends the whole set after every change
/// (once the first lists are in). A watch that fails is said once and retried with backoff by
/// the watcher; a cluster without the CRDs is said plainly.
pub async fn watch(client: kube::Client, context: String, to_loop: tokio::sync::mpsc::Sender<ClusterPolicies>) {
    use kube::runtime::WatchStreamExt as _;
    let policies: kube::Api<PicketPolicy> = kube::Api::all(client.clone());
    let cluster: kube::Api<PicketClusterPolicy> = kube::Api::all(client);
    let (policy_store, policy_writer) = kube::runtime::reflector::store::<PicketPolicy>();
    let (cluster_store, cluster_writer) = kube::runtime::reflector::store::<PicketClusterPolicy>();
    let policy_events = kube::runtime::reflector(policy_writer, watcher(policies, watcher::Config::default()))
        .default_backoff()
        .map(|e| e.map(|e| (0, matches!(e, watcher::Event::InitDone))).map_err(|e| e.to_string()));
    let cluster_events = kube::runtime::reflector(cluster_writer, watcher(cluster, watcher::Config::default()))
        .default_backoff()
        .map(|e| e.map(|e| (1, matches!(e, watcher::Event::InitDone))).map_err(|e| e.to_string()));
    let mut events = std::pin::pin!(futures::stream::select(policy_events, cluster_events));
    let mut said = false;
    let mut last: Option<ClusterPolicies> = None;
    // Nothing is sent before both kinds were listed once: half a set would drop the rest.
    let mut listed = [false, false];
    while let Some(event) = events.next().await {
        match event {
            Err(e) => {
                if !said {
                    let hint = if e.contains("404") || e.to_ascii_lowercase().contains("not found") {
                        " (are the CRDs installed? picket policy crd --apply)"
                    } else {
                        ""
                    };
                    crate::say!("picket: context {context}: watching the policies: {e}{hint}; retrying");
                    said = true;
                }
                continue;
            }
            Ok((kind, init_done)) => listed[kind] |= init_done,
        }
        if !listed.iter().all(|l| *l) {
            continue;
        }
        let policies: Vec<PicketPolicy> = policy_store.state().iter().map(|p| (**p).clone()).collect();
        let cluster: Vec<PicketClusterPolicy> = cluster_store.state().iter().map(|p| (**p).clone()).collect();
        let combined = combine(&policies, &cluster);
        if last.as_ref() == Some(&combined) {
            continue;
        }
        last = Some(combined.clone());
        if to_loop.send(combined).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> PicketPolicy {
        serde_saphyr::from_str(yaml).expect("a PicketPolicy")
    }

    #[test]
    fn objects_the_agent_cannot_hold_are_left_out_by_name() {
        let good = policy(
            "apiVersion: picket.dev/v1\nkind: PicketPolicy\nmetadata: { name: web, namespace: shop, resourceVersion: '7', uid: u }\nspec:\n  selector: { image: 'registry.example/web:*' }\n  mode: protect\n  process:\n    - matchPaths: [/bin/busybox]\n",
        );
        let fqdn = policy(
            "apiVersion: picket.dev/v1\nkind: PicketPolicy\nmetadata: { name: api, namespace: shop }\nspec:\n  selector: { matchLabels: { app: api } }\n  mode: monitor\n  egress:\n    - peers: [{ namespace: payments }]\n",
        );
        let combined = combine(&[good, fqdn], &[]);
        assert_eq!(combined.count, 1);
        assert_eq!(combined.left_out.len(), 1);
        assert!(
            combined.left_out[0].contains("PicketPolicy shop/api") && combined.left_out[0].contains("namespace"),
            "{:?}",
            combined.left_out
        );
        let held =
            super::super::policy::PolicyFile::parse(std::path::Path::new("cluster"), &combined.yaml).expect("held");
        assert_eq!(held.containers.len(), 1);
        assert_eq!(held.containers[0].namespace.as_deref(), Some("shop"));
        assert!(!combined.yaml.contains("resourceVersion"));
    }
}

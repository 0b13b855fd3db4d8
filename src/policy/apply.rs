//! Policies into a cluster: each PicketPolicy and PicketClusterPolicy document with server-side
//! apply (field manager `picket`), for the DaemonSet's agents to enforce.

use kube::api::{Patch, PatchParams};

use super::validate::Document;
use super::{PicketClusterPolicy, PicketPolicy};

/// Applies every document to the cluster of `context` (None: kubeconfig's current one): the
/// context's name and what was applied. What `picket policy apply --cluster` and the Policies
/// pane both call.
pub async fn to_cluster(context: Option<&str>, documents: &[Document]) -> Result<(String, Vec<String>), String> {
    let (client, name) = crate::cluster::client_for(context).await.map_err(|e| format!("{e:#}"))?;
    let applied = apply_documents(&client, &name, documents).await?;
    Ok((name, applied))
}

/// Applies every document; returns `PicketPolicy shop/web` per document applied. The first that
/// the API server refuses stops it, naming the document (those before it stay applied).
pub async fn apply_documents(
    client: &kube::Client,
    context: &str,
    documents: &[Document],
) -> Result<Vec<String>, String> {
    let params = PatchParams::apply("picket").force();
    let mut applied = Vec::new();
    for document in documents {
        let name = document.name();
        let refused = |e: kube::Error| {
            let mut why = crate::cluster::inventory::describe(&e);
            if why.contains("404") || why.to_ascii_lowercase().contains("not found") {
                why.push_str(" (install the CRDs first: picket policy crd --apply)");
            }
            format!("context {context}: applying {name}: {why}")
        };
        match document {
            Document::Policy(policy) => {
                let namespace = policy.metadata.namespace.clone().unwrap_or_else(|| "default".into());
                let object_name = policy.metadata.name.clone().unwrap_or_default();
                let api: kube::Api<PicketPolicy> = kube::Api::namespaced(client.clone(), &namespace);
                let mut object = policy.clone();
                object.metadata.namespace = Some(namespace);
                object.metadata.managed_fields = None;
                object.metadata.resource_version = None;
                api.patch(&object_name, &params, &Patch::Apply(&object)).await.map_err(refused)?;
            }
            Document::ClusterPolicy(policy) => {
                let object_name = policy.metadata.name.clone().unwrap_or_default();
                let api: kube::Api<PicketClusterPolicy> = kube::Api::all(client.clone());
                let mut object = policy.clone();
                object.metadata.managed_fields = None;
                object.metadata.resource_version = None;
                api.patch(&object_name, &params, &Patch::Apply(&object)).await.map_err(refused)?;
            }
        }
        applied.push(name);
    }
    Ok(applied)
}

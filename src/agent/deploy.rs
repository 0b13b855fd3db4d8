//! Deploying the node agent to a cluster: the objects `picket agent manifest` prints, applied
//! with server-side apply (field manager `picket`), in dependency order, so applying again
//! updates them in place.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const FIELD_MANAGER: &str = "picket";

/// One pod of the agent's DaemonSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPod {
    pub name: String,
    pub node: String,
    /// `Running`, `Pending` …
    pub phase: String,
}

/// The agent's pods (namespace `picket-system`, label `app.kubernetes.io/name=picket-agent`),
/// by node.
pub async fn list_agent_pods(client: &Client, context: &str) -> Result<Vec<AgentPod>, DeployError> {
    use super::manifest::{APP_LABEL, NAMESPACE};
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let list =
        tokio::time::timeout(std::time::Duration::from_secs(20), api.list(&ListParams::default().labels(APP_LABEL)))
            .await
            .map_err(|_| DeployError::Timeout { context: context.to_string() })?
            .map_err(|source| DeployError::List { context: context.to_string(), source })?;
    let mut pods: Vec<AgentPod> = list
        .items
        .iter()
        .map(|p| AgentPod {
            name: p.metadata.name.clone().unwrap_or_default(),
            node: p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
            phase: p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Unknown".into()),
        })
        .collect();
    pods.sort_by(|a, b| a.node.cmp(&b.node).then_with(|| a.name.cmp(&b.name)));
    Ok(pods)
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("the agent manifest's {kind} does not parse: {message}")]
    Manifest { kind: &'static str, message: String },
    #[error("context {context}: the API server did not answer within 20s")]
    Timeout { context: String },
    #[error(
        "context {context}: listing the agent's pods in picket-system: {}",
        crate::cluster::inventory::describe(source)
    )]
    List { context: String, source: kube::Error },
    #[error("context {context}: applying {object}: {}", crate::cluster::inventory::describe(source))]
    Apply { context: String, object: String, source: kube::Error },
}

/// Applies the agent's manifest to the cluster behind `client`; returns the objects applied
/// (`DaemonSet picket-system/picket-agent`).
pub async fn deploy_agent(
    client: &Client,
    context: &str,
    namespace: &str,
    image: &str,
) -> Result<Vec<String>, DeployError> {
    let text = super::manifest::manifest(namespace, image);
    let docs: Vec<&str> = text.split("\n---\n").collect();
    let doc = |i: usize| docs.get(i).copied().unwrap_or_default();
    let mut applied = Vec::new();
    apply(Api::<Namespace>::all(client.clone()), parse(doc(0))?, context, &mut applied).await?;
    apply(Api::<ServiceAccount>::namespaced(client.clone(), namespace), parse(doc(1))?, context, &mut applied).await?;
    apply(Api::<ClusterRole>::all(client.clone()), parse(doc(2))?, context, &mut applied).await?;
    apply(Api::<ClusterRoleBinding>::all(client.clone()), parse(doc(3))?, context, &mut applied).await?;
    apply(Api::<Role>::namespaced(client.clone(), namespace), parse(doc(4))?, context, &mut applied).await?;
    apply(Api::<RoleBinding>::namespaced(client.clone(), namespace), parse(doc(5))?, context, &mut applied).await?;
    apply(Api::<DaemonSet>::namespaced(client.clone(), namespace), parse(doc(6))?, context, &mut applied).await?;
    Ok(applied)
}

fn parse<K: DeserializeOwned + Resource<DynamicType = ()>>(doc: &str) -> Result<K, DeployError> {
    serde_saphyr::from_str(doc).map_err(|e| DeployError::Manifest {
        kind: std::any::type_name::<K>().rsplit("::").next().unwrap_or("object"),
        message: e.to_string(),
    })
}

async fn apply<K>(api: Api<K>, object: K, context: &str, applied: &mut Vec<String>) -> Result<(), DeployError>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    let meta = object.meta();
    let name = meta.name.clone().unwrap_or_default();
    let label = match &meta.namespace {
        Some(namespace) => format!("{} {namespace}/{name}", K::kind(&())),
        None => format!("{} {name}", K::kind(&())),
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(&object)).await.map_err(|source| DeployError::Apply {
        context: context.to_string(),
        object: label.clone(),
        source,
    })?;
    applied.push(label);
    Ok(())
}

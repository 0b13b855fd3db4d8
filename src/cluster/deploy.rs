//! Deploying the node agent to a cluster: the objects `picket agent manifest` prints, applied
//! with server-side apply (field manager `picket`), in dependency order, so applying again
//! updates them in place.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const FIELD_MANAGER: &str = "picket";

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("the agent manifest's {kind} does not parse: {message}")]
    Manifest { kind: &'static str, message: String },
    #[error("context {context}: applying {object}: {source}")]
    Apply {
        context: String,
        object: String,
        #[source]
        source: kube::Error,
    },
}

/// Applies the agent's manifest to the cluster behind `client`; returns the objects applied
/// (`DaemonSet picket-system/picket-agent`).
pub async fn deploy_agent(
    client: &Client,
    context: &str,
    namespace: &str,
    image: &str,
) -> Result<Vec<String>, DeployError> {
    let text = crate::agent::manifest::manifest(namespace, image);
    let docs: Vec<&str> = text.split("\n---\n").collect();
    let doc = |i: usize| docs.get(i).copied().unwrap_or_default();
    let mut applied = Vec::new();
    apply(Api::<Namespace>::all(client.clone()), parse(doc(0))?, context, &mut applied).await?;
    apply(Api::<ServiceAccount>::namespaced(client.clone(), namespace), parse(doc(1))?, context, &mut applied).await?;
    apply(Api::<ClusterRole>::all(client.clone()), parse(doc(2))?, context, &mut applied).await?;
    apply(Api::<ClusterRoleBinding>::all(client.clone()), parse(doc(3))?, context, &mut applied).await?;
    apply(Api::<DaemonSet>::namespaced(client.clone(), namespace), parse(doc(4))?, context, &mut applied).await?;
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

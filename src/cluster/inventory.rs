//! A cluster's objects as the checks and panes read them: every kind listed in pages of 500
//! with continue tokens (a 10,000-pod cluster is 20 requests, never one huge answer), Secrets as
//! metadata only. A kind the credentials may not list is recorded with the RBAC it needs and
//! the rest goes on; an unreachable server or rejected credentials stop with a clear error.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ListParams, ObjectList};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

/// Objects per list request.
pub const PAGE_SIZE: u32 = 500;
/// How long one list request may take before the cluster is reported as not answering.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub context: String,
    pub namespaces: Vec<Namespace>,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub deployments: Vec<Deployment>,
    /// Read to map pods to their Deployments.
    pub replica_sets: Vec<ReplicaSet>,
    pub stateful_sets: Vec<StatefulSet>,
    pub daemon_sets: Vec<DaemonSet>,
    pub jobs: Vec<Job>,
    pub cron_jobs: Vec<CronJob>,
    pub services: Vec<Service>,
    pub ingresses: Vec<Ingress>,
    pub network_policies: Vec<NetworkPolicy>,
    pub service_accounts: Vec<ServiceAccount>,
    pub roles: Vec<Role>,
    pub cluster_roles: Vec<ClusterRole>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// Secrets' metadata only: their values never leave the API server.
    pub secrets: Vec<ObjectMeta>,
    /// Kinds the credentials may not list.
    pub forbidden: Vec<Forbidden>,
}

/// A kind that could not be listed for lack of RBAC, and what to grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    /// `pods`, `clusterroles.rbac.authorization.k8s.io`.
    pub resource: String,
    pub message: String,
}

impl Forbidden {
    pub fn needs(&self) -> String {
        format!("list {} at cluster scope", self.resource)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("context {context}: listing {resource}: the API server did not answer within {secs}s")]
    Timeout { context: String, resource: String, secs: u64 },
    #[error(
        "context {context}: the API server rejected the credentials (401): {message}; the token or certificate may have expired"
    )]
    Unauthorized { context: String, message: String },
    #[error("context {context}: cannot reach the API server: {source}")]
    Unreachable {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("context {context}: listing {resource}: {source}")]
    Api {
        context: String,
        resource: String,
        #[source]
        source: kube::Error,
    },
}

/// Lists every kind. Forbidden kinds are recorded; other errors stop.
pub async fn load(client: &Client, context: &str) -> Result<Inventory, ClusterError> {
    load_with_timeout(client, context, REQUEST_TIMEOUT).await
}

/// `load` with another bound on each request.
pub async fn load_with_timeout(client: &Client, context: &str, timeout: Duration) -> Result<Inventory, ClusterError> {
    let mut inv = Inventory { context: context.to_string(), ..Inventory::default() };
    let c = &Lister { client, context, timeout };
    inv.namespaces = list(c, &mut inv.forbidden).await?;
    inv.nodes = list(c, &mut inv.forbidden).await?;
    inv.pods = list(c, &mut inv.forbidden).await?;
    inv.deployments = list(c, &mut inv.forbidden).await?;
    inv.replica_sets = list(c, &mut inv.forbidden).await?;
    inv.stateful_sets = list(c, &mut inv.forbidden).await?;
    inv.daemon_sets = list(c, &mut inv.forbidden).await?;
    inv.jobs = list(c, &mut inv.forbidden).await?;
    inv.cron_jobs = list(c, &mut inv.forbidden).await?;
    inv.services = list(c, &mut inv.forbidden).await?;
    inv.ingresses = list(c, &mut inv.forbidden).await?;
    inv.network_policies = list(c, &mut inv.forbidden).await?;
    inv.service_accounts = list(c, &mut inv.forbidden).await?;
    inv.roles = list(c, &mut inv.forbidden).await?;
    inv.cluster_roles = list(c, &mut inv.forbidden).await?;
    inv.role_bindings = list(c, &mut inv.forbidden).await?;
    inv.cluster_role_bindings = list(c, &mut inv.forbidden).await?;
    inv.secrets = list_secret_metadata(c, &mut inv.forbidden).await?;
    Ok(inv)
}

/// `pods`, `clusterroles.rbac.authorization.k8s.io`: how RBAC and errors name a kind.
pub(crate) fn resource_name<K: Resource<DynamicType = ()>>() -> String {
    let group = K::group(&());
    let plural = K::plural(&());
    if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") }
}

/// Classifies one failed request: 403 gives its message, which the caller records; the rest
/// are errors.
fn classify(context: &str, resource: &str, error: kube::Error) -> Result<String, ClusterError> {
    match error {
        kube::Error::Api(status) if status.code == 403 => Ok(status.message.clone()),
        kube::Error::Api(status) if status.code == 401 => {
            Err(ClusterError::Unauthorized { context: context.to_string(), message: status.message.clone() })
        }
        e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => {
            Err(ClusterError::Unreachable { context: context.to_string(), source: e })
        }
        e => Err(ClusterError::Api { context: context.to_string(), resource: resource.to_string(), source: e }),
    }
}

struct Lister<'a> {
    client: &'a Client,
    context: &'a str,
    timeout: Duration,
}

async fn list<K>(lister: &Lister<'_>, forbidden: &mut Vec<Forbidden>) -> Result<Vec<K>, ClusterError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let api: Api<K> = Api::all(lister.client.clone());
    paged(lister, forbidden, resource_name::<K>(), |params| {
        let api = api.clone();
        async move { api.list(&params).await }
    })
    .await
}

async fn list_secret_metadata(
    lister: &Lister<'_>,
    forbidden: &mut Vec<Forbidden>,
) -> Result<Vec<ObjectMeta>, ClusterError> {
    let api: Api<Secret> = Api::all(lister.client.clone());
    let metas = paged(lister, forbidden, resource_name::<Secret>(), |params| {
        let api = api.clone();
        async move { api.list_metadata(&params).await }
    })
    .await?;
    Ok(metas.into_iter().map(|p| p.metadata).collect())
}

/// Follows continue tokens until the list is whole. A 403 records the kind as forbidden and
/// gives no items.
async fn paged<T, F, Fut>(
    lister: &Lister<'_>,
    forbidden: &mut Vec<Forbidden>,
    resource: String,
    fetch: F,
) -> Result<Vec<T>, ClusterError>
where
    T: Clone,
    F: Fn(ListParams) -> Fut,
    Fut: std::future::Future<Output = kube::Result<ObjectList<T>>>,
{
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(PAGE_SIZE);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = tokio::time::timeout(lister.timeout, fetch(params)).await.map_err(|_| ClusterError::Timeout {
            context: lister.context.to_string(),
            resource: resource.clone(),
            secs: lister.timeout.as_secs(),
        })?;
        match page {
            Ok(page) => {
                items.extend(page.items);
                token = page.metadata.continue_.filter(|t| !t.is_empty());
                if token.is_none() {
                    return Ok(items);
                }
            }
            Err(e) => {
                let message = classify(lister.context, &resource, e)?;
                forbidden.push(Forbidden { resource, message });
                return Ok(Vec::new());
            }
        }
    }
}

/// The owner that controls an object (`controller: true`), else its first owner.
pub fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let owners = meta.owner_references.as_ref()?;
    owners.iter().find(|o| o.controller == Some(true)).or_else(|| owners.first())
}

//! A cluster's objects as the checks and panes read them: every kind listed in pages of 500
//! with continue tokens (a 10,000-pod cluster is 20 requests, never one huge answer), Secrets as
//! metadata only. Kinds an older server serves at an older version (CronJob `batch/v1beta1`,
//! Ingress `networking.k8s.io/v1beta1`) are read there and converted. A kind that cannot be
//! listed — forbidden, not served, or failing (an aggregated API down) — is recorded with why,
//! and the rest goes on; only an unreachable server or rejected credentials stop.

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
    /// Kinds that could not be listed, with why: the report is incomplete without them.
    pub unlisted: Vec<Unlisted>,
}

/// Why a kind could not be listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// 403: the credentials may not list it.
    Forbidden,
    /// 404: the server serves no version of it that picket reads.
    NotServed,
    /// Another answer (5xx: an aggregated API down, a body that would not decode).
    Failed,
}

impl Why {
    /// As the JSON says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forbidden => "forbidden",
            Self::NotServed => "not-served",
            Self::Failed => "failed",
        }
    }
}

/// A kind that could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unlisted {
    /// `pods`, `clusterroles.rbac.authorization.k8s.io`.
    pub resource: String,
    pub why: Why,
    /// The server's words (or what went wrong), one line.
    pub message: String,
}

impl Unlisted {
    /// What was not possible, for notes and warnings: `list secrets at cluster scope (forbidden)`.
    pub fn needs(&self) -> String {
        match self.why {
            Why::Forbidden => format!("list {} at cluster scope (forbidden)", self.resource),
            Why::NotServed => format!("list {}: the server does not serve it", self.resource),
            Why::Failed => format!("list {}: the server failed", self.resource),
        }
    }
}

/// A kube error in one line for people: the HTTP status and the server's message, or the
/// transport failure with its causes (never a debug dump).
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() { String::new() } else { format!(" {}", status.reason) };
            format!("HTTP {}{reason}: {}", status.code, status.message)
        }
        other => {
            // kube's "ServiceError: " says nothing to a reader; the transport error does.
            let (mut text, mut source) = match other {
                kube::Error::Service(inner) => (inner.to_string(), inner.source()),
                _ => (other.to_string(), std::error::Error::source(other)),
            };
            while let Some(inner) = source {
                let inner_text = inner.to_string();
                if !text.contains(&inner_text) {
                    text.push_str(&format!(": {inner_text}"));
                }
                source = inner.source();
            }
            text
        }
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
    #[error("context {context}: cannot reach the API server: {}", describe(source))]
    Unreachable { context: String, source: kube::Error },
}

/// How the inventory asks: objects per list request (`--chunk-size`, as kubectl calls it) and
/// the bound on each request.
#[derive(Debug, Clone, Copy)]
pub struct ListOptions {
    pub page_size: u32,
    pub timeout: Duration,
}

impl Default for ListOptions {
    fn default() -> Self {
        Self { page_size: PAGE_SIZE, timeout: REQUEST_TIMEOUT }
    }
}

/// Lists every kind. Kinds that cannot be listed are recorded; an unreachable server or
/// rejected credentials stop.
pub async fn load(client: &Client, context: &str) -> Result<Inventory, ClusterError> {
    load_with(client, context, ListOptions::default()).await
}

/// `load`, asking as `options` say.
pub async fn load_with(client: &Client, context: &str, options: ListOptions) -> Result<Inventory, ClusterError> {
    let mut inv = Inventory { context: context.to_string(), ..Inventory::default() };
    let served = Served::discover(client, options.timeout).await;
    let c = &Lister { client, context, timeout: options.timeout, page_size: options.page_size.max(1), served };
    inv.namespaces = list(c, &mut inv.unlisted).await?;
    inv.nodes = list(c, &mut inv.unlisted).await?;
    inv.pods = list(c, &mut inv.unlisted).await?;
    inv.deployments = list(c, &mut inv.unlisted).await?;
    inv.replica_sets = list(c, &mut inv.unlisted).await?;
    inv.stateful_sets = list(c, &mut inv.unlisted).await?;
    inv.daemon_sets = list(c, &mut inv.unlisted).await?;
    inv.jobs = list(c, &mut inv.unlisted).await?;
    inv.cron_jobs = list_or_older(c, &mut inv.unlisted, &[("batch", "v1beta1")], cron_job_from_v1beta1).await?;
    inv.services = list(c, &mut inv.unlisted).await?;
    inv.ingresses = list_or_older(
        c,
        &mut inv.unlisted,
        &[("networking.k8s.io", "v1beta1"), ("extensions", "v1beta1")],
        ingress_from_v1beta1,
    )
    .await?;
    inv.network_policies = list(c, &mut inv.unlisted).await?;
    inv.service_accounts = list(c, &mut inv.unlisted).await?;
    inv.roles = list(c, &mut inv.unlisted).await?;
    inv.cluster_roles = list(c, &mut inv.unlisted).await?;
    inv.role_bindings = list(c, &mut inv.unlisted).await?;
    inv.cluster_role_bindings = list(c, &mut inv.unlisted).await?;
    inv.secrets = list_secret_metadata(c, &mut inv.unlisted).await?;
    Ok(inv)
}

/// Lists only the RBAC kinds (roles, cluster roles and their bindings): what admission reads
/// to judge a pod's service account.
pub async fn load_rbac(client: &Client, context: &str) -> Result<Inventory, ClusterError> {
    let options = ListOptions::default();
    let mut inv = Inventory { context: context.to_string(), ..Inventory::default() };
    let served = Served::discover(client, options.timeout).await;
    let c = &Lister { client, context, timeout: options.timeout, page_size: options.page_size, served };
    inv.roles = list(c, &mut inv.unlisted).await?;
    inv.cluster_roles = list(c, &mut inv.unlisted).await?;
    inv.role_bindings = list(c, &mut inv.unlisted).await?;
    inv.cluster_role_bindings = list(c, &mut inv.unlisted).await?;
    Ok(inv)
}

/// `pods`, `clusterroles.rbac.authorization.k8s.io`: how RBAC and errors name a kind.
pub(crate) fn resource_name<K: Resource<DynamicType = ()>>() -> String {
    let group = K::group(&());
    let plural = K::plural(&());
    if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") }
}

/// Classifies one failed request: what the caller records for the kind, or an error that
/// stops everything (rejected credentials, an unreachable server).
fn classify(context: &str, resource: &str, error: kube::Error) -> Result<Unlisted, ClusterError> {
    let unlisted = |why, message| Unlisted { resource: resource.to_string(), why, message };
    match error {
        kube::Error::Api(status) if status.code == 403 => Ok(unlisted(Why::Forbidden, status.message.clone())),
        kube::Error::Api(status) if status.code == 404 => {
            Ok(unlisted(Why::NotServed, format!("HTTP 404: {}", status.message)))
        }
        kube::Error::Api(status) if status.code == 401 => {
            Err(ClusterError::Unauthorized { context: context.to_string(), message: status.message.clone() })
        }
        e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => {
            Err(ClusterError::Unreachable { context: context.to_string(), source: e })
        }
        e => Ok(unlisted(Why::Failed, describe(&e))),
    }
}

/// Lists `K` at its current version; where the server does not serve that (404), at the first
/// older version in `older` it serves, each object converted by `convert` (JSON of the old
/// version in, JSON the current type reads out; None drops it).
async fn list_or_older<K>(
    lister: &Lister<'_>,
    unlisted: &mut Vec<Unlisted>,
    older: &[(&str, &str)],
    convert: fn(serde_json::Value) -> Option<serde_json::Value>,
) -> Result<Vec<K>, ClusterError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut refused = Vec::new();
    let current = list::<K>(lister, &mut refused).await?;
    let Some(first) = refused.pop() else { return Ok(current) };
    if first.why != Why::NotServed {
        unlisted.push(first);
        return Ok(current);
    }
    let plural = K::plural(&());
    for (group, version) in older {
        if lister.served.serves(&format!("{group}/{version}"), &plural) == Some(false) {
            continue;
        }
        let resource = kube::discovery::ApiResource {
            group: group.to_string(),
            version: version.to_string(),
            api_version: format!("{group}/{version}"),
            kind: K::kind(&()).to_string(),
            plural: plural.to_string(),
        };
        let api: Api<kube::api::DynamicObject> = Api::all_with(lister.client.clone(), &resource);
        let mut tried = Vec::new();
        let objects = paged(lister, &mut tried, format!("{plural}.{group} ({version})"), |params| {
            let api = api.clone();
            async move { api.list(&params).await }
        })
        .await?;
        match tried.pop() {
            Some(refusal) if refusal.why == Why::NotServed => continue,
            Some(refusal) => {
                unlisted.push(refusal);
                return Ok(Vec::new());
            }
            None => {
                let converted = objects
                    .into_iter()
                    .filter_map(|o| serde_json::to_value(o).ok())
                    .filter_map(convert)
                    .filter_map(|v| serde_json::from_value::<K>(v).ok())
                    .collect();
                return Ok(converted);
            }
        }
    }
    let versions: Vec<String> = std::iter::once(format!("{}/{}", K::group(&()), K::version(&())))
        .chain(older.iter().map(|(g, v)| format!("{g}/{v}")))
        .collect();
    unlisted.push(Unlisted {
        resource: first.resource,
        why: Why::NotServed,
        message: format!("the server serves none of {}", versions.join(", ")),
    });
    Ok(Vec::new())
}

/// A CronJob of `batch/v1beta1`: the same fields as `batch/v1`.
pub(crate) fn cron_job_from_v1beta1(mut cron_job: serde_json::Value) -> Option<serde_json::Value> {
    cron_job["apiVersion"] = serde_json::json!("batch/v1");
    Some(cron_job)
}

/// An Ingress of `networking.k8s.io/v1beta1` (or `extensions/v1beta1`) as `networking.k8s.io/v1`
/// reads it: backends name the service and its port (number or name) in the newer shape, and a
/// path without a type is `ImplementationSpecific`.
pub(crate) fn ingress_from_v1beta1(mut ingress: serde_json::Value) -> Option<serde_json::Value> {
    fn backend(old: &serde_json::Value) -> Option<serde_json::Value> {
        let name = old.get("serviceName")?.as_str()?;
        let port = match old.get("servicePort")? {
            serde_json::Value::Number(n) => serde_json::json!({ "number": n }),
            serde_json::Value::String(s) => match s.parse::<i64>() {
                Ok(n) => serde_json::json!({ "number": n }),
                Err(_) => serde_json::json!({ "name": s }),
            },
            _ => return None,
        };
        Some(serde_json::json!({ "service": { "name": name, "port": port } }))
    }
    ingress["apiVersion"] = serde_json::json!("networking.k8s.io/v1");
    let spec = ingress.get_mut("spec")?;
    if let Some(old) = spec.get("backend").cloned() {
        if let Some(new) = backend(&old) {
            spec["defaultBackend"] = new;
        }
        spec.as_object_mut()?.remove("backend");
    }
    for rule in spec.get_mut("rules").and_then(|r| r.as_array_mut()).into_iter().flatten() {
        for path in rule.pointer_mut("/http/paths").and_then(|p| p.as_array_mut()).into_iter().flatten() {
            if let Some(new) = path.get("backend").and_then(backend) {
                path["backend"] = new;
            }
            if path.get("pathType").is_none() {
                path["pathType"] = serde_json::json!("ImplementationSpecific");
            }
        }
    }
    Some(ingress)
}

struct Lister<'a> {
    client: &'a Client,
    context: &'a str,
    timeout: Duration,
    page_size: u32,
    served: Served,
}

/// The group versions the inventory reads kinds from (current and older).
const GROUP_VERSIONS: &[&str] = &[
    "v1",
    "apps/v1",
    "batch/v1",
    "batch/v1beta1",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1beta1",
    "extensions/v1beta1",
    "rbac.authorization.k8s.io/v1",
];

/// What the server serves, from API discovery: per group version, its resources (plural
/// names). Discovery is per resource, not per group: a v1.20 server serves `batch/v1` without
/// CronJob. A group version whose discovery did not answer (an aggregated API down, a proxy in
/// the way) is unknown, and listing finds out.
#[derive(Debug, Default)]
pub(crate) struct Served(std::collections::HashMap<String, Option<std::collections::BTreeSet<String>>>);

impl Served {
    pub(crate) async fn discover(client: &Client, timeout: Duration) -> Self {
        let mut served = Self::default();
        for group_version in GROUP_VERSIONS {
            let asked = async {
                match *group_version {
                    "v1" => client.list_core_api_resources("v1").await,
                    other => client.list_api_group_resources(other).await,
                }
            };
            let resources = match tokio::time::timeout(timeout, asked).await {
                Ok(Ok(list)) => {
                    Some(list.resources.into_iter().map(|r| r.name).filter(|name| !name.contains('/')).collect())
                }
                Ok(Err(kube::Error::Api(status))) if status.code == 404 => Some(Default::default()),
                _ => None,
            };
            served.0.insert(group_version.to_string(), resources);
        }
        served
    }

    /// The first of `api_versions` discovery does not rule out for `plural`.
    pub(crate) fn first_served<'v>(&self, api_versions: &[&'v str], plural: &str) -> Option<&'v str> {
        api_versions.iter().copied().find(|v| self.serves(v, plural) != Some(false))
    }

    /// Some(false) when discovery says the server does not serve `plural` at `api_version`.
    fn serves(&self, api_version: &str, plural: &str) -> Option<bool> {
        self.0.get(api_version)?.as_ref().map(|resources| resources.contains(plural))
    }

    /// Records `resource` as not served when discovery says so (and nothing is requested).
    fn refuse<K: Resource<DynamicType = ()>>(&self, unlisted: &mut Vec<Unlisted>) -> bool {
        let (api_version, plural) = (K::api_version(&()), K::plural(&()));
        if self.serves(&api_version, &plural) != Some(false) {
            return false;
        }
        unlisted.push(Unlisted {
            resource: resource_name::<K>(),
            why: Why::NotServed,
            message: format!("the server does not serve {plural} at {api_version} (API discovery)"),
        });
        true
    }
}

async fn list<K>(lister: &Lister<'_>, unlisted: &mut Vec<Unlisted>) -> Result<Vec<K>, ClusterError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    if lister.served.refuse::<K>(unlisted) {
        return Ok(Vec::new());
    }
    let api: Api<K> = Api::all(lister.client.clone());
    paged(lister, unlisted, resource_name::<K>(), |params| {
        let api = api.clone();
        async move { api.list(&params).await }
    })
    .await
}

async fn list_secret_metadata(
    lister: &Lister<'_>,
    unlisted: &mut Vec<Unlisted>,
) -> Result<Vec<ObjectMeta>, ClusterError> {
    if lister.served.refuse::<Secret>(unlisted) {
        return Ok(Vec::new());
    }
    let api: Api<Secret> = Api::all(lister.client.clone());
    let metas = paged(lister, unlisted, resource_name::<Secret>(), |params| {
        let api = api.clone();
        async move { api.list_metadata(&params).await }
    })
    .await?;
    Ok(metas.into_iter().map(|p| p.metadata).collect())
}

/// Follows continue tokens until the list is whole. A kind that cannot be listed is recorded
/// and gives no items.
async fn paged<T, F, Fut>(
    lister: &Lister<'_>,
    unlisted: &mut Vec<Unlisted>,
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
        let mut params = ListParams::default().limit(lister.page_size);
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
                unlisted.push(classify(lister.context, &resource, e)?);
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

//! A cluster's inventory kept current by watches (kube-runtime reflectors), for the console:
//! each kind is listed once in pages, then watched from the list's resourceVersion; a dropped
//! watch resumes from the last version it saw, and only a version the server no longer has
//! (410 Gone) makes it list again. Refreshing the panes reads the stores, never the API.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use super::inventory::{Inventory, PAGE_SIZE, Unlisted, Why, resource_name};

/// Why a kind's watch is failing, by resource name (`pods`, `clusterroles.rbac…`).
type Errors = Arc<Mutex<BTreeMap<String, KindError>>>;

#[derive(Debug, Clone)]
struct KindError {
    forbidden: bool,
    message: String,
}

pub struct ClusterWatch {
    context: String,
    client: Client,
    namespaces: Store<Namespace>,
    nodes: Store<Node>,
    pods: Store<Pod>,
    deployments: Store<Deployment>,
    replica_sets: Store<ReplicaSet>,
    stateful_sets: Store<StatefulSet>,
    daemon_sets: Store<DaemonSet>,
    jobs: Store<Job>,
    cron_jobs: Versioned<CronJob>,
    services: Store<Service>,
    ingresses: Versioned<Ingress>,
    network_policies: Store<NetworkPolicy>,
    service_accounts: Store<ServiceAccount>,
    roles: Store<Role>,
    cluster_roles: Store<ClusterRole>,
    role_bindings: Store<RoleBinding>,
    cluster_role_bindings: Store<ClusterRoleBinding>,
    secrets: Store<PartialObjectMeta<Secret>>,
    errors: Errors,
    ready: Ready,
    changes: tokio::sync::watch::Receiver<u64>,
    tasks: Vec<JoinHandle<()>>,
}

/// Kinds whose first list has completed.
type Ready = Arc<Mutex<BTreeSet<String>>>;

/// Drives one kind's reflector until the watch is dropped; every event bumps `changes`, every
/// error is recorded (and cleared by the next success).
fn drive<S, K>(stream: S, resource: String, shared: Shared) -> JoinHandle<()>
where
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    if let Ok(mut errors) = shared.errors.lock() {
                        errors.remove(&resource);
                    }
                    if matches!(event, watcher::Event::InitDone)
                        && let Ok(mut ready) = shared.ready.lock()
                    {
                        ready.insert(resource.clone());
                    }
                }
                Err(e) => {
                    let forbidden = matches!(
                        &e,
                        watcher::Error::InitialListFailed(kube::Error::Api(s)) | watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 403
                    );
                    let message = match &e {
                        watcher::Error::InitialListFailed(inner)
                        | watcher::Error::WatchStartFailed(inner)
                        | watcher::Error::WatchFailed(inner) => super::inventory::describe(inner),
                        other => other.to_string(),
                    };
                    if let Ok(mut errors) = shared.errors.lock() {
                        errors.insert(resource.clone(), KindError { forbidden, message });
                    }
                }
            }
            shared.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    })
}

#[derive(Clone)]
struct Shared {
    errors: Errors,
    ready: Ready,
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

/// The number of kinds watched.
const KINDS: usize = 18;

fn watch_kind<K>(client: &Client, shared: &Shared, tasks: &mut Vec<JoinHandle<()>>) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let (reader, writer) = reflector::store();
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default().page_size(PAGE_SIZE))).default_backoff();
    tasks.push(drive(stream, resource_name::<K>(), shared.clone()));
    reader
}

/// A kind watched at its current version, or at an older one the server serves instead (CronJob
/// `batch/v1beta1` before Kubernetes 1.21), converted to the current shape when read.
enum Versioned<K: Resource<DynamicType = ()> + Clone + 'static> {
    Current(Store<K>),
    Older(Store<DynamicObject>, fn(serde_json::Value) -> Option<serde_json::Value>),
}

impl<K: Resource<DynamicType = ()> + Clone + DeserializeOwned + 'static> Versioned<K> {
    fn all(&self) -> Vec<K> {
        match self {
            Self::Current(store) => store.state().iter().map(|o| (**o).clone()).collect(),
            Self::Older(store, convert) => store
                .state()
                .iter()
                .filter_map(|o| serde_json::to_value(&**o).ok())
                .filter_map(convert)
                .filter_map(|v| serde_json::from_value(v).ok())
                .collect(),
        }
    }
}

/// Watches `K` at `api_version` when that is not its own (the store holds the older objects).
fn watch_versioned<K>(
    client: &Client,
    shared: &Shared,
    tasks: &mut Vec<JoinHandle<()>>,
    api_version: &str,
    convert: fn(serde_json::Value) -> Option<serde_json::Value>,
) -> Versioned<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    if api_version == K::api_version(&()) {
        return Versioned::Current(watch_kind(client, shared, tasks));
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = kube::discovery::ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version: api_version.to_string(),
        kind: K::kind(&()).to_string(),
        plural: K::plural(&()).to_string(),
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let writer = reflector::store::Writer::new(resource);
    let reader = writer.as_reader();
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default().page_size(PAGE_SIZE))).default_backoff();
    tasks.push(drive(stream, resource_name::<K>(), shared.clone()));
    Versioned::Older(reader, convert)
}

impl ClusterWatch {
    /// Starts watching every kind at the version API discovery says the server serves (CronJob
    /// and Ingress have older ones). Must run inside a tokio runtime.
    pub async fn start_discovered(client: Client, context: &str) -> Self {
        let served = super::inventory::Served::discover(&client, super::inventory::REQUEST_TIMEOUT).await;
        let cron_jobs = served.first_served(&["batch/v1", "batch/v1beta1"], "cronjobs").unwrap_or("batch/v1");
        let ingresses = served
            .first_served(&["networking.k8s.io/v1", "networking.k8s.io/v1beta1", "extensions/v1beta1"], "ingresses")
            .unwrap_or("networking.k8s.io/v1");
        Self::start_at(client, context, cron_jobs, ingresses)
    }

    /// Starts watching every kind at its current version. Must run inside a tokio runtime.
    pub fn start(client: Client, context: &str) -> Self {
        Self::start_at(client, context, "batch/v1", "networking.k8s.io/v1")
    }

    fn start_at(client: Client, context: &str, cron_jobs: &str, ingresses: &str) -> Self {
        let (tx, changes) = tokio::sync::watch::channel(0u64);
        let shared = Shared { errors: Arc::default(), ready: Arc::default(), changes: Arc::new(tx) };
        let mut tasks = Vec::new();
        let (c, s, t) = (&client, &shared, &mut tasks);
        Self {
            context: context.to_string(),
            client: client.clone(),
            namespaces: watch_kind(c, s, t),
            nodes: watch_kind(c, s, t),
            pods: watch_kind(c, s, t),
            deployments: watch_kind(c, s, t),
            replica_sets: watch_kind(c, s, t),
            stateful_sets: watch_kind(c, s, t),
            daemon_sets: watch_kind(c, s, t),
            jobs: watch_kind(c, s, t),
            cron_jobs: watch_versioned(c, s, t, cron_jobs, super::inventory::cron_job_from_v1beta1),
            services: watch_kind(c, s, t),
            ingresses: watch_versioned(c, s, t, ingresses, super::inventory::ingress_from_v1beta1),
            network_policies: watch_kind(c, s, t),
            service_accounts: watch_kind(c, s, t),
            roles: watch_kind(c, s, t),
            cluster_roles: watch_kind(c, s, t),
            role_bindings: watch_kind(c, s, t),
            cluster_role_bindings: watch_kind(c, s, t),
            // Metadata only: Secret values never leave the API server.
            secrets: watch_kind::<PartialObjectMeta<Secret>>(c, s, t),
            errors: shared.errors.clone(),
            ready: shared.ready.clone(),
            changes,
            tasks,
        }
    }

    pub fn context(&self) -> &str {
        &self.context
    }

    /// The client the watch reads with (for what it does not watch).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A receiver that changes whenever any store or error changes.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Kinds whose first list has completed or that are failing.
    fn settled(&self) -> usize {
        let mut settled: BTreeSet<String> = self.ready.lock().map(|r| r.clone()).unwrap_or_default();
        settled.extend(self.errors.lock().map(|e| e.keys().cloned().collect::<Vec<_>>()).unwrap_or_default());
        settled.len()
    }

    /// Waits until every kind has been listed once or is failing; false on timeout.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let mut changes = self.changes();
        let wait = async {
            while self.settled() < KINDS {
                if changes.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Errors of kinds that are failing for reasons other than RBAC (connection, server), one
    /// line per distinct error with the kinds it hit (an unreachable server fails every kind
    /// the same way: one line, not eighteen).
    pub fn errors(&self) -> Vec<String> {
        let Ok(errors) = self.errors.lock() else { return Vec::new() };
        let mut by_message: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
        for (resource, kind) in errors.iter().filter(|(_, k)| !k.forbidden) {
            by_message.entry(kind.message.as_str()).or_default().push(resource.as_str());
        }
        by_message
            .into_iter()
            .map(|(message, kinds)| match kinds.as_slice() {
                [one] => format!("{one}: {message}"),
                few if few.len() <= 3 => format!("{}: {message}", few.join(", ")),
                many => format!("{} kinds: {message}", many.len()),
            })
            .collect()
    }

    /// The inventory as the stores hold it now.
    pub fn snapshot(&self) -> Inventory {
        fn all<K: Clone + Resource<DynamicType = ()>>(store: &Store<K>) -> Vec<K> {
            store.state().iter().map(|o| (**o).clone()).collect()
        }
        let unlisted = self
            .errors
            .lock()
            .map(|e| {
                e.iter()
                    .filter(|(_, k)| k.forbidden)
                    .map(|(r, k)| Unlisted { resource: r.clone(), why: Why::Forbidden, message: k.message.clone() })
                    .collect()
            })
            .unwrap_or_default();
        Inventory {
            context: self.context.clone(),
            namespaces: all(&self.namespaces),
            nodes: all(&self.nodes),
            pods: all(&self.pods),
            deployments: all(&self.deployments),
            replica_sets: all(&self.replica_sets),
            stateful_sets: all(&self.stateful_sets),
            daemon_sets: all(&self.daemon_sets),
            jobs: all(&self.jobs),
            cron_jobs: self.cron_jobs.all(),
            services: all(&self.services),
            ingresses: self.ingresses.all(),
            network_policies: all(&self.network_policies),
            service_accounts: all(&self.service_accounts),
            roles: all(&self.roles),
            cluster_roles: all(&self.cluster_roles),
            role_bindings: all(&self.role_bindings),
            cluster_role_bindings: all(&self.cluster_role_bindings),
            secrets: self.secrets.state().iter().map(|s| s.metadata.clone()).collect(),
            unlisted,
        }
    }
}

impl Drop for ClusterWatch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

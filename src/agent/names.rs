//! Names for the agent's events: container names and images from the engines (Docker, Podman;
//! the same sockets the console finds) and, on a Kubernetes node, pod namespace and name and
//! container names from the API server (the node's pods, by the pod UID in the cgroup path and
//! the container id in the pod's status). Refreshed in the background, so an event is never held
//! up by an API call; what no source knows keeps its ids only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::attribution::ContainerRef;

/// How often the sources are asked again (a container started since shows its name after this).
const REFRESH: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub image: String,
    /// What the kubelet (exec probes) or the engine (a healthcheck) runs in it by itself.
    pub probes: Vec<super::probes::Command>,
    /// The engine's labels of the container (a pod's labels are the pod's, [`ContainerNames::pod_labels`]).
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Known {
    /// By full container id.
    containers: HashMap<String, Named>,
    /// Pod UID → (namespace, name).
    pods: HashMap<String, (String, String)>,
    /// Pod UID → the workload that owns it, `Kind/name` (a ReplicaSet's pods: its Deployment).
    owners: HashMap<String, String>,
    /// Address → the group (as learning names it) of the container or pod that holds it.
    addresses: HashMap<IpAddr, String>,
    /// Pod UID → the pod's labels.
    labels: HashMap<String, std::collections::BTreeMap<String, String>>,
}

pub struct ContainerNames {
    engines: Arc<RwLock<Known>>,
    cluster: Arc<RwLock<Known>>,
    /// Every pod's addresses in the cluster (not only this node's), by address.
    cluster_addresses: Arc<RwLock<HashMap<IpAddr, String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Asks the engines again now (a container nobody has named yet was seen).
    nudge: Arc<tokio::sync::Notify>,
    /// How many times the engines have been asked.
    engine_passes: Arc<std::sync::atomic::AtomicU64>,
}

/// The id in a pod status's `containerID` (`containerd://ID`, `cri-o://ID`, `docker://ID`).
fn container_id(status_id: &str) -> &str {
    status_id.split_once("://").map_or(status_id, |(_, id)| id)
}

/// What a list of a node's pods says about its pods and containers.
fn known_from_pods(pods: &[Pod]) -> Known {
    let mut known = Known::default();
    for pod in pods {
        let mut probes = super::probes::of_pod(pod);
        let (Some(uid), Some(namespace), Some(name)) =
            (pod.metadata.uid.clone(), pod.metadata.namespace.clone(), pod.metadata.name.clone())
        else {
            continue;
        };
        let statuses = pod
            .status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten().chain(s.init_container_statuses.iter().flatten()));
        for status in statuses {
            if let Some(id) = status.container_id.as_deref() {
                known.containers.insert(
                    container_id(id).to_string(),
                    Named {
                        name: status.name.clone(),
                        image: status.image.clone(),
                        probes: probes.remove(&status.name).unwrap_or_default(),
                        labels: Default::default(),
                    },
                );
            }
        }
        if let Some(owner) = owner_of(pod) {
            known.owners.insert(uid.clone(), owner);
        }
        known.labels.insert(uid.clone(), pod.metadata.labels.clone().unwrap_or_default());
        known.pods.insert(uid, (namespace, name));
    }
    known
}

/// What an engine's inspect says that its list does not.
struct Inspected {
    probes: Vec<super::probes::Command>,
    addresses: Vec<IpAddr>,
}

impl Inspected {
    fn of(detail: &crate::engine::ContainerDetail) -> Self {
        Self {
            probes: super::probes::of_healthcheck(&detail.healthcheck).into_iter().collect(),
            addresses: detail.addresses.iter().map(|a| a.to_canonical()).collect(),
        }
    }
}

/// The group (`namespace/Kind/name`, as learning names it) a pod's addresses belong to, and
/// those addresses: none for a pod on the host's network (its address is the node's) or one
/// that has ended (its address is given to others).
fn pod_addresses(pod: &Pod) -> Option<(String, Vec<IpAddr>)> {
    let namespace = pod.metadata.namespace.as_deref()?;
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        return None;
    }
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let mut addresses: Vec<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .chain(status.pod_ip.as_deref())
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    addresses.sort();
    addresses.dedup();
    let group = match owner_of(pod) {
        Some(owner) => format!("{namespace}/{owner}"),
        None => format!("{namespace}/Pod/{}", pod.metadata.name.as_deref()?),
    };
    (!addresses.is_empty()).then_some((group, addresses))
}

/// The workload a pod belongs to, `Kind/name`: its controller, and for a ReplicaSet made by a
/// Deployment (its name is the Deployment's plus the pod-template-hash label) the Deployment.
fn owner_of(pod: &Pod) -> Option<String> {
    let owner = pod.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true))?;
    if owner.kind == "ReplicaSet" {
        let hash = pod.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash"));
        if let Some(deployment) = hash.and_then(|h| owner.name.strip_suffix(h.as_str())?.strip_suffix('-')) {
            return Some(format!("Deployment/{deployment}"));
        }
    }
    Some(format!("{}/{}", owner.kind, owner.name))
}

impl ContainerNames {
    /// Starts asking the engines behind `sockets` (those that exist now or later). Must run
    /// inside a tokio runtime.
    pub fn start(sockets: Vec<PathBuf>) -> Self {
        let engines: Arc<RwLock<Known>> = Arc::default();
        let shared = Arc::clone(&engines);
        let nudge = Arc::new(tokio::sync::Notify::new());
        let engine_passes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (nudged, passes) = (Arc::clone(&nudge), Arc::clone(&engine_passes));
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(REFRESH);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Per engine: one that fails to answer keeps what it said last, so names (and the
            // policy rules that use them) do not come and go with a timeout.
            let mut by_engine: HashMap<PathBuf, HashMap<String, Named>> = HashMap::new();
            // Healthchecks and addresses by container id: asked once per running container (a
            // list does not say them).
            let mut inspected: HashMap<String, Inspected> = HashMap::new();
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = nudged.notified() => {}
                }
                let present = crate::engine::existing_sockets(&sockets);
                by_engine.retain(|socket, _| present.contains(socket));
                for socket in present {
                    if let Ok(containers) = crate::engine::containers(&socket).await {
                        let mut named = HashMap::new();
                        for c in containers {
                            let running = c.state == "running";
                            if running && !inspected.contains_key(&c.id) {
                                // A failed inspect is asked again on the next pass.
                                if let Ok(detail) = crate::engine::inspect(&socket, &c.id).await {
                                    inspected.insert(c.id.clone(), Inspected::of(&detail));
                                }
                            }
                            if !running {
                                // Its addresses go with it (and a restart is asked again).
                                inspected.remove(&c.id);
                            }
                            let probes = inspected.get(&c.id).map(|i| i.probes.clone()).unwrap_or_default();
                            named.insert(c.id, Named { name: c.name, image: c.image, probes, labels: c.labels });
                        }
                        by_engine.insert(socket, named);
                    }
                }
                inspected.retain(|id, _| by_engine.values().any(|named| named.contains_key(id)));
                let addresses = by_engine
                    .values()
                    .flatten()
                    .filter_map(|(id, named)| Some((inspected.get(id)?, named)))
                    .flat_map(|(i, named)| i.addresses.iter().map(|a| (*a, format!("local/{}", named.image))))
                    .collect();
                let found = Known {
                    containers: by_engine
                        .values()
                        .flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())))
                        .collect(),
                    pods: HashMap::new(),
                    owners: HashMap::new(),
                    addresses,
                    labels: HashMap::new(),
                };
                if let Ok(mut known) = shared.write() {
                    *known = found;
                }
                passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        Self {
            engines,
            cluster: Arc::default(),
            cluster_addresses: Arc::default(),
            tasks: vec![task],
            nudge,
            engine_passes,
        }
    }

    /// Waits (at most `within`) until the engines have answered once.
    pub async fn ready(&self, within: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.engine_passes.load(std::sync::atomic::Ordering::Relaxed) == 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Asks the engines again now rather than at the next refresh (at most one extra pass
    /// waits, however often it is called).
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }

    /// Also asks the API server for the pods of `node` (the agent's DaemonSet gives it the
    /// node's name and a ServiceAccount that may list pods). A failed list keeps what the last
    /// one said.
    pub fn with_cluster(mut self, client: kube::Client, node: String) -> Self {
        self.watch_pod_addresses(client.clone());
        let shared = Arc::clone(&self.cluster);
        self.tasks.push(tokio::spawn(async move {
            let pods: Api<Pod> = Api::all(client);
            let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
            let mut every = tokio::time::interval(REFRESH);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut reported = false;
            loop {
                every.tick().await;
                match pods.list(&params).await {
                    Ok(list) => {
                        if let Ok(mut known) = shared.write() {
                            *known = known_from_pods(&list.items);
                        }
                    }
                    Err(err) if !reported => {
                        crate::say!("picket: listing the pods of node {node}: {err} (events keep pod UIDs only)");
                        reported = true;
                    }
                    Err(_) => {}
                }
            }
        }));
        self
    }

    /// Watches every pod of the cluster for its addresses (what group a peer address is): one
    /// watch, kept up to date by its events, not a list per refresh.
    fn watch_pod_addresses(&mut self, client: kube::Client) {
        use futures::StreamExt as _;
        use kube::runtime::{WatchStreamExt as _, watcher};
        let shared = Arc::clone(&self.cluster_addresses);
        self.tasks.push(tokio::spawn(async move {
            let pods: Api<Pod> = Api::all(client);
            let mut events = watcher(pods, watcher::Config::default().page_size(500)).default_backoff().boxed();
            let mut by_pod: HashMap<String, (String, Vec<IpAddr>)> = HashMap::new();
            let mut listing: Option<HashMap<String, (String, Vec<IpAddr>)>> = None;
            let mut reported = false;
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(err) => {
                        if !std::mem::replace(&mut reported, true) {
                            crate::say!("picket: watching the cluster's pods: {err} (peers stay addresses)");
                        }
                        continue;
                    }
                };
                let uid = |pod: &Pod| pod.metadata.uid.clone().unwrap_or_default();
                let Ok(mut addresses) = shared.write() else { return };
                match event {
                    watcher::Event::Init => listing = Some(HashMap::new()),
                    watcher::Event::InitApply(pod) => {
                        if let (Some(listing), Some(found)) = (listing.as_mut(), pod_addresses(&pod)) {
                            listing.insert(uid(&pod), found);
                        }
                    }
                    watcher::Event::InitDone => {
                        by_pod = listing.take().unwrap_or_default();
                        *addresses = by_pod
                            .values()
                            .flat_map(|(group, ips)| ips.iter().map(|ip| (*ip, group.clone())))
                            .collect();
                    }
                    watcher::Event::Apply(pod) | watcher::Event::Delete(pod) => {
                        let deleted = pod.metadata.deletion_timestamp.is_some();
                        let uid = uid(&pod);
                        if let Some((_, old)) = by_pod.remove(&uid) {
                            old.iter().for_each(|ip| {
                                addresses.remove(ip);
                            });
                        }
                        let found = if deleted { None } else { pod_addresses(&pod) };
                        if let Some((group, ips)) = found {
                            ips.iter().for_each(|ip| {
                                addresses.insert(*ip, group.clone());
                            });
                            by_pod.insert(uid, (group, ips));
                        }
                    }
                }
            }
        }));
    }

    /// The group whose container or pod holds `address` now (the cluster's answer first).
    pub fn group_of_address(&self, address: IpAddr) -> Option<String> {
        let address = address.to_canonical();
        let cluster = self.cluster_addresses.read().ok()?.get(&address).cloned();
        cluster.or_else(|| self.engines.read().ok()?.addresses.get(&address).cloned())
    }

    /// Every group's addresses now, for rules naming peers by group.
    pub fn peer_addresses(&self) -> super::policy::PeerAddresses {
        let mut by_group = super::policy::PeerAddresses::default();
        let mut add = |address: &IpAddr, group: &String| by_group.entry(group.clone()).or_default().push(*address);
        if let Ok(engines) = self.engines.read() {
            engines.addresses.iter().for_each(|(a, g)| add(a, g));
        }
        if let Ok(cluster) = self.cluster_addresses.read() {
            cluster.iter().for_each(|(a, g)| add(a, g));
        }
        by_group.values_mut().for_each(|a| a.sort());
        by_group
    }

    /// The container's name and image, the cluster's answer first.
    pub fn get(&self, id: &str) -> Option<Named> {
        let from = |source: &Arc<RwLock<Known>>| source.read().ok()?.containers.get(id).cloned();
        from(&self.cluster).or_else(|| from(&self.engines))
    }

    /// Fills in what the sources know of a container: name, image, pod namespace and name.
    pub fn name(&self, container: Option<ContainerRef>) -> Option<ContainerRef> {
        let mut container = container?;
        match self.get(&container.id) {
            Some(named) => {
                container.name = Some(named.name);
                container.image = Some(named.image);
            }
            // A container started since the last pass: its next events get its name sooner.
            None => self.nudge(),
        }
        if let Some(uid) = &container.pod_uid
            && let Some((namespace, name)) = self.cluster.read().ok().and_then(|k| k.pods.get(uid).cloned())
        {
            container.pod_namespace = Some(namespace);
            container.pod_name = Some(name);
            container.pod_owner = self.cluster.read().ok().and_then(|k| k.owners.get(uid).cloned());
        }
        Some(container)
    }

    /// A pod's namespace and name by its UID, from the API server.
    pub fn pod(&self, uid: &str) -> Option<(String, String)> {
        self.cluster.read().ok()?.pods.get(uid).cloned()
    }

    /// A pod's labels by its UID, from the API server.
    pub fn pod_labels(&self, uid: &str) -> Option<std::collections::BTreeMap<String, String>> {
        self.cluster.read().ok()?.labels.get(uid).cloned()
    }

    /// The workload owning a pod, `Kind/name`, by the pod's UID.
    pub fn owner(&self, uid: &str) -> Option<String> {
        self.cluster.read().ok()?.owners.get(uid).cloned()
    }

    /// Every container the sources know, by id.
    pub fn all(&self) -> HashMap<String, Named> {
        let mut all = self.engines.read().map(|k| k.containers.clone()).unwrap_or_default();
        if let Ok(cluster) = self.cluster.read() {
            all.extend(cluster.containers.clone());
        }
        all
    }
}

impl Drop for ContainerNames {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pods_addresses_belong_to_its_workload_unless_it_shares_the_hosts() {
        let pod = |host_network: bool, phase: &str| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": { "name": "db-0", "namespace": "shop", "uid": "u1",
                    "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "s", "controller": true }] },
                "spec": { "hostNetwork": host_network, "containers": [{ "name": "db" }] },
                "status": { "phase": phase, "podIP": "10.244.1.7", "podIPs": [{ "ip": "10.244.1.7" }, { "ip": "fd00::7" }] }
            }))
            .unwrap()
        };
        let (group, addresses) = pod_addresses(&pod(false, "Running")).expect("addresses");
        assert_eq!(group, "shop/StatefulSet/db");
        assert_eq!(addresses, ["10.244.1.7".parse::<IpAddr>().unwrap(), "fd00::7".parse().unwrap()]);
        assert_eq!(pod_addresses(&pod(true, "Running")), None, "the node's address is no pod's");
        assert_eq!(pod_addresses(&pod(false, "Succeeded")), None, "an ended pod's address is given to others");
    }

    #[test]
    fn pod_statuses_name_pods_and_containers() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "api-5c8f9d7b6-x2x9z", "namespace": "payments", "uid": "0d7f3c2a-5b1e-4c9d-8e7f-6a5b4c3d2e1f",
                "labels": { "pod-template-hash": "5c8f9d7b6" },
                "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-5c8f9d7b6", "uid": "u", "controller": true }] },
            "spec": { "containers": [{ "name": "api",
                "livenessProbe": { "exec": { "command": ["/bin/grpc_health_probe", "-addr=:8080"] } } }] },
            "status": {
                "containerStatuses": [{
                    "name": "api", "image": "registry.example.com/payments/api:2.4.1", "imageID": "", "ready": true,
                    "restartCount": 0, "containerID": "containerd://4f1c0a9e2b7d4e6f8a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7"
                }],
                "initContainerStatuses": [{
                    "name": "migrate", "image": "registry.example.com/payments/migrate:2.4.1", "imageID": "", "ready": false,
                    "restartCount": 0, "containerID": "cri-o://aaaa"
                }]
            }
        }))
        .unwrap();
        let known = known_from_pods(&[pod]);
        assert_eq!(
            known.pods.get("0d7f3c2a-5b1e-4c9d-8e7f-6a5b4c3d2e1f"),
            Some(&("payments".to_string(), "api-5c8f9d7b6-x2x9z".to_string()))
        );
        assert_eq!(known.owners["0d7f3c2a-5b1e-4c9d-8e7f-6a5b4c3d2e1f"], "Deployment/api");
        let api = &known.containers["4f1c0a9e2b7d4e6f8a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7"];
        assert_eq!((api.name.as_str(), api.image.as_str()), ("api", "registry.example.com/payments/api:2.4.1"));
        assert_eq!(api.probes, [["/bin/grpc_health_probe", "-addr=:8080"]]);
        assert_eq!(known.containers["aaaa"].name, "migrate");
        assert!(known.containers["aaaa"].probes.is_empty());
    }
}

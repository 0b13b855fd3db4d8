//! A Kubernetes API server for tests, through kube's `tower-test` mock service: it answers list
//! requests (with `limit`/`continue` paging, and metadata-only lists) from realistic object JSON
//! (`tests/fixtures/k8s-cluster/objects.json`), and can refuse kinds (403), reject the
//! credentials (401) or never answer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

pub fn fixture_objects() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/k8s-cluster/objects.json");
    let list: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture is JSON");
    list["items"].as_array().expect("items").clone()
}

/// The collection path of an object's kind: `/api/v1/pods`, `/apis/apps/v1/deployments`.
pub fn collection_path(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind");
    let plural = match kind {
        "NetworkPolicy" => "networkpolicies".to_string(),
        "Ingress" => "ingresses".to_string(),
        other => format!("{}s", other.to_ascii_lowercase()),
    };
    if api_version.contains('/') {
        format!("/apis/{api_version}/{plural}")
    } else {
        format!("/api/{api_version}/{plural}")
    }
}

#[derive(Default, Clone)]
pub struct Behaviour {
    /// Collection paths answered with 403.
    pub forbidden: Vec<String>,
    /// Collection paths the server does not serve (404), as an older server has no
    /// `batch/v1` CronJob.
    pub not_served: Vec<String>,
    /// Collection paths answered with 503 (an aggregated API that is down).
    pub failing: Vec<String>,
    /// Every request answered with 401.
    pub unauthorized: bool,
    /// Requests are taken and never answered.
    pub silent: bool,
    /// Watch events (`{"type": "ADDED", "object": …}`) the first watch of a collection path
    /// gets before its stream ends; later watches are held open without events.
    pub watch_events: BTreeMap<String, Vec<Value>>,
}

pub struct MockApiServer {
    pub client: kube::Client,
    /// Requests per path, in order.
    pub requests: Arc<Mutex<BTreeMap<String, usize>>>,
    /// Every request's path and query, in order.
    pub uris: Arc<Mutex<Vec<String>>>,
    /// Every PATCH (server-side apply): path and query, and the body.
    pub patches: Arc<Mutex<Vec<(String, Value)>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl MockApiServer {
    pub fn start(objects: Vec<Value>, behaviour: Behaviour) -> Self {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let mut collections: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for object in objects {
            collections.entry(collection_path(&object)).or_default().push(object);
        }
        let requests = Arc::new(Mutex::new(BTreeMap::new()));
        let uris = Arc::new(Mutex::new(Vec::new()));
        let patches = Arc::new(Mutex::new(Vec::new()));
        let (seen, seen_uris, seen_patches) = (requests.clone(), uris.clone(), patches.clone());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            let mut watched = std::collections::BTreeSet::new();
            while let Some((request, send)) = handle.next_request().await {
                let path = request.uri().path().to_string();
                *seen.lock().expect("lock").entry(path.clone()).or_insert(0) += 1;
                seen_uris.lock().expect("lock").push(request.uri().to_string());
                if behaviour.silent {
                    held.push(send);
                    continue;
                }
                if request.method() == http::Method::PATCH {
                    // Server-side apply: the object comes back as stored, unless its kind is refused.
                    let uri = request.uri().to_string();
                    let bytes = request.into_body().collect_bytes().await.expect("patch body");
                    let object: Value = serde_json::from_slice(&bytes).expect("the apply body is JSON");
                    seen_patches.lock().expect("lock").push((uri, object.clone()));
                    let collection = collection_path(&object);
                    let (status, body) = if behaviour.forbidden.contains(&collection) {
                        let kind = object["kind"].as_str().unwrap_or_default().to_ascii_lowercase();
                        let message = format!(
                            "{kind}s.apps \"{}\" is forbidden: User \"dev\" cannot patch resource \"{kind}s\" in API group \"apps\"",
                            object["metadata"]["name"].as_str().unwrap_or_default()
                        );
                        (StatusCode::FORBIDDEN, status_json(403, "Forbidden", &message))
                    } else {
                        let mut stored = object;
                        stored["metadata"]["resourceVersion"] = json!("1");
                        (StatusCode::OK, stored)
                    };
                    send.send_response(json_response(status, &body));
                    continue;
                }
                if request.uri().query().unwrap_or_default().split('&').any(|kv| kv == "watch=true") {
                    match behaviour.watch_events.get(&path).filter(|_| watched.insert(path.clone())) {
                        Some(events) => {
                            let mut body = Vec::new();
                            for event in events {
                                body.extend(serde_json::to_vec(event).expect("json"));
                                body.push(b'\n');
                            }
                            let response = Response::builder()
                                .status(StatusCode::OK)
                                .header("content-type", "application/json")
                                .body(Body::from(body))
                                .expect("response");
                            send.send_response(response);
                        }
                        None => held.push(send),
                    }
                    continue;
                }
                let query: BTreeMap<String, String> = request
                    .uri()
                    .query()
                    .unwrap_or_default()
                    .split('&')
                    .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                    .collect();
                let metadata_only = request
                    .headers()
                    .get("accept")
                    .and_then(|a| a.to_str().ok())
                    .is_some_and(|a| a.contains("as=PartialObjectMetadataList"));
                let (status, body) = if behaviour.unauthorized {
                    (StatusCode::UNAUTHORIZED, status_json(401, "Unauthorized", "Unauthorized"))
                } else if let Some(found) =
                    discovery(&path, &behaviour.not_served).filter(|_| !behaviour.failing.contains(&path))
                {
                    found
                } else if behaviour.not_served.contains(&path) {
                    (
                        StatusCode::NOT_FOUND,
                        status_json(404, "NotFound", "the server could not find the requested resource"),
                    )
                } else if behaviour.failing.contains(&path) {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        status_json(503, "ServiceUnavailable", "the server is currently unable to handle the request"),
                    )
                } else if behaviour.forbidden.contains(&path) {
                    let resource = path.rsplit('/').next().unwrap_or_default();
                    let message = format!(
                        "{resource} is forbidden: User \"system:serviceaccount:audit:picket\" cannot list resource \"{resource}\" in API group \"\" at the cluster scope"
                    );
                    (StatusCode::FORBIDDEN, status_json(403, "Forbidden", &message))
                } else if let Some(object) = single_object(&collections, &path) {
                    match object {
                        Some(object) => (StatusCode::OK, object),
                        None => (StatusCode::NOT_FOUND, status_json(404, "NotFound", &format!("{path} not found"))),
                    }
                } else {
                    let (collection, namespace) = namespaced_collection(&path);
                    let selector = query.get("labelSelector").map(|s| s.replace("%3D", "=").replace("%2F", "/"));
                    // References: only the page asked for is cloned (a 10,000-pod list in pages
                    // of 500 must not copy every pod for every page).
                    let items: Vec<&Value> = collections
                        .get(&collection)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .filter(|o| namespace.as_deref().is_none_or(|ns| o["metadata"]["namespace"] == ns))
                        .filter(|o| selector.as_deref().is_none_or(|s| labels_match(o, s)))
                        .collect();
                    (StatusCode::OK, list_json(&collection, &items, &query, metadata_only))
                };
                send.send_response(json_response(status, &body));
            }
        });
        Self { client: kube::Client::new(service, "default"), requests, uris, patches, _task: task }
    }

    pub fn requests_to(&self, path: &str) -> usize {
        self.requests.lock().expect("lock").get(path).copied().unwrap_or(0)
    }
}

/// The resources each group version serves, as a server of today has them.
const SERVED: &[(&str, &[(&str, &str)])] = &[
    (
        "/api/v1",
        &[
            ("namespaces", "Namespace"),
            ("nodes", "Node"),
            ("pods", "Pod"),
            ("services", "Service"),
            ("serviceaccounts", "ServiceAccount"),
            ("secrets", "Secret"),
            ("pods/log", "Pod"),
        ],
    ),
    (
        "/apis/apps/v1",
        &[
            ("deployments", "Deployment"),
            ("replicasets", "ReplicaSet"),
            ("statefulsets", "StatefulSet"),
            ("daemonsets", "DaemonSet"),
        ],
    ),
    ("/apis/batch/v1", &[("jobs", "Job"), ("cronjobs", "CronJob")]),
    ("/apis/batch/v1beta1", &[("cronjobs", "CronJob")]),
    ("/apis/networking.k8s.io/v1", &[("ingresses", "Ingress"), ("networkpolicies", "NetworkPolicy")]),
    ("/apis/networking.k8s.io/v1beta1", &[("ingresses", "Ingress")]),
    ("/apis/extensions/v1beta1", &[("ingresses", "Ingress")]),
    (
        "/apis/rbac.authorization.k8s.io/v1",
        &[
            ("roles", "Role"),
            ("clusterroles", "ClusterRole"),
            ("rolebindings", "RoleBinding"),
            ("clusterrolebindings", "ClusterRoleBinding"),
        ],
    ),
];

/// A discovery request (`/api/v1`, `/apis/GROUP/VERSION`): the resources served there, less
/// the collection paths the behaviour says are not served. None when `path` is no discovery
/// path.
fn discovery(path: &str, not_served: &[String]) -> Option<(StatusCode, Value)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let group_version = match parts.as_slice() {
        ["api", version] => version.to_string(),
        ["apis", group, version] => format!("{group}/{version}"),
        _ => return None,
    };
    let Some((_, resources)) = SERVED.iter().find(|(p, _)| *p == path) else {
        return Some((
            StatusCode::NOT_FOUND,
            status_json(404, "NotFound", "the server could not find the requested resource"),
        ));
    };
    let resources: Vec<Value> = resources
        .iter()
        .filter(|(plural, _)| !not_served.contains(&format!("{path}/{plural}")))
        .map(|(plural, kind)| {
            json!({ "name": plural, "singularName": "", "namespaced": true, "kind": kind, "verbs": ["get", "list", "watch"] })
        })
        .collect();
    Some((
        StatusCode::OK,
        json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources }),
    ))
}

/// A GET of one namespaced object (`/api/v1/namespaces/NS/secrets/NAME`): Some(found or not),
/// None when the path is no such request.
fn single_object(collections: &BTreeMap<String, Vec<Value>>, path: &str) -> Option<Option<Value>> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (prefix, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => (format!("/api/{version}"), rest),
        ["apis", group, version, rest @ ..] => (format!("/apis/{group}/{version}"), rest),
        _ => return None,
    };
    let ["namespaces", namespace, plural, name] = rest else { return None };
    let collection = collections.get(&format!("{prefix}/{plural}"))?;
    Some(
        collection.iter().find(|o| o["metadata"]["namespace"] == *namespace && o["metadata"]["name"] == *name).cloned(),
    )
}

/// `/api/v1/namespaces/NS/pods` → (`/api/v1/pods`, Some(NS)); other paths as they are.
fn namespaced_collection(path: &str) -> (String, Option<String>) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", version, "namespaces", namespace, plural] => {
            (format!("/api/{version}/{plural}"), Some(namespace.to_string()))
        }
        ["apis", group, version, "namespaces", namespace, plural] => {
            (format!("/apis/{group}/{version}/{plural}"), Some(namespace.to_string()))
        }
        _ => (path.to_string(), None),
    }
}

/// Equality selectors only (`a=b,c=d`), as picket sends them.
fn labels_match(object: &Value, selector: &str) -> bool {
    selector.split(',').all(|term| match term.split_once('=') {
        Some((key, value)) => object["metadata"]["labels"][key] == value,
        None => false,
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).expect("json")))
        .expect("response")
}

fn status_json(code: u16, reason: &str, message: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code })
}

fn list_json(path: &str, items: &[&Value], query: &BTreeMap<String, String>, metadata_only: bool) -> Value {
    let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(usize::MAX);
    let start: usize =
        query.get("continue").and_then(|c| c.strip_prefix("offset-")).and_then(|o| o.parse().ok()).unwrap_or(0);
    let end = start.saturating_add(limit).min(items.len());
    let page: Vec<Value> = items[start.min(items.len())..end]
        .iter()
        .map(|item| {
            if metadata_only {
                json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": item["metadata"] })
            } else {
                (*item).clone()
            }
        })
        .collect();
    let mut metadata = json!({ "resourceVersion": "12345" });
    if end < items.len() {
        metadata["continue"] = json!(format!("offset-{end}"));
        metadata["remainingItemCount"] = json!(items.len() - end);
    }
    let (api_version, kind) = if metadata_only {
        ("meta.k8s.io/v1".to_string(), "PartialObjectMetadataList".to_string())
    } else {
        let first_kind = items.first().and_then(|i| i["kind"].as_str()).unwrap_or("Unknown").to_string();
        let version = path.trim_start_matches("/apis/").trim_start_matches("/api/");
        let version = version.rsplit_once('/').map(|(v, _)| v).unwrap_or(version).to_string();
        (version, format!("{first_kind}List"))
    };
    json!({ "apiVersion": api_version, "kind": kind, "metadata": metadata, "items": page })
}

//! Cluster inventory and cluster checks. By default against a mock API server (kube's
//! `tower-test`) serving realistic objects from tests/fixtures/k8s-cluster/objects.json; with
//! `PICKET_E2E_KUBECONFIG=/path/to/kubeconfig` the same checks run against that live cluster,
//! after the fixture objects are applied to it (and deleted afterwards).

mod common;

use std::time::Duration;

use common::kube_mock::{Behaviour, MockApiServer, collection_path, fixture_objects};
use picket::bench::{BenchReport, Status};
use picket::cluster::inventory::{self, ClusterError};

fn status_of(report: &BenchReport, id: &str, subject: &str) -> Option<Status> {
    let check = report.check(id).unwrap_or_else(|| panic!("no check {id}"));
    check.results.iter().find(|r| r.subject == subject).map(|r| r.status)
}

fn expect(report: &BenchReport, id: &str, subject: &str, status: Status) {
    let check = report.check(id).unwrap_or_else(|| panic!("no check {id}"));
    assert_eq!(status_of(report, id, subject), Some(status), "{id} on {subject}: {:#?}", check.results);
}

/// What the fixture objects must give wherever they run.
fn assert_fixture_findings(report: &BenchReport) {
    use Status::{Fail, Pass, Warn};
    // RBAC.
    expect(report, "5.1.1", "ClusterRoleBinding ops-admins", Fail);
    assert_eq!(status_of(report, "5.1.1", "ClusterRoleBinding cluster-admin"), None, "Kubernetes' own binding");
    expect(report, "5.1.2", "ClusterRoleBinding everyone-reads-secrets", Fail);
    expect(report, "5.1.2", "ClusterRoleBinding ops-admins", Warn);
    expect(report, "5.1.3", "ClusterRole ci-deployer", Fail);
    expect(report, "5.1.3", "ClusterRole secret-reader", Pass);
    assert_eq!(status_of(report, "5.1.3", "ClusterRole cluster-admin"), None, "built-in roles use wildcards by design");
    expect(report, "5.1.4", "ClusterRoleBinding ci", Warn);
    expect(report, "5.1.5", "ServiceAccount payments/default", Pass);
    expect(report, "5.1.5", "ServiceAccount legacy/default", Fail);
    expect(report, "5.1.8", "ClusterRoleBinding support-impersonation", Warn);
    expect(report, "PKT-RBAC.1", "RoleBinding legacy/dev-exec", Warn);
    expect(report, "PKT-RBAC.2", "ClusterRoleBinding everyone-reads-secrets", Fail);
    assert_eq!(status_of(report, "PKT-RBAC.2", "ClusterRoleBinding system:basic-user"), None);
    // Pod security.
    for id in ["5.2.2", "5.2.3", "5.2.5", "5.2.7", "5.2.11", "5.4.1", "PSS-B.2", "PSS-B.3", "PSS-B.5"] {
        expect(report, id, "Pod default/debug-shell", Fail);
    }
    for id in [
        "5.2.2", "5.2.3", "5.2.5", "5.2.6", "5.2.7", "5.2.8", "5.2.9", "5.2.11", "5.2.12", "5.4.1", "5.6.2", "5.6.3",
        "5.1.6",
    ] {
        expect(report, id, "Deployment payments/api", Pass);
    }
    for id in [
        "PSS-B.1", "PSS-B.2", "PSS-B.3", "PSS-B.4", "PSS-B.5", "PSS-B.7", "PSS-B.10", "PSS-R.1", "PSS-R.2", "PSS-R.3",
        "PSS-R.4", "PSS-R.5", "PSS-R.6",
    ] {
        expect(report, id, "Deployment payments/api", Pass);
    }
    expect(report, "5.2.2", "DaemonSet kube-system/kube-proxy", Fail);
    expect(report, "5.2.11", "CronJob legacy/backup", Fail);
    expect(report, "PSS-B.10", "CronJob legacy/backup", Fail);
    expect(report, "5.2.12", "Deployment legacy/web", Fail);
    expect(report, "5.2.9", "Deployment legacy/web", Fail);
    expect(report, "PSS-B.4", "Deployment legacy/web", Fail);
    expect(report, "PSS-B.7", "Deployment legacy/web", Fail);
    expect(report, "5.4.1", "Deployment legacy/web", Fail);
    expect(report, "5.6.4", "Pod default/debug-shell", Fail);
    // Owned objects are judged through their owner only.
    let subjects: Vec<&str> =
        report.check("5.2.2").expect("5.2.2").results.iter().map(|r| r.subject.as_str()).collect();
    assert!(!subjects.iter().any(|s| s.contains("api-7d9f8b6c4") || s.contains("backup-29000000")), "{subjects:?}");
    // Namespaces.
    expect(report, "5.3.2", "Namespace payments", Pass);
    expect(report, "5.3.2", "Namespace legacy", Fail);
    assert_eq!(status_of(report, "5.3.2", "Namespace kube-system"), None);
    expect(report, "5.2.1", "cluster", Pass);
}

#[tokio::test]
async fn cluster_checks_on_realistic_objects() {
    if let Ok(kubeconfig) = std::env::var("PICKET_E2E_KUBECONFIG") {
        return live::run(&kubeconfig, assert_fixture_findings).await;
    }
    let server = MockApiServer::start(fixture_objects(), Behaviour::default());
    let inv = inventory::load(&server.client, "mock").await.expect("inventory");
    assert_eq!(inv.namespaces.len(), 4);
    assert_eq!(inv.pods.len(), 2);
    assert_eq!(inv.secrets.len(), 1);
    assert_eq!(inv.secrets[0].name.as_deref(), Some("db-credentials"));
    assert!(inv.unlisted.is_empty());
    let report = picket::bench::k8s::judge(&inv);
    assert_fixture_findings(&report);
    assert_eq!(report.checks.len(), 34 + 11 + 6 + 2);

    // The shipped custom checks (CEL) on the same objects.
    let custom = picket::bench::k8s::custom::shipped().expect("shipped checks");
    let report = picket::bench::k8s::judge_with(&inv, &custom);
    expect(&report, "PKT-C.1", "Deployment payments/api", Status::Pass);
    expect(&report, "PKT-C.1", "Deployment legacy/web", Status::Fail);
    expect(&report, "PKT-C.2", "Pod default/debug-shell", Status::Pass);
    expect(&report, "PKT-C.3", "Deployment legacy/web", Status::Fail);
}

#[test]
fn a_checks_dir_that_is_not_there_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["bench", "k8s", "--checks"])
        .arg(dir.path().join("chekcs"))
        .env("HOME", dir.path())
        .env_remove("KUBECONFIG")
        .output()
        .expect("picket runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chekcs") && stderr.contains("No such file"), "{stderr}");
}

#[test]
fn a_broken_custom_check_stops_bench_k8s_before_the_cluster_is_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let checks = dir.path().join("checks");
    std::fs::create_dir_all(&checks).expect("dir");
    let file = checks.join("team.yaml");
    std::fs::write(&file, "checks:\n  - id: TEAM-1\n    title: t\n    target: Namespace\n    expression: object.metadata.labels.team ==\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["bench", "k8s", "--checks"])
        .arg(&checks)
        .env("HOME", dir.path())
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("picket runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}: checks[0] (TEAM-1): expression: line 1 column", file.display())), "{stderr}");
}

#[tokio::test]
async fn lists_are_paged_and_secrets_stay_metadata() {
    let mut objects = fixture_objects();
    let template = objects.iter().find(|o| o["kind"] == "Pod").cloned().expect("a pod");
    for i in 0..1_200 {
        let mut pod = template.clone();
        pod["metadata"]["name"] = serde_json::json!(format!("load-{i}"));
        objects.push(pod);
    }
    let server = MockApiServer::start(objects, Behaviour::default());
    let inv = inventory::load(&server.client, "mock").await.expect("inventory");
    assert_eq!(inv.pods.len(), 1_202);
    assert_eq!(server.requests_to("/api/v1/pods"), 3, "pages of {}", inventory::PAGE_SIZE);
    assert_eq!(server.requests_to("/api/v1/namespaces"), 1);
    // The mock answers metadata-only requests without data; a full Secret would carry it.
    assert_eq!(server.requests_to("/api/v1/secrets"), 1);
}

#[tokio::test]
async fn a_forbidden_kind_is_reported_with_the_rbac_it_needs() {
    let behaviour = Behaviour {
        forbidden: vec!["/api/v1/secrets".into(), "/apis/rbac.authorization.k8s.io/v1/clusterroles".into()],
        ..Behaviour::default()
    };
    let server = MockApiServer::start(fixture_objects(), behaviour);
    let inv = inventory::load(&server.client, "mock").await.expect("the rest still loads");
    let needs: Vec<String> = inv.unlisted.iter().map(|f| f.needs()).collect();
    assert_eq!(
        needs,
        vec![
            "list clusterroles.rbac.authorization.k8s.io at cluster scope (forbidden)",
            "list secrets at cluster scope (forbidden)"
        ]
    );
    assert!(inv.unlisted[0].message.contains("cannot list resource"), "{:?}", inv.unlisted);
    assert_eq!(inv.pods.len(), 2);
    let report = picket::bench::k8s::judge(&inv);
    let warned = report
        .check("5.1.1")
        .expect("5.1.1")
        .results
        .iter()
        .find(|r| r.subject == "what picket could list")
        .expect("a warning");
    assert_eq!(warned.status, Status::Warn);
    assert!(warned.evidence.contains("list secrets at cluster scope"), "{warned:?}");
}

#[tokio::test]
async fn rejected_credentials_are_an_error_saying_so() {
    let server = MockApiServer::start(fixture_objects(), Behaviour { unauthorized: true, ..Behaviour::default() });
    let err = inventory::load(&server.client, "prod").await.expect_err("401");
    assert!(matches!(err, ClusterError::Unauthorized { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("context prod") && text.contains("expired"), "{text}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout_not_a_hang() {
    let server = MockApiServer::start(fixture_objects(), Behaviour { silent: true, ..Behaviour::default() });
    let started = std::time::Instant::now();
    let err = inventory::load_with(
        &server.client,
        "stuck",
        inventory::ListOptions { timeout: Duration::from_millis(300), ..Default::default() },
    )
    .await
    .expect_err("timeout");
    assert!(matches!(err, ClusterError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("context stuck: listing namespaces"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_unreachable_server_is_named() {
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\nclusters:\n- name: gone\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: u\nusers:\n- name: u\n  user:\n    token: abc\n"
    );
    let config = kube::config::Kubeconfig::from_yaml(&kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let err = inventory::load(&client, "gone").await.expect_err("refused");
    assert!(matches!(err, ClusterError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("context gone: cannot reach the API server"), "{err}");
}

#[test]
fn fixture_objects_all_map_to_listed_collections() {
    let listed = [
        "/api/v1/namespaces",
        "/api/v1/nodes",
        "/api/v1/pods",
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/daemonsets",
        "/apis/apps/v1/replicasets",
        "/apis/batch/v1/jobs",
        "/apis/batch/v1/cronjobs",
        "/api/v1/services",
        "/apis/networking.k8s.io/v1/ingresses",
        "/apis/networking.k8s.io/v1/networkpolicies",
        "/api/v1/serviceaccounts",
        "/apis/rbac.authorization.k8s.io/v1/roles",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "/apis/rbac.authorization.k8s.io/v1/rolebindings",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "/api/v1/secrets",
    ];
    for object in fixture_objects() {
        assert!(listed.contains(&collection_path(&object).as_str()), "{}", collection_path(&object));
    }
}

/// The live path: apply the fixture objects, run the checks, delete what was applied.
mod live {
    use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
    use kube::discovery::{Discovery, Scope};

    use super::*;

    pub async fn run(kubeconfig: &str, assert: fn(&BenchReport)) {
        let text = std::fs::read_to_string(kubeconfig).expect("PICKET_E2E_KUBECONFIG is readable");
        let config = kube::config::Kubeconfig::from_yaml(&text).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
        let client = kube::Client::try_from(config).expect("client");
        let discovery = Discovery::new(client.clone()).run().await.expect("discovery");
        let mut applied = Vec::new();
        // Namespaces first, then the rest; server-side apply is idempotent.
        let mut objects = fixture_objects();
        objects.sort_by_key(|o| o["kind"] != "Namespace");
        for mut object in objects {
            let kind = object["kind"].as_str().expect("kind").to_string();
            let (group, version) = match object["apiVersion"].as_str().expect("apiVersion").split_once('/') {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (String::new(), object["apiVersion"].as_str().expect("v").to_string()),
            };
            let Some((resource, caps)) = discovery
                .groups()
                .find(|g| g.name() == group)
                .and_then(|g| g.versioned_resources(&version).into_iter().find(|(r, _)| r.kind == kind))
            else {
                panic!("the cluster does not serve {kind}");
            };
            // Server-managed fields of the recorded objects cannot be applied.
            if let Some(meta) = object["metadata"].as_object_mut() {
                for field in ["uid", "resourceVersion", "creationTimestamp"] {
                    meta.remove(field);
                }
            }
            object.as_object_mut().expect("object").remove("status");
            let name = object["metadata"]["name"].as_str().expect("name").to_string();
            let namespace = object["metadata"]["namespace"].as_str().map(String::from);
            let api: Api<DynamicObject> = match (&caps.scope, &namespace) {
                (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
                _ => Api::all_with(client.clone(), &resource),
            };
            api.patch(&name, &PatchParams::apply("picket-e2e").force(), &Patch::Apply(&object))
                .await
                .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
            applied.push((api, name, kind));
        }
        let inv = inventory::load(&client, "e2e").await.expect("inventory");
        let report = picket::bench::k8s::judge(&inv);
        for (api, name, kind) in applied.iter().rev() {
            if kind == "Namespace" && ["default", "kube-system"].contains(&name.as_str()) {
                continue;
            }
            let _ = api.delete(name, &DeleteParams::default()).await;
        }
        assert(&report);
    }
}

#[test]
fn bench_k8s_names_the_context_it_cannot_reach() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: prod\n  cluster:\n    server: https://127.0.0.1:{port}\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n    user: u\n- name: staging\n  context:\n    cluster: prod\n    user: u\nusers:\n- name: u\n  user:\n    token: abc\n"
        ),
    )
    .expect("kubeconfig");
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["--context", "staging", "bench", "k8s"])
        .env("KUBECONFIG", &path)
        .output()
        .expect("picket runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("context staging: cannot reach the API server"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// The console's inventory: listed once, then kept by watches that resume where they were.
#[tokio::test]
async fn watched_inventory_lists_once_then_follows_events() {
    let mut new_pod = fixture_objects().into_iter().find(|o| o["kind"] == "Pod").expect("a pod");
    new_pod["metadata"]["name"] = serde_json::json!("added-by-watch");
    new_pod["metadata"]["resourceVersion"] = serde_json::json!("13");
    let mut behaviour =
        Behaviour { forbidden: vec!["/apis/rbac.authorization.k8s.io/v1/clusterroles".into()], ..Behaviour::default() };
    behaviour
        .watch_events
        .insert("/api/v1/pods".into(), vec![serde_json::json!({ "type": "ADDED", "object": new_pod })]);
    let server = MockApiServer::start(fixture_objects(), behaviour);
    let watch = picket::cluster::watch::ClusterWatch::start(server.client.clone(), "mock");
    assert!(watch.ready(Duration::from_secs(10)).await, "every kind listed or failing");
    let mut changes = watch.changes();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if watch.snapshot().pods.iter().any(|p| p.metadata.name.as_deref() == Some("added-by-watch")) {
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "the ADDED event reached the store");
    let inv = watch.snapshot();
    assert_eq!(inv.pods.len(), 3);
    assert_eq!(inv.namespaces.len(), 4);
    assert_eq!(inv.secrets.len(), 1);
    assert_eq!(
        inv.unlisted.iter().map(|f| f.resource.as_str()).collect::<Vec<_>>(),
        vec!["clusterroles.rbac.authorization.k8s.io"]
    );
    // Let the watcher come back after the event stream ended.
    let resumed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let pod_watches: Vec<String> = server
                .uris
                .lock()
                .expect("lock")
                .iter()
                .filter(|u| u.starts_with("/api/v1/pods?") && u.contains("watch=true"))
                .cloned()
                .collect();
            if pod_watches.len() >= 2 {
                return pod_watches;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the watch is restarted");
    assert!(resumed[1].contains("resourceVersion=13"), "resumes from the last version seen: {resumed:?}");
    let pod_lists = server
        .uris
        .lock()
        .expect("lock")
        .iter()
        .filter(|u| u.starts_with("/api/v1/pods?") && !u.contains("watch=true"))
        .count();
    assert_eq!(pod_lists, 1, "no re-list");
    // The checks run on a snapshot like on a listed inventory.
    let report = picket::bench::k8s::judge(&inv);
    expect(&report, "5.2.2", "Pod default/debug-shell", Status::Fail);
    expect(&report, "5.2.2", "Pod default/added-by-watch", Status::Fail);
}

/// The console's deploy key: the agent's Namespace, ServiceAccount, RBAC (with the Role that
/// lets it publish its node's baselines) and DaemonSet are
/// server-side applied in that order, as field manager `picket`, with the objects
/// `picket agent manifest` prints; a refused kind stops the deployment naming the object.
#[tokio::test]
async fn the_agent_is_deployed_with_server_side_apply() {
    let server = MockApiServer::start(Vec::new(), Behaviour::default());
    let applied =
        picket::agent::deploy::deploy_agent(&server.client, "mock", "picket-system", "registry.example.com/picket:1")
            .await
            .expect("applied");
    assert_eq!(
        applied,
        [
            "Namespace picket-system",
            "ServiceAccount picket-system/picket-agent",
            "ClusterRole picket-agent",
            "ClusterRoleBinding picket-agent",
            "Role picket-system/picket-agent-baselines",
            "RoleBinding picket-system/picket-agent-baselines",
            "DaemonSet picket-system/picket-agent"
        ]
    );
    let patches = server.patches.lock().expect("lock").clone();
    let paths: Vec<&str> = patches.iter().map(|(uri, _)| uri.split('?').next().unwrap_or_default()).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/picket-system",
            "/api/v1/namespaces/picket-system/serviceaccounts/picket-agent",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/picket-agent",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/picket-agent",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/picket-system/roles/picket-agent-baselines",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/picket-system/rolebindings/picket-agent-baselines",
            "/apis/apps/v1/namespaces/picket-system/daemonsets/picket-agent"
        ]
    );
    assert!(
        patches.iter().all(|(uri, _)| uri.contains("fieldManager=picket") && uri.contains("force=true")),
        "{patches:?}"
    );
    let daemonset = &patches[6].1;
    assert_eq!(daemonset["spec"]["template"]["spec"]["hostPID"], true);
    assert_eq!(daemonset["spec"]["template"]["spec"]["containers"][0]["image"], "registry.example.com/picket:1");

    let refusing = MockApiServer::start(
        Vec::new(),
        Behaviour { forbidden: vec!["/apis/apps/v1/daemonsets".into()], ..Behaviour::default() },
    );
    let err = picket::agent::deploy::deploy_agent(&refusing.client, "dev", "picket-system", "img:1")
        .await
        .expect_err("the DaemonSet is refused");
    let text = err.to_string();
    assert!(text.starts_with("context dev: applying DaemonSet picket-system/picket-agent: "), "{text}");
    assert!(text.contains("cannot patch"), "{text}");
}

/// On a node, the agent names pods and their containers from the API server: it lists the
/// node's pods (field selector) and reads the pod UID and container ids of their statuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_names_pods_from_the_api_server() {
    use picket::agent::attribution::{ContainerRef, Runtime};
    let server = MockApiServer::start(fixture_objects(), Behaviour::default());
    let names =
        picket::agent::names::ContainerNames::start(Vec::new()).with_cluster(server.client.clone(), "node-a".into());
    let event_container = ContainerRef {
        runtime: Runtime::Containerd,
        id: "bb".into(),
        pod_uid: Some("446298685466-0000-4000-8000-000000000000".into()),
        name: None,
        image: None,
        pod_namespace: None,
        pod_name: None,
        pod_owner: None,
    };
    let named = common::wait_for(Duration::from_secs(5), || {
        names.name(Some(event_container.clone())).filter(|c| c.pod_name.is_some())
    })
    .expect("named within a refresh");
    assert_eq!(named.pod_namespace.as_deref(), Some("payments"));
    assert_eq!(named.pod_name.as_deref(), Some("api-7d9f8b6c4-x2x9k"));
    assert_eq!(named.name.as_deref(), Some("api"));
    let uris = server.uris.lock().expect("lock").clone();
    assert!(
        uris.iter().any(|u| u.starts_with("/api/v1/pods?") && u.contains("fieldSelector=spec.nodeName%3Dnode-a")),
        "{uris:?}"
    );
}

/// The Nodes pane's cluster agents: the DaemonSet's pods in picket-system, found by label, with
/// their nodes and phases; other pods are not agents.
#[tokio::test]
async fn agent_pods_are_listed_by_namespace_and_label() {
    let agent = |name: &str, node: &str, phase: &str| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name, "namespace": "picket-system", "uid": format!("uid-{name}"),
                          "labels": { "app.kubernetes.io/name": "picket-agent" } },
            "spec": { "nodeName": node, "containers": [{ "name": "agent", "image": "ghcr.io/picket/picket:0.1.0" }] },
            "status": { "phase": phase }
        })
    };
    let mut objects = fixture_objects();
    objects.push(agent("picket-agent-q9d4m", "node-c", "Pending"));
    objects.push(agent("picket-agent-7xk2p", "node-b", "Running"));
    let mut stranger = agent("not-an-agent", "node-b", "Running");
    stranger["metadata"]["labels"] = serde_json::json!({ "app": "other" });
    objects.push(stranger);
    let server = MockApiServer::start(objects, Behaviour::default());
    let pods = picket::agent::deploy::list_agent_pods(&server.client, "mock").await.expect("listed");
    let rows: Vec<(&str, &str, &str)> =
        pods.iter().map(|p| (p.name.as_str(), p.node.as_str(), p.phase.as_str())).collect();
    assert_eq!(rows, [("picket-agent-7xk2p", "node-b", "Running"), ("picket-agent-q9d4m", "node-c", "Pending")]);
    let uris = server.uris.lock().expect("lock").clone();
    assert!(uris.iter().any(|u| u.starts_with("/api/v1/namespaces/picket-system/pods?")), "{uris:?}");

    let refusing = MockApiServer::start(Vec::new(), Behaviour { unauthorized: true, ..Behaviour::default() });
    let err = picket::agent::deploy::list_agent_pods(&refusing.client, "dev").await.expect_err("401");
    assert!(err.to_string().starts_with("context dev: listing the agent's pods in picket-system: "), "{err}");
}

/// A kubeconfig for `server`, with `user` as its user's YAML.
fn kubeconfig_with(dir: &std::path::Path, server: &str, user: &str) -> std::path::PathBuf {
    let path = dir.join("config");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: prod\n  cluster:\n    server: {server}\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n    user: u\nusers:\n- name: u\n  user:\n{user}"
        ),
    )
    .expect("kubeconfig");
    path
}

/// A credential plugin that never answers is stopped at the deadline and named, instead of
/// hanging `bench k8s` (kube itself waits for plugins without end).
#[test]
fn a_credential_plugin_that_never_answers_is_stopped_and_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = dir.path().join("slow-credentials");
    std::fs::write(&plugin, "#!/bin/sh\nsleep 600\n").expect("plugin");
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let user = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      args: [get-token]\n",
        plugin.display()
    );
    let config = kubeconfig_with(dir.path(), &format!("https://127.0.0.1:{port}"), &user);
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["bench", "k8s"])
        .env("KUBECONFIG", &config)
        .env("PICKET_EXEC_TIMEOUT", "2")
        .output()
        .expect("picket runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("credential plugin {} gave no answer in 2 s", plugin.display())), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // A plugin that answers is used as before (kube reads its token).
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t0k3n\"}}'\n",
    )
    .expect("plugin");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["bench", "k8s"])
        .env("KUBECONFIG", &config)
        .output()
        .expect("picket runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach the API server") && !stderr.contains("credential plugin"), "{stderr}");
}

/// An API server that answers with a body without end: the request fails at the cap, in
/// bounded time and memory, instead of taking gigabytes.
#[test]
fn an_endless_response_body_is_cut_at_the_cap() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut request = [0u8; 4096];
                let _ = std::io::Read::read(&mut stream, &mut request);
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if std::io::Write::write_all(&mut stream, head.as_bytes()).is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 1 << 20, " ".repeat(1 << 20));
                while std::io::Write::write_all(&mut stream, chunk.as_bytes()).is_ok() {}
            });
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let config = kubeconfig_with(dir.path(), &format!("http://127.0.0.1:{port}"), "    token: abc\n");
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["bench", "k8s"])
        .env("KUBECONFIG", &config)
        .output()
        .expect("picket runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("over 128 MiB"), "{stderr}");
    // A hang guard, not a speed goal: a debug build decoding 128 MiB beside the other test
    // binaries on 2 cores took 10.8 s once, so the bound is generous.
    assert!(started.elapsed() < Duration::from_secs(90), "{:?}", started.elapsed());
    // The largest child this test ran (picket) stayed well within memory (ru_maxrss is in KiB).
    let peak = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).expect("rusage").max_rss();
    assert!(peak < 512 * 1024, "peak RSS {peak} KiB");
}

/// A server a few versions behind (CronJob only at `batch/v1beta1`, Ingress only at
/// `networking.k8s.io/v1beta1` with the old backend shape) and a kind that fails (503, an
/// aggregated API down): the inventory reads the older versions, converts them, records the
/// failing kind, and the audit goes on with verdicts on the rest. Errors read as one line.
#[tokio::test]
async fn an_older_or_partial_server_is_read_as_far_as_it_goes() {
    let mut objects = fixture_objects();
    for object in &mut objects {
        match object["kind"].as_str() {
            Some("CronJob") => object["apiVersion"] = serde_json::json!("batch/v1beta1"),
            Some("Ingress") => {
                object["apiVersion"] = serde_json::json!("networking.k8s.io/v1beta1");
                object["spec"]["rules"][0]["http"]["paths"][0]["backend"] =
                    serde_json::json!({ "serviceName": "api", "servicePort": 80 });
                if let Some(path) = object["spec"]["rules"][0]["http"]["paths"][0].as_object_mut() {
                    path.remove("pathType");
                }
            }
            _ => {}
        }
    }
    let behaviour = Behaviour {
        not_served: vec![
            "/apis/batch/v1/cronjobs".into(),
            "/apis/networking.k8s.io/v1/ingresses".into(),
            "/apis/extensions/v1beta1/ingresses".into(),
        ],
        failing: vec!["/apis/networking.k8s.io/v1/networkpolicies".into()],
        ..Behaviour::default()
    };
    let server = MockApiServer::start(objects, behaviour);
    let inv = inventory::load(&server.client, "old").await.expect("the audit goes on");
    assert_eq!(inv.cron_jobs.len(), 1, "read at batch/v1beta1");
    assert_eq!(inv.cron_jobs[0].spec.schedule, "0 3 * * *");
    assert_eq!(inv.ingresses.len(), 1, "read at networking.k8s.io/v1beta1");
    let path = &inv.ingresses[0].spec.as_ref().unwrap().rules.as_ref().unwrap()[0].http.as_ref().unwrap().paths[0];
    let service = path.backend.service.as_ref().expect("the backend in the v1 shape");
    assert_eq!((service.name.as_str(), service.port.as_ref().and_then(|p| p.number)), ("api", Some(80)));
    assert_eq!(path.path_type, "ImplementationSpecific");
    assert_eq!(inv.unlisted.len(), 1, "{:?}", inv.unlisted);
    let failed = &inv.unlisted[0];
    assert_eq!((failed.resource.as_str(), failed.why), ("networkpolicies.networking.k8s.io", inventory::Why::Failed));
    assert_eq!(failed.message, "HTTP 503 ServiceUnavailable: the server is currently unable to handle the request");
    assert!(!failed.message.contains("Status {") && !failed.message.contains("ErrorResponse"));
    assert!(inv.pods.len() == 2 && !inv.deployments.is_empty(), "the rest is listed");
    let report = picket::bench::k8s::judge(&inv);
    let incomplete = report
        .check("5.1.1")
        .expect("5.1.1")
        .results
        .iter()
        .any(|r| r.evidence.contains("could not list networkpolicies.networking.k8s.io: the server failed"));
    assert!(incomplete, "verdicts say what they could not see");
    // A check over workloads alone does not need network policies: judged whole.
    let privileged = report.check("5.2.2").expect("5.2.2");
    assert!(privileged.results.iter().all(|r| r.subject != "what picket could list"), "{:?}", privileged.results);
    assert_eq!(report.unread.len(), 1);
    assert_eq!(
        (report.unread[0].what.as_str(), report.unread[0].why.as_str()),
        ("networkpolicies.networking.k8s.io", "failed")
    );
}

/// A kind served at no version picket reads is recorded as not served, and the rest goes on.
#[tokio::test]
async fn a_kind_served_at_no_version_is_recorded_not_fatal() {
    let behaviour = Behaviour {
        not_served: vec!["/apis/batch/v1/cronjobs".into(), "/apis/batch/v1beta1/cronjobs".into()],
        ..Behaviour::default()
    };
    let server = MockApiServer::start(fixture_objects(), behaviour);
    let inv = inventory::load(&server.client, "old").await.expect("the audit goes on");
    assert!(inv.cron_jobs.is_empty());
    assert_eq!(inv.unlisted.len(), 1);
    assert_eq!(inv.unlisted[0].why, inventory::Why::NotServed);
    assert_eq!(inv.unlisted[0].message, "the server serves none of batch/v1, batch/v1beta1");
    assert_eq!(inv.unlisted[0].needs(), "list cronjobs.batch: the server does not serve it");
    // API discovery said so: neither collection was asked for.
    assert_eq!(server.requests_to("/apis/batch/v1/cronjobs") + server.requests_to("/apis/batch/v1beta1/cronjobs"), 0);
    assert_eq!(server.requests_to("/apis/batch/v1"), 1, "batch/v1 discovered once");
}

/// A group version whose discovery fails (an aggregated API down, a proxy in the way) does not
/// stop the inventory: its kinds are listed and speak for themselves.
#[tokio::test]
async fn kinds_of_a_group_whose_discovery_fails_are_still_listed() {
    let behaviour = Behaviour { failing: vec!["/apis/apps/v1".into()], ..Behaviour::default() };
    let server = MockApiServer::start(fixture_objects(), behaviour);
    let inv = inventory::load(&server.client, "flaky").await.expect("the audit goes on");
    assert!(!inv.deployments.is_empty(), "listed without discovery");
    assert!(inv.unlisted.is_empty(), "{:?}", inv.unlisted);
}

/// Pods that do not run yet (no container status: not scheduled, not pulled, or no kubelet, as
/// on the real test API server) still say which images they will run: taken from the spec and
/// marked so, while running pods give their digests.
#[tokio::test]
async fn pending_pods_name_their_images_from_the_spec() {
    let mut objects = fixture_objects();
    let mut pending = None;
    for object in &mut objects {
        if object["kind"] == "Pod" && pending.is_none() {
            if let Some(o) = object.as_object_mut() {
                o.remove("status");
            }
            pending = object["metadata"]["name"].as_str().map(String::from);
        }
    }
    let pending = pending.expect("a pod in the fixture");
    let server = MockApiServer::start(objects, Behaviour::default());
    let inv = inventory::load(&server.client, "mock").await.expect("inventory");
    let images = picket::cluster::images::running_images(&inv);
    let from_spec: Vec<_> = images.iter().filter(|i| i.from_spec).collect();
    assert!(!from_spec.is_empty(), "{images:?}");
    assert!(from_spec.iter().all(|i| i.digest.is_none() && i.used_by.iter().all(|u| u.ends_with(", not running)"))));
    assert!(images.iter().any(|i| !i.from_spec && i.digest.is_some()), "the running pod keeps its digest: {images:?}");
    let pod = inv.pods.iter().find(|p| p.metadata.name.as_deref() == Some(pending.as_str())).expect("the pod");
    let declared = pod.spec.as_ref().expect("spec").containers[0].image.clone().expect("an image");
    assert!(from_spec.iter().any(|i| i.reference == declared), "{declared} from the spec: {from_spec:?}");
}

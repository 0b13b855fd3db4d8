//! The cluster suite against a real kube-apiserver (v1.20.2, `tests/common/kube_real.rs`), not
//! the mock: realistic objects applied with kubectl, the inventory read through discovery of
//! what this older server serves (CronJob only at `batch/v1beta1`), `picket bench k8s` and
//! `picket cluster scan` run as a user would. No kubelet: pods stay Pending.

mod common;

use common::kube_mock::fixture_objects;
use common::kube_real::RealApiServer;
use picket::cluster::inventory;

/// The fixture objects as a user would apply them to a v1.20 server: no status or server-set
/// fields, no Nodes (the server makes none without a kubelet), CronJob at `batch/v1beta1`,
/// namespaces and service accounts first.
fn applicable_objects() -> serde_json::Value {
    let mut items: Vec<serde_json::Value> = fixture_objects()
        .into_iter()
        .filter(|o| o["kind"] != "Node")
        .map(|mut o| {
            if let Some(meta) = o["metadata"].as_object_mut() {
                for field in ["uid", "resourceVersion", "creationTimestamp"] {
                    meta.remove(field);
                }
            }
            if let Some(object) = o.as_object_mut() {
                object.remove("status");
            }
            if o["kind"] == "CronJob" {
                o["apiVersion"] = serde_json::json!("batch/v1beta1");
            }
            // The API server validates what the mock takes as it is: mounts need their volumes.
            if o["kind"] == "Pod" {
                let volumes: Vec<String> = o["spec"]["volumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v["name"].as_str().map(String::from))
                    .collect();
                for container in o["spec"]["containers"].as_array_mut().into_iter().flatten() {
                    if let Some(mounts) = container["volumeMounts"].as_array_mut() {
                        mounts.retain(|m| m["name"].as_str().is_some_and(|n| volumes.iter().any(|v| v == n)));
                    }
                }
            }
            o
        })
        .collect();
    let rank = |o: &serde_json::Value| match o["kind"].as_str() {
        Some("Namespace") => 0,
        Some("ServiceAccount") => 1,
        _ => 2,
    };
    items.sort_by_key(rank);
    serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_runs_against_a_real_older_api_server() {
    let Some(server) = RealApiServer::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = dir.path().join("objects.json");
    std::fs::write(&objects, serde_json::to_vec(&applicable_objects()).expect("json")).expect("write");
    let applied = server.kubectl(&["apply", "-f", &objects.display().to_string()]);
    assert!(applied.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&applied.stderr));

    // The inventory: every kind this server serves, CronJob read at batch/v1beta1, nothing
    // missing, pods Pending.
    let client = server.client().await;
    let inv = inventory::load(&client, "real").await.expect("the inventory loads");
    assert!(inv.unlisted.is_empty(), "{:?}", inv.unlisted);
    let expected = |kind: &str| fixture_objects().iter().filter(|o| o["kind"] == kind).count();
    assert_eq!(inv.cron_jobs.len(), expected("CronJob"), "read at batch/v1beta1");
    // (The controller-manager adds the pods of the Deployments' own ReplicaSets.)
    assert!(inv.pods.len() >= expected("Pod"));
    assert!(inv.deployments.len() >= expected("Deployment"));
    assert_eq!(inv.ingresses.len(), expected("Ingress"));
    assert!(inv.namespaces.iter().any(|n| n.metadata.name.as_deref() == Some("payments")));
    assert!(inv.pods.iter().all(|p| p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).is_none()));

    // Paging: two objects a request, the server's continue tokens followed to the end, gives
    // the same inventory.
    let paged = inventory::load_with(&client, "real", inventory::ListOptions { page_size: 2, ..Default::default() })
        .await
        .expect("the inventory loads in pages");
    let names = |metas: Vec<&k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>| {
        let mut names: Vec<String> = metas
            .iter()
            .map(|m| format!("{}/{}", m.namespace.clone().unwrap_or_default(), m.name.clone().unwrap_or_default()))
            .collect();
        names.sort();
        names
    };
    assert!(inv.cluster_roles.len() > 2 && inv.namespaces.len() > 2, "more than one page each");
    // (The controller-manager is still making token Secrets and ReplicaSet pods: the objects
    // the test applied, and the kinds that do not change, are compared.)
    assert_eq!(
        names(paged.namespaces.iter().map(|n| &n.metadata).collect()),
        names(inv.namespaces.iter().map(|n| &n.metadata).collect())
    );
    let applied = |kind: &str| -> Vec<String> {
        fixture_objects()
            .iter()
            .filter(|o| o["kind"] == kind)
            .map(|o| {
                let meta = &o["metadata"];
                format!(
                    "{}/{}",
                    meta["namespace"].as_str().unwrap_or_default(),
                    meta["name"].as_str().unwrap_or_default()
                )
            })
            .collect()
    };
    let pods = names(paged.pods.iter().map(|p| &p.metadata).collect());
    assert!(applied("Pod").iter().all(|n| pods.contains(n)), "{pods:?}");
    let secrets = names(paged.secrets.iter().collect());
    assert!(!applied("Secret").is_empty() && applied("Secret").iter().all(|n| secrets.contains(n)), "{secrets:?}");
    assert_eq!(paged.cron_jobs.len(), inv.cron_jobs.len(), "the older version pages too");
    assert_eq!(paged.cluster_roles.len(), inv.cluster_roles.len());

    // bench k8s, as a user runs it: finishes, and judges the CronJob it could only read at
    // batch/v1beta1.
    let bench = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["bench", "k8s", "-o", "json"])
        .env("KUBECONFIG", &server.kubeconfig)
        .output()
        .expect("picket runs");
    let stderr = String::from_utf8_lossy(&bench.stderr);
    assert!(matches!(bench.status.code(), Some(0 | 1)), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&bench.stdout).expect("a JSON report");
    let subjects: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .flat_map(|c| c["results"].as_array().into_iter().flatten())
        .filter_map(|r| r["subject"].as_str())
        .collect();
    assert!(subjects.iter().any(|s| s.contains("CronJob legacy/backup")), "{subjects:?}");
    let paged = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["bench", "k8s", "-o", "json", "--chunk-size", "3"])
        .env("KUBECONFIG", &server.kubeconfig)
        .output()
        .expect("picket runs");
    let paged: serde_json::Value = serde_json::from_slice(&paged.stdout).expect("a JSON report");
    // (Each check's status: the controller-manager may still be adding ReplicaSet pods, which
    // add results of the same verdict.)
    let statuses = |report: &serde_json::Value| -> Vec<(String, String)> {
        let checks = report["checks"].as_array().expect("checks");
        checks
            .iter()
            .map(|c| {
                let results = c["results"].as_array().into_iter().flatten();
                let mut seen: Vec<String> = results.filter_map(|r| r["status"].as_str().map(String::from)).collect();
                seen.sort();
                seen.dedup();
                (c["id"].as_str().unwrap_or_default().to_string(), seen.join(","))
            })
            .collect()
    };
    assert_eq!(statuses(&paged), statuses(&report), "--chunk-size 3 judges the same cluster the same way");
    assert!(!stderr.contains("Status {") && !stderr.contains("ErrorResponse"), "{stderr}");

    // cluster scan: the Pending pods' images come from their specs, said so.
    let data = tempfile::tempdir().expect("data dir");
    let record =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/osv/crates.io/RUSTSEC-2019-0026.json");
    let imported = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["db", "import"])
        .arg(&record)
        .output()
        .expect("picket runs");
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let scan = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["cluster", "scan", "-o", "json"])
        .env("KUBECONFIG", &server.kubeconfig)
        .output()
        .expect("picket runs");
    let report: serde_json::Value = serde_json::from_slice(&scan.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&scan.stderr)));
    let images = report["images"].as_array().expect("images");
    assert!(!images.is_empty(), "the Pending pods' images are listed");
    assert!(images.iter().all(|i| i["from_spec"] == true), "{images:?}");
    // No registry serves them here: each line says so, naming the image once.
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["cluster", "scan"])
        .env("KUBECONFIG", &server.kubeconfig)
        .output()
        .expect("picket runs");
    let text = String::from_utf8_lossy(&table.stdout);
    let failed: Vec<&str> = text.lines().filter(|l| l.contains("not scanned:")).collect();
    assert!(!failed.is_empty(), "{text}");
    for line in failed {
        let reference = line.split_whitespace().next().unwrap_or_default();
        assert_eq!(line.matches(reference).count(), 1, "the image once: {line}");
    }

    // bench node on this host, where start.sh runs kube-apiserver as a plain process: the
    // remediation says to change how it is started, not to edit a kubeadm manifest that does
    // not exist.
    let node = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["bench", "node", "-o", "json"])
        .output()
        .expect("picket runs");
    let report: serde_json::Value = serde_json::from_slice(&node.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&node.stderr)));
    let check = report["checks"].as_array().expect("checks").iter().find(|c| c["id"] == "1.2.6").expect("1.2.6");
    let remediation = check["remediation"].as_str().expect("remediation");
    assert!(
        !remediation.contains("/etc/kubernetes/manifests")
            && (remediation.contains("runs as a plain process") || remediation.contains("systemd unit")),
        "{remediation}"
    );
}

/// A restricted user (a client certificate bound to a ClusterRole that may list namespaces and
/// pods only): the audit goes on, says in every document what it could not read, evaluates
/// what it could, and a `--fail-on` gate exits 3 (incomplete) rather than passing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_user_gets_a_partial_report_that_says_so() {
    let Some(server) = RealApiServer::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let rbac = dir.path().join("rbac.yaml");
    std::fs::write(
        &rbac,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: narrow-auditor}\n\
         rules:\n- apiGroups: [\"\"]\n  resources: [namespaces, pods]\n  verbs: [get, list, watch]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: narrow-auditor}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: narrow-auditor}\n\
         subjects:\n- {apiGroup: rbac.authorization.k8s.io, kind: User, name: auditor}\n",
    )
    .expect("write");
    let applied = server.kubectl(&["apply", "-f", &rbac.display().to_string()]);
    assert!(applied.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&applied.stderr));
    let kubeconfig = server.user_kubeconfig("auditor");
    let bench = |format: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .args(["bench", "k8s", "-o", format, "--fail-on", "critical"])
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("picket runs")
    };
    let json = bench("json");
    let stderr = String::from_utf8_lossy(&json.stderr);
    assert_eq!(json.status.code(), Some(3), "a gate cannot pass what it did not see: {stderr}");
    assert!(stderr.contains("gate incomplete") && stderr.contains("deployments.apps"), "{stderr}");
    assert!(!stderr.contains("Status {") && !stderr.contains("ErrorResponse"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("a JSON report");
    assert_eq!(report["complete"], false);
    let unread: Vec<&str> =
        report["unread"].as_array().expect("unread").iter().filter_map(|u| u["what"].as_str()).collect();
    assert!(unread.contains(&"secrets") && unread.contains(&"clusterroles.rbac.authorization.k8s.io"), "{unread:?}");
    assert!(!unread.contains(&"pods") && !unread.contains(&"namespaces"), "what it may list is read: {unread:?}");
    assert!(report["unread"].as_array().expect("unread").iter().all(|u| u["why"] == "forbidden"), "{report}");
    // A check that reads only what was listed has no such result; one that needed RBAC does.
    let not_evaluated = |id: &str| {
        report["checks"].as_array().expect("checks").iter().find(|c| c["id"] == id).is_some_and(|c| {
            c["results"].as_array().into_iter().flatten().any(|r| {
                r["evidence"].as_str().is_some_and(|e| e.starts_with("not evaluated on what it could not list"))
            })
        })
    };
    assert!(not_evaluated("5.1.2"), "who may read secrets needs the RBAC kinds");
    for document in ["table", "junit", "sarif"] {
        let out = bench(document);
        assert_eq!(out.status.code(), Some(3), "{document}");
        let text = String::from_utf8_lossy(&out.stdout);
        let says = match document {
            "table" => text.contains("PARTIAL") && text.contains("secrets (forbidden)"),
            "junit" => {
                text.contains("<testsuite name=\"not read\"") && text.contains("classname=\"unread\" name=\"secrets\"")
            }
            _ => text.contains("toolExecutionNotifications") && text.contains("not read: secrets (forbidden)"),
        };
        assert!(says, "{document} says what it could not read: {text}");
    }
}

/// `picket cluster scan` pulls each image with its pods' imagePullSecrets: a private registry
/// (Debian's docker-registry, TLS and htpasswd) whose credentials exist only in a
/// `kubernetes.io/dockerconfigjson` Secret on the real API server. The pod that names the
/// Secret has its image scanned; an image no pod gives credentials for is refused, said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_scan_pulls_with_the_pods_pull_secrets() {
    use common::registry::{PASSWORD, Registry};
    let Some(registry) = Registry::start(true) else {
        eprintln!("skipped: needs docker-registry, skopeo, openssl and htpasswd (./install.sh --dev)");
        return;
    };
    let Some(server) = RealApiServer::start() else { return };
    let app = format!("oci:{}:testbed/app:v1", common::fixtures::images().join("oci").display());
    registry.push(&app, "private/app:v1", false);
    registry.push(&app, "private/app:v2", false);
    let config = std::fs::read(registry.docker_config(PASSWORD)).expect("the registry's config.json");
    let encoded = base64_of(&config);
    let image = |tag: &str| format!("{}/private/app:{tag}", registry.host);
    let objects = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": [
        { "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "pulls" } },
        { "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
          "metadata": { "name": "regcred", "namespace": "pulls" },
          "data": { ".dockerconfigjson": encoded } },
        { "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "with-secret", "namespace": "pulls" },
          "spec": { "imagePullSecrets": [{ "name": "regcred" }],
                    "containers": [{ "name": "app", "image": image("v1") }] } },
        { "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "without-secret", "namespace": "pulls" },
          "spec": { "containers": [{ "name": "app", "image": image("v2") }] } },
    ]});
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pulls.json");
    std::fs::write(&file, serde_json::to_vec(&objects).expect("json")).expect("write");
    // The new namespace's default ServiceAccount comes from the controller-manager, a moment
    // after the namespace: pods are refused until then.
    let mut applied = server.kubectl(&["apply", "-f", &file.display().to_string()]);
    for _ in 0..40 {
        if applied.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        applied = server.kubectl(&["apply", "-f", &file.display().to_string()]);
    }
    assert!(applied.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&applied.stderr));

    let data = dir.path().join("data");
    let record = common::fixtures::shared_data().join("osv/crates.io/RUSTSEC-2019-0026.json");
    let imported = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .arg("--data-dir")
        .arg(&data)
        .args(["db", "import"])
        .arg(&record)
        .output()
        .expect("picket runs");
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    // No credentials of the user's own: a home without a docker config.
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let scan = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .arg("--data-dir")
        .arg(&data)
        .args(["cluster", "scan", "-o", "json", "--ca-file"])
        .arg(registry.ca())
        .env("KUBECONFIG", &server.kubeconfig)
        .env("HOME", &home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .output()
        .expect("picket runs");
    let stderr = String::from_utf8_lossy(&scan.stderr);
    let report: serde_json::Value = serde_json::from_slice(&scan.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let images = report["images"].as_array().expect("images");
    let of = |tag: &str| {
        images
            .iter()
            .find(|i| i["reference"] == image(tag).as_str())
            .unwrap_or_else(|| panic!("{} in {images:#?}", image(tag)))
    };
    let scanned = of("v1");
    assert!(scanned["scanned"]["packages"].as_u64().is_some_and(|n| n > 0), "{scanned}");
    let refused = of("v2");
    let error = refused["failed"]["error"].as_str().unwrap_or_else(|| panic!("not scanned: {refused}"));
    assert!(error.contains("unauthorized") || error.contains("401"), "{error}");
}

fn base64_of(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("base64");
    child.stdin.take().expect("stdin").write_all(bytes).expect("write");
    String::from_utf8(child.wait_with_output().expect("base64").stdout).expect("utf8")
}

/// The agent's DaemonSet, as the console's deploy key applies it (server-side apply, field
/// manager `picket`), on the real API server: every object is accepted and validated by it,
/// applying again changes nothing and conflicts with nothing, and `picket agent manifest` is
/// accepted by the server's own dry run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_daemonset_is_applied_to_a_real_api_server() {
    let Some(server) = RealApiServer::start() else { return };
    let client = server.client().await;
    let image = "registry.example.com/picket:1";
    let applied = picket::agent::deploy::deploy_agent(&client, "real", "picket-system", image)
        .await
        .unwrap_or_else(|e| panic!("the real server takes the manifest: {e}"));
    assert!(applied.iter().any(|o| o == "DaemonSet picket-system/picket-agent"), "{applied:?}");
    let again = picket::agent::deploy::deploy_agent(&client, "real", "picket-system", image).await.expect("again");
    assert_eq!(again, applied, "applying again is the same apply");
    let got = server.kubectl(&["get", "daemonset", "-n", "picket-system", "picket-agent", "-o", "json"]);
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    let ds: serde_json::Value = serde_json::from_slice(&got.stdout).expect("json");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["image"], image);
    assert_eq!(pod["hostPID"], true, "{pod}");
    let managers: Vec<&str> = ds["metadata"]["managedFields"]
        .as_array()
        .expect("managed fields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"picket"), "{managers:?}");
    // No kubelet, so no node and no agent pod: listed as none, not as an error.
    let pods = picket::agent::deploy::list_agent_pods(&client, "real").await.expect("listed");
    assert!(pods.is_empty(), "{pods:?}");

    let manifest = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "manifest", "--namespace", "picket-system", "--image", "registry.example.com/picket:2"])
        .output()
        .expect("picket runs");
    assert!(manifest.status.success(), "{}", String::from_utf8_lossy(&manifest.stderr));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("agent.yaml");
    std::fs::write(&file, &manifest.stdout).expect("write");
    // (A server-side dry run: the namespace must exist, so the deployed one is used.)
    let dry = server.kubectl(&["apply", "--dry-run=server", "-f", &file.display().to_string()]);
    assert!(dry.status.success(), "the server validates every object: {}", String::from_utf8_lossy(&dry.stderr));

    // A node's benchmark through its agent pod: with no kubelet there is none, and it says so.
    let asked = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["bench", "node", "--node", "worker-1"])
        .env("KUBECONFIG", &server.kubeconfig)
        .env("PICKET_DATA_DIR", dir.path().join("data"))
        .output()
        .expect("picket runs");
    let said = String::from_utf8_lossy(&asked.stderr);
    assert_eq!(asked.status.code(), Some(2), "{said}");
    assert!(said.contains("no picket agent pod on node worker-1 (agents run on: none)"), "{said}");
}

/// The console's watched inventory on the real API server: listed once, then following watch
/// events; when the API server restarts, every watch drops and resumes, so objects made after
/// the restart appear and deleted ones go, with no re-list asked of the user. v1.20 serves no
/// batch/v1 CronJob: API discovery says so and the CronJobs are watched at batch/v1beta1, as
/// the CLI's inventory lists them (the console and the CLI see the same CronJobs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watched_inventory_resumes_after_the_api_server_restarts() {
    let Some(server) = RealApiServer::start() else { return };
    let pod = |name: &str| {
        serde_json::json!({ "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name, "namespace": "default" },
            "spec": { "containers": [{ "name": "c", "image": "busybox:1.36" }] } })
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let apply = |name: &str| {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_vec(&pod(name)).expect("json")).expect("write");
        // The default ServiceAccount comes a moment after start.
        let ok = (0..40).any(|_| {
            let out = server.kubectl(&["apply", "-f", &file.display().to_string()]);
            out.status.success() || {
                std::thread::sleep(std::time::Duration::from_millis(500));
                false
            }
        });
        assert!(ok, "kubectl apply {name}");
    };
    apply("before-restart");
    let cron = serde_json::json!({ "apiVersion": "batch/v1beta1", "kind": "CronJob",
        "metadata": { "name": "nightly", "namespace": "default" },
        "spec": { "schedule": "0 3 * * *", "jobTemplate": { "spec": { "template": { "spec": {
            "restartPolicy": "Never", "containers": [{ "name": "c", "image": "busybox:1.36" }] } } } } } });
    let cron_file = dir.path().join("cron.json");
    std::fs::write(&cron_file, serde_json::to_vec(&cron).expect("json")).expect("write");
    let created = server.kubectl(&["apply", "-f", &cron_file.display().to_string()]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let watch = picket::cluster::watch::ClusterWatch::start_discovered(server.client().await, "real").await;
    assert!(watch.ready(std::time::Duration::from_secs(60)).await, "the first lists finish");
    let has = |watch: &picket::cluster::watch::ClusterWatch, name: &str| {
        watch.snapshot().pods.iter().any(|p| p.metadata.name.as_deref() == Some(name))
    };
    let eventually = |check: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if check() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        false
    };
    assert!(eventually(&|| has(&watch, "before-restart")), "listed");
    let errors = watch.errors();
    assert!(errors.is_empty(), "{errors:?}");
    let crons = watch.snapshot().cron_jobs;
    assert_eq!(crons.len(), 1, "the v1beta1 CronJob in the v1 shape");
    assert_eq!(crons[0].spec.schedule, "0 3 * * *");
    let client = server.client().await;
    let listed = picket::cluster::inventory::load(&client, "real").await.expect("inventory");
    assert_eq!(listed.cron_jobs.len(), crons.len(), "the CLI's inventory has the same CronJobs");

    server.restart_api_server();
    apply("after-restart");
    assert!(eventually(&|| has(&watch, "after-restart")), "the pod made after the restart arrives: the watch resumed");
    let deleted = server.kubectl(&["delete", "pod", "-n", "default", "before-restart", "--wait=false"]);
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    // (No kubelet to confirm the containers stopped: the pod goes once forced.)
    let _ = server.kubectl(&["delete", "pod", "-n", "default", "before-restart", "--grace-period=0", "--force"]);
    assert!(eventually(&|| !has(&watch, "before-restart")), "and a deleted one goes");
}

/// `picket registry manifest --apply` on the real (v1.20) API server: the CronJob lands as
/// batch/v1beta1 (the server has no batch/v1 CronJob) with its RBAC, config, and store volume;
/// a crawl publishing to a ConfigMap (what the job does) is read back by `--from-cluster`
/// exactly as the local store shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_crawls_run_as_a_cronjob_and_publish_what_the_console_reads() {
    let Some(registry) = common::registry::Registry::start(false) else {
        eprintln!("skipped: needs docker-registry and skopeo (./install.sh --dev)");
        return;
    };
    let Some(server) = RealApiServer::start() else { return };
    let app = format!("oci:{}:testbed/app:v1", common::fixtures::images().join("oci").display());
    registry.push(&app, "team/app:v1", false);
    registry.push(&app, "team/app:v2", false);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, format!("registries:\n- name: lab\n  url: http://{}\n  every: 6h\n", registry.host))
        .expect("config");
    let picket = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("KUBECONFIG", &server.kubeconfig)
            .output()
            .expect("picket runs")
    };
    let namespace = server.kubectl(&["create", "namespace", "scans"]);
    assert!(namespace.status.success(), "{}", String::from_utf8_lossy(&namespace.stderr));
    let applied =
        picket(&["registry", "manifest", "lab", "--namespace", "scans", "--auth-secret", "lab-pull", "--apply"]);
    let said = String::from_utf8_lossy(&applied.stderr);
    assert!(applied.status.success(), "{said}");
    assert!(said.contains("CronJob scans/picket-registry-lab (batch/v1beta1)"), "{said}");
    let cron = server.kubectl(&["get", "cronjobs.v1beta1.batch", "-n", "scans", "picket-registry-lab", "-o", "json"]);
    assert!(cron.status.success(), "{}", String::from_utf8_lossy(&cron.stderr));
    let cron: serde_json::Value = serde_json::from_slice(&cron.stdout).expect("json");
    assert_eq!(cron["spec"]["schedule"], "0 */6 * * *");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "picket-registry-lab");
    for kind in ["serviceaccount", "role", "rolebinding", "configmap", "persistentvolumeclaim"] {
        let name = match kind {
            "configmap" => "picket-registry-lab-config",
            "persistentvolumeclaim" => "picket-registry-lab-store",
            _ => "picket-registry-lab",
        };
        let got = server.kubectl(&["get", kind, "-n", "scans", name]);
        assert!(got.status.success(), "{kind} {name}: {}", String::from_utf8_lossy(&got.stderr));
    }
    // The job's service account may write ConfigMaps of its namespace and nothing else.
    let can = |verb: &str, what: &str, ns: &str| {
        let out = server.kubectl(&[
            "auth",
            "can-i",
            verb,
            what,
            "-n",
            ns,
            "--as",
            "system:serviceaccount:scans:picket-registry-lab",
        ]);
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    assert!(can("patch", "configmaps", "scans") && can("create", "configmaps", "scans"));
    assert!(!can("get", "secrets", "scans") && !can("patch", "configmaps", "default"));

    // A database without npm's records: the crawl's images get their baseline.
    let debian = common::fixtures::shared_data().join("osv/Debian");
    let imported = picket(&["db", "import", &debian.display().to_string(), "--name", "osv:Debian"]);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    // What the job runs, from here: crawl, then publish.
    let out = picket(&[
        "--context",
        "admin@picket-test",
        "registry",
        "scan",
        "lab",
        "--publish-configmap",
        "scans/picket-registry-lab",
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("results published to context admin@picket-test: ConfigMap scans/picket-registry-lab"),
        "{said}"
    );
    let local = picket(&["registry", "tags", "lab", "-o", "json"]);
    let remote = picket(&[
        "--context",
        "admin@picket-test",
        "registry",
        "tags",
        "lab",
        "--from-cluster",
        "--namespace",
        "scans",
        "-o",
        "json",
    ]);
    assert!(remote.status.success(), "{}", String::from_utf8_lossy(&remote.stderr));
    let (local, remote): (serde_json::Value, serde_json::Value) =
        (serde_json::from_slice(&local.stdout).expect("json"), serde_json::from_slice(&remote.stdout).expect("json"));
    assert_eq!(remote.as_array().map(Vec::len), Some(2), "{remote}");
    assert_eq!(remote, local, "the cluster's results are the crawl's");
    let listed = picket(&[
        "--context",
        "admin@picket-test",
        "registry",
        "list",
        "--from-cluster",
        "--namespace",
        "scans",
        "-o",
        "json",
    ]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!((listed[0]["name"].as_str(), listed[0]["origin"].as_str()), (Some("lab"), Some("cluster")), "{listed}");
    let missing = picket(&["registry", "tags", "nope", "--from-cluster", "--namespace", "scans"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no results for registry 'nope' in namespace scans"));
    // npm's records arrive: the re-match names the pod whose spec runs team/app:v2 (not
    // running: no kubelet here), through the tag the crawl recorded.
    let pod = serde_json::json!({ "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "web", "namespace": "scans" },
        "spec": { "containers": [{ "name": "app", "image": format!("{}/team/app:v2", registry.host) }] } });
    let file = dir.path().join("pod.json");
    std::fs::write(&file, serde_json::to_vec(&pod).expect("json")).expect("write");
    let created = (0..40).any(|_| {
        server.kubectl(&["apply", "-f", &file.display().to_string()]).status.success() || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            false
        }
    });
    assert!(created, "the pod is created once the namespace's service account exists");
    let npm = common::fixtures::shared_data().join("osv/npm");
    let imported = picket(&["db", "import", &npm.display().to_string(), "--name", "osv:npm"]);
    let said = String::from_utf8_lossy(&imported.stderr);
    assert!(imported.status.success(), "{said}");
    let line = said.lines().find(|l| l.contains("new: CVE-2021-44906")).unwrap_or_else(|| panic!("{said}"));
    assert!(line.contains("/ 1 pod:") && line.contains("pods: scans/web (not running)"), "{line}");
    // The console reads every namespace it may list.
    let client = server.client().await;
    let (published, unreadable) =
        picket::crawl::in_cluster::read_published(&client, "real", None).await.expect("the console's read");
    assert!(unreadable.is_empty(), "{unreadable:?}");
    assert_eq!(published.len(), 1);
    assert_eq!(serde_json::to_value(&published[0].tags).expect("json"), remote);
    assert_eq!(published[0].registry.origin, picket::crawl::overview::Origin::Cluster);
}

/// `picket cluster compare` over two real API servers (staging and prod, two contexts of one
/// merged kubeconfig): the same Deployment with another image, one only in prod (privileged),
/// and one alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_are_compared_workload_by_workload() {
    let Some(staging) = RealApiServer::start() else { return };
    let Some(prod) = RealApiServer::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let deployment = |name: &str, image: &str, privileged: bool| {
        serde_json::json!({ "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": name, "namespace": "shop" },
            "spec": { "replicas": 1, "selector": { "matchLabels": { "app": name } },
              "template": { "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": name, "image": image,
                  "securityContext": { "privileged": privileged } }] } } } })
    };
    let namespace = serde_json::json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "shop" } });
    let objects =
        |items: Vec<serde_json::Value>| serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items });
    for (server, name, items) in [
        (
            &staging,
            "staging",
            vec![
                namespace.clone(),
                deployment("api", "reg.example/api:2", false),
                deployment("web", "reg.example/web:1", false),
            ],
        ),
        (
            &prod,
            "prod",
            vec![
                namespace.clone(),
                deployment("api", "reg.example/api:1", false),
                deployment("web", "reg.example/web:1", false),
                deployment("debug", "reg.example/busybox:1", true),
            ],
        ),
    ] {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_vec(&objects(items)).expect("json")).expect("write");
        let applied = server.kubectl(&["apply", "-f", &file.display().to_string()]);
        assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    }
    // One kubeconfig per cluster, its names made its own, merged as kubectl merges them.
    let renamed = |server: &RealApiServer, name: &str| {
        let text = std::fs::read_to_string(&server.kubeconfig).expect("kubeconfig");
        let text = text
            .replace("admin@picket-test", name)
            .replace("name: picket-test", &format!("name: {name}-cluster"))
            .replace("cluster: picket-test", &format!("cluster: {name}-cluster"))
            .replace("name: admin", &format!("name: {name}-admin"))
            .replace("user: admin", &format!("user: {name}-admin"));
        let path = dir.path().join(format!("{name}.kubeconfig"));
        std::fs::write(&path, text).expect("write");
        path
    };
    let kubeconfig = format!("{}:{}", renamed(&staging, "staging").display(), renamed(&prod, "prod").display());
    let picket = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("picket runs")
    };
    let out = picket(&["cluster", "compare", "staging", "prod", "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let shop: Vec<&serde_json::Value> =
        report["workloads"].as_array().expect("workloads").iter().filter(|w| w["namespace"] == "shop").collect();
    let by_name = |name: &str| *shop.iter().find(|w| w["name"] == name).unwrap_or_else(|| panic!("{name}: {report}"));
    let api = by_name("api");
    assert_eq!(api["differences"]["images"], true, "{api}");
    assert_eq!(
        (api["sides"][0]["images"][0].as_str(), api["sides"][1]["images"][0].as_str()),
        (Some("reg.example/api:2"), Some("reg.example/api:1"))
    );
    let debug = by_name("debug");
    assert!(debug["sides"][0].is_null() && debug["differences"]["missing"] == true, "{debug}");
    assert!(!debug["sides"][1]["failed"].as_array().expect("failed").is_empty(), "privileged fails a check: {debug}");
    assert_eq!(
        by_name("web")["differences"],
        serde_json::json!({"missing": false, "images": false, "checks": false, "vulnerabilities": false})
    );
    let table = picket(&["cluster", "compare", "staging", "prod", "--differences"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.lines().next().is_some_and(|h| h.contains("STAGING") && h.contains("PROD")), "{text}");
    assert!(
        text.contains("only in prod") && text.contains("Deployment/api") && !text.contains("Deployment/web"),
        "{text}"
    );
    let missing = picket(&["cluster", "compare", "staging", "nowhere"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("nowhere"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

/// The policy CRDs install on the real (v1.20) API server: `picket policy crd --apply`, the CRDs
/// become established, a valid PicketPolicy is stored as written (and passes `policy
/// validate`), and the server's schema refuses a mode that is not one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_crds_install_and_the_server_holds_policies_to_them() {
    let Some(server) = RealApiServer::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let picket = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_picket")).args(args).output().expect("picket runs")
    };
    let crds = picket(&["policy", "crd"]);
    assert!(crds.status.success(), "{}", String::from_utf8_lossy(&crds.stderr));
    let shipped =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/policy-crds.yaml")).expect("docs/policy-crds.yaml");
    assert_eq!(
        String::from_utf8_lossy(&crds.stdout).trim_end(),
        String::from_utf8_lossy(&shipped).trim_end(),
        "the shipped CRDs are the printed ones"
    );
    let installed = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["policy", "crd", "--apply"])
        .env("KUBECONFIG", &server.kubeconfig)
        .output()
        .expect("picket runs");
    let said = String::from_utf8_lossy(&installed.stderr);
    assert!(installed.status.success(), "{said}");
    assert!(said.contains("applied CustomResourceDefinition picketclusterpolicies.picket.dev"), "{said}");
    let established = server.kubectl(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=60s",
        "crd/picketpolicies.picket.dev",
        "crd/picketclusterpolicies.picket.dev",
    ]);
    assert!(established.status.success(), "{}", String::from_utf8_lossy(&established.stderr));

    let policy = "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata:
  name: web
  namespace: default
spec:
  selector:
    owner: { kind: Deployment, name: web }
  mode: protect
  process:
    - matchPaths: [/usr/sbin/nginx]
      action: Allow
  file:
    - matchDirectories: [{ dir: /etc/nginx/, recursive: true }]
      readOnly: true
  egress:
    - peers: [{ fqdn: api.example.com }, { cidr: 10.0.0.0/8 }]
      ports: [{ port: '443', protocol: TCP }]
      applications: [TLS]
";
    let file = dir.path().join("web.yaml");
    std::fs::write(&file, policy).expect("write");
    let valid = picket(&["policy", "validate", &file.display().to_string()]);
    assert!(valid.status.success(), "{}", String::from_utf8_lossy(&valid.stderr));
    // Right after `established` the server may still be loading the new kind's schema.
    let stored = (0..40).any(|_| {
        server.kubectl(&["apply", "-f", &file.display().to_string()]).status.success() || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            false
        }
    });
    assert!(stored, "the API server takes a valid PicketPolicy");
    let got = server.kubectl(&["get", "picketpolicies.picket.dev", "-n", "default", "web", "-o", "json"]);
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    let got: serde_json::Value = serde_json::from_slice(&got.stdout).expect("json");
    let back: picket::policy::PicketPolicy =
        serde_json::from_value(got).expect("the stored object reads as a PicketPolicy");
    assert_eq!(back.spec.egress[0].peers[0].fqdn.as_deref(), Some("api.example.com"));
    assert_eq!(back.spec.file[0].match_directories[0].dir, "/etc/nginx/");

    let wrong = dir.path().join("wrong.yaml");
    std::fs::write(&wrong, policy.replace("mode: protect", "mode: enforce")).expect("write");
    let refused = server.kubectl(&["apply", "-f", &wrong.display().to_string()]);
    assert!(!refused.status.success(), "the schema refuses mode: enforce");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("spec.mode"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let said = picket(&["policy", "validate", &wrong.display().to_string()]);
    assert_eq!(said.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&said.stderr).contains("wrong.yaml:9:"),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
}

/// Exports on the real (v1.20) API server: the pods' labels and the DNS pods' labels are read
/// from the cluster (`--cluster`), and the server itself takes the NetworkPolicy and, with
/// KubeArmor's own CRD installed (vendored under tests/fixtures/schemas), the KubeArmorPolicy;
/// `picket policy apply --cluster` stores the PicketPolicy for the DaemonSet's agents.
#[test]
fn exports_read_labels_from_the_cluster_and_the_server_takes_them() {
    let Some(server) = RealApiServer::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let kubectl_ok = |args: &[&str]| {
        let out = server.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let workloads = dir.path().join("workloads.yaml");
    std::fs::write(
        &workloads,
        "apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  selector: { matchLabels: { app: web, tier: front } }
  template:
    metadata: { labels: { app: web, tier: front } }
    spec: { containers: [{ name: web, image: registry.example/web:1 }] }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: api, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  template:
    metadata: { labels: { app: api } }
    spec: { containers: [{ name: api, image: registry.example/api:1 }] }
---
apiVersion: v1
kind: Service
metadata: { name: kube-dns, namespace: kube-system }
spec:
  selector: { k8s-app: coredns-test }
  ports: [{ name: dns, port: 53, protocol: UDP }]
",
    )
    .expect("write");
    kubectl_ok(&["apply", "-f", &workloads.display().to_string()]);
    let policy = dir.path().join("web.yaml");
    std::fs::write(
        &policy,
        "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: web, namespace: shop }
spec:
  selector: { owner: { kind: Deployment, name: web } }
  mode: protect
  process:
    - matchPaths: [/usr/sbin/nginx, /bin/sh]
  file:
    - matchDirectories: [{ dir: /, recursive: true }]
      readOnly: true
    - matchDirectories: [{ dir: /var/cache/nginx/, recursive: true }]
  ingress:
    - ports: [{ port: '8080', protocol: TCP }]
  egress:
    - peers: [{ group: shop/Deployment/api }]
      ports: [{ port: '9000', protocol: TCP }]
    - peers: [{ cidr: 10.20.0.0/16 }]
      ports: [{ port: '5432', protocol: TCP }]
    - ports: [{ port: '53', protocol: UDP }, { port: '53', protocol: TCP }]
",
    )
    .expect("write");
    let picket = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .args(args)
            .env("KUBECONFIG", &server.kubeconfig)
            .output()
            .expect("picket runs")
    };
    let file = policy.display().to_string();
    // Without the cluster, the owner's labels are unknown: said, nothing printed.
    let offline = picket(&["policy", "export", &file, "--as", "networkpolicy"]);
    assert_eq!(offline.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&offline.stderr).contains("shop/Deployment/web"), "{offline:?}");

    let exported = picket(&["policy", "export", &file, "--as", "networkpolicy", "--cluster"]);
    let (yaml, said) = (String::from_utf8_lossy(&exported.stdout), String::from_utf8_lossy(&exported.stderr));
    assert!(exported.status.success(), "{said}");
    let np = dir.path().join("np.yaml");
    std::fs::write(&np, yaml.as_bytes()).expect("write");
    kubectl_ok(&["create", "-f", &np.display().to_string()]);
    let stored: serde_json::Value =
        serde_json::from_str(&kubectl_ok(&["get", "networkpolicy", "web", "-n", "shop", "-o", "json"])).expect("json");
    assert_eq!(stored["spec"]["podSelector"]["matchLabels"], serde_json::json!({ "app": "web", "tier": "front" }));
    let egress = stored["spec"]["egress"].as_array().expect("egress");
    assert_eq!(egress[0]["to"][0]["podSelector"]["matchLabels"]["app"], "api", "{stored}");
    assert_eq!(egress[1]["to"][0]["ipBlock"]["cidr"], "10.20.0.0/16");
    assert_eq!(
        egress[2]["to"][0]["podSelector"]["matchLabels"]["k8s-app"], "coredns-test",
        "the DNS pods' real labels"
    );
    assert_eq!(stored["spec"]["ingress"][0]["ports"][0]["port"], 8080);

    let crd = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schemas/kubearmorpolicy-crd.yaml");
    kubectl_ok(&["apply", "-f", crd]);
    kubectl_ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=60s",
        "crd/kubearmorpolicies.security.kubearmor.com",
    ]);
    let exported = picket(&["policy", "export", &file, "--as", "kubearmor", "--cluster"]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    assert!(String::from_utf8_lossy(&exported.stderr).contains("KubeArmor matches network protocols"), "noted");
    let ksp = dir.path().join("ksp.yaml");
    std::fs::write(&ksp, &exported.stdout).expect("write");
    kubectl_ok(&["create", "-f", &ksp.display().to_string()]);
    let stored: serde_json::Value =
        serde_json::from_str(&kubectl_ok(&["get", "kubearmorpolicy", "web", "-n", "shop", "-o", "json"]))
            .expect("json");
    assert_eq!(stored["spec"]["process"]["matchPaths"][0]["path"], "/usr/sbin/nginx");
    assert_eq!(stored["spec"]["file"]["matchDirectories"][0]["readOnly"], true);
    // The server holds a bad one to KubeArmor's schema: a relative path is refused.
    let bad = dir.path().join("bad-ksp.yaml");
    std::fs::write(
        &bad,
        String::from_utf8_lossy(&exported.stdout).replace("/usr/sbin/nginx", "nginx").replace("name: web", "name: bad"),
    )
    .expect("write");
    let refused = server.kubectl(&["create", "-f", &bad.display().to_string()]);
    assert!(!refused.status.success(), "the schema refuses a relative path");

    // The PicketPolicy itself, for the agents.
    assert!(picket(&["policy", "crd", "--apply"]).status.success());
    kubectl_ok(&["wait", "--for", "condition=established", "--timeout=60s", "crd/picketpolicies.picket.dev"]);
    let applied = picket(&["policy", "apply", &file, "--cluster"]);
    let said = String::from_utf8_lossy(&applied.stderr);
    assert!(applied.status.success() && said.contains("applied PicketPolicy shop/web"), "{said}");
    let stored: serde_json::Value =
        serde_json::from_str(&kubectl_ok(&["get", "picketpolicies.picket.dev", "web", "-n", "shop", "-o", "json"]))
            .expect("json");
    assert_eq!(stored["spec"]["mode"], "protect");
    assert_eq!(stored["spec"]["selector"]["owner"]["name"], "web");
}

/// `picket risk` against the real API server: a privileged, host-network Deployment with the
/// container runtime's socket mounted, reached by a NodePort Service and an Ingress, and with an
/// open alert from one of its pods (the controller-manager makes the ReplicaSet and pods; no
/// kubelet runs them), ranks above a locked-down one, each part explained.
#[test]
fn risk_scores_workloads_of_a_real_api_server() {
    let Some(server) = RealApiServer::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let kubectl_ok = |args: &[&str]| {
        let out = server.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let objects = dir.path().join("objects.yaml");
    std::fs::write(
        &objects,
        "apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: exposed, namespace: shop }
spec:
  selector: { matchLabels: { app: exposed } }
  template:
    metadata: { labels: { app: exposed } }
    spec:
      hostNetwork: true
      containers:
        - name: app
          image: registry.example/exposed:1
          securityContext: { privileged: true }
          volumeMounts: [{ name: sock, mountPath: /var/run/docker.sock }]
      volumes: [{ name: sock, hostPath: { path: /var/run/docker.sock } }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: quiet, namespace: shop }
spec:
  selector: { matchLabels: { app: quiet } }
  template:
    metadata: { labels: { app: quiet } }
    spec:
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: RuntimeDefault } }
      containers:
        - name: app
          image: registry.example/quiet:1
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
---
apiVersion: v1
kind: Service
metadata: { name: exposed, namespace: shop }
spec:
  type: NodePort
  selector: { app: exposed }
  ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: exposed, namespace: shop }
spec:
  rules:
    - host: shop.example
      http:
        paths: [{ path: /, pathType: Prefix, backend: { service: { name: exposed, port: { number: 80 } } } }]
",
    )
    .expect("write");
    kubectl_ok(&["apply", "-f", &objects.display().to_string()]);
    // The controller-manager makes a pod for each Deployment (Pending: no kubelet).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let pod = loop {
        let names =
            kubectl_ok(&["get", "pods", "-n", "shop", "-l", "app=exposed", "-o", "jsonpath={.items[*].metadata.name}"]);
        if let Some(name) = names.split_whitespace().next() {
            break name.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no pod of the Deployment appeared");
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    // An alert from that pod's container, kept as the console keeps what its agents send.
    let data = dir.path().join("data");
    {
        use picket::agent::alert::{Action, Alert, Trigger};
        let store = picket::store::Store::open(&data.join("store")).expect("store");
        let container = picket::agent::attribution::ContainerRef {
            runtime: picket::agent::attribution::Runtime::Containerd,
            id: "e".repeat(64),
            pod_uid: None,
            name: Some("app".into()),
            image: Some("registry.example/exposed:1".into()),
            pod_namespace: Some("shop".into()),
            pod_name: Some(pod.clone()),
            pod_owner: None,
        };
        let alert = Alert {
            id: "node-1-1-1".into(),
            at_unix_ms: picket::alert::now_unix_ms(),
            rule: "crypto-pool-port".into(),
            title: "Connection to a port mining pools use".into(),
            severity: picket::model::Severity::Critical,
            technique: "T1496".into(),
            why: "pools".into(),
            mode: picket::agent::enforce::Mode::Protect,
            action: Action::Denied,
            policy: String::new(),
            event: Trigger { kind: "connect".into(), remote: "10.0.0.9:3333".into(), ..Trigger::default() },
            ancestry: Vec::new(),
            count: 1,
        };
        let event = picket::agent::wire::WireEvent::alert("node-1", alert, Some(container));
        picket::alert::AlertLog::open(&store)
            .and_then(|log| log.record(&[event], picket::alert::now_unix_ms()))
            .expect("kept");
        store.flush().expect("flush");
    }
    let risk = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .arg("--data-dir")
            .arg(&data)
            .arg("risk")
            .args(args)
            .env("KUBECONFIG", &server.kubeconfig)
            .output()
            .expect("picket runs");
        assert!(out.status.success(), "picket risk {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let scores: Vec<serde_json::Value> = serde_json::from_str(&risk(&["--json", "--limit", "500"])).expect("JSON");
    let position = |subject: &str| {
        scores.iter().position(|s| s["subject"] == subject).unwrap_or_else(|| panic!("{subject} scored"))
    };
    let (exposed, quiet) = (position("Deployment shop/exposed"), position("Deployment shop/quiet"));
    assert!(exposed < quiet, "the riskiest first");
    let reasons = |index: usize, part: &str| -> Vec<String> {
        scores[index]["parts"]
            .as_array()
            .and_then(|parts| parts.iter().find(|p| p["name"] == part))
            .and_then(|p| p["reasons"].as_array())
            .map(|r| r.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let exposure = reasons(exposed, "exposure");
    assert!(exposure.contains(&"host network: 10".to_string()), "{exposure:?}");
    assert!(exposure.contains(&"Ingress shop/exposed: 8".to_string()), "{exposure:?}");
    assert!(exposure.contains(&"Service shop/exposed (NodePort 30080): 6".to_string()), "{exposure:?}");
    let privileges = reasons(exposed, "privileges");
    assert!(privileges.contains(&"privileged container app: 15".to_string()), "{privileges:?}");
    assert!(privileges.contains(&"host path /var/run/docker.sock: 15".to_string()), "{privileges:?}");
    assert_eq!(reasons(exposed, "alerts"), ["crypto-pool-port ×1 (critical): 10"]);
    assert!(!reasons(exposed, "compliance").is_empty(), "its failed pod-security checks count");
    assert!(reasons(quiet, "privileges").is_empty() && reasons(quiet, "exposure").is_empty());
    assert!(scores[exposed]["unknown"][0].as_str().is_some_and(|u| u.contains("no image of it was scanned")));
    // One explained, by its short name.
    let explained = risk(&["--workload", "shop/exposed"]);
    assert!(explained.starts_with("Deployment shop/exposed: "), "{explained}");
    assert!(explained.contains("\nalerts 12.6 of 20\n  crypto-pool-port ×1 (critical): 10"), "{explained}");
}

/// A minimal HTTP/1.1 receiver on loopback (a real socket, a real HTTP exchange): every POST
/// body, as JSON, in order.
fn http_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    use std::io::{BufRead, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let got: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
    let kept = std::sync::Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(stream);
            loop {
                let mut length = 0usize;
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    break;
                }
                kept.lock().expect("lock").push(serde_json::from_slice(&body).unwrap_or_default());
                let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            }
        }
    });
    (url, got)
}

/// `picket bench k8s --respond DIR` on the real API server: a privileged pod's failed checks
/// reach a webhook sink as `compliance` events, filtered by the rule's severity floor.
#[test]
fn failed_checks_reach_the_sinks_as_compliance_events() {
    let Some(server) = RealApiServer::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Namespace\nmetadata: { name: audit }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: root-shell, namespace: audit }\nspec:\n  selector: { matchLabels: { app: root-shell } }\n  template:\n    metadata: { labels: { app: root-shell } }\n    spec:\n      hostPID: true\n      containers: [{ name: sh, image: busybox:1.36, securityContext: { privileged: true } }]\n",
    )
    .expect("write");
    let out = server.kubectl(&["apply", "-f", &pod.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (url, got) = http_receiver();
    let response = dir.path().join("response");
    std::fs::create_dir_all(&response).expect("dir");
    std::fs::write(
        response.join("audit.yaml"),
        format!("version: 1\nsinks:\n  - {{ name: hook, type: webhook, url: '{url}' }}\nrules:\n  - name: audit-failures\n    match: {{ category: [compliance], namespace: [audit], severity: high }}\n    actions: [ {{ notify: hook }} ]\n"),
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["bench", "k8s", "-o", "json", "--file"])
        .arg(dir.path().join("report.json"))
        .arg("--respond")
        .arg(&response)
        .env("KUBECONFIG", &server.kubeconfig)
        .env("PICKET_DATA_DIR", dir.path().join("data"))
        .output()
        .expect("picket runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert!(stderr.contains("failed results") && !stderr.contains("still queued"), "{stderr}");
    let sent = got.lock().expect("lock").clone();
    assert!(!sent.is_empty(), "the privileged pod's failures were sent: {stderr}");
    for notification in &sent {
        assert_eq!(notification["category"], "compliance", "{notification}");
        assert_eq!(
            notification["alert"]["event"]["path"], "Deployment audit/root-shell",
            "only the audit namespace: {notification}"
        );
        let severity = notification["alert"]["severity"].as_str().unwrap_or_default();
        assert!(matches!(severity, "HIGH" | "CRITICAL"), "the floor holds: {notification}");
    }
    let rules: Vec<&str> = sent.iter().filter_map(|n| n["alert"]["rule"].as_str()).collect();
    assert!(rules.iter().any(|r| r.starts_with("compliance/")), "{rules:?}");
    assert!(sent.iter().any(|n| n["alert"]["why"].as_str().is_some_and(|w| w.contains("privileged"))), "{sent:?}");
}

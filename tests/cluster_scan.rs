//! `picket cluster scan`'s engine: the images a (mock) cluster runs, pulled from a real
//! registry (Debian's docker-registry with TLS and htpasswd) with the credentials of the pods'
//! imagePullSecrets, matched against the shared OSV records, mapped back to workloads.
//! Needs docker-registry, skopeo, openssl, htpasswd (./install.sh --dev).

mod common;

use std::process::Command;

use common::fixtures::{images, shared_data};
use common::kube_mock::{Behaviour, MockApiServer};
use common::registry::{PASSWORD, Registry, USER};
use picket::cluster::production::{self, ImageOutcome};
use picket::registry::RegistryOptions;
use picket::scan::ScanOptions;
use picket::store::Store;
use picket::vulndb::{VulnDb, import};
use serde_json::{Value, json};

fn digest_of(registry: &Registry, repo: &str) -> String {
    let out = Command::new("skopeo")
        .args(["inspect", "--format", "{{.Digest}}", "--cert-dir"])
        .arg(registry.dir.path().join("certs.d"))
        .arg("--creds")
        .arg(format!("{USER}:{PASSWORD}"))
        .arg(format!("docker://{}/{repo}", registry.host))
        .output()
        .expect("skopeo");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn meta(name: &str, namespace: &str, owner: Option<(&str, &str)>) -> Value {
    let mut m = json!({ "name": name, "namespace": namespace, "uid": format!("uid-{name}"), "resourceVersion": "1" });
    if let Some((kind, owner)) = owner {
        m["ownerReferences"] = json!([{ "apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": format!("uid-{owner}"), "controller": true }]);
    }
    m
}

/// A running pod whose container `container` runs `image` and whose kubelet reported `image_id`.
fn pod(
    name: &str,
    owner: Option<(&str, &str)>,
    container: &str,
    image: &str,
    image_id: &str,
    pull_secret: Option<&str>,
    running: bool,
) -> Value {
    let state = if running {
        json!({ "running": { "startedAt": "2026-11-20T10:00:00Z" } })
    } else {
        json!({ "waiting": { "reason": "ImagePullBackOff" } })
    };
    let mut spec = json!({ "containers": [{ "name": container, "image": image }] });
    if let Some(secret) = pull_secret {
        spec["imagePullSecrets"] = json!([{ "name": secret }]);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta(name, "payments", owner), "spec": spec,
        "status": { "phase": if running { "Running" } else { "Pending" }, "containerStatuses": [{
            "name": container, "image": image, "imageID": image_id, "ready": running, "restartCount": 0, "state": state, "lastState": {}
        }]}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn running_images_are_scanned_once_with_their_pull_secrets() {
    let Some(registry) = Registry::start(true) else {
        eprintln!("skipped: needs docker-registry, skopeo, openssl and htpasswd (./install.sh --dev)");
        return;
    };
    registry.push(&format!("oci:{}:testbed/app:v1", images().join("oci").display()), "payments/api:v1", false);
    let digest = digest_of(&registry, "payments/api:v1");
    let tag = format!("{}/payments/api:v1", registry.host);
    let image_id = format!("{}/payments/api@{digest}", registry.host);
    let auth = base64_of(&format!("{USER}:{PASSWORD}"));
    let docker_config = json!({ "auths": { registry.host.clone(): { "auth": auth } } }).to_string();

    let objects = vec![
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "payments" } }),
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("reports", "payments", None), "imagePullSecrets": [{ "name": "regcred" }] }),
        json!({ "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta("api-5f7c9", "payments", Some(("Deployment", "api"))),
                "spec": { "selector": {}, "template": { "spec": { "containers": [{ "name": "api", "image": tag }] } } } }),
        json!({ "apiVersion": "batch/v1", "kind": "Job", "metadata": meta("report-29000", "payments", Some(("CronJob", "report"))),
                "spec": { "template": { "spec": { "containers": [{ "name": "report", "image": tag }] } } } }),
        pod("api-5f7c9-x1", Some(("ReplicaSet", "api-5f7c9")), "api", &tag, &image_id, Some("regcred"), true),
        pod(
            "api-5f7c9-x2",
            Some(("ReplicaSet", "api-5f7c9")),
            "api",
            &tag,
            &format!("docker-pullable://{image_id}"),
            Some("regcred"),
            true,
        ),
        {
            // Credentials through the service account's imagePullSecrets only.
            let mut p = pod("report-29000-abc", Some(("Job", "report-29000")), "report", &tag, &image_id, None, true);
            p["spec"]["serviceAccountName"] = json!("reports");
            p
        },
        pod(
            "ghost-1",
            None,
            "ghost",
            "127.0.0.1:9/ghost/app:1",
            "127.0.0.1:9/ghost/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            None,
            true,
        ),
        pod("pending-1", None, "pending", "127.0.0.1:9/never/pulled:1", "", None, false),
        json!({ "apiVersion": "v1", "kind": "Secret", "metadata": meta("regcred", "payments", None), "type": "kubernetes.io/dockerconfigjson",
                "data": { ".dockerconfigjson": base64_of(&docker_config) } }),
    ];
    let server = MockApiServer::start(objects, Behaviour::default());
    let inv = picket::cluster::inventory::load(&server.client, "mock").await.expect("inventory");

    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("store")).expect("store");
    let db = VulnDb::open(&store).expect("db");
    for ecosystem in ["PyPI", "npm", "Debian"] {
        let loaded = import::load_path(&shared_data().join("osv").join(ecosystem)).expect("load");
        import::write_source(&db, &format!("osv:{ecosystem}"), ecosystem, loaded, (None, None)).expect("write");
    }
    let options = ScanOptions {
        // No credentials but the cluster's: the pull works only through the pull secret.
        registry: RegistryOptions { insecure: false, ca_file: Some(registry.ca()), auth_files: Some(vec![]) },
        ..ScanOptions::default()
    };
    let mut steps = Vec::new();
    let report =
        production::scan(&server.client, &inv, &store, &options, &mut |i, n, r| steps.push(format!("{i}/{n} {r}")))
            .await;
    let stored = picket::scan::stored::list(&store).expect("stored SBOMs");

    assert_eq!(
        report.images.len(),
        2,
        "one scan per digest, the pending pod ignored: {:#?}",
        report.images.iter().map(|i| &i.reference).collect::<Vec<_>>()
    );
    let app = report.images.iter().find(|i| i.digest.as_deref() == Some(digest.as_str())).expect("the app image");
    assert_eq!(app.reference, image_id);
    assert_eq!(
        app.used_by,
        vec!["CronJob payments/report (container report)", "Deployment payments/api (container api)"],
        "pods mapped to their controllers"
    );
    let ImageOutcome::Scanned { packages, findings } = &app.outcome else { panic!("not scanned: {:?}", app.outcome) };
    assert!(*packages > 10);
    assert!(findings.iter().any(|f| f.ids().any(|id| id == "CVE-2023-43804")), "urllib3's record");
    assert!(findings.iter().any(|f| f.ids().any(|id| id == "CVE-2021-44906")), "minimist's record");
    assert_eq!(stored.len(), 1, "the SBOM is stored");
    let ghost = report.images.iter().find(|i| i.reference.contains("ghost")).expect("ghost");
    let ImageOutcome::Failed { error } = &ghost.outcome else { panic!("ghost scanned?") };
    assert!(error.contains("127.0.0.1:9"), "{error}");
    assert!(report.failing(picket::model::Severity::Critical, false) >= 1);
    assert_eq!(steps.len(), 2);

    // Without the pull secret the same pull is refused, and says so.
    let objects_without: Vec<Value> = vec![
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "payments" } }),
        pod("api-1", None, "api", &tag, &image_id, Some("missing"), true),
    ];
    let server = MockApiServer::start(objects_without, Behaviour::default());
    let inv = picket::cluster::inventory::load(&server.client, "mock").await.expect("inventory");
    let report = production::scan(&server.client, &inv, &store, &options, &mut |_, _, _| {}).await;
    let ImageOutcome::Failed { error } = &report.images[0].outcome else { panic!("pulled without credentials") };
    assert!(error.contains("unauthorized") && error.contains("secret payments/missing"), "{error}");
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

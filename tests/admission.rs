//! The admission webhook against a real kube-apiserver (v1.20.2, `tests/common/kube_real.rs`):
//! `picket admission serve` registered through a real ValidatingWebhookConfiguration that
//! `picket admission install` wrote, objects created with kubectl as a user would, images in a
//! real registry (Debian's docker-registry, TLS and htpasswd) scanned into the store. Then
//! the webhook down under each failure policy, and `picket admission test` giving the live
//! answers offline.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::fixtures::{images, shared_data};
use common::kube_real::RealApiServer;
use common::registry::{PASSWORD, Registry};
use common::wait_for;
use picket::registry::RegistryOptions;
use picket::scan::{Assessment, RunOptions, ScanOptions, SourceSpec};
use picket::store::Store;
use picket::vulndb::{VulnDb, import};

fn picket() -> Command {
    Command::new(env!("CARGO_BIN_EXE_picket"))
}

/// A store holding the OSV records and the scan of `reference`.
fn store_with_scan(data_dir: &Path, registry: &Registry, reference: &str) {
    let store = Store::open(&data_dir.join("store")).expect("store");
    let db = VulnDb::open(&store).expect("db");
    for ecosystem in ["PyPI", "npm", "Debian"] {
        let loaded = import::load_path(&shared_data().join("osv").join(ecosystem)).expect("load");
        import::write_source(&db, &format!("osv:{ecosystem}"), ecosystem, loaded, (None, None)).expect("write");
    }
    let run = RunOptions {
        inventory: ScanOptions {
            registry: RegistryOptions {
                insecure: false,
                ca_file: Some(registry.ca()),
                auth_files: Some(vec![registry.docker_config(PASSWORD)]),
            },
            ..ScanOptions::default()
        },
        assessment: Assessment { vulns: true, ..Assessment::default() },
        keep: true,
        engine_sockets: Vec::new(),
    };
    let spec = SourceSpec::parse(&format!("registry:{reference}")).expect("a reference");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let scanned = runtime.block_on(picket::scan::run(&store, spec, run, std::sync::Arc::new(|_| {}))).expect("scan");
    assert!(
        scanned.findings.iter().any(|f| f.severity == picket::model::Severity::Critical),
        "the fixture image has a critical finding"
    );
}

struct Webhook {
    child: Child,
    port: u16,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, registry: &Registry, api: &RealApiServer) -> Webhook {
    let port_file = dir.join("port");
    let _ = std::fs::remove_file(&port_file);
    let docker_config = registry.docker_config(PASSWORD);
    let child = picket()
        .args(["admission", "serve", "--listen", "0.0.0.0:0", "--namespace", "picket-system", "--cluster-rules"])
        .arg("--decisions-token-file")
        .arg(dir.join("certs/decisions-token"))
        .arg("--rules")
        .arg(dir.join("rules.yaml"))
        .arg("--cert")
        .arg(dir.join("certs/tls.crt"))
        .arg("--key")
        .arg(dir.join("certs/tls.key"))
        .arg("--port-file")
        .arg(&port_file)
        .arg("--ca-file")
        .arg(registry.ca())
        .env("PICKET_DATA_DIR", dir.join("data"))
        .env("DOCKER_CONFIG", docker_config.parent().expect("its dir"))
        .env("KUBECONFIG", &api.kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("serve.log")).expect("log file"))
        .spawn()
        .expect("picket admission serve starts");
    let port = wait_for(Duration::from_secs(30), || std::fs::read_to_string(&port_file).ok()?.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!("the webhook never listened: {}", std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default())
        });
    Webhook { child, port }
}

fn register(dir: &Path, api: &RealApiServer, port: u16, failure_policy: &str) {
    let out = picket()
        .args([
            "admission",
            "install",
            "--url",
            &format!("https://127.0.0.1:{port}/validate"),
            "--failure-policy",
            failure_policy,
        ])
        .arg("--cert-dir")
        .arg(dir.join("certs"))
        .output()
        .expect("install runs");
    assert!(out.status.success(), "install: {}", String::from_utf8_lossy(&out.stderr));
    let file = dir.join("webhook.yaml");
    std::fs::write(&file, &out.stdout).expect("write the configuration");
    let applied = api.kubectl(&["apply", "-f", &file.display().to_string()]);
    assert!(applied.status.success(), "apply: {}", String::from_utf8_lossy(&applied.stderr));
}

/// Writes a pod's status as a kubelet would (there is none here): running, at `ip`.
fn set_pod_ip(api: &RealApiServer, namespace: &str, pod: &str, ip: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&api.kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("config");
        let client = kube::Client::try_from(config).expect("client");
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, namespace);
        let status = serde_json::json!({ "status": { "phase": "Running", "podIP": ip, "podIPs": [{ "ip": ip }] } });
        pods.patch_status(pod, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(status))
            .await
            .expect("the pod's status");
    });
}

/// This machine's first address that is not loopback.
fn non_loopback_address() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| !ip.is_loopback() && !ip.is_link_local()))
        .map(String::from)
}

/// kubectl create; (created, stderr).
fn create(api: &RealApiServer, file: &Path) -> (bool, String) {
    let out = api.kubectl(&["create", "-f", &file.display().to_string()]);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a manifest");
    path
}

fn privileged_pod(namespace: &str, name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels: {{ {labels} }}\nspec:\n  containers:\n    - name: app\n      image: busybox:1.36\n      securityContext:\n        privileged: true\n"
    )
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  selector:\n    matchLabels: {{ app: {name} }}\n  template:\n    metadata:\n      labels: {{ app: {name} }}\n    spec:\n      containers:\n        - name: {name}\n          image: {image}\n"
    )
}

#[test]
fn the_webhook_decides_for_a_real_api_server_and_the_offline_test_agrees() {
    let Some(registry) = Registry::start(true) else {
        eprintln!("skipped: needs docker-registry, skopeo, openssl and htpasswd (./install.sh --dev)");
        return;
    };
    let Some(api) = RealApiServer::start() else { return };
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();

    let oci = format!("oci:{}:testbed/app:v1", images().join("oci").display());
    registry.push(&oci, "payments/api:v1", false);
    registry.push(&oci, "payments/worker:v2", false);
    let scanned = format!("{}/payments/api:v1", registry.host);
    let unscanned = format!("{}/payments/worker:v2", registry.host);
    store_with_scan(&dir.join("data"), &registry, &scanned);

    let rules = format!(
        "apiVersion: picket.dev/v1
kind: PicketAdmissionConfig
spec:
  mode: protect
  unscanned: scan
  scanDeadlineSeconds: 25
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata:
  name: no-privileged
spec:
  type: deny
  message: privileged containers are not allowed
  criteria:
    - {{ name: privileged, op: '=' }}
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata:
  name: critical-cves
spec:
  type: deny
  criteria:
    - {{ name: imageRegistry, op: '=', value: '{host}' }}
    - {{ name: cveCriticalCount, op: '>=', value: 1 }}
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata:
  name: no-latest
spec:
  type: deny
  mode: monitor
  criteria:
    - {{ name: imageTag, op: '=', value: latest }}
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata:
  name: risky-sa
spec:
  type: deny
  criteria:
    - {{ name: riskyServiceAccount, op: '=' }}
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata:
  name: debug-pods
spec:
  type: exception
  criteria:
    - {{ name: labels, op: containsAll, value: [picket.dev/debug=allowed] }}
",
        host = registry.host
    );
    std::fs::write(dir.join("rules.yaml"), rules).expect("rules");
    picket::admission::install::Certificates::generate("picket-system", &["127.0.0.1".into()])
        .and_then(|c| c.write(&dir.join("certs")))
        .expect("certificates");

    for namespace in ["shop", "picket-system"] {
        let out = api.kubectl(&["create", "namespace", namespace]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // Pods wait for the namespace's default service account, which a controller makes.
        wait_for(Duration::from_secs(30), || {
            api.kubectl(&["get", "serviceaccount", "default", "-n", namespace]).status.success().then_some(())
        })
        .expect("the default service account");
    }
    // A service account bound to cluster-admin, which the webhook reads from the RBAC it lists.
    for args in [
        &["create", "serviceaccount", "powerful", "-n", "shop"][..],
        &[
            "create",
            "clusterrolebinding",
            "powerful-admin",
            "--clusterrole=cluster-admin",
            "--serviceaccount=shop:powerful",
        ],
    ] {
        let out = api.kubectl(args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // A rule kept in the cluster as a PicketAdmissionRule object, beside the file's.
    let crd = picket().args(["admission", "crd"]).output().expect("picket admission crd");
    let crd_file = write(dir, "crd.yaml", &String::from_utf8_lossy(&crd.stdout));
    let out = api.kubectl(&["apply", "-f", crd_file.to_str().expect("utf-8")]);
    assert!(out.status.success(), "the API server takes the CRD: {}", String::from_utf8_lossy(&out.stderr));
    let cluster_rule = write(
        dir,
        "cluster-rule.yaml",
        "apiVersion: picket.dev/v1\nkind: PicketAdmissionRule\nmetadata:\n  name: no-host-network\nspec:\n  type: deny\n  criteria:\n    - { name: hostNetwork, op: '=' }\n",
    );
    wait_for(Duration::from_secs(30), || {
        api.kubectl(&["apply", "-f", cluster_rule.to_str().expect("utf-8")]).status.success().then_some(())
    })
    .expect("the PicketAdmissionRule object is stored");
    let webhook = serve(dir, &registry, &api);
    register(dir, &api, webhook.port, "ignore");

    // The API server picks the configuration up within a moment: until then a probe passes.
    let probe = write(dir, "probe.yaml", &privileged_pod("shop", "probe", ""));
    let active = wait_for(Duration::from_secs(30), || {
        let (created, stderr) = create(&api, &probe);
        if created {
            api.kubectl(&["delete", "pod", "-n", "shop", "probe", "--wait=false"]);
        }
        stderr.contains("denied the request").then_some(stderr)
    })
    .expect("the webhook never denied the probe");
    assert!(active.contains("privileged containers are not allowed"), "{active}");

    let manifests = [
        ("privileged.yaml", privileged_pod("shop", "priv", "")),
        ("vulnerable.yaml", deployment("api", &scanned)),
        ("latest.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: plain\n  namespace: shop\nspec:\n  containers:\n    - name: app\n      image: busybox\n".to_string()),
        ("debug.yaml", privileged_pod("shop", "dbg", "picket.dev/debug: allowed")),
        ("unscanned.yaml", deployment("worker", &unscanned)),
        ("own-namespace.yaml", privileged_pod("picket-system", "priv", "")),
        ("host-network.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hostnet\n  namespace: shop\nspec:\n  hostNetwork: true\n  containers:\n    - name: app\n      image: busybox:1.36\n".to_string()),
        ("risky-sa.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: risky\n  namespace: shop\nspec:\n  serviceAccountName: powerful\n  containers:\n    - name: app\n      image: busybox:1.36\n".to_string()),
        (
            "cronjob.yaml",
            "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: report\n  namespace: shop\nspec:\n  schedule: '0 * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n            - name: report\n              image: busybox:1.36\n              securityContext: { privileged: true }\n".to_string(),
        ),
    ];
    let mut live = Vec::new();
    for (name, text) in &manifests {
        let path = write(dir, name, text);
        let (created, stderr) = create(&api, &path);
        live.push((name.to_string(), created, stderr));
    }
    let outcome =
        |name: &str| live.iter().find(|(n, _, _)| n == name).map(|(_, c, e)| (*c, e.clone())).expect("created");

    let (created, stderr) = outcome("privileged.yaml");
    assert!(!created, "a privileged pod is denied");
    assert!(
        stderr.contains("admission webhook \"validate.admission.picket.dev\" denied the request")
            && stderr.contains("rule \"no-privileged\"")
            && stderr.contains("container app (spec.containers[0]): privileged is true"),
        "the denial names the rule, the container and the field: {stderr}"
    );
    let (created, stderr) = outcome("vulnerable.yaml");
    assert!(!created, "a Deployment whose image has a critical CVE is denied");
    assert!(stderr.contains("rule \"critical-cves\"") && stderr.contains("CVE-"), "{stderr}");
    assert!(stderr.contains("spec.template.spec.containers[0]"), "{stderr}");
    let (created, stderr) = outcome("latest.yaml");
    assert!(created, "monitor mode allows: {stderr}");
    assert!(
        stderr.contains("Warning: picket (monitor mode) would deny Pod shop/plain") && stderr.contains("no-latest"),
        "{stderr}"
    );
    let (created, stderr) = outcome("debug.yaml");
    assert!(created, "the exception allows a privileged debug pod: {stderr}");
    let (created, stderr) = outcome("unscanned.yaml");
    assert!(!created, "an image never scanned is scanned inline, and its critical CVE denies it");
    assert!(stderr.contains("rule \"critical-cves\"") && stderr.contains("worker"), "{stderr}");
    let (created, stderr) = outcome("host-network.yaml");
    assert!(!created, "the cluster's own rule denies");
    assert!(stderr.contains("rule \"no-host-network\" (PicketAdmissionRule/no-host-network)"), "{stderr}");
    let (created, stderr) = outcome("risky-sa.yaml");
    assert!(!created, "a pod whose service account is cluster-admin is denied");
    assert!(
        stderr.contains("rule \"risky-sa\"")
            && stderr.contains("ClusterRoleBinding powerful-admin (ClusterRole cluster-admin): * on *"),
        "{stderr}"
    );
    let (created, stderr) = outcome("own-namespace.yaml");
    assert!(created, "the webhook's own namespace is never blocked: {stderr}");
    let (created, stderr) = outcome("cronjob.yaml");
    assert!(!created, "a batch/v1beta1 CronJob's pod template is judged");
    assert!(stderr.contains("spec.jobTemplate.spec.template.spec.containers[0]"), "{stderr}");

    // The console's live view: the decisions read through the API server's proxy, with the
    // token from the webhook's Secret, from a Service whose endpoint is this machine (an
    // endpoint may not be a loopback address, and the proxy takes only endpoints that name a
    // pod whose IP it is: a pod of the namespace is given that IP, as none runs here).
    match non_loopback_address() {
        None => println!("no address besides loopback: the proxied decisions are not read here"),
        Some(address) => {
            let secret = api.kubectl(&[
                "create",
                "secret",
                "generic",
                "picket-admission-tls",
                "-n",
                "picket-system",
                &format!("--from-file=decisions-token={}", dir.join("certs/decisions-token").display()),
            ]);
            assert!(secret.status.success(), "{}", String::from_utf8_lossy(&secret.stderr));
            let service = write(
                dir,
                "service.yaml",
                &format!(
                    "apiVersion: v1\nkind: Service\nmetadata: {{ name: picket-admission, namespace: picket-system }}\nspec:\n  ports: [{{ name: https, port: 443, protocol: TCP }}]\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {{ name: picket-admission, namespace: picket-system }}\nsubsets:\n  - addresses: [{{ ip: '{address}', targetRef: {{ kind: Pod, name: priv, namespace: picket-system }} }}]\n    ports: [{{ name: https, port: {}, protocol: TCP }}]\n",
                    webhook.port
                ),
            );
            let out = api.kubectl(&["apply", "-f", service.to_str().expect("utf-8")]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            set_pod_ip(&api, "picket-system", "priv", &address);
            let out = picket()
                .args(["admission", "decisions", "--cluster", "-o", "json"])
                .env("KUBECONFIG", &api.kubeconfig)
                .output()
                .expect("decisions runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let records: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            let denied = records.as_array().expect("a list").iter().find(|r| r["subject"] == "Pod shop/priv");
            let denied = denied.unwrap_or_else(|| panic!("the privileged pod's decision: {records}"));
            assert_eq!(denied["verdict"], "denied");
            assert!(denied["rules"].to_string().contains("no-privileged"), "{denied}");
            // Without the token the webhook does not tell.
            let direct = std::process::Command::new("curl")
                .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(format!("https://127.0.0.1:{}/decisions", webhook.port))
                .output();
            if let Ok(direct) = direct {
                assert_eq!(String::from_utf8_lossy(&direct.stdout), "401");
            }
        }
    }

    // The webhook down: Ignore lets the request through, Fail refuses it.
    drop(webhook);
    let down = write(dir, "down.yaml", &privileged_pod("shop", "while-down", ""));
    let (created, stderr) = create(&api, &down);
    assert!(created, "failurePolicy Ignore: allowed while the webhook is down: {stderr}");
    let port = common::silent_server();
    register(dir, &api, port, "fail");
    let refused = wait_for(Duration::from_secs(30), || {
        let path = write(dir, "down2.yaml", &privileged_pod("shop", "while-down-2", ""));
        let (created, stderr) = create(&api, &path);
        if created {
            api.kubectl(&["delete", "pod", "-n", "shop", "while-down-2", "--wait=false"]);
            None
        } else {
            Some(stderr)
        }
    })
    .expect("failurePolicy Fail never refused");
    assert!(refused.contains("failed calling webhook"), "{refused}");

    // Offline, the same rules and store give the same answers.
    let mut offline = picket();
    offline
        .args(["admission", "test", "-o", "json", "--cluster-rules", "--rules"])
        .arg(dir.join("rules.yaml"))
        .arg("--ca-file")
        .arg(registry.ca())
        .env("PICKET_DATA_DIR", dir.join("data"))
        .env("KUBECONFIG", &api.kubeconfig)
        .env("DOCKER_CONFIG", registry.docker_config(PASSWORD).parent().expect("its dir"));
    for (name, _) in &manifests {
        offline.arg(dir.join(name));
    }
    let out = offline.output().expect("admission test runs");
    assert_eq!(out.status.code(), Some(1), "a denial: exit 1: {}", String::from_utf8_lossy(&out.stderr));
    let outcomes: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let verdicts: Vec<(String, String)> = outcomes
        .as_array()
        .expect("a list")
        .iter()
        .map(|o| {
            let file = o["at"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_string();
            (
                file.split(':').next().unwrap_or_default().to_string(),
                o["decision"]["verdict"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (name, created, stderr) in &live {
        let (_, verdict) =
            verdicts.iter().find(|(f, _)| f == name).unwrap_or_else(|| panic!("{name} not judged offline"));
        assert_eq!(verdict != "denied", *created, "{name}: offline {verdict}, live {stderr}");
    }
    let warned = verdicts.iter().find(|(f, _)| f == "latest.yaml").map(|(_, v)| v.as_str());
    assert_eq!(warned, Some("warned"));

    // The dry run over what runs now: the pod created while the webhook was down is caught.
    let out = picket()
        .args(["admission", "dry-run", "-o", "json", "--rules"])
        .arg(dir.join("rules.yaml"))
        .env("KUBECONFIG", &api.kubeconfig)
        .env("PICKET_DATA_DIR", dir.join("data"))
        .output()
        .expect("dry-run runs");
    assert_eq!(out.status.code(), Some(1), "a workload would be denied: {}", String::from_utf8_lossy(&out.stderr));
    let outcomes: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let verdict_of = |namespace: &str, name: &str| {
        outcomes
            .as_array()
            .expect("a list")
            .iter()
            .find(|o| o["namespace"] == namespace && o["name"] == name)
            .map(|o| o["decision"]["verdict"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(verdict_of("shop", "while-down").as_deref(), Some("denied"), "{outcomes}");
    assert_eq!(verdict_of("shop", "dbg").as_deref(), Some("allowed"), "the exception holds");
    assert_eq!(verdict_of("shop", "plain").as_deref(), Some("warned"));
    assert_eq!(verdict_of("picket-system", "priv").as_deref(), Some("exempt"));

    // The in-cluster install, applied by picket itself: every object is taken by the API server
    // as written. (The configuration above still sends requests to the silent server under
    // failurePolicy Fail: gone first, or the Deployment would be refused.)
    let out = api.kubectl(&["delete", "validatingwebhookconfiguration", "picket-admission"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The token Secret made above by hand is generic; the install's is of type TLS.
    api.kubectl(&["delete", "secret", "picket-admission-tls", "-n", "picket-system", "--ignore-not-found"]);
    let out = picket()
        .args(["admission", "install", "--apply", "--cert-dir"])
        .arg(dir.join("in-cluster-certs"))
        .env("KUBECONFIG", &api.kubeconfig)
        .output()
        .expect("install --apply runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for what in [
        "CustomResourceDefinition picketadmissionrules.picket.dev",
        "ClusterRole picket-admission",
        "Secret picket-system/picket-admission-tls",
        "Deployment picket-system/picket-admission",
        "ValidatingWebhookConfiguration picket-admission",
    ] {
        assert!(stderr.contains(&format!("applied {what}")), "{what}: {stderr}");
    }
    let got = api.kubectl(&[
        "get",
        "deployment",
        "picket-admission",
        "-n",
        "picket-system",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].args}",
    ]);
    assert!(
        String::from_utf8_lossy(&got.stdout).contains("--cluster-rules"),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let got = api.kubectl(&[
        "get",
        "validatingwebhookconfiguration",
        "picket-admission",
        "-o",
        "jsonpath={.webhooks[0].failurePolicy} {.webhooks[0].clientConfig.service.name}",
    ]);
    assert_eq!(String::from_utf8_lossy(&got.stdout), "Ignore picket-admission");
}

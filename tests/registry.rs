//! Pulling from a real registry (Debian's docker-registry on 127.0.0.1): plain HTTP, TLS with a
//! custom CA and htpasswd, credentials from docker config.json, image indexes and platforms,
//! tampered blobs, and the errors a user meets.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::fixtures::images;
use common::registry::{PASSWORD, Registry};
use picket::registry::{ImageReference, RegistryOptions};
use picket::scan::{self, Platform, ScanOptions, SourceSpec};

type Keys = BTreeSet<(String, String, String)>;

fn keys(sbom: &scan::Sbom) -> Keys {
    sbom.packages.iter().map(|p| (p.ecosystem.osv_name().to_string(), p.name.clone(), p.version.clone())).collect()
}

fn layout_keys() -> Keys {
    let spec = SourceSpec::parse(&images().join("oci").display().to_string()).expect("spec");
    keys(&scan::inventory(&spec, &ScanOptions::default(), &|_| {}).expect("layout"))
}

async fn pull_scan(
    reference: &str,
    registry: RegistryOptions,
    platform: Platform,
) -> Result<scan::Sbom, scan::ScanError> {
    let spec = SourceSpec::parse(reference)?;
    let options = ScanOptions { registry, platform, ..ScanOptions::default() };
    scan::inventory_async(spec, options, vec![], std::sync::Arc::new(|_| {})).await
}

fn oci(name: &str, reference: &str) -> String {
    format!("oci:{}:{reference}", images().join(name).display())
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_registry_with_insecure() {
    let Some(registry) = Registry::start(false) else { return };
    registry.push(&oci("oci", "testbed/app:v1"), "testbed/app:v1", false);
    // skopeo's docker v2s2 conversion: the same image under a Docker media type
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--quiet", "--dest-tls-verify=false", "--format", "v2s2", &oci("oci", "testbed/app:v1")])
        .arg(format!("docker://{}/testbed/app:v1-docker", registry.host));
    assert!(cmd.status().expect("skopeo").success());

    let insecure = RegistryOptions { insecure: true, ..RegistryOptions::default() };
    let reference = format!("{}/testbed/app:v1", registry.host);
    let sbom = pull_scan(&reference, insecure.clone(), Platform::host()).await.expect("pull over plain HTTP");
    assert_eq!(sbom.source.kind, "registry");
    assert_eq!(keys(&sbom), layout_keys());
    let image = sbom.source.image.as_ref().expect("image");
    assert!(image.manifest_digest.as_deref().is_some_and(|d| d.starts_with("sha256:")));

    let docker = pull_scan(&format!("{}/testbed/app:v1-docker", registry.host), insecure.clone(), Platform::host())
        .await
        .expect("v2s2");
    assert_eq!(keys(&docker), layout_keys());

    // by digest
    let digest = image.manifest_digest.clone().expect("digest");
    let pinned =
        pull_scan(&format!("registry:{}/testbed/app@{digest}", registry.host), insecure.clone(), Platform::host())
            .await
            .expect("by digest");
    assert_eq!(pinned.source.image.as_ref().and_then(|i| i.manifest_digest.clone()), Some(digest));

    // without --insecure, a plain-HTTP registry is a TLS error that names the registry
    let err = pull_scan(&reference, RegistryOptions::default(), Platform::host())
        .await
        .expect_err("plain http without insecure");
    assert!(err.to_string().contains(&registry.host), "{err}");

    let err = pull_scan(&format!("{}/testbed/nope:v1", registry.host), insecure, Platform::host())
        .await
        .expect_err("missing");
    assert!(err.to_string().contains("testbed/nope:v1") && err.to_string().contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_registry_with_ca_and_htpasswd_credentials() {
    let Some(registry) = Registry::start(true) else { return };
    registry.push(&oci("oci", "testbed/app:v1"), "testbed/app:v1", false);
    let reference = format!("{}/testbed/app:v1", registry.host);
    let good = RegistryOptions {
        ca_file: Some(registry.ca()),
        auth_files: Some(vec![registry.docker_config(PASSWORD)]),
        insecure: false,
    };
    let sbom = pull_scan(&reference, good, Platform::host()).await.expect("TLS + basic auth");
    assert_eq!(keys(&sbom), layout_keys());

    let no_creds = RegistryOptions { ca_file: Some(registry.ca()), auth_files: Some(vec![]), insecure: false };
    let err = pull_scan(&reference, no_creds, Platform::host()).await.expect_err("no credentials");
    let msg = err.to_string();
    assert!(msg.contains("unauthorized") && msg.contains("no credentials were found"), "{msg}");

    let wrong = RegistryOptions {
        ca_file: Some(registry.ca()),
        auth_files: Some(vec![registry.docker_config("wrong")]),
        insecure: false,
    };
    let err = pull_scan(&reference, wrong, Platform::host()).await.expect_err("wrong password");
    assert!(err.to_string().contains("'testuser' were refused"), "{err}");

    let no_ca =
        RegistryOptions { ca_file: None, auth_files: Some(vec![registry.docker_config(PASSWORD)]), insecure: false };
    let err = pull_scan(&reference, no_ca, Platform::host()).await.expect_err("self-signed without CA");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");

    let insecure =
        RegistryOptions { ca_file: None, auth_files: Some(vec![registry.docker_config(PASSWORD)]), insecure: true };
    assert!(
        pull_scan(&reference, insecure, Platform::host()).await.is_ok(),
        "--insecure accepts the self-signed certificate"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn image_index_resolves_to_the_requested_platform() {
    let Some(registry) = Registry::start(false) else { return };
    registry.push(&oci("multi", "testbed/multi:v1"), "testbed/multi:v1", true);
    let reference = format!("{}/testbed/multi:v1", registry.host);
    let insecure = RegistryOptions { insecure: true, ..RegistryOptions::default() };
    let arm = pull_scan(&reference, insecure.clone(), Platform::parse("linux/arm64/v8").expect("platform"))
        .await
        .expect("arm64");
    assert_eq!(arm.source.image.as_ref().map(|i| i.architecture.as_str()), Some("arm64"));
    let amd = pull_scan(&reference, insecure.clone(), Platform::parse("linux/amd64").expect("platform"))
        .await
        .expect("amd64");
    assert_eq!(amd.source.image.as_ref().map(|i| i.architecture.as_str()), Some("amd64"));
    assert_ne!(
        arm.source.image.as_ref().map(|i| &i.manifest_digest),
        amd.source.image.as_ref().map(|i| &i.manifest_digest)
    );
    // Both record the index they came from: the digest kubelets and registries report.
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo");
    assert!(raw.status.success());
    let mut sha = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    std::io::Write::write_all(&mut sha.stdin.take().expect("stdin"), &raw.stdout).expect("write");
    let sum = String::from_utf8(sha.wait_with_output().expect("sha256sum").stdout).expect("utf8");
    let index = format!("sha256:{}", sum.split_whitespace().next().expect("a sum"));
    for sbom in [&arm, &amd] {
        assert_eq!(sbom.source.image.as_ref().and_then(|i| i.index_digest.as_deref()), Some(index.as_str()));
    }
    // Kept, the SBOM is found by the index digest too (what the Workloads pane looks up).
    let dir = tempfile::tempdir().expect("store dir");
    let store = picket::store::Store::open(&dir.path().join("store")).expect("store");
    let key = scan::stored::save(&store, &amd).expect("save");
    assert_ne!(key, index);
    let found = scan::stored::get(&store, &index).expect("get").expect("found by the index digest");
    assert_eq!(found.store_key(), key);
    let err =
        pull_scan(&reference, insecure, Platform::parse("linux/s390x").expect("platform")).await.expect_err("no s390x");
    assert!(err.to_string().contains("linux/arm64/v8") && err.to_string().contains("linux/amd64"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_corrupted_in_the_registry_is_refused() {
    let Some(registry) = Registry::start(false) else { return };
    registry.push(&oci("oci", "testbed/app:v1"), "testbed/app:v1", false);
    let insecure = RegistryOptions { insecure: true, ..RegistryOptions::default() };
    let reference = ImageReference::parse(&format!("{}/testbed/app:v1", registry.host)).expect("reference");
    let client = picket::registry::Client::connect(&reference, &insecure).await.expect("client");
    let (bytes, _, _) = client.manifest(&reference.repository, "v1").await.expect("manifest");
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let layer = manifest["layers"][0]["digest"].as_str().expect("digest").to_string();
    let file = registry.blob_file(&layer);
    let mut data = std::fs::read(&file).expect("blob in registry storage");
    data[100] ^= 0xff;
    std::fs::write(&file, data).expect("corrupt");
    let err = pull_scan(&reference.to_string(), insecure, Platform::host()).await.expect_err("corrupt blob");
    assert!(err.to_string().contains("digest mismatch") && err.to_string().contains(&layer), "{err}");
}

#[test]
fn cli_pulls_with_credentials_from_a_credential_helper() {
    let Some(registry) = Registry::start(true) else { return };
    registry.push(&oci("oci", "testbed/app:v1"), "testbed/app:v1", false);
    let tmp = tempfile::tempdir().expect("tempdir");
    let helper = tmp.path().join("docker-credential-picket-test");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\nread host\n[ \"$host\" = \"{}\" ] || exit 1\nprintf '{{\"Username\":\"testuser\",\"Secret\":\"{PASSWORD}\"}}'\n", registry.host),
    )
    .expect("helper");
    Command::new("chmod").arg("+x").arg(&helper).status().expect("chmod");
    std::fs::write(
        tmp.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"picket-test"}}}}"#, registry.host),
    )
    .expect("config");
    let path = format!("{}:{}", tmp.path().display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["sbom", "--no-store", "-o", "cyclonedx", "--ca-file"])
        .arg(registry.ca())
        .arg(format!("{}/testbed/app:v1", registry.host))
        .env("PATH", path)
        .env("DOCKER_CONFIG", tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path().join("xdg"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("picket sbom");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cyclonedx");
    assert_eq!(doc["components"].as_array().map(Vec::len), Some(716), "715 packages and the OS");
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_flow_with_a_token_service() {
    if !common::have_tool("openssl") {
        return;
    }
    let tokens_dir = tempfile::tempdir().expect("tempdir");
    let tokens = common::token_server::TokenServer::start(tokens_dir.path(), common::registry::USER, PASSWORD);
    let Some(registry) = Registry::start_with_tokens(&tokens.realm, &tokens.cert) else { return };
    registry.push(&oci("oci", "testbed/app:v1"), "testbed/app:v1", false);
    let reference = format!("{}/testbed/app:v1", registry.host);
    tokens.requests.lock().expect("lock").clear();

    let with_creds =
        RegistryOptions { insecure: true, auth_files: Some(vec![registry.docker_config(PASSWORD)]), ca_file: None };
    let sbom = pull_scan(&reference, with_creds, Platform::host()).await.expect("bearer pull");
    assert_eq!(keys(&sbom), layout_keys());
    let requests = tokens.requests.lock().expect("lock").clone();
    assert!(
        requests.iter().any(|(scope, authorized)| scope == "repository:testbed/app:pull" && *authorized),
        "the token was asked for the repository's pull scope with the credentials: {requests:?}"
    );

    // Without credentials the service hands out a token with no access; the registry refuses it.
    let anonymous = RegistryOptions { insecure: true, auth_files: Some(vec![]), ca_file: None };
    let err = pull_scan(&reference, anonymous, Platform::host()).await.expect_err("no access");
    assert!(err.to_string().contains("unauthorized"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_server_errors_are_retried_and_then_reported() {
    use common::fault_proxy::{Fault, FaultProxy};
    let Some(registry) = Registry::start(false) else { return };
    registry.push(&oci("oci", "testbed/app:v1"), "testbed/app:v1", false);
    let insecure = RegistryOptions { insecure: true, ..RegistryOptions::default() };
    let proxy = FaultProxy::start(
        &registry.host,
        vec![
            Fault { path_contains: "/manifests/", status: 503, retry_after: Some(1), times: 2 },
            Fault { path_contains: "/blobs/", status: 429, retry_after: Some(0), times: 1 },
            Fault { path_contains: "/blobs/", status: 502, retry_after: None, times: 1 },
        ],
    );
    let started = std::time::Instant::now();
    let sbom = pull_scan(&format!("{}/testbed/app:v1", proxy.host), insecure.clone(), Platform::host())
        .await
        .expect("retried pull");
    assert_eq!(keys(&sbom), layout_keys());
    assert_eq!(proxy.injected.load(std::sync::atomic::Ordering::SeqCst), 4, "every injected fault was met and retried");
    assert!(started.elapsed() >= std::time::Duration::from_secs(2), "Retry-After: 1 was honoured twice");

    let broken = FaultProxy::start(
        &registry.host,
        vec![Fault { path_contains: "/manifests/", status: 500, retry_after: Some(0), times: usize::MAX }],
    );
    let err = pull_scan(&format!("{}/testbed/app:v1", broken.host), insecure, Platform::host())
        .await
        .expect_err("always 500");
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert_eq!(broken.injected.load(std::sync::atomic::Ordering::SeqCst), 5, "five attempts, then the error");
}

/// A server that accepts connections and never says a word: each way of reaching it gives up
/// within seconds, saying which deadline ran out (TLS: the connect deadline covers the
/// handshake; plain HTTP: the first-byte deadline, which is not retried).
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_registry_is_given_up_on_within_seconds() {
    let port = common::silent_server();
    for insecure in [false, true] {
        let started = std::time::Instant::now();
        let options = RegistryOptions { insecure, ..RegistryOptions::default() };
        let err = pull_scan(&format!("127.0.0.1:{port}/silent/app:v1"), options, Platform::host())
            .await
            .expect_err("nothing answers");
        let text = err.to_string();
        assert!(text.contains("picket waits 5 s to connect"), "insecure {insecure}: {text}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "insecure {insecure}: {:?}", started.elapsed());
    }
}

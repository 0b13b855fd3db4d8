//! Crawling a real registry (Debian's docker-registry on 127.0.0.1) filled with small images
//! made here from real package metadata: `picket registry scan` through the binary (TLS and
//! htpasswd, filters, platforms of an index, tags moved, deleted, repositories gone), an
//! incremental crawl that fetches no blob again, a crawl killed half-way and resumed, a
//! registry answering 500, paginated catalogs, and re-matching after new advisories arrive.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::Ordering;

use common::fault_proxy::{Fault, FaultProxy};
use common::fixtures::shared_data;
use common::registry::{PASSWORD, Registry};
use sha2::{Digest, Sha256};

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Writes `data` as a blob of the layout; returns (digest, size).
fn blob(layout: &Path, data: &[u8]) -> (String, usize) {
    let digest = sha(data);
    let path = layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    std::fs::write(path, data).expect("blob");
    (digest, data.len())
}

/// A one-layer image manifest in `layout` whose layer holds a dist-info for each Python
/// package; returns the manifest's descriptor.
fn image_manifest(layout: &Path, packages: &[(&str, &str)], created: &str, arch: &str) -> serde_json::Value {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, version) in packages {
        let text = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n");
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let path = format!("usr/lib/python3/dist-packages/{name}-{version}.dist-info/METADATA");
        tar.append_data(&mut header, path, text.as_bytes()).expect("tar entry");
    }
    let raw = tar.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("gzip");
    let (layer, layer_size) = blob(layout, &gz.finish().expect("gzip"));
    let config = serde_json::json!({
        "architecture": arch, "os": "linux", "created": created,
        "rootfs": {"type": "layers", "diff_ids": [sha(&raw)]}, "config": {},
    });
    let (config, config_size) = blob(layout, config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size}],
    });
    let (digest, size) = blob(layout, manifest.to_string().as_bytes());
    serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
        "platform": {"os": "linux", "architecture": arch}})
}

fn new_layout(dir: &Path, name: &str) -> PathBuf {
    let layout = dir.join(name);
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("layout");
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    layout
}

fn write_index(layout: &Path, mut top: serde_json::Value) -> String {
    top["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "img"});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [top]});
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index.json");
    format!("oci:{}:img", layout.display())
}

/// A single-platform image; returns the skopeo source and the manifest digest.
fn python_image(dir: &Path, name: &str, packages: &[(&str, &str)], created: &str) -> (String, String) {
    let layout = new_layout(dir, name);
    let manifest = image_manifest(&layout, packages, created, "amd64");
    let digest = manifest["digest"].as_str().expect("digest").to_string();
    (write_index(&layout, manifest), digest)
}

/// An image index over amd64 and arm64 images with different packages.
fn multi_image(dir: &Path, name: &str, amd64: &[(&str, &str)], arm64: &[(&str, &str)]) -> String {
    let layout = new_layout(dir, name);
    let manifests = vec![
        image_manifest(&layout, amd64, "2024-01-01T00:00:00Z", "amd64"),
        image_manifest(&layout, arm64, "2024-01-01T00:00:00Z", "arm64"),
    ];
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests});
    let (digest, size) = blob(&layout, index.to_string().as_bytes());
    write_index(
        &layout,
        serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": digest, "size": size}),
    )
}

/// The real PyPI OSV records in two directories: every package but `held`, and `held`'s.
fn split_records(dir: &Path, held: &str) -> (PathBuf, PathBuf) {
    let (rest, only) = (dir.join("records-rest"), dir.join("records-held"));
    std::fs::create_dir_all(&rest).expect("dir");
    std::fs::create_dir_all(&only).expect("dir");
    for entry in std::fs::read_dir(shared_data().join("osv/PyPI")).expect("osv records") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("record");
        let record: serde_json::Value = serde_json::from_str(&text).expect("json");
        let names: Vec<&str> =
            record["affected"].as_array().into_iter().flatten().filter_map(|a| a["package"]["name"].as_str()).collect();
        let target = if names.contains(&held) { &only } else { &rest };
        std::fs::write(target.join(path.file_name().expect("name")), text).expect("copy");
    }
    (rest, only)
}

struct Picket {
    data: PathBuf,
    config: PathBuf,
}

impl Picket {
    fn new(dir: &Path, config: &str) -> Self {
        std::fs::create_dir_all(dir).expect("picket's directory");
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, config).expect("config");
        Self { data: dir.join("data"), config: config_path }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_picket"));
        command.arg("--data-dir").arg(&self.data).arg("--config").arg(&self.config).args(args);
        command.env_remove("REGISTRY_AUTH_FILE").env("HOME", self.data.join("home"));
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("picket runs")
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "picket {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

fn strings(value: &serde_json::Value) -> BTreeSet<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect()
}

/// The whole flow a registry's owner meets, through the binary, on TLS with htpasswd.
#[test]
fn a_registry_is_crawled_incrementally_and_rematched_when_advisories_arrive() {
    let Some(registry) = Registry::start(true) else {
        eprintln!("skipped: docker-registry, skopeo, openssl or htpasswd missing");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let images = dir.path().join("images");
    let (v1, v1_digest) = python_image(&images, "v1", &[("urllib3", "1.24.1")], "2024-01-01T00:00:00Z");
    let (v2, _) = python_image(&images, "v2", &[("urllib3", "1.24.1"), ("jinja2", "2.10")], "2024-02-01T00:00:00Z");
    let (old1, _) = python_image(&images, "old1", &[("requests", "2.19.0")], "2023-01-01T00:00:00Z");
    let (old2, _) = python_image(&images, "old2", &[("requests", "2.20.0")], "2023-02-01T00:00:00Z");
    let (other, _) = python_image(&images, "other", &[("requests", "2.19.0")], "2023-01-01T00:00:00Z");
    let web = multi_image(&images, "web", &[("requests", "2.19.0")], &[("requests", "2.19.0"), ("jinja2", "2.10")]);
    registry.push(&v1, "team/app:v1", false);
    registry.push(&v2, "team/app:v2", false);
    registry.push(&v1, "team/app:v3", false);
    registry.push(&old1, "team/old:1", false);
    registry.push(&old2, "team/old:2", false);
    registry.push(&other, "other/tool:1", false);
    registry.push(&web, "team/web:latest", true);

    let auth = registry.docker_config(PASSWORD);
    let picket = Picket::new(
        dir.path(),
        &format!(
            "registries:\n- name: lab\n  url: {host}\n  ca: {ca}\n  authFile: {auth}\n  repositories: ['team/*']\n  \
             platforms: [linux/amd64, linux/arm64]\n",
            host = registry.host,
            ca = registry.ca().display(),
            auth = auth.display()
        ),
    );
    let (rest, jinja) = split_records(dir.path(), "jinja2");
    let out = picket.run(&["db", "import", rest.to_str().expect("utf8"), "--name", "osv-rest"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let listed = picket.json(&["registry", "list", "-o", "json"]);
    assert_eq!(listed[0]["name"], "lab");
    assert_eq!(listed[0]["origin"], "config");

    // First crawl: every image in team/* once (v3 is v1 again; the index gives two).
    let first = picket.json(&["registry", "scan", "lab", "-o", "json"]);
    assert_eq!(first["repositories"], 3, "{first}");
    assert_eq!(first["tags"], 6, "{first}");
    assert_eq!(first["scanned"], 6, "v1, v2, old:1, old:2 and the index's two platforms: {first}");
    assert_eq!(first["retagged"], 1, "v3 points at v1's image: {first}");
    assert_eq!(first["errors"], serde_json::json!([]));
    let tags = picket.json(&["registry", "tags", "lab", "-o", "json"]);
    let by_tag: BTreeMap<String, &serde_json::Value> = tags
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                format!(
                    "{}:{}",
                    r["record"]["repository"].as_str().unwrap_or(""),
                    r["record"]["tag"].as_str().unwrap_or("")
                ),
                r,
            )
        })
        .collect();
    assert_eq!(
        by_tag.keys().cloned().collect::<Vec<_>>(),
        ["team/app:v1", "team/app:v2", "team/app:v3", "team/old:1", "team/old:2", "team/web:latest"],
        "other/tool is left out by the filter"
    );
    assert_eq!(by_tag["team/app:v1"]["record"]["digest"], v1_digest.as_str());
    assert_eq!(by_tag["team/app:v3"]["record"]["digest"], v1_digest.as_str());
    let web_platforms: BTreeSet<String> = by_tag["team/web:latest"]["record"]["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["platform"].as_str().map(String::from))
        .collect();
    assert_eq!(web_platforms, BTreeSet::from(["linux/amd64".to_string(), "linux/arm64".to_string()]));
    let findings = |row: &serde_json::Value| {
        row["counts"].as_array().expect("counts").iter().filter_map(|c| c.as_u64()).sum::<u64>()
    };
    assert!(findings(by_tag["team/app:v1"]) > 0, "urllib3 1.24.1 has advisories: {}", by_tag["team/app:v1"]);
    assert_eq!(findings(by_tag["team/app:v1"]), findings(by_tag["team/app:v3"]));

    // Nothing changed: no blob is fetched again, only manifests.
    let log_before = std::fs::read_to_string(registry.dir.path().join("registry.log")).unwrap_or_default();
    let second = picket.json(&["registry", "scan", "lab", "-o", "json"]);
    assert_eq!((second["scanned"].as_u64(), second["unchanged"].as_u64()), (Some(0), Some(6)), "{second}");
    let log_after = std::fs::read_to_string(registry.dir.path().join("registry.log")).unwrap_or_default();
    let new_lines = &log_after[log_before.len().min(log_after.len())..];
    assert!(new_lines.contains("/manifests/"), "the registry's access log shows the re-crawl: {new_lines}");
    let blob_lines: Vec<&str> = new_lines.lines().filter(|l| l.contains("/blobs/")).collect();
    assert!(blob_lines.is_empty(), "an unchanged registry is crawled without blob fetches: {blob_lines:?}");

    // A tag moved to a known image, a tag deleted, a repository gone.
    registry.push(&v2, "team/app:v3", false);
    let removed = Command::new("skopeo")
        .args(["delete", "--cert-dir"])
        .arg(registry.dir.path().join("certs.d"))
        .args(["--creds", &format!("testuser:{PASSWORD}")])
        .arg(format!("docker://{}/team/old:1", registry.host))
        .output()
        .expect("skopeo delete");
    assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
    let third = picket.json(&["registry", "scan", "lab", "-o", "json"]);
    assert_eq!(third["scanned"], 0, "v3 now points at v2's image, already stored: {third}");
    assert_eq!(third["retagged"], 1, "{third}");
    assert_eq!(strings(&third["deleted_tags"]), BTreeSet::from(["team/old:1".to_string()]), "{third}");
    std::fs::remove_dir_all(registry.dir.path().join("data/docker/registry/v2/repositories/team/old"))
        .expect("rm repo");
    let fourth = picket.json(&["registry", "scan", "lab", "-o", "json"]);
    assert_eq!(strings(&fourth["deleted_repositories"]), BTreeSet::from(["team/old".to_string()]), "{fourth}");
    let tags = picket.json(&["registry", "tags", "lab", "-o", "json"]);
    assert_eq!(tags.as_array().map(Vec::len), Some(4), "{tags}");

    // New advisories: jinja2's. The re-match reads no registry and names exactly the images
    // with jinja2 2.10 (team/app:v2's image, and the index's arm64 image).
    let blobs_before = std::fs::read_to_string(registry.dir.path().join("registry.log")).unwrap_or_default().len();
    let out = picket.run(&["db", "import", jinja.to_str().expect("utf8"), "--name", "osv-jinja2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr);
    // Six: the images of team/old stay stored after their repository went (nothing is lost).
    assert!(said.contains("re-matched 6 stored SBOMs"), "{said}");
    let log = std::fs::read_to_string(registry.dir.path().join("registry.log")).unwrap_or_default();
    assert_eq!(log.len(), blobs_before, "re-matching talked to the registry: {}", &log[blobs_before..]);
    let tags = picket.json(&["registry", "tags", "lab", "-o", "json"]);
    let mut changed = BTreeMap::new();
    for row in tags.as_array().expect("rows") {
        let name = format!(
            "{}:{}",
            row["record"]["repository"].as_str().unwrap_or(""),
            row["record"]["tag"].as_str().unwrap_or("")
        );
        changed.insert(name, (strings(&row["new"]), strings(&row["fixed"])));
    }
    let v2_new = &changed["team/app:v2"].0;
    assert!(!v2_new.is_empty() && v2_new.iter().all(|k| k.contains(" jinja2 2.10")), "{v2_new:?}");
    assert_eq!(&changed["team/app:v3"].0, v2_new, "v3 is v2's image now");
    assert_eq!(&changed["team/web:latest"].0, v2_new, "the arm64 image has jinja2 2.10 too");
    assert!(changed["team/app:v1"].0.is_empty() && changed["team/app:v1"].1.is_empty(), "v1 has no jinja2");
    // Exactly what a fresh scan of v2's image with the whole database finds for jinja2.
    let reference = format!("{}/team/app:v2", registry.host);
    let scanned = picket
        .command(&["scan", "image", &reference, "--ca-file", registry.ca().to_str().expect("utf8"), "-o", "json"])
        .env("REGISTRY_AUTH_FILE", &auth)
        .output()
        .expect("picket runs");
    let scan: serde_json::Value = serde_json::from_slice(&scanned.stdout)
        .unwrap_or_else(|e| panic!("scan image: {e}: {}", String::from_utf8_lossy(&scanned.stderr)));
    let fresh: BTreeSet<String> = scan["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["package"]["name"] == "jinja2")
        .map(|f| format!("{} jinja2 2.10", f["id"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(v2_new, &fresh);
    let report = picket.json(&["db", "rematch", "-o", "json"]);
    assert_eq!(report["changed"], serde_json::json!([]), "a second re-match with no database change changes nothing");
}

/// A crawl killed while the registry fails resumes where it stopped; a registry answering 500
/// for a while is waited out; one that keeps failing leaves the crawl open, exit 3; catalogs
/// and tag lists are read page by page.
#[test]
fn a_killed_crawl_resumes_and_server_errors_are_waited_out_or_reported() {
    let Some(registry) = Registry::start(false) else {
        eprintln!("skipped: docker-registry or skopeo missing");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let images = dir.path().join("images");
    for (i, repository) in ["a/one", "b/two", "c/three", "z/slow"].iter().enumerate() {
        let version = format!("1.{i}.0");
        let (source, _) = python_image(
            &images,
            repository.replace('/', "-").as_str(),
            &[("requests", &version)],
            "2024-01-01T00:00:00Z",
        );
        registry.push(&source, &format!("{repository}:1"), false);
        registry.push(&source, &format!("{repository}:2"), false);
        registry.push(&source, &format!("{repository}:3"), false);
    }
    // z/slow's blobs fail with Retry-After: the crawl sits there until it is killed.
    let proxy = FaultProxy::start(
        &registry.host,
        vec![Fault { path_contains: "/v2/z/slow/blobs/", status: 503, retry_after: Some(2), times: 4 }],
    );
    let picket = Picket::new(dir.path(), &format!("registries:\n- name: flaky\n  url: http://{}\n", proxy.host));
    let mut child = picket.command(&["registry", "scan", "-o", "json"]).spawn().expect("picket runs");
    // Killed once a, b and c had their blobs and z/slow has waited out a few refusals.
    let reached = common::wait_for(std::time::Duration::from_secs(60), || {
        let requests = proxy.requests.lock().expect("requests");
        let others_fetched = ["/v2/a/one/blobs/", "/v2/b/two/blobs/", "/v2/c/three/blobs/"]
            .iter()
            .all(|repository| requests.iter().any(|r| r.contains(repository)));
        (others_fetched && proxy.injected.load(Ordering::SeqCst) >= 3).then_some(())
    });
    assert!(reached.is_some(), "the crawl reached z/slow: {:?}", proxy.requests.lock().expect("requests"));
    child.kill().expect("kill");
    let _ = child.wait();
    let before_resume = proxy.requests.lock().expect("requests").len();
    let resumed = picket.json(&["registry", "scan", "-o", "json"]);
    assert_eq!(resumed["resumed"], true, "{resumed}");
    assert_eq!(resumed["repositories_skipped"], 3, "a, b and c were finished before the kill: {resumed}");
    assert_eq!(resumed["scanned"], 1, "only z/slow's image is pulled: {resumed}");
    assert_eq!(resumed["errors"], serde_json::json!([]), "{resumed}");
    let requests = proxy.requests.lock().expect("requests").clone();
    let blobs_after: Vec<&String> =
        requests[before_resume..].iter().filter(|r| r.starts_with("GET ") && r.contains("/blobs/")).collect();
    assert!(
        !blobs_after.is_empty() && blobs_after.iter().all(|r| r.contains("/v2/z/slow/")),
        "after the resume only z/slow's blobs are fetched: {blobs_after:?}"
    );
    let list = picket.json(&["registry", "list", "-o", "json"]);
    assert!(list[0]["crawl"]["finished"].is_string(), "{list}");

    // 500 on the catalog for a while: waited out.
    let brief = FaultProxy::start(
        &registry.host,
        vec![Fault { path_contains: "/v2/_catalog", status: 500, retry_after: Some(1), times: 2 }],
    );
    let picket_brief =
        Picket::new(&dir.path().join("brief"), &format!("registries:\n- name: brief\n  url: http://{}\n", brief.host));
    let out = picket_brief.json(&["registry", "scan", "-o", "json"]);
    assert_eq!((out["repositories"].as_u64(), out["errors"].as_array().map(Vec::len)), (Some(4), Some(0)), "{out}");
    assert_eq!(brief.injected.load(Ordering::SeqCst), 2);

    // 500 on one repository's tags, always: the rest is crawled, the crawl stays open, exit 3.
    let broken = FaultProxy::start(
        &registry.host,
        vec![Fault { path_contains: "/v2/b/two/tags/", status: 500, retry_after: Some(0), times: usize::MAX }],
    );
    let picket_broken = Picket::new(
        &dir.path().join("broken"),
        &format!("registries:\n- name: broken\n  url: http://{}\n", broken.host),
    );
    let out = picket_broken.run(&["registry", "scan", "-o", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
    let errors = report["errors"].as_array().expect("errors");
    assert!(
        errors.len() == 1 && errors[0].as_str().is_some_and(|e| e.contains("b/two") && e.contains("500")),
        "{report}"
    );
    assert_eq!(report["scanned"], 3, "a, c and z were scanned: {report}");
    let list = picket_broken.json(&["registry", "list", "-o", "json"]);
    assert!(list[0]["crawl"]["finished"].is_null(), "a crawl with errors stays open: {list}");
}

/// Catalogs and tag lists longer than a page are read whole through `Link` headers.
#[tokio::test(flavor = "multi_thread")]
async fn catalogs_and_tag_lists_are_read_page_by_page() {
    let Some(registry) = Registry::start(false) else {
        eprintln!("skipped: docker-registry or skopeo missing");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (source, _) = python_image(dir.path(), "img", &[("requests", "2.19.0")], "2024-01-01T00:00:00Z");
    for repository in ["p/a", "p/b", "p/c", "p/d", "p/e"] {
        registry.push(&source, &format!("{repository}:1"), false);
    }
    for tag in ["2", "3", "4", "5"] {
        registry.push(&source, &format!("p/a:{tag}"), false);
    }
    let proxy = FaultProxy::start(&registry.host, Vec::new());
    let options = picket::registry::RegistryOptions { insecure: true, ..Default::default() };
    let client = picket::registry::Client::connect_registry(&proxy.host, &options).await.expect("client");
    let catalog = client.catalog(2).await.expect("catalog");
    assert_eq!(catalog, ["p/a", "p/b", "p/c", "p/d", "p/e"]);
    let mut tags = client.tags("p/a", 2).await.expect("tags");
    tags.sort();
    assert_eq!(tags, ["1", "2", "3", "4", "5"], "every tag once");
    let requests = proxy.requests.lock().expect("requests").clone();
    assert_eq!(requests.iter().filter(|r| r.contains("/v2/_catalog")).count(), 3, "three pages of two: {requests:?}");
    // This registry (distribution 2.8) answers a tag list whole whatever `n` says; the Link
    // parsing tags share with the catalog is what the catalog pages exercise.
    assert!(requests.iter().any(|r| r.contains("/v2/p/a/tags/list?n=2")), "{requests:?}");
}

/// `lastTags` keeps the newest tags by the images' creation time, `excludeTags` leaves release
/// candidates out, and `--watch` crawls again: a newer tag pushed meanwhile is scanned, and the
/// tag it pushes out of the newest two leaves the records.
#[test]
fn the_newest_tags_are_kept_and_watch_crawls_again() {
    let Some(registry) = Registry::start(false) else {
        eprintln!("skipped: docker-registry or skopeo missing");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let images = dir.path().join("images");
    let month = |m: u32, version: &str| {
        python_image(&images, &format!("m{m}"), &[("requests", version)], &format!("2024-0{m}-01T00:00:00Z")).0
    };
    registry.push(&month(1, "2.19.0"), "team/svc:a", false);
    registry.push(&month(3, "2.20.0"), "team/svc:c", false);
    registry.push(&month(2, "2.21.0"), "team/svc:b", false);
    registry.push(&month(4, "2.22.0"), "team/svc:d-rc1", false);
    let picket = Picket::new(
        dir.path(),
        &format!(
            "registries:\n- name: lab\n  url: http://{}\n  lastTags: 2\n  excludeTags: ['*-rc*']\n",
            registry.host
        ),
    );
    let mut child = picket
        .command(&["registry", "scan", "--watch", "10s", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("picket runs");
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(report) = serde_json::from_str(&line) {
                let _ = tx.send(report);
            }
        }
    });
    let next = || rx.recv_timeout(std::time::Duration::from_secs(60)).expect("a crawl report in time");
    let first = next();
    let tags_of = |picket: &Picket| -> BTreeSet<String> {
        picket
            .json(&["registry", "tags", "lab", "-o", "json"])
            .as_array()
            .expect("rows")
            .iter()
            .filter_map(|r| r["record"]["tag"].as_str().map(String::from))
            .collect()
    };
    // Three tags read (d-rc1 excluded), the newest two (c, b) scanned.
    assert_eq!((first["tags"].as_u64(), first["scanned"].as_u64()), (Some(3), Some(2)), "{first}");
    registry.push(&month(5, "2.23.0"), "team/svc:e", false);
    let second = next();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(second["scanned"], 1, "only the new tag's image: {second}");
    assert_eq!(second["deleted_tags"], serde_json::json!([]), "b was left out, not deleted: {second}");
    assert_eq!(tags_of(&picket), BTreeSet::from(["c".to_string(), "e".to_string()]));
}

//! Container engines read through their real API sockets: Podman's Docker-compatible service
//! and Docker Engine. Needs root, podman, runc, dockerd (./install.sh --dev).

mod common;

use common::engines::{Dockerd, Podman};
use picket::engine::{self, EngineKind};

/// The same three containers on either engine: a hardened one, a risky one, one never started.
fn hardened_args(image: &str) -> Vec<String> {
    [
        "run",
        "-d",
        "--name",
        "picket-hardened",
        "--network",
        "none",
        "--read-only",
        "--user",
        "1000:1000",
        "--cap-drop",
        "ALL",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--label",
        "team=payments",
        "-e",
        "API_TOKEN=s3cret",
        image,
        "sleep",
        "600",
    ]
    .map(String::from)
    .to_vec()
}

fn risky_args(image: &str, etc: &str) -> Vec<String> {
    [
        "run",
        "-d",
        "--name",
        "picket-risky",
        "--network",
        "none",
        "--pid",
        "host",
        "--cap-add",
        "NET_ADMIN",
        "--security-opt",
        "seccomp=unconfined",
        "-v",
        etc,
        image,
        "sleep",
        "600",
    ]
    .map(String::from)
    .to_vec()
}

async fn check_engine(socket: &std::path::Path, kind: EngineKind) {
    let info = engine::probe(socket).await.expect("probe");
    assert_eq!(info.kind, kind);
    assert!(!info.version.is_empty() && !info.api_version.is_empty());
    let state_of = |name: &str| {
        info.containers
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.state.clone())
            .unwrap_or_else(|| panic!("{name} not listed: {:?}", info.containers))
    };
    assert_eq!(state_of("picket-hardened"), "running");
    assert_eq!(state_of("picket-risky"), "running");
    assert_eq!(state_of("picket-idle"), "created");
    assert!(info.containers.iter().all(|c| c.engine == kind && c.socket == socket));

    let hardened = engine::inspect(socket, "picket-hardened").await.expect("inspect hardened");
    assert_eq!(hardened.user, "1000:1000");
    assert!(hardened.read_only_rootfs);
    assert!(!hardened.privileged);
    assert_eq!(hardened.memory_limit, 64 * 1024 * 1024);
    assert_eq!(hardened.pids_limit, 50);
    // Docker reports `--cap-drop ALL` as "ALL"; Podman lists every default capability it dropped.
    let dropped = |cap: &str| hardened.cap_drop.iter().any(|c| c.trim_start_matches("CAP_").eq_ignore_ascii_case(cap));
    assert!(
        dropped("ALL") || ["CHOWN", "NET_RAW", "SETUID", "KILL"].iter().all(|c| dropped(c)),
        "{:?}",
        hardened.cap_drop
    );
    assert_eq!(hardened.command, "sleep 600");
    assert!(hardened.pid > 0 && !hardened.started_at.is_empty());
    assert!(hardened.env_names.contains(&"API_TOKEN".to_string()));
    assert!(!format!("{hardened:?}").contains("s3cret"), "environment values must not be read into the console");
    assert_eq!(hardened.labels.get("team").map(String::as_str), Some("payments"));

    let risky = engine::inspect(socket, "picket-risky").await.expect("inspect risky");
    assert!(risky.cap_add.iter().any(|c| c.ends_with("NET_ADMIN")), "{:?}", risky.cap_add);
    assert_eq!(risky.pid_mode, "host");
    assert!(risky.security_opt.iter().any(|o| o == "seccomp=unconfined"), "{:?}", risky.security_opt);
    assert!(risky.mounts.iter().any(|m| m == "/etc -> /host-etc (ro)"), "{:?}", risky.mounts);
    assert_eq!(risky.user, "root (image default)");

    let idle = engine::inspect(socket, "picket-idle").await.expect("inspect idle");
    assert_eq!((idle.pid, idle.started_at.as_str()), (0, ""));

    let missing = engine::inspect(socket, "no-such-container").await.expect_err("missing container").to_string();
    assert!(missing.contains(&socket.display().to_string()) && missing.contains("no-such-container"), "{missing}");
}

#[tokio::test(flavor = "multi_thread")]
async fn podman_containers_and_settings_through_the_compat_api() {
    let Some(podman) = Podman::start() else { return };
    let args = hardened_args(Podman::IMAGE);
    podman.podman(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let args = risky_args(Podman::IMAGE, "/etc:/host-etc:ro");
    podman.podman(&args.iter().map(String::as_str).collect::<Vec<_>>());
    podman.podman(&["create", "--name", "picket-idle", Podman::IMAGE, "true"]);
    check_engine(&podman.socket, EngineKind::Podman).await;

    let probes = engine::discover(std::slice::from_ref(&podman.socket)).await;
    assert_eq!(probes.len(), 1);
    assert_eq!(probes[0].result.as_ref().expect("engine answers").containers.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_engine_containers_and_settings() {
    let Some(dockerd) = Dockerd::start() else { return };
    let args = hardened_args(Dockerd::IMAGE);
    dockerd.docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let args = risky_args(Dockerd::IMAGE, "/etc:/host-etc:ro");
    dockerd.docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
    dockerd.docker(&["create", "--name", "picket-idle", Dockerd::IMAGE, "true"]);
    check_engine(&dockerd.socket, EngineKind::Docker).await;
}

/// (ecosystem, name, version) of an SBOM.
fn package_keys(sbom: &picket::scan::Sbom) -> std::collections::BTreeSet<(String, String, String)> {
    sbom.packages.iter().map(|p| (p.ecosystem.osv_name().to_string(), p.name.clone(), p.version.clone())).collect()
}

async fn scan_engine_image(spec: &str, socket: &std::path::Path) -> picket::scan::Sbom {
    let spec = picket::scan::SourceSpec::parse(spec).expect("spec");
    picket::scan::inventory_async(spec, Default::default(), vec![socket.to_path_buf()], std::sync::Arc::new(|_| {}))
        .await
        .expect("engine image inventory")
}

#[tokio::test(flavor = "multi_thread")]
async fn images_are_listed_and_scanned_through_the_engine_apis() {
    let layout = common::fixtures::images().join("oci").display().to_string();
    let spec = picket::scan::SourceSpec::parse(&layout).expect("spec");
    let expected = package_keys(&picket::scan::inventory(&spec, &Default::default(), &|_| {}).expect("layout"));
    let archive = common::fixtures::images().join("app-docker.tar").display().to_string();

    if let Some(podman) = Podman::start() {
        podman.podman(&["load", "-q", "-i", &archive]);
        let info = engine::probe(&podman.socket).await.expect("probe");
        assert!(info.images.iter().any(|i| i.tags.iter().any(|t| t.ends_with("testbed/app:v1"))), "{:?}", info.images);
        let sbom = scan_engine_image("podman:docker.io/testbed/app:v1", &podman.socket).await;
        assert_eq!(sbom.source.kind, "podman");
        assert_eq!(package_keys(&sbom), expected);
        let err = picket::scan::inventory_async(
            picket::scan::SourceSpec::parse("docker:docker.io/testbed/app:v1").expect("spec"),
            Default::default(),
            vec![podman.socket.clone()],
            std::sync::Arc::new(|_| {}),
        )
        .await
        .expect_err("only a Podman engine is there");
        assert!(err.to_string().contains("Docker engine"), "{err}");
    }
    if let Some(dockerd) = Dockerd::start() {
        dockerd.docker(&["load", "-q", "-i", &archive]);
        let sbom = scan_engine_image("docker:testbed/app:v1", &dockerd.socket).await;
        assert_eq!(sbom.source.kind, "docker");
        assert_eq!(package_keys(&sbom), expected);
        let err = picket::scan::inventory_async(
            picket::scan::SourceSpec::parse("engine:no/such:image").expect("spec"),
            Default::default(),
            vec![dockerd.socket.clone()],
            std::sync::Arc::new(|_| {}),
        )
        .await
        .expect_err("missing image");
        assert!(err.to_string().contains("no/such:image"), "{err}");
    }
}

/// The Images pane's scan (`s`, then `v`) and `picket scan image` of the same engine image report
/// the same findings: the console's scan collects secrets as the CLI's does.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_and_the_cli_scan_an_engine_image_alike() {
    use picket::app::action::{Action, Effect};
    let Some(podman) = Podman::start() else {
        eprintln!("skipped: needs root, podman and runc (./install.sh --dev)");
        return;
    };
    let key = format!("AKIA{}", "Q7M4XZ2RB5KT3NWD");
    podman.podman(&[
        "run",
        "--name",
        "with-secret",
        Podman::IMAGE,
        "sh",
        "-c",
        &format!("echo AWS_ACCESS_KEY_ID={key} > /deploy.env"),
    ]);
    podman.podman(&["commit", "-q", "with-secret", "localhost/picket-secret:1"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, cwd) = (tmp.path().join("data"), tmp.path().join("work"));
    std::fs::create_dir_all(&cwd).expect("work dir");
    let picket = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .args(args)
            .current_dir(&cwd)
            .env("PICKET_DATA_DIR", &data)
            .env("DOCKER_HOST", format!("unix://{}", podman.socket.display()))
            .env("NO_COLOR", "1")
            .output()
            .expect("picket runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let npm = common::fixtures::shared_data().join("osv/npm").display().to_string();
    picket(&["db", "import", &npm, "--name", "osv:npm"]);
    let cli: serde_json::Value =
        serde_json::from_str(&picket(&["scan", "image", "podman:localhost/picket-secret:1", "-o", "json"]))
            .expect("json report");
    let ids = |findings: &serde_json::Value| -> std::collections::BTreeSet<String> {
        let list = findings.as_array().cloned().unwrap_or_default();
        list.iter().map(|f| format!("{} {}", f["id"].as_str().unwrap_or_default(), f["locations"][0]["path"])).collect()
    };
    let cli_ids = ids(&cli["findings"]);
    assert!(cli_ids.iter().any(|id| id.contains("deploy.env")), "the CLI reports the secret: {cli_ids:?}");

    let store = std::sync::Arc::new(picket::store::Store::open(&data.join("store")).expect("store"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let effects = picket::app::effects::Effects::new(tx, store, vec![], Default::default(), tmp.path().into());
    effects.run(Effect::ScanImage {
        request: 1,
        name: "localhost/picket-secret:1".into(),
        kind: EngineKind::Podman,
        socket: podman.socket.clone(),
    });
    let mut stored_key = None;
    let mut console = None;
    while let Some(action) =
        tokio::time::timeout(std::time::Duration::from_secs(120), rx.recv()).await.expect("an answer in time")
    {
        match action {
            Action::ScanFinished { result, .. } => {
                let stored = result.expect("the console's scan");
                stored_key = Some(stored.key.clone());
                effects.run(Effect::LoadFindings {
                    request: 2,
                    key: stored.key,
                    ignore_path: cwd.join(".picketignore"),
                });
            }
            Action::FindingsLoaded { request: 2, result } => {
                console = Some(result.expect("findings"));
                break;
            }
            _ => {}
        }
    }
    assert!(stored_key.is_some());
    let console = console.expect("the Findings pane's data");
    let console_ids = ids(&serde_json::to_value(&console.findings).expect("json"));
    assert_eq!(console_ids, cli_ids, "the same findings in the console and the CLI");
}

/// A database update that gives a running container's image a new advisory says so: "affects
/// 1 image / 1 running container", naming the container, from the engine's image id.
#[test]
fn new_advisories_name_the_running_containers_they_affect() {
    let Some(podman) = common::engines::Podman::start() else {
        eprintln!("skipped: needs podman, runc and root");
        return;
    };
    podman.podman(&[
        "run",
        "--name",
        "build-jinja",
        Podman::IMAGE,
        "sh",
        "-c",
        "mkdir -p /usr/lib/python3/dist-packages/Jinja2-2.10.dist-info && \
         printf 'Metadata-Version: 2.1\\nName: Jinja2\\nVersion: 2.10\\n' \
         > /usr/lib/python3/dist-packages/Jinja2-2.10.dist-info/METADATA",
    ]);
    podman.podman(&["commit", "-q", "build-jinja", "localhost/picket-jinja:1"]);
    podman.podman(&["run", "-d", "--name", "web", "localhost/picket-jinja:1", "sleep", "600"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let picket = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .args(args)
            .env("PICKET_DATA_DIR", &data)
            .env("DOCKER_HOST", format!("unix://{}", podman.socket.display()))
            .env("NO_COLOR", "1")
            .output()
            .expect("picket runs");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The database first holds no jinja2 record; the image is scanned and stored.
    let records = common::fixtures::shared_data().join("osv/PyPI");
    let (jinja, rest) = (tmp.path().join("jinja"), tmp.path().join("rest"));
    for dir in [&jinja, &rest] {
        std::fs::create_dir_all(dir).expect("dir");
    }
    for entry in std::fs::read_dir(&records).expect("records").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let to = if text.to_lowercase().contains("\"jinja2\"") { &jinja } else { &rest };
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
    picket(&["db", "import", &rest.display().to_string(), "--name", "pypi-rest"]);
    picket(&["scan", "image", "podman:localhost/picket-jinja:1", "-o", "json"]);
    let said = picket(&["db", "import", &jinja.display().to_string(), "--name", "pypi-jinja2"]);
    let line = said.lines().find(|l| l.contains("new: CVE-2019-10906")).unwrap_or_else(|| panic!("{said}"));
    assert!(line.contains("affects 1 image / 1 running container"), "{line}");
    assert!(line.contains("running: web (podman)"), "{line}");
    assert!(line.contains("picket-jinja:1"), "{line}");
}

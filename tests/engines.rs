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

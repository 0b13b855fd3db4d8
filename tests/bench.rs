//! `picket bench docker` against real engines: Docker Engine (dockerd confined to a temp dir)
//! and Podman's Docker-compatible API, each running a hardened container that passes the
//! runtime checks and risky ones that fail them. Needs root, dockerd, podman, runc
//! (./install.sh --dev); skipped with a message where they are missing.

mod common;

use std::process::{Command, Output};

use common::engines::{Dockerd, Podman};
use serde_json::Value;

fn bench(socket: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["bench", "docker", "--host"])
        .arg(format!("unix://{}", socket.display()))
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .expect("picket runs")
}

fn bench_json(socket: &std::path::Path) -> Value {
    let out = bench(socket, &["-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

/// The status of check `id` for `subject` (`container NAME`, `daemon`, a path).
fn status(report: &Value, id: &str, subject: &str) -> String {
    let check = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"));
    let result = check["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["subject"] == subject)
        .unwrap_or_else(|| panic!("check {id} has no result for {subject}: {:#}", check["results"]));
    result["status"].as_str().expect("status").to_string()
}

/// Container checks both engines support, with the risky container's expected status.
const RISKY_FAILS: &[&str] =
    &["4.1", "5.4", "5.6", "5.7", "5.11", "5.13", "5.16", "5.17", "5.22", "5.26", "5.27", "5.29", "5.32"];

fn hardened(image: &str) -> Vec<String> {
    let args = "run -d --name cis-good --network none --read-only --user 1000:1000 --cap-drop ALL \
                --security-opt no-new-privileges --memory 128m --pids-limit 50 --cpu-shares 512 \
                --health-cmd true";
    args.split_whitespace().map(String::from).chain([image.to_string(), "sleep".into(), "600".into()]).collect()
}

/// Host PID and IPC, SYS_ADMIN, no seccomp, the engine's socket and /etc mounted, and a
/// process named sshd (a script, since the test image is busybox).
fn risky(image: &str, socket: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = "run -d --name cis-risky --pid host --ipc host --cap-add SYS_ADMIN \
                --security-opt seccomp=unconfined -v /etc:/host-etc:ro"
        .split_whitespace()
        .map(String::from)
        .collect();
    args.push("-v".into());
    args.push(format!("{}:/var/run/docker.sock", socket.display()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(image.into());
    args.extend(
        ["sh", "-c", "printf '#!/bin/sh\\nsleep 600\\n' > /sshd && chmod +x /sshd && exec /bin/sh /sshd -D"]
            .map(String::from),
    );
    args
}

fn assert_runtime_checks(report: &Value) {
    for id in RISKY_FAILS {
        assert_eq!(status(report, id, "container cis-risky"), "FAIL", "{id} on the risky container");
        assert_eq!(status(report, id, "container cis-good"), "PASS", "{id} on the hardened container");
    }
    assert_eq!(status(report, "5.5", "container cis-good"), "PASS");
}

#[test]
fn docker_engine_daemon_files_and_containers() {
    let Some(docker) = Dockerd::start() else {
        eprintln!("skipped: needs root, dockerd and docker (./install.sh --dev)");
        return;
    };
    docker.docker(&hardened(Dockerd::IMAGE).iter().map(String::as_str).collect::<Vec<_>>());
    // `--network host` on Docker; `--privileged` does not work on these machines (no
    // CAP_SYS_RESOURCE in the bounding set), see TESTBED.md.
    let risky = risky(Dockerd::IMAGE, &docker.socket, &["--network", "host"]);
    docker.docker(&risky.iter().map(String::as_str).collect::<Vec<_>>());
    // The sshd script must be running before the processes are listed.
    common::wait_for(std::time::Duration::from_secs(10), || {
        docker.docker(&["top", "cis-risky"]).contains("sshd").then_some(())
    })
    .expect("the sshd script runs");

    let report = bench_json(&docker.socket);
    assert_eq!(report["benchmark"], "CIS Docker Benchmark");
    assert!(report["target"].as_str().unwrap().starts_with("Docker "), "{}", report["target"]);
    assert_runtime_checks(&report);
    assert_eq!(status(&report, "5.10", "container cis-risky"), "FAIL");
    assert_eq!(status(&report, "5.10", "container cis-good"), "PASS");

    // The daemon the harness started: its daemon.json turns iptables off and keeps the API on
    // a unix socket with no default bridge; picket must have found that dockerd by its socket.
    assert_eq!(status(&report, "2.4", "daemon"), "FAIL");
    assert_eq!(status(&report, "2.7", "daemon"), "PASS");
    assert_eq!(status(&report, "2.2", "daemon"), "PASS");
    assert_eq!(status(&report, "2.13", "daemon"), "FAIL", "json-file logging stays on the host");
    assert_eq!(status(&report, "2.15", "daemon"), "FAIL");
    let daemon_json = docker.dir.path().join("daemon.json");
    assert_eq!(status(&report, "3.18", &daemon_json.display().to_string()), "PASS");
    let socket = docker.socket.display().to_string();
    assert_eq!(status(&report, "3.16", &socket), "PASS");

    // A looser daemon.json mode is caught on the next run.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&daemon_json, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let report = bench_json(&docker.socket);
    assert_eq!(status(&report, "3.18", &daemon_json.display().to_string()), "FAIL");

    // The gate: 5.32 (engine socket mounted) is critical.
    let gated = bench(&docker.socket, &["--fail-on", "critical", "-o", "junit"]);
    assert_eq!(gated.status.code(), Some(1), "{}", String::from_utf8_lossy(&gated.stderr));
    let junit = String::from_utf8_lossy(&gated.stdout);
    assert!(junit.contains("<testsuite name=\"5 Container Runtime\""), "{junit}");
    assert!(junit.contains("[container cis-risky]"), "{junit}");
    docker.docker(&["rm", "-f", "cis-risky"]);
    let passed = bench(&docker.socket, &["--fail-on", "critical", "-o", "sarif"]);
    assert_eq!(passed.status.code(), Some(0), "{}", String::from_utf8_lossy(&passed.stderr));
    let sarif: Value = serde_json::from_slice(&passed.stdout).expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert!(!results.is_empty(), "the hardened container still has warnings and host findings");
    assert!(results.iter().all(|r| !r["message"]["text"].as_str().unwrap_or_default().contains("cis-risky")));
}

#[test]
fn podman_compat_api_with_a_privileged_container() {
    let Some(podman) = Podman::start() else {
        eprintln!("skipped: needs root, podman and runc (./install.sh --dev)");
        return;
    };
    podman.podman(&hardened(Podman::IMAGE).iter().map(String::as_str).collect::<Vec<_>>());
    // Podman sets a PIDs limit of 2048 unless told otherwise.
    let risky = risky(Podman::IMAGE, &podman.socket, &["--privileged", "--pids-limit", "-1"]);
    podman.podman(&risky.iter().map(String::as_str).collect::<Vec<_>>());
    common::wait_for(std::time::Duration::from_secs(10), || {
        podman.podman(&["top", "cis-risky", "args"]).contains("sshd").then_some(())
    })
    .expect("the sshd script runs");

    let report = bench_json(&podman.socket);
    assert!(report["target"].as_str().unwrap().starts_with("Podman "), "{}", report["target"]);
    assert_runtime_checks(&report);
    assert_eq!(status(&report, "5.5", "container cis-risky"), "FAIL", "--privileged works under Podman");
    // No daemon: section 2 does not apply, and says why.
    assert_eq!(status(&report, "2.4", "daemon"), "SKIP");
    assert_eq!(status(&report, "3.16", &podman.socket.display().to_string()), "PASS");

    let table = bench(&podman.socket, &[]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("[FAIL] 5.5 Ensure that privileged containers are not used"), "{text}");
    assert!(text.contains("container cis-risky: privileged: true"), "{text}");
}

#[test]
fn an_engine_that_is_not_there_is_an_error_naming_the_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("nobody.sock");
    let out = bench(&socket, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&socket.display().to_string()), "{stderr}");
}

fn bench_node(extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["bench", "node"])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .expect("picket runs")
}

/// A node's files under --root: the kubeadm fixture, copied with chosen modes.
#[test]
fn node_benchmark_of_a_kubeadm_root() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().expect("tempdir");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/k8s-node");
    let status =
        Command::new("cp").arg("-r").arg(format!("{}/.", fixture.display())).arg(root.path()).status().expect("cp");
    assert!(status.success());
    let set_mode = |path: &str, mode: u32| {
        std::fs::set_permissions(root.path().join(path), std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    set_mode("etc/kubernetes/manifests/kube-apiserver.yaml", 0o600);
    set_mode("etc/kubernetes/manifests/etcd.yaml", 0o644);
    set_mode("etc/kubernetes/admin.conf", 0o600);
    set_mode("var/lib/kubelet/config.yaml", 0o600);

    let out = bench_node(&["--root", &root.path().display().to_string(), "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["benchmark"], "CIS Kubernetes Benchmark");
    assert_eq!(report["version"], "1.12.0");
    assert_eq!(status_of(&report, "1.1.1", "/etc/kubernetes/manifests/kube-apiserver.yaml"), "PASS");
    assert_eq!(status_of(&report, "1.1.7", "/etc/kubernetes/manifests/etcd.yaml"), "FAIL");
    assert_eq!(status_of(&report, "1.1.13", "/etc/kubernetes/admin.conf"), "PASS");
    let api = "kube-apiserver (/etc/kubernetes/manifests/kube-apiserver.yaml)";
    assert_eq!(status_of(&report, "1.2.8", api), "PASS");
    assert_eq!(status_of(&report, "1.2.1", api), "FAIL");
    assert_eq!(status_of(&report, "4.2.4", "kubelet (/etc/systemd/system/kubelet.service.d/10-kubeadm.conf)"), "FAIL");

    let gated = bench_node(&["--root", &root.path().display().to_string(), "--fail-on", "critical"]);
    let text = String::from_utf8_lossy(&gated.stdout);
    assert_eq!(gated.status.code(), Some(0), "no critical check fails on this node: {text}");
    assert!(text.contains("[FAIL] 1.2.1 Ensure that the --anonymous-auth argument is set to false"), "{text}");
    assert!(text.contains("[4] Worker Nodes"), "{text}");
}

fn status_of(report: &Value, id: &str, subject: &str) -> String {
    status(report, id, subject)
}

/// A real etcd process on this machine: its flags are read from /proc.
#[test]
fn node_benchmark_reads_a_running_etcd() {
    if !common::have_tool("etcd") || !common::is_root() {
        eprintln!("skipped: needs root and etcd (etcd-server, ./install.sh --dev)");
        return;
    }
    let others = Command::new("pgrep").args(["-x", "etcd"]).output().expect("pgrep");
    if !others.stdout.is_empty() {
        eprintln!("skipped: another etcd runs on this machine and would be benchmarked first");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut etcd = Command::new("etcd")
        .args(["--name", "picket-test", "--data-dir"])
        .arg(&data)
        .args([
            "--listen-client-urls=http://127.0.0.1:23791",
            "--advertise-client-urls=http://127.0.0.1:23791",
            "--listen-peer-urls=http://127.0.0.1:23801",
            "--initial-advertise-peer-urls=http://127.0.0.1:23801",
            "--initial-cluster=picket-test=http://127.0.0.1:23801",
        ])
        .env("ETCD_AUTO_TLS", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("etcd starts");
    common::wait_for(std::time::Duration::from_secs(15), || data.join("member").exists().then_some(()))
        .expect("etcd data dir");
    let out = bench_node(&["-o", "json"]);
    let _ = etcd.kill();
    let _ = etcd.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let subject = format!("etcd (process {})", etcd.id());
    assert_eq!(status(&report, "2.2", &subject), "FAIL", "no --client-cert-auth");
    assert_eq!(status(&report, "2.1", &subject), "FAIL", "no --cert-file");
    assert_eq!(status(&report, "2.3", &subject), "FAIL", "ETCD_AUTO_TLS=true from the process environment");
    // etcd creates its data dir 0700.
    assert_eq!(status(&report, "1.1.11", &data.display().to_string()), "PASS");
    assert_eq!(status(&report, "1.2.1", "kube-apiserver"), "SKIP");
}

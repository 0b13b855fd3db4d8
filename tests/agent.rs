//! The node agent's process sensing on this machine's kernel: exec, fork and exit events of a
//! process the test starts arrive with its path, arguments, parent and exit code. Needs root and
//! a kernel with BTF (skipped, saying so, where either is missing).

mod common;

use std::time::{Duration, Instant};

use picket::agent::events::{ProcessEvent, ProcessEventKind};
use picket::agent::sensor::ProcessSensor;

fn can_load_bpf() -> bool {
    common::is_root() && std::path::Path::new("/sys/kernel/btf/vmlinux").exists()
}

/// Collects events until `done` holds or 10 s pass.
async fn collect(sensor: &mut ProcessSensor, done: impl Fn(&[ProcessEvent]) -> bool) -> Vec<ProcessEvent> {
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&events) && Instant::now() < deadline {
        if let Ok(Ok(batch)) = tokio::time::timeout(Duration::from_millis(500), sensor.next_batch()).await {
            events.extend(batch);
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_fork_and_exit_of_a_process_arrive_with_its_details() {
    if !can_load_bpf() {
        eprintln!("skipped: loading BPF programs needs root and /sys/kernel/btf/vmlinux");
        return;
    }
    let mut sensor = ProcessSensor::start().expect("the sensor loads and attaches");
    let marker = format!("picket-marker-{}", std::process::id());
    let mut child = tokio::process::Command::new("/bin/sh")
        .args(["-c", &format!("/bin/echo {marker} > /dev/null; exit 7")])
        .spawn()
        .expect("sh runs");
    let sh_pid = child.id().expect("pid");
    let status = child.wait().await.expect("sh ends");
    assert_eq!(status.code(), Some(7));

    let events = collect(&mut sensor, |events| {
        events.iter().any(|e| e.kind == ProcessEventKind::Exit && e.pid == sh_pid)
            && events.iter().any(|e| e.kind == ProcessEventKind::Exec && e.args.iter().any(|a| a == &marker))
    })
    .await;
    let of_sh: Vec<&ProcessEvent> = events.iter().filter(|e| e.pid == sh_pid).collect();
    let fork = of_sh.iter().find(|e| e.kind == ProcessEventKind::Fork).expect("the fork of sh");
    assert_eq!(fork.ppid, std::process::id(), "forked by this test");
    let exec = of_sh.iter().find(|e| e.kind == ProcessEventKind::Exec).expect("the exec of sh");
    assert_eq!(exec.filename, "/bin/sh");
    assert_eq!(exec.args.first().map(String::as_str), Some("/bin/sh"));
    assert!(exec.args.iter().any(|a| a.contains(&marker)), "{:?}", exec.args);
    assert!(exec.cgroup_id > 0);
    let exit = of_sh.iter().find(|e| e.kind == ProcessEventKind::Exit).expect("the exit of sh");
    assert_eq!(exit.exit_code(), Some(7));
    // The echo sh ran: its parent is sh, its path and argv are echo's.
    let echo = events
        .iter()
        .find(|e| e.kind == ProcessEventKind::Exec && e.args.iter().any(|a| a == &marker))
        .expect("the exec of echo");
    assert_eq!(echo.filename, "/bin/echo");
    assert_eq!(echo.ppid, sh_pid);
    assert_eq!(echo.args, vec!["/bin/echo".to_string(), marker.clone()]);
    assert_eq!(sensor.dropped().expect("drops"), 0);
    assert_eq!(sensor.malformed, 0);
}

/// Podman from Debian runs a container; the execs inside it are attributed to it by their
/// cgroup, and the host's own execs are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execs_in_a_podman_container_are_attributed_to_it() {
    if !can_load_bpf() {
        eprintln!("skipped: loading BPF programs needs root and /sys/kernel/btf/vmlinux");
        return;
    }
    let Some(podman) = common::engines::Podman::start() else {
        eprintln!("skipped: needs podman and runc (./install.sh --dev)");
        return;
    };
    let mut sensor = ProcessSensor::start().expect("the sensor loads and attaches");
    let id = podman.podman(&[
        "run",
        "-d",
        "--name",
        "attributed",
        common::engines::Podman::IMAGE,
        "sh",
        "-c",
        "while true; do /bin/true; sleep 0.2; done",
    ]);
    let mut resolver = picket::agent::attribution::CgroupResolver::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut attributed = None;
    let mut host_exec = None;
    while attributed.is_none() && Instant::now() < deadline {
        let Ok(Ok(batch)) = tokio::time::timeout(Duration::from_millis(500), sensor.next_batch()).await else {
            continue;
        };
        for event in batch.iter().filter(|e| e.kind == ProcessEventKind::Exec) {
            let container = resolver.container_of(event.cgroup_id);
            if event.filename == "/bin/true" && container.as_ref().is_some_and(|c| c.id == id) {
                attributed = container;
            } else if event.pid == std::process::id() || event.ppid == std::process::id() {
                host_exec = Some((event.clone(), container));
            }
        }
    }
    let container = attributed.unwrap_or_else(|| panic!("no exec attributed to container {id}"));
    assert_eq!(container.runtime, picket::agent::attribution::Runtime::Podman);
    assert_eq!(container.pod_uid, None);
    if let Some((event, container)) = host_exec {
        assert_eq!(container, None, "{event:?} is the host's");
    }
}

/// The cgroup v2 id of a running container: the inode of its unified-hierarchy directory.
fn cgroup_id_of(podman: &common::engines::Podman, name: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let pid = podman.podman(&["inspect", "--format", "{{.State.Pid}}", name]);
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup file");
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::")).expect("a unified-hierarchy cgroup");
    let root = if std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        "/sys/fs/cgroup/unified"
    } else {
        "/sys/fs/cgroup"
    };
    std::fs::metadata(format!("{root}{path}")).expect("cgroup dir").ino()
}

/// `podman exec` output and success.
fn exec_in(podman: &common::engines::Podman, name: &str, command: &[&str]) -> (bool, String) {
    let mut args = vec!["exec", name];
    args.extend_from_slice(command);
    podman.try_podman(&args)
}

/// Protect mode on a real container: an executable outside the allowlist fails with EPERM and
/// raises an alert, a write under a denied prefix fails, allowed programs and reads still work;
/// a malformed policy is refused and the policy in force stays; when the enforcer is gone,
/// everything runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_mode_denies_outside_the_policy_and_fails_open_when_stopped() {
    use picket::agent::enforce::{AlertAction, AlertKind, ContainerPolicy, Enforcer, FileRule, Mode};
    let lsm_active =
        std::fs::read_to_string("/sys/kernel/security/lsm").is_ok_and(|l| l.split(',').any(|m| m == "bpf"));
    if !can_load_bpf() || !lsm_active {
        eprintln!("skipped: needs root, BTF and the BPF LSM ('bpf' in /sys/kernel/security/lsm, securityfs mounted)");
        return;
    }
    let Some(podman) = common::engines::Podman::start() else {
        eprintln!("skipped: needs podman and runc (./install.sh --dev)");
        return;
    };
    podman.podman(&["run", "-d", "--name", "guarded", common::engines::Podman::IMAGE, "sleep", "600"]);
    // A second executable in the container, outside the allowlist.
    let (copied, out) = exec_in(&podman, "guarded", &["/bin/busybox", "cp", "/bin/busybox", "/other"]);
    assert!(copied, "{out}");
    let cgroup_id = cgroup_id_of(&podman, "guarded");

    let mut enforcer = match Enforcer::start() {
        Ok(enforcer) => enforcer,
        // Some kernels list `bpf` in /sys/kernel/security/lsm yet refuse every trampoline-based
        // program (LSM, fentry, fmod_ret) with EPERM; bpftool's feature probe then says
        // "program_type lsm is NOT available". The machines this project runs on are such
        // kernels (6.18 firecracker builds), so this test cannot run there.
        Err(e) if lsm_programs_refused(&e) => {
            eprintln!("skipped: this kernel refuses BPF LSM programs ({e}); see docs/agent.md");
            return;
        }
        Err(e) => panic!("the LSM programs load and attach: {e:?}"),
    };
    let policy = ContainerPolicy {
        cgroup_id,
        mode: Mode::Protect,
        exec_allowlist: Some(vec!["/bin/busybox".into()]),
        file_rules: vec![FileRule { prefix: "/etc/".into(), deny_read: false, deny_write: true }],
    };
    enforcer.apply(std::slice::from_ref(&policy)).expect("policy applies");

    let (allowed, out) = exec_in(&podman, "guarded", &["cat", "/etc/hostname"]);
    assert!(allowed, "busybox is allowed and /etc is readable: {out}");
    let (ran, out) = exec_in(&podman, "guarded", &["/other", "true"]);
    assert!(!ran, "/other is outside the allowlist");
    assert!(out.to_lowercase().contains("permission denied") || out.contains("operation not permitted"), "{out}");
    let (wrote, out) = exec_in(&podman, "guarded", &["sh", "-c", "echo x > /etc/blocked"]);
    assert!(!wrote, "writes under /etc/ are denied: {out}");

    let mut alerts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && !(alerts.iter().any(|a: &picket::agent::enforce::Alert| a.kind == AlertKind::Exec)
            && alerts.iter().any(|a| a.kind == AlertKind::File))
    {
        if let Ok(Ok(batch)) = tokio::time::timeout(Duration::from_millis(500), enforcer.next_alerts()).await {
            alerts.extend(batch);
        }
    }
    let exec = alerts.iter().find(|a| a.kind == AlertKind::Exec).expect("an exec alert");
    assert_eq!((exec.path.as_str(), exec.action, exec.cgroup_id), ("/other", AlertAction::Denied, cgroup_id));
    let file = alerts.iter().find(|a| a.kind == AlertKind::File).expect("a file alert");
    assert_eq!((file.path.as_str(), file.write, file.action), ("/etc/blocked", true, AlertAction::Denied));

    // A malformed update is refused, and the policy in force stays.
    let generation = enforcer.generation();
    let mut broken = policy.clone();
    broken.exec_allowlist = Some(vec!["relative/path".into()]);
    let err = enforcer.apply(&[broken]).expect_err("a relative path is refused");
    assert!(err.to_string().contains("relative/path"), "{err}");
    assert_eq!(enforcer.generation(), generation);
    assert!(!exec_in(&podman, "guarded", &["/other", "true"]).0, "still protected");

    // Monitor mode: the same exec runs, and is reported.
    enforcer.apply(&[ContainerPolicy { mode: Mode::Monitor, ..policy.clone() }]).expect("monitor");
    assert!(exec_in(&podman, "guarded", &["/other", "true"]).0, "monitor allows");

    // The agent exits: the programs detach, the node fails open.
    drop(enforcer);
    let (ran, out) = exec_in(&podman, "guarded", &["/other", "true"]);
    assert!(ran, "{out}");
    assert!(exec_in(&podman, "guarded", &["sh", "-c", "echo x > /etc/now-allowed"]).0);
}

fn lsm_programs_refused(error: &picket::agent::enforce::EnforceError) -> bool {
    let text = format!("{error:?}");
    text.contains("PermissionDenied") && text.contains("bprm_check_security")
}

/// `picket agent run` streams versioned JSON lines: the exec of a command run while it runs, then
/// its counters.
#[test]
fn agent_run_streams_json_lines() {
    if !can_load_bpf() {
        eprintln!("skipped: loading BPF programs needs root and /sys/kernel/btf/vmlinux");
        return;
    }
    let agent = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "run", "--for", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("picket agent runs");
    let marker = format!("picket-agent-marker-{}", std::process::id());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    // Give it a moment to attach, then exec something recognisable, a few times.
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::process::Command::new("/bin/echo").arg(&marker).stdout(std::process::Stdio::null()).status();
        let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    }
    let out = agent.wait_with_output().expect("the agent ends after --for");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let echo = lines
        .iter()
        .find(|l| {
            l["type"] == "process"
                && l["kind"] == "exec"
                && l["args"].as_array().is_some_and(|a| a.iter().any(|x| x == marker.as_str()))
        })
        .unwrap_or_else(|| panic!("no exec of echo among {} lines", lines.len()));
    assert_eq!(echo["v"], 1);
    assert_eq!(echo["filename"], "/bin/echo");
    assert!(echo["container"].is_null(), "the host's own exec: {echo}");
    let connect = lines
        .iter()
        .find(|l| l["type"] == "network" && l["kind"] == "connect" && l["remote"][1] == port)
        .unwrap_or_else(|| panic!("no connect to port {port}"));
    assert_eq!(connect["remote"][0], "127.0.0.1");
    let stats = lines.last().expect("lines");
    assert_eq!(stats["type"], "stats");
    assert_eq!(stats["dropped"], 0);
    assert!(stats["events"].as_u64().is_some_and(|n| n >= 10), "{stats}");
}

/// A TCP connection over loopback: the connect (process context, through the cgroup hook) and
/// the accept (through the return probe) arrive with both ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_and_accepts_are_seen_with_their_addresses() {
    use picket::agent::net::{NetEventKind, NetSensor};
    if !can_load_bpf() {
        eprintln!("skipped: loading BPF programs needs root and /sys/kernel/btf/vmlinux");
        return;
    }
    let mut sensor = NetSensor::start().expect("the network sensor loads and attaches");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || listener.accept().map(|(_, peer)| peer.port()));
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let client_port = client.local_addr().expect("addr").port();
    let accepted_from = server.join().expect("server").expect("accept");
    assert_eq!(accepted_from, client_port);

    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let me = std::process::id();
    let done = |events: &[picket::agent::net::NetEvent]| {
        events.iter().any(|e| e.kind == NetEventKind::Connect && e.pid == me && e.remote.1 == port)
            && events
                .iter()
                .any(|e| e.kind == NetEventKind::Accept && e.pid == me && e.local.is_some_and(|l| l.1 == port))
    };
    while !done(&events) && Instant::now() < deadline {
        if let Ok(Ok(batch)) = tokio::time::timeout(Duration::from_millis(300), sensor.next_batch()).await {
            events.extend(batch);
        }
    }
    let connect = events.iter().find(|e| e.kind == NetEventKind::Connect && e.remote.1 == port).expect("the connect");
    assert_eq!(connect.remote.0.to_string(), "127.0.0.1");
    assert_eq!(connect.protocol, 6);
    assert!(connect.cgroup_id > 0);
    let accept = events
        .iter()
        .find(|e| e.kind == NetEventKind::Accept && e.local.is_some_and(|l| l.1 == port))
        .expect("the accept");
    assert_eq!(accept.remote.1, client_port, "the client's port");
    assert_eq!(accept.pid, me);
    assert_eq!(sensor.dropped().expect("drops"), 0);
}

/// `picket agent run --socket`: a reader on the 0600 socket gets the same JSON lines.
#[test]
fn agent_serves_events_on_a_private_unix_socket() {
    use std::io::BufRead;
    use std::os::unix::fs::MetadataExt;
    if !can_load_bpf() {
        eprintln!("skipped: loading BPF programs needs root and /sys/kernel/btf/vmlinux");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("picket/agent.sock");
    let agent = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "run", "--for", "4", "--quiet", "--socket"])
        .arg(&socket)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("picket agent runs");
    common::wait_for(Duration::from_secs(10), || socket.exists().then_some(())).expect("the socket appears");
    assert_eq!(std::fs::metadata(&socket).expect("socket").mode() & 0o777, 0o600);
    let reader = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    reader.set_read_timeout(Some(Duration::from_secs(6))).expect("timeout");
    let marker = format!("picket-socket-marker-{}", std::process::id());
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        let _ = std::process::Command::new("/bin/echo").arg(&marker).stdout(std::process::Stdio::null()).status();
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut found = false;
    for line in std::io::BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if value["type"] == "process"
            && value["args"].as_array().is_some_and(|a| a.iter().any(|x| x == marker.as_str()))
        {
            found = true;
            break;
        }
    }
    assert!(found, "the exec of echo came through the socket");
    let out = agent.wait_with_output().expect("the agent ends");
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "--quiet keeps standard output empty");
    assert!(!socket.exists(), "the socket is removed when the agent stops");
}

/// A policy file resolved and written to the real kernel maps, read back; a malformed update is
/// refused and what the kernel holds stays as it was; a valid update replaces it whole. (The
/// maps only: this checks the update path on kernels that refuse LSM programs too.)
#[tokio::test]
async fn policy_updates_are_whole_or_refused_in_the_kernel_maps() {
    use picket::agent::enforce::{ContainerPolicy, Enforcer, Mode};
    use picket::agent::policy::{PolicyFile, RunningContainer};
    if !can_load_bpf() {
        eprintln!("skipped: loading BPF programs needs root and /sys/kernel/btf/vmlinux");
        return;
    }
    let mut enforcer = Enforcer::maps_only().expect("the enforcement maps load");
    assert!(enforcer.in_force().expect("readable").is_empty(), "no policy at start");
    let path = std::path::Path::new("policy.yaml");
    let file = PolicyFile::parse(
        path,
        "containers:\n  - name: web\n    mode: protect\n    allowExec: [/bin/busybox, /usr/sbin/nginx]\n  - name: job\n    mode: monitor\n",
    )
    .expect("valid policy");
    let running = [
        RunningContainer { id: "a".repeat(64), name: Some("web".into()), cgroups: vec![9001, 9002] },
        RunningContainer { id: "b".repeat(64), name: Some("job".into()), cgroups: vec![9003] },
    ];
    enforcer.apply(&file.resolve(&running)).expect("applies");
    let first = enforcer.in_force().expect("readable");
    let summary: Vec<(u64, Mode, Vec<String>)> =
        first.iter().map(|p| (p.cgroup_id, p.mode, p.allowed_execs.clone())).collect();
    let web_execs = vec!["/bin/busybox".to_string(), "/usr/sbin/nginx".to_string()];
    assert_eq!(
        summary,
        [(9001, Mode::Protect, web_execs.clone()), (9002, Mode::Protect, web_execs), (9003, Mode::Monitor, vec![])]
    );
    let generation = enforcer.generation();

    let broken = ContainerPolicy {
        cgroup_id: 9004,
        mode: Mode::Protect,
        exec_allowlist: Some(vec!["sh".into()]),
        file_rules: vec![],
    };
    let mut update = file.resolve(&running);
    update.push(broken);
    let err = enforcer.apply(&update).expect_err("a relative path is refused");
    assert!(err.to_string().contains("cgroup 9004") && err.to_string().contains("\"sh\""), "{err}");
    assert_eq!(enforcer.generation(), generation, "nothing switched");
    assert_eq!(enforcer.in_force().expect("readable"), first, "the kernel holds what it held");

    let only_job =
        PolicyFile::parse(path, "containers:\n  - name: job\n    mode: protect\n    allowExec: [/bin/true]\n")
            .expect("valid");
    enforcer.apply(&only_job.resolve(&running)).expect("applies");
    let second = enforcer.in_force().expect("readable");
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!((second[0].cgroup_id, second[0].mode), (9003, Mode::Protect));
    assert_eq!(second[0].allowed_execs, ["/bin/true"]);
}

/// Events from a container carry its name and image, from the engine's API (here a Podman the
/// agent finds through CONTAINER_HOST), and the agent's state lines say what it runs.
#[test]
fn agent_run_names_containers_from_the_engine() {
    if !can_load_bpf() {
        eprintln!("skipped: loading BPF programs needs root and /sys/kernel/btf/vmlinux");
        return;
    }
    let Some(podman) = common::engines::Podman::start() else {
        eprintln!("skipped: needs podman and runc (./install.sh --dev)");
        return;
    };
    let id = podman.podman(&[
        "run",
        "-d",
        "--name",
        "named-by-engine",
        common::engines::Podman::IMAGE,
        "sh",
        "-c",
        "while true; do /bin/true; sleep 0.2; done",
    ]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "run", "--for", "5", "--containers-only"])
        .env("CONTAINER_HOST", format!("unix://{}", podman.socket.display()))
        .output()
        .expect("picket agent runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let named = lines
        .iter()
        .find(|l| l["type"] == "process" && l["container"]["id"] == id.as_str() && l["container"]["name"].is_string())
        .unwrap_or_else(|| panic!("no event of {id} with a name among {} lines", lines.len()));
    assert_eq!(named["container"]["name"], "named-by-engine");
    assert_eq!(named["container"]["image"], common::engines::Podman::IMAGE);
    assert!(
        lines.iter().all(|l| l["type"] != "process" || !l["container"].is_null()),
        "--containers-only lets no host event through"
    );
    let stats = lines.iter().find(|l| l["type"] == "stats").expect("a state line");
    assert_eq!(stats["sensors"], serde_json::json!(["process", "network"]));
    assert!(stats["enforcement"].is_null(), "no policy given: {stats}");
    assert!(stats["pid"].as_u64().is_some_and(|p| p > 0));
}

/// `picket agent policy FILE`: a good file is summarised; a bad one is refused naming the file,
/// line and column, and `picket agent run --policy` with it never starts.
#[test]
fn policy_files_are_checked_before_anything_loads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "containers:\n  - name: web\n    mode: protect\n    allowExec: [/bin/sh]\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "policy"])
        .arg(&good)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1 rules, valid") && stdout.contains("name web: protect, 1 executables"), "{stdout}");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "containers:\n  - name: web\n    mode: protect\n    allowExec: [sh]\n").expect("write");
    for args in [
        vec!["agent", "policy", bad.to_str().expect("utf-8")],
        vec!["agent", "run", "--for", "1", "--policy", bad.to_str().expect("utf-8")],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket")).args(&args).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("policy {}: containers[0]: allowlist path \"sh\"", bad.display())),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "nothing ran: {}", String::from_utf8_lossy(&out.stdout));
    }
}

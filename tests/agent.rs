//! The node agent's sensing on this machine's kernel: exec, fork and exit events of a process the
//! test starts arrive with its path, arguments, parent and exit code; connects and accepts with
//! their addresses; opens under watched prefixes with their absolute paths. Needs root and a
//! kernel with BTF (skipped, saying so, where either is missing).

mod common;

use std::time::{Duration, Instant};

use picket::agent::events::{ProcessEvent, ProcessEventKind};
use picket::agent::sensor::ProcessSensor;

fn can_load_bpf() -> bool {
    common::is_root() && std::path::Path::new("/sys/kernel/btf/vmlinux").exists()
}

/// A Podman service for the test, or the test ends early saying what is missing.
macro_rules! require_podman {
    () => {
        match common::engines::Podman::start() {
            Some(podman) => podman,
            None => {
                eprintln!("skipped: needs podman and runc (./install.sh --dev)");
                return;
            }
        }
    };
}

/// Ends a test early, saying why, where the kernel programs cannot load.
macro_rules! require_bpf {
    () => {
        if !can_load_bpf() {
            eprintln!("skipped: loading BPF programs needs root and /sys/kernel/btf/vmlinux");
            return;
        }
    };
}

/// Collects a sensor's batches until `done` holds or 10 s pass (a macro: each sensor's
/// `next_batch` borrows it).
macro_rules! collect_batches {
    ($sensor:expr, $done:expr) => {{
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !$done(&events) && Instant::now() < deadline {
            if let Ok(Ok(batch)) = tokio::time::timeout(Duration::from_millis(500), $sensor.next_batch()).await {
                events.extend(batch);
            }
        }
        events
    }};
}

/// Collects process events until `done` holds or 10 s pass.
async fn collect(sensor: &mut ProcessSensor, done: impl Fn(&[ProcessEvent]) -> bool) -> Vec<ProcessEvent> {
    collect_batches!(sensor, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_fork_and_exit_of_a_process_arrive_with_its_details() {
    require_bpf!();
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
    // What exec was given may be a symlink (/bin/sh -> dash, /bin -> usr/bin); `exe` is the file.
    let real_sh = std::fs::canonicalize("/bin/sh").expect("sh resolves");
    assert_eq!(exec.exe, real_sh.display().to_string());
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
    require_bpf!();
    let podman = require_podman!();
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
    let podman = require_podman!();
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
        connect: None,
        l7: None,
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
        && !(alerts.iter().any(|a: &picket::agent::enforce::Violation| a.kind == AlertKind::Exec)
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

/// The fanotify rung on a real container (these machines' kernels refuse BPF LSM): an executable
/// outside the allowlist fails with EPERM and raises an alert; every open under a denied prefix
/// fails; allowed programs and files still work, and the host is untouched; monitor allows and
/// reports; a write-only denial is refused naming what is missing; when the enforcer is gone,
/// everything runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fanotify_rung_denies_outside_the_policy_and_fails_open_when_stopped() {
    use picket::agent::enforce::fanotify::FanotifyEnforcer;
    use picket::agent::enforce::{AlertAction, AlertKind, ContainerPolicy, FileRule, Mode, Violation as Alert};
    if !common::is_root() {
        eprintln!("skipped: fanotify permission events need root");
        return;
    }
    let podman = require_podman!();
    podman.podman(&["run", "-d", "--name", "fenced", common::engines::Podman::IMAGE, "sleep", "600"]);
    let (copied, out) = exec_in(&podman, "fenced", &["sh", "-c", "mkdir -p /opt && cp /bin/busybox /opt/true"]);
    assert!(copied, "{out}");
    let (made, out) = exec_in(&podman, "fenced", &["sh", "-c", "mkdir -p /secret && echo s3cr3t > /secret/key"]);
    assert!(made, "{out}");
    let cgroup_id = cgroup_id_of(&podman, "fenced");

    let mut enforcer = FanotifyEnforcer::start().expect("a fanotify group with permission events");
    let write_only = ContainerPolicy {
        cgroup_id,
        mode: Mode::Protect,
        exec_allowlist: None,
        file_rules: vec![
            FileRule { prefix: "/etc/".into(), deny_read: false, deny_write: true },
            FileRule { prefix: "/etc/app/".into(), deny_read: false, deny_write: false },
        ],
        connect: None,
        l7: None,
    };
    // Writes alone are told apart by the opener's own call (/proc/PID/syscall).
    enforcer.apply(&[write_only]).expect("write-only denials hold here");
    let (read, out) = exec_in(&podman, "fenced", &["cat", "/etc/hostname"]);
    assert!(read, "reads under /etc/ stay allowed: {out}");
    let (wrote, out) = exec_in(&podman, "fenced", &["sh", "-c", "echo x > /etc/hostname.new && echo wrote"]);
    assert!(!wrote && !out.contains("wrote"), "a write under /etc/ is denied: {out}");
    let (_, out) = exec_in(&podman, "fenced", &["sh", "-c", "mkdir -p /etc/app; echo x > /etc/app/conf && echo wrote"]);
    assert!(out.contains("wrote"), "the longer /etc/app/ rule carves an exception: {out}");
    let policy = ContainerPolicy {
        cgroup_id,
        mode: Mode::Protect,
        exec_allowlist: Some(vec!["/bin/busybox".into()]),
        file_rules: vec![FileRule { prefix: "/secret/".into(), deny_read: true, deny_write: true }],
        connect: None,
        l7: None,
    };
    enforcer.apply(std::slice::from_ref(&policy)).expect("policy applies");

    for _ in 0..2 {
        // Twice: the second time the allowed files are answered in the kernel (ignore marks).
        let (allowed, out) = exec_in(&podman, "fenced", &["cat", "/etc/hostname"]);
        assert!(allowed, "busybox is allowed and /etc is readable: {out}");
    }
    let (ran, out) = exec_in(&podman, "fenced", &["/opt/true"]);
    assert!(!ran, "/opt/true is outside the allowlist: {out}");
    assert!(out.to_lowercase().contains("permission denied") || out.contains("operation not permitted"), "{out}");
    let (read, out) = exec_in(&podman, "fenced", &["cat", "/secret/key"]);
    assert!(!read && !out.contains("s3cr3t"), "opens under /secret/ are denied: {out}");
    // A new name for an allowed program is not on the allowlist, however often busybox ran.
    let (linked, out) = exec_in(&podman, "fenced", &["sh", "-c", "ln /bin/busybox /opt/linked && /opt/linked true"]);
    assert!(!linked, "a hard link outside the allowlist is refused: {out}");
    // The host is not marked: its own copy of busybox-like programs run as ever.
    assert!(std::process::Command::new("true").status().expect("true runs").success());

    let mut alerts: Vec<Alert> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && !(alerts.iter().any(|a| a.kind == AlertKind::Exec) && alerts.iter().any(|a| a.path == "/secret/key"))
    {
        if let Ok(Ok(batch)) = tokio::time::timeout(Duration::from_millis(500), enforcer.next_alerts()).await {
            alerts.extend(batch);
        }
    }
    let exec = alerts.iter().find(|a| a.kind == AlertKind::Exec).expect("an exec alert");
    assert_eq!((exec.path.as_str(), exec.action, exec.cgroup_id), ("/opt/true", AlertAction::Denied, cgroup_id));
    let written = alerts.iter().find(|a| a.kind == AlertKind::File && a.path == "/etc/hostname.new");
    assert_eq!(written.map(|a| (a.write, a.read, a.action)), Some((true, false, AlertAction::Denied)), "{alerts:?}");
    let file = alerts.iter().find(|a| a.kind == AlertKind::File && a.path == "/secret/key").expect("a file alert");
    assert_eq!((file.path.as_str(), file.action), ("/secret/key", AlertAction::Denied));
    assert!(!alerts.iter().any(|a| a.path == "/etc/hostname" || a.path == "/bin/busybox"), "{alerts:?}");

    // Monitor mode: the same exec runs, and is reported.
    enforcer.apply(&[ContainerPolicy { mode: Mode::Monitor, ..policy.clone() }]).expect("monitor");
    let (ran, out) = exec_in(&podman, "fenced", &["/opt/true"]);
    assert!(ran, "monitor allows: {out}");
    let batch =
        tokio::time::timeout(Duration::from_secs(5), enforcer.next_alerts()).await.expect("in time").expect("alerts");
    assert!(batch.iter().any(|a| a.path == "/opt/true" && a.action == AlertAction::Alerted), "{batch:?}");

    // The agent exits: the group closes, the node fails open.
    enforcer.apply(std::slice::from_ref(&policy)).expect("protect again");
    assert!(!exec_in(&podman, "fenced", &["/opt/true"]).0, "protected again");
    drop(enforcer);
    let (ran, out) = exec_in(&podman, "fenced", &["/opt/true"]);
    assert!(ran, "{out}");
    assert!(exec_in(&podman, "fenced", &["cat", "/secret/key"]).1.contains("s3cr3t"));
}

/// The fanotify rung reaches a container's volumes too: a read-denial under a bind-mounted
/// host directory holds inside the container, while the host reads the same files freely; a
/// program on the volume outside the allowlist is refused. The kernel's cache of allowed files
/// stays under its bound (each cached file pins its inode), dropping and refilling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fanotify_rung_polices_volumes_and_bounds_its_cache() {
    use picket::agent::enforce::fanotify::FanotifyEnforcer;
    use picket::agent::enforce::{ContainerPolicy, FileRule, Mode};
    if !common::is_root() {
        eprintln!("skipped: fanotify permission events need root");
        return;
    }
    let podman = require_podman!();
    let volume = tempfile::tempdir().expect("a host directory");
    std::fs::create_dir(volume.path().join("secret")).expect("mkdir");
    std::fs::write(volume.path().join("secret/key"), "s3cr3t").expect("write");
    std::fs::copy("/bin/busybox", volume.path().join("tool")).expect("a program on the volume");
    let mount = format!("{}:/data", volume.path().display());
    podman.podman(&["run", "-d", "--name", "volumed", "-v", &mount, common::engines::Podman::IMAGE, "sleep", "600"]);
    let cgroup_id = cgroup_id_of(&podman, "volumed");
    let mut enforcer = FanotifyEnforcer::start().expect("a fanotify group with permission events");
    enforcer.set_max_cached(4);
    let policy = ContainerPolicy {
        cgroup_id,
        mode: Mode::Protect,
        exec_allowlist: Some(vec!["/bin/busybox".into()]),
        file_rules: vec![FileRule { prefix: "/data/secret/".into(), deny_read: true, deny_write: true }],
        connect: None,
        l7: None,
    };
    enforcer.apply(&[policy]).expect("policy applies");
    assert!(enforcer.pending().is_empty(), "every mount marked: {:?}", enforcer.pending());
    let (read, out) = exec_in(&podman, "volumed", &["cat", "/data/secret/key"]);
    assert!(!read && !out.contains("s3cr3t"), "denied on the volume: {out}");
    let (ran, out) = exec_in(&podman, "volumed", &["/data/tool", "true"]);
    assert!(!ran, "a program on the volume outside the allowlist: {out}");
    assert_eq!(std::fs::read_to_string(volume.path().join("secret/key")).expect("the host reads it"), "s3cr3t");
    // Ten different files, twice: the cache fills past its bound of 4, is dropped and refills.
    let made = exec_in(
        &podman,
        "volumed",
        &["sh", "-c", "mkdir -p /tmp/c && for i in 0 1 2 3 4 5 6 7 8 9; do echo $i > /tmp/c/$i; done"],
    );
    assert!(made.0, "{}", made.1);
    let files = "for i in 0 1 2 3 4 5 6 7 8 9; do cat /tmp/c/$i > /dev/null; done; echo done";
    for _ in 0..2 {
        assert!(exec_in(&podman, "volumed", &["sh", "-c", files]).1.contains("done"));
    }
    let (cached, flushes) = enforcer.cache();
    assert!(cached < 4 && flushes >= 1, "cached {cached}, dropped {flushes} times");
    assert!(!exec_in(&podman, "volumed", &["cat", "/data/secret/key"]).0, "still denied after the drops");
    drop(enforcer);
    assert!(exec_in(&podman, "volumed", &["cat", "/data/secret/key"]).1.contains("s3cr3t"), "fails open");
}

/// A mount made inside a policed container after its mounts were marked (a tmpfs here) is
/// unpoliced until marked: the next refresh marks it, and a program outside the allowlist on it
/// is refused from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_made_after_marking_are_marked_at_the_next_refresh() {
    use picket::agent::enforce::fanotify::FanotifyEnforcer;
    use picket::agent::enforce::{ContainerPolicy, Mode};
    if !common::is_root() {
        eprintln!("skipped: fanotify permission events need root");
        return;
    }
    let podman = require_podman!();
    podman.podman(&["run", "-d", "--privileged", "--name", "mounting", common::engines::Podman::IMAGE, "sleep", "600"]);
    let cgroup_id = cgroup_id_of(&podman, "mounting");
    let mut enforcer = FanotifyEnforcer::start().expect("a fanotify group with permission events");
    let policy = ContainerPolicy {
        cgroup_id,
        mode: Mode::Protect,
        exec_allowlist: Some(vec!["/bin/busybox".into()]),
        file_rules: Vec::new(),
        connect: None,
        l7: None,
    };
    enforcer.apply(&[policy]).expect("policy applies");
    let script = "busybox mkdir -p /scratch && busybox mount -t tmpfs none /scratch && busybox cp /bin/busybox /scratch/true && echo mounted";
    let (mounted, out) = exec_in(&podman, "mounting", &["sh", "-c", script]);
    assert!(mounted && out.contains("mounted"), "{out}");
    assert!(exec_in(&podman, "mounting", &["/scratch/true"]).0, "a mount made after marking is not marked yet");
    enforcer.mark_new_mounts();
    let (ran, out) = exec_in(&podman, "mounting", &["/scratch/true"]);
    assert!(!ran, "marked at the refresh: outside the allowlist, refused: {out}");
    assert!(exec_in(&podman, "mounting", &["true"]).0, "the allowlisted program still runs");
}

/// A verdict that does not come within its bound (one second) is given by the watchdog: the
/// container's open or exec goes on (allowed, counted) rather than waiting for the whole of a
/// verdict stuck on, say, a hung filesystem; a denial that came too late is reported as alerted;
/// verdicts on time deny again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_verdict_fails_open_within_its_bound_and_is_counted() {
    use picket::agent::enforce::fanotify::FanotifyEnforcer;
    use picket::agent::enforce::{AlertAction, AlertKind, ContainerPolicy, Mode};
    if !common::is_root() {
        eprintln!("skipped: fanotify permission events need root");
        return;
    }
    let podman = require_podman!();
    podman.podman(&["run", "-d", "--name", "slowed", common::engines::Podman::IMAGE, "sleep", "600"]);
    let (copied, out) = exec_in(
        &podman,
        "slowed",
        &["sh", "-c", "mkdir -p /opt && cp /bin/busybox /opt/true && cp /bin/busybox /opt/sleep"],
    );
    assert!(copied, "{out}");
    let cgroup_id = cgroup_id_of(&podman, "slowed");
    let mut enforcer = FanotifyEnforcer::start().expect("a fanotify group with permission events");
    let policy = ContainerPolicy {
        cgroup_id,
        mode: Mode::Protect,
        exec_allowlist: Some(vec!["/bin/busybox".into()]),
        file_rules: Vec::new(),
        connect: None,
        l7: None,
    };
    enforcer.apply(&[policy]).expect("policy applies");
    assert!(!exec_in(&podman, "slowed", &["/opt/true"]).0, "on time: refused");
    assert_eq!(enforcer.unjudged(), 0);

    let slow = Duration::from_secs(6);
    enforcer.slow_verdicts_for_tests(slow);
    // The verdict thread is stuck on this exec: the watchdog allows it after a second. (A
    // program that outlives the verdict, so that the verdict can still read whose it was.)
    let started = Instant::now();
    let (ran, out) = podman.try_podman(&["exec", "-d", "slowed", "/opt/sleep", "12"]);
    assert!(ran, "allowed late: the node fails open: {out}");
    // And allows what queues behind it meanwhile.
    let (read, out) = exec_in(&podman, "slowed", &["cat", "/etc/hostname"]);
    let took = started.elapsed();
    assert!(read, "{out}");
    assert!(took < Duration::from_secs(5), "held {took:?}, not the verdicts' {slow:?} each");
    assert!(enforcer.unjudged() >= 2, "counted: {}", enforcer.unjudged());

    enforcer.slow_verdicts_for_tests(Duration::ZERO);
    // The verdict thread finishes what it was stuck on, then answers on time again.
    let mut late = Vec::new();
    let deadline = Instant::now() + slow * 3;
    let ran_late =
        |a: &picket::agent::enforce::Violation| a.kind == AlertKind::Exec && a.action == AlertAction::Alerted;
    while Instant::now() < deadline && !late.iter().any(ran_late) {
        if let Ok(Ok(batch)) = tokio::time::timeout(Duration::from_millis(500), enforcer.next_alerts()).await {
            late.extend(batch);
        }
    }
    let alert = late.iter().find(|a| ran_late(a)).unwrap_or_else(|| panic!("the late verdict's alert: {late:?}"));
    assert_eq!(alert.path, "/opt/sleep", "reported as alerted, not denied: it ran");
    let refused_again = (0..20).any(|_| {
        std::thread::sleep(Duration::from_millis(500));
        !exec_in(&podman, "slowed", &["/opt/true"]).0
    });
    assert!(refused_again, "verdicts on time deny again");
}

fn lsm_programs_refused(error: &picket::agent::enforce::EnforceError) -> bool {
    let text = format!("{error:?}");
    text.contains("PermissionDenied") && text.contains("bprm_check_security")
}

/// `picket agent run` streams versioned JSON lines: the exec of a command run while it runs, then
/// its counters.
#[test]
fn agent_run_streams_json_lines() {
    require_bpf!();
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
    assert_eq!(echo["v"], picket::agent::wire::WIRE_VERSION);
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
    require_bpf!();
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

/// A fresh child cgroup of the unified root (its own cgroup id, so a policy for it touches
/// nothing else): (cgroup id, path).
fn in_child_cgroup(name: &str) -> (u64, String) {
    let cgroup = picket::agent::attribution::unified_root().join(format!("picket-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&cgroup).expect("a child cgroup (root, cgroup v2)");
    let id = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&cgroup).expect("cgroup"));
    (id, cgroup.display().to_string())
}

/// Runs a Python snippet in that cgroup; what it printed.
fn run_in_cgroup(cgroup: &str, python: &str) -> String {
    let script = format!("echo $$ > {cgroup}/cgroup.procs && exec python3 -c \"$0\"");
    let out = std::process::Command::new("sh").args(["-c", &script, python]).output().expect("python3 runs");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The network rung on this kernel: a cgroup's connect rules refuse TCP connects (v4, v6 and
/// v4-mapped) and addressed UDP sends with EPERM in the caller, report what they decided in
/// the event, alert without refusing in monitor mode, and allow everything once the sensor is
/// gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_rules_refuse_with_eperm_in_the_kernel() {
    use picket::agent::enforce::network::{ConnectRules, Destination, NetworkControl, Protocol};
    use picket::agent::enforce::{AlertAction, ContainerPolicy, Mode};
    use picket::agent::net::{NetEventKind, NetSensor};
    require_bpf!();
    let (cgroup_id, cgroup) = in_child_cgroup("net");
    let mut sensor = NetSensor::start().expect("the network sensor loads and attaches");
    let mut control = NetworkControl::default();
    let destination = |net: &str, port: u16, protocol: Option<Protocol>| Destination {
        net: Some(net.parse().expect("cidr")),
        ports: (port, port),
        protocol,
    };
    let policy = |mode: Mode| ContainerPolicy {
        cgroup_id,
        mode,
        exec_allowlist: None,
        file_rules: vec![],
        l7: None,
        connect: Some(ConnectRules {
            // Loopback only, and not 127.0.0.3:9 over TCP.
            allow: Some(vec![
                Destination {
                    net: Some("127.0.0.0/8".parse().expect("cidr")),
                    ports: Destination::ANY_PORT,
                    protocol: None,
                },
                destination("::1/128", 9, None),
            ]),
            deny: vec![destination("127.0.0.3/32", 9, Some(Protocol::Tcp))],
        }),
    };
    control.apply(sensor.programs_mut(), &[policy(Mode::Protect)]).expect("the rules go in");
    // Each attempt prints its errno (0: the kernel let it through; ECONNREFUSED then follows).
    let attempts = r#"
import socket, errno
def tcp(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.connect(addr); print(0)
    except OSError as e: print(errno.errorcode.get(e.errno))
def udp(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"x", addr); print("sent")
    except OSError as e: print(errno.errorcode.get(e.errno))
tcp(socket.AF_INET, ("127.0.0.3", 9))
tcp(socket.AF_INET, ("127.0.0.4", 9))
tcp(socket.AF_INET6, ("::ffff:127.0.0.3", 9))
tcp(socket.AF_INET6, ("::1", 9))
tcp(socket.AF_INET6, ("::1", 10))
udp(("127.0.0.3", 9))
udp(("192.0.2.1", 9))
def raw(kind, proto, packet, addr):
    s = socket.socket(socket.AF_INET, kind, proto)
    try:
        s.sendto(packet, addr); print("sent")
    except OSError as e: print(errno.errorcode.get(e.errno))
echo = bytes([8, 0, 0xf7, 0xff, 0, 0, 0, 0])
raw(socket.SOCK_RAW, socket.IPPROTO_ICMP, echo, ("127.0.0.5", 0))
raw(socket.SOCK_RAW, socket.IPPROTO_ICMP, echo, ("192.0.2.1", 0))
raw(socket.SOCK_RAW, socket.IPPROTO_UDP, bytes([0, 7, 0, 9, 0, 9, 0, 0, 120]), ("127.0.0.3", 0))
raw(socket.SOCK_RAW, socket.IPPROTO_TCP, bytes([0, 7, 0, 9]) + bytes(16), ("127.0.0.3", 0))
"#;
    let printed = run_in_cgroup(&cgroup, attempts);
    let results: Vec<&str> = printed.lines().collect();
    assert_eq!(
        results,
        ["EPERM", "ECONNREFUSED", "EPERM", "ECONNREFUSED", "EPERM", "sent", "EPERM", "sent", "EPERM", "sent", "EPERM"],
        "denied TCP v4, allowed v4, denied v4-mapped, allowed ::1 port 9, ::1 port 10 outside the allowlist, \
         UDP allowed (the deny is TCP), UDP outside the allowlist; then packets of raw and ICMP sockets, which \
         pass no connect or send hook: ICMP on loopback allowed, ICMP outside the allowlist refused, \
         a hand-made UDP datagram to port 9 allowed (the deny is TCP), a hand-made TCP segment to 127.0.0.3 port 9 denied"
    );
    let done = |events: &[picket::agent::net::NetEvent]| {
        events.iter().filter(|e| e.cgroup_id == cgroup_id && e.denied()).count() >= 6
    };
    let events = collect_batches!(sensor, done);
    let ours: Vec<_> = events.iter().filter(|e| e.cgroup_id == cgroup_id).collect();
    let denied_v4 =
        ours.iter().find(|e| e.remote.0.to_string() == "127.0.0.3" && e.protocol == 6).expect("the refused connect");
    let verdict = denied_v4.policy.expect("a verdict");
    assert_eq!((verdict.action, verdict.rule), (AlertAction::Denied, Some(0)), "the deny rule, first in kernel order");
    assert_eq!(control.describe(cgroup_id, verdict.rule), "deny 127.0.0.3/32 port 9 tcp");
    let send = ours.iter().find(|e| e.kind == NetEventKind::Send).expect("the refused send");
    assert_eq!((send.remote.0.to_string().as_str(), send.policy.expect("verdict").rule), ("192.0.2.1", None));
    let raw_icmp = ours
        .iter()
        .find(|e| e.kind == NetEventKind::Send && e.protocol == 1)
        .expect("the refused ICMP packet, reported by the egress hook");
    assert_eq!(raw_icmp.remote.0.to_string(), "192.0.2.1");
    assert_eq!(raw_icmp.policy.map(|p| p.action), Some(AlertAction::Denied));
    let raw_tcp = ours
        .iter()
        .find(|e| e.kind == NetEventKind::Send && e.protocol == 6)
        .expect("the refused hand-made TCP segment");
    assert_eq!((raw_tcp.remote.1, raw_tcp.policy.and_then(|p| p.rule)), (9, Some(0)), "the TCP deny rule");
    assert!(
        ours.iter().filter(|e| e.kind == NetEventKind::Send && e.protocol == 17).count() == 1,
        "an allowed send is not reported: {ours:?}"
    );

    // Monitor: reported, not refused.
    control.apply(sensor.programs_mut(), &[policy(Mode::Monitor)]).expect("monitor");
    let printed = run_in_cgroup(
        &cgroup,
        "import socket\ns=socket.socket()\ntry:\n    s.connect(('127.0.0.3', 9))\nexcept OSError as e: print(e.errno)\n",
    );
    assert_eq!(printed.trim(), "111", "ECONNREFUSED: monitor lets it through");
    let events = collect_batches!(sensor, |events: &[picket::agent::net::NetEvent]| events
        .iter()
        .any(|e| e.cgroup_id == cgroup_id && e.policy.is_some()));
    let alerted = events.iter().find(|e| e.cgroup_id == cgroup_id).and_then(|e| e.policy).expect("an alert");
    assert_eq!(alerted.action, AlertAction::Alerted);

    // Back to protect; then the sensor goes and everything runs again.
    control.apply(sensor.programs_mut(), &[policy(Mode::Protect)]).expect("protect");
    assert_eq!(sensor.dropped().expect("drops"), 0);
    drop(sensor);
    let printed = run_in_cgroup(&cgroup, attempts);
    assert!(!printed.contains("EPERM"), "fails open once the agent is gone: {printed}");
    let _ = std::fs::remove_dir(&cgroup);
}

/// `picket agent run --socket`: a reader on the 0600 socket gets the same JSON lines.
#[test]
fn agent_serves_events_on_a_private_unix_socket() {
    use std::io::BufRead;
    use std::os::unix::fs::MetadataExt;
    require_bpf!();
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
    require_bpf!();
    let mut enforcer = Enforcer::maps_only().expect("the enforcement maps load");
    assert!(enforcer.in_force().expect("readable").is_empty(), "no policy at start");
    let path = std::path::Path::new("policy.yaml");
    let file = PolicyFile::parse(
        path,
        "containers:\n  - name: web\n    mode: protect\n    allowExec: [/bin/busybox, /usr/sbin/nginx]\n  - name: job\n    mode: monitor\n",
    )
    .expect("valid policy");
    let running = [
        RunningContainer {
            id: "a".repeat(64),
            name: Some("web".into()),
            namespace: None,
            image: None,
            owner: None,
            cgroups: vec![9001, 9002],
            probe_programs: Vec::new(),
            labels: Default::default(),
        },
        RunningContainer {
            id: "b".repeat(64),
            name: Some("job".into()),
            namespace: None,
            image: None,
            owner: None,
            cgroups: vec![9003],
            probe_programs: Vec::new(),
            labels: Default::default(),
        },
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
        connect: None,
        l7: None,
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

    // Two full generations fit the maps at once, one after the other; one more is refused
    // whole, before anything is written.
    let many = |base: u64, count: u64| -> Vec<ContainerPolicy> {
        (base..base + count)
            .map(|cgroup_id| ContainerPolicy {
                cgroup_id,
                mode: Mode::Monitor,
                exec_allowlist: Some(vec!["/bin/sh".into()]),
                file_rules: vec![],
                connect: None,
                l7: None,
            })
            .collect()
    };
    let max = picket::agent::enforce::MAX_POLICIES as u64;
    enforcer.apply(&many(100_000, max)).expect("a full generation");
    enforcer.apply(&many(200_000, max)).expect("another full generation replaces it");
    let full = enforcer.in_force().expect("readable");
    assert_eq!(full.len() as u64, max);
    assert!(full.iter().all(|p| p.cgroup_id >= 200_000), "nothing of the generation before stays");
    let err = enforcer.apply(&many(300_000, max + 1)).expect_err("too many");
    assert!(err.to_string().contains("at most 2048 at once"), "{err}");
    assert_eq!(enforcer.in_force().expect("readable"), full, "the kernel holds what it held");
}

/// Events from a container carry its name and image, from the engine's API (here a Podman the
/// agent finds through CONTAINER_HOST), and the agent's state lines say what it runs.
#[test]
fn agent_run_names_containers_from_the_engine() {
    require_bpf!();
    let podman = require_podman!();
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
    // The shipped detection rules need file opens under a few prefixes; learning (on by
    // default) counts each container's system calls.
    assert_eq!(stats["sensors"], serde_json::json!(["process", "network", "file", "syscalls"]));
    assert!(stats["enforcement"].is_null(), "no policy given: {stats}");
    assert!(stats["pid"].as_u64().is_some_and(|p| p > 0));
}

/// Runs `picket agent run` with `extra` flags while `attack` runs; the JSON lines. The attack
/// starts once the agent is ready (its first state line; with `--policy`, once the policy is in
/// force for some container, or after 8 s when none runs yet), and the agent is stopped (SIGTERM,
/// which drains its rings) 3 s after the attack, or after `seconds` + 30 s at the latest: a
/// loaded machine's slow start must not eat the attack's time.
fn agent_lines_during(
    podman: &common::engines::Podman,
    seconds: u64,
    extra: &[&str],
    attack: impl FnOnce(),
) -> Vec<serde_json::Value> {
    use std::io::BufRead;
    let cap = (seconds + 30).to_string();
    let mut args = vec!["agent", "run", "--for", cap.as_str(), "--containers-only"];
    args.extend_from_slice(extra);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(&args)
        .env("CONTAINER_HOST", format!("unix://{}", podman.socket.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("picket agent runs");
    let stdout = child.stdout.take().expect("stdout");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().expect("lines").push(line);
            }
        })
    };
    let with_policy = extra.contains(&"--policy");
    let started = Instant::now();
    let ready = || {
        let lines = lines.lock().expect("lines");
        let stats: Vec<serde_json::Value> = lines
            .iter()
            .filter(|l| l.contains("\"type\":\"stats\""))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let applied = stats.iter().any(|s| {
            let e = &s["enforcement"];
            ["protect", "monitor", "discover"].iter().any(|m| e[m].as_u64().is_some_and(|n| n > 0))
        });
        !stats.is_empty() && (!with_policy || applied || started.elapsed() > Duration::from_secs(8))
    };
    while !ready() && started.elapsed() < Duration::from_secs(seconds + 20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    attack();
    std::thread::sleep(Duration::from_secs(3));
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let out = child.wait_with_output().expect("the agent ends");
    reader.join().expect("the reader");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = lines.lock().expect("lines");
    lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The shipped rules on attacks inside a real container, with no policy: each raises its
/// alert with the process's ancestry; ordinary commands raise none; with --protect the miner is
/// killed.
#[test]
fn attacks_in_a_container_raise_their_alerts_with_ancestry() {
    require_bpf!();
    let podman = require_podman!();
    podman.podman(&["run", "-d", "--name", "victim", common::engines::Podman::IMAGE, "sleep", "600"]);
    let run = |script: &str| exec_in(&podman, "victim", &["sh", "-c", script]);
    let lines = agent_lines_during(&podman, 12, &[], || {
        run("mkdir -p /tmp");
        for benign in ["ls / > /dev/null", "cat /etc/hostname", "echo ok > /tmp/fine"] {
            assert!(run(benign).0, "{benign}");
        }
        run("echo planted > /etc/planted");
        run("echo 'root:x:1:' > /etc/shadow; cat /etc/shadow > /dev/null");
        // A local health probe is not a reverse shell (first: a match would not be folded away).
        run("echo probe > /dev/tcp/127.0.0.1/9 || true");
        run("echo probe > /dev/tcp/127.0.0.2/9 || true");
        run("cp /bin/busybox /tmp/xmrig && /tmp/xmrig true");
        run(
            "mkdir -p /run/secrets/kubernetes.io/serviceaccount && echo t > /run/secrets/kubernetes.io/serviceaccount/token",
        );
        run("rm -rf /var/run && ln -s /run /var/run && cat /var/run/secrets/kubernetes.io/serviceaccount/token");
    });
    // The agent sees the whole node (other tests' attacks too): this container's detections.
    let detections: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "alert" && l["container"]["name"] == "victim").collect();
    let rules: std::collections::BTreeSet<&str> = detections.iter().filter_map(|d| d["rule"].as_str()).collect();
    for expected in [
        "write-below-system-dirs",
        "read-password-files",
        "reverse-shell-dev-tcp",
        "crypto-miner-program",
        "drift-exec",
        "service-account-token-read",
    ] {
        assert!(rules.contains(expected), "{expected} missing from {rules:?}");
    }
    let miner = detections.iter().find(|d| d["rule"] == "crypto-miner-program").expect("the miner");
    assert_eq!(miner["event"]["exe"], "/tmp/xmrig");
    assert_eq!(miner["action"], "alerted");
    assert_eq!(miner["container"]["name"], "victim");
    let ancestry = miner["ancestry"].as_array().expect("an ancestry");
    assert_eq!(ancestry[0]["exe"], "/tmp/xmrig");
    assert_eq!(ancestry[1]["args"][0], "sh", "the shell that ran it: {ancestry:?}");
    let probes = detections.iter().filter(|d| {
        d["rule"] == "reverse-shell-dev-tcp" && d["event"]["args"].to_string().contains("/dev/tcp/127.0.0.1/")
    });
    assert_eq!(probes.count(), 0, "a loopback health probe raises nothing");
    let token = detections.iter().find(|d| d["rule"] == "service-account-token-read").expect("token");
    assert!(token["event"]["path"].as_str().is_some_and(|p| p.starts_with("/run/secrets/")), "{token}");
    let benign = detections.iter().filter(|d| {
        let exe = d["event"]["exe"].as_str().unwrap_or_default();
        let path = d["event"]["path"].as_str().unwrap_or_default();
        exe.ends_with("/ls") || path == "/tmp/fine" || path == "/etc/hostname"
    });
    assert_eq!(benign.count(), 0, "ordinary commands raise nothing: {detections:?}");

    // Protect. Agents see the whole node: the deniable rules this part does not use are switched
    // off (a user override) so that other tests' containers are left alone.
    let rules = tempfile::tempdir().expect("rules dir");
    let off = [
        "reverse-shell-stdio-socket",
        "netcat-runs-a-program",
        "crypto-miner-arguments",
        "package-manager-in-container",
        "drift-exec",
    ];
    let overrides: String = off.iter().map(|id| format!("  - id: {id}\n    enabled: false\n")).collect();
    std::fs::write(rules.path().join("quiet.yaml"), format!("overrides:\n{overrides}")).expect("write");
    let rules_dir = rules.path().display().to_string();
    // Where fanotify permission events work (the probe says), a miner is refused at exec time;
    // elsewhere it is killed just after. A /dev/tcp command line needs its arguments: killed.
    let probe = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "probe", "--json"])
        .output()
        .expect("picket agent probe");
    let ladder: serde_json::Value = serde_json::from_slice(&probe.stdout).expect("probe JSON");
    let fanotify = ladder["controls"][0]["tried"]
        .as_array()
        .is_some_and(|t| t.iter().any(|r| r["rung"] == "fanotify" && r["refused"].is_null()));
    let (mut miner, mut shell) = ((true, String::new()), (true, String::new()));
    let lines = agent_lines_during(&podman, 10, &["--protect", "--rules", &rules_dir], || {
        // A miner that would keep running: a script (comm is the script's name).
        miner = run("printf '#!/bin/sh\\nsleep 5\\n' > /tmp/xmrig; chmod +x /tmp/xmrig; /tmp/xmrig; echo status $?");
        // (The outer command line spells it in two parts: only the inner shell's carries it.)
        shell = run("p=/dev/t; sh -c 'sleep 3; echo alive' ${p}cp/127.0.0.2/9; echo status $?");
    });
    let action =
        |rule: &str| lines.iter().find(|l| l["type"] == "alert" && l["rule"] == rule).map(|d| d["action"].clone());
    if fanotify {
        assert!(miner.1.contains("status 126"), "refused before it ran: {miner:?}");
        assert_eq!(action("crypto-miner-program"), Some(serde_json::json!("denied")), "{lines:?}");
    } else {
        assert!(miner.1.contains("status 137"), "killed with SIGKILL: {miner:?}");
        assert_eq!(action("crypto-miner-program"), Some(serde_json::json!("killed")), "{lines:?}");
    }
    assert!(shell.1.contains("status 137") && !shell.1.contains("alive"), "killed: {shell:?}");
    assert_eq!(action("reverse-shell-dev-tcp"), Some(serde_json::json!("killed")), "{lines:?}");
    // Ordinary commands still run under protect.
    assert!(run("ls / > /dev/null && cat /etc/hostname").0);
}

/// The network rung from the command line, in a real container: a policy file's `connect:`
/// deny refuses the connect (EPERM) and raises an alert naming the rule; with --protect a
/// connect to a mining pool's port is refused in the kernel and reported `denied` with its
/// ancestry; other connects go on; with the agent gone, everything connects again.
#[test]
fn connects_are_refused_by_policy_and_by_protect_in_a_container() {
    require_bpf!();
    let podman = require_podman!();
    podman.podman(&["run", "-d", "--name", "netvictim", common::engines::Podman::IMAGE, "sleep", "600"]);
    let run = |script: &str| exec_in(&podman, "netvictim", &["sh", "-c", script]).1;
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("net.yaml");
    std::fs::write(
        &policy,
        "containers:\n  - name: netvictim\n    mode: protect\n    connect:\n      deny:\n        - to: 127.0.0.3\n          ports: [8081]\n",
    )
    .expect("write");
    // Only the rule under test may refuse anything: the node's other containers are left alone.
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("rules dir");
    let off = [
        "reverse-shell-stdio-socket",
        "reverse-shell-dev-tcp",
        "netcat-runs-a-program",
        "crypto-miner-arguments",
        "crypto-miner-program",
        "package-manager-in-container",
        "drift-exec",
    ];
    let overrides: String = off.iter().map(|id| format!("  - id: {id}\n    enabled: false\n")).collect();
    std::fs::write(rules.join("quiet.yaml"), format!("overrides:\n{overrides}")).expect("write");
    let checked = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "policy"])
        .arg(&policy)
        .output()
        .expect("picket agent policy");
    let summary = String::from_utf8_lossy(&checked.stdout);
    assert!(summary.contains("connect: any destination, 1 denied"), "{summary}");
    assert!(summary.contains("connect rules enforced here with cgroup-hooks"), "{summary}");
    let (mut denied, mut other, mut pool) = (String::new(), String::new(), String::new());
    let policy_arg = policy.display().to_string();
    let rules_arg = rules.display().to_string();
    let lines = agent_lines_during(&podman, 10, &["--policy", &policy_arg, "--protect", "--rules", &rules_arg], || {
        denied = run("nc 127.0.0.3 8081 </dev/null; echo status $?");
        other = run("nc 127.0.0.4 8081 </dev/null; echo status $?");
        pool = run("nc 127.0.0.2 3333 </dev/null; echo status $?");
    });
    assert!(denied.contains("Operation not permitted"), "refused by the policy: {denied}");
    assert!(other.contains("Connection refused"), "not named by the policy: {other}");
    assert!(pool.contains("Operation not permitted"), "refused by protect: {pool}");
    let ours = |kind: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["type"] == kind && l["container"]["name"] == "netvictim").collect()
    };
    let alerts = ours("alert");
    let policy: Vec<_> = alerts.iter().filter(|a| a["rule"] == "policy-connect").collect();
    assert_eq!(policy.len(), 1, "one refused connect, one alert: {alerts:?}");
    let alert = policy[0];
    assert_eq!((alert["action"].as_str(), alert["mode"].as_str()), (Some("denied"), Some("protect")));
    assert_eq!(alert["event"]["remote"], "127.0.0.3:8081");
    assert_eq!(alert["policy"], format!("{policy_arg} containers[0] connect: deny 127.0.0.3/32 port 8081"));
    assert_eq!(alert["ancestry"][0]["args"][0], "nc", "{alert}");
    let ids: std::collections::BTreeSet<&str> = alerts.iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(ids.len(), alerts.len(), "every alert has its own id");
    assert!(alert["at_unix_ms"].as_u64().is_some_and(|t| t > 1_700_000_000_000), "{alert}");
    let detections = alerts;
    let miner = detections.iter().find(|d| d["rule"] == "crypto-pool-port").expect("the pool connect");
    assert_eq!(miner["action"], "denied", "{miner}");
    assert_eq!(miner["event"]["remote"], "127.0.0.2:3333");
    assert_eq!(miner["ancestry"][0]["args"][0], "nc", "{miner}");
    let stats = lines.iter().rev().find(|l| l["type"] == "stats").expect("a last state line");
    assert_eq!(stats["enforcement"]["rung"], "cgroup-hooks", "{stats}");
    // The console keeps the alerts it receives (the same call its feed makes); the CLI twin
    // lists them back, newest first.
    let data = tempfile::tempdir().expect("data dir");
    let events: Vec<picket::agent::wire::WireEvent> =
        lines.iter().filter_map(|l| serde_json::from_value(l.clone()).ok()).collect();
    {
        let store = picket::store::Store::open(&data.path().join("store")).expect("store");
        let log = picket::alert::AlertLog::open(&store).expect("alert log");
        let kept = log.record(&events, picket::alert::now_unix_ms()).expect("kept");
        assert!(kept >= 2, "{kept}");
        assert_eq!(log.record(&events, picket::alert::now_unix_ms()).expect("again"), 0, "kept once");
    }
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["alerts", "list", "--raw", "--json"])
        .output()
        .expect("picket alerts list");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).expect("JSON");
    let pool = listed.iter().find(|a| a["rule"] == "crypto-pool-port").expect("kept and listed");
    assert_eq!((pool["node"].as_str().is_some(), &pool["container"]["name"]), (true, &serde_json::json!("netvictim")));
    assert_eq!(pool["ancestry"][0]["args"][0], "nc");
    let times: Vec<u64> = listed.iter().filter_map(|a| a["at_unix_ms"].as_u64()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    // The agent is gone: the kernel lets both through to a closed port.
    assert!(run("nc 127.0.0.3 8081 </dev/null").contains("Connection refused"));
    assert!(run("nc 127.0.0.2 3333 </dev/null").contains("Connection refused"));
}

/// Quarantine on a real container, through the CLI twin and the running agent: its connects
/// fail with EPERM at once and raise `quarantine` alerts, nothing reaches its listener from a
/// container sharing its network namespace, another container on the node connects as before;
/// the action is logged, `picket respond undo` releases it, and the network is back.
#[test]
fn a_quarantined_container_is_cut_off_and_undo_restores_it() {
    require_bpf!();
    let podman = require_podman!();
    podman.podman(&["run", "-d", "--name", "netcut", common::engines::Podman::IMAGE, "sleep", "600"]);
    podman.podman(&[
        "run",
        "-d",
        "--name",
        "netpeer",
        "--network",
        "container:netcut",
        common::engines::Podman::IMAGE,
        "sleep",
        "600",
    ]);
    podman.podman(&["run", "-d", "--name", "bystander", common::engines::Podman::IMAGE, "sleep", "600"]);
    podman.podman(&["exec", "-d", "netcut", "sh", "-c", "while true; do echo hello | nc -l -p 8080; done"]);
    let run = |name: &str, script: &str| exec_in(&podman, name, &["sh", "-c", script]).1;
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("agent.sock");
    let state = dir.path().join("state");
    let data = dir.path().join("data");
    let picket = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .expect("picket runs");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let socket_arg = socket.display().to_string();
    let state_arg = state.display().to_string();
    let mut seen = Vec::new();
    let lines =
        agent_lines_during(&podman, 20, &["--socket", &socket_arg, "--state-dir", &state_arg, "--no-learn"], || {
            seen.push(("before", run("netcut", "nc 127.0.0.4 8081 </dev/null; echo status $?")));
            seen.push(("listener before", run("netpeer", "nc -w 2 127.0.0.1 8080 </dev/null")));
            let (quarantined, said) =
                picket(&["respond", "quarantine", "netcut", "--reason", "test", "--agent", &socket_arg]);
            assert!(quarantined && said.contains("netcut") && said.contains("quarantined"), "{said}");
            seen.push(("cut", run("netcut", "nc 127.0.0.4 8081 </dev/null; echo status $?")));
            seen.push(("listener cut", run("netpeer", "nc -w 2 127.0.0.1 8080 </dev/null; echo status $?")));
            seen.push(("bystander", run("bystander", "nc 127.0.0.4 8081 </dev/null; echo status $?")));
            let (listed, said) = picket(&["respond", "quarantine", "--list", "--agent", &socket_arg]);
            assert!(listed && said.contains("netcut") && said.contains("test"), "{said}");
            let kept = std::fs::read_to_string(state.join("quarantine.json")).unwrap_or_default();
            assert!(kept.contains("\"netcut\""), "kept for an agent restart: {kept}");
            let (logged, said) = picket(&["respond", "actions", "--json"]);
            let actions: Vec<serde_json::Value> = serde_json::from_str(&said).unwrap_or_default();
            assert!(logged && actions.first().is_some_and(|a| a["action"] == "quarantine"), "{said}");
            let id = actions[0]["id"].as_str().unwrap_or_default().to_string();
            let (undone, said) = picket(&["respond", "undo", &id]);
            assert!(undone && said.contains("released"), "{said}");
            seen.push(("released", run("netcut", "nc 127.0.0.4 8081 </dev/null; echo status $?")));
            seen.push(("listener released", run("netpeer", "nc -w 2 127.0.0.1 8080 </dev/null")));
        });
    let said = |what: &str| seen.iter().find(|(w, _)| *w == what).map(|(_, s)| s.clone()).unwrap_or_default();
    assert!(said("before").contains("Connection refused"), "{seen:?}");
    assert!(said("listener before").contains("hello"), "{seen:?}");
    assert!(said("cut").contains("Operation not permitted"), "refused at once: {seen:?}");
    let cut = said("listener cut");
    assert!(!cut.contains("hello") && !cut.contains("status 0"), "nothing reaches its listener: {seen:?}");
    assert!(said("bystander").contains("Connection refused"), "the rest of the node is untouched: {seen:?}");
    assert!(said("released").contains("Connection refused"), "undo gives the network back: {seen:?}");
    assert!(said("listener released").contains("hello"), "{seen:?}");
    let alerts: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "alert" && l["rule"] == "quarantine").collect();
    let alert = alerts.iter().find(|a| a["event"]["remote"] == "127.0.0.4:8081").expect("the refused connect alerted");
    assert_eq!((alert["container"]["name"].as_str(), alert["action"].as_str()), (Some("netcut"), Some("denied")));
    assert!(alert["policy"].as_str().is_some_and(|p| p.starts_with("quarantine")), "{alert}");
    assert!(!alerts.iter().any(|a| a["container"]["name"] == "bystander"), "{alerts:?}");
}

/// The signal rung (what kernels without BPF LSM and fanotify permission events get), asked for
/// by name: a program outside the allowlist is killed (137) before it runs, with a `killed`
/// alert; allowed programs run; a file rule is refused at start naming it (this rung holds exec
/// allowlists only); with the agent gone the program runs again.
#[test]
fn the_signal_rung_kills_what_the_allowlist_leaves_out() {
    require_bpf!();
    let podman = require_podman!();
    podman.podman(&["run", "-d", "--name", "signalled", common::engines::Podman::IMAGE, "sleep", "600"]);
    let run = |script: &str| exec_in(&podman, "signalled", &["sh", "-c", script]).1;
    assert!(run("mkdir -p /opt && cp /bin/busybox /opt/echo && echo copied").contains("copied"));
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("execs.yaml");
    let rule = "containers:\n  - name: signalled\n    mode: protect\n    allowExec: [/bin/busybox]\n";
    std::fs::write(&policy, rule).expect("write");
    let with_files = dir.path().join("files.yaml");
    std::fs::write(&with_files, format!("{rule}    files:\n      - prefix: /secret/\n        deny: [read]\n"))
        .expect("write");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "run", "--for", "1", "--no-rules", "--enforce-with", "signal", "--policy"])
        .arg(&with_files)
        .output()
        .expect("picket agent run");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("containers[0]: files \"/secret/\""), "{stderr}");
    assert!(stderr.contains("exec allowlists only"), "{stderr}");

    let policy_arg = policy.display().to_string();
    let (mut outside, mut inside) = (String::new(), String::new());
    let lines =
        agent_lines_during(&podman, 8, &["--no-rules", "--enforce-with", "signal", "--policy", &policy_arg], || {
            // The policy reaches the kernel on the first 2-second refresh.
            std::thread::sleep(Duration::from_secs(2));
            outside = run("/opt/echo ran; echo status $?");
            inside = run("echo fine; ls / > /dev/null; echo status $?");
        });
    assert!(outside.contains("status 137") && !outside.contains("ran"), "killed before it ran: {outside}");
    assert!(inside.contains("fine") && inside.contains("status 0"), "{inside}");
    let alert = lines
        .iter()
        .find(|l| l["type"] == "alert" && l["container"]["name"] == "signalled")
        .expect("an alert for the killed program");
    assert_eq!((alert["rule"].as_str(), alert["action"].as_str()), (Some("policy-exec"), Some("killed")), "{alert}");
    assert_eq!(alert["event"]["exe"], "/opt/echo", "{alert}");
    assert!(alert["policy"].as_str().is_some_and(|p| p.ends_with("containers[0] allowExec")), "{alert}");
    let stats = lines.iter().rev().find(|l| l["type"] == "stats").expect("a state line");
    assert_eq!(stats["enforcement"]["rung"], "signal", "{stats}");
    assert!(run("/opt/echo ran").contains("ran"), "fails open once the agent is gone");
}

/// A container started while the agent runs is policed within a moment of its first exec, not
/// at the next 2-second refresh: its entrypoint tries a program outside the allowlist every
/// 100 ms and is refused within about a second (a `name:` rule: the engine names it first).
#[test]
fn a_new_container_is_policed_within_a_moment_of_its_first_exec() {
    require_bpf!();
    let podman = require_podman!();
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("execs.yaml");
    std::fs::write(&policy, "containers:\n  - name: newcomer\n    mode: protect\n    allowExec: [/bin/busybox]\n")
        .expect("write");
    let policy_arg = policy.display().to_string();
    let script = "exec 2>&1; busybox mkdir -p /opt && busybox cp /bin/busybox /opt/echo; i=0; while [ $i -lt 100 ]; do \
                  if /opt/echo -n; then i=$((i+1)); busybox usleep 100000; \
                  else echo refused after $i; exit 0; fi; done; echo never refused";
    let mut output = String::new();
    let lines = agent_lines_during(&podman, 10, &["--no-rules", "--policy", &policy_arg], || {
        output =
            podman.podman(&["run", "--rm", "--name", "newcomer", common::engines::Podman::IMAGE, "sh", "-c", script]);
    });
    let tries: u32 = output
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("refused after "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the program was never refused: {output}"));
    // Well inside the 2-second refresh, with room for a loaded CI machine.
    assert!(tries <= 15, "refused only after {tries} tries of 100 ms: {output}");
    let alert = lines
        .iter()
        .find(|l| l["type"] == "alert" && l["container"]["name"] == "newcomer")
        .unwrap_or_else(|| panic!("an alert for the refused program: {output}\n{lines:#?}"));
    assert_eq!(
        (alert["rule"].as_str(), alert["event"]["exe"].as_str()),
        (Some("policy-exec"), Some("/opt/echo")),
        "{alert}"
    );
}

/// A program run from memory (memfd_create) is on no mount the fanotify rung marks: the agent
/// judges it from its exec event against the container's allowlist, and kills it in protect
/// mode. A dynamically linked program on the allowlist runs (its loader is part of its exec),
/// while the loader run on its own is refused. Python comes from the host's /usr, mounted
/// read-only into the container.
#[test]
fn a_program_run_from_memory_is_held_to_the_allowlist() {
    require_bpf!();
    let podman = require_podman!();
    let image = common::engines::Podman::IMAGE;
    let mounts = ["-v", "/usr:/usr:ro", "-v", "/lib:/lib:ro", "-v", "/lib64:/lib64:ro"];
    let mut args = vec!["run", "-d", "--name", "loader"];
    args.extend_from_slice(&mounts);
    args.extend_from_slice(&[image, "sleep", "600"]);
    podman.podman(&args);
    let python = std::fs::canonicalize("/usr/bin/python3").expect("python3 is installed");
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("execs.yaml");
    std::fs::write(
        &policy,
        format!(
            "containers:\n  - name: loader\n    mode: protect\n    allowExec: [/bin/busybox, {}]\n",
            python.display()
        ),
    )
    .expect("write");
    let load = "import os, time\n\
                fd = os.memfd_create('payload')\n\
                os.write(fd, open('/bin/busybox', 'rb').read())\n\
                started = time.monotonic()\n\
                pid = os.fork()\n\
                if pid == 0:\n    os.execve('/proc/self/fd/%d' % fd, ['sleep', '5'], {})\n\
                _, status = os.waitpid(pid, 0)\n\
                print('signal', os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0, 'after', round(time.monotonic() - started, 1))\n";
    let policy_arg = policy.display().to_string();
    let mut output = String::new();
    let mut loader_ran = (false, String::new());
    let lines = agent_lines_during(&podman, 10, &["--no-rules", "--policy", &policy_arg], || {
        std::thread::sleep(Duration::from_secs(1));
        output = exec_in(&podman, "loader", &["/usr/bin/python3", "-c", load]).1;
        let python = python.display().to_string();
        loader_ran =
            exec_in(&podman, "loader", &["/lib64/ld-linux-x86-64.so.2", &python, "-c", "print('by the loader')"]);
    });
    let alerts: Vec<_> = lines.iter().filter(|l| l["type"] == "alert").map(|l| l["event"]["exe"].to_string()).collect();
    assert!(output.starts_with("signal 9 after"), "killed, not left to sleep: {output} {alerts:?}");
    // The loader ran python above as part of python's exec; run on its own it is a program the
    // allowlist does not name.
    assert!(!loader_ran.0 && !loader_ran.1.contains("by the loader"), "{loader_ran:?}");
    assert!(alerts.iter().any(|a| a.contains("ld-linux")), "the loader's refusal: {alerts:?}");
    let alert = lines
        .iter()
        .find(|l| l["type"] == "alert" && l["container"]["name"] == "loader")
        .unwrap_or_else(|| panic!("an alert for the program from memory: {lines:?}"));
    assert_eq!(
        (alert["rule"].as_str(), alert["action"].as_str(), alert["event"]["exe"].as_str()),
        (Some("policy-exec"), Some("killed"), Some("/memfd:payload")),
        "{alert}"
    );
    // Python itself, on the allowlist, ran: no alert names it.
    assert!(!lines.iter().any(|l| l["type"] == "alert" && l["event"]["exe"].as_str() == python.to_str()), "{lines:?}");

    // No policy, the shipped rules with --protect: fileless-exec catches the same program, with
    // the python that loaded it in its ancestry, and kills it (after its exec: fanotify never
    // sees a memfd).
    let mut output = String::new();
    let lines = agent_lines_during(&podman, 10, &["--protect"], || {
        std::thread::sleep(Duration::from_secs(1));
        output = exec_in(&podman, "loader", &["/usr/bin/python3", "-c", load]).1;
    });
    assert!(output.starts_with("signal 9 after"), "killed by the rule: {output}");
    let alert = lines
        .iter()
        .find(|l| l["type"] == "alert" && l["rule"] == "fileless-exec")
        .unwrap_or_else(|| panic!("the fileless-exec alert: {lines:?}"));
    assert_eq!(
        (alert["container"]["name"].as_str(), alert["action"].as_str()),
        (Some("loader"), Some("killed")),
        "{alert}"
    );
    let ancestry = alert["ancestry"].as_array().expect("ancestry");
    assert_eq!(ancestry[0]["exe"], "/memfd:payload", "{alert}");
    assert!(ancestry.iter().any(|a| a["exe"].as_str() == python.to_str()), "the loader's parent: {alert}");
    let others: Vec<_> = lines
        .iter()
        .filter(|l| l["type"] == "alert" && l["container"]["name"] == "loader")
        .map(|l| &l["rule"])
        .collect();
    assert_eq!(others.len(), 1, "exactly that alert (no drift-exec beside it): {others:?}");
}

/// A benign workload raises nothing: a small HTTP server under load (busybox httpd answering
/// 300 requests from inside the container) and a shell loop of ordinary commands, with the
/// shipped rules on.
#[test]
fn a_benign_workload_raises_no_alert() {
    require_bpf!();
    let podman = require_podman!();
    podman.podman(&["run", "-d", "--name", "benign", common::engines::Podman::IMAGE, "sleep", "600"]);
    let run = |script: &str| exec_in(&podman, "benign", &["sh", "-c", script]);
    let mut served = String::new();
    let mut looped = String::new();
    let lines = agent_lines_during(&podman, 14, &[], || {
        let (started, out) = run(
            "busybox mkdir -p /www && echo hello > /www/index.html && busybox httpd -p 127.0.0.1:8080 -h /www && echo up",
        );
        assert!(started && out.contains("up"), "{out}");
        served = run(
            "n=0; for i in $(busybox seq 300); do busybox wget -q -O - http://127.0.0.1:8080/index.html > /dev/null && n=$((n+1)); done; echo served $n",
        )
        .1;
        looped = run(
            "busybox mkdir -p /tmp/work; for i in $(busybox seq 50); do ls / > /dev/null; echo $i > /tmp/work/$i; cat /tmp/work/$i > /dev/null; id > /dev/null; busybox date > /dev/null; done; echo looped",
        )
        .1;
    });
    assert!(served.contains("served 300"), "the server answered every request: {served}");
    assert!(looped.contains("looped"), "{looped}");
    let execs = lines.iter().filter(|l| l["type"] == "process" && l["container"]["name"] == "benign").count();
    assert!(execs > 300, "the agent saw the workload: {execs} events");
    let alerts: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "alert" && l["container"]["name"] == "benign").collect();
    assert!(alerts.is_empty(), "no alert for ordinary work: {alerts:#?}");
}

/// Host processes are judged too: the same attacks run on the host, in a child cgroup the test
/// makes, raise host alerts (no container) with their ancestry; host-only noise stays out.
#[test]
fn attacks_on_the_host_raise_host_alerts() {
    require_bpf!();
    let root = picket::agent::attribution::unified_root();
    let cgroup = root.join(format!("picket-test-host-{}", std::process::id()));
    std::fs::create_dir_all(&cgroup).expect("a child cgroup (root, cgroup v2)");
    let dir = tempfile::tempdir().expect("temp dir");
    let miner = dir.path().join("xmrig");
    std::fs::write(&miner, "#!/bin/sh\nexit 0\n").expect("write");
    std::fs::set_permissions(&miner, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    // Fileless: a program run from a memfd. (One deleted once started is caught only if it is
    // gone when the agent looks, a race a test cannot hold still: see detect.rs's unit test.)
    let from_memory = "import os; fd = os.memfd_create('pkt-payload'); os.write(fd, open('/bin/true', 'rb').read()); \
                       os.execve('/proc/self/fd/%d' % fd, ['pkt-payload'], {})";
    let script = format!(
        "echo $$ > {procs}; echo probe > /dev/tcp/127.0.0.2/9 2>/dev/null; {miner} --url stratum+tcp://pool.example:3333; \
         /usr/bin/python3 -c \"{from_memory}\"; true",
        procs = cgroup.join("cgroup.procs").display(),
        miner = miner.display(),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "run", "--for", "6"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("picket agent runs");
    std::thread::sleep(Duration::from_secs(3));
    let ran = std::process::Command::new("bash").args(["-c", &script]).status().expect("bash runs");
    assert!(ran.success());
    let out = out.wait_with_output().expect("the agent ends");
    let _ = std::fs::remove_dir(&cgroup);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let ours = |rule: &str| {
        lines.iter().find(|l| {
            l["type"] == "alert"
                && l["rule"] == rule
                && l["ancestry"].as_array().is_some_and(|a| a.iter().any(|p| p["args"].to_string().contains("xmrig")))
        })
    };
    let dev_tcp = ours("reverse-shell-dev-tcp").expect("the /dev/tcp command line, from the host");
    assert!(dev_tcp["container"].is_null(), "a host alert: {dev_tcp}");
    assert_eq!(dev_tcp["action"], "alerted", "no --protect-host: alert only");
    let mined = lines
        .iter()
        .find(|l| l["type"] == "alert" && l["rule"] == "crypto-miner-arguments" && l["event"]["comm"] == "xmrig")
        .expect("the miner's stratum URL");
    assert!(mined["container"].is_null());
    let ancestry = mined["ancestry"].as_array().expect("ancestry");
    assert!(ancestry.iter().any(|a| a["exe"].as_str().is_some_and(|e| e.ends_with("bash"))), "{ancestry:?}");
    assert!(
        ours("write-below-system-dirs").is_none() && ours("package-manager-in-container").is_none(),
        "container-only rules stay quiet on the host"
    );
    let fileless: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "alert" && l["rule"] == "fileless-exec").collect();
    let memfd = fileless.iter().find(|l| l["event"]["args"][0] == "pkt-payload").expect("the memfd program's alert");
    assert_eq!(memfd["event"]["exe"], "/memfd:pkt-payload", "named as the kernel names it: {memfd}");
    assert!(memfd["container"].is_null(), "{memfd}");
    // (Other tests' containers run beside this one: the host's alerts only.)
    let on_host = fileless.iter().filter(|l| l["container"].is_null()).count();
    assert_eq!(on_host, 1, "no other program of the host is fileless: {fileless:?}");

    // --protect-host: a host exec a deniable rule catches is refused at exec time (fanotify on
    // the host's mounts). Only a rule of the test's own (its temporary directory) may refuse
    // anything: the node's other programs and tests are left alone.
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("rules dir");
    let shipped = picket::rules::RuleSet::load(std::path::Path::new("/nonexistent"), false).expect("shipped rules");
    let off: String = shipped
        .rules
        .iter()
        .filter(|r| r.info.deniable)
        .map(|r| format!("  - id: {}\n    enabled: false\n", r.info.id))
        .collect();
    let tool = dir.path().join("tool");
    std::fs::copy("/bin/true", &tool).expect("a host program");
    std::fs::write(
        rules.join("host.yaml"),
        format!(
            "rules:\n  - id: test-host-refusal\n    title: Test program\n    severity: high\n    technique: T1059\n    why: the test's own\n    on: exec\n    when:\n      exePrefixAny: [\"{}/\"]\n    deniable: true\noverrides:\n{off}",
            dir.path().display()
        ),
    )
    .expect("write");
    std::fs::create_dir_all(&cgroup).expect("the child cgroup again");
    let script = format!(
        "echo $$ > {procs}; sh -c '{tool}; echo status $?'; ls / > /dev/null && echo ordinary fine",
        procs = cgroup.join("cgroup.procs").display(),
        tool = tool.display()
    );
    let agent = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "run", "--for", "6", "--protect", "--protect-host", "--rules"])
        .arg(&rules)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("picket agent runs");
    std::thread::sleep(Duration::from_secs(3));
    let ran = std::process::Command::new("bash").args(["-c", &script]).output().expect("bash runs");
    let printed = String::from_utf8_lossy(&ran.stdout);
    let out = agent.wait_with_output().expect("the agent ends");
    let _ = std::fs::remove_dir(&cgroup);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("protect on the host: execs on its"), "{stderr}");
    assert!(
        printed.contains("status 126"),
        "refused before it ran: {printed} {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(printed.contains("ordinary fine"), "the host's other programs run: {printed}");
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let refused = lines
        .iter()
        .find(|l| l["type"] == "alert" && l["rule"] == "test-host-refusal")
        .expect("the host refusal's alert");
    assert_eq!((refused["action"].as_str(), refused["container"].is_null()), (Some("denied"), true), "{refused}");
    assert_eq!(refused["event"]["exe"], tool.display().to_string());
    // The agent is gone: the program runs.
    assert!(std::process::Command::new(&tool).status().expect("runs").success());
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

/// Collects file events until `done` holds or 10 s pass.
async fn collect_files(
    sensor: &mut picket::agent::files::FileSensor,
    done: impl Fn(&[picket::agent::files::FileEvent]) -> bool,
) -> Vec<picket::agent::files::FileEvent> {
    collect_batches!(sensor, done)
}

/// A temp dir (its real path) with a watched `w/` and an unwatched sibling `wx/`, which shares
/// the prefix's bytes but the slash.
fn watched_dirs() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().canonicalize().expect("real path");
    let (watched, unwatched) = (base.join("w"), base.join("wx"));
    std::fs::create_dir(&watched).expect("w");
    std::fs::create_dir(&unwatched).expect("wx");
    (dir, watched, unwatched)
}

fn prefix_of(dir: &std::path::Path) -> String {
    format!("{}/", dir.display())
}

/// Opens under a watched prefix arrive with their absolute path, the opener's pid and the
/// access asked for; an open outside it never reaches userspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_under_a_watched_prefix_arrive_with_path_and_access() {
    use picket::agent::files::FileSensor;
    require_bpf!();
    let (_dir, watched, unwatched) = watched_dirs();
    let (read_path, written_path, other_path) =
        (watched.join("read-me"), watched.join("written"), unwatched.join("not-watched"));
    std::fs::write(&read_path, "x").expect("write");
    std::fs::write(&other_path, "x").expect("write");
    let mut sensor = FileSensor::start(&[prefix_of(&watched)]).expect("the file sensor loads and attaches");
    // The unwatched open first: had it been reported, it would come before the others.
    std::fs::read(&other_path).expect("read");
    std::fs::read(&read_path).expect("read");
    std::fs::File::create(&written_path).expect("create");

    let (read_str, written_str) = (read_path.display().to_string(), written_path.display().to_string());
    let events = collect_files(&mut sensor, |events| events.iter().any(|e| e.path == written_str)).await;
    let me = std::process::id();
    let read =
        events.iter().find(|e| e.path == read_str).unwrap_or_else(|| panic!("no open of {read_str}: {events:?}"));
    assert_eq!(read.pid, me);
    assert_eq!((read.read, read.write, read.create, read.truncate), (true, false, false, false), "{read:?}");
    assert!(read.cgroup_id > 0 && read.timestamp_ns > 0);
    assert!(!read.truncated_path);
    let written = events.iter().find(|e| e.path == written_str).expect("the open for writing");
    assert_eq!(written.pid, me);
    assert_eq!(
        (written.read, written.write, written.create, written.truncate),
        (false, true, true, true),
        "{written:?}"
    );
    // (Paths too deep to resolve, `...`, are reported whatever is watched: another test makes some.)
    assert!(
        events.iter().filter(|e| !e.path.starts_with("...")).all(|e| e.path.starts_with(&prefix_of(&watched))),
        "only watched paths reach userspace: {events:?}"
    );
    assert_eq!(sensor.dropped().expect("drops"), 0);
    assert_eq!(sensor.malformed, 0);
}

/// A relative open (a child process whose working directory is the watched one opens `x`) is
/// reported with its absolute path; so is one through a bind mount of an unwatched directory
/// onto a watched one (made in a private mount namespace), whose path crosses the mount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_opens_and_opens_across_mounts_report_absolute_paths() {
    use picket::agent::files::FileSensor;
    require_bpf!();
    let (_dir, watched, unwatched) = watched_dirs();
    std::fs::write(watched.join("x"), "x").expect("write");
    let mounted = watched.join("mnt");
    std::fs::create_dir(&mounted).expect("mnt");
    std::fs::write(unwatched.join("inner"), "x").expect("write");
    let mut sensor = FileSensor::start(&[prefix_of(&watched)]).expect("the file sensor loads and attaches");

    let cat = std::process::Command::new("cat").arg("x").current_dir(&watched).output().expect("cat runs");
    assert!(cat.status.success());
    let cross = common::have_tool("unshare");
    if cross {
        let out = std::process::Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                r#"mount --bind "$1" "$2" && cat "$2/inner""#,
                "sh",
            ])
            .arg(&unwatched)
            .arg(&mounted)
            .output()
            .expect("unshare runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    let relative = watched.join("x").display().to_string();
    let through_mount = mounted.join("inner").display().to_string();
    let events = collect_files(&mut sensor, |events| {
        events.iter().any(|e| e.path == relative) && (!cross || events.iter().any(|e| e.path == through_mount))
    })
    .await;
    let cat_open =
        events.iter().find(|e| e.path == relative).unwrap_or_else(|| panic!("no open of {relative}: {events:?}"));
    assert_eq!(cat_open.comm, "cat");
    assert_ne!(cat_open.pid, std::process::id(), "cat's own pid");
    assert!(cat_open.read && !cat_open.write);
    if cross {
        let crossed = events
            .iter()
            .find(|e| e.path == through_mount)
            .unwrap_or_else(|| panic!("no open of {through_mount}: {events:?}"));
        assert_eq!(crossed.comm, "cat");
    }
}

/// A path longer than the event's 255 bytes arrives cut, flagged, with its real beginning (the
/// filter saw the whole path); one deeper than the kernel walks (64 components) arrives with its
/// end only, after `...`, flagged: its beginning is unknown, so it is reported whatever is watched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_and_deep_paths_are_flagged_as_truncated() {
    use picket::agent::files::FileSensor;
    require_bpf!();
    let (_dir, watched, _) = watched_dirs();
    let long_dir = watched.join("l".repeat(120)).join("o".repeat(120));
    std::fs::create_dir_all(&long_dir).expect("long dirs");
    let long_file = long_dir.join("long-file");
    let deep_dir = (0..140).fold(watched.join("deep"), |dir, _| dir.join("d"));
    std::fs::create_dir_all(&deep_dir).expect("deep dirs");
    let deep_file = deep_dir.join("deep-file");
    std::fs::write(&long_file, "x").expect("write");
    std::fs::write(&deep_file, "x").expect("write");
    let mut sensor = FileSensor::start(&[prefix_of(&watched)]).expect("the file sensor loads and attaches");
    std::fs::read(&long_file).expect("read");
    std::fs::read(&deep_file).expect("read");

    let long = long_file.display().to_string();
    assert!(long.len() > 255);
    let events = collect_files(&mut sensor, |events| {
        events.iter().any(|e| e.path.ends_with("/d/deep-file")) && events.iter().any(|e| long.starts_with(&e.path))
    })
    .await;
    let cut = events.iter().find(|e| long.starts_with(&e.path)).unwrap_or_else(|| panic!("no long path: {events:?}"));
    assert_eq!(cut.path.len(), 255);
    assert!(cut.truncated_path);
    let deep =
        events.iter().find(|e| e.path.ends_with("/d/deep-file")).unwrap_or_else(|| panic!("no deep path: {events:?}"));
    assert!(deep.path.starts_with("...") && deep.path.contains("d/d/d/"), "{}", deep.path);
    assert!(!deep.path.contains(&watched.display().to_string()), "the walk stops before the top: {}", deep.path);
    assert!(deep.truncated_path);

    // Unmatchable paths are reported whatever is watched, but not without limit: a loop of
    // deep opens is cut at 64 a second per CPU and the rest counted as dropped.
    let before = events.iter().filter(|e| e.path.ends_with("/d/deep-file")).count();
    let burst = 2_000;
    for _ in 0..burst {
        std::fs::read(&deep_file).expect("read");
    }
    let mut reported = before;
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Ok(batch)) = tokio::time::timeout(Duration::from_millis(300), sensor.next_batch()).await {
            reported += batch.iter().filter(|e| e.path.ends_with("/d/deep-file")).count();
        }
    }
    let dropped = sensor.dropped().expect("drops");
    assert!(reported < 1_000, "the burst was limited: {reported} reported");
    assert!(dropped > 0, "and what was cut is counted");
    assert_eq!(reported - before + dropped as usize, burst, "every open reported or counted");
}

/// A chrooted process's opens are reported as it sees them: the walk stops at the task's root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chrooted_process_has_its_own_view() {
    use picket::agent::files::FileSensor;
    if !can_load_bpf() || !std::path::Path::new("/bin/busybox").exists() {
        eprintln!("skipped: needs root, /sys/kernel/btf/vmlinux and /bin/busybox (busybox-static)");
        return;
    }
    let (_dir, watched, _) = watched_dirs();
    let root = watched.join("root");
    std::fs::create_dir_all(root.join("bin")).expect("root/bin");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox");
    let name = format!("picket-chroot-{}", std::process::id());
    std::fs::write(root.join(&name), "x").expect("write");
    let inside = format!("/{name}");
    let mut sensor = FileSensor::start(std::slice::from_ref(&inside)).expect("the file sensor loads and attaches");
    let out = std::process::Command::new("chroot")
        .arg(&root)
        .args(["/bin/busybox", "cat", &inside])
        .output()
        .expect("chroot runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events = collect_files(&mut sensor, |events| events.iter().any(|e| e.path == inside)).await;
    let open = events.iter().find(|e| e.path == inside).unwrap_or_else(|| panic!("no open of {inside}: {events:?}"));
    assert_eq!(open.comm, "busybox");
}

/// openat2(2) and creat(2) are covered as well as open and openat (x86_64 syscall numbers,
/// through python3's ctypes).
#[cfg(target_arch = "x86_64")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openat2_and_creat_are_seen() {
    use picket::agent::files::FileSensor;
    require_bpf!();
    if !common::have_tool("python3") {
        return;
    }
    let (_dir, watched, _) = watched_dirs();
    let mut sensor = FileSensor::start(&[prefix_of(&watched)]).expect("the file sensor loads and attaches");
    let script = r#"
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
d = sys.argv[1].encode()
how = struct.pack("QQQ", os.O_RDWR | os.O_CREAT, 0o600, 0)
assert libc.syscall(ctypes.c_long(437), ctypes.c_long(-100), d + b"/by-openat2", how, ctypes.c_long(24)) >= 0, ctypes.get_errno()
assert libc.syscall(ctypes.c_long(85), d + b"/by-creat", ctypes.c_long(0o600)) >= 0, ctypes.get_errno()
"#;
    let out = std::process::Command::new("python3").args(["-c", script]).arg(&watched).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (openat2, creat) =
        (watched.join("by-openat2").display().to_string(), watched.join("by-creat").display().to_string());
    let events = collect_files(&mut sensor, |events| {
        events.iter().any(|e| e.path == openat2) && events.iter().any(|e| e.path == creat)
    })
    .await;
    let by_openat2 = events.iter().find(|e| e.path == openat2).unwrap_or_else(|| panic!("no openat2: {events:?}"));
    assert_eq!((by_openat2.read, by_openat2.write, by_openat2.create), (true, true, true), "{by_openat2:?}");
    let by_creat = events.iter().find(|e| e.path == creat).expect("creat");
    assert_eq!((by_creat.read, by_creat.write, by_creat.create, by_creat.truncate), (false, true, true, true));
}

/// Invalid prefixes are refused before anything is loaded, naming the prefix.
#[test]
fn invalid_watch_prefixes_are_refused_by_name() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "run", "--for", "1", "--watch", "/etc/", "--watch", "relative/dir"])
        .output()
        .expect("picket runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"relative/dir\"") && stderr.contains("absolute"), "{stderr}");
}

/// `picket agent run --watch DIR` prints a `file` line for a file written under DIR, and only
/// for watched paths.
#[test]
fn agent_run_streams_watched_opens() {
    require_bpf!();
    let (_dir, watched, unwatched) = watched_dirs();
    let agent = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "run", "--for", "10", "--no-rules", "--watch"])
        .arg(prefix_of(&watched))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("picket agent runs");
    let target = watched.join("log.txt");
    // Writes for most of the agent's run: under load its programs took over 2 s to attach.
    for i in 0..40 {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::write(&target, format!("line {i}")).expect("write");
        std::fs::write(unwatched.join("log.txt"), "x").expect("write");
    }
    let out = agent.wait_with_output().expect("the agent ends after --for");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let files: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "file").collect();
    let written = files
        .iter()
        .find(|l| l["path"] == target.display().to_string().as_str())
        .unwrap_or_else(|| panic!("no file line for {} among {} lines", target.display(), lines.len()));
    assert_eq!(written["v"], picket::agent::wire::WIRE_VERSION);
    assert_eq!(written["pid"], std::process::id());
    assert_eq!((&written["write"], &written["create"], &written["read"]), (&true.into(), &true.into(), &false.into()));
    assert!(written["container"].is_null(), "the host's own open: {written}");
    // This process's opens are reported under the watched prefix only. (Other tests' processes
    // open the always-watched sensitive files meanwhile, and paths too deep to resolve, `...`,
    // are reported whatever is watched.)
    let unwatched_file = unwatched.join("log.txt").display().to_string();
    assert!(!files.iter().any(|l| l["path"] == unwatched_file.as_str()), "{files:?}");
    let own = files.iter().filter(|l| l["pid"] == std::process::id()).filter_map(|l| l["path"].as_str());
    assert!(own.filter(|p| !p.starts_with("...")).all(|p| p.starts_with(&prefix_of(&watched))), "{files:?}");
    let stats = lines.last().expect("lines");
    assert_eq!(stats["type"], "stats");
    assert_eq!(stats["dropped"], 0);
}

/// Inside a real Podman container, an open of /etc/hostname (a file podman bind-mounts there
/// from its own run directory) is reported as /etc/hostname, the container's view, with the
/// container's cgroup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_in_a_podman_container_have_the_containers_paths() {
    use picket::agent::files::FileSensor;
    require_bpf!();
    let podman = require_podman!();
    podman.podman(&["run", "-d", "--name", "opener", common::engines::Podman::IMAGE, "sleep", "600"]);
    let cgroup_id = cgroup_id_of(&podman, "opener");
    let mut sensor = FileSensor::start(&["/etc/".to_string()]).expect("the file sensor loads and attaches");
    let (ran, out) = exec_in(&podman, "opener", &["cat", "/etc/hostname"]);
    assert!(ran, "{out}");
    let events = collect_files(&mut sensor, |events| {
        events.iter().any(|e| e.cgroup_id == cgroup_id && e.path == "/etc/hostname")
    })
    .await;
    let in_container: Vec<_> = events.iter().filter(|e| e.cgroup_id == cgroup_id).collect();
    let open = in_container
        .iter()
        .find(|e| e.path == "/etc/hostname")
        .unwrap_or_else(|| panic!("no open of /etc/hostname in the container: {in_container:?}"));
    assert_eq!(open.comm, "cat");
    assert!(open.read && !open.write);
    let mut resolver = picket::agent::attribution::CgroupResolver::new();
    let container = resolver.container_of(open.cgroup_id).expect("attributed to the container");
    assert_eq!(container.runtime, picket::agent::attribution::Runtime::Podman);
}

/// A busy network sensor must not hold back the other sensors' events: with loopback connects
/// every few milliseconds, an exec and a watched open still arrive, and what the rings hold at
/// the end is sent before the last state line. The node is the DaemonSet's NODE_NAME when set.
#[test]
fn busy_sensors_do_not_starve_the_others() {
    require_bpf!();
    let (_dir, watched, _) = watched_dirs();
    let file = watched.join("probe");
    std::fs::write(&file, "x").expect("write");
    let agent = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "run", "--for", "8", "--watch", &prefix_of(&watched)])
        .env("NODE_NAME", "node-under-test")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("picket agent runs");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    // Accepted and dropped at once, so connects never wait on a full backlog.
    std::thread::spawn(move || for _ in listener.incoming() {});
    let marker = format!("starve-marker-{}", std::process::id());
    let started = Instant::now();
    // Every second from the first on (a loaded machine may take longer than that to attach).
    let mut next_open = Duration::from_secs(1);
    while started.elapsed() < Duration::from_millis(7500) {
        let _ = std::net::TcpStream::connect(("127.0.0.1", port));
        if started.elapsed() > next_open && next_open < Duration::from_secs(5) {
            let _ = std::process::Command::new("/bin/cat").arg(&file).arg("/dev/null").env("M", &marker).output();
            let _ = std::process::Command::new("/bin/echo").arg(&marker).output();
            next_open += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = agent.wait_with_output().expect("the agent ends after --for");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let connects = lines.iter().filter(|l| l["type"] == "network").count();
    assert!(connects > 100, "the network sensor was busy: {connects} events");
    // Sent as they happened, not held back to the end: a periodic state line follows them.
    let position = |found: &dyn Fn(&serde_json::Value) -> bool, what: &str| {
        lines.iter().position(found).unwrap_or_else(|| panic!("no {what} among {} lines", lines.len()))
    };
    let opened_at =
        position(&|l| l["type"] == "file" && l["path"] == file.display().to_string().as_str(), "watched open");
    let exec_at = position(
        &|l| {
            l["type"] == "process"
                && l["kind"] == "exec"
                && l["args"].as_array().is_some_and(|a| a.iter().any(|x| x == marker.as_str()))
        },
        "exec",
    );
    let periodic_state =
        lines[..lines.len() - 1].iter().rposition(|l| l["type"] == "stats").expect("a periodic state line");
    assert!(
        opened_at < periodic_state && exec_at < periodic_state,
        "held back: {opened_at}, {exec_at} after {periodic_state}"
    );
    let last = lines.last().expect("lines");
    assert_eq!((last["type"].as_str(), last["node"].as_str()), (Some("stats"), Some("node-under-test")));
}

/// `picket bench node --agent SOCKET`: the agent runs the node benchmark on its node and answers
/// on the asking connection; the report is the one `picket bench node` makes here, and an
/// ordinary reader of the socket never sees the answer.
#[test]
fn the_agent_answers_the_node_benchmark_on_its_socket() {
    require_bpf!();
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("picket/agent.sock");
    let mut agent = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "run", "--for", "60", "--quiet", "--socket"])
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("picket agent runs");
    common::wait_for(Duration::from_secs(10), || socket.exists().then_some(())).expect("the socket appears");
    let onlooker = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    onlooker.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let picket = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .args(args)
            .env("PICKET_DATA_DIR", dir.path().join("data"))
            .output()
            .expect("picket runs")
    };
    let socket_arg = socket.display().to_string();
    let through_agent = picket(&["bench", "node", "--agent", &socket_arg, "-o", "json"]);
    let here = picket(&["bench", "node", "-o", "json"]);
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(through_agent.status.code() == here.status.code(), "{}", String::from_utf8_lossy(&through_agent.stderr));
    let (remote, local): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&through_agent.stdout).expect("json"),
        serde_json::from_slice(&here.stdout).expect("json"),
    );
    let verdicts = |report: &serde_json::Value| -> Vec<(String, String)> {
        report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .map(|c| (c["id"].as_str().unwrap_or_default().to_string(), c["status"].to_string()))
            .collect()
    };
    assert!(!verdicts(&local).is_empty());
    assert_eq!(verdicts(&remote), verdicts(&local), "the agent's node benchmark is this node's");
    let mut seen = String::new();
    let _ = std::io::Read::read_to_string(&mut &onlooker, &mut seen);
    assert!(!seen.contains("bench-node"), "the answer went to the asker only");
    // Nothing listens: said, not hung.
    let gone = picket(&["bench", "node", "--agent", &socket_arg]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no agent at"), "{}", String::from_utf8_lossy(&gone.stderr));
}

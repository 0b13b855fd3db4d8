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

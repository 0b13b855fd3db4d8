//! The fanotify rung's cost (docs/performance.md): execs in a real Podman container (a shell
//! loop of `/bin/true`, busybox) without enforcement, with an exec-allowlist policy on the
//! fanotify rung, and with protect's exec-time guard, printing the overhead (goal under 5 %,
//! aim 1 %); and opens of every file of the image with a read-denial policy on another prefix
//! (goal under 10 % after warm-up). Needs root, podman and runc; says so and measures nothing
//! otherwise.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use picket::agent::enforce::fanotify::FanotifyEnforcer;
use picket::agent::enforce::{ContainerPolicy, FileRule, Mode};

/// Runs `script` in the bench container; the elapsed time of the best of three.
fn timed(podman: &common::engines::Podman, script: &str) -> Duration {
    podman.timed_exec("bench", script)
}

fn cgroup_of(podman: &common::engines::Podman) -> u64 {
    use picket::agent::attribution::{cgroup_id_of_pid, unified_root};
    let pid = podman.podman(&["inspect", "--format", "{{.State.Pid}}", "bench"]);
    cgroup_id_of_pid(&unified_root(), pid.trim().parse().expect("a pid")).expect("the container's cgroup")
}

fn overhead(with: Duration, without: Duration) -> f64 {
    (with.as_secs_f64() / without.as_secs_f64() - 1.0) * 100.0
}

fn enforce(c: &mut Criterion) {
    let Some(podman) = common::engines::Podman::start() else {
        println!("enforcement benchmark skipped: it needs root, podman and runc");
        return;
    };
    podman.podman(&["run", "-d", "--name", "bench", common::engines::Podman::IMAGE, "sleep", "3600"]);
    let cgroup_id = cgroup_of(&podman);
    // `cargo test --all-targets` runs benches once as tests: keep that short.
    let full = std::env::args().any(|a| a == "--bench");
    let execs = if full { 20_000 } else { 200 };
    let exec_loop = format!("i=0; while [ $i -lt {execs} ]; do /bin/true; i=$((i+1)); done");
    let open_loop =
        format!("i=0; while [ $i -lt {} ]; do cat /bin/busybox /etc/hostname > /dev/null; i=$((i+1)); done", execs / 4);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let _guard = runtime.enter();

    timed(&podman, &exec_loop);
    let exec_without = timed(&podman, &exec_loop);
    let open_without = timed(&podman, &open_loop);

    let mut enforcer = FanotifyEnforcer::start().expect("fanotify permission events");
    let policy = ContainerPolicy {
        cgroup_id,
        mode: Mode::Protect,
        exec_allowlist: Some(vec!["/bin/busybox".into()]),
        file_rules: vec![FileRule { prefix: "/secret/".into(), deny_read: true, deny_write: true }],
        connect: None,
        l7: None,
    };
    enforcer.apply(&[policy]).expect("policy");
    timed(&podman, &exec_loop);
    let exec_with = timed(&podman, &exec_loop);
    let open_with = timed(&podman, &open_loop);
    let lost = enforcer.dropped();
    drop(enforcer);

    let rules = picket::rules::RuleSet::load(std::path::Path::new("/nonexistent"), false).expect("rules");
    let mut guard = FanotifyEnforcer::start().expect("fanotify permission events");
    let (tx, _rx) = tokio::sync::mpsc::channel(16);
    guard.guard(picket::agent::detect::exec_time_rules(&rules), tx).expect("guard");
    guard.guard_containers([(cgroup_id, (Some("bench".to_string()), None))].into()).expect("marks");
    timed(&podman, &exec_loop);
    let exec_guarded = timed(&podman, &exec_loop);
    drop(guard);

    println!(
        "{execs} execs in a container: {exec_without:?} without enforcement, {exec_with:?} with an exec allowlist on the fanotify rung \
         (overhead {:.1} %, goal < 5 %), {exec_guarded:?} with protect's exec-time guard ({:.1} %); alerts lost {lost}",
        overhead(exec_with, exec_without),
        overhead(exec_guarded, exec_without)
    );
    println!(
        "{} rounds of opens (busybox, /etc/hostname) in a container: {open_without:?} without, {open_with:?} with a read-denial policy \
         on another prefix (overhead {:.1} %, goal < 10 % after warm-up)",
        execs / 4,
        overhead(open_with, open_without)
    );
    if !full {
        return;
    }
    let mut group = c.benchmark_group("enforce");
    group.sample_size(10);
    let short = "i=0; while [ $i -lt 500 ]; do /bin/true; i=$((i+1)); done";
    group.bench_function("500 execs in a container, no enforcement", |b| b.iter(|| timed(&podman, short)));
    group.finish();
}

criterion_group!(benches, enforce);
criterion_main!(benches);

//! Syscall sensing's cost (docs/performance.md): a syscall-bound loop in a real Podman container
//! (`dd` copying one byte at a time: a read and a write per byte) without the sensor, and with it
//! counting every call of the container in the kernel, printing the added time per call and the
//! overhead (meant to be left on while learning). Needs root, podman and runc; says so and
//! measures nothing otherwise.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

/// Runs `script` in the bench container; the elapsed time of the best of three.
fn timed(podman: &common::engines::Podman, script: &str) -> Duration {
    podman.timed_exec("bench", script)
}

fn syscalls(c: &mut Criterion) {
    let Some(podman) = common::engines::Podman::start() else {
        println!("syscall sensing benchmark skipped: it needs root, podman and runc");
        return;
    };
    podman.podman(&["run", "-d", "--name", "bench", common::engines::Podman::IMAGE, "sleep", "3600"]);
    // `cargo test --all-targets` runs benches once as tests: keep that short.
    let full = std::env::args().any(|a| a == "--bench");
    let bytes = if full { 2_000_000 } else { 20_000 };
    let calls = 2 * bytes;
    let copy = format!("dd if=/dev/zero of=/dev/null bs=1 count={bytes} 2>/dev/null");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let _guard = runtime.enter();

    timed(&podman, &copy);
    let without = timed(&podman, &copy);
    let sensor = picket::agent::syscalls::SyscallSensor::start().expect("the syscall program loads");
    timed(&podman, &copy);
    let with = timed(&podman, &copy);
    drop(sensor);
    let added = with.saturating_sub(without).as_nanos() as f64 / calls as f64;
    println!(
        "{calls} syscalls in a container: {without:?} without syscall sensing, {with:?} with it \
         ({added:.0} ns added per call, overhead {:.1} %)",
        (with.as_secs_f64() / without.as_secs_f64() - 1.0) * 100.0
    );
    if !full {
        return;
    }
    let mut group = c.benchmark_group("syscalls");
    group.sample_size(10);
    let short = "dd if=/dev/zero of=/dev/null bs=1 count=100000 2>/dev/null";
    let _sensor = picket::agent::syscalls::SyscallSensor::start().expect("the syscall program loads");
    group.bench_function("200,000 syscalls in a container, sensed", |b| b.iter(|| timed(&podman, short)));
    group.finish();
}

criterion_group!(benches, syscalls);
criterion_main!(benches);

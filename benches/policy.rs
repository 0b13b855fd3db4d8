//! Learning and policy costs (docs/performance.md):
//! - learning's share of a CPU on the exec-heavy workload: the agent's learning work (observer
//!   and baselines) per event, times the events that workload makes a second (20,000 spawns of
//!   `/bin/true` in 8.77 s measured by benches/agent.rs: an exec, a fork and an exit each);
//!   goal under 2 %;
//! - a policy of 1,000 rules (250 PicketPolicies of 4 rules each) checked with file:line:col,
//!   held as the agent's rules, resolved to 250 running containers and written to the kernel's
//!   maps (BPF LSM's, which every kernel with BTF creates even where it refuses the programs);
//!   goal under 100 ms. The kernel part needs root and BTF; without them it says so and times
//!   the rest.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use picket::agent::attribution::{ContainerRef, Runtime};
use picket::agent::events::{ProcessEvent, ProcessEventKind};
use picket::agent::learning::Learning;
use picket::agent::wire::WireEvent;

/// Spawns a second in benches/agent.rs's exec-heavy run (20,000 in 8.77 s).
const SPAWNS_PER_SECOND: f64 = 20_000.0 / 8.77;
/// Containers the spawns are spread over.
const CONTAINERS: u32 = 20;

fn container(n: u32) -> ContainerRef {
    ContainerRef {
        runtime: Runtime::Podman,
        id: format!("{n:064x}"),
        pod_uid: None,
        name: Some(format!("c{n}")),
        image: Some(format!("registry.example/app{}:1", n % 5)),
        pod_namespace: None,
        pod_name: None,
        pod_owner: None,
    }
}

/// One spawn: the fork, the exec of /bin/true, the exit; in container `n % CONTAINERS`.
fn spawn_events(n: u32) -> [WireEvent; 3] {
    let pid = 10_000 + n;
    let base = ProcessEvent {
        kind: ProcessEventKind::Fork,
        pid,
        tid: pid,
        ppid: 100 + n % CONTAINERS,
        uid: 0,
        exit_status: 0,
        cgroup_id: u64::from(n % CONTAINERS),
        timestamp_ns: u64::from(n),
        comm: "sh".into(),
        filename: String::new(),
        args: Vec::new(),
        exe: String::new(),
    };
    let exec = ProcessEvent {
        kind: ProcessEventKind::Exec,
        comm: "true".into(),
        filename: "/bin/true".into(),
        args: vec!["true".into()],
        exe: "/usr/bin/true".into(),
        ..base.clone()
    };
    let exit = ProcessEvent { kind: ProcessEventKind::Exit, ..base.clone() };
    let c = Some(container(n % CONTAINERS));
    [
        WireEvent::process("n", base, c.clone()),
        WireEvent::process("n", exec, c.clone()),
        WireEvent::process("n", exit, c),
    ]
}

fn learning(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let events: Vec<WireEvent> = (0..30_000).flat_map(spawn_events).collect();
    let (mut learning, _) = Learning::start(dir.path().to_path_buf()).expect("learning");
    // The shells the spawns come from, so parents are known.
    for n in 0..CONTAINERS {
        let shell = ProcessEvent {
            kind: ProcessEventKind::Exec,
            pid: 100 + n,
            tid: 100 + n,
            ppid: 1,
            uid: 0,
            exit_status: 0,
            cgroup_id: u64::from(n),
            timestamp_ns: 0,
            comm: "sh".into(),
            filename: "/bin/sh".into(),
            args: Vec::new(),
            exe: "/bin/busybox".into(),
        };
        learning.take(&WireEvent::process("n", shell, Some(container(n))), Some(u64::from(n)));
    }
    let started = Instant::now();
    for event in &events {
        learning.take(event, Some(0));
    }
    let per_event = started.elapsed() / events.len() as u32;
    let share = per_event.as_secs_f64() * SPAWNS_PER_SECOND * 3.0 * 100.0;
    println!(
        "learning: {per_event:?} per event; {:.0} events/s on the exec-heavy workload: {share:.2} % of a CPU (goal < 2 %)",
        SPAWNS_PER_SECOND * 3.0
    );
    c.bench_function("learning 3,000 process events", |b| {
        b.iter(|| {
            for event in events.iter().take(3_000) {
                learning.take(event, Some(0));
            }
        })
    });
    let saved = Instant::now();
    learning.save_if_changed().expect("save");
    println!("learning: baselines saved in {:?}", saved.elapsed());
}

/// 250 PicketPolicies of 4 rules each, one per image.
fn thousand_rules() -> String {
    let mut text = String::new();
    for n in 0..250 {
        text.push_str(&format!(
            "---
apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: {{ name: app{n}, namespace: shop }}
spec:
  selector: {{ image: registry.example/app{n}:* }}
  mode: protect
  process:
    - matchPaths: [/usr/bin/app{n}, /bin/busybox]
  file:
    - matchDirectories: [{{ dir: /, recursive: true }}]
      readOnly: true
    - matchDirectories: [{{ dir: /var/cache/app{n}/, recursive: true }}]
  egress:
    - peers: [{{ cidr: 10.{}.{}.0/24 }}]
      ports: [{{ port: '5432', protocol: TCP }}]
",
            n / 256,
            n % 256
        ));
    }
    text
}

fn policy(c: &mut Criterion) {
    let text = thousand_rules();
    let path = std::path::Path::new("thousand.yaml");
    let running: Vec<picket::agent::policy::RunningContainer> = (0..250u32)
        .map(|n| picket::agent::policy::RunningContainer {
            id: format!("{n:064x}"),
            name: Some(format!("app{n}")),
            namespace: Some("shop".into()),
            image: Some(format!("registry.example/app{n}:1")),
            owner: None,
            cgroups: vec![u64::from(n) + 1],
            probe_programs: Vec::new(),
            labels: Default::default(),
        })
        .collect();
    let check = || {
        let (documents, problems) = picket::policy::validate::validate_text(path, &text);
        assert!(problems.is_empty() && documents.len() == 250, "{problems:?}");
        let file = picket::agent::policy::PolicyFile::parse(path, &text).expect("held as the agent's rules");
        let policies = file.resolve(&running);
        assert_eq!(policies.len(), 250);
        policies
    };
    let kernel = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
        .and_then(|rt| rt.block_on(async { picket::agent::enforce::Enforcer::maps_only().ok() }));
    match kernel {
        Some(mut enforcer) => {
            let started = Instant::now();
            let policies = check();
            enforcer.apply(&policies).expect("written to the maps");
            println!(
                "policy: 1,000 rules checked, resolved to 250 containers and written to the kernel's maps in {:?} (goal < 100 ms)",
                started.elapsed()
            );
            c.bench_function("policy of 1,000 rules: check, resolve, write to the kernel", |b| {
                b.iter(|| {
                    let policies = check();
                    enforcer.apply(&policies).expect("written");
                })
            });
        }
        None => {
            println!("policy: the kernel maps need root and BTF; timing the check and the resolution only");
            let started = Instant::now();
            check();
            println!("policy: 1,000 rules checked and resolved in {:?} (goal < 100 ms)", started.elapsed());
            c.bench_function("policy of 1,000 rules: check and resolve", |b| b.iter(check));
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = learning, policy
}
criterion_main!(benches);

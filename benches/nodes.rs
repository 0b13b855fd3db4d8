//! The Nodes pane under a busy agent: how long the console takes to take 10,000 events (execs
//! and exits across 50 containers, the shape of an exec-heavy node) into its state, and to draw
//! the pane after. Goal: keeping up with 10,000 events/s on well under a tenth of a core, i.e.
//! under 100 ms per 10,000 events (docs/performance.md).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use picket::agent::attribution::{ContainerRef, Runtime};
use picket::agent::events::{ProcessEvent, ProcessEventKind};
use picket::agent::wire::WireEvent;
use picket::app::action::Action;
use picket::app::state::{NodesState, PaneId};
use picket::config::{Config, Dirs, Overrides};
use picket::store::Store;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn events(count: u32) -> Vec<WireEvent> {
    let containers: Vec<ContainerRef> = (0..50)
        .map(|i| ContainerRef {
            runtime: Runtime::Containerd,
            id: format!("{i:064x}"),
            pod_uid: None,
            name: Some(format!("app-{i}")),
            image: Some("registry.example.com/app:1".into()),
            pod_namespace: None,
            pod_name: None,
            pod_owner: None,
        })
        .collect();
    (0..count)
        .map(|n| {
            let pid = 10_000 + n / 2;
            let container = &containers[(pid % 50) as usize];
            WireEvent::process(
                "node-1",
                ProcessEvent {
                    kind: if n % 2 == 0 { ProcessEventKind::Exec } else { ProcessEventKind::Exit },
                    pid,
                    tid: pid,
                    ppid: 1,
                    uid: 0,
                    exit_status: 0,
                    cgroup_id: 100 + u64::from(pid % 50),
                    timestamp_ns: u64::from(n),
                    comm: "true".into(),
                    filename: "/bin/true".into(),
                    args: vec!["/bin/true".into(), format!("--n={n}")],
                    exe: "/usr/bin/true".into(),
                },
                Some(container.clone()),
            )
        })
        .collect()
}

fn nodes(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs = Dirs { config_dir: tmp.path().join("config"), data_dir: tmp.path().join("data") };
    let config = Config::load_with_dirs(&Overrides::default(), dirs).expect("config");
    let store = Store::open(&config.store_path()).expect("store");
    let fresh = || {
        let mut state = picket::app::initial_state(&config, &store).expect("state");
        state.nodes = Some(NodesState::new("/run/picket/agent.sock".into(), 1));
        state.nav = vec![PaneId::Nodes];
        state
    };
    let batch = events(10_000);

    let started = Instant::now();
    let mut state = fresh();
    picket::app::update::update(&mut state, Action::AgentLines { conn: 1, events: batch.clone(), unreadable: 0 });
    let taken = started.elapsed();
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).expect("backend");
    let drawn = Instant::now();
    terminal.draw(|frame| picket::ui::render(frame, &state, &config.theme)).expect("draw");
    println!(
        "10,000 agent events into the console's state: {taken:.2?} ({:.0} events/s); the Nodes pane drawn after: {:.2?}",
        10_000.0 / taken.as_secs_f64(),
        drawn.elapsed()
    );

    c.bench_function("nodes: 10,000 events into the state", |b| {
        b.iter_batched(
            fresh,
            |mut state| {
                picket::app::update::update(
                    &mut state,
                    Action::AgentLines { conn: 1, events: batch.clone(), unreadable: 0 },
                );
                black_box(state.nodes.as_ref().map(|n| n.activity.len()));
            },
            criterion::BatchSize::LargeInput,
        );
    });
    c.bench_function("nodes: draw the pane (50 containers)", |b| {
        b.iter(|| {
            terminal.draw(|frame| picket::ui::render(frame, &state, &config.theme)).expect("draw");
            black_box(terminal.backend().buffer().area);
        });
    });
}

criterion_group!(benches, nodes);
criterion_main!(benches);

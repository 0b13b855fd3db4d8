//! Time to first frame: what `picket` does before the first screen is drawn — load and
//! validate config, theme, keymap and plugins; open the store (lock, schema check); build the
//! initial state; render the Overview at 120×40. Goal: under 100 ms (docs/performance.md).
//!
//! Host facts, engines and kubeconfig load in background tasks after that frame, so they are
//! not part of it. The process start itself is measured separately by `picket version`.

use std::hint::black_box;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use picket::config::{Config, Dirs, Overrides};
use picket::store::Store;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn first_frame(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs = Dirs { config_dir: tmp.path().join("config"), data_dir: tmp.path().join("data") };
    // The store exists already, as on every start but the first.
    drop(Store::open(&tmp.path().join("data/store")).expect("store"));

    c.bench_function("first_frame_in_process", |b| {
        b.iter(|| {
            let config = Config::load_with_dirs(&Overrides::default(), dirs.clone()).expect("config");
            let store = Store::open(&config.store_path()).expect("store");
            let state = picket::app::initial_state(&config, &store).expect("state");
            let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("backend");
            terminal.draw(|frame| picket::ui::render(frame, &state, &config.theme)).expect("draw");
            black_box(terminal.backend().buffer().area);
        });
    });

    let binary = env!("CARGO_BIN_EXE_picket");
    c.bench_function("process_start_picket_version", |b| {
        b.iter(|| {
            let status = Command::new(binary).arg("version").output().expect("picket version");
            assert!(status.status.success());
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = first_frame
}
criterion_main!(benches);

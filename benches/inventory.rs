//! Cataloging speed: picket's inventory of the debootstrap bookworm minbase image from its OCI
//! layout (gzip layer, digest verified), beside Syft on the same input. Goal: at least 3× faster
//! than Syft (docs/performance.md).

#[path = "../tests/common/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use std::hint::black_box;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use picket::scan::{self, ScanOptions, SourceSpec};

fn inventory(c: &mut Criterion) {
    let Some(debian) = fixtures::debian() else { return };
    let layout = debian.join("oci");
    let spec = SourceSpec::parse(&layout.display().to_string()).expect("spec");
    let mut group = c.benchmark_group("inventory_debian_minbase");
    group.sample_size(10);
    group.bench_function("picket", |b| {
        b.iter(|| {
            black_box(scan::inventory(&spec, &ScanOptions::default(), &|_| {}).expect("inventory").packages.len())
        });
    });
    if let Some(syft) = fixtures::syft() {
        let target = format!("oci-dir:{}", layout.display());
        let cache = std::env::temp_dir().join("picket-syft-cache");
        group.bench_function("syft", |b| {
            b.iter(|| {
                let out = Command::new(&syft)
                    .args(["scan", &target, "-q", "-o", "json"])
                    .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
                    .env("XDG_CACHE_HOME", &cache)
                    .output()
                    .expect("syft");
                assert!(out.status.success());
            });
        });
    }
    group.finish();
}

criterion_group!(benches, inventory);
criterion_main!(benches);

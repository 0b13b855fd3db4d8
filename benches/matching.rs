//! Vulnerability matching (docs/performance.md):
//! - 1,000 packages (a real Debian 12 machine's 707 dpkg packages plus PyPI, Go and crates.io
//!   packages named by the records) against the full shared database; goal < 20 ms.
//! - a full cold scan of the app test image from its OCI layout: inventory + match; goal < 1 s.
//! - re-matching a stored SBOM after a database update, without reading the image.

#[path = "../tests/common/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use picket::model::{Distro, Ecosystem, Package};
use picket::scan::{self, Sbom, ScanOptions, SourceSpec};
use picket::store::{Store, TreeName};
use picket::vulndb::{VulnDb, import, matcher};

/// Imports every shared set (the per-ecosystem records and the three all.zip sets).
fn full_database(store: &Store) {
    let db = VulnDb::open(store).expect("db");
    let data = fixtures::shared_data();
    for ecosystem in ["Debian", "npm"] {
        let loaded = import::load_path(&data.join("osv").join(ecosystem)).expect("load");
        import::write_source(&db, &format!("osv:{ecosystem}"), ecosystem, loaded, (None, None)).expect("write");
    }
    for ecosystem in ["Go", "PyPI", "crates.io"] {
        let loaded = import::load_path(&data.join("allzip").join(ecosystem).join("all.zip")).expect("load");
        import::write_source(&db, &format!("osv:{ecosystem}"), ecosystem, loaded, (None, None)).expect("write");
    }
}

/// 1,000 packages: the dpkg status of a real Debian 12 machine, then packages the records name.
fn thousand_packages(db: &VulnDb<'_>) -> Sbom {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("mkdir");
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::copy(fixtures::shared_data().join("debian12-dpkg-status"), root.join("var/lib/dpkg/status"))
        .expect("copy");
    std::fs::write(root.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").expect("write");
    let spec = SourceSpec::Rootfs { path: root.to_path_buf() };
    let mut sbom = scan::inventory(&spec, &ScanOptions::default(), &|_| {}).expect("inventory");
    let mut names: Vec<(Ecosystem, String)> = Vec::new();
    for (ecosystem, source) in
        [(Ecosystem::PyPI, "osv:PyPI"), (Ecosystem::Go, "osv:Go"), (Ecosystem::CratesIo, "osv:crates.io")]
    {
        let mut seen = std::collections::BTreeSet::new();
        for advisory in db.source_advisories(source).expect("advisories") {
            if seen.insert(advisory.package.clone()) {
                names.push((ecosystem, advisory.package));
            }
        }
    }
    names.sort();
    let step = (names.len() / (1000 - sbom.packages.len())).max(1);
    for (ecosystem, name) in names.into_iter().step_by(step).take(1000 - sbom.packages.len()) {
        sbom.packages.push(Package {
            purl: format!("pkg:generic/{name}@1.0.0"),
            name,
            version: "1.0.0".into(),
            ecosystem,
            source: None,
            licenses: vec![],
            locations: vec![],
            files: Vec::new(),
            cataloger: "bench".into(),
        });
    }
    sbom.distro = Some(Distro { id: "debian".into(), version_id: "12".into(), pretty_name: "Debian 12".into() });
    assert_eq!(sbom.packages.len(), 1000);
    sbom
}

fn matching(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(&tmp.path().join("store")).expect("store");
    let started = Instant::now();
    full_database(&store);
    let db = VulnDb::open(&store).expect("db");
    let advisories: u64 = db.sources().expect("sources").iter().map(|s| s.advisories).sum();
    println!("imported the full shared database ({advisories} package advisories) in {:?}", started.elapsed());
    let sbom = thousand_packages(&db);
    let findings = matcher::match_sbom(&db, &sbom).expect("match").findings.len();
    println!("1,000 packages → {findings} findings");

    let mut group = c.benchmark_group("vulndb");
    group.sample_size(20);
    group.bench_function("match_1000_packages_store", |b| {
        b.iter(|| black_box(matcher::match_sbom(&db, &sbom).expect("match").findings.len()));
    });
    let started = Instant::now();
    let index = matcher::MatchIndex::load(&db).expect("index");
    println!("loaded the match index in {:?}", started.elapsed());
    assert_eq!(index.match_sbom(&sbom).findings.len(), findings, "both paths find the same");
    group.bench_function("match_1000_packages_index", |b| {
        b.iter(|| black_box(index.match_sbom(&sbom).findings.len()));
    });

    let images = fixtures::images();
    let spec = SourceSpec::parse(&images.join("oci").display().to_string()).expect("spec");
    group.bench_function("cold_scan_app_image", |b| {
        b.iter(|| {
            let sbom = scan::inventory(&spec, &ScanOptions::default(), &|_| {}).expect("inventory");
            black_box(matcher::match_sbom(&db, &sbom).expect("match").findings.len())
        });
    });

    // Re-matching: the stored SBOM is read back and matched; the image is not opened.
    let app = scan::inventory(&spec, &ScanOptions::default(), &|_| {}).expect("inventory");
    let sboms = store.tree::<Sbom>(TreeName::Sboms).expect("tree");
    sboms.insert(&app.store_key(), &app).expect("store");
    let key = app.store_key();
    group.bench_function("rematch_stored_sbom", |b| {
        b.iter(|| {
            let stored = sboms.get(&key).expect("get").expect("present");
            black_box(index.match_sbom(&stored).findings.len())
        });
    });
    group.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);

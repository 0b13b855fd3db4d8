//! Registry scanning at scale (docs/performance.md):
//! - re-matching 10,000 stored SBOMs after a database update, from a store on disk, each SBOM a
//!   real package set (a slice of a real Debian 12 machine's dpkg packages plus PyPI, npm, Go and
//!   crates.io packages the shared records name); goal < 10 s. The update is real: PyPI's
//!   all.zip arrives (or goes) between runs, changing the findings of the images with PyPI
//!   packages.
//! - crawling 1,000 tags already scanned (nothing changed) on Debian's docker-registry over
//!   loopback; goal < 5 s. Needs docker-registry and skopeo; says so and skips that part otherwise.
//!
//! `cargo test` runs this once with 200 SBOMs and 50 tags, as a check that it works.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use picket::model::{Distro, Ecosystem, Package, Sbom};
use picket::scan::{self, ScanOptions, SourceSpec};
use picket::store::{Store, TreeName};
use picket::vulndb::{VulnDb, import};

fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn database(store: &Store) {
    let db = VulnDb::open(store).expect("db");
    let data = common::fixtures::shared_data();
    for ecosystem in ["Debian", "npm"] {
        let loaded = import::load_path(&data.join("osv").join(ecosystem)).expect("load");
        import::write_source(&db, &format!("osv:{ecosystem}"), ecosystem, loaded, (None, None)).expect("write");
    }
    // PyPI comes and goes between runs (toggle_pypi).
    for ecosystem in ["Go", "crates.io"] {
        let loaded = import::load_path(&data.join("allzip").join(ecosystem).join("all.zip")).expect("load");
        import::write_source(&db, &format!("osv:{ecosystem}"), ecosystem, loaded, (None, None)).expect("write");
    }
}

/// The packages SBOMs are cut from: a real Debian 12 machine's dpkg packages, and language
/// packages named by the records (each at a version the records list, when they list one).
fn package_pool(db: &VulnDb<'_>) -> (Vec<Package>, Vec<Package>) {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("mkdir");
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::copy(common::fixtures::shared_data().join("debian12-dpkg-status"), root.join("var/lib/dpkg/status"))
        .expect("copy");
    std::fs::write(root.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").expect("write");
    let spec = SourceSpec::Rootfs { path: root.to_path_buf() };
    let debian = scan::inventory(&spec, &ScanOptions::default(), &|_| {}).expect("inventory").packages;
    let mut language = Vec::new();
    for (ecosystem, source) in [
        (Ecosystem::PyPI, "osv:PyPI"),
        (Ecosystem::Npm, "osv:npm"),
        (Ecosystem::Go, "osv:Go"),
        (Ecosystem::CratesIo, "osv:crates.io"),
    ] {
        let mut seen = std::collections::BTreeSet::new();
        for advisory in db.source_advisories(source).expect("advisories") {
            if seen.insert(advisory.package.clone()) {
                // The list serialises as its newline-framed text.
                let listed = serde_json::to_value(&advisory.versions).ok();
                let version = listed
                    .as_ref()
                    .and_then(|v| v.as_str())
                    .and_then(|text| text.split('\n').find(|v| !v.is_empty()))
                    .unwrap_or("1.0.0")
                    .to_string();
                language.push(Package {
                    purl: format!("pkg:generic/{}@{version}", advisory.package),
                    name: advisory.package,
                    version,
                    ecosystem,
                    source: None,
                    licenses: vec![],
                    locations: vec![],
                    files: Vec::new(),
                    cataloger: "bench".into(),
                });
            }
        }
    }
    (debian, language)
}

/// `count` SBOMs of 100–160 Debian packages and 20–60 language packages each, cut from the pools
/// at different places (images share base layers, as real registries' images do).
fn store_sboms(store: &Store, count: usize, debian: &[Package], language: &[Package]) -> usize {
    let tree = store.tree::<Sbom>(TreeName::Sboms).expect("tree");
    let mut batch = Vec::new();
    let mut packages = 0;
    for i in 0..count {
        let base_len = 100 + (i * 7) % 61;
        let base_start = (i * 13) % debian.len().saturating_sub(base_len).max(1);
        let app_len = 20 + (i * 11) % 41;
        let app_start = (i * 31) % language.len().saturating_sub(app_len).max(1);
        let mut sbom = Sbom {
            format_version: picket::model::SBOM_FORMAT_VERSION,
            source: picket::model::SbomSource {
                kind: "registry".into(),
                name: format!("registry.example/team/app-{}:v{}", i / 10, i % 10),
                image: None,
            },
            distro: Some(Distro { id: "debian".into(), version_id: "12".into(), pretty_name: "Debian 12".into() }),
            packages: debian.iter().cycle().skip(base_start).take(base_len).cloned().collect(),
            catalogers: vec!["dpkg@1".into()],
            warnings: Vec::new(),
            secrets: Vec::new(),
        };
        sbom.packages.extend(language.iter().cycle().skip(app_start).take(app_len).cloned());
        packages += sbom.packages.len();
        batch.push((sbom.store_key(), Some(sbom)));
        if batch.len() >= 500 {
            tree.apply(std::mem::take(&mut batch)).expect("store");
        }
    }
    tree.apply(batch).expect("store");
    store.flush().expect("flush");
    packages
}

/// Imports PyPI's all.zip when the database lacks it, drops it when it has it: a database
/// update that changes many images' findings.
fn toggle_pypi(store: &Store) {
    let db = VulnDb::open(store).expect("db");
    if db.source("osv:PyPI").expect("source").is_some() {
        db.remove_source("osv:PyPI").expect("remove");
    } else {
        let zip = common::fixtures::shared_data().join("allzip/PyPI/all.zip");
        let loaded = import::load_path(&zip).expect("load");
        import::write_source(&db, "osv:PyPI", "PyPI", loaded, (None, None)).expect("write");
    }
}

fn rematch(c: &mut Criterion) {
    let count = if full_run() { 10_000 } else { 200 };
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(&tmp.path().join("store")).expect("store");
    let started = Instant::now();
    database(&store);
    toggle_pypi(&store);
    let db = VulnDb::open(&store).expect("db");
    let (debian, language) = package_pool(&db);
    let packages = store_sboms(&store, count, &debian, &language);
    println!(
        "stored {count} SBOMs ({packages} packages, store {} MiB) with the full shared database in {:.1?}",
        store.size_on_disk().unwrap_or(0) >> 20,
        started.elapsed()
    );
    let first = picket::scan::rematch::rematch_all(&store).expect("rematch");
    assert_eq!((first.sboms, first.first), (count, count));
    toggle_pypi(&store);
    let started = Instant::now();
    let report = picket::scan::rematch::rematch_all(&store).expect("rematch");
    let elapsed = started.elapsed();
    assert_eq!(report.sboms, count);
    assert!(!report.changed.is_empty(), "PyPI's advisories going changes images' findings");
    println!(
        "re-matched {count} stored SBOMs after a database update in {:.2} s ({} images changed; goal < 10 s for 10,000)",
        elapsed.as_secs_f64(),
        report.changed.len()
    );
    let started = Instant::now();
    let again = picket::scan::rematch::rematch_all(&store).expect("rematch");
    assert!(again.changed.is_empty());
    println!("re-matched them again with no database change in {:.2} s", started.elapsed().as_secs_f64());
    let mut group = c.benchmark_group("registry");
    group.sample_size(10);
    group.bench_function(format!("rematch_{count}_stored_sboms_after_an_update"), |b| {
        b.iter_batched(
            || toggle_pypi(&store),
            |()| picket::scan::rematch::rematch_all(&store).expect("rematch").changed.len(),
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Tags `tags_per_repository` tags in each of `repositories` repositories, all pointing at the
/// one pushed image, by writing the registry's own tag links (pushing 1,000 tags with skopeo
/// would take minutes and test skopeo).
fn fan_out(registry: &common::registry::Registry, repositories: usize, tags_per_repository: usize) {
    let root = registry.dir.path().join("data/docker/registry/v2/repositories");
    let seed = root.join("bench/r0");
    let digest = std::fs::read_to_string(seed.join("_manifests/tags/seed/current/link")).expect("the seed tag");
    let hex = digest.trim().strip_prefix("sha256:").expect("a sha256 digest").to_string();
    for r in 1..repositories {
        let status =
            std::process::Command::new("cp").arg("-a").arg(&seed).arg(root.join(format!("bench/r{r}"))).status();
        assert!(status.is_ok_and(|s| s.success()), "cp of the seed repository");
    }
    for r in 0..repositories {
        let repository = root.join(format!("bench/r{r}"));
        for t in 0..tags_per_repository {
            let tag = repository.join(format!("_manifests/tags/t{t}"));
            std::fs::create_dir_all(tag.join("current")).expect("tag dir");
            std::fs::write(tag.join("current/link"), digest.trim()).expect("link");
            std::fs::create_dir_all(tag.join(format!("index/sha256/{hex}"))).expect("index dir");
            std::fs::write(tag.join(format!("index/sha256/{hex}/link")), digest.trim()).expect("link");
        }
        std::fs::remove_dir_all(repository.join("_manifests/tags/seed")).expect("drop the seed tag");
    }
}

fn crawl(c: &mut Criterion) {
    let Some(registry) = common::registry::Registry::start(false) else {
        println!("crawl bench skipped: docker-registry or skopeo missing");
        return;
    };
    let (repositories, per_repository) = if full_run() { (10, 100) } else { (5, 10) };
    let image = common::fixtures::images().join("oci");
    registry.push(&format!("oci:{}", image.display()), "bench/r0:seed", false);
    fan_out(&registry, repositories, per_repository);
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(&tmp.path().join("store")).expect("store");
    let target = picket::registry::RegistryTarget {
        name: "bench".into(),
        ..picket::registry::RegistryTarget::new(&format!("http://{}", registry.host))
    }
    .resolve()
    .expect("target");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let run = || {
        let progress: picket::crawl::CrawlProgressFn = Arc::new(|_| {});
        let crawl = picket::crawl::Crawl {
            store: &store,
            target: &target,
            scan: ScanOptions::default(),
            progress,
            page_size: picket::crawl::PAGE_SIZE,
        };
        runtime.block_on(crawl.run()).expect("crawl")
    };
    let first = run();
    assert!(first.errors.is_empty() && first.scanned >= 1, "{first:?}");
    let tags = repositories * per_repository;
    let started = Instant::now();
    let again = run();
    let elapsed = started.elapsed();
    assert_eq!((again.tags, again.unchanged, again.scanned), (tags, tags, 0), "{again:?}");
    println!("crawled {tags} unchanged tags in {:.2} s (goal < 5 s for 1,000)", elapsed.as_secs_f64());
    let mut group = c.benchmark_group("registry");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function(format!("crawl_{tags}_unchanged_tags"), |b| b.iter(|| run().unchanged));
    group.finish();
}

criterion_group!(benches, rematch, crawl);
criterion_main!(benches);

//! Fixed, realistic state for update tests and pane snapshots (no clock, no machine facts).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::action::{Action, StoredSbom};
use crate::app::state::{AppState, StoreInfo};
use crate::app::update::update;
use crate::cluster::{ContextInfo, KubeContexts};
use crate::config::{Keymap, Plugins};
use crate::engine::{ContainerDetail, ContainerInfo, EngineInfo, EngineKind, EngineProbe, ImageInfo};
use crate::local::HostFacts;
use crate::model::OsRelease;

/// Types `text` into the console, a key per character; the effects it asked for.
pub fn type_text(state: &mut crate::app::state::AppState, text: &str) -> Vec<crate::app::action::Effect> {
    text.chars().flat_map(|c| crate::app::update::update(state, crate::app::action::Action::Key(key(c)))).collect()
}

pub fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

pub fn code(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn plugins() -> Plugins {
    Plugins::load(std::path::Path::new("/nonexistent"), &Keymap::default()).expect("shipped plugins")
}

pub fn loading_state() -> AppState {
    let store = StoreInfo { path: PathBuf::from("/home/sre/.local/share/picket/store"), size: None, schema: 1 };
    let mut state = AppState::new(store, None, Keymap::default(), plugins());
    state.engine_sockets_searched =
        vec![PathBuf::from("/var/run/docker.sock"), PathBuf::from("/run/podman/podman.sock")];
    state
}

const PODMAN: &str = "/run/podman/podman.sock";

fn container(name: &str, id: &str, image: &str, state: &str, status: &str) -> ContainerInfo {
    ContainerInfo {
        id: id.to_string(),
        name: name.to_string(),
        image: image.to_string(),
        image_id: String::new(),
        state: state.to_string(),
        status: status.to_string(),
        created: 1_764_000_000,
        socket: PathBuf::from(PODMAN),
        engine: EngineKind::Podman,
        labels: BTreeMap::new(),
    }
}

pub fn containers() -> Vec<ContainerInfo> {
    vec![
        container("api", "3f1c9a7be2d44c0e9a1b", "127.0.0.1:5000/testbed/debian-app:latest", "running", "Up 2 hours"),
        container("cache", "9b2e41d07f3a4be1c2d3", "docker.io/library/redis:7", "exited", "Exited (0) 3 days ago"),
        container("web", "a81f0c3d5e6b7a8c9d0e", "docker.io/library/nginx:1.25", "running", "Up 5 minutes"),
        container("web-canary", "c0ffee00112233445566", "docker.io/library/nginx:1.27", "created", "Created"),
    ]
}

pub fn images() -> Vec<ImageInfo> {
    let image = |tag: &str, id: &str, size: i64| ImageInfo {
        id: id.to_string(),
        tags: vec![tag.to_string()],
        digests: vec![],
        size,
        created: 1_764_000_000,
        socket: PathBuf::from(PODMAN),
        engine: EngineKind::Podman,
    };
    vec![
        image(
            "localhost/testbed/debian:bookworm",
            "sha256:9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
            127_000_000,
        ),
        image("oci/tiny:v1", "sha256:2222222222222222222222222222222222222222222222222222222222222222", 812_000),
    ]
}

/// Goes back through the top panes until `pane` shows (tests name the pane, not how many
/// presses away it is); the effects of arriving there.
pub fn show(state: &mut AppState, pane: crate::app::state::PaneId) -> Vec<crate::app::action::Effect> {
    for _ in 0..crate::app::state::TOP_PANES.len() {
        let effects = crate::app::update::run_command(state, crate::app::action::Command::PrevPane);
        if state.pane() == pane {
            return effects;
        }
    }
    panic!("{pane:?} is not a top pane");
}

pub fn state() -> AppState {
    let mut state = loading_state();
    update(
        &mut state,
        Action::HostFacts(Box::new(HostFacts {
            hostname: "node-a".into(),
            os: OsRelease::parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"),
            kernel: "6.18.0-picket".into(),
            arch: "x86_64".into(),
            cpu_model: "AMD EPYC 7B13".into(),
            cpus: 2,
            memory_total: 24 * 1024 * 1024 * 1024,
            memory_available: 20 * 1024 * 1024 * 1024,
            uptime_secs: 3 * 3600 + 12 * 60,
        })),
    );
    update(
        &mut state,
        Action::Engines(vec![
            EngineProbe {
                socket: PathBuf::from(PODMAN),
                result: Ok(EngineInfo {
                    kind: EngineKind::Podman,
                    version: "4.3.1".into(),
                    api_version: "1.41".into(),
                    containers: containers(),
                    images: images(),
                }),
            },
            EngineProbe {
                socket: PathBuf::from("/var/run/docker.sock"),
                result: Err("engine /var/run/docker.sock: Permission denied (os error 13)".into()),
            },
        ]),
    );
    update(
        &mut state,
        Action::Contexts(Ok(KubeContexts {
            files: vec![PathBuf::from("/home/sre/.kube/config")],
            current: Some("prod".into()),
            contexts: vec![
                ContextInfo {
                    name: "prod".into(),
                    cluster: "prod-eu1".into(),
                    server: "https://10.0.0.1:6443".into(),
                    user: "sre".into(),
                    namespace: "payments".into(),
                },
                ContextInfo {
                    name: "dev".into(),
                    cluster: "kind-dev".into(),
                    server: "https://127.0.0.1:40123".into(),
                    user: "kind-dev".into(),
                    namespace: "default".into(),
                },
            ],
        })),
    );
    update(&mut state, Action::StoreSize(Ok(1_572_864)));
    update(
        &mut state,
        Action::VulnDb(Ok(crate::app::state::VulnDbSummary {
            sources: 2,
            advisories: 3019,
            oldest_age: Some(2 * 3600),
        })),
    );
    let sbom = crate::report::fixtures::sbom();
    update(&mut state, Action::StoredSboms(Ok(vec![StoredSbom::of(sbom.store_key(), &sbom)])));
    state
}

pub fn detail() -> ContainerDetail {
    ContainerDetail {
        id: "3f1c9a7be2d44c0e9a1b".into(),
        name: "api".into(),
        image: "127.0.0.1:5000/testbed/debian-app:latest".into(),
        image_id: "sha256:5d41402abc4b".into(),
        created: "2026-11-24T01:00:00Z".into(),
        state: "running".into(),
        pid: 4242,
        started_at: "2026-11-24T01:00:01Z".into(),
        command: "sleep 3600".into(),
        user: "1000:1000".into(),
        privileged: false,
        read_only_rootfs: false,
        cap_add: vec!["NET_ADMIN".into()],
        cap_drop: vec![],
        security_opt: vec!["seccomp=unconfined".into()],
        network_mode: "host".into(),
        pid_mode: "private".into(),
        ipc_mode: "shareable".into(),
        memory_limit: 256 * 1024 * 1024,
        pids_limit: 0,
        mounts: vec!["/srv/data -> /data (ro)".into(), "/run/docker.sock -> /var/run/docker.sock (rw)".into()],
        env_names: vec!["PATH".into(), "API_TOKEN".into()],
        labels: [("team".to_string(), "payments".to_string())].into(),
        healthcheck: vec![],
        addresses: vec![],
    }
}

pub use crate::cluster::fixtures::inventory;

/// What the Workloads pane gets for `inventory()`: rows judged by the cluster checks.
pub fn workloads_data() -> crate::app::state::WorkloadsData {
    let inv = inventory();
    let facts = crate::bench::k8s::ClusterFacts::new(&inv);
    let report = crate::bench::k8s::judge_on(&facts, &[]);
    let rows = crate::bench::k8s::summary::workload_risks(&facts, &report);
    crate::app::state::WorkloadsData {
        context: inv.context.clone(),
        rows,
        report: std::sync::Arc::new(report),
        warnings: vec![],
    }
}

/// A finished CIS Docker run of the report fixture, with a note as the console adds them.
pub fn bench_done() -> crate::app::state::BenchDone {
    crate::app::state::BenchDone::new(
        crate::report::compliance::fixtures::report(),
        vec!["2 engines found: benchmarking the first, /run/docker.sock".into()],
    )
}

/// An exec event as an agent on `node` sends it (pid order is time order).
pub fn exec_event(
    node: &str,
    pid: u32,
    ppid: u32,
    path: &str,
    args: &[&str],
    container: Option<&crate::agent::attribution::ContainerRef>,
) -> crate::agent::wire::WireEvent {
    crate::agent::wire::WireEvent::process(
        node,
        crate::agent::events::ProcessEvent {
            kind: crate::agent::events::ProcessEventKind::Exec,
            pid,
            tid: pid,
            ppid,
            uid: 0,
            exit_status: 0,
            cgroup_id: 77,
            timestamp_ns: 1_000_000 * u64::from(pid),
            comm: path.rsplit('/').next().unwrap_or_default().chars().take(15).collect(),
            filename: path.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            exe: String::new(),
        },
        container.cloned(),
    )
}

/// Two registries: `lab` crawled once, `hub` never.
pub fn registry_rows() -> Vec<crate::crawl::overview::RegistryRow> {
    use crate::crawl::overview::{Origin, RegistryRow};
    use crate::registry::records::CrawlRecord;
    let target = |name: &str, url: &str| crate::registry::RegistryTarget {
        name: name.into(),
        repositories: vec!["team/*".into()],
        ..crate::registry::RegistryTarget::new(url)
    };
    vec![
        RegistryRow {
            target: target("lab", "registry.lab.example:5000"),
            name: "lab".into(),
            origin: Origin::Config,
            repositories: 3,
            tags: 6,
            crawl: Some(CrawlRecord {
                started: "2026-12-05T06:58:02Z".into(),
                finished: Some("2026-12-05T07:01:44Z".into()),
                done: vec!["team/app".into(), "team/old".into(), "team/web".into()],
                repositories: 3,
                errors: Vec::new(),
            }),
            counts: [2, 7, 11, 3, 0],
            new: 2,
        },
        RegistryRow {
            target: target("hub", "https://mirror.example"),
            name: "hub".into(),
            origin: Origin::Added,
            repositories: 0,
            tags: 0,
            crawl: None,
            counts: [0; 5],
            new: 0,
        },
    ]
}

/// `lab`'s tags: a plain image, one whose findings changed at the last update, an index.
pub fn tag_rows() -> Vec<crate::crawl::overview::TagRow> {
    use crate::crawl::overview::TagRow;
    use crate::registry::records::{PlatformImage, TagRecord};
    let record = |repository: &str, tag: &str, digest: &str, platforms: &[(&str, &str)]| TagRecord {
        repository: repository.into(),
        tag: tag.into(),
        digest: format!("sha256:{digest}"),
        images: platforms
            .iter()
            .map(|(platform, d)| PlatformImage { platform: (*platform).into(), manifest_digest: format!("sha256:{d}") })
            .collect(),
        created: Some("2024-02-01T00:00:00Z".into()),
        since: "2026-12-05T06:58:10Z".into(),
        checked: "2026-12-05T07:01:40Z".into(),
    };
    vec![
        TagRow {
            record: record("team/app", "v1", &"1a".repeat(32), &[("linux/amd64", &"1a".repeat(32))]),
            counts: [0, 3, 4, 1, 0],
            matched: Some("2026-12-05T07:01:40Z".into()),
            new: Vec::new(),
            fixed: Vec::new(),
        },
        TagRow {
            record: record("team/app", "v2", &"2b".repeat(32), &[("linux/amd64", &"2b".repeat(32))]),
            counts: [1, 4, 5, 1, 0],
            matched: Some("2026-12-05T07:20:00Z".into()),
            new: vec!["CVE-2019-10906 jinja2 2.10".into(), "CVE-2020-28493 jinja2 2.10".into()],
            fixed: vec!["GHSA-xxxx-old urllib3 1.24.1".into()],
        },
        TagRow {
            record: record(
                "team/web",
                "latest",
                &"3c".repeat(32),
                &[("linux/amd64", &"4d".repeat(32)), ("linux/arm64", &"5e".repeat(32))],
            ),
            counts: [1, 0, 2, 1, 0],
            matched: Some("2026-12-05T07:20:00Z".into()),
            new: Vec::new(),
            fixed: Vec::new(),
        },
    ]
}

/// What a cluster crawl job published: registry `ci-lab` with one tag.
pub fn published() -> crate::crawl::in_cluster::Published {
    let mut registry = registry_rows().remove(0);
    registry.name = "ci-lab".into();
    registry.target.name = "ci-lab".into();
    registry.origin = crate::crawl::overview::Origin::Cluster;
    registry.tags = 1;
    registry.repositories = 1;
    crate::crawl::in_cluster::Published {
        published: "2026-12-05T07:30:00Z".into(),
        registry,
        tags: tag_rows().into_iter().take(1).collect(),
    }
}

//! Admission decision latency and memory (docs/performance.md; issue 19's bars: p99 < 2 ms at
//! 1,000 requests/s on loopback for rules that need no scan, memory flat over 100,000 requests).
//!
//! The webhook as `picket admission serve` runs it (HTTPS with rustls, decisions written to a
//! store), a client on loopback sending AdmissionReviews of a three-container Deployment. Printed:
//! the latency percentiles of 5,000 requests paced at 1,000 per second (each timed from its
//! send; the sender never waits, so a queue behind a slow answer counts), and the process's resident memory
//! after a warm-up and over the next 100,000 requests. Criterion then times the pure decision and one
//! round trip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use picket::admission::decide::{Requester, decide};
use picket::admission::images::ImageScans;
use picket::admission::rules::{RuleSet, parse_text};
use picket::admission::workload::Admitted;
use picket::admission::{Judge, install::Certificates, server};
use serde_json::{Value, json};

const RULES: &str = r#"
apiVersion: picket.dev/v1
kind: PicketAdmissionConfig
metadata: { name: config }
spec: { mode: protect }
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata: { name: no-privileged }
spec: { type: deny, criteria: [ { name: privileged, op: '=' } ] }
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata: { name: trusted-registries }
spec: { type: deny, criteria: [ { name: imageRegistry, op: notIn, value: [registry.example.com, docker.io] } ] }
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata: { name: no-latest }
spec: { type: deny, mode: monitor, criteria: [ { name: imageTag, op: '=', value: latest } ] }
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata: { name: team-label }
spec: { type: deny, criteria: [ { name: labels, op: missingAny, value: [team] } ] }
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata: { name: env-secrets }
spec: { type: deny, criteria: [ { name: envSecrets, op: '=' } ] }
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata: { name: prod-root }
spec: { type: deny, criteria: [ { name: namespace, op: prefix, value: prod }, { name: runAsRoot, op: '=' } ] }
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata: { name: baseline }
spec: { type: deny, criteria: [ { name: violatesPss, op: '=', value: baseline } ] }
---
apiVersion: picket.dev/v1
kind: PicketAdmissionRule
metadata: { name: debug-pods }
spec: { type: exception, criteria: [ { name: labels, op: containsAll, value: ['picket.dev/debug=allowed'] } ] }
"#;

fn rules() -> RuleSet {
    let (rules, config, problems) = parse_text(std::path::Path::new("bench-rules.yaml"), RULES);
    assert!(problems.is_empty(), "{problems:?}");
    RuleSet { rules, config: config.map(|(_, c)| c).unwrap_or_default() }
}

fn deployment() -> Value {
    let container = |name: &str, image: &str| {
        json!({ "name": name, "image": image,
                "securityContext": { "runAsNonRoot": true, "allowPrivilegeEscalation": false },
                "env": [{ "name": "LOG_LEVEL", "value": "info" }, { "name": "DB_PASSWORD", "valueFrom": { "secretKeyRef": { "name": "db", "key": "pw" } } }],
                "resources": { "limits": { "cpu": "500m", "memory": "256Mi" } } })
    };
    json!({ "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "api", "namespace": "shop", "labels": { "team": "shop" } },
            "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "api" } },
                      "template": { "metadata": { "labels": { "app": "api", "team": "shop" } },
                                    "spec": { "containers": [
                                        container("api", "registry.example.com/shop/api:1.4.2"),
                                        container("sidecar", "registry.example.com/shop/proxy:2.0"),
                                        container("log", "docker.io/library/busybox:1.36") ] } } } })
}

fn review(uid: usize) -> Vec<u8> {
    let body = json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": format!("00000000-0000-0000-0000-{uid:012}"),
        "kind": { "group": "apps", "version": "v1", "kind": "Deployment" },
        "resource": { "group": "apps", "version": "v1", "resource": "deployments" },
        "name": "api", "namespace": "shop", "operation": "CREATE",
        "userInfo": { "username": "alice", "groups": ["system:authenticated"] },
        "object": deployment(), "dryRun": false } });
    serde_json::to_vec(&body).expect("a body")
}

struct Webhook {
    /// The client's: the server runs on a runtime of its own, as it runs in a process of its
    /// own beside the API server.
    runtime: tokio::runtime::Runtime,
    _server: tokio::runtime::Runtime,
    client: reqwest::Client,
    url: String,
    _dir: tempfile::TempDir,
}

fn start() -> Webhook {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certificates::generate("picket-system", &["127.0.0.1".into()]).expect("certificates");
    certs.write(dir.path()).expect("write certificates");
    let tls = server::tls_config(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).expect("TLS");
    let ca = std::fs::read(dir.path().join("ca.crt")).expect("the CA");
    let store = Arc::new(
        picket::store::Store::open_with_cache(&dir.path().join("store"), server::STORE_CACHE_BYTES).expect("store"),
    );
    // PICKET_BENCH_SERVER_THREADS / PICKET_BENCH_CLIENT_THREADS: the two runtimes' workers (the
    // server's default is one per core it runs on; the client's is one).
    let threads =
        |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default).max(1);
    let (client_cpus, server_cpus) = placement();
    let server_threads = threads("PICKET_BENCH_SERVER_THREADS", server_cpus.as_ref().map_or(cores(), Vec::len));
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(server_threads)
        .on_thread_start(move || pin(server_cpus.as_deref()))
        .enable_all()
        .build()
        .expect("runtime");
    let client_pin = client_cpus.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads("PICKET_BENCH_CLIENT_THREADS", 1))
        .on_thread_start(move || pin(client_pin.as_deref()))
        .enable_all()
        .build()
        .expect("runtime");
    // The paced sender runs on this thread: the client's side too.
    pin(client_cpus.as_deref());
    let judge = Arc::new(Judge::new(rules(), None));
    let listener = server_runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("address").port();
    // PICKET_BENCH_NO_STORE=1: without the decisions store, to tell its memory from the rest.
    let store = std::env::var_os("PICKET_BENCH_NO_STORE").is_none().then_some(store);
    server_runtime.spawn(server::serve(
        judge,
        listener,
        tls,
        store,
        server::Recent::new(None),
        None,
        std::future::pending(),
    ));
    // HTTP/2, one connection, as the API server calls webhooks.
    let mut config = picket::registry::tls::config_with_ca(&ca, "the bench CA").expect("client TLS");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let client =
        reqwest::Client::builder().tls_backend_preconfigured(config).http2_prior_knowledge().build().expect("client");
    Webhook { runtime, _server: server_runtime, client, url: format!("https://127.0.0.1:{port}/validate"), _dir: dir }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The client's and the server's CPUs: the API server calls a webhook from another machine or at
/// least other cores, so on a machine of two or more cores the load generator gets the first and
/// the webhook the rest, and neither's threads queue behind the other's (on this 2-core machine
/// that alone moved the p99 by milliseconds). `PICKET_BENCH_NO_PIN=1` lets the scheduler place
/// them.
fn placement() -> (Option<Vec<usize>>, Option<Vec<usize>>) {
    let cores = cores();
    if cores < 2 || std::env::var_os("PICKET_BENCH_NO_PIN").is_some() {
        return (None, None);
    }
    (Some(vec![0]), Some((1..cores).collect()))
}

fn pin(cpus: Option<&[usize]>) {
    let Some(cpus) = cpus else { return };
    let mut set = nix::sched::CpuSet::new();
    for cpu in cpus {
        let _ = set.set(*cpu);
    }
    if let Err(e) = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
        eprintln!("admission bench: cannot pin a thread to CPUs {cpus:?}: {e}");
    }
}

async fn send(client: &reqwest::Client, url: &str, body: Vec<u8>) {
    let answer =
        client.post(url).header("content-type", "application/json").body(body).send().await.expect("an answer");
    assert!(answer.status().is_success());
    let bytes = answer.bytes().await.expect("a body");
    assert!(bytes.windows(7).any(|w| w == b"allowed"), "an AdmissionReview answer");
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `count` requests, `concurrency` at a time, as fast as they go.
fn flood(webhook: &Webhook, count: usize, concurrency: usize) {
    webhook.runtime.block_on(async {
        let mut tasks = Vec::new();
        for worker in 0..concurrency {
            let client = webhook.client.clone();
            let url = webhook.url.clone();
            tasks.push(tokio::spawn(async move {
                for i in (worker..count).step_by(concurrency) {
                    send(&client, &url, review(i)).await;
                }
            }));
        }
        for task in tasks {
            task.await.expect("a worker");
        }
    });
}

fn paced_latencies(webhook: &Webhook, per_second: u32, seconds: u32) -> Vec<Duration> {
    let interval = Duration::from_secs(1) / per_second;
    // Made before: serialising the object is the API server's work, not the webhook's.
    let bodies: Vec<Vec<u8>> = (0..(per_second * seconds) as usize).map(review).collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, body) in (0u32..).zip(bodies) {
        // Paced by a high-resolution sleep (tens of µs late at most): tokio's timer ticks by the
        // millisecond, which sent the requests in bursts of two or three, the last of each
        // waiting behind the others in the client — the bench's lateness, not the webhook's.
        if let Some(wait) = (started + interval * i).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let client = webhook.client.clone();
        let url = webhook.url.clone();
        // Timed from the send; the sender never waits for an answer, so a slow answer cannot
        // hide the requests behind it.
        let sent = Instant::now();
        tasks.push(webhook.runtime.spawn(async move {
            send(&client, &url, body).await;
            sent.elapsed()
        }));
    }
    webhook.runtime.block_on(async {
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.expect("a request"));
        }
        out.sort();
        out
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1).min(sorted.len() - 1);
    sorted[index]
}

fn admission(c: &mut Criterion) {
    // `cargo test --all-targets` runs this once as a test: the same path, fewer requests.
    let full = std::env::args().any(|a| a == "--bench");
    let scale = |n: usize| if full { n } else { n / 100 };
    let webhook = start();
    flood(&webhook, scale(2_000), 8);

    let latencies = paced_latencies(&webhook, 1_000, if full { 5 } else { 1 });
    println!(
        "admission: {} requests at 1000/s over HTTPS on loopback: p50 {:?}, p99 {:?}, max {:?} (bar: p99 < 2 ms)",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );

    // The server's own share: the AdmissionReview read, judged and written back (what
    // `POST /validate` does between the request's body and the answer's), one after another.
    let judge = Judge::new(rules(), None);
    let bodies: Vec<Vec<u8>> = (0..5_000).map(review).collect();
    let mut own: Vec<Duration> = webhook.runtime.block_on(async {
        let mut out = Vec::new();
        for body in &bodies {
            let started = Instant::now();
            let answered = picket::admission::review::answer(&judge, body).await;
            std::hint::black_box(serde_json::to_vec(&answered.0).expect("an answer"));
            out.push(started.elapsed());
        }
        out
    });
    own.sort();
    println!(
        "admission: the server's share (read, judge, answer) of {} reviews: p50 {:?}, p99 {:?}",
        own.len(),
        percentile(&own, 0.50),
        percentile(&own, 0.99)
    );

    // Past the warm-up the store holds its most (older decisions are pruned) and sled's cache
    // is full: from there, memory must stay flat.
    flood(&webhook, scale(25_000), 8);
    let before = resident_kib();
    let started = Instant::now();
    flood(&webhook, scale(50_000), 8);
    let middle = resident_kib();
    flood(&webhook, scale(50_000), 8);
    let after = resident_kib();
    println!(
        "admission: resident memory after {} requests {before} KiB, {} more {middle} KiB, {} more {after} KiB ({:+} KiB over the last {}; {:.0} requests/s flat out)",
        scale(27_000),
        scale(50_000),
        scale(50_000),
        after as i64 - before as i64,
        scale(100_000),
        scale(100_000) as f64 / started.elapsed().as_secs_f64()
    );

    let rules = rules();
    let admitted = Admitted::from_object(&deployment(), "shop").expect("reads").expect("a workload");
    let requester = Requester::new("alice", vec![]);
    let scans = ImageScans::new();
    c.bench_function("admission decide (8 rules, 3 containers)", |b| {
        b.iter(|| decide(&rules, &admitted, &requester, &scans, Some("picket-system")))
    });
    let body = review(1);
    c.bench_function("admission HTTPS round trip", |b| {
        b.iter(|| webhook.runtime.block_on(send(&webhook.client, &webhook.url, body.clone())))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = admission
}
criterion_main!(benches);

//! Alerts and their responses (docs/performance.md; issue 20's bars): 10,000 alerts into the
//! Alerts pane's state in under 50 ms; delivery to a webhook sink p99 under 1 s after the alert;
//! memory bounded during a 10-minute sink outage at 100 alerts/s (60,000 alerts queued on disk
//! while the sink refuses connections).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use picket::agent::alert::{Action, Alert, Trigger};
use picket::agent::attribution::{ContainerRef, Runtime};
use picket::agent::enforce::Mode;
use picket::alert::StoredAlert;
use picket::alert::outbox::Responder;
use picket::alert::respond::ResponseConfig;
use picket::app::state::AlertsState;
use picket::model::Severity;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Alerts over 50 rules × 40 containers × 5 programs, as a busy cluster sends them.
fn alert(i: usize) -> StoredAlert {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    StoredAlert {
        node: format!("node-{}", i % 7),
        container: Some(ContainerRef {
            runtime: Runtime::Containerd,
            id: format!("{:064x}", i % 40),
            pod_uid: None,
            name: Some(format!("app-{}", i % 40)),
            image: Some("registry.local/app:1".into()),
            pod_namespace: Some(format!("ns-{}", i % 4)),
            pod_name: Some(format!("app-{}-7f9c", i % 40)),
            pod_owner: None,
        }),
        alert: Alert {
            id: format!("bench-{seq}"),
            at_unix_ms: picket::alert::now_unix_ms(),
            rule: format!("rule-{}", i % 50),
            title: "bench".into(),
            severity: [Severity::Low, Severity::Medium, Severity::High, Severity::Critical][i % 4],
            technique: String::new(),
            why: "bench".into(),
            mode: Mode::Monitor,
            action: Action::Alerted,
            policy: String::new(),
            event: Trigger {
                kind: "exec".into(),
                exe: format!("/usr/bin/p{}", i % 5),
                comm: "p".into(),
                ..Trigger::default()
            },
            ancestry: Vec::new(),
            count: 1,
        },
    }
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A webhook receiver: when each alert arrived, by id.
async fn receiver(listener: tokio::net::TcpListener) -> Arc<Mutex<Vec<(String, Instant)>>> {
    let got: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let kept = Arc::clone(&got);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let kept = Arc::clone(&kept);
                    async move {
                        let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                        let id = value["alert"]["id"].as_str().unwrap_or_default().to_string();
                        kept.lock().expect("lock").push((id, Instant::now()));
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    got
}

fn config(url: &str) -> ResponseConfig {
    let text = format!(
        "version: 1\nsinks:\n  - {{ name: hook, type: webhook, url: '{url}' }}\nrules:\n  - name: all\n    actions: [ {{ notify: hook }} ]\n"
    );
    ResponseConfig::from_texts(&[(std::path::PathBuf::from("bench.yaml"), text)]).expect("config")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1).min(sorted.len().saturating_sub(1));
    sorted.get(index).copied().unwrap_or_default()
}

fn response(c: &mut Criterion) {
    // `cargo test --all-targets` runs this once as a test: the same path, smaller.
    let full = std::env::args().any(|a| a == "--bench");
    let scale = |n: usize| if full { n } else { n / 100 };

    // 10,000 alerts into the pane's state, in the batches an agent's reader hands over.
    let batch: Vec<StoredAlert> = (0..10_000).map(alert).collect();
    let started = Instant::now();
    let mut state = AlertsState::new(1);
    for chunk in batch.chunks(500) {
        state.take(chunk.iter().cloned());
    }
    println!(
        "response: 10000 alerts into the Alerts pane's state in {:?} ({} folds; bar: < 50 ms)",
        started.elapsed(),
        state.folder.len()
    );
    c.bench_function("alerts pane: take 10,000 alerts", |b| {
        b.iter(|| {
            let mut state = AlertsState::new(1);
            for chunk in batch.chunks(500) {
                state.take(chunk.iter().cloned());
            }
            state.rows.len()
        })
    });

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        // Delivery latency: alerts at 100/s to a webhook on loopback.
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(picket::store::Store::open(&dir.path().join("store")).expect("store"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let got = receiver(listener).await;
        let responder = Responder::start(Arc::clone(&store), config(&url), None).expect("responder");
        let count = scale(1_000).max(10);
        let mut sent = Vec::new();
        for i in 0..count {
            let one = alert(i);
            sent.push((one.alert.id.clone(), Instant::now()));
            responder.respond(&[one]).expect("queued");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while got.lock().expect("lock").len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let arrived: std::collections::HashMap<String, Instant> = got.lock().expect("lock").iter().cloned().collect();
        let mut latencies: Vec<Duration> =
            sent.iter().filter_map(|(id, at)| arrived.get(id).map(|got| got.duration_since(*at))).collect();
        latencies.sort();
        println!(
            "response: {} of {count} alerts delivered to a webhook at 100/s: p50 {:?}, p99 {:?} after the alert (bar: p99 < 1 s)",
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
        drop(responder);

        // A 10-minute outage at 100 alerts/s: 60,000 notifications queue on disk for a sink
        // that refuses connections (time compressed: they are queued as fast as they come).
        let down_port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let store = Arc::new(picket::store::Store::open(&dir.path().join("outage")).expect("store"));
        let responder =
            Responder::start(Arc::clone(&store), config(&format!("http://127.0.0.1:{down_port}/hook")), None).expect("responder");
        let total = scale(60_000);
        let mut samples = Vec::new();
        for second in 0..total / 100 {
            let alerts: Vec<StoredAlert> = (0..100).map(|i| alert(second * 100 + i)).collect();
            responder.respond(&alerts).expect("queued");
            if second % (total / 100 / 4).max(1) == 0 {
                samples.push(resident_kib());
            }
        }
        samples.push(resident_kib());
        let status = responder.status();
        println!(
            "response: {total} alerts queued during a sink outage: resident memory {:?} KiB at each quarter ({} queued on disk, failing: {})",
            samples,
            status.first().map_or(0, |s| s.queued),
            status.first().is_some_and(|s| s.failing_since_ms.is_some())
        );
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = response
}
criterion_main!(benches);

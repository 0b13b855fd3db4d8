//! A cluster of 10,000 pods (docs/performance.md): listing it through the API in pages of 500
//! (against kube's tower-test mock serving the objects, so the figure is picket's own cost:
//! requests, JSON decoding, paging), the watched inventory's first sync and snapshot, and every
//! cluster check (CIS section 5, Pod Security Standards, RBAC) over it.

#[path = "../tests/common/kube_mock.rs"]
#[allow(dead_code)]
mod kube_mock;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kube_mock::{Behaviour, MockApiServer, fixture_objects};

const PODS: usize = 10_000;

/// The fixture cluster plus 10,000 bare pods and 1,000 Deployments made from its templates.
fn big_cluster() -> Vec<serde_json::Value> {
    let mut objects = fixture_objects();
    let pod = objects.iter().find(|o| o["kind"] == "Pod").cloned().expect("pod");
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").cloned().expect("deployment");
    for i in 0..PODS {
        let mut p = pod.clone();
        p["metadata"]["name"] = serde_json::json!(format!("pod-{i}"));
        p["metadata"]["namespace"] = serde_json::json!(format!("team-{}", i % 50));
        objects.push(p);
    }
    for i in 0..1_000 {
        let mut d = deployment.clone();
        d["metadata"]["name"] = serde_json::json!(format!("svc-{i}"));
        objects.push(d);
    }
    objects
}

fn cluster(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let objects = big_cluster();
    let mut group = c.benchmark_group("cluster");
    group.sample_size(10);

    let started = Instant::now();
    let inventory = runtime.block_on(async {
        let server = MockApiServer::start(objects.clone(), Behaviour::default());
        picket::cluster::inventory::load(&server.client, "bench").await.expect("inventory")
    });
    println!(
        "list {} pods, {} deployments: {:?} (one run)",
        inventory.pods.len(),
        inventory.deployments.len(),
        started.elapsed()
    );
    group.bench_function("list 10,000 pods", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let server = MockApiServer::start(objects.clone(), Behaviour::default());
                black_box(picket::cluster::inventory::load(&server.client, "bench").await.expect("inventory"))
            })
        })
    });
    group.bench_function("watched inventory: first sync and snapshot", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let server = MockApiServer::start(objects.clone(), Behaviour::default());
                let watch = picket::cluster::watch::ClusterWatch::start(server.client.clone(), "bench");
                assert!(watch.ready(Duration::from_secs(60)).await);
                black_box(watch.snapshot())
            })
        })
    });
    let started = Instant::now();
    let report = picket::bench::k8s::judge(&inventory);
    println!(
        "cluster checks over {} workloads: {:?} (one run)",
        inventory.pods.len() + inventory.deployments.len(),
        started.elapsed()
    );
    black_box(report);
    group.bench_function("cluster checks over 11,000 workloads", |b| {
        b.iter(|| black_box(picket::bench::k8s::judge(&inventory)))
    });
    group.finish();
}

criterion_group!(benches, cluster);
criterion_main!(benches);

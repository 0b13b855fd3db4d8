//! The firewall's costs (docs/performance.md): loopback TCP between two threads of this process
//! (its cgroup is below the root the programs hang on), request/response over one keep-alive
//! connection and one new connection per request — without the programs, with the first-bytes
//! programs (identification), then with the L7 rung too, judging every request this process
//! sends against an HTTP deny rule — printing the throughput overhead and the added time per new
//! connection (issue 18's bars: < 5 % with identification, < 10 % with L7 enforcement, p99 <
//! 100 µs added per connection). Needs root and BPF; says so and measures nothing otherwise.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../tests/common/mod.rs"]
mod common;

const REQUEST: &[u8] = b"GET /orders/7 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: bench\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";

/// A server answering every request on every connection, until the process ends.
fn serve() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_nodelay(true);
                let mut buffer = [0u8; 512];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 || stream.write_all(RESPONSE).is_err() {
                        break;
                    }
                }
            });
        }
    });
    address
}

fn exchange(stream: &mut TcpStream) {
    let mut buffer = [0u8; 512];
    stream.write_all(REQUEST).expect("request");
    let mut got = 0;
    while got < RESPONSE.len() {
        got += stream.read(&mut buffer[got..]).expect("response");
    }
}

/// `count` requests over one connection.
fn keep_alive(address: std::net::SocketAddr, count: usize) -> Duration {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let started = Instant::now();
    for _ in 0..count {
        exchange(&mut stream);
    }
    started.elapsed()
}

/// Each of `count` connections' time (connect, one request, close), sorted.
fn new_connections(address: std::net::SocketAddr, count: usize) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..count)
        .map(|_| {
            let started = Instant::now();
            let mut stream = TcpStream::connect(address).expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            exchange(&mut stream);
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

/// This process's cgroup v2 id (the L7 rules are keyed by it).
fn own_cgroup() -> u64 {
    use std::os::unix::fs::MetadataExt;
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").expect("/proc/self/cgroup");
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::")).expect("a unified-hierarchy cgroup");
    let root = picket::agent::attribution::unified_root();
    std::fs::metadata(root.join(path.trim_start_matches('/'))).expect("its directory").ino()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn best_of_three(run: impl Fn() -> Duration) -> Duration {
    (0..3).map(|_| run()).min().unwrap_or_default()
}

fn flows(c: &mut Criterion) {
    if !common::is_root() || !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        println!("first-bytes benchmark skipped: it needs root and BPF");
        return;
    }
    // `cargo test --all-targets` runs benches once as tests: keep that short.
    let full = std::env::args().any(|a| a == "--bench");
    let (requests, connections) = if full { (20_000, 2_000) } else { (500, 100) };
    let address = serve();

    keep_alive(address, requests / 10);
    let without = best_of_three(|| keep_alive(address, requests));
    let plain = new_connections(address, connections);
    // The programs, with their ring read and each record identified as the agent does.
    let (loaded, started) = std::sync::mpsc::channel();
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = std::sync::Arc::clone(&read);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let mut sensor = picket::agent::flows::FlowSensor::start().expect("the first-bytes programs load");
            let _ = loaded.send(());
            while let Ok(batch) = sensor.next_batch().await {
                for first in batch {
                    std::hint::black_box(first.identify());
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    });
    started.recv().expect("the programs load");
    keep_alive(address, requests / 10);
    let with = best_of_three(|| keep_alive(address, requests));
    let watched = new_connections(address, connections);
    let overhead = (with.as_secs_f64() / without.as_secs_f64() - 1.0) * 100.0;
    let added = |p: f64| percentile(&watched, p).saturating_sub(percentile(&plain, p));
    println!(
        "{requests} keep-alive requests on loopback: {without:?} without the first-bytes programs, {with:?} with them \
         (overhead {overhead:.1} %); a new connection: p50 {:?} → {:?}, p99 {:?} → {:?} (p99 added {:?}); \
         {} first-bytes records read and identified",
        percentile(&plain, 0.5),
        percentile(&watched, 0.5),
        percentile(&plain, 0.99),
        percentile(&watched, 0.99),
        added(0.99),
        read.load(std::sync::atomic::Ordering::Relaxed),
    );

    // The L7 rung on this process's own cgroup: every request its client sockets send is judged
    // (and passes: the rule denies DELETE /admin*).
    let mut l7 = picket::agent::enforce::l7::L7Control::default();
    let policy = picket::agent::enforce::ContainerPolicy {
        cgroup_id: own_cgroup(),
        mode: picket::agent::enforce::Mode::Protect,
        exec_allowlist: None,
        file_rules: Vec::new(),
        connect: None,
        l7: Some(picket::agent::enforce::l7::L7Rules {
            http_deny: vec![picket::agent::enforce::l7::HttpMatch {
                method: Some("DELETE".into()),
                path: "/admin*".into(),
                ports: (0, u16::MAX),
            }],
            ..Default::default()
        }),
    };
    // Its ring is registered with a runtime's reactor (nothing here reads it: no request is refused).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let _inside = runtime.enter();
    l7.apply(std::slice::from_ref(&policy)).expect("the L7 rung loads");
    keep_alive(address, requests / 10);
    let judged = best_of_three(|| keep_alive(address, requests));
    let judged_connections = new_connections(address, connections);
    let overhead = (judged.as_secs_f64() / without.as_secs_f64() - 1.0) * 100.0;
    println!(
        "with L7 enforcement too: {requests} keep-alive requests {judged:?} (overhead {overhead:.1} % over none); \
         a new connection p50 {:?}, p99 {:?} (p99 added {:?} over none)",
        percentile(&judged_connections, 0.5),
        percentile(&judged_connections, 0.99),
        percentile(&judged_connections, 0.99).saturating_sub(percentile(&plain, 0.99)),
    );
    if !full {
        return;
    }
    let mut group = c.benchmark_group("flows");
    group.sample_size(10);
    group.bench_function("1,000 keep-alive requests, first bytes read", |b| b.iter(|| keep_alive(address, 1_000)));
    group.finish();
}

criterion_group!(benches, flows);
criterion_main!(benches);

//! The firewall's costs (docs/performance.md): loopback TCP between two threads of this process
//! (its cgroup is below the root the programs hang on), request/response over one keep-alive
//! connection and one new connection per request — without the programs, with the first-bytes
//! programs (identification), then with the L7 rung too, judging every request this process
//! sends against an HTTP deny rule, then judging every request its server receives instead
//! (`httpIn`) — printing the throughput overhead and the added time per new connection (issue 18's bars: < 5 % with identification, < 10 % with L7 enforcement, p99 <
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

/// One set-up's measurements over the rounds.
#[derive(Default)]
struct Phase {
    runs: Vec<Duration>,
    connections: Vec<Duration>,
}

impl Phase {
    fn measure(&mut self, address: std::net::SocketAddr, requests: usize, connections: usize) {
        keep_alive(address, requests / 10);
        self.runs.push(keep_alive(address, requests));
        self.connections.extend(new_connections(address, connections));
    }

    fn keep_alive(&self) -> Duration {
        let mut runs = self.runs.clone();
        runs.sort();
        runs.get(runs.len() / 2).copied().unwrap_or_default()
    }

    fn connect(&self, p: f64) -> Duration {
        let mut times = self.connections.clone();
        times.sort();
        percentile(&times, p)
    }
}

/// The first-bytes programs with their ring read and each record identified, as the agent does,
/// on a thread of their own until stopped.
struct Reader {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: std::thread::JoinHandle<u64>,
}

impl Reader {
    fn start() -> Self {
        let (loaded, started) = std::sync::mpsc::channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let mut sensor = picket::agent::flows::FlowSensor::start().expect("the first-bytes programs load");
                let _ = loaded.send(());
                let mut read = 0;
                loop {
                    tokio::select! {
                        batch = sensor.next_batch() => {
                            let Ok(batch) = batch else { break };
                            for record in batch {
                                if let picket::agent::flows::FlowRecord::First(first) = record {
                                    std::hint::black_box(first.identify());
                                }
                                read += 1;
                            }
                        }
                        _ = &mut stopped => break,
                    }
                }
                read
            })
        });
        started.recv().expect("the programs load");
        Self { stop, handle }
    }

    /// Stops and detaches the programs: how many records were read.
    fn stop(self) -> u64 {
        let _ = self.stop.send(());
        self.handle.join().unwrap_or(0)
    }
}

/// The same deny rule on the requests this process's server receives.
fn l7_inbound_policy() -> picket::agent::enforce::ContainerPolicy {
    let mut policy = l7_policy();
    if let Some(rules) = policy.l7.as_mut() {
        rules.http_in_deny = std::mem::take(&mut rules.http_deny);
    }
    policy
}

/// An HTTP deny rule on this process's own cgroup.
fn l7_policy() -> picket::agent::enforce::ContainerPolicy {
    picket::agent::enforce::ContainerPolicy {
        cgroup_id: own_cgroup(),
        mode: picket::agent::enforce::Mode::Protect,
        exec_allowlist: None,
        file_rules: Vec::new(),
        connect: None,
        l7: Some(picket::agent::enforce::l7::L7Rules {
            http_deny: vec![picket::agent::enforce::l7::HttpMatch {
                method: Some("DELETE".into()),
                path: "/admin*".into(),
                host: None,
                ports: (0, u16::MAX),
            }],
            ..Default::default()
        }),
    }
}

fn flows(c: &mut Criterion) {
    if !common::is_root() || !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        println!("first-bytes benchmark skipped: it needs root and BPF");
        return;
    }
    // `cargo test --all-targets` runs benches once as tests: keep that short.
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, requests, connections) = if full { (7, 5_000, 400) } else { (1, 300, 50) };
    // One CPU for the client, the server and the reader: on two shared cores the threads'
    // placement alone moves a keep-alive run by 4x, which would drown what is measured.
    let cpu0 = {
        let mut set = nix::sched::CpuSet::new();
        set.set(0).is_ok().then_some(set)
    };
    if let Some(set) = cpu0 {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
    let address = serve();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let _inside = runtime.enter();
    // Rounds of the three set-ups in turn, so that drift hits each alike; medians compared.
    let (mut plain, mut identified, mut judged) = (Phase::default(), Phase::default(), Phase::default());
    let mut received = Phase::default();
    let mut read = 0;
    for _ in 0..rounds {
        plain.measure(address, requests, connections);
        let reader = Reader::start();
        identified.measure(address, requests, connections);
        // The L7 rung on this process's own cgroup: every request its client sockets send is
        // judged (and passes: the rule denies DELETE /admin*).
        let mut l7 = picket::agent::enforce::l7::L7Control::default();
        l7.apply(std::slice::from_ref(&l7_policy())).expect("the L7 rung loads");
        judged.measure(address, requests, connections);
        drop(l7);
        // Judging what the server receives instead: its accepted sockets (opened after the rules)
        // go through the sk_skb verdict.
        let mut l7 = picket::agent::enforce::l7::L7Control::default();
        l7.apply(std::slice::from_ref(&l7_inbound_policy())).expect("the L7 rung loads");
        received.measure(address, requests, connections);
        drop(l7);
        read += reader.stop();
    }
    let overhead = |phase: &Phase| (phase.keep_alive().as_secs_f64() / plain.keep_alive().as_secs_f64() - 1.0) * 100.0;
    let added = |phase: &Phase| phase.connect(0.99).saturating_sub(plain.connect(0.99));
    println!(
        "{rounds} rounds of {requests} keep-alive requests and {connections} new connections on loopback, one CPU; medians: \
         keep-alive run {:?} with nothing, {:?} identified (overhead {:.1} %), {:?} with L7 enforcement too (overhead {:.1} %); \
         a new connection p50 {:?} / {:?} / {:?}, p99 {:?} / {:?} / {:?} (p99 added {:?} identified, {:?} with L7); \
         {read} first-bytes records read and identified; judging received requests instead: keep-alive run {:?} \
         (overhead {:.1} %), a new connection p99 {:?} (added {:?})",
        plain.keep_alive(),
        identified.keep_alive(),
        overhead(&identified),
        judged.keep_alive(),
        overhead(&judged),
        plain.connect(0.5),
        identified.connect(0.5),
        judged.connect(0.5),
        plain.connect(0.99),
        identified.connect(0.99),
        judged.connect(0.99),
        added(&identified),
        added(&judged),
        received.keep_alive(),
        overhead(&received),
        received.connect(0.99),
        added(&received),
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

//! The layer-7 firewall against real clients and servers in real Podman containers: the host's
//! curl, dig and Python (mounted read-only into the containers) talk over the loopback of a
//! network namespace two containers share, while `picket agent run --policy` holds the client
//! container to HTTP and DNS rules in the kernel.

mod common;

use std::io::BufRead;
use std::time::{Duration, Instant};

/// The host's programs and libraries, read-only, so that real curl, dig and python3 run inside.
const HOST_TOOLS: [&str; 6] = ["-v", "/usr:/usr:ro", "-v", "/lib:/lib:ro", "-v", "/lib64:/lib64:ro"];

/// A DNS responder for the test, over UDP and TCP: answers every A query with 10.0.0.1 and logs
/// each name with its transport.
const DNS_RESPONDER: &str = r#"
import socket, threading
def answer(q):
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode())
        i += 1 + q[i]
    record = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01"
    return ".".join(labels), q[:2] + b"\x81\x80" + q[4:6] + b"\x00\x01\x00\x00\x00\x00" + q[12:i + 5] + record
def tcp():
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("127.0.0.1", 53))
    t.listen(8)
    while True:
        c, _ = t.accept()
        data = c.recv(4096)
        if len(data) > 2:
            name, reply = answer(data[2:])
            print("query", name, "tcp", flush=True)
            c.sendall(len(reply).to_bytes(2, "big") + reply)
        c.close()
threading.Thread(target=tcp, daemon=True).start()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
while True:
    q, peer = s.recvfrom(512)
    name, reply = answer(q)
    print("query", name, flush=True)
    s.sendto(reply, peer)
"#;

/// On one keep-alive connection a GET, a DELETE and a GET again, then a GET on a new
/// connection: what each got.
const KEEP_ALIVE_CLIENT: &str = r#"
import socket
def connect():
    return socket.create_connection(("127.0.0.1", 8080), timeout=5)
def ask(s, line):
    try:
        s.sendall(line.encode() + b"\r\nHost: web\r\nContent-Length: 0\r\n\r\n")
    except OSError as e:
        return "refused:" + (e.strerror or str(e))
    return s.recv(65536).split(b"\r\n")[0].decode()
s = connect()
print(ask(s, "GET /one HTTP/1.1"))
print(ask(s, "DELETE /admin/users HTTP/1.1"))
print(ask(s, "GET /two HTTP/1.1"))
print(ask(connect(), "GET /two HTTP/1.1"))
"#;

/// PostgreSQL's server and client programs (Debian's postgresql-15).
const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Accepts on 127.0.0.1:2222, reads what a client sends first, and closes: enough for a client
/// that speaks first (ssh's banner) to be identified, or one whose request follows its first
/// write (an HTTP/2 preface, then the headers).
const SINK: &str = r#"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 2222))
s.listen(8)
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        print("first bytes", c.recv(256)[:40], flush=True)
        time.sleep(0.3)
    except OSError:
        pass
    c.close()
"#;

fn tools_present() -> bool {
    [
        "/usr/bin/curl",
        "/usr/bin/dig",
        "/usr/bin/python3",
        "/usr/bin/openssl",
        "/usr/bin/redis-server",
        "/usr/bin/ssh",
        "/usr/lib/postgresql/15/bin/postgres",
    ]
    .iter()
    .all(|p| std::path::Path::new(p).exists())
}

/// Root, BTF, the real clients and servers, podman and runc, or the test ends saying which is
/// missing.
fn prerequisites() -> Option<common::engines::Podman> {
    if !common::is_root() || !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        eprintln!("skipped: loading BPF programs needs root and /sys/kernel/btf/vmlinux");
        return None;
    }
    if !tools_present() {
        eprintln!(
            "skipped: needs curl, dig, python3, openssl, redis-server, ssh and postgresql-15 on the host (./install.sh --dev)"
        );
        return None;
    }
    let podman = common::engines::Podman::start();
    if podman.is_none() {
        eprintln!("skipped: needs podman and runc (./install.sh --dev)");
    }
    podman
}

fn exec_in(podman: &common::engines::Podman, name: &str, command: &[&str]) -> (bool, String, Duration) {
    let mut args = vec!["exec", name];
    args.extend_from_slice(command);
    let started = Instant::now();
    let (ok, out) = podman.try_podman(&args);
    (ok, out, started.elapsed())
}

/// Runs the agent with `policy`, serving `socket`, while `during` runs; its JSON lines.
fn agent_lines_during(
    podman: &common::engines::Podman,
    policy: &std::path::Path,
    socket: &std::path::Path,
    during: impl FnOnce(),
) -> Vec<serde_json::Value> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "run", "--for", "120", "--containers-only", "--no-rules", "--policy"])
        .arg(policy)
        .arg("--socket")
        .arg(socket)
        .env("CONTAINER_HOST", format!("unix://{}", podman.socket.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("picket agent runs");
    let stdout = child.stdout.take().expect("stdout");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().expect("lines").push(line);
            }
        })
    };
    let started = Instant::now();
    let applied = || {
        lines.lock().expect("lines").iter().any(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v["type"] == "stats" && v["enforcement"]["protect"].as_u64().is_some_and(|n| n > 0))
        })
    };
    while !applied() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(applied(), "the policy was put in force: {:?}", lines.lock().expect("lines"));
    during();
    std::thread::sleep(Duration::from_secs(2));
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let out = child.wait_with_output().expect("the agent ends");
    reader.join().expect("the reader");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = lines.lock().expect("lines");
    lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Protect mode with HTTP and DNS rules: an allowed GET passes; a denied `DELETE /admin…` fails
/// at once in curl and never reaches the server's log; on one keep-alive connection the GET
/// before a refused DELETE is answered and the connection is gone after it, while a new
/// connection is judged afresh; a denied DNS name gets REFUSED at once in dig and
/// never reaches the responder; curl's TLS handshake to a denied server name (SNI) fails at
/// once while one to another name on the same server passes; while other names resolve; each refusal is an alert naming the
/// policy line; with the agent gone, the DELETE reaches the server.
#[test]
fn http_requests_dns_names_and_tls_server_names_are_refused_in_the_kernel() {
    let Some(podman) = prerequisites() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("dns.py"), DNS_RESPONDER).expect("responder");
    std::fs::write(dir.path().join("keepalive.py"), KEEP_ALIVE_CLIENT).expect("client");
    std::fs::write(dir.path().join("sink.py"), SINK).expect("sink");
    std::fs::create_dir(dir.path().join("www")).expect("www");
    for page in ["index.html", "one", "two"] {
        std::fs::write(dir.path().join("www").join(page), "hello\n").expect("page");
    }
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=shop.example", "-keyout"])
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let mount = format!("{}:/t:ro", dir.path().display());
    // The host's users, for PostgreSQL (it runs as its own user) and ssh (it looks itself up).
    let users = ["-v", "/etc/passwd:/etc/passwd:ro", "-v", "/etc/group:/etc/group:ro"];
    let mut web = vec!["run", "-d", "--name", "web", "-v", &mount];
    web.extend_from_slice(&HOST_TOOLS);
    web.extend_from_slice(&users);
    web.extend_from_slice(&[
        common::engines::Podman::IMAGE,
        "sh",
        "-c",
        "mkdir -p /tmp && chmod 1777 /tmp; \
         python3 -u /t/dns.py > /dns.log 2>&1 & \
         python3 -u /t/sink.py > /sink.log 2>&1 & \
         openssl s_server -accept 127.0.0.1:8443 -cert /t/cert.pem -key /t/key.pem -www -quiet > /tls.log 2>&1 & \
         redis-server --port 6379 --bind 127.0.0.1 --save '' > /redis.log 2>&1 & \
         exec python3 -u -m http.server 8080 -b 127.0.0.1 -p HTTP/1.1 -d /t/www",
    ]);
    podman.podman(&web);
    let mut client = vec!["run", "-d", "--name", "client", "--network", "container:web", "-v", &mount];
    client.extend_from_slice(&HOST_TOOLS);
    client.extend_from_slice(&users);
    client.extend_from_slice(&[common::engines::Podman::IMAGE, "sleep", "600"]);
    podman.podman(&client);
    // A real PostgreSQL server, as its own user.
    let postgres = format!(
        "{POSTGRES_BIN}/initdb -D /tmp/pg -U postgres --auth=trust --locale=C -E UTF8 > /tmp/initdb.log 2>&1 && \
         exec {POSTGRES_BIN}/postgres -D /tmp/pg -k /tmp -h 127.0.0.1 -p 5432 > /tmp/pg.log 2>&1"
    );
    podman.podman(&["exec", "-d", "--user", "postgres", "web", "sh", "-c", &postgres]);
    let psql_bin = format!("{POSTGRES_BIN}/psql");
    let psql =
        [psql_bin.as_str(), "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-tAc", "select 40 + 2", "postgres"];
    // The servers are up before anything is judged.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(exec_in(&podman, "client", &["curl", "-sf", "http://127.0.0.1:8080/"]).0
        && exec_in(&podman, "client", &psql).1.contains("42"))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let policy = dir.path().join("l7.yaml");
    std::fs::write(
        &policy,
        "containers:\n  - name: client\n    mode: protect\n    http:\n      deny:\n        - method: DELETE\n          path: /admin*\n          ports: [8080]\n        - host: \"*.evil.example\"\n          ports: [8080]\n    dns:\n      deny: [\"*.evil.example\"]\n    tls:\n      deny: [\"*.evil.example\"]\n",
    )
    .expect("policy");
    let checked = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["agent", "policy"])
        .arg(&policy)
        .output()
        .expect("picket agent policy");
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));

    let curl = |args: &[&str]| {
        let mut command = vec!["curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}"];
        command.extend_from_slice(args);
        exec_in(&podman, "client", &command)
    };
    let dig = |name: &str| exec_in(&podman, "client", &["dig", "@127.0.0.1", "+tries=1", "+time=3", name]);
    let mut seen = Vec::new();
    let socket = dir.path().join("agent.sock");
    let mut watched = None;
    let lines = agent_lines_during(&podman, &policy, &socket, || {
        // The Network pane's twin reads the same agent meanwhile.
        let watcher = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .args(["network", "--for", "20s", "--json", "--agent"])
            .arg(&socket)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("picket network runs");
        std::thread::sleep(Duration::from_secs(1));
        seen.push(("get", curl(&["http://127.0.0.1:8080/"])));
        seen.push(("delete", curl(&["-X", "DELETE", "http://127.0.0.1:8080/admin/users"])));
        seen.push(("delete elsewhere", curl(&["-X", "DELETE", "http://127.0.0.1:8080/cart"])));
        seen.push(("host denied", curl(&["-H", "Host: c4.evil.example:8080", "http://127.0.0.1:8080/one"])));
        seen.push(("host ok", curl(&["-H", "hOsT: shop.example", "http://127.0.0.1:8080/two"])));
        seen.push(("keep-alive", exec_in(&podman, "client", &["python3", "/t/keepalive.py"])));
        seen.push(("dns ok", dig("shop.example")));
        seen.push(("dns denied", dig("c2.evil.example")));
        // Over TCP a name is judged in the stream: the denied one's write fails.
        let dig_tcp =
            |name: &str| exec_in(&podman, "client", &["dig", "@127.0.0.1", "+tcp", "+tries=1", "+time=3", name]);
        seen.push(("dns tcp ok", dig_tcp("cart.example")));
        seen.push(("dns tcp denied", dig_tcp("c3.evil.example")));
        let https = |name: &str| {
            let resolve = format!("{name}:8443:127.0.0.1");
            let url = format!("https://{name}:8443/");
            curl(&["-k", "--resolve", &resolve, &url])
        };
        seen.push(("tls ok", https("shop.example")));
        seen.push(("redis", exec_in(&podman, "client", &["redis-cli", "-h", "127.0.0.1", "-p", "6379", "PING"])));
        seen.push(("postgresql", exec_in(&podman, "client", &psql)));
        let ssh = [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=3",
            "-p",
            "2222",
            "nobody@127.0.0.1",
            "true",
        ];
        seen.push(("ssh", exec_in(&podman, "client", &ssh)));
        // HTTP/2 without TLS: the preface in one write, the request's HPACK headers in the next.
        seen.push(("h2c", curl(&["--http2-prior-knowledge", "http://127.0.0.1:2222/orders/7"])));
        seen.push(("tls denied", https("c2.evil.example")));
        watched = Some(watcher.wait_with_output().expect("picket network ends"));
    });
    let got = |what: &str| seen.iter().find(|(w, _)| *w == what).map(|(_, r)| r.clone()).expect("ran");
    let (ok, out, _) = got("get");
    assert!(ok && out.trim() == "200", "an allowed GET passes: {out}");
    let (ok, out, took) = got("delete");
    assert!(!ok && out.contains("Send failure"), "refused in curl: {out}");
    assert!(took < Duration::from_secs(3), "refused at once, not at the time-out: {took:?}");
    let (_, out, _) = got("delete elsewhere");
    assert!(out.trim() == "501", "another path's DELETE reaches the server (which does not do DELETE): {out}");
    // The Host header's name, whatever its case and port.
    let (ok, out, took) = got("host denied");
    assert!(!ok && out.contains("Send failure"), "a request to a denied host is refused: {out}");
    assert!(took < Duration::from_secs(3), "at once: {took:?}");
    let (ok, out, _) = got("host ok");
    assert!(ok && out.trim() == "200", "another host passes: {out}");
    // A refused request ends the connection (the agent destroys it); the client's next
    // connection is judged afresh.
    let (ok, out, _) = got("keep-alive");
    let answers: Vec<&str> = out.lines().collect();
    assert!(ok && answers.len() == 4, "{out}");
    assert!(answers[0].contains("200"), "a GET on the connection before: {out}");
    assert!(answers[1] == "refused:Permission denied", "the DELETE fails in send(): {out}");
    assert!(answers[2].starts_with("refused:"), "the connection is gone: {out}");
    assert!(answers[3].contains("200"), "a new connection is judged afresh: {out}");
    let queries = exec_in(&podman, "web", &["cat", "/dns.log"]).1;
    let (ok, out, _) = got("dns ok");
    assert!(
        ok && out.contains("status: NOERROR") && out.contains("10.0.0.1"),
        "an allowed name resolves: {out} (responder: {queries})"
    );
    let (_, out, took) = got("dns denied");
    assert!(out.contains("status: REFUSED") && !out.contains("10.0.0.1"), "answered REFUSED by the agent: {out}");
    assert!(took < Duration::from_secs(2), "refused at once, not at dig's time-out: {took:?} {out}");
    let (ok, out, _) = got("dns tcp ok");
    assert!(ok && out.contains("10.0.0.1"), "an allowed name resolves over TCP: {out} (responder: {queries})");
    let (_, out, took) = got("dns tcp denied");
    assert!(!out.contains("10.0.0.1") && !out.contains("status: NOERROR"), "not answered over TCP either: {out}");
    assert!(took < Duration::from_secs(3), "refused at once: {took:?} {out}");

    let (ok, out, _) = got("tls ok");
    assert!(ok && out.trim() == "200", "a handshake to an allowed server name passes: {out}");
    let (ok, out, took) = got("tls denied");
    assert!(!ok && !out.contains("200"), "the handshake to a denied server name fails: {out}");
    assert!(took < Duration::from_secs(3), "at once: {took:?} {out}");

    let (ok, out, _) = got("redis");
    assert!(ok && out.contains("PONG"), "{out}");
    let (ok, out, _) = got("postgresql");
    assert!(ok && out.trim() == "42", "the real server answered: {out}");

    // Each protocol named from the real clients' first bytes, whatever the port.
    let flows: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "flow" && l["container"]["name"] == "client").collect();
    let sent = |protocol: &str| -> Vec<&serde_json::Value> {
        flows.iter().copied().filter(|f| f["protocol"] == protocol && f["way"] == "sent").collect()
    };
    assert!(sent("http").iter().any(|f| f["method"] == "GET" && f["remote"][1] == 8080), "{flows:#?}");
    assert!(sent("tls").iter().any(|f| f["sni"] == "shop.example" && f["remote"][1] == 8443), "{flows:#?}");
    assert!(sent("redis").iter().any(|f| f["command"] == "PING"), "{flows:#?}");
    // psql asks for TLS first (sslmode=prefer), on the server's port.
    assert!(sent("postgresql").iter().any(|f| f["message"] == "ssl" && f["remote"][1] == 5432), "{flows:#?}");
    assert!(
        sent("ssh").iter().any(|f| f["banner"].as_str().is_some_and(|b| b.starts_with("SSH-2.0-OpenSSH"))),
        "{flows:#?}"
    );
    let sink = exec_in(&podman, "web", &["cat", "/sink.log"]).1;
    assert!(sink.contains("first bytes b'SSH-2.0-"), "{sink}");
    assert!(sent("unknown").iter().all(|f| f["remote"][1] == 53), "only DNS over TCP goes unnamed: {flows:#?}");
    assert!(
        sent("http2").iter().any(|f| f["method"] == "GET"
            && f["path"] == "/orders/7"
            && f["authority"] == "127.0.0.1:2222"
            && f["remote"][1] == 2222),
        "the first request's :path, from its HPACK headers: {flows:#?}"
    );
    // When connections end, the bytes they carried, per service.
    let ended: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "flow_ended" && l["container"]["name"] == "client").collect();
    let http_ended = ended
        .iter()
        .find(|e| e["protocol"] == "http" && e["remote"][1] == 8080 && e["way"] == "sent")
        .unwrap_or_else(|| panic!("the HTTP connections that ended: {ended:#?}"));
    assert!(http_ended["connections"].as_u64().is_some_and(|n| n >= 1), "{http_ended}");
    // At least the GET's request line out, and its 200 with the page back.
    assert!(http_ended["sent"].as_u64().is_some_and(|n| n >= 18), "{http_ended}");
    assert!(http_ended["received"].as_u64().is_some_and(|n| n >= 40), "{http_ended}");
    let pg_ended = ended
        .iter()
        .find(|e| e["protocol"] == "postgresql")
        .unwrap_or_else(|| panic!("psql's connection ended: {ended:#?}"));
    assert!(pg_ended["received"].as_u64().is_some_and(|n| n > 100), "the server's answers: {pg_ended}");

    let server_log = podman.try_podman(&["logs", "web"]).1;
    assert!(server_log.contains("\"GET / HTTP/1.1\" 200"), "{server_log}");
    assert!(server_log.contains("DELETE /cart"), "{server_log}");
    assert!(!server_log.contains("/admin"), "the refused requests never reached the server: {server_log}");
    assert_eq!(
        server_log.matches("GET /one").count(),
        1,
        "only the keep-alive client's GET /one arrived, not the one to the denied host: {server_log}"
    );
    assert!(server_log.contains("GET /two"), "{server_log}");
    assert!(queries.contains("query shop.example"), "{queries}");
    assert!(queries.contains("query cart.example tcp"), "{queries}");
    assert!(!queries.contains("evil"), "the refused query never left: {queries}");

    let alerts: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "alert").collect();
    let http = alerts.iter().find(|a| a["rule"] == "policy-http").expect("an HTTP alert");
    assert_eq!(
        (http["action"].as_str(), http["event"]["path"].as_str()),
        (Some("denied"), Some("DELETE /admin/users"))
    );
    assert_eq!(http["container"]["name"], "client");
    let line = format!("{} containers[0] http: deny DELETE /admin* port 8080", policy.display());
    assert_eq!(http["policy"], line.as_str(), "{http}");
    let dns = alerts.iter().find(|a| a["rule"] == "policy-dns").expect("a DNS alert");
    assert_eq!((dns["action"].as_str(), dns["event"]["path"].as_str()), (Some("denied"), Some("c2.evil.example")));
    assert!(dns["policy"].as_str().is_some_and(|p| p.ends_with("dns: deny *.evil.example")), "{dns}");
    let tls = alerts.iter().find(|a| a["rule"] == "policy-tls").expect("a TLS alert");
    assert_eq!((tls["action"].as_str(), tls["event"]["path"].as_str()), (Some("denied"), Some("c2.evil.example")));
    assert!(tls["policy"].as_str().is_some_and(|p| p.ends_with("tls: deny *.evil.example")), "{tls}");
    assert!(tls["event"]["remote"] == "127.0.0.1:8443", "{tls}");

    // What the twin saw: the client's HTTP connection, denied by the policy line, and its DNS.
    let watched = watched.expect("watched");
    assert!(watched.status.success(), "{}", String::from_utf8_lossy(&watched.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&watched.stdout).expect("JSON rows");
    let http = rows
        .iter()
        .find(|r| r["container"] == "client" && r["protocol"] == "HTTP" && r["port"] == 8080 && r["direction"] == "out")
        .unwrap_or_else(|| panic!("the client's HTTP connection: {rows:#?}"));
    assert_eq!(http["verdict"], "denied", "{http}");
    assert!(http["why"].as_str().is_some_and(|w| w.contains("http: deny DELETE /admin*")), "{http}");
    assert!(
        http["details"].as_array().is_some_and(|d| d.iter().any(|d| d == "DELETE /admin/users (denied)")),
        "{http}"
    );
    assert!(http["ended"].as_u64().is_some_and(|n| n >= 1), "{http}");
    assert!(http["received"].as_u64().is_some_and(|n| n >= 40), "the bytes of its ended connections: {http}");
    let dns = rows.iter().find(|r| r["container"] == "client" && r["protocol"] == "DNS").expect("the DNS row");
    assert_eq!(dns["verdict"], "denied", "{dns}");

    // The agent is gone: nothing is judged any more.
    let (_, out, _) = curl(&["-X", "DELETE", "http://127.0.0.1:8080/admin/users"]);
    assert_eq!(out.trim(), "501", "the request reaches the server again");
}

/// Accept rules in protect mode, in the kernel: a container's listener on a listed port takes
/// connections from a container sharing its namespace, one on a port not listed refuses them at
/// once (connection refused, not a time-out) and each refusal is a `policy-accept` alert with
/// action denied; with the agent gone, the port answers again.
#[test]
fn inbound_connections_outside_the_accept_rules_are_refused() {
    let Some(podman) = prerequisites() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = vec!["run", "-d", "--name", "server"];
    server.extend_from_slice(&HOST_TOOLS);
    server.extend_from_slice(&[
        common::engines::Podman::IMAGE,
        "sh",
        "-c",
        "python3 -m http.server 9090 -b 127.0.0.1 > /9090.log 2>&1 & exec python3 -m http.server 8080 -b 127.0.0.1",
    ]);
    podman.podman(&server);
    let mut peer = vec!["run", "-d", "--name", "peer", "--network", "container:server"];
    peer.extend_from_slice(&HOST_TOOLS);
    peer.extend_from_slice(&[common::engines::Podman::IMAGE, "sleep", "600"]);
    podman.podman(&peer);
    let curl = |port: u16| {
        let url = format!("http://127.0.0.1:{port}/");
        exec_in(&podman, "peer", &["curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", &url])
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(curl(8080).0 && curl(9090).0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let policy = dir.path().join("accept.yaml");
    std::fs::write(&policy, "containers:\n  - name: server\n    mode: protect\n    accept:\n      - ports: [8080]\n")
        .expect("policy");
    let socket = dir.path().join("agent.sock");
    let mut seen = Vec::new();
    let lines = agent_lines_during(&podman, &policy, &socket, || {
        // The namespace is judged at the agent's next look at the containers (at most 2 s).
        let deadline = Instant::now() + Duration::from_secs(10);
        while curl(9090).0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        seen.push(("listed", curl(8080)));
        seen.push(("not listed", curl(9090)));
    });
    let got = |what: &str| seen.iter().find(|(w, _)| *w == what).map(|(_, r)| r.clone()).expect("ran");
    let (ok, out, _) = got("listed");
    assert!(ok && out.trim() == "200", "a listed port takes connections: {out}");
    let (ok, out, took) = got("not listed");
    assert!(!ok && (out.contains("Connection refused") || out.contains("Couldn't connect")), "refused: {out}");
    assert!(took < Duration::from_secs(3), "at once, not at the time-out: {took:?}");
    let alert = lines
        .iter()
        .find(|l| l["type"] == "alert" && l["rule"] == "policy-accept" && l["event"]["local"] == "127.0.0.1:9090")
        .unwrap_or_else(|| panic!("the refusal alerted: {lines:#?}"));
    assert_eq!((alert["action"].as_str(), alert["container"]["name"].as_str()), (Some("denied"), Some("server")));
    assert!(alert["policy"].as_str().is_some_and(|p| p.ends_with("accept: port 9090 is not listed")), "{alert}");
    let (ok, out, _) = curl(9090);
    assert!(ok && out.trim() == "200", "with the agent gone the port answers: {out}");
}

/// Requests a container receives, judged on its own port by its `httpIn` rules in protect mode:
/// a GET is answered; a `DELETE /admin…` never reaches the server (its log stays clean) and the
/// client's connection is reset at once rather than left waiting; another path's DELETE and a
/// request to a denied host are told apart; the refusal is a `policy-http-in` alert with the
/// policy line; with the agent gone the server answers again.
#[test]
fn requests_a_container_receives_are_refused_by_its_inbound_rules() {
    let Some(podman) = prerequisites() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("www")).expect("www");
    std::fs::write(dir.path().join("www/index.html"), "hello\n").expect("page");
    let mount = format!("{}:/t:ro", dir.path().display());
    let mut server = vec!["run", "-d", "--name", "server", "-v", &mount];
    server.extend_from_slice(&HOST_TOOLS);
    server.extend_from_slice(&[
        common::engines::Podman::IMAGE,
        "python3",
        "-u",
        "-m",
        "http.server",
        "8080",
        "-b",
        "127.0.0.1",
        "-p",
        "HTTP/1.1",
        "-d",
        "/t/www",
    ]);
    podman.podman(&server);
    let mut peer = vec!["run", "-d", "--name", "peer", "--network", "container:server"];
    peer.extend_from_slice(&HOST_TOOLS);
    peer.extend_from_slice(&[common::engines::Podman::IMAGE, "sleep", "600"]);
    podman.podman(&peer);
    let curl = |args: &[&str]| {
        let mut command = vec!["curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}"];
        command.extend_from_slice(args);
        exec_in(&podman, "peer", &command)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !curl(&["http://127.0.0.1:8080/"]).0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let policy = dir.path().join("in.yaml");
    std::fs::write(
        &policy,
        "containers:\n  - name: server\n    mode: protect\n    httpIn:\n      deny:\n        - method: DELETE\n          path: /admin*\n          ports: [8080]\n        - host: \"*.evil.example\"\n",
    )
    .expect("policy");
    let checked =
        std::process::Command::new(env!("CARGO_BIN_EXE_picket")).args(["agent", "policy"]).arg(&policy).output();
    let checked = checked.expect("picket agent policy");
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    let socket = dir.path().join("agent.sock");
    let mut seen = Vec::new();
    let lines = agent_lines_during(&podman, &policy, &socket, || {
        // Connections accepted from now on are judged.
        std::thread::sleep(Duration::from_millis(500));
        seen.push(("get", curl(&["http://127.0.0.1:8080/"])));
        seen.push(("delete", curl(&["-X", "DELETE", "http://127.0.0.1:8080/admin/users"])));
        seen.push(("delete elsewhere", curl(&["-X", "DELETE", "http://127.0.0.1:8080/cart"])));
        seen.push(("host denied", curl(&["-H", "Host: c2.evil.example", "http://127.0.0.1:8080/"])));
        seen.push(("get again", curl(&["http://127.0.0.1:8080/"])));
    });
    let got = |what: &str| seen.iter().find(|(w, _)| *w == what).map(|(_, r)| r.clone()).expect("ran");
    let (ok, out, _) = got("get");
    assert!(ok && out.trim() == "200", "an allowed GET is answered: {out}");
    let (ok, out, took) = got("delete");
    assert!(!ok && !out.contains("501"), "the DELETE is refused: {out}");
    assert!(took < Duration::from_secs(3), "the client is told at once, not at its time-out: {took:?} {out}");
    let (_, out, _) = got("delete elsewhere");
    assert!(out.trim() == "501", "another path's DELETE reaches the server (which does not do DELETE): {out}");
    let (ok, out, took) = got("host denied");
    assert!(!ok && took < Duration::from_secs(3), "a request for a denied host is refused at once: {took:?} {out}");
    let (ok, out, _) = got("get again");
    assert!(ok && out.trim() == "200", "later connections are judged afresh: {out}");
    let log = podman.try_podman(&["logs", "server"]).1;
    assert!(!log.contains("/admin"), "the refused request never reached the server: {log}");
    assert!(log.contains("DELETE /cart"), "{log}");
    // The readiness check's GET, then the two allowed ones: the denied host's never arrived.
    assert_eq!(log.matches("\"GET / HTTP/1.1\"").count(), 3, "{log}");
    let alert = lines
        .iter()
        .find(|l| l["type"] == "alert" && l["rule"] == "policy-http-in" && l["event"]["path"] == "DELETE /admin/users")
        .unwrap_or_else(|| panic!("the refusal alerted: {lines:#?}"));
    assert_eq!((alert["action"].as_str(), alert["container"]["name"].as_str()), (Some("denied"), Some("server")));
    assert!(alert["policy"].as_str().is_some_and(|p| p.ends_with("httpIn: deny DELETE /admin* port 8080")), "{alert}");
    let (ok, out, _) = curl(&["-X", "DELETE", "http://127.0.0.1:8080/admin/users"]);
    assert!(out.trim() == "501", "with the agent gone the request reaches the server again: {ok} {out}");
}

//! Response rules and sinks against real receivers on loopback: an HTTP server taking the
//! webhook, Slack, Teams, Alertmanager (`/api/v2/alerts`) and Loki (`/loki/api/v1/push`) shapes,
//! and syslog over UDP, TCP (octet counting) and a unix socket. A sink that is down for a while
//! then comes back gets everything, in order; what it queued survives a restart; a notification
//! the sink refuses (4xx) does not hold the rest; minimum severities apply.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use picket::agent::alert::{Action, Alert, Trigger};
use picket::agent::attribution::{ContainerRef, Runtime};
use picket::agent::enforce::Mode;
use picket::alert::StoredAlert;
use picket::alert::outbox::{Outbox, Responder};
use picket::alert::respond::ResponseConfig;
use picket::model::Severity;
use serde_json::Value;

type Got = Arc<Mutex<Vec<(String, Value)>>>;

/// An HTTP server recording every POST (path, JSON body); it answers 400 to bodies that name
/// `reject-me`, else 200.
async fn receiver(listener: tokio::net::TcpListener) -> Got {
    let got: Got = Arc::default();
    let kept = Arc::clone(&got);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let kept = Arc::clone(&kept);
                    async move {
                        let path = request.uri().path().to_string();
                        let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let reject = String::from_utf8_lossy(&body).contains("reject-me");
                        kept.lock().expect("lock").push((path, value));
                        let status = if reject { 400 } else { 200 };
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from_static(b"ok")))
                                .expect("response"),
                        )
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    got
}

static SEQ: AtomicU64 = AtomicU64::new(1);

fn alert(rule: &str, severity: Severity, title: &str) -> StoredAlert {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    StoredAlert {
        node: "node-1".into(),
        container: Some(ContainerRef {
            runtime: Runtime::Containerd,
            id: "c".repeat(64),
            pod_uid: Some("uid".into()),
            name: Some("web".into()),
            image: Some("nginx:1.27".into()),
            pod_namespace: Some("shop".into()),
            pod_name: Some("web-1".into()),
            pod_owner: None,
        }),
        alert: Alert {
            id: format!("node-1-1-{seq}"),
            at_unix_ms: 1_796_551_200_000 + seq,
            rule: rule.into(),
            title: title.into(),
            severity,
            technique: String::new(),
            why: "why it matters".into(),
            mode: Mode::Protect,
            action: Action::Denied,
            policy: String::new(),
            event: Trigger {
                kind: "exec".into(),
                pid: 9,
                exe: "/bin/sh".into(),
                comm: "sh".into(),
                ..Trigger::default()
            },
            ancestry: Vec::new(),
            count: 1,
        },
    }
}

fn config(text: &str) -> ResponseConfig {
    ResponseConfig::from_texts(&[(PathBuf::from("response.yaml"), text.to_string())]).expect("the response file loads")
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn of_path(got: &Got, path: &str) -> Vec<Value> {
    got.lock().expect("lock").iter().filter(|(p, _)| p == path).map(|(_, v)| v.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sink_gets_its_shape_and_outages_lose_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(picket::store::Store::open(&dir.path().join("store")).expect("store"));
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", http.local_addr().expect("address"));
    let got = receiver(http).await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("tcp");
    let unix_path = dir.path().join("log.sock");
    let unix = tokio::net::UnixDatagram::bind(&unix_path).expect("unix");
    // A port nothing listens on yet: the sink that is down.
    let later_port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let text = format!(
        r#"
version: 1
sinks:
  - {{ name: hook, type: webhook, url: "{base}/hook" }}
  - {{ name: chat, type: slack, url: "{base}/slack", minSeverity: high }}
  - {{ name: teams, type: teams, url: "{base}/teams" }}
  - {{ name: am, type: alertmanager, url: "{base}/am" }}
  - {{ name: loki, type: loki, url: "{base}/loki", labels: {{ cluster: prod }} }}
  - {{ name: syslog-udp, type: syslog, address: "udp://{udp}" }}
  - {{ name: syslog-tcp, type: syslog, address: "tcp://{tcp}" }}
  - {{ name: syslog-unix, type: syslog, address: "unix://{unix}" }}
  - {{ name: later, type: webhook, url: "http://127.0.0.1:{later_port}/later" }}
rules:
  - name: everything
    match: {{ category: [alert] }}
    actions: [ {{ notify: hook }}, {{ notify: chat }}, {{ notify: teams }}, {{ notify: am }}, {{ notify: loki }},
               {{ notify: syslog-udp }}, {{ notify: syslog-tcp }}, {{ notify: syslog-unix }} ]
  - name: miners-to-later
    match: {{ rule: ["crypto-*"] }}
    actions: [ {{ notify: later }} ]
  - name: violations-too
    match: {{ category: [violation], severity: high }}
    actions: [ {{ notify: hook }} ]
"#,
        udp = udp.local_addr().expect("address"),
        tcp = tcp.local_addr().expect("address"),
        unix = unix_path.display()
    );
    let response = config(&text);
    let responder = Responder::start(Arc::clone(&store), response.clone(), None).expect("responder");
    let shell = alert("shell-from-server", Severity::High, "A shell started by a server process");
    let apt = alert("package-manager-in-container", Severity::Medium, "A package manager ran");
    let violation = alert("policy-exec", Severity::High, "An exec the policy does not allow");
    let quiet_violation = alert("policy-file", Severity::Medium, "An open the policy does not allow");
    let queued = responder.respond(&[shell.clone(), apt.clone(), violation.clone(), quiet_violation]).expect("queued");
    // shell: 8 sinks; apt: 7 (chat takes high and worse); violation: hook; the medium one: none.
    assert_eq!(queued, 8 + 7 + 1);

    let loki_streams = |got: &Got| -> Vec<Value> {
        of_path(got, "/loki/loki/api/v1/push")
            .iter()
            .flat_map(|v| v["streams"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    wait_for("the HTTP sinks", || of_path(&got, "/hook").len() == 3 && loki_streams(&got).len() == 2).await;
    let hook = of_path(&got, "/hook");
    assert_eq!(hook[0]["alert"]["rule"], "shell-from-server");
    assert_eq!(hook[0]["responseRule"], "everything");
    assert_eq!(hook[2]["category"], "violation");
    let chat = of_path(&got, "/slack");
    assert_eq!(chat.len(), 1, "the chat sink takes high and worse: {chat:?}");
    assert!(
        chat[0]["text"].as_str().is_some_and(|t| t.starts_with("HIGH shell-from-server on shop/web-1/web (node-1)")),
        "{chat:?}"
    );
    let teams = of_path(&got, "/teams");
    assert_eq!(teams[0]["@type"], "MessageCard");
    assert_eq!(teams[0]["title"], "A shell started by a server process");
    let am: Vec<Value> = of_path(&got, "/am/api/v2/alerts")
        .into_iter()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(am.len(), 2);
    assert_eq!(am[0]["labels"]["alertname"], "shell-from-server");
    assert_eq!(am[0]["labels"]["namespace"], "shop");
    assert!(am[0]["startsAt"].as_str().is_some_and(|t| t.starts_with("2026-12-06T")), "{am:?}");
    let loki = loki_streams(&got);
    let stream = &loki[0];
    assert_eq!(
        (stream["stream"]["cluster"].as_str(), stream["stream"]["rule"].as_str()),
        (Some("prod"), Some("shell-from-server"))
    );
    let entry = stream["values"][0].as_array().expect("an entry");
    assert_eq!(entry[0].as_str(), Some(format!("{}", u128::from(shell.alert.at_unix_ms) * 1_000_000).as_str()));

    // Syslog: RFC 5424 with local0 and the severity's level, each way.
    let mut buf = vec![0u8; 8192];
    let (n, _) =
        tokio::time::timeout(Duration::from_secs(30), udp.recv_from(&mut buf)).await.expect("in time").expect("udp");
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(line.starts_with("<131>1 2026-12-06T"), "{line}");
    assert!(
        line.contains(" node-1 picket - alert [picket@32473 rule=\"shell-from-server\" severity=\"high\""),
        "{line}"
    );
    let n = tokio::time::timeout(Duration::from_secs(30), unix.recv(&mut buf)).await.expect("in time").expect("unix");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("rule=\"shell-from-server\""));
    // Over TCP, connections until both messages are in (a batch goes over one connection).
    let mut framed = Vec::new();
    while !String::from_utf8_lossy(&framed).contains("package-manager-in-container") {
        use tokio::io::AsyncReadExt;
        let (mut stream, _) =
            tokio::time::timeout(Duration::from_secs(30), tcp.accept()).await.expect("in time").expect("tcp");
        loop {
            let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
                .await
                .expect("in time")
                .expect("read");
            if n == 0 {
                break;
            }
            framed.extend_from_slice(&buf[..n]);
        }
    }
    let framed = String::from_utf8_lossy(&framed).into_owned();
    let (length, rest) = framed.split_once(' ').expect("octet counting");
    let length: usize = length.parse().expect("a length");
    assert!(rest[..length].starts_with("<131>1 ") && rest[length..].split_once(' ').is_some(), "{framed}");

    // The down sink: queued, failing, visible; nothing lost while it is down.
    let miners: Vec<StoredAlert> =
        (0..20).map(|i| alert("crypto-pool-port", Severity::Critical, &format!("miner {i}"))).collect();
    responder.respond(&miners).expect("queued");
    let status = |r: &Responder| r.status().into_iter().find(|s| s.name == "later").expect("the sink");
    wait_for("the failure to show", || status(&responder).failing_since_ms.is_some()).await;
    let down = status(&responder);
    assert_eq!(down.queued, 20);
    assert!(down.last_error.as_deref().is_some_and(|e| e.contains("/later")), "{down:?}");
    // A restart while it is down: the queue is on disk.
    drop(responder);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reopened = Outbox::open(Arc::clone(&store), &response).expect("outbox");
    assert_eq!(reopened.status().into_iter().find(|s| s.name == "later").map(|s| s.queued), Some(20));
    drop(reopened);
    let later = receiver(tokio::net::TcpListener::bind(("127.0.0.1", later_port)).await.expect("the port again")).await;
    let responder = Responder::start(Arc::clone(&store), response.clone(), None).expect("responder again");
    wait_for("the sink to catch up", || of_path(&later, "/later").len() == 20).await;
    let titles: Vec<String> =
        of_path(&later, "/later").iter().map(|v| v["alert"]["title"].as_str().unwrap_or("").to_string()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("miner {i}")).collect();
    assert_eq!(titles, expected, "in order");
    wait_for("the status to clear", || status(&responder).failing_since_ms.is_none() && status(&responder).queued == 0)
        .await;

    // A notification the sink refuses does not hold the one behind it.
    responder
        .respond(&[
            alert("crypto-pool-port", Severity::Critical, "reject-me"),
            alert("crypto-pool-port", Severity::Critical, "after"),
        ])
        .expect("queued");
    wait_for("the one after", || of_path(&later, "/later").iter().any(|v| v["alert"]["title"] == "after")).await;
    wait_for("the rejection counted", || status(&responder).rejected == 1).await;
    let counts: HashMap<String, u64> = responder.status().into_iter().map(|s| (s.name, s.delivered)).collect();
    assert_eq!(counts.get("later"), Some(&21));
}

#[test]
fn the_cli_validates_tests_and_notifies() {
    let root = tempfile::tempdir().expect("dir");
    let rules = root.path().join("response");
    std::fs::create_dir_all(&rules).expect("dir");
    let picket = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .arg("--data-dir")
            .arg(root.path().join("data"))
            .args(args)
            .env("XDG_CONFIG_HOME", root.path().join("config"))
            .output()
            .expect("picket runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dir = rules.to_str().expect("utf-8");
    // Mistakes name the file and the place.
    std::fs::write(rules.join("a.yaml"), "version: 1\nrules:\n  - name: x\n    actions: [ { notify: nowhere } ]\n")
        .expect("write");
    let (ok, _, err) = picket(&["respond", "validate", "--rules", dir]);
    assert!(!ok && err.contains("a.yaml: rules[0] (x): notify: no sink is named 'nowhere'"), "{err}");
    std::fs::write(rules.join("a.yaml"), "version: 1\nsinks:\n  - { name: s, type: pager, url: x }\n").expect("write");
    let (ok, _, err) = picket(&["respond", "validate", "--rules", dir]);
    assert!(!ok && err.contains("a.yaml:3:"), "{err}");
    std::fs::write(
        rules.join("a.yaml"),
        "version: 1\nsinks:\n  - { name: s, type: syslog, address: 'udp://nohost' }\n",
    )
    .expect("write");
    let (ok, _, err) = picket(&["respond", "validate", "--rules", dir]);
    assert!(!ok && err.contains("sinks[0] (s): address 'udp://nohost': needs host:port"), "{err}");

    // A receiver, then notify through the CLI.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (got, base) = runtime.block_on(async {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", http.local_addr().expect("address"));
        (receiver(http).await, base)
    });
    let text = format!(
        "version: 1\nsinks:\n  - {{ name: hook, type: webhook, url: '{base}/hook' }}\nrules:\n  - name: all\n    match: {{ severity: high }}\n    actions: [ {{ notify: hook }} ]\n"
    );
    std::fs::write(rules.join("a.yaml"), text).expect("write");
    let (ok, out, err) = picket(&["respond", "validate", "--rules", dir]);
    assert!(ok && out.contains("1 sinks, 1 rules: valid"), "{out}{err}");
    let (ok, out, err) = picket(&["respond", "notify", "hook", "--rules", dir]);
    assert!(ok && out.contains("took the test notification"), "{out}{err}");
    assert_eq!(of_path(&got, "/hook").first().map(|v| v["alert"]["rule"].clone()), Some("picket-test".into()));
    let (ok, _, err) = picket(&["respond", "notify", "nope", "--rules", dir]);
    assert!(!ok && err.contains("no sink is named 'nope' (sinks: hook)"), "{err}");

    // Test on kept alerts: which rule and sink each would go to.
    {
        let store = picket::store::Store::open(&root.path().join("data/store")).expect("store");
        let log = picket::alert::AlertLog::open(&store).expect("log");
        let events: Vec<picket::agent::wire::WireEvent> =
            [alert("shell-from-server", Severity::High, "s"), alert("drift-exec", Severity::Medium, "d")]
                .into_iter()
                .map(|a| picket::agent::wire::WireEvent::alert(&a.node, a.alert, a.container))
                .collect();
        log.record(&events, picket::alert::now_unix_ms()).expect("kept");
        store.flush().expect("flush");
    }
    let (ok, out, err) = picket(&["respond", "test", "--rules", dir]);
    assert!(ok, "{err}");
    let shell = out.lines().find(|l| l.contains("shell-from-server")).expect("a line");
    assert!(shell.ends_with("all → hook"), "{out}");
    let drift = out.lines().find(|l| l.contains("drift-exec")).expect("a line");
    assert!(drift.ends_with(" -"), "{out}");
}

/// Kill and pause on this machine, against a real process and a real Docker container; an
/// alert from another node is logged as not done; the pause is undone, the kill cannot be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_pause_act_locally_are_logged_and_undone() {
    let Some(dockerd) = common::engines::Dockerd::start() else {
        eprintln!("skipped: needs root and Docker Engine (./install.sh --dev)");
        return;
    };
    dockerd.docker(&["run", "-d", "--name", "victim", common::engines::Dockerd::IMAGE, "sleep", "600"]);
    let victim = dockerd.docker(&["inspect", "-f", "{{.Id}}", "victim"]).trim().to_string();
    let mut miner = std::process::Command::new("sleep").arg("600").spawn().expect("a process to kill");
    let miner_exe = std::fs::read_link(format!("/proc/{}/exe", miner.id())).expect("its program");
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(picket::store::Store::open(&dir.path().join("store")).expect("store"));
    let response = config(
        "version: 1\nrules:\n  - name: kill-miners\n    match: { rule: ['crypto-*'] }\n    actions: [ kill ]\n  - name: freeze-shells\n    match: { rule: ['shell-*'] }\n    actions: [ pause, quarantine ]\n",
    );
    let context = picket::alert::actions::ActionContext {
        node: "node-t".into(),
        engine_sockets: vec![dockerd.socket.clone()],
        captures_dir: dir.path().join("captures"),
        // No agent listens here: the quarantine is logged as not done, saying why.
        agent_socket: dir.path().join("no-agent.sock"),
    };
    let responder = Responder::start(Arc::clone(&store), response, Some(context)).expect("responder");
    let mut mine = alert("crypto-pool-port", Severity::Critical, "miner");
    mine.node = "node-t".into();
    mine.container = None;
    mine.alert.event.pid = miner.id();
    mine.alert.event.exe = miner_exe.display().to_string();
    let mut shell = alert("shell-from-server", Severity::High, "shell");
    shell.node = "node-t".into();
    if let Some(c) = shell.container.as_mut() {
        c.id = victim.clone();
    }
    let elsewhere = alert("crypto-pool-port", Severity::Critical, "elsewhere");
    responder.respond(&[mine.clone(), shell.clone(), elsewhere]).expect("responded");

    let log = picket::alert::actions::ActionLog::open(&store).expect("log");
    wait_for("four actions logged", || log.newest(10).map(|a| a.len()).unwrap_or(0) == 4).await;
    let status = miner.wait().expect("the process ended");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "killed");
    assert_eq!(dockerd.docker(&["inspect", "-f", "{{.State.Paused}}", "victim"]).trim(), "true");
    let actions = log.newest(10).expect("actions");
    let by = |what: &str| actions.iter().find(|a| a.alert_rule.contains(what) && !a.alert.is_empty()).cloned();
    let kill = actions.iter().find(|a| a.action == "kill" && a.done).expect("the kill");
    assert_eq!(kill.alert, mine.alert.id);
    assert!(kill.target.starts_with(&format!("pid {}", mine.alert.event.pid)), "{kill:?}");
    let not_here = actions.iter().find(|a| !a.done && a.action == "kill").expect("the other node's");
    let quarantine = actions.iter().find(|a| a.action == "quarantine").expect("the quarantine asked for");
    assert_eq!((quarantine.done, quarantine.alert.as_str()), (false, shell.alert.id.as_str()), "{quarantine:?}");
    assert!(quarantine.outcome.contains("no-agent.sock: cannot connect"), "{quarantine:?}");
    assert!(not_here.outcome.contains("from node node-1, and this picket acts on node node-t only"), "{not_here:?}");
    let pause = by("shell").expect("the pause");
    assert!(pause.done && pause.undo.is_some(), "{pause:?}");

    // Undo: the container runs again; twice is refused; a kill cannot be undone.
    let said = picket::alert::actions::undo(&log, &pause.id).await.expect("undone");
    assert!(said.contains("thawed"), "{said}");
    assert_eq!(dockerd.docker(&["inspect", "-f", "{{.State.Paused}}", "victim"]).trim(), "false");
    assert!(picket::alert::actions::undo(&log, &pause.id).await.is_err_and(|e| e.contains("undone already")));
    assert!(picket::alert::actions::undo(&log, &kill.id).await.is_err_and(|e| e.contains("cannot be undone")));
    dockerd.docker(&["rm", "-f", "victim"]);
}

/// The admission webhook's denials are `admission` events for response rules: a privileged pod
/// denied by `picket admission serve --response DIR` reaches a webhook sink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_denials_reach_the_sinks() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", http.local_addr().expect("address"));
    let got = receiver(http).await;
    std::fs::create_dir_all(d.join("response")).expect("dir");
    std::fs::write(
        d.join("response/hook.yaml"),
        format!(
            "version: 1\nsinks:\n  - {{ name: hook, type: webhook, url: '{base}/hook' }}\nrules:\n  - name: denials\n    match: {{ category: [admission], namespace: [shop] }}\n    actions: [ {{ notify: hook }} ]\n"
        ),
    )
    .expect("write");
    std::fs::write(
        d.join("rules.yaml"),
        "apiVersion: picket.dev/v1\nkind: PicketAdmissionRule\nmetadata: { name: no-privileged }\nspec: { type: deny, criteria: [ { name: privileged, op: '=' } ] }\n",
    )
    .expect("write");
    let certs =
        picket::admission::install::Certificates::generate("picket-system", &["127.0.0.1".into()]).expect("certs");
    certs.write(&d.join("certs")).expect("write certs");
    let port_file = d.join("port");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["admission", "serve", "--listen", "127.0.0.1:0", "--rules"])
        .arg(d.join("rules.yaml"))
        .arg("--response")
        .arg(d.join("response"))
        .arg("--cert")
        .arg(d.join("certs/tls.crt"))
        .arg("--key")
        .arg(d.join("certs/tls.key"))
        .arg("--port-file")
        .arg(&port_file)
        .env("PICKET_DATA_DIR", d.join("data"))
        .env("KUBECONFIG", d.join("none"))
        .stderr(std::fs::File::create(d.join("serve.log")).expect("log"))
        .spawn()
        .expect("picket admission serve");
    let mut port = None;
    wait_for("the webhook to listen", || {
        port = std::fs::read_to_string(&port_file).ok().and_then(|p| p.trim().parse::<u16>().ok());
        port.is_some()
    })
    .await;
    let ca = std::fs::read(d.join("certs/ca.crt")).expect("the CA");
    let tls = picket::registry::tls::config_with_ca(&ca, "the test CA").expect("TLS");
    let client = reqwest::Client::builder().tls_backend_preconfigured(tls).build().expect("client");
    let review = serde_json::json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "0a0a0a0a-0000-0000-0000-000000000001",
        "kind": { "group": "", "version": "v1", "kind": "Pod" },
        "resource": { "group": "", "version": "v1", "resource": "pods" },
        "name": "debug", "namespace": "shop", "operation": "CREATE",
        "userInfo": { "username": "mallory" },
        "object": { "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "debug", "namespace": "shop" },
                    "spec": { "containers": [{ "name": "app", "image": "busybox:1.36", "securityContext": { "privileged": true } }] } } } });
    let answer: Value = client
        .post(format!("https://127.0.0.1:{}/validate", port.expect("a port")))
        .json(&review)
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    wait_for("the denial at the sink", || !of_path(&got, "/hook").is_empty()).await;
    let _ = child.kill();
    let _ = child.wait();
    let sent = &of_path(&got, "/hook")[0];
    assert_eq!(sent["category"], "admission");
    assert_eq!(sent["alert"]["rule"], "admission/no-privileged");
    assert_eq!(sent["alert"]["event"]["path"], "Pod shop/debug");
    assert!(sent["alert"]["why"].as_str().is_some_and(|w| w.contains("mallory")), "{sent}");
}

/// A re-match's new vulnerabilities in running images are `vulnerability` events: one per
/// advisory and running container or pod, rule `cve/ID` with the advisory's severity, matched by
/// category and severity, delivered to a real receiver (images no container runs say nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_vulnerabilities_in_running_images_reach_the_sinks() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let port = listener.local_addr().expect("address").port();
    let got = receiver(listener).await;
    let mut report = picket::scan::rematch::RematchReport::default();
    report.new_by_id.insert("GHSA-x84v-xcm2-53pg".into(), vec!["registry.local/shop/api:2".into()]);
    report.new_by_id.insert("CVE-2024-0001".into(), vec!["registry.local/tools/unused:1".into()]);
    report.new_by_id.insert("CVE-2024-0002".into(), vec!["registry.local/shop/api:2".into()]);
    report.running_by_id.insert("GHSA-x84v-xcm2-53pg".into(), vec!["api".into()]);
    report.workloads_by_id.insert("GHSA-x84v-xcm2-53pg".into(), vec!["shop/api-5d8c4".into()]);
    report.running_by_id.insert("CVE-2024-0002".into(), vec!["api".into()]);
    report.severity_by_id.insert("GHSA-x84v-xcm2-53pg".into(), Severity::Critical);
    report.severity_by_id.insert("CVE-2024-0002".into(), Severity::Low);
    report.databases = vec!["osv-pypi".into()];
    let events = picket::alert::vulnerability_events(&report, "node-t", picket::alert::now_unix_ms());
    assert_eq!(events.len(), 3, "two places run the GHSA, one the low CVE, none the unused image: {events:#?}");
    let kinds: Vec<&str> = events.iter().map(|e| picket::alert::respond::Category::of(e).as_str()).collect();
    assert!(kinds.iter().all(|k| *k == "vulnerability"), "{kinds:?}");

    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(picket::store::Store::open(&dir.path().join("store")).expect("store"));
    let response = config(&format!(
        "version: 1\nsinks:\n  - {{ name: hook, type: webhook, url: 'http://127.0.0.1:{port}/cve' }}\nrules:\n  - name: new-cves\n    match: {{ category: [vulnerability], severity: high }}\n    actions: [ {{ notify: hook }} ]\n"
    ));
    let (queued, waiting) = picket::alert::outbox::respond_once(store, response, &events, Duration::from_secs(10))
        .await
        .expect("responded");
    assert_eq!((queued, waiting), (2, 0), "the two critical ones, delivered");
    wait_for("two notifications", || of_path(&got, "/cve").len() == 2).await;
    let bodies = of_path(&got, "/cve");
    let text = serde_json::to_string(&bodies).expect("json");
    assert!(text.contains("cve/GHSA-x84v-xcm2-53pg") && text.contains("shop/api-5d8c4"), "{text}");
    assert!(!text.contains("CVE-2024-0002"), "below the severity floor: {text}");
}

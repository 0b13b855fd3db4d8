//! Behavioural learning and policy as code on real Podman containers and this machine's kernel:
//! a small web server and a client are learned in discover mode; the learned policy survives an
//! agent restart, is applied through the agent's socket in protect mode, lets the same workload
//! run with no violation, and refuses a new program, a new file write and a new outbound
//! connection; `policy test` on a recording gives the verdicts the live agent gave. Needs root,
//! BTF, podman and runc (skipped, saying so, where one is missing).

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WEB: &str = "localhost/picket-web:1";
const CLIENT: &str = "localhost/picket-client:1";

fn picket() -> Command {
    Command::new(env!("CARGO_BIN_EXE_picket"))
}

/// A running `picket agent run` (socket and state in the test's directory) and its stdout lines.
struct Agent {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    fn start(podman: &common::engines::Podman, dir: &Path, extra: &[&str]) -> Self {
        Self::start_with(podman, dir, extra, &[])
    }

    fn start_with(podman: &common::engines::Podman, dir: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Self {
        let socket = dir.join("agent.sock");
        let mut child = picket()
            .args(["agent", "run", "--for", "300", "--containers-only", "--no-rules", "--state-dir"])
            .arg(dir.join("state"))
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .env("CONTAINER_HOST", format!("unix://{}", podman.socket.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("picket agent runs");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reading = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                reading.lock().expect("lines").push(line);
            }
        });
        let agent = Self { child, lines };
        agent.wait_for(|l| l.contains(r#""type":"stats""#), "a first state line");
        agent
    }

    fn wait_for(&self, found: impl Fn(&str) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.lines.lock().expect("lines").iter().any(|l| found(l)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no {what} from the agent: {:?}", self.lines.lock().expect("lines"));
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    fn policy_alerts(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "alert" && v["rule"].as_str().is_some_and(|r| r.starts_with("policy-")))
            .collect()
    }

    /// SIGTERM, and waits: the agent saves its baselines as it stops.
    fn stop(mut self) -> Vec<String> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        self.lines()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The store picket runs with here, not the user's (set once by the test).
static DATA_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

fn run_picket(args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = picket();
    if let Some(data) = DATA_DIR.get() {
        command.env("PICKET_DATA_DIR", data);
    }
    let out = command.args(args).output().expect("picket runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The web server writes its page and copies a tool it never runs; the client fetches the page
/// every 300 ms from the server's network namespace.
fn start_workload(podman: &common::engines::Podman) {
    podman.podman(&["tag", common::engines::Podman::IMAGE, WEB]);
    podman.podman(&["tag", common::engines::Podman::IMAGE, CLIENT]);
    podman.podman(&[
        "run",
        "-d",
        "--name",
        "web",
        WEB,
        "sh",
        "-c",
        "mkdir -p /www /opt && echo hello > /www/index.html && cp /bin/busybox /opt/tool && exec httpd -f -p 8080 -h /www",
    ]);
    podman.podman(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "container:web",
        CLIENT,
        "sh",
        "-c",
        "mkdir -p /tmp; while true; do wget -q -O /tmp/page http://127.0.0.1:8080/ && echo fetched; sleep 0.3; done",
    ]);
}

/// Root, BTF, podman and runc, or the test ends saying which is missing.
fn prerequisites() -> Option<common::engines::Podman> {
    if !(common::is_root() && Path::new("/sys/kernel/btf/vmlinux").exists()) {
        eprintln!("skipped: the agent needs root and /sys/kernel/btf/vmlinux");
        return None;
    }
    let podman = common::engines::Podman::start();
    if podman.is_none() {
        eprintln!("skipped: needs podman and runc (./install.sh --dev)");
    }
    podman
}

/// What a shell says when the kernel refused with EPERM (or EACCES).
fn refused(said: &str) -> bool {
    let said = said.to_lowercase();
    said.contains("operation not permitted") || said.contains("permission denied")
}

fn exec_in(podman: &common::engines::Podman, name: &str, script: &str) -> (bool, String) {
    podman.try_podman(&["exec", name, "sh", "-c", script])
}

#[test]
fn a_learned_policy_runs_the_workload_clean_and_refuses_what_is_new() {
    let Some(podman) = prerequisites() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let socket_arg = dir.path().join("agent.sock").display().to_string();
    let _ = DATA_DIR.set(dir.path().join("data"));

    // Discover: nothing is enforced, everything the two groups do is learned.
    let learning = Agent::start(&podman, dir.path(), &[]);
    start_workload(&podman);
    learning.wait_for(|l| l.contains(r#""type":"network""#) && l.contains(r#""kind":"accept""#), "accept");
    std::thread::sleep(Duration::from_secs(3));
    let (code, shown, err) = run_picket(&["policy", "show", "--agent", &socket_arg]);
    assert_eq!(code, Some(0), "{err}");
    assert!(shown.contains(&format!("local/{WEB}")) && shown.contains(&format!("local/{CLIENT}")), "{shown}");
    assert!(shown.contains("accepts on port 8080 tcp"), "{shown}");
    assert!(shown.contains("connects to 127.0.0.1/32 port 8080 tcp"), "{shown}");
    let recorded = learning.stop();
    let recording = dir.path().join("recorded.jsonl");
    std::fs::write(&recording, recorded.join("\n")).expect("write");
    if let Ok(keep) = std::env::var("PICKET_KEEP_RECORDING") {
        std::fs::write(keep, recorded.join("\n")).expect("write");
    }

    // The baselines survive the agent: a new one answers with them.
    let agent = Agent::start(&podman, dir.path(), &[]);
    let (code, learned, err) = run_picket(&["policy", "learn", "--agent", &socket_arg, "--mode", "protect"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(learned.contains("kind: PicketPolicy") && learned.contains(&format!("image: {WEB}")), "{learned}");
    assert!(learned.contains("/www/index.html") && learned.contains("/opt/tool"), "writes learned: {learned}");
    assert!(learned.contains("cidr: 127.0.0.1/32"), "{learned}");
    let policy = dir.path().join("learned.yaml");
    std::fs::write(&policy, &learned).expect("write");
    let (code, _, err) = run_picket(&["policy", "validate", &policy.display().to_string()]);
    assert_eq!(code, Some(0), "the learned policy validates: {err}");
    // What the groups did is what the learned policy allows.
    let (code, diff, err) = run_picket(&["policy", "diff", &policy.display().to_string(), "--agent", &socket_arg]);
    assert_eq!(code, Some(0), "{diff}{err}");
    assert!(!diff.contains("(seen, not allowed)"), "{diff}");

    // Protect, through the socket.
    let (code, _, err) = run_picket(&["policy", "apply", &policy.display().to_string(), "--agent", &socket_arg]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("is in force") && err.contains("protect"), "{err}");
    agent.wait_for(|l| l.contains(r#""protect":"#) && !l.contains(r#""protect":0"#), "protect in force");
    // A malformed policy is refused and the one in force stays.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: picket.dev/v1\nkind: PicketPolicy\nmetadata: {name: x}\nspec:\n  mode: sometimes\n",
    )
    .expect("write");
    let (code, _, err) = run_picket(&["policy", "apply", &broken.display().to_string(), "--agent", &socket_arg]);
    assert_ne!(code, Some(0));
    assert!(err.contains("broken.yaml") && err.contains("line 5"), "{err}");

    // The workload runs as before, with no violation.
    let before = agent.policy_alerts().len();
    let fetched = |p: &common::engines::Podman| p.podman(&["logs", "client"]).matches("fetched").count();
    let count = fetched(&podman);
    std::thread::sleep(Duration::from_secs(3));
    assert!(fetched(&podman) > count, "the client still fetches the page under protect");
    assert_eq!(agent.policy_alerts().len(), before, "no violation: {:#?}", agent.policy_alerts());

    // What is new is refused, with EPERM, and alerted.
    let (ran, said) = exec_in(&podman, "web", "/opt/tool echo ran");
    assert!(!ran && !said.contains("ran\n") && refused(&said), "{said}");
    let (wrote, said) = exec_in(&podman, "web", "echo x > /www/new.html && echo wrote");
    assert!(!wrote && !said.contains("wrote") && refused(&said), "{said}");
    let (read, said) = exec_in(&podman, "web", "cat /www/index.html");
    assert!(read && said.contains("hello"), "reads stay allowed: {said}");
    let (connected, said) = exec_in(&podman, "client", "nc 127.0.0.1 9999 </dev/null && echo connected");
    assert!(!connected && !said.contains("connected"), "{said}");
    assert!(refused(&said), "{said}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let wanted = ["policy-exec", "policy-file", "policy-connect"];
    while Instant::now() < deadline
        && !wanted.iter().all(|w| agent.policy_alerts().iter().any(|a| a["rule"] == *w && a["action"] == "denied"))
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let alerts = agent.policy_alerts();
    for rule in wanted {
        assert!(alerts.iter().any(|a| a["rule"] == rule && a["action"] == "denied"), "{rule}: {alerts:#?}");
    }
    let file_alert = alerts.iter().find(|a| a["rule"] == "policy-file").expect("file alert");
    assert_eq!(
        (file_alert["event"]["path"].as_str(), file_alert["event"]["write"].as_bool()),
        (Some("/www/new.html"), Some(true))
    );

    // The policy in force is the file applied; it stays after a restart.
    let (code, diff, err) =
        run_picket(&["policy", "diff", &policy.display().to_string(), "--in-force", "--agent", &socket_arg]);
    assert_eq!(code, Some(0), "{diff}{err}");
    // Every apply is kept: a monitor version, then version 1 again.
    let monitor = dir.path().join("monitor.yaml");
    std::fs::write(&monitor, learned.replace("mode: protect", "mode: monitor")).expect("write");
    let (code, _, err) = run_picket(&["policy", "apply", &monitor.display().to_string(), "--agent", &socket_arg]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("kept as version 2"), "{err}");
    let target = format!("agent {socket_arg}");
    let (code, listed, err) = run_picket(&["policy", "history", &target]);
    assert_eq!(code, Some(0), "{err}");
    assert!(listed.contains("learned.yaml") && listed.contains("monitor.yaml"), "{listed}");
    let (_, shown, _) = run_picket(&["policy", "history", &target, "--show", "1"]);
    assert_eq!(shown.trim_end(), learned.trim_end(), "version 1 is the file applied");
    let (code, _, err) = run_picket(&["policy", "restore", &target, "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("restored from version 1") && err.contains("protect") && err.contains("version 3"), "{err}");
    drop(agent);
    let again = Agent::start(&podman, dir.path(), &[]);
    again
        .wait_for(|l| l.contains(r#""protect":"#) && !l.contains(r#""protect":0"#), "the applied policy back in force");
    let (ran, said) = exec_in(&podman, "web", "/opt/tool echo ran");
    assert!(!ran && !said.contains("ran\n"), "{said}");
    drop(again);

    // The same recording, offline: the learned policy in monitor mode flags what the discover
    // run did that it does not allow (nothing), and a narrower policy flags the client's fetch.
    let (code, out, err) =
        run_picket(&["policy", "test", &policy.display().to_string(), "--events", &recording.display().to_string()]);
    assert_eq!(code, Some(0), "the learned policy allows its own recording: {out}{err}");
    let narrow = dir.path().join("narrow.yaml");
    std::fs::write(
        &narrow,
        format!(
            "containers:\n  - image: {CLIENT}\n    mode: protect\n    connect:\n      allow: [{{ to: 10.0.0.0/8 }}]\n"
        ),
    )
    .expect("write");
    let (code, out, _) =
        run_picket(&["policy", "test", &narrow.display().to_string(), "--events", &recording.display().to_string()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("DENIED policy-connect 127.0.0.1:8080 in client"), "{out}");
}

/// The cluster's policies, enforced by an agent watching them (as the DaemonSet's agents do,
/// here through a kubeconfig to the real v1.20 API server): a PicketClusterPolicy created on the
/// server (a namespaced PicketPolicy picks pods of its namespace, and a local Podman container is
/// in none) refuses a program in a local Podman container within moments, an object the agent cannot hold
/// is left out by name while the other stays in force, and deleting the policy lets it run; what
/// the agent learned meanwhile is published to the cluster and read back by `policy show --cluster`.
#[test]
fn the_agent_enforces_the_clusters_policies_as_they_change() {
    let Some(podman) = prerequisites() else { return };
    let Some(server) = common::kube_real::RealApiServer::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = server.kubeconfig.clone();
    let with_cluster = |args: &[&str]| {
        let out = picket().args(args).env("KUBECONFIG", &kubeconfig).output().expect("picket runs");
        assert!(out.status.success(), "picket {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    with_cluster(&["policy", "crd", "--apply"]);
    let namespace = server.kubectl(&["create", "namespace", "picket-system"]);
    assert!(namespace.status.success(), "{}", String::from_utf8_lossy(&namespace.stderr));
    let ready = server.kubectl(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=60s",
        "crd/picketpolicies.picket.dev",
        "crd/picketclusterpolicies.picket.dev",
    ]);
    assert!(ready.status.success(), "{}", String::from_utf8_lossy(&ready.stderr));
    podman.podman(&["tag", common::engines::Podman::IMAGE, WEB]);
    podman.podman(&[
        "run",
        "-d",
        "--name",
        "guarded",
        WEB,
        "sh",
        "-c",
        "mkdir -p /opt && cp /bin/busybox /opt/echo && sleep 600",
    ]);
    std::thread::sleep(Duration::from_millis(500));

    let agent =
        Agent::start_with(&podman, dir.path(), &["--policies-from-cluster"], &[("KUBECONFIG", kubeconfig.as_path())]);
    let (ran, said) = exec_in(&podman, "guarded", "/opt/echo ran");
    assert!(ran && said.contains("ran"), "nothing in force yet: {said}");
    let policies = dir.path().join("cluster.yaml");
    std::fs::write(
        &policies,
        format!(
            "apiVersion: picket.dev/v1
kind: PicketClusterPolicy
metadata: {{ name: guarded }}
spec:
  selector: {{ image: '{WEB}' }}
  mode: protect
  process:
    - matchPaths: [/bin/busybox]
---
apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: {{ name: by-namespace, namespace: default }}
spec:
  selector: {{ matchLabels: {{ app: other }} }}
  mode: monitor
  egress:
    - peers: [{{ namespace: payments }}]
"
        ),
    )
    .expect("write");
    with_cluster(&["policy", "apply", &policies.display().to_string(), "--cluster"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut said = String::new();
    while Instant::now() < deadline {
        let (ran, out) = exec_in(&podman, "guarded", "/opt/echo ran");
        said = out;
        if !ran {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(refused(&said) && !said.contains("ran\n"), "the cluster's policy is in force: {said}");
    let (ran, said) = exec_in(&podman, "guarded", "echo allowed");
    assert!(ran && said.contains("allowed"), "{said}");
    agent.wait_for(
        |l| l.contains("left out: ") && l.contains("by-namespace"),
        "the unholdable policy named in the state line",
    );

    let deleted = server.kubectl(&["delete", "picketclusterpolicies.picket.dev", "guarded"]);
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ran = false;
    while Instant::now() < deadline && !ran {
        std::thread::sleep(Duration::from_millis(300));
        ran = exec_in(&podman, "guarded", "/opt/echo ran").0;
    }
    assert!(ran, "deleting the policy lets the program run");

    // What the node learned is in the cluster too: every node's baselines, merged.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut shown = String::new();
    while Instant::now() < deadline && !shown.contains(&format!("local/{WEB}")) {
        std::thread::sleep(Duration::from_millis(500));
        let out = picket().args(["policy", "show", "--cluster"]).env("KUBECONFIG", &kubeconfig).output().expect("runs");
        shown = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    assert!(shown.contains(&format!("local/{WEB}")) && shown.contains("/bin/busybox"), "{shown}");
    let maps =
        server.kubectl(&["get", "configmaps", "-n", "picket-system", "-l", "picket.dev/baselines=true", "-o", "name"]);
    assert!(String::from_utf8_lossy(&maps.stdout).contains("configmap/picket-baselines-"), "{maps:?}");
}

/// The agent promotes a group itself: a container nothing polices goes to monitor once it has
/// learned nothing new for the quiet period (its learned policy), then to protect after a clean
/// period, each change logged in the state directory; a program it never ran is then refused.
#[test]
fn quiet_groups_are_promoted_to_monitor_then_protect() {
    let Some(podman) = prerequisites() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = Agent::start(&podman, dir.path(), &["--promote-after", "3s", "--protect-after", "3s"]);
    podman.podman(&["tag", common::engines::Podman::IMAGE, CLIENT]);
    podman.podman(&[
        "run",
        "-d",
        "--name",
        "steady",
        CLIENT,
        "sh",
        "-c",
        "mkdir -p /opt && cp /bin/busybox /opt/echo; while true; do date > /dev/null; sleep 0.3; done",
    ]);
    let log = dir.path().join("state/promotions.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    let promoted = |to: &str| {
        std::fs::read_to_string(&log).unwrap_or_default().lines().any(|l| l.contains(CLIENT) && l.contains(to))
    };
    while Instant::now() < deadline && !promoted("\"to\":\"protect\"") {
        std::thread::sleep(Duration::from_millis(300));
    }
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(promoted("\"to\":\"monitor\"") && promoted("\"to\":\"protect\""), "{logged}");
    assert!(logged.contains("nothing new learned for 3s") && logged.contains("no violation for 3s"), "{logged}");
    agent.wait_for(|l| l.contains(r#""protect":"#) && !l.contains(r#""protect":0"#), "protect in force");
    let (ran, said) = exec_in(&podman, "steady", "/opt/echo ran");
    assert!(!ran && refused(&said), "a program the group never ran is refused: {said}");
    let policy = std::fs::read_to_string(dir.path().join("state/promoted-policy.yaml")).expect("kept readable");
    assert!(policy.contains("mode: protect") && policy.contains(CLIENT), "{policy}");
}

/// `picket policy mode` and `accept`, what the Behaviour pane's keys call: a group set to
/// protect by hand has its learned policy in force; what it then refuses is listed by `policy
/// modes` as a violation; accepted, it runs; discover lets everything run again. Each change is
/// logged with who made it.
#[test]
fn an_operator_sets_a_groups_mode_and_accepts_a_violation() {
    let Some(podman) = prerequisites() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("agent.sock");
    let socket_arg = socket.display().to_string();
    let agent = Agent::start(&podman, dir.path(), &[]);
    podman.podman(&["tag", common::engines::Podman::IMAGE, CLIENT]);
    podman.podman(&[
        "run",
        "-d",
        "--name",
        "handset",
        CLIENT,
        "sh",
        "-c",
        "mkdir -p /opt && cp /bin/busybox /opt/echo; while true; do date > /dev/null; sleep 0.3; done",
    ]);
    let group = format!("local/{CLIENT}");
    let (code, _, said) = run_picket(&["policy", "mode", &group, "protect", "--agent", &socket_arg]);
    assert_ne!(code, Some(0), "a group not learned yet cannot be set");
    assert!(said.contains("nothing learned of it yet"), "{said}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut set = None;
    while Instant::now() < deadline && set.is_none() {
        std::thread::sleep(Duration::from_millis(500));
        let (code, _, said) = run_picket(&["policy", "mode", &group, "protect", "--agent", &socket_arg]);
        set = (code == Some(0)).then_some(said);
    }
    let said = set.expect("the group is learned and set to protect");
    assert!(said.contains(&format!("discover → protect: {group}")), "{said}");
    agent.wait_for(|l| l.contains(r#""protect":"#) && !l.contains(r#""protect":0"#), "protect in force");
    let (ran, said) = exec_in(&podman, "handset", "/opt/echo ran");
    assert!(!ran && refused(&said), "a program the group never ran is refused: {said}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut listed = String::new();
    while Instant::now() < deadline && !listed.contains("exec:/opt/echo") {
        std::thread::sleep(Duration::from_millis(200));
        listed = run_picket(&["policy", "modes", "--agent", &socket_arg]).1;
    }
    assert!(listed.contains(&format!("{group}: protect since")), "{listed}");
    assert!(listed.contains("exec:/opt/echo (denied, 1×"), "{listed}");

    let (code, _, said) = run_picket(&["policy", "accept", &group, "exec:/opt/nope", "--agent", &socket_arg]);
    assert_ne!(code, Some(0));
    assert!(said.contains("no violation exec:/opt/nope") && said.contains("exec:/opt/echo"), "{said}");
    let (code, _, said) = run_picket(&["policy", "accept", &group, "exec:/opt/echo", "--agent", &socket_arg]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("accepted exec:/opt/echo"), "{said}");
    let (ran, said) = exec_in(&podman, "handset", "/opt/echo ran");
    assert!(ran && said.contains("ran"), "accepted, the program runs: {said}");
    let (ran, said) = exec_in(&podman, "handset", "cp /bin/busybox /opt/other && /opt/other ran");
    assert!(!ran && refused(&said), "only what was accepted: {said}");

    let (code, _, said) = run_picket(&["policy", "mode", &group, "discover", "--agent", &socket_arg]);
    assert_eq!(code, Some(0), "{said}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ran = false;
    while Instant::now() < deadline && !ran {
        std::thread::sleep(Duration::from_millis(200));
        ran = exec_in(&podman, "handset", "/opt/other ran").0;
    }
    assert!(ran, "discover lets everything run again");
    let (_, listed, _) = run_picket(&["policy", "modes", "--agent", &socket_arg]);
    assert!(listed.contains("every group is in discover mode"), "{listed}");
    let log = std::fs::read_to_string(dir.path().join("state/promotions.jsonl")).expect("log");
    assert!(log.lines().any(|l| l.contains("\"to\":\"protect\"") && l.contains("\"who\":")), "{log}");
    assert!(log.lines().any(|l| l.contains("accepted exec:/opt/echo")), "{log}");
    assert!(log.lines().any(|l| l.contains("\"to\":\"discover\"")), "{log}");
    drop(agent);
}

/// Syscall sensing and the seccomp export: the agent learns the calls a container makes (in the
/// kernel, per cgroup); the profile exported from the learned policy lets the same workload run
/// under Podman with that profile, and refuses a call it never made (mkdir) with EPERM.
#[test]
fn a_learned_seccomp_profile_runs_the_workload_and_refuses_a_new_call() {
    let Some(podman) = prerequisites() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("agent.sock").display().to_string();
    let agent = Agent::start(&podman, dir.path(), &[]);
    let image = "localhost/picket-seccomp:1";
    podman.podman(&["tag", common::engines::Podman::IMAGE, image]);
    let workload = "date > /dev/null; sleep 0.2; echo done > /dev/null";
    podman.podman(&["run", "-d", "--name", "calls", image, "sh", "-c", &format!("while true; do {workload}; done")]);
    let group = format!("local/{image}");
    // A wait, not a speed goal: beside the other agent tests on 2 cores, 30 s was once too short.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut calls: Vec<String> = Vec::new();
    while Instant::now() < deadline && !calls.iter().any(|c| c == "nanosleep" || c == "clock_nanosleep") {
        std::thread::sleep(Duration::from_millis(500));
        let (_, shown, _) = run_picket(&["policy", "show", "--agent", &socket, "--json"]);
        let baselines: serde_json::Value = serde_json::from_str(&shown).unwrap_or_default();
        calls = baselines["groups"][&group]["syscalls"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c.as_str().map(String::from)).collect())
            .unwrap_or_default();
    }
    assert!(calls.iter().any(|c| c == "execve"), "the group's calls are learned: {calls:?}");
    assert!(!calls.iter().any(|c| c == "mkdir" || c == "mkdirat"), "only what it called: {calls:?}");
    // Let the loop run through every call it makes, then take the profile.
    std::thread::sleep(Duration::from_secs(3));

    let (code, learned, said) = run_picket(&["policy", "learn", "--agent", &socket, "--group", &group]);
    assert_eq!(code, Some(0), "{said}");
    let policy = dir.path().join("learned.yaml");
    std::fs::write(&policy, &learned).expect("write");
    let (code, _, said) = run_picket(&["policy", "export", &policy.display().to_string(), "--as", "seccomp"]);
    assert_eq!(code, Some(2), "no source but the default agent socket, which is not this test's");
    assert!(said.contains("cannot connect") || said.contains("no system calls"), "{said}");
    let profiles = dir.path().join("profiles");
    let (code, _, said) = run_picket(&[
        "policy",
        "export",
        &policy.display().to_string(),
        "--as",
        "seccomp",
        "--agent",
        &socket,
        "--out",
        &profiles.display().to_string(),
    ]);
    assert_eq!(code, Some(0), "{said}");
    let written: Vec<_> = std::fs::read_dir(&profiles).expect("profiles").filter_map(Result::ok).collect();
    assert_eq!(written.len(), 1, "one profile for the one policy");
    let profile_path = written[0].path();
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile_path).expect("read")).expect("JSON");
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");

    let seccomp = format!("seccomp={}", profile_path.display());
    let (ran, out) = podman.try_podman(&[
        "run",
        "--rm",
        "--security-opt",
        &seccomp,
        image,
        "sh",
        "-c",
        &format!("{workload}; {workload}; echo ran under the profile"),
    ]);
    assert!(ran && out.contains("ran under the profile"), "the workload runs under its learned profile: {out}");
    let (ran, out) =
        podman.try_podman(&["run", "--rm", "--security-opt", &seccomp, image, "busybox", "mkdir", "/made"]);
    assert!(!ran && refused(&out), "a call it never made (mkdir) is refused: {out}");
    let (ran, out) = podman.try_podman(&["run", "--rm", image, "busybox", "mkdir", "/made"]);
    assert!(ran, "without the profile the same call works: {out}");
    let stats = agent.lines();
    assert!(stats.iter().any(|l| l.contains("\"syscalls\"")), "the agent says it senses syscalls");
}

/// Probes: the programs an engine healthcheck runs are learned as probes, and under a policy that
/// does not name them they still run (the container stays healthy) while a new program is
/// refused; a probe is never a violation.
#[test]
fn a_containers_probes_are_learned_as_probes_and_never_refused() {
    let Some(podman) = prerequisites() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("agent.sock").display().to_string();
    let image = "localhost/picket-probed:1";
    podman.podman(&["tag", common::engines::Podman::IMAGE, image]);
    let learning = Agent::start(&podman, dir.path(), &[]);
    podman.podman(&[
        "run",
        "-d",
        "--name",
        "probed",
        "--label",
        "app=probed",
        "--health-cmd",
        "/opt/true && /opt/true",
        "--health-interval",
        "disable",
        image,
        "sh",
        "-c",
        "mkdir -p /opt && cp /bin/busybox /opt/true && cp /bin/busybox /opt/echo; while true; do sleep 0.3; done",
    ]);
    let group = format!("local/{image}");
    let learned_processes = || {
        let (_, shown, _) = run_picket(&["policy", "show", "--agent", &socket, "--json"]);
        let baselines: serde_json::Value = serde_json::from_str(&shown).unwrap_or_default();
        baselines["groups"][&group]["processes"].clone()
    };
    // Probes start once the container runs a while (an engine's interval, a probe's initial
    // delay); an exec in its first moments, before the engine has named it, is the workload's.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && learned_processes().is_null() {
        std::thread::sleep(Duration::from_millis(300));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut learned = serde_json::Value::Null;
    while Instant::now() < deadline && learned.is_null() {
        podman.try_podman(&["healthcheck", "run", "probed"]);
        std::thread::sleep(Duration::from_millis(500));
        let (_, shown, _) = run_picket(&["policy", "show", "--agent", &socket, "--json"]);
        let baselines: serde_json::Value = serde_json::from_str(&shown).unwrap_or_default();
        let check = &baselines["groups"][&group]["processes"]["/opt/true"];
        if check["count"].as_u64().is_some_and(|n| n >= 2) {
            learned = baselines["groups"][&group]["processes"].clone();
        }
    }
    assert!(!learned.is_null(), "the healthcheck's program is learned");
    assert_eq!(learned["/opt/true"]["probe_runs"], learned["/opt/true"]["count"], "only ever a probe: {learned}");
    let shell = &learned["/bin/busybox"];
    assert!(shell["probe_runs"].as_u64().is_some_and(|n| n >= 1), "the probe's shell ran as a probe: {learned}");
    assert!(
        shell["probe_runs"].as_u64() < shell["count"].as_u64(),
        "and as the workload's own program, so it is not a probe only: {learned}"
    );
    drop(learning);

    // A policy (picking the container by its label) that names only busybox: the healthcheck's
    // /opt/true still runs, /opt/echo not.
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "containers:\n  - labels: { app: probed }\n    mode: protect\n    allowExec: [/bin/busybox]\n",
    )
    .expect("policy");
    std::fs::create_dir_all(dir.path().join("enforcing")).expect("dir");
    let enforcing = Agent::start(&podman, &dir.path().join("enforcing"), &["--policy", &policy.display().to_string()]);
    enforcing.wait_for(|l| l.contains(r#""protect":"#) && !l.contains(r#""protect":0"#), "protect in force");
    std::thread::sleep(Duration::from_secs(3));
    let (healthy, said) = podman.try_podman(&["healthcheck", "run", "probed"]);
    assert!(healthy, "the probe runs under a policy that does not name it: {said}");
    let (ran, said) = exec_in(&podman, "probed", "/opt/echo ran");
    assert!(!ran && refused(&said), "a program the policy does not name is refused: {said}");
    let (healthy, said) = podman.try_podman(&["healthcheck", "run", "probed"]);
    assert!(healthy, "and the probe again: {said}");
    std::thread::sleep(Duration::from_millis(500));
    let alerts = enforcing.policy_alerts();
    assert!(alerts.iter().any(|a| a.to_string().contains("/opt/echo")), "the refusal is alerted: {alerts:?}");
    assert!(!alerts.iter().any(|a| a.to_string().contains("/opt/true")), "a probe never is: {alerts:?}");
}

/// Peers as groups: a client that talks to a web server's container (at its address on the
/// engine's bridge) learns the web server's group, not its address. Under protect the client
/// reaches a second container of that group at a new address, and is refused another group's.
#[test]
fn a_peer_is_learned_as_its_group_and_allowed_at_the_addresses_it_holds() {
    let Some(podman) = prerequisites() else { return };
    if !Path::new("/usr/lib/cni/bridge").exists() {
        eprintln!("skipped: needs the CNI bridge plugin (containernetworking-plugins, ./install.sh --dev)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("agent.sock").display().to_string();
    let agent = Agent::start(&podman, dir.path(), &[]);
    let (web, client, other) =
        ("localhost/picket-peer-web:1", "localhost/picket-peer-client:1", "localhost/picket-peer-other:1");
    for image in [web, client, other] {
        podman.podman(&["tag", common::engines::Podman::IMAGE, image]);
    }
    let serve = "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 8080 -h /www";
    let address_of = |name: &str| {
        let address = podman.podman(&["inspect", name, "--format", "{{.NetworkSettings.IPAddress}}"]);
        let address = address.trim().to_string();
        assert!(address.parse::<std::net::IpAddr>().is_ok(), "{name} has an address on the bridge: {address:?}");
        address
    };
    podman.podman(&["run", "-d", "--name", "peer-web1", "--network", "bridge", web, "sh", "-c", serve]);
    podman.podman(&["run", "-d", "--name", "peer-other", "--network", "bridge", other, "sh", "-c", serve]);
    let (first, elsewhere) = (address_of("peer-web1"), address_of("peer-other"));
    let fetch = format!("while true; do wget -q -O /dev/null http://{first}:8080/ && echo fetched; sleep 0.3; done");
    podman.podman(&["run", "-d", "--name", "peer-client", "--network", "bridge", client, "sh", "-c", &fetch]);

    let (client_group, web_group) = (format!("local/{client}"), format!("local/{web}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut egress = serde_json::Value::Null;
    while Instant::now() < deadline && !egress.to_string().contains(&web_group) {
        std::thread::sleep(Duration::from_millis(500));
        let (_, shown, _) = run_picket(&["policy", "show", "--agent", &socket, "--json"]);
        let baselines: serde_json::Value = serde_json::from_str(&shown).unwrap_or_default();
        egress = baselines["groups"][&client_group]["egress"].clone();
    }
    let flows = egress.as_array().cloned().unwrap_or_default();
    assert!(
        flows.iter().any(|f| f["peer"] == web_group.as_str() && f["port"] == 8080),
        "the web server is learned as its group: {egress}"
    );
    assert!(!egress.to_string().contains(&first), "not as its address: {egress}");

    let (code, _, said) = run_picket(&["policy", "mode", &client_group, "protect", "--agent", &socket]);
    assert_eq!(code, Some(0), "{said}");
    agent.wait_for(|l| l.contains(r#""protect":"#) && !l.contains(r#""protect":0"#), "protect in force");
    podman.podman(&["run", "-d", "--name", "peer-web2", "--network", "bridge", web, "sh", "-c", serve]);
    let second = address_of("peer-web2");
    assert_ne!(first, second);
    // The new container's address is put in the client's rules at the next resolution.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut reached = (false, String::new());
    while Instant::now() < deadline && !reached.0 {
        std::thread::sleep(Duration::from_millis(500));
        reached = exec_in(&podman, "peer-client", &format!("wget -q -O- http://{second}:8080/"));
    }
    assert!(reached.0 && reached.1.contains("hi"), "the group's new container is reached: {}", reached.1);
    let (ran, said) = exec_in(&podman, "peer-client", &format!("wget -q -O- http://{elsewhere}:8080/"));
    assert!(!ran && refused(&said), "another group's container is refused: {said}");
    let fetched = |p: &common::engines::Podman| p.podman(&["logs", "peer-client"]).matches("fetched").count();
    let count = fetched(&podman);
    std::thread::sleep(Duration::from_secs(1));
    assert!(fetched(&podman) > count, "the learned peer is still fetched under protect");
    drop(agent);
}

/// An inbound connection to a port the learned policy does not list is a violation named by the
/// port, refused in protect mode (connection refused, by the inbound rung); accepted, the port
/// is listed, takes connections and is no longer alerted.
#[test]
fn an_unlisted_inbound_port_is_a_violation_to_accept() {
    let Some(podman) = prerequisites() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("agent.sock").display().to_string();
    let agent = Agent::start(&podman, dir.path(), &[]);
    let image = "localhost/picket-listener:1";
    podman.podman(&["tag", common::engines::Podman::IMAGE, image]);
    let serve = "mkdir -p /www && echo hi > /www/index.html && httpd -p 8080 -h /www && \
                 while true; do wget -q -O /dev/null http://127.0.0.1:8080/; sleep 0.3; done";
    podman.podman(&["run", "-d", "--name", "listener", image, "sh", "-c", serve]);
    let group = format!("local/{image}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut listening = String::new();
    while Instant::now() < deadline && !listening.contains("8080") {
        std::thread::sleep(Duration::from_millis(500));
        let (_, shown, _) = run_picket(&["policy", "show", "--agent", &socket, "--json"]);
        let baselines: serde_json::Value = serde_json::from_str(&shown).unwrap_or_default();
        listening = baselines["groups"][&group]["listening"].to_string();
    }
    assert!(listening.contains("8080"), "the port it listens on is learned: {listening}");
    let (code, _, said) = run_picket(&["policy", "mode", &group, "protect", "--agent", &socket]);
    assert_eq!(code, Some(0), "{said}");
    agent.wait_for(|l| l.contains(r#""protect":"#) && !l.contains(r#""protect":0"#), "protect in force");

    let accept_alerts =
        |agent: &Agent| agent.policy_alerts().into_iter().filter(|a| a["rule"] == "policy-accept").collect::<Vec<_>>();
    // Connections come from another group's container sharing its network (the group's own
    // connects to 9090 are outbound ones its policy refuses).
    let (ran, said) = exec_in(&podman, "listener", "httpd -p 9090 -h /www && echo serving");
    assert!(ran, "{said}");
    let visitor = "localhost/picket-visitor:1";
    podman.podman(&["tag", common::engines::Podman::IMAGE, visitor]);
    podman.podman(&["run", "-d", "--name", "visitor", "--network", "container:listener", visitor, "sleep", "300"]);
    let fetch = |podman: &common::engines::Podman| {
        podman.try_podman(&["exec", "visitor", "sh", "-c", "wget -q -O- http://127.0.0.1:9090/"])
    };
    let (ran, said) = fetch(&podman);
    assert!(!ran && said.contains("Connection refused"), "protect refuses an unlisted inbound connection: {said}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && accept_alerts(&agent).is_empty() {
        std::thread::sleep(Duration::from_millis(200));
    }
    let alerts = accept_alerts(&agent);
    assert!(alerts.iter().any(|a| a["event"]["local"].as_str().is_some_and(|l| l.ends_with(":9090"))), "{alerts:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut listed = String::new();
    while Instant::now() < deadline && !listed.contains("accept:9090") {
        std::thread::sleep(Duration::from_millis(200));
        listed = run_picket(&["policy", "modes", "--agent", &socket]).1;
    }
    assert!(listed.contains("accept:9090 (denied, 1×"), "{listed}");
    let (code, _, said) = run_picket(&["policy", "accept", &group, "accept:9090", "--agent", &socket]);
    assert_eq!(code, Some(0), "{said}");
    std::thread::sleep(Duration::from_secs(3));
    let before = accept_alerts(&agent).len();
    let (ran, said) = fetch(&podman);
    assert!(ran && said.contains("hi"), "accepted, the port takes connections: {said}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(accept_alerts(&agent).len(), before, "accepted, the port is listed: {:?}", accept_alerts(&agent));
    drop(agent);
}

/// A DNS responder on the host's end of the engine's bridge: `name` is `address`, any other
/// name does not exist. Answers until the test ends.
fn serve_dns(at: std::net::IpAddr, name: &'static str, address: std::net::Ipv4Addr) {
    use simple_dns::rdata::{A, RData};
    use simple_dns::{CLASS, Packet, PacketFlag, RCODE, ResourceRecord};
    let socket = std::net::UdpSocket::bind((at, 53)).expect("a DNS port on the bridge");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buffer) {
            let Ok(query) = Packet::parse(&buffer[..n]) else { continue };
            let mut reply = Packet::new_reply(query.id());
            reply.set_flags(PacketFlag::RECURSION_AVAILABLE);
            for question in query.questions {
                let asked = question.qname.to_string();
                let known = asked.trim_end_matches('.').eq_ignore_ascii_case(name);
                let is_a = question.qtype == simple_dns::QTYPE::TYPE(simple_dns::TYPE::A);
                if known && is_a {
                    let record = ResourceRecord::new(
                        question.qname.clone(),
                        CLASS::IN,
                        5,
                        RData::A(A { address: u32::from(address) }),
                    );
                    reply.answers.push(record);
                } else if !known {
                    *reply.rcode_mut() = RCODE::NameError;
                }
                reply.questions.push(question);
            }
            if let Ok(bytes) = reply.build_bytes_vec_compressed() {
                let _ = socket.send_to(&bytes, from);
            }
        }
    });
}

/// A web server on the host's end of the bridge answering `hi` to every request.
fn serve_http(at: std::net::IpAddr) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind((at, 0)).expect("a port on the bridge");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nhi\n");
        }
    });
    port
}

/// Peers met by name: the agent reads the DNS answers a container receives, learns the name with
/// the address it connected to, and the learned policy allows the name; a policy that allows
/// only the name lets the container reach it once resolved, and refuses the same address on
/// another port.
#[test]
fn a_peer_met_by_name_is_learned_with_its_name_and_allowed_by_it() {
    let Some(podman) = prerequisites() else { return };
    if !Path::new("/usr/lib/cni/bridge").exists() {
        eprintln!("skipped: needs the CNI bridge plugin (containernetworking-plugins, ./install.sh --dev)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("agent.sock").display().to_string();
    let image = "localhost/picket-dns-client:1";
    podman.podman(&["tag", common::engines::Podman::IMAGE, image]);
    // A first container on the bridge brings it up; its gateway is the host's end.
    podman.podman(&["run", "-d", "--name", "dns-anchor", "--network", "bridge", image, "sleep", "300"]);
    let gateway = podman.podman(&["inspect", "dns-anchor", "--format", "{{.NetworkSettings.Gateway}}"]);
    let gateway: std::net::Ipv4Addr = gateway.trim().parse().expect("the bridge's gateway");
    serve_dns(gateway.into(), "api.picket.test", gateway);
    let port = serve_http(gateway.into());
    let other_port = serve_http(gateway.into());

    let learning = Agent::start(&podman, dir.path(), &[]);
    let fetch =
        format!("while true; do wget -q -O /dev/null http://api.picket.test:{port}/ && echo fetched; sleep 0.3; done");
    let dns = gateway.to_string();
    podman.podman(&[
        "run",
        "-d",
        "--name",
        "dns-client",
        "--network",
        "bridge",
        "--dns",
        &dns,
        image,
        "sh",
        "-c",
        &fetch,
    ]);
    let group = format!("local/{image}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut names = serde_json::Value::Null;
    while Instant::now() < deadline && names.is_null() {
        std::thread::sleep(Duration::from_millis(500));
        let (_, shown, _) = run_picket(&["policy", "show", "--agent", &socket, "--json"]);
        let baselines: serde_json::Value = serde_json::from_str(&shown).unwrap_or_default();
        names = baselines["groups"][&group]["peer_names"][format!("{gateway}/32")].clone();
    }
    assert_eq!(names, serde_json::json!(["api.picket.test"]), "the peer's name is learned with it");
    let lines = learning.lines();
    assert!(
        lines.iter().any(|l| l.contains(r#""type":"dns""#) && l.contains("api.picket.test")),
        "the answer is an event"
    );
    assert!(lines.iter().any(|l| l.contains(r#""fqdn":"api.picket.test""#)), "and names the connect");
    let (code, learned, said) = run_picket(&["policy", "learn", "--agent", &socket, "--group", &group]);
    assert_eq!(code, Some(0), "{said}");
    assert!(learned.contains("fqdn: api.picket.test"), "the learned policy allows the name: {learned}");
    drop(learning);

    // Only the name (and lookups) allowed: the client reaches it once the answer is read; the same
    // address on another port is refused.
    let policy = dir.path().join("by-name.yaml");
    std::fs::write(
        &policy,
        format!(
            "containers:\n  - image: {image}\n    mode: protect\n    connect:\n      allow:\n        - fqdn: api.picket.test\n          ports: [{port}]\n        - ports: [53]\n          protocol: udp\n"
        ),
    )
    .expect("policy");
    std::fs::create_dir_all(dir.path().join("by-name")).expect("dir");
    let enforcing = Agent::start(&podman, &dir.path().join("by-name"), &["--policy", &policy.display().to_string()]);
    enforcing.wait_for(|l| l.contains(r#""protect":"#) && !l.contains(r#""protect":0"#), "protect in force");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut reached = (false, String::new());
    while Instant::now() < deadline && !reached.0 {
        std::thread::sleep(Duration::from_millis(300));
        reached = exec_in(&podman, "dns-client", &format!("wget -q -O- http://api.picket.test:{port}/"));
    }
    assert!(reached.0 && reached.1.contains("hi"), "the name is reached: {}", reached.1);
    let (ran, said) = exec_in(&podman, "dns-client", &format!("wget -q -O- http://api.picket.test:{other_port}/"));
    assert!(!ran && refused(&said), "another port of the same address is not the rule's: {said}");
    drop(enforcing);
}

/// Each container connection's first bytes name its protocol, both ways: a client's GET is HTTP
/// with its method, path and host, and the server's answer is HTTP too.
#[test]
fn a_containers_connections_are_known_by_their_protocol() {
    let Some(podman) = prerequisites() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = Agent::start(&podman, dir.path(), &["--no-learn"]);
    podman.podman(&["tag", common::engines::Podman::IMAGE, WEB]);
    let serve = "mkdir -p /www && echo hi > /www/page.html && httpd -p 8080 -h /www && \
                 while true; do wget -q -O /dev/null http://127.0.0.1:8080/page.html; sleep 0.5; done";
    let id = podman.podman(&["run", "-d", "--name", "web", WEB, "sh", "-c", serve]);
    let id = id.trim().to_string();
    // This container's flows only: the agent sees every container of the machine, other tests' too.
    let flows = |agent: &Agent| -> Vec<serde_json::Value> {
        agent
            .lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "flow" && v["container"]["id"] == id.as_str())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let told = |flows: &[serde_json::Value]| {
        let http =
            |by: &str, way: &str| flows.iter().any(|f| f["protocol"] == "http" && f["by"] == by && f["way"] == way);
        http("client", "sent") && http("client", "received") && http("server", "sent") && http("server", "received")
    };
    while Instant::now() < deadline && !told(&flows(&agent)) {
        std::thread::sleep(Duration::from_millis(300));
    }
    let seen = flows(&agent);
    let request = seen
        .iter()
        .find(|f| f["method"] == "GET" && f["way"] == "sent")
        .unwrap_or_else(|| panic!("the client's request: {seen:?}"));
    assert_eq!(request["path"], "/page.html");
    assert_eq!(request["host"], "127.0.0.1:8080");
    assert_eq!(request["by"], "client");
    assert_eq!(request["remote"][1], 8080);
    assert!(
        seen.iter().any(|f| f["method"] == "GET" && f["way"] == "received" && f["local"][1] == 8080),
        "the server's side of the same request: {seen:?}"
    );
    assert!(told(&seen), "the server's answer, sent and received: {seen:?}");
    // The loop's later requests are folded (one per service, way and protocol per 10 s).
    std::thread::sleep(Duration::from_secs(2));
    let requests = flows(&agent).iter().filter(|f| f["method"] == "GET" && f["way"] == "sent").count();
    assert_eq!(requests, 1, "a request every half second is told once per window");
    drop(agent);
}

/// What a workload's processes execute and map is read from /proc and makes its packages in
/// use: a Debian container (the debootstrap minbase image, pulled into Podman) running bash and
/// sleep maps files of bash, coreutils and libc6, which the image's SBOM lists for those
/// packages; apt, never run, is known unused; a package with no programs or libraries is not
/// known either way. Needs root, BTF, podman, runc and debootstrap.
#[test]
fn the_packages_a_workload_maps_are_in_use() {
    use picket::risk::in_use::{Mapped, Use};
    let Some(podman) = prerequisites() else { return };
    let Some(debian) = common::fixtures::debian() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let image = "localhost/picket-debian:1";
    let id = podman.podman(&["pull", "-q", &format!("oci:{}", debian.join("oci").display())]);
    podman.podman(&["tag", id.trim(), image]);

    let agent = Agent::start(&podman, dir.path(), &[]);
    podman.podman(&["run", "-d", "--name", "deb", image, "bash", "-c", "sleep 600; echo done"]);
    // Read a moment after each exec, learned at the next state period.
    std::thread::sleep(Duration::from_secs(6));
    agent.stop();
    let (baselines, _) = picket::learn::state::load(&dir.path().join("state")).expect("baselines kept");
    let baseline = baselines
        .get(&format!("local/{image}"))
        .unwrap_or_else(|| panic!("the group was learned: {:?}", baselines.groups.keys().collect::<Vec<_>>()));
    assert!(baseline.mapped.contains("/usr/bin/bash"), "{:?}", baseline.mapped);
    assert!(baseline.mapped.contains("/usr/bin/sleep"), "{:?}", baseline.mapped);
    assert!(baseline.mapped.iter().any(|p| p.ends_with("/libc.so.6")), "{:?}", baseline.mapped);
    assert!(!baseline.mapped.iter().any(|p| p.starts_with("/proc/") || p.contains("picket")), "{:?}", baseline.mapped);

    let spec = picket::scan::SourceSpec::parse(&debian.join("oci").display().to_string()).expect("spec");
    let sbom = picket::scan::inventory(&spec, &picket::scan::ScanOptions::default(), &|_| {}).expect("scanned");
    let files = |name: &str| -> Vec<String> {
        sbom.packages.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("{name} installed")).files.clone()
    };
    let mapped = Mapped::new(&baseline.mapped);
    for used in ["bash", "coreutils", "libc6"] {
        assert!(matches!(mapped.use_of(&files(used)), Use::InUse(_)), "{used}: {:?}", files(used));
    }
    assert_eq!(mapped.use_of(&files("apt")), Use::Unused, "{:?}", files("apt"));
    let quiet = sbom.packages.iter().find(|p| p.files.is_empty()).expect("a package with no programs");
    assert_eq!(mapped.use_of(&quiet.files), Use::Unknown, "{}", quiet.name);
}

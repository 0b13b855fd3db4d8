//! A reader's side of the node agent: its socket, a cluster's agents through the API server's
//! port-forward, starting it as a child, deploying it to a cluster. What arrives is sent as
//! [`Feed`] items; the console turns them into its actions.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::UnixStream;
use tokio::sync::mpsc::UnboundedSender;

use super::deploy::AgentPod;
use super::wire::WireEvent;

/// What a reader sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// Lines read from an agent, in order; `unreadable` counts those that were not events.
    Lines { events: Vec<WireEvent>, unreadable: u64 },
    /// The local agent's stream ended (or never started): why.
    Down { reason: String },
    /// A context's agent pods, listed (again).
    PodsListed(Result<Vec<AgentPod>, String>),
    /// One cluster agent's stream ended: why.
    PodDown { pod: String, reason: String },
}

/// An agent this process started (as root); it stops when this process does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedAgent {
    pub pid: u32,
    pub log: PathBuf,
}

/// The longest line taken from an agent; a longer one is skipped and counted as unreadable (an
/// agent's lines are a few hundred bytes; a stream without newlines must not fill memory).
const MAX_LINE: usize = 64 * 1024;

/// Lines of at most MAX_LINE bytes. Cancel-safe: a line cut short by a timeout stays in `line`
/// and is finished by the next call.
struct BoundedLines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    /// Inside a line that was too long: everything up to its newline is dropped.
    skipping: bool,
}

enum Line {
    Text(String),
    TooLong,
}

impl<R: tokio::io::AsyncRead + Unpin> BoundedLines<R> {
    fn new(reader: R) -> Self {
        Self { reader: BufReader::new(reader), line: Vec::new(), skipping: false }
    }

    async fn next(&mut self) -> std::io::Result<Option<Line>> {
        use tokio::io::AsyncBufReadExt as _;
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(None);
            }
            let (chunk, newline) = match available.iter().position(|b| *b == b'\n') {
                Some(at) => (&available[..at], true),
                None => (available, false),
            };
            let used = chunk.len() + usize::from(newline);
            if !self.skipping {
                if self.line.len() + chunk.len() > MAX_LINE {
                    self.skipping = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            self.reader.consume(used);
            if newline {
                if std::mem::take(&mut self.skipping) {
                    return Ok(Some(Line::TooLong));
                }
                let bytes = std::mem::take(&mut self.line);
                return Ok(Some(String::from_utf8(bytes).map_or(Line::TooLong, Line::Text)));
            }
        }
    }
}

/// Batches sent to the console and not yet taken by its loop. Beyond this (the loop is stopped
/// while a foreground plugin has the terminal, or cannot keep up) a batch is not sent: it is
/// counted, and the next batch that goes says how many lines were missed, as the agent's own
/// `lagged` notice does, instead of memory growing for as long as the loop is away.
pub const MAX_IN_FLIGHT: usize = 16;

/// The count of batches sent and not yet taken, shared by the readers and the console's loop.
pub type InFlight = std::sync::Arc<std::sync::atomic::AtomicUsize>;

/// Lines gathered into one action: what arrives within this window after the first.
const BATCH_WINDOW: Duration = Duration::from_millis(50);
const BATCH_MAX: usize = 2000;

/// What a failed connect means for the user.
fn describe(socket: &Path, err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => format!("no agent is serving {}", socket.display()),
        std::io::ErrorKind::PermissionDenied => {
            format!("{} is root's (mode 0600): run picket as root to read the agent", socket.display())
        }
        std::io::ErrorKind::ConnectionRefused => {
            format!("nothing listens on {} (an agent that stopped left it)", socket.display())
        }
        _ => format!("{}: {err}", socket.display()),
    }
}

/// Connects (trying again for `wait`) and sends the agent's lines in batches until it goes away.
pub async fn read_agent(tx: UnboundedSender<Feed>, socket: PathBuf, wait: Duration, in_flight: InFlight) {
    let deadline = tokio::time::Instant::now() + wait;
    let stream = loop {
        match UnixStream::connect(&socket).await {
            Ok(stream) => break stream,
            Err(err) if tokio::time::Instant::now() >= deadline => {
                let _ = tx.send(Feed::Down { reason: describe(&socket, &err) });
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let reason = read_lines(&tx, stream, &socket.display().to_string(), &in_flight).await;
    let _ = tx.send(Feed::Down { reason });
}

/// Sends an agent's lines in batches until the stream ends; returns why it ended (`from` names
/// the stream in errors).
async fn read_lines<R: tokio::io::AsyncRead + Unpin>(
    tx: &UnboundedSender<Feed>,
    stream: R,
    from: &str,
    in_flight: &InFlight,
) -> String {
    use std::sync::atomic::Ordering;
    let mut missed: u64 = 0;
    let mut lines = BoundedLines::new(stream);
    // One stream is one agent: its node, from its other lines, names its `lagged` notices.
    let mut node: Option<String> = None;
    loop {
        let mut events = Vec::new();
        let mut unreadable = 0u64;
        let mut take = |line: Line| match line {
            Line::Text(text) => match serde_json::from_str::<WireEvent>(&text) {
                Ok(WireEvent::Lagged { v, missed, node: None }) => {
                    events.push(WireEvent::Lagged { v, missed, node: node.clone() })
                }
                Ok(event) => {
                    if node.is_none() && !event.node().is_empty() {
                        node = Some(event.node().to_string());
                    }
                    events.push(event)
                }
                Err(_) => unreadable += 1,
            },
            Line::TooLong => unreadable += 1,
        };
        let end = match lines.next().await {
            Ok(Some(line)) => {
                take(line);
                // `next` is cancel-safe: a line cut by the window is read whole next time.
                let window = tokio::time::Instant::now() + BATCH_WINDOW;
                let mut end = None;
                for _ in 1..BATCH_MAX {
                    match tokio::time::timeout_at(window, lines.next()).await {
                        Ok(Ok(Some(line))) => take(line),
                        Ok(Ok(None)) => {
                            end = Some("the agent closed the connection (it stopped)".to_string());
                            break;
                        }
                        Ok(Err(err)) => {
                            end = Some(format!("reading {from}: {err}"));
                            break;
                        }
                        Err(_) => break,
                    }
                }
                end
            }
            Ok(None) => Some("the agent closed the connection (it stopped)".to_string()),
            Err(err) => Some(format!("reading {from}: {err}")),
        };
        if !events.is_empty() || unreadable > 0 {
            if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                missed = missed.saturating_add(events.len() as u64 + unreadable);
            } else {
                if missed > 0 {
                    events.push(WireEvent::Lagged { v: super::wire::WIRE_VERSION, missed, node: node.clone() });
                    missed = 0;
                }
                in_flight.fetch_add(1, Ordering::Relaxed);
                if tx.send(Feed::Lines { events, unreadable }).is_err() {
                    return "the console is closing".into();
                }
            }
        }
        if let Some(reason) = end {
            return reason;
        }
    }
}

/// How often a context's agent pods are listed again (pods that start running are then read).
const RELIST: Duration = Duration::from_secs(10);

/// The DaemonSet's agents of `context`: lists their pods, reads every running one's lines
/// through the API server's port-forward to the agent's loopback port, and lists again every
/// 10 s for pods that came up (after a deploy) or whose stream ended. Dropping the task (a new
/// connection) ends every stream with it.
pub async fn read_cluster_agents(tx: UnboundedSender<Feed>, context: String, in_flight: InFlight) {
    use super::manifest::{AGENT_PORT, NAMESPACE};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::Api;
    let mut streams = tokio::task::JoinSet::new();
    let mut reading = std::collections::BTreeSet::new();
    loop {
        let listed = async {
            let (client, _) = crate::cluster::client_for(Some(&context)).await.map_err(|e| e.to_string())?;
            let pods = super::deploy::list_agent_pods(&client, &context).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((Api::<Pod>::namespaced(client, NAMESPACE), pods))
        }
        .await;
        while let Some(Ok(ended)) = streams.try_join_next() {
            reading.remove(&ended);
        }
        match listed {
            Err(err) => {
                if tx.send(Feed::PodsListed(Err(err))).is_err() {
                    return;
                }
            }
            Ok((api, rows)) => {
                if tx.send(Feed::PodsListed(Ok(rows.clone()))).is_err() {
                    return;
                }
                for pod in rows.into_iter().filter(|p| p.phase == "Running") {
                    if !reading.insert(pod.name.clone()) {
                        continue;
                    }
                    let (tx, api, in_flight) = (tx.clone(), api.clone(), in_flight.clone());
                    streams.spawn(async move {
                        let reason = match api.portforward(&pod.name, &[AGENT_PORT]).await {
                            Ok(mut forward) => match forward.take_stream(AGENT_PORT) {
                                Some(stream) => read_lines(&tx, stream, &format!("pod {}", pod.name), &in_flight).await,
                                None => format!("port-forward to pod {} gave no stream", pod.name),
                            },
                            Err(e) => format!("port-forward to pod {} port {AGENT_PORT}: {e}", pod.name),
                        };
                        let _ = tx.send(Feed::PodDown { pod: pod.name.clone(), reason });
                        pod.name
                    });
                }
            }
        }
        tokio::time::sleep(RELIST).await;
    }
}

/// Starts `picket agent run --socket SOCKET --quiet` (its messages to `log`) and waits until it
/// serves the socket. The kernel sends it SIGTERM when the console ends, however it ends (a
/// clean stop: its socket goes with it); the node then fails open.
pub async fn start_agent(socket: &Path, log: &Path) -> Result<(StartedAgent, tokio::process::Child), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find picket's own executable: {e}"))?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    }
    let log_file = std::fs::File::create(log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let mut command = tokio::process::Command::new(&exe);
    command
        .args(["agent", "run", "--quiet", "--socket"])
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    stop_with_parent(&mut command);
    let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let pid = child.id().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
            return Err(format!("picket agent exited ({status}): {last}"));
        }
        // The agent replaces a stale socket when it binds, so a successful connect is its own.
        if UnixStream::connect(socket).await.is_ok() {
            return Ok((StartedAgent { pid, log: log.to_path_buf() }, child));
        }
        if tokio::time::Instant::now() >= deadline {
            // An agent that never serves is of no use, and nothing else would stop it.
            let _ = child.start_kill();
            return Err(format!(
                "the agent (pid {pid}) did not open {} within 15 s; see {}",
                socket.display(),
                log.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The agent gets SIGTERM (a clean stop) when the console ends any way at all, a hang-up or a
/// kill included, not only when its handle is dropped.
#[allow(unsafe_code)]
fn stop_with_parent(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and calls only prctl(2), which
    // is async-signal-safe. The death signal follows the thread that forks: a runtime worker,
    // which lives as long as the console.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Applies the agent's DaemonSet (and what it needs) to `context`; returns what was applied.
pub async fn deploy(context: String) -> Result<Vec<String>, String> {
    let (client, name) = crate::cluster::client_for(Some(&context)).await.map_err(|e| e.to_string())?;
    super::deploy::deploy_agent(&client, &name, "picket-system", super::manifest::DEFAULT_IMAGE)
        .await
        .map_err(|e| e.to_string())
}

/// Asks an agent over `stream` (its socket, or a port-forward to its pod) for its node's CIS
/// benchmark; event lines before the answer are skipped.
pub async fn request_bench_node<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
    what: &str,
    timeout: Duration,
) -> Result<crate::bench::Benchmarked, String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (reading, mut writing) = tokio::io::split(stream);
    let request = serde_json::to_string(&crate::agent::wire::Request::BenchNode).unwrap_or_default();
    writing.write_all(format!("{request}\n").as_bytes()).await.map_err(|e| format!("{what}: cannot ask: {e}"))?;
    let mut lines = tokio::io::BufReader::new(reading).lines();
    let answer = async {
        while let Some(line) = lines.next_line().await.map_err(|e| format!("{what}: {e}"))? {
            if !line.contains(crate::agent::wire::BENCH_REPLY) {
                continue;
            }
            let Ok(reply) = serde_json::from_str::<crate::agent::wire::BenchReply>(&line) else { continue };
            if reply.kind != crate::agent::wire::BENCH_REPLY {
                continue;
            }
            return match (reply.report, reply.error) {
                (Some(report), _) => Ok(crate::bench::Benchmarked { report, notes: reply.notes }),
                (None, error) => Err(format!("{what}: {}", error.unwrap_or_else(|| "no report".into()))),
            };
        }
        Err(format!("{what}: the agent closed the connection without an answer (an agent older than this picket?)"))
    };
    tokio::time::timeout(timeout, answer)
        .await
        .unwrap_or_else(|_| Err(format!("{what}: no answer within {}s", timeout.as_secs())))
}

/// Asks an agent over `stream` one of the requests its loop answers (baselines, the policy in
/// force, apply a policy); event lines before the answer are skipped. An answer with an error is
/// an error.
pub async fn request_agent<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
    request: &crate::agent::wire::Request,
    what: &str,
    timeout: Duration,
) -> Result<crate::agent::wire::AgentReply, String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let kind = request.reply_kind();
    let (reading, mut writing) = tokio::io::split(stream);
    let line = serde_json::to_string(request).map_err(|e| format!("{what}: {e}"))?;
    writing.write_all(format!("{line}\n").as_bytes()).await.map_err(|e| format!("{what}: cannot ask: {e}"))?;
    let mut lines = tokio::io::BufReader::new(reading).lines();
    let wanted = format!("{{\"type\":\"{kind}\"");
    let answer = async {
        while let Some(line) = lines.next_line().await.map_err(|e| format!("{what}: {e}"))? {
            if !line.starts_with(&wanted) && !line.starts_with("{\"type\":\"bench-node\"") {
                continue;
            }
            // An agent that does not know the request answers as the bench does.
            if let Ok(refused) = serde_json::from_str::<crate::agent::wire::BenchReply>(&line)
                && refused.kind == crate::agent::wire::BENCH_REPLY
                && kind != crate::agent::wire::BENCH_REPLY
            {
                return Err(format!("{what}: {}", refused.error.unwrap_or_else(|| "refused".into())));
            }
            let reply: crate::agent::wire::AgentReply =
                serde_json::from_str(&line).map_err(|e| format!("{what}: an answer that does not read: {e}"))?;
            return match reply.error {
                Some(error) => Err(format!("{what}: {error}")),
                None => Ok(reply),
            };
        }
        Err(format!("{what}: the agent closed the connection without an answer (an agent older than this picket?)"))
    };
    tokio::time::timeout(timeout, answer)
        .await
        .unwrap_or_else(|_| Err(format!("{what}: no answer within {}s", timeout.as_secs())))
}

/// Asks the agent listening on the unix socket `socket`.
pub async fn ask_local_agent(
    socket: &Path,
    request: &crate::agent::wire::Request,
) -> Result<crate::agent::wire::AgentReply, String> {
    let what = format!("agent at {}", socket.display());
    let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
        format!("{what}: cannot connect: {e} (is picket agent run --socket running, and are you root?)")
    })?;
    request_agent(stream, request, &what, Duration::from_secs(30)).await
}

/// What an agent said of a policy put in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `3 containers: 1 discover, 2 protect`.
    pub summary: String,
    /// Where the agent keeps it.
    pub kept_as: String,
}

/// Puts `text` in force on the agent at `socket`, checked here first so that a mistake is named
/// with `label` (the file's path), then by the agent, which keeps the policy in force when it
/// refuses. What `picket policy apply` and the Policies pane both call.
pub async fn apply_policy(socket: &Path, label: &Path, text: &str) -> Result<Applied, String> {
    super::policy::PolicyFile::parse(label, text).map_err(|e| e.to_string())?;
    let request = crate::agent::wire::Request::ApplyPolicy { yaml: text.to_string() };
    let reply = ask_local_agent(socket, &request).await?;
    Ok(Applied { summary: reply.summary.unwrap_or_default(), kept_as: reply.policy_file.unwrap_or_default() })
}

/// The modes the agent at `socket` keeps per group (set by hand or promoted, each with its
/// violations), and the groups the policy in force holds instead. What `picket policy modes` and
/// the Behaviour pane both read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Modes {
    pub groups: std::collections::BTreeMap<String, super::promotion::Promoted>,
    pub held: Vec<String>,
}

pub async fn modes(socket: &Path) -> Result<Modes, String> {
    let reply = ask_local_agent(socket, &crate::agent::wire::Request::Modes).await?;
    Ok(Modes { groups: reply.modes.unwrap_or_default(), held: reply.held })
}

/// Sets `group`'s mode on the agent at `socket`: what the agent did (`group …: discover →
/// protect`). What `picket policy mode` and the Behaviour pane both call.
pub async fn set_mode(socket: &Path, group: &str, mode: crate::policy::spec::Mode) -> Result<String, String> {
    let request =
        crate::agent::wire::Request::SetMode { group: group.to_string(), mode, who: crate::policy::history::who() };
    Ok(ask_local_agent(socket, &request).await?.summary.unwrap_or_default())
}

/// Accepts `violations` (`exec:/bin/sh` …) into `group`'s policy on the agent at `socket`. What
/// `picket policy accept` and the Behaviour pane both call.
pub async fn accept_violations(socket: &Path, group: &str, violations: &[String]) -> Result<String, String> {
    let request = crate::agent::wire::Request::Accept {
        group: group.to_string(),
        violations: violations.to_vec(),
        who: crate::policy::history::who(),
    };
    Ok(ask_local_agent(socket, &request).await?.summary.unwrap_or_default())
}

/// Cuts `container` (its name or an id prefix) off the network on the agent at `socket`: what
/// the agent did. The one call the console, `picket respond quarantine` and a response rule's
/// `quarantine` action make.
pub async fn quarantine(socket: &Path, container: &str, reason: &str) -> Result<String, String> {
    let request = crate::agent::wire::Request::Quarantine {
        container: container.to_string(),
        reason: reason.to_string(),
        who: crate::policy::history::who(),
    };
    Ok(ask_local_agent(socket, &request).await?.summary.unwrap_or_default())
}

/// Gives a quarantined container its network back (`picket respond release`, undo).
pub async fn release(socket: &Path, container: &str) -> Result<String, String> {
    let request =
        crate::agent::wire::Request::Release { container: container.to_string(), who: crate::policy::history::who() };
    Ok(ask_local_agent(socket, &request).await?.summary.unwrap_or_default())
}

/// The containers the agent at `socket` holds in quarantine.
pub async fn quarantined(socket: &Path) -> Result<Vec<super::quarantine::Quarantined>, String> {
    let reply = ask_local_agent(socket, &crate::agent::wire::Request::Quarantined).await?;
    Ok(reply.quarantined.unwrap_or_default())
}

/// The policy the agent at `socket` holds: where it is kept and its text.
pub async fn policy_in_force(socket: &Path) -> Result<(String, String), String> {
    let reply = ask_local_agent(socket, &crate::agent::wire::Request::Policy).await?;
    Ok((reply.policy_file.unwrap_or_default(), reply.policy.unwrap_or_default()))
}

/// The node benchmark of cluster node `node`, from the agent pod on it (no SSH): the
/// DaemonSet's pods are listed, the one on `node` reached through a port-forward.
pub async fn bench_cluster_node(context: Option<&str>, node: &str) -> Result<crate::bench::Benchmarked, String> {
    use super::manifest::AGENT_PORT;
    let (client, name) = crate::cluster::client_for(context).await.map_err(|e| e.to_string())?;
    let pods = super::deploy::list_agent_pods(&client, &name).await.map_err(|e| e.to_string())?;
    let Some(pod) = pods.iter().find(|p| p.node == node) else {
        let nodes: Vec<&str> = pods.iter().map(|p| p.node.as_str()).collect();
        return Err(format!(
            "context {name}: no picket agent pod on node {node} (agents run on: {}); deploy it with picket agent manifest",
            if nodes.is_empty() { "none".to_string() } else { nodes.join(", ") }
        ));
    };
    if pod.phase != "Running" {
        return Err(format!("context {name}: the agent pod {} on {node} is {}, not running", pod.name, pod.phase));
    }
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, super::manifest::NAMESPACE);
    let mut forward = api
        .portforward(&pod.name, &[AGENT_PORT])
        .await
        .map_err(|e| format!("port-forward to pod {} port {AGENT_PORT}: {e}", pod.name))?;
    let stream =
        forward.take_stream(AGENT_PORT).ok_or_else(|| format!("port-forward to pod {} gave no stream", pod.name))?;
    request_bench_node(stream, &format!("pod {} on {node}", pod.name), Duration::from_secs(120)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::stream::EventServer;
    use crate::agent::wire::AgentStats;

    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Feed>) -> Feed {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("an action in time").expect("open channel")
    }

    #[tokio::test]
    async fn lines_arrive_in_batches_and_the_end_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let server = EventServer::bind(&socket, 64).unwrap();
        let greeting = WireEvent::stats("node-1", AgentStats { events: 5, pid: 42, ..Default::default() });
        server.set_greeting(serde_json::to_string(&greeting).unwrap().into());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(read_agent(tx, socket.clone(), Duration::ZERO, InFlight::default()));
        let Feed::Lines { events, unreadable } = next(&mut rx).await else { panic!("lines first") };
        assert_eq!((events, unreadable), (vec![greeting.clone()], 0), "the agent's state comes first");
        server.send(serde_json::to_string(&WireEvent::Lagged { v: 1, missed: 3, node: None }).unwrap().into());
        server.send("not an event".into());
        // A line far longer than any event is skipped, counted, and the next one still reads.
        server.send("x".repeat(3 * MAX_LINE).into());
        server.send(serde_json::to_string(&WireEvent::Lagged { v: 1, missed: 4, node: None }).unwrap().into());
        let mut events = Vec::new();
        let mut unreadable = 0;
        while events.len() < 2 {
            let Feed::Lines { events: more, unreadable: bad } = next(&mut rx).await else { panic!("lines") };
            events.extend(more);
            unreadable += bad;
        }
        let named = Some("node-1".to_string());
        assert_eq!(
            events,
            [
                WireEvent::Lagged { v: 1, missed: 3, node: named.clone() },
                WireEvent::Lagged { v: 1, missed: 4, node: named }
            ],
            "the stream's node names its lagged notices"
        );
        assert_eq!(unreadable, 2, "the junk line and the over-long one");
        drop(server);
        let Feed::Down { reason } = next(&mut rx).await else { panic!("the end") };
        assert!(reason.contains("closed the connection"), "{reason}");
    }

    #[tokio::test]
    async fn a_console_that_is_away_gets_a_count_not_a_backlog() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let server = EventServer::bind(&socket, 64).unwrap();
        let greeting = WireEvent::stats("node-1", AgentStats::default());
        server.set_greeting(serde_json::to_string(&greeting).unwrap().into());
        let in_flight = InFlight::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(read_agent(tx, socket.clone(), Duration::ZERO, in_flight.clone()));
        let Feed::Lines { .. } = next(&mut rx).await else { panic!("the greeting") };
        assert_eq!(in_flight.load(Ordering::Relaxed), 1, "sent, not yet taken");
        // The loop is away (a foreground plugin): nothing more piles up in the channel.
        in_flight.store(MAX_IN_FLIGHT, Ordering::Relaxed);
        let lagged = |missed| {
            serde_json::to_string(&WireEvent::Lagged { v: crate::agent::wire::WIRE_VERSION, missed, node: None })
                .unwrap()
        };
        for n in 1..=3 {
            server.send(lagged(n).into());
            tokio::time::sleep(Duration::from_millis(80)).await;
        }
        assert!(rx.try_recv().is_err(), "held back while the loop is away");
        // Back: the next batch says how many lines were missed, and for which node.
        in_flight.store(0, Ordering::Relaxed);
        server.send(lagged(10).into());
        let Feed::Lines { events, .. } = next(&mut rx).await else { panic!("lines") };
        let node = Some("node-1".to_string());
        assert_eq!(
            events,
            [
                WireEvent::Lagged { v: crate::agent::wire::WIRE_VERSION, missed: 10, node: node.clone() },
                WireEvent::Lagged { v: crate::agent::wire::WIRE_VERSION, missed: 3, node }
            ]
        );
    }

    #[tokio::test]
    async fn no_agent_is_said_plainly_after_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("none.sock");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let started = std::time::Instant::now();
        tokio::spawn(read_agent(tx, socket.clone(), Duration::from_millis(500), InFlight::default()));
        let Feed::Down { reason } = next(&mut rx).await else { panic!("down") };
        assert!(started.elapsed() >= Duration::from_millis(500), "it kept trying for the wait");
        assert_eq!(reason, format!("no agent is serving {}", socket.display()));
    }
}

//! The console's side of the node agent: reading its socket, starting it as a child, deploying
//! it to a cluster. Results come back as `Action`s.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc::UnboundedSender;

use crate::agent::wire::WireEvent;
use crate::app::action::Action;
use crate::app::state::StartedAgent;

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
pub async fn read_agent(tx: UnboundedSender<Action>, conn: u64, socket: PathBuf, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    let stream = loop {
        match UnixStream::connect(&socket).await {
            Ok(stream) => break stream,
            Err(err) if tokio::time::Instant::now() >= deadline => {
                let _ = tx.send(Action::AgentDown { conn, reason: describe(&socket, &err) });
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let reason = read_lines(&tx, conn, stream, &socket.display().to_string()).await;
    let _ = tx.send(Action::AgentDown { conn, reason });
}

/// Sends an agent's lines in batches until the stream ends; returns why it ended (`from` names
/// the stream in errors).
async fn read_lines<R: tokio::io::AsyncRead + Unpin>(
    tx: &UnboundedSender<Action>,
    conn: u64,
    stream: R,
    from: &str,
) -> String {
    let mut lines = BufReader::new(stream).lines();
    loop {
        let mut events = Vec::new();
        let mut unreadable = 0u64;
        let mut take = |line: String| match serde_json::from_str::<WireEvent>(&line) {
            Ok(event) => events.push(event),
            Err(_) => unreadable += 1,
        };
        let end = match lines.next_line().await {
            Ok(Some(line)) => {
                take(line);
                // `next_line` is cancel-safe: a line cut by the window is read whole next time.
                let window = tokio::time::Instant::now() + BATCH_WINDOW;
                let mut end = None;
                for _ in 1..BATCH_MAX {
                    match tokio::time::timeout_at(window, lines.next_line()).await {
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
        if (!events.is_empty() || unreadable > 0) && tx.send(Action::AgentLines { conn, events, unreadable }).is_err() {
            return "the console is closing".into();
        }
        if let Some(reason) = end {
            return reason;
        }
    }
}

/// The DaemonSet's agents of `context`: lists their pods, then reads every running one's lines
/// through the API server's port-forward to the agent's loopback port.
pub async fn read_cluster_agents(tx: UnboundedSender<Action>, conn: u64, context: String) {
    use crate::agent::manifest::{AGENT_PORT, NAMESPACE};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::Api;
    let listed = async {
        let (client, _) = crate::cluster::client_for(Some(&context)).await.map_err(|e| e.to_string())?;
        let pods = crate::cluster::deploy::list_agent_pods(&client, &context).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((Api::<Pod>::namespaced(client, NAMESPACE), pods))
    }
    .await;
    let (api, rows) = match listed {
        Ok(found) => found,
        Err(err) => {
            let _ = tx.send(Action::ClusterAgentsListed { conn, result: Err(err) });
            return;
        }
    };
    let _ = tx.send(Action::ClusterAgentsListed { conn, result: Ok(rows.clone()) });
    for pod in rows.into_iter().filter(|p| p.phase == "Running") {
        let (tx, api) = (tx.clone(), api.clone());
        tokio::spawn(async move {
            let reason = match api.portforward(&pod.name, &[AGENT_PORT]).await {
                Ok(mut forward) => match forward.take_stream(AGENT_PORT) {
                    Some(stream) => read_lines(&tx, conn, stream, &format!("pod {}", pod.name)).await,
                    None => format!("port-forward to pod {} gave no stream", pod.name),
                },
                Err(e) => format!("port-forward to pod {} port {AGENT_PORT}: {e}", pod.name),
            };
            let _ = tx.send(Action::ClusterAgentDown { conn, pod: pod.name, reason });
        });
    }
}

/// Starts `picket agent run --socket SOCKET --quiet` (its messages to `log`) and waits until it
/// serves the socket. The child is killed when dropped: an agent the console started stops with
/// it, and the node fails open.
pub async fn start_agent(socket: &Path, log: &Path) -> Result<(StartedAgent, tokio::process::Child), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find picket's own executable: {e}"))?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    }
    let log_file = std::fs::File::create(log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let mut child = tokio::process::Command::new(&exe)
        .args(["agent", "run", "--quiet", "--socket"])
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
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
            return Err(format!(
                "the agent (pid {pid}) did not open {} within 15 s; see {}",
                socket.display(),
                log.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn deploy(context: String) -> Result<Vec<String>, String> {
    let (client, name) = crate::cluster::client_for(Some(&context)).await.map_err(|e| e.to_string())?;
    crate::cluster::deploy::deploy_agent(&client, &name, "picket-system", crate::agent::manifest::DEFAULT_IMAGE)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::stream::EventServer;
    use crate::agent::wire::AgentStats;

    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Action>) -> Action {
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
        tokio::spawn(read_agent(tx, 7, socket.clone(), Duration::ZERO));
        let Action::AgentLines { conn, events, unreadable } = next(&mut rx).await else { panic!("lines first") };
        assert_eq!((conn, events, unreadable), (7, vec![greeting.clone()], 0), "the agent's state comes first");
        server.send(serde_json::to_string(&WireEvent::Lagged { v: 1, missed: 3 }).unwrap().into());
        server.send("not an event".into());
        let Action::AgentLines { events, unreadable, .. } = next(&mut rx).await else { panic!("more lines") };
        assert_eq!((events, unreadable), (vec![WireEvent::Lagged { v: 1, missed: 3 }], 1));
        drop(server);
        let Action::AgentDown { conn, reason } = next(&mut rx).await else { panic!("the end") };
        assert_eq!(conn, 7);
        assert!(reason.contains("closed the connection"), "{reason}");
    }

    #[tokio::test]
    async fn no_agent_is_said_plainly_after_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("none.sock");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let started = std::time::Instant::now();
        tokio::spawn(read_agent(tx, 1, socket.clone(), Duration::from_millis(500)));
        let Action::AgentDown { reason, .. } = next(&mut rx).await else { panic!("down") };
        assert!(started.elapsed() >= Duration::from_millis(500), "it kept trying for the wait");
        assert_eq!(reason, format!("no agent is serving {}", socket.display()));
    }
}

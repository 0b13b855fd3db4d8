//! The agent's local event stream: a unix socket, root-owned and mode 0600, that sends every
//! event line to every connected reader (the console, a log shipper). A reader that falls behind
//! loses the oldest lines and is told how many (`{"type":"lagged","v":2,"missed":N}`); it never
//! slows the agent down.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// Where `picket agent run` listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/picket/agent.sock";

/// Lines a reader may fall behind before it loses the oldest.
pub const BACKLOG: usize = 8192;

/// Recent alerts every new reader gets after the greeting, so a console that was away (or
/// started after the attack) still sees them; the oldest go first.
pub const KEPT_ALERTS: usize = 1024;

/// A request only the agent's loop can answer (it holds the baselines and the policy), with
/// where its answer line goes.
pub struct Ask {
    pub request: super::wire::Request,
    pub reply: tokio::sync::oneshot::Sender<String>,
}

pub struct EventServer {
    tx: broadcast::Sender<Arc<str>>,
    /// Requests for the agent's loop; taken once by the loop (`take_asks`).
    asks_tx: tokio::sync::mpsc::Sender<Ask>,
    asks_rx: Option<tokio::sync::mpsc::Receiver<Ask>>,
    /// Sent first to every new reader: the agent's latest state line.
    greeting: Arc<std::sync::RwLock<Option<Arc<str>>>>,
    /// The latest alerts' lines, sent to every new reader after the greeting.
    kept: Arc<std::sync::Mutex<std::collections::VecDeque<Arc<str>>>>,
    path: PathBuf,
    tasks: Vec<JoinHandle<()>>,
}

/// The unix socket or the loopback TCP port the lines are served on.
trait Listener: Send + 'static {
    type Reader: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    fn accept_reader(&self) -> impl Future<Output = std::io::Result<Self::Reader>> + Send;
}

impl Listener for UnixListener {
    type Reader = tokio::net::UnixStream;
    async fn accept_reader(&self) -> std::io::Result<Self::Reader> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

impl Listener for tokio::net::TcpListener {
    type Reader = tokio::net::TcpStream;
    async fn accept_reader(&self) -> std::io::Result<Self::Reader> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

/// Writes the greeting and the kept alerts, then every line, to one reader until it goes away.
/// (An alert sent while the reader connects may come twice; alerts carry ids.) A reader may also
/// ask: a request line (`{"request":"bench-node"}`) is answered on its connection alone.
async fn serve<C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static>(
    client: C,
    mut rx: broadcast::Receiver<Arc<str>>,
    hello: Option<Arc<str>>,
    kept: Vec<Arc<str>>,
    asks: tokio::sync::mpsc::Sender<Ask>,
) {
    let (reading, mut client) = tokio::io::split(client);
    let (replies_tx, mut replies) = tokio::sync::mpsc::channel::<String>(4);
    let requests = tokio::spawn(answer_requests(reading, replies_tx, asks));
    let _stop_requests = AbortOnDrop(requests);
    for line in hello.into_iter().chain(kept) {
        if client.write_all(line.as_bytes()).await.is_err() || client.write_all(b"\n").await.is_err() {
            return;
        }
    }
    loop {
        let line: Arc<str> = tokio::select! {
            reply = replies.recv(), if !replies.is_closed() => match reply {
                Some(reply) => reply.into(),
                None => continue,
            },
            event = rx.recv() => match event {
                Ok(line) => line,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let lagged = super::wire::WireEvent::Lagged { v: super::wire::WIRE_VERSION, missed, node: None };
                    serde_json::to_string(&lagged).unwrap_or_default().into()
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        // A reader that went away ends its task.
        if client.write_all(line.as_bytes()).await.is_err() || client.write_all(b"\n").await.is_err() {
            return;
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The longest request line read (a policy to apply); longer ones end the reading side.
const REQUEST_LIMIT: u64 = 4 * 1024 * 1024;

/// Reads a reader's request lines and sends each answer line back to its connection.
async fn answer_requests<R: tokio::io::AsyncRead + Unpin>(
    reading: R,
    replies: tokio::sync::mpsc::Sender<String>,
    asks: tokio::sync::mpsc::Sender<Ask>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut lines = tokio::io::BufReader::new(reading.take(REQUEST_LIMIT * 4));
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(n) if n as u64 > REQUEST_LIMIT => return,
            Ok(_) => {}
        }
        let reply = match serde_json::from_str::<super::wire::Request>(line.trim()) {
            Ok(super::wire::Request::BenchNode) => {
                serde_json::to_string(&super::wire::BenchReply::of(crate::bench::node::run_on_this_node().await))
                    .unwrap_or_default()
            }
            Ok(request) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let asked = asks.send(Ask { request, reply }).await.is_ok();
                match answer.await {
                    Ok(line) if asked => line,
                    _ => serde_json::to_string(&super::wire::AgentReply::refused(
                        "error",
                        "the agent is stopping".into(),
                    ))
                    .unwrap_or_default(),
                }
            }
            Err(e) => serde_json::to_string(&super::wire::BenchReply::refused(format!(
                "not a request this agent answers: {e}"
            )))
            .unwrap_or_default(),
        };
        if replies.send(reply).await.is_err() {
            return;
        }
    }
}

impl EventServer {
    /// Listens on `path`, replacing a stale socket left by an agent that died; its directory is
    /// made (0700) when missing. Must run inside a tokio runtime.
    pub fn bind(path: &Path, backlog: usize) -> std::io::Result<Self> {
        let context =
            |e: std::io::Error, what: &str| std::io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::create_dir_all(dir).map_err(|e| context(e, "cannot make the directory of"))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| context(e, "cannot restrict"))?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                // A socket someone answers on belongs to a running agent: taking it over would
                // leave that agent serving nobody.
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AddrInUse,
                        format!("another agent is serving {}; stop it first", path.display()),
                    ));
                }
                std::fs::remove_file(path).map_err(|e| context(e, "cannot replace"))?
            }
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket; refusing to replace it", path.display()),
                ));
            }
            Err(_) => {}
        }
        let listener = UnixListener::bind(path).map_err(|e| context(e, "cannot listen on"))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| context(e, "cannot restrict"))?;
        let (tx, _) = broadcast::channel(backlog.max(1));
        let (asks_tx, asks_rx) = tokio::sync::mpsc::channel(16);
        let mut server = Self {
            tx,
            asks_tx,
            asks_rx: Some(asks_rx),
            greeting: Arc::default(),
            kept: Arc::default(),
            path: path.to_path_buf(),
            tasks: Vec::new(),
        };
        server.accept_on(listener);
        Ok(server)
    }

    /// Also serves the lines on a TCP address, which must be a loopback one: in the agent's
    /// pod it is reached only through the API server's port-forward (RBAC `pods/portforward`).
    pub async fn listen_tcp(&mut self, addr: std::net::SocketAddr) -> std::io::Result<std::net::SocketAddr> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "--listen {addr}: only a loopback address (127.0.0.1 or ::1); the events are not for the network"
                ),
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let bound = listener.local_addr()?;
        self.accept_on(listener);
        Ok(bound)
    }

    /// Serves every reader that connects to `listener`, greeting first.
    fn accept_on<L: Listener>(&mut self, listener: L) {
        let (sender, greeting, kept) = (self.tx.clone(), Arc::clone(&self.greeting), Arc::clone(&self.kept));
        let asks = self.asks_tx.clone();
        self.tasks.push(tokio::spawn(async move {
            loop {
                match listener.accept_reader().await {
                    Ok(client) => {
                        let hello = greeting.read().ok().and_then(|g| g.clone());
                        // Subscribed before the kept lines are read: none falls in between.
                        let rx = sender.subscribe();
                        let kept: Vec<Arc<str>> = kept.lock().map(|k| k.iter().cloned().collect()).unwrap_or_default();
                        tokio::spawn(serve(client, rx, hello, kept, asks.clone()));
                    }
                    // Out of descriptors, say: the next reader may have better luck.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            }
        }));
    }

    /// The requests for the agent's loop (once; None after).
    pub fn take_asks(&mut self) -> Option<tokio::sync::mpsc::Receiver<Ask>> {
        self.asks_rx.take()
    }

    /// The line every reader that connects from now on gets first.
    pub fn set_greeting(&self, line: Arc<str>) {
        if let Ok(mut greeting) = self.greeting.write() {
            *greeting = Some(line);
        }
    }

    /// Sends one line (without its newline) to every connected reader.
    pub fn send(&self, line: Arc<str>) {
        // No reader connected is not an error.
        let _ = self.tx.send(line);
    }

    /// Sends an alert's line to every connected reader, and keeps it for readers to come.
    pub fn send_kept(&self, line: Arc<str>) {
        if let Ok(mut kept) = self.kept.lock() {
            if kept.len() == KEPT_ALERTS {
                kept.pop_front();
            }
            kept.push_back(Arc::clone(&line));
        }
        self.send(line);
    }

    pub fn readers(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl Drop for EventServer {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, BufReader};

    use super::*;

    async fn wait_for_readers(server: &EventServer, n: usize) {
        for _ in 0..100 {
            if server.readers() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no reader connected");
    }

    #[tokio::test]
    async fn readers_get_every_line_on_a_private_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/agent.sock");
        let server = EventServer::bind(&path, 16).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777, 0o700);
        let mut reader = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap()).lines();
        wait_for_readers(&server, 1).await;
        server.send("{\"type\":\"process\"}".into());
        server.send("{\"type\":\"stats\"}".into());
        assert_eq!(reader.next_line().await.unwrap().as_deref(), Some("{\"type\":\"process\"}"));
        assert_eq!(reader.next_line().await.unwrap().as_deref(), Some("{\"type\":\"stats\"}"));
        server.set_greeting("{\"type\":\"stats\",\"events\":2}".into());
        // Alerts are kept for readers to come (the newest KEPT_ALERTS of them).
        for n in 0..KEPT_ALERTS + 2 {
            server.send_kept(format!("{{\"type\":\"alert\",\"n\":{n}}}").into());
        }
        let mut late = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap()).lines();
        wait_for_readers(&server, 2).await;
        server.send("{\"type\":\"network\"}".into());
        assert_eq!(
            late.next_line().await.unwrap().as_deref(),
            Some("{\"type\":\"stats\",\"events\":2}"),
            "state first"
        );
        assert_eq!(late.next_line().await.unwrap().as_deref(), Some("{\"type\":\"alert\",\"n\":2}"), "the oldest went");
        for _ in 1..KEPT_ALERTS {
            late.next_line().await.unwrap();
        }
        assert_eq!(late.next_line().await.unwrap().as_deref(), Some("{\"type\":\"network\"}"));
        drop(server);
        assert!(!path.exists(), "the socket goes with the server");
    }

    #[tokio::test]
    async fn a_slow_reader_is_told_what_it_missed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let server = EventServer::bind(&path, 4).unwrap();
        let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
        wait_for_readers(&server, 1).await;
        // Enough lines to overflow the backlog before the reader's task runs.
        for i in 0..64 {
            server.send(format!("{{\"n\":{i}}}").into());
        }
        let mut reader = BufReader::new(stream).lines();
        let mut lines = Vec::new();
        while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(300), reader.next_line()).await {
            lines.push(line);
        }
        assert!(lines.iter().any(|l| l.starts_with("{\"type\":\"lagged\",\"v\":2,\"missed\":")), "{lines:?}");
        assert_eq!(lines.last().map(String::as_str), Some("{\"n\":63}"), "the newest lines arrive");
    }

    #[tokio::test]
    async fn loopback_tcp_readers_get_the_same_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = EventServer::bind(&dir.path().join("agent.sock"), 16).unwrap();
        let refused = server.listen_tcp("0.0.0.0:0".parse().unwrap()).await.unwrap_err();
        assert!(refused.to_string().contains("only a loopback address"), "{refused}");
        let addr = server.listen_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        server.set_greeting("{\"type\":\"stats\"}".into());
        let mut reader = BufReader::new(tokio::net::TcpStream::connect(addr).await.unwrap()).lines();
        wait_for_readers(&server, 1).await;
        server.send("{\"type\":\"process\"}".into());
        assert_eq!(reader.next_line().await.unwrap().as_deref(), Some("{\"type\":\"stats\"}"));
        assert_eq!(reader.next_line().await.unwrap().as_deref(), Some("{\"type\":\"process\"}"));
    }

    #[tokio::test]
    async fn a_live_agents_socket_is_not_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let first = EventServer::bind(&path, 4).unwrap();
        let err = EventServer::bind(&path, 4).err().unwrap();
        assert!(err.to_string().contains("another agent is serving"), "{err}");
        drop(first);
        // A socket nobody answers on (an agent that died) is replaced.
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        assert!(path.exists());
        EventServer::bind(&path, 4).expect("a stale socket is replaced");
    }

    #[tokio::test]
    async fn a_file_in_the_way_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        std::fs::write(&path, "not a socket").unwrap();
        let err = EventServer::bind(&path, 4).err().unwrap();
        assert!(err.to_string().contains("is not a socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
    }
}

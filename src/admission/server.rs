//! `picket admission serve`: the webhook over HTTPS (rustls; HTTP/1.1 and HTTP/2 by ALPN).
//! `POST /validate` takes an AdmissionReview; `GET /healthz` answers `ok`; `GET /decisions`
//! gives the last decisions to a caller with the decisions token (the console, through the API
//! server's proxy). The server is thin: every decision is [`super::review::answer`]'s.
//! Decisions go to the store through one writer task with a bounded queue, so a slow disk never
//! holds a request, and into a ring of the last ones kept in memory.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::Judge;
use super::review::{DecisionRecord, answer};
use crate::alert::StoredAlert;
use crate::store::{Store, TreeName};

/// The largest AdmissionReview read (the API server's own request limit is 3 MiB; a review
/// holds the object and, for updates, the old one).
const MAX_BODY: usize = 8 << 20;
/// Decisions waiting for the store; past this, the oldest waiting are dropped and counted.
const QUEUE: usize = 4096;
/// Decisions kept in memory for `GET /decisions`.
const RECENT: usize = 1000;
/// Decisions kept in the store: the oldest go past this (in batches of `PRUNE`).
const KEPT: usize = 20_000;
const PRUNE: usize = 1_000;
/// sled's cache for the webhook's store: it writes decisions and reads a few scans, so a
/// small cache keeps its memory flat without slowing either.
pub const STORE_CACHE_BYTES: u64 = 8 << 20;
/// The header that carries the decisions token (the API server's proxy keeps it; it does not
/// pass on `Authorization`).
pub const TOKEN_HEADER: &str = "x-picket-token";

/// The last decisions, for `GET /decisions`, and the token that may read them (None: the
/// endpoint is off).
pub struct Recent {
    records: std::sync::Mutex<VecDeque<DecisionRecord>>,
    token: Option<String>,
}

impl Recent {
    pub fn new(token: Option<String>) -> Arc<Self> {
        Arc::new(Self { records: std::sync::Mutex::new(VecDeque::with_capacity(RECENT)), token })
    }

    fn push(&self, record: DecisionRecord) {
        if let Ok(mut records) = self.records.lock() {
            if records.len() == RECENT {
                records.pop_front();
            }
            records.push_back(record);
        }
    }

    /// The last `n`, newest last.
    pub fn last(&self, n: usize) -> Vec<DecisionRecord> {
        self.records.lock().map(|r| r.iter().skip(r.len().saturating_sub(n)).cloned().collect()).unwrap_or_default()
    }

    /// Whether `given` is the token (compared in time that does not depend on where they differ).
    fn admits(&self, given: Option<&str>) -> bool {
        match (&self.token, given) {
            (Some(token), Some(given)) if token.len() == given.len() => {
                token.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
            }
            _ => false,
        }
    }
}

/// The TLS setup from PEM files: the serving certificate chain and its key.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves until `shutdown` resolves. Decisions are written to `store` when given.
pub async fn serve(
    judge: Arc<Judge>,
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    store: Option<Arc<Store>>,
    recent: Arc<Recent>,
    responder: Option<Arc<crate::alert::outbox::Responder>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let acceptor = TlsAcceptor::from(tls);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (records, writer) = match store {
        Some(store) => {
            let (tx, handle) = spawn_writer(store, Arc::clone(&stop), responder);
            (Some(tx), handle)
        }
        None => (None, None),
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    crate::say!("picket admission: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => {
                // The writer stores what it holds and flushes before the process ends.
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                if let Some(writer) = writer {
                    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
                }
                return Ok(());
            }
        };
        let acceptor = acceptor.clone();
        let judge = Arc::clone(&judge);
        let records = records.clone();
        let recent = Arc::clone(&recent);
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    crate::say!("picket admission: TLS handshake with {peer}: {e}");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper::service::service_fn(move |request| {
                let judge = Arc::clone(&judge);
                let records = records.clone();
                let recent = Arc::clone(&recent);
                async move { Ok::<_, std::convert::Infallible>(handle(&judge, request, records.as_ref(), &recent).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // A client that goes away mid-request is no news.
            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
        });
    }
}

async fn handle(
    judge: &Judge,
    request: Request<Incoming>,
    records: Option<&std::sync::mpsc::SyncSender<DecisionRecord>>,
    recent: &Recent,
) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok"),
        (&Method::GET, "/decisions") => {
            if recent.token.is_none() {
                return text(StatusCode::NOT_FOUND, "GET /decisions is off (serve --decisions-token-file turns it on)");
            }
            let given = request.headers().get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
            if !recent.admits(given) {
                return text(StatusCode::UNAUTHORIZED, "GET /decisions needs the decisions token");
            }
            let last = request
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("last=")))
                .and_then(|n| n.parse().ok())
                .unwrap_or(200);
            json(&recent.last(last))
        }
        (&Method::POST, "/validate") => {
            let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
                Ok(body) => body.to_bytes(),
                Err(e) => return text(StatusCode::BAD_REQUEST, &format!("cannot read the request: {e}")),
            };
            let (review, record) = answer(judge, &body).await;
            if let Some(record) = &record {
                recent.push(record.clone());
            }
            // The store keeps the object only of decisions that deny or warn: allowed ones are
            // most of the traffic, and their objects would make the store churn for nothing.
            let stored = record.map(|mut r| {
                if matches!(r.verdict.as_str(), "allowed" | "exempt") {
                    r.object = None;
                }
                r
            });
            if let (Some(record), Some(records)) = (stored, records)
                && records.try_send(record).is_err()
            {
                crate::say!("picket admission: the decisions queue is full: a decision was not stored");
            }
            json(&review)
        }
        (_, "/validate" | "/healthz" | "/decisions") => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => text(StatusCode::NOT_FOUND, "not found: POST /validate takes an AdmissionReview"),
    }
}

/// 200 with `value` as JSON.
fn json(value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(bytes) => Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "cannot build the answer")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot write the answer: {e}")),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
}

/// How long the writer gathers decisions before writing them in one batch.
const BATCH_WINDOW: Duration = Duration::from_millis(250);
/// The most decisions written in one batch.
const BATCH_MAX: usize = 1024;

/// The thread that keeps decisions: gathers them for a quarter of a second, writes them in one
/// batch and flushes at most once a second. A thread of its own, off the runtime, so sled's
/// work never sits between a request and its answer. (It keeps its priority: at nice 19 it fell
/// behind a flood of requests on a busy core and decisions were lost; the latency tail did not
/// move.)
/// Setting `stop` makes it write what it holds, flush and end.
fn spawn_writer(
    store: Arc<Store>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    responder: Option<Arc<crate::alert::outbox::Responder>>,
) -> (std::sync::mpsc::SyncSender<DecisionRecord>, Option<std::thread::JoinHandle<()>>) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<DecisionRecord>(QUEUE);
    let spawned = std::thread::Builder::new().name("admission-decisions".into()).spawn(move || {
        let tree = match store.tree::<DecisionRecord>(TreeName::AdmissionDecisions) {
            Ok(tree) => tree,
            Err(e) => {
                crate::say!("picket admission: decisions will not be stored: {e}");
                return;
            }
        };
        let mut kept = tree.len();
        let mut last_flush = std::time::Instant::now();
        let mut dirty = false;
        let mut open = true;
        while open {
            open = !stop.load(std::sync::atomic::Ordering::Relaxed);
            let mut batch = Vec::new();
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(record) => batch.push(record),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => open = false,
            }
            let window = std::time::Instant::now() + BATCH_WINDOW;
            while open && !batch.is_empty() && batch.len() < BATCH_MAX {
                match rx.recv_timeout(window.saturating_duration_since(std::time::Instant::now())) {
                    Ok(record) => batch.push(record),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => open = false,
                }
            }
            if let Some(responder) = &responder {
                // Denials and warnings are events for the response rules (queued on disk).
                let events: Vec<StoredAlert> =
                    batch.iter().filter_map(|r| admission_event(r, "admission-webhook")).collect();
                if !events.is_empty()
                    && let Err(e) = responder.respond(&events)
                {
                    crate::say!("picket admission: responding: {e}");
                }
            }
            if !batch.is_empty() {
                kept += batch.len();
                let mut changes: Vec<(String, Option<DecisionRecord>)> =
                    batch.into_iter().map(|r| (format!("{}\0{}", r.at, r.uid), Some(r))).collect();
                if kept > KEPT + PRUNE {
                    let oldest: Vec<String> = tree.keys().take(kept - KEPT).filter_map(Result::ok).collect();
                    kept = kept.saturating_sub(oldest.len());
                    changes.extend(oldest.into_iter().map(|k| (k, None)));
                }
                if let Err(e) = tree.apply(changes) {
                    crate::say!("picket admission: storing decisions: {e}");
                }
                dirty = true;
            }
            if dirty && (last_flush.elapsed() >= Duration::from_secs(1) || !open) {
                if let Err(e) = store.flush() {
                    crate::say!("picket admission: flushing decisions: {e}");
                }
                last_flush = std::time::Instant::now();
                dirty = false;
            }
        }
    });
    match spawned {
        Ok(handle) => (tx, Some(handle)),
        Err(e) => {
            crate::say!("picket admission: decisions will not be stored (no writer thread: {e})");
            (tx, None)
        }
    }
}

/// An admission decision that denied or warned, as an event response rules match
/// (category `admission`, rule `admission/RULE`); allowed decisions are not events.
fn admission_event(record: &DecisionRecord, node: &str) -> Option<StoredAlert> {
    let (severity, action) = match record.verdict.as_str() {
        "denied" => (crate::model::Severity::High, crate::agent::alert::Action::Denied),
        "warned" => (crate::model::Severity::Medium, crate::agent::alert::Action::Alerted),
        _ => return None,
    };
    let rule = record.rules.first().map(|r| r.split(" (").next().unwrap_or(r).to_string()).unwrap_or_default();
    let at = record
        .at
        .parse::<jiff::Timestamp>()
        .map_or_else(|_| crate::alert::now_unix_ms(), |t| t.as_millisecond().max(0) as u64);
    Some(StoredAlert {
        node: node.to_string(),
        container: None,
        alert: crate::agent::alert::Alert {
            id: format!("admission-{}", record.uid),
            at_unix_ms: at,
            rule: format!("admission/{rule}"),
            title: record.message.clone(),
            severity,
            technique: String::new(),
            why: format!("{} {} by {}", record.operation, record.subject, record.user),
            mode: if action == crate::agent::alert::Action::Denied {
                crate::agent::enforce::Mode::Protect
            } else {
                crate::agent::enforce::Mode::Monitor
            },
            action,
            policy: record.rules.join(", "),
            event: crate::agent::alert::Trigger {
                kind: "admission".into(),
                path: record.subject.clone(),
                ..crate::agent::alert::Trigger::default()
            },
            ancestry: Vec::new(),
            count: 1,
        },
    })
}

/// The address to listen on, as written (`0.0.0.0:8443`, `127.0.0.1:0`).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|e| format!("--listen {text}: {e}"))
}

/// The decisions kept in the store, newest last.
pub fn stored_decisions(store: &Store, last: usize) -> Result<Vec<DecisionRecord>, String> {
    let tree = store.tree::<DecisionRecord>(TreeName::AdmissionDecisions).map_err(|e| e.to_string())?;
    Ok(tree.last(last).map_err(|e| e.to_string())?.into_iter().map(|(_, r)| r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> DecisionRecord {
        DecisionRecord {
            at: format!("2026-12-06T10:00:{:02}Z", i % 60),
            uid: i.to_string(),
            operation: "CREATE".into(),
            user: "alice".into(),
            namespace: "shop".into(),
            subject: format!("Pod shop/p{i}"),
            verdict: "allowed".into(),
            message: "allowed".into(),
            warnings: vec![],
            rules: vec![],
            object: None,
        }
    }

    #[test]
    fn recent_decisions_are_bounded_and_only_the_token_reads_them() {
        let recent = Recent::new(Some("s3cret-token".into()));
        for i in 0..RECENT + 5 {
            recent.push(record(i));
        }
        let all = recent.last(usize::MAX);
        assert_eq!(all.len(), RECENT);
        assert_eq!(all.first().map(|r| r.uid.as_str()), Some("5"), "the oldest went first");
        assert_eq!(recent.last(2).iter().map(|r| r.uid.clone()).collect::<Vec<_>>(), ["1003", "1004"]);
        assert!(recent.admits(Some("s3cret-token")));
        for wrong in [Some("s3cret-tokeN"), Some("s3cret"), Some(""), None] {
            assert!(!recent.admits(wrong), "{wrong:?}");
        }
        assert!(!Recent::new(None).admits(Some("")), "no token: nobody reads");
    }
}

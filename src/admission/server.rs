//! `picket admission serve`: the webhook over HTTPS (rustls; HTTP/1.1 and HTTP/2 by ALPN).
//! `POST /validate` takes an AdmissionReview; `GET /healthz` answers `ok`. The server is thin:
//! every decision is [`super::review::answer`]'s. Decisions go to the store through one
//! writer task with a bounded queue, so a slow disk never holds a request.

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
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use super::Judge;
use super::review::{DecisionRecord, answer};
use crate::store::{Store, TreeName};

/// The largest AdmissionReview read (the API server's own request limit is 3 MiB; a review
/// holds the object and, for updates, the old one).
const MAX_BODY: usize = 8 << 20;
/// Decisions waiting for the store; past this, the oldest waiting are dropped and counted.
const QUEUE: usize = 4096;

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
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let acceptor = TlsAcceptor::from(tls);
    let records = store.map(spawn_writer);
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
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let judge = Arc::clone(&judge);
        let records = records.clone();
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
                async move { Ok::<_, std::convert::Infallible>(handle(&judge, request, records.as_ref()).await) }
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
    records: Option<&mpsc::Sender<DecisionRecord>>,
) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok"),
        (&Method::POST, "/validate") => {
            let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
                Ok(body) => body.to_bytes(),
                Err(e) => return text(StatusCode::BAD_REQUEST, &format!("cannot read the request: {e}")),
            };
            let (review, record) = answer(judge, &body).await;
            if let (Some(record), Some(records)) = (record, records)
                && records.try_send(record).is_err()
            {
                crate::say!("picket admission: the decisions queue is full: a decision was not stored");
            }
            match serde_json::to_vec(&review) {
                Ok(bytes) => Response::builder()
                    .status(StatusCode::OK)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(bytes)))
                    .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "cannot build the answer")),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot write the answer: {e}")),
            }
        }
        (_, "/validate" | "/healthz") => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => text(StatusCode::NOT_FOUND, "not found: POST /validate takes an AdmissionReview"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
}

/// The task that keeps decisions: writes each, flushing at most once a second.
fn spawn_writer(store: Arc<Store>) -> mpsc::Sender<DecisionRecord> {
    let (tx, mut rx) = mpsc::channel::<DecisionRecord>(QUEUE);
    tokio::spawn(async move {
        let tree = match store.tree::<DecisionRecord>(TreeName::AdmissionDecisions) {
            Ok(tree) => tree,
            Err(e) => {
                crate::say!("picket admission: decisions will not be stored: {e}");
                return;
            }
        };
        let mut last_flush = std::time::Instant::now();
        let mut dirty = false;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await;
            match next {
                Ok(Some(record)) => {
                    let key = format!("{}\0{}", record.at, record.uid);
                    if let Err(e) = tree.insert(&key, &record) {
                        crate::say!("picket admission: storing a decision: {e}");
                    }
                    dirty = true;
                }
                Ok(None) => break,
                Err(_) => {}
            }
            if dirty && last_flush.elapsed() >= Duration::from_secs(1) {
                let store = Arc::clone(&store);
                let _ = tokio::task::spawn_blocking(move || store.flush()).await;
                last_flush = std::time::Instant::now();
                dirty = false;
            }
        }
        let _ = store.flush();
    });
    tx
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

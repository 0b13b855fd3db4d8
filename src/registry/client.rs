//! HTTP side of the distribution API: connection (TLS, custom CA, insecure), the auth
//! handshake, retries with backoff and `Retry-After`, digest-verified manifests and blobs.

use std::path::Path;
use std::sync::{Mutex, Once};
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::auth::{self, Credentials};
use super::{ImageReference, RegistryError, RegistryOptions};

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
const MAX_ATTEMPTS: u32 = 5;
/// TCP and TLS together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// From the request sent to the response's headers: a server that accepts and stays silent
/// stays silent, so this is not retried.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(8);
/// Between two reads of a body being received.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries (of refused connections, 429 and 5xx answers) stop once this much time has gone.
pub const RETRY_BUDGET: Duration = Duration::from_secs(20);

/// Why a request got no response.
pub enum SendError {
    Http(reqwest::Error),
    /// Connected, then no answer within `FIRST_BYTE_TIMEOUT`.
    Silent,
}

/// An HTTP client with picket's deadlines: connect (and TLS) 5 s, 30 s between reads.
pub fn http_client() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("picket/", env!("CARGO_PKG_VERSION")))
}

/// Sends `request`, giving up when no response has begun within `FIRST_BYTE_TIMEOUT`.
pub async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, SendError> {
    match tokio::time::timeout(FIRST_BYTE_TIMEOUT, request.send()).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(err)) => Err(SendError::Http(err)),
        Err(_) => Err(SendError::Silent),
    }
}

impl SendError {
    /// What went wrong, with the causes and the deadline that ran out.
    pub fn describe(&self) -> String {
        match self {
            Self::Silent => format!(
                "connected, but no answer came within {} s (picket waits {} s to connect and {} s for the first byte)",
                FIRST_BYTE_TIMEOUT.as_secs(),
                CONNECT_TIMEOUT.as_secs(),
                FIRST_BYTE_TIMEOUT.as_secs()
            ),
            Self::Http(err) => describe_http(err),
        }
    }
}
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

pub struct Client {
    http: reqwest::Client,
    base: String,
    registry: String,
    credentials: Option<Credentials>,
    /// The Authorization header that worked last (Basic or Bearer).
    authorization: Mutex<Option<HeaderValue>>,
}

pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn transport(what: &str, err: &reqwest::Error) -> RegistryError {
    RegistryError::Transport { what: what.to_string(), detail: describe_http(err) }
}

fn unanswered(what: &str, err: &SendError) -> RegistryError {
    RegistryError::Transport { what: what.to_string(), detail: err.describe() }
}

/// An HTTP error with its causes, and the deadline that ran out if one did.
pub fn describe_http(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    if err.is_timeout() {
        text.push_str(&format!(
            " (picket waits {} s to connect, TLS included, and {} s between reads)",
            CONNECT_TIMEOUT.as_secs(),
            READ_TIMEOUT.as_secs()
        ));
    }
    text
}

impl Client {
    pub async fn connect(reference: &ImageReference, options: &RegistryOptions) -> Result<Self, RegistryError> {
        Self::connect_registry(&reference.registry, options).await
    }

    /// A client for the registry as written (`127.0.0.1:5000`, `docker.io`), for what is not
    /// one image: the catalog, a repository's tags.
    pub async fn connect_registry(registry: &str, options: &RegistryOptions) -> Result<Self, RegistryError> {
        install_crypto_provider();
        let host = super::reference::api_host(registry).to_string();
        let mut builder = http_client();
        if options.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        } else if let Some(ca) = &options.ca_file {
            let what = ca.display().to_string();
            let pem = crate::input::read_limited(ca, crate::input::MAX_DOCUMENT)
                .map_err(|source| RegistryError::Io { what: what.clone(), source })?;
            let config =
                super::tls::config_with_ca(&pem, &what).map_err(|message| RegistryError::Format { what, message })?;
            builder = builder.tls_backend_preconfigured(config);
        }
        let http = builder.build().map_err(|e| transport(&host, &e))?;
        let files = options.auth_files.clone().unwrap_or_else(auth::auth_files);
        let credentials = auth::lookup(registry, &files)
            .map_err(|detail| RegistryError::Unauthorized { registry: registry.to_string(), detail })?;
        let mut base = format!("https://{host}");
        if options.insecure {
            // Insecure registries may speak plain HTTP: use it when TLS fails (a plain HTTP
            // server's answer is no TLS). A server that does not answer at all would not
            // answer plain HTTP either: that is an error at once.
            match send(http.get(format!("{base}/v2/"))).await {
                Err(SendError::Http(err)) if err.is_timeout() => return Err(transport(&host, &err)),
                Err(SendError::Http(err)) if err.is_connect() || err.is_request() => base = format!("http://{host}"),
                Err(silent @ SendError::Silent) => return Err(unanswered(&host, &silent)),
                _ => {}
            }
        }
        Ok(Self { http, base, registry: registry.to_string(), credentials, authorization: Mutex::new(None) })
    }

    fn current_authorization(&self) -> Option<HeaderValue> {
        self.authorization.lock().map(|a| a.clone()).unwrap_or(None)
    }

    /// Sends a GET, handling auth challenges and retrying throttling, server errors and dropped
    /// connections with exponential backoff (or the server's `Retry-After`).
    async fn get(
        &self,
        path: &str,
        accept: Option<&str>,
        what: &str,
        scope: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = format!("{}{path}", self.base);
        let mut challenged = false;
        let mut attempt = 0;
        let started = std::time::Instant::now();
        // Whether another try fits in the retry budget after waiting `wait`.
        let may_retry =
            |attempt: u32, wait: Duration| attempt < MAX_ATTEMPTS && started.elapsed() + wait < RETRY_BUDGET;
        loop {
            attempt += 1;
            let mut request = self.http.get(&url);
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if let Some(auth) = self.current_authorization() {
                request = request.header(AUTHORIZATION, auth);
            }
            let response = match send(request).await {
                Ok(response) => response,
                // Refused or reset: the server may be restarting. (A timeout is not retried:
                // a server that did not answer in time will not answer the next try sooner.)
                Err(SendError::Http(err))
                    if err.is_connect() && !err.is_timeout() && may_retry(attempt, backoff(attempt, None)) =>
                {
                    tokio::time::sleep(backoff(attempt, None)).await;
                    continue;
                }
                Err(err) => return Err(unanswered(what, &err)),
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                let header = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                self.authenticate(&header, scope).await?;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let detail = match &self.credentials {
                    Some(c) => format!("the credentials of '{}' were refused ({status})", c.username),
                    None => "credentials are needed and none were found (docker login, or an auths entry in ~/.docker/config.json)".into(),
                };
                return Err(RegistryError::Unauthorized { registry: self.registry.clone(), detail });
            }
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|h| h.to_str().ok())
                .and_then(|s| s.trim().parse::<u64>().ok());
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
                && may_retry(attempt, backoff(attempt, retry_after))
            {
                tokio::time::sleep(backoff(attempt, retry_after)).await;
                continue;
            }
            if status == StatusCode::NOT_FOUND {
                return Err(RegistryError::NotFound { what: what.to_string() });
            }
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(RegistryError::Http {
                    what: what.to_string(),
                    status: status.as_u16(),
                    body: body.chars().take(300).collect(),
                });
            }
            return Ok(response);
        }
    }

    async fn authenticate(&self, header: &str, scope: &str) -> Result<(), RegistryError> {
        let unauthorized = |detail: String| RegistryError::Unauthorized { registry: self.registry.clone(), detail };
        let challenge = auth::parse_challenge(header)
            .ok_or_else(|| unauthorized(format!("unreadable WWW-Authenticate header '{header}'")))?;
        let basic = self.credentials.as_ref().map(|c| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
            format!("Basic {encoded}")
        });
        let value = match challenge.scheme.as_str() {
            "basic" => basic.ok_or_else(|| unauthorized("the registry asks for a password and no credentials were found (docker login, or ~/.docker/config.json)".into()))?,
            "bearer" => {
                let realm = challenge.params.get("realm").ok_or_else(|| unauthorized("bearer challenge without a realm".into()))?;
                let mut request = self.http.get(realm);
                let mut query: Vec<(&str, &str)> = Vec::new();
                if let Some(service) = challenge.params.get("service") {
                    query.push(("service", service));
                }
                let scope = challenge.params.get("scope").map_or(scope, String::as_str);
                query.push(("scope", scope));
                request = request.query(&query);
                if let Some(basic) = &basic {
                    request = request.header(AUTHORIZATION, basic);
                }
                let response = send(request).await.map_err(|e| unanswered(realm, &e))?;
                if !response.status().is_success() {
                    return Err(unauthorized(format!("the token service {realm} answered {}", response.status())));
                }
                let body: serde_json::Value = response.json().await.map_err(|e| transport(realm, &e))?;
                let token = body["token"].as_str().or_else(|| body["access_token"].as_str()).ok_or_else(|| unauthorized(format!("the token service {realm} sent no token")))?;
                format!("Bearer {token}")
            }
            other => return Err(unauthorized(format!("unsupported auth scheme '{other}'"))),
        };
        let header =
            HeaderValue::from_str(&value).map_err(|_| unauthorized("the token is not a valid header value".into()))?;
        if let Ok(mut slot) = self.authorization.lock() {
            *slot = Some(header);
        }
        Ok(())
    }

    /// Fetches a manifest by tag or digest: (bytes, media type, digest). A digest asked for, or
    /// one the registry states, must match the bytes.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<(Vec<u8>, String, String), RegistryError> {
        let what = format!("{}/{repo}:{reference}", self.registry);
        let response = self
            .get(
                &format!("/v2/{repo}/manifests/{reference}"),
                Some(MANIFEST_TYPES),
                &what,
                &format!("repository:{repo}:pull"),
            )
            .await?;
        let media_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let stated = response.headers().get("docker-content-digest").and_then(|h| h.to_str().ok()).map(String::from);
        // Read in chunks so that a hostile registry cannot make picket hold a huge body.
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| transport(&what, &e))?);
            if bytes.len() > MAX_MANIFEST {
                break;
            }
        }
        if bytes.len() > MAX_MANIFEST {
            return Err(RegistryError::Format {
                what,
                message: format!("manifest is over the {MAX_MANIFEST}-byte limit"),
            });
        }
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        for expected in [
            reference.starts_with("sha256:").then(|| reference.to_string()),
            stated.filter(|d| d.starts_with("sha256:")),
        ]
        .into_iter()
        .flatten()
        {
            if expected != actual {
                return Err(RegistryError::Digest { what, expected, actual });
            }
        }
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["mediaType"].as_str().map(String::from))
                .unwrap_or(media_type)
        } else {
            media_type
        };
        Ok((bytes.to_vec(), media_type, actual))
    }

    /// The registry as written.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Every repository in `/v2/_catalog`, following `Link` pages.
    pub async fn catalog(&self, page_size: usize) -> Result<Vec<String>, RegistryError> {
        let what = format!("{}: the catalog", self.registry);
        self.paged(&format!("/v2/_catalog?n={page_size}"), &what, "registry:catalog:*", "repositories").await
    }

    /// Every tag of `repo` in `/v2/REPO/tags/list`, following `Link` pages.
    pub async fn tags(&self, repo: &str, page_size: usize) -> Result<Vec<String>, RegistryError> {
        let what = format!("{}/{repo}: its tags", self.registry);
        self.paged(&format!("/v2/{repo}/tags/list?n={page_size}"), &what, &format!("repository:{repo}:pull"), "tags")
            .await
    }

    /// A list endpoint read page by page: each answer's `field` (null is an empty page), then the
    /// `Link: <next>; rel="next"` header's page. A page that points back at one already read, or
    /// more than `MAX_PAGES`, is an error rather than a loop.
    async fn paged(&self, first: &str, what: &str, scope: &str, field: &str) -> Result<Vec<String>, RegistryError> {
        const MAX_PAGES: usize = 100_000;
        let mut items = Vec::new();
        let mut next = Some(first.to_string());
        let mut seen = std::collections::HashSet::new();
        while let Some(path) = next.take() {
            if !seen.insert(path.clone()) || seen.len() > MAX_PAGES {
                return Err(RegistryError::Format {
                    what: what.to_string(),
                    message: format!("the registry's pages do not end (page {path} again, or over {MAX_PAGES} pages)"),
                });
            }
            let response = self.get(&path, Some("application/json"), what, scope).await?;
            next = response
                .headers()
                .get_all(reqwest::header::LINK)
                .iter()
                .filter_map(|h| h.to_str().ok())
                .find_map(next_link)
                .map(|link| self.relative(&link));
            let mut bytes = Vec::new();
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk.map_err(|e| transport(what, &e))?);
                if bytes.len() > MAX_MANIFEST {
                    return Err(RegistryError::Format {
                        what: what.to_string(),
                        message: format!("a page is over the {MAX_MANIFEST}-byte limit"),
                    });
                }
            }
            let page: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| RegistryError::Format { what: what.to_string(), message: format!("page {path}: {e}") })?;
            match &page[field] {
                serde_json::Value::Null => {}
                serde_json::Value::Array(list) => {
                    for item in list {
                        let name = item.as_str().ok_or_else(|| RegistryError::Format {
                            what: what.to_string(),
                            message: format!("page {path}: '{field}' holds {item}, not a name"),
                        })?;
                        items.push(name.to_string());
                    }
                }
                other => {
                    return Err(RegistryError::Format {
                        what: what.to_string(),
                        message: format!("page {path}: '{field}' is {other}, not a list"),
                    });
                }
            }
        }
        Ok(items)
    }

    /// A `Link` target as a path on this registry (registries send a path; some a whole URL).
    fn relative(&self, link: &str) -> String {
        match link.strip_prefix(&self.base) {
            Some(path) => path.to_string(),
            None if link.starts_with("http://") || link.starts_with("https://") => {
                // Another host's URL is not followed: the path is asked of this registry.
                link.splitn(4, '/').nth(3).map_or_else(|| "/".to_string(), |p| format!("/{p}"))
            }
            None => link.to_string(),
        }
    }

    /// A small blob (an image config) in memory, verified against its digest and size.
    pub async fn blob_bytes(&self, repo: &str, digest: &str, size: u64) -> Result<Vec<u8>, RegistryError> {
        let what = format!("blob {digest} of {}/{repo}", self.registry);
        let response =
            self.get(&format!("/v2/{repo}/blobs/{digest}"), None, &what, &format!("repository:{repo}:pull")).await?;
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| transport(&what, &e))?);
            if bytes.len() as u64 > size {
                return Err(RegistryError::Format {
                    what,
                    message: format!("is larger than the {size} bytes its descriptor says"),
                });
            }
        }
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if digest.starts_with("sha256:") && actual != digest {
            return Err(RegistryError::Digest { what, expected: digest.to_string(), actual });
        }
        Ok(bytes)
    }

    /// Streams a blob into `dest`, verifying digest and size; returns the bytes written.
    pub async fn blob_to_file(
        &self,
        repo: &str,
        digest: &str,
        size: Option<u64>,
        dest: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, RegistryError> {
        let what = format!("blob {digest} of {}/{repo}", self.registry);
        let response =
            self.get(&format!("/v2/{repo}/blobs/{digest}"), None, &what, &format!("repository:{repo}:pull")).await?;
        let io = |source| RegistryError::Io { what: dest.display().to_string(), source };
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| transport(&what, &e))?;
            written += chunk.len() as u64;
            if size.is_some_and(|s| written > s) {
                return Err(RegistryError::Format {
                    what,
                    message: format!("is larger than the {} bytes its descriptor says", size.unwrap_or_default()),
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
            progress(written);
        }
        file.flush().await.map_err(io)?;
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if digest.starts_with("sha256:") && actual != digest {
            return Err(RegistryError::Digest { what, expected: digest.to_string(), actual });
        }
        if let Some(size) = size.filter(|s| *s != written) {
            return Err(RegistryError::Format {
                what,
                message: format!("has {written} bytes, its descriptor says {size}"),
            });
        }
        Ok(written)
    }
}

/// The target of a `Link` header's `rel="next"` entry.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|entry| {
        let (target, params) = entry.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().to_ascii_lowercase();
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

/// 250 ms doubling per attempt (capped at 8 s), or the server's `Retry-After` (capped at 60 s).
fn backoff(attempt: u32, retry_after: Option<u64>) -> Duration {
    match retry_after {
        Some(seconds) => Duration::from_secs(seconds.min(60)),
        None => Duration::from_millis(250u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(8)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_are_read_from_link_headers() {
        assert_eq!(next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(), Some("/v2/_catalog?last=b&n=2"));
        assert_eq!(
            next_link(r#"<https://r/v2/x/tags/list?n=1&last=a>; rel=next"#).as_deref(),
            Some("https://r/v2/x/tags/list?n=1&last=a")
        );
        assert_eq!(next_link(r#"</a>; rel="prev", </b>; rel="next""#).as_deref(), Some("/b"));
        assert_eq!(next_link(r#"</a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        assert_eq!(backoff(1, None), Duration::from_millis(500));
        assert_eq!(backoff(3, None), Duration::from_secs(2));
        assert_eq!(backoff(9, None), Duration::from_secs(8));
        assert_eq!(backoff(1, Some(3)), Duration::from_secs(3));
        assert_eq!(backoff(1, Some(3600)), Duration::from_secs(60));
    }
}

//! `picket db update`: the OSV bucket's per-ecosystem `all.zip` (incrementally through
//! `modified_id.csv` once a full copy is in), the Debian security tracker and the Alpine secdb.
//! Downloads go to a temporary file and are checked before anything is written; the database
//! switches to a new generation only after the whole source is in, so a failed or interrupted
//! update leaves the previous one in use.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Seek, Write};

use futures::StreamExt;

use super::db::{SourceState, VulnDb};
use super::import::{self, ImportError, Loaded};
use super::{Advisory, osv};

pub const OSV_BASE: &str = "https://osv-vulnerabilities.storage.googleapis.com";
pub const DEBIAN_TRACKER_URL: &str = "https://security-tracker.debian.org/tracker/data/json";
pub const ALPINE_SECDB_BASE: &str = "https://secdb.alpinelinux.org";

/// The OSV ecosystems picket's catalogers produce packages for.
pub const DEFAULT_ECOSYSTEMS: [&str; 11] =
    ["Debian", "Alpine", "Red Hat", "PyPI", "npm", "crates.io", "Go", "Maven", "RubyGems", "Packagist", "NuGet"];
pub const DEFAULT_ALPINE_RELEASES: [&str; 5] = ["v3.18", "v3.19", "v3.20", "v3.21", "v3.22"];

/// Above this many changed records an incremental update downloads `all.zip` instead.
const INCREMENTAL_LIMIT: usize = 500;
/// The largest download accepted (the biggest OSV `all.zip` is well below).
const MAX_DOWNLOAD_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// The largest `modified_id.csv` read into memory (the biggest ecosystem's is a few MB).
const MAX_LIST_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct UpdateOptions {
    pub osv_base: String,
    pub ecosystems: Vec<String>,
    /// `None` skips the Debian tracker.
    pub debian_tracker: Option<String>,
    pub alpine_base: Option<String>,
    pub alpine_releases: Vec<String>,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        Self {
            osv_base: OSV_BASE.into(),
            ecosystems: DEFAULT_ECOSYSTEMS.iter().map(|e| e.to_string()).collect(),
            debian_tracker: Some(DEBIAN_TRACKER_URL.into()),
            alpine_base: Some(ALPINE_SECDB_BASE.into()),
            alpine_releases: DEFAULT_ALPINE_RELEASES.iter().map(|r| r.to_string()).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new generation: `how` says full or incremental.
    Updated { how: &'static str, state: Box<SourceState>, skipped: Vec<String> },
    /// The server said nothing changed.
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct SourceResult {
    pub source: String,
    pub result: Result<Outcome, String>,
}

/// Byte progress of one download.
pub type ProgressFn<'a> = &'a (dyn Fn(&str, u64, Option<u64>) + Sync);

fn client() -> Result<reqwest::Client, String> {
    crate::registry::client::http_client().build().map_err(|e| format!("cannot set up HTTP: {e}"))
}

fn error_chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

struct Download {
    file: tempfile::NamedTempFile,
    etag: Option<String>,
    last_modified: Option<String>,
}

/// GETs `url` into a temporary file. `Ok(None)` when the server answers 304 Not Modified.
async fn download(
    http: &reqwest::Client,
    label: &str,
    url: &str,
    previous: Option<&SourceState>,
    progress: ProgressFn<'_>,
) -> Result<Option<Download>, String> {
    let mut request = http.get(url);
    if let Some(state) = previous {
        if let Some(etag) = &state.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &state.last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified);
        }
    }
    let response = crate::registry::client::send(request).await.map_err(|e| format!("{url}: {}", e.describe()))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(format!("{url}: the server answered {status}"));
    }
    let header = |name: reqwest::header::HeaderName| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    };
    let (etag, last_modified) = (header(reqwest::header::ETAG), header(reqwest::header::LAST_MODIFIED));
    let total = response.content_length();
    if total.is_some_and(|t| t > MAX_DOWNLOAD_BYTES) {
        return Err(format!("{url}: {} bytes is more than the {MAX_DOWNLOAD_BYTES} accepted", total.unwrap_or(0)));
    }
    let mut file = tempfile::NamedTempFile::new().map_err(|e| format!("cannot create a temporary file: {e}"))?;
    let mut received = 0u64;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| format!("{url}: download interrupted after {received} bytes: {}", error_chain(&e)))?;
        received += chunk.len() as u64;
        if received > MAX_DOWNLOAD_BYTES {
            return Err(format!("{url}: more than the {MAX_DOWNLOAD_BYTES} bytes accepted"));
        }
        file.write_all(&chunk).map_err(|e| format!("cannot write the download of {url}: {e}"))?;
        progress(label, received, total);
    }
    if let Some(total) = total
        && received != total
    {
        return Err(format!("{url}: download interrupted: {received} of {total} bytes"));
    }
    file.flush().map_err(|e| format!("cannot write the download of {url}: {e}"))?;
    file.as_file_mut().rewind().map_err(|e| format!("cannot read back the download of {url}: {e}"))?;
    Ok(Some(Download { file, etag, last_modified }))
}

/// GETs `url` into memory, refusing more than `limit` bytes. `Ok(None)` when the server
/// answers 404 Not Found.
async fn get_bounded(http: &reqwest::Client, url: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
    let response =
        crate::registry::client::send(http.get(url)).await.map_err(|e| format!("{url}: {}", e.describe()))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(format!("{url}: the server answered {status}"));
    }
    if let Some(total) = response.content_length().filter(|t| *t > limit) {
        return Err(format!("{url}: {total} bytes is more than the {limit} accepted"));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| format!("{url}: download interrupted after {} bytes: {}", body.len(), error_chain(&e)))?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(format!("{url}: more than the {limit} bytes accepted"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Downloads one document (for `picket db import URL`), bounded like every update download.
pub async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let http = client()?;
    let progress = |_: &str, _: u64, _: Option<u64>| {};
    let download = download(&http, url, url, None, &progress).await?.ok_or_else(|| format!("{url}: not modified"))?;
    std::fs::read(download.file.path()).map_err(|e| format!("cannot read back {url}: {e}"))
}

fn store_error(e: ImportError) -> String {
    e.to_string()
}

/// Runs every configured source; one failing source does not stop the others.
pub async fn update(db: &VulnDb<'_>, options: &UpdateOptions, progress: ProgressFn<'_>) -> Vec<SourceResult> {
    let http = match client() {
        Ok(http) => http,
        Err(message) => return vec![SourceResult { source: "http".into(), result: Err(message) }],
    };
    let mut results = Vec::new();
    for ecosystem in &options.ecosystems {
        let source = format!("osv:{ecosystem}");
        let result = update_osv(db, &http, &options.osv_base, ecosystem, &source, progress).await;
        results.push(SourceResult { source, result });
    }
    if let Some(url) = &options.debian_tracker {
        let source = "debian-tracker".to_string();
        let result = update_document(db, &http, &source, std::slice::from_ref(url), progress).await;
        results.push(SourceResult { source, result });
    }
    if let Some(base) = &options.alpine_base {
        for release in &options.alpine_releases {
            let source = format!("alpine-secdb:{release}");
            let urls: Vec<String> = ["main", "community"]
                .iter()
                .map(|repo| format!("{}/{release}/{repo}.json", base.trim_end_matches('/')))
                .collect();
            let result = update_document(db, &http, &source, &urls, progress).await;
            results.push(SourceResult { source, result });
        }
    }
    results
}

fn ecosystem_url(base: &str, ecosystem: &str, file: &str) -> String {
    let escaped = ecosystem.replace(' ', "%20");
    format!("{}/{escaped}/{file}", base.trim_end_matches('/'))
}

async fn update_osv(
    db: &VulnDb<'_>,
    http: &reqwest::Client,
    base: &str,
    ecosystem: &str,
    source: &str,
    progress: ProgressFn<'_>,
) -> Result<Outcome, String> {
    let previous = db.source(source).map_err(|e| e.to_string())?;
    if let Some(state) = previous.as_ref().filter(|s| !s.newest_modified.is_empty()) {
        // `None`: too many changes, or no modified_id.csv: take the full archive.
        if let Some(outcome) = incremental(db, http, base, ecosystem, source, state, progress).await? {
            return Ok(outcome);
        }
    }
    let url = ecosystem_url(base, ecosystem, "all.zip");
    let Some(download) = download(http, source, &url, previous.as_ref(), progress).await? else {
        return Ok(Outcome::Unchanged);
    };
    let loaded = import::load_osv_zip(&url, download.file.reopen().map_err(|e| e.to_string())?).map_err(store_error)?;
    let skipped = loaded.skipped.clone();
    let state =
        import::write_source(db, source, &url, loaded, (download.etag, download.last_modified)).map_err(store_error)?;
    Ok(Outcome::Updated { how: "full", state: Box::new(state), skipped })
}

/// Applies the records changed since the last update. `Ok(None)` asks for a full download.
async fn incremental(
    db: &VulnDb<'_>,
    http: &reqwest::Client,
    base: &str,
    ecosystem: &str,
    source: &str,
    state: &SourceState,
    progress: ProgressFn<'_>,
) -> Result<Option<Outcome>, String> {
    let url = ecosystem_url(base, ecosystem, "modified_id.csv");
    let Some(bytes) = get_bounded(http, &url, MAX_LIST_BYTES).await? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes).map_err(|e| format!("{url}: not UTF-8 text: {e}"))?;
    let Some(candidates) = recently_modified(&url, &text, &state.newest_modified)? else {
        return Ok(None);
    };
    let stored = match candidates.is_empty() {
        true => Vec::new(),
        false => db.source_advisories(source).map_err(|e| e.to_string())?,
    };
    let mut known: HashMap<&str, jiff::Timestamp> = HashMap::new();
    for advisory in &stored {
        if let Ok(modified) = advisory.modified.parse::<jiff::Timestamp>() {
            let entry = known.entry(advisory.id.as_str()).or_insert(modified);
            *entry = (*entry).max(modified);
        }
    }
    let changed = not_yet_applied(candidates, &known);
    if changed.len() > INCREMENTAL_LIMIT {
        return Ok(None);
    }
    if changed.is_empty() {
        return Ok(Some(Outcome::Unchanged));
    }
    let mut fresh = Loaded { kind: "osv-zip", ..Default::default() };
    fresh.newest_modified = state.newest_modified.clone();
    for id in &changed {
        let record_url = ecosystem_url(base, ecosystem, &format!("{id}.json"));
        let bytes = get_bounded(http, &record_url, import::MAX_RECORD_BYTES)
            .await?
            .ok_or_else(|| format!("{record_url}: the server answered {}", reqwest::StatusCode::NOT_FOUND))?;
        progress(source, fresh.records + 1, Some(changed.len() as u64));
        let record = osv::parse(&record_url, &bytes)?;
        if import::is_later(&record.modified, &fresh.newest_modified) {
            fresh.newest_modified = record.modified.clone();
        }
        fresh.records += 1;
        fresh.advisories.extend(super::advisory::from_osv(&record));
    }
    let replaced: BTreeSet<&str> = changed.iter().map(String::as_str).collect();
    let kept: Vec<Advisory> = stored.iter().filter(|a| !replaced.contains(a.id.as_str())).cloned().collect();
    let mut loaded = Loaded {
        kind: "osv-zip",
        records: state.records.max(fresh.records),
        newest_modified: fresh.newest_modified,
        ..Default::default()
    };
    loaded.advisories = kept;
    loaded.advisories.extend(fresh.advisories);
    let state =
        import::write_source(db, source, &state.location, loaded, (state.etag.clone(), state.last_modified.clone()))
            .map_err(store_error)?;
    Ok(Some(Outcome::Updated { how: "incremental", state: Box::new(state), skipped: Vec::new() }))
}

/// How long before the newest `modified` already in the database `modified_id.csv` is read
/// again: records can be published after newer ones (and the file is not guaranteed to be in
/// order), so those modified shortly before are checked against the stored copies.
const INCREMENTAL_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// The `(id, modified)` lines of `modified_id.csv` modified after `newest_modified` less
/// [`INCREMENTAL_MARGIN`], in file order, each id once. Times are compared as instants (text
/// order puts `10:05:00.5Z` before `10:05:00Z`). `None` when `newest_modified` is not a time.
fn recently_modified(
    url: &str,
    text: &str,
    newest_modified: &str,
) -> Result<Option<Vec<(String, jiff::Timestamp)>>, String> {
    let Ok(newest) = newest_modified.parse::<jiff::Timestamp>() else {
        return Ok(None);
    };
    let cutoff = newest.checked_sub(INCREMENTAL_MARGIN).unwrap_or(newest);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((modified, id)) = line.split_once(',') else {
            return Err(format!("{url}:{}: expected 'modified,id', found {line:?}", number + 1));
        };
        let modified: jiff::Timestamp = modified
            .trim()
            .parse()
            .map_err(|e| format!("{url}:{}: '{modified}' is not an RFC 3339 time: {e}", number + 1))?;
        // Every line is read: the file is sorted newest first, but the order is not relied on.
        if modified <= cutoff {
            continue;
        }
        let id = id.trim();
        let id = id.rsplit('/').next().unwrap_or(id).to_string();
        if seen.insert(id.clone()) {
            out.push((id, modified));
        }
    }
    Ok(Some(out))
}

/// The ids of `candidates` the database lacks or holds an older copy of (`known`: the newest
/// stored `modified` per id).
fn not_yet_applied(candidates: Vec<(String, jiff::Timestamp)>, known: &HashMap<&str, jiff::Timestamp>) -> Vec<String> {
    candidates
        .into_iter()
        .filter(|(id, modified)| known.get(id.as_str()).is_none_or(|stored| stored < modified))
        .map(|(id, _)| id)
        .collect()
}

/// A source made of whole JSON documents (the Debian tracker, Alpine secdb repositories).
async fn update_document(
    db: &VulnDb<'_>,
    http: &reqwest::Client,
    source: &str,
    urls: &[String],
    progress: ProgressFn<'_>,
) -> Result<Outcome, String> {
    let previous = db.source(source).map_err(|e| e.to_string())?;
    // Validators only make sense for a single document.
    let conditional = if urls.len() == 1 { previous.as_ref() } else { None };
    let mut combined = Loaded::default();
    let mut validators = (None, None);
    for url in urls {
        let Some(download) = download(http, source, url, conditional, progress).await? else {
            return Ok(Outcome::Unchanged);
        };
        let bytes = std::fs::read(download.file.path()).map_err(|e| format!("cannot read back {url}: {e}"))?;
        let loaded = import::load_bytes(url, bytes).map_err(store_error)?;
        combined.kind = loaded.kind;
        combined.records += loaded.records;
        combined.advisories.extend(loaded.advisories);
        validators = (download.etag, download.last_modified);
    }
    let state = import::write_source(db, source, &urls.join(" "), combined, validators).map_err(store_error)?;
    Ok(Outcome::Updated { how: "full", state: Box::new(state), skipped: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn modified_ids_are_compared_as_times_with_a_margin() {
        let csv = "2026-01-02T10:05:00Z,PYSEC-1\n\
                   2026-01-02T10:00:00Z,PYSEC-OLD\n\
                   2026-01-02T10:05:00.5Z,PyPI/PYSEC-2\n\
                   2026-01-02T09:00:00Z,PYSEC-LATE\n\
                   2026-01-01T09:00:00Z,PYSEC-BEYOND\n\
                   2026-01-02T10:06:00Z,PYSEC-2\n";
        let found = recently_modified("m.csv", csv, "2026-01-02T10:05:00Z").unwrap().unwrap();
        let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["PYSEC-1", "PYSEC-OLD", "PYSEC-2", "PYSEC-LATE"], "a day back, each id once");
        let known =
            HashMap::from([("PYSEC-1", time("2026-01-02T10:05:00Z")), ("PYSEC-OLD", time("2026-01-02T09:00:00Z"))]);
        assert_eq!(not_yet_applied(found, &known), ["PYSEC-OLD", "PYSEC-2", "PYSEC-LATE"]);

        assert!(recently_modified("m.csv", csv, "").unwrap().is_none(), "no time: full download");
        let err = recently_modified("m.csv", "yesterday,PYSEC-1\n", "2026-01-02T10:05:00Z").unwrap_err();
        assert!(err.contains("m.csv:1") && err.contains("yesterday"), "{err}");
    }

    /// Serves `body` once to one request, without a Content-Length when `length` is false.
    fn serve_once(body: Vec<u8>, length: bool) -> String {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/modified_id.csv", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let header = match length {
                true => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()),
                false => "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string(),
            };
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body);
        });
        url
    }

    #[test]
    fn bounded_gets_refuse_bodies_over_the_limit_naming_the_url() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let http = client().unwrap();
        for length in [true, false] {
            let url = serve_once(vec![b'x'; 3 * 1024 * 1024], length);
            let err = runtime.block_on(get_bounded(&http, &url, 1024 * 1024)).unwrap_err();
            assert!(err.contains(&url) && err.contains("more than the 1048576"), "{err}");
            let url = serve_once(b"2026-01-01T00:00:00Z,PYSEC-1\n".to_vec(), length);
            let body = runtime.block_on(get_bounded(&http, &url, 1024 * 1024)).unwrap().unwrap();
            assert!(body.starts_with(b"2026"));
        }
    }

    #[test]
    fn the_newest_modified_is_the_latest_instant() {
        assert!(import::is_later("2026-01-02T10:05:00.5Z", "2026-01-02T10:05:00Z"));
        assert!(!import::is_later("2026-01-02T10:05:00Z", "2026-01-02T10:05:00.5Z"));
        assert!(import::is_later("2026-01-02T10:05:00Z", ""));
        assert!(!import::is_later("garbage", "2026-01-02T10:05:00Z"));
    }
}

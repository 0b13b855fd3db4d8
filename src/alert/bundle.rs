//! The incident bundle: one tar.gz an incident responder hands on, about one alert. It holds the
//! alert in full (`alert.json`: the event, the process ancestry, the container, the triage
//! record, the image's findings), every kept alert of the same container within a window around
//! it (`alerts.json`), the process tree (`process-tree.txt`), the container's image SBOM and
//! findings from its last stored scan (`sbom.json`, `findings.json`), any packet captures given
//! (`captures/`), a Markdown timeline (`timeline.md`) and `manifest.json` with the SHA-256 and
//! size of every other file. What could not be included is said in the timeline.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::detail::{AlertDetail, ancestry_tree};
use super::{AlertLog, StoredAlert, time};
use crate::model::FindingKind;
use crate::store::Store;

#[derive(Debug, Clone, Serialize)]
pub struct ManifestEntry {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub picket: String,
    pub alert: String,
    pub created: String,
    pub window_ms: u64,
    pub files: Vec<ManifestEntry>,
    /// What was not included, and why.
    pub missing: Vec<String>,
}

/// Writes the bundle for the alert or fold `id` to `out` (which must not exist).
pub fn write_bundle(
    store: &Store,
    id: &str,
    window_ms: u64,
    captures: &[PathBuf],
    out: &Path,
) -> Result<Manifest, String> {
    let now = super::now_unix_ms();
    let detail = super::detail::find(store, id, now)?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut missing = Vec::new();
    files.push(("alert.json".into(), json(&detail)?));
    let around = alerts_around(store, &detail.alert, window_ms)?;
    files.push(("alerts.json".into(), json(&around)?));
    let tree = ancestry_tree(&detail.alert);
    files.push(("process-tree.txt".into(), (tree.join("\n") + "\n").into_bytes()));
    match detail.alert.container.as_ref().and_then(|c| c.image.clone()) {
        None => missing.push("sbom.json, findings.json: the alert is from the host, not a container".to_string()),
        Some(reference) => match crate::scan::stored::find_reference(store, &reference).map_err(|e| e.to_string())? {
            None => missing.push(format!("sbom.json, findings.json: image {reference} was never scanned here")),
            Some((_, sbom, _)) => {
                files.push(("sbom.json".into(), json(&sbom)?));
                match crate::vulndb::VulnDb::open(store)
                    .map_err(|e| e.to_string())
                    .and_then(|db| crate::vulndb::matcher::match_sbom(&db, &sbom).map_err(|e| e.to_string()))
                {
                    Ok(matched) => {
                        let findings: Vec<_> = matched
                            .findings
                            .into_iter()
                            .filter(|f| matches!(f.kind, FindingKind::Vulnerability | FindingKind::Advisory))
                            .collect();
                        files.push(("findings.json".into(), json(&findings)?));
                    }
                    Err(e) => missing.push(format!("findings.json: {e}")),
                }
            }
        },
    }
    for capture in captures {
        let bytes = std::fs::read(capture).map_err(|e| format!("cannot read {}: {e}", capture.display()))?;
        let name =
            capture.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "capture.pcap".into());
        files.push((format!("captures/{name}"), bytes));
    }
    missing.push("raw events: agents send alerts to the console, not every event; the alerts of the container around the time are in alerts.json".into());
    files.push(("timeline.md".into(), timeline(&detail, &around, window_ms, captures, &missing).into_bytes()));
    let manifest = Manifest {
        picket: env!("CARGO_PKG_VERSION").into(),
        alert: detail.alert.alert.id.clone(),
        created: time(now),
        window_ms,
        files: files
            .iter()
            .map(|(path, bytes)| ManifestEntry {
                path: path.clone(),
                sha256: Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect(),
                bytes: bytes.len() as u64,
            })
            .collect(),
        missing,
    };
    files.push(("manifest.json".into(), json(&manifest)?));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut archive = tar::Builder::new(GzEncoder::new(file, Compression::default()));
    let root = format!("incident-{}", sanitize(&detail.alert.alert.id));
    for (path, bytes) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(now / 1000);
        archive
            .append_data(&mut header, format!("{root}/{path}"), bytes.as_slice())
            .map_err(|e| format!("writing {}: {e}", out.display()))?;
    }
    let encoder = archive.into_inner().map_err(|e| format!("writing {}: {e}", out.display()))?;
    let mut file = encoder.finish().map_err(|e| format!("writing {}: {e}", out.display()))?;
    file.flush().map_err(|e| format!("writing {}: {e}", out.display()))?;
    Ok(manifest)
}

/// Every kept alert of the same container (or host and node) within `window_ms` of `alert`.
fn alerts_around(store: &Store, alert: &StoredAlert, window_ms: u64) -> Result<Vec<StoredAlert>, String> {
    let at = alert.alert.at_unix_ms;
    let same = |other: &StoredAlert| match (&alert.container, &other.container) {
        (Some(a), Some(b)) => a.id == b.id,
        (None, None) => alert.node == other.node,
        _ => false,
    };
    let mut around: Vec<StoredAlert> = AlertLog::open(store)
        .and_then(|log| log.newest(super::detail::SEARCHED))
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|a| same(a) && a.alert.at_unix_ms.abs_diff(at) <= window_ms)
        .collect();
    around.sort_by_key(|a| a.alert.at_unix_ms);
    Ok(around)
}

fn timeline(
    detail: &AlertDetail,
    around: &[StoredAlert],
    window_ms: u64,
    captures: &[PathBuf],
    missing: &[String],
) -> String {
    let alert = &detail.alert.alert;
    let mut md = format!(
        "# Incident: {} — {}\n\n- alert `{}` ({}), {} on node `{}`\n- container: {}\n- fold `{}`: {} events, first {}, last {}\n\n",
        alert.rule,
        alert.title,
        alert.id,
        alert.severity,
        time(alert.at_unix_ms),
        detail.alert.node,
        detail.fold.container,
        detail.fold.id,
        detail.fold.count,
        time(detail.fold.first_ms),
        time(detail.fold.last_ms)
    );
    md.push_str(&format!("## Timeline (±{} min, this container)\n\n| time (UTC) | severity | rule | what | action |\n|---|---|---|---|---|\n", window_ms / 60_000));
    for a in around {
        let event = &a.alert.event;
        let what = match event.kind.as_str() {
            "open" => event.path.clone(),
            "connect" | "send" => event.remote.clone(),
            _ => format!("{} {}", event.exe, event.args.join(" ")),
        };
        let action = a.alert.action.as_str();
        let marker = if a.alert.id == alert.id { " **(this alert)**" } else { "" };
        md.push_str(&format!(
            "| {} | {} | {}{marker} | `{}` | {action} |\n",
            time(a.alert.at_unix_ms),
            a.alert.severity,
            a.alert.rule,
            what.replace('|', "\\|").replace('`', "'")
        ));
    }
    md.push_str("\n## Process tree\n\n```\n");
    md.push_str(&ancestry_tree(&detail.alert).join("\n"));
    md.push_str("\n```\n\n## Why\n\n");
    md.push_str(&alert.why);
    md.push('\n');
    if !captures.is_empty() {
        md.push_str("\n## Captures\n\n");
        for c in captures {
            md.push_str(&format!("- `captures/{}`\n", c.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
        }
    }
    if !missing.is_empty() {
        md.push_str("\n## Not included\n\n");
        for m in missing {
            md.push_str(&format!("- {m}\n"));
        }
    }
    md.push_str("\nEvery file's SHA-256 is in `manifest.json`.\n");
    md
}

fn sanitize(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn json(value: &impl Serialize) -> Result<Vec<u8>, String> {
    serde_json::to_vec_pretty(value).map_err(|e| format!("encoding the bundle: {e}"))
}

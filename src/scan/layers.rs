//! Applies one layer (a tar stream, plain, gzip or zstd) to the virtual filesystem, refusing
//! hostile entries: paths that climb out (`..`) or are absolute, oversized entries, and
//! expansions past the limits. Device files and FIFOs are counted and skipped.

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path};
use std::sync::Arc;

use super::ScanError;
use super::limits::{Limits, RATIO_FLOOR};
use super::secrets::SecretCollector;
use super::vfs::{Node, NodeKind, VirtualFs};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub entries: u64,
    pub expanded_bytes: u64,
    pub compressed_bytes: u64,
    pub skipped_special: u64,
    /// Files a cataloger wanted that were over `max_read_bytes` (not read).
    pub skipped_large: Vec<String>,
}

/// Counts bytes through a reader and fails once a bound is passed, so a bomb stops mid-stream.
struct Bounded<R> {
    inner: R,
    read: u64,
    max: u64,
    /// Compressed bytes read so far, for the ratio check (shared with the raw side).
    compressed: Arc<std::sync::atomic::AtomicU64>,
    max_ratio: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(io::Error::other(LimitHit(format!("expands past {} bytes", self.max))));
        }
        let compressed = self.compressed.load(std::sync::atomic::Ordering::Relaxed).max(1);
        if self.read > RATIO_FLOOR && self.read / compressed > self.max_ratio {
            return Err(io::Error::other(LimitHit(format!(
                "expands {}× its compressed size (limit {}×): a decompression bomb",
                self.read / compressed,
                self.max_ratio
            ))));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct LimitHit(String);

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitHit {}

struct Counting<R> {
    inner: R,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Normalises a tar entry path, refusing absolute paths and any `..`.
fn entry_path(raw: &Path) -> Result<String, String> {
    let mut parts = Vec::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().ok_or("path is not UTF-8")?.to_string()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err("absolute path".into()),
            Component::ParentDir => return Err("path climbs out with '..'".into()),
        }
    }
    Ok(parts.join("/"))
}

/// What the caller needs to identify a layer in messages and records.
pub struct LayerInput<'a> {
    /// The layer's identity in records (its diff id).
    pub id: String,
    /// How to name it in errors (`layer 2 (sha256:…) of IMAGE`).
    pub label: &'a str,
}

/// Applies `blob` (compressed or not) as the next layer of `fs`. `wants` says which files to keep
/// the contents of. `image_budget` is what remains of the image's expansion limit.
pub fn apply_layer<R: Read>(
    fs: &mut VirtualFs,
    input: LayerInput<'_>,
    blob: R,
    wants: &dyn Fn(&str) -> bool,
    limits: &Limits,
    image_budget: u64,
) -> Result<LayerStats, ScanError> {
    apply_layer_scanning(fs, input, blob, wants, limits, image_budget, None)
}

/// [`apply_layer`], also passing each regular file the secret scanner wants through `secrets` as
/// it streams past: a file a later layer deletes is still in the image. Hardlinks are not scanned
/// again (their target was).
pub fn apply_layer_scanning<R: Read>(
    fs: &mut VirtualFs,
    input: LayerInput<'_>,
    blob: R,
    wants: &dyn Fn(&str) -> bool,
    limits: &Limits,
    image_budget: u64,
    mut secrets: Option<&mut SecretCollector>,
) -> Result<LayerStats, ScanError> {
    let label = input.label;
    let layer_id = input.id.clone();
    let layer = fs.begin_layer(input.id);
    let compressed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut raw = BufReader::with_capacity(256 * 1024, Counting { inner: blob, count: Arc::clone(&compressed) });
    let magic = raw.fill_buf().map_err(|e| ScanError::io(label, e))?;
    let decoder: Box<dyn Read + '_> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(&mut raw))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(&mut raw).map_err(|e| ScanError::io(label, e))?)
    } else {
        Box::new(&mut raw)
    };
    let bounded = Bounded {
        inner: decoder,
        read: 0,
        max: limits.max_layer_bytes.min(image_budget),
        compressed: Arc::clone(&compressed),
        max_ratio: limits.max_ratio,
    };
    let mut archive = tar::Archive::new(bounded);
    let mut stats = LayerStats::default();
    let mut scratch = Vec::new();
    let entries = super::tarball::members(&mut archive).map_err(|e| layer_error(label, e))?;
    for member in entries {
        let member = member.map_err(|e| layer_error(label, e))?;
        let link_target = member.link().map(std::path::Path::to_path_buf);
        let raw_path = member.path().to_path_buf();
        let mut entry = member.entry;
        stats.entries += 1;
        if stats.entries > limits.max_entries {
            return Err(ScanError::Limit {
                what: label.to_string(),
                message: format!("has more than {} entries", limits.max_entries),
            });
        }
        let hostile = |reason: String| ScanError::Hostile {
            what: label.to_string(),
            entry: raw_path.display().to_string(),
            reason,
        };
        let path = entry_path(&raw_path).map_err(hostile)?;
        let size = entry.header().size().map_err(|e| layer_error(label, e))?;
        if size > limits.max_entry_bytes {
            return Err(hostile(format!("entry of {size} bytes is over the {}-byte limit", limits.max_entry_bytes)));
        }
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (parent, name),
            None => ("", path.as_str()),
        };
        if name == ".wh..wh..opq" {
            fs.opaque(parent, layer);
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let target = if parent.is_empty() { hidden.to_string() } else { format!("{parent}/{hidden}") };
            fs.whiteout(&target, layer);
            continue;
        }
        if path.is_empty() {
            continue;
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        let kind = entry.header().entry_type();
        let node = match kind {
            tar::EntryType::Directory => Node { kind: NodeKind::Dir, layer, content: None, extract: None },
            tar::EntryType::Symlink => {
                let target = link_target.unwrap_or_default();
                let target = target.to_str().ok_or_else(|| hostile("link target is not UTF-8".into()))?.to_string();
                Node { kind: NodeKind::Symlink { target }, layer, content: None, extract: None }
            }
            tar::EntryType::Link => {
                let target = link_target.unwrap_or_default();
                let target = entry_path(&target).map_err(|reason| hostile(format!("hardlink target: {reason}")))?;
                match fs.get(&target) {
                    Some(existing) if matches!(existing.kind, NodeKind::File { .. }) => {
                        Node { layer, ..existing.clone() }
                    }
                    // A hardlink to nothing (or to a directory) links nothing; tar would fail too.
                    _ => continue,
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut content = None;
                let mut extract = None;
                let mut secrets = secrets.as_deref_mut().filter(|s| s.wants(&path, size));
                if wants(&path) {
                    if size > limits.max_read_bytes {
                        stats.skipped_large.push(path.clone());
                    } else if fs.kept_bytes() + size > limits.max_kept_bytes {
                        return Err(ScanError::Limit { what: label.to_string(), message: kept_over(limits, &path) });
                    } else {
                        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                        entry.read_to_end(&mut buf).map_err(|e| layer_error(label, e))?;
                        if let Some(secrets) = secrets.take() {
                            secrets.scan_file(Some(&layer_id), &path, &buf);
                        }
                        content = Some(Arc::new(buf));
                    }
                } else if mode & 0o111 != 0 && (64..=limits.max_read_bytes).contains(&size) {
                    // Skipping an entry reads it anyway; reading it into the scratch buffer
                    // instead lets Go and Rust binaries be recognised at almost no extra cost.
                    scratch.clear();
                    entry.read_to_end(&mut scratch).map_err(|e| layer_error(label, e))?;
                    extract = super::binary::extract(&scratch).map(Arc::new);
                    if let Some(secrets) = secrets.take() {
                        secrets.scan_file(Some(&layer_id), &path, &scratch);
                    }
                }
                if let Some(secrets) = secrets {
                    secrets
                        .read_and_scan(Some(&layer_id), &path, &mut entry, &mut scratch)
                        .map_err(|e| layer_error(label, e))?;
                }
                Node { kind: NodeKind::File { size, mode }, layer, content, extract }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                stats.skipped_special += 1;
                continue;
            }
            _ => continue,
        };
        fs.insert(path, node);
    }
    // Read what follows the end-of-archive marker, so a verifying reader underneath sees EOF.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| layer_error(label, e))?;
    stats.expanded_bytes = rest.read;
    drop(rest);
    io::copy(&mut raw, &mut io::sink()).map_err(|e| layer_error(label, e))?;
    stats.compressed_bytes = compressed.load(std::sync::atomic::Ordering::Relaxed);
    Ok(stats)
}

/// The error of a scan that would keep more file contents than `max_kept_bytes`.
pub fn kept_over(limits: &Limits, path: &str) -> String {
    format!(
        "keeps more than {} MiB of files for the catalogers at once (at {path}); raise scan.limits.maxKeptBytes in the config to scan it",
        limits.max_kept_bytes / (1024 * 1024)
    )
}

fn layer_error(label: &str, err: io::Error) -> ScanError {
    if let Some(hit) = err.get_ref().and_then(|e| e.downcast_ref::<LimitHit>()) {
        return ScanError::Limit { what: label.to_string(), message: hit.0.clone() };
    }
    if let Some(refused) = err.get_ref().and_then(|e| e.downcast_ref::<super::tarball::TarRefused>()) {
        return ScanError::Limit { what: label.to_string(), message: format!("holds {}", refused.0) };
    }
    if err.kind() == io::ErrorKind::InvalidData && err.to_string().contains("digest") {
        return ScanError::Format { what: label.to_string(), message: err.to_string() };
    }
    ScanError::io(label, err)
}

#[cfg(test)]
mod tests;

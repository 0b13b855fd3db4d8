//! The whole database as one file for air-gapped sites: `picket db export FILE` writes every
//! source (its state and its active advisories) into a zstd-compressed tar with a manifest of
//! SHA-256 hashes; `picket db import FILE` checks every hash before it writes anything and then
//! makes all the sources active in one write, so a damaged or altered file changes nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Advisory, SourceState, VulnDb};
use crate::store::StoreError;

pub const KIND: &str = "picket-vulndb-export";
pub const VERSION: u32 = 1;
const ROOT: &str = "picket-db/";
const MANIFEST: &str = "picket-db/manifest.json";
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// A manifest is a few kilobytes per source; anything near this is not one.
const MANIFEST_LIMIT: u64 = 16 << 20;
/// One advisory per line; the largest real OSV record is well under a megabyte.
const LINE_LIMIT: u64 = 16 << 20;
/// What an export may expand to: the whole of OSV with every distribution feed is a few GiB.
const EXPANDED_LIMIT: u64 = 64 << 30;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {detail}", path = .path.display())]
    Input { path: PathBuf, detail: String },
    #[error("{path}: {source}", path = .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the manifest says about the export and each file in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub kind: String,
    pub version: u32,
    /// RFC 3339 time of the export.
    pub created: String,
    /// The picket version that wrote it.
    pub picket: String,
    /// The advisory layout of the lines (`db::ADVISORY_FORMAT`).
    pub advisory_format: u32,
    pub sources: Vec<ExportedSource>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedSource {
    pub state: SourceState,
    /// Its advisories, one JSON object per line, inside the tar.
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub advisories: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub path: PathBuf,
    pub sources: usize,
    pub advisories: u64,
    pub bytes: u64,
    /// SHA-256 of the whole file, also written to `FILE.sha256` for `sha256sum -c`.
    pub sha256: String,
}

/// Is this file an export (a zstd stream; no other importable kind is one)?
pub fn is_export(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == ZSTD_MAGIC
}

/// Writes every source of `db` to `path` (through a temporary file: a failed export leaves no
/// half file under the name).
pub fn export(db: &VulnDb<'_>, path: &Path) -> Result<ExportSummary, BundleError> {
    let io = |source| BundleError::Io { path: path.to_path_buf(), source };
    let sources = db.sources()?;
    if sources.is_empty() {
        return Err(BundleError::Input {
            path: path.to_path_buf(),
            detail: "the database is empty: nothing to export (picket db update or import first)".into(),
        });
    }
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut partial = tempfile::Builder::new().prefix(".picket-db-export").tempfile_in(directory).map_err(io)?;
    let encoder = zstd::Encoder::new(BufWriter::new(partial.as_file_mut()), 3).map_err(io)?;
    let mut tar = tar::Builder::new(encoder);
    let mut exported = Vec::new();
    let mut total = 0;
    for (index, state) in sources.into_iter().enumerate() {
        // Each source's lines go to a scratch file first: a tar entry needs its size up front.
        let mut scratch = tempfile::tempfile_in(directory).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let advisories = {
            let mut out = BufWriter::new(&mut scratch);
            db.each_source_advisory(&state.name, |advisory: &Advisory| -> Result<(), BundleError> {
                let mut line = serde_json::to_vec(advisory)
                    .map_err(|e| BundleError::Input { path: path.to_path_buf(), detail: e.to_string() })?;
                line.push(b'\n');
                hasher.update(&line);
                bytes += line.len() as u64;
                out.write_all(&line).map_err(io)
            })?
        };
        total += advisories;
        scratch.rewind().map_err(io)?;
        let file = format!("{ROOT}sources/{index:04}.jsonl");
        append(&mut tar, &file, bytes, &mut scratch).map_err(io)?;
        exported.push(ExportedSource { state, file, sha256: hex::encode(hasher.finalize()), bytes, advisories });
    }
    let manifest = Manifest {
        kind: KIND.into(),
        version: VERSION,
        created: jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_else(|_| jiff::Timestamp::now())
            .to_string(),
        picket: env!("CARGO_PKG_VERSION").into(),
        advisory_format: super::db::ADVISORY_FORMAT,
        sources: exported,
    };
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BundleError::Input { path: path.to_path_buf(), detail: e.to_string() })?;
    append(&mut tar, MANIFEST, text.len() as u64, &mut text.as_slice()).map_err(io)?;
    let encoder = tar.into_inner().map_err(io)?;
    encoder.finish().map_err(io)?.flush().map_err(io)?;
    partial.as_file().sync_all().map_err(io)?;
    partial.persist(path).map_err(|e| io(e.error))?;
    let (sha256, bytes) = hash_file(path).map_err(io)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut sums = path.as_os_str().to_owned();
    sums.push(".sha256");
    std::fs::write(PathBuf::from(sums), format!("{sha256}  {name}\n")).map_err(io)?;
    Ok(ExportSummary { path: path.to_path_buf(), sources: manifest.sources.len(), advisories: total, bytes, sha256 })
}

fn append(tar: &mut tar::Builder<impl Write>, name: &str, size: u64, data: &mut impl Read) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mtime(0);
    tar.append_data(&mut header, name, data)
}

fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    hash_reader(&mut File::open(path)?)
}

fn hash_reader(reader: &mut impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok((hex::encode(hasher.finalize()), bytes)),
            Ok(n) => {
                hasher.update(&buffer[..n]);
                bytes += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads an export whole: every hash is checked first, then every source is written and made
/// active in one write. Sources of this database that the export does not hold are kept.
pub fn import(db: &VulnDb<'_>, path: &Path) -> Result<Vec<SourceState>, BundleError> {
    let manifest = verify(path)?;
    let bad = |detail: String| BundleError::Input { path: path.to_path_buf(), detail };
    let io = |source| BundleError::Io { path: path.to_path_buf(), source };
    let by_file: BTreeMap<&str, &ExportedSource> = manifest.sources.iter().map(|s| (s.file.as_str(), s)).collect();
    let mut writers = Vec::new();
    let mut archive = open_archive(path).map_err(io)?;
    for entry in archive.entries().map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let Some(source) = by_file.get(name.as_str()) else { continue };
        let mut writer = db.writer(&source.state.name)?;
        let mut lines = BufReader::new(entry);
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            line.clear();
            let read = (&mut lines).take(LINE_LIMIT).read_until(b'\n', &mut line).map_err(io)?;
            if read == 0 {
                break;
            }
            number += 1;
            if !line.ends_with(b"\n") && read as u64 == LINE_LIMIT {
                return Err(bad(format!("{name}:{number}: a line longer than {LINE_LIMIT} bytes")));
            }
            let advisory: Advisory =
                serde_json::from_slice(&line).map_err(|e| bad(format!("{name}:{number}: not an advisory: {e}")))?;
            writer.add(advisory)?;
        }
        if writer.written() != source.advisories {
            return Err(bad(format!(
                "{name}: {} advisories, the manifest says {}",
                writer.written(),
                source.advisories
            )));
        }
        writers.push((writer, source.state.clone()));
    }
    Ok(db.commit_all(writers)?)
}

fn open_archive(path: &Path) -> std::io::Result<tar::Archive<impl Read>> {
    let decoder = zstd::Decoder::new(File::open(path)?)?;
    Ok(tar::Archive::new(decoder.take(EXPANDED_LIMIT)))
}

/// Reads the file once and checks it against its manifest: the kind and layout, every listed
/// file present with its size and SHA-256, nothing unlisted, nothing but regular files.
pub fn verify(path: &Path) -> Result<Manifest, BundleError> {
    let bad = |detail: String| BundleError::Input { path: path.to_path_buf(), detail };
    let io = |source: std::io::Error| bad(format!("not a readable picket database export: {source}"));
    let mut archive = open_archive(path).map_err(io)?;
    let mut seen: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut manifest_text = None;
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let name = entry.path().map_err(io)?.to_string_lossy().into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(format!("{name}: not a regular file; an export holds only its manifest and sources")));
        }
        if seen.contains_key(&name) || (name == MANIFEST && manifest_text.is_some()) {
            return Err(bad(format!("{name}: appears twice")));
        }
        if name == MANIFEST {
            let mut text = Vec::new();
            (&mut entry).take(MANIFEST_LIMIT).read_to_end(&mut text).map_err(io)?;
            manifest_text = Some(text);
            continue;
        }
        seen.insert(name, hash_reader(&mut entry).map_err(io)?);
    }
    let text = manifest_text.ok_or_else(|| bad(format!("no {MANIFEST}: not a picket database export")))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| bad(format!("{MANIFEST}: not a picket export manifest: {e}")))?;
    if manifest.kind != KIND || manifest.version != VERSION {
        return Err(bad(format!(
            "{MANIFEST}: kind {} version {}, this picket reads {KIND} version {VERSION}",
            manifest.kind, manifest.version
        )));
    }
    if manifest.advisory_format != super::db::ADVISORY_FORMAT {
        return Err(bad(format!(
            "written by picket {} with advisory format {}; this picket reads format {}: export it again with this version",
            manifest.picket,
            manifest.advisory_format,
            super::db::ADVISORY_FORMAT
        )));
    }
    let mut names = std::collections::BTreeSet::new();
    for source in &manifest.sources {
        if !names.insert(source.state.name.as_str()) {
            return Err(bad(format!("{MANIFEST}: source {} listed twice", source.state.name)));
        }
        let Some((sha256, bytes)) = seen.remove(&source.file) else {
            return Err(bad(format!("{}: listed in the manifest for {}, missing", source.file, source.state.name)));
        };
        if sha256 != source.sha256 || bytes != source.bytes {
            return Err(bad(format!(
                "{}: SHA-256 {sha256} ({bytes} bytes), the manifest says {} ({} bytes): the file was damaged or altered; nothing imported",
                source.file, source.sha256, source.bytes
            )));
        }
    }
    if let Some(extra) = seen.keys().next() {
        return Err(bad(format!("{extra}: not listed in the manifest; nothing imported")));
    }
    Ok(manifest)
}

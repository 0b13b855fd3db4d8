//! Reading advisory sources from files: a directory of OSV records, an OSV `all.zip`, a Debian
//! security tracker JSON, an Alpine secdb document. Each becomes one source in the database.

use std::io::Read;
use std::path::Path;

use super::db::{SourceState, VulnDb};
use super::{Advisory, alpine, debian, osv};

/// Bounds for untrusted archives: one record, and the whole expanded archive.
pub(super) const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;
const MAX_ARCHIVE_EXPANDED_BYTES: u64 = 4 * 1024 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What a source held, before it is written.
#[derive(Debug, Default)]
pub struct Loaded {
    pub kind: &'static str,
    pub advisories: Vec<Advisory>,
    pub records: u64,
    pub newest_modified: String,
    /// Records that could not be read, each naming the entry.
    pub skipped: Vec<String>,
}

impl Loaded {
    fn add_osv(&mut self, name: &str, bytes: &[u8]) {
        match osv::parse(name, bytes) {
            Ok(record) => {
                self.records += 1;
                if is_later(&record.modified, &self.newest_modified) {
                    self.newest_modified = record.modified.clone();
                }
                self.advisories.extend(super::advisory::from_osv(&record));
            }
            Err(message) => self.skipped.push(message),
        }
    }
}

/// Whether RFC 3339 time `candidate` is later than `than` (empty: none yet). Compared as
/// instants, so `10:05:00.5Z` is later than `10:05:00Z`; text that is not a timestamp only
/// replaces nothing.
pub(super) fn is_later(candidate: &str, than: &str) -> bool {
    match (candidate.parse::<jiff::Timestamp>(), than.parse::<jiff::Timestamp>()) {
        (Ok(candidate), Ok(than)) => candidate > than,
        (Ok(_), Err(_)) => true,
        (Err(_), Ok(_)) => false,
        (Err(_), Err(_)) => candidate > than,
    }
}

/// Reads OSV records from a zip laid out like the OSV bucket's `all.zip`.
pub fn load_osv_zip(name: &str, reader: impl Read + std::io::Seek) -> Result<Loaded, ImportError> {
    load_osv_zip_bounded(name, reader, MAX_RECORD_BYTES, MAX_ARCHIVE_EXPANDED_BYTES)
}

/// [`load_osv_zip`] with its bounds: per record, and for every byte decompressed (records
/// skipped as too large included).
fn load_osv_zip_bounded(
    name: &str,
    reader: impl Read + std::io::Seek,
    max_record: u64,
    max_expanded: u64,
) -> Result<Loaded, ImportError> {
    let mut archive =
        zip::ZipArchive::new(reader).map_err(|e| ImportError::Input(format!("{name}: not a zip archive: {e}")))?;
    let mut loaded = Loaded { kind: "osv-zip", ..Default::default() };
    let mut expanded = 0u64;
    let mut buffer = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| ImportError::Input(format!("{name}: entry {index} cannot be read: {e}")))?;
        let entry_name = match entry.name() {
            Ok(entry_name) => format!("{name}:{entry_name}"),
            Err(e) => {
                loaded.skipped.push(format!("{name}: entry {index} has an unreadable name: {e}"));
                continue;
            }
        };
        if !entry.is_file() || !entry_name.ends_with(".json") {
            continue;
        }
        buffer.clear();
        let read = (&mut entry)
            .take(max_record + 1)
            .read_to_end(&mut buffer)
            .map_err(|e| ImportError::Input(format!("{entry_name}: {e}")))?;
        // Every byte decompressed counts, also those of a record then skipped as too large.
        expanded += read as u64;
        if expanded > max_expanded {
            return Err(ImportError::Input(format!("{name}: expands past {max_expanded} bytes")));
        }
        if read as u64 > max_record {
            loaded.skipped.push(format!("{entry_name}: record larger than {max_record} bytes"));
            continue;
        }
        loaded.add_osv(&entry_name, &buffer);
    }
    Ok(loaded)
}

/// Reads every `*.json` OSV record under a directory.
pub fn load_osv_dir(dir: &Path) -> Result<Loaded, ImportError> {
    let mut loaded = Loaded { kind: "osv-dir", ..Default::default() };
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| ImportError::Input(format!("{}: {e}", dir.display())))?;
        let path = entry.path();
        if !entry.file_type().is_file() || path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = read_bounded(path)?;
        loaded.add_osv(&path.display().to_string(), &bytes);
    }
    Ok(loaded)
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, ImportError> {
    let file = std::fs::File::open(path).map_err(|e| ImportError::Input(format!("{}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_RECORD_BYTES * 64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ImportError::Input(format!("{}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_RECORD_BYTES * 64 {
        return Err(ImportError::Input(format!("{}: larger than {} bytes", path.display(), MAX_RECORD_BYTES * 64)));
    }
    Ok(bytes)
}

/// Reads one file whose kind is found from its content: zip, OSV record, Debian tracker JSON or
/// Alpine secdb (JSON or YAML).
pub fn load_file(path: &Path) -> Result<Loaded, ImportError> {
    let name = path.display().to_string();
    let bytes = read_bounded(path)?;
    load_bytes(&name, bytes)
}

pub fn load_bytes(name: &str, bytes: Vec<u8>) -> Result<Loaded, ImportError> {
    if bytes.starts_with(b"PK\x03\x04") {
        return load_osv_zip(name, std::io::Cursor::new(bytes));
    }
    let parsed = serde_json::from_slice::<serde_json::Value>(&bytes);
    // Why it is not JSON, for the error when it is none of the YAML kinds either.
    let json_error = parsed.as_ref().err().map(|e| {
        let looks_like_json = bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| matches!(b, b'{' | b'['));
        match looks_like_json {
            true => format!(" (it starts like JSON, but: {e})"),
            false => String::new(),
        }
    });
    let value = parsed.ok();
    match value {
        Some(serde_json::Value::Object(map)) if map.contains_key("id") && map.contains_key("modified") => {
            let mut loaded = Loaded { kind: "osv-record", ..Default::default() };
            loaded.add_osv(name, &bytes);
            match loaded.skipped.pop() {
                Some(error) => Err(ImportError::Input(error)),
                None => Ok(loaded),
            }
        }
        Some(serde_json::Value::Object(map)) if map.contains_key("distroversion") => alpine_loaded(name, &bytes),
        Some(serde_json::Value::Object(_)) => {
            let (advisories, records) = debian::parse(name, &bytes).map_err(ImportError::Input)?;
            Ok(Loaded { kind: "debian-tracker", advisories, records, ..Default::default() })
        }
        Some(_) => Err(ImportError::Input(format!(
            "{name}: JSON that is neither an OSV record, a Debian tracker document nor an Alpine secdb"
        ))),
        None if bytes.windows(14).any(|w| w == b"distroversion:") => alpine_loaded(name, &bytes),
        None => Err(ImportError::Input(format!(
            "{name}: not an OSV zip, OSV record, Debian tracker JSON or Alpine secdb document{}",
            json_error.unwrap_or_default()
        ))),
    }
}

fn alpine_loaded(name: &str, bytes: &[u8]) -> Result<Loaded, ImportError> {
    let (advisories, records) = alpine::parse(name, bytes).map_err(ImportError::Input)?;
    Ok(Loaded { kind: "alpine-secdb", advisories, records, ..Default::default() })
}

/// Loads a path (directory or file).
pub fn load_path(path: &Path) -> Result<Loaded, ImportError> {
    let metadata = std::fs::metadata(path).map_err(|e| ImportError::Input(format!("{}: {e}", path.display())))?;
    if metadata.is_dir() { load_osv_dir(path) } else { load_file(path) }
}

/// The source name an import gets when none is given: its ecosystems and its file name
/// (`import:PyPI/all.zip`, `import:Debian+npm/records`). Every ecosystem's `all.zip` is called
/// `all.zip`: named by the file alone, each import would replace the one before. The same feed
/// imported again (a newer download) keeps its name and replaces itself.
pub fn default_source_name(location: &str, loaded: &Loaded) -> String {
    let file = location.trim_end_matches('/').rsplit('/').next().filter(|f| !f.is_empty()).unwrap_or(location);
    let mut ecosystems: Vec<&str> =
        loaded.advisories.iter().map(|a| a.ecosystem.split(':').next().unwrap_or_default()).collect();
    ecosystems.sort_unstable();
    ecosystems.dedup();
    ecosystems.retain(|e| !e.is_empty());
    match ecosystems.is_empty() {
        true => format!("import:{file}"),
        false => format!("import:{}/{file}", ecosystems.join("+")),
    }
}

/// Writes a loaded source as the new generation of `source`.
pub fn write_source(
    db: &VulnDb<'_>,
    source: &str,
    location: &str,
    loaded: Loaded,
    validators: (Option<String>, Option<String>),
) -> Result<SourceState, ImportError> {
    if loaded.records == 0 && loaded.advisories.is_empty() {
        let why = loaded.skipped.first().cloned().unwrap_or_else(|| "it holds no records".into());
        return Err(ImportError::Input(format!("{location}: nothing to import: {why}")));
    }
    let mut writer = db.writer(source)?;
    for advisory in loaded.advisories {
        writer.add(advisory)?;
    }
    let state = SourceState {
        name: source.to_string(),
        kind: loaded.kind.to_string(),
        location: location.to_string(),
        generation: 0,
        format: super::db::ADVISORY_FORMAT,
        updated_at: jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_else(|_| jiff::Timestamp::now())
            .to_string(),
        advisories: 0,
        records: loaded.records,
        etag: validators.0,
        last_modified: validators.1,
        newest_modified: loaded.newest_modified,
    };
    Ok(writer.commit(state)?)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn json_too_deep_to_read_says_why() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = load_bytes("deep.json", deep.into_bytes()).unwrap_err().to_string();
        assert!(
            err.contains("deep.json: not an OSV zip")
                && err.contains("starts like JSON, but: recursion limit exceeded"),
            "{err}"
        );
        let err = load_bytes("notes.txt", b"hello".to_vec()).unwrap_err().to_string();
        assert!(!err.contains("starts like JSON"), "{err}");
    }

    #[test]
    fn oversize_records_count_towards_the_expansion_bound() {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for i in 0..20 {
            zip.start_file(format!("big-{i}.json"), options).unwrap();
            zip.write_all(&[b' '; 2048]).unwrap();
        }
        let bytes = zip.finish().unwrap().into_inner();
        let err = load_osv_zip_bounded("all.zip", std::io::Cursor::new(&bytes), 1024, 10 * 1024).unwrap_err();
        assert!(err.to_string().contains("all.zip: expands past 10240 bytes"), "{err}");
        // Under the bound, the records are skipped one by one.
        let loaded = load_osv_zip_bounded("all.zip", std::io::Cursor::new(&bytes), 1024, 1024 * 1024).unwrap();
        assert_eq!(loaded.skipped.len(), 20);
        assert!(loaded.skipped[0].contains("big-0.json: record larger than 1024 bytes"), "{:?}", loaded.skipped);
    }
}

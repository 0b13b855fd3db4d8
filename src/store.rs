//! The one place that persists: a sled database under the data directory, with one typed tree
//! per capability, a schema version, and a lock so that two pickets never share a store.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The schema this build reads and writes. Bump it with a migration in [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = 1;

/// Migrations from version `n` to `n + 1`, indexed by `n - 1`.
const MIGRATIONS: &[fn(&sled::Db) -> sled::Result<()>] = &[];

const LOCK_FILE: &str = "picket.lock";
/// sled's cache, at most.
const CACHE_BYTES: u64 = 64 << 20;
const SCHEMA_KEY: &[u8] = b"schema_version";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} is in use by another picket{holder}; close it, or pass --data-dir to use another store",
        path = .path.display(), holder = .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("store {path} has schema version {found}, newer than this picket understands ({supported}); upgrade picket, or pass --data-dir to use another store",
        path = .path.display())]
    NewerSchema { path: PathBuf, found: u32, supported: u32 },
    #[error("store {path}: {what}", path = .path.display())]
    Corrupt { path: PathBuf, what: String },
    #[error("store {path}: {source}", path = .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("store {path}: {source}", path = .path.display())]
    Db { path: PathBuf, source: sled::Error },
    #[error("store {path}: cannot encode or decode a {tree} record: {source}", path = .path.display())]
    Codec { path: PathBuf, tree: &'static str, source: serde_json::Error },
}

/// The trees of the store. Each capability owns its own; none is created ad hoc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeName {
    Meta,
    /// Image and filesystem inventories (`scan::Sbom`), by manifest digest (see `Sbom::store_key`).
    Sboms,
    /// Vulnerability database sources and their active generation (`vulndb::SourceState`).
    VulnSources,
    /// Advisories per package (`vulndb::Advisory`), keyed `package key \0 source \0 generation \0 id`.
    VulnAdvisories,
    /// Alerts from the agents (`alert::StoredAlert`), keyed by time then id (`alert::AlertLog`).
    Alerts,
    /// The image index digest of a multi-platform image → the key its platform's SBOM is stored
    /// under (kubelets and registries name the index).
    SbomAliases,
    /// Registries added with `picket registry add` (`registry::RegistryTarget`), by name.
    Registries,
    /// What each crawled tag points at (`registry::TagRecord`), keyed `name \0 repository \0 tag`.
    RegistryTags,
    /// Each registry's last crawl, finished or not (`registry::CrawlRecord`), by name.
    RegistryCrawls,
    /// Each stored SBOM's findings at its last match and what changed then
    /// (`scan::rematch::MatchSummary`), by SBOM key.
    MatchSummaries,
    /// A hash of each stored SBOM's finding keys at its last recorded match, by SBOM key: a
    /// re-match that finds the same set neither reads nor rewrites the summary.
    MatchDigests,
    /// Every policy put in force (`policy::history::PolicyVersion`), keyed `target \0 version`.
    PolicyHistory,
    /// Each scanned image reference (`registry/repository:tag`, as `scan::stored::reference_key`
    /// writes it) → the key of its last scan's SBOM: what admission looks an image up by.
    ImageReferences,
    /// When each stored SBOM was last scanned (RFC 3339), by SBOM key.
    ScanTimes,
    /// The admission webhook's decisions (`admission::review::DecisionRecord`), keyed by time
    /// then request uid.
    AdmissionDecisions,
    /// What was decided about each fold of alerts (`alert::triage::TriageRecord`), by fold key.
    AlertTriage,
    /// Response actions taken (`alert::actions::ActionRecord`), by sequence.
    ResponseActions,
    /// Notifications waiting for their sinks (`alert::sinks::Notification`), keyed
    /// `sink \0 sequence`.
    Outbox,
}

impl TreeName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Meta => "meta",
            Self::Sboms => "sboms",
            Self::VulnSources => "vuln_sources",
            Self::VulnAdvisories => "vuln_advisories",
            Self::Alerts => "alerts",
            Self::SbomAliases => "sbom_aliases",
            Self::Registries => "registries",
            Self::RegistryTags => "registry_tags",
            Self::RegistryCrawls => "registry_crawls",
            Self::MatchSummaries => "match_summaries",
            Self::MatchDigests => "match_digests",
            Self::PolicyHistory => "policy_history",
            Self::ImageReferences => "image_references",
            Self::ScanTimes => "scan_times",
            Self::AdmissionDecisions => "admission_decisions",
            Self::AlertTriage => "alert_triage",
            Self::Outbox => "outbox",
            Self::ResponseActions => "response_actions",
        }
    }
}

pub struct Store {
    db: sled::Db,
    path: PathBuf,
    // Held for the store's lifetime: the OS releases the lock when the file closes.
    _lock: File,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store at `path`, taking its lock, checking its schema version and
    /// running any migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, CACHE_BYTES)
    }

    /// Like [`Store::open`], with sled's cache bounded to `cache_bytes` (a long-running
    /// process that mostly writes, such as the admission webhook, keeps it small so its memory
    /// stays flat).
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let io = |source| StoreError::Io { path: path.to_path_buf(), source };
        std::fs::create_dir_all(path).map_err(io)?;
        let lock = lock(path)?;
        let db = sled::Config::new()
            .path(path.join("db"))
            // No background flusher: picket flushes after its own writes, and an idle console
            // should not wake up twice a second.
            .flush_every_ms(None)
            // sled caches up to 1 GiB by default: a long-running webhook or agent writing all
            // day would grow to that. Reads past the cache come from the page cache anyway.
            .cache_capacity(cache_bytes)
            .open()
            .map_err(|source| StoreError::Db { path: path.to_path_buf(), source })?;
        let store = Self { db, path: path.to_path_buf(), _lock: lock };
        store.check_schema()?;
        Ok(store)
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let meta = self.raw_tree(TreeName::Meta)?;
        let found = match meta.get(SCHEMA_KEY).map_err(|e| self.db_error(e))? {
            Some(bytes) => {
                let bytes: [u8; 4] = bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    path: self.path.clone(),
                    what: format!("schema version record has {} bytes, expected 4", bytes.len()),
                })?;
                u32::from_be_bytes(bytes)
            }
            None => {
                self.set_schema(SCHEMA_VERSION)?;
                return Ok(());
            }
        };
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema { path: self.path.clone(), found, supported: SCHEMA_VERSION });
        }
        if found == 0 {
            return Err(StoreError::Corrupt { path: self.path.clone(), what: "schema version 0".into() });
        }
        for version in found..SCHEMA_VERSION {
            let migrate = MIGRATIONS.get(version as usize - 1).ok_or_else(|| StoreError::Corrupt {
                path: self.path.clone(),
                what: format!("no migration from schema {version}"),
            })?;
            migrate(&self.db).map_err(|e| self.db_error(e))?;
            self.set_schema(version + 1)?;
        }
        Ok(())
    }

    fn set_schema(&self, version: u32) -> Result<(), StoreError> {
        let meta = self.raw_tree(TreeName::Meta)?;
        meta.insert(SCHEMA_KEY, &version.to_be_bytes()).map_err(|e| self.db_error(e))?;
        self.flush()
    }

    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let meta = self.raw_tree(TreeName::Meta)?;
        let bytes = meta.get(SCHEMA_KEY).map_err(|e| self.db_error(e))?;
        Ok(bytes.and_then(|b| b.as_ref().try_into().ok()).map_or(0, u32::from_be_bytes))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(|e| self.db_error(e))
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.db_error(e))
    }

    /// A tree whose values are `V`, encoded as JSON so records stay readable across versions.
    pub fn tree<V: Serialize + DeserializeOwned>(&self, name: TreeName) -> Result<Typed<V>, StoreError> {
        Ok(Typed { tree: self.raw_tree(name)?, name, path: self.path.clone(), _value: PhantomData })
    }

    fn raw_tree(&self, name: TreeName) -> Result<sled::Tree, StoreError> {
        self.db.open_tree(name.as_str()).map_err(|e| self.db_error(e))
    }

    fn db_error(&self, source: sled::Error) -> StoreError {
        StoreError::Db { path: self.path.clone(), source }
    }

    /// For tests of schema handling: writes a raw schema version.
    #[doc(hidden)]
    pub fn force_schema_version(&self, version: u32) -> Result<(), StoreError> {
        self.set_schema(version)
    }
}

fn lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let io = |source| StoreError::Io { path: path.clone(), source };
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
            return Err(StoreError::Locked { path: dir.to_path_buf(), pid });
        }
        Err(TryLockError::Error(source)) => return Err(io(source)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

/// A typed view of one tree: string keys, `V` values.
pub struct Typed<V> {
    tree: sled::Tree,
    name: TreeName,
    path: PathBuf,
    _value: PhantomData<V>,
}

impl<V: Serialize + DeserializeOwned> Typed<V> {
    pub fn get(&self, key: &str) -> Result<Option<V>, StoreError> {
        match self.tree.get(key).map_err(|e| self.db_error(e))? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| self.codec_error(e)),
            None => Ok(None),
        }
    }

    pub fn insert(&self, key: &str, value: &V) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| self.codec_error(e))?;
        self.tree.insert(key, bytes).map_err(|e| self.db_error(e))?;
        Ok(())
    }

    pub fn remove(&self, key: &str) -> Result<Option<V>, StoreError> {
        match self.tree.remove(key).map_err(|e| self.db_error(e))? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| self.codec_error(e)),
            None => Ok(None),
        }
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Writes this tree's changes to disk (for records a user decided and must not lose).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.tree.flush().map(|_| ()).map_err(|e| self.db_error(e))
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// The records whose keys start with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, V)>, StoreError> {
        self.scan_prefix_where(prefix, |_| true)
    }

    /// Like `scan_prefix`, decoding only the records whose key `keep` accepts.
    pub fn scan_prefix_where(&self, prefix: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<(String, V)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (key, bytes) = item.map_err(|e| self.db_error(e))?;
            let key = String::from_utf8_lossy(&key).into_owned();
            if keep(&key) {
                out.push((key, serde_json::from_slice(&bytes).map_err(|e| self.codec_error(e))?));
            }
        }
        Ok(out)
    }

    /// The first `n` records whose keys start with `prefix`, in key order.
    pub fn head_with_prefix(&self, prefix: &str, n: usize) -> Result<Vec<(String, V)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(prefix).take(n) {
            let (key, bytes) = item.map_err(|e| self.db_error(e))?;
            let value = serde_json::from_slice(&bytes).map_err(|e| self.codec_error(e))?;
            out.push((String::from_utf8_lossy(&key).into_owned(), value));
        }
        Ok(out)
    }

    /// The last record whose key starts with `prefix`.
    pub fn last_with_prefix(&self, prefix: &str) -> Result<Option<(String, V)>, StoreError> {
        match self.tree.scan_prefix(prefix).next_back() {
            Some(item) => {
                let (key, bytes) = item.map_err(|e| self.db_error(e))?;
                let value = serde_json::from_slice(&bytes).map_err(|e| self.codec_error(e))?;
                Ok(Some((String::from_utf8_lossy(&key).into_owned(), value)))
            }
            None => Ok(None),
        }
    }

    /// How many keys start with `prefix` (keys only, no decoding).
    pub fn count_prefix(&self, prefix: &str) -> Result<usize, StoreError> {
        let mut count = 0;
        for item in self.tree.scan_prefix(prefix).keys() {
            item.map_err(|e| self.db_error(e))?;
            count += 1;
        }
        Ok(count)
    }

    /// Keys only, in order (no decoding), for clean-ups.
    pub fn keys(&self) -> impl Iterator<Item = Result<String, StoreError>> + '_ {
        self.tree
            .iter()
            .keys()
            .map(|key| key.map(|k| String::from_utf8_lossy(&k).into_owned()).map_err(|e| self.db_error(e)))
    }

    /// Inserts (`Some`) and removes (`None`) all at once: either every change lands or none.
    pub fn apply(&self, changes: Vec<(String, Option<V>)>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (key, value) in changes {
            match value {
                Some(value) => {
                    batch.insert(key.as_bytes(), serde_json::to_vec(&value).map_err(|e| self.codec_error(e))?)
                }
                None => batch.remove(key.as_bytes()),
            }
        }
        self.tree.apply_batch(batch).map_err(|e| self.db_error(e))
    }

    /// All records in key order; a record that fails to decode is an error, not skipped.
    pub fn entries(&self) -> Result<Vec<(String, V)>, StoreError> {
        self.tree
            .iter()
            .map(|item| {
                let (key, bytes) = item.map_err(|e| self.db_error(e))?;
                let value = serde_json::from_slice(&bytes).map_err(|e| self.codec_error(e))?;
                Ok((String::from_utf8_lossy(&key).into_owned(), value))
            })
            .collect()
    }

    /// Every record in key order, decoded one at a time (for trees too large to hold whole).
    pub fn iter(&self) -> impl Iterator<Item = Result<(String, V), StoreError>> + '_ {
        self.tree.iter().map(|item| {
            let (key, bytes) = item.map_err(|e| self.db_error(e))?;
            let value = serde_json::from_slice(&bytes).map_err(|e| self.codec_error(e))?;
            Ok((String::from_utf8_lossy(&key).into_owned(), value))
        })
    }

    /// The last `n` records in key order, last first.
    pub fn last(&self, n: usize) -> Result<Vec<(String, V)>, StoreError> {
        self.tree
            .iter()
            .rev()
            .take(n)
            .map(|item| {
                let (key, bytes) = item.map_err(|e| self.db_error(e))?;
                let value = serde_json::from_slice(&bytes).map_err(|e| self.codec_error(e))?;
                Ok((String::from_utf8_lossy(&key).into_owned(), value))
            })
            .collect()
    }

    fn db_error(&self, source: sled::Error) -> StoreError {
        StoreError::Db { path: self.path.clone(), source }
    }

    fn codec_error(&self, source: serde_json::Error) -> StoreError {
        StoreError::Codec { path: self.path.clone(), tree: self.name.as_str(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_store_gets_current_schema() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("s")).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(store.size_on_disk().unwrap() > 0);
    }

    #[test]
    fn newer_schema_is_refused_and_left_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s");
        Store::open(&path).unwrap().force_schema_version(SCHEMA_VERSION + 1).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()) && msg.contains("upgrade picket"), "{msg}");
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::NewerSchema { .. }), "a refused open must not rewrite the version");
    }

    #[test]
    fn second_open_is_refused_with_the_holder_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s");
        let first = Store::open(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        match &err {
            StoreError::Locked { pid, .. } => assert_eq!(*pid, Some(std::process::id())),
            other => panic!("expected Locked, got {other}"),
        }
        assert!(err.to_string().contains("in use by another picket"), "{err}");
        drop(first);
        assert!(Store::open(&path).is_ok(), "the lock goes with the store");
    }

    #[test]
    fn typed_tree_round_trips_and_reports_bad_records() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Note {
            text: String,
            count: u32,
        }
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("s")).unwrap();
        let notes = store.tree::<Note>(TreeName::Meta).unwrap();
        let note = Note { text: "hello".into(), count: 3 };
        notes.insert("n1", &note).unwrap();
        assert_eq!(notes.get("n1").unwrap(), Some(note));
        assert_eq!(notes.get("missing").unwrap(), None);
        // the schema record is not JSON for Note: listing must say so rather than skip it
        let err = notes.entries().unwrap_err();
        assert!(matches!(err, StoreError::Codec { tree: "meta", .. }), "{err}");
        assert!(notes.remove("n1").unwrap().is_some());
    }

    #[test]
    fn path_that_is_a_file_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("file");
        std::fs::write(&path, "x").unwrap();
        let err = Store::open(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}

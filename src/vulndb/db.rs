//! The database in the store: sources (each a name like `osv:PyPI` with its active generation)
//! and advisories keyed by package. A source is replaced by writing a new generation and then
//! switching its state record in one write, so an interrupted update leaves the previous
//! generation in place and in use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Advisory;
use crate::store::{Store, StoreError, TreeName, Typed};

/// The layout of stored advisories. A source written in another layout is not read (its
/// records would not decode); `picket db update` or `import` rewrites it.
pub const ADVISORY_FORMAT: u32 = 2;

/// A source older than this is reported as stale.
pub const STALE_AFTER_DAYS: i64 = 3;

/// What the database knows about one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    pub name: String,
    /// `osv-zip`, `osv-dir`, `osv-record`, `debian-tracker`, `alpine-secdb`.
    pub kind: String,
    /// Where it was read from (URL or path).
    pub location: String,
    pub generation: u64,
    /// [`ADVISORY_FORMAT`] of its advisories (0: written before formats were recorded).
    #[serde(default)]
    pub format: u32,
    /// RFC 3339 time of the last successful update.
    pub updated_at: String,
    pub advisories: u64,
    pub records: u64,
    /// Conditional-request validators of the last download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The newest `modified` among the records (for incremental OSV updates).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub newest_modified: String,
}

/// Normalises a package name the way its ecosystem compares names (PEP 503 for PyPI).
pub fn normalize_name(ecosystem: &str, name: &str) -> String {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    match base {
        "PyPI" => {
            let mut out = String::with_capacity(name.len());
            let mut last_dash = false;
            for c in name.trim().chars() {
                if matches!(c, '-' | '_' | '.') {
                    if !last_dash {
                        out.push('-');
                    }
                    last_dash = true;
                } else {
                    out.extend(c.to_lowercase());
                    last_dash = false;
                }
            }
            out
        }
        "RubyGems" | "NuGet" | "Packagist" => name.trim().to_lowercase(),
        _ => name.trim().to_string(),
    }
}

/// The key prefix of one package: `ecosystem \0 name`.
pub fn package_key(ecosystem: &str, name: &str) -> String {
    format!("{ecosystem}\0{}\0", normalize_name(ecosystem, name))
}

fn advisory_key(advisory: &Advisory, source: &str, generation: u64) -> String {
    format!("{}{source}\0{generation:016x}\0{}", package_key(&advisory.ecosystem, &advisory.package), advisory.id)
}

pub struct VulnDb<'a> {
    store: &'a Store,
    sources: Typed<SourceState>,
    advisories: Typed<Advisory>,
}

impl<'a> VulnDb<'a> {
    /// The store the database lives in.
    pub fn store(&self) -> &'a Store {
        self.store
    }

    pub fn open(store: &'a Store) -> Result<Self, StoreError> {
        Ok(Self {
            store,
            sources: store.tree(TreeName::VulnSources)?,
            advisories: store.tree(TreeName::VulnAdvisories)?,
        })
    }

    pub fn sources(&self) -> Result<Vec<SourceState>, StoreError> {
        Ok(self.sources.entries()?.into_iter().map(|(_, state)| state).collect())
    }

    pub fn source(&self, name: &str) -> Result<Option<SourceState>, StoreError> {
        self.sources.get(name)
    }

    /// Active generation per source in the current format, for filtering lookups.
    pub fn active(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        Ok(self
            .sources()?
            .into_iter()
            .filter(|s| s.format == ADVISORY_FORMAT)
            .map(|s| (s.name, s.generation))
            .collect())
    }

    /// The advisories for one package with their source, from active generations only.
    pub fn lookup(
        &self,
        active: &BTreeMap<String, u64>,
        ecosystem: &str,
        name: &str,
    ) -> Result<Vec<(String, Advisory)>, StoreError> {
        let prefix = package_key(ecosystem, name);
        let source_of = |key: &str| -> Option<String> {
            let mut rest = key.get(prefix.len()..)?.split('\0');
            let (source, generation) = (rest.next()?, rest.next()?);
            let generation = u64::from_str_radix(generation, 16).ok()?;
            (active.get(source) == Some(&generation)).then(|| source.to_string())
        };
        let found = self.advisories.scan_prefix_where(&prefix, |key| source_of(key).is_some())?;
        Ok(found.into_iter().filter_map(|(key, advisory)| Some((source_of(&key)?, advisory))).collect())
    }

    /// Every advisory of the active generations, with its source.
    pub fn active_advisories(&self) -> Result<Vec<(String, Advisory)>, StoreError> {
        let active = self.active()?;
        let mut out = Vec::new();
        for key in self.advisories.keys() {
            let key = key?;
            let mut parts = key.split('\0').skip(2);
            let (Some(source), Some(generation)) = (parts.next(), parts.next()) else { continue };
            if u64::from_str_radix(generation, 16).ok() == active.get(source).copied()
                && let Some(advisory) = self.advisories.get(&key)?
            {
                out.push((source.to_string(), advisory));
            }
        }
        Ok(out)
    }

    /// Starts writing a new generation of `source`. Nothing is visible until [`Writer::commit`].
    pub fn writer(&self, source: &str) -> Result<Writer<'_, 'a>, StoreError> {
        let previous = self.sources.get(source)?;
        let generation = previous.as_ref().map_or(1, |p| p.generation + 1);
        // A generation left behind by an interrupted update is cleared before reuse.
        self.remove_generations(source, |g| g >= generation)?;
        Ok(Writer { db: self, source: source.to_string(), generation, pending: Vec::new(), written: 0 })
    }

    /// The advisories of one source's active generation (for incremental updates).
    pub fn source_advisories(&self, source: &str) -> Result<Vec<Advisory>, StoreError> {
        let Some(state) = self.sources.get(source)?.filter(|s| s.format == ADVISORY_FORMAT) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let marker = format!("\0{source}\0{:016x}\0", state.generation);
        let keys: Vec<String> = self.advisories.keys().filter_map(Result::ok).filter(|k| k.contains(&marker)).collect();
        for key in keys {
            if let Some(advisory) = self.advisories.get(&key)? {
                out.push(advisory);
            }
        }
        Ok(out)
    }

    /// Visits the advisories of one source's active generation one at a time (exports).
    pub fn each_source_advisory<E: From<StoreError>>(
        &self,
        source: &str,
        mut visit: impl FnMut(&Advisory) -> Result<(), E>,
    ) -> Result<u64, E> {
        let Some(state) = self.sources.get(source)?.filter(|s| s.format == ADVISORY_FORMAT) else {
            return Ok(0);
        };
        let marker = format!("\0{source}\0{:016x}\0", state.generation);
        let mut count = 0;
        for key in self.advisories.keys() {
            let key = key?;
            if !key.contains(&marker) {
                continue;
            }
            if let Some(advisory) = self.advisories.get(&key)? {
                visit(&advisory)?;
                count += 1;
            }
        }
        Ok(count)
    }

    /// Makes several new generations active in one write: a database taken whole (an export
    /// imported) is either all new or all as it was.
    pub fn commit_all(&self, writers: Vec<(Writer<'_, 'a>, SourceState)>) -> Result<Vec<SourceState>, StoreError> {
        let mut states = Vec::new();
        for (mut writer, mut state) in writers {
            self.advisories.apply(std::mem::take(&mut writer.pending))?;
            state.name = writer.source.clone();
            state.generation = writer.generation;
            state.advisories = writer.written;
            state.format = ADVISORY_FORMAT;
            states.push(state);
        }
        self.store.flush()?;
        self.sources.apply(states.iter().map(|s| (s.name.clone(), Some(s.clone()))).collect())?;
        self.store.flush()?;
        for state in &states {
            let generation = state.generation;
            self.remove_generations(&state.name, |g| g < generation)?;
        }
        self.store.flush()?;
        Ok(states)
    }

    fn remove_generations(&self, source: &str, remove: impl Fn(u64) -> bool) -> Result<usize, StoreError> {
        let marker = format!("\0{source}\0");
        let mut doomed = Vec::new();
        for key in self.advisories.keys() {
            let key = key?;
            let Some(at) = key.find(&marker) else { continue };
            let generation = key[at + marker.len()..].split('\0').next().unwrap_or_default();
            if u64::from_str_radix(generation, 16).is_ok_and(&remove) {
                doomed.push((key, None));
            }
        }
        let count = doomed.len();
        for chunk in doomed.chunks(10_000) {
            self.advisories.apply(chunk.to_vec())?;
        }
        Ok(count)
    }

    /// Drops a source and its advisories.
    pub fn remove_source(&self, source: &str) -> Result<(), StoreError> {
        self.sources.remove(source)?;
        self.remove_generations(source, |_| true)?;
        self.store.flush()
    }
}

pub struct Writer<'d, 'a> {
    db: &'d VulnDb<'a>,
    source: String,
    generation: u64,
    pending: Vec<(String, Option<Advisory>)>,
    written: u64,
}

impl Writer<'_, '_> {
    pub fn add(&mut self, advisory: Advisory) -> Result<(), StoreError> {
        self.pending.push((advisory_key(&advisory, &self.source, self.generation), Some(advisory)));
        self.written += 1;
        if self.pending.len() >= 5_000 {
            self.db.advisories.apply(std::mem::take(&mut self.pending))?;
        }
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Makes the new generation the active one (one write), then drops the old ones.
    pub fn commit(mut self, mut state: SourceState) -> Result<SourceState, StoreError> {
        self.db.advisories.apply(std::mem::take(&mut self.pending))?;
        self.db.store.flush()?;
        state.name = self.source.clone();
        state.generation = self.generation;
        state.advisories = self.written;
        state.format = ADVISORY_FORMAT;
        self.db.sources.insert(&self.source, &state)?;
        self.db.store.flush()?;
        let generation = self.generation;
        self.db.remove_generations(&self.source, |g| g < generation)?;
        self.db.store.flush()?;
        Ok(state)
    }
}

//! What crawls leave in the store: the registries added by hand, each tag's digest and the
//! SBOMs behind it, and each registry's last crawl (so an interrupted one resumes).

use serde::{Deserialize, Serialize};

use super::target::RegistryTarget;
use crate::store::{Store, StoreError, TreeName};

/// One platform image a tag points at, and the SBOM key its inventory is stored under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformImage {
    pub platform: String,
    pub manifest_digest: String,
}

/// A tag as the last crawl found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    pub repository: String,
    pub tag: String,
    /// What the tag resolves to: the manifest, or the image index of a multi-platform image.
    pub digest: String,
    /// The platform images scanned for it (one for a plain manifest).
    pub images: Vec<PlatformImage>,
    /// The image's creation time from its config, RFC 3339, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// When this digest was first seen under this tag, and when the tag was last checked.
    pub since: String,
    pub checked: String,
}

/// A registry's crawl: finished, or stopped part-way (then the next crawl resumes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawlRecord {
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Repositories finished with no error, in this crawl.
    #[serde(default)]
    pub done: Vec<String>,
    pub repositories: usize,
    #[serde(default)]
    pub errors: Vec<String>,
}

fn tag_key(registry: &str, repository: &str, tag: &str) -> String {
    format!("{registry}\0{repository}\0{tag}")
}

/// The tags of one registry in the store, keyed by (repository, tag).
pub fn tags(store: &Store, registry: &str) -> Result<Vec<TagRecord>, StoreError> {
    let prefix = format!("{registry}\0");
    Ok(store.tree::<TagRecord>(TreeName::RegistryTags)?.scan_prefix(&prefix)?.into_iter().map(|(_, r)| r).collect())
}

pub fn tags_of(store: &Store, registry: &str, repository: &str) -> Result<Vec<TagRecord>, StoreError> {
    let prefix = format!("{registry}\0{repository}\0");
    Ok(store.tree::<TagRecord>(TreeName::RegistryTags)?.scan_prefix(&prefix)?.into_iter().map(|(_, r)| r).collect())
}

pub fn save_tag(store: &Store, registry: &str, record: &TagRecord) -> Result<(), StoreError> {
    store.tree::<TagRecord>(TreeName::RegistryTags)?.insert(&tag_key(registry, &record.repository, &record.tag), record)
}

/// Forgets tags the registry no longer has.
pub fn remove_tags(store: &Store, registry: &str, gone: &[(String, String)]) -> Result<(), StoreError> {
    let changes = gone.iter().map(|(repo, tag)| (tag_key(registry, repo, tag), None)).collect();
    store.tree::<TagRecord>(TreeName::RegistryTags)?.apply(changes)
}

pub fn crawl(store: &Store, registry: &str) -> Result<Option<CrawlRecord>, StoreError> {
    store.tree::<CrawlRecord>(TreeName::RegistryCrawls)?.get(registry)
}

pub fn save_crawl(store: &Store, registry: &str, record: &CrawlRecord) -> Result<(), StoreError> {
    store.tree::<CrawlRecord>(TreeName::RegistryCrawls)?.insert(registry, record)?;
    store.flush()
}

/// Registries added with `picket registry add`.
pub fn added(store: &Store) -> Result<Vec<RegistryTarget>, StoreError> {
    Ok(store.tree::<RegistryTarget>(TreeName::Registries)?.entries()?.into_iter().map(|(_, t)| t).collect())
}

pub fn add(store: &Store, target: &RegistryTarget) -> Result<(), StoreError> {
    store.tree::<RegistryTarget>(TreeName::Registries)?.insert(&target.display_name(), target)?;
    store.flush()
}

/// Removes an added registry and everything its crawls stored about it (the SBOMs stay: other
/// registries or scans may share them). Returns whether it was there.
pub fn remove(store: &Store, name: &str) -> Result<bool, StoreError> {
    let was = store.tree::<RegistryTarget>(TreeName::Registries)?.remove(name)?.is_some();
    let tags = store.tree::<TagRecord>(TreeName::RegistryTags)?;
    let keys: Vec<(String, Option<TagRecord>)> =
        tags.scan_prefix(&format!("{name}\0"))?.into_iter().map(|(key, _)| (key, None)).collect();
    tags.apply(keys)?;
    store.tree::<CrawlRecord>(TreeName::RegistryCrawls)?.remove(name)?;
    store.flush()?;
    Ok(was)
}

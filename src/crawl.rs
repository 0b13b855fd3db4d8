//! Crawling a registry: list its repositories and tags, resolve each tag to its manifest (and
//! platform manifests), and inventory only the images whose digest the store does not hold.
//! What a tag points at is recorded as it goes and each finished repository is noted, so a
//! crawl that is killed or loses the registry resumes where it stopped; an SBOM is written only
//! whole. Above `scan` (it inventories) and `registry` (it lists and resolves); `registry` stays
//! the leaf that `scan` pulls with.

pub mod in_cluster;
pub mod overview;
pub mod workloads;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures::StreamExt;
use serde::Serialize;

use crate::oci::Platform;
use crate::registry::records::{self, CrawlRecord, PlatformImage, TagRecord};
use crate::registry::target::Resolved;
use crate::registry::{Client, ImageReference, RegistryError};
use crate::scan::{self, ScanOptions, SourceSpec};
use crate::store::Store;

/// Entries asked for per page of the catalog and of a tag list.
pub const PAGE_SIZE: usize = 1000;
const MAX_CONFIG: usize = 4 * 1024 * 1024;

/// How far a crawl is, for the CLI's bars and the console's pane.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CrawlProgress {
    pub repositories_done: usize,
    pub repositories_total: usize,
    pub tags_checked: usize,
    pub images_scanned: usize,
    pub bytes: u64,
}

pub type CrawlProgressFn = Arc<dyn Fn(&CrawlProgress) + Send + Sync>;

/// What one crawl did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CrawlReport {
    pub registry: String,
    /// It continued a crawl that had stopped part-way.
    pub resumed: bool,
    pub repositories: usize,
    /// Repositories an interrupted crawl had finished, not crawled again.
    pub repositories_skipped: usize,
    pub tags: usize,
    /// Tags whose digest had not changed and whose SBOMs were stored: nothing pulled.
    pub unchanged: usize,
    /// Tags new or moved to an image already stored: only their record changed.
    pub retagged: usize,
    /// Images pulled and inventoried.
    pub scanned: usize,
    pub deleted_tags: Vec<String>,
    pub deleted_repositories: Vec<String>,
    pub errors: Vec<String>,
    /// Bytes of blobs downloaded.
    pub bytes: u64,
}

impl CrawlReport {
    pub fn complete(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A crawl's fixed inputs.
pub struct Crawl<'a> {
    pub store: &'a Store,
    pub target: &'a Resolved,
    /// Limits on what an image may make picket read; secrets are looked for when set.
    pub scan: ScanOptions,
    pub progress: CrawlProgressFn,
    /// Entries asked for per catalog and tag-list page ([`PAGE_SIZE`]).
    pub page_size: usize,
}

/// A tag resolved to the images it points at.
struct Resolution {
    record: TagRecord,
    /// Platform images with no stored SBOM: (platform, manifest digest).
    missing: Vec<(Platform, String)>,
    unchanged: bool,
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

impl Crawl<'_> {
    /// Crawls the target once (resuming a crawl that stopped part-way). Errors reading one tag
    /// or repository are reported and the rest goes on; an error reaching the registry at all
    /// (its catalog) ends the crawl, which the next one resumes.
    pub async fn run(&self) -> Result<CrawlReport, RegistryError> {
        let target = self.target;
        let client = Arc::new(Client::connect_registry(&target.registry, &target.options).await?);
        let mut report = CrawlReport { registry: target.name.clone(), ..CrawlReport::default() };
        let mut record = match records::crawl(self.store, &target.name).map_err(store_error)? {
            Some(previous) if previous.finished.is_none() => {
                report.resumed = true;
                previous
            }
            _ => CrawlRecord { started: now(), finished: None, done: Vec::new(), repositories: 0, errors: Vec::new() },
        };
        records::save_crawl(self.store, &target.name, &record).map_err(store_error)?;
        let repositories = self.repositories(&client).await?;
        record.repositories = repositories.len();
        report.repositories = repositories.len();
        self.forget_gone_repositories(&repositories, &mut report)?;

        let progress = Shared::default();
        let done: BTreeSet<String> = record.done.iter().cloned().collect();
        progress.repositories_total.store(repositories.len(), Ordering::Relaxed);
        for repository in &repositories {
            if done.contains(repository) {
                report.repositories_skipped += 1;
                progress.repositories_done.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let errors_before = report.errors.len();
            self.crawl_repository(&client, repository, &mut report, &progress).await?;
            progress.repositories_done.fetch_add(1, Ordering::Relaxed);
            (self.progress)(&progress.snapshot());
            if report.errors.len() == errors_before {
                record.done.push(repository.clone());
            }
            record.errors = report.errors.clone();
            records::save_crawl(self.store, &target.name, &record).map_err(store_error)?;
        }
        report.bytes = progress.bytes.load(Ordering::Relaxed);
        // A crawl with errors stays open: the next run retries what failed and skips the rest.
        if report.errors.is_empty() {
            record.finished = Some(now());
        }
        records::save_crawl(self.store, &target.name, &record).map_err(store_error)?;
        Ok(report)
    }

    /// The catalog's repositories the filters accept. A registry that serves no catalog (Docker
    /// Hub, most cloud registries) is crawled by the repositories the target names outright.
    async fn repositories(&self, client: &Client) -> Result<Vec<String>, RegistryError> {
        let named = self.target.repositories.literals();
        let listed = match client.catalog(self.page_size).await {
            Ok(listed) => listed,
            Err(RegistryError::NotFound { .. } | RegistryError::Unauthorized { .. }) if !named.is_empty() => named,
            Err(RegistryError::NotFound { what }) => {
                return Err(RegistryError::Format {
                    what,
                    message:
                        "this registry serves no catalog: name the repositories to crawl (repositories: [team/app, …])"
                            .into(),
                });
            }
            Err(other) => return Err(other),
        };
        let mut accepted: Vec<String> = listed.into_iter().filter(|r| self.target.repositories.accepts(r)).collect();
        accepted.sort();
        accepted.dedup();
        Ok(accepted)
    }

    fn forget_gone_repositories(&self, repositories: &[String], report: &mut CrawlReport) -> Result<(), RegistryError> {
        let current: BTreeSet<&str> = repositories.iter().map(String::as_str).collect();
        let stored = records::tags(self.store, &self.target.name).map_err(store_error)?;
        let mut gone_repositories = BTreeSet::new();
        let gone: Vec<(String, String)> = stored
            .into_iter()
            .filter(|r| !current.contains(r.repository.as_str()))
            .map(|r| {
                gone_repositories.insert(r.repository.clone());
                (r.repository, r.tag)
            })
            .collect();
        records::remove_tags(self.store, &self.target.name, &gone).map_err(store_error)?;
        report.deleted_repositories.extend(gone_repositories);
        Ok(())
    }

    async fn crawl_repository(
        &self,
        client: &Arc<Client>,
        repository: &str,
        report: &mut CrawlReport,
        progress: &Shared,
    ) -> Result<(), RegistryError> {
        let tags = match client.tags(repository, self.page_size).await {
            Ok(tags) => tags,
            // Deleted between the catalog and now: its records go.
            Err(RegistryError::NotFound { .. }) => Vec::new(),
            Err(e) => {
                report.errors.push(e.to_string());
                return Ok(());
            }
        };
        let previous: HashMap<String, TagRecord> = records::tags_of(self.store, &self.target.name, repository)
            .map_err(store_error)?
            .into_iter()
            .map(|r| (r.tag.clone(), r))
            .collect();
        let listed: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
        let accepted: Vec<&String> = tags.iter().filter(|t| self.target.tags.accepts(t)).collect();
        report.tags += accepted.len();

        let resolutions: Vec<(String, Result<Resolution, RegistryError>)> = futures::stream::iter(accepted)
            .map(|tag| {
                let client = Arc::clone(client);
                let previous = previous.get(tag.as_str());
                async move {
                    let resolved = self.resolve(&client, repository, tag, previous).await;
                    progress.tags_checked.fetch_add(1, Ordering::Relaxed);
                    (tag.clone(), resolved)
                }
            })
            .buffer_unordered(self.target.concurrency)
            .collect()
            .await;
        (self.progress)(&progress.snapshot());
        let mut resolved = Vec::new();
        for (tag, result) in resolutions {
            match result {
                Ok(resolution) => resolved.push(resolution),
                Err(e) => report.errors.push(format!("{repository}:{tag}: {e}")),
            }
        }
        // The newest N by creation time; unknown times count as oldest, names break ties.
        let mut left_out = BTreeSet::new();
        if let Some(keep) = self.target.last_tags {
            resolved
                .sort_by(|a, b| b.record.created.cmp(&a.record.created).then_with(|| a.record.tag.cmp(&b.record.tag)));
            left_out.extend(resolved.iter().skip(keep).map(|r| r.record.tag.clone()));
            resolved.truncate(keep);
        }

        // Two tags of one new image: the first scans it, the other only records it.
        let mut claimed = BTreeSet::new();
        for resolution in &mut resolved {
            resolution.missing.retain(|(_, digest)| claimed.insert(digest.clone()));
        }
        let scans: Vec<(Resolution, Result<(), RegistryError>)> = futures::stream::iter(resolved)
            .map(|resolution| async move {
                let result = self.scan_missing(repository, &resolution, progress).await;
                (resolution, result)
            })
            .buffer_unordered(self.target.concurrency)
            .collect()
            .await;
        for (resolution, result) in scans {
            match result {
                Ok(()) => {
                    match (resolution.unchanged, resolution.missing.is_empty()) {
                        (true, _) => report.unchanged += 1,
                        (false, true) => report.retagged += 1,
                        (false, false) => report.scanned += resolution.missing.len(),
                    }
                    records::save_tag(self.store, &self.target.name, &resolution.record).map_err(store_error)?;
                }
                Err(e) => report.errors.push(format!("{repository}:{}: {e}", resolution.record.tag)),
            }
        }
        // Tags gone from the registry, and those the filters or lastTags now leave out (a tag
        // that failed to resolve keeps its record until it is read again).
        let mut gone = Vec::new();
        for tag in previous.keys() {
            if !listed.contains(tag.as_str()) {
                report.deleted_tags.push(format!("{repository}:{tag}"));
                gone.push((repository.to_string(), tag.clone()));
            } else if !self.target.tags.accepts(tag) || left_out.contains(tag) {
                gone.push((repository.to_string(), tag.clone()));
            }
        }
        records::remove_tags(self.store, &self.target.name, &gone).map_err(store_error)?;
        self.store.flush().map_err(store_error)?;
        Ok(())
    }

    /// What `repository:tag` points at now. Nothing beyond its manifest is fetched when the
    /// digest is the one recorded and its SBOMs are stored.
    async fn resolve(
        &self,
        client: &Client,
        repository: &str,
        tag: &str,
        previous: Option<&TagRecord>,
    ) -> Result<Resolution, RegistryError> {
        let (bytes, media_type, digest) = client.manifest(repository, tag).await?;
        let checked = now();
        if let Some(previous) = previous.filter(|p| p.digest == digest)
            && previous.images.iter().all(|i| self.stored(&i.manifest_digest))
            && !previous.images.is_empty()
        {
            let record = TagRecord { checked, ..previous.clone() };
            return Ok(Resolution { record, missing: Vec::new(), unchanged: true });
        }
        let what = format!("{}/{repository}:{tag}", self.target.registry);
        let mut images = Vec::new();
        let mut created = None;
        if crate::registry::INDEX_TYPES.iter().any(|t| media_type.starts_with(t)) {
            let index: oci_spec::image::ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| RegistryError::Format { what: what.clone(), message: format!("image index: {e}") })?;
            let mut unavailable = Vec::new();
            for platform in &self.target.platforms {
                match crate::oci::select_platform(&index, platform) {
                    Ok(chosen) => images.push((platform.clone(), chosen.digest().to_string())),
                    Err(message) => unavailable.push(message),
                }
            }
            if images.is_empty() {
                return Err(RegistryError::Format { what, message: unavailable.join("; ") });
            }
            if let Some((_, first)) = images.first() {
                let (bytes, _, _) = client.manifest(repository, first).await?;
                created = self.created(client, repository, &bytes, &what).await?.0;
            }
        } else {
            let (when, platform) = self.created(client, repository, &bytes, &what).await?;
            created = when;
            images.push((platform.unwrap_or_else(Platform::host), digest.clone()));
        }
        let since = match previous {
            Some(p) if p.digest == digest => p.since.clone(),
            _ => checked.clone(),
        };
        let missing = images.iter().filter(|(_, d)| !self.stored(d)).cloned().collect();
        let record = TagRecord {
            repository: repository.to_string(),
            tag: tag.to_string(),
            digest,
            images: images
                .iter()
                .map(|(p, d)| PlatformImage { platform: p.to_string(), manifest_digest: d.clone() })
                .collect(),
            created,
            since,
            checked,
        };
        Ok(Resolution { record, missing, unchanged: false })
    }

    fn stored(&self, digest: &str) -> bool {
        matches!(scan::stored::get(self.store, digest), Ok(Some(_)))
    }

    /// The creation time and platform an image's config states.
    async fn created(
        &self,
        client: &Client,
        repository: &str,
        manifest: &[u8],
        what: &str,
    ) -> Result<(Option<String>, Option<Platform>), RegistryError> {
        let manifest: oci_spec::image::ImageManifest = serde_json::from_slice(manifest)
            .map_err(|e| RegistryError::Format { what: what.to_string(), message: format!("manifest: {e}") })?;
        let config = manifest.config();
        if config.size() > MAX_CONFIG as u64 {
            return Err(RegistryError::Format {
                what: what.to_string(),
                message: format!("its config is {} bytes, over the {MAX_CONFIG}-byte limit", config.size()),
            });
        }
        let bytes = client.blob_bytes(repository, config.digest().as_ref(), config.size()).await?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Format { what: what.to_string(), message: format!("image config: {e}") })?;
        let created = value["created"].as_str().map(String::from);
        let platform = match (value["os"].as_str(), value["architecture"].as_str()) {
            (Some(os), Some(architecture)) => Some(Platform {
                os: os.to_string(),
                architecture: architecture.to_string(),
                variant: value["variant"].as_str().map(String::from),
            }),
            _ => None,
        };
        Ok((created, platform))
    }

    /// Pulls and inventories the tag's images with no stored SBOM, and stores each whole.
    async fn scan_missing(
        &self,
        repository: &str,
        resolution: &Resolution,
        progress: &Shared,
    ) -> Result<(), RegistryError> {
        let record = &resolution.record;
        let index = (record.digest != record.images.first().map(|i| i.manifest_digest.clone()).unwrap_or_default())
            .then(|| record.digest.clone());
        for (platform, digest) in &resolution.missing {
            let reference = ImageReference {
                registry: self.target.registry.clone(),
                repository: repository.to_string(),
                tag: None,
                digest: Some(digest.clone()),
            };
            let options =
                ScanOptions { registry: self.target.options.clone(), platform: platform.clone(), ..self.scan.clone() };
            let last = Arc::new(AtomicU64::new(0));
            let bytes = Arc::clone(&progress.bytes);
            let on_progress: scan::ProgressFn = Arc::new(move |p| {
                if let scan::Progress::Pulled { bytes: now, .. } = p {
                    let before = last.swap(now, Ordering::Relaxed);
                    bytes.fetch_add(now.saturating_sub(before), Ordering::Relaxed);
                }
            });
            let mut sbom = scan::inventory_async(SourceSpec::Registry { reference }, options, Vec::new(), on_progress)
                .await
                .map_err(|e| RegistryError::Format {
                    what: format!("{}@{digest}", repository),
                    message: e.to_string(),
                })?;
            let name = format!("{}/{repository}:{}", self.target.registry, record.tag);
            sbom.source.name = name.clone();
            if let Some(image) = sbom.source.image.as_mut() {
                image.name = name;
                image.tags = vec![record.tag.clone()];
                image.index_digest = index.clone();
            }
            scan::stored::save(self.store, &sbom).map_err(store_error)?;
            // The first match, so the pane has its counts before any database update.
            crate::scan::rematch::record_first(self.store, &sbom).map_err(store_error)?;
            progress.images_scanned.fetch_add(1, Ordering::Relaxed);
            (self.progress)(&progress.snapshot());
        }
        Ok(())
    }
}

#[derive(Default)]
struct Shared {
    repositories_done: AtomicUsize,
    repositories_total: AtomicUsize,
    tags_checked: AtomicUsize,
    images_scanned: AtomicUsize,
    bytes: Arc<AtomicU64>,
}

impl Shared {
    fn snapshot(&self) -> CrawlProgress {
        CrawlProgress {
            repositories_done: self.repositories_done.load(Ordering::Relaxed),
            repositories_total: self.repositories_total.load(Ordering::Relaxed),
            tags_checked: self.tags_checked.load(Ordering::Relaxed),
            images_scanned: self.images_scanned.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

fn store_error(e: crate::store::StoreError) -> RegistryError {
    RegistryError::Format { what: "the store".into(), message: e.to_string() }
}

/// The tags of each repository, for listings: repository → its records.
pub fn by_repository(records: Vec<TagRecord>) -> BTreeMap<String, Vec<TagRecord>> {
    let mut out: BTreeMap<String, Vec<TagRecord>> = BTreeMap::new();
    for record in records {
        out.entry(record.repository.clone()).or_default().push(record);
    }
    out
}

//! Re-matching the stored SBOMs against the database as it is now, without touching a
//! registry: after `picket db update` or `import`, each image's findings are compared with its
//! last match, and what appeared or went is recorded per image and reported per advisory
//! ("CVE-… now affects 3 images").

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Distro, Ecosystem, Finding, FindingKind, Package, Sbom, Severity, SourcePackage};
use crate::store::{Store, StoreError, TreeName};
use crate::vulndb::VulnDb;
use crate::vulndb::matcher::{MatchError, MatchIndex, match_sbom};

/// One stored SBOM's findings at its last match, and what that match changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchSummary {
    /// When the match that found these findings ran (RFC 3339); a later re-match that finds
    /// the same set leaves the summary as it is.
    pub at: String,
    /// Active findings per severity, most severe first (`Severity::ALL` order).
    pub counts: [usize; 5],
    /// Each finding as `ID package version`, sorted.
    pub findings: Vec<String>,
    /// Findings this match found that the one before did not, and those it no longer found.
    /// Both empty for a first match.
    #[serde(default)]
    pub new: Vec<String>,
    #[serde(default)]
    pub fixed: Vec<String>,
}

/// What a summary needs of one finding: its key and its severity's slot in `Severity::ALL`.
type Keyed = (String, Option<usize>);

fn keyed(findings: &[Finding]) -> Vec<Keyed> {
    findings
        .iter()
        .filter(|f| matches!(f.kind, FindingKind::Vulnerability | FindingKind::Advisory))
        .map(|f| (finding_key(f), Severity::ALL.iter().position(|s| *s == f.severity)))
        .collect()
}

impl MatchSummary {
    fn of_keyed<'k>(findings: impl Iterator<Item = &'k Keyed>, previous: Option<&MatchSummary>) -> Self {
        let mut counts = [0usize; 5];
        let mut keys = BTreeSet::new();
        for (key, slot) in findings {
            if let Some(slot) = slot {
                counts[*slot] += 1;
            }
            keys.insert(key.clone());
        }
        let (new, fixed) = match previous {
            Some(before) => {
                let before: BTreeSet<&String> = before.findings.iter().collect();
                let now: BTreeSet<&String> = keys.iter().collect();
                (
                    now.difference(&before).map(|k| (*k).clone()).collect(),
                    before.difference(&now).map(|k| (*k).clone()).collect(),
                )
            }
            None => (Vec::new(), Vec::new()),
        };
        Self { at: jiff::Timestamp::now().to_string(), counts, findings: keys.into_iter().collect(), new, fixed }
    }
}

/// A finding's identity across matches: its id and the package version it is in.
pub fn finding_key(finding: &Finding) -> String {
    match &finding.package {
        Some(package) => format!("{} {} {}", finding.id, package.name, package.version),
        None => finding.id.clone(),
    }
}

/// The advisory id of a finding key.
pub fn key_id(key: &str) -> &str {
    key.split(' ').next().unwrap_or(key)
}

pub fn summary(store: &Store, key: &str) -> Result<Option<MatchSummary>, StoreError> {
    store.tree::<MatchSummary>(TreeName::MatchSummaries)?.get(key)
}

/// Records the first match of a newly stored SBOM (nothing when there is no database yet: the
/// next update's re-match takes it).
pub fn record_first(store: &Store, sbom: &Sbom) -> Result<(), StoreError> {
    let matched = match match_sbom(&VulnDb::open(store)?, sbom) {
        Ok(matched) => matched,
        Err(MatchError::Store(e)) => return Err(e),
        Err(MatchError::EmptyDatabase | MatchError::OldFormat { .. }) => return Ok(()),
    };
    let summaries = store.tree::<MatchSummary>(TreeName::MatchSummaries)?;
    let key = sbom.store_key();
    let previous = summaries.get(&key)?;
    let found = keyed(&matched.findings);
    let mut keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    summaries.insert(&key, &MatchSummary::of_keyed(found.iter(), previous.as_ref()))?;
    store.tree::<String>(TreeName::MatchDigests)?.insert(&key, &digest_of(&keys))
}

/// One image whose findings changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageChange {
    pub key: String,
    pub name: String,
    /// The image's config digest: what engines call its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    /// Its manifest's digest and, for a platform of a multi-platform image, the index's: what
    /// registries and kubelets call it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
    pub new: Vec<String>,
    pub fixed: Vec<String>,
}

/// What a re-match of every stored SBOM found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RematchReport {
    pub sboms: usize,
    /// SBOMs matched for the first time (their findings are the baseline, not news).
    pub first: usize,
    pub changed: Vec<ImageChange>,
    /// Each advisory id that appeared, and the images it now affects.
    pub new_by_id: BTreeMap<String, Vec<String>>,
    pub fixed_by_id: BTreeMap<String, Vec<String>>,
    /// Each advisory id that appeared, and the running containers whose image it now affects
    /// (filled by [`attach_running`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub running_by_id: BTreeMap<String, Vec<String>>,
    /// Each advisory id that appeared, and the cluster pods (`namespace/pod`) whose image it now
    /// affects (filled by `crawl::workloads::attach`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workloads_by_id: BTreeMap<String, Vec<String>>,
    /// Each advisory id that appeared, and its severity (the worst it was matched with).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub severity_by_id: BTreeMap<String, Severity>,
    pub databases: Vec<String>,
}

/// A running container, as far as re-matching cares: what to call it and its image's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningContainer {
    pub name: String,
    pub image_id: String,
}

/// Names, for each new advisory, the running containers whose image gained it (image ids
/// compared without the `sha256:` prefix, which Podman leaves out).
pub fn attach_running(report: &mut RematchReport, running: &[RunningContainer]) {
    let bare = |id: &str| id.strip_prefix("sha256:").unwrap_or(id).to_string();
    let mut by_image: HashMap<String, Vec<&str>> = HashMap::new();
    for container in running.iter().filter(|c| !c.image_id.is_empty()) {
        by_image.entry(bare(&container.image_id)).or_default().push(&container.name);
    }
    for change in &report.changed {
        let Some(containers) = change.config_digest.as_deref().and_then(|d| by_image.get(&bare(d))) else {
            continue;
        };
        for key in &change.new {
            let entry = report.running_by_id.entry(key_id(key).to_string()).or_default();
            entry.extend(containers.iter().map(|c| c.to_string()));
        }
    }
    for containers in report.running_by_id.values_mut() {
        containers.sort();
        containers.dedup();
    }
}

/// Everything a package's findings depend on: itself (as the matcher reads it) and its distro.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PackageIdentity {
    ecosystem: crate::model::Ecosystem,
    name: String,
    version: String,
    source: Option<(String, String)>,
    distro: Option<(String, String)>,
}

/// What re-matching reads of a stored SBOM (the same record as `Sbom`, its other fields
/// skipped unread): a package's findings depend only on these.
#[derive(Debug, Serialize, Deserialize)]
struct MatchInput {
    source: InputSource,
    #[serde(default)]
    distro: Option<Distro>,
    #[serde(default)]
    packages: Vec<InputPackage>,
}

#[derive(Debug, Serialize, Deserialize)]
struct InputSource {
    name: String,
    #[serde(default)]
    image: Option<InputImage>,
}

#[derive(Debug, Serialize, Deserialize)]
struct InputImage {
    #[serde(default)]
    config_digest: String,
    #[serde(default)]
    manifest_digest: Option<String>,
    #[serde(default)]
    index_digest: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct InputPackage {
    name: String,
    version: String,
    ecosystem: Ecosystem,
    #[serde(default)]
    purl: String,
    #[serde(default)]
    source: Option<SourcePackage>,
}

/// A hash of the distinct finding keys, in order. Only a fast path: on a mismatch (or a
/// toolchain whose hasher differs) the summary is compared whole.
fn digest_of(keys: &[&str]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    keys.hash(&mut hasher);
    format!("{:016x}:{}", hasher.finish(), keys.len())
}

/// Re-matches every stored SBOM from the store, one at a time. An SBOM whose findings are what
/// its summary holds costs its decoding and matching only; the others get a new summary.
pub fn rematch_all(store: &Store) -> Result<RematchReport, MatchError> {
    let index = MatchIndex::load(&VulnDb::open(store)?)?;
    let summaries = store.tree::<MatchSummary>(TreeName::MatchSummaries)?;
    let digests = store.tree::<String>(TreeName::MatchDigests)?;
    let inputs = store.tree::<MatchInput>(TreeName::Sboms)?;
    let mut report = RematchReport { databases: index.databases().to_vec(), ..Default::default() };
    let mut writes = Vec::new();
    let mut digest_writes = Vec::new();
    // Images share most of their packages (base layers): each distinct package on each distro
    // is matched once per re-match.
    let mut by_package: HashMap<PackageIdentity, Arc<Vec<Keyed>>> = HashMap::new();
    for entry in inputs.iter() {
        let (key, input) = entry?;
        report.sboms += 1;
        let distro = input.distro;
        let mut findings = Vec::with_capacity(input.packages.len());
        for package in input.packages {
            let identity = PackageIdentity {
                distro: distro.as_ref().map(|d| (d.id.clone(), d.version_id.clone())),
                source: package.source.as_ref().map(|s| (s.name.clone(), s.version.clone())),
                ecosystem: package.ecosystem,
                name: package.name,
                version: package.version,
            };
            if let Some(found) = by_package.get(&identity) {
                findings.push(Arc::clone(found));
                continue;
            }
            let full = Package {
                name: identity.name.clone(),
                version: identity.version.clone(),
                ecosystem: identity.ecosystem,
                purl: package.purl,
                source: package.source,
                licenses: Vec::new(),
                locations: Vec::new(),
                files: Vec::new(),
                cataloger: String::new(),
            };
            let found = Arc::new(keyed(&index.match_package(&full, distro.as_ref())));
            by_package.insert(identity, Arc::clone(&found));
            findings.push(found);
        }
        let mut keys: Vec<&str> = findings.iter().flat_map(|f| f.iter().map(|(k, _)| k.as_str())).collect();
        keys.sort_unstable();
        keys.dedup();
        let digest = digest_of(&keys);
        if digests.get(&key)?.as_deref() == Some(digest.as_str()) {
            continue;
        }
        let previous = summaries.get(&key)?;
        let summary = MatchSummary::of_keyed(findings.iter().flat_map(|f| f.iter()), previous.as_ref());
        if previous.is_none() {
            report.first += 1;
        }
        let unchanged = previous.as_ref().is_some_and(|p| p.findings == summary.findings && p.counts == summary.counts);
        digest_writes.push((key.clone(), Some(digest)));
        if unchanged {
            continue;
        }
        if !summary.new.is_empty() || !summary.fixed.is_empty() {
            let name = input.source.name.clone();
            for k in &summary.new {
                report.new_by_id.entry(key_id(k).to_string()).or_default().push(name.clone());
                let slot = findings.iter().flat_map(|f| f.iter()).find(|(key, _)| key == k).and_then(|(_, s)| *s);
                if let Some(severity) = slot.and_then(|s| Severity::ALL.get(s)) {
                    let worst = report.severity_by_id.entry(key_id(k).to_string()).or_insert(*severity);
                    if severity > worst {
                        *worst = *severity;
                    }
                }
            }
            for k in &summary.fixed {
                report.fixed_by_id.entry(key_id(k).to_string()).or_default().push(name.clone());
            }
            report.changed.push(ImageChange {
                key: key.clone(),
                name,
                config_digest: input.source.image.as_ref().map(|i| i.config_digest.clone()).filter(|d| !d.is_empty()),
                manifest_digest: input.source.image.as_ref().and_then(|i| i.manifest_digest.clone()),
                index_digest: input.source.image.as_ref().and_then(|i| i.index_digest.clone()),
                new: summary.new.clone(),
                fixed: summary.fixed.clone(),
            });
        }
        writes.push((key, Some(summary)));
        if writes.len() >= 1000 {
            summaries.apply(std::mem::take(&mut writes))?;
        }
        if digest_writes.len() >= 1000 {
            digests.apply(std::mem::take(&mut digest_writes))?;
        }
    }
    summaries.apply(writes)?;
    digests.apply(digest_writes)?;
    for images in report.new_by_id.values_mut().chain(report.fixed_by_id.values_mut()) {
        images.sort();
        images.dedup();
    }
    store.flush()?;
    Ok(report)
}

//! Re-matching the stored SBOMs against the database as it is now, without touching a
//! registry: after `picket db update` or `import`, each image's findings are compared with its
//! last match, and what appeared or went is recorded per image and reported per advisory
//! ("CVE-… now affects 3 images").

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{Finding, FindingKind, Sbom, Severity};
use crate::store::{Store, StoreError, TreeName};
use crate::vulndb::VulnDb;
use crate::vulndb::matcher::{MatchError, MatchIndex, match_sbom};

/// One stored SBOM's findings at its last match, and what that match changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchSummary {
    /// When it was matched (RFC 3339).
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
    fn of(findings: &[Finding], previous: Option<&MatchSummary>) -> Self {
        Self::of_keyed(keyed(findings).iter(), previous)
    }

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
    summaries.insert(&key, &MatchSummary::of(&matched.findings, previous.as_ref()))
}

/// One image whose findings changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageChange {
    pub key: String,
    pub name: String,
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
    pub databases: Vec<String>,
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

impl PackageIdentity {
    fn of(package: &crate::model::Package, distro: Option<&crate::model::Distro>) -> Self {
        Self {
            ecosystem: package.ecosystem,
            name: package.name.clone(),
            version: package.version.clone(),
            source: package.source.as_ref().map(|s| (s.name.clone(), s.version.clone())),
            distro: distro.map(|d| (d.id.clone(), d.version_id.clone())),
        }
    }
}

/// Re-matches every stored SBOM from the store, one at a time, and records each summary.
pub fn rematch_all(store: &Store) -> Result<RematchReport, MatchError> {
    let index = MatchIndex::load(&VulnDb::open(store)?)?;
    let summaries = store.tree::<MatchSummary>(TreeName::MatchSummaries)?;
    let sboms = store.tree::<Sbom>(TreeName::Sboms)?;
    let mut report = RematchReport::default();
    let mut writes = Vec::new();
    report.databases = index.databases().to_vec();
    // Images share most of their packages (base layers): each distinct package on each distro
    // is matched once per re-match.
    let mut by_package: std::collections::HashMap<PackageIdentity, std::sync::Arc<Vec<Keyed>>> = Default::default();
    for entry in sboms.iter() {
        let (key, sbom) = entry?;
        let mut findings = Vec::new();
        for package in &sbom.packages {
            let identity = PackageIdentity::of(package, sbom.distro.as_ref());
            let found = match by_package.get(&identity) {
                Some(found) => std::sync::Arc::clone(found),
                None => {
                    let found = std::sync::Arc::new(keyed(&index.match_package(package, sbom.distro.as_ref())));
                    by_package.insert(identity, std::sync::Arc::clone(&found));
                    found
                }
            };
            findings.push(found);
        }
        let previous = summaries.get(&key)?;
        let summary = MatchSummary::of_keyed(findings.iter().flat_map(|f| f.iter()), previous.as_ref());
        report.sboms += 1;
        if previous.is_none() {
            report.first += 1;
        }
        if !summary.new.is_empty() || !summary.fixed.is_empty() {
            let name = sbom.source.name.clone();
            for k in &summary.new {
                report.new_by_id.entry(key_id(k).to_string()).or_default().push(name.clone());
            }
            for k in &summary.fixed {
                report.fixed_by_id.entry(key_id(k).to_string()).or_default().push(name.clone());
            }
            report.changed.push(ImageChange {
                key: key.clone(),
                name,
                new: summary.new.clone(),
                fixed: summary.fixed.clone(),
            });
        }
        writes.push((key, Some(summary)));
        if writes.len() >= 1000 {
            summaries.apply(std::mem::take(&mut writes))?;
        }
    }
    summaries.apply(writes)?;
    for images in report.new_by_id.values_mut().chain(report.fixed_by_id.values_mut()) {
        images.sort();
        images.dedup();
    }
    store.flush()?;
    Ok(report)
}

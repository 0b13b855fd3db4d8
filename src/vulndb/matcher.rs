//! Matching an inventory against the database: each package under the ecosystem names its
//! records use (release-specific for distributions, source package for Debian), then findings
//! for one package that share an id or alias folded into one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::Advisory;
use super::db::VulnDb;
use crate::model::Sbom;
use crate::model::{Distro, Ecosystem, Finding, FindingKind, FindingPackage, FixState, Package};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error(
        "the vulnerability database is empty: run `picket db update`, or `picket db import PATH` where there is no network"
    )]
    EmptyDatabase,
    #[error(
        "the vulnerability database was written by another picket version ({sources}): run `picket db update`, or import again"
    )]
    OldFormat { sources: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ecosystem names records use for this package, most specific first.
pub fn ecosystem_names(package: &Package, distro: Option<&Distro>) -> Vec<String> {
    let base = package.ecosystem.osv_name().to_string();
    let release = distro.map(|d| d.version_id.as_str()).unwrap_or_default();
    let mut names = Vec::new();
    match package.ecosystem {
        Ecosystem::Debian if !release.is_empty() => {
            names.push(format!("Debian:{}", release.split('.').next().unwrap_or(release)));
        }
        Ecosystem::Ubuntu if !release.is_empty() => {
            names.push(format!("Ubuntu:{release}"));
            names.push(format!("Ubuntu:{release}:LTS"));
        }
        Ecosystem::Alpine if !release.is_empty() => {
            let minor: Vec<&str> = release.split('.').take(2).collect();
            names.push(format!("Alpine:v{}", minor.join(".")));
        }
        _ => {}
    }
    // Distribution records always name their release; the bare name only serves packages
    // whose release is unknown, and language ecosystems.
    if names.is_empty() {
        names.push(base);
    }
    names
}

/// The name and version records are written against: Debian and Alpine records name the
/// source package; Go's standard library drops the `go` prefix.
fn lookup_identity(package: &Package) -> (&str, &str) {
    match (&package.source, package.ecosystem) {
        (Some(source), Ecosystem::Debian | Ecosystem::Ubuntu | Ecosystem::Alpine | Ecosystem::Wolfi) => {
            (source.name.as_str(), if source.version.is_empty() { &package.version } else { &source.version })
        }
        (_, Ecosystem::Go) if package.name == "stdlib" => {
            (package.name.as_str(), package.version.strip_prefix("go").unwrap_or(&package.version))
        }
        _ => (package.name.as_str(), package.version.as_str()),
    }
}

/// One advisory that affects a package.
struct Hit {
    found: Arc<(String, Advisory)>,
    fixed: Vec<String>,
}

impl Hit {
    fn advisory(&self) -> &Advisory {
        &self.found.1
    }

    fn source(&self) -> &str {
        &self.found.0
    }
}

#[derive(Debug, Default)]
pub struct Matched {
    pub findings: Vec<Finding>,
    /// `source (updated …)` for each source consulted.
    pub databases: Vec<String>,
}

/// Matches with lookups in the store, each package key read once: the path for one scan.
pub fn match_sbom(db: &VulnDb<'_>, sbom: &Sbom) -> Result<Matched, MatchError> {
    let sources = db.sources()?;
    if sources.is_empty() {
        return Err(MatchError::EmptyDatabase);
    }
    let active = db.active()?;
    check_format(&sources)?;
    // Binary packages of one source package look up the same records: read them once.
    let mut cache: HashMap<String, Shared> = HashMap::new();
    let findings = match_packages(sbom, |ecosystem, name| {
        let key = super::db::package_key(ecosystem, name);
        if let Some(found) = cache.get(&key) {
            return Ok(Arc::clone(found));
        }
        let found: Shared = db.lookup(&active, ecosystem, name)?.into_iter().map(Arc::new).collect::<Vec<_>>().into();
        cache.insert(key, Arc::clone(&found));
        Ok(found)
    })?;
    Ok(Matched { findings, databases: describe(&sources) })
}

/// Refuses a database none of whose sources can be read by this build.
fn check_format(sources: &[super::SourceState]) -> Result<(), MatchError> {
    if sources.iter().any(|s| s.format == super::db::ADVISORY_FORMAT) {
        return Ok(());
    }
    let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    Err(MatchError::OldFormat { sources: names.join(", ") })
}

fn describe(sources: &[super::SourceState]) -> Vec<String> {
    sources
        .iter()
        .map(|s| match s.format == super::db::ADVISORY_FORMAT {
            true => format!("{} (updated {})", s.name, s.updated_at),
            false => format!("{} (not read: written by another picket version; run picket db update)", s.name),
        })
        .collect()
}

/// The advisories of one package key, shared between lookups.
type Shared = Arc<[Arc<(String, Advisory)>]>;

/// Every active advisory in memory, by package: for matching many inventories against one
/// database state (the console, re-matching stored SBOMs after an update).
pub struct MatchIndex {
    by_package: HashMap<String, Shared>,
    databases: Vec<String>,
    empty: Shared,
}

impl MatchIndex {
    pub fn load(db: &VulnDb<'_>) -> Result<Self, MatchError> {
        let sources = db.sources()?;
        if sources.is_empty() {
            return Err(MatchError::EmptyDatabase);
        }
        check_format(&sources)?;
        let mut grouped: HashMap<String, Vec<Arc<(String, Advisory)>>> = HashMap::new();
        for (source, advisory) in db.active_advisories()? {
            let key = super::db::package_key(&advisory.ecosystem, &advisory.package);
            grouped.entry(key).or_default().push(Arc::new((source, advisory)));
        }
        let by_package = grouped.into_iter().map(|(key, list)| (key, list.into())).collect();
        Ok(Self { by_package, databases: describe(&sources), empty: Vec::new().into() })
    }

    pub fn match_sbom(&self, sbom: &Sbom) -> Matched {
        let lookup = |ecosystem: &str, name: &str| -> Result<Shared, StoreError> {
            let key = super::db::package_key(ecosystem, name);
            Ok(self.by_package.get(&key).map_or_else(|| Arc::clone(&self.empty), Arc::clone))
        };
        let findings = match_packages(sbom, lookup).unwrap_or_default();
        Matched { findings, databases: self.databases.clone() }
    }

    /// The findings of one package of an inventory on `distro` (a package's findings depend on
    /// nothing else in its SBOM, so callers matching many SBOMs may keep them per package).
    pub fn match_package(&self, package: &Package, distro: Option<&Distro>) -> Vec<Finding> {
        let lookup = |ecosystem: &str, name: &str| -> Result<Shared, StoreError> {
            let key = super::db::package_key(ecosystem, name);
            Ok(self.by_package.get(&key).map_or_else(|| Arc::clone(&self.empty), Arc::clone))
        };
        match_one(package, distro, lookup).unwrap_or_default()
    }

    pub fn databases(&self) -> &[String] {
        &self.databases
    }
}

fn match_one(
    package: &Package,
    distro: Option<&Distro>,
    mut lookup: impl FnMut(&str, &str) -> Result<Shared, StoreError>,
) -> Result<Vec<Finding>, StoreError> {
    let (name, version) = lookup_identity(package);
    let mut hits: Vec<Hit> = Vec::new();
    for ecosystem in ecosystem_names(package, distro) {
        for found in lookup(&ecosystem, name)?.iter() {
            if let Some(verdict) = found.1.affects(package.ecosystem, version) {
                hits.push(Hit { found: Arc::clone(found), fixed: verdict.fixed });
            }
        }
    }
    Ok(fold(package, name, hits))
}

fn match_packages(
    sbom: &Sbom,
    mut lookup: impl FnMut(&str, &str) -> Result<Shared, StoreError>,
) -> Result<Vec<Finding>, StoreError> {
    let mut findings = Vec::new();
    for package in &sbom.packages {
        findings.extend(match_one(package, sbom.distro.as_ref(), &mut lookup)?);
    }
    findings.sort_by(|a, b| {
        b.severity.cmp(&a.severity).then_with(|| package_name(a).cmp(package_name(b))).then_with(|| a.id.cmp(&b.id))
    });
    Ok(findings)
}

fn package_name(finding: &Finding) -> &str {
    finding.package.as_ref().map_or("", |p| p.name.as_str())
}

/// The id a finding is shown under: the CVE when there is one, as scanners' users expect.
fn primary_id(ids: &[String]) -> String {
    ids.iter().find(|id| id.starts_with("CVE-")).or_else(|| ids.first()).cloned().unwrap_or_default()
}

/// Folds the advisories of one package that share an id or alias into one finding each
/// (union-find over ids, so a package with hundreds of records stays linear).
fn fold(package: &Package, lookup_name: &str, hits: Vec<Hit>) -> Vec<Finding> {
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut parent: Vec<usize> = (0..hits.len()).collect();
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (index, hit) in hits.iter().enumerate() {
        for id in std::iter::once(&hit.advisory().id).chain(&hit.advisory().aliases) {
            match owner.get(id.as_str()) {
                Some(&other) => {
                    let (a, b) = (root(&mut parent, index), root(&mut parent, other));
                    parent[a.max(b)] = a.min(b);
                }
                None => {
                    owner.insert(id, index);
                }
            }
        }
    }
    let roots: Vec<usize> = (0..hits.len()).map(|i| root(&mut parent, i)).collect();
    let mut groups: BTreeMap<usize, Vec<Hit>> = BTreeMap::new();
    for (hit, group) in hits.into_iter().zip(roots) {
        groups.entry(group).or_default().push(hit);
    }
    groups
        .into_values()
        .map(|members| {
            let mut ids: Vec<String> = members
                .iter()
                .flat_map(|h| std::iter::once(h.advisory().id.clone()).chain(h.advisory().aliases.iter().cloned()))
                .collect();
            ids.sort();
            ids.dedup();
            finding(package, lookup_name, ids, members)
        })
        .collect()
}

fn finding(package: &Package, lookup_name: &str, ids: Vec<String>, members: Vec<Hit>) -> Finding {
    let id = primary_id(&ids);
    let informational = members.iter().all(|h| h.advisory().informational.is_some());
    let kind = if informational { FindingKind::Advisory } else { FindingKind::Vulnerability };
    let best = members.iter().map(|h| h.advisory()).max_by(|a, b| {
        (a.cvss.is_some(), a.severity, a.details.len()).cmp(&(b.cvss.is_some(), b.severity, b.details.len()))
    });
    let severity = members.iter().map(|h| h.advisory().severity).max().unwrap_or_default();
    let mut finding = Finding::new(kind, id.clone(), String::new(), severity);
    finding.aliases = ids.into_iter().filter(|other| *other != id).collect();
    if let Some(best) = best {
        finding.cvss =
            members.iter().filter_map(|h| h.advisory().cvss.clone()).max_by(|a, b| a.version.cmp(&b.version));
        finding.description =
            members.iter().map(|h| &h.advisory().details).max_by_key(|d| d.len()).cloned().unwrap_or_default();
        finding.title = members
            .iter()
            .map(|h| h.advisory().summary.trim())
            .find(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| first_line(&best.details));
        if let Some(label) = &best.informational {
            finding.title = format!("{label}: {}", finding.title);
        }
    }
    let mut fixed: Vec<String> = members.iter().flat_map(|h| h.fixed.iter().cloned()).collect();
    fixed.sort_by(|a, b| super::versions::compare(package.ecosystem, a, b));
    fixed.dedup();
    let declared = members.iter().filter_map(|h| h.advisory().fix_state).max_by_key(|s| match s {
        FixState::WontFix => 3,
        FixState::NotFixed => 2,
        FixState::Fixed => 1,
        FixState::Unknown => 0,
    });
    finding.fix_state = if !fixed.is_empty() { FixState::Fixed } else { declared.unwrap_or(FixState::NotFixed) };
    finding.fixed_versions = fixed;
    let mut references: Vec<String> = members.iter().flat_map(|h| h.advisory().references.iter().cloned()).collect();
    references.dedup();
    finding.references = references;
    finding.locations = package.locations.clone();
    finding.package = Some(FindingPackage {
        name: package.name.clone(),
        version: package.version.clone(),
        ecosystem: package.ecosystem,
        purl: package.purl.clone(),
        source_name: (lookup_name != package.name).then(|| lookup_name.to_string()),
    });
    let mut data_sources: Vec<&str> = members.iter().map(|h| h.source()).collect();
    data_sources.sort();
    data_sources.dedup();
    finding.data_source = data_sources.join(",");
    finding
}

fn first_line(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    match line.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// Counts per source, for `db status`.
pub fn summarize(db: &VulnDb<'_>) -> Result<BTreeMap<String, u64>, StoreError> {
    Ok(db.sources()?.into_iter().map(|s| (s.name, s.advisories)).collect())
}

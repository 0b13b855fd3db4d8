//! Matching an inventory against the database: each package under the ecosystem names its
//! records use (release-specific for distributions, source package for Debian), then findings
//! for one package that share an id or alias folded into one.

use std::collections::BTreeMap;

use super::Advisory;
use super::db::VulnDb;
use crate::model::{Distro, Ecosystem, Finding, FindingKind, FindingPackage, FixState, Package};
use crate::scan::Sbom;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error(
        "the vulnerability database is empty: run `picket db update`, or `picket db import PATH` where there is no network"
    )]
    EmptyDatabase,
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
    names.push(base);
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
    advisory: Advisory,
    fixed: Vec<String>,
    source: String,
}

#[derive(Debug, Default)]
pub struct Matched {
    pub findings: Vec<Finding>,
    /// `source (updated …)` for each source consulted.
    pub databases: Vec<String>,
}

pub fn match_sbom(db: &VulnDb<'_>, sbom: &Sbom) -> Result<Matched, MatchError> {
    let sources = db.sources()?;
    if sources.is_empty() {
        return Err(MatchError::EmptyDatabase);
    }
    let active = db.active()?;
    let mut findings = Vec::new();
    for package in &sbom.packages {
        let (name, version) = lookup_identity(package);
        let mut hits: Vec<Hit> = Vec::new();
        for ecosystem in ecosystem_names(package, sbom.distro.as_ref()) {
            for (source, advisory) in db.lookup(&active, &ecosystem, name)? {
                if let Some(verdict) = advisory.affects(package.ecosystem, version) {
                    hits.push(Hit { advisory, fixed: verdict.fixed, source });
                }
            }
        }
        findings.extend(fold(package, name, hits));
    }
    findings.sort_by(|a, b| {
        b.severity.cmp(&a.severity).then_with(|| package_name(a).cmp(package_name(b))).then_with(|| a.id.cmp(&b.id))
    });
    let databases = sources.iter().map(|s| format!("{} (updated {})", s.name, s.updated_at)).collect();
    Ok(Matched { findings, databases })
}

fn package_name(finding: &Finding) -> &str {
    finding.package.as_ref().map_or("", |p| p.name.as_str())
}

/// The id a finding is shown under: the CVE when there is one, as scanners' users expect.
fn primary_id(ids: &[String]) -> String {
    ids.iter().find(|id| id.starts_with("CVE-")).or_else(|| ids.first()).cloned().unwrap_or_default()
}

/// Folds the advisories of one package that share an id or alias into one finding each.
fn fold(package: &Package, lookup_name: &str, hits: Vec<Hit>) -> Vec<Finding> {
    let mut groups: Vec<(Vec<String>, Vec<Hit>)> = Vec::new();
    for hit in hits {
        let ids: Vec<String> =
            std::iter::once(hit.advisory.id.clone()).chain(hit.advisory.aliases.iter().cloned()).collect();
        let joined: Vec<usize> = groups
            .iter()
            .enumerate()
            .filter(|(_, (known, _))| ids.iter().any(|id| known.contains(id)))
            .map(|(i, _)| i)
            .collect();
        let mut merged_ids = ids;
        let mut merged_hits = vec![hit];
        for index in joined.into_iter().rev() {
            let (known, members) = groups.remove(index);
            merged_ids.extend(known);
            merged_hits.extend(members);
        }
        merged_ids.sort();
        merged_ids.dedup();
        groups.push((merged_ids, merged_hits));
    }
    groups.into_iter().map(|(ids, members)| finding(package, lookup_name, ids, members)).collect()
}

fn finding(package: &Package, lookup_name: &str, ids: Vec<String>, members: Vec<Hit>) -> Finding {
    let id = primary_id(&ids);
    let informational = members.iter().all(|h| h.advisory.informational.is_some());
    let kind = if informational { FindingKind::Advisory } else { FindingKind::Vulnerability };
    let best = members.iter().map(|h| &h.advisory).max_by(|a, b| {
        (a.cvss.is_some(), a.severity, a.details.len()).cmp(&(b.cvss.is_some(), b.severity, b.details.len()))
    });
    let severity = members.iter().map(|h| h.advisory.severity).max().unwrap_or_default();
    let mut finding = Finding::new(kind, id.clone(), String::new(), severity);
    finding.aliases = ids.into_iter().filter(|other| *other != id).collect();
    if let Some(best) = best {
        finding.cvss = members.iter().filter_map(|h| h.advisory.cvss.clone()).max_by(|a, b| a.version.cmp(&b.version));
        finding.description =
            members.iter().map(|h| &h.advisory.details).max_by_key(|d| d.len()).cloned().unwrap_or_default();
        finding.title = members
            .iter()
            .map(|h| h.advisory.summary.trim())
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
    let declared = members.iter().filter_map(|h| h.advisory.fix_state).max_by_key(|s| match s {
        FixState::WontFix => 3,
        FixState::NotFixed => 2,
        FixState::Fixed => 1,
        FixState::Unknown => 0,
    });
    finding.fix_state = if !fixed.is_empty() { FixState::Fixed } else { declared.unwrap_or(FixState::NotFixed) };
    finding.fixed_versions = fixed;
    let mut references: Vec<String> = members.iter().flat_map(|h| h.advisory.references.iter().cloned()).collect();
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
    let mut data_sources: Vec<&str> = members.iter().map(|h| h.source.as_str()).collect();
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

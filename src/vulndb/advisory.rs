//! The stored form of an advisory for one package: what matching needs, pre-digested from an
//! OSV record or a native distribution feed, so that a lookup decodes one small value.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::osv;
use super::versions;
use crate::model::{Cvss, Ecosystem, FixState, Severity};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The ecosystem as the record names it (`PyPI`, `Debian:12`).
    pub ecosystem: String,
    pub package: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<Cvss>,
    pub ranges: Vec<AffectedRange>,
    #[serde(default, skip_serializing_if = "VersionList::is_empty")]
    pub versions: VersionList,
    /// How a distribution rates its own fix (`wont-fix` for Debian `no-dsa`/`ignored`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_state: Option<FixState>,
    /// `unmaintained`, `unsound` …: an informational advisory, not a vulnerability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub informational: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub modified: String,
}

/// An explicit list of affected versions, kept as one newline-framed string: PyPI records list
/// hundreds of versions, and a lookup should not allocate each of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VersionList(String);

impl VersionList {
    pub fn from_slice(versions: &[String]) -> Self {
        let mut list = Self::default();
        list.extend(versions);
        list
    }

    pub fn extend(&mut self, versions: &[String]) {
        for version in versions.iter().filter(|v| !v.contains('\n')) {
            if self.0.is_empty() {
                self.0.push('\n');
            }
            self.0.push_str(version);
            self.0.push('\n');
        }
    }

    pub fn contains(&self, version: &str) -> bool {
        !self.0.is_empty() && self.0.contains(&format!("\n{version}\n"))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedRange {
    /// `ECOSYSTEM` or `SEMVER`.
    pub kind: RangeKind,
    pub events: Vec<RangeEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RangeKind {
    Ecosystem,
    Semver,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeEvent {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl RangeEvent {
    fn version(&self) -> &str {
        match self {
            Self::Introduced(v) | Self::Fixed(v) | Self::LastAffected(v) | Self::Limit(v) => v,
        }
    }
}

/// The outcome of checking one installed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The lowest fixed version above the installed one, from the range that matched.
    pub fixed: Vec<String>,
}

impl Advisory {
    /// Whether `version` (of `ecosystem`) is affected, and by which fixes.
    pub fn affects(&self, ecosystem: Ecosystem, version: &str) -> Option<Verdict> {
        if self.versions.contains(version) {
            return Some(Verdict { fixed: self.fixes_above(ecosystem, version) });
        }
        for range in &self.ranges {
            let compare = |a: &str, b: &str| match range.kind {
                RangeKind::Semver => versions::compare(Ecosystem::Go, a, b),
                RangeKind::Ecosystem => versions::compare(ecosystem, a, b),
            };
            if range_contains(&range.events, version, &compare) {
                let mut fixed: Vec<String> = range
                    .events
                    .iter()
                    .filter_map(|e| match e {
                        RangeEvent::Fixed(v) if compare(v, version) == Ordering::Greater => Some(v.clone()),
                        _ => None,
                    })
                    .collect();
                fixed.sort_by(|a, b| compare(a, b));
                fixed.truncate(1);
                return Some(Verdict { fixed });
            }
        }
        None
    }

    fn fixes_above(&self, ecosystem: Ecosystem, version: &str) -> Vec<String> {
        let mut fixed: Vec<String> = self
            .ranges
            .iter()
            .flat_map(|r| &r.events)
            .filter_map(|e| match e {
                RangeEvent::Fixed(v) if versions::compare(ecosystem, v, version) == Ordering::Greater => {
                    Some(v.clone())
                }
                _ => None,
            })
            .collect();
        fixed.sort_by(|a, b| versions::compare(ecosystem, a, b));
        fixed.truncate(1);
        fixed
    }
}

/// OSV range evaluation: events in version order (`introduced: 0` first), each one at or below
/// the installed version switching the state.
fn range_contains(events: &[RangeEvent], version: &str, compare: &dyn Fn(&str, &str) -> Ordering) -> bool {
    let is_zero = |e: &RangeEvent| matches!(e, RangeEvent::Introduced(v) if v == "0");
    let mut sorted: Vec<&RangeEvent> = events.iter().collect();
    sorted.sort_by(|a, b| match (is_zero(a), is_zero(b)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => compare(a.version(), b.version()),
    });
    let mut affected = false;
    for event in sorted {
        match event {
            RangeEvent::Introduced(v) => {
                if v == "0" || compare(version, v) != Ordering::Less {
                    affected = true;
                }
            }
            RangeEvent::Fixed(v) | RangeEvent::Limit(v) => {
                if compare(version, v) != Ordering::Less {
                    affected = false;
                }
            }
            RangeEvent::LastAffected(v) => {
                if compare(version, v) == Ordering::Greater {
                    affected = false;
                }
            }
        }
    }
    affected
}

/// The severity of a record: the best CVSS vector (v4, then v3.x), else the database's rating.
pub fn severity_of(record: &osv::Record, affected: &osv::Affected) -> (Severity, Option<Cvss>) {
    let entries = affected.severity.iter().chain(&record.severity);
    let mut best: Option<Cvss> = None;
    for entry in entries {
        if let Some(cvss) = super::cvss::score(&entry.kind, &entry.score)
            && best.as_ref().is_none_or(|b| b.version < cvss.version)
        {
            best = Some(cvss);
        }
    }
    if let Some(cvss) = best {
        return (Severity::from_cvss_score(cvss.score), Some(cvss));
    }
    let rated =
        [affected.ecosystem_specific.as_ref(), affected.database_specific.as_ref(), record.database_specific.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|value| value.get("severity").and_then(|s| s.as_str()).and_then(|s| s.parse::<Severity>().ok()));
    (rated.unwrap_or(Severity::Unknown), None)
}

/// Converts an OSV record into one advisory per affected package entry it describes (several
/// `affected[]` entries for one package merge into one advisory). Withdrawn records yield none.
pub fn from_osv(record: &osv::Record) -> Vec<Advisory> {
    if record.withdrawn.is_some() {
        return Vec::new();
    }
    let mut aliases: Vec<String> = record.aliases.iter().chain(&record.upstream).cloned().collect();
    aliases.sort();
    aliases.dedup();
    aliases.retain(|a| *a != record.id);
    let summary = record.summary.clone().unwrap_or_default();
    let details = record.details.clone().unwrap_or_default();
    let references: Vec<String> = record.references.iter().map(|r| r.url.clone()).collect();
    let mut out: Vec<Advisory> = Vec::new();
    for affected in &record.affected {
        let Some(package) = &affected.package else { continue };
        let ranges: Vec<AffectedRange> = affected
            .ranges
            .iter()
            .filter_map(|range| {
                let kind = match range.kind.as_str() {
                    "ECOSYSTEM" => RangeKind::Ecosystem,
                    "SEMVER" => RangeKind::Semver,
                    _ => return None,
                };
                let events = range
                    .events
                    .iter()
                    .filter_map(|e| {
                        e.introduced
                            .clone()
                            .map(RangeEvent::Introduced)
                            .or_else(|| e.fixed.clone().map(RangeEvent::Fixed))
                            .or_else(|| e.last_affected.clone().map(RangeEvent::LastAffected))
                            .or_else(|| e.limit.clone().map(RangeEvent::Limit))
                    })
                    .collect();
                Some(AffectedRange { kind, events })
            })
            .collect();
        if ranges.is_empty() && affected.versions.is_empty() {
            continue;
        }
        let (severity, cvss) = severity_of(record, affected);
        let informational = affected
            .database_specific
            .as_ref()
            .and_then(|d| d.get("informational"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        if let Some(existing) = out.iter_mut().find(|a| a.ecosystem == package.ecosystem && a.package == package.name) {
            existing.ranges.extend(ranges);
            existing.versions.extend(&affected.versions);
            continue;
        }
        out.push(Advisory {
            id: record.id.clone(),
            aliases: aliases.clone(),
            ecosystem: package.ecosystem.clone(),
            package: package.name.clone(),
            summary: summary.clone(),
            details: details.clone(),
            severity,
            cvss,
            ranges,
            versions: VersionList::from_slice(&affected.versions),
            fix_state: None,
            informational,
            references: references.clone(),
            modified: record.modified.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advisory(kind: RangeKind, events: Vec<RangeEvent>) -> Advisory {
        Advisory {
            id: "X".into(),
            aliases: vec![],
            ecosystem: "PyPI".into(),
            package: "p".into(),
            summary: String::new(),
            details: String::new(),
            severity: Severity::Unknown,
            cvss: None,
            ranges: vec![AffectedRange { kind, events }],
            versions: VersionList::default(),
            fix_state: None,
            informational: None,
            references: vec![],
            modified: String::new(),
        }
    }

    use RangeEvent::*;

    #[test]
    fn introduced_fixed_ranges() {
        let a = advisory(RangeKind::Ecosystem, vec![Introduced("0".into()), Fixed("1.26.5".into())]);
        assert_eq!(a.affects(Ecosystem::PyPI, "1.26.4"), Some(Verdict { fixed: vec!["1.26.5".into()] }));
        assert_eq!(a.affects(Ecosystem::PyPI, "1.26.5"), None);
        assert_eq!(a.affects(Ecosystem::PyPI, "2.0"), None);
    }

    #[test]
    fn several_windows_and_last_affected_and_limit() {
        let events = vec![
            Introduced("1.0".into()),
            Fixed("1.5".into()),
            Introduced("2.0".into()),
            LastAffected("2.3".into()),
            Introduced("3.0".into()),
            Limit("3.2".into()),
        ];
        let a = advisory(RangeKind::Ecosystem, events);
        let hit = |v: &str| a.affects(Ecosystem::PyPI, v).is_some();
        assert!(!hit("0.9") && hit("1.0") && hit("1.4.9") && !hit("1.5") && !hit("1.9"));
        assert!(hit("2.0") && hit("2.3") && !hit("2.3.1"));
        assert!(hit("3.1") && !hit("3.2"));
    }

    #[test]
    fn semver_ranges_accept_go_v_prefix() {
        let a = advisory(RangeKind::Semver, vec![Introduced("0".into()), Fixed("1.20.5".into())]);
        assert!(a.affects(Ecosystem::Go, "v1.20.4").is_some());
        assert!(a.affects(Ecosystem::Go, "v1.20.5").is_none());
    }

    #[test]
    fn explicit_versions_list() {
        let mut a = advisory(RangeKind::Ecosystem, vec![]);
        a.ranges.clear();
        a.versions = VersionList::from_slice(&["5.3".into(), "5.4".into()]);
        assert!(a.affects(Ecosystem::PyPI, "5.4").is_some());
        assert!(a.affects(Ecosystem::PyPI, "5.5").is_none());
    }
}

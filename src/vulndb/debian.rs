//! The Debian security tracker JSON (`https://security-tracker.debian.org/tracker/data/json`):
//! per source package and CVE, each release's status. It says what OSV lumps together: open
//! (no fix yet), `no-dsa` (minor, maybe later), ignored (will not be fixed), undetermined.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Advisory;
use super::advisory::{AffectedRange, RangeEvent, RangeKind};
use crate::model::{FixState, Severity};

type Tracker = BTreeMap<String, BTreeMap<String, TrackerEntry>>;

#[derive(Debug, Deserialize)]
struct TrackerEntry {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    releases: BTreeMap<String, ReleaseStatus>,
}

#[derive(Debug, Deserialize)]
struct ReleaseStatus {
    #[serde(default)]
    status: String,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    nodsa: Option<String>,
    #[serde(default)]
    nodsa_reason: Option<String>,
}

/// Debian release codenames and their numbers (OSV writes `Debian:12`).
pub fn release_number(codename: &str) -> Option<&'static str> {
    Some(match codename {
        "jessie" => "8",
        "stretch" => "9",
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        _ => return None,
    })
}

fn urgency_severity(urgency: &str) -> Severity {
    match urgency.trim_end_matches('*').trim() {
        "unimportant" | "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        _ => Severity::Unknown,
    }
}

/// Converts the tracker document; returns the advisories and how many (package, CVE) entries
/// it held.
pub fn parse(name: &str, bytes: &[u8]) -> Result<(Vec<Advisory>, u64), String> {
    let tracker: Tracker =
        serde_json::from_slice(bytes).map_err(|e| format!("{name}: not a Debian security tracker document: {e}"))?;
    let mut out = Vec::new();
    let mut entries = 0;
    for (package, cves) in &tracker {
        for (id, entry) in cves {
            entries += 1;
            for (codename, release) in &entry.releases {
                let Some(number) = release_number(codename) else { continue };
                let fixed = release.fixed_version.as_deref().filter(|v| !v.is_empty());
                let (events, fix_state) = match release.status.as_str() {
                    // `resolved` with version 0: the release never had the vulnerable code.
                    "resolved" => match fixed {
                        Some("0") | None => continue,
                        Some(version) => (
                            vec![RangeEvent::Introduced("0".into()), RangeEvent::Fixed(version.into())],
                            FixState::Fixed,
                        ),
                    },
                    "open" | "undetermined" => {
                        let state = match release.nodsa_reason.as_deref() {
                            Some("ignored") => FixState::WontFix,
                            _ if release.nodsa.is_some() && release.nodsa_reason.is_none() => FixState::WontFix,
                            _ => FixState::NotFixed,
                        };
                        (vec![RangeEvent::Introduced("0".into())], state)
                    }
                    _ => continue,
                };
                out.push(Advisory {
                    id: id.clone(),
                    aliases: Vec::new(),
                    ecosystem: format!("Debian:{number}"),
                    package: package.clone(),
                    summary: String::new(),
                    details: entry.description.clone().unwrap_or_default(),
                    severity: release.urgency.as_deref().map_or(Severity::Unknown, urgency_severity),
                    cvss: None,
                    ranges: vec![AffectedRange { kind: RangeKind::Ecosystem, events }],
                    versions: Default::default(),
                    fix_state: Some(fix_state),
                    informational: None,
                    references: vec![format!("https://security-tracker.debian.org/tracker/{id}")],
                    modified: String::new(),
                });
            }
        }
    }
    Ok((out, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_the_osv_dev_tracker_sample() {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/debian-tracker/osvdev-tracker-json-sample.json");
        let bytes = std::fs::read(path).unwrap();
        let (advisories, entries) = parse("sample", &bytes).unwrap();
        assert!(entries > 0 && !advisories.is_empty());
        // apparmor CVE-2014-1424 is "resolved, fixed_version 0" everywhere: never affected.
        assert!(!advisories.iter().any(|a| a.id == "CVE-2014-1424"));
        assert!(advisories.iter().all(|a| a.ecosystem.starts_with("Debian:")));
        assert!(advisories.iter().all(|a| a.fix_state.is_some()));
    }

    #[test]
    fn open_nodsa_ignored_and_fixed_statuses() {
        let doc = br#"{"curl": {"CVE-1": {"description": "d", "releases": {
            "bookworm": {"status": "open", "urgency": "low", "nodsa": "Minor issue", "nodsa_reason": "ignored"},
            "bullseye": {"status": "open", "urgency": "medium"},
            "trixie": {"status": "resolved", "fixed_version": "8.0-1", "urgency": "high**"},
            "sid": {"status": "resolved", "fixed_version": "8.0-1"}}}}}"#;
        let (advisories, _) = parse("doc", doc).unwrap();
        let by = |eco: &str| advisories.iter().find(|a| a.ecosystem == eco).unwrap();
        assert_eq!(by("Debian:12").fix_state, Some(FixState::WontFix));
        assert_eq!(by("Debian:11").fix_state, Some(FixState::NotFixed));
        assert_eq!(by("Debian:13").severity, Severity::High);
        assert_eq!(advisories.len(), 3, "sid is not a release picket matches");
        assert!(parse("broken.json", b"[1,2]").unwrap_err().contains("broken.json"));
    }
}

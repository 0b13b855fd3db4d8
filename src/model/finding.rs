//! Findings: what a scan reports about an image, a directory or a Dockerfile. One shape for
//! vulnerabilities, informational advisories, secrets and misconfigurations, so that the gate,
//! the exceptions and every output format treat them alike.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Ecosystem, Location};

/// Severity, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    #[default]
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [Self::Critical, Self::High, Self::Medium, Self::Low, Self::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN",
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Critical => "CRITICAL",
        }
    }

    /// The qualitative rating of a CVSS v3/v4 base score (CVSS v3.1 specification, table 14).
    pub fn from_cvss_score(score: f64) -> Self {
        match score {
            s if s >= 9.0 => Self::Critical,
            s if s >= 7.0 => Self::High,
            s if s >= 4.0 => Self::Medium,
            s if s > 0.0 => Self::Low,
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    /// Accepts the names in any case, and `moderate` (GitHub's word for medium).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "unknown" | "none" => Ok(Self::Unknown),
            "low" => Ok(Self::Low),
            "medium" | "moderate" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "critical" => Ok(Self::Critical),
            other => Err(format!("unknown severity '{other}' (expected critical, high, medium, low or unknown)")),
        }
    }
}

/// For config files people write: an optional severity in any case (`high`, `HIGH`).
pub fn optional_severity<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Severity>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    text.map(|t| t.parse().map_err(serde::de::Error::custom)).transpose()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A vulnerability of an installed package.
    Vulnerability,
    /// An informational advisory (unmaintained, unsound …): reported apart, never gates a build.
    Advisory,
    /// A credential found in a file.
    Secret,
    /// A Dockerfile or configuration rule that failed.
    Misconfiguration,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vulnerability => "vulnerability",
            Self::Advisory => "advisory",
            Self::Secret => "secret",
            Self::Misconfiguration => "misconfiguration",
        }
    }
}

/// Whether a fix exists for a vulnerability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FixState {
    /// A fixed version exists (`fixed_versions` names it).
    Fixed,
    /// No fix yet.
    NotFixed,
    /// The distribution decided not to fix it (Debian `no-dsa`/`ignored`, "will not fix").
    WontFix,
    #[default]
    Unknown,
}

/// A CVSS base vector with its computed score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cvss {
    /// `3.0`, `3.1` or `4.0`.
    pub version: String,
    pub vector: String,
    pub score: f64,
}

/// The package a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingPackage {
    pub name: String,
    pub version: String,
    pub ecosystem: Ecosystem,
    pub purl: String,
    /// The source package the record named, when it is not the binary package itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The primary id: CVE, GHSA, RUSTSEC, GO, PYSEC …; a rule id for secrets and misconfigurations.
    pub id: String,
    /// Other ids for the same issue (CVE ↔ GHSA ↔ PYSEC).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<Cvss>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<FindingPackage>,
    #[serde(default)]
    pub fix_state: FixState,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed_versions: Vec<String>,
    /// Where: the package's files, the secret's file, the Dockerfile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    /// 1-based line in the (first) location, for secrets and Dockerfile rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// What matched, safe to print: a masked secret, a Dockerfile instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// Where the record came from: `osv:PyPI`, `debian-tracker`, `picket-secrets` …
    pub data_source: String,
}

impl Finding {
    /// A finding with the given identity and nothing else set yet.
    pub fn new(kind: FindingKind, id: impl Into<String>, title: impl Into<String>, severity: Severity) -> Self {
        Self {
            kind,
            id: id.into(),
            aliases: Vec::new(),
            title: title.into(),
            description: String::new(),
            severity,
            cvss: None,
            package: None,
            fix_state: FixState::Unknown,
            fixed_versions: Vec::new(),
            locations: Vec::new(),
            line: None,
            evidence: None,
            remediation: None,
            references: Vec::new(),
            data_source: String::new(),
        }
    }

    /// Every id this finding is known by, primary first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Unknown);
        assert_eq!("Moderate".parse::<Severity>(), Ok(Severity::Medium));
        assert!("severe".parse::<Severity>().unwrap_err().contains("severe"));
        assert_eq!(Severity::from_cvss_score(9.8), Severity::Critical);
        assert_eq!(Severity::from_cvss_score(6.9), Severity::Medium);
        assert_eq!(Severity::from_cvss_score(0.0), Severity::Unknown);
    }
}

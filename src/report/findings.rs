//! The result of a findings scan (`picket scan …`), as every findings exporter reads it.

use serde::Serialize;

use crate::model::{Distro, Finding, Severity};
use crate::scan::{Sbom, SbomSource};

/// Output formats of `picket scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FindingsFormat {
    /// coloured table for terminals (plain when not a terminal)
    Table,
    /// picket's own JSON
    Json,
    /// SARIF 2.1.0 (GitHub code scanning, GitLab, Azure DevOps)
    Sarif,
    /// CycloneDX 1.5 JSON with components and vulnerabilities
    Cyclonedx,
    /// JUnit XML (one test case per finding)
    Junit,
    /// Markdown (pull-request comments, job summaries)
    Markdown,
}

/// A finding an exception accepted: kept in the report, never gating.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppressed {
    pub finding: Finding,
    pub reason: String,
    /// Where the exception is: `.picketignore:12`, `openvex:<document id>`.
    pub by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// The threshold a scan was gated on, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gate {
    pub fail_on: Severity,
    pub ignore_unfixed: bool,
    /// Findings at or above the threshold that no exception accepted.
    pub failing: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanReport {
    pub source: SbomSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
    /// The inventory behind the findings (none for a Dockerfile scan); CycloneDX lists its
    /// components.
    #[serde(skip)]
    pub sbom: Option<Sbom>,
    /// Active findings, most severe first.
    pub findings: Vec<Finding>,
    pub suppressed: Vec<Suppressed>,
    /// The vulnerability data used: `osv:PyPI (updated 2026-11-20T10:00:00Z)`, …
    pub databases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl ScanReport {
    /// Count of active findings per severity, most severe first.
    pub fn counts(&self) -> [(Severity, usize); 5] {
        Severity::ALL.map(|severity| (severity, self.findings.iter().filter(|f| f.severity == severity).count()))
    }
}

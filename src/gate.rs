//! The build gate: which findings an exception accepts, and whether what remains fails the
//! build at the chosen threshold. Exit codes: 0 pass, 1 policy failure, 2 error.

pub mod ignorefile;
pub mod openvex;

use serde::Serialize;

use crate::model::{Finding, FindingKind, FixState, Severity};
use crate::oci::ImageMeta;

/// A finding an exception accepted: kept in the report, never gating.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppressed {
    pub finding: Finding,
    pub reason: String,
    /// Where the exception is: `.picketignore:12`, `openvex:<document id>`.
    pub by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub basis: Basis,
}

/// The kind of exception that accepted a finding, as formats with a structured analysis
/// (CycloneDX) record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Basis {
    /// An entry of an exceptions file (`.picketignore`): the finding is accepted as it is.
    IgnoreFile,
    /// An OpenVEX statement: its status (`not_affected` or `fixed`) and justification label.
    OpenVex {
        status: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        justification: Option<String>,
    },
}

/// The threshold a scan was gated on, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gate {
    pub fail_on: Severity,
    pub ignore_unfixed: bool,
    /// Findings at or above the threshold that no exception accepted.
    pub failing: usize,
}

impl Gate {
    pub fn passed(&self) -> bool {
        self.failing == 0
    }

    /// `4 findings at or above HIGH`, `no findings at or above HIGH (unfixed vulnerabilities ignored)`.
    pub fn summary(&self) -> String {
        let unfixed = if self.ignore_unfixed { " (unfixed vulnerabilities ignored)" } else { "" };
        match self.failing {
            0 => format!("no findings at or above {}{unfixed}", self.fail_on),
            1 => format!("1 finding at or above {}{unfixed}", self.fail_on),
            n => format!("{n} findings at or above {}{unfixed}", self.fail_on),
        }
    }
}

impl Suppressed {
    /// `reason (by, expires 2027-01-01)`.
    pub fn explanation(&self) -> String {
        match &self.expires {
            Some(expires) => format!("{} ({}, expires {expires})", self.reason, self.by),
            None => format!("{} ({})", self.reason, self.by),
        }
    }
}

/// One accepted finding, from any exception source.
pub trait Exceptions {
    /// The reason and origin when `finding`, found in `image` (none for a directory or a
    /// Dockerfile), is accepted.
    fn accepts(&self, finding: &Finding, image: Option<&ImageMeta>) -> Option<Suppressed>;
}

/// Splits the findings of a scan of `image` into active and suppressed.
pub fn apply_exceptions(
    findings: Vec<Finding>,
    image: Option<&ImageMeta>,
    exceptions: &[&dyn Exceptions],
) -> (Vec<Finding>, Vec<Suppressed>) {
    let mut active = Vec::new();
    let mut suppressed = Vec::new();
    for finding in findings {
        match exceptions.iter().find_map(|e| e.accepts(&finding, image)) {
            Some(accepted) => suppressed.push(accepted),
            None => active.push(finding),
        }
    }
    (active, suppressed)
}

/// Whether a finding counts against the gate: informational advisories never do; with
/// `ignore_unfixed`, vulnerabilities without a fix do not.
pub fn gates(finding: &Finding, fail_on: Severity, ignore_unfixed: bool) -> bool {
    if finding.kind == FindingKind::Advisory || finding.severity < fail_on {
        return false;
    }
    !(ignore_unfixed && finding.kind == FindingKind::Vulnerability && finding.fix_state != FixState::Fixed)
}

pub fn evaluate(findings: &[Finding], fail_on: Severity, ignore_unfixed: bool) -> Gate {
    let failing = findings.iter().filter(|f| gates(f, fail_on, ignore_unfixed)).count();
    Gate { fail_on, ignore_unfixed, failing }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vuln(severity: Severity, fix: FixState) -> Finding {
        let mut f = Finding::new(FindingKind::Vulnerability, "CVE-1", "t", severity);
        f.fix_state = fix;
        f
    }

    #[test]
    fn threshold_unfixed_and_advisories() {
        let findings = vec![
            vuln(Severity::High, FixState::Fixed),
            vuln(Severity::Critical, FixState::NotFixed),
            vuln(Severity::Medium, FixState::Fixed),
            Finding::new(FindingKind::Advisory, "RUSTSEC-1", "unmaintained", Severity::Critical),
        ];
        assert_eq!(evaluate(&findings, Severity::High, false).failing, 2);
        assert_eq!(evaluate(&findings, Severity::High, true).failing, 1);
        assert_eq!(evaluate(&findings, Severity::Low, false).failing, 3);
        assert_eq!(evaluate(&findings, Severity::Critical, true).failing, 0);
    }
}

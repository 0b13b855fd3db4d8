//! The build gate: which findings an exception accepts, and whether what remains fails the
//! build at the chosen threshold. Exit codes: 0 pass, 1 policy failure, 2 error.

pub mod ignorefile;
pub mod openvex;

use crate::model::{Finding, FindingKind, FixState, Severity};
use crate::report::findings::{Gate, Suppressed};
use crate::scan::ImageMeta;

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

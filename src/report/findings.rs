//! The findings exporters' shared parts: the formats of `picket scan` and the helpers they use.

use super::{DocumentInfo, cyclonedx, junit, markdown, sarif, table};
use crate::model::{Finding, FindingKind, FixState};
use crate::scan::Scan;

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

/// The fixed versions, or why there are none: `2.36-9+deb12u5`, `won't fix`, `not fixed`.
pub(crate) fn fixed_text(finding: &Finding) -> String {
    if !finding.fixed_versions.is_empty() {
        return finding.fixed_versions.join(", ");
    }
    match finding.fix_state {
        FixState::WontFix => "won't fix".into(),
        FixState::NotFixed => "not fixed".into(),
        FixState::Fixed | FixState::Unknown => String::new(),
    }
}

/// The page that explains a finding: its first reference, or the advisory database page its id
/// names.
pub(crate) fn reference_url(finding: &Finding) -> Option<String> {
    if let Some(first) = finding.references.first() {
        return Some(first.clone());
    }
    let id = finding.id.as_str();
    if id.starts_with("CVE-") {
        Some(format!("https://nvd.nist.gov/vuln/detail/{id}"))
    } else if id.starts_with("GHSA-") {
        Some(format!("https://github.com/advisories/{id}"))
    } else if id.starts_with("RUSTSEC-") {
        Some(format!("https://rustsec.org/advisories/{id}"))
    } else if matches!(finding.kind, FindingKind::Vulnerability | FindingKind::Advisory) {
        Some(format!("https://osv.dev/vulnerability/{id}"))
    } else {
        None
    }
}

/// The path a finding is reported at: its first location.
pub(crate) fn primary_path(finding: &Finding) -> Option<&str> {
    finding.locations.first().map(|l| l.path.as_str())
}

/// The report in one output format. Only the JSON ones can fail (serialization).
pub fn render_findings(
    report: &Scan,
    format: FindingsFormat,
    info: &DocumentInfo,
    color: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    match format {
        FindingsFormat::Table => Ok(table::render(report, color).into_bytes()),
        FindingsFormat::Json => serde_json::to_vec_pretty(report),
        FindingsFormat::Sarif => serde_json::to_vec_pretty(&sarif::document(report, info)),
        FindingsFormat::Cyclonedx => serde_json::to_vec_pretty(&cyclonedx::findings_document(report, info)),
        FindingsFormat::Junit => Ok(junit::render(report).into_bytes()),
        FindingsFormat::Markdown => Ok(markdown::render(report).into_bytes()),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::gate::{Gate, Suppressed};
    use crate::model::{Cvss, Ecosystem, Finding, FindingKind, FindingPackage, FixState, Location, Severity};
    use crate::scan::Scan;

    const LAYER: &str = "sha256:8f4b6e3c1d2a9f0e7b6c5d4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e";

    fn libc6() -> FindingPackage {
        FindingPackage {
            name: "libc6".into(),
            version: "2.36-9+deb12u4".into(),
            ecosystem: Ecosystem::Debian,
            purl: "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc".into(),
            source_name: Some("glibc".into()),
        }
    }

    fn at(path: &str) -> Vec<Location> {
        vec![Location { layer: Some(LAYER.into()), path: path.into() }]
    }

    /// The fixture SBOM's image with one finding of every kind, a CVSS v3.1 and a v4.0 vector, a
    /// package the SBOM does not list, a title that needs escaping, a suppressed finding and a
    /// HIGH gate.
    pub fn report() -> Scan {
        let sbom = super::super::fixtures::sbom();

        let mut pyyaml = Finding::new(
            FindingKind::Vulnerability,
            "GHSA-8q59-q68h-6hv4",
            "Code execution in <yaml.load> & \"full_load\" of 'untrusted' | input",
            Severity::Critical,
        );
        pyyaml.aliases = vec!["CVE-2020-14343".into(), "PYSEC-2021-142".into()];
        pyyaml.description = "A vulnerability was discovered in the PyYAML library.\nIt is exploitable through the full_load method | FullLoader.".into();
        pyyaml.cvss = Some(Cvss {
            version: "4.0".into(),
            vector: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N".into(),
            score: 9.3,
        });
        pyyaml.package = Some(FindingPackage {
            name: "PyYAML".into(),
            version: "6.0".into(),
            ecosystem: Ecosystem::PyPI,
            purl: "pkg:pypi/pyyaml@6.0".into(),
            source_name: None,
        });
        pyyaml.fix_state = FixState::Fixed;
        pyyaml.fixed_versions = vec!["6.0.1".into()];
        pyyaml.locations = at("/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA");
        pyyaml.references = vec!["https://github.com/advisories/GHSA-8q59-q68h-6hv4".into()];
        pyyaml.data_source = "osv:PyPI".into();

        let mut secret =
            Finding::new(FindingKind::Secret, "aws-access-key-id", "AWS Access Key ID", Severity::Critical);
        secret.locations = at("/app/config/.env");
        secret.line = Some(3);
        secret.evidence = Some("AWS_ACCESS_KEY_ID=AKIA************MPLE".into());
        secret.remediation = Some("Remove the key from the image and rotate it.".into());
        secret.data_source = "picket-secrets".into();

        let mut looney = Finding::new(
            FindingKind::Vulnerability,
            "CVE-2023-4911",
            "glibc: buffer overflow in ld.so leading to privilege escalation",
            Severity::High,
        );
        looney.description = "A buffer overflow was discovered in the GNU C Library's dynamic loader ld.so while processing the GLIBC_TUNABLES environment variable.".into();
        looney.cvss = Some(Cvss {
            version: "3.1".into(),
            vector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H".into(),
            score: 7.8,
        });
        looney.package = Some(libc6());
        looney.fix_state = FixState::Fixed;
        looney.fixed_versions = vec!["2.36-9+deb12u3".into()];
        looney.locations = at("/var/lib/dpkg/status");
        looney.data_source = "debian-tracker".into();

        let mut root =
            Finding::new(FindingKind::Misconfiguration, "DS002", "Image user should not be 'root'", Severity::High);
        root.description = "Running containers as 'root' gives an attacker who breaks out of the process root on the host's user namespace.".into();
        root.locations = vec![Location { layer: None, path: "Dockerfile".into() }];
        root.line = Some(7);
        root.evidence = Some("USER root".into());
        root.remediation = Some("Add 'USER <non-root user>' after the last RUN.".into());
        root.data_source = "picket-dockerfile".into();

        let mut healthcheck =
            Finding::new(FindingKind::Misconfiguration, "DS026", "No HEALTHCHECK defined", Severity::Low);
        healthcheck.locations = vec![Location { layer: None, path: "Dockerfile".into() }];
        healthcheck.remediation = Some("Add a HEALTHCHECK instruction.".into());
        healthcheck.data_source = "picket-dockerfile".into();

        let mut atty =
            Finding::new(FindingKind::Advisory, "RUSTSEC-2024-0375", "`atty` is unmaintained", Severity::Unknown);
        atty.package = Some(FindingPackage {
            name: "atty".into(),
            version: "0.2.14".into(),
            ecosystem: Ecosystem::CratesIo,
            purl: "pkg:cargo/atty@0.2.14".into(),
            source_name: None,
        });
        atty.locations = at("/usr/local/bin/app");
        atty.data_source = "osv:crates.io".into();

        let mut iconv = Finding::new(
            FindingKind::Vulnerability,
            "CVE-2024-2961",
            "glibc: out-of-bounds write in iconv ISO-2022-CN-EXT",
            Severity::High,
        );
        iconv.cvss = Some(Cvss {
            version: "3.1".into(),
            vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H".into(),
            score: 8.1,
        });
        iconv.package = Some(libc6());
        iconv.fix_state = FixState::Fixed;
        iconv.fixed_versions = vec!["2.36-9+deb12u7".into()];
        iconv.locations = at("/var/lib/dpkg/status");
        iconv.data_source = "debian-tracker".into();

        Scan {
            source: sbom.source.clone(),
            distro: sbom.distro.clone(),
            sbom: Some(sbom),
            findings: vec![pyyaml, secret, looney, root, healthcheck, atty],
            suppressed: vec![Suppressed {
                finding: iconv,
                reason: "vulnerable_code_not_in_execute_path: no ISO-2022-CN-EXT conversions".into(),
                by: ".picketignore:3".into(),
                expires: Some("2027-01-01".into()),
                basis: crate::gate::Basis::IgnoreFile,
            }],
            databases: vec![
                "debian-tracker (updated 2026-11-20T09:00:00Z)".into(),
                "osv:PyPI (updated 2026-11-20T10:00:00Z)".into(),
            ],
            gate: Some(Gate { fail_on: Severity::High, ignore_unfixed: false, failing: 4 }),
            warnings: vec!["1 file over 10 MiB skipped by the secret scanner".into()],
            notices: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::Gate;
    use crate::model::Severity;

    #[test]
    fn gate_counts_match_the_fixture() {
        let report = fixtures::report();
        let failing = report.findings.iter().filter(|f| report.fails(f)).count();
        assert_eq!(report.gate.as_ref().map(|g| g.failing), Some(failing));
        assert_eq!(report.subject(), "oci/tiny:v1 (debian 12)");
    }

    #[test]
    fn advisories_never_fail_and_unfixed_can_be_ignored() {
        let mut report = fixtures::report();
        report.gate = None;
        assert_eq!(report.findings.iter().filter(|f| report.fails(f)).count(), 5);
        report.gate = Some(Gate { fail_on: Severity::Low, ignore_unfixed: true, failing: 0 });
        report.findings[0].fixed_versions.clear();
        report.findings[0].fix_state = FixState::NotFixed;
        assert!(!report.fails(&report.findings[0]));
        assert!(report.fails(&report.findings[1]));
    }

    #[test]
    fn json_is_the_report_itself() {
        let info = DocumentInfo { created: "2026-11-24T03:00:00Z".into(), tool_version: "0.1.0" };
        let bytes = render_findings(&fixtures::report(), FindingsFormat::Json, &info, false).expect("json");
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("parses");
        assert_eq!(value["findings"].as_array().map(Vec::len), Some(6));
        assert_eq!(value["suppressed"][0]["by"], ".picketignore:3");
        assert!(value.get("sbom").is_none());
    }
}

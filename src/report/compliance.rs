//! Benchmark reports (`picket bench …`): a terminal listing grouped by section like kube-bench's,
//! picket's JSON, JUnit XML and SARIF 2.1.0.

mod junit;
mod sarif;

use super::DocumentInfo;
use crate::bench::{BenchReport, CheckOutcome, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFormat {
    /// grouped by section, failures with their evidence (default)
    Table,
    /// every check with every result
    Json,
    /// a test suite per section, a test case per check and subject
    Junit,
    /// SARIF 2.1.0: failed and manual results
    Sarif,
}

pub fn render(
    report: &BenchReport,
    format: BenchFormat,
    info: &DocumentInfo,
    color: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    match format {
        BenchFormat::Table => Ok(table(report, color).into_bytes()),
        BenchFormat::Json => serde_json::to_vec_pretty(&json(report, info)),
        BenchFormat::Junit => Ok(junit::render(report).into_bytes()),
        BenchFormat::Sarif => serde_json::to_vec_pretty(&sarif::document(report, info)),
    }
}

fn json(report: &BenchReport, info: &DocumentInfo) -> serde_json::Value {
    serde_json::json!({
        "benchmark": report.benchmark,
        "version": report.version,
        "target": report.target,
        "created": info.created,
        "tool": { "name": "picket", "version": info.tool_version },
        "summary": report.tally_checks(),
        "sections": report.tally_by_section().iter().map(|(section, tally)| serde_json::json!({
            "id": section.id, "title": section.title, "summary": tally,
        })).collect::<Vec<_>>(),
        "checks": report.checks,
        "complete": report.unread.is_empty(),
        "unread": report.unread,
    })
}

fn paint(color: bool, status: Status, text: &str) -> String {
    let code = match status {
        Status::Fail => "1;31",
        Status::Warn => "33",
        Status::Pass => "32",
        Status::Info => "34",
        Status::Skip => "2",
    };
    if color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
}

use super::clean;

fn table(report: &BenchReport, color: bool) -> String {
    let mut out = format!("{} v{}\n{}\n", report.benchmark, report.version, clean(&report.target));
    if !report.unread.is_empty() {
        out.push_str(&format!(
            "\n{} not read: the checks that needed them are incomplete\n",
            paint(color, Status::Warn, "PARTIAL")
        ));
        for unread in &report.unread {
            out.push_str(&format!("  {} ({}): {}\n", clean(&unread.what), unread.why, clean(&unread.message)));
        }
    }
    for (section, tally) in report.tally_by_section() {
        let checks: Vec<&CheckOutcome> = report.checks.iter().filter(|c| c.meta.section == section.id).collect();
        if checks.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n[{}] {}  ({} fail, {} warn, {} pass)\n",
            section.id, section.title, tally.fail, tally.warn, tally.pass
        ));
        for check in checks {
            let status = check.status();
            out.push_str(&format!(
                "[{}] {} {}\n",
                paint(color, status, status.as_str()),
                check.meta.id,
                clean(&check.meta.title)
            ));
            // Results worth reading: failures, warnings and information; passes and skips are
            // in the JSON.
            let shown: Vec<_> = check
                .results
                .iter()
                .filter(|r| matches!(r.status, Status::Fail | Status::Warn | Status::Info))
                .collect();
            for result in &shown {
                out.push_str(&format!("       {}: {}\n", clean(&result.subject), clean(&result.evidence)));
            }
            let passed = check.results.iter().filter(|r| r.status == Status::Pass).count();
            if status <= Status::Warn && passed > 0 {
                out.push_str(&format!("       ({passed} passed)\n"));
            }
            if status == Status::Fail {
                out.push_str(&format!("       fix: {}\n", clean(&check.meta.remediation)));
            }
        }
    }
    let total = report.tally_checks();
    out.push_str("\n== Summary ==\n");
    for status in Status::ALL {
        out.push_str(&format!("{} checks {}\n", total.get(status), paint(color, status, status.as_str())));
    }
    out
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::bench::{Assessment, BenchReport, CheckMeta, CheckOutcome, CheckResult, Section, Status};
    use crate::model::Severity;

    fn check(id: &str, severity: Severity, title: &str, results: Vec<CheckResult>) -> CheckOutcome {
        CheckOutcome {
            meta: CheckMeta {
                id: id.into(),
                title: title.into(),
                section: id.split('.').next().unwrap_or_default().into(),
                severity,
                assessment: Assessment::Automated,
                rationale: "Because <reasons> & more.".into(),
                remediation: "Do not use `--privileged`.".into(),
                references: vec!["CIS Docker Benchmark v1.6.0, recommendation ".to_string() + id],
            },
            results,
        }
    }

    pub fn report() -> BenchReport {
        BenchReport {
            benchmark: "CIS Docker Benchmark".into(),
            version: "1.6.0".into(),
            target: "Docker 20.10.24 at unix:///run/docker.sock".into(),
            unread: Vec::new(),
            sections: vec![
                Section { id: "3".into(), title: "Docker daemon configuration files".into() },
                Section { id: "5".into(), title: "Container Runtime".into() },
            ],
            checks: vec![
                check(
                    "3.18",
                    Severity::Medium,
                    "Ensure that daemon.json file permissions are set to 644 or more restrictive",
                    vec![CheckResult::new(Status::Pass, "/etc/docker/daemon.json", "mode 0644, allowed at most 0644")],
                ),
                check(
                    "5.5",
                    Severity::Critical,
                    "Ensure that privileged containers are not used",
                    vec![
                        CheckResult::new(Status::Fail, "container priv", "privileged: true"),
                        CheckResult::new(Status::Pass, "container web", "privileged: false"),
                    ],
                ),
                check(
                    "5.9",
                    Severity::Low,
                    "Ensure that only needed ports are open on the container",
                    vec![CheckResult::new(Status::Warn, "container web", "0.0.0.0:8080 -> 80/tcp")],
                ),
                check(
                    "5.2",
                    Severity::High,
                    "Ensure that, if applicable, an AppArmor Profile is enabled",
                    vec![CheckResult::new(Status::Skip, "container web", "AppArmor is not enabled on this host")],
                ),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> DocumentInfo {
        DocumentInfo { created: "2026-11-25T10:00:00Z".into(), tool_version: "0.1.0" }
    }

    #[test]
    fn table_lists_failures_with_evidence_and_fix() {
        let text = String::from_utf8(render(&fixtures::report(), BenchFormat::Table, &info(), false).unwrap()).unwrap();
        insta::with_settings!({ snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"), prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("bench_table", text);
        });
        assert!(text.contains("[FAIL] 5.5 Ensure that privileged containers are not used"), "{text}");
        assert!(text.contains("container priv: privileged: true"), "{text}");
        assert!(!text.contains("container web: privileged: false"), "passing subjects are summarised: {text}");
        assert!(text.contains("1 checks FAIL"), "{text}");
    }

    #[test]
    fn json_carries_summary_and_every_result() {
        let value: serde_json::Value =
            serde_json::from_slice(&render(&fixtures::report(), BenchFormat::Json, &info(), false).unwrap()).unwrap();
        assert_eq!(value["summary"]["fail"], 1);
        assert_eq!(value["summary"]["skip"], 1);
        assert_eq!(value["checks"][1]["id"], "5.5");
        assert_eq!(value["checks"][1]["results"].as_array().unwrap().len(), 2);
        assert_eq!(value["checks"][1]["results"][0]["status"], "FAIL");
        assert_eq!(value["sections"][1]["summary"]["fail"], 1);
    }
}

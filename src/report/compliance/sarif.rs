//! SARIF 2.1.0 for a benchmark: one rule per check, one result per failed or warned subject
//! (passes are not alerts). Subjects are logical locations: a file path, the daemon, a container.

use serde_json::{Value, json};

use crate::bench::{BenchReport, CheckOutcome, Status};
use crate::model::Severity;
use crate::report::DocumentInfo;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub fn document(report: &BenchReport, info: &DocumentInfo) -> Value {
    let mut rules = Vec::new();
    let mut results = Vec::new();
    for check in &report.checks {
        let alerts: Vec<_> = check.results.iter().filter(|r| matches!(r.status, Status::Fail | Status::Warn)).collect();
        if alerts.is_empty() {
            continue;
        }
        let index = rules.len();
        rules.push(rule(check));
        for result in alerts {
            let level = if result.status == Status::Warn { "note" } else { level(check.meta.severity) };
            let kind = if result.subject.starts_with('/') { "resource" } else { "object" };
            results.push(json!({
                "ruleId": check.meta.id,
                "ruleIndex": index,
                "level": level,
                "message": { "text": format!("{}: {} ({})", result.subject, result.evidence, result.status.as_str()) },
                "locations": [{
                    "logicalLocations": [{ "name": result.subject, "kind": kind }],
                }],
                "partialFingerprints": { "picket/bench/v1": format!("{}|{}", check.meta.id, result.subject) },
            }));
        }
    }
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "picket",
                "version": info.tool_version,
                "semanticVersion": info.tool_version,
                "rules": rules,
            }},
            "automationDetails": { "id": format!("picket/bench/{} v{}/", report.benchmark, report.version) },
            // A partial run still succeeded; what it could not read is a notification each.
            "invocations": [{
                "executionSuccessful": true,
                "endTimeUtc": info.created,
                "toolExecutionNotifications": report.unread.iter().map(|u| json!({
                    "level": "warning",
                    "message": { "text": format!("not read: {} ({}): {}", u.what, u.why, u.message) },
                    "descriptor": { "id": "picket/unread" },
                })).collect::<Vec<_>>(),
            }],
            "properties": { "target": report.target },
            "results": results,
        }],
    })
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Unknown => "note",
    }
}

fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Unknown => "0.0",
    }
}

fn rule(check: &CheckOutcome) -> Value {
    let meta = &check.meta;
    let references = meta.references.join("; ");
    json!({
        "id": meta.id,
        "name": format!("CIS {}", meta.id),
        "shortDescription": { "text": meta.title },
        "fullDescription": { "text": meta.rationale },
        "defaultConfiguration": { "level": level(meta.severity) },
        "help": {
            "text": format!("{}\n\nRemediation: {}\n\n{references}", meta.rationale, meta.remediation),
            "markdown": format!("**{} {}**\n\n{}\n\n**Remediation:** {}\n\n{references}", meta.id, meta.title, meta.rationale, meta.remediation),
        },
        "properties": {
            "tags": ["compliance", "security", meta.severity.as_str()],
            "security-severity": security_severity(meta.severity),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compliance::fixtures;

    #[test]
    fn valid_sarif_with_failures_and_manual_results() {
        let info = DocumentInfo { created: "2026-11-25T10:00:00Z".into(), tool_version: "0.1.0" };
        let doc = document(&fixtures::report(), &info);
        let validator = crate::report::sarif::tests::validator();
        let errors: Vec<String> =
            validator.iter_errors(&doc).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let results = doc["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "the failed 5.5 subject and the warned 5.9 one: {results:#?}");
        assert_eq!(results[0]["ruleId"], "5.5");
        assert_eq!(results[0]["level"], "error");
        assert_eq!(results[1]["level"], "note");
        let rules = doc["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["properties"]["security-severity"], "9.5");

        // A partial report: still valid, and a warning notification per kind not read.
        let mut partial = fixtures::report();
        partial.unread.push(crate::bench::Unread {
            what: "secrets".into(),
            why: "forbidden".into(),
            message: "secrets is forbidden".into(),
        });
        let doc = document(&partial, &info);
        let errors: Vec<String> =
            validator.iter_errors(&doc).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let notes = doc["runs"][0]["invocations"][0]["toolExecutionNotifications"].as_array().unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0]["message"]["text"], "not read: secrets (forbidden): secrets is forbidden");
    }
}

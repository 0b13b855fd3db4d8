//! SARIF 2.1.0 (OASIS), as GitHub code scanning, GitLab and Azure DevOps read it: one run, one
//! rule per finding id (free of package details, at the id's highest severity), one result per
//! finding (with its package, fix and severity); suppressed findings are results with an
//! external, accepted suppression.

use std::collections::HashMap;

use serde_json::{Value, json};
use sha2::Digest;

use super::DocumentInfo;
use super::findings::{fixed_text, primary_path, reference_url};
use crate::gate::Suppressed;
use crate::model::{Finding, FindingKind, FixState, Severity};
use crate::scan::Scan;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub fn document(report: &Scan, info: &DocumentInfo) -> Value {
    let entries: Vec<(&Finding, Option<&Suppressed>)> = report
        .findings
        .iter()
        .map(|f| (f, None))
        .chain(report.suppressed.iter().map(|s| (&s.finding, Some(s))))
        .collect();

    // One rule per id, in order of first appearance, described by its most severe finding
    // (GitHub ranks an alert by its rule's security-severity). A rule says nothing about a
    // package: the same CVE in several packages shares it, and each result names its package,
    // fix and severity.
    let mut order: Vec<&str> = Vec::new();
    let mut worst: HashMap<&str, &Finding> = HashMap::new();
    for (finding, _) in &entries {
        match worst.get(finding.id.as_str()) {
            None => {
                order.push(finding.id.as_str());
                worst.insert(finding.id.as_str(), finding);
            }
            Some(current) if rank(finding) > rank(current) => {
                worst.insert(finding.id.as_str(), finding);
            }
            Some(_) => {}
        }
    }
    let rule_index: HashMap<&str, usize> = order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let rules: Vec<Value> = order.iter().filter_map(|id| worst.get(id)).map(|f| rule(f)).collect();
    let mut results: Vec<Value> = Vec::new();
    for (finding, suppressed) in entries {
        let index = rule_index.get(finding.id.as_str()).copied().unwrap_or_default();
        let mut properties = json!({ "severity": finding.severity.as_str() });
        if let Some(score) = security_severity(finding) {
            properties["security-severity"] = json!(score);
        }
        if let Some(fix) = fix(finding) {
            properties["fix"] = json!(fix);
        }
        let mut result = json!({
            "ruleId": finding.id,
            "ruleIndex": index,
            "level": level(finding),
            "message": { "text": message(finding) },
            "locations": locations(finding),
            "partialFingerprints": { "picket/v1": fingerprint(finding) },
            "properties": properties,
        });
        if let Some(s) = suppressed {
            result["suppressions"] =
                json!([{ "kind": "external", "status": "accepted", "justification": s.explanation() }]);
        }
        results.push(result);
    }

    let mut driver = json!({
        "name": "picket",
        "version": info.tool_version,
        "semanticVersion": info.tool_version,
        "rules": rules,
    });
    if let Some(uri) = information_uri() {
        driver["informationUri"] = json!(uri);
    }
    let mut run = json!({
        "tool": { "driver": driver },
        "results": results,
        "properties": { "source": report.source.name, "databases": report.databases },
    });
    // Paths in an image are absolute in its root file system; elsewhere (a directory, a
    // Dockerfile) they are relative to where the scan ran, which is the checkout in CI.
    if report.source.image.is_some() {
        run["originalUriBaseIds"] = json!({ "ROOTPATH": { "uri": "file:///" } });
    }
    json!({ "$schema": SCHEMA, "version": "2.1.0", "runs": [run] })
}

fn information_uri() -> Option<&'static str> {
    [env!("CARGO_PKG_HOMEPAGE"), env!("CARGO_PKG_REPOSITORY")].into_iter().find(|uri| !uri.is_empty())
}

fn level(finding: &Finding) -> &'static str {
    if finding.kind == FindingKind::Advisory {
        return "note";
    }
    match finding.severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Unknown => "note",
    }
}

/// GitHub ranks alerts by this number (9.0+ critical, 7.0+ high, 4.0+ medium, above 0 low). The
/// CVSS score is used when its rating is the severity picket reports and gates on; otherwise (a
/// distribution rated it differently) a number in that severity's band, so GitHub and the gate
/// agree.
fn security_severity(finding: &Finding) -> Option<String> {
    if let Some(cvss) = &finding.cvss
        && Severity::from_cvss_score(cvss.score) == finding.severity
    {
        return Some(format!("{:.1}", cvss.score));
    }
    match finding.severity {
        Severity::Critical => Some("9.5".into()),
        Severity::High => Some("8.0".into()),
        Severity::Medium => Some("5.5".into()),
        Severity::Low => Some("2.0".into()),
        Severity::Unknown => None,
    }
}

/// Orders findings of one id by severity, then by security-severity score.
fn rank(finding: &Finding) -> (Severity, u32) {
    let score = security_severity(finding).and_then(|s| s.parse::<f32>().ok()).unwrap_or(0.0);
    (finding.severity, (score * 10.0).round() as u32)
}

fn fix(finding: &Finding) -> Option<String> {
    if let Some(remediation) = &finding.remediation {
        return Some(remediation.clone());
    }
    let package = finding.package.as_ref()?;
    match finding.fix_state {
        _ if !finding.fixed_versions.is_empty() => {
            Some(format!("Upgrade {} to {}.", package.name, finding.fixed_versions.join(" or ")))
        }
        FixState::WontFix => Some("The distribution will not fix this.".into()),
        FixState::NotFixed => Some("No fixed version yet.".into()),
        FixState::Fixed | FixState::Unknown => None,
    }
}

fn rule(finding: &Finding) -> Value {
    let url = reference_url(finding);
    let description = if finding.description.is_empty() { &finding.title } else { &finding.description };
    let mut text = format!("{}\n\n{description}", finding.title);
    let mut markdown = format!("**{}** {}\n\n{description}", finding.id, finding.title);
    // A remediation belongs to the check (a secret rule, a Dockerfile rule); a package's fixed
    // version belongs to the result.
    if let Some(fix) = &finding.remediation {
        text.push_str(&format!("\n\nFix: {fix}"));
        markdown.push_str(&format!("\n\n**Fix:** {fix}"));
    }
    if let Some(url) = &url {
        text.push_str(&format!("\n\nReference: {url}"));
        markdown.push_str(&format!("\n\n[{}]({url})", finding.id));
    }
    let mut properties = json!({
        "tags": [finding.kind.as_str(), "security", finding.severity.as_str()],
        "precision": "very-high",
    });
    if let Some(score) = security_severity(finding) {
        properties["security-severity"] = json!(score);
    }
    let mut rule = json!({
        "id": finding.id,
        "shortDescription": { "text": finding.title },
        "fullDescription": { "text": description },
        "defaultConfiguration": { "level": level(finding) },
        "help": { "text": text, "markdown": markdown },
        "properties": properties,
    });
    if let Some(url) = url {
        rule["helpUri"] = json!(url);
    }
    rule
}

fn message(finding: &Finding) -> String {
    let severity = finding.severity;
    let at = match (primary_path(finding), finding.line) {
        (Some(path), Some(line)) => format!(" at {path}:{line}"),
        (Some(path), None) => format!(" at {path}"),
        (None, _) => String::new(),
    };
    let evidence = finding.evidence.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
    match (&finding.package, finding.kind) {
        (Some(package), FindingKind::Vulnerability | FindingKind::Advisory) => {
            let fixed = match fixed_text(finding) {
                text if finding.fixed_versions.is_empty() && !text.is_empty() => format!(" ({text})"),
                text if !text.is_empty() => format!(" Fixed in {text}."),
                _ => String::new(),
            };
            format!("{} {}: {} ({severity}) {}.{fixed}", package.name, package.version, finding.id, finding.title)
        }
        _ => format!("{} ({severity}) {}{at}{evidence}", finding.id, finding.title),
    }
}

fn locations(finding: &Finding) -> Vec<Value> {
    finding
        .locations
        .iter()
        .enumerate()
        .map(|(i, location)| {
            let mut physical =
                json!({ "artifactLocation": { "uri": uri_path(&location.path), "uriBaseId": "ROOTPATH" } });
            if let (0, Some(line)) = (i, finding.line) {
                physical["region"] = json!({ "startLine": line.max(1) });
            }
            json!({ "physicalLocation": physical })
        })
        .collect()
}

/// A path as a relative URI reference: no leading slash (it is resolved against ROOTPATH), and
/// every byte outside RFC 3986's path characters percent-encoded. `:` is encoded too, since in a
/// first segment it would read as a scheme.
fn uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.trim_start_matches('/').bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => out.push(char::from(byte)),
            b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' => {
                out.push(char::from(byte))
            }
            b'=' | b'@' | b'/' => out.push(char::from(byte)),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Stable across runs for the same finding in the same place, so that code scanning tracks one
/// alert instead of opening a new one per upload.
fn fingerprint(finding: &Finding) -> String {
    let purl = finding.package.as_ref().map(|p| p.purl.as_str()).unwrap_or_default();
    let line = finding.line.map(|l| l.to_string()).unwrap_or_default();
    let seed = [finding.kind.as_str(), &finding.id, purl, primary_path(finding).unwrap_or_default(), &line].join("\0");
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::findings::fixtures;

    fn info() -> DocumentInfo {
        DocumentInfo { created: "2026-11-24T03:00:00Z".into(), tool_version: "0.1.0" }
    }

    pub(crate) fn validator() -> jsonschema::Validator {
        let text = include_str!("../../tests/fixtures/sarif-schema-2.1.0.json");
        // The schema's two `language` patterns have a stray `]`, a literal in ECMA-262 regexes but
        // an error for Rust's; escaped, they mean what they mean in JavaScript.
        let stray = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
        assert_eq!(text.matches(stray).count(), 2);
        let text = text.replace(stray, r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\\]?$""#);
        let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
        jsonschema::options().should_validate_formats(true).build(&schema).expect("schema compiles")
    }

    #[test]
    fn valid_against_the_sarif_schema() {
        let doc = document(&fixtures::report(), &info());
        let validator = validator();
        let errors: Vec<String> =
            validator.iter_errors(&doc).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let mut empty = fixtures::report();
        empty.findings.clear();
        empty.suppressed.clear();
        empty.sbom = None;
        empty.source.image = None;
        assert!(validator.is_valid(&document(&empty, &info())));
    }

    #[test]
    fn schema_catches_a_broken_document() {
        let mut doc = document(&fixtures::report(), &info());
        let validator = validator();
        doc["runs"][0]["results"][0]["level"] = json!("fatal");
        assert!(!validator.is_valid(&doc));
        let mut doc = document(&fixtures::report(), &info());
        doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = json!("a b");
        assert!(!validator.is_valid(&doc), "formats are checked");
    }

    #[test]
    fn rules_results_and_suppressions() {
        let doc = document(&fixtures::report(), &info());
        let run = &doc["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
        let results = run["results"].as_array().expect("results");
        assert_eq!(results.len(), 7);
        assert_eq!(rules.len(), 7);
        for result in results {
            let index = result["ruleIndex"].as_u64().expect("index") as usize;
            assert_eq!(rules[index]["id"], result["ruleId"]);
        }
        // CVSS v4 9.3 agrees with CRITICAL; the secret has no CVSS and gets its band's number.
        assert_eq!(rules[0]["properties"]["security-severity"], "9.3");
        assert_eq!(rules[1]["properties"]["security-severity"], "9.5");
        assert_eq!(rules[2]["properties"]["security-severity"], "7.8");
        assert!(rules[5]["properties"].get("security-severity").is_none());
        assert_eq!(results[0]["level"], "error");
        assert_eq!(results[4]["level"], "note");

        let secret = &results[1]["locations"][0]["physicalLocation"];
        assert_eq!(secret["artifactLocation"]["uri"], "app/config/.env");
        assert_eq!(secret["region"]["startLine"], 3);
        let package = &results[0]["locations"][0]["physicalLocation"];
        assert_eq!(package["artifactLocation"]["uri"], "usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA");
        assert!(package.get("region").is_none());

        let suppressed = &results[6];
        assert_eq!(suppressed["ruleId"], "CVE-2024-2961");
        assert_eq!(suppressed["suppressions"][0]["kind"], "external");
        assert!(suppressed["suppressions"][0]["justification"].as_str().is_some_and(|j| j.contains(".picketignore:3")));
        assert!(results[0].get("suppressions").is_none());
        assert_eq!(results[0]["properties"]["fix"], "Upgrade PyYAML to 6.0.1.");
        assert!(
            results[0]["message"]["text"].as_str().is_some_and(|m| m.contains("PyYAML 6.0") && m.contains("6.0.1"))
        );
        assert!(rules[3]["help"]["text"].as_str().is_some_and(|m| m.contains("Fix: Add 'USER")), "{}", rules[3]);
    }

    #[test]
    fn a_cve_on_two_packages_is_one_rule() {
        let mut report = fixtures::report();
        let mut again = report.findings[2].clone();
        again.package.as_mut().expect("package").name = "libc-bin".into();
        again.package.as_mut().expect("package").purl = "pkg:deb/debian/libc-bin@2.36-9%2Bdeb12u4".into();
        report.findings.push(again);
        let doc = document(&report, &info());
        let run = &doc["runs"][0];
        assert_eq!(run["tool"]["driver"]["rules"].as_array().map(Vec::len), Some(7));
        assert_eq!(run["results"][2]["ruleIndex"], run["results"][6]["ruleIndex"]);
        assert_ne!(run["results"][2]["partialFingerprints"], run["results"][6]["partialFingerprints"]);
    }

    #[test]
    fn a_shared_rule_names_no_package_and_takes_the_highest_severity() {
        let mut report = fixtures::report();
        let first = report.findings[2].clone();
        let mut again = first.clone();
        let package = again.package.as_mut().expect("package");
        package.name = "libc-bin".into();
        package.purl = "pkg:deb/debian/libc-bin@2.36-9%2Bdeb12u4".into();
        again.fixed_versions = vec!["2.36-9+deb12u5".into()];
        again.severity = Severity::Critical;
        again.cvss = None;
        report.findings.push(again);
        let doc = document(&report, &info());
        let run = &doc["runs"][0];
        let rule = &run["tool"]["driver"]["rules"][run["results"][2]["ruleIndex"].as_u64().expect("index") as usize];
        assert_eq!(rule["id"], "CVE-2023-4911");
        let help = rule["help"].to_string();
        assert!(!help.contains("libc6") && !help.contains("libc-bin") && !help.contains("Upgrade"), "{help}");
        assert_eq!(rule["properties"]["security-severity"], "9.5", "the CRITICAL finding's band");
        assert_eq!(rule["defaultConfiguration"]["level"], "error");
        let (libc6, libc_bin) = (&run["results"][2], &run["results"][6]);
        assert_eq!(libc6["properties"]["fix"], "Upgrade libc6 to 2.36-9+deb12u3.");
        assert_eq!(libc6["properties"]["security-severity"], "7.8");
        assert_eq!(libc6["properties"]["severity"], "HIGH");
        assert_eq!(libc_bin["properties"]["fix"], "Upgrade libc-bin to 2.36-9+deb12u5.");
        assert_eq!(libc_bin["properties"]["severity"], "CRITICAL");
        assert!(libc_bin["message"]["text"].as_str().is_some_and(|m| m.starts_with("libc-bin ")));
        let errors: Vec<String> = validator().iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[test]
    fn paths_become_relative_uri_references() {
        assert_eq!(uri_path("/usr/lib/a b/c:d%e#f?.txt"), "usr/lib/a%20b/c%3Ad%25e%23f%3F.txt");
        assert_eq!(uri_path("Dockerfile"), "Dockerfile");
        assert_eq!(uri_path("/opt/naïve"), "opt/na%C3%AFve");
    }
}

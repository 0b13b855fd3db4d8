//! JUnit XML, for CI systems that show test reports (GitLab, Jenkins, Azure DevOps): a test suite
//! per kind of finding, a test case per finding. Active findings the gate fails on (every one but
//! advisories when there is no gate) are failures; suppressed findings are skipped with the reason.

use super::findings::{fixed_text, primary_path, reference_url};
use crate::model::{Finding, FindingKind};
use crate::scan::Scan;

const KINDS: [(FindingKind, &str); 4] = [
    (FindingKind::Vulnerability, "vulnerabilities"),
    (FindingKind::Advisory, "advisories"),
    (FindingKind::Secret, "secrets"),
    (FindingKind::Misconfiguration, "misconfigurations"),
];

enum Outcome<'a> {
    Failed,
    Passed,
    Skipped(&'a str),
}

pub fn render(report: &Scan) -> String {
    let mut suites = String::new();
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    for (kind, name) in KINDS {
        let mut cases: Vec<(&Finding, Outcome)> = report
            .of_kind(kind)
            .map(|f| (f, if report.fails(f) { Outcome::Failed } else { Outcome::Passed }))
            .collect();
        let explanations: Vec<(&Finding, String)> = report
            .suppressed
            .iter()
            .filter(|s| s.finding.kind == kind)
            .map(|s| (&s.finding, s.explanation()))
            .collect();
        cases.extend(explanations.iter().map(|(f, why)| (*f, Outcome::Skipped(why.as_str()))));

        let suite_failures = cases.iter().filter(|(_, o)| matches!(o, Outcome::Failed)).count();
        let suite_skipped = cases.iter().filter(|(_, o)| matches!(o, Outcome::Skipped(_))).count();
        tests += cases.len();
        failures += suite_failures;
        skipped += suite_skipped;
        suites.push_str(&format!(
            "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{suite_failures}\" errors=\"0\" skipped=\"{suite_skipped}\">\n",
            cases.len()
        ));
        for (finding, outcome) in &cases {
            suites.push_str(&testcase(finding, outcome));
        }
        suites.push_str("  </testsuite>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n{suites}</testsuites>\n",
        attr(&format!("picket scan {}", report.subject()))
    )
}

fn testcase(finding: &Finding, outcome: &Outcome) -> String {
    let classname = match (&finding.package, primary_path(finding)) {
        (Some(p), _) => format!("{}@{}", p.name, p.version),
        (None, Some(path)) => path.to_string(),
        (None, None) => finding.kind.as_str().to_string(),
    };
    let open = format!("    <testcase classname=\"{}\" name=\"{}\"", attr(&classname), attr(&finding.id));
    match outcome {
        Outcome::Failed => format!(
            "{open}>\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
            attr(&finding.title),
            finding.severity,
            text(&details(finding))
        ),
        Outcome::Passed => {
            format!("{open}>\n      <system-out>{}</system-out>\n    </testcase>\n", text(&details(finding)))
        }
        Outcome::Skipped(why) => format!("{open}>\n      <skipped message=\"{}\"/>\n    </testcase>\n", attr(why)),
    }
}

fn details(finding: &Finding) -> String {
    let mut lines = vec![format!("{} {}", finding.id, finding.title)];
    let mut severity = format!("Severity: {}", finding.severity);
    if let Some(cvss) = &finding.cvss {
        severity.push_str(&format!(" (CVSS {} {:.1} {})", cvss.version, cvss.score, cvss.vector));
    }
    lines.push(severity);
    if let Some(p) = &finding.package {
        lines.push(format!("Package: {} {}", p.name, p.version));
    }
    let fixed = fixed_text(finding);
    if !fixed.is_empty() {
        lines.push(format!("Fixed: {fixed}"));
    }
    if let Some(path) = primary_path(finding) {
        match finding.line {
            Some(line) => lines.push(format!("Location: {path}:{line}")),
            None => lines.push(format!("Location: {path}")),
        }
    }
    if let Some(evidence) = &finding.evidence {
        lines.push(format!("Match: {evidence}"));
    }
    if let Some(remediation) = &finding.remediation {
        lines.push(format!("Remediation: {remediation}"));
    }
    if let Some(url) = reference_url(finding) {
        lines.push(format!("Reference: {url}"));
    }
    if !finding.description.is_empty() {
        lines.push(String::new());
        lines.push(finding.description.clone());
    }
    lines.join("\n")
}

/// Text content: markup characters escaped, `\r` kept as a reference (parsers turn a literal one
/// into `\n`), and characters XML 1.0 cannot carry at all replaced with U+FFFD.
pub(crate) fn text(value: &str) -> String {
    escape(value, false)
}

/// An attribute value in double quotes; newlines and tabs as references, since parsers turn
/// literal ones into spaces.
pub(crate) fn attr(value: &str) -> String {
    escape(value, true)
}

fn escape(value: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            '\n' | '\t' => out.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use super::*;
    use crate::report::findings::fixtures;

    /// Parses with Python's xml.etree (a real XML parser) and returns, per test case,
    /// `suite|classname|name|outcome|message`.
    fn parse(xml: &str) -> Vec<String> {
        let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
assert root.tag == "testsuites", root.tag
print("totals|%s|%s|%s" % (root.get("tests"), root.get("failures"), root.get("skipped")))
for suite in root.findall("testsuite"):
    for case in suite.findall("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "skipped"):
                outcome, message = child.tag, child.get("message")
        print("%s|%s|%s|%s|%s" % (suite.get("name"), case.get("classname"), case.get("name"), outcome, message.encode("unicode_escape").decode()))
"#;
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        child.stdin.take().expect("stdin").write_all(xml.as_bytes()).expect("writes");
        let output = child.wait_with_output().expect("python3 finishes");
        assert!(output.status.success(), "{}\n{xml}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect()
    }

    #[test]
    fn parses_with_a_real_xml_parser() {
        let rows = parse(&render(&fixtures::report()));
        assert_eq!(
            rows,
            [
                "totals|7|4|1",
                "vulnerabilities|PyYAML@6.0|GHSA-8q59-q68h-6hv4|failure|Code execution in <yaml.load> & \"full_load\" of 'untrusted' | input",
                "vulnerabilities|libc6@2.36-9+deb12u4|CVE-2023-4911|failure|glibc: buffer overflow in ld.so leading to privilege escalation",
                "vulnerabilities|libc6@2.36-9+deb12u4|CVE-2024-2961|skipped|vulnerable_code_not_in_execute_path: no ISO-2022-CN-EXT conversions (.picketignore:3, expires 2027-01-01)",
                "advisories|atty@0.2.14|RUSTSEC-2024-0375|passed|",
                "secrets|/app/config/.env|aws-access-key-id|failure|AWS Access Key ID",
                "misconfigurations|Dockerfile|DS002|failure|Image user should not be 'root'",
                "misconfigurations|Dockerfile|DS026|passed|",
            ]
        );
    }

    #[test]
    fn without_a_gate_every_active_finding_but_advisories_fails() {
        let mut report = fixtures::report();
        report.gate = None;
        let rows = parse(&render(&report));
        assert_eq!(rows[0], "totals|7|5|1");
        assert!(rows.iter().any(|r| r.starts_with("misconfigurations|Dockerfile|DS026|failure|")));
    }

    #[test]
    fn escaping_survives_a_round_trip() {
        let mut report = fixtures::report();
        report.findings[0].title = "a<b>&\"c\"'d'\nline\ttab\r\u{1}end".into();
        report.findings[0].description = "]]> <![CDATA[ & \u{7}".into();
        let xml = render(&report);
        assert!(xml.contains("message=\"a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;&#10;line&#9;tab&#13;\u{fffd}end\""));
        assert!(xml.contains("]]&gt; &lt;![CDATA[ &amp; \u{fffd}"));
        let rows = parse(&xml);
        assert!(
            rows.contains(
                &"vulnerabilities|PyYAML@6.0|GHSA-8q59-q68h-6hv4|failure|a<b>&\"c\"'d'\\nline\\ttab\\r\\ufffdend"
                    .to_string()
            ),
            "{rows:#?}"
        );
    }

    #[test]
    fn an_empty_report_is_valid_xml() {
        let mut report = fixtures::report();
        report.findings.clear();
        report.suppressed.clear();
        assert_eq!(parse(&render(&report)), ["totals|0|0|0"]);
    }
}

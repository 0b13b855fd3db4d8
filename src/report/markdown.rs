//! Markdown (GitHub-flavoured) for pull-request comments and job summaries: the gate's verdict,
//! counts per severity and kind, a table per kind with the descriptions folded into `<details>`,
//! and the suppressed findings with their reasons.

use super::findings::{fixed_text, primary_path, reference_url};
use crate::model::{Finding, FindingKind, Severity};
use crate::scan::Scan;

type Row = fn(&Finding) -> Vec<String>;

const KINDS: [(FindingKind, &str); 4] = [
    (FindingKind::Vulnerability, "Vulnerabilities"),
    (FindingKind::Secret, "Secrets"),
    (FindingKind::Misconfiguration, "Misconfigurations"),
    (FindingKind::Advisory, "Advisories"),
];

pub fn render(report: &Scan) -> String {
    let mut out = format!("## picket scan: {}\n\n", cell(&report.subject()));
    if let Some(gate) = &report.gate {
        let verdict = if gate.passed() { "✅ PASS" } else { "❌ FAIL" };
        out.push_str(&format!("**Gate: {verdict}**: {}\n\n", gate.summary()));
    }
    out.push_str(&summary(report));
    if !report.databases.is_empty() {
        out.push_str(&format!("\nData: {}\n", report.databases.iter().map(|d| cell(d)).collect::<Vec<_>>().join(", ")));
    }

    for (kind, title) in KINDS {
        let findings: Vec<&Finding> = report.of_kind(kind).collect();
        if findings.is_empty() {
            continue;
        }
        out.push_str(&format!("\n### {title} ({})\n\n", findings.len()));
        if kind == FindingKind::Advisory {
            out.push_str("Informational: advisories never fail the gate.\n\n");
        }
        let (header, row): (&[&str], Row) = match kind {
            FindingKind::Vulnerability => {
                (&["Package", "Version", "ID", "Severity", "Fixed", "Title"], vulnerability_row)
            }
            FindingKind::Advisory => (&["Package", "Version", "ID", "Title"], advisory_row),
            FindingKind::Secret => (&["Path", "Line", "Rule", "Severity", "Match"], secret_row),
            FindingKind::Misconfiguration => (&["File", "Line", "Rule", "Severity", "Title"], misconfiguration_row),
        };
        out.push_str(&table(header, findings.iter().map(|f| row(f))));
        for finding in findings {
            out.push_str(&details(finding));
        }
    }

    if !report.suppressed.is_empty() {
        out.push_str(&format!("\n### Suppressed ({})\n\n", report.suppressed.len()));
        let rows = report.suppressed.iter().map(|s| {
            let what = match &s.finding.package {
                Some(p) => format!("{} {}", p.name, p.version),
                None => primary_path(&s.finding).unwrap_or_default().to_string(),
            };
            vec![
                id_link(&s.finding),
                literal(&what),
                s.finding.severity.to_string(),
                cell(&s.reason),
                literal(&s.by),
                literal(s.expires.as_deref().unwrap_or_default()),
            ]
        });
        out.push_str(&table(&["ID", "Package or path", "Severity", "Reason", "By", "Expires"], rows));
    }

    if !report.warnings.is_empty() {
        out.push_str("\n### Warnings\n\n");
        for warning in &report.warnings {
            out.push_str(&format!("- {}\n", cell(warning)));
        }
    }
    out
}

/// Counts per severity (rows) and kind (columns) of the active findings.
fn summary(report: &Scan) -> String {
    let count = |severity: Option<Severity>, kind: Option<FindingKind>| {
        let n = report
            .findings
            .iter()
            .filter(|f| severity.is_none_or(|s| f.severity == s) && kind.is_none_or(|k| f.kind == k))
            .count();
        n.to_string()
    };
    let mut header: Vec<&str> = vec!["Severity"];
    header.extend(KINDS.iter().map(|(_, title)| *title));
    header.push("Total");
    let mut rows: Vec<Vec<String>> = Vec::new();
    for severity in Severity::ALL {
        let mut row = vec![severity.to_string()];
        row.extend(KINDS.iter().map(|(kind, _)| count(Some(severity), Some(*kind))));
        row.push(count(Some(severity), None));
        rows.push(row);
    }
    let mut total = vec!["**Total**".to_string()];
    total.extend(KINDS.iter().map(|(kind, _)| format!("**{}**", count(None, Some(*kind)))));
    total.push(format!("**{}**", report.findings.len()));
    rows.push(total);
    table(&header, rows.into_iter())
}

fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

fn vulnerability_row(f: &Finding) -> Vec<String> {
    let (name, version) = package(f);
    vec![literal(name), literal(version), id_link(f), f.severity.to_string(), literal(&fixed_text(f)), cell(&f.title)]
}

fn advisory_row(f: &Finding) -> Vec<String> {
    let (name, version) = package(f);
    vec![literal(name), literal(version), id_link(f), cell(&f.title)]
}

fn secret_row(f: &Finding) -> Vec<String> {
    vec![
        literal(primary_path(f).unwrap_or_default()),
        line(f),
        literal(&f.id),
        f.severity.to_string(),
        literal(f.evidence.as_deref().unwrap_or_default()),
    ]
}

fn misconfiguration_row(f: &Finding) -> Vec<String> {
    vec![literal(primary_path(f).unwrap_or_default()), line(f), id_link(f), f.severity.to_string(), cell(&f.title)]
}

fn package(f: &Finding) -> (&str, &str) {
    f.package.as_ref().map_or(("", ""), |p| (p.name.as_str(), p.version.as_str()))
}

fn line(f: &Finding) -> String {
    f.line.map(|l| l.to_string()).unwrap_or_default()
}

fn id_link(f: &Finding) -> String {
    match reference_url(f) {
        Some(url) if is_web_url(&url) => format!("[{}]({})", literal(&f.id), link_target(&url)),
        // Any other scheme (`javascript:`, `data:` …) is shown, never linked.
        Some(url) => format!("{} ({})", literal(&f.id), literal(&url)),
        None => literal(&f.id),
    }
}

/// A finding's description and remediation, folded; nothing when it has neither.
fn details(f: &Finding) -> String {
    let mut body = Vec::new();
    if !f.description.is_empty() {
        body.push(html(&f.description));
    }
    if let Some(remediation) = &f.remediation {
        body.push(format!("**Fix:** {}", html(remediation)));
    }
    if body.is_empty() {
        return String::new();
    }
    format!(
        "\n<details>\n<summary>{}: {}</summary>\n\n{}\n\n</details>\n",
        html(&f.id),
        html(&f.title),
        body.join("\n\n")
    )
}

/// Text for a table cell: pipes, newlines and HTML cannot break out of the cell.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text that is not Markdown (paths, versions, matched secrets): emphasis, code and link
/// characters are escaped too, so that `AKIA****MPLE` or `__init__.py` print as they are.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in cell(text).chars() {
        if matches!(c, '*' | '_' | '`' | '[' | ']' | '~') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text inside `<details>`: Markdown stays Markdown (OSV descriptions are Markdown), but no HTML
/// can close the fold early.
fn html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Whether a reference is an `http:` or `https:` URL, the only ones linked.
fn is_web_url(url: &str) -> bool {
    let lower = url.trim_start().get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// A URL as a link target: control characters (line breaks end a table row), spaces and the
/// characters that end a Markdown link or a table cell or escape one (`|`, `\`, `<`, `>`, `(`,
/// `)`) are percent-encoded.
fn link_target(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.trim().chars() {
        if c.is_control() || matches!(c, ' ' | '|' | '\\' | '<' | '>' | '(' | ')') {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::findings::fixtures;

    #[test]
    fn markdown_snapshot() {
        let text = render(&fixtures::report());
        insta::with_settings!({ snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"), prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("findings_markdown", text);
        });
    }

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(cell("a | b\nc\\|"), "a \\| b<br>c\\\\\\|");
        assert_eq!(cell("</td><script>"), "&lt;/td&gt;&lt;script&gt;");
        assert_eq!(literal("AKIA**MPLE __init__.py [x]"), "AKIA\\*\\*MPLE \\_\\_init\\_\\_.py \\[x\\]");
        let text = render(&fixtures::report());
        let row = text.lines().find(|l| l.contains("GHSA-8q59-q68h-6hv4](")).expect("PyYAML row");
        assert_eq!(row.matches(" | ").count(), 5, "{row}");
    }

    #[test]
    fn reference_urls_cannot_break_the_table() {
        let mut report = fixtures::report();
        report.findings[0].references = vec!["https://example.com/a b|c\\d\n| injected | row |\r\n<x>(y)\u{7}".into()];
        report.findings[2].references = vec!["javascript:alert(1)".into()];
        let text = render(&report);
        let row = text.lines().find(|l| l.contains("GHSA-8q59-q68h-6hv4](")).expect("PyYAML row");
        assert_eq!(row.matches(" | ").count(), 5, "{row}");
        assert!(
            row.contains(
                "(https://example.com/a%20b%7Cc%5Cd%0A%7C%20injected%20%7C%20row%20%7C%0D%0A%3Cx%3E%28y%29%07)"
            ),
            "{row}"
        );
        assert!(!text.contains("](javascript"), "only http(s) is linked");
        let row = text.lines().find(|l| l.contains("CVE-2023-4911")).expect("libc6 row");
        assert!(row.contains("CVE-2023-4911 (javascript:alert(1))"), "{row}");
        assert_eq!(row.matches(" | ").count(), 5, "{row}");
        assert!(is_web_url("HTTPS://x") && !is_web_url("ftp://x") && !is_web_url("http"));
    }

    #[test]
    fn details_cannot_close_the_fold() {
        let mut report = fixtures::report();
        report.findings[0].description = "see </details> and <img src=x>".into();
        let text = render(&report);
        assert_eq!(text.matches("</details>").count(), text.matches("<details>").count());
    }

    #[test]
    fn passing_gate_and_no_findings() {
        let mut report = fixtures::report();
        report.findings.clear();
        report.suppressed.clear();
        report.warnings.clear();
        if let Some(gate) = report.gate.as_mut() {
            gate.failing = 0;
        }
        let text = render(&report);
        assert!(text.contains("**Gate: ✅ PASS**: no findings at or above HIGH"));
        assert!(text.contains("| **Total** | **0** | **0** | **0** | **0** | **0** |"));
        assert!(!text.contains("###"));
    }
}

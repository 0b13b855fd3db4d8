//! The terminal table, laid out like Trivy's: a header with the counts per severity, one table per
//! kind of finding, advisories and suppressed findings listed apart, and the gate's verdict.

use super::findings::{fixed_text, primary_path};
use crate::model::{Finding, FindingKind, Severity};
use crate::scan::Scan;

const TITLE_MAX: usize = 60;
const MATCH_MAX: usize = 48;
const PATH_MAX: usize = 60;

pub fn render(report: &Scan, color: bool) -> String {
    let paint = Paint { color };
    let mut out = String::new();
    let subject = clean(&report.subject());
    out.push_str(&format!("{subject}\n{}\n", "=".repeat(width(&subject))));
    let counts: Vec<String> = report
        .counts()
        .iter()
        .map(|(severity, n)| format!("{}: {n}", paint.severity(*severity, severity.as_str())))
        .collect();
    out.push_str(&format!("Total: {} ({})\n", report.findings.len(), counts.join(", ")));
    if report.findings.is_empty() && report.suppressed.is_empty() {
        out.push_str("\nNo findings.\n");
    }

    let vulnerabilities: Vec<&Finding> = report.of_kind(FindingKind::Vulnerability).collect();
    if !vulnerabilities.is_empty() {
        let mut table = Table::new(&["Package", "Version", "ID", "Severity", "Fixed", "Title"]);
        for f in &vulnerabilities {
            let (name, version) = package(f);
            table.row(vec![
                Cell::plain(name),
                Cell::plain(version),
                Cell::plain(&f.id),
                Cell::severity(f.severity),
                Cell::plain(&fixed_text(f)),
                Cell::plain(&truncate_end(&f.title, TITLE_MAX)),
            ]);
        }
        section(&mut out, &format!("Vulnerabilities ({})", vulnerabilities.len()), &table.render(&paint));
    }

    let secrets: Vec<&Finding> = report.of_kind(FindingKind::Secret).collect();
    if !secrets.is_empty() {
        let mut table = Table::new(&["Path", "Line", "Rule", "Severity", "Match"]);
        for f in &secrets {
            table.row(vec![
                Cell::plain(&truncate_start(primary_path(f).unwrap_or_default(), PATH_MAX)),
                Cell::plain(&line(f)),
                Cell::plain(&f.id),
                Cell::severity(f.severity),
                Cell::plain(&truncate_end(f.evidence.as_deref().unwrap_or_default(), MATCH_MAX)),
            ]);
        }
        section(&mut out, &format!("Secrets ({})", secrets.len()), &table.render(&paint));
    }

    // One table per file, as the file is what a reader opens to fix them.
    let mut files: Vec<(&str, Vec<&Finding>)> = Vec::new();
    for f in report.of_kind(FindingKind::Misconfiguration) {
        let path = primary_path(f).unwrap_or_default();
        match files.iter_mut().find(|(p, _)| *p == path) {
            Some((_, list)) => list.push(f),
            None => files.push((path, vec![f])),
        }
    }
    for (path, list) in &files {
        let mut table = Table::new(&["Line", "Rule", "Severity", "Title"]);
        for f in list {
            table.row(vec![
                Cell::plain(&line(f)),
                Cell::plain(&f.id),
                Cell::severity(f.severity),
                Cell::plain(&truncate_end(&f.title, TITLE_MAX)),
            ]);
        }
        let title = match *path {
            "" => format!("Misconfigurations ({})", list.len()),
            p => format!("Misconfigurations in {} ({})", truncate_start(p, PATH_MAX), list.len()),
        };
        section(&mut out, &title, &table.render(&paint));
    }

    let advisories: Vec<&Finding> = report.of_kind(FindingKind::Advisory).collect();
    if !advisories.is_empty() {
        let rows: Vec<[String; 3]> = advisories
            .iter()
            .map(|f| {
                let (name, version) = package(f);
                [clean(&f.id), clean(&format!("{name} {version}")), truncate_end(&f.title, TITLE_MAX)]
            })
            .collect();
        section(&mut out, &format!("Advisories ({}, informational)", rows.len()), &aligned(&rows));
    }

    if !report.suppressed.is_empty() {
        let rows: Vec<[String; 3]> = report
            .suppressed
            .iter()
            .map(|s| {
                let what = match (&s.finding.package, primary_path(&s.finding)) {
                    (Some(p), _) => format!("{} {}", p.name, p.version),
                    (None, Some(path)) => path.to_string(),
                    (None, None) => String::new(),
                };
                [clean(&s.finding.id), truncate_start(&what, PATH_MAX), clean(&s.explanation())]
            })
            .collect();
        section(&mut out, &format!("Suppressed ({})", rows.len()), &aligned(&rows));
    }

    if !report.warnings.is_empty() {
        let list: String = report.warnings.iter().map(|w| format!("  - {}\n", clean(w))).collect();
        section(&mut out, "Warnings", &list);
    }

    if let Some(gate) = &report.gate {
        let verdict = if gate.passed() { paint.pass("PASS") } else { paint.fail("FAIL") };
        out.push_str(&format!("\nGate: {verdict} ({})\n", gate.summary()));
    }
    out
}

fn section(out: &mut String, title: &str, body: &str) {
    out.push_str(&format!("\n{title}\n{body}"));
}

fn package(finding: &Finding) -> (&str, &str) {
    finding.package.as_ref().map_or(("", ""), |p| (p.name.as_str(), p.version.as_str()))
}

fn line(finding: &Finding) -> String {
    finding.line.map(|l| l.to_string()).unwrap_or_default()
}

/// Columns a string takes in a terminal. Counts chars, which is exact for the text findings
/// carry except wide (CJK, emoji) glyphs; `unicode-width` would make those exact too.
fn width(text: &str) -> usize {
    text.chars().count()
}

use super::clean;

fn truncate_end(text: &str, max: usize) -> String {
    let text = clean(text);
    if width(&text) <= max {
        return text;
    }
    let mut kept: String = text.chars().take(max.saturating_sub(1)).collect();
    kept.push('…');
    kept
}

/// Keeps the end of a path, where the file name is.
fn truncate_start(text: &str, max: usize) -> String {
    let text = clean(text);
    let count = width(&text);
    if count <= max {
        return text;
    }
    let tail: String = text.chars().skip(count - max.saturating_sub(1)).collect();
    format!("…{tail}")
}

fn pad(text: &str, to: usize) -> String {
    " ".repeat(to.saturating_sub(width(text)))
}

/// Rows of a list without borders, columns aligned.
fn aligned(rows: &[[String; 3]]) -> String {
    let widths: Vec<usize> = (0..3).map(|i| rows.iter().map(|r| width(&r[i])).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| format!("  {}{}  {}{}  {}\n", r[0], pad(&r[0], widths[0]), r[1], pad(&r[1], widths[1]), r[2]))
        .collect()
}

struct Paint {
    color: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }

    fn severity(&self, severity: Severity, text: &str) -> String {
        match severity {
            Severity::Critical => self.wrap("1;31", text),
            Severity::High => self.wrap("31", text),
            Severity::Medium => self.wrap("33", text),
            Severity::Low => self.wrap("34", text),
            Severity::Unknown => text.to_string(),
        }
    }

    fn pass(&self, text: &str) -> String {
        self.wrap("1;32", text)
    }

    fn fail(&self, text: &str) -> String {
        self.wrap("1;31", text)
    }
}

struct Cell {
    text: String,
    severity: Option<Severity>,
}

impl Cell {
    fn plain(text: &str) -> Self {
        Self { text: clean(text), severity: None }
    }

    fn severity(severity: Severity) -> Self {
        Self { text: severity.as_str().to_string(), severity: Some(severity) }
    }
}

struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    fn new(headers: &[&'static str]) -> Self {
        Self { headers: headers.to_vec(), rows: Vec::new() }
    }

    fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    fn render(&self, paint: &Paint) -> String {
        let widths: Vec<usize> = self
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| self.rows.iter().filter_map(|r| r.get(i)).map(|c| width(&c.text)).fold(width(h), usize::max))
            .collect();
        let rule = |left: &str, mid: &str, right: &str| {
            let bars: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
            format!("{left}{}{right}\n", bars.join(mid))
        };
        let mut out = rule("┌", "┬", "┐");
        let header: Vec<String> =
            self.headers.iter().zip(&widths).map(|(h, w)| format!(" {h}{} ", pad(h, *w))).collect();
        out.push_str(&format!("│{}│\n", header.join("│")));
        out.push_str(&rule("├", "┼", "┤"));
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| {
                    // Padding outside the colour codes, so that widths count only visible text.
                    let text = match cell.severity {
                        Some(severity) => paint.severity(severity, &cell.text),
                        None => cell.text.clone(),
                    };
                    format!(" {text}{} ", pad(&cell.text, *w))
                })
                .collect();
            out.push_str(&format!("│{}│\n", cells.join("│")));
        }
        out.push_str(&rule("└", "┴", "┘"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::findings::fixtures;

    #[test]
    fn table_snapshot() {
        let text = render(&fixtures::report(), false);
        insta::with_settings!({ snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"), prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("findings_table", text);
        });
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn colour_only_on_severities_and_verdict() {
        let text = render(&fixtures::report(), true);
        assert!(text.contains("\x1b[1;31mCRITICAL\x1b[0m"));
        assert!(text.contains("\x1b[34mLOW\x1b[0m"));
        assert!(text.contains("Gate: \x1b[1;31mFAIL\x1b[0m"));
        let plain = render(&fixtures::report(), false);
        let strip = text.replace("\x1b[1;31m", "").replace("\x1b[31m", "").replace("\x1b[33m", "");
        let strip = strip.replace("\x1b[34m", "").replace("\x1b[0m", "");
        assert_eq!(strip, plain);
    }

    #[test]
    fn columns_fit_content_and_long_titles_are_cut() {
        let mut report = fixtures::report();
        report.findings[2].title = "ü".repeat(80);
        report.findings[2].description.clear();
        let text = render(&report, false);
        let cut = format!("{}…", "ü".repeat(TITLE_MAX - 1));
        assert!(text.contains(&cut), "{text}");
        let table: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("Vulnerabilities")).skip(1).take(5).collect();
        let widths: Vec<usize> = table.iter().map(|l| width(l)).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{table:#?}");
    }

    #[test]
    fn control_characters_do_not_reach_the_terminal() {
        let mut report = fixtures::report();
        report.findings[0].title = "evil\x1b]0;pwned\x07\ntitle".into();
        let text = render(&report, false);
        assert!(!text.contains('\x1b') && !text.contains('\x07'));
        assert!(text.contains("evil ]0;pwned  title"));
    }

    #[test]
    fn empty_report_says_so() {
        let mut report = fixtures::report();
        report.findings.clear();
        report.suppressed.clear();
        report.warnings.clear();
        report.gate = None;
        let text = render(&report, false);
        assert!(text.ends_with("Total: 0 (CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0)\n\nNo findings.\n"));
    }
}

//! The risk report for an auditor or a team lead (`picket report --html|--markdown`): a
//! self-contained HTML page (inline CSS and SVG, nothing fetched at view time) or Markdown with
//! severity over the stored images, the riskiest workloads, compliance by section and alerts
//! over time. [`gather`] collects the data; [`html`] and [`markdown`] only render it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{FindingKind, Severity};
use crate::store::Store;

const SEVERITIES: [Severity; 4] = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low];

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageRow {
    pub name: String,
    /// Critical, high, medium, low.
    pub counts: [usize; 4],
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SectionRow {
    pub section: String,
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReportData {
    pub generated: String,
    pub images: Vec<ImageRow>,
    pub workloads: Vec<crate::risk::Score>,
    pub context: Option<String>,
    pub compliance: Vec<SectionRow>,
    /// Alerts per day (`2026-12-06`), by severity (critical, high, medium, low).
    pub alerts_by_day: BTreeMap<String, [usize; 4]>,
    /// What could not be included, each a sentence.
    pub notes: Vec<String>,
}

fn index(severity: Severity) -> Option<usize> {
    SEVERITIES.iter().position(|s| *s == severity)
}

/// The report's data from the store and, when given, a context's inventory (with what its
/// agents published, for which packages are in use).
pub fn gather(
    store: &Store,
    inventory: Option<&crate::cluster::inventory::Inventory>,
    baselines: &crate::learn::Baselines,
) -> Result<ReportData, String> {
    let mut data = ReportData { generated: crate::alert::time(crate::alert::now_unix_ms()), ..ReportData::default() };
    let db = crate::vulndb::VulnDb::open(store).map_err(|e| e.to_string())?;
    for (_, sbom) in crate::scan::stored::list(store).map_err(|e| format!("reading stored scans: {e}"))? {
        let mut row = ImageRow { name: sbom.source.name.clone(), counts: [0; 4] };
        match crate::vulndb::matcher::match_sbom(&db, &sbom) {
            Ok(matched) => {
                for f in matched
                    .findings
                    .iter()
                    .filter(|f| matches!(f.kind, FindingKind::Vulnerability | FindingKind::Advisory))
                {
                    if let Some(i) = index(f.severity) {
                        row.counts[i] += 1;
                    }
                }
            }
            Err(e) => data.notes.push(format!("{}: {e}", sbom.source.name)),
        }
        data.images.push(row);
    }
    data.images.sort_by(|a, b| b.counts.cmp(&a.counts).then_with(|| a.name.cmp(&b.name)));
    if data.images.is_empty() {
        data.notes.push("no image was scanned here (picket scan image, picket cluster scan)".into());
    }
    match inventory {
        Some(inventory) => {
            data.context = Some(inventory.context.clone());
            let folds = crate::alert::open_folds(store).map_err(|e| e.to_string())?;
            data.workloads = crate::risk::gather::score_cluster(inventory, store, &folds, baselines);
            let facts = crate::bench::k8s::ClusterFacts::new(inventory);
            let report = crate::bench::k8s::judge_on(&facts, &[]);
            let mut sections: BTreeMap<String, SectionRow> = BTreeMap::new();
            for check in &report.checks {
                let title = report
                    .sections
                    .iter()
                    .find(|s| s.id == check.meta.section)
                    .map_or(check.meta.section.clone(), |s| format!("{} {}", s.id, s.title));
                let row = sections
                    .entry(title.clone())
                    .or_insert_with(|| SectionRow { section: title, ..SectionRow::default() });
                match check.status() {
                    crate::bench::Status::Pass => row.pass += 1,
                    crate::bench::Status::Fail => row.fail += 1,
                    crate::bench::Status::Warn => row.warn += 1,
                    _ => {}
                }
            }
            data.compliance = sections.into_values().filter(|s| s.pass + s.fail + s.warn > 0).collect();
        }
        None => data.notes.push("no cluster was read: workloads and compliance are left out (--context)".into()),
    }
    let alerts = crate::alert::AlertLog::open(store)
        .and_then(|log| log.newest(crate::alert::detail::SEARCHED))
        .map_err(|e| e.to_string())?;
    for alert in alerts {
        let day = crate::alert::time(alert.alert.at_unix_ms).chars().take(10).collect::<String>();
        let counts = data.alerts_by_day.entry(day).or_insert([0; 4]);
        if let Some(i) = index(alert.alert.severity) {
            counts[i] += alert.alert.count.max(1) as usize;
        }
    }
    Ok(data)
}

const COLORS: [&str; 4] = ["#8b0000", "#d9534f", "#f0ad4e", "#5bc0de"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Horizontal stacked bars: one row per label, one segment per series.
fn stacked_bars(id: &str, rows: &[(String, Vec<(usize, &str)>)]) -> String {
    let max = rows.iter().map(|(_, parts)| parts.iter().map(|(n, _)| n).sum::<usize>()).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (260.0, 560.0, 24.0);
    let height = rows.len() as f64 * row_h + 10.0;
    let mut svg = format!(
        "<svg id=\"{id}\" class=\"chart\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\" role=\"img\">",
        label_w + bar_w + 60.0,
        label_w + bar_w + 60.0
    );
    for (i, (label, parts)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 5.0;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"label\">{}</text>",
            label_w - 8.0,
            y + 15.0,
            escape(&label.chars().take(40).collect::<String>())
        ));
        let mut x = label_w;
        let mut total = 0;
        for (n, color) in parts {
            let w = *n as f64 / max as f64 * bar_w;
            if *n > 0 {
                svg.push_str(&format!(
                    "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{color}\"/>",
                    row_h - 6.0
                ));
            }
            x += w;
            total += n;
        }
        svg.push_str(&format!("<text x=\"{:.1}\" y=\"{}\" class=\"value\">{total}</text>", x + 6.0, y + 15.0));
    }
    svg.push_str("</svg>");
    svg
}

/// Vertical stacked columns over time.
fn columns(id: &str, days: &BTreeMap<String, [usize; 4]>) -> String {
    let max = days.values().map(|c| c.iter().sum::<usize>()).max().unwrap_or(0).max(1);
    let (width, height, col_w) = (860.0, 220.0, (820.0 / days.len().max(1) as f64).min(60.0));
    let mut svg =
        format!("<svg id=\"{id}\" class=\"chart\" width=\"{width}\" height=\"{}\" role=\"img\">", height + 40.0);
    for (i, (day, counts)) in days.iter().enumerate() {
        let x = 20.0 + i as f64 * col_w;
        let mut y = height;
        for (n, color) in counts.iter().zip(COLORS) {
            let h = *n as f64 / max as f64 * (height - 20.0);
            if *n > 0 {
                svg.push_str(&format!(
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{color}\"/>",
                    y - h,
                    col_w - 6.0
                ));
            }
            y -= h;
        }
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"value\" text-anchor=\"middle\">{}</text><text x=\"{:.1}\" y=\"{}\" class=\"label\" text-anchor=\"middle\">{}</text>",
            x + (col_w - 6.0) / 2.0,
            y - 4.0,
            counts.iter().sum::<usize>(),
            x + (col_w - 6.0) / 2.0,
            height + 16.0,
            escape(day.get(5..).unwrap_or(day))
        ));
    }
    svg.push_str("</svg>");
    svg
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:960px}\
h1{margin-bottom:0}.meta{color:#666}h2{margin-top:2em;border-bottom:1px solid #ddd}\
.label{font-size:12px;fill:#333}.value{font-size:11px;fill:#555}\
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}\
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}.note{color:#a60}";

/// The report as one self-contained HTML page.
pub fn html(data: &ReportData) -> String {
    let legend = |names: &[(&str, &str)]| {
        let spans: Vec<String> =
            names.iter().map(|(n, c)| format!("<span><i style=\"background:{c}\"></i>{}</span>", escape(n))).collect();
        format!("<div class=\"legend\">{}</div>", spans.join(""))
    };
    let severity_legend =
        legend(&[("critical", COLORS[0]), ("high", COLORS[1]), ("medium", COLORS[2]), ("low", COLORS[3])]);
    let mut page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>picket risk report</title><style>{STYLE}</style></head><body>\
         <h1>picket risk report</h1><p class=\"meta\">{} UTC{}</p>",
        escape(&data.generated),
        data.context.as_ref().map(|c| format!(" · context {}", escape(c))).unwrap_or_default()
    );
    for note in &data.notes {
        page.push_str(&format!("<p class=\"note\">{}</p>", escape(note)));
    }
    page.push_str("<h2>Vulnerabilities by image</h2>");
    page.push_str(&severity_legend);
    let rows: Vec<(String, Vec<(usize, &str)>)> =
        data.images.iter().take(25).map(|i| (i.name.clone(), i.counts.iter().copied().zip(COLORS).collect())).collect();
    page.push_str(&stacked_bars("severity-by-image", &rows));
    page.push_str("<h2>Riskiest workloads</h2>");
    if data.workloads.is_empty() {
        page.push_str("<p>No workloads (no cluster read).</p>");
    } else {
        let parts = [
            ("vulnerabilities", "#8b0000"),
            ("exposure", "#7b4fa0"),
            ("privileges", "#d9534f"),
            ("compliance", "#f0ad4e"),
            ("alerts", "#2b7bb9"),
        ];
        page.push_str(&legend(&parts));
        let rows: Vec<(String, Vec<(usize, &str)>)> = data
            .workloads
            .iter()
            .take(15)
            .map(|s| {
                let points: Vec<(usize, &str)> = parts
                    .iter()
                    .map(|(name, color)| {
                        let p = s.parts.iter().find(|p| p.name == *name).map_or(0.0, |p| p.points);
                        (p.round() as usize, *color)
                    })
                    .collect();
                (s.subject.clone(), points)
            })
            .collect();
        page.push_str(&stacked_bars("top-workloads", &rows));
    }
    page.push_str("<h2>Compliance by section</h2>");
    if data.compliance.is_empty() {
        page.push_str("<p>No benchmark (no cluster read).</p>");
    } else {
        page.push_str(&legend(&[("pass", "#5cb85c"), ("fail", "#d9534f"), ("warn", "#f0ad4e")]));
        let rows: Vec<(String, Vec<(usize, &str)>)> = data
            .compliance
            .iter()
            .map(|s| (s.section.clone(), vec![(s.pass, "#5cb85c"), (s.fail, "#d9534f"), (s.warn, "#f0ad4e")]))
            .collect();
        page.push_str(&stacked_bars("compliance-by-section", &rows));
    }
    page.push_str("<h2>Alerts over time</h2>");
    if data.alerts_by_day.is_empty() {
        page.push_str("<p>No alerts kept.</p>");
    } else {
        page.push_str(&severity_legend);
        page.push_str(&columns("alerts-over-time", &data.alerts_by_day));
    }
    if !data.workloads.is_empty() {
        page.push_str("<h2>Workload scores</h2><table><tr><th>score</th><th>level</th><th>workload</th><th>biggest reason</th></tr>");
        for s in data.workloads.iter().take(50) {
            let top = s
                .parts
                .iter()
                .filter(|p| p.points > 0.0)
                .max_by(|a, b| a.points.total_cmp(&b.points))
                .and_then(|p| p.reasons.first());
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                s.total,
                s.level,
                escape(&s.subject),
                escape(top.map_or("", String::as_str))
            ));
        }
        page.push_str("</table>");
    }
    page.push_str("</body></html>\n");
    page
}

/// The same report as Markdown tables.
pub fn markdown(data: &ReportData) -> String {
    let mut md = format!(
        "# picket risk report\n\n{} UTC{}\n\n",
        data.generated,
        data.context.as_ref().map(|c| format!(" · context `{c}`")).unwrap_or_default()
    );
    for note in &data.notes {
        md.push_str(&format!("> {note}\n\n"));
    }
    md.push_str("## Vulnerabilities by image\n\n| image | critical | high | medium | low |\n|---|---|---|---|---|\n");
    for i in &data.images {
        md.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            i.name, i.counts[0], i.counts[1], i.counts[2], i.counts[3]
        ));
    }
    md.push_str("\n## Riskiest workloads\n\n| score | level | workload |\n|---|---|---|\n");
    for s in data.workloads.iter().take(25) {
        md.push_str(&format!("| {} | {} | {} |\n", s.total, s.level, s.subject));
    }
    md.push_str("\n## Compliance by section\n\n| section | pass | fail | warn |\n|---|---|---|---|\n");
    for s in &data.compliance {
        md.push_str(&format!("| {} | {} | {} | {} |\n", s.section, s.pass, s.fail, s.warn));
    }
    md.push_str("\n## Alerts per day\n\n| day | critical | high | medium | low |\n|---|---|---|---|---|\n");
    for (day, c) in &data.alerts_by_day {
        md.push_str(&format!("| {day} | {} | {} | {} | {} |\n", c[0], c[1], c[2], c[3]));
    }
    md
}

//! One finding in full: description, CVSS, fix, references, where it is.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::app::state::AppState;
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::model::{Finding, FixState};
use crate::ui::panes::findings::severity_style;
use crate::ui::widgets::table::pane_block;

fn lines<'a>(f: &Finding, theme: &Theme) -> Vec<Line<'a>> {
    let value = theme.style(Slot::Value);
    let row = |label: &str, text: String, style: Style| {
        Line::from(vec![Span::styled(format!("{label:<14}"), theme.style(Slot::Label)), Span::styled(text, style)])
    };
    let mut out = vec![
        row("Id", f.id.clone(), value),
        row("Severity", f.severity.to_string(), severity_style(f.severity, theme)),
        row("Kind", f.kind.as_str().to_string(), value),
        row("Title", f.title.clone(), value),
    ];
    if !f.aliases.is_empty() {
        out.push(row("Aliases", f.aliases.join(", "), value));
    }
    if let Some(cvss) = &f.cvss {
        out.push(row("CVSS", format!("{} (v{}) {}", cvss.score, cvss.version, cvss.vector), value));
    }
    if let Some(p) = &f.package {
        let source = p.source_name.as_ref().map(|s| format!(" (source {s})")).unwrap_or_default();
        out.push(row("Package", format!("{} {} [{}]{source}", p.name, p.version, p.ecosystem), value));
    }
    let fix = match f.fix_state {
        FixState::Fixed => format!("fixed in {}", f.fixed_versions.join(", ")),
        FixState::NotFixed => "no fix yet".to_string(),
        FixState::WontFix => "will not be fixed (distribution decision)".to_string(),
        FixState::Unknown => "unknown".to_string(),
    };
    if f.package.is_some() {
        let style =
            if f.fix_state == FixState::Fixed { theme.style(Slot::StatusOk) } else { theme.style(Slot::StatusWarn) };
        out.push(row("Fix", fix, style));
    }
    for location in &f.locations {
        let layer = location.layer.as_deref().map(|l| format!("  (layer {})", short(l))).unwrap_or_default();
        let line = f.line.map(|n| format!(":{n}")).unwrap_or_default();
        out.push(row("Location", format!("{}{line}{layer}", location.path), value));
    }
    if let Some(evidence) = &f.evidence {
        out.push(row("Match", evidence.clone(), value));
    }
    if let Some(fix) = &f.remediation {
        out.push(row("Remediation", fix.clone(), value));
    }
    out.push(row("Source", f.data_source.clone(), theme.style(Slot::Dim)));
    if !f.description.is_empty() {
        out.push(Line::from(""));
        out.extend(f.description.lines().map(|l| Line::from(Span::styled(l.to_string(), value))));
    }
    if !f.references.is_empty() {
        out.push(Line::from(""));
        out.push(Line::from(Span::styled("References", theme.style(Slot::Label))));
        out.extend(f.references.iter().map(|r| Line::from(Span::styled(format!("  {r}"), theme.style(Slot::Dim)))));
    }
    out
}

fn short(layer: &str) -> &str {
    let hex = layer.strip_prefix("sha256:").unwrap_or(layer);
    hex.get(..12).unwrap_or(hex)
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(finding) = state.findings.as_ref().and_then(|f| f.selected()) else { return };
    let title = format!(" {} ", finding.id);
    let paragraph =
        Paragraph::new(lines(finding, theme)).wrap(Wrap { trim: false }).block(pane_block(title, theme, true));
    frame.render_widget(paragraph, area);
}

//! One check in full: what it asks and why, how to fix it, its references, then every result
//! (status, subject, evidence) in a list that scrolls and filters.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Wrap};

use crate::app::state::{AppState, CheckDetail};
use crate::bench::Assessment;
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::panes::compliance::{failed_of, status_style};
use crate::ui::panes::findings::severity_style;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

const LABEL: usize = 14;

fn lines<'a>(detail: &CheckDetail, theme: &Theme) -> Vec<Line<'a>> {
    let meta = &detail.check.meta;
    let value = theme.style(Slot::Value);
    let row = |label: &str, text: String, style: Style| {
        Line::from(vec![Span::styled(format!("{label:<LABEL$}"), theme.style(Slot::Label)), Span::styled(text, style)])
    };
    let status = detail.check.status();
    let assessment = match meta.assessment {
        Assessment::Automated => "automated",
        Assessment::Manual => "manual (a person decides)",
    };
    let mut out = vec![
        row("Title", meta.title.clone(), theme.style(Slot::PaneTitle)),
        row("Id", meta.id.clone(), value),
        row("Benchmark", detail.benchmark.clone(), value),
        row("Section", detail.section.clone(), value),
        row("Severity", meta.severity.to_string(), severity_style(meta.severity, theme)),
        row("Assessment", assessment.to_string(), value),
        row(
            "Status",
            format!("{} ({} failed)", status.as_str(), failed_of(&detail.check)),
            status_style(status, theme),
        ),
        row("Rationale", meta.rationale.clone(), value),
        row("Remediation", meta.remediation.clone(), value),
    ];
    for (i, reference) in meta.references.iter().enumerate() {
        out.push(row(if i == 0 { "References" } else { "" }, reference.clone(), theme.style(Slot::Dim)));
    }
    out
}

/// Rows `lines` takes once wrapped at `width` (words kept whole, as the paragraph wraps them).
fn wrapped_height(lines: &[Line], width: usize) -> usize {
    let width = width.max(1);
    lines
        .iter()
        .map(|line| {
            let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
            let mut rows = 1;
            let mut used = 0;
            for word in text.split(' ') {
                let len = word.chars().count();
                let needed = if used == 0 { len } else { used + 1 + len };
                if needed <= width {
                    used = needed;
                } else {
                    // On a row of its own, broken every `width` characters when longer.
                    if used > 0 {
                        rows += 1;
                    }
                    rows += len.saturating_sub(1) / width;
                    used = if len == 0 { 0 } else { (len - 1) % width + 1 };
                }
            }
            rows
        })
        .sum()
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(detail) = &state.check else { return };
    let text = lines(detail, theme);
    let wanted = wrapped_height(&text, usize::from(area.width.saturating_sub(2))) + 2;
    // The results keep at least a few rows; the text above takes what it needs of the rest.
    let most = area.height.saturating_sub(6).max(3);
    let height = u16::try_from(wanted).unwrap_or(u16::MAX).min(most);
    let [top, bottom] = Layout::vertical([Constraint::Length(height), Constraint::Min(3)]).areas(area);
    let title = format!(" {} ", detail.check.meta.id);
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }).block(pane_block(title, theme, true)), top);

    let view = &detail.view;
    let results = &detail.check.results;
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| results.get(i))
        .map(|r| {
            Row::new(vec![
                Span::styled(r.status.as_str(), status_style(r.status, theme)),
                Span::raw(r.subject.clone()),
                Span::raw(r.evidence.clone()),
            ])
        })
        .collect();
    let title = format!(" Results [{}/{}]{} ", view.visible.len(), results.len(), filter_badge(view));
    let spec = TableSpec {
        header: &["STATUS", "SUBJECT", "EVIDENCE"],
        widths: &[Constraint::Length(6), Constraint::Percentage(35), Constraint::Fill(1)],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, bottom, pane_block(title, theme, true), spec, theme);
}

#[cfg(test)]
mod tests {
    use ratatui::text::Line;

    #[test]
    fn wrapped_height_counts_word_wrapped_rows() {
        let lines = [Line::from("aaa bbb ccc"), Line::from(""), Line::from("abcdefghij")];
        assert_eq!(super::wrapped_height(&lines, 7), 2 + 1 + 2);
        assert_eq!(super::wrapped_height(&lines, 100), 3);
    }
}

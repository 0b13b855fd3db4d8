//! The Risk pane: workloads ranked by their risk score, with the points of each part
//! (vulnerabilities, exposure, privileges, compliance, alerts); one score explained.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Wrap};

use super::findings::severity_style;
use crate::app::action::Command;
use crate::app::state::{AppState, Loadable};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

fn message(frame: &mut Frame, area: Rect, lines: Vec<Line<'static>>, theme: &Theme) {
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(" Risk ", theme, true));
    frame.render_widget(paragraph, area);
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(risk) = &state.risk else { return };
    let data = match &risk.data {
        Loadable::Ready(data) => data,
        Loadable::Loading => {
            let line = Line::from(Span::styled("scoring the context's workloads…", theme.style(Slot::Dim)));
            message(frame, area, vec![line], theme);
            return;
        }
        Loadable::Failed(err) => {
            let refresh = state.keymap.hint(Command::Refresh).unwrap_or_default();
            let lines = vec![
                Line::from(Span::styled(err.clone(), theme.style(Slot::StatusError))),
                Line::from(""),
                Line::from(Span::styled(format!("{refresh} tries again"), theme.style(Slot::Dim))),
            ];
            message(frame, area, lines, theme);
            return;
        }
    };
    let level_count = |level: crate::model::Severity| data.scores.iter().filter(|s| s.level == level).count();
    let unscanned = data.scores.iter().filter(|s| !s.unknown.is_empty()).count();
    let mut lines = vec![Line::from(vec![
        Span::styled(" critical ", theme.style(Slot::Label)),
        Span::styled(level_count(crate::model::Severity::Critical).to_string(), theme.style(Slot::SeverityCritical)),
        Span::styled("  high ", theme.style(Slot::Label)),
        Span::styled(level_count(crate::model::Severity::High).to_string(), theme.style(Slot::SeverityHigh)),
        Span::styled("  medium ", theme.style(Slot::Label)),
        Span::raw(level_count(crate::model::Severity::Medium).to_string()),
        Span::styled("  low ", theme.style(Slot::Label)),
        Span::raw(level_count(crate::model::Severity::Low).to_string()),
        Span::styled(
            format!(
                "   {} workloads in {} · {unscanned} with no scanned image (VULNS ?)",
                data.scores.len(),
                data.context
            ),
            theme.style(Slot::Dim),
        ),
    ])];
    lines.extend(
        data.warnings.iter().take(2).map(|w| Line::from(Span::styled(format!(" {w}"), theme.style(Slot::StatusWarn)))),
    );
    let height = u16::try_from(lines.len()).unwrap_or(1);
    let [top, body] = Layout::vertical([Constraint::Length(height), Constraint::Min(3)]).areas(area);
    frame.render_widget(Paragraph::new(lines), top);

    let view = &risk.view;
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| data.scores.get(i))
        .map(|s| {
            let part = |name: &str| s.parts.iter().find(|p| p.name == name).map_or(0.0, |p| p.points);
            let vulns = if s.unknown.is_empty() { format!("{:.0}", part("vulnerabilities")) } else { "?".into() };
            Row::new(vec![
                Span::styled(s.total.to_string(), severity_style(s.level, theme)),
                Span::styled(s.level.to_string(), severity_style(s.level, theme)),
                Span::raw(vulns),
                Span::raw(format!("{:.0}", part("exposure"))),
                Span::raw(format!("{:.0}", part("privileges"))),
                Span::raw(format!("{:.0}", part("compliance"))),
                Span::raw(format!("{:.0}", part("alerts"))),
                Span::raw(s.subject.clone()),
                Span::styled(top_reason(s), theme.style(Slot::Dim)),
            ])
        })
        .collect();
    let title = format!(" Risk [{}/{}]{} ", view.visible.len(), data.scores.len(), filter_badge(view));
    let spec = TableSpec {
        header: &["SCORE", "LEVEL", "VULNS", "EXPOSE", "PRIV", "COMPL", "ALERTS", "WORKLOAD", "MOST"],
        widths: &[
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Fill(3),
            Constraint::Fill(2),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, body, pane_block(title, theme, true), spec, theme);
}

/// The biggest single reason of the biggest part.
fn top_reason(score: &crate::risk::Score) -> String {
    score
        .parts
        .iter()
        .filter(|p| p.points > 0.0)
        .max_by(|a, b| a.points.total_cmp(&b.points))
        .and_then(|p| p.reasons.first())
        .cloned()
        .unwrap_or_default()
}

/// One score explained: the lines `picket risk --workload` prints.
pub fn render_detail(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(risk) = &state.risk else { return };
    let Some(score) = risk.opened() else { return };
    let title = format!(" {} · {} ", score.subject, score.total);
    let lines: Vec<Line> = score
        .lines()
        .into_iter()
        .enumerate()
        .skip(risk.scroll)
        .map(|(i, l)| {
            if i == 0 || (!l.starts_with(' ') && !l.is_empty()) {
                Line::from(Span::styled(l, theme.style(Slot::Label)))
            } else {
                Line::from(l)
            }
        })
        .collect();
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(title, theme, true));
    frame.render_widget(paragraph, area);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures;
    use crate::app::state::{PaneId, RiskData};
    use crate::app::update::{run_command, update};

    #[test]
    fn workloads_ranked_and_one_explained() {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, PaneId::Risk);
        let Some(Effect::LoadRisk { request, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        assert!(crate::ui::snapshot::screen(&state).contains("scoring the context's workloads"));
        // What the effect computes: the fixture cluster, an empty store, no alerts.
        let dir = tempfile::tempdir().expect("dir");
        let store = crate::store::Store::open(dir.path()).expect("store");
        let inventory = fixtures::inventory();
        let scores = crate::risk::gather::score_cluster(&inventory, &store, &[], &crate::learn::Baselines::default());
        assert!(scores.windows(2).all(|w| w[0].total >= w[1].total), "the riskiest first");
        assert!(scores.first().is_some_and(|s| s.total > scores.last().map_or(0, |l| l.total)));
        let data = RiskData { context: inventory.context.clone(), scores, warnings: vec![] };
        update(&mut state, Action::RiskLoaded { request, result: Ok(Arc::new(data)) });
        crate::assert_screen!("risk", &state);
        run_command(&mut state, Command::Enter);
        assert_eq!(state.pane(), PaneId::RiskDetail);
        crate::assert_screen!("risk_detail", &state);
    }
}

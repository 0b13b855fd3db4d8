//! The active context's workloads, k9s-like, with their pod-security risk; and the failed
//! checks of one workload.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Wrap};

use crate::app::action::Command;
use crate::app::state::{AppState, Loadable, WorkloadsState, images_label};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::model::Severity;
use crate::ui::panes::findings::severity_style;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

fn message(frame: &mut Frame, area: Rect, title: String, lines: Vec<Line<'static>>, theme: &Theme) {
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(title, theme, true));
    frame.render_widget(paragraph, area);
}

fn context_label(state: &AppState, workloads: &WorkloadsState) -> String {
    match workloads.data.ready() {
        Some(data) => data.context.clone(),
        None => workloads.context.clone().or_else(|| state.active_context().map(String::from)).unwrap_or_default(),
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(workloads) = &state.workloads else { return };
    let context = context_label(state, workloads);
    let data = match &workloads.data {
        Loadable::Ready(data) => data,
        Loadable::Loading => {
            let text = format!("listing the workloads of context {context}…");
            let line = Line::from(Span::styled(text, theme.style(Slot::Dim)));
            message(frame, area, " Workloads ".into(), vec![line], theme);
            return;
        }
        Loadable::Failed(err) => {
            let refresh = state.keymap.hint(Command::Refresh).unwrap_or_default();
            let lines = vec![
                Line::from(Span::styled(err.clone(), theme.style(Slot::StatusError))),
                Line::from(""),
                Line::from(Span::styled(
                    format!("{refresh} tries again; :ctx NAME picks another context"),
                    theme.style(Slot::Dim),
                )),
            ];
            message(frame, area, " Workloads ".into(), lines, theme);
            return;
        }
    };
    let warnings = u16::try_from(data.warnings.len().min(3)).unwrap_or(3);
    let [notes, body] = Layout::vertical([Constraint::Length(warnings), Constraint::Min(3)]).areas(area);
    let lines: Vec<Line> = data
        .warnings
        .iter()
        .take(3)
        .map(|w| Line::from(Span::styled(format!(" {w}"), theme.style(Slot::StatusWarn))))
        .collect();
    frame.render_widget(Paragraph::new(lines), notes);

    let view = &workloads.view;
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| data.rows.get(i))
        .map(|w| {
            let risk = w.risk();
            Row::new(vec![
                Span::raw(w.namespace.clone()),
                Span::raw(w.kind.clone()),
                Span::raw(w.name.clone()),
                Span::raw(w.ready.map(|(ready, of)| format!("{ready}/{of}")).unwrap_or_default()),
                Span::raw(images_label(&w.images)),
                match w.vulnerabilities {
                    Some(v) if v.critical > 0 => Span::styled(v.label(), severity_style(Severity::Critical, theme)),
                    Some(v) if v.high > 0 => Span::styled(v.label(), severity_style(Severity::High, theme)),
                    Some(v) => Span::raw(v.label()),
                    None => Span::styled("not scanned", theme.style(Slot::Dim)),
                },
                Span::raw(if w.failed.is_empty() { String::new() } else { w.failed.len().to_string() }),
                match risk {
                    Some(severity) => Span::styled(severity.as_str(), severity_style(severity, theme)),
                    None => Span::styled("ok", theme.style(Slot::StatusOk)),
                },
            ])
        })
        .collect();
    let namespace = workloads.namespace.as_deref().unwrap_or("all");
    let title = format!(
        " Workloads of {context} ({namespace}) [{}/{}]{} ",
        view.visible.len(),
        data.rows.len(),
        filter_badge(view)
    );
    let spec = TableSpec {
        header: &["NAMESPACE", "KIND", "NAME", "READY", "IMAGES", "VULNS", "CHECKS", "RISK"],
        widths: &[
            Constraint::Length(16),
            Constraint::Length(11),
            Constraint::Length(24),
            Constraint::Length(5),
            Constraint::Fill(1),
            Constraint::Length(13),
            Constraint::Length(6),
            Constraint::Length(8),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, body, pane_block(title, theme, true), spec, theme);
}

/// The failed pod-security checks of the opened workload.
pub fn render_checks(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(workloads) = &state.workloads else { return };
    let Some(workload) = workloads.opened() else { return };
    let view = &workloads.checks_view;
    let title = format!(
        " {} · failed checks [{}/{}]{} ",
        workload.subject(),
        view.visible.len(),
        workload.failed.len(),
        filter_badge(view)
    );
    if workload.failed.is_empty() {
        let line = Line::from(Span::styled(
            "passes every Pod Security Standards baseline and CIS 5.2 check",
            theme.style(Slot::StatusOk),
        ));
        message(frame, area, title, vec![line], theme);
        return;
    }
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| workload.failed.get(i))
        .map(|f| {
            Row::new(vec![
                Span::styled(f.severity.as_str(), severity_style(f.severity, theme)),
                Span::raw(f.id.clone()),
                Span::raw(f.title.clone()),
                Span::raw(f.evidence.clone()),
            ])
        })
        .collect();
    let spec = TableSpec {
        header: &["SEVERITY", "ID", "TITLE", "EVIDENCE"],
        widths: &[Constraint::Length(8), Constraint::Length(9), Constraint::Percentage(45), Constraint::Fill(1)],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, area, pane_block(title, theme, true), spec, theme);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures;
    use crate::app::state::PaneId;
    use crate::app::update::{run_command, update};

    #[test]
    fn workloads_with_their_risk_and_failed_checks() {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, crate::app::state::PaneId::Workloads);
        let Some(Effect::LoadInventory { request, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("listing the workloads of context prod…"), "{screen}");
        let failed = Action::InventoryLoaded { request, result: Err("context prod: no answer within 20s".into()) };
        update(&mut state, failed);
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("context prod: no answer within 20s"), "{screen}");
        update(&mut state, Action::InventoryLoaded { request, result: Ok(Arc::new(fixtures::workloads_data())) });
        crate::assert_screen!("workloads", &state);
        run_command(&mut state, Command::Enter);
        assert_eq!(state.pane(), PaneId::WorkloadChecks);
        crate::assert_screen!("workload_checks", &state);
    }
}

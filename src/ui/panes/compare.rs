//! Several contexts side by side (`:ctx a,b`): each workload's images, failed checks and
//! findings per context, differing ones first; enter shows one workload in full per context.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Row, Wrap};

use crate::app::state::AppState;
use crate::bench::k8s::compare::side_text;
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(compare) = &state.compare else { return };
    let view = &compare.view;
    let differing = compare.rows.iter().filter(|r| r.differences.any()).count();
    let title = format!(
        " Compare {} [{}/{}] {differing} differ{} ",
        compare.contexts.join(" ↔ "),
        view.visible.len(),
        compare.rows.len(),
        filter_badge(view)
    );
    let pending = compare.pending();
    let [notes, body] = Layout::vertical([Constraint::Length(pending.len() as u16), Constraint::Min(3)]).areas(area);
    let lines: Vec<Line> =
        pending.iter().map(|p| Line::from(Span::styled(p.clone(), theme.style(Slot::StatusWarn)))).collect();
    frame.render_widget(Paragraph::new(lines), notes);
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| compare.rows.get(i))
        .map(|row| {
            let mut cells = vec![Text::from(row.namespace.clone()), Text::from(format!("{}/{}", row.kind, row.name))];
            cells.extend(row.sides.iter().map(|s| Text::from(side_text(s.as_ref()))));
            let style = if row.differences.any() { theme.style(Slot::StatusWarn) } else { theme.style(Slot::Dim) };
            cells.push(Text::styled(row.differences.describe(&row.sides, &compare.contexts), style));
            Row::new(cells)
        })
        .collect();
    let mut header: Vec<String> = vec!["NAMESPACE".into(), "WORKLOAD".into()];
    header.extend(compare.contexts.iter().map(|c| c.to_uppercase()));
    header.push("DIFFERS".into());
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut widths = vec![Constraint::Length(14), Constraint::Length(24)];
    widths.extend(compare.contexts.iter().map(|_| Constraint::Fill(1)));
    widths.push(Constraint::Length(22));
    let spec = TableSpec { header: &header_refs, widths: &widths, rows, selected: Some(view.selected) };
    table::render(frame, body, pane_block(title, theme, true), spec, theme);
}

pub fn render_workload(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(compare) = &state.compare else { return };
    let Some(row) = compare.opened() else { return };
    let columns = Layout::horizontal(compare.contexts.iter().map(|_| Constraint::Fill(1))).split(area);
    for ((context, side), column) in compare.contexts.iter().zip(&row.sides).zip(columns.iter()) {
        let label = |text: &str| Span::styled(format!("{text:<10}"), theme.style(Slot::Label));
        let mut lines = Vec::new();
        match side {
            None => lines.push(Line::from(Span::styled("not in this context", theme.style(Slot::Dim)))),
            Some(side) => {
                for image in &side.images {
                    lines.push(Line::from(vec![label("image"), Span::raw(image.clone())]));
                }
                if let Some((ready, desired)) = side.ready {
                    lines.push(Line::from(vec![label("ready"), Span::raw(format!("{ready}/{desired}"))]));
                }
                let vulns = side
                    .vulnerabilities
                    .map(|(c, h, t)| format!("{c} critical, {h} high, {t} in all"))
                    .unwrap_or_else(|| "images not scanned (picket cluster scan)".into());
                lines.push(Line::from(vec![label("findings"), Span::raw(vulns)]));
                lines.push(Line::from(vec![label("failed"), Span::raw(side.failed.len().to_string())]));
                for id in &side.failed {
                    lines.push(Line::from(Span::styled(format!("  {id}"), theme.style(Slot::StatusError))));
                }
            }
        }
        let title = format!(" {context}: {} ", row.subject());
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(title, theme, true)),
            *column,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::app::action::{Action, Command, Effect};
    use crossterm::event::KeyCode;

    use crate::app::fixtures::{self, code, type_text};
    use crate::app::state::PaneId;
    use crate::app::update::{run_command, update};

    #[test]
    fn two_contexts_side_by_side_then_one_workload() {
        let mut state = fixtures::state();
        type_text(&mut state, ":ctx prod,dev");
        let effects = update(&mut state, Action::Key(code(KeyCode::Enter)));
        let requests: Vec<(u64, Option<String>)> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::LoadInventory { request, context } => Some((*request, context.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(requests.iter().map(|(_, c)| c.clone().unwrap_or_default()).collect::<Vec<_>>(), ["prod", "dev"]);
        assert_eq!(state.pane(), PaneId::Compare);
        let prod = fixtures::workloads_data();
        let mut dev = fixtures::workloads_data();
        dev.context = "dev".into();
        let only_in_prod = dev.rows[0].name.clone();
        dev.rows.retain(|r| r.name != only_in_prod);
        if let Some(row) = dev.rows.first_mut() {
            row.images = vec!["registry.example/other:9".into()];
        }
        update(&mut state, Action::InventoryLoaded { request: requests[0].0, result: Ok(Arc::new(prod)) });
        let half = crate::ui::snapshot::screen(&state);
        assert!(half.contains("dev: loading…"), "{half}");
        update(&mut state, Action::InventoryLoaded { request: requests[1].0, result: Ok(Arc::new(dev)) });
        assert!(state.workloads.is_none(), "the compare view's inventories are its own");
        crate::assert_screen!("compare", &state);
        run_command(&mut state, Command::Enter);
        assert_eq!(state.pane(), PaneId::CompareWorkload);
        crate::assert_screen!("compare_workload", &state);
        type_text(&mut state, ":ctx prod,nowhere");
        let effects = update(&mut state, Action::Key(code(KeyCode::Enter)));
        assert!(effects.iter().all(|e| matches!(e, Effect::ExpireToast { .. })));
        assert!(state.latest_toast().is_some_and(|t| t.text.contains("no context 'nowhere'")));
    }
}

//! Kubeconfig contexts; `enter` (or `:ctx NAME`) makes one active.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row};

use crate::app::state::{AppState, Loadable};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::widgets::table::{self, TableSpec, pane_block};

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let contexts = match &state.contexts {
        Loadable::Ready(contexts) => contexts,
        Loadable::Loading => {
            let text = Span::styled("reading kubeconfig…", theme.style(Slot::Dim));
            frame.render_widget(Paragraph::new(text).block(pane_block(" Contexts ", theme, true)), area);
            return;
        }
        Loadable::Failed(err) => {
            let text = Span::styled(err.clone(), theme.style(Slot::StatusError));
            frame.render_widget(Paragraph::new(text).block(pane_block(" Contexts ", theme, true)), area);
            return;
        }
    };
    if contexts.contexts.is_empty() {
        let text = Line::from(Span::styled(
            "No kubeconfig contexts: KUBECONFIG is unset or empty and ~/.kube/config does not exist. \
             picket works on the local host without one.",
            theme.style(Slot::Dim),
        ));
        let paragraph = Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true });
        frame.render_widget(paragraph.block(pane_block(" Contexts [0] ", theme, true)), area);
        return;
    }
    let view = &state.contexts_view;
    let active = state.active_context();
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| contexts.contexts.get(i))
        .map(|c| {
            let marker = if Some(c.name.as_str()) == active { "*" } else { "" };
            Row::new(vec![
                marker.to_string(),
                c.name.clone(),
                c.cluster.clone(),
                c.server.clone(),
                c.user.clone(),
                c.namespace.clone(),
            ])
        })
        .collect();
    let filter = table::filter_badge(view);
    let title = format!(" Contexts [{}/{}]{filter} ", view.visible.len(), contexts.contexts.len());
    let spec = TableSpec {
        header: &["", "NAME", "CLUSTER", "SERVER", "USER", "NAMESPACE"],
        widths: &[
            Constraint::Length(1),
            Constraint::Length(20),
            Constraint::Length(20),
            Constraint::Length(32),
            Constraint::Length(16),
            Constraint::Min(10),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, area, pane_block(title, theme, true), spec, theme);
}

#[cfg(test)]
mod tests {
    use crate::app::action::Command;
    use crate::app::fixtures;
    use crate::app::update::run_command;

    #[test]
    fn contexts_list_marks_active() {
        let mut state = fixtures::state();
        fixtures::show(&mut state, crate::app::state::PaneId::Contexts);
        assert_eq!(state.pane(), crate::app::state::PaneId::Contexts);
        run_command(&mut state, Command::Down);
        run_command(&mut state, Command::Enter);
        assert_eq!(state.active_context(), Some("dev"));
        crate::assert_screen!("contexts_list", &state);
    }

    #[test]
    fn help_overlay() {
        let mut state = fixtures::state();
        run_command(&mut state, Command::NextPane);
        run_command(&mut state, Command::Help);
        crate::assert_screen!("help_containers", &state);
    }
}

//! Containers of every local engine: filterable, `enter` opens the detail.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::Row;

use crate::app::state::{AppState, Loadable};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::engine::ContainerInfo;
use crate::ui::widgets::table::{self, TableSpec, pane_block};

pub const HEADER: &[&str] = &["NAME", "ID", "IMAGE", "STATE", "STATUS", "ENGINE"];
pub const WIDTHS: &[Constraint] = &[
    Constraint::Length(20),
    Constraint::Length(12),
    Constraint::Fill(1),
    Constraint::Length(9),
    Constraint::Length(24),
    Constraint::Length(7),
];

pub fn container_row<'a>(c: &ContainerInfo, theme: &Theme) -> Row<'a> {
    let state_style = match c.state.as_str() {
        "running" => theme.style(Slot::StatusOk),
        "exited" | "dead" => theme.style(Slot::Dim),
        _ => theme.style(Slot::StatusWarn),
    };
    Row::new(vec![
        ratatui::text::Text::from(c.name.clone()),
        c.short_id().to_string().into(),
        c.image.clone().into(),
        ratatui::text::Text::styled(c.state.clone(), state_style),
        c.status.clone().into(),
        c.engine.as_str().to_string().into(),
    ])
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let view = &state.containers_view;
    let filter = table::filter_badge(view);
    let loading = if matches!(state.engines, Loadable::Loading) { " probing engines…" } else { "" };
    let title = format!(" Containers [{}/{}]{filter}{loading} ", view.visible.len(), state.containers.len());
    let rows = view.visible.iter().filter_map(|&i| state.containers.get(i)).map(|c| container_row(c, theme)).collect();
    let spec = TableSpec { header: HEADER, widths: WIDTHS, rows, selected: Some(view.selected) };
    table::render(frame, area, pane_block(title, theme, true), spec, theme);
}

#[cfg(test)]
mod tests {
    use crate::app::action::{Action, Command};
    use crate::app::fixtures;
    use crate::app::state::Mode;
    use crate::app::update::{run_command, update};

    #[test]
    fn containers_list() {
        let mut state = fixtures::state();
        run_command(&mut state, Command::NextPane);
        run_command(&mut state, Command::Down);
        crate::assert_screen!("containers_list", &state);
    }

    #[test]
    fn containers_filtered_while_typing() {
        let mut state = fixtures::state();
        run_command(&mut state, Command::NextPane);
        run_command(&mut state, Command::FilterMode);
        for c in "nginx".chars() {
            update(&mut state, Action::Key(fixtures::key(c)));
        }
        assert!(matches!(state.mode, Mode::Filter { .. }));
        crate::assert_screen!("containers_filtered", &state);
    }
}

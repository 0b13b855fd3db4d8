//! Popups: the plugin confirmation, and the centring helper.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::app::action::PluginRun;
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::widgets::table::pane_block;

/// A `width`×`height` rectangle in the middle of `area`, shrunk to fit.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}

pub fn render_confirm(frame: &mut Frame, area: Rect, run: &PluginRun, theme: &Theme) {
    let popup = centered(area, 80, 8);
    frame.render_widget(Clear, popup);
    let command_line =
        std::iter::once(run.command.as_str()).chain(run.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ");
    let lines = vec![
        Line::from(Span::styled(format!("Run '{}'?", run.description), theme.style(Slot::Value))),
        Line::from(""),
        Line::from(Span::styled(command_line, theme.style(Slot::Dim))),
        Line::from(""),
        Line::from(vec![
            Span::styled(" <y> ", theme.style(Slot::FooterKey)),
            Span::styled("run   ", theme.style(Slot::FooterDesc)),
            Span::styled(" <n> ", theme.style(Slot::FooterKey)),
            Span::styled("cancel", theme.style(Slot::FooterDesc)),
        ]),
    ];
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(" Confirm ", theme, true));
    frame.render_widget(paragraph, popup);
}

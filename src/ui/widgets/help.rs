//! `?` help, generated from the keymap, the `:` commands and the plugins of the current pane.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use crate::app::action::Command;
use crate::app::state::AppState;
use crate::app::update::PROMPT_COMMANDS;
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::widgets::dialog::centered;
use crate::ui::widgets::table::pane_block;

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let popup = centered(area, 110, 30);
    frame.render_widget(Clear, popup);
    let block = pane_block(" Help (esc to close) ", theme, true);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let [keys, commands, plugins] =
        Layout::horizontal([Constraint::Percentage(33), Constraint::Percentage(40), Constraint::Percentage(27)])
            .areas(inner);

    let key = |text: String| Span::styled(format!("{text:<14}"), theme.style(Slot::FooterKey));
    let desc = |text: String| Span::styled(text, theme.style(Slot::Value));
    let heading = |text: &str| Line::from(Span::styled(text.to_string(), theme.style(Slot::TableHeader)));

    let mut lines = vec![heading("KEYS")];
    for command in Command::ALL {
        let bound: Vec<String> = state.keymap.keys_for(*command).iter().map(ToString::to_string).collect();
        if !bound.is_empty() {
            lines.push(Line::from(vec![key(bound.join(",")), desc(command.description().to_string())]));
        }
    }
    frame.render_widget(Paragraph::new(lines), keys);

    let mut lines = vec![heading("COMMANDS")];
    for command in PROMPT_COMMANDS {
        let names = std::iter::once(command.name).chain(command.aliases.iter().copied()).collect::<Vec<_>>();
        lines.push(Line::from(vec![key(format!(":{}", names[0])), desc(command.help.to_string())]));
        if names.len() > 1 {
            lines.push(Line::from(Span::styled(
                format!("{:14}aliases: {}", "", names[1..].join(" ")),
                theme.style(Slot::Dim),
            )));
        }
    }
    frame.render_widget(Paragraph::new(lines), commands);

    let mut lines = vec![heading(&format!("PLUGINS ({})", state.pane().scope()))];
    let mut any = false;
    for plugin in state.plugins.in_scope(state.pane().scope()) {
        any = true;
        lines.push(Line::from(vec![
            Span::styled(format!("{:<8}", plugin.shortcut.to_string()), theme.style(Slot::FooterKey)),
            desc(plugin.description.clone()),
        ]));
    }
    if !any {
        lines.push(Line::from(Span::styled("none for this pane", theme.style(Slot::Dim))));
    }
    frame.render_widget(Paragraph::new(lines), plugins);
}

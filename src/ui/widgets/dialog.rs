//! Popups: the plugin confirmation, and the centring helper.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::app::state::{AcceptField, AcceptForm, Confirmation};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::widgets::table::pane_block;

/// A `width`×`height` rectangle in the middle of `area`, shrunk to fit.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}

pub fn render_confirm(frame: &mut Frame, area: Rect, confirmation: &Confirmation, theme: &Theme) {
    // Sized to the detail (a command line, a diff), within the screen.
    let detail: Vec<&str> = confirmation.detail.lines().collect();
    let widest = detail.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let width = u16::try_from(widest + 4).unwrap_or(u16::MAX).clamp(80, 110);
    let height = u16::try_from(detail.len() + 8).unwrap_or(u16::MAX).max(9);
    let popup = centered(area, width, height);
    frame.render_widget(Clear, popup);
    let mut lines =
        vec![Line::from(Span::styled(confirmation.question.clone(), theme.style(Slot::Value))), Line::from("")];
    lines.extend(detail.iter().map(|l| {
        let slot = match l.as_bytes().first() {
            Some(b'+') if !l.starts_with("+++") => Slot::StatusOk,
            Some(b'-') if !l.starts_with("---") => Slot::StatusError,
            _ => Slot::Dim,
        };
        Line::from(Span::styled((*l).to_string(), theme.style(slot)))
    }));
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        Span::styled(" <y> ", theme.style(Slot::FooterKey)),
        Span::styled("run   ", theme.style(Slot::FooterDesc)),
        Span::styled(" <n> ", theme.style(Slot::FooterKey)),
        Span::styled("cancel", theme.style(Slot::FooterDesc)),
    ]));
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(" Confirm ", theme, true));
    frame.render_widget(paragraph, popup);
}

/// The form that turns the selected finding into a `.picketignore` exception.
pub fn render_accept(frame: &mut Frame, area: Rect, form: &AcceptForm, path: &str, theme: &Theme) {
    let popup = centered(area, 76, 11);
    frame.render_widget(Clear, popup);
    let field = |label: &str, value: &str, active: bool, hint: &str| {
        let cursor = if active { "█" } else { "" };
        let style = if active { theme.style(Slot::Prompt) } else { theme.style(Slot::Value) };
        Line::from(vec![
            Span::styled(format!("{label:<9}"), theme.style(Slot::Label)),
            Span::styled(format!("{value}{cursor}"), style),
            Span::styled(if value.is_empty() { format!("  {hint}") } else { String::new() }, theme.style(Slot::Dim)),
        ])
    };
    let package = form.package.as_deref().map(|p| format!(" in {p}")).unwrap_or_default();
    let mut lines = vec![
        Line::from(Span::styled(format!("Accept {}{package}", form.id), theme.style(Slot::Value))),
        Line::from(Span::styled(format!("written to {path}"), theme.style(Slot::Dim))),
        Line::from(""),
        field("reason", &form.reason, form.field == AcceptField::Reason, "why is this acceptable?"),
        field("expires", &form.expires, form.field == AcceptField::Expires, "YYYY-MM-DD, empty: never"),
        Line::from(""),
    ];
    if let Some(error) = &form.error {
        lines.push(Line::from(Span::styled(error.clone(), theme.style(Slot::StatusError))));
    }
    lines.push(Line::from(vec![
        Span::styled(" <enter> ", theme.style(Slot::FooterKey)),
        Span::styled("next / save   ", theme.style(Slot::FooterDesc)),
        Span::styled(" <tab> ", theme.style(Slot::FooterKey)),
        Span::styled("switch field   ", theme.style(Slot::FooterDesc)),
        Span::styled(" <esc> ", theme.style(Slot::FooterKey)),
        Span::styled("cancel", theme.style(Slot::FooterDesc)),
    ]));
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(" Accept finding ", theme, true));
    frame.render_widget(paragraph, popup);
}

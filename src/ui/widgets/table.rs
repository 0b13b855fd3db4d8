//! A themed table with a selection, the shape every list pane uses.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, HighlightSpacing, Row, Table, TableState};

use crate::app::state::ListView;
use crate::config::Theme;
use crate::config::theme::Slot;

/// A bordered block with the pane title, focused style.
pub fn pane_block<'a>(title: impl Into<Line<'a>>, theme: &Theme, focused: bool) -> Block<'a> {
    let border = if focused { Slot::PaneBorderFocused } else { Slot::PaneBorder };
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style(border))
        .title(title.into().style(theme.style(Slot::PaneTitle)))
}

/// ` </text>` after a list title while a filter is set, as k9s shows it.
pub fn filter_badge(view: &ListView) -> String {
    if view.filter.is_empty() { String::new() } else { format!(" </{}>", view.filter) }
}

pub struct TableSpec<'a> {
    pub header: &'a [&'a str],
    pub widths: &'a [Constraint],
    pub rows: Vec<Row<'a>>,
    pub selected: Option<usize>,
}

pub fn render(frame: &mut Frame, area: Rect, block: Block<'_>, spec: TableSpec<'_>, theme: &Theme) {
    let header = Row::new(spec.header.iter().copied()).style(theme.style(Slot::TableHeader));
    let table = Table::new(spec.rows, spec.widths.iter().copied())
        .header(header)
        .block(block)
        .style(theme.style(Slot::TableRow))
        .row_highlight_style(theme.style(Slot::TableSelected))
        .highlight_symbol("▌")
        .highlight_spacing(HighlightSpacing::Always)
        .column_spacing(2);
    // A fresh state each frame: ratatui scrolls it so the selection is visible.
    let mut table_state = TableState::default().with_selected(spec.selected);
    frame.render_stateful_widget(table, area, &mut table_state);
}

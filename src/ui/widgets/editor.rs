//! The YAML editor: the buffer's lines in their cached colours, with line numbers, the cursor,
//! and a mark on the lines that have a problem. Reads what `update` computed; highlights nothing.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::app::state::editor::Buffer;
use crate::config::Theme;
use crate::config::theme::Slot;

pub fn render(frame: &mut Frame, area: Rect, block: Block<'_>, buffer: &Buffer, problem_lines: &[u64], theme: &Theme) {
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = usize::from(inner.height);
    // The cursor stays on screen even when the state's scroll was set for another height.
    let scroll = match buffer.row {
        row if row < buffer.scroll => row,
        row if height > 0 && row >= buffer.scroll + height => row + 1 - height,
        _ => buffer.scroll,
    };
    let width = buffer.lines.len().to_string().len().max(3);
    let lines: Vec<Line> = (scroll..buffer.lines.len().min(scroll + height))
        .map(|row| {
            let number = u64::try_from(row + 1).unwrap_or(u64::MAX);
            let bad = problem_lines.contains(&number);
            let mut spans = vec![
                Span::styled(if bad { "✗" } else { " " }, theme.style(Slot::StatusError)),
                Span::styled(format!("{:>width$} ", row + 1), theme.style(Slot::Dim)),
            ];
            spans.extend(line_spans(buffer, row, row == buffer.row));
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// One line's coloured runs; on the cursor's line, the character under it reversed.
fn line_spans(buffer: &Buffer, row: usize, cursor: bool) -> Vec<Span<'static>> {
    let colour = |rgb: (u8, u8, u8)| Style::default().fg(Color::Rgb(rgb.0, rgb.1, rgb.2));
    let colored = buffer.colored(row);
    if !cursor {
        return colored.iter().map(|c| Span::styled(c.text.clone(), colour(c.rgb))).collect();
    }
    let mut spans = Vec::new();
    let mut at = 0;
    let mut placed = false;
    for c in colored {
        let len = c.text.chars().count();
        if !placed && buffer.col < at + len {
            let offset = buffer.col - at;
            let before: String = c.text.chars().take(offset).collect();
            let under: String = c.text.chars().skip(offset).take(1).collect();
            let after: String = c.text.chars().skip(offset + 1).collect();
            spans.push(Span::styled(before, colour(c.rgb)));
            spans.push(Span::styled(under, colour(c.rgb).add_modifier(Modifier::REVERSED)));
            spans.push(Span::styled(after, colour(c.rgb)));
            placed = true;
        } else {
            spans.push(Span::styled(c.text.clone(), colour(c.rgb)));
        }
        at += len;
    }
    if !placed {
        spans.push(Span::styled(" ", Style::default().add_modifier(Modifier::REVERSED)));
    }
    spans
}

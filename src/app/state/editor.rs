//! A text buffer edited in the console (the Policies pane's YAML editor): its lines, the cursor,
//! and each line's syntax colours. Colours are computed by `syntect` when the text changes, from
//! the edited line down only as far as the parser's state differs from before, and kept: a frame
//! only reads them.

use std::sync::LazyLock;

use syntect::highlighting::{HighlightIterator, HighlightState, Highlighter, Theme, ThemeSet};
use syntect::parsing::{ParseState, ScopeStack, SyntaxReference, SyntaxSet};

static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);
static THEME: LazyLock<Theme> = LazyLock::new(|| {
    let mut themes = ThemeSet::load_defaults().themes;
    themes.remove("base16-ocean.dark").unwrap_or_default()
});

fn yaml() -> &'static SyntaxReference {
    SYNTAXES.find_syntax_by_extension("yaml").unwrap_or_else(|| SYNTAXES.find_syntax_plain_text())
}

/// A run of text in one colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colored {
    pub rgb: (u8, u8, u8),
    pub text: String,
}

/// The parser's and highlighter's state after a line: where the next line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct After {
    parse: ParseState,
    highlight: HighlightState,
}

#[derive(Debug, Clone)]
pub struct Buffer {
    pub lines: Vec<String>,
    /// The cursor: a line, and a position in it in characters.
    pub row: usize,
    pub col: usize,
    /// The first line shown.
    pub scroll: usize,
    colored: Vec<Vec<Colored>>,
    after: Vec<Option<After>>,
    /// Lines highlighted since the buffer was made (what the cache saves is visible here).
    pub highlighted_lines: u64,
}

impl PartialEq for Buffer {
    fn eq(&self, other: &Self) -> bool {
        self.lines == other.lines && self.row == other.row && self.col == other.col
    }
}

/// A key's effect on the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Insert(char),
    Newline,
    Backspace,
    Delete,
    Left,
    Right,
    Up,
    Down,
    Home,
    End,
    PageUp(usize),
    PageDown(usize),
}

impl Buffer {
    pub fn new(text: &str) -> Self {
        let mut lines: Vec<String> = text.lines().map(|l| l.replace('\t', "  ")).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        let count = lines.len();
        let mut buffer = Self {
            lines,
            row: 0,
            col: 0,
            scroll: 0,
            colored: vec![Vec::new(); count],
            after: vec![None; count],
            highlighted_lines: 0,
        };
        buffer.rehighlight(0, count);
        buffer
    }

    pub fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }

    pub fn colored(&self, row: usize) -> &[Colored] {
        self.colored.get(row).map_or(&[], Vec::as_slice)
    }

    /// Applies one edit; true when the text changed.
    pub fn edit(&mut self, edit: Edit) -> bool {
        let line_chars = |b: &Self, row: usize| b.lines.get(row).map_or(0, |l| l.chars().count());
        self.col = self.col.min(line_chars(self, self.row));
        match edit {
            Edit::Insert(c) => {
                let at = self.byte_at(self.row, self.col);
                self.lines[self.row].insert(at, c);
                self.col += 1;
                self.changed(self.row, 0);
                return true;
            }
            Edit::Newline => {
                let at = self.byte_at(self.row, self.col);
                let rest = self.lines[self.row].split_off(at);
                // YAML's structure is its indentation: a new line starts where this one did.
                let indent: String = self.lines[self.row].chars().take_while(|c| *c == ' ').collect();
                self.col = indent.chars().count();
                self.row += 1;
                self.lines.insert(self.row, format!("{indent}{}", rest.trim_start_matches(' ')));
                self.changed(self.row - 1, 1);
                return true;
            }
            Edit::Backspace if self.col > 0 => {
                let at = self.byte_at(self.row, self.col - 1);
                self.lines[self.row].remove(at);
                self.col -= 1;
                self.changed(self.row, 0);
                return true;
            }
            Edit::Backspace if self.row > 0 => {
                let line = self.lines.remove(self.row);
                self.row -= 1;
                self.col = line_chars(self, self.row);
                self.lines[self.row].push_str(&line);
                self.removed(self.row + 1);
                return true;
            }
            Edit::Delete if self.col < line_chars(self, self.row) => {
                let at = self.byte_at(self.row, self.col);
                self.lines[self.row].remove(at);
                self.changed(self.row, 0);
                return true;
            }
            Edit::Delete if self.row + 1 < self.lines.len() => {
                let next = self.lines.remove(self.row + 1);
                self.lines[self.row].push_str(&next);
                self.removed(self.row + 1);
                return true;
            }
            Edit::Backspace | Edit::Delete => {}
            Edit::Left => {
                if self.col > 0 {
                    self.col -= 1;
                } else if self.row > 0 {
                    self.row -= 1;
                    self.col = line_chars(self, self.row);
                }
            }
            Edit::Right => {
                if self.col < line_chars(self, self.row) {
                    self.col += 1;
                } else if self.row + 1 < self.lines.len() {
                    self.row += 1;
                    self.col = 0;
                }
            }
            Edit::Up => self.row = self.row.saturating_sub(1),
            Edit::Down => self.row = (self.row + 1).min(self.lines.len() - 1),
            Edit::Home => self.col = 0,
            Edit::End => self.col = line_chars(self, self.row),
            Edit::PageUp(page) => self.row = self.row.saturating_sub(page.max(1)),
            Edit::PageDown(page) => self.row = (self.row + page.max(1)).min(self.lines.len() - 1),
        }
        false
    }

    /// Moves the cursor to a line (1-based, as problems name them).
    pub fn go_to_line(&mut self, line: usize) {
        self.row = line.saturating_sub(1).min(self.lines.len() - 1);
        self.col = 0;
    }

    /// Keeps the cursor's line within `height` lines shown from `scroll`.
    pub fn follow(&mut self, height: usize) {
        let height = height.max(1);
        if self.row < self.scroll {
            self.scroll = self.row;
        } else if self.row >= self.scroll + height {
            self.scroll = self.row + 1 - height;
        }
    }

    fn byte_at(&self, row: usize, col: usize) -> usize {
        let line = &self.lines[row];
        line.char_indices().nth(col).map_or(line.len(), |(at, _)| at)
    }

    /// Line `row` changed and `inserted` lines were added after it.
    fn changed(&mut self, row: usize, inserted: usize) {
        for _ in 0..inserted {
            self.colored.insert(row + 1, Vec::new());
            self.after.insert(row + 1, None);
        }
        self.rehighlight(row, row + 1 + inserted);
    }

    /// Line `row` was joined into the one before it.
    fn removed(&mut self, row: usize) {
        self.colored.remove(row);
        self.after.remove(row);
        self.rehighlight(row - 1, row);
    }

    /// Highlights lines from `from`: at least up to `until`, then on while a line ends in another
    /// state than it did before (an opened quote or block scalar changes what follows).
    fn rehighlight(&mut self, from: usize, until: usize) {
        let highlighter = Highlighter::new(&THEME);
        let mut state = match from.checked_sub(1).and_then(|r| self.after.get(r).cloned().flatten()) {
            Some(after) => after,
            None => After {
                parse: ParseState::new(yaml()),
                highlight: HighlightState::new(&highlighter, ScopeStack::new()),
            },
        };
        for row in from..self.lines.len() {
            let before = self.after[row].take();
            self.colored[row] = highlight_line(&self.lines[row], &mut state, &highlighter);
            self.highlighted_lines += 1;
            self.after[row] = Some(state.clone());
            if row + 1 >= until && before.as_ref() == Some(&state) {
                break;
            }
        }
    }
}

fn highlight_line(line: &str, state: &mut After, highlighter: &Highlighter) -> Vec<Colored> {
    let with_newline = format!("{line}\n");
    let plain = || vec![Colored { rgb: (192, 197, 206), text: line.to_string() }];
    let Ok(ops) = state.parse.parse_line(&with_newline, &SYNTAXES) else { return plain() };
    HighlightIterator::new(&mut state.highlight, &ops, &with_newline, highlighter)
        .map(|(style, text)| Colored {
            rgb: (style.foreground.r, style.foreground.g, style.foreground.b),
            text: text.trim_end_matches('\n').to_string(),
        })
        .filter(|c| !c.text.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "apiVersion: picket.dev/v1\nkind: PicketPolicy\nmetadata:\n  name: web\nspec:\n  mode: monitor\n  processes:\n    - path: /usr/sbin/nginx\n";

    fn type_text(buffer: &mut Buffer, text: &str) {
        for c in text.chars() {
            buffer.edit(if c == '\n' { Edit::Newline } else { Edit::Insert(c) });
        }
    }

    #[test]
    fn edits_change_the_text_as_typed() {
        let mut buffer = Buffer::new(POLICY);
        assert_eq!(buffer.text(), POLICY);
        buffer.go_to_line(6);
        buffer.edit(Edit::End);
        for _ in 0.."monitor".len() {
            buffer.edit(Edit::Backspace);
        }
        type_text(&mut buffer, "protect");
        assert!(buffer.text().contains("  mode: protect\n"));
        buffer.go_to_line(8);
        buffer.edit(Edit::End);
        type_text(&mut buffer, "\n- path: /bin/sh");
        assert_eq!(buffer.lines[8], "    - path: /bin/sh", "a new line keeps the indentation");
        buffer.edit(Edit::Home);
        buffer.edit(Edit::Backspace);
        assert_eq!(buffer.lines.len(), 8, "backspace at a line's start joins it to the one before");
        assert!(buffer.lines[7].ends_with("nginx    - path: /bin/sh"));
        buffer.edit(Edit::Insert('é'));
        buffer.edit(Edit::Left);
        buffer.edit(Edit::Delete);
        assert!(buffer.lines[7].ends_with("nginx    - path: /bin/sh"), "multi-byte characters edit whole");
    }

    #[test]
    fn highlighting_is_cached_and_redone_only_where_an_edit_reaches() {
        let text: String = (0..200).map(|i| format!("key{i}: value {i}\n")).collect();
        let mut buffer = Buffer::new(&text);
        assert_eq!(buffer.highlighted_lines, 200);
        let key_colour = buffer.colored(10)[0].rgb;
        let value_colour = buffer.colored(10).last().map(|c| c.rgb);
        assert_ne!(Some(key_colour), value_colour, "keys and values are coloured apart");
        buffer.go_to_line(100);
        buffer.edit(Edit::End);
        buffer.edit(Edit::Insert('x'));
        assert!(buffer.highlighted_lines <= 202, "one edit re-highlights its line, not the file");
        // Whatever the edits, the kept colours are those a fresh highlighting gives.
        buffer.go_to_line(50);
        buffer.edit(Edit::End);
        type_text(&mut buffer, " \"open\nnested:\n  - |\n    block # not a comment");
        buffer.go_to_line(20);
        buffer.edit(Edit::Home);
        buffer.edit(Edit::Backspace);
        buffer.edit(Edit::Newline);
        buffer.go_to_line(120);
        buffer.edit(Edit::End);
        buffer.edit(Edit::Delete);
        let fresh = Buffer::new(&buffer.text());
        for row in 0..buffer.lines.len() {
            assert_eq!(buffer.colored(row), fresh.colored(row), "line {}", row + 1);
        }
        assert_eq!(buffer.colored.len(), buffer.lines.len());
    }
}

//! YAML files read by people: parse errors name the file, line and column. A leaf that config,
//! exceptions files and every future YAML input (checks, rules, policies) share.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("{path}:{line}:{column}: {message}", path = .path.display())]
    Parse { path: PathBuf, line: u64, column: u64, message: String },
    #[error("cannot read {path}: {source}", path = .path.display())]
    Read { path: PathBuf, source: std::io::Error },
}

/// Parses YAML text into `T`, reporting errors with the file, line and column.
/// An empty document yields `T::default()`.
pub fn parse_yaml<T: DeserializeOwned + Default>(path: &Path, text: &str) -> Result<T, YamlError> {
    let has_content = text.lines().any(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'));
    if !has_content {
        return Ok(T::default());
    }
    serde_saphyr::from_str(text).map_err(|err| {
        let (line, column, message) = explain(text, &err);
        YamlError::Parse { path: path.to_path_buf(), line, column, message }
    })
}

/// Where a YAML error is and what it is: the first line whose indentation fits no block, when
/// there is one (the parser tends to report such a mistake elsewhere), with the parser's own
/// words after it; else the parser's position and message.
pub fn explain(text: &str, err: &serde_saphyr::Error) -> (u64, u64, String) {
    let (line, column) = err.location().map_or((0, 0), |loc| (loc.line(), loc.column()));
    let message = first_line(err);
    match indentation_fault(text) {
        Some(fault) => (
            fault.line,
            fault.column,
            format!("{}; the parser then said, at {line}:{column}: {message}", fault.message),
        ),
        None => (line, column, message),
    }
}

/// A line whose indentation fits no block around it: where a YAML mistake usually is, though
/// the parser tends to report it elsewhere (`missing field` at the start of the mapping the
/// line fell out of).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndentationFault {
    /// 1-based.
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// Finds the first mapping key or sequence item indented to no enclosing block's column, or
/// indented under a key that already has a value. Block scalars (`|`, `>`) and multi-line flow
/// collections are skipped; anything else that is not a key or an item is not judged.
pub fn indentation_fault(text: &str) -> Option<IndentationFault> {
    // Open blocks' columns; a line may sit at any of them (closing the deeper ones).
    let mut blocks: Vec<usize> = Vec::new();
    // The previous structural line opened a block (`key:` with nothing after it) at a column
    // greater than this, or None.
    let mut opens: Option<usize> = None;
    let mut scalar_above: Option<usize> = None;
    let mut flow_depth: i32 = 0;
    for (n, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start_matches(' ');
        let indent = raw.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") || trimmed.starts_with('\t') {
            continue;
        }
        if let Some(key_indent) = scalar_above {
            if indent > key_indent {
                continue;
            }
            scalar_above = None;
        }
        if flow_depth > 0 {
            flow_depth += flow_balance(trimmed);
            continue;
        }
        let item = trimmed.starts_with("- ") || trimmed == "-";
        let key = !item && is_key(trimmed);
        if !item && !key {
            continue;
        }
        let fault = |message: String| Some(IndentationFault { line: n as u64 + 1, column: indent as u64 + 1, message });
        match blocks.last().copied() {
            None => blocks.push(indent),
            Some(top) if indent > top => match opens {
                Some(parent) if indent > parent => blocks.push(indent),
                _ => {
                    return fault(format!(
                        "this line is indented by {indent}, deeper than the line above, which already has a value (its block is at {top})"
                    ));
                }
            },
            Some(_) => {
                let columns: Vec<String> = blocks.iter().map(ToString::to_string).collect();
                while blocks.last().is_some_and(|&b| b > indent) {
                    blocks.pop();
                }
                if blocks.last() != Some(&indent) {
                    return fault(format!(
                        "this line is indented by {indent}, which matches no block around it (blocks at {})",
                        if columns.is_empty() { "none".to_string() } else { columns.join(", ") }
                    ));
                }
            }
        }
        // What this line opens for the next one.
        let body = if item { trimmed[1..].trim_start() } else { trimmed };
        let after_colon = body.split_once(':').map(|(_, v)| v.trim());
        opens = None;
        if item {
            // `- key: value`: the item's mapping continues at the column of `key`; a bare `-`
            // opens a block below it.
            let content = indent + (trimmed.len() - body.len());
            if body.is_empty() {
                opens = Some(indent);
            } else {
                blocks.push(content);
            }
        }
        match after_colon {
            Some(value)
                if value.is_empty() || value.starts_with('#') || value.starts_with('&') || value.starts_with('!') =>
            {
                opens = Some(if item { indent + (trimmed.len() - body.len()) } else { indent });
            }
            Some(value) if value.starts_with('|') || value.starts_with('>') => scalar_above = Some(indent),
            Some(value) => flow_depth = flow_balance(value).max(0),
            None => {}
        }
    }
    None
}

/// `key:` or `key: value` (the colon followed by a space or the end of the line, outside a
/// quoted key and before a comment).
fn is_key(line: &str) -> bool {
    if line.starts_with(['[', '{', '|', '>', '*', '&', '!', '%', '@', '`']) {
        return false;
    }
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if i == 0 => quote = Some(c),
            (None, '#') if previous == ' ' && i > 0 => return false,
            (None, ':') => return line[i + 1..].is_empty() || line[i + 1..].starts_with(' '),
            _ => {}
        }
        previous = c;
    }
    false
}

fn flow_balance(text: &str) -> i32 {
    let mut depth = 0;
    let mut quote = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => break,
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            _ => {}
        }
    }
    depth
}

/// serde-saphyr renders a source snippet after the message; the file:line:col prefix already
/// points there, so keep the one-line message.
fn first_line(err: &serde_saphyr::Error) -> String {
    let text = err.to_string();
    let line = text.lines().next().unwrap_or_default().trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    // The position is given apart; drop the copy serde-saphyr puts in the message.
    match line.strip_prefix("line ").and_then(|rest| rest.split_once(": ")) {
        Some((position, message)) if position.contains(" column ") => message.to_string(),
        _ => line.to_string(),
    }
}

pub fn read_file(path: &Path) -> Result<String, YamlError> {
    crate::input::read_text(path, crate::input::MAX_TEXT)
        .map_err(|source| YamlError::Read { path: path.to_path_buf(), source })
}

/// The `*.yaml` and `*.yml` files of `dir`, in name order. A directory that does not exist has
/// none, unless it is `required` (named on a command line: a typo must not mean "no files").
pub fn files_in(dir: &Path, required: bool) -> Result<Vec<PathBuf>, YamlError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(Vec::new()),
        Err(source) => return Err(YamlError::Read { path: dir.to_path_buf(), source }),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// A step into a document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(&'static str),
    Index(usize),
}

/// Each document with the number of lines before it (`---` separators).
pub fn split_documents(text: &str) -> Vec<(u64, &str)> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut start_line = 0u64;
    let mut offset = 0usize;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_end() == "---" {
            let doc = &text[start..offset];
            if doc.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')) {
                out.push((start_line, doc));
            }
            start = offset + line.len();
            start_line = number as u64 + 1;
        }
        offset += line.len();
    }
    let doc = &text[start..];
    if doc.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')) {
        out.push((start_line, doc));
    }
    out
}

/// The 0-based line and 1-based column of the value at `steps` in a block-style document (the
/// nearest found when the document is written otherwise).
pub fn locate(doc: &str, steps: &[Step]) -> (u64, u64) {
    let lines: Vec<&str> = doc.lines().collect();
    // (line, column of the key's first character), for each line that holds a key or an item.
    let content_column = |line: &str| -> usize {
        let mut column = line.len() - line.trim_start().len();
        let mut rest = line.trim_start();
        while let Some(more) = rest.strip_prefix("- ") {
            column += 2 + (more.len() - more.trim_start().len());
            rest = more.trim_start();
        }
        column
    };
    let (mut start, mut end, mut parent) = (0usize, lines.len(), -1isize);
    let mut at = (0u64, 1u64);
    for step in steps {
        match step {
            Step::Key(key) => {
                let prefix = format!("{key}:");
                let hit = (start..end).find(|&i| {
                    let line = lines[i];
                    let column = content_column(line);
                    column as isize > parent && line[column..].starts_with(&prefix)
                });
                let Some(i) = hit else { return at };
                let column = content_column(lines[i]);
                at = (i as u64, column as u64 + 1);
                let next_end = (i + 1..end)
                    .find(|&j| {
                        let l = lines[j];
                        !l.trim().is_empty() && !l.trim_start().starts_with('#') && indent(l) <= column
                    })
                    .unwrap_or(end);
                // A sequence may sit at its key's own indentation.
                let next_end = (i + 1..end)
                    .find(|&j| {
                        let l = lines[j];
                        !l.trim().is_empty()
                            && !l.trim_start().starts_with('#')
                            && (indent(l) < column || (indent(l) == column && !l.trim_start().starts_with("- ")))
                    })
                    .unwrap_or(end)
                    .max(next_end);
                start = i + 1;
                end = next_end;
                parent = column as isize - 1;
            }
            Step::Index(n) => {
                let items: Vec<usize> = (start..end).filter(|&i| lines[i].trim_start().starts_with("- ")).collect();
                let Some(item_indent) = items.iter().map(|&i| indent(lines[i])).min() else { return at };
                let items: Vec<usize> = items.into_iter().filter(|&i| indent(lines[i]) == item_indent).collect();
                let Some(&i) = items.get(*n) else { return at };
                at = (i as u64, item_indent as u64 + 3);
                let next = items.get(n + 1).copied().unwrap_or(end);
                start = i;
                end = next;
                parent = item_indent as isize + 1;
            }
        }
    }
    at
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_yaml_in_the_repository_has_no_indentation_fault() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        let mut stack =
            vec![root.join("plugins-config"), root.join("tests"), root.join("themes"), root.join("../shared/testbed")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    let Ok(text) = std::fs::read_to_string(&path) else { continue };
                    if serde_saphyr::from_str::<serde_json::Value>(&text).is_err() {
                        continue;
                    }
                    seen += 1;
                    assert_eq!(indentation_fault(&text), None, "{}", path.display());
                }
            }
        }
        assert!(seen > 10, "{seen} files");
    }

    #[test]
    fn misindented_lines_are_found_where_they_are() {
        let fault = indentation_fault("containers:\n  - name: web\n   mode: protect\n").expect("a fault");
        assert_eq!((fault.line, fault.column), (3, 4));
        assert!(fault.message.contains("matches no block around it (blocks at 0, 2, 4)"), "{}", fault.message);
        let deeper = indentation_fault("a:\n  b: 1\n    c: 2\n").expect("a fault");
        assert_eq!((deeper.line, deeper.column), (3, 5));
        let fine = "a:\n  - b: 1\n    c: |\n      text: not a key\n        deeper\n  - [x,\n     y]\n  - d:\n    - e\nz: 'q: r'\n";
        assert_eq!(indentation_fault(fine), None);
    }
}

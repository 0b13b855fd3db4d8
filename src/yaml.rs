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
        let (line, column) = err.location().map_or((0, 0), |loc| (loc.line(), loc.column()));
        YamlError::Parse { path: path.to_path_buf(), line, column, message: first_line(&err) }
    })
}

/// serde-saphyr renders a source snippet after the message; the file:line:col prefix already
/// points there, so keep the one-line message.
fn first_line(err: &serde_saphyr::Error) -> String {
    let text = err.to_string();
    let line = text.lines().next().unwrap_or_default().trim();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
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

//! `.picketignore`: accepted findings, in YAML.
//!
//! ```yaml
//! exceptions:
//!   - id: CVE-2023-43804          # the finding's id or any alias
//!     package: urllib3            # optional: only for this package
//!     path: app/.env              # optional: only for findings at this path
//!     reason: not reachable, the client never follows redirects
//!     expires: 2026-12-31         # optional: after this date the exception no longer applies
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::gate::{Basis, Suppressed};
use crate::model::Finding;
use crate::yaml::{YamlError, parse_yaml, read_file};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IgnoreFileYaml {
    #[serde(default)]
    exceptions: Vec<ExceptionYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionYaml {
    id: String,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    path: Option<String>,
    reason: String,
    #[serde(default)]
    expires: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub id: String,
    pub package: Option<String>,
    pub path: Option<String>,
    pub reason: String,
    pub expires: Option<jiff::civil::Date>,
    /// 1-based position in the list, for `.picketignore#3` in reports.
    pub index: usize,
}

#[derive(Debug, Clone)]
pub struct IgnoreFile {
    pub path: PathBuf,
    pub exceptions: Vec<Exception>,
    today: jiff::civil::Date,
}

#[derive(Debug, thiserror::Error)]
pub enum IgnoreFileError {
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error("{path}: exception {index} ({id}): {message}", path = .path.display())]
    Invalid { path: PathBuf, index: usize, id: String, message: String },
}

impl IgnoreFile {
    pub fn load(path: &Path) -> Result<Self, IgnoreFileError> {
        let text = read_file(path)?;
        Self::parse(path, &text, jiff::Zoned::now().date())
    }

    pub fn parse(path: &Path, text: &str, today: jiff::civil::Date) -> Result<Self, IgnoreFileError> {
        let raw: IgnoreFileYaml = parse_yaml(path, text)?;
        let mut exceptions = Vec::new();
        for (offset, entry) in raw.exceptions.into_iter().enumerate() {
            let index = offset + 1;
            let invalid = |message: String| IgnoreFileError::Invalid {
                path: path.to_path_buf(),
                index,
                id: entry.id.clone(),
                message,
            };
            if entry.id.trim().is_empty() {
                return Err(invalid("id is empty".into()));
            }
            if entry.reason.trim().is_empty() {
                return Err(invalid("reason is empty: say why the finding is accepted".into()));
            }
            let expires = match &entry.expires {
                Some(text) => Some(parse_date(text).map_err(invalid)?),
                None => None,
            };
            exceptions.push(Exception {
                id: entry.id.trim().to_string(),
                package: entry.package.clone(),
                path: entry.path.clone(),
                reason: entry.reason.trim().to_string(),
                expires,
                index,
            });
        }
        Ok(Self { path: path.to_path_buf(), exceptions, today })
    }

    /// Exceptions whose expiry date has passed (they no longer apply).
    pub fn expired(&self) -> impl Iterator<Item = &Exception> {
        self.exceptions.iter().filter(|e| e.expires.is_some_and(|d| d < self.today))
    }
}

fn parse_date(text: &str) -> Result<jiff::civil::Date, String> {
    let text = text.trim();
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return Ok(date);
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
        .map_err(|_| format!("expires '{text}' is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}

impl Exception {
    fn matches(&self, finding: &Finding) -> bool {
        if !finding.ids().any(|id| id.eq_ignore_ascii_case(&self.id)) {
            return false;
        }
        if let Some(package) = &self.package {
            let names_it = finding
                .package
                .as_ref()
                .is_some_and(|p| p.name == *package || p.purl == *package || p.source_name.as_deref() == Some(package));
            if !names_it {
                return false;
            }
        }
        if let Some(path) = &self.path {
            let at = finding.locations.iter().any(|l| l.path.trim_start_matches('/') == path.trim_start_matches('/'));
            if !at {
                return false;
            }
        }
        true
    }
}

impl super::Exceptions for IgnoreFile {
    fn accepts(&self, finding: &Finding, _image: Option<&crate::oci::ImageMeta>) -> Option<Suppressed> {
        let exception = self
            .exceptions
            .iter()
            .filter(|e| e.expires.is_none_or(|d| d >= self.today))
            .find(|e| e.matches(finding))?;
        Some(Suppressed {
            finding: finding.clone(),
            reason: exception.reason.clone(),
            by: format!("{}#{}", self.path.display(), exception.index),
            expires: exception.expires.map(|d| d.to_string()),
            basis: Basis::IgnoreFile,
        })
    }
}

/// Appends an exception (the console's "accept finding" key). Keeps the file's other content
/// and comments when the entry can be added as text; otherwise (a flow list such as
/// `exceptions: []`, an unusual layout) rewrites the file from its parsed exceptions, losing its
/// comments. Either way the result is parsed back and must hold the old exceptions and the new
/// one, or nothing is written. Creates the file when missing; refuses a file that does not
/// parse.
pub fn append(
    path: &Path,
    id: &str,
    package: Option<&str>,
    reason: &str,
    expires: Option<jiff::civil::Date>,
) -> std::io::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    // Expiry plays no part in what the file holds.
    let parse = |text: &str| IgnoreFile::parse(path, text, jiff::civil::date(2000, 1, 1));
    let old = parse(&existing).map_err(|e| invalid(format!("{e}; the exception was not added")))?;
    let entry = Exception {
        id: id.trim().to_string(),
        package: package.map(str::to_string),
        path: None,
        reason: reason.trim().to_string(),
        expires,
        index: old.exceptions.len() + 1,
    };
    if entry.id.is_empty() || entry.reason.is_empty() {
        return Err(invalid("an exception needs an id and a reason".into()));
    }
    let mut wanted = old.exceptions;
    wanted.push(entry);
    let holds = |text: &str| parse(text).is_ok_and(|file| file.exceptions == wanted);
    let text = appended(&existing, &wanted[wanted.len() - 1])
        .filter(|text| holds(text))
        .or_else(|| Some(serialized(&wanted)).filter(|text| holds(text)))
        .ok_or_else(|| {
            invalid("the exception cannot be written so that the file reads back; nothing was written".into())
        })?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, text.as_bytes())?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A YAML double-quoted scalar (JSON's escapes are YAML's).
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.replace(['"', '\\'], "'")))
}

/// One list entry, its `-` at `indent`.
fn entry_yaml(exception: &Exception, indent: &str) -> String {
    let mut text = format!("{indent}- id: {}\n", quote(&exception.id));
    if let Some(package) = &exception.package {
        text.push_str(&format!("{indent}  package: {}\n", quote(package)));
    }
    if let Some(at) = &exception.path {
        text.push_str(&format!("{indent}  path: {}\n", quote(at)));
    }
    text.push_str(&format!("{indent}  reason: {}\n", quote(&exception.reason)));
    if let Some(date) = exception.expires {
        text.push_str(&format!("{indent}  expires: {date}\n"));
    }
    text
}

/// `existing` with `exception` added at the end of its block list, indented like the list's
/// items. `None` when the list is not a block list under one top-level `exceptions:` key.
fn appended(existing: &str, exception: &Exception) -> Option<String> {
    let lines: Vec<&str> = existing.lines().collect();
    let keys: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].starts_with("exceptions:")).collect();
    let mut text = existing.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let indent = match keys.as_slice() {
        [] => {
            text.push_str("exceptions:\n");
            "  ".to_string()
        }
        [at] => {
            let rest = lines[*at]["exceptions:".len()..].trim();
            if !(rest.is_empty() || rest.starts_with('#')) {
                return None;
            }
            let item = lines[at + 1..].iter().find(|l| {
                let item = l.trim_start();
                item.starts_with("- ") || item == "-"
            });
            item.map_or_else(|| "  ".to_string(), |l| " ".repeat(l.len() - l.trim_start().len()))
        }
        _ => return None,
    };
    text.push_str(&entry_yaml(exception, &indent));
    Some(text)
}

/// The whole file from its exceptions.
fn serialized(exceptions: &[Exception]) -> String {
    let mut text = "exceptions:\n".to_string();
    for exception in exceptions {
        text.push_str(&entry_yaml(exception, "  "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::Exceptions as _;
    use crate::model::{Ecosystem, FindingKind, FindingPackage, Severity};

    fn finding(id: &str, alias: &str, package: &str) -> Finding {
        let mut f = Finding::new(FindingKind::Vulnerability, id, "t", Severity::High);
        f.aliases = vec![alias.into()];
        f.package = Some(FindingPackage {
            name: package.into(),
            version: "1".into(),
            ecosystem: Ecosystem::PyPI,
            purl: format!("pkg:pypi/{package}@1"),
            source_name: None,
        });
        f
    }

    fn date(text: &str) -> jiff::civil::Date {
        text.parse().unwrap()
    }

    #[test]
    fn matches_by_alias_package_and_expiry() {
        let text = "exceptions:\n  - id: GHSA-v845-jxx5-vc9f\n    package: urllib3\n    reason: not reachable\n    \
                    expires: 2026-12-31\n  - id: CVE-2020-1\n    reason: old\n    expires: 2020-01-01\n";
        let file = IgnoreFile::parse(Path::new(".picketignore"), text, date("2026-11-24")).unwrap();
        let hit = file.accepts(&finding("CVE-2023-43804", "GHSA-v845-jxx5-vc9f", "urllib3"), None).unwrap();
        assert_eq!((hit.reason.as_str(), hit.by.as_str()), ("not reachable", ".picketignore#1"));
        assert!(file.accepts(&finding("CVE-2023-43804", "GHSA-v845-jxx5-vc9f", "requests"), None).is_none());
        assert!(file.accepts(&finding("CVE-2020-1", "X", "a"), None).is_none(), "expired exceptions no longer apply");
        assert_eq!(file.expired().count(), 1);
        let later = IgnoreFile::parse(Path::new(".picketignore"), text, date("2027-01-01")).unwrap();
        assert!(later.accepts(&finding("CVE-2023-43804", "GHSA-v845-jxx5-vc9f", "urllib3"), None).is_none());
    }

    #[test]
    fn bad_files_name_the_place() {
        let err =
            IgnoreFile::parse(Path::new("x.yaml"), "exceptions:\n  - id: A\n    reasn: typo\n", date("2026-01-01"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("x.yaml:3"), "{err}");
        let err = IgnoreFile::parse(
            Path::new("x.yaml"),
            "exceptions:\n  - id: A\n    reason: r\n    expires: soon\n",
            date("2026-01-01"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("exception 1 (A)") && err.contains("soon"), "{err}");
        let err =
            IgnoreFile::parse(Path::new("x.yaml"), "exceptions:\n  - id: A\n    reason: ' '\n", date("2026-01-01"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("reason is empty"), "{err}");
    }

    #[test]
    fn append_keeps_comments_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".picketignore");
        std::fs::write(&path, "# team exceptions\nexceptions:\n  - id: CVE-1\n    reason: a\n").unwrap();
        append(&path, "CVE-2: \"x\"", Some("openssl"), "vendor says: no", Some(date("2027-02-01"))).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# team exceptions\n"));
        let file = IgnoreFile::parse(&path, &text, date("2026-11-24")).unwrap();
        assert_eq!(file.exceptions.len(), 2);
        assert_eq!(file.exceptions[1].id, "CVE-2: \"x\"");
        assert_eq!(file.exceptions[1].reason, "vendor says: no");
        append(&dir.path().join("new"), "CVE-3", None, "r", None).unwrap();
        assert!(std::fs::read_to_string(dir.path().join("new")).unwrap().starts_with("exceptions:\n  - id: \"CVE-3\""));
    }

    #[test]
    fn append_never_writes_a_file_that_does_not_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".picketignore");
        let ids = |path: &Path| -> Vec<String> {
            let text = std::fs::read_to_string(path).unwrap();
            IgnoreFile::parse(path, &text, date("2026-11-24")).unwrap().exceptions.into_iter().map(|e| e.id).collect()
        };
        // Comments kept when the entry can be added as text, whatever the list's indentation.
        for (before, kept) in [
            ("exceptions:  # reviewed weekly\n  - id: A\n    reason: a\n", "# reviewed weekly"),
            ("exceptions:\n- id: A\n  reason: a\n# end of list\n", "# end of list"),
            ("# header\nexceptions:\n    -   id: A\n        reason: a", "# header"),
        ] {
            std::fs::write(&path, before).unwrap();
            append(&path, "B", Some("openssl"), "b", None).unwrap();
            assert_eq!(ids(&path), ["A", "B"], "{before}");
            assert!(std::fs::read_to_string(&path).unwrap().contains(kept), "{before}");
        }
        // A flow list is rewritten as a block list.
        for before in ["exceptions: []\n", "exceptions: [{id: A, reason: a, expires: 2030-01-01}]\n"] {
            std::fs::write(&path, before).unwrap();
            append(&path, "B", None, "b", Some(date("2027-01-01"))).unwrap();
            let want: &[&str] = if before.contains("id: A") { &["A", "B"] } else { &["B"] };
            assert_eq!(ids(&path), want, "{before}");
        }
        // A file that does not parse is left alone.
        for before in ["exceptions: [\n", "exceptions:\n  - id: A\n"] {
            std::fs::write(&path, before).unwrap();
            let err = append(&path, "B", None, "b", None).unwrap_err();
            assert!(err.to_string().contains("not added"), "{err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        }
        assert!(append(&path, "B", None, " ", None).is_err(), "no reason");
    }
}

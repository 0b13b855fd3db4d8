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

use crate::config::{ConfigError, parse_yaml, read_file};
use crate::model::Finding;
use crate::report::findings::{Basis, Suppressed};

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
    Yaml(#[from] ConfigError),
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
    fn accepts(&self, finding: &Finding, _image: Option<&crate::scan::ImageMeta>) -> Option<Suppressed> {
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
/// and comments; creates the file when missing.
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
    let mut text = existing.clone();
    if !text.lines().any(|l| l.trim_end() == "exceptions:") {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("exceptions:\n");
    } else if !text.ends_with('\n') {
        text.push('\n');
    }
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.replace('"', "'")));
    text.push_str(&format!("  - id: {}\n", quote(id)));
    if let Some(package) = package {
        text.push_str(&format!("    package: {}\n", quote(package)));
    }
    text.push_str(&format!("    reason: {}\n", quote(reason)));
    if let Some(date) = expires {
        text.push_str(&format!("    expires: {date}\n"));
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, text.as_bytes())?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
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
}

//! Marking a fold of alerts a false positive: an exception for the rule, written to the user's
//! rule overrides (`rules/false-positives.yaml` in the config directory), covering the fold's
//! image (or container) and program. The change is shown as a diff first and checked by loading
//! every rule file with it; agents read it when they start.

use std::path::{Path, PathBuf};

use super::StoredAlert;
use crate::rules::RuleSet;

/// The file picket writes exceptions to, in the user's rules directory.
pub const FILE_NAME: &str = "false-positives.yaml";

const HEADER: &str = "# Rule exceptions for alerts marked false positives (picket alerts false-positive,\n\
# or f in the Alerts pane). Edit freely; picket appends to the overrides list below.\nversion: 1\noverrides:\n";

/// An exception to be written: the file, its text now and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposed {
    pub path: PathBuf,
    pub before: String,
    pub after: String,
    pub rule: String,
}

impl Proposed {
    /// The change as a unified diff.
    pub fn diff(&self) -> String {
        let name = self.path.display().to_string();
        similar::TextDiff::from_lines(&self.before, &self.after)
            .unified_diff()
            .context_radius(3)
            .header(&name, &name)
            .to_string()
    }

    /// Writes the file (whole, through a temporary file, so a crash leaves the old one).
    pub fn write(&self) -> Result<(), String> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let tmp = self.path.with_extension("yaml.tmp");
        std::fs::write(&tmp, &self.after)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// The exception that silences `alert`'s rule for its image (else container) and program, in
/// `rules_dir`. Refused, with why, for alerts that no rule exception can silence.
pub fn propose(alert: &StoredAlert, rules_dir: &Path) -> Result<Proposed, String> {
    let rule = &alert.alert.rule;
    if rule.starts_with("policy-") {
        let decided =
            if alert.alert.policy.is_empty() { "the container's policy".into() } else { alert.alert.policy.clone() };
        return Err(format!(
            "{rule} alerts come from the container's policy ({decided}), not a detection rule: allow it in the policy (picket policy, or the Policies pane)"
        ));
    }
    let path = rules_dir.join(FILE_NAME);
    let before = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut fields = Vec::new();
    let container = alert.container.as_ref();
    match (container.and_then(|c| c.image.as_deref()), container.and_then(|c| c.name.as_deref())) {
        (Some(image), _) => fields.push(format!("image: {}", quoted(image))),
        (None, Some(name)) => fields.push(format!("container: {}", quoted(name))),
        (None, None) => {}
    }
    let process = super::fold::process_of(alert);
    if !process.is_empty() {
        fields.push(format!("process: {}", quoted(&process)));
    }
    if fields.is_empty() {
        return Err(format!("the alert names no image, container or program to make an exception for ({rule})"));
    }
    let mut after = if before.trim().is_empty() { HEADER.to_string() } else { before.clone() };
    if !after.ends_with('\n') {
        after.push('\n');
    }
    let when = jiff::Timestamp::from_millisecond(i64::try_from(alert.alert.at_unix_ms).unwrap_or(0))
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default();
    after.push_str(&format!(
        "  # {} on {} ({}), marked a false positive\n  - id: {}\n    exceptions: [{{ {} }}]\n",
        alert.alert.title.replace('\n', " "),
        super::fold::container_label(alert),
        when,
        quoted(rule),
        fields.join(", ")
    ));
    check(&path, &after)?;
    Ok(Proposed { path, before, after, rule: rule.clone() })
}

/// The rules with the new file in place of the old must load, and the rule must be one of them.
fn check(path: &Path, text: &str) -> Result<(), String> {
    let mut files = Vec::new();
    if let Some(dir) = path.parent() {
        for other in crate::yaml::files_in(dir, false).map_err(|e| e.to_string())? {
            if other != path {
                let text = crate::yaml::read_file(&other).map_err(|e| e.to_string())?;
                files.push((other, text));
            }
        }
    }
    files.push((path.to_path_buf(), text.to_string()));
    // In the order the agent reads them: by name.
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut all: Vec<(PathBuf, String)> =
        RuleSet::shipped_texts().into_iter().map(|(name, text)| (PathBuf::from(name), text.to_string())).collect();
    all.extend(files);
    RuleSet::from_texts(&all).map(|_| ()).map_err(|e| format!("the exception would not load: {e}"))
}

/// A YAML double-quoted scalar.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{}\"", text.replace('"', "")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::alert::Action;

    fn alert(rule: &str) -> StoredAlert {
        crate::alert::fold::tests::stored(rule, Some("web"), "/usr/bin/apt-get", 1_800_000_000_000, Action::Alerted)
    }

    #[test]
    fn a_false_positive_appends_a_checked_exception_and_shows_the_diff() {
        let dir = tempfile::tempdir().unwrap();
        let proposed = propose(&alert("package-manager-in-container"), dir.path()).unwrap();
        assert!(proposed.before.is_empty());
        assert!(proposed.after.contains("  - id: \"package-manager-in-container\"\n    exceptions: [{ image: \"registry.local/web:1\", process: \"/usr/bin/apt-get\" }]\n"), "{}", proposed.after);
        assert!(proposed.diff().contains("+version: 1"), "{}", proposed.diff());
        proposed.write().unwrap();
        // The rules load with it, and the exception covers the container's image and program.
        let rules = RuleSet::load(dir.path(), true).unwrap();
        let rule = rules.rules.iter().find(|r| r.info.id == "package-manager-in-container").unwrap();
        assert_eq!(rule.exceptions.len(), 1);
        assert_eq!(rule.exceptions[0].image.as_deref(), Some("registry.local/web:1"));
        // A second one appends; the diff shows only the addition.
        let second = propose(&alert("shell-from-server"), dir.path()).unwrap();
        assert!(second.after.starts_with(&proposed.after));
        assert!(!second.diff().contains("+version"), "{}", second.diff());
        // A rule no file defines is refused, naming why, and so are policy alerts.
        let unknown = propose(&alert("no-such-rule"), dir.path()).unwrap_err();
        assert!(unknown.contains("no rule has this id"), "{unknown}");
        let policy = propose(&alert("policy-exec"), dir.path()).unwrap_err();
        assert!(policy.contains("container's policy"), "{policy}");
    }
}

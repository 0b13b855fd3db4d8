//! Reading rule files: the shipped ones, then the user's (`rules/*.yaml` in the config
//! directory, in name order). A user file may add rules and override shipped ones by id
//! (`enabled: false`, `exceptions:`) without editing them. Every mistake names the file and
//! line and column (YAML) or the rule (`rules[3] (id)`).
//!
//! ```yaml
//! version: 1
//! lists:
//!   shells: [sh, bash, dash, ash]
//! rules:
//!   - id: shell-from-server
//!     title: A shell started by a server process
//!     severity: high
//!     technique: T1059.004
//!     why: Web servers and databases do not start shells; an exploited one does.
//!     on: exec
//!     when:
//!       inContainer: true
//!       commIn: ["@shells"]
//!       parentCommIn: [nginx, httpd, node, java, python3]
//! overrides:
//!   - id: package-manager-in-container
//!     exceptions: [{ image: "registry.local/builder:*" }]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Condition, Exception, On, Rule, RuleInfo};
use crate::model::Severity;
use crate::yaml::{YamlError, files_in, parse_yaml, read_file};

/// The rule files picket ships (`plugins-config/rules/`).
const SHIPPED: &[(&str, &str)] =
    &[("plugins-config/rules/default.yaml (built in)", include_str!("../../plugins-config/rules/default.yaml"))];

/// The rule file format this picket reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error("{path}: {at}: {message}", path = .path.display())]
    Invalid { path: PathBuf, at: String, message: String },
}

/// The enabled rules, shipped and the user's, with the user's overrides applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Rules switched off by an override (for `picket agent rules`).
    pub disabled: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    lists: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    overrides: Vec<RawOverride>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    title: String,
    severity: String,
    technique: String,
    why: String,
    on: On,
    when: RawWhen,
    #[serde(default)]
    deniable: bool,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWhen {
    in_container: Option<bool>,
    comm_in: Option<Vec<String>>,
    comm_not_in: Option<Vec<String>>,
    exe_in: Option<Vec<String>>,
    exe_prefix_any: Option<Vec<String>>,
    args_contain_any: Option<Vec<String>>,
    args_contain_none: Option<Vec<String>>,
    parent_comm_in: Option<Vec<String>>,
    parent_comm_not_in: Option<Vec<String>>,
    stdio_socket: Option<bool>,
    drift: Option<bool>,
    setuid: Option<bool>,
    fileless: Option<bool>,
    path_prefix_any: Option<Vec<String>>,
    path_in: Option<Vec<String>>,
    write: Option<bool>,
    port_in: Option<Vec<u16>>,
    to_api_server: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    id: String,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    exceptions: Vec<RawException>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    #[serde(default)]
    container: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    process: Option<String>,
}

impl RuleSet {
    /// The shipped rules, then every `*.yaml` in `user_dir` (absent: none, unless `required`:
    /// a directory named on the command line must exist).
    pub fn load(user_dir: &Path, required: bool) -> Result<Self, RuleError> {
        let mut files: Vec<(PathBuf, String)> =
            SHIPPED.iter().map(|(name, text)| (PathBuf::from(name), text.to_string())).collect();
        for path in files_in(user_dir, required)? {
            let text = read_file(&path)?;
            files.push((path, text));
        }
        Self::from_texts(&files)
    }

    /// The rule files picket ships: (name, text).
    pub fn shipped_texts() -> Vec<(&'static str, &'static str)> {
        SHIPPED.to_vec()
    }

    /// Rule files in the order they override each other.
    pub fn from_texts(files: &[(PathBuf, String)]) -> Result<Self, RuleError> {
        let mut set = RuleSet::default();
        let mut enabled: BTreeMap<String, bool> = BTreeMap::new();
        for (path, text) in files {
            let raw: RawFile = parse_yaml(path, text)?;
            let invalid = |at: String, message: String| RuleError::Invalid { path: path.clone(), at, message };
            if let Some(version) = raw.version.filter(|v| *v != FORMAT_VERSION) {
                return Err(invalid(
                    "version".into(),
                    format!("{version} is not a rule format this picket reads (it reads {FORMAT_VERSION})"),
                ));
            }
            for (index, rule) in raw.rules.iter().enumerate() {
                let at = format!("rules[{index}] ({})", rule.id);
                let built = build(rule, &raw.lists).map_err(|m| invalid(at.clone(), m))?;
                if set.rules.iter().any(|r| r.info.id == built.info.id) {
                    return Err(invalid(at, "this id is defined already; change it with overrides:".into()));
                }
                enabled.insert(built.info.id.clone(), rule.enabled);
                set.rules.push(built);
            }
            for (index, over) in raw.overrides.iter().enumerate() {
                let at = format!("overrides[{index}] ({})", over.id);
                let Some(rule) = set.rules.iter_mut().find(|r| r.info.id == over.id) else {
                    return Err(invalid(at, "no rule has this id".into()));
                };
                if let Some(on) = over.enabled {
                    enabled.insert(over.id.clone(), on);
                }
                for exception in &over.exceptions {
                    if exception.container.is_none() && exception.image.is_none() && exception.process.is_none() {
                        return Err(invalid(at, "an exception names a container, an image or a process".into()));
                    }
                    rule.exceptions.push(Exception {
                        container: exception.container.clone(),
                        image: exception.image.clone(),
                        process: exception.process.clone(),
                    });
                }
            }
        }
        let (on, off): (Vec<Rule>, Vec<Rule>) =
            std::mem::take(&mut set.rules).into_iter().partition(|r| enabled.get(&r.info.id).copied().unwrap_or(true));
        set.rules = on;
        set.disabled = off.into_iter().map(|r| r.info.id).collect();
        Ok(set)
    }
}

/// `@name` items are replaced by the list of that name.
fn expand(items: &[String], lists: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in items {
        match item.strip_prefix('@') {
            Some(name) => out.extend(lists.get(name).ok_or_else(|| format!("no list named {name:?}"))?.iter().cloned()),
            None => out.push(item.clone()),
        }
    }
    if out.is_empty() {
        return Err("an empty list matches nothing".into());
    }
    Ok(out)
}

fn build(raw: &RawRule, lists: &BTreeMap<String, Vec<String>>) -> Result<Rule, String> {
    if raw.id.is_empty() || !raw.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err("the id is lowercase letters, digits and '-'".into());
    }
    let severity: Severity = raw.severity.parse()?;
    let technique = raw.technique.strip_prefix('T').unwrap_or_default();
    let (number, sub) = technique.split_once('.').unwrap_or((technique, "000"));
    if number.len() != 4 || sub.len() != 3 || !(number.bytes().chain(sub.bytes())).all(|b| b.is_ascii_digit()) {
        return Err(format!("technique {:?} is not a MITRE ATT&CK id (T1059 or T1059.004)", raw.technique));
    }
    let w = &raw.when;
    let list = |field: &str, items: &Option<Vec<String>>| -> Result<Option<Vec<String>>, String> {
        items.as_ref().map(|i| expand(i, lists).map_err(|e| format!("when.{field}: {e}"))).transpose()
    };
    let mut conditions = Vec::new();
    let mut push = |condition: Option<Condition>| conditions.extend(condition);
    push(w.in_container.map(Condition::InContainer));
    push(list("commIn", &w.comm_in)?.map(Condition::CommIn));
    push(list("commNotIn", &w.comm_not_in)?.map(Condition::CommNotIn));
    push(list("exeIn", &w.exe_in)?.map(Condition::ExeIn));
    push(list("exePrefixAny", &w.exe_prefix_any)?.map(Condition::ExePrefixAny));
    push(list("argsContainAny", &w.args_contain_any)?.map(Condition::ArgsContainAny));
    push(list("argsContainNone", &w.args_contain_none)?.map(Condition::ArgsContainNone));
    push(list("parentCommIn", &w.parent_comm_in)?.map(Condition::ParentCommIn));
    push(list("parentCommNotIn", &w.parent_comm_not_in)?.map(Condition::ParentCommNotIn));
    push(w.stdio_socket.map(Condition::StdioSocket));
    push(w.drift.map(Condition::Drift));
    push(w.setuid.map(Condition::Setuid));
    push(w.fileless.map(Condition::Fileless));
    let paths = list("pathPrefixAny", &w.path_prefix_any)?;
    let exact = list("pathIn", &w.path_in)?;
    for path in paths.iter().chain(exact.iter()).flatten() {
        if !path.starts_with('/') {
            return Err(format!("path {path:?} is not absolute"));
        }
    }
    // Linked directories: the agent reports the path it walked (`/run/...` for `/var/run/...`).
    let spelled = |paths: Vec<String>| -> Vec<String> {
        let mut all: Vec<String> = paths.iter().flat_map(|p| super::path_aliases(p)).collect();
        all.dedup();
        all
    };
    push(paths.map(spelled).map(Condition::PathPrefixAny));
    push(exact.map(spelled).map(Condition::PathIn));
    push(w.write.map(Condition::Write));
    push(w.port_in.clone().map(Condition::PortIn));
    push(w.to_api_server.map(Condition::ToApiServer));
    if conditions.is_empty() {
        return Err("when: has no condition (it would match every event)".into());
    }
    let for_open = conditions
        .iter()
        .any(|c| matches!(c, Condition::PathPrefixAny(_) | Condition::PathIn(_) | Condition::Write(_)));
    let for_connect = conditions.iter().any(|c| matches!(c, Condition::PortIn(_) | Condition::ToApiServer(_)));
    let for_exec = conditions.iter().any(|c| {
        matches!(
            c,
            Condition::ArgsContainAny(_)
                | Condition::StdioSocket(_)
                | Condition::Drift(_)
                | Condition::Setuid(_)
                | Condition::Fileless(_)
        )
    });
    let wrong = match raw.on {
        On::Exec => for_open || for_connect,
        On::Open => for_connect || for_exec,
        On::Connect => for_open || for_exec,
    };
    if wrong {
        return Err(format!("when: a condition does not apply to {} events", serde_name(raw.on)));
    }
    if raw.on == On::Open && !conditions.iter().any(|c| matches!(c, Condition::PathPrefixAny(_) | Condition::PathIn(_)))
    {
        return Err("an open rule names its paths (pathPrefixAny or pathIn): they are what the agent watches".into());
    }
    Ok(Rule {
        info: RuleInfo {
            id: raw.id.clone(),
            title: raw.title.clone(),
            severity,
            technique: raw.technique.clone(),
            why: raw.why.clone(),
            deniable: raw.deniable,
        },
        on: raw.on,
        conditions,
        exceptions: Vec::new(),
    })
}

fn serde_name(on: On) -> &'static str {
    match on {
        On::Exec => "exec",
        On::Open => "open",
        On::Connect => "connect",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Facts, Whose};

    fn set(texts: &[&str]) -> Result<RuleSet, RuleError> {
        let files: Vec<(PathBuf, String)> =
            texts.iter().enumerate().map(|(i, t)| (PathBuf::from(format!("f{i}.yaml")), t.to_string())).collect();
        RuleSet::from_texts(&files)
    }

    const ONE: &str = "lists:\n  shells: [sh, bash]\nrules:\n  - id: shell-from-server\n    title: t\n    severity: high\n    technique: T1059.004\n    why: w\n    on: exec\n    when:\n      commIn: ['@shells']\n      parentCommIn: [nginx]\n";

    #[test]
    fn every_shipped_rule_loads() {
        let shipped = RuleSet::load(Path::new("/nonexistent"), false).expect("the shipped rules load");
        assert!(shipped.rules.len() >= 8, "{}", shipped.rules.len());
        let watches = shipped.watches();
        assert!(watches.contains(&("/etc/".to_string(), true)), "/etc/ is watched for writes only: {watches:?}");
        assert!(watches.contains(&("/etc/shadow".to_string(), false)), "{watches:?}");
    }

    #[test]
    fn lists_expand_and_rules_match_all_their_conditions() {
        let set = set(&[ONE]).expect("loads");
        let rule = &set.rules[0];
        let facts =
            |comm: &str, parent: &str| Facts { comm: comm.into(), parent_comm: parent.into(), ..Facts::default() };
        assert!(rule.matches(On::Exec, &facts("bash", "nginx"), &Whose::default()));
        assert!(!rule.matches(On::Exec, &facts("bash", "bash"), &Whose::default()));
        assert!(!rule.matches(On::Open, &facts("bash", "nginx"), &Whose::default()));
    }

    #[test]
    fn overrides_switch_off_and_except_without_editing() {
        let off = "overrides:\n  - id: shell-from-server\n    enabled: false\n";
        let set1 = set(&[ONE, off]).expect("loads");
        assert!(set1.rules.is_empty() && set1.disabled == vec!["shell-from-server".to_string()]);
        let except = "overrides:\n  - id: shell-from-server\n    exceptions: [{ image: 'registry.local/web:*' }]\n";
        let set2 = set(&[ONE, except]).expect("loads");
        let facts = Facts { comm: "sh".into(), parent_comm: "nginx".into(), ..Facts::default() };
        let whose = Whose { container: Some("web"), image: Some("registry.local/web:1.2") };
        assert!(set2.matching(On::Exec, &facts, &whose).is_empty());
        assert_eq!(set2.matching(On::Exec, &facts, &Whose::default()).len(), 1);
    }

    #[test]
    fn mistakes_name_the_file_and_the_rule() {
        let cases = [
            (ONE.replace("T1059.004", "X1"), "f0.yaml: rules[0] (shell-from-server): technique \"X1\""),
            (ONE.replace("'@shells'", "'@nope'"), "when.commIn: no list named \"nope\""),
            (ONE.replace("severity: high", "severity: urgent"), "rules[0] (shell-from-server): "),
            (ONE.replace("on: exec", "on: open"), "an open rule names its paths"),
            (
                ONE.replace("on: exec", "on: connect").replace("commIn", "argsContainAny"),
                "does not apply to connect events",
            ),
            (ONE.replace("commIn", "commz"), "f0.yaml:"),
        ];
        for (text, expected) in cases {
            let err = set(&[&text]).expect_err(expected).to_string();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
        let err = set(&[ONE, ONE]).expect_err("twice").to_string();
        assert!(err.contains("f1.yaml: rules[0]") && err.contains("defined already"), "{err}");
        let err = set(&["overrides:\n  - id: nothing\n    enabled: false\n"]).expect_err("unknown").to_string();
        assert!(err.contains("overrides[0] (nothing): no rule has this id"), "{err}");
    }
}

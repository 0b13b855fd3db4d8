//! Response rules: what happens when an alert comes. Modelled on NeuVector's response rules:
//! each rule matches on the event's category, the rule that fired, a severity floor, the group
//! (container or pod) and namespace, and lists actions; every matching rule fires (not only
//! the first). Files are `response/*.yaml` in the config directory (or named with `--rules`);
//! every mistake names the file and the line and column (YAML) or the rule.
//!
//! ```yaml
//! version: 1
//! sinks:
//!   - { name: oncall, type: slack, url: "https://hooks.slack.com/services/T/B/X", minSeverity: high }
//!   - { name: am, type: alertmanager, url: "http://alertmanager:9093" }
//!   - { name: siem, type: syslog, address: "udp://10.0.0.5:514" }
//! rules:
//!   - name: page-on-miners
//!     match: { category: [alert], rule: ["crypto-*"], severity: high }
//!     actions: [ { notify: oncall }, { notify: am } ]
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoredAlert;
use super::sinks::SinkConfig;
use crate::model::Severity;
use crate::yaml::{YamlError, files_in, parse_yaml, read_file};

/// The response file format this picket reads.
pub const FORMAT_VERSION: u32 = 1;

/// What kind of event a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// A detection rule fired (shell from a server, a miner, …).
    Alert,
    /// A container's policy did not allow an exec, an open or a connect (`policy-*`).
    Violation,
    /// The admission webhook denied or warned about an object (`admission/RULE`).
    Admission,
    /// A benchmark check failed (`compliance/CHECK`), from `picket bench … --respond`.
    Compliance,
    /// A new vulnerability in the image of a running container or pod (`cve/ID`), from
    /// `picket db update|import|rematch --respond`.
    Vulnerability,
}

impl Category {
    pub fn of(alert: &StoredAlert) -> Self {
        if alert.alert.rule.starts_with("policy-") {
            Self::Violation
        } else if alert.alert.rule.starts_with("admission/") {
            Self::Admission
        } else if alert.alert.rule.starts_with("compliance/") {
            Self::Compliance
        } else if alert.alert.rule.starts_with("cve/") {
            Self::Vulnerability
        } else {
            Self::Alert
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Violation => "violation",
            Self::Admission => "admission",
            Self::Compliance => "compliance",
            Self::Vulnerability => "vulnerability",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Match {
    /// Any of these (none: every category).
    #[serde(default)]
    pub category: Vec<Category>,
    /// Globs on the rule's id (`crypto-*`).
    #[serde(default)]
    pub rule: Vec<String>,
    /// At least this severe.
    #[serde(default, deserialize_with = "crate::model::optional_severity")]
    pub severity: Option<Severity>,
    /// Globs on the container: `namespace/pod/container`, the engine's container name, `host`.
    #[serde(default)]
    pub group: Vec<String>,
    #[serde(default)]
    pub namespace: Vec<String>,
    /// Globs on the node.
    #[serde(default)]
    pub node: Vec<String>,
    /// Only what the agent refused or killed (true), only what it let happen (false).
    #[serde(default)]
    pub blocked: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Action {
    /// Send to the sink of this name.
    Notify(String),
    /// SIGKILL the alert's process (on this machine).
    Kill,
    /// Freeze the alert's container (a local engine's pause; undone from the console or
    /// `picket respond undo`).
    Pause,
    /// Cut the alert's container off the network while it keeps running (through the local
    /// agent; undone from the console, `picket respond undo` or `picket respond release`).
    Quarantine,
    /// Capture the container's traffic for a while.
    Capture(CaptureAction),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CaptureAction {
    /// `30s`, `5m`.
    #[serde(default = "default_capture_duration")]
    pub duration: String,
    /// `10M`.
    #[serde(default = "default_capture_size")]
    pub max_size: String,
}

fn default_capture_duration() -> String {
    "30s".into()
}

fn default_capture_size() -> String {
    "100M".into()
}

impl Action {
    /// The action to carry out, for those that are not notifications.
    pub fn requested(&self) -> Option<super::actions::Requested> {
        match self {
            Self::Notify(_) => None,
            Self::Kill => Some(super::actions::Requested::Kill),
            Self::Pause => Some(super::actions::Requested::Pause),
            Self::Quarantine => Some(super::actions::Requested::Quarantine),
            Self::Capture(c) => Some(super::actions::Requested::Capture {
                duration: std::time::Duration::from_millis(
                    super::triage::parse_duration(&c.duration).unwrap_or(30_000),
                ),
                max_bytes: parse_size(&c.max_size).unwrap_or(100 << 20),
            }),
        }
    }
}

/// `10M`, `500K`, `1G`, `4096` as bytes (at least 1K).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().map_err(|_| format!("'{text}' is not a size (like 500K, 10M, 1G)"))?;
    let unit = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("'{text}': the unit is K, M or G")),
    };
    number.checked_mul(unit).filter(|n| *n >= 1024).ok_or_else(|| format!("'{text}': at least 1K"))
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRule {
    pub name: String,
    #[serde(default)]
    pub disabled: bool,
    #[serde(rename = "match", default)]
    pub matching: Match,
    pub actions: Vec<Action>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    sinks: Vec<SinkConfig>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

/// One rule, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseRule {
    pub rule: RawRule,
    /// `response/page.yaml rules[0] (page-on-miners)`.
    pub source: String,
}

/// Every sink and rule of the response files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseConfig {
    pub sinks: Vec<SinkConfig>,
    pub rules: Vec<ResponseRule>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error("{path}: {at}: {message}")]
    Invalid { path: PathBuf, at: String, message: String },
}

impl ResponseConfig {
    /// The `*.yaml` files of `dir` (absent: no responses, unless `required`).
    pub fn load(dir: &Path, required: bool) -> Result<Self, ResponseError> {
        let mut files = Vec::new();
        for path in files_in(dir, required)? {
            let text = read_file(&path)?;
            files.push((path, text));
        }
        Self::from_texts(&files)
    }

    /// Files in order; sink names are one namespace across them.
    pub fn from_texts(files: &[(PathBuf, String)]) -> Result<Self, ResponseError> {
        let mut config = Self::default();
        let mut pending: Vec<(PathBuf, usize, RawRule)> = Vec::new();
        for (path, text) in files {
            let raw: RawFile = parse_yaml(path, text)?;
            let invalid = |at: String, message: String| ResponseError::Invalid { path: path.clone(), at, message };
            if let Some(version) = raw.version.filter(|v| *v != FORMAT_VERSION) {
                return Err(invalid(
                    "version".into(),
                    format!("{version} is not a response format this picket reads (it reads {FORMAT_VERSION})"),
                ));
            }
            for (index, sink) in raw.sinks.into_iter().enumerate() {
                let at = format!("sinks[{index}] ({})", sink.name);
                sink.check().map_err(|m| invalid(at.clone(), m))?;
                if config.sinks.iter().any(|s| s.name == sink.name) {
                    return Err(invalid(at, "another sink has this name".into()));
                }
                config.sinks.push(sink);
            }
            for (index, rule) in raw.rules.into_iter().enumerate() {
                pending.push((path.clone(), index, rule));
            }
        }
        for (path, index, rule) in pending {
            let at = format!("rules[{index}] ({})", rule.name);
            let invalid = |message: String| ResponseError::Invalid { path: path.clone(), at: at.clone(), message };
            if rule.actions.is_empty() {
                return Err(invalid("a rule needs at least one action".into()));
            }
            for action in &rule.actions {
                match action {
                    Action::Notify(sink) => {
                        if !config.sinks.iter().any(|s| &s.name == sink) {
                            let known: Vec<&str> = config.sinks.iter().map(|s| s.name.as_str()).collect();
                            return Err(invalid(format!(
                                "notify: no sink is named '{sink}' (sinks: {})",
                                known.join(", ")
                            )));
                        }
                    }
                    Action::Capture(c) => {
                        super::triage::parse_duration(&c.duration).map_err(|e| invalid(format!("capture: {e}")))?;
                        parse_size(&c.max_size).map_err(|e| invalid(format!("capture: {e}")))?;
                    }
                    Action::Kill | Action::Pause | Action::Quarantine => {}
                }
            }
            if config.rules.iter().any(|r| r.rule.name == rule.name) {
                return Err(invalid("another rule has this name".into()));
            }
            let source = format!("{} {at}", path.display());
            config.rules.push(ResponseRule { rule, source });
        }
        Ok(config)
    }

    /// The rules `alert` matches, in order (every one fires).
    pub fn matching<'a>(&'a self, alert: &StoredAlert) -> Vec<&'a ResponseRule> {
        self.rules.iter().filter(|r| !r.rule.disabled && matches(&r.rule.matching, alert)).collect()
    }

    pub fn sink(&self, name: &str) -> Option<&SinkConfig> {
        self.sinks.iter().find(|s| s.name == name)
    }
}

fn matches(m: &Match, alert: &StoredAlert) -> bool {
    let any = |globs: &[String], value: &str| globs.is_empty() || globs.iter().any(|g| glob(g, value));
    let container = super::fold::container_label(alert);
    let namespace = namespace_of(alert);
    let blocked =
        matches!(alert.alert.action, crate::agent::alert::Action::Denied | crate::agent::alert::Action::Killed);
    (m.category.is_empty() || m.category.contains(&Category::of(alert)))
        && any(&m.rule, &alert.alert.rule)
        && m.severity.is_none_or(|min| alert.alert.severity >= min)
        && any(&m.group, &container)
        && (m.namespace.is_empty() || m.namespace.iter().any(|n| n == namespace))
        && any(&m.node, &alert.node)
        && m.blocked.is_none_or(|b| b == blocked)
}

/// The namespace of the alert's pod, or of the object an admission event is about
/// (`Deployment shop/api`).
fn namespace_of(alert: &StoredAlert) -> &str {
    match alert.container.as_ref().and_then(|c| c.pod_namespace.as_deref()) {
        Some(namespace) => namespace,
        None if matches!(alert.alert.event.kind.as_str(), "admission" | "compliance") => alert
            .alert
            .event
            .path
            .split_once(' ')
            .and_then(|(_, object)| object.split_once('/'))
            .map_or("", |(ns, _)| ns),
        None => "",
    }
}

/// `*` matches any run of characters; everything else is literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

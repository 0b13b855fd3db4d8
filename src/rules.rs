//! Detection rules: data (`plugins-config/rules/*.yaml`, then the user's `rules/*.yaml`), each a
//! set of conditions on one kind of event (an exec, an open, a connect), with an id, a title, a
//! severity, a MITRE ATT&CK technique and why it matters. The agent turns each event into
//! [`Facts`] and asks [`RuleSet::matching`] which rules it breaks. Pure: no I/O here but loading.

pub mod load;

use serde::Serialize;

use crate::model::Severity;
pub use load::{RuleError, RuleSet};

/// The kind of event a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum On {
    Exec,
    Open,
    Connect,
}

/// What the agent knows of one event, as rules read it. Fields a kind of event does not have
/// are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub in_container: bool,
    /// The executable's absolute path (as the process sees it).
    pub exe: String,
    /// The process's name (`comm`), or the executable's file name.
    pub comm: String,
    pub args: Vec<String>,
    pub parent_comm: String,
    pub parent_exe: String,
    /// The process's standard input or output is a network (TCP or UDP) socket.
    pub stdio_socket: bool,
    /// The executable is not in the container's image: written in the container since it started.
    pub drift: bool,
    /// The executable is setuid or setgid, and runs with another user's rights.
    pub setuid: bool,
    /// The executable has no name on any filesystem: a memfd_create file, or a file deleted
    /// since (fileless malware runs from memory so that no file is left to scan).
    pub fileless: bool,
    /// The file opened (open events).
    pub path: String,
    pub write: bool,
    /// The remote port (connect events).
    pub port: u16,
    /// The remote address is the Kubernetes API server the process was told about.
    pub to_api_server: bool,
}

/// One condition of a rule; every condition of a rule must hold. Names are the YAML keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    InContainer(bool),
    CommIn(Vec<String>),
    CommNotIn(Vec<String>),
    ExeIn(Vec<String>),
    ExePrefixAny(Vec<String>),
    ArgsContainAny(Vec<String>),
    ArgsContainNone(Vec<String>),
    ParentCommIn(Vec<String>),
    ParentCommNotIn(Vec<String>),
    StdioSocket(bool),
    Drift(bool),
    Setuid(bool),
    Fileless(bool),
    PathPrefixAny(Vec<String>),
    PathIn(Vec<String>),
    Write(bool),
    PortIn(Vec<u16>),
    ToApiServer(bool),
}

impl Condition {
    fn holds(&self, facts: &Facts) -> bool {
        let any_prefix = |value: &str, prefixes: &[String]| prefixes.iter().any(|p| value.starts_with(p.as_str()));
        match self {
            Self::InContainer(want) => facts.in_container == *want,
            Self::CommIn(names) => names.contains(&facts.comm),
            Self::CommNotIn(names) => !names.contains(&facts.comm),
            Self::ExeIn(paths) => paths.contains(&facts.exe),
            Self::ExePrefixAny(prefixes) => any_prefix(&facts.exe, prefixes),
            Self::ArgsContainAny(needles) => {
                let line = facts.args.join(" ");
                needles.iter().any(|n| line.contains(n.as_str()))
            }
            Self::ArgsContainNone(needles) => {
                let line = facts.args.join(" ");
                !needles.iter().any(|n| line.contains(n.as_str()))
            }
            Self::ParentCommIn(names) => names.contains(&facts.parent_comm),
            Self::ParentCommNotIn(names) => !names.contains(&facts.parent_comm),
            Self::StdioSocket(want) => facts.stdio_socket == *want,
            Self::Drift(want) => facts.drift == *want,
            Self::Fileless(want) => facts.fileless == *want,
            Self::Setuid(want) => facts.setuid == *want,
            Self::PathPrefixAny(prefixes) => any_prefix(&facts.path, prefixes),
            Self::PathIn(paths) => paths.contains(&facts.path),
            Self::Write(want) => facts.write == *want,
            Self::PortIn(ports) => ports.contains(&facts.port),
            Self::ToApiServer(want) => facts.to_api_server == *want,
        }
    }

    /// Path prefixes an open rule needs the file sensor to watch.
    fn watched_prefixes(&self) -> Vec<String> {
        match self {
            Self::PathPrefixAny(prefixes) => prefixes.clone(),
            Self::PathIn(paths) => paths.clone(),
            _ => Vec::new(),
        }
    }
}

/// What a rule says, for alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    /// MITRE ATT&CK technique, `T1059.004`.
    pub technique: String,
    pub why: String,
    /// Whether protect mode stops what the rule catches (the process is killed, or the exec or
    /// open denied where the rung allows).
    pub deniable: bool,
}

/// Skips a rule for some containers, images or processes (the user's overrides).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exception {
    pub container: Option<String>,
    /// A glob on the image (`*` matches any run of characters).
    pub image: Option<String>,
    pub process: Option<String>,
}

/// Who an event belongs to, for exceptions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Whose<'a> {
    pub container: Option<&'a str>,
    pub image: Option<&'a str>,
}

impl Exception {
    fn covers(&self, whose: &Whose, facts: &Facts) -> bool {
        let container = self.container.as_deref().is_none_or(|c| whose.container == Some(c));
        let image = self.image.as_deref().is_none_or(|glob| whose.image.is_some_and(|i| glob_match(glob, i)));
        let process = self.process.as_deref().is_none_or(|p| p == facts.exe || p == facts.comm);
        container && image && process
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub info: RuleInfo,
    pub on: On,
    pub conditions: Vec<Condition>,
    pub exceptions: Vec<Exception>,
}

impl Rule {
    /// Whether an exception that names no process covers every event of this container (what a
    /// kernel-side refusal, which knows the container but not the program, can honour).
    pub fn excepted(&self, whose: &Whose) -> bool {
        self.exceptions.iter().any(|e| e.process.is_none() && e.covers(whose, &Facts::default()))
    }

    pub fn matches(&self, on: On, facts: &Facts, whose: &Whose) -> bool {
        self.on == on
            && self.conditions.iter().all(|c| c.holds(facts))
            && !self.exceptions.iter().any(|e| e.covers(whose, facts))
    }
}

impl RuleSet {
    /// The enabled rules `facts` breaks, in file order.
    pub fn matching<'a>(&'a self, on: On, facts: &Facts, whose: &Whose) -> Vec<&'a Rule> {
        self.rules.iter().filter(|r| r.matches(on, facts, whose)).collect()
    }

    /// The path prefixes the enabled open rules need watched, each with whether only opens for
    /// writing matter (every open rule that needs a prefix for reads too makes it read as well).
    pub fn watches(&self) -> Vec<(String, bool)> {
        let mut watches: std::collections::BTreeMap<String, bool> = std::collections::BTreeMap::new();
        for rule in self.rules.iter().filter(|r| r.on == On::Open) {
            let writes_only = rule.conditions.contains(&Condition::Write(true));
            for prefix in rule.conditions.iter().flat_map(Condition::watched_prefixes) {
                let entry = watches.entry(prefix).or_insert(writes_only);
                *entry = *entry && writes_only;
            }
        }
        watches.into_iter().collect()
    }
}

/// Directories that are links to others in most images and hosts (Debian's merged /usr,
/// FHS 3's /run): the file sensor reports the path it walked, the link's target, so a prefix
/// given under one name must be watched under the other too.
const ALIASES: &[(&str, &str)] = &[
    ("/var/run/", "/run/"),
    ("/var/lock/", "/run/lock/"),
    ("/bin/", "/usr/bin/"),
    ("/sbin/", "/usr/sbin/"),
    ("/lib/", "/usr/lib/"),
    ("/lib64/", "/usr/lib64/"),
];

/// The prefix and its other spellings through the usual directory links: `/var/run/secrets/`
/// is also `/run/secrets/`.
pub fn path_aliases(prefix: &str) -> Vec<String> {
    let mut out = vec![prefix.to_string()];
    for (link, target) in ALIASES {
        for (from, to) in [(link, target), (target, link)] {
            if let Some(rest) = prefix.strip_prefix(from) {
                out.push(format!("{to}{rest}"));
            }
        }
    }
    out
}

/// `*` matches any run of characters; everything else itself.
pub fn glob_match(glob: &str, text: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linked_directories_are_watched_under_both_names() {
        assert_eq!(
            path_aliases("/var/run/secrets/kubernetes.io/"),
            vec!["/var/run/secrets/kubernetes.io/".to_string(), "/run/secrets/kubernetes.io/".to_string()]
        );
        assert_eq!(path_aliases("/run/x"), vec!["/run/x".to_string(), "/var/run/x".to_string()]);
        assert_eq!(path_aliases("/usr/bin/"), vec!["/usr/bin/".to_string(), "/bin/".to_string()]);
        assert_eq!(path_aliases("/etc/"), vec!["/etc/".to_string()]);
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_match("registry.local/app:*", "registry.local/app:1.2"));
        assert!(glob_match("*/app:*", "a/b/app:1"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("a*c", "abd"));
        assert!(glob_match("*", ""));
    }
}

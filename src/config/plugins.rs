//! Plugins in the k9s plugin format: a shortcut runs a command with variables taken from the
//! selected row. `plugins-config/plugins.yaml` ships with picket; `plugins.yaml` in the user's
//! config directory is merged over it by plugin name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::keymap::{KeySpec, Keymap};
use super::{ConfigError, parse_yaml, read_file};

pub const SHIPPED: &str = include_str!("../../plugins-config/plugins.yaml");

/// Where a plugin may run: the pane names, or `all`.
pub const SCOPES: &[&str] = &["all", "overview", "containers", "images", "compliance", "contexts", "workloads"];

/// The variables a plugin can use, and what they hold.
pub const VARIABLES: &[(&str, &str)] = &[
    ("NAME", "name of the selected container or context"),
    ("ID", "full id of the selected container"),
    ("IMAGE", "image of the selected container"),
    ("ENGINE", "engine API socket of the selected container, as unix://PATH"),
    ("NAMESPACE", "Kubernetes namespace of the selection (pod label or context namespace)"),
    ("CONTEXT", "active kubeconfig context, or 'local'"),
    ("CLUSTER", "cluster of the selected context"),
    ("PANE", "the pane the plugin was started from"),
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    plugins: BTreeMap<String, RawPlugin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPlugin {
    short_cut: String,
    #[serde(default)]
    description: String,
    scopes: Vec<String>,
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    background: bool,
    #[serde(default)]
    confirm: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugin {
    pub name: String,
    pub shortcut: KeySpec,
    pub description: String,
    pub scopes: Vec<String>,
    pub command: String,
    pub args: Vec<String>,
    pub background: bool,
    pub confirm: bool,
    /// The file that defined it, for messages.
    pub source: PathBuf,
}

impl Plugin {
    pub fn applies_to(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == "all" || s == scope)
    }

    /// The command and arguments with the variables filled in.
    pub fn expand(&self, vars: &BTreeMap<String, String>) -> (String, Vec<String>) {
        (expand(&self.command, vars), self.args.iter().map(|arg| expand(arg, vars)).collect())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plugins {
    plugins: Vec<Plugin>,
}

impl Plugins {
    pub fn load(config_dir: &Path, keymap: &Keymap) -> Result<Self, ConfigError> {
        let shipped_path = PathBuf::from("plugins-config/plugins.yaml (built in)");
        let mut merged: BTreeMap<String, (PathBuf, RawPlugin)> = BTreeMap::new();
        let shipped: RawFile = parse_yaml(&shipped_path, SHIPPED)?;
        for (name, plugin) in shipped.plugins {
            merged.insert(name, (shipped_path.clone(), plugin));
        }
        let user_path = config_dir.join("plugins.yaml");
        if user_path.is_file() {
            let user: RawFile = parse_yaml(&user_path, &read_file(&user_path)?)?;
            for (name, plugin) in user.plugins {
                merged.insert(name, (user_path.clone(), plugin));
            }
        }
        let plugins = merged
            .into_iter()
            .map(|(name, (source, raw))| validate(name, source, raw, keymap))
            .collect::<Result<Vec<_>, _>>()?;
        check_clashes(&plugins)?;
        Ok(Self { plugins })
    }

    pub fn all(&self) -> &[Plugin] {
        &self.plugins
    }

    pub fn for_key(&self, key: KeySpec, scope: &str) -> Option<&Plugin> {
        self.plugins.iter().find(|p| p.shortcut == key && p.applies_to(scope))
    }

    pub fn in_scope<'a>(&'a self, scope: &'a str) -> impl Iterator<Item = &'a Plugin> + 'a {
        self.plugins.iter().filter(move |p| p.applies_to(scope))
    }
}

fn validate(name: String, source: PathBuf, raw: RawPlugin, keymap: &Keymap) -> Result<Plugin, ConfigError> {
    let fail = |msg: String| ConfigError::invalid(&source, format!("plugin '{name}': {msg}"));
    let shortcut = KeySpec::parse(&raw.short_cut).map_err(|e| fail(format!("shortCut {e}")))?;
    if let Some(binding) = keymap.clash(shortcut, &raw.scopes) {
        return Err(fail(format!("shortCut '{shortcut}' is already bound to '{}'", binding.command.name())));
    }
    if raw.command.trim().is_empty() {
        return Err(fail("command is empty".into()));
    }
    if raw.scopes.is_empty() {
        return Err(fail(format!("scopes is empty; use one or more of {}", SCOPES.join(", "))));
    }
    if let Some(bad) = raw.scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        return Err(fail(format!("unknown scope '{bad}'; known scopes: {}", SCOPES.join(", "))));
    }
    Ok(Plugin {
        description: if raw.description.is_empty() { name.clone() } else { raw.description },
        name,
        shortcut,
        scopes: raw.scopes,
        command: raw.command,
        args: raw.args,
        background: raw.background,
        confirm: raw.confirm,
        source,
    })
}

fn check_clashes(plugins: &[Plugin]) -> Result<(), ConfigError> {
    for (i, a) in plugins.iter().enumerate() {
        for b in &plugins[i + 1..] {
            let shared_scope = a.scopes.iter().any(|s| b.applies_to(s)) || b.scopes.iter().any(|s| a.applies_to(s));
            if a.shortcut == b.shortcut && shared_scope {
                return Err(ConfigError::invalid(
                    &b.source,
                    format!(
                        "plugins '{}' and '{}' both use shortCut '{}' in the same scope",
                        a.name, b.name, a.shortcut
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Replaces `$VAR` and `${VAR}` for the variables given; `$$` is a literal `$`. Anything else,
/// such as `$1` or `$HOME`, is left for the shell the plugin may run.
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], end)
        };
        match vars.get(name) {
            Some(value) if !name.is_empty() => {
                out.push_str(value);
                rest = &after[consumed..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("NAME", "web"), ("ID", "abc123"), ("ENGINE", "unix:///run/podman/podman.sock")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expands_known_variables_only() {
        assert_eq!(expand("logs $NAME", &vars()), "logs web");
        assert_eq!(expand("${ID}-x", &vars()), "abc123-x");
        assert_eq!(expand("DOCKER_HOST=$ENGINE docker", &vars()), "DOCKER_HOST=unix:///run/podman/podman.sock docker");
        assert_eq!(expand("echo $1 $HOME $$NAME", &vars()), "echo $1 $HOME $NAME");
        assert_eq!(expand("${NAME", &vars()), "${NAME");
        assert_eq!(expand("$", &vars()), "$");
        assert_eq!(expand("$NAMEX", &vars()), "$NAMEX");
    }

    #[test]
    fn shipped_plugins_are_valid() {
        let tmp = tempfile::tempdir().unwrap();
        let plugins = Plugins::load(tmp.path(), &Keymap::default()).unwrap();
        assert!(!plugins.all().is_empty());
        let logs = plugins.all().iter().find(|p| p.name == "container-logs").unwrap();
        let (command, args) = logs.expand(&vars());
        assert_eq!(command, "sh");
        assert!(args.iter().any(|a| a.contains("abc123")), "{args:?}");
    }

    #[test]
    fn user_file_merges_over_shipped_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("plugins.yaml"),
            "plugins:\n  container-logs:\n    shortCut: Shift-O\n    scopes: [containers]\n    command: echo\n  \
             mine:\n    shortCut: ctrl-x\n    description: Mine\n    scopes: [all]\n    command: true\n    background: true\n",
        )
        .unwrap();
        let plugins = Plugins::load(tmp.path(), &Keymap::default()).unwrap();
        let logs = plugins.all().iter().find(|p| p.name == "container-logs").unwrap();
        assert_eq!(logs.command, "echo");
        assert_eq!(logs.shortcut, KeySpec::parse("O").unwrap());
        let mine = plugins.for_key(KeySpec::parse("ctrl-x").unwrap(), "contexts").unwrap();
        assert!(mine.background);
    }

    #[test]
    fn bad_plugins_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let cases = [
            ("plugins:\n  p:\n    shortCut: ctrl-c\n    scopes: [all]\n    command: x\n", "already bound to 'quit'"),
            ("plugins:\n  p:\n    shortCut: hyper-q\n    scopes: [all]\n    command: x\n", "'hyper-q'"),
            ("plugins:\n  p:\n    shortCut: x\n    scopes: [pods]\n    command: x\n", "unknown scope 'pods'"),
            ("plugins:\n  p:\n    shortCut: x\n    scopes: [all]\n    command: ''\n", "command is empty"),
            (
                "plugins:\n  p:\n    shortCut: x\n    scopes: [all]\n    command: a\n  q:\n    shortCut: x\n    scopes: [overview]\n    command: b\n",
                "both use shortCut",
            ),
            ("plugins:\n  p:\n    shortcut: x\n", ":3:"),
        ];
        for (text, expected) in cases {
            std::fs::write(tmp.path().join("plugins.yaml"), text).unwrap();
            let err = Plugins::load(tmp.path(), &Keymap::default()).unwrap_err().to_string();
            assert!(err.contains("plugins.yaml") && err.contains(expected), "{text}\n=> {err}");
        }
    }
}

//! The one keymap: it drives key handling, the footer hints and the `?` help.

use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

use super::command::Command;

/// A key with its modifiers, normalised so that `G`, `shift-g` and a terminal's
/// `Char('G') + SHIFT` are the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl KeySpec {
    pub fn new(code: KeyCode, modifiers: KeyModifiers) -> Self {
        let mut spec = Self { code, modifiers };
        spec.normalise();
        spec
    }

    pub fn from_event(event: &KeyEvent) -> Self {
        Self::new(event.code, event.modifiers)
    }

    fn normalise(&mut self) {
        self.modifiers &= KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT;
        match self.code {
            KeyCode::Char(c) => {
                if self.modifiers.contains(KeyModifiers::SHIFT) {
                    self.code = KeyCode::Char(c.to_ascii_uppercase());
                    self.modifiers.remove(KeyModifiers::SHIFT);
                }
                if self.modifiers.contains(KeyModifiers::CONTROL) {
                    self.code = KeyCode::Char(c.to_ascii_lowercase());
                }
            }
            KeyCode::BackTab => self.modifiers.remove(KeyModifiers::SHIFT),
            _ => {}
        }
    }

    /// Parses k9s-style key names: `?`, `j`, `G`, `Shift-L`, `ctrl-d`, `alt-x`, `esc`, `enter`,
    /// `tab`, `backtab`, `space`, `up`, `pgdown`, `f5` … (case-insensitive names).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not a key (examples: j, G, ctrl-d, shift-l, esc, f5)");
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text.trim();
        loop {
            let lower = rest.to_ascii_lowercase();
            let prefix = ["ctrl-", "alt-", "shift-"].into_iter().find(|p| lower.starts_with(p) && rest.len() > p.len());
            let Some(prefix) = prefix else { break };
            modifiers |= match prefix {
                "ctrl-" => KeyModifiers::CONTROL,
                "alt-" => KeyModifiers::ALT,
                _ => KeyModifiers::SHIFT,
            };
            rest = &rest[prefix.len()..];
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => named_key(&rest.to_ascii_lowercase()).ok_or_else(bad)?,
        };
        Ok(Self::new(code, modifiers))
    }
}

fn named_key(name: &str) -> Option<KeyCode> {
    Some(match name {
        "esc" | "escape" => KeyCode::Esc,
        "enter" | "return" => KeyCode::Enter,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "space" => KeyCode::Char(' '),
        "backspace" => KeyCode::Backspace,
        "delete" | "del" => KeyCode::Delete,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pgup" | "pageup" => KeyCode::PageUp,
        "pgdown" | "pagedown" => KeyCode::PageDown,
        f if f.starts_with('f') => KeyCode::F(f[1..].parse().ok().filter(|n| (1..=12).contains(n))?),
        _ => return None,
    })
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.modifiers.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("backtab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdown"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One line of the user's `keymap:` list in config.yaml: `{ on: ctrl-q, run: quit }`, with an
/// optional `scope` (a pane) for keys that mean something on one pane only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBinding {
    pub on: String,
    pub run: String,
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub key: KeySpec,
    pub command: Command,
    /// The pane the binding is for; None binds everywhere.
    pub scope: Option<String>,
}

impl Binding {
    pub fn applies_to(&self, scope: &str) -> bool {
        self.scope.as_deref().is_none_or(|s| s == scope)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

/// Keys that mean something on one pane only: (key, command, pane scope).
const SCOPED_BINDINGS: &[(&str, Command, &str)] = &[
    ("s", Command::Scan, "images"),
    ("v", Command::Findings, "images"),
    ("s", Command::Scan, "registries"),
    ("v", Command::Findings, "registries"),
    ("S", Command::SortSeverity, "findings"),
    ("P", Command::SortPackage, "findings"),
    ("F", Command::SortFixed, "findings"),
    ("a", Command::Accept, "findings"),
    ("1", Command::BenchDocker, "compliance"),
    ("2", Command::BenchNode, "compliance"),
    ("3", Command::BenchCluster, "compliance"),
    ("[", Command::PrevReport, "compliance"),
    ("]", Command::NextReport, "compliance"),
    ("n", Command::NextNamespace, "workloads"),
    ("n", Command::NextNamespace, "admission"),
    ("a", Command::StartAgent, "nodes"),
    ("A", Command::DeployAgent, "nodes"),
    ("i", Command::EditText, "policies"),
    ("E", Command::ExternalEditor, "policies"),
    ("d", Command::DiffPolicy, "policies"),
    ("a", Command::ApplyPolicy, "policies"),
    ("n", Command::NextProblem, "policies"),
    ("m", Command::NextMode, "behaviour"),
    ("a", Command::AcceptViolation, "behaviour"),
    ("a", Command::AckAlert, "alerts"),
    ("s", Command::SnoozeAlert, "alerts"),
    ("f", Command::FalsePositive, "alerts"),
    ("u", Command::ReopenAlert, "alerts"),
    ("v", Command::NextSeverity, "alerts"),
    ("A", Command::ToggleTriaged, "alerts"),
    ("n", Command::NextNamespace, "alerts"),
    ("c", Command::CaptureAlert, "alerts"),
    ("b", Command::BundleAlert, "alerts"),
    ("U", Command::UndoActions, "alerts"),
    ("Q", Command::QuarantineAlert, "alerts"),
    ("m", Command::ToggleMap, "network"),
];

const DEFAULT_BINDINGS: &[(&str, Command)] = &[
    ("?", Command::Help),
    (":", Command::CommandMode),
    ("/", Command::FilterMode),
    ("enter", Command::Enter),
    ("esc", Command::Back),
    ("j", Command::Down),
    ("down", Command::Down),
    ("k", Command::Up),
    ("up", Command::Up),
    ("g", Command::Top),
    ("home", Command::Top),
    ("G", Command::Bottom),
    ("end", Command::Bottom),
    ("ctrl-d", Command::PageDown),
    ("pgdown", Command::PageDown),
    ("ctrl-u", Command::PageUp),
    ("pgup", Command::PageUp),
    ("tab", Command::NextPane),
    ("backtab", Command::PrevPane),
    ("ctrl-r", Command::Refresh),
    ("ctrl-c", Command::Quit),
];

impl Default for Keymap {
    fn default() -> Self {
        let global = DEFAULT_BINDINGS.iter().map(|(key, command)| (*key, *command, None));
        let scoped = SCOPED_BINDINGS.iter().map(|(key, command, scope)| (*key, *command, Some((*scope).to_string())));
        let bindings = global
            .chain(scoped)
            .filter_map(|(key, command, scope)| KeySpec::parse(key).ok().map(|key| Binding { key, command, scope }))
            .collect();
        Self { bindings }
    }
}

impl Keymap {
    /// The defaults with the user's bindings applied over them: a user binding takes its key
    /// away from whatever default command had it.
    pub fn with_overrides(raw: &[RawBinding]) -> Result<Self, String> {
        let mut keymap = Self::default();
        for binding in raw {
            let key = KeySpec::parse(&binding.on).map_err(|e| format!("keymap: {e}"))?;
            let command = Command::from_name(&binding.run).ok_or_else(|| {
                let known: Vec<&str> = Command::ALL.iter().map(|c| c.name()).collect();
                format!("keymap: unknown command '{}' (known: {})", binding.run, known.join(", "))
            })?;
            keymap.bindings.retain(|b| !(b.key == key && b.scope == binding.scope));
            keymap.bindings.push(Binding { key, command, scope: binding.scope.clone() });
        }
        Ok(keymap)
    }

    /// The command `key` runs on the pane `scope`; a pane's own binding wins over a global one.
    pub fn command_for(&self, key: KeySpec, scope: &str) -> Option<Command> {
        let mut matching = self.bindings.iter().filter(|b| b.key == key && b.applies_to(scope));
        let first = matching.next()?;
        if first.scope.is_some() {
            return Some(first.command);
        }
        Some(matching.find(|b| b.scope.is_some()).map_or(first.command, |b| b.command))
    }

    /// A binding of `key` that would clash with a plugin on the given scopes.
    pub fn clash(&self, key: KeySpec, scopes: &[String]) -> Option<&Binding> {
        self.bindings.iter().find(|b| {
            b.key == key
                && match &b.scope {
                    None => true,
                    Some(s) => scopes.iter().any(|p| p == "all" || p == s),
                }
        })
    }

    pub fn keys_for(&self, command: Command) -> Vec<KeySpec> {
        self.bindings.iter().filter(|b| b.command == command).map(|b| b.key).collect()
    }

    /// The first key bound to `command`, for hints (`?` for help).
    pub fn hint(&self, command: Command) -> Option<String> {
        self.keys_for(command).first().map(ToString::to_string)
    }

    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_keys() {
        for (text, shown) in [
            ("j", "j"),
            ("G", "G"),
            ("shift-g", "G"),
            ("Shift-L", "L"),
            ("ctrl-d", "ctrl-d"),
            ("Ctrl-D", "ctrl-d"),
            ("esc", "esc"),
            ("F5", "f5"),
            ("space", "space"),
            ("alt-x", "alt-x"),
            ("-", "-"),
        ] {
            assert_eq!(KeySpec::parse(text).unwrap().to_string(), shown, "{text}");
        }
        assert!(KeySpec::parse("hyper-x").is_err());
        assert!(KeySpec::parse("f13").is_err());
        assert!(KeySpec::parse("").is_err());
    }

    #[test]
    fn terminal_shift_events_match_uppercase_bindings() {
        let keymap = Keymap::default();
        let event = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(keymap.command_for(KeySpec::from_event(&event), "overview"), Some(Command::Bottom));
        let event = KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL);
        assert_eq!(keymap.command_for(KeySpec::from_event(&event), "overview"), Some(Command::PageDown));
    }

    #[test]
    fn user_binding_replaces_the_default_on_that_key() {
        let raw = [RawBinding { on: "ctrl-r".into(), run: "quit".into(), scope: None }];
        let keymap = Keymap::with_overrides(&raw).unwrap();
        assert_eq!(keymap.command_for(KeySpec::parse("ctrl-r").unwrap(), "overview"), Some(Command::Quit));
        assert!(keymap.keys_for(Command::Refresh).is_empty());
    }

    #[test]
    fn unknown_command_is_named() {
        let raw = [RawBinding { on: "x".into(), run: "explode".into(), scope: None }];
        let err = Keymap::with_overrides(&raw).unwrap_err();
        assert!(err.contains("'explode'") && err.contains("quit"), "{err}");
    }

    #[test]
    fn scoped_bindings_apply_on_their_pane_only() {
        let keymap = Keymap::default();
        let s = KeySpec::parse("s").unwrap();
        assert_eq!(keymap.command_for(s, "images"), Some(Command::Scan));
        assert_eq!(keymap.command_for(s, "containers"), None);
        assert!(keymap.clash(s, &["containers".into()]).is_none());
        assert!(keymap.clash(s, &["all".into()]).is_some());
    }

    #[test]
    fn every_command_has_a_default_key() {
        let keymap = Keymap::default();
        for command in Command::ALL {
            assert!(!keymap.keys_for(*command).is_empty(), "{command:?} has no key");
        }
    }
}

//! Skins: YAML files of semantic style keys (`severity.critical`, `pane.border_focused` …),
//! in the spirit of k9s skins. Shipped skins live in `themes/`; a user skin in
//! `~/.config/picket/themes/NAME.yaml` with the same name wins. Every skin is applied over its
//! `base` (default: `dark`), so a user skin only lists what it changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use super::{ConfigError, parse_yaml, read_file};

pub const DEFAULT: &str = "dark";

/// The skins compiled into the binary, by name.
pub const SHIPPED: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.yaml")),
    ("light", include_str!("../../themes/light.yaml")),
    ("high-contrast", include_str!("../../themes/high-contrast.yaml")),
];

/// A semantic style slot. Panes ask for a slot, never for a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    App,
    Header,
    HeaderAccent,
    PaneBorder,
    PaneBorderFocused,
    PaneTitle,
    TableHeader,
    TableRow,
    TableSelected,
    Label,
    Value,
    Dim,
    FooterKey,
    FooterDesc,
    Prompt,
    Suggestion,
    ToastInfo,
    ToastError,
    StatusOk,
    StatusWarn,
    StatusError,
    SeverityCritical,
    SeverityHigh,
    SeverityMedium,
    SeverityLow,
    SeverityUnknown,
}

/// The YAML key of every slot, in the order of [`Slot`].
pub const SLOT_KEYS: &[(Slot, &str)] = &[
    (Slot::App, "app"),
    (Slot::Header, "header"),
    (Slot::HeaderAccent, "header.accent"),
    (Slot::PaneBorder, "pane.border"),
    (Slot::PaneBorderFocused, "pane.border_focused"),
    (Slot::PaneTitle, "pane.title"),
    (Slot::TableHeader, "table.header"),
    (Slot::TableRow, "table.row"),
    (Slot::TableSelected, "table.selected"),
    (Slot::Label, "text.label"),
    (Slot::Value, "text.value"),
    (Slot::Dim, "text.dim"),
    (Slot::FooterKey, "footer.key"),
    (Slot::FooterDesc, "footer.desc"),
    (Slot::Prompt, "prompt"),
    (Slot::Suggestion, "prompt.suggestion"),
    (Slot::ToastInfo, "toast.info"),
    (Slot::ToastError, "toast.error"),
    (Slot::StatusOk, "status.ok"),
    (Slot::StatusWarn, "status.warn"),
    (Slot::StatusError, "status.error"),
    (Slot::SeverityCritical, "severity.critical"),
    (Slot::SeverityHigh, "severity.high"),
    (Slot::SeverityMedium, "severity.medium"),
    (Slot::SeverityLow, "severity.low"),
    (Slot::SeverityUnknown, "severity.unknown"),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    styles: Vec<Style>,
}

impl Theme {
    pub fn style(&self, slot: Slot) -> Style {
        self.styles.get(slot as usize).copied().unwrap_or_default()
    }

    /// Finds `name` (user skin first, then shipped) or reads it as a path when it ends in `.yaml`.
    pub fn load(name: &str, config_dir: &Path, no_color: bool) -> Result<Self, ConfigError> {
        let mut chain = Vec::new();
        let mut next = Some(name.to_string());
        while let Some(current) = next.take() {
            if chain.iter().any(|(n, _, _): &(String, PathBuf, RawTheme)| n == &current) {
                return Err(ConfigError::invalid(&chain[0].1, format!("theme base cycle at '{current}'")));
            }
            let (path, text) = locate(&current, config_dir)?;
            let raw: RawTheme = parse_yaml(&path, &text)?;
            next = match &raw.base {
                Some(base) => Some(base.clone()),
                None if current != DEFAULT => Some(DEFAULT.to_string()),
                None => None,
            };
            chain.push((current, path, raw));
        }
        let mut styles = vec![Style::default(); SLOT_KEYS.len()];
        for (_, path, raw) in chain.iter().rev() {
            apply(&mut styles, path, raw)?;
        }
        let mut theme = Self { name: name.to_string(), styles };
        if no_color {
            theme.strip_colors();
        }
        Ok(theme)
    }

    /// For `NO_COLOR`: no foreground or background colours; modifiers stay, and the selection is
    /// shown reversed so it remains visible.
    fn strip_colors(&mut self) {
        for style in &mut self.styles {
            let modifiers = style.add_modifier;
            *style = Style::default().add_modifier(modifiers);
        }
        self.styles[Slot::TableSelected as usize] = Style::default().add_modifier(Modifier::REVERSED);
        self.styles[Slot::Header as usize] = Style::default().add_modifier(Modifier::REVERSED);
    }

    /// The names of every skin that `load` can find.
    pub fn available(config_dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = SHIPPED.iter().map(|(n, _)| (*n).to_string()).collect();
        if let Ok(entries) = std::fs::read_dir(config_dir.join("themes")) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "yaml")
                    && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                    && !names.iter().any(|n| n == stem)
                {
                    names.push(stem.to_string());
                }
            }
        }
        names
    }
}

fn locate(name: &str, config_dir: &Path) -> Result<(PathBuf, String), ConfigError> {
    if name.ends_with(".yaml") || name.contains('/') {
        let path = PathBuf::from(name);
        return Ok((path.clone(), read_file(&path)?));
    }
    let user = config_dir.join("themes").join(format!("{name}.yaml"));
    if user.is_file() {
        return Ok((user.clone(), read_file(&user)?));
    }
    match SHIPPED.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => Ok((PathBuf::from(format!("themes/{name}.yaml (built in)")), (*text).to_string())),
        None => Err(ConfigError::invalid(
            &user,
            format!("no theme '{name}'; available: {}", Theme::available(config_dir).join(", ")),
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    /// Display name; the file name is what selects a skin.
    #[allow(dead_code)]
    name: Option<String>,
    base: Option<String>,
    #[serde(default)]
    styles: BTreeMap<String, RawStyle>,
}

/// `severity.critical: red` (a colour is a foreground) or the full form.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawStyle {
    Color(String),
    Full(FullStyle),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FullStyle {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    dim: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reversed: bool,
}

fn apply(styles: &mut [Style], path: &Path, raw: &RawTheme) -> Result<(), ConfigError> {
    for (key, value) in &raw.styles {
        let Some((slot, _)) = SLOT_KEYS.iter().find(|(_, k)| k == key) else {
            let known: Vec<&str> = SLOT_KEYS.iter().map(|(_, k)| *k).collect();
            return Err(ConfigError::invalid(
                path,
                format!("unknown style key '{key}'; known keys: {}", known.join(", ")),
            ));
        };
        styles[*slot as usize] = to_style(value).map_err(|msg| ConfigError::invalid(path, format!("{key}: {msg}")))?;
    }
    Ok(())
}

fn to_style(raw: &RawStyle) -> Result<Style, String> {
    let full;
    let spec = match raw {
        RawStyle::Color(color) => {
            full = FullStyle { fg: Some(color.clone()), ..FullStyle::default() };
            &full
        }
        RawStyle::Full(spec) => spec,
    };
    let mut style = Style::default();
    if let Some(fg) = &spec.fg {
        style = style.fg(color(fg)?);
    }
    if let Some(bg) = &spec.bg {
        style = style.bg(color(bg)?);
    }
    for (on, modifier) in [
        (spec.bold, Modifier::BOLD),
        (spec.dim, Modifier::DIM),
        (spec.italic, Modifier::ITALIC),
        (spec.underline, Modifier::UNDERLINED),
        (spec.reversed, Modifier::REVERSED),
    ] {
        if on {
            style = style.add_modifier(modifier);
        }
    }
    Ok(style)
}

fn color(text: &str) -> Result<Color, String> {
    Color::from_str(text).map_err(|_| format!("'{text}' is not a colour (a name like red, #rrggbb or 0-255)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_theme_parses_and_dark_sets_every_slot() {
        let tmp = tempfile::tempdir().unwrap();
        for (name, text) in SHIPPED {
            let theme = Theme::load(name, tmp.path(), false).unwrap();
            assert_eq!(&theme.name, name);
            let raw: RawTheme = parse_yaml(Path::new(name), text).unwrap();
            for key in raw.styles.keys() {
                assert!(SLOT_KEYS.iter().any(|(_, k)| k == key), "{name}: {key}");
            }
        }
        let raw: RawTheme = parse_yaml(Path::new("dark"), SHIPPED[0].1).unwrap();
        for (_, key) in SLOT_KEYS {
            assert!(raw.styles.contains_key(*key), "dark.yaml lacks {key}");
        }
    }

    #[test]
    fn slot_keys_follow_slot_order() {
        for (index, (slot, _)) in SLOT_KEYS.iter().enumerate() {
            assert_eq!(*slot as usize, index);
        }
    }

    #[test]
    fn user_skin_overrides_its_base() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("themes")).unwrap();
        std::fs::write(
            tmp.path().join("themes/mine.yaml"),
            "base: light\nstyles:\n  severity.critical: { fg: '#ff0000', bold: true }\n",
        )
        .unwrap();
        let mine = Theme::load("mine", tmp.path(), false).unwrap();
        let light = Theme::load("light", tmp.path(), false).unwrap();
        assert_eq!(mine.style(Slot::SeverityCritical), Style::default().fg(Color::Rgb(255, 0, 0)).bold());
        assert_eq!(mine.style(Slot::TableSelected), light.style(Slot::TableSelected));
        assert!(Theme::available(tmp.path()).contains(&"mine".to_string()));
    }

    #[test]
    fn bad_colour_and_unknown_key_name_the_file_and_key() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("bad.yaml");
        std::fs::write(&path, "styles:\n  severity.high: not-a-colour\n").unwrap();
        let err = Theme::load(path.to_str().unwrap(), tmp.path(), false).unwrap_err().to_string();
        assert!(err.contains("bad.yaml") && err.contains("severity.high") && err.contains("'not-a-colour'"), "{err}");

        std::fs::write(&path, "styles:\n  severity.hihg: red\n").unwrap();
        let err = Theme::load(path.to_str().unwrap(), tmp.path(), false).unwrap_err().to_string();
        assert!(err.contains("'severity.hihg'"), "{err}");
    }

    #[test]
    fn base_cycle_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("themes")).unwrap();
        std::fs::write(tmp.path().join("themes/a.yaml"), "base: b\n").unwrap();
        std::fs::write(tmp.path().join("themes/b.yaml"), "base: a\n").unwrap();
        let err = Theme::load("a", tmp.path(), false).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");
    }

    #[test]
    fn no_color_removes_colours_but_keeps_selection_visible() {
        let tmp = tempfile::tempdir().unwrap();
        let theme = Theme::load("dark", tmp.path(), true).unwrap();
        for (slot, key) in SLOT_KEYS {
            let style = theme.style(*slot);
            assert!(style.fg.is_none() && style.bg.is_none(), "{key} keeps a colour");
        }
        assert!(theme.style(Slot::TableSelected).add_modifier.contains(Modifier::REVERSED));
    }
}

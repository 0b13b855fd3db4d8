//! Raw config file -> validated [`Config`].
//!
//! Precedence, lowest first: embedded defaults, `~/.config/picket/config.yaml` (or `--config`),
//! `PICKET_*` environment variables and command-line flags (both arrive through [`Overrides`]).

pub mod command;
pub mod keymap;
pub mod plugins;
pub mod theme;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::yaml::{YamlError, parse_yaml, read_file};
use serde::Deserialize;

pub use keymap::Keymap;
pub use plugins::Plugins;
pub use theme::Theme;

/// An error in a configuration file, theme or plugin file. Always names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error("{path}: {message}", path = .path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot find a home directory: set HOME, or pass --config and --data-dir")]
    NoHome,
}

impl ConfigError {
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        Self::Invalid { path: path.to_path_buf(), message: message.into() }
    }
}

/// What the command line and the environment say; each wins over the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub theme: Option<String>,
    pub context: Option<String>,
    /// `NO_COLOR` was set to a non-empty value (no-color.org).
    pub no_color: bool,
}

/// The file format of `config.yaml`. Unknown keys are errors, so typos do not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    theme: Option<String>,
    data_dir: Option<PathBuf>,
    context: Option<String>,
    /// Seconds between automatic refreshes of engine data; 0 turns it off.
    refresh_seconds: Option<u64>,
    /// Extra container engine API sockets to probe (`unix:///path` or a path).
    #[serde(default)]
    engines: Vec<String>,
    #[serde(default)]
    keymap: Vec<keymap::RawBinding>,
    #[serde(default)]
    scan: ScanSection,
    /// Registries to crawl (`picket registry scan`, the Registries pane).
    #[serde(default)]
    registries: Vec<crate::registry::RegistryTarget>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScanSection {
    #[serde(default)]
    limits: crate::scan::Limits,
}

/// Directories picket reads from; nothing is written there except the store under `data_dir`.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
}

impl Dirs {
    /// XDG locations: `$XDG_CONFIG_HOME/picket` and `$XDG_DATA_HOME/picket`.
    pub fn discover() -> Result<Self, ConfigError> {
        let dirs = directories::ProjectDirs::from("", "", "picket").ok_or(ConfigError::NoHome)?;
        Ok(Self { config_dir: dirs.config_dir().to_path_buf(), data_dir: dirs.data_dir().to_path_buf() })
    }
}

/// The validated configuration every part of picket reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file that was read, if any.
    pub source: Option<PathBuf>,
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub theme: Theme,
    pub context: Option<String>,
    pub refresh: Option<Duration>,
    pub engines: Vec<PathBuf>,
    pub keymap: Keymap,
    pub plugins: Plugins,
    /// Bounds on what an image may make picket read (hostile-input protection).
    pub scan_limits: crate::scan::Limits,
    /// The registries the config file names, checked.
    pub registries: Vec<crate::registry::RegistryTarget>,
}

const DEFAULT_REFRESH_SECONDS: u64 = 5;

impl Config {
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::load_with_dirs(overrides, Dirs::discover()?)
    }

    pub fn load_with_dirs(overrides: &Overrides, dirs: Dirs) -> Result<Self, ConfigError> {
        let default_file = dirs.config_dir.join("config.yaml");
        let (source, raw) = match &overrides.config {
            Some(path) => (Some(path.clone()), parse_yaml::<RawConfig>(path, &read_file(path)?)?),
            None if default_file.is_file() => {
                let raw = parse_yaml::<RawConfig>(&default_file, &read_file(&default_file)?)?;
                (Some(default_file.clone()), raw)
            }
            None => (None, RawConfig::default()),
        };
        let file_for_errors = source.clone().unwrap_or(default_file);

        let theme_name = overrides.theme.clone().or(raw.theme).unwrap_or_else(|| theme::DEFAULT.to_string());
        let theme = Theme::load(&theme_name, &dirs.config_dir, overrides.no_color)?;
        let keymap = Keymap::with_overrides(&raw.keymap).map_err(|msg| ConfigError::invalid(&file_for_errors, msg))?;
        let plugins = Plugins::load(&dirs.config_dir, &keymap)?;
        let engines = raw
            .engines
            .iter()
            .map(|spec| parse_engine_socket(spec).map_err(|msg| ConfigError::invalid(&file_for_errors, msg)))
            .collect::<Result<Vec<_>, _>>()?;
        let refresh_seconds = raw.refresh_seconds.unwrap_or(DEFAULT_REFRESH_SECONDS);
        let mut names = std::collections::BTreeSet::new();
        for (index, target) in raw.registries.iter().enumerate() {
            target
                .resolve()
                .map_err(|msg| ConfigError::invalid(&file_for_errors, format!("registries[{index}].{msg}")))?;
            if !names.insert(target.display_name()) {
                return Err(ConfigError::invalid(
                    &file_for_errors,
                    format!(
                        "registries[{index}]: a second registry named '{}' (give each a name:)",
                        target.display_name()
                    ),
                ));
            }
        }

        Ok(Self {
            source,
            config_dir: dirs.config_dir,
            data_dir: overrides.data_dir.clone().or(raw.data_dir).unwrap_or(dirs.data_dir),
            theme,
            context: overrides.context.clone().or(raw.context),
            refresh: (refresh_seconds > 0).then(|| Duration::from_secs(refresh_seconds)),
            engines,
            keymap,
            plugins,
            scan_limits: raw.scan.limits,
            registries: raw.registries,
        })
    }

    /// Where the store lives.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    /// The user's detection rules (`rules/*.yaml`), read by agents started here.
    pub fn rules_dir(&self) -> PathBuf {
        self.config_dir.join("rules")
    }
}

fn parse_engine_socket(spec: &str) -> Result<PathBuf, String> {
    let path = spec.strip_prefix("unix://").unwrap_or(spec);
    if path.is_empty() || !path.starts_with('/') {
        return Err(format!("engines: '{spec}' is not a unix socket; write an absolute path or unix:///path"));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(root: &Path) -> Dirs {
        Dirs { config_dir: root.join("config"), data_dir: root.join("data") }
    }

    fn write_config(root: &Path, text: &str) -> PathBuf {
        let path = root.join("config.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn no_file_gives_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let config = Config::load_with_dirs(&Overrides::default(), dirs(tmp.path())).unwrap();
        assert_eq!(config.source, None);
        assert_eq!(config.theme.name, "dark");
        assert_eq!(config.data_dir, tmp.path().join("data"));
        assert_eq!(config.refresh, Some(Duration::from_secs(5)));
        assert_eq!(config.store_path(), tmp.path().join("data/store"));
    }

    #[test]
    fn file_values_apply_and_overrides_win() {
        let tmp = tempfile::tempdir().unwrap();
        let path =
            write_config(tmp.path(), "theme: light\ncontext: prod\nrefreshSeconds: 0\nengines: [unix:///run/x.sock]\n");
        let overrides = Overrides { config: Some(path.clone()), ..Overrides::default() };
        let config = Config::load_with_dirs(&overrides, dirs(tmp.path())).unwrap();
        assert_eq!(config.source, Some(path.clone()));
        assert_eq!(config.theme.name, "light");
        assert_eq!(config.context.as_deref(), Some("prod"));
        assert_eq!(config.refresh, None);
        assert_eq!(config.engines, vec![PathBuf::from("/run/x.sock")]);

        let overrides = Overrides {
            config: Some(path),
            theme: Some("high-contrast".into()),
            context: Some("dev".into()),
            data_dir: Some(tmp.path().join("elsewhere")),
            no_color: false,
        };
        let config = Config::load_with_dirs(&overrides, dirs(tmp.path())).unwrap();
        assert_eq!(config.theme.name, "high-contrast");
        assert_eq!(config.context.as_deref(), Some("dev"));
        assert_eq!(config.data_dir, tmp.path().join("elsewhere"));
    }

    #[test]
    fn syntax_error_names_file_line_and_column() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write_config(tmp.path(), "theme: dark\ncontext: [unclosed\n");
        let overrides = Overrides { config: Some(path.clone()), ..Overrides::default() };
        let err = Config::load_with_dirs(&overrides, dirs(tmp.path())).unwrap_err();
        let ConfigError::Yaml(YamlError::Parse { path: p, line, .. }) = &err else { panic!("wrong error: {err}") };
        assert_eq!(p, &path);
        assert!(*line >= 2, "line {line} should point at or after the unclosed list");
        assert!(err.to_string().starts_with(&format!("{}:", path.display())));
    }

    #[test]
    fn unknown_key_is_an_error_with_its_position() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write_config(tmp.path(), "theme: dark\nthemme: light\n");
        let overrides = Overrides { config: Some(path), ..Overrides::default() };
        let err = Config::load_with_dirs(&overrides, dirs(tmp.path())).unwrap_err().to_string();
        assert!(err.contains(":2:"), "{err}");
        assert!(err.contains("themme"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write_config(tmp.path(), "refreshSeconds: soon\n");
        let overrides = Overrides { config: Some(path), ..Overrides::default() };
        let err = Config::load_with_dirs(&overrides, dirs(tmp.path())).unwrap_err().to_string();
        assert!(err.contains(":1:"), "{err}");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let overrides = Overrides { config: Some(tmp.path().join("nope.yaml")), ..Overrides::default() };
        let err = Config::load_with_dirs(&overrides, dirs(tmp.path())).unwrap_err().to_string();
        assert!(err.starts_with("cannot read ") && err.contains("nope.yaml"), "{err}");
    }

    #[test]
    fn unknown_theme_lists_the_available_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let overrides = Overrides { theme: Some("neon".into()), ..Overrides::default() };
        let err = Config::load_with_dirs(&overrides, dirs(tmp.path())).unwrap_err().to_string();
        assert!(err.contains("'neon'") && err.contains("dark") && err.contains("light"), "{err}");
    }

    #[test]
    fn relative_engine_socket_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write_config(tmp.path(), "engines: [docker.sock]\n");
        let overrides = Overrides { config: Some(path), ..Overrides::default() };
        let err = Config::load_with_dirs(&overrides, dirs(tmp.path())).unwrap_err().to_string();
        assert!(err.contains("'docker.sock'"), "{err}");
    }

    #[test]
    fn scan_limits_are_configurable_and_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write_config(tmp.path(), "scan:\n  limits:\n    maxEntryBytes: 1024\n");
        let overrides = Overrides { config: Some(path), ..Overrides::default() };
        let config = Config::load_with_dirs(&overrides, dirs(tmp.path())).unwrap();
        assert_eq!(config.scan_limits.max_entry_bytes, 1024);
        assert_eq!(config.scan_limits.max_entries, crate::scan::Limits::default().max_entries);
        let path = write_config(tmp.path(), "scan:\n  limits:\n    maxEntryByte: 1024\n");
        let overrides = Overrides { config: Some(path), ..Overrides::default() };
        let err = Config::load_with_dirs(&overrides, dirs(tmp.path())).unwrap_err().to_string();
        assert!(err.contains(":3:") && err.contains("maxEntryByte"), "{err}");
    }

    #[test]
    fn comment_only_file_is_empty_config() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write_config(tmp.path(), "# nothing yet\n\n");
        let overrides = Overrides { config: Some(path), ..Overrides::default() };
        assert!(Config::load_with_dirs(&overrides, dirs(tmp.path())).is_ok());
    }
}

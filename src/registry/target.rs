//! A registry to crawl: where it is, how to reach it, and which repositories, tags and platforms
//! of it to keep scanned. Written in `config.yaml` (`registries:`) or added with
//! `picket registry add` (kept in the store); both read the same way.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::RegistryOptions;
use crate::oci::Platform;

/// How many manifests and images a crawl works on at once, unless the target says.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The most a target may ask for: the registry is someone's server.
pub const MAX_CONCURRENCY: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryTarget {
    /// What picket calls it (default: its host).
    #[serde(default)]
    pub name: String,
    /// `host[:port]`, or `https://host[:port]`; `http://` means plain HTTP (insecure).
    pub url: String,
    /// Accept plain HTTP and unverified TLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// A PEM CA to trust for this registry, besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// A docker `config.json` (or containers `auth.json`) to take credentials from, instead of
    /// the usual places.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_file: Option<PathBuf>,
    /// Repositories to crawl (globs, or `re:REGEX`); none means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_repositories: Vec<String>,
    /// Tags to scan (globs, or `re:REGEX`); none means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_tags: Vec<String>,
    /// Only the newest N tags of each repository, by the image's creation time (the
    /// distribution API does not say when a tag was pushed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tags: Option<usize>,
    /// Platforms of multi-platform images to scan (default: the one picket runs on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// Manifests and images worked on at once (default 4, at most 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// How often `picket registry scan --watch` crawls it (`30m`, `6h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
}

/// One filter entry: a glob (`*` any run of characters) or a regular expression.
#[derive(Debug, Clone)]
enum Pattern {
    Glob(String),
    Regex(regex::Regex),
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, String> {
        match text.strip_prefix("re:") {
            Some(re) => regex::Regex::new(&format!("^(?:{re})$"))
                .map(Self::Regex)
                .map_err(|e| format!("'{text}' is not a regular expression: {e}")),
            None if text.is_empty() => Err("an empty filter matches nothing; leave the list out for all".into()),
            None => Ok(Self::Glob(text.to_string())),
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Glob(glob) => crate::rules::glob_match(glob, name),
            Self::Regex(re) => re.is_match(name),
        }
    }
}

/// Include and exclude lists, compiled.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl Filter {
    fn new(include: &[String], exclude: &[String]) -> Result<Self, String> {
        let parse = |list: &[String]| list.iter().map(|p| Pattern::parse(p)).collect::<Result<Vec<_>, _>>();
        Ok(Self { include: parse(include)?, exclude: parse(exclude)? })
    }

    /// The include entries that name one thing outright (no `*`, no regex).
    pub fn literals(&self) -> Vec<String> {
        match self.include.iter().all(|p| matches!(p, Pattern::Glob(g) if !g.contains('*'))) {
            true => self
                .include
                .iter()
                .filter_map(|p| match p {
                    Pattern::Glob(g) => Some(g.clone()),
                    Pattern::Regex(_) => None,
                })
                .collect(),
            false => Vec::new(),
        }
    }

    pub fn accepts(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.matches(name)))
            && !self.exclude.iter().any(|p| p.matches(name))
    }
}

/// A target checked and ready to crawl.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    /// The registry as image references write it (`localhost:5000`).
    pub registry: String,
    pub options: RegistryOptions,
    pub repositories: Filter,
    pub tags: Filter,
    pub last_tags: Option<usize>,
    pub platforms: Vec<Platform>,
    pub concurrency: usize,
    pub every: Option<Duration>,
}

impl RegistryTarget {
    /// A target for `url` with everything else at its default.
    pub fn new(url: &str) -> Self {
        Self {
            name: String::new(),
            url: url.to_string(),
            insecure: false,
            ca: None,
            auth_file: None,
            repositories: Vec::new(),
            exclude_repositories: Vec::new(),
            tags: Vec::new(),
            exclude_tags: Vec::new(),
            last_tags: None,
            platforms: Vec::new(),
            concurrency: None,
            every: None,
        }
    }

    /// The name, or the host when none was given.
    pub fn display_name(&self) -> String {
        match self.name.is_empty() {
            true => host_of(&self.url).0.to_string(),
            false => self.name.clone(),
        }
    }

    /// Checks every field; the message names the field.
    pub fn resolve(&self) -> Result<Resolved, String> {
        let (registry, plain_http) = host_of(&self.url);
        if registry.is_empty() || registry.contains('/') || registry.contains(char::is_whitespace) {
            return Err(format!(
                "url: '{}' is not a registry (write host[:port] or https://host[:port], with no path)",
                self.url
            ));
        }
        let field = |name: &'static str| move |e: String| format!("{name}: {e}");
        let platforms = match self.platforms.is_empty() {
            true => vec![Platform::host()],
            false => self
                .platforms
                .iter()
                .map(|p| Platform::parse(p))
                .collect::<Result<_, _>>()
                .map_err(field("platforms"))?,
        };
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 || concurrency > MAX_CONCURRENCY {
            return Err(format!("concurrency: {concurrency} is not between 1 and {MAX_CONCURRENCY}"));
        }
        if self.last_tags == Some(0) {
            return Err("lastTags: 0 would scan nothing; leave it out for every tag".into());
        }
        let every = self.every.as_deref().map(parse_interval).transpose().map_err(field("every"))?;
        let auth_files = self.auth_file.clone().map(|file| vec![file]);
        Ok(Resolved {
            name: self.display_name(),
            registry: registry.to_string(),
            options: RegistryOptions { insecure: self.insecure || plain_http, ca_file: self.ca.clone(), auth_files },
            repositories: Filter::new(&self.repositories, &self.exclude_repositories).map_err(field("repositories"))?,
            tags: Filter::new(&self.tags, &self.exclude_tags).map_err(field("tags"))?,
            last_tags: self.last_tags,
            platforms,
            concurrency,
            every,
        })
    }
}

/// The host of a registry URL, and whether it asked for plain HTTP.
fn host_of(url: &str) -> (&str, bool) {
    let url = url.trim_end_matches('/');
    match url.strip_prefix("http://") {
        Some(host) => (host, true),
        None => (url.strip_prefix("https://").unwrap_or(url), false),
    }
}

/// `90s`, `30m`, `6h`, `1d`, or any span jiff reads (`1h 30m`); at least ten seconds.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let span: jiff::SignedDuration =
        text.trim().parse().map_err(|e| format!("'{text}' is not an interval such as 30m or 6h: {e}"))?;
    let duration = Duration::try_from(span).map_err(|_| format!("'{text}' is negative"))?;
    if duration < Duration::from_secs(10) {
        return Err(format!("'{text}' is shorter than ten seconds"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_globs_and_regexes_and_exclusions() {
        let filter = Filter::new(&["team/*".into(), "re:base-[0-9]+".into()], &["team/tmp-*".into()]).unwrap();
        assert!(filter.accepts("team/api"));
        assert!(filter.accepts("base-12"));
        assert!(!filter.accepts("base-12x"), "a regex matches the whole name");
        assert!(!filter.accepts("team/tmp-1"));
        assert!(!filter.accepts("other"));
        assert!(Filter::default().accepts("anything"));
        assert!(Filter::new(&["re:(".into()], &[]).unwrap_err().contains("not a regular expression"));
    }

    #[test]
    fn targets_are_checked_field_by_field() {
        let mut target = RegistryTarget::new("http://127.0.0.1:5000/");
        let resolved = target.resolve().unwrap();
        assert_eq!((resolved.registry.as_str(), resolved.options.insecure), ("127.0.0.1:5000", true));
        assert_eq!(resolved.name, "127.0.0.1:5000");
        assert_eq!(resolved.platforms, vec![Platform::host()]);
        target.concurrency = Some(0);
        assert!(target.resolve().unwrap_err().starts_with("concurrency:"));
        target.concurrency = None;
        target.platforms = vec!["linux".into()];
        assert!(target.resolve().unwrap_err().starts_with("platforms:"));
        target.platforms = vec![];
        target.every = Some("5s".into());
        assert!(target.resolve().unwrap_err().contains("ten seconds"));
        target.every = Some("1h 30m".into());
        assert_eq!(target.resolve().unwrap().every, Some(Duration::from_secs(5400)));
        assert!(RegistryTarget::new("https://r.example/v2/x").resolve().unwrap_err().starts_with("url:"));
    }
}

//! Domain types shared by capabilities and the TUI.

use std::collections::BTreeMap;

mod finding;
mod sbom;
pub use finding::{Cvss, Finding, FindingKind, FindingPackage, FixState, Severity, optional_severity};
pub use sbom::{SBOM_FORMAT_VERSION, Sbom, SbomSource};

/// The parsed `os-release` file (`/etc/os-release` or `/usr/lib/os-release`), as in os-release(5).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OsRelease {
    fields: BTreeMap<String, String>,
}

impl OsRelease {
    /// Parses the shell-like `KEY=value` lines; quotes and backslash escapes are removed, comments
    /// and malformed lines are skipped (the format allows no more than that).
    pub fn parse(text: &str) -> Self {
        let mut fields = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, raw)) = line.split_once('=') else {
                continue;
            };
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            fields.insert(key.to_string(), unquote(raw.trim()));
        }
        Self { fields }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// `ID`, e.g. `debian`.
    pub fn id(&self) -> Option<&str> {
        self.get("ID")
    }

    pub fn version_id(&self) -> Option<&str> {
        self.get("VERSION_ID")
    }

    /// `PRETTY_NAME`, falling back to `NAME VERSION`, then `Linux` as os-release(5) prescribes.
    pub fn pretty_name(&self) -> String {
        if let Some(pretty) = self.get("PRETTY_NAME") {
            return pretty.to_string();
        }
        match (self.get("NAME"), self.get("VERSION")) {
            (Some(name), Some(version)) => format!("{name} {version}"),
            (Some(name), None) => name.to_string(),
            _ => "Linux".to_string(),
        }
    }
}

fn unquote(raw: &str) -> String {
    let quoted = raw.len() >= 2
        && ((raw.starts_with('"') && raw.ends_with('"')) || (raw.starts_with('\'') && raw.ends_with('\'')));
    let inner = if quoted { &raw[1..raw.len() - 1] } else { raw };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Formats a byte count with binary units (`1.5 GiB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// Formats a duration in seconds the way k9s shows ages: `42s`, `5m`, `3h12m`, `4d2h`.
pub fn human_age(seconds: u64) -> String {
    let (d, h, m) = (seconds / 86_400, (seconds % 86_400) / 3600, (seconds % 3600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_os_release() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
                    VERSION_ID=\"12\"\nID=debian\n# comment\nbroken line\n";
        let os = OsRelease::parse(text);
        assert_eq!(os.pretty_name(), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os.id(), Some("debian"));
        assert_eq!(os.version_id(), Some("12"));
        assert_eq!(os.get("broken line"), None);
    }

    #[test]
    fn unquotes_single_quotes_and_escapes() {
        let os = OsRelease::parse("NAME='Alpine Linux'\nVERSION=\"3.19 \\\"edge\\\"\"\n");
        assert_eq!(os.pretty_name(), "Alpine Linux 3.19 \"edge\"");
    }

    #[test]
    fn falls_back_to_linux() {
        assert_eq!(OsRelease::parse("").pretty_name(), "Linux");
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(24 * 1024 * 1024 * 1024), "24.0 GiB");
        assert_eq!(human_age(59), "59s");
        assert_eq!(human_age(3 * 3600 + 12 * 60), "3h12m");
        assert_eq!(human_age(2 * 86_400 + 3600), "2d1h");
    }
}

/// A package ecosystem, named as OSV names it (`Debian`, `PyPI`, `npm` …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Ecosystem {
    Debian,
    Ubuntu,
    Alpine,
    Wolfi,
    RedHat,
    PyPI,
    #[serde(rename = "npm")]
    Npm,
    #[serde(rename = "crates.io")]
    CratesIo,
    Go,
    Maven,
    RubyGems,
    Packagist,
    NuGet,
}

impl Ecosystem {
    /// The OSV ecosystem name (without a release suffix such as `:12`).
    pub fn osv_name(self) -> &'static str {
        match self {
            Self::Debian => "Debian",
            Self::Ubuntu => "Ubuntu",
            Self::Alpine => "Alpine",
            Self::Wolfi => "Wolfi",
            Self::RedHat => "Red Hat",
            Self::PyPI => "PyPI",
            Self::Npm => "npm",
            Self::CratesIo => "crates.io",
            Self::Go => "Go",
            Self::Maven => "Maven",
            Self::RubyGems => "RubyGems",
            Self::Packagist => "Packagist",
            Self::NuGet => "NuGet",
        }
    }

    /// Packages of the operating system rather than of an application language.
    pub fn is_os(self) -> bool {
        matches!(self, Self::Debian | Self::Ubuntu | Self::Alpine | Self::Wolfi | Self::RedHat)
    }
}

impl std::fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.osv_name())
    }
}

/// Where a package was found: the layer (its diff id) that last wrote the file, and the path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    pub path: String,
}

/// The source package an OS binary package was built from (dpkg `Source:`, apk origin).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourcePackage {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub ecosystem: Ecosystem,
    pub purl: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePackage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    pub locations: Vec<Location>,
    /// Its programs and shared objects as its package database (or its own location, for a
    /// binary) lists them: the files a process executes or maps, which the agent sees in use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// The cataloger that found it.
    pub cataloger: String,
}

/// The operating system of a scanned filesystem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Distro {
    /// os-release `ID`: debian, ubuntu, alpine, rhel, amzn, wolfi …
    pub id: String,
    pub version_id: String,
    pub pretty_name: String,
}

//! Lock files and dependency manifests of projects, read for directory scans (a source tree or a
//! build context), where they say what a build will install: Cargo.lock, package-lock.json
//! (v1–v3), yarn.lock (v1 and berry), pnpm-lock.yaml, composer.lock, requirements*.txt (pinned
//! lines), poetry.lock, Pipfile.lock and go.mod.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{CatalogOutput, Cataloger, each_file, purl};
use crate::model::{Distro, Ecosystem, Package};
use crate::scan::vfs::VirtualFs;

/// A cataloger that parses each file it wants on its own: `parse(fs, path, text, cataloger)`.
macro_rules! file_cataloger {
    ($ty:ident, $name:literal, $version:literal, directory_only: $directory_only:literal, |$path:ident| $wants:expr, $parse:ident $(,)?) => {
        pub struct $ty;

        impl Cataloger for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn version(&self) -> u32 {
                $version
            }
            fn directory_only(&self) -> bool {
                $directory_only
            }
            fn wants(&self, $path: &str) -> bool {
                $wants
            }
            fn catalog(&self, fs: &VirtualFs, _distro: Option<&Distro>) -> CatalogOutput {
                each_file(fs, |p| self.wants(p), |path, text| $parse(fs, path, text, $name))
            }
        }
    };
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn package(
    name: &str,
    version: &str,
    ecosystem: Ecosystem,
    purl: String,
    fs: &VirtualFs,
    path: &str,
    cataloger: &str,
) -> Package {
    Package {
        name: name.to_string(),
        version: version.to_string(),
        ecosystem,
        purl,
        source: None,
        licenses: Vec::new(),
        locations: vec![fs.location(path)],
        files: Vec::new(),
        cataloger: cataloger.to_string(),
    }
}

#[derive(Deserialize)]
struct CargoLock {
    #[serde(default)]
    package: Vec<CargoLockPackage>,
}

#[derive(Deserialize)]
struct CargoLockPackage {
    name: String,
    version: String,
}

file_cataloger!(CargoLockCataloger, "cargo-lock", 1, directory_only: true, |path| file_name(path) == "Cargo.lock", parse_cargo_lock);

fn parse_cargo_lock(fs: &VirtualFs, path: &str, text: &str, cataloger: &str) -> Result<Vec<Package>, String> {
    let lock: CargoLock = toml::from_str(text).map_err(|e| format!("not a Cargo.lock: {e}"))?;
    Ok(lock
        .package
        .iter()
        .map(|p| {
            package(
                &p.name,
                &p.version,
                Ecosystem::CratesIo,
                purl("cargo", None, &p.name, &p.version, &[]),
                fs,
                path,
                cataloger,
            )
        })
        .collect())
}

#[derive(Deserialize)]
struct NpmLock {
    #[serde(rename = "lockfileVersion", default)]
    lockfile_version: u32,
    #[serde(default)]
    packages: BTreeMap<String, NpmLockEntry>,
    #[serde(default)]
    dependencies: BTreeMap<String, NpmLockV1>,
}

#[derive(Deserialize)]
struct NpmLockEntry {
    name: Option<String>,
    version: Option<String>,
    #[serde(default)]
    link: bool,
}

#[derive(Deserialize)]
struct NpmLockV1 {
    version: Option<String>,
    #[serde(default)]
    dependencies: BTreeMap<String, NpmLockV1>,
}

fn npm_package(name: &str, version: &str, fs: &VirtualFs, path: &str, cataloger: &str) -> Package {
    let (namespace, short) = match name.split_once('/') {
        Some((scope, rest)) if scope.starts_with('@') => (Some(scope), rest),
        _ => (None, name),
    };
    package(name, version, Ecosystem::Npm, purl("npm", namespace, short, version, &[]), fs, path, cataloger)
}

fn npm_v1(deps: &BTreeMap<String, NpmLockV1>, fs: &VirtualFs, path: &str, out: &mut Vec<Package>) {
    for (name, dep) in deps {
        if let Some(version) = dep.version.as_deref().filter(|v| !v.contains(':')) {
            out.push(npm_package(name, version, fs, path, "npm-lock"));
        }
        npm_v1(&dep.dependencies, fs, path, out);
    }
}

file_cataloger!(NpmLockCataloger, "npm-lock", 1, directory_only: true, |path| file_name(path) == "package-lock.json" && !path.contains("node_modules/"), parse_npm_lock);

fn parse_npm_lock(fs: &VirtualFs, path: &str, text: &str, cataloger: &str) -> Result<Vec<Package>, String> {
    let lock: NpmLock = serde_json::from_str(text).map_err(|e| format!("not a package-lock.json: {e}"))?;
    let mut packages = Vec::new();
    if lock.lockfile_version >= 2 {
        for (key, entry) in &lock.packages {
            // Links point at workspace folders; "" is the project itself, listed
            // (as its package.json would be) when it has a name.
            if entry.link || (key.is_empty() && entry.name.is_none()) {
                continue;
            }
            let name =
                entry.name.clone().unwrap_or_else(|| key.rsplit("node_modules/").next().unwrap_or(key).to_string());
            if let Some(version) = &entry.version {
                packages.push(npm_package(&name, version, fs, path, cataloger));
            }
        }
    } else {
        npm_v1(&lock.dependencies, fs, path, &mut packages);
    }
    Ok(packages)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ComposerFile {
    Lock {
        #[serde(default)]
        packages: Vec<ComposerPackage>,
    },
    /// Composer 1's installed.json is a bare list.
    List(Vec<ComposerPackage>),
}

#[derive(Deserialize)]
struct ComposerPackage {
    name: String,
    version: String,
    #[serde(default)]
    license: Vec<String>,
}

file_cataloger!(ComposerCataloger, "php-composer", 1, directory_only: false, |path| path.ends_with("vendor/composer/installed.json") || file_name(path) == "composer.lock", parse_composer);

fn parse_composer(fs: &VirtualFs, path: &str, text: &str, cataloger: &str) -> Result<Vec<Package>, String> {
    let file: ComposerFile = serde_json::from_str(text).map_err(|e| format!("not a Composer file: {e}"))?;
    let list = match file {
        // packages-dev is left out: development dependencies do not ship.
        ComposerFile::Lock { packages } => packages,
        ComposerFile::List(list) => list,
    };
    Ok(list
        .into_iter()
        .map(|p| {
            let (vendor, name) = p.name.split_once('/').unwrap_or(("", &p.name));
            let mut pkg = package(
                &p.name,
                &p.version,
                Ecosystem::Packagist,
                purl("composer", Some(vendor), name, &p.version, &[]),
                fs,
                path,
                cataloger,
            );
            pkg.licenses = p.license.clone();
            pkg
        })
        .collect())
}

#[derive(Deserialize)]
struct DepsJson {
    #[serde(default)]
    libraries: BTreeMap<String, DepsLibrary>,
}

#[derive(Deserialize)]
struct DepsLibrary {
    #[serde(rename = "type")]
    kind: String,
}

file_cataloger!(DotnetDepsCataloger, "dotnet-deps", 1, directory_only: false, |path| path.ends_with(".deps.json"), parse_dotnet_deps);

fn parse_dotnet_deps(fs: &VirtualFs, path: &str, text: &str, cataloger: &str) -> Result<Vec<Package>, String> {
    let deps: DepsJson = serde_json::from_str(text).map_err(|e| format!("not a .deps.json: {e}"))?;
    Ok(deps
        .libraries
        .iter()
        // Packages from NuGet, and the projects of the application itself (as Syft lists them).
        .filter(|(_, lib)| lib.kind == "package" || lib.kind == "project")
        .filter_map(|(key, _)| key.split_once('/'))
        .map(|(name, version)| {
            package(name, version, Ecosystem::NuGet, purl("nuget", None, name, version, &[]), fs, path, cataloger)
        })
        .collect())
}

file_cataloger!(RequirementsCataloger, "python-requirements", 1, directory_only: true, |path| {
    let name = file_name(path);
    name.starts_with("requirements") && name.ends_with(".txt")
}, parse_requirements);

fn parse_requirements(fs: &VirtualFs, path: &str, text: &str, cataloger: &str) -> Result<Vec<Package>, String> {
    let mut packages = Vec::new();
    for line in text.lines() {
        // Comments, options (-r, -e, --hash on continuation lines) and markers are not versions.
        let line = line.split(" #").next().unwrap_or_default().split(';').next().unwrap_or_default().trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
            continue;
        }
        let Some((name, version)) = line.split_once("==") else { continue };
        let name = name.split('[').next().unwrap_or(name).trim();
        let version = version.split_whitespace().next().unwrap_or_default().trim_end_matches('\\');
        if name.is_empty() || version.is_empty() || version.contains('*') {
            continue;
        }
        let purl_name = super::python::normalise(name);
        packages.push(package(
            name,
            version,
            Ecosystem::PyPI,
            purl("pypi", None, &purl_name, version, &[]),
            fs,
            path,
            cataloger,
        ));
    }
    Ok(packages)
}

file_cataloger!(GoModCataloger, "go-mod", 1, directory_only: true, |path| file_name(path) == "go.mod", parse_go_mod);

fn parse_go_mod(fs: &VirtualFs, path: &str, text: &str, cataloger: &str) -> Result<Vec<Package>, String> {
    let mut required: Vec<(String, String)> = Vec::new();
    let mut replaced: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut block: Option<&str> = None;
    for raw in text.lines() {
        let line = raw.split("//").next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        if line == ")" {
            block = None;
            continue;
        }
        let (directive, rest) = match block {
            Some(directive) => (directive, line),
            None => match line.split_once(char::is_whitespace) {
                Some((directive, rest)) if rest.trim() == "(" => {
                    block = Some(if directive == "require" {
                        "require"
                    } else if directive == "replace" {
                        "replace"
                    } else {
                        "other"
                    });
                    continue;
                }
                Some((directive, rest)) => (directive, rest.trim()),
                None => continue,
            },
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        match (directive, words.as_slice()) {
            ("require", [module, version, ..]) => required.push(((*module).to_string(), (*version).to_string())),
            ("replace", [old, .., "=>", new, version]) => {
                replaced.insert((*old).to_string(), ((*new).to_string(), (*version).to_string()));
            }
            _ => {}
        }
    }
    Ok(required
        .into_iter()
        .map(|(module, version)| replaced.get(&module).cloned().unwrap_or((module, version)))
        .map(|(module, version)| {
            let purl = match module.rsplit_once('/') {
                Some((ns, name)) => purl("golang", Some(ns), name, &version, &[]),
                None => purl("golang", None, &module, &version, &[]),
            };
            package(&module, &version, Ecosystem::Go, purl, fs, path, cataloger)
        })
        .collect())
}

/// The package name of a yarn spec: `lodash@^4.17.0`, `"@babel/core@npm:7.0.0"` → `lodash`, `@babel/core`.
fn yarn_spec_name(spec: &str) -> &str {
    let spec = spec.trim().trim_matches('"');
    // A scoped name starts with '@': the version's '@' is the first one after the first
    // character (which may be any character, of any length in bytes).
    let first = spec.chars().next().map_or(0, char::len_utf8);
    match spec[first..].find('@') {
        Some(at) => &spec[..first + at],
        None => spec,
    }
}

file_cataloger!(YarnLockCataloger, "yarn-lock", 1, directory_only: true, |path| file_name(path) == "yarn.lock" && !path.contains("node_modules/"), parse_yarn_lock);

fn parse_yarn_lock(fs: &VirtualFs, path: &str, text: &str, cataloger: &str) -> Result<Vec<Package>, String> {
    let mut packages = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            // An entry header: one or more comma-separated specs, ending in ':'.
            let first = line.trim_end_matches(':').split(", ").next().unwrap_or_default();
            let workspace = first.contains("@workspace:") || first.starts_with("__metadata");
            current = (!workspace).then(|| yarn_spec_name(first).to_string());
            continue;
        }
        let trimmed = line.trim();
        let version = trimmed.strip_prefix("version ").or_else(|| trimmed.strip_prefix("version: "));
        if let Some(version) = version
            && let Some(name) = current.take()
        {
            packages.push(npm_package(&name, version.trim().trim_matches('"'), fs, path, cataloger));
        }
    }
    Ok(packages)
}

#[derive(Deserialize)]
struct PnpmLock {
    #[serde(default)]
    packages: BTreeMap<String, serde::de::IgnoredAny>,
}

/// `/lodash/4.17.4` (v5), `/lodash@4.17.4` (v6), `lodash@4.17.4` (v9), each possibly scoped and
/// with a peer-dependency suffix (`(react@18.0.0)` or `_react@18.0.0`).
fn pnpm_key(key: &str) -> Option<(String, String)> {
    let key = key.trim_start_matches('/');
    let key = key.split('(').next().unwrap_or(key);
    let (scope_len, rest) =
        if key.starts_with('@') { key.split_once('/').map(|(s, r)| (s.len() + 1, r))? } else { (0, key) };
    // v5 separates name and version with '/', and peers with '_'; v6+ use '@' and '(…)'.
    let (name_part, version) = match rest.split_once('/') {
        Some((name, version)) => (name, version.split('_').next().unwrap_or(version)),
        None => rest.split_once('@')?,
    };
    let name = format!("{}{name_part}", &key[..scope_len]);
    (!name.is_empty() && !version.is_empty()).then(|| (name, version.to_string()))
}

file_cataloger!(PnpmLockCataloger, "pnpm-lock", 1, directory_only: true, |path| file_name(path) == "pnpm-lock.yaml" && !path.contains("node_modules/"), parse_pnpm_lock);

fn parse_pnpm_lock(fs: &VirtualFs, path: &str, text: &str, cataloger: &str) -> Result<Vec<Package>, String> {
    let lock: PnpmLock = serde_saphyr::from_str(text).map_err(|e| format!("not a pnpm-lock.yaml: {e}"))?;
    Ok(lock
        .packages
        .keys()
        .filter_map(|key| pnpm_key(key))
        .map(|(name, version)| npm_package(&name, &version, fs, path, cataloger))
        .collect())
}

#[derive(Deserialize)]
struct PoetryLock {
    #[serde(default)]
    package: Vec<CargoLockPackage>,
}

fn pypi_package(name: &str, version: &str, fs: &VirtualFs, path: &str, cataloger: &str) -> Package {
    let purl_name = super::python::normalise(name);
    package(name, version, Ecosystem::PyPI, purl("pypi", None, &purl_name, version, &[]), fs, path, cataloger)
}

file_cataloger!(PoetryLockCataloger, "poetry-lock", 1, directory_only: true, |path| file_name(path) == "poetry.lock", parse_poetry_lock);

fn parse_poetry_lock(fs: &VirtualFs, path: &str, text: &str, cataloger: &str) -> Result<Vec<Package>, String> {
    let lock: PoetryLock = toml::from_str(text).map_err(|e| format!("not a poetry.lock: {e}"))?;
    Ok(lock.package.iter().map(|p| pypi_package(&p.name, &p.version, fs, path, cataloger)).collect())
}

#[derive(Deserialize)]
struct PipfileLock {
    #[serde(default)]
    default: BTreeMap<String, PipfileEntry>,
}

#[derive(Deserialize)]
struct PipfileEntry {
    version: Option<String>,
}

file_cataloger!(PipfileLockCataloger, "pipfile-lock", 1, directory_only: true, |path| file_name(path) == "Pipfile.lock", parse_pipfile_lock);

fn parse_pipfile_lock(fs: &VirtualFs, path: &str, text: &str, cataloger: &str) -> Result<Vec<Package>, String> {
    let lock: PipfileLock = serde_json::from_str(text).map_err(|e| format!("not a Pipfile.lock: {e}"))?;
    // "develop" is left out, as composer's packages-dev is: it does not ship.
    Ok(lock
        .default
        .iter()
        .filter_map(|(name, entry)| entry.version.as_deref().map(|v| (name, v.trim_start_matches("=="))))
        .map(|(name, version)| pypi_package(name, version, fs, path, cataloger))
        .collect())
}

#[cfg(test)]
mod tests;

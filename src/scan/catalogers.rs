//! Catalogers: each reads the files it asks for from the virtual filesystem and reports
//! packages. `all()` lists them explicitly; adding an ecosystem is one file plus its test data.

pub mod apk;
pub mod dpkg;
pub mod go;
pub mod java;
pub mod lockfiles;
pub mod npm;
pub mod python;
pub mod rpm;
pub mod ruby;
pub mod rust;

use crate::model::{Distro, Package};
use crate::scan::vfs::{Node, VirtualFs};

#[derive(Debug, Default)]
pub struct CatalogOutput {
    pub packages: Vec<Package>,
    /// Files that could not be read as what they claimed to be, with the reason.
    pub warnings: Vec<String>,
}

pub trait Cataloger: Send + Sync {
    fn name(&self) -> &'static str;
    /// Bumped whenever its output for the same input changes (it goes into cache keys).
    fn version(&self) -> u32;
    /// Whether this cataloger reads the file at `path` (normalised, no leading `/`).
    fn wants(&self, path: &str) -> bool;
    /// Lock files and manifests describe what a build will install: they are read for
    /// directories (source trees), not for images, where the installed records are the truth.
    fn directory_only(&self) -> bool {
        false
    }
    fn catalog(&self, fs: &VirtualFs, distro: Option<&Distro>) -> CatalogOutput;
}

pub fn all() -> Vec<Box<dyn Cataloger>> {
    vec![
        Box::new(dpkg::DpkgCataloger),
        Box::new(apk::ApkCataloger),
        Box::new(rpm::RpmCataloger),
        Box::new(python::PythonCataloger),
        Box::new(npm::NpmCataloger),
        Box::new(java::JavaArchiveCataloger),
        Box::new(go::GoBinaryCataloger),
        Box::new(rust::RustAuditableCataloger),
        Box::new(ruby::GemspecCataloger),
        Box::new(lockfiles::ComposerCataloger),
        Box::new(lockfiles::DotnetDepsCataloger),
        Box::new(lockfiles::CargoLockCataloger),
        Box::new(lockfiles::NpmLockCataloger),
        Box::new(lockfiles::YarnLockCataloger),
        Box::new(lockfiles::PnpmLockCataloger),
        Box::new(lockfiles::PoetryLockCataloger),
        Box::new(lockfiles::PipfileLockCataloger),
        Box::new(lockfiles::RequirementsCataloger),
        Box::new(lockfiles::GoModCataloger),
    ]
}

/// The one per-file loop of the catalogers: `visit` gets every captured file `matches` selects
/// (its content, or what was extracted from it while the layer was read) and adds to the output.
pub fn each_captured(
    fs: &VirtualFs,
    matches: impl Fn(&str) -> bool,
    mut visit: impl FnMut(&str, &Node, &mut CatalogOutput),
) -> CatalogOutput {
    let mut out = CatalogOutput::default();
    for (path, node) in fs.files().filter(|(path, _)| matches(path)) {
        visit(path, node, &mut out);
    }
    out
}

/// Runs `parse` on the text of every captured file `matches` selects; parse errors become
/// warnings naming the file.
pub fn each_file(
    fs: &VirtualFs,
    matches: impl Fn(&str) -> bool,
    mut parse: impl FnMut(&str, &str) -> Result<Vec<Package>, String>,
) -> CatalogOutput {
    each_captured(fs, matches, |path, node, out| {
        let Some(bytes) = node.content.as_ref() else { return };
        match parse(path, &String::from_utf8_lossy(bytes)) {
            Ok(packages) => out.packages.extend(packages),
            Err(err) => out.warnings.push(format!("/{path}: {err}")),
        }
    })
}

/// Why a cataloger's package cannot be a real one (garbage in a metadata file or a binary's
/// build info), or None. Such a package would match nothing and mislead every report.
pub fn implausible(package: &Package) -> Option<String> {
    let bad = |text: &str| text.chars().any(|c| c.is_control() || c == '\u{FFFD}');
    let shown = |text: &str| text.escape_debug().take(40).collect::<String>();
    if package.name.is_empty() || package.name.len() > 256 || bad(&package.name) {
        return Some(format!("a package name \"{}\"", shown(&package.name)));
    }
    if package.version.len() > 128 || bad(&package.version) {
        return Some(format!("package {} with a version \"{}\"", shown(&package.name), shown(&package.version)));
    }
    None
}

/// A package URL (purl-spec), or a bare `pkg:TYPE/NAME@VERSION` if the parts do not form one.
pub fn purl(ty: &str, namespace: Option<&str>, name: &str, version: &str, qualifiers: &[(&str, &str)]) -> String {
    let build = || -> Result<String, packageurl::Error> {
        let mut purl = packageurl::PackageUrl::new(ty, name)?;
        if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
            purl.with_namespace(ns)?;
        }
        if !version.is_empty() {
            purl.with_version(version)?;
        }
        for (key, value) in qualifiers.iter().filter(|(_, v)| !v.is_empty()) {
            purl.add_qualifier(*key, *value)?;
        }
        Ok(purl.to_string())
    };
    build().unwrap_or_else(|_| format!("pkg:{ty}/{name}@{version}"))
}

/// Parses RFC 822-style stanzas (dpkg status, apk installed, Python METADATA): `Key: value`
/// lines, continuation lines starting with whitespace, stanzas separated by blank lines.
/// Keys keep their order; a repeated key (Classifier) keeps every value.
pub fn stanzas(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether a packaged file is one a process can execute or map: under a `bin`, `sbin` or
/// `libexec` directory, or a shared object (`libssl.so.3`, `_ssl.cpython-311-x86_64-linux-gnu.so`).
/// These are what a package lists for the agent's "in use" (the rest: data, docs, headers).
pub fn is_runnable(path: &str) -> bool {
    let Some((dir, name)) = path.rsplit_once('/') else { return false };
    if name.is_empty() {
        return false;
    }
    let shared_object = name.ends_with(".so") || name.contains(".so.");
    let program_dir = dir.rsplit('/').next().is_some_and(|d| matches!(d, "bin" | "sbin" | "libexec"));
    shared_object || program_dir || dir.contains("/libexec/")
}

pub fn field<'a>(stanza: &'a [(String, String)], key: &str) -> Option<&'a str> {
    stanza.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_metadata_makes_no_package() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("lib/python3/site-packages");
        std::fs::create_dir_all(site.join("junk.dist-info")).unwrap();
        std::fs::create_dir_all(site.join("good-1.0.dist-info")).unwrap();
        std::fs::write(
            site.join("junk.dist-info/METADATA"),
            b"Metadata-Version: 2.1\nName: \xff\xfejunk\nVersion: \x00\x00\n",
        )
        .unwrap();
        std::fs::write(site.join("good-1.0.dist-info/METADATA"), "Metadata-Version: 2.1\nName: good\nVersion: 1.0\n")
            .unwrap();
        let spec = crate::scan::SourceSpec::parse(&format!("dir:{}", dir.path().display())).unwrap();
        let sbom = crate::scan::inventory(&spec, &crate::scan::ScanOptions::default(), &|_| {}).unwrap();
        let names: Vec<&str> = sbom.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["good"]);
        assert!(
            sbom.warnings.iter().any(|w| w.contains("junk.dist-info/METADATA") && w.contains("not a package, skipped")),
            "{:?}",
            sbom.warnings
        );
    }

    #[test]
    fn purls_are_encoded() {
        assert_eq!(
            purl("deb", Some("debian"), "libc6", "2.36-9+deb12u4", &[("arch", "amd64"), ("distro", "debian-12")]),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(purl("npm", Some("@babel"), "core", "7.0.0", &[]), "pkg:npm/%40babel/core@7.0.0");
    }

    #[test]
    fn stanza_parsing_handles_continuations_and_repeats() {
        let parsed = stanzas("Package: a\nDescription: x\n more\nClassifier: one\nClassifier: two\n\n\nPackage: b\n");
        assert_eq!(parsed.len(), 2);
        assert_eq!(field(&parsed[0], "Description"), Some("x\nmore"));
        assert_eq!(parsed[0].iter().filter(|(k, _)| k == "Classifier").count(), 2);
        assert_eq!(field(&parsed[1], "Package"), Some("b"));
    }
}

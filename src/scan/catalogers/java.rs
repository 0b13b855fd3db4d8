//! Java archives (jar, war, ear, Jenkins plugins), nested ones included: a package per Maven
//! `pom.properties`, and the archive itself from its manifest (or file name) when no pom names it.

use std::io::{Cursor, Read};

use super::{CatalogOutput, Cataloger, each_captured, purl};
use crate::model::{Distro, Ecosystem, Location, Package};
use crate::scan::vfs::VirtualFs;

pub struct JavaArchiveCataloger;

const EXTENSIONS: &[&str] = &[".jar", ".war", ".ear", ".jpi", ".hpi"];
/// How deep archives inside archives are opened.
const MAX_DEPTH: usize = 4;
/// The most bytes one nested archive or metadata file may expand to (zip bombs stop here).
const MAX_ENTRY: u64 = 256 * 1024 * 1024;

fn is_archive(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    EXTENSIONS.iter().any(|ext| lower.ends_with(ext))
}

/// `commons-lang3-3.12.0.jar` → (`commons-lang3`, `3.12.0`): the version starts at the first `-`
/// followed by a digit.
fn name_from_file(path: &str) -> (String, Option<String>) {
    let file = path.rsplit(['/', ':']).next().unwrap_or(path);
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let bytes = stem.as_bytes();
    for i in 0..bytes.len().saturating_sub(1) {
        if bytes[i] == b'-' && bytes[i + 1].is_ascii_digit() {
            return (stem[..i].to_string(), Some(stem[i + 1..].to_string()));
        }
    }
    (stem.to_string(), None)
}

/// The main section of a MANIFEST.MF (continuation lines start with one space).
fn manifest(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(rest) = line.strip_prefix(' ') {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(rest);
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

fn read_entry(archive: &mut zip::ZipArchive<Cursor<&[u8]>>, index: usize) -> Option<Vec<u8>> {
    let entry = archive.by_index(index).ok()?;
    if entry.size() > MAX_ENTRY {
        return None;
    }
    let mut bytes = Vec::new();
    entry.take(MAX_ENTRY).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

struct Maven {
    group: Option<String>,
    artifact: String,
    version: String,
}

impl Maven {
    fn package(&self, location: Location) -> Package {
        let group = self.group.as_deref().unwrap_or(&self.artifact);
        let name = match &self.group {
            Some(group) => format!("{group}:{}", self.artifact),
            None => self.artifact.clone(),
        };
        Package {
            name,
            version: self.version.clone(),
            ecosystem: Ecosystem::Maven,
            purl: purl("maven", Some(group), &self.artifact, &self.version, &[]),
            source: None,
            licenses: Vec::new(),
            locations: vec![location],
            files: Vec::new(),
            cataloger: "java-archive".to_string(),
        }
    }
}

/// How many bytes all the nested archives of one top-level archive may expand to together.
const MAX_NESTED_TOTAL: u64 = 1024 * 1024 * 1024;

/// Catalogs one archive (and, recursively, the archives inside it). `budget` is what remains of
/// the nested-expansion allowance of the top-level archive.
fn archive(
    bytes: &[u8],
    virtual_path: &str,
    layer: Option<&str>,
    depth: usize,
    budget: &mut u64,
    out: &mut CatalogOutput,
) {
    let mut zip = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(zip) => zip,
        Err(err) => {
            out.warnings.push(format!("{virtual_path}: not a readable archive: {err}"));
            return;
        }
    };
    let location = Location { layer: layer.map(String::from), path: virtual_path.to_string() };
    let mut poms = Vec::new();
    let mut manifest_fields = Vec::new();
    let mut nested = Vec::new();
    for index in 0..zip.len() {
        let Some(name) = zip.by_index(index).ok().and_then(|e| e.name().ok().map(|n| n.to_string())) else { continue };
        if name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties") {
            if let Some(text) = read_entry(&mut zip, index) {
                let props: Vec<(String, String)> = String::from_utf8_lossy(&text)
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .filter_map(|l| l.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
                    .collect();
                if let (Some(artifact), Some(version)) = (field(&props, "artifactId"), field(&props, "version")) {
                    poms.push(Maven {
                        group: field(&props, "groupId").map(String::from),
                        artifact: artifact.to_string(),
                        version: version.to_string(),
                    });
                }
            }
        } else if name.eq_ignore_ascii_case("META-INF/MANIFEST.MF") {
            if let Some(text) = read_entry(&mut zip, index) {
                manifest_fields = manifest(&String::from_utf8_lossy(&text));
            }
        } else if is_archive(&name) && depth < MAX_DEPTH {
            nested.push((index, name));
        }
    }
    let (file_name, file_version) = name_from_file(virtual_path);
    if !poms.iter().any(|p| p.artifact == file_name) {
        let title = field(&manifest_fields, "Implementation-Title").map(String::from).unwrap_or(file_name.clone());
        let version = field(&manifest_fields, "Implementation-Version")
            .or_else(|| field(&manifest_fields, "Specification-Version"))
            .map(String::from)
            .or(file_version);
        if let Some(version) = version
            && poms.is_empty()
        {
            out.packages.push(Maven { group: None, artifact: title, version }.package(location.clone()));
        }
    }
    for pom in &poms {
        out.packages.push(pom.package(location.clone()));
    }
    for (index, name) in nested {
        if let Some(inner) = read_entry(&mut zip, index) {
            let Some(left) = budget.checked_sub(inner.len() as u64) else {
                out.warnings.push(format!(
                    "{virtual_path}: nested archives expand past {MAX_NESTED_TOTAL} bytes; the rest were not read"
                ));
                return;
            };
            *budget = left;
            archive(&inner, &format!("{virtual_path}:{name}"), layer, depth + 1, budget, out);
        }
    }
}

impl Cataloger for JavaArchiveCataloger {
    fn name(&self) -> &'static str {
        "java-archive"
    }

    fn version(&self) -> u32 {
        1
    }

    fn wants(&self, path: &str) -> bool {
        is_archive(path)
    }

    fn catalog(&self, fs: &VirtualFs, _distro: Option<&Distro>) -> CatalogOutput {
        each_captured(fs, is_archive, |path, node, out| {
            let Some(bytes) = node.content.as_ref() else { return };
            let location = fs.location(path);
            let mut budget = MAX_NESTED_TOTAL;
            archive(bytes, &location.path, location.layer.as_deref(), 0, &mut budget, out);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_manifests() {
        assert_eq!(name_from_file("/app/commons-lang3-3.12.0.jar"), ("commons-lang3".into(), Some("3.12.0".into())));
        assert_eq!(name_from_file("/a.war:WEB-INF/lib/guava.jar"), ("guava".into(), None));
        assert_eq!(name_from_file("maven-core-3.x.jar"), ("maven-core".into(), Some("3.x".into())));
        let fields = manifest(
            "Manifest-Version: 1.0\r\nBundle-Description: Guava is a suite of core and expanded libraries th\r\n at include utility\r\nImplementation-Title: shop\r\n\r\nName: x\r\nImplementation-Title: other\r\n",
        );
        assert_eq!(field(&fields, "implementation-title"), Some("shop"));
        assert!(field(&fields, "Bundle-Description").is_some_and(|d| d.contains("libraries that include")));
    }

    #[test]
    fn broken_archives_are_warnings() {
        let mut out = CatalogOutput::default();
        archive(b"PK\x03\x04 not really", "/app/broken.jar", None, 0, &mut MAX_NESTED_TOTAL.clone(), &mut out);
        assert!(out.packages.is_empty());
        assert!(out.warnings[0].starts_with("/app/broken.jar"), "{:?}", out.warnings);
    }
}

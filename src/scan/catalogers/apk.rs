//! Alpine and Wolfi packages: `lib/apk/db/installed` (single-letter keys: P name, V version,
//! A arch, L licence, o origin; F a directory and R a file in it, for its programs and shared
//! objects).

use super::{CatalogOutput, Cataloger, field, purl, stanzas};
use crate::model::{Distro, Ecosystem, Package, SourcePackage};
use crate::scan::vfs::VirtualFs;

pub struct ApkCataloger;

const INSTALLED: &str = "lib/apk/db/installed";

impl Cataloger for ApkCataloger {
    fn name(&self) -> &'static str {
        "apk"
    }

    fn version(&self) -> u32 {
        2
    }

    fn wants(&self, path: &str) -> bool {
        path == INSTALLED
    }

    fn catalog(&self, fs: &VirtualFs, distro: Option<&Distro>) -> CatalogOutput {
        let mut out = CatalogOutput::default();
        let Some(bytes) = fs.read(INSTALLED) else { return out };
        let text = String::from_utf8_lossy(&bytes);
        let (ecosystem, namespace) = match distro.map(|d| d.id.as_str()) {
            Some("wolfi") => (Ecosystem::Wolfi, "wolfi"),
            _ => (Ecosystem::Alpine, "alpine"),
        };
        let distro_qualifier = distro.map(|d| format!("{}-{}", d.id, d.version_id)).unwrap_or_default();
        for stanza in stanzas(&text) {
            let (Some(name), Some(version)) = (field(&stanza, "P"), field(&stanza, "V")) else { continue };
            let origin = field(&stanza, "o").unwrap_or(name);
            let arch = field(&stanza, "A").unwrap_or_default();
            let upstream = if origin == name { "" } else { origin };
            out.packages.push(Package {
                name: name.to_string(),
                version: version.to_string(),
                ecosystem,
                purl: purl(
                    "apk",
                    Some(namespace),
                    name,
                    version,
                    &[("arch", arch), ("upstream", upstream), ("distro", &distro_qualifier)],
                ),
                source: Some(SourcePackage { name: origin.to_string(), version: version.to_string() }),
                licenses: field(&stanza, "L")
                    .map(|l| l.split_whitespace().filter(|t| *t != "AND" && *t != "OR").map(String::from).collect())
                    .unwrap_or_default(),
                locations: vec![fs.location(INSTALLED)],
                files: runnable_files(&stanza),
                cataloger: self.name().to_string(),
            });
        }
        out
    }
}

/// The programs and shared objects of one package's stanza (`F:usr/bin` then `R:curl`).
fn runnable_files(stanza: &[(String, String)]) -> Vec<String> {
    let mut dir = "";
    let mut out = Vec::new();
    for (key, value) in stanza {
        match key.as_str() {
            "F" => dir = value.as_str(),
            "R" => {
                let path = if dir.is_empty() { format!("/{value}") } else { format!("/{dir}/{value}") };
                if super::is_runnable(&path) {
                    out.push(path);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_installed_db() {
        let db = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1\nF:usr/share/doc\nR:README\n\nC:Q1def=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\nL:Apache-2.0\no:openssl\n\n";
        let fs = VirtualFs::from_files(&[(INSTALLED, db)]);
        let distro = Distro { id: "alpine".into(), version_id: "3.19.1".into(), pretty_name: String::new() };
        let out = ApkCataloger.catalog(&fs, Some(&distro));
        assert_eq!(out.packages.len(), 2);
        assert_eq!(out.packages[0].files, ["/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1"]);
        assert!(out.packages[1].files.is_empty());
        let crypto = &out.packages[1];
        assert_eq!((crypto.name.as_str(), crypto.version.as_str()), ("libcrypto3", "3.1.4-r5"));
        assert_eq!(crypto.source.as_ref().map(|s| s.name.as_str()), Some("openssl"));
        assert_eq!(crypto.licenses, vec!["Apache-2.0"]);
        assert_eq!(crypto.purl, "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl");
    }
}

//! Debian packages: `var/lib/dpkg/status`, and distroless `var/lib/dpkg/status.d/*`. Licences
//! come from the machine-readable `usr/share/doc/PKG/copyright` files when present; each
//! package's programs and shared objects from its `var/lib/dpkg/info/PKG[:ARCH].list`.

use std::collections::BTreeSet;

use super::{CatalogOutput, Cataloger, field, purl, stanzas};
use crate::model::{Distro, Ecosystem, Package, SourcePackage};
use crate::scan::vfs::VirtualFs;

pub struct DpkgCataloger;

const STATUS: &str = "var/lib/dpkg/status";
const STATUS_D: &str = "var/lib/dpkg/status.d/";
const INFO: &str = "var/lib/dpkg/info/";

fn is_copyright(path: &str) -> bool {
    path.strip_prefix("usr/share/doc/")
        .and_then(|rest| rest.strip_suffix("/copyright"))
        .is_some_and(|pkg| !pkg.contains('/'))
}

impl Cataloger for DpkgCataloger {
    fn name(&self) -> &'static str {
        "dpkg"
    }

    fn version(&self) -> u32 {
        2
    }

    fn wants(&self, path: &str) -> bool {
        path == STATUS
            || path.strip_prefix(STATUS_D).is_some_and(|name| !name.contains('/') && !name.ends_with(".md5sums"))
            || is_copyright(path)
            || path.strip_prefix(INFO).is_some_and(|name| !name.contains('/') && name.ends_with(".list"))
    }

    fn catalog(&self, fs: &VirtualFs, distro: Option<&Distro>) -> CatalogOutput {
        let mut out = CatalogOutput::default();
        let mut databases: Vec<String> = Vec::new();
        if fs.get(STATUS).is_some() {
            databases.push(STATUS.to_string());
        }
        databases
            .extend(fs.files().map(|(p, _)| p).filter(|p| self.wants(p) && p.starts_with(STATUS_D)).map(String::from));
        let ecosystem = match distro.map(|d| d.id.as_str()) {
            Some("ubuntu") => Ecosystem::Ubuntu,
            _ => Ecosystem::Debian,
        };
        let namespace = distro.map_or("debian", |d| d.id.as_str());
        let distro_qualifier = distro.map(|d| format!("{}-{}", d.id, d.version_id)).unwrap_or_default();
        for db in databases {
            let Some(bytes) = fs.read(&db) else { continue };
            let Ok(text) = std::str::from_utf8(&bytes) else {
                out.warnings.push(format!("/{db}: not UTF-8 text, skipped"));
                continue;
            };
            for stanza in stanzas(text) {
                let (Some(name), Some(version)) = (field(&stanza, "Package"), field(&stanza, "Version")) else {
                    continue;
                };
                if field(&stanza, "Status").is_some_and(|s| !s.ends_with(" installed")) {
                    continue;
                }
                let arch = field(&stanza, "Architecture").unwrap_or_default();
                let source = source_package(field(&stanza, "Source"), name, version);
                let upstream = if source.name == name { String::new() } else { source.name.clone() };
                out.packages.push(Package {
                    name: name.to_string(),
                    version: version.to_string(),
                    ecosystem,
                    purl: purl(
                        "deb",
                        Some(namespace),
                        name,
                        version,
                        &[("arch", arch), ("upstream", &upstream), ("distro", &distro_qualifier)],
                    ),
                    licenses: licenses(fs, name),
                    source: Some(source),
                    locations: vec![fs.location(&db)],
                    files: runnable_files(fs, name, arch),
                    cataloger: self.name().to_string(),
                });
            }
        }
        out
    }
}

/// `Source: glibc (2.36-9)` → glibc 2.36-9; `Source: glibc` → glibc at the binary's version;
/// no Source → the package is its own source.
fn source_package(source: Option<&str>, name: &str, version: &str) -> SourcePackage {
    match source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => match text.split_once(' ') {
            Some((src, rest)) => SourcePackage {
                name: src.to_string(),
                version: rest.trim().trim_start_matches('(').trim_end_matches(')').to_string(),
            },
            None => SourcePackage { name: text.to_string(), version: version.to_string() },
        },
        None => SourcePackage { name: name.to_string(), version: version.to_string() },
    }
}

/// The programs and shared objects of `package` its file list names (none without one).
fn runnable_files(fs: &VirtualFs, package: &str, arch: &str) -> Vec<String> {
    let list = fs.read(&format!("{INFO}{package}:{arch}.list")).or_else(|| fs.read(&format!("{INFO}{package}.list")));
    let Some(bytes) = list else { return Vec::new() };
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::trim)
        .filter(|path| path.starts_with('/') && super::is_runnable(path))
        .map(String::from)
        .collect()
}

/// Licence names from a DEP-5 copyright file's `License:` lines, in first-seen order.
fn licenses(fs: &VirtualFs, package: &str) -> Vec<String> {
    let Some(bytes) = fs.read(&format!("usr/share/doc/{package}/copyright")) else { return Vec::new() };
    let text = String::from_utf8_lossy(&bytes);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("License:") {
            let value = value.trim();
            if !value.is_empty() && seen.insert(value.to_string()) {
                out.push(value.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::vfs::VirtualFs;

    #[test]
    fn reads_status_with_sources_and_skips_removed_packages() {
        let status = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc (2.36-9+deb12u4)\nVersion: 2.36-9+deb12u4\n\n\
                      Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\nSource: bash (5.2.15-2)\n\n\
                      Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
                      Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u5\n";
        let copyright = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-3+\n\nFiles: doc/*\nLicense: GFDL-1.3\n\nLicense: GPL-3+\n text\n";
        let fs = VirtualFs::from_files(&[(STATUS, status), ("usr/share/doc/bash/copyright", copyright)]);
        let distro = Distro { id: "debian".into(), version_id: "12".into(), pretty_name: String::new() };
        let out = DpkgCataloger.catalog(&fs, Some(&distro));
        let names: Vec<&str> = out.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["libc6", "bash", "base-files"]);
        let libc = &out.packages[0];
        assert_eq!(libc.source, Some(SourcePackage { name: "glibc".into(), version: "2.36-9+deb12u4".into() }));
        assert_eq!(libc.purl, "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc");
        assert_eq!(libc.ecosystem, Ecosystem::Debian);
        assert_eq!(libc.locations[0].path, "/var/lib/dpkg/status");
        let bash = &out.packages[1];
        assert_eq!(
            bash.source.as_ref().map(|s| s.version.as_str()),
            Some("5.2.15-2"),
            "binNMU: the source version differs"
        );
        assert_eq!(bash.licenses, vec!["GPL-3+", "GFDL-1.3"]);
        assert_eq!(out.packages[2].source.as_ref().map(|s| s.name.as_str()), Some("base-files"));
    }

    #[test]
    fn a_packages_programs_and_shared_objects_come_from_its_file_list() {
        let status = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.15-1~deb12u1\n\n\
                      Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b7\n\n\
                      Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024b-0+deb12u1\n";
        let ssl = "/.\n/usr\n/usr/lib\n/usr/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu/engines-3\n\
                   /usr/lib/x86_64-linux-gnu/engines-3/afalg.so\n/usr/lib/x86_64-linux-gnu/libssl.so.3\n\
                   /usr/share/doc/libssl3/changelog.Debian.gz\n";
        let bash = "/.\n/bin\n/bin/bash\n/usr/bin/bashbug\n/usr/share/man/man1/bash.1.gz\n";
        let fs = VirtualFs::from_files(&[
            (STATUS, status),
            ("var/lib/dpkg/info/libssl3:amd64.list", ssl),
            ("var/lib/dpkg/info/bash.list", bash),
        ]);
        assert!(DpkgCataloger.wants("var/lib/dpkg/info/libssl3:amd64.list"));
        assert!(!DpkgCataloger.wants("var/lib/dpkg/info/libssl3:amd64.md5sums"));
        let out = DpkgCataloger.catalog(&fs, None);
        let files =
            |name: &str| out.packages.iter().find(|p| p.name == name).map(|p| p.files.clone()).unwrap_or_default();
        assert_eq!(
            files("libssl3"),
            ["/usr/lib/x86_64-linux-gnu/engines-3/afalg.so", "/usr/lib/x86_64-linux-gnu/libssl.so.3"]
        );
        assert_eq!(files("bash"), ["/bin/bash", "/usr/bin/bashbug"]);
        assert!(files("tzdata").is_empty(), "no list, no files");
    }

    #[test]
    fn distroless_status_d() {
        let fs = VirtualFs::from_files(&[
            ("var/lib/dpkg/status.d/tzdata", "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"),
            ("var/lib/dpkg/status.d/tzdata.md5sums", "abc  usr/share/zoneinfo/UTC\n"),
        ]);
        assert!(!DpkgCataloger.wants("var/lib/dpkg/status.d/tzdata.md5sums"));
        let out = DpkgCataloger.catalog(&fs, None);
        assert_eq!(out.packages.len(), 1);
        assert_eq!(out.packages[0].version, "2024a-0+deb12u1");
    }
}

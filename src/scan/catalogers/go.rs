//! Go modules compiled into binaries: the build info every Go 1.18+ binary carries (main module,
//! dependencies with `=>` replacements, and the toolchain as `stdlib`).

use super::{CatalogOutput, Cataloger, each_captured, purl};
use crate::model::{Distro, Ecosystem, Package};
use crate::scan::vfs::VirtualFs;

pub struct GoBinaryCataloger;

fn golang_purl(path: &str, version: &str) -> String {
    match path.rsplit_once('/') {
        Some((namespace, name)) => purl("golang", Some(namespace), name, version, &[]),
        None => purl("golang", None, path, version, &[]),
    }
}

/// The version a build stamped into the main package with `-X …version=V` (as release tooling
/// such as goreleaser does), when the module itself says `(devel)`. Only values that look like a
/// version are taken; the result gets Go's `v` prefix.
fn ldflags_version(flags: &str) -> Option<String> {
    let flags = flags.trim_matches('"');
    let mut words = flags.split_whitespace();
    while let Some(word) = words.next() {
        let assignment = if word == "-X" { words.next()? } else { word.strip_prefix("-X=").unwrap_or("") };
        let Some((key, value)) = assignment.split_once('=') else { continue };
        let key = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
        let value = value.trim_matches(['"', '\'']);
        let bare = value.strip_prefix('v').unwrap_or(value);
        let looks_like_version = bare.split('.').count() >= 2
            && bare
                .split(['.', '-', '+'])
                .next()
                .is_some_and(|major| !major.is_empty() && major.chars().all(|c| c.is_ascii_digit()));
        if (key == "version" || key == "gitversion") && looks_like_version {
            return Some(format!("v{bare}"));
        }
    }
    None
}

impl Cataloger for GoBinaryCataloger {
    fn name(&self) -> &'static str {
        "go-binary"
    }

    fn version(&self) -> u32 {
        2
    }

    fn wants(&self, _path: &str) -> bool {
        // Binaries are recognised while layers stream (scan::binary), not asked for by path.
        false
    }

    fn catalog(&self, fs: &VirtualFs, _distro: Option<&Distro>) -> CatalogOutput {
        each_captured(
            fs,
            |_| true,
            |path, node, out| {
                let Some(info) = node.extract.as_ref().and_then(|e| e.go.as_ref()) else { return };
                let location = fs.location(path);
                let mut push = |name: &str, version: &str, package_purl: String| {
                    out.packages.push(Package {
                        name: name.to_string(),
                        version: version.to_string(),
                        ecosystem: Ecosystem::Go,
                        purl: package_purl,
                        source: None,
                        licenses: Vec::new(),
                        locations: vec![location.clone()],
                        files: vec![location.path.clone()],
                        cataloger: self.name().to_string(),
                    });
                };
                let stdlib_version = info.go_version.trim_start_matches("go");
                push("stdlib", &info.go_version, purl("golang", None, "stdlib", stdlib_version, &[]));
                let mut main: Option<(String, String)> = None;
                let mut deps: Vec<(String, String)> = Vec::new();
                for line in info.modinfo.lines() {
                    let fields: Vec<&str> = line.split('\t').collect();
                    match fields.as_slice() {
                        ["path", path, ..] if main.is_none() => {
                            main = Some(((*path).to_string(), "(devel)".to_string()))
                        }
                        ["mod", path, version, ..] => main = Some(((*path).to_string(), (*version).to_string())),
                        ["dep", path, version, ..] => deps.push(((*path).to_string(), (*version).to_string())),
                        ["=>", path, version, ..] => {
                            if let Some(last) = deps.last_mut() {
                                *last = ((*path).to_string(), (*version).to_string());
                            }
                        }
                        ["build", setting] => {
                            if let Some(flags) = setting.strip_prefix("-ldflags=")
                                && let Some(version) = ldflags_version(flags)
                                && let Some(main) = main.as_mut().filter(|(_, v)| v == "(devel)")
                            {
                                main.1 = version;
                            }
                        }
                        _ => {}
                    }
                }
                for (module, version) in main.into_iter().chain(deps) {
                    push(&module, &version, golang_purl(&module, &version));
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::scan::binary::{BinaryExtract, GoBuildInfo};

    #[test]
    fn main_module_deps_replacements_and_stdlib() {
        let mut fs = VirtualFs::from_files(&[("usr/local/bin/app", "")]);
        let modinfo = "path\texample.com/app/cmd/app\nmod\texample.com/app\t(devel)\t\n\
                       dep\tgolang.org/x/net\tv0.17.0\th1:a\ndep\tgithub.com/old/lib\tv1.0.0\th1:b\n\
                       =>\tgithub.com/fork/lib\tv1.0.1\th1:c\n\
                       build\t-ldflags=\"-s -w -X main.version=2.3.4 -X main.commit=abc\"\n";
        let extract = BinaryExtract {
            go: Some(GoBuildInfo { go_version: "go1.21.5".into(), modinfo: modinfo.into() }),
            rust_audit: None,
        };
        let path = "usr/local/bin/app";
        let mut node = fs.get(path).unwrap().clone();
        node.extract = Some(Arc::new(extract));
        fs.insert(path.into(), node);
        let out = GoBinaryCataloger.catalog(&fs, None);
        let found: Vec<(&str, &str, &str)> =
            out.packages.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.purl.as_str())).collect();
        assert_eq!(
            found,
            vec![
                ("stdlib", "go1.21.5", "pkg:golang/stdlib@1.21.5"),
                ("example.com/app", "v2.3.4", "pkg:golang/example.com/app@v2.3.4"),
                ("golang.org/x/net", "v0.17.0", "pkg:golang/golang.org/x/net@v0.17.0"),
                ("github.com/fork/lib", "v1.0.1", "pkg:golang/github.com/fork/lib@v1.0.1"),
            ]
        );
    }

    #[test]
    fn ldflags_versions_are_taken_only_when_they_look_like_versions() {
        assert_eq!(ldflags_version("-X main.version=1.18.1 -X main.gitCommit=5e16"), Some("v1.18.1".into()));
        assert_eq!(ldflags_version("-X=github.com/x/y/internal.Version=v0.9.0-rc1"), Some("v0.9.0-rc1".into()));
        assert_eq!(ldflags_version("-X main.version=dev"), None);
        assert_eq!(ldflags_version("-s -w"), None);
    }
}

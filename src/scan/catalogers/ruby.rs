//! Installed Ruby gems: the `specifications/*.gemspec` files RubyGems writes on install
//! (`s.name = "rack".freeze`, `s.version = "2.2.3"`, `s.licenses = ["MIT".freeze]`).

use super::{CatalogOutput, Cataloger, each_file, purl};
use crate::model::{Distro, Ecosystem, Package};
use crate::scan::vfs::VirtualFs;

pub struct GemspecCataloger;

/// `…/specifications/NAME.gemspec`, or a default gem's `…/specifications/default/NAME.gemspec`.
fn is_installed_gemspec(path: &str) -> bool {
    let Some((dir, file)) = path.rsplit_once('/') else { return false };
    file.ends_with(".gemspec") && (dir.ends_with("specifications") || dir.ends_with("specifications/default"))
}

/// The string values of `s.FIELD = …` (a string, or an array of strings), `.freeze` ignored.
fn strings(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        out.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    out
}

impl Cataloger for GemspecCataloger {
    fn name(&self) -> &'static str {
        "ruby-gemspec"
    }

    fn version(&self) -> u32 {
        1
    }

    fn wants(&self, path: &str) -> bool {
        is_installed_gemspec(path)
    }

    fn catalog(&self, fs: &VirtualFs, _distro: Option<&Distro>) -> CatalogOutput {
        each_file(fs, is_installed_gemspec, |path, text| {
            let (mut name, mut version, mut licenses) = (None, None, Vec::new());
            for line in text.lines() {
                let line = line.trim();
                let Some((field, value)) = line.strip_prefix("s.").and_then(|l| l.split_once('=')) else { continue };
                match field.trim() {
                    "name" => name = strings(value).into_iter().next(),
                    "version" => version = strings(value).into_iter().next(),
                    "licenses" | "license" => licenses = strings(value),
                    _ => {}
                }
            }
            let (Some(name), Some(version)) = (name, version) else {
                return Err("no s.name or s.version".into());
            };
            Ok(vec![Package {
                purl: purl("gem", None, &name, &version, &[]),
                name,
                version,
                ecosystem: Ecosystem::RubyGems,
                source: None,
                licenses,
                locations: vec![fs.location(path)],
                files: Vec::new(),
                cataloger: self.name().to_string(),
            }])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const RACK: &str = "# -*- encoding: utf-8 -*-\n# stub: rack 2.2.3 ruby lib\n\nGem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"2.2.3\"\n\n  s.required_rubygems_version = Gem::Requirement.new(\">= 0\".freeze) if s.respond_to? :required_rubygems_version=\n  s.require_paths = [\"lib\".freeze]\n  s.authors = [\"Leah Neukirchen\".freeze]\n  s.licenses = [\"MIT\".freeze]\n  s.summary = \"a modular Ruby webserver interface\".freeze\nend\n";

    #[test]
    fn reads_installed_gemspecs_only() {
        let fs = VirtualFs::from_files(&[
            ("usr/local/bundle/specifications/rack-2.2.3.gemspec", RACK),
            (
                "usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec",
                "Gem::Specification.new do |s|\n  s.name = \"json\".freeze\n  s.version = \"2.6.1\"\nend\n",
            ),
            ("src/app/app.gemspec", "Gem::Specification.new do |s|\n  s.name = \"app\"\n  s.version = \"0.1\"\nend\n"),
        ]);
        assert!(!GemspecCataloger.wants("src/app/app.gemspec"), "a project's own gemspec is not an installed gem");
        let out = GemspecCataloger.catalog(&fs, None);
        let found: Vec<(&str, &str)> = out.packages.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(found, vec![("json", "2.6.1"), ("rack", "2.2.3")]);
        assert_eq!(out.packages[1].licenses, vec!["MIT"]);
        assert_eq!(out.packages[1].purl, "pkg:gem/rack@2.2.3");
    }
}

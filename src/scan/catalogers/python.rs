//! Installed Python distributions: `*.dist-info/METADATA` (wheels, pip) and
//! `*.egg-info/PKG-INFO` or a bare `*.egg-info` file (setuptools, Debian's python3-* packages).

use super::{CatalogOutput, Cataloger, each_file, field, purl, stanzas};
use crate::model::Distro;
use crate::model::{Ecosystem, Package};
use crate::scan::vfs::VirtualFs;

pub struct PythonCataloger;

fn is_metadata(path: &str) -> bool {
    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
    path.ends_with(".dist-info/METADATA")
        || path.ends_with(".egg-info/PKG-INFO")
        || (path.ends_with(".egg-info") && !parent.ends_with(".egg-info"))
}

impl Cataloger for PythonCataloger {
    fn name(&self) -> &'static str {
        "python"
    }

    fn version(&self) -> u32 {
        1
    }

    fn wants(&self, path: &str) -> bool {
        is_metadata(path)
    }

    fn catalog(&self, fs: &VirtualFs, _distro: Option<&Distro>) -> CatalogOutput {
        each_file(fs, is_metadata, |path, text| {
            // The headers end at the first blank line; the description follows.
            let headers = stanzas(text).into_iter().next().ok_or("empty metadata")?;
            let (Some(name), Some(version)) = (field(&headers, "Name"), field(&headers, "Version")) else {
                return Err("no Name or Version".into());
            };
            Ok(vec![Package {
                name: name.to_string(),
                version: version.to_string(),
                ecosystem: Ecosystem::PyPI,
                purl: purl("pypi", None, &normalise(name), version, &[]),
                source: None,
                licenses: licenses(&headers),
                locations: vec![fs.location(path)],
                files: Vec::new(),
                cataloger: self.name().to_string(),
            }])
        })
    }
}

/// PEP 503 name normalisation, as PyPI and purl-spec's pypi type use it.
pub fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_dash {
                out.push('-');
            }
            last_dash = true;
        } else {
            out.push(c.to_ascii_lowercase());
            last_dash = false;
        }
    }
    out
}

/// `License-Expression`, else `License` (when short), else the licence classifiers.
fn licenses(headers: &[(String, String)]) -> Vec<String> {
    if let Some(expr) = field(headers, "License-Expression") {
        return vec![expr.to_string()];
    }
    if let Some(license) =
        field(headers, "License").filter(|l| !l.is_empty() && *l != "UNKNOWN" && !l.contains('\n') && l.len() <= 80)
    {
        return vec![license.to_string()];
    }
    headers
        .iter()
        .filter(|(k, _)| k == "Classifier")
        .filter_map(|(_, v)| v.strip_prefix("License :: "))
        .map(|v| v.rsplit(" :: ").next().unwrap_or(v).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dist_info_and_egg_info() {
        let fs = VirtualFs::from_files(&[
            (
                "usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0\nLicense: MIT\n\nlong text: with colon\n",
            ),
            (
                "app/lib/urllib3-1.24.1.dist-info/METADATA",
                "Name: urllib3\nVersion: 1.24.1\nClassifier: License :: OSI Approved :: MIT License\n",
            ),
            (
                "usr/lib/python3/dist-packages/httplib2-0.20.4.egg-info/PKG-INFO",
                "Name: httplib2\nVersion: 0.20.4\nLicense-Expression: MIT\n",
            ),
            ("usr/lib/python3/dist-packages/six-1.16.0.egg-info", "Name: six\nVersion: 1.16.0\n"),
            ("site/broken.dist-info/METADATA", "Metadata-Version: 2.1\n"),
        ]);
        let out = PythonCataloger.catalog(&fs, None);
        let found: Vec<(&str, &str)> = out.packages.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(found, vec![("urllib3", "1.24.1"), ("PyYAML", "6.0"), ("httplib2", "0.20.4"), ("six", "1.16.0")]);
        let yaml = out.packages.iter().find(|p| p.name == "PyYAML").unwrap();
        assert_eq!(yaml.purl, "pkg:pypi/pyyaml@6.0");
        assert_eq!(yaml.licenses, vec!["MIT"]);
        let urllib3 = out.packages.iter().find(|p| p.name == "urllib3").unwrap();
        assert_eq!(urllib3.licenses, vec!["MIT License"]);
        assert_eq!(out.warnings.len(), 1);
        assert!(out.warnings[0].contains("broken.dist-info"));
    }

    #[test]
    fn normalises_names() {
        assert_eq!(normalise("Django_REST.framework"), "django-rest-framework");
        assert_eq!(normalise("zope..interface"), "zope-interface");
    }
}

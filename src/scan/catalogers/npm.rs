//! npm packages: every `package.json` with a name and a version (installed packages under
//! `node_modules`, and the application's own manifest, as Syft reports them).

use serde::Deserialize;

use super::{CatalogOutput, Cataloger, each_file, purl};
use crate::model::{Distro, Ecosystem, Package};
use crate::scan::vfs::VirtualFs;

pub struct NpmCataloger;

#[derive(Deserialize)]
struct Manifest {
    name: Option<String>,
    version: Option<String>,
    license: Option<LicenseField>,
    licenses: Option<Vec<LicenseField>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LicenseField {
    Id(String),
    Object { r#type: Option<String> },
}

impl LicenseField {
    fn id(&self) -> Option<String> {
        match self {
            Self::Id(id) => Some(id.clone()),
            Self::Object { r#type } => r#type.clone(),
        }
    }
}

fn is_manifest(path: &str) -> bool {
    path == "package.json" || path.ends_with("/package.json")
}

impl Cataloger for NpmCataloger {
    fn name(&self) -> &'static str {
        "npm"
    }

    fn version(&self) -> u32 {
        1
    }

    fn wants(&self, path: &str) -> bool {
        is_manifest(path)
    }

    fn catalog(&self, fs: &VirtualFs, _distro: Option<&Distro>) -> CatalogOutput {
        each_file(fs, is_manifest, |path, text| {
            let manifest: Manifest = serde_json::from_str(text).map_err(|e| format!("not a package.json: {e}"))?;
            let (Some(name), Some(version)) = (manifest.name, manifest.version) else { return Ok(Vec::new()) };
            if name.is_empty() || version.is_empty() {
                return Ok(Vec::new());
            }
            let (namespace, short) = match name.split_once('/') {
                Some((scope, rest)) if scope.starts_with('@') => (Some(scope), rest),
                _ => (None, name.as_str()),
            };
            let mut licenses: Vec<String> = manifest.license.iter().filter_map(LicenseField::id).collect();
            licenses.extend(manifest.licenses.iter().flatten().filter_map(LicenseField::id));
            Ok(vec![Package {
                purl: purl("npm", namespace, short, &version, &[]),
                name,
                version,
                ecosystem: Ecosystem::Npm,
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

    #[test]
    fn reads_manifests_and_skips_unnamed_ones() {
        let fs = VirtualFs::from_files(&[
            ("app/package.json", r#"{"name":"testbed-app","version":"1.0.0","private":true}"#),
            ("app/node_modules/minimist/package.json", r#"{"name":"minimist","version":"0.0.8","license":"MIT"}"#),
            (
                "app/node_modules/@babel/core/package.json",
                r#"{"name":"@babel/core","version":"7.0.0","licenses":[{"type":"MIT"}]}"#,
            ),
            ("app/node_modules/x/test/package.json", r#"{"description":"fixture without a name"}"#),
            ("app/node_modules/bad/package.json", "{not json"),
        ]);
        let out = NpmCataloger.catalog(&fs, None);
        let found: Vec<(&str, &str)> = out.packages.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(found, vec![("@babel/core", "7.0.0"), ("minimist", "0.0.8"), ("testbed-app", "1.0.0")]);
        assert_eq!(out.packages[0].purl, "pkg:npm/%40babel/core@7.0.0");
        assert_eq!(out.packages[0].licenses, vec!["MIT"]);
        assert_eq!(out.warnings.len(), 1);
    }
}

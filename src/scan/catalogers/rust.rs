//! Rust crates compiled into binaries built with cargo-auditable (the `.dep-v0` section).

use serde::Deserialize;

use super::{CatalogOutput, Cataloger, each_captured, purl};
use crate::model::{Distro, Ecosystem, Package};
use crate::scan::vfs::VirtualFs;

pub struct RustAuditableCataloger;

#[derive(Deserialize)]
struct Audit {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

impl Cataloger for RustAuditableCataloger {
    fn name(&self) -> &'static str {
        "rust-auditable"
    }

    fn version(&self) -> u32 {
        2
    }

    fn wants(&self, _path: &str) -> bool {
        false
    }

    fn catalog(&self, fs: &VirtualFs, _distro: Option<&Distro>) -> CatalogOutput {
        each_captured(
            fs,
            |_| true,
            |path, node, out| {
                let Some(json) = node.extract.as_ref().and_then(|e| e.rust_audit.as_ref()) else { return };
                let audit: Audit = match serde_json::from_str(json) {
                    Ok(audit) => audit,
                    Err(e) => {
                        out.warnings.push(format!("/{path}: unreadable cargo-auditable data: {e}"));
                        return;
                    }
                };
                for package in audit.packages {
                    // Build-time dependencies are not in the binary.
                    if package.kind.as_deref() == Some("build") {
                        continue;
                    }
                    let registry =
                        package.source.as_deref().is_none_or(|s| s == "crates.io" || s.starts_with("registry"));
                    out.packages.push(Package {
                        purl: purl("cargo", None, &package.name, &package.version, &[]),
                        name: package.name,
                        version: package.version,
                        ecosystem: Ecosystem::CratesIo,
                        source: None,
                        licenses: Vec::new(),
                        locations: vec![fs.location(path)],
                        files: vec![format!("/{path}")],
                        cataloger: if registry {
                            self.name().to_string()
                        } else {
                            format!("{} (local crate)", self.name())
                        },
                    });
                }
            },
        )
    }
}

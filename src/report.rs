//! Exporters: one per output format. Each turns a capability's result into bytes; none does I/O.

pub mod cluster_scan;
pub mod compliance;
pub mod cyclonedx;
pub mod findings;
pub mod junit;
pub mod markdown;
pub mod overview;
pub mod sarif;
pub mod spdx;
pub mod table;

use crate::model::Sbom;

/// SBOM output formats of `picket sbom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormat {
    /// picket's own JSON (what the store keeps)
    Json,
    /// CycloneDX 1.5 JSON
    Cyclonedx,
    /// SPDX 2.3 JSON
    Spdx,
}

/// Control characters (newlines, escape sequences from a database, an API or a file) would break
/// a terminal layout or drive the terminal: each becomes a space.
pub(crate) fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Document metadata that is not part of the scan itself.
pub struct DocumentInfo {
    /// RFC 3339 creation time.
    pub created: String,
    pub tool_version: &'static str,
}

impl DocumentInfo {
    pub fn now() -> Self {
        Self {
            created: jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or_else(|_| jiff::Timestamp::now())
                .to_string(),
            tool_version: env!("CARGO_PKG_VERSION"),
        }
    }
}

pub fn render_sbom(sbom: &Sbom, format: SbomFormat, info: &DocumentInfo) -> Result<Vec<u8>, serde_json::Error> {
    match format {
        SbomFormat::Json => serde_json::to_vec_pretty(sbom),
        SbomFormat::Cyclonedx => serde_json::to_vec_pretty(&cyclonedx::document(sbom, info)),
        SbomFormat::Spdx => serde_json::to_vec_pretty(&spdx::document(sbom, info)),
    }
}

/// A stable UUID (RFC 4122 layout, version 5 bits) derived from the document's content, so the
/// same scan at the same time yields the same serial number.
pub fn content_uuid(seed: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::model::{Distro, Ecosystem, Location, Package, SourcePackage};
    use crate::model::{Sbom, SbomSource};
    use crate::oci::{ImageMeta, LayerMeta};

    pub fn sbom() -> Sbom {
        let layer = "sha256:8f4b6e3c1d2a9f0e7b6c5d4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e".to_string();
        Sbom {
            format_version: 1,
            source: SbomSource {
                kind: "oci-dir".into(),
                name: "oci/tiny:v1".into(),
                image: Some(ImageMeta {
                    name: "oci/tiny:v1".into(),
                    manifest_digest: Some(
                        "sha256:1111111111111111111111111111111111111111111111111111111111111111".into(),
                    ),
                    index_digest: None,
                    config_digest: "sha256:2222222222222222222222222222222222222222222222222222222222222222".into(),
                    os: "linux".into(),
                    architecture: "amd64".into(),
                    tags: vec!["v1".into()],
                    layers: vec![LayerMeta {
                        diff_id: layer.clone(),
                        digest: None,
                        size: Some(203_744),
                        media_type: None,
                        blob: String::new(),
                        verify: None,
                    }],
                }),
            },
            distro: Some(Distro {
                id: "debian".into(),
                version_id: "12".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            }),
            packages: vec![
                Package {
                    name: "libc6".into(),
                    version: "2.36-9+deb12u4".into(),
                    ecosystem: Ecosystem::Debian,
                    purl: "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc".into(),
                    source: Some(SourcePackage { name: "glibc".into(), version: "2.36-9+deb12u4".into() }),
                    licenses: vec!["LGPL-2.1+".into(), "GPL-2".into()],
                    locations: vec![Location { layer: Some(layer.clone()), path: "/var/lib/dpkg/status".into() }],
                    files: Vec::new(),
                    cataloger: "dpkg".into(),
                },
                Package {
                    name: "PyYAML".into(),
                    version: "6.0".into(),
                    ecosystem: Ecosystem::PyPI,
                    purl: "pkg:pypi/pyyaml@6.0".into(),
                    source: None,
                    licenses: vec!["MIT".into()],
                    locations: vec![Location {
                        layer: Some(layer),
                        path: "/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA".into(),
                    }],
                    files: Vec::new(),
                    cataloger: "python".into(),
                },
            ],
            catalogers: vec!["dpkg@1".into(), "python@1".into()],
            warnings: vec![],
            secrets: vec![],
        }
    }
}

//! A software bill of materials: what a scan found in an image or a directory, as the store
//! keeps it and every exporter and matcher reads it.

use serde::{Deserialize, Serialize};

use super::{Distro, Finding, Package};
use crate::oci::ImageMeta;

/// Version of picket's own SBOM document format.
pub const SBOM_FORMAT_VERSION: u32 = 1;

/// What was scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbomSource {
    /// `oci-dir`, `oci-archive`, `docker-archive`, `dir`.
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageMeta>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sbom {
    pub format_version: u32,
    pub source: SbomSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
    pub packages: Vec<Package>,
    /// `name@version` of every cataloger that ran: part of any cache key built on this SBOM.
    pub catalogers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Secrets in the files of every layer, when `ScanOptions::secrets` is on; sorted by path,
    /// line and rule id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Finding>,
}

// Finding's only float is a CVSS score, which secret findings never have.
impl Eq for Sbom {}

impl Sbom {
    /// The key this SBOM is stored under: the image's manifest (or config) digest, or the
    /// directory's path.
    pub fn store_key(&self) -> String {
        match &self.source.image {
            Some(image) => image.store_key().to_string(),
            None => format!("dir:{}", self.source.name),
        }
    }
}

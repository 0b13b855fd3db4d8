//! The OCI vocabulary that scanning and the registry client share: platforms, image identity,
//! digests and where a blob lives in a layout. A leaf: it imports nothing of picket's.

use oci_spec::image::{Descriptor, ImageIndex};
use sha2::{Digest, Sha256};

/// An OS/architecture pair (`linux/amd64`, `linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform picket runs on, in OCI names.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Self { os: "linux".into(), architecture: architecture.into(), variant: None }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(Self { os: (*os).into(), architecture: (*arch).into(), variant: None })
            }
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Self { os: (*os).into(), architecture: (*arch).into(), variant: Some((*variant).into()) })
            }
            _ => Err(format!("'{text}' is not a platform (e.g. linux/amd64, linux/arm64/v8)")),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Identity of a scanned image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageMeta {
    pub name: String,
    pub manifest_digest: Option<String>,
    /// The image index the manifest was chosen from, for the platform scanned (a multi-platform
    /// image: what `docker pull`, kubelets and registries report as the image's digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
    pub config_digest: String,
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub layers: Vec<LayerMeta>,
}

impl ImageMeta {
    /// The key SBOMs are stored under: the manifest digest, or the config digest (the image id)
    /// for docker archives, which carry no manifest digest.
    pub fn store_key(&self) -> &str {
        self.manifest_digest.as_deref().unwrap_or(&self.config_digest)
    }
}

/// One layer of an image: identity and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerMeta {
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// Digest of the blob as stored (compressed for OCI layouts).
    pub digest: Option<String>,
    pub size: Option<u64>,
    pub media_type: Option<String>,
    /// Path of the blob in its store.
    #[serde(skip)]
    pub blob: String,
    /// Digest to verify the blob against while it is read (digest, or diff id for plain tars).
    #[serde(skip)]
    pub verify: Option<String>,
}

/// `sha256:<64 hex>` → the blob path `blobs/sha256/<hex>`; anything else is refused (a digest
/// is used as a path, so it must not smuggle one).
pub fn blob_path(digest: &str) -> Result<String, String> {
    let (algorithm, hex) = digest.split_once(':').ok_or_else(|| format!("'{digest}' is not a digest"))?;
    let valid = match algorithm {
        "sha256" => hex.len() == 64,
        "sha512" => hex.len() == 128,
        _ => false,
    } && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return Err(format!("'{digest}' is not a sha256 or sha512 digest"));
    }
    Ok(format!("blobs/{algorithm}/{hex}"))
}

/// sha256 of bytes, as `sha256:<hex>`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The manifest for `platform` in an image index; the error lists the platforms it has.
pub fn select_platform<'a>(index: &'a ImageIndex, platform: &Platform) -> Result<&'a Descriptor, String> {
    let matches = |d: &&Descriptor| {
        d.platform().as_ref().is_some_and(|p| {
            p.os().to_string() == platform.os
                && p.architecture().to_string() == platform.architecture
                && (platform.variant.is_none() || p.variant().as_deref() == platform.variant.as_deref())
        })
    };
    index.manifests().iter().find(matches).ok_or_else(|| {
        let available: Vec<String> = index
            .manifests()
            .iter()
            .filter_map(|d| d.platform().as_ref())
            .map(|p| {
                let mut s = format!("{}/{}", p.os(), p.architecture());
                if let Some(v) = p.variant() {
                    s.push('/');
                    s.push_str(v);
                }
                s
            })
            .collect();
        format!("no image for platform {platform} (available: {}); pick one with --platform", available.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_validated_before_use_as_paths() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(blob_path(&good).unwrap(), format!("blobs/sha256/{}", "a".repeat(64)));
        for bad in
            ["sha256:../../etc/passwd", "md5:abc", "sha256:ABC", "nocolon", &format!("sha256:{}/x", "a".repeat(62))]
        {
            assert!(blob_path(bad).is_err(), "{bad}");
        }
    }
}

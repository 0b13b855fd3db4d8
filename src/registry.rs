//! OCI distribution client: pulls an image (manifest, config, layers) into a temp OCI layout,
//! verifying every digest, so the scanner reads it like any layout. No daemon involved.

pub mod auth;
pub mod client;
pub mod records;
pub mod reference;
pub mod target;
pub mod tls;

use std::path::PathBuf;

pub use client::Client;
pub use reference::ImageReference;
pub use target::RegistryTarget;

use crate::oci::{Platform, blob_path};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry}: unauthorized: {detail}")]
    Unauthorized { registry: String, detail: String },
    #[error("{what}: not found in the registry")]
    NotFound { what: String },
    #[error("{what}: HTTP {status}: {body}")]
    Http { what: String, status: u16, body: String },
    #[error("{what}: {detail}")]
    Transport { what: String, detail: String },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    Digest { what: String, expected: String, actual: String },
    #[error("{what}: {message}")]
    Format { what: String, message: String },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Accept plain HTTP and unverified TLS (self-signed) for this registry.
    pub insecure: bool,
    /// A PEM CA certificate to trust in addition to the system's.
    pub ca_file: Option<PathBuf>,
    /// Auth files to read credentials from (default: `auth::auth_files()`).
    pub auth_files: Option<Vec<PathBuf>>,
}

/// An image pulled into a temp OCI layout (removed when this is dropped).
pub struct Pulled {
    pub temp: tempfile::TempDir,
    pub layout: PathBuf,
    pub manifest_digest: String,
    /// The image index the platform's manifest was chosen from (a multi-platform image).
    pub index_digest: Option<String>,
}

pub(crate) const INDEX_TYPES: &[&str] =
    &["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];

/// Pulls `reference` for `platform`. `progress` gets the bytes downloaded so far and the total.
pub async fn pull(
    reference: &ImageReference,
    options: &RegistryOptions,
    platform: &Platform,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Pulled, RegistryError> {
    let client = Client::connect(reference, options).await?;
    let repo = &reference.repository;
    let what = reference.to_string();
    let (mut bytes, mut media_type, mut digest) = client.manifest(repo, reference.manifest_ref()).await?;
    let mut index_digest = None;
    if INDEX_TYPES.iter().any(|t| media_type.starts_with(t)) {
        index_digest = Some(digest.clone());
        let index: oci_spec::image::ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Format { what: what.clone(), message: format!("image index: {e}") })?;
        let chosen = crate::oci::select_platform(&index, platform)
            .map_err(|message| RegistryError::Format { what: what.clone(), message })?;
        let chosen_digest = chosen.digest().to_string();
        (bytes, media_type, digest) = client.manifest(repo, &chosen_digest).await?;
    }
    if media_type.contains("manifest.v1+") && media_type.contains("docker") {
        return Err(RegistryError::Format {
            what,
            message: "Docker schema 1 manifests are not supported (re-push the image)".into(),
        });
    }
    let manifest: oci_spec::image::ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| RegistryError::Format { what: what.clone(), message: format!("manifest {digest}: {e}") })?;

    let temp = tempfile::Builder::new()
        .prefix("picket-pull")
        .tempdir()
        .map_err(|source| RegistryError::Io { what: "temp dir".into(), source })?;
    let layout = temp.path().to_path_buf();
    let io = |what: String| move |source| RegistryError::Io { what, source };
    std::fs::create_dir_all(layout.join("blobs/sha256")).map_err(io(layout.display().to_string()))?;
    let store_blob = |digest: &str, data: &[u8]| -> Result<(), RegistryError> {
        let path =
            layout.join(blob_path(digest).map_err(|m| RegistryError::Format { what: what.clone(), message: m })?);
        std::fs::write(&path, data).map_err(io(path.display().to_string()))
    };
    store_blob(&digest, &bytes)?;
    let total: u64 = manifest.layers().iter().map(|l| l.size()).sum::<u64>() + manifest.config().size();
    let mut done = 0u64;
    let blobs = std::iter::once(manifest.config()).chain(manifest.layers().iter());
    for descriptor in blobs {
        let blob_digest = descriptor.digest().to_string();
        let path =
            layout.join(blob_path(&blob_digest).map_err(|m| RegistryError::Format { what: what.clone(), message: m })?);
        let base = done;
        done += client
            .blob_to_file(repo, &blob_digest, Some(descriptor.size()), &path, &|n| progress(base + n, total))
            .await?;
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": media_type,
            "digest": digest,
            "size": bytes.len(),
            "annotations": { "org.opencontainers.image.ref.name": what },
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).map_err(io("index.json".into()))?;
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io("oci-layout".into()))?;
    Ok(Pulled { temp, layout, manifest_digest: digest, index_digest })
}

//! OCI image layouts (a directory, or the same inside a tar): index.json → (index →) manifest →
//! config and layers, every blob's digest checked as it is read.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use super::{Image, ImageMeta, LayerMeta, Platform};
use crate::scan::ScanError;
use crate::scan::blobs::{BlobStore, blob_path, sha256_digest};

/// Manifests, configs and indexes are small JSON documents; anything larger is not one.
const MAX_JSON: u64 = 16 * 1024 * 1024;
const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn format_error(what: &str, message: impl Into<String>) -> ScanError {
    ScanError::Format { what: what.to_string(), message: message.into() }
}

fn read_json_blob(store: &BlobStore, what: &str, digest: &str) -> Result<Vec<u8>, ScanError> {
    let path = blob_path(digest).map_err(|m| format_error(what, m))?;
    let bytes = store.read_all(&path, MAX_JSON)?;
    let actual = sha256_digest(&bytes);
    if digest.starts_with("sha256:") && actual != digest {
        return Err(format_error(
            what,
            format!("blob {digest} has digest {actual}: the layout is corrupt or tampered with"),
        ));
    }
    Ok(bytes)
}

fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str)
}

fn is_index(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex)
        || media_type.to_string() == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// Opens the image in a layout. `reference` picks among several by their ref name (the tag
/// part after `:` also matches), `platform` picks inside an image index.
pub fn open(
    store: BlobStore,
    what: &str,
    reference: Option<&str>,
    platform: &Platform,
    name_override: Option<String>,
) -> Result<Image, ScanError> {
    let index_bytes = store.read_all("index.json", MAX_JSON)?;
    let index: ImageIndex =
        serde_json::from_slice(&index_bytes).map_err(|e| format_error(what, format!("index.json: {e}")))?;
    let manifests = index.manifests();
    let chosen = match reference {
        Some(r) => manifests
            .iter()
            .find(|d| ref_name(d).is_some_and(|n| n == r || n.rsplit_once(':').is_some_and(|(_, tag)| tag == r)))
            .ok_or_else(|| {
                let names: Vec<&str> = manifests.iter().filter_map(ref_name).collect();
                format_error(what, format!("no image named '{r}' in the layout (it has: {})", names.join(", ")))
            })?,
        None => match manifests.as_slice() {
            [only] => only,
            [] => return Err(format_error(what, "index.json lists no images")),
            several => {
                let names: Vec<String> =
                    several.iter().map(|d| ref_name(d).map_or_else(|| d.digest().to_string(), String::from)).collect();
                return Err(format_error(
                    what,
                    format!("the layout holds {} images ({}); name one as PATH:REF", several.len(), names.join(", ")),
                ));
            }
        },
    };
    let tag = ref_name(chosen).map(String::from);
    let index_digest = is_index(chosen.media_type()).then(|| chosen.digest().to_string());
    let manifest_descriptor = if is_index(chosen.media_type()) {
        let nested: ImageIndex = serde_json::from_slice(&read_json_blob(&store, what, chosen.digest().as_ref())?)
            .map_err(|e| format_error(what, format!("image index {}: {e}", chosen.digest())))?;
        crate::oci::select_platform(&nested, platform).map_err(|m| format_error(what, m))?.clone()
    } else {
        chosen.clone()
    };
    let manifest_digest = manifest_descriptor.digest().to_string();
    let manifest: ImageManifest = serde_json::from_slice(&read_json_blob(&store, what, &manifest_digest)?)
        .map_err(|e| format_error(what, format!("manifest {manifest_digest}: {e}")))?;
    let config_digest = manifest.config().digest().to_string();
    let config: ImageConfiguration = serde_json::from_slice(&read_json_blob(&store, what, &config_digest)?)
        .map_err(|e| format_error(what, format!("config {config_digest}: {e}")))?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(format_error(
            what,
            format!("manifest lists {} layers but the config {} diff ids", manifest.layers().len(), diff_ids.len()),
        ));
    }
    let layers = manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| {
            let digest = layer.digest().to_string();
            Ok(LayerMeta {
                diff_id: diff_id.clone(),
                blob: blob_path(&digest).map_err(|m| format_error(what, m))?,
                verify: Some(digest.clone()),
                digest: Some(digest),
                size: Some(layer.size()),
                media_type: Some(layer.media_type().to_string()),
            })
        })
        .collect::<Result<Vec<_>, ScanError>>()?;
    let name = name_override.unwrap_or_else(|| what.to_string());
    Ok(Image {
        meta: ImageMeta {
            name,
            manifest_digest: Some(manifest_digest),
            index_digest,
            config_digest,
            os: config.os().to_string(),
            architecture: config.architecture().to_string(),
            tags: tag.into_iter().collect(),
            layers,
        },
        store,
        _temp: None,
    })
}

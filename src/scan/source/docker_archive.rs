//! `docker save` / `podman save` / skopeo `docker-archive:` tars, plain or gzip-compressed:
//! manifest.json → config and layer tars, read in place by offset.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use oci_spec::image::ImageConfiguration;
use serde::Deserialize;

use super::{Image, ImageMeta, LayerMeta, Platform};
use crate::scan::ScanError;
use crate::scan::blobs::{BlobStore, blob_path, sha256_digest};
use crate::scan::limits::Limits;

const MAX_JSON: u64 = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn format_error(what: &str, message: impl Into<String>) -> ScanError {
    ScanError::Format { what: what.to_string(), message: message.into() }
}

pub fn open(
    path: &Path,
    reference: Option<&str>,
    what: &str,
    platform: &Platform,
    limits: &Limits,
) -> Result<Image, ScanError> {
    let (store, temp) = open_store(path, what, limits)?;
    // Docker 25+ writes an OCI layout inside the archive as well; it carries the manifest digest.
    if store.contains("index.json") && store.contains("oci-layout") {
        let mut image = super::oci_layout::open(store, what, reference, platform, None)?;
        image._temp = temp;
        return Ok(image);
    }
    let manifest: Vec<ManifestEntry> = serde_json::from_slice(&store.read_all("manifest.json", MAX_JSON)?)
        .map_err(|e| format_error(what, format!("manifest.json: {e}")))?;
    let tags_of = |m: &ManifestEntry| m.repo_tags.clone().unwrap_or_default();
    let entry = match (reference, manifest.as_slice()) {
        (Some(r), entries) => entries
            .iter()
            .find(|m| {
                tags_of(m).iter().any(|t| {
                    t == r || t.ends_with(&format!("/{r}")) || t.rsplit_once(':').is_some_and(|(_, tag)| tag == r)
                })
            })
            .ok_or_else(|| format_error(what, format!("no image tagged '{r}' in the archive")))?,
        (None, [only]) => only,
        (None, []) => return Err(format_error(what, "manifest.json lists no images")),
        (None, several) => {
            let tags: Vec<String> = several.iter().flat_map(tags_of).collect();
            return Err(format_error(
                what,
                format!("the archive holds {} images ({}); name one as PATH:TAG", several.len(), tags.join(", ")),
            ));
        }
    };
    let config_bytes = store.read_all(&entry.config, MAX_JSON)?;
    let config_digest = sha256_digest(&config_bytes);
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
        .map_err(|e| format_error(what, format!("config {}: {e}", entry.config)))?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        return Err(format_error(
            what,
            format!("manifest lists {} layers but the config {} diff ids", entry.layers.len(), diff_ids.len()),
        ));
    }
    let layers = entry
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(blob, diff_id)| {
            // Blobs named by digest are verified against it; legacy `<id>/layer.tar` files are
            // plain tars, so their sha256 is the diff id.
            let by_digest = blob
                .strip_prefix("blobs/")
                .and_then(|rest| rest.split_once('/'))
                .map(|(alg, hex)| format!("{alg}:{hex}"));
            let verify = match &by_digest {
                Some(digest) => {
                    blob_path(digest).map_err(|m| format_error(what, m))?;
                    digest.clone()
                }
                None => diff_id.clone(),
            };
            Ok(LayerMeta {
                diff_id: diff_id.clone(),
                digest: by_digest,
                size: None,
                media_type: None,
                blob: blob.clone(),
                verify: Some(verify),
            })
        })
        .collect::<Result<Vec<_>, ScanError>>()?;
    Ok(Image {
        meta: ImageMeta {
            name: what.to_string(),
            manifest_digest: None,
            index_digest: None,
            config_digest,
            os: config.os().to_string(),
            architecture: config.architecture().to_string(),
            tags: tags_of(entry),
            layers,
        },
        store,
        _temp: temp,
    })
}

/// The largest expansion of a gzip-compressed docker archive as a whole.
const OUTER_RATIO: u64 = 100;

/// How far a gzip-compressed archive of `compressed` bytes may expand, and which limit says so:
/// the image size limit, or (past the floor small archives get) the expansion ratio, so that a
/// few megabytes of zeros are not read for gigabytes.
fn expansion_cap(compressed: u64, limits: &Limits) -> (u64, String) {
    // The gzip holds a tar of layers, themselves compressed or not: real archives expand 2 to
    // 10 times; gzip of zeros, a thousand.
    let ratio = limits.max_ratio.min(OUTER_RATIO);
    let by_ratio = crate::scan::limits::RATIO_FLOOR.max(compressed.saturating_mul(ratio));
    if by_ratio < limits.max_image_bytes {
        (by_ratio, format!("{ratio}× its {compressed} compressed bytes, the largest expansion ratio"))
    } else {
        (limits.max_image_bytes, "the image size limit".to_string())
    }
}

/// A plain archive is read in place; a gzip-compressed one is expanded into a temp dir first
/// (tar members cannot be reached by offset through gzip), bounded by the image size limit.
fn open_store(path: &Path, what: &str, limits: &Limits) -> Result<(BlobStore, Option<tempfile::TempDir>), ScanError> {
    let file = std::fs::File::open(path).map_err(|e| ScanError::io(what, e))?;
    let mut reader = BufReader::new(file);
    let gzip = reader.fill_buf().map_err(|e| ScanError::io(what, e))?.starts_with(&[0x1f, 0x8b]);
    if !gzip {
        return Ok((BlobStore::tar(path)?, None));
    }
    let temp = tempfile::Builder::new().prefix("picket-archive").tempdir().map_err(|e| ScanError::io("temp dir", e))?;
    let expanded = temp.path().join("archive.tar");
    let mut out = std::fs::File::create(&expanded).map_err(|e| ScanError::io(what, e))?;
    let compressed = std::fs::metadata(path).map_err(|e| ScanError::io(what, e))?.len();
    let (max, why) = expansion_cap(compressed, limits);
    let copied = std::io::copy(&mut flate2::read::MultiGzDecoder::new(reader).take(max + 1), &mut out)
        .map_err(|e| ScanError::io(what, e))?;
    if copied > max {
        return Err(ScanError::Limit { what: what.to_string(), message: format!("expands past {max} bytes ({why})") });
    }
    Ok((BlobStore::tar(&expanded)?, Some(temp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gzip_archive_expands_by_the_ratio_at_most() {
        let limits = Limits::default();
        let (cap, why) = expansion_cap(8 * 1024 * 1024, &limits);
        assert_eq!(cap, 8 * 1024 * 1024 * OUTER_RATIO, "8 MB of zeros does not read gigabytes");
        assert!(why.contains("ratio"), "{why}");
        let (cap, _) = expansion_cap(1024, &limits);
        assert_eq!(cap, crate::scan::limits::RATIO_FLOOR, "small archives get the floor");
        let (cap, why) = expansion_cap(u64::MAX / 2, &limits);
        assert_eq!((cap, why.as_str()), (limits.max_image_bytes, "the image size limit"));
    }
}

//! Where an image or filesystem comes from. Every source yields an [`Image`]: its identity, and
//! its layers in order, each opened as a stream only when it is applied.

pub mod docker_archive;
pub mod engine;
pub mod oci_layout;

use std::io::Read;
use std::path::{Path, PathBuf};

use super::ScanError;
use super::blobs::BlobStore;
pub use crate::oci::{ImageMeta, LayerMeta, Platform};

/// What the user asked to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// An OCI image layout directory, optionally with a ref name to pick one image.
    OciDir { path: PathBuf, reference: Option<String> },
    /// A tar of an OCI image layout.
    OciArchive { path: PathBuf, reference: Option<String> },
    /// A `docker save` archive, plain or gzip-compressed.
    DockerArchive { path: PathBuf, reference: Option<String> },
    /// A root filesystem directory (`/` scans the host).
    Rootfs { path: PathBuf },
    /// An image held by a local engine, exported through its API (`docker save`).
    Engine { kind: Option<crate::engine::EngineKind>, name: String },
    /// An image in a registry, pulled through the OCI distribution API.
    Registry { reference: crate::registry::ImageReference },
}

impl SourceSpec {
    /// Parses `oci-dir:PATH[:REF]`, `oci-archive:PATH[:REF]`, `docker-archive:PATH[:REF]`,
    /// `dir:PATH` / `rootfs:PATH`, or a bare path whose kind is detected from its contents.
    pub fn parse(text: &str) -> Result<Self, ScanError> {
        let split_ref = |rest: &str| -> (PathBuf, Option<String>) {
            if Path::new(rest).exists() {
                return (PathBuf::from(rest), None);
            }
            match rest.rsplit_once(':') {
                Some((path, reference)) if Path::new(path).exists() => {
                    (PathBuf::from(path), Some(reference.to_string()))
                }
                _ => (PathBuf::from(rest), None),
            }
        };
        if let Some((scheme, rest)) = text.split_once(':') {
            match scheme {
                "oci" | "oci-dir" => {
                    let (path, reference) = split_ref(rest);
                    return Ok(Self::OciDir { path, reference });
                }
                "oci-archive" => {
                    let (path, reference) = split_ref(rest);
                    return Ok(Self::OciArchive { path, reference });
                }
                "docker-archive" => {
                    let (path, reference) = split_ref(rest);
                    return Ok(Self::DockerArchive { path, reference });
                }
                "dir" | "rootfs" => return Ok(Self::Rootfs { path: PathBuf::from(rest) }),
                "registry" => {
                    let reference = crate::registry::ImageReference::parse(rest)
                        .map_err(|message| ScanError::Source { what: text.to_string(), message })?;
                    return Ok(Self::Registry { reference });
                }
                "docker" | "podman" | "engine" if !rest.is_empty() => {
                    let kind = match scheme {
                        "docker" => Some(crate::engine::EngineKind::Docker),
                        "podman" => Some(crate::engine::EngineKind::Podman),
                        _ => None,
                    };
                    return Ok(Self::Engine { kind, name: rest.to_string() });
                }
                _ => {}
            }
        }
        let (path, reference) = split_ref(text);
        // `host[:port]/repo[:tag]` that is not a file: a registry reference.
        if !path.exists()
            && let Some((first, _)) = text.split_once('/')
            && (first.contains('.') || first.contains(':') || first == "localhost")
            && !text.starts_with('.')
            && let Ok(reference) = crate::registry::ImageReference::parse(text)
        {
            return Ok(Self::Registry { reference });
        }
        if path.is_dir() {
            if path.join("oci-layout").is_file() {
                return Ok(Self::OciDir { path, reference });
            }
            return Ok(Self::Rootfs { path });
        }
        if path.is_file() {
            return Ok(detect_archive(path, reference));
        }
        Err(ScanError::Source {
            what: text.to_string(),
            message: "no such file or directory (sources: an OCI layout directory, an OCI or docker-save \
                      archive, a root filesystem directory, or oci-dir:, oci-archive:, docker-archive:, dir:, docker:, podman:, engine:, \
                      registry:REF or HOST/REPO:TAG)"
                .into(),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Self::OciDir { path, reference }
            | Self::OciArchive { path, reference }
            | Self::DockerArchive { path, reference } => match reference {
                Some(r) => format!("{}:{r}", path.display()),
                None => path.display().to_string(),
            },
            Self::Rootfs { path } => path.display().to_string(),
            Self::Engine { name, .. } => name.clone(),
            Self::Registry { reference } => reference.to_string(),
        }
    }
}

/// An archive is an OCI archive if it holds `oci-layout` at its top, else a docker archive.
fn detect_archive(path: PathBuf, reference: Option<String>) -> SourceSpec {
    let is_oci = std::fs::File::open(&path)
        .ok()
        .and_then(|file| {
            let mut archive = tar::Archive::new(file);
            let entries = super::tarball::members(&mut archive).ok()?;
            let mut found = false;
            for member in entries.take(10_000).flatten() {
                let name = member.path_lossy().trim_start_matches("./").to_string();
                if name == "manifest.json" {
                    return Some(false);
                }
                if name == "oci-layout" {
                    found = true;
                }
            }
            Some(found)
        })
        .unwrap_or(false);
    if is_oci { SourceSpec::OciArchive { path, reference } } else { SourceSpec::DockerArchive { path, reference } }
}

pub struct Image {
    pub meta: ImageMeta,
    pub store: BlobStore,
    /// Kept for sources that had to decompress the archive into a temp file.
    pub _temp: Option<tempfile::TempDir>,
}

impl Image {
    pub fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send>, ScanError> {
        let layer = self
            .meta
            .layers
            .get(index)
            .ok_or_else(|| ScanError::Format { what: self.meta.name.clone(), message: format!("no layer {index}") })?;
        let reader = self.store.open(&layer.blob)?;
        Ok(match &layer.verify {
            Some(digest) => Box::new(super::blobs::Verifying::new(reader, digest, layer.size)),
            None => reader,
        })
    }
}

/// Opens an image source (every kind but a root filesystem, which has no layers).
pub fn open_image(spec: &SourceSpec, platform: &Platform, limits: &super::Limits) -> Result<Image, ScanError> {
    match spec {
        SourceSpec::OciDir { path, reference } => {
            if !path.join("oci-layout").is_file() {
                return Err(ScanError::Source {
                    what: path.display().to_string(),
                    message: "not an OCI image layout (no oci-layout file)".into(),
                });
            }
            oci_layout::open(BlobStore::Dir(path.clone()), &spec.describe(), reference.as_deref(), platform, None)
        }
        SourceSpec::OciArchive { path, reference } => {
            oci_layout::open(BlobStore::tar(path)?, &spec.describe(), reference.as_deref(), platform, None)
        }
        SourceSpec::DockerArchive { path, reference } => {
            docker_archive::open(path, reference.as_deref(), &spec.describe(), platform, limits)
        }
        SourceSpec::Rootfs { path } => Err(ScanError::Source {
            what: path.display().to_string(),
            message: "a root filesystem has no image layers".into(),
        }),
        SourceSpec::Engine { name, .. } => Err(ScanError::Source {
            what: name.clone(),
            message: "engine images are exported first (scan::inventory_async)".into(),
        }),
        SourceSpec::Registry { reference } => Err(ScanError::Source {
            what: reference.to_string(),
            message: "registry images are pulled first (scan::inventory_async)".into(),
        }),
    }
}

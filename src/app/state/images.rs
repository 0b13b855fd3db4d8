//! The Images pane (and an image's packages): engine images and stored SBOMs side by side, scans under way.

use std::path::PathBuf;
use std::sync::Arc;

use super::{ListView, Loadable};
use crate::app::action::StoredSbom;
use crate::engine::{EngineKind, ImageInfo};
use crate::model::Package;
use crate::scan::Sbom;

/// One row of the Images pane: an engine's image, a stored SBOM, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    pub name: String,
    pub id: String,
    pub size: Option<i64>,
    pub engine: Option<(EngineKind, PathBuf)>,
    pub stored: Option<StoredSbom>,
}

/// A scan under way, as its progress reports arrive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanState {
    pub request: u64,
    pub layers_done: usize,
    pub layers_total: usize,
    pub expanded_bytes: u64,
    pub cataloging: bool,
    /// Bytes pulled from a registry so far, of the total.
    pub pulled: Option<(u64, u64)>,
}

/// The package list of one stored SBOM, sorted by ecosystem, layer, name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagesState {
    pub request: u64,
    pub title: String,
    pub sbom: Loadable<Arc<Sbom>>,
    /// Per package (same order as `sbom.packages` after sorting): the 1-based layer index.
    pub order: Vec<(usize, Option<usize>)>,
    pub view: ListView,
}

impl PackagesState {
    /// Rows in display order: (package, layer number).
    pub fn rows(&self) -> Vec<(&Package, Option<usize>)> {
        match &self.sbom {
            Loadable::Ready(sbom) => {
                self.order.iter().filter_map(|(i, layer)| sbom.packages.get(*i).map(|p| (p, *layer))).collect()
            }
            _ => Vec::new(),
        }
    }
}

pub fn image_text(i: &ImageRow) -> String {
    format!("{} {} {}", i.name, i.id, i.stored.as_ref().and_then(|s| s.distro.clone()).unwrap_or_default())
}

pub fn package_text(p: &Package) -> String {
    let path = p.locations.first().map(|l| l.path.as_str()).unwrap_or_default();
    format!("{} {} {} {path}", p.ecosystem, p.name, p.version)
}

/// Images pane rows: every engine image, matched to its stored SBOM by config digest (the image
/// id) or name, then the stored SBOMs no engine holds.
pub fn image_rows(engine_images: &[ImageInfo], stored: &[StoredSbom]) -> Vec<ImageRow> {
    let mut rows: Vec<ImageRow> = engine_images
        .iter()
        .map(|image| {
            let found = stored.iter().find(|s| s.config_digest.as_deref() == Some(image.id.as_str())).or_else(|| {
                stored.iter().find(|s| s.name == image.name() && s.kind == image.engine.as_str().to_ascii_lowercase())
            });
            ImageRow {
                name: image.name().to_string(),
                id: image.id.clone(),
                size: Some(image.size),
                engine: Some((image.engine, image.socket.clone())),
                stored: found.cloned(),
            }
        })
        .collect();
    for sbom in stored {
        if !rows.iter().any(|r| r.stored.as_ref().is_some_and(|s| s.key == sbom.key)) {
            rows.push(ImageRow {
                name: sbom.name.clone(),
                id: sbom.config_digest.clone().unwrap_or_else(|| sbom.key.clone()),
                size: None,
                engine: None,
                stored: Some(sbom.clone()),
            });
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    rows
}

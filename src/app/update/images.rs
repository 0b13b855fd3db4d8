//! Transitions of the Images pane and an image's packages: stored SBOMs, scans and their
//! progress.

use std::sync::Arc;

use super::toast;
use crate::app::action::{Command, Effect, StoredSbom};
use crate::app::state::{AppState, Loadable, PackagesState, PaneId, ScanState, image_rows, image_text, package_text};
use crate::scan::{Progress, Sbom};

/// The stored SBOMs were listed.
pub fn stored(state: &mut AppState, result: Result<Vec<StoredSbom>, String>) -> Vec<Effect> {
    match result {
        Ok(stored) => {
            state.stored = Loadable::Ready(stored);
            rebuild_images(state);
            vec![]
        }
        Err(err) => {
            state.stored = Loadable::Failed(err.clone());
            toast(state, err, true)
        }
    }
}

/// A scan reported progress.
pub fn progress(state: &mut AppState, request: u64, progress: Progress) -> Vec<Effect> {
    if let Some(scan) = state.scans.values_mut().find(|s| s.request == request) {
        match progress {
            Progress::Pulled { bytes, of } => scan.pulled = Some((bytes, of)),
            Progress::Opened { layers } => scan.layers_total = layers,
            Progress::Layer { index, of, expanded_bytes } => {
                scan.layers_done = index + 1;
                scan.layers_total = of;
                scan.expanded_bytes += expanded_bytes;
            }
            Progress::Cataloged { .. } => scan.cataloging = true,
        }
    }
    vec![]
}

/// A scan ended: its SBOM is stored (or why not).
pub fn scan_finished(
    state: &mut AppState,
    request: u64,
    name: String,
    result: Result<StoredSbom, String>,
) -> Vec<Effect> {
    if state.scans.get(&name).is_some_and(|s| s.request == request) {
        state.scans.remove(&name);
    }
    match result {
        Ok(stored) => {
            let message = format!("{name}: {} packages", stored.packages);
            if let Loadable::Ready(list) = &mut state.stored {
                list.retain(|s| s.key != stored.key);
                list.push(stored);
            } else {
                state.stored = Loadable::Ready(vec![stored]);
            }
            rebuild_images(state);
            toast(state, message, false)
        }
        Err(err) => toast(state, format!("scan of {name} failed: {err}"), true),
    }
}

/// An image's SBOM arrived for its packages.
pub fn sbom_loaded(state: &mut AppState, request: u64, result: Result<Arc<Sbom>, String>) -> Vec<Effect> {
    if let Some(packages) = state.packages.as_mut().filter(|p| p.request == request) {
        match result {
            Ok(sbom) => {
                packages.order = package_order(&sbom);
                packages.sbom = Loadable::Ready(sbom);
            }
            Err(err) => packages.sbom = Loadable::Failed(err),
        }
        refilter_packages(state);
    }
    vec![]
}

/// Enter on an image: its packages, when it has been scanned.
pub fn enter(state: &mut AppState) -> Vec<Effect> {
    let Some(image) = state.selected_image().cloned() else { return vec![] };
    let Some(stored) = image.stored else {
        let key = state.keymap.hint(Command::Scan).unwrap_or_else(|| "s".into());
        return toast(state, format!("{} has not been scanned yet: press {key}", image.name), false);
    };
    let request = state.take_id();
    state.packages = Some(PackagesState {
        request,
        title: image.name,
        sbom: Loadable::Loading,
        order: Vec::new(),
        view: Default::default(),
    });
    state.nav.push(PaneId::Packages);
    vec![Effect::LoadSbom { request, key: stored.key }]
}

/// `s` on an image: scan it through its engine.
pub fn scan_selected(state: &mut AppState) -> Vec<Effect> {
    if state.pane() != PaneId::Images {
        return vec![];
    }
    let Some(image) = state.selected_image().cloned() else { return vec![] };
    let Some((kind, socket)) = image.engine else {
        return toast(
            state,
            format!("{} came from a file: scan it again with 'picket sbom SOURCE'", image.name),
            false,
        );
    };
    if state.scans.contains_key(&image.name) {
        return toast(state, format!("{} is already being scanned", image.name), false);
    }
    let request = state.take_id();
    state.scans.insert(image.name.clone(), ScanState { request, ..ScanState::default() });
    vec![Effect::ScanImage { request, name: image.name, kind, socket }]
}

/// Packages sorted by ecosystem, then the layer that holds them, then name.
fn package_order(sbom: &crate::scan::Sbom) -> Vec<(usize, Option<usize>)> {
    let layers: Vec<&str> =
        sbom.source.image.as_ref().map(|i| i.layers.iter().map(|l| l.diff_id.as_str()).collect()).unwrap_or_default();
    let layer_of = |p: &crate::model::Package| {
        p.locations
            .first()
            .and_then(|l| l.layer.as_deref())
            .and_then(|id| layers.iter().position(|d| *d == id))
            .map(|i| i + 1)
    };
    let mut order: Vec<(usize, Option<usize>)> =
        sbom.packages.iter().enumerate().map(|(i, p)| (i, layer_of(p))).collect();
    order.sort_by(|a, b| {
        let (pa, pb) = (&sbom.packages[a.0], &sbom.packages[b.0]);
        (pa.ecosystem, a.1, &pa.name, &pa.version).cmp(&(pb.ecosystem, b.1, &pb.name, &pb.version))
    });
    order
}

pub fn refilter(state: &mut AppState) {
    let texts: Vec<String> = state.images.iter().map(image_text).collect();
    state.images_view.refilter(texts.into_iter());
}

/// The rows again from the engines' images and the stored SBOMs, the selection kept.
pub fn rebuild_images(state: &mut AppState) {
    let selected = state.selected_image().map(|i| (i.name.clone(), i.id.clone()));
    let engine_images: Vec<crate::engine::ImageInfo> = state
        .engines
        .ready()
        .map(|probes| probes.iter().filter_map(|p| p.result.as_ref().ok()).flat_map(|e| e.images.clone()).collect())
        .unwrap_or_default();
    let stored = state.stored.ready().cloned().unwrap_or_default();
    state.images = image_rows(&engine_images, &stored);
    refilter(state);
    if let Some((name, id)) = selected
        && let Some(row) = state.images.iter().position(|i| i.name == name && i.id == id)
    {
        state.images_view.select_row(row);
    }
}

pub fn refilter_packages(state: &mut AppState) {
    if let Some(packages) = state.packages.as_mut() {
        let texts: Vec<String> = packages.rows().iter().map(|(p, _)| package_text(p)).collect();
        packages.view.refilter(texts.into_iter());
    }
}

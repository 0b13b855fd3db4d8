//! Transitions of the Containers pane and a container's detail.

use super::images::rebuild_images;
use crate::app::action::Effect;
use crate::app::state::{AppState, DetailState, Loadable, PaneId, container_text};
use crate::engine::{ContainerDetail, EngineProbe};

/// The engines answered: their containers (the selection kept on the same container).
pub fn engines(state: &mut AppState, probes: Vec<EngineProbe>) -> Vec<Effect> {
    let selected_id = state.containers_view.current().and_then(|i| state.containers.get(i)).map(|c| c.id.clone());
    state.containers =
        probes.iter().filter_map(|p| p.result.as_ref().ok()).flat_map(|e| e.containers.clone()).collect();
    state.engines = Loadable::Ready(probes);
    state.engines_loading = false;
    refilter(state);
    rebuild_images(state);
    if let Some(id) = selected_id
        && let Some(row) = state.containers.iter().position(|c| c.id == id)
    {
        state.containers_view.select_row(row);
    }
    vec![]
}

/// A container's inspection arrived (ignored when another was asked for since).
pub fn detail(state: &mut AppState, request: u64, result: Result<Box<ContainerDetail>, String>) -> Vec<Effect> {
    if let Some(detail) = state.detail.as_mut().filter(|d| d.request == request) {
        detail.detail = match result {
            Ok(d) => Loadable::Ready(*d),
            Err(e) => Loadable::Failed(e),
        };
    }
    vec![]
}

/// Enter on a container: its detail.
pub fn enter(state: &mut AppState) -> Vec<Effect> {
    let Some(container) = state.selected_container().cloned() else { return vec![] };
    let request = state.take_id();
    let effect = Effect::InspectContainer { request, socket: container.socket.clone(), id: container.id.clone() };
    state.detail = Some(DetailState { request, container, detail: Loadable::Loading });
    state.nav.push(PaneId::ContainerDetail);
    vec![effect]
}

pub fn refilter(state: &mut AppState) {
    let texts: Vec<String> = state.containers.iter().map(container_text).collect();
    state.containers_view.refilter(texts.into_iter());
}

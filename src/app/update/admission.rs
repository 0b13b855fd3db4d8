//! Transitions of the Admission pane: load (first showing, `ctrl-r`, a new context), the
//! namespace picked with `n`, one decision in full on enter (scrolled with the page keys).

use std::sync::Arc;

use crate::app::action::Effect;
use crate::app::state::{AdmissionData, AdmissionState, AppState, Loadable, PaneId};

pub fn ensure_loaded(state: &mut AppState) -> Vec<Effect> {
    if state.admission.is_some() { vec![] } else { load(state) }
}

/// Reads the decisions and runs the dry run again; rows shown stay until the answer comes.
pub fn load(state: &mut AppState) -> Vec<Effect> {
    let request = state.take_id();
    let context = state.context.clone();
    match state.admission.as_mut() {
        Some(admission) if admission.context == context => {
            admission.request = request;
            admission.loading = true;
            if matches!(admission.data, Loadable::Failed(_)) {
                admission.data = Loadable::Loading;
            }
        }
        _ => state.admission = Some(AdmissionState::new(request, context.clone())),
    }
    vec![Effect::LoadAdmission { request, context }]
}

/// The context changed: the dry run belongs to the old one.
pub fn forget(state: &mut AppState) -> Vec<Effect> {
    state.admission = None;
    if matches!(state.pane(), PaneId::Admission | PaneId::AdmissionDecision) {
        state.nav = vec![PaneId::Admission];
        return load(state);
    }
    vec![]
}

pub fn loaded(state: &mut AppState, request: u64, result: Result<Arc<AdmissionData>, String>) {
    let Some(admission) = state.admission.as_mut().filter(|a| a.request == request) else { return };
    admission.loading = false;
    let selected = admission.selected_index().and_then(|i| admission.rows().get(i)).map(key_of);
    let opened = admission.opened().map(key_of);
    admission.data = match result {
        Ok(data) => Loadable::Ready(data),
        Err(err) => Loadable::Failed(err),
    };
    if let Some(namespace) = admission.namespace.clone()
        && !admission.namespaces().contains(&namespace)
    {
        admission.namespace = None;
    }
    admission.refilter();
    admission.opened = opened.and_then(|key| admission.rows().iter().position(|r| key_of(r) == key));
    if let Some(key) = selected
        && let Some(row) = admission.rows().iter().position(|r| key_of(r) == key)
    {
        admission.view.select_row(row);
    }
}

/// A row's identity across reloads.
fn key_of(row: &crate::app::state::AdmissionRow) -> (Option<String>, String, String) {
    (row.at.clone(), row.operation.clone(), row.subject.clone())
}

/// `n`: all namespaces, then each in turn, then all again.
pub fn next_namespace(state: &mut AppState) -> Vec<Effect> {
    let Some(admission) = state.admission.as_mut() else { return vec![] };
    let names = admission.namespaces();
    let next = match &admission.namespace {
        None => names.first(),
        Some(current) => names.iter().skip_while(|n| *n != current).nth(1),
    };
    admission.namespace = next.cloned();
    admission.view.selected = 0;
    admission.refilter();
    vec![]
}

pub fn enter(state: &mut AppState) -> Vec<Effect> {
    let Some(admission) = state.admission.as_mut() else { return vec![] };
    let Some(index) = admission.selected_index() else { return vec![] };
    admission.opened = Some(index);
    admission.scroll = 0;
    state.nav.push(PaneId::AdmissionDecision);
    vec![]
}

pub fn scroll(state: &mut AppState, delta: isize) -> Vec<Effect> {
    if let Some(admission) = state.admission.as_mut() {
        let lines = admission.opened().map_or(0, |r| r.detail.lines().count());
        admission.scroll = admission.scroll.saturating_add_signed(delta).min(lines.saturating_sub(1));
    }
    vec![]
}

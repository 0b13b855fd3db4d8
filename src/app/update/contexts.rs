//! Transitions of the Contexts pane: kubeconfig contexts, switching the active one.

use super::{toast, workloads};
use crate::app::action::Effect;
use crate::app::state::{AppState, Loadable, context_text};
use crate::cluster::KubeContexts;

/// kubeconfig was read.
pub fn listed(state: &mut AppState, result: Result<KubeContexts, String>) -> Vec<Effect> {
    match result {
        Ok(contexts) => state.contexts = Loadable::Ready(contexts),
        Err(err) => {
            state.contexts = Loadable::Failed(err.clone());
            return toast(state, err, true);
        }
    }
    refilter(state);
    vec![]
}

/// Enter on a context: it becomes the active one.
pub fn enter(state: &mut AppState) -> Vec<Effect> {
    match state.selected_context().map(|c| c.name.clone()) {
        Some(name) => switch(state, &name),
        None => vec![],
    }
}

pub fn refilter(state: &mut AppState) {
    let texts: Vec<String> = state.context_rows().iter().map(context_text).collect();
    state.contexts_view.refilter(texts.into_iter());
}

pub fn switch(state: &mut AppState, name: &str) -> Vec<Effect> {
    if state.context_rows().iter().any(|c| c.name == name) {
        let changed = state.active_context() != Some(name);
        state.context = Some(name.to_string());
        let mut effects = if changed { workloads::forget(state) } else { vec![] };
        if changed {
            effects.extend(super::admission::forget(state));
        }
        effects.extend(toast(state, format!("context: {name}"), false));
        effects
    } else {
        toast(state, format!("no context '{name}' in kubeconfig"), true)
    }
}

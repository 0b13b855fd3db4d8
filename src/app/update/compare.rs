//! Transitions of the compare view: `:ctx a,b` loads each context's workloads (through the same
//! watched inventories the Workloads pane uses) and lines them up; enter opens one side by side.

use std::sync::Arc;

use super::toast;
use crate::app::action::Effect;
use crate::app::state::{AppState, CompareState, Loadable, PaneId, WorkloadsData};

/// `:ctx a,b[,c…]`: the named contexts side by side.
pub fn open(state: &mut AppState, names: &str) -> Vec<Effect> {
    let contexts: Vec<String> = names.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect();
    let known: Vec<&str> = state.context_rows().iter().map(|c| c.name.as_str()).collect();
    if let Some(unknown) = contexts.iter().find(|c| !known.contains(&c.as_str())) {
        return toast(state, format!("no context '{unknown}' in kubeconfig"), true);
    }
    if contexts.len() < 2 {
        return toast(state, "name two or more contexts to compare: :ctx a,b".into(), true);
    }
    let mut compare = CompareState::new(contexts.clone());
    let mut effects = Vec::new();
    for context in contexts {
        let request = state.take_id();
        compare.requests.insert(request, context.clone());
        effects.push(Effect::LoadInventory { request, context: Some(context) });
    }
    compare.rebuild();
    state.compare = Some(compare);
    state.nav = vec![PaneId::Compare];
    state.check = None;
    effects
}

/// An inventory arrived: the compare view's, when it asked for it (true), else not ours.
pub fn loaded(state: &mut AppState, request: u64, result: &Result<Arc<WorkloadsData>, String>) -> bool {
    let Some(compare) = state.compare.as_mut() else { return false };
    let Some(context) = compare.requests.remove(&request) else { return false };
    compare.loaded.insert(
        context,
        match result {
            Ok(data) => Loadable::Ready(Arc::clone(data)),
            Err(err) => Loadable::Failed(err.clone()),
        },
    );
    compare.rebuild();
    true
}

/// Refresh: every context again.
pub fn reload(state: &mut AppState) -> Vec<Effect> {
    let Some(contexts) = state.compare.as_ref().map(|c| c.contexts.join(",")) else { return vec![] };
    open(state, &contexts)
}

pub fn enter(state: &mut AppState) -> Vec<Effect> {
    if let Some(compare) = state.compare.as_mut()
        && let Some(subject) = compare.selected().map(|r| r.subject())
    {
        compare.opened = Some(subject);
        state.nav.push(PaneId::CompareWorkload);
    }
    vec![]
}

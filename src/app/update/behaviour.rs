//! Transitions of the Behaviour pane: loading the agent's baselines, enter → one group.

use std::collections::BTreeMap;

use crate::app::action::Effect;
use crate::app::state::{AppState, BehaviourState, Loadable, PaneId};
use crate::learn::Baselines;

/// The pane came on screen: load it the first time.
pub fn ensure_loaded(state: &mut AppState) -> Vec<Effect> {
    match state.behaviour {
        Some(_) => vec![],
        None => load(state),
    }
}

/// Asks the agent for its baselines again.
pub fn load(state: &mut AppState) -> Vec<Effect> {
    let request = state.take_id();
    let behaviour = state.behaviour.get_or_insert_with(|| BehaviourState::new(request));
    behaviour.request = request;
    vec![Effect::LoadBaselines { request, socket: state.agent_socket.clone() }]
}

pub fn loaded(state: &mut AppState, request: u64, result: Result<Baselines, String>) {
    let Some(behaviour) = state.behaviour.as_mut().filter(|b| b.request == request) else { return };
    let selected = behaviour.selected().map(|b| b.group.key.clone());
    behaviour.groups = match result {
        Ok(baselines) => {
            let groups: BTreeMap<String, _> = baselines.groups;
            Loadable::Ready(groups.into_values().collect())
        }
        Err(err) => Loadable::Failed(err),
    };
    behaviour.refilter();
    if let Some(key) = selected
        && let Some(row) = behaviour.list().iter().position(|b| b.group.key == key)
    {
        behaviour.view.select_row(row);
    }
}

/// Enter on a group: its baseline in full.
pub fn enter(state: &mut AppState) -> Vec<Effect> {
    let Some(behaviour) = state.behaviour.as_mut() else { return vec![] };
    let Some(key) = behaviour.selected().map(|b| b.group.key.clone()) else { return vec![] };
    behaviour.open = Some(key);
    state.nav.push(PaneId::BehaviourGroup);
    vec![]
}

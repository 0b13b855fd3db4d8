//! Transitions of the Behaviour pane: loading the agent's baselines and the modes it keeps,
//! enter → one group, `m` → its next mode, `a` → accept its selected violation (both after a
//! question, through the calls `picket policy mode|accept` make).

use std::collections::BTreeMap;

use crate::app::action::Effect;
use crate::app::state::{AppState, BehaviourState, Confirmation, GroupMode, Loadable, Mode, PaneId};
use crate::learn::Baselines;
use crate::policy::spec::Mode as PolicyMode;

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
    if !matches!(behaviour.modes, Loadable::Ready(_)) {
        behaviour.modes = Loadable::Loading;
    }
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
    behaviour.violation = 0;
    behaviour.scroll = 0;
    state.nav.push(PaneId::BehaviourGroup);
    vec![]
}

pub fn modes_loaded(state: &mut AppState, request: u64, result: Result<crate::agent::client::Modes, String>) {
    let Some(behaviour) = state.behaviour.as_mut().filter(|b| b.request == request) else { return };
    behaviour.modes = match result {
        Ok(modes) => Loadable::Ready(modes),
        Err(err) => Loadable::Failed(err),
    };
    let count = behaviour.open.as_deref().map_or(0, |g| behaviour.violations_of(g).len());
    behaviour.violation = behaviour.violation.min(count.saturating_sub(1));
}

/// The group `m` and `a` act on: the open one, else the selected row.
fn target(behaviour: &BehaviourState, pane: PaneId) -> Option<String> {
    match pane {
        PaneId::BehaviourGroup => behaviour.open.clone(),
        _ => behaviour.selected().map(|b| b.group.key.clone()),
    }
}

/// `m`: asks, then sets the group's next mode (discover → monitor → protect → discover).
pub fn next_mode(state: &mut AppState) -> Vec<Effect> {
    let pane = state.pane();
    let Some(behaviour) = state.behaviour.as_ref() else { return vec![] };
    let Some(group) = target(behaviour, pane) else { return vec![] };
    if let Loadable::Failed(why) = &behaviour.modes {
        return super::toast(state, format!("modes cannot be set: {why}"), true);
    }
    let (from, to) = match behaviour.mode_of(&group) {
        GroupMode::Held => {
            let said = format!("{group} is held by the policy in force: change its mode on the Policies pane");
            return super::toast(state, said, true);
        }
        GroupMode::Kept(PolicyMode::Discover) => (PolicyMode::Discover, PolicyMode::Monitor),
        GroupMode::Kept(PolicyMode::Monitor) => (PolicyMode::Monitor, PolicyMode::Protect),
        GroupMode::Kept(PolicyMode::Protect) => (PolicyMode::Protect, PolicyMode::Discover),
    };
    let detail = match to {
        PolicyMode::Monitor => "its learned policy goes in force: what it does not allow is alerted, not refused",
        PolicyMode::Protect => "what its policy does not allow is refused (EPERM) and alerted",
        PolicyMode::Discover => "its policy is taken out of force; learning goes on",
    };
    state.mode = Mode::Confirm(Confirmation {
        question: format!("Set {group} from {} to {}?", from.as_str(), to.as_str()),
        detail: format!("{detail}; logged in the agent's promotions.jsonl"),
        effect: Effect::SetGroupMode { socket: state.agent_socket.clone(), group, mode: to },
    });
    vec![]
}

/// `a` on a group: asks, then accepts its selected violation into its policy.
pub fn accept(state: &mut AppState) -> Vec<Effect> {
    if state.pane() != PaneId::BehaviourGroup {
        return super::toast(state, "open a group (enter) to pick one of its violations".into(), false);
    }
    let Some(behaviour) = state.behaviour.as_ref() else { return vec![] };
    let Some(group) = behaviour.open.clone() else { return vec![] };
    let Some(violation) = behaviour.violations_of(&group).get(behaviour.violation).map(|v| v.key()) else {
        return super::toast(state, format!("{group} has no violation to accept"), false);
    };
    state.mode = Mode::Confirm(Confirmation {
        question: format!("Accept {violation} into {group}'s policy?"),
        detail: "it is allowed from now on (picket policy accept); logged in the agent's promotions.jsonl".into(),
        effect: Effect::AcceptViolation { socket: state.agent_socket.clone(), group, violation },
    });
    vec![]
}

/// Page keys in an open group: its text scrolls (j/k pick violations).
pub fn scroll(state: &mut AppState, delta: isize) {
    let Some(behaviour) = state.behaviour.as_mut() else { return };
    // About as many lines as the group view has (its headings and blank lines included), so a
    // page key back up always moves the text at once.
    let lines = behaviour.opened().map_or(0, |b| {
        b.processes.len() + b.writes.len() + b.reads.len() + b.egress.len() + b.listening.len() + b.suspicious.len()
    }) + behaviour.open.as_deref().map_or(0, |g| behaviour.violations_of(g).len())
        + 20;
    behaviour.scroll = behaviour.scroll.saturating_add_signed(delta).min(lines);
}

pub fn move_violation(state: &mut AppState, delta: isize) {
    let Some(behaviour) = state.behaviour.as_mut() else { return };
    let count = behaviour.open.as_deref().map_or(0, |g| behaviour.violations_of(g).len());
    let last = count.saturating_sub(1) as isize;
    behaviour.violation = (behaviour.violation as isize).saturating_add(delta).clamp(0, last.max(0)) as usize;
}

/// What the agent said of a change; the pane asks again.
pub fn changed(state: &mut AppState, result: Result<String, String>) -> Vec<Effect> {
    let mut effects = match result {
        Ok(said) => super::toast(state, said, false),
        Err(why) => super::toast(state, why, true),
    };
    effects.extend(load(state));
    effects
}

//! Transitions of the Risk pane: load (first showing, `ctrl-r`, a new context), one score
//! explained on enter (scrolled with the page keys).

use std::sync::Arc;

use crate::app::action::Effect;
use crate::app::state::{AppState, Loadable, PaneId, RiskData, RiskState};

pub fn ensure_loaded(state: &mut AppState) -> Vec<Effect> {
    if state.risk.as_ref().is_some_and(|r| r.context == state.context) { vec![] } else { load(state) }
}

pub fn load(state: &mut AppState) -> Vec<Effect> {
    let request = state.take_id();
    let context = state.context.clone();
    match state.risk.as_mut() {
        Some(risk) if risk.context == context => risk.request = request,
        _ => state.risk = Some(RiskState::new(request, context.clone())),
    }
    vec![Effect::LoadRisk { request, context }]
}

pub fn loaded(state: &mut AppState, request: u64, result: Result<Arc<RiskData>, String>) {
    let Some(risk) = state.risk.as_mut().filter(|r| r.request == request) else { return };
    let selected = risk.view.current().and_then(|i| risk.scores().get(i)).map(|s| s.subject.clone());
    risk.data = match result {
        Ok(data) => Loadable::Ready(data),
        Err(e) => Loadable::Failed(e),
    };
    risk.refilter();
    if let Some(subject) = selected
        && let Some(row) = risk.scores().iter().position(|s| s.subject == subject)
    {
        risk.view.select_row(row);
    }
}

pub fn enter(state: &mut AppState) -> Vec<Effect> {
    let Some(risk) = state.risk.as_mut() else { return vec![] };
    let Some(index) = risk.view.current() else { return vec![] };
    risk.opened = Some(index);
    risk.scroll = 0;
    state.nav.push(PaneId::RiskDetail);
    vec![]
}

pub fn scroll(state: &mut AppState, delta: isize) -> Vec<Effect> {
    if let Some(risk) = state.risk.as_mut() {
        let lines = risk.opened().map_or(0, |s| s.lines().len());
        risk.scroll = risk.scroll.saturating_add_signed(delta).min(lines.saturating_sub(1));
    }
    vec![]
}

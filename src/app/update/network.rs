//! Transitions of the Network pane: made (and the agents read) when first shown, fed every
//! agent line from then on, the table or the map (`m`), one connection on enter.

use crate::agent::wire::WireEvent;
use crate::app::action::Effect;
use crate::app::state::{AppState, NetworkState, PaneId};

pub fn ensure_shown(state: &mut AppState) -> Vec<Effect> {
    if state.network.is_none() {
        state.network = Some(NetworkState::default());
    }
    super::nodes::ensure_connected(state)
}

/// Agent lines: folded; the rows shown are taken again while the pane is on screen.
pub fn lines(state: &mut AppState, events: &[WireEvent], now_ms: u64) {
    let shown = matches!(state.pane(), PaneId::Network | PaneId::NetworkFlow);
    let Some(network) = state.network.as_mut() else { return };
    for event in events {
        network.connections.take(event, now_ms);
    }
    if shown {
        network.refresh();
    }
}

/// The pane came on screen: what came meanwhile is shown.
pub fn refresh(state: &mut AppState) {
    if let Some(network) = state.network.as_mut() {
        network.refresh();
    }
}

/// `m`: the map, or the table again.
pub fn toggle_map(state: &mut AppState) -> Vec<Effect> {
    if let Some(network) = state.network.as_mut() {
        network.map = !network.map;
    }
    vec![]
}

pub fn enter(state: &mut AppState) -> Vec<Effect> {
    let Some(network) = state.network.as_mut().filter(|n| !n.map) else { return vec![] };
    let Some(row) = network.view.current().and_then(|i| network.rows.get(i)) else { return vec![] };
    network.opened = Some(row.key.clone());
    network.scroll = 0;
    state.nav.push(PaneId::NetworkFlow);
    vec![]
}

pub fn scroll(state: &mut AppState, delta: isize) -> Vec<Effect> {
    if let Some(network) = state.network.as_mut() {
        let lines = network.opened().map_or(0, |c| c.lines().len());
        network.scroll = network.scroll.saturating_add_signed(delta).min(lines.saturating_sub(1));
    }
    vec![]
}

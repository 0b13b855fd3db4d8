//! Transitions of the Alerts pane: load from the store (first showing, `ctrl-r`), live alerts
//! from the agents' lines, the filters, one fold in full on enter, and triage: `a` acknowledge,
//! `s` snooze for an hour, `f` false positive (the rule exception shown as a diff, written on
//! `y`), `u` reopen. The store holds the triage records, so `picket alerts` sees the same.

use crate::agent::wire::WireEvent;
use crate::alert::StoredAlert;
use crate::alert::exception::Proposed;
use crate::alert::triage::{Triage, TriageRecord};
use crate::app::action::Effect;
use crate::app::state::{AlertsLoad, AlertsState, AppState, Confirmation, Loadable, Mode, OpenedFold, PaneId};
use crate::model::Severity;

use super::toast;

/// How long `s` snoozes a fold.
pub const SNOOZE_MS: u64 = 3_600_000;

pub fn ensure_loaded(state: &mut AppState) -> Vec<Effect> {
    if state.alerts.is_some() { vec![] } else { load(state) }
}

/// Reads the kept alerts and triage records again; the rows shown stay until they are in.
pub fn load(state: &mut AppState) -> Vec<Effect> {
    let request = state.take_id();
    match state.alerts.as_mut() {
        Some(alerts) => alerts.request = request,
        None => state.alerts = Some(AlertsState::new(request)),
    }
    vec![Effect::LoadAlerts { request }, Effect::LoadSinkStatus]
}

pub fn loaded(state: &mut AppState, request: u64, result: Result<Box<AlertsLoad>, String>) {
    let Some(alerts) = state.alerts.as_mut().filter(|a| a.request == request) else { return };
    match result {
        Ok(load) => alerts.set_loaded(*load),
        Err(e) => {
            if alerts.loaded.ready().is_none() {
                alerts.loaded = Loadable::Failed(e);
            }
        }
    }
}

/// An agent's lines: the alerts among them join their folds at once.
pub fn lines(state: &mut AppState, events: &[WireEvent]) {
    let Some(alerts) = state.alerts.as_mut() else { return };
    if alerts.loaded.ready().is_none() {
        // The load under way reads them from the store.
        return;
    }
    alerts.take(events.iter().filter_map(StoredAlert::from_wire));
}

/// The refresh tick: snoozes run out.
pub fn tick(state: &mut AppState, now_ms: u64) {
    if let Some(alerts) = state.alerts.as_mut() {
        alerts.folder.tick(now_ms);
        alerts.refresh();
    }
}

/// `v`: every severity, then at least critical, high, medium, then every one again.
pub fn next_severity(state: &mut AppState) -> Vec<Effect> {
    let Some(alerts) = state.alerts.as_mut() else { return vec![] };
    alerts.min_severity = match alerts.min_severity {
        None => Some(Severity::Critical),
        Some(Severity::Critical) => Some(Severity::High),
        Some(Severity::High) => Some(Severity::Medium),
        Some(_) => None,
    };
    alerts.view.selected = 0;
    alerts.refresh();
    vec![]
}

/// `n`: all namespaces, then each in turn.
pub fn next_namespace(state: &mut AppState) -> Vec<Effect> {
    let Some(alerts) = state.alerts.as_mut() else { return vec![] };
    let names = alerts.namespaces();
    let next = match &alerts.namespace {
        None => names.first(),
        Some(current) => names.iter().skip_while(|n| *n != current).nth(1),
    };
    alerts.namespace = next.cloned();
    alerts.view.selected = 0;
    alerts.refresh();
    vec![]
}

/// `A`: show the acknowledged, snoozed and false-positive folds too, or not.
pub fn toggle_all(state: &mut AppState) -> Vec<Effect> {
    let Some(alerts) = state.alerts.as_mut() else { return vec![] };
    alerts.show_all = !alerts.show_all;
    alerts.refresh();
    vec![]
}

pub fn enter(state: &mut AppState) -> Vec<Effect> {
    let Some(alerts) = state.alerts.as_mut() else { return vec![] };
    let Some(id) = alerts.selected().map(|f| f.id.clone()) else { return vec![] };
    alerts.opened = Some(OpenedFold { id: id.clone(), lines: Loadable::Loading });
    alerts.scroll = 0;
    state.nav.push(PaneId::AlertDetail);
    vec![Effect::LoadAlertDetail { id }]
}

pub fn detail_loaded(state: &mut AppState, id: &str, result: Result<Vec<String>, String>) {
    let Some(opened) = state.alerts.as_mut().and_then(|a| a.opened.as_mut()).filter(|o| o.id == id) else { return };
    opened.lines = match result {
        Ok(lines) => Loadable::Ready(lines),
        Err(e) => Loadable::Failed(e),
    };
}

pub fn scroll(state: &mut AppState, delta: isize) -> Vec<Effect> {
    if let Some(alerts) = state.alerts.as_mut() {
        let lines = alerts.opened.as_ref().and_then(|o| o.lines.ready()).map_or(0, Vec::len);
        alerts.scroll = alerts.scroll.saturating_add_signed(delta).min(lines.saturating_sub(1));
    }
    vec![]
}

/// The fold the triage keys act on: the one open in full, else the selected row.
fn target(state: &AppState) -> Option<(String, String)> {
    let alerts = state.alerts.as_ref()?;
    let fold = if state.pane() == PaneId::AlertDetail { alerts.opened_fold()? } else { alerts.selected()? };
    let key = alerts.folder.key_of(&fold.id)?.to_string();
    Some((key, fold.id.clone()))
}

pub fn acknowledge(state: &mut AppState, now_ms: u64) -> Vec<Effect> {
    triage(state, |by| TriageRecord::Acknowledged { at_ms: now_ms, by }, "acknowledged")
}

pub fn snooze(state: &mut AppState, now_ms: u64) -> Vec<Effect> {
    triage(state, |by| TriageRecord::Snoozed { at_ms: now_ms, until_ms: now_ms + SNOOZE_MS, by }, "snoozed for an hour")
}

fn triage(state: &mut AppState, record: impl FnOnce(String) -> TriageRecord, done: &str) -> Vec<Effect> {
    let Some((key, id)) = target(state) else { return vec![] };
    let record = record(crate::alert::triage::current_user());
    vec![Effect::TriageAlert { key, record: Some(record), said: format!("{id} {done}") }]
}

pub fn reopen(state: &mut AppState) -> Vec<Effect> {
    let Some((key, id)) = target(state) else { return vec![] };
    vec![Effect::TriageAlert { key, record: None, said: format!("{id} reopened") }]
}

/// Where captures and bundles go: the directory picket was started in.
fn work_dir(state: &AppState) -> std::path::PathBuf {
    state.ignore_path.parent().map(std::path::Path::to_path_buf).unwrap_or_else(|| ".".into())
}

/// `c`: 30 s of the fold's container's traffic, into a pcap file here.
pub fn capture(state: &mut AppState) -> Vec<Effect> {
    let Some((_, id)) = target(state) else { return vec![] };
    let dir = work_dir(state);
    let mut effects = super::toast(state, format!("capturing 30 s of {id}'s container…"), false);
    effects.push(Effect::CaptureAlert { id, dir });
    effects
}

/// `Q`: the fold's container cut off the network by the local agent, after a yes.
pub fn quarantine(state: &mut AppState) -> Vec<Effect> {
    let Some((_, id)) = target(state) else { return vec![] };
    let container = state
        .alerts
        .as_ref()
        .and_then(|a| a.folder.folds().iter().find(|f| f.id == id).map(|f| f.container.clone()))
        .unwrap_or_default();
    state.mode = Mode::Confirm(Confirmation {
        question: format!(
            "Quarantine container {container}? All its network is cut (connects refused, packets dropped); it keeps running. Undo with U."
        ),
        detail: String::new(),
        effect: Effect::QuarantineAlert { id, socket: state.agent_socket.clone() },
    });
    vec![]
}

/// `U`: the response actions taken for the fold undone (a paused container thawed).
pub fn undo_actions(state: &mut AppState) -> Vec<Effect> {
    let Some((_, id)) = target(state) else { return vec![] };
    vec![Effect::UndoActions { id }]
}

/// `b`: the fold's incident bundle, here.
pub fn bundle(state: &mut AppState) -> Vec<Effect> {
    let Some((_, id)) = target(state) else { return vec![] };
    let dir = work_dir(state);
    vec![Effect::BundleAlert { id, dir }]
}

/// `f`: the exception is worked out (and checked) first, then shown for a yes.
pub fn false_positive(state: &mut AppState) -> Vec<Effect> {
    let Some((_, id)) = target(state) else { return vec![] };
    vec![Effect::ProposeFalsePositive { id }]
}

pub fn proposed(state: &mut AppState, result: Result<(String, Proposed), String>) -> Vec<Effect> {
    match result {
        Ok((key, proposed)) => {
            state.mode = Mode::Confirm(Confirmation {
                question: format!(
                    "Mark a false positive: write this exception for {} to {}? (agents apply it when they next start)",
                    proposed.rule,
                    proposed.path.display()
                ),
                detail: proposed.diff(),
                effect: Effect::WriteFalsePositive { key, proposed: Box::new(proposed) },
            });
            vec![]
        }
        Err(e) => toast(state, e, true),
    }
}

/// A triage record was written (or not): the folds take the new records.
pub fn triaged(state: &mut AppState, result: Result<(Triage, String), String>) -> Vec<Effect> {
    match result {
        Ok((triage, said)) => {
            if let Some(alerts) = state.alerts.as_mut() {
                alerts.folder.set_triage(triage);
                alerts.refresh();
            }
            toast(state, said, false)
        }
        Err(e) => toast(state, e, true),
    }
}

//! Transitions of the Workloads pane: load (on first showing, `ctrl-r`, a new context), the
//! namespace picked with `n`, a workload's failed checks and one check in full.

use std::sync::Arc;

use crate::app::action::Effect;
use crate::app::state::{AppState, CheckDetail, Loadable, PaneId, WorkloadsData, WorkloadsState};

/// The pane is on screen: load it the first time.
pub fn ensure_loaded(state: &mut AppState) -> Vec<Effect> {
    if state.workloads.is_some() { vec![] } else { load(state) }
}

/// Lists the active context's workloads; rows already shown stay until the answer comes.
pub fn load(state: &mut AppState) -> Vec<Effect> {
    let request = state.take_id();
    let context = state.context.clone();
    match state.workloads.as_mut() {
        Some(workloads) if workloads.context == context => {
            workloads.request = request;
            // Rows stay on screen while they are listed again; an error does not.
            if matches!(workloads.data, Loadable::Failed(_)) {
                workloads.data = Loadable::Loading;
            }
        }
        _ => state.workloads = Some(WorkloadsState::new(request, context.clone())),
    }
    vec![Effect::LoadInventory { request, context }]
}

/// The context changed: what is shown belongs to the old one.
pub fn forget(state: &mut AppState) -> Vec<Effect> {
    state.workloads = None;
    let on_screen = matches!(state.pane(), PaneId::Workloads | PaneId::WorkloadChecks);
    if on_screen {
        state.nav = vec![PaneId::Workloads];
        state.check = None;
        return load(state);
    }
    vec![]
}

pub fn loaded(state: &mut AppState, request: u64, result: Result<Arc<WorkloadsData>, String>) {
    let Some(workloads) = state.workloads.as_mut().filter(|w| w.request == request) else { return };
    let selected = workloads.selected().map(|w| w.subject());
    workloads.data = match result {
        Ok(data) => Loadable::Ready(data),
        Err(err) => Loadable::Failed(err),
    };
    let gone = match (&workloads.namespace, workloads.data.ready()) {
        (Some(namespace), Some(data)) => !data.namespaces().contains(&namespace.as_str()),
        _ => false,
    };
    if gone {
        workloads.namespace = None;
    }
    workloads.refilter();
    workloads.refilter_checks();
    if let Some(subject) = selected
        && let Some(row) = workloads.rows().iter().position(|w| w.subject() == subject)
    {
        workloads.view.select_row(row);
    }
}

/// `n`: all namespaces, then each in turn, then all again.
pub fn next_namespace(state: &mut AppState) -> Vec<Effect> {
    if state.pane() != PaneId::Workloads {
        return vec![];
    }
    let Some(workloads) = state.workloads.as_mut() else { return vec![] };
    let Some(data) = workloads.data.ready().map(Arc::clone) else { return vec![] };
    let names = data.namespaces();
    let next = match &workloads.namespace {
        None => names.first(),
        Some(current) => names.iter().skip_while(|n| *n != current).nth(1),
    };
    workloads.namespace = next.map(|n| n.to_string());
    workloads.view.selected = 0;
    workloads.refilter();
    vec![]
}

/// `enter` on a workload: its failed checks.
pub fn enter(state: &mut AppState) -> Vec<Effect> {
    let Some(workloads) = state.workloads.as_mut() else { return vec![] };
    let Some(subject) = workloads.selected().map(|w| w.subject()) else { return vec![] };
    workloads.opened = Some(subject);
    workloads.checks_view = Default::default();
    workloads.refilter_checks();
    state.nav.push(PaneId::WorkloadChecks);
    vec![]
}

/// `enter` on one of a workload's failed checks: the check in full, its results filtered to
/// this workload.
pub fn enter_check(state: &mut AppState) -> Vec<Effect> {
    let Some(workloads) = state.workloads.as_ref() else { return vec![] };
    let Some(data) = workloads.data.ready() else { return vec![] };
    let Some(workload) = workloads.opened() else { return vec![] };
    let Some(failed) = workloads.checks_view.current().and_then(|i| workload.failed.get(i)) else { return vec![] };
    let Some(check) = data.report.check(&failed.id) else { return vec![] };
    let mut detail = CheckDetail::new(&data.report, check);
    detail.view.filter = workload.subject();
    detail.refilter();
    state.check = Some(detail);
    state.nav.push(PaneId::ComplianceCheck);
    vec![]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crossterm::event::KeyCode;

    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures::{self, code, key};
    use crate::app::state::{AppState, Loadable, PaneId};
    use crate::app::update::{run_command, update};

    use crate::app::fixtures::type_text;

    /// The Workloads pane with the fixture cluster loaded.
    fn loaded() -> AppState {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, PaneId::Workloads);
        assert_eq!(state.pane(), PaneId::Workloads);
        let Some(Effect::LoadInventory { request, context }) = effects.first().cloned() else { panic!("{effects:?}") };
        assert_eq!(context, None, "kubeconfig's current context");
        update(&mut state, Action::InventoryLoaded { request, result: Ok(Arc::new(fixtures::workloads_data())) });
        state
    }

    #[test]
    fn loads_once_and_drops_stale_answers() {
        let mut state = fixtures::state();
        let effects = type_text(&mut state, ":wl");
        assert!(effects.is_empty(), "nothing before enter");
        let effects = update(&mut state, Action::Key(code(KeyCode::Enter)));
        let Some(Effect::LoadInventory { request, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        let stale = Action::InventoryLoaded { request: request + 7, result: Err("old".into()) };
        update(&mut state, stale);
        assert_eq!(state.workloads.as_ref().unwrap().data, Loadable::Loading);
        update(
            &mut state,
            Action::InventoryLoaded {
                request,
                result: Err("context prod: the API server did not answer within 20s".into()),
            },
        );
        let data = &state.workloads.as_ref().expect("workloads").data;
        assert!(matches!(data, Loadable::Failed(e) if e.contains("did not answer within 20s")), "{data:?}");
        // Shown again: not loaded again; ctrl-r loads.
        run_command(&mut state, Command::NextPane);
        assert!(run_command(&mut state, Command::PrevPane).is_empty());
        let effects = update(
            &mut state,
            Action::Key(crossterm::event::KeyEvent::new(KeyCode::Char('r'), crossterm::event::KeyModifiers::CONTROL)),
        );
        assert!(effects.iter().any(|e| matches!(e, Effect::LoadInventory { .. })), "{effects:?}");
    }

    #[test]
    fn namespaces_cycle_and_filter() {
        let mut state = loaded();
        let all = state.workloads.as_ref().unwrap().view.visible.len();
        assert_eq!(all, 5, "the Job its CronJob owns and the pod its ReplicaSet owns are judged by their owners");
        let mut seen = Vec::new();
        for _ in 0..5 {
            update(&mut state, Action::Key(key('n')));
            let workloads = state.workloads.as_ref().unwrap();
            seen.push((workloads.namespace.clone().unwrap_or_default(), workloads.view.visible.len()));
        }
        let expected = [("default", 1), ("kube-system", 1), ("legacy", 2), ("payments", 1), ("", 5)];
        assert_eq!(seen, expected.map(|(n, c)| (n.to_string(), c)));
        type_text(&mut state, "/cronjob");
        update(&mut state, Action::Key(code(KeyCode::Enter)));
        let workloads = state.workloads.as_ref().unwrap();
        assert_eq!(workloads.selected().unwrap().subject(), "CronJob legacy/backup");
    }

    #[test]
    fn enter_opens_failed_checks_then_a_check_and_esc_comes_back() {
        let mut state = loaded();
        type_text(&mut state, "/debug-shell");
        update(&mut state, Action::Key(code(KeyCode::Enter)));
        let shell = state.workloads.as_ref().unwrap().selected().unwrap().clone();
        assert!(!shell.failed.is_empty(), "{shell:?}");
        update(&mut state, Action::Key(code(KeyCode::Enter)));
        assert_eq!(state.pane(), PaneId::WorkloadChecks);
        assert_eq!(state.workloads.as_ref().unwrap().opened().unwrap().subject(), "Pod default/debug-shell");
        assert_eq!(state.plugin_vars().get("KIND").map(String::as_str), Some("Pod"));
        update(&mut state, Action::Key(code(KeyCode::Enter)));
        assert_eq!(state.pane(), PaneId::ComplianceCheck);
        let check = state.check.as_ref().unwrap();
        assert_eq!(check.check.meta.id, shell.failed[0].id);
        assert_eq!(check.view.filter, "Pod default/debug-shell");
        assert!(check.view.visible.iter().all(|&i| check.check.results[i].subject == "Pod default/debug-shell"));
        update(&mut state, Action::Key(code(KeyCode::Esc)));
        update(&mut state, Action::Key(code(KeyCode::Esc)));
        assert_eq!(state.pane(), PaneId::WorkloadChecks);
        update(&mut state, Action::Key(code(KeyCode::Esc)));
        assert_eq!(state.pane(), PaneId::Workloads);
        assert!(state.workloads.as_ref().unwrap().opened.is_none());
    }

    #[test]
    fn another_context_reloads_the_shown_workloads() {
        let mut state = loaded();
        type_text(&mut state, ":ctx dev");
        let effects = update(&mut state, Action::Key(code(KeyCode::Enter)));
        let load = effects.iter().find_map(|e| match e {
            Effect::LoadInventory { context, .. } => Some(context.clone()),
            _ => None,
        });
        assert_eq!(load, Some(Some("dev".to_string())));
        assert_eq!(state.workloads.as_ref().unwrap().data, Loadable::Loading);
    }
}

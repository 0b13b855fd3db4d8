//! Transitions of the Compliance pane: run a benchmark, its result, switch reports, open a
//! check.

use std::sync::Arc;

use super::toast;
use crate::app::action::Effect;
use crate::app::state::{AppState, BenchDone, BenchKind, BenchRun, CheckDetail, Loadable, PaneId, check_text};

/// `1`, `2`, `3`: run (or run again) a benchmark and show it.
pub fn run(state: &mut AppState, kind: BenchKind) -> Vec<Effect> {
    if state.pane() != PaneId::Compliance {
        return vec![];
    }
    if state.compliance.run(kind).is_some_and(|r| r.result == Loadable::Loading) {
        show(state, kind);
        return toast(state, format!("the {} benchmark is already running", kind.label()), false);
    }
    start(state, kind)
}

fn start(state: &mut AppState, kind: BenchKind) -> Vec<Effect> {
    let request = state.take_id();
    *state.compliance.run_mut(kind) = Some(BenchRun { request, result: Loadable::Loading });
    show(state, kind);
    vec![Effect::RunBench { request, kind, context: state.context.clone() }]
}

/// `ctrl-r` on the pane: run the shown benchmark again (unless it is still running).
pub fn rerun_shown(state: &mut AppState) -> Vec<Effect> {
    match state.compliance.shown_run().map(|r| &r.result) {
        Some(Loadable::Ready(_) | Loadable::Failed(_)) => {
            let kind = state.compliance.shown.unwrap_or(BenchKind::Docker);
            start(state, kind)
        }
        _ => vec![],
    }
}

fn show(state: &mut AppState, kind: BenchKind) {
    if state.compliance.shown != Some(kind) {
        state.compliance.shown = Some(kind);
        state.compliance.view.selected = 0;
    }
    refilter(state);
}

pub fn finished(
    state: &mut AppState,
    request: u64,
    kind: BenchKind,
    result: Result<Arc<BenchDone>, String>,
) -> Vec<Effect> {
    let Some(run) = state.compliance.run_mut(kind).as_mut().filter(|r| r.request == request) else { return vec![] };
    let summary = match &result {
        Ok(done) => {
            let tally = done.report.tally_checks();
            (format!("{}: {} failed, {} to review", done.report.benchmark, tally.fail, tally.warn), false)
        }
        Err(err) => (format!("{} benchmark: {err}", kind.label()), true),
    };
    run.result = match result {
        Ok(done) => Loadable::Ready(done),
        Err(err) => Loadable::Failed(err),
    };
    if state.compliance.shown == Some(kind) {
        let selected = state.compliance.selected().map(|c| c.meta.id.clone());
        refilter(state);
        if let Some(id) = selected
            && let Some(row) = state.compliance.checks().iter().position(|c| c.meta.id == id)
        {
            state.compliance.view.select_row(row);
        }
    }
    // Say it is done when the report is not in front of the reader.
    if state.pane() != PaneId::Compliance || state.compliance.shown != Some(kind) {
        return toast(state, summary.0, summary.1);
    }
    vec![]
}

/// `[` and `]`: the previous or next report among those run.
pub fn cycle(state: &mut AppState, forward: bool) -> Vec<Effect> {
    if state.pane() != PaneId::Compliance {
        return vec![];
    }
    let kinds = state.compliance.run_kinds();
    if kinds.is_empty() {
        return toast(state, "no report yet: press 1 (docker), 2 (node) or 3 (cluster)".into(), false);
    }
    let position = state.compliance.shown.and_then(|s| kinds.iter().position(|k| *k == s));
    let next = match (position, forward) {
        (None, _) => 0,
        (Some(i), true) => (i + 1) % kinds.len(),
        (Some(i), false) => (i + kinds.len() - 1) % kinds.len(),
    };
    show(state, kinds[next]);
    vec![]
}

pub fn refilter(state: &mut AppState) {
    let texts: Vec<String> = state.compliance.checks().iter().map(check_text).collect();
    state.compliance.view.refilter(texts.into_iter());
}

/// `enter` on a check: the check in full.
pub fn enter(state: &mut AppState) -> Vec<Effect> {
    let Some(done) = state.compliance.report() else { return vec![] };
    let Some(check) = state.compliance.selected() else { return vec![] };
    state.check = Some(CheckDetail::new(&done.report, check));
    state.nav.push(PaneId::ComplianceCheck);
    vec![]
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyCode;

    use crate::app::action::{Action, Effect};
    use crate::app::fixtures::{self, code, key};
    use crate::app::state::{AppState, BenchKind, Loadable, PaneId};
    use crate::app::update::update;

    use crate::app::fixtures::type_text;

    fn on_compliance() -> AppState {
        let mut state = fixtures::state();
        type_text(&mut state, ":bench");
        update(&mut state, Action::Key(code(KeyCode::Enter)));
        assert_eq!(state.pane(), PaneId::Compliance);
        state
    }

    fn run_key(state: &mut AppState, c: char) -> (u64, BenchKind) {
        let effects = update(state, Action::Key(key(c)));
        let Some(Effect::RunBench { request, kind, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        (request, kind)
    }

    #[test]
    fn a_benchmark_runs_shows_running_and_drops_stale_results() {
        let mut state = on_compliance();
        let (request, kind) = run_key(&mut state, '1');
        assert_eq!(kind, BenchKind::Docker);
        assert_eq!(state.compliance.shown, Some(BenchKind::Docker));
        assert!(matches!(state.compliance.run(BenchKind::Docker).map(|r| &r.result), Some(Loadable::Loading)));
        // Pressed again while running: said, not started twice.
        let effects = update(&mut state, Action::Key(key('1')));
        assert!(effects.iter().all(|e| matches!(e, Effect::ExpireToast { .. })), "{effects:?}");
        assert!(state.latest_toast().unwrap().text.contains("already running"));

        let done = std::sync::Arc::new(fixtures::bench_done());
        let stale = Action::BenchFinished { request: request + 100, kind, result: Ok(done.clone()) };
        update(&mut state, stale);
        assert_eq!(state.compliance.run(kind).unwrap().result, Loadable::Loading);
        update(&mut state, Action::BenchFinished { request, kind, result: Ok(done) });
        assert_eq!(state.compliance.checks().len(), 4);
        assert_eq!(state.compliance.view.visible.len(), 4);
        assert_eq!(state.compliance.selected().unwrap().meta.id, "3.18");
    }

    #[test]
    fn filter_enter_and_back() {
        let mut state = on_compliance();
        let (request, kind) = run_key(&mut state, '1');
        update(&mut state, Action::BenchFinished { request, kind, result: Ok(fixtures::bench_done().into()) });
        type_text(&mut state, "/privileged");
        update(&mut state, Action::Key(code(KeyCode::Enter)));
        assert_eq!(state.compliance.view.visible.len(), 1);
        update(&mut state, Action::Key(code(KeyCode::Enter)));
        assert_eq!(state.pane(), PaneId::ComplianceCheck);
        let check = state.check.as_ref().unwrap();
        assert_eq!((check.check.meta.id.as_str(), check.section.as_str()), ("5.5", "5 Container Runtime"));
        assert_eq!(check.view.visible.len(), 2);
        // The results filter on their own; esc clears that filter, then goes back.
        type_text(&mut state, "/fail");
        update(&mut state, Action::Key(code(KeyCode::Enter)));
        assert_eq!(state.check.as_ref().unwrap().view.visible, vec![0]);
        update(&mut state, Action::Key(code(KeyCode::Esc)));
        assert_eq!(state.pane(), PaneId::ComplianceCheck);
        update(&mut state, Action::Key(code(KeyCode::Esc)));
        assert_eq!(state.pane(), PaneId::Compliance);
        assert!(state.check.is_none());
        assert_eq!(state.compliance.view.filter, "privileged", "the list keeps its filter");
        update(&mut state, Action::Key(code(KeyCode::Esc)));
        assert_eq!(state.compliance.view.visible.len(), 4);
    }

    #[test]
    fn reports_switch_with_brackets_and_errors_stay_in_the_pane() {
        let mut state = on_compliance();
        let effects = update(&mut state, Action::Key(key(']')));
        assert!(matches!(effects.as_slice(), [Effect::ExpireToast { .. }]));
        assert!(state.latest_toast().unwrap().text.contains("no report yet"));
        let (docker, _) = run_key(&mut state, '1');
        let (cluster, kind) = run_key(&mut state, '3');
        assert_eq!(kind, BenchKind::Cluster);
        assert_eq!(state.compliance.shown, Some(BenchKind::Cluster));
        let error = "no Kubernetes context: no kubeconfig ($KUBECONFIG, ~/.kube/config) and not running in a pod";
        update(&mut state, Action::BenchFinished { request: cluster, kind, result: Err(error.into()) });
        assert_eq!(state.compliance.run(kind).unwrap().result, Loadable::Failed(error.into()));
        update(&mut state, Action::Key(key('[')));
        assert_eq!(state.compliance.shown, Some(BenchKind::Docker));
        // A report finishing out of sight says so in a toast.
        let result = Ok(fixtures::bench_done().into());
        update(&mut state, Action::Key(key(']')));
        update(&mut state, Action::BenchFinished { request: docker, kind: BenchKind::Docker, result });
        assert!(state.latest_toast().unwrap().text.contains("CIS Docker Benchmark: 1 failed, 1 to review"));
        update(&mut state, Action::Key(key(']')));
        assert_eq!(state.compliance.shown, Some(BenchKind::Docker));
        // ctrl-r runs the shown benchmark again.
        let effects = crate::app::update::run_command(&mut state, crate::app::action::Command::Refresh);
        assert!(effects.iter().any(|e| matches!(e, Effect::RunBench { kind: BenchKind::Docker, .. })), "{effects:?}");
    }

    #[test]
    fn benchmark_keys_mean_nothing_elsewhere() {
        let mut state = fixtures::state();
        assert!(update(&mut state, Action::Key(key('1'))).is_empty());
        assert!(state.compliance.shown.is_none());
    }
}

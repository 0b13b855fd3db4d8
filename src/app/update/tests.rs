use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::app::fixtures::{self, code, key};
use crate::app::state::PaneId;

fn type_text(state: &mut AppState, text: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for c in text.chars() {
        effects.extend(update(state, Action::Key(key(c))));
    }
    effects
}

#[test]
fn colon_q_quits() {
    let mut state = fixtures::state();
    type_text(&mut state, ":q");
    assert!(!state.should_quit);
    update(&mut state, Action::Key(code(KeyCode::Enter)));
    assert!(state.should_quit);
}

#[test]
fn command_completion_and_aliases() {
    assert_eq!(complete("con"), Some("containers"));
    assert_eq!(complete("ctx"), Some("contexts"));
    assert_eq!(complete("ov"), Some("overview"));
    assert_eq!(complete("zz"), None);
    let mut state = fixtures::state();
    type_text(&mut state, ":cont");
    update(&mut state, Action::Key(code(KeyCode::Tab)));
    assert_eq!(state.mode, Mode::Command { input: "containers".into() });
    update(&mut state, Action::Key(code(KeyCode::Enter)));
    assert_eq!(state.pane(), PaneId::Containers);
    type_text(&mut state, ":ctx");
    update(&mut state, Action::Key(code(KeyCode::Enter)));
    assert_eq!(state.pane(), PaneId::Contexts);
}

#[test]
fn ctx_with_a_name_switches_or_says_why_not() {
    let mut state = fixtures::state();
    assert_eq!(state.active_context(), Some("prod"));
    type_text(&mut state, ":ctx dev");
    let effects = update(&mut state, Action::Key(code(KeyCode::Enter)));
    assert_eq!(state.active_context(), Some("dev"));
    assert!(matches!(effects.as_slice(), [Effect::ExpireToast { .. }]));
    type_text(&mut state, ":ctx nope");
    update(&mut state, Action::Key(code(KeyCode::Enter)));
    assert_eq!(state.active_context(), Some("dev"));
    let toast = state.latest_toast().unwrap();
    assert!(toast.is_error && toast.text.contains("'nope'"));
}

#[test]
fn unknown_command_is_an_error_toast() {
    let mut state = fixtures::state();
    type_text(&mut state, ":frobnicate");
    update(&mut state, Action::Key(code(KeyCode::Enter)));
    assert!(state.latest_toast().unwrap().text.contains("':frobnicate'"));
    assert_eq!(state.mode, Mode::Normal);
}

#[test]
fn filter_esc_clears_and_enter_keeps() {
    let mut state = fixtures::state();
    run_command(&mut state, Command::NextPane);
    type_text(&mut state, "/web");
    assert_eq!(state.containers_view.visible.len(), 2);
    update(&mut state, Action::Key(code(KeyCode::Enter)));
    assert_eq!(state.mode, Mode::Normal);
    assert_eq!(state.containers_view.filter, "web");
    // esc in normal mode clears the kept filter first
    update(&mut state, Action::Key(code(KeyCode::Esc)));
    assert_eq!(state.containers_view.visible.len(), 4);
    type_text(&mut state, "/redis");
    assert_eq!(state.containers_view.visible.len(), 1);
    update(&mut state, Action::Key(code(KeyCode::Esc)));
    assert_eq!(state.containers_view.filter, "");
    assert_eq!(state.containers_view.visible.len(), 4);
}

#[test]
fn filter_on_overview_explains_itself() {
    let mut state = fixtures::state();
    let effects = update(&mut state, Action::Key(key('/')));
    assert_eq!(state.mode, Mode::Normal);
    assert_eq!(effects.len(), 1);
    assert!(state.latest_toast().unwrap().text.contains("overview"));
}

#[test]
fn navigation_keys_move_the_selection() {
    let mut state = fixtures::state();
    run_command(&mut state, Command::NextPane);
    update(&mut state, Action::Key(key('j')));
    update(&mut state, Action::Key(key('j')));
    assert_eq!(state.containers_view.selected, 2);
    update(&mut state, Action::Key(key('k')));
    assert_eq!(state.containers_view.selected, 1);
    update(&mut state, Action::Key(KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT)));
    assert_eq!(state.containers_view.selected, 3);
    update(&mut state, Action::Key(key('g')));
    assert_eq!(state.containers_view.selected, 0);
    update(&mut state, Action::Key(KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL)));
    assert_eq!(state.containers_view.selected, 3);
    update(&mut state, Action::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)));
    assert_eq!(state.containers_view.selected, 0);
}

#[test]
fn enter_drills_in_and_esc_comes_back() {
    let mut state = fixtures::state();
    run_command(&mut state, Command::NextPane);
    run_command(&mut state, Command::Bottom);
    let effects = update(&mut state, Action::Key(code(KeyCode::Enter)));
    assert_eq!(state.pane(), PaneId::ContainerDetail);
    let Some(Effect::InspectContainer { request, id, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
    assert_eq!(id, "c0ffee00112233445566");
    // a stale answer (another request id) is dropped
    update(&mut state, Action::ContainerDetail { request: request + 100, result: Err("late".into()) });
    assert_eq!(state.detail.as_ref().unwrap().detail, Loadable::Loading);
    update(&mut state, Action::ContainerDetail { request, result: Err("gone".into()) });
    assert_eq!(state.detail.as_ref().unwrap().detail, Loadable::Failed("gone".into()));
    update(&mut state, Action::Key(code(KeyCode::Esc)));
    assert_eq!(state.pane(), PaneId::Containers);
    assert!(state.detail.is_none());
}

#[test]
fn tab_cycles_top_panes() {
    let mut state = fixtures::state();
    let mut seen = vec![state.pane()];
    for _ in 0..TOP_PANES.len() {
        update(&mut state, Action::Key(code(KeyCode::Tab)));
        seen.push(state.pane());
    }
    assert_eq!(
        seen,
        vec![
            PaneId::Overview,
            PaneId::Containers,
            PaneId::Images,
            PaneId::Compliance,
            PaneId::Contexts,
            PaneId::Workloads,
            PaneId::Nodes,
            PaneId::Network,
            PaneId::Registries,
            PaneId::Behaviour,
            PaneId::Policies,
            PaneId::Admission,
            PaneId::Alerts,
            PaneId::Risk,
            PaneId::Overview
        ]
    );
}

#[test]
fn help_opens_and_closes() {
    let mut state = fixtures::state();
    update(&mut state, Action::Key(key('?')));
    assert_eq!(state.mode, Mode::Help);
    update(&mut state, Action::Key(key('j')));
    assert_eq!(state.mode, Mode::Help, "keys do not leak through the help");
    update(&mut state, Action::Key(code(KeyCode::Esc)));
    assert_eq!(state.mode, Mode::Normal);
}

#[test]
fn engine_refresh_keeps_the_selected_container() {
    let mut state = fixtures::state();
    run_command(&mut state, Command::NextPane);
    run_command(&mut state, Command::Bottom);
    let chosen = state.selected_container().unwrap().id.clone();
    let mut probes = state.engines.ready().unwrap().clone();
    if let Ok(engine) = probes[0].result.as_mut() {
        engine.containers.reverse();
    }
    update(&mut state, Action::Engines(probes));
    assert_eq!(state.selected_container().unwrap().id, chosen);
}

#[test]
fn refresh_tick_does_not_pile_up() {
    let mut state = fixtures::state();
    assert_eq!(update(&mut state, Action::RefreshTick), vec![Effect::LoadEngines, Effect::LoadStoreSize]);
    assert!(update(&mut state, Action::RefreshTick).is_empty(), "still loading");
}

#[test]
fn plugin_gets_the_selected_row_and_confirm_guards_it() {
    let mut state = fixtures::state();
    run_command(&mut state, Command::NextPane);
    run_command(&mut state, Command::Bottom);
    let effects = update(&mut state, Action::Key(KeyEvent::new(KeyCode::Char('L'), KeyModifiers::SHIFT)));
    let Some(Effect::RunPlugin(run)) = effects.first() else { panic!("{effects:?}") };
    assert_eq!(run.name, "container-logs");
    assert!(!run.background);
    assert!(
        run.args.iter().any(|a| a.contains("c0ffee00112233445566") && a.contains("unix:///run/podman/podman.sock"))
    );
    assert_eq!(run.env.get("NAME").map(String::as_str), Some("web-canary"));

    let effects = update(&mut state, Action::Key(KeyEvent::new(KeyCode::Char('k'), KeyModifiers::CONTROL)));
    assert!(effects.is_empty());
    assert!(
        matches!(&state.mode, Mode::Confirm(c) if matches!(&c.effect, Effect::RunPlugin(run) if run.name == "container-stop"))
    );
    update(&mut state, Action::Key(key('n')));
    assert_eq!(state.mode, Mode::Normal);
    update(&mut state, Action::Key(KeyEvent::new(KeyCode::Char('k'), KeyModifiers::CONTROL)));
    let effects = update(&mut state, Action::Key(key('y')));
    assert!(matches!(effects.as_slice(), [Effect::RunPlugin(run)] if run.background));
}

#[test]
fn container_plugin_without_selection_says_so() {
    let mut state = fixtures::state();
    run_command(&mut state, Command::NextPane);
    type_text(&mut state, "/no-such-container");
    update(&mut state, Action::Key(code(KeyCode::Enter)));
    update(&mut state, Action::Key(KeyEvent::new(KeyCode::Char('L'), KeyModifiers::SHIFT)));
    assert!(state.latest_toast().unwrap().text.contains("no container selected"));
}

#[test]
fn toasts_expire_by_id() {
    let mut state = fixtures::state();
    let effects = toast(&mut state, "one".into(), false);
    let Some(Effect::ExpireToast { id, .. }) = effects.first().cloned() else { panic!() };
    toast(&mut state, "two".into(), true);
    update(&mut state, Action::ExpireToast(id));
    assert_eq!(state.toasts.len(), 1);
    assert_eq!(state.latest_toast().unwrap().text, "two");
}

#[test]
fn images_merge_engine_images_with_stored_sboms_and_scans_report_back() {
    let mut state = fixtures::state();
    run_command(&mut state, Command::NextPane);
    run_command(&mut state, Command::NextPane);
    assert_eq!(state.images.len(), 2, "the stored SBOM matches the engine image by config digest");
    let tiny = state.images.iter().find(|i| i.name == "oci/tiny:v1").unwrap();
    assert_eq!(tiny.stored.as_ref().map(|s| s.packages), Some(2));
    // not scanned yet: enter explains, s scans
    let effects = run_command(&mut state, Command::Enter);
    assert!(matches!(effects.as_slice(), [Effect::ExpireToast { .. }]));
    assert!(state.latest_toast().unwrap().text.contains("press s"));
    let effects = update(&mut state, Action::Key(key('s')));
    let Some(Effect::ScanImage { request, name, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
    assert!(
        run_command(&mut state, Command::Scan).iter().all(|e| matches!(e, Effect::ExpireToast { .. })),
        "no second scan"
    );
    // a stale finish (other request) does not clear the running scan
    update(&mut state, Action::ScanFinished { request: request + 99, name: name.clone(), result: Err("old".into()) });
    assert!(state.scans.contains_key(&name));
    let stored = crate::app::action::StoredSbom {
        key: "sha256:abc".into(),
        name: name.clone(),
        kind: "podman".into(),
        config_digest: Some(state.selected_image().unwrap().id.clone()),
        packages: 88,
        distro: Some("Debian GNU/Linux 12 (bookworm)".into()),
    };
    update(&mut state, Action::ScanFinished { request, name: name.clone(), result: Ok(stored) });
    assert!(state.scans.is_empty());
    assert_eq!(state.selected_image().and_then(|i| i.stored.as_ref()).map(|s| s.packages), Some(88));
    assert!(state.latest_toast().unwrap().text.contains("88 packages"));
}

#[test]
fn s_is_scan_on_images_and_the_shell_plugin_on_containers() {
    let mut state = fixtures::state();
    run_command(&mut state, Command::NextPane);
    let effects = update(&mut state, Action::Key(key('s')));
    assert!(matches!(effects.as_slice(), [Effect::RunPlugin(run)] if run.name == "container-shell"));
}

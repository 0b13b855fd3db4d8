//! `render(frame, &AppState, &Theme)`: a pure read of the state. No I/O, no awaiting.

pub mod panes;
pub mod widgets;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::widgets::Block;

use crate::app::state::{AppState, Mode, PaneId};
use crate::config::Theme;
use crate::config::theme::Slot;

pub fn render(frame: &mut Frame, state: &AppState, theme: &Theme) {
    let area = frame.area();
    frame.render_widget(Block::default().style(theme.style(Slot::App)), area);
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(1), Constraint::Length(1)]).areas(area);
    widgets::header::render(frame, header, state, theme);
    match state.pane() {
        PaneId::Overview => panes::overview::render(frame, body, state, theme),
        PaneId::Containers => panes::containers::render(frame, body, state, theme),
        PaneId::ContainerDetail => panes::container_detail::render(frame, body, state, theme),
        PaneId::Contexts => panes::contexts::render(frame, body, state, theme),
        PaneId::Images => panes::images::render(frame, body, state, theme),
        PaneId::Packages => panes::packages::render(frame, body, state, theme),
        PaneId::Findings => panes::findings::render(frame, body, state, theme),
        PaneId::FindingDetail => panes::finding_detail::render(frame, body, state, theme),
        PaneId::Compliance => panes::compliance::render(frame, body, state, theme),
        PaneId::ComplianceCheck => panes::compliance_check::render(frame, body, state, theme),
        PaneId::Workloads => panes::workloads::render(frame, body, state, theme),
        PaneId::WorkloadChecks => panes::workloads::render_checks(frame, body, state, theme),
        PaneId::Nodes => panes::nodes::render(frame, body, state, theme),
        PaneId::NodeActivity => panes::nodes::render_activity(frame, body, state, theme),
        PaneId::Registries => panes::registries::render(frame, body, state, theme),
        PaneId::RegistryTags => panes::registries::render_tags(frame, body, state, theme),
        PaneId::Compare => panes::compare::render(frame, body, state, theme),
        PaneId::CompareWorkload => panes::compare::render_workload(frame, body, state, theme),
        PaneId::Behaviour => panes::behaviour::render(frame, body, state, theme),
        PaneId::BehaviourGroup => panes::behaviour::render_group(frame, body, state, theme),
        PaneId::Policies => panes::policies::render(frame, body, state, theme),
        PaneId::PolicyEditor => panes::policies::render_editor(frame, body, state, theme),
        PaneId::PolicyDiff => panes::policies::render_diff(frame, body, state, theme),
        PaneId::Admission => panes::admission::render(frame, body, state, theme),
        PaneId::AdmissionDecision => panes::admission::render_decision(frame, body, state, theme),
        PaneId::Alerts => panes::alerts::render(frame, body, state, theme),
        PaneId::AlertDetail => panes::alerts::render_detail(frame, body, state, theme),
        PaneId::Risk => panes::risk::render(frame, body, state, theme),
        PaneId::RiskDetail => panes::risk::render_detail(frame, body, state, theme),
        PaneId::Network => panes::network::render(frame, body, state, theme),
        PaneId::NetworkFlow => panes::network::render_detail(frame, body, state, theme),
    }
    widgets::status_bar::render(frame, footer, state, theme);
    match &state.mode {
        Mode::Help => widgets::help::render(frame, area, state, theme),
        Mode::Confirm(confirmation) => widgets::dialog::render_confirm(frame, area, confirmation, theme),
        Mode::Accept(form) => {
            widgets::dialog::render_accept(frame, area, form, &state.ignore_path.display().to_string(), theme)
        }
        Mode::Normal | Mode::Filter { .. } | Mode::Command { .. } | Mode::Insert => {}
    }
}

#[cfg(test)]
pub(crate) mod snapshot {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use crate::app::state::AppState;
    use crate::config::Theme;

    /// Renders the whole screen at 120×40, as plain text, for insta.
    pub fn screen(state: &AppState) -> String {
        screen_at(state, 120, 40)
    }

    /// Renders the whole screen at `width`×`height`, as plain text.
    pub fn screen_at(state: &AppState, width: u16, height: u16) -> String {
        let theme = Theme::load("dark", std::path::Path::new("/nonexistent"), false).expect("dark theme");
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
        terminal.draw(|frame| super::render(frame, state, &theme)).expect("draw");
        let buffer = terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            let line: String = (0..buffer.area.width).map(|x| buffer[(x, y)].symbol()).collect();
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }

    #[test]
    fn every_pane_and_overlay_renders_at_any_size() {
        use crate::app::action::Command;
        use crate::app::update::run_command;
        let theme = Theme::load("dark", std::path::Path::new("/nonexistent"), false).expect("dark theme");
        let mut states = Vec::new();
        let mut state = crate::app::fixtures::state();
        for command in
            [Command::NextPane, Command::Enter, Command::Help, Command::Back, Command::NextPane, Command::NextPane]
        {
            run_command(&mut state, command);
            states.push(state.clone());
        }
        states.push(crate::app::fixtures::loading_state());
        states.extend(new_pane_states());
        for (width, height) in [(1, 1), (10, 3), (40, 10), (80, 24), (300, 100), (0, 0)] {
            for state in &states {
                let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
                terminal.draw(|frame| super::render(frame, state, &theme)).expect("draw");
            }
        }
    }

    /// The Compliance pane with a report and a check open, the Workloads pane and a workload's
    /// checks.
    fn new_pane_states() -> Vec<AppState> {
        use crate::app::action::{Action, Command, Effect};
        use crate::app::update::{run_command, update};
        let mut states = Vec::new();
        let mut state = crate::app::fixtures::state();
        for _ in 0..3 {
            run_command(&mut state, Command::NextPane);
        }
        if let [Effect::RunBench { request, kind, .. }] = run_command(&mut state, Command::BenchDocker).as_slice() {
            let result = Ok(crate::app::fixtures::bench_done().into());
            update(&mut state, Action::BenchFinished { request: *request, kind: *kind, result });
        }
        states.push(state.clone());
        run_command(&mut state, Command::Enter);
        states.push(state.clone());
        run_command(&mut state, Command::NextPane);
        if let [Effect::LoadInventory { request, .. }] = run_command(&mut state, Command::NextPane).as_slice() {
            let result = Ok(std::sync::Arc::new(crate::app::fixtures::workloads_data()));
            update(&mut state, Action::InventoryLoaded { request: *request, result });
        }
        states.push(state.clone());
        run_command(&mut state, Command::Enter);
        states.push(state.clone());
        assert_eq!(state.pane(), crate::app::state::PaneId::WorkloadChecks);
        // The Nodes pane without an agent, with one, and a container's activity.
        let Some(Effect::ConnectAgent { conn, .. }) = run_command(&mut state, Command::NextPane).first().cloned()
        else {
            panic!("the Nodes pane connects")
        };
        update(&mut state, Action::AgentDown { conn, reason: "no agent is serving /run/picket/agent.sock".into() });
        run_command(&mut state, Command::StartAgent);
        states.push(state.clone());
        let events = crate::app::update::nodes_sample_lines();
        update(&mut state, Action::AgentLines { conn, events, unreadable: 2 });
        states.push(state.clone());
        run_command(&mut state, Command::Down);
        run_command(&mut state, Command::Enter);
        assert_eq!(state.pane(), crate::app::state::PaneId::NodeActivity);
        states.push(state.clone());
        assert_eq!(states.len(), 7);
        states
    }

    #[macro_export]
    macro_rules! assert_screen {
        ($name:expr, $state:expr) => {
            insta::with_settings!({ snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"), prepend_module_to_snapshot => false }, {
                insta::assert_snapshot!($name, $crate::ui::snapshot::screen($state));
            });
        };
    }
}

//! The node agent: its state (connection, mode, event rate, drops) and the containers it sees;
//! and one container's live process tree and latest events.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Wrap};

use crate::agent::enforce::{AlertAction, AlertKind};
use crate::agent::events::ProcessEventKind;
use crate::agent::net::NetEventKind;
use crate::agent::wire::{AgentStats, WireEvent};
use crate::app::action::Command;
use crate::app::state::{AgentLink, AgentStatus, AppState, NodesState};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

fn hint(state: &AppState, command: Command, fallback: &str) -> String {
    state.keymap.hint(command).unwrap_or_else(|| fallback.to_string())
}

fn mode_label(stats: &AgentStats) -> String {
    let sensing = format!("sensing ({})", stats.sensors.join(", "));
    match &stats.enforcement {
        None => sensing,
        Some(e) if e.error.is_some() => {
            format!("protect {} · monitor {} · discover {} (policy error)", e.protect, e.monitor, e.discover)
        }
        Some(e) => format!("protect {} · monitor {} · discover {}", e.protect, e.monitor, e.discover),
    }
}

fn duration_label(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

fn agent_lines(state: &AppState, nodes: &NodesState, theme: &Theme) -> Vec<Line<'static>> {
    let socket = nodes.socket.display().to_string();
    let mut lines = Vec::new();
    match (&nodes.link, &nodes.agent) {
        (AgentLink::Connected, Some(AgentStatus { node, stats, rate_tenths, missed })) => {
            let value = |text: String| Span::styled(text, theme.style(Slot::Value));
            let label = |text: &str| Span::styled(text.to_string(), theme.style(Slot::Dim));
            lines.push(Line::from(vec![
                label(" node "),
                value(node.clone()),
                label("  agent "),
                value(format!("pid {} v{}", stats.pid, stats.version)),
                label("  on "),
                value(socket),
                label("  up "),
                value(duration_label(stats.uptime_s)),
            ]));
            lines.push(Line::from(vec![label(" mode "), value(mode_label(stats))]));
            let lost = stats.dropped + missed + nodes.unreadable;
            let lost_style = if lost > 0 { theme.style(Slot::StatusError) } else { theme.style(Slot::StatusOk) };
            lines.push(Line::from(vec![
                label(" events/s "),
                value(format!("{}.{}", rate_tenths / 10, rate_tenths % 10)),
                label("  events "),
                value(stats.events.to_string()),
                label("  dropped "),
                Span::styled(stats.dropped.to_string(), lost_style),
                label("  missed by the console "),
                Span::styled((missed + nodes.unreadable).to_string(), lost_style),
            ]));
            if let Some(error) = stats.enforcement.as_ref().and_then(|e| e.error.clone()) {
                lines.push(Line::from(Span::styled(format!(" {error}"), theme.style(Slot::StatusError))));
            }
        }
        (AgentLink::Connected, None) => {
            lines.push(Line::from(Span::styled(
                format!(" connected to {socket}, waiting for the agent's state…"),
                theme.style(Slot::Dim),
            )));
        }
        (AgentLink::Connecting, _) => {
            lines.push(Line::from(Span::styled(format!(" connecting to {socket}…"), theme.style(Slot::Dim))));
        }
        (AgentLink::Down(reason), _) => {
            lines.push(Line::from(Span::styled(format!(" {reason}"), theme.style(Slot::StatusWarn))));
            lines.push(Line::from(Span::styled(
                " Nothing is enforced on this node without the agent: it fails open (every process and file is allowed).",
                theme.style(Slot::Dim),
            )));
            lines.push(Line::from(Span::styled(
                format!(
                    " {} starts it here · {} deploys it to the context's nodes · {} connects again",
                    hint(state, Command::StartAgent, "a"),
                    hint(state, Command::DeployAgent, "A"),
                    hint(state, Command::Refresh, "ctrl-r")
                ),
                theme.style(Slot::Dim),
            )));
        }
    }
    if let Some(note) = &nodes.note {
        lines.extend(note.lines().map(|l| Line::from(Span::styled(format!(" {l}"), theme.style(Slot::Value)))));
    }
    lines
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(nodes) = &state.nodes else { return };
    let lines = agent_lines(state, nodes, theme);
    let height = u16::try_from(lines.len()).unwrap_or(6).saturating_add(2).min(area.height / 2).max(3);
    let [top, body] = Layout::vertical([Constraint::Length(height), Constraint::Min(3)]).areas(area);
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(" Node agent ", theme, false));
    frame.render_widget(paragraph, top);

    let all = nodes.rows();
    let view = &nodes.view;
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| all.get(i))
        .map(|a| {
            let c = a.container.as_ref();
            let alerts = if a.alerts > 0 {
                Span::styled(a.alerts.to_string(), theme.style(Slot::StatusError))
            } else {
                Span::raw("")
            };
            Row::new(vec![
                Span::raw(a.label()),
                Span::raw(c.map(|c| c.id.chars().take(12).collect::<String>()).unwrap_or_default()),
                Span::raw(c.and_then(|c| c.image.clone()).unwrap_or_default()),
                Span::raw(c.map(|c| format!("{:?}", c.runtime).to_lowercase()).unwrap_or_default()),
                Span::raw(a.processes.len().to_string()),
                Span::raw(a.events.to_string()),
                Span::raw(a.connections.to_string()),
                alerts,
            ])
        })
        .collect();
    let title = format!(" Seen by the agent [{}/{}]{} ", view.visible.len(), all.len(), filter_badge(view));
    let spec = TableSpec {
        header: &["CONTAINER", "ID", "IMAGE", "RUNTIME", "PROCS", "EVENTS", "NET", "ALERTS"],
        widths: &[
            Constraint::Length(20),
            Constraint::Length(12),
            Constraint::Fill(1),
            Constraint::Length(10),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(6),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, body, pane_block(title, theme, true), spec, theme);
}

/// One line of the event stream.
fn event_line(event: &WireEvent) -> (String, String) {
    match event {
        WireEvent::Process { event, .. } => {
            let kind = match event.kind {
                ProcessEventKind::Exec => "exec",
                ProcessEventKind::Fork => "fork",
                ProcessEventKind::Exit => "exit",
            };
            let detail = match event.kind {
                ProcessEventKind::Exec => format!("{}  {}", event.filename, event.args.join(" ")),
                _ => event.comm.clone(),
            };
            (kind.into(), format!("{detail} (pid {}, uid {})", event.pid, event.uid))
        }
        WireEvent::Network { event, .. } => {
            let kind = match event.kind {
                NetEventKind::Connect => "connect",
                NetEventKind::Accept => "accept",
            };
            let protocol = if event.protocol == 17 { "udp" } else { "tcp" };
            let local = event.local.map(|(ip, port)| format!("{ip}:{port} ← ")).unwrap_or_default();
            (
                kind.into(),
                format!("{local}{}:{} {protocol} ({}, pid {})", event.remote.0, event.remote.1, event.comm, event.pid),
            )
        }
        WireEvent::Alert { alert, .. } => {
            let action = match alert.action {
                AlertAction::Recorded => "recorded",
                AlertAction::Alerted => "alert",
                AlertAction::Denied => "denied",
            };
            let what = match alert.kind {
                AlertKind::Exec => "exec".to_string(),
                AlertKind::File => {
                    format!("{}{}", if alert.read { "read" } else { "" }, if alert.write { " write" } else { "" })
                }
            };
            (action.into(), format!("{what} {} ({}, pid {})", alert.path, alert.comm, alert.pid))
        }
        WireEvent::Stats { .. } | WireEvent::Lagged { .. } => (String::new(), String::new()),
    }
}

pub fn render_activity(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(nodes) = &state.nodes else { return };
    let Some(activity) = nodes.opened() else { return };
    let [tree_area, stream_area] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let tree = activity.process_tree();
    let rows = tree
        .iter()
        .map(|(depth, p)| {
            let indent = if *depth == 0 { String::new() } else { format!("{}└ ", "  ".repeat(depth - 1)) };
            // The command line as `ps` shows it; the path where argv is empty.
            let command = if p.args.is_empty() { p.path.clone() } else { p.args.join(" ") };
            Row::new(vec![
                Span::raw(p.pid.to_string()),
                Span::raw(p.uid.to_string()),
                Span::raw(format!("{indent}{command}")),
                Span::styled(p.path.clone(), theme.style(Slot::Dim)),
            ])
        })
        .collect();
    let who = match &activity.container {
        Some(c) => format!("{} ({})", activity.label(), c.id.chars().take(12).collect::<String>()),
        None => "the host".to_string(),
    };
    let title = format!(" Processes of {who} [{}] ", tree.len());
    let spec = TableSpec {
        header: &["PID", "UID", "COMMAND", "EXECUTABLE"],
        widths: &[Constraint::Length(8), Constraint::Length(6), Constraint::Fill(2), Constraint::Fill(1)],
        rows,
        selected: None,
    };
    table::render(frame, tree_area, pane_block(title, theme, true), spec, theme);

    let height = usize::from(stream_area.height.saturating_sub(3));
    let rows = activity
        .recent
        .iter()
        .rev()
        .take(height)
        .map(|event| {
            let (kind, detail) = event_line(event);
            let style = match event {
                WireEvent::Alert { .. } => theme.style(Slot::StatusError),
                WireEvent::Network { .. } => theme.style(Slot::Value),
                _ => theme.style(Slot::App),
            };
            Row::new(vec![Span::styled(kind, style), Span::raw(detail)])
        })
        .collect();
    let title = format!(" Events, newest first [{} of {}] ", activity.recent.len(), activity.events);
    let spec = TableSpec {
        header: &["EVENT", "DETAIL"],
        widths: &[Constraint::Length(8), Constraint::Fill(1)],
        rows,
        selected: None,
    };
    table::render(frame, stream_area, pane_block(title, theme, false), spec, theme);
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyCode;

    use crate::app::action::{Action, Effect};
    use crate::app::fixtures::{self, code, key, type_text};
    use crate::app::update::update;

    #[test]
    fn the_agent_its_containers_and_one_containers_activity() {
        let mut state = fixtures::state();
        type_text(&mut state, ":nodes");
        let effects = update(&mut state, Action::Key(code(KeyCode::Enter)));
        let Some(Effect::ConnectAgent { conn, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("connecting to /run/picket/agent.sock…"), "{screen}");
        let events = crate::app::update::nodes_sample_lines();
        update(&mut state, Action::AgentLines { conn, events, unreadable: 0 });
        crate::assert_screen!("nodes", &state);
        update(&mut state, Action::Key(key('j')));
        update(&mut state, Action::Key(code(KeyCode::Enter)));
        crate::assert_screen!("node_activity", &state);
    }
}

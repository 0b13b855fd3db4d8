//! The node agent: its state (connection, mode, event rate, drops) and the containers it sees;
//! and one container's live process tree and latest events.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Wrap};

use crate::agent::alert::Action;
use crate::agent::events::ProcessEventKind;
use crate::agent::net::NetEventKind;
use crate::agent::wire::{AgentStats, WireEvent};
use crate::app::action::Command;
use crate::app::state::{AgentLink, AgentStatus, AppState, Loadable, NodesState};
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
        Some(e) => {
            // The enforcement mechanism first: what the user trusts the policy to is what loaded.
            let rung = e.rung.as_deref().map(|r| format!("{r}: ")).unwrap_or_default();
            let error = if e.error.is_some() { " (policy error)" } else { "" };
            let pending = if e.pending > 0 { format!(" ({} not enforced yet)", e.pending) } else { String::new() };
            let unjudged = if e.unjudged > 0 { format!(" ({} allowed unjudged)", e.unjudged) } else { String::new() };
            format!(
                "{rung}protect {} · monitor {} · discover {}{pending}{unjudged}{error}",
                e.protect, e.monitor, e.discover
            )
        }
    }
}

fn duration_label(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// One agent's table cells: STATE, MODE, EV/S, EVENTS, DROPPED, UP.
fn status_cells(agent: &AgentStatus, theme: &Theme) -> Vec<Span<'static>> {
    let lost = agent.stats.dropped + agent.missed;
    vec![
        Span::styled("streaming", theme.style(Slot::StatusOk)),
        Span::raw(mode_label(&agent.stats)),
        Span::raw(format!("{}.{}", agent.rate_tenths / 10, agent.rate_tenths % 10)),
        Span::raw(agent.stats.events.to_string()),
        if lost > 0 { Span::styled(lost.to_string(), theme.style(Slot::StatusError)) } else { Span::raw("0") },
        Span::raw(duration_label(agent.stats.uptime_s)),
    ]
}

fn waiting_cells(state: String, style: ratatui::style::Style) -> Vec<Span<'static>> {
    let mut cells = vec![Span::styled(state, style)];
    cells.extend((0..5).map(|_| Span::raw("")));
    cells
}

/// The agents table: this machine's (over its socket), then the active context's DaemonSet pods.
fn agent_rows(nodes: &NodesState, theme: &Theme) -> Vec<Row<'static>> {
    let mut rows = Vec::new();
    let socket = format!("socket {}", nodes.socket.display());
    let local = match (&nodes.link, &nodes.agent) {
        (AgentLink::Connected, Some(agent)) => {
            let via = format!("{socket} (pid {} v{})", agent.stats.pid, agent.stats.version);
            let mut cells = vec![Span::raw(agent.node.clone()), Span::raw(via)];
            cells.extend(status_cells(agent, theme));
            cells
        }
        (link, _) => {
            let state = match link {
                AgentLink::Down(_) => ("not running", theme.style(Slot::StatusWarn)),
                _ => ("connecting…", theme.style(Slot::Dim)),
            };
            let mut cells = vec![Span::raw("(this machine)"), Span::raw(socket)];
            cells.extend(waiting_cells(state.0.into(), state.1));
            cells
        }
    };
    rows.push(Row::new(local));
    if let Some(cluster) = &nodes.cluster {
        for pod in cluster.pods.ready().into_iter().flatten() {
            let via = format!("ctx {} pod {}", cluster.context, pod.name);
            let mut cells = vec![Span::raw(pod.node.clone()), Span::raw(via)];
            match (cluster.agents.get(&pod.node), cluster.errors.get(&pod.name)) {
                (_, Some(_)) => cells.extend(waiting_cells("unreachable".into(), theme.style(Slot::StatusError))),
                (Some(agent), None) => cells.extend(status_cells(agent, theme)),
                (None, None) if pod.phase == "Running" => {
                    cells.extend(waiting_cells("connecting…".into(), theme.style(Slot::Dim)))
                }
                (None, None) => cells.extend(waiting_cells(pod.phase.to_lowercase(), theme.style(Slot::StatusWarn))),
            }
            rows.push(Row::new(cells));
        }
    }
    rows
}

/// What the user should know under the table: why there is no local agent and what to do,
/// a note (the sudo command), the cluster's errors.
fn message_lines(state: &AppState, nodes: &NodesState, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let AgentLink::Down(reason) = &nodes.link {
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
    if let Some(error) = nodes.agent.as_ref().and_then(|a| a.stats.enforcement.as_ref()).and_then(|e| e.error.clone()) {
        lines.push(Line::from(Span::styled(format!(" {error}"), theme.style(Slot::StatusError))));
    }
    if nodes.unreadable > 0 {
        let text =
            format!(" {} lines from the agent were not events this console reads (a newer agent?)", nodes.unreadable);
        lines.push(Line::from(Span::styled(text, theme.style(Slot::StatusWarn))));
    }
    if let Some(note) = &nodes.note {
        lines.extend(note.lines().map(|l| Line::from(Span::styled(format!(" {l}"), theme.style(Slot::Value)))));
    }
    if let Some(cluster) = &nodes.cluster {
        match &cluster.pods {
            Loadable::Failed(err) => {
                lines.push(Line::from(Span::styled(format!(" {err}"), theme.style(Slot::StatusError))))
            }
            Loadable::Ready(pods) if pods.is_empty() => lines.push(Line::from(Span::styled(
                format!(
                    " context {}: no agent pods in {} ({} deploys the DaemonSet)",
                    cluster.context,
                    crate::agent::manifest::NAMESPACE,
                    hint(state, Command::DeployAgent, "A")
                ),
                theme.style(Slot::Dim),
            ))),
            _ => {}
        }
        for (pod, reason) in &cluster.errors {
            lines.push(Line::from(Span::styled(format!(" {pod}: {reason}"), theme.style(Slot::StatusError))));
        }
    }
    lines
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(nodes) = &state.nodes else { return };
    let agents = agent_rows(nodes, theme);
    let lines = message_lines(state, nodes, theme);
    let wanted = agents.len() + lines.len() + 3;
    let height = u16::try_from(wanted).unwrap_or(u16::MAX).min(area.height / 2).max(4);
    let [top, body] = Layout::vertical([Constraint::Length(height), Constraint::Min(3)]).areas(area);
    let table_height = u16::try_from(agents.len() + 3).unwrap_or(u16::MAX).min(top.height);
    let [table_area, notes_area] = Layout::vertical([Constraint::Length(table_height), Constraint::Min(0)]).areas(top);
    let spec = TableSpec {
        header: &["NODE", "AGENT", "STATE", "MODE", "EV/S", "EVENTS", "LOST", "UP"],
        widths: &[
            Constraint::Length(14),
            Constraint::Fill(3),
            Constraint::Length(11),
            Constraint::Fill(2),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(6),
        ],
        rows: agents,
        selected: None,
    };
    table::render(frame, table_area, pane_block(" Node agents ", theme, false), spec, theme);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), notes_area);

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
                Span::raw(a.node.clone().unwrap_or_default()),
                Span::raw(c.map(|c| c.id.chars().take(12).collect::<String>()).unwrap_or_default()),
                Span::raw(c.and_then(|c| c.image.clone()).unwrap_or_default()),
                Span::raw(c.map(|c| format!("{:?}", c.runtime).to_lowercase()).unwrap_or_default()),
                Span::raw(a.processes.len().to_string()),
                Span::raw(a.events.to_string()),
                Span::raw(a.connections.to_string()),
                Span::raw(a.opens.to_string()),
                alerts,
            ])
        })
        .collect();
    let title = format!(" Seen by the agent [{}/{}]{} ", view.visible.len(), all.len(), filter_badge(view));
    let spec = TableSpec {
        header: &["CONTAINER", "NODE", "ID", "IMAGE", "RUNTIME", "PROCS", "EVENTS", "NET", "FILES", "ALERTS"],
        widths: &[
            Constraint::Fill(3),
            Constraint::Length(10),
            Constraint::Length(12),
            Constraint::Fill(2),
            Constraint::Length(10),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(6),
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
                ProcessEventKind::Exec => {
                    let path = if event.exe.is_empty() { &event.filename } else { &event.exe };
                    format!("{path}  {}", event.args.join(" "))
                }
                _ => event.comm.clone(),
            };
            (kind.into(), format!("{detail} (pid {}, uid {})", event.pid, event.uid))
        }
        WireEvent::Flow { flow, .. } => {
            use crate::agent::protocols::Protocol;
            let detail = match &flow.protocol {
                Protocol::Http { method, path, host } if !method.is_empty() => {
                    format!("HTTP {method} {path}{}", host.as_ref().map(|h| format!(" (host {h})")).unwrap_or_default())
                }
                Protocol::Http2 { method, path, .. } if !path.is_empty() => {
                    format!("{} {method} {path}", flow.protocol.name())
                }
                Protocol::Tls { sni: Some(sni) } => format!("TLS to {sni}"),
                Protocol::Ssh { banner } => banner.clone(),
                Protocol::Mysql { version } => format!("MySQL {version}"),
                Protocol::Redis { command } => format!("Redis {command}"),
                Protocol::Kafka { api_key, .. } => format!("Kafka API {api_key}"),
                other => other.name().to_string(),
            };
            let way = match flow.way {
                crate::agent::flows::Way::Sent => "→",
                crate::agent::flows::Way::Received => "←",
            };
            ("flow".into(), format!("{detail} {way} {}:{}", flow.remote.0, flow.remote.1))
        }
        WireEvent::FlowEnded { flow, connections, sent, received, .. } => {
            let (address, port) = flow.service();
            (
                "ended".into(),
                format!(
                    "{} {connections}× to {address}:{port}: {} sent, {} received",
                    flow.protocol.name(),
                    crate::model::human_bytes(*sent),
                    crate::model::human_bytes(*received)
                ),
            )
        }
        WireEvent::Dns { answer, server, .. } => {
            let addresses: Vec<String> = answer.addresses.iter().map(ToString::to_string).collect();
            let to = if addresses.is_empty() { answer.rcode.clone() } else { addresses.join(", ") };
            ("dns".into(), format!("{} → {to} (from {server})", answer.query))
        }
        WireEvent::Network { event, fqdn, .. } => {
            let kind = match event.kind {
                NetEventKind::Connect => "connect",
                NetEventKind::Accept => "accept",
                NetEventKind::Send => "send",
            };
            let protocol = if event.protocol == 17 { "udp" } else { "tcp" };
            let local = event.local.map(|(ip, port)| format!("{ip}:{port} ← ")).unwrap_or_default();
            let name = fqdn.as_ref().map(|n| format!(" {n}")).unwrap_or_default();
            (
                kind.into(),
                format!(
                    "{local}{}:{}{name} {protocol} ({}, pid {})",
                    event.remote.0, event.remote.1, event.comm, event.pid
                ),
            )
        }
        WireEvent::File { event, .. } => {
            let access = match (event.read, event.write) {
                (true, true) => "read-write",
                (false, true) => "write",
                (true, false) => "read",
                (false, false) => "path",
            };
            let extra = match (event.create, event.truncate) {
                (true, true) => ", create, truncate",
                (true, false) => ", create",
                (false, true) => ", truncate",
                (false, false) => "",
            };
            ("open".into(), format!("{} {access}{extra} ({}, pid {})", event.path, event.comm, event.pid))
        }
        WireEvent::Alert { alert, .. } => {
            let action = match alert.action {
                Action::Recorded => "recorded",
                Action::Alerted => "alert",
                Action::Denied => "denied",
                Action::Killed => "killed",
            };
            let subject = alert.event.object().to_string();
            let count = if alert.count > 1 { format!(" ×{}", alert.count) } else { String::new() };
            (
                action.into(),
                format!(
                    "{} {}: {subject} ({}, pid {}){count}",
                    alert.severity, alert.title, alert.event.comm, alert.event.pid
                ),
            )
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

    use crate::agent::attribution::{ContainerRef, Runtime};
    use crate::agent::events::{ProcessEvent, ProcessEventKind};
    use crate::agent::wire::{AgentStats, WireEvent};
    use crate::app::action::{Action, Effect};

    #[test]
    fn the_mode_names_the_enforcement_mechanism() {
        let mut stats = AgentStats { sensors: vec!["process".into(), "file".into()], ..AgentStats::default() };
        assert_eq!(super::mode_label(&stats), "sensing (process, file)");
        stats.enforcement = Some(crate::agent::wire::Enforcement {
            rung: Some("fanotify".into()),
            policy: "p.yaml".into(),
            protect: 2,
            monitor: 1,
            discover: 0,
            pending: 0,
            unjudged: 0,
            error: None,
        });
        assert_eq!(super::mode_label(&stats), "fanotify: protect 2 · monitor 1 · discover 0");
        if let Some(e) = stats.enforcement.as_mut() {
            e.pending = 1;
        }
        assert_eq!(super::mode_label(&stats), "fanotify: protect 2 · monitor 1 · discover 0 (1 not enforced yet)");
        if let Some(e) = stats.enforcement.as_mut() {
            (e.pending, e.unjudged) = (0, 3);
        }
        assert_eq!(super::mode_label(&stats), "fanotify: protect 2 · monitor 1 · discover 0 (3 allowed unjudged)");
    }
    use crate::app::fixtures::{self, code, key, type_text};
    use crate::app::state::AgentPod;
    use crate::app::update::update;

    #[test]
    fn the_agent_its_containers_and_one_containers_activity() {
        let mut state = fixtures::state();
        type_text(&mut state, ":nodes");
        let effects = update(&mut state, Action::Key(code(KeyCode::Enter)));
        let Some(Effect::ConnectAgent { conn, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        let Some(Effect::ConnectClusterAgents { conn: cluster_conn, context }) = effects.get(1).cloned() else {
            panic!("{effects:?}")
        };
        assert_eq!(context, "prod", "the active context's agents too");
        let screen = crate::ui::snapshot::screen(&state);
        assert!(
            screen.contains("(this machine)  socket /run/picket/agent.sock") && screen.contains("connecting…"),
            "{screen}"
        );
        let events = crate::app::update::nodes_sample_lines();
        update(&mut state, Action::AgentLines { conn, events, unreadable: 0 });
        let pods = vec![
            AgentPod { name: "picket-agent-7xk2p".into(), node: "node-b".into(), phase: "Running".into() },
            AgentPod { name: "picket-agent-q9d4m".into(), node: "node-c".into(), phase: "Pending".into() },
            AgentPod { name: "picket-agent-w2r8t".into(), node: "node-d".into(), phase: "Running".into() },
        ];
        update(&mut state, Action::ClusterAgentsListed { conn: cluster_conn, result: Ok(pods) });
        let from_node_b = vec![
            WireEvent::stats(
                "node-b",
                AgentStats {
                    events: 90,
                    uptime_s: 600,
                    pid: 1,
                    version: "0.1.0".into(),
                    sensors: vec!["process".into()],
                    ..Default::default()
                },
            ),
            WireEvent::process(
                "node-b",
                ProcessEvent {
                    kind: ProcessEventKind::Exec,
                    pid: 51,
                    tid: 51,
                    ppid: 1,
                    uid: 1000,
                    exit_status: 0,
                    cgroup_id: 5,
                    timestamp_ns: 5,
                    comm: "python3".into(),
                    filename: "/usr/bin/python3".into(),
                    args: vec!["python3".into(), "app.py".into()],
                    exe: String::new(),
                },
                Some(ContainerRef {
                    runtime: Runtime::Containerd,
                    id: "cd".repeat(32),
                    pod_uid: Some("446298685466-0000-4000-8000-000000000000".into()),
                    name: Some("api".into()),
                    image: Some("registry.example.com/payments/api:2.4.1".into()),
                    pod_namespace: Some("payments".into()),
                    pod_name: Some("api-7d9f8b6c4-x2x9k".into()),
                    pod_owner: None,
                }),
            ),
        ];
        update(&mut state, Action::AgentLines { conn: cluster_conn, events: from_node_b, unreadable: 0 });
        update(
            &mut state,
            Action::ClusterAgentDown {
                conn: cluster_conn,
                pod: "picket-agent-w2r8t".into(),
                reason: "port-forward to pod picket-agent-w2r8t port 7946: pods \"picket-agent-w2r8t\" is forbidden"
                    .into(),
            },
        );
        crate::assert_screen!("nodes", &state);
        let nodes = state.nodes.as_ref().unwrap();
        assert!(nodes.agent.as_ref().is_some_and(|a| a.node == "node-1"), "the local agent stays apart");
        assert_eq!(nodes.cluster.as_ref().unwrap().agents.keys().collect::<Vec<_>>(), ["node-b"]);
        update(&mut state, Action::Key(key('G')));
        update(&mut state, Action::Key(code(KeyCode::Enter)));
        crate::assert_screen!("node_activity", &state);
    }
}

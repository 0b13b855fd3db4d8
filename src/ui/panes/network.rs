//! The Network pane: the connections the agents report per container, peer, port and protocol,
//! with their last L7 detail and verdict; `m` draws the map of who talks to whom; one connection
//! in full with the rule that decided it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Wrap};

use crate::app::action::Command;
use crate::app::state::{AgentLink, AppState};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::network::connections::{Direction, Verdict, map_lines};
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

fn verdict_style(verdict: Verdict, theme: &Theme) -> Style {
    match verdict {
        Verdict::Allowed => theme.style(Slot::Value),
        Verdict::Alerted => theme.style(Slot::StatusWarn),
        Verdict::Denied => theme.style(Slot::SeverityCritical),
    }
}

/// Where the events come from: the local agent's link.
fn link_text(state: &AppState) -> (String, Slot) {
    match state.nodes.as_ref().map(|n| &n.link) {
        Some(AgentLink::Connected) => (format!("agent {} connected", state.agent_socket.display()), Slot::Dim),
        Some(AgentLink::Connecting) | None => (format!("connecting to {}…", state.agent_socket.display()), Slot::Dim),
        Some(AgentLink::Down(reason)) => (format!("agent down: {reason}"), Slot::StatusError),
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(network) = &state.network else { return };
    let count = |v: Verdict| network.rows.iter().filter(|c| c.verdict == v).count();
    let (link, link_slot) = link_text(state);
    let map_key = state.keymap.hint(Command::ToggleMap).unwrap_or_default();
    let header = Line::from(vec![
        Span::styled(" connections ", theme.style(Slot::Label)),
        Span::raw(network.rows.len().to_string()),
        Span::styled("  denied ", theme.style(Slot::Label)),
        Span::styled(count(Verdict::Denied).to_string(), theme.style(Slot::SeverityCritical)),
        Span::styled("  alerted ", theme.style(Slot::Label)),
        Span::styled(count(Verdict::Alerted).to_string(), theme.style(Slot::StatusWarn)),
        Span::styled(format!("   {link}"), theme.style(link_slot)),
        Span::styled(format!("   {map_key} {}", if network.map { "table" } else { "map" }), theme.style(Slot::Dim)),
    ]);
    let [top, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    frame.render_widget(Paragraph::new(header), top);

    if network.rows.is_empty() {
        let lines = vec![Line::from(Span::styled(
            "no connections yet: they appear as the agents report them (picket agent run, :nodes)",
            theme.style(Slot::Dim),
        ))];
        let block = pane_block(" Network ", theme, true);
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), body);
        return;
    }
    if network.map {
        let lines: Vec<Line> = map_lines(&network.connections.edges())
            .into_iter()
            .map(|(text, verdict)| match verdict {
                Verdict::Allowed if text.starts_with(['┌', '│', '└']) => {
                    Line::from(Span::styled(text, theme.style(Slot::Label)))
                }
                verdict => Line::from(Span::styled(text, verdict_style(verdict, theme))),
            })
            .collect();
        let block = pane_block(" Network map ", theme, true);
        frame.render_widget(Paragraph::new(lines).block(block), body);
        return;
    }
    let view = &network.view;
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| network.rows.get(i))
        .map(|c| {
            Row::new(vec![
                Span::raw(c.key.container.clone()),
                Span::raw(if c.key.direction == Direction::Out { "→" } else { "←" }),
                Span::raw(c.peer()),
                Span::raw(c.key.port.to_string()),
                Span::raw(c.key.protocol.clone()),
                Span::raw(c.count.to_string()),
                Span::raw(c.bytes_text()),
                Span::styled(c.verdict.as_str(), verdict_style(c.verdict, theme)),
                Span::styled(c.details.back().cloned().unwrap_or_default(), theme.style(Slot::Dim)),
            ])
        })
        .collect();
    let title = format!(" Network [{}/{}]{} ", view.visible.len(), network.rows.len(), filter_badge(view));
    let spec = TableSpec {
        header: &["CONTAINER", "", "PEER", "PORT", "PROTO", "COUNT", "BYTES ↑↓", "VERDICT", "LAST"],
        widths: &[
            Constraint::Fill(3),
            Constraint::Length(1),
            Constraint::Fill(3),
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Length(5),
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Fill(3),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, body, pane_block(title, theme, true), spec, theme);
}

/// One connection in full: both ends, counts, its last requests, what decided it.
pub fn render_detail(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(network) = &state.network else { return };
    let Some(connection) = network.opened() else { return };
    let title = format!(" {} · {} ", connection.key.container, connection.key.protocol);
    let lines: Vec<Line> = connection
        .lines()
        .into_iter()
        .enumerate()
        .skip(network.scroll)
        .map(|(i, l)| match i {
            0 => Line::from(Span::styled(l, theme.style(Slot::Label))),
            _ if l.starts_with("verdict") => Line::from(Span::styled(l, verdict_style(connection.verdict, theme))),
            _ => Line::from(l),
        })
        .collect();
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(title, theme, true));
    frame.render_widget(paragraph, area);
}

#[cfg(test)]
mod tests {
    use crate::agent::alert::{Action as Done, Alert, Trigger};
    use crate::agent::attribution::{ContainerRef, Runtime};
    use crate::agent::flows::{FlowSeen, Way};
    use crate::agent::protocols::{Direction as By, Protocol};
    use crate::agent::wire::{WIRE_VERSION, WireEvent};
    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures;
    use crate::app::state::PaneId;
    use crate::app::update::{run_command, update};

    fn pod(name: &str, pod: &str) -> ContainerRef {
        ContainerRef {
            runtime: Runtime::Containerd,
            id: format!("{name:a>64}"),
            pod_uid: Some("uid".into()),
            name: Some(name.into()),
            image: None,
            pod_namespace: Some("shop".into()),
            pod_name: Some(pod.into()),
            pod_owner: None,
        }
    }

    fn flow(container: ContainerRef, way: Way, by: By, local: &str, remote: &str, protocol: Protocol) -> WireEvent {
        let local: std::net::SocketAddr = local.parse().expect("address");
        let remote: std::net::SocketAddr = remote.parse().expect("address");
        WireEvent::Flow {
            v: WIRE_VERSION,
            node: "node-1".into(),
            flow: FlowSeen {
                way,
                local: (local.ip(), local.port()),
                remote: (remote.ip(), remote.port()),
                by,
                protocol,
            },
            container: Some(container),
            folded: 0,
        }
    }

    fn events() -> Vec<WireEvent> {
        let web = pod("web", "web-6f7b9");
        let get = |path: &str| Protocol::Http { method: "GET".into(), path: path.into(), host: Some("api".into()) };
        let mut denied = Alert {
            id: "node-1-1-7".into(),
            at_unix_ms: 1_780_000_000_000,
            rule: "policy-http".into(),
            title: "HTTP request the container's policy does not allow".into(),
            severity: crate::model::Severity::High,
            technique: String::new(),
            why: String::new(),
            mode: crate::agent::enforce::Mode::Protect,
            action: Done::Denied,
            policy: "/etc/picket/policy.yaml containers[0] http: deny DELETE /admin* port 8080".into(),
            event: Trigger::default(),
            ancestry: vec![],
            count: 1,
        };
        denied.event.kind = "http".into();
        denied.event.comm = "curl".into();
        denied.event.remote = "10.1.0.7:8080".into();
        denied.event.path = "DELETE /admin/users".into();
        let tls = flow(
            web.clone(),
            Way::Sent,
            By::Client,
            "10.88.0.5:40100",
            "192.0.2.7:443",
            Protocol::Tls { sni: Some("payments.example".into()) },
        );
        vec![
            WireEvent::Dns {
                v: WIRE_VERSION,
                node: "node-1".into(),
                server: "10.96.0.10".parse().expect("address"),
                answer: crate::agent::dns::DnsAnswer {
                    query: "api.shop.svc.cluster.local".into(),
                    rcode: "NOERROR".into(),
                    addresses: vec!["10.1.0.7".parse().expect("address")],
                    cnames: vec![],
                },
                container: Some(web.clone()),
            },
            flow(web.clone(), Way::Sent, By::Client, "10.88.0.5:40000", "10.1.0.7:8080", get("/orders/7")),
            flow(web.clone(), Way::Sent, By::Client, "10.88.0.5:40002", "10.1.0.7:8080", get("/orders/8")),
            tls.clone(),
            WireEvent::FlowEnded {
                v: WIRE_VERSION,
                node: "node-1".into(),
                flow: match tls {
                    WireEvent::Flow { flow, .. } => flow,
                    _ => unreachable!("a flow"),
                },
                container: Some(web.clone()),
                connections: 1,
                sent: 2_310,
                received: 48_200,
            },
            flow(
                pod("api", "api-5d8c4"),
                Way::Received,
                By::Client,
                "10.1.0.7:8080",
                "10.88.0.5:40000",
                get("/orders/7"),
            ),
            WireEvent::Alert { v: WIRE_VERSION, node: "node-1".into(), alert: Box::new(denied), container: Some(web) },
        ]
    }

    #[test]
    fn connections_as_a_table_a_map_and_one_in_full() {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, PaneId::Network);
        assert!(effects.iter().any(|e| matches!(e, Effect::ConnectAgent { .. })), "reads the agent: {effects:?}");
        assert!(crate::ui::snapshot::screen(&state).contains("no connections yet"));
        let conn = state.nodes.as_ref().map(|n| n.conn).expect("connecting");
        update(&mut state, Action::AgentLines { conn, events: events(), unreadable: 0 });
        let network = state.network.as_ref().expect("state");
        assert_eq!(network.rows.len(), 4, "{:?}", network.rows);
        crate::assert_screen!("network", &state);

        run_command(&mut state, Command::ToggleMap);
        crate::assert_screen!("network_map", &state);
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("──HTTP──▶ [api.shop.svc.cluster.local:8080]"), "{screen}");
        run_command(&mut state, Command::ToggleMap);

        // The denied connection in full, with the policy line that decided.
        let network = state.network.as_mut().expect("state");
        let denied = network.rows.iter().position(|c| c.verdict.as_str() == "denied").expect("a denied row");
        network.view.select_row(denied);
        run_command(&mut state, Command::Enter);
        assert_eq!(state.pane(), PaneId::NetworkFlow);
        crate::assert_screen!("network_connection", &state);
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("decided by  policy-http (protect, denied)"), "{screen}");

        // Lines keep coming while the pane is away; they are there when it is back.
        run_command(&mut state, Command::Back);
        let before = state.network.as_ref().map(|n| n.rows.len());
        let more = vec![flow(
            pod("worker", "worker-1"),
            Way::Sent,
            By::Client,
            "10.88.0.9:5000",
            "10.1.0.9:6379",
            Protocol::Redis { command: "GET".into() },
        )];
        update(&mut state, Action::AgentLines { conn, events: more, unreadable: 0 });
        assert_eq!(state.network.as_ref().map(|n| n.rows.len()), before.map(|n| n + 1));
    }
}

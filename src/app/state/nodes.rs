//! What the Nodes pane shows: the node agent the console is connected to (over its local
//! socket), its state and counters, and what it has seen, per container: live processes as a
//! tree and the latest events.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use super::{ListView, Loadable};
use crate::agent::attribution::ContainerRef;
pub use crate::agent::deploy::AgentPod;
use crate::agent::events::ProcessEventKind;
use crate::agent::wire::{AgentStats, WireEvent};

/// Events kept per container for its stream.
pub const RECENT_EVENTS: usize = 200;
/// Live processes kept per container; beyond this the oldest are forgotten (an exit the console
/// missed must not make the table grow for ever).
pub const MAX_PROCESSES: usize = 4096;

/// Rows kept; beyond this, containers with no live process left (gone ones) are forgotten.
pub const MAX_ROWS: usize = 2000;

/// The row key of events outside any container starts with this, then the node's name.
pub const HOST: &str = "host/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentLink {
    Connecting,
    Connected,
    /// Why there is no connection (no agent, the socket is root's, the agent stopped).
    Down(String),
}

pub use crate::agent::client::StartedAgent;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub path: String,
    pub args: Vec<String>,
    /// Boot-time ns of the exec (or fork), for ordering.
    pub since_ns: u64,
}

/// One container's (or the host's) activity as the agent reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerActivity {
    /// The container id, or `HOST` and the node.
    pub key: String,
    pub container: Option<ContainerRef>,
    pub events: u64,
    pub alerts: u64,
    pub connections: u64,
    /// Opens under the agent's watched prefixes.
    pub opens: u64,
    pub processes: BTreeMap<u32, Proc>,
    /// Newest last.
    pub recent: VecDeque<WireEvent>,
    /// The node the agent that saw it runs on.
    pub node: Option<String>,
}

impl ContainerActivity {
    fn new(key: String, container: Option<ContainerRef>, node: &str) -> Self {
        let node = Some(node.to_string()).filter(|n| !n.is_empty());
        Self {
            key,
            container,
            events: 0,
            alerts: 0,
            connections: 0,
            opens: 0,
            processes: BTreeMap::new(),
            recent: VecDeque::new(),
            node,
        }
    }

    pub fn is_host(&self) -> bool {
        self.container.is_none()
    }

    pub fn label(&self) -> String {
        match (&self.container, &self.node) {
            (Some(c), _) => match (&c.pod_namespace, &c.pod_name, &c.name) {
                (Some(namespace), Some(pod), Some(name)) => format!("{namespace}/{pod}/{name}"),
                _ => c.name.clone().unwrap_or_else(|| c.id.chars().take(12).collect()),
            },
            (None, Some(node)) => format!("(host {node})"),
            (None, None) => "(host)".to_string(),
        }
    }

    /// Live processes as a tree: (depth, process), parents before children, siblings by pid.
    /// A process whose parent is not in the container is a root.
    pub fn process_tree(&self) -> Vec<(usize, &Proc)> {
        let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut roots = Vec::new();
        for proc in self.processes.values() {
            if proc.ppid != proc.pid && self.processes.contains_key(&proc.ppid) {
                children.entry(proc.ppid).or_default().push(proc.pid);
            } else {
                roots.push(proc.pid);
            }
        }
        let mut out = Vec::with_capacity(self.processes.len());
        let mut stack: Vec<(usize, u32)> = roots.into_iter().rev().map(|pid| (0, pid)).collect();
        while let Some((depth, pid)) = stack.pop() {
            let Some(proc) = self.processes.get(&pid) else { continue };
            out.push((depth, proc));
            if let Some(kids) = children.get(&pid) {
                // Depth is bounded by the number of processes: every pid is visited once.
                stack.extend(kids.iter().rev().map(|k| (depth + 1, *k)));
            }
        }
        out
    }

    fn record(&mut self, event: &WireEvent) {
        self.events += 1;
        match event {
            WireEvent::Process { event, .. } => match event.kind {
                ProcessEventKind::Exec | ProcessEventKind::Fork => {
                    let inherited = self.processes.get(&event.pid).map(|p| (p.path.clone(), p.args.clone()));
                    let parent = self.processes.get(&event.ppid).map(|p| (p.path.clone(), p.args.clone()));
                    // A fork runs its parent's program until it execs.
                    let (path, args) = match event.kind {
                        ProcessEventKind::Exec => {
                            let path = if event.exe.is_empty() { &event.filename } else { &event.exe };
                            (path.clone(), event.args.clone())
                        }
                        _ => inherited.or(parent).unwrap_or_else(|| (event.comm.clone(), Vec::new())),
                    };
                    self.processes.insert(
                        event.pid,
                        Proc {
                            pid: event.pid,
                            ppid: event.ppid,
                            uid: event.uid,
                            path,
                            args,
                            since_ns: event.timestamp_ns,
                        },
                    );
                    if self.processes.len() > MAX_PROCESSES
                        && let Some(oldest) = self.processes.values().min_by_key(|p| p.since_ns).map(|p| p.pid)
                    {
                        self.processes.remove(&oldest);
                    }
                }
                ProcessEventKind::Exit => {
                    self.processes.remove(&event.pid);
                }
            },
            WireEvent::Network { .. } => self.connections += 1,
            WireEvent::Dns { .. } | WireEvent::Flow { .. } | WireEvent::FlowEnded { .. } => {}
            WireEvent::File { .. } => self.opens += 1,
            WireEvent::Alert { .. } => self.alerts += 1,
            WireEvent::Stats { .. } | WireEvent::Lagged { .. } => {}
        }
        // Fork and exit are the tree's business; the stream shows what a responder reads.
        let worth_showing = !matches!(
            event,
            WireEvent::Process { event, .. } if event.kind != ProcessEventKind::Exec
        );
        if worth_showing {
            if self.recent.len() == RECENT_EVENTS {
                self.recent.pop_front();
            }
            self.recent.push_back(event.clone());
        }
    }
}

/// The agent as its latest state line describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentStatus {
    pub node: String,
    pub stats: AgentStats,
    /// Events per second between the last two state lines, in tenths.
    pub rate_tenths: u64,
    /// Lines this console missed because it read too slowly.
    pub missed: u64,
}

impl AgentStatus {
    /// The status after a new state line; the rate comes from the one before.
    fn next(previous: Option<AgentStatus>, node: &str, stats: &AgentStats) -> Self {
        let rate_tenths = match &previous {
            Some(p) if stats.uptime_s > p.stats.uptime_s && stats.events >= p.stats.events => {
                (stats.events - p.stats.events).saturating_mul(10) / (stats.uptime_s - p.stats.uptime_s)
            }
            Some(p) if stats.pid == p.stats.pid => p.rate_tenths,
            _ => 0,
        };
        let missed = previous.map_or(0, |p| p.missed);
        Self { node: node.to_string(), stats: stats.clone(), rate_tenths, missed }
    }
}

/// The DaemonSet's agents of one context, reached through the API server's port-forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAgents {
    pub context: String,
    pub conn: u64,
    pub pods: Loadable<Vec<AgentPod>>,
    /// By node.
    pub agents: BTreeMap<String, AgentStatus>,
    /// Why a pod's stream could not be read, by pod name.
    pub errors: BTreeMap<String, String>,
}

impl ClusterAgents {
    pub fn new(context: String, conn: u64) -> Self {
        Self { context, conn, pods: Loadable::Loading, agents: BTreeMap::new(), errors: BTreeMap::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodesState {
    pub socket: PathBuf,
    /// The current connection attempt; answers of older ones are dropped.
    pub conn: u64,
    pub link: AgentLink,
    pub agent: Option<AgentStatus>,
    pub started: Option<StartedAgent>,
    /// By container id (`HOST` for the host).
    pub activity: BTreeMap<String, ContainerActivity>,
    /// Row order of the containers table: keys, busiest first.
    pub order: Vec<String>,
    pub view: ListView,
    /// The container open in the activity pane.
    pub opened: Option<String>,
    /// A message for the user about starting the agent (the sudo command to run).
    pub note: Option<String>,
    /// Lines on the socket that were not agent events.
    pub unreadable: u64,
    /// `a` was pressed and the agent has not answered yet.
    pub starting: bool,
    /// Which row each live process is in, by node and pid.
    pub pid_rows: std::collections::HashMap<(String, u32), String>,
    /// The agents of the active context's cluster.
    pub cluster: Option<ClusterAgents>,
}

impl NodesState {
    pub fn new(socket: PathBuf, conn: u64) -> Self {
        Self {
            socket,
            conn,
            link: AgentLink::Connecting,
            agent: None,
            started: None,
            activity: BTreeMap::new(),
            order: Vec::new(),
            view: ListView::default(),
            opened: None,
            note: None,
            unreadable: 0,
            starting: false,
            pid_rows: Default::default(),
            cluster: None,
        }
    }

    /// Takes a batch of lines from the local agent (`local`) or from a cluster's agent.
    pub fn apply(&mut self, events: Vec<WireEvent>, local: bool) {
        let rows_before = self.activity.len();
        let mut last_node = String::new();
        for event in events {
            match &event {
                WireEvent::Stats { node, stats, .. } => {
                    last_node.clone_from(node);
                    let known = if local {
                        self.agent.as_ref().map(|a| (a.node.clone(), a.stats.pid))
                    } else {
                        self.cluster.as_ref().and_then(|c| c.agents.get(node)).map(|a| (a.node.clone(), a.stats.pid))
                    };
                    // A new agent (or a new connection to one): the exits of what the tables
                    // hold may have been missed.
                    if known != Some((node.clone(), stats.pid)) {
                        self.forget_processes(node);
                    }
                    if local {
                        self.agent = Some(AgentStatus::next(self.agent.take(), node, stats));
                    } else if let Some(cluster) = self.cluster.as_mut() {
                        let previous = cluster.agents.remove(node);
                        cluster.agents.insert(node.clone(), AgentStatus::next(previous, node, stats));
                        // Streaming again: an earlier failure of this node's pod is history.
                        let pods = cluster.pods.ready().map_or(&[][..], Vec::as_slice);
                        cluster.errors.retain(|pod, _| !pods.iter().any(|p| &p.name == pod && &p.node == node));
                    }
                }
                WireEvent::Lagged { missed, node, .. } => {
                    if let Some(node) = node {
                        last_node.clone_from(node);
                    }
                    let agent = match (local, self.cluster.as_mut()) {
                        (true, _) => self.agent.as_mut(),
                        (false, Some(cluster)) => cluster.agents.get_mut(&last_node),
                        (false, None) => None,
                    };
                    if let Some(agent) = agent {
                        agent.missed = agent.missed.saturating_add(*missed);
                    }
                    // Exits may be among the lines missed: the trees would keep dead processes.
                    let node =
                        if local { self.agent.as_ref().map(|a| a.node.clone()) } else { Some(last_node.clone()) };
                    if let Some(node) = node {
                        self.forget_processes(&node);
                    }
                }
                _ => {
                    last_node = event.node().to_string();
                    let key = event.container().map_or_else(|| format!("{HOST}{}", event.node()), |c| c.id.clone());
                    let activity = self.activity.entry(key.clone()).or_insert_with(|| {
                        ContainerActivity::new(key.clone(), event.container().cloned(), event.node())
                    });
                    // A later event may carry the name the engine answered with since.
                    if let Some(container) = event.container()
                        && activity.container.as_ref().is_some_and(|c| c.name.is_none() && container.name.is_some())
                    {
                        activity.container = Some(container.clone());
                    }
                    activity.record(&event);
                    if let WireEvent::Process { event: process, .. } = &event {
                        self.follow_pid(event.node(), process.pid, process.kind, &key);
                    }
                }
            }
        }
        if self.activity.len() > MAX_ROWS {
            let opened = self.opened.clone();
            self.activity.retain(|key, row| {
                row.is_host() || !row.processes.is_empty() || opened.as_deref() == Some(key.as_str())
            });
        }
        if self.activity.len() != rows_before || self.order.is_empty() {
            self.reorder();
        }
    }

    /// A process appears in one row only: `runc init` forks in the host's cgroup and execs in
    /// the container's, so a pid that shows up in a new row leaves the one it was in; an exit
    /// removes it wherever it is.
    fn follow_pid(&mut self, node: &str, pid: u32, kind: ProcessEventKind, key: &str) {
        let slot = (node.to_string(), pid);
        let previous = match kind {
            ProcessEventKind::Exit => self.pid_rows.remove(&slot),
            ProcessEventKind::Exec | ProcessEventKind::Fork => {
                if self.pid_rows.len() >= 4 * MAX_PROCESSES {
                    // Pids whose exits were never seen; the rows bound their own tables.
                    self.pid_rows.clear();
                }
                self.pid_rows.insert(slot, key.to_string())
            }
        };
        if let Some(previous) = previous.filter(|p| p != key || kind == ProcessEventKind::Exit)
            && let Some(row) = self.activity.get_mut(&previous)
        {
            row.processes.remove(&pid);
        }
    }

    /// Empties the process tables of one node's rows (their exits may have been missed).
    fn forget_processes(&mut self, node: &str) {
        for row in self.activity.values_mut().filter(|r| r.node.as_deref() == Some(node)) {
            row.processes.clear();
        }
        self.pid_rows.retain(|(n, _), _| n != node);
    }

    /// Rows: the host first, then containers by name.
    pub fn reorder(&mut self) {
        let selected = self.selected().map(|a| a.key.clone());
        let mut keys: Vec<&ContainerActivity> = self.activity.values().collect();
        keys.sort_by(|a, b| (!a.is_host()).cmp(&!b.is_host()).then_with(|| a.label().cmp(&b.label())));
        self.order = keys.into_iter().map(|a| a.key.clone()).collect();
        self.refilter();
        if let Some(key) = selected
            && let Some(row) = self.order.iter().position(|k| *k == key)
        {
            self.view.select_row(row);
        }
    }

    pub fn refilter(&mut self) {
        let texts: Vec<String> = self
            .order
            .iter()
            .filter_map(|k| self.activity.get(k))
            .map(|a| {
                let c = a.container.as_ref();
                format!(
                    "{} {} {}",
                    a.label(),
                    c.map(|c| c.id.as_str()).unwrap_or("host"),
                    c.and_then(|c| c.image.as_deref()).unwrap_or_default()
                )
            })
            .collect();
        self.view.refilter(texts.into_iter());
    }

    pub fn rows(&self) -> Vec<&ContainerActivity> {
        self.order.iter().filter_map(|k| self.activity.get(k)).collect()
    }

    pub fn selected(&self) -> Option<&ContainerActivity> {
        self.view.current().and_then(|i| self.order.get(i)).and_then(|k| self.activity.get(k))
    }

    pub fn opened(&self) -> Option<&ContainerActivity> {
        self.opened.as_ref().and_then(|k| self.activity.get(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::attribution::Runtime;

    fn exec(pid: u32, ppid: u32, path: &str, container: Option<&ContainerRef>) -> WireEvent {
        crate::app::fixtures::exec_event("node-1", pid, ppid, path, &[path], container)
    }

    fn exit(pid: u32, container: Option<&ContainerRef>) -> WireEvent {
        let WireEvent::Process { node, mut event, container: c, v } = exec(pid, 1, "/x", container) else {
            unreachable!()
        };
        event.kind = ProcessEventKind::Exit;
        WireEvent::Process { v, node, event, container: c }
    }

    fn web() -> ContainerRef {
        ContainerRef {
            runtime: Runtime::Podman,
            id: "ab".repeat(32),
            pod_uid: None,
            name: Some("web".into()),
            image: Some("nginx:1".into()),
            pod_namespace: None,
            pod_name: None,
            pod_owner: None,
        }
    }

    #[test]
    fn processes_form_a_tree_and_leave_it_when_they_exit() {
        let mut nodes = NodesState::new("/run/picket/agent.sock".into(), 1);
        let web = web();
        nodes.apply(
            vec![
                exec(100, 1, "/bin/sh", Some(&web)),
                exec(110, 100, "/usr/sbin/nginx", Some(&web)),
                exec(120, 110, "/usr/sbin/nginx", Some(&web)),
                exec(130, 100, "/bin/sleep", Some(&web)),
                exec(500, 1, "/usr/bin/bash", None),
            ],
            true,
        );
        assert_eq!(nodes.rows().iter().map(|a| a.label()).collect::<Vec<_>>(), ["(host node-1)", "web"]);
        let activity = nodes.activity.get(&web.id).unwrap();
        let tree: Vec<(usize, u32)> = activity.process_tree().iter().map(|(d, p)| (*d, p.pid)).collect();
        assert_eq!(tree, [(0, 100), (1, 110), (2, 120), (1, 130)]);
        nodes.apply(vec![exit(110, Some(&web)), exit(130, Some(&web))], true);
        let activity = nodes.activity.get(&web.id).unwrap();
        let tree: Vec<(usize, u32)> = activity.process_tree().iter().map(|(d, p)| (*d, p.pid)).collect();
        assert_eq!(tree, [(0, 100), (0, 120)], "an orphan becomes a root");
        assert_eq!(activity.events, 6);
        assert_eq!(activity.recent.len(), 4, "execs are in the stream, exits are not");
    }

    #[test]
    fn a_process_lives_in_one_row_and_missed_exits_are_forgotten() {
        let mut nodes = NodesState::new("/s".into(), 1);
        let web = web();
        let stats = |pid| WireEvent::stats("node-1", AgentStats { pid, ..Default::default() });
        // runc init: forked in the host's cgroup, execs the entrypoint in the container's.
        let mut fork = exec(700, 1, "/usr/bin/runc", None);
        if let WireEvent::Process { event, .. } = &mut fork {
            event.kind = ProcessEventKind::Fork;
        }
        nodes.apply(vec![stats(42), fork, exec(700, 1, "/bin/sh", Some(&web))], true);
        let host = nodes.activity.get(&format!("{HOST}node-1")).unwrap();
        assert!(host.processes.is_empty(), "the pid left the host's row: {:?}", host.processes);
        assert_eq!(nodes.activity[&web.id].processes.keys().collect::<Vec<_>>(), [&700]);
        // Its exit, reported in whichever row, removes it.
        nodes.apply(vec![exit(700, None)], true);
        assert!(nodes.activity[&web.id].processes.is_empty());
        // Lines were missed: exits may be among them, so the tables start again.
        nodes.apply(
            vec![exec(800, 1, "/bin/sleep", Some(&web)), WireEvent::Lagged { v: 1, missed: 5, node: None }],
            true,
        );
        assert!(nodes.activity[&web.id].processes.is_empty(), "after a gap the tree is rebuilt from new events");
        // So does a new agent (a restart: another pid).
        nodes.apply(vec![exec(900, 1, "/bin/sleep", Some(&web)), stats(43)], true);
        assert!(nodes.activity[&web.id].processes.is_empty());
        nodes.apply(vec![exec(901, 1, "/bin/sleep", Some(&web)), stats(43)], true);
        assert_eq!(nodes.activity[&web.id].processes.len(), 1, "the same agent's state line keeps the tables");
    }

    #[test]
    fn a_cluster_agents_lagged_notice_counts_for_its_node() {
        let mut nodes = NodesState::new("/s".into(), 1);
        nodes.cluster = Some(ClusterAgents::new("prod".into(), 2));
        let stats = |node: &str| WireEvent::stats(node, AgentStats { pid: 7, ..Default::default() });
        nodes.apply(vec![stats("node-b"), stats("node-c")], false);
        // A batch that starts with the notice: only the stream's node says whose it is.
        nodes.apply(vec![WireEvent::Lagged { v: 1, missed: 9, node: Some("node-b".into()) }], false);
        let agents = &nodes.cluster.as_ref().unwrap().agents;
        assert_eq!((agents["node-b"].missed, agents["node-c"].missed), (9, 0));
    }

    #[test]
    fn state_lines_give_the_rate_and_drops() {
        let mut nodes = NodesState::new("/s".into(), 1);
        let stats = |events, uptime_s, dropped| {
            WireEvent::stats("node-1", AgentStats { events, uptime_s, dropped, pid: 42, ..Default::default() })
        };
        nodes.apply(vec![stats(100, 10, 0)], true);
        assert_eq!(nodes.agent.as_ref().unwrap().rate_tenths, 0, "one line gives no rate");
        nodes.apply(vec![stats(1100, 14, 3), WireEvent::Lagged { v: 1, missed: 7, node: None }], true);
        let agent = nodes.agent.as_ref().unwrap();
        assert_eq!((agent.rate_tenths, agent.stats.dropped, agent.missed), (2500, 3, 7));
        nodes.apply(vec![stats(1100, 14, 3)], true);
        assert_eq!(nodes.agent.as_ref().unwrap().rate_tenths, 2500, "same second: the last rate stays");
    }

    #[test]
    fn the_process_table_is_bounded() {
        let mut nodes = NodesState::new("/s".into(), 1);
        let events: Vec<WireEvent> =
            (0..MAX_PROCESSES as u32 + 10).map(|pid| exec(pid + 2, 1, "/bin/true", None)).collect();
        nodes.apply(events, true);
        let host = nodes.activity.get(&format!("{HOST}node-1")).unwrap();
        assert_eq!(host.processes.len(), MAX_PROCESSES);
        assert!(!host.processes.contains_key(&2), "the oldest went first");
        assert_eq!(host.recent.len(), RECENT_EVENTS);
    }

    #[test]
    fn gone_containers_are_forgotten_beyond_the_row_limit() {
        let mut nodes = NodesState::new("/s".into(), 1);
        let container = |i: usize| ContainerRef { id: format!("{i:064x}"), name: None, image: None, ..web() };
        // Each container ran one process that exited.
        for i in 0..MAX_ROWS + 5 {
            let c = container(i);
            nodes.apply(vec![exec(10, 1, "/bin/true", Some(&c)), exit(10, Some(&c))], true);
        }
        let live = container(MAX_ROWS + 100);
        nodes.apply(vec![exec(20, 1, "/bin/sleep", Some(&live))], true);
        assert!(nodes.activity.len() <= MAX_ROWS, "{} rows", nodes.activity.len());
        assert!(nodes.activity.contains_key(&live.id), "a container with a live process stays");
    }
}

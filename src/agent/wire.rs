//! The agent's event stream: versioned, serde-typed JSON lines, one event per line, the same on
//! standard output, the local unix socket and (later) through the Kubernetes API. The console
//! reads it back with the same types.

use serde::{Deserialize, Serialize};

use super::alert::Alert;
use super::attribution::ContainerRef;
use super::events::ProcessEvent;
use super::files::FileEvent;
use super::net::NetEvent;

/// Bumped when a field changes meaning or goes away; new fields do not bump it.
pub const WIRE_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireEvent {
    /// A process event, with the container it ran in (none: the host).
    Process {
        v: u32,
        node: String,
        #[serde(flatten)]
        event: ProcessEvent,
        container: Option<ContainerRef>,
    },
    /// A connect or accept, with the container it happened in.
    Network {
        v: u32,
        node: String,
        #[serde(flatten)]
        event: NetEvent,
        container: Option<ContainerRef>,
        /// The group (`namespace/Kind/name`, `local/IMAGE`) whose pod or container holds the
        /// remote address, when the agent knows it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        /// The DNS name the container last resolved to the remote address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fqdn: Option<String>,
    },
    /// An open under a watched prefix, with the container it happened in.
    File {
        v: u32,
        node: String,
        #[serde(flatten)]
        event: FileEvent,
        container: Option<ContainerRef>,
    },
    /// A container connection's first bytes one way, and the protocol they speak.
    Flow {
        v: u32,
        node: String,
        #[serde(flatten)]
        flow: super::flows::FlowSeen,
        container: Option<ContainerRef>,
        /// Flows like it (same container, service, way, protocol) folded since the last sent.
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        folded: u64,
    },
    /// A container's connections to one service, one way, in one protocol, that ended in the
    /// last state period, and the bytes they carried (sent: acknowledged by the peer).
    FlowEnded {
        v: u32,
        node: String,
        /// The first of them.
        #[serde(flatten)]
        flow: super::flows::FlowSeen,
        container: Option<ContainerRef>,
        connections: u64,
        sent: u64,
        received: u64,
    },
    /// A DNS answer a container received: the name it asked and what it resolved to.
    Dns {
        v: u32,
        node: String,
        server: std::net::IpAddr,
        #[serde(flatten)]
        answer: super::dns::DnsAnswer,
        container: Option<ContainerRef>,
    },
    /// An alert: a detection rule was broken (see `plugins-config/rules/`), or a container's
    /// policy did not allow something (recorded, alerted, denied or killed by its mode).
    /// (Version 1 sent policy violations as a different `alert` and rules as `detection`.)
    Alert {
        v: u32,
        node: String,
        #[serde(flatten)]
        alert: Box<Alert>,
        container: Option<ContainerRef>,
    },
    /// The agent's state and counters: every 2 seconds, when it stops, and first to every reader
    /// of the socket.
    Stats {
        v: u32,
        node: String,
        #[serde(flatten)]
        stats: AgentStats,
    },
    /// This reader fell behind and lost `missed` lines (the socket only). The agent does not
    /// name its node here; a reader that knows it from the stream's other lines fills it in.
    Lagged {
        v: u32,
        missed: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStats {
    /// Events sent since the agent started.
    pub events: u64,
    /// Events the kernel could not queue (ring buffer full).
    pub dropped: u64,
    /// Records that did not decode.
    pub malformed: u64,
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub uptime_s: u64,
    /// `process`, `network`, `file`.
    #[serde(default)]
    pub sensors: Vec<String>,
    /// None: no policy was given, nothing is enforced.
    #[serde(default)]
    pub enforcement: Option<Enforcement>,
}

/// What the agent enforces: its policy file and how many cgroups are in each mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforcement {
    /// The mechanism exec and file rules are enforced with (`bpf-lsm`, `fanotify`); absent
    /// from agents older than the ladder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<String>,
    pub policy: String,
    pub discover: u32,
    pub monitor: u32,
    pub protect: u32,
    /// Policed cgroups nothing enforces yet (their container's mounts could not be marked yet:
    /// no process in them, or the mark failed); counted in the modes above, tried again every
    /// 2 seconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pending: u32,
    /// Opens and execs the rung allowed without a verdict since the agent started (fanotify:
    /// the process or file could not be read, or no verdict came within the bound): it fails
    /// open, and says so.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub unjudged: u64,
    /// Why the last policy update was refused (the previous policy stays in force).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

impl WireEvent {
    pub fn process(node: &str, event: ProcessEvent, container: Option<ContainerRef>) -> Self {
        Self::Process { v: WIRE_VERSION, node: node.to_string(), event, container }
    }

    pub fn network(node: &str, event: NetEvent, container: Option<ContainerRef>) -> Self {
        Self::Network { v: WIRE_VERSION, node: node.to_string(), event, container, peer: None, fqdn: None }
    }

    pub fn file(node: &str, event: FileEvent, container: Option<ContainerRef>) -> Self {
        Self::File { v: WIRE_VERSION, node: node.to_string(), event, container }
    }

    pub fn alert(node: &str, alert: Alert, container: Option<ContainerRef>) -> Self {
        Self::Alert { v: WIRE_VERSION, node: node.to_string(), alert: Box::new(alert), container }
    }

    pub fn stats(node: &str, stats: AgentStats) -> Self {
        Self::Stats { v: WIRE_VERSION, node: node.to_string(), stats }
    }

    /// The node the agent that sent it runs on.
    pub fn node(&self) -> &str {
        match self {
            Self::Process { node, .. }
            | Self::Network { node, .. }
            | Self::Dns { node, .. }
            | Self::Flow { node, .. }
            | Self::FlowEnded { node, .. }
            | Self::File { node, .. }
            | Self::Alert { node, .. }
            | Self::Stats { node, .. } => node,
            Self::Lagged { node, .. } => node.as_deref().unwrap_or_default(),
        }
    }

    /// The container the event happened in, if any.
    pub fn container(&self) -> Option<&ContainerRef> {
        match self {
            Self::Process { container, .. }
            | Self::Network { container, .. }
            | Self::Dns { container, .. }
            | Self::Flow { container, .. }
            | Self::FlowEnded { container, .. }
            | Self::File { container, .. }
            | Self::Alert { container, .. } => container.as_ref(),
            Self::Stats { .. } | Self::Lagged { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::events::ProcessEventKind;

    #[test]
    fn lines_read_back_as_they_were_written() {
        let event = WireEvent::process(
            "node-1",
            ProcessEvent {
                kind: ProcessEventKind::Exec,
                pid: 42,
                tid: 42,
                ppid: 1,
                uid: 0,
                exit_status: 0,
                cgroup_id: 7,
                timestamp_ns: 5,
                comm: "sh".into(),
                filename: "/bin/sh".into(),
                args: vec!["sh".into(), "-c".into()],
                exe: String::new(),
            },
            None,
        );
        let line = serde_json::to_string(&event).unwrap();
        assert!(line.starts_with(r#"{"type":"process","v":2,"node":"node-1","kind":"exec""#), "{line}");
        assert_eq!(serde_json::from_str::<WireEvent>(&line).unwrap(), event);
        let stats =
            WireEvent::stats("n", AgentStats { events: 3, sensors: vec!["process".into()], ..Default::default() });
        let line = serde_json::to_string(&stats).unwrap();
        assert_eq!(serde_json::from_str::<WireEvent>(&line).unwrap(), stats);
        // An older agent's stats line (no state fields) still reads.
        let old: WireEvent =
            serde_json::from_str(r#"{"type":"stats","v":1,"node":"n","events":1,"dropped":2,"malformed":0}"#).unwrap();
        assert!(matches!(old, WireEvent::Stats { stats: AgentStats { dropped: 2, .. }, .. }));
        let lagged: WireEvent = serde_json::from_str(r#"{"type":"lagged","v":1,"missed":9}"#).unwrap();
        assert_eq!(lagged, WireEvent::Lagged { v: 1, missed: 9, node: None });
    }
}

/// What a reader of the agent's stream may ask, one JSON line each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// The CIS Kubernetes node benchmark of the agent's node (`picket bench node --agent`).
    BenchNode,
    /// What the agent has learned: every group's baseline (`picket policy learn --agent`).
    Baselines,
    /// The policy in force: its file and text (`picket policy diff --agent`).
    Policy,
    /// Put this policy in force (either format); a policy that does not check is refused and
    /// the one in force stays (`picket policy apply --agent`).
    ApplyPolicy { yaml: String },
    /// Every group's mode the agent keeps (set by hand or promoted), with its violations, and the
    /// groups the policy in force holds (`picket policy modes`).
    Modes,
    /// Sets a group's mode (`picket policy mode GROUP MODE`); `who` goes to the log.
    SetMode { group: String, mode: crate::policy::spec::Mode, who: String },
    /// Accepts violations (`exec:/bin/sh`, `write:/etc/x`, `connect:10.0.0.1:443`) into a group's
    /// policy (`picket policy accept GROUP VIOLATION…`).
    Accept { group: String, violations: Vec<String>, who: String },
    /// Cuts a running container (its name or an id prefix) off the network, keeping it running
    /// (`picket respond quarantine`, a response rule's `quarantine` action).
    Quarantine { container: String, reason: String, who: String },
    /// Gives a quarantined container its network back (`picket respond release`, undo).
    Release { container: String, who: String },
    /// The quarantined containers (`picket respond quarantine --list`).
    Quarantined,
}

impl Request {
    /// The `type` of its answer's line.
    pub fn reply_kind(&self) -> &'static str {
        match self {
            Request::BenchNode => BENCH_REPLY,
            Request::Baselines => "baselines",
            Request::Policy => "policy",
            Request::ApplyPolicy { .. } => "applied",
            Request::Modes => "modes",
            Request::SetMode { .. } | Request::Accept { .. } => "mode",
            Request::Quarantine { .. } | Request::Release { .. } | Request::Quarantined => "quarantine",
        }
    }
}

/// The answer to a request other than `bench-node`: `{"type":"baselines"|"policy"|"applied", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReply {
    #[serde(rename = "type")]
    pub kind: String,
    pub v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baselines: Option<crate::learn::Baselines>,
    /// The policy file in force (or where an applied one is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// What the applied policy put in force (`3 containers: 1 discover, 2 protect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The groups' modes the agent keeps, by group key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<std::collections::BTreeMap<String, super::promotion::Promoted>>,
    /// The groups the policy in force holds (their modes are that policy's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
    /// The containers quarantined now (the answer to a quarantine request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<Vec<super::quarantine::Quarantined>>,
}

impl AgentReply {
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.into(),
            v: WIRE_VERSION,
            baselines: None,
            policy_file: None,
            policy: None,
            summary: None,
            error: None,
            modes: None,
            held: Vec::new(),
            quarantined: None,
        }
    }

    pub fn refused(kind: &str, error: String) -> Self {
        Self { error: Some(error), ..Self::new(kind) }
    }
}

/// The answer to a request, on the asking connection only: `{"type":"bench-node", …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchReply {
    #[serde(rename = "type")]
    pub kind: String,
    pub v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<crate::bench::BenchReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub const BENCH_REPLY: &str = "bench-node";

impl BenchReply {
    pub fn of(result: Result<crate::bench::Benchmarked, crate::bench::BenchError>) -> Self {
        match result {
            Ok(done) => Self {
                kind: BENCH_REPLY.into(),
                v: WIRE_VERSION,
                report: Some(done.report),
                notes: done.notes,
                error: None,
            },
            Err(e) => Self::refused(e.to_string()),
        }
    }

    pub fn refused(error: String) -> Self {
        Self { kind: BENCH_REPLY.into(), v: WIRE_VERSION, report: None, notes: Vec::new(), error: Some(error) }
    }
}

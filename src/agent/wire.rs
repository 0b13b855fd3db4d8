//! The agent's event stream: versioned, serde-typed JSON lines, one event per line, the same on
//! standard output, the local unix socket and (later) through the Kubernetes API.

use serde::Serialize;

use super::attribution::ContainerRef;
use super::events::ProcessEvent;
use super::files::FileEvent;
use super::net::NetEvent;

/// Bumped when a field changes meaning or goes away; new fields do not bump it.
pub const WIRE_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
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
    },
    /// An open under a watched prefix, with the container it happened in.
    File {
        v: u32,
        node: String,
        #[serde(flatten)]
        event: FileEvent,
        container: Option<ContainerRef>,
    },
    /// The agent's own counters, sent periodically and when it stops.
    Stats { v: u32, node: String, events: u64, dropped: u64, malformed: u64 },
}

impl WireEvent {
    pub fn process(node: &str, event: ProcessEvent, container: Option<ContainerRef>) -> Self {
        Self::Process { v: WIRE_VERSION, node: node.to_string(), event, container }
    }

    pub fn network(node: &str, event: NetEvent, container: Option<ContainerRef>) -> Self {
        Self::Network { v: WIRE_VERSION, node: node.to_string(), event, container }
    }

    pub fn file(node: &str, event: FileEvent, container: Option<ContainerRef>) -> Self {
        Self::File { v: WIRE_VERSION, node: node.to_string(), event, container }
    }

    pub fn stats(node: &str, events: u64, dropped: u64, malformed: u64) -> Self {
        Self::Stats { v: WIRE_VERSION, node: node.to_string(), events, dropped, malformed }
    }
}

//! The container firewall as users see it: the connections the agents report, folded per
//! container, peer, port and protocol with their L7 detail and verdict (`connections`), and the
//! group → group map drawn from them. The Network pane and `picket network` both feed agent
//! events into [`connections::Connections`]; the kernel side (identification, L3/L4 and L7
//! verdicts, quarantine) lives in the agent (`agent/protocols.rs`, `agent/enforce/`).

pub mod connections;

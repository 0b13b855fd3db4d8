//! What containers' connections carried: each socket whose first bytes were identified is
//! remembered by its cookie with what it speaks; when the kernel says it closed (with the bytes
//! it sent and received), its bytes are added to its service's tally, and the tallies go out as
//! `flow_ended` lines once per state period. Bounded: past `MAX_OPEN` sockets the oldest is
//! forgotten (its bytes are then not told), past `MAX_TALLIES` a period's further ends are counted
//! as lost.

use std::collections::{HashMap, VecDeque};

use super::attribution::ContainerRef;
use super::flows::{FirstBytes, FlowEnd, FlowSeen, Way};
use super::protocols::{Direction, Protocol};

/// Sockets remembered at most (as the kernel's table of sockets it copied bytes of).
const MAX_OPEN: usize = 65_536;
/// Services tallied per period at most.
const MAX_TALLIES: usize = 16_384;

/// One service's connections that ended in a period, one way, from one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub container: ContainerRef,
    /// The first ended connection's flow (what it speaks, its ends).
    pub flow: FlowSeen,
    pub connections: u64,
    pub sent: u64,
    pub received: u64,
}

type TallyKey = (String, Way, Direction, std::net::IpAddr, u16, &'static str);

#[derive(Debug, Default)]
pub struct FlowLedger {
    open: HashMap<u64, (u64, FlowSeen)>,
    /// Cookies in the order they were first seen (some may have ended since).
    order: VecDeque<u64>,
    tallies: HashMap<TallyKey, Tally>,
    /// Ends not told: the socket was forgotten, or the period's tallies were full.
    pub lost: u64,
}

impl FlowLedger {
    /// A socket's first bytes in one direction were identified as `seen`. The first that names
    /// a protocol stays (a server's answer may say less than its client's request).
    pub fn opened(&mut self, first: &FirstBytes, seen: &FlowSeen) {
        match self.open.get_mut(&first.cookie) {
            Some((_, known)) => {
                if known.protocol == Protocol::Unknown && seen.protocol != Protocol::Unknown {
                    *known = seen.clone();
                }
            }
            None => {
                if self.open.len() >= MAX_OPEN {
                    self.forget_oldest();
                }
                self.open.insert(first.cookie, (first.cgroup_id, seen.clone()));
                self.order.push_back(first.cookie);
            }
        }
        // Ended cookies leave `order` lazily: it is compacted past twice the bound.
        if self.order.len() > 2 * MAX_OPEN {
            let open = &self.open;
            self.order.retain(|cookie| open.contains_key(cookie));
        }
    }

    fn forget_oldest(&mut self) {
        while let Some(cookie) = self.order.pop_front() {
            if self.open.remove(&cookie).is_some() {
                return;
            }
        }
    }

    /// A socket closed; `container_of` names the container of a cgroup (none: the host's, not
    /// tallied).
    pub fn ended(&mut self, end: FlowEnd, container_of: impl FnOnce(u64) -> Option<ContainerRef>) {
        let Some((cgroup_id, seen)) = self.open.remove(&end.cookie) else {
            self.lost += 1;
            return;
        };
        let Some(container) = container_of(cgroup_id) else { return };
        let (address, port) = seen.service();
        let key = (container.id.clone(), seen.way, seen.by, address, port, seen.protocol.name());
        if !self.tallies.contains_key(&key) && self.tallies.len() >= MAX_TALLIES {
            self.lost += 1;
            return;
        }
        let tally = self.tallies.entry(key).or_insert_with(|| Tally {
            container,
            flow: seen,
            connections: 0,
            sent: 0,
            received: 0,
        });
        tally.connections += 1;
        tally.sent = tally.sent.saturating_add(end.sent);
        tally.received = tally.received.saturating_add(end.received);
    }

    /// The period's tallies, to send; the next period starts empty.
    pub fn take_tallies(&mut self) -> Vec<Tally> {
        let mut tallies: Vec<Tally> = self.tallies.drain().map(|(_, t)| t).collect();
        tallies.sort_by(|a, b| (&a.container.id, a.flow.service()).cmp(&(&b.container.id, b.flow.service())));
        tallies
    }

    #[cfg(test)]
    fn open_sockets(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::attribution::Runtime;

    fn container(id: &str) -> ContainerRef {
        ContainerRef {
            runtime: Runtime::Podman,
            id: id.into(),
            pod_uid: None,
            name: Some(id.into()),
            image: None,
            pod_namespace: None,
            pod_name: None,
            pod_owner: None,
        }
    }

    fn first(cookie: u64, way: Way, bytes: &[u8]) -> FirstBytes {
        FirstBytes {
            cgroup_id: 9,
            cookie,
            way,
            local: ("10.0.0.2".parse().unwrap(), 40_000 + (cookie % 20_000) as u16),
            remote: ("10.0.0.3".parse().unwrap(), 5432),
            part: 0,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn ended_connections_add_their_bytes_to_their_services_tally() {
        let mut ledger = FlowLedger::default();
        let ssl = [0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f];
        for cookie in [1, 2] {
            let received = first(cookie, Way::Received, b"N");
            ledger.opened(&received, &received.identify());
            let sent = first(cookie, Way::Sent, &ssl);
            ledger.opened(&sent, &sent.identify());
        }
        let host = first(3, Way::Sent, &ssl);
        ledger.opened(&host, &host.identify());
        assert_eq!(ledger.open_sockets(), 3);
        ledger.ended(FlowEnd { cookie: 1, sent: 100, received: 2_000 }, |_| Some(container("db-client")));
        ledger.ended(FlowEnd { cookie: 2, sent: 50, received: 1_000 }, |_| Some(container("db-client")));
        ledger.ended(FlowEnd { cookie: 3, sent: 7, received: 7 }, |_| None);
        ledger.ended(FlowEnd { cookie: 4, sent: 7, received: 7 }, |_| Some(container("db-client")));
        assert_eq!(ledger.lost, 1, "a socket never seen");
        assert_eq!(ledger.open_sockets(), 0);
        let tallies = ledger.take_tallies();
        assert_eq!(tallies.len(), 1, "{tallies:?}");
        let tally = &tallies[0];
        assert_eq!((tally.connections, tally.sent, tally.received), (2, 150, 3_000));
        assert_eq!(tally.flow.protocol.name(), "PostgreSQL", "the request named it, not the answer");
        assert_eq!(tally.flow.service(), ("10.0.0.3".parse().unwrap(), 5432));
        assert!(ledger.take_tallies().is_empty(), "a period starts empty");
    }

    #[test]
    fn the_ledger_stays_bounded() {
        let mut ledger = FlowLedger::default();
        for cookie in 0..(MAX_OPEN as u64 + 10) {
            let sent = first(cookie, Way::Sent, b"PING\r\n");
            ledger.opened(&sent, &sent.identify());
        }
        assert_eq!(ledger.open_sockets(), MAX_OPEN);
        ledger.ended(FlowEnd { cookie: 0, sent: 1, received: 1 }, |_| Some(container("c")));
        assert_eq!(ledger.lost, 1, "the oldest was forgotten");
        ledger.ended(FlowEnd { cookie: 10, sent: 1, received: 1 }, |_| Some(container("c")));
        assert_eq!(ledger.take_tallies().len(), 1);
        assert!(ledger.order.len() <= 2 * MAX_OPEN + 1);
    }
}

//! Agent events folded into connections: one row per node, container, direction, peer, port
//! and protocol, with a count, when it was first and last seen, the last few L7 details (HTTP
//! paths, DNS names, TLS server names) and the verdict (allowed, alerted, denied, with the rule
//! or policy line that decided). A pure fold: the pane feeds it live, `picket network` feeds it
//! for a while and prints it. Bounded: past `MAX_ROWS` the least recently seen rows go.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::agent::alert::Action;
use crate::agent::attribution::ContainerRef;
use crate::agent::wire::WireEvent;

pub const MAX_ROWS: usize = 5_000;
/// L7 details kept per connection (the newest).
const DETAILS: usize = 5;
/// Names kept per container for its peers' addresses.
const NAMES: usize = 1_024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The container connected (or sent).
    Out,
    /// The container accepted.
    In,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allowed,
    /// A policy or rule objected, and it went on (monitor, discover, a detection).
    Alerted,
    Denied,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Alerted => "alerted",
            Self::Denied => "denied",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ConnectionKey {
    pub node: String,
    /// `namespace/pod/container`, the engine's name, a short id, or `host`.
    pub container: String,
    pub direction: Direction,
    /// The peer's address.
    pub address: IpAddr,
    /// The server's port (the peer's going out, the container's coming in).
    pub port: u16,
    /// `HTTP`, `TLS`, `DNS`, `TCP`, `UDP`, …
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connection {
    #[serde(flatten)]
    pub key: ConnectionKey,
    /// The group that holds the address, or the name the container resolved it from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_name: Option<String>,
    pub count: u64,
    pub first_ms: u64,
    pub last_ms: u64,
    /// Newest last: `GET /orders/7`, `api.example.com`, `sni shop.example`.
    pub details: VecDeque<String>,
    pub verdict: Verdict,
    /// What decided the last objection: the rule and the policy line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The process that made the connection, when an event said.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub process: String,
    /// Connections of this row that ended, and the bytes the container sent (acknowledged by
    /// the peer) and received on them.
    pub ended: u64,
    pub sent: u64,
    pub received: u64,
}

impl Connection {
    /// `shop/Deployment/api (10.1.0.7)`, or the address alone.
    pub fn peer(&self) -> String {
        match &self.peer_name {
            Some(name) => format!("{name} ({})", self.key.address),
            None => self.key.address.to_string(),
        }
    }

    /// The group or name of the peer, else its address (what the map draws).
    pub fn peer_short(&self) -> String {
        self.peer_name.clone().unwrap_or_else(|| self.key.address.to_string())
    }

    /// `1.2K↑ 3.0M↓` (sent, received) once a connection ended, else empty.
    pub fn bytes_text(&self) -> String {
        if self.ended == 0 {
            return String::new();
        }
        format!("{}↑ {}↓", short_bytes(self.sent), short_bytes(self.received))
    }

    /// What `/` matches a row by.
    pub fn search_text(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {}",
            self.key.node,
            self.key.container,
            self.peer(),
            self.key.port,
            self.key.protocol,
            self.verdict.as_str(),
            self.details.iter().cloned().collect::<Vec<_>>().join(" "),
            self.why.as_deref().unwrap_or_default(),
        )
    }

    /// The connection in full, as the detail view and `picket network --json` say it.
    pub fn lines(&self) -> Vec<String> {
        let arrow = match self.key.direction {
            Direction::Out => "→",
            Direction::In => "←",
        };
        let mut lines = vec![
            format!("{} {arrow} {}:{} {}", self.key.container, self.peer(), self.key.port, self.key.protocol),
            String::new(),
            format!("node        {}", self.key.node),
            format!(
                "direction   {}",
                if self.key.direction == Direction::Out {
                    "out (the container connected)"
                } else {
                    "in (the container accepted)"
                }
            ),
            format!("verdict     {}", self.verdict.as_str()),
            format!("seen        {} times", self.count),
        ];
        if !self.process.is_empty() {
            lines.push(format!("process     {}", self.process));
        }
        if let Some(why) = &self.why {
            lines.push(format!("decided by  {why}"));
        }
        if self.ended > 0 {
            lines.push(format!(
                "bytes       {} sent, {} received on {} ended connection{}",
                crate::model::human_bytes(self.sent),
                crate::model::human_bytes(self.received),
                self.ended,
                if self.ended == 1 { "" } else { "s" }
            ));
        }
        if !self.details.is_empty() {
            lines.push(String::new());
            lines.push("last requests".into());
            lines.extend(self.details.iter().rev().map(|d| format!("  {d}")));
        }
        lines
    }
}

/// One edge of the map: who talks to whom, in which protocols.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub protocols: BTreeSet<String>,
    pub count: u64,
    /// Bytes both ways on its connections that ended.
    pub bytes: u64,
    /// The worst verdict among its connections.
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default)]
pub struct Connections {
    rows: HashMap<ConnectionKey, Connection>,
    /// Per container, the names it resolved addresses from (newest wins).
    names: HashMap<String, (HashMap<IpAddr, String>, VecDeque<IpAddr>)>,
    /// Events that said nothing about a connection.
    pub ignored: u64,
}

/// `950`, `12K`, `3.4M`: a byte count in at most five characters (binary units).
fn short_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if bytes < 1_024 {
        return bytes.to_string();
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 999.5 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 9.95 { format!("{value:.1}{}", UNITS[unit]) } else { format!("{value:.0}{}", UNITS[unit]) }
}

/// The row a flow counts in: out when the container is the client, in when it accepted.
fn flow_key(node: &str, flow: &crate::agent::flows::FlowSeen, container: &str) -> ConnectionKey {
    use crate::agent::flows::Way;
    use crate::agent::protocols::Direction as By;
    let out = (flow.by == By::Client) == (flow.way == Way::Sent);
    let (direction, port) = if out { (Direction::Out, flow.remote.1) } else { (Direction::In, flow.local.1) };
    ConnectionKey {
        node: node.to_string(),
        container: container.to_string(),
        direction,
        address: flow.remote.0,
        port,
        protocol: flow.protocol.name().to_string(),
    }
}

fn detail_of(protocol: &crate::agent::protocols::Protocol) -> Option<String> {
    use crate::agent::protocols::Protocol;
    match protocol {
        Protocol::Http { method, path, host } => {
            Some(format!("{method} {path}{}", host.as_ref().map(|h| format!(" (host {h})")).unwrap_or_default()))
        }
        Protocol::Http2 { method, path, authority, .. } if !path.is_empty() => Some(format!(
            "{method} {path}{}",
            authority.as_ref().map(|a| format!(" (authority {a})")).unwrap_or_default()
        )),
        Protocol::Tls { sni: Some(sni) } => Some(format!("sni {sni}")),
        Protocol::Redis { command } => Some(command.clone()),
        Protocol::Postgresql { message } => Some(message.clone()),
        Protocol::Mysql { version } => Some(format!("server {version}")),
        Protocol::Ssh { banner } => Some(banner.clone()),
        Protocol::Mongodb { op } => Some(op.clone()),
        Protocol::Kafka { api_key, client_id } => Some(format!("api {api_key} {client_id}").trim_end().to_string()),
        Protocol::Http2 { .. } | Protocol::Tls { sni: None } | Protocol::Unknown => None,
    }
}

fn verdict_of(action: Action) -> Verdict {
    match action {
        Action::Denied | Action::Killed => Verdict::Denied,
        Action::Alerted | Action::Recorded => Verdict::Alerted,
    }
}

impl Connections {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn name_of(&self, container: &str, address: IpAddr) -> Option<String> {
        self.names.get(container).and_then(|(names, _)| names.get(&address).cloned())
    }

    fn remember_name(&mut self, container: &str, address: IpAddr, name: &str) {
        let (names, order) = self.names.entry(container.to_string()).or_default();
        if names.insert(address, name.to_string()).is_none() {
            order.push_back(address);
            if order.len() > NAMES
                && let Some(oldest) = order.pop_front()
            {
                names.remove(&oldest);
            }
        }
    }

    /// The row for `key`, made if new (evicting the least recently seen past the bound).
    fn row(&mut self, key: ConnectionKey, at_ms: u64) -> &mut Connection {
        if !self.rows.contains_key(&key) && self.rows.len() >= MAX_ROWS {
            let oldest = self.rows.iter().min_by_key(|(_, c)| c.last_ms).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.rows.remove(&oldest);
            }
        }
        self.rows.entry(key.clone()).or_insert_with(|| Connection {
            key,
            peer_name: None,
            count: 0,
            first_ms: at_ms,
            last_ms: at_ms,
            details: VecDeque::new(),
            verdict: Verdict::Allowed,
            why: None,
            process: String::new(),
            ended: 0,
            sent: 0,
            received: 0,
        })
    }

    /// Folds one agent event in (`now_ms`: when it arrived, wall clock).
    pub fn take(&mut self, event: &WireEvent, now_ms: u64) {
        match event {
            WireEvent::Flow { node, flow, container, folded, .. } => {
                let label = crate::agent::attribution::label(container.as_ref());
                let name = self.name_of(&label, flow.remote.0);
                let key = flow_key(node, flow, &label);
                // The connect seen before its first bytes named the protocol becomes this row.
                let plain = ConnectionKey { protocol: "TCP".into(), ..key.clone() };
                let earlier = match flow.protocol {
                    crate::agent::protocols::Protocol::Unknown => None,
                    _ => self.rows.remove(&plain),
                };
                let row = self.row(key, now_ms);
                if let Some(earlier) = earlier {
                    row.count += earlier.count;
                    row.first_ms = row.first_ms.min(earlier.first_ms);
                    row.verdict = row.verdict.max(earlier.verdict);
                    row.why = row.why.take().or(earlier.why);
                    row.peer_name = row.peer_name.take().or(earlier.peer_name);
                    if row.process.is_empty() {
                        row.process = earlier.process;
                    }
                    row.ended += earlier.ended;
                    row.sent += earlier.sent;
                    row.received += earlier.received;
                }
                row.count += 1 + folded;
                row.last_ms = now_ms;
                if row.peer_name.is_none() {
                    row.peer_name = name;
                }
                if let Some(detail) = detail_of(&flow.protocol) {
                    push_detail(row, detail);
                }
            }
            WireEvent::FlowEnded { node, flow, container, connections, sent, received, .. } => {
                let label = crate::agent::attribution::label(container.as_ref());
                let key = flow_key(node, flow, &label);
                let row = self.row(key, now_ms);
                row.last_ms = now_ms;
                row.ended = row.ended.saturating_add(*connections);
                row.sent = row.sent.saturating_add(*sent);
                row.received = row.received.saturating_add(*received);
            }
            WireEvent::Network { node, event, container, peer, fqdn, .. } => {
                use crate::agent::net::NetEventKind;
                let label = crate::agent::attribution::label(container.as_ref());
                let (direction, port) = match (event.kind, event.local) {
                    (NetEventKind::Accept, Some((_, local_port))) => (Direction::In, local_port),
                    (NetEventKind::Accept, None) => {
                        self.ignored += 1;
                        return;
                    }
                    _ => (Direction::Out, event.remote.1),
                };
                let protocol = match event.protocol {
                    6 => "TCP".to_string(),
                    17 => "UDP".to_string(),
                    1 => "ICMP".to_string(),
                    58 => "ICMPv6".to_string(),
                    n => format!("IP {n}"),
                };
                let name = peer.clone().or_else(|| fqdn.clone()).or_else(|| self.name_of(&label, event.remote.0));
                let mut key = ConnectionKey {
                    node: node.clone(),
                    container: label,
                    direction,
                    address: event.remote.0,
                    port,
                    protocol,
                };
                // A TCP connect to where a protocol was already identified counts there.
                if key.protocol == "TCP"
                    && let Some(known) = self.rows.keys().find(|k| {
                        k.node == key.node
                            && k.container == key.container
                            && k.direction == key.direction
                            && k.address == key.address
                            && k.port == key.port
                            && !matches!(k.protocol.as_str(), "UDP" | "DNS" | "ICMP" | "ICMPv6")
                    })
                {
                    key = known.clone();
                }
                let row = self.row(key, now_ms);
                row.count += 1;
                row.last_ms = now_ms;
                row.process = event.comm.clone();
                if name.is_some() {
                    row.peer_name = name;
                }
                if event.denied() {
                    row.verdict = Verdict::Denied;
                }
            }
            WireEvent::Dns { node, server, answer, container, .. } => {
                let label = crate::agent::attribution::label(container.as_ref());
                for address in &answer.addresses {
                    self.remember_name(&label, *address, &answer.query);
                }
                let key = ConnectionKey {
                    node: node.clone(),
                    container: label,
                    direction: Direction::Out,
                    address: *server,
                    port: 53,
                    protocol: "DNS".into(),
                };
                let row = self.row(key, now_ms);
                row.count += 1;
                row.last_ms = now_ms;
                let rcode = if answer.rcode.eq_ignore_ascii_case("noerror") {
                    String::new()
                } else {
                    format!(" {}", answer.rcode)
                };
                push_detail(row, format!("{}{rcode}", answer.query));
            }
            WireEvent::Alert { node, alert, container, .. } => self.take_alert(node, alert, container.as_ref(), now_ms),
            _ => self.ignored += 1,
        }
    }

    fn take_alert(
        &mut self,
        node: &str,
        alert: &crate::agent::alert::Alert,
        container: Option<&ContainerRef>,
        now_ms: u64,
    ) {
        let event = &alert.event;
        let (direction, address, port) = match event.kind.as_str() {
            "connect" | "send" | "http" | "dns" | "tls" => match event.remote.parse::<SocketAddr>() {
                Ok(remote) => (Direction::Out, remote.ip(), remote.port()),
                Err(_) => {
                    self.ignored += 1;
                    return;
                }
            },
            "accept" | "http-in" => match (event.remote.parse::<SocketAddr>(), event.local.parse::<SocketAddr>()) {
                (Ok(remote), Ok(local)) => (Direction::In, remote.ip(), local.port()),
                _ => {
                    self.ignored += 1;
                    return;
                }
            },
            _ => {
                self.ignored += 1;
                return;
            }
        };
        let protocol = match event.kind.as_str() {
            "http" | "http-in" => "HTTP".to_string(),
            "dns" => "DNS".to_string(),
            "tls" => "TLS".to_string(),
            // The row the connect event made (TCP or UDP): the alert says what was decided.
            _ => self
                .rows
                .keys()
                .find(|k| k.node == node && k.address == address && k.port == port && k.direction == direction)
                .map_or_else(|| "TCP".to_string(), |k| k.protocol.clone()),
        };
        let label = crate::agent::attribution::label(container);
        let name = self.name_of(&label, address);
        let key = ConnectionKey { node: node.to_string(), container: label, direction, address, port, protocol };
        let row = self.row(key, now_ms);
        row.last_ms = now_ms;
        if row.count == 0 {
            row.count = alert.count.max(1);
        }
        if row.peer_name.is_none() {
            row.peer_name = name;
        }
        if !event.comm.is_empty() {
            row.process = if event.exe.is_empty() { event.comm.clone() } else { event.exe.clone() };
        }
        let verdict = verdict_of(alert.action);
        if verdict >= row.verdict {
            row.verdict = verdict;
        }
        let policy = if alert.policy.is_empty() { String::new() } else { format!(": {}", alert.policy) };
        row.why = Some(format!("{} ({}, {}){policy}", alert.rule, alert.mode.as_str(), alert.action.as_str()));
        if matches!(event.kind.as_str(), "http" | "http-in" | "dns" | "tls") {
            let what = match (event.kind.as_str(), event.path.is_empty()) {
                ("tls", true) => "no server name".to_string(),
                ("tls", false) => format!("sni {}", event.path),
                _ => event.path.clone(),
            };
            push_detail(row, format!("{what} ({})", alert.action.as_str()));
        }
    }

    /// Every row, the most recently seen first.
    pub fn rows(&self) -> Vec<&Connection> {
        let mut rows: Vec<&Connection> = self.rows.values().collect();
        rows.sort_by(|a, b| b.last_ms.cmp(&a.last_ms).then_with(|| a.key.cmp(&b.key)));
        rows
    }

    /// The map's edges: container → peer (its group or name, else its address), outbound
    /// connections only (an inbound one is its peer's outbound), busiest first.
    pub fn edges(&self) -> Vec<Edge> {
        let mut edges: BTreeMap<(String, String), Edge> = BTreeMap::new();
        for row in self.rows.values() {
            let (from, to) = match row.key.direction {
                Direction::Out => (row.key.container.clone(), format!("{}:{}", row.peer_short(), row.key.port)),
                Direction::In => (row.peer_short(), format!("{}:{}", row.key.container, row.key.port)),
            };
            let edge = edges.entry((from.clone(), to.clone())).or_insert_with(|| Edge {
                from,
                to,
                protocols: BTreeSet::new(),
                count: 0,
                bytes: 0,
                verdict: Verdict::Allowed,
            });
            edge.protocols.insert(row.key.protocol.clone());
            edge.count += row.count;
            edge.bytes = edge.bytes.saturating_add(row.sent).saturating_add(row.received);
            edge.verdict = edge.verdict.max(row.verdict);
        }
        let mut edges: Vec<Edge> = edges.into_values().collect();
        edges.sort_by(|a, b| a.from.cmp(&b.from).then(b.count.cmp(&a.count)).then_with(|| a.to.cmp(&b.to)));
        edges
    }
}

fn push_detail(row: &mut Connection, detail: String) {
    if row.details.back() != Some(&detail) {
        row.details.push_back(detail);
        if row.details.len() > DETAILS {
            row.details.pop_front();
        }
    }
}

/// The map as text: each source in a box, an arrow per peer with its protocols and count.
pub fn map_lines(edges: &[Edge]) -> Vec<(String, Verdict)> {
    let mut lines = Vec::new();
    let mut sources: Vec<&str> = edges.iter().map(|e| e.from.as_str()).collect();
    sources.dedup();
    for source in sources {
        let width = source.chars().count() + 2;
        lines.push((format!("┌{}┐", "─".repeat(width)), Verdict::Allowed));
        lines.push((format!("│ {source} │"), Verdict::Allowed));
        lines.push((format!("└{}┘", "─".repeat(width)), Verdict::Allowed));
        let mine: Vec<&Edge> = edges.iter().filter(|e| e.from == source).collect();
        for (i, edge) in mine.iter().enumerate() {
            let branch = if i + 1 == mine.len() { "└" } else { "├" };
            let protocols = edge.protocols.iter().cloned().collect::<Vec<_>>().join(",");
            let mark = match edge.verdict {
                Verdict::Allowed => String::new(),
                verdict => format!("  ✗ {}", verdict.as_str()),
            };
            let bytes = if edge.bytes > 0 { format!(" {}B", short_bytes(edge.bytes)) } else { String::new() };
            lines.push((
                format!("  {branch}──{protocols}──▶ [{}]  ×{}{bytes}{mark}", edge.to, edge.count),
                edge.verdict,
            ));
        }
        lines.push((String::new(), Verdict::Allowed));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::flows::{FlowSeen, Way};
    use crate::agent::protocols::{Direction as By, Protocol};
    use crate::agent::wire::WIRE_VERSION;

    fn web() -> ContainerRef {
        ContainerRef {
            runtime: crate::agent::attribution::Runtime::Containerd,
            id: "a".repeat(64),
            pod_uid: None,
            name: Some("web".into()),
            image: None,
            pod_namespace: Some("shop".into()),
            pod_name: Some("web-6f7b9".into()),
            pod_owner: None,
        }
    }

    fn flow(way: Way, by: By, remote: &str, local: &str, protocol: Protocol) -> WireEvent {
        let remote: SocketAddr = remote.parse().unwrap();
        let local: SocketAddr = local.parse().unwrap();
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
            container: Some(web()),
            folded: 0,
        }
    }

    #[test]
    fn flows_names_and_alerts_fold_into_connections_and_a_map() {
        let mut c = Connections::default();
        let http = |path: &str| Protocol::Http { method: "GET".into(), path: path.into(), host: None };
        c.take(
            &WireEvent::Dns {
                v: WIRE_VERSION,
                node: "node-1".into(),
                server: "10.96.0.10".parse().unwrap(),
                answer: crate::agent::dns::DnsAnswer {
                    query: "api.shop.example".into(),
                    rcode: "NOERROR".into(),
                    addresses: vec!["10.1.0.7".parse().unwrap()],
                    cnames: vec![],
                },
                container: Some(web()),
            },
            1_000,
        );
        c.take(&flow(Way::Sent, By::Client, "10.1.0.7:8080", "10.88.0.5:40000", http("/orders/1")), 2_000);
        c.take(&flow(Way::Sent, By::Client, "10.1.0.7:8080", "10.88.0.5:40002", http("/orders/2")), 3_000);
        // An inbound connection: a client's request the container received.
        c.take(&flow(Way::Received, By::Client, "10.88.0.9:51000", "10.88.0.5:80", http("/")), 4_000);
        let rows = c.rows();
        assert_eq!(rows.len(), 3, "{rows:?}");
        let api = rows.iter().find(|r| r.key.port == 8080).unwrap();
        assert_eq!((api.count, api.key.direction, api.key.protocol.as_str()), (2, Direction::Out, "HTTP"));
        assert_eq!(api.peer(), "api.shop.example (10.1.0.7)", "named from the DNS answer");
        assert_eq!(api.details, VecDeque::from(vec!["GET /orders/1".to_string(), "GET /orders/2".to_string()]));
        let inbound = rows.iter().find(|r| r.key.direction == Direction::In).unwrap();
        assert_eq!((inbound.key.port, inbound.key.address.to_string()), (80, "10.88.0.9".to_string()));
        assert_eq!(rows[0].key.direction, Direction::In, "the most recent first");

        // A refused request: the alert marks its connection denied, with the policy line.
        let mut alert = crate::agent::alert::Alert {
            id: "n-1".into(),
            at_unix_ms: 5_000,
            rule: "policy-http".into(),
            title: "HTTP request the container's policy does not allow".into(),
            severity: crate::model::Severity::High,
            technique: String::new(),
            why: String::new(),
            mode: crate::agent::enforce::Mode::Protect,
            action: Action::Denied,
            policy: "/etc/p.yaml containers[0] http: deny DELETE /admin*".into(),
            event: crate::agent::alert::Trigger::default(),
            ancestry: vec![],
            count: 1,
        };
        alert.event.kind = "http".into();
        alert.event.remote = "10.1.0.7:8080".into();
        alert.event.path = "DELETE /admin/users".into();
        alert.event.comm = "curl".into();
        c.take(
            &WireEvent::Alert {
                v: WIRE_VERSION,
                node: "node-1".into(),
                alert: Box::new(alert),
                container: Some(web()),
            },
            5_000,
        );
        let api = c.rows().into_iter().find(|r| r.key.port == 8080).cloned().unwrap();
        assert_eq!(api.verdict, Verdict::Denied);
        assert_eq!(
            api.why.as_deref(),
            Some("policy-http (protect, denied): /etc/p.yaml containers[0] http: deny DELETE /admin*")
        );
        assert_eq!(api.details.back().map(String::as_str), Some("DELETE /admin/users (denied)"));
        assert!(api.lines().iter().any(|l| l.starts_with("decided by  policy-http")), "{:?}", api.lines());
        assert!(api.search_text().contains("denied"));

        let edges = c.edges();
        let out = edges.iter().find(|e| e.from == "shop/web-6f7b9/web" && e.to == "api.shop.example:8080").unwrap();
        assert_eq!((out.count, out.verdict), (2, Verdict::Denied), "the alert marks the row, it adds no connection");
        assert!(edges.iter().any(|e| e.from == "10.88.0.9" && e.to == "shop/web-6f7b9/web:80"), "{edges:?}");
        let map = map_lines(&edges);
        assert!(
            map.iter()
                .any(|(l, v)| l.contains("──HTTP──▶ [api.shop.example:8080]  ×2  ✗ denied") && *v == Verdict::Denied),
            "{map:?}"
        );
        assert!(map.iter().any(|(l, _)| l == "│ shop/web-6f7b9/web │"));
    }

    #[test]
    fn ended_connections_give_their_row_its_bytes_and_http2_its_path() {
        let mut c = Connections::default();
        let h2 = Protocol::Http2 {
            method: "POST".into(),
            path: "/shop.Cart/Add".into(),
            authority: Some("cart:50051".into()),
            grpc: true,
        };
        let Some(WireEvent::Flow { flow: seen, .. }) =
            Some(flow(Way::Sent, By::Client, "10.1.0.8:50051", "10.88.0.5:40000", h2.clone()))
        else {
            unreachable!()
        };
        c.take(&flow(Way::Sent, By::Client, "10.1.0.8:50051", "10.88.0.5:40000", h2), 1_000);
        let ended = |connections, sent, received| WireEvent::FlowEnded {
            v: WIRE_VERSION,
            node: "node-1".into(),
            flow: seen.clone(),
            container: Some(web()),
            connections,
            sent,
            received,
        };
        let row = c.rows()[0].clone();
        assert_eq!((row.key.protocol.as_str(), row.bytes_text()), ("GRPC", String::new()), "none ended yet");
        assert_eq!(row.details.back().map(String::as_str), Some("POST /shop.Cart/Add (authority cart:50051)"));
        c.take(&ended(2, 900, 3_500_000), 2_000);
        c.take(&ended(1, 100, 20_000), 3_000);
        let rows = c.rows();
        assert_eq!(rows.len(), 1, "the same row: {rows:?}");
        let row = rows[0];
        assert_eq!((row.count, row.ended, row.sent, row.received), (1, 3, 1_000, 3_520_000));
        assert_eq!(row.bytes_text(), "1000↑ 3.4M↓");
        assert!(
            row.lines().iter().any(|l| l == "bytes       1000 B sent, 3.4 MiB received on 3 ended connections"),
            "{:?}",
            row.lines()
        );
        let map = map_lines(&c.edges());
        assert!(map.iter().any(|(l, _)| l.ends_with("×1 3.4MB")), "{map:?}");
        assert_eq!(short_bytes(999), "999");
        assert_eq!(short_bytes(1_000), "1000", "under 1 KiB, whole");
        assert_eq!(short_bytes(1_536), "1.5K");
        assert_eq!(short_bytes(1_000_000), "977K");
        assert_eq!(short_bytes(1_023_999), "1.0M");
        assert_eq!(short_bytes(1_048_576), "1.0M");
    }

    #[test]
    fn a_connect_and_the_protocol_its_first_bytes_named_are_one_row() {
        let mut c = Connections::default();
        let connect = WireEvent::Network {
            v: WIRE_VERSION,
            node: "node-1".into(),
            event: crate::agent::net::NetEvent {
                kind: crate::agent::net::NetEventKind::Connect,
                pid: 7,
                uid: 0,
                protocol: 6,
                local: None,
                remote: ("10.1.0.7".parse().unwrap(), 8080),
                cgroup_id: 1,
                timestamp_ns: 1,
                comm: "curl".into(),
                policy: None,
                guard: None,
            },
            container: Some(web()),
            peer: Some("shop/Deployment/api".into()),
            fqdn: None,
        };
        let get = Protocol::Http { method: "GET".into(), path: "/".into(), host: None };
        c.take(&connect, 1);
        c.take(&flow(Way::Sent, By::Client, "10.1.0.7:8080", "10.88.0.5:40000", get), 2);
        c.take(&connect, 3);
        let rows = c.rows();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!((rows[0].key.protocol.as_str(), rows[0].count, rows[0].process.as_str()), ("HTTP", 3, "curl"));
        assert_eq!(rows[0].peer(), "shop/Deployment/api (10.1.0.7)");
    }

    #[test]
    fn the_rows_are_bounded() {
        let mut c = Connections::default();
        for i in 0..(MAX_ROWS + 10) {
            let remote = format!("10.{}.{}.{}:443", (i >> 16) & 255, (i >> 8) & 255, i & 255);
            c.take(&flow(Way::Sent, By::Client, &remote, "10.88.0.5:40000", Protocol::Tls { sni: None }), i as u64);
        }
        assert_eq!(c.len(), MAX_ROWS);
        assert!(c.rows().iter().all(|r| r.last_ms >= 10), "the oldest went first");
    }
}

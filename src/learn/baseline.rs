//! Per-group baselines: what was observed, folded and bounded so that days of learning on a busy
//! node stay small.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::paths::PathSet;

/// Programs kept per group at most; past it, new ones are counted, not learned.
pub const MAX_PROCESSES: usize = 1024;
/// Parents (and run-as users, and paths as executed) kept per program at most.
const MAX_PER_PROCESS: usize = 16;
/// Outbound flows kept per group at most.
pub const MAX_FLOWS: usize = 1024;
/// Paths kept per set before they are folded harder.
const MAX_PATHS: usize = 4096;
/// Files mapped executable kept per group at most.
pub const MAX_MAPPED: usize = 8192;
/// Peers of one subnet, port and protocol past which they fold into the subnet (/24, /64).
const PEERS_BEFORE_SUBNET: usize = 4;

/// The workload a container belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupRef {
    /// `namespace/Kind/name` or `local/IMAGE`.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The pods' owner: `Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, `Job`, or `Pod`
    /// for a pod nothing owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_name: Option<String>,
    /// The image, for a local group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl GroupRef {
    /// Engine containers of one image on a host.
    pub fn local(image: &str) -> Self {
        Self {
            key: format!("local/{image}"),
            namespace: None,
            owner_kind: None,
            owner_name: None,
            image: Some(image.into()),
        }
    }

    /// The pods of one workload.
    pub fn workload(namespace: &str, kind: &str, name: &str) -> Self {
        Self {
            key: format!("{namespace}/{kind}/{name}"),
            namespace: Some(namespace.into()),
            owner_kind: Some(kind.into()),
            owner_name: Some(name.into()),
            image: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// From an IP protocol number (6, 17); other protocols are not learned.
    pub fn from_ip(protocol: u32) -> Option<Self> {
        match protocol {
            6 => Some(Self::Tcp),
            17 => Some(Self::Udp),
            _ => None,
        }
    }
}

/// One thing a container of a group did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub group: GroupRef,
    /// Wall clock, Unix milliseconds.
    pub at_ms: u64,
    pub what: Observed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observed {
    /// A program ran: `exe` resolved, `path` as it was executed (a script, a symlink), the
    /// parent's program and the user.
    Exec {
        exe: String,
        path: String,
        parent: String,
        uid: u32,
        /// Run by one of the container's probes (a kubelet exec probe, an engine healthcheck)
        /// or by a program one started.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        probe: bool,
    },
    Open {
        path: String,
        write: bool,
    },
    Connect {
        address: IpAddr,
        port: u16,
        protocol: Proto,
        /// The group holding the address (a pod's workload, a local container's image), when
        /// the agent knew it: learned as that group, whatever its address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        /// The DNS name the container resolved the address from, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// A connection was accepted on this local port.
    Accept {
        port: u16,
        protocol: Proto,
    },
    /// A detection rule fired on this: it is never learned, and what was learned of it goes.
    Suspicious {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exe: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote: Option<(IpAddr, u16)>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSeen {
    /// Programs that started it (`""`: started from outside the container, by the runtime).
    pub parents: BTreeSet<String>,
    pub users: BTreeSet<u32>,
    /// Paths it was executed by when not its own (a script run through its `#!` line, a
    /// symlink such as `/bin/sh` → `/bin/busybox`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub paths: BTreeSet<String>,
    pub count: u64,
    /// Of `count`, the runs by a probe: a program only probes run is shown as a probe.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub probe_runs: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ProcessSeen {
    /// Whether only the container's probes ran it.
    pub fn is_probe(&self) -> bool {
        self.count > 0 && self.probe_runs == self.count
    }
}

/// An outbound flow: a peer, a port and a protocol. The peer is a group (`namespace/Kind/name`,
/// `local/IMAGE`) when the agent knew whose address it was, else an address or a subnet as CIDR.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Flow {
    pub peer: String,
    pub port: u16,
    pub protocol: Proto,
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

/// `group shop/StatefulSet/postgres port 5432 tcp`, `10.0.0.0/24 port 80 tcp`.
impl std::fmt::Display for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group().is_some() {
            f.write_str("group ")?;
        }
        write!(f, "{} port {} {}", self.peer, self.port, self.protocol)
    }
}

impl Flow {
    /// The peer group, when the peer is one (not a CIDR).
    pub fn group(&self) -> Option<&str> {
        self.peer.parse::<ipnet::IpNet>().is_err().then_some(self.peer.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Listen {
    pub port: u16,
    pub protocol: Proto,
}

/// What one group was seen doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub group: GroupRef,
    pub first_ms: u64,
    pub last_ms: u64,
    /// When something new was last learned (a quiet period counts from here).
    pub last_change_ms: u64,
    pub observations: u64,
    pub processes: BTreeMap<String, ProcessSeen>,
    /// Files opened for writing.
    pub writes: PathSet,
    /// Files read under the watched (sensitive) prefixes.
    pub reads: PathSet,
    pub egress: BTreeSet<Flow>,
    pub listening: BTreeSet<Listen>,
    /// What detection rules flagged: `exec:/tmp/xmrig`, `open:/etc/shadow`, `connect:1.2.3.4:3333`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub suspicious: BTreeSet<String>,
    /// Observations not learned because a bound was reached.
    #[serde(default)]
    pub overflow: u64,
    /// The DNS names the peers of `egress` (by their CIDR) were resolved from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peer_names: BTreeMap<String, BTreeSet<String>>,
    /// The system calls its containers made (names, as seccomp profiles write them).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub syscalls: BTreeSet<String>,
    /// The files its processes executed or mapped executable (programs, shared objects), as
    /// the agent read them from `/proc/PID/maps`: what risk counts as a package in use. Not
    /// behaviour a policy holds, so learning one is no change for promotion's quiet period.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub mapped: BTreeSet<String>,
}

impl Baseline {
    pub fn new(group: GroupRef, at_ms: u64) -> Self {
        Self {
            group,
            first_ms: at_ms,
            last_ms: at_ms,
            last_change_ms: at_ms,
            observations: 0,
            processes: BTreeMap::new(),
            writes: PathSet::new(),
            reads: PathSet::new(),
            egress: BTreeSet::new(),
            listening: BTreeSet::new(),
            suspicious: BTreeSet::new(),
            overflow: 0,
            peer_names: BTreeMap::new(),
            syscalls: BTreeSet::new(),
            mapped: BTreeSet::new(),
        }
    }

    /// Adds files its processes map executable; returns whether one was new. Bounded: past
    /// [`MAX_MAPPED`] files, new ones are counted in `overflow`.
    pub fn note_mapped(&mut self, files: &[String]) -> bool {
        let mut changed = false;
        for file in files {
            if self.mapped.contains(file) {
                continue;
            }
            if self.mapped.len() >= MAX_MAPPED {
                self.overflow += 1;
                continue;
            }
            changed |= self.mapped.insert(file.clone());
        }
        changed
    }

    /// Learns one observation; returns whether the baseline has something new.
    pub fn observe(&mut self, at_ms: u64, what: &Observed) -> bool {
        self.observations += 1;
        self.last_ms = self.last_ms.max(at_ms);
        let changed = match what {
            Observed::Exec { exe, path, parent, uid, probe } => self.learn_exec(exe, path, parent, *uid, *probe),
            Observed::Open { path, write: true } => self.learn_path(path, true),
            Observed::Open { path, write: false } => self.learn_path(path, false),
            Observed::Connect { address, port, protocol, peer, name } => match peer {
                Some(group) => self.learn_group_flow(group, *address, *port, *protocol),
                None => {
                    let learned = self.learn_flow(*address, *port, *protocol);
                    let named = name.as_deref().is_some_and(|n| self.learn_name(*address, *port, *protocol, n));
                    learned || named
                }
            },
            Observed::Accept { port, protocol } => self.listening.insert(Listen { port: *port, protocol: *protocol }),
            Observed::Suspicious { exe, path, remote } => self.forget_suspicious(exe, path, remote),
        };
        if changed {
            self.last_change_ms = self.last_change_ms.max(at_ms);
        }
        changed
    }

    fn learn_exec(&mut self, exe: &str, path: &str, parent: &str, uid: u32, probe: bool) -> bool {
        let exe = if exe.is_empty() { path } else { exe };
        if !exe.starts_with('/') || self.suspicious.contains(&format!("exec:{exe}")) {
            return false;
        }
        if !self.processes.contains_key(exe) && self.processes.len() >= MAX_PROCESSES {
            self.overflow += 1;
            return false;
        }
        let seen = self.processes.entry(exe.to_string()).or_default();
        let new = seen.count == 0;
        let was_probe = seen.is_probe();
        seen.count += 1;
        seen.probe_runs += u64::from(probe);
        let mut changed = new || was_probe != seen.is_probe();
        if seen.parents.len() < MAX_PER_PROCESS {
            changed |= seen.parents.insert(parent.to_string());
        }
        if seen.users.len() < MAX_PER_PROCESS {
            changed |= seen.users.insert(uid);
        }
        if path != exe && path.starts_with('/') && seen.paths.len() < MAX_PER_PROCESS {
            changed |= seen.paths.insert(path.to_string());
        }
        changed
    }

    fn learn_path(&mut self, path: &str, write: bool) -> bool {
        if self.suspicious.contains(&format!("open:{path}")) {
            return false;
        }
        let set = if write { &mut self.writes } else { &mut self.reads };
        let changed = set.insert(path);
        if set.len() > MAX_PATHS {
            set.fold_to(MAX_PATHS / 4);
        }
        changed
    }

    /// A flow to a peer group's pod or container: one flow per group, port and protocol, so a
    /// peer's pods coming and going at new addresses are the same peer.
    fn learn_group_flow(&mut self, group: &str, address: IpAddr, port: u16, protocol: Proto) -> bool {
        if self.suspicious.contains(&format!("connect:{}", remote(address, port))) {
            return false;
        }
        // The address learned before its group was known (a peer's first moments, before the
        // engine or the API server named it) is that group.
        let unnamed = self.egress.remove(&Flow { peer: host_cidr(canonical(address)), port, protocol });
        let flow = Flow { peer: group.to_string(), port, protocol };
        if self.egress.contains(&flow) {
            return unnamed;
        }
        if self.egress.len() >= MAX_FLOWS {
            self.overflow += 1;
            return false;
        }
        self.egress.insert(flow)
    }

    /// The name a learned address peer was resolved from, kept with the flow that holds it.
    fn learn_name(&mut self, address: IpAddr, port: u16, protocol: Proto, name: &str) -> bool {
        let address = canonical(address);
        let Some(flow) = self.egress.iter().find(|f| {
            f.port == port
                && f.protocol == protocol
                && f.peer.parse::<ipnet::IpNet>().is_ok_and(|n| n.contains(&address))
        }) else {
            return false;
        };
        let names = self.peer_names.entry(flow.peer.clone()).or_default();
        names.len() < MAX_PER_PROCESS && names.insert(name.to_string())
    }

    /// The DNS names a flow's peer was resolved from.
    pub fn names_of(&self, flow: &Flow) -> Option<&BTreeSet<String>> {
        self.peer_names.get(&flow.peer).filter(|n| !n.is_empty())
    }

    fn learn_flow(&mut self, address: IpAddr, port: u16, protocol: Proto) -> bool {
        if address.is_unspecified() || self.suspicious.contains(&format!("connect:{}", remote(address, port))) {
            return false;
        }
        let address = canonical(address);
        let subnet = subnet_of(address);
        if self.egress.contains(&Flow { peer: subnet.clone(), port, protocol }) {
            return false;
        }
        let host = Flow { peer: host_cidr(address), port, protocol };
        if self.egress.contains(&host) {
            return false;
        }
        if self.egress.len() >= MAX_FLOWS {
            self.overflow += 1;
            return false;
        }
        self.egress.insert(host);
        let siblings: Vec<Flow> = self
            .egress
            .iter()
            .filter(|f| f.port == port && f.protocol == protocol && peer_in(&f.peer, &subnet))
            .cloned()
            .collect();
        if siblings.len() > PEERS_BEFORE_SUBNET {
            for flow in siblings {
                self.egress.remove(&flow);
                // Its names go with the subnet it folds into.
                if let Some(names) = self.peer_names.remove(&flow.peer) {
                    self.peer_names.entry(subnet.clone()).or_default().extend(names);
                }
            }
            self.egress.insert(Flow { peer: subnet, port, protocol });
        }
        true
    }

    fn forget_suspicious(&mut self, exe: &Option<String>, path: &Option<String>, peer: &Option<(IpAddr, u16)>) -> bool {
        let mut changed = false;
        if let Some(exe) = exe {
            changed |= self.processes.remove(exe).is_some();
            self.suspicious.insert(format!("exec:{exe}"));
        }
        if let Some(path) = path {
            // A file folded into a directory stays learned through it: folding is the trade.
            self.suspicious.insert(format!("open:{path}"));
        }
        if let Some((address, port)) = peer {
            let address = canonical(*address);
            let before = self.egress.len();
            self.egress.retain(|f| !(f.port == *port && f.peer == host_cidr(address)));
            changed |= self.egress.len() != before;
            self.suspicious.insert(format!("connect:{}", remote(address, *port)));
        }
        changed
    }

    /// Everything `other` learned of the same group, added to this one (the group's pods on
    /// other nodes).
    pub fn merge(&mut self, other: &Baseline) {
        self.first_ms = self.first_ms.min(other.first_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        self.last_change_ms = self.last_change_ms.max(other.last_change_ms);
        self.observations += other.observations;
        self.overflow += other.overflow;
        self.suspicious.extend(other.suspicious.iter().cloned());
        for (exe, seen) in &other.processes {
            if self.suspicious.contains(&format!("exec:{exe}")) {
                continue;
            }
            let mine = self.processes.entry(exe.clone()).or_default();
            mine.count += seen.count;
            mine.parents.extend(seen.parents.iter().cloned());
            mine.users.extend(seen.users.iter().copied());
            mine.paths.extend(seen.paths.iter().cloned());
        }
        for path in other.writes.iter() {
            self.writes.insert(path);
        }
        for path in other.reads.iter() {
            self.reads.insert(path);
        }
        self.egress.extend(other.egress.iter().cloned());
        self.listening.extend(other.listening.iter().copied());
        self.syscalls.extend(other.syscalls.iter().cloned());
        let room = MAX_MAPPED.saturating_sub(self.mapped.len());
        let new: Vec<String> = other.mapped.difference(&self.mapped).take(room).cloned().collect();
        self.mapped.extend(new);
    }
}

fn remote(address: IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(address, port).to_string()
}

/// A v4-mapped v6 address as the v4 address it is.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn host_cidr(address: IpAddr) -> String {
    match address {
        IpAddr::V4(_) => format!("{address}/32"),
        IpAddr::V6(_) => format!("{address}/128"),
    }
}

fn subnet_of(address: IpAddr) -> String {
    let prefix = if address.is_ipv4() { 24 } else { 64 };
    ipnet::IpNet::new(address, prefix).map(|n| n.trunc().to_string()).unwrap_or_else(|_| host_cidr(address))
}

/// Whether the CIDR `peer` lies within the CIDR `subnet`.
fn peer_in(peer: &str, subnet: &str) -> bool {
    match (peer.parse::<ipnet::IpNet>(), subnet.parse::<ipnet::IpNet>()) {
        (Ok(peer), Ok(subnet)) => subnet.contains(&peer),
        _ => false,
    }
}

/// Every group's baseline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baselines {
    pub groups: BTreeMap<String, Baseline>,
}

impl Baselines {
    /// Learns one observation; returns whether its group's baseline has something new.
    pub fn observe(&mut self, observation: &Observation) -> bool {
        let baseline = self
            .groups
            .entry(observation.group.key.clone())
            .or_insert_with(|| Baseline::new(observation.group.clone(), observation.at_ms));
        let new_group = baseline.observations == 0;
        baseline.observe(observation.at_ms, &observation.what) || new_group
    }

    pub fn get(&self, key: &str) -> Option<&Baseline> {
        self.groups.get(key)
    }

    /// Adds another agent's baselines (the same groups on other nodes) to these.
    pub fn merge(&mut self, other: &Baselines) {
        for (key, baseline) in &other.groups {
            match self.groups.get_mut(key) {
                Some(mine) => mine.merge(baseline),
                None => {
                    self.groups.insert(key.clone(), baseline.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(exe: &str, parent: &str) -> Observed {
        Observed::Exec { exe: exe.into(), path: exe.into(), parent: parent.into(), uid: 0, probe: false }
    }

    #[test]
    fn programs_are_learned_with_their_parents_and_users() {
        let mut b = Baseline::new(GroupRef::local("web:1"), 1);
        assert!(b.observe(2, &exec("/usr/sbin/httpd", "")));
        assert!(!b.observe(3, &exec("/usr/sbin/httpd", "")), "nothing new");
        assert!(b.observe(4, &exec("/usr/sbin/httpd", "/bin/sh")), "a new parent");
        assert!(b.observe(
            5,
            &Observed::Exec {
                exe: "/bin/busybox".into(),
                path: "/bin/sh".into(),
                parent: "".into(),
                uid: 33,
                probe: false
            }
        ));
        let httpd = &b.processes["/usr/sbin/httpd"];
        assert_eq!(httpd.parents.iter().collect::<Vec<_>>(), ["", "/bin/sh"]);
        assert_eq!(httpd.count, 3);
        assert_eq!(b.processes["/bin/busybox"].paths.iter().collect::<Vec<_>>(), ["/bin/sh"]);
        assert_eq!(b.last_change_ms, 5);
        assert_eq!(b.observations, 4);
    }

    #[test]
    fn a_program_only_probes_ran_is_a_probe() {
        let mut b = Baseline::new(GroupRef::local("web:1"), 1);
        let probe = Observed::Exec {
            exe: "/usr/bin/curl".into(),
            path: "/usr/bin/curl".into(),
            parent: "".into(),
            uid: 0,
            probe: true,
        };
        assert!(b.observe(2, &probe));
        assert!(b.processes["/usr/bin/curl"].is_probe());
        assert!(!b.observe(3, &probe), "the same probe again teaches nothing");
        assert!(b.observe(4, &exec("/usr/bin/curl", "")), "the workload running it too is news");
        let curl = &b.processes["/usr/bin/curl"];
        assert!(!curl.is_probe());
        assert_eq!((curl.count, curl.probe_runs), (3, 2));
    }

    #[test]
    fn a_peer_group_is_one_peer_whatever_its_addresses() {
        let mut b = Baseline::new(GroupRef::local("client"), 0);
        let to_db = |i: u8| Observed::Connect {
            address: format!("10.244.{i}.7").parse().unwrap(),
            port: 5432,
            protocol: Proto::Tcp,
            peer: Some("shop/StatefulSet/postgres".into()),
            name: None,
        };
        assert!(b.observe(1, &to_db(1)));
        for i in 2..=9 {
            assert!(!b.observe(1, &to_db(i)), "the same group at another address teaches nothing");
        }
        let flows: Vec<(&str, Option<&str>)> = b.egress.iter().map(|f| (f.peer.as_str(), f.group())).collect();
        assert_eq!(flows, [("shop/StatefulSet/postgres", Some("shop/StatefulSet/postgres"))]);
        b.observe(
            1,
            &Observed::Connect {
                address: "10.0.0.1".parse().unwrap(),
                port: 80,
                protocol: Proto::Tcp,
                peer: None,
                name: None,
            },
        );
        assert_eq!(b.egress.iter().filter(|f| f.group().is_none()).count(), 1, "an address with no group is a CIDR");
        let named = Observed::Connect {
            address: "10.0.0.1".parse().unwrap(),
            port: 80,
            protocol: Proto::Tcp,
            peer: Some("local/web:1".into()),
            name: None,
        };
        assert!(b.observe(2, &named), "the same address once its group is known");
        let peers: Vec<&str> = b.egress.iter().map(|f| f.peer.as_str()).collect();
        assert_eq!(peers, ["local/web:1", "shop/StatefulSet/postgres"], "the address learned before is the group");
    }

    #[test]
    fn peers_of_one_subnet_fold_and_v4_mapped_addresses_are_v4() {
        let mut b = Baseline::new(GroupRef::local("client"), 0);
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        b.observe(1, &Observed::Connect { address: mapped, port: 80, protocol: Proto::Tcp, peer: None, name: None });
        assert_eq!(b.egress.iter().next().unwrap().peer, "10.0.0.1/32");
        for i in 2..=5 {
            b.observe(
                1,
                &Observed::Connect {
                    address: format!("10.0.0.{i}").parse().unwrap(),
                    port: 80,
                    protocol: Proto::Tcp,
                    peer: None,
                    name: None,
                },
            );
        }
        assert_eq!(b.egress.iter().map(|f| f.peer.as_str()).collect::<Vec<_>>(), ["10.0.0.0/24"]);
        assert!(!b.observe(
            1,
            &Observed::Connect {
                address: "10.0.0.77".parse().unwrap(),
                port: 80,
                protocol: Proto::Tcp,
                peer: None,
                name: None
            }
        ));
        assert!(b.observe(
            1,
            &Observed::Connect {
                address: "10.0.0.77".parse().unwrap(),
                port: 443,
                protocol: Proto::Tcp,
                peer: None,
                name: None
            }
        ));
    }

    #[test]
    fn what_a_detection_flags_is_taken_back_and_never_learned_again() {
        let mut b = Baseline::new(GroupRef::local("web"), 0);
        b.observe(1, &exec("/tmp/xmrig", "/bin/sh"));
        b.observe(
            1,
            &Observed::Connect {
                address: "192.0.2.9".parse().unwrap(),
                port: 3333,
                protocol: Proto::Tcp,
                peer: None,
                name: None,
            },
        );
        b.observe(
            2,
            &Observed::Suspicious {
                exe: Some("/tmp/xmrig".into()),
                path: None,
                remote: Some(("192.0.2.9".parse().unwrap(), 3333)),
            },
        );
        assert!(b.processes.is_empty());
        assert!(b.egress.is_empty());
        assert!(!b.observe(3, &exec("/tmp/xmrig", "/bin/sh")));
        assert!(b.processes.is_empty());
    }

    #[test]
    fn baselines_of_one_group_on_two_nodes_merge() {
        let group = GroupRef::workload("shop", "Deployment", "web");
        let mut a = Baselines::default();
        let mut b = Baselines::default();
        a.observe(&Observation { group: group.clone(), at_ms: 1, what: exec("/app/web", "") });
        b.observe(&Observation { group: group.clone(), at_ms: 9, what: exec("/bin/date", "/app/web") });
        b.observe(&Observation {
            group: group.clone(),
            at_ms: 9,
            what: Observed::Accept { port: 8080, protocol: Proto::Tcp },
        });
        a.merge(&b);
        let merged = a.get("shop/Deployment/web").unwrap();
        assert_eq!(merged.processes.keys().collect::<Vec<_>>(), ["/app/web", "/bin/date"]);
        assert_eq!(merged.listening.len(), 1);
        assert_eq!((merged.first_ms, merged.last_ms), (1, 9));
    }
}

//! Network sensing: loads src/agent/bpf/net.bpf.c, attaches its connect and sendmsg hooks to
//! the unified cgroup root (every container's cgroup is below it) and its accept(2) exit hook,
//! and reads their ring buffer. The hooks allow everything until the network rung
//! (enforce/network.rs) writes rules into their maps; each event says what they decided.
//! Dropping it detaches everything (and so allows everything).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::Ebpf;
use aya::programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSockAddr};
use serde::{Deserialize, Serialize};

use super::ring::{AttachError, EventRing, RingError, attach_tracepoints, per_cpu_sum};

/// The cgroup_skb programs: egress holds raw and ICMP sockets' packets to the same rules and
/// drops a quarantined container's; ingress drops what comes to a quarantined container.
const PACKET_HOOKS: [(&str, CgroupSkbAttachType); 2] =
    [("raw_egress", CgroupSkbAttachType::Egress), ("quarantine_ingress", CgroupSkbAttachType::Ingress)];

/// `policy_rule` of a quarantined container's attempt (net.h's NET_QUARANTINE).
const NET_QUARANTINE: u32 = 0xffff_fffe;

static NET_PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/net.bpf.o"));

/// Bytes of `struct net_event`: five u32, two u16, two u64, two 16-byte addresses, comm, then
/// the verdict's four u32.
const NET_EVENT_LEN: usize = 5 * 4 + 2 * 2 + 2 * 8 + 16 + 16 + 16 + 4 * 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetEventKind {
    Connect,
    Accept,
    /// A datagram sent to an address, or a packet of a raw or ICMP socket (reported only when a
    /// policy or the guard objected).
    Send,
}

/// What the container's network policy made of a connect or send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVerdict {
    pub action: super::enforce::AlertAction,
    /// The index of the rule that matched in the policy's kernel rules; None: the allowlist
    /// left the destination out (or the container is quarantined).
    #[serde(default)]
    pub rule: Option<u32>,
    /// Refused because the container is quarantined, whatever its policy says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quarantined: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetEvent {
    pub kind: NetEventKind,
    pub pid: u32,
    pub uid: u32,
    /// 6 TCP, 17 UDP; for a packet of a raw or ICMP socket, its IP protocol (1 ICMP, 58
    /// ICMPv6, ...).
    pub protocol: u32,
    pub local: Option<(IpAddr, u16)>,
    pub remote: (IpAddr, u16),
    pub cgroup_id: u64,
    pub timestamp_ns: u64,
    pub comm: String,
    /// Set when the container's network policy objected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyVerdict>,
    /// Set when protect mode refused it: the index of the guard's kernel rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<u32>,
}

impl NetEvent {
    /// The kernel refused it (EPERM in the caller).
    pub fn denied(&self) -> bool {
        self.guard.is_some() || self.policy.is_some_and(|p| p.action == super::enforce::AlertAction::Denied)
    }
}

/// An address as the kernel programs write one: family 2 (4 bytes) or 10 (16 bytes).
pub(crate) fn address(family: u32, bytes: &[u8]) -> Option<IpAddr> {
    match family {
        2 => {
            let octets: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        10 => {
            let octets: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

/// Decodes one record; None for a short record or an unknown kind or family.
pub fn decode_net_event(bytes: &[u8]) -> Option<NetEvent> {
    if bytes.len() < NET_EVENT_LEN {
        return None;
    }
    let mut r = super::events::Reader::new(bytes);
    let kind = match r.u32() {
        1 => NetEventKind::Connect,
        2 => NetEventKind::Accept,
        3 => NetEventKind::Send,
        _ => return None,
    };
    let (pid, uid, family, protocol) = (r.u32(), r.u32(), r.u32(), r.u32());
    let (local_port, remote_port) = (r.u16(), r.u16());
    let (cgroup_id, timestamp_ns) = (r.u64(), r.u64());
    let (local_addr, remote_addr) = (r.take(16), r.take(16));
    let local = match kind {
        NetEventKind::Accept => Some((address(family, local_addr)?, local_port)),
        NetEventKind::Connect | NetEventKind::Send => None,
    };
    let remote = (address(family, remote_addr)?, remote_port);
    let comm = r.c_string(16);
    let (policy, policy_rule, guard) = (r.u32(), r.u32(), r.u32());
    let action = match policy {
        0 => None,
        1 => Some(super::enforce::AlertAction::Recorded),
        2 => Some(super::enforce::AlertAction::Alerted),
        3 => Some(super::enforce::AlertAction::Denied),
        _ => return None,
    };
    let quarantined = policy_rule == NET_QUARANTINE;
    let rule = (policy_rule != u32::MAX && !quarantined).then_some(policy_rule);
    let policy = action.map(|action| PolicyVerdict { action, rule, quarantined });
    let guard = guard.checked_sub(1);
    Some(NetEvent { kind, pid, uid, protocol, local, remote, cgroup_id, timestamp_ns, comm, policy, guard })
}

#[derive(Debug, thiserror::Error)]
pub enum NetSensorError {
    #[error("loading the network programs: {0}")]
    Load(#[source] aya::EbpfError),
    #[error("program {program}: {source}")]
    Attach {
        program: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("the kernel object has no {0}")]
    Missing(&'static str),
    #[error(transparent)]
    Ring(#[from] RingError),
    #[error(transparent)]
    Tracepoint(#[from] AttachError),
    #[error("{path}: {source}")]
    Cgroup {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub struct NetSensor {
    ebpf: Ebpf,
    ring: EventRing,
    /// Records that did not decode.
    pub malformed: u64,
}

impl NetSensor {
    /// Loads and attaches; must run inside a tokio runtime.
    pub fn start() -> Result<Self, NetSensorError> {
        let mut ebpf = Ebpf::load(NET_PROGRAM).map_err(NetSensorError::Load)?;
        let root = super::attribution::unified_root();
        let cgroup = std::fs::File::open(&root)
            .map_err(|source| NetSensorError::Cgroup { path: root.display().to_string(), source })?;
        for program in ["connect4", "connect6", "sendmsg4", "sendmsg6"] {
            let attach = |source| NetSensorError::Attach { program, source };
            let hook: &mut CgroupSockAddr =
                ebpf.program_mut(program).ok_or(NetSensorError::Missing(program))?.try_into().map_err(attach)?;
            hook.load().map_err(attach)?;
            // aya attaches through a BPF link, which coexists with other programs on the
            // cgroup by itself (a link takes no ALLOW_MULTI flag).
            hook.attach(&cgroup, CgroupAttachMode::Single).map_err(attach)?;
        }
        for (program, direction) in PACKET_HOOKS {
            let attach = |source| NetSensorError::Attach { program, source };
            let hook: &mut CgroupSkb =
                ebpf.program_mut(program).ok_or(NetSensorError::Missing(program))?.try_into().map_err(attach)?;
            hook.load().map_err(attach)?;
            hook.attach(&cgroup, direction, CgroupAttachMode::Single).map_err(attach)?;
        }
        attach_tracepoints(&mut ebpf, &[("accepted", "sys_exit")])?;
        let ring = EventRing::take(&mut ebpf, "net_events", None)?;
        Ok(Self { ebpf, ring, malformed: 0 })
    }

    /// Whether the connect and send hooks load and attach here (for `picket agent probe`): they
    /// are attached and detached at once, allowing everything meanwhile.
    pub fn probe() -> Result<(), String> {
        let mut ebpf = Ebpf::load(NET_PROGRAM).map_err(|e| format!("loading the network programs: {e}"))?;
        let root = super::attribution::unified_root();
        let cgroup = std::fs::File::open(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        for program in ["connect4", "connect6", "sendmsg4", "sendmsg6"] {
            let hook: &mut CgroupSockAddr = ebpf
                .program_mut(program)
                .ok_or_else(|| format!("no program {program}"))?
                .try_into()
                .map_err(|e| format!("{program}: {e}"))?;
            hook.load().map_err(|e| format!("{program}: {e}"))?;
            hook.attach(&cgroup, CgroupAttachMode::Single)
                .map_err(|e| format!("{program}: {e} (needs cgroup v2 and CONFIG_CGROUP_BPF)"))?;
        }
        for (program, direction) in PACKET_HOOKS {
            let hook: &mut CgroupSkb = ebpf
                .program_mut(program)
                .ok_or_else(|| format!("no program {program}"))?
                .try_into()
                .map_err(|e| format!("{program}: {e}"))?;
            hook.load().map_err(|e| format!("{program}: {e}"))?;
            hook.attach(&cgroup, direction, CgroupAttachMode::Single)
                .map_err(|e| format!("{program}: {e} (needs CONFIG_CGROUP_BPF)"))?;
        }
        Ok(())
    }

    /// Waits for events and returns what the ring buffer holds.
    pub async fn next_batch(&mut self) -> Result<Vec<NetEvent>, NetSensorError> {
        Ok(self.ring.next_batch(decode_net_event, &mut self.malformed).await?)
    }

    /// The events queued now, without waiting (when stopping).
    pub fn remaining(&mut self) -> Vec<NetEvent> {
        self.ring.remaining(decode_net_event, &mut self.malformed)
    }

    pub fn dropped(&self) -> Result<u64, NetSensorError> {
        Ok(per_cpu_sum(&self.ebpf, "net_drops")?)
    }

    /// The maps of its hooks, for the network rung.
    pub fn programs_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_decode_with_their_addresses() {
        let mut b = vec![0u8; NET_EVENT_LEN];
        b[0..4].copy_from_slice(&2u32.to_le_bytes());
        b[4..8].copy_from_slice(&77u32.to_le_bytes());
        b[12..16].copy_from_slice(&2u32.to_le_bytes());
        b[16..20].copy_from_slice(&6u32.to_le_bytes());
        b[20..22].copy_from_slice(&8080u16.to_le_bytes());
        b[22..24].copy_from_slice(&50000u16.to_le_bytes());
        b[40..44].copy_from_slice(&[127, 0, 0, 1]);
        b[56..60].copy_from_slice(&[10, 0, 0, 7]);
        b[72..76].copy_from_slice(b"curl");
        let e = decode_net_event(&b).unwrap();
        assert_eq!(e.kind, NetEventKind::Accept);
        assert_eq!(e.local, Some(("127.0.0.1".parse().unwrap(), 8080)));
        assert_eq!(e.remote, ("10.0.0.7".parse().unwrap(), 50000));
        assert_eq!(e.comm, "curl");
        assert_eq!((e.policy, e.guard, e.denied()), (None, None, false));
        b[88..92].copy_from_slice(&3u32.to_le_bytes());
        b[92..96].copy_from_slice(&u32::MAX.to_le_bytes());
        b[96..100].copy_from_slice(&2u32.to_le_bytes());
        let e = decode_net_event(&b).unwrap();
        let denied = crate::agent::enforce::AlertAction::Denied;
        assert_eq!(e.policy, Some(PolicyVerdict { action: denied, rule: None, quarantined: false }));
        assert_eq!((e.guard, e.denied()), (Some(1), true));
        b[92..96].copy_from_slice(&NET_QUARANTINE.to_le_bytes());
        let e = decode_net_event(&b).unwrap();
        assert_eq!(e.policy, Some(PolicyVerdict { action: denied, rule: None, quarantined: true }));
        assert_eq!(decode_net_event(&b[..40]), None);
        b[12..16].copy_from_slice(&99u32.to_le_bytes());
        assert_eq!(decode_net_event(&b), None, "unknown family");
    }
}

//! The network rung: cgroup `connect4/6` and `sendmsg4/6` hooks (src/agent/bpf/net.bpf.c) that
//! refuse, with EPERM in the caller, what a container's policy does not allow (its `connect:`
//! allow and deny rules) and what protect mode's deniable connect rules catch (the guard). The
//! hooks are the network sensor's own, so each connect event carries its verdict; this module
//! writes their maps. A policy update writes a whole generation, then flips it with one write,
//! as the LSM rung does.

use std::collections::HashMap;
use std::net::IpAddr;

use aya::Ebpf;
use aya::maps::{Array, HashMap as BpfHashMap, MapData};
use serde::{Deserialize, Serialize};

use super::{ContainerPolicy, EnforceError, Mode};

/// Kernel rules of one container's policy (allow and deny together).
pub const MAX_NET_RULES: usize = 64;
/// Kernel rules of the guard, over every deniable connect rule.
pub const MAX_GUARD_RULES: usize = 32;
/// Bytes of `struct net_rule`: net[4], mask[4], family, protocol, two u16 ports, deny.
const NET_RULE_LEN: usize = 16 + 16 + 4 + 4 + 2 + 2 + 4;
pub(super) const NET_POLICY_LEN: usize = 16 + MAX_NET_RULES * NET_RULE_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    fn number(self) -> u32 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
        }
    }
}

/// Where a connect or an addressed send goes: an address range, a port range and a protocol,
/// each absent meaning any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    #[serde(default)]
    pub net: Option<ipnet::IpNet>,
    /// Inclusive; (0, 65535) is any port.
    pub ports: (u16, u16),
    #[serde(default)]
    pub protocol: Option<Protocol>,
}

impl Destination {
    pub const ANY_PORT: (u16, u16) = (0, u16::MAX);

    /// Whether it covers a destination (the same test the kernel makes).
    pub fn covers(&self, address: IpAddr, port: u16, protocol: u32) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.protocol.is_none_or(|p| p.number() == protocol)
            && (self.ports.0..=self.ports.1).contains(&port)
            && self.net.is_none_or(|net| net.contains(&address))
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.net {
            Some(net) => write!(f, "{net}")?,
            None => f.write_str("any address")?,
        }
        f.write_str(&ports_text(self.ports))?;
        if let Some(protocol) = self.protocol {
            write!(f, " {}", if protocol == Protocol::Tcp { "tcp" } else { "udp" })?;
        }
        Ok(())
    }
}

/// ` port 443`, ` ports 8000-8080`, or nothing for any port: how rules name their ports.
pub fn ports_text(ports: (u16, u16)) -> String {
    match ports {
        Destination::ANY_PORT => String::new(),
        (lo, hi) if lo == hi => format!(" port {lo}"),
        (lo, hi) => format!(" ports {lo}-{hi}"),
    }
}

/// A container's connect rules: destinations it may reach (None: any) and those it may not
/// (a deny wins over an allow).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRules {
    #[serde(default)]
    pub allow: Option<Vec<Destination>>,
    #[serde(default)]
    pub deny: Vec<Destination>,
}

impl ConnectRules {
    /// The rules in the kernel's order: index i of an event's `policy_rule` is `kernel_rules()[i]`.
    pub fn kernel_rules(&self) -> Vec<(Destination, bool)> {
        let deny = self.deny.iter().map(|d| (*d, true));
        deny.chain(self.allow.iter().flatten().map(|d| (*d, false))).collect()
    }

    pub fn check(&self) -> Result<(), String> {
        let count = self.kernel_rules().len();
        if count > MAX_NET_RULES {
            return Err(format!("connect: {count} rules (port ranges count one each), at most {MAX_NET_RULES}"));
        }
        for (destination, _) in self.kernel_rules() {
            if destination.ports.0 > destination.ports.1 {
                return Err(format!("connect: ports {}-{} run backwards", destination.ports.0, destination.ports.1));
            }
        }
        Ok(())
    }
}

fn encode_rule(out: &mut [u8], destination: &Destination, deny: bool) {
    let mut words = [0u32; 8];
    let family = match destination.net {
        Some(ipnet::IpNet::V4(net)) => {
            words[0] = u32::from_ne_bytes(net.network().octets());
            words[4] = u32::from_ne_bytes(net.netmask().octets());
            2u32
        }
        Some(ipnet::IpNet::V6(net)) => {
            let (network, mask) = (net.network().octets(), net.netmask().octets());
            for i in 0..4 {
                let word = |b: &[u8; 16]| u32::from_ne_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
                words[i] = word(&network);
                words[4 + i] = word(&mask);
            }
            10
        }
        None => 0,
    };
    // The kernel compares words as loaded from network-order memory; native-endian bytes of
    // the octets give the same word.
    for (i, word) in words.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_ne_bytes());
    }
    out[32..36].copy_from_slice(&family.to_le_bytes());
    out[36..40].copy_from_slice(&destination.protocol.map_or(0, Protocol::number).to_le_bytes());
    out[40..42].copy_from_slice(&destination.ports.0.to_le_bytes());
    out[42..44].copy_from_slice(&destination.ports.1.to_le_bytes());
    out[44..48].copy_from_slice(&u32::from(deny).to_le_bytes());
}

pub(super) fn policy_value(mode: Mode, rules: &ConnectRules) -> [u8; NET_POLICY_LEN] {
    let mut value = [0u8; NET_POLICY_LEN];
    let kernel = rules.kernel_rules();
    value[..4].copy_from_slice(&mode.code().to_le_bytes());
    value[4..8].copy_from_slice(&u32::from(rules.allow.is_some()).to_le_bytes());
    let count = kernel.len().min(MAX_NET_RULES);
    value[8..12].copy_from_slice(&u32::try_from(count).unwrap_or(0).to_le_bytes());
    for (i, (destination, deny)) in kernel.iter().take(MAX_NET_RULES).enumerate() {
        let at = 16 + i * NET_RULE_LEN;
        encode_rule(&mut value[at..at + NET_RULE_LEN], destination, *deny);
    }
    value
}

/// A deniable connect rule compiled for the kernel: every kernel rule is one destination of one
/// detection rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRule {
    /// The detection rule's id.
    pub rule: String,
    pub destination: Destination,
}

/// The network rung's state: what the network sensor's maps hold.
#[derive(Default)]
pub struct NetworkControl {
    generation: u32,
    /// Cgroups of the active generation, to delete after the next switch.
    written: Vec<u64>,
    guard: Vec<GuardRule>,
    guarded: HashMap<u64, u32>,
    /// The connect rules in force per cgroup, to name the rule of an alert.
    in_force: HashMap<u64, Vec<(Destination, bool)>>,
    /// Cgroups of quarantined containers, as the `quarantined` map holds them.
    quarantined: std::collections::HashSet<u64>,
    /// HTTP and DNS rules (their own kernel object, loaded when a policy first has some).
    pub l7: super::l7::L7Control,
    /// Inbound refusal (a program per judged network namespace).
    pub inbound: super::inbound::InboundControl,
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> EnforceError {
    move |source| EnforceError::Map { name, source }
}

impl NetworkControl {
    /// Replaces every container's connect rules at once (policies without any are left out).
    /// Invalid input is refused before anything is written.
    pub fn apply(&mut self, ebpf: &mut Ebpf, policies: &[ContainerPolicy]) -> Result<(), EnforceError> {
        let with_rules: Vec<(&ContainerPolicy, &ConnectRules)> =
            policies.iter().filter_map(|p| p.connect.as_ref().map(|c| (p, c))).collect();
        for (index, (policy, rules)) in with_rules.iter().enumerate() {
            rules.check().map_err(|message| EnforceError::Unsupported {
                index,
                cgroup_id: policy.cgroup_id,
                message,
            })?;
        }
        let next = self.generation.wrapping_add(1);
        let cgroups: Vec<u64> = with_rules.iter().map(|(p, _)| p.cgroup_id).collect();
        {
            let mut table: BpfHashMap<&mut MapData, [u8; 16], [u8; NET_POLICY_LEN]> =
                BpfHashMap::try_from(ebpf.map_mut("net_policies").ok_or(EnforceError::Missing("net_policies"))?)
                    .map_err(map_err("net_policies"))?;
            for (policy, rules) in &with_rules {
                if let Err(source) =
                    table.insert(super::policy_key(next, policy.cgroup_id), policy_value(policy.mode, rules), 0)
                {
                    for cgroup in &cgroups {
                        let _ = table.remove(&super::policy_key(next, *cgroup));
                    }
                    return Err(EnforceError::Map { name: "net_policies", source });
                }
            }
        }
        // The L7 rules are written before the switch: a policy they refuse is refused whole.
        if let Err(e) = self.l7.apply(policies) {
            let mut table: BpfHashMap<&mut MapData, [u8; 16], [u8; NET_POLICY_LEN]> =
                BpfHashMap::try_from(ebpf.map_mut("net_policies").ok_or(EnforceError::Missing("net_policies"))?)
                    .map_err(map_err("net_policies"))?;
            for cgroup in &cgroups {
                let _ = table.remove(&super::policy_key(next, *cgroup));
            }
            return Err(e);
        }
        let mut active: Array<&mut MapData, u32> =
            Array::try_from(ebpf.map_mut("net_active").ok_or(EnforceError::Missing("net_active"))?)
                .map_err(map_err("net_active"))?;
        active.set(0, next, 0).map_err(map_err("net_active"))?;
        let previous = std::mem::replace(&mut self.generation, next);
        let old = std::mem::replace(&mut self.written, cgroups);
        self.in_force = with_rules.iter().map(|(p, r)| (p.cgroup_id, r.kernel_rules())).collect();
        let mut table: BpfHashMap<&mut MapData, [u8; 16], [u8; NET_POLICY_LEN]> =
            BpfHashMap::try_from(ebpf.map_mut("net_policies").ok_or(EnforceError::Missing("net_policies"))?)
                .map_err(map_err("net_policies"))?;
        for cgroup in old {
            let _ = table.remove(&super::policy_key(previous, cgroup));
        }
        Ok(())
    }

    /// The rule of a cgroup's policy an event names, as text (`deny 10.0.0.0/8 port 22`), or
    /// what the allowlist left out.
    pub fn describe(&self, cgroup_id: u64, rule: Option<u32>) -> String {
        let found = rule.and_then(|i| self.in_force.get(&cgroup_id)?.get(i as usize).copied());
        match found {
            Some((destination, true)) => format!("deny {destination}"),
            Some((destination, false)) => format!("allow {destination}"),
            None => "not in the allowed destinations".into(),
        }
    }

    /// Writes the guard's kernel rules (once, at start). Rules past the kernel's room are left
    /// out and returned, so the caller can say so.
    pub fn set_guard(&mut self, ebpf: &mut Ebpf, rules: Vec<GuardRule>) -> Result<Vec<GuardRule>, EnforceError> {
        let mut rules = rules;
        let left_out = if rules.len() > MAX_GUARD_RULES { rules.split_off(MAX_GUARD_RULES) } else { Vec::new() };
        let mut table: Array<&mut MapData, [u8; NET_RULE_LEN]> =
            Array::try_from(ebpf.map_mut("guard_rules").ok_or(EnforceError::Missing("guard_rules"))?)
                .map_err(map_err("guard_rules"))?;
        for (i, rule) in rules.iter().enumerate() {
            let mut value = [0u8; NET_RULE_LEN];
            encode_rule(&mut value, &rule.destination, true);
            table.set(u32::try_from(i).unwrap_or(u32::MAX), value, 0).map_err(map_err("guard_rules"))?;
        }
        self.guard = rules;
        Ok(left_out)
    }

    /// Cuts the network of exactly these cgroups (a quarantined container's): the kernel refuses
    /// their connects and sends and drops their packets both ways.
    pub fn set_quarantined(
        &mut self,
        ebpf: &mut Ebpf,
        cgroups: std::collections::HashSet<u64>,
    ) -> Result<(), EnforceError> {
        if cgroups == self.quarantined {
            return Ok(());
        }
        let mut table: BpfHashMap<&mut MapData, u64, u32> =
            BpfHashMap::try_from(ebpf.map_mut("quarantined").ok_or(EnforceError::Missing("quarantined"))?)
                .map_err(map_err("quarantined"))?;
        for cgroup in cgroups.difference(&self.quarantined) {
            table.insert(cgroup, 1, 0).map_err(map_err("quarantined"))?;
        }
        for cgroup in self.quarantined.difference(&cgroups) {
            let _ = table.remove(cgroup);
        }
        self.quarantined = cgroups;
        Ok(())
    }

    pub fn guard_rules(&self) -> &[GuardRule] {
        &self.guard
    }

    /// Sets which guard rules apply to which cgroups (bit i: kernel rule i); cgroups left out
    /// are no longer guarded.
    pub fn guard_cgroups(&mut self, ebpf: &mut Ebpf, masks: HashMap<u64, u32>) -> Result<(), EnforceError> {
        if masks == self.guarded {
            return Ok(());
        }
        let mut table: BpfHashMap<&mut MapData, u64, u32> =
            BpfHashMap::try_from(ebpf.map_mut("guard_cgroups").ok_or(EnforceError::Missing("guard_cgroups"))?)
                .map_err(map_err("guard_cgroups"))?;
        for cgroup in self.guarded.keys() {
            if !masks.contains_key(cgroup) {
                let _ = table.remove(cgroup);
            }
        }
        for (cgroup, mask) in &masks {
            if self.guarded.get(cgroup) != Some(mask) {
                table.insert(cgroup, mask, 0).map_err(map_err("guard_cgroups"))?;
            }
        }
        self.guarded = masks;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(net: &str, ports: (u16, u16)) -> Destination {
        Destination { net: Some(net.parse().unwrap()), ports, protocol: Some(Protocol::Tcp) }
    }

    #[test]
    fn rules_encode_in_the_c_layout() {
        let mut out = [0u8; NET_RULE_LEN];
        encode_rule(&mut out, &destination("10.1.0.0/16", (443, 443)), true);
        assert_eq!(&out[0..4], &[10, 1, 0, 0], "network, in network order");
        assert_eq!(&out[16..20], &[255, 255, 0, 0], "mask");
        assert_eq!(u32::from_le_bytes(out[32..36].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(out[36..40].try_into().unwrap()), 6);
        assert_eq!(u16::from_le_bytes(out[40..42].try_into().unwrap()), 443);
        assert_eq!(u32::from_le_bytes(out[44..48].try_into().unwrap()), 1);
        let rules = ConnectRules { allow: Some(vec![destination("::1/128", Destination::ANY_PORT)]), deny: vec![] };
        let value = policy_value(Mode::Protect, &rules);
        assert_eq!(u32::from_le_bytes(value[0..4].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(value[4..8].try_into().unwrap()), 1, "an allowlist");
        assert_eq!(u32::from_le_bytes(value[8..12].try_into().unwrap()), 1);
        assert_eq!(value[16 + 15], 1, "::1 ends in 1");
        assert_eq!(u32::from_le_bytes(value[16 + 32..16 + 36].try_into().unwrap()), 10);
    }

    #[test]
    fn destinations_cover_what_the_kernel_would() {
        let d = destination("10.0.0.0/8", (3333, 3333));
        assert!(d.covers("10.2.3.4".parse().unwrap(), 3333, 6));
        assert!(d.covers("::ffff:10.2.3.4".parse().unwrap(), 3333, 6), "v4-mapped");
        assert!(!d.covers("10.2.3.4".parse().unwrap(), 3334, 6));
        assert!(!d.covers("10.2.3.4".parse().unwrap(), 3333, 17));
        assert!(!d.covers("11.0.0.1".parse().unwrap(), 3333, 6));
        assert_eq!(d.to_string(), "10.0.0.0/8 port 3333 tcp");
        let many = ConnectRules { allow: None, deny: vec![d; MAX_NET_RULES + 1] };
        assert!(many.check().unwrap_err().contains("at most 64"));
    }
}

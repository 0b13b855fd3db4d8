//! The inbound rung: a container's accept rules refused in the kernel in protect mode
//! (src/agent/bpf/inbound.bpf.c). One copy of the `sk_lookup` program is loaded per container
//! network namespace and attached there: it runs as the kernel looks for the listener of each
//! new inbound TCP connection or UDP datagram, and refuses what the rules do not list (TCP: the
//! client gets a reset, "connection refused"). One copy per namespace, because this kernel
//! refuses `bpf_get_netns_cookie` in `sk_lookup` programs, so a shared map could not tell the
//! namespaces apart. A container in the host's namespace is never given one (it would judge the
//! host's own listeners). Containers sharing a namespace (a pod) are judged by the union of their
//! rules (a refusal is told as the first one's).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use aya::Ebpf;
use aya::maps::{Array, MapData};
use aya::programs::SkLookup;

use super::network::{ConnectRules, Destination, NET_POLICY_LEN, policy_value};
use super::{EnforceError, Mode};
use crate::agent::ring::EventRing;

static INBOUND_PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/inbound.bpf.o"));
const EVENT_LEN: usize = 4 + 4 + 2 + 2 + 4 + 16 + 16;

/// A container whose inbound connections are to be judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// A process of the container (its network namespace is the one judged).
    pub pid: u32,
    pub cgroup_id: u64,
    pub mode: Mode,
    /// Where connections may come from, to which of its ports.
    pub sources: Vec<Destination>,
}

/// An inbound connection or datagram refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub cgroup_id: u64,
    pub protocol: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

pub fn decode(bytes: &[u8]) -> Option<(u32, u32, SocketAddr, SocketAddr)> {
    if bytes.len() < EVENT_LEN {
        return None;
    }
    let mut r = crate::agent::events::Reader::new(bytes);
    let (family, protocol) = (r.u32(), r.u32());
    let (local_port, remote_port) = (r.u16(), r.u16());
    let _pad = r.u32();
    let local: IpAddr = crate::agent::net::address(family, r.take(16))?;
    let remote: IpAddr = crate::agent::net::address(family, r.take(16))?;
    Some((family, protocol, SocketAddr::new(local, local_port), SocketAddr::new(remote, remote_port)))
}

struct Instance {
    _ebpf: Ebpf,
    value: [u8; NET_POLICY_LEN],
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

pub struct InboundControl {
    instances: HashMap<(u64, u64), Instance>,
    /// The last failure said.
    said: Option<String>,
    tx: tokio::sync::mpsc::UnboundedSender<Vec<Refused>>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Vec<Refused>>,
}

impl Default for InboundControl {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Self { instances: HashMap::new(), said: None, tx, rx }
    }
}

fn namespace_key(pid: u32) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(format!("/proc/{pid}/ns/net"))?;
    Ok((meta.dev(), meta.ino()))
}

fn program_err(hook: &'static str) -> impl Fn(aya::programs::ProgramError) -> EnforceError {
    move |source| EnforceError::Attach { hook, source }
}

impl InboundControl {
    /// Judges exactly the namespaces of `wanted` (protect mode with accept rules); the others'
    /// programs are detached. Must run inside a tokio runtime.
    pub fn apply(&mut self, wanted: &[Wanted]) -> Result<(), EnforceError> {
        let host = namespace_key(1).ok();
        let next = by_namespace(wanted, |pid| namespace_key(pid).ok().filter(|key| Some(*key) != host));
        self.instances.retain(|key, _| next.contains_key(key));
        for (key, w) in next {
            let rules = ConnectRules { allow: Some(w.sources.clone()), deny: Vec::new() };
            rules.check().map_err(|message| EnforceError::Unsupported { index: 0, cgroup_id: w.cgroup_id, message })?;
            let value = policy_value(Mode::Protect, &rules);
            if let Some(instance) = self.instances.get_mut(&key) {
                if instance.value != value {
                    write_policy(&mut instance._ebpf, value)?;
                    instance.value = value;
                }
                continue;
            }
            let instance = self.load(&w, value)?;
            self.instances.insert(key, instance);
        }
        Ok(())
    }

    fn load(&self, wanted: &Wanted, value: [u8; NET_POLICY_LEN]) -> Result<Instance, EnforceError> {
        let mut ebpf = Ebpf::load(INBOUND_PROGRAM).map_err(EnforceError::Load)?;
        write_policy(&mut ebpf, value)?;
        let netns =
            std::fs::File::open(format!("/proc/{}/ns/net", wanted.pid)).map_err(|e| EnforceError::Unsupported {
                index: 0,
                cgroup_id: wanted.cgroup_id,
                message: format!("its network namespace: {e}"),
            })?;
        let program: &mut SkLookup = ebpf
            .program_mut("inbound")
            .ok_or(EnforceError::Missing("inbound"))?
            .try_into()
            .map_err(program_err("inbound"))?;
        program.load().map_err(program_err("inbound"))?;
        program.attach(&netns).map_err(program_err("inbound"))?;
        let mut ring = EventRing::take(&mut ebpf, "inbound_events", None)?;
        let (tx, cgroup_id) = (self.tx.clone(), wanted.cgroup_id);
        let reader = tokio::spawn(async move {
            let mut malformed = 0;
            while let Ok(batch) = ring.next_batch(decode, &mut malformed).await {
                let refused = batch
                    .into_iter()
                    .map(|(_, protocol, local, remote)| Refused { cgroup_id, protocol, local, remote })
                    .collect();
                if tx.send(refused).is_err() {
                    break;
                }
            }
        });
        Ok(Instance { _ebpf: ebpf, value, reader })
    }

    /// Waits for refusals.
    pub async fn next_batch(&mut self) -> Vec<Refused> {
        self.rx.recv().await.unwrap_or_default()
    }

    /// Whether `failure` differs from the last one said (then it is the one said).
    pub fn first_time(&mut self, failure: &str) -> bool {
        if self.said.as_deref() == Some(failure) {
            return false;
        }
        self.said = Some(failure.to_string());
        true
    }
}

/// The protect-mode containers per network namespace (`key_of`: a process's namespace, None for
/// one not to judge), those sharing one merged: the first's process and cgroup, every one's
/// sources.
fn by_namespace(wanted: &[Wanted], key_of: impl Fn(u32) -> Option<(u64, u64)>) -> HashMap<(u64, u64), Wanted> {
    let mut next: HashMap<(u64, u64), Wanted> = HashMap::new();
    for w in wanted.iter().filter(|w| w.mode == Mode::Protect) {
        let Some(key) = key_of(w.pid) else { continue };
        match next.get_mut(&key) {
            Some(merged) => {
                for source in &w.sources {
                    if !merged.sources.contains(source) {
                        merged.sources.push(*source);
                    }
                }
            }
            None => {
                next.insert(key, w.clone());
            }
        }
    }
    next
}

fn write_policy(ebpf: &mut Ebpf, value: [u8; NET_POLICY_LEN]) -> Result<(), EnforceError> {
    let map = |source| EnforceError::Map { name: "inbound_policy", source };
    let mut table: Array<&mut MapData, [u8; NET_POLICY_LEN]> =
        Array::try_from(ebpf.map_mut("inbound_policy").ok_or(EnforceError::Missing("inbound_policy"))?).map_err(map)?;
    table.set(0, value, 0).map_err(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_sharing_a_namespace_are_judged_by_the_union_of_their_rules() {
        let port = |p: u16| Destination { net: None, ports: (p, p), protocol: None };
        let wanted = |pid: u32, mode: Mode, ports: &[u16]| Wanted {
            pid,
            cgroup_id: u64::from(pid) * 10,
            mode,
            sources: ports.iter().map(|p| port(*p)).collect(),
        };
        let list = [
            wanted(1, Mode::Protect, &[8080]),
            wanted(2, Mode::Protect, &[9090, 8080]),
            wanted(3, Mode::Monitor, &[7070]),
            wanted(4, Mode::Protect, &[6060]),
            wanted(5, Mode::Protect, &[5050]),
        ];
        // 1 and 2 share a namespace (a pod); 4 is in the host's (not judged); 3 is in monitor.
        let key_of = |pid: u32| match pid {
            1 | 2 => Some((1, 100)),
            4 => None,
            pid => Some((1, u64::from(pid))),
        };
        let next = by_namespace(&list, key_of);
        assert_eq!(next.len(), 2, "{next:?}");
        let pod = &next[&(1, 100)];
        assert_eq!((pod.pid, pod.cgroup_id), (1, 10), "told as the first one's");
        assert_eq!(pod.sources, vec![port(8080), port(9090)], "the union, once each");
        assert_eq!(next[&(1, 5)].sources, vec![port(5050)]);
    }

    #[test]
    fn refusals_decode_with_both_ends() {
        let mut record = vec![0u8; EVENT_LEN];
        record[0..4].copy_from_slice(&2u32.to_le_bytes());
        record[4..8].copy_from_slice(&6u32.to_le_bytes());
        record[8..10].copy_from_slice(&9090u16.to_le_bytes());
        record[10..12].copy_from_slice(&51000u16.to_le_bytes());
        record[16..20].copy_from_slice(&[127, 0, 0, 1]);
        record[32..36].copy_from_slice(&[10, 0, 0, 9]);
        let (family, protocol, local, remote) = decode(&record).expect("decodes");
        assert_eq!((family, protocol), (2, 6));
        assert_eq!(local, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(remote, "10.0.0.9:51000".parse().unwrap());
        assert_eq!(decode(&record[..EVENT_LEN - 1]), None);
        record[0..4].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(decode(&record), None, "no such family");
    }
}

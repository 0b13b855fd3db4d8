//! The first bytes of each container TCP connection, per direction, and the bytes it carried
//! when it ends: loads src/agent/bpf/flows.bpf.c (cgroup_skb egress and ingress programs on the
//! unified cgroup root that copy a socket's first sent and first received payload once, the
//! next two after an HTTP/2 preface, and a sockops program that reports a socket's byte counts
//! when it closes) and reads its ring buffer; [`super::protocols`] says what they speak.

use std::net::IpAddr;

use aya::Ebpf;
use aya::programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, SockOps};
use serde::{Deserialize, Serialize};

use super::net::address;
use super::protocols::{Direction, Protocol};
use super::ring::{EventRing, RingError, per_cpu_sum};

static FLOWS_PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/flows.bpf.o"));
/// As flows.bpf.c's FLOW_MAX.
pub const FLOW_MAX: usize = 512;
/// Bytes of `struct flow_event`: cgroup id, cookie, family, part, direction, length, two ports,
/// two addresses, data.
const FLOW_EVENT_LEN: usize = 8 + 8 + 2 + 2 + 4 + 4 + 2 + 2 + 16 + 16 + FLOW_MAX;
/// Bytes of `struct flow_end`: cookie, bytes sent, bytes received.
const FLOW_END_LEN: usize = 8 + 8 + 8;
/// As flows.bpf.c's H2_FOLLOW_UPS: payloads copied after an HTTP/2 preface.
const H2_FOLLOW_UPS: u16 = 2;
/// How long an HTTP/2 preface waits for the payload with its first request's headers.
const H2_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// Prefaces waiting at most (the oldest then goes as it is).
const H2_WAITING: usize = 4_096;

/// Which way the bytes went, seen from the container's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Way {
    Sent,
    Received,
}

/// One socket's first payload in one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstBytes {
    pub cgroup_id: u64,
    /// The socket's cookie: the same for both directions of one socket.
    pub cookie: u64,
    pub way: Way,
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    /// 0 for the first payload; 1, 2 for the payloads after an HTTP/2 preface.
    pub part: u16,
    pub bytes: Vec<u8>,
}

/// A socket whose first bytes were sent closed: what it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowEnd {
    pub cookie: u64,
    /// Bytes the peer acknowledged.
    pub sent: u64,
    pub received: u64,
}

/// One record of the flows ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowRecord {
    First(FirstBytes),
    End(FlowEnd),
}

/// What a flow's first bytes said, as the agent sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSeen {
    pub way: Way,
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    /// Which end sent the bytes that told: the connecting one (client) or the accepting one.
    pub by: Direction,
    #[serde(flatten)]
    pub protocol: Protocol,
}

impl FirstBytes {
    /// The protocol its bytes speak, as a client's or else a server's.
    pub fn identify(&self) -> FlowSeen {
        let (by, protocol) = [Direction::Client, Direction::Server]
            .into_iter()
            .map(|by| (by, super::protocols::identify(&self.bytes, by)))
            .find(|(_, p)| *p != Protocol::Unknown)
            .unwrap_or((Direction::Client, Protocol::Unknown));
        FlowSeen { way: self.way, local: self.local, remote: self.remote, by, protocol }
    }
}

impl FlowSeen {
    /// The service's end: the one the client connected to.
    pub fn service(&self) -> (IpAddr, u16) {
        match (self.by, self.way) {
            (Direction::Client, Way::Sent) | (Direction::Server, Way::Received) => self.remote,
            (Direction::Client, Way::Received) | (Direction::Server, Way::Sent) => self.local,
        }
    }
}

/// How long one container's flows to one service, one way and one protocol, are told once.
pub const FOLD_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);
/// Folds kept at most (then the table starts again).
const MAX_FOLDS: usize = 65_536;

/// Keeps a busy service's connections from flooding the stream: a container's flows to one
/// service, one way, from one end (client or server), in one protocol, are sent once per
/// [`FOLD_WINDOW`], with how many were folded since.
#[derive(Debug, Default)]
pub struct FlowFolds {
    /// By container, way, the end that told, service address and port, protocol: when one was last sent, and how
    /// many were folded since.
    last: std::collections::HashMap<FoldKey, (std::time::Instant, u64)>,
}

type FoldKey = (String, Way, Direction, IpAddr, u16, &'static str);

impl FlowFolds {
    /// Whether to send `seen` now, and the flows folded into it since the last one sent.
    pub fn admit(&mut self, container_id: &str, seen: &FlowSeen, now: std::time::Instant) -> Option<u64> {
        let (address, port) = seen.service();
        let key = (container_id.to_string(), seen.way, seen.by, address, port, seen.protocol.name());
        if !self.last.contains_key(&key) && self.last.len() >= MAX_FOLDS {
            self.last.clear();
        }
        match self.last.get_mut(&key) {
            Some((sent, folded)) if now.duration_since(*sent) < FOLD_WINDOW => {
                *folded += 1;
                None
            }
            Some((sent, folded)) => {
                *sent = now;
                Some(std::mem::take(folded))
            }
            None => {
                self.last.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FlowSensorError {
    #[error("loading the first-bytes programs: {0}")]
    Load(#[source] aya::EbpfError),
    #[error("opening the cgroup root {path}: {source}")]
    Cgroup { path: String, source: std::io::Error },
    #[error("attaching {program}: {source}")]
    Attach { program: &'static str, source: aya::programs::ProgramError },
    #[error("{0} is missing from its object")]
    Missing(&'static str),
    #[error(transparent)]
    Ring(#[from] RingError),
}

fn decode(bytes: &[u8]) -> Option<FlowRecord> {
    if bytes.len() == FLOW_END_LEN {
        let mut r = super::events::Reader::new(bytes);
        return Some(FlowRecord::End(FlowEnd { cookie: r.u64(), sent: r.u64(), received: r.u64() }));
    }
    if bytes.len() < FLOW_EVENT_LEN {
        return None;
    }
    let mut r = super::events::Reader::new(bytes);
    let (cgroup_id, cookie) = (r.u64(), r.u64());
    let (family, part) = (u32::from(r.u16()), r.u16());
    let (direction, len) = (r.u32(), usize::try_from(r.u32()).ok()?);
    let (local_port, remote_port) = (r.u16(), r.u16());
    let (local, remote) = (address(family, r.take(16))?, address(family, r.take(16))?);
    let data = r.take(FLOW_MAX);
    let way = match direction {
        0 => Way::Sent,
        1 => Way::Received,
        _ => return None,
    };
    Some(FlowRecord::First(FirstBytes {
        cgroup_id,
        cookie,
        way,
        local: (local, local_port),
        remote: (remote, remote_port),
        part,
        bytes: data.get(..len)?.to_vec(),
    }))
}

/// Holds a socket's HTTP/2 preface until the payload with its first request's headers comes
/// (curl, grpc-go and others write the preface alone), so that the flow is told once, with its
/// `:path`.
#[derive(Debug, Default)]
pub struct Http2Assembly {
    waiting: std::collections::HashMap<(u64, Way), (std::time::Instant, FirstBytes)>,
}

impl Http2Assembly {
    /// The first bytes ready to be identified, `first` among them unless it waits for more.
    pub fn take(&mut self, first: FirstBytes, now: std::time::Instant) -> Vec<FirstBytes> {
        let key = (first.cookie, first.way);
        if first.part == 0 {
            // Only a preface is decoded here: every other flow is identified once, by the caller.
            let waits = super::protocols::starts_http2(&first.bytes)
                && matches!(
                    super::protocols::identify(&first.bytes, Direction::Client),
                    Protocol::Http2 { ref path, .. } if path.is_empty()
                );
            if !waits {
                return vec![first];
            }
            let mut ready = Vec::new();
            if self.waiting.len() >= H2_WAITING
                && let Some(oldest) = self.waiting.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k)
                && let Some((_, held)) = self.waiting.remove(&oldest)
            {
                ready.push(held);
            }
            self.waiting.insert(key, (now, first));
            return ready;
        }
        // A payload after a preface that needed no more (or was let go) says nothing new.
        let Some((_, mut held)) = self.waiting.remove(&key) else { return Vec::new() };
        held.bytes.extend_from_slice(&first.bytes);
        let told = matches!(
            super::protocols::identify(&held.bytes, Direction::Client),
            Protocol::Http2 { ref path, .. } if !path.is_empty()
        );
        if told || first.part >= H2_FOLLOW_UPS {
            return vec![held];
        }
        self.waiting.insert(key, (now, held));
        Vec::new()
    }

    /// Prefaces that waited long enough: they go as they are.
    pub fn expired(&mut self, now: std::time::Instant) -> Vec<FirstBytes> {
        let late: Vec<(u64, Way)> =
            self.waiting.iter().filter(|(_, (at, _))| now.duration_since(*at) >= H2_WAIT).map(|(k, _)| *k).collect();
        late.into_iter().filter_map(|k| self.waiting.remove(&k)).map(|(_, first)| first).collect()
    }
}

/// The first bytes of every TCP connection on the node.
pub struct FlowSensor {
    ebpf: Ebpf,
    ring: EventRing,
    malformed: u64,
}

impl FlowSensor {
    /// Loads and attaches; must run inside a tokio runtime.
    pub fn start() -> Result<Self, FlowSensorError> {
        let mut ebpf = Ebpf::load(FLOWS_PROGRAM).map_err(FlowSensorError::Load)?;
        let root = super::attribution::unified_root();
        let cgroup = std::fs::File::open(&root)
            .map_err(|source| FlowSensorError::Cgroup { path: root.display().to_string(), source })?;
        for (program, kind) in
            [("flow_egress", CgroupSkbAttachType::Egress), ("flow_ingress", CgroupSkbAttachType::Ingress)]
        {
            let attach = |source| FlowSensorError::Attach { program, source };
            let hook: &mut CgroupSkb =
                ebpf.program_mut(program).ok_or(FlowSensorError::Missing(program))?.try_into().map_err(attach)?;
            hook.load().map_err(attach)?;
            hook.attach(&cgroup, kind, CgroupAttachMode::Single).map_err(attach)?;
        }
        let attach = |source| FlowSensorError::Attach { program: "flow_sockops", source };
        let sockops: &mut SockOps = ebpf
            .program_mut("flow_sockops")
            .ok_or(FlowSensorError::Missing("flow_sockops"))?
            .try_into()
            .map_err(attach)?;
        sockops.load().map_err(attach)?;
        sockops.attach(&cgroup, CgroupAttachMode::Single).map_err(attach)?;
        let ring = EventRing::take(&mut ebpf, "flow_events", None)?;
        Ok(Self { ebpf, ring, malformed: 0 })
    }

    pub async fn next_batch(&mut self) -> Result<Vec<FlowRecord>, RingError> {
        self.ring.next_batch(decode, &mut self.malformed).await
    }

    /// First bytes the ring had no room for, and records too short to read.
    pub fn dropped(&self) -> Result<u64, RingError> {
        Ok(per_cpu_sum(&self.ebpf, "flow_drops")? + self.malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_decode_with_both_ends_and_are_identified() {
        let mut record = vec![0u8; FLOW_EVENT_LEN];
        record[..8].copy_from_slice(&42u64.to_le_bytes());
        record[8..16].copy_from_slice(&7u64.to_le_bytes());
        record[16..18].copy_from_slice(&2u16.to_le_bytes());
        record[20..24].copy_from_slice(&0u32.to_le_bytes());
        let request = b"DELETE /admin HTTP/1.1\r\nHost: web\r\n\r\n";
        record[24..28].copy_from_slice(&(request.len() as u32).to_le_bytes());
        record[28..30].copy_from_slice(&40000u16.to_le_bytes());
        record[30..32].copy_from_slice(&8080u16.to_le_bytes());
        record[32..36].copy_from_slice(&[10, 88, 0, 5]);
        record[48..52].copy_from_slice(&[10, 88, 0, 6]);
        record[64..64 + request.len()].copy_from_slice(request);
        let Some(FlowRecord::First(first)) = decode(&record) else { panic!("a record") };
        assert_eq!(first.part, 0);
        assert_eq!((first.cgroup_id, first.cookie, first.way), (42, 7, Way::Sent));
        assert_eq!(first.local, ("10.88.0.5".parse().unwrap(), 40000));
        assert_eq!(first.remote, ("10.88.0.6".parse().unwrap(), 8080));
        let seen = first.identify();
        assert_eq!(seen.by, Direction::Client);
        assert_eq!(
            seen.protocol,
            Protocol::Http { method: "DELETE".into(), path: "/admin".into(), host: Some("web".into()) }
        );
        let json = serde_json::to_string(&seen).expect("json");
        assert!(json.contains(r#""protocol":"http""#) && json.contains(r#""method":"DELETE""#), "{json}");
        let mut banner = first.clone();
        banner.bytes = b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec();
        assert_eq!(banner.identify().protocol.name(), "SSH");
        assert_eq!(seen.service(), ("10.88.0.6".parse().unwrap(), 8080));
        let mut folds = FlowFolds::default();
        let now = std::time::Instant::now();
        assert_eq!(folds.admit("c", &seen, now), Some(0), "the first is sent");
        assert_eq!(folds.admit("c", &seen, now + std::time::Duration::from_secs(1)), None);
        assert_eq!(folds.admit("c", &seen, now + std::time::Duration::from_secs(2)), None);
        assert_eq!(folds.admit("other", &seen, now), Some(0), "per container");
        let mut answer = seen.clone();
        answer.way = Way::Received;
        assert_eq!(folds.admit("c", &answer, now), Some(0), "per way");
        assert_eq!(folds.admit("c", &seen, now + FOLD_WINDOW), Some(2), "then sent with what was folded");
        assert_eq!(decode(&record[..FLOW_EVENT_LEN - 1]), None);
        let mut end = 7u64.to_le_bytes().to_vec();
        end.extend(1_500u64.to_le_bytes());
        end.extend(80_000u64.to_le_bytes());
        assert_eq!(decode(&end), Some(FlowRecord::End(FlowEnd { cookie: 7, sent: 1_500, received: 80_000 })));
        record[20..24].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(decode(&record), None, "no such direction");
    }

    fn payload(cookie: u64, part: u16, bytes: &[u8]) -> FirstBytes {
        FirstBytes {
            cgroup_id: 1,
            cookie,
            way: Way::Sent,
            local: ("127.0.0.1".parse().unwrap(), 40000),
            remote: ("127.0.0.1".parse().unwrap(), 8080),
            part,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn an_http2_preface_waits_for_the_headers_that_follow_it() {
        let h2c =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz/protocols/h2c-get.bin")).expect("seed");
        let (preface, headers) = h2c.split_at(64);
        let mut assembly = Http2Assembly::default();
        let now = std::time::Instant::now();
        let get = payload(1, 0, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(assembly.take(get.clone(), now), [get], "anything else goes at once");
        assert!(assembly.take(payload(2, 0, preface), now).is_empty(), "the preface alone waits");
        let ready = assembly.take(payload(2, 1, headers), now);
        assert_eq!(ready.len(), 1);
        let seen = ready[0].identify();
        assert!(matches!(&seen.protocol, Protocol::Http2 { path, .. } if path == "/orders/7"), "{:?}", seen.protocol);
        assert!(assembly.take(payload(2, 2, b"more"), now).is_empty(), "told once");
        // A preface with its headers in the same payload goes at once.
        assert_eq!(assembly.take(payload(3, 0, &h2c), now).len(), 1);
        // One whose next payloads say nothing goes after the last, or after the wait.
        assert!(assembly.take(payload(4, 0, preface), now).is_empty());
        assert!(assembly.take(payload(4, 1, &[0, 0, 0, 4, 1, 0, 0, 0, 0]), now).is_empty());
        assert_eq!(assembly.take(payload(4, 2, &[0, 0, 0, 4, 1, 0, 0, 0, 0]), now).len(), 1);
        assert!(assembly.take(payload(5, 0, preface), now).is_empty());
        assert!(assembly.expired(now).is_empty());
        let late = assembly.expired(now + H2_WAIT);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].identify().protocol.name(), "HTTP2");
    }
}

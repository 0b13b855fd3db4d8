//! DNS answers containers receive: loads src/agent/bpf/dns.bpf.c (a cgroup_skb ingress program
//! on the unified cgroup root that copies each UDP datagram from port 53), reads its ring buffer,
//! and parses each answer with `simple-dns` (bounds-checked: hostile bytes are an error, never a
//! panic). What names an address was an answer for, per container, is [`DnsNames`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::Ebpf;
use aya::programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType};
use serde::{Deserialize, Serialize};

use super::ring::{EventRing, RingError, per_cpu_sum};

static DNS_PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dns.bpf.o"));
const PROGRAM: &str = "dns_ingress";
/// As dns.bpf.c's DNS_MAX.
pub const DNS_MAX: usize = 512;
/// Bytes of `struct dns_event`: cgroup id, family, length, server, data.
const DNS_EVENT_LEN: usize = 8 + 4 + 4 + 16 + DNS_MAX;
/// Names kept per container at most, and containers at most (then the table starts again).
const MAX_NAMES: usize = 4096;
const MAX_CONTAINERS: usize = 4096;

/// One DNS datagram a container received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsDatagram {
    pub cgroup_id: u64,
    pub server: IpAddr,
    /// Its payload, cut at [`DNS_MAX`] - 1 bytes (a longer answer reads as cut: its addresses
    /// past the cut are not seen).
    pub payload: Vec<u8>,
}

/// What an answer said: the name asked and the addresses it resolved to (through any CNAMEs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsAnswer {
    /// Lowercase, without the final dot.
    pub query: String,
    /// `NOERROR`, `NXDOMAIN`, `REFUSED`, …
    pub rcode: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpAddr>,
    /// The names the answer went through on its way to the addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cnames: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DnsSensorError {
    #[error("loading the DNS answer program: {0}")]
    Load(#[source] aya::EbpfError),
    #[error("opening the cgroup root {path}: {source}")]
    Cgroup { path: String, source: std::io::Error },
    #[error("attaching the DNS answer program: {0}")]
    Attach(#[source] aya::programs::ProgramError),
    #[error("the DNS answer program is missing from its object")]
    Missing,
    #[error(transparent)]
    Ring(#[from] RingError),
}

fn decode(bytes: &[u8]) -> Option<DnsDatagram> {
    if bytes.len() < DNS_EVENT_LEN {
        return None;
    }
    let mut r = super::events::Reader::new(bytes);
    let cgroup_id = r.u64();
    let family = r.u32();
    let len = usize::try_from(r.u32()).ok()?;
    let server = r.take(16);
    let data = r.take(DNS_MAX);
    let server = super::net::address(family, server)?;
    Some(DnsDatagram { cgroup_id, server, payload: data.get(..len)?.to_vec() })
}

/// The DNS answers of every container on the node.
pub struct DnsSensor {
    ebpf: Ebpf,
    ring: EventRing,
    malformed: u64,
}

impl DnsSensor {
    /// Loads and attaches; must run inside a tokio runtime.
    pub fn start() -> Result<Self, DnsSensorError> {
        let mut ebpf = Ebpf::load(DNS_PROGRAM).map_err(DnsSensorError::Load)?;
        let root = super::attribution::unified_root();
        let cgroup = std::fs::File::open(&root)
            .map_err(|source| DnsSensorError::Cgroup { path: root.display().to_string(), source })?;
        let program: &mut CgroupSkb =
            ebpf.program_mut(PROGRAM).ok_or(DnsSensorError::Missing)?.try_into().map_err(DnsSensorError::Attach)?;
        program.load().map_err(DnsSensorError::Attach)?;
        program
            .attach(&cgroup, CgroupSkbAttachType::Ingress, CgroupAttachMode::Single)
            .map_err(DnsSensorError::Attach)?;
        let ring = EventRing::take(&mut ebpf, "dns_events", None)?;
        Ok(Self { ebpf, ring, malformed: 0 })
    }

    pub async fn next_batch(&mut self) -> Result<Vec<DnsDatagram>, RingError> {
        self.ring.next_batch(decode, &mut self.malformed).await
    }

    /// Datagrams the ring had no room for, and records too short to read.
    pub fn dropped(&self) -> Result<u64, RingError> {
        Ok(per_cpu_sum(&self.ebpf, "dns_drops")? + self.malformed)
    }
}

/// Reads a DNS response: None for a query or a message that does not parse (hostile, cut, not
/// DNS at all); `payload` is never trusted.
pub fn read_answer(payload: &[u8]) -> Option<DnsAnswer> {
    use simple_dns::{Packet, PacketFlag, rdata::RData};
    let packet = Packet::parse(payload).ok()?;
    if !packet.has_flags(PacketFlag::RESPONSE) {
        return None;
    }
    let query = packet.questions.first()?.qname.to_string().trim_end_matches('.').to_ascii_lowercase();
    let mut answer = DnsAnswer { query, rcode: format!("{:?}", packet.rcode()), ..Default::default() };
    for record in &packet.answers {
        match &record.rdata {
            RData::A(a) => answer.addresses.push(IpAddr::V4(Ipv4Addr::from(a.address))),
            RData::AAAA(a) => answer.addresses.push(IpAddr::V6(Ipv6Addr::from(a.address))),
            RData::CNAME(name) => answer.cnames.push(name.0.to_string().trim_end_matches('.').to_ascii_lowercase()),
            _ => {}
        }
    }
    answer.addresses.sort();
    answer.addresses.dedup();
    Some(answer)
}

/// Which name each address was an answer for, per container: the name the container asked
/// (not the CNAMEs on the way), the latest answer winning. Bounded.
#[derive(Debug, Default)]
pub struct DnsNames {
    by_container: HashMap<String, HashMap<IpAddr, String>>,
}

impl DnsNames {
    /// Keeps what `answer` said for the container; whether an address is new for its name.
    pub fn learn(&mut self, container_id: &str, answer: &DnsAnswer) -> bool {
        if answer.addresses.is_empty() || answer.query.is_empty() {
            return false;
        }
        if !self.by_container.contains_key(container_id) && self.by_container.len() >= MAX_CONTAINERS {
            self.by_container.clear();
        }
        let names = self.by_container.entry(container_id.to_string()).or_default();
        if names.len() + answer.addresses.len() > MAX_NAMES {
            names.clear();
        }
        let mut new = false;
        for address in &answer.addresses {
            new |= names.insert(address.to_canonical(), answer.query.clone()).as_ref() != Some(&answer.query);
        }
        new
    }

    /// The name the container last resolved to `address`.
    pub fn name_of(&self, container_id: &str, address: IpAddr) -> Option<&str> {
        self.by_container.get(container_id)?.get(&address.to_canonical()).map(String::as_str)
    }

    /// Every name resolved on the node, with the addresses containers were given for it.
    pub fn addresses_by_name(&self) -> HashMap<String, Vec<IpAddr>> {
        let mut by_name: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (address, name) in self.by_container.values().flatten() {
            by_name.entry(name.clone()).or_default().push(*address);
        }
        by_name.values_mut().for_each(|a| {
            a.sort();
            a.dedup();
        });
        by_name
    }

    /// A container is gone: its names go.
    pub fn forget(&mut self, container_id: &str) {
        self.by_container.remove(container_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response for `query` with a CNAME and two A records, as a resolver sends it.
    fn response(query: &str) -> Vec<u8> {
        use simple_dns::rdata::{A, CNAME, RData};
        use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, ResourceRecord, TYPE};
        let mut packet = Packet::new_reply(7);
        packet.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
        let name = Name::new_unchecked(query);
        packet.questions.push(Question::new(name.clone(), QTYPE::TYPE(TYPE::A), QCLASS::CLASS(CLASS::IN), false));
        let edge = Name::new_unchecked("edge.cdn.example");
        packet.answers.push(ResourceRecord::new(name, CLASS::IN, 60, RData::CNAME(CNAME(edge.clone()))));
        for address in [0xc000_0207u32, 0xc000_0208] {
            packet.answers.push(ResourceRecord::new(edge.clone(), CLASS::IN, 60, RData::A(A { address })));
        }
        packet.build_bytes_vec_compressed().expect("a packet")
    }

    #[test]
    fn an_answer_gives_the_name_asked_its_cnames_and_addresses() {
        let answer = read_answer(&response("API.Example.com")).expect("an answer");
        assert_eq!(answer.query, "api.example.com");
        assert_eq!(answer.rcode, "NoError");
        assert_eq!(answer.cnames, ["edge.cdn.example"]);
        let addresses: Vec<String> = answer.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(addresses, ["192.0.2.7", "192.0.2.8"]);
        let mut names = DnsNames::default();
        names.learn("c1", &answer);
        assert_eq!(names.name_of("c1", "192.0.2.8".parse().unwrap()), Some("api.example.com"));
        assert_eq!(names.name_of("c1", "::ffff:192.0.2.8".parse().unwrap()), Some("api.example.com"));
        assert_eq!(names.name_of("c2", "192.0.2.8".parse().unwrap()), None, "per container");
    }

    #[test]
    fn queries_cut_and_hostile_bytes_give_no_answer() {
        let whole = response("api.example.com");
        for cut in 0..whole.len() {
            let _ = read_answer(&whole[..cut]);
        }
        let mut query = whole.clone();
        query[2] &= 0x7f;
        assert_eq!(read_answer(&query), None, "a query is no answer");
        // A compression pointer to itself.
        let mut looped = whole[..12].to_vec();
        looped[5] = 1;
        looped.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        assert_eq!(read_answer(&looped), None);
        let mut state = 0x9e37_79b9_u32;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..(state % 600))
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = read_answer(&bytes);
        }
    }

    #[test]
    fn the_fuzz_seeds_are_answers() {
        let seed = |name: &str| std::fs::read(format!("{}/tests/fuzz/dns/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let answer = read_answer(&seed("cname-a.bin")).expect("an answer");
        assert_eq!((answer.query.as_str(), answer.cnames.len(), answer.addresses.len()), ("api.example.com", 1, 1));
        let missing = read_answer(&seed("nxdomain.bin")).expect("an answer");
        assert_eq!((missing.rcode.as_str(), missing.addresses.len()), ("NameError", 0));
    }

    #[test]
    fn records_decode_and_short_ones_do_not() {
        let mut record = vec![0u8; DNS_EVENT_LEN];
        record[..8].copy_from_slice(&42u64.to_le_bytes());
        record[8..12].copy_from_slice(&2u32.to_le_bytes());
        record[12..16].copy_from_slice(&3u32.to_le_bytes());
        record[16..20].copy_from_slice(&[10, 88, 0, 1]);
        record[32..35].copy_from_slice(b"abc");
        let datagram = decode(&record).expect("a record");
        assert_eq!((datagram.cgroup_id, datagram.server.to_string()), (42, "10.88.0.1".to_string()));
        assert_eq!(datagram.payload, b"abc");
        assert_eq!(decode(&record[..DNS_EVENT_LEN - 1]), None);
        record[12..16].copy_from_slice(&(DNS_MAX as u32 + 1).to_le_bytes());
        assert_eq!(decode(&record), None, "a length past the data");
    }
}

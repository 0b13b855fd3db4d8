//! What the agent does after the L7 rung refused something, so that no client waits for a
//! time-out. The kernel fails the sender's send() at once (EPERM, EACCES), but clients that send
//! asynchronously (dig, libuv, Go's resolver) only notice the missing answer:
//! - a refused DNS query over UDP is answered REFUSED: from the server's address and port to the
//!   client's, inside the client's network namespace (a raw socket opened there), with the
//!   query's id and question;
//! - a TCP connection a refused request, handshake or query went over is destroyed (the
//!   kernel's SOCK_DESTROY through sock_diag, in the client's namespace): its reads and writes
//!   fail at once, and the server's end gets a reset instead of a connection that would never
//!   send again.
//!
//! One thread does both; the queue is bounded, and what does not fit is dropped (the sender
//! still got its error).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// What to answer: the query as sent (header and question), who sent it and to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A process in the client's network namespace (the sender).
    pub pid: u32,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub query: Vec<u8>,
}

/// The REFUSED answer to `query` (header then question): the same id and question, QR set,
/// opcode and RD kept, RA set, rcode 5; None for what is not a query with one question.
pub fn refused_answer(query: &[u8]) -> Option<Vec<u8>> {
    let header = query.get(..12)?;
    let is_query = header[2] & 0x80 == 0;
    let questions = u16::from_be_bytes([header[4], header[5]]);
    if !is_query || questions == 0 || query.len() <= 12 + 4 {
        return None;
    }
    let mut answer = Vec::with_capacity(query.len());
    answer.extend_from_slice(&header[..2]);
    answer.push(0x80 | (header[2] & 0x79)); // QR, opcode, RD
    answer.push(0x80 | 5); // RA, REFUSED
    answer.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    answer.extend_from_slice(&query[12..]);
    Some(answer)
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for byte in chunks.iter().flat_map(|c| c.iter().copied()) {
        match odd.take() {
            Some(high) => sum += u32::from(u16::from_be_bytes([high, byte])),
            None => odd = Some(byte),
        }
    }
    if let Some(high) = odd {
        sum += u32::from(u16::from_be_bytes([high, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The UDP datagram from `from` to `to` carrying `payload`, with its IP header for a raw
/// IPPROTO_RAW socket (IPv4: with the header; IPv6: the kernel writes it, and the UDP checksum,
/// mandatory there, is computed over the pseudo-header here).
pub fn datagram(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
    let udp_len = u16::try_from(8 + payload.len()).ok()?;
    let mut udp = Vec::with_capacity(usize::from(udp_len));
    udp.extend_from_slice(&from.port().to_be_bytes());
    udp.extend_from_slice(&to.port().to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    match (from.ip(), to.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let total = u16::try_from(20 + udp.len()).ok()?;
            let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&src.octets());
            ip.extend_from_slice(&dst.octets());
            let sum = checksum(&[&ip]);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            // IPv4 UDP checksum 0: none.
            Some([ip, udp].concat())
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let pseudo =
                [&src.octets()[..], &dst.octets()[..], &u32::from(udp_len).to_be_bytes()[..], &[0, 0, 0, 17][..]];
            let sum = match checksum(&[pseudo[0], pseudo[1], pseudo[2], pseudo[3], &udp]) {
                0 => 0xffff,
                sum => sum,
            };
            udp[6..8].copy_from_slice(&sum.to_be_bytes());
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&udp_len.to_be_bytes());
            ip.extend_from_slice(&[17, 64]);
            ip.extend_from_slice(&src.octets());
            ip.extend_from_slice(&dst.octets());
            Some([ip, udp].concat())
        }
        _ => None,
    }
}

/// A TCP connection to destroy, as the socket to destroy sees it: a process in its namespace (0:
/// any process of `cgroup_id`, found when the reset is made), its local end (`client`) and its
/// peer's (`server`). A request a container received is reset from the container's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    pub pid: u32,
    pub cgroup_id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
}

enum Job {
    Refuse(Refusal),
    Reset(Reset),
}

impl Job {
    fn pid(&self) -> u32 {
        match self {
            Self::Refuse(r) => r.pid,
            Self::Reset(r) => r.pid,
        }
    }
}

/// Answers refusals from a thread of its own (it enters the clients' network namespaces).
pub struct Refuser {
    tx: SyncSender<Job>,
    /// Jobs the queue had no room for.
    pub dropped: u64,
}

const QUEUE: usize = 1024;
/// Raw sockets kept, one per network namespace answered into lately.
const SOCKETS: usize = 64;

impl Refuser {
    pub fn start() -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new().name("picket-refusals".into()).spawn(move || answer_all(&rx))?;
        Ok(Self { tx, dropped: 0 })
    }

    /// Answers a refused DNS query REFUSED.
    pub fn refuse(&mut self, refusal: Refusal) {
        self.send(Job::Refuse(refusal));
    }

    /// Destroys the TCP connection a refused request went over.
    pub fn reset(&mut self, reset: Reset) {
        self.send(Job::Reset(reset));
    }

    fn send(&mut self, job: Job) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(job) {
            self.dropped += 1;
        }
    }
}

/// Sockets opened in one network namespace: raw IPv4, raw IPv6, sock_diag.
#[derive(Default)]
struct InNamespace {
    v4: Option<OwnedFd>,
    v6: Option<OwnedFd>,
    diag: Option<OwnedFd>,
}

/// Network namespace (device, inode) -> the sockets opened in it.
type Sockets = HashMap<(u64, u64), InNamespace>;

fn answer_all(rx: &Receiver<Job>) {
    let mut sockets = Sockets::new();
    let (mut said_refuse, mut said_reset) = (false, false);
    while let Ok(job) = rx.recv() {
        // Said once each: a container that keeps trying must not flood the log.
        match (&job, run(&job, &mut sockets)) {
            (_, Ok(())) => {}
            (Job::Refuse(r), Err(e)) if !std::mem::replace(&mut said_refuse, true) => {
                crate::say!("picket: no DNS REFUSED answer to {} ({e}); its sender got EPERM", r.client);
            }
            (Job::Reset(r), Err(e)) if !std::mem::replace(&mut said_reset, true) => {
                crate::say!(
                    "picket: the connection {} → {} is not reset ({e}); its sender got EACCES",
                    r.client,
                    r.server
                );
            }
            _ => {}
        }
    }
}

/// The sockets of the namespace `pid` is in.
fn namespace_of(pid: u32, sockets: &mut Sockets) -> Result<&mut InNamespace, String> {
    use std::os::unix::fs::MetadataExt;
    let path = format!("/proc/{pid}/ns/net");
    let meta = std::fs::metadata(&path).map_err(|e| format!("{path}: {e}"))?;
    let key = (meta.dev(), meta.ino());
    if !sockets.contains_key(&key) && sockets.len() >= SOCKETS {
        sockets.clear();
    }
    Ok(sockets.entry(key).or_default())
}

/// This thread enters the network namespace `pid` is in (to open a socket there).
fn enter(pid: u32) -> Result<(), String> {
    let path = format!("/proc/{pid}/ns/net");
    let netns = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {path}: {e}"))
}

fn run(job: &Job, sockets: &mut Sockets) -> Result<(), String> {
    match job {
        Job::Refuse(refusal) => answer(refusal, sockets),
        Job::Reset(reset) if reset.pid == 0 => {
            let pid = process_in_cgroup(reset.cgroup_id)
                .ok_or_else(|| format!("no process of cgroup {} is left", reset.cgroup_id))?;
            destroy(&Reset { pid, ..reset.clone() }, namespace_of(pid, sockets)?)
        }
        Job::Reset(reset) => destroy(reset, namespace_of(job.pid(), sockets)?),
    }
}

/// A process of the cgroup v2 with this id (the inode of its directory).
fn process_in_cgroup(cgroup_id: u64) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let root = crate::agent::attribution::unified_root();
    walkdir::WalkDir::new(&root)
        .max_depth(16)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_dir())
        .find(|e| e.metadata().is_ok_and(|m| m.ino() == cgroup_id))
        .and_then(|dir| std::fs::read_to_string(dir.path().join("cgroup.procs")).ok())
        .and_then(|procs| procs.lines().find_map(|l| l.trim().parse().ok()))
}

/// The SOCK_DESTROY request for the TCP socket with these ends (its own view: `client` local).
pub fn destroy_request(client: SocketAddr, server: SocketAddr) -> Option<Vec<u8>> {
    const SOCK_DESTROY: u16 = 21;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    let family = match (client, server) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) => 2u8,
        (SocketAddr::V6(_), SocketAddr::V6(_)) => 10u8,
        _ => return None,
    };
    let address = |a: SocketAddr| -> [u8; 16] {
        let mut out = [0u8; 16];
        match a.ip() {
            IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => out.copy_from_slice(&v6.octets()),
        }
        out
    };
    let mut message = Vec::with_capacity(72);
    message.extend_from_slice(&72u32.to_ne_bytes());
    message.extend_from_slice(&SOCK_DESTROY.to_ne_bytes());
    message.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    message.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    message.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    // inet_diag_req_v2: family, protocol (TCP), extensions, pad, every state.
    message.extend_from_slice(&[family, 6, 0, 0]);
    message.extend_from_slice(&u32::MAX.to_ne_bytes());
    // inet_diag_sockid: ports and addresses in network order, any interface, no cookie.
    message.extend_from_slice(&client.port().to_be_bytes());
    message.extend_from_slice(&server.port().to_be_bytes());
    message.extend_from_slice(&address(client));
    message.extend_from_slice(&address(server));
    message.extend_from_slice(&0u32.to_ne_bytes());
    message.extend_from_slice(&u32::MAX.to_ne_bytes());
    message.extend_from_slice(&u32::MAX.to_ne_bytes());
    Some(message)
}

fn destroy(reset: &Reset, namespace: &mut InNamespace) -> Result<(), String> {
    use nix::sys::socket::{
        AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
    };
    let request = destroy_request(reset.client, reset.server).ok_or("mixed address families")?;
    if namespace.diag.is_none() {
        enter(reset.pid)?;
        let fd =
            socket(AddressFamily::Netlink, SockType::Datagram, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkSockDiag)
                .map_err(|e| format!("sock_diag socket: {e}"))?;
        namespace.diag = Some(fd);
    }
    let fd = namespace.diag.as_ref().ok_or("no sock_diag socket")?;
    let raw = std::os::fd::AsRawFd::as_raw_fd(fd);
    sendto(raw, &request, &NetlinkAddr::new(0, 0), MsgFlags::empty()).map_err(|e| format!("SOCK_DESTROY: {e}"))?;
    // The acknowledgement: an nlmsgerr whose error is 0, or the errno negated.
    let mut ack = [0u8; 128];
    let n = recv(raw, &mut ack, MsgFlags::empty()).map_err(|e| format!("SOCK_DESTROY answer: {e}"))?;
    let error = match ack.get(16..20) {
        Some(b) if n >= 20 => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
        _ => 0,
    };
    match error {
        0 => Ok(()),
        e => Err(format!("SOCK_DESTROY: {}", nix::errno::Errno::from_raw(-e))),
    }
}

fn answer(refusal: &Refusal, sockets: &mut Sockets) -> Result<(), String> {
    use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn, SockaddrIn6, sendto, socket};
    let answer = refused_answer(&refusal.query).ok_or("not a query")?;
    let packet = datagram(refusal.server, refusal.client, &answer).ok_or("mixed address families")?;
    let v4 = refusal.client.is_ipv4();
    let namespace = namespace_of(refusal.pid, sockets)?;
    let known = if v4 { namespace.v4.is_some() } else { namespace.v6.is_some() };
    if !known {
        enter(refusal.pid)?;
        let family = if v4 { AddressFamily::Inet } else { AddressFamily::Inet6 };
        // IPPROTO_RAW (255): the packet is sent as written (IPv4: with its header).
        let raw = nix::sys::socket::SockProtocol::Raw;
        let fd = socket(family, SockType::Raw, SockFlag::SOCK_CLOEXEC, raw).map_err(|e| format!("raw socket: {e}"))?;
        if v4 {
            namespace.v4 = Some(fd);
        } else {
            namespace.v6 = Some(fd);
        }
    }
    match (refusal.client, &namespace.v4, &namespace.v6) {
        (SocketAddr::V4(client), Some(fd), _) => {
            let to = SockaddrIn::from(client);
            sendto(std::os::fd::AsRawFd::as_raw_fd(fd), &packet, &to, MsgFlags::empty())
                .map_err(|e| format!("send: {e}"))?;
        }
        (SocketAddr::V6(client), _, Some(fd)) => {
            // The kernel writes the IPv6 header of an IPPROTO_RAW v6 socket's packets itself.
            let to = SockaddrIn6::from(std::net::SocketAddrV6::new(*client.ip(), 0, 0, 0));
            sendto(std::os::fd::AsRawFd::as_raw_fd(fd), &packet[40..], &to, MsgFlags::empty())
                .map_err(|e| format!("send: {e}"))?;
        }
        _ => return Err("no socket for the family".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_repeats_id_and_question_with_rcode_refused() {
        let query = [&[0xab, 0xcd, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1][..], b"\x04evil\x07example\x00\x00\x01\x00\x01"]
            .concat();
        let answer = refused_answer(&query).expect("an answer");
        assert_eq!(&answer[..2], &[0xab, 0xcd], "the id");
        assert_eq!(answer[2], 0x81, "QR and RD");
        assert_eq!(answer[3] & 0x0f, 5, "REFUSED");
        assert_eq!(&answer[4..12], &[0, 1, 0, 0, 0, 0, 0, 0], "one question, nothing else (the OPT record dropped)");
        assert_eq!(&answer[12..], &query[12..]);
        let mut response = query.clone();
        response[2] |= 0x80;
        assert_eq!(refused_answer(&response), None, "a response is not answered");
        assert_eq!(refused_answer(&query[..10]), None);
    }

    #[test]
    fn the_destroy_request_names_the_socket_in_network_order() {
        let request = destroy_request("127.0.0.1:40000".parse().unwrap(), "127.0.0.2:8080".parse().unwrap()).unwrap();
        assert_eq!(request.len(), 72);
        assert_eq!(u32::from_ne_bytes(request[0..4].try_into().unwrap()), 72, "nlmsg_len");
        assert_eq!(u16::from_ne_bytes(request[4..6].try_into().unwrap()), 21, "SOCK_DESTROY");
        assert_eq!(&request[16..18], &[2, 6], "AF_INET, TCP");
        assert_eq!(&request[24..26], &40000u16.to_be_bytes(), "the client's port first");
        assert_eq!(&request[26..28], &8080u16.to_be_bytes());
        assert_eq!(&request[28..32], &[127, 0, 0, 1]);
        assert_eq!(&request[44..48], &[127, 0, 0, 2]);
        assert_eq!(destroy_request("127.0.0.1:1".parse().unwrap(), "[::1]:2".parse().unwrap()), None);
    }

    #[test]
    fn datagrams_carry_valid_checksums() {
        let from: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let to: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let packet = datagram(from, to, b"abc").expect("v4");
        assert_eq!(packet.len(), 20 + 8 + 3);
        assert_eq!(checksum(&[&packet[..20]]), 0, "the IPv4 header sums to zero");
        assert_eq!(u16::from_be_bytes([packet[22], packet[23]]), 40000);
        let from: SocketAddr = "[::1]:53".parse().unwrap();
        let to: SocketAddr = "[::1]:40000".parse().unwrap();
        let packet = datagram(from, to, b"abc").expect("v6");
        let pseudo = [&packet[8..24], &packet[24..40], &[0, 0, 0, 11][..], &[0, 0, 0, 17][..]];
        assert_eq!(checksum(&[pseudo[0], pseudo[1], pseudo[2], pseudo[3], &packet[40..]]), 0, "the UDP checksum holds");
        assert_eq!(datagram("127.0.0.1:53".parse().unwrap(), "[::1]:1".parse().unwrap(), b""), None);
    }
}

//! DNS REFUSED answers for queries the L7 rung dropped. A dropped query fails the sender's
//! send() with EPERM, which glibc's resolver takes at once; resolvers that send asynchronously
//! (dig, libuv, Go's) only see no answer and wait for their time-out. So the agent answers each
//! refused query itself: from the server's address and port to the client's, inside the
//! client's network namespace (a raw socket opened there), with the query's id and question and
//! rcode REFUSED. One thread does it; the queue is bounded, and what does not fit is dropped
//! (the sender still got EPERM).

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

/// Answers refusals from a thread of its own (it enters the clients' network namespaces).
pub struct DnsRefuser {
    tx: SyncSender<Refusal>,
    /// Refusals the queue had no room for.
    pub dropped: u64,
}

const QUEUE: usize = 1024;
/// Raw sockets kept, one per network namespace answered into lately.
const SOCKETS: usize = 64;

impl DnsRefuser {
    pub fn start() -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new().name("picket-dns-refuse".into()).spawn(move || answer_all(&rx))?;
        Ok(Self { tx, dropped: 0 })
    }

    pub fn refuse(&mut self, refusal: Refusal) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(refusal) {
            self.dropped += 1;
        }
    }
}

/// Network namespace (device, inode) -> the raw sockets opened in it (IPv4, IPv6).
type Sockets = HashMap<(u64, u64), (Option<OwnedFd>, Option<OwnedFd>)>;

fn answer_all(rx: &Receiver<Refusal>) {
    let mut sockets = Sockets::new();
    let mut said = false;
    while let Ok(refusal) = rx.recv() {
        // Said once: a container that keeps asking must not flood the log.
        if let Err(e) = answer(&refusal, &mut sockets)
            && !std::mem::replace(&mut said, true)
        {
            crate::say!("picket: no DNS REFUSED answer to {} ({e}); its sender got EPERM", refusal.client);
        }
    }
}

fn answer(refusal: &Refusal, sockets: &mut Sockets) -> Result<(), String> {
    use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn, SockaddrIn6, sendto, socket};
    use std::os::unix::fs::MetadataExt;
    let answer = refused_answer(&refusal.query).ok_or("not a query")?;
    let packet = datagram(refusal.server, refusal.client, &answer).ok_or("mixed address families")?;
    let path = format!("/proc/{}/ns/net", refusal.pid);
    let meta = std::fs::metadata(&path).map_err(|e| format!("{path}: {e}"))?;
    let key = (meta.dev(), meta.ino());
    let v4 = refusal.client.is_ipv4();
    let known = sockets.get(&key).is_some_and(|(a, b)| if v4 { a.is_some() } else { b.is_some() });
    if !known {
        if sockets.len() >= SOCKETS {
            sockets.clear();
        }
        let netns = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns {path}: {e}"))?;
        let family = if v4 { AddressFamily::Inet } else { AddressFamily::Inet6 };
        // IPPROTO_RAW (255): the packet is sent as written (IPv4: with its header).
        let raw = nix::sys::socket::SockProtocol::Raw;
        let fd = socket(family, SockType::Raw, SockFlag::SOCK_CLOEXEC, raw).map_err(|e| format!("raw socket: {e}"))?;
        let entry = sockets.entry(key).or_default();
        if v4 { entry.0 = Some(fd) } else { entry.1 = Some(fd) }
    }
    let (v4_fd, v6_fd) = sockets.get(&key).ok_or("no socket")?;
    match (refusal.client, v4_fd, v6_fd) {
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

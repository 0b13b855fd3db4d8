//! Packet capture of a container's traffic, for forensics: a raw packet socket opened inside the
//! container's network namespace (entered from a thread of its own, through the namespace of
//! one of its processes), every interface of that namespace, written as a classic pcap file
//! (what tcpdump, tshark and Wireshark read). Bounded by time, by file size and by a filter;
//! packets are parsed with bounds checks only to filter them, never trusted.
//!
//! The filter is a small subset of tcpdump's, words joined by `and`: `tcp`, `udp`, `icmp`,
//! `host ADDRESS`, `port N`, each optionally preceded by `not`.

use std::io::Write;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How much of each packet is kept.
pub const SNAPLEN: usize = 65_535;
const ARPHRD_LOOPBACK: u16 = 772;
const PACKET_OUTGOING: u8 = 4;
const PCAP_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Protocol(u8),
    Host(IpAddr),
    Port(u16),
}

/// A parsed filter: every term must hold (a `not` term must not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<(bool, Term)>,
    text: String,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut i = 0;
        let mut expect_term = true;
        while i < words.len() {
            let word = words[i].to_ascii_lowercase();
            if !expect_term {
                if word != "and" {
                    return Err(format!(
                        "filter '{text}': '{}' where 'and' was expected (terms: tcp, udp, icmp, host ADDRESS, port N, not …, joined by and)",
                        words[i]
                    ));
                }
                expect_term = true;
                i += 1;
                continue;
            }
            let negated = word == "not";
            if negated {
                i += 1;
            }
            let Some(word) = words.get(i).map(|w| w.to_ascii_lowercase()) else {
                return Err(format!("filter '{text}': 'not' needs a term after it"));
            };
            let term = match word.as_str() {
                "tcp" => Term::Protocol(6),
                "udp" => Term::Protocol(17),
                "icmp" => Term::Protocol(1),
                "host" | "port" => {
                    let value = words.get(i + 1).ok_or_else(|| format!("filter '{text}': '{word}' needs a value"))?;
                    i += 1;
                    if word == "host" {
                        Term::Host(
                            value.parse().map_err(|_| format!("filter '{text}': '{value}' is not an IP address"))?,
                        )
                    } else {
                        Term::Port(value.parse().map_err(|_| format!("filter '{text}': '{value}' is not a port"))?)
                    }
                }
                other => {
                    return Err(format!(
                        "filter '{text}': '{other}' is not a term picket knows (tcp, udp, icmp, host ADDRESS, port N, not …, joined by and)"
                    ));
                }
            };
            terms.push((negated, term));
            expect_term = false;
            i += 1;
        }
        if expect_term && !terms.is_empty() {
            return Err(format!("filter '{text}': it ends with 'and'"));
        }
        Ok(Self { terms, text: text.trim().to_string() })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether an Ethernet frame passes. Frames that are not IP pass only an empty filter.
    pub fn admits(&self, frame: &[u8]) -> bool {
        if self.terms.is_empty() {
            return true;
        }
        let Some(packet) = parse(frame) else { return false };
        self.terms.iter().all(|(negated, term)| {
            let holds = match term {
                Term::Protocol(p) => packet.protocol == *p,
                Term::Host(ip) => packet.source == *ip || packet.destination == *ip,
                Term::Port(port) => packet.ports.is_some_and(|(s, d)| s == *port || d == *port),
            };
            holds != *negated
        })
    }
}

struct Packet {
    source: IpAddr,
    destination: IpAddr,
    protocol: u8,
    ports: Option<(u16, u16)>,
}

fn parse(frame: &[u8]) -> Option<Packet> {
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let mut offset = 14;
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        offset = 18;
    }
    let ip = frame.get(offset..)?;
    let (source, destination, protocol, payload) = match ethertype {
        0x0800 => {
            let header = usize::from(ip.first()? & 0x0f) * 4;
            if header < 20 {
                return None;
            }
            let source: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let destination: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (IpAddr::from(source), IpAddr::from(destination), *ip.get(9)?, ip.get(header..)?)
        }
        0x86dd => {
            let source: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let destination: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (IpAddr::from(source), IpAddr::from(destination), *ip.get(6)?, ip.get(40..)?)
        }
        _ => return None,
    };
    let ports = matches!(protocol, 6 | 17).then(|| {
        let source = u16::from_be_bytes([*payload.first()?, *payload.get(1)?]);
        let destination = u16::from_be_bytes([*payload.get(2)?, *payload.get(3)?]);
        Some((source, destination))
    });
    Some(Packet { source, destination, protocol, ports: ports.flatten() })
}

/// What to capture.
#[derive(Debug, Clone)]
pub struct CaptureSpec {
    /// A process whose network namespace is the container's (its first process).
    pub pid: u32,
    pub duration: Duration,
    /// The file never grows past this.
    pub max_bytes: u64,
    pub filter: Filter,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureSummary {
    pub file: PathBuf,
    pub packets: u64,
    pub bytes: u64,
    /// Packets the filter left out.
    pub filtered: u64,
    /// Stopped at the size bound (else at the end of the duration).
    pub full: bool,
    pub filter: String,
}

/// Captures to `out` (created, 0600) until the duration ends or the file is full.
pub fn capture(spec: &CaptureSpec, out: &Path) -> Result<CaptureSummary, String> {
    let namespace = format!("/proc/{}/ns/net", spec.pid);
    let netns = std::fs::File::open(&namespace)
        .map_err(|e| format!("cannot open {namespace} (is process {} running, and are you root?): {e}", spec.pid))?;
    let spec = spec.clone();
    let out = out.to_path_buf();
    // A thread of its own: entering a namespace changes the calling thread only, and this one
    // ends with the capture.
    std::thread::Builder::new()
        .name("picket-capture".into())
        .spawn(move || {
            nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("cannot enter the network namespace of process {}: {e}", spec.pid))?;
            capture_here(&spec, &out)
        })
        .map_err(|e| format!("cannot start the capture thread: {e}"))?
        .join()
        .map_err(|_| "the capture thread panicked".to_string())?
}

fn capture_here(spec: &CaptureSpec, out: &Path) -> Result<CaptureSummary, String> {
    use nix::sys::socket::{AddressFamily, LinkAddr, SockFlag, SockProtocol, SockType, recvfrom, socket};
    let socket = socket(AddressFamily::Packet, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::EthAll)
        .map_err(|e| format!("cannot open a packet socket (root is needed): {e}"))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_0600()
        .open(out)
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let io = |e: std::io::Error| format!("writing {}: {e}", out.display());
    let mut header = Vec::with_capacity(PCAP_HEADER);
    header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&0i32.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&(SNAPLEN as u32).to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    file.write_all(&header).map_err(io)?;
    let mut summary = CaptureSummary {
        file: out.to_path_buf(),
        packets: 0,
        bytes: PCAP_HEADER as u64,
        filtered: 0,
        full: false,
        filter: spec.filter.text.clone(),
    };
    let deadline = Instant::now() + spec.duration;
    let mut buffer = vec![0u8; SNAPLEN];
    while Instant::now() < deadline {
        let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(200));
        let timeout = nix::poll::PollTimeout::try_from(wait).unwrap_or(nix::poll::PollTimeout::NONE);
        let mut poll = [nix::poll::PollFd::new(socket.as_fd(), nix::poll::PollFlags::POLLIN)];
        if !matches!(nix::poll::poll(&mut poll, timeout), Ok(n) if n > 0) {
            continue;
        }
        let (length, from) = match recvfrom::<LinkAddr>(socket.as_raw_fd(), &mut buffer) {
            Ok(got) => got,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("reading packets: {e}")),
        };
        // On loopback each packet shows once going out and once coming in: keep one.
        if from.is_some_and(|f| f.hatype() == ARPHRD_LOOPBACK && f.pkttype() == PACKET_OUTGOING) {
            continue;
        }
        let kept = &buffer[..length.min(buffer.len())];
        if !spec.filter.admits(kept) {
            summary.filtered += 1;
            continue;
        }
        let record = (RECORD_HEADER + kept.len()) as u64;
        if summary.bytes + record > spec.max_bytes {
            summary.full = true;
            break;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut head = Vec::with_capacity(RECORD_HEADER);
        head.extend_from_slice(&(now.as_secs() as u32).to_le_bytes());
        head.extend_from_slice(&now.subsec_micros().to_le_bytes());
        head.extend_from_slice(&(kept.len() as u32).to_le_bytes());
        head.extend_from_slice(&(length as u32).to_le_bytes());
        file.write_all(&head).and_then(|()| file.write_all(kept)).map_err(io)?;
        summary.packets += 1;
        summary.bytes += record;
    }
    file.flush().map_err(io)?;
    Ok(summary)
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP frame from 10.0.0.1:40000 to 10.0.0.2:80.
    fn frame() -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        ip.extend_from_slice(&40000u16.to_be_bytes());
        ip.extend_from_slice(&80u16.to_be_bytes());
        ip.extend_from_slice(&[0u8; 16]);
        f.extend_from_slice(&ip);
        f
    }

    #[test]
    fn filters_parse_and_judge_frames() {
        let f = frame();
        for (text, admits) in [
            ("", true),
            ("tcp", true),
            ("udp", false),
            ("tcp and port 80", true),
            ("tcp and port 81", false),
            ("host 10.0.0.2 and not port 22", true),
            ("not host 10.0.0.1", false),
        ] {
            assert_eq!(Filter::parse(text).expect(text).admits(&f), admits, "{text}");
        }
        for bad in ["tcp port 80", "port http", "host nothing", "tcp and", "not", "sctp"] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
        // Truncated and hostile frames never pass a filter, nor panic.
        let filter = Filter::parse("port 80").expect("filter");
        for cut in 0..f.len() {
            let _ = filter.admits(&f[..cut]);
        }
        let mut bad_header = f.clone();
        bad_header[14] = 0x41; // IHL 1: shorter than an IPv4 header
        assert!(!filter.admits(&bad_header));
    }
}

//! The layer-7 rung: HTTP request and DNS query rules per container, judged in the kernel by
//! src/agent/bpf/l7.bpf.c. HTTP: an sk_msg verdict on each message a container's TCP socket
//! sends that starts a request (method, path, port): a refused request is dropped before it is
//! queued, so the client's send() fails with EACCES at once and the server never sees it, while
//! other requests on the same connection pass untouched. DNS: a cgroup_skb egress verdict on
//! each UDP query to port 53: a refused query never leaves and the send fails with EPERM. TLS:
//! the same sk_msg verdict on the ClientHello's server name (SNI): a refused handshake never
//! leaves.
//!
//! Why in the socket layer and not a proxy: the verdict costs a map lookup and a few hashes on
//! the sender's own CPU, with no extra hop, no second connection and nothing to keep alive
//! (docs/network.md has the measurements). The object is loaded only when a policy has L7
//! rules, so nodes without any pay nothing.

use std::collections::HashMap;

use aya::Ebpf;
use aya::maps::{HashMap as BpfHashMap, MapData, SockHash};
use aya::programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSockAddr, SkMsg, SkSkb, SockOps};
use serde::{Deserialize, Serialize};

use super::{ContainerPolicy, EnforceError, Mode};
use crate::agent::ring::{EventRing, RingError, per_cpu_sum};

static L7_PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/l7.bpf.o"));

pub const MAX_HTTP_RULES: usize = 16;
pub const MAX_DNS_RULES: usize = 16;
pub const MAX_TLS_RULES: usize = 16;
const METHOD_LEN: usize = 8;
const PATH_LEN: usize = 96;
const NAME_LEN: usize = 128;
const TEXT_LEN: usize = 128;
const HTTP_RULE_LEN: usize = 280;
const DNS_RULE_LEN: usize = 152;
const POLICY_HEADER: usize = 32;
/// Where the inbound HTTP rules' header starts (their rules follow its 16 bytes).
const HTTP_IN_AT: usize =
    POLICY_HEADER + MAX_HTTP_RULES * HTTP_RULE_LEN + (MAX_DNS_RULES + MAX_TLS_RULES) * DNS_RULE_LEN;
const POLICY_LEN: usize = HTTP_IN_AT + 16 + MAX_HTTP_RULES * HTTP_RULE_LEN;
const EVENT_LEN: usize = 96 + TEXT_LEN;
/// Bytes of a DNS header.
const DNS_HEADER: usize = 12;
const NO_RULE: u32 = u32::MAX;

const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(FNV_BASIS, |h, b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

/// Requests one HTTP rule covers: a method (none: any), a path (`/admin*`: every path that
/// starts so; else the whole path, before any `?`), a Host header's name (`shop.example`,
/// `*.shop.example`; none: any host), destination ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpMatch {
    #[serde(default)]
    pub method: Option<String>,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Inclusive; (0, 65535): any port.
    pub ports: (u16, u16),
}

impl HttpMatch {
    fn check(&self) -> Result<(), String> {
        if let Some(method) = &self.method
            && (method.is_empty() || method.len() > METHOD_LEN || !method.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(format!("method {method:?}: capital letters, at most {METHOD_LEN} (GET, DELETE)"));
        }
        let bare = self.path.strip_suffix('*').unwrap_or(&self.path);
        if !self.path.starts_with('/') {
            return Err(format!("path {:?} must start with /", self.path));
        }
        if bare.contains(['*', ' ', '?']) {
            return Err(format!("path {:?}: '*' only at its end, and no spaces or '?'", self.path));
        }
        if bare.len() > PATH_LEN {
            return Err(format!("path {:?}: at most {PATH_LEN} bytes", self.path));
        }
        if self.ports.0 > self.ports.1 {
            return Err(format!("ports {}-{} run backwards", self.ports.0, self.ports.1));
        }
        if let Some(host) = &self.host {
            check_name(host).map_err(|e| e.replace("DNS name", "host"))?;
        }
        Ok(())
    }

    /// Whether it covers a request (the kernel's test, for replay and tests). `host` is the
    /// request's Host header (its port, if any, is not the name).
    pub fn covers(&self, method: &str, path: &str, host: Option<&str>, port: u16) -> bool {
        let path = path.split(['?', ' ']).next().unwrap_or(path);
        let path = &path[..path.len().min(PATH_LEN)];
        let path_ok = match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == self.path,
        };
        let host_ok = match (&self.host, host) {
            (None, _) => true,
            (Some(pattern), Some(host)) => name_covers(pattern, host.trim().split(':').next().unwrap_or_default()),
            (Some(_), None) => false,
        };
        self.method.as_deref().is_none_or(|m| m == method)
            && path_ok
            && host_ok
            && (self.ports.0..=self.ports.1).contains(&port)
    }
}

impl std::fmt::Display for HttpMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports = super::network::ports_text(self.ports);
        let host = self.host.as_deref().map(|h| format!(" host {h}")).unwrap_or_default();
        write!(f, "{} {}{host}{ports}", self.method.as_deref().unwrap_or("*"), self.path)
    }
}

/// A DNS name pattern: `example.com` (that name), `*.example.com` (every name under it).
fn check_name(pattern: &str) -> Result<(), String> {
    let bare = pattern.strip_prefix("*.").unwrap_or(pattern);
    if bare.is_empty() || bare.contains('*') {
        return Err(format!("DNS name {pattern:?}: a name, or *. and a name"));
    }
    if !bare.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_') {
        return Err(format!("DNS name {pattern:?}: letters, digits, '-', '_' and dots only"));
    }
    if pattern.len() >= NAME_LEN - 1 {
        return Err(format!("DNS name {pattern:?}: at most {} bytes", NAME_LEN - 2));
    }
    Ok(())
}

/// Whether a DNS pattern covers `name` (the kernel's test).
pub fn name_covers(pattern: &str, name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix('*') {
        Some(suffix) => name.ends_with(suffix) && name.len() > suffix.len(),
        None => name == pattern,
    }
}

/// A container's layer-7 rules: HTTP requests, DNS names and TLS server names it may send (None:
/// any) and those it may not (a deny wins over an allow); HTTP requests it may receive (their
/// ports are its own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct L7Rules {
    #[serde(default)]
    pub http_allow: Option<Vec<HttpMatch>>,
    #[serde(default)]
    pub http_deny: Vec<HttpMatch>,
    #[serde(default)]
    pub http_in_allow: Option<Vec<HttpMatch>>,
    #[serde(default)]
    pub http_in_deny: Vec<HttpMatch>,
    #[serde(default)]
    pub dns_allow: Option<Vec<String>>,
    #[serde(default)]
    pub dns_deny: Vec<String>,
    #[serde(default)]
    pub tls_allow: Option<Vec<String>>,
    #[serde(default)]
    pub tls_deny: Vec<String>,
}

impl L7Rules {
    pub fn is_empty(&self) -> bool {
        self.http_allow.is_none()
            && self.http_deny.is_empty()
            && self.http_in_allow.is_none()
            && self.http_in_deny.is_empty()
            && self.dns_allow.is_none()
            && self.dns_deny.is_empty()
            && self.tls_allow.is_none()
            && self.tls_deny.is_empty()
    }

    /// HTTP rules in the kernel's order (denies first): an event's `rule` indexes it.
    pub fn http_rules(&self) -> Vec<(&HttpMatch, bool)> {
        let deny = self.http_deny.iter().map(|m| (m, true));
        deny.chain(self.http_allow.iter().flatten().map(|m| (m, false))).collect()
    }

    /// Inbound HTTP rules in the kernel's order (denies first).
    pub fn http_in_rules(&self) -> Vec<(&HttpMatch, bool)> {
        let deny = self.http_in_deny.iter().map(|m| (m, true));
        deny.chain(self.http_in_allow.iter().flatten().map(|m| (m, false))).collect()
    }

    pub fn dns_rules(&self) -> Vec<(&str, bool)> {
        let deny = self.dns_deny.iter().map(|n| (n.as_str(), true));
        deny.chain(self.dns_allow.iter().flatten().map(|n| (n.as_str(), false))).collect()
    }

    pub fn tls_rules(&self) -> Vec<(&str, bool)> {
        let deny = self.tls_deny.iter().map(|n| (n.as_str(), true));
        deny.chain(self.tls_allow.iter().flatten().map(|n| (n.as_str(), false))).collect()
    }

    pub fn check(&self) -> Result<(), String> {
        let http = self.http_rules();
        if http.len() > MAX_HTTP_RULES {
            return Err(format!("http: {} rules (port ranges count one each), at most {MAX_HTTP_RULES}", http.len()));
        }
        for (rule, _) in http {
            rule.check().map_err(|e| format!("http: {e}"))?;
        }
        let http_in = self.http_in_rules();
        if http_in.len() > MAX_HTTP_RULES {
            return Err(format!(
                "httpIn: {} rules (port ranges count one each), at most {MAX_HTTP_RULES}",
                http_in.len()
            ));
        }
        for (rule, _) in http_in {
            rule.check().map_err(|e| format!("httpIn: {e}"))?;
        }
        let dns = self.dns_rules();
        if dns.len() > MAX_DNS_RULES {
            return Err(format!("dns: {} names, at most {MAX_DNS_RULES}", dns.len()));
        }
        for (name, _) in dns {
            check_name(name).map_err(|e| format!("dns: {e}"))?;
        }
        let tls = self.tls_rules();
        if tls.len() > MAX_TLS_RULES {
            return Err(format!("tls: {} server names, at most {MAX_TLS_RULES}", tls.len()));
        }
        for (name, _) in tls {
            check_name(name).map_err(|e| format!("tls: {}", e.replace("DNS name", "server name")))?;
        }
        Ok(())
    }

    /// The rule an event names, as text (`deny DELETE /admin*`), or what the allowlist left
    /// out.
    pub fn describe(&self, kind: L7Kind, rule: Option<u32>) -> String {
        let index = rule.map(|r| r as usize);
        match kind {
            L7Kind::Http => match index.and_then(|i| self.http_rules().get(i).map(|(m, d)| (m.to_string(), *d))) {
                Some((text, true)) => format!("http: deny {text}"),
                Some((text, false)) => format!("http: allow {text}"),
                None => "http: not among the allowed requests".into(),
            },
            L7Kind::HttpIn => match index.and_then(|i| self.http_in_rules().get(i).map(|(m, d)| (m.to_string(), *d))) {
                Some((text, true)) => format!("httpIn: deny {text}"),
                Some((text, false)) => format!("httpIn: allow {text}"),
                None => "httpIn: not among the allowed requests".into(),
            },
            L7Kind::Dns => match index.and_then(|i| self.dns_rules().get(i).map(|(n, d)| (n.to_string(), *d))) {
                Some((name, true)) => format!("dns: deny {name}"),
                Some((name, false)) => format!("dns: allow {name}"),
                None => "dns: not among the allowed names".into(),
            },
            L7Kind::Tls => match index.and_then(|i| self.tls_rules().get(i).map(|(n, d)| (n.to_string(), *d))) {
                Some((name, true)) => format!("tls: deny {name}"),
                Some((name, false)) => format!("tls: allow {name}"),
                None => "tls: not among the allowed server names".into(),
            },
        }
    }
}

fn encode_http(out: &mut [u8], rule: &HttpMatch, deny: bool) {
    let mut method = [0u8; 8];
    if let Some(m) = &rule.method {
        method[..m.len().min(METHOD_LEN)].copy_from_slice(&m.as_bytes()[..m.len().min(METHOD_LEN)]);
    }
    let (path, prefix) = match rule.path.strip_suffix('*') {
        Some(p) => (p.as_bytes(), true),
        None => (rule.path.as_bytes(), false),
    };
    let path = &path[..path.len().min(PATH_LEN)];
    out[0..8].copy_from_slice(&u64::from_le_bytes(method).to_le_bytes());
    out[8..16].copy_from_slice(&fnv(path.iter().copied()).to_le_bytes());
    out[16..16 + path.len()].copy_from_slice(path);
    out[112..116].copy_from_slice(&u32::try_from(path.len()).unwrap_or(0).to_le_bytes());
    out[116..120].copy_from_slice(&u32::from(prefix).to_le_bytes());
    out[120..124].copy_from_slice(&u32::from(deny).to_le_bytes());
    out[124..126].copy_from_slice(&rule.ports.0.to_le_bytes());
    out[126..128].copy_from_slice(&rule.ports.1.to_le_bytes());
    if let Some(host) = &rule.host {
        // As a DNS name: hashed from its last byte back; a suffix keeps its leading dot.
        let lower = host.to_ascii_lowercase();
        let (name, suffix) = match lower.strip_prefix('*') {
            Some(rest) => (rest.as_bytes(), true),
            None => (lower.as_bytes(), false),
        };
        let name = &name[..name.len().min(NAME_LEN - 2)];
        out[136..144].copy_from_slice(&fnv(name.iter().rev().copied()).to_le_bytes());
        out[144..144 + name.len()].copy_from_slice(name);
        out[272..276].copy_from_slice(&u32::try_from(name.len()).unwrap_or(0).to_le_bytes());
        out[276..280].copy_from_slice(&u32::from(suffix).to_le_bytes());
    }
}

fn encode_dns(out: &mut [u8], pattern: &str, deny: bool) {
    let lower = pattern.to_ascii_lowercase();
    let (name, suffix) = match lower.strip_prefix('*') {
        Some(rest) => (rest.as_bytes(), true), // `.example.com`
        None => (lower.as_bytes(), false),
    };
    let name = &name[..name.len().min(NAME_LEN - 2)];
    out[0..8].copy_from_slice(&fnv(name.iter().rev().copied()).to_le_bytes());
    out[8..8 + name.len()].copy_from_slice(name);
    out[136..140].copy_from_slice(&u32::try_from(name.len()).unwrap_or(0).to_le_bytes());
    out[140..144].copy_from_slice(&u32::from(suffix).to_le_bytes());
    out[144..148].copy_from_slice(&u32::from(deny).to_le_bytes());
}

fn policy_value(mode: Mode, rules: &L7Rules) -> Vec<u8> {
    let mut value = vec![0u8; POLICY_LEN];
    let http = rules.http_rules();
    let dns = rules.dns_rules();
    let tls = rules.tls_rules();
    let words = [
        mode.code(),
        u32::from(rules.http_allow.is_some()),
        u32::try_from(http.len().min(MAX_HTTP_RULES)).unwrap_or(0),
        u32::from(rules.dns_allow.is_some()),
        u32::try_from(dns.len().min(MAX_DNS_RULES)).unwrap_or(0),
        u32::from(rules.tls_allow.is_some()),
        u32::try_from(tls.len().min(MAX_TLS_RULES)).unwrap_or(0),
        u32::from(http.iter().any(|(rule, _)| rule.host.is_some())),
    ];
    for (i, word) in words.iter().enumerate() {
        value[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    for (i, (rule, deny)) in http.iter().take(MAX_HTTP_RULES).enumerate() {
        let at = POLICY_HEADER + i * HTTP_RULE_LEN;
        encode_http(&mut value[at..at + HTTP_RULE_LEN], rule, *deny);
    }
    let names_at = POLICY_HEADER + MAX_HTTP_RULES * HTTP_RULE_LEN;
    for (i, (name, deny)) in dns.iter().take(MAX_DNS_RULES).enumerate() {
        let at = names_at + i * DNS_RULE_LEN;
        encode_dns(&mut value[at..at + DNS_RULE_LEN], name, *deny);
    }
    let tls_at = names_at + MAX_DNS_RULES * DNS_RULE_LEN;
    for (i, (name, deny)) in tls.iter().take(MAX_TLS_RULES).enumerate() {
        let at = tls_at + i * DNS_RULE_LEN;
        encode_dns(&mut value[at..at + DNS_RULE_LEN], name, *deny);
    }
    let http_in = rules.http_in_rules();
    let words = [
        u32::from(rules.http_in_allow.is_some()),
        u32::try_from(http_in.len().min(MAX_HTTP_RULES)).unwrap_or(0),
        u32::from(http_in.iter().any(|(rule, _)| rule.host.is_some())),
    ];
    for (i, word) in words.iter().enumerate() {
        value[HTTP_IN_AT + 4 * i..HTTP_IN_AT + 4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    for (i, (rule, deny)) in http_in.iter().take(MAX_HTTP_RULES).enumerate() {
        let at = HTTP_IN_AT + 16 + i * HTTP_RULE_LEN;
        encode_http(&mut value[at..at + HTTP_RULE_LEN], rule, *deny);
    }
    value
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum L7Kind {
    Http,
    /// A request the container received.
    #[serde(rename = "httpIn")]
    HttpIn,
    Dns,
    Tls,
}

impl L7Kind {
    /// How policies name its rules (`http:`, `httpIn:`, `dns:`, `tls:`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::HttpIn => "httpIn",
            Self::Dns => "dns",
            Self::Tls => "tls",
        }
    }
}

/// A request or query a container's L7 rules objected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L7Event {
    pub kind: L7Kind,
    pub action: super::AlertAction,
    /// Index into the kernel's rules of its kind; None: the allowlist left it out.
    pub rule: Option<u32>,
    pub pid: u32,
    pub uid: u32,
    /// The container's end and the server's.
    pub local: Option<std::net::SocketAddr>,
    pub remote: Option<std::net::SocketAddr>,
    pub cgroup_id: u64,
    pub timestamp_ns: u64,
    pub comm: String,
    /// `DELETE /admin`, `evil.example` (a DNS name or a TLS server name; empty: a ClientHello
    /// without one).
    pub text: String,
    /// DNS: the query's header and question as sent (what a REFUSED answer repeats).
    pub query: Vec<u8>,
    /// DNS: sent over TCP (judged on the stream; the sender's write failed, no answer is sent).
    pub over_tcp: bool,
}

/// The question's name of a DNS query (header first), dotted and lower case; None when it does
/// not read (a compression pointer, a label past the end).
pub fn question_name(query: &[u8]) -> Option<String> {
    let mut at = DNS_HEADER;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        let label = query.get(at + 1..at + 1 + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += 1 + len;
    }
    Some(labels.join("."))
}

pub fn decode(bytes: &[u8]) -> Option<L7Event> {
    if bytes.len() < EVENT_LEN {
        return None;
    }
    let mut r = crate::agent::events::Reader::new(bytes);
    let code = r.u32();
    let kind = match code {
        1 => L7Kind::Http,
        2 | 4 => L7Kind::Dns,
        3 => L7Kind::Tls,
        5 => L7Kind::HttpIn,
        _ => return None,
    };
    let over_tcp = code == 4;
    let action = match r.u32() {
        1 => super::AlertAction::Recorded,
        2 => super::AlertAction::Alerted,
        3 => super::AlertAction::Denied,
        _ => return None,
    };
    let rule = Some(r.u32()).filter(|&r| r != NO_RULE);
    let (pid, uid) = (r.u32(), r.u32());
    // A received request is judged in softirq: the task it names is anyone's.
    let (pid, uid) = if kind == L7Kind::HttpIn { (0, 0) } else { (pid, uid) };
    let (port, local_port) = (r.u16(), r.u16());
    let (cgroup_id, timestamp_ns) = (r.u64(), r.u64());
    let comm = if kind == L7Kind::HttpIn {
        let _ = r.c_string(16);
        String::new()
    } else {
        r.c_string(16)
    };
    let len = (r.u32() as usize).min(TEXT_LEN);
    let family = r.u32();
    let (local, remote) = (r.take(16), r.take(16));
    let local = crate::agent::net::address(family, local).map(|ip| std::net::SocketAddr::new(ip, local_port));
    let remote = crate::agent::net::address(family, remote).map(|ip| std::net::SocketAddr::new(ip, port));
    let bytes = r.take(TEXT_LEN).get(..len)?.to_vec();
    let (text, query) = match kind {
        L7Kind::Http | L7Kind::HttpIn | L7Kind::Tls => (String::from_utf8_lossy(&bytes).into_owned(), Vec::new()),
        L7Kind::Dns => (question_name(&bytes)?, bytes),
    };
    Some(L7Event { kind, action, rule, pid, uid, local, remote, cgroup_id, timestamp_ns, comm, text, query, over_tcp })
}

struct Loaded {
    ebpf: Ebpf,
    ring: EventRing,
    refuser: Option<super::refusals::Refuser>,
}

/// The L7 rung's state: loaded on the first policy with L7 rules.
#[derive(Default)]
pub struct L7Control {
    loaded: Option<Loaded>,
    written: HashMap<u64, Vec<u8>>,
    in_force: HashMap<u64, L7Rules>,
    malformed: u64,
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> EnforceError {
    move |source| EnforceError::Map { name, source }
}

fn program_err(hook: &'static str) -> impl Fn(aya::programs::ProgramError) -> EnforceError {
    move |source| EnforceError::Attach { hook, source }
}

/// A socket map's descriptor, for the programs that attach to it.
fn sock_hash_fd(ebpf: &Ebpf, name: &'static str) -> Result<aya::maps::sock::SockMapFd, EnforceError> {
    let socks: SockHash<&MapData, u64> =
        SockHash::try_from(ebpf.map(name).ok_or(EnforceError::Missing(name))?).map_err(map_err(name))?;
    socks.fd().try_clone().map_err(|e| EnforceError::Unsupported {
        index: 0,
        cgroup_id: 0,
        message: format!("{name}: {e}"),
    })
}

fn load() -> Result<Loaded, EnforceError> {
    let mut ebpf = Ebpf::load(L7_PROGRAM).map_err(EnforceError::Load)?;
    let root = crate::agent::attribution::unified_root();
    let cgroup = std::fs::File::open(&root).map_err(|e| EnforceError::Unsupported {
        index: 0,
        cgroup_id: 0,
        message: format!("{}: {e}", root.display()),
    })?;
    for hook in ["l7_connect4", "l7_connect6"] {
        let program: &mut CgroupSockAddr =
            ebpf.program_mut(hook).ok_or(EnforceError::Missing(hook))?.try_into().map_err(program_err(hook))?;
        program.load().map_err(program_err(hook))?;
        program.attach(&cgroup, CgroupAttachMode::Single).map_err(program_err(hook))?;
    }
    let sockops: &mut SockOps = ebpf
        .program_mut("l7_sockops")
        .ok_or(EnforceError::Missing("l7_sockops"))?
        .try_into()
        .map_err(program_err("l7_sockops"))?;
    sockops.load().map_err(program_err("l7_sockops"))?;
    sockops.attach(&cgroup, CgroupAttachMode::Single).map_err(program_err("l7_sockops"))?;
    let socks_fd = sock_hash_fd(&ebpf, "l7_socks")?;
    let http: &mut SkMsg = ebpf
        .program_mut("l7_http")
        .ok_or(EnforceError::Missing("l7_http"))?
        .try_into()
        .map_err(program_err("l7_http"))?;
    http.load().map_err(program_err("l7_http"))?;
    http.attach(&socks_fd).map_err(program_err("l7_http"))?;
    let in_socks_fd = sock_hash_fd(&ebpf, "l7_in_socks")?;
    let http_in: &mut SkSkb = ebpf
        .program_mut("l7_http_in")
        .ok_or(EnforceError::Missing("l7_http_in"))?
        .try_into()
        .map_err(program_err("l7_http_in"))?;
    http_in.load().map_err(program_err("l7_http_in"))?;
    http_in.attach(&in_socks_fd).map_err(program_err("l7_http_in"))?;
    let dns: &mut CgroupSkb =
        ebpf.program_mut("l7_dns").ok_or(EnforceError::Missing("l7_dns"))?.try_into().map_err(program_err("l7_dns"))?;
    dns.load().map_err(program_err("l7_dns"))?;
    dns.attach(&cgroup, CgroupSkbAttachType::Egress, CgroupAttachMode::Single).map_err(program_err("l7_dns"))?;
    let ring = EventRing::take(&mut ebpf, "l7_events", None)?;
    let refuser = match super::refusals::Refuser::start() {
        Ok(refuser) => Some(refuser),
        Err(e) => {
            crate::say!("picket: refused DNS queries get no REFUSED answer and refused connections no reset ({e})");
            None
        }
    };
    Ok(Loaded { ebpf, ring, refuser })
}

impl L7Control {
    /// Puts every container's L7 rules in force (policies without any are left out, and their
    /// cgroups' earlier rules removed). Invalid rules are refused before anything is written.
    /// The first rules load the programs: that must happen inside a tokio runtime (their ring).
    pub fn apply(&mut self, policies: &[ContainerPolicy]) -> Result<(), EnforceError> {
        let with_rules: Vec<(&ContainerPolicy, &L7Rules)> =
            policies.iter().filter_map(|p| p.l7.as_ref().filter(|r| !r.is_empty()).map(|r| (p, r))).collect();
        for (index, (policy, rules)) in with_rules.iter().enumerate() {
            rules.check().map_err(|message| EnforceError::Unsupported {
                index,
                cgroup_id: policy.cgroup_id,
                message,
            })?;
        }
        if with_rules.is_empty() && self.loaded.is_none() {
            return Ok(());
        }
        if self.loaded.is_none() {
            self.loaded = Some(load()?);
        }
        let Some(loaded) = self.loaded.as_mut() else { return Ok(()) };
        let mut table: BpfHashMap<&mut MapData, u64, [u8; POLICY_LEN]> =
            BpfHashMap::try_from(loaded.ebpf.map_mut("l7_policies").ok_or(EnforceError::Missing("l7_policies"))?)
                .map_err(map_err("l7_policies"))?;
        let mut next: HashMap<u64, Vec<u8>> = HashMap::new();
        for (policy, rules) in &with_rules {
            next.insert(policy.cgroup_id, policy_value(policy.mode, rules));
        }
        for (cgroup, value) in &next {
            if self.written.get(cgroup) != Some(value) {
                let fixed: [u8; POLICY_LEN] = value.as_slice().try_into().unwrap_or([0u8; POLICY_LEN]);
                table.insert(cgroup, fixed, 0).map_err(map_err("l7_policies"))?;
            }
        }
        for cgroup in self.written.keys() {
            if !next.contains_key(cgroup) {
                let _ = table.remove(cgroup);
            }
        }
        self.written = next;
        self.in_force = with_rules.iter().map(|(p, r)| (p.cgroup_id, (*r).clone())).collect();
        Ok(())
    }

    /// The rule of a cgroup's L7 rules an event names, as text.
    pub fn describe(&self, event: &L7Event) -> String {
        match self.in_force.get(&event.cgroup_id) {
            Some(rules) => rules.describe(event.kind, event.rule),
            None => format!("{} rules no longer in force", event.kind.as_str()),
        }
    }

    /// Waits for refusals (none loaded: never); refused DNS queries are answered REFUSED.
    pub async fn next_batch(&mut self) -> Result<Vec<L7Event>, RingError> {
        let Some(loaded) = self.loaded.as_mut() else { return std::future::pending().await };
        let batch = loaded.ring.next_batch(decode, &mut self.malformed).await?;
        if let Some(refuser) = loaded.refuser.as_mut() {
            for event in batch.iter().filter(|e| e.action == super::AlertAction::Denied) {
                let (Some(client), Some(server)) = (event.local, event.remote) else { continue };
                let pid = event.pid;
                match (event.kind, event.over_tcp) {
                    (L7Kind::Dns, false) => {
                        let query = event.query.clone();
                        refuser.refuse(super::refusals::Refusal { pid, client, server, query });
                    }
                    _ => refuser.reset(super::refusals::Reset { pid, cgroup_id: event.cgroup_id, client, server }),
                }
            }
        }
        Ok(batch)
    }

    pub fn remaining(&mut self) -> Vec<L7Event> {
        match self.loaded.as_mut() {
            Some(loaded) => loaded.ring.remaining(decode, &mut self.malformed),
            None => Vec::new(),
        }
    }

    /// Events the ring had no room for, and records too short to read.
    pub fn dropped(&self) -> u64 {
        let ring = self.loaded.as_ref().and_then(|l| per_cpu_sum(&l.ebpf, "l7_drops").ok()).unwrap_or(0);
        let answers = self.loaded.as_ref().and_then(|l| l.refuser.as_ref()).map_or(0, |r| r.dropped);
        ring + answers + self.malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(method: Option<&str>, path: &str) -> HttpMatch {
        HttpMatch { method: method.map(str::to_string), path: path.into(), host: None, ports: (0, u16::MAX) }
    }

    #[test]
    fn http_rules_encode_in_the_c_layout_and_cover_what_the_kernel_would() {
        let admin = HttpMatch { ports: (8080, 8080), ..rule(Some("DELETE"), "/admin*") };
        let mut out = [0u8; HTTP_RULE_LEN];
        encode_http(&mut out, &admin, true);
        assert_eq!(&out[0..6], b"DELETE");
        assert_eq!(u64::from_le_bytes(out[8..16].try_into().unwrap()), fnv(b"/admin".iter().copied()));
        assert_eq!(&out[16..22], b"/admin");
        assert_eq!(u32::from_le_bytes(out[112..116].try_into().unwrap()), 6);
        assert_eq!(u32::from_le_bytes(out[116..120].try_into().unwrap()), 1, "a prefix");
        assert_eq!(u32::from_le_bytes(out[120..124].try_into().unwrap()), 1, "a deny");
        assert_eq!(u16::from_le_bytes(out[124..126].try_into().unwrap()), 8080);
        assert!(admin.covers("DELETE", "/admin/users?id=1", None, 8080));
        assert!(!admin.covers("GET", "/admin", None, 8080));
        assert!(!admin.covers("DELETE", "/admin", None, 8081));
        assert!(rule(None, "/health").covers("GET", "/health?x", None, 80));
        assert!(!rule(None, "/health").covers("GET", "/healthz", None, 80), "no star: the whole path");
        assert_eq!(admin.to_string(), "DELETE /admin* port 8080");
    }

    #[test]
    fn a_host_is_encoded_as_a_dns_name_and_matched_without_its_port() {
        let evil = HttpMatch { host: Some("*.Evil.Example".into()), ..rule(None, "/*") };
        let mut out = [0u8; HTTP_RULE_LEN];
        encode_http(&mut out, &evil, true);
        assert_eq!(u64::from_le_bytes(out[136..144].try_into().unwrap()), fnv(b".evil.example".iter().rev().copied()));
        assert_eq!(&out[144..157], b".evil.example");
        assert_eq!(u32::from_le_bytes(out[272..276].try_into().unwrap()), 13);
        assert_eq!(u32::from_le_bytes(out[276..280].try_into().unwrap()), 1, "a suffix");
        assert!(evil.covers("GET", "/", Some("c2.EVIL.example:8080"), 80));
        assert!(!evil.covers("GET", "/", Some("evil.example"), 80), "subdomains only");
        assert!(!evil.covers("GET", "/", None, 80), "no Host header: no host rule covers it");
        assert!(rule(None, "/*").covers("GET", "/", None, 80), "no host in the rule: any");
        assert_eq!(evil.to_string(), "* /* host *.Evil.Example");
        // Received requests' rules follow the sent ones' and the names', with their own header.
        let inbound = L7Rules { http_in_deny: vec![evil.clone()], ..Default::default() };
        let value = policy_value(Mode::Protect, &inbound);
        assert_eq!(value.len(), 13_872, "struct l7_policy");
        assert_eq!(u32::from_le_bytes(value[8..12].try_into().unwrap()), 0, "no rule on what it sends");
        assert_eq!(u32::from_le_bytes(value[HTTP_IN_AT + 4..HTTP_IN_AT + 8].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(value[HTTP_IN_AT + 8..HTTP_IN_AT + 12].try_into().unwrap()), 1, "hosts");
        assert_eq!(&value[HTTP_IN_AT + 16 + 144..HTTP_IN_AT + 16 + 157], b".evil.example");
        assert_eq!(inbound.describe(L7Kind::HttpIn, Some(0)), "httpIn: deny * /* host *.Evil.Example");
        let mut plain = [0u8; HTTP_RULE_LEN];
        encode_http(&mut plain, &rule(None, "/*"), false);
        assert!(plain[136..].iter().all(|b| *b == 0), "no host: host_len 0");
        // The policy says when requests' heads must be read for their Host.
        let with = L7Rules { http_deny: vec![evil.clone()], ..Default::default() };
        assert_eq!(u32::from_le_bytes(policy_value(Mode::Protect, &with)[28..32].try_into().unwrap()), 1);
        let without = L7Rules { http_deny: vec![rule(None, "/*")], ..Default::default() };
        assert_eq!(u32::from_le_bytes(policy_value(Mode::Protect, &without)[28..32].try_into().unwrap()), 0);
        let bad = L7Rules {
            http_deny: vec![HttpMatch { host: Some("a b".into()), ..rule(None, "/") }],
            ..Default::default()
        };
        assert!(bad.check().unwrap_err().contains("host \"a b\""), "{:?}", bad.check());
    }

    #[test]
    fn dns_patterns_hash_their_reversed_bytes_and_match_suffixes() {
        let mut out = [0u8; DNS_RULE_LEN];
        encode_dns(&mut out, "*.Evil.Example", true);
        assert_eq!(&out[8..21], b".evil.example");
        assert_eq!(u64::from_le_bytes(out[0..8].try_into().unwrap()), fnv(b".evil.example".iter().rev().copied()));
        assert_eq!(u32::from_le_bytes(out[140..144].try_into().unwrap()), 1, "a suffix");
        assert!(name_covers("*.evil.example", "a.b.EVIL.example."));
        assert!(!name_covers("*.evil.example", "evil.example"), "subdomains only");
        assert!(name_covers("evil.example", "evil.example"));
        assert!(!name_covers("evil.example", "notevil.example"));
    }

    #[test]
    fn bad_rules_are_refused_naming_them_and_events_decode() {
        let bad = |rules: L7Rules| rules.check().unwrap_err();
        assert!(bad(L7Rules { http_deny: vec![rule(Some("get"), "/")], ..Default::default() }).contains("capital"));
        assert!(bad(L7Rules { http_deny: vec![rule(None, "admin")], ..Default::default() }).contains("start with /"));
        assert!(bad(L7Rules { http_deny: vec![rule(None, "/a*b")], ..Default::default() }).contains("only at its end"));
        assert!(bad(L7Rules { dns_deny: vec!["ev*l.example".into()], ..Default::default() }).contains("*. and a name"));
        let many = L7Rules { http_deny: vec![rule(None, "/"); MAX_HTTP_RULES + 1], ..Default::default() };
        assert!(bad(many).contains("at most 16"));
        let rules = L7Rules {
            http_deny: vec![rule(Some("DELETE"), "/admin*")],
            http_allow: Some(vec![rule(Some("GET"), "/*")]),
            ..Default::default()
        };
        assert_eq!(rules.describe(L7Kind::Http, Some(0)), "http: deny DELETE /admin*");
        assert_eq!(rules.describe(L7Kind::Http, Some(1)), "http: allow GET /*");
        assert_eq!(rules.describe(L7Kind::Http, None), "http: not among the allowed requests");
        let rules = L7Rules { tls_deny: vec!["*.evil.example".into()], ..rules };
        assert_eq!(rules.describe(L7Kind::Tls, Some(0)), "tls: deny *.evil.example");
        let value = policy_value(Mode::Protect, &rules);
        assert_eq!(value.len(), POLICY_LEN, "struct l7_policy");
        assert_eq!(u32::from_le_bytes(value[0..4].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(value[4..8].try_into().unwrap()), 1, "an allowlist");
        assert_eq!(u32::from_le_bytes(value[8..12].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(value[20..24].try_into().unwrap()), 0, "no TLS allowlist");
        assert_eq!(u32::from_le_bytes(value[24..28].try_into().unwrap()), 1, "one TLS rule");
        let tls_at = POLICY_HEADER + MAX_HTTP_RULES * HTTP_RULE_LEN + MAX_DNS_RULES * DNS_RULE_LEN;
        assert_eq!(&value[tls_at + 8..tls_at + 21], b".evil.example");

        let mut record = vec![0u8; EVENT_LEN];
        record[0..4].copy_from_slice(&1u32.to_le_bytes());
        record[4..8].copy_from_slice(&3u32.to_le_bytes());
        record[8..12].copy_from_slice(&0u32.to_le_bytes());
        record[12..16].copy_from_slice(&77u32.to_le_bytes());
        record[20..22].copy_from_slice(&8080u16.to_le_bytes());
        record[22..24].copy_from_slice(&40000u16.to_le_bytes());
        record[24..32].copy_from_slice(&42u64.to_le_bytes());
        record[40..44].copy_from_slice(b"curl");
        record[56..60].copy_from_slice(&13u32.to_le_bytes());
        record[60..64].copy_from_slice(&2u32.to_le_bytes());
        record[64..68].copy_from_slice(&[127, 0, 0, 1]);
        record[80..84].copy_from_slice(&[127, 0, 0, 2]);
        record[96..109].copy_from_slice(b"DELETE /admin");
        let event = decode(&record).expect("decodes");
        assert_eq!((event.kind, event.action, event.rule), (L7Kind::Http, super::super::AlertAction::Denied, Some(0)));
        assert_eq!((event.pid, event.cgroup_id, event.comm.as_str()), (77, 42, "curl"));
        assert_eq!(event.local, Some("127.0.0.1:40000".parse().unwrap()));
        assert_eq!(event.remote, Some("127.0.0.2:8080".parse().unwrap()));
        assert_eq!(event.text, "DELETE /admin");
        assert_eq!(decode(&record[..EVENT_LEN - 1]), None);
        record[56..60].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&record).map(|e| e.text.len()), Some(TEXT_LEN), "a length past the text is cut");
        // A DNS query: its name read from the question; a broken one does not decode.
        record[0..4].copy_from_slice(&2u32.to_le_bytes());
        let query = [&[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0][..], b"\x02c2\x04EVIL\x07example\x00\x00\x01\x00\x01"]
            .concat();
        record[56..60].copy_from_slice(&(query.len() as u32).to_le_bytes());
        record[96..96 + query.len()].copy_from_slice(&query);
        let event = decode(&record).expect("a DNS event");
        assert_eq!((event.text.as_str(), event.query.as_slice()), ("c2.evil.example", query.as_slice()));
        assert!(!event.over_tcp);
        record[0..4].copy_from_slice(&4u32.to_le_bytes());
        let event = decode(&record).expect("a DNS-over-TCP event");
        assert_eq!((event.kind, event.over_tcp), (L7Kind::Dns, true));
        record[108] = 0xc0;
        assert_eq!(decode(&record), None, "a compression pointer in the question");
        record[4..8].copy_from_slice(&9u32.to_le_bytes());
        assert_eq!(decode(&record), None, "no such verdict");
    }
}

//! The agent's policy file (`picket agent run --policy FILE`, `picket agent policy check FILE`):
//! per-container rules in YAML, naming containers by name or id, resolved to the cgroups of the
//! containers running now. Every mistake is reported with the file and the rule before anything
//! reaches the kernel.
//!
//! ```yaml
//! containers:
//!   - name: web                 # or id: 4f1c0a9e2b7d (at least 12 hex digits of the id)
//!     namespace: payments       # on Kubernetes: only the pods of this namespace
//!     image: registry.example/web:*   # and/or: only containers of this image (`*` any run)
//!     owner: Deployment/web     # and/or: only the pods of this workload
//!     mode: protect             # discover | monitor | protect
//!     allowExec: [/bin/busybox] # absent: any executable
//!     files:
//!       - prefix: /etc/
//!         deny: [write]         # read, write
//!       - prefix: /etc/app/     # the longest prefix decides: deny: [] carves an exception
//!         deny: []
//!     connect:                  # connects and addressed sends (the cgroup hooks)
//!       allow:                  # absent: any destination not denied
//!         - to: 10.0.0.0/8      # an address or CIDR; absent: any
//!           ports: [443, 8000-8080]
//!           protocol: tcp       # tcp | udp; absent: both
//!       deny:
//!         - ports: [3333]
//!     http:                     # requests it sends (the L7 rung, in the kernel)
//!       deny:
//!         - method: DELETE      # absent: any method
//!           path: /admin*       # `*` at the end: every path that starts so
//!           ports: [8080]       # absent: any port
//!       allow:                  # absent: any request not denied
//!         - path: /api/*
//!     dns:                      # names it asks for over UDP
//!       deny: ["*.evil.example", miner.example]
//!       allow: ["*.svc.cluster.local"]   # absent: any name not denied
//!     tls:                      # server names (SNI) of the TLS connections it opens
//!       allow: [api.github.com, "*.s3.amazonaws.com"]
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::enforce::l7::{HttpMatch, L7Rules};
use super::enforce::network::{ConnectRules, Destination, Protocol};
use super::enforce::{ContainerPolicy, FileRule, Mode, validate};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub containers: Vec<PolicyRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    /// Only containers of pods in this Kubernetes namespace (a container name alone matches
    /// the same name in every namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Containers of this image (`*`: any run of characters), as the engine or the pod names it.
    #[serde(default)]
    pub image: Option<String>,
    /// Containers of the pods of this workload, `Kind/name` (`Deployment/web`).
    #[serde(default)]
    pub owner: Option<String>,
    /// Containers whose pod has every one of these labels (a host's container: whose engine
    /// labels have them).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    pub mode: Mode,
    #[serde(default)]
    pub allow_exec: Option<Vec<String>>,
    #[serde(default)]
    pub files: Vec<FileSpec>,
    #[serde(default)]
    pub connect: Option<ConnectSpec>,
    /// Inbound connections it may accept (absent: any). Those outside are refused in protect mode
    /// (the inbound rung, in the container's network namespace) and alerted in monitor mode.
    #[serde(default)]
    pub accept: Option<Vec<AcceptSpec>>,
    /// HTTP requests it may send (the L7 rung).
    #[serde(default)]
    pub http: Option<HttpSpec>,
    /// HTTP requests it may receive (the L7 rung; `ports` are its own).
    #[serde(default)]
    pub http_in: Option<HttpSpec>,
    /// DNS names it may ask for (the L7 rung).
    #[serde(default)]
    pub dns: Option<DnsSpec>,
    /// TLS server names (SNI) it may open connections to (the L7 rung).
    #[serde(default)]
    pub tls: Option<DnsSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    #[serde(default)]
    pub allow: Option<Vec<HttpRuleSpec>>,
    #[serde(default)]
    pub deny: Vec<HttpRuleSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRuleSpec {
    #[serde(default)]
    pub method: Option<String>,
    /// `/admin*` (a prefix) or a whole path; absent: any path.
    #[serde(default)]
    pub path: Option<String>,
    /// The Host header's name: `shop.example` or `*.shop.example`; absent: any host.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub ports: Vec<PortSpec>,
}

impl HttpRuleSpec {
    fn matches(&self) -> Result<Vec<HttpMatch>, String> {
        let method = self.method.as_ref().map(|m| m.to_ascii_uppercase());
        let path = self.path.clone().unwrap_or_else(|| "/*".into());
        let ranges = match self.ports.is_empty() {
            true => vec![Destination::ANY_PORT],
            false => self.ports.iter().map(PortSpec::range).collect::<Result<Vec<_>, _>>()?,
        };
        let host = self.host.as_ref().map(|h| h.to_ascii_lowercase());
        Ok(ranges
            .into_iter()
            .map(|ports| HttpMatch { method: method.clone(), path: path.clone(), host: host.clone(), ports })
            .collect())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    #[serde(default)]
    pub deny: Vec<String>,
}

/// A rule's HTTP, DNS and TLS rules for the kernel; None when it has none.
fn l7_rules(rule: &PolicyRule) -> Result<Option<L7Rules>, String> {
    let (http, http_in, dns, tls) = (rule.http.as_ref(), rule.http_in.as_ref(), rule.dns.as_ref(), rule.tls.as_ref());
    if http.is_none() && http_in.is_none() && dns.is_none() && tls.is_none() {
        return Ok(None);
    }
    let expand = |list: &[HttpRuleSpec], which: &str| -> Result<Vec<HttpMatch>, String> {
        let mut out = Vec::new();
        for (i, spec) in list.iter().enumerate() {
            out.extend(spec.matches().map_err(|e| format!("{which}[{i}]: {e}"))?);
        }
        Ok(out)
    };
    let rules = L7Rules {
        http_allow: match http.and_then(|h| h.allow.as_ref()) {
            Some(list) => Some(expand(list, "http.allow")?),
            None => None,
        },
        http_deny: match http {
            Some(h) => expand(&h.deny, "http.deny")?,
            None => Vec::new(),
        },
        http_in_allow: match http_in.and_then(|h| h.allow.as_ref()) {
            Some(list) => Some(expand(list, "httpIn.allow")?),
            None => None,
        },
        http_in_deny: match http_in {
            Some(h) => expand(&h.deny, "httpIn.deny")?,
            None => Vec::new(),
        },
        dns_allow: dns
            .and_then(|d| d.allow.as_ref())
            .map(|names| names.iter().map(|n| n.to_ascii_lowercase()).collect()),
        dns_deny: dns.map(|d| d.deny.iter().map(|n| n.to_ascii_lowercase()).collect()).unwrap_or_default(),
        tls_allow: tls
            .and_then(|t| t.allow.as_ref())
            .map(|names| names.iter().map(|n| n.to_ascii_lowercase()).collect()),
        tls_deny: tls.map(|t| t.deny.iter().map(|n| n.to_ascii_lowercase()).collect()).unwrap_or_default(),
    };
    rules.check()?;
    Ok(Some(rules))
}

/// Connections from `from` (an address or CIDR; absent: any) to the container's own ports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptSpec {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    #[serde(default)]
    pub protocol: Option<Protocol>,
}

impl AcceptSpec {
    fn sources(&self) -> Result<Vec<Destination>, String> {
        DestinationSpec {
            to: self.from.clone(),
            group: None,
            fqdn: None,
            ports: self.ports.clone(),
            protocol: self.protocol,
        }
        .destinations()
        .map_err(|e| e.replace("to: ", "from: "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectSpec {
    #[serde(default)]
    pub allow: Option<Vec<DestinationSpec>>,
    #[serde(default)]
    pub deny: Vec<DestinationSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSpec {
    #[serde(default)]
    pub to: Option<String>,
    /// A peer group (`namespace/Kind/name`, `local/IMAGE`): the addresses its pods or containers
    /// hold now, put in when the agent resolves the rules ([`PolicyFile::with_peers`]); none
    /// until then.
    #[serde(default)]
    pub group: Option<String>,
    /// A DNS name (`*.` may start it): the addresses the node's containers were given for it,
    /// put in as a group's are.
    #[serde(default)]
    pub fqdn: Option<String>,
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    #[serde(default)]
    pub protocol: Option<Protocol>,
}

/// `443` or `"8000-8080"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PortSpec {
    One(u16),
    Range(String),
}

impl PortSpec {
    fn range(&self) -> Result<(u16, u16), String> {
        match self {
            Self::One(0) => Err("port 0 is no port".into()),
            Self::One(port) => Ok((*port, *port)),
            Self::Range(text) => {
                let bad = || format!("ports: {text:?} is not a port or a range such as 8000-8080");
                let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
                let (lo, hi): (u16, u16) =
                    (lo.trim().parse().map_err(|_| bad())?, hi.trim().parse().map_err(|_| bad())?);
                if lo == 0 || lo > hi {
                    return Err(bad());
                }
                Ok((lo, hi))
            }
        }
    }
}

impl DestinationSpec {
    /// One destination per port range (none given: any port).
    fn destinations(&self) -> Result<Vec<Destination>, String> {
        if let Some(fqdn) = &self.fqdn {
            if self.to.is_some() || self.group.is_some() {
                return Err(format!("give one of to, group and fqdn (fqdn {fqdn:?})"));
            }
            for port in &self.ports {
                port.range()?;
            }
            return Ok(Vec::new());
        }
        if let Some(group) = &self.group {
            if self.to.is_some() {
                return Err(format!("give to or group, not both (group {group:?})"));
            }
            if group.split('/').filter(|part| !part.is_empty()).count() < 2 {
                return Err(format!("group: {group:?} is not a group such as shop/Deployment/api or local/IMAGE"));
            }
            // Not resolved to its addresses: it names none (never any address).
            for port in &self.ports {
                port.range()?;
            }
            return Ok(Vec::new());
        }
        let net = match &self.to {
            None => None,
            Some(text) => Some(
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("to: {text:?} is not an address or a CIDR such as 10.0.0.0/8"))?,
            ),
        };
        if self.ports.is_empty() {
            return Ok(vec![Destination { net, ports: Destination::ANY_PORT, protocol: self.protocol }]);
        }
        self.ports.iter().map(|p| Ok(Destination { net, ports: p.range()?, protocol: self.protocol })).collect()
    }
}

impl ConnectSpec {
    fn rules(&self) -> Result<ConnectRules, String> {
        let expand = |list: &[DestinationSpec], which: &str| -> Result<Vec<Destination>, String> {
            let mut out = Vec::new();
            for (i, spec) in list.iter().enumerate() {
                out.extend(spec.destinations().map_err(|e| format!("connect.{which}[{i}]: {e}"))?);
            }
            Ok(out)
        };
        let allow = match &self.allow {
            Some(list) => Some(expand(list, "allow")?),
            None => None,
        };
        let rules = ConnectRules { allow, deny: expand(&self.deny, "deny")? };
        rules.check()?;
        Ok(rules)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub prefix: String,
    pub deny: Vec<Access>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyFileError {
    #[error("policy {path}: {message}", path = .path.display())]
    File { path: PathBuf, message: String },
    #[error("policy {path}: containers[{index}]: {message}", path = .path.display())]
    Rule { path: PathBuf, index: usize, message: String },
}

/// Each group's addresses now (`namespace/Kind/name` or `local/IMAGE` → its pods' or
/// containers' addresses), for rules that name peers by group.
pub type PeerAddresses = std::collections::HashMap<String, Vec<std::net::IpAddr>>;

/// A running container the rules can name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningContainer {
    pub id: String,
    pub name: Option<String>,
    /// Its pod's namespace, on a Kubernetes node.
    pub namespace: Option<String>,
    /// Its image, as the engine or the pod names it.
    pub image: Option<String>,
    /// The workload owning its pod, `Kind/name`.
    pub owner: Option<String>,
    /// Every cgroup v2 id of the container (runtimes make more than one, e.g. Podman's
    /// `…/container` sub-cgroup).
    pub cgroups: Vec<u64>,
    /// The programs its probes run (as paths in the container): allowed whatever the rule says,
    /// since its platform runs them ([`super::probes`]).
    pub probe_programs: Vec<String>,
    /// Its pod's labels, or a host container's engine labels.
    pub labels: std::collections::BTreeMap<String, String>,
}

impl PolicyRule {
    fn matches(&self, container: &RunningContainer) -> bool {
        if let Some(namespace) = &self.namespace
            && container.namespace.as_deref() != Some(namespace.as_str())
        {
            return false;
        }
        if let Some(image) = &self.image
            && !container.image.as_deref().is_some_and(|i| crate::rules::glob_match(image, i))
        {
            return false;
        }
        if let Some(owner) = &self.owner
            && container.owner.as_deref() != Some(owner.as_str())
        {
            return false;
        }
        if !self.labels.iter().all(|(key, value)| container.labels.get(key) == Some(value)) {
            return false;
        }
        match (&self.name, &self.id) {
            (Some(name), _) => container.name.as_deref() == Some(name.as_str()),
            (None, Some(id)) => container.id.starts_with(&id.to_ascii_lowercase()),
            (None, None) => self.image.is_some() || self.owner.is_some() || !self.labels.is_empty(),
        }
    }

    /// The kernel policy of one cgroup under this rule, an allowlist widened by the container's
    /// probe programs.
    fn for_cgroup(&self, cgroup_id: u64, probe_programs: &[String]) -> ContainerPolicy {
        let exec_allowlist = self.allow_exec.clone().map(|mut allowed| {
            for program in probe_programs {
                if !allowed.contains(program) {
                    allowed.push(program.clone());
                }
            }
            allowed
        });
        ContainerPolicy {
            cgroup_id,
            mode: self.mode,
            exec_allowlist,
            file_rules: self
                .files
                .iter()
                .map(|f| FileRule {
                    prefix: f.prefix.clone(),
                    deny_read: f.deny.contains(&Access::Read),
                    deny_write: f.deny.contains(&Access::Write),
                })
                .collect(),
            // Checked when the file was parsed.
            connect: self.connect.as_ref().and_then(|c| c.rules().ok()),
            l7: l7_rules(self).ok().flatten(),
        }
    }
}

impl PolicyRule {
    /// Whether its connect rules name a peer group or a DNS name.
    pub fn names_peer_groups(&self) -> bool {
        self.connect
            .as_ref()
            .is_some_and(|c| c.allow.iter().flatten().chain(&c.deny).any(|d| d.group.is_some() || d.fqdn.is_some()))
    }

    /// The inbound connections it may accept as kernel rules (source, its own port, protocol);
    /// None: it names none (any is accepted).
    pub fn accept_sources(&self) -> Option<Vec<Destination>> {
        let list = self.accept.as_ref()?;
        Some(list.iter().flat_map(|spec| spec.sources().unwrap_or_default()).collect())
    }

    /// Whether an inbound connection from `remote` to the local `port` is one it may accept.
    pub fn accepts(&self, remote: std::net::IpAddr, port: u16, protocol: u32) -> bool {
        let Some(list) = &self.accept else { return true };
        list.iter().flat_map(|spec| spec.sources().unwrap_or_default()).any(|d| d.covers(remote, port, protocol))
    }
}

impl PolicyFile {
    pub fn load(path: &Path) -> Result<Self, PolicyFileError> {
        let text = crate::input::read_text(path, crate::input::MAX_TEXT)
            .map_err(|e| PolicyFileError::File { path: path.to_path_buf(), message: e.to_string() })?;
        Self::parse(path, &text)
    }

    /// Parses and checks every rule as the kernel maps will hold it.
    pub fn parse(path: &Path, text: &str) -> Result<Self, PolicyFileError> {
        let file: PolicyFile = if is_policy_as_code(text) {
            from_policy_documents(path, text)?
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                let (line, column, message) = crate::yaml::explain(text, &e);
                PolicyFileError::File {
                    path: path.to_path_buf(),
                    message: format!("line {line} column {column}: {message}"),
                }
            })?
        };
        let mut names = BTreeSet::new();
        for (index, rule) in file.containers.iter().enumerate() {
            let fail = |message: String| PolicyFileError::Rule { path: path.to_path_buf(), index, message };
            match (&rule.name, &rule.id) {
                (Some(_), Some(_)) => return Err(fail("give name or id, not both".into())),
                (None, None) if rule.image.is_none() && rule.owner.is_none() && rule.labels.is_empty() => {
                    return Err(fail("name, id, image, owner or labels is needed to say which containers".into()));
                }
                (Some(name), None) if name.is_empty() => return Err(fail("name is empty".into())),
                (None, Some(id)) if id.len() < 12 || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    return Err(fail(format!("id {id:?} must be 12 to 64 hex digits of a container id")));
                }
                _ => {}
            }
            if rule.namespace.as_deref() == Some("") {
                return Err(fail("namespace is empty".into()));
            }
            if rule.image.as_deref() == Some("") {
                return Err(fail("image is empty".into()));
            }
            if let Some(owner) = &rule.owner
                && !owner.split_once('/').is_some_and(|(kind, name)| !kind.is_empty() && !name.is_empty())
            {
                return Err(fail(format!("owner {owner:?} must be Kind/name, such as Deployment/web")));
            }
            let key = [&rule.name, &rule.id, &rule.image, &rule.owner]
                .into_iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            let scoped = match &rule.namespace {
                Some(namespace) => format!("{namespace}/{key}"),
                None => key.clone(),
            };
            if !names.insert(scoped.clone()) {
                return Err(fail(format!("{scoped:?} has a rule already")));
            }
            if let Some(connect) = &rule.connect {
                connect.rules().map_err(fail)?;
            }
            l7_rules(rule).map_err(fail)?;
            for (i, spec) in rule.accept.iter().flatten().enumerate() {
                spec.sources().map_err(|e| fail(format!("accept[{i}]: {e}")))?;
            }
            // The limits of the kernel maps, checked on a stand-in cgroup id.
            validate(&[rule.for_cgroup(1, &[])]).map_err(|e| {
                let text = e.to_string();
                fail(text.strip_prefix("policy 0 (cgroup 1): ").unwrap_or(&text).to_string())
            })?;
        }
        Ok(file)
    }

    /// The rules with each peer group put as the addresses it holds now (a group holding none
    /// names no address: an allow of it allows nothing).
    pub fn with_peers(&self, peers: &PeerAddresses) -> PolicyFile {
        let addresses_of = |spec: &DestinationSpec| -> Option<Vec<std::net::IpAddr>> {
            if let Some(group) = &spec.group {
                return Some(peers.get(group).cloned().unwrap_or_default());
            }
            let fqdn = spec.fqdn.as_deref()?.trim_end_matches('.').to_ascii_lowercase();
            let mut found: Vec<std::net::IpAddr> = match fqdn.strip_prefix("*.") {
                Some(domain) => peers
                    .iter()
                    .filter(|(name, _)| name.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.')))
                    .flat_map(|(_, a)| a.iter().copied())
                    .collect(),
                None => peers.get(&fqdn).cloned().unwrap_or_default(),
            };
            found.sort();
            found.dedup();
            Some(found)
        };
        let expand = |list: &[DestinationSpec]| -> Vec<DestinationSpec> {
            list.iter()
                .flat_map(|spec| match addresses_of(spec) {
                    None => vec![spec.clone()],
                    Some(addresses) => addresses
                        .into_iter()
                        .map(|address| DestinationSpec {
                            to: Some(address.to_string()),
                            group: None,
                            fqdn: None,
                            ..spec.clone()
                        })
                        .collect(),
                })
                .collect()
        };
        let mut file = self.clone();
        for rule in &mut file.containers {
            if let Some(connect) = rule.connect.as_mut() {
                connect.allow = connect.allow.as_deref().map(expand);
                connect.deny = expand(&connect.deny);
            }
        }
        file
    }

    /// Whether some rule names a peer group or a DNS name (its addresses must be kept up to date).
    pub fn names_peer_groups(&self) -> bool {
        self.containers.iter().any(PolicyRule::names_peer_groups)
    }

    /// Every rule as a policy of a stand-in cgroup (index = rule index), to check before any
    /// container is running that the enforcing rung can hold each of them.
    pub fn resolve_all(&self) -> Vec<ContainerPolicy> {
        (0..self.containers.len()).zip(&self.containers).map(|(i, rule)| rule.for_cgroup(i as u64 + 1, &[])).collect()
    }

    /// The kernel policies for the containers running now: every cgroup of every container a
    /// rule names (the first rule that names a container wins). Rules naming no running container
    /// wait for it.
    pub fn resolve(&self, running: &[RunningContainer]) -> Vec<ContainerPolicy> {
        self.resolve_indexed(running).into_iter().map(|(_, policy)| policy).collect()
    }

    /// As `resolve`, each policy with the index of the rule it comes from.
    pub fn resolve_indexed(&self, running: &[RunningContainer]) -> Vec<(usize, ContainerPolicy)> {
        let mut policies = Vec::new();
        let mut seen = BTreeSet::new();
        for container in running {
            let Some((index, rule)) = self.containers.iter().enumerate().find(|(_, r)| r.matches(container)) else {
                continue;
            };
            for &cgroup_id in &container.cgroups {
                if seen.insert(cgroup_id) {
                    policies.push((index, rule.for_cgroup(cgroup_id, &container.probe_programs)));
                }
            }
        }
        policies.sort_by_key(|(_, p)| p.cgroup_id);
        policies
    }
}

/// A file in the policy-as-code format (`apiVersion: picket.dev/v1`) rather than the agent's own.
/// Every mistake of a policy text the agent would refuse, each at its line and column (what the
/// console's editor marks as it is typed): the policy-as-code checks for PicketPolicy
/// documents, then what the agent itself checks (a rule it cannot hold yet, the agent's own
/// format's rules).
pub fn problems(path: &Path, text: &str) -> Vec<crate::policy::validate::Problem> {
    use crate::policy::validate::{Problem, validate_text};
    if is_policy_as_code(text) {
        let (_, problems) = validate_text(path, text);
        if !problems.is_empty() {
            return problems;
        }
    }
    let Err(error) = PolicyFile::parse(path, text) else { return Vec::new() };
    let (line, column, message) = match &error {
        PolicyFileError::File { message, .. } => match located(message) {
            Some((line, column, rest)) => (line, column, rest.to_string()),
            None => (1, 1, message.clone()),
        },
        PolicyFileError::Rule { index, message, .. } => {
            let start = line_of_container(text, *index);
            let (line, column) =
                quoted(message).and_then(|value| position_in_entry(text, start, value)).unwrap_or((start, 1));
            (line, column, format!("containers[{index}]: {message}"))
        }
    };
    vec![Problem { path: path.to_path_buf(), line, column, message }]
}

/// `line 3 column 5: rest` as the parser's messages start.
fn located(message: &str) -> Option<(u64, u64, &str)> {
    let rest = message.strip_prefix("line ")?;
    let (line, rest) = rest.split_once(" column ")?;
    let (column, rest) = rest.split_once(": ")?;
    Some((line.parse().ok()?, column.parse().ok()?, rest))
}

/// The 1-based line where the `index`-th entry of the top-level `containers:` list starts (1 when
/// it cannot be found).
fn line_of_container(text: &str, index: usize) -> u64 {
    let mut in_list = false;
    let mut seen = 0;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if !line.starts_with(' ') && !line.starts_with('-') && !trimmed.is_empty() {
            in_list = trimmed.starts_with("containers:");
            continue;
        }
        let indent = line.len() - trimmed.len();
        if in_list && trimmed.starts_with("- ") && indent <= 2 {
            if seen == index {
                return u64::try_from(number + 1).unwrap_or(1);
            }
            seen += 1;
        }
    }
    1
}

/// The first `"…"` of a message: the value a rule's problem names.
fn quoted(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('"')?;
    let (value, _) = rest.split_once('"')?;
    (!value.is_empty()).then_some(value)
}

/// Where `value` is written inside the list entry starting at line `start` (1-based line and
/// column), so a bad path is marked where it is, not at the entry's first line.
fn position_in_entry(text: &str, start: u64, value: &str) -> Option<(u64, u64)> {
    let start = usize::try_from(start).ok()?.checked_sub(1)?;
    let first = text.lines().nth(start)?;
    let entry_indent = first.len() - first.trim_start().len();
    for (number, line) in text.lines().enumerate().skip(start) {
        let indent = line.len() - line.trim_start().len();
        if number > start && !line.trim().is_empty() && indent <= entry_indent {
            break;
        }
        let code = line.split(" #").next().unwrap_or(line);
        let found = code.match_indices(value).find(|(at, _)| {
            let before = code[..*at].chars().next_back();
            let after = code[at + value.len()..].chars().next();
            let edge = |c: Option<char>| c.is_none_or(|c| " \t[],:'\"".contains(c));
            edge(before) && edge(after)
        });
        if let Some((at, _)) = found {
            let column = code[..at].chars().count() + 1;
            return Some((u64::try_from(number + 1).ok()?, u64::try_from(column).ok()?));
        }
    }
    None
}

fn is_policy_as_code(text: &str) -> bool {
    text.lines().any(|l| l.trim_start().starts_with("apiVersion:") && l.contains("picket.dev/"))
}

/// `PicketPolicy` documents held as the agent's per-container rules, which is what the kernel
/// rungs enforce today. A rule they cannot hold yet is refused, naming the rule and what it
/// needs, never silently dropped.
fn from_policy_documents(path: &Path, text: &str) -> Result<PolicyFile, PolicyFileError> {
    use crate::policy::spec::{Action, Protocol as PolicyProtocol};
    use crate::policy::validate::{Document, parse_ports, validate_text};
    let file_error = |message: String| PolicyFileError::File { path: path.to_path_buf(), message };
    let (documents, problems) = validate_text(path, text);
    if let Some(problem) = problems.first() {
        let more = match problems.len() {
            1 => String::new(),
            n => format!(" (and {} more: picket policy validate)", n - 1),
        };
        return Err(file_error(format!("line {} column {}: {}{more}", problem.line, problem.column, problem.message)));
    }
    let mut containers = Vec::new();
    for document in &documents {
        let name = document.name();
        let (spec, namespace) = match document {
            Document::Policy(policy) => (policy.spec.clone(), policy.metadata.namespace.clone()),
            Document::ClusterPolicy(policy) if policy.spec.namespaces.is_empty() => (policy.spec.rules(), None),
            Document::ClusterPolicy(_) => {
                return Err(file_error(format!(
                    "{name}: spec.namespaces: the agent does not pick namespaces by pattern yet; write a PicketPolicy per namespace"
                )));
            }
        };
        let refuse = |at: &str, why: &str| file_error(format!("{name}: {at}: {why}"));
        let selector = &spec.selector;
        let owner = selector.owner.as_ref().map(|o| format!("{:?}/{}", o.kind, o.name));
        if selector.container.is_none()
            && selector.image.is_none()
            && owner.is_none()
            && selector.match_labels.is_empty()
        {
            return Err(refuse("spec.selector", "name the containers (container, image, owner or matchLabels)"));
        }
        let mut allow_exec: Option<Vec<String>> = None;
        for (i, rule) in spec.process.iter().enumerate() {
            let at = format!("spec.process[{i}]");
            if rule.action != Action::Allow {
                return Err(refuse(
                    &at,
                    "the exec rungs hold an allowlist: only Allow rules (Audit and Block come with the policy engine)",
                ));
            }
            if !rule.match_directories.is_empty() || !rule.from_source.is_empty() || rule.user.is_some() {
                return Err(refuse(
                    &at,
                    "the exec rungs allow exact paths: matchDirectories, fromSource and user are not held yet",
                ));
            }
            allow_exec.get_or_insert_with(Vec::new).extend(rule.match_paths.iter().cloned());
        }
        let mut files = Vec::new();
        for (i, rule) in spec.file.iter().enumerate() {
            let at = format!("spec.file[{i}]");
            if !rule.from_source.is_empty() {
                return Err(refuse(&at, "fromSource is not held by the file rungs yet"));
            }
            // An Allow rule that is not read-only allows everything below it: an exception
            // where a shorter rule denies (else nothing to hold, and it is left out below).
            let deny = match (rule.action, rule.read_only) {
                (Action::Block, _) => vec![Access::Read, Access::Write],
                (Action::Allow, true) => vec![Access::Write],
                (Action::Allow, false) => Vec::new(),
                (Action::Audit, _) => return Err(refuse(&at, "Audit is not held by the file rungs yet")),
            };
            if rule.match_directories.iter().any(|d| !d.recursive) {
                return Err(refuse(&at, "the file rungs match everything below a directory: write recursive: true"));
            }
            let prefixes = rule.match_paths.iter().cloned().chain(rule.match_directories.iter().map(|d| d.dir.clone()));
            files.extend(prefixes.map(|prefix| FileSpec { prefix, deny: deny.clone() }));
        }
        let denying: Vec<String> = files.iter().filter(|f| !f.deny.is_empty()).map(|f| f.prefix.clone()).collect();
        files.retain(|f| {
            !f.deny.is_empty() || denying.iter().any(|d| f.prefix.len() > d.len() && f.prefix.starts_with(d.as_str()))
        });
        let mut accept: Option<Vec<AcceptSpec>> = None;
        let mut http_in: Option<HttpSpec> = None;
        for (i, rule) in spec.ingress.iter().enumerate() {
            let at = format!("spec.ingress[{i}]");
            if !rule.dns.is_empty() || !rule.server_names.is_empty() {
                return Err(refuse(&at, "dns and serverNames rules are held for egress (what the container sends)"));
            }
            if !rule.http.is_empty() {
                // Requests the container receives, judged on its own ports.
                if !rule.peers.is_empty() {
                    return Err(refuse(
                        &at,
                        "http rules hold for every peer on the rule's ports: give them no peers (a separate rule can limit the peers)",
                    ));
                }
                let (ports, requests) = http_requests(rule);
                let h = http_in.get_or_insert(HttpSpec { allow: None, deny: Vec::new() });
                match rule.action {
                    Action::Allow => {
                        h.allow.get_or_insert_with(Vec::new).extend(requests);
                        // The connections are accepted, and their requests judged.
                        accept.get_or_insert_with(Vec::new).push(AcceptSpec {
                            from: None,
                            ports,
                            protocol: Some(Protocol::Tcp),
                        });
                    }
                    Action::Block => h.deny.extend(requests),
                    Action::Audit => return Err(refuse(&at, "Audit is not held by the L7 rung yet")),
                }
                continue;
            }
            if rule.action != Action::Allow {
                return Err(refuse(
                    &at,
                    "inbound Block and Audit rules come with the firewall (issue 18); inbound Allow rules are held",
                ));
            }
            if !rule.applications.is_empty() {
                return Err(refuse(&at, "applications need the layer-7 firewall (issue 18)"));
            }
            if rule.peers.iter().any(|p| p.cidr.is_none()) {
                return Err(refuse(
                    &at,
                    "the agent knows addresses: group, namespace and fqdn peers come with the firewall",
                ));
            }
            let sources: Vec<Option<String>> = match rule.peers.is_empty() {
                true => vec![None],
                false => rule.peers.iter().map(|p| p.cidr.clone()).collect(),
            };
            for from in sources {
                let ports: Vec<(Vec<PortSpec>, Option<Protocol>)> = match rule.ports.is_empty() {
                    true => vec![(Vec::new(), None)],
                    false => rule.ports.iter().map(port_spec).collect(),
                };
                for (ports, protocol) in ports {
                    accept.get_or_insert_with(Vec::new).push(AcceptSpec { from: from.clone(), ports, protocol });
                }
            }
        }
        let mut allow: Option<Vec<DestinationSpec>> = None;
        let mut deny_to = Vec::new();
        let (mut http, mut dns, mut tls): (Option<HttpSpec>, Option<DnsSpec>, Option<DnsSpec>) = (None, None, None);
        for (i, rule) in spec.egress.iter().enumerate() {
            let at = format!("spec.egress[{i}]");
            if !rule.applications.is_empty() {
                return Err(refuse(&at, "applications need the layer-7 firewall (issue 18)"));
            }
            if !rule.http.is_empty() || !rule.dns.is_empty() || !rule.server_names.is_empty() {
                if !rule.peers.is_empty() {
                    return Err(refuse(
                        &at,
                        "http, dns and serverNames rules hold for every peer on the rule's ports: give them no peers (a separate rule can limit the peers)",
                    ));
                }
                let (ports, requests) = http_requests(rule);
                match rule.action {
                    Action::Allow => {
                        let h = http.get_or_insert(HttpSpec { allow: None, deny: Vec::new() });
                        if !rule.http.is_empty() {
                            h.allow.get_or_insert_with(Vec::new).extend(requests);
                        }
                        if !rule.dns.is_empty() {
                            let d = dns.get_or_insert(DnsSpec { allow: None, deny: Vec::new() });
                            d.allow.get_or_insert_with(Vec::new).extend(rule.dns.iter().cloned());
                        }
                        if !rule.server_names.is_empty() {
                            let t = tls.get_or_insert(DnsSpec { allow: None, deny: Vec::new() });
                            t.allow.get_or_insert_with(Vec::new).extend(rule.server_names.iter().cloned());
                        }
                        // The connections themselves are allowed, and the requests judged.
                        if !rule.http.is_empty() || !rule.server_names.is_empty() {
                            let (ports, _) = match rule.ports.is_empty() {
                                true => (Vec::new(), None),
                                false => (ports, None::<Protocol>),
                            };
                            allow.get_or_insert_with(Vec::new).push(DestinationSpec {
                                to: None,
                                group: None,
                                fqdn: None,
                                ports,
                                protocol: Some(Protocol::Tcp),
                            });
                        }
                        if !rule.dns.is_empty() {
                            allow.get_or_insert_with(Vec::new).push(DestinationSpec {
                                to: None,
                                group: None,
                                fqdn: None,
                                ports: vec![PortSpec::One(53)],
                                protocol: Some(Protocol::Udp),
                            });
                        }
                    }
                    Action::Block => {
                        http.get_or_insert(HttpSpec { allow: None, deny: Vec::new() }).deny.extend(requests);
                        dns.get_or_insert(DnsSpec { allow: None, deny: Vec::new() })
                            .deny
                            .extend(rule.dns.iter().cloned());
                        tls.get_or_insert(DnsSpec { allow: None, deny: Vec::new() })
                            .deny
                            .extend(rule.server_names.iter().cloned());
                    }
                    Action::Audit => return Err(refuse(&at, "Audit is not held by the L7 rung yet")),
                }
                continue;
            }
            if rule.peers.iter().any(|p| p.namespace.is_some()) {
                return Err(refuse(
                    &at,
                    "the network rung knows addresses, peer groups and DNS names: namespace peers come with the firewall",
                ));
            }
            // (address, group, name): a group or a name is put as its addresses when the rules are
            // resolved.
            let targets: Vec<(Option<String>, Option<String>, Option<String>)> = match rule.peers.is_empty() {
                true => vec![(None, None, None)],
                false => rule.peers.iter().map(|p| (p.cidr.clone(), p.group.clone(), p.fqdn.clone())).collect(),
            };
            let mut destinations = Vec::new();
            for (to, group, fqdn) in targets {
                let ports = match rule.ports.is_empty() {
                    true => vec![(Vec::new(), None)],
                    false => rule
                        .ports
                        .iter()
                        .map(|p| {
                            let (low, high) = parse_ports(&p.port).unwrap_or((1, 65535));
                            let port =
                                if low == high { PortSpec::One(low) } else { PortSpec::Range(format!("{low}-{high}")) };
                            let protocol = p.protocol.map(|p| match p {
                                PolicyProtocol::Tcp => Protocol::Tcp,
                                PolicyProtocol::Udp => Protocol::Udp,
                            });
                            (vec![port], protocol)
                        })
                        .collect(),
                };
                destinations.extend(ports.into_iter().map(|(ports, protocol)| DestinationSpec {
                    to: to.clone(),
                    group: group.clone(),
                    fqdn: fqdn.clone(),
                    ports,
                    protocol,
                }));
            }
            match rule.action {
                Action::Allow => allow.get_or_insert_with(Vec::new).extend(destinations),
                Action::Block => deny_to.extend(destinations),
                Action::Audit => return Err(refuse(&at, "Audit is not held by the network rung yet")),
            }
        }
        let connect = (allow.is_some() || !deny_to.is_empty()).then_some(ConnectSpec { allow, deny: deny_to });
        containers.push(PolicyRule {
            name: selector.container.clone(),
            id: None,
            namespace,
            image: selector.image.clone(),
            owner,
            labels: selector.match_labels.clone(),
            mode: match spec.mode {
                crate::policy::spec::Mode::Discover => Mode::Discover,
                crate::policy::spec::Mode::Monitor => Mode::Monitor,
                crate::policy::spec::Mode::Protect => Mode::Protect,
            },
            allow_exec,
            files,
            connect,
            accept,
            http,
            http_in,
            dns,
            tls,
        });
    }
    Ok(PolicyFile { containers })
}

/// A policy rule's ports as the agent's, and its HTTP requests on them.
fn http_requests(rule: &crate::policy::spec::NetworkRule) -> (Vec<PortSpec>, Vec<HttpRuleSpec>) {
    let ports: Vec<PortSpec> = rule.ports.iter().flat_map(|p| port_spec(p).0).collect();
    let requests = rule
        .http
        .iter()
        .map(|r| HttpRuleSpec {
            method: r.method.clone(),
            path: r.path.clone(),
            host: r.host.clone(),
            ports: ports.clone(),
        })
        .collect();
    (ports, requests)
}

/// A policy port rule as the agent's port list and protocol.
fn port_spec(rule: &crate::policy::spec::PortRule) -> (Vec<PortSpec>, Option<Protocol>) {
    use crate::policy::spec::Protocol as PolicyProtocol;
    let (low, high) = crate::policy::validate::parse_ports(&rule.port).unwrap_or((1, 65535));
    let port = if low == high { PortSpec::One(low) } else { PortSpec::Range(format!("{low}-{high}")) };
    let protocol = rule.protocol.map(|p| match p {
        PolicyProtocol::Tcp => Protocol::Tcp,
        PolicyProtocol::Udp => Protocol::Udp,
    });
    (vec![port], protocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HTTP and DNS rules in both formats: held alike, and checked where they are written.
    #[test]
    fn http_and_dns_rules_are_held_alike_in_both_formats() {
        let own = parse(
            "containers:
  - name: api
    mode: protect
    connect:
      allow:
        - ports: [8080]
          protocol: tcp
        - ports: [53]
          protocol: udp
        - ports: [443]
          protocol: tcp
    http:
      allow:
        - method: get
          path: /api/*
          ports: [8080]
      deny:
        - method: DELETE
          path: /admin*
    dns:
      allow: [\"*.svc.cluster.local\"]
      deny: [Evil.Example]
    tls:
      allow: [api.github.com]
",
        )
        .expect("the agent's format");
        let as_code = parse(
            "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: api, namespace: shop }
spec:
  selector: { container: api }
  mode: protect
  egress:
    - ports: [{ port: '8080' }]
      http: [{ method: GET, path: /api/* }]
    - dns: ['*.svc.cluster.local']
    - http: [{ method: DELETE, path: /admin* }]
      dns: [evil.example]
      action: Block
    - ports: [{ port: '443' }]
      serverNames: [api.github.com]
",
        )
        .expect("the policy-as-code format");
        let held = |file: &PolicyFile| file.resolve_all().into_iter().map(|p| p.l7).collect::<Vec<_>>();
        assert_eq!(held(&as_code), held(&own));
        let rules = held(&own).remove(0).expect("L7 rules");
        assert_eq!(rules.http_deny[0].to_string(), "DELETE /admin*");
        assert_eq!(rules.http_allow.as_ref().map(|a| a[0].to_string()), Some("GET /api/* port 8080".into()));
        assert_eq!(rules.dns_deny, vec!["evil.example".to_string()]);
        assert_eq!(rules.tls_allow, Some(vec!["api.github.com".to_string()]));
        let connect =
            |file: &PolicyFile| file.resolve_all()[0].connect.clone().and_then(|c| c.allow).unwrap_or_default();
        assert_eq!(connect(&as_code), connect(&own), "the connections the requests ride on are allowed");
        let bad =
            parse("containers:\n  - name: api\n    mode: protect\n    http:\n      deny:\n        - path: admin\n")
                .expect_err("a path without /");
        assert!(bad.contains("containers[0]") && bad.contains("http: path \"admin\" must start with /"), "{bad}");
        let bad = parse("containers:\n  - name: api\n    mode: protect\n    dns:\n      deny: [\"ev*l.example\"]\n")
            .expect_err("a star inside a name");
        assert!(bad.contains("dns: DNS name"), "{bad}");
    }

    /// Requests a container receives: `httpIn` in the agent's format, ingress `http` in a
    /// PicketPolicy (an Allow rule accepts its ports and lets only its requests through).
    #[test]
    fn inbound_http_rules_are_held_alike_in_both_formats() {
        let own = parse(
            "containers:
  - name: api
    mode: protect
    accept:
      - ports: [8080]
        protocol: tcp
    httpIn:
      allow:
        - method: GET
          ports: [8080]
      deny:
        - path: /admin*
          host: \"*.internal.example\"
",
        )
        .expect("the agent's format");
        let as_code = parse(
            "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: api, namespace: shop }
spec:
  selector: { container: api }
  mode: protect
  ingress:
    - ports: [{ port: '8080', protocol: TCP }]
      http: [{ method: GET }]
    - http: [{ path: /admin*, host: '*.internal.example' }]
      action: Block
",
        )
        .expect("the policy-as-code format");
        let held = |file: &PolicyFile| file.resolve_all().into_iter().map(|p| p.l7).collect::<Vec<_>>();
        assert_eq!(held(&as_code), held(&own));
        let rules = held(&own).remove(0).expect("L7 rules");
        assert_eq!(rules.http_in_deny[0].to_string(), "* /admin* host *.internal.example");
        assert_eq!(rules.http_in_allow.as_ref().map(|a| a[0].to_string()), Some("GET /* port 8080".into()));
        assert!(rules.http_allow.is_none() && rules.http_deny.is_empty(), "nothing on what it sends");
        let accepted = |file: &PolicyFile| file.containers[0].accept.clone();
        assert_eq!(accepted(&as_code), accepted(&own), "the requests' port is accepted");
        let bad = parse(
            "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: api, namespace: shop }
spec:
  selector: { container: api }
  mode: protect
  ingress:
    - dns: [evil.example]
",
        )
        .expect_err("dns is for egress");
        assert!(bad.contains("spec.ingress[0]") && bad.contains("held for egress"), "{bad}");
    }

    /// The same rules in the policy-as-code format and in the agent's own: held alike.
    #[test]
    fn a_picket_policy_is_held_as_the_agents_own_rules() {
        let own = parse(
            "containers:
  - name: web
    namespace: shop
    mode: protect
    allowExec: [/bin/busybox, /usr/sbin/nginx]
    files:
      - prefix: /etc/
        deny: [write]
      - prefix: /root/.ssh/
        deny: [read, write]
    connect:
      allow:
        - to: 10.0.0.0/8
          ports: [443]
          protocol: tcp
      deny:
        - ports: [3333]
",
        )
        .expect("the agent's format");
        let as_code = parse(
            "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: web, namespace: shop }
spec:
  selector: { container: web }
  mode: protect
  process:
    - matchPaths: [/bin/busybox, /usr/sbin/nginx]
  file:
    - matchDirectories: [{ dir: /etc/, recursive: true }]
      readOnly: true
    - matchDirectories: [{ dir: /root/.ssh/, recursive: true }]
      action: Block
  egress:
    - peers: [{ cidr: 10.0.0.0/8 }]
      ports: [{ port: '443', protocol: TCP }]
    - ports: [{ port: '3333' }]
      action: Block
",
        )
        .expect("the policy-as-code format");
        assert_eq!(as_code.resolve_all(), own.resolve_all());
        assert_eq!(as_code.containers[0].namespace.as_deref(), Some("shop"));
        let learned = parse(
            "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: web, namespace: shop }
spec:
  selector: { owner: { kind: Deployment, name: web } }
  mode: monitor
  file:
    - matchDirectories: [{ dir: /, recursive: true }]
      readOnly: true
    - matchDirectories: [{ dir: /tmp/, recursive: true }]
    - matchPaths: [/elsewhere]
  ingress:
    - ports: [{ port: '8080', protocol: TCP }]
",
        )
        .expect("a learned policy");
        let rule = &learned.containers[0];
        assert_eq!(rule.owner.as_deref(), Some("Deployment/web"));
        let prefixes: Vec<(&str, usize)> = rule.files.iter().map(|f| (f.prefix.as_str(), f.deny.len())).collect();
        assert_eq!(prefixes, [("/", 1), ("/tmp/", 0), ("/elsewhere", 0)], "exceptions under the read-only root");
        assert!(rule.accepts("10.0.0.1".parse().unwrap(), 8080, 6));
        assert!(!rule.accepts("10.0.0.1".parse().unwrap(), 22, 6));
    }

    #[test]
    fn what_the_rungs_cannot_hold_yet_is_refused_by_name() {
        let head = "apiVersion: picket.dev/v1\nkind: PicketPolicy\nmetadata: { name: web }\nspec:\n  mode: protect\n";
        for (rest, said) in [
            (
                "  selector: { container: web }\n  egress:\n    - peers: [{ namespace: payments }]\n",
                "spec.egress[0]: the network rung knows addresses",
            ),
            (
                "  selector: { container: web }\n  process:\n    - matchPaths: [/bin/sh]\n      action: Block\n",
                "spec.process[0]: the exec rungs hold an allowlist",
            ),
            (
                "  selector: { container: web }\n  ingress:\n    - ports: [{ port: '80' }]\n      action: Block\n",
                "spec.ingress[0]: inbound Block and Audit rules come with the firewall",
            ),
            (
                "  selector: { container: web }\n  process:\n    - matchPaths: [sh]\n",
                "agent-policy.yaml: line 8 column 7: 'sh' is not an absolute file path",
            ),
        ] {
            let err = parse(&format!("{head}{rest}")).expect_err(said);
            assert!(err.contains(said), "{err}");
        }
    }

    const GOOD: &str = "
containers:
  - name: web
    mode: protect
    allowExec: [/bin/busybox, /usr/sbin/nginx]
    files:
      - prefix: /etc/
        deny: [write]
  - id: 4F1C0A9E2B7D
    mode: monitor
";

    fn parse(text: &str) -> Result<PolicyFile, String> {
        PolicyFile::parse(Path::new("/etc/picket/agent-policy.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn problems_are_placed_at_their_line_in_either_format() {
        let path = Path::new("edited.yaml");
        assert!(problems(path, "containers:\n  - name: web\n    mode: protect\n").is_empty());
        let found = problems(path, "containers:\n  - name: web\n    mode: protect\n  - mode: monitor\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, 4, "the second rule starts on line 4: {found:?}");
        assert!(found[0].message.contains("containers[1]"), "{found:?}");
        let found = problems(path, "containers:\n  - name: web\n    mode: sideways\n");
        assert_eq!(found[0].line, 3, "{found:?}");
        // A bad value is marked where it is written, not where its entry starts; a value that
        // merely contains it (/bin/sh) is not it, nor is the same word in the next entry.
        let text = "containers:\n  - name: web\n    mode: protect\n    allowExec:\n      - /bin/sh\n      - sh # a shell\n  - name: sh\n    mode: monitor\n";
        let found = problems(path, text);
        assert_eq!((found[0].line, found[0].column), (6, 9), "{found:?}");
        let text = "containers:\n  - name: web\n    mode: protect\n    allowExec: [/bin/sh, sh]\n";
        assert_eq!((problems(path, text)[0].line, problems(path, text)[0].column), (4, 26));
        let crd = "apiVersion: picket.dev/v1\nkind: PicketPolicy\nmetadata:\n  name: web\nspec:\n  mode: sideways\n";
        let found = problems(path, crd);
        assert!(found.iter().any(|p| p.line == 6), "a PicketPolicy's mistake is named at its line: {found:?}");
    }

    fn running(id: &str, name: &str, cgroups: &[u64]) -> RunningContainer {
        RunningContainer {
            id: id.into(),
            name: Some(name.into()),
            namespace: None,
            image: None,
            owner: None,
            cgroups: cgroups.to_vec(),
            probe_programs: Vec::new(),
            labels: Default::default(),
        }
    }

    #[test]
    fn a_namespace_narrows_a_name_to_one_namespaces_pods() {
        let file = parse(
            "containers:\n  - name: api\n    namespace: payments\n    mode: protect\n  - name: api\n    namespace: staging\n    mode: monitor\n",
        )
        .expect("the same name in two namespaces is two rules");
        let in_namespace = |namespace: &str, cgroup: u64| RunningContainer {
            namespace: Some(namespace.into()),
            ..running(&format!("{cgroup:064x}"), "api", &[cgroup])
        };
        let policies =
            file.resolve(&[in_namespace("payments", 1), in_namespace("staging", 2), in_namespace("default", 3)]);
        let modes: Vec<(u64, Mode)> = policies.iter().map(|p| (p.cgroup_id, p.mode)).collect();
        assert_eq!(modes, [(1, Mode::Protect), (2, Mode::Monitor)], "default's api is named by no rule");
        let outside_kubernetes = running(&"a".repeat(64), "api", &[4]);
        let by_image =
            parse("containers:\n  - image: registry.example/web:*\n    owner: Deployment/web\n    mode: protect\n")
                .expect("image and owner");
        let web = |image: &str, owner: &str| RunningContainer {
            image: Some(image.into()),
            owner: Some(owner.into()),
            ..running(&"b".repeat(64), "web", &[5])
        };
        assert_eq!(by_image.resolve(&[web("registry.example/web:1.2", "Deployment/web")]).len(), 1);
        assert!(by_image.resolve(&[web("registry.example/api:1.2", "Deployment/web")]).is_empty());
        assert!(by_image.resolve(&[web("registry.example/web:1.2", "StatefulSet/web")]).is_empty());
        assert!(file.resolve(&[outside_kubernetes]).is_empty(), "no pod, no namespace to match");
    }

    #[test]
    fn rules_resolve_to_every_cgroup_of_the_named_containers() {
        let file = parse(GOOD).expect("valid");
        let web = running(&format!("ab{}", "0".repeat(62)), "web", &[40, 41]);
        let by_id = running(&format!("4f1c0a9e2b7d{}", "1".repeat(52)), "other", &[50]);
        let unnamed = running(&"c".repeat(64), "db", &[60]);
        let policies = file.resolve(&[web, by_id, unnamed]);
        let summary: Vec<(u64, Mode, bool)> =
            policies.iter().map(|p| (p.cgroup_id, p.mode, p.exec_allowlist.is_some())).collect();
        assert_eq!(summary, [(40, Mode::Protect, true), (41, Mode::Protect, true), (50, Mode::Monitor, false)]);
        assert_eq!(policies[0].file_rules, [FileRule { prefix: "/etc/".into(), deny_read: false, deny_write: true }]);
        assert!(file.resolve(&[]).is_empty(), "rules wait for their containers");
    }

    #[test]
    fn labels_pick_the_containers_that_have_all_of_them() {
        let own = parse("containers:\n  - labels: { app: web, tier: front }\n    mode: protect\n").expect("valid");
        let as_code = parse(
            "apiVersion: picket.dev/v1\nkind: PicketPolicy\nmetadata: { name: web, namespace: shop }\nspec:\n  selector: { matchLabels: { app: web, tier: front } }\n  mode: protect\n",
        )
        .expect("valid");
        let labelled = |cgroup: u64, labels: &[(&str, &str)], namespace: &str| RunningContainer {
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            namespace: Some(namespace.into()),
            ..running(&format!("{cgroup:064x}"), "c", &[cgroup])
        };
        let running = [
            labelled(1, &[("app", "web"), ("tier", "front"), ("pod-template-hash", "5c8f")], "shop"),
            labelled(2, &[("app", "web")], "shop"),
            labelled(3, &[("app", "api"), ("tier", "front")], "shop"),
            labelled(4, &[("app", "web"), ("tier", "front")], "staging"),
        ];
        let cgroups = |file: &PolicyFile| file.resolve(&running).iter().map(|p| p.cgroup_id).collect::<Vec<_>>();
        assert_eq!(cgroups(&own), [1, 4], "every label, whatever else the pod has");
        assert_eq!(cgroups(&as_code), [1], "and the policy's namespace");
        assert!(parse("containers:\n  - mode: protect\n").unwrap_err().contains("labels"), "naming nothing");
    }

    #[test]
    fn a_containers_probe_programs_join_its_allowlist_only() {
        let file = parse(GOOD).expect("valid");
        let probed = |id: String, name: &str, cgroup: u64| RunningContainer {
            probe_programs: vec!["/usr/bin/curl".into(), "/bin/busybox".into()],
            ..running(&id, name, &[cgroup])
        };
        let policies = file.resolve(&[
            probed("a".repeat(64), "web", 40),
            probed(format!("4f1c0a9e2b7d{}", "1".repeat(52)), "other", 50),
        ]);
        let allowed = policies[0].exec_allowlist.as_deref().expect("web has an allowlist");
        assert_eq!(allowed, ["/bin/busybox", "/usr/sbin/nginx", "/usr/bin/curl"], "widened once, no duplicate");
        assert_eq!(policies.get(1).map(|p| p.exec_allowlist.is_none()), Some(true), "no allowlist, none made");
    }

    #[test]
    fn a_peer_group_is_put_as_the_addresses_it_holds_and_names_none_before() {
        let file = parse(
            "containers:\n  - name: web\n    mode: protect\n    connect:\n      allow:\n        - group: shop/StatefulSet/postgres\n          ports: [5432]\n",
        )
        .expect("valid");
        assert!(file.names_peer_groups());
        let unresolved = &file.resolve_all()[0];
        let rules = unresolved.connect.as_ref().expect("connect rules");
        assert_eq!(rules.allow.as_deref().map(<[_]>::len), Some(0), "no address yet: allows nothing, never any");
        let peers: PeerAddresses = [(
            "shop/StatefulSet/postgres".to_string(),
            vec!["10.244.1.7".parse().unwrap(), "10.244.2.9".parse().unwrap()],
        )]
        .into();
        let resolved = &file.with_peers(&peers).resolve_all()[0];
        let allow = resolved.connect.as_ref().and_then(|c| c.allow.clone()).expect("an allowlist");
        let allowed: Vec<String> = allow.iter().map(ToString::to_string).collect();
        assert_eq!(allowed, ["10.244.1.7/32 port 5432", "10.244.2.9/32 port 5432"]);
        let named = parse(
            "containers:\n  - name: web\n    mode: protect\n    connect:\n      allow:\n        - fqdn: '*.payments.example'\n          ports: [443]\n",
        )
        .expect("valid");
        let peers: PeerAddresses = [
            ("api.payments.example".to_string(), vec!["192.0.2.7".parse().unwrap()]),
            ("payments.example".to_string(), vec!["192.0.2.9".parse().unwrap()]),
            ("evilpayments.example".to_string(), vec!["192.0.2.66".parse().unwrap()]),
        ]
        .into();
        let allow = named.with_peers(&peers).resolve_all()[0].connect.as_ref().and_then(|c| c.allow.clone());
        let allowed: Vec<String> = allow.iter().flatten().map(ToString::to_string).collect();
        assert_eq!(allowed, ["192.0.2.7/32 port 443"], "names below the domain only");
        let both = "containers:\n  - name: web\n    mode: protect\n    connect:\n      allow: [{ to: 10.0.0.1, group: shop/Deployment/api }]\n";
        assert!(parse(both).unwrap_err().contains("not both"), "{:?}", parse(both));
        let bad = "containers:\n  - name: web\n    mode: protect\n    connect:\n      allow: [{ group: api }]\n";
        assert!(parse(bad).unwrap_err().contains("is not a group"), "{:?}", parse(bad));
    }

    #[test]
    fn mistakes_name_the_file_and_the_rule() {
        let cases = [
            ("containers:\n  - name: web\n    mode: block\n", "policy /etc/picket/agent-policy.yaml: "),
            ("containers:\n  - mode: protect\n", "containers[0]: name, id, image, owner or labels is needed"),
            ("containers:\n  - owner: web\n    mode: protect\n", "owner \"web\" must be Kind/name"),
            ("containers:\n  - name: a\n    id: 4f1c0a9e2b7d\n    mode: protect\n", "containers[0]: give name or id"),
            ("containers:\n  - id: xyz\n    mode: protect\n", "containers[0]: id \"xyz\" must be 12 to 64 hex"),
            (
                "containers:\n  - name: a\n    mode: monitor\n  - name: b\n    mode: protect\n    allowExec: [sh]\n",
                "containers[1]: allowlist path \"sh\" must be absolute",
            ),
            (
                "containers:\n  - name: a\n    mode: protect\n    files:\n      - {prefix: /etc/, deny: []}\n",
                "containers[0]: file rule \"/etc/\" denies nothing and is under no rule that does",
            ),
            (
                "containers:\n  - name: a\n    mode: protect\n  - name: a\n    mode: monitor\n",
                "containers[1]: \"a\" has a rule already",
            ),
            ("containers:\n  - name: a\n    mode: protect\n    allowExe: [/bin/sh]\n", "allowExe"),
            ("containers: [\n", "policy /etc/picket/agent-policy.yaml: "),
        ];
        let connect = |spec: &str| format!("containers:\n  - name: a\n    mode: protect\n    connect:\n{spec}");
        let connect_cases = [
            (
                connect("      allow:\n        - to: 10.0.0.0/33\n"),
                "containers[0]: connect.allow[0]: to: \"10.0.0.0/33\"",
            ),
            (connect("      deny:\n        - ports: [9000-80]\n"), "connect.deny[0]: ports: \"9000-80\""),
            (connect("      deny:\n        - ports: [0]\n"), "port 0"),
            (connect("      deny:\n        - port: [22]\n"), "port"),
            (connect("      deny:\n        - ports: [22]\n          protocol: sctp\n"), "sctp"),
        ];
        for (text, expected) in connect_cases {
            let err = parse(&text).expect_err(&text);
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        for (text, expected) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        let long = format!(
            "containers:\n  - name: a\n    mode: protect\n    files:\n      - {{prefix: /{}, deny: [read]}}\n",
            "a".repeat(200)
        );
        assert!(parse(&long).unwrap_err().contains("shorter than 128 bytes"));
    }

    #[test]
    fn connect_rules_expand_to_one_kernel_rule_per_port_range() {
        let file = parse(
            "containers:\n  - name: web\n    mode: protect\n    connect:\n      allow:\n        - to: 10.1.2.3\n          ports: [443, 8000-8080]\n          protocol: tcp\n      deny:\n        - ports: [22]\n",
        )
        .expect("valid");
        let policy = &file.resolve_all()[0];
        let rules = policy.connect.as_ref().expect("connect rules");
        let allow = rules.allow.as_ref().expect("an allowlist");
        assert_eq!(allow.len(), 2);
        assert_eq!(allow[1].ports, (8000, 8080));
        assert_eq!(allow[0].net, Some("10.1.2.3/32".parse().unwrap()));
        assert_eq!(rules.deny[0].to_string(), "any address port 22");
        assert!(!policy.has_exec_or_file_rules());
        let many = format!(
            "containers:\n  - name: web\n    mode: protect\n    connect:\n      deny:\n        - ports: [{}]\n",
            (1..=65).map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
        );
        assert!(parse(&many).unwrap_err().contains("at most 64"));
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../../plugins-config/agent-policy.yaml");
        let file = parse(text).expect("the example parses");
        assert!(!file.containers.is_empty());
    }
}

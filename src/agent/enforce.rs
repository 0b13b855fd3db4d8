//! Per-container enforcement with BPF LSM (src/agent/bpf/enforce.bpf.c): an executable
//! allowlist and read/write denials under path prefixes, in discover, monitor or protect mode.
//! A policy update writes a whole new generation of the maps, then flips the active generation
//! with one array write, so the kernel sees the old policy or the new one, never a mix. Dropping
//! the enforcer detaches the programs: the node fails open.

use aya::maps::{Array, HashMap, MapData};
use aya::programs::Lsm;
use aya::{Btf, Ebpf};
use serde::{Deserialize, Serialize};

use super::ring::{EventRing, RingError, per_cpu_sum};

mod deadline;
pub mod fanotify;
pub mod inbound;
mod interpreter;
pub mod l7;
pub mod ladder;
pub mod network;
pub mod refusals;

pub use ladder::{Ladder, Rung};

static ENFORCE_PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/enforce.bpf.o"));

const PATH_LEN: usize = 256;
const PREFIX_LEN: usize = 128;
const MAX_FILE_RULES: usize = 8;
const RULE_LEN: usize = 4 + 4 + PREFIX_LEN;
const POLICY_LEN: usize = 16 + MAX_FILE_RULES * RULE_LEN;
const EXEC_KEY_LEN: usize = 16 + PATH_LEN;
const ALERT_LEN: usize = 4 * 4 + 8 * 2 + 4 * 2 + 16 + PATH_LEN;

/// What happens to what a policy does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Record it (for learning), allow it.
    Discover,
    /// Alert, allow it.
    Monitor,
    /// Alert, deny it with EPERM.
    Protect,
}

impl Mode {
    /// The name policies and alerts write (`discover`, `monitor`, `protect`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discover => "discover",
            Self::Monitor => "monitor",
            Self::Protect => "protect",
        }
    }

    fn code(self) -> u32 {
        match self {
            Self::Discover => 1,
            Self::Monitor => 2,
            Self::Protect => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRule {
    /// A path prefix as the container sees it (`/etc/`).
    pub prefix: String,
    #[serde(default)]
    pub deny_read: bool,
    #[serde(default)]
    pub deny_write: bool,
}

impl FileRule {
    /// Whether this rule's prefix is a strict prefix of `other`'s (the longer one decides there).
    fn shadows(&self, other: &FileRule) -> bool {
        other.prefix.len() > self.prefix.len() && other.prefix.starts_with(&self.prefix)
    }

    fn denies_anything(&self) -> bool {
        self.deny_read || self.deny_write
    }
}

/// The rule that decides for `path`: the longest prefix among `rules` that matches it.
pub fn deciding_rule<'a>(rules: &'a [FileRule], path: &str) -> Option<&'a FileRule> {
    rules.iter().filter(|r| path.starts_with(r.prefix.as_str())).max_by_key(|r| r.prefix.len())
}

/// Whether some rule denies an access of this kind anywhere (else opens need no check).
pub fn denies_any(rules: &[FileRule]) -> bool {
    rules.iter().any(FileRule::denies_anything)
}

/// One container's policy, by its cgroup v2 id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPolicy {
    pub cgroup_id: u64,
    pub mode: Mode,
    /// Executables (absolute paths as the container sees them, symlinks resolved) it may run;
    /// None: any.
    #[serde(default)]
    pub exec_allowlist: Option<Vec<String>>,
    #[serde(default)]
    pub file_rules: Vec<FileRule>,
    /// Where it may connect and send (the network rung); None: anywhere.
    #[serde(default)]
    pub connect: Option<network::ConnectRules>,
    /// The HTTP requests and DNS names it may send (the L7 rung); None: any.
    #[serde(default)]
    pub l7: Option<l7::L7Rules>,
}

impl ContainerPolicy {
    /// Whether it has rules for the exec and file rungs (a policy of connect rules alone has
    /// none).
    pub fn has_exec_or_file_rules(&self) -> bool {
        self.exec_allowlist.is_some() || !self.file_rules.is_empty()
    }
}

/// Policies one generation may hold: the kernel map holds the active generation and the next.
pub const MAX_POLICIES: usize = 4096 / 2;
/// Allowed executables over all policies of one generation, for the same reason.
pub const MAX_ALLOWED_EXECS: usize = 65536 / 2;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("{what}: {count}, the kernel maps hold at most {max} at once")]
    TooMany { what: &'static str, count: usize, max: usize },
    #[error("policy {index} (cgroup {cgroup_id}): {message}")]
    Invalid { index: usize, cgroup_id: u64, message: String },
    #[error("cgroup {0} has two policies")]
    Duplicate(u64),
}

/// Checks every policy against what the kernel maps can hold; nothing is written when one fails.
pub fn validate(policies: &[ContainerPolicy]) -> Result<(), PolicyError> {
    if policies.len() > MAX_POLICIES {
        return Err(PolicyError::TooMany { what: "cgroups with a policy", count: policies.len(), max: MAX_POLICIES });
    }
    let execs: usize = policies.iter().map(|p| p.exec_allowlist.as_ref().map_or(0, Vec::len)).sum();
    if execs > MAX_ALLOWED_EXECS {
        return Err(PolicyError::TooMany { what: "allowed executables", count: execs, max: MAX_ALLOWED_EXECS });
    }
    let mut seen = std::collections::HashSet::new();
    for (index, policy) in policies.iter().enumerate() {
        let fail = |message: String| PolicyError::Invalid { index, cgroup_id: policy.cgroup_id, message };
        if !seen.insert(policy.cgroup_id) {
            return Err(PolicyError::Duplicate(policy.cgroup_id));
        }
        if policy.cgroup_id == 0 {
            return Err(fail("cgroup id 0 is no cgroup".into()));
        }
        for path in policy.exec_allowlist.iter().flatten() {
            if !path.starts_with('/') || path.len() >= PATH_LEN || path.contains('\0') {
                return Err(fail(format!(
                    "allowlist path {path:?} must be absolute, without NUL, shorter than {PATH_LEN} bytes"
                )));
            }
        }
        if policy.file_rules.len() > MAX_FILE_RULES {
            return Err(fail(format!("{} file rules, at most {MAX_FILE_RULES}", policy.file_rules.len())));
        }
        for rule in &policy.file_rules {
            if !rule.prefix.starts_with('/') || rule.prefix.len() >= PREFIX_LEN || rule.prefix.contains('\0') {
                return Err(fail(format!(
                    "file rule prefix {:?} must be absolute, without NUL, shorter than {PREFIX_LEN} bytes",
                    rule.prefix
                )));
            }
            // A rule that denies nothing is an exception carved out of a shorter prefix.
            if !rule.deny_read && !rule.deny_write && !policy.file_rules.iter().any(|other| other.shadows(rule)) {
                return Err(fail(format!(
                    "file rule {:?} denies nothing and is under no rule that does (an exception needs a shorter prefix to carve from)",
                    rule.prefix
                )));
            }
        }
    }
    Ok(())
}

fn policy_key(generation: u32, cgroup_id: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&generation.to_le_bytes());
    key[8..].copy_from_slice(&cgroup_id.to_le_bytes());
    key
}

fn exec_key(generation: u32, cgroup_id: u64, path: &str) -> [u8; EXEC_KEY_LEN] {
    let mut key = [0u8; EXEC_KEY_LEN];
    key[..16].copy_from_slice(&policy_key(generation, cgroup_id));
    let bytes = path.as_bytes();
    key[16..16 + bytes.len().min(PATH_LEN - 1)].copy_from_slice(&bytes[..bytes.len().min(PATH_LEN - 1)]);
    key
}

fn policy_value(policy: &ContainerPolicy) -> [u8; POLICY_LEN] {
    let mut value = [0u8; POLICY_LEN];
    value[..4].copy_from_slice(&policy.mode.code().to_le_bytes());
    value[4..8].copy_from_slice(&u32::from(policy.exec_allowlist.is_some()).to_le_bytes());
    let count = policy.file_rules.len().min(MAX_FILE_RULES);
    value[8..12].copy_from_slice(&u32::try_from(count).unwrap_or(0).to_le_bytes());
    for (i, rule) in policy.file_rules.iter().take(MAX_FILE_RULES).enumerate() {
        let at = 16 + i * RULE_LEN;
        let deny = u32::from(rule.deny_read) | (u32::from(rule.deny_write) << 1);
        value[at..at + 4].copy_from_slice(&deny.to_le_bytes());
        let prefix = rule.prefix.as_bytes();
        let len = prefix.len().min(PREFIX_LEN - 1);
        value[at + 4..at + 8].copy_from_slice(&u32::try_from(len).unwrap_or(0).to_le_bytes());
        value[at + 8..at + 8 + len].copy_from_slice(&prefix[..len]);
    }
    value
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    Exec,
    File,
    /// A connect or an addressed send (the network rung).
    Connect,
    /// An inbound connection the accept rules do not list: accepted and alerted (monitor), or
    /// refused by the inbound rung (protect).
    Accept,
    /// A connect or send of a quarantined container (refused, whatever its policy says).
    Quarantined,
    /// An HTTP request the L7 rules objected to (`path` holds `METHOD /path`).
    Http,
    /// An HTTP request to the container its inbound L7 rules objected to.
    HttpIn,
    /// A DNS query the L7 rules objected to (`path` holds the name).
    Dns,
    /// A TLS handshake whose server name the L7 rules objected to (`path` holds the name).
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertAction {
    Recorded,
    Alerted,
    Denied,
    /// Killed (SIGKILL) as its program was loaded, before it ran (the signal rung).
    Killed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
/// What a rung found outside a container's policy (recorded, alerted, denied or killed by its
/// mode); the runtime turns it into an [`crate::agent::alert::Alert`] with the process's ancestry.
pub struct Violation {
    pub kind: AlertKind,
    pub action: AlertAction,
    pub pid: u32,
    pub uid: u32,
    pub cgroup_id: u64,
    pub timestamp_ns: u64,
    pub read: bool,
    pub write: bool,
    pub comm: String,
    pub path: String,
    /// Connects: where to (`10.0.0.1:22`) and the rule that decided.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote: String,
    /// Accepts: the container's own end (`10.0.0.2:8080`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub local: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rule: String,
}

pub fn decode_violation(bytes: &[u8]) -> Option<Violation> {
    if bytes.len() < ALERT_LEN {
        return None;
    }
    let mut r = super::events::Reader::new(bytes);
    let kind = match r.u32() {
        1 => AlertKind::Exec,
        2 => AlertKind::File,
        _ => return None,
    };
    let action = match r.u32() {
        0 => AlertAction::Recorded,
        1 => AlertAction::Alerted,
        2 => AlertAction::Denied,
        3 => AlertAction::Killed,
        _ => return None,
    };
    let (pid, uid, cgroup_id, timestamp_ns) = (r.u32(), r.u32(), r.u64(), r.u64());
    let (access, _mode) = (r.u32(), r.u32());
    Some(Violation {
        kind,
        action,
        pid,
        uid,
        cgroup_id,
        timestamp_ns,
        read: access & 1 != 0,
        write: access & 2 != 0,
        comm: r.c_string(16),
        path: r.c_string(PATH_LEN),
        remote: String::new(),
        local: String::new(),
        rule: String::new(),
    })
}

/// One cgroup's policy as the kernel maps hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyInForce {
    pub cgroup_id: u64,
    pub mode: Mode,
    pub allowed_execs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error(
        "loading the enforcement programs: {0} (the agent needs root and the BPF LSM: 'bpf' in /sys/kernel/security/lsm)"
    )]
    Load(#[source] aya::EbpfError),
    #[error("reading the kernel's BTF: {0}")]
    Btf(#[source] aya::BtfError),
    #[error(
        "LSM hook {hook}: {source} (the kernel refused the BPF LSM program: it needs CONFIG_BPF_LSM, 'bpf' in the lsm= boot list and BPF trampolines; `bpftool feature probe kernel | grep lsm` tells)"
    )]
    Attach {
        hook: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("the kernel object has no {0}")]
    Missing(&'static str),
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Ring(#[from] RingError),
    #[error("policy {index} (cgroup {cgroup_id}): {message}")]
    Unsupported { index: usize, cgroup_id: u64, message: String },
    #[error(
        "fanotify: {step}: {errno} (permission events need root (CAP_SYS_ADMIN) and CONFIG_FANOTIFY_ACCESS_PERMISSIONS)"
    )]
    Fanotify { step: String, errno: nix::errno::Errno },
    #[error("the verdict thread stopped")]
    VerdictThreadGone,
    #[error("the policy table was poisoned by a panic")]
    Poisoned,
    #[error("the signal rung's tracepoint: {0}")]
    Tracepoint(#[source] super::ring::AttachError),
    #[error("no enforcement mechanism loads on this kernel: {0}")]
    NoRung(String),
}

/// The enforcer of exec and file rules on the strongest rung this kernel allows.
pub enum ExecFileEnforcer {
    Lsm(Enforcer),
    Fanotify(fanotify::FanotifyEnforcer),
    /// The LSM maps with the `sched_process_exec` program that kills (exec allowlists only).
    Signal(Enforcer),
}

impl ExecFileEnforcer {
    /// BPF LSM where the kernel loads it, else fanotify permission events, else the signal
    /// rung; `only` starts that rung or fails (to use a weaker rung on purpose, or test it).
    /// The error names why each rung was refused.
    pub fn start(only: Option<Rung>) -> Result<Self, EnforceError> {
        let mut refused = Vec::new();
        for rung in [Rung::BpfLsm, Rung::Fanotify, Rung::Signal] {
            if only.is_some_and(|o| o != rung) {
                continue;
            }
            let started = match rung {
                Rung::BpfLsm => Enforcer::start().map(Self::Lsm),
                Rung::Fanotify => fanotify::FanotifyEnforcer::start().map(Self::Fanotify),
                _ => Enforcer::start_signal().map(Self::Signal),
            };
            match started {
                Ok(enforcer) => return Ok(enforcer),
                Err(e) => refused.push(format!("{}: {e}", rung.as_str())),
            }
        }
        if refused.is_empty() {
            refused.push(format!("{} does not enforce exec or file rules", only.map_or("", Rung::as_str)));
        }
        Err(EnforceError::NoRung(refused.join("; ")))
    }

    pub fn rung(&self) -> Rung {
        match self {
            Self::Lsm(_) => Rung::BpfLsm,
            Self::Fanotify(_) => Rung::Fanotify,
            Self::Signal(_) => Rung::Signal,
        }
    }

    /// Checks that this rung can enforce every rule (a rule it cannot is an error naming it).
    pub fn check(&self, policies: &[ContainerPolicy]) -> Result<(), EnforceError> {
        validate(policies)?;
        match self {
            Self::Lsm(_) => Ok(()),
            Self::Fanotify(_) => fanotify::check(policies),
            Self::Signal(_) => match policies.iter().position(|p| !p.file_rules.is_empty()) {
                Some(index) => Err(EnforceError::Unsupported {
                    index,
                    cgroup_id: policies[index].cgroup_id,
                    message: format!(
                        "files {:?}: the signal rung holds exec allowlists only (file rules need BPF LSM or fanotify permission events)",
                        policies[index].file_rules[0].prefix
                    ),
                }),
                None => Ok(()),
            },
        }
    }

    pub fn apply(&mut self, policies: &[ContainerPolicy]) -> Result<(), EnforceError> {
        match self {
            Self::Fanotify(e) => e.apply(policies),
            Self::Lsm(e) | Self::Signal(e) => e.apply(policies),
        }
    }

    pub async fn next_alerts(&mut self) -> Result<Vec<Violation>, EnforceError> {
        match self {
            Self::Fanotify(e) => e.next_alerts().await,
            Self::Lsm(e) | Self::Signal(e) => e.next_alerts().await,
        }
    }

    pub fn remaining(&mut self) -> Vec<Violation> {
        match self {
            Self::Fanotify(e) => e.remaining(),
            Self::Lsm(e) | Self::Signal(e) => e.remaining(),
        }
    }

    /// Alerts lost (full ring or queue).
    pub fn dropped(&self) -> Result<u64, EnforceError> {
        match self {
            Self::Fanotify(e) => Ok(e.dropped()),
            Self::Lsm(e) | Self::Signal(e) => e.dropped(),
        }
    }

    /// Policed cgroups nothing enforces yet, with why (the fanotify rung marks a container's
    /// mounts through one of its processes; the kernel rungs need nothing of the sort).
    pub fn pending(&self) -> Vec<(u64, String)> {
        match self {
            Self::Fanotify(e) => e.pending().iter().map(|(id, why)| (*id, why.clone())).collect(),
            Self::Lsm(_) | Self::Signal(_) => Vec::new(),
        }
    }

    /// Marks mounts policed containers made since they were marked (fanotify; the kernel rungs
    /// police every mount already).
    pub fn mark_new_mounts(&mut self) {
        if let Self::Fanotify(e) = self {
            e.mark_new_mounts();
        }
    }

    /// Opens and execs allowed without a verdict (fanotify: unreadable, or not judged within
    /// the bound); the kernel rungs judge everything in the kernel.
    pub fn unjudged(&self) -> u64 {
        match self {
            Self::Fanotify(e) => e.unjudged(),
            Self::Lsm(_) | Self::Signal(_) => 0,
        }
    }

    pub fn malformed(&self) -> u64 {
        match self {
            Self::Fanotify(e) => e.malformed,
            Self::Lsm(e) | Self::Signal(e) => e.malformed,
        }
    }
}

const HOOKS: [(&str, &str); 2] = [("check_exec", "bprm_check_security"), ("check_open", "file_open")];

pub struct Enforcer {
    ebpf: Ebpf,
    generation: u32,
    /// What the active generation holds, to delete it after the next switch.
    written: Vec<(u64, Vec<String>)>,
    alerts: EventRing,
    /// Alert records that did not decode.
    pub malformed: u64,
}

impl Enforcer {
    /// Loads and attaches the LSM programs, with no policy (everything allowed).
    pub fn start() -> Result<Self, EnforceError> {
        let mut enforcer = Self::maps_only()?;
        let btf = Btf::from_sys_fs().map_err(EnforceError::Btf)?;
        for (program, hook) in HOOKS {
            let attach = |source| EnforceError::Attach { hook, source };
            let lsm: &mut Lsm =
                enforcer.ebpf.program_mut(program).ok_or(EnforceError::Missing(program))?.try_into().map_err(attach)?;
            lsm.load(hook, &btf).map_err(attach)?;
            lsm.attach().map_err(attach)?;
        }
        Ok(enforcer)
    }

    /// The signal rung: the same maps, and the `sched_process_exec` program that kills a
    /// program outside its container's allowlist in protect mode (alerts in the others).
    pub fn start_signal() -> Result<Self, EnforceError> {
        let mut ebpf = aya::EbpfLoader::new()
            .override_global("killing", &1u32, true)
            .load(ENFORCE_PROGRAM)
            .map_err(EnforceError::Load)?;
        super::ring::attach_tracepoints(&mut ebpf, &[("signal_exec", "sched_process_exec")])
            .map_err(EnforceError::Tracepoint)?;
        let alerts = EventRing::take(&mut ebpf, "alerts", None)?;
        Ok(Self { ebpf, generation: 0, written: Vec::new(), alerts, malformed: 0 })
    }

    /// Creates the kernel maps without loading or attaching the programs: policies can be
    /// written and read back, nothing is enforced. For checking policy updates on kernels that
    /// refuse LSM programs. Like `start`, must run inside a tokio runtime.
    pub fn maps_only() -> Result<Self, EnforceError> {
        let mut ebpf = Ebpf::load(ENFORCE_PROGRAM).map_err(EnforceError::Load)?;
        let alerts = EventRing::take(&mut ebpf, "alerts", None)?;
        Ok(Self { ebpf, generation: 0, written: Vec::new(), alerts, malformed: 0 })
    }

    /// What the kernel holds for the active generation, read back from the maps: each cgroup's
    /// mode and allowed executables, by cgroup id.
    pub fn in_force(&self) -> Result<Vec<PolicyInForce>, EnforceError> {
        let map_err = |name: &'static str| move |source| EnforceError::Map { name, source };
        let active: Array<&MapData, u32> =
            Array::try_from(self.ebpf.map("active").ok_or(EnforceError::Missing("active"))?)
                .map_err(map_err("active"))?;
        let generation = active.get(&0, 0).map_err(map_err("active"))?;
        let table: HashMap<&MapData, [u8; 16], [u8; POLICY_LEN]> =
            HashMap::try_from(self.ebpf.map("policies").ok_or(EnforceError::Missing("policies"))?)
                .map_err(map_err("policies"))?;
        let execs: HashMap<&MapData, [u8; EXEC_KEY_LEN], u8> =
            HashMap::try_from(self.ebpf.map("allowed_execs").ok_or(EnforceError::Missing("allowed_execs"))?)
                .map_err(map_err("allowed_execs"))?;
        let generation_of = |key: &[u8]| u32::from_le_bytes([key[0], key[1], key[2], key[3]]);
        let cgroup_of = |key: &[u8]| u64::from_le_bytes(key[8..16].try_into().unwrap_or_default());
        let mut found = Vec::new();
        for entry in table.iter() {
            let (key, value) = entry.map_err(map_err("policies"))?;
            if generation_of(&key) != generation {
                continue;
            }
            let mode = match u32::from_le_bytes([value[0], value[1], value[2], value[3]]) {
                1 => Mode::Discover,
                2 => Mode::Monitor,
                _ => Mode::Protect,
            };
            found.push(PolicyInForce { cgroup_id: cgroup_of(&key), mode, allowed_execs: Vec::new() });
        }
        for entry in execs.keys() {
            let key = entry.map_err(map_err("allowed_execs"))?;
            if generation_of(&key) != generation {
                continue;
            }
            let path = &key[16..];
            let path = String::from_utf8_lossy(&path[..path.iter().position(|b| *b == 0).unwrap_or(path.len())]);
            if let Some(policy) = found.iter_mut().find(|p| p.cgroup_id == cgroup_of(&key)) {
                policy.allowed_execs.push(path.into_owned());
            }
        }
        found.sort_by_key(|p| p.cgroup_id);
        found.iter_mut().for_each(|p| p.allowed_execs.sort());
        Ok(found)
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Replaces every policy at once. Invalid input is refused before anything is written, and
    /// the policy in force stays as it was.
    pub fn apply(&mut self, policies: &[ContainerPolicy]) -> Result<(), EnforceError> {
        validate(policies)?;
        let next = self.generation.wrapping_add(1);
        let written: Vec<(u64, Vec<String>)> =
            policies.iter().map(|p| (p.cgroup_id, p.exec_allowlist.clone().unwrap_or_default())).collect();
        if let Err(err) = self.write_generation(next, policies) {
            // Nothing of a generation that never became active may stay behind.
            let _ = self.forget(next, &written);
            return Err(err);
        }
        let map_err = |name: &'static str| move |source| EnforceError::Map { name, source };
        // The switch: one array element.
        let mut active: Array<&mut MapData, u32> =
            Array::try_from(self.ebpf.map_mut("active").ok_or(EnforceError::Missing("active"))?)
                .map_err(map_err("active"))?;
        if let Err(source) = active.set(0, next, 0) {
            let _ = self.forget(next, &written);
            return Err(EnforceError::Map { name: "active", source });
        }
        let old = std::mem::replace(&mut self.written, written);
        let previous = self.generation;
        self.generation = next;
        self.forget(previous, &old)
    }

    /// Writes a whole generation's policies and allowed executables (not yet active).
    fn write_generation(&mut self, next: u32, policies: &[ContainerPolicy]) -> Result<(), EnforceError> {
        let map_err = |name: &'static str| move |source| EnforceError::Map { name, source };
        {
            let mut table: HashMap<&mut MapData, [u8; 16], [u8; POLICY_LEN]> =
                HashMap::try_from(self.ebpf.map_mut("policies").ok_or(EnforceError::Missing("policies"))?)
                    .map_err(map_err("policies"))?;
            for policy in policies {
                table
                    .insert(policy_key(next, policy.cgroup_id), policy_value(policy), 0)
                    .map_err(map_err("policies"))?;
            }
        }
        {
            let mut execs: HashMap<&mut MapData, [u8; EXEC_KEY_LEN], u8> =
                HashMap::try_from(self.ebpf.map_mut("allowed_execs").ok_or(EnforceError::Missing("allowed_execs"))?)
                    .map_err(map_err("allowed_execs"))?;
            for policy in policies {
                for path in policy.exec_allowlist.iter().flatten() {
                    execs.insert(exec_key(next, policy.cgroup_id, path), 1, 0).map_err(map_err("allowed_execs"))?;
                }
            }
        }
        Ok(())
    }

    /// Deletes a generation that is no longer active.
    fn forget(&mut self, generation: u32, written: &[(u64, Vec<String>)]) -> Result<(), EnforceError> {
        let map_err = |name: &'static str| move |source| EnforceError::Map { name, source };
        let mut table: HashMap<&mut MapData, [u8; 16], [u8; POLICY_LEN]> =
            HashMap::try_from(self.ebpf.map_mut("policies").ok_or(EnforceError::Missing("policies"))?)
                .map_err(map_err("policies"))?;
        for (cgroup_id, _) in written {
            let _ = table.remove(&policy_key(generation, *cgroup_id));
        }
        let mut execs: HashMap<&mut MapData, [u8; EXEC_KEY_LEN], u8> =
            HashMap::try_from(self.ebpf.map_mut("allowed_execs").ok_or(EnforceError::Missing("allowed_execs"))?)
                .map_err(map_err("allowed_execs"))?;
        for (cgroup_id, paths) in written {
            for path in paths {
                let _ = execs.remove(&exec_key(generation, *cgroup_id, path));
            }
        }
        Ok(())
    }

    /// Waits for alerts and returns what the ring buffer holds.
    pub async fn next_alerts(&mut self) -> Result<Vec<Violation>, EnforceError> {
        Ok(self.alerts.next_batch(decode_violation, &mut self.malformed).await?)
    }

    /// The alerts queued now, without waiting (when stopping).
    pub fn remaining(&mut self) -> Vec<Violation> {
        self.alerts.remaining(decode_violation, &mut self.malformed)
    }

    /// Alerts the kernel could not queue because the ring buffer was full.
    pub fn dropped(&self) -> Result<u64, EnforceError> {
        Ok(per_cpu_sum(&self.ebpf, "alert_drops")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(cgroup_id: u64) -> ContainerPolicy {
        ContainerPolicy {
            cgroup_id,
            mode: Mode::Protect,
            exec_allowlist: Some(vec!["/bin/busybox".into()]),
            file_rules: vec![FileRule { prefix: "/etc/".into(), deny_read: false, deny_write: true }],
            connect: None,
            l7: None,
        }
    }

    #[test]
    fn malformed_policies_are_refused_naming_the_policy() {
        assert_eq!(validate(&[policy(7)]), Ok(()));
        let mut relative = policy(7);
        relative.exec_allowlist = Some(vec!["bin/sh".into()]);
        let err = validate(&[policy(5), relative]).unwrap_err().to_string();
        assert!(err.starts_with("policy 1 (cgroup 7)") && err.contains("\"bin/sh\""), "{err}");
        assert_eq!(validate(&[policy(7), policy(7)]), Err(PolicyError::Duplicate(7)));
        let mut long = policy(7);
        long.file_rules[0].prefix = format!("/{}", "a".repeat(200));
        assert!(validate(&[long]).unwrap_err().to_string().contains("shorter than 128"));
        let mut nothing = policy(7);
        nothing.file_rules[0].deny_write = false;
        assert!(validate(&[nothing]).unwrap_err().to_string().contains("denies nothing"));
        let mut carved = policy(7);
        carved.file_rules.push(FileRule { prefix: "/etc/app/".into(), deny_read: false, deny_write: false });
        validate(&[carved.clone()]).expect("an exception under /etc/");
        assert_eq!(deciding_rule(&carved.file_rules, "/etc/app/x.conf").map(|r| r.deny_write), Some(false));
        assert_eq!(deciding_rule(&carved.file_rules, "/etc/passwd").map(|r| r.deny_write), Some(true));
        assert!(deciding_rule(&carved.file_rules, "/tmp/x").is_none());
        let mut many = policy(7);
        many.file_rules = vec![policy(7).file_rules[0].clone(); 9];
        assert!(validate(&[many]).is_err());
    }

    #[test]
    fn map_records_follow_the_c_layout() {
        let value = policy_value(&policy(7));
        assert_eq!(u32::from_le_bytes(value[0..4].try_into().unwrap()), 3, "protect");
        assert_eq!(u32::from_le_bytes(value[4..8].try_into().unwrap()), 1, "has an allowlist");
        assert_eq!(u32::from_le_bytes(value[8..12].try_into().unwrap()), 1, "one rule");
        assert_eq!(u32::from_le_bytes(value[16..20].try_into().unwrap()), 2, "deny write");
        assert_eq!(u32::from_le_bytes(value[20..24].try_into().unwrap()), 5, "prefix length");
        assert_eq!(&value[24..29], b"/etc/");
        let key = exec_key(4, 7, "/bin/busybox");
        assert_eq!(&key[..4], &4u32.to_le_bytes());
        assert_eq!(&key[8..16], &7u64.to_le_bytes());
        assert_eq!(&key[16..28], b"/bin/busybox");
        assert!(key[28..].iter().all(|b| *b == 0));
        assert_eq!(decode_violation(&[0u8; 10]), None);
    }

    #[test]
    fn alerts_decode_in_the_c_field_order() {
        let mut b = vec![0u8; ALERT_LEN];
        for (at, v) in [(0, 1u32), (4, 2), (8, 4242), (12, 1000), (32, 2), (36, 3)] {
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        b[16..24].copy_from_slice(&367u64.to_le_bytes());
        b[40..42].copy_from_slice(b"sh");
        b[56..62].copy_from_slice(b"/other");
        let alert = decode_violation(&b).unwrap();
        assert_eq!(
            (alert.kind, alert.action, alert.pid, alert.uid, alert.cgroup_id),
            (AlertKind::Exec, AlertAction::Denied, 4242, 1000, 367)
        );
        assert_eq!((alert.read, alert.write), (false, true));
        assert_eq!((alert.comm.as_str(), alert.path.as_str()), ("sh", "/other"));
    }
}

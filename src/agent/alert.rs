//! The one alert type, on the wire and in the store: a detection rule broken, or a container's
//! policy not allowing an exec, an open or a connect. Each carries the rule, its severity and
//! ATT&CK technique, the event that broke it, the process's ancestry, the mode and what was done.
//! Serde types only.

use serde::{Deserialize, Serialize};

use super::enforce::Mode;
use super::processes::Ancestor;
use crate::model::Severity;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Discover mode: kept for learning, allowed.
    Recorded,
    Alerted,
    /// Refused (EPERM) before it happened: an exec, an open or a connect.
    Denied,
    /// The process was killed (SIGKILL).
    Killed,
}

impl Action {
    /// The name on the wire (`recorded`, `alerted`, `denied`, `killed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::Alerted => "alerted",
            Self::Denied => "denied",
            Self::Killed => "killed",
        }
    }
}

/// The event that raised the alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// `exec`, `open`, `connect`, `send`.
    pub kind: String,
    pub pid: u32,
    pub uid: u32,
    pub comm: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exe: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The file opened.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub write: bool,
    /// `10.0.0.1:3333`, for connects and sends (for accepts: the peer that connected).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote: String,
    /// For accepts: the container's own end, `10.0.0.2:8080`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub local: String,
    /// CLOCK_BOOTTIME nanoseconds on its node.
    pub timestamp_ns: u64,
}

impl Trigger {
    /// What the event was about: the file opened, the address connected to, else the program.
    pub fn object(&self) -> &str {
        match self.kind.as_str() {
            "open" | "http" | "dns" | "tls" => &self.path,
            "connect" | "send" => &self.remote,
            _ => &self.exe,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique: the node, when its agent started, and a sequence number.
    #[serde(default)]
    pub id: String,
    /// When it happened, wall clock (Unix milliseconds).
    #[serde(default)]
    pub at_unix_ms: u64,
    /// The detection rule's id, or `policy-exec`, `policy-file`, `policy-connect`.
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    /// MITRE ATT&CK technique (empty for policy alerts, which are about the policy, not a
    /// technique).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub technique: String,
    pub why: String,
    /// The container's policy mode, or for detection rules protect (`--protect`) or monitor.
    pub mode: Mode,
    pub action: Action,
    /// The policy rule that decided, for policy alerts (`agent-policy.yaml containers[0]
    /// allowExec`, `... connect: deny 10.0.0.0/8 port 22`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy: String,
    pub event: Trigger,
    /// The process, then its parent and so on up to the container's first process (or pid 1),
    /// kept when they have exited.
    pub ancestry: Vec<Ancestor>,
    /// How many events this alert stands for: 1, or the repeats folded into it.
    pub count: u64,
}

//! Promotion of groups between modes, done by the agent itself (`--promote-after`,
//! `--protect-after`): a group nothing else polices goes from discover to monitor once it has
//! learned nothing new for the quiet period (its learned policy, in monitor mode, is put in
//! force), and from monitor to protect after it ran that long without a violation. Every change
//! is logged (`STATE_DIR/promotions.jsonl`, and standard error) and kept, so promotions survive a
//! restart. An operator may also set a group's mode (`picket policy mode`, the Behaviour pane's
//! keys) and accept a violation into its policy (`picket policy accept`); both are logged the same
//! way.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::policy::PolicyFile;
use crate::learn::Baselines;
use crate::policy::spec::Mode;

const STATE_FILE: &str = "promoted.json";
const LOG_FILE: &str = "promotions.jsonl";

/// One group's promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promoted {
    /// The learned policy, in its current mode.
    pub policy: crate::policy::PicketPolicy,
    pub mode: Mode,
    /// When the group entered this mode (Unix ms).
    pub since_ms: u64,
    /// Its last violation (Unix ms; 0: none).
    pub last_violation_ms: u64,
    /// What broke its policy lately, folded by what it was (at most `MAX_VIOLATIONS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
}

/// At most this many distinct violations are kept per group; the oldest make room.
pub const MAX_VIOLATIONS: usize = 32;

/// One thing a group's policy did not allow, folded with its repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub kind: ViolationKind,
    /// The program (exec), the file (write) or `address:port` (connect).
    pub subject: String,
    pub first_ms: u64,
    pub last_ms: u64,
    pub count: u64,
    /// `alerted` (monitor) or `denied` (protect), the last time.
    pub action: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViolationKind {
    Exec,
    Write,
    Connect,
    /// An inbound connection on a port the policy does not list: the subject is the port.
    Accept,
}

impl Violation {
    /// What a policy alert was about, if it can be accepted into a learned policy.
    pub fn of(alert: &super::alert::Alert) -> Option<Self> {
        let event = &alert.event;
        let (kind, subject) = match alert.rule.as_str() {
            "policy-exec" if !event.exe.is_empty() => (ViolationKind::Exec, event.exe.clone()),
            "policy-file" if event.write && !event.path.is_empty() => (ViolationKind::Write, event.path.clone()),
            "policy-connect" if event.remote.parse::<std::net::SocketAddr>().is_ok() => {
                (ViolationKind::Connect, event.remote.clone())
            }
            "policy-accept" => match event.local.parse::<std::net::SocketAddr>() {
                Ok(local) => (ViolationKind::Accept, local.port().to_string()),
                Err(_) => return None,
            },
            _ => return None,
        };
        let action = alert.action.as_str().to_string();
        Some(Self { kind, subject, first_ms: alert.at_unix_ms, last_ms: alert.at_unix_ms, count: 1, action })
    }

    /// How it is named on the command line and in the pane: `exec:/bin/sh`, `write:/etc/x`,
    /// `connect:10.0.0.1:443`.
    pub fn key(&self) -> String {
        let kind = match self.kind {
            ViolationKind::Exec => "exec",
            ViolationKind::Write => "write",
            ViolationKind::Connect => "connect",
            ViolationKind::Accept => "accept",
        };
        format!("{kind}:{}", self.subject)
    }
}

/// Why a mode could not be set or a violation accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PromotionError {
    #[error("group {0}: nothing learned of it yet")]
    Unknown(String),
    #[error("group {0}: it runs in discover mode, so it has no policy to accept into (set monitor or protect first)")]
    NotPromoted(String),
    #[error("group {group}: no violation {key} (its violations: {known})")]
    NoSuchViolation { group: String, key: String, known: String },
    #[error("{0}")]
    Learn(#[from] crate::learn::to_policy::LearnError),
}

/// A mode change, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeChange {
    pub at_unix_ms: u64,
    pub group: String,
    pub from: Mode,
    pub to: Mode,
    pub why: String,
    /// Who made it, for changes made by hand (empty: the agent's own promotion).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub who: String,
}

impl ModeChange {
    /// What the change did, in a line short enough for a toast: the news first.
    pub fn said(&self) -> String {
        match self.from == self.to {
            true => format!("{} into {}", self.why, self.group),
            false => format!("{} → {}: {}", self.from.as_str(), self.to.as_str(), self.group),
        }
    }
}

pub struct Promotion {
    /// Discover → monitor after this long without anything new learned.
    pub quiet: Option<Duration>,
    /// Monitor → protect after this long without a violation.
    pub clean: Option<Duration>,
    dir: PathBuf,
    pub groups: BTreeMap<String, Promoted>,
}

impl Promotion {
    /// Starts from the promotions kept in `dir` (none: a fresh start).
    pub fn load(dir: &Path, quiet: Option<Duration>, clean: Option<Duration>) -> Self {
        let groups = std::fs::read_to_string(dir.join(STATE_FILE))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Self { quiet, clean, dir: dir.to_path_buf(), groups }
    }

    /// A violation in `group` (a policy alert on one of its containers): its clean period starts
    /// again, and what it was is kept for the operator to accept.
    pub fn violation(&mut self, group: &str, alert: &super::alert::Alert) {
        let Some(promoted) = self.groups.get_mut(group) else { return };
        promoted.last_violation_ms = promoted.last_violation_ms.max(alert.at_unix_ms);
        let Some(violation) = Violation::of(alert) else { return };
        let seen = promoted.violations.iter_mut().find(|v| v.kind == violation.kind && v.subject == violation.subject);
        match seen {
            Some(seen) => {
                seen.count += 1;
                seen.last_ms = seen.last_ms.max(violation.last_ms);
                seen.action = violation.action;
            }
            None => {
                if promoted.violations.len() >= MAX_VIOLATIONS
                    && let Some(oldest) = (0..promoted.violations.len()).min_by_key(|&i| promoted.violations[i].last_ms)
                {
                    promoted.violations.remove(oldest);
                }
                promoted.violations.push(violation);
            }
        }
    }

    /// Sets `group`'s mode by hand: monitor or protect put its learned policy (or the one it
    /// already has, with what was accepted into it) in force in that mode; discover takes it
    /// out of the agent's modes, so only learning goes on. None: it is in that mode already.
    pub fn set_mode(
        &mut self,
        group: &str,
        mode: Mode,
        baselines: &Baselines,
        now_ms: u64,
        who: &str,
    ) -> Result<Option<ModeChange>, PromotionError> {
        let from = self.groups.get(group).map_or(Mode::Discover, |p| p.mode);
        if from == mode {
            return Ok(None);
        }
        match (mode, self.groups.get_mut(group)) {
            (Mode::Discover, _) => {
                self.groups.remove(group);
            }
            (_, Some(promoted)) => {
                promoted.mode = mode;
                promoted.policy.spec.mode = mode;
                promoted.since_ms = now_ms;
            }
            (_, None) => {
                let baseline = baselines.get(group).ok_or_else(|| PromotionError::Unknown(group.to_string()))?;
                let policy = crate::learn::to_policy::policy_of(baseline, mode)?;
                let promoted =
                    Promoted { policy, mode, since_ms: now_ms, last_violation_ms: 0, violations: Vec::new() };
                self.groups.insert(group.to_string(), promoted);
            }
        }
        Ok(Some(ModeChange {
            at_unix_ms: now_ms,
            group: group.to_string(),
            from,
            to: mode,
            why: "set by hand".into(),
            who: who.to_string(),
        }))
    }

    /// Accepts violations of `group` (by `Violation::key`) into its policy: the program is
    /// allowed, the file may be written, the address and port may be connected to. The change is
    /// logged like a mode change (the same mode on both sides).
    pub fn accept(
        &mut self,
        group: &str,
        keys: &[String],
        now_ms: u64,
        who: &str,
    ) -> Result<ModeChange, PromotionError> {
        let promoted = self.groups.get_mut(group).ok_or_else(|| PromotionError::NotPromoted(group.to_string()))?;
        let mut taken = Vec::new();
        for key in keys {
            let Some(at) = promoted.violations.iter().position(|v| &v.key() == key) else {
                let known: Vec<String> = promoted.violations.iter().map(Violation::key).collect();
                return Err(PromotionError::NoSuchViolation {
                    group: group.to_string(),
                    key: key.clone(),
                    known: if known.is_empty() { "none".into() } else { known.join(", ") },
                });
            };
            taken.push(at);
        }
        taken.sort_unstable();
        taken.dedup();
        for at in taken.iter().rev() {
            let violation = promoted.violations.remove(*at);
            allow(&mut promoted.policy.spec, &violation);
        }
        Ok(ModeChange {
            at_unix_ms: now_ms,
            group: group.to_string(),
            from: promoted.mode,
            to: promoted.mode,
            why: format!("accepted {}", keys.join(", ")),
            who: who.to_string(),
        })
    }

    /// The promotions due now. `policed` are the groups another policy (a file, the cluster, an
    /// apply) already names: they are never promoted here.
    pub fn tick(&mut self, baselines: &Baselines, policed: &HashSet<String>, now_ms: u64) -> Vec<ModeChange> {
        let mut changes = Vec::new();
        if let Some(quiet) = self.quiet {
            let quiet_ms = u64::try_from(quiet.as_millis()).unwrap_or(u64::MAX);
            for (key, baseline) in &baselines.groups {
                if self.groups.contains_key(key) || policed.contains(key) || baseline.processes.is_empty() {
                    continue;
                }
                if now_ms.saturating_sub(baseline.last_change_ms) < quiet_ms {
                    continue;
                }
                let Ok(policy) = crate::learn::to_policy::policy_of(baseline, Mode::Monitor) else { continue };
                self.groups.insert(
                    key.clone(),
                    Promoted {
                        policy,
                        mode: Mode::Monitor,
                        since_ms: now_ms,
                        last_violation_ms: 0,
                        violations: Vec::new(),
                    },
                );
                changes.push(ModeChange {
                    at_unix_ms: now_ms,
                    group: key.clone(),
                    from: Mode::Discover,
                    to: Mode::Monitor,
                    why: format!("nothing new learned for {}", human(quiet)),
                    who: String::new(),
                });
            }
        }
        if let Some(clean) = self.clean {
            let clean_ms = u64::try_from(clean.as_millis()).unwrap_or(u64::MAX);
            for (key, promoted) in self.groups.iter_mut() {
                let clean_since = promoted.since_ms.max(promoted.last_violation_ms);
                if promoted.mode != Mode::Monitor || now_ms.saturating_sub(clean_since) < clean_ms {
                    continue;
                }
                promoted.policy.spec.mode = Mode::Protect;
                promoted.mode = Mode::Protect;
                promoted.since_ms = now_ms;
                changes.push(ModeChange {
                    at_unix_ms: now_ms,
                    group: key.clone(),
                    from: Mode::Monitor,
                    to: Mode::Protect,
                    why: format!("no violation for {}", human(clean)),
                    who: String::new(),
                });
            }
        }
        changes
    }

    /// The promoted groups' policies, as PicketPolicy documents.
    pub fn yaml(&self) -> String {
        self.groups
            .values()
            .filter_map(|p| serde_saphyr::to_string(&p.policy).ok())
            .map(|yaml| format!("---\n{yaml}"))
            .collect()
    }

    /// The promoted groups' policies as the agent's rules.
    pub fn policy_file(&self) -> Result<PolicyFile, super::policy::PolicyFileError> {
        let text = self.yaml();
        if text.is_empty() {
            return Ok(PolicyFile { containers: Vec::new() });
        }
        PolicyFile::parse(&self.dir.join("promoted-policy.yaml"), &text)
    }

    /// Keeps the promotions and appends `changes` to the log.
    pub fn save(&self, changes: &[ModeChange]) -> std::io::Result<()> {
        use std::io::Write as _;
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(STATE_FILE);
        let temporary = path.with_extension(format!("json.new.{}", std::process::id()));
        std::fs::write(&temporary, serde_json::to_vec(&self.groups).map_err(std::io::Error::other)?)?;
        std::fs::rename(&temporary, &path)?;
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(LOG_FILE))?;
        for change in changes {
            writeln!(log, "{}", serde_json::to_string(change).map_err(std::io::Error::other)?)?;
        }
        Ok(())
    }
}

/// Widens `spec` by what `violation` did.
fn allow(spec: &mut crate::policy::spec::PolicySpec, violation: &Violation) {
    use crate::policy::spec::{Action, FileRule, NetworkRule, Peer, PortRule, ProcessRule};
    match violation.kind {
        ViolationKind::Exec => {
            let open = spec.process.iter_mut().find(|r| r.action == Action::Allow && r.from_source.is_empty());
            match open {
                Some(rule) if !rule.match_paths.contains(&violation.subject) => {
                    rule.match_paths.push(violation.subject.clone());
                    rule.match_paths.sort();
                }
                Some(_) => {}
                None => spec.process.push(ProcessRule {
                    match_paths: vec![violation.subject.clone()],
                    match_directories: Vec::new(),
                    from_source: Vec::new(),
                    user: None,
                    action: Action::Allow,
                }),
            }
        }
        ViolationKind::Write => spec.file.push(FileRule {
            match_paths: vec![violation.subject.clone()],
            match_directories: Vec::new(),
            read_only: false,
            from_source: Vec::new(),
            action: Action::Allow,
        }),
        ViolationKind::Connect => {
            let Ok(address) = violation.subject.parse::<std::net::SocketAddr>() else { return };
            let cidr = ipnet::IpNet::from(address.ip()).to_string();
            spec.egress.push(NetworkRule {
                peers: vec![Peer { cidr: Some(cidr), ..Default::default() }],
                ports: vec![PortRule { port: address.port().to_string(), protocol: None }],
                applications: Vec::new(),
                http: Vec::new(),
                dns: Vec::new(),
                server_names: Vec::new(),
                action: Action::Allow,
            });
        }
        ViolationKind::Accept => {
            let port = PortRule { port: violation.subject.clone(), protocol: None };
            let open = spec.ingress.iter_mut().find(|r| r.action == Action::Allow && r.peers.is_empty());
            match open {
                Some(rule) if !rule.ports.iter().any(|p| p.port == port.port) => rule.ports.push(port),
                Some(_) => {}
                None => spec.ingress.push(NetworkRule {
                    peers: Vec::new(),
                    ports: vec![port],
                    applications: Vec::new(),
                    http: Vec::new(),
                    dns: Vec::new(),
                    server_names: Vec::new(),
                    action: Action::Allow,
                }),
            }
        }
    }
}

fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::alert::Alert;
    use crate::learn::{GroupRef, Observation, Observed};

    #[test]
    fn quiet_groups_go_to_monitor_then_clean_ones_to_protect_and_violations_wait() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut baselines = Baselines::default();
        for (image, at) in [("web:1", 1_000), ("busy:1", 9_000), ("owned:1", 1_000)] {
            baselines.observe(&Observation {
                group: GroupRef::local(image),
                at_ms: at,
                what: Observed::Exec {
                    exe: "/bin/busybox".into(),
                    path: "/bin/busybox".into(),
                    parent: "".into(),
                    uid: 0,
                    probe: false,
                },
            });
        }
        let policed: HashSet<String> = ["local/owned:1".to_string()].into();
        let mut promotion = Promotion::load(dir.path(), Some(Duration::from_secs(5)), Some(Duration::from_secs(10)));
        let changes = promotion.tick(&baselines, &policed, 7_000);
        assert_eq!(
            changes.iter().map(|c| (c.group.as_str(), c.to)).collect::<Vec<_>>(),
            [("local/web:1", Mode::Monitor)]
        );
        assert!(changes[0].why.contains("5s"));
        let rules = promotion.policy_file().expect("held");
        assert_eq!(rules.containers.len(), 1);
        assert_eq!(rules.containers[0].image.as_deref(), Some("web:1"));
        promotion.save(&changes).expect("saved");

        // A violation at 12 s: the clean period counts from there.
        promotion.violation("local/web:1", &policy_alert("policy-exec", 12_000, |e| e.exe = "/bin/sh".into()));
        assert!(promotion.tick(&baselines, &policed, 17_500).iter().all(|c| c.to != Mode::Protect));
        let changes = promotion.tick(&baselines, &policed, 22_000);
        assert!(changes.iter().any(|c| c.group == "local/web:1" && c.to == Mode::Protect), "{changes:?}");
        let rules = promotion.policy_file().expect("held");
        let web = rules.containers.iter().find(|c| c.image.as_deref() == Some("web:1")).expect("web's rule");
        assert_eq!(web.mode, crate::agent::enforce::Mode::Protect);
        let busy = rules.containers.iter().find(|c| c.image.as_deref() == Some("busy:1")).expect("busy's rule");
        assert_eq!(
            busy.mode,
            crate::agent::enforce::Mode::Monitor,
            "quiet since 9 s: monitor at 17.5 s, not clean 10 s yet"
        );
        promotion.save(&changes).expect("saved");

        let again = Promotion::load(dir.path(), None, None);
        assert_eq!(again.groups["local/web:1"].mode, Mode::Protect, "kept across restarts");
        let log = std::fs::read_to_string(dir.path().join(LOG_FILE)).expect("log");
        assert!(log.lines().count() >= 2, "{log}");
    }

    fn policy_alert(rule: &str, at_ms: u64, fill: impl FnOnce(&mut crate::agent::alert::Trigger)) -> Alert {
        let mut event = crate::agent::alert::Trigger::default();
        fill(&mut event);
        Alert {
            id: String::new(),
            at_unix_ms: at_ms,
            rule: rule.into(),
            title: rule.into(),
            severity: crate::model::Severity::High,
            technique: String::new(),
            why: String::new(),
            mode: crate::agent::enforce::Mode::Protect,
            action: crate::agent::alert::Action::Denied,
            policy: String::new(),
            event,
            ancestry: Vec::new(),
            count: 1,
        }
    }

    fn learned(image: &str) -> Baselines {
        let mut baselines = Baselines::default();
        baselines.observe(&Observation {
            group: GroupRef::local(image),
            at_ms: 1_000,
            what: Observed::Exec {
                exe: "/bin/busybox".into(),
                path: "/bin/busybox".into(),
                parent: "".into(),
                uid: 0,
                probe: false,
            },
        });
        baselines
    }

    #[test]
    fn a_mode_set_by_hand_puts_the_learned_policy_in_force_and_discover_takes_it_out() {
        let dir = tempfile::tempdir().expect("temp dir");
        let baselines = learned("web:1");
        let mut promotion = Promotion::load(dir.path(), None, None);
        let change = promotion.set_mode("local/web:1", Mode::Protect, &baselines, 5_000, "alice").expect("set");
        let change = change.expect("a change");
        assert_eq!((change.from, change.to, change.who.as_str()), (Mode::Discover, Mode::Protect, "alice"));
        assert_eq!(change.said(), "discover → protect: local/web:1");
        let rules = promotion.policy_file().expect("held");
        assert_eq!(rules.containers[0].mode, crate::agent::enforce::Mode::Protect);
        assert_eq!(promotion.set_mode("local/web:1", Mode::Protect, &baselines, 6_000, "alice"), Ok(None));
        let change = promotion.set_mode("local/web:1", Mode::Monitor, &baselines, 7_000, "bob").expect("set");
        assert_eq!(change.map(|c| c.from), Some(Mode::Protect));
        assert_eq!(promotion.groups["local/web:1"].policy.spec.mode, Mode::Monitor);
        promotion.set_mode("local/web:1", Mode::Discover, &baselines, 8_000, "bob").expect("set");
        assert!(promotion.groups.is_empty() && promotion.policy_file().expect("empty").containers.is_empty());
        assert_eq!(
            promotion.set_mode("local/nobody:1", Mode::Monitor, &baselines, 9_000, "bob"),
            Err(PromotionError::Unknown("local/nobody:1".into()))
        );
    }

    #[test]
    fn violations_are_folded_bounded_and_accepted_into_the_policy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let baselines = learned("web:1");
        let group = "local/web:1";
        let mut promotion = Promotion::load(dir.path(), None, None);
        promotion.set_mode(group, Mode::Protect, &baselines, 1_000, "alice").expect("set");
        for at in [2_000, 3_000] {
            promotion.violation(group, &policy_alert("policy-exec", at, |e| e.exe = "/usr/bin/curl".into()));
        }
        promotion.violation(
            group,
            &policy_alert("policy-file", 4_000, |e| {
                e.path = "/var/cache/app/x".into();
                e.write = true;
            }),
        );
        promotion.violation(group, &policy_alert("policy-connect", 5_000, |e| e.remote = "192.0.2.7:8443".into()));
        promotion.violation(group, &policy_alert("policy-connect", 5_500, |e| e.remote = "[2001:db8::1]:53".into()));
        promotion.violation(group, &policy_alert("policy-file", 6_000, |e| e.path = "/etc/shadow".into()));
        promotion.violation(
            group,
            &policy_alert("policy-accept", 6_500, |e| {
                e.remote = "10.0.0.9:40001".into();
                e.local = "10.0.0.2:9090".into();
            }),
        );
        let violations = &promotion.groups[group].violations;
        let keys: Vec<String> = violations.iter().map(Violation::key).collect();
        assert_eq!(
            keys,
            [
                "exec:/usr/bin/curl",
                "write:/var/cache/app/x",
                "connect:192.0.2.7:8443",
                "connect:[2001:db8::1]:53",
                "accept:9090"
            ],
            "a read refused by a hand-written rule is not something to accept"
        );
        assert_eq!((violations[0].count, violations[0].first_ms, violations[0].last_ms), (2, 2_000, 3_000));
        assert_eq!(promotion.groups[group].last_violation_ms, 6_500);

        let wrong = promotion.accept(group, &["exec:/bin/nope".into()], 7_000, "alice");
        assert!(
            matches!(&wrong, Err(PromotionError::NoSuchViolation { known, .. }) if known.contains("exec:/usr/bin/curl"))
        );
        assert_eq!(promotion.groups[group].violations.len(), 5, "nothing taken on a mistake");
        let keys: Vec<String> = keys.clone();
        let change = promotion.accept(group, &keys, 7_000, "alice").expect("accepted");
        assert_eq!(change.who, "alice");
        assert!(change.said().starts_with("accepted exec:/usr/bin/curl, write:"), "{change:?}");
        assert!(change.said().ends_with(" into local/web:1"), "{change:?}");
        assert!(promotion.groups[group].violations.is_empty());

        let rules = promotion.policy_file().expect("held");
        let policy = &rules.resolve_all()[0];
        let allowed = policy.exec_allowlist.as_ref().expect("an allowlist");
        assert!(allowed.iter().any(|p| p == "/usr/bin/curl") && allowed.iter().any(|p| p == "/bin/busybox"));
        let writes = |path: &str| {
            crate::agent::enforce::deciding_rule(&policy.file_rules, path).is_none_or(|rule| !rule.deny_write)
        };
        assert!(writes("/var/cache/app/x"), "{policy:?}");
        assert!(!writes("/var/cache/app/y"), "only what was accepted: {policy:?}");
        let connect = policy.connect.as_ref().expect("connect rules");
        let may = |address: &str, protocol: u32| {
            let address: std::net::SocketAddr = address.parse().expect("address");
            connect.deny.iter().all(|d| !d.covers(address.ip(), address.port(), protocol))
                && connect
                    .allow
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|d| d.covers(address.ip(), address.port(), protocol)))
        };
        assert!(may("192.0.2.7:8443", 6) && may("192.0.2.7:8443", 17), "any protocol: {connect:?}");
        assert!(!may("192.0.2.7:8444", 6) && !may("192.0.2.8:8443", 6), "only what was accepted: {connect:?}");
        assert!(may("[2001:db8::1]:53", 17), "{connect:?}");
        let rule = &rules.containers[0];
        assert!(rule.accepts("10.0.0.9".parse().unwrap(), 9090, 6), "the accepted port, from anywhere");
        assert!(!rule.accepts("10.0.0.9".parse().unwrap(), 9091, 6), "only that port");

        // Bounded: the oldest make room.
        for i in 0..(MAX_VIOLATIONS as u64 + 5) {
            promotion.violation(group, &policy_alert("policy-exec", 10_000 + i, |e| e.exe = format!("/tmp/p{i}")));
        }
        let violations = &promotion.groups[group].violations;
        assert_eq!(violations.len(), MAX_VIOLATIONS);
        assert!(violations.iter().all(|v| v.subject != "/tmp/p0"), "the oldest went first");
        assert!(matches!(promotion.accept("local/other:1", &[], 1, "a"), Err(PromotionError::NotPromoted(_))));
    }
}

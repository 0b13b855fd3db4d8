//! Detection in the agent: every exec, watched open and connect is turned into rule facts
//! (the process's parent, whether its standard streams are sockets, whether its executable was
//! written after the container started, ...) and judged by the rule set. A storm of the same
//! rule, container and program folds into one alert and a count. In protect mode a deniable
//! rule's process is killed at once (every kernel can do that; the exec itself has already
//! happened, so the alert says `killed`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::attribution::ContainerRef;
use super::enforce::Mode;
use super::events::{ProcessEvent, ProcessEventKind};
use super::files::FileEvent;
use super::net::{NetEvent, NetEventKind};
use super::processes::ProcessTable;
use crate::model::Severity;
use crate::rules::{Facts, On, RuleSet, Whose};

/// Repeats of one rule, container and program within this window fold into one alert.
const FOLD_WINDOW: Duration = Duration::from_secs(60);

pub use super::alert::{Action, Alert, Trigger};

struct Fold {
    since: Instant,
    folded: u64,
    latest: Alert,
    container: Option<ContainerRef>,
}

/// How protect mode applies to detections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protect {
    /// Kill the processes of deniable detections in containers.
    pub containers: bool,
    /// And on the host (off by default: the node's own programs are at stake).
    pub host: bool,
}

pub struct Detector {
    rules: RuleSet,
    /// A rule asks whether standard input or output is a socket: only then is it read (two
    /// readlinks and the socket tables per exec).
    stdio_rules: bool,
    processes: ProcessTable,
    folds: HashMap<(String, String, String), Fold>,
    protect: Protect,
    /// When each container started, for drift.
    started: super::drift::Starts,
    /// This agent and its ancestors: never killed.
    protected_pids: Vec<u32>,
    /// Finds a live process of a container whose event's process is gone.
    resolver: super::attribution::CgroupResolver,
    /// The connect hooks' guard rules: index -> detection rule id.
    network_guard: Vec<String>,
}

/// The exec rules a check of the file alone can decide before the program runs: deniable ones
/// whose conditions are about the executable and where it runs (not its arguments or parent,
/// which exec has not set yet).
pub fn exec_time_rules(rules: &RuleSet) -> Vec<crate::rules::Rule> {
    use crate::rules::Condition::{CommIn, CommNotIn, Drift, ExeIn, ExePrefixAny, InContainer, Setuid};
    rules
        .rules
        .iter()
        .filter(|r| r.on == On::Exec && r.info.deniable)
        .filter(|r| {
            r.conditions.iter().all(|c| {
                matches!(
                    c,
                    InContainer(_) | CommIn(_) | CommNotIn(_) | ExeIn(_) | ExePrefixAny(_) | Drift(_) | Setuid(_)
                )
            })
        })
        .cloned()
        .collect()
}

/// The deniable connect rules the connect hooks can refuse in the kernel: about containers, with
/// conditions on the port alone and no exception naming a program. One kernel rule per run of
/// consecutive ports.
pub fn connect_guard_rules(rules: &RuleSet) -> Vec<super::enforce::network::GuardRule> {
    use super::enforce::network::{Destination, GuardRule};
    use crate::rules::Condition::{InContainer, PortIn};
    let mut out = Vec::new();
    for rule in rules.rules.iter().filter(|r| r.on == On::Connect && r.info.deniable) {
        let kernel_side = rule.conditions.iter().all(|c| matches!(c, InContainer(true) | PortIn(_)))
            && rule.conditions.contains(&InContainer(true))
            && rule.exceptions.iter().all(|e| e.process.is_none());
        if !kernel_side {
            continue;
        }
        let mut ranges: Vec<(u16, u16)> = vec![Destination::ANY_PORT];
        for condition in &rule.conditions {
            if let PortIn(ports) = condition {
                let mut ports = ports.clone();
                ports.sort_unstable();
                ports.dedup();
                let mut runs: Vec<(u16, u16)> = Vec::new();
                for port in ports {
                    match runs.last_mut() {
                        Some((_, hi)) if hi.checked_add(1) == Some(port) => *hi = port,
                        _ => runs.push((port, port)),
                    }
                }
                // Every PortIn must hold: keep the ports in all of them.
                ranges = runs.into_iter().filter(|(lo, hi)| ranges.iter().any(|(a, b)| a <= lo && hi <= b)).collect();
            }
        }
        out.extend(ranges.into_iter().map(|ports| GuardRule {
            rule: rule.info.id.clone(),
            destination: Destination { net: None, ports, protocol: None },
        }));
    }
    out
}

impl Detector {
    /// The network guard's kernel rules, by index: the detection rule each refuses for.
    pub fn set_network_guard(&mut self, rules: Vec<String>) {
        self.network_guard = rules;
    }

    pub fn new(rules: RuleSet, protect: Protect) -> Self {
        let mut processes = ProcessTable::new();
        let protected_pids = processes.ancestry(std::process::id(), false).iter().map(|a| a.pid).collect();
        let stdio_rules = rules
            .rules
            .iter()
            .any(|r| r.conditions.iter().any(|c| matches!(c, crate::rules::Condition::StdioSocket(_))));
        Self {
            rules,
            stdio_rules,
            processes,
            folds: HashMap::new(),
            protect,
            started: super::drift::Starts::default(),
            protected_pids,
            resolver: super::attribution::CgroupResolver::new(),
            network_guard: Vec::new(),
        }
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The executable of a process's parent, from the process table.
    pub fn parent_exe(&mut self, pid: u32) -> String {
        self.processes.parent_of(pid).1
    }

    /// Takes a process event; an exec is judged.
    pub fn on_process(&mut self, event: &ProcessEvent, container: Option<&ContainerRef>) -> Vec<Alert> {
        self.processes.record(event);
        if event.kind != ProcessEventKind::Exec {
            return Vec::new();
        }
        let exe = if event.exe.is_empty() { event.filename.clone() } else { event.exe.clone() };
        let (parent_comm, parent_exe) = self.processes.parent_of(event.pid);
        // Found once: both drift and setuid read it (through a live process of the container
        // when this one has already exited).
        let file = self.executable(event, &exe);
        let fileless =
            fileless(&exe, file.as_ref().map(|(_, file)| file.as_path())) && !runtime_self_copy(&exe, &parent_exe);
        let facts = Facts {
            in_container: container.is_some(),
            exe: exe.clone(),
            comm: event.comm.clone(),
            args: event.args.clone(),
            parent_comm,
            parent_exe,
            stdio_socket: self.stdio_rules && stdio_is_socket(event.pid),
            // A program from memory is fileless-exec's, not a file written into the container.
            drift: container.is_some()
                && !fileless
                && file.as_ref().is_some_and(|(pid, file)| self.started.drifted(*pid, file)),
            setuid: file.as_ref().is_some_and(|(_, file)| setuid_gain(file, event.uid)),
            fileless,
            ..Facts::default()
        };
        let trigger = Trigger {
            kind: "exec".into(),
            pid: event.pid,
            uid: event.uid,
            comm: event.comm.clone(),
            exe,
            args: event.args.clone(),
            timestamp_ns: event.timestamp_ns,
            ..Trigger::default()
        };
        self.judge(On::Exec, &facts, trigger, container)
    }

    /// Takes an open under a watched prefix.
    pub fn on_file(&mut self, event: &FileEvent, container: Option<&ContainerRef>) -> Vec<Alert> {
        let exe = self.processes.exe_of(event.pid);
        let write = event.write || event.create || event.truncate;
        let facts = Facts {
            in_container: container.is_some(),
            exe: exe.clone(),
            comm: event.comm.clone(),
            path: event.path.clone(),
            write,
            ..Facts::default()
        };
        let trigger = Trigger {
            kind: "open".into(),
            pid: event.pid,
            uid: event.uid,
            comm: event.comm.clone(),
            exe,
            path: event.path.clone(),
            write,
            timestamp_ns: event.timestamp_ns,
            ..Trigger::default()
        };
        self.judge(On::Open, &facts, trigger, container)
    }

    /// Takes a network event; a connect is judged.
    pub fn on_network(&mut self, event: &NetEvent, container: Option<&ContainerRef>) -> Vec<Alert> {
        if event.kind == NetEventKind::Accept {
            return Vec::new();
        }
        let exe = self.processes.exe_of(event.pid);
        let (address, port) = event.remote;
        let facts = Facts {
            in_container: container.is_some(),
            exe: exe.clone(),
            comm: event.comm.clone(),
            port,
            to_api_server: container.is_some() && is_api_server(event.pid, &address.to_string(), port),
            ..Facts::default()
        };
        let remote = match address {
            std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
            v4 => format!("{v4}:{port}"),
        };
        let trigger = Trigger {
            kind: if event.kind == NetEventKind::Send { "send" } else { "connect" }.into(),
            pid: event.pid,
            uid: event.uid,
            comm: event.comm.clone(),
            exe,
            remote,
            timestamp_ns: event.timestamp_ns,
            ..Trigger::default()
        };
        // The kernel refused it: the guard's rule is reported denied, nothing is killed.
        let refused_by = event.guard.and_then(|i| self.network_guard.get(i as usize).cloned());
        let denied = event.denied().then_some(refused_by);
        self.judge_with(On::Connect, &facts, trigger, container, denied)
    }

    fn judge(&mut self, on: On, facts: &Facts, trigger: Trigger, container: Option<&ContainerRef>) -> Vec<Alert> {
        self.judge_with(on, facts, trigger, container, None)
    }

    /// `denied`: the kernel already refused the event (Some), naming the guard rule that did.
    fn judge_with(
        &mut self,
        on: On,
        facts: &Facts,
        trigger: Trigger,
        container: Option<&ContainerRef>,
        denied: Option<Option<String>>,
    ) -> Vec<Alert> {
        let whose = Whose {
            container: container.and_then(|c| c.name.as_deref()),
            image: container.and_then(|c| c.image.as_deref()),
        };
        let mut matched: Vec<crate::rules::RuleInfo> =
            self.rules.matching(on, facts, &whose).into_iter().map(|r| r.info.clone()).collect();
        // A guard rule refused it even if the facts now read otherwise (a process exception
        // cannot be one: those rules are not in the guard).
        if let Some(Some(rule)) = &denied
            && !matched.iter().any(|m| &m.id == rule)
            && let Some(found) = self.rules.rules.iter().find(|r| &r.info.id == rule)
        {
            matched.push(found.info.clone());
        }
        if matched.is_empty() {
            return Vec::new();
        }
        let ancestry = self.processes.ancestry(trigger.pid, container.is_some());
        let protecting = if container.is_some() { self.protect.containers } else { self.protect.host };
        let mut out = Vec::new();
        let mut killed = false;
        for info in matched {
            let mut action = Action::Alerted;
            let stoppable =
                protecting && info.deniable && !self.protected_pids.contains(&trigger.pid) && trigger.pid > 1;
            if denied.is_some() && (stoppable || denied == Some(Some(info.id.clone()))) {
                action = Action::Denied;
            } else if stoppable && (killed || kill(trigger.pid, trigger.timestamp_ns)) {
                killed = true;
                action = Action::Killed;
            }
            let detection = Alert {
                id: String::new(),
                at_unix_ms: 0,
                rule: info.id.clone(),
                title: info.title,
                severity: info.severity,
                technique: info.technique,
                why: info.why,
                mode: if protecting { Mode::Protect } else { Mode::Monitor },
                action,
                policy: String::new(),
                event: trigger.clone(),
                ancestry: ancestry.clone(),
                count: 1,
            };
            if let Some(alert) = self.fold(detection, container, &facts.exe) {
                out.push(alert);
            }
        }
        out
    }

    /// The alert, or None when it folds into an earlier one of the same rule, container and
    /// program within the window (kills are never folded: each is a different process).
    fn fold(&mut self, alert: Alert, container: Option<&ContainerRef>, exe: &str) -> Option<Alert> {
        let who = container.map_or_else(|| "host".to_string(), |c| c.id.clone());
        let key = (alert.rule.clone(), who, exe.to_string());
        match self.folds.get_mut(&key) {
            Some(fold) if fold.since.elapsed() < FOLD_WINDOW && alert.action != Action::Killed => {
                fold.folded += 1;
                fold.latest = alert;
                None
            }
            _ => {
                let fold =
                    Fold { since: Instant::now(), folded: 0, latest: alert.clone(), container: container.cloned() };
                self.folds.insert(key, fold);
                Some(alert)
            }
        }
    }

    /// Takes what a rung found outside a container's policy: an alert with the process's
    /// ancestry, naming the policy rule that decided (`policy`).
    pub fn on_violation(
        &mut self,
        violation: &super::enforce::Violation,
        container: Option<&ContainerRef>,
        policy: String,
    ) -> Option<Alert> {
        use super::enforce::{AlertAction, AlertKind};
        let (rule, title, why, kind) = match violation.kind {
            AlertKind::Exec => (
                "policy-exec",
                "Program outside the container's allowed executables",
                "The container's policy lists the programs it may run; this one is not among them.",
                "exec",
            ),
            AlertKind::File => (
                "policy-file",
                "Open under a path the container's policy denies",
                "The container's policy denies opening files under this path.",
                "open",
            ),
            AlertKind::Connect => (
                "policy-connect",
                "Connection the container's policy does not allow",
                "The container's policy says where it may connect; this destination is not allowed.",
                "connect",
            ),
            AlertKind::Accept => (
                "policy-accept",
                "Inbound connection the container's policy does not list",
                "The container's policy lists the inbound connections it accepts; this one is not among them. In protect mode the kernel refused it (the client's connect failed: connection refused); in monitor mode it was let through and alerted.",
                "accept",
            ),
            AlertKind::Http => (
                "policy-http",
                "HTTP request the container's policy does not allow",
                "The container's policy says which HTTP requests it may send; this one is not allowed. In protect mode it was dropped before it left: the sender's write failed and the server never saw it.",
                "http",
            ),
            AlertKind::HttpIn => (
                "policy-http-in",
                "HTTP request to the container that its policy does not allow",
                "The container's policy says which HTTP requests it may receive; this one is not allowed. In protect mode it was dropped before the server read it and the connection was reset, so the client got an error at once.",
                "http-in",
            ),
            AlertKind::Dns => (
                "policy-dns",
                "DNS query for a name the container's policy does not allow",
                "The container's policy says which names it may look up; this one is not allowed. In protect mode the query never left: the sender's send failed.",
                "dns",
            ),
            AlertKind::Tls => (
                "policy-tls",
                "TLS connection to a server name the container's policy does not allow",
                "The container's policy says which server names (SNI) it may open TLS connections to; this one is not allowed. In protect mode the ClientHello never left: the sender's write failed.",
                "tls",
            ),
            AlertKind::Quarantined => (
                "quarantine",
                "Network use by a quarantined container",
                "A response action quarantined this container: every connection it tries is refused and every packet to or from it is dropped, until it is released (picket respond release).",
                "connect",
            ),
        };
        let (mode, action) = match violation.action {
            AlertAction::Recorded => (Mode::Discover, Action::Recorded),
            AlertAction::Alerted => (Mode::Monitor, Action::Alerted),
            AlertAction::Denied => (Mode::Protect, Action::Denied),
            AlertAction::Killed => (Mode::Protect, Action::Killed),
        };
        let exe = match violation.kind {
            AlertKind::Exec => violation.path.clone(),
            _ => self.processes.exe_of(violation.pid),
        };
        let path = match violation.kind {
            AlertKind::File | AlertKind::Http | AlertKind::HttpIn | AlertKind::Dns | AlertKind::Tls => {
                violation.path.clone()
            }
            _ => String::new(),
        };
        let alert = Alert {
            id: String::new(),
            at_unix_ms: 0,
            rule: rule.into(),
            title: title.into(),
            severity: Severity::High,
            technique: String::new(),
            why: why.into(),
            mode,
            action,
            policy,
            event: Trigger {
                kind: kind.into(),
                pid: violation.pid,
                uid: violation.uid,
                comm: violation.comm.clone(),
                exe: exe.clone(),
                path,
                write: violation.write,
                remote: violation.remote.clone(),
                local: violation.local.clone(),
                timestamp_ns: violation.timestamp_ns,
                ..Trigger::default()
            },
            ancestry: self.processes.ancestry(violation.pid, container.is_some()),
            count: 1,
        };
        self.fold(alert, container, &exe)
    }

    /// Folds whose window has closed with repeats in it: one alert each, with the count.
    pub fn expired_folds(&mut self) -> Vec<(Alert, Option<ContainerRef>)> {
        let mut out = Vec::new();
        self.folds.retain(|_, fold| {
            if fold.since.elapsed() < FOLD_WINDOW {
                return true;
            }
            if fold.folded > 0 {
                let mut detection = fold.latest.clone();
                detection.count = fold.folded;
                out.push((detection, fold.container.clone()));
            }
            false
        });
        out
    }

    /// A live process of the container and the executable's file, read through the process or, once
    /// it has exited (most attacks' commands are short), through a live process of its cgroup.
    fn executable(&mut self, event: &ProcessEvent, exe: &str) -> Option<(u32, std::path::PathBuf)> {
        let through = |pid: u32, file: std::path::PathBuf| std::fs::metadata(&file).is_ok().then_some((pid, file));
        if let Some(found) = through(event.pid, format!("/proc/{}/exe", event.pid).into()) {
            return Some(found);
        }
        let path = self.resolver.path_of(event.cgroup_id)?;
        super::attribution::cgroup_pids(&super::attribution::unified_root(), &path)
            .into_iter()
            .find_map(|pid| through(pid, format!("/proc/{pid}/root/{}", exe.trim_start_matches('/')).into()))
    }
}

/// The program has no name on any filesystem: the kernel named it as a pseudo file
/// (`/memfd:NAME`, from memfd_create), or the file it runs has no link left (deleted, or a memfd
/// seen through `/proc/PID/exe`).
fn fileless(exe: &str, file: Option<&std::path::Path>) -> bool {
    use std::os::unix::fs::MetadataExt;
    exe.starts_with("/memfd:") || file.and_then(|f| std::fs::metadata(f).ok()).is_some_and(|m| m.nlink() == 0)
}

/// runc runs its container's first process from a sealed memfd copy of itself (so that the
/// container cannot overwrite the runtime's binary, CVE-2019-5736): fileless by design, started
/// by runc.
pub fn runtime_self_copy(exe: &str, parent_exe: &str) -> bool {
    let parent = parent_exe.rsplit('/').next().unwrap_or_default();
    exe.starts_with("/memfd:runc_cloned:") && parent == "runc"
}

/// Standard input or output is a network socket (TCP or UDP, in the process's network
/// namespace): not a socketpair (Node's child processes, a service's journal stream).
fn stdio_is_socket(pid: u32) -> bool {
    let inodes: Vec<String> = (0..=1)
        .filter_map(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')).map(str::to_string)
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    ["tcp", "tcp6", "udp", "udp6"].iter().any(|table| {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        // The inode is the tenth column of each row.
        text.lines().skip(1).any(|row| row.split_whitespace().nth(9).is_some_and(|i| inodes.iter().any(|x| x == i)))
    })
}

/// The executable is setuid to a user other than the one running it.
fn setuid_gain(file: &std::path::Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(file).is_ok_and(|m| m.mode() & 0o4000 != 0 && m.uid() != uid)
}

/// The process was told (by the kubelet's service environment) that the API server is at this
/// address and port.
fn is_api_server(pid: u32, address: &str, port: u16) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
    let mut host = None;
    let mut ports = vec![443, 6443];
    for var in environ.split(|b| *b == 0) {
        let var = String::from_utf8_lossy(var);
        if let Some(value) = var.strip_prefix("KUBERNETES_SERVICE_HOST=") {
            host = Some(value.to_string());
        } else if let Some(value) = var.strip_prefix("KUBERNETES_SERVICE_PORT=") {
            ports.extend(value.parse::<u16>());
        }
    }
    host.is_some_and(|h| h == address) && ports.contains(&port)
}

/// Kills the process of an event that happened at `event_ns`, unless its pid now belongs to a
/// process started after the event (the pid was reused: never kill a stranger).
fn kill(pid: u32, event_ns: u64) -> bool {
    let started_after = super::drift::start_ns(pid).is_none_or(|start| start > event_ns + 1_000_000_000);
    if started_after {
        return false;
    }
    let Ok(pid) = i32::try_from(pid) else { return false };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSet;

    #[test]
    fn programs_without_a_file_are_fileless_but_runcs_own_copy_is_not() {
        assert!(fileless("/memfd:payload", None));
        let on_disk = tempfile::NamedTempFile::new().expect("a file");
        assert!(!fileless("/tmp/x", Some(on_disk.path())));
        // A file with no link left (what /proc/PID/exe shows of a deleted program).
        let gone = on_disk.path().to_path_buf();
        let handle = std::fs::File::open(&gone).expect("open");
        drop(on_disk);
        let through_fd = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle));
        assert!(fileless("/tmp/x", Some(std::path::Path::new(&through_fd))));
        assert!(runtime_self_copy("/memfd:runc_cloned:/proc/self/exe", "/usr/bin/runc"));
        assert!(!runtime_self_copy("/memfd:runc_cloned:/proc/self/exe", "/usr/bin/python3"));
        assert!(!runtime_self_copy("/memfd:payload", "/usr/bin/runc"));
    }

    fn exec(pid: u32, comm: &str, args: &[&str]) -> ProcessEvent {
        ProcessEvent {
            kind: ProcessEventKind::Exec,
            pid,
            tid: pid,
            ppid: 1,
            uid: 0,
            exit_status: 0,
            cgroup_id: 9,
            timestamp_ns: 1,
            comm: comm.into(),
            filename: format!("/usr/bin/{comm}"),
            args: args.iter().map(|a| a.to_string()).collect(),
            exe: format!("/usr/bin/{comm}"),
        }
    }

    fn container() -> ContainerRef {
        ContainerRef {
            runtime: crate::agent::attribution::Runtime::Podman,
            id: "abc".into(),
            pod_uid: None,
            name: Some("web".into()),
            image: None,
            pod_namespace: None,
            pod_name: None,
            pod_owner: None,
        }
    }

    #[test]
    fn storms_fold_into_one_alert_with_a_count() {
        let rules = RuleSet::load(std::path::Path::new("/nonexistent"), false).expect("shipped rules");
        let mut detector = Detector::new(rules, Protect::default());
        let c = container();
        let first = detector.on_process(&exec(4100001, "xmrig", &["xmrig"]), Some(&c));
        assert_eq!(first.iter().map(|d| d.rule.as_str()).collect::<Vec<_>>(), vec!["crypto-miner-program"]);
        assert_eq!((first[0].count, first[0].action), (1, Action::Alerted));
        for pid in 4100002..4100012 {
            assert!(detector.on_process(&exec(pid, "xmrig", &["xmrig"]), Some(&c)).is_empty(), "folded");
        }
        // The window closes: one alert for the ten repeats.
        for fold in detector.folds.values_mut() {
            fold.since -= FOLD_WINDOW;
        }
        let folded = detector.expired_folds();
        assert_eq!(folded.len(), 1);
        assert_eq!(folded[0].0.count, 10);
        assert!(detector.on_process(&exec(4100020, "ls", &["ls", "-l"]), Some(&c)).is_empty(), "benign");
    }

    #[test]
    fn port_rules_go_to_the_connect_hooks_as_runs_of_ports() {
        let rules = RuleSet::load(std::path::Path::new("/nonexistent"), false).expect("shipped rules");
        let guard = connect_guard_rules(&rules);
        assert!(guard.iter().all(|g| g.rule == "crypto-pool-port"), "{guard:?}");
        let ports: Vec<(u16, u16)> = guard.iter().map(|g| g.destination.ports).collect();
        assert_eq!(ports.len(), 8, "eight pool ports, none consecutive: {ports:?}");
        assert!(ports.contains(&(3333, 3333)));
        assert!(guard.iter().all(|g| g.destination.net.is_none()));

        // A refused connect is reported denied for its guard rule, and nothing is killed.
        let mut detector = Detector::new(rules, Protect { containers: true, host: false });
        detector.set_network_guard(guard.iter().map(|g| g.rule.clone()).collect());
        let connect = |guard: Option<u32>| NetEvent {
            kind: NetEventKind::Connect,
            pid: 4100100,
            uid: 0,
            protocol: 6,
            local: None,
            remote: ("10.0.0.9".parse().expect("ip"), 3333),
            cgroup_id: 9,
            timestamp_ns: 1,
            comm: "xmrig-proxy".into(),
            policy: None,
            guard,
        };
        let denied = detector.on_network(&connect(Some(0)), Some(&container()));
        assert_eq!(denied.len(), 1);
        assert_eq!((denied[0].rule.as_str(), denied[0].action), ("crypto-pool-port", Action::Denied));
        assert_eq!(denied[0].event.remote, "10.0.0.9:3333");
    }
}

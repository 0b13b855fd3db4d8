//! Learning in the agent: its events become observations of their containers' groups
//! ([`crate::learn`]), kept on the host and served on the socket. The same [`Observer`] reads a
//! recorded stream (`picket policy learn --events FILE`), so what is learned offline is what the
//! agent would have learned live.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use super::attribution::ContainerRef;
use super::events::{ProcessEvent, ProcessEventKind};
use super::net::NetEventKind;
use super::wire::WireEvent;
use crate::learn::baseline::Proto;
use crate::learn::{Baselines, GroupRef, Observation, Observed};

/// Container processes tracked for their parents at most (then the table starts again).
const MAX_TRACKED: usize = 65_536;

/// The group a container belongs to: its pod's workload (`namespace/Kind/name`, or
/// `namespace/Pod/name` for a pod nothing owns) on Kubernetes, its image on a host. None until
/// the container is named (its events are not learned before).
pub fn group_of(container: &ContainerRef) -> Option<GroupRef> {
    if let Some(namespace) = &container.pod_namespace {
        if let Some((kind, name)) = container.pod_owner.as_deref().and_then(|o| o.split_once('/')) {
            return Some(GroupRef::workload(namespace, kind, name));
        }
        return container.pod_name.as_deref().map(|pod| GroupRef::workload(namespace, "Pod", pod));
    }
    container.image.as_deref().filter(|i| !i.is_empty()).map(GroupRef::local)
}

/// The group key of a running container as the policy rules see it (as [`group_of`] names it).
pub fn group_key_of_running(container: &super::policy::RunningContainer) -> Option<String> {
    match (&container.namespace, &container.owner) {
        (Some(namespace), Some(owner)) => Some(format!("{namespace}/{owner}")),
        (Some(_), None) => None,
        _ => container.image.as_ref().map(|image| format!("local/{image}")),
    }
}

/// Container processes' events kept, per container, until the container is named (its first
/// moments: the engines name it a little after it starts), and containers waiting at most.
const MAX_WAITING_EVENTS: usize = 512;
const MAX_WAITING_CONTAINERS: usize = 1024;

/// Turns events into observations, tracking each container process's program for its
/// children's parent, and holding a container's first events until it is named.
#[derive(Default)]
pub struct Observer {
    programs: HashMap<u32, Tracked>,
    /// Container id → its probes' commands (from the kubelet's pod spec, the engine's
    /// healthcheck).
    probes: HashMap<String, Vec<super::probes::Command>>,
    /// Container id → what it did before it was named.
    waiting: HashMap<String, Vec<(u64, Observed)>>,
}

/// A container process: its program, its container, and whether a probe started it (or its
/// ancestors).
#[derive(Clone)]
struct Tracked {
    program: String,
    container: String,
    probe: bool,
}

/// Processes of the container runtime working in the container's cgroup before the container's
/// own program runs (runc writing /etc/hosts through the host's paths): not the workload.
fn is_runtime(comm: &str) -> bool {
    ["runc", "crun", "conmon", "containerd-shim", "exe"].iter().any(|r| comm.starts_with(r))
}

/// A path a program was executed by that names no file of the container: the runtime's
/// descriptors, `/proc/self/exe` (busybox and runc re-executing themselves).
fn is_pseudo_path(path: &str) -> bool {
    !path.starts_with('/')
        || path == "/"
        || path.starts_with("/proc/")
        || path.starts_with("/dev/fd/")
        || path.starts_with("/memfd:")
}

impl Observer {
    /// What `event` shows its group doing: none for host events and what a policy refused;
    /// a container's events before it is named come with its first named one.
    pub fn observe(&mut self, event: &WireEvent, at_ms: u64) -> Vec<Observation> {
        let Some(container) = event.container() else { return Vec::new() };
        let what = match event {
            WireEvent::Process { event, .. } => self.on_process(event, container),
            _ => self.on_other(event),
        };
        match group_of(container) {
            Some(group) => {
                let mut out: Vec<Observation> = self
                    .waiting
                    .remove(&container.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(at_ms, what)| Observation { group: group.clone(), at_ms, what })
                    .collect();
                out.extend(what.map(|what| Observation { group, at_ms, what }));
                out
            }
            None => {
                if let Some(what) = what {
                    if !self.waiting.contains_key(&container.id) && self.waiting.len() >= MAX_WAITING_CONTAINERS {
                        self.waiting.clear();
                    }
                    let waiting = self.waiting.entry(container.id.clone()).or_default();
                    if waiting.len() < MAX_WAITING_EVENTS {
                        waiting.push((at_ms, what));
                    }
                }
                Vec::new()
            }
        }
    }

    /// Whether `pid` is a process of the container's own programs (else the runtime's, by its
    /// name, or one older than what was observed).
    fn is_workload(&self, pid: u32, comm: &str) -> bool {
        self.programs.contains_key(&pid) || !is_runtime(comm)
    }

    fn on_other(&mut self, event: &WireEvent) -> Option<Observed> {
        Some(match event {
            WireEvent::File { event, .. } if !event.truncated_path && self.is_workload(event.pid, &event.comm) => {
                Observed::Open { path: event.path.clone(), write: event.write || event.create || event.truncate }
            }
            WireEvent::Network { event, peer, fqdn, .. }
                if event.policy.is_none() && event.guard.is_none() && self.is_workload(event.pid, &event.comm) =>
            {
                let protocol = Proto::from_ip(event.protocol)?;
                match event.kind {
                    NetEventKind::Connect | NetEventKind::Send => Observed::Connect {
                        address: event.remote.0,
                        port: event.remote.1,
                        protocol,
                        peer: peer.clone(),
                        name: fqdn.clone(),
                    },
                    NetEventKind::Accept => Observed::Accept { port: event.local?.1, protocol },
                }
            }
            WireEvent::Alert { alert, .. } if !alert.rule.starts_with("policy-") => {
                let trigger = &alert.event;
                Observed::Suspicious {
                    exe: (trigger.kind == "exec" && !trigger.exe.is_empty()).then(|| trigger.exe.clone()),
                    path: (!trigger.path.is_empty()).then(|| trigger.path.clone()),
                    remote: trigger.remote.parse::<std::net::SocketAddr>().ok().map(|a| (a.ip(), a.port())),
                }
            }
            _ => return None,
        })
    }

    fn on_process(&mut self, event: &ProcessEvent, container: &ContainerRef) -> Option<Observed> {
        match event.kind {
            ProcessEventKind::Fork => {
                if let Some(parent) = self.programs.get(&event.ppid).cloned() {
                    self.track(event.pid, parent);
                }
                None
            }
            ProcessEventKind::Exit => {
                if event.pid == event.tid {
                    self.programs.remove(&event.pid);
                }
                None
            }
            ProcessEventKind::Exec => {
                let exe = if is_pseudo_path(&event.exe) { event.filename.clone() } else { event.exe.clone() };
                // The runtime starting the container (`runc init` from a descriptor).
                if is_pseudo_path(&exe) {
                    return None;
                }
                // A probe's process replacing itself (a shell's last command) is still the probe.
                let was_probe = self.programs.get(&event.pid).is_some_and(|p| p.probe && p.container == container.id);
                let (parent, probe) = match self.programs.get(&event.ppid) {
                    Some(parent) if parent.container == container.id => {
                        (parent.program.clone(), parent.probe || was_probe)
                    }
                    // Started from outside the container: the runtime (its first process, an
                    // exec, or a probe when its argv is one).
                    _ => {
                        let probes = self.probes.get(&container.id).map(Vec::as_slice).unwrap_or_default();
                        (String::new(), was_probe || super::probes::is_probe(probes, &event.args))
                    }
                };
                self.track(event.pid, Tracked { program: exe.clone(), container: container.id.clone(), probe });
                let path = if is_pseudo_path(&event.filename) { exe.clone() } else { event.filename.clone() };
                Some(Observed::Exec { exe, path, parent, uid: event.uid, probe })
            }
        }
    }

    /// What a container did before it was named, as observations of `group` (now it is).
    pub fn release(&mut self, container_id: &str, group: &GroupRef) -> Vec<Observation> {
        self.waiting
            .remove(container_id)
            .unwrap_or_default()
            .into_iter()
            .map(|(at_ms, what)| Observation { group: group.clone(), at_ms, what })
            .collect()
    }

    /// The probes of one container (none: forgets it).
    pub fn set_probes_of(&mut self, container_id: &str, probes: Vec<super::probes::Command>) {
        if probes.is_empty() {
            self.probes.remove(container_id);
            return;
        }
        if self.probes.len() >= MAX_TRACKED && !self.probes.contains_key(container_id) {
            self.probes.clear();
        }
        self.probes.insert(container_id.to_string(), probes);
    }

    fn track(&mut self, pid: u32, program: Tracked) {
        if self.programs.len() >= MAX_TRACKED {
            self.programs.clear();
        }
        self.programs.insert(pid, program);
    }
}

/// The baselines of every group this node runs, learned from what the agent sends.
pub struct Learning {
    observer: Observer,
    baselines: Baselines,
    dir: PathBuf,
    changed: bool,
    /// Bumped whenever something new is learned (what a publisher compares).
    generation: u64,
    /// Cgroups under a policy in monitor or protect mode: what they do is judged, not learned.
    judged: HashSet<u64>,
    /// What container processes map executable, read from /proc a moment after each exec
    /// (with the process's container and cgroup).
    mapped: super::mapped::MappedFiles<(ContainerRef, u64)>,
}

impl Learning {
    /// Starts from the baselines kept in `dir`; the note says a file set aside.
    pub fn start(dir: PathBuf) -> Result<(Self, Option<String>), crate::learn::state::StateError> {
        let (baselines, note) = crate::learn::state::load(&dir)?;
        Ok((
            Self {
                observer: Observer::default(),
                baselines,
                dir,
                changed: false,
                generation: 0,
                judged: HashSet::new(),
                mapped: super::mapped::MappedFiles::default(),
            },
            note,
        ))
    }

    /// Takes one event the agent sent (from a cgroup, for process, file and network events).
    pub fn take(&mut self, event: &WireEvent, cgroup_id: Option<u64>) {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        // Judged containers still tell the observer their processes (for parents), and their
        // detections are never learned; what they do is not learned.
        let judged = cgroup_id.is_some_and(|c| self.judged.contains(&c));
        self.follow_mapped(event, cgroup_id, at_ms);
        for observation in self.observer.observe(event, at_ms) {
            if judged && !matches!(observation.what, Observed::Suspicious { .. }) {
                continue;
            }
            if self.baselines.observe(&observation) {
                self.changed = true;
                self.generation += 1;
            }
        }
    }

    /// A container process's exec makes it read for what it maps a moment later (judged or
    /// not: what is in use is not behaviour a policy holds).
    fn follow_mapped(&mut self, event: &WireEvent, cgroup_id: Option<u64>, at_ms: u64) {
        let (WireEvent::Process { event: process, .. }, Some(container), Some(cgroup)) =
            (event, event.container(), cgroup_id)
        else {
            return;
        };
        match process.kind {
            ProcessEventKind::Exec => self.mapped.on_exec(process.pid, (container.clone(), cgroup), at_ms),
            ProcessEventKind::Exit if process.pid == process.tid => self.mapped.on_exit(process.pid),
            _ => {}
        }
    }

    /// Reads the processes due and learns what they map into their groups' baselines. `name`
    /// fills in a container's names as the agent knows them now: a quiet container whose
    /// first moments were held until it was named has them learned here.
    pub fn take_mapped(&mut self, name: impl Fn(ContainerRef) -> Option<ContainerRef>) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        for ((container, cgroup), files) in self.mapped.due(now_ms) {
            let named = name(container.clone()).unwrap_or(container);
            let Some(group) = group_of(&named) else { continue };
            let judged = self.judged.contains(&cgroup);
            for observation in self.observer.release(&named.id, &group) {
                if judged && !matches!(observation.what, Observed::Suspicious { .. }) {
                    continue;
                }
                if self.baselines.observe(&observation) {
                    self.changed = true;
                    self.generation += 1;
                }
            }
            let Some(baseline) = self.baselines.groups.get_mut(&group.key) else { continue };
            if baseline.note_mapped(&files) {
                self.changed = true;
                self.generation += 1;
            }
        }
    }

    /// Syscalls a cgroup of `group` made (new ones, as the syscall sensor reads them). Learned
    /// into the group's baseline once its processes made one (a group is named by them).
    pub fn take_syscalls(&mut self, group: &str, cgroup_id: u64, names: BTreeSet<String>) {
        if self.judged.contains(&cgroup_id) {
            return;
        }
        let Some(baseline) = self.baselines.groups.get_mut(group) else { return };
        let before = baseline.syscalls.len();
        baseline.syscalls.extend(names);
        if baseline.syscalls.len() > before {
            baseline.last_change_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            self.changed = true;
            self.generation += 1;
        }
    }

    /// The probes of one container as its sources say them now: their execs are learned as
    /// probes.
    pub fn set_probes_of(&mut self, container_id: &str, probes: Vec<super::probes::Command>) {
        self.observer.set_probes_of(container_id, probes);
    }

    /// The cgroups whose policy is in monitor or protect mode now.
    pub fn set_judged(&mut self, cgroups: HashSet<u64>) {
        self.judged = cgroups;
    }

    pub fn baselines(&self) -> &Baselines {
        &self.baselines
    }

    /// Changes with every new thing learned.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Writes the baselines when something new was learned since the last save.
    pub fn save_if_changed(&mut self) -> Result<(), crate::learn::state::StateError> {
        if !self.changed {
            return Ok(());
        }
        crate::learn::state::save(&self.dir, &self.baselines)?;
        self.changed = false;
        Ok(())
    }
}

/// The baselines a recorded stream (JSON lines, as `picket agent run` prints them) teaches;
/// lines that are not events are counted, not fatal.
pub fn learn_from_lines(lines: impl Iterator<Item = String>) -> (Baselines, usize) {
    let mut observer = Observer::default();
    let mut baselines = Baselines::default();
    let mut unread = 0;
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<WireEvent>(&line) {
            Ok(event) => {
                for observation in observer.observe(&event, 0) {
                    baselines.observe(&observation);
                }
            }
            Err(_) => unread += 1,
        }
    }
    (baselines, unread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::attribution::Runtime;

    fn container(image: &str) -> ContainerRef {
        ContainerRef {
            runtime: Runtime::Podman,
            id: "c".repeat(64),
            pod_uid: None,
            name: Some("web".into()),
            image: Some(image.into()),
            pod_namespace: None,
            pod_name: None,
            pod_owner: None,
        }
    }

    fn process(kind: ProcessEventKind, pid: u32, ppid: u32, exe: &str) -> WireEvent {
        WireEvent::process(
            "n",
            ProcessEvent {
                kind,
                pid,
                tid: pid,
                ppid,
                uid: 0,
                exit_status: 0,
                cgroup_id: 7,
                timestamp_ns: 0,
                comm: String::new(),
                filename: exe.into(),
                args: Vec::new(),
                exe: exe.into(),
            },
            Some(container("web:1")),
        )
    }

    #[test]
    fn groups_are_workloads_on_kubernetes_and_images_on_a_host() {
        let mut c = container("web:1");
        assert_eq!(group_of(&c).map(|g| g.key), Some("local/web:1".into()));
        c.pod_namespace = Some("shop".into());
        c.pod_name = Some("web-5c8f9d7b6-x2x9z".into());
        assert_eq!(group_of(&c).map(|g| g.key), Some("shop/Pod/web-5c8f9d7b6-x2x9z".into()));
        c.pod_owner = Some("Deployment/web".into());
        assert_eq!(group_of(&c).map(|g| g.key), Some("shop/Deployment/web".into()));
        c.image = None;
        c.pod_namespace = None;
        assert_eq!(group_of(&c), None, "not named yet");
    }

    #[test]
    fn parents_are_the_programs_that_forked_them_in_the_same_container() {
        let mut observer = Observer::default();
        let first = observer.observe(&process(ProcessEventKind::Exec, 10, 1, "/bin/busybox"), 0).remove(0);
        assert!(matches!(first.what, Observed::Exec { ref parent, .. } if parent.is_empty()), "{first:?}");
        assert!(observer.observe(&process(ProcessEventKind::Fork, 11, 10, ""), 0).is_empty());
        let child = observer.observe(&process(ProcessEventKind::Exec, 11, 10, "/usr/sbin/httpd"), 0).remove(0);
        assert!(matches!(child.what, Observed::Exec { ref parent, .. } if parent == "/bin/busybox"), "{child:?}");
        assert_eq!(child.group.key, "local/web:1");
    }

    #[test]
    fn a_probes_execs_and_their_children_are_learned_as_probes() {
        let with_args =
            |pid: u32, ppid: u32, exe: &str, args: &[&str]| match process(ProcessEventKind::Exec, pid, ppid, exe) {
                WireEvent::Process { v, node, mut event, container } => {
                    event.args = args.iter().map(|a| a.to_string()).collect();
                    WireEvent::Process { v, node, event, container }
                }
                other => other,
            };
        let is_probe = |observed: Vec<Observation>| match observed.first().map(|o| &o.what) {
            Some(Observed::Exec { probe, .. }) => *probe,
            other => panic!("an exec, not {other:?}"),
        };
        let mut observer = Observer::default();
        let probe = vec!["/bin/sh".to_string(), "-c".into(), "wget -q -O- localhost:8080/healthz".into()];
        observer.set_probes_of(&"c".repeat(64), vec![probe.clone()]);
        assert!(!is_probe(observer.observe(&with_args(10, 1, "/bin/busybox", &["httpd", "-f"]), 0)), "the entrypoint");
        assert!(is_probe(observer.observe(&with_args(20, 2, "/bin/busybox", &["/bin/sh", "-c", &probe[2]]), 0)));
        observer.observe(&process(ProcessEventKind::Fork, 21, 20, ""), 0);
        assert!(
            is_probe(observer.observe(&with_args(21, 20, "/bin/busybox", &["wget", "-q"]), 0)),
            "the probe's child"
        );
        assert!(
            is_probe(observer.observe(&with_args(20, 2, "/usr/bin/curl", &["curl"]), 0)),
            "the probe's shell's last command, replacing it"
        );
        assert!(
            !is_probe(observer.observe(&with_args(30, 3, "/bin/busybox", &["/bin/sh", "-c", "cat /etc/shadow"]), 0)),
            "an exec from outside with another argv (podman exec, kubectl exec) is no probe"
        );
        observer.observe(&process(ProcessEventKind::Fork, 11, 10, ""), 0);
        assert!(
            !is_probe(
                observer.observe(
                    &with_args(11, 10, "/bin/busybox", &probe.iter().map(String::as_str).collect::<Vec<_>>()),
                    0
                )
            ),
            "the probe's argv run by the workload itself is the workload's"
        );
        observer.set_probes_of(&"c".repeat(64), Vec::new());
        assert!(
            !is_probe(observer.observe(&with_args(40, 4, "/bin/busybox", &["/bin/sh", "-c", &probe[2]]), 0)),
            "probes gone"
        );
    }

    #[test]
    fn a_containers_first_events_wait_for_its_name_and_the_runtime_is_not_learned() {
        let mut observer = Observer::default();
        let unnamed = |event: WireEvent| match event {
            WireEvent::Process { v, node, event, container } => {
                let container = container.map(|c| ContainerRef { image: None, name: None, ..c });
                WireEvent::Process { v, node, event, container }
            }
            other => other,
        };
        // runc init, then the entrypoint, before the engine has named the container.
        assert!(observer.observe(&unnamed(process(ProcessEventKind::Exec, 9, 1, "/dev/fd/6")), 0).is_empty());
        assert!(observer.observe(&unnamed(process(ProcessEventKind::Exec, 10, 1, "/bin/busybox")), 0).is_empty());
        let named = observer.observe(&process(ProcessEventKind::Exec, 11, 10, "/usr/sbin/httpd"), 0);
        let programs: Vec<String> = named
            .iter()
            .filter_map(|o| match &o.what {
                Observed::Exec { exe, .. } => Some(exe.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(programs, ["/bin/busybox", "/usr/sbin/httpd"], "the waiting exec comes first; runc init never");
    }
}

//! The fanotify rung of the enforcement ladder, for kernels that refuse BPF LSM programs (many
//! managed ones, and these machines'). Each container with a policy gets a mark on its root mount
//! (through `/proc/PID/root/` of one of its processes), so only its opens and execs wait for a
//! verdict and the host's never do. A verdict thread answers every permission event: the
//! process's cgroup names the policy, the event's file names the path as the container sees it.
//!
//! What this rung can and cannot do, compared with BPF LSM:
//! - exec allowlists: yes (`FAN_OPEN_EXEC_PERM`; a denied exec fails with EPERM);
//! - file rules that deny reads: yes, and they deny every open under the prefix (`FAN_OPEN_PERM`
//!   says a file is being opened, not whether for reading or writing);
//! - file rules that deny writes only: yes, from the opener's own call: while it waits for the
//!   verdict, `/proc/PID/syscall` shows the open's flags (`open`, `openat`, `creat`, and
//!   `openat2` through its `open_how` in the opener's memory); an opener whose call cannot be read
//!   is allowed and counted as unjudged, as every verdict this rung cannot reach;
//! - the longest prefix decides, so a rule that denies nothing carves an exception out of a
//!   shorter one (`/` read-only, `/tmp/` writable).
//!
//! Files allowed once are not asked about again: an ignore mark on the inode (surviving
//! modification) answers in the kernel until the policy changes, when every mark is flushed and
//! the mounts are marked again. Not execs judged by an allowlist (paths: a new hard link to an
//! allowed program must be asked about), not files with several names, and not files only
//! writes are denied for (a read allowed now must not let a later write through). When the agent stops, the group closes and the kernel allows
//! whatever was waiting: the node fails open. No event waits more than a second for its verdict
//! (`deadline.rs`).

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use nix::sys::fanotify::{EventFFlags, Fanotify, FanotifyEvent, InitFlags, MarkFlags, MaskFlags, Response};

use super::{AlertAction, AlertKind, ContainerPolicy, EnforceError, Mode, Violation};
use crate::agent::attribution::{CgroupResolver, cgroup_id_of_pid, cgroup_pids};
use crate::agent::events::boottime_ns;

/// How long a policed open or exec waits for a verdict at most: then it is allowed (and counted).
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);
/// Alerts waiting for the agent's loop; beyond this they are counted as dropped.
const ALERT_QUEUE: usize = 4096;
/// Allowed files cached in the kernel (ignore marks) at most: each mark pins its inode in
/// memory, so past this many they are all dropped and the cache fills again.
pub const MAX_CACHED: u64 = 65_536;
/// Filesystems with nothing to run or police in them: their mounts are not marked.
const PSEUDO_FILESYSTEMS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "pstore",
    "configfs",
    "fusectl",
    "binfmt_misc",
    "hugetlbfs",
    "nsfs",
];

/// What one container's policy needs from this rung.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdicts {
    mode: Mode,
    exec_allowlist: Option<Vec<String>>,
    /// The file rules; the longest prefix that matches a path decides.
    file_rules: Vec<super::FileRule>,
}

/// What the policy makes of one open or exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Allowed; `cacheable`: whatever the next open of the same file asks, it is allowed too.
    Allowed { cacheable: bool },
    /// A violation; `write`: a write was what the rule denies.
    Violation { write: bool },
    /// It depends on whether the open writes, which could not be read.
    Unknown,
}

impl Verdicts {
    fn mask(&self) -> MaskFlags {
        let mut mask = MaskFlags::empty();
        if self.exec_allowlist.is_some() {
            mask |= MaskFlags::FAN_OPEN_EXEC_PERM;
        }
        if super::denies_any(&self.file_rules) {
            mask |= MaskFlags::FAN_OPEN_PERM;
        }
        mask
    }

    /// What the policy makes of an exec or open of `path`. An exec must be on the allowlist;
    /// any open, an exec's too (exec opens the file, as BPF LSM's file_open would see), is
    /// judged by its deciding file rule; `writes` tells, when asked, whether the open writes.
    fn decide(&self, exec: bool, path: &str, writes: impl FnOnce() -> Option<bool>) -> Decision {
        let listed =
            !exec || self.exec_allowlist.as_ref().is_none_or(|list| list.iter().any(|allowed| allowed == path));
        if !listed {
            return Decision::Violation { write: false };
        }
        let cacheable = !(exec && self.exec_allowlist.is_some());
        let Some(rule) = super::deciding_rule(&self.file_rules, path) else {
            return Decision::Allowed { cacheable };
        };
        match (rule.deny_read, rule.deny_write) {
            (true, _) => Decision::Violation { write: false },
            (false, false) => Decision::Allowed { cacheable },
            // An exec reads its file.
            (false, true) if exec => Decision::Allowed { cacheable: false },
            (false, true) => match writes() {
                Some(true) => Decision::Violation { write: true },
                Some(false) => Decision::Allowed { cacheable: false },
                None => Decision::Unknown,
            },
        }
    }

    #[cfg(test)]
    fn allows(&self, exec: bool, path: &str) -> bool {
        matches!(self.decide(exec, path, || Some(false)), Decision::Allowed { .. })
    }
}

/// Checks that this rung can enforce every rule of `policies` (index and cgroup name the rule):
/// it holds every rule the maps hold.
pub fn check(_policies: &[ContainerPolicy]) -> Result<(), EnforceError> {
    Ok(())
}

fn verdicts(policy: &ContainerPolicy) -> Verdicts {
    Verdicts { mode: policy.mode, exec_allowlist: policy.exec_allowlist.clone(), file_rules: policy.file_rules.clone() }
}

// Open flags and syscall numbers, per architecture.
const O_ACCMODE: u64 = 0o3;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;
#[cfg(target_arch = "x86_64")]
const OPENS: &[(u64, OpenCall)] =
    &[(2, OpenCall::Flags(1)), (257, OpenCall::Flags(2)), (85, OpenCall::Creat), (437, OpenCall::How(2))];
#[cfg(target_arch = "aarch64")]
const OPENS: &[(u64, OpenCall)] = &[(56, OpenCall::Flags(2)), (437, OpenCall::How(2))];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const OPENS: &[(u64, OpenCall)] = &[];

/// Where an open call keeps its flags.
#[derive(Debug, Clone, Copy)]
enum OpenCall {
    /// In this argument.
    Flags(usize),
    /// `creat`: always writes.
    Creat,
    /// `openat2`: in the first field of the `struct open_how` this argument points to.
    How(usize),
}

/// Whether the open `pid` is waiting in writes (for writing, creating or truncating, as the file
/// sensor counts writes), from `/proc/PID/syscall`; None when that cannot be read. Events name
/// the process, not the thread: when its main thread is not in an open call, its other threads
/// are read, and threads in opens that disagree leave it unknown.
fn open_writes(pid: u32) -> Option<bool> {
    let writes = |flags: u64| flags & O_ACCMODE != 0 || flags & (O_CREAT | O_TRUNC) != 0;
    let main = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    if is_open_call(&main) {
        return open_flags(pid, &main).map(writes);
    }
    let mut found: Option<bool> = None;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(line) = std::fs::read_to_string(task.path().join("syscall")) else { continue };
        if !is_open_call(&line) {
            continue;
        }
        let tid: u32 = task.file_name().to_str()?.parse().ok()?;
        let this = writes(open_flags(tid, &line)?);
        match found {
            Some(other) if other != this => return None,
            _ => found = Some(this),
        }
    }
    // No thread in an open: an exec's own open, or the kernel opening for it: a read.
    Some(found.unwrap_or(false))
}

fn is_open_call(line: &str) -> bool {
    let nr = line.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
    nr.is_some_and(|nr| OPENS.iter().any(|(n, _)| *n == nr))
}

/// The flags of the open call `/proc/PID/syscall` shows (`NR arg0 … arg5 sp pc`); an exec or
/// any other call opens for reading (None: not a call this reads, or an unreadable struct).
fn open_flags(pid: u32, line: &str) -> Option<u64> {
    let mut fields = line.split_whitespace();
    let nr: u64 = fields.next()?.parse().ok()?;
    let args: Vec<u64> =
        fields.take(6).map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16)).collect::<Result<_, _>>().ok()?;
    let Some((_, call)) = OPENS.iter().find(|(n, _)| *n == nr) else { return Some(0) };
    match *call {
        OpenCall::Flags(i) => args.get(i).copied(),
        OpenCall::Creat => Some(O_CREAT | O_TRUNC | 1),
        OpenCall::How(i) => {
            use std::os::unix::fs::FileExt;
            let memory = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
            let mut flags = [0u8; 8];
            memory.read_exact_at(&mut flags, *args.get(i)?).ok()?;
            Some(u64::from_ne_bytes(flags))
        }
    }
}

/// Exec-time denial of deniable detection rules (`--protect`): every container's root mount is
/// marked for execs, and an exec the rules catch is refused before the program runs.
struct Guard {
    rules: Vec<crate::rules::Rule>,
    /// Container cgroups, with the container's name and image for the rules' exceptions (execs
    /// elsewhere are not judged).
    containers: HashMap<u64, (Option<String>, Option<String>)>,
    starts: std::sync::Mutex<crate::agent::drift::Starts>,
    detections: tokio::sync::mpsc::Sender<(crate::agent::alert::Alert, u64)>,
    /// Protect on the host too (`--protect-host`): the processes never refused there.
    host: Option<HostAllowlist>,
}

/// Who is never refused on the host: the agent and its ancestors (by pid), and the programs
/// that run containers and nodes (by the caller's executable name), so a rule can never lock
/// the node out of its runtime.
#[derive(Debug, Clone)]
pub struct HostAllowlist {
    pub pids: Vec<u32>,
    pub programs: Vec<String>,
}

/// The programs `HostAllowlist::standard` never refuses: init, container runtimes, the kubelet.
pub const NEVER_REFUSED_ON_HOSTS: &[&str] = &[
    "systemd",
    "init",
    "containerd",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "dockerd",
    "docker-proxy",
    "runc",
    "crun",
    "conmon",
    "podman",
    "kubelet",
    "crio",
    "cri-o",
];

impl HostAllowlist {
    /// This agent, its ancestors, and `NEVER_REFUSED_ON_HOSTS`.
    pub fn standard() -> Self {
        let pids = crate::agent::processes::ProcessTable::new()
            .ancestry(std::process::id(), false)
            .iter()
            .map(|a| a.pid)
            .collect();
        Self { pids, programs: NEVER_REFUSED_ON_HOSTS.iter().map(|p| p.to_string()).collect() }
    }

    /// Whether the process `pid` (about to exec) is one never refused: on the list by pid or by
    /// its executable (a runtime's forked child still runs the runtime), init, or a kernel
    /// thread starting a helper (a child of kthreadd, pid 2).
    fn spares(&self, pid: u32) -> bool {
        if pid <= 2 || self.pids.contains(&pid) {
            return true;
        }
        match std::fs::read_link(format!("/proc/{pid}/exe")) {
            Ok(exe) => exe.file_name().is_some_and(|n| self.programs.iter().any(|p| p.as_str() == n)),
            Err(_) => {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| {
                    s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                }) == Some(2)
            }
        }
    }
}

/// State shared with the verdict thread.
struct Shared {
    group: Fanotify,
    /// Policies by cgroup v2 id.
    policies: RwLock<HashMap<u64, Verdicts>>,
    stop: AtomicBool,
    /// The verdict thread ended (its marks are gone: nothing is enforced any more).
    dead: AtomicBool,
    /// Alerts the loop did not take in time.
    dropped: AtomicU64,
    /// Events answered without a verdict (the process or file could not be read): allowed.
    unjudged: AtomicU64,
    cgroup_root: PathBuf,
    guard: RwLock<Option<Guard>>,
    /// Ignore marks added since the last flush of them, and the bound.
    cached: AtomicU64,
    max_cached: AtomicU64,
    /// Times the cache was dropped for being full.
    cache_flushes: AtomicU64,
    /// The bound on each verdict, held by the watchdog thread.
    deadline: super::deadline::Deadline,
    /// Tests: every policed verdict takes this much longer (milliseconds).
    slowed_by_ms: AtomicU64,
}

pub struct FanotifyEnforcer {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    watchdog: Option<std::thread::JoinHandle<()>>,
    alerts: tokio::sync::mpsc::Receiver<Violation>,
    resolver: CgroupResolver,
    /// Marked mounts (the root and every other mount of the container), by the cgroup whose
    /// process gave them, with the mask marked.
    marked: BTreeMap<u64, (Vec<String>, MaskFlags)>,
    /// Cgroups with a policy whose mounts are not marked yet (no process to reach them through,
    /// or the mark failed): tried again at the next apply.
    pending: BTreeMap<u64, String>,
    pub malformed: u64,
}

impl FanotifyEnforcer {
    /// Opens the fanotify group (needs CAP_SYS_ADMIN and CONFIG_FANOTIFY_ACCESS_PERMISSIONS)
    /// and starts the verdict thread.
    pub fn start() -> Result<Self, EnforceError> {
        // An unlimited queue: a full one would make the kernel allow what overflowed. The event's
        // file is opened without blocking: a FIFO opened for reading would otherwise wait for a
        // writer while every policed open waits for this thread.
        let group = Fanotify::init(
            InitFlags::FAN_CLASS_CONTENT
                | InitFlags::FAN_CLOEXEC
                | InitFlags::FAN_NONBLOCK
                | InitFlags::FAN_UNLIMITED_QUEUE,
            EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE | EventFFlags::O_CLOEXEC | EventFFlags::O_NONBLOCK,
        )
        .map_err(|e| EnforceError::Fanotify { step: "fanotify_init".into(), errno: e })?;
        let shared = Arc::new(Shared {
            group,
            policies: RwLock::new(HashMap::new()),
            stop: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            unjudged: AtomicU64::new(0),
            cgroup_root: crate::agent::attribution::unified_root(),
            guard: RwLock::new(None),
            cached: AtomicU64::new(0),
            max_cached: AtomicU64::new(MAX_CACHED),
            cache_flushes: AtomicU64::new(0),
            deadline: super::deadline::Deadline::new(ANSWER_WITHIN),
            slowed_by_ms: AtomicU64::new(0),
        });
        let (tx, alerts) = tokio::sync::mpsc::channel(ALERT_QUEUE);
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("picket-verdicts".into())
            .spawn(move || verdict_loop(&for_thread, &tx))
            .map_err(|e| EnforceError::Fanotify {
                step: format!("starting the verdict thread: {e}"),
                errno: nix::errno::Errno::EAGAIN,
            })?;
        let for_watchdog = Arc::clone(&shared);
        let watchdog = std::thread::Builder::new()
            .name("picket-verdict-deadline".into())
            .spawn(move || for_watchdog.deadline.watch(&for_watchdog.group, &for_watchdog.stop))
            .map_err(|e| EnforceError::Fanotify {
                step: format!("starting the verdict deadline's thread: {e}"),
                errno: nix::errno::Errno::EAGAIN,
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
            watchdog: Some(watchdog),
            alerts,
            resolver: CgroupResolver::new(),
            marked: BTreeMap::new(),
            pending: BTreeMap::new(),
            malformed: 0,
        })
    }

    /// Puts `policies` in force: the verdicts first, then the marks of containers that have
    /// a policy now. A policy that changed flushes every mark (and the cached allowed inodes with
    /// them) and marks again.
    pub fn apply(&mut self, policies: &[ContainerPolicy]) -> Result<(), EnforceError> {
        super::validate(policies)?;
        check(policies)?;
        let wanted: HashMap<u64, Verdicts> = policies.iter().map(|p| (p.cgroup_id, verdicts(p))).collect();
        let changed = {
            let current = self.shared.policies.read().map_err(|_| EnforceError::Poisoned)?;
            policies.iter().any(|p| current.get(&p.cgroup_id).is_some_and(|v| *v != verdicts(p)))
                || current.keys().any(|id| !wanted.contains_key(id))
        };
        {
            // Taken once every verdict under the old policy has cached its answer (they hold the
            // read lock until then); the flush below then removes what they cached.
            *self.shared.policies.write().map_err(|_| EnforceError::Poisoned)? = wanted;
        }
        if changed {
            self.flush()?;
        }
        self.pending.clear();
        for policy in policies {
            let mask = verdicts(policy).mask();
            if mask.is_empty() || self.marked.get(&policy.cgroup_id).is_some_and(|(_, m)| *m == mask) {
                continue;
            }
            match self.mark_container(policy.cgroup_id, mask) {
                Ok(mounts) => {
                    self.marked.insert(policy.cgroup_id, (mounts, mask));
                }
                Err(why) => {
                    self.pending.insert(policy.cgroup_id, why);
                }
            }
        }
        self.marked.retain(|id, _| policies.iter().any(|p| p.cgroup_id == *id));
        Ok(())
    }

    /// Cgroups with a policy that nothing enforces yet, with why (no process in them yet, or a
    /// mark that failed); `apply` tries them again.
    pub fn pending(&self) -> &BTreeMap<u64, String> {
        &self.pending
    }

    /// Marks every mount of the container the cgroup belongs to, as one of its processes sees
    /// them: its root and its volumes, tmpfs and binds (not the pseudo filesystems). Marks are
    /// per mount, so the host's own mounts of the same filesystems stay unwatched.
    fn mark_container(&mut self, cgroup_id: u64, mask: MaskFlags) -> Result<Vec<String>, String> {
        let path = self.resolver.path_of(cgroup_id).ok_or("the cgroup is gone")?;
        // A cgroup with no process (runc's init cgroup after exec, a container starting) has no
        // mounts to reach yet.
        let pid = *cgroup_pids(&self.shared.cgroup_root, &path).first().ok_or("no process in it yet")?;
        self.mark_mounts(&format!("/proc/{pid}/root"), &format!("/proc/{pid}/mountinfo"), mask)
            .map_err(|e| e.to_string())
    }

    /// Marks the mounts policed containers made since they were marked (a tmpfs mounted inside
    /// one, a volume attached later): marks belong to mounts, so a new mount is unpoliced until
    /// marked. Called on every refresh; marking a marked mount again changes nothing.
    pub fn mark_new_mounts(&mut self) {
        let marked: Vec<(u64, MaskFlags)> = self.marked.iter().map(|(id, (_, mask))| (*id, *mask)).collect();
        for (cgroup_id, mask) in marked {
            let Some(path) = self.resolver.path_of(cgroup_id) else { continue };
            let Some(&pid) = cgroup_pids(&self.shared.cgroup_root, &path).first() else { continue };
            let root = format!("/proc/{pid}/root");
            let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
            let mut added = Vec::new();
            for (point, fstype) in mount_points(&mountinfo) {
                let known = self.marked.get(&cgroup_id).is_some_and(|(points, _)| points.contains(&point));
                if known || PSEUDO_FILESYSTEMS.contains(&fstype.as_str()) {
                    continue;
                }
                if self.mark(Path::new(&format!("{root}{point}")), mask).is_ok() {
                    added.push(point);
                }
            }
            if let Some((mounts, _)) = self.marked.get_mut(&cgroup_id) {
                mounts.extend(added);
            }
        }
    }

    /// Marks the mount at `root` (a path to a root directory, without its trailing `/`) and
    /// every other mount `mountinfo` lists below it, but the pseudo filesystems; returns the
    /// mount points marked, as `mountinfo` names them (`/` the root). The root's mark must
    /// succeed; a mount gone since the read (or shadowed by another) is skipped.
    fn mark_mounts(&self, root: &str, mountinfo: &str, mask: MaskFlags) -> Result<Vec<String>, EnforceError> {
        self.mark(Path::new(&format!("{root}/")), mask)?;
        let mut mounts = vec!["/".to_string()];
        let mountinfo = std::fs::read_to_string(mountinfo).unwrap_or_default();
        for (point, fstype) in mount_points(&mountinfo) {
            if point == "/" || PSEUDO_FILESYSTEMS.contains(&fstype.as_str()) {
                continue;
            }
            if self.mark(Path::new(&format!("{root}{point}")), mask).is_ok() {
                mounts.push(point);
            }
        }
        Ok(mounts)
    }

    fn mark(&self, root: &Path, mask: MaskFlags) -> Result<(), EnforceError> {
        self.shared
            .group
            .mark(MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_MOUNT, mask, self.shared.group.as_fd(), Some(root))
            .map_err(|e| EnforceError::Fanotify { step: format!("marking {}", root.display()), errno: e })
    }

    /// Bounds the kernel's cache of allowed files (for tests; `MAX_CACHED` otherwise).
    pub fn set_max_cached(&self, max: u64) {
        self.shared.max_cached.store(max.max(1), Ordering::Relaxed);
    }

    /// (allowed files cached now, times the cache was dropped for being full).
    pub fn cache(&self) -> (u64, u64) {
        (self.shared.cached.load(Ordering::Relaxed), self.shared.cache_flushes.load(Ordering::Relaxed))
    }

    /// Removes every mount mark and every cached allowed inode.
    fn flush(&mut self) -> Result<(), EnforceError> {
        let group = &self.shared.group;
        for flags in [MarkFlags::FAN_MARK_MOUNT, MarkFlags::empty()] {
            group
                .mark(MarkFlags::FAN_MARK_FLUSH | flags, MaskFlags::empty(), group.as_fd(), None::<&Path>)
                .map_err(|e| EnforceError::Fanotify { step: "flushing marks".into(), errno: e })?;
        }
        self.marked.clear();
        self.shared.cached.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Refuses, at exec time, what `rules` (exec-time rules, `detect::exec_time_rules`) catch in
    /// containers; each refusal is sent on `detections` with its cgroup.
    pub fn guard(
        &mut self,
        rules: Vec<crate::rules::Rule>,
        detections: tokio::sync::mpsc::Sender<(crate::agent::alert::Alert, u64)>,
    ) -> Result<(), EnforceError> {
        *self.shared.guard.write().map_err(|_| EnforceError::Poisoned)? =
            Some(Guard { rules, containers: Default::default(), starts: Default::default(), detections, host: None });
        Ok(())
    }

    /// Protect on the host too: the host's own mounts (as pid 1 sees them, else as this agent
    /// does) are marked for
    /// execs, and host execs the guard's rules catch are refused, except for `allow`'s
    /// processes. Call after `guard`.
    pub fn guard_host(&mut self, allow: HostAllowlist) -> Result<usize, EnforceError> {
        {
            let mut guard = self.shared.guard.write().map_err(|_| EnforceError::Poisoned)?;
            let Some(guard) = guard.as_mut() else { return Ok(0) };
            guard.host = Some(allow);
        }
        // The host as init sees it (an agent in a pod with the host's pid namespace), else as
        // this agent sees it (an agent run on the host, where init may be out of reach).
        let (root, mountinfo) = match std::fs::read_dir("/proc/1/root/") {
            Ok(_) => ("/proc/1/root", "/proc/1/mountinfo"),
            Err(_) => ("", "/proc/self/mountinfo"),
        };
        Ok(self.mark_mounts(root, mountinfo, MaskFlags::FAN_OPEN_EXEC_PERM)?.len())
    }

    /// The containers running now (each cgroup with the container's name and image): their root
    /// mounts are marked for execs.
    pub fn guard_containers(
        &mut self,
        containers: HashMap<u64, (Option<String>, Option<String>)>,
    ) -> Result<(), EnforceError> {
        let cgroups: Vec<u64> = containers.keys().copied().collect();
        {
            let mut guard = self.shared.guard.write().map_err(|_| EnforceError::Poisoned)?;
            let Some(guard) = guard.as_mut() else { return Ok(()) };
            guard.containers = containers;
        }
        if self.shared.dead.load(Ordering::Relaxed) {
            return Err(EnforceError::VerdictThreadGone);
        }
        for &cgroup_id in &cgroups {
            if self.marked.contains_key(&cgroup_id) {
                continue;
            }
            // A container that stopped (or has not started) since it was listed cannot be
            // marked: the next refresh tries again for those still there.
            if let Ok(mounts) = self.mark_container(cgroup_id, MaskFlags::FAN_OPEN_EXEC_PERM) {
                self.marked.insert(cgroup_id, (mounts, MaskFlags::FAN_OPEN_EXEC_PERM));
            }
        }
        self.marked.retain(|id, _| cgroups.contains(id));
        Ok(())
    }

    /// The next alerts the verdict thread raised.
    pub async fn next_alerts(&mut self) -> Result<Vec<Violation>, EnforceError> {
        let Some(first) = self.alerts.recv().await else { return Err(EnforceError::VerdictThreadGone) };
        let mut batch = vec![first];
        while let Ok(more) = self.alerts.try_recv() {
            batch.push(more);
        }
        Ok(batch)
    }

    pub fn remaining(&mut self) -> Vec<Violation> {
        let mut out = Vec::new();
        while let Ok(alert) = self.alerts.try_recv() {
            out.push(alert);
        }
        out
    }

    /// Alerts lost because the loop did not take them in time.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Events allowed without a verdict: the process or the file could not be read, or the
    /// verdict did not come within the bound.
    pub fn unjudged(&self) -> u64 {
        self.shared.unjudged.load(Ordering::Relaxed) + self.shared.deadline.late()
    }

    /// Tests: makes every verdict on a policed process take `by` longer, as a verdict stuck on a
    /// hung filesystem would.
    #[doc(hidden)]
    pub fn slow_verdicts_for_tests(&self, by: std::time::Duration) {
        self.shared.slowed_by_ms.store(u64::try_from(by.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl Drop for FanotifyEnforcer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for thread in [self.thread.take(), self.watchdog.take()].into_iter().flatten() {
            let _ = thread.join();
        }
    }
}

/// Reads permission events until stopped and answers every one.
fn verdict_loop(shared: &Shared, alerts: &tokio::sync::mpsc::Sender<Violation>) {
    use nix::errno::Errno;
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let me = std::process::id();
    let mut interpreters = super::interpreter::Interpreters::default();
    while !shared.stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(shared.group.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        let events = match shared.group.read_events() {
            Ok(events) => events,
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            // Out of descriptors, or a file the kernel could not open for us: try again shortly
            // rather than leave the queue unanswered.
            Err(Errno::EMFILE | Errno::ENFILE | Errno::ENOMEM | Errno::EACCES | Errno::EPERM | Errno::EIO) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            Err(_) => break,
        };
        for event in events {
            let Some(fd) = event.fd() else { continue };
            shared.deadline.begin(fd);
            let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                answer(shared, &event, me, alerts, &mut interpreters)
            }));
            // A verdict that panicked still answers: allow, and count it.
            if answered.is_err() && shared.deadline.respond(&shared.group, fd, Response::FAN_ALLOW) {
                shared.unjudged.fetch_add(1, Ordering::Relaxed);
            }
            shared.deadline.end();
        }
    }
    // Whatever ended the loop, nothing may wait on a thread that is gone: every mark goes, so no
    // new event is generated, and the group's close (with the enforcer) allows what is queued.
    for flags in [MarkFlags::FAN_MARK_MOUNT, MarkFlags::empty()] {
        let group = &shared.group;
        let _ = group.mark(MarkFlags::FAN_MARK_FLUSH | flags, MaskFlags::empty(), group.as_fd(), None::<&Path>);
    }
    shared.dead.store(true, Ordering::Relaxed);
}

/// What a policy says about one event.
enum Verdict {
    /// No policy applies (a process outside every policed container, or one that could not be
    /// read): allowed, and not remembered.
    NoPolicy,
    /// The process's policy allows it; `cacheable` when the answer holds for the file whatever
    /// name it is reached by (not an exec judged by an allowlist of paths: a new hard link to an
    /// allowed program, outside the allowlist, must be asked about).
    Allowed { cacheable: bool },
    /// The policy does not allow it: the alert says what was done.
    Violation(Violation),
}

fn answer(
    shared: &Shared,
    event: &FanotifyEvent,
    me: u32,
    alerts: &tokio::sync::mpsc::Sender<Violation>,
    interpreters: &mut super::interpreter::Interpreters,
) {
    let Some(fd) = event.fd() else { return };
    let exec = event.mask().contains(MaskFlags::FAN_OPEN_EXEC_PERM);
    let pid = u32::try_from(event.pid()).unwrap_or(0);
    // Held until the answer is cached: a policy change waits for it, then flushes what it cached,
    // so no file stays allowed in the kernel under a policy that did not allow it.
    let Ok(policies) = shared.policies.read() else {
        shared.deadline.respond(&shared.group, fd, Response::FAN_ALLOW);
        return;
    };
    let slowed_by = shared.slowed_by_ms.load(Ordering::Relaxed);
    if slowed_by > 0
        && pid != me
        && cgroup_id_of_pid(&shared.cgroup_root, pid).is_some_and(|c| policies.contains_key(&c))
    {
        std::thread::sleep(std::time::Duration::from_millis(slowed_by));
    }
    let verdict = match pid == me {
        true => Verdict::NoPolicy,
        // The loader of a program just allowed: part of that exec (never cached: run on its
        // own, the loader is judged as a program).
        false if exec && interpreters.take(pid, fd) => Verdict::Allowed { cacheable: false },
        false => judge(shared, &policies, fd, pid, exec),
    };
    // Protect mode's exec-time rules judge the execs the policy lets through.
    let guard = match exec && pid != me && !matches!(verdict, Verdict::Violation(_)) {
        true => guard_exec(shared, fd, pid),
        false => GuardVerdict::NotGuarded,
    };
    let deny = guard == GuardVerdict::Refused
        || matches!(&verdict, Verdict::Violation(alert) if alert.action == AlertAction::Denied);
    // Allowed by an allowlist (so not cacheable): its loader, which the allowlist need not name,
    // comes next.
    if exec && !deny && matches!(verdict, Verdict::Allowed { cacheable: false }) {
        interpreters.expect(pid, fd);
    }
    // The kernel holds the process until this answer: nothing before it may block for long.
    let response = if deny { Response::FAN_DENY } else { Response::FAN_ALLOW };
    if !shared.deadline.respond(&shared.group, fd, response) {
        // Too late: the watchdog allowed it. A denial that did not happen is reported as what it
        // was, and nothing is cached.
        if let Verdict::Violation(mut alert) = verdict {
            alert.action = AlertAction::Alerted;
            if alerts.try_send(alert).is_err() {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        return;
    }
    if let Verdict::Violation(alert) = verdict {
        if alerts.try_send(alert).is_err() {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        return;
    }
    // Answered in the kernel from now on, until the policy changes. A file with other names
    // (hard links) is asked about every time: the name it was allowed under says nothing about
    // the others. A file the guard passed is asked about again once it is modified (drift).
    let cache = match (guard, &verdict) {
        (GuardVerdict::Refused | GuardVerdict::Spared, _)
        | (_, Verdict::Allowed { cacheable: false })
        | (GuardVerdict::NotGuarded, Verdict::NoPolicy) => None,
        (GuardVerdict::Passed, _) => Some(MarkFlags::empty()),
        (GuardVerdict::NotGuarded, _) => Some(MarkFlags::FAN_MARK_IGNORED_SURV_MODIFY),
    };
    if let Some(survive) = cache
        && nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_nlink == 1)
    {
        // An exec's open is one event with both bits: both are answered from now on.
        let mask = event.mask() & (MaskFlags::FAN_OPEN_EXEC_PERM | MaskFlags::FAN_OPEN_PERM);
        let marked = shared.group.mark(
            MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_IGNORED_MASK | survive,
            mask,
            fd,
            None::<&Path>,
        );
        if marked.is_ok()
            && shared.cached.fetch_add(1, Ordering::Relaxed) + 1 >= shared.max_cached.load(Ordering::Relaxed)
        {
            // Inode marks only: the mount marks stay, so nothing goes unpoliced meanwhile.
            let flushed =
                shared.group.mark(MarkFlags::FAN_MARK_FLUSH, MaskFlags::empty(), shared.group.as_fd(), None::<&Path>);
            if flushed.is_ok() {
                shared.cached.store(0, Ordering::Relaxed);
                shared.cache_flushes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// (mount point, filesystem type) of each line of a `/proc/PID/mountinfo`, with the kernel's
/// octal escapes (`\040` for a space) undone.
fn mount_points(mountinfo: &str) -> Vec<(String, String)> {
    let unescape = |field: &str| {
        let bytes = field.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let octal =
                bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
            match octal {
                Some(d) => {
                    out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                    i += 4;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let point = fields.get(4)?;
            // The optional fields end at "-", then the filesystem type.
            let dash = fields.iter().position(|f| *f == "-")?;
            Some((unescape(point), fields.get(dash + 1)?.to_string()))
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GuardVerdict {
    /// No guard, or the exec is not in a container.
    NotGuarded,
    Passed,
    /// A deniable rule caught it: refused, and reported.
    Refused,
    /// A host process that is never refused: allowed, and not cached (another caller of the
    /// same file is judged).
    Spared,
}

/// The exec-time rules on an exec in a container.
fn guard_exec(shared: &Shared, fd: BorrowedFd, pid: u32) -> GuardVerdict {
    let Ok(guard) = shared.guard.read() else { return GuardVerdict::NotGuarded };
    let Some(guard) = guard.as_ref() else { return GuardVerdict::NotGuarded };
    let Some(cgroup_id) = cgroup_id_of_pid(&shared.cgroup_root, pid) else { return GuardVerdict::NotGuarded };
    let (in_container, name, image) = match (guard.containers.get(&cgroup_id), &guard.host) {
        (Some((name, image)), _) => (true, name.as_deref(), image.as_deref()),
        (None, Some(allow)) if allow.spares(pid) => return GuardVerdict::Spared,
        (None, Some(_)) => (false, None, None),
        (None, None) => return GuardVerdict::NotGuarded,
    };
    let fd_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let Ok(path) = std::fs::read_link(&fd_path) else { return GuardVerdict::NotGuarded };
    let exe = path.to_string_lossy().into_owned();
    // The name the kernel will give the process: the file's name, cut to 15 bytes.
    let comm: String = exe.rsplit('/').next().unwrap_or_default().chars().take(15).collect();
    let uid = uid_of(pid).unwrap_or(u32::MAX);
    let drift = in_container && guard.starts.lock().is_ok_and(|mut starts| starts.drifted(pid, Path::new(&fd_path)));
    let setuid = nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & 0o4000 != 0 && st.st_uid != uid);
    let facts = crate::rules::Facts {
        in_container,
        exe: exe.clone(),
        comm: comm.clone(),
        drift,
        setuid,
        ..crate::rules::Facts::default()
    };
    let whose = crate::rules::Whose { container: name, image };
    let Some(rule) = guard.rules.iter().find(|r| r.matches(crate::rules::On::Exec, &facts, &whose)) else {
        return GuardVerdict::Passed;
    };
    let caller = crate::agent::processes::ProcessTable::new().ancestry(pid, in_container);
    let detection = crate::agent::alert::Alert {
        id: String::new(),
        at_unix_ms: 0,
        rule: rule.info.id.clone(),
        title: rule.info.title.clone(),
        severity: rule.info.severity,
        technique: rule.info.technique.clone(),
        why: rule.info.why.clone(),
        mode: Mode::Protect,
        action: crate::agent::alert::Action::Denied,
        policy: String::new(),
        event: crate::agent::alert::Trigger {
            kind: "exec".into(),
            pid,
            uid,
            comm,
            exe,
            timestamp_ns: boottime_ns(),
            ..Default::default()
        },
        ancestry: caller,
        count: 1,
    };
    if guard.detections.try_send((detection, cgroup_id)).is_err() {
        shared.dropped.fetch_add(1, Ordering::Relaxed);
    }
    GuardVerdict::Refused
}

/// The verdict of the process's policy on one event.
fn judge(shared: &Shared, policies: &HashMap<u64, Verdicts>, fd: BorrowedFd, pid: u32, exec: bool) -> Verdict {
    let Some(cgroup_id) = cgroup_id_of_pid(&shared.cgroup_root, pid) else {
        shared.unjudged.fetch_add(1, Ordering::Relaxed);
        return Verdict::NoPolicy;
    };
    let Some(verdicts) = policies.get(&cgroup_id) else { return Verdict::NoPolicy };
    let path = match std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
        Ok(path) => path.to_string_lossy().into_owned(),
        // A name too long to read (a tree deeper than PATH_MAX) must not get past a policy.
        Err(_) => {
            shared.unjudged.fetch_add(1, Ordering::Relaxed);
            if verdicts.mode != Mode::Protect {
                return Verdict::NoPolicy;
            }
            String::from("(a name the agent could not read)")
        }
    };
    let decision = match path.starts_with('(') {
        true => Decision::Violation { write: false },
        false => verdicts.decide(exec, &path, || open_writes(pid)),
    };
    let write = match decision {
        Decision::Allowed { cacheable } => return Verdict::Allowed { cacheable },
        Decision::Unknown => {
            shared.unjudged.fetch_add(1, Ordering::Relaxed);
            return Verdict::Allowed { cacheable: false };
        }
        Decision::Violation { write } => write,
    };
    let action = match verdicts.mode {
        Mode::Protect => AlertAction::Denied,
        Mode::Monitor => AlertAction::Alerted,
        Mode::Discover => AlertAction::Recorded,
    };
    Verdict::Violation(Violation {
        kind: if exec { AlertKind::Exec } else { AlertKind::File },
        action,
        pid,
        uid: uid_of(pid).unwrap_or(u32::MAX),
        cgroup_id,
        timestamp_ns: boottime_ns(),
        read: !exec && !write,
        write,
        comm: std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string(),
        path,
        remote: String::new(),
        local: String::new(),
        rule: String::new(),
    })
}

fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::enforce::FileRule;

    fn policy(rules: Vec<FileRule>, execs: Option<Vec<&str>>) -> ContainerPolicy {
        ContainerPolicy {
            cgroup_id: 7,
            mode: Mode::Protect,
            exec_allowlist: execs.map(|l| l.into_iter().map(String::from).collect()),
            file_rules: rules,
            connect: None,
            l7: None,
        }
    }

    #[test]
    fn write_denials_judge_by_the_openers_flags_and_are_never_cached() {
        let rule = |prefix: &str, read, write| FileRule { prefix: prefix.into(), deny_read: read, deny_write: write };
        let v = verdicts(&policy(vec![rule("/", false, true), rule("/tmp/", false, false)], None));
        assert_eq!(v.mask(), MaskFlags::FAN_OPEN_PERM);
        assert_eq!(v.decide(false, "/etc/passwd", || Some(true)), Decision::Violation { write: true });
        assert_eq!(v.decide(false, "/etc/passwd", || Some(false)), Decision::Allowed { cacheable: false });
        assert_eq!(v.decide(false, "/etc/passwd", || None), Decision::Unknown);
        assert_eq!(v.decide(false, "/tmp/x", || panic!("not asked")), Decision::Allowed { cacheable: true });
        assert_eq!(v.decide(true, "/bin/sh", || panic!("not asked")), Decision::Allowed { cacheable: false });
    }

    #[test]
    fn open_flags_come_from_the_waiting_call() {
        // openat(AT_FDCWD, path, O_WRONLY|O_CREAT|O_TRUNC, 0666) as x86_64 shows it.
        #[cfg(target_arch = "x86_64")]
        {
            let line = "257 0xffffffffffffff9c 0x7ffd5e3a 0x241 0x1b6 0x0 0x0 0x7ffd5e00 0x7f12\n";
            assert_eq!(open_flags(1, line), Some(0x241));
            assert_eq!(open_flags(1, "2 0x7ffd 0x0 0x0 0x0 0x0 0x0 0x1 0x2"), Some(0), "open for reading");
            assert_eq!(open_flags(1, "59 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8"), Some(0), "an exec reads");
        }
        assert_eq!(open_flags(1, "running"), None);
        assert_eq!(open_flags(1, ""), None);
    }

    #[test]
    fn verdicts_follow_the_allowlist_and_prefixes() {
        let rule = FileRule { prefix: "/etc/secret/".into(), deny_read: true, deny_write: true };
        let v = verdicts(&policy(vec![rule], Some(vec!["/bin/busybox"])));
        assert_eq!(v.mask(), MaskFlags::FAN_OPEN_EXEC_PERM | MaskFlags::FAN_OPEN_PERM);
        assert!(v.allows(true, "/bin/busybox"));
        assert!(!v.allows(true, "/tmp/lsx"));
        assert!(!v.allows(false, "/etc/secret/key"));
        assert!(v.allows(false, "/etc/secretive"));
        assert!(!v.allows(true, "/etc/secret/tool"), "an exec under a denied prefix is an open there too");
        let any = verdicts(&policy(vec![], None));
        assert!(any.mask().is_empty(), "nothing to mark");
    }

    #[test]
    fn mount_points_come_from_mountinfo_with_escapes_undone() {
        let mountinfo = "\
1034 990 0:104 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
1035 1034 0:107 / /proc rw,nosuid - proc proc rw
1040 1034 8:1 /srv/my\\040data /data rw,relatime shared:1 - ext4 /dev/sda1 rw
1041 1034 0:110 / /run/secrets\\040dir rw master:2 - tmpfs tmpfs rw
";
        let points = mount_points(mountinfo);
        assert_eq!(
            points,
            [
                ("/".to_string(), "overlay".to_string()),
                ("/proc".to_string(), "proc".to_string()),
                ("/data".to_string(), "ext4".to_string()),
                ("/run/secrets dir".to_string(), "tmpfs".to_string()),
            ]
        );
        assert!(mount_points("garbage\n\n1 2 3").is_empty());
    }
}

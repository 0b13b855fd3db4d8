//! Drift: an executable written (or changed) in a container after the container started is not
//! in the image that was scanned and approved. Judged by the file's change time against the
//! start of the container's first process: the earliest process of its cgroup (not pid 1 of its
//! pid namespace, which is the host's init in a hostPID pod and `pause` in a pod that shares its
//! process namespace, both older than the container's files).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::attribution::{cgroup_path_of_pid, cgroup_pids, unified_root};

/// A container's first process (the earliest of its cgroup) and when it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInit {
    pid: u32,
    start_ticks: u64,
    started: SystemTime,
}

impl ContainerInit {
    /// The same process is still there, in the same cgroup (cgroup paths and pids are reused).
    fn still(&self, cgroup: &str) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks) && cgroup_path_of_pid(self.pid).as_deref() == Some(cgroup)
    }
}

/// Clock ticks after boot at which a process started (`/proc/PID/stat` field 22).
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Counted after the command name's closing parenthesis (the name may hold spaces).
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// The earliest process of the cgroup `cgroup` (a path in the unified hierarchy).
pub fn container_init(cgroup: &str) -> Option<ContainerInit> {
    let boot = boot_time()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().filter(|t| *t > 0)? as u64;
    let (pid, start) = cgroup_pids(&unified_root(), cgroup)
        .into_iter()
        .filter_map(|pid| start_ticks(pid).map(|t| (pid, t)))
        .min_by_key(|(_, t)| *t)?;
    let started = boot + Duration::from_millis(start * 1000 / ticks);
    Some(ContainerInit { pid, start_ticks: start, started })
}

fn boot_time() -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The containers' first processes by cgroup. Bounded: a busy node's churn of containers does
/// not grow it for ever.
#[derive(Debug, Default)]
pub struct Starts {
    by_cgroup: HashMap<String, ContainerInit>,
}

const MAX_STARTS: usize = 4096;

impl Starts {
    /// Whether `file` (an executable of the container `pid` runs in) changed after the
    /// container started.
    pub fn drifted(&mut self, pid: u32, file: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some(cgroup) = cgroup_path_of_pid(pid) else { return false };
        let cached = self.by_cgroup.get(&cgroup).filter(|init| init.still(&cgroup)).cloned();
        let Some(init) = cached.or_else(|| container_init(&cgroup)) else { return false };
        if self.by_cgroup.len() >= MAX_STARTS {
            self.by_cgroup.clear();
        }
        self.by_cgroup.insert(cgroup, init.clone());
        let Ok(meta) = std::fs::metadata(file) else { return false };
        let changed = SystemTime::UNIX_EPOCH + Duration::new(meta.ctime().max(0) as u64, 0);
        // The image's files are unpacked before the container starts; a second of slack for
        // /proc/stat's whole-second boot time and for runtimes that copy a few files in as it
        // starts (resolv.conf, hosts).
        changed > init.started + Duration::from_secs(1)
    }
}

/// When a process started, in CLOCK_BOOTTIME nanoseconds (the kernel programs' clock).
pub fn start_ns(pid: u32) -> Option<u64> {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().filter(|t| *t > 0)? as u64;
    Some(start_ticks(pid)?.saturating_mul(1_000_000_000) / ticks)
}

//! Drift: an executable written (or changed) in a container after the container started is not
//! in the image that was scanned and approved. Judged by the file's change time against the
//! start of the container's first process (pid 1 of its pid namespace).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A container's first process (pid 1 inside its pid namespace) and when it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInit {
    pid: u32,
    start_ticks: u64,
    started: SystemTime,
}

impl ContainerInit {
    /// The same process is still there, in the same namespace.
    fn still(&self, ns: &str) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
            && std::fs::read_link(format!("/proc/{}/ns/pid", self.pid)).is_ok_and(|l| l.display().to_string() == ns)
    }
}

/// Clock ticks after boot at which a process started (`/proc/PID/stat` field 22).
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Counted after the command name's closing parenthesis (the name may hold spaces).
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// The first process of the pid namespace `ns` (its init, pid 1 inside).
pub fn container_init(ns: &str) -> Option<ContainerInit> {
    let boot = boot_time()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().filter(|t| *t > 0)? as u64;
    for entry in std::fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok().is_none_or(|l| l.display().to_string() != ns) {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let inner = status.lines().find_map(|l| l.strip_prefix("NSpid:")).and_then(|v| v.split_whitespace().last());
        if inner != Some("1") {
            continue;
        }
        let start = start_ticks(pid)?;
        let started = boot + Duration::from_millis(start * 1000 / ticks);
        return Some(ContainerInit { pid, start_ticks: start, started });
    }
    None
}

fn boot_time() -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The containers' first processes by pid namespace (`pid:[4026532…]`). Namespace ids are reused
/// once a container is gone, so an entry is checked against its process before use.
#[derive(Debug, Default)]
pub struct Starts {
    by_namespace: HashMap<String, ContainerInit>,
}

impl Starts {
    /// Whether `file` (an executable of the container whose pid namespace is `ns`) changed after
    /// the container started.
    pub fn drifted(&mut self, ns: &str, file: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let cached = self.by_namespace.get(ns).filter(|init| init.still(ns)).cloned();
        let Some(init) = cached.or_else(|| container_init(ns)) else { return false };
        self.by_namespace.insert(ns.to_string(), init.clone());
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

//! The local target: facts about the machine picket runs on.

use std::path::Path;

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

use crate::model::OsRelease;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostFacts {
    pub hostname: String,
    pub os: OsRelease,
    pub kernel: String,
    pub arch: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_total: u64,
    pub memory_available: u64,
    pub uptime_secs: u64,
}

impl HostFacts {
    pub fn os_name(&self) -> String {
        self.os.pretty_name()
    }
}

/// This machine's host name (the UTS name the kernel holds).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(System::host_name)
        .unwrap_or_else(|| "localhost".into())
}

/// Reads the host's facts. Blocking (a few small files under /proc and /etc): call it off the
/// UI task.
pub fn host_facts() -> HostFacts {
    let system = System::new_with_specifics(
        RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()).with_cpu(CpuRefreshKind::nothing()),
    );
    let cpu_model = system.cpus().first().map(|cpu| cpu.brand().trim().to_string()).unwrap_or_default();
    HostFacts {
        hostname: hostname(),
        os: read_os_release(Path::new("/")),
        kernel: System::kernel_version().unwrap_or_default(),
        arch: System::cpu_arch(),
        cpu_model,
        cpus: system.cpus().len(),
        memory_total: system.total_memory(),
        memory_available: system.available_memory(),
        uptime_secs: System::uptime(),
    }
}

/// `etc/os-release`, falling back to `usr/lib/os-release` (os-release(5)), under `root`.
/// A root without either yields an empty record, whose pretty name is `Linux`.
pub fn read_os_release(root: &Path) -> OsRelease {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|rel| std::fs::read_to_string(root.join(rel)).ok())
        .map(|text| OsRelease::parse(&text))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_match_the_machine() {
        let facts = host_facts();
        let os_release = std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .unwrap();
        let pretty = os_release.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).unwrap().trim_matches('"');
        assert_eq!(facts.os_name(), pretty);
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(facts.kernel, release.trim());
        assert_eq!(facts.cpus, std::thread::available_parallelism().unwrap().get().max(facts.cpus));
        assert!(facts.memory_total > facts.memory_available && facts.memory_available > 0);
        assert!(!facts.hostname.is_empty());
    }

    #[test]
    fn os_release_falls_back_to_usr_lib() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("usr/lib")).unwrap();
        std::fs::write(tmp.path().join("usr/lib/os-release"), "ID=alpine\nNAME=\"Alpine Linux\"\n").unwrap();
        assert_eq!(read_os_release(tmp.path()).id(), Some("alpine"));
        std::fs::create_dir_all(tmp.path().join("etc")).unwrap();
        std::fs::write(tmp.path().join("etc/os-release"), "ID=wolfi\n").unwrap();
        assert_eq!(read_os_release(tmp.path()).id(), Some("wolfi"));
        assert_eq!(read_os_release(&tmp.path().join("none")).pretty_name(), "Linux");
    }
}

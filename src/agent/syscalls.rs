//! Syscall sensing for learned seccomp profiles: loads src/agent/bpf/syscalls.bpf.c, which sets
//! one bit per syscall number in a set per cgroup at every syscall's entry (in the kernel,
//! nothing per call crosses to userspace) from the moment the cgroup's workload runs (its first
//! exec outside the host's mount namespace: the runtime's own setup calls are not the
//! workload's), and reads the sets back by cgroup, forgetting cgroups that are gone. Numbers are
//! named with the `syscalls` crate's table for this architecture.

use std::collections::{BTreeSet, HashMap, HashSet};

use aya::Ebpf;
use aya::maps::{HashMap as BpfHashMap, MapData};

use super::ring::{AttachError, RingError, attach_tracepoints, per_cpu_sum};

static SYSCALLS_PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/syscalls.bpf.o"));
const PROGRAM: &str = "syscall_enter";
const HOOK: &str = "sys_enter";
const EXEC_PROGRAM: &str = "syscall_exec";
const EXEC_HOOK: &str = "sched_process_exec";
const SETS: &str = "syscall_sets";
/// As syscalls.h's SYSCALL_WORDS: 512 syscall numbers.
pub const WORDS: usize = 8;

/// One cgroup's syscall numbers, a bit each (as the kernel's `struct syscall_set`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SyscallSet {
    /// Nonzero once the workload runs (only then are calls counted).
    pub started: u64,
    /// The kernel's note of an exec call made before that.
    pub exec_call: u64,
    pub bits: [u64; WORDS],
}

// SAFETY: plain old data of u64s, any bit pattern valid, no padding.
#[allow(unsafe_code)]
unsafe impl aya::Pod for SyscallSet {}

impl SyscallSet {
    pub fn numbers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..WORDS * 64).filter(|n| self.bits[n / 64] & (1 << (n % 64)) != 0)
    }

    /// The names of its syscalls (numbers this architecture does not name are `syscall_N`).
    pub fn names(&self) -> BTreeSet<String> {
        self.numbers().map(name_of).collect()
    }

    /// The syscalls in `self` that `before` did not have.
    pub fn new_since(&self, before: &SyscallSet) -> SyscallSet {
        let mut bits = [0; WORDS];
        for (i, word) in bits.iter_mut().enumerate() {
            *word = self.bits[i] & !before.bits[i];
        }
        SyscallSet { started: self.started, exec_call: self.exec_call, bits }
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }
}

pub fn name_of(number: usize) -> String {
    syscalls::Sysno::new(number).map_or_else(|| format!("syscall_{number}"), |s| s.name().to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum SyscallSensorError {
    #[error("loading the syscall program: {0} (the agent needs root, or CAP_BPF and CAP_PERFMON)")]
    Load(#[source] aya::EbpfError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error(transparent)]
    Ring(#[from] RingError),
    #[error("reading the syscall sets: {0}")]
    Read(#[source] aya::maps::MapError),
}

pub struct SyscallSensor {
    // Holds the program and its link: dropping it detaches it.
    ebpf: Ebpf,
    /// What each cgroup had at the last read.
    read: HashMap<u64, SyscallSet>,
}

impl SyscallSensor {
    pub fn start() -> Result<Self, SyscallSensorError> {
        let mut ebpf = aya::EbpfLoader::new()
            .override_global("host_mnt_ns", &super::files::host_mount_namespace(), true)
            .load(SYSCALLS_PROGRAM)
            .map_err(SyscallSensorError::Load)?;
        attach_tracepoints(&mut ebpf, &[(PROGRAM, HOOK), (EXEC_PROGRAM, EXEC_HOOK)])?;
        Ok(Self { ebpf, read: HashMap::new() })
    }

    fn sets(&mut self) -> Result<BpfHashMap<&mut MapData, u64, SyscallSet>, SyscallSensorError> {
        let map = self.ebpf.map_mut(SETS).ok_or(RingError::Missing(SETS))?;
        Ok(BpfHashMap::try_from(map).map_err(|source| RingError::Map { name: SETS, source })?)
    }

    /// The syscalls each `ready` cgroup of `kept` made that it had not made at the last call
    /// (cgroups with nothing new are left out; those not ready yet are kept for later). Every
    /// cgroup not in `kept` is forgotten, so the kernel's map holds only those (and the cgroups
    /// that made a call since).
    pub fn new_syscalls(
        &mut self,
        kept: &HashSet<u64>,
        ready: impl Fn(u64) -> bool,
    ) -> Result<Vec<(u64, SyscallSet)>, SyscallSensorError> {
        let cgroups = kept;
        let mut sets = self.sets()?;
        let mut now = Vec::new();
        let mut gone = Vec::new();
        for entry in sets.iter() {
            let (cgroup, set) = entry.map_err(SyscallSensorError::Read)?;
            match cgroups.contains(&cgroup) {
                true => now.push((cgroup, set)),
                false => gone.push(cgroup),
            }
        }
        for cgroup in &gone {
            // Gone already (a race with nothing): nothing to forget.
            let _ = sets.remove(cgroup);
        }
        let mut out = Vec::new();
        for (cgroup, set) in now.into_iter().filter(|(cgroup, _)| ready(*cgroup)) {
            let before = self.read.get(&cgroup).copied().unwrap_or_default();
            let new = set.new_since(&before);
            if !new.is_empty() {
                out.push((cgroup, new));
                self.read.insert(cgroup, set);
            }
        }
        self.read.retain(|cgroup, _| cgroups.contains(cgroup));
        Ok(out)
    }

    /// Calls not counted because the kernel's map was full, since start.
    pub fn dropped(&self) -> Result<u64, SyscallSensorError> {
        Ok(per_cpu_sum(&self.ebpf, "syscall_drops")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_name_their_syscalls_and_say_what_is_new() {
        let mut set = SyscallSet::default();
        for n in [0usize, 1, 60, 231, 511] {
            set.bits[n / 64] |= 1 << (n % 64);
        }
        assert_eq!(set.numbers().collect::<Vec<_>>(), [0, 1, 60, 231, 511]);
        let names = set.names();
        #[cfg(target_arch = "x86_64")]
        {
            assert!(["read", "write", "exit", "exit_group"].iter().all(|n| names.contains(*n)), "{names:?}");
        }
        assert!(names.contains("syscall_511"), "numbers no syscall has are kept by number: {names:?}");
        let mut before = SyscallSet::default();
        before.bits[0] = 0b11;
        let new = set.new_since(&before);
        assert_eq!(new.numbers().collect::<Vec<_>>(), [60, 231, 511]);
        assert!(set.new_since(&set).is_empty());
    }
}

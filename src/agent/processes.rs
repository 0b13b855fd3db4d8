//! The agent's table of processes, from exec, fork and exit events (and `/proc` for processes
//! older than the agent): what an alert's ancestry is made of, kept after the ancestors exit.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::events::{ProcessEvent, ProcessEventKind};

/// Exited processes kept for ancestries at most; the oldest exits go first.
const MAX_EXITED: usize = 8192;
/// Ancestors in an ancestry at most.
const MAX_DEPTH: usize = 16;

/// One process of an alert's ancestry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestor {
    pub pid: u32,
    pub exe: String,
    pub args: Vec<String>,
    pub uid: u32,
    /// CLOCK_BOOTTIME nanoseconds of its exec (or fork), 0 when the agent did not see it.
    pub start_ns: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exited: bool,
    /// This program was replaced by the next one in the same process (it exec'd it): `sh -c`
    /// running its last command in place.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaced: bool,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    ppid: u32,
    comm: String,
    cgroup_id: u64,
    ancestor: Ancestor,
    /// The programs this process ran before its current one, newest first (a few at most).
    earlier: Vec<Ancestor>,
    /// The current program came from an exec the agent saw (not a fork's copy or /proc).
    execd: bool,
    /// Exit order, for eviction.
    exit_seq: Option<u64>,
}

#[derive(Default)]
pub struct ProcessTable {
    entries: HashMap<u32, Entry>,
    exits: u64,
    exited: usize,
}

impl ProcessTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a process event into the table.
    pub fn record(&mut self, event: &ProcessEvent) {
        match event.kind {
            ProcessEventKind::Exec => {
                let exe = if event.exe.is_empty() { event.filename.clone() } else { event.exe.clone() };
                let entry = self.entries.entry(event.pid).or_default();
                if entry.exit_seq.take().is_some() {
                    self.exited = self.exited.saturating_sub(1);
                }
                if entry.execd {
                    let mut before = entry.ancestor.clone();
                    before.replaced = true;
                    entry.earlier.insert(0, before);
                    entry.earlier.truncate(3);
                }
                entry.execd = true;
                entry.ppid = event.ppid;
                entry.comm = event.comm.clone();
                entry.cgroup_id = event.cgroup_id;
                entry.ancestor = Ancestor {
                    pid: event.pid,
                    exe,
                    args: event.args.clone(),
                    uid: event.uid,
                    start_ns: event.timestamp_ns,
                    exited: false,
                    replaced: false,
                };
            }
            ProcessEventKind::Fork => {
                // The child runs its parent's program until it execs.
                let parent = self.entries.get(&event.ppid).cloned().unwrap_or_else(|| from_proc(event.ppid));
                let mut child = parent;
                child.ppid = event.ppid;
                child.cgroup_id = event.cgroup_id;
                child.exit_seq = None;
                child.ancestor.pid = event.pid;
                child.ancestor.start_ns = event.timestamp_ns;
                child.ancestor.exited = false;
                child.earlier.clear();
                child.execd = false;
                self.entries.insert(event.pid, child);
            }
            ProcessEventKind::Exit => {
                if event.pid != event.tid {
                    return;
                }
                if let Some(entry) = self.entries.get_mut(&event.pid)
                    && entry.exit_seq.is_none()
                {
                    self.exits += 1;
                    entry.exit_seq = Some(self.exits);
                    entry.ancestor.exited = true;
                    self.exited += 1;
                }
                self.evict();
            }
        }
    }

    fn evict(&mut self) {
        if self.exited <= MAX_EXITED {
            return;
        }
        // Drop the older half of the exited processes at once: eviction stays rare.
        let cutoff = self.exits.saturating_sub(MAX_EXITED as u64 / 2);
        self.entries.retain(|_, e| e.exit_seq.is_none_or(|seq| seq > cutoff));
        self.exited = self.entries.values().filter(|e| e.exit_seq.is_some()).count();
    }

    fn get_or_read(&mut self, pid: u32) -> Option<&Entry> {
        if pid == 0 {
            return None;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = self.entries.entry(pid) {
            let entry = from_proc(pid);
            if entry.ancestor.pid == 0 {
                return None;
            }
            slot.insert(entry);
        }
        self.entries.get(&pid)
    }

    /// The process's executable (empty when the agent never saw it and it is gone).
    pub fn exe_of(&mut self, pid: u32) -> String {
        self.get_or_read(pid).map(|e| e.ancestor.exe.clone()).unwrap_or_default()
    }

    /// The parent's name and executable.
    pub fn parent_of(&mut self, pid: u32) -> (String, String) {
        let Some(ppid) = self.get_or_read(pid).map(|e| e.ppid) else { return Default::default() };
        self.get_or_read(ppid).map(|e| (e.comm.clone(), e.ancestor.exe.clone())).unwrap_or_default()
    }

    /// The process and its ancestors, nearest first: up to the container's first process (the
    /// last one in the process's own cgroup... or any of the container's, for `exec`s) or the
    /// host's pid 1.
    pub fn ancestry(&mut self, pid: u32, in_container: bool) -> Vec<Ancestor> {
        let mut out = Vec::new();
        let mut at = pid;
        let mut cgroup = None;
        while out.len() < MAX_DEPTH {
            let Some(entry) = self.get_or_read(at).cloned() else { break };
            // Leaving the container's cgroup: the runtime (conmon, runc, containerd-shim) is the
            // host's, not the container's.
            if in_container && cgroup.is_some_and(|c| c != entry.cgroup_id) && entry.cgroup_id != 0 {
                break;
            }
            cgroup.get_or_insert(entry.cgroup_id);
            out.push(entry.ancestor.clone());
            out.extend(entry.earlier.iter().cloned());
            if entry.ppid == 0 || at == 1 {
                break;
            }
            at = entry.ppid;
        }
        out
    }
}

/// What `/proc` says of a process the agent did not see start (pid 0: gone).
fn from_proc(pid: u32) -> Entry {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()).unwrap_or_default()
    };
    if status.is_empty() {
        return Entry::default();
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args = cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned());
    let cgroup_id = super::attribution::cgroup_id_of_pid(&super::attribution::unified_root(), pid).unwrap_or(0);
    Entry {
        ppid: field("PPid:").parse().unwrap_or(0),
        comm: field("Name:").to_string(),
        cgroup_id,
        ancestor: Ancestor {
            pid,
            exe: std::fs::read_link(format!("/proc/{pid}/exe")).map(|p| p.display().to_string()).unwrap_or_default(),
            args: args.collect(),
            uid: field("Uid:").parse().unwrap_or(0),
            start_ns: 0,
            exited: false,
            replaced: false,
        },
        earlier: Vec::new(),
        execd: false,
        exit_seq: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: ProcessEventKind, pid: u32, ppid: u32, exe: &str, cgroup_id: u64) -> ProcessEvent {
        ProcessEvent {
            kind,
            pid,
            tid: pid,
            ppid,
            uid: 0,
            exit_status: 0,
            cgroup_id,
            timestamp_ns: u64::from(pid),
            comm: exe.rsplit('/').next().unwrap_or(exe).to_string(),
            filename: exe.to_string(),
            args: vec![exe.to_string()],
            exe: exe.to_string(),
        }
    }

    #[test]
    fn ancestries_outlive_exits_and_stop_at_the_container() {
        let mut table = ProcessTable::new();
        // runc (host cgroup 1) starts the container's init (cgroup 9), which starts a shell.
        table.record(&event(ProcessEventKind::Exec, 4000001, 0, "/usr/bin/runc", 1));
        table.record(&event(ProcessEventKind::Fork, 4000002, 4000001, "", 9));
        table.record(&event(ProcessEventKind::Exec, 4000002, 4000001, "/usr/sbin/nginx", 9));
        table.record(&event(ProcessEventKind::Fork, 4000003, 4000002, "", 9));
        table.record(&event(ProcessEventKind::Exec, 4000003, 4000002, "/bin/sh", 9));
        table.record(&event(ProcessEventKind::Exit, 4000002, 4000001, "", 9));
        let ancestry = table.ancestry(4000003, true);
        let exes: Vec<&str> = ancestry.iter().map(|a| a.exe.as_str()).collect();
        assert_eq!(exes, vec!["/bin/sh", "/usr/sbin/nginx"], "up to the container's init, not runc");
        // A shell that runs its last command in place: both programs are in the ancestry.
        table.record(&event(ProcessEventKind::Exec, 4000003, 4000002, "/tmp/xmrig", 9));
        let exes: Vec<(String, bool)> =
            table.ancestry(4000003, true).iter().map(|a| (a.exe.clone(), a.replaced)).collect();
        assert_eq!(exes[..2], [("/tmp/xmrig".to_string(), false), ("/bin/sh".to_string(), true)]);
        assert!(ancestry[1].exited, "the parent has exited and is still there");
        assert_eq!(table.parent_of(4000003), ("nginx".to_string(), "/usr/sbin/nginx".to_string()));
        let host = table.ancestry(4000003, false);
        assert_eq!(host.last().map(|a| a.exe.as_str()), Some("/usr/bin/runc"));
    }

    #[test]
    fn exited_processes_are_bounded() {
        let mut table = ProcessTable::new();
        for pid in 5_000_000..5_000_000 + (MAX_EXITED as u32) * 2 {
            table.record(&event(ProcessEventKind::Exec, pid, 1, "/bin/true", 1));
            table.record(&event(ProcessEventKind::Exit, pid, 1, "", 1));
        }
        assert!(table.entries.len() <= MAX_EXITED + 1, "{}", table.entries.len());
    }
}

//! The files container processes execute or map (their programs and shared objects), read
//! from `/proc/PID/maps`: what risk calls a package "in use". A process is read a moment after
//! its exec (its dynamic loader has mapped its libraries by then) and again every minute while
//! it lives (a library loaded later, `dlopen` of an interpreter's module). The paths are the
//! container's own: the kernel writes them relative to the process's root mount.

use std::collections::{HashMap, VecDeque};

/// How long after an exec its maps are read.
const FIRST_LOOK_MS: u64 = 1_000;
/// How often a living process is read again.
const AGAIN_MS: u64 = 60_000;
/// Processes waiting for their first read, and processes followed, at most.
const MAX_PROCESSES: usize = 4_096;
/// Processes read per call at most (the agent's loop calls every state period).
const READS_PER_CALL: usize = 256;

struct Followed<K> {
    whose: K,
    /// The process's start time (`/proc/PID/stat` field 22): a pid taken again by another
    /// process is not read as this one.
    started: Option<u64>,
    due_ms: u64,
}

/// Processes to read, each tagged with whose it is (`K`: its container).
pub struct MappedFiles<K> {
    /// Newly executed processes, in the order they are due.
    fresh: VecDeque<(u64, u32, K)>,
    followed: HashMap<u32, Followed<K>>,
}

impl<K> Default for MappedFiles<K> {
    fn default() -> Self {
        Self { fresh: VecDeque::new(), followed: HashMap::new() }
    }
}

impl<K: Clone> MappedFiles<K> {
    /// A container process executed a program.
    pub fn on_exec(&mut self, pid: u32, whose: K, now_ms: u64) {
        if self.fresh.len() >= MAX_PROCESSES {
            self.fresh.pop_front();
        }
        self.followed.remove(&pid);
        self.fresh.push_back((now_ms + FIRST_LOOK_MS, pid, whose));
    }

    pub fn on_exit(&mut self, pid: u32) {
        self.followed.remove(&pid);
    }

    /// The processes due now, read: whose each is and the files it maps executable.
    pub fn due(&mut self, now_ms: u64) -> Vec<(K, Vec<String>)> {
        self.due_from(now_ms, std::path::Path::new("/proc"))
    }

    fn due_from(&mut self, now_ms: u64, proc: &std::path::Path) -> Vec<(K, Vec<String>)> {
        let mut out = Vec::new();
        let mut reads = 0;
        while reads < READS_PER_CALL && self.fresh.front().is_some_and(|(due, ..)| *due <= now_ms) {
            let Some((_, pid, whose)) = self.fresh.pop_front() else { break };
            reads += 1;
            let started = start_time(proc, pid);
            let Some(files) = read_maps(proc, pid) else { continue };
            out.push((whose.clone(), files));
            if self.followed.len() < MAX_PROCESSES {
                self.followed.insert(pid, Followed { whose, started, due_ms: now_ms + AGAIN_MS });
            }
        }
        let again: Vec<u32> = self
            .followed
            .iter()
            .filter(|(_, f)| f.due_ms <= now_ms)
            .map(|(pid, _)| *pid)
            .take(READS_PER_CALL.saturating_sub(reads))
            .collect();
        for pid in again {
            let Some(followed) = self.followed.get_mut(&pid) else { continue };
            followed.due_ms = now_ms + AGAIN_MS;
            let same = followed.started.is_some() && start_time(proc, pid) == followed.started;
            match read_maps(proc, pid).filter(|_| same) {
                Some(files) => out.push((followed.whose.clone(), files)),
                None => {
                    self.followed.remove(&pid);
                }
            }
        }
        out
    }
}

fn start_time(proc: &std::path::Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields count from its end.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

fn read_maps(proc: &std::path::Path, pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(proc.join(pid.to_string()).join("maps")).ok()?;
    Some(executable_files(&text))
}

/// The files mapped executable in a `/proc/PID/maps` text, each once, in order.
pub fn executable_files(maps: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in maps.lines() {
        let mut fields = line.splitn(6, ' ');
        let (Some(_range), Some(perms)) = (fields.next(), fields.next()) else { continue };
        if !perms.contains('x') {
            continue;
        }
        let Some(path) = fields.nth(3).map(str::trim_start) else { continue };
        // A file deleted since it was mapped is no longer the image's file.
        if !path.starts_with('/') || path.ends_with(" (deleted)") {
            continue;
        }
        if !out.iter().any(|p| p == path) {
            out.push(path.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d4c3a00000-55d4c3a2e000 r--p 00000000 00:2d 1052                       /usr/bin/bash
55d4c3a2e000-55d4c3b0d000 r-xp 0002e000 00:2d 1052                       /usr/bin/bash
7f3b2c200000-7f3b2c228000 r--p 00000000 00:2d 2093                       /usr/lib/x86_64-linux-gnu/libc.so.6
7f3b2c228000-7f3b2c3bd000 r-xp 00028000 00:2d 2093                       /usr/lib/x86_64-linux-gnu/libc.so.6
7f3b2c400000-7f3b2c401000 r-xp 00000000 00:2d 3001                       /tmp/gone.so (deleted)
7f3b2c500000-7f3b2c501000 rwxp 00000000 00:00 0                          /memfd:jit (deleted)
7f3b2c600000-7f3b2c601000 r-xp 00000000 00:00 0 
7ffd1a3f1000-7ffd1a3f3000 r-xp 00000000 00:00 0                          [vdso]
7f3b2c700000-7f3b2c710000 r-xp 00001000 00:2d 2100                       /usr/lib/my lib.so
";

    #[test]
    fn only_files_mapped_executable_count_each_once() {
        assert_eq!(
            executable_files(MAPS),
            ["/usr/bin/bash", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/my lib.so"]
        );
        assert!(executable_files("garbage\n\n- x\n").is_empty());
    }

    #[test]
    fn a_process_is_read_after_its_moment_and_then_followed_until_it_goes() {
        let proc = tempfile::tempdir().expect("tempdir");
        let dir = proc.path().join("42");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("maps"), MAPS).expect("maps");
        std::fs::write(dir.join("stat"), "42 (my (odd) name) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0")
            .expect("stat");
        let mut mapped = MappedFiles::default();
        mapped.on_exec(42, "c1", 10_000);
        assert!(mapped.due_from(10_500, proc.path()).is_empty(), "not before its moment");
        let read = mapped.due_from(11_000, proc.path());
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].0, "c1");
        assert_eq!(read[0].1.len(), 3);
        assert_eq!(mapped.followed.get(&42).and_then(|f| f.started), Some(777));
        assert!(mapped.due_from(20_000, proc.path()).is_empty(), "followed, not due yet");
        assert_eq!(mapped.due_from(71_000, proc.path()).len(), 1, "read again a minute later");
        // Another process took the pid: not read as the container's, and no longer followed.
        std::fs::write(dir.join("stat"), "42 (sshd) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 999 0")
            .expect("stat");
        assert!(mapped.due_from(131_000, proc.path()).is_empty());
        assert!(mapped.followed.is_empty());
        mapped.on_exec(43, "c2", 0);
        assert!(mapped.due_from(5_000, proc.path()).is_empty(), "a process gone before its moment is dropped");
        assert!(mapped.followed.is_empty());
    }
}

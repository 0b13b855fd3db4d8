//! File-open sensing: loads src/agent/bpf/files.bpf.c, puts the watched path prefixes in its
//! prefix map, attaches it to the `sys_exit` tracepoint (open, openat, openat2 and creat as they
//! return) and reads its ring buffer. The kernel program builds each opened file's absolute path
//! and drops the opens under no watched prefix, so only those reach userspace. Dropping the
//! sensor detaches everything.

use std::time::Duration;

use aya::Ebpf;
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{MapData, MapError};
use serde::{Deserialize, Serialize};

use super::events::{COMM_LEN, Reader};
use super::ring::{AttachError, EventRing, RingError, attach_tracepoints, per_cpu_sum};

static FILES_PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/files.bpf.o"));

/// The layout in src/agent/bpf/files.h.
const PATH_LEN: usize = 256;
pub const PREFIX_LEN: usize = 128;
pub const MAX_PREFIXES: usize = 64;
/// Bytes of `struct file_event`: four u32, two u64, status and pad, comm, path.
const FILE_EVENT_LEN: usize = 4 * 4 + 2 * 8 + 2 * 4 + COMM_LEN + PATH_LEN;
const PATH_TRUNCATED: u32 = 1;
const PATH_INCOMPLETE: u32 = 2;

// Open flags (the same on x86_64 and arm64).
const O_ACCMODE: u32 = 0o3;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;
const O_PATH: u32 = 0o10000000;

const PROGRAM: &str = "open_exit";
const HOOK: &str = "sys_exit";

/// The kernel program wakes the reader only when 64 KiB wait; it looks this often anyway.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEvent {
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub cgroup_id: u64,
    /// CLOCK_BOOTTIME nanoseconds.
    pub timestamp_ns: u64,
    pub comm: String,
    /// Absolute, from the opening task's root: inside a container, the container's view. Starts
    /// with `...` when the directory chain was too deep to walk to the root.
    pub path: String,
    pub read: bool,
    pub write: bool,
    /// O_CREAT was asked for (the file may have existed).
    pub create: bool,
    pub truncate: bool,
    /// The path is cut at its end (longer than 255 bytes) or at its beginning (`...`).
    pub truncated_path: bool,
}

/// Decodes one record; None for a short record, unknown status bits, or a path that is not
/// what the kernel program writes.
pub fn decode_file_event(bytes: &[u8]) -> Option<FileEvent> {
    if bytes.len() < FILE_EVENT_LEN {
        return None;
    }
    let mut r = Reader::new(bytes);
    let (pid, tid, uid, flags) = (r.u32(), r.u32(), r.u32(), r.u32());
    let (cgroup_id, timestamp_ns) = (r.u64(), r.u64());
    let status = r.u32();
    r.u32();
    if status & !(PATH_TRUNCATED | PATH_INCOMPLETE) != 0 {
        return None;
    }
    let comm = r.c_string(COMM_LEN);
    let mut path = r.c_string(PATH_LEN);
    if status & PATH_INCOMPLETE != 0 {
        // Its end only (cut mid-component when it was longer than the field).
        path.insert_str(0, "...");
    } else if !path.starts_with('/') {
        return None;
    }
    // An O_PATH descriptor neither reads nor writes (its access mode bits mean nothing).
    let access = if flags & O_PATH != 0 { None } else { Some(flags & O_ACCMODE) };
    Some(FileEvent {
        pid,
        tid,
        uid,
        cgroup_id,
        timestamp_ns,
        comm,
        path,
        read: access.is_some_and(|a| a != O_WRONLY),
        write: access.is_some_and(|a| a == O_WRONLY || a == O_RDWR),
        create: flags & O_CREAT != 0,
        truncate: flags & O_TRUNC != 0,
        truncated_path: status != 0,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum FileSensorError {
    #[error("watched prefix {prefix:?}: {reason}")]
    Prefix { prefix: String, reason: &'static str },
    #[error("{0} watched prefixes: at most {MAX_PREFIXES}")]
    TooMany(usize),
    #[error("loading the file programs: {0} (the agent needs root, or CAP_BPF and CAP_PERFMON)")]
    Load(#[source] aya::EbpfError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error("watching {prefix:?}: {source}")]
    Watch {
        prefix: String,
        #[source]
        source: MapError,
    },
    #[error(transparent)]
    Ring(#[from] RingError),
}

/// Refuses what the kernel's prefix map cannot hold or match: a relative or empty prefix, a NUL,
/// PREFIX_LEN bytes or more, more than MAX_PREFIXES.
pub fn validate_prefixes(prefixes: &[String]) -> Result<(), FileSensorError> {
    if prefixes.len() > MAX_PREFIXES {
        return Err(FileSensorError::TooMany(prefixes.len()));
    }
    for prefix in prefixes {
        let reason = if !prefix.starts_with('/') {
            "not an absolute path"
        } else if prefix.contains('\0') {
            "contains a NUL byte"
        } else if prefix.len() >= PREFIX_LEN {
            "127 bytes at most"
        } else {
            continue;
        };
        return Err(FileSensorError::Prefix { prefix: prefix.clone(), reason });
    }
    Ok(())
}

pub struct FileSensor {
    // Holds the programs and their links: dropping it detaches them.
    ebpf: Ebpf,
    ring: EventRing,
    /// Records the ring buffer held that did not decode.
    pub malformed: u64,
}

/// What a watched prefix reports (the values of files.h's WATCH_ANY and WATCH_WRITES).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Watch {
    /// Every open.
    Any = 1,
    /// Opens for writing, creating or truncating only.
    Writes = 2,
    /// As `Writes`, by tasks outside the host's mount namespace only (containers): learning's
    /// watch on `/`, so that the host's own writes never leave the kernel.
    ContainerWrites = 3,
}

/// The inode of pid 1's mount namespace (the host's; from a DaemonSet pod with the host's PID
/// namespace, too); 0 when it cannot be read, which no namespace has. The link's text
/// (`mnt:[4026531832]`) is read rather than the namespace stat'ed: where pid 1 is not
/// dumpable, even root may read the link but not follow it.
pub fn host_mount_namespace() -> u32 {
    use std::os::unix::fs::MetadataExt;
    let from_link =
        std::fs::read_link("/proc/1/ns/mnt").ok().and_then(|target| namespace_inode(&target.to_string_lossy()));
    from_link
        .or_else(|| std::fs::metadata("/proc/1/ns/mnt").ok().and_then(|m| u32::try_from(m.ino()).ok()))
        .unwrap_or(0)
}

/// `mnt:[4026531832]` → 4026531832.
fn namespace_inode(link: &str) -> Option<u32> {
    link.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok()
}

impl FileSensor {
    /// Loads, watches `prefixes` (byte prefixes of the absolute path: `/etc/` is the directory,
    /// `/etc` also matches `/etcetera`; none watches nothing) and attaches. Must run inside a
    /// tokio runtime.
    pub fn start(prefixes: &[String]) -> Result<Self, FileSensorError> {
        let all: Vec<(String, Watch)> = prefixes.iter().map(|p| (p.clone(), Watch::Any)).collect();
        Self::start_with(&all)
    }

    /// As `start`, each prefix reporting every open or only opens for writing.
    pub fn start_with(watches: &[(String, Watch)]) -> Result<Self, FileSensorError> {
        let prefixes: Vec<String> = watches.iter().map(|(p, _)| p.clone()).collect();
        validate_prefixes(&prefixes)?;
        let mut ebpf = aya::EbpfLoader::new()
            .override_global("host_mnt_ns", &host_mount_namespace(), true)
            .load(FILES_PROGRAM)
            .map_err(FileSensorError::Load)?;
        let map = ebpf.map_mut("watched").ok_or(RingError::Missing("watched"))?;
        let mut watched: LpmTrie<&mut MapData, [u8; PREFIX_LEN], u8> =
            LpmTrie::try_from(map).map_err(|source| RingError::Map { name: "watched", source })?;
        for (prefix, watch) in watches {
            // validate_prefixes keeps the length below PREFIX_LEN.
            let mut data = [0u8; PREFIX_LEN];
            data[..prefix.len()].copy_from_slice(prefix.as_bytes());
            let bits = (prefix.len() * 8) as u32;
            watched
                .insert(&Key::new(bits, data), *watch as u8, 0)
                .map_err(|source| FileSensorError::Watch { prefix: prefix.clone(), source })?;
        }
        attach_tracepoints(&mut ebpf, &[(PROGRAM, HOOK)])?;
        let ring = EventRing::take(&mut ebpf, "file_events", Some(POLL))?;
        Ok(Self { ebpf, ring, malformed: 0 })
    }

    /// Waits for events and returns what the ring buffer holds.
    pub async fn next_batch(&mut self) -> Result<Vec<FileEvent>, FileSensorError> {
        Ok(self.ring.next_batch(decode_file_event, &mut self.malformed).await?)
    }

    /// The opens queued now, without waiting (when stopping).
    pub fn remaining(&mut self) -> Vec<FileEvent> {
        self.ring.remaining(decode_file_event, &mut self.malformed)
    }

    /// Opens the kernel could not put in the ring buffer because it was full, since start.
    pub fn dropped(&self) -> Result<u64, FileSensorError> {
        Ok(per_cpu_sum(&self.ebpf, "file_drops")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(flags: u32, status: u32, path: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [4242u32, 4243, 1000, flags] {
            b.extend(v.to_le_bytes());
        }
        b.extend(367u64.to_le_bytes());
        b.extend(99u64.to_le_bytes());
        b.extend(status.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        let mut comm = [0u8; COMM_LEN];
        comm[..3].copy_from_slice(b"cat");
        b.extend(comm);
        let mut p = [0u8; PATH_LEN];
        p[..path.len()].copy_from_slice(path);
        b.extend(p);
        b
    }

    #[test]
    fn records_decode_with_their_path_and_access() {
        assert_eq!(record(0, 0, b"/").len(), FILE_EVENT_LEN);
        let e = decode_file_event(&record(0o100000, 0, b"/etc/hostname")).unwrap();
        assert_eq!((e.pid, e.tid, e.uid, e.cgroup_id, e.timestamp_ns), (4242, 4243, 1000, 367, 99));
        assert_eq!((e.comm.as_str(), e.path.as_str()), ("cat", "/etc/hostname"));
        assert_eq!((e.read, e.write, e.create, e.truncate, e.truncated_path), (true, false, false, false, false));

        let e = decode_file_event(&record(O_WRONLY | O_CREAT | O_TRUNC, 0, b"/tmp/x")).unwrap();
        assert_eq!((e.read, e.write, e.create, e.truncate), (false, true, true, true));
        let e = decode_file_event(&record(O_RDWR, PATH_TRUNCATED, b"/very/long")).unwrap();
        assert_eq!((e.read, e.write, e.truncated_path), (true, true, true));
        let e = decode_file_event(&record(O_PATH, 0, b"/dir")).unwrap();
        assert_eq!((e.read, e.write), (false, false), "O_PATH neither reads nor writes");
        let e = decode_file_event(&record(0, PATH_INCOMPLETE, b"/deep/file")).unwrap();
        assert_eq!((e.path.as_str(), e.truncated_path), (".../deep/file", true));
    }

    #[test]
    fn short_or_odd_records_are_refused() {
        let full = record(0, 0, b"/etc/hostname");
        assert_eq!(decode_file_event(&full[..FILE_EVENT_LEN - 1]), None);
        assert_eq!(decode_file_event(&record(0, 4, b"/etc/hostname")), None, "unknown status bit");
        assert_eq!(decode_file_event(&record(0, 0, b"etc/hostname")), None, "not absolute");
        assert_eq!(decode_file_event(&record(0, 0, b"")), None, "no path");
        // A path that fills its field without a NUL is taken up to the end of the field.
        let e = decode_file_event(&record(0, PATH_TRUNCATED, &[b'/'; PATH_LEN])).unwrap();
        assert_eq!(e.path.len(), PATH_LEN);
    }

    #[test]
    fn the_hosts_mount_namespace_is_read_from_its_link() {
        assert_eq!(namespace_inode("mnt:[4026531832]"), Some(4026531832));
        assert_eq!(namespace_inode("net:[4026531832]"), None);
        assert_eq!(namespace_inode("mnt:[x]"), None);
        if std::fs::read_link("/proc/1/ns/mnt").is_ok() {
            assert_ne!(host_mount_namespace(), 0, "readable here");
        }
    }

    #[test]
    fn prefixes_are_checked_before_loading() {
        let ok = vec!["/etc/".to_string(), "/var/lib/secret".to_string()];
        assert!(validate_prefixes(&ok).is_ok());
        assert!(validate_prefixes(&[]).is_ok());
        for (bad, reason) in
            [("etc/", "absolute"), ("", "absolute"), ("/etc/\0x", "NUL"), (&*format!("/{}", "a".repeat(127)), "127")]
        {
            let err = validate_prefixes(&[bad.to_string()]).expect_err(bad).to_string();
            assert!(err.contains(reason) && err.contains(&format!("{bad:?}")), "{err}");
        }
        let many: Vec<String> = (0..=MAX_PREFIXES).map(|i| format!("/p{i}")).collect();
        assert!(
            validate_prefixes(&many)
                .expect_err("too many")
                .to_string()
                .contains(&format!("{} watched prefixes", MAX_PREFIXES + 1))
        );
    }
}

//! Events as the kernel programs write them (src/agent/bpf/events.h), decoded field by field
//! with bounds checks: a short or malformed record is an error, never a panic.

use serde::{Deserialize, Serialize};

pub const COMM_LEN: usize = 16;
pub const FILENAME_LEN: usize = 256;
pub const ARGS_MAX: usize = 512;
/// Bytes of one `struct process_event`: six u32, two u64, comm, filename, args_len, args, exe.
pub const PROCESS_EVENT_LEN: usize = 6 * 4 + 2 * 8 + COMM_LEN + FILENAME_LEN + 4 + ARGS_MAX + FILENAME_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessEventKind {
    Exec,
    Fork,
    Exit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEvent {
    pub kind: ProcessEventKind,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    /// The wait status (`exit(3)` code << 8, or the signal), for exits.
    pub exit_status: u32,
    /// The task's cgroup v2 id (the unified hierarchy), for attribution to a container.
    pub cgroup_id: u64,
    /// CLOCK_BOOTTIME nanoseconds.
    pub timestamp_ns: u64,
    pub comm: String,
    /// The executable's path as exec was given it (exec only).
    pub filename: String,
    /// argv, bounded to 512 bytes (exec only).
    pub args: Vec<String>,
    /// The executable's absolute path as the process sees it, resolved from the file exec
    /// opened (exec only; empty when it could not be resolved). Differs from `filename` for
    /// `/proc/self/exe`, symlinks and relative names.
    #[serde(default)]
    pub exe: String,
}

impl ProcessEvent {
    /// The exit code of a normal exit, or None when a signal ended the process.
    pub fn exit_code(&self) -> Option<u32> {
        (self.exit_status & 0x7f == 0).then_some((self.exit_status >> 8) & 0xff)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("process event of {0} bytes, expected {PROCESS_EVENT_LEN}")]
    Length(usize),
    #[error("unknown process event kind {0}")]
    Kind(u32),
}

/// Reads the fields of a kernel record in order, little-endian. Callers check the record's
/// length first; reading past the end gives zeros, never a panic.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        // Callers check the total length first; an empty slice past the end decodes as zeros.
        let slice = self.bytes.get(self.at..self.at + n).unwrap_or_default();
        self.at += n;
        slice
    }

    pub(crate) fn u16(&mut self) -> u16 {
        self.take(2).try_into().map(u16::from_le_bytes).unwrap_or(0)
    }

    pub(crate) fn u32(&mut self) -> u32 {
        self.take(4).try_into().map(u32::from_le_bytes).unwrap_or(0)
    }

    pub(crate) fn u64(&mut self) -> u64 {
        self.take(8).try_into().map(u64::from_le_bytes).unwrap_or(0)
    }

    /// A NUL-terminated string in a fixed field.
    pub(crate) fn c_string(&mut self, n: usize) -> String {
        let field = self.take(n);
        let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
        String::from_utf8_lossy(&field[..end]).into_owned()
    }
}

pub fn decode_process_event(bytes: &[u8]) -> Result<ProcessEvent, DecodeError> {
    if bytes.len() < PROCESS_EVENT_LEN {
        return Err(DecodeError::Length(bytes.len()));
    }
    let mut r = Reader::new(bytes);
    let kind = match r.u32() {
        1 => ProcessEventKind::Exec,
        2 => ProcessEventKind::Fork,
        3 => ProcessEventKind::Exit,
        other => return Err(DecodeError::Kind(other)),
    };
    let (pid, tid, ppid, uid, exit_status) = (r.u32(), r.u32(), r.u32(), r.u32(), r.u32());
    let (cgroup_id, timestamp_ns) = (r.u64(), r.u64());
    let comm = r.c_string(COMM_LEN);
    let filename = r.c_string(FILENAME_LEN);
    let args_len = (r.u32() as usize).min(ARGS_MAX);
    let raw = r.take(ARGS_MAX);
    let args = raw[..args_len.min(raw.len())]
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let exe = r.c_string(FILENAME_LEN);
    Ok(ProcessEvent { kind, pid, tid, ppid, uid, exit_status, cgroup_id, timestamp_ns, comm, filename, args, exe })
}

/// CLOCK_BOOTTIME in nanoseconds, the clock the kernel programs' timestamps use
/// (`bpf_ktime_get_boot_ns`).
pub fn boottime_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec()).unwrap_or(0))
        .unwrap_or(0)
}

/// The wall-clock time (Unix milliseconds) of a CLOCK_BOOTTIME timestamp taken on this node.
pub fn wall_ms_of_boottime(timestamp_ns: u64) -> u64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let ago_ms = boottime_ns().saturating_sub(timestamp_ns) / 1_000_000;
    now_ms.saturating_sub(ago_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u32, args: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [kind, 42, 42, 1, 1000, 7 << 8] {
            b.extend(v.to_le_bytes());
        }
        b.extend(367u64.to_le_bytes());
        b.extend(99u64.to_le_bytes());
        let mut comm = [0u8; COMM_LEN];
        comm[..2].copy_from_slice(b"sh");
        b.extend(comm);
        let mut filename = [0u8; FILENAME_LEN];
        filename[..7].copy_from_slice(b"/bin/sh");
        b.extend(filename);
        b.extend(u32::try_from(args.len()).unwrap().to_le_bytes());
        let mut a = [0u8; ARGS_MAX];
        a[..args.len()].copy_from_slice(args);
        b.extend(a);
        let mut exe = [0u8; FILENAME_LEN];
        exe[..12].copy_from_slice(b"/bin/busybox");
        b.extend(exe);
        b
    }

    #[test]
    fn records_decode_field_by_field() {
        let e = decode_process_event(&record(1, b"sh\0-c\0exit 7\0")).unwrap();
        assert_eq!(e.kind, ProcessEventKind::Exec);
        assert_eq!((e.pid, e.ppid, e.uid, e.cgroup_id), (42, 1, 1000, 367));
        assert_eq!(e.comm, "sh");
        assert_eq!(e.filename, "/bin/sh");
        assert_eq!(e.args, vec!["sh", "-c", "exit 7"]);
        assert_eq!(e.exe, "/bin/busybox");
        assert_eq!(e.exit_code(), Some(7));
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        let full = record(1, b"");
        assert_eq!(decode_process_event(&full[..100]), Err(DecodeError::Length(100)));
        assert_eq!(decode_process_event(&record(9, b"")), Err(DecodeError::Kind(9)));
        // An args_len beyond the field is clamped, not trusted.
        let mut lying = record(1, b"a\0");
        let at = PROCESS_EVENT_LEN - FILENAME_LEN - ARGS_MAX - 4;
        lying[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_process_event(&lying).unwrap().args, vec!["a"]);
    }
}

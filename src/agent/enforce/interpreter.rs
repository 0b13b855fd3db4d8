//! The ELF interpreter of an exec the fanotify rung allowed. The kernel opens a dynamically
//! linked program's interpreter (`/lib64/ld-linux-x86-64.so.2`) for execution as part of the same
//! execve, which fanotify reports as an exec of its own; the LSM and signal rungs judge the program
//! only. So an allowed program's interpreter is allowed once, for that process, identified by the
//! inode the program names in its root, never by name: running the loader directly
//! (`ld.so /tmp/tool`) is an exec of the loader, judged by the allowlist.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;

/// Program headers and the interpreter's name lie at the start of the file.
const FIRST_READ: usize = 4096;
const HEADER_BYTES: usize = 64 * 1024;
/// Execs allowed and not yet followed by their interpreter (an exec that failed after the check).
const MAX_WAITING: usize = 4096;

/// (device, inode) of a file.
type Identity = (u64, u64);

#[derive(Debug, Default)]
pub struct Interpreters {
    waiting: HashMap<u32, Identity>,
}

impl Interpreters {
    /// `pid` was allowed to run the program open on `program`: its interpreter, if it names one
    /// that exists in the process's root, is expected next.
    pub fn expect(&mut self, pid: u32, program: BorrowedFd) {
        self.waiting.remove(&pid);
        let Some(name) = interpreter_of(program) else { return };
        let Some(identity) = identity_in_root(pid, &name) else { return };
        if self.waiting.len() >= MAX_WAITING {
            self.waiting.clear();
        }
        self.waiting.insert(pid, identity);
    }

    /// Whether the exec of `file` by `pid` is the interpreter its allowed program named (once).
    pub fn take(&mut self, pid: u32, file: BorrowedFd) -> bool {
        let Some(expected) = self.waiting.remove(&pid) else { return false };
        nix::sys::stat::fstat(file).is_ok_and(|st| (st.st_dev, st.st_ino) == expected)
    }
}

/// The PT_INTERP path of the ELF file open on `fd`; None for a static program, a script or
/// anything unreadable.
fn interpreter_of(fd: BorrowedFd) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
    let read = |len: usize| {
        let mut data = vec![0u8; len];
        let read = file.read_at(&mut data, 0).ok()?;
        data.truncate(read);
        Some(data)
    };
    // Nearly always within the first page; else within the first 64 KiB.
    let first = read(FIRST_READ)?;
    if first.len() == FIRST_READ
        && let Some(found) = named_in(&first)
    {
        return Some(found);
    }
    named_in(&read(HEADER_BYTES)?)
}

fn named_in(data: &[u8]) -> Option<String> {
    use object::elf::{FileHeader32, FileHeader64, PT_INTERP};
    use object::read::elf::{FileHeader, ProgramHeader};
    fn find<H: FileHeader>(data: &[u8]) -> Option<String> {
        let header = H::parse(data).ok()?;
        let endian = header.endian().ok()?;
        let segment = header.program_headers(endian, data).ok()?.iter().find(|p| p.p_type(endian) == PT_INTERP)?;
        let name = segment.data(endian, data).ok()?;
        let name = name.split(|&b| b == 0).next()?;
        Some(String::from_utf8_lossy(name).into_owned())
    }
    match data.get(4)? {
        1 => find::<FileHeader32<object::Endianness>>(data),
        2 => find::<FileHeader64<object::Endianness>>(data),
        _ => None,
    }
}

/// The file `path` names in the root of `pid` (a container's root: its absolute links resolve
/// inside it, as they do for the process).
fn identity_in_root(pid: u32, path: &str) -> Option<Identity> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
    let root =
        open(format!("/proc/{pid}/root").as_str(), OFlag::O_PATH | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .ok()?;
    let how = OpenHow::new().flags(OFlag::O_PATH | OFlag::O_CLOEXEC).resolve(ResolveFlag::RESOLVE_IN_ROOT);
    let file = openat2(&root, path, how).ok()?;
    let st = nix::sys::stat::fstat(&file).ok()?;
    Some((st.st_dev, st.st_ino))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_dynamic_programs_interpreter_is_expected_once_and_nothing_else() {
        let me = std::process::id();
        let python = std::fs::File::open("/usr/bin/python3").expect("python3");
        let name = interpreter_of(python.as_fd()).expect("python3 names its interpreter");
        assert!(name.contains("ld-linux") || name.contains("ld-musl"), "{name}");
        let busybox = std::fs::File::open("/bin/busybox").expect("busybox-static");
        assert_eq!(interpreter_of(busybox.as_fd()), None, "a static program names none");
        let script = tempfile::NamedTempFile::new().expect("a file");
        std::fs::write(script.path(), "#!/bin/sh\n").expect("write");
        assert_eq!(interpreter_of(std::fs::File::open(script.path()).expect("open").as_fd()), None);

        let loader = std::fs::File::open(&name).expect("the loader");
        let mut interpreters = Interpreters::default();
        assert!(!interpreters.take(me, loader.as_fd()), "nothing expected yet");
        interpreters.expect(me, python.as_fd());
        assert!(!interpreters.take(me + 1, loader.as_fd()), "another process");
        assert!(interpreters.take(me, loader.as_fd()), "the named interpreter, once");
        assert!(!interpreters.take(me, loader.as_fd()), "not twice");
        interpreters.expect(me, python.as_fd());
        assert!(!interpreters.take(me, busybox.as_fd()), "another file is not the interpreter");
        assert!(!interpreters.take(me, loader.as_fd()), "and the expectation is spent");
    }
}

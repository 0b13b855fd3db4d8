//! Reading a file picket was given (a config, an exceptions file, a VEX document, a policy, a
//! rule file, a registry CA, docker's config.json): regular files only, at most `max` bytes. A
//! FIFO, a device (`.picketignore -> /dev/zero`) or an oversized file is refused, naming it,
//! instead of hanging picket or filling its memory. A leaf.

use std::io::Read as _;
use std::path::Path;

/// What small text inputs (configs, policies, rules, exceptions) may weigh.
pub const MAX_TEXT: u64 = 4 * 1024 * 1024;
/// What a structured document (an OpenVEX file, a PEM bundle) may weigh.
pub const MAX_DOCUMENT: u64 = 16 * 1024 * 1024;

/// The bytes of `path`, a regular file (symlinks followed) of at most `max` bytes.
pub fn read_limited(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer for ever.
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a device, FIFO or directory is not read)",
        ));
    }
    let too_big = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} MiB, the most read here", max >> 20),
        )
    };
    if meta.len() > max {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow while it is read: never more than the limit.
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big());
    }
    Ok(bytes)
}

/// As `read_limited`, as UTF-8 text.
pub fn read_text(path: &Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_limited(path, max)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not UTF-8 text: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_big_files_are_refused_quickly() {
        let err = read_limited(Path::new("/dev/zero"), MAX_TEXT).expect_err("a device");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let err = read_limited(&fifo, MAX_TEXT).expect_err("a FIFO");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 2048]).expect("write");
        let err = read_limited(&big, 1024).expect_err("too big");
        assert!(err.to_string().contains("larger than"), "{err}");
        assert_eq!(read_text(&big, 4096).expect("fits").len(), 2048);
    }
}

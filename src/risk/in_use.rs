//! Whether a vulnerable package is in use: one of its programs or shared objects (what its
//! package database lists, `Package::files`) was executed or mapped by the workload's
//! processes, as the agent read them (`Baseline::mapped`). Paths are compared with merged
//! `/usr` folded (`/lib/x86_64-linux-gnu/libc.so.6` in dpkg's list is the
//! `/usr/lib/x86_64-linux-gnu/libc.so.6` a process maps on Debian 12).

use std::collections::{BTreeSet, HashSet};

/// What is known of one package's use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use {
    /// This file of it was mapped.
    InUse(String),
    /// The workload's processes were read and none mapped any of its files.
    Unused,
    /// The package lists no programs or shared objects, or nothing was read of the workload.
    Unknown,
}

/// How long a workload is watched before a package none of its processes mapped counts as
/// unused: a library loaded only by a rare request (a report run at night) must not lower a
/// finding's weight after minutes of watching.
pub const UNUSED_AFTER_MS: u64 = 24 * 3_600_000;

/// What risk says of a package's use (`in_use`, the file seen) after `watched_ms` of watching.
pub fn known(found: Use, watched_ms: u64) -> (Option<bool>, Option<String>) {
    match found {
        Use::InUse(file) => (Some(true), Some(file)),
        Use::Unused if watched_ms >= UNUSED_AFTER_MS => (Some(false), None),
        Use::Unused | Use::Unknown => (None, None),
    }
}

/// `/usr/bin/x` and `/bin/x` as one (and `sbin`, `lib*`): merged-`/usr` systems list one and
/// map the other.
fn folded(path: &str) -> &str {
    match path.strip_prefix("/usr") {
        Some(rest) if rest.starts_with("/bin/") || rest.starts_with("/sbin/") || rest.starts_with("/lib") => rest,
        _ => path,
    }
}

/// The files one workload's processes mapped, ready to be asked about packages.
pub struct Mapped(HashSet<String>);

impl Mapped {
    pub fn new(mapped: &BTreeSet<String>) -> Self {
        Self(mapped.iter().map(|p| folded(p).to_string()).collect())
    }

    pub fn use_of(&self, package_files: &[String]) -> Use {
        if package_files.is_empty() || self.0.is_empty() {
            return Use::Unknown;
        }
        match package_files.iter().find(|f| self.0.contains(folded(f))) {
            Some(file) => Use::InUse(file.clone()),
            None => Use::Unused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(paths: &[&str]) -> Mapped {
        Mapped::new(&paths.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn a_package_is_in_use_when_a_file_of_it_was_mapped() {
        let bash = mapped(&[
            "/usr/bin/bash",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libtinfo.so.6.4",
        ]);
        let libc = vec!["/lib/x86_64-linux-gnu/libc.so.6".to_string(), "/sbin/ldconfig".to_string()];
        assert_eq!(bash.use_of(&libc), Use::InUse("/lib/x86_64-linux-gnu/libc.so.6".into()), "merged /usr");
        assert_eq!(bash.use_of(&["/usr/bin/apt".to_string()]), Use::Unused);
        assert_eq!(bash.use_of(&[]), Use::Unknown, "a package with no programs or libraries");
        assert_eq!(mapped(&[]).use_of(&libc), Use::Unknown, "nothing read of the workload");
        // Unused only once watched for a day; in use at once.
        assert_eq!(known(Use::Unused, UNUSED_AFTER_MS - 1), (None, None));
        assert_eq!(known(Use::Unused, UNUSED_AFTER_MS), (Some(false), None));
        assert_eq!(known(Use::InUse("/bin/bash".into()), 0), (Some(true), Some("/bin/bash".into())));
        // /usr/local and /usr/share are not folded.
        assert_eq!(mapped(&["/usr/local/bin/app"]).use_of(&["/local/bin/app".to_string()]), Use::Unused);
    }
}

//! File facts for benchmark checks, read under a root directory: `/` on a live host, a mounted
//! node filesystem or a test's temp dir otherwise. Owners are named from that root's
//! `etc/passwd` and `etc/group`, as `ls -l` on that host would.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{CheckResult, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    /// Permission bits (`0o644`), without the file type.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub is_dir: bool,
    pub is_socket: bool,
}

#[derive(Debug, Clone)]
pub struct HostFiles {
    root: PathBuf,
    users: Vec<(String, u32)>,
    groups: Vec<(String, u32)>,
    /// The processes of this PID namespace are the host's even though the files are under
    /// another root (the agent in its pod: host PID namespace, the node's files at
    /// `/proc/1/root`).
    live: bool,
}

impl HostFiles {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let users = read_id_file(&root.join("etc/passwd"));
        let groups = read_id_file(&root.join("etc/group"));
        Self { root, users, groups, live: false }
    }

    /// The host's files under `root`, read by a process in the host's PID namespace.
    pub fn of_live_host(root: impl Into<PathBuf>) -> Self {
        Self { live: true, ..Self::new(root) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn is_live_host(&self) -> bool {
        self.live || self.root == Path::new("/")
    }

    /// Where a host path is under the root: `/etc/docker` under `/mnt/node` is
    /// `/mnt/node/etc/docker`.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }

    /// None when the file does not exist.
    pub fn stat(&self, path: &Path) -> std::io::Result<Option<FileStat>> {
        match std::fs::metadata(self.resolve(path)) {
            Ok(meta) => Ok(Some(FileStat {
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                is_dir: meta.is_dir(),
                is_socket: meta.file_type().is_socket(),
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// None when the file does not exist.
    pub fn read_to_string(&self, path: &Path) -> std::io::Result<Option<String>> {
        match std::fs::read(self.resolve(path)) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The entries of a directory as host paths, sorted; empty when it does not exist.
    pub fn list_dir(&self, dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.resolve(dir)) else { return Vec::new() };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| dir.join(e.file_name())).collect();
        paths.sort();
        paths
    }

    pub fn user_name(&self, uid: u32) -> String {
        name_of(&self.users, uid)
    }

    pub fn group_name(&self, gid: u32) -> String {
        name_of(&self.groups, gid)
    }

    pub fn uid_of(&self, name: &str) -> Option<u32> {
        self.users.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }

    pub fn gid_of(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }

    /// The members of a group in `etc/group`.
    pub fn group_members(&self, group: &str) -> Vec<String> {
        let Ok(Some(text)) = self.read_to_string(Path::new("/etc/group")) else { return Vec::new() };
        text.lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|fields| fields.first() == Some(&group))
            .and_then(|fields| {
                fields.get(3).map(|m| m.split(',').filter(|s| !s.is_empty()).map(String::from).collect())
            })
            .unwrap_or_default()
    }

    /// PASS when the file's permissions are `max_mode` or more restrictive (no bit outside it).
    pub fn mode_at_most(&self, path: &Path, max_mode: u32) -> CheckResult {
        let subject = path.display().to_string();
        match self.stat(path) {
            Ok(Some(stat)) => {
                let extra = stat.mode & !max_mode;
                let status = if extra == 0 { Status::Pass } else { Status::Fail };
                CheckResult::new(status, subject, format!("mode {:04o}, allowed at most {max_mode:04o}", stat.mode))
            }
            Ok(None) => CheckResult::new(Status::Skip, subject, "not present"),
            Err(e) => CheckResult::new(Status::Warn, subject, format!("cannot read: {e}")),
        }
    }

    /// PASS when the file is owned by `user` and group `group` (group `None`: any group).
    pub fn owned_by(&self, path: &Path, user: &str, group: Option<&str>) -> CheckResult {
        let subject = path.display().to_string();
        match self.stat(path) {
            Ok(Some(stat)) => {
                let (owner, owner_group) = (self.user_name(stat.uid), self.group_name(stat.gid));
                let ok = owner == user && group.is_none_or(|g| owner_group == g);
                let wanted = group.map_or(user.to_string(), |g| format!("{user}:{g}"));
                CheckResult::new(
                    if ok { Status::Pass } else { Status::Fail },
                    subject,
                    format!("owned by {owner}:{owner_group}, expected {wanted}"),
                )
            }
            Ok(None) => CheckResult::new(Status::Skip, subject, "not present"),
            Err(e) => CheckResult::new(Status::Warn, subject, format!("cannot read: {e}")),
        }
    }
}

fn read_id_file(path: &Path) -> Vec<(String, u32)> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse().ok()?;
            Some((name.to_string(), id))
        })
        .collect()
}

fn name_of(table: &[(String, u32)], id: u32) -> String {
    table.iter().find(|(_, i)| *i == id).map_or_else(|| id.to_string(), |(n, _)| n.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/docker")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\ndocker:x:998:alice,bob\nalice:x:1000:\n").unwrap();
        dir
    }

    #[test]
    fn modes_are_judged_bit_by_bit() {
        let dir = root();
        let file = dir.path().join("etc/docker/daemon.json");
        std::fs::write(&file, "{}").unwrap();
        let files = HostFiles::new(dir.path());
        for (mode, status) in
            [(0o644, Status::Pass), (0o600, Status::Pass), (0o664, Status::Fail), (0o4644, Status::Fail)]
        {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let result = files.mode_at_most(Path::new("/etc/docker/daemon.json"), 0o644);
            assert_eq!(result.status, status, "{mode:o}: {result:?}");
            assert_eq!(result.subject, "/etc/docker/daemon.json");
        }
        assert_eq!(files.mode_at_most(Path::new("/etc/missing"), 0o644).status, Status::Skip);
    }

    #[test]
    fn owners_are_named_from_the_roots_own_tables() {
        let dir = root();
        let files = HostFiles::new(dir.path());
        assert_eq!(files.user_name(1000), "alice");
        assert_eq!(files.group_name(998), "docker");
        assert_eq!(files.user_name(4242), "4242");
        assert_eq!(files.group_members("docker"), vec!["alice", "bob"]);
        assert_eq!(files.gid_of("docker"), Some(998));
        let uid = std::fs::metadata(dir.path().join("etc/docker")).unwrap().uid();
        let owner = files.user_name(uid);
        assert_eq!(files.owned_by(Path::new("/etc/docker"), &owner, None).status, Status::Pass);
        let own = files.owned_by(Path::new("/etc/docker"), "nobody", None);
        assert_eq!(own.status, Status::Fail, "{own:?}");
        assert!(own.evidence.contains("expected nobody"), "{own:?}");
    }
}

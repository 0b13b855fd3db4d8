//! Sections 1 (host: data partition, docker group, audit rules) and 3 (owners and modes of the
//! daemon's files), plus 4.5 (content trust in this environment).

use std::path::{Path, PathBuf};

use super::DockerFacts;
use crate::bench::files::HostFiles;
use crate::bench::{CheckResult, Status};
use crate::engine::EngineKind;

type Emit<'a> = dyn FnMut(&'static str, CheckResult) + 'a;

const UNIT_DIRS: &[&str] = &["/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"];
const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

pub(super) fn judge(facts: &DockerFacts, files: &HostFiles, emit: &mut Emit) {
    data_partition(facts, files, emit);
    let members = files.group_members("docker");
    emit(
        "1.1.2",
        CheckResult::new(
            Status::Info,
            "group docker",
            if members.is_empty() { "no members".to_string() } else { format!("members: {}", members.join(", ")) },
        ),
    );
    audit_rules(facts, files, emit);
    emit("1.2.1", CheckResult::new(Status::Warn, "host", "manual review"));
    emit("1.2.2", CheckResult::new(Status::Info, "daemon", format!("{} {}", facts.engine.as_str(), facts.version)));
    daemon_files(facts, files, emit);
    let trust = std::env::var("DOCKER_CONTENT_TRUST").unwrap_or_default();
    emit(
        "4.5",
        CheckResult::new(
            if trust == "1" { Status::Pass } else { Status::Warn },
            "environment",
            format!("DOCKER_CONTENT_TRUST={trust:?} where picket runs; check where images are pulled"),
        ),
    );
}

fn data_partition(facts: &DockerFacts, files: &HostFiles, emit: &mut Emit) {
    let Some(root) = facts.info.docker_root_dir.as_deref().filter(|r| !r.is_empty()) else {
        emit("1.1.1", CheckResult::new(Status::Warn, "data root", "the engine did not name its data root"));
        return;
    };
    if !files.is_live_host() {
        emit("1.1.1", CheckResult::new(Status::Skip, root, "mounts are only known on the live host"));
        return;
    }
    let status = match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(mountinfo) if is_partition_root(&mountinfo, root) => (Status::Pass, "a separate filesystem"),
        Ok(_) => (Status::Fail, "not a filesystem of its own"),
        Err(_) => (Status::Warn, "/proc/self/mountinfo is not readable"),
    };
    emit("1.1.1", CheckResult::new(status.0, root, status.1));
}

/// Whether a filesystem's root is mounted at `path` in a `/proc/<pid>/mountinfo` text (field
/// 5 the mount point, with octal escapes for spaces; field 4 the root within the filesystem).
/// dockerd bind-mounts its data root onto itself, which is a mount point but no partition.
pub(super) fn is_partition_root(mountinfo: &str, path: &str) -> bool {
    let wanted = path.trim_end_matches('/');
    mountinfo.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        fields.get(3) == Some(&"/") && fields.get(4).is_some_and(|mount| mount.replace("\\040", " ") == wanted)
    })
}

/// The paths CIS 1.1.3–1.1.18 want audited, resolved on this host.
fn audited_paths(facts: &DockerFacts, files: &HostFiles) -> Vec<(&'static str, Vec<PathBuf>)> {
    let dockerd = facts
        .daemon
        .as_ref()
        .and_then(|d| d.pid)
        .filter(|_| files.is_live_host())
        .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
        .map(|exe| vec![exe])
        .unwrap_or_else(|| vec![PathBuf::from("/usr/bin/dockerd"), PathBuf::from("/usr/sbin/dockerd")]);
    let data_root = facts.info.docker_root_dir.clone().unwrap_or_else(|| "/var/lib/docker".into());
    let daemon_json =
        facts.daemon.as_ref().map_or_else(|| PathBuf::from(super::DEFAULT_CONFIG), |d| d.config_path.clone());
    let one = |p: &str| vec![PathBuf::from(p)];
    vec![
        ("1.1.3", dockerd),
        ("1.1.4", one("/run/containerd")),
        ("1.1.5", vec![PathBuf::from(data_root)]),
        ("1.1.6", one("/etc/docker")),
        ("1.1.7", unit_candidates("docker.service")),
        ("1.1.8", one(CONTAINERD_SOCKET)),
        ("1.1.9", unit_candidates("docker.socket")),
        ("1.1.10", one("/etc/default/docker")),
        ("1.1.11", vec![daemon_json]),
        ("1.1.12", one("/etc/containerd/config.toml")),
        ("1.1.13", one("/etc/sysconfig/docker")),
        ("1.1.14", one("/usr/bin/containerd")),
        ("1.1.15", one("/usr/bin/containerd-shim")),
        ("1.1.16", one("/usr/bin/containerd-shim-runc-v1")),
        ("1.1.17", one("/usr/bin/containerd-shim-runc-v2")),
        ("1.1.18", vec![PathBuf::from("/usr/bin/runc"), PathBuf::from("/usr/sbin/runc")]),
    ]
}

fn unit_candidates(unit: &str) -> Vec<PathBuf> {
    UNIT_DIRS.iter().map(|dir| Path::new(dir).join(unit)).collect()
}

fn audit_rules(facts: &DockerFacts, files: &HostFiles, emit: &mut Emit) {
    let mut rules = String::new();
    let mut sources = 0;
    let rule_files = std::iter::once(PathBuf::from("/etc/audit/audit.rules")).chain(
        files
            .list_dir(Path::new("/etc/audit/rules.d"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rules")),
    );
    for path in rule_files {
        if let Ok(Some(text)) = files.read_to_string(&path) {
            rules.push_str(&text);
            rules.push('\n');
            sources += 1;
        }
    }
    for (id, candidates) in audited_paths(facts, files) {
        let present: Vec<&PathBuf> = candidates.iter().filter(|p| files.stat(p).ok().flatten().is_some()).collect();
        let Some(path) = present.first() else {
            let shown = candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or ");
            emit(id, CheckResult::new(Status::Skip, shown, "not present"));
            continue;
        };
        let subject = path.display().to_string();
        let watched = is_audited(&rules, path);
        let evidence = if watched {
            "an audit rule watches it".to_string()
        } else if sources == 0 {
            "no audit rules found (/etc/audit/audit.rules, /etc/audit/rules.d/*.rules)".to_string()
        } else {
            "no audit rule watches it".to_string()
        };
        emit(id, CheckResult::new(if watched { Status::Pass } else { Status::Fail }, subject, evidence));
    }
}

/// Whether an auditctl rule text watches `path`: `-w PATH …` or `-F path=PATH` / `dir=PATH`.
pub(super) fn is_audited(rules: &str, path: &Path) -> bool {
    let path = path.to_string_lossy();
    rules.lines().map(str::trim).filter(|l| !l.starts_with('#')).any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.windows(2).any(|w| w[0] == "-w" && w[1] == path)
            || words.iter().any(|w| w.strip_prefix("path=").or_else(|| w.strip_prefix("dir=")) == Some(&*path))
    })
}

fn daemon_files(facts: &DockerFacts, files: &HostFiles, emit: &mut Emit) {
    let first_present = |candidates: Vec<PathBuf>| -> PathBuf {
        candidates
            .iter()
            .find(|p| files.stat(p).ok().flatten().is_some())
            .cloned()
            .unwrap_or_else(|| candidates.into_iter().next().unwrap_or_default())
    };
    let service = first_present(unit_candidates("docker.service"));
    let socket_unit = first_present(unit_candidates("docker.socket"));
    emit("3.1", files.owned_by(&service, "root", Some("root")));
    emit("3.2", files.mode_at_most(&service, 0o644));
    emit("3.3", files.owned_by(&socket_unit, "root", Some("root")));
    emit("3.4", files.mode_at_most(&socket_unit, 0o644));
    let etc_docker = Path::new("/etc/docker");
    emit("3.5", files.owned_by(etc_docker, "root", Some("root")));
    emit("3.6", files.mode_at_most(etc_docker, 0o755));

    let certs: Vec<PathBuf> = files
        .list_dir(Path::new("/etc/docker/certs.d"))
        .iter()
        .flat_map(|registry| files.list_dir(registry))
        .filter(|p| files.stat(p).ok().flatten().is_some_and(|s| !s.is_dir))
        .collect();
    if certs.is_empty() {
        for id in ["3.7", "3.8"] {
            emit(id, CheckResult::new(Status::Skip, "/etc/docker/certs.d", "no registry certificates"));
        }
    }
    for cert in &certs {
        emit("3.7", files.owned_by(cert, "root", Some("root")));
        emit("3.8", files.mode_at_most(cert, 0o444));
    }

    for (option, owner_id, mode_id, mode) in
        [("tlscacert", "3.9", "3.10", 0o444), ("tlscert", "3.11", "3.12", 0o444), ("tlskey", "3.13", "3.14", 0o400)]
    {
        match facts.daemon.as_ref().and_then(|d| d.string_option(option)) {
            Some(path) => {
                emit(owner_id, files.owned_by(Path::new(&path), "root", Some("root")));
                emit(mode_id, files.mode_at_most(Path::new(&path), mode));
            }
            None => {
                for id in [owner_id, mode_id] {
                    emit(id, CheckResult::new(Status::Skip, option, "not configured"));
                }
            }
        }
    }

    // The API socket is read where picket reaches it, whatever root the other files are under.
    let live = HostFiles::new("/");
    match facts.engine {
        EngineKind::Docker => emit("3.15", live.owned_by(&facts.socket, "root", Some("docker"))),
        // Podman creates no docker group; its socket must still belong to root.
        EngineKind::Podman => emit("3.15", live.owned_by(&facts.socket, "root", None)),
    }
    emit("3.16", live.mode_at_most(&facts.socket, 0o660));

    let daemon_json =
        facts.daemon.as_ref().map_or_else(|| PathBuf::from(super::DEFAULT_CONFIG), |d| d.config_path.clone());
    emit("3.17", files.owned_by(&daemon_json, "root", Some("root")));
    emit("3.18", files.mode_at_most(&daemon_json, 0o644));
    emit("3.19", files.owned_by(Path::new("/etc/default/docker"), "root", Some("root")));
    emit("3.20", files.mode_at_most(Path::new("/etc/default/docker"), 0o644));
    emit("3.21", files.mode_at_most(Path::new("/etc/sysconfig/docker"), 0o644));
    emit("3.22", files.owned_by(Path::new("/etc/sysconfig/docker"), "root", Some("root")));

    // A dockerd that runs its own containerd puts the socket under its exec root.
    let exec_root =
        facts.daemon.as_ref().and_then(|d| d.string_option("exec-root")).unwrap_or_else(|| "/var/run/docker".into());
    let managed = Path::new(&exec_root).join("containerd/containerd.sock");
    let sockets: Vec<PathBuf> = [PathBuf::from(CONTAINERD_SOCKET), managed]
        .into_iter()
        .filter(|p| files.stat(p).ok().flatten().is_some())
        .collect();
    if sockets.is_empty() {
        for id in ["3.23", "3.24"] {
            emit(id, CheckResult::new(Status::Skip, CONTAINERD_SOCKET, "not present"));
        }
    }
    for socket in &sockets {
        emit("3.23", files.owned_by(socket, "root", Some("root")));
        emit("3.24", files.mode_at_most(socket, 0o660));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_rules_match_watches_and_path_fields_exactly() {
        let rules = "# -w /usr/bin/dockerd -k docker\n-w /etc/docker -k docker\n-a exit,always -F path=/run/containerd -F perm=war -k docker\n";
        assert!(is_audited(rules, Path::new("/etc/docker")));
        assert!(is_audited(rules, Path::new("/run/containerd")));
        assert!(!is_audited(rules, Path::new("/usr/bin/dockerd")), "a commented rule does not count");
        assert!(!is_audited(rules, Path::new("/etc/dock")), "prefixes do not count");
    }

    #[test]
    fn partitions_are_filesystem_roots_mounted_at_the_path() {
        let mountinfo = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n40 22 8:2 / /var/lib/docker rw - xfs /dev/sda2 rw\n41 22 8:3 / /mnt/my\\040disk rw - xfs /dev/sda3 rw\n42 22 8:1 /srv/docker /srv/docker rw shared:1 - ext4 /dev/sda1 rw\n";
        assert!(is_partition_root(mountinfo, "/var/lib/docker/"));
        assert!(is_partition_root(mountinfo, "/mnt/my disk"));
        assert!(!is_partition_root(mountinfo, "/var/lib"));
        assert!(!is_partition_root(mountinfo, "/srv/docker"), "a bind mount of a directory is not a partition");
    }
}

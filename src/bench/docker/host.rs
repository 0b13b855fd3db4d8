//! Sections 1 (host: data partition, docker group, audit rules) and 3 (owners and modes of the
//! daemon's files), plus 4.5 (content trust in this environment).

use std::path::{Path, PathBuf};

use super::DockerInput;
use crate::bench::files::HostFiles;
use crate::bench::{CheckResult, Status};
use crate::engine::EngineKind;

const UNIT_DIRS: &[&str] = &["/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"];
const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

pub(super) fn data_partition(input: &DockerInput) -> Vec<CheckResult> {
    let (facts, files) = (input.facts, input.files);
    let Some(root) = facts.info.docker_root_dir.as_deref().filter(|r| !r.is_empty()) else {
        return vec![CheckResult::new(Status::Warn, "data root", "the engine did not name its data root")];
    };
    if !files.is_live_host() {
        return vec![CheckResult::new(Status::Skip, root, "mounts are only known on the live host")];
    }
    let status = match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(mountinfo) if is_partition_root(&mountinfo, root) => (Status::Pass, "a separate filesystem"),
        Ok(_) => (Status::Fail, "not a filesystem of its own"),
        Err(_) => (Status::Warn, "/proc/self/mountinfo is not readable"),
    };
    vec![CheckResult::new(status.0, root, status.1)]
}

pub(super) fn docker_group(input: &DockerInput) -> Vec<CheckResult> {
    let members = input.files.group_members("docker");
    let evidence =
        if members.is_empty() { "no members".to_string() } else { format!("members: {}", members.join(", ")) };
    vec![CheckResult::new(Status::Info, "group docker", evidence)]
}

pub(super) fn engine_version(input: &DockerInput) -> Vec<CheckResult> {
    let facts = input.facts;
    vec![CheckResult::new(Status::Info, "daemon", format!("{} {}", facts.engine.as_str(), facts.version))]
}

pub(super) fn content_trust(_: &DockerInput) -> Vec<CheckResult> {
    let trust = std::env::var("DOCKER_CONTENT_TRUST").unwrap_or_default();
    vec![CheckResult::new(
        if trust == "1" { Status::Pass } else { Status::Warn },
        "environment",
        format!("DOCKER_CONTENT_TRUST={trust:?} where picket runs; check where images are pulled"),
    )]
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

fn unit_candidates(unit: &str) -> Vec<PathBuf> {
    UNIT_DIRS.iter().map(|dir| Path::new(dir).join(unit)).collect()
}

fn one(path: &str) -> Vec<PathBuf> {
    vec![PathBuf::from(path)]
}

/// The daemon's configuration file: the one it was started with, else the default.
fn daemon_json(input: &DockerInput) -> PathBuf {
    input.facts.daemon.as_ref().map_or_else(|| PathBuf::from(super::DEFAULT_CONFIG), |d| d.config_path.clone())
}

/// The rules auditd loads: (their text, how many files held some).
fn audit_rules(files: &HostFiles) -> (String, usize) {
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
    (rules, sources)
}

/// CIS 1.1.3–1.1.18: the first of `candidates` present on the host is watched by an audit rule.
fn audited(input: &DockerInput, candidates: Vec<PathBuf>) -> Vec<CheckResult> {
    let files = input.files;
    let present: Vec<&PathBuf> = candidates.iter().filter(|p| files.stat(p).ok().flatten().is_some()).collect();
    let Some(path) = present.first() else {
        let shown = candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or ");
        return vec![CheckResult::new(Status::Skip, shown, "not present")];
    };
    let (rules, sources) = audit_rules(files);
    let watched = is_audited(&rules, path);
    let evidence = if watched {
        "an audit rule watches it".to_string()
    } else if sources == 0 {
        "no audit rules found (/etc/audit/audit.rules, /etc/audit/rules.d/*.rules)".to_string()
    } else {
        "no audit rule watches it".to_string()
    };
    vec![CheckResult::new(if watched { Status::Pass } else { Status::Fail }, path.display().to_string(), evidence)]
}

pub(super) fn audit_dockerd(input: &DockerInput) -> Vec<CheckResult> {
    let dockerd = input
        .facts
        .daemon
        .as_ref()
        .and_then(|d| d.pid)
        .filter(|_| input.files.is_live_host())
        .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
        .map(|exe| vec![exe])
        .unwrap_or_else(|| vec![PathBuf::from("/usr/bin/dockerd"), PathBuf::from("/usr/sbin/dockerd")]);
    audited(input, dockerd)
}

pub(super) fn audit_run_containerd(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, one("/run/containerd"))
}

pub(super) fn audit_data_root(input: &DockerInput) -> Vec<CheckResult> {
    let data_root = input.facts.info.docker_root_dir.clone().unwrap_or_else(|| "/var/lib/docker".into());
    audited(input, vec![PathBuf::from(data_root)])
}

pub(super) fn audit_etc_docker(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, one("/etc/docker"))
}

pub(super) fn audit_docker_service(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, unit_candidates("docker.service"))
}

pub(super) fn audit_containerd_socket(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, one(CONTAINERD_SOCKET))
}

pub(super) fn audit_docker_socket_unit(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, unit_candidates("docker.socket"))
}

pub(super) fn audit_etc_default_docker(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, one("/etc/default/docker"))
}

pub(super) fn audit_daemon_json(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, vec![daemon_json(input)])
}

pub(super) fn audit_containerd_config(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, one("/etc/containerd/config.toml"))
}

pub(super) fn audit_sysconfig_docker(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, one("/etc/sysconfig/docker"))
}

pub(super) fn audit_containerd(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, one("/usr/bin/containerd"))
}

pub(super) fn audit_containerd_shim(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, one("/usr/bin/containerd-shim"))
}

pub(super) fn audit_shim_runc_v1(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, one("/usr/bin/containerd-shim-runc-v1"))
}

pub(super) fn audit_shim_runc_v2(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, one("/usr/bin/containerd-shim-runc-v2"))
}

pub(super) fn audit_runc(input: &DockerInput) -> Vec<CheckResult> {
    audited(input, vec![PathBuf::from("/usr/bin/runc"), PathBuf::from("/usr/sbin/runc")])
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

/// The first of the candidates present, else the first.
fn first_present(files: &HostFiles, candidates: Vec<PathBuf>) -> PathBuf {
    candidates
        .iter()
        .find(|p| files.stat(p).ok().flatten().is_some())
        .cloned()
        .unwrap_or_else(|| candidates.into_iter().next().unwrap_or_default())
}

fn owned_by_root(input: &DockerInput, path: &Path) -> Vec<CheckResult> {
    vec![input.files.owned_by(path, "root", Some("root"))]
}

fn mode_at_most(input: &DockerInput, path: &Path, mode: u32) -> Vec<CheckResult> {
    vec![input.files.mode_at_most(path, mode)]
}

pub(super) fn service_owner(input: &DockerInput) -> Vec<CheckResult> {
    owned_by_root(input, &first_present(input.files, unit_candidates("docker.service")))
}

pub(super) fn service_mode(input: &DockerInput) -> Vec<CheckResult> {
    mode_at_most(input, &first_present(input.files, unit_candidates("docker.service")), 0o644)
}

pub(super) fn socket_unit_owner(input: &DockerInput) -> Vec<CheckResult> {
    owned_by_root(input, &first_present(input.files, unit_candidates("docker.socket")))
}

pub(super) fn socket_unit_mode(input: &DockerInput) -> Vec<CheckResult> {
    mode_at_most(input, &first_present(input.files, unit_candidates("docker.socket")), 0o644)
}

pub(super) fn etc_docker_owner(input: &DockerInput) -> Vec<CheckResult> {
    owned_by_root(input, Path::new("/etc/docker"))
}

pub(super) fn etc_docker_mode(input: &DockerInput) -> Vec<CheckResult> {
    mode_at_most(input, Path::new("/etc/docker"), 0o755)
}

/// Registry certificates under /etc/docker/certs.d, each judged by `judge`.
fn registry_certs(input: &DockerInput, judge: impl Fn(&Path) -> CheckResult) -> Vec<CheckResult> {
    let files = input.files;
    let certs: Vec<PathBuf> = files
        .list_dir(Path::new("/etc/docker/certs.d"))
        .iter()
        .flat_map(|registry| files.list_dir(registry))
        .filter(|p| files.stat(p).ok().flatten().is_some_and(|s| !s.is_dir))
        .collect();
    if certs.is_empty() {
        return vec![CheckResult::new(Status::Skip, "/etc/docker/certs.d", "no registry certificates")];
    }
    certs.iter().map(|cert| judge(cert)).collect()
}

pub(super) fn registry_certs_owner(input: &DockerInput) -> Vec<CheckResult> {
    registry_certs(input, |cert| input.files.owned_by(cert, "root", Some("root")))
}

pub(super) fn registry_certs_mode(input: &DockerInput) -> Vec<CheckResult> {
    registry_certs(input, |cert| input.files.mode_at_most(cert, 0o444))
}

/// A TLS file the daemon names with `option`, judged by `judge`.
fn tls_file(input: &DockerInput, option: &str, judge: impl Fn(&Path) -> CheckResult) -> Vec<CheckResult> {
    match input.facts.daemon.as_ref().and_then(|d| d.string_option(option)) {
        Some(path) => vec![judge(Path::new(&path))],
        None => vec![CheckResult::new(Status::Skip, option, "not configured")],
    }
}

pub(super) fn tls_ca_owner(input: &DockerInput) -> Vec<CheckResult> {
    tls_file(input, "tlscacert", |p| input.files.owned_by(p, "root", Some("root")))
}

pub(super) fn tls_ca_mode(input: &DockerInput) -> Vec<CheckResult> {
    tls_file(input, "tlscacert", |p| input.files.mode_at_most(p, 0o444))
}

pub(super) fn tls_cert_owner(input: &DockerInput) -> Vec<CheckResult> {
    tls_file(input, "tlscert", |p| input.files.owned_by(p, "root", Some("root")))
}

pub(super) fn tls_cert_mode(input: &DockerInput) -> Vec<CheckResult> {
    tls_file(input, "tlscert", |p| input.files.mode_at_most(p, 0o444))
}

pub(super) fn tls_key_owner(input: &DockerInput) -> Vec<CheckResult> {
    tls_file(input, "tlskey", |p| input.files.owned_by(p, "root", Some("root")))
}

pub(super) fn tls_key_mode(input: &DockerInput) -> Vec<CheckResult> {
    tls_file(input, "tlskey", |p| input.files.mode_at_most(p, 0o400))
}

/// The API socket is read where picket reaches it, whatever root the other files are under.
pub(super) fn api_socket_owner(input: &DockerInput) -> Vec<CheckResult> {
    let live = HostFiles::new("/");
    vec![match input.facts.engine {
        EngineKind::Docker => live.owned_by(&input.facts.socket, "root", Some("docker")),
        // Podman creates no docker group; its socket must still belong to root.
        EngineKind::Podman => live.owned_by(&input.facts.socket, "root", None),
    }]
}

pub(super) fn api_socket_mode(input: &DockerInput) -> Vec<CheckResult> {
    vec![HostFiles::new("/").mode_at_most(&input.facts.socket, 0o660)]
}

pub(super) fn daemon_json_owner(input: &DockerInput) -> Vec<CheckResult> {
    owned_by_root(input, &daemon_json(input))
}

pub(super) fn daemon_json_mode(input: &DockerInput) -> Vec<CheckResult> {
    mode_at_most(input, &daemon_json(input), 0o644)
}

pub(super) fn etc_default_docker_owner(input: &DockerInput) -> Vec<CheckResult> {
    owned_by_root(input, Path::new("/etc/default/docker"))
}

pub(super) fn etc_default_docker_mode(input: &DockerInput) -> Vec<CheckResult> {
    mode_at_most(input, Path::new("/etc/default/docker"), 0o644)
}

pub(super) fn sysconfig_docker_mode(input: &DockerInput) -> Vec<CheckResult> {
    mode_at_most(input, Path::new("/etc/sysconfig/docker"), 0o644)
}

pub(super) fn sysconfig_docker_owner(input: &DockerInput) -> Vec<CheckResult> {
    owned_by_root(input, Path::new("/etc/sysconfig/docker"))
}

/// containerd's sockets on the host, each judged by `judge`. A dockerd that runs its own
/// containerd puts the socket under its exec root.
fn containerd_sockets(input: &DockerInput, judge: impl Fn(&Path) -> CheckResult) -> Vec<CheckResult> {
    let exec_root = input
        .facts
        .daemon
        .as_ref()
        .and_then(|d| d.string_option("exec-root"))
        .unwrap_or_else(|| "/var/run/docker".into());
    let managed = Path::new(&exec_root).join("containerd/containerd.sock");
    let sockets: Vec<PathBuf> = [PathBuf::from(CONTAINERD_SOCKET), managed]
        .into_iter()
        .filter(|p| input.files.stat(p).ok().flatten().is_some())
        .collect();
    if sockets.is_empty() {
        return vec![CheckResult::new(Status::Skip, CONTAINERD_SOCKET, "not present")];
    }
    sockets.iter().map(|socket| judge(socket)).collect()
}

pub(super) fn containerd_socket_owner(input: &DockerInput) -> Vec<CheckResult> {
    containerd_sockets(input, |p| input.files.owned_by(p, "root", Some("root")))
}

pub(super) fn containerd_socket_mode(input: &DockerInput) -> Vec<CheckResult> {
    containerd_sockets(input, |p| input.files.mode_at_most(p, 0o660))
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

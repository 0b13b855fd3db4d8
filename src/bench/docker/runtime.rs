//! Sections 4 (images, as far as a running image shows) and 5 (container runtime): one result
//! per running container.

use bollard::models::{ContainerInspectResponse, HostConfig, MountPoint, RestartPolicyNameEnum};

use super::{DockerFacts, container_name};
use crate::bench::{CheckResult, Status};
use crate::engine::EngineKind;

/// Host directories CIS 5.6 names as sensitive.
const SENSITIVE_DIRS: &[&str] = &["/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr"];

/// Capabilities outside Docker's default set that let a container act on the host.
const DANGEROUS_CAPS: &[&str] = &[
    "ALL",
    "SYS_ADMIN",
    "SYS_MODULE",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_TIME",
    "SYS_BOOT",
    "NET_ADMIN",
    "DAC_READ_SEARCH",
    "BPF",
    "PERFMON",
    "SYSLOG",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "LINUX_IMMUTABLE",
    "SYS_RESOURCE",
];

type Emit<'a> = dyn FnMut(&'static str, CheckResult) + 'a;

pub(super) fn judge(facts: &DockerFacts, emit: &mut Emit) {
    if facts.containers.is_empty() {
        for id in PER_CONTAINER {
            emit(id, CheckResult::new(Status::Skip, "containers", "no running containers"));
        }
    }
    for c in &facts.containers {
        judge_container(facts, c, emit);
    }
    let swarm = facts.info.swarm.as_ref().and_then(|s| s.local_node_state.as_ref()).map(|s| s.to_string());
    let active = swarm.as_deref() == Some("active");
    emit(
        "5.1",
        CheckResult::new(
            if active { Status::Warn } else { Status::Pass },
            "daemon",
            format!("swarm state {}", swarm.as_deref().unwrap_or("inactive")),
        ),
    );
    for id in MANUAL {
        emit(id, CheckResult::new(Status::Warn, "host", "manual review"));
    }
}

/// Checks with a result per container.
const PER_CONTAINER: &[&str] = &[
    "4.1", "4.6", "5.2", "5.3", "5.4", "5.5", "5.6", "5.7", "5.8", "5.9", "5.10", "5.11", "5.12", "5.13", "5.14",
    "5.15", "5.16", "5.17", "5.18", "5.19", "5.20", "5.21", "5.22", "5.25", "5.26", "5.27", "5.29", "5.30", "5.31",
    "5.32",
];

/// Section 4 and 5 recommendations about how images are built and exec is used, which a running
/// container cannot show: a person reviews them (`picket scan dockerfile` covers build files).
const MANUAL: &[&str] = &["4.2", "4.3", "4.4", "4.7", "4.8", "4.9", "4.10", "4.11", "4.12", "5.23", "5.24", "5.28"];

fn judge_container(facts: &DockerFacts, c: &ContainerInspectResponse, emit: &mut Emit) {
    let subject = format!("container {}", container_name(c));
    let default_host = HostConfig::default();
    let host = c.host_config.as_ref().unwrap_or(&default_host);
    let mounts: &[MountPoint] = c.mounts.as_deref().unwrap_or_default();
    let security_opt: Vec<String> = host.security_opt.clone().unwrap_or_default();
    let mut result = |id: &'static str, status: Status, evidence: String| {
        emit(id, CheckResult::new(status, subject.clone(), evidence));
    };
    let pass_if = |ok: bool| if ok { Status::Pass } else { Status::Fail };
    let shared: &[&str] = facts.shared_namespaces.get(c.id.as_deref().unwrap_or_default()).map_or(&[], Vec::as_slice);
    // Host namespaces, by the engine's word or by what /proc shows.
    let namespace = |mode: Option<&String>, ns: &str, what: &str| -> (bool, String) {
        let mode = mode.cloned().unwrap_or_default();
        let seen = shared.contains(&ns);
        let evidence = match (mode == "host", seen) {
            (_, true) if mode != "host" => format!("{what} mode {mode:?}, but /proc shows the host's {ns} namespace"),
            _ => format!("{what} mode {mode:?}"),
        };
        (mode == "host" || seen, evidence)
    };

    // 4.1: the image (or the run) names a user other than root.
    let user = c.config.as_ref().and_then(|c| c.user.clone()).unwrap_or_default();
    let is_root = matches!(user.split(':').next().unwrap_or(""), "" | "root" | "0");
    result(
        "4.1",
        pass_if(!is_root),
        if user.is_empty() { "runs as root (no user set)".into() } else { format!("user {user}") },
    );

    // 4.6: a HEALTHCHECK in the image.
    let image_health = c
        .image
        .as_ref()
        .and_then(|id| facts.images.get(id))
        .and_then(|i| i.config.as_ref())
        .and_then(|cfg| cfg.healthcheck.as_ref())
        .and_then(|h| h.test.as_ref())
        .is_some_and(|t| t.first().is_some_and(|k| k != "NONE"));
    result(
        "4.6",
        pass_if(image_health),
        if image_health { "image has a HEALTHCHECK" } else { "image has no HEALTHCHECK" }.into(),
    );

    // 5.2 / 5.3: only where the kernel runs the module.
    let apparmor = c.app_armor_profile.clone().unwrap_or_default();
    if facts.host.apparmor {
        let ok = !apparmor.is_empty() && apparmor != "unconfined";
        result("5.2", pass_if(ok), format!("AppArmor profile {:?}", apparmor));
    } else {
        result("5.2", Status::Skip, "AppArmor is not enabled on this host".into());
    }
    if facts.host.selinux {
        let labelled = security_opt.iter().any(|o| o.starts_with("label=") || o.starts_with("label:"));
        result("5.3", pass_if(labelled), format!("security options {security_opt:?}"));
    } else {
        result("5.3", Status::Skip, "SELinux is not enabled on this host".into());
    }

    // 5.4: added capabilities beyond the engine's default set.
    let added: Vec<String> = host.cap_add.clone().unwrap_or_default().iter().map(|c| normalise_cap(c)).collect();
    let dangerous: Vec<&String> = added.iter().filter(|c| DANGEROUS_CAPS.contains(&c.as_str())).collect();
    let privileged = host.privileged.unwrap_or(false);
    let status = if !dangerous.is_empty() || privileged {
        Status::Fail
    } else if !added.is_empty() {
        Status::Warn
    } else {
        Status::Pass
    };
    let dropped = host.cap_drop.clone().unwrap_or_default();
    let evidence = if privileged {
        "privileged: every capability".to_string()
    } else {
        format!("added {added:?}, dropped {dropped:?}")
    };
    result("5.4", status, evidence);

    result("5.5", pass_if(!privileged), format!("privileged: {privileged}"));

    let sensitive: Vec<String> = mounts
        .iter()
        .filter_map(|m| {
            let source = m.source.as_deref()?;
            let hit = SENSITIVE_DIRS.iter().any(|d| {
                source == *d || (*d != "/" && source.strip_prefix(d).is_some_and(|rest| rest.starts_with('/')))
            });
            hit.then(|| describe_mount(m))
        })
        .collect();
    result("5.6", pass_if(sensitive.is_empty()), mounts_evidence(&sensitive, "no sensitive host directory mounted"));

    match facts.processes.get(c.id.as_deref().unwrap_or_default()) {
        Some(Ok(commands)) => {
            let sshd: Vec<&String> = commands.iter().filter(|cmd| is_sshd(cmd)).collect();
            let evidence = if sshd.is_empty() {
                format!("{} processes, no sshd", commands.len())
            } else {
                format!("running {sshd:?}")
            };
            result("5.7", pass_if(sshd.is_empty()), evidence);
        }
        Some(Err(why)) => result("5.7", Status::Warn, format!("processes could not be listed: {why}")),
        None => result("5.7", Status::Warn, "processes were not listed".into()),
    }

    let ports = published_ports(c);
    let privileged_ports: Vec<&(String, u16, String)> =
        ports.iter().filter(|(_, host_port, _)| *host_port < 1024).collect();
    result("5.8", pass_if(privileged_ports.is_empty()), ports_evidence(&privileged_ports));
    let all: Vec<&(String, u16, String)> = ports.iter().collect();
    result("5.9", if ports.is_empty() { Status::Pass } else { Status::Warn }, ports_evidence(&all));
    let any_interface: Vec<&(String, u16, String)> =
        ports.iter().filter(|(ip, _, _)| ip.is_empty() || ip == "0.0.0.0" || ip == "::").collect();
    result("5.14", pass_if(any_interface.is_empty()), ports_evidence(&any_interface));

    let network = host.network_mode.clone().unwrap_or_default();
    let (host_net, evidence) = namespace(host.network_mode.as_ref(), "net", "network");
    result("5.10", pass_if(!host_net), evidence);
    let memory = host.memory.unwrap_or(0);
    result(
        "5.11",
        pass_if(memory > 0),
        if memory > 0 { format!("memory limit {memory} bytes") } else { "no memory limit".into() },
    );
    let shares = host.cpu_shares.unwrap_or(0);
    let cpu_limited =
        shares > 0 && shares != 1024 || host.nano_cpus.unwrap_or(0) > 0 || host.cpu_quota.unwrap_or(0) > 0;
    result("5.12", pass_if(cpu_limited), format!("CPU shares {shares}, nano CPUs {}", host.nano_cpus.unwrap_or(0)));
    let read_only = host.readonly_rootfs.unwrap_or(false);
    result("5.13", pass_if(read_only), format!("read-only root filesystem: {read_only}"));

    let policy = host.restart_policy.clone().unwrap_or_default();
    let retries = policy.maximum_retry_count.unwrap_or(0);
    let (status, evidence) = match policy.name {
        Some(RestartPolicyNameEnum::ALWAYS) => (Status::Fail, "restart policy always".to_string()),
        Some(RestartPolicyNameEnum::UNLESS_STOPPED) => (Status::Fail, "restart policy unless-stopped".to_string()),
        Some(RestartPolicyNameEnum::ON_FAILURE) if retries > 5 || retries == 0 => {
            (Status::Fail, format!("restart policy on-failure with {retries} retries (0 = unlimited)"))
        }
        Some(RestartPolicyNameEnum::ON_FAILURE) => (Status::Pass, format!("restart policy on-failure:{retries}")),
        _ => (Status::Pass, "no restart policy".to_string()),
    };
    result("5.15", status, evidence);

    let (host_pid, evidence) = namespace(host.pid_mode.as_ref(), "pid", "PID");
    result("5.16", pass_if(!host_pid), evidence);
    let (host_ipc, evidence) = namespace(host.ipc_mode.as_ref(), "ipc", "IPC");
    result("5.17", pass_if(!host_ipc), evidence);
    let devices: Vec<String> = host
        .devices
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|d| {
            format!("{} -> {}", d.path_on_host.as_deref().unwrap_or("?"), d.path_in_container.as_deref().unwrap_or("?"))
        })
        .collect();
    result(
        "5.18",
        pass_if(devices.is_empty()),
        if devices.is_empty() { "no host devices".into() } else { format!("devices {devices:?}") },
    );
    let ulimits: Vec<String> = host
        .ulimits
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|u| format!("{}={}:{}", u.name.as_deref().unwrap_or("?"), u.soft.unwrap_or(0), u.hard.unwrap_or(0)))
        .collect();
    result(
        "5.19",
        if ulimits.is_empty() { Status::Pass } else { Status::Info },
        if ulimits.is_empty() { "daemon default ulimits".into() } else { format!("overridden ulimits {ulimits:?}") },
    );
    let shared: Vec<String> = mounts
        .iter()
        .filter(|m| matches!(m.propagation.as_deref(), Some("shared" | "rshared")))
        .map(describe_mount)
        .collect();
    result("5.20", pass_if(shared.is_empty()), mounts_evidence(&shared, "no mount with shared propagation"));
    let (host_uts, evidence) = namespace(host.uts_mode.as_ref(), "uts", "UTS");
    result("5.21", pass_if(!host_uts), evidence);
    let unconfined = security_opt.iter().any(|o| matches!(o.as_str(), "seccomp=unconfined" | "seccomp:unconfined"));
    result(
        "5.22",
        pass_if(!unconfined && !privileged),
        if unconfined || privileged {
            "seccomp is unconfined".into()
        } else {
            "default or custom seccomp profile".into()
        },
    );
    let parent = host.cgroup_parent.clone().unwrap_or_default();
    result(
        "5.25",
        if parent.is_empty() { Status::Pass } else { Status::Warn },
        if parent.is_empty() {
            "default cgroup parent".into()
        } else {
            format!("cgroup parent {parent:?}: confirm it is intended")
        },
    );
    let no_new_privileges = security_opt
        .iter()
        .any(|o| matches!(o.as_str(), "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true"));
    result("5.26", pass_if(no_new_privileges), format!("no-new-privileges: {no_new_privileges}"));
    // Podman reports an empty health status for containers without a check.
    let health = c
        .state
        .as_ref()
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.status.as_ref())
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty() && s != "none");
    let has_check = c
        .config
        .as_ref()
        .and_then(|cfg| cfg.healthcheck.as_ref())
        .and_then(|h| h.test.as_ref())
        .is_some_and(|t| t.first().is_some_and(|k| k != "NONE"));
    result(
        "5.27",
        pass_if(has_check || health.is_some()),
        match &health {
            Some(h) => format!("health {h}"),
            None if has_check => "health check configured".into(),
            None => "no health check".into(),
        },
    );
    let pids = host.pids_limit.unwrap_or(0);
    result("5.29", pass_if(pids > 0), if pids > 0 { format!("PIDs limit {pids}") } else { "no PIDs limit".into() });
    let on_bridge = facts.engine == EngineKind::Docker && matches!(network.as_str(), "default" | "bridge");
    result("5.30", pass_if(!on_bridge), format!("network mode {network:?}"));
    // Without user namespace remapping every container shares the host's user namespace;
    // CIS 5.31 is about `--userns host` opting out of a remapping daemon.
    let userns = host.userns_mode.clone().unwrap_or_default();
    result("5.31", pass_if(userns != "host"), format!("user namespace mode {userns:?}"));
    let engine_socket = facts.socket.to_string_lossy();
    let sockets: Vec<String> = mounts
        .iter()
        .filter(|m| {
            m.source.as_deref().is_some_and(|s| {
                s == engine_socket
                    || s.ends_with("/docker.sock")
                    || s.ends_with("/podman.sock")
                    || s.ends_with("/containerd.sock")
            })
        })
        .map(describe_mount)
        .collect();
    result("5.32", pass_if(sockets.is_empty()), mounts_evidence(&sockets, "no engine socket mounted"));
}

fn normalise_cap(cap: &str) -> String {
    let upper = cap.to_ascii_uppercase();
    upper.strip_prefix("CAP_").map_or(upper.clone(), String::from)
}

/// `/usr/sbin/sshd -D`, `sshd: user@pts/0`, or a script run by an interpreter (`/bin/sh
/// /usr/sbin/sshd`).
fn is_sshd(command: &str) -> bool {
    let base = |word: &str| word.rsplit('/').next().unwrap_or_default().trim_end_matches(':').to_string();
    let mut words = command.split_whitespace();
    let Some(program) = words.next().map(base) else { return false };
    if program == "sshd" {
        return true;
    }
    let interpreter =
        ["sh", "bash", "dash", "ash", "perl"].contains(&program.as_str()) || program.starts_with("python");
    interpreter && words.next().is_some_and(|script| base(script) == "sshd")
}

fn describe_mount(m: &MountPoint) -> String {
    let mode = if m.rw.unwrap_or(false) { "rw" } else { "ro" };
    format!("{} -> {} ({mode})", m.source.as_deref().unwrap_or("?"), m.destination.as_deref().unwrap_or("?"))
}

fn mounts_evidence(mounts: &[String], none: &str) -> String {
    if mounts.is_empty() { none.to_string() } else { mounts.join(", ") }
}

/// Published ports: (host ip, host port, container port/protocol).
fn published_ports(c: &ContainerInspectResponse) -> Vec<(String, u16, String)> {
    let Some(ports) = c.network_settings.as_ref().and_then(|n| n.ports.as_ref()) else { return Vec::new() };
    let mut out = Vec::new();
    for (container_port, bindings) in ports {
        for binding in bindings.iter().flatten() {
            let Some(host_port) = binding.host_port.as_deref().and_then(|p| p.parse().ok()) else { continue };
            out.push((binding.host_ip.clone().unwrap_or_default(), host_port, container_port.clone()));
        }
    }
    out.sort();
    out
}

fn ports_evidence(ports: &[&(String, u16, String)]) -> String {
    if ports.is_empty() {
        return "no such published port".into();
    }
    ports
        .iter()
        .map(|(ip, port, inner)| format!("{}:{port} -> {inner}", if ip.is_empty() { "0.0.0.0" } else { ip }))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshd_is_recognised_by_program_not_by_argument() {
        for cmd in ["/usr/sbin/sshd -D", "sshd: alice@pts/0", "/bin/sh /usr/sbin/sshd -D", "python3 /opt/sshd"] {
            assert!(is_sshd(cmd), "{cmd}");
        }
        for cmd in ["grep sshd", "/usr/bin/sshd-keygen-wrapper", "", "vim /etc/ssh/sshd_config"] {
            assert!(!is_sshd(cmd), "{cmd}");
        }
    }
}

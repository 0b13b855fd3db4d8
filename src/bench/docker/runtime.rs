//! Sections 4 (images, as far as a running image shows) and 5 (container runtime): one result
//! per running container.

use bollard::models::{ContainerInspectResponse, HostConfig, MountPoint, RestartPolicyNameEnum};

use super::{DockerFacts, DockerInput, container_name};
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

fn pass_if(ok: bool) -> Status {
    if ok { Status::Pass } else { Status::Fail }
}

/// A running container as the per-container checks read it.
pub struct ContainerView<'a> {
    facts: &'a DockerFacts,
    c: &'a ContainerInspectResponse,
    host: &'a HostConfig,
    mounts: &'a [MountPoint],
    security_opt: &'a [String],
    /// Namespaces /proc shows it shares with the host.
    shared: &'a [&'static str],
}

static DEFAULT_HOST: std::sync::LazyLock<HostConfig> = std::sync::LazyLock::new(HostConfig::default);

impl<'a> ContainerView<'a> {
    fn new(facts: &'a DockerFacts, c: &'a ContainerInspectResponse) -> Self {
        let host = c.host_config.as_ref().unwrap_or(&DEFAULT_HOST);
        Self {
            facts,
            c,
            host,
            mounts: c.mounts.as_deref().unwrap_or_default(),
            security_opt: host.security_opt.as_deref().unwrap_or_default(),
            shared: facts.shared_namespaces.get(c.id.as_deref().unwrap_or_default()).map_or(&[], Vec::as_slice),
        }
    }

    fn privileged(&self) -> bool {
        self.host.privileged.unwrap_or(false)
    }

    /// Whether the container uses the host's `ns` namespace, by the engine's word or by what
    /// /proc shows.
    fn host_namespace(&self, mode: Option<&String>, ns: &str, what: &str) -> (Status, String) {
        let mode = mode.cloned().unwrap_or_default();
        let seen = self.shared.contains(&ns);
        let evidence = match (mode == "host", seen) {
            (_, true) if mode != "host" => format!("{what} mode {mode:?}, but /proc shows the host's {ns} namespace"),
            _ => format!("{what} mode {mode:?}"),
        };
        (pass_if(!(mode == "host" || seen)), evidence)
    }
}

/// A check with one result per running container.
pub(super) fn per_container(input: &DockerInput, check: fn(&ContainerView) -> (Status, String)) -> Vec<CheckResult> {
    if input.facts.containers.is_empty() {
        return vec![CheckResult::new(Status::Skip, "containers", "no running containers")];
    }
    let judged = input.facts.containers.iter().map(|c| {
        let (status, evidence) = check(&ContainerView::new(input.facts, c));
        CheckResult::new(status, format!("container {}", container_name(c)), evidence)
    });
    judged.collect()
}

pub(super) fn swarm_mode(input: &DockerInput) -> Vec<CheckResult> {
    let swarm = input.facts.info.swarm.as_ref().and_then(|s| s.local_node_state.as_ref()).map(|s| s.to_string());
    let active = swarm.as_deref() == Some("active");
    let evidence = format!("swarm state {}", swarm.as_deref().unwrap_or("inactive"));
    vec![CheckResult::new(if active { Status::Warn } else { Status::Pass }, "daemon", evidence)]
}

/// 4.1: the image (or the run) names a user other than root.
pub(super) fn non_root_user(v: &ContainerView) -> (Status, String) {
    let user = v.c.config.as_ref().and_then(|c| c.user.clone()).unwrap_or_default();
    let is_root = matches!(user.split(':').next().unwrap_or(""), "" | "root" | "0");
    (pass_if(!is_root), if user.is_empty() { "runs as root (no user set)".into() } else { format!("user {user}") })
}

/// 4.6: a HEALTHCHECK in the image.
pub(super) fn image_healthcheck(v: &ContainerView) -> (Status, String) {
    let image_health =
        v.c.image
            .as_ref()
            .and_then(|id| v.facts.images.get(id))
            .and_then(|i| i.config.as_ref())
            .and_then(|cfg| cfg.healthcheck.as_ref())
            .and_then(|h| h.test.as_ref())
            .is_some_and(|t| t.first().is_some_and(|k| k != "NONE"));
    (pass_if(image_health), if image_health { "image has a HEALTHCHECK" } else { "image has no HEALTHCHECK" }.into())
}

/// 5.2: only where the kernel runs AppArmor.
pub(super) fn apparmor_profile(v: &ContainerView) -> (Status, String) {
    if !v.facts.host.apparmor {
        return (Status::Skip, "AppArmor is not enabled on this host".into());
    }
    let apparmor = v.c.app_armor_profile.clone().unwrap_or_default();
    let ok = !apparmor.is_empty() && apparmor != "unconfined";
    (pass_if(ok), format!("AppArmor profile {:?}", apparmor))
}

/// 5.3: only where the kernel runs SELinux.
pub(super) fn selinux_options(v: &ContainerView) -> (Status, String) {
    if !v.facts.host.selinux {
        return (Status::Skip, "SELinux is not enabled on this host".into());
    }
    let labelled = v.security_opt.iter().any(|o| o.starts_with("label=") || o.starts_with("label:"));
    (pass_if(labelled), format!("security options {:?}", v.security_opt))
}

/// 5.4: added capabilities beyond the engine's default set.
pub(super) fn added_capabilities(v: &ContainerView) -> (Status, String) {
    let added: Vec<String> = v.host.cap_add.clone().unwrap_or_default().iter().map(|c| normalise_cap(c)).collect();
    let dangerous: Vec<&String> = added.iter().filter(|c| DANGEROUS_CAPS.contains(&c.as_str())).collect();
    let privileged = v.privileged();
    let status = if !dangerous.is_empty() || privileged {
        Status::Fail
    } else if !added.is_empty() {
        Status::Warn
    } else {
        Status::Pass
    };
    let dropped = v.host.cap_drop.clone().unwrap_or_default();
    let evidence = if privileged {
        "privileged: every capability".to_string()
    } else {
        format!("added {added:?}, dropped {dropped:?}")
    };
    (status, evidence)
}

pub(super) fn privileged(v: &ContainerView) -> (Status, String) {
    (pass_if(!v.privileged()), format!("privileged: {}", v.privileged()))
}

pub(super) fn sensitive_mounts(v: &ContainerView) -> (Status, String) {
    let sensitive: Vec<String> = v
        .mounts
        .iter()
        .filter_map(|m| {
            let source = m.source.as_deref()?;
            let hit = SENSITIVE_DIRS.iter().any(|d| {
                source == *d || (*d != "/" && source.strip_prefix(d).is_some_and(|rest| rest.starts_with('/')))
            });
            hit.then(|| describe_mount(m))
        })
        .collect();
    (pass_if(sensitive.is_empty()), mounts_evidence(&sensitive, "no sensitive host directory mounted"))
}

pub(super) fn no_sshd(v: &ContainerView) -> (Status, String) {
    match v.facts.processes.get(v.c.id.as_deref().unwrap_or_default()) {
        Some(Ok(commands)) => {
            let sshd: Vec<&String> = commands.iter().filter(|cmd| is_sshd(cmd)).collect();
            let evidence = if sshd.is_empty() {
                format!("{} processes, no sshd", commands.len())
            } else {
                format!("running {sshd:?}")
            };
            (pass_if(sshd.is_empty()), evidence)
        }
        Some(Err(why)) => (Status::Warn, format!("processes could not be listed: {why}")),
        None => (Status::Warn, "processes were not listed".into()),
    }
}

pub(super) fn privileged_ports(v: &ContainerView) -> (Status, String) {
    let ports = published_ports(v.c);
    let low: Vec<&(String, u16, String)> = ports.iter().filter(|(_, host_port, _)| *host_port < 1024).collect();
    (pass_if(low.is_empty()), ports_evidence(&low))
}

pub(super) fn needed_ports(v: &ContainerView) -> (Status, String) {
    let ports = published_ports(v.c);
    let all: Vec<&(String, u16, String)> = ports.iter().collect();
    (if ports.is_empty() { Status::Pass } else { Status::Warn }, ports_evidence(&all))
}

pub(super) fn ports_on_any_interface(v: &ContainerView) -> (Status, String) {
    let ports = published_ports(v.c);
    let any_interface: Vec<&(String, u16, String)> =
        ports.iter().filter(|(ip, _, _)| ip.is_empty() || ip == "0.0.0.0" || ip == "::").collect();
    (pass_if(any_interface.is_empty()), ports_evidence(&any_interface))
}

pub(super) fn host_network(v: &ContainerView) -> (Status, String) {
    v.host_namespace(v.host.network_mode.as_ref(), "net", "network")
}

pub(super) fn memory_limit(v: &ContainerView) -> (Status, String) {
    let memory = v.host.memory.unwrap_or(0);
    (pass_if(memory > 0), if memory > 0 { format!("memory limit {memory} bytes") } else { "no memory limit".into() })
}

pub(super) fn cpu_priority(v: &ContainerView) -> (Status, String) {
    let host = v.host;
    let shares = host.cpu_shares.unwrap_or(0);
    let cpu_limited =
        shares > 0 && shares != 1024 || host.nano_cpus.unwrap_or(0) > 0 || host.cpu_quota.unwrap_or(0) > 0;
    (pass_if(cpu_limited), format!("CPU shares {shares}, nano CPUs {}", host.nano_cpus.unwrap_or(0)))
}

pub(super) fn read_only_rootfs(v: &ContainerView) -> (Status, String) {
    let read_only = v.host.readonly_rootfs.unwrap_or(false);
    (pass_if(read_only), format!("read-only root filesystem: {read_only}"))
}

pub(super) fn restart_policy(v: &ContainerView) -> (Status, String) {
    let policy = v.host.restart_policy.clone().unwrap_or_default();
    let retries = policy.maximum_retry_count.unwrap_or(0);
    match policy.name {
        Some(RestartPolicyNameEnum::ALWAYS) => (Status::Fail, "restart policy always".to_string()),
        Some(RestartPolicyNameEnum::UNLESS_STOPPED) => (Status::Fail, "restart policy unless-stopped".to_string()),
        Some(RestartPolicyNameEnum::ON_FAILURE) if retries > 5 || retries == 0 => {
            (Status::Fail, format!("restart policy on-failure with {retries} retries (0 = unlimited)"))
        }
        Some(RestartPolicyNameEnum::ON_FAILURE) => (Status::Pass, format!("restart policy on-failure:{retries}")),
        _ => (Status::Pass, "no restart policy".to_string()),
    }
}

pub(super) fn host_pid(v: &ContainerView) -> (Status, String) {
    v.host_namespace(v.host.pid_mode.as_ref(), "pid", "PID")
}

pub(super) fn host_ipc(v: &ContainerView) -> (Status, String) {
    v.host_namespace(v.host.ipc_mode.as_ref(), "ipc", "IPC")
}

pub(super) fn host_devices(v: &ContainerView) -> (Status, String) {
    let devices: Vec<String> = v
        .host
        .devices
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|d| {
            format!("{} -> {}", d.path_on_host.as_deref().unwrap_or("?"), d.path_in_container.as_deref().unwrap_or("?"))
        })
        .collect();
    (
        pass_if(devices.is_empty()),
        if devices.is_empty() { "no host devices".into() } else { format!("devices {devices:?}") },
    )
}

/// dockerd copies its `default-ulimits` into every container's ulimits: those are the daemon's,
/// not the container's overrides. (Podman's `default_ulimits` in containers.conf are copied the
/// same way and cannot be told apart from here.)
pub(super) fn ulimit_overrides(v: &ContainerView) -> (Status, String) {
    let defaults = v.facts.daemon.as_ref().map(super::daemon::default_ulimit_list).unwrap_or_default();
    let (from_daemon, overridden): (Vec<String>, Vec<String>) = v
        .host
        .ulimits
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|u| format!("{}={}:{}", u.name.as_deref().unwrap_or("?"), u.soft.unwrap_or(0), u.hard.unwrap_or(0)))
        .partition(|u| defaults.contains(u));
    let daemon = match from_daemon.is_empty() {
        true => String::new(),
        false => format!("; the daemon's default-ulimits {}", from_daemon.join(", ")),
    };
    match overridden.is_empty() {
        true => (Status::Pass, format!("no ulimit set for this container{daemon}")),
        false => (Status::Info, format!("ulimits set for this container {}{daemon}", overridden.join(", "))),
    }
}

pub(super) fn shared_propagation(v: &ContainerView) -> (Status, String) {
    let shared: Vec<String> = v
        .mounts
        .iter()
        .filter(|m| matches!(m.propagation.as_deref(), Some("shared" | "rshared")))
        .map(|m| format!("{}, propagation {}", describe_mount(m), m.propagation.as_deref().unwrap_or_default()))
        .collect();
    (pass_if(shared.is_empty()), mounts_evidence(&shared, "no mount with shared propagation"))
}

pub(super) fn host_uts(v: &ContainerView) -> (Status, String) {
    v.host_namespace(v.host.uts_mode.as_ref(), "uts", "UTS")
}

pub(super) fn seccomp_confined(v: &ContainerView) -> (Status, String) {
    let unconfined = v.security_opt.iter().any(|o| matches!(o.as_str(), "seccomp=unconfined" | "seccomp:unconfined"));
    match unconfined || v.privileged() {
        true => (Status::Fail, "seccomp is unconfined".into()),
        false => (Status::Pass, "default or custom seccomp profile".into()),
    }
}

pub(super) fn cgroup_parent(v: &ContainerView) -> (Status, String) {
    let parent = v.host.cgroup_parent.clone().unwrap_or_default();
    match parent.is_empty() {
        true => (Status::Pass, "default cgroup parent".into()),
        false => (Status::Warn, format!("cgroup parent {parent:?}: confirm it is intended")),
    }
}

pub(super) fn no_new_privileges(v: &ContainerView) -> (Status, String) {
    let no_new_privileges = v
        .security_opt
        .iter()
        .any(|o| matches!(o.as_str(), "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true"));
    (pass_if(no_new_privileges), format!("no-new-privileges: {no_new_privileges}"))
}

pub(super) fn health_status(v: &ContainerView) -> (Status, String) {
    // Podman reports an empty health status for containers without a check.
    let health =
        v.c.state
            .as_ref()
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status.as_ref())
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty() && s != "none");
    let has_check =
        v.c.config
            .as_ref()
            .and_then(|cfg| cfg.healthcheck.as_ref())
            .and_then(|h| h.test.as_ref())
            .is_some_and(|t| t.first().is_some_and(|k| k != "NONE"));
    let evidence = match &health {
        Some(h) => format!("health {h}"),
        None if has_check => "health check configured".into(),
        None => "no health check".into(),
    };
    (pass_if(has_check || health.is_some()), evidence)
}

pub(super) fn pids_limit(v: &ContainerView) -> (Status, String) {
    let pids = v.host.pids_limit.unwrap_or(0);
    (pass_if(pids > 0), if pids > 0 { format!("PIDs limit {pids}") } else { "no PIDs limit".into() })
}

/// The network the container really has: `default` is the default bridge only on a daemon that
/// has one (`bridge: none` leaves such a container with loopback alone).
pub(super) fn default_bridge(v: &ContainerView) -> (Status, String) {
    let network = v.host.network_mode.clone().unwrap_or_default();
    if v.facts.engine != EngineKind::Docker || !matches!(network.as_str(), "default" | "bridge") {
        return (Status::Pass, format!("network mode {network:?}"));
    }
    let attached = v.c.network_settings.as_ref().and_then(|n| n.networks.as_ref());
    let no_bridge = v.facts.daemon.as_ref().and_then(|d| d.string_option("bridge")).is_some_and(|b| b == "none");
    match attached {
        Some(networks) if networks.contains_key("bridge") => {
            (Status::Fail, format!("network mode {network:?}: on the default bridge"))
        }
        Some(networks) => {
            let names: Vec<&str> = networks.keys().map(String::as_str).collect();
            let on = if names.is_empty() { "loopback only".to_string() } else { format!("networks {names:?}") };
            (Status::Pass, format!("network mode {network:?}, not on the default bridge: {on}"))
        }
        None if no_bridge => {
            (Status::Pass, format!("network mode {network:?}, but the daemon has no default bridge (bridge: none)"))
        }
        None => (Status::Fail, format!("network mode {network:?}: on the default bridge")),
    }
}

/// Without user namespace remapping every container shares the host's user namespace; CIS 5.31
/// is about `--userns host` opting out of a remapping daemon.
pub(super) fn host_userns(v: &ContainerView) -> (Status, String) {
    let userns = v.host.userns_mode.clone().unwrap_or_default();
    (pass_if(userns != "host"), format!("user namespace mode {userns:?}"))
}

pub(super) fn engine_socket_mounted(v: &ContainerView) -> (Status, String) {
    let engine_socket = v.facts.socket.to_string_lossy();
    let sockets: Vec<String> = v
        .mounts
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
    (pass_if(sockets.is_empty()), mounts_evidence(&sockets, "no engine socket mounted"))
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

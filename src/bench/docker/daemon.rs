//! Section 2: the daemon's configuration, from its command line and daemon.json where the
//! dockerd process is found, and from what the API says (`/info`) otherwise.

use bollard::models::SystemInfo;

use super::{DaemonSettings, DockerInput};
use crate::bench::{CheckResult, Status};
use crate::engine::EngineKind;

const SUBJECT: &str = "daemon";

fn pass_if(ok: bool) -> Status {
    if ok { Status::Pass } else { Status::Fail }
}

/// A check judged from the API's `/info`; Podman has no daemon to judge.
pub(super) fn from_info(input: &DockerInput, check: fn(&SystemInfo) -> (Status, String)) -> Vec<CheckResult> {
    if input.facts.engine == EngineKind::Podman {
        return vec![podman_has_no_daemon()];
    }
    let (status, evidence) = check(&input.facts.info);
    vec![CheckResult::new(status, SUBJECT, evidence)]
}

/// A check that needs the daemon's own settings (command line and daemon.json); the evidence
/// names where they were read.
pub(super) fn from_settings(input: &DockerInput, check: fn(&DaemonSettings) -> (Status, String)) -> Vec<CheckResult> {
    if input.facts.engine == EngineKind::Podman {
        return vec![podman_has_no_daemon()];
    }
    let warn = |evidence: String| vec![CheckResult::new(Status::Warn, SUBJECT, evidence)];
    let Some(daemon) = &input.facts.daemon else {
        return warn(
            "no dockerd process serving this socket on this host (remote or containerised daemon): its options are unknown".into(),
        );
    };
    if let Some(error) = &daemon.config_error {
        return warn(format!("daemon.json could not be read: {error}"));
    }
    let source = format!(
        "(dockerd {}, {})",
        daemon.pid.map_or_else(|| "?".into(), |p| format!("pid {p}")),
        daemon.config_path.display()
    );
    let (status, evidence) = check(daemon);
    vec![CheckResult::new(status, SUBJECT, format!("{evidence} {source}"))]
}

fn podman_has_no_daemon() -> CheckResult {
    CheckResult::new(Status::Skip, SUBJECT, "Podman runs without a daemon; its settings are in containers.conf")
}

fn security_options(info: &SystemInfo) -> Vec<String> {
    info.security_options.clone().unwrap_or_default()
}

pub(super) fn rootless(info: &SystemInfo) -> (Status, String) {
    let rootless = security_options(info).iter().any(|o| o.contains("name=rootless"));
    (if rootless { Status::Pass } else { Status::Warn }, format!("rootless: {rootless}"))
}

pub(super) fn storage_driver(info: &SystemInfo) -> (Status, String) {
    let driver = info.driver.clone().unwrap_or_default();
    (pass_if(driver != "aufs"), format!("storage driver {driver}"))
}

pub(super) fn userns_remap(info: &SystemInfo) -> (Status, String) {
    let userns = security_options(info).iter().any(|o| o.contains("name=userns"));
    (pass_if(userns), format!("user namespace remapping: {userns}"))
}

pub(super) fn authorization_plugin(info: &SystemInfo) -> (Status, String) {
    let authz = info.plugins.as_ref().and_then(|p| p.authorization.clone()).unwrap_or_default();
    let evidence =
        if authz.is_empty() { "no authorization plugin".into() } else { format!("authorization plugins {authz:?}") };
    (pass_if(!authz.is_empty()), evidence)
}

pub(super) fn remote_logging(info: &SystemInfo) -> (Status, String) {
    let logging = info.logging_driver.clone().unwrap_or_default();
    let local_only = matches!(logging.as_str(), "json-file" | "local" | "none" | "");
    (pass_if(!local_only), format!("log driver {logging:?}"))
}

pub(super) fn live_restore(info: &SystemInfo) -> (Status, String) {
    let swarm_active =
        info.swarm.as_ref().and_then(|s| s.local_node_state.as_ref()).is_some_and(|s| s.to_string() == "active");
    let live_restore = info.live_restore_enabled.unwrap_or(false);
    let evidence = if swarm_active && !live_restore {
        "swarm mode (live restore does not apply)".into()
    } else {
        format!("live restore: {live_restore}")
    };
    (pass_if(live_restore || swarm_active), evidence)
}

pub(super) fn seccomp_profile(info: &SystemInfo) -> (Status, String) {
    let seccomp = security_options(info).into_iter().find(|o| o.contains("name=seccomp")).unwrap_or_default();
    (Status::Info, if seccomp.is_empty() { "no seccomp".into() } else { seccomp })
}

pub(super) fn experimental(info: &SystemInfo) -> (Status, String) {
    let experimental = info.experimental_build.unwrap_or(false);
    (pass_if(!experimental), format!("experimental: {experimental}"))
}

pub(super) fn inter_container_traffic(daemon: &DaemonSettings) -> (Status, String) {
    let icc = daemon.bool_option("icc").unwrap_or(true);
    if daemon.string_option("bridge").unwrap_or_default() == "none" {
        return (Status::Pass, "no default bridge (bridge: none)".into());
    }
    (pass_if(!icc), format!("icc: {icc}"))
}

pub(super) fn log_level(daemon: &DaemonSettings) -> (Status, String) {
    let level = daemon.string_option("log-level").unwrap_or_else(|| "info".into());
    (pass_if(level == "info"), format!("log level {level}"))
}

pub(super) fn iptables(daemon: &DaemonSettings) -> (Status, String) {
    let iptables = daemon.bool_option("iptables").unwrap_or(true);
    (pass_if(iptables), format!("iptables: {iptables}"))
}

pub(super) fn insecure_registries(daemon: &DaemonSettings) -> (Status, String) {
    let insecure = daemon.list_option("insecure-registries");
    let evidence = if insecure.is_empty() { "none".into() } else { format!("insecure registries {insecure:?}") };
    (pass_if(insecure.is_empty()), evidence)
}

pub(super) fn tls_on_tcp(daemon: &DaemonSettings) -> (Status, String) {
    let tcp: Vec<String> = daemon.hosts().into_iter().filter(|h| h.starts_with("tcp://")).collect();
    let tlsverify = daemon.bool_option("tlsverify").unwrap_or(false);
    if tcp.is_empty() {
        return (Status::Pass, format!("no TCP listener ({})", daemon.hosts().join(", ")));
    }
    (pass_if(tlsverify), format!("listens on {} with tlsverify: {tlsverify}", tcp.join(", ")))
}

pub(super) fn default_ulimits(daemon: &DaemonSettings) -> (Status, String) {
    match default_ulimit_list(daemon) {
        limits if !limits.is_empty() => (Status::Info, format!("default ulimits {}", limits.join(", "))),
        _ => (Status::Warn, "no default ulimits".into()),
    }
}

pub(super) fn cgroup_parent(daemon: &DaemonSettings) -> (Status, String) {
    let parent = daemon.string_option("cgroup-parent").unwrap_or_default();
    match parent.is_empty() {
        true => (Status::Pass, "default cgroup parent".into()),
        false => (Status::Warn, format!("cgroup parent {parent:?}: confirm")),
    }
}

pub(super) fn base_device_size(daemon: &DaemonSettings) -> (Status, String) {
    let basesize: Vec<String> =
        daemon.list_option("storage-opts").into_iter().filter(|o| o.starts_with("dm.basesize")).collect();
    (pass_if(basesize.is_empty()), if basesize.is_empty() { "not changed".into() } else { format!("{basesize:?}") })
}

pub(super) fn no_new_privileges(daemon: &DaemonSettings) -> (Status, String) {
    let nnp = daemon.bool_option("no-new-privileges").unwrap_or(false);
    (pass_if(nnp), format!("no-new-privileges: {nnp}"))
}

pub(super) fn userland_proxy(daemon: &DaemonSettings) -> (Status, String) {
    let proxy = daemon.bool_option("userland-proxy").unwrap_or(true);
    (pass_if(!proxy), format!("userland-proxy: {proxy}"))
}

/// The daemon's default ulimits as `name=soft:hard`, from `--default-ulimit nofile=1024:2048`
/// flags or daemon.json's `"default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}}`.
pub(super) fn default_ulimit_list(daemon: &DaemonSettings) -> Vec<String> {
    match daemon.option("default-ulimits") {
        Some(serde_json::Value::Array(flags)) => flags
            .iter()
            .filter_map(|f| f.as_str())
            .filter_map(|f| {
                let (name, limits) = f.split_once('=')?;
                let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
                Some(format!("{name}={}:{}", soft.parse::<i64>().ok()?, hard.parse::<i64>().ok()?))
            })
            .collect(),
        Some(serde_json::Value::Object(limits)) => limits
            .iter()
            .map(|(key, limit)| {
                let name = limit.get("Name").and_then(|n| n.as_str()).unwrap_or(key);
                let number = |field: &str| limit.get(field).and_then(serde_json::Value::as_i64).unwrap_or(0);
                format!("{name}={}:{}", number("Soft"), number("Hard"))
            })
            .collect(),
        _ => Vec::new(),
    }
}

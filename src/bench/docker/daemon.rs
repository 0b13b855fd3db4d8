//! Section 2: the daemon's configuration, from its command line and daemon.json where the
//! dockerd process is found, and from what the API says (`/info`) otherwise.

use super::{DaemonSettings, DockerFacts};
use crate::bench::files::HostFiles;
use crate::bench::{CheckResult, Status};
use crate::engine::EngineKind;

type Emit<'a> = dyn FnMut(&'static str, CheckResult) + 'a;

/// Section 2 checks that need the daemon's own settings, not only `/info`.
const FROM_SETTINGS: &[&str] = &["2.2", "2.3", "2.4", "2.5", "2.7", "2.8", "2.10", "2.11", "2.14", "2.16"];

pub(super) fn judge(facts: &DockerFacts, _files: &HostFiles, emit: &mut Emit) {
    let subject = "daemon";
    let mut result = |id: &'static str, status: Status, evidence: String| {
        emit(id, CheckResult::new(status, subject, evidence));
    };
    let pass_if = |ok: bool| if ok { Status::Pass } else { Status::Fail };
    let info = &facts.info;
    let security: Vec<String> = info.security_options.clone().unwrap_or_default();

    if facts.engine == EngineKind::Podman {
        for id in FROM_SETTINGS.iter().chain(&["2.1", "2.6", "2.9", "2.12", "2.13", "2.15", "2.17", "2.18"]) {
            result(id, Status::Skip, "Podman runs without a daemon; its settings are in containers.conf".into());
        }
        return;
    }

    let rootless = security.iter().any(|o| o.contains("name=rootless"));
    result("2.1", if rootless { Status::Pass } else { Status::Warn }, format!("rootless: {rootless}"));
    let driver = info.driver.clone().unwrap_or_default();
    result("2.6", pass_if(driver != "aufs"), format!("storage driver {driver}"));
    let userns = security.iter().any(|o| o.contains("name=userns"));
    result("2.9", pass_if(userns), format!("user namespace remapping: {userns}"));
    let authz = info.plugins.as_ref().and_then(|p| p.authorization.clone()).unwrap_or_default();
    result(
        "2.12",
        pass_if(!authz.is_empty()),
        if authz.is_empty() { "no authorization plugin".into() } else { format!("authorization plugins {authz:?}") },
    );
    let logging = info.logging_driver.clone().unwrap_or_default();
    let local_only = matches!(logging.as_str(), "json-file" | "local" | "none" | "");
    result("2.13", pass_if(!local_only), format!("log driver {logging:?}"));
    let swarm_active =
        info.swarm.as_ref().and_then(|s| s.local_node_state.as_ref()).is_some_and(|s| s.to_string() == "active");
    let live_restore = info.live_restore_enabled.unwrap_or(false);
    result(
        "2.15",
        pass_if(live_restore || swarm_active),
        if swarm_active && !live_restore {
            "swarm mode (live restore does not apply)".into()
        } else {
            format!("live restore: {live_restore}")
        },
    );
    let seccomp = security.iter().find(|o| o.contains("name=seccomp")).cloned().unwrap_or_default();
    result("2.17", Status::Info, if seccomp.is_empty() { "no seccomp".into() } else { seccomp });
    let experimental = info.experimental_build.unwrap_or(false);
    result("2.18", pass_if(!experimental), format!("experimental: {experimental}"));

    let Some(daemon) = &facts.daemon else {
        for id in FROM_SETTINGS {
            result(
                id,
                Status::Warn,
                "no dockerd process serving this socket on this host (remote or containerised daemon): its options are unknown".into(),
            );
        }
        return;
    };
    if let Some(error) = &daemon.config_error {
        for id in FROM_SETTINGS {
            result(id, Status::Warn, format!("daemon.json could not be read: {error}"));
        }
        return;
    }
    judge_settings(daemon, &mut result);
}

fn judge_settings(daemon: &DaemonSettings, result: &mut dyn FnMut(&'static str, Status, String)) {
    let pass_if = |ok: bool| if ok { Status::Pass } else { Status::Fail };
    let source = format!(
        "(dockerd {}, {})",
        daemon.pid.map_or_else(|| "?".into(), |p| format!("pid {p}")),
        daemon.config_path.display()
    );

    let icc = daemon.bool_option("icc").unwrap_or(true);
    let bridge = daemon.string_option("bridge").unwrap_or_default();
    if bridge == "none" {
        result("2.2", Status::Pass, format!("no default bridge (bridge: none) {source}"));
    } else {
        result("2.2", pass_if(!icc), format!("icc: {icc} {source}"));
    }
    let level = daemon.string_option("log-level").unwrap_or_else(|| "info".into());
    result("2.3", pass_if(level == "info"), format!("log level {level} {source}"));
    let iptables = daemon.bool_option("iptables").unwrap_or(true);
    result("2.4", pass_if(iptables), format!("iptables: {iptables} {source}"));
    let insecure = daemon.list_option("insecure-registries");
    result(
        "2.5",
        pass_if(insecure.is_empty()),
        if insecure.is_empty() {
            format!("none {source}")
        } else {
            format!("insecure registries {insecure:?} {source}")
        },
    );
    let tcp: Vec<String> = daemon.hosts().into_iter().filter(|h| h.starts_with("tcp://")).collect();
    let tlsverify = daemon.bool_option("tlsverify").unwrap_or(false);
    if tcp.is_empty() {
        result("2.7", Status::Pass, format!("no TCP listener ({}) {source}", daemon.hosts().join(", ")));
    } else {
        result(
            "2.7",
            pass_if(tlsverify),
            format!("listens on {} with tlsverify: {tlsverify} {source}", tcp.join(", ")),
        );
    }
    let ulimits = daemon.option("default-ulimits");
    result(
        "2.8",
        if ulimits.is_some() { Status::Info } else { Status::Warn },
        match ulimits {
            Some(u) => format!("default ulimits {u} {source}"),
            None => format!("no default ulimits {source}"),
        },
    );
    let parent = daemon.string_option("cgroup-parent").unwrap_or_default();
    result(
        "2.10",
        if parent.is_empty() { Status::Pass } else { Status::Warn },
        if parent.is_empty() {
            format!("default cgroup parent {source}")
        } else {
            format!("cgroup parent {parent:?}: confirm {source}")
        },
    );
    let basesize: Vec<String> =
        daemon.list_option("storage-opts").into_iter().filter(|o| o.starts_with("dm.basesize")).collect();
    result(
        "2.11",
        pass_if(basesize.is_empty()),
        if basesize.is_empty() { format!("not changed {source}") } else { format!("{basesize:?} {source}") },
    );
    let nnp = daemon.bool_option("no-new-privileges").unwrap_or(false);
    result("2.14", pass_if(nnp), format!("no-new-privileges: {nnp} {source}"));
    let proxy = daemon.bool_option("userland-proxy").unwrap_or(true);
    result("2.16", pass_if(!proxy), format!("userland-proxy: {proxy} {source}"));
}

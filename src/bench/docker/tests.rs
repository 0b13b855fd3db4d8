use super::*;
use crate::bench::{BenchReport, Status};

#[test]
fn command_line_wins_over_daemon_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/docker")).unwrap();
    std::fs::write(
        dir.path().join("etc/docker/daemon.json"),
        r#"{"icc": true, "log-level": "debug", "insecure-registries": ["10.0.0.1:5000"], "hosts": ["unix:///run/a.sock"]}"#,
    )
    .unwrap();
    let files = HostFiles::new(dir.path());
    let args: Vec<String> =
        ["--icc=false", "--log-level", "warn", "-H", "tcp://0.0.0.0:2375", "--live-restore"].map(String::from).to_vec();
    let settings = DaemonSettings::from_args(Some(7), args, &files);
    assert_eq!(settings.config_error, None);
    assert_eq!(settings.bool_option("icc"), Some(false));
    assert_eq!(settings.string_option("log-level").as_deref(), Some("warn"));
    assert_eq!(settings.bool_option("live-restore"), Some(true));
    assert_eq!(settings.list_option("insecure-registries"), vec!["10.0.0.1:5000"]);
    assert_eq!(settings.hosts(), vec!["tcp://0.0.0.0:2375"]);
    assert_eq!(settings.bool_option("userland-proxy"), None);
}

#[test]
fn a_broken_daemon_json_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("daemon.json");
    std::fs::write(&config, "{\"icc\": false,,}").unwrap();
    let files = HostFiles::new("/");
    let settings = DaemonSettings::from_args(None, vec![format!("--config-file={}", config.display())], &files);
    let error = settings.config_error.unwrap();
    assert!(error.contains(&config.display().to_string()) && error.contains("line 1"), "{error}");
    assert!(settings.config.is_empty());
}

/// Facts for one running container, from `docker inspect`-shaped JSON.
fn facts_with(container: serde_json::Value) -> DockerFacts {
    let inspected: ContainerInspectResponse = serde_json::from_value(container).unwrap();
    DockerFacts {
        engine: EngineKind::Docker,
        version: "20.10.24".into(),
        socket: PathBuf::from("/run/docker.sock"),
        info: SystemInfo::default(),
        daemon: None,
        containers: vec![inspected],
        images: BTreeMap::new(),
        processes: BTreeMap::new(),
        shared_namespaces: BTreeMap::new(),
        host: HostSecurity { apparmor: true, selinux: false },
    }
}

fn result_of<'a>(report: &'a BenchReport, id: &str) -> &'a CheckResult {
    let check = report.check(id).unwrap_or_else(|| panic!("no check {id}"));
    check.results.iter().find(|r| r.subject.starts_with("container")).unwrap_or_else(|| panic!("{id}: {check:?}"))
}

#[test]
fn ports_restart_policy_devices_and_apparmor_from_inspect() {
    let facts = facts_with(serde_json::json!({
        "Id": "4f1c0a9e2b7d",
        "Name": "/web",
        "Image": "sha256:aaaa",
        "AppArmorProfile": "unconfined",
        "State": { "Status": "running", "Running": true, "Pid": 0 },
        "Config": { "User": "www-data", "Image": "nginx:1.25" },
        "HostConfig": {
            "RestartPolicy": { "Name": "always", "MaximumRetryCount": 0 },
            "Devices": [{ "PathOnHost": "/dev/kvm", "PathInContainer": "/dev/kvm", "CgroupPermissions": "rwm" }],
            "Memory": 268435456,
            "PidsLimit": 100,
            "NetworkMode": "bridge",
            "SecurityOpt": ["no-new-privileges:true"]
        },
        "Mounts": [{ "Type": "bind", "Source": "/var/lib/app", "Destination": "/data", "RW": true, "Propagation": "rshared" }],
        "NetworkSettings": { "Ports": {
            "80/tcp": [{ "HostIp": "0.0.0.0", "HostPort": "80" }],
            "9090/tcp": [{ "HostIp": "127.0.0.1", "HostPort": "9090" }],
            "53/udp": null
        }}
    }));
    let files = HostFiles::new(tempfile::tempdir().unwrap().path());
    let report = judge(&facts, &files);
    let status = |id: &str| result_of(&report, id).status;
    assert_eq!(status("4.1"), Status::Pass, "user www-data");
    assert_eq!(status("5.2"), Status::Fail, "AppArmor on, profile unconfined");
    assert_eq!(status("5.3"), Status::Skip);
    assert_eq!(status("5.8"), Status::Fail);
    assert_eq!(result_of(&report, "5.8").evidence, "0.0.0.0:80 -> 80/tcp");
    assert_eq!(status("5.14"), Status::Fail, "port 80 on every interface");
    assert_eq!(status("5.15"), Status::Fail);
    assert_eq!(status("5.18"), Status::Warn, "a Manual recommendation: a device to review");
    assert_eq!(result_of(&report, "5.18").evidence, r#"devices ["/dev/kvm -> /dev/kvm"]"#);
    assert_eq!(status("5.20"), Status::Fail, "rshared propagation");
    assert_eq!(result_of(&report, "5.20").evidence, "/var/lib/app -> /data (rw), propagation rshared");
    assert_eq!(status("5.26"), Status::Pass);
    assert_eq!(status("5.30"), Status::Warn, "default bridge (Manual)");
    assert_eq!(status("5.6"), Status::Pass, "/var/lib/app is not a sensitive directory");
    assert_eq!(status("5.7"), Status::Warn, "processes were not listed");
    // Every result belongs to a defined check, and every check has a result.
    assert!(
        report.checks.iter().all(|c| !c.results.is_empty()),
        "{:?}",
        report.checks.iter().find(|c| c.results.is_empty())
    );
    assert_eq!(report.checks.len(), 106);
    let manual_failures: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.meta.assessment == crate::bench::Assessment::Manual)
        .filter(|c| c.results.iter().any(|r| r.status == Status::Fail))
        .map(|c| c.meta.id.as_str())
        .collect();
    assert!(manual_failures.is_empty(), "Manual recommendations warn, never fail: {manual_failures:?}");
}

/// 5.30 judges the network the container really has; 5.19 tells the daemon's default ulimits
/// (which dockerd copies into every container) from the container's own.
#[test]
fn default_bridge_and_ulimits_as_the_daemon_set_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/docker")).unwrap();
    std::fs::write(
        dir.path().join("etc/docker/daemon.json"),
        r#"{"bridge": "none", "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}}}"#,
    )
    .unwrap();
    let files = HostFiles::new(dir.path());
    let container = |networks: serde_json::Value, ulimits: serde_json::Value| {
        let mut facts = facts_with(serde_json::json!({
            "Id": "4f1c0a9e2b7d",
            "Name": "/web",
            "Image": "sha256:aaaa",
            "State": { "Status": "running", "Running": true, "Pid": 0 },
            "Config": { "User": "www-data", "Image": "nginx:1.25" },
            "HostConfig": { "NetworkMode": "default", "Ulimits": ulimits },
            "NetworkSettings": { "Networks": networks }
        }));
        facts.daemon = Some(DaemonSettings::from_args(Some(7), Vec::new(), &files));
        judge(&facts, &files)
    };
    let daemon_only = serde_json::json!([{ "Name": "nofile", "Soft": 1024, "Hard": 2048 }]);
    let report = container(serde_json::json!({}), daemon_only);
    let bridge = result_of(&report, "5.30");
    assert_eq!(bridge.status, Status::Pass, "{bridge:?}");
    assert!(bridge.evidence.contains("loopback only"), "{}", bridge.evidence);
    let ulimits = result_of(&report, "5.19");
    assert_eq!(ulimits.status, Status::Pass, "{ulimits:?}");
    assert_eq!(ulimits.evidence, "no ulimit set for this container; the daemon's default-ulimits nofile=1024:2048");

    let own = serde_json::json!([
        { "Name": "nofile", "Soft": 1024, "Hard": 2048 },
        { "Name": "nproc", "Soft": 64, "Hard": 128 }
    ]);
    let report = container(serde_json::json!({ "bridge": { "IPAddress": "172.17.0.2" } }), own);
    assert_eq!(result_of(&report, "5.30").status, Status::Warn, "on docker0: a Manual recommendation to review");
    let ulimits = result_of(&report, "5.19");
    assert_eq!(ulimits.status, Status::Info);
    assert_eq!(
        ulimits.evidence,
        "ulimits set for this container nproc=64:128; the daemon's default-ulimits nofile=1024:2048"
    );
    let cli = DaemonSettings::from_args(None, vec!["--default-ulimit".into(), "nproc=64:128".into()], &files);
    assert_eq!(daemon::default_ulimit_list(&cli), vec!["nproc=64:128"], "the flag wins over daemon.json");
}

#[test]
fn bool_flags_follow_go_and_fd_hosts_are_the_systemd_socket() {
    let files = HostFiles::new(tempfile::tempdir().unwrap().path());
    let args: Vec<String> =
        ["-H", "fd://", "--no-new-privileges=0", "--icc=F", "--live-restore=True", "--iptables=maybe"]
            .map(String::from)
            .to_vec();
    let settings = DaemonSettings::from_args(None, args, &files);
    assert_eq!(settings.bool_option("no-new-privileges"), Some(false));
    assert_eq!(settings.bool_option("icc"), Some(false));
    assert_eq!(settings.bool_option("live-restore"), Some(true));
    assert_eq!(settings.bool_option("iptables"), None, "not a bool");
    assert!(settings.serves(Path::new("/run/docker.sock")));
    assert!(!settings.serves(Path::new("/tmp/other.sock")));
}

#[test]
fn every_check_is_defined_once_in_a_known_section() {
    let mut ids = std::collections::BTreeSet::new();
    for check in defs::CHECKS {
        assert!(ids.insert(check.def.id), "{} is defined twice", check.def.id);
        assert!(defs::SECTIONS.iter().any(|(id, _)| *id == check.def.section()), "{}: no such section", check.def.id);
    }
}

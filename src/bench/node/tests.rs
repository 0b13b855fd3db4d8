use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::bench::Status;

/// The fixture node (kubeadm v1.30 files) copied into a temp root, with kubeadm's modes.
fn node_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/k8s-node");
    for entry in walkdir::WalkDir::new(&fixture) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(&fixture).unwrap();
        let dest = dir.path().join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    std::fs::create_dir_all(dir.path().join("var/lib/etcd/member")).unwrap();
    std::fs::set_permissions(dir.path().join("var/lib/etcd"), std::fs::Permissions::from_mode(0o700)).unwrap();
    for (path, mode) in [
        ("etc/kubernetes/pki/ca.crt", 0o644),
        ("etc/kubernetes/pki/apiserver.crt", 0o644),
        ("etc/cni/net.d/10-flannel.conflist", 0o644),
    ] {
        std::fs::set_permissions(dir.path().join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    dir
}

fn judged(root: &Path) -> BenchReport {
    let files = HostFiles::new(root);
    let facts = NodeFacts::gather(&files);
    assert!(facts.warnings.is_empty(), "{:?}", facts.warnings);
    judge(&facts, &files, "fixture node")
}

fn statuses(report: &BenchReport, id: &str) -> Vec<Status> {
    report.check(id).unwrap_or_else(|| panic!("no check {id}")).results.iter().map(|r| r.status).collect()
}

fn evidence(report: &BenchReport, id: &str) -> String {
    report
        .check(id)
        .unwrap()
        .results
        .iter()
        .map(|r| format!("{}: {}", r.subject, r.evidence))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn flags_are_read_from_kubeadm_manifests_and_the_kubelet_unit() {
    let dir = node_root();
    let files = HostFiles::new(dir.path());
    let facts = NodeFacts::gather(&files);
    let api = facts.get(ComponentKind::ApiServer).unwrap();
    assert_eq!(api.flag("authorization-mode").as_deref(), Some("Node,RBAC"));
    assert_eq!(api.source, "/etc/kubernetes/manifests/kube-apiserver.yaml");
    let kubelet = facts.get(ComponentKind::Kubelet).unwrap();
    // Expanded from Environment= lines and the kubeadm-flags.env EnvironmentFile.
    assert_eq!(kubelet.flag("kubeconfig").as_deref(), Some("/etc/kubernetes/kubelet.conf"));
    assert_eq!(kubelet.flag("hostname-override").as_deref(), Some("cp1.internal"));
    assert_eq!(kubelet.config_path.as_deref(), Some(Path::new("/var/lib/kubelet/config.yaml")));
    assert_eq!(kubelet.config_field("authentication.anonymous.enabled").as_deref(), Some("false"));
    assert!(facts.get(ComponentKind::Proxy).is_none());
}

#[test]
fn control_plane_flags_are_judged() {
    let dir = node_root();
    let report = judged(dir.path());
    let pass = vec![Status::Pass];
    let fail = vec![Status::Fail];
    for id in [
        "1.2.4", "1.2.6", "1.2.7", "1.2.8", "1.2.10", "1.2.11", "1.2.14", "1.2.15", "1.2.16", "1.2.22", "1.2.28",
        "1.3.3", "1.3.7",
    ] {
        assert_eq!(statuses(&report, id), pass, "{id}: {}", evidence(&report, id));
    }
    // kubeadm leaves these at unsafe defaults; the fixture's scheduler binds to 0.0.0.0 and
    // keeps audit logs 7 days.
    for id in ["1.2.1", "1.2.5", "1.2.17", "1.2.18", "1.2.30", "1.4.1", "1.4.2", "3.2.1"] {
        assert_eq!(statuses(&report, id), fail, "{id}: {}", evidence(&report, id));
    }
    assert_eq!(
        evidence(&report, "1.4.2"),
        "kube-scheduler (/etc/kubernetes/manifests/kube-scheduler.yaml): --bind-address=0.0.0.0"
    );
    for id in ["2.1", "2.2", "2.4", "2.5", "2.7"] {
        assert_eq!(statuses(&report, id), pass, "{id}: {}", evidence(&report, id));
    }
    assert_eq!(statuses(&report, "3.1.1"), vec![Status::Warn], "manual checks ask for a person");
}

#[test]
fn kubelet_config_and_flags_are_judged() {
    let dir = node_root();
    let report = judged(dir.path());
    assert_eq!(statuses(&report, "4.2.1"), vec![Status::Pass], "{}", evidence(&report, "4.2.1"));
    assert!(
        evidence(&report, "4.2.1").contains("authentication.anonymous.enabled in /var/lib/kubelet/config.yaml=false")
    );
    assert_eq!(statuses(&report, "4.2.2"), vec![Status::Pass], "Webhook mode");
    assert_eq!(statuses(&report, "4.2.3"), vec![Status::Pass]);
    assert_eq!(statuses(&report, "4.2.4"), vec![Status::Fail], "readOnlyPort 10255");
    // 0s in the config file is kubelet's default (4h); on the command line it would be none.
    assert_eq!(statuses(&report, "4.2.5"), vec![Status::Pass], "{}", evidence(&report, "4.2.5"));
    assert_eq!(statuses(&report, "4.2.7"), vec![Status::Fail], "hostname override from kubeadm-flags.env");
    assert_eq!(statuses(&report, "4.2.10"), vec![Status::Pass]);
    assert_eq!(statuses(&report, "4.2.13"), vec![Status::Fail], "no podPidsLimit");
    assert_eq!(statuses(&report, "4.3.1"), vec![Status::Skip], "no kube-proxy on this node");
}

#[test]
fn modes_and_owners_of_node_files() {
    let dir = node_root();
    let report = judged(dir.path());
    for id in [
        "1.1.1", "1.1.3", "1.1.5", "1.1.7", "1.1.11", "1.1.13", "1.1.15", "1.1.17", "1.1.21", "4.1.1", "4.1.5", "4.1.9",
    ] {
        assert!(statuses(&report, id).iter().all(|s| *s == Status::Pass), "{id}: {}", evidence(&report, id));
    }
    assert_eq!(statuses(&report, "4.1.3"), vec![Status::Skip], "no proxy kubeconfig");
    // The etcd data dir is owned by whoever runs the test, not etcd:etcd.
    assert_eq!(statuses(&report, "1.1.12"), vec![Status::Fail], "{}", evidence(&report, "1.1.12"));

    // Loosen a few modes: each is caught, and only the loosened file fails.
    let loosen = |path: &str, mode: u32| {
        std::fs::set_permissions(dir.path().join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    loosen("etc/kubernetes/manifests/kube-apiserver.yaml", 0o644);
    loosen("etc/kubernetes/admin.conf", 0o640);
    loosen("etc/kubernetes/pki/etcd/ca.key", 0o644);
    loosen("var/lib/etcd", 0o755);
    loosen("var/lib/kubelet/config.yaml", 0o666);
    let report = judged(dir.path());
    for id in ["1.1.1", "1.1.13", "1.1.11", "4.1.9"] {
        assert_eq!(statuses(&report, id), vec![Status::Fail], "{id}: {}", evidence(&report, id));
    }
    let keys = report.check("1.1.21").unwrap();
    let failed: Vec<&str> =
        keys.results.iter().filter(|r| r.status == Status::Fail).map(|r| r.subject.as_str()).collect();
    assert_eq!(failed, vec!["/etc/kubernetes/pki/etcd/ca.key"]);
    assert!(keys.results.len() >= 5, "every key is judged: {keys:?}");
}

#[test]
fn a_worker_without_control_plane_skips_sections_one_to_three() {
    let dir = node_root();
    std::fs::remove_dir_all(dir.path().join("etc/kubernetes/manifests")).unwrap();
    let report = judged(dir.path());
    assert_eq!(statuses(&report, "1.2.1"), vec![Status::Skip]);
    assert_eq!(statuses(&report, "2.2"), vec![Status::Skip]);
    assert_eq!(statuses(&report, "1.1.1"), vec![Status::Skip]);
    assert_eq!(statuses(&report, "4.2.1"), vec![Status::Pass]);
}

#[test]
fn broken_manifests_and_configs_are_reported_not_fatal() {
    let dir = node_root();
    std::fs::write(dir.path().join("etc/kubernetes/manifests/kube-scheduler.yaml"), "spec: [containers: {").unwrap();
    std::fs::write(dir.path().join("var/lib/kubelet/config.yaml"), "authentication: {anonymous: [").unwrap();
    let files = HostFiles::new(dir.path());
    let facts = NodeFacts::gather(&files);
    assert_eq!(facts.warnings.len(), 1, "{:?}", facts.warnings);
    assert!(facts.warnings[0].contains("/etc/kubernetes/manifests/kube-scheduler.yaml"), "{:?}", facts.warnings);
    let report = judge(&facts, &files, "x");
    assert_eq!(statuses(&report, "4.2.1"), vec![Status::Warn]);
    assert!(evidence(&report, "4.2.1").contains("/var/lib/kubelet/config.yaml"), "{}", evidence(&report, "4.2.1"));
    assert_eq!(statuses(&report, "4.2.7"), vec![Status::Fail], "flags still count without the config file");
}

#[test]
fn flag_values_follow_go_flag_rules() {
    let args: Vec<String> = ["--a=1", "--b", "two", "--c", "--a=3", "--d"].map(String::from).to_vec();
    assert_eq!(flag_value(&args, "a").as_deref(), Some("3"), "the last one wins");
    assert_eq!(flag_value(&args, "b").as_deref(), Some("two"));
    assert_eq!(flag_value(&args, "c").as_deref(), Some("true"));
    assert_eq!(flag_value(&args, "d").as_deref(), Some("true"));
    assert_eq!(flag_value(&args, "e"), None);
    assert_eq!(split_unit_words(r#""A=--x --y" B=z"#), vec!["A=--x --y", "B=z"]);
}

#[test]
fn every_check_of_sections_one_to_four_is_defined_once() {
    let checks = defs::checks();
    assert_eq!(checks.len(), 97);
    let mut ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 97);
}

fn component(kind: ComponentKind, args: &[&str]) -> Component {
    Component {
        kind,
        source: "test".into(),
        started_by: super::StartedBy::Unknown,
        args: args.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::new(),
        config: None,
        config_path: None,
        config_error: None,
    }
}

fn judge_one(facts: &NodeFacts, id: &str) -> (Status, String) {
    let files = HostFiles::new(tempfile::tempdir().unwrap().path());
    let report = judge(facts, &files, "x");
    let check = report.check(id).unwrap();
    (check.results[0].status, check.results[0].evidence.clone())
}

#[test]
fn defaults_that_are_unsafe_fail_when_the_flag_is_unset() {
    let mut facts = NodeFacts::default();
    facts.components.insert(ComponentKind::ApiServer, component(ComponentKind::ApiServer, &["--profiling=0"]));
    facts.components.insert(ComponentKind::Kubelet, component(ComponentKind::Kubelet, &[]));
    facts
        .components
        .insert(ComponentKind::Proxy, component(ComponentKind::Proxy, &["--metrics-bind-address=127.0.0.1:10249"]));
    facts.components.insert(ComponentKind::Scheduler, component(ComponentKind::Scheduler, &[]));
    let (status, evidence) = judge_one(&facts, "1.2.6");
    assert_eq!(status, Status::Fail, "{evidence}");
    assert!(evidence.contains("AlwaysAllow"), "{evidence}");
    assert_eq!(judge_one(&facts, "4.2.2").0, Status::Fail, "a kubelet without a config file defaults to AlwaysAllow");
    assert_eq!(judge_one(&facts, "1.2.15").0, Status::Pass, "--profiling=0 is false for Go");
    assert_eq!(judge_one(&facts, "4.3.1").0, Status::Pass, "the host part of ip:port");
    assert_eq!(judge_one(&facts, "1.4.2").0, Status::Fail, "the scheduler binds 0.0.0.0 by default");
    facts.components.insert(
        ComponentKind::ApiServer,
        component(ComponentKind::ApiServer, &["--authorization-config=/etc/kubernetes/authz.yaml"]),
    );
    assert_eq!(judge_one(&facts, "1.2.6").0, Status::Pass);
    let mut kubelet = component(ComponentKind::Kubelet, &["--pod-max-pids=-1"]);
    kubelet.config = Some(serde_json::json!({ "kind": "KubeletConfiguration" }));
    facts.components.insert(ComponentKind::Kubelet, kubelet);
    assert_eq!(judge_one(&facts, "4.2.2").0, Status::Pass, "the config file defaults to Webhook");
    assert_eq!(judge_one(&facts, "4.2.13").0, Status::Fail, "-1 is no limit");
    facts
        .components
        .insert(ComponentKind::Proxy, component(ComponentKind::Proxy, &["--metrics-bind-address=0.0.0.0:10249"]));
    assert_eq!(judge_one(&facts, "4.3.1").0, Status::Fail);
}

#[test]
fn encryption_providers_that_encrypt_and_cni_files_under_directories() {
    let dir = node_root();
    std::fs::write(
        dir.path().join("etc/kubernetes/enc/encryption.yaml"),
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: ['*.']\n    providers:\n      - aesgcm: {keys: [{name: k, secret: c2VjcmV0}]}\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/cni/networks/cbr0")).unwrap();
    std::fs::write(dir.path().join("var/lib/cni/networks/cbr0/10.244.0.5"), "abc").unwrap();
    std::fs::set_permissions(
        dir.path().join("var/lib/cni/networks/cbr0/10.244.0.5"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let report = judged(dir.path());
    assert_eq!(statuses(&report, "1.2.28"), vec![Status::Fail], "{}", evidence(&report, "1.2.28"));
    assert!(evidence(&report, "1.2.28").contains("aesgcm"));
    let cni = report.check("1.1.9").unwrap();
    let subjects: Vec<&str> = cni.results.iter().map(|r| r.subject.as_str()).collect();
    assert_eq!(
        subjects,
        vec!["/etc/cni/net.d/10-flannel.conflist", "/var/lib/cni/networks/cbr0/10.244.0.5"],
        "files, not directories"
    );
}

#[test]
fn remediation_says_where_the_flag_is_set_for_how_the_component_was_started() {
    use super::StartedBy;
    assert_eq!(
        StartedBy::from_cgroup(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-a.scope\n"
        ),
        StartedBy::StaticPod
    );
    assert_eq!(
        StartedBy::from_cgroup("0::/system.slice/kubelet.service\n"),
        StartedBy::Systemd("kubelet.service".into())
    );
    assert_eq!(
        StartedBy::from_cgroup("12:pids:/system.slice/kubelet.service\n"),
        StartedBy::Systemd("kubelet.service".into())
    );
    assert_eq!(StartedBy::from_cgroup("0::/user.slice/user-0.slice/session-3.scope\n"), StartedBy::Process);

    let remediation = |started_by: StartedBy| {
        let mut facts = NodeFacts::default();
        let mut api = component(ComponentKind::ApiServer, &[]);
        api.source = "process 4242".into();
        api.started_by = started_by;
        facts.components.insert(ComponentKind::ApiServer, api);
        let files = HostFiles::new(tempfile::tempdir().unwrap().path());
        // 1.2.6: --authorization-mode, a kube-apiserver flag.
        judge(&facts, &files, "x").check("1.2.6").unwrap().meta.remediation.clone()
    };
    let static_pod = remediation(StartedBy::StaticPod);
    assert!(
        static_pod.starts_with("In /etc/kubernetes/manifests/kube-apiserver.yaml (the kube-apiserver static pod"),
        "{static_pod}"
    );
    let unit = remediation(StartedBy::Systemd("kube-apiserver.service".into()));
    assert!(unit.starts_with("In kube-apiserver's systemd unit kube-apiserver.service"), "{unit}");
    let process = remediation(StartedBy::Process);
    assert!(process.starts_with("kube-apiserver runs as a plain process (process 4242"), "{process}");
    assert!(process.contains("set --authorization-mode"), "{process}");
    // No component found: the kubeadm layout, as before.
    let none = judge(&NodeFacts::default(), &HostFiles::new(tempfile::tempdir().unwrap().path()), "x");
    assert!(
        none.check("1.2.6").unwrap().meta.remediation.starts_with("In /etc/kubernetes/manifests/kube-apiserver.yaml")
    );
}

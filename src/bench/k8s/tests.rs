use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::pods;
use super::rbac::allows;
use super::workloads::Workload;

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..PolicyRule::default()
    }
}

#[test]
fn rules_match_verbs_groups_resources_and_subresources() {
    let exec = rule(&[""], &["pods/exec"], &["create"]);
    assert!(allows(&exec, "create", "", "pods/exec"));
    assert!(!allows(&exec, "create", "", "pods"), "a subresource grant is not the resource");
    assert!(!allows(&exec, "get", "", "pods/exec"));
    let all_sub = rule(&[""], &["pods/*"], &["*"]);
    assert!(allows(&all_sub, "create", "", "pods/attach"));
    let apps = rule(&["apps"], &["*"], &["get"]);
    assert!(!allows(&apps, "get", "", "secrets"), "another API group");
    assert!(allows(&apps, "get", "apps", "deployments"));
    assert!(allows(&rule(&["*"], &["*"], &["*"]), "impersonate", "", "users"));
}

fn workload(spec: serde_json::Value) -> (ObjectMeta, PodSpec) {
    (
        ObjectMeta { name: Some("w".into()), namespace: Some("ns".into()), ..ObjectMeta::default() },
        serde_json::from_value(spec).expect("pod spec"),
    )
}

#[test]
fn pod_controls_read_pod_and_container_settings() {
    let (meta, spec) = workload(serde_json::json!({
        "securityContext": {
            "runAsUser": 0,
            "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}, {"name": "kernel.msgmax", "value": "65536"}],
            "seLinuxOptions": {"type": "spc_t"}
        },
        "containers": [
            {"name": "a", "image": "x", "securityContext": {"runAsUser": 1000, "procMount": "Unmasked", "capabilities": {"add": ["CHOWN"]}}},
            {"name": "b", "image": "x"}
        ],
        "volumes": [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "nfs", "nfs": {"server": "s", "path": "/"}}]
    }));
    let w = Workload { kind: "Pod", meta: &meta, pod_meta: None, spec: &spec };
    assert_eq!(w.subject(), "Pod ns/w");
    // Container a overrides the pod's runAsUser 0; b inherits it.
    assert_eq!(pods::runs_as_root(&w).as_deref(), Some("container b: runAsUser: 0"));
    assert_eq!(pods::unsafe_sysctls(&w).as_deref(), Some("sysctl kernel.msgmax"));
    assert_eq!(pods::selinux_custom(&w).as_deref(), Some("pod: SELinux type spc_t"));
    assert_eq!(pods::proc_mount(&w).as_deref(), Some("container a: procMount Unmasked"));
    assert_eq!(pods::baseline_capabilities(&w), None, "CHOWN is in the baseline set");
    assert!(pods::adds_capabilities(&w).is_some());
    assert_eq!(pods::restricted_volume_types(&w).as_deref(), Some("volume nfs: nfs"));
    assert!(pods::keeps_net_raw(&w).is_some());
    assert!(pods::seccomp_not_set(&w).is_some());
    assert_eq!(pods::seccomp_unconfined(&w), None);
}

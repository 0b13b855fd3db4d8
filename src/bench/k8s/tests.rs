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
    let every_exec = rule(&[""], &["*/exec"], &["create"]);
    assert!(allows(&every_exec, "create", "", "pods/exec"));
    assert!(!allows(&every_exec, "create", "", "pods/attach"));
    assert!(!allows(&every_exec, "create", "", "pods"));
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

fn inventory(objects: serde_json::Value) -> crate::cluster::inventory::Inventory {
    let mut inv = crate::cluster::inventory::Inventory::default();
    for object in objects.as_array().unwrap() {
        let o = object.clone();
        match object["kind"].as_str().unwrap() {
            "Pod" => inv.pods.push(serde_json::from_value(o).unwrap()),
            "ReplicaSet" => inv.replica_sets.push(serde_json::from_value(o).unwrap()),
            "Deployment" => inv.deployments.push(serde_json::from_value(o).unwrap()),
            "ClusterRole" => inv.cluster_roles.push(serde_json::from_value(o).unwrap()),
            "ClusterRoleBinding" => inv.cluster_role_bindings.push(serde_json::from_value(o).unwrap()),
            other => panic!("{other}"),
        }
    }
    inv
}

#[test]
fn pods_are_judged_unless_a_listed_controller_covers_them() {
    let owner = |kind: &str, name: &str| serde_json::json!([{ "apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": true }]);
    let pod = |name: &str, owners: serde_json::Value| serde_json::json!({ "kind": "Pod", "metadata": { "name": name, "namespace": "ns", "ownerReferences": owners }, "spec": { "containers": [{ "name": "c", "image": "i" }] } });
    let inv = inventory(serde_json::json!([
        { "kind": "Deployment", "metadata": { "name": "web", "namespace": "ns" }, "spec": { "selector": {}, "template": { "spec": { "containers": [{ "name": "c", "image": "i" }] } } } },
        { "kind": "ReplicaSet", "metadata": { "name": "web-1", "namespace": "ns", "ownerReferences": owner("Deployment", "web") }, "spec": { "selector": {} } },
        { "kind": "ReplicaSet", "metadata": { "name": "bare", "namespace": "ns" }, "spec": { "selector": {} } },
        pod("web-1-a", owner("ReplicaSet", "web-1")),
        pod("bare-a", owner("ReplicaSet", "bare")),
        pod("rollout-a", owner("Rollout", "canary")),
        pod("static-node-1", owner("Node", "node-1")),
    ]));
    let subjects: Vec<String> = super::workloads::workloads(&inv).iter().map(|w| w.subject()).collect();
    assert_eq!(subjects, vec!["Deployment ns/web", "Pod ns/bare-a", "Pod ns/rollout-a", "Pod ns/static-node-1"]);
}

#[test]
fn only_labelled_bindings_count_as_kubernetes_own() {
    let binding = |name: &str, labels: serde_json::Value| {
        serde_json::json!({ "kind": "ClusterRoleBinding", "metadata": { "name": name, "labels": labels },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
            "subjects": [{ "kind": "Group", "name": "system:authenticated" }] })
    };
    let inv = inventory(serde_json::json!([
        { "kind": "ClusterRole", "metadata": { "name": "cluster-admin" }, "rules": [{ "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] }] },
        binding("system:oops", serde_json::json!({})),
        binding("cluster-admin", serde_json::json!({ "kubernetes.io/bootstrapping": "rbac-defaults" })),
    ]));
    let report = super::judge(&inv);
    let subjects = |id: &str| -> Vec<(String, crate::bench::Status)> {
        report.check(id).unwrap().results.iter().map(|r| (r.subject.clone(), r.status)).collect()
    };
    let fail = crate::bench::Status::Fail;
    assert_eq!(subjects("PKT-RBAC.2"), vec![("ClusterRoleBinding system:oops".to_string(), fail)]);
    assert_eq!(subjects("5.1.1"), vec![("ClusterRoleBinding system:oops".to_string(), fail)]);
}

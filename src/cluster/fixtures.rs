//! Test fixtures for the cluster capability and its readers (benchmarks, the console).

/// The cluster of tests/fixtures/k8s-cluster/objects.json (what the mock API server serves) as
/// an inventory of context `prod`.
pub fn inventory() -> crate::cluster::inventory::Inventory {
    use serde::de::DeserializeOwned;
    fn parse<T: DeserializeOwned>(item: &serde_json::Value) -> T {
        serde_json::from_value(item.clone()).expect("a Kubernetes object")
    }
    let list: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/fixtures/k8s-cluster/objects.json")).expect("objects.json");
    let mut inv = crate::cluster::inventory::Inventory { context: "prod".into(), ..Default::default() };
    for item in list["items"].as_array().expect("items") {
        match item["kind"].as_str().unwrap_or_default() {
            "Namespace" => inv.namespaces.push(parse(item)),
            "Node" => inv.nodes.push(parse(item)),
            "Pod" => inv.pods.push(parse(item)),
            "Deployment" => inv.deployments.push(parse(item)),
            "ReplicaSet" => inv.replica_sets.push(parse(item)),
            "StatefulSet" => inv.stateful_sets.push(parse(item)),
            "DaemonSet" => inv.daemon_sets.push(parse(item)),
            "Job" => inv.jobs.push(parse(item)),
            "CronJob" => inv.cron_jobs.push(parse(item)),
            "Service" => inv.services.push(parse(item)),
            "Ingress" => inv.ingresses.push(parse(item)),
            "NetworkPolicy" => inv.network_policies.push(parse(item)),
            "ServiceAccount" => inv.service_accounts.push(parse(item)),
            "Role" => inv.roles.push(parse(item)),
            "ClusterRole" => inv.cluster_roles.push(parse(item)),
            "RoleBinding" => inv.role_bindings.push(parse(item)),
            "ClusterRoleBinding" => inv.cluster_role_bindings.push(parse(item)),
            "Secret" => inv.secrets.push(parse::<k8s_openapi::api::core::v1::Secret>(item).metadata),
            other => panic!("objects.json: unexpected kind {other}"),
        }
    }
    inv
}

//! The labels exports select pods by, read from the cluster: each workload's pod selector (or
//! its pod template's labels for Jobs and CronJobs), and the cluster DNS pods' labels from the
//! `kube-dns` Service's selector (CoreDNS keeps that name).

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

use super::Labels;

/// Where a workload kind lives, newest version first (CronJob is batch/v1beta1 before 1.21).
fn versions(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => &[("apps", "v1")],
        "Job" => &[("batch", "v1")],
        "CronJob" => &[("batch", "v1"), ("batch", "v1beta1")],
        _ => &[],
    }
}

fn string_map(value: &serde_json::Value) -> Option<BTreeMap<String, String>> {
    let map: BTreeMap<String, String> =
        value.as_object()?.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect();
    (!map.is_empty()).then_some(map)
}

/// The labels of a workload's pods, from its object.
fn pod_labels_of(kind: &str, object: &serde_json::Value) -> Option<BTreeMap<String, String>> {
    let spec = &object["spec"];
    match kind {
        "Job" => string_map(&spec["template"]["metadata"]["labels"]),
        "CronJob" => string_map(&spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"]),
        _ => {
            string_map(&spec["selector"]["matchLabels"]).or_else(|| string_map(&spec["template"]["metadata"]["labels"]))
        }
    }
}

/// Reads what `wanted` (namespace, kind, name) needs, and the DNS pods' labels; what cannot be
/// read is a note (the export then says what it left out, or asks for matchLabels).
pub async fn from_cluster(client: &kube::Client, wanted: &[(String, String, String)]) -> (Labels, Vec<String>) {
    let mut labels = Labels::default();
    let mut notes = Vec::new();
    for (namespace, kind, name) in wanted {
        let mut found = None;
        let mut why = format!("{kind} is not a workload kind picket reads labels of");
        for (group, version) in versions(kind) {
            let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
            let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(client.clone(), namespace, &resource);
            match api.get(name).await {
                Ok(object) => {
                    found = serde_json::to_value(&object).ok().and_then(|v| pod_labels_of(kind, &v));
                    if found.is_none() {
                        why = "it has no pod labels".into();
                    }
                    break;
                }
                Err(e) => why = crate::cluster::inventory::describe(&e),
            }
        }
        match found {
            Some(pods) => {
                labels.workloads.insert(format!("{namespace}/{kind}/{name}"), pods);
            }
            None => notes.push(format!("{namespace}/{kind}/{name}: {why}")),
        }
    }
    let services: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::namespaced(client.clone(), "kube-system");
    match services.get("kube-dns").await {
        Ok(service) => labels.dns = service.spec.and_then(|s| s.selector).filter(|s| !s.is_empty()),
        Err(e) => notes.push(format!("kube-system/kube-dns: {}", crate::cluster::inventory::describe(&e))),
    }
    (labels, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_labels_come_from_the_selector_or_the_template() {
        let deployment = serde_json::json!({ "spec": { "selector": { "matchLabels": { "app": "web" } } } });
        assert_eq!(pod_labels_of("Deployment", &deployment).unwrap()["app"], "web");
        let cronjob = serde_json::json!({ "spec": { "jobTemplate": { "spec": { "template": { "metadata": { "labels": { "job": "nightly" } } } } } } });
        assert_eq!(pod_labels_of("CronJob", &cronjob).unwrap()["job"], "nightly");
        assert!(pod_labels_of("Deployment", &serde_json::json!({ "spec": {} })).is_none());
    }
}

//! Which cluster workloads run an image a re-match found new advisories in: a pod's container
//! matches by the digest its status reports (the manifest, or the index of a multi-platform
//! image), or, where the status has none yet (a pod not started), by its spec's image
//! reference: a digest, or a tag a registry crawl recorded for the image.

use std::collections::{BTreeSet, HashMap};

use crate::registry::ImageReference;
use crate::scan::rematch::{RematchReport, key_id};

/// One container of one pod, as the re-match report needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodImage {
    /// `namespace/pod`.
    pub pod: String,
    pub running: bool,
    /// The spec's image reference.
    pub image: String,
    /// The status's image id (`docker-pullable://repo@sha256:…`, `repo@sha256:…`, `sha256:…`).
    pub image_id: Option<String>,
}

/// `registry/repository:tag` as a reference names it, defaults filled in (`nginx` is
/// `docker.io/library/nginx:latest`).
pub fn canonical(reference: &str) -> Option<String> {
    let parsed = ImageReference::parse(reference).ok()?;
    Some(format!("{}/{}:{}", parsed.registry, parsed.repository, parsed.tag.as_deref().unwrap_or("latest")))
}

fn digest_of(image_id: &str) -> &str {
    image_id.rsplit_once('@').map_or(image_id, |(_, digest)| digest).trim_start_matches("docker-pullable://")
}

/// Fills `workloads_by_id`: for each new advisory, the pods running (or, not started yet,
/// specifying) an image it affects. `tags` maps an image's manifest digest to the tags crawls
/// found for it (`crawl::overview::tag_references`). A pod not started is named with
/// " (not running)".
pub fn attach(report: &mut RematchReport, pods: &[PodImage], tags: &HashMap<String, Vec<String>>) {
    for change in report.changed.iter().filter(|c| !c.new.is_empty()) {
        let digests: BTreeSet<&str> = [&change.manifest_digest, &change.index_digest, &change.config_digest]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let mut references: BTreeSet<String> = change
            .manifest_digest
            .as_ref()
            .and_then(|d| tags.get(d))
            .into_iter()
            .flatten()
            .filter_map(|r| canonical(r))
            .collect();
        references.extend(canonical(&change.name));
        let matched: Vec<String> = pods
            .iter()
            .filter_map(|pod| {
                let by_status =
                    pod.image_id.as_deref().filter(|id| !id.is_empty()).map(|id| digests.contains(digest_of(id)));
                let hit = match by_status {
                    Some(hit) => hit,
                    None => {
                        pod.image.rsplit_once('@').is_some_and(|(_, d)| digests.contains(d))
                            || canonical(&pod.image).is_some_and(|r| references.contains(&r))
                    }
                };
                hit.then(|| match pod.running {
                    true => pod.pod.clone(),
                    false => format!("{} (not running)", pod.pod),
                })
            })
            .collect();
        if matched.is_empty() {
            continue;
        }
        for key in &change.new {
            report.workloads_by_id.entry(key_id(key).to_string()).or_default().extend(matched.iter().cloned());
        }
    }
    for pods in report.workloads_by_id.values_mut() {
        pods.sort();
        pods.dedup();
    }
}

/// The containers of every pod the context's user may list, for [`attach`].
pub async fn pods(client: &kube::Client, context: &str) -> Result<Vec<PodImage>, String> {
    use k8s_openapi::api::core::v1::Pod;
    let api: kube::Api<Pod> = kube::Api::all(client.clone());
    let list = api
        .list(&kube::api::ListParams::default())
        .await
        .map_err(|e| format!("context {context}: listing pods: {}", crate::cluster::inventory::describe(&e)))?;
    let mut out = Vec::new();
    for pod in list.items {
        let name = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        );
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
        for container in pod.spec.iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten())) {
            let image_id = statuses.iter().find(|s| s.name == container.name).map(|s| s.image_id.clone());
            out.push(PodImage {
                pod: name.clone(),
                running,
                image: container.image.clone().unwrap_or_default(),
                image_id,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::rematch::ImageChange;

    #[test]
    fn pods_match_by_status_digest_or_by_spec_reference() {
        let change = ImageChange {
            key: "sha256:aa".into(),
            name: "registry.lab:5000/team/app@sha256:aa".into(),
            config_digest: Some("sha256:cc".into()),
            manifest_digest: Some("sha256:aa".into()),
            index_digest: Some("sha256:ii".into()),
            new: vec!["CVE-1 jinja2 2.10".into()],
            fixed: Vec::new(),
        };
        let mut report = RematchReport { changed: vec![change], ..Default::default() };
        let pod = |pod: &str, running: bool, image: &str, id: Option<&str>| PodImage {
            pod: pod.into(),
            running,
            image: image.into(),
            image_id: id.map(String::from),
        };
        let pods = [
            pod(
                "a/by-index",
                true,
                "registry.lab:5000/team/app:v2",
                Some("docker-pullable://registry.lab:5000/team/app@sha256:ii"),
            ),
            pod("a/by-config", true, "whatever", Some("sha256:cc")),
            pod("a/other-image", true, "registry.lab:5000/team/app:v2", Some("registry.lab:5000/team/app@sha256:zz")),
            pod("b/pending-tag", false, "registry.lab:5000/team/app:v2", None),
            pod("b/pending-digest", false, "registry.lab:5000/team/app@sha256:aa", None),
            pod("b/pending-other", false, "registry.lab:5000/team/app:v1", None),
        ];
        let tags = HashMap::from([("sha256:aa".to_string(), vec!["registry.lab:5000/team/app:v2".to_string()])]);
        attach(&mut report, &pods, &tags);
        assert_eq!(
            report.workloads_by_id["CVE-1"],
            ["a/by-config", "a/by-index", "b/pending-digest (not running)", "b/pending-tag (not running)"]
        );
        assert_eq!(canonical("nginx").as_deref(), Some("docker.io/library/nginx:latest"));
    }
}

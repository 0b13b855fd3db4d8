//! Production scanning: the images that run in a cluster, de-duplicated by the digest the
//! kubelet reports (`status.containerStatuses[].imageID`), each mapped back to the workloads
//! that run it, and pulled with the pods' `imagePullSecrets`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::Api;

use super::inventory::Inventory;

/// One image the cluster runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningImage {
    /// What to pull: `registry/repo@sha256:…` when the kubelet reported a digest, else the
    /// image as the pod names it.
    pub reference: String,
    /// The manifest digest the kubelet reported, if any.
    pub digest: Option<String>,
    /// `Deployment payments/api (container api)`.
    pub used_by: BTreeSet<String>,
    /// `(namespace, secret)` of every imagePullSecret of the pods that run it.
    pub pull_secrets: BTreeSet<(String, String)>,
    /// Taken from the pod spec: no container of its pods has a status yet (Pending: not
    /// scheduled, not pulled, or no kubelet), so there is no running digest to name.
    pub from_spec: bool,
}

/// `docker-pullable://repo@sha256:…`, `repo@sha256:…` → (repo, digest). A bare image id
/// (`sha256:…`, the config digest Docker-based nodes report) is no pullable digest.
fn parse_image_id(image_id: &str) -> Option<(String, String)> {
    let id = image_id.trim_start_matches("docker-pullable://").trim_start_matches("docker://");
    let (repo, digest) = id.split_once('@')?;
    (digest.starts_with("sha256:") && !repo.is_empty()).then(|| (repo.to_string(), digest.to_string()))
}

/// The workload that owns a pod: a ReplicaSet's Deployment, a Job's CronJob, else the direct
/// owner, else the pod itself.
pub fn owner_of(inv: &Inventory, pod: &Pod) -> String {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let Some(owner) = controller(&pod.metadata) else {
        return format!("Pod {namespace}/{}", pod.metadata.name.as_deref().unwrap_or_default());
    };
    let parent = match owner.0.as_str() {
        "ReplicaSet" => inv
            .replica_sets
            .iter()
            .find(|rs| {
                rs.metadata.name.as_deref() == Some(&owner.1) && rs.metadata.namespace.as_deref() == Some(&namespace)
            })
            .and_then(|rs| controller(&rs.metadata)),
        "Job" => inv
            .jobs
            .iter()
            .find(|j| {
                j.metadata.name.as_deref() == Some(&owner.1) && j.metadata.namespace.as_deref() == Some(&namespace)
            })
            .and_then(|j| controller(&j.metadata)),
        _ => None,
    };
    let (kind, name) = parent.unwrap_or(owner);
    format!("{kind} {namespace}/{name}")
}

fn controller(meta: &ObjectMeta) -> Option<(String, String)> {
    super::inventory::controller(meta).map(|o| (o.kind.clone(), o.name.clone()))
}

/// Every image of a running container, once per digest; and the images of pods no container
/// of which has a status yet, as their spec names them (`from_spec`).
pub fn running_images(inv: &Inventory) -> Vec<RunningImage> {
    let mut by_key: BTreeMap<String, RunningImage> = BTreeMap::new();
    for pod in &inv.pods {
        let Some(spec) = &pod.spec else { continue };
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let sa_name = spec.service_account_name.clone().unwrap_or_else(|| "default".into());
        let sa_secrets = inv
            .service_accounts
            .iter()
            .find(|s| {
                s.metadata.name.as_deref() == Some(&sa_name) && s.metadata.namespace.as_deref() == Some(&namespace)
            })
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default();
        let secrets: BTreeSet<(String, String)> = spec
            .image_pull_secrets
            .iter()
            .flatten()
            .chain(sa_secrets.iter())
            .map(|r| (namespace.clone(), r.name.clone()))
            .collect();
        let owner = owner_of(inv, pod);
        let reported = pod.status.as_ref().is_some_and(|s| {
            s.container_statuses.as_ref().is_some_and(|c| !c.is_empty())
                || s.init_container_statuses.as_ref().is_some_and(|c| !c.is_empty())
        });
        if !reported {
            let containers = spec.init_containers.iter().flatten().chain(spec.containers.iter());
            for container in containers {
                let Some(image) = container.image.clone().filter(|i| !i.is_empty()) else { continue };
                let entry = by_key.entry(format!("spec:{image}")).or_insert_with(|| RunningImage {
                    reference: image,
                    digest: None,
                    used_by: BTreeSet::new(),
                    pull_secrets: BTreeSet::new(),
                    from_spec: true,
                });
                entry.used_by.insert(format!("{owner} (container {}, not running)", container.name));
                entry.pull_secrets.extend(secrets.iter().cloned());
            }
            continue;
        }
        let statuses = pod
            .status
            .as_ref()
            .into_iter()
            .flat_map(|s| s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten()));
        for status in statuses {
            if status.state.as_ref().is_none_or(|s| s.running.is_none()) {
                continue;
            }
            let declared = spec.containers.iter().find(|c| c.name == status.name).and_then(|c| c.image.clone());
            let (reference, digest) = match parse_image_id(&status.image_id) {
                Some((repo, digest)) => (format!("{repo}@{digest}"), Some(digest)),
                None => (declared.clone().unwrap_or_else(|| status.image.clone()), None),
            };
            let key = digest.clone().unwrap_or_else(|| reference.clone());
            let entry = by_key.entry(key).or_insert_with(|| RunningImage {
                reference,
                digest,
                used_by: BTreeSet::new(),
                pull_secrets: BTreeSet::new(),
                from_spec: false,
            });
            entry.used_by.insert(format!("{owner} (container {})", status.name));
            entry.pull_secrets.extend(secrets.iter().cloned());
        }
    }
    by_key.into_values().collect()
}

/// Reads a pull secret and writes its docker config to `dir`, for the registry client to read
/// as an auth file. Only secrets a running pod names are read.
pub async fn pull_secret_file(
    client: &Client,
    namespace: &str,
    name: &str,
    dir: &std::path::Path,
) -> Result<std::path::PathBuf, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = tokio::time::timeout(super::inventory::REQUEST_TIMEOUT, api.get(name))
        .await
        .map_err(|_| format!("secret {namespace}/{name}: no answer"))?
        .map_err(|e| format!("secret {namespace}/{name}: {e}"))?;
    let data = secret.data.unwrap_or_default();
    let config = if let Some(bytes) = data.get(".dockerconfigjson") {
        bytes.0.clone()
    } else if let Some(bytes) = data.get(".dockercfg") {
        // The old format is the `auths` map itself.
        let auths: serde_json::Value =
            serde_json::from_slice(&bytes.0).map_err(|e| format!("secret {namespace}/{name}: .dockercfg: {e}"))?;
        serde_json::to_vec(&serde_json::json!({ "auths": auths })).map_err(|e| e.to_string())?
    } else {
        return Err(format!("secret {namespace}/{name}: neither .dockerconfigjson nor .dockercfg"));
    };
    let path = dir.join(format!("{namespace}_{name}.json"));
    std::fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_with_digests_are_pullable() {
        assert_eq!(
            parse_image_id("docker-pullable://registry.example.com/app@sha256:abc"),
            Some(("registry.example.com/app".into(), "sha256:abc".into()))
        );
        assert_eq!(
            parse_image_id("docker.io/library/busybox@sha256:9ae9"),
            Some(("docker.io/library/busybox".into(), "sha256:9ae9".into()))
        );
        assert_eq!(parse_image_id("sha256:0123"), None);
        assert_eq!(parse_image_id(""), None);
    }
}

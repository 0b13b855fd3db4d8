//! Registry crawls as a cluster CronJob, for scale-out: `picket registry manifest NAME` prints
//! (or applies) the objects, the job runs `picket registry scan NAME --publish-configmap …`,
//! and each crawl's results land in a ConfigMap labelled [`RESULTS_LABEL`] in the job's
//! namespace, which `picket registry list|tags --from-cluster` and the Registries pane read.
//!
//! Why a ConfigMap: every cluster has them, the console reads them with the RBAC it already
//! asks for (get/list in one namespace), and a crawl's summary (tags, digests, counts) is small;
//! the job's own store (SBOMs, so re-crawls stay incremental and resume) stays on its volume.

use std::io::{Read, Write};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde::{Deserialize, Serialize};

use super::overview::{RegistryRow, TagRow};
use crate::registry::RegistryTarget;

pub const RESULTS_LABEL: &str = "picket.dev/registry-results";
const REGISTRY_LABEL: &str = "picket.dev/registry";
const RESULTS_KEY: &str = "results.json.gz";
/// ConfigMaps are limited to 1 MiB in etcd; leave room for the metadata.
const RESULTS_LIMIT: usize = 1_000_000;
const FIELD_MANAGER: &str = "picket";
pub const DEFAULT_NAMESPACE: &str = "picket-system";
/// What the job's store volume asks for: SBOMs of a few thousand images.
pub const DEFAULT_STORE_SIZE: &str = "10Gi";

/// One crawl's results as published: the registry's row and its tags, as `registry list` and
/// `registry tags` show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    pub published: String,
    pub registry: RegistryRow,
    pub tags: Vec<TagRow>,
}

#[derive(Debug, thiserror::Error)]
pub enum InClusterError {
    #[error("context {context}: {what}: {}", crate::cluster::inventory::describe(source))]
    Api { context: String, what: String, source: kube::Error },
    #[error("{0}")]
    Invalid(String),
}

/// The ConfigMap a registry's results go to by default.
pub fn results_name(registry: &str) -> String {
    let mut name: String = registry
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
        .collect();
    name.truncate(200);
    format!("picket-registry-{}", name.trim_matches(|c| c == '-' || c == '.'))
}

/// Writes a crawl's results to ConfigMap `name` in `namespace` (server-side apply, so the next
/// crawl replaces it).
pub async fn publish(
    client: &kube::Client,
    context: &str,
    namespace: &str,
    name: &str,
    results: &Published,
) -> Result<usize, InClusterError> {
    let json = serde_json::to_vec(results).map_err(|e| InClusterError::Invalid(e.to_string()))?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&json).and_then(|_| encoder.try_finish()).map_err(|e| InClusterError::Invalid(e.to_string()))?;
    let gz = encoder.finish().map_err(|e| InClusterError::Invalid(e.to_string()))?;
    if gz.len() > RESULTS_LIMIT {
        return Err(InClusterError::Invalid(format!(
            "registry {}: {} tags make {} bytes compressed, more than a ConfigMap holds ({RESULTS_LIMIT}): split it \
             into several registries with repositories: filters",
            results.registry.name,
            results.tags.len(),
            gz.len()
        )));
    }
    let map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(
                [
                    (RESULTS_LABEL.to_string(), "true".to_string()),
                    (REGISTRY_LABEL.to_string(), results_name(&results.registry.name)),
                ]
                .into(),
            ),
            ..Default::default()
        },
        binary_data: Some([(RESULTS_KEY.to_string(), ByteString(gz.clone()))].into()),
        ..Default::default()
    };
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&map)).await.map_err(|source| {
        InClusterError::Api {
            context: context.to_string(),
            what: format!("writing ConfigMap {namespace}/{name}"),
            source,
        }
    })?;
    Ok(gz.len())
}

/// Every published result in `namespace` (None: every namespace, or `picket-system` when the
/// user may not list ConfigMaps cluster-wide), each decoded; those that do not decode are named
/// apart, the others still returned.
pub async fn read_published(
    client: &kube::Client,
    context: &str,
    namespace: Option<&str>,
) -> Result<(Vec<Published>, Vec<String>), InClusterError> {
    let params = ListParams::default().labels(&format!("{RESULTS_LABEL}=true"));
    let listed = match namespace {
        Some(namespace) => Api::<ConfigMap>::namespaced(client.clone(), namespace).list(&params).await,
        None => match Api::<ConfigMap>::all(client.clone()).list(&params).await {
            Err(kube::Error::Api(status)) if status.code == 403 => {
                Api::<ConfigMap>::namespaced(client.clone(), DEFAULT_NAMESPACE).list(&params).await
            }
            other => other,
        },
    };
    let list = listed.map_err(|source| InClusterError::Api {
        context: context.to_string(),
        what: format!(
            "listing registry results in {}",
            namespace.map_or("every namespace".into(), |n| format!("namespace {n}"))
        ),
        source,
    })?;
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for map in list.items {
        let name = format!(
            "{}/{}",
            map.metadata.namespace.as_deref().unwrap_or_default(),
            map.metadata.name.as_deref().unwrap_or_default()
        );
        match decode(&map) {
            Ok(results) => found.push(results),
            Err(why) => unreadable.push(format!("ConfigMap {name}: {why}")),
        }
    }
    for results in &mut found {
        results.registry.origin = super::overview::Origin::Cluster;
    }
    found.sort_by(|a, b| a.registry.name.cmp(&b.registry.name));
    Ok((found, unreadable))
}

fn decode(map: &ConfigMap) -> Result<Published, String> {
    let bytes = map.binary_data.as_ref().and_then(|d| d.get(RESULTS_KEY)).ok_or_else(|| format!("no {RESULTS_KEY}"))?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes.0.as_slice())
        .take(64 << 20)
        .read_to_end(&mut json)
        .map_err(|e| format!("{RESULTS_KEY}: not gzip: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("{RESULTS_KEY}: not picket registry results: {e}"))
}

/// How the CronJob is made.
#[derive(Debug, Clone)]
pub struct ManifestOptions {
    pub namespace: String,
    pub image: String,
    /// Cron schedule; None: from the registry's `every` (default hourly).
    pub schedule: Option<String>,
    /// A `kubernetes.io/dockerconfigjson` Secret with the registry's credentials.
    pub auth_secret: Option<String>,
    /// A Secret holding the registry's CA certificate under `ca.crt`.
    pub ca_secret: Option<String>,
    pub store_size: String,
    pub storage_class: Option<String>,
    /// Run `picket db update` before each crawl (needs network to the advisory feeds).
    pub db_update: bool,
}

/// A cron schedule for an interval: whole minutes dividing an hour, whole hours dividing a day,
/// or whole days.
pub fn schedule_for(every: std::time::Duration) -> Result<String, String> {
    let minutes = every.as_secs() / 60;
    let exact = every.as_secs().is_multiple_of(60);
    match minutes {
        m if exact && (1..60).contains(&m) && 60u64.is_multiple_of(m) => Ok(format!("*/{m} * * * *")),
        60 if exact => Ok("0 * * * *".into()),
        m if exact && m.is_multiple_of(60) && m < 24 * 60 && (24u64 * 60).is_multiple_of(m) => {
            Ok(format!("0 */{} * * *", m / 60))
        }
        m if exact && m.is_multiple_of(24 * 60) => Ok(format!("0 0 */{} * *", m / (24 * 60))),
        _ => Err(format!(
            "every {}s is not a cron schedule (use minutes that divide an hour, hours that divide a day, or \
             whole days), or give --schedule",
            every.as_secs()
        )),
    }
}

/// The objects, as YAML documents: ServiceAccount, Role and RoleBinding (ConfigMaps of its
/// namespace only), the registry's config as a ConfigMap, the store's PersistentVolumeClaim,
/// and the CronJob (never two crawls at once; an interrupted one resumes on the next run).
pub fn manifest(target: &RegistryTarget, options: &ManifestOptions) -> Result<String, String> {
    target.resolve().map_err(|e| format!("registry {}: {e}", target.display_name()))?;
    let name = target.display_name();
    let object = results_name(&name);
    let schedule = match (&options.schedule, &target.every) {
        (Some(schedule), _) => schedule.clone(),
        (None, Some(every)) => schedule_for(crate::registry::target::parse_interval(every)?)?,
        (None, None) => "0 * * * *".into(),
    };
    let namespace = &options.namespace;
    let mut config_target = target.clone();
    config_target.name = name.clone();
    config_target.auth_file = options.auth_secret.as_ref().map(|_| "/etc/picket/auth/.dockerconfigjson".into());
    config_target.ca = options.ca_secret.as_ref().map(|_| "/etc/picket/ca/ca.crt".into());
    let config = serde_saphyr::to_string(&serde_json::json!({ "registries": [config_target] }))
        .map_err(|e| format!("the registry's config does not serialise: {e}"))?;
    let config_block: String = config.lines().map(|l| format!("    {l}\n")).collect();
    let storage_class =
        options.storage_class.as_ref().map(|c| format!("  storageClassName: {}\n", json_str(c))).unwrap_or_default();
    let mut volumes = String::from(
        "            - name: store\n              persistentVolumeClaim:\n                claimName: OBJECT-store\n\
         \x20           - name: config\n              configMap:\n                name: OBJECT-config\n\
         \x20           - name: tmp\n              emptyDir: {}\n",
    )
    .replace("OBJECT", &object);
    let mut mounts = String::from(
        "                - { name: store, mountPath: /var/lib/picket }\n\
         \x20               - { name: config, mountPath: /etc/picket/config, readOnly: true }\n\
         \x20               - { name: tmp, mountPath: /tmp }\n",
    );
    if let Some(secret) = &options.auth_secret {
        volumes.push_str(&format!(
            "            - name: auth\n              secret:\n                secretName: {}\n",
            json_str(secret)
        ));
        mounts.push_str("                - { name: auth, mountPath: /etc/picket/auth, readOnly: true }\n");
    }
    if let Some(secret) = &options.ca_secret {
        volumes.push_str(&format!(
            "            - name: ca\n              secret:\n                secretName: {}\n",
            json_str(secret)
        ));
        mounts.push_str("                - { name: ca, mountPath: /etc/picket/ca, readOnly: true }\n");
    }
    let security = "              securityContext:\n                runAsNonRoot: true\n                runAsUser: 65532\n\
                    \x20               readOnlyRootFilesystem: true\n                allowPrivilegeEscalation: false\n\
                    \x20               capabilities: { drop: [ALL] }\n";
    let common_args = r#""--data-dir", "/var/lib/picket", "--config", "/etc/picket/config/config.yaml""#;
    let db_update = match options.db_update {
        true => format!(
            "          initContainers:\n            - name: db-update\n              image: {image}\n\
             \x20             args: [{common_args}, \"db\", \"update\"]\n{security}              volumeMounts:\n{mounts}",
            image = json_str(&options.image),
        ),
        false => String::new(),
    };
    Ok(format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata:
  name: {object}
  namespace: {namespace}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {object}
  namespace: {namespace}
rules:
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["get", "create", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {object}
  namespace: {namespace}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {object}
subjects:
  - kind: ServiceAccount
    name: {object}
    namespace: {namespace}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {object}-config
  namespace: {namespace}
data:
  config.yaml: |
{config_block}---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {object}-store
  namespace: {namespace}
spec:
  accessModes: [ReadWriteOnce]
{storage_class}  resources:
    requests:
      storage: {size}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {object}
  namespace: {namespace}
  labels:
    app.kubernetes.io/name: picket-registry-scan
    {REGISTRY_LABEL}: {object}
spec:
  schedule: {schedule}
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 3
  jobTemplate:
    spec:
      backoffLimit: 2
      template:
        metadata:
          labels:
            app.kubernetes.io/name: picket-registry-scan
        spec:
          serviceAccountName: {object}
          restartPolicy: Never
{db_update}          containers:
            - name: crawl
              image: {image}
              args: [{common_args}, "registry", "scan", {name_json}, "--publish-configmap", "{namespace}/{object}"]
{security}              volumeMounts:
{mounts}          volumes:
{volumes}"#,
        size = json_str(&options.store_size),
        schedule = json_str(&schedule),
        image = json_str(&options.image),
        name_json = json_str(&name),
    ))
}

/// A YAML scalar that reads back as exactly `text` (JSON strings are YAML).
fn json_str(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// Applies the manifest (server-side apply, field manager `picket`); a server with no
/// `batch/v1` CronJob (before Kubernetes 1.21) gets `batch/v1beta1`, which has the same
/// fields. Returns the objects applied.
pub async fn apply(client: &kube::Client, context: &str, text: &str) -> Result<Vec<String>, InClusterError> {
    let mut applied = Vec::new();
    for doc in text.split("\n---\n") {
        let value: serde_json::Value =
            serde_saphyr::from_str(doc).map_err(|e| InClusterError::Invalid(format!("the manifest: {e}")))?;
        let mut object: DynamicObject =
            serde_json::from_value(value).map_err(|e| InClusterError::Invalid(format!("the manifest: {e}")))?;
        let types = object.types.clone().ok_or_else(|| InClusterError::Invalid("an object without a kind".into()))?;
        let name = object.metadata.name.clone().unwrap_or_default();
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let label = format!("{} {namespace}/{name}", types.kind);
        let mut versions = vec![types.api_version.clone()];
        if types.kind == "CronJob" {
            versions.push("batch/v1beta1".into());
        }
        let mut last = None;
        for api_version in versions {
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
            let resource = ApiResource {
                group: group.to_string(),
                version: version.to_string(),
                api_version: api_version.clone(),
                kind: types.kind.clone(),
                plural: plural(&types.kind),
            };
            if let Some(t) = object.types.as_mut() {
                t.api_version = api_version.clone();
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
            match api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object)).await {
                Ok(_) => {
                    applied.push(format!("{label} ({api_version})"));
                    last = None;
                    break;
                }
                Err(kube::Error::Api(status)) if status.code == 404 && types.kind == "CronJob" => {
                    last = Some(kube::Error::Api(status));
                }
                Err(source) => {
                    return Err(InClusterError::Api {
                        context: context.to_string(),
                        what: format!("applying {label}"),
                        source,
                    });
                }
            }
        }
        if let Some(source) = last {
            return Err(InClusterError::Api {
                context: context.to_string(),
                what: format!("applying {label}"),
                source,
            });
        }
    }
    Ok(applied)
}

fn plural(kind: &str) -> String {
    match kind {
        "ServiceAccount" => "serviceaccounts",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ConfigMap" => "configmaps",
        "PersistentVolumeClaim" => "persistentvolumeclaims",
        "CronJob" => "cronjobs",
        other => return format!("{}s", other.to_ascii_lowercase()),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_become_cron_schedules_or_say_why_not() {
        let minutes = |m: u64| schedule_for(std::time::Duration::from_secs(m * 60));
        assert_eq!(minutes(15).as_deref(), Ok("*/15 * * * *"));
        assert_eq!(minutes(60).as_deref(), Ok("0 * * * *"));
        assert_eq!(minutes(360).as_deref(), Ok("0 */6 * * *"));
        assert_eq!(minutes(2 * 24 * 60).as_deref(), Ok("0 0 */2 * *"));
        assert!(minutes(7).unwrap_err().contains("not a cron schedule"));
        assert!(minutes(7 * 60).unwrap_err().contains("--schedule"));
    }

    #[test]
    fn the_manifest_parses_and_names_what_the_job_needs() {
        let target = RegistryTarget {
            name: "lab".into(),
            ca: Some("/home/me/ca.pem".into()),
            auth_file: Some("/home/me/.docker/config.json".into()),
            repositories: vec!["team/*".into()],
            last_tags: Some(5),
            every: Some("6h".into()),
            ..RegistryTarget::new("registry.example:5000")
        };
        let options = ManifestOptions {
            namespace: "scans".into(),
            image: "registry.example/picket:1".into(),
            schedule: None,
            auth_secret: Some("lab-pull".into()),
            ca_secret: Some("lab-ca".into()),
            store_size: DEFAULT_STORE_SIZE.into(),
            storage_class: None,
            db_update: true,
        };
        let text = manifest(&target, &options).expect("manifest");
        let docs: Vec<serde_json::Value> =
            text.split("\n---\n").map(|d| serde_saphyr::from_str(d).expect("each document parses")).collect();
        let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
        assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "PersistentVolumeClaim", "CronJob"]);
        let cron = &docs[5]["spec"];
        assert_eq!(cron["schedule"], "0 */6 * * *");
        assert_eq!(cron["concurrencyPolicy"], "Forbid");
        let pod = &cron["jobTemplate"]["spec"]["template"]["spec"];
        let args: Vec<&str> =
            pod["containers"][0]["args"].as_array().expect("args").iter().filter_map(|a| a.as_str()).collect();
        assert_eq!(&args[4..], ["registry", "scan", "lab", "--publish-configmap", "scans/picket-registry-lab"]);
        assert_eq!(pod["initContainers"][0]["args"][5], "update");
        // The job's config points at the mounted Secrets, not the paths of this machine.
        let config: serde_json::Value =
            serde_saphyr::from_str(docs[3]["data"]["config.yaml"].as_str().expect("config")).expect("config parses");
        let registry = &config["registries"][0];
        assert_eq!(registry["authFile"], "/etc/picket/auth/.dockerconfigjson");
        assert_eq!(registry["ca"], "/etc/picket/ca/ca.crt");
        assert_eq!((registry["lastTags"].as_u64(), registry["url"].as_str()), (Some(5), Some("registry.example:5000")));
        let volumes: Vec<&str> =
            pod["volumes"].as_array().expect("volumes").iter().filter_map(|v| v["name"].as_str()).collect();
        assert_eq!(volumes, ["store", "config", "tmp", "auth", "ca"]);
    }
}

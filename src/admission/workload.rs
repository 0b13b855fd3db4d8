//! The object under review as admission rules see it: a Pod or any kind that holds a pod
//! template (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
//! CronJob), its pod spec and each container (init, regular and ephemeral) with its field path.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, SecurityContext};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::bench::k8s::workloads::Workload;

/// Where each kind keeps its pod spec and the pod template's metadata.
fn template_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&[]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
            Some(&["spec", "template"])
        }
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// The kinds judged, for the webhook's registration and the docs.
pub const KINDS: [(&str, &str, &str); 8] = [
    ("", "v1", "pods"),
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("apps", "v1", "daemonsets"),
    ("apps", "v1", "replicasets"),
    ("", "v1", "replicationcontrollers"),
    ("batch", "v1", "jobs"),
    ("batch", "*", "cronjobs"),
];

#[derive(Debug, Clone)]
pub struct Admitted {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub meta: ObjectMeta,
    /// The pod template's metadata (None for a Pod).
    pub pod_meta: Option<ObjectMeta>,
    pub spec: PodSpec,
    /// `spec`, `spec.template.spec`, `spec.jobTemplate.spec.template.spec`.
    pub spec_path: String,
}

/// One container with what the rules read of it.
#[derive(Debug, Clone)]
pub struct AdmittedContainer {
    pub name: String,
    /// `spec.template.spec.containers[0]`.
    pub path: String,
    pub image: String,
    pub security: Option<SecurityContext>,
    pub env: Vec<EnvVar>,
    pub limits: BTreeMap<String, String>,
}

impl Admitted {
    /// Reads an object; `Ok(None)` for a kind that holds no pod spec. `namespace` is the
    /// request's, for objects whose metadata does not say yet (a CREATE).
    pub fn from_object(object: &Value, namespace: &str) -> Result<Option<Self>, String> {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(path) = template_path(&kind) else { return Ok(None) };
        let meta: ObjectMeta = match object.get("metadata") {
            Some(m) => serde_json::from_value(m.clone()).map_err(|e| format!("metadata: {e}"))?,
            None => ObjectMeta::default(),
        };
        let mut template = object;
        for step in path {
            template = template.get(step).ok_or_else(|| format!("{kind} without {}", path.join(".")))?;
        }
        let pod_meta = if path.is_empty() {
            None
        } else {
            Some(match template.get("metadata") {
                Some(m) => {
                    serde_json::from_value(m.clone()).map_err(|e| format!("{}.metadata: {e}", path.join(".")))?
                }
                None => ObjectMeta::default(),
            })
        };
        let spec_path = path.iter().copied().chain(["spec"]).collect::<Vec<_>>().join(".");
        let spec_value = template.get("spec").ok_or_else(|| format!("{kind} without {spec_path}"))?;
        let spec: PodSpec = serde_json::from_value(spec_value.clone()).map_err(|e| format!("{spec_path}: {e}"))?;
        let namespace = meta.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| namespace.to_string());
        let name = meta.name.clone().or_else(|| meta.generate_name.clone()).unwrap_or_default();
        Ok(Some(Self { kind, namespace, name, meta, pod_meta, spec, spec_path }))
    }

    /// `Deployment payments/api`.
    pub fn subject(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }

    /// The pod's metadata: the template's, or the Pod's own.
    pub fn pod_metadata(&self) -> &ObjectMeta {
        self.pod_meta.as_ref().unwrap_or(&self.meta)
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.pod_metadata().labels.clone().unwrap_or_default()
    }

    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.pod_metadata().annotations.clone().unwrap_or_default()
    }

    pub fn service_account(&self) -> String {
        self.spec.service_account_name.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "default".into())
    }

    /// The object as the compliance checks see a workload (Pod Security Standards).
    pub fn workload(&self) -> Workload<'_> {
        Workload { kind: "Pod", meta: &self.meta, pod_meta: self.pod_meta.as_ref(), spec: &self.spec }
    }

    pub fn containers(&self) -> Vec<AdmittedContainer> {
        let spec = &self.spec;
        let plain = |list: &str, c: &Container, i: usize| AdmittedContainer {
            name: c.name.clone(),
            path: format!("{}.{list}[{i}]", self.spec_path),
            image: c.image.clone().unwrap_or_default(),
            security: c.security_context.clone(),
            env: c.env.clone().unwrap_or_default(),
            limits: limits(c.resources.as_ref().and_then(|r| r.limits.as_ref())),
        };
        let mut out: Vec<AdmittedContainer> = Vec::new();
        for (i, c) in spec.init_containers.iter().flatten().enumerate() {
            out.push(plain("initContainers", c, i));
        }
        for (i, c) in spec.containers.iter().enumerate() {
            out.push(plain("containers", c, i));
        }
        for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
            out.push(AdmittedContainer {
                name: c.name.clone(),
                path: format!("{}.ephemeralContainers[{i}]", self.spec_path),
                image: c.image.clone().unwrap_or_default(),
                security: c.security_context.clone(),
                env: c.env.clone().unwrap_or_default(),
                limits: limits(c.resources.as_ref().and_then(|r| r.limits.as_ref())),
            });
        }
        out
    }
}

fn limits(
    limits: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> BTreeMap<String, String> {
    limits.map(|l| l.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()).unwrap_or_default()
}

impl AdmittedContainer {
    pub fn privileged(&self) -> bool {
        self.security.as_ref().and_then(|s| s.privileged) == Some(true)
    }

    /// Whether the container may run as root, and why (the container's settings override the pod's).
    pub fn runs_as_root(&self, pod: &PodSpec) -> Option<String> {
        let pod = pod.security_context.as_ref();
        let own = self.security.as_ref();
        let non_root = own.and_then(|s| s.run_as_non_root).or(pod.and_then(|p| p.run_as_non_root));
        let user = own.and_then(|s| s.run_as_user).or(pod.and_then(|p| p.run_as_user));
        match (non_root, user) {
            (_, Some(0)) => Some("runAsUser is 0".into()),
            (Some(true), _) | (_, Some(_)) => None,
            _ => Some("may run as root (no runAsNonRoot, no runAsUser)".into()),
        }
    }

    /// Kubernetes allows escalation unless the container sets `allowPrivilegeEscalation: false`.
    pub fn allows_privilege_escalation(&self) -> Option<String> {
        match self.security.as_ref().and_then(|s| s.allow_privilege_escalation) {
            Some(false) => None,
            Some(true) => Some("allowPrivilegeEscalation is true".into()),
            None => Some("allowPrivilegeEscalation is not set to false".into()),
        }
    }

    /// Variables whose names say they hold a secret, given a plain value.
    pub fn env_secrets(&self) -> Vec<String> {
        self.env
            .iter()
            .filter(|e| e.value.as_deref().is_some_and(|v| !v.trim().is_empty()) && names_a_secret(&e.name))
            .map(|e| e.name.clone())
            .collect()
    }

    pub fn missing_limits(&self) -> Vec<&'static str> {
        ["cpu", "memory"].into_iter().filter(|r| !self.limits.contains_key(*r)).collect()
    }
}

/// `DB_PASSWORD`, `apiKey`, `GITHUB_TOKEN`, `AWS_SECRET_ACCESS_KEY`, `PRIVATE_KEY` …, matched on
/// the lower-cased name: a secret word between separators, one of a few telling substrings, or
/// a last word `key` after `secret`, `private`, `access`, `api` or `signing`. One pattern, so
/// that the ValidatingAdmissionPolicy export (CEL `matches`) judges names exactly as the webhook.
pub const SECRET_NAME_PATTERN: &str = "(^|[^a-z0-9])(password|passwd|pwd|secret|token|apikey|credentials?|passphrase)([^a-z0-9]|$)|password|api_key|apikey|private_key|access_key|(^|[^a-z0-9])(secret|private|access|api|signing)[^a-z0-9]+key[^a-z0-9]*$";

fn names_a_secret(name: &str) -> bool {
    static PATTERN: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(SECRET_NAME_PATTERN).ok());
    PATTERN.as_ref().is_some_and(|p| p.is_match(&name.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_gives_its_pod_spec_and_container_paths() {
        let template = json!({ "metadata": { "labels": { "app": "api" } },
            "spec": { "initContainers": [{ "name": "init", "image": "busybox" }],
                      "containers": [{ "name": "api", "image": "nginx:1.25" }] } });
        for (kind, path) in [
            ("Deployment", "spec.template.spec"),
            ("StatefulSet", "spec.template.spec"),
            ("DaemonSet", "spec.template.spec"),
            ("ReplicaSet", "spec.template.spec"),
            ("Job", "spec.template.spec"),
        ] {
            let object = json!({ "kind": kind, "metadata": { "name": "api" }, "spec": { "template": template } });
            let admitted = Admitted::from_object(&object, "shop").expect("reads").expect("judged");
            assert_eq!(admitted.namespace, "shop", "the request's namespace when the object has none");
            let paths: Vec<String> = admitted.containers().iter().map(|c| c.path.clone()).collect();
            assert_eq!(paths, [format!("{path}.initContainers[0]"), format!("{path}.containers[0]")], "{kind}");
            assert_eq!(admitted.labels().get("app").map(String::as_str), Some("api"), "{kind}: the template's labels");
        }
        let cron = json!({ "kind": "CronJob", "metadata": { "name": "r", "namespace": "ops" },
            "spec": { "schedule": "* * * * *", "jobTemplate": { "spec": { "template": template } } } });
        let admitted = Admitted::from_object(&cron, "other").expect("reads").expect("judged");
        assert_eq!(admitted.namespace, "ops");
        assert_eq!(admitted.containers()[1].path, "spec.jobTemplate.spec.template.spec.containers[0]");
        let pod = json!({ "kind": "Pod", "metadata": { "name": "p" },
            "spec": { "containers": [{ "name": "a", "image": "x" }], "ephemeralContainers": [{ "name": "dbg", "image": "busybox" }] } });
        let admitted = Admitted::from_object(&pod, "default").expect("reads").expect("judged");
        assert_eq!(admitted.containers()[1].path, "spec.ephemeralContainers[0]");
        assert!(Admitted::from_object(&json!({ "kind": "ConfigMap" }), "x").expect("reads").is_none());
    }

    #[test]
    fn a_broken_object_is_an_error_naming_the_field() {
        let bad = json!({ "kind": "Deployment", "metadata": { "name": "x" }, "spec": { "template": { "spec": { "containers": "no" } } } });
        let err = Admitted::from_object(&bad, "x").expect_err("not a pod spec");
        assert!(err.starts_with("spec.template.spec:"), "{err}");
        let missing = json!({ "kind": "Deployment", "metadata": { "name": "x" }, "spec": {} });
        assert!(Admitted::from_object(&missing, "x").expect_err("no template").contains("spec.template"));
    }

    #[test]
    fn secret_looking_names_are_told_apart() {
        for name in ["DB_PASSWORD", "apiKey", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "PRIVATE_KEY", "client-secret"] {
            assert!(names_a_secret(name), "{name}");
        }
        for name in ["db.passwd", "SIGNING-KEY_", "Credentials", "my_pwd"] {
            assert!(names_a_secret(name), "{name}");
        }
        for name in ["PATH", "LOG_LEVEL", "KEYBOARD", "TOKENIZER_THREADS_X", "HOME", "SORT_KEY", "MONKEY", "apis_KEYS"]
        {
            assert!(!names_a_secret(name), "{name}");
        }
    }
}

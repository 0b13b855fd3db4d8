//! `picket admission install`: the webhook's certificates and every object it needs (Namespace,
//! ServiceAccount, RBAC, TLS Secret, Deployment, Service, ValidatingWebhookConfiguration).
//!
//! `failurePolicy` is written out, `Ignore` unless asked otherwise: a webhook that is down or
//! slow then lets requests through instead of stopping every deploy in the cluster (and
//! its own restart). `Fail` is for clusters that prefer a stopped deploy to an unchecked one.
//! The webhook's own namespace and kube-system are left out by the namespace selector, and the
//! webhook exempts them itself too (clusters before v1.21 carry no `kubernetes.io/metadata.name`
//! label for the selector to read).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use serde_json::{Value, json};

use super::workload::KINDS;

pub const NAME: &str = "picket-admission";
/// The file (and the TLS Secret's key) holding the decisions token.
pub const TOKEN_FILE: &str = "decisions-token";
/// Where `install` puts the webhook unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "picket-system";
pub const WEBHOOK_NAME: &str = "validate.admission.picket.dev";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailurePolicy {
    Ignore,
    Fail,
}

impl FailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ignore => "Ignore",
            Self::Fail => "Fail",
        }
    }
}

/// Where the API server reaches the webhook.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// The in-cluster Service (`picket-admission.NAMESPACE.svc:443/validate`).
    Service,
    /// A URL (a webhook outside the cluster, or on the API server's own host).
    Url(String),
}

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub namespace: String,
    pub image: String,
    pub endpoint: Endpoint,
    pub failure_policy: FailurePolicy,
    pub timeout_seconds: i32,
    /// Namespaces never judged besides the webhook's own.
    pub exempt_namespaces: Vec<String>,
}

/// A CA and the serving certificate it signed, in PEM; and the token that reads the webhook's
/// recent decisions (`GET /decisions`).
#[derive(Debug, Clone)]
pub struct Certificates {
    pub ca: String,
    pub cert: String,
    pub key: String,
    pub token: String,
}

/// 32 random bytes from the kernel, in hex.
fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?,
        &mut bytes,
    )
    .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Certificates {
    /// A new CA and a serving certificate for the webhook's Service names, and for the hosts
    /// and addresses in `extra` (`127.0.0.1` for a webhook beside the API server). Valid for
    /// two years.
    pub fn generate(namespace: &str, extra: &[String]) -> Result<Self, String> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let err = |e: rcgen::Error| format!("cannot make the webhook's certificates: {e}");
        let today = jiff::Zoned::now().date();
        let until = today.saturating_add(jiff::Span::new().years(2));
        let date = |d: jiff::civil::Date| rcgen::date_time_ymd(i32::from(d.year()), d.month() as u8, d.day() as u8);
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.distinguished_name.push(DnType::CommonName, "picket admission CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = date(today.yesterday().unwrap_or(today));
        ca_params.not_after = date(until);
        let ca_key = KeyPair::generate().map_err(err)?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let service = format!("{NAME}.{namespace}.svc");
        let mut names =
            vec![NAME.to_string(), format!("{NAME}.{namespace}"), service.clone(), format!("{service}.cluster.local")];
        names.extend(extra.iter().cloned());
        let mut params = CertificateParams::new(names).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, service);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = date(today.yesterday().unwrap_or(today));
        params.not_after = date(until);
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        Ok(Self { ca: ca_cert.pem(), cert: cert.pem(), key: key.serialize_pem(), token: new_token()? })
    }

    /// Writes `ca.crt`, `tls.crt`, `tls.key` and `decisions-token` (the last two 0600) to `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (name, text) in
            [("ca.crt", &self.ca), ("tls.crt", &self.cert), ("tls.key", &self.key), (TOKEN_FILE, &self.token)]
        {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        use std::os::unix::fs::PermissionsExt as _;
        for secret in ["tls.key", TOKEN_FILE] {
            let path = dir.join(secret);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Reads `ca.crt`, `tls.crt`, `tls.key` and `decisions-token` from `dir` (a directory made
    /// before the token existed gets one).
    pub fn read(dir: &Path) -> Result<Self, String> {
        let read = |name: &str| {
            let path: PathBuf = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let (ca, cert, key) = (read("ca.crt")?, read("tls.crt")?, read("tls.key")?);
        match read(TOKEN_FILE) {
            Ok(token) => Ok(Self { ca, cert, key, token: token.trim().to_string() }),
            Err(_) => {
                let certs = Self { ca, cert, key, token: new_token()? };
                certs.write(dir)?;
                Ok(certs)
            }
        }
    }
}

/// The ValidatingWebhookConfiguration.
pub fn webhook_configuration(options: &InstallOptions, ca_pem: &str) -> ValidatingWebhookConfiguration {
    let client_config = match &options.endpoint {
        Endpoint::Service => WebhookClientConfig {
            ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
            service: Some(ServiceReference {
                namespace: options.namespace.clone(),
                name: NAME.into(),
                path: Some("/validate".into()),
                port: Some(443),
            }),
            url: None,
        },
        Endpoint::Url(url) => WebhookClientConfig {
            ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
            service: None,
            url: Some(url.clone()),
        },
    };
    let mut groups: Vec<(&str, &str, Vec<String>)> = Vec::new();
    for (group, version, resource) in KINDS {
        match groups.iter_mut().find(|(g, v, _)| *g == group && *v == version) {
            Some((_, _, resources)) => resources.push(resource.into()),
            None => groups.push((group, version, vec![resource.into()])),
        }
    }
    let mut rules: Vec<RuleWithOperations> = groups
        .into_iter()
        .map(|(group, version, resources)| RuleWithOperations {
            api_groups: Some(vec![group.into()]),
            api_versions: Some(vec![version.into()]),
            operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
            resources: Some(resources),
            scope: Some("Namespaced".into()),
        })
        .collect();
    if let Some(core) = rules.iter_mut().find(|r| r.api_groups.as_deref() == Some(&["".to_string()])) {
        core.resources.get_or_insert_with(Vec::new).push("pods/ephemeralcontainers".into());
    }
    let mut exempt = vec![options.namespace.clone()];
    exempt.extend(options.exempt_namespaces.iter().filter(|n| **n != options.namespace).cloned());
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta { name: Some(NAME.into()), ..ObjectMeta::default() },
        webhooks: Some(vec![ValidatingWebhook {
            name: WEBHOOK_NAME.into(),
            admission_review_versions: vec!["v1".into()],
            client_config,
            failure_policy: Some(options.failure_policy.as_str().into()),
            match_policy: Some("Equivalent".into()),
            namespace_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "kubernetes.io/metadata.name".into(),
                    operator: "NotIn".into(),
                    values: Some(exempt),
                }]),
                match_labels: None,
            }),
            rules: Some(rules),
            side_effects: "None".into(),
            timeout_seconds: Some(options.timeout_seconds),
            ..ValidatingWebhook::default()
        }]),
    }
}

/// Every object of an in-cluster install, in apply order.
pub fn manifests(options: &InstallOptions, certs: &Certificates) -> Vec<Value> {
    let ns = &options.namespace;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let labels = json!({ "app.kubernetes.io/name": NAME });
    let webhook = serde_json::to_value(webhook_configuration(options, &certs.ca)).unwrap_or(Value::Null);
    let mut webhook = webhook;
    if let Some(map) = webhook.as_object_mut() {
        map.insert("apiVersion".into(), "admissionregistration.k8s.io/v1".into());
        map.insert("kind".into(), "ValidatingWebhookConfiguration".into());
    }
    use kube::CustomResourceExt;
    let crd = serde_json::to_value(super::rules::PicketAdmissionRule::crd()).unwrap_or(Value::Null);
    vec![
        crd,
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }),
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": NAME, "namespace": ns } }),
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": { "name": NAME },
            "rules": [
                // The pods' pull secrets, for inline scans; the rules as CRD objects.
                { "apiGroups": [""], "resources": ["secrets"], "verbs": ["get"] },
                { "apiGroups": ["picket.dev"], "resources": ["picketadmissionrules"], "verbs": ["get", "list", "watch"] },
                // Roles and bindings, for rules on the pods' service accounts' grants.
                { "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "clusterroles", "rolebindings", "clusterrolebindings"], "verbs": ["list"] }
            ] }),
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": { "name": NAME },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME },
            "subjects": [{ "kind": "ServiceAccount", "name": NAME, "namespace": ns }] }),
        json!({ "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": { "name": format!("{NAME}-tls"), "namespace": ns },
            "data": { "tls.crt": b64(&certs.cert), "tls.key": b64(&certs.key), "ca.crt": b64(&certs.ca),
                      TOKEN_FILE: b64(&certs.token) } }),
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": NAME, "namespace": ns, "labels": labels },
            "spec": { "replicas": 2, "selector": { "matchLabels": labels },
                "template": { "metadata": { "labels": labels }, "spec": {
                    "serviceAccountName": NAME,
                    "securityContext": { "runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": { "type": "RuntimeDefault" } },
                    "containers": [{
                        "name": "webhook", "image": options.image,
                        "args": ["admission", "serve", "--listen", "0.0.0.0:8443", "--cert", "/tls/tls.crt", "--key", "/tls/tls.key",
                                 "--namespace", ns, "--rules", "/rules", "--cluster-rules",
                                 "--decisions-token-file", format!("/tls/{TOKEN_FILE}")],
                        "ports": [{ "containerPort": 8443, "name": "https", "protocol": "TCP" }],
                        "readinessProbe": { "httpGet": { "path": "/healthz", "port": 8443, "scheme": "HTTPS" } },
                        "resources": { "requests": { "cpu": "50m", "memory": "64Mi" }, "limits": { "cpu": "1", "memory": "512Mi" } },
                        "securityContext": { "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": { "drop": ["ALL"] } },
                        "volumeMounts": [{ "name": "tls", "mountPath": "/tls", "readOnly": true },
                                         { "name": "rules", "mountPath": "/rules", "readOnly": true },
                                         { "name": "data", "mountPath": "/var/lib/picket" }],
                        "env": [{ "name": "PICKET_DATA_DIR", "value": "/var/lib/picket" }]
                    }],
                    "volumes": [{ "name": "tls", "secret": { "secretName": format!("{NAME}-tls") } },
                                { "name": "rules", "configMap": { "name": format!("{NAME}-rules"), "optional": true } },
                                { "name": "data", "emptyDir": {} }]
                } } } }),
        json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": NAME, "namespace": ns },
            "spec": { "selector": labels, "ports": [{ "port": 443, "targetPort": 8443, "name": "https", "protocol": "TCP" }] } }),
        webhook,
    ]
}

/// Applies the objects `manifests` made with server-side apply (ports name their protocol:
/// server-side apply keys them by port and protocol, and v1.20 refuses a port without one),
/// field manager `picket`, in order. Returns the objects applied
/// (`Deployment picket-system/picket-admission`), or the first error.
pub async fn apply(client: &kube::Client, context: &str, objects: &[Value]) -> Result<Vec<String>, String> {
    use kube::api::{DynamicObject, Patch, PatchParams};
    use kube::core::{ApiResource, GroupVersionKind};
    let mut applied = Vec::new();
    for object in objects {
        let text = |key: &str| object.pointer(key).and_then(Value::as_str).unwrap_or_default().to_string();
        let (api_version, kind, name, namespace) =
            (text("/apiVersion"), text("/kind"), text("/metadata/name"), text("/metadata/namespace"));
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
        let plural = match kind.as_str() {
            "CustomResourceDefinition" => "customresourcedefinitions",
            "Namespace" => "namespaces",
            "ServiceAccount" => "serviceaccounts",
            "ClusterRole" => "clusterroles",
            "ClusterRoleBinding" => "clusterrolebindings",
            "Secret" => "secrets",
            "Deployment" => "deployments",
            "Service" => "services",
            "ValidatingWebhookConfiguration" => "validatingwebhookconfigurations",
            other => return Err(format!("picket does not apply {other} objects")),
        };
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, &kind), plural);
        let api: kube::Api<DynamicObject> = if namespace.is_empty() {
            kube::Api::all_with(client.clone(), &resource)
        } else {
            kube::Api::namespaced_with(client.clone(), &namespace, &resource)
        };
        let label = if namespace.is_empty() { format!("{kind} {name}") } else { format!("{kind} {namespace}/{name}") };
        api.patch(&name, &PatchParams::apply("picket").force(), &Patch::Apply(object))
            .await
            .map_err(|e| format!("context {context}: applying {label}: {}", crate::cluster::inventory::describe(&e)))?;
        applied.push(label);
    }
    Ok(applied)
}

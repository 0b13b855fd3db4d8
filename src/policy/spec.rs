//! The policy format (`apiVersion: picket.dev/v1`). Its shape follows NeuVector's
//! NvSecurityRule (a target group and its mode; process, file, ingress and egress rules with
//! ports and applications) and KubeArmorPolicy (`matchPaths`, `matchDirectories`, `fromSource`,
//! actions Allow/Audit/Block); docs/policy.md maps every field.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "picket.dev";
pub const VERSION: &str = "v1";
/// The annotation a learned policy names its group with (`local/IMAGE`, `namespace/Kind/name`).
pub const GROUP_ANNOTATION: &str = "picket.dev/group";

/// A namespaced policy: its selector picks containers of its own namespace.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "picket.dev",
    version = "v1",
    kind = "PicketPolicy",
    namespaced,
    shortname = "ppol",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#
)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    /// The group of containers the policy is for.
    pub selector: Selector,
    pub mode: Mode,
    /// Executables: what may run, be audited or be blocked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub process: Vec<ProcessRule>,
    /// Files: reads and writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file: Vec<FileRule>,
    /// Connections into the group's containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<NetworkRule>,
    /// Connections out of the group's containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<NetworkRule>,
}

/// A cluster-wide policy: the same rules, for containers in the namespaces it names (all when
/// none are named).
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "picket.dev",
    version = "v1",
    kind = "PicketClusterPolicy",
    shortname = "pcpol",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#
)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterPolicySpec {
    /// Namespaces whose containers the selector may pick (glob patterns); none: every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    pub selector: Selector,
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub process: Vec<ProcessRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file: Vec<FileRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<NetworkRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<NetworkRule>,
}

impl ClusterPolicySpec {
    /// The rules, as a namespaced policy holds them.
    pub fn rules(&self) -> PolicySpec {
        PolicySpec {
            selector: self.selector.clone(),
            mode: self.mode,
            process: self.process.clone(),
            file: self.file.clone(),
            ingress: self.ingress.clone(),
            egress: self.egress.clone(),
        }
    }
}

/// Which containers form the group. On Kubernetes: pods by labels and/or their owner, and
/// optionally one container of them; on a host without Kubernetes: engine containers by name
/// or image. Every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// A container name (in the pod, or the engine's container name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// An image reference, `*` any run of characters (`registry.example/team/*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// The workload that owns the pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub kind: OwnerKind,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OwnerKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
    Job,
}

/// What the agent does with what the rules do not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Record what the group does (learning), allow everything.
    Discover,
    /// Alert on what the policy does not allow, allow it.
    Monitor,
    /// Deny what the policy does not allow, and alert.
    Protect,
}

impl Mode {
    /// As the YAML writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Discover => "discover",
            Mode::Monitor => "monitor",
            Mode::Protect => "protect",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "discover" => Ok(Mode::Discover),
            "monitor" => Ok(Mode::Monitor),
            "protect" => Ok(Mode::Protect),
            other => Err(format!("{other:?} is not a mode (discover, monitor, protect)")),
        }
    }
}

/// What a rule does with what it matches (KubeArmor's actions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Action {
    /// Allowed; in monitor and protect modes, what no Allow rule matches is a violation.
    #[default]
    Allow,
    /// Allowed, and alerted every time.
    Audit,
    /// Denied (in protect mode; alerted in monitor mode).
    Block,
}

/// A directory and, when `recursive`, everything below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryMatch {
    /// An absolute path ending in `/`.
    pub dir: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recursive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessRule {
    /// Executables by absolute path (an interpreter's script by the script's path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_directories: Vec<DirectoryMatch>,
    /// Only when started by one of these executables (the parent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_source: Vec<String>,
    /// Only as this user (name or uid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_directories: Vec<DirectoryMatch>,
    /// Reads only: a write to what the rule matches is not allowed by it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Only by these executables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_source: Vec<String>,
    #[serde(default)]
    pub action: Action,
}

/// Connections to (egress) or from (ingress) peers, on ports, speaking applications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkRule {
    /// None: any peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<Peer>,
    /// None: any port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRule>,
    /// Application protocols (`HTTP`, `DNS`, `TLS` …); none: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<String>,
    /// HTTP requests (egress): the action is about these requests on the rule's ports, not the
    /// whole connection (Block refuses them, Allow lets only the requests allowed so through).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpRequest>,
    /// DNS names asked for (egress): `example.com`, `*.example.com` (every name under it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// TLS server names (SNI) of the connections (egress): `api.github.com`, `*.example.com`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_names: Vec<String>,
    #[serde(default)]
    pub action: Action,
}

/// HTTP requests: a method (absent: any), a path (`/admin*`: every path that starts so;
/// absent: any path) and a host (the Host header's name, `shop.example` or `*.shop.example`;
/// absent: any host).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// One peer: a group (`namespace/owner-kind/name` as learning names groups), every pod of a
/// namespace, a CIDR, or a DNS name (`*.example.com`); exactly one of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortRule {
    /// `443`, or a range `8000-8080`.
    pub port: String,
    /// None: both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "protocol_schema")]
    pub protocol: Option<Protocol>,
}

/// An optional protocol without `null` among the enum's values: API servers before 1.21 refuse
/// a CRD whose schema lists it (its conversion fails and the CRD is invalid).
fn protocol_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": ["TCP", "UDP"] })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// The application protocols the firewall identifies (issue 18); names compare without case.
pub const APPLICATIONS: &[&str] =
    &["HTTP", "HTTP2", "GRPC", "TLS", "DNS", "SSH", "MySQL", "PostgreSQL", "Redis", "MongoDB", "Kafka"];

/// Both CRDs as YAML documents, as `picket policy crd` prints them and docs/policy-crds.yaml
/// ships them.
pub fn crds_yaml() -> Result<String, String> {
    use kube::CustomResourceExt;
    let mut out = String::new();
    for crd in [PicketPolicy::crd(), PicketClusterPolicy::crd()] {
        let yaml = serde_saphyr::to_string(&crd).map_err(|e| format!("the CRD does not serialise: {e}"))?;
        out.push_str("---\n");
        out.push_str(&yaml);
        if !yaml.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// Installs both CRDs with server-side apply (field manager `picket`); returns their names.
pub async fn install_crds(client: &kube::Client, context: &str) -> Result<Vec<String>, String> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::CustomResourceExt;
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    let mut installed = Vec::new();
    for crd in [PicketPolicy::crd(), PicketClusterPolicy::crd()] {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &kube::api::PatchParams::apply("picket").force(), &kube::api::Patch::Apply(&crd))
            .await
            .map_err(|e| {
                format!("context {context}: installing CRD {name}: {}", crate::cluster::inventory::describe(&e))
            })?;
        installed.push(name);
    }
    Ok(installed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_crds_are_the_generated_ones_and_list_no_null() {
        let generated = super::crds_yaml().expect("crds");
        let shipped = include_str!("../../docs/policy-crds.yaml");
        assert_eq!(shipped.trim_end(), generated.trim_end(), "regenerate docs/policy-crds.yaml with picket policy crd");
        // API servers before 1.21 refuse an enum listing null (seen on v1.20).
        assert!(!generated.lines().any(|l| l.trim() == "- null"), "an enum lists null");
    }
}

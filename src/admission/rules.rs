//! The admission rules format: `PicketAdmissionRule` documents (one rule each, also a
//! cluster-scoped CRD) and one optional `PicketAdmissionConfig` (mode, what to do with an image
//! never scanned, exempt namespaces). Modelled on NeuVector's admission control rules: a rule is
//! a deny or an exception, holding criteria that must all hold, each a name, an operator and a
//! value. Every mistake is reported with its file, line and column.

use std::path::{Path, PathBuf};

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::criteria::{Compiled, compile};
use crate::policy::validate::Problem;
use crate::yaml::{Step, locate, split_documents};

pub const API_VERSION: &str = "picket.dev/v1";

/// One admission rule.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "picket.dev",
    version = "v1",
    kind = "PicketAdmissionRule",
    shortname = "padm",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#
)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdmissionRuleSpec {
    /// `deny`: a request matching every criterion is denied (or warned, in monitor mode);
    /// `exception`: a container matching every criterion is judged by no deny rule.
    #[serde(rename = "type")]
    pub rule_type: RuleType,
    /// This rule's mode; else the configuration's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AdmissionMode>,
    /// Shown to the user with the rule's name when it denies or warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Every criterion must hold (for one and the same container, where a criterion is about
    /// containers).
    pub criteria: Vec<CriterionSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RuleType {
    Deny,
    Exception,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AdmissionMode {
    /// Allow, and say what would have been denied (an AdmissionReview warning).
    Monitor,
    #[default]
    Protect,
}

impl AdmissionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monitor => "monitor",
            Self::Protect => "protect",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CriterionSpec {
    pub name: CriterionName,
    pub op: Operator,
    /// A string, number or boolean; or a list for `in`, `notIn` and the set operators. A
    /// boolean criterion without a value means `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "value_schema")]
    pub value: Option<CriterionValue>,
}

/// A structural schema for a value of several types (the API server refuses `anyOf` of types).
fn value_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A string, number or boolean; or a list of strings.",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CriterionValue {
    Bool(bool),
    Number(f64),
    Text(String),
    List(Vec<String>),
}

impl CriterionValue {
    /// The value as a list of strings (a scalar: one item; a comma-separated string: its parts).
    pub fn items(&self) -> Vec<String> {
        match self {
            Self::Bool(b) => vec![b.to_string()],
            Self::Number(n) => vec![n.to_string()],
            Self::Text(t) => t.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            Self::List(items) => items.clone(),
        }
    }
}

/// What a criterion looks at. The doc comment of each is what docs/admission.md says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CriterionName {
    /// The request's namespace.
    Namespace,
    /// The container's image as written in the spec.
    Image,
    /// The image's registry host (`docker.io` when none is written).
    ImageRegistry,
    /// The image's repository (`library/nginx`).
    ImageRepository,
    /// The image's tag: `latest` when none is written and no digest pins it, empty when only a
    /// digest is written.
    ImageTag,
    /// The image has a stored scan.
    ImageScanned,
    /// Days since the image was last scanned.
    ImageScanAgeDays,
    CveCriticalCount,
    CveHighCount,
    CveMediumCount,
    CveCriticalWithFixCount,
    CveHighWithFixCount,
    CveMediumWithFixCount,
    /// The ids (and aliases) of the image's vulnerabilities.
    CveNames,
    /// The highest CVSS base score among the image's vulnerabilities.
    CvssScore,
    /// The container may run as root: neither runAsNonRoot nor a non-zero runAsUser.
    RunAsRoot,
    Privileged,
    HostPID,
    HostIPC,
    HostNetwork,
    /// The container does not set `allowPrivilegeEscalation: false`.
    AllowPrivilegeEscalation,
    /// The pod fails the Pod Security Standards level named by the value (baseline, restricted).
    ViolatesPss,
    /// The pod's labels (`key` or `key=value` items).
    Labels,
    /// The pod's annotations (`key` or `key=value` items).
    Annotations,
    /// An environment variable whose name says it holds a secret (password, token, key …) is
    /// given a plain value in the spec.
    EnvSecrets,
    /// The container has no CPU or no memory limit.
    NoResourceLimits,
    /// The pod's service account.
    ServiceAccount,
    /// The pod's service account is bound (directly, or through its groups) to a role with
    /// risky permissions: reading secrets, creating pods, exec or attach, escalate, bind or
    /// impersonate, node proxy, token creation, webhook configurations, or `*` on `*`.
    RiskyServiceAccount,
    /// The user making the request.
    User,
    /// The groups of the user making the request.
    UserGroups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Operator {
    #[serde(rename = "=")]
    Equals,
    #[serde(rename = "!=")]
    NotEquals,
    #[serde(rename = "in")]
    In,
    #[serde(rename = "notIn")]
    NotIn,
    #[serde(rename = "contains")]
    Contains,
    #[serde(rename = "notContains")]
    NotContains,
    #[serde(rename = "prefix")]
    Prefix,
    #[serde(rename = "regex")]
    Regex,
    #[serde(rename = "notRegex")]
    NotRegex,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = ">")]
    Above,
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "containsAny")]
    ContainsAny,
    #[serde(rename = "containsAll")]
    ContainsAll,
    #[serde(rename = "notContainsAny")]
    NotContainsAny,
    #[serde(rename = "missingAny")]
    MissingAny,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equals => "=",
            Self::NotEquals => "!=",
            Self::In => "in",
            Self::NotIn => "notIn",
            Self::Contains => "contains",
            Self::NotContains => "notContains",
            Self::Prefix => "prefix",
            Self::Regex => "regex",
            Self::NotRegex => "notRegex",
            Self::AtLeast => ">=",
            Self::Above => ">",
            Self::AtMost => "<=",
            Self::Below => "<",
            Self::ContainsAny => "containsAny",
            Self::ContainsAll => "containsAll",
            Self::NotContainsAny => "notContainsAny",
            Self::MissingAny => "missingAny",
        }
    }
}

/// What to do with an image that has no stored scan, when an enabled rule needs scan data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UnscannedAction {
    /// Deny (or warn, in monitor mode) naming the image.
    Deny,
    /// Judge the image as having no findings: rules needing scan data do not match it.
    #[default]
    Allow,
    /// As `allow`, and scan it now in the background, so that the next request knows.
    AllowAndScan,
    /// Scan it within `scanDeadlineSeconds` and decide on the result; past the deadline, do
    /// what `onScanTimeout` says.
    Scan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdmissionConfigSpec {
    #[serde(default)]
    pub mode: AdmissionMode,
    #[serde(default)]
    pub unscanned: UnscannedAction,
    #[serde(default = "default_deadline")]
    pub scan_deadline_seconds: u64,
    /// `allow` (with a warning) or `deny` when an inline scan misses its deadline.
    #[serde(default)]
    pub on_scan_timeout: TimeoutAction,
    /// Namespaces no rule judges. The webhook's own namespace is always among them.
    #[serde(default = "default_exempt")]
    pub exempt_namespaces: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TimeoutAction {
    #[default]
    Allow,
    Deny,
}

fn default_deadline() -> u64 {
    7
}

pub fn default_exempt() -> Vec<String> {
    ["kube-system", "kube-public", "kube-node-lease"].map(String::from).to_vec()
}

impl Default for AdmissionConfigSpec {
    fn default() -> Self {
        Self {
            mode: AdmissionMode::default(),
            unscanned: UnscannedAction::default(),
            scan_deadline_seconds: default_deadline(),
            on_scan_timeout: TimeoutAction::default(),
            exempt_namespaces: default_exempt(),
        }
    }
}

/// A rule ready to judge: its name, where it came from, and its criteria compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// `rules.yaml:12` or `PicketAdmissionRule/name`.
    pub origin: String,
    pub spec: AdmissionRuleSpec,
    pub criteria: Vec<Compiled>,
}

impl Rule {
    /// Builds a rule from a spec (a CRD object's), checking its criteria.
    pub fn new(name: &str, origin: String, spec: AdmissionRuleSpec) -> Result<Self, String> {
        let mut criteria = Vec::new();
        for (i, criterion) in spec.criteria.iter().enumerate() {
            criteria.push(compile(criterion).map_err(|(_, why)| format!("criteria[{i}]: {why}"))?);
        }
        if criteria.is_empty() {
            return Err("a rule needs at least one criterion".into());
        }
        Ok(Self { name: name.to_string(), origin, spec, criteria })
    }

    pub fn needs_scan(&self) -> bool {
        self.criteria.iter().any(Compiled::needs_scan)
    }
}

/// Every rule and the configuration in force.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub config: AdmissionConfigSpec,
}

impl RuleSet {
    /// Enabled rules of one type, in file order.
    pub fn enabled(&self, rule_type: RuleType) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(move |r| !r.spec.disabled && r.spec.rule_type == rule_type)
    }

    pub fn needs_scan(&self) -> bool {
        self.enabled(RuleType::Deny).chain(self.enabled(RuleType::Exception)).any(Rule::needs_scan)
    }

    /// Whether an enabled rule has a criterion on `name`.
    pub fn uses(&self, name: CriterionName) -> bool {
        self.enabled(RuleType::Deny)
            .chain(self.enabled(RuleType::Exception))
            .any(|r| r.criteria.iter().any(|c| c.name == name))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: HeadMeta,
}

#[derive(Deserialize, Default)]
struct HeadMeta {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigDoc {
    spec: AdmissionConfigSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleDoc {
    spec: AdmissionRuleSpec,
}

/// Reads the rules files (and the configuration among them); every problem of every file.
pub fn load(paths: &[PathBuf]) -> Result<RuleSet, Vec<Problem>> {
    let mut set = RuleSet::default();
    let mut problems = Vec::new();
    let mut config_at: Option<String> = None;
    for path in paths {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                problems.push(Problem { path: path.clone(), line: 0, column: 0, message: format!("cannot read: {e}") });
                continue;
            }
        };
        let (rules, config, found) = parse_text(path, &text);
        problems.extend(found);
        set.rules.extend(rules);
        if let Some((at, config)) = config {
            if let Some(first) = &config_at {
                problems.push(Problem {
                    path: path.clone(),
                    line: at,
                    column: 1,
                    message: format!("a second PicketAdmissionConfig (the first is at {first})"),
                });
            } else {
                config_at = Some(format!("{}:{at}", path.display()));
                set.config = config;
            }
        }
    }
    let mut seen = std::collections::BTreeMap::new();
    for rule in &set.rules {
        if let Some(first) = seen.insert(rule.name.clone(), rule.origin.clone()) {
            let (file, line) = rule.origin.rsplit_once(':').unwrap_or((&rule.origin, "0"));
            problems.push(Problem {
                path: PathBuf::from(file),
                line: line.parse().unwrap_or(0),
                column: 1,
                message: format!("a second rule named '{}' (the first is at {first})", rule.name),
            });
        }
    }
    if problems.is_empty() { Ok(set) } else { Err(problems) }
}

/// The `PicketAdmissionRule` objects of a cluster, as rules (origin `PicketAdmissionRule/NAME`);
/// an object with a mistake is a problem naming it.
pub async fn from_cluster(client: &kube::Client, context: &str) -> Result<(Vec<Rule>, Vec<String>), String> {
    let api: kube::Api<PicketAdmissionRule> = kube::Api::all(client.clone());
    let objects = api.list(&Default::default()).await.map_err(|e| {
        format!("context {context}: listing PicketAdmissionRule objects: {}", crate::cluster::inventory::describe(&e))
    })?;
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for object in objects {
        let name = object.metadata.name.clone().unwrap_or_default();
        let origin = format!("PicketAdmissionRule/{name}");
        match Rule::new(&name, origin.clone(), object.spec) {
            Ok(rule) => rules.push(rule),
            Err(e) => problems.push(format!("{origin}: {e}")),
        }
    }
    Ok((rules, problems))
}

/// The CRD of `PicketAdmissionRule` as YAML, for kubectl apply.
pub fn crd_yaml() -> Result<String, String> {
    use kube::CustomResourceExt;
    let yaml =
        serde_saphyr::to_string(&PicketAdmissionRule::crd()).map_err(|e| format!("the CRD does not serialise: {e}"))?;
    Ok(format!("---\n{yaml}"))
}

/// The rules and configuration of one file's text, and its problems.
#[allow(clippy::type_complexity)]
pub fn parse_text(path: &Path, text: &str) -> (Vec<Rule>, Option<(u64, AdmissionConfigSpec)>, Vec<Problem>) {
    let mut rules = Vec::new();
    let mut config = None;
    let mut problems = Vec::new();
    for (first_line, doc) in split_documents(text) {
        let at = |line: u64, column: u64, message: String| Problem {
            path: path.to_path_buf(),
            line: line + first_line + 1,
            column,
            message,
        };
        let parse_error = |err: serde_saphyr::Error| {
            let (line, column, message) = crate::yaml::explain(doc, &err);
            at(line.saturating_sub(1), column, message)
        };
        let head: Head = match serde_saphyr::from_str(doc) {
            Ok(head) => head,
            Err(err) => {
                problems.push(parse_error(err));
                continue;
            }
        };
        if head.api_version != API_VERSION {
            let (line, column) = locate(doc, &[Step::Key("apiVersion")]);
            problems.push(at(line, column, format!("apiVersion must be {API_VERSION}, not '{}'", head.api_version)));
            continue;
        }
        // The document's first line holding something, as its place.
        let doc_line = first_line
            + 1
            + doc.lines().position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).unwrap_or(0) as u64;
        match head.kind.as_str() {
            "PicketAdmissionRule" => {
                let Some(name) = head.metadata.name.filter(|n| !n.trim().is_empty()) else {
                    let (line, column) = locate(doc, &[Step::Key("metadata")]);
                    problems.push(at(line, column, "a rule needs metadata.name".into()));
                    continue;
                };
                let spec = match serde_saphyr::from_str::<RuleDoc>(doc) {
                    Ok(d) => d.spec,
                    Err(err) => {
                        problems.push(parse_error(err));
                        continue;
                    }
                };
                if spec.criteria.is_empty() {
                    let (line, column) = locate(doc, &[Step::Key("spec"), Step::Key("criteria")]);
                    problems.push(at(line, column, "a rule needs at least one criterion".into()));
                    continue;
                }
                let mut compiled = Vec::new();
                let mut bad = false;
                for (i, criterion) in spec.criteria.iter().enumerate() {
                    match compile(criterion) {
                        Ok(c) => compiled.push(c),
                        Err((field, why)) => {
                            bad = true;
                            let (line, column) = locate(
                                doc,
                                &[Step::Key("spec"), Step::Key("criteria"), Step::Index(i), Step::Key(field)],
                            );
                            problems.push(at(line, column, why));
                        }
                    }
                }
                if !bad {
                    let origin = format!("{}:{doc_line}", path.display());
                    rules.push(Rule { name, origin, spec, criteria: compiled });
                }
            }
            "PicketAdmissionConfig" => match serde_saphyr::from_str::<ConfigDoc>(doc) {
                Ok(d) => {
                    if d.spec.scan_deadline_seconds == 0 || d.spec.scan_deadline_seconds > 28 {
                        let (line, column) = locate(doc, &[Step::Key("spec"), Step::Key("scanDeadlineSeconds")]);
                        problems.push(at(
                            line,
                            column,
                            "scanDeadlineSeconds must be 1 to 28: the API server waits for a webhook 30 s at most, \
                             and the answer needs time to travel"
                                .into(),
                        ));
                    } else {
                        config = Some((doc_line, d.spec));
                    }
                }
                Err(err) => problems.push(parse_error(err)),
            },
            other => {
                let (line, column) = locate(doc, &[Step::Key("kind")]);
                problems.push(at(
                    line,
                    column,
                    format!("kind must be PicketAdmissionRule or PicketAdmissionConfig, not '{other}'"),
                ));
            }
        }
    }
    (rules, config, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<(u64, u64, String)> {
        let (_, _, found) = parse_text(Path::new("r.yaml"), text);
        found.into_iter().map(|p| (p.line, p.column, p.message)).collect()
    }

    const HEAD: &str = "apiVersion: picket.dev/v1\nkind: PicketAdmissionRule\nmetadata:\n  name: r\nspec:\n  type: deny\n  criteria:\n";

    #[test]
    fn a_mistake_in_a_criterion_is_named_at_its_field() {
        // Line 9, the second criterion (a flow mapping is named by where it starts).
        let text = format!(
            "{HEAD}    - {{ name: privileged, op: '=' }}\n    - {{ name: cveCriticalCount, op: contains, value: 1 }}\n"
        );
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        let (line, column, message) = &found[0];
        assert_eq!((*line, *column), (9, 7), "{message}");
        assert!(message.contains("'contains' does not apply to cveCriticalCount"), "{message}");

        let text = format!("{HEAD}    - name: image\n      op: regex\n      value: '(unclosed'\n");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].0, found[0].1), (10, 7), "the value key: {found:?}");
        assert!(found[0].2.starts_with("not a regular expression"), "{found:?}");

        let text = format!("{HEAD}    - {{ name: cvssScore, op: '>=', value: high }}\n");
        assert!(problems(&text)[0].2.contains("'high' is not a number"));
    }

    #[test]
    fn unknown_names_and_fields_are_parse_errors_with_a_place() {
        let found = problems(&format!("{HEAD}    - {{ name: imageIsShiny, op: '=' }}\n"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, 8, "{found:?}");
        assert!(found[0].2.contains("imageIsShiny"), "{found:?}");
        let found = problems(&format!("{HEAD}    - {{ name: privileged, op: '=' }}\n  colour: blue\n"));
        assert_eq!(found[0].0, 9, "{found:?}");
        assert!(found[0].2.contains("colour"), "{found:?}");
    }

    #[test]
    fn documents_are_checked_one_by_one() {
        let text = "apiVersion: v1\nkind: PicketAdmissionRule\n---\napiVersion: picket.dev/v1\nkind: ConfigMap\n---\napiVersion: picket.dev/v1\nkind: PicketAdmissionConfig\nmetadata: { name: c }\nspec:\n  scanDeadlineSeconds: 40\n---\napiVersion: picket.dev/v1\nkind: PicketAdmissionRule\nmetadata: { name: empty }\nspec:\n  type: deny\n  criteria: []\n";
        let found = problems(text);
        let lines: Vec<u64> = found.iter().map(|p| p.0).collect();
        assert_eq!(lines, [1, 5, 11, 18], "{found:?}");
        assert!(found[0].2.contains("apiVersion must be picket.dev/v1"));
        assert!(found[1].2.contains("not 'ConfigMap'"));
        assert!(found[2].2.contains("scanDeadlineSeconds must be 1 to 28"));
        assert!(found[3].2.contains("at least one criterion"));
    }

    #[test]
    fn a_second_config_and_a_repeated_name_are_refused_across_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rule = format!("{HEAD}    - {{ name: privileged, op: '=' }}\n");
        let config =
            "apiVersion: picket.dev/v1\nkind: PicketAdmissionConfig\nmetadata: { name: c }\nspec: { mode: monitor }\n";
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        std::fs::write(&a, format!("{config}---\n{rule}")).expect("a");
        std::fs::write(&b, format!("{rule}---\n{config}")).expect("b");
        let problems = load(&[a.clone(), b.clone()]).expect_err("two configs, one name twice");
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            messages.iter().any(|m| m.contains("a second PicketAdmissionConfig") && m.contains("a.yaml:1")),
            "{messages:?}"
        );
        assert!(messages.iter().any(|m| m.contains("a second rule named 'r'")), "{messages:?}");
        std::fs::write(&b, "").expect("b");
        let set = load(&[a, b]).expect("valid");
        assert_eq!(set.config.mode, AdmissionMode::Monitor);
        assert_eq!(set.rules[0].origin, format!("{}:6", dir.path().join("a.yaml").display()));
    }
}

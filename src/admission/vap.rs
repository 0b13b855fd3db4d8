//! `picket admission export --as vap`: the deny rules that need no scan data, as Kubernetes
//! ValidatingAdmissionPolicy objects (CEL) with one binding each, so that a cluster (v1.30 or
//! later) enforces them with no webhook at all.
//!
//! Each deny rule becomes one policy whose single validation is true unless the rule matches:
//! the same order as [`super::decide`], written out. A container that an exception matches is
//! judged by no deny rule; an exception on pod-level criteria only exempts the whole pod. The
//! binding carries the mode: `Deny` in protect mode, `Warn` and `Audit` in monitor mode. The
//! configuration's exempt namespaces are left out by the policy's namespace selector.
//!
//! What cannot be written in CEL is left out, each with the reason: rules on scan data (the
//! webhook's job), `violatesPss` (Kubernetes' own Pod Security Admission does that), and
//! exceptions on scan data (without them the deny rules would judge more strictly than the
//! webhook, so no deny rule is exported while such an exception is enabled).

use k8s_openapi::api::admissionregistration::v1::{
    MatchResources, NamedRuleWithOperations, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    ValidatingAdmissionPolicyBindingSpec, ValidatingAdmissionPolicySpec, Validation, Variable,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};

use super::criteria::{Compiled, PssLevel, Test, name_of};
use super::rules::{AdmissionMode, CriterionName, Operator, Rule, RuleSet, RuleType};
use super::workload::{KINDS, SECRET_NAME_PATTERN};

/// One exported rule: its policy and binding.
#[derive(Debug, Clone)]
pub struct Exported {
    pub rule: String,
    pub policy: ValidatingAdmissionPolicy,
    pub binding: ValidatingAdmissionPolicyBinding,
}

/// A rule left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftOut {
    pub rule: String,
    pub origin: String,
    pub why: String,
}

#[derive(Debug, Clone, Default)]
pub struct Export {
    pub exported: Vec<Exported>,
    pub left_out: Vec<LeftOut>,
}

/// `Ignore` or `Fail`: what the API server does when an expression cannot be evaluated.
pub fn export(rules: &RuleSet, failure_policy: &str) -> Export {
    let mut out = Export::default();
    let mut exceptions = Vec::new();
    let mut blocking_exception = None;
    for rule in rules.enabled(RuleType::Exception) {
        match Matcher::of(rule) {
            Ok(m) => exceptions.push(m),
            Err(why) => {
                blocking_exception.get_or_insert_with(|| rule.name.clone());
                out.left_out.push(LeftOut { rule: rule.name.clone(), origin: rule.origin.clone(), why });
            }
        }
    }
    for rule in rules.enabled(RuleType::Deny) {
        let left_out = |why: String| LeftOut { rule: rule.name.clone(), origin: rule.origin.clone(), why };
        if let Some(exception) = &blocking_exception {
            out.left_out.push(left_out(format!(
                "the exception \"{exception}\" cannot be written in CEL, and without it this rule would deny more than the webhook"
            )));
            continue;
        }
        match Matcher::of(rule) {
            Ok(matcher) => {
                let mode = rule.spec.mode.unwrap_or(rules.config.mode);
                out.exported.push(objects(rule, &matcher, &exceptions, mode, rules, failure_policy));
            }
            Err(why) => out.left_out.push(left_out(why)),
        }
    }
    out
}

/// A rule's criteria in CEL: the pod-level ones, and those on a container `c`.
struct Matcher {
    pod: Vec<String>,
    container: Vec<String>,
}

impl Matcher {
    fn of(rule: &Rule) -> Result<Self, String> {
        let mut pod = Vec::new();
        let mut container = Vec::new();
        for criterion in &rule.criteria {
            let cel = criterion_cel(criterion)?;
            if criterion.per_container() {
                container.push(cel);
            } else {
                pod.push(cel);
            }
        }
        Ok(Self { pod, container })
    }

    fn pod_holds(&self) -> String {
        all_of(&self.pod)
    }

    fn container_holds(&self) -> String {
        all_of(&self.container)
    }
}

fn all_of(parts: &[String]) -> String {
    if parts.is_empty() {
        "true".into()
    } else {
        parts.iter().map(|p| format!("({p})")).collect::<Vec<_>>().join(" && ")
    }
}

fn any_of(parts: &[String]) -> String {
    if parts.is_empty() {
        "false".into()
    } else {
        parts.iter().map(|p| format!("({p})")).collect::<Vec<_>>().join(" || ")
    }
}

/// The pod's containers are two lists of different types (ephemeral containers are their own),
/// so a test over containers is written once per list.
const LISTS: [&str; 2] = ["containers", "ephemeral"];

fn any_container(test: &str) -> String {
    any_of(&LISTS.map(|l| format!("variables.{l}.exists(c, {test})")))
}

fn every_container(test: &str) -> String {
    let count = LISTS.map(|l| format!("size(variables.{l})")).join(" + ");
    let all = LISTS.map(|l| format!("variables.{l}.all(c, {test})"));
    format!("({count}) > 0 && {}", all_of(&all))
}

/// The policy's validation: true unless the rule denies. `exempt(c)`: some exception matches
/// the container (pod-level criteria and, if it has any, container criteria on `c`).
fn validation(rule: &Matcher, exceptions: &[Matcher]) -> String {
    let exempt = any_of(&exceptions.iter().map(|e| all_of(&[e.pod_holds(), e.container_holds()])).collect::<Vec<_>>());
    let matches = if rule.container.is_empty() {
        format!("{} && !({})", rule.pod_holds(), every_container(&exempt))
    } else {
        format!("{} && ({})", rule.pod_holds(), any_container(&format!("({}) && !({exempt})", rule.container_holds())))
    };
    format!("!({matches})")
}

/// Variables every policy shares: the pod spec wherever the kind keeps it, its init and regular
/// containers in one list and its ephemeral containers in another, the pod's labels and
/// annotations (the template's, for a kind that has one).
fn variables() -> Vec<Variable> {
    let by_kind = |pod: &str, cron: &str, template: &str| {
        format!("object.kind == 'Pod' ? {pod} : (object.kind == 'CronJob' ? {cron} : {template})")
    };
    let meta_map = |field: &str| {
        let of = |base: &str| {
            format!("(has({base}.metadata) && has({base}.metadata.{field}) ? {base}.metadata.{field} : {{}})")
        };
        by_kind(&of("object"), &of("object.spec.jobTemplate.spec.template"), &of("object.spec.template"))
    };
    vec![
        Variable {
            name: "spec".into(),
            expression: by_kind("object.spec", "object.spec.jobTemplate.spec.template.spec", "object.spec.template.spec"),
        },
        Variable {
            name: "containers".into(),
            expression: "(has(variables.spec.initContainers) ? variables.spec.initContainers : []) + (has(variables.spec.containers) ? variables.spec.containers : [])".into(),
        },
        Variable {
            name: "ephemeral".into(),
            expression: "has(variables.spec.ephemeralContainers) ? variables.spec.ephemeralContainers : []".into(),
        },
        Variable { name: "labels".into(), expression: meta_map("labels") },
        Variable { name: "annotations".into(), expression: meta_map("annotations") },
    ]
}

/// A CEL string literal.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn list(values: &[String]) -> String {
    format!("[{}]", values.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", "))
}

/// The parts of the container's image reference, as `ImageReference::parse` reads them. A
/// registry's port comes before the first '/', so the last ':' after the last '/' of the part
/// before any '@' is the tag's.
mod image {
    pub const IMAGE: &str = "(has(c.image) ? c.image : '')";

    fn rest() -> String {
        format!("{IMAGE}.split('@')[0]")
    }

    /// The first part names a registry when it has a dot or a port, or is `localhost`.
    fn hosted() -> String {
        format!("{IMAGE}.matches('^([^/@]*[.:][^/@]*|localhost)/')")
    }

    pub fn registry() -> String {
        format!("({} ? {IMAGE}.split('/')[0] : 'docker.io')", hosted())
    }

    fn tagged() -> String {
        let rest = rest();
        format!("({rest}.lastIndexOf(':') > {rest}.lastIndexOf('/'))")
    }

    pub fn tag() -> String {
        let rest = rest();
        format!(
            "({} ? {rest}.substring({rest}.lastIndexOf(':') + 1) : ({IMAGE}.contains('@') ? '' : 'latest'))",
            tagged()
        )
    }

    pub fn repository() -> String {
        let rest = rest();
        let untagged = format!("({} ? {rest}.substring(0, {rest}.lastIndexOf(':')) : {rest})", tagged());
        let path = format!("({} ? {untagged}.substring({untagged}.indexOf('/') + 1) : {untagged})", hosted());
        format!(
            "((!{} || {IMAGE}.split('/')[0] == 'docker.io') && !{path}.contains('/') ? 'library/' + {path} : {path})",
            hosted()
        )
    }
}

fn text_test(op: Operator, actual: &str, values: &[String]) -> String {
    let each = |f: &dyn Fn(&String) -> String| values.iter().map(f).collect::<Vec<_>>();
    match op {
        Operator::Equals | Operator::In => format!("{actual} in {}", list(values)),
        Operator::NotEquals | Operator::NotIn => format!("!({actual} in {})", list(values)),
        Operator::Contains => any_of(&each(&|v| format!("{actual}.contains({})", quote(v)))),
        Operator::NotContains => format!("!({})", any_of(&each(&|v| format!("{actual}.contains({})", quote(v))))),
        Operator::Prefix => any_of(&each(&|v| format!("{actual}.startsWith({})", quote(v)))),
        Operator::Regex => any_of(&each(&|v| format!("{actual}.matches({})", quote(v)))),
        Operator::NotRegex => format!("!({})", any_of(&each(&|v| format!("{actual}.matches({})", quote(v))))),
        _ => "false".into(),
    }
}

fn has_path(base: &str, fields: &[&str]) -> String {
    let mut parts = Vec::new();
    let mut at = base.to_string();
    for f in fields {
        parts.push(format!("has({at}.{f})"));
        at = format!("{at}.{f}");
    }
    parts.join(" && ")
}

/// A boolean field of the container's securityContext, set to `value`.
fn security_is(field: &str, value: bool) -> String {
    format!("({} && c.securityContext.{field} == {value})", has_path("c", &["securityContext", field]))
}

/// The criterion in CEL (about container `c` where it is per container), or why it cannot be.
fn criterion_cel(criterion: &Compiled) -> Result<String, String> {
    use CriterionName::*;
    let name = name_of(criterion.name);
    if criterion.name == RiskyServiceAccount {
        return Err("riskyServiceAccount reads the cluster's RBAC, which a policy's CEL cannot".into());
    }
    if criterion.needs_scan() {
        return Err(format!("{name} needs the image's scan, which only the webhook has"));
    }
    let condition = match (criterion.test(), criterion.name) {
        (Test::Text { values, .. }, which) => {
            let actual = match which {
                Namespace => "(has(object.metadata.namespace) && object.metadata.namespace != '' ? object.metadata.namespace : request.namespace)".to_string(),
                ServiceAccount => "(has(variables.spec.serviceAccountName) && variables.spec.serviceAccountName != '' ? variables.spec.serviceAccountName : 'default')".to_string(),
                User => "request.userInfo.username".to_string(),
                Image => image::IMAGE.to_string(),
                ImageRegistry => image::registry(),
                ImageRepository => image::repository(),
                ImageTag => image::tag(),
                _ => return Err(format!("{name} has no CEL form")),
            };
            text_test(criterion.op, &actual, values)
        }
        (Test::Flag(want), which) => {
            let holds = match which {
                HostPID | HostIPC | HostNetwork => {
                    let field = match which {
                        HostPID => "hostPID",
                        HostIPC => "hostIPC",
                        _ => "hostNetwork",
                    };
                    format!("(has(variables.spec.{field}) && variables.spec.{field} == true)")
                }
                Privileged => security_is("privileged", true),
                AllowPrivilegeEscalation => format!("!{}", security_is("allowPrivilegeEscalation", false)),
                RunAsRoot => {
                    // The container's setting wins over the pod's; a set runAsUser decides alone.
                    let own = |f: &str| has_path("c", &["securityContext", f]);
                    let pods = |f: &str| has_path("variables.spec", &["securityContext", f]);
                    let user = format!(
                        "({} ? int(c.securityContext.runAsUser) : int(variables.spec.securityContext.runAsUser))",
                        own("runAsUser")
                    );
                    let non_root = format!(
                        "({} ? c.securityContext.runAsNonRoot == true : ({} && variables.spec.securityContext.runAsNonRoot == true))",
                        own("runAsNonRoot"),
                        pods("runAsNonRoot")
                    );
                    format!("(({} || {}) ? {user} == 0 : !{non_root})", own("runAsUser"), pods("runAsUser"))
                }
                EnvSecrets => format!(
                    "(has(c.env) && c.env.exists(e, has(e.value) && e.value.trim() != '' && e.name.lowerAscii().matches({})))",
                    quote(SECRET_NAME_PATTERN)
                ),
                NoResourceLimits => "!(has(c.resources) && has(c.resources.limits) && 'cpu' in c.resources.limits && 'memory' in c.resources.limits)".to_string(),
                _ => return Err(format!("{name} has no CEL form")),
            };
            if *want { holds } else { format!("!{holds}") }
        }
        (Test::Set(items), which) => {
            let has_item = |(key, value): &(String, Option<String>)| -> String {
                match which {
                    Labels | Annotations => {
                        let map = if which == Labels { "variables.labels" } else { "variables.annotations" };
                        match value {
                            Some(v) => format!("({k} in {map} && {map}[{k}] == {v})", k = quote(key), v = quote(v)),
                            None => format!("{} in {map}", quote(key)),
                        }
                    }
                    // Groups carry no values: `group=value` never matches, as in the webhook.
                    _ => match value {
                        Some(_) => "false".into(),
                        None => format!("(has(request.userInfo.groups) && {} in request.userInfo.groups)", quote(key)),
                    },
                }
            };
            if !matches!(which, Labels | Annotations | UserGroups) {
                return Err(format!("{name} has no CEL form"));
            }
            let each: Vec<String> = items.iter().map(has_item).collect();
            match criterion.op {
                Operator::ContainsAny => any_of(&each),
                Operator::ContainsAll => all_of(&each),
                Operator::NotContainsAny => format!("!({})", any_of(&each)),
                Operator::MissingAny => format!("!({})", all_of(&each)),
                _ => return Err(format!("{name} {} has no CEL form", criterion.op.as_str())),
            }
        }
        (Test::Pss(level), _) => {
            let level = if *level == PssLevel::Baseline { "baseline" } else { "restricted" };
            return Err(format!(
                "violatesPss is Kubernetes' own Pod Security Admission: label the namespaces pod-security.kubernetes.io/enforce={level}"
            ));
        }
        (Test::Number(_), _) => return Err(format!("{name} has no CEL form")),
    };
    Ok(condition)
}

/// `picket-` and the rule's name as an object name (lower-case letters, digits, '-' and '.').
pub fn object_name(rule: &str) -> String {
    let mut name: String = rule
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
        .collect();
    name = name.trim_matches(|c: char| c == '-' || c == '.').to_string();
    let mut full = format!("picket-{name}");
    full.truncate(253);
    full.trim_end_matches(['-', '.']).to_string()
}

fn objects(
    rule: &Rule,
    matcher: &Matcher,
    exceptions: &[Matcher],
    mode: AdmissionMode,
    rules: &RuleSet,
    failure_policy: &str,
) -> Exported {
    let name = object_name(&rule.name);
    let labels = Some([("app.kubernetes.io/managed-by".to_string(), "picket".to_string())].into());
    let resource_rules = KINDS
        .iter()
        .map(|(group, version, resource)| NamedRuleWithOperations {
            api_groups: Some(vec![group.to_string()]),
            api_versions: Some(vec![version.to_string()]),
            operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
            resources: Some(vec![resource.to_string()]),
            ..Default::default()
        })
        .collect();
    let namespace_selector = (!rules.config.exempt_namespaces.is_empty()).then(|| LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".into(),
            operator: "NotIn".into(),
            values: Some(rules.config.exempt_namespaces.clone()),
        }]),
        ..Default::default()
    });
    let told = rule.spec.message.clone().unwrap_or_else(|| {
        rule.spec
            .criteria
            .iter()
            .map(|c| {
                let value = c.value.as_ref().map(|v| v.items().join(", ")).unwrap_or_else(|| "true".into());
                format!("{} {} {value}", name_of(c.name), c.op.as_str())
            })
            .collect::<Vec<_>>()
            .join(", ")
    });
    let policy = ValidatingAdmissionPolicy {
        metadata: ObjectMeta { name: Some(name.clone()), labels: labels.clone(), ..Default::default() },
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some(failure_policy.to_string()),
            match_constraints: Some(MatchResources {
                resource_rules: Some(resource_rules),
                namespace_selector,
                ..Default::default()
            }),
            variables: Some(variables()),
            validations: Some(vec![Validation {
                expression: validation(matcher, exceptions),
                message: Some(format!("picket rule \"{}\" ({}): {told}", rule.name, rule.origin)),
                reason: Some("Forbidden".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    };
    let actions = match mode {
        AdmissionMode::Protect => vec!["Deny".to_string()],
        AdmissionMode::Monitor => vec!["Warn".to_string(), "Audit".to_string()],
    };
    let binding = ValidatingAdmissionPolicyBinding {
        metadata: ObjectMeta { name: Some(name.clone()), labels, ..Default::default() },
        spec: ValidatingAdmissionPolicyBindingSpec {
            policy_name: name,
            validation_actions: actions,
            ..Default::default()
        },
    };
    Exported { rule: rule.name.clone(), policy, binding }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted_and_names_made_valid() {
        assert_eq!(quote(r"it's a \d"), r"'it\'s a \\d'");
        assert_eq!(quote("a\nb\u{1}"), "'a\\nb\\u0001'");
        assert_eq!(object_name("No_Privileged!"), "picket-no-privileged");
        assert_eq!(object_name("x".repeat(300).as_str()).len(), 253);
    }
}

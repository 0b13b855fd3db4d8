//! Criteria: checked once when rules load (operator fits the criterion, value parses, regexes
//! compile), then evaluated against a request's pod and each of its containers. A criterion
//! that holds says why, in words the denial message shows.

use regex::Regex;

use super::images::{ImageScan, ScanFacts};
use super::rules::{CriterionName, CriterionSpec, Operator};
use super::workload::{Admitted, AdmittedContainer};
use crate::model::Severity;
use crate::registry::reference::ImageReference;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PssLevel {
    Baseline,
    Restricted,
}

#[derive(Debug, Clone)]
pub(super) enum Test {
    Text { values: Vec<String>, regexes: Vec<Regex> },
    Number(f64),
    Flag(bool),
    Set(Vec<(String, Option<String>)>),
    Pss(PssLevel),
}

/// A criterion ready to evaluate.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub name: CriterionName,
    pub op: Operator,
    test: Test,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Text,
    Number,
    Flag,
    Set,
    Pss,
}

fn class(name: CriterionName) -> Class {
    use CriterionName::*;
    match name {
        Namespace | Image | ImageRegistry | ImageRepository | ImageTag | ServiceAccount | User => Class::Text,
        ImageScanAgeDays
        | CveCriticalCount
        | CveHighCount
        | CveMediumCount
        | CveCriticalWithFixCount
        | CveHighWithFixCount
        | CveMediumWithFixCount
        | CvssScore => Class::Number,
        ImageScanned
        | RunAsRoot
        | Privileged
        | HostPID
        | HostIPC
        | HostNetwork
        | AllowPrivilegeEscalation
        | EnvSecrets
        | NoResourceLimits
        | RiskyServiceAccount => Class::Flag,
        Labels | Annotations | CveNames | UserGroups => Class::Set,
        ViolatesPss => Class::Pss,
    }
}

fn operators(class: Class) -> &'static [Operator] {
    use Operator::*;
    match class {
        Class::Text => &[Equals, NotEquals, In, NotIn, Contains, NotContains, Prefix, Regex, NotRegex],
        Class::Number => &[Equals, NotEquals, AtLeast, Above, AtMost, Below],
        Class::Flag | Class::Pss => &[Equals],
        Class::Set => &[ContainsAny, ContainsAll, NotContainsAny, MissingAny],
    }
}

/// Checks a criterion; on a mistake, the field it is in (`op`, `value`) and what is wrong.
pub fn compile(spec: &CriterionSpec) -> Result<Compiled, (&'static str, String)> {
    let class = class(spec.name);
    let allowed = operators(class);
    if !allowed.contains(&spec.op) {
        let names: Vec<&str> = allowed.iter().map(|o| o.as_str()).collect();
        return Err((
            "op",
            format!(
                "'{}' does not apply to {}; use one of: {}",
                spec.op.as_str(),
                name_of(spec.name),
                names.join(", ")
            ),
        ));
    }
    let items = spec.value.as_ref().map(|v| v.items()).unwrap_or_default();
    let test = match class {
        Class::Text => {
            if items.is_empty() {
                return Err(("value", format!("{} {} needs a value", name_of(spec.name), spec.op.as_str())));
            }
            let regexes = if matches!(spec.op, Operator::Regex | Operator::NotRegex) {
                items
                    .iter()
                    .map(|p| Regex::new(p).map_err(|e| ("value", format!("not a regular expression: {e}"))))
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                Vec::new()
            };
            Test::Text { values: items, regexes }
        }
        Class::Number => {
            let [one] = items.as_slice() else {
                return Err(("value", format!("{} needs one number", name_of(spec.name))));
            };
            let n: f64 = one.parse().map_err(|_| ("value", format!("'{one}' is not a number")))?;
            if !n.is_finite() || n < 0.0 {
                return Err(("value", format!("'{one}' is not a count, score or age")));
            }
            Test::Number(n)
        }
        Class::Flag => match items.as_slice() {
            [] => Test::Flag(true),
            [one] if one == "true" => Test::Flag(true),
            [one] if one == "false" => Test::Flag(false),
            _ => return Err(("value", format!("{} takes true or false", name_of(spec.name)))),
        },
        Class::Set => {
            if items.is_empty() {
                return Err(("value", format!("{} {} needs a list", name_of(spec.name), spec.op.as_str())));
            }
            Test::Set(
                items
                    .iter()
                    .map(|i| match i.split_once('=') {
                        Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
                        None => (i.trim().to_string(), None),
                    })
                    .collect(),
            )
        }
        Class::Pss => match items.as_slice() {
            [one] if one == "baseline" => Test::Pss(PssLevel::Baseline),
            [one] if one == "restricted" => Test::Pss(PssLevel::Restricted),
            _ => return Err(("value", "violatesPss takes baseline or restricted".into())),
        },
    };
    Ok(Compiled { name: spec.name, op: spec.op, test })
}

/// The criterion's name as written in rules.
pub fn name_of(name: CriterionName) -> String {
    serde_json::to_value(name).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// The pod-level facts of a request, computed once.
pub struct PodFacts<'a> {
    pub admitted: &'a Admitted,
    pub user: &'a str,
    pub groups: &'a [String],
    /// The risky grants of the pod's service account; None when RBAC is not known.
    pub risky_grants: Option<&'a [String]>,
    /// Pod Security Standards violations per level (restricted includes baseline's).
    pub pss_baseline: Vec<String>,
    pub pss_restricted: Vec<String>,
}

impl<'a> PodFacts<'a> {
    pub fn new(admitted: &'a Admitted, requester: &'a super::decide::Requester) -> Self {
        let (user, groups) = (requester.user.as_str(), requester.groups.as_slice());
        let workload = admitted.workload();
        let baseline = crate::bench::k8s::pss_violations(&workload, false);
        let restricted = crate::bench::k8s::pss_violations(&workload, true);
        Self {
            admitted,
            user,
            groups,
            risky_grants: requester.risky_grants.as_deref(),
            pss_baseline: baseline,
            pss_restricted: restricted,
        }
    }
}

/// One container and its image's scan.
pub struct ContainerFacts<'a> {
    pub container: &'a AdmittedContainer,
    pub reference: Option<ImageReference>,
    pub scan: &'a ImageScan,
}

impl Compiled {
    /// What the criterion compares against (for the CEL export).
    pub(super) fn test(&self) -> &Test {
        &self.test
    }

    /// Whether the criterion is about a container (else about the pod or the request).
    pub fn per_container(&self) -> bool {
        use CriterionName::*;
        !matches!(
            self.name,
            Namespace
                | HostPID
                | HostIPC
                | HostNetwork
                | ViolatesPss
                | Labels
                | Annotations
                | ServiceAccount
                | RiskyServiceAccount
                | User
                | UserGroups
        )
    }

    pub fn needs_scan(&self) -> bool {
        use CriterionName::*;
        matches!(
            self.name,
            ImageScanned
                | ImageScanAgeDays
                | CveCriticalCount
                | CveHighCount
                | CveMediumCount
                | CveCriticalWithFixCount
                | CveHighWithFixCount
                | CveMediumWithFixCount
                | CveNames
                | CvssScore
        )
    }

    /// Why the criterion holds for the pod (and `container`, for a per-container criterion), or
    /// None. A criterion on scan data never holds for an image without a scan.
    pub fn holds(&self, pod: &PodFacts, container: Option<&ContainerFacts>) -> Option<String> {
        use CriterionName::*;
        let name = name_of(self.name);
        let spec = &pod.admitted.spec;
        match (&self.test, container) {
            (Test::Text { values, regexes }, _) => {
                let actual = match self.name {
                    Namespace => pod.admitted.namespace.clone(),
                    ServiceAccount => pod.admitted.service_account(),
                    User => pod.user.to_string(),
                    Image => container?.container.image.clone(),
                    ImageRegistry => container?.reference.as_ref()?.registry.clone(),
                    ImageRepository => container?.reference.as_ref()?.repository.clone(),
                    ImageTag => {
                        let r = container?.reference.as_ref()?;
                        match (&r.tag, &r.digest) {
                            (Some(tag), _) => tag.clone(),
                            (None, Some(_)) => String::new(),
                            (None, None) => "latest".into(),
                        }
                    }
                    _ => return None,
                };
                text_holds(self.op, &actual, values, regexes).then(|| format!("{name} is '{actual}'"))
            }
            (Test::Number(limit), _) => {
                let scan = container?.scan.facts()?;
                let (actual, unit) = number(self.name, scan)?;
                compare(self.op, actual, *limit)
                    .then(|| format!("{name} is {} ({} {})", fmt_number(actual), self.op.as_str(), fmt_number(*limit)))
                    .map(|why| if unit.is_empty() { why } else { format!("{why}; {unit}") })
            }
            (Test::Flag(want), _) => {
                let why: Option<String> = match self.name {
                    HostPID => spec.host_pid.filter(|h| *h).map(|_| "hostPID is true".into()),
                    HostIPC => spec.host_ipc.filter(|h| *h).map(|_| "hostIPC is true".into()),
                    HostNetwork => spec.host_network.filter(|h| *h).map(|_| "hostNetwork is true".into()),
                    // Unknown RBAC judges nothing either way (the decision warns).
                    RiskyServiceAccount => match pod.risky_grants {
                        None => return None,
                        Some([]) => None,
                        Some(grants) => Some(format!(
                            "service account {} is granted {}",
                            pod.admitted.service_account(),
                            grants.join("; ")
                        )),
                    },
                    ImageScanned => match container?.scan {
                        ImageScan::Scanned(facts) => Some(format!("the image was scanned at {}", facts.scanned_at)),
                        _ => None,
                    },
                    Privileged => container?.container.privileged().then(|| "privileged is true".into()),
                    RunAsRoot => container?.container.runs_as_root(spec),
                    AllowPrivilegeEscalation => container?.container.allows_privilege_escalation(),
                    EnvSecrets => {
                        let names = container?.container.env_secrets();
                        (!names.is_empty()).then(|| format!("plain values in secret-looking env {}", names.join(", ")))
                    }
                    NoResourceLimits => {
                        let missing = container?.container.missing_limits();
                        (!missing.is_empty()).then(|| format!("no {} limit", missing.join(" or ")))
                    }
                    _ => return None,
                };
                match (why, want) {
                    (Some(why), true) => Some(why),
                    (None, false) => {
                        // A flag about the image's scan is false only for an image with none.
                        if self.name == ImageScanned {
                            Some(format!("the image {} has no stored scan", container?.container.image))
                        } else {
                            Some(format!("{name} is false"))
                        }
                    }
                    _ => None,
                }
            }
            (Test::Set(items), _) => {
                let actual: Vec<(String, Option<String>)> = match self.name {
                    Labels => pod.admitted.labels().into_iter().map(|(k, v)| (k, Some(v))).collect(),
                    Annotations => pod.admitted.annotations().into_iter().map(|(k, v)| (k, Some(v))).collect(),
                    UserGroups => pod.groups.iter().map(|g| (g.clone(), None)).collect(),
                    CveNames => container?
                        .scan
                        .facts()?
                        .vulnerabilities
                        .iter()
                        .flat_map(|v| std::iter::once(&v.id).chain(&v.aliases))
                        .map(|id| (id.clone(), None))
                        .collect(),
                    _ => return None,
                };
                let has = |(key, value): &(String, Option<String>)| {
                    actual.iter().any(|(k, v)| k == key && value.as_ref().is_none_or(|want| v.as_ref() == Some(want)))
                };
                let show = |(k, v): &(String, Option<String>)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                };
                let present: Vec<String> = items.iter().filter(|i| has(i)).map(show).collect();
                let missing: Vec<String> = items.iter().filter(|i| !has(i)).map(show).collect();
                match self.op {
                    Operator::ContainsAny => {
                        (!present.is_empty()).then(|| format!("{name} has {}", present.join(", ")))
                    }
                    Operator::ContainsAll => missing.is_empty().then(|| format!("{name} has {}", present.join(", "))),
                    Operator::NotContainsAny => {
                        present.is_empty().then(|| format!("{name} has none of {}", missing.join(", ")))
                    }
                    Operator::MissingAny => {
                        (!missing.is_empty()).then(|| format!("{name} lacks {}", missing.join(", ")))
                    }
                    _ => None,
                }
            }
            (Test::Pss(level), _) => {
                let found = match level {
                    PssLevel::Baseline => &pod.pss_baseline,
                    PssLevel::Restricted => &pod.pss_restricted,
                };
                let level = if *level == PssLevel::Baseline { "baseline" } else { "restricted" };
                (!found.is_empty()).then(|| format!("fails Pod Security Standards {level}: {}", found.join("; ")))
            }
        }
    }
}

fn text_holds(op: Operator, actual: &str, values: &[String], regexes: &[Regex]) -> bool {
    match op {
        Operator::Equals => values.iter().any(|v| v == actual),
        Operator::NotEquals => values.iter().all(|v| v != actual),
        Operator::In => values.iter().any(|v| v == actual),
        Operator::NotIn => values.iter().all(|v| v != actual),
        Operator::Contains => values.iter().any(|v| actual.contains(v.as_str())),
        Operator::NotContains => values.iter().all(|v| !actual.contains(v.as_str())),
        Operator::Prefix => values.iter().any(|v| actual.starts_with(v.as_str())),
        Operator::Regex => regexes.iter().any(|r| r.is_match(actual)),
        Operator::NotRegex => regexes.iter().all(|r| !r.is_match(actual)),
        _ => false,
    }
}

fn compare(op: Operator, actual: f64, limit: f64) -> bool {
    match op {
        Operator::Equals => actual == limit,
        Operator::NotEquals => actual != limit,
        Operator::AtLeast => actual >= limit,
        Operator::Above => actual > limit,
        Operator::AtMost => actual <= limit,
        Operator::Below => actual < limit,
        _ => false,
    }
}

fn fmt_number(n: f64) -> String {
    if n.fract() == 0.0 { format!("{n:.0}") } else { format!("{n:.1}") }
}

/// The number a criterion reads from a scan, and the ids behind it (for the message).
fn number(name: CriterionName, scan: &ScanFacts) -> Option<(f64, String)> {
    use CriterionName::*;
    let counted = |severity: Severity, with_fix: bool| {
        let ids: Vec<&str> = scan
            .vulnerabilities
            .iter()
            .filter(|v| v.severity == severity && (!with_fix || v.has_fix))
            .map(|v| v.id.as_str())
            .collect();
        let shown = ids.iter().take(5).copied().collect::<Vec<_>>().join(", ");
        let more = if ids.len() > 5 { format!(" and {} more", ids.len() - 5) } else { String::new() };
        (ids.len() as f64, if ids.is_empty() { String::new() } else { format!("{shown}{more}") })
    };
    Some(match name {
        CveCriticalCount => counted(Severity::Critical, false),
        CveHighCount => counted(Severity::High, false),
        CveMediumCount => counted(Severity::Medium, false),
        CveCriticalWithFixCount => counted(Severity::Critical, true),
        CveHighWithFixCount => counted(Severity::High, true),
        CveMediumWithFixCount => counted(Severity::Medium, true),
        CvssScore => {
            let top = scan
                .vulnerabilities
                .iter()
                .filter_map(|v| v.cvss.map(|s| (s, v.id.as_str())))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            match top {
                Some((score, id)) => (score, id.to_string()),
                None => (0.0, String::new()),
            }
        }
        ImageScanAgeDays => {
            let age = jiff::Timestamp::now().duration_since(scan.scanned_at);
            (age.as_secs_f64() / 86_400.0, String::new())
        }
        _ => return None,
    })
}

//! The decision: pure, from the rules, the object and what is known of its images. The webhook
//! and `picket admission test` both call [`decide`], so they never disagree.
//!
//! Order: an exempt namespace is allowed at once; then exceptions (a container an exception
//! matches is judged by no deny rule; an exception on pod-level criteria only exempts the whole
//! pod); then every deny rule, each on every container not exempt. A match in protect mode
//! denies; in monitor mode it becomes a warning. Images without a scan are handled as the
//! configuration says, when some rule needs scan data.

use serde::Serialize;

use super::criteria::{ContainerFacts, PodFacts};
use super::images::{ImageScan, ImageScans};
use super::rules::{AdmissionMode, Rule, RuleSet, RuleType, TimeoutAction, UnscannedAction};
use super::workload::Admitted;
use crate::registry::reference::ImageReference;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allowed,
    Warned,
    Denied,
    /// The namespace is exempt: nothing was judged.
    Exempt,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Warned => "warned",
            Self::Denied => "denied",
            Self::Exempt => "exempt",
        }
    }
}

/// A rule that matched, where, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleMatch {
    pub rule: String,
    /// `rules.yaml:12`, `PicketAdmissionRule/name`, or `config` for the unscanned-image action.
    pub origin: String,
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The container's field path (`spec.template.spec.containers[0]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RuleMatch {
    /// `rule "no-privileged" (rules.yaml:12): container app (spec.containers[0]): privileged is true`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(message) = &self.message {
            out.push_str(message);
            out.push_str(": ");
        }
        out.push_str(&format!("rule \"{}\" ({})", self.rule, self.origin));
        if let (Some(container), Some(field)) = (&self.container, &self.field) {
            out.push_str(&format!(": container {container} ({field})"));
        }
        out.push_str(": ");
        out.push_str(&self.why);
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// `Deployment payments/api`.
    pub subject: String,
    /// What the user is told: the denial, or `allowed`.
    pub message: String,
    pub warnings: Vec<String>,
    pub denials: Vec<RuleMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub monitored: Vec<RuleMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<RuleMatch>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.verdict != Verdict::Denied
    }
}

/// The request's facts beside the object.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    pub user: String,
    pub groups: Vec<String>,
}

/// Decides on one object. `own_namespace` is the webhook's namespace, never judged.
pub fn decide(
    rules: &RuleSet,
    admitted: &Admitted,
    requester: &Requester,
    scans: &ImageScans,
    own_namespace: Option<&str>,
) -> Decision {
    let subject = admitted.subject();
    let exempt = rules.config.exempt_namespaces.iter().any(|n| n == &admitted.namespace)
        || own_namespace.is_some_and(|own| own == admitted.namespace);
    if exempt {
        return Decision {
            verdict: Verdict::Exempt,
            message: format!("namespace {} is exempt", admitted.namespace),
            subject,
            warnings: Vec::new(),
            denials: Vec::new(),
            monitored: Vec::new(),
            exceptions: Vec::new(),
        };
    }
    let pod = PodFacts::new(admitted, &requester.user, &requester.groups);
    let containers = admitted.containers();
    let not_scanned = ImageScan::NotScanned;
    let facts: Vec<ContainerFacts> = containers
        .iter()
        .map(|c| ContainerFacts {
            container: c,
            reference: ImageReference::parse(&c.image).ok(),
            scan: scans.get(&c.image).unwrap_or(&not_scanned),
        })
        .collect();

    let mut exempt_containers = vec![false; facts.len()];
    let mut exceptions = Vec::new();
    for rule in rules.enabled(RuleType::Exception) {
        for hit in matches(rule, &pod, &facts) {
            match hit.index {
                Some(i) => exempt_containers[i] = true,
                None => exempt_containers.iter_mut().for_each(|e| *e = true),
            }
            exceptions.push(rule_match(rule, rules.config.mode, &facts, hit));
        }
    }
    let whole_pod_exempt = !facts.is_empty() && exempt_containers.iter().all(|e| *e);

    let mut found = Vec::new();
    for rule in rules.enabled(RuleType::Deny) {
        for hit in matches(rule, &pod, &facts) {
            let skip = match hit.index {
                Some(i) => exempt_containers[i],
                None => whole_pod_exempt,
            };
            if !skip {
                found.push(rule_match(rule, rules.config.mode, &facts, hit));
            }
        }
    }
    if rules.enabled(RuleType::Deny).any(Rule::needs_scan) {
        found.extend(unscanned(rules, &facts, &exempt_containers));
    }

    let (denials, monitored): (Vec<RuleMatch>, Vec<RuleMatch>) =
        found.into_iter().partition(|m| m.mode == AdmissionMode::Protect.as_str());
    let mut warnings: Vec<String> =
        monitored.iter().map(|m| format!("picket (monitor mode) would deny {subject}: {}", m.describe())).collect();
    for f in &facts {
        if let ImageScan::TimedOut { seconds } = f.scan
            && rules.config.on_scan_timeout == TimeoutAction::Allow
        {
            warnings
                .push(format!("picket: image {} could not be scanned within {seconds} s; allowed", f.container.image));
        }
        if let ImageScan::Failed(why) = f.scan {
            warnings.push(format!("picket: image {} could not be scanned: {why}", f.container.image));
        }
    }
    let verdict = if !denials.is_empty() {
        Verdict::Denied
    } else if !warnings.is_empty() {
        Verdict::Warned
    } else {
        Verdict::Allowed
    };
    let message = match verdict {
        Verdict::Denied => format!(
            "picket denied {subject}: {}",
            denials.iter().map(RuleMatch::describe).collect::<Vec<_>>().join("; ")
        ),
        _ => "allowed".into(),
    };
    Decision { verdict, subject, message, warnings, denials, monitored, exceptions }
}

/// A rule's hit: on one container (its index), or on the pod.
struct Hit {
    index: Option<usize>,
    why: Vec<String>,
}

fn matches(rule: &Rule, pod: &PodFacts, facts: &[ContainerFacts]) -> Vec<Hit> {
    let (per_container, per_pod): (Vec<_>, Vec<_>) = rule.criteria.iter().partition(|c| c.per_container());
    let mut pod_why = Vec::new();
    for criterion in &per_pod {
        match criterion.holds(pod, None) {
            Some(why) => pod_why.push(why),
            None => return Vec::new(),
        }
    }
    if per_container.is_empty() {
        return vec![Hit { index: None, why: pod_why }];
    }
    facts
        .iter()
        .enumerate()
        .filter_map(|(index, container)| {
            let mut why = pod_why.clone();
            for criterion in &per_container {
                why.push(criterion.holds(pod, Some(container))?);
            }
            Some(Hit { index: Some(index), why })
        })
        .collect()
}

fn rule_match(rule: &Rule, default_mode: AdmissionMode, facts: &[ContainerFacts], hit: Hit) -> RuleMatch {
    let container = hit.index.and_then(|i| facts.get(i)).map(|f| f.container);
    RuleMatch {
        rule: rule.name.clone(),
        origin: rule.origin.clone(),
        mode: rule.spec.mode.unwrap_or(default_mode).as_str(),
        container: container.map(|c| c.name.clone()),
        field: container.map(|c| c.path.clone()),
        why: hit.why.join(", "),
        message: rule.spec.message.clone(),
    }
}

/// The configuration's answer for images without a scan, once per container not exempt.
fn unscanned(rules: &RuleSet, facts: &[ContainerFacts], exempt: &[bool]) -> Vec<RuleMatch> {
    let config = &rules.config;
    let deny_unscanned = config.unscanned == UnscannedAction::Deny;
    facts
        .iter()
        .zip(exempt)
        .filter(|(_, exempt)| !**exempt)
        .filter_map(|(f, _)| {
            let why = match f.scan {
                ImageScan::NotScanned if deny_unscanned || config.unscanned == UnscannedAction::Scan => {
                    format!("image {} has never been scanned, and rules need its scan", f.container.image)
                }
                ImageScan::Failed(why) if deny_unscanned || config.unscanned == UnscannedAction::Scan => {
                    format!("image {} could not be scanned: {why}", f.container.image)
                }
                ImageScan::TimedOut { seconds } if config.on_scan_timeout == TimeoutAction::Deny => {
                    format!("image {} could not be scanned within {seconds} s", f.container.image)
                }
                _ => return None,
            };
            Some(RuleMatch {
                rule: "unscanned-image".into(),
                origin: "config".into(),
                mode: config.mode.as_str(),
                container: Some(f.container.name.clone()),
                field: Some(f.container.path.clone()),
                why,
                message: None,
            })
        })
        .collect()
}

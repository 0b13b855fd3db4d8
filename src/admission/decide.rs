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
use super::rules::{AdmissionMode, CriterionName, Rule, RuleSet, RuleType, TimeoutAction, UnscannedAction};
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
    /// What the cluster's RBAC grants the pod's service account that is risky (filled in by
    /// the judge for rules that ask); None when RBAC is not known.
    pub risky_grants: Option<Vec<String>>,
}

impl Requester {
    pub fn new(user: &str, groups: Vec<String>) -> Self {
        Self { user: user.to_string(), groups, risky_grants: None }
    }
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
    let pod = PodFacts::new(admitted, requester);
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
    let needed: Vec<bool> = facts.iter().map(|f| scan_needed(rules, &pod, f)).collect();
    found.extend(unscanned(rules, &facts, &exempt_containers, &needed));

    let (denials, monitored): (Vec<RuleMatch>, Vec<RuleMatch>) =
        found.into_iter().partition(|m| m.mode == AdmissionMode::Protect.as_str());
    let mut warnings: Vec<String> =
        monitored.iter().map(|m| format!("picket (monitor mode) would deny {subject}: {}", m.describe())).collect();
    for f in facts.iter().zip(&needed).filter(|(_, needed)| **needed).map(|(f, _)| f) {
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
    if requester.risky_grants.is_none() && rules.uses(CriterionName::RiskyServiceAccount) {
        warnings.push("picket: the cluster's RBAC is not known, so riskyServiceAccount judged nothing".into());
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

/// Whether a deny rule needs this container's scan: a rule on scan data whose other criteria
/// all hold for it (an image no such rule could judge is never looked up, nor scanned).
fn scan_needed(rules: &RuleSet, pod: &PodFacts, container: &ContainerFacts) -> bool {
    rules.enabled(RuleType::Deny).filter(|r| r.needs_scan()).any(|rule| {
        rule.criteria.iter().filter(|c| !c.needs_scan()).all(|c| {
            let on = if c.per_container() { Some(container) } else { None };
            c.holds(pod, on).is_some()
        })
    })
}

/// The images of an object whose scans the decision will read.
pub fn images_to_look_up(rules: &RuleSet, admitted: &Admitted, requester: &Requester) -> Vec<String> {
    if !rules.needs_scan() {
        return Vec::new();
    }
    let pod = PodFacts::new(admitted, requester);
    let none = ImageScan::NotScanned;
    let mut out: Vec<String> = Vec::new();
    for c in admitted.containers() {
        let facts = ContainerFacts { container: &c, reference: ImageReference::parse(&c.image).ok(), scan: &none };
        if !out.contains(&c.image) && scan_needed(rules, &pod, &facts) {
            out.push(c.image.clone());
        }
    }
    out
}

/// The configuration's answer for images without a scan, once per container not exempt
/// whose scan a rule needs.
fn unscanned(rules: &RuleSet, facts: &[ContainerFacts], exempt: &[bool], needed: &[bool]) -> Vec<RuleMatch> {
    let config = &rules.config;
    let deny_unscanned = config.unscanned == UnscannedAction::Deny;
    facts
        .iter()
        .zip(exempt.iter().zip(needed))
        .filter(|(_, (exempt, needed))| !**exempt && **needed)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::admission::images::{ScanFacts, VulnFacts};
    use crate::model::Severity;

    fn rules(text: &str) -> RuleSet {
        let (rules, config, problems) = crate::admission::rules::parse_text(std::path::Path::new("r.yaml"), text);
        assert!(problems.is_empty(), "{problems:?}");
        RuleSet { rules, config: config.map(|(_, c)| c).unwrap_or_default() }
    }

    fn rule(name: &str, kind: &str, extra: &str, criteria: &str) -> String {
        format!(
            "---\napiVersion: picket.dev/v1\nkind: PicketAdmissionRule\nmetadata:\n  name: {name}\nspec:\n  type: {kind}\n{extra}  criteria:\n{criteria}"
        )
    }

    fn pod(namespace: &str, labels: serde_json::Value, containers: serde_json::Value) -> Admitted {
        let object = json!({ "kind": "Pod", "metadata": { "name": "p", "namespace": namespace, "labels": labels },
                             "spec": { "containers": containers } });
        Admitted::from_object(&object, namespace).expect("reads").expect("a pod")
    }

    fn scanned(vulns: &[(&str, Severity, bool, Option<f64>)], days_old: i64) -> ImageScan {
        ImageScan::Scanned(Arc::new(ScanFacts {
            sbom_key: "sha256:1".into(),
            scanned_at: jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days_old),
            vulnerabilities: vulns
                .iter()
                .map(|(id, severity, has_fix, cvss)| VulnFacts {
                    id: id.to_string(),
                    aliases: vec![format!("GHSA-{id}")],
                    severity: *severity,
                    has_fix: *has_fix,
                    cvss: *cvss,
                })
                .collect(),
        }))
    }

    fn decide_on(rules: &RuleSet, admitted: &Admitted, scans: &[(&str, ImageScan)]) -> Decision {
        let scans: ImageScans = scans.iter().map(|(i, s)| (i.to_string(), s.clone())).collect();
        decide(rules, admitted, &Requester::new("alice", vec!["dev".into()]), &scans, Some("picket-system"))
    }

    #[test]
    fn exceptions_exempt_only_the_containers_they_match_and_monitor_mode_warns() {
        let set = rules(&format!(
            "{}{}{}",
            rule("no-privileged", "deny", "", "    - { name: privileged, op: '=' }\n"),
            rule("no-latest", "deny", "  mode: monitor\n", "    - { name: imageTag, op: '=', value: latest }\n"),
            rule(
                "debug-sidecar",
                "exception",
                "",
                "    - { name: image, op: prefix, value: 'registry.local/debug' }\n"
            ),
        ));
        let admitted = pod(
            "shop",
            json!({}),
            json!([{ "name": "app", "image": "nginx:1.25", "securityContext": { "privileged": true } },
                   { "name": "dbg", "image": "registry.local/debug:1", "securityContext": { "privileged": true } },
                   { "name": "side", "image": "envoy" }]),
        );
        let decision = decide_on(&set, &admitted, &[]);
        assert_eq!(decision.verdict, Verdict::Denied);
        let denied: Vec<_> = decision.denials.iter().map(|m| (m.rule.as_str(), m.container.as_deref())).collect();
        assert_eq!(denied, [("no-privileged", Some("app"))], "the excepted container is not judged");
        assert_eq!(decision.exceptions.len(), 1);
        assert_eq!(decision.warnings.len(), 1, "{:?}", decision.warnings);
        assert!(decision.warnings[0].contains("no-latest") && decision.warnings[0].contains("container side"));
        assert!(
            decision.message.contains("spec.containers[0]") && decision.message.contains("r.yaml:"),
            "{}",
            decision.message
        );

        let fine = pod("shop", json!({}), json!([{ "name": "app", "image": "nginx:1.25" }]));
        assert_eq!(decide_on(&set, &fine, &[]).verdict, Verdict::Allowed);
    }

    #[test]
    fn pod_level_exceptions_exempt_the_pod_and_exempt_namespaces_are_never_judged() {
        let set = rules(&format!(
            "{}{}",
            rule(
                "no-host-network",
                "deny",
                "",
                "    - { name: hostNetwork, op: '=' }\n    - { name: privileged, op: '=', value: false }\n"
            ),
            rule("infra", "exception", "", "    - { name: labels, op: containsAll, value: [tier=infra] }\n"),
        ));
        let host = |labels| {
            let object = json!({ "kind": "Pod", "metadata": { "name": "p", "namespace": "shop", "labels": labels },
                                 "spec": { "hostNetwork": true, "containers": [{ "name": "a", "image": "x:1" }] } });
            Admitted::from_object(&object, "shop").expect("reads").expect("pod")
        };
        let decision = decide_on(&set, &host(json!({})), &[]);
        assert_eq!(decision.verdict, Verdict::Denied, "{decision:?}");
        assert!(decision.message.contains("hostNetwork is true"), "{}", decision.message);
        assert_eq!(decide_on(&set, &host(json!({ "tier": "infra" })), &[]).verdict, Verdict::Allowed);

        let privileged = json!([{ "name": "a", "image": "x:1", "securityContext": { "privileged": true } }]);
        let strict = rules(&rule("no-privileged", "deny", "", "    - { name: privileged, op: '=' }\n"));
        assert_eq!(
            decide_on(&strict, &pod("kube-system", json!({}), privileged.clone()), &[]).verdict,
            Verdict::Exempt
        );
        assert_eq!(
            decide_on(&strict, &pod("picket-system", json!({}), privileged.clone()), &[]).verdict,
            Verdict::Exempt
        );
        assert_eq!(decide_on(&strict, &pod("shop", json!({}), privileged), &[]).verdict, Verdict::Denied);
    }

    #[test]
    fn scan_criteria_read_counts_fixes_scores_names_and_age() {
        let image = "registry.local/app:1";
        let admitted = pod("shop", json!({}), json!([{ "name": "app", "image": image }]));
        let scan = scanned(
            &[
                ("CVE-2021-44906", Severity::Critical, true, Some(9.8)),
                ("CVE-2023-1", Severity::Critical, false, None),
                ("CVE-2023-2", Severity::High, true, Some(7.5)),
            ],
            40,
        );
        let cases = [
            ("    - { name: cveCriticalCount, op: '>=', value: 2 }\n", true),
            ("    - { name: cveCriticalCount, op: '>=', value: 3 }\n", false),
            ("    - { name: cveCriticalWithFixCount, op: '>', value: 1 }\n", false),
            ("    - { name: cveCriticalWithFixCount, op: '=', value: 1 }\n", true),
            ("    - { name: cveHighWithFixCount, op: '>=', value: 1 }\n", true),
            ("    - { name: cveMediumCount, op: '>=', value: 1 }\n", false),
            ("    - { name: cvssScore, op: '>=', value: 9 }\n", true),
            ("    - { name: cvssScore, op: '>', value: 9.8 }\n", false),
            ("    - { name: cveNames, op: containsAny, value: [GHSA-CVE-2023-2, CVE-9] }\n", true),
            ("    - { name: cveNames, op: containsAny, value: CVE-9 }\n", false),
            ("    - { name: imageScanAgeDays, op: '>', value: 30 }\n", true),
            ("    - { name: imageScanAgeDays, op: '>', value: 60 }\n", false),
            ("    - { name: imageScanned, op: '=', value: false }\n", false),
        ];
        for (criteria, denies) in cases {
            let set = rules(&rule("r", "deny", "", criteria));
            let decision = decide_on(&set, &admitted, &[(image, scan.clone())]);
            assert_eq!(decision.verdict == Verdict::Denied, denies, "{criteria}: {decision:?}");
        }
        let set = rules(&rule("r", "deny", "", "    - { name: cveCriticalCount, op: '>=', value: 1 }\n"));
        let decision = decide_on(&set, &admitted, &[(image, scan)]);
        assert!(
            decision.message.contains("CVE-2021-44906, CVE-2023-1"),
            "the ids behind the count: {}",
            decision.message
        );
    }

    #[test]
    fn images_without_a_scan_are_handled_as_configured_and_only_where_a_rule_needs_them() {
        let critical = rule(
            "no-critical",
            "deny",
            "",
            "    - { name: imageRegistry, op: '=', value: registry.local }\n    - { name: cveCriticalCount, op: '>=', value: 1 }\n",
        );
        let config = |unscanned: &str, timeout: &str| {
            format!(
                "apiVersion: picket.dev/v1\nkind: PicketAdmissionConfig\nspec:\n  unscanned: {unscanned}\n  onScanTimeout: {timeout}\n{critical}"
            )
        };
        let ours = pod("shop", json!({}), json!([{ "name": "a", "image": "registry.local/app:1" }]));
        let theirs = pod("shop", json!({}), json!([{ "name": "a", "image": "docker.io/library/nginx:1" }]));
        let requester = Requester::default();

        let deny = rules(&config("deny", "allow"));
        assert_eq!(images_to_look_up(&deny, &ours, &requester), ["registry.local/app:1"]);
        assert!(images_to_look_up(&deny, &theirs, &requester).is_empty(), "no rule could judge it");
        let decision = decide_on(&deny, &ours, &[]);
        assert_eq!(decision.verdict, Verdict::Denied);
        assert!(decision.message.contains("never been scanned"), "{}", decision.message);
        assert_eq!(decide_on(&deny, &theirs, &[]).verdict, Verdict::Allowed);

        assert_eq!(decide_on(&rules(&config("allow", "allow")), &ours, &[]).verdict, Verdict::Allowed);
        assert_eq!(decide_on(&rules(&config("allowAndScan", "allow")), &ours, &[]).verdict, Verdict::Allowed);

        let timed_out = [("registry.local/app:1", ImageScan::TimedOut { seconds: 7 })];
        let warned = decide_on(&rules(&config("scan", "allow")), &ours, &timed_out);
        assert_eq!(warned.verdict, Verdict::Warned);
        assert!(warned.warnings[0].contains("within 7 s"), "{:?}", warned.warnings);
        assert_eq!(decide_on(&rules(&config("scan", "deny")), &ours, &timed_out).verdict, Verdict::Denied);
    }

    #[test]
    fn pod_security_labels_env_and_limits_criteria() {
        let set = rules(&rule("baseline", "deny", "", "    - { name: violatesPss, op: '=', value: baseline }\n"));
        let host_pid = Admitted::from_object(
            &json!({ "kind": "Pod", "metadata": { "name": "p" }, "spec": { "hostPID": true, "containers": [{ "name": "a", "image": "x:1" }] } }),
            "shop",
        )
        .expect("reads")
        .expect("pod");
        let decision = decide_on(&set, &host_pid, &[]);
        assert!(decision.message.contains("PSS-B.2"), "{}", decision.message);
        assert_eq!(
            decide_on(&set, &pod("shop", json!({}), json!([{ "name": "a", "image": "x:1" }])), &[]).verdict,
            Verdict::Allowed
        );

        let set = rules(&format!(
            "{}{}{}",
            rule("labels", "deny", "", "    - { name: labels, op: missingAny, value: 'team,owner' }\n"),
            rule("env", "deny", "", "    - { name: envSecrets, op: '=' }\n"),
            rule("limits", "deny", "", "    - { name: noResourceLimits, op: '=' }\n"),
        ));
        let admitted = pod(
            "shop",
            json!({ "team": "pay" }),
            json!([{ "name": "a", "image": "x:1", "env": [{ "name": "DB_PASSWORD", "value": "hunter2" }, { "name": "API_TOKEN", "valueFrom": { "secretKeyRef": { "name": "s", "key": "t" } } }],
                     "resources": { "limits": { "cpu": "1" } } }]),
        );
        let decision = decide_on(&set, &admitted, &[]);
        let why: Vec<&str> = decision.denials.iter().map(|m| m.why.as_str()).collect();
        assert_eq!(why, ["labels lacks owner", "plain values in secret-looking env DB_PASSWORD", "no memory limit"]);
    }

    #[test]
    fn a_service_account_with_risky_grants_is_denied_and_unknown_rbac_is_said() {
        let set = rules(&rule("risky-sa", "deny", "", "    - { name: riskyServiceAccount, op: '=' }\n"));
        let admitted = pod("shop", json!({}), json!([{ "name": "a", "image": "x:1" }]));
        let mut requester = Requester::new("alice", vec![]);
        let judge = |requester: &Requester| decide(&set, &admitted, requester, &ImageScans::new(), None);

        requester.risky_grants = Some(vec!["ClusterRoleBinding ops (ClusterRole cluster-admin): * on *".into()]);
        let denied = judge(&requester);
        assert_eq!(denied.verdict, Verdict::Denied);
        assert!(
            denied.message.contains("service account default is granted ClusterRoleBinding ops"),
            "{}",
            denied.message
        );

        requester.risky_grants = Some(vec![]);
        assert_eq!(judge(&requester).verdict, Verdict::Allowed);

        requester.risky_grants = None;
        let unknown = judge(&requester);
        assert_eq!(unknown.verdict, Verdict::Warned);
        assert!(unknown.warnings.iter().any(|w| w.contains("RBAC is not known")), "{:?}", unknown.warnings);
    }
}

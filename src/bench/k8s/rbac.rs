//! Who may do what: every binding resolved to its role's rules, and the checks that look for
//! risky permissions in them (CIS 5.1 and picket's RBAC risks).

use k8s_openapi::api::rbac::v1::{PolicyRule, Subject};

use super::ClusterFacts;
use crate::bench::{CheckResult, Status};
use crate::cluster::inventory::Inventory;

/// Subjects that mean "everyone" (or everyone who logged in).
const BROAD_GROUPS: &[&str] = &["system:authenticated", "system:unauthenticated"];
const BROAD_USERS: &[&str] = &["system:anonymous"];

/// Roles Kubernetes ships, which may use wildcards by design.
const BUILT_IN_ROLES: &[&str] = &["cluster-admin", "admin", "edit", "view"];

/// One binding of a role to subjects.
pub struct Grant<'a> {
    /// `ClusterRoleBinding admins`, `RoleBinding dev/team-edit`.
    pub binding: String,
    /// `ClusterRole cluster-admin`.
    pub role: String,
    pub subjects: Vec<&'a Subject>,
    pub rules: Vec<&'a PolicyRule>,
    /// Made by Kubernetes itself: labelled `kubernetes.io/bootstrapping=rbac-defaults`, as the
    /// API server labels the bindings it creates (a name alone proves nothing).
    pub system: bool,
}

impl Grant<'_> {
    fn subjects_text(&self) -> String {
        self.subjects.iter().map(|s| subject_text(s)).collect::<Vec<_>>().join(", ")
    }

    /// Bound to everyone who reaches the API (or everyone who logged in).
    pub fn is_broad(&self) -> bool {
        self.subjects.iter().any(|s| {
            (s.kind == "Group" && BROAD_GROUPS.contains(&s.name.as_str()))
                || (s.kind == "User" && BROAD_USERS.contains(&s.name.as_str()))
        })
    }
}

pub fn subject_text(s: &Subject) -> String {
    match (&s.kind[..], &s.namespace) {
        ("ServiceAccount", Some(ns)) => format!("ServiceAccount {ns}/{}", s.name),
        (kind, _) => format!("{kind} {}", s.name),
    }
}

/// Objects the API server creates for RBAC carry this label.
pub fn is_bootstrap(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
    meta.labels.as_ref().and_then(|l| l.get("kubernetes.io/bootstrapping")).is_some_and(|v| v == "rbac-defaults")
}

pub fn grants(inv: &Inventory) -> Vec<Grant<'_>> {
    let cluster_rules = |name: &str| -> Vec<&PolicyRule> {
        inv.cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .map(|r| r.rules.iter().flatten().collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for b in &inv.cluster_role_bindings {
        let name = b.metadata.name.clone().unwrap_or_default();
        out.push(Grant {
            system: is_bootstrap(&b.metadata),
            binding: format!("ClusterRoleBinding {name}"),
            role: format!("ClusterRole {}", b.role_ref.name),
            subjects: b.subjects.iter().flatten().collect(),
            rules: cluster_rules(&b.role_ref.name),
        });
    }
    for b in &inv.role_bindings {
        let name = b.metadata.name.clone().unwrap_or_default();
        let namespace = b.metadata.namespace.clone().unwrap_or_default();
        let rules = if b.role_ref.kind == "ClusterRole" {
            cluster_rules(&b.role_ref.name)
        } else {
            inv.roles
                .iter()
                .find(|r| {
                    r.metadata.name.as_deref() == Some(&b.role_ref.name)
                        && r.metadata.namespace.as_deref() == Some(&namespace)
                })
                .map(|r| r.rules.iter().flatten().collect())
                .unwrap_or_default()
        };
        out.push(Grant {
            system: is_bootstrap(&b.metadata),
            binding: format!("RoleBinding {namespace}/{name}"),
            role: format!("{} {}", b.role_ref.kind, b.role_ref.name),
            subjects: b.subjects.iter().flatten().collect(),
            rules,
        });
    }
    out
}

/// Whether a rule allows `verb` on `resource` (with `/subresource`) in API group `group`.
pub fn allows(rule: &PolicyRule, verb: &str, group: &str, resource: &str) -> bool {
    let has = |list: &Option<Vec<String>>, want: &str| list.iter().flatten().any(|v| v == "*" || v == want);
    // RBAC matches `*` (every resource and subresource) and `*/SUB` (SUB of every resource).
    let subresource = resource.split_once('/').map(|(_, sub)| sub);
    let resource_ok = rule
        .resources
        .iter()
        .flatten()
        .any(|r| r == "*" || r == resource || subresource.is_some_and(|sub| r.strip_prefix("*/") == Some(sub)));
    let group_ok = group == "*" || has(&rule.api_groups, group);
    rule.verbs.iter().any(|v| v == "*" || v == verb) && group_ok && resource_ok
}

/// A permission picket looks for: any of these verbs on any of these resources, in this API
/// group (`*`: whichever group the rule names).
pub struct Permission {
    pub verbs: &'static [&'static str],
    pub group: &'static str,
    pub resources: &'static [&'static str],
}

impl Permission {
    /// `get,list secrets; create pods/exec, pods/attach`: resources grouped by the verbs granted.
    fn granted_by(&self, rules: &[&PolicyRule]) -> Vec<String> {
        let mut by_verbs: Vec<(String, Vec<&str>)> = Vec::new();
        for resource in self.resources {
            let verbs: Vec<&str> = self
                .verbs
                .iter()
                .copied()
                .filter(|v| rules.iter().any(|r| allows(r, v, self.group, resource)))
                .collect();
            if verbs.is_empty() {
                continue;
            }
            let verbs = verbs.join(",");
            match by_verbs.iter_mut().find(|(v, _)| *v == verbs) {
                Some((_, resources)) => resources.push(resource),
                None => by_verbs.push((verbs, vec![resource])),
            }
        }
        by_verbs.into_iter().map(|(verbs, resources)| format!("{verbs} {}", resources.join(", "))).collect()
    }
}

/// Permissions that let a pod's service account reach beyond its pod: read secrets, start pods,
/// run commands in others, raise its own rights, reach nodes, mint tokens, rewire admission, or
/// anything at all.
pub const RISKY: &[Permission] = &[
    Permission { verbs: &["*"], group: "*", resources: &["*"] },
    Permission { verbs: &["get", "list", "watch"], group: "", resources: &["secrets"] },
    Permission { verbs: &["create"], group: "", resources: &["pods"] },
    Permission { verbs: &["create", "get"], group: "", resources: &["pods/exec", "pods/attach"] },
    Permission {
        verbs: &["escalate", "bind", "impersonate"],
        group: "*",
        resources: &["roles", "clusterroles", "users", "groups", "serviceaccounts"],
    },
    Permission { verbs: &["get", "create"], group: "", resources: &["nodes/proxy"] },
    Permission { verbs: &["create"], group: "", resources: &["serviceaccounts/token"] },
    Permission {
        verbs: &["create", "update", "patch", "delete"],
        group: "admissionregistration.k8s.io",
        resources: &["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
    },
];

/// Whether a binding's subject takes in service account `namespace/name` (itself, its
/// namespace's service accounts, all service accounts, or everyone).
fn takes_in_service_account(subject: &Subject, namespace: &str, name: &str) -> bool {
    match subject.kind.as_str() {
        "ServiceAccount" => subject.name == name && subject.namespace.as_deref() == Some(namespace),
        "Group" => {
            subject.name == "system:serviceaccounts"
                || subject.name == format!("system:serviceaccounts:{namespace}")
                || subject.name == "system:authenticated"
        }
        _ => false,
    }
}

/// What is risky in the grants to service account `namespace/name` (Kubernetes' own grants
/// left out): `ClusterRoleBinding x (ClusterRole y): get,list secrets`.
pub fn risky_grants_of_service_account(grants: &[Grant], namespace: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for grant in grants.iter().filter(|g| !g.system) {
        if !grant.subjects.iter().any(|s| takes_in_service_account(s, namespace, name)) {
            continue;
        }
        let wildcard = grant
            .rules
            .iter()
            .any(|r| r.verbs.iter().any(|v| v == "*") && r.resources.iter().flatten().any(|x| x == "*"));
        let found: Vec<String> = if wildcard {
            vec!["* on *".to_string()]
        } else {
            RISKY.iter().skip(1).flat_map(|p| p.granted_by(&grant.rules)).collect()
        };
        if !found.is_empty() {
            out.push(format!("{} ({}): {}", grant.binding, grant.role, found.join("; ")));
        }
    }
    out
}

/// FAIL for grants to everyone, WARN naming each other non-system subject that has it, PASS when
/// nobody outside Kubernetes itself does.
pub fn who_can(grants: &[Grant], permission: &Permission) -> Vec<CheckResult> {
    let mut results = Vec::new();
    for grant in grants.iter().filter(|g| !g.system) {
        let found = permission.granted_by(&grant.rules);
        if found.is_empty() || grant.subjects.is_empty() {
            continue;
        }
        let status = if grant.is_broad() { Status::Fail } else { Status::Warn };
        results.push(CheckResult::new(
            status,
            grant.binding.clone(),
            format!("{} grants {} to {}", grant.role, found.join("; "), grant.subjects_text()),
        ));
    }
    if results.is_empty() {
        results.push(CheckResult::new(Status::Pass, "RBAC", "no binding outside Kubernetes' own grants it"));
    }
    results
}

/// CIS 5.1.1: bindings of cluster-admin other than Kubernetes' own `cluster-admin`.
pub fn cluster_admin_bindings(facts: &ClusterFacts) -> Vec<CheckResult> {
    let results: Vec<CheckResult> = facts
        .grants
        .iter()
        .filter(|g| g.role == "ClusterRole cluster-admin" && !g.system)
        .map(|g| {
            CheckResult::new(Status::Fail, g.binding.clone(), format!("binds cluster-admin to {}", g.subjects_text()))
        })
        .collect();
    if results.is_empty() {
        vec![CheckResult::new(Status::Pass, "RBAC", "cluster-admin is bound only by Kubernetes' own binding")]
    } else {
        results
    }
}

/// CIS 5.1.3: `*` in the verbs, resources or API groups of roles people made.
pub fn wildcard_roles(facts: &ClusterFacts) -> Vec<CheckResult> {
    let inv = facts.inv;
    let mut results = Vec::new();
    let mut judge = |kind: &str, namespace: Option<&str>, name: &str, rules: &[PolicyRule]| {
        if name.starts_with("system:") || BUILT_IN_ROLES.contains(&name) {
            return;
        }
        let wild: Vec<String> = rules
            .iter()
            .filter_map(|r| {
                let fields: Vec<&str> = [
                    ("verbs", r.verbs.iter().any(|v| v == "*")),
                    ("resources", r.resources.iter().flatten().any(|v| v == "*")),
                    ("apiGroups", r.api_groups.iter().flatten().any(|v| v == "*")),
                ]
                .into_iter()
                .filter_map(|(f, w)| w.then_some(f))
                .collect();
                (!fields.is_empty()).then(|| format!("* in {}", fields.join(", ")))
            })
            .collect();
        let subject = match namespace {
            Some(ns) => format!("{kind} {ns}/{name}"),
            None => format!("{kind} {name}"),
        };
        if wild.is_empty() {
            results.push(CheckResult::new(Status::Pass, subject, "no wildcards"));
        } else {
            results.push(CheckResult::new(Status::Fail, subject, wild.join("; ")));
        }
    };
    for r in &inv.cluster_roles {
        judge(
            "ClusterRole",
            None,
            r.metadata.name.as_deref().unwrap_or_default(),
            r.rules.as_deref().unwrap_or_default(),
        );
    }
    for r in &inv.roles {
        judge(
            "Role",
            r.metadata.namespace.as_deref(),
            r.metadata.name.as_deref().unwrap_or_default(),
            r.rules.as_deref().unwrap_or_default(),
        );
    }
    if results.is_empty() {
        results.push(CheckResult::new(Status::Skip, "RBAC", "no roles besides Kubernetes' own"));
    }
    results
}

/// CIS 5.1.5: every namespace's `default` service account mounts no token and is bound to
/// nothing.
pub fn default_service_accounts(facts: &ClusterFacts) -> Vec<CheckResult> {
    let (inv, grants) = (facts.inv, &facts.grants);
    let mut results = Vec::new();
    for sa in inv.service_accounts.iter().filter(|s| s.metadata.name.as_deref() == Some("default")) {
        let namespace = sa.metadata.namespace.clone().unwrap_or_default();
        let mut problems = Vec::new();
        if sa.automount_service_account_token != Some(false) {
            problems.push("automountServiceAccountToken is not false".to_string());
        }
        let bound: Vec<String> = grants
            .iter()
            .filter(|g| !g.system)
            .filter(|g| {
                g.subjects.iter().any(|s| {
                    s.kind == "ServiceAccount" && s.name == "default" && s.namespace.as_deref() == Some(&namespace)
                })
            })
            .map(|g| format!("{} ({})", g.binding, g.role))
            .collect();
        if !bound.is_empty() {
            problems.push(format!("bound by {}", bound.join(", ")));
        }
        let subject = format!("ServiceAccount {namespace}/default");
        results.push(if problems.is_empty() {
            CheckResult::new(Status::Pass, subject, "no token mounted, no bindings")
        } else {
            CheckResult::new(Status::Fail, subject, problems.join("; "))
        });
    }
    if results.is_empty() {
        results.push(CheckResult::new(Status::Skip, "ServiceAccounts", "no default service accounts listed"));
    }
    results
}

/// CIS 5.1.7: bindings to the `system:masters` group.
pub fn system_masters(facts: &ClusterFacts) -> Vec<CheckResult> {
    let results: Vec<CheckResult> = facts
        .grants
        .iter()
        .filter(|g| g.subjects.iter().any(|s| s.kind == "Group" && s.name == "system:masters"))
        .map(|g| CheckResult::new(Status::Fail, g.binding.clone(), format!("binds {} to Group system:masters", g.role)))
        .collect();
    if results.is_empty() {
        vec![CheckResult::new(Status::Pass, "RBAC", "no binding names Group system:masters")]
    } else {
        results
    }
}

#[cfg(test)]
mod risky_tests {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
        ObjectMeta { name: Some(name.into()), namespace: namespace.map(String::from), ..Default::default() }
    }

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
        let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
        PolicyRule {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            api_groups: strings(groups),
            resources: strings(resources),
            ..Default::default()
        }
    }

    fn subject(kind: &str, name: &str, namespace: Option<&str>) -> Subject {
        Subject { kind: kind.into(), name: name.into(), namespace: namespace.map(String::from), ..Default::default() }
    }

    #[test]
    fn a_service_accounts_risky_grants_come_from_its_bindings_and_groups() {
        let cluster_roles = vec![
            ClusterRole {
                metadata: meta("cluster-admin", None),
                rules: Some(vec![rule(&["*"], &["*"], &["*"])]),
                ..Default::default()
            },
            ClusterRole {
                metadata: meta("viewer", None),
                rules: Some(vec![rule(&["get", "list"], &[""], &["pods", "services"])]),
                ..Default::default()
            },
        ];
        let roles = vec![Role {
            metadata: meta("secret-reader", Some("shop")),
            rules: Some(vec![rule(&["get"], &[""], &["secrets"])]),
        }];
        let role_ref = |kind: &str, name: &str| RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: kind.into(),
            name: name.into(),
        };
        let cluster_role_bindings = vec![
            ClusterRoleBinding {
                metadata: meta("ops", None),
                role_ref: role_ref("ClusterRole", "cluster-admin"),
                subjects: Some(vec![subject("ServiceAccount", "deployer", Some("ci"))]),
            },
            ClusterRoleBinding {
                metadata: meta("everyone-views", None),
                role_ref: role_ref("ClusterRole", "viewer"),
                subjects: Some(vec![subject("Group", "system:serviceaccounts", None)]),
            },
        ];
        let role_bindings = vec![RoleBinding {
            metadata: meta("shop-secrets", Some("shop")),
            role_ref: role_ref("Role", "secret-reader"),
            subjects: Some(vec![subject("Group", "system:serviceaccounts:shop", None)]),
        }];
        let inv = Inventory { cluster_roles, roles, cluster_role_bindings, role_bindings, ..Default::default() };
        let grants = grants(&inv);
        let deployer = risky_grants_of_service_account(&grants, "ci", "deployer");
        assert_eq!(deployer, ["ClusterRoleBinding ops (ClusterRole cluster-admin): * on *"]);
        let shop = risky_grants_of_service_account(&grants, "shop", "default");
        assert_eq!(shop, ["RoleBinding shop/shop-secrets (Role secret-reader): get secrets"]);
        assert!(risky_grants_of_service_account(&grants, "web", "default").is_empty(), "viewing is not risky");
        assert!(risky_grants_of_service_account(&grants, "ci", "other").is_empty());
    }
}

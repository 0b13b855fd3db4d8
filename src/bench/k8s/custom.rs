//! Custom checks: YAML files of checks whose condition is a CEL expression (the language
//! Kubernetes' ValidatingAdmissionPolicy uses), evaluated on each object of the target kind.
//! A check passes for an object when its expression is true.
//!
//! ```yaml
//! checks:
//!   - id: ACME-001
//!     title: Containers set memory limits
//!     target: Workload          # or Pod, Deployment, Namespace, ServiceAccount, ClusterRole, …
//!     severity: medium
//!     expression: podSpec.containers.all(c, has(c.resources.limits) && has(c.resources.limits.memory))
//!     message: a container has no memory limit
//! ```
//!
//! Variables: `object` (the object as the API returns it); for `Workload` targets also
//! `podSpec` and `podMetadata` (the pod template's, or the bare pod's), and `kind`.

use std::path::{Path, PathBuf};

use cel::{Context, Program, Value};
use serde::Deserialize;

use super::ClusterFacts;
use crate::bench::{Assessment, CheckMeta, CheckResult, Status};
use crate::model::Severity;

pub const SECTION: &str = "Custom";

/// The kinds a custom check can target.
const TARGETS: &[&str] = &[
    "Workload",
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Namespace",
    "Node",
    "Service",
    "Ingress",
    "NetworkPolicy",
    "ServiceAccount",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckFile {
    checks: Vec<CheckSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub id: String,
    pub title: String,
    pub target: String,
    #[serde(default)]
    pub severity: Option<String>,
    pub expression: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub rationale: Option<String>,
    #[serde(default)]
    pub remediation: Option<String>,
}

/// A check that parsed and compiled.
#[derive(Debug, Clone)]
pub struct CustomCheck {
    pub spec: CheckSpec,
    pub severity: Severity,
    /// `file` and index, for messages.
    pub origin: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CustomCheckError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: checks[{index}] ({id}): {message}")]
    Check { path: PathBuf, index: usize, id: String, message: String },
}

/// Checks that ship with picket (plugins-config/checks), compiled in.
pub const SHIPPED: &[(&str, &str)] = &[(
    "plugins-config/checks/workloads.yaml (built in)",
    include_str!("../../../plugins-config/checks/workloads.yaml"),
)];

pub fn shipped() -> Result<Vec<CustomCheck>, CustomCheckError> {
    let mut checks = Vec::new();
    for (name, text) in SHIPPED {
        checks.extend(load_str(Path::new(name), text)?);
    }
    Ok(checks)
}

/// Reads one file of checks. Every check's expression is compiled here, so a bad one is
/// reported with its file, index and position before anything runs.
pub fn load_file(path: &Path) -> Result<Vec<CustomCheck>, CustomCheckError> {
    let text = crate::input::read_text(path, crate::input::MAX_TEXT)
        .map_err(|e| CustomCheckError::File { path: path.to_path_buf(), message: e.to_string() })?;
    load_str(path, &text)
}

fn load_str(path: &Path, text: &str) -> Result<Vec<CustomCheck>, CustomCheckError> {
    let file_error = |message: String| CustomCheckError::File { path: path.to_path_buf(), message };
    let file: CheckFile = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column, message) = crate::yaml::explain(text, &e);
        file_error(format!("line {line} column {column}: {message}"))
    })?;
    let mut checks = Vec::new();
    for (index, spec) in file.checks.into_iter().enumerate() {
        let fail =
            |message: String| CustomCheckError::Check { path: path.to_path_buf(), index, id: spec.id.clone(), message };
        if !TARGETS.contains(&spec.target.as_str()) {
            return Err(fail(format!("target {:?} is not one of {}", spec.target, TARGETS.join(", "))));
        }
        let severity = match &spec.severity {
            Some(text) => text.parse::<Severity>().map_err(|e| fail(format!("severity: {e}")))?,
            None => Severity::Medium,
        };
        compile(&spec.expression).map_err(|e| fail(format!("expression: {e}")))?;
        checks.push(CustomCheck { origin: format!("{}#{index}", path.display()), spec, severity });
    }
    Ok(checks)
}

/// How deep brackets and unary operators may nest in an expression. The CEL parser recurses
/// per level (deeply enough to overflow a thread's stack past a few dozen in a debug build);
/// real checks nest a handful deep.
pub const MAX_NESTING: usize = 32;

/// Compiles an expression; errors give line and column within it.
pub fn compile(expression: &str) -> Result<Program, String> {
    nesting(expression)?;
    let owned = expression.to_string();
    // Its own thread with room to recurse, whatever thread (a runtime worker's 2 MiB) asks.
    let compiled = std::thread::Builder::new()
        .name("picket-cel".into())
        .stack_size(64 << 20)
        .spawn(move || {
            Program::compile(&owned)
                .map_err(|errors| errors.errors.iter().map(|e| (e.pos, e.msg.clone())).collect::<Vec<_>>())
        })
        .map_err(|e| format!("cannot start the compiler: {e}"))?
        .join()
        .map_err(|_| "the CEL compiler failed on it".to_string())?;
    compiled.map_err(|errors| {
        errors
            .iter()
            .map(|(pos, msg)| {
                // The parser's messages can carry a dump of its state: the first line says it.
                let first = msg.lines().next().unwrap_or_default();
                let short: String = first.chars().take(200).collect();
                let cut = if short.len() < msg.len() { "…" } else { "" };
                format!("line {} column {}: {short}{cut}", pos.0, pos.1 + 1)
            })
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Refuses expressions nested deeper than `MAX_NESTING` (brackets, or runs of `!` and `-`),
/// outside string literals, naming where.
fn nesting(expression: &str) -> Result<(), String> {
    let (mut depth, mut unary, mut quote) = (0usize, 0usize, None::<char>);
    let mut escaped = false;
    for (line, text) in expression.lines().enumerate() {
        for (column, c) in text.chars().enumerate() {
            if let Some(q) = quote {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, c) if c == q => quote = None,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' | '\'' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            unary = match c {
                '!' | '-' => unary + 1,
                c if c.is_whitespace() => unary,
                _ => 0,
            };
            if depth > MAX_NESTING || unary > MAX_NESTING {
                return Err(format!(
                    "line {} column {}: nested more than {MAX_NESTING} deep; a check that deep is not one",
                    line + 1,
                    column + 1
                ));
            }
        }
    }
    Ok(())
}

/// `*.yaml` and `*.yml` in each directory, in name order. The user's default directory may
/// not exist; a directory named on the command line must, so a typo is an error, not a run
/// without the checks.
pub fn load_dirs(optional: &[PathBuf], required: &[PathBuf]) -> Result<Vec<CustomCheck>, CustomCheckError> {
    let mut checks = Vec::new();
    let dirs = optional.iter().map(|d| (d, false)).chain(required.iter().map(|d| (d, true)));
    for (dir, required) in dirs {
        let files = crate::yaml::files_in(dir, required).map_err(|e| {
            let message = match e {
                crate::yaml::YamlError::Read { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            CustomCheckError::File { path: dir.clone(), message }
        })?;
        for file in files {
            checks.extend(load_file(&file)?);
        }
    }
    Ok(checks)
}

/// The objects a target names, as (subject, variables).
fn targets(facts: &ClusterFacts, target: &str) -> Vec<(String, Vec<(&'static str, serde_json::Value)>)> {
    fn each<T: serde::Serialize>(
        kind: &str,
        items: &[T],
        meta: impl Fn(&T) -> (Option<String>, Option<String>),
    ) -> Vec<(String, Vec<(&'static str, serde_json::Value)>)> {
        items
            .iter()
            .map(|item| {
                let (namespace, name) = meta(item);
                let name = name.unwrap_or_default();
                let subject = match namespace {
                    Some(ns) => format!("{kind} {ns}/{name}"),
                    None => format!("{kind} {name}"),
                };
                (subject, vec![("object", serde_json::to_value(item).unwrap_or_default())])
            })
            .collect()
    }
    macro_rules! of {
        ($field:ident) => {
            each(target, &facts.inv.$field, |o| (o.metadata.namespace.clone(), o.metadata.name.clone()))
        };
    }
    match target {
        "Workload" => facts
            .workloads
            .iter()
            .map(|w| {
                let vars = vec![
                    ("object", serde_json::json!({ "kind": w.kind, "metadata": w.meta })),
                    ("kind", serde_json::json!(w.kind)),
                    ("podSpec", serde_json::to_value(w.spec).unwrap_or_default()),
                    ("podMetadata", serde_json::to_value(w.pod_meta.unwrap_or(w.meta)).unwrap_or_default()),
                ];
                (w.subject(), vars)
            })
            .collect(),
        "Pod" => of!(pods),
        "Deployment" => of!(deployments),
        "StatefulSet" => of!(stateful_sets),
        "DaemonSet" => of!(daemon_sets),
        "Job" => of!(jobs),
        "CronJob" => of!(cron_jobs),
        "Namespace" => of!(namespaces),
        "Node" => of!(nodes),
        "Service" => of!(services),
        "Ingress" => of!(ingresses),
        "NetworkPolicy" => of!(network_policies),
        "ServiceAccount" => of!(service_accounts),
        "Role" => of!(roles),
        "ClusterRole" => of!(cluster_roles),
        "RoleBinding" => of!(role_bindings),
        "ClusterRoleBinding" => of!(cluster_role_bindings),
        _ => Vec::new(),
    }
}

impl crate::bench::Check<ClusterFacts<'_>> for CustomCheck {
    fn meta(&self) -> CheckMeta {
        let spec = &self.spec;
        CheckMeta {
            id: spec.id.clone(),
            title: spec.title.clone(),
            section: SECTION.into(),
            severity: self.severity,
            assessment: Assessment::Automated,
            rationale: spec.rationale.clone().unwrap_or_default(),
            remediation: spec.remediation.clone().unwrap_or_default(),
            references: vec![format!("custom check {}", self.origin)],
        }
    }

    /// One result per object of the check's target.
    fn judge(&self, facts: &ClusterFacts) -> Vec<CheckResult> {
        let spec = &self.spec;
        let program = match compile(&spec.expression) {
            Ok(program) => program,
            Err(e) => return vec![CheckResult::new(Status::Warn, self.origin.clone(), format!("expression: {e}"))],
        };
        let objects = targets(facts, &spec.target);
        if objects.is_empty() {
            return vec![CheckResult::new(Status::Skip, spec.target.clone(), "no such objects listed")];
        }
        objects.into_iter().map(|(subject, vars)| evaluate(&program, spec, subject, vars)).collect()
    }
}

/// The expression on one object: PASS when true, FAIL (with the check's message) when false.
fn evaluate(
    program: &Program,
    spec: &CheckSpec,
    subject: String,
    vars: Vec<(&'static str, serde_json::Value)>,
) -> CheckResult {
    let mut context = Context::default();
    for (name, value) in vars {
        match cel::to_value(value) {
            Ok(value) => context.add_variable_from_value(name, value),
            Err(e) => {
                return CheckResult::new(Status::Warn, subject, format!("{name} could not be given to CEL: {e}"));
            }
        }
    }
    match program.execute(&context) {
        Ok(Value::Bool(true)) => CheckResult::new(Status::Pass, subject, "expression is true"),
        Ok(Value::Bool(false)) => CheckResult::new(
            Status::Fail,
            subject,
            spec.message.clone().unwrap_or_else(|| "expression is false".into()),
        ),
        Ok(other) => CheckResult::new(Status::Warn, subject, format!("expression gave {other:?}, not a bool")),
        Err(e) => CheckResult::new(Status::Warn, subject, format!("expression failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn deeply_nested_expressions_are_refused_not_a_crash() {
        // On a thread with a runtime worker's stack, where the parser alone would overflow it.
        let verdicts = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let deep = |open: &str, close: &str, n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
                (
                    compile(&deep("(", ")", 300)).err(),
                    compile(&deep("[", "]", 33)).err(),
                    compile(&deep("!", "", 40)).err(),
                    compile(&deep("(", ")", 32)).is_ok(),
                    compile("'((((((((((((((((((((((((((((((((((((((' == ''").is_ok(),
                )
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        let too_deep = verdicts.0.expect("300 deep is refused");
        assert!(too_deep.contains("line 1 column 33: nested more than 32 deep"), "{too_deep}");
        assert!(verdicts.1.is_some() && verdicts.2.is_some());
        assert!(verdicts.3, "32 deep compiles");
        assert!(verdicts.4, "brackets inside a string do not count");
    }

    #[test]
    fn a_bad_expression_is_reported_with_file_index_and_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "limits.yaml",
            "checks:\n  - id: OK-1\n    title: fine\n    target: Pod\n    expression: has(object.spec)\n  - id: BAD-1\n    title: broken\n    target: Workload\n    expression: podSpec.containers.all(c, c.name ==)\n",
        );
        let err = load_file(&path).unwrap_err();
        let text = err.to_string();
        for broken in ["(((", "a +", "x.y(", "'unterminated", "1 ==", "}{", "a.all(", "[1, 2"] {
            assert!(compile(broken).is_err(), "{broken}");
        }
        assert!(
            text.starts_with(&format!("{}: checks[1] (BAD-1): expression: line 1 column", path.display())),
            "{text}"
        );
    }

    #[test]
    fn shipped_checks_compile() {
        let checks = shipped().unwrap();
        assert_eq!(checks.len(), 3);
        assert!(checks.iter().all(|c| c.spec.id.starts_with("PKT-C.")));
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "x.yaml",
            "checks:\n  - id: A\n    title: t\n    target: Gadget\n    expression: 'true'\n",
        );
        assert!(load_file(&path).unwrap_err().to_string().contains("target \"Gadget\" is not one of"));
        let path = write(dir.path(), "y.yaml", "checks:\n  - id: A\n    titel: t\n");
        let err = load_file(&path).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()) && err.contains("titel"), "{err}");
        let path = write(
            dir.path(),
            "z.yaml",
            "checks:\n  - id: A\n    title: t\n    target: Pod\n    severity: extreme\n    expression: 'true'\n",
        );
        assert!(load_file(&path).unwrap_err().to_string().contains("severity"));
    }

    #[test]
    fn expressions_see_the_object_and_the_pod_spec() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "c.yaml",
            "checks:\n  - id: MEM\n    title: memory limits\n    target: Workload\n    severity: high\n    expression: podSpec.containers.all(c, has(c.resources) && has(c.resources.limits) && has(c.resources.limits.memory))\n    message: a container has no memory limit\n  - id: TEAM\n    title: namespaces name a team\n    target: Namespace\n    expression: has(object.metadata.labels) && 'team' in object.metadata.labels\n",
        );
        let checks = load_file(&path).unwrap();
        let inv = crate::cluster::inventory::Inventory {
            deployments: vec![
                serde_json::from_value(serde_json::json!({"metadata": {"name": "a", "namespace": "x"}, "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "128Mi"}}}]}}}})).unwrap(),
                serde_json::from_value(serde_json::json!({"metadata": {"name": "b", "namespace": "x"}, "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c"}]}}}})).unwrap(),
            ],
            namespaces: vec![serde_json::from_value(serde_json::json!({"metadata": {"name": "x", "labels": {"team": "pay"}}})).unwrap()],
            ..crate::cluster::inventory::Inventory::default()
        };
        let facts = crate::bench::k8s::ClusterFacts::new(&inv);
        let run = |check: &CustomCheck| {
            use crate::bench::Check as _;
            crate::bench::CheckOutcome { meta: check.meta(), results: check.judge(&facts) }
        };
        let mem = run(&checks[0]);
        assert_eq!(mem.meta.severity, Severity::High);
        let statuses: Vec<(String, Status)> = mem.results.iter().map(|r| (r.subject.clone(), r.status)).collect();
        assert_eq!(
            statuses,
            vec![("Deployment x/a".to_string(), Status::Pass), ("Deployment x/b".to_string(), Status::Fail)]
        );
        assert_eq!(mem.results[1].evidence, "a container has no memory limit");
        let team = run(&checks[1]);
        assert_eq!(team.results[0].status, Status::Pass, "{:?}", team.results);
    }
}

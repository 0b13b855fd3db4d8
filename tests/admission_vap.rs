//! `picket admission export --as vap` against `picket admission test`: the exported objects are
//! read back as k8s-openapi's `admissionregistration/v1` ValidatingAdmissionPolicy and Binding,
//! every CEL expression compiles, and evaluated as the API server does (match constraints, then
//! the variables in order, then the validation; the binding's actions) they give the same
//! verdicts as the webhook's decision on the same manifests. The API server on these machines
//! (v1.20) predates ValidatingAdmissionPolicy, so the expressions run in the `cel` crate with
//! the strings extension Kubernetes enables.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use k8s_openapi::api::admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding};
use serde_json::{Value, json};

fn picket() -> Command {
    Command::new(env!("CARGO_BIN_EXE_picket"))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn rule(name: &str, kind: &str, extra: &str, criteria: &[&str]) -> String {
    let criteria: String = criteria.iter().map(|c| format!("    - {c}\n")).collect();
    format!(
        "---\napiVersion: picket.dev/v1\nkind: PicketAdmissionRule\nmetadata:\n  name: {name}\nspec:\n  type: {kind}\n{extra}  criteria:\n{criteria}"
    )
}

/// Every criterion that CEL can express, with each operator family, two kinds of exception,
/// and both modes.
fn rules() -> String {
    [
        "---\napiVersion: picket.dev/v1\nkind: PicketAdmissionConfig\nmetadata:\n  name: config\nspec:\n  mode: protect\n  exemptNamespaces: [kube-system, ops]\n".to_string(),
        rule("no-privileged", "deny", "  message: privileged containers are not allowed\n", &["{ name: privileged, op: '=' }"]),
        rule("no-latest", "deny", "  mode: monitor\n", &["{ name: imageTag, op: '=', value: latest }"]),
        rule("trusted-registries", "deny", "", &["{ name: imageRegistry, op: notIn, value: [registry.example.com, docker.io, 'localhost:5000'] }"]),
        rule("no-host-pid", "deny", "", &["{ name: hostPID, op: '=', value: true }"]),
        rule("prod-not-root", "deny", "", &["{ name: namespace, op: '=', value: prod }", "{ name: runAsRoot, op: '=' }"]),
        rule("team-label", "deny", "", &["{ name: labels, op: missingAny, value: [team] }"]),
        rule("env-secrets", "deny", "", &["{ name: envSecrets, op: '=' }"]),
        rule("prod-limits", "deny", "  mode: monitor\n", &["{ name: namespace, op: in, value: [prod] }", "{ name: noResourceLimits, op: '=' }"]),
        rule("web-escalation", "deny", "", &["{ name: imageRepository, op: regex, value: '^library/(nginx|httpd)$' }", "{ name: allowPrivilegeEscalation, op: '=' }"]),
        rule("forbidden-annotation", "deny", "", &["{ name: annotations, op: containsAny, value: ['picket.dev/forbidden', 'sidecar=inject'] }"]),
        rule("prod-default-sa", "deny", "", &["{ name: serviceAccount, op: '=', value: default }", "{ name: namespace, op: prefix, value: prod }"]),
        rule("debug-images", "deny", "", &["{ name: image, op: contains, value: [':debug', '-dbg'] }"]),
        rule("no-host-network-unless-admin", "deny", "", &["{ name: hostNetwork, op: '=' }", "{ name: userGroups, op: notContainsAny, value: ['system:masters'] }"]),
        rule("not-the-tester-on-ipc", "deny", "", &["{ name: hostIPC, op: '=' }", "{ name: user, op: '!=', value: nobody }"]),
        rule("escalation-off-needs-tag", "deny", "", &["{ name: allowPrivilegeEscalation, op: '=', value: false }", "{ name: imageTag, op: notRegex, value: '^v?[0-9]' }"]),
        rule("debug-pods", "exception", "", &["{ name: labels, op: containsAll, value: ['picket.dev/debug=allowed'] }"]),
        rule("tools", "exception", "", &["{ name: image, op: prefix, value: 'registry.example.com/tools/' }"]),
        rule("off", "deny", "  disabled: true\n", &["{ name: image, op: contains, value: nginx }"]),
    ]
    .concat()
}

fn pod(name: &str, namespace: &str, meta: Value, spec: Value) -> Value {
    let mut metadata = json!({ "name": name, "namespace": namespace });
    if let (Some(m), Some(extra)) = (metadata.as_object_mut(), meta.as_object()) {
        m.extend(extra.clone());
    }
    json!({ "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec })
}

fn limited(name: &str, image: &str) -> Value {
    json!({ "name": name, "image": image,
            "securityContext": { "runAsNonRoot": true, "allowPrivilegeEscalation": false },
            "resources": { "limits": { "cpu": "1", "memory": "1Gi" } } })
}

/// Objects spread over every rule's both sides.
fn manifests() -> Vec<Value> {
    let team = json!({ "labels": { "team": "shop" } });
    let template = |labels: Value, spec: Value| json!({ "metadata": { "labels": labels }, "spec": spec });
    vec![
        pod(
            "clean",
            "shop",
            team.clone(),
            json!({ "containers": [limited("app", "registry.example.com/shop/api:v1.2")] }),
        ),
        pod(
            "privileged",
            "shop",
            team.clone(),
            json!({ "containers": [
            { "name": "app", "image": "registry.example.com/shop/api:v1", "securityContext": { "privileged": true, "allowPrivilegeEscalation": false } }] }),
        ),
        pod("latest-bare", "shop", team.clone(), json!({ "containers": [limited("app", "nginx")] })),
        pod(
            "digest-only",
            "shop",
            team.clone(),
            json!({ "containers": [limited("app", "registry.example.com/shop/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")] }),
        ),
        pod("untrusted", "shop", team.clone(), json!({ "containers": [limited("app", "quay.io/team/app:1.0")] })),
        pod(
            "port-registry",
            "shop",
            team.clone(),
            json!({ "containers": [limited("app", "localhost:5000/app:2.1"), limited("side", "localhost:5001/side:2.1")] }),
        ),
        pod(
            "host-pid",
            "shop",
            team.clone(),
            json!({ "hostPID": true, "containers": [limited("app", "registry.example.com/a:1")] }),
        ),
        pod(
            "root-prod",
            "prod",
            team.clone(),
            json!({ "serviceAccountName": "api", "containers": [
            { "name": "app", "image": "registry.example.com/a:1", "securityContext": { "allowPrivilegeEscalation": false } }] }),
        ),
        pod(
            "root-prod-by-uid",
            "prod",
            team.clone(),
            json!({ "serviceAccountName": "api", "securityContext": { "runAsNonRoot": true }, "containers": [
            { "name": "app", "image": "registry.example.com/a:1", "securityContext": { "runAsUser": 0, "allowPrivilegeEscalation": false },
              "resources": { "limits": { "cpu": "1", "memory": "1Gi" } } }] }),
        ),
        pod(
            "nonroot-prod-by-pod",
            "prod",
            team.clone(),
            json!({ "serviceAccountName": "api", "securityContext": { "runAsUser": 1000 }, "containers": [
            { "name": "app", "image": "registry.example.com/a:1", "securityContext": { "allowPrivilegeEscalation": false },
              "resources": { "limits": { "cpu": "1" } } }] }),
        ),
        pod(
            "container-overrides-pod",
            "prod",
            team.clone(),
            json!({ "serviceAccountName": "api", "securityContext": { "runAsNonRoot": true }, "containers": [
            { "name": "app", "image": "registry.example.com/a:1", "securityContext": { "runAsNonRoot": false, "allowPrivilegeEscalation": false } }] }),
        ),
        pod(
            "prod-default-sa",
            "production",
            team.clone(),
            json!({ "containers": [limited("app", "registry.example.com/a:1")] }),
        ),
        pod(
            "no-team",
            "shop",
            json!({ "labels": { "app": "x" } }),
            json!({ "containers": [limited("app", "registry.example.com/a:1")] }),
        ),
        pod(
            "no-labels-at-all",
            "shop",
            json!({}),
            json!({ "containers": [limited("app", "registry.example.com/a:1")] }),
        ),
        pod(
            "secret-env",
            "shop",
            team.clone(),
            json!({ "containers": [
            { "name": "app", "image": "registry.example.com/a:1", "securityContext": { "allowPrivilegeEscalation": false },
              "env": [{ "name": "LOG_LEVEL", "value": "debug" }, { "name": "DB_PASSWORD", "value": "hunter2" }] }] }),
        ),
        pod(
            "secret-env-from-ref",
            "shop",
            team.clone(),
            json!({ "containers": [
            { "name": "app", "image": "registry.example.com/a:1", "securityContext": { "allowPrivilegeEscalation": false },
              "env": [{ "name": "DB_PASSWORD", "valueFrom": { "secretKeyRef": { "name": "db", "key": "pw" } } }, { "name": "API_KEY", "value": "  " }] }] }),
        ),
        pod(
            "nginx-escalates",
            "shop",
            team.clone(),
            json!({ "containers": [{ "name": "web", "image": "nginx:1.25" }] }),
        ),
        pod(
            "annotated",
            "shop",
            json!({ "labels": { "team": "x" }, "annotations": { "sidecar": "inject" } }),
            json!({ "containers": [limited("app", "registry.example.com/a:1")] }),
        ),
        pod(
            "annotated-other-value",
            "shop",
            json!({ "labels": { "team": "x" }, "annotations": { "sidecar": "no" } }),
            json!({ "containers": [limited("app", "registry.example.com/a:1")] }),
        ),
        pod(
            "debug-image",
            "shop",
            team.clone(),
            json!({ "initContainers": [limited("init", "registry.example.com/a:1-dbg")], "containers": [limited("app", "registry.example.com/a:1")] }),
        ),
        pod(
            "host-network",
            "shop",
            team.clone(),
            json!({ "hostNetwork": true, "containers": [limited("app", "registry.example.com/a:1")] }),
        ),
        pod(
            "host-ipc",
            "shop",
            team.clone(),
            json!({ "hostIPC": true, "containers": [limited("app", "registry.example.com/a:1")] }),
        ),
        pod(
            "escalation-off-untagged-version",
            "shop",
            team.clone(),
            json!({ "containers": [limited("app", "registry.example.com/a:stable")] }),
        ),
        pod(
            "debug-pod-exempt",
            "shop",
            json!({ "labels": { "picket.dev/debug": "allowed" } }),
            json!({ "hostPID": true, "containers": [
            { "name": "app", "image": "quay.io/x/y:1", "securityContext": { "privileged": true } }] }),
        ),
        pod(
            "tools-exempt-one",
            "shop",
            team.clone(),
            json!({ "containers": [
            { "name": "tool", "image": "registry.example.com/tools/kit:1", "securityContext": { "privileged": true } },
            { "name": "app", "image": "registry.example.com/a:1", "securityContext": { "privileged": true } }] }),
        ),
        pod(
            "tools-only",
            "shop",
            json!({ "labels": { "app": "x" } }),
            json!({ "containers": [
            { "name": "tool", "image": "registry.example.com/tools/kit:latest", "securityContext": { "privileged": true } }] }),
        ),
        pod(
            "ephemeral",
            "shop",
            team.clone(),
            json!({ "containers": [limited("app", "registry.example.com/a:1")],
            "ephemeralContainers": [{ "name": "dbg", "image": "busybox:debug", "securityContext": { "privileged": true } }] }),
        ),
        pod(
            "exempt-namespace",
            "ops",
            json!({}),
            json!({ "hostPID": true, "containers": [{ "name": "a", "image": "quay.io/x:latest", "securityContext": { "privileged": true } }] }),
        ),
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "deploy-root", "namespace": "prod" },
                "spec": { "selector": {}, "template": template(json!({ "team": "a" }), json!({ "serviceAccountName": "api", "containers": [
                    { "name": "app", "image": "docker.io/library/httpd", "securityContext": { "allowPrivilegeEscalation": true } }] })) } }),
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "deploy-template-no-labels", "namespace": "shop", "labels": { "team": "a" } },
                "spec": { "selector": {}, "template": { "spec": { "containers": [limited("app", "registry.example.com/a:1")] } } } }),
        json!({ "apiVersion": "batch/v1", "kind": "CronJob", "metadata": { "name": "cron", "namespace": "shop" },
                "spec": { "schedule": "* * * * *", "jobTemplate": { "spec": { "template": template(json!({ "team": "a" }),
                    json!({ "restartPolicy": "Never", "containers": [limited("job", "ghcr.io/org/job:2")] })) } } } }),
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "not-judged", "namespace": "shop" }, "data": {} }),
    ]
}

/// What one object got: the rules that denied, and those that warned.
#[derive(Debug, Default, PartialEq)]
struct Verdicts {
    denied: BTreeSet<String>,
    warned: BTreeSet<String>,
}

fn offline(rules: &Path, manifests: &Path) -> Vec<(String, Option<Verdicts>)> {
    let out = picket()
        .args(["admission", "test", "--rules"])
        .arg(rules)
        .arg(manifests)
        .args(["-o", "json"])
        .output()
        .expect("picket runs");
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let outcomes: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON outcomes");
    outcomes
        .iter()
        .map(|o| {
            let name = o["name"].as_str().unwrap_or_default().to_string();
            let verdicts = (o["outcome"] == "decided").then(|| {
                let names = |key: &str| -> BTreeSet<String> {
                    o["decision"][key]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|m| m["rule"].as_str().map(String::from))
                        .collect()
                };
                Verdicts { denied: names("denials"), warned: names("monitored") }
            });
            (name, verdicts)
        })
        .collect()
}

fn env() -> Arc<cel::Env> {
    let mut env = cel::Env::stdlib();
    env.add_extension(cel::extensions::strings).expect("the strings extension");
    Arc::new(env)
}

fn compile(env: &cel::Env, expression: &str) -> cel::Program {
    env.compile(expression).unwrap_or_else(|e| panic!("CEL does not compile: {e:?}\n{expression}"))
}

fn resource_of(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "Pod" => ("", "pods"),
        "Deployment" => ("apps", "deployments"),
        "StatefulSet" => ("apps", "statefulsets"),
        "DaemonSet" => ("apps", "daemonsets"),
        "ReplicaSet" => ("apps", "replicasets"),
        "Job" => ("batch", "jobs"),
        "CronJob" => ("batch", "cronjobs"),
        _ => return None,
    })
}

/// The policy on one CREATE as the API server evaluates it: None when it does not apply, else
/// whether its validation failed.
fn evaluate(env: &Arc<cel::Env>, policy: &ValidatingAdmissionPolicy, object: &Value) -> Option<bool> {
    let spec = policy.spec.as_ref().expect("a spec");
    let constraints = spec.match_constraints.as_ref().expect("match constraints");
    let (group, resource) = resource_of(object["kind"].as_str()?)?;
    let applies = constraints.resource_rules.iter().flatten().any(|r| {
        r.api_groups.iter().flatten().any(|g| g == group || g == "*")
            && r.resources.iter().flatten().any(|x| x == resource || x == "*")
            && r.operations.iter().flatten().any(|o| o == "CREATE" || o == "*")
    });
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or("default");
    let selected = constraints.namespace_selector.as_ref().is_none_or(|selector| {
        selector.match_expressions.iter().flatten().all(|e| {
            assert_eq!(e.key, "kubernetes.io/metadata.name");
            let listed = e.values.iter().flatten().any(|v| v == namespace);
            match e.operator.as_str() {
                "NotIn" => !listed,
                "In" => listed,
                other => panic!("operator {other}"),
            }
        })
    });
    if !applies || !selected {
        return None;
    }
    let request = json!({ "namespace": namespace, "operation": "CREATE",
                          "userInfo": { "username": "picket-admission-test", "groups": [] } });
    let base = |variables: &HashMap<String, cel::Value>| {
        let mut context = cel::Context::with_env(Arc::clone(env));
        context.add_variable_from_value("object", cel::to_value(object).expect("object"));
        context.add_variable_from_value("request", cel::to_value(&request).expect("request"));
        context.add_variable_from_value("variables", cel::Value::from(variables.clone()));
        context
    };
    let mut variables: HashMap<String, cel::Value> = HashMap::new();
    for variable in spec.variables.iter().flatten() {
        let program = compile(env, &variable.expression);
        let value = program
            .execute(&base(&variables))
            .unwrap_or_else(|e| panic!("variable {} on {}: {e}", variable.name, object["metadata"]["name"]));
        variables.insert(variable.name.clone(), value);
    }
    let mut failed = false;
    for validation in spec.validations.iter().flatten() {
        let program = compile(env, &validation.expression);
        match program.execute(&base(&variables)) {
            Ok(cel::Value::Bool(ok)) => failed |= !ok,
            other => panic!(
                "{} on {}: {other:?}\n{}",
                policy.metadata.name.as_deref().unwrap_or("?"),
                object["metadata"]["name"],
                validation.expression
            ),
        }
    }
    Some(failed)
}

fn split_yaml(text: &str) -> Vec<&str> {
    text.split("\n---\n").map(|d| d.trim_start_matches("---\n")).filter(|d| !d.trim().is_empty()).collect()
}

/// The `cel` crate's parser recurses deeply in a debug build: the comparison runs on a thread
/// with room for it, as `picket`'s own CEL checks do.
#[test]
fn exported_policies_give_the_webhooks_verdicts() {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(compare_verdicts)
        .expect("a thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

fn compare_verdicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = write(dir.path(), "rules.yaml", &rules());
    let objects = manifests();
    let text: String = objects.iter().map(|o| format!("---\n{}\n", serde_json::to_string(o).expect("json"))).collect();
    let manifest_file = write(dir.path(), "manifests.yaml", &text);

    let out =
        picket().args(["admission", "export", "--as", "vap", "--rules"]).arg(&rules).output().expect("picket runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = String::from_utf8(out.stdout).expect("utf-8");
    let docs = split_yaml(&yaml);
    let mut policies: Vec<ValidatingAdmissionPolicy> = Vec::new();
    let mut bindings: Vec<ValidatingAdmissionPolicyBinding> = Vec::new();
    for doc in docs {
        let head: Value = serde_saphyr::from_str(doc).expect("YAML");
        assert_eq!(head["apiVersion"], "admissionregistration.k8s.io/v1", "{doc}");
        match head["kind"].as_str() {
            Some("ValidatingAdmissionPolicy") => policies.push(serde_saphyr::from_str(doc).expect("a policy")),
            Some("ValidatingAdmissionPolicyBinding") => bindings.push(serde_saphyr::from_str(doc).expect("a binding")),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Every enabled deny rule (15), none of the exceptions nor the disabled rule.
    assert_eq!(policies.len(), 15);
    assert_eq!(bindings.len(), 15);
    let env = env();

    let expected = offline(&rules, &manifest_file);
    assert_eq!(expected.len(), objects.len());
    let mut fired: HashMap<String, (usize, usize)> = HashMap::new();
    for (object, (name, verdicts)) in objects.iter().zip(&expected) {
        assert_eq!(object["metadata"]["name"].as_str(), Some(name.as_str()));
        let mut got = Verdicts::default();
        let mut judged = false;
        for policy in &policies {
            let policy_name = policy.metadata.name.clone().expect("named");
            let binding = bindings.iter().find(|b| b.spec.policy_name == policy_name).expect("a binding per policy");
            let rule = policy_name.trim_start_matches("picket-").to_string();
            let Some(failed) = evaluate(&env, policy, object) else { continue };
            judged = true;
            let count = fired.entry(rule.clone()).or_default();
            if failed {
                count.0 += 1;
                let actions = &binding.spec.validation_actions;
                if actions.iter().any(|a| a == "Deny") {
                    got.denied.insert(rule);
                } else {
                    assert_eq!(actions, &["Warn", "Audit"]);
                    got.warned.insert(rule);
                }
            } else {
                count.1 += 1;
            }
        }
        match verdicts {
            Some(want) if judged => assert_eq!(&got, want, "{name}"),
            // An exempt namespace: the webhook allows without judging, no policy applies.
            Some(want) => assert!(want.denied.is_empty() && want.warned.is_empty(), "{name}"),
            None => assert!(!judged, "{name}: not a workload"),
        }
    }
    // No expression is constantly true or false on these objects.
    for policy in &policies {
        let rule = policy.metadata.name.as_deref().unwrap_or_default().trim_start_matches("picket-");
        let (failed, passed) = fired.get(rule).copied().unwrap_or_default();
        assert!(failed > 0 && passed > 0, "rule {rule}: failed on {failed}, passed on {passed}");
    }
    // The exceptions decide: the debug pod is allowed, one tools container spared, not its neighbour.
    let of = |name: &str| expected.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_ref()).expect(name);
    assert!(of("debug-pod-exempt").denied.is_empty());
    assert!(of("tools-exempt-one").denied.contains("no-privileged"));
    assert!(of("tools-only").denied.is_empty() && of("tools-only").warned.is_empty(), "{:?}", of("tools-only"));
    assert!(of("latest-bare").warned.contains("no-latest") && !of("digest-only").warned.contains("no-latest"));
}

#[test]
fn rules_cel_cannot_express_are_named_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = [
        rule("critical", "deny", "", &["{ name: cveCriticalCount, op: '>=', value: 1 }"]),
        rule("pss", "deny", "", &["{ name: violatesPss, op: '=', value: baseline }"]),
        rule("privileged", "deny", "", &["{ name: privileged, op: '=' }"]),
    ]
    .concat();
    let rules = write(dir.path(), "rules.yaml", &text);
    let out =
        picket().args(["admission", "export", "--as", "vap", "--rules"]).arg(&rules).output().expect("picket runs");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rule \"critical\" (") && stderr.contains("cveCriticalCount needs the image's scan"),
        "{stderr}"
    );
    assert!(stderr.contains("pod-security.kubernetes.io/enforce=baseline"), "{stderr}");
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert_eq!(split_yaml(&yaml).len(), 2, "one policy and its binding: {yaml}");
    assert!(yaml.contains("picket-privileged"));

    // An exception on scan data: without it the deny rules would be stricter, so none is written.
    let text = [
        rule("privileged", "deny", "", &["{ name: privileged, op: '=' }"]),
        rule("scanned-ok", "exception", "", &["{ name: imageScanned, op: '=' }"]),
    ]
    .concat();
    let rules = write(dir.path(), "rules2.yaml", &text);
    let out =
        picket().args(["admission", "export", "--as", "vap", "--rules"]).arg(&rules).output().expect("picket runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the exception \"scanned-ok\" cannot be written in CEL"), "{stderr}");
    assert!(stderr.contains("no rule could be exported"), "{stderr}");
    assert!(split_yaml(&String::from_utf8_lossy(&out.stdout)).is_empty());
}

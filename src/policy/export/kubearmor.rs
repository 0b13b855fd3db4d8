//! A PicketPolicy as a KubeArmorPolicy (`security.kubearmor.com/v1`): the group's pods by labels,
//! process and file rules with their paths, directories, `fromSource`, `readOnly` and action
//! (KubeArmor's own vocabulary: Allow, Audit, Block per rule). KubeArmor has no group mode:
//! monitor becomes Audit for the allowlist (KubeArmor's default posture decides the rest, set
//! per namespace), and network rules are noted (KubeArmor matches protocols, not peers or ports).

use serde_json::{Value, json};

use super::{ExportError, Exported, Labels, Target};
use crate::policy::PicketPolicy;
use crate::policy::spec::{Action, DirectoryMatch, Mode};

const FORMAT: &str = "KubeArmorPolicy";

fn action(action: Action, mode: Mode) -> &'static str {
    match (action, mode) {
        (Action::Block, Mode::Protect) => "Block",
        // Monitor and discover alert rather than deny.
        (Action::Block, _) | (Action::Audit, _) => "Audit",
        (Action::Allow, _) => "Allow",
    }
}

fn sources(from: &[String]) -> Option<Value> {
    (!from.is_empty()).then(|| Value::Array(from.iter().map(|p| json!({ "path": p })).collect()))
}

fn directory(d: &DirectoryMatch) -> serde_json::Map<String, Value> {
    let mut entry = serde_json::Map::new();
    entry.insert("dir".into(), json!(d.dir));
    if d.recursive {
        entry.insert("recursive".into(), json!(true));
    }
    entry
}

/// The KubeArmorPolicy of one PicketPolicy (a JSON value; KubeArmor ships no Rust types).
pub fn export(policy: &PicketPolicy, labels: &Labels) -> Result<Exported<Value>, ExportError> {
    let target = Target::of(policy, labels, FORMAT)?;
    let (title, pods) = (&target.title, target.pods.clone());
    let spec = &policy.spec;
    let mut notes = Vec::new();

    let mut process_paths = Vec::new();
    let mut process_dirs = Vec::new();
    for (i, rule) in spec.process.iter().enumerate() {
        let act = action(rule.action, spec.mode);
        if rule.user.is_some() {
            notes.push(format!(
                "{title}: spec.process[{i}]: user: KubeArmor does not match users; left out of the rule"
            ));
        }
        for path in &rule.match_paths {
            let mut entry = serde_json::Map::new();
            entry.insert("path".into(), json!(path));
            if let Some(from) = sources(&rule.from_source) {
                entry.insert("fromSource".into(), from);
            }
            entry.insert("action".into(), json!(act));
            process_paths.push(Value::Object(entry));
        }
        for dir in &rule.match_directories {
            let mut entry = directory(dir);
            if let Some(from) = sources(&rule.from_source) {
                entry.insert("fromSource".into(), from);
            }
            entry.insert("action".into(), json!(act));
            process_dirs.push(Value::Object(entry));
        }
    }
    let mut file_paths = Vec::new();
    let mut file_dirs = Vec::new();
    for rule in &spec.file {
        let act = action(rule.action, spec.mode);
        for path in &rule.match_paths {
            let mut entry = serde_json::Map::new();
            entry.insert("path".into(), json!(path));
            if rule.read_only {
                entry.insert("readOnly".into(), json!(true));
            }
            if let Some(from) = sources(&rule.from_source) {
                entry.insert("fromSource".into(), from);
            }
            entry.insert("action".into(), json!(act));
            file_paths.push(Value::Object(entry));
        }
        for dir in &rule.match_directories {
            let mut entry = directory(dir);
            if rule.read_only {
                entry.insert("readOnly".into(), json!(true));
            }
            if let Some(from) = sources(&rule.from_source) {
                entry.insert("fromSource".into(), from);
            }
            entry.insert("action".into(), json!(act));
            file_dirs.push(Value::Object(entry));
        }
    }
    if !spec.ingress.is_empty() || !spec.egress.is_empty() {
        notes.push(format!(
            "{title}: ingress and egress: KubeArmor matches network protocols, not peers or ports; export them --as networkpolicy or ciliumnetworkpolicy"
        ));
    }
    if spec.mode != Mode::Protect {
        notes.push(format!(
            "{title}: mode {:?}: what the Allow rules leave out follows the namespace's KubeArmor default posture (kubearmor-file-posture, kubearmor-process-posture: audit to only alert)",
            spec.mode
        ));
    }
    let mut body = serde_json::Map::new();
    body.insert("selector".into(), json!({ "matchLabels": pods }));
    let mut process = serde_json::Map::new();
    if !process_paths.is_empty() {
        process.insert("matchPaths".into(), Value::Array(process_paths));
    }
    if !process_dirs.is_empty() {
        process.insert("matchDirectories".into(), Value::Array(process_dirs));
    }
    if !process.is_empty() {
        body.insert("process".into(), Value::Object(process));
    }
    let mut file = serde_json::Map::new();
    if !file_paths.is_empty() {
        file.insert("matchPaths".into(), Value::Array(file_paths));
    }
    if !file_dirs.is_empty() {
        file.insert("matchDirectories".into(), Value::Array(file_dirs));
    }
    if !file.is_empty() {
        body.insert("file".into(), Value::Object(file));
    }
    // The policy's own action: what its rules say when they say nothing (each rule says).
    body.insert("action".into(), json!(if spec.mode == Mode::Protect { "Allow" } else { "Audit" }));
    let object = target.object("security.kubearmor.com/v1", "KubeArmorPolicy", Value::Object(body));
    Ok(Exported { object, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_and_file_rules_keep_their_paths_and_actions() {
        let text = "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: web, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  mode: protect
  process:
    - matchPaths: [/usr/sbin/nginx]
    - matchDirectories: [{ dir: /usr/lib/nginx/, recursive: true }]
      fromSource: [/usr/sbin/nginx]
  file:
    - matchDirectories: [{ dir: /, recursive: true }]
      readOnly: true
    - matchPaths: [/etc/shadow]
      action: Block
";
        let policy = super::super::one_policy(text);
        let out = export(&policy, &Labels::default()).expect("labels given");
        let spec = &out.object["spec"];
        assert_eq!(spec["selector"]["matchLabels"]["app"], "web");
        assert_eq!(spec["process"]["matchPaths"][0], json!({ "path": "/usr/sbin/nginx", "action": "Allow" }));
        assert_eq!(spec["process"]["matchDirectories"][0]["fromSource"][0]["path"], "/usr/sbin/nginx");
        assert_eq!(
            spec["file"]["matchDirectories"][0],
            json!({ "dir": "/", "recursive": true, "readOnly": true, "action": "Allow" })
        );
        assert_eq!(spec["file"]["matchPaths"][0]["action"], "Block");
        assert!(out.notes.is_empty(), "{:?}", out.notes);
    }
}

//! `picket admission test MANIFEST…`: the webhook's decision on YAML manifests, offline (a CI
//! step). Every document of every file is judged as a CREATE by the same [`Judge`]; `List`
//! documents are judged item by item.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::Judge;
use super::decide::{Decision, Requester};
use crate::yaml::split_documents;

#[derive(Debug, Clone, Serialize)]
pub struct ManifestOutcome {
    /// `deploy.yaml:12`: where the document starts.
    pub at: String,
    pub kind: String,
    pub name: String,
    #[serde(flatten)]
    pub result: Judged,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Judged {
    Decided {
        decision: Decision,
    },
    /// A kind that holds no pod spec.
    NotJudged,
    Invalid {
        error: String,
    },
}

impl ManifestOutcome {
    pub fn denied(&self) -> bool {
        matches!(&self.result, Judged::Decided { decision } if !decision.allowed())
    }
}

/// Judges every document of `paths` (`-` reads standard input). A file that cannot be read or
/// a document that is not YAML is an `Invalid` outcome naming its place; the others go on.
pub async fn test_manifests(judge: &Judge, paths: &[PathBuf], namespace: &str) -> Vec<ManifestOutcome> {
    let mut out = Vec::new();
    for path in paths {
        let text = if path == Path::new("-") {
            let mut text = String::new();
            match std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
                Ok(_) => Ok(text),
                Err(e) => Err(e),
            }
        } else {
            std::fs::read_to_string(path)
        };
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                out.push(invalid(path.display().to_string(), format!("cannot read: {e}")));
                continue;
            }
        };
        for (first_line, doc) in split_documents(&text) {
            let start = first_line
                + 1
                + doc.lines().position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).unwrap_or(0)
                    as u64;
            let at = format!("{}:{start}", path.display());
            let value: Value = match serde_saphyr::from_str(doc) {
                Ok(value) => value,
                Err(err) => {
                    let (line, column, message) = crate::yaml::explain(doc, &err);
                    out.push(invalid(format!("{}:{}:{column}", path.display(), line + first_line), message));
                    continue;
                }
            };
            let items = match value.get("kind").and_then(Value::as_str) {
                Some(kind) if kind.ends_with("List") => {
                    value.get("items").and_then(Value::as_array).cloned().unwrap_or_default()
                }
                _ => vec![value],
            };
            for item in items {
                out.push(judge_one(judge, &at, &item, namespace).await);
            }
        }
    }
    out
}

async fn judge_one(judge: &Judge, at: &str, object: &Value, namespace: &str) -> ManifestOutcome {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let name = object
        .pointer("/metadata/name")
        .or_else(|| object.pointer("/metadata/generateName"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let result = if !object.is_object() {
        Judged::Invalid { error: "not a mapping".into() }
    } else if kind.is_empty() {
        Judged::Invalid { error: "no kind".into() }
    } else {
        let requester = Requester::new("picket-admission-test", Vec::new());
        match judge.judge(object, namespace, &requester).await {
            Ok(Some(decision)) => Judged::Decided { decision },
            Ok(None) => Judged::NotJudged,
            Err(error) => Judged::Invalid { error },
        }
    };
    ManifestOutcome { at: at.to_string(), kind, name, result }
}

fn invalid(at: String, error: String) -> ManifestOutcome {
    ManifestOutcome { at, kind: String::new(), name: String::new(), result: Judged::Invalid { error } }
}

//! The dry run: which running workloads the rules in force would deny, judged as the webhook
//! would judge their CREATE, from the stored scans only (nothing is pulled). `picket admission
//! dry-run` and the Admission pane both call [`judge_inventory`].

use serde::Serialize;
use serde_json::Value;

use super::Judge;
use super::decide::{Decision, Requester};
use crate::cluster::inventory::{Inventory, controller};

/// The user a dry run judges as (rules on users see this name).
pub const DRY_RUN_USER: &str = "picket-dry-run";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRunOutcome {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub decision: Decision,
}

/// The inventory's workloads as a user would have created them: every Deployment, StatefulSet,
/// DaemonSet and CronJob, and the Pods, ReplicaSets and Jobs no controller owns (the owner's
/// template was judged instead).
pub fn workload_objects(inventory: &Inventory) -> Vec<Value> {
    fn all<T: serde::Serialize>(items: &[T]) -> impl Iterator<Item = Value> + '_ {
        items.iter().filter_map(|i| serde_json::to_value(i).ok())
    }
    let mut out: Vec<Value> = Vec::new();
    out.extend(all(&inventory.deployments));
    out.extend(all(&inventory.stateful_sets));
    out.extend(all(&inventory.daemon_sets));
    out.extend(all(&inventory.cron_jobs));
    let unowned = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| controller(meta).is_none();
    out.extend(all(&inventory.replica_sets.iter().filter(|r| unowned(&r.metadata)).cloned().collect::<Vec<_>>()));
    out.extend(all(&inventory.jobs.iter().filter(|j| unowned(&j.metadata)).cloned().collect::<Vec<_>>()));
    out.extend(all(&inventory.pods.iter().filter(|p| unowned(&p.metadata)).cloned().collect::<Vec<_>>()));
    out
}

/// Judges every workload of the inventory; objects that cannot be read are left out (the
/// inventory read them from the API server, so they are Kubernetes' own shapes).
pub async fn judge_inventory(judge: &Judge, inventory: &Inventory) -> Vec<DryRunOutcome> {
    if judge.needs_rbac() {
        judge.set_rbac(std::sync::Arc::new(inventory.clone()));
    }
    let requester = Requester::new(DRY_RUN_USER, Vec::new());
    let mut out = Vec::new();
    for object in workload_objects(inventory) {
        let text = |key: &str| object.pointer(key).and_then(Value::as_str).unwrap_or_default().to_string();
        let (kind, namespace, name) = (text("/kind"), text("/metadata/namespace"), text("/metadata/name"));
        if let Ok(Some(decision)) = judge.judge_stored(&object, &namespace, &requester).await {
            out.push(DryRunOutcome { kind, namespace, name, decision });
        }
    }
    out.sort_by(|a, b| (&a.namespace, &a.kind, &a.name).cmp(&(&b.namespace, &b.kind, &b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::rules::{RuleSet, parse_text};

    #[tokio::test]
    async fn controlled_objects_are_judged_through_their_owner() {
        let inventory = crate::cluster::fixtures::inventory();
        let objects = workload_objects(&inventory);
        let names: Vec<String> = objects
            .iter()
            .map(|o| format!("{} {}", o["kind"].as_str().unwrap_or("?"), o["metadata"]["name"].as_str().unwrap_or("?")))
            .collect();
        assert!(!names.is_empty());
        for pod in &inventory.pods {
            let listed = names.contains(&format!("Pod {}", pod.metadata.name.clone().unwrap_or_default()));
            assert_eq!(listed, controller(&pod.metadata).is_none(), "{:?}", pod.metadata.name);
        }
        let (rules, config, problems) = parse_text(
            std::path::Path::new("r.yaml"),
            "apiVersion: picket.dev/v1\nkind: PicketAdmissionRule\nmetadata:\n  name: no-root\nspec:\n  type: deny\n  criteria:\n    - { name: runAsRoot, op: '=' }\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let judge = Judge::new(RuleSet { rules, config: config.map(|(_, c)| c).unwrap_or_default() }, None);
        let outcomes = judge_inventory(&judge, &inventory).await;
        assert_eq!(outcomes.len(), objects.len(), "every workload judged (exempt ones too, as exempt)");
        assert!(outcomes.iter().any(|o| !o.decision.allowed()), "the fixture runs containers that may be root");
    }
}

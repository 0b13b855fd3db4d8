//! Each node's baselines in the cluster: the agent writes what it learned to a ConfigMap of its
//! own (`picket-baselines-NODE` in `picket-system`, zstd-compressed JSON, server-side apply), and
//! `picket policy learn|show --cluster` reads every node's and merges them, so a group whose pods
//! run on several nodes is learned as one. (A ConfigMap per node rather than the policy CRD's
//! status: no two agents ever write the same object, and nothing needs a policy to exist first.)

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams};

use crate::learn::Baselines;

pub const LABEL: &str = "picket.dev/baselines";
const NODE_LABEL: &str = "picket.dev/node";
const KEY: &str = "baselines.json.zst";
/// What a ConfigMap holds at most.
const LIMIT: usize = 1_000_000;

/// A node's name as a DNS label part: lower case, other characters as `-`.
fn safe(node: &str) -> String {
    let name: String = node
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    name.trim_matches('-').to_string()
}

fn map_name(node: &str) -> String {
    format!("picket-baselines-{}", safe(node))
}

/// Writes `baselines` as node `node`'s ConfigMap in `namespace`; the bytes written.
pub async fn publish(
    client: &kube::Client,
    namespace: &str,
    node: &str,
    baselines: &Baselines,
) -> Result<usize, String> {
    let json = serde_json::to_vec(baselines).map_err(|e| e.to_string())?;
    let packed = zstd::encode_all(json.as_slice(), 9).map_err(|e| e.to_string())?;
    if packed.len() > LIMIT {
        return Err(format!(
            "the baselines make {} bytes compressed, more than a ConfigMap holds; they stay on the node",
            packed.len()
        ));
    }
    let name = map_name(node);
    let map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(
                [
                    (LABEL.to_string(), "true".to_string()),
                    // Label values are at most 63 characters.
                    (
                        NODE_LABEL.to_string(),
                        safe(node).chars().take(63).collect::<String>().trim_matches('-').to_string(),
                    ),
                ]
                .into(),
            ),
            ..Default::default()
        },
        binary_data: Some([(KEY.to_string(), ByteString(packed.clone()))].into()),
        ..Default::default()
    };
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    api.patch(&name, &PatchParams::apply("picket").force(), &Patch::Apply(&map))
        .await
        .map_err(|e| format!("writing ConfigMap {namespace}/{name}: {}", crate::cluster::inventory::describe(&e)))?;
    Ok(packed.len())
}

/// Every node's baselines in `namespace`, merged; ConfigMaps that do not decode are named.
pub async fn read_all(client: &kube::Client, namespace: &str) -> Result<(Baselines, Vec<String>), String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let list = api.list(&ListParams::default().labels(&format!("{LABEL}=true"))).await.map_err(|e| {
        format!("listing the nodes' baselines in namespace {namespace}: {}", crate::cluster::inventory::describe(&e))
    })?;
    let mut merged = Baselines::default();
    let mut unreadable = Vec::new();
    for map in list.items {
        let name = map.metadata.name.clone().unwrap_or_default();
        let decoded = map
            .binary_data
            .as_ref()
            .and_then(|d| d.get(KEY))
            .ok_or_else(|| format!("no {KEY}"))
            .and_then(|bytes| zstd::decode_all(bytes.0.as_slice()).map_err(|e| e.to_string()))
            .and_then(|json| serde_json::from_slice::<Baselines>(&json).map_err(|e| e.to_string()));
        match decoded {
            Ok(baselines) => merged.merge(&baselines),
            Err(e) => unreadable.push(format!("{namespace}/{name}: {e}")),
        }
    }
    Ok((merged, unreadable))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_node_name_makes_a_configmap_name() {
        assert_eq!(super::map_name("Worker_1.example"), "picket-baselines-worker-1-example");
    }
}

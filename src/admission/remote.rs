//! The decisions of a webhook running in a cluster, read through the API server's proxy (so
//! the caller's RBAC decides, and no port is opened): each ready replica's `GET /decisions`,
//! or the Service's when no replica is listed. The token comes from the webhook's TLS Secret.
//! `picket admission decisions --cluster` and the Admission pane both call [`decisions`].

use k8s_openapi::api::core::v1::{Pod, Secret};

use super::install::{NAME, TOKEN_FILE};
use super::review::DecisionRecord;
use super::server::TOKEN_HEADER;
use crate::cluster::inventory::describe;

/// How long one replica may take to answer.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The last `last` decisions of every replica in `namespace`, oldest first, each once.
pub async fn decisions(
    client: &kube::Client,
    context: &str,
    namespace: &str,
    last: usize,
) -> Result<Vec<DecisionRecord>, String> {
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
    let secret_name = format!("{NAME}-tls");
    let secret = secrets.get(&secret_name).await.map_err(|e| {
        format!("context {context}: reading Secret {namespace}/{secret_name} (the decisions token): {}", describe(&e))
    })?;
    let token = secret
        .data
        .as_ref()
        .and_then(|d| d.get(TOKEN_FILE))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("Secret {namespace}/{secret_name} holds no {TOKEN_FILE} (install the webhook again)"))?;

    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), namespace);
    let selector = format!("app.kubernetes.io/name={NAME}");
    let listed = pods
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .map_err(|e| format!("context {context}: listing the webhook's pods: {}", describe(&e)))?;
    let running: Vec<String> = listed
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some())
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let paths: Vec<String> = if running.is_empty() {
        vec![format!("/api/v1/namespaces/{namespace}/services/https:{NAME}:443/proxy/decisions?last={last}")]
    } else {
        running
            .iter()
            .map(|pod| format!("/api/v1/namespaces/{namespace}/pods/https:{pod}:8443/proxy/decisions?last={last}"))
            .collect()
    };
    let mut out: Vec<DecisionRecord> = Vec::new();
    for path in paths {
        let request = http::Request::get(&path)
            .header(TOKEN_HEADER, &token)
            .body(Vec::new())
            .map_err(|e| format!("cannot build the request for {path}: {e}"))?;
        let text = tokio::time::timeout(ASK_TIMEOUT, client.request_text(request))
            .await
            .map_err(|_| {
                format!(
                    "context {context}: the webhook's decisions ({path}): no answer within {}s",
                    ASK_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| format!("context {context}: the webhook's decisions ({path}): {}", describe(&e)))?;
        let records: Vec<DecisionRecord> = serde_json::from_str(&text)
            .map_err(|e| format!("context {context}: the webhook's decisions are not JSON: {e}"))?;
        out.extend(records);
    }
    out.sort_by(|a, b| a.at.cmp(&b.at));
    out.dedup_by(|a, b| a.uid == b.uid);
    let extra = out.len().saturating_sub(last);
    out.drain(..extra);
    Ok(out)
}

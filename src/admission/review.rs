//! AdmissionReview (`admission.k8s.io/v1`) in and out: what the webhook reads from the API
//! server, the answer it sends back, and the record it keeps of each decision.

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::response::Status;
use serde::{Deserialize, Serialize};

use super::Judge;
use super::decide::{Decision, Requester, Verdict};

/// One decision as kept in the store and shown in the Admission pane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// RFC 3339.
    pub at: String,
    pub uid: String,
    pub operation: String,
    pub user: String,
    pub namespace: String,
    pub subject: String,
    pub verdict: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The rules that denied, warned or excepted, each `rule (origin)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// The object as reviewed, for the detail view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<serde_json::Value>,
}

/// The answer to one AdmissionReview body, and the decision's record (None when nothing was
/// judged: a kind without pods, a DELETE, a status update).
pub async fn answer(judge: &Judge, body: &[u8]) -> (AdmissionReview<DynamicObject>, Option<DecisionRecord>) {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(review) => review,
        Err(e) => return (AdmissionResponse::invalid(format!("not an AdmissionReview: {e}")).into_review(), None),
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(_) => return (AdmissionResponse::invalid("an AdmissionReview without a request").into_review(), None),
    };
    let response = AdmissionResponse::from(&request);
    let judged = matches!(request.operation, Operation::Create | Operation::Update)
        && request.sub_resource.as_deref().is_none_or(|s| s == "ephemeralcontainers");
    let Some(object) = request.object.as_ref().filter(|_| judged) else { return (response.into_review(), None) };
    let mut object = match serde_json::to_value(object) {
        Ok(object) => object,
        Err(e) => return (response.deny(format!("picket could not read the object: {e}")).into_review(), None),
    };
    // The review names the kind; the object's own field may be absent.
    if object.get("kind").and_then(|k| k.as_str()).is_none_or(str::is_empty)
        && let Some(map) = object.as_object_mut()
    {
        map.insert("kind".into(), request.kind.kind.clone().into());
    }
    let requester = Requester::new(
        request.user_info.username.as_deref().unwrap_or_default(),
        request.user_info.groups.clone().unwrap_or_default(),
    );
    let namespace = request.namespace.clone().unwrap_or_default();
    let operation = format!("{:?}", request.operation).to_ascii_uppercase();
    match judge.judge(&object, &namespace, &requester).await {
        Ok(Some(decision)) => {
            let record = record(&request, &operation, &requester, &namespace, &decision, object);
            (respond(response, &decision).into_review(), Some(record))
        }
        Ok(None) => (response.into_review(), None),
        Err(e) => {
            let message = format!("picket could not read the {}: {e}", request.kind.kind);
            (response.deny(message).into_review(), None)
        }
    }
}

fn respond(mut response: AdmissionResponse, decision: &Decision) -> AdmissionResponse {
    if !decision.warnings.is_empty() {
        response.warnings = Some(decision.warnings.clone());
    }
    if decision.verdict == Verdict::Denied {
        response.allowed = false;
        response.result = Status::failure(&decision.message, "Forbidden").with_code(403);
    }
    response
}

fn record(
    request: &AdmissionRequest<DynamicObject>,
    operation: &str,
    requester: &Requester,
    namespace: &str,
    decision: &Decision,
    object: serde_json::Value,
) -> DecisionRecord {
    let rules = decision
        .denials
        .iter()
        .chain(&decision.monitored)
        .chain(&decision.exceptions)
        .map(|m| format!("{} ({})", m.rule, m.origin))
        .collect();
    DecisionRecord {
        at: jiff::Timestamp::now().to_string(),
        uid: request.uid.clone(),
        operation: operation.to_string(),
        user: requester.user.clone(),
        namespace: namespace.to_string(),
        subject: decision.subject.clone(),
        verdict: decision.verdict.as_str().to_string(),
        message: decision.message.clone(),
        warnings: decision.warnings.clone(),
        rules,
        object: Some(object),
    }
}

//! Workloads as the pod checks see them: every controller's pod template and every bare pod,
//! each with its containers (init and ephemeral included) flattened to what the checks read.

use k8s_openapi::api::core::v1::{
    Capabilities, ContainerPort, EnvFromSource, EnvVar, PodSecurityContext, PodSpec, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::cluster::inventory::Inventory;

/// A pod template or a bare pod.
pub struct Workload<'a> {
    pub kind: &'static str,
    pub meta: &'a ObjectMeta,
    /// The template's metadata, where annotations such as AppArmor's live.
    pub pod_meta: Option<&'a ObjectMeta>,
    pub spec: &'a PodSpec,
}

impl Workload<'_> {
    pub fn namespace(&self) -> &str {
        self.meta.namespace.as_deref().unwrap_or("default")
    }

    pub fn name(&self) -> &str {
        self.meta.name.as_deref().unwrap_or_default()
    }

    /// `Deployment payments/api`.
    pub fn subject(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace(), self.name())
    }

    pub fn pod_security(&self) -> Option<&PodSecurityContext> {
        self.spec.security_context.as_ref()
    }

    pub fn containers(&self) -> Vec<ContainerView<'_>> {
        let spec = self.spec;
        let regular = spec.init_containers.iter().flatten().chain(spec.containers.iter()).map(|c| ContainerView {
            name: &c.name,
            security: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            env: c.env.as_deref().unwrap_or_default(),
            env_from: c.env_from.as_deref().unwrap_or_default(),
        });
        let ephemeral = spec.ephemeral_containers.iter().flatten().map(|c| ContainerView {
            name: &c.name,
            security: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            env: c.env.as_deref().unwrap_or_default(),
            env_from: c.env_from.as_deref().unwrap_or_default(),
        });
        regular.chain(ephemeral).collect()
    }

    /// Annotations of the pod (the template's, for controllers).
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.pod_meta.unwrap_or(self.meta).annotations.as_ref()?.get(key).map(String::as_str)
    }
}

pub struct ContainerView<'a> {
    pub name: &'a str,
    pub security: Option<&'a SecurityContext>,
    pub ports: &'a [ContainerPort],
    pub env: &'a [EnvVar],
    pub env_from: &'a [EnvFromSource],
}

impl ContainerView<'_> {
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.security.and_then(|s| s.capabilities.as_ref())
    }

    pub fn added_capabilities(&self) -> Vec<String> {
        self.capabilities().and_then(|c| c.add.clone()).unwrap_or_default()
    }

    pub fn dropped_capabilities(&self) -> Vec<String> {
        self.capabilities().and_then(|c| c.drop.clone()).unwrap_or_default()
    }
}

/// Controllers and bare pods. Pods a controller owns, and Jobs a CronJob owns, are judged
/// through their owner's template, once.
pub fn workloads(inv: &Inventory) -> Vec<Workload<'_>> {
    let mut out = Vec::new();
    for d in &inv.deployments {
        let template = &d.spec.template;
        if let Some(spec) = &template.spec {
            out.push(Workload { kind: "Deployment", meta: &d.metadata, pod_meta: template.metadata.as_ref(), spec });
        }
    }
    for s in &inv.stateful_sets {
        let template = &s.spec.template;
        if let Some(spec) = &template.spec {
            out.push(Workload { kind: "StatefulSet", meta: &s.metadata, pod_meta: template.metadata.as_ref(), spec });
        }
    }
    for d in &inv.daemon_sets {
        let template = &d.spec.template;
        if let Some(spec) = &template.spec {
            out.push(Workload { kind: "DaemonSet", meta: &d.metadata, pod_meta: template.metadata.as_ref(), spec });
        }
    }
    for c in &inv.cron_jobs {
        let template = c.spec.job_template.spec.as_ref().map(|j| &j.template);
        if let Some(spec) = template.and_then(|t| t.spec.as_ref()) {
            out.push(Workload {
                kind: "CronJob",
                meta: &c.metadata,
                pod_meta: template.and_then(|t| t.metadata.as_ref()),
                spec,
            });
        }
    }
    for j in inv.jobs.iter().filter(|j| !judged_through_owner(inv, &j.metadata)) {
        if let Some(spec) = j.spec.as_ref().and_then(|s| s.template.spec.as_ref()) {
            out.push(Workload {
                kind: "Job",
                meta: &j.metadata,
                pod_meta: j.spec.as_ref().and_then(|s| s.template.metadata.as_ref()),
                spec,
            });
        }
    }
    for p in inv.pods.iter().filter(|p| !judged_through_owner(inv, &p.metadata)) {
        if let Some(spec) = &p.spec {
            out.push(Workload { kind: "Pod", meta: &p.metadata, pod_meta: None, spec });
        }
    }
    out
}

/// Whether an object's controller is a workload judged in its own right (so the object's
/// template is judged there): a Deployment's ReplicaSet's pods, a StatefulSet's, DaemonSet's or
/// Job's pods, a CronJob's Jobs. Pods of anything else (a bare ReplicaSet, an operator's custom
/// resource, a node's static pod) are judged themselves.
fn judged_through_owner(inv: &Inventory, meta: &ObjectMeta) -> bool {
    let Some(owner) = crate::cluster::inventory::controller(meta) else { return false };
    let namespace = meta.namespace.as_deref();
    let same = |m: &ObjectMeta| m.name.as_deref() == Some(owner.name.as_str()) && m.namespace.as_deref() == namespace;
    match owner.kind.as_str() {
        "Deployment" => inv.deployments.iter().any(|d| same(&d.metadata)),
        "StatefulSet" => inv.stateful_sets.iter().any(|s| same(&s.metadata)),
        "DaemonSet" => inv.daemon_sets.iter().any(|d| same(&d.metadata)),
        "CronJob" => inv.cron_jobs.iter().any(|c| same(&c.metadata)),
        // A listed Job is judged itself or through its CronJob: either way not through its pods.
        "Job" => inv.jobs.iter().any(|j| same(&j.metadata)),
        "ReplicaSet" => {
            inv.replica_sets.iter().find(|r| same(&r.metadata)).is_some_and(|r| judged_through_owner(inv, &r.metadata))
        }
        _ => false,
    }
}

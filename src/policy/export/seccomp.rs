//! A seccomp profile per PicketPolicy from the system calls its group's containers were seen
//! making (the agent counts them per cgroup in the kernel while it learns): every call seen is
//! allowed, any other fails with EPERM. The format is the one Docker, Podman, containerd and CRI-O
//! read (`defaultAction`, `architectures`, `syscalls[].names`); on Kubernetes a node keeps it under
//! `/var/lib/kubelet/seccomp/` for `securityContext.seccompProfile` (`type: Localhost`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{ExportError, Exported};
use crate::policy::PicketPolicy;
use crate::policy::spec::GROUP_ANNOTATION;

/// Each group's system calls as the agent learned them (`Baseline::syscalls`), by group key.
pub type GroupCalls = BTreeMap<String, BTreeSet<String>>;

/// The group whose baseline a policy is about: the one it was learned from (its annotation), else
/// the one its selector names (an owner in its namespace, or an image on a host).
pub fn group_of(policy: &PicketPolicy) -> Option<String> {
    if let Some(group) = policy.metadata.annotations.as_ref().and_then(|a| a.get(GROUP_ANNOTATION)) {
        return Some(group.clone());
    }
    let selector = &policy.spec.selector;
    if let Some(owner) = &selector.owner {
        let namespace = policy.metadata.namespace.as_deref().unwrap_or("default");
        return Some(super::workload_key(namespace, owner));
    }
    selector.image.as_ref().map(|image| format!("local/{image}"))
}

/// This machine's architecture as seccomp names it (the numbers learned are its own; 32-bit
/// calls are not counted, so they stay refused).
fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "SCMP_ARCH_AARCH64",
        _ => "SCMP_ARCH_X86_64",
    }
}

pub fn export(policy: &PicketPolicy, calls: &GroupCalls) -> Result<Exported<Value>, ExportError> {
    let name = policy.metadata.name.clone().unwrap_or_default();
    let namespace = policy.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let title = format!("PicketPolicy {namespace}/{name}");
    let group = group_of(policy).ok_or_else(|| ExportError::NoGroup { policy: title.clone() })?;
    let seen = calls.get(&group).filter(|s| !s.is_empty());
    let Some(seen) = seen else {
        return Err(ExportError::NoSyscalls { policy: title, group });
    };
    let mut notes = Vec::new();
    let (named, unnamed): (Vec<&String>, Vec<&String>) = seen.iter().partition(|n| !n.starts_with("syscall_"));
    if !unnamed.is_empty() {
        let numbers: Vec<&str> = unnamed.iter().map(|n| n.as_str()).collect();
        notes.push(format!(
            "{title}: calls this picket cannot name ({}) are left out: seccomp profiles list names",
            numbers.join(", ")
        ));
    }
    notes.push(format!(
        "{title}: {} calls seen in group {group}; on Kubernetes keep the profile under /var/lib/kubelet/seccomp/ on each node and point securityContext.seccompProfile (type Localhost) at it",
        named.len()
    ));
    let object = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": [architecture()],
        "syscalls": [{ "names": named, "action": "SCMP_ACT_ALLOW" }],
    });
    Ok(Exported { object, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_groups_calls_are_allowed_and_the_rest_refused() {
        let text = "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: web, namespace: shop }
spec:
  selector: { owner: { kind: Deployment, name: web } }
  mode: protect
";
        let policy = super::super::one_policy(text);
        assert_eq!(group_of(&policy).as_deref(), Some("shop/Deployment/web"));
        let mut calls = GroupCalls::new();
        assert_eq!(
            export(&policy, &calls).map(|e| e.object),
            Err(ExportError::NoSyscalls {
                policy: "PicketPolicy shop/web".into(),
                group: "shop/Deployment/web".into()
            })
        );
        let seen = ["read", "write", "execve", "syscall_500"].iter().map(|s| s.to_string()).collect();
        calls.insert("shop/Deployment/web".into(), seen);
        let out = export(&policy, &calls).expect("exported");
        assert_eq!(out.object["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(out.object["syscalls"][0]["names"], json!(["execve", "read", "write"]));
        assert!(out.notes[0].contains("syscall_500"), "{:?}", out.notes);
        // The runtime's own reading of the format takes it.
        let profile: oci_spec::runtime::LinuxSeccomp =
            serde_json::from_value(out.object.clone()).expect("an OCI runtime seccomp profile");
        assert_eq!(profile.syscalls().as_ref().map(|s| s[0].names().len()), Some(3));

        let learned = "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: local-web, annotations: { picket.dev/group: local/localhost/web:1 } }
spec:
  selector: { image: localhost/web:1 }
  mode: monitor
";
        assert_eq!(group_of(&super::super::one_policy(learned)).as_deref(), Some("local/localhost/web:1"));
    }
}

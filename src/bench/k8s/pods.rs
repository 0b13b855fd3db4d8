//! Checks of one workload's pod spec. Each returns what violates the control (None: meets it).
//! Used by CIS section 5.2/5.4/5.6 and by the Pod Security Standards (baseline, restricted).

use super::workloads::{ContainerView, Workload};

type Violation = Option<String>;

fn list(items: Vec<String>) -> Violation {
    if items.is_empty() { None } else { Some(items.join("; ")) }
}

fn each_container(w: &Workload, mut f: impl FnMut(&ContainerView) -> Option<String>) -> Violation {
    list(w.containers().iter().filter_map(|c| f(c).map(|why| format!("container {}: {why}", c.name))).collect())
}

pub fn privileged(w: &Workload) -> Violation {
    each_container(w, |c| c.security.and_then(|s| s.privileged).filter(|p| *p).map(|_| "privileged".into()))
}

pub fn host_pid(w: &Workload) -> Violation {
    w.spec.host_pid.filter(|h| *h).map(|_| "hostPID: true".into())
}

pub fn host_ipc(w: &Workload) -> Violation {
    w.spec.host_ipc.filter(|h| *h).map(|_| "hostIPC: true".into())
}

pub fn host_network(w: &Workload) -> Violation {
    w.spec.host_network.filter(|h| *h).map(|_| "hostNetwork: true".into())
}

pub fn host_namespaces(w: &Workload) -> Violation {
    list([host_network(w), host_pid(w), host_ipc(w)].into_iter().flatten().collect())
}

/// CIS 5.2.6 as kube-bench tests it: an explicit `allowPrivilegeEscalation: true`.
pub fn allows_privilege_escalation(w: &Workload) -> Violation {
    each_container(w, |c| {
        c.security
            .and_then(|s| s.allow_privilege_escalation)
            .filter(|a| *a)
            .map(|_| "allowPrivilegeEscalation: true".into())
    })
}

/// PSS restricted: every container must set `allowPrivilegeEscalation: false`.
pub fn privilege_escalation_not_disabled(w: &Workload) -> Violation {
    each_container(w, |c| match c.security.and_then(|s| s.allow_privilege_escalation) {
        Some(false) => None,
        Some(true) => Some("allowPrivilegeEscalation: true".into()),
        None => Some("allowPrivilegeEscalation not set to false".into()),
    })
}

/// Containers that may run as root: neither runAsNonRoot nor a non-zero runAsUser (container
/// settings override the pod's).
pub fn runs_as_root(w: &Workload) -> Violation {
    let pod = w.pod_security();
    each_container(w, |c| {
        let non_root = c.security.and_then(|s| s.run_as_non_root).or(pod.and_then(|p| p.run_as_non_root));
        let user = c.security.and_then(|s| s.run_as_user).or(pod.and_then(|p| p.run_as_user));
        match (non_root, user) {
            (_, Some(0)) => Some("runAsUser: 0".into()),
            (Some(true), _) | (_, Some(_)) => None,
            _ => Some("may run as root (no runAsNonRoot, no runAsUser)".into()),
        }
    })
}

/// PSS restricted: runAsNonRoot true for every container.
pub fn run_as_non_root_not_set(w: &Workload) -> Violation {
    let pod = w.pod_security().and_then(|p| p.run_as_non_root);
    each_container(w, |c| match c.security.and_then(|s| s.run_as_non_root).or(pod) {
        Some(true) => None,
        Some(false) => Some("runAsNonRoot: false".into()),
        None => Some("runAsNonRoot not set".into()),
    })
}

/// PSS restricted: runAsUser must not be 0.
pub fn run_as_user_zero(w: &Workload) -> Violation {
    let pod = w.pod_security().and_then(|p| p.run_as_user);
    let pod_zero = (pod == Some(0)).then(|| "pod runAsUser: 0".to_string());
    let containers = each_container(w, |c| {
        c.security.and_then(|s| s.run_as_user).filter(|u| *u == 0).map(|_| "runAsUser: 0".into())
    });
    list(pod_zero.into_iter().chain(containers).collect())
}

fn drops(c: &ContainerView, cap: &str) -> bool {
    c.dropped_capabilities().iter().any(|d| d.eq_ignore_ascii_case("ALL") || d.eq_ignore_ascii_case(cap))
}

pub fn keeps_net_raw(w: &Workload) -> Violation {
    each_container(w, |c| (!drops(c, "NET_RAW")).then(|| "NET_RAW not dropped".into()))
}

pub fn adds_capabilities(w: &Workload) -> Violation {
    each_container(w, |c| {
        let added = c.added_capabilities();
        (!added.is_empty()).then(|| format!("adds {}", added.join(", ")))
    })
}

/// Capabilities the baseline profile allows a container to add.
const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

pub fn baseline_capabilities(w: &Workload) -> Violation {
    each_container(w, |c| {
        let beyond: Vec<String> = c
            .added_capabilities()
            .into_iter()
            .filter(|cap| !BASELINE_CAPS.contains(&cap.trim_start_matches("CAP_").to_ascii_uppercase().as_str()))
            .collect();
        (!beyond.is_empty()).then(|| format!("adds {}", beyond.join(", ")))
    })
}

pub fn restricted_capabilities(w: &Workload) -> Violation {
    each_container(w, |c| {
        let mut problems = Vec::new();
        if !c.dropped_capabilities().iter().any(|d| d.eq_ignore_ascii_case("ALL")) {
            problems.push("does not drop ALL".to_string());
        }
        let beyond: Vec<String> =
            c.added_capabilities().into_iter().filter(|cap| !cap.eq_ignore_ascii_case("NET_BIND_SERVICE")).collect();
        if !beyond.is_empty() {
            problems.push(format!("adds {}", beyond.join(", ")));
        }
        (!problems.is_empty()).then(|| problems.join(", "))
    })
}

pub fn host_process(w: &Workload) -> Violation {
    let pod = w.pod_security().and_then(|p| p.windows_options.as_ref()).and_then(|o| o.host_process).filter(|h| *h);
    let pod = pod.map(|_| "pod windowsOptions.hostProcess: true".to_string());
    let containers = each_container(w, |c| {
        c.security
            .and_then(|s| s.windows_options.as_ref())
            .and_then(|o| o.host_process)
            .filter(|h| *h)
            .map(|_| "hostProcess: true".into())
    });
    list(pod.into_iter().chain(containers).collect())
}

pub fn host_path(w: &Workload) -> Violation {
    list(
        w.spec
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| v.host_path.as_ref().map(|h| format!("volume {}: hostPath {}", v.name, h.path)))
            .collect(),
    )
}

pub fn host_ports(w: &Workload) -> Violation {
    each_container(w, |c| {
        let ports: Vec<String> =
            c.ports.iter().filter_map(|p| p.host_port.filter(|h| *h != 0).map(|h| h.to_string())).collect();
        (!ports.is_empty()).then(|| format!("hostPort {}", ports.join(", ")))
    })
}

pub fn secrets_in_env(w: &Workload) -> Violation {
    each_container(w, |c| {
        let mut from: Vec<String> = c
            .env
            .iter()
            .filter_map(|e| {
                let secret = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
                Some(format!("{} from secret {}", e.name, secret.name))
            })
            .collect();
        from.extend(
            c.env_from.iter().filter_map(|e| e.secret_ref.as_ref().map(|s| format!("all of secret {}", s.name))),
        );
        (!from.is_empty()).then(|| format!("env {}", from.join(", ")))
    })
}

fn seccomp_type(w: &Workload, c: &ContainerView) -> Option<String> {
    c.security
        .and_then(|s| s.seccomp_profile.as_ref())
        .or_else(|| w.pod_security().and_then(|p| p.seccomp_profile.as_ref()))
        .map(|p| p.type_.clone())
}

/// CIS 5.6.2 and PSS restricted: RuntimeDefault or Localhost for every container.
pub fn seccomp_not_set(w: &Workload) -> Violation {
    each_container(w, |c| match seccomp_type(w, c).as_deref() {
        Some("RuntimeDefault" | "Localhost") => None,
        Some(other) => Some(format!("seccomp {other}")),
        None => Some("no seccomp profile".into()),
    })
}

/// PSS baseline: not Unconfined, on the pod or any container.
pub fn seccomp_unconfined(w: &Workload) -> Violation {
    let pod = w.pod_security().and_then(|p| p.seccomp_profile.as_ref()).filter(|p| p.type_ == "Unconfined");
    let pod = pod.map(|_| "pod seccomp Unconfined".to_string());
    let containers = each_container(w, |c| {
        c.security
            .and_then(|s| s.seccomp_profile.as_ref())
            .filter(|p| p.type_ == "Unconfined")
            .map(|_| "seccomp Unconfined".into())
    });
    list(pod.into_iter().chain(containers).collect())
}

pub fn no_security_context(w: &Workload) -> Violation {
    if w.pod_security().is_some() {
        return None;
    }
    each_container(w, |c| c.security.is_none().then(|| "no securityContext (nor on the pod)".into()))
}

pub fn in_default_namespace(w: &Workload) -> Violation {
    (w.namespace() == "default").then(|| "runs in the default namespace".into())
}

pub fn apparmor_unconfined(w: &Workload) -> Violation {
    let annotated = w.containers().into_iter().filter_map(|c| {
        let key = format!("container.apparmor.security.beta.kubernetes.io/{}", c.name);
        w.annotation(&key)
            .filter(|v| !(*v == "runtime/default" || v.starts_with("localhost/")))
            .map(|v| format!("container {}: AppArmor {v}", c.name))
    });
    let fields = each_container(w, |c| {
        c.security
            .and_then(|s| s.app_armor_profile.as_ref())
            .filter(|p| p.type_ == "Unconfined")
            .map(|_| "AppArmor Unconfined".into())
    });
    let pod = w
        .pod_security()
        .and_then(|p| p.app_armor_profile.as_ref())
        .filter(|p| p.type_ == "Unconfined")
        .map(|_| "pod AppArmor Unconfined".to_string());
    list(annotated.chain(pod).chain(fields).collect())
}

const SELINUX_TYPES: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"];

pub fn selinux_custom(w: &Workload) -> Violation {
    let check = |o: &k8s_openapi::api::core::v1::SELinuxOptions| -> Option<String> {
        let mut problems = Vec::new();
        if let Some(t) = o.type_.as_deref().filter(|t| !SELINUX_TYPES.contains(t)) {
            problems.push(format!("SELinux type {t}"));
        }
        if o.user.as_deref().is_some_and(|u| !u.is_empty()) || o.role.as_deref().is_some_and(|r| !r.is_empty()) {
            problems.push("SELinux user or role set".to_string());
        }
        (!problems.is_empty()).then(|| problems.join(", "))
    };
    let pod = w.pod_security().and_then(|p| p.se_linux_options.as_ref()).and_then(check).map(|p| format!("pod: {p}"));
    let containers = each_container(w, |c| c.security.and_then(|s| s.se_linux_options.as_ref()).and_then(check));
    list(pod.into_iter().chain(containers).collect())
}

pub fn proc_mount(w: &Workload) -> Violation {
    each_container(w, |c| {
        c.security.and_then(|s| s.proc_mount.as_deref()).filter(|m| *m != "Default").map(|m| format!("procMount {m}"))
    })
}

const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

pub fn unsafe_sysctls(w: &Workload) -> Violation {
    list(
        w.pod_security()
            .and_then(|p| p.sysctls.as_ref())
            .into_iter()
            .flatten()
            .filter(|s| !SAFE_SYSCTLS.contains(&s.name.as_str()))
            .map(|s| format!("sysctl {}", s.name))
            .collect(),
    )
}

const RESTRICTED_VOLUMES: &[&str] =
    &["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

pub fn restricted_volume_types(w: &Workload) -> Violation {
    list(
        w.spec
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| {
                let value = serde_json::to_value(v).ok()?;
                let kind = value.as_object()?.keys().find(|k| *k != "name")?.clone();
                (!RESTRICTED_VOLUMES.contains(&kind.as_str())).then(|| format!("volume {}: {kind}", v.name))
            })
            .collect(),
    )
}

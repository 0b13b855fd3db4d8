//! Cluster checks from a cluster's inventory: CIS Kubernetes Benchmark section 5 (RBAC and
//! service accounts, pod security, network policies, secrets, general), the Pod Security
//! Standards (baseline and restricted) on every workload, and RBAC risks. Every check is a pure
//! function of the inventory, so the same suite runs on a mock API server and a live cluster.

pub mod compare;
pub mod custom;
pub mod pods;
pub mod rbac;
pub mod summary;
pub mod workloads;

use crate::bench::{Assessment, BenchReport, CheckMeta, CheckOutcome, CheckResult, Section, Status};
use std::path::PathBuf;

use crate::cluster::inventory::Inventory;
use crate::model::Severity;
use rbac::Permission;
use workloads::{Workload, workloads};

/// The report's name; its version is the CIS benchmark's.
pub const BENCHMARK: &str = "CIS Kubernetes Benchmark section 5, Pod Security Standards, RBAC risks";
pub const CIS_REFERENCE: &str = "CIS Kubernetes Benchmark v1.12.0";
pub const PSS_REFERENCE: &str = "Kubernetes Pod Security Standards";

pub enum Judge {
    PerWorkload(fn(&Workload) -> Option<String>),
    WhoCan(Permission),
    Custom(fn(&ClusterFacts) -> Vec<CheckResult>),
    Manual(&'static str),
}

pub struct ClusterCheck {
    pub id: &'static str,
    pub section: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub assessment: Assessment,
    pub rationale: &'static str,
    pub remediation: &'static str,
    pub judge: Judge,
}

impl crate::bench::Check<ClusterFacts<'_>> for ClusterCheck {
    fn meta(&self) -> CheckMeta {
        let reference = if self.id.starts_with("PSS") {
            format!("{PSS_REFERENCE}, {} control \"{}\"", self.section.trim_start_matches("PSS "), self.title)
        } else if self.id.starts_with("PKT") {
            "picket RBAC risk".to_string()
        } else {
            format!("{CIS_REFERENCE}, recommendation {}", self.id)
        };
        CheckMeta {
            id: self.id.to_string(),
            title: self.title.to_string(),
            section: self.section.to_string(),
            severity: self.severity,
            assessment: self.assessment,
            rationale: self.rationale.to_string(),
            remediation: self.remediation.to_string(),
            references: vec![reference],
        }
    }

    fn judge(&self, facts: &ClusterFacts) -> Vec<CheckResult> {
        let workloads = &facts.workloads;
        match &self.judge {
            Judge::PerWorkload(check) => {
                if workloads.is_empty() {
                    return vec![CheckResult::new(Status::Skip, "workloads", "no workloads listed")];
                }
                workloads
                    .iter()
                    .map(|w| match check(w) {
                        Some(why) => CheckResult::new(Status::Fail, w.subject(), why),
                        None => CheckResult::new(Status::Pass, w.subject(), "meets it"),
                    })
                    .collect()
            }
            Judge::WhoCan(permission) => rbac::who_can(&facts.grants, permission),
            Judge::Custom(check) => check(facts),
            Judge::Manual(review) => {
                vec![CheckResult::new(Status::Warn, "cluster", format!("manual: review that {review}"))]
            }
        }
    }
}

/// The Pod Security Standards controls one workload fails, `PSS-B.2 Host Namespaces:
/// hostNetwork: true`: the baseline level's, and with `restricted` the restricted level's too.
pub fn pss_violations(workload: &Workload, restricted: bool) -> Vec<String> {
    checks()
        .into_iter()
        .filter(|c| c.section == "PSS baseline" || (restricted && c.section == "PSS restricted"))
        .filter_map(|c| match c.judge {
            Judge::PerWorkload(check) => check(workload).map(|why| format!("{} {}: {why}", c.id, c.title)),
            _ => None,
        })
        .collect()
}

pub fn checks() -> Vec<ClusterCheck> {
    use Judge::{Custom, PerWorkload, WhoCan};
    use Severity::{Critical, High, Low, Medium};
    const AUTOMATED: Assessment = Assessment::Automated;
    const MANUAL: Assessment = Assessment::Manual;
    vec![
        ClusterCheck {
            id: "5.1.1",
            section: "5",
            title: "Ensure that the cluster-admin role is only used where required",
            severity: High,
            assessment: AUTOMATED,
            rationale: "cluster-admin can do anything anywhere; every extra binding of it is a full compromise waiting.",
            remediation: "Bind narrower roles; keep cluster-admin for break-glass accounts.",
            judge: Custom(rbac::cluster_admin_bindings),
        },
        ClusterCheck {
            id: "5.1.2",
            section: "5",
            title: "Minimize access to secrets",
            severity: High,
            assessment: AUTOMATED,
            rationale: "Reading Secrets gives their credentials, and list returns every value.",
            remediation: "Grant Secret access per name (resourceNames) to the workloads that need it only.",
            judge: WhoCan(Permission { verbs: &["get", "list", "watch"], group: "", resources: &["secrets"] }),
        },
        ClusterCheck {
            id: "5.1.3",
            section: "5",
            title: "Minimize wildcard use in Roles and ClusterRoles",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "Wildcards grant permissions on resources and verbs added later, unseen.",
            remediation: "List the verbs, resources and API groups a role needs.",
            judge: Custom(rbac::wildcard_roles),
        },
        ClusterCheck {
            id: "5.1.4",
            section: "5",
            title: "Minimize access to create pods",
            severity: High,
            assessment: AUTOMATED,
            rationale: "Whoever can create pods can run them privileged, mount any Secret of the namespace, and take the node.",
            remediation: "Grant pod creation to controllers and deployment pipelines only.",
            judge: WhoCan(Permission { verbs: &["create"], group: "", resources: &["pods"] }),
        },
        ClusterCheck {
            id: "5.1.5",
            section: "5",
            title: "Ensure that default service accounts are not actively used",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "Pods without a service account get `default`; permissions given to it reach every such pod.",
            remediation: "Set `automountServiceAccountToken: false` on each namespace's default service account and bind nothing to it.",
            judge: Custom(rbac::default_service_accounts),
        },
        ClusterCheck {
            id: "5.1.6",
            section: "5",
            title: "Ensure that Service Account Tokens are only mounted where necessary",
            severity: Low,
            assessment: AUTOMATED,
            rationale: "A mounted token is a credential to the API for anyone who gets into the container.",
            remediation: "Set `automountServiceAccountToken: false` on pods (or their service accounts) that do not call the API.",
            judge: Custom(token_mounts),
        },
        ClusterCheck {
            id: "5.1.7",
            section: "5",
            title: "Avoid use of system:masters group",
            severity: High,
            assessment: MANUAL,
            rationale: "system:masters bypasses RBAC entirely and cannot be revoked by removing bindings.",
            remediation: "Use cluster-admin bindings instead of the system:masters group.",
            judge: Custom(rbac::system_masters),
        },
        ClusterCheck {
            id: "5.1.8",
            section: "5",
            title: "Limit use of the Bind, Impersonate and Escalate permissions in the Kubernetes cluster",
            severity: High,
            assessment: MANUAL,
            rationale: "bind, escalate and impersonate let a subject grant itself more than it has.",
            remediation: "Remove bind, escalate and impersonate from roles that do not administer RBAC.",
            judge: WhoCan(Permission {
                verbs: &["bind", "escalate", "impersonate"],
                group: "*",
                resources: &["clusterroles", "roles", "users", "groups", "serviceaccounts"],
            }),
        },
        ClusterCheck {
            id: "5.1.9",
            section: "5",
            title: "Minimize access to create persistent volumes",
            severity: Medium,
            assessment: MANUAL,
            rationale: "A PersistentVolume can point at a host path and so at the node's files.",
            remediation: "Grant PersistentVolume creation to storage administrators only.",
            judge: WhoCan(Permission { verbs: &["create"], group: "", resources: &["persistentvolumes"] }),
        },
        ClusterCheck {
            id: "5.1.10",
            section: "5",
            title: "Minimize access to the proxy sub-resource of nodes",
            severity: High,
            assessment: MANUAL,
            rationale: "nodes/proxy reaches the kubelet's API, which runs commands in every pod of the node.",
            remediation: "Remove nodes/proxy from roles of people and workloads.",
            judge: WhoCan(Permission { verbs: &["get", "create"], group: "", resources: &["nodes/proxy"] }),
        },
        ClusterCheck {
            id: "5.1.11",
            section: "5",
            title: "Minimize access to the approval sub-resource of certificatesigningrequests objects",
            severity: High,
            assessment: MANUAL,
            rationale: "Approving CSRs issues client certificates, for any identity.",
            remediation: "Keep CSR approval to the controller manager.",
            judge: WhoCan(Permission {
                verbs: &["update", "patch"],
                group: "certificates.k8s.io",
                resources: &["certificatesigningrequests/approval"],
            }),
        },
        ClusterCheck {
            id: "5.1.12",
            section: "5",
            title: "Minimize access to webhook configuration objects",
            severity: High,
            assessment: MANUAL,
            rationale: "Webhook configurations see and can change every object the API server admits.",
            remediation: "Grant webhook configuration changes to cluster administrators only.",
            judge: WhoCan(Permission {
                verbs: &["create", "update", "patch", "delete"],
                group: "admissionregistration.k8s.io",
                resources: &["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
            }),
        },
        ClusterCheck {
            id: "5.1.13",
            section: "5",
            title: "Minimize access to the service account token creation",
            severity: High,
            assessment: MANUAL,
            rationale: "Creating tokens lets a subject act as any service account of the namespace.",
            remediation: "Remove serviceaccounts/token create from roles that do not need it.",
            judge: WhoCan(Permission { verbs: &["create"], group: "", resources: &["serviceaccounts/token"] }),
        },
        ClusterCheck {
            id: "5.2.1",
            section: "5",
            title: "Ensure that the cluster has at least one active policy control mechanism in place",
            severity: Medium,
            assessment: MANUAL,
            rationale: "Without admission policy nothing stops a privileged pod.",
            remediation: "Enable Pod Security Admission (`pod-security.kubernetes.io/enforce` labels) or a policy engine.",
            judge: Custom(policy_control),
        },
        ClusterCheck {
            id: "5.2.2",
            section: "5",
            title: "Minimize the admission of privileged containers",
            severity: Critical,
            assessment: MANUAL,
            rationale: "A privileged container is root on the node.",
            remediation: "Remove `privileged: true`.",
            judge: PerWorkload(pods::privileged),
        },
        ClusterCheck {
            id: "5.2.3",
            section: "5",
            title: "Minimize the admission of containers wishing to share the host process ID namespace",
            severity: High,
            assessment: MANUAL,
            rationale: "With the host's PID namespace a pod sees and signals every process of the node.",
            remediation: "Remove `hostPID: true`.",
            judge: PerWorkload(pods::host_pid),
        },
        ClusterCheck {
            id: "5.2.4",
            section: "5",
            title: "Minimize the admission of containers wishing to share the host IPC namespace",
            severity: High,
            assessment: MANUAL,
            rationale: "With the host's IPC namespace a pod reaches the node's shared memory.",
            remediation: "Remove `hostIPC: true`.",
            judge: PerWorkload(pods::host_ipc),
        },
        ClusterCheck {
            id: "5.2.5",
            section: "5",
            title: "Minimize the admission of containers wishing to share the host network namespace",
            severity: High,
            assessment: MANUAL,
            rationale: "With the host's network a pod sees every interface and can bind node ports.",
            remediation: "Remove `hostNetwork: true`.",
            judge: PerWorkload(pods::host_network),
        },
        ClusterCheck {
            id: "5.2.6",
            section: "5",
            title: "Minimize the admission of containers with allowPrivilegeEscalation",
            severity: High,
            assessment: MANUAL,
            rationale: "Privilege escalation lets setuid binaries raise a process's privileges.",
            remediation: "Set `allowPrivilegeEscalation: false`.",
            judge: PerWorkload(pods::allows_privilege_escalation),
        },
        ClusterCheck {
            id: "5.2.7",
            section: "5",
            title: "Minimize the admission of root containers",
            severity: Medium,
            assessment: MANUAL,
            rationale: "Root in a container is root on the node after an escape.",
            remediation: "Set `runAsNonRoot: true` and a non-zero `runAsUser`.",
            judge: PerWorkload(pods::runs_as_root),
        },
        ClusterCheck {
            id: "5.2.8",
            section: "5",
            title: "Minimize the admission of containers with the NET_RAW capability",
            severity: Medium,
            assessment: MANUAL,
            rationale: "NET_RAW allows crafted packets and spoofing on the pod network.",
            remediation: "Drop NET_RAW (or ALL) in `capabilities.drop`.",
            judge: PerWorkload(pods::keeps_net_raw),
        },
        ClusterCheck {
            id: "5.2.9",
            section: "5",
            title: "Minimize the admission of containers with capabilities assigned",
            severity: Medium,
            assessment: MANUAL,
            rationale: "Added capabilities widen what a container can do to the node.",
            remediation: "Remove `capabilities.add`, or add only what is needed and justified.",
            judge: PerWorkload(pods::adds_capabilities),
        },
        ClusterCheck {
            id: "5.2.10",
            section: "5",
            title: "Minimize the admission of Windows HostProcess containers",
            severity: High,
            assessment: MANUAL,
            rationale: "A Windows HostProcess container is a process on the host.",
            remediation: "Remove `hostProcess: true`.",
            judge: PerWorkload(pods::host_process),
        },
        ClusterCheck {
            id: "5.2.11",
            section: "5",
            title: "Minimize the admission of HostPath volumes",
            severity: High,
            assessment: MANUAL,
            rationale: "hostPath volumes expose the node's files to the pod.",
            remediation: "Use persistent volumes, emptyDir or projected volumes instead.",
            judge: PerWorkload(pods::host_path),
        },
        ClusterCheck {
            id: "5.2.12",
            section: "5",
            title: "Minimize the admission of containers which use HostPorts",
            severity: Medium,
            assessment: MANUAL,
            rationale: "Host ports bind the node's interfaces and bypass network policy.",
            remediation: "Use Services instead of hostPort.",
            judge: PerWorkload(pods::host_ports),
        },
        ClusterCheck {
            id: "5.3.1",
            section: "5",
            title: "Ensure that the CNI in use supports NetworkPolicies",
            severity: Medium,
            assessment: MANUAL,
            rationale: "NetworkPolicies do nothing with a CNI that ignores them.",
            remediation: "Use a CNI plugin that enforces NetworkPolicy.",
            judge: Judge::Manual(
                "the CNI plugin enforces NetworkPolicy (Calico, Cilium, Antrea, …; not plain flannel)",
            ),
        },
        ClusterCheck {
            id: "5.3.2",
            section: "5",
            title: "Ensure that all Namespaces have NetworkPolicies defined",
            severity: Medium,
            assessment: MANUAL,
            rationale: "Without a NetworkPolicy every pod of a namespace accepts traffic from everywhere.",
            remediation: "Add a default-deny NetworkPolicy to each namespace and allow what is needed.",
            judge: Custom(network_policies),
        },
        ClusterCheck {
            id: "5.4.1",
            section: "5",
            title: "Prefer using Secrets as files over Secrets as environment variables",
            severity: Medium,
            assessment: MANUAL,
            rationale: "Environment variables leak into logs, crash dumps and child processes.",
            remediation: "Mount Secrets as files instead of environment variables.",
            judge: PerWorkload(pods::secrets_in_env),
        },
        ClusterCheck {
            id: "5.4.2",
            section: "5",
            title: "Consider external secret storage",
            severity: Low,
            assessment: MANUAL,
            rationale: "etcd is one place for every secret; an external store adds rotation and audit.",
            remediation: "Consider an external secret store.",
            judge: Judge::Manual(
                "an external secret store (Vault, a cloud KMS, External Secrets) holds the cluster's secrets",
            ),
        },
        ClusterCheck {
            id: "5.5.1",
            section: "5",
            title: "Configure Image Provenance using ImagePolicyWebhook admission controller",
            severity: Medium,
            assessment: MANUAL,
            rationale: "Unverified images may be tampered with.",
            remediation: "Verify image signatures at admission.",
            judge: Judge::Manual(
                "image provenance is enforced at admission (ImagePolicyWebhook, signature verification)",
            ),
        },
        ClusterCheck {
            id: "5.6.1",
            section: "5",
            title: "Create administrative boundaries between resources using namespaces",
            severity: Low,
            assessment: MANUAL,
            rationale: "Namespaces are the boundary RBAC, quotas and policies apply to.",
            remediation: "Create namespaces per team or application.",
            judge: Judge::Manual("namespaces separate teams and applications"),
        },
        ClusterCheck {
            id: "5.6.2",
            section: "5",
            title: "Ensure that the seccomp profile is set to docker/default in your Pod definitions",
            severity: Medium,
            assessment: MANUAL,
            rationale: "Without a seccomp profile containers reach the whole kernel system call surface.",
            remediation: "Set `seccompProfile: {type: RuntimeDefault}` on the pod.",
            judge: PerWorkload(pods::seccomp_not_set),
        },
        ClusterCheck {
            id: "5.6.3",
            section: "5",
            title: "Apply SecurityContext to your Pods and Containers",
            severity: Medium,
            assessment: MANUAL,
            rationale: "Security contexts are where privileges are restricted.",
            remediation: "Give every pod and container a securityContext.",
            judge: PerWorkload(pods::no_security_context),
        },
        ClusterCheck {
            id: "5.6.4",
            section: "5",
            title: "The default namespace should not be used",
            severity: Low,
            assessment: MANUAL,
            rationale: "The default namespace collects workloads without boundaries.",
            remediation: "Deploy into namespaces of their own.",
            judge: PerWorkload(pods::in_default_namespace),
        },
        ClusterCheck {
            id: "PSS-B.1",
            section: "PSS baseline",
            title: "HostProcess",
            severity: High,
            assessment: AUTOMATED,
            rationale: "Windows HostProcess containers run on the host.",
            remediation: "Remove hostProcess.",
            judge: PerWorkload(pods::host_process),
        },
        ClusterCheck {
            id: "PSS-B.2",
            section: "PSS baseline",
            title: "Host Namespaces",
            severity: High,
            assessment: AUTOMATED,
            rationale: "Sharing the host's namespaces breaks isolation.",
            remediation: "Remove hostNetwork, hostPID and hostIPC.",
            judge: PerWorkload(pods::host_namespaces),
        },
        ClusterCheck {
            id: "PSS-B.3",
            section: "PSS baseline",
            title: "Privileged Containers",
            severity: Critical,
            assessment: AUTOMATED,
            rationale: "Privileged containers disable most isolation.",
            remediation: "Remove privileged: true.",
            judge: PerWorkload(pods::privileged),
        },
        ClusterCheck {
            id: "PSS-B.4",
            section: "PSS baseline",
            title: "Capabilities",
            severity: High,
            assessment: AUTOMATED,
            rationale: "Capabilities beyond the default set act on the host.",
            remediation: "Add only capabilities of the baseline list.",
            judge: PerWorkload(pods::baseline_capabilities),
        },
        ClusterCheck {
            id: "PSS-B.5",
            section: "PSS baseline",
            title: "HostPath Volumes",
            severity: High,
            assessment: AUTOMATED,
            rationale: "hostPath volumes expose the node's files.",
            remediation: "Remove hostPath volumes.",
            judge: PerWorkload(pods::host_path),
        },
        ClusterCheck {
            id: "PSS-B.6",
            section: "PSS baseline",
            title: "Host Ports",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "Host ports bind node interfaces.",
            remediation: "Remove hostPort.",
            judge: PerWorkload(pods::host_ports),
        },
        ClusterCheck {
            id: "PSS-B.7",
            section: "PSS baseline",
            title: "AppArmor",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "An unconfined AppArmor profile removes confinement.",
            remediation: "Use runtime/default or a localhost profile.",
            judge: PerWorkload(pods::apparmor_unconfined),
        },
        ClusterCheck {
            id: "PSS-B.8",
            section: "PSS baseline",
            title: "SELinux",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "Custom SELinux types, users or roles can escape confinement.",
            remediation: "Use the container SELinux types only.",
            judge: PerWorkload(pods::selinux_custom),
        },
        ClusterCheck {
            id: "PSS-B.9",
            section: "PSS baseline",
            title: "/proc Mount Type",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "An unmasked /proc exposes host kernel information.",
            remediation: "Use procMount Default.",
            judge: PerWorkload(pods::proc_mount),
        },
        ClusterCheck {
            id: "PSS-B.10",
            section: "PSS baseline",
            title: "Seccomp",
            severity: High,
            assessment: AUTOMATED,
            rationale: "An Unconfined seccomp profile disables system call filtering.",
            remediation: "Do not set seccomp Unconfined.",
            judge: PerWorkload(pods::seccomp_unconfined),
        },
        ClusterCheck {
            id: "PSS-B.11",
            section: "PSS baseline",
            title: "Sysctls",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "Unsafe sysctls change the whole node's kernel.",
            remediation: "Use only the safe sysctls.",
            judge: PerWorkload(pods::unsafe_sysctls),
        },
        ClusterCheck {
            id: "PSS-R.1",
            section: "PSS restricted",
            title: "Volume Types",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "Only volume types that cannot reach the node are allowed.",
            remediation: "Use configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected or secret volumes.",
            judge: PerWorkload(pods::restricted_volume_types),
        },
        ClusterCheck {
            id: "PSS-R.2",
            section: "PSS restricted",
            title: "Privilege Escalation",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "Privilege escalation must be turned off explicitly.",
            remediation: "Set allowPrivilegeEscalation: false on every container.",
            judge: PerWorkload(pods::privilege_escalation_not_disabled),
        },
        ClusterCheck {
            id: "PSS-R.3",
            section: "PSS restricted",
            title: "Running as Non-root",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "Containers must be required to run as non-root.",
            remediation: "Set runAsNonRoot: true.",
            judge: PerWorkload(pods::run_as_non_root_not_set),
        },
        ClusterCheck {
            id: "PSS-R.4",
            section: "PSS restricted",
            title: "Running as Non-root user",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "UID 0 is root.",
            remediation: "Do not set runAsUser: 0.",
            judge: PerWorkload(pods::run_as_user_zero),
        },
        ClusterCheck {
            id: "PSS-R.5",
            section: "PSS restricted",
            title: "Seccomp",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "A seccomp profile must be set explicitly.",
            remediation: "Set seccompProfile type RuntimeDefault or Localhost.",
            judge: PerWorkload(pods::seccomp_not_set),
        },
        ClusterCheck {
            id: "PSS-R.6",
            section: "PSS restricted",
            title: "Capabilities",
            severity: Medium,
            assessment: AUTOMATED,
            rationale: "Containers must drop every capability and may add back only NET_BIND_SERVICE.",
            remediation: "Drop ALL; add at most NET_BIND_SERVICE.",
            judge: PerWorkload(pods::restricted_capabilities),
        },
        ClusterCheck {
            id: "PKT-RBAC.1",
            section: "RBAC risks",
            title: "Exec and attach into pods",
            severity: High,
            assessment: AUTOMATED,
            rationale: "Exec and attach run commands inside running pods, with their service account tokens and Secrets.",
            remediation: "Grant exec and attach to on-call roles only, and audit their use.",
            judge: WhoCan(Permission {
                verbs: &["create", "get"],
                group: "",
                resources: &["pods/exec", "pods/attach"],
            }),
        },
        ClusterCheck {
            id: "PKT-RBAC.2",
            section: "RBAC risks",
            title: "Permissions granted to every user",
            severity: Critical,
            assessment: AUTOMATED,
            rationale: "A binding to system:authenticated or system:unauthenticated gives its role to everyone who can reach the API.",
            remediation: "Bind roles to named users, groups or service accounts.",
            judge: Custom(broad_grants),
        },
    ]
}

/// What the checks read besides the inventory, worked out once per run: the workloads and every
/// binding resolved to its rules.
pub struct ClusterFacts<'a> {
    pub inv: &'a Inventory,
    pub workloads: Vec<Workload<'a>>,
    pub grants: Vec<rbac::Grant<'a>>,
}

impl<'a> ClusterFacts<'a> {
    pub fn new(inv: &'a Inventory) -> Self {
        Self { inv, workloads: workloads(inv), grants: rbac::grants(inv) }
    }
}

/// `picket bench k8s` and the Compliance pane's cluster run.
#[derive(Debug, Clone, Default)]
pub struct K8sOptions {
    /// The kubeconfig context; none: the current one.
    pub context: Option<String>,
    /// Directories of custom checks read when present (the user's config `checks/`).
    pub check_dirs: Vec<PathBuf>,
    /// Directories of custom checks that must exist (`--checks`).
    pub required_check_dirs: Vec<PathBuf>,
    /// How the cluster is listed (`--chunk-size`).
    pub list: crate::cluster::inventory::ListOptions,
}

/// Reads the shipped and custom checks (a broken one is an error before the cluster is asked),
/// lists the cluster's objects and judges them. Kinds the cluster would not list are notes.
pub async fn run(options: &K8sOptions) -> Result<super::Benchmarked, super::BenchError> {
    let (optional, required) = (options.check_dirs.clone(), options.required_check_dirs.clone());
    let custom = super::blocking(move || {
        let mut custom = custom::shipped()?;
        custom.extend(custom::load_dirs(&optional, &required)?);
        Ok::<_, custom::CustomCheckError>(custom)
    })
    .await??;
    let (client, name) = crate::cluster::client_for(options.context.as_deref()).await?;
    let inventory = crate::cluster::inventory::load_with(&client, &name, options.list).await?;
    super::blocking(move || {
        let notes = inventory
            .unlisted
            .iter()
            .map(|f| format!("context {}: cannot {} ({})", inventory.context, f.needs(), f.message))
            .collect();
        super::Benchmarked { report: judge_with(&inventory, &custom), notes }
    })
    .await
}

/// Runs every built-in check.
pub fn judge(inv: &Inventory) -> BenchReport {
    judge_with(inv, &[])
}

/// Runs every built-in check and these custom ones.
pub fn judge_with(inv: &Inventory, custom: &[custom::CustomCheck]) -> BenchReport {
    judge_on(&ClusterFacts::new(inv), custom)
}

/// Kinds a check of each judge reads (resources as `Unlisted` names them, before the group).
const WORKLOAD_KINDS: &[&str] =
    &["pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs", "serviceaccounts"];
const RBAC_KINDS: &[&str] = &["roles", "clusterroles", "rolebindings", "clusterrolebindings"];

impl ClusterCheck {
    /// The kinds this check reads; None: any of them (checks over the whole inventory).
    fn reads(&self) -> Option<&'static [&'static str]> {
        match self.judge {
            Judge::PerWorkload(_) => Some(WORKLOAD_KINDS),
            Judge::WhoCan(_) => Some(RBAC_KINDS),
            Judge::Manual(_) => Some(&[]),
            Judge::Custom(_) => None,
        }
    }
}

/// `run_with` on facts the caller keeps (to summarise workloads from the same facts). A check
/// that needed a kind the cluster would not list says so in a WARN result ("not evaluated on …"),
/// and the report lists what was not read.
pub fn judge_on(facts: &ClusterFacts, custom: &[custom::CustomCheck]) -> BenchReport {
    let inv = facts.inv;
    let builtin = checks();
    let mut checks: Vec<CheckOutcome> = crate::bench::judge_all(&builtin, facts);
    let reads: Vec<Option<&[&str]>> =
        builtin.iter().map(ClusterCheck::reads).chain(custom.iter().map(|_| None)).collect();
    checks.extend(crate::bench::judge_all(custom, facts));
    for (check, reads) in checks.iter_mut().zip(reads) {
        let missing: Vec<String> = inv
            .unlisted
            .iter()
            .filter(|u| {
                let kind = u.resource.split('.').next().unwrap_or_default();
                reads.is_none_or(|kinds| kinds.contains(&kind))
            })
            .map(|u| u.needs())
            .collect();
        if !missing.is_empty() {
            check.results.push(CheckResult::new(
                Status::Warn,
                "what picket could list",
                format!("not evaluated on what it could not list: could not {}", missing.join(", ")),
            ));
        }
    }
    let unread = inv
        .unlisted
        .iter()
        .map(|u| crate::bench::Unread {
            what: u.resource.clone(),
            why: u.why.as_str().to_string(),
            message: u.message.clone(),
        })
        .collect();
    BenchReport {
        benchmark: BENCHMARK.into(),
        version: "1.12.0".into(),
        target: format!("context {}", inv.context),
        sections: ["5", "PSS baseline", "PSS restricted", "RBAC risks", custom::SECTION]
            .iter()
            .map(|s| Section {
                id: (*s).into(),
                title: match *s {
                    "5" => "Policies".into(),
                    other => other.to_string(),
                },
            })
            .collect(),
        checks,
        unread,
    }
}

/// CIS 5.1.6: workloads that mount a service account token (the pod's setting, else its
/// service account's, else Kubernetes' default: mounted).
fn token_mounts(facts: &ClusterFacts) -> Vec<CheckResult> {
    let (inv, workloads) = (facts.inv, &facts.workloads);
    if workloads.is_empty() {
        return vec![CheckResult::new(Status::Skip, "workloads", "no workloads listed")];
    }
    workloads
        .iter()
        .map(|w| {
            let sa_name = w.spec.service_account_name.clone().unwrap_or_else(|| "default".into());
            let sa = inv.service_accounts.iter().find(|s| {
                s.metadata.name.as_deref() == Some(&sa_name) && s.metadata.namespace.as_deref() == Some(w.namespace())
            });
            let mounted = w
                .spec
                .automount_service_account_token
                .or(sa.and_then(|s| s.automount_service_account_token))
                .unwrap_or(true);
            if mounted {
                CheckResult::new(Status::Fail, w.subject(), format!("mounts the token of ServiceAccount {sa_name}"))
            } else {
                CheckResult::new(Status::Pass, w.subject(), "no token mounted")
            }
        })
        .collect()
}

/// CIS 5.2.1: Pod Security Admission labels on namespaces.
fn policy_control(facts: &ClusterFacts) -> Vec<CheckResult> {
    let inv = facts.inv;
    let enforced: Vec<String> = inv
        .namespaces
        .iter()
        .filter_map(|ns| {
            // `privileged` is a level that enforces nothing.
            let level = ns.metadata.labels.as_ref()?.get("pod-security.kubernetes.io/enforce")?;
            matches!(level.as_str(), "baseline" | "restricted")
                .then(|| format!("{}={level}", ns.metadata.name.as_deref().unwrap_or_default()))
        })
        .collect();
    if enforced.is_empty() {
        vec![CheckResult::new(
            Status::Warn,
            "cluster",
            "no namespace enforces the baseline or restricted Pod Security Standard (pod-security.kubernetes.io/enforce); confirm another admission policy (Kyverno, Gatekeeper) is in place",
        )]
    } else {
        vec![CheckResult::new(
            Status::Pass,
            "cluster",
            format!("Pod Security Admission enforces {}", enforced.join(", ")),
        )]
    }
}

/// Namespaces Kubernetes itself runs in.
const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// CIS 5.3.2: every namespace people use has a NetworkPolicy.
fn network_policies(facts: &ClusterFacts) -> Vec<CheckResult> {
    let inv = facts.inv;
    let mut results = Vec::new();
    for ns in &inv.namespaces {
        let name = ns.metadata.name.clone().unwrap_or_default();
        if SYSTEM_NAMESPACES.contains(&name.as_str()) {
            continue;
        }
        let count = inv.network_policies.iter().filter(|p| p.metadata.namespace.as_deref() == Some(&name)).count();
        let subject = format!("Namespace {name}");
        results.push(if count == 0 {
            CheckResult::new(Status::Fail, subject, "no NetworkPolicy")
        } else {
            CheckResult::new(Status::Pass, subject, format!("{count} NetworkPolicies"))
        });
    }
    if results.is_empty() {
        results.push(CheckResult::new(Status::Skip, "namespaces", "no namespaces listed"));
    }
    results
}

/// PKT-RBAC.2: any binding (Kubernetes' own discovery roles aside) to everyone.
fn broad_grants(facts: &ClusterFacts) -> Vec<CheckResult> {
    let results: Vec<CheckResult> = facts
        .grants
        .iter()
        .filter(|g| !g.system && g.is_broad())
        .map(|g| {
            let who: Vec<String> = g.subjects.iter().map(|s| rbac::subject_text(s)).collect();
            CheckResult::new(Status::Fail, g.binding.clone(), format!("binds {} to {}", g.role, who.join(", ")))
        })
        .collect();
    if results.is_empty() {
        vec![CheckResult::new(
            Status::Pass,
            "RBAC",
            "no binding outside Kubernetes' own names system:authenticated, system:unauthenticated or system:anonymous",
        )]
    } else {
        results
    }
}

#[cfg(test)]
mod tests;

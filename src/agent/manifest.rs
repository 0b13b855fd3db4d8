//! The agent as Kubernetes objects: what `picket agent manifest` prints and the console's
//! deploy key applies.

/// The image `picket agent manifest` and the console's deploy key use unless told otherwise.
pub const DEFAULT_IMAGE: &str = "ghcr.io/picket/picket:0.1.0";

/// Where the DaemonSet's agents serve their events inside their pods (loopback: reached by
/// port-forward only).
pub const AGENT_PORT: u16 = 7946;

/// The namespace and label the DaemonSet's pods are found by.
pub const NAMESPACE: &str = "picket-system";
pub const APP_LABEL: &str = "app.kubernetes.io/name=picket-agent";

/// The agent as a DaemonSet: privileged (it loads BPF programs), in the host's PID namespace
/// (its pids are the node's), with the kernel's BTF, the cgroup hierarchy and securityfs from the
/// host. Its ServiceAccount may read pods, for attribution by pod UID.
pub fn manifest(namespace: &str, image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {namespace}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: picket-agent
  namespace: {namespace}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: picket-agent
rules:
  - apiGroups: [""]
    resources: ["pods", "nodes"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["picket.dev"]
    resources: ["picketpolicies", "picketclusterpolicies"]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: picket-agent
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: picket-agent
subjects:
  - kind: ServiceAccount
    name: picket-agent
    namespace: {namespace}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: picket-agent-baselines
  namespace: {namespace}
rules:
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["get", "list", "create", "patch", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: picket-agent-baselines
  namespace: {namespace}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: picket-agent-baselines
subjects:
  - kind: ServiceAccount
    name: picket-agent
    namespace: {namespace}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: picket-agent
  namespace: {namespace}
  labels:
    app.kubernetes.io/name: picket-agent
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: picket-agent
  updateStrategy:
    type: RollingUpdate
  template:
    metadata:
      labels:
        app.kubernetes.io/name: picket-agent
    spec:
      serviceAccountName: picket-agent
      hostPID: true
      priorityClassName: system-node-critical
      tolerations:
        - operator: Exists
      containers:
        - name: agent
          image: {image}
          args: ["agent", "run", "--quiet", "--socket", "/run/picket/agent.sock", "--listen", "127.0.0.1:7946", "--policies-from-cluster"]
          env:
            - name: NODE_NAME
              valueFrom:
                fieldRef:
                  fieldPath: spec.nodeName
            # Where the node's baselines are published (its own namespace).
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
          securityContext:
            privileged: true
          resources:
            requests:
              cpu: 50m
              memory: 64Mi
            limits:
              memory: 256Mi
          volumeMounts:
            - name: btf
              mountPath: /sys/kernel/btf
              readOnly: true
            - name: cgroup
              mountPath: /sys/fs/cgroup
              readOnly: true
            - name: securityfs
              mountPath: /sys/kernel/security
              readOnly: true
            # Baselines and the policy in force survive the pod (learning goes on for days).
            - name: state
              mountPath: /var/lib/picket/agent
      volumes:
        - name: btf
          hostPath:
            path: /sys/kernel/btf
        - name: cgroup
          hostPath:
            path: /sys/fs/cgroup
        - name: securityfs
          hostPath:
            path: /sys/kernel/security
        - name: state
          hostPath:
            path: /var/lib/picket/agent
            type: DirectoryOrCreate
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_has_no_misindented_line() {
        for doc in manifest("picket-system", "picket:1").split("\n---\n") {
            assert_eq!(crate::yaml::indentation_fault(doc), None, "{doc}");
        }
    }

    #[test]
    fn the_manifest_is_valid_kubernetes_yaml() {
        let text = manifest("sec", "registry.example.com/picket:1");
        let kinds: Vec<String> = text
            .split("\n---\n")
            .map(|doc| {
                let value: serde_json::Value = serde_saphyr::from_str(doc).expect("YAML");
                value["kind"].as_str().expect("kind").to_string()
            })
            .collect();
        assert_eq!(
            kinds,
            ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "DaemonSet"]
        );
        let daemonset: k8s_openapi::api::apps::v1::DaemonSet =
            serde_saphyr::from_str(text.rsplit("\n---\n").next().unwrap()).expect("a DaemonSet");
        let spec = daemonset.spec.template.spec.expect("pod spec");
        assert_eq!(spec.host_pid, Some(true));
        assert_eq!(spec.containers[0].image.as_deref(), Some("registry.example.com/picket:1"));
        assert_eq!(spec.containers[0].security_context.as_ref().and_then(|s| s.privileged), Some(true));
        assert_eq!(daemonset.metadata.namespace.as_deref(), Some("sec"));
    }
}

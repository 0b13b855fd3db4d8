//! `picket agent`: the node agent. `run` loads the kernel programs and streams events as JSON
//! lines; `manifest` prints the DaemonSet (and RBAC) that runs it on every node of a cluster.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;

use crate::agent::attribution::CgroupResolver;
use crate::agent::files::{FileEvent, FileSensor, FileSensorError};
use crate::agent::net::NetSensor;
use crate::agent::sensor::ProcessSensor;
use crate::agent::wire::WireEvent;

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Load the kernel programs and print process, network and (with --watch) file-open events
    /// as JSON lines until interrupted (needs root)
    Run {
        /// Stop after this many seconds
        #[arg(long = "for", value_name = "SECONDS")]
        duration: Option<u64>,
        /// Only events attributed to a container
        #[arg(long)]
        containers_only: bool,
        /// Also serve the events on this unix socket (root-owned, mode 0600), for the console
        #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = crate::agent::stream::DEFAULT_SOCKET)]
        socket: Option<std::path::PathBuf>,
        /// Do not print events on standard output (with --socket)
        #[arg(long, requires = "socket")]
        quiet: bool,
        /// Report opens of files whose absolute path starts with PREFIX (repeatable, at most 16;
        /// `/etc/` is the directory, `/etc` also matches `/etcetera`); none: no file events
        #[arg(long = "watch", value_name = "PREFIX")]
        watch: Vec<String>,
    },
    /// Print the DaemonSet, ServiceAccount and RBAC that run the agent on every node
    Manifest {
        /// Namespace to put it in
        #[arg(long, default_value = "picket-system")]
        namespace: String,
        /// The image that holds the picket binary
        #[arg(long, default_value = "ghcr.io/picket/picket:0.1.0")]
        image: String,
    },
}

pub fn run(command: &AgentCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgentCommand::Manifest { namespace, image } => {
            std::io::stdout()
                .lock()
                .write_all(manifest(namespace, image).as_bytes())
                .context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Run { duration, containers_only, socket, quiet, watch } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let options = StreamOptions {
                duration: duration.map(Duration::from_secs),
                containers_only: *containers_only,
                socket: socket.as_deref(),
                quiet: *quiet,
                watch,
            };
            runtime.block_on(stream(options))
        }
    }
}

/// Where the event lines go: standard output, the socket's readers, or both.
struct Outputs {
    stdout: Option<std::io::BufWriter<std::io::StdoutLock<'static>>>,
    server: Option<crate::agent::stream::EventServer>,
}

impl Outputs {
    fn emit(&mut self, event: &WireEvent) -> anyhow::Result<()> {
        let line = serde_json::to_string(event)?;
        if let Some(out) = &mut self.stdout {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        if let Some(server) = &self.server {
            server.send(line.into());
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(out) = &mut self.stdout {
            out.flush()?;
        }
        Ok(())
    }
}

struct StreamOptions<'a> {
    duration: Option<Duration>,
    containers_only: bool,
    socket: Option<&'a std::path::Path>,
    quiet: bool,
    watch: &'a [String],
}

/// The file sensor's next batch; never, when no prefix is watched.
async fn next_files(files: &mut Option<FileSensor>) -> Result<Vec<FileEvent>, FileSensorError> {
    match files {
        Some(files) => files.next_batch().await,
        None => std::future::pending().await,
    }
}

/// (dropped, malformed) over the sensors.
fn counters(sensor: &ProcessSensor, net: &NetSensor, files: Option<&FileSensor>) -> anyhow::Result<(u64, u64)> {
    let (mut dropped, mut malformed) = (sensor.dropped()? + net.dropped()?, sensor.malformed + net.malformed);
    if let Some(files) = files {
        dropped += files.dropped()?;
        malformed += files.malformed;
    }
    Ok((dropped, malformed))
}

async fn stream(options: StreamOptions<'_>) -> anyhow::Result<ExitCode> {
    let StreamOptions { duration, containers_only, socket, quiet, watch } = options;
    crate::agent::files::validate_prefixes(watch)?;
    let mut sensor = ProcessSensor::start()?;
    let mut net = NetSensor::start()?;
    // Not started without a prefix: its tracepoints would run on every syscall for nothing.
    let mut files = if watch.is_empty() { None } else { Some(FileSensor::start(watch)?) };
    let server = match socket {
        Some(path) => Some(crate::agent::stream::EventServer::bind(path, crate::agent::stream::BACKLOG)?),
        None => None,
    };
    let stdout = (!quiet).then(|| std::io::BufWriter::new(std::io::stdout().lock()));
    let mut outputs = Outputs { stdout, server };
    let node = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    let mut resolver = CgroupResolver::new();
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    let mut events = 0u64;
    let mut stats_every = tokio::time::interval(Duration::from_secs(10));
    stats_every.tick().await;
    loop {
        let until_deadline = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            batch = sensor.next_batch() => {
                for event in batch? {
                    let container = resolver.container_of(event.cgroup_id);
                    if containers_only && container.is_none() {
                        continue;
                    }
                    events += 1;
                    outputs.emit(&WireEvent::process(&node, event, container))?;
                }
                outputs.flush()?;
            }
            batch = net.next_batch() => {
                for event in batch? {
                    let container = resolver.container_of(event.cgroup_id);
                    if containers_only && container.is_none() {
                        continue;
                    }
                    events += 1;
                    outputs.emit(&WireEvent::network(&node, event, container))?;
                }
                outputs.flush()?;
            }
            batch = next_files(&mut files) => {
                for event in batch? {
                    let container = resolver.container_of(event.cgroup_id);
                    if containers_only && container.is_none() {
                        continue;
                    }
                    events += 1;
                    outputs.emit(&WireEvent::file(&node, event, container))?;
                }
                outputs.flush()?;
            }
            _ = stats_every.tick() => {
                let (dropped, malformed) = counters(&sensor, &net, files.as_ref())?;
                outputs.emit(&WireEvent::stats(&node, events, dropped, malformed))?;
                outputs.flush()?;
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = until_deadline => break,
        }
    }
    let (dropped, malformed) = counters(&sensor, &net, files.as_ref())?;
    outputs.emit(&WireEvent::stats(&node, events, dropped, malformed))?;
    outputs.flush()?;
    if dropped > 0 {
        eprintln!("picket: {dropped} events were dropped: the ring buffer was full");
    }
    Ok(ExitCode::SUCCESS)
}

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
          args: ["agent", "run"]
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
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(kinds, ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet"]);
        let daemonset: k8s_openapi::api::apps::v1::DaemonSet =
            serde_saphyr::from_str(text.rsplit("\n---\n").next().unwrap()).expect("a DaemonSet");
        let spec = daemonset.spec.template.spec.expect("pod spec");
        assert_eq!(spec.host_pid, Some(true));
        assert_eq!(spec.containers[0].image.as_deref(), Some("registry.example.com/picket:1"));
        assert_eq!(spec.containers[0].security_context.as_ref().and_then(|s| s.privileged), Some(true));
        assert_eq!(daemonset.metadata.namespace.as_deref(), Some("sec"));
    }
}

//! CIS Kubernetes Benchmark sections 1–4 on a node: file modes and owners, and the flags and
//! configuration of kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kubelet and
//! kube-proxy. Components are found as running processes (on the live host) or, under any root,
//! as kubeadm's static pod manifests and kubelet's systemd unit; checks for components that are
//! not on the node are skipped, so a worker gets section 4 and a control-plane node all four.

mod defs;
mod rules;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::files::HostFiles;
use super::{BenchReport, Section};

pub const BENCHMARK: &str = "CIS Kubernetes Benchmark";
pub const VERSION: &str = "1.12.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentKind {
    ApiServer,
    ControllerManager,
    Scheduler,
    Etcd,
    Kubelet,
    Proxy,
}

impl ComponentKind {
    pub const ALL: [ComponentKind; 6] =
        [Self::ApiServer, Self::ControllerManager, Self::Scheduler, Self::Etcd, Self::Kubelet, Self::Proxy];

    pub fn binary(self) -> &'static str {
        match self {
            Self::ApiServer => "kube-apiserver",
            Self::ControllerManager => "kube-controller-manager",
            Self::Scheduler => "kube-scheduler",
            Self::Etcd => "etcd",
            Self::Kubelet => "kubelet",
            Self::Proxy => "kube-proxy",
        }
    }

    /// kubeadm's static pod manifest for the control-plane components.
    pub fn manifest(self) -> Option<&'static str> {
        match self {
            Self::ApiServer => Some("/etc/kubernetes/manifests/kube-apiserver.yaml"),
            Self::ControllerManager => Some("/etc/kubernetes/manifests/kube-controller-manager.yaml"),
            Self::Scheduler => Some("/etc/kubernetes/manifests/kube-scheduler.yaml"),
            Self::Etcd => Some("/etc/kubernetes/manifests/etcd.yaml"),
            Self::Kubelet | Self::Proxy => None,
        }
    }
}

/// How a component was started, so a remediation can say where its flags are set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StartedBy {
    /// By the kubelet from a static pod manifest (a process in a `kubepods` cgroup, or the
    /// manifest read).
    StaticPod,
    /// A systemd unit (the process's cgroup, or the unit read): its name or path.
    Systemd(String),
    /// A process of neither: its command line is all there is.
    Process,
    #[default]
    Unknown,
}

impl StartedBy {
    /// From a process's cgroup (`/proc/PID/cgroup`): kubepods, a `.service`, or neither.
    pub fn from_cgroup(cgroup: &str) -> Self {
        let path = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or_else(|| cgroup.lines().next().unwrap_or_default());
        if path.contains("kubepods") {
            return Self::StaticPod;
        }
        match path.rsplit('/').find(|part| part.ends_with(".service")) {
            Some(unit) => Self::Systemd(unit.to_string()),
            None => Self::Process,
        }
    }
}

/// One component found on the node, with its command-line flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub kind: ComponentKind,
    /// Where the flags were read: `process 1234`, a manifest or unit path.
    pub source: String,
    pub started_by: StartedBy,
    pub args: Vec<String>,
    /// Environment variables (etcd takes every flag as `ETCD_…`).
    pub env: BTreeMap<String, String>,
    /// kubelet's and kube-proxy's configuration file, parsed, when one is used.
    pub config: Option<Value>,
    pub config_path: Option<PathBuf>,
    /// Why the configuration file could not be used.
    pub config_error: Option<String>,
}

impl Component {
    /// A flag's value: `--name=value`, `--name value`, or `--name` alone (true); the last
    /// occurrence wins, as with the Go flag parser.
    pub fn flag(&self, name: &str) -> Option<String> {
        flag_value(&self.args, name)
    }

    /// The flag, else the `ETCD_`-style environment variable.
    pub fn flag_or_env(&self, name: &str) -> Option<String> {
        self.flag(name).or_else(|| {
            let var = format!("ETCD_{}", name.to_ascii_uppercase().replace('-', "_"));
            self.env.get(&var).cloned()
        })
    }

    /// A field of the configuration file by dotted path (`authentication.anonymous.enabled`),
    /// as text.
    pub fn config_field(&self, path: &str) -> Option<String> {
        let mut value = self.config.as_ref()?;
        for key in path.split('.') {
            value = value.get(key)?;
        }
        match value {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => Some(
                items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            other => Some(other.to_string()),
        }
    }
}

fn flag_value(args: &[String], name: &str) -> Option<String> {
    let long = format!("--{name}");
    let with_value = format!("--{name}=");
    let mut found = None;
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        if let Some(value) = arg.strip_prefix(&with_value) {
            found = Some(value.to_string());
        } else if *arg == long {
            found = Some(match iter.next_if(|next| !next.starts_with("--")) {
                Some(value) => value.clone(),
                None => "true".to_string(),
            });
        }
    }
    found
}

#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub components: BTreeMap<ComponentKind, Component>,
    /// Problems met while looking (a manifest that is not YAML), reported, never fatal.
    pub warnings: Vec<String>,
}

impl NodeFacts {
    pub fn get(&self, kind: ComponentKind) -> Option<&Component> {
        self.components.get(&kind)
    }

    /// Finds the components: running processes first (only on the live host), then kubeadm's
    /// manifests and kubelet's unit under the root.
    pub fn gather(files: &HostFiles) -> Self {
        let mut facts = NodeFacts::default();
        if files.is_live_host() {
            for component in running_components(Path::new("/proc")) {
                facts.components.entry(component.kind).or_insert(component);
            }
        }
        for kind in ComponentKind::ALL {
            if facts.components.contains_key(&kind) {
                continue;
            }
            let found = match kind.manifest() {
                Some(manifest) => from_manifest(files, kind, Path::new(manifest)),
                None if kind == ComponentKind::Kubelet => from_kubelet_unit(files),
                None => Ok(None),
            };
            match found {
                Ok(Some(component)) => {
                    facts.components.insert(kind, component);
                }
                Ok(None) => {}
                Err(warning) => facts.warnings.push(warning),
            }
        }
        for kind in [ComponentKind::Kubelet, ComponentKind::Proxy] {
            if let Some(component) = facts.components.get_mut(&kind) {
                load_config(files, component);
            }
        }
        facts
    }
}

/// Every Kubernetes component process under `proc`, lowest pid first.
fn running_components(proc: &Path) -> Vec<Component> {
    let Ok(entries) = std::fs::read_dir(proc) else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let mut argv =
            cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned());
        let Some(program) = argv.next() else { continue };
        let name = program.rsplit('/').next().unwrap_or_default().to_string();
        let Some(kind) = ComponentKind::ALL.into_iter().find(|k| k.binary() == name) else { continue };
        let env = std::fs::read(entry.path().join("environ"))
            .map(|bytes| {
                bytes
                    .split(|b| *b == 0)
                    .filter_map(|kv| {
                        let kv = String::from_utf8_lossy(kv);
                        kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.push((
            pid,
            Component {
                kind,
                source: format!("process {pid}"),
                started_by: std::fs::read_to_string(entry.path().join("cgroup"))
                    .map_or(StartedBy::Unknown, |c| StartedBy::from_cgroup(&c)),
                args: argv.collect(),
                env,
                config: None,
                config_path: None,
                config_error: None,
            },
        ));
    }
    found.sort_by_key(|(pid, c)| (c.kind, *pid));
    found.into_iter().map(|(_, c)| c).collect()
}

/// The first container of a static pod manifest: its command + args, and env.
fn from_manifest(files: &HostFiles, kind: ComponentKind, manifest: &Path) -> Result<Option<Component>, String> {
    let text = match files.read_to_string(manifest) {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", manifest.display())),
    };
    let pod: Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: not a pod manifest: {e}", manifest.display()))?;
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    // The component's container is the one running its binary; else the first.
    let container = containers
        .iter()
        .find(|c| {
            c.get("command")
                .and_then(Value::as_array)
                .and_then(|cmd| cmd.first())
                .and_then(Value::as_str)
                .is_some_and(|p| p.rsplit('/').next() == Some(kind.binary()))
        })
        .or_else(|| containers.first())
        .ok_or_else(|| format!("{}: no containers in spec.containers", manifest.display()))?;
    let strings = |key: &str| -> Vec<String> {
        container
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    };
    let mut args: Vec<String> = strings("command").into_iter().skip(1).collect();
    args.extend(strings("args"));
    let env = container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e.get("name")?.as_str()?.to_string(), e.get("value")?.as_str()?.to_string())))
        .collect();
    Ok(Some(Component {
        kind,
        source: manifest.display().to_string(),
        started_by: StartedBy::StaticPod,
        args,
        env,
        config: None,
        config_path: None,
        config_error: None,
    }))
}

/// Where kubelet's systemd unit and kubeadm's drop-in live.
pub const KUBELET_UNITS: &[&str] = &[
    "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "/etc/systemd/system/kubelet.service",
    "/lib/systemd/system/kubelet.service",
    "/usr/lib/systemd/system/kubelet.service",
];

/// kubelet's flags from its unit: the last `ExecStart=` with `$VARS` expanded from
/// `Environment=` and `EnvironmentFile=` (kubeadm's drop-in puts them there).
fn from_kubelet_unit(files: &HostFiles) -> Result<Option<Component>, String> {
    let Some((unit, text)) =
        KUBELET_UNITS.iter().find_map(|u| files.read_to_string(Path::new(u)).ok().flatten().map(|t| (*u, t)))
    else {
        return Ok(None);
    };
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut exec_start = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Environment=") {
            for assignment in split_unit_words(rest) {
                if let Some((k, v)) = assignment.split_once('=') {
                    vars.insert(k.to_string(), v.to_string());
                }
            }
        } else if let Some(path) = line.strip_prefix("EnvironmentFile=") {
            let path = path.trim_start_matches('-');
            if let Ok(Some(env)) = files.read_to_string(Path::new(path)) {
                for line in env.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
                    if let Some((k, v)) = line.split_once('=') {
                        vars.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
                    }
                }
            }
        } else if let Some(command) = line.strip_prefix("ExecStart=")
            && !command.is_empty()
        {
            exec_start = Some(command.to_string());
        }
    }
    let Some(command) = exec_start else {
        return Err(format!("{unit}: no ExecStart= line"));
    };
    let mut args = Vec::new();
    for word in command.split_whitespace().skip(1) {
        match word.strip_prefix('$') {
            Some(var) => {
                let var = var.trim_start_matches('{').trim_end_matches('}');
                args.extend(
                    vars.get(var)
                        .map(|v| v.split_whitespace().map(String::from).collect::<Vec<_>>())
                        .unwrap_or_default(),
                );
            }
            None => args.push(word.to_string()),
        }
    }
    Ok(Some(Component {
        kind: ComponentKind::Kubelet,
        source: unit.to_string(),
        started_by: StartedBy::Systemd(unit.to_string()),
        args,
        env: BTreeMap::new(),
        config: None,
        config_path: None,
        config_error: None,
    }))
}

/// Words of a unit file value, honouring double quotes (`"A=1 2" B=3`).
fn split_unit_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// kubelet's `--config` (default /var/lib/kubelet/config.yaml) or kube-proxy's `--config`.
fn load_config(files: &HostFiles, component: &mut Component) {
    let path = match (component.flag("config"), component.kind) {
        (Some(path), _) => PathBuf::from(path),
        (None, ComponentKind::Kubelet) => PathBuf::from("/var/lib/kubelet/config.yaml"),
        (None, _) => return,
    };
    match files.read_to_string(&path) {
        Ok(Some(text)) => match serde_saphyr::from_str::<Value>(&text) {
            Ok(value) => component.config = Some(value),
            Err(e) => component.config_error = Some(format!("{}: {e}", path.display())),
        },
        Ok(None) => {}
        Err(e) => component.config_error = Some(format!("{}: {e}", path.display())),
    }
    component.config_path = Some(path);
}

/// Gathers the node's facts under `root` (`/` on the live host) and judges them.
pub async fn run(root: &Path) -> Result<super::Benchmarked, super::BenchError> {
    run_on(super::host_root(root)?).await
}

/// The node benchmark of the node this process runs on, from wherever it runs: on the host,
/// its root; in a pod in the host's PID namespace (the agent's DaemonSet), the node's files
/// through `/proc/1/root`, so no SSH and no host mount are needed.
pub async fn run_on_this_node() -> Result<super::Benchmarked, super::BenchError> {
    use std::os::unix::fs::MetadataExt;
    let same = |a: &Path, b: &Path| match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => true,
    };
    let init_root = Path::new("/proc/1/root");
    if same(Path::new("/"), init_root) {
        return run(Path::new("/")).await;
    }
    run_on(super::files::HostFiles::of_live_host(init_root)).await
}

async fn run_on(files: super::files::HostFiles) -> Result<super::Benchmarked, super::BenchError> {
    super::blocking(move || {
        let facts = NodeFacts::gather(&files);
        let target = if files.is_live_host() {
            // In the agent's pod the node's name is in its files, not in this UTS namespace.
            let named = std::fs::read_to_string(files.resolve(Path::new("/etc/hostname"))).ok();
            let name = named.map(|n| n.trim().to_string()).filter(|n| !n.is_empty() && files.root() != Path::new("/"));
            format!("node {}", name.unwrap_or_else(crate::local::hostname))
        } else {
            format!("node files under {}", files.root().display())
        };
        super::Benchmarked { report: judge(&facts, &files, &target), notes: facts.warnings.clone() }
    })
    .await
}

/// Runs every check of sections 1–4.
pub fn judge(facts: &NodeFacts, files: &HostFiles, target: &str) -> BenchReport {
    let defs = defs::checks();
    let mut checks = super::judge_all(&defs, &defs::NodeInput { facts, files });
    // Where a flag is set depends on how this node started the component.
    for (outcome, def) in checks.iter_mut().zip(&defs) {
        outcome.meta.remediation = def.rule.remediation_on(facts);
    }
    BenchReport {
        benchmark: BENCHMARK.into(),
        version: VERSION.into(),
        target: target.to_string(),
        sections: Section::list(defs::SECTIONS),
        checks,
        unread: Vec::new(),
    }
}

#[cfg(test)]
mod tests;

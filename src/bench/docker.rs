//! CIS Docker Benchmark: host configuration, daemon configuration, daemon files, images and the
//! container runtime, judged from the engine's API (Docker Engine, or Podman's compatible API),
//! the daemon's command line and `daemon.json`, and the host's files.

mod daemon;
mod defs;
mod host;
pub mod runtime;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bollard::models::{ContainerInspectResponse, ImageInspect, SystemInfo};
use serde_json::{Map, Value};

use super::files::HostFiles;
use super::{BenchReport, CheckResult, Section, Status};
use crate::engine::{self, EngineError, EngineKind};

pub const BENCHMARK: &str = "CIS Docker Benchmark";
pub const VERSION: &str = "1.6.0";

/// Everything the checks judge, gathered once.
#[derive(Debug, Clone)]
pub struct DockerFacts {
    pub engine: EngineKind,
    pub version: String,
    pub socket: PathBuf,
    pub info: SystemInfo,
    /// The Docker daemon's settings; None for Podman (no daemon) or when no dockerd process
    /// serving this socket was found.
    pub daemon: Option<DaemonSettings>,
    /// Running containers.
    pub containers: Vec<ContainerInspectResponse>,
    /// The images of the running containers, by image id.
    pub images: BTreeMap<String, ImageInspect>,
    /// Commands running in each container (by container id), or why they could not be listed.
    pub processes: BTreeMap<String, Result<Vec<String>, String>>,
    /// Namespaces each container shares with the host (by container id), read from `/proc`
    /// where the container's process is visible; what the engine reports is not always true
    /// (Podman 4.3's compat API says `shareable` for `--ipc host`).
    pub shared_namespaces: BTreeMap<String, Vec<&'static str>>,
    pub host: HostSecurity,
}

const NAMESPACES: [&str; 5] = ["pid", "ipc", "net", "uts", "user"];

/// The namespaces of `pid` that are the same as those of this host's init (`/proc/1`), or of
/// picket itself where init's are not readable. Empty when the container's cannot be read.
pub fn namespaces_shared_with_host(pid: i64) -> Vec<&'static str> {
    if pid <= 0 {
        return Vec::new();
    }
    NAMESPACES
        .into_iter()
        .filter(|ns| {
            let host = std::fs::read_link(format!("/proc/1/ns/{ns}"))
                .or_else(|_| std::fs::read_link(format!("/proc/self/ns/{ns}")));
            let container = std::fs::read_link(format!("/proc/{pid}/ns/{ns}"));
            matches!((host, container), (Ok(h), Ok(c)) if h == c)
        })
        .collect()
}

/// Security modules the kernel has enabled: container checks for them apply only when it does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostSecurity {
    pub apparmor: bool,
    pub selinux: bool,
}

impl HostSecurity {
    pub fn of_live_host() -> Self {
        let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("y"));
        let selinux = Path::new("/sys/fs/selinux/enforce").exists();
        Self { apparmor, selinux }
    }
}

/// dockerd's effective configuration: its command line over its `daemon.json`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DaemonSettings {
    pub pid: Option<u32>,
    pub args: Vec<String>,
    pub config_path: PathBuf,
    pub config: Map<String, Value>,
    /// Why `daemon.json` could not be used, when it exists but is unreadable or malformed.
    pub config_error: Option<String>,
}

/// dockerd flags that take no value (`--icc=false` is the only way to turn them off).
const BOOL_FLAGS: &[&str] = &[
    "icc",
    "iptables",
    "ip6tables",
    "ip-forward",
    "ip-masq",
    "live-restore",
    "userland-proxy",
    "no-new-privileges",
    "experimental",
    "selinux-enabled",
    "tls",
    "tlsverify",
    "debug",
    "rootless",
];

/// Repeatable flags whose `daemon.json` key is a plural.
const LIST_FLAGS: &[(&str, &str)] = &[
    ("host", "hosts"),
    ("insecure-registry", "insecure-registries"),
    ("authorization-plugin", "authorization-plugins"),
    ("exec-opt", "exec-opts"),
    ("storage-opt", "storage-opts"),
    ("log-opt", "log-opts"),
    ("default-ulimit", "default-ulimits"),
    ("registry-mirror", "registry-mirrors"),
];

pub const DEFAULT_CONFIG: &str = "/etc/docker/daemon.json";
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

impl DaemonSettings {
    /// Reads the config file named by `--config-file` (or the default) under `files`' root.
    pub fn from_args(pid: Option<u32>, args: Vec<String>, files: &HostFiles) -> Self {
        let config_path =
            flag_values(&args, "config-file").pop().map_or_else(|| PathBuf::from(DEFAULT_CONFIG), PathBuf::from);
        let (config, config_error) = match files.read_to_string(&config_path) {
            Ok(None) => (Map::new(), None),
            Ok(Some(text)) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => (map, None),
                Ok(_) => (Map::new(), Some(format!("{}: not a JSON object", config_path.display()))),
                Err(e) => (Map::new(), Some(format!("{}: {e}", config_path.display()))),
            },
            Err(e) => (Map::new(), Some(format!("{}: {e}", config_path.display()))),
        };
        Self { pid, args, config_path, config, config_error }
    }

    /// An option's value, the command line first (`--icc=false`, `--log-level warn`), then
    /// `daemon.json` (`"icc": false`). Repeatable flags give a JSON array.
    pub fn option(&self, key: &str) -> Option<Value> {
        if let Some((flag, _)) = LIST_FLAGS.iter().find(|(_, plural)| *plural == key) {
            let mut values = flag_values(&self.args, flag);
            if *flag == "host" {
                values.extend(short_flag_values(&self.args, "-H"));
            }
            if !values.is_empty() {
                return Some(Value::Array(values.into_iter().map(Value::String).collect()));
            }
        } else if let Some(value) = flag_values(&self.args, key).pop() {
            if BOOL_FLAGS.contains(&key) {
                return Some(parse_go_bool(&value).map_or(Value::String(value), Value::Bool));
            }
            return Some(Value::String(value));
        }
        self.config.get(key).cloned()
    }

    pub fn bool_option(&self, key: &str) -> Option<bool> {
        match self.option(key)? {
            Value::Bool(b) => Some(b),
            Value::String(s) => parse_go_bool(&s),
            _ => None,
        }
    }

    pub fn string_option(&self, key: &str) -> Option<String> {
        match self.option(key)? {
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        }
    }

    pub fn list_option(&self, key: &str) -> Vec<String> {
        match self.option(key) {
            Some(Value::Array(items)) => {
                items.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), String::from)).collect()
            }
            Some(Value::String(s)) => vec![s],
            _ => Vec::new(),
        }
    }

    /// The addresses it listens on; the default socket when none is configured.
    pub fn hosts(&self) -> Vec<String> {
        let hosts = self.list_option("hosts");
        if hosts.is_empty() { vec![format!("unix://{DEFAULT_SOCKET}")] } else { hosts }
    }

    /// Whether it listens on `socket`. `fd://` (the stock systemd units: `dockerd -H fd://`)
    /// is the socket systemd's docker.socket passes in, `/run/docker.sock`.
    pub fn serves(&self, socket: &Path) -> bool {
        let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let wanted = real(socket);
        self.hosts().iter().any(|host| match host.strip_prefix("unix://") {
            Some(path) => real(Path::new(path)) == wanted,
            None if host.starts_with("fd://") => {
                [SYSTEMD_SOCKET, DEFAULT_SOCKET].iter().any(|p| real(Path::new(p)) == wanted)
            }
            None => false,
        })
    }
}

/// Where systemd's docker.socket listens for `dockerd -H fd://`.
const SYSTEMD_SOCKET: &str = "/run/docker.sock";

/// Go's `strconv.ParseBool`, which dockerd's flags use: `1 t T TRUE true True`, `0 f F FALSE
/// false False`; anything else is not a bool.
pub fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Values of a long flag: `--name=value` or `--name value` (bool flags take no separate value).
fn flag_values(args: &[String], name: &str) -> Vec<String> {
    let long = format!("--{name}");
    let with_value = format!("--{name}=");
    let mut values = Vec::new();
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        if let Some(value) = arg.strip_prefix(&with_value) {
            values.push(value.to_string());
        } else if *arg == long {
            if BOOL_FLAGS.contains(&name) {
                values.push("true".into());
            } else if let Some(next) = iter.next_if(|next| !next.starts_with('-')) {
                values.push(next.clone());
            }
        }
    }
    values
}

fn short_flag_values(args: &[String], flag: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == flag {
            values.extend(iter.next().cloned());
        } else if let Some(value) = arg.strip_prefix(flag).and_then(|v| v.strip_prefix('=')) {
            values.push(value.to_string());
        }
    }
    values
}

/// The dockerd process serving `socket`, from `/proc`. None when there is none (a remote or
/// containerised daemon, or Podman).
pub fn find_daemon(socket: &Path, files: &HostFiles) -> Option<DaemonSettings> {
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else { continue };
        if comm.trim() != "dockerd" {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .skip(1)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let settings = DaemonSettings::from_args(Some(pid), args, files);
        if settings.serves(socket) {
            return Some(settings);
        }
    }
    None
}

#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Reads the engine behind `socket`: info, running containers, their images and processes.
pub async fn gather(socket: &Path, files: &HostFiles) -> Result<DockerFacts, GatherError> {
    use bollard::query_parameters::ListContainersOptionsBuilder;
    let api = |source| EngineError::Api { socket: socket.to_path_buf(), source };
    let docker = engine::connect(socket).await?;
    let version = engine::with_timeout(socket, docker.version()).await?.map_err(api)?;
    let kind = EngineKind::of(&version);
    let info = engine::with_timeout(socket, docker.info()).await?.map_err(api)?;
    let listed = engine::with_timeout(
        socket,
        docker.list_containers(Some(ListContainersOptionsBuilder::new().all(false).build())),
    )
    .await?
    .map_err(api)?;

    let mut containers = Vec::new();
    let mut images = BTreeMap::new();
    let mut processes = BTreeMap::new();
    let mut shared_namespaces = BTreeMap::new();
    for summary in listed {
        let Some(id) = summary.id else { continue };
        // A container that stopped between list and inspect is simply not running any more.
        let Ok(Ok(inspected)) = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            docker.inspect_container(&id, None::<bollard::query_parameters::InspectContainerOptions>),
        )
        .await
        else {
            continue;
        };
        if let Some(image_id) = inspected.image.clone()
            && !images.contains_key(&image_id)
            && let Ok(Ok(image)) =
                tokio::time::timeout(std::time::Duration::from_secs(3), docker.inspect_image(&image_id)).await
        {
            images.insert(image_id, image);
        }
        let top = engine::with_timeout(
            socket,
            // Podman's compat API runs `ps` inside the container unless the arguments are its
            // own (psgo) descriptors; Docker runs the host's `ps -ef` on the container's pids.
            docker.top_processes(
                &id,
                (kind == EngineKind::Podman)
                    .then(|| bollard::query_parameters::TopOptionsBuilder::new().ps_args("pid,args").build()),
            ),
        )
        .await;
        let listed = match top {
            Ok(Ok(top)) => {
                let column = top.titles.as_ref().and_then(|t| t.iter().rposition(|t| t == "COMMAND" || t == "CMD"));
                let commands: Vec<String> = top
                    .processes
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|row| column.and_then(|c| row.get(c).cloned()).or_else(|| row.last().cloned()))
                    .collect();
                if commands.is_empty() { Err("the engine listed no processes".to_string()) } else { Ok(commands) }
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        processes.insert(id.clone(), listed);
        let pid = inspected.state.as_ref().and_then(|s| s.pid).unwrap_or(0);
        shared_namespaces.insert(id, namespaces_shared_with_host(pid));
        containers.push(inspected);
    }
    containers.sort_by(|a, b| a.name.cmp(&b.name));

    let daemon = match kind {
        EngineKind::Docker => find_daemon(socket, files),
        EngineKind::Podman => None,
    };
    Ok(DockerFacts {
        engine: kind,
        version: version.version.unwrap_or_default(),
        socket: socket.to_path_buf(),
        info,
        daemon,
        containers,
        images,
        processes,
        shared_namespaces,
        host: HostSecurity::of_live_host(),
    })
}

/// The container's name without the API's leading slash.
pub fn container_name(c: &ContainerInspectResponse) -> String {
    let name = c.name.as_deref().unwrap_or_default().trim_start_matches('/');
    if name.is_empty() { c.id.as_deref().unwrap_or_default().chars().take(12).collect() } else { name.to_string() }
}

/// `picket bench docker` and the Compliance pane's Docker run.
#[derive(Debug, Clone)]
pub struct DockerOptions {
    /// The engine's socket; none: the first of `candidates` that exists.
    pub socket: Option<PathBuf>,
    pub candidates: Vec<PathBuf>,
    /// Where the host's files are (`/` on the live host).
    pub root: PathBuf,
}

/// Picks the engine, gathers its facts and the host's, and judges them.
pub async fn run(options: &DockerOptions) -> Result<super::Benchmarked, super::BenchError> {
    let mut notes = Vec::new();
    let socket = match &options.socket {
        Some(socket) => socket.clone(),
        None => {
            let found = engine::existing_sockets(&options.candidates);
            let Some(first) = found.first().cloned() else {
                let searched: Vec<String> = options.candidates.iter().map(|p| p.display().to_string()).collect();
                return Err(super::BenchError::NoEngine { searched: searched.join(", ") });
            };
            if found.len() > 1 {
                notes.push(format!("{} engines found: benchmarking the first, {}", found.len(), first.display()));
            }
            first
        }
    };
    let files = super::host_root(&options.root)?;
    // Gathering reads /proc and files besides asking the API: off the async workers.
    let handle = tokio::runtime::Handle::current();
    super::blocking(move || {
        let facts = handle.block_on(gather(&socket, &files))?;
        Ok(super::Benchmarked { report: judge(&facts, &files), notes })
    })
    .await?
}

/// What a Docker check reads: the gathered facts and the host's files.
pub struct DockerInput<'a> {
    pub facts: &'a DockerFacts,
    pub files: &'a HostFiles,
}

/// How a Docker check judges; each kind takes care of what it cannot see (Podman has no daemon,
/// a host with no running container) the same way for every check of its kind.
#[derive(Clone, Copy)]
pub enum DockerJudge {
    /// From the host, its files or the engine as a whole: results as the check sees fit.
    Host(fn(&DockerInput) -> Vec<CheckResult>),
    /// From the engine's `/info`.
    Daemon(fn(&SystemInfo) -> (Status, String)),
    /// From dockerd's own settings (command line and daemon.json).
    Settings(fn(&DaemonSettings) -> (Status, String)),
    /// One result per running container.
    PerContainer(fn(&runtime::ContainerView) -> (Status, String)),
    /// A person reviews it; the subject names what to look at.
    Manual(&'static str),
}

/// A CIS Docker Benchmark recommendation and how picket judges it.
pub struct DockerCheck {
    pub def: super::CheckDef,
    pub judge: DockerJudge,
}

impl super::Check<DockerInput<'_>> for DockerCheck {
    fn meta(&self) -> super::CheckMeta {
        self.def.meta(&format!("{BENCHMARK} v{VERSION}"))
    }

    fn judge(&self, input: &DockerInput) -> Vec<CheckResult> {
        let mut results = match self.judge {
            DockerJudge::Host(judge) => judge(input),
            DockerJudge::Daemon(judge) => daemon::from_info(input, judge),
            DockerJudge::Settings(judge) => daemon::from_settings(input, judge),
            DockerJudge::PerContainer(judge) => runtime::per_container(input, judge),
            DockerJudge::Manual(subject) => vec![CheckResult::new(Status::Warn, subject, "manual review")],
        };
        // The benchmark leaves a Manual recommendation to a person: what picket finds is a
        // warning to review (as docker-bench-security reports them), never a failure.
        if self.def.assessment == super::Assessment::Manual {
            for result in &mut results {
                if result.status == Status::Fail {
                    result.status = Status::Warn;
                }
            }
        }
        results
    }
}

/// Runs every check on the facts.
pub fn judge(facts: &DockerFacts, files: &HostFiles) -> BenchReport {
    let input = DockerInput { facts, files };
    BenchReport {
        benchmark: BENCHMARK.into(),
        version: VERSION.into(),
        target: format!("{} {} at unix://{}", facts.engine.as_str(), facts.version, facts.socket.display()),
        sections: Section::list(defs::SECTIONS),
        checks: super::judge_all(defs::CHECKS, &input),
        unread: Vec::new(),
    }
}

#[cfg(test)]
mod tests;

//! Local container engines (Docker Engine, Podman) through their Docker-compatible API sockets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;

/// How long one engine may take to answer before it is reported as not answering.
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum EngineKind {
    Docker,
    Podman,
}

impl EngineKind {
    /// Podman's Docker-compatible API names itself in the version's components.
    pub fn of(version: &bollard::models::SystemVersion) -> Self {
        let is_podman = version.components.iter().flatten().any(|c| c.name.to_ascii_lowercase().contains("podman"));
        if is_podman { Self::Podman } else { Self::Docker }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "Docker",
            Self::Podman => "Podman",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    pub kind: EngineKind,
    pub version: String,
    pub api_version: String,
    pub containers: Vec<ContainerInfo>,
    pub images: Vec<ImageInfo>,
}

/// An image held by a local engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub tags: Vec<String>,
    pub digests: Vec<String>,
    pub size: i64,
    pub created: i64,
    pub socket: PathBuf,
    pub engine: EngineKind,
}

impl ImageInfo {
    /// The name to show and to export by: the first tag, else the id.
    pub fn name(&self) -> &str {
        self.tags.iter().find(|t| !t.contains("<none>")).map_or(self.id.as_str(), String::as_str)
    }
}

/// One socket that was found, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineProbe {
    pub socket: PathBuf,
    pub result: Result<EngineInfo, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    /// The image's id as the engine names it (the config digest: `sha256:…` from Docker, bare
    /// hex from Podman).
    pub image_id: String,
    pub state: String,
    pub status: String,
    pub created: i64,
    pub socket: PathBuf,
    pub engine: EngineKind,
    pub labels: BTreeMap<String, String>,
}

impl ContainerInfo {
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// The Kubernetes namespace for containers started by a kubelet, from its labels.
    pub fn pod_namespace(&self) -> Option<&str> {
        self.labels.get("io.kubernetes.pod.namespace").map(String::as_str)
    }
}

/// What the detail pane shows of one container: the security-relevant parts of inspect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerDetail {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub created: String,
    pub state: String,
    pub pid: i64,
    pub started_at: String,
    pub command: String,
    pub user: String,
    pub privileged: bool,
    pub read_only_rootfs: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub network_mode: String,
    pub pid_mode: String,
    pub ipc_mode: String,
    pub memory_limit: i64,
    pub pids_limit: i64,
    pub mounts: Vec<String>,
    pub env_names: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// The healthcheck's `Test` (`["CMD-SHELL", "curl -f …"]`), empty when it has none.
    pub healthcheck: Vec<String>,
    /// Its addresses on the engine's networks (none with no network or the host's).
    pub addresses: Vec<std::net::IpAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("engine {socket}: {source}", socket = .socket.display())]
    Api { socket: PathBuf, source: bollard::errors::Error },
    #[error("engine {socket}: no answer within {secs}s", socket = .socket.display(), secs = TIMEOUT.as_secs())]
    Timeout { socket: PathBuf },
}

/// The engine sockets picket looks for, in order: `$DOCKER_HOST` and `$CONTAINER_HOST` when
/// they are unix sockets, the configured ones, then the usual rootful and rootless places.
pub fn candidate_sockets(configured: &[PathBuf]) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    for var in ["DOCKER_HOST", "CONTAINER_HOST"] {
        if let Ok(value) = std::env::var(var)
            && let Some(path) = value.strip_prefix("unix://")
        {
            candidates.push(PathBuf::from(path));
        }
    }
    candidates.extend(configured.iter().cloned());
    candidates.push(PathBuf::from("/var/run/docker.sock"));
    candidates.push(PathBuf::from("/run/podman/podman.sock"));
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        let runtime = PathBuf::from(runtime);
        candidates.push(runtime.join("podman/podman.sock"));
        candidates.push(runtime.join("docker.sock"));
    }
    candidates
}

/// The candidates that exist, without duplicates (`/var/run` is usually `/run`).
pub fn existing_sockets(candidates: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for path in candidates {
        if let Ok(real) = std::fs::canonicalize(path)
            && !seen.contains(&real)
        {
            seen.push(real);
            found.push(path.clone());
        }
    }
    found
}

/// Probes every socket concurrently; each answers with its engine and containers or an error.
pub async fn discover(sockets: &[PathBuf]) -> Vec<EngineProbe> {
    let probes = sockets.iter().map(|socket| async move {
        let result = probe(socket).await.map_err(|e| e.to_string());
        EngineProbe { socket: socket.clone(), result }
    });
    futures::future::join_all(probes).await
}

pub(crate) async fn connect(socket: &Path) -> Result<Docker, EngineError> {
    let api = |source| EngineError::Api { socket: socket.to_path_buf(), source };
    let docker = Docker::connect_with_unix(&socket.to_string_lossy(), TIMEOUT.as_secs(), bollard::API_DEFAULT_VERSION)
        .map_err(api)?;
    with_timeout(socket, docker.negotiate_version()).await?.map_err(api)
}

pub(crate) async fn with_timeout<T>(socket: &Path, fut: impl Future<Output = T>) -> Result<T, EngineError> {
    tokio::time::timeout(TIMEOUT, fut).await.map_err(|_| EngineError::Timeout { socket: socket.to_path_buf() })
}

pub async fn probe(socket: &Path) -> Result<EngineInfo, EngineError> {
    let api = |source| EngineError::Api { socket: socket.to_path_buf(), source };
    let docker = connect(socket).await?;
    let version = with_timeout(socket, docker.version()).await?.map_err(api)?;
    let kind = EngineKind::of(&version);
    let containers = list_containers(&docker, socket, kind).await?;
    let listed = with_timeout(socket, docker.list_images(None::<bollard::query_parameters::ListImagesOptions>))
        .await?
        .map_err(api)?;
    let mut images: Vec<ImageInfo> = listed
        .into_iter()
        .map(|i| ImageInfo {
            id: i.id,
            tags: i.repo_tags,
            digests: i.repo_digests,
            size: i.size,
            created: i.created,
            socket: socket.to_path_buf(),
            engine: kind,
        })
        .collect();
    images.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(EngineInfo {
        kind,
        version: version.version.unwrap_or_default(),
        api_version: version.api_version.unwrap_or_default(),
        containers,
        images,
    })
}

/// Every container of one engine (running or not), by name.
pub async fn containers(socket: &Path) -> Result<Vec<ContainerInfo>, EngineError> {
    let api = |source| EngineError::Api { socket: socket.to_path_buf(), source };
    let docker = connect(socket).await?;
    let version = with_timeout(socket, docker.version()).await?.map_err(api)?;
    list_containers(&docker, socket, EngineKind::of(&version)).await
}

async fn list_containers(docker: &Docker, socket: &Path, kind: EngineKind) -> Result<Vec<ContainerInfo>, EngineError> {
    let api = |source| EngineError::Api { socket: socket.to_path_buf(), source };
    let options = ListContainersOptionsBuilder::new().all(true).build();
    let listed = with_timeout(socket, docker.list_containers(Some(options))).await?.map_err(api)?;
    let mut containers: Vec<ContainerInfo> = listed
        .into_iter()
        .map(|c| ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .names
                .and_then(|names| names.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            image: c.image.unwrap_or_default(),
            image_id: c.image_id.unwrap_or_default(),
            state: c.state.map(|s| s.to_string()).unwrap_or_default(),
            status: c.status.unwrap_or_default(),
            created: c.created.unwrap_or_default(),
            socket: socket.to_path_buf(),
            engine: kind,
            labels: c.labels.unwrap_or_default().into_iter().collect(),
        })
        .collect();
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(containers)
}

/// Streams `docker save NAME` (`GET /images/NAME/get`) into `dest`; returns the bytes written.
/// `progress` gets the bytes written so far and the image's size as the engine states it.
pub async fn export_image(
    socket: &Path,
    name: &str,
    dest: &Path,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<u64, EngineError> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let api = |source| EngineError::Api { socket: socket.to_path_buf(), source };
    let io = |source: std::io::Error| EngineError::Api {
        socket: socket.to_path_buf(),
        source: bollard::errors::Error::from(source),
    };
    let docker = connect(socket).await?;
    // Fail fast with the engine's own "no such image" before streaming.
    let inspected = with_timeout(socket, docker.inspect_image(name)).await?.map_err(api)?;
    let size = inspected.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
    let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
    let mut stream = docker.export_image(name);
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(api)?;
        written += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(io)?;
        progress(written, size);
    }
    file.flush().await.map_err(io)?;
    Ok(written)
}

/// Freezes (`true`) or thaws a container: its processes stop being scheduled and keep their
/// state (the engine's cgroup freezer).
pub async fn set_paused(socket: &Path, id: &str, paused: bool) -> Result<(), EngineError> {
    let api = |source| EngineError::Api { socket: socket.to_path_buf(), source };
    let docker = connect(socket).await?;
    if paused {
        with_timeout(socket, docker.pause_container(id)).await?.map_err(api)
    } else {
        with_timeout(socket, docker.unpause_container(id)).await?.map_err(api)
    }
}

pub async fn inspect(socket: &Path, id: &str) -> Result<ContainerDetail, EngineError> {
    let api = |source| EngineError::Api { socket: socket.to_path_buf(), source };
    let docker = connect(socket).await?;
    let c = with_timeout(socket, docker.inspect_container(id, None)).await?.map_err(api)?;
    let config = c.config.unwrap_or_default();
    let host = c.host_config.unwrap_or_default();
    let state = c.state.unwrap_or_default();
    let addresses = c
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default()
        .into_values()
        .flat_map(|e| [e.ip_address, e.global_ipv6_address])
        .flatten()
        .filter_map(|a| a.parse().ok())
        .collect();
    // Entrypoint + Cmd is what runs; Path/Args differ between Docker and Podman's compat API.
    let command: Vec<String> = config
        .entrypoint
        .clone()
        .unwrap_or_default()
        .into_iter()
        .chain(config.cmd.clone().unwrap_or_default())
        .collect();
    let mounts = c
        .mounts
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let mode = if m.rw.unwrap_or(false) { "rw" } else { "ro" };
            format!("{} -> {} ({mode})", m.source.unwrap_or_default(), m.destination.unwrap_or_default())
        })
        .collect();
    Ok(ContainerDetail {
        id: c.id.unwrap_or_default(),
        name: c.name.unwrap_or_default().trim_start_matches('/').to_string(),
        image: config.image.unwrap_or_default(),
        image_id: c.image.unwrap_or_default(),
        created: c.created.map(|t| t.to_string()).unwrap_or_default(),
        state: state.status.map(|s| s.to_string()).unwrap_or_default(),
        pid: state.pid.unwrap_or_default(),
        // Engines report the zero time for containers that never started.
        started_at: state.started_at.filter(|t| !t.starts_with("0001-")).unwrap_or_default(),
        command: command.join(" ").trim().to_string(),
        user: config.user.filter(|u| !u.is_empty()).unwrap_or_else(|| "root (image default)".into()),
        privileged: host.privileged.unwrap_or(false),
        read_only_rootfs: host.readonly_rootfs.unwrap_or(false),
        cap_add: host.cap_add.unwrap_or_default(),
        cap_drop: host.cap_drop.unwrap_or_default(),
        security_opt: host.security_opt.unwrap_or_default(),
        network_mode: host.network_mode.unwrap_or_default(),
        pid_mode: host.pid_mode.unwrap_or_default(),
        ipc_mode: host.ipc_mode.unwrap_or_default(),
        memory_limit: host.memory.unwrap_or_default(),
        pids_limit: host.pids_limit.unwrap_or_default(),
        mounts,
        // Values can hold secrets; the console shows names only.
        env_names: config
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|kv| kv.split_once('=').map_or(kv.clone(), |(k, _)| k.to_string()))
            .collect(),
        labels: config.labels.unwrap_or_default().into_iter().collect(),
        healthcheck: config.healthcheck.and_then(|h| h.test).unwrap_or_default(),
        addresses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_sockets_drops_missing_and_duplicates() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("engine.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&real).unwrap();
        let alias = tmp.path().join("alias.sock");
        std::os::unix::fs::symlink(&real, &alias).unwrap();
        let found = existing_sockets(&[tmp.path().join("none.sock"), real.clone(), alias]);
        assert_eq!(found, vec![real]);
    }

    #[tokio::test]
    async fn a_socket_nobody_answers_on_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("dead.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(listener); // the file stays, nothing listens: connection refused
        let probes = discover(std::slice::from_ref(&path)).await;
        assert_eq!(probes.len(), 1);
        let err = probes[0].result.clone().unwrap_err();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[tokio::test]
    async fn a_socket_that_never_answers_times_out() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("silent.sock");
        // Accepts connections (the kernel queues them) but never replies.
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let err = probe(&path).await.unwrap_err();
        assert!(matches!(err, EngineError::Timeout { .. } | EngineError::Api { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
    }
}

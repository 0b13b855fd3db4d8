//! Which container an event came from: the kernel programs report the task's cgroup v2 id (the
//! inode of its directory in the unified hierarchy); the directory's path names the container
//! in each runtime's pattern, and, under a kubelet, the pod's UID.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Docker,
    Podman,
    Containerd,
    CriO,
}

/// What a container is called in lists: `namespace/pod/container` on Kubernetes, else the
/// engine's name, else a short id; `host` for none.
pub fn label(container: Option<&ContainerRef>) -> String {
    match container {
        None => "host".into(),
        Some(c) => match (&c.pod_namespace, &c.pod_name, &c.name) {
            (Some(ns), Some(pod), Some(name)) => format!("{ns}/{pod}/{name}"),
            (Some(ns), Some(pod), None) => format!("{ns}/{pod}"),
            (_, _, Some(name)) => name.clone(),
            _ => c.id.chars().take(12).collect(),
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRef {
    pub runtime: Runtime,
    /// The full 64-hex container id.
    pub id: String,
    /// The pod's UID when a kubelet made the cgroup.
    pub pod_uid: Option<String>,
    /// The container's name and image, from the engine's API when the agent reaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The pod's namespace and name, from the API server, on a Kubernetes node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// The workload that owns the pod, `Kind/name` (`Deployment/web`), from the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_owner: Option<String>,
}

fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container a cgroup path belongs to, in the patterns of Docker, Podman, containerd and
/// CRI-O with the cgroupfs or systemd drivers:
/// `/docker/ID`, `/system.slice/docker-ID.scope`, `/libpod_parent/libpod-ID`,
/// `/machine.slice/libpod-ID.scope`, `/kubepods/burstable/podUID/ID`,
/// `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podUID.slice/cri-containerd-ID.scope`,
/// `…/crio-ID.scope`, containerd's `/NAMESPACE/ID`. Podman's `conmon` and init sub-cgroups
/// (`…/container`) count as the container.
pub fn container_of_cgroup_path(path: &str) -> Option<ContainerRef> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let pod_uid = parts.iter().find_map(|p| pod_uid_of(p));
    // The innermost component that names a container.
    for (index, part) in parts.iter().enumerate().rev() {
        let name = part.trim_end_matches(".scope");
        let (runtime, id) = if let Some(id) = name.strip_prefix("docker-") {
            (Runtime::Docker, id)
        } else if let Some(id) = name.strip_prefix("libpod-conmon-") {
            (Runtime::Podman, id)
        } else if let Some(id) = name.strip_prefix("libpod-") {
            (Runtime::Podman, id)
        } else if let Some(id) = name.strip_prefix("cri-containerd-") {
            (Runtime::Containerd, id)
        } else if let Some(id) = name.strip_prefix("crio-conmon-") {
            (Runtime::CriO, id)
        } else if let Some(id) = name.strip_prefix("crio-") {
            (Runtime::CriO, id)
        } else if is_container_id(name) {
            let parent = index.checked_sub(1).and_then(|i| parts.get(i)).copied().unwrap_or_default();
            // A bare id under `docker` is Docker's cgroupfs layout; under a pod or a containerd
            // namespace it is containerd's.
            let runtime = if parent == "docker" { Runtime::Docker } else { Runtime::Containerd };
            (runtime, name)
        } else {
            continue;
        };
        if is_container_id(id) {
            return Some(ContainerRef {
                runtime,
                id: id.to_string(),
                pod_uid: pod_uid.clone(),
                name: None,
                image: None,
                pod_namespace: None,
                pod_name: None,
                pod_owner: None,
            });
        }
    }
    None
}

/// `podUID` (cgroupfs) or `kubepods-burstable-podUID.slice` (systemd, with `_` for `-`).
fn pod_uid_of(part: &str) -> Option<String> {
    let name = part.trim_end_matches(".slice");
    let uid = name.rsplit("-pod").next().filter(|_| name.contains("-pod")).or_else(|| name.strip_prefix("pod"))?;
    let uid = uid.replace('_', "-");
    let looks_like_uid = uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    looks_like_uid.then_some(uid)
}

/// Maps cgroup v2 ids to paths by walking the unified hierarchy (`/sys/fs/cgroup/unified` on a
/// hybrid host, `/sys/fs/cgroup` on a pure v2 one); walks again when an id is unknown, at most
/// once a second.
pub struct CgroupResolver {
    root: PathBuf,
    paths: HashMap<u64, String>,
    last_walk: Option<std::time::Instant>,
    /// When the batch of events being attributed was read: they all happened before it.
    batch_read: Option<std::time::Instant>,
    /// Ids a walk begun after their events did not find: their cgroups are gone, and asking
    /// again would walk the tree for nothing.
    gone: std::collections::HashSet<u64>,
}

impl CgroupResolver {
    pub fn new() -> Self {
        Self::with_root(unified_root())
    }

    pub fn with_root(root: PathBuf) -> Self {
        Self { root, paths: HashMap::new(), last_walk: None, batch_read: None, gone: Default::default() }
    }

    /// A batch of events was just read. An unknown cgroup id in it is looked up with a new walk
    /// unless the last walk began after this: the events happened before, so a cgroup a walk
    /// begun later did not find is gone. A new container's first exec is attributed to it even
    /// when its cgroup appeared a moment before.
    pub fn new_batch(&mut self) {
        self.batch_read = Some(std::time::Instant::now());
    }

    /// The cgroup path (relative to the hierarchy's root, starting with `/`) of an id.
    pub fn path_of(&mut self, cgroup_id: u64) -> Option<String> {
        if let Some(path) = self.paths.get(&cgroup_id) {
            return Some(path.clone());
        }
        if self.gone.contains(&cgroup_id) {
            return None;
        }
        let stale = self.last_walk.is_none_or(|t| {
            self.batch_read.is_some_and(|read| t < read) || t.elapsed() >= std::time::Duration::from_secs(1)
        });
        if stale {
            self.walk();
        }
        let found = self.paths.get(&cgroup_id).cloned();
        let walked_after_events = self.batch_read.zip(self.last_walk).is_some_and(|(read, walked)| walked >= read);
        if found.is_none() && walked_after_events {
            // Bounded: a busy node's churn of short-lived cgroups must not grow it for ever.
            if self.gone.len() >= 65536 {
                self.gone.clear();
            }
            self.gone.insert(cgroup_id);
        }
        found
    }

    /// A process in one of `cgroups` (as the last walk knows their paths), if any is running.
    pub fn process_in(&self, cgroups: &[u64]) -> Option<u32> {
        cgroups.iter().filter_map(|id| self.paths.get(id)).find_map(|path| {
            let procs =
                std::fs::read_to_string(self.root.join(path.trim_start_matches('/')).join("cgroup.procs")).ok()?;
            procs.lines().find_map(|line| line.trim().parse().ok())
        })
    }

    pub fn container_of(&mut self, cgroup_id: u64) -> Option<ContainerRef> {
        self.path_of(cgroup_id).and_then(|p| container_of_cgroup_path(&p))
    }

    /// Every container with a cgroup now, with all its cgroup ids and its pod's UID (walks the
    /// hierarchy again when the last walk is older than a second).
    pub fn containers(&mut self) -> std::collections::BTreeMap<String, ContainerCgroups> {
        if self.last_walk.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1)) {
            self.walk();
        }
        let mut found: std::collections::BTreeMap<String, ContainerCgroups> = Default::default();
        for (id, path) in &self.paths {
            // The runtime's monitor (conmon) runs in the host's view with the container's id in
            // its cgroup's name: its events are the container's, a policy is not for it.
            if path.contains("-conmon-") {
                continue;
            }
            if let Some(container) = container_of_cgroup_path(path) {
                let entry = found.entry(container.id).or_default();
                entry.cgroups.push(*id);
                entry.pod_uid = entry.pod_uid.take().or(container.pod_uid);
            }
        }
        found.values_mut().for_each(|c| c.cgroups.sort_unstable());
        found
    }

    fn walk(&mut self) {
        self.last_walk = Some(std::time::Instant::now());
        self.paths.clear();
        for entry in walkdir::WalkDir::new(&self.root).max_depth(16).into_iter().filter_map(Result::ok) {
            if !entry.file_type().is_dir() {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let relative = entry.path().strip_prefix(&self.root).unwrap_or(entry.path());
            self.paths.insert(meta.ino(), format!("/{}", relative.display()));
        }
    }
}

/// The cgroup v2 hierarchy: `/sys/fs/cgroup/unified` on cgroup v1 hybrid hosts, else
/// `/sys/fs/cgroup`.
pub fn unified_root() -> PathBuf {
    let hybrid = Path::new("/sys/fs/cgroup/unified");
    if hybrid.join("cgroup.procs").exists() { hybrid.to_path_buf() } else { PathBuf::from("/sys/fs/cgroup") }
}

/// A process's cgroup in the unified hierarchy (`/libpod_parent/libpod-ID`), from
/// `/proc/PID/cgroup`.
pub fn cgroup_path_of_pid(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|line| line.strip_prefix("0::")).map(str::to_string)
}

/// A process's cgroup v2 id: the inode of its directory under `root` (`unified_root()`).
pub fn cgroup_id_of_pid(root: &Path, pid: u32) -> Option<u64> {
    let path = cgroup_path_of_pid(pid)?;
    std::fs::metadata(root.join(path.trim_start_matches('/'))).ok().map(|m| m.ino())
}

/// The processes of the cgroup at `path` under `root` (none when it is gone).
pub fn cgroup_pids(root: &Path, path: &str) -> Vec<u32> {
    let procs = root.join(path.trim_start_matches('/')).join("cgroup.procs");
    let text = std::fs::read_to_string(procs).unwrap_or_default();
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// One container's cgroups, for policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerCgroups {
    pub cgroups: Vec<u64>,
    pub pod_uid: Option<String>,
}

impl Default for CgroupResolver {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c0a9e2b7d4e6f8a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7";
    const UID: &str = "0d7f3c2a-5b1e-4c9d-8e7f-6a5b4c3d2e1f";

    #[test]
    fn runtime_patterns_name_the_container() {
        let cases = [
            (format!("/docker/{ID}"), Runtime::Docker, None),
            (format!("/system.slice/docker-{ID}.scope"), Runtime::Docker, None),
            (format!("/libpod_parent/libpod-{ID}"), Runtime::Podman, None),
            (format!("/libpod_parent/libpod-{ID}/container"), Runtime::Podman, None),
            (format!("/machine.slice/libpod-{ID}.scope"), Runtime::Podman, None),
            (format!("/kubepods/burstable/pod{UID}/{ID}"), Runtime::Containerd, Some(UID)),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{ID}.scope",
                    UID.replace('-', "_")
                ),
                Runtime::Containerd,
                Some(UID),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{}.slice/crio-{ID}.scope", UID.replace('-', "_")),
                Runtime::CriO,
                Some(UID),
            ),
            (format!("/testbed/{ID}"), Runtime::Containerd, None),
        ];
        for (path, runtime, pod) in cases {
            let found = container_of_cgroup_path(&path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(found.runtime, runtime, "{path}");
            assert_eq!(found.id, ID, "{path}");
            assert_eq!(found.pod_uid.as_deref(), pod, "{path}");
        }
    }

    #[test]
    fn host_cgroups_are_no_container() {
        for path in [
            "/",
            "/system.slice/ssh.service",
            "/user.slice/user-1000.slice/session-2.scope",
            "/docker",
            "/libpod_parent/libpod-short",
        ] {
            assert_eq!(container_of_cgroup_path(path), None, "{path}");
        }
    }

    #[test]
    fn ids_are_directory_inodes() {
        let dir = tempfile::tempdir().unwrap();
        let leaf = dir.path().join(format!("docker/{ID}"));
        std::fs::create_dir_all(&leaf).unwrap();
        let ino = std::fs::metadata(&leaf).unwrap().ino();
        let mut resolver = CgroupResolver::with_root(dir.path().to_path_buf());
        assert_eq!(resolver.path_of(ino).as_deref(), Some(format!("/docker/{ID}").as_str()));
        assert_eq!(resolver.container_of(ino).map(|c| c.runtime), Some(Runtime::Docker));
        assert_eq!(resolver.path_of(u64::MAX), None);
    }

    #[test]
    fn a_cgroup_made_just_before_its_events_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut resolver = CgroupResolver::with_root(dir.path().to_path_buf());
        assert_eq!(resolver.path_of(1), None, "a first walk");
        // A container's cgroup appears, then its first exec is read, within the same second.
        let leaf = dir.path().join(format!("machine.slice/libpod-{ID}.scope"));
        std::fs::create_dir_all(&leaf).unwrap();
        let ino = std::fs::metadata(&leaf).unwrap().ino();
        assert_eq!(resolver.container_of(ino), None, "without a new batch the last walk stands");
        resolver.new_batch();
        assert_eq!(resolver.container_of(ino).map(|c| c.id), Some(ID.to_string()));
        // Within a batch an id no walk finds costs one walk, not one per event.
        resolver.new_batch();
        let walked = resolver.last_walk;
        assert_eq!(resolver.path_of(u64::MAX), None);
        let after_first = resolver.last_walk;
        assert_eq!(resolver.path_of(u64::MAX - 1), None);
        assert_ne!(walked, after_first);
        assert_eq!(resolver.last_walk, after_first);
        // A later batch naming a cgroup found gone does not walk again.
        resolver.new_batch();
        assert_eq!(resolver.path_of(u64::MAX), None);
        assert_eq!(resolver.last_walk, after_first, "a gone cgroup costs no walk");
        // The runtime monitor's cgroup is the container's for events, not for policies.
        let conmon = dir.path().join(format!("machine.slice/libpod-conmon-{ID}.scope"));
        std::fs::create_dir_all(&conmon).unwrap();
        let conmon_ino = std::fs::metadata(&conmon).unwrap().ino();
        resolver.new_batch();
        assert_eq!(resolver.container_of(conmon_ino).map(|c| c.id), Some(ID.to_string()));
        assert_eq!(
            resolver.containers().get(ID).map(|c| c.cgroups.clone()),
            Some(vec![ino]),
            "conmon's cgroup gets no policy"
        );
    }
}

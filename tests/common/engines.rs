//! Real container engines for tests, each confined to a temp dir: Podman (rootful, runc,
//! cgroupfs, vfs storage, no network) with its Docker-compatible API service, and Docker Engine
//! (dockerd with its own containerd, no bridge, no iptables). Settings from shared/TESTBED.md.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{have_tool, is_root, wait_for};

/// A one-layer image holding busybox (from Debian's busybox-static), as a tar to import.
fn busybox_rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).expect("rootfs");
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static is installed");
    for applet in ["sh", "sleep", "true", "cat", "id", "ls"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("symlink");
    }
    let tar = dir.join("rootfs.tar");
    let status = Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".").status().expect("tar");
    assert!(status.success());
    tar
}

fn run(mut cmd: Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn wait_for_socket(socket: &Path, log: &Path) {
    wait_for(Duration::from_secs(30), || socket.exists().then_some(())).unwrap_or_else(|| {
        panic!("{} never appeared: {}", socket.display(), std::fs::read_to_string(log).unwrap_or_default())
    });
}

pub struct Podman {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    service: Child,
}

impl Podman {
    /// Starts `podman system service` on a socket in a temp dir. None (test skipped) without
    /// podman or root.
    pub fn start() -> Option<Self> {
        if !have_tool("podman") || !have_tool("runc") || !is_root() {
            return None;
        }
        let dir = tempfile::Builder::new().prefix("pkt-podman").tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{0}/runroot\"\ngraphroot = \"{0}/graphroot\"\n",
                d.display()
            ),
        )
        .expect("storage.conf");
        std::fs::write(
            d.join("containers.conf"),
            format!(
                "[containers]\nnetns = \"none\"\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
                 [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\ntmp_dir = \"{}/tmp\"\n",
                d.display()
            ),
        )
        .expect("containers.conf");
        std::fs::write(d.join("registries.conf"), "unqualified-search-registries = []\n").expect("registries.conf");
        let socket = d.join("podman.sock");
        let log = d.join("service.log");
        let mut cmd = Command::new("podman");
        Self::set_env(&mut cmd, d);
        let service = cmd
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::fs::File::create(d.join("service.err")).expect("log"))
            .spawn()
            .expect("podman system service");
        wait_for_socket(&socket, &log);
        let podman = Self { dir, socket, service };
        podman.podman(&[
            "import",
            "-q",
            &busybox_rootfs_tar(podman.dir.path()).display().to_string(),
            "localhost/picket-test:1",
        ]);
        Some(podman)
    }

    fn set_env(cmd: &mut Command, d: &Path) {
        cmd.env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"));
    }

    /// Runs the podman CLI against this instance's storage; returns stdout.
    pub fn podman(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("podman");
        Self::set_env(&mut cmd, self.dir.path());
        cmd.args(args);
        run(cmd)
    }

    /// How long `sh -c script` takes in `container` (which must succeed): the best of three.
    pub fn timed_exec(&self, container: &str, script: &str) -> std::time::Duration {
        (0..3)
            .map(|_| {
                let started = std::time::Instant::now();
                let (ok, out) = self.try_podman(&["exec", container, "sh", "-c", script]);
                assert!(ok, "{out}");
                started.elapsed()
            })
            .min()
            .unwrap_or_default()
    }

    /// Runs the podman CLI; whether it succeeded, and stdout then stderr.
    pub fn try_podman(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new("podman");
        Self::set_env(&mut cmd, self.dir.path());
        let out = cmd.args(args).stdin(Stdio::null()).output().expect("podman runs");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    }

    pub const IMAGE: &str = "localhost/picket-test:1";
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Twice: a container another shares a namespace with is refused until that one is gone.
        for _ in 0..2 {
            let mut cmd = Command::new("podman");
            Self::set_env(&mut cmd, self.dir.path());
            let _ = cmd.args(["rm", "-a", "-f", "-t", "0"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        let _ = self.service.kill();
        let _ = self.service.wait();
    }
}

pub struct Dockerd {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    daemon: Child,
}

impl Dockerd {
    /// Starts dockerd (and its own containerd) confined to a temp dir. None (test skipped)
    /// without dockerd or root.
    pub fn start() -> Option<Self> {
        if !have_tool("dockerd") || !have_tool("docker") || !is_root() {
            return None;
        }
        let dir = tempfile::Builder::new().prefix("pkt-docker").tempdir().expect("tempdir");
        let d = dir.path();
        let socket = d.join("docker.sock");
        let config = serde_json::json!({
            "data-root": d.join("data"),
            "exec-root": d.join("exec"),
            "pidfile": d.join("docker.pid"),
            "hosts": [format!("unix://{}", socket.display())],
            "bridge": "none",
            "iptables": false,
            "ip6tables": false,
            "ip-forward": false,
            "ip-masq": false,
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "default-ulimits": { "nofile": { "Name": "nofile", "Hard": 20000, "Soft": 20000 } },
            "log-driver": "json-file",
        });
        std::fs::write(d.join("daemon.json"), config.to_string()).expect("daemon.json");
        let log = d.join("dockerd.log");
        let daemon = Command::new("dockerd")
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::fs::File::create(d.join("dockerd.err")).expect("log"))
            .spawn()
            .expect("dockerd");
        wait_for_socket(&socket, &d.join("dockerd.err"));
        let dockerd = Self { dir, socket, daemon };
        wait_for(Duration::from_secs(30), || {
            let mut cmd = Command::new("docker");
            cmd.env("DOCKER_HOST", dockerd.host()).arg("version").stdout(Stdio::null()).stderr(Stdio::null());
            cmd.status().is_ok_and(|s| s.success()).then_some(())
        })
        .expect("dockerd answers");
        dockerd.docker(&["import", &busybox_rootfs_tar(dockerd.dir.path()).display().to_string(), Self::IMAGE]);
        Some(dockerd)
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn docker(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", self.host()).args(args);
        run(cmd)
    }

    pub const IMAGE: &str = "picket-test:1";
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = Command::new("docker").env("DOCKER_HOST", self.host()).args(["ps", "-aq"]).output();
        if let Ok(ids) = ids {
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = Command::new("docker").env("DOCKER_HOST", self.host()).args(["rm", "-f", id]).output();
            }
        }
        // SIGTERM lets dockerd stop its containerd and unmount; SIGKILL only if it hangs.
        let _ = Command::new("kill").arg(self.daemon.id().to_string()).status();
        if wait_for(Duration::from_secs(15), || self.daemon.try_wait().ok().flatten()).is_none() {
            let _ = self.daemon.kill();
            let _ = self.daemon.wait();
        }
    }
}

//! A real Kubernetes control plane for tests: kube-apiserver v1.20.2, etcd and the
//! controller-manager built from Debian's source package by `../shared/testbed/kube/build.sh`
//! (once; cached under `target/kube`), started on free loopback ports by `start.sh`, stopped
//! by `stop.sh` when dropped. No kubelet runs: pods stay Pending.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct RealApiServer {
    pub kubeconfig: PathBuf,
    root: PathBuf,
    run_dir: PathBuf,
    /// API servers started again by a test (stop.sh stops them; the drop reaps them).
    restarted: std::sync::Mutex<Vec<std::process::Child>>,
}

fn testbed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testbed/kube")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl RealApiServer {
    /// Builds (the first time) and starts a control plane. None, saying why, where the testbed
    /// scripts are missing (a checkout without `../shared`) or picket is not root.
    pub fn start() -> Option<Self> {
        if !testbed().join("build.sh").exists() {
            eprintln!("skipped: the kube testbed (../shared/testbed/kube) is not on this machine");
            return None;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kube");
        // Once per test binary: the tests run in parallel, and build.sh is not made to run
        // beside itself.
        static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
        let built = BUILT.get_or_init(|| {
            // Up to eight tries: build.sh's `etcd --version | head -1` under pipefail fails now
            // and then when head closes the pipe before etcd has written its other lines
            // (SIGPIPE), after everything is built.
            let mut why = String::new();
            for attempt in 0..8 {
                if attempt > 0 {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
                let built = Command::new("bash")
                    .arg(testbed().join("build.sh"))
                    .env("KG_ROOT", &root)
                    .output()
                    .map_err(|e| format!("build.sh: {e}"))?;
                if built.status.success() {
                    return Ok(());
                }
                let stderr = String::from_utf8_lossy(&built.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
                why = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            }
            Err(why)
        });
        if let Err(why) = built {
            panic!("building the kube testbed failed: {why}");
        }
        // Up to three tries: the free ports are picked here and bound by start.sh's servers a
        // moment later, and a test starting another control plane beside this one may take one
        // in between (`bind: address already in use`); a failed try's servers are stopped.
        let mut started = None;
        let mut why = String::new();
        for _ in 0..3 {
            let run = Command::new("bash")
                .arg(testbed().join("start.sh"))
                .env("KG_ROOT", &root)
                .env("KG_API_PORT", free_port().to_string())
                .env("KG_ETCD_PORT", free_port().to_string())
                .env("KG_ETCD_PEER_PORT", free_port().to_string())
                .env("KG_KCM_PORT", free_port().to_string())
                .output()
                .expect("start.sh runs");
            if run.status.success() {
                started = Some(run);
                break;
            }
            why = String::from_utf8_lossy(&run.stderr).into_owned();
            let run_dir = why.lines().find_map(|l| l.strip_prefix("[start.sh] run dir: ")).map(str::trim);
            if let Some(run_dir) = run_dir {
                let _ = Command::new("bash").arg(testbed().join("stop.sh")).arg(run_dir).env("KG_ROOT", &root).output();
            }
        }
        let Some(started) = started else { panic!("start.sh failed three times; the last: {why}") };
        let kubeconfig = PathBuf::from(String::from_utf8_lossy(&started.stdout).trim());
        assert!(kubeconfig.is_file(), "start.sh printed no kubeconfig: {kubeconfig:?}");
        let run_dir = kubeconfig.parent().expect("the run dir").to_path_buf();
        Some(Self { kubeconfig, root, run_dir, restarted: Default::default() })
    }

    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        Command::new(self.root.join("bin/kubectl"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("kubectl runs")
    }

    /// A kubeconfig for user `name` (a client certificate the run's CA signs, no group): what
    /// it may do is what the test binds to it.
    pub fn user_kubeconfig(&self, name: &str) -> PathBuf {
        let pki = self.run_dir.join("pki");
        let (key, csr, crt) =
            (pki.join(format!("{name}.key")), pki.join(format!("{name}.csr")), pki.join(format!("{name}.crt")));
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(&pki).output().expect("openssl runs");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        openssl(&["genrsa", "-out", &key.display().to_string(), "2048"]);
        openssl(&[
            "req",
            "-new",
            "-key",
            &key.display().to_string(),
            "-subj",
            &format!("/CN={name}"),
            "-out",
            &csr.display().to_string(),
        ]);
        // A v3 certificate for client authentication (rustls refuses v1).
        let ext = pki.join(format!("{name}.ext"));
        std::fs::write(
            &ext,
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
        )
        .expect("write the extensions");
        openssl(&[
            "x509",
            "-extfile",
            &ext.display().to_string(),
            "-req",
            "-in",
            &csr.display().to_string(),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-sha256",
            "-out",
            &crt.display().to_string(),
        ]);
        let admin = std::fs::read_to_string(&self.kubeconfig).expect("the admin kubeconfig");
        let server = admin.lines().find_map(|l| l.trim().strip_prefix("server: ")).expect("the server").to_string();
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: picket-test\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\n\
             users:\n- name: {name}\n  user:\n    client-certificate: {crt}\n    client-key: {key}\n\
             contexts:\n- name: {name}@picket-test\n  context: {{cluster: picket-test, user: {name}}}\ncurrent-context: {name}@picket-test\n",
            ca = pki.join("ca.crt").display(),
            crt = crt.display(),
            key = key.display(),
        );
        let path = self.run_dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&path, config).expect("write the kubeconfig");
        path
    }

    /// Stops kube-apiserver and starts it again with the same command line (etcd keeps the
    /// data): every watch drops and must resume. Waits until it answers again.
    pub fn restart_api_server(&self) {
        let pid_file = self.run_dir.join("kube-apiserver.pid");
        let pid: u32 = std::fs::read_to_string(&pid_file).expect("the pid file").trim().parse().expect("a pid");
        let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .expect("its command line")
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let killed = Command::new("kill").arg(pid.to_string()).status().expect("kill runs");
        assert!(killed.success());
        // Gone, or a zombie nobody reaps (start.sh, its parent, has exited).
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |stat| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        };
        let stopped = (0..150).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            gone()
        });
        if !stopped {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            assert!(
                (0..50).any(|_| {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    gone()
                }),
                "kube-apiserver did not stop"
            );
        }
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.run_dir.join("logs/kube-apiserver.log"))
            .expect("the log");
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("kube-apiserver starts again");
        let new_pid = child.id();
        self.restarted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(child);
        // stop.sh stops what this file names.
        std::fs::write(&pid_file, new_pid.to_string()).expect("the pid file");
        let ready = (0..240).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(500));
            self.kubectl(&["get", "--raw", "/readyz"]).status.success()
        });
        assert!(ready, "kube-apiserver did not come back");
    }

    pub async fn client(&self) -> kube::Client {
        let config = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("the kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
            .expect("a client config");
        kube::Client::try_from(config).expect("a client")
    }
}

impl Drop for RealApiServer {
    fn drop(&mut self) {
        let _ =
            Command::new("bash").arg(testbed().join("stop.sh")).arg(&self.run_dir).env("KG_ROOT", &self.root).output();
        if let Ok(mut restarted) = self.restarted.lock() {
            for child in restarted.iter_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

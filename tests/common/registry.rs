//! Debian's docker-registry (distribution v2) on 127.0.0.1, in a temp dir: plain HTTP without
//! auth, or TLS (a self-signed CA made with openssl) with htpasswd. Images are pushed with skopeo.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{have_tool, wait_for};

pub const USER: &str = "testuser";
pub const PASSWORD: &str = "testpass";

pub struct Registry {
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT` (plain) or `localhost:PORT` (TLS: the certificate names localhost).
    pub host: String,
    pub tls: bool,
    pub token: bool,
    server: Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn run(cmd: &mut Command) {
    let out = cmd.stdin(Stdio::null()).output().expect("command runs");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Registry {
    /// None (test skipped) where docker-registry, skopeo or openssl/htpasswd are missing.
    pub fn start(tls: bool) -> Option<Self> {
        Self::start_with(tls, None)
    }

    /// A plain-HTTP registry that authenticates with Bearer tokens from `realm`, trusting tokens
    /// signed by `cert`.
    pub fn start_with_tokens(realm: &str, cert: &Path) -> Option<Self> {
        Self::start_with(false, Some((realm.to_string(), cert.to_path_buf())))
    }

    fn start_with(tls: bool, token: Option<(String, PathBuf)>) -> Option<Self> {
        if !have_tool("docker-registry")
            || !have_tool("skopeo")
            || (tls && (!have_tool("openssl") || !have_tool("htpasswd")))
        {
            return None;
        }
        let token_mode = token.is_some();
        let dir = tempfile::Builder::new().prefix("pkt-registry").tempdir().expect("tempdir");
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}/data\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            d.display()
        );
        if tls {
            run(Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=localhost",
                    "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout",
                ])
                .arg(d.join("registry.key"))
                .arg("-out")
                .arg(d.join("ca.crt")));
            run(Command::new("htpasswd").args(["-Bbc"]).arg(d.join("htpasswd")).args([USER, PASSWORD]));
            config.push_str(&format!(
                "  tls:\n    certificate: {0}/ca.crt\n    key: {0}/registry.key\nauth:\n  htpasswd:\n    realm: basic-realm\n    path: {0}/htpasswd\n",
                d.display()
            ));
        }
        if let Some((realm, cert)) = token {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                super::token_server::SERVICE,
                super::token_server::ISSUER,
                cert.display()
            ));
        }
        std::fs::write(d.join("config.yml"), config).expect("config");
        let server = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdout(std::fs::File::create(d.join("registry.log")).expect("log"))
            .stderr(std::fs::File::create(d.join("registry.err")).expect("log"))
            .spawn()
            .expect("docker-registry");
        let registry = Self {
            host: format!("{}:{port}", if tls { "localhost" } else { "127.0.0.1" }),
            tls,
            token: token_mode,
            dir,
            server,
        };
        wait_for(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ()))
            .unwrap_or_else(|| {
                panic!(
                    "registry did not start: {}",
                    std::fs::read_to_string(d.join("registry.err")).unwrap_or_default()
                )
            });
        Some(registry)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Pushes `source` (a skopeo transport reference, e.g. `oci:/path:ref`) to `repo:tag`.
    pub fn push(&self, source: &str, target: &str, all: bool) {
        let mut cmd = Command::new("skopeo");
        cmd.arg("copy").arg("--quiet");
        if all {
            cmd.arg("--all");
        }
        if self.token {
            cmd.arg("--dest-tls-verify=false").arg("--dest-creds").arg(format!("{USER}:{PASSWORD}"));
        } else if self.tls {
            let certs = self.dir.path().join("certs.d");
            std::fs::create_dir_all(&certs).expect("certs dir");
            std::fs::copy(self.ca(), certs.join("ca.crt")).expect("ca copy");
            cmd.arg("--dest-cert-dir").arg(&certs).arg("--dest-creds").arg(format!("{USER}:{PASSWORD}"));
        } else {
            cmd.arg("--dest-tls-verify=false");
        }
        cmd.arg(source).arg(format!("docker://{}/{target}", self.host));
        run(&mut cmd);
    }

    /// A docker config.json (in its own dir) holding this registry's credentials.
    pub fn docker_config(&self, password: &str) -> PathBuf {
        use std::io::Write;
        let dir = self.dir.path().join(format!("docker-config-{password}"));
        std::fs::create_dir_all(&dir).expect("dir");
        let auth = {
            let raw = format!("{USER}:{password}");
            let out =
                Command::new("base64").arg("-w0").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("base64");
            out.stdin.as_ref().expect("stdin").write_all(raw.as_bytes()).expect("write");
            String::from_utf8(out.wait_with_output().expect("base64").stdout).expect("utf8")
        };
        std::fs::write(dir.join("config.json"), format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, self.host))
            .expect("config.json");
        dir.join("config.json")
    }

    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.path().join("data/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

//! A token service for docker-registry's `auth: token` mode (the Bearer flow Docker Hub and GHCR
//! use). Debian packages no token server, so this one issues the JWTs distribution verifies:
//! RS256, the signing certificate in `x5c`, issuer/audience/expiry, and the requested `access`,
//! signed with the openssl CLI. The registry that checks them is the real one.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;

pub const ISSUER: &str = "picket-test-issuer";
pub const SERVICE: &str = "picket-test-registry";

pub struct TokenServer {
    pub realm: String,
    pub cert: PathBuf,
    /// Every request seen: (scope, whether it carried valid Basic credentials).
    pub requests: Arc<Mutex<Vec<(String, bool)>>>,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(key: &Path, data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    child.stdin.take().expect("stdin").write_all(data).expect("write");
    child.wait_with_output().expect("openssl sign").stdout
}

fn query_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.replace("%3A", ":").replace("%2F", "/").replace("%2C", ",").replace('+', " "))
        .unwrap_or_default()
}

impl TokenServer {
    /// Starts the service; `user`/`password` are the only credentials it accepts. Anonymous
    /// requests get a token with no access (as real token services do).
    pub fn start(dir: &Path, user: &str, password: &str) -> Self {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=picket-token"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl req");
        assert!(status.success());
        let der =
            Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(&cert).output().expect("der").stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let realm = format!("http://{}/token", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let expected =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut authorized = false;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    if let Some((name, value)) = line.trim_end().split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        authorized = value.trim() == expected;
                    }
                    line.clear();
                }
                let target = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
                let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
                let scope = query_param(query, "scope");
                seen.lock().expect("lock").push((scope.clone(), authorized));
                let access: Vec<serde_json::Value> = if authorized {
                    scope
                        .split(' ')
                        .filter_map(|s| {
                            let mut parts = s.splitn(3, ':');
                            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
                let claims = serde_json::json!({
                    "iss": ISSUER, "sub": if authorized { "testuser" } else { "" }, "aud": query_param(query, "service"),
                    "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", access.len()), "access": access,
                });
                let signing_input =
                    format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
                let token = format!("{signing_input}.{}", b64url(&sign(&key, signing_input.as_bytes())));
                let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { realm, cert, requests }
    }
}

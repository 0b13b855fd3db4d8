//! Credentials and the registry auth handshake: `WWW-Authenticate: Basic` or `Bearer`
//! (realm/service/scope → token), with credentials from Docker's `config.json` (`auths`,
//! `credHelpers`, `credsStore`) or Podman's `auth.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The auth files to read, in order: `$REGISTRY_AUTH_FILE`, Podman's
/// `$XDG_RUNTIME_DIR/containers/auth.json`, Docker's `$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`.
pub fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(path) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(path));
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(runtime).join("containers/auth.json"));
    }
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => files.push(PathBuf::from(dir).join("config.json")),
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                files.push(PathBuf::from(home).join(".docker/config.json"));
            }
        }
    }
    files
}

/// Keys an auth file may use for a registry: `host`, `https://host`, `http://host/v1/` …
fn matches_host(key: &str, host: &str) -> bool {
    let trimmed = key.trim_start_matches("https://").trim_start_matches("http://");
    let trimmed = trimmed.split('/').next().unwrap_or(trimmed);
    trimmed == host || (host == "docker.io" && (trimmed == "index.docker.io" || trimmed == "registry-1.docker.io"))
}

/// Looks up credentials for `host` in the auth files; a credential helper is run when one is
/// configured. A broken file is an error naming it.
pub fn lookup(host: &str, files: &[PathBuf]) -> Result<Option<Credentials>, String> {
    for file in files {
        let Ok(text) = crate::input::read_text(file, crate::input::MAX_TEXT) else { continue };
        let config: DockerConfig = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        if let Some(helper) = config.cred_helpers.iter().find(|(k, _)| matches_host(k, host)).map(|(_, v)| v) {
            return run_helper(helper, host).map(Some);
        }
        if let Some((_, entry)) = config.auths.iter().find(|(k, _)| matches_host(k, host)) {
            if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
                return Ok(Some(Credentials { username: username.clone(), password: password.clone() }));
            }
            if let Some(auth) = &entry.auth {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|e| format!("{}: auths.{host}.auth is not base64: {e}", file.display()))?;
                let text = String::from_utf8(decoded)
                    .map_err(|_| format!("{}: auths.{host}.auth is not UTF-8", file.display()))?;
                let (username, password) = text
                    .split_once(':')
                    .ok_or_else(|| format!("{}: auths.{host}.auth is not user:password", file.display()))?;
                return Ok(Some(Credentials { username: username.to_string(), password: password.to_string() }));
            }
            if let Some(store) = &config.creds_store {
                return run_helper(store, host).map(Some);
            }
        }
        if let Some(store) = &config.creds_store {
            return run_helper(store, host).map(Some);
        }
    }
    Ok(None)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperOutput {
    username: String,
    secret: String,
}

/// `docker-credential-NAME get`, with the host on stdin (the credential helper protocol).
fn run_helper(name: &str, host: &str) -> Result<Credentials, String> {
    use std::io::Write;
    let program = format!("docker-credential-{name}");
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run credential helper '{program}': {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(host.as_bytes()).map_err(|e| format!("{program}: {e}"))?;
    }
    let output = child.wait_with_output().map_err(|e| format!("{program}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{program} get {host}: {}", String::from_utf8_lossy(&output.stdout).trim()));
    }
    let parsed: HelperOutput =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("{program}: unexpected output: {e}"))?;
    Ok(Credentials { username: parsed.username, password: parsed.secret })
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"`
/// (quoted or bare values, commas inside quotes kept).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect::<String>().trim().to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect::<String>().trim().to_string();
        }
        params.insert(key, value);
    }
    (!scheme.is_empty()).then(|| Challenge { scheme: scheme.to_ascii_lowercase(), params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let c = parse_challenge(r#"Basic realm="basic-realm""#).unwrap();
        assert_eq!((c.scheme.as_str(), c.params["realm"].as_str()), ("basic", "basic-realm"));
        let c = parse_challenge("Bearer realm=https://x/t, service=svc").unwrap();
        assert_eq!(c.params["service"], "svc");
        assert!(parse_challenge("").is_none());
    }

    #[test]
    fn reads_auths_in_both_forms_and_names_broken_files() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("testuser:testpass");
        std::fs::write(&file, format!(r#"{{"auths":{{"https://127.0.0.1:5001":{{"auth":"{auth}"}},"ghcr.io":{{"username":"u","password":"p"}}}}}}"#)).unwrap();
        let files = vec![tmp.path().join("missing.json"), file.clone()];
        let creds = lookup("127.0.0.1:5001", &files).unwrap().unwrap();
        assert_eq!((creds.username.as_str(), creds.password.as_str()), ("testuser", "testpass"));
        assert_eq!(lookup("ghcr.io", &files).unwrap().unwrap().username, "u");
        assert_eq!(lookup("quay.io", &files).unwrap(), None);
        assert!(!format!("{creds:?}").contains("testpass"), "passwords stay out of debug output");
        std::fs::write(&file, "{not json").unwrap();
        assert!(lookup("ghcr.io", &files).unwrap_err().contains("config.json"));
    }
}

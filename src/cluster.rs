//! Kubernetes targets: the contexts in the user's kubeconfig files.

pub mod capped;
#[cfg(test)]
pub mod fixtures;
pub mod images;
pub mod inventory;
pub mod production;
pub mod watch;

use std::path::{Path, PathBuf};

use kube::config::Kubeconfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextInfo {
    pub name: String,
    pub cluster: String,
    pub server: String,
    pub user: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeContexts {
    /// The files that were read, in kubectl's merge order.
    pub files: Vec<PathBuf>,
    pub current: Option<String>,
    pub contexts: Vec<ContextInfo>,
}

#[derive(Debug, thiserror::Error)]
#[error("kubeconfig {path}: {source}", path = .path.display())]
pub struct KubeconfigError {
    pub path: PathBuf,
    #[source]
    pub source: kube::config::KubeconfigError,
}

/// The kubeconfig files kubectl would read: `$KUBECONFIG` (colon-separated, missing entries
/// skipped) or `~/.kube/config`.
pub fn kubeconfig_paths(kubeconfig_env: Option<&str>, home: Option<&Path>) -> Vec<PathBuf> {
    match kubeconfig_env.filter(|v| !v.is_empty()) {
        Some(list) => std::env::split_paths(list).filter(|p| p.is_file()).collect(),
        None => home.map(|h| h.join(".kube/config")).filter(|p| p.is_file()).into_iter().collect(),
    }
}

/// Reads and merges the given kubeconfig files. No files is not an error: the local target works
/// without Kubernetes.
pub fn contexts(paths: &[PathBuf]) -> Result<KubeContexts, KubeconfigError> {
    let mut merged: Option<Kubeconfig> = None;
    for path in paths {
        let wrap = |source| KubeconfigError { path: path.clone(), source };
        let next = Kubeconfig::read_from(path).map_err(wrap)?;
        merged = Some(match merged {
            Some(config) => config.merge(next).map_err(wrap)?,
            None => next,
        });
    }
    let Some(config) = merged else { return Ok(KubeContexts::default()) };
    let server_of = |cluster: &str| {
        config
            .clusters
            .iter()
            .find(|c| c.name == cluster)
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .unwrap_or_default()
    };
    let contexts = config
        .contexts
        .iter()
        .map(|named| {
            let context = named.context.as_ref();
            let cluster = context.map(|c| c.cluster.clone()).unwrap_or_default();
            ContextInfo {
                name: named.name.clone(),
                server: server_of(&cluster),
                cluster,
                user: context.and_then(|c| c.user.clone()).unwrap_or_default(),
                namespace: context.and_then(|c| c.namespace.clone()).unwrap_or_else(|| "default".into()),
            }
        })
        .collect();
    Ok(KubeContexts { files: paths.to_vec(), current: config.current_context.clone(), contexts })
}

/// `contexts` for the files kubectl would read from this process's environment.
pub fn contexts_from_env() -> Result<KubeContexts, KubeconfigError> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let env = std::env::var("KUBECONFIG").ok();
    contexts(&kubeconfig_paths(env.as_deref(), home.as_deref()))
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
    #[error("no Kubernetes context: no kubeconfig ($KUBECONFIG, ~/.kube/config) and not running in a pod")]
    NoContext,
    #[error("context {context}: {source}")]
    Config {
        context: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("in-cluster configuration: {0}")]
    InCluster(#[source] kube::config::InClusterError),
    #[error("context {context}: cannot build a client: {}", inventory::describe(source))]
    Client { context: String, source: kube::Error },
}

/// How long a kubeconfig's credential plugin (`users[].user.exec`) may take
/// (`PICKET_EXEC_TIMEOUT` seconds overrides it).
pub const EXEC_PLUGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(9);

/// The hidden subcommand that runs a credential plugin with a deadline.
pub const EXEC_WRAPPER: &str = "exec-credential-with-deadline";

/// Makes every credential plugin run through picket's own deadline: kube runs plugins itself
/// and waits for them without end, so each `exec` becomes `picket exec-credential-with-deadline
/// SECONDS -- COMMAND ARGS...`, which gives the plugin's answer or, past the deadline, kills it
/// and fails naming it. kube still refreshes expiring tokens through it.
fn bound_exec_plugins(kubeconfig: &mut Kubeconfig) {
    let Ok(me) = std::env::current_exe() else { return };
    let seconds = std::env::var("PICKET_EXEC_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(EXEC_PLUGIN_TIMEOUT.as_secs());
    for named in &mut kubeconfig.auth_infos {
        let Some(exec) = named.auth_info.as_mut().and_then(|a| a.exec.as_mut()) else { continue };
        let Some(command) = exec.command.take() else { continue };
        let mut args = vec![EXEC_WRAPPER.to_string(), seconds.to_string(), "--".to_string(), command];
        args.extend(exec.args.take().unwrap_or_default());
        exec.command = Some(me.display().to_string());
        exec.args = Some(args);
    }
}

/// `picket exec-credential-with-deadline SECONDS -- COMMAND ARGS...`: runs the plugin with the
/// environment and standard input kube gave, passes its answer through, and past the deadline
/// kills it and says so on standard error (which kube puts in its error).
pub fn run_exec_plugin(seconds: u64, argv: &[String]) -> std::process::ExitCode {
    let Some((command, args)) = argv.split_first() else {
        crate::say!("picket: {EXEC_WRAPPER}: no credential plugin to run");
        return std::process::ExitCode::from(2);
    };
    let child = std::process::Command::new(command).args(args).stdout(std::process::Stdio::piped()).spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            crate::say!("picket: the kubeconfig's credential plugin {command} cannot run: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    // Read its answer meanwhile, so a large one cannot fill the pipe and stall it.
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut answer = Vec::new();
        if let Some(out) = stdout.as_mut() {
            let _ = std::io::Read::read_to_end(&mut std::io::Read::take(out, 1 << 20), &mut answer);
        }
        answer
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => {
                // Its children too: one left holding standard error would keep kube waiting.
                kill_tree(child.id());
                let _ = child.kill();
                let _ = child.wait();
                crate::say!(
                    "picket: the kubeconfig's credential plugin {command} gave no answer in {seconds} s and was stopped (PICKET_EXEC_TIMEOUT sets the deadline)"
                );
                return std::process::ExitCode::from(1);
            }
        }
    };
    let answer = reader.join().unwrap_or_default();
    if std::io::Write::write_all(&mut std::io::stdout(), &answer).is_err() {
        return std::process::ExitCode::from(1);
    }
    match status.code() {
        Some(0) => std::process::ExitCode::SUCCESS,
        Some(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => std::process::ExitCode::from(1),
    }
}

/// SIGKILL to every descendant of `pid` (found through /proc), deepest first.
fn kill_tree(pid: u32) {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let child: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            Some((child, ppid))
        })
        .collect();
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(child, _)| *child));
        i += 1;
    }
    for descendant in tree.into_iter().skip(1).rev() {
        if let Ok(pid) = i32::try_from(descendant) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// A client for `context` (None: the kubeconfig's current context) from the kubeconfig files
/// kubectl would read, or the in-cluster service account when there are none and picket runs
/// in a pod. Connect and read timeouts keep an unreachable server from hanging the caller.
pub async fn client_for(context: Option<&str>) -> Result<(kube::Client, String), ConnectError> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let env = std::env::var("KUBECONFIG").ok();
    let paths = kubeconfig_paths(env.as_deref(), home.as_deref());
    let mut config = if paths.is_empty() {
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() || context.is_some() {
            return Err(ConnectError::NoContext);
        }
        kube::Config::incluster().map_err(ConnectError::InCluster)?
    } else {
        let mut merged: Option<Kubeconfig> = None;
        for path in &paths {
            let wrap = |source| KubeconfigError { path: path.clone(), source };
            let next = Kubeconfig::read_from(path).map_err(wrap)?;
            merged = Some(match merged {
                Some(config) => config.merge(next).map_err(wrap)?,
                None => next,
            });
        }
        let mut kubeconfig = merged.ok_or(ConnectError::NoContext)?;
        bound_exec_plugins(&mut kubeconfig);
        let name = context.map(String::from).or_else(|| kubeconfig.current_context.clone()).unwrap_or_default();
        let options = kube::config::KubeConfigOptions { context: Some(name.clone()), ..Default::default() };
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| ConnectError::Config { context: name, source })?
    };
    config.connect_timeout = Some(std::time::Duration::from_secs(5));
    config.read_timeout = Some(inventory::REQUEST_TIMEOUT);
    let name = context.map(String::from).unwrap_or_else(|| {
        if paths.is_empty() {
            "in-cluster".to_string()
        } else {
            contexts(&paths).ok().and_then(|c| c.current).unwrap_or_default()
        }
    });
    let client = kube::client::ClientBuilder::try_from(config)
        .map_err(|source| ConnectError::Client { context: name.clone(), source })?
        .with_layer(&capped::CapLayer)
        .build();
    Ok((client, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROD: &str = r#"apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: prod-cluster
  cluster:
    server: https://prod.example:6443
contexts:
- name: prod
  context:
    cluster: prod-cluster
    user: admin
    namespace: payments
users:
- name: admin
  user:
    token: abc
"#;

    const DEV: &str = r#"apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: kind-dev
  cluster:
    server: https://127.0.0.1:40000
contexts:
- name: dev
  context:
    cluster: kind-dev
    user: kind
users:
- name: kind
  user: {}
"#;

    #[test]
    fn merges_files_in_order_like_kubectl() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::write(&a, PROD).unwrap();
        std::fs::write(&b, DEV).unwrap();
        let env = std::env::join_paths([&a, &tmp.path().join("missing"), &b]).unwrap();
        let paths = kubeconfig_paths(env.to_str(), None);
        assert_eq!(paths, vec![a.clone(), b.clone()]);
        let found = contexts(&paths).unwrap();
        assert_eq!(found.current.as_deref(), Some("prod"), "first file's current-context wins");
        assert_eq!(found.contexts.len(), 2);
        assert_eq!(found.contexts[0].server, "https://prod.example:6443");
        assert_eq!(found.contexts[0].namespace, "payments");
        assert_eq!(found.contexts[1].namespace, "default");
    }

    #[test]
    fn home_config_is_used_without_kubeconfig_env() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(kubeconfig_paths(None, Some(tmp.path())).is_empty());
        std::fs::create_dir_all(tmp.path().join(".kube")).unwrap();
        std::fs::write(tmp.path().join(".kube/config"), DEV).unwrap();
        assert_eq!(kubeconfig_paths(Some(""), Some(tmp.path())).len(), 1);
        assert_eq!(contexts(&[]).unwrap(), KubeContexts::default());
    }

    #[test]
    fn broken_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        std::fs::write(&path, "contexts: [ {name: x, context: 5 ]\n").unwrap();
        let err = contexts(std::slice::from_ref(&path)).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}

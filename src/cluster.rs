//! Kubernetes targets: the contexts in the user's kubeconfig files.

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
    #[error("context {context}: cannot build a client: {source}")]
    Client {
        context: String,
        #[source]
        source: kube::Error,
    },
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
        let kubeconfig = merged.ok_or(ConnectError::NoContext)?;
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
    let client =
        kube::Client::try_from(config).map_err(|source| ConnectError::Client { context: name.clone(), source })?;
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

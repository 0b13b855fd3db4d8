//! Every policy put in force, kept in the store with who applied it, when, where and from which
//! file: a target's versions are numbered from 1, and any of them can be applied again
//! (`picket policy history`, `picket policy restore`).
//!
//! A target is where the policy went: `agent /run/picket/agent.sock` (the whole file the agent
//! holds), or `cluster CONTEXT PicketPolicy shop/web` (one object).

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError, TreeName, Typed};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub target: String,
    pub version: u32,
    /// Unix milliseconds.
    pub at_unix_ms: u64,
    /// The user who applied it (`$SUDO_USER`, else `$USER`, else the uid).
    pub who: String,
    /// The file it was applied from (or `restored from version N`).
    pub source: String,
    pub yaml: String,
    /// What the target said it put in force.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
}

pub struct PolicyHistory<'a> {
    store: &'a Store,
    tree: Typed<PolicyVersion>,
}

fn key(target: &str, version: u32) -> String {
    format!("{target}\0{version:010}")
}

/// The history's name for the local agent listening on `socket`.
pub fn agent_target(socket: &std::path::Path) -> String {
    format!("agent {}", socket.display())
}

/// The history's name for one object applied to a cluster.
pub fn cluster_target(context: &str, document: &str) -> String {
    format!("cluster {context} {document}")
}

/// Who is applying: the user behind sudo first, since the agent's socket needs root.
pub fn who() -> String {
    std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").map_or_else(|_| "unknown".into(), |m| format!("uid {}", m.uid()))
    })
}

impl<'a> PolicyHistory<'a> {
    pub fn open(store: &'a Store) -> Result<Self, StoreError> {
        Ok(Self { store, tree: store.tree(TreeName::PolicyHistory)? })
    }

    /// Keeps one more version of `target`; returns its number.
    pub fn record(&self, target: &str, source: &str, yaml: &str, summary: &str) -> Result<u32, StoreError> {
        let version = self.versions(target)?.last().map_or(1, |v| v.version + 1);
        let at_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let record = PolicyVersion {
            target: target.into(),
            version,
            at_unix_ms,
            who: who(),
            source: source.into(),
            yaml: yaml.into(),
            summary: summary.into(),
        };
        self.tree.insert(&key(target, version), &record)?;
        self.store.flush()?;
        Ok(version)
    }

    /// A target's versions, oldest first.
    pub fn versions(&self, target: &str) -> Result<Vec<PolicyVersion>, StoreError> {
        Ok(self.tree.scan_prefix(&format!("{target}\0"))?.into_iter().map(|(_, v)| v).collect())
    }

    pub fn get(&self, target: &str, version: u32) -> Result<Option<PolicyVersion>, StoreError> {
        self.tree.get(&key(target, version))
    }

    /// Every target with its newest version.
    pub fn targets(&self) -> Result<Vec<PolicyVersion>, StoreError> {
        let mut newest: Vec<PolicyVersion> = Vec::new();
        for item in self.tree.iter() {
            let (_, version) = item?;
            match newest.last_mut() {
                Some(last) if last.target == version.target => *last = version,
                _ => newest.push(version),
            }
        }
        Ok(newest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_per_target_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store")).expect("store");
        let history = PolicyHistory::open(&store).expect("history");
        assert_eq!(history.record("agent /run/a.sock", "web.yaml", "containers: []\n", "").expect("v1"), 1);
        assert_eq!(history.record("agent /run/a.sock", "web.yaml", "containers: [x]\n", "").expect("v2"), 2);
        assert_eq!(history.record("cluster c PicketPolicy shop/web", "w.yaml", "y", "").expect("v1"), 1);
        let versions = history.versions("agent /run/a.sock").expect("versions");
        assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(history.get("agent /run/a.sock", 1).expect("get").map(|v| v.yaml), Some("containers: []\n".into()));
        let targets = history.targets().expect("targets");
        assert_eq!(
            targets.iter().map(|t| (t.target.as_str(), t.version)).collect::<Vec<_>>(),
            [("agent /run/a.sock", 2), ("cluster c PicketPolicy shop/web", 1)]
        );
    }
}

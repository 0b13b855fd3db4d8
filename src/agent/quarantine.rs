//! Quarantine: containers a response action cut off the network (every connect and send refused
//! with EPERM, every packet to or from them dropped) while they keep running, for an incident
//! responder to look at. Kept by container id — a container's cgroups change when it restarts,
//! its id does not — and, with a state directory, in `quarantine.json` there, so an agent
//! restart keeps them cut. The network rung's `quarantined` map holds their cgroups
//! (enforce/network.rs).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One quarantined container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// The full container id.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub since_ms: u64,
    /// Who asked (`picket respond quarantine` by a user, or a response rule).
    pub who: String,
    /// Why (`alert 17f…-3 (crypto-miner-program)`, or what the user said).
    #[serde(default)]
    pub reason: String,
}

impl Quarantined {
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} ({})", short(&self.id)),
            None => short(&self.id).to_string(),
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[derive(Debug, Default)]
pub struct Quarantine {
    entries: BTreeMap<String, Quarantined>,
    file: Option<PathBuf>,
}

const FILE: &str = "quarantine.json";

impl Quarantine {
    /// The quarantine kept in `dir` (none without one); a file that does not read is named in
    /// the note and left as it is (the agent starts with nothing quarantined rather than not at
    /// all, and the file is there for the operator).
    pub fn load(dir: Option<&Path>) -> (Self, Option<String>) {
        let Some(dir) = dir else { return (Self::default(), None) };
        let file = dir.join(FILE);
        let mut quarantine = Self { entries: BTreeMap::new(), file: Some(file.clone()) };
        let text = match crate::input::read_text(&file, crate::input::MAX_TEXT) {
            Ok(text) => text,
            Err(_) if !file.exists() => return (quarantine, None),
            Err(e) => return (quarantine, Some(format!("{}: {e}; nothing is quarantined", file.display()))),
        };
        match serde_json::from_str::<Vec<Quarantined>>(&text) {
            Ok(entries) => {
                quarantine.entries = entries.into_iter().map(|e| (e.id.clone(), e)).collect();
                let note = (!quarantine.entries.is_empty()).then(|| {
                    format!(
                        "{} containers are quarantined again (kept in {})",
                        quarantine.entries.len(),
                        file.display()
                    )
                });
                (quarantine, note)
            }
            Err(e) => {
                // Not overwritten by the next change: that would lose what it held.
                quarantine.file = None;
                (
                    quarantine,
                    Some(format!("{}: {e}; nothing is quarantined and the file is left as it is", file.display())),
                )
            }
        }
    }

    pub fn list(&self) -> Vec<Quarantined> {
        self.entries.values().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Quarantines `entry` (already quarantined: kept as it was, false). One that cannot be
    /// kept on disk is in force all the same (said on standard error): cutting comes first.
    pub fn add(&mut self, entry: Quarantined) -> bool {
        if self.entries.contains_key(&entry.id) {
            return false;
        }
        self.entries.insert(entry.id.clone(), entry);
        self.keep();
        true
    }

    /// Releases the quarantined container `wanted` names (its name, or a prefix of its id).
    pub fn release(&mut self, wanted: &str) -> Result<Quarantined, String> {
        let known: Vec<(String, Option<String>)> =
            self.entries.values().map(|e| (e.id.clone(), e.name.clone())).collect();
        let id = find(wanted, &known).map_err(|e| format!("{e} among the quarantined containers"))?;
        let released = self.entries.remove(&id).ok_or_else(|| format!("{wanted} is not quarantined"))?;
        self.keep();
        Ok(released)
    }

    /// The cgroups of the quarantined containers among `running` (id, its cgroups).
    pub fn cgroups<'a>(&self, running: impl IntoIterator<Item = (&'a str, &'a [u64])>) -> HashSet<u64> {
        running
            .into_iter()
            .filter(|(id, _)| self.entries.contains_key(*id))
            .flat_map(|(_, cgroups)| cgroups.iter().copied())
            .collect()
    }

    fn keep(&self) {
        let Some(file) = &self.file else { return };
        let text = serde_json::to_string_pretty(&self.list()).unwrap_or_default();
        let temporary = file.with_extension(format!("json.new.{}", std::process::id()));
        let kept = file.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| {
            std::fs::write(&temporary, text)?;
            std::fs::rename(&temporary, file)
        });
        if let Err(e) = kept {
            crate::say!(
                "picket: cannot keep the quarantine in {}: {e}; it holds until the agent stops",
                file.display()
            );
        }
    }
}

/// The id of the one container among `known` (id, name) that `wanted` names: its name exactly,
/// or a prefix of its id.
pub fn find(wanted: &str, known: &[(String, Option<String>)]) -> Result<String, String> {
    let wanted = wanted.trim();
    if wanted.is_empty() {
        return Err("no container named".into());
    }
    if let Some((id, _)) = known.iter().find(|(_, name)| name.as_deref() == Some(wanted)) {
        return Ok(id.clone());
    }
    let by_id: Vec<&String> = known.iter().map(|(id, _)| id).filter(|id| id.starts_with(wanted)).collect();
    match by_id.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("no container named {wanted} or with an id starting so")),
        many => Err(format!("{wanted} starts {} container ids: give more of it", many.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, name: &str) -> Quarantined {
        Quarantined { id: id.into(), name: Some(name.into()), since_ms: 1, who: "t".into(), reason: String::new() }
    }

    #[test]
    fn containers_are_found_by_name_or_unique_id_prefix() {
        let known = vec![("abc123".to_string(), Some("web".to_string())), ("abd999".to_string(), None)];
        assert_eq!(find("web", &known).unwrap(), "abc123");
        assert_eq!(find("abd", &known).unwrap(), "abd999");
        assert!(find("ab", &known).unwrap_err().contains("starts 2 container ids"));
        assert!(find("zz", &known).unwrap_err().contains("no container named zz"));
        assert!(find(" ", &known).is_err());
    }

    #[test]
    fn the_quarantine_is_kept_and_read_back_and_a_broken_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, note) = Quarantine::load(Some(&dir.path().join("state")));
        assert_eq!(note, None);
        assert!(q.add(entry("abc123", "web")));
        assert!(!q.add(entry("abc123", "web")), "once");
        let running: Vec<(String, Vec<u64>)> = vec![("abc123".into(), vec![7, 8]), ("other".into(), vec![9])];
        let cgroups = q.cgroups(running.iter().map(|(id, c)| (id.as_str(), c.as_slice())));
        assert_eq!(cgroups, HashSet::from([7, 8]));
        let (again, note) = Quarantine::load(Some(&dir.path().join("state")));
        assert_eq!(again.list(), vec![entry("abc123", "web")]);
        assert!(note.unwrap().contains("1 containers are quarantined again"));
        assert_eq!(q.release("web").unwrap().id, "abc123");
        assert!(q.release("web").is_err());
        assert!(Quarantine::load(Some(&dir.path().join("state"))).0.is_empty());

        std::fs::write(dir.path().join(FILE), "{not json").unwrap();
        let (mut broken, note) = Quarantine::load(Some(dir.path()));
        assert!(note.unwrap().contains("quarantine.json"), "named");
        assert!(broken.add(entry("def", "db")));
        assert_eq!(std::fs::read_to_string(dir.path().join(FILE)).unwrap(), "{not json", "left as it was");
    }
}

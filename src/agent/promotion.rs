//! Promotion of groups between modes, done by the agent itself (`--promote-after`,
//! `--protect-after`): a group nothing else polices goes from discover to monitor once it has
//! learned nothing new for the quiet period (its learned policy, in monitor mode, is put in
//! force), and from monitor to protect after it ran that long without a violation. Every change
//! is logged (`STATE_DIR/promotions.jsonl`, and standard error) and kept, so promotions survive a
//! restart.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::policy::PolicyFile;
use crate::learn::Baselines;
use crate::policy::spec::Mode;

const STATE_FILE: &str = "promoted.json";
const LOG_FILE: &str = "promotions.jsonl";

/// One group's promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promoted {
    /// The learned policy, in its current mode.
    pub policy: crate::policy::PicketPolicy,
    pub mode: Mode,
    /// When the group entered this mode (Unix ms).
    pub since_ms: u64,
    /// Its last violation (Unix ms; 0: none).
    pub last_violation_ms: u64,
}

/// A mode change, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeChange {
    pub at_unix_ms: u64,
    pub group: String,
    pub from: Mode,
    pub to: Mode,
    pub why: String,
}

pub struct Promotion {
    /// Discover → monitor after this long without anything new learned.
    pub quiet: Option<Duration>,
    /// Monitor → protect after this long without a violation.
    pub clean: Option<Duration>,
    dir: PathBuf,
    pub groups: BTreeMap<String, Promoted>,
}

impl Promotion {
    /// Starts from the promotions kept in `dir` (none: a fresh start).
    pub fn load(dir: &Path, quiet: Option<Duration>, clean: Option<Duration>) -> Self {
        let groups = std::fs::read_to_string(dir.join(STATE_FILE))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Self { quiet, clean, dir: dir.to_path_buf(), groups }
    }

    /// A violation in `group` (a policy alert on one of its containers): its clean period starts
    /// again.
    pub fn violation(&mut self, group: &str, at_ms: u64) {
        if let Some(promoted) = self.groups.get_mut(group) {
            promoted.last_violation_ms = promoted.last_violation_ms.max(at_ms);
        }
    }

    /// The promotions due now. `policed` are the groups another policy (a file, the cluster, an
    /// apply) already names: they are never promoted here.
    pub fn tick(&mut self, baselines: &Baselines, policed: &HashSet<String>, now_ms: u64) -> Vec<ModeChange> {
        let mut changes = Vec::new();
        if let Some(quiet) = self.quiet {
            let quiet_ms = u64::try_from(quiet.as_millis()).unwrap_or(u64::MAX);
            for (key, baseline) in &baselines.groups {
                if self.groups.contains_key(key) || policed.contains(key) || baseline.processes.is_empty() {
                    continue;
                }
                if now_ms.saturating_sub(baseline.last_change_ms) < quiet_ms {
                    continue;
                }
                let Ok(policy) = crate::learn::to_policy::policy_of(baseline, Mode::Monitor) else { continue };
                self.groups.insert(
                    key.clone(),
                    Promoted { policy, mode: Mode::Monitor, since_ms: now_ms, last_violation_ms: 0 },
                );
                changes.push(ModeChange {
                    at_unix_ms: now_ms,
                    group: key.clone(),
                    from: Mode::Discover,
                    to: Mode::Monitor,
                    why: format!("nothing new learned for {}", human(quiet)),
                });
            }
        }
        if let Some(clean) = self.clean {
            let clean_ms = u64::try_from(clean.as_millis()).unwrap_or(u64::MAX);
            for (key, promoted) in self.groups.iter_mut() {
                let clean_since = promoted.since_ms.max(promoted.last_violation_ms);
                if promoted.mode != Mode::Monitor || now_ms.saturating_sub(clean_since) < clean_ms {
                    continue;
                }
                promoted.policy.spec.mode = Mode::Protect;
                promoted.mode = Mode::Protect;
                promoted.since_ms = now_ms;
                changes.push(ModeChange {
                    at_unix_ms: now_ms,
                    group: key.clone(),
                    from: Mode::Monitor,
                    to: Mode::Protect,
                    why: format!("no violation for {}", human(clean)),
                });
            }
        }
        changes
    }

    /// The promoted groups' policies, as PicketPolicy documents.
    pub fn yaml(&self) -> String {
        self.groups
            .values()
            .filter_map(|p| serde_saphyr::to_string(&p.policy).ok())
            .map(|yaml| format!("---\n{yaml}"))
            .collect()
    }

    /// The promoted groups' policies as the agent's rules.
    pub fn policy_file(&self) -> Result<PolicyFile, super::policy::PolicyFileError> {
        let text = self.yaml();
        if text.is_empty() {
            return Ok(PolicyFile { containers: Vec::new() });
        }
        PolicyFile::parse(&self.dir.join("promoted-policy.yaml"), &text)
    }

    /// Keeps the promotions and appends `changes` to the log.
    pub fn save(&self, changes: &[ModeChange]) -> std::io::Result<()> {
        use std::io::Write as _;
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(STATE_FILE);
        let temporary = path.with_extension(format!("json.new.{}", std::process::id()));
        std::fs::write(&temporary, serde_json::to_vec(&self.groups).map_err(std::io::Error::other)?)?;
        std::fs::rename(&temporary, &path)?;
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(LOG_FILE))?;
        for change in changes {
            writeln!(log, "{}", serde_json::to_string(change).map_err(std::io::Error::other)?)?;
        }
        Ok(())
    }
}

fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::{GroupRef, Observation, Observed};

    #[test]
    fn quiet_groups_go_to_monitor_then_clean_ones_to_protect_and_violations_wait() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut baselines = Baselines::default();
        for (image, at) in [("web:1", 1_000), ("busy:1", 9_000), ("owned:1", 1_000)] {
            baselines.observe(&Observation {
                group: GroupRef::local(image),
                at_ms: at,
                what: Observed::Exec {
                    exe: "/bin/busybox".into(),
                    path: "/bin/busybox".into(),
                    parent: "".into(),
                    uid: 0,
                },
            });
        }
        let policed: HashSet<String> = ["local/owned:1".to_string()].into();
        let mut promotion = Promotion::load(dir.path(), Some(Duration::from_secs(5)), Some(Duration::from_secs(10)));
        let changes = promotion.tick(&baselines, &policed, 7_000);
        assert_eq!(
            changes.iter().map(|c| (c.group.as_str(), c.to)).collect::<Vec<_>>(),
            [("local/web:1", Mode::Monitor)]
        );
        assert!(changes[0].why.contains("5s"));
        let rules = promotion.policy_file().expect("held");
        assert_eq!(rules.containers.len(), 1);
        assert_eq!(rules.containers[0].image.as_deref(), Some("web:1"));
        promotion.save(&changes).expect("saved");

        // A violation at 12 s: the clean period counts from there.
        promotion.violation("local/web:1", 12_000);
        assert!(promotion.tick(&baselines, &policed, 17_500).iter().all(|c| c.to != Mode::Protect));
        let changes = promotion.tick(&baselines, &policed, 22_000);
        assert!(changes.iter().any(|c| c.group == "local/web:1" && c.to == Mode::Protect), "{changes:?}");
        let rules = promotion.policy_file().expect("held");
        let web = rules.containers.iter().find(|c| c.image.as_deref() == Some("web:1")).expect("web's rule");
        assert_eq!(web.mode, crate::agent::enforce::Mode::Protect);
        let busy = rules.containers.iter().find(|c| c.image.as_deref() == Some("busy:1")).expect("busy's rule");
        assert_eq!(
            busy.mode,
            crate::agent::enforce::Mode::Monitor,
            "quiet since 9 s: monitor at 17.5 s, not clean 10 s yet"
        );
        promotion.save(&changes).expect("saved");

        let again = Promotion::load(dir.path(), None, None);
        assert_eq!(again.groups["local/web:1"].mode, Mode::Protect, "kept across restarts");
        let log = std::fs::read_to_string(dir.path().join(LOG_FILE)).expect("log");
        assert!(log.lines().count() >= 2, "{log}");
    }
}

//! What the on-call engineer decided about a fold of alerts: acknowledged (seen; it opens again
//! when it fires after), snoozed until a time, or a false positive (a rule exception was
//! written). Kept in the store by fold key, so the console and `picket alerts` agree, and undone
//! by `reopen`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError, TreeName, Typed};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum TriageRecord {
    Acknowledged {
        at_ms: u64,
        by: String,
    },
    Snoozed {
        at_ms: u64,
        until_ms: u64,
        by: String,
    },
    /// A rule exception was written to `file` so the rule no longer fires for this container's
    /// image and program.
    FalsePositive {
        at_ms: u64,
        by: String,
        file: String,
    },
}

impl TriageRecord {
    pub fn at_ms(&self) -> u64 {
        match self {
            Self::Acknowledged { at_ms, .. } | Self::Snoozed { at_ms, .. } | Self::FalsePositive { at_ms, .. } => {
                *at_ms
            }
        }
    }
}

/// Every triage record, and the time snoozes are judged at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triage {
    records: HashMap<String, TriageRecord>,
    now_ms: u64,
}

impl Triage {
    pub fn new(records: HashMap<String, TriageRecord>, now_ms: u64) -> Self {
        Self { records, now_ms }
    }

    pub fn get(&self, key: &str) -> Option<&TriageRecord> {
        self.records.get(key)
    }

    pub fn records(&self) -> impl Iterator<Item = (&String, &TriageRecord)> {
        self.records.iter()
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn set_now(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }
}

/// The store's triage tree.
pub struct TriageLog {
    tree: Typed<TriageRecord>,
}

impl TriageLog {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self { tree: store.tree(TreeName::AlertTriage)? })
    }

    /// Every record, judged at `now_ms`.
    pub fn load(&self, now_ms: u64) -> Result<Triage, StoreError> {
        let mut records = HashMap::new();
        for entry in self.tree.iter() {
            let (key, record) = entry?;
            records.insert(key, record);
        }
        Ok(Triage::new(records, now_ms))
    }

    pub fn set(&self, key: &str, record: &TriageRecord) -> Result<(), StoreError> {
        self.tree.insert(key, record)?;
        self.tree.flush()
    }

    /// Undoes what was decided about the fold; whether there was anything.
    pub fn reopen(&self, key: &str) -> Result<bool, StoreError> {
        let had = self.tree.get(key)?.is_some();
        if had {
            self.tree.apply(vec![(key.to_string(), None)])?;
            self.tree.flush()?;
        }
        Ok(had)
    }
}

/// Who is deciding: `$USER`, else `unknown`.
pub fn current_user() -> String {
    std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "unknown".into())
}

/// `30m`, `2h`, `1d`, `90s` as milliseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("'{text}' is not a duration (like 30m, 2h, 1d)"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("'{text}': the unit is s, m, h or d (like 30m, 2h, 1d)")),
    };
    number
        .checked_mul(unit_ms)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("'{text}' is not a duration picket can snooze for"))
}

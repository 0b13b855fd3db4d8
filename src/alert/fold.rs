//! Folding alerts for people: every alert of one rule, in one container, from one program is one
//! line with a count, its first and last time and its triage state. What the Alerts pane shows
//! and `picket alerts list` prints. Pure: alerts and triage records in, folds out; [`Folder`]
//! takes alerts as they come, so a flood costs one map lookup per alert.

use std::collections::HashMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::StoredAlert;
use super::triage::{Triage, TriageRecord};
use crate::agent::alert::Action;
use crate::model::Severity;

/// One rule, one container (or host), one program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fold {
    /// A short stable name for the fold (`picket alerts ack ID`): the first 10 hex digits of a
    /// hash of its rule, container and program.
    pub id: String,
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    /// `namespace/pod/container`, the engine's container name, or `host`.
    pub container: String,
    pub namespace: Option<String>,
    pub node: String,
    pub image: Option<String>,
    /// The program's path (or name).
    pub process: String,
    /// Events it stands for (repeats folded by the agent count too).
    pub count: u64,
    pub first_ms: u64,
    pub last_ms: u64,
    /// The newest alert's id.
    pub newest: String,
    /// Whether any alert of the fold was refused or killed (not only reported).
    pub blocked: bool,
    pub state: State,
    /// Events since the fold was acknowledged (an acknowledged fold that fires again is open).
    pub since_ack: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Open,
    Acknowledged,
    Snoozed,
    FalsePositive,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acked",
            Self::Snoozed => "snoozed",
            Self::FalsePositive => "false-positive",
        }
    }
}

/// What a fold is keyed by: its rule, container and program.
pub fn fold_key(alert: &StoredAlert) -> String {
    format!("{}\0{}\0{}", alert.alert.rule, container_label(alert), process_of(alert))
}

/// The short id of a fold key.
pub fn fold_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

pub fn container_label(alert: &StoredAlert) -> String {
    crate::agent::attribution::label(alert.container.as_ref())
}

pub fn process_of(alert: &StoredAlert) -> String {
    let event = &alert.alert.event;
    if event.exe.is_empty() { event.comm.clone() } else { event.exe.clone() }
}

/// Which folds to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// At least this severe.
    pub min_severity: Option<Severity>,
    /// The rule's id contains this.
    pub rule: Option<String>,
    pub namespace: Option<String>,
    pub node: Option<String>,
    /// Also acknowledged (with nothing new), snoozed and false-positive folds.
    pub all: bool,
    /// Any of rule, title, container, process, node contains this (the pane's `/`).
    pub text: Option<String>,
}

impl Filter {
    pub fn admits(&self, fold: &Fold) -> bool {
        let severity = self.min_severity.is_none_or(|min| fold.severity >= min);
        let rule = self.rule.as_deref().is_none_or(|r| fold.rule.contains(r));
        let namespace = self.namespace.as_deref().is_none_or(|n| fold.namespace.as_deref() == Some(n));
        let node = self.node.as_deref().is_none_or(|n| fold.node == n);
        let state = self.all || fold.state == State::Open;
        let text = self.text.as_deref().is_none_or(|t| {
            let t = t.to_lowercase();
            [&fold.rule, &fold.title, &fold.container, &fold.process, &fold.node, &fold.id]
                .iter()
                .any(|field| field.to_lowercase().contains(&t))
        });
        severity && rule && namespace && node && state && text
    }
}

/// Folds alerts as they come.
#[derive(Debug, Default, Clone)]
pub struct Folder {
    folds: Vec<Fold>,
    index: HashMap<String, usize>,
    triage: Triage,
}

impl Folder {
    pub fn new(triage: Triage) -> Self {
        Self { triage, ..Self::default() }
    }

    /// Takes one alert (in any order; the newest decides the fold's last time and severity).
    pub fn add(&mut self, alert: &StoredAlert) {
        let key = fold_key(alert);
        let at = alert.alert.at_unix_ms;
        let count = alert.alert.count.max(1);
        let blocked = matches!(alert.alert.action, Action::Denied | Action::Killed);
        let i = match self.index.get(&key) {
            Some(&i) => {
                let fold = &mut self.folds[i];
                fold.count += count;
                fold.first_ms = fold.first_ms.min(at);
                fold.blocked |= blocked;
                if at >= fold.last_ms {
                    fold.last_ms = at;
                    fold.newest.clone_from(&alert.alert.id);
                    fold.severity = alert.alert.severity;
                    fold.title.clone_from(&alert.alert.title);
                }
                i
            }
            None => {
                let container = alert.container.as_ref();
                self.folds.push(Fold {
                    id: fold_id(&key),
                    rule: alert.alert.rule.clone(),
                    title: alert.alert.title.clone(),
                    severity: alert.alert.severity,
                    container: container_label(alert),
                    namespace: container.and_then(|c| c.pod_namespace.clone()),
                    node: alert.node.clone(),
                    image: container.and_then(|c| c.image.clone()),
                    process: process_of(alert),
                    count,
                    first_ms: at,
                    last_ms: at,
                    newest: alert.alert.id.clone(),
                    blocked,
                    state: State::Open,
                    since_ack: 0,
                });
                self.index.insert(key.clone(), self.folds.len() - 1);
                self.folds.len() - 1
            }
        };
        let record = self.triage.get(&key);
        if let Some(TriageRecord::Acknowledged { at_ms, .. }) = record
            && at > *at_ms
        {
            self.folds[i].since_ack += count;
        }
        self.folds[i].state = state_of(record, &self.folds[i], self.triage.now_ms());
    }

    /// Takes new triage records (after a change). Counts since an acknowledgement made now
    /// start from zero.
    pub fn set_triage(&mut self, triage: Triage) {
        self.triage = triage;
        for (key, &i) in &self.index {
            let record = self.triage.get(key);
            let fold = &mut self.folds[i];
            if let Some(TriageRecord::Acknowledged { at_ms, .. }) = record
                && fold.last_ms <= *at_ms
            {
                fold.since_ack = 0;
            }
            fold.state = state_of(record, fold, self.triage.now_ms());
        }
    }

    /// States again at `now_ms` (snoozes run out).
    pub fn tick(&mut self, now_ms: u64) {
        self.triage.set_now(now_ms);
        for (key, &i) in &self.index {
            self.folds[i].state = state_of(self.triage.get(key), &self.folds[i], now_ms);
        }
    }

    /// Every fold, the most recently fired first.
    pub fn folds(&self) -> Vec<&Fold> {
        let mut folds: Vec<&Fold> = self.folds.iter().collect();
        folds.sort_by(|a, b| b.last_ms.cmp(&a.last_ms).then_with(|| a.id.cmp(&b.id)));
        folds
    }

    pub fn len(&self) -> usize {
        self.folds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.folds.is_empty()
    }

    /// The key of the fold with this id.
    pub fn key_of(&self, id: &str) -> Option<&str> {
        self.index.iter().find(|(_, i)| self.folds[**i].id == id).map(|(k, _)| k.as_str())
    }
}

fn state_of(record: Option<&TriageRecord>, fold: &Fold, now_ms: u64) -> State {
    match record {
        Some(TriageRecord::Acknowledged { at_ms, .. }) if fold.last_ms <= *at_ms => State::Acknowledged,
        Some(TriageRecord::Snoozed { until_ms, .. }) if *until_ms > now_ms => State::Snoozed,
        Some(TriageRecord::FalsePositive { .. }) => State::FalsePositive,
        _ => State::Open,
    }
}

/// Folds `alerts` (any order) under `triage`: the folds `filter` admits, the most recently
/// fired first.
pub fn fold(alerts: &[StoredAlert], triage: Triage, filter: &Filter) -> Vec<Fold> {
    let mut folder = Folder::new(triage);
    for alert in alerts {
        folder.add(alert);
    }
    folder.folds().into_iter().filter(|f| filter.admits(f)).cloned().collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::agent::alert::{Alert, Trigger};
    use crate::agent::attribution::{ContainerRef, Runtime};
    use crate::agent::enforce::Mode;

    pub(crate) fn stored(rule: &str, container: Option<&str>, exe: &str, at: u64, action: Action) -> StoredAlert {
        StoredAlert {
            node: "node-a".into(),
            container: container.map(|name| ContainerRef {
                runtime: Runtime::Podman,
                id: format!("{name:0<64}"),
                pod_uid: None,
                name: Some(name.into()),
                image: Some(format!("registry.local/{name}:1")),
                pod_namespace: None,
                pod_name: None,
                pod_owner: None,
            }),
            alert: Alert {
                id: format!("node-a-1-{at}"),
                at_unix_ms: at,
                rule: rule.into(),
                title: format!("{rule} title"),
                severity: if rule == "miner" { Severity::Critical } else { Severity::Medium },
                technique: String::new(),
                why: "why".into(),
                mode: Mode::Monitor,
                action,
                policy: String::new(),
                event: Trigger { kind: "exec".into(), exe: exe.into(), comm: "x".into(), ..Trigger::default() },
                ancestry: Vec::new(),
                count: 1,
            },
        }
    }

    fn ack(key: &str, at_ms: u64) -> (String, TriageRecord) {
        (key.to_string(), TriageRecord::Acknowledged { at_ms, by: "me".into() })
    }

    #[test]
    fn alerts_fold_by_rule_container_and_program_newest_first() {
        let alerts = vec![
            stored("shell", Some("web"), "/bin/sh", 10, Action::Alerted),
            stored("shell", Some("web"), "/bin/sh", 30, Action::Alerted),
            stored("shell", Some("web"), "/bin/bash", 20, Action::Alerted),
            stored("shell", Some("db"), "/bin/sh", 5, Action::Alerted),
            stored("miner", None, "/tmp/xmrig", 25, Action::Killed),
        ];
        let folds = fold(&alerts, Triage::default(), &Filter::default());
        let seen: Vec<(&str, &str, &str, u64)> =
            folds.iter().map(|f| (f.rule.as_str(), f.container.as_str(), f.process.as_str(), f.count)).collect();
        assert_eq!(
            seen,
            [
                ("shell", "web", "/bin/sh", 2),
                ("miner", "host", "/tmp/xmrig", 1),
                ("shell", "web", "/bin/bash", 1),
                ("shell", "db", "/bin/sh", 1)
            ]
        );
        assert_eq!((folds[0].first_ms, folds[0].last_ms, folds[0].newest.as_str()), (10, 30, "node-a-1-30"));
        assert!(folds[1].blocked && !folds[0].blocked);
        // The same alerts in another order fold the same.
        let mut reversed = alerts.clone();
        reversed.reverse();
        assert_eq!(fold(&reversed, Triage::default(), &Filter::default()), folds);
        // Filters.
        let critical = Filter { min_severity: Some(Severity::High), ..Filter::default() };
        assert_eq!(fold(&alerts, Triage::default(), &critical).len(), 1);
        let text = Filter { text: Some("BASH".into()), ..Filter::default() };
        assert_eq!(fold(&alerts, Triage::default(), &text)[0].process, "/bin/bash");
    }

    #[test]
    fn triage_hides_what_was_decided_until_it_fires_again_or_expires() {
        let alerts = vec![
            stored("shell", Some("web"), "/bin/sh", 10, Action::Alerted),
            stored("miner", None, "/tmp/x", 20, Action::Killed),
        ];
        let shell = fold_key(&alerts[0]);
        let miner = fold_key(&alerts[1]);
        let records = HashMap::from([
            ack(&shell, 15),
            (miner.clone(), TriageRecord::Snoozed { at_ms: 20, until_ms: 100, by: "me".into() }),
        ]);
        let open = fold(&alerts, Triage::new(records.clone(), 50), &Filter::default());
        assert!(open.is_empty(), "{open:?}");
        let all = fold(&alerts, Triage::new(records.clone(), 50), &Filter { all: true, ..Filter::default() });
        let states: Vec<State> = all.iter().map(|f| f.state).collect();
        assert_eq!(states, [State::Snoozed, State::Acknowledged]);
        // The snooze runs out; the acknowledged fold fires again and opens, counting what is new.
        let mut later = alerts.clone();
        later.push(stored("shell", Some("web"), "/bin/sh", 120, Action::Alerted));
        later.push(stored("shell", Some("web"), "/bin/sh", 130, Action::Alerted));
        let open = fold(&later, Triage::new(records.clone(), 200), &Filter::default());
        let seen: Vec<(&str, State, u64, u64)> =
            open.iter().map(|f| (f.rule.as_str(), f.state, f.count, f.since_ack)).collect();
        assert_eq!(seen, [("shell", State::Open, 3, 2), ("miner", State::Open, 1, 0)]);
        // Live: the folder takes alerts one by one and triage changes alike.
        let mut folder = Folder::new(Triage::new(records, 50));
        for alert in &alerts {
            folder.add(alert);
        }
        assert!(folder.folds().iter().all(|f| f.state != State::Open));
        folder.add(&stored("shell", Some("web"), "/bin/sh", 60, Action::Alerted));
        let shell_fold = folder.folds()[0].clone();
        assert_eq!((shell_fold.state, shell_fold.since_ack), (State::Open, 1));
        folder.set_triage(Triage::new(HashMap::from([ack(&shell, 61)]), 61));
        let shell_fold = folder.folds()[0].clone();
        assert_eq!((shell_fold.state, shell_fold.since_ack), (State::Acknowledged, 0));
        assert_eq!(folder.folds()[1].state, State::Open, "the miner's snooze was taken back");
        assert_eq!(folder.key_of(&shell_fold.id), Some(shell.as_str()));
    }
}

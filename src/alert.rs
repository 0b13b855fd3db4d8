//! Alerts kept: every alert the console receives from an agent goes into the store's `alerts`
//! tree, newest last, bounded by count and age, so what fired while nobody looked is still there.
//! `picket alerts` and the Alerts pane read the same log, folded ([`fold`]) and triaged
//! ([`triage`], [`exception`]) the same way.

pub mod actions;
pub mod bundle;
pub mod capture;
pub mod detail;
pub mod exception;
pub mod fold;
pub mod outbox;
pub mod respond;
pub mod sinks;
pub mod triage;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::agent::alert::Alert;
use crate::agent::attribution::ContainerRef;
use crate::agent::wire::WireEvent;
use crate::store::{Store, StoreError, TreeName, Typed};

/// Alerts kept at most; the oldest go first.
pub const MAX_ALERTS: usize = 100_000;
/// Alerts older than this go.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The wall clock, Unix milliseconds.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What the console and `picket respond run` both do with an agent's lines: keep the alerts
/// among them, then queue what the response rules say for those that were new. Returns (kept,
/// notifications queued).
pub fn keep_and_respond(
    log: &AlertLog,
    responder: Option<&outbox::Responder>,
    events: &[WireEvent],
) -> Result<(usize, usize), String> {
    let (kept, new) = log.record_new(events, now_unix_ms()).map_err(|e| format!("keeping alerts: {e}"))?;
    let queued = match responder {
        Some(responder) if !new.is_empty() => responder.respond(&new)?,
        _ => 0,
    };
    Ok((kept, queued))
}

/// The open folds of the kept alerts (what risk counts).
pub fn open_folds(store: &Store) -> Result<Vec<fold::Fold>, StoreError> {
    let alerts = AlertLog::open(store)?.newest(detail::SEARCHED)?;
    let triage = triage::TriageLog::open(store)?.load(now_unix_ms())?;
    Ok(fold::fold(&alerts, triage, &fold::Filter::default()))
}

/// Unix milliseconds as `2026-12-06 10:00:00` (UTC).
pub fn time(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(0))
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// One alert as kept: the agent's alert with the node and container it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAlert {
    pub node: String,
    pub container: Option<ContainerRef>,
    #[serde(flatten)]
    pub alert: Alert,
}

/// A re-match's news as `vulnerability` events for the response rules: each new advisory ×
/// each running container (this machine's engines) and pod (the cluster's) whose image it now
/// affects, rule `cve/ID`, the advisory's severity (unknown when the match said none).
pub fn vulnerability_events(report: &crate::scan::rematch::RematchReport, node: &str, now_ms: u64) -> Vec<StoredAlert> {
    use crate::agent::alert::{Action, Alert, Trigger};
    let mut events = Vec::new();
    for (id, images) in &report.new_by_id {
        let severity = report.severity_by_id.get(id).copied().unwrap_or_default();
        let running = report.running_by_id.get(id).into_iter().flatten().map(|c| ("container", c));
        let pods = report.workloads_by_id.get(id).into_iter().flatten().map(|p| ("pod", p));
        for (what, subject) in running.chain(pods) {
            events.push(StoredAlert {
                node: node.to_string(),
                container: None,
                alert: Alert {
                    id: format!("cve-{now_ms}-{}", events.len()),
                    at_unix_ms: now_ms,
                    rule: format!("cve/{id}"),
                    title: format!("New vulnerability {id} in the image of a running {what}"),
                    severity,
                    technique: String::new(),
                    why: format!(
                        "{id} appeared in the vulnerability database and affects {}: {subject} runs it",
                        images.join(", ")
                    ),
                    mode: crate::agent::enforce::Mode::Monitor,
                    action: Action::Alerted,
                    policy: report.databases.join(", "),
                    event: Trigger { kind: "vulnerability".into(), path: subject.clone(), ..Trigger::default() },
                    ancestry: Vec::new(),
                    count: 1,
                },
            });
        }
    }
    events
}

impl StoredAlert {
    /// The alert a wire line carries, as kept (other lines are not alerts).
    pub fn from_wire(event: &WireEvent) -> Option<Self> {
        match event {
            WireEvent::Alert { node, alert, container, .. } => {
                Some(Self { node: node.clone(), container: container.clone(), alert: (**alert).clone() })
            }
            _ => None,
        }
    }

    /// Time first, so the tree's order is the alerts' order; the id keeps two alerts of one
    /// millisecond apart, and the same alert seen twice (an agent's replay) in one record.
    fn key(&self) -> String {
        let id = if self.alert.id.is_empty() {
            format!("{}-{}-{}", self.node, self.alert.rule, self.alert.event.timestamp_ns)
        } else {
            self.alert.id.clone()
        };
        format!("{:016x}-{id}", self.alert.at_unix_ms)
    }
}

pub struct AlertLog {
    tree: Typed<StoredAlert>,
    max: usize,
    max_age: Duration,
}

impl AlertLog {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self { tree: store.tree(TreeName::Alerts)?, max: MAX_ALERTS, max_age: MAX_AGE })
    }

    /// With other bounds (tests).
    pub fn with_bounds(store: &Store, max: usize, max_age: Duration) -> Result<Self, StoreError> {
        Ok(Self { max, max_age, ..Self::open(store)? })
    }

    /// Keeps the alerts among `events` (other lines are not alerts) and drops what is past the
    /// bounds; returns how many were new.
    pub fn record(&self, events: &[WireEvent], now_unix_ms: u64) -> Result<usize, StoreError> {
        self.record_new(events, now_unix_ms).map(|(added, _)| added)
    }

    /// Like [`AlertLog::record`], also giving the alerts that were new (a replayed alert is not
    /// responded to twice).
    pub fn record_new(&self, events: &[WireEvent], now_unix_ms: u64) -> Result<(usize, Vec<StoredAlert>), StoreError> {
        let mut changes = std::collections::BTreeMap::new();
        for event in events {
            if let Some(stored) = StoredAlert::from_wire(event) {
                let key = stored.key();
                if !changes.contains_key(&key) && self.tree.get(&key)?.is_none() {
                    changes.insert(key, Some(stored));
                }
            }
        }
        let changes: Vec<_> = changes.into_iter().collect();
        let new: Vec<StoredAlert> = changes.iter().filter_map(|(_, a)| a.clone()).collect();
        let added = changes.len();
        if added > 0 {
            self.tree.apply(changes)?;
            self.prune(now_unix_ms)?;
        }
        Ok((added, new))
    }

    /// The newest `limit` alerts, newest first.
    pub fn newest(&self, limit: usize) -> Result<Vec<StoredAlert>, StoreError> {
        Ok(self.tree.last(limit)?.into_iter().map(|(_, alert)| alert).collect())
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Drops alerts older than the age bound, then the oldest beyond the count bound.
    fn prune(&self, now_unix_ms: u64) -> Result<(), StoreError> {
        let max_age_ms = u64::try_from(self.max_age.as_millis()).unwrap_or(u64::MAX);
        let cutoff = format!("{:016x}", now_unix_ms.saturating_sub(max_age_ms));
        let over = self.tree.len().saturating_sub(self.max);
        let mut gone = Vec::new();
        for (index, key) in self.tree.keys().enumerate() {
            let key = key?;
            if index >= over && key.as_str() >= cutoff.as_str() {
                break;
            }
            gone.push((key, None));
        }
        if !gone.is_empty() {
            self.tree.apply(gone)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::alert::{Action, Trigger};
    use crate::agent::enforce::Mode;
    use crate::model::Severity;

    fn alert(id: &str, at_unix_ms: u64) -> WireEvent {
        WireEvent::alert(
            "node-a",
            Alert {
                id: id.into(),
                at_unix_ms,
                rule: "crypto-pool-port".into(),
                title: "Connection to a port mining pools use".into(),
                severity: Severity::High,
                technique: "T1496".into(),
                why: "pools".into(),
                mode: Mode::Protect,
                action: Action::Denied,
                policy: String::new(),
                event: Trigger { kind: "connect".into(), pid: 7, remote: "10.0.0.1:3333".into(), ..Trigger::default() },
                ancestry: Vec::new(),
                count: 1,
            },
            None,
        )
    }

    #[test]
    fn alerts_are_kept_in_order_once_each_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let day = 24 * 3600 * 1000;
        let log = AlertLog::with_bounds(&store, 3, Duration::from_secs(7 * 24 * 3600)).unwrap();
        let now = 100 * day;
        let stats = WireEvent::stats("node-a", crate::agent::wire::AgentStats::default());
        let added = log.record(&[alert("a", now - 2), stats, alert("b", now - 1), alert("a", now - 2)], now).unwrap();
        assert_eq!(added, 2, "a replayed alert is kept once; other lines are not alerts");
        assert_eq!(log.record(&[alert("b", now - 1)], now).unwrap(), 0);
        let ids = |log: &AlertLog| log.newest(10).unwrap().into_iter().map(|a| a.alert.id).collect::<Vec<_>>();
        assert_eq!(ids(&log), ["b", "a"], "newest first");
        // Past the count bound: the oldest go.
        log.record(&[alert("c", now), alert("d", now + 1)], now).unwrap();
        assert_eq!(ids(&log), ["d", "c", "b"]);
        // Past the age bound: gone whatever the count.
        log.record(&[alert("e", now + 8 * day)], now + 8 * day).unwrap();
        assert_eq!(ids(&log), ["e"]);
        let kept = &log.newest(1).unwrap()[0];
        assert_eq!((kept.node.as_str(), kept.alert.event.remote.as_str()), ("node-a", "10.0.0.1:3333"));
    }
}

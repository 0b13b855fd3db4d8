//! Notifications waiting for their sinks, on disk (the store's `outbox` tree), so a sink outage
//! or a restart loses nothing and a flood does not grow memory. One worker per sink delivers in
//! order, in batches, retrying with backoff while the sink is down; a notification the sink
//! refuses outright (a 4xx) is dropped and counted, so it cannot hold the rest. Each sink's
//! state (queued, delivered, failing since, last error) is there for the console and
//! `picket respond status`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::respond::{Action, Category, ResponseConfig};
use super::sinks::{DeliveryError, Notification, SinkConfig, deliver};
use super::{StoredAlert, now_unix_ms};
use crate::store::{Store, StoreError, TreeName, Typed};

/// Notifications kept per sink at most; past this the oldest go (counted as dropped).
pub const MAX_QUEUED: usize = 100_000;
/// The longest wait between two tries of a sink that is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinkStatus {
    pub name: String,
    pub kind: String,
    pub queued: usize,
    pub delivered: u64,
    /// Refused by the sink (4xx) and dropped.
    pub rejected: u64,
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// Unix ms of the first failure of the current outage (None: delivering).
    pub failing_since_ms: Option<u64>,
    pub last_error: Option<String>,
    pub last_delivered_ms: Option<u64>,
}

pub struct Outbox {
    store: Arc<Store>,
    tree: Typed<Notification>,
    seq: AtomicU64,
    status: Mutex<BTreeMap<String, SinkStatus>>,
    wake: tokio::sync::Notify,
    max_queued: usize,
}

impl Outbox {
    pub fn open(store: Arc<Store>, config: &ResponseConfig) -> Result<Arc<Self>, StoreError> {
        Self::with_bound(store, config, MAX_QUEUED)
    }

    pub fn with_bound(store: Arc<Store>, config: &ResponseConfig, max_queued: usize) -> Result<Arc<Self>, StoreError> {
        let tree: Typed<Notification> = store.tree(TreeName::Outbox)?;
        let mut status = BTreeMap::new();
        let mut last_seq = 0;
        for sink in &config.sinks {
            let queued = tree.count_prefix(&prefix(&sink.name))?;
            if let Some((key, _)) = tree.last_with_prefix(&prefix(&sink.name))? {
                last_seq = last_seq.max(seq_of(&key));
            }
            status.insert(
                sink.name.clone(),
                SinkStatus {
                    name: sink.name.clone(),
                    kind: sink.kind.as_str().into(),
                    queued,
                    ..SinkStatus::default()
                },
            );
        }
        Ok(Arc::new(Self {
            store,
            tree,
            seq: AtomicU64::new(last_seq + 1),
            status: Mutex::new(status),
            wake: tokio::sync::Notify::new(),
            max_queued,
        }))
    }

    /// Queues a notification per (matching rule, notify action) whose sink takes the alert's
    /// severity; returns how many.
    pub fn respond(&self, config: &ResponseConfig, alerts: &[StoredAlert]) -> Result<usize, StoreError> {
        let mut changes = Vec::new();
        let mut per_sink: BTreeMap<String, usize> = BTreeMap::new();
        for alert in alerts {
            for rule in config.matching(alert) {
                for action in &rule.rule.actions {
                    let Action::Notify(sink_name) = action else { continue };
                    let Some(sink) = config.sink(sink_name) else { continue };
                    if !sink.takes(alert.alert.severity) {
                        continue;
                    }
                    let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                    let notification = Notification {
                        rule: rule.rule.name.clone(),
                        category: Category::of(alert).as_str().into(),
                        alert: alert.clone(),
                    };
                    changes.push((key(sink_name, seq), Some(notification)));
                    *per_sink.entry(sink_name.clone()).or_default() += 1;
                }
            }
        }
        let added = changes.len();
        if added == 0 {
            return Ok(0);
        }
        self.tree.apply(changes)?;
        // Past the bound, the oldest go.
        for (sink, count) in per_sink {
            let queued = self.with_status(&sink, |s| {
                s.queued += count;
                s.queued
            });
            if queued > self.max_queued {
                let over = queued - self.max_queued;
                let oldest: Vec<(String, Option<Notification>)> =
                    self.tree.head_with_prefix(&prefix(&sink), over)?.into_iter().map(|(k, _)| (k, None)).collect();
                let gone = oldest.len();
                self.tree.apply(oldest)?;
                self.with_status(&sink, |s| {
                    s.queued -= gone;
                    s.dropped += gone as u64;
                });
            }
        }
        self.store.flush()?;
        self.wake.notify_waiters();
        Ok(added)
    }

    fn with_status<T>(&self, sink: &str, f: impl FnOnce(&mut SinkStatus) -> T) -> T {
        let mut status = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(status.entry(sink.to_string()).or_default())
    }

    /// Every sink's state.
    pub fn status(&self) -> Vec<SinkStatus> {
        self.status.lock().map(|s| s.values().cloned().collect()).unwrap_or_default()
    }

    /// Delivers `sink`'s queue until `stop` is set: the oldest first, in batches, waiting for
    /// more when it is empty and backing off while the sink fails.
    pub async fn run_sink(
        self: Arc<Self>,
        client: reqwest::Client,
        sink: SinkConfig,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let mut backoff = Duration::from_millis(500);
        while !stop.load(Ordering::Relaxed) {
            let batch = match self.tree.head_with_prefix(&prefix(&sink.name), sink.batch()) {
                Ok(batch) => batch,
                Err(e) => {
                    self.with_status(&sink.name, |s| s.last_error = Some(format!("reading the queue: {e}")));
                    tokio::time::sleep(MAX_BACKOFF).await;
                    continue;
                }
            };
            if batch.is_empty() {
                // New notifications wake the worker; the timeout covers a wake-up missed
                // between the read and the wait.
                let _ = tokio::time::timeout(Duration::from_millis(500), self.wake.notified()).await;
                continue;
            }
            let (keys, notifications): (Vec<String>, Vec<Notification>) = batch.into_iter().unzip();
            let outcome = deliver(&client, &sink, &notifications).await;
            let done = matches!(outcome, Ok(()) | Err(DeliveryError::Rejected(_)));
            if done {
                let removed = keys.iter().map(|k| (k.clone(), None)).collect();
                if let Err(e) = self.tree.apply(removed).and_then(|()| self.store.flush()) {
                    self.with_status(&sink.name, |s| s.last_error = Some(format!("removing delivered: {e}")));
                    tokio::time::sleep(MAX_BACKOFF).await;
                    continue;
                }
            }
            let now = now_unix_ms();
            let count = keys.len();
            self.with_status(&sink.name, |s| {
                match &outcome {
                    Ok(()) => {
                        s.delivered += count as u64;
                        s.failing_since_ms = None;
                        s.last_delivered_ms = Some(now);
                    }
                    Err(DeliveryError::Rejected(e)) => {
                        s.rejected += count as u64;
                        s.last_error = Some(e.clone());
                    }
                    Err(DeliveryError::Retry(e)) => {
                        s.failing_since_ms.get_or_insert(now);
                        s.last_error = Some(e.clone());
                    }
                }
                if done {
                    s.queued = s.queued.saturating_sub(count);
                }
            });
            if done {
                backoff = Duration::from_millis(500);
            } else {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = wait_for(&stop) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn wait_for(stop: &std::sync::atomic::AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn prefix(sink: &str) -> String {
    format!("{sink}\0")
}

fn key(sink: &str, seq: u64) -> String {
    format!("{sink}\0{seq:020}")
}

fn seq_of(key: &str) -> u64 {
    key.rsplit('\0').next().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// A running responder: the rules, the outbox and one worker per sink.
pub struct Responder {
    pub config: ResponseConfig,
    pub outbox: Arc<Outbox>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// Where kill, pause and capture act (None: they are logged as not done).
    actions: Option<(Arc<super::actions::ActionLog>, super::actions::ActionContext)>,
}

impl Responder {
    /// Opens the outbox and starts the sinks' workers on the current runtime; kill, pause and
    /// capture act through `actions` (None: notifications only).
    pub fn start(
        store: Arc<Store>,
        config: ResponseConfig,
        actions: Option<super::actions::ActionContext>,
    ) -> Result<Self, String> {
        let actions = match actions {
            Some(context) => {
                let log =
                    super::actions::ActionLog::open(&store).map_err(|e| format!("opening the action log: {e}"))?;
                Some((Arc::new(log), context))
            }
            None => None,
        };
        let outbox = Outbox::open(store, &config).map_err(|e| format!("opening the outbox: {e}"))?;
        let client = crate::registry::client::http_client().build().map_err(|e| format!("the HTTP client: {e}"))?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        for sink in &config.sinks {
            tokio::spawn(Arc::clone(&outbox).run_sink(client.clone(), sink.clone(), Arc::clone(&stop)));
        }
        Ok(Self { config, outbox, stop, actions })
    }

    /// Queues the notifications the rules say for `alerts`, and starts their other actions
    /// (each logged when done); returns the notifications queued.
    pub fn respond(&self, alerts: &[StoredAlert]) -> Result<usize, String> {
        if let Some((log, context)) = &self.actions {
            for alert in alerts {
                for rule in self.config.matching(alert) {
                    for requested in rule.rule.actions.iter().filter_map(Action::requested) {
                        let (log, context, alert, name) =
                            (Arc::clone(log), context.clone(), alert.clone(), rule.rule.name.clone());
                        tokio::spawn(async move {
                            if let Err(e) = super::actions::perform(&log, &context, &alert, &name, &requested).await {
                                crate::say!("picket: logging a response action: {e}");
                            }
                        });
                    }
                }
            }
        }
        self.outbox.respond(&self.config, alerts).map_err(|e| format!("queueing notifications: {e}"))
    }

    pub fn status(&self) -> Vec<SinkStatus> {
        self.outbox.status()
    }
}

/// Hands `events` (made by a one-shot command: a benchmark's failures, a re-match's new
/// vulnerabilities) to the response rules and waits up to `wait` for the sinks to take them;
/// what a sink has not taken stays queued in the store for the next responder. How many
/// notifications were queued, and how many still wait.
pub async fn respond_once(
    store: Arc<Store>,
    config: ResponseConfig,
    events: &[StoredAlert],
    wait: std::time::Duration,
) -> Result<(usize, usize), String> {
    let responder = Responder::start(store, config, None)?;
    let queued = responder.respond(events)?;
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline && responder.status().iter().any(|s| s.queued > 0) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let waiting = responder.status().iter().map(|s| s.queued).sum();
    Ok((queued, waiting))
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

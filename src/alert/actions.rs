//! Response actions beyond notification: kill the process, pause (freeze) the container,
//! quarantine it (the local agent cuts its network), capture its traffic. They act on this
//! machine only — the alert's node must be this one — and every one is logged (the store's
//! `response_actions` tree) with the alert and rule that caused it, what was done or why not,
//! and how to undo it: a pause is undone by thawing the container, a quarantine by releasing it;
//! a kill cannot be undone; a capture needs no undoing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{StoredAlert, now_unix_ms};
use crate::store::{Store, StoreError, TreeName, Typed};

/// One automatic action, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Zero-padded sequence, the key.
    pub id: String,
    pub at_ms: u64,
    pub alert: String,
    pub alert_rule: String,
    /// The response rule that asked for it.
    pub rule: String,
    /// `kill`, `pause`, `capture`.
    pub action: String,
    /// `pid 4242 (/usr/bin/xmrig)`, `container web`.
    pub target: String,
    pub done: bool,
    /// What happened, or why it was not done.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Undo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undone_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Undo {
    Unpause {
        socket: PathBuf,
        container: String,
    },
    /// Ask the agent at `socket` to release container `container` (its full id).
    Release {
        socket: PathBuf,
        container: String,
    },
}

/// What the actions need from where they run.
#[derive(Debug, Clone, Default)]
pub struct ActionContext {
    /// This machine's node name (the agent's): actions touch only its alerts.
    pub node: String,
    /// Engine sockets to find containers on.
    pub engine_sockets: Vec<PathBuf>,
    /// Where automatic captures go.
    pub captures_dir: PathBuf,
    /// The local agent's socket, which quarantines.
    pub agent_socket: PathBuf,
}

impl ActionContext {
    pub fn local(engine_sockets: Vec<PathBuf>, captures_dir: PathBuf) -> Self {
        Self {
            node: crate::agent::runtime::node_name(),
            engine_sockets,
            captures_dir,
            agent_socket: crate::agent::stream::DEFAULT_SOCKET.into(),
        }
    }
}

pub struct ActionLog {
    tree: Typed<ActionRecord>,
    /// Actions finish on several tasks at once: one takes the next id at a time.
    adding: std::sync::Mutex<()>,
}

impl ActionLog {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self { tree: store.tree(TreeName::ResponseActions)?, adding: std::sync::Mutex::new(()) })
    }

    fn next_id(&self) -> Result<String, StoreError> {
        let last = self.tree.last(1)?.into_iter().next().map(|(k, _)| k.parse::<u64>().unwrap_or(0)).unwrap_or(0);
        Ok(format!("{:08}", last + 1))
    }

    pub fn add(&self, mut record: ActionRecord) -> Result<ActionRecord, StoreError> {
        let _one_at_a_time = self.adding.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        record.id = self.next_id()?;
        self.tree.insert(&record.id, &record)?;
        self.tree.flush()?;
        Ok(record)
    }

    /// The newest `limit`, newest first.
    pub fn newest(&self, limit: usize) -> Result<Vec<ActionRecord>, StoreError> {
        Ok(self.tree.last(limit)?.into_iter().map(|(_, r)| r).collect())
    }

    pub fn get(&self, id: &str) -> Result<Option<ActionRecord>, StoreError> {
        let key = id.parse::<u64>().map(|n| format!("{n:08}")).unwrap_or_else(|_| id.to_string());
        self.tree.get(&key)
    }

    /// Marks the quarantines of `container` (a name or id prefix) not yet undone as undone
    /// (it was released some other way); how many.
    pub fn mark_released(&self, container: &str) -> Result<usize, StoreError> {
        let mut marked = 0;
        for record in self.newest(10_000)? {
            let Some(Undo::Release { container: id, .. }) = &record.undo else { continue };
            let named = record.target == format!("container {container}") || id.starts_with(container);
            if record.undone_at_ms.is_none() && named {
                self.mark_undone(&record)?;
                marked += 1;
            }
        }
        Ok(marked)
    }

    fn mark_undone(&self, record: &ActionRecord) -> Result<(), StoreError> {
        let mut record = record.clone();
        record.undone_at_ms = Some(now_unix_ms());
        self.tree.insert(&record.id, &record)?;
        self.tree.flush()
    }
}

/// One action a response rule asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    Kill,
    Pause,
    Quarantine,
    Capture { duration: Duration, max_bytes: u64 },
}

impl Requested {
    fn name(&self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Pause => "pause",
            Self::Quarantine => "quarantine",
            Self::Capture { .. } => "capture",
        }
    }
}

/// Carries out `requested` for `alert` (asked by response rule `rule`) and logs it.
pub async fn perform(
    log: &ActionLog,
    context: &ActionContext,
    alert: &StoredAlert,
    rule: &str,
    requested: &Requested,
) -> Result<ActionRecord, StoreError> {
    let mut record = ActionRecord {
        id: String::new(),
        at_ms: now_unix_ms(),
        alert: alert.alert.id.clone(),
        alert_rule: alert.alert.rule.clone(),
        rule: rule.to_string(),
        action: requested.name().into(),
        target: String::new(),
        done: false,
        outcome: String::new(),
        undo: None,
        undone_at_ms: None,
    };
    if alert.node != context.node {
        record.target = super::fold::container_label(alert);
        record.outcome = format!(
            "not done: the alert is from node {}, and this picket acts on node {} only",
            alert.node, context.node
        );
        return log.add(record);
    }
    let result = match requested {
        Requested::Kill => kill(alert, &mut record),
        Requested::Pause => pause(context, alert, &mut record).await,
        Requested::Quarantine => quarantine(context, alert, &mut record).await,
        Requested::Capture { duration, max_bytes } => capture(context, alert, *duration, *max_bytes, &mut record).await,
    };
    match result {
        Ok(outcome) => {
            record.done = true;
            record.outcome = outcome;
        }
        Err(why) => record.outcome = format!("not done: {why}"),
    }
    log.add(record)
}

/// SIGKILL to the alert's process, when the pid still runs the same program (a pid reused since
/// is left alone).
fn kill(alert: &StoredAlert, record: &mut ActionRecord) -> Result<String, String> {
    let event = &alert.alert.event;
    record.target = format!("pid {} ({})", event.pid, if event.exe.is_empty() { &event.comm } else { &event.exe });
    if event.pid <= 1 {
        return Err("the alert names no process".into());
    }
    let running = std::fs::read_link(format!("/proc/{}/exe", event.pid))
        .map_err(|e| format!("process {} is gone ({e})", event.pid))?;
    let wanted = Path::new(&event.exe).file_name();
    if !event.exe.is_empty() && running.file_name() != wanted {
        return Err(format!("process {} now runs {}, not {}", event.pid, running.display(), event.exe));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(event.pid).map_err(|_| "a pid out of range")?);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).map_err(|e| format!("kill {}: {e}", event.pid))?;
    Ok(format!("killed process {}", event.pid))
}

async fn find_container(context: &ActionContext, alert: &StoredAlert) -> Result<(PathBuf, String, u32), String> {
    let container = alert.container.as_ref().ok_or("the alert is from the host, not a container")?;
    for socket in crate::engine::existing_sockets(&context.engine_sockets) {
        if let Ok(found) = crate::engine::inspect(&socket, &container.id).await {
            return Ok((socket, found.id, u32::try_from(found.pid).unwrap_or(0)));
        }
    }
    Err(format!("container {} is not on a local engine", super::fold::container_label(alert)))
}

async fn pause(context: &ActionContext, alert: &StoredAlert, record: &mut ActionRecord) -> Result<String, String> {
    record.target = format!("container {}", super::fold::container_label(alert));
    let (socket, id, _) = find_container(context, alert).await?;
    crate::engine::set_paused(&socket, &id, true).await.map_err(|e| e.to_string())?;
    record.undo = Some(Undo::Unpause { socket: socket.clone(), container: id });
    Ok(format!("paused (frozen) through {}", socket.display()))
}

async fn quarantine(context: &ActionContext, alert: &StoredAlert, record: &mut ActionRecord) -> Result<String, String> {
    record.target = format!("container {}", super::fold::container_label(alert));
    let container = alert.container.as_ref().ok_or("the alert is from the host, not a container")?;
    let reason = format!("alert {} ({}), response rule {}", alert.alert.id, alert.alert.rule, record.rule);
    let said = crate::agent::client::quarantine(&context.agent_socket, &container.id, &reason).await?;
    record.undo = Some(Undo::Release { socket: context.agent_socket.clone(), container: container.id.clone() });
    Ok(said)
}

/// Quarantines `container` (a name or id prefix) by hand through the agent at `socket`, logged
/// as an action with its undo, as a response rule's would be.
pub async fn quarantine_by_hand(
    log: &ActionLog,
    socket: &Path,
    container: &str,
    reason: &str,
) -> Result<ActionRecord, String> {
    let said = crate::agent::client::quarantine(socket, container, reason).await?;
    let quarantined = crate::agent::client::quarantined(socket).await?;
    let id = quarantined
        .iter()
        .find(|q| q.name.as_deref() == Some(container) || q.id.starts_with(container))
        .map(|q| q.id.clone())
        .unwrap_or_else(|| container.to_string());
    let record = ActionRecord {
        id: String::new(),
        at_ms: now_unix_ms(),
        alert: String::new(),
        alert_rule: String::new(),
        rule: format!("by hand ({})", crate::policy::history::who()),
        action: "quarantine".into(),
        target: format!("container {container}"),
        done: true,
        outcome: said,
        undo: Some(Undo::Release { socket: socket.to_path_buf(), container: id }),
        undone_at_ms: None,
    };
    log.add(record).map_err(|e| e.to_string())
}

async fn capture(
    context: &ActionContext,
    alert: &StoredAlert,
    duration: Duration,
    max_bytes: u64,
    record: &mut ActionRecord,
) -> Result<String, String> {
    record.target = format!("container {}", super::fold::container_label(alert));
    let (_, _, pid) = find_container(context, alert).await?;
    if pid == 0 {
        return Err("the container is not running".into());
    }
    std::fs::create_dir_all(&context.captures_dir)
        .map_err(|e| format!("cannot create {}: {e}", context.captures_dir.display()))?;
    let out = context.captures_dir.join(format!("{}-{}.pcap", alert.alert.id.replace('/', "_"), now_unix_ms()));
    let spec = super::capture::CaptureSpec { pid, duration, max_bytes, filter: super::capture::Filter::default() };
    let summary = tokio::task::spawn_blocking(move || super::capture::capture(&spec, &out))
        .await
        .map_err(|e| e.to_string())??;
    Ok(format!("{} packets captured to {}", summary.packets, summary.file.display()))
}

/// Undoes every action taken for the alerts of `detail`'s fold that can be and was not; what
/// was done.
pub async fn undo_fold(log: &ActionLog, detail: &super::detail::AlertDetail) -> Result<String, String> {
    let undoable: Vec<&ActionRecord> =
        detail.actions.iter().filter(|a| a.undo.is_some() && a.undone_at_ms.is_none()).collect();
    if undoable.is_empty() {
        return Err(format!("fold {} has no response action to undo", detail.fold.id));
    }
    let mut said = Vec::new();
    for action in undoable {
        said.push(undo(log, &action.id).await?);
    }
    Ok(said.join("; "))
}

/// Undoes action `id` (a pause: the container is thawed).
pub async fn undo(log: &ActionLog, id: &str) -> Result<String, String> {
    let record = log.get(id).map_err(|e| e.to_string())?.ok_or_else(|| format!("no response action {id}"))?;
    if record.undone_at_ms.is_some() {
        return Err(format!("action {} was undone already", record.id));
    }
    match &record.undo {
        None if record.action == "kill" => Err(format!("action {} killed a process: that cannot be undone", record.id)),
        None => Err(format!("action {} ({}) has nothing to undo", record.id, record.outcome)),
        Some(Undo::Unpause { socket, container }) => {
            crate::engine::set_paused(socket, container, false).await.map_err(|e| e.to_string())?;
            log.mark_undone(&record).map_err(|e| e.to_string())?;
            Ok(format!("action {}: {} thawed", record.id, record.target))
        }
        Some(Undo::Release { socket, container }) => {
            let said = crate::agent::client::release(socket, container).await?;
            log.mark_undone(&record).map_err(|e| e.to_string())?;
            Ok(format!("action {}: {said}", record.id))
        }
    }
}

//! `picket respond`: response rules and their sinks (`response/*.yaml` in the config directory).
//! `validate` checks the files, `test` shows which rules the kept alerts match, `notify` sends a
//! test notification to a sink now, `run` keeps the local agent's alerts and responds to them
//! headless (what the console does while it runs), `status` shows each sink's queue.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use crate::alert::outbox::{Outbox, Responder, SinkStatus};
use crate::alert::respond::ResponseConfig;
use crate::alert::{AlertLog, StoredAlert, now_unix_ms, time};
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum RespondCommand {
    /// Check the response files: every mistake with its file and line
    Validate {
        /// The directory of response files (default: response/ in the config directory)
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// Which rules and sinks the newest kept alerts match (nothing is sent)
    Test {
        #[arg(long)]
        rules: Option<PathBuf>,
        /// How many of the newest kept alerts
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Send a test notification to one sink now, and say what it answered
    Notify {
        sink: String,
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// Keep the local agent's alerts and respond to them until interrupted
    Run {
        #[arg(long)]
        rules: Option<PathBuf>,
        /// The agent's socket
        #[arg(long, default_value = crate::agent::stream::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Stop after this many seconds (default: run until interrupted)
        #[arg(long)]
        duration: Option<u64>,
    },
    /// Capture a container's traffic into a pcap file (inside its network namespace; needs root)
    Capture {
        /// A container of a local engine (name or id)
        #[arg(long, conflicts_with = "pid", required_unless_present = "pid")]
        container: Option<String>,
        /// Any process in the network namespace to capture (a container's first process)
        #[arg(long)]
        pid: Option<u32>,
        /// How long: 30s, 5m
        #[arg(long, default_value = "30s")]
        duration: String,
        /// The file never grows past this: 10M, 500K, 1G
        #[arg(long, default_value = "100M")]
        max_size: String,
        /// Which packets: tcp, udp, icmp, host ADDRESS, port N, not …, joined by and
        #[arg(long, default_value = "")]
        filter: String,
        /// The pcap file to write (must not exist)
        #[arg(short, long)]
        output: PathBuf,
    },
    /// The response actions taken (kill, pause, capture), newest first, with their alert
    Actions {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Undo a response action by its id (a pause: the container is thawed; a quarantine: released)
    Undo { id: String },
    /// Cut a running container off the network, keeping it running (through the local agent):
    /// its connects and sends fail with EPERM and its packets are dropped both ways, until
    /// `picket respond release`; logged as a response action (undo with `picket respond undo`)
    Quarantine {
        /// The container's name or an id prefix (with --list: none)
        #[arg(required_unless_present = "list")]
        container: Option<String>,
        /// Why, for the log and the agent's list
        #[arg(long, default_value = "")]
        reason: String,
        /// List the quarantined containers instead
        #[arg(long, conflicts_with = "container")]
        list: bool,
        #[arg(long, value_name = "SOCKET", default_value = crate::agent::stream::DEFAULT_SOCKET)]
        agent: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Give a quarantined container its network back
    Release {
        /// Its name or an id prefix
        container: String,
        #[arg(long, value_name = "SOCKET", default_value = crate::agent::stream::DEFAULT_SOCKET)]
        agent: PathBuf,
    },
    /// Each sink's queue (notifications waiting on disk)
    Status {
        #[arg(long)]
        rules: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

fn load(config: &Config, rules: &Option<PathBuf>) -> anyhow::Result<ResponseConfig> {
    let dir = rules.clone().unwrap_or_else(|| config.config_dir.join("response"));
    Ok(ResponseConfig::load(&dir, rules.is_some())?)
}

pub fn run(command: &RespondCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
        RespondCommand::Validate { rules } => {
            let response = load(config, rules)?;
            let mut out = format!("{} sinks, {} rules: valid\n", response.sinks.len(), response.rules.len());
            for sink in &response.sinks {
                let floor = sink.min_severity.map(|s| format!(", {s} and worse")).unwrap_or_default();
                out.push_str(&format!("  sink {} ({}{floor})\n", sink.name, sink.kind.as_str()));
            }
            for rule in &response.rules {
                out.push_str(&format!("  rule {} ({})\n", rule.rule.name, rule.source));
            }
            print(out.trim_end())
        }
        RespondCommand::Test { rules, limit } => {
            let response = load(config, rules)?;
            let store = Store::open(&config.store_path())?;
            let alerts = AlertLog::open(&store)?.newest(*limit)?;
            print(&test_table(&response, &alerts))
        }
        RespondCommand::Notify { sink, rules } => {
            let response = load(config, rules)?;
            let Some(sink) = response.sink(sink).cloned() else {
                let known: Vec<&str> = response.sinks.iter().map(|s| s.name.as_str()).collect();
                bail!("no sink is named '{sink}' (sinks: {})", known.join(", "));
            };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let client = crate::registry::client::http_client().build().context("the HTTP client")?;
            let notification = crate::alert::sinks::Notification {
                rule: "picket respond notify".into(),
                category: "alert".into(),
                alert: test_alert(),
            };
            runtime
                .block_on(crate::alert::sinks::deliver(&client, &sink, &[notification]))
                .map_err(|e| anyhow::anyhow!("sink {}: {e}", sink.name))?;
            print(&format!("sink {} took the test notification", sink.name))
        }
        RespondCommand::Run { rules, socket, duration } => {
            let response = load(config, rules)?;
            let store = Arc::new(Store::open(&config.store_path())?);
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(run_headless(
                store,
                response,
                socket.clone(),
                duration.map(Duration::from_secs),
                crate::engine::candidate_sockets(&config.engines),
                config.data_dir.join("captures"),
            ))
        }
        RespondCommand::Capture { container, pid, duration, max_size, filter, output } => {
            let duration = crate::alert::triage::parse_duration(duration).map_err(anyhow::Error::msg)?;
            let max_bytes = crate::alert::respond::parse_size(max_size).map_err(anyhow::Error::msg)?;
            let filter = crate::alert::capture::Filter::parse(filter).map_err(anyhow::Error::msg)?;
            let pid = match (pid, container) {
                (Some(pid), _) => *pid,
                (None, Some(name)) => container_pid(config, name)?,
                (None, None) => bail!("give --container or --pid"),
            };
            let spec = crate::alert::capture::CaptureSpec {
                pid,
                duration: Duration::from_millis(duration),
                max_bytes,
                filter,
            };
            crate::say!(
                "picket respond: capturing the network of process {pid} for {}s into {}",
                duration / 1000,
                output.display()
            );
            let summary = crate::alert::capture::capture(&spec, output).map_err(anyhow::Error::msg)?;
            let why = if summary.full { " (stopped at the size bound)" } else { "" };
            print(&format!(
                "{} packets, {} bytes written to {}{why}",
                summary.packets,
                summary.bytes,
                summary.file.display()
            ))
        }
        RespondCommand::Actions { limit, json } => {
            let store = Store::open(&config.store_path())?;
            let actions = crate::alert::actions::ActionLog::open(&store)?.newest(*limit)?;
            let text = if *json { serde_json::to_string_pretty(&actions)? } else { actions_table(&actions) };
            print(&text)
        }
        RespondCommand::Undo { id } => {
            let store = Store::open(&config.store_path())?;
            let log = crate::alert::actions::ActionLog::open(&store)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let said = runtime.block_on(crate::alert::actions::undo(&log, id)).map_err(anyhow::Error::msg)?;
            print(&said)
        }
        RespondCommand::Quarantine { container, reason, list, agent, json } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let Some(container) = container.as_deref().filter(|_| !*list) else {
                let listed = runtime.block_on(crate::agent::client::quarantined(agent)).map_err(anyhow::Error::msg)?;
                let text = if *json { serde_json::to_string_pretty(&listed)? } else { quarantine_table(&listed) };
                return print(&text);
            };
            let store = Store::open(&config.store_path())?;
            let log = crate::alert::actions::ActionLog::open(&store)?;
            let record = runtime
                .block_on(crate::alert::actions::quarantine_by_hand(&log, agent, container, reason))
                .map_err(anyhow::Error::msg)?;
            let text = if *json {
                serde_json::to_string_pretty(&record)?
            } else {
                format!(
                    "{} (action {}; undo: picket respond undo {} or picket respond release {container})",
                    record.outcome, record.id, record.id
                )
            };
            print(&text)
        }
        RespondCommand::Release { container, agent } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let said = runtime.block_on(crate::agent::client::release(agent, container)).map_err(anyhow::Error::msg)?;
            // The actions that quarantined it are undone now.
            if let Ok(store) = Store::open(&config.store_path())
                && let Ok(log) = crate::alert::actions::ActionLog::open(&store)
            {
                let _ = log.mark_released(container);
            }
            print(&said)
        }
        RespondCommand::Status { rules, json } => {
            let response = load(config, rules)?;
            let store = Arc::new(Store::open(&config.store_path())?);
            let outbox = Outbox::open(store, &response)?;
            let status = outbox.status();
            let text = if *json { serde_json::to_string_pretty(&status)? } else { status_table(&status) };
            print(&text)
        }
    }
}

fn quarantine_table(listed: &[crate::agent::quarantine::Quarantined]) -> String {
    if listed.is_empty() {
        return "no container is quarantined".into();
    }
    let mut out = String::from("CONTAINER                      SINCE                 BY          REASON\n");
    for q in listed {
        let since = time(q.since_ms);
        out.push_str(&format!("{:<30} {:<21} {:<11} {}\n", q.label(), since, q.who, q.reason));
    }
    out.trim_end().to_string()
}

async fn run_headless(
    store: Arc<Store>,
    response: ResponseConfig,
    socket: PathBuf,
    duration: Option<Duration>,
    engine_sockets: Vec<PathBuf>,
    captures_dir: PathBuf,
) -> anyhow::Result<ExitCode> {
    use crate::agent::client::{Feed, read_agent};
    let actions = crate::alert::actions::ActionContext {
        agent_socket: socket.clone(),
        ..crate::alert::actions::ActionContext::local(engine_sockets, captures_dir)
    };
    let responder = Responder::start(Arc::clone(&store), response, Some(actions)).map_err(anyhow::Error::msg)?;
    let log = AlertLog::open(&store)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let in_flight: crate::agent::client::InFlight = Default::default();
    tokio::spawn(read_agent(tx, socket.clone(), Duration::from_secs(10), Arc::clone(&in_flight)));
    crate::say!(
        "picket respond: reading {} ({} rules, {} sinks)",
        socket.display(),
        responder.config.rules.len(),
        responder.config.sinks.len()
    );
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    let mut last_status = Vec::new();
    loop {
        let until_deadline = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let feed = tokio::select! {
            feed = rx.recv() => feed,
            _ = tokio::signal::ctrl_c() => None,
            () = until_deadline => None,
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                report_status(&responder.status(), &mut last_status);
                continue;
            }
        };
        match feed {
            Some(Feed::Lines { events, .. }) => {
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                match crate::alert::keep_and_respond(&log, Some(&responder), &events) {
                    Ok((kept, queued)) if kept > 0 => {
                        crate::say!("picket respond: {kept} new alerts, {queued} notifications queued");
                    }
                    Ok(_) => {}
                    Err(e) => crate::say!("picket respond: {e}"),
                }
            }
            Some(Feed::Down { reason }) => bail!("the agent at {}: {reason}", socket.display()),
            Some(_) => {}
            None => break,
        }
    }
    // What is queued stays on disk for the next run; give the sinks a moment to finish.
    let wait_until = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < wait_until
        && responder.status().iter().any(|s| s.queued > 0 && s.failing_since_ms.is_none())
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report_status(&responder.status(), &mut last_status);
    Ok(ExitCode::SUCCESS)
}

/// Says when a sink starts failing or recovers.
fn report_status(now: &[SinkStatus], last: &mut Vec<SinkStatus>) {
    for sink in now {
        let before = last.iter().find(|s| s.name == sink.name);
        let was_failing = before.is_some_and(|s| s.failing_since_ms.is_some());
        match (&sink.failing_since_ms, was_failing) {
            (Some(_), false) => crate::say!(
                "picket respond: sink {} is failing ({} queued): {}",
                sink.name,
                sink.queued,
                sink.last_error.as_deref().unwrap_or("")
            ),
            (None, true) => crate::say!("picket respond: sink {} delivers again", sink.name),
            _ => {}
        }
    }
    *last = now.to_vec();
}

/// The first process of a local engine's container.
fn container_pid(config: &Config, name: &str) -> anyhow::Result<u32> {
    let sockets = crate::engine::existing_sockets(&crate::engine::candidate_sockets(&config.engines));
    if sockets.is_empty() {
        bail!("no container engine socket found (Docker or Podman); give --pid");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut errors = Vec::new();
    for socket in &sockets {
        match runtime.block_on(crate::engine::inspect(socket, name)) {
            Ok(detail) if detail.pid > 0 => return u32::try_from(detail.pid).context("the container's pid"),
            Ok(detail) => errors.push(format!("{}: container {name} is {}", socket.display(), detail.state)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    bail!("no running container '{name}': {}", errors.join("; "))
}

fn print(text: &str) -> anyhow::Result<ExitCode> {
    crate::out!("{text}").context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

fn test_table(response: &ResponseConfig, alerts: &[StoredAlert]) -> String {
    if alerts.is_empty() {
        return "no alerts kept to test the rules on".into();
    }
    let mut out = String::from(
        "TIME                 SEVERITY  RULE                          CONTAINER                 RESPONSE → SINKS\n",
    );
    for alert in alerts {
        let fired: Vec<String> = response
            .matching(alert)
            .iter()
            .map(|r| {
                use crate::alert::respond::Action;
                let sinks: Vec<&str> = r
                    .rule
                    .actions
                    .iter()
                    .filter_map(|a| match a {
                        Action::Notify(name) => {
                            response.sink(name).filter(|s| s.takes(alert.alert.severity)).map(|s| s.name.as_str())
                        }
                        Action::Kill => Some("kill"),
                        Action::Pause => Some("pause"),
                        Action::Quarantine => Some("quarantine"),
                        Action::Capture(_) => Some("capture"),
                    })
                    .collect();
                format!(
                    "{} → {}",
                    r.rule.name,
                    if sinks.is_empty() { "(below every sink's floor)".into() } else { sinks.join(", ") }
                )
            })
            .collect();
        out.push_str(&format!(
            "{:<20} {:<9} {:<29} {:<25} {}\n",
            time(alert.alert.at_unix_ms),
            alert.alert.severity,
            alert.alert.rule,
            crate::alert::fold::container_label(alert),
            if fired.is_empty() { "-".into() } else { fired.join("; ") }
        ));
    }
    out.trim_end().to_string()
}

fn actions_table(actions: &[crate::alert::actions::ActionRecord]) -> String {
    if actions.is_empty() {
        return "no response actions taken".into();
    }
    let mut out = String::from(
        "ID        TIME                 ACTION   RULE                  ALERT                          OUTCOME\n",
    );
    for a in actions {
        let undone = match (a.undone_at_ms, &a.undo) {
            (Some(at), _) => format!(" (undone {})", time(at)),
            (None, Some(_)) => " (picket respond undo ID)".into(),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:<9} {:<20} {:<8} {:<21} {:<30} {} {}: {}{undone}\n",
            a.id,
            time(a.at_ms),
            a.action,
            a.rule,
            format!("{} ({})", a.alert, a.alert_rule),
            a.target,
            if a.done { "done" } else { "not done" },
            a.outcome
        ));
    }
    out.trim_end().to_string()
}

fn status_table(status: &[SinkStatus]) -> String {
    if status.is_empty() {
        return "no sinks configured (response/*.yaml in the config directory)".into();
    }
    let mut out = String::from("SINK                 TYPE          QUEUED\n");
    for sink in status {
        out.push_str(&format!("{:<20} {:<13} {}\n", sink.name, sink.kind, sink.queued));
    }
    out.trim_end().to_string()
}

/// The alert `notify` sends: plainly a test.
fn test_alert() -> StoredAlert {
    use crate::agent::alert::{Action, Alert, Trigger};
    StoredAlert {
        node: crate::local::hostname(),
        container: None,
        alert: Alert {
            id: format!("picket-test-{}", now_unix_ms()),
            at_unix_ms: now_unix_ms(),
            rule: "picket-test".into(),
            title: "A test notification from picket respond notify".into(),
            severity: crate::model::Severity::Low,
            technique: String::new(),
            why: "Sent by hand to check that this sink takes picket's notifications.".into(),
            mode: crate::agent::enforce::Mode::Monitor,
            action: Action::Alerted,
            policy: String::new(),
            event: Trigger { kind: "test".into(), ..Trigger::default() },
            ancestry: Vec::new(),
            count: 1,
        },
    }
}

//! `picket alerts`: the alerts the console has kept from its agents (the store's alert log),
//! folded and triaged as the Alerts pane shows them.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use crate::alert::detail::AlertDetail;
use crate::alert::fold::{Filter, Fold, fold};
use crate::alert::triage::{TriageLog, TriageRecord, current_user, parse_duration};
use crate::alert::{AlertLog, StoredAlert, now_unix_ms, time};
use crate::config::Config;
use crate::model::Severity;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Alerts folded by rule, container and program, the most recently fired first (open ones
    /// unless --all); --raw for every alert as kept
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Every alert as the agents sent it (with node and container), newest first
        #[arg(long)]
        raw: bool,
        /// At most this many lines
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// One fold (its id from `list`) or alert (its id) in full: the event, the process tree,
    /// the container and its image's findings, the rule's why and the policy line that decided
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge a fold: it leaves the open list until it fires again
    Ack { id: String },
    /// Hide a fold until a time has passed (30m, 2h, 1d), whatever fires meanwhile
    Snooze {
        id: String,
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
    },
    /// Mark a fold a false positive: adds an exception for the rule (its image and program) to
    /// the rules directory's false-positives.yaml; shows the diff, writes only with --yes
    FalsePositive {
        id: String,
        #[arg(long)]
        yes: bool,
    },
    /// Undo an acknowledgement, snooze or false-positive mark (an exception written stays in
    /// its file; remove it there)
    Reopen { id: String },
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// At least this severe (critical, high, medium, low)
    #[arg(long)]
    severity: Option<Severity>,
    /// Rules whose id contains this
    #[arg(long)]
    rule: Option<String>,
    /// Pods of this namespace
    #[arg(long)]
    namespace: Option<String>,
    /// Alerts from this node's agent
    #[arg(long)]
    node: Option<String>,
    /// Also acknowledged, snoozed and false-positive folds
    #[arg(long)]
    all: bool,
}

impl FilterArgs {
    fn filter(&self) -> Filter {
        Filter {
            min_severity: self.severity,
            rule: self.rule.clone(),
            namespace: self.namespace.clone(),
            node: self.node.clone(),
            all: self.all,
            text: None,
        }
    }
}

pub fn run(command: &AlertsCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.store_path())?;
    let log = AlertLog::open(&store)?;
    let now = now_unix_ms();
    match command {
        AlertsCommand::List { filter, raw: true, limit, json } => {
            let filter = filter.filter();
            let alerts: Vec<StoredAlert> = log
                .newest(crate::alert::detail::SEARCHED)?
                .into_iter()
                .filter(|a| raw_admits(&filter, a))
                .take(*limit)
                .collect();
            let text = if *json { serde_json::to_string_pretty(&alerts)? } else { raw_table(&alerts) };
            print(&text)
        }
        AlertsCommand::List { filter, raw: false, limit, json } => {
            let alerts = log.newest(crate::alert::detail::SEARCHED)?;
            let triage = TriageLog::open(&store)?.load(now)?;
            let folds: Vec<Fold> = fold(&alerts, triage, &filter.filter()).into_iter().take(*limit).collect();
            let text = if *json { serde_json::to_string_pretty(&folds)? } else { fold_table(&folds) };
            print(&text)
        }
        AlertsCommand::Show { id, json } => {
            let detail = crate::alert::detail::find(&store, id, now).map_err(anyhow::Error::msg)?;
            let text = if *json { serde_json::to_string_pretty(&detail)? } else { detail_text(&detail) };
            print(&text)
        }
        AlertsCommand::Ack { id } => {
            let detail = crate::alert::detail::find(&store, id, now).map_err(anyhow::Error::msg)?;
            TriageLog::open(&store)?
                .set(&detail.key, &TriageRecord::Acknowledged { at_ms: now, by: current_user() })?;
            print(&format!(
                "acknowledged {} ({} on {}): it opens again when it fires",
                detail.fold.id, detail.fold.rule, detail.fold.container
            ))
        }
        AlertsCommand::Snooze { id, duration } => {
            let ms = parse_duration(duration).map_err(anyhow::Error::msg)?;
            let detail = crate::alert::detail::find(&store, id, now).map_err(anyhow::Error::msg)?;
            let until_ms = now.saturating_add(ms);
            TriageLog::open(&store)?
                .set(&detail.key, &TriageRecord::Snoozed { at_ms: now, until_ms, by: current_user() })?;
            print(&format!(
                "snoozed {} ({} on {}) until {}",
                detail.fold.id,
                detail.fold.rule,
                detail.fold.container,
                time(until_ms)
            ))
        }
        AlertsCommand::FalsePositive { id, yes } => {
            let detail = crate::alert::detail::find(&store, id, now).map_err(anyhow::Error::msg)?;
            let rules_dir = config.rules_dir();
            let proposed = crate::alert::exception::propose(&detail.alert, &rules_dir).map_err(anyhow::Error::msg)?;
            print(&proposed.diff())?;
            if !*yes {
                crate::say!("picket alerts: nothing written; run again with --yes to write this exception");
                return Ok(ExitCode::SUCCESS);
            }
            proposed.write().map_err(anyhow::Error::msg)?;
            let record = TriageRecord::FalsePositive {
                at_ms: now,
                by: current_user(),
                file: proposed.path.display().to_string(),
            };
            TriageLog::open(&store)?.set(&detail.key, &record)?;
            crate::say!(
                "picket alerts: wrote the exception to {}; agents apply it when they next start",
                proposed.path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        AlertsCommand::Reopen { id } => {
            let detail = crate::alert::detail::find(&store, id, now).map_err(anyhow::Error::msg)?;
            if !TriageLog::open(&store)?.reopen(&detail.key)? {
                bail!("fold {} is open already", detail.fold.id);
            }
            print(&format!("reopened {} ({} on {})", detail.fold.id, detail.fold.rule, detail.fold.container))
        }
    }
}

fn print(text: &str) -> anyhow::Result<ExitCode> {
    crate::out!("{text}").context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// The filter on single alerts (`--raw`): all but the triage state.
fn raw_admits(filter: &Filter, alert: &StoredAlert) -> bool {
    let container = alert.container.as_ref();
    filter.min_severity.is_none_or(|min| alert.alert.severity >= min)
        && filter.rule.as_deref().is_none_or(|r| alert.alert.rule.contains(r))
        && filter.namespace.as_deref().is_none_or(|n| container.and_then(|c| c.pod_namespace.as_deref()) == Some(n))
        && filter.node.as_deref().is_none_or(|n| alert.node == n)
}

fn fold_table(folds: &[Fold]) -> String {
    if folds.is_empty() {
        return "no open alerts (--all shows acknowledged, snoozed and false-positive ones)".into();
    }
    let mut out = String::from(
        "ID          LAST                 COUNT  SEVERITY  STATE     RULE                          CONTAINER                 PROCESS\n",
    );
    for fold in folds {
        let state = if fold.blocked { format!("{}*", fold.state.as_str()) } else { fold.state.as_str().to_string() };
        out.push_str(&format!(
            "{:<11} {:<20} {:>5}  {:<9} {:<9} {:<29} {:<25} {}\n",
            fold.id,
            time(fold.last_ms),
            fold.count,
            fold.severity,
            state,
            fold.rule,
            fold.container,
            fold.process
        ));
    }
    out.push_str("(* some were refused or killed)");
    out
}

fn raw_table(alerts: &[StoredAlert]) -> String {
    if alerts.is_empty() {
        return "no alerts kept (the console keeps what its agents send)".into();
    }
    let mut out = String::from(
        "TIME                 NODE         CONTAINER        SEVERITY  ACTION    RULE                          WHAT\n",
    );
    for stored in alerts {
        let alert = &stored.alert;
        let container = stored.container.as_ref().and_then(|c| c.name.clone()).unwrap_or_else(|| "(host)".into());
        let action = alert.action.as_str();
        let count = if alert.count > 1 { format!(" ×{}", alert.count) } else { String::new() };
        out.push_str(&format!(
            "{:<20} {:<12} {container:<16} {:<9} {action:<9} {:<29} {}{count}\n",
            time(alert.at_unix_ms),
            stored.node,
            alert.severity,
            alert.rule,
            alert.event.object()
        ));
    }
    out.trim_end().to_string()
}

/// `picket alerts show` as text; the pane renders the same lines.
fn detail_text(detail: &AlertDetail) -> String {
    detail.lines().join("\n")
}

//! `picket alerts`: the alerts the console has kept from its agents (the store's alert log).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::alert::{AlertLog, StoredAlert};
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// The newest alerts kept, newest first
    List {
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON (one array of alerts, as the agents sent them, with node and container)
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: &AlertsCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.store_path())?;
    let log = AlertLog::open(&store)?;
    match command {
        AlertsCommand::List { limit, json } => {
            let alerts = log.newest(*limit)?;
            let text = if *json { serde_json::to_string_pretty(&alerts)? } else { table(&alerts) };
            crate::out!("{text}").context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn table(alerts: &[StoredAlert]) -> String {
    if alerts.is_empty() {
        return "no alerts kept (the console keeps what its agents send)".into();
    }
    let mut out = String::from(
        "TIME                 NODE         CONTAINER        SEVERITY  ACTION    RULE                          WHAT\n",
    );
    for stored in alerts {
        let alert = &stored.alert;
        let time = jiff::Timestamp::from_millisecond(i64::try_from(alert.at_unix_ms).unwrap_or(0))
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let container = stored.container.as_ref().and_then(|c| c.name.clone()).unwrap_or_else(|| "(host)".into());
        let what = match alert.event.kind.as_str() {
            "open" => alert.event.path.clone(),
            "connect" | "send" => alert.event.remote.clone(),
            _ => alert.event.exe.clone(),
        };
        let action =
            serde_json::to_value(alert.action).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let count = if alert.count > 1 { format!(" ×{}", alert.count) } else { String::new() };
        out.push_str(&format!(
            "{time:<20} {:<12} {container:<16} {:<9} {action:<9} {:<29} {what}{count}\n",
            stored.node, alert.severity, alert.rule
        ));
    }
    out.trim_end().to_string()
}

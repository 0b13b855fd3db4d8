//! `picket network`: the connections the local agent reports for a while, folded per container,
//! peer, port and protocol with their L7 detail and verdict (`network::connections`), as a
//! table, the group → group map (`--map`) or JSON. The Network pane's twin.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use crate::network::connections::{Connections, map_lines};

#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// How long to watch the agent's stream: 10s, 1m
    #[arg(long = "for", default_value = "10s")]
    duration: String,
    /// The map of who talks to whom instead of the table
    #[arg(long)]
    map: bool,
    /// Print JSON (every connection, or the map's edges with --map)
    #[arg(long)]
    json: bool,
    /// The agent's socket
    #[arg(long, value_name = "SOCKET", default_value = crate::agent::stream::DEFAULT_SOCKET)]
    agent: PathBuf,
}

pub fn run(args: &NetworkArgs) -> anyhow::Result<ExitCode> {
    let duration = crate::alert::triage::parse_duration(&args.duration).map_err(anyhow::Error::msg)?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let connections = runtime.block_on(watch(args.agent.clone(), Duration::from_millis(duration)))?;
    let text = match (args.map, args.json) {
        (false, false) => table(&connections),
        (false, true) => serde_json::to_string_pretty(&connections.rows())?,
        (true, false) => {
            let lines = map_lines(&connections.edges());
            if lines.is_empty() {
                "no connections seen".into()
            } else {
                lines.into_iter().map(|(l, _)| l).collect::<Vec<_>>().join("\n")
            }
        }
        (true, true) => serde_json::to_string_pretty(&connections.edges())?,
    };
    crate::out!("{}", text.trim_end()).context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// The agent's events for `duration`, folded.
async fn watch(socket: PathBuf, duration: Duration) -> anyhow::Result<Connections> {
    use crate::agent::client::{Feed, read_agent};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let in_flight: crate::agent::client::InFlight = Default::default();
    let reader = tokio::spawn(read_agent(tx, socket, Duration::from_secs(5), in_flight));
    let mut connections = Connections::default();
    let deadline = tokio::time::Instant::now() + duration;
    loop {
        let feed = tokio::select! {
            feed = rx.recv() => feed,
            () = tokio::time::sleep_until(deadline) => break,
        };
        match feed {
            Some(Feed::Lines { events, .. }) => {
                let now = crate::alert::now_unix_ms();
                for event in &events {
                    connections.take(event, now);
                }
            }
            Some(Feed::Down { reason }) => {
                reader.abort();
                anyhow::bail!("{reason}");
            }
            Some(_) => {}
            None => break,
        }
    }
    reader.abort();
    Ok(connections)
}

fn table(connections: &Connections) -> String {
    if connections.is_empty() {
        return "no connections seen".into();
    }
    let mut out = format!(
        "{:<28} {:<3} {:<36} {:>5} {:<10} {:>6} {:<13} {:<8} {}\n",
        "CONTAINER", "DIR", "PEER", "PORT", "PROTOCOL", "COUNT", "BYTES ↑↓", "VERDICT", "LAST"
    );
    for row in connections.rows() {
        let direction = match row.key.direction {
            crate::network::connections::Direction::Out => "out",
            crate::network::connections::Direction::In => "in",
        };
        out.push_str(&format!(
            "{:<28} {:<3} {:<36} {:>5} {:<10} {:>6} {:<13} {:<8} {}\n",
            row.key.container,
            direction,
            row.peer(),
            row.key.port,
            row.key.protocol,
            row.count,
            row.bytes_text(),
            row.verdict.as_str(),
            row.details.back().cloned().unwrap_or_default(),
        ));
        if let Some(why) = &row.why {
            out.push_str(&format!("    decided by {why}\n"));
        }
    }
    out
}

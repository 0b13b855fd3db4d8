//! `picket risk`: every workload of a context scored (`risk::score`), the riskiest first, with
//! each part of its score; `--workload` explains one. The Risk pane's twin.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;

use crate::config::Config;
use crate::risk::Score;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct RiskArgs {
    /// One workload's score explained: `Deployment shop/api` (or `shop/api`)
    #[arg(long)]
    workload: Option<String>,
    /// At most this many workloads
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print JSON (the scores with every part and reason)
    #[arg(long)]
    json: bool,
}

pub fn run(args: &RiskArgs, config: &Config, context: Option<&str>) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.store_path())?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let (inventory, baselines) = runtime.block_on(async {
        let (client, name) = crate::cluster::client_for(context).await?;
        let inventory = crate::cluster::inventory::load(&client, &name).await?;
        for unlisted in &inventory.unlisted {
            crate::say!("picket: warning: context {name}: cannot {} ({})", unlisted.needs(), unlisted.message);
        }
        let (baselines, unread) = crate::risk::gather::read_baselines(&client).await;
        if let Some(unread) = unread {
            crate::say!("picket: warning: context {name}: {unread}");
        }
        anyhow::Ok((inventory, baselines))
    })?;
    let folds = crate::alert::open_folds(&store)?;
    let scores = crate::risk::gather::score_cluster(&inventory, &store, &folds, &baselines);
    if let Some(wanted) = &args.workload {
        let Some(score) = scores.iter().find(|s| s.subject == *wanted || s.subject.ends_with(&format!(" {wanted}")))
        else {
            bail!("no workload '{wanted}' in context {} (picket risk lists them)", inventory.context);
        };
        let text = if args.json { serde_json::to_string_pretty(score)? } else { score.lines().join("\n") };
        crate::out!("{text}").context("cannot write to standard output")?;
        return Ok(ExitCode::SUCCESS);
    }
    let shown: Vec<&Score> = scores.iter().take(args.limit).collect();
    let text = if args.json { serde_json::to_string_pretty(&shown)? } else { table(&shown) };
    crate::out!("{text}").context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

fn table(scores: &[&Score]) -> String {
    if scores.is_empty() {
        return "no workloads in this context".into();
    }
    let mut out = String::from("SCORE  LEVEL     VULNS  EXPOSURE  PRIVILEGES  COMPLIANCE  ALERTS  WORKLOAD\n");
    for score in scores {
        let part = |name: &str| score.parts.iter().find(|p| p.name == name).map_or(0.0, |p| p.points);
        let vulns = if score.unknown.is_empty() { format!("{:.0}", part("vulnerabilities")) } else { "?".into() };
        out.push_str(&format!(
            "{:>5}  {:<9} {:>5}  {:>8.0}  {:>10.0}  {:>10.0}  {:>6.0}  {}\n",
            score.total,
            score.level,
            vulns,
            part("exposure"),
            part("privileges"),
            part("compliance"),
            part("alerts"),
            score.subject
        ));
    }
    out.push_str("(? : no image of it scanned here; picket cluster scan)");
    out
}

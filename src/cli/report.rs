//! `picket report --html FILE | --markdown FILE`: the risk report (`report::overview`) from the
//! store and, when it can be read, the current (or `--context`) cluster.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Write the self-contained HTML report here
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write the Markdown report here
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Leave the cluster out (images and alerts only)
    #[arg(long)]
    no_cluster: bool,
}

/// How long the cluster may take to list before the report goes on without it.
const CLUSTER_WAIT: Duration = Duration::from_secs(30);

pub fn run(args: &ReportArgs, config: &Config, context: Option<&str>) -> anyhow::Result<ExitCode> {
    if args.html.is_none() && args.markdown.is_none() {
        bail!("say where: --html FILE and/or --markdown FILE");
    }
    let store = Store::open(&config.store_path())?;
    let mut notes = Vec::new();
    let inventory = if args.no_cluster {
        None
    } else {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let read = runtime.block_on(async {
            tokio::time::timeout(CLUSTER_WAIT, async {
                let (client, name) = crate::cluster::client_for(context).await.map_err(|e| e.to_string())?;
                let inventory = crate::cluster::inventory::load(&client, &name).await.map_err(|e| e.to_string())?;
                Ok((inventory, crate::risk::gather::read_baselines(&client).await))
            })
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {}s", CLUSTER_WAIT.as_secs())))
        });
        match read {
            Ok((inventory, (baselines, unread))) => {
                notes.extend(unread);
                Some((inventory, baselines))
            }
            Err(e) => {
                notes.push(format!("the cluster could not be read ({e}): workloads and compliance are left out"));
                None
            }
        }
    };
    let (inventory, baselines) = inventory.map_or((None, crate::learn::Baselines::default()), |(i, b)| (Some(i), b));
    let mut data =
        crate::report::overview::gather(&store, inventory.as_ref(), &baselines).map_err(anyhow::Error::msg)?;
    if !notes.is_empty() {
        data.notes.retain(|n| !n.starts_with("no cluster was read"));
        data.notes.extend(notes);
    }
    for (path, text) in [
        (&args.html, args.html.as_ref().map(|_| crate::report::overview::html(&data))),
        (&args.markdown, args.markdown.as_ref().map(|_| crate::report::overview::markdown(&data))),
    ] {
        if let (Some(path), Some(text)) = (path, text) {
            super::write_report(Some(path), text.as_bytes())?;
            crate::say!("picket report: wrote {}", path.display());
        }
    }
    for note in &data.notes {
        crate::say!("picket report: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

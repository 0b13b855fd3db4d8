//! `picket db update|import|export|status|rematch`: the vulnerability database.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::store::Store;
use crate::vulndb::update::{self, Outcome, UpdateOptions};
use crate::vulndb::{VulnDb, import};

pub use crate::vulndb::db::STALE_AFTER_DAYS;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Download or refresh advisories (OSV all.zip per ecosystem, Debian tracker, Alpine secdb)
    Update(UpdateArgs),
    /// Import advisories from a file, a directory or a URL (air-gapped use, mirrors): an OSV
    /// all.zip, a directory of OSV JSON records, a Debian security tracker JSON, an Alpine secdb
    /// JSON or YAML
    Import {
        #[arg(value_name = "PATH|URL")]
        path: PathBuf,
        /// Source name in the database [default: import:<ecosystems>/<file name>]
        #[arg(long)]
        name: Option<String>,
        /// Hand each new vulnerability of a running container's or pod's image to the response
        /// rules in DIR (category vulnerability)
        #[arg(long, value_name = "DIR")]
        respond: Option<PathBuf>,
    },
    /// Sources, advisory counts and age
    Status,
    /// Write the whole database (every source, its state, a manifest of SHA-256 hashes) to one
    /// file for a machine with no network, which takes it whole with `picket db import FILE`
    Export {
        #[arg(value_name = "FILE")]
        path: PathBuf,
    },
    /// Match every stored SBOM against the database again (db update and import do it after
    /// a change) and show what appeared and went
    Rematch {
        #[arg(short, long, value_enum, default_value_t = RematchFormat::Table)]
        output: RematchFormat,
        /// Hand each new vulnerability of a running container's or pod's image to the response
        /// rules in DIR (category vulnerability)
        #[arg(long, value_name = "DIR")]
        respond: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RematchFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// OSV ecosystem to fetch (repeatable) [default: every ecosystem picket catalogs]
    #[arg(long = "ecosystem", value_name = "NAME")]
    pub ecosystems: Vec<String>,
    /// Base URL of the OSV bucket (a mirror)
    #[arg(long, env = "PICKET_OSV_URL", default_value = update::OSV_BASE)]
    pub osv_url: String,
    /// Debian security tracker JSON URL
    #[arg(long, env = "PICKET_DEBIAN_TRACKER_URL", default_value = update::DEBIAN_TRACKER_URL)]
    pub debian_url: String,
    /// Base URL of the Alpine secdb
    #[arg(long, env = "PICKET_ALPINE_SECDB_URL", default_value = update::ALPINE_SECDB_BASE)]
    pub alpine_url: String,
    /// Alpine release to fetch (repeatable) [default: v3.18 … v3.22]
    #[arg(long = "alpine-release", value_name = "vX.Y")]
    pub alpine_releases: Vec<String>,
    /// Skip the Debian security tracker
    #[arg(long)]
    pub no_debian: bool,
    /// Skip the Alpine secdb
    #[arg(long)]
    pub no_alpine: bool,
    /// Only the OSV ecosystems (same as --no-debian --no-alpine)
    #[arg(long)]
    pub osv_only: bool,
    /// Hand each new vulnerability of a running container's or pod's image to the response
    /// rules in DIR (category vulnerability)
    #[arg(long, value_name = "DIR")]
    pub respond: Option<PathBuf>,
}

pub fn run(command: &DbCommand, config: &Config) -> anyhow::Result<ExitCode> {
    // Shared: a response to a re-match's news hands it to the sinks' workers.
    let store = std::sync::Arc::new(Store::open(&config.store_path())?);
    let db = VulnDb::open(&store)?;
    match command {
        DbCommand::Update(args) => run_update(&db, args, config, &store),
        DbCommand::Import { path, name, respond } if crate::vulndb::bundle::is_export(path) => {
            if name.is_some() {
                anyhow::bail!("{}: a database export keeps its sources' names; --name does not apply", path.display());
            }
            let states = crate::vulndb::bundle::import(&db, path)?;
            let advisories: u64 = states.iter().map(|s| s.advisories).sum();
            crate::say!(
                "picket: imported the database export {}: {} sources, {advisories} package advisories, every hash checked",
                path.display(),
                states.len()
            );
            for state in &states {
                crate::say!("  {}: {} advisories, updated {}", state.name, state.advisories, state.updated_at);
            }
            rematch(&store, RematchFormat::Table, config, respond.as_deref())
        }
        DbCommand::Export { path } => {
            let summary = crate::vulndb::bundle::export(&db, path)?;
            crate::say!(
                "picket: exported {} sources, {} package advisories to {} ({} bytes)\n  sha256 {} (also in {}.sha256)",
                summary.sources,
                summary.advisories,
                summary.path.display(),
                summary.bytes,
                summary.sha256,
                summary.path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Import { path, name, respond } => {
            let text = path.display().to_string();
            let loaded = if text.starts_with("http://") || text.starts_with("https://") {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("cannot start the async runtime")?;
                let bytes = runtime.block_on(update::fetch(&text)).map_err(anyhow::Error::msg)?;
                import::load_bytes(&text, bytes)?
            } else {
                import::load_path(path)?
            };
            let source = name.clone().unwrap_or_else(|| import::default_source_name(&text, &loaded));
            let skipped = loaded.skipped.clone();
            let state = import::write_source(&db, &source, &path.display().to_string(), loaded, (None, None))?;
            crate::say!(
                "picket: imported {} as {}: {} records, {} package advisories",
                path.display(),
                state.name,
                state.records,
                state.advisories
            );
            report_skipped(&skipped);
            rematch(&store, RematchFormat::Table, config, respond.as_deref())
        }
        DbCommand::Status => status(&db),
        DbCommand::Rematch { output, respond } => rematch(&store, *output, config, respond.as_deref()),
    }
}

/// Re-matches the stored SBOMs and tells what the database change means for them.
fn rematch(
    store: &std::sync::Arc<Store>,
    output: RematchFormat,
    config: &Config,
    respond: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let mut report = match crate::scan::rematch::rematch_all(store) {
        Ok(report) => report,
        Err(crate::vulndb::matcher::MatchError::EmptyDatabase) => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e.into()),
    };
    let elapsed = started.elapsed();
    if !report.new_by_id.is_empty() {
        crate::scan::rematch::attach_running(&mut report, &running_containers(config));
        attach_workloads(&mut report, store, config);
    }
    if let Some(dir) = respond {
        respond_new(store, dir, &report)?;
    }
    if let RematchFormat::Json = output {
        super::write_report(None, &serde_json::to_vec_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if report.sboms == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    crate::say!(
        "picket: re-matched {} stored SBOMs in {:.1} s: {} changed{}",
        report.sboms,
        elapsed.as_secs_f64(),
        report.changed.len(),
        match report.first {
            0 => String::new(),
            n => format!(" ({n} matched for the first time)"),
        }
    );
    let images = |list: &[String]| {
        let shown: Vec<&str> = list.iter().take(5).map(String::as_str).collect();
        let more = list.len().saturating_sub(shown.len());
        format!("{}{}", shown.join(", "), if more > 0 { format!(" and {more} more") } else { String::new() })
    };
    for (id, affected) in &report.new_by_id {
        let noun = if affected.len() == 1 { "image" } else { "images" };
        let mut counts = format!("{} {noun}", affected.len());
        let mut lists = String::new();
        if let Some(running) = report.running_by_id.get(id) {
            let noun = if running.len() == 1 { "container" } else { "containers" };
            counts.push_str(&format!(" / {} running {noun}", running.len()));
            lists.push_str(&format!("; running: {}", images(running)));
        }
        if let Some(pods) = report.workloads_by_id.get(id) {
            counts.push_str(&format!(" / {} {}", pods.len(), if pods.len() == 1 { "pod" } else { "pods" }));
            lists.push_str(&format!("; pods: {}", images(pods)));
        }
        crate::say!("  new: {id} affects {counts}: {}{lists}", images(affected));
    }
    for (id, affected) in &report.fixed_by_id {
        let noun = if affected.len() == 1 { "image" } else { "images" };
        crate::say!("  gone: {id} no longer affects {} {noun}: {}", affected.len(), images(affected));
    }
    Ok(ExitCode::SUCCESS)
}

/// The running containers of the local engines (none when there is no engine: re-matching
/// does not need one).
/// Each new advisory × running container or pod whose image it affects, as a `vulnerability`
/// event for the response rules in `dir` (waits up to 30 s for the sinks).
fn respond_new(
    store: &std::sync::Arc<Store>,
    dir: &std::path::Path,
    report: &crate::scan::rematch::RematchReport,
) -> anyhow::Result<()> {
    let response = crate::alert::respond::ResponseConfig::load(dir, true)?;
    let node = crate::agent::runtime::node_name();
    let events = crate::alert::vulnerability_events(report, &node, crate::alert::now_unix_ms());
    if events.is_empty() {
        crate::say!("picket: no new vulnerability in a running image: nothing for the response rules");
        return Ok(());
    }
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let wait = std::time::Duration::from_secs(30);
    let (queued, waiting) = runtime
        .block_on(crate::alert::outbox::respond_once(std::sync::Arc::clone(store), response, &events, wait))
        .map_err(anyhow::Error::msg)?;
    crate::say!(
        "picket: {} new vulnerabilities in running images, {queued} notifications{}",
        events.len(),
        super::bench::still_queued(waiting)
    );
    Ok(())
}

fn running_containers(config: &Config) -> Vec<crate::scan::rematch::RunningContainer> {
    let sockets = crate::engine::existing_sockets(&crate::engine::candidate_sockets(&config.engines));
    if sockets.is_empty() {
        return Vec::new();
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return Vec::new() };
    let probes = runtime.block_on(crate::engine::discover(&sockets));
    probes
        .into_iter()
        .filter_map(|probe| probe.result.ok())
        .flat_map(|engine| engine.containers)
        .filter(|c| c.state == "running")
        .map(|c| crate::scan::rematch::RunningContainer {
            name: format!("{} ({})", c.name, c.engine.as_str().to_ascii_lowercase()),
            image_id: c.image_id,
        })
        .collect()
}

/// Names the pods of the kubeconfig's context that run (or specify) an image a new advisory
/// affects. Nothing without a kubeconfig; an unreachable cluster is said and skipped.
fn attach_workloads(report: &mut crate::scan::rematch::RematchReport, store: &Store, config: &Config) {
    let tags = match crate::crawl::overview::tag_references(&config.registries, store) {
        Ok(tags) => tags,
        Err(e) => {
            crate::say!("picket: the crawls' tags could not be read: {e}");
            Default::default()
        }
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    let pods = runtime.block_on(async {
        let (client, context) = match crate::cluster::client_for(config.context.as_deref()).await {
            Ok(found) => found,
            Err(crate::cluster::ConnectError::NoContext) => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        tokio::time::timeout(std::time::Duration::from_secs(15), crate::crawl::workloads::pods(&client, &context))
            .await
            .unwrap_or_else(|_| Err(format!("context {context}: no answer within 15s")))
    });
    match pods {
        Ok(pods) => crate::crawl::workloads::attach(report, &pods, &tags),
        Err(why) => crate::say!("picket: pods not read, running workloads not counted: {why}"),
    }
}

fn report_skipped(skipped: &[String]) {
    if skipped.is_empty() {
        return;
    }
    crate::say!("picket: {} records could not be read and were skipped:", skipped.len());
    for line in skipped.iter().take(10) {
        crate::say!("  {line}");
    }
}

fn run_update(
    db: &VulnDb<'_>,
    args: &UpdateArgs,
    config: &Config,
    store: &std::sync::Arc<Store>,
) -> anyhow::Result<ExitCode> {
    let mut options = UpdateOptions { osv_base: args.osv_url.clone(), ..Default::default() };
    if !args.ecosystems.is_empty() {
        options.ecosystems = args.ecosystems.clone();
    }
    options.debian_tracker = (!args.no_debian && !args.osv_only).then(|| args.debian_url.clone());
    options.alpine_base = (!args.no_alpine && !args.osv_only).then(|| args.alpine_url.clone());
    if !args.alpine_releases.is_empty() {
        options.alpine_releases = args.alpine_releases.clone();
    }
    let bars = indicatif::MultiProgress::new();
    if !std::io::stderr().is_terminal() {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let current: std::sync::Mutex<Option<(String, indicatif::ProgressBar)>> = std::sync::Mutex::new(None);
    let style =
        indicatif::ProgressStyle::with_template("{prefix:>22} {bar:30} {bytes:>10}/{total_bytes:<10} {bytes_per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    let progress = |source: &str, done: u64, total: Option<u64>| {
        let Ok(mut current) = current.lock() else { return };
        if current.as_ref().is_none_or(|(name, _)| name != source) {
            if let Some((_, bar)) = current.take() {
                bar.finish_and_clear();
            }
            let bar = bars.add(indicatif::ProgressBar::new(total.unwrap_or(0)));
            bar.set_style(style.clone());
            bar.set_prefix(source.to_string());
            *current = Some((source.to_string(), bar));
        }
        if let Some((_, bar)) = current.as_ref() {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(done);
        }
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let results = runtime.block_on(update::update(db, &options, &progress));
    if let Ok(mut current) = current.lock()
        && let Some((_, bar)) = current.take()
    {
        bar.finish_and_clear();
    }
    let mut failed = 0;
    for result in &results {
        match &result.result {
            Ok(Outcome::Updated { how, state, skipped }) => {
                crate::say!(
                    "picket: {}: updated ({how}): {} records, {} package advisories",
                    result.source,
                    state.records,
                    state.advisories
                );
                report_skipped(skipped);
            }
            Ok(Outcome::Unchanged) => crate::say!("picket: {}: up to date", result.source),
            Err(message) => {
                failed += 1;
                crate::say!("picket: {}: update failed, the previous data stays in use: {message}", result.source);
            }
        }
    }
    let changed = results.iter().any(|r| matches!(r.result, Ok(Outcome::Updated { .. })));
    if changed {
        rematch(store, RematchFormat::Table, config, args.respond.as_deref())?;
    }
    if failed > 0 {
        crate::say!("picket: {failed} of {} sources failed", results.len());
        return Ok(ExitCode::from(super::EXIT_ERROR));
    }
    Ok(ExitCode::SUCCESS)
}

fn status(db: &VulnDb<'_>) -> anyhow::Result<ExitCode> {
    let sources = db.sources()?;
    if sources.is_empty() {
        crate::out!("The vulnerability database is empty: run `picket db update`, or `picket db import PATH` offline.")
            .context("cannot write to standard output")?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = jiff::Timestamp::now();
    let rows: Vec<[String; 5]> = sources
        .iter()
        .map(|s| {
            let age = s.updated_at.parse::<jiff::Timestamp>().ok().map(|t| (now - t).get_seconds().max(0) as u64);
            let stale = age.is_some_and(|a| a > (STALE_AFTER_DAYS as u64) * 86_400);
            [
                s.name.clone(),
                s.records.to_string(),
                s.advisories.to_string(),
                age.map_or_else(|| "?".into(), crate::model::human_age) + if stale { " (stale)" } else { "" },
                s.location.clone(),
            ]
        })
        .collect();
    let headers = ["SOURCE", "RECORDS", "ADVISORIES", "AGE", "FROM"];
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([headers[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == 4 {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    crate::out!("{}", line(headers)).context("cannot write to standard output")?;
    for row in &rows {
        crate::out!("{}", line([&row[0], &row[1], &row[2], &row[3], &row[4]]))
            .context("cannot write to standard output")?;
    }
    let stale: Vec<&str> = rows.iter().filter(|r| r[3].ends_with("(stale)")).map(|r| r[0].as_str()).collect();
    if !stale.is_empty() {
        crate::say!(
            "picket: warning: {} not updated for more than {STALE_AFTER_DAYS} days; run `picket db update`",
            stale.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

//! `picket registry add|list|remove|scan|tags`: registries kept scanned. Parse, call the
//! registry capability, print.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};

use crate::config::Config;
use crate::crawl::in_cluster;
use crate::crawl::overview::{self, Origin};
use crate::crawl::{Crawl, CrawlReport};
use crate::registry::{RegistryTarget, records};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Add a registry to crawl (kept in the store; registries in config.yaml need no add)
    Add(Box<AddArgs>),
    /// Registries, where each is defined, and their last crawl
    List {
        #[command(flatten)]
        cluster: FromCluster,
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        output: ListFormat,
    },
    /// Forget an added registry and what its crawls recorded (stored SBOMs stay)
    Remove { name: String },
    /// Crawl registries: new images are pulled and inventoried, known digests are not
    Scan(ScanArgs),
    /// The tags a registry's crawls found, with their findings and the change at the last
    /// database update
    Tags {
        name: String,
        #[command(flatten)]
        cluster: FromCluster,
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        output: ListFormat,
    },
    /// Print (or --apply) a CronJob that crawls a registry from inside a cluster and publishes
    /// its results to a ConfigMap that `--from-cluster` and the Registries pane read
    Manifest(Box<ManifestArgs>),
}

#[derive(Debug, Args)]
pub struct FromCluster {
    /// Read the results cluster CronJobs published (picket registry manifest) instead of this
    /// machine's store, from the context picked with --context
    #[arg(long)]
    pub from_cluster: bool,
    /// The namespace the results are in
    #[arg(long, default_value = in_cluster::DEFAULT_NAMESPACE)]
    pub namespace: String,
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The registry (from config.yaml or picket registry add)
    pub name: String,
    /// Where the CronJob and its results live (it must exist)
    #[arg(long, default_value = in_cluster::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// The picket image the job runs
    #[arg(long, default_value = crate::agent::manifest::DEFAULT_IMAGE)]
    pub image: String,
    /// Cron schedule [default: from the registry's every:, else hourly]
    #[arg(long)]
    pub schedule: Option<String>,
    /// A kubernetes.io/dockerconfigjson Secret with the registry's credentials
    #[arg(long, value_name = "SECRET")]
    pub auth_secret: Option<String>,
    /// A Secret with the registry's CA certificate as ca.crt
    #[arg(long, value_name = "SECRET")]
    pub ca_secret: Option<String>,
    /// Size of the job's store volume (its SBOMs keep re-crawls incremental)
    #[arg(long, default_value = in_cluster::DEFAULT_STORE_SIZE)]
    pub store_size: String,
    #[arg(long)]
    pub storage_class: Option<String>,
    /// Do not run `picket db update` before each crawl (air-gapped: import a database export
    /// into the job's store instead)
    #[arg(long)]
    pub no_db_update: bool,
    /// Apply to the cluster (server-side apply) instead of printing
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// host[:port], https://host[:port], or http://host[:port] (plain HTTP)
    pub url: String,
    /// What to call it [default: its host]
    #[arg(long)]
    pub name: Option<String>,
    /// Accept plain HTTP and unverified TLS
    #[arg(long)]
    pub insecure: bool,
    /// A PEM CA certificate to trust for it
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Take credentials from this docker config.json / auth.json
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Repositories to crawl: a glob, or re:REGEX (repeatable) [default: all]
    #[arg(long = "repository", value_name = "PATTERN")]
    pub repositories: Vec<String>,
    #[arg(long = "exclude-repository", value_name = "PATTERN")]
    pub exclude_repositories: Vec<String>,
    /// Tags to scan: a glob, or re:REGEX (repeatable) [default: all]
    #[arg(long = "tag", value_name = "PATTERN")]
    pub tags: Vec<String>,
    #[arg(long = "exclude-tag", value_name = "PATTERN")]
    pub exclude_tags: Vec<String>,
    /// Only the newest N tags of each repository (by image creation time)
    #[arg(long, value_name = "N")]
    pub last_tags: Option<usize>,
    /// Platforms of multi-platform images to scan (repeatable) [default: this machine's]
    #[arg(long = "platform", value_name = "OS/ARCH")]
    pub platforms: Vec<String>,
    /// Manifests and images worked on at once [default: 4]
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// How often `registry scan --watch` crawls it (30m, 6h)
    #[arg(long, value_name = "INTERVAL")]
    pub every: Option<String>,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Registries to crawl [default: every one]
    pub names: Vec<String>,
    /// Keep crawling: every INTERVAL, or each registry's own `every` (default 1h)
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "")]
    pub watch: Option<String>,
    /// Also look for secrets in every file of new images
    #[arg(long)]
    pub secrets: bool,
    /// After each crawl, write its results to this ConfigMap ([NAMESPACE/]NAME; the namespace
    /// defaults to the context's) for `--from-cluster` and the console; what a cluster job does
    #[arg(long, value_name = "[NAMESPACE/]NAME")]
    pub publish_configmap: Option<String>,
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub output: ListFormat,
}

/// How long `--watch` waits when neither the flag nor the registry says.
const DEFAULT_WATCH: std::time::Duration = std::time::Duration::from_secs(3600);

pub fn run(command: &RegistryCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.store_path())?;
    match command {
        RegistryCommand::Add(args) => add(&store, config, args),
        RegistryCommand::List { cluster, output } if cluster.from_cluster => {
            let (published, _) = read_cluster(config, &cluster.namespace)?;
            print_list(published.into_iter().map(|p| p.registry).collect(), *output)
        }
        RegistryCommand::List { output, .. } => print_list(overview::registries(&config.registries, &store)?, *output),
        RegistryCommand::Remove { name } => {
            if config.registries.iter().any(|t| t.display_name() == *name) {
                anyhow::bail!(
                    "registry '{name}' is defined in {}: remove it there",
                    config.source.as_ref().map_or_else(|| "config.yaml".into(), |p| p.display().to_string())
                );
            }
            if !records::remove(&store, name)? {
                anyhow::bail!("no registry named '{name}' was added (see picket registry list)");
            }
            crate::say!("picket: removed registry {name}");
            Ok(ExitCode::SUCCESS)
        }
        RegistryCommand::Scan(args) => scan(&store, config, args),
        RegistryCommand::Tags { name, cluster, output } if cluster.from_cluster => {
            let (published, _) = read_cluster(config, &cluster.namespace)?;
            let Some(found) = published.into_iter().find(|p| p.registry.name == *name) else {
                anyhow::bail!(
                    "no results for registry '{name}' in namespace {} (see picket registry list --from-cluster)",
                    cluster.namespace
                );
            };
            print_tags(found.tags, *output)
        }
        RegistryCommand::Tags { name, output, .. } => tags(&store, config, name, *output),
        RegistryCommand::Manifest(args) => manifest(&store, config, args),
    }
}

fn add(store: &Store, config: &Config, args: &AddArgs) -> anyhow::Result<ExitCode> {
    let target = RegistryTarget {
        name: args.name.clone().unwrap_or_default(),
        url: args.url.clone(),
        insecure: args.insecure,
        ca: args.ca.clone(),
        auth_file: args.auth_file.clone(),
        repositories: args.repositories.clone(),
        exclude_repositories: args.exclude_repositories.clone(),
        tags: args.tags.clone(),
        exclude_tags: args.exclude_tags.clone(),
        last_tags: args.last_tags,
        platforms: args.platforms.clone(),
        concurrency: args.concurrency,
        every: args.every.clone(),
    };
    target.resolve().map_err(|e| anyhow::anyhow!("registry {}: --{}", args.url, flag_of(&e)))?;
    let name = target.display_name();
    if config.registries.iter().any(|t| t.display_name() == name) {
        anyhow::bail!("a registry named '{name}' is already defined in the config file; give this one --name");
    }
    let replaced = records::added(store)?.iter().any(|t| t.display_name() == name);
    records::add(store, &target)?;
    crate::say!(
        "picket: {} registry {name}; crawl it with: picket registry scan {name}",
        if replaced { "updated" } else { "added" }
    );
    Ok(ExitCode::SUCCESS)
}

/// A target's field error (`lastTags: …`) in flag spelling (`last-tags: …`).
fn flag_of(message: &str) -> String {
    let (field, rest) = message.split_once(':').unwrap_or(("", message));
    let mut flag = String::new();
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            flag.push('-');
            flag.push(c.to_ascii_lowercase());
        } else {
            flag.push(c);
        }
    }
    let flag = match flag.as_str() {
        "repositories" => "repository".to_string(),
        "platforms" => "platform".to_string(),
        "tags" => "tag".to_string(),
        other => other.to_string(),
    };
    format!("{flag}:{rest}")
}

/// The results cluster jobs published in `namespace` of the chosen context; unreadable ones are
/// named on standard error.
fn read_cluster(config: &Config, namespace: &str) -> anyhow::Result<(Vec<in_cluster::Published>, String)> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (client, context) = crate::cluster::client_for(config.context.as_deref()).await?;
        let (published, unreadable) = in_cluster::read_published(&client, &context, Some(namespace)).await?;
        for why in unreadable {
            crate::say!("picket: context {context}: {why}");
        }
        Ok((published, context))
    })
}

fn manifest(store: &Store, config: &Config, args: &ManifestArgs) -> anyhow::Result<ExitCode> {
    let target = overview::chosen(&config.registries, store, std::slice::from_ref(&args.name))
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .next()
        .context("no such registry")?;
    let options = in_cluster::ManifestOptions {
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        schedule: args.schedule.clone(),
        auth_secret: args.auth_secret.clone(),
        ca_secret: args.ca_secret.clone(),
        store_size: args.store_size.clone(),
        storage_class: args.storage_class.clone(),
        db_update: !args.no_db_update,
    };
    let text = in_cluster::manifest(&target, &options).map_err(anyhow::Error::msg)?;
    if !args.apply {
        crate::out!("{text}").context("cannot write to standard output")?;
        return Ok(ExitCode::SUCCESS);
    }
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (client, context) = crate::cluster::client_for(config.context.as_deref()).await?;
        for object in in_cluster::apply(&client, &context, &text).await? {
            crate::say!("picket: context {context}: applied {object}");
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Writes one registry's results (as `registry list|tags` show them) to a ConfigMap.
async fn publish(store: &Store, config: &Config, name: &str, destination: &str) -> anyhow::Result<String> {
    let registry = overview::registries(&config.registries, store)?
        .into_iter()
        .find(|r| r.name == name)
        .with_context(|| format!("no registry named '{name}'"))?;
    let results = in_cluster::Published {
        published: jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_else(|_| jiff::Timestamp::now())
            .to_string(),
        tags: overview::tags(store, name)?,
        registry,
    };
    let (client, context) = crate::cluster::client_for(config.context.as_deref()).await?;
    let (namespace, map) = match destination.split_once('/') {
        Some((namespace, map)) => (namespace.to_string(), map.to_string()),
        None => (client.default_namespace().to_string(), destination.to_string()),
    };
    let bytes = in_cluster::publish(&client, &context, &namespace, &map, &results).await?;
    Ok(format!("context {context}: ConfigMap {namespace}/{map} ({bytes} bytes)"))
}

fn print_list(rows: Vec<overview::RegistryRow>, output: ListFormat) -> anyhow::Result<ExitCode> {
    if let ListFormat::Json = output {
        super::write_report(None, &serde_json::to_vec_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        crate::out!(
            "No registries: add one with `picket registry add URL`, or list them under registries: in config.yaml."
        )
        .context("cannot write to standard output")?;
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.name.clone(),
                row.target.url.clone(),
                match row.origin {
                    Origin::Config => "config".into(),
                    Origin::Added => "added".into(),
                    Origin::Cluster => "cluster".into(),
                },
                row.repositories.to_string(),
                row.tags.to_string(),
                severity_cells(&row.counts),
                row.new.to_string(),
                crawl_state(row.crawl.as_ref()),
            ]
        })
        .collect();
    print_table(&["NAME", "URL", "FROM", "REPOS", "TAGS", "C/H/M/L/U", "NEW", "LAST CRAWL"], &table)?;
    Ok(ExitCode::SUCCESS)
}

fn crawl_state(crawl: Option<&records::CrawlRecord>) -> String {
    match crawl {
        None => "never".into(),
        Some(c) => match &c.finished {
            Some(at) => at.clone(),
            None => {
                format!("stopped part-way ({} of {} repositories): the next scan resumes", c.done.len(), c.repositories)
            }
        },
    }
}

fn severity_cells(counts: &[usize; 5]) -> String {
    counts.iter().map(usize::to_string).collect::<Vec<_>>().join("/")
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([headers[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
        }
        out.trim_end().to_string()
    };
    crate::out!("{}", line(headers.to_vec())).context("cannot write to standard output")?;
    for row in rows {
        crate::out!("{}", line(row.iter().map(String::as_str).collect())).context("cannot write to standard output")?;
    }
    Ok(())
}

fn tags(store: &Store, config: &Config, name: &str, output: ListFormat) -> anyhow::Result<ExitCode> {
    if !overview::targets(&config.registries, store)?.iter().any(|(t, _)| t.display_name() == name) {
        anyhow::bail!("no registry named '{name}' (see picket registry list)");
    }
    print_tags(overview::tags(store, name)?, output)
}

fn print_tags(rows: Vec<overview::TagRow>, output: ListFormat) -> anyhow::Result<ExitCode> {
    if let ListFormat::Json = output {
        super::write_report(None, &serde_json::to_vec_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let r = &row.record;
            vec![
                r.repository.clone(),
                r.tag.clone(),
                short_digest(&r.digest),
                r.images.iter().map(|i| i.platform.clone()).collect::<Vec<_>>().join(","),
                r.checked.clone(),
                severity_cells(&row.counts),
                change(&row.new, &row.fixed),
            ]
        })
        .collect();
    print_table(&["REPOSITORY", "TAG", "DIGEST", "PLATFORMS", "CHECKED", "C/H/M/L/U", "LAST DB UPDATE"], &table)?;
    Ok(ExitCode::SUCCESS)
}

fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", hex.chars().take(12).collect::<String>())
}

fn change(new: &[String], fixed: &[String]) -> String {
    match (new.len(), fixed.len()) {
        (0, 0) => "-".into(),
        (n, 0) => format!("+{n}"),
        (0, f) => format!("-{f}"),
        (n, f) => format!("+{n} -{f}"),
    }
}

fn scan(store: &Store, config: &Config, args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let chosen = overview::chosen(&config.registries, store, &args.names).map_err(anyhow::Error::msg)?;
    let resolved = chosen
        .iter()
        .map(|t| t.resolve().map_err(|e| anyhow::anyhow!("registry {}: {e}", t.display_name())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let watch = match args.watch.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(text) => {
            Some(Some(crate::registry::target::parse_interval(text).map_err(|e| anyhow::anyhow!("--watch: {e}"))?))
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let scan_options =
        crate::scan::ScanOptions { limits: config.scan_limits, secrets: args.secrets, ..Default::default() };
    runtime.block_on(async {
        let mut next_due: Vec<tokio::time::Instant> = vec![tokio::time::Instant::now(); resolved.len()];
        loop {
            let mut worst = ExitCode::SUCCESS;
            for (index, target) in resolved.iter().enumerate() {
                if tokio::time::Instant::now() < next_due[index] {
                    continue;
                }
                let progress: crate::crawl::CrawlProgressFn = std::sync::Arc::new(|_| {});
                let crawl = Crawl { store, target, scan: scan_options.clone(), progress, page_size: crate::crawl::PAGE_SIZE };
                let outcome = crawl.run().await;
                if let Some(destination) = &args.publish_configmap {
                    match publish(store, config, &target.name, destination).await {
                        Ok(place) => crate::say!("picket: registry {}: results published to {place}", target.name),
                        Err(e) => {
                            crate::say!("picket: registry {}: results not published: {e}", target.name);
                            worst = ExitCode::from(super::EXIT_ERROR);
                        }
                    }
                }
                match outcome {
                    Ok(report) => {
                        print_report(&report, args.output)?;
                        // A failure elsewhere (exit 2) outranks a crawl left incomplete (exit 3).
                        if !report.complete() && worst == ExitCode::SUCCESS {
                            worst = ExitCode::from(super::bench::EXIT_INCOMPLETE);
                        }
                    }
                    Err(e) => {
                        crate::say!(
                            "picket: registry {}: crawl stopped: {e}; what it finished is kept, and the next scan resumes",
                            target.name
                        );
                        worst = ExitCode::from(super::EXIT_ERROR);
                    }
                }
                let every = watch.flatten().or(target.every).unwrap_or(DEFAULT_WATCH);
                next_due[index] = tokio::time::Instant::now() + every;
            }
            if watch.is_none() {
                return Ok(worst);
            }
            let Some(wake) = next_due.iter().min().copied() else { return Ok(worst) };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = tokio::signal::ctrl_c() => return Ok(worst),
            }
        }
    })
}

fn print_report(report: &CrawlReport, output: ListFormat) -> anyhow::Result<()> {
    if let ListFormat::Json = output {
        crate::out!("{}", serde_json::to_string(report)?).context("cannot write to standard output")?;
        return Ok(());
    }
    crate::say!(
        "picket: registry {}{}: {} repositories, {} tags: {} images scanned, {} tags moved to known images, {} unchanged; {} bytes pulled",
        report.registry,
        if report.resumed { " (resumed)" } else { "" },
        report.repositories,
        report.tags,
        report.scanned,
        report.retagged,
        report.unchanged,
        report.bytes
    );
    if report.repositories_skipped > 0 {
        crate::say!(
            "  {} repositories finished before the interruption were not crawled again",
            report.repositories_skipped
        );
    }
    for tag in &report.deleted_tags {
        crate::say!("  deleted from the registry: {tag}");
    }
    for repository in &report.deleted_repositories {
        crate::say!("  repository gone from the registry: {repository}");
    }
    for error in &report.errors {
        crate::say!("  not read: {error}");
    }
    if !report.errors.is_empty() {
        crate::say!("  {} tags were not read; the next scan tries them again", report.errors.len());
    }
    Ok(())
}

//! The only place that spawns: turns `Effect`s into tokio tasks whose results come back as
//! `Action`s. Tasks own what they use; nothing is shared with the UI but the channel.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use crate::agent::client::{self, Feed};
use crate::app::action::{Action, Effect, PluginRun, StoredSbom};
use crate::app::state::{
    AdmissionData, AdmissionRow, BenchDone, BenchKind, FindingsData, VulnDbSummary, WorkloadsData,
};
use crate::scan::{self, Limits, ScanOptions, SourceSpec};
use crate::store::Store;
use crate::vulndb::VulnDb;
use crate::{bench, cluster, engine, local};

pub mod policies;

pub struct Effects {
    tx: UnboundedSender<Action>,
    store: Arc<Store>,
    engine_candidates: Vec<PathBuf>,
    scan_limits: Limits,
    /// The user's custom cluster checks (`config_dir/checks`).
    checks_dir: PathBuf,
    /// One watched inventory per context, started when its workloads are first shown and kept
    /// for the console's life, so a refresh reads the stores instead of listing again.
    watches: ClusterWatches,
    /// The reader of the agent's socket (one at a time).
    agent_reader: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
    /// The reader of a context's agents (one context at a time).
    cluster_reader: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
    /// The agent the console started (it gets SIGTERM from the kernel when the console ends).
    agent_child: Arc<tokio::sync::Mutex<Option<tokio::process::Child>>>,
    /// Where a started agent's messages go.
    agent_log: PathBuf,
    /// Agent batches sent and not yet taken by the loop.
    agent_in_flight: client::InFlight,
    /// `registries:` of config.yaml (the store holds those added).
    registries: Arc<Vec<crate::registry::RegistryTarget>>,
    /// The admission rules in force for the dry run (`config_dir/admission`).
    admission_dir: PathBuf,
    /// The user's detection rules, where false positives write their exceptions.
    rules_dir: PathBuf,
    /// The response rules and their sinks' workers, when any are configured.
    responder: Option<Arc<crate::alert::outbox::Responder>>,
}

type ClusterWatches = Arc<tokio::sync::Mutex<std::collections::BTreeMap<String, Arc<cluster::watch::ClusterWatch>>>>;

/// How long the first sync of a context's inventory may take before the pane shows what it has.
const FIRST_SYNC: std::time::Duration = std::time::Duration::from_secs(30);

impl Effects {
    pub fn new(
        tx: UnboundedSender<Action>,
        store: Arc<Store>,
        engine_candidates: Vec<PathBuf>,
        scan_limits: Limits,
        checks_dir: PathBuf,
    ) -> Self {
        Self {
            tx,
            store,
            engine_candidates,
            scan_limits,
            checks_dir,
            watches: ClusterWatches::default(),
            agent_reader: Default::default(),
            cluster_reader: Default::default(),
            agent_child: Default::default(),
            agent_log: PathBuf::from("agent.log"),
            agent_in_flight: Default::default(),
            registries: Default::default(),
            admission_dir: PathBuf::from("admission"),
            rules_dir: PathBuf::from("rules"),
            responder: None,
        }
    }

    /// The response rules the agents' alerts go through.
    pub fn with_responder(mut self, responder: Option<Arc<crate::alert::outbox::Responder>>) -> Self {
        self.responder = responder;
        self
    }

    /// Where false positives write their rule exceptions (the rules directory agents read).
    pub fn with_rules_dir(mut self, dir: PathBuf) -> Self {
        self.rules_dir = dir;
        self
    }

    /// Where the Admission pane's dry run reads its rules.
    pub fn with_admission_rules(mut self, dir: PathBuf) -> Self {
        self.admission_dir = dir;
        self
    }

    /// The registries config.yaml names, for the Registries pane and its crawls.
    pub fn with_registries(mut self, registries: Vec<crate::registry::RegistryTarget>) -> Self {
        self.registries = Arc::new(registries);
        self
    }

    /// The loop took an agent batch off the channel: room for another.
    pub fn agent_lines_taken(&self) {
        use std::sync::atomic::Ordering;
        let _ = self.agent_in_flight.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// Where an agent the console starts writes its messages.
    pub fn with_agent_log(mut self, path: PathBuf) -> Self {
        self.agent_log = path;
        self
    }

    pub fn run(&self, effect: Effect) {
        let tx = self.tx.clone();
        // A send fails only when the loop has ended; the result is then no longer wanted.
        match effect {
            Effect::LoadHostFacts => {
                tokio::task::spawn_blocking(move || {
                    let _ = tx.send(Action::HostFacts(Box::new(local::host_facts())));
                });
            }
            Effect::LoadEngines => {
                let candidates = self.engine_candidates.clone();
                tokio::spawn(async move {
                    let sockets = engine::existing_sockets(&candidates);
                    let _ = tx.send(Action::Engines(engine::discover(&sockets).await));
                });
            }
            Effect::LoadContexts => {
                tokio::task::spawn_blocking(move || {
                    let _ = tx.send(Action::Contexts(cluster::contexts_from_env().map_err(|e| e.to_string())));
                });
            }
            Effect::LoadStoreSize => {
                let store = Arc::clone(&self.store);
                tokio::task::spawn_blocking(move || {
                    let _ = tx.send(Action::StoreSize(store.size_on_disk().map_err(|e| e.to_string())));
                });
            }
            Effect::InspectContainer { request, socket, id } => {
                tokio::spawn(async move {
                    let result = engine::inspect(&socket, &id).await.map(Box::new).map_err(|e| e.to_string());
                    let _ = tx.send(Action::ContainerDetail { request, result });
                });
            }
            Effect::RunPlugin(run) => {
                tokio::spawn(async move {
                    let name = run.name.clone();
                    let _ = tx.send(Action::PluginFinished { name, result: run_background(run).await });
                });
            }
            Effect::LoadStoredSboms => {
                let store = Arc::clone(&self.store);
                tokio::task::spawn_blocking(move || {
                    let _ = tx.send(Action::StoredSboms(stored_sboms(&store)));
                });
            }
            Effect::LoadSbom { request, key } => {
                let store = Arc::clone(&self.store);
                tokio::task::spawn_blocking(move || {
                    let result = scan::stored::get(&store, &key)
                        .map_err(|e| e.to_string())
                        .and_then(|found| found.map(Arc::new).ok_or_else(|| format!("no stored SBOM {key}")));
                    let _ = tx.send(Action::SbomLoaded { request, result });
                });
            }
            Effect::ScanImage { request, name, kind, socket } => {
                let store = Arc::clone(&self.store);
                // The inventory with secrets, kept; the Findings pane assesses it as `picket scan` does.
                let options = scan::RunOptions {
                    inventory: ScanOptions { limits: self.scan_limits, ..ScanOptions::default() },
                    assessment: scan::Assessment { vulns: false, ..scan::Assessment::default() },
                    keep: true,
                    engine_sockets: vec![socket],
                };
                tokio::spawn(async move {
                    let progress_tx = tx.clone();
                    let progress: scan::ProgressFn = Arc::new(move |progress| {
                        let _ = progress_tx.send(Action::ScanProgress { request, progress });
                    });
                    let spec = SourceSpec::Engine { kind: Some(kind), name: name.clone() };
                    let result = match scan::run(&store, spec, options, progress).await {
                        Ok(scanned) => scanned
                            .sbom
                            .as_ref()
                            .map(|sbom| StoredSbom::of(sbom.store_key(), sbom))
                            .ok_or_else(|| "the scan produced no inventory".to_string()),
                        Err(err) => Err(err.to_string()),
                    };
                    let _ = tx.send(Action::ScanFinished { request, name, result });
                });
            }
            Effect::LoadVulnDb => {
                let store = Arc::clone(&self.store);
                tokio::task::spawn_blocking(move || {
                    let _ = tx.send(Action::VulnDb(vulndb_summary(&store)));
                });
            }
            Effect::LoadFindings { request, key, ignore_path } => {
                let store = Arc::clone(&self.store);
                tokio::task::spawn_blocking(move || {
                    let result = load_findings(&store, &key, &ignore_path).map(Arc::new);
                    let _ = tx.send(Action::FindingsLoaded { request, result });
                });
            }
            Effect::AcceptFinding { path, id, package, reason, expires } => {
                tokio::task::spawn_blocking(move || {
                    let result = crate::gate::ignorefile::append(&path, &id, package.as_deref(), &reason, expires)
                        .map(|()| path.display().to_string())
                        .map_err(|e| format!("cannot write {}: {e}", path.display()));
                    let _ = tx.send(Action::FindingAccepted { id, result });
                });
            }
            Effect::RunBench { request, kind, context } => {
                let candidates = self.engine_candidates.clone();
                let checks_dir = self.checks_dir.clone();
                tokio::spawn(async move {
                    let result = run_bench(kind, &candidates, context.as_deref(), checks_dir).await.map(Arc::new);
                    let _ = tx.send(Action::BenchFinished { request, kind, result });
                });
            }
            Effect::LoadInventory { request, context } => {
                tokio::spawn(load_inventory(tx, request, context, self.watches.clone(), Arc::clone(&self.store)));
            }
            Effect::ConnectAgent { conn, socket, wait } => {
                let feed = forward(tx, conn, Arc::clone(&self.store), self.responder.clone());
                let task = tokio::spawn(client::read_agent(feed, socket, wait, self.agent_in_flight.clone()));
                if let Ok(mut reader) = self.agent_reader.lock()
                    && let Some(previous) = reader.replace(task.abort_handle())
                {
                    previous.abort();
                }
            }
            Effect::ConnectClusterAgents { conn, context } => {
                let feed = forward(tx, conn, Arc::clone(&self.store), self.responder.clone());
                let task = tokio::spawn(client::read_cluster_agents(feed, context, self.agent_in_flight.clone()));
                if let Ok(mut reader) = self.cluster_reader.lock()
                    && let Some(previous) = reader.replace(task.abort_handle())
                {
                    previous.abort();
                }
            }
            Effect::StartAgent { socket } => {
                let log = self.agent_log.clone();
                let slot = Arc::clone(&self.agent_child);
                tokio::spawn(async move {
                    let result = match client::start_agent(&socket, &log).await {
                        Ok((started, child)) => {
                            // Kept to be reaped; an earlier one had stopped (a second start is
                            // refused while an agent serves).
                            *slot.lock().await = Some(child);
                            Ok(started)
                        }
                        Err(err) => Err(err),
                    };
                    let _ = tx.send(Action::AgentStarted(result));
                });
            }
            Effect::DeployAgent { context } => {
                tokio::spawn(async move {
                    let result = client::deploy(context.clone()).await;
                    let _ = tx.send(Action::AgentDeployed { context, result });
                });
            }
            Effect::CaptureAlert { id, dir } => {
                let store = Arc::clone(&self.store);
                let sockets = self.engine_candidates.clone();
                tokio::spawn(async move {
                    let result = capture_alert(&store, &id, &dir, &sockets).await;
                    let _ = tx.send(Action::ForensicsDone(result));
                });
            }
            Effect::QuarantineAlert { id, socket } => {
                let store = Arc::clone(&self.store);
                let sockets = self.engine_candidates.clone();
                tokio::spawn(async move {
                    let result = async {
                        use crate::alert::actions::{ActionContext, ActionLog, Requested, perform};
                        let detail = crate::alert::detail::find(&store, &id, crate::alert::now_unix_ms())?;
                        let log = ActionLog::open(&store).map_err(|e| e.to_string())?;
                        let context =
                            ActionContext { agent_socket: socket, ..ActionContext::local(sockets, ".".into()) };
                        let by = format!("by hand ({})", crate::alert::triage::current_user());
                        let record = perform(&log, &context, &detail.alert, &by, &Requested::Quarantine)
                            .await
                            .map_err(|e| e.to_string())?;
                        match record.done {
                            true => Ok(format!("{} (action {})", record.outcome, record.id)),
                            false => Err(format!("{}: {}", record.target, record.outcome)),
                        }
                    }
                    .await;
                    let _ = tx.send(Action::ForensicsDone(result));
                });
            }
            Effect::UndoActions { id } => {
                let store = Arc::clone(&self.store);
                tokio::spawn(async move {
                    let result = async {
                        let detail = crate::alert::detail::find(&store, &id, crate::alert::now_unix_ms())?;
                        let log = crate::alert::actions::ActionLog::open(&store).map_err(|e| e.to_string())?;
                        crate::alert::actions::undo_fold(&log, &detail).await
                    }
                    .await;
                    let _ = tx.send(Action::ForensicsDone(result));
                });
            }
            Effect::BundleAlert { id, dir } => {
                let store = Arc::clone(&self.store);
                tokio::task::spawn_blocking(move || {
                    let out = dir.join(format!("incident-{id}-{}.tar.gz", crate::alert::now_unix_ms() / 1000));
                    let result = crate::alert::bundle::write_bundle(&store, &id, 600_000, &[], &out)
                        .map(|m| format!("incident bundle ({} files) written to {}", m.files.len() + 1, out.display()));
                    let _ = tx.send(Action::ForensicsDone(result));
                });
            }
            Effect::LoadRisk { request, context } => {
                tokio::spawn(load_risk(tx, request, context, self.watches.clone(), Arc::clone(&self.store)));
            }
            Effect::LoadSinkStatus => {
                let status = self.responder.as_ref().map(|r| r.status()).unwrap_or_default();
                let _ = tx.send(Action::SinkStatus(status));
            }
            Effect::LoadAlerts { request } => {
                let store = Arc::clone(&self.store);
                tokio::task::spawn_blocking(move || {
                    let result = load_alerts(&store).map(Box::new);
                    let _ = tx.send(Action::AlertsLoaded { request, result });
                });
            }
            Effect::LoadAlertDetail { id } => {
                let store = Arc::clone(&self.store);
                tokio::task::spawn_blocking(move || {
                    let result =
                        crate::alert::detail::find(&store, &id, crate::alert::now_unix_ms()).map(|d| d.lines());
                    let _ = tx.send(Action::AlertDetailLoaded { id, result });
                });
            }
            Effect::TriageAlert { key, record, said } => {
                let store = Arc::clone(&self.store);
                tokio::task::spawn_blocking(move || {
                    let result = triage_alert(&store, &key, record.as_ref()).map(|triage| (triage, said));
                    let _ = tx.send(Action::AlertTriaged(result));
                });
            }
            Effect::ProposeFalsePositive { id } => {
                let store = Arc::clone(&self.store);
                let rules_dir = self.rules_dir.clone();
                tokio::task::spawn_blocking(move || {
                    let result =
                        crate::alert::detail::find(&store, &id, crate::alert::now_unix_ms()).and_then(|detail| {
                            crate::alert::exception::propose(&detail.alert, &rules_dir).map(|p| (detail.key, p))
                        });
                    let _ = tx.send(Action::FalsePositiveProposed(result));
                });
            }
            Effect::WriteFalsePositive { key, proposed } => {
                let store = Arc::clone(&self.store);
                tokio::task::spawn_blocking(move || {
                    let result = proposed.write().and_then(|()| {
                        let record = crate::alert::triage::TriageRecord::FalsePositive {
                            at_ms: crate::alert::now_unix_ms(),
                            by: crate::alert::triage::current_user(),
                            file: proposed.path.display().to_string(),
                        };
                        let said = format!(
                            "exception written to {}: agents apply it when they next start",
                            proposed.path.display()
                        );
                        triage_alert(&store, &key, Some(&record)).map(|triage| (triage, said))
                    });
                    let _ = tx.send(Action::AlertTriaged(result));
                });
            }
            Effect::LoadAdmission { request, context } => {
                let store = Arc::clone(&self.store);
                let dir = self.admission_dir.clone();
                let watches = self.watches.clone();
                tokio::spawn(async move {
                    let result = load_admission(context, store, dir, watches).await.map(Arc::new);
                    let _ = tx.send(Action::AdmissionLoaded { request, result });
                });
            }
            Effect::LoadBaselines { request, socket } => {
                tokio::spawn(async move {
                    let asked = client::ask_local_agent(&socket, &crate::agent::wire::Request::Baselines).await;
                    let result = asked.map(|reply| reply.baselines.unwrap_or_default());
                    let _ = tx.send(Action::BaselinesLoaded { request, result });
                    let result = client::modes(&socket).await;
                    let _ = tx.send(Action::ModesLoaded { request, result });
                });
            }
            Effect::SetGroupMode { socket, group, mode } => {
                tokio::spawn(async move {
                    let result = client::set_mode(&socket, &group, mode).await;
                    let _ = tx.send(Action::GroupChanged { result });
                });
            }
            Effect::AcceptViolation { socket, group, violation } => {
                tokio::spawn(async move {
                    let result = client::accept_violations(&socket, &group, std::slice::from_ref(&violation)).await;
                    let _ = tx.send(Action::GroupChanged { result });
                });
            }
            Effect::LoadRegistries { request, context } => {
                let (store, configured) = (Arc::clone(&self.store), Arc::clone(&self.registries));
                let local = tx.clone();
                tokio::task::spawn_blocking(move || {
                    let result = crate::crawl::overview::registries(&configured, &store).map_err(|e| e.to_string());
                    let _ = local.send(Action::RegistriesLoaded { request, result });
                });
                if let Some(context) = context {
                    tokio::spawn(async move {
                        let result = published_registries(&context).await;
                        let _ = tx.send(Action::ClusterRegistriesLoaded { request, result });
                    });
                }
            }
            Effect::LoadRegistryTags { request, name } => {
                let store = Arc::clone(&self.store);
                tokio::task::spawn_blocking(move || {
                    let result = crate::crawl::overview::tags(&store, &name).map_err(|e| e.to_string());
                    let _ = tx.send(Action::RegistryTagsLoaded { request, result });
                });
            }
            Effect::CrawlRegistry { request, name } => {
                let (store, configured) = (Arc::clone(&self.store), Arc::clone(&self.registries));
                let scan = ScanOptions { limits: self.scan_limits, ..ScanOptions::default() };
                // The crawl's future is not Send (its stream combinators borrow across awaits), so
                // it runs on a blocking thread that drives it on this runtime.
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    let crawl = crawl_registry(tx.clone(), request, &name, &store, &configured, scan);
                    let result = runtime.block_on(crawl);
                    let _ = tx.send(Action::CrawlFinished { request, name, result });
                });
            }
            Effect::LoadPolicies { request, socket } => {
                let store = Arc::clone(&self.store);
                tokio::spawn(async move {
                    let result = policies::load(store, socket).await;
                    let _ = tx.send(Action::PoliciesLoaded { request, result });
                });
            }
            Effect::CheckPolicy { request, text } => {
                tokio::task::spawn_blocking(move || {
                    let _ = tx.send(Action::PolicyChecked { request, problems: policies::check(&text) });
                });
            }
            Effect::ApplyPolicy { request, target, text } => {
                let store = Arc::clone(&self.store);
                tokio::spawn(async move {
                    let result = policies::apply(store, target, text).await;
                    let _ = tx.send(Action::PolicyApplied { request, result });
                });
            }
            Effect::EditExternally { text } => {
                // The loop runs it on the terminal; here it can only be refused.
                let _ = tx.send(Action::EditedExternally(Err(format!(
                    "$EDITOR needs the terminal ({} bytes left unchanged)",
                    text.len()
                ))));
            }
            Effect::ExpireToast { id, after } => {
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = tx.send(Action::ExpireToast(id));
                });
            }
        }
    }
}

/// What cluster crawl jobs published in `context` (every namespace the user may list).
async fn published_registries(context: &str) -> Result<Vec<crate::crawl::in_cluster::Published>, String> {
    let read = async {
        let (client, name) = cluster::client_for(Some(context)).await.map_err(|e| e.to_string())?;
        let (published, unreadable) =
            crate::crawl::in_cluster::read_published(&client, &name, None).await.map_err(|e| e.to_string())?;
        match unreadable.first() {
            Some(why) if published.is_empty() => Err(why.clone()),
            _ => Ok(published),
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read)
        .await
        .unwrap_or_else(|_| Err(format!("context {context}: the API server did not answer within 20s")))
}

/// One crawl from the console: the same target lookup and crawl as `picket registry scan NAME`,
/// its progress sent at most ten times a second.
async fn crawl_registry(
    tx: UnboundedSender<Action>,
    request: u64,
    name: &str,
    store: &Store,
    configured: &[crate::registry::RegistryTarget],
    scan: ScanOptions,
) -> Result<crate::crawl::CrawlReport, String> {
    let target = crate::crawl::overview::chosen(configured, store, &[name.to_string()])?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no registry named '{name}'"))?;
    let resolved = target.resolve().map_err(|e| format!("registry {name}: {e}"))?;
    let last_sent = std::sync::Mutex::new(std::time::Instant::now() - std::time::Duration::from_secs(1));
    let owned_name = name.to_string();
    let progress: crate::crawl::CrawlProgressFn = Arc::new(move |progress| {
        let Ok(mut last) = last_sent.lock() else { return };
        if last.elapsed() >= std::time::Duration::from_millis(100) {
            *last = std::time::Instant::now();
            let _ = tx.send(Action::CrawlProgress { request, name: owned_name.clone(), progress: progress.clone() });
        }
    });
    let crawl = crate::crawl::Crawl { store, target: &resolved, scan, progress, page_size: crate::crawl::PAGE_SIZE };
    crawl.run().await.map_err(|e| e.to_string())
}

/// Hands an agent reader's feed to the loop as actions of connection `conn`, keeping its alerts
/// in the store and queueing what the response rules say first; ends when either side does.
fn forward(
    tx: UnboundedSender<Action>,
    conn: u64,
    store: Arc<Store>,
    responder: Option<Arc<crate::alert::outbox::Responder>>,
) -> UnboundedSender<Feed> {
    let (feed_tx, mut feed_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let log = crate::alert::AlertLog::open(&store).map_err(|e| e.to_string());
        while let Some(feed) = feed_rx.recv().await {
            let action = match feed {
                Feed::Lines { events, unreadable } => {
                    let kept = match &log {
                        Ok(log) => crate::alert::keep_and_respond(log, responder.as_deref(), &events).map(|_| ()),
                        Err(e) => Err(e.clone()),
                    };
                    if let Err(e) = kept {
                        let _ = tx.send(Action::AlertsNotKept(e));
                    }
                    Action::AgentLines { conn, events, unreadable }
                }
                Feed::Down { reason } => Action::AgentDown { conn, reason },
                Feed::PodsListed(result) => Action::ClusterAgentsListed { conn, result },
                Feed::PodDown { pod, reason } => Action::ClusterAgentDown { conn, pod, reason },
            };
            if tx.send(action).is_err() {
                break;
            }
        }
    });
    feed_tx
}

/// Runs one benchmark as `picket bench docker|node|k8s` does with no flags: the engines found,
/// the root `/`, the shipped and the user's custom checks.
async fn run_bench(
    kind: BenchKind,
    candidates: &[PathBuf],
    context: Option<&str>,
    checks_dir: PathBuf,
) -> Result<BenchDone, String> {
    let done = match kind {
        BenchKind::Docker => {
            let options =
                bench::docker::DockerOptions { socket: None, candidates: candidates.to_vec(), root: "/".into() };
            bench::docker::run(&options).await
        }
        BenchKind::Node => bench::node::run(std::path::Path::new("/")).await,
        BenchKind::Cluster => {
            let options = bench::k8s::K8sOptions {
                context: context.map(str::to_string),
                check_dirs: vec![checks_dir],
                required_check_dirs: Vec::new(),
                list: Default::default(),
            };
            bench::k8s::run(&options).await
        }
    };
    done.map(|done| BenchDone::new(done.report, done.notes)).map_err(|e| e.to_string())
}

/// The context's watched inventory (its watch started on first use; the first call waits for
/// the first sync) and what to warn about; an error when nothing could be listed.
async fn watched_inventory(
    watches: &ClusterWatches,
    context: Option<&str>,
) -> Result<(crate::cluster::inventory::Inventory, Vec<String>), String> {
    let watch = watch_of(watches, context).await?;
    let synced = watch.ready(FIRST_SYNC).await;
    let inventory = watch.snapshot();
    let mut warnings = watch.errors();
    if inventory.namespaces.is_empty() && inventory.pods.is_empty() && !warnings.is_empty() {
        return Err(format!("context {}: {}", watch.context(), warnings.join("; ")));
    }
    if !synced {
        warnings.push(format!("not every kind was listed within {}s; showing what has arrived", FIRST_SYNC.as_secs()));
    }
    Ok((inventory, warnings))
}

/// The Workloads pane's data: the context's inventory, its pod-security checks, a row per
/// workload. The inventory comes from the context's watch (started on first use): the first
/// call waits for its first sync, later ones read its stores.
async fn load_inventory(
    tx: UnboundedSender<Action>,
    request: u64,
    context: Option<String>,
    watches: ClusterWatches,
    store: Arc<Store>,
) {
    let result = async {
        let (inventory, warnings) = watched_inventory(&watches, context.as_deref()).await?;
        tokio::task::spawn_blocking(move || {
            let (rows, report) = bench::k8s::summary::judged_workloads(&inventory, &store);
            WorkloadsData {
                context: inventory.context.clone(),
                rows,
                report: Arc::new(report),
                warnings: inventory
                    .unlisted
                    .iter()
                    .map(|f| format!("cannot {} ({})", f.needs(), f.message))
                    .chain(warnings)
                    .collect(),
            }
        })
        .await
        .map_err(|e| format!("the inventory task failed: {e}"))
    }
    .await;
    let _ = tx.send(Action::InventoryLoaded { request, result: result.map(Arc::new) });
}

/// The context's watched inventory, started the first time it is asked for and kept.
async fn watch_of(
    watches: &ClusterWatches,
    context: Option<&str>,
) -> Result<Arc<cluster::watch::ClusterWatch>, String> {
    let key = context.unwrap_or_default().to_string();
    let mut watches = watches.lock().await;
    if let Some(watch) = watches.get(&key) {
        return Ok(Arc::clone(watch));
    }
    let (client, name) = cluster::client_for(context).await.map_err(|e| e.to_string())?;
    let watch = Arc::new(cluster::watch::ClusterWatch::start_discovered(client, &name).await);
    watches.insert(key, Arc::clone(&watch));
    Ok(watch)
}

/// 30 s of an alert's container's traffic into `dir`: the container found on a local engine by
/// the alert's container id, its first process's network namespace captured.
async fn capture_alert(
    store: &Store,
    id: &str,
    dir: &std::path::Path,
    candidates: &[PathBuf],
) -> Result<String, String> {
    let detail = crate::alert::detail::find(store, id, crate::alert::now_unix_ms())?;
    let container = detail.alert.container.clone().ok_or("the alert is from the host, not a container")?;
    let mut pid = None;
    for socket in crate::engine::existing_sockets(candidates) {
        if let Ok(found) = crate::engine::inspect(&socket, &container.id).await
            && found.pid > 0
        {
            pid = u32::try_from(found.pid).ok();
            break;
        }
    }
    let pid = pid.ok_or_else(|| {
        format!(
            "container {} is not running on a local engine here (capture on its node: picket respond capture)",
            detail.fold.container
        )
    })?;
    let out = dir.join(format!("capture-{}-{}.pcap", detail.fold.id, crate::alert::now_unix_ms() / 1000));
    let spec = crate::alert::capture::CaptureSpec {
        pid,
        duration: std::time::Duration::from_secs(30),
        max_bytes: 100 << 20,
        filter: crate::alert::capture::Filter::default(),
    };
    let summary = tokio::task::spawn_blocking(move || crate::alert::capture::capture(&spec, &out))
        .await
        .map_err(|e| e.to_string())??;
    Ok(format!("{} packets captured to {}", summary.packets, summary.file.display()))
}

/// The Risk pane's scores: the context's watched inventory, the stored scans and the open
/// alerts and the agents' baselines, through `risk::gather::score_cluster` as `picket risk` does.
async fn load_risk(
    tx: UnboundedSender<Action>,
    request: u64,
    context: Option<String>,
    watches: ClusterWatches,
    store: Arc<Store>,
) {
    let result = async {
        let (inventory, mut warnings) = watched_inventory(&watches, context.as_deref()).await?;
        let client = watch_of(&watches, context.as_deref()).await?.client();
        let (baselines, unread) = crate::risk::gather::read_baselines(&client).await;
        warnings.extend(unread);
        tokio::task::spawn_blocking(move || {
            let folds = crate::alert::open_folds(&store).map_err(|e| e.to_string())?;
            let scores = crate::risk::gather::score_cluster(&inventory, &store, &folds, &baselines);
            Ok(crate::app::state::RiskData { context: inventory.context.clone(), scores, warnings })
        })
        .await
        .map_err(|e| e.to_string())?
    }
    .await;
    let _ = tx.send(Action::RiskLoaded { request, result: result.map(Arc::new) });
}

/// The newest kept alerts and the triage records, folded for the Alerts pane.
fn load_alerts(store: &Store) -> Result<crate::app::state::AlertsLoad, String> {
    let alerts = crate::alert::AlertLog::open(store)
        .and_then(|log| log.newest(crate::app::state::alerts::LOADED))
        .map_err(|e| format!("reading the kept alerts: {e}"))?;
    let triage = crate::alert::triage::TriageLog::open(store)
        .and_then(|log| log.load(crate::alert::now_unix_ms()))
        .map_err(|e| format!("reading the triage records: {e}"))?;
    Ok(crate::app::state::AlertsLoad::of(&alerts, triage))
}

/// Writes (or removes) a fold's triage record; every record after.
fn triage_alert(
    store: &Store,
    key: &str,
    record: Option<&crate::alert::triage::TriageRecord>,
) -> Result<crate::alert::triage::Triage, String> {
    let log = crate::alert::triage::TriageLog::open(store).map_err(|e| e.to_string())?;
    match record {
        Some(record) => log.set(key, record).map_err(|e| format!("keeping the triage record: {e}"))?,
        None => {
            log.reopen(key).map_err(|e| format!("removing the triage record: {e}"))?;
        }
    }
    log.load(crate::alert::now_unix_ms()).map_err(|e| e.to_string())
}

/// The Admission pane's rows: the webhook's stored decisions, newest first, then the dry run of
/// the rules in `dir` over the context's workloads (the same watch the Workloads pane reads).
async fn load_admission(
    context: Option<String>,
    store: Arc<Store>,
    dir: PathBuf,
    watches: ClusterWatches,
) -> Result<AdmissionData, String> {
    use crate::admission::{Judge, dry_run, images::StoredScans, rules, server};
    let mut data = AdmissionData::default();
    let stored = {
        let store = Arc::clone(&store);
        tokio::task::spawn_blocking(move || server::stored_decisions(&store, 500))
            .await
            .map_err(|e| format!("the store task failed: {e}"))?
    };
    match stored {
        Ok(records) => data.rows.extend(records.into_iter().rev().map(AdmissionRow::of_record)),
        Err(e) => data.notes.push(format!("stored decisions cannot be read: {e}")),
    }
    // The webhook of the context, live, through the API server's proxy.
    if let Ok((client, name)) = &cluster::client_for(context.as_deref()).await {
        let namespace = crate::admission::install::DEFAULT_NAMESPACE;
        match crate::admission::remote::decisions(client, name, namespace, 500).await {
            Ok(records) => data.rows.extend(records.into_iter().rev().map(AdmissionRow::of_record)),
            Err(e) => data.notes.push(format!("no webhook decisions: {e}")),
        }
    }
    let files = crate::yaml::files_in(&dir, false).map_err(|e| e.to_string())?;
    if files.is_empty() {
        data.rules = format!("no rules in {}", dir.display());
        data.notes.push(format!("put admission rules in {} for the dry run over running workloads", dir.display()));
        return Ok(data);
    }
    let rules = match rules::load(&files) {
        Ok(rules) => rules,
        Err(problems) => {
            data.rules = format!("rules in {} have mistakes", dir.display());
            data.notes.extend(problems.iter().map(ToString::to_string));
            return Ok(data);
        }
    };
    data.rules = format!("{} rules from {}", rules.rules.len(), dir.display());
    let scans = rules.needs_scan().then(|| Arc::new(StoredScans::new(Arc::clone(&store))));
    let mut judge = Judge::new(rules, scans);
    judge.own_namespace = Some(crate::admission::install::DEFAULT_NAMESPACE.to_string());
    let watch = match watch_of(&watches, context.as_deref()).await {
        Ok(watch) => watch,
        Err(e) => {
            data.notes.push(format!("no dry run: {e}"));
            return Ok(data);
        }
    };
    if !watch.ready(FIRST_SYNC).await {
        data.notes.push(format!("not every kind was listed within {}s; judged what has arrived", FIRST_SYNC.as_secs()));
    }
    let inventory = watch.snapshot();
    data.notes.extend(watch.errors());
    for outcome in dry_run::judge_inventory(&judge, &inventory).await {
        data.rows.push(AdmissionRow::of_dry_run(outcome));
    }
    Ok(data)
}

/// Finding counts of the running images that have a stored SBOM (from `picket cluster scan` or
/// a scan of the same digest), matched against the current database. Images without one, or a
/// database that cannot be read, are left out: the pane says "not scanned".
fn vulndb_summary(store: &Store) -> Result<VulnDbSummary, String> {
    let sources = VulnDb::open(store).and_then(|db| db.sources()).map_err(|e| e.to_string())?;
    let now = jiff::Timestamp::now();
    let oldest_age = sources
        .iter()
        .filter_map(|s| s.updated_at.parse::<jiff::Timestamp>().ok())
        .map(|t| u64::try_from((now - t).get_seconds()).unwrap_or(0))
        .max();
    Ok(VulnDbSummary { sources: sources.len(), advisories: sources.iter().map(|s| s.advisories).sum(), oldest_age })
}

/// The findings of a stored SBOM, assessed as `picket scan` assesses it with no flags:
/// vulnerabilities, the secrets found when it was scanned, and the exceptions file.
fn load_findings(store: &Store, key: &str, ignore_path: &std::path::Path) -> Result<FindingsData, String> {
    let sbom =
        scan::stored::get(store, key).map_err(|e| e.to_string())?.ok_or_else(|| format!("no stored SBOM {key}"))?;
    let assessment = scan::Assessment {
        exceptions: scan::ExceptionFiles {
            ignorefile: scan::ExceptionFiles::present(ignore_path.to_path_buf()),
            vex: Vec::new(),
        },
        ..scan::Assessment::default()
    };
    let scanned = scan::assess(store, sbom, &assessment).map_err(|e| e.to_string())?;
    Ok(FindingsData { findings: scanned.findings, suppressed: scanned.suppressed, databases: scanned.databases })
}

fn stored_sboms(store: &Store) -> Result<Vec<StoredSbom>, String> {
    let entries = scan::stored::list(store).map_err(|e| e.to_string())?;
    Ok(entries.into_iter().map(|(key, sbom)| StoredSbom::of(key, &sbom)).collect())
}

/// Runs a background plugin with its output captured; the result is a one-line summary.
async fn run_background(run: PluginRun) -> Result<String, String> {
    let output = tokio::process::Command::new(&run.command)
        .args(&run.args)
        .envs(&run.env)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run '{}': {e}", run.command))?;
    let last_line = |bytes: &[u8]| String::from_utf8_lossy(bytes).lines().last().unwrap_or_default().trim().to_string();
    if output.status.success() {
        Ok(format!("done ({})", last_line(&output.stdout)).replace(" ()", ""))
    } else {
        Err(format!("failed ({}): {}", output.status, last_line(&output.stderr)))
    }
}

/// Runs a foreground plugin on the real terminal, which the caller has suspended.
pub async fn run_foreground(run: &PluginRun) -> Result<String, String> {
    let status = tokio::process::Command::new(&run.command)
        .args(&run.args)
        .envs(&run.env)
        .status()
        .await
        .map_err(|e| format!("cannot run '{}': {e}", run.command))?;
    if status.success() { Ok("done".into()) } else { Err(format!("exited with {status}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(command: &str, args: &[&str]) -> PluginRun {
        PluginRun {
            name: "t".into(),
            description: "t".into(),
            command: command.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: [("NAME".to_string(), "web".to_string())].into(),
            background: true,
        }
    }

    #[tokio::test]
    async fn benchmarks_that_cannot_start_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nobody.sock");
        let err = run_bench(BenchKind::Docker, std::slice::from_ref(&missing), None, dir.path().into()).await;
        let err = err.unwrap_err();
        assert!(err.starts_with("no container engine socket found") && err.contains("nobody.sock"), "{err}");
        // A broken custom check is named before any cluster is asked.
        std::fs::write(dir.path().join("bad.yaml"), "checks: [{ id: X, title: t, target: Pod, expression: '1 +' }]")
            .unwrap();
        let err = run_bench(BenchKind::Cluster, &[], Some("nowhere"), dir.path().into()).await.unwrap_err();
        assert!(err.starts_with("custom checks: ") && err.contains("bad.yaml"), "{err}");
    }

    #[tokio::test]
    async fn background_plugin_reports_output_and_failures() {
        assert_eq!(run_background(run("sh", &["-c", "echo hello $NAME"])).await, Ok("done (hello web)".into()));
        let err = run_background(run("sh", &["-c", "echo oops >&2; exit 3"])).await.unwrap_err();
        assert!(err.contains("oops") && err.contains('3'), "{err}");
        let err = run_background(run("/nonexistent/tool", &[])).await.unwrap_err();
        assert!(err.contains("'/nonexistent/tool'"), "{err}");
    }
}

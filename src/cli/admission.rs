//! `picket admission …`: the webhook (`serve`), its objects (`install`), the same decision
//! offline (`test`), rule checks (`validate`) and the decisions kept (`decisions`). Exit codes:
//! 0 allowed or valid, 1 denied or invalid rules, 2 error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;

use crate::admission::decide::Verdict;
use crate::admission::images::StoredScans;
use crate::admission::install::{self, Certificates, Endpoint, FailurePolicy, InstallOptions};
use crate::admission::offline::{self, Judged};
use crate::admission::rules::{self, RuleSet};
use crate::admission::{Judge, server};
use crate::config::Config;
use crate::store::Store;

pub const NAMESPACE: &str = install::DEFAULT_NAMESPACE;
/// How often the webhook lists the cluster's roles and bindings again.
const RBAC_REFRESH: Duration = Duration::from_secs(60);

#[derive(Debug, Subcommand)]
pub enum AdmissionCommand {
    /// Run the validating webhook over HTTPS (POST /validate, GET /healthz)
    Serve {
        #[command(flatten)]
        rules: RulesArgs,
        /// Address to listen on
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
        listen: String,
        /// The serving certificate (PEM; `picket admission install` makes one)
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The webhook's own namespace: never judged
        #[arg(long, value_name = "NAMESPACE", default_value = NAMESPACE)]
        namespace: String,
        /// Write the bound port to FILE once listening (with --listen …:0)
        #[arg(long, value_name = "FILE")]
        port_file: Option<PathBuf>,
        /// Serve the last decisions at GET /decisions to callers with the token in FILE
        #[arg(long, value_name = "FILE")]
        decisions_token_file: Option<PathBuf>,
        /// Response rules and sinks (docs/alerts.md): denials and warnings are `admission` events
        #[arg(long, value_name = "DIR")]
        response: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Decide on YAML manifests offline, as the webhook would; exit 1 when one is denied
    Test {
        #[command(flatten)]
        rules: RulesArgs,
        /// Manifests (multi-document YAML; `-` for standard input)
        #[arg(required = true, value_name = "MANIFEST")]
        manifests: Vec<PathBuf>,
        /// The namespace of objects that name none
        #[arg(long, value_name = "NAMESPACE", default_value = "default")]
        namespace: String,
        /// The webhook's own namespace, never judged (as `serve --namespace`)
        #[arg(long, value_name = "NAMESPACE", default_value = NAMESPACE)]
        webhook_namespace: String,
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Check rules files; exit 1 on any mistake, each named with file:line:col
    Validate {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print the webhook's objects (Namespace, RBAC, TLS Secret, Deployment, Service,
    /// ValidatingWebhookConfiguration) as YAML for kubectl apply; certificates are made in
    /// --cert-dir unless it holds them
    Install {
        #[arg(long, value_name = "NAMESPACE", default_value = NAMESPACE)]
        namespace: String,
        /// The picket image the Deployment runs
        #[arg(long, value_name = "IMAGE", default_value = "picket:latest")]
        image: String,
        /// Reach the webhook at URL instead of the in-cluster Service; prints only the
        /// ValidatingWebhookConfiguration
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Where the CA and serving certificate are kept
        #[arg(long, value_name = "DIR")]
        cert_dir: PathBuf,
        /// More names or addresses for the serving certificate (with --url)
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
        /// What the API server does when the webhook cannot answer
        #[arg(long, value_enum, default_value_t = FailurePolicy::Ignore)]
        failure_policy: FailurePolicy,
        /// Seconds the API server waits for an answer (1 to 30)
        #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=30))]
        timeout: i32,
        /// Namespaces the webhook is never called for, besides its own
        #[arg(long = "exempt", value_name = "NAMESPACE", default_values_t = rules::default_exempt())]
        exempt: Vec<String>,
        /// Apply the objects to the current context (server-side apply) instead of printing them
        #[arg(long)]
        apply: bool,
    },
    /// Write the deny rules that need no scan data as Kubernetes ValidatingAdmissionPolicy
    /// objects with their bindings (YAML for kubectl apply; clusters v1.30 and later); the
    /// rules left out are named on standard error with the reason
    Export {
        #[command(flatten)]
        rules: RulesArgs,
        /// The form to write
        #[arg(long = "as", value_enum, value_name = "FORM")]
        form: ExportForm,
        /// What the API server does when a policy's expression cannot be evaluated
        #[arg(long, value_enum, default_value_t = FailurePolicy::Ignore)]
        failure_policy: FailurePolicy,
    },
    /// Judge the workloads running in a cluster by the rules, as the webhook would judge their
    /// creation (stored scans only, nothing pulled); exit 1 when one would be denied
    DryRun {
        #[command(flatten)]
        rules: RulesArgs,
        /// The kubeconfig context (default: the current one)
        #[arg(long, value_name = "NAME")]
        context: Option<String>,
        /// Only denied and warned workloads
        #[arg(long)]
        problems: bool,
        /// The webhook's own namespace, never judged (as `serve --namespace`)
        #[arg(long, value_name = "NAMESPACE", default_value = NAMESPACE)]
        webhook_namespace: String,
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Print the PicketAdmissionRule CustomResourceDefinition (YAML for kubectl apply)
    Crd,
    /// The webhook's decisions kept in the store, newest last
    Decisions {
        #[arg(long, value_name = "N", default_value_t = 50)]
        last: usize,
        /// From the webhook running in the current context (through the API server's proxy)
        /// instead of the store
        #[arg(long)]
        cluster: bool,
        /// The webhook's namespace (with --cluster)
        #[arg(long, value_name = "NAMESPACE", default_value = NAMESPACE)]
        namespace: String,
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    /// Rules files or directories of them (*.yaml, *.yml)
    #[arg(long = "rules", value_name = "PATH", required_unless_present = "cluster_rules")]
    paths: Vec<PathBuf>,
    /// Also the PicketAdmissionRule objects of the current context (read once, at start)
    #[arg(long)]
    cluster_rules: bool,
}

#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Inline scans: allow plain HTTP and self-signed registries
    #[arg(long)]
    insecure: bool,
    /// Inline scans: a PEM CA certificate to trust besides the system's
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportForm {
    /// ValidatingAdmissionPolicy + ValidatingAdmissionPolicyBinding (admissionregistration.k8s.io/v1)
    Vap,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

pub fn run(command: &AdmissionCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
        AdmissionCommand::Validate { files } => validate(files),
        AdmissionCommand::Install {
            namespace,
            image,
            url,
            cert_dir,
            hosts,
            failure_policy,
            timeout,
            exempt,
            apply,
        } => {
            let options = InstallOptions {
                namespace: namespace.clone(),
                image: image.clone(),
                endpoint: url.clone().map_or(Endpoint::Service, Endpoint::Url),
                failure_policy: *failure_policy,
                timeout_seconds: *timeout,
                exempt_namespaces: exempt.clone(),
            };
            install_objects(&options, cert_dir, hosts, *apply)
        }
        AdmissionCommand::Test { rules, manifests, namespace, webhook_namespace, output, registry } => {
            let mut judge = judge(config, rules, registry)?;
            judge.own_namespace = Some(webhook_namespace.clone());
            let runtime = runtime()?;
            if judge.needs_rbac() {
                // The rules ask about service accounts' grants: the current context's RBAC, if it answers.
                let loaded = runtime.block_on(async {
                    let (client, context) = crate::cluster::client_for(None).await?;
                    anyhow::Ok(crate::cluster::inventory::load_rbac(&client, &context).await?)
                });
                match loaded {
                    Ok(inventory) => judge.set_rbac(Arc::new(inventory)),
                    Err(e) => crate::say!("picket: riskyServiceAccount judges nothing: no cluster RBAC ({e:#})"),
                }
            }
            let outcomes = runtime.block_on(offline::test_manifests(&judge, manifests, namespace));
            print_outcomes(&outcomes, *output)?;
            if outcomes.iter().any(|o| matches!(o.result, Judged::Invalid { .. })) {
                return Ok(ExitCode::from(super::EXIT_ERROR));
            }
            Ok(if outcomes.iter().any(offline::ManifestOutcome::denied) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        AdmissionCommand::Serve {
            rules,
            listen,
            cert,
            key,
            namespace,
            port_file,
            decisions_token_file,
            response,
            registry,
        } => {
            let response = match response {
                Some(dir) => Some(crate::alert::respond::ResponseConfig::load(dir, true)?),
                None => None,
            };
            let token = match decisions_token_file {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read the decisions token {}", path.display()))?
                        .trim()
                        .to_string(),
                ),
                None => None,
            };
            let mut judge = judge(config, rules, registry)?;
            judge.own_namespace = Some(namespace.clone());
            let tls = server::tls_config(cert, key).map_err(anyhow::Error::msg)?;
            let address = server::parse_listen(listen).map_err(anyhow::Error::msg)?;
            let runtime = runtime()?;
            runtime.block_on(async move {
                // The kube client is for pull secrets and RBAC: a webhook outside a cluster goes on without.
                let kube = crate::cluster::client_for(None).await.ok();
                if let Some((client, context)) = &kube
                    && judge.needs_rbac()
                {
                    judge.follow_rbac(client.clone(), context.clone(), RBAC_REFRESH, Duration::from_secs(10)).await;
                }
                judge.kube = kube.map(|(client, _)| client);
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on {address}"))?;
                let bound = listener.local_addr().context("the bound address")?;
                if let Some(path) = port_file {
                    let tmp = path.with_extension("tmp");
                    std::fs::write(&tmp, bound.port().to_string())
                        .and_then(|()| std::fs::rename(&tmp, path))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                crate::say!(
                    "picket admission: listening on https://{bound}/validate ({} rules, {} mode)",
                    judge.rules.rules.len(),
                    judge.rules.config.mode.as_str()
                );
                // Decisions are kept for `picket admission decisions` and the Admission pane,
                // in the store the scans use, else in the configured one when it can be had.
                let store =
                    judge.scans.as_ref().map(|s| Arc::clone(s.store())).or_else(|| {
                        match Store::open_with_cache(&config.store_path(), server::STORE_CACHE_BYTES) {
                            Ok(store) => Some(Arc::new(store)),
                            Err(e) => {
                                crate::say!("picket admission: decisions will not be kept: {e}");
                                None
                            }
                        }
                    });
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                let recent = server::Recent::new(token);
                // Responses need the store (their outbox is in it).
                let responder = match (response, &store) {
                    (Some(response), Some(store)) => Some(Arc::new(
                        crate::alert::outbox::Responder::start(Arc::clone(store), response, None)
                            .map_err(anyhow::Error::msg)?,
                    )),
                    (Some(_), None) => anyhow::bail!("--response needs the store, which could not be opened"),
                    (None, _) => None,
                };
                server::serve(Arc::new(judge), listener, tls, store, recent, responder, shutdown)
                    .await
                    .map_err(anyhow::Error::msg)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AdmissionCommand::Export { rules, form: ExportForm::Vap, failure_policy } => {
            let rules = load_all_rules(rules)?;
            let export = crate::admission::vap::export(&rules, failure_policy.as_str());
            let mut text = String::new();
            for exported in &export.exported {
                for object in [serde_json::to_value(&exported.policy)?, serde_json::to_value(&exported.binding)?] {
                    text.push_str("---\n");
                    text.push_str(&serde_saphyr::to_string(&object).context("cannot write YAML")?);
                }
            }
            for left in &export.left_out {
                crate::say!("picket: rule \"{}\" ({}) is not exported: {}", left.rule, left.origin, left.why);
            }
            if export.exported.is_empty() {
                crate::say!("picket: no rule could be exported");
            }
            super::write_report(None, text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        AdmissionCommand::DryRun { rules, context, problems, webhook_namespace, output } => {
            // A dry run pulls nothing: no registry settings.
            let mut judge = judge(config, rules, &RegistryArgs { insecure: false, ca_file: None })?;
            judge.own_namespace = Some(webhook_namespace.clone());
            let runtime = runtime()?;
            let outcomes = runtime.block_on(async {
                let (client, name) = crate::cluster::client_for(context.as_deref()).await?;
                let inventory = crate::cluster::inventory::load(&client, &name).await?;
                for unlisted in &inventory.unlisted {
                    crate::say!(
                        "picket: cannot {} ({}): those workloads are not judged",
                        unlisted.needs(),
                        unlisted.message
                    );
                }
                anyhow::Ok(crate::admission::dry_run::judge_inventory(&judge, &inventory).await)
            })?;
            let shown: Vec<_> = outcomes
                .iter()
                .filter(|o| !problems || matches!(o.decision.verdict, Verdict::Denied | Verdict::Warned))
                .collect();
            match output {
                Output::Json => crate::out!("{}", serde_json::to_string_pretty(&shown)?)?,
                Output::Table => {
                    for o in &shown {
                        crate::out!("{:<7}  {}", o.decision.verdict.as_str(), o.decision.subject)?;
                        for m in o.decision.denials.iter().chain(&o.decision.monitored) {
                            crate::out!("    {}: {}", m.mode, m.describe())?;
                        }
                    }
                }
            }
            Ok(if outcomes.iter().any(|o| !o.decision.allowed()) { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        AdmissionCommand::Crd => {
            super::write_report(None, rules::crd_yaml().map_err(anyhow::Error::msg)?.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        AdmissionCommand::Decisions { last, cluster, namespace, output } => {
            let records = if *cluster {
                runtime()?.block_on(async {
                    let (client, context) = crate::cluster::client_for(None).await?;
                    crate::admission::remote::decisions(&client, &context, namespace, *last)
                        .await
                        .map_err(anyhow::Error::msg)
                })?
            } else {
                let store = Store::open(&config.store_path())?;
                server::stored_decisions(&store, *last).map_err(anyhow::Error::msg)?
            };
            match output {
                Output::Json => crate::out!("{}", serde_json::to_string_pretty(&records)?)?,
                Output::Table => {
                    for r in records.iter().rev() {
                        crate::out!("{}  {:<7}  {:<6}  {}  {}", r.at, r.verdict, r.operation, r.subject, r.message)?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The rules files of `paths`: files as given, directories' *.yaml and *.yml in name order.
fn rule_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// The rules of the files, and of the cluster when asked (a name used twice is a mistake).
fn load_all_rules(args: &RulesArgs) -> anyhow::Result<RuleSet> {
    let mut set = if args.paths.is_empty() { RuleSet::default() } else { load_rules(&args.paths)? };
    if args.cluster_rules {
        let (found, problems) = runtime()?.block_on(async {
            let (client, context) = crate::cluster::client_for(None).await?;
            rules::from_cluster(&client, &context).await.map_err(anyhow::Error::msg)
        })?;
        let mut problems = problems;
        for rule in found {
            if let Some(first) = set.rules.iter().find(|r| r.name == rule.name) {
                problems.push(format!(
                    "{}: a second rule named '{}' (the first is at {})",
                    rule.origin, rule.name, first.origin
                ));
            } else {
                set.rules.push(rule);
            }
        }
        if !problems.is_empty() {
            anyhow::bail!("the admission rules have mistakes:\n{}", problems.join("\n"));
        }
    }
    Ok(set)
}

fn load_rules(paths: &[PathBuf]) -> anyhow::Result<RuleSet> {
    rules::load(&rule_files(paths)?).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the admission rules have mistakes:\n{}", lines.join("\n"))
    })
}

fn judge(config: &Config, rules: &RulesArgs, registry: &RegistryArgs) -> anyhow::Result<Judge> {
    let rules = load_all_rules(rules)?;
    // The store only when a rule needs scan data (`serve` opens it for its decisions anyway),
    // with the webhook's small cache (it is short-lived elsewhere).
    let scans = if rules.needs_scan() {
        let store = Store::open_with_cache(&config.store_path(), server::STORE_CACHE_BYTES)?;
        Some(Arc::new(StoredScans::new(Arc::new(store))))
    } else {
        None
    };
    let mut judge = Judge::new(rules, scans);
    judge.scan_options = crate::scan::ScanOptions {
        limits: config.scan_limits,
        registry: crate::registry::RegistryOptions {
            insecure: registry.insecure,
            ca_file: registry.ca_file.clone(),
            auth_files: None,
        },
        ..crate::scan::ScanOptions::default()
    };
    judge.check().map_err(anyhow::Error::msg)?;
    Ok(judge)
}

fn validate(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    match rules::load(&rule_files(files)?) {
        Ok(set) => {
            crate::out!(
                "{} rules valid ({} deny, {} exception); mode {}, unscanned images: {:?}",
                set.rules.len(),
                set.enabled(rules::RuleType::Deny).count(),
                set.enabled(rules::RuleType::Exception).count(),
                set.config.mode.as_str(),
                set.config.unscanned
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            for p in problems {
                crate::out!("{p}")?;
            }
            Ok(ExitCode::from(1))
        }
    }
}

fn install_objects(
    options: &InstallOptions,
    cert_dir: &std::path::Path,
    hosts: &[String],
    apply: bool,
) -> anyhow::Result<ExitCode> {
    let certs = if cert_dir.join("tls.crt").exists() {
        Certificates::read(cert_dir).map_err(anyhow::Error::msg)?
    } else {
        let certs = Certificates::generate(&options.namespace, hosts).map_err(anyhow::Error::msg)?;
        certs.write(cert_dir).map_err(anyhow::Error::msg)?;
        crate::say!("picket: made a CA and a serving certificate in {}", cert_dir.display());
        certs
    };
    let objects = match options.endpoint {
        Endpoint::Url(_) => install::manifests(options, &certs).into_iter().last().into_iter().collect(),
        Endpoint::Service => install::manifests(options, &certs),
    };
    if apply {
        let applied = runtime()?.block_on(async {
            let (client, context) = crate::cluster::client_for(None).await?;
            install::apply(&client, &context, &objects).await.map_err(anyhow::Error::msg)
        })?;
        for label in applied {
            crate::say!("picket: applied {label}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    for object in objects {
        text.push_str("---\n");
        text.push_str(&serde_saphyr::to_string(&object).context("cannot write YAML")?);
    }
    super::write_report(None, text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn print_outcomes(outcomes: &[offline::ManifestOutcome], output: Output) -> anyhow::Result<()> {
    if let Output::Json = output {
        crate::out!("{}", serde_json::to_string_pretty(outcomes)?)?;
        return Ok(());
    }
    for o in outcomes {
        let what = format!("{} {}", o.kind, o.name);
        match &o.result {
            Judged::Decided { decision } => {
                let verdict = match decision.verdict {
                    Verdict::Denied => "DENIED",
                    Verdict::Warned => "WARNED",
                    Verdict::Allowed => "allowed",
                    Verdict::Exempt => "exempt",
                };
                crate::out!("{}  {verdict:<7}  {what}", o.at)?;
                for m in &decision.denials {
                    crate::out!("    deny: {}", m.describe())?;
                }
                for w in &decision.warnings {
                    crate::out!("    warning: {w}")?;
                }
                for m in &decision.exceptions {
                    crate::out!("    exception: {}", m.describe())?;
                }
            }
            Judged::NotJudged => crate::out!("{}  -        {what} (holds no pod spec)", o.at)?,
            Judged::Invalid { error } => crate::out!("{}  ERROR    {what}: {error}", o.at)?,
        }
    }
    Ok(())
}

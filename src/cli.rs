//! The command line. Each subcommand calls the same capability functions the TUI uses.

pub mod admission;
pub mod agent;
pub mod alerts;
pub mod bench;
pub mod cluster;
pub mod db;
pub mod incident;
pub mod network;
pub mod policy;
pub mod registry;
pub mod report;
pub mod respond;
pub mod risk;
pub mod sbom;
pub mod scan;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::config::{Config, Overrides};
use crate::store::{self, Store};

/// Exit status of a run that failed for a reason other than a policy verdict.
pub const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "picket",
    version,
    about = "Terminal operations console for container security",
    long_about = "Terminal operations console for container security.\n\nWith no command, picket opens the console on the \
                  local host (and on your kubeconfig contexts, if any)."
)]
pub struct Cli {
    /// Config file [default: $XDG_CONFIG_HOME/picket/config.yaml]
    #[arg(long, global = true, env = "PICKET_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the store lives [default: $XDG_DATA_HOME/picket]
    #[arg(long, global = true, env = "PICKET_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Skin name (dark, light, high-contrast, or one in the config dir's themes/) or a .yaml path
    #[arg(long, global = true, env = "PICKET_THEME", value_name = "NAME")]
    pub theme: Option<String>,
    /// Kubeconfig context to make active
    #[arg(long, global = true, env = "PICKET_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,
    #[command(subcommand)]
    pub command: Option<Commands>,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Print picket's version and the store schema it uses
    Version,
    /// Inventory the packages of an image or filesystem (an SBOM)
    Sbom(sbom::SbomArgs),
    /// Scan for vulnerabilities, secrets and misconfigurations; gate a build with --fail-on
    #[command(subcommand)]
    Scan(scan::ScanCommand),
    /// The vulnerability database: update, import, status
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Registries kept scanned: add, list, remove, scan (crawl), tags, manifest (a CronJob)
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// Security policy as code: the PicketPolicy format and its CRDs
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Compliance benchmarks: CIS Docker, CIS Kubernetes (cluster and node), Pod Security Standards
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The node agent: kernel process events (run, needs root) and the DaemonSet manifest
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Alerts the console kept from its agents: list, show, ack, snooze, false-positive, reopen
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// The risk report: vulnerabilities by image, the riskiest workloads, compliance by
    /// section, alerts over time, as self-contained HTML (--html) or Markdown (--markdown)
    Report(report::ReportArgs),
    /// Incident bundles: one tar.gz about an alert, with hashes
    #[command(subcommand)]
    Incident(incident::IncidentCommand),
    /// Every workload of the context scored for risk (vulnerabilities, exposure, privileges,
    /// compliance, alerts), the riskiest first; --workload explains one
    Risk(risk::RiskArgs),
    /// The container firewall's view: the connections the local agent reports for a while,
    /// per container, peer, port and protocol, with L7 detail and verdict; --map draws who
    /// talks to whom
    Network(network::NetworkArgs),
    /// Response rules and sinks: validate, test on kept alerts, notify a sink, run headless,
    /// queue status
    #[command(subcommand)]
    Respond(respond::RespondCommand),
    /// (Internal) runs a kubeconfig credential plugin with a deadline; kube calls it
    #[command(name = "exec-credential-with-deadline", hide = true)]
    ExecCredential {
        seconds: u64,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Kubernetes clusters: production scanning of the images they run
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Admission control: the validating webhook, its install objects, and the same decision
    /// offline for manifests
    #[command(subcommand)]
    Admission(admission::AdmissionCommand),
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

impl Cli {
    fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            theme: self.theme.clone(),
            context: self.context.clone(),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the message already
/// holds (errors that format their source themselves would otherwise print it twice).
pub fn error_message(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.is_empty() {
            message = text;
        } else if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

/// Colour for a report shown on a terminal, unless it goes to a file or NO_COLOR is set.
pub(crate) fn colour_wanted(file: Option<&std::path::Path>) -> bool {
    file.is_none() && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes a report to `file` atomically, or to standard output ending with a newline.
pub(crate) fn write_report(file: Option<&std::path::Path>, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    match file {
        Some(path) => sbom::write_atomically(path, bytes),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes).context("cannot write to standard output")?;
            if !bytes.ends_with(b"\n") {
                stdout.write_all(b"\n").context("cannot write to standard output")?;
            }
            Ok(())
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Commands::Version) => {
            crate::out!("picket {} (store schema {})", env!("CARGO_PKG_VERSION"), store::SCHEMA_VERSION)
                .context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Commands::Completions { shell }) => {
            let shell = match shell {
                CompletionShell::Bash => clap_complete::Shell::Bash,
                CompletionShell::Zsh => clap_complete::Shell::Zsh,
                CompletionShell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut Cli::command(), "picket", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Some(Commands::Sbom(ref args)) => sbom::run(args, &Config::load(&cli.overrides())?),
        Some(Commands::Scan(ref command)) => scan::run(command, &Config::load(&cli.overrides())?),
        Some(Commands::Db(ref command)) => db::run(command, &Config::load(&cli.overrides())?),
        Some(Commands::Registry(ref command)) => registry::run(command, &Config::load(&cli.overrides())?),
        Some(Commands::Policy(ref command)) => policy::run(command, cli.context.as_deref(), &cli.overrides()),
        Some(Commands::Agent(ref command)) => agent::run(command, cli.context.as_deref()),
        Some(Commands::ExecCredential { seconds, ref command }) => {
            Ok(crate::cluster::run_exec_plugin(seconds, command))
        }
        Some(Commands::Alerts(ref command)) => alerts::run(command, &Config::load(&cli.overrides())?),
        Some(Commands::Report(ref args)) => report::run(args, &Config::load(&cli.overrides())?, cli.context.as_deref()),
        Some(Commands::Incident(ref command)) => incident::run(command, &Config::load(&cli.overrides())?),
        Some(Commands::Risk(ref args)) => risk::run(args, &Config::load(&cli.overrides())?, cli.context.as_deref()),
        Some(Commands::Respond(ref command)) => respond::run(command, &Config::load(&cli.overrides())?),
        Some(Commands::Network(ref args)) => network::run(args),
        Some(Commands::Cluster(ref command)) => {
            cluster::run(command, &Config::load(&cli.overrides())?, cli.context.as_deref())
        }
        Some(Commands::Admission(ref command)) => admission::run(command, &Config::load(&cli.overrides())?),
        Some(Commands::Bench(ref command)) => {
            bench::run(command, &Config::load(&cli.overrides())?, cli.context.as_deref())
        }
        None => console(&cli),
    }
}

fn console(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(&cli.overrides())?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!("the console needs a terminal on stdin and stdout; see 'picket --help' for commands that do not");
    }
    let store = Store::open(&config.store_path())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(crate::app::run(config, store, crate::ui::render))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn error_causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(io).context("Dockerfile: no such file");
        assert_eq!(error_message(&err), "Dockerfile: no such file");
        let err = anyhow::anyhow!("disk full").context("cannot write report.sarif");
        assert_eq!(error_message(&err), "cannot write report.sarif: disk full");
    }

    #[test]
    fn global_flags_parse_after_subcommands() {
        let cli = Cli::try_parse_from(["picket", "version", "--theme", "light", "--context", "prod"]).unwrap();
        assert_eq!(cli.theme.as_deref(), Some("light"));
        assert_eq!(cli.context.as_deref(), Some("prod"));
        assert!(Cli::try_parse_from(["picket", "completions", "powershell"]).is_err());
    }
}

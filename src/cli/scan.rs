//! `picket scan image|fs|rootfs|sbom|dockerfile`: findings, exceptions and the build gate.
//! Exit codes: 0 pass, 1 a finding at or above `--fail-on` without an exception, 2 error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};

use crate::config::Config;
use crate::model::Severity;
use crate::report::DocumentInfo;
use crate::report::findings::{FindingsFormat, render_findings};
use crate::scan::{self, Assessment, ExceptionFiles, Platform, RunOptions, Scan, ScanOptions, SourceSpec};
use crate::store::Store;

/// Exit status when the gate fails.
pub const EXIT_POLICY: u8 = 1;

#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Scan an image: OCI layout or archive, docker-save archive, a local engine's image
    /// (docker:NAME, podman:NAME) or a registry reference (HOST/REPO:TAG)
    Image {
        source: String,
        #[command(flatten)]
        image: ImageArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Scan a project directory (lock files, installed packages)
    Fs {
        path: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Scan an unpacked root filesystem ('/' is the host)
    Rootfs {
        path: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Scan an SBOM another tool wrote: CycloneDX, SPDX or Syft JSON (packages by their purls)
    Sbom {
        #[arg(value_name = "FILE")]
        document: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Check a Dockerfile for misconfigurations
    Dockerfile {
        #[arg(value_name = "FILE")]
        dockerfile: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scanner {
    /// vulnerable packages (needs the database: picket db update)
    Vuln,
    /// credentials in files
    Secret,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Platform to pick from a multi-platform image [default: the host's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Registry: allow plain HTTP and self-signed certificates
    #[arg(long)]
    pub insecure: bool,
    /// Registry: a PEM CA certificate to trust besides the system's
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Fail (exit 1) when a finding at or above this severity has no exception
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<Severity>,
    /// Vulnerabilities without a fixed version do not fail the gate
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = FindingsFormat::Table)]
    pub output: FindingsFormat,
    /// Write the report to FILE instead of standard output
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Exceptions file [default: .picketignore in the current directory, when present]
    #[arg(long, value_name = "FILE")]
    pub ignorefile: Option<PathBuf>,
    /// OpenVEX document whose not_affected/fixed statements accept findings (repeatable)
    #[arg(long, value_name = "FILE")]
    pub vex: Vec<PathBuf>,
    /// What to look for
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Scanner::Vuln, Scanner::Secret])]
    pub scanners: Vec<Scanner>,
    /// Do not keep the inventory in the store
    #[arg(long)]
    pub no_store: bool,
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    text.parse()
}

pub fn run(command: &ScanCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let (report, common) = match command {
        ScanCommand::Image { source, image, common } => {
            let spec = SourceSpec::parse(source)?;
            (scan_source(spec, Some(image), common, config)?, common)
        }
        ScanCommand::Fs { path, common } | ScanCommand::Rootfs { path, common } => {
            let spec = SourceSpec::Rootfs { path: path.clone() };
            (scan_source(spec, None, common, config)?, common)
        }
        ScanCommand::Sbom { document, common } => {
            let sbom = scan::sbom_input::read(document)?;
            let store = Store::open(&config.store_path())?;
            // Vulnerabilities only: an SBOM carries no file contents to look for secrets in.
            let assessment = Assessment { secrets: false, ..assessment(common)? };
            (scan::assess(&store, sbom, &assessment)?, common)
        }
        ScanCommand::Dockerfile { dockerfile, common } => {
            (scan::pipeline::dockerfile(dockerfile, &assessment(common)?)?, common)
        }
    };
    finish(report, common)
}

/// What the flags ask to look for and accept: the same [`scan::Assessment`] the console uses.
fn assessment(common: &CommonArgs) -> anyhow::Result<Assessment> {
    let dir = std::env::current_dir().context("cannot read the current directory")?;
    Ok(Assessment {
        vulns: common.scanners.contains(&Scanner::Vuln),
        secrets: common.scanners.contains(&Scanner::Secret),
        exceptions: ExceptionFiles::resolve(common.ignorefile.clone(), common.vex.clone(), &dir),
        fail_on: common.fail_on,
        ignore_unfixed: common.ignore_unfixed,
    })
}

fn scan_source(
    spec: SourceSpec,
    image: Option<&ImageArgs>,
    common: &CommonArgs,
    config: &Config,
) -> anyhow::Result<Scan> {
    let platform = match image.and_then(|i| i.platform.as_deref()) {
        Some(text) => Platform::parse(text).map_err(anyhow::Error::msg)?,
        None => Platform::host(),
    };
    let registry = crate::registry::RegistryOptions {
        insecure: image.is_some_and(|i| i.insecure),
        ca_file: image.and_then(|i| i.ca_file.clone()),
        auth_files: None,
    };
    let options = RunOptions {
        inventory: ScanOptions { limits: config.scan_limits, platform, registry, secrets: false },
        assessment: assessment(common)?,
        keep: !common.no_store,
        engine_sockets: crate::engine::existing_sockets(&crate::engine::candidate_sockets(&config.engines)),
    };
    let store = Store::open(&config.store_path())?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    Ok(runtime.block_on(scan::run(&store, spec, options, std::sync::Arc::new(|_| {})))?)
}

/// Writes the report and picks the exit code.
fn finish(report: Scan, common: &CommonArgs) -> anyhow::Result<ExitCode> {
    for notice in &report.notices {
        crate::say!("picket: {notice}");
    }
    let color = super::colour_wanted(common.file.as_deref());
    let bytes =
        render_findings(&report, common.output, &DocumentInfo::now(), color).context("cannot encode the report")?;
    super::write_report(common.file.as_deref(), &bytes)?;
    match &report.gate {
        Some(gate) if !gate.passed() => {
            crate::say!("picket: gate failed: {}", gate.summary());
            Ok(ExitCode::from(EXIT_POLICY))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

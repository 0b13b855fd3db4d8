//! `picket sbom SOURCE`: the inventory of an image or filesystem, as picket JSON, CycloneDX or
//! SPDX; stored in the store by digest unless `--no-store`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::config::Config;
use crate::report::{DocumentInfo, SbomFormat, render_sbom};
use crate::scan::{self, Platform, ScanOptions, SourceSpec};
use crate::store::{Store, StoreError};

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// What to inventory: an OCI layout directory, an OCI archive, a docker-save archive (plain or
    /// gzip), or a root filesystem directory ('/' is the host). Prefixes force a kind:
    /// oci-dir:PATH[:REF], oci-archive:PATH[:REF], docker-archive:PATH[:TAG], dir:PATH;
    /// docker:NAME, podman:NAME or engine:NAME read an image from a local engine's API;
    /// HOST[:PORT]/REPO[:TAG|@DIGEST] (or registry:REF) pulls from a registry
    pub source: String,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = SbomFormat::Json)]
    pub output: SbomFormat,
    /// Write to FILE instead of standard output
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Platform to pick from a multi-platform image [default: the host's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Do not keep the SBOM in the store
    #[arg(long)]
    pub no_store: bool,
    /// Registry: allow plain HTTP and self-signed certificates
    #[arg(long)]
    pub insecure: bool,
    /// Registry: a PEM CA certificate to trust besides the system's
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

pub fn run(args: &SbomArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let spec = SourceSpec::parse(&args.source)?;
    let platform = match &args.platform {
        Some(text) => Platform::parse(text).map_err(anyhow::Error::msg)?,
        None => Platform::host(),
    };
    let registry =
        crate::registry::RegistryOptions { insecure: args.insecure, ca_file: args.ca_file.clone(), auth_files: None };
    let options = ScanOptions { limits: config.scan_limits, platform, registry, secrets: false };
    let sockets = crate::engine::existing_sockets(&crate::engine::candidate_sockets(&config.engines));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let sbom = runtime.block_on(scan::inventory_async(spec, options, sockets, std::sync::Arc::new(|_| {})))?;
    let bytes = render_sbom(&sbom, args.output, &DocumentInfo::now()).context("cannot encode the SBOM")?;
    super::write_report(args.file.as_deref(), &bytes)?;
    let stored = if args.no_store { None } else { Some(store(config, &sbom)) };
    crate::say!("picket: {}", summary(&sbom, stored));
    Ok(ExitCode::SUCCESS)
}

/// A store in use by the console does not fail the command: the SBOM was written, only not kept.
fn store(config: &Config, sbom: &scan::Sbom) -> Result<String, String> {
    let save = || -> Result<String, StoreError> { scan::stored::save(&Store::open(&config.store_path())?, sbom) };
    save().map_err(|e| e.to_string())
}

fn summary(sbom: &scan::Sbom, stored: Option<Result<String, String>>) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for package in &sbom.packages {
        *counts.entry(package.ecosystem.osv_name()).or_default() += 1;
    }
    let breakdown: Vec<String> = counts.iter().map(|(eco, n)| format!("{eco} {n}")).collect();
    let distro = sbom.distro.as_ref().map(|d| format!(" on {}", d.pretty_name)).unwrap_or_default();
    let mut line =
        format!("{} packages ({}){distro} in {}", sbom.packages.len(), breakdown.join(", "), sbom.source.name);
    match stored {
        Some(Ok(key)) => line.push_str(&format!("; stored as {key}")),
        Some(Err(why)) => line.push_str(&format!("; not stored: {why}")),
        None => {}
    }
    if !sbom.warnings.is_empty() {
        line.push_str(&format!("\npicket: {} warnings:", sbom.warnings.len()));
        for warning in sbom.warnings.iter().take(20) {
            line.push_str(&format!("\n  {warning}"));
        }
    }
    line
}

/// Writes next to the target and renames, so a failure never leaves half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut temp =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write to {}", dir.display()))?;
    temp.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    temp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

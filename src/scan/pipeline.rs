//! The scan pipeline both twins call: inventory → vulnerability match → secrets → exceptions →
//! gate. `picket scan`, the console's Images and Findings panes and `picket cluster scan` all go
//! through [`run`] or [`assess`], so they report the same findings for the same image and options.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{ProgressFn, ScanError, ScanOptions, SourceSpec};
use crate::gate::{self, Exceptions, Gate, Suppressed, ignorefile::IgnoreFile, openvex::VexDocument};
use crate::model::{Distro, Finding, FindingKind, Sbom, SbomSource, Severity};
use crate::oci::ImageMeta;
use crate::store::{Store, StoreError};
use crate::vulndb::{VulnDb, matcher};

/// The exceptions file picket reads when none is named: `.picketignore` in the directory picket
/// runs in.
pub const DEFAULT_IGNOREFILE: &str = ".picketignore";

/// The findings of one scan, as every exporter and pane reads them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scan {
    pub source: SbomSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
    /// The inventory behind the findings (none for a Dockerfile scan); CycloneDX lists its
    /// components.
    #[serde(skip)]
    pub sbom: Option<Sbom>,
    /// Active findings, most severe first.
    pub findings: Vec<Finding>,
    pub suppressed: Vec<Suppressed>,
    /// The vulnerability data used: `osv:PyPI (updated 2026-11-20T10:00:00Z)`, …
    pub databases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the user should know that is not part of the report (expired exceptions).
    #[serde(skip)]
    pub notices: Vec<String>,
}

impl Scan {
    /// A scan with these findings and nothing else (a Dockerfile check).
    pub fn of_findings(source: SbomSource, findings: Vec<Finding>) -> Self {
        Self {
            source,
            distro: None,
            sbom: None,
            findings,
            suppressed: Vec::new(),
            databases: Vec::new(),
            gate: None,
            warnings: Vec::new(),
            notices: Vec::new(),
        }
    }

    /// Count of active findings per severity, most severe first.
    pub fn counts(&self) -> [(Severity, usize); 5] {
        Severity::ALL.map(|severity| (severity, self.findings.iter().filter(|f| f.severity == severity).count()))
    }

    /// What was scanned, as headers print it: `oci/tiny:v1 (debian 12)`.
    pub fn subject(&self) -> String {
        match &self.distro {
            Some(distro) => format!("{} ({} {})", self.source.name, distro.id, distro.version_id),
            None => self.source.name.clone(),
        }
    }

    /// Active findings of one kind, in report order.
    pub fn of_kind(&self, kind: FindingKind) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.kind == kind)
    }

    /// Whether an active finding fails the build: at or above the gate's threshold, or any
    /// finding when the scan has no gate. Advisories never do.
    pub fn fails(&self, finding: &Finding) -> bool {
        if finding.kind == FindingKind::Advisory {
            return false;
        }
        let Some(gate) = &self.gate else { return true };
        gate::gates(finding, gate.fail_on, gate.ignore_unfixed)
    }
}

/// Where accepted findings come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionFiles {
    /// A `.picketignore` file.
    pub ignorefile: Option<PathBuf>,
    /// OpenVEX documents whose `not_affected`/`fixed` statements accept findings.
    pub vex: Vec<PathBuf>,
}

impl ExceptionFiles {
    /// `ignorefile`, else `.picketignore` in `dir` when there is one; and the VEX documents.
    pub fn resolve(ignorefile: Option<PathBuf>, vex: Vec<PathBuf>, dir: &Path) -> Self {
        let ignorefile = ignorefile.or_else(|| Self::present(dir.join(DEFAULT_IGNOREFILE)));
        Self { ignorefile, vex }
    }

    /// `path` when something is there. Whatever is there is read (and refused if it is not a
    /// regular file): a link to a device must be an error, not a silent run without the
    /// project's exceptions.
    pub fn present(path: PathBuf) -> Option<PathBuf> {
        path.symlink_metadata().is_ok().then_some(path)
    }
}

/// What to look for in an inventory and how to judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Match packages against the vulnerability database.
    pub vulns: bool,
    /// Report the secrets the inventory found (it must have been taken with secrets on).
    pub secrets: bool,
    pub exceptions: ExceptionFiles,
    /// Fail at or above this severity; with `ignore_unfixed`, unfixed vulnerabilities do not.
    pub fail_on: Option<Severity>,
    pub ignore_unfixed: bool,
}

impl Default for Assessment {
    /// Vulnerabilities and secrets, no exceptions, no gate: `picket scan` with no flags.
    fn default() -> Self {
        Self { vulns: true, secrets: true, exceptions: ExceptionFiles::default(), fail_on: None, ignore_unfixed: false }
    }
}

/// Everything `run` needs besides the source.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub inventory: ScanOptions,
    pub assessment: Assessment,
    /// Keep the SBOM in the store (under [`Sbom::store_key`]).
    pub keep: bool,
    /// Engine sockets to look in for `docker:`/`podman:` sources.
    pub engine_sockets: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Match(#[from] matcher::MatchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Exceptions(String),
    #[error(transparent)]
    Dockerfile(#[from] super::dockerfile::DockerfileError),
    #[error("no stored SBOM {0}")]
    NotStored(String),
}

/// Inventories `spec`, keeps its SBOM when asked, and assesses it. A missing database and broken
/// exception files are reported before anything is downloaded.
pub async fn run(store: &Store, spec: SourceSpec, options: RunOptions, progress: ProgressFn) -> Result<Scan, RunError> {
    let mut inventory = options.inventory;
    inventory.secrets = options.assessment.secrets;
    let exceptions = LoadedExceptions::load(&options.assessment.exceptions)?;
    if options.assessment.vulns && VulnDb::open(store)?.sources()?.is_empty() {
        return Err(matcher::MatchError::EmptyDatabase.into());
    }
    let sbom = super::inventory_async(spec, inventory, options.engine_sockets, progress).await?;
    if options.keep {
        super::stored::save(store, &sbom)?;
        super::rematch::record_first(store, &sbom)?;
    }
    assess_with(store, sbom, &options.assessment, &exceptions)
}

/// Checks a Dockerfile, then applies the exceptions and the gate as for an image.
pub fn dockerfile(path: &Path, assessment: &Assessment) -> Result<Scan, RunError> {
    let exceptions = LoadedExceptions::load(&assessment.exceptions)?;
    let findings = super::dockerfile::check_file(path)?;
    let source = SbomSource { kind: "dockerfile".into(), name: path.display().to_string(), image: None };
    let mut scan = Scan::of_findings(source, Vec::new());
    (scan.findings, scan.suppressed) = exceptions.apply(findings, None);
    scan.gate = assessment.fail_on.map(|fail_on| gate::evaluate(&scan.findings, fail_on, assessment.ignore_unfixed));
    scan.notices = exceptions.notices;
    Ok(scan)
}

/// Assesses an SBOM already taken (stored, or from `picket cluster scan`).
pub fn assess(store: &Store, sbom: Sbom, assessment: &Assessment) -> Result<Scan, RunError> {
    let exceptions = LoadedExceptions::load(&assessment.exceptions)?;
    assess_with(store, sbom, assessment, &exceptions)
}

fn assess_with(
    store: &Store,
    sbom: Sbom,
    assessment: &Assessment,
    exceptions: &LoadedExceptions,
) -> Result<Scan, RunError> {
    let (mut findings, databases) = match assessment.vulns {
        true => {
            let matched = matcher::match_sbom(&VulnDb::open(store)?, &sbom)?;
            (matched.findings, matched.databases)
        }
        false => (Vec::new(), Vec::new()),
    };
    if assessment.secrets {
        findings.extend(sbom.secrets.iter().cloned());
    }
    let (findings, suppressed) = exceptions.apply(findings, sbom.source.image.as_ref());
    let gate = assessment.fail_on.map(|fail_on| gate::evaluate(&findings, fail_on, assessment.ignore_unfixed));
    Ok(Scan {
        source: sbom.source.clone(),
        distro: sbom.distro.clone(),
        warnings: sbom.warnings.clone(),
        sbom: Some(sbom),
        findings,
        suppressed,
        databases,
        gate,
        notices: exceptions.notices.clone(),
    })
}

/// The exception files, read once.
struct LoadedExceptions {
    ignore: Option<IgnoreFile>,
    vex: Vec<VexDocument>,
    notices: Vec<String>,
}

impl LoadedExceptions {
    fn load(files: &ExceptionFiles) -> Result<Self, RunError> {
        let ignore = files
            .ignorefile
            .as_deref()
            .map(IgnoreFile::load)
            .transpose()
            .map_err(|e| RunError::Exceptions(e.to_string()))?;
        let vex =
            files.vex.iter().map(|p| VexDocument::load(p)).collect::<Result<_, _>>().map_err(RunError::Exceptions)?;
        let notices = ignore
            .iter()
            .flat_map(|ignore| {
                ignore.expired().map(|expired| {
                    format!(
                        "{}#{}: the exception for {} expired on {}; it no longer applies",
                        ignore.path.display(),
                        expired.index,
                        expired.id,
                        expired.expires.map(|d| d.to_string()).unwrap_or_default()
                    )
                })
            })
            .collect();
        Ok(Self { ignore, vex, notices })
    }

    fn apply(&self, findings: Vec<Finding>, image: Option<&ImageMeta>) -> (Vec<Finding>, Vec<Suppressed>) {
        let mut sources: Vec<&dyn Exceptions> = Vec::new();
        if let Some(ignore) = &self.ignore {
            sources.push(ignore);
        }
        sources.extend(self.vex.iter().map(|v| v as &dyn Exceptions));
        gate::apply_exceptions(findings, image, &sources)
    }
}

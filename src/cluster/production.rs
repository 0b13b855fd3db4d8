//! `picket cluster scan`: pull and scan every running image once, match it against the
//! vulnerability database, and keep the result with the workloads that run it. One image that
//! cannot be pulled is reported and the others go on.

use std::path::PathBuf;

use kube::Client;
use serde::Serialize;

use super::images::{RunningImage, pull_secret_file, running_images};
use super::inventory::Inventory;
use crate::model::{Finding, Severity};
use crate::scan::{self, Assessment, RunOptions, ScanOptions, SourceSpec};
use crate::store::Store;

#[derive(Debug, Clone, Serialize)]
pub struct ImageScan {
    pub reference: String,
    pub digest: Option<String>,
    /// The image as the pod spec names it, because no container of its pods runs yet: what a
    /// pull of that reference gives now, not necessarily what will run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub from_spec: bool,
    pub used_by: Vec<String>,
    /// Findings, or why the image could not be scanned.
    #[serde(flatten)]
    pub outcome: ImageOutcome,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageOutcome {
    Scanned { packages: usize, findings: Vec<Finding> },
    Failed { error: String },
}

impl ImageScan {
    pub fn findings(&self) -> &[Finding] {
        match &self.outcome {
            ImageOutcome::Scanned { findings, .. } => findings,
            ImageOutcome::Failed { .. } => &[],
        }
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings().iter().filter(|f| f.severity == severity).count()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterScan {
    pub context: String,
    pub images: Vec<ImageScan>,
}

impl ClusterScan {
    /// Findings at or above `threshold` (fixed ones only with `fixed_only`).
    pub fn failing(&self, threshold: Severity, fixed_only: bool) -> usize {
        self.images
            .iter()
            .flat_map(|i| i.findings())
            .filter(|f| f.severity >= threshold && (!fixed_only || !f.fixed_versions.is_empty()))
            .count()
    }
}

/// Scans every running image through the scan pipeline (vulnerabilities; each SBOM kept in the
/// store). `options` carries the registry settings; each image's pull secrets are added to its
/// auth files.
pub async fn scan(
    client: &Client,
    inv: &Inventory,
    store: &Store,
    options: &ScanOptions,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> ClusterScan {
    let images = running_images(inv);
    let secrets_dir = tempfile::Builder::new().prefix("picket-pull-secrets").tempdir();
    let mut out = Vec::new();
    let total = images.len();
    for (index, image) in images.into_iter().enumerate() {
        progress(index, total, &image.reference);
        let outcome = match &secrets_dir {
            Ok(dir) => scan_one(client, store, options, &image, dir.path()).await,
            Err(e) => Err(format!("cannot make a temp dir for pull secrets: {e}")),
        };
        out.push(ImageScan {
            reference: image.reference.clone(),
            digest: image.digest.clone(),
            from_spec: image.from_spec,
            used_by: image.used_by.iter().cloned().collect(),
            outcome: match outcome {
                Ok((packages, findings)) => ImageOutcome::Scanned { packages, findings },
                Err(error) => ImageOutcome::Failed { error },
            },
        });
    }
    ClusterScan { context: inv.context.clone(), images: out }
}

async fn scan_one(
    client: &Client,
    store: &Store,
    options: &ScanOptions,
    image: &RunningImage,
    secrets_dir: &std::path::Path,
) -> Result<(usize, Vec<Finding>), String> {
    let mut auth_files: Vec<PathBuf> = Vec::new();
    let mut secret_errors = Vec::new();
    for (namespace, name) in &image.pull_secrets {
        match pull_secret_file(client, namespace, name, secrets_dir).await {
            Ok(path) => auth_files.push(path),
            Err(e) => secret_errors.push(e),
        }
    }
    auth_files.extend(options.registry.auth_files.clone().unwrap_or_else(crate::registry::auth::auth_files));
    let mut inventory = options.clone();
    inventory.registry.auth_files = Some(auth_files);
    let run = RunOptions {
        inventory,
        assessment: Assessment { vulns: true, secrets: false, ..Assessment::default() },
        keep: true,
        engine_sockets: Vec::new(),
    };
    let spec = SourceSpec::parse(&format!("registry:{}", image.reference)).map_err(|e| e.to_string())?;
    // The report's line names the image: the error need not again (in its full form).
    let named = match &spec {
        SourceSpec::Registry { reference } => format!("{reference}: "),
        _ => String::new(),
    };
    let scanned = scan::run(store, spec, run, std::sync::Arc::new(|_| {})).await.map_err(|e| {
        let e = e.to_string();
        let e = e.strip_prefix(&named).unwrap_or(&e);
        if secret_errors.is_empty() {
            e.to_string()
        } else {
            format!("{e} (pull secrets: {})", secret_errors.join("; "))
        }
    })?;
    Ok((scanned.sbom.map_or(0, |s| s.packages.len()), scanned.findings))
}

//! `picket cluster scan` reports: a table of the running images with their finding counts and
//! the workloads that run them, or everything as JSON.

use crate::cluster::production::{ClusterScan, ImageOutcome};
use crate::model::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterScanFormat {
    /// one row per image (default)
    Table,
    /// every image with its findings and workloads
    Json,
}

pub fn render(report: &ClusterScan, format: ClusterScanFormat) -> Result<Vec<u8>, serde_json::Error> {
    match format {
        ClusterScanFormat::Json => serde_json::to_vec_pretty(report),
        ClusterScanFormat::Table => Ok(table(report).into_bytes()),
    }
}

use super::clean;

fn table(report: &ClusterScan) -> String {
    let mut out = format!("Running images of context {} ({})\n\n", clean(&report.context), report.images.len());
    let width = report.images.iter().map(|i| i.reference.chars().count()).max().unwrap_or(5).clamp(5, 90);
    out.push_str(&format!("{:<width$}  {:>4} {:>4} {:>4} {:>4}  WORKLOADS\n", "IMAGE", "CRIT", "HIGH", "MED", "LOW"));
    for image in &report.images {
        let reference: String = clean(&image.reference).chars().take(width).collect();
        match &image.outcome {
            ImageOutcome::Scanned { .. } => {
                let counts =
                    [Severity::Critical, Severity::High, Severity::Medium, Severity::Low].map(|s| image.count(s));
                let workloads = match image.used_by.as_slice() {
                    [] => String::new(),
                    [one] => clean(one),
                    [first, rest @ ..] => format!("{} (+{} more)", clean(first), rest.len()),
                };
                out.push_str(&format!(
                    "{reference:<width$}  {:>4} {:>4} {:>4} {:>4}  {workloads}\n",
                    counts[0], counts[1], counts[2], counts[3]
                ));
            }
            ImageOutcome::Failed { error } => {
                out.push_str(&format!("{reference:<width$}  not scanned: {}\n", clean(error)));
            }
        }
    }
    let from_spec = report.images.iter().filter(|i| i.from_spec).count();
    if from_spec > 0 {
        out.push_str(&format!(
            "\n{from_spec} of {} images are named by pods that do not run yet (Pending: no container status): scanned as their spec names them, not by a running digest.\n",
            report.images.len()
        ));
    }
    let failed = report.images.iter().filter(|i| matches!(i.outcome, ImageOutcome::Failed { .. })).count();
    if failed > 0 {
        out.push_str(&format!("\n{failed} of {} images could not be scanned.\n", report.images.len()));
    }
    out
}

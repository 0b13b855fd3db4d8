//! Image and filesystem inventory: source → layers (virtual filesystem) → catalogers → SBOM.
//! Blocking: callers run it on a blocking thread.

pub mod binary;
pub mod blobs;
pub mod catalogers;
pub mod dockerfile;
pub mod layers;
pub mod limits;
pub mod os;
pub mod pipeline;
pub mod rematch;
pub mod rootfs;
pub mod sbom_input;
pub mod secrets;
pub mod source;
pub mod stored;
pub mod tarball;
pub mod vfs;

use std::io;

pub use crate::model::{SBOM_FORMAT_VERSION, Sbom, SbomSource};
pub use limits::Limits;
pub use pipeline::{Assessment, ExceptionFiles, RunError, RunOptions, Scan, assess, run};
pub use source::{ImageMeta, Platform, SourceSpec};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{what}: refusing entry '{entry}': {reason}")]
    Hostile { what: String, entry: String, reason: String },
    #[error("{what}: {message}")]
    Limit { what: String, message: String },
    #[error("{what}: {message}")]
    Format { what: String, message: String },
    #[error("{what}: {message}")]
    Source { what: String, message: String },
}

impl ScanError {
    pub fn io(what: &str, source: io::Error) -> Self {
        Self::Io { what: what.to_string(), source }
    }
}

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub limits: Limits,
    pub platform: Platform,
    pub registry: crate::registry::RegistryOptions,
    /// Also scan every file for secrets (`Sbom::secrets`).
    pub secrets: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self { limits: Limits::default(), platform: Platform::host(), registry: Default::default(), secrets: false }
    }
}

/// Progress of an inventory, for the console's live view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Bytes downloaded from a registry or exported by an engine so far, of the image's total
    /// (0 when the source does not say).
    Pulled {
        bytes: u64,
        of: u64,
    },
    Opened {
        layers: usize,
    },
    Layer {
        index: usize,
        of: usize,
        expanded_bytes: u64,
    },
    Cataloged {
        packages: usize,
    },
}

/// Progress callbacks that may run on another thread.
pub type ProgressFn = std::sync::Arc<dyn Fn(Progress) + Send + Sync>;

/// `inventory` for async callers, and the one entry point that can also read images from a
/// local engine (exported first). `engine_sockets` are the sockets to look in.
pub async fn inventory_async(
    spec: SourceSpec,
    options: ScanOptions,
    engine_sockets: Vec<std::path::PathBuf>,
    progress: ProgressFn,
) -> Result<Sbom, ScanError> {
    let (registry, platform) = (options.registry.clone(), options.platform.clone());
    let blocking = |spec: SourceSpec, progress: ProgressFn| {
        tokio::task::spawn_blocking(move || inventory(&spec, &options, &*progress))
    };
    let joined = |r: Result<Result<Sbom, ScanError>, tokio::task::JoinError>| {
        r.map_err(|e| ScanError::Source { what: "scan".into(), message: format!("the scan task failed: {e}") })?
    };
    match spec {
        SourceSpec::Engine { kind, name } => {
            let export_progress = std::sync::Arc::clone(&progress);
            let exported = source::engine::export(kind, &name, &engine_sockets, &move |bytes, of| {
                export_progress(Progress::Pulled { bytes, of })
            })
            .await?;
            let archive = SourceSpec::DockerArchive { path: exported.archive.clone(), reference: None };
            let mut sbom = joined(blocking(archive, progress).await)?;
            sbom.source.kind = exported.engine.as_str().to_ascii_lowercase();
            sbom.source.name = name.clone();
            if let Some(image) = sbom.source.image.as_mut() {
                image.name = name;
            }
            drop(exported);
            Ok(sbom)
        }
        SourceSpec::Registry { reference } => {
            let pull_progress = std::sync::Arc::clone(&progress);
            let pulled = crate::registry::pull(&reference, &registry, &platform, &move |bytes, of| {
                pull_progress(Progress::Pulled { bytes, of })
            })
            .await
            .map_err(|e| {
                // The registry's errors mostly name the reference already.
                let what = reference.to_string();
                let message = e.to_string();
                let message = message.strip_prefix(&format!("{what}: ")).map_or(message.clone(), str::to_string);
                ScanError::Source { what, message }
            })?;
            let layout = SourceSpec::OciDir { path: pulled.layout.clone(), reference: None };
            let mut sbom = joined(blocking(layout, progress).await)?;
            sbom.source.kind = "registry".into();
            sbom.source.name = reference.to_string();
            if let Some(image) = sbom.source.image.as_mut() {
                image.name = reference.to_string();
                image.tags = reference.tag.iter().cloned().collect();
                image.index_digest = pulled.index_digest.clone();
            }
            drop(pulled);
            Ok(sbom)
        }
        other => joined(blocking(other, progress).await),
    }
}

/// Builds the inventory (SBOM) of a source.
pub fn inventory(spec: &SourceSpec, options: &ScanOptions, progress: &dyn Fn(Progress)) -> Result<Sbom, ScanError> {
    let is_directory = matches!(spec, SourceSpec::Rootfs { .. });
    let catalogers: Vec<_> = catalogers::all().into_iter().filter(|c| is_directory || !c.directory_only()).collect();
    let wants = |path: &str| os::wants(path) || catalogers.iter().any(|c| c.wants(path));
    let mut warnings = Vec::new();
    let mut secrets = options.secrets.then(|| secrets::SecretCollector::new(&options.limits));
    let (fs, source) = match spec {
        SourceSpec::Rootfs { path } => {
            progress(Progress::Opened { layers: 1 });
            let (fs, stats) = rootfs::build_scanning(path, &wants, &options.limits, &mut warnings, secrets.as_mut())?;
            if stats.unreadable > 0 {
                warnings.push(format!("{} entries under {} could not be read", stats.unreadable, path.display()));
            }
            progress(Progress::Layer { index: 0, of: 1, expanded_bytes: 0 });
            (fs, SbomSource { kind: "dir".into(), name: path.display().to_string(), image: None })
        }
        _ => {
            let image = source::open_image(spec, &options.platform, &options.limits)?;
            let total = image.meta.layers.len();
            progress(Progress::Opened { layers: total });
            let mut fs = vfs::VirtualFs::new();
            let mut budget = options.limits.max_image_bytes;
            let mut special = 0;
            for (index, layer) in image.meta.layers.iter().enumerate() {
                let label = format!("layer {} ({}) of {}", index + 1, layer.diff_id, image.meta.name);
                let blob = image.open_layer(index)?;
                let input = layers::LayerInput { id: layer.diff_id.clone(), label: &label };
                let stats = layers::apply_layer_scanning(
                    &mut fs,
                    input,
                    blob,
                    &wants,
                    &options.limits,
                    budget,
                    secrets.as_mut(),
                )?;
                budget = budget.saturating_sub(stats.expanded_bytes);
                special += stats.skipped_special;
                if !stats.skipped_large.is_empty() {
                    let shown: Vec<&str> = stats.skipped_large.iter().take(5).map(String::as_str).collect();
                    let more = stats.skipped_large.len() - shown.len();
                    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                    warnings.push(format!(
                        "{label}: over the {}-byte read limit (scan.limits.maxReadBytes), not cataloged: {}{more}",
                        options.limits.max_read_bytes,
                        shown.join(", ")
                    ));
                }
                progress(Progress::Layer { index, of: total, expanded_bytes: stats.expanded_bytes });
            }
            if special > 0 {
                warnings.push(format!("{special} device or FIFO entries were skipped"));
            }
            let kind = match spec {
                SourceSpec::OciDir { .. } => "oci-dir",
                SourceSpec::OciArchive { .. } => "oci-archive",
                _ => "docker-archive",
            };
            (fs, SbomSource { kind: kind.into(), name: image.meta.name.clone(), image: Some(image.meta.clone()) })
        }
    };
    let distro = os::detect(&fs);
    let escaping = fs.links_out_of_root();
    if !escaping.is_empty() {
        let shown: Vec<String> = escaping.iter().take(5).map(|(link, target)| format!("/{link} -> {target}")).collect();
        let more = escaping.len().saturating_sub(shown.len());
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        warnings.push(format!(
            "{} symlinks point outside the image root and were not followed: {}{more}",
            escaping.len(),
            shown.join(", ")
        ));
    }
    let mut packages = Vec::new();
    for cataloger in &catalogers {
        let output = cataloger.catalog(&fs, distro.as_ref());
        for package in output.packages {
            match catalogers::implausible(&package) {
                Some(why) => warnings.push(format!(
                    "{}: {why}: not a package, skipped",
                    package.locations.first().map_or_else(|| cataloger.name().to_string(), |l| l.path.clone())
                )),
                None => packages.push(package),
            }
        }
        warnings.extend(output.warnings);
    }
    packages.sort_by(|a, b| {
        (a.ecosystem, &a.name, &a.version, &a.locations).cmp(&(b.ecosystem, &b.name, &b.version, &b.locations))
    });
    progress(Progress::Cataloged { packages: packages.len() });
    let mut ran: Vec<String> = catalogers.iter().map(|c| format!("{}@{}", c.name(), c.version())).collect();
    let secrets = match secrets {
        Some(collector) => {
            ran.push(format!("secrets@{}", secrets::RULES_VERSION));
            let (found, notes) = collector.finish();
            warnings.extend(notes);
            found
        }
        None => Vec::new(),
    };
    Ok(Sbom { format_version: SBOM_FORMAT_VERSION, source, distro, packages, catalogers: ran, warnings, secrets })
}

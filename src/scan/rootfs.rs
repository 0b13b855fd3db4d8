//! A root filesystem directory as a one-layer virtual filesystem. Nothing is written; files are
//! read only when a cataloger wants them. Pseudo filesystems (`proc`, `sys`, `dev`) are skipped,
//! and for the host (`/`) so are container engines' storage trees, which hold other images.

use std::path::Path;
use std::sync::Arc;

use super::ScanError;
use super::limits::Limits;
use super::secrets::SecretCollector;
use super::vfs::{Node, NodeKind, VirtualFs};

const PSEUDO: &[&str] = &["proc", "sys", "dev"];
const HOST_ONLY_SKIPS: &[&str] = &["var/lib/docker", "var/lib/containers", "run/containers", "var/lib/containerd"];

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RootfsStats {
    pub files: u64,
    pub unreadable: u64,
    pub skipped_large_reads: u64,
}

/// Reads an executable only when it starts like an ELF file.
fn read_extract(path: &Path) -> Option<Arc<super::binary::BinaryExtract>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).ok()?;
    if !super::binary::is_elf(&magic) {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    super::binary::extract(&bytes).map(Arc::new)
}

pub fn build(
    root: &Path,
    wants: &dyn Fn(&str) -> bool,
    limits: &Limits,
    warnings: &mut Vec<String>,
) -> Result<(VirtualFs, RootfsStats), ScanError> {
    build_scanning(root, wants, limits, warnings, None)
}

/// [`build`], also passing each regular file the secret scanner wants through `secrets`.
pub fn build_scanning(
    root: &Path,
    wants: &dyn Fn(&str) -> bool,
    limits: &Limits,
    warnings: &mut Vec<String>,
    mut secrets: Option<&mut SecretCollector>,
) -> Result<(VirtualFs, RootfsStats), ScanError> {
    let what = root.display().to_string();
    if !root.is_dir() {
        return Err(ScanError::Source { what, message: "not a directory".into() });
    }
    let is_host = root == Path::new("/");
    let mut fs = VirtualFs::new();
    let layer = fs.begin_layer(format!("dir:{what}"));
    let mut stats = RootfsStats::default();
    let mut scratch = Vec::new();
    let walker = walkdir::WalkDir::new(root).follow_links(false).into_iter().filter_entry(|entry| {
        let Ok(rel) = entry.path().strip_prefix(root) else { return true };
        let rel = rel.to_string_lossy();
        !(entry.depth() == 1 && PSEUDO.contains(&rel.as_ref()) || is_host && HOST_ONLY_SKIPS.contains(&rel.as_ref()))
    });
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                stats.unreadable += 1;
                if warnings.len() < 50 {
                    warnings.push(format!("{what}: {err}"));
                }
                continue;
            }
        };
        let Ok(rel) = entry.path().strip_prefix(root) else { continue };
        let Some(path) = rel.to_str().map(String::from) else { continue };
        if path.is_empty() {
            continue;
        }
        let file_type = entry.file_type();
        let node = if file_type.is_dir() {
            Node { kind: NodeKind::Dir, layer, content: None, extract: None }
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(entry.path()).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
            Node { kind: NodeKind::Symlink { target }, layer, content: None, extract: None }
        } else if file_type.is_file() {
            stats.files += 1;
            let metadata = entry.metadata().ok();
            let size = metadata.as_ref().map_or(0, std::fs::Metadata::len);
            let executable = metadata
                .as_ref()
                .is_some_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0);
            let mut extract = None;
            if executable && (64..=limits.max_read_bytes).contains(&size) && !wants(&path) {
                extract = read_extract(entry.path());
            }
            let content = if wants(&path) {
                if size > limits.max_read_bytes {
                    stats.skipped_large_reads += 1;
                    warnings.push(format!(
                        "{}: {size} bytes, over the {}-byte read limit (scan.limits.maxReadBytes): not cataloged",
                        entry.path().display(),
                        limits.max_read_bytes
                    ));
                    None
                } else if fs.kept_bytes() + size > limits.max_kept_bytes {
                    return Err(ScanError::Limit {
                        what: root.display().to_string(),
                        message: super::layers::kept_over(limits, &path),
                    });
                } else {
                    match std::fs::read(entry.path()) {
                        Ok(bytes) => Some(Arc::new(bytes)),
                        Err(err) => {
                            warnings.push(format!("{}: {err}", entry.path().display()));
                            None
                        }
                    }
                }
            } else {
                None
            };
            if let Some(secrets) = secrets.as_deref_mut().filter(|s| s.wants(&path, size)) {
                let scanned = match &content {
                    Some(bytes) => {
                        secrets.scan_file(None, &path, bytes);
                        Ok(())
                    }
                    None => std::fs::File::open(entry.path())
                        .and_then(|file| secrets.read_and_scan(None, &path, file, &mut scratch)),
                };
                if let Err(err) = scanned {
                    stats.unreadable += 1;
                    if warnings.len() < 50 {
                        warnings.push(format!("{}: {err}", entry.path().display()));
                    }
                }
            }
            Node { kind: NodeKind::File { size, mode: 0o644 }, layer, content, extract }
        } else {
            continue;
        };
        fs.insert(path, node);
    }
    Ok((fs, stats))
}

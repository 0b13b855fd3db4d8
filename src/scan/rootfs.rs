//! A root filesystem directory as a one-layer virtual filesystem. Nothing is written; files are
//! read only when a cataloger wants them. Pseudo filesystems (`proc`, `sys`, `dev`) are skipped,
//! and for the host (`/`) so are container engines' storage trees, which hold other images.

use std::path::Path;
use std::sync::Arc;

use super::ScanError;
use super::limits::Limits;
use super::vfs::{Node, NodeKind, VirtualFs};

const PSEUDO: &[&str] = &["proc", "sys", "dev"];
const HOST_ONLY_SKIPS: &[&str] = &["var/lib/docker", "var/lib/containers", "run/containers", "var/lib/containerd"];

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RootfsStats {
    pub files: u64,
    pub unreadable: u64,
    pub skipped_large_reads: u64,
}

pub fn build(
    root: &Path,
    wants: &dyn Fn(&str) -> bool,
    limits: &Limits,
    warnings: &mut Vec<String>,
) -> Result<(VirtualFs, RootfsStats), ScanError> {
    let what = root.display().to_string();
    if !root.is_dir() {
        return Err(ScanError::Source { what, message: "not a directory".into() });
    }
    let is_host = root == Path::new("/");
    let mut fs = VirtualFs::new();
    let layer = fs.begin_layer(format!("dir:{what}"));
    let mut stats = RootfsStats::default();
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
            Node { kind: NodeKind::Dir, layer, content: None }
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(entry.path()).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
            Node { kind: NodeKind::Symlink { target }, layer, content: None }
        } else if file_type.is_file() {
            stats.files += 1;
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            let content = if wants(&path) {
                if size > limits.max_read_bytes {
                    stats.skipped_large_reads += 1;
                    None
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
            Node { kind: NodeKind::File { size, mode: 0o644 }, layer, content }
        } else {
            continue;
        };
        fs.insert(path, node);
    }
    Ok((fs, stats))
}

//! Images held by a local Docker or Podman engine: exported through the API (`GET
//! /images/NAME/get`, what `docker save` does) into a temp file, then read as a docker archive.

use std::path::PathBuf;

use crate::engine::{self, EngineKind};
use crate::scan::ScanError;

pub struct Exported {
    /// Holds the archive; removed when dropped.
    pub temp: tempfile::TempDir,
    pub archive: PathBuf,
    pub socket: PathBuf,
    pub engine: EngineKind,
}

/// Exports `name` from the first engine among `sockets` (of `kind`, if given) that has it.
pub async fn export(
    kind: Option<EngineKind>,
    name: &str,
    sockets: &[PathBuf],
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Exported, ScanError> {
    let mut tried = Vec::new();
    for socket in sockets {
        let info = match engine::probe(socket).await {
            Ok(info) => info,
            Err(err) => {
                tried.push(err.to_string());
                continue;
            }
        };
        if kind.is_some_and(|k| k != info.kind) {
            continue;
        }
        let temp =
            tempfile::Builder::new().prefix("picket-export").tempdir().map_err(|e| ScanError::io("temp dir", e))?;
        let archive = temp.path().join("image.tar");
        match engine::export_image(socket, name, &archive, progress).await {
            Ok(_) => return Ok(Exported { temp, archive, socket: socket.clone(), engine: info.kind }),
            Err(err) => tried.push(err.to_string()),
        }
    }
    let engines = match kind {
        Some(k) => format!("{} engine", k.as_str()),
        None => "container engine".to_string(),
    };
    let detail = if tried.is_empty() { format!("no {engines} API socket found") } else { tried.join("; ") };
    Err(ScanError::Source { what: name.to_string(), message: format!("not found in any local {engines}: {detail}") })
}

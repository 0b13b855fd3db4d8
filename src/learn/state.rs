//! The agent's baselines on the host: one JSON file, written whole to a temporary file and
//! renamed over the old one, so a crash or a full disk never leaves half a file. (The console's
//! sled store is locked by the console; the agent is another process, often on another node.)

use std::path::{Path, PathBuf};

use super::Baselines;

/// The file's format version; a file of another version is set aside, never misread.
pub const STATE_VERSION: u32 = 1;
/// Where a root agent keeps its baselines unless told otherwise.
pub const DEFAULT_DIR: &str = "/var/lib/picket/agent";
const FILE_NAME: &str = "baselines.json";
/// A baselines file larger than this is refused (the bounds keep real ones far smaller).
const MAX_BYTES: u64 = 256 * 1024 * 1024;

#[derive(serde::Serialize, serde::Deserialize)]
struct OnDisk {
    version: u32,
    #[serde(flatten)]
    baselines: Baselines,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("baselines {path}: {message}", path = .path.display())]
    Io { path: PathBuf, message: String },
}

/// The baselines file in `dir`.
pub fn file_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the baselines kept in `dir`; none yet is an empty set. A file that does not read (or
/// of another version) is renamed aside with a `.bad` suffix and said, so learning starts again
/// rather than the agent refusing to run.
pub fn load(dir: &Path) -> Result<(Baselines, Option<String>), StateError> {
    let path = file_in(dir);
    let io = |message: String| StateError::Io { path: path.clone(), message };
    let text = match crate::input::read_text(&path, MAX_BYTES) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Baselines::default(), None)),
        Err(e) => return Err(io(e.to_string())),
    };
    match serde_json::from_str::<OnDisk>(&text) {
        Ok(on_disk) if on_disk.version == STATE_VERSION => Ok((on_disk.baselines, None)),
        outcome => {
            let why = match outcome {
                Ok(on_disk) => format!("version {} (this agent reads {STATE_VERSION})", on_disk.version),
                Err(e) => e.to_string(),
            };
            let aside = path.with_extension("json.bad");
            std::fs::rename(&path, &aside).map_err(|e| io(format!("cannot set it aside: {e}")))?;
            Ok((
                Baselines::default(),
                Some(format!(
                    "baselines {}: {why}; set aside as {}, learning starts again",
                    path.display(),
                    aside.display()
                )),
            ))
        }
    }
}

/// Reads a baselines file without touching it (the CLI reading an agent's file): a file that
/// does not read is an error.
pub fn load_file(path: &Path) -> Result<(Baselines, Option<String>), StateError> {
    let io = |message: String| StateError::Io { path: path.to_path_buf(), message };
    let text = crate::input::read_text(path, MAX_BYTES).map_err(|e| io(e.to_string()))?;
    let on_disk: OnDisk = serde_json::from_str(&text).map_err(|e| io(e.to_string()))?;
    if on_disk.version != STATE_VERSION {
        return Err(io(format!("version {} (this picket reads {STATE_VERSION})", on_disk.version)));
    }
    Ok((on_disk.baselines, None))
}

/// Writes the baselines to `dir` (made if missing), replacing the old file in one rename.
pub fn save(dir: &Path, baselines: &Baselines) -> Result<(), StateError> {
    let path = file_in(dir);
    let io = |message: String| StateError::Io { path: path.clone(), message };
    std::fs::create_dir_all(dir).map_err(|e| io(format!("cannot make its directory: {e}")))?;
    let on_disk = OnDisk { version: STATE_VERSION, baselines: baselines.clone() };
    let text = serde_json::to_vec(&on_disk).map_err(|e| io(e.to_string()))?;
    let temporary = path.with_extension(format!("json.new.{}", std::process::id()));
    std::fs::write(&temporary, text).map_err(|e| io(format!("cannot write {}: {e}", temporary.display())))?;
    std::fs::rename(&temporary, &path).map_err(|e| io(format!("cannot rename {} over it: {e}", temporary.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::{GroupRef, Observation, Observed};

    #[test]
    fn baselines_survive_a_save_and_a_bad_file_is_set_aside() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(load(dir.path()).expect("empty").0, Baselines::default());
        let mut baselines = Baselines::default();
        baselines.observe(&Observation {
            group: GroupRef::local("web"),
            at_ms: 5,
            what: Observed::Open { path: "/tmp/a".into(), write: true },
        });
        save(dir.path(), &baselines).expect("save");
        assert_eq!(load(dir.path()).expect("load").0, baselines);
        std::fs::write(file_in(dir.path()), "{ half a file").expect("write");
        let (loaded, said) = load(dir.path()).expect("a bad file is set aside");
        assert_eq!(loaded, Baselines::default());
        assert!(said.is_some_and(|s| s.contains("set aside")));
        assert!(file_in(dir.path()).with_extension("json.bad").exists());
    }
}

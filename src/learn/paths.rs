//! A set of paths that folds into directories: once a directory has more than a few distinct
//! children, they are replaced by the directory itself (everything below it). A web server that
//! writes a new temporary file per request learns `/tmp/`, not ten thousand names, and the set
//! stays small. It never folds into `/` or into a directory directly below it that is
//! the root of the system's programs and configuration (`/etc/`, `/usr/` …): a learned policy
//! of `dir: /, recursive: true` allows everything and protects nothing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A directory with more distinct children than this is folded.
pub const FOLD_OVER: usize = 4;

/// Directories never folded into, whatever is written below them.
const NEVER_FOLDED: &[&str] =
    &["/", "/etc/", "/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/boot/", "/proc/", "/sys/"];

/// Paths (`/etc/app.conf`) and directories (`/tmp/`, ending in `/`: everything below).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PathSet(BTreeSet<String>);

impl PathSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether `path` is in the set or below one of its directories.
    pub fn covers(&self, path: &str) -> bool {
        if self.0.contains(path) {
            return true;
        }
        ancestors(path).any(|dir| self.0.contains(dir))
    }

    /// Adds `path` (absolute); returns whether the set changed. Relative or empty paths are not
    /// learned (the sensor reports absolute paths; anything else is not a place).
    pub fn insert(&mut self, path: &str) -> bool {
        if !path.starts_with('/') || self.covers(path) {
            return false;
        }
        self.0.insert(path.to_string());
        let mut dir = parent(path);
        while let Some(d) = dir {
            if NEVER_FOLDED.contains(&d) || self.children_of(d) <= FOLD_OVER {
                break;
            }
            self.fold(d);
            dir = parent(d);
        }
        true
    }

    /// Folds everything below `dir` into it.
    pub fn fold(&mut self, dir: &str) {
        self.0.retain(|p| !(p.starts_with(dir) && p.len() > dir.len()));
        self.0.insert(dir.to_string());
    }

    /// Folds until at most `max` entries are left, deepest directories first; never into the
    /// directories [`NEVER_FOLDED`] names, so it may stay above `max` (the caller says so).
    pub fn fold_to(&mut self, max: usize) {
        while self.0.len() > max {
            let Some(dir) = self
                .0
                .iter()
                .filter_map(|p| parent(p))
                .filter(|d| !NEVER_FOLDED.contains(d))
                .max_by_key(|d| {
                    let children = self.children_of(d);
                    (children >= 2, d.matches('/').count(), children)
                })
                .map(str::to_string)
            else {
                return;
            };
            self.fold(&dir);
        }
    }

    /// Distinct direct children of `dir` in the set (a file, or a subdirectory holding entries).
    fn children_of(&self, dir: &str) -> usize {
        let mut children = BTreeSet::new();
        for p in self.0.range(dir.to_string()..) {
            let Some(rest) = p.strip_prefix(dir) else { break };
            if rest.is_empty() {
                continue;
            }
            children.insert(rest.split('/').next().unwrap_or(rest));
        }
        children.len()
    }
}

/// The directory holding `path` (`/a/b` and `/a/b/` → `/a/`); None for `/`.
fn parent(path: &str) -> Option<&str> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let cut = trimmed.rfind('/')?;
    Some(&path[..=cut])
}

/// Every directory above `path`, nearest first.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(parent(path), |d| parent(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_children_fold_into_their_directory_and_it_covers_new_ones() {
        let mut set = PathSet::new();
        for i in 0..FOLD_OVER {
            assert!(set.insert(&format!("/var/cache/app/{i}.tmp")));
        }
        assert_eq!(set.len(), FOLD_OVER, "not folded yet");
        assert!(set.insert("/var/cache/app/last.tmp"));
        assert_eq!(set.iter().collect::<Vec<_>>(), ["/var/cache/app/"]);
        assert!(set.covers("/var/cache/app/deep/new.tmp"));
        assert!(!set.insert("/var/cache/app/other"), "covered already");
        assert!(!set.covers("/var/cache/other"));
    }

    #[test]
    fn it_never_folds_into_the_root_or_the_systems_directories() {
        let mut set = PathSet::new();
        for name in ["a", "b", "c", "d", "e", "f"] {
            set.insert(&format!("/{name}"));
            set.insert(&format!("/etc/{name}.conf"));
        }
        assert!(!set.covers("/etc/shadow"), "{set:?}");
        assert!(!set.covers("/g"));
        assert_eq!(set.len(), 12);
        set.fold_to(3);
        assert_eq!(set.len(), 12, "nothing may fold: {set:?}");
    }

    #[test]
    fn folding_to_a_size_takes_the_deepest_directories_first() {
        let mut set = PathSet::new();
        for p in ["/var/log/app/a.log", "/var/log/app/b.log", "/var/lib/app/db", "/tmp/x"] {
            set.insert(p);
        }
        set.fold_to(3);
        assert_eq!(set.iter().collect::<Vec<_>>(), ["/tmp/x", "/var/lib/app/db", "/var/log/app/"]);
        set.fold_to(2);
        assert_eq!(set.iter().collect::<Vec<_>>(), ["/tmp/x", "/var/"]);
    }

    #[test]
    fn relative_paths_are_not_learned() {
        let mut set = PathSet::new();
        assert!(!set.insert("relative/file"));
        assert!(!set.insert(""));
        assert!(set.is_empty());
    }
}

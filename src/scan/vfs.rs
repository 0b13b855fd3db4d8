//! The virtual filesystem of an image: layers applied in order (whiteouts, opaque directories,
//! hardlinks, symlinks) into an index of paths, without extracting anything to disk. The contents
//! of the files catalogers ask for are kept in memory; everything else is only indexed.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A normalised path inside the image: no leading `/`, no `.` or `..`, `/`-separated.
pub type VPath = String;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File { size: u64, mode: u32 },
    Symlink { target: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// Index of the layer that last wrote it.
    pub layer: usize,
    pub content: Option<Arc<Vec<u8>>>,
    /// Build facts of an executable (Go build info, cargo-auditable data), when it has any.
    pub extract: Option<Arc<super::binary::BinaryExtract>>,
}

#[derive(Debug, Default)]
pub struct VirtualFs {
    nodes: BTreeMap<VPath, Node>,
    /// Layer identities (diff ids), by index.
    layer_ids: Vec<String>,
    /// Bytes of file contents held for the catalogers (`Limits::max_kept_bytes` bounds it).
    kept: u64,
}

fn held(node: &Node) -> u64 {
    node.content.as_ref().map_or(0, |c| c.len() as u64)
}

/// How deep symlink chains may go (as the kernel's `MAXSYMLINKS`).
const MAX_SYMLINK_HOPS: usize = 40;

impl VirtualFs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts applying a new layer; returns its index.
    pub fn begin_layer(&mut self, id: String) -> usize {
        self.layer_ids.push(id);
        self.layer_ids.len() - 1
    }

    pub fn layer_id(&self, index: usize) -> Option<&str> {
        self.layer_ids.get(index).map(String::as_str)
    }

    pub fn insert(&mut self, path: VPath, node: Node) {
        if let NodeKind::Dir = node.kind
            && let Some(existing) = self.nodes.get_mut(&path)
            && existing.kind == NodeKind::Dir
        {
            existing.layer = node.layer;
            return;
        }
        // A file replacing a directory hides what was below it.
        if !matches!(node.kind, NodeKind::Dir) {
            self.remove_below(&path, node.layer);
        }
        self.kept += held(&node);
        if let Some(old) = self.nodes.insert(path, node) {
            self.kept = self.kept.saturating_sub(held(&old));
        }
    }

    /// Bytes of file contents held for the catalogers now.
    pub fn kept_bytes(&self) -> u64 {
        self.kept
    }

    /// `.wh.NAME`: removes `path` and everything below it, written by layers before `layer`.
    pub fn whiteout(&mut self, path: &str, layer: usize) {
        if self.nodes.get(path).is_some_and(|n| n.layer < layer)
            && let Some(old) = self.nodes.remove(path)
        {
            self.kept = self.kept.saturating_sub(held(&old));
        }
        self.remove_below(path, layer);
    }

    /// `.wh..wh..opq` in `dir`: hides everything lower layers put in it.
    pub fn opaque(&mut self, dir: &str, layer: usize) {
        self.remove_below(dir, layer);
    }

    fn remove_below(&mut self, path: &str, layer: usize) {
        let prefix = if path.is_empty() { String::new() } else { format!("{path}/") };
        let doomed: Vec<VPath> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(_, n)| n.layer < layer)
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            if let Some(old) = self.nodes.remove(&p) {
                self.kept = self.kept.saturating_sub(held(&old));
            }
        }
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every regular file, in path order.
    pub fn files(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().filter(|(_, n)| matches!(n.kind, NodeKind::File { .. })).map(|(p, n)| (p.as_str(), n))
    }

    /// Follows symlinks (in every path component) inside the image root, as a chroot would.
    /// Returns None for a dangling link, a loop, or a link that would climb out of the root.
    pub fn resolve(&self, path: &str) -> Option<(VPath, &Node)> {
        let mut pending: Vec<String> = path.split('/').filter(|c| !c.is_empty()).rev().map(String::from).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match component.as_str() {
                "." => continue,
                ".." => {
                    resolved.pop()?;
                    continue;
                }
                _ => {}
            }
            resolved.push(component);
            let current = resolved.join("/");
            if let Some(Node { kind: NodeKind::Symlink { target }, .. }) = self.nodes.get(&current) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return None;
                }
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(target.split('/').filter(|c| !c.is_empty()).rev().map(String::from));
            }
        }
        let key = resolved.join("/");
        self.nodes.get(&key).map(|node| (key, node))
    }

    /// Symlinks whose relative target climbs above the image root (`../../../etc/shadow` from
    /// `usr/lib/x`), with their targets: never followed out of the image, and worth a warning.
    pub fn links_out_of_root(&self) -> Vec<(&str, &str)> {
        self.nodes
            .iter()
            .filter_map(|(path, node)| match &node.kind {
                NodeKind::Symlink { target } if !target.starts_with('/') => Some((path.as_str(), target.as_str())),
                _ => None,
            })
            .filter(|(path, target)| {
                let mut depth = path.matches('/').count();
                for component in target.split('/') {
                    match component {
                        "" | "." => {}
                        ".." if depth == 0 => return true,
                        ".." => depth -= 1,
                        _ => depth += 1,
                    }
                }
                false
            })
            .collect()
    }

    /// The captured contents of a file, following symlinks.
    pub fn read(&self, path: &str) -> Option<Arc<Vec<u8>>> {
        self.resolve(path).and_then(|(_, node)| node.content.clone())
    }

    /// A one-layer filesystem of text files, for cataloger tests.
    #[cfg(test)]
    pub fn from_files(files: &[(&str, &str)]) -> Self {
        let mut fs = Self::new();
        let layer = fs.begin_layer("sha256:l0".into());
        for (path, text) in files {
            let node = Node {
                kind: NodeKind::File { size: text.len() as u64, mode: 0o644 },
                layer,
                content: Some(Arc::new(text.as_bytes().to_vec())),
                extract: None,
            };
            fs.insert((*path).to_string(), node);
        }
        fs
    }

    /// The location of `path` for a package record: its layer id and `/path`.
    pub fn location(&self, path: &str) -> crate::model::Location {
        let layer = self.nodes.get(path).and_then(|n| self.layer_id(n.layer)).map(String::from);
        crate::model::Location { layer, path: format!("/{path}") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(layer: usize, text: &str) -> Node {
        Node {
            kind: NodeKind::File { size: text.len() as u64, mode: 0o644 },
            layer,
            content: Some(Arc::new(text.as_bytes().to_vec())),
            extract: None,
        }
    }

    fn link(layer: usize, target: &str) -> Node {
        Node { kind: NodeKind::Symlink { target: target.into() }, layer, content: None, extract: None }
    }

    #[test]
    fn whiteouts_hide_lower_layers_only() {
        let mut fs = VirtualFs::new();
        let l0 = fs.begin_layer("sha256:a".into());
        fs.insert("etc/motd".into(), file(l0, "hi"));
        fs.insert("usr/bin/wall".into(), file(l0, "elf"));
        fs.insert("usr/bin/write".into(), file(l0, "elf"));
        let l1 = fs.begin_layer("sha256:b".into());
        fs.insert("etc/motd-new".into(), file(l1, "x"));
        fs.whiteout("etc/motd", l1);
        fs.whiteout("usr/bin/wall", l1);
        assert!(fs.get("etc/motd").is_none());
        assert!(fs.get("usr/bin/wall").is_none());
        assert!(fs.get("usr/bin/write").is_some());
        assert_eq!(fs.location("etc/motd-new").layer.as_deref(), Some("sha256:b"));
    }

    #[test]
    fn whiteout_of_a_directory_removes_its_tree_but_not_same_layer_files() {
        let mut fs = VirtualFs::new();
        let l0 = fs.begin_layer("a".into());
        fs.insert("app/old/x".into(), file(l0, "1"));
        fs.insert("app/old/y/z".into(), file(l0, "2"));
        fs.insert("app/older".into(), file(l0, "3"));
        let l1 = fs.begin_layer("b".into());
        fs.insert("app/old/new".into(), file(l1, "4"));
        fs.whiteout("app/old", l1);
        assert!(fs.get("app/old/x").is_none() && fs.get("app/old/y/z").is_none());
        assert!(fs.get("app/old/new").is_some(), "same-layer files survive their layer's whiteouts");
        assert!(fs.get("app/older").is_some(), "a sibling sharing the prefix survives");
    }

    #[test]
    fn opaque_directory_hides_lower_contents() {
        let mut fs = VirtualFs::new();
        let l0 = fs.begin_layer("a".into());
        fs.insert("data/a".into(), file(l0, "1"));
        let l1 = fs.begin_layer("b".into());
        fs.insert("data/b".into(), file(l1, "2"));
        fs.opaque("data", l1);
        assert!(fs.get("data/a").is_none());
        assert!(fs.get("data/b").is_some());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let mut fs = VirtualFs::new();
        let l0 = fs.begin_layer("a".into());
        fs.insert("usr/lib/os-release".into(), file(l0, "ID=debian"));
        fs.insert("etc/os-release".into(), link(l0, "../usr/lib/os-release"));
        fs.insert("lib".into(), link(l0, "usr/lib"));
        fs.insert("abs".into(), link(l0, "/usr/lib/os-release"));
        fs.insert("escape".into(), link(l0, "../../../../etc/shadow"));
        fs.insert("loop1".into(), link(l0, "loop2"));
        fs.insert("loop2".into(), link(l0, "loop1"));
        assert_eq!(fs.read("etc/os-release").as_deref().map(Vec::as_slice), Some(&b"ID=debian"[..]));
        assert_eq!(fs.resolve("lib/os-release").map(|(p, _)| p).as_deref(), Some("usr/lib/os-release"));
        assert!(fs.read("abs").is_some());
        assert!(fs.resolve("escape").is_none(), "a link climbing out of the root is not followed");
        assert_eq!(fs.links_out_of_root(), [("escape", "../../../../etc/shadow")]);
        assert!(fs.resolve("loop1").is_none());
    }

    #[test]
    fn a_file_replacing_a_directory_hides_its_tree() {
        let mut fs = VirtualFs::new();
        let l0 = fs.begin_layer("a".into());
        fs.insert("opt/tool/bin".into(), file(l0, "x"));
        let l1 = fs.begin_layer("b".into());
        fs.insert("opt/tool".into(), file(l1, "now a file"));
        assert!(fs.get("opt/tool/bin").is_none());
        assert_eq!(fs.files().count(), 1);
    }
}

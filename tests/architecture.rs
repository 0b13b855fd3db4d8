//! The layering DESIGN.md states, checked on the source: no import cycle between top-level
//! modules, capabilities never reach into the console (`app`, `ui`) or the CLI, and the console
//! never into kube, reqwest, aya or sled.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The console and the command line: everything else is below them.
const FRONTS: &[&str] = &["app", "ui", "cli"];
/// Crates only capabilities may use (DESIGN.md, "Boundary").
const NOT_IN_THE_CONSOLE: &[&str] = &["kube", "reqwest", "aya", "sled"];
const NOT_IN_CAPABILITIES: &[&str] = &["ratatui", "crossterm"];

fn top_level_modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .expect("src/")
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().to_str().and_then(|n| n.strip_suffix(".rs")).map(str::to_string))
        .filter(|name| name != "main" && name != "lib")
        .collect()
}

/// Every `.rs` file with the top-level module it belongs to.
fn files(src: &Path, modules: &BTreeSet<String>) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(src).into_iter().filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let relative = path.strip_prefix(src).expect("under src").to_string_lossy().to_string();
        let top = relative.split('/').next().unwrap_or_default().trim_end_matches(".rs").to_string();
        if modules.contains(&top) {
            out.push((top, relative, std::fs::read_to_string(path).expect("read a source file")));
        }
    }
    out
}

/// `crate::NAME` references in a file's text, for NAME a top-level module.
fn references<'a>(text: &'a str, modules: &'a BTreeSet<String>) -> impl Iterator<Item = String> + 'a {
    text.match_indices("crate::").filter_map(move |(at, _)| {
        let rest = &text[at + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        modules.contains(&name).then_some(name)
    })
}

fn uses_crate(text: &str, krate: &str) -> bool {
    text.lines().map(str::trim_start).any(|line| {
        line.starts_with(&format!("use {krate}::"))
            || line.contains(&format!(" {krate}::"))
            || line.contains(&format!("({krate}::"))
            || line.contains(&format!("<{krate}::"))
    })
}

#[test]
fn top_level_modules_form_no_cycle_and_respect_the_boundary() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = top_level_modules(&src);
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut violations = Vec::new();
    for (top, file, text) in files(&src, &modules) {
        for target in references(&text, &modules) {
            if target != top {
                edges.entry(top.clone()).or_default().entry(target.clone()).or_default().insert(file.clone());
            }
            if !FRONTS.contains(&top.as_str()) && FRONTS.contains(&target.as_str()) {
                violations.push(format!("{file}: a capability imports crate::{target}"));
            }
        }
        let forbidden = match top.as_str() {
            "app" | "ui" => NOT_IN_THE_CONSOLE,
            "cli" | "config" => &[][..],
            _ => NOT_IN_CAPABILITIES,
        };
        for krate in forbidden {
            if uses_crate(&text, krate) {
                violations.push(format!("{file}: uses {krate}"));
            }
        }
    }
    // A cycle shows as a module that reaches itself.
    for start in &modules {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, path)) = stack.pop() {
            for (next, via) in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let mut cycle = path.clone();
                    cycle.push(next.clone());
                    violations.push(format!("import cycle {} (first edge via {:?})", cycle.join(" -> "), via));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    violations.sort();
    violations.dedup();
    assert!(violations.is_empty(), "layering broken:\n{}", violations.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle_and_a_boundary_crossing() {
    // The same scan on made-up sources: it must catch what it is there to catch.
    let modules: BTreeSet<String> = ["scan", "app"].iter().map(|s| s.to_string()).collect();
    let found: Vec<String> =
        references("use crate::app::state; crate::scan::run(); crate::other::x", &modules).collect();
    assert_eq!(found, vec!["app".to_string(), "scan".to_string()]);
    assert!(uses_crate("use kube::Client;", "kube"));
    assert!(uses_crate("    let c: Option<kube::Client> = None;", "kube") || uses_crate("x(kube::Client)", "kube"));
    assert!(!uses_crate("// kubelet\nlet kubeconfig = 1;", "kube"));
}

//! Every ordering vector in the shared data for the ecosystems picket matches.

use std::cmp::Ordering;
use std::path::PathBuf;

use super::compare;
use crate::model::Ecosystem;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/version-vectors")
}

/// Checks both directions of each `A op B` line; returns the failures.
fn run(ecosystem: Ecosystem, file: &str) -> (usize, Vec<String>) {
    let path = vectors_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut failures = Vec::new();
    let mut total = 0;
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# ") || line.starts_with("// ") {
            continue;
        }
        let pieces: Vec<&str> = line.split(' ').collect();
        assert_eq!(pieces.len(), 3, "{file}: malformed vector line {line:?}");
        let expected = match pieces[1] {
            "<" => Ordering::Less,
            "=" => Ordering::Equal,
            ">" => Ordering::Greater,
            other => panic!("{file}: unknown comparator {other}"),
        };
        total += 1;
        let forward = compare(ecosystem, pieces[0], pieces[2]);
        let backward = compare(ecosystem, pieces[2], pieces[0]);
        if forward != expected || backward != expected.reverse() {
            failures.push(format!("{line}  (got {forward:?} / reverse {backward:?})"));
        }
    }
    (total, failures)
}

fn assert_all(ecosystem: Ecosystem, files: &[&str]) {
    let mut report = Vec::new();
    let mut total = 0;
    for file in files {
        let (count, failures) = run(ecosystem, file);
        total += count;
        report.extend(failures.into_iter().map(|f| format!("{file}: {f}")));
    }
    assert!(total > 0, "no vectors for {ecosystem}");
    assert!(
        report.is_empty(),
        "{} of {total} {ecosystem} vectors fail:\n{}",
        report.len(),
        report.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn debian_vectors() {
    assert_all(Ecosystem::Debian, &["debian-versions.txt", "debian-versions-generated.txt"]);
}

#[test]
fn alpine_vectors() {
    assert_all(Ecosystem::Alpine, &["alpine-versions.txt", "alpine-versions-generated.txt"]);
}

#[test]
fn redhat_vectors() {
    assert_all(Ecosystem::RedHat, &["redhat-versions.txt"]);
}

#[test]
fn pypi_vectors() {
    assert_all(Ecosystem::PyPI, &["pypi-versions.txt", "pypi-versions-generated.txt"]);
}

#[test]
fn semver_vectors_for_npm_crates_and_go() {
    for ecosystem in [Ecosystem::Npm, Ecosystem::CratesIo, Ecosystem::Go] {
        assert_all(ecosystem, &["semver-versions.txt"]);
    }
}

#[test]
fn maven_vectors() {
    assert_all(Ecosystem::Maven, &["maven-versions.txt", "maven-versions-generated.txt"]);
}

#[test]
fn rubygems_vectors() {
    assert_all(Ecosystem::RubyGems, &["rubygems-versions.txt", "rubygems-versions-generated.txt"]);
}

#[test]
fn nuget_vectors() {
    assert_all(Ecosystem::NuGet, &["nuget-versions.txt"]);
}

#[test]
fn packagist_vectors() {
    assert_all(Ecosystem::Packagist, &["packagist-versions.txt", "packagist-versions-generated.txt"]);
}

#[test]
fn go_stdlib_and_v_prefix() {
    assert_eq!(compare(Ecosystem::Go, "v1.22.3", "1.22.10"), Ordering::Less);
}

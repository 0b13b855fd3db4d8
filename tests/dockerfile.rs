//! `scan dockerfile` rules on realistic Dockerfiles, and parity with hadolint on the rules both
//! tools have.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use picket::scan::dockerfile;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dockerfiles")
}

fn fixture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().expect("file name").to_string_lossy().into_owned()
}

fn picket(path: &Path) -> BTreeSet<(u32, String)> {
    let findings = dockerfile::check_file(path).unwrap_or_else(|e| panic!("{e}"));
    findings.into_iter().map(|f| (f.line.expect("line"), f.id)).collect()
}

/// What picket reports on each fixture: (line, rule id).
const EXPECTED: &[(&str, &[(u32, &str)])] = &[
    ("alpine-apk.Dockerfile", &[(1, "PKT-DF-004"), (1, "PKT-DF-014"), (2, "PKT-DF-010")]),
    (
        "curl-sh.Dockerfile",
        &[(3, "PKT-DF-007"), (3, "PKT-DF-012"), (3, "PKT-DF-025"), (8, "PKT-DF-012"), (8, "PKT-DF-025")],
    ),
    (
        "debian-app.Dockerfile",
        &[
            (1, "PKT-DF-003"),
            (1, "PKT-DF-014"),
            (2, "PKT-DF-017"),
            (3, "PKT-DF-008"),
            (4, "PKT-DF-007"),
            (4, "PKT-DF-009"),
            (5, "PKT-DF-005"),
            (6, "PKT-DF-006"),
            (7, "PKT-DF-015"),
            (7, "PKT-DF-016"),
            (8, "PKT-DF-019"),
            (9, "PKT-DF-018"),
            (10, "PKT-DF-023"),
            (11, "PKT-DF-021"),
            (12, "PKT-DF-001"),
        ],
    ),
    ("escape-backtick.Dockerfile", &[(2, "PKT-DF-014"), (8, "PKT-DF-006")]),
    ("go-multistage.Dockerfile", &[]),
    ("heredoc.Dockerfile", &[(2, "PKT-DF-014"), (10, "PKT-DF-016"), (15, "PKT-DF-011")]),
    ("node-stages.Dockerfile", &[(9, "PKT-DF-002"), (9, "PKT-DF-014"), (13, "PKT-DF-022")]),
    ("python-pip.Dockerfile", &[(8, "PKT-DF-011"), (16, "PKT-DF-020")]),
    ("secrets-env.Dockerfile", &[(3, "PKT-DF-013"), (4, "PKT-DF-013"), (7, "PKT-DF-013")]),
    ("suppressed.Dockerfile", &[]),
];

#[test]
fn fixtures_fire_exactly_the_expected_rules() {
    let files = fixture_files();
    let names: Vec<String> = files.iter().map(|p| file_name(p)).collect();
    let expected_names: Vec<&str> = EXPECTED.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, expected_names, "every fixture has expectations, and only fixtures do");
    for (path, (name, expected)) in files.iter().zip(EXPECTED) {
        let expected: BTreeSet<(u32, String)> = expected.iter().map(|(l, id)| (*l, id.to_string())).collect();
        assert_eq!(picket(path), expected, "{name}");
    }
}

#[test]
fn findings_carry_location_evidence_and_fix() {
    let path = fixtures().join("secrets-env.Dockerfile");
    let findings = dockerfile::check_file(&path).expect("parses");
    for finding in &findings {
        assert_eq!(finding.locations[0].path, path.display().to_string());
        assert_eq!(finding.data_source, "picket-dockerfile");
        assert!(finding.remediation.is_some());
        let evidence = finding.evidence.as_deref().expect("evidence");
        assert!(!evidence.contains("correct-horse") && !evidence.contains("ghp_") && !evidence.contains("sk_live"));
    }
}

/// picket rule ↔ the hadolint rule that checks the same thing.
const HADOLINT_MAP: &[(&str, &str)] = &[
    ("PKT-DF-001", "DL3002"),
    ("PKT-DF-003", "DL3006"),
    ("PKT-DF-004", "DL3007"),
    ("PKT-DF-005", "DL3020"),
    ("PKT-DF-007", "DL3015"),
    ("PKT-DF-008", "DL3009"),
    ("PKT-DF-010", "DL3019"),
    ("PKT-DF-011", "DL3042"),
    ("PKT-DF-013", "DL3064"),
    ("PKT-DF-015", "DL3004"),
    ("PKT-DF-016", "DL3003"),
    ("PKT-DF-017", "DL4000"),
    ("PKT-DF-019", "DL3000"),
    ("PKT-DF-020", "DL3022"),
    ("PKT-DF-021", "DL4003"),
    ("PKT-DF-022", "DL4004"),
    ("PKT-DF-023", "DL3025"),
    ("PKT-DF-025", "DL4006"),
];

/// Where the two tools disagree on a mapped pair, by design (docs/dockerfile.md, "Compared with
/// hadolint"): (file, line, hadolint rule, which tool fires).
const KNOWN_DIFFERENCES: &[(&str, u32, &str, &str)] = &[
    // hadolint does not read a heredoc body fed to a named shell (`RUN bash <<SCRIPT`).
    ("heredoc.Dockerfile", 10, "DL3003", "picket"),
    // DL4006 wants pipefail on every pipe; picket only where a download's failure would hide
    // (not `echo … | sha256sum -c`, whose failure shows).
    ("curl-sh.Dockerfile", 9, "DL4006", "hadolint"),
    // DL3002 looks at the last USER of the file; picket at the final stage, which has none here
    // (PKT-DF-002 fires on its FROM instead).
    ("node-stages.Dockerfile", 7, "DL3002", "hadolint"),
    // DL3064 judges the name alone; picket needs a literal value and skips *_FILE names.
    ("secrets-env.Dockerfile", 2, "DL3064", "hadolint"),
    ("secrets-env.Dockerfile", 8, "DL3064", "hadolint"),
    ("secrets-env.Dockerfile", 9, "DL3064", "hadolint"),
];

/// hadolint from the test venv (`./install.sh --dev`) or PATH. Missing: skip, except in CI.
fn hadolint() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/testbed/venv/bin/hadolint");
    if venv.is_file() {
        return Some(venv);
    }
    let on_path = Command::new("hadolint").arg("--version").output().is_ok_and(|o| o.status.success());
    if on_path {
        return Some(PathBuf::from("hadolint"));
    }
    assert!(std::env::var_os("CI").is_none(), "hadolint is required in CI: run ./install.sh --dev");
    eprintln!("SKIPPED: hadolint is not installed (./install.sh --dev installs it in target/testbed/venv)");
    None
}

#[derive(serde::Deserialize)]
struct HadolintResult {
    code: String,
    line: u32,
}

fn hadolint_results(hadolint: &Path, path: &Path) -> Vec<HadolintResult> {
    // An empty HOME and working directory keep any user or project .hadolint.yaml out.
    let home = tempfile::tempdir().expect("temp dir");
    let output = Command::new(hadolint)
        .args(["--no-fail", "--no-color", "--format", "json"])
        .arg(path)
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .expect("hadolint runs");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("hadolint output for {}: {e}: {}", path.display(), String::from_utf8_lossy(&output.stdout))
    })
}

#[test]
fn mapping_matches_the_rule_table() {
    for rule in dockerfile::rules() {
        let mapped: Vec<&str> = HADOLINT_MAP.iter().filter(|(id, _)| *id == rule.id).map(|(_, dl)| *dl).collect();
        assert_eq!(mapped, rule.hadolint, "{}", rule.id);
    }
}

#[test]
fn parity_with_hadolint() {
    let Some(hadolint) = hadolint() else { return };
    let to_dl = |id: &str| HADOLINT_MAP.iter().find(|(p, _)| *p == id).map(|(_, dl)| *dl);
    let (mut agreed, mut differences) = (0, Vec::new());
    for path in fixture_files() {
        let name = file_name(&path);
        let results = hadolint_results(&hadolint, &path);
        assert!(!results.iter().any(|r| r.code == "DL1000"), "hadolint could not parse {name}");
        let theirs: BTreeSet<(u32, &str)> = results
            .iter()
            .filter(|r| HADOLINT_MAP.iter().any(|(_, dl)| *dl == r.code))
            .map(|r| (r.line, r.code.as_str()))
            .collect();
        let ours: BTreeSet<(u32, &str)> =
            picket(&path).iter().filter_map(|(line, id)| Some((*line, to_dl(id)?))).collect();
        agreed += ours.intersection(&theirs).count();
        for (line, dl) in ours.difference(&theirs) {
            differences.push((name.clone(), *line, dl.to_string(), "picket"));
        }
        for (line, dl) in theirs.difference(&ours) {
            differences.push((name.clone(), *line, dl.to_string(), "hadolint"));
        }
    }
    let known: Vec<(String, u32, String, &str)> =
        KNOWN_DIFFERENCES.iter().map(|(f, l, dl, who)| (f.to_string(), *l, dl.to_string(), *who)).collect();
    differences.sort();
    let mut known_sorted = known.clone();
    known_sorted.sort();
    println!("picket and hadolint agree on {agreed} mapped findings; {} documented differences", known.len());
    assert_eq!(differences, known_sorted, "differences with hadolint (file, line, rule, only fired by)");
}

/// A closed standard error or output (`2>&-`, a reader that went away) is not a crash: picket
/// ends with its own exit status (2 for an error), not a panic's 101.
#[test]
fn closed_standard_streams_do_not_crash_picket() {
    let closed = || {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        writer
    };
    let status = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["scan", "dockerfile", "/nonexistent/Dockerfile"])
        .stderr(closed())
        .status()
        .expect("picket runs");
    assert_eq!(status.code(), Some(2), "an error, reported where nobody reads it");
    let status = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["version"])
        .stdout(closed())
        .stderr(closed())
        .status()
        .expect("picket runs");
    assert_eq!(status.code(), Some(2), "stdout closed: an error, not a panic");
}

/// Inputs that are not regular files are refused by type, at once: a `.picketignore` that links
/// to /dev/zero, a FIFO as `--vex` (reading either would never end).
#[test]
fn exceptions_that_are_not_regular_files_are_refused_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dockerfile = dir.path().join("Dockerfile");
    std::fs::write(&dockerfile, "FROM debian:12\n").expect("write");
    std::os::unix::fs::symlink("/dev/zero", dir.path().join(".picketignore")).expect("symlink");
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["scan", "dockerfile"])
        .arg(&dockerfile)
        .current_dir(dir.path())
        .output()
        .expect("picket runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(".picketignore") && stderr.contains("not a regular file"), "{stderr}");
    std::fs::remove_file(dir.path().join(".picketignore")).expect("remove");
    let fifo = dir.path().join("vex.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let out = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["scan", "dockerfile", "--vex"])
        .arg(&fifo)
        .arg(&dockerfile)
        .output()
        .expect("picket runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("vex.json") && stderr.contains("not a regular file"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "at once, not after reading for ever");
}

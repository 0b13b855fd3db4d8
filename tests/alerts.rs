//! `picket alerts` (the Alerts pane's CLI twin) over a store holding alerts as the console keeps
//! them: folded, shown in full, acknowledged, snoozed, marked false positive (the exception
//! written and loadable), reopened. The agent tests (tests/agent.rs) show real attacks reaching
//! the same store.

use std::path::Path;
use std::process::Command;

use picket::agent::alert::{Action, Alert, Trigger};
use picket::agent::attribution::{ContainerRef, Runtime};
use picket::agent::enforce::Mode;
use picket::agent::processes::Ancestor;
use picket::agent::wire::WireEvent;
use picket::model::Severity;
use serde_json::Value;

struct Env {
    root: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self { root: tempfile::tempdir().expect("temp dir") }
    }

    fn data(&self) -> std::path::PathBuf {
        self.root.path().join("data")
    }

    fn config(&self) -> std::path::PathBuf {
        self.root.path().join("config")
    }

    fn picket(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_picket"))
            .arg("--data-dir")
            .arg(self.data())
            .args(args)
            .env("XDG_CONFIG_HOME", self.config())
            .env("USER", "oncall")
            .output()
            .expect("picket runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn json(&self, args: &[&str]) -> Value {
        let (ok, stdout, stderr) = self.picket(args);
        assert!(ok, "picket {args:?}: {stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("picket {args:?}: {e}: {stdout}"))
    }
}

fn alert(id: &str, rule: &str, severity: Severity, container: Option<&str>, exe: &str, at: u64) -> WireEvent {
    let container = container.map(|name| ContainerRef {
        runtime: Runtime::Containerd,
        id: format!("{:0>64}", id.len()),
        pod_uid: Some("uid-1".into()),
        name: Some(name.into()),
        image: Some(format!("registry.local/{name}:1.0")),
        pod_namespace: Some("shop".into()),
        pod_name: Some(format!("{name}-7d9c")),
        pod_owner: None,
    });
    WireEvent::alert(
        "node-a",
        Alert {
            id: id.into(),
            at_unix_ms: at,
            rule: rule.into(),
            title: format!("{rule} fired"),
            severity,
            technique: "T1059".into(),
            why: "servers do not start shells".into(),
            mode: Mode::Monitor,
            action: Action::Alerted,
            policy: String::new(),
            event: Trigger {
                kind: "exec".into(),
                pid: 42,
                comm: "sh".into(),
                exe: exe.into(),
                args: vec!["sh".into(), "-i".into()],
                ..Trigger::default()
            },
            ancestry: vec![
                Ancestor {
                    pid: 42,
                    exe: exe.into(),
                    args: vec!["sh".into(), "-i".into()],
                    uid: 0,
                    start_ns: 2,
                    exited: false,
                    replaced: false,
                },
                Ancestor {
                    pid: 7,
                    exe: "/usr/sbin/nginx".into(),
                    args: vec!["nginx".into()],
                    uid: 0,
                    start_ns: 1,
                    exited: false,
                    replaced: false,
                },
            ],
            count: 1,
        },
        container,
    )
}

fn seed(data: &Path) {
    let now = picket::alert::now_unix_ms();
    let store = picket::store::Store::open(&data.join("store")).expect("store");
    let log = picket::alert::AlertLog::open(&store).expect("alert log");
    let events = vec![
        alert("a1", "shell-from-server", Severity::High, Some("web"), "/bin/sh", now - 5_000),
        alert("a2", "shell-from-server", Severity::High, Some("web"), "/bin/sh", now - 4_000),
        alert("a3", "shell-from-server", Severity::High, Some("web"), "/bin/sh", now - 3_000),
        alert("a4", "package-manager-in-container", Severity::Medium, Some("web"), "/usr/bin/apt-get", now - 2_000),
        alert("a5", "read-password-files", Severity::Critical, None, "/usr/bin/cat", now - 1_000),
    ];
    assert_eq!(log.record(&events, now).expect("kept"), 5);
    store.flush().expect("flushed");
}

fn folds(env: &Env, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["alerts", "list", "--json"];
    args.extend_from_slice(extra);
    env.json(&args).as_array().cloned().expect("an array")
}

fn id_of(folds: &[Value], rule: &str) -> String {
    folds.iter().find(|f| f["rule"] == rule).and_then(|f| f["id"].as_str()).expect("a fold").to_string()
}

#[test]
fn alerts_fold_show_and_triage_through_the_cli() {
    let env = Env::new();
    seed(&env.data());

    let open = folds(&env, &[]);
    let seen: Vec<(&str, u64)> =
        open.iter().map(|f| (f["rule"].as_str().unwrap_or(""), f["count"].as_u64().unwrap_or(0))).collect();
    assert_eq!(seen, [("read-password-files", 1), ("package-manager-in-container", 1), ("shell-from-server", 3)]);
    assert_eq!(open[2]["container"], "shop/web-7d9c/web");
    assert_eq!(open[0]["container"], "host");
    assert_eq!(folds(&env, &["--severity", "critical"]).len(), 1);
    assert_eq!(folds(&env, &["--namespace", "shop"]).len(), 2);
    assert_eq!(folds(&env, &["--rule", "shell"]).len(), 1);
    let (ok, table, _) = env.picket(&["alerts", "list"]);
    assert!(ok && table.contains("shell-from-server") && table.contains("shop/web-7d9c/web"), "{table}");
    let raw = env.json(&["alerts", "list", "--raw", "--json"]);
    assert_eq!(raw.as_array().map(Vec::len), Some(5));

    // Show: by fold id or by alert id, the same fold; the process tree from the first process.
    let shell = id_of(&open, "shell-from-server");
    let shown = env.json(&["alerts", "show", &shell, "--json"]);
    assert_eq!(shown["alert"]["id"], "a3", "the fold's newest alert");
    assert_eq!(env.json(&["alerts", "show", "a1", "--json"])["fold"]["id"], shell.as_str());
    assert_eq!(shown["image"]["reference"], "registry.local/web:1.0");
    assert!(shown["image"]["scanned"].is_null(), "never scanned in this store");
    let (ok, text, _) = env.picket(&["alerts", "show", &shell]);
    assert!(ok, "{text}");
    let nginx = text.find("[7] /usr/sbin/nginx").expect("the parent in the tree");
    let sh = text.find("└─ [42] /bin/sh sh -i").expect("the child under it");
    assert!(nginx < sh, "{text}");
    assert!(text.contains("why: servers do not start shells") && text.contains("never scanned here"), "{text}");
    let (ok, _, err) = env.picket(&["alerts", "show", "nope"]);
    assert!(!ok && err.contains("no alert or fold has the id 'nope'"), "{err}");

    // Acknowledge: out of the open list, in --all as acked, by whom.
    let (ok, out, err) = env.picket(&["alerts", "ack", &shell]);
    assert!(ok && out.contains("acknowledged"), "{out}{err}");
    assert!(folds(&env, &[]).iter().all(|f| f["rule"] != "shell-from-server"));
    let all = folds(&env, &["--all"]);
    let acked = all.iter().find(|f| f["id"] == shell.as_str()).expect("in --all");
    assert_eq!(acked["state"], "acknowledged");
    assert!(env.picket(&["alerts", "show", &shell]).1.contains("acknowledged by oncall"));
    // It fires again: open, counting what is new.
    {
        let store = picket::store::Store::open(&env.data().join("store")).expect("store");
        let log = picket::alert::AlertLog::open(&store).expect("log");
        let now = picket::alert::now_unix_ms() + 10;
        log.record(&[alert("a6", "shell-from-server", Severity::High, Some("web"), "/bin/sh", now)], now)
            .expect("kept");
        store.flush().expect("flushed");
    }
    let again = folds(&env, &[]);
    let fired = again.iter().find(|f| f["id"] == shell.as_str()).expect("open again");
    assert_eq!(
        (fired["state"].as_str(), fired["count"].as_u64(), fired["since_ack"].as_u64()),
        (Some("open"), Some(4), Some(1))
    );

    // Snooze: hidden whatever fires; a bad duration is refused naming it.
    let password = id_of(&again, "read-password-files");
    let (ok, _, err) = env.picket(&["alerts", "snooze", &password, "--for", "2 weeks"]);
    assert!(!ok && err.contains("'2 weeks'"), "{err}");
    let (ok, out, _) = env.picket(&["alerts", "snooze", &password, "--for", "2h"]);
    assert!(ok && out.contains("snoozed"), "{out}");
    assert!(folds(&env, &[]).iter().all(|f| f["id"] != password.as_str()));

    // False positive: the diff first, nothing written; with --yes the exception is written, the
    // rules load with it, and the fold leaves the open list.
    let apt = id_of(&again, "package-manager-in-container");
    let exceptions = env.config().join("picket/rules/false-positives.yaml");
    let (ok, diff, _) = env.picket(&["alerts", "false-positive", &apt]);
    assert!(ok && diff.contains("+  - id: \"package-manager-in-container\""), "{diff}");
    assert!(!exceptions.exists(), "written without --yes");
    let (ok, _, err) = env.picket(&["alerts", "false-positive", &apt, "--yes"]);
    assert!(ok, "{err}");
    let written = std::fs::read_to_string(&exceptions).expect("the exceptions file");
    assert!(written.contains("image: \"registry.local/web:1.0\", process: \"/usr/bin/apt-get\""), "{written}");
    let rules = picket::rules::RuleSet::load(exceptions.parent().expect("dir"), true).expect("the rules load");
    let rule = rules.rules.iter().find(|r| r.info.id == "package-manager-in-container").expect("the rule");
    assert_eq!(rule.exceptions.len(), 1);
    assert!(folds(&env, &[]).iter().all(|f| f["id"] != apt.as_str()));
    assert_eq!(
        folds(&env, &["--all"]).iter().find(|f| f["id"] == apt.as_str()).map(|f| f["state"].clone()),
        Some("false-positive".into())
    );
    // Reopen undoes the triage record.
    let (ok, _, err) = env.picket(&["alerts", "reopen", &password]);
    assert!(ok, "{err}");
    assert!(folds(&env, &[]).iter().any(|f| f["id"] == password.as_str()));
    let (ok, _, err) = env.picket(&["alerts", "reopen", &password]);
    assert!(!ok && err.contains("open already"), "{err}");
}

#[test]
fn an_incident_bundle_holds_the_alert_its_container_and_hashes() {
    let env = Env::new();
    seed(&env.data());
    let capture = env.root.path().join("web.pcap");
    // A capture as `picket respond capture` writes one (a pcap header, no packets).
    let mut pcap = Vec::new();
    for part in [
        &0xa1b2_c3d4u32.to_le_bytes()[..],
        &2u16.to_le_bytes(),
        &4u16.to_le_bytes(),
        &[0u8; 8],
        &65535u32.to_le_bytes(),
        &1u32.to_le_bytes(),
    ] {
        pcap.extend_from_slice(part);
    }
    std::fs::write(&capture, &pcap).expect("write");
    let out = env.root.path().join("incident.tar.gz");
    let (ok, said, err) = env.picket(&[
        "incident",
        "bundle",
        "a2",
        "-o",
        out.to_str().expect("utf-8"),
        "--capture",
        capture.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{err}");
    assert!(
        said.contains("not included: sbom.json, findings.json: image registry.local/web:1.0 was never scanned here"),
        "{said}"
    );
    // Read it back as a user would.
    let mut files = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&out).expect("the bundle")));
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("an entry");
        let path = entry.path().expect("a path").display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read");
        files.insert(path, bytes);
    }
    let name = |file: &str| format!("incident-a2/{file}");
    for file in ["alert.json", "alerts.json", "process-tree.txt", "timeline.md", "manifest.json", "captures/web.pcap"] {
        assert!(files.contains_key(&name(file)), "{file} in {:?}", files.keys());
    }
    let alert: Value = serde_json::from_slice(&files[&name("alert.json")]).expect("JSON");
    assert_eq!(alert["alert"]["id"], "a2");
    // The same container's alerts around it, in time order; the host's alert is not its.
    let around: Value = serde_json::from_slice(&files[&name("alerts.json")]).expect("JSON");
    let ids: Vec<&str> = around.as_array().expect("array").iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(ids, ["a1", "a2", "a3", "a4"]);
    let tree = String::from_utf8_lossy(&files[&name("process-tree.txt")]).into_owned();
    assert!(tree.starts_with("[7] /usr/sbin/nginx nginx") && tree.contains("└─ [42] /bin/sh sh -i"), "{tree}");
    let timeline = String::from_utf8_lossy(&files[&name("timeline.md")]).into_owned();
    assert!(timeline.starts_with("# Incident: shell-from-server"), "{timeline}");
    assert!(timeline.contains("| shell-from-server **(this alert)** |"), "{timeline}");
    assert!(timeline.contains("## Not included"), "{timeline}");
    // Every file's hash is in the manifest, and right.
    let manifest: Value = serde_json::from_slice(&files[&name("manifest.json")]).expect("JSON");
    let listed = manifest["files"].as_array().expect("files");
    assert_eq!(listed.len(), files.len() - 1, "every file but the manifest");
    for entry in listed {
        let path = entry["path"].as_str().expect("a path");
        let bytes = &files[&name(path)];
        let digest: String =
            sha2::Digest::finalize(sha2::Digest::chain_update(<sha2::Sha256 as sha2::Digest>::new(), bytes))
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
        assert_eq!(entry["sha256"].as_str(), Some(digest.as_str()), "{path}");
        assert_eq!(entry["bytes"].as_u64(), Some(bytes.len() as u64));
    }
    // An existing file is not overwritten; an unknown alert is named.
    let (ok, _, err) = env.picket(&["incident", "bundle", "a2", "-o", out.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("cannot create"), "{err}");
    let (ok, _, err) = env.picket(&["incident", "bundle", "nope", "-o", "/tmp/never.tar.gz"]);
    assert!(!ok && err.contains("no alert or fold has the id 'nope'"), "{err}");
}

//! The vulnerability database against real records: the shared OSV sets, the Debian 12 dpkg
//! status of a real machine, `db update` from a mirror served on 127.0.0.1, and the build gate
//! through the binary.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use picket::model::{FindingKind, FixState, Severity};
use picket::scan::{self, ScanOptions, SourceSpec};
use picket::store::Store;
use picket::vulndb::update::{Outcome, UpdateOptions};
use picket::vulndb::{VulnDb, import, matcher};

use common::fixtures::shared_data;

fn import_shared(db: &VulnDb<'_>, ecosystems: &[&str]) {
    for ecosystem in ecosystems {
        let loaded = import::load_path(&shared_data().join("osv").join(ecosystem)).expect("load");
        assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
        import::write_source(db, &format!("osv:{ecosystem}"), ecosystem, loaded, (None, None)).expect("write");
    }
}

fn inventory(path: &Path) -> picket::scan::Sbom {
    let spec = SourceSpec::parse(&path.display().to_string()).expect("spec");
    scan::inventory(&spec, &ScanOptions::default(), &|_| {}).expect("inventory")
}

#[test]
fn named_packages_of_the_app_image_get_their_records() {
    let images = common::fixtures::images();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let db = VulnDb::open(&store).unwrap();
    import_shared(&db, &["PyPI", "npm", "Debian"]);
    let sbom = inventory(&images.join("oci"));
    let matched = matcher::match_sbom(&db, &sbom).unwrap();
    let find = |package: &str, id: &str| {
        matched
            .findings
            .iter()
            .find(|f| f.package.as_ref().is_some_and(|p| p.name == package) && f.ids().any(|i| i == id))
            .unwrap_or_else(|| panic!("no {id} for {package}"))
    };
    let urllib3 = find("urllib3", "CVE-2023-43804");
    assert_eq!(urllib3.package.as_ref().unwrap().version, "1.24.1");
    assert_eq!(urllib3.fixed_versions, ["1.26.17"]);
    assert_eq!(urllib3.fix_state, FixState::Fixed);
    // PYSEC and GHSA records of the same issue fold into one finding under the CVE.
    assert_eq!(matched.findings.iter().filter(|f| f.ids().any(|i| i == "CVE-2023-43804")).count(), 1);
    assert!(urllib3.aliases.iter().any(|a| a.starts_with("GHSA-")), "{:?}", urllib3.aliases);
    assert_eq!(urllib3.severity, Severity::High, "the GHSA record's CVSS vector rates it");
    assert!(urllib3.cvss.as_ref().is_some_and(|c| c.score >= 7.0));
    assert_eq!(find("Django", "CVE-2019-12308").fixed_versions, ["2.2.2"]);
    assert_eq!(find("PyYAML", "CVE-2020-14343").fixed_versions, ["5.4"]);
    let minimist = find("minimist", "CVE-2021-44906");
    assert_eq!(minimist.severity, Severity::Critical);
    // Debian records name source packages: binary apt-transport-https comes from source apt.
    let apt = find("apt-transport-https", "CVE-2026-109518");
    assert_eq!(apt.package.as_ref().unwrap().source_name.as_deref(), Some("apt"), "matched through its source");
    assert!(matched.findings.iter().all(|f| f.kind == FindingKind::Vulnerability));
}

#[test]
fn lock_files_match_crates_and_go_records_and_fixed_versions_do_not() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    std::fs::create_dir_all(project.join("svc")).unwrap();
    std::fs::write(
        project.join("Cargo.lock"),
        "version = 3\n\n[[package]]\nname = \"tar\"\nversion = \"0.4.15\"\n\n[[package]]\nname = \"smallvec\"\n\
         version = \"1.6.1\"\n\n[[package]]\nname = \"failure\"\nversion = \"0.1.8\"\n\n[[package]]\nname = \"hyper\"\n\
         version = \"0.14.2\"\n",
    )
    .unwrap();
    std::fs::write(
        project.join("svc/go.mod"),
        "module example.com/svc\n\ngo 1.21\n\nrequire (\n\tgithub.com/gin-gonic/gin v1.5.0\n\tgolang.org/x/text v0.3.3\n)\n",
    )
    .unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let db = VulnDb::open(&store).unwrap();
    import_shared(&db, &["crates.io", "Go"]);
    let sbom = inventory(&project);
    let matched = matcher::match_sbom(&db, &sbom).unwrap();
    let ids_of = |package: &str| -> BTreeSet<String> {
        matched
            .findings
            .iter()
            .filter(|f| f.package.as_ref().is_some_and(|p| p.name == package))
            .flat_map(|f| f.ids().map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    assert!(ids_of("tar").contains("RUSTSEC-2018-0002"), "{:?}", ids_of("tar"));
    assert!(ids_of("hyper").contains("RUSTSEC-2021-0020"), "0.14.2 is before the 0.14.3 fix");
    assert!(!ids_of("hyper").contains("RUSTSEC-2016-0002"), "0.14.2 is past the 0.9.4 fix");
    assert!(!ids_of("smallvec").contains("RUSTSEC-2021-0003"), "1.6.1 is the fixed version");
    assert!(ids_of("github.com/gin-gonic/gin").contains("GO-2020-0001"));
    assert!(!ids_of("golang.org/x/text").contains("GO-2020-0015"), "v0.3.3 is the fixed version");
    // failure's records are informational (unmaintained, unsound): reported apart.
    let failure: Vec<_> =
        matched.findings.iter().filter(|f| f.package.as_ref().is_some_and(|p| p.name == "failure")).collect();
    assert!(!failure.is_empty() && failure.iter().all(|f| f.kind == FindingKind::Advisory), "{failure:?}");
}

/// A root filesystem with the dpkg status of a real Debian 12.11 machine.
fn debian_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("test setup");
    std::fs::create_dir_all(root.join("etc")).expect("test setup");
    std::fs::copy(shared_data().join("debian12-dpkg-status"), root.join("var/lib/dpkg/status")).expect("test setup");
    std::fs::write(
        root.join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
    )
    .expect("test setup");
    root
}

#[test]
fn debian_machine_gets_every_cve_its_newer_changelogs_name() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let db = VulnDb::open(&store).unwrap();
    import_shared(&db, &["Debian"]);
    let sbom = inventory(&debian_rootfs(tmp.path()));
    assert_eq!(sbom.packages.len(), 707);
    let matched = matcher::match_sbom(&db, &sbom).unwrap();
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for finding in &matched.findings {
        let package = finding.package.as_ref().unwrap();
        let source = package.source_name.clone().unwrap_or_else(|| package.name.clone());
        found.entry(source).or_default().extend(finding.ids().map(str::to_string));
    }
    let table = std::fs::read_to_string(shared_data().join("debian-fixed-later-this-machine.tsv")).unwrap();
    let mut expected_total = 0;
    for line in table.lines().skip(1) {
        let columns: Vec<&str> = line.split('\t').collect();
        let (source, cves) = (columns[0], columns.get(6).copied().unwrap_or_default());
        for cve in cves.split_whitespace() {
            expected_total += 1;
            assert!(
                found.get(source).is_some_and(|ids| ids.contains(cve)),
                "{source}: {cve} is fixed by a newer Debian 12 package, picket does not report it"
            );
        }
    }
    assert!(expected_total > 100, "{expected_total}");
    // Every finding's fixed version is newer than what is installed.
    for finding in &matched.findings {
        let package = finding.package.as_ref().unwrap();
        for fixed in &finding.fixed_versions {
            let installed = sbom
                .packages
                .iter()
                .find(|p| p.name == package.name)
                .and_then(|p| p.source.as_ref().map(|s| s.version.clone()))
                .unwrap_or_else(|| package.version.clone());
            assert_eq!(
                picket::vulndb::versions::compare(picket::model::Ecosystem::Debian, fixed, &installed),
                std::cmp::Ordering::Greater,
                "{} {installed} → {fixed}",
                package.name
            );
        }
    }
}

#[test]
fn db_update_from_a_mirror_full_conditional_incremental_and_interrupted() {
    let server = common::file_server::FileServer::start();
    for ecosystem in ["Go", "PyPI", "crates.io"] {
        let bytes = std::fs::read(shared_data().join("allzip").join(ecosystem).join("all.zip")).unwrap();
        server.files.put(&format!("/{ecosystem}/all.zip"), bytes, &format!("\"{ecosystem}-1\""));
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let db = VulnDb::open(&store).unwrap();
    let options = UpdateOptions {
        osv_base: server.base.clone(),
        ecosystems: vec!["Go".into(), "PyPI".into(), "crates.io".into()],
        debian_tracker: None,
        alpine_base: None,
        alpine_releases: vec![],
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let progress = |_: &str, _: u64, _: Option<u64>| {};
    let results = runtime.block_on(picket::vulndb::update::update(&db, &options, &progress));
    for result in &results {
        let Ok(Outcome::Updated { how: "full", state, .. }) = &result.result else { panic!("{result:?}") };
        assert!(state.records > 1000, "{state:?}");
    }
    let pypi = db.source("osv:PyPI").unwrap().unwrap();
    assert_eq!(pypi.records, 2661);
    let active = db.active().unwrap();
    let urllib3 = db.lookup(&active, "PyPI", "urllib3").unwrap();
    assert!(!urllib3.is_empty());

    // No modified_id.csv on the mirror: the update falls back to a conditional full download.
    let results = runtime.block_on(picket::vulndb::update::update(&db, &options, &progress));
    assert!(results.iter().all(|r| r.result == Ok(Outcome::Unchanged)), "{results:?}");
    assert!(server.log.lock().unwrap().iter().any(|l| l == "/PyPI/all.zip \"PyPI-1\""), "If-None-Match was sent");

    // Incremental: modified_id.csv names one newer record; only it is fetched.
    let record = serde_json::json!({
        "id": "PYSEC-9999-1", "modified": "2099-01-01T00:00:00Z", "summary": "test record",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "urllib3"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9.0"}]}]}]
    });
    server.files.put("/PyPI/PYSEC-9999-1.json", serde_json::to_vec(&record).unwrap(), "\"r1\"");
    // The record holding the newest time is read again (within the margin) but not fetched:
    // the database has that copy.
    let newest = db
        .source_advisories("osv:PyPI")
        .unwrap()
        .into_iter()
        .find(|a| a.modified == pypi.newest_modified)
        .expect("a record at newest_modified");
    server.files.put(
        "/PyPI/modified_id.csv",
        format!("2099-01-01T00:00:00Z,PYSEC-9999-1\n{},{}\n", pypi.newest_modified, newest.id).into_bytes(),
        "\"m1\"",
    );
    let options_pypi = UpdateOptions { ecosystems: vec!["PyPI".into()], ..options.clone() };
    let results = runtime.block_on(picket::vulndb::update::update(&db, &options_pypi, &progress));
    let Ok(Outcome::Updated { how: "incremental", state, .. }) = &results[0].result else { panic!("{results:?}") };
    assert_eq!(state.newest_modified, "2099-01-01T00:00:00Z");
    let active = db.active().unwrap();
    let now = db.lookup(&active, "PyPI", "urllib3").unwrap();
    assert_eq!(now.len(), urllib3.len() + 1, "the new record is in, the old ones kept");

    // Records published after the newest one with an earlier time, and a fractional-second time
    // that sorts before the newest as text, are still picked up; the known one is not fetched.
    for (id, modified) in [("PYSEC-9999-2", "2099-01-01T00:00:00.5Z"), ("PYSEC-9999-3", "2098-12-31T23:00:00Z")] {
        let record = serde_json::json!({
            "id": id, "modified": modified, "summary": "test record",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "urllib3"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9.0"}]}]}]
        });
        server.files.put(&format!("/PyPI/{id}.json"), serde_json::to_vec(&record).unwrap(), "\"r\"");
    }
    server.files.put(
        "/PyPI/modified_id.csv",
        b"2099-01-01T00:00:00Z,PYSEC-9999-1\n2098-12-31T23:00:00Z,PYSEC-9999-3\n2099-01-01T00:00:00.5Z,PYSEC-9999-2\n"
            .to_vec(),
        "\"m2\"",
    );
    server.files.remove("/PyPI/PYSEC-9999-1.json");
    let results = runtime.block_on(picket::vulndb::update::update(&db, &options_pypi, &progress));
    let Ok(Outcome::Updated { how: "incremental", state, .. }) = &results[0].result else { panic!("{results:?}") };
    assert_eq!(state.newest_modified, "2099-01-01T00:00:00.5Z");
    let active = db.active().unwrap();
    assert_eq!(db.lookup(&active, "PyPI", "urllib3").unwrap().len(), urllib3.len() + 3);
    let results = runtime.block_on(picket::vulndb::update::update(&db, &options_pypi, &progress));
    assert_eq!(results[0].result, Ok(Outcome::Unchanged), "{results:?}");

    // A record larger than a record may be is refused, naming its URL, before it is all read.
    let mut huge = br#"{"id": "PYSEC-9999-4", "modified": "2099-01-02T00:00:00Z", "details": ""#.to_vec();
    huge.resize(16 * 1024 * 1024 + 1, b'x');
    huge.extend_from_slice(b"\"}");
    server.files.put("/PyPI/PYSEC-9999-4.json", huge, "\"r4\"");
    server.files.put("/PyPI/modified_id.csv", b"2099-01-02T00:00:00Z,PYSEC-9999-4\n".to_vec(), "\"m3\"");
    let results = runtime.block_on(picket::vulndb::update::update(&db, &options_pypi, &progress));
    let Err(message) = &results[0].result else { panic!("{results:?}") };
    assert!(message.contains("/PyPI/PYSEC-9999-4.json") && message.contains("more than"), "{message}");

    // Interrupted: a changed all.zip whose download stops halfway. The previous data stays.
    server.files.remove("/PyPI/modified_id.csv");
    let before = db.source("osv:Go").unwrap().unwrap();
    let bytes = std::fs::read(shared_data().join("allzip/Go/all.zip")).unwrap();
    let half = bytes.len() / 2;
    server.files.put("/Go/all.zip", bytes, "\"Go-2\"");
    server.files.cut("/Go/all.zip", half);
    let options_go = UpdateOptions { ecosystems: vec!["Go".into()], ..options.clone() };
    let results = runtime.block_on(picket::vulndb::update::update(&db, &options_go, &progress));
    let Err(message) = &results[0].result else { panic!("{results:?}") };
    assert!(message.contains("interrupted"), "{message}");
    assert_eq!(db.source("osv:Go").unwrap().unwrap(), before, "the previous generation stays active");
    let active = db.active().unwrap();
    assert!(!db.lookup(&active, "Go", "github.com/gin-gonic/gin").unwrap().is_empty());

    // A mirror that answers garbage instead of a zip is refused the same way.
    server.files.put("/Go/all.zip", b"<html>oops</html>".to_vec(), "\"Go-3\"");
    let results = runtime.block_on(picket::vulndb::update::update(&db, &options_go, &progress));
    let Err(message) = &results[0].result else { panic!("{results:?}") };
    assert!(message.contains("not a zip"), "{message}");
    assert_eq!(db.source("osv:Go").unwrap().unwrap(), before);

    // The native feeds through the same path: the Debian tracker and an Alpine secdb release.
    let tracker = std::fs::read(shared_data().join("debian-tracker/osvdev-tracker-json-sample.json")).unwrap();
    server.files.put("/tracker/data/json", tracker, "\"t1\"");
    let secdb = br#"{"distroversion":"v3.19","reponame":"main","packages":[{"pkg":{"name":"openssl",
        "secfixes":{"3.1.4-r1":["CVE-2023-5678"]}}}]}"#;
    server.files.put("/v3.19/main.json", secdb.to_vec(), "\"a1\"");
    server.files.put("/v3.19/community.json", br#"{"distroversion":"v3.19","packages":[]}"#.to_vec(), "\"a2\"");
    let native = UpdateOptions {
        ecosystems: vec![],
        debian_tracker: Some(format!("{}/tracker/data/json", server.base)),
        alpine_base: Some(server.base.clone()),
        alpine_releases: vec!["v3.19".into()],
        ..options.clone()
    };
    let results = runtime.block_on(picket::vulndb::update::update(&db, &native, &progress));
    assert!(results.iter().all(|r| matches!(r.result, Ok(Outcome::Updated { .. }))), "{results:?}");
    let active = db.active().unwrap();
    assert_eq!(db.lookup(&active, "Alpine:v3.19", "openssl").unwrap().len(), 1);
    let results = runtime.block_on(picket::vulndb::update::update(&db, &native, &progress));
    assert_eq!(results[0].result, Ok(Outcome::Unchanged), "the tracker answers 304 to its ETag");
    drop(store);

    // `picket db import URL` reads from the network the same way, and names a bad document.
    let data = tmp.path().join("cli");
    let import = |url: &str| {
        Command::new(env!("CARGO_BIN_EXE_picket"))
            .args(["db", "import", url, "--name", "mirror"])
            .env("PICKET_DATA_DIR", &data)
            .output()
            .expect("picket")
    };
    let ok = import(&format!("{}/v3.19/main.json", server.base));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let bad = import(&format!("{}/Go/all.zip", server.base));
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/Go/all.zip"), "{}", String::from_utf8_lossy(&bad.stderr));
}

fn picket(data_dir: &Path, cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(args)
        .current_dir(cwd)
        .env("PICKET_DATA_DIR", data_dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run picket");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn gate_exit_codes_exceptions_and_vex_through_the_binary() {
    let images = common::fixtures::images();
    let image = images.join("oci").display().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cwd = tmp.path().join("work");
    std::fs::create_dir_all(&cwd).unwrap();

    let (code, _, stderr) = picket(&data, &cwd, &["scan", "image", &image, "--fail-on", "high"]);
    assert_eq!(code, 2, "an empty database is an error: {stderr}");
    assert!(stderr.contains("picket db update"), "{stderr}");

    for ecosystem in ["PyPI", "npm"] {
        let path = shared_data().join("osv").join(ecosystem).display().to_string();
        let (code, _, stderr) = picket(&data, &cwd, &["db", "import", &path, "--name", &format!("osv:{ecosystem}")]);
        assert_eq!(code, 0, "{stderr}");
    }
    let (code, stdout, _) = picket(&data, &cwd, &["db", "status"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("osv:PyPI") && stdout.contains("368"), "{stdout}");

    let (code, stdout, stderr) = picket(&data, &cwd, &["scan", "image", &image, "--fail-on", "critical"]);
    assert_eq!(code, 1, "minimist is CRITICAL: {stderr}");
    assert!(stdout.contains("CVE-2021-44906") && stderr.contains("gate failed"), "{stdout}\n{stderr}");

    std::fs::write(
        cwd.join(".picketignore"),
        "exceptions:\n  - id: GHSA-xvch-5gv4-984h\n    package: minimist\n    reason: only used by the build\n",
    )
    .unwrap();
    let (code, stdout, stderr) = picket(&data, &cwd, &["scan", "image", &image, "--fail-on", "critical", "-o", "json"]);
    assert_eq!(code, 0, "the exception (by GHSA alias) accepts it: {stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["suppressed"][0]["reason"], "only used by the build");
    assert_eq!(report["gate"]["failing"], 0);

    let (code, _, _) = picket(&data, &cwd, &["scan", "image", &image, "--fail-on", "high"]);
    assert_eq!(code, 1, "lodash and urllib3 are HIGH");
    let vex = cwd.join("app.vex.json");
    std::fs::write(
        &vex,
        r#"{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "vex-1", "statements": [
          {"vulnerability": {"name": "CVE-2020-8203"}, "products": [{"@id": "pkg:npm/lodash"}],
           "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
          {"vulnerability": {"name": "CVE-2023-43804"},
           "products": [{"identifiers": {"purl": "pkg:pypi/urllib3"}}], "status": "not_affected",
           "justification": "vulnerable_code_cannot_be_controlled_by_adversary"}]}"#,
    )
    .unwrap();
    let sarif = cwd.join("out.sarif");
    let (code, _, stderr) = picket(
        &data,
        &cwd,
        &["scan", "image", &image, "--fail-on", "high", "--vex", "app.vex.json", "-o", "sarif", "--file", "out.sarif"],
    );
    assert_eq!(code, 0, "{stderr}");
    let sarif: serde_json::Value = serde_json::from_slice(&std::fs::read(sarif).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let suppressed =
        sarif["runs"][0]["results"].as_array().unwrap().iter().filter(|r| r["suppressions"].is_array()).count();
    assert!(suppressed >= 3, "minimist, lodash and urllib3 carry suppressions");

    let (code, _, stderr) = picket(
        &data,
        &cwd,
        &["scan", "image", &image, "--fail-on", "high", "--ignore-unfixed", "--vex", "missing.json"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("missing.json"), "{stderr}");
    std::fs::write(cwd.join(".picketignore"), "exceptions:\n  - id: X\n    reason: r\n    expires: 2020-01-01\n")
        .unwrap();
    let (_, _, stderr) = picket(&data, &cwd, &["scan", "image", &image]);
    assert!(stderr.contains("expired on 2020-01-01"), "{stderr}");
}

/// The console's Findings pane and `picket scan` are twins: for the same stored inventory and the
/// same exceptions file they report the same active and suppressed findings (vulnerabilities and
/// secrets alike).
#[test]
fn the_console_and_the_cli_report_the_same_findings() {
    use picket::app::action::{Action, Effect};

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cwd = tmp.path().join("work");
    let project = tmp.path().join("project");
    let module = project.join("node_modules/minimist");
    std::fs::create_dir_all(&module).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::write(module.join("package.json"), r#"{"name": "minimist", "version": "1.2.5"}"#).unwrap();
    let lodash = project.join("node_modules/lodash");
    std::fs::create_dir_all(&lodash).unwrap();
    std::fs::write(lodash.join("package.json"), r#"{"name": "lodash", "version": "4.17.15"}"#).unwrap();
    std::fs::write(project.join("deploy.env"), format!("AWS_ACCESS_KEY_ID=AKIA{}\n", "Q7M4XZ2RB5KT3NWD")).unwrap();
    std::fs::write(
        cwd.join(".picketignore"),
        "exceptions:\n  - id: GHSA-xvch-5gv4-984h\n    package: minimist\n    reason: only used by the build\n",
    )
    .unwrap();
    let path = shared_data().join("osv/npm").display().to_string();
    let (code, _, stderr) = picket(&data, &cwd, &["db", "import", &path, "--name", "osv:npm"]);
    assert_eq!(code, 0, "{stderr}");

    let (code, stdout, stderr) = picket(&data, &cwd, &["scan", "fs", &project.display().to_string(), "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let cli: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let ids = |findings: &serde_json::Value, field: Option<&str>| -> BTreeSet<String> {
        let list = findings.as_array().cloned().unwrap_or_default();
        list.iter()
            .map(|f| field.map_or(f, |name| &f[name]))
            .map(|f| {
                format!("{} {}", f["id"].as_str().unwrap_or_default(), f["package"]["name"].as_str().unwrap_or("-"))
            })
            .collect()
    };
    let cli_active = ids(&cli["findings"], None);
    let cli_suppressed = ids(&cli["suppressed"], Some("finding"));
    assert!(cli_active.iter().any(|id| id.contains("lodash")), "{cli_active:?}");
    assert!(
        cli_active.iter().any(|id| id.starts_with("aws-access-key-id") || id.contains("aws")),
        "a secret: {cli_active:?}"
    );
    assert_eq!(cli_suppressed, BTreeSet::from(["CVE-2021-44906 minimist".to_string()]), "accepted by its GHSA alias");

    // The console's path: the stored inventory, assessed by the Findings pane's effect.
    let store = std::sync::Arc::new(Store::open(&data.join("store")).expect("store"));
    let key = format!("dir:{}", project.display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (active, suppressed) = runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let effects = picket::app::effects::Effects::new(tx, store, vec![], Default::default(), tmp.path().into());
        effects.run(Effect::LoadFindings { request: 7, key, ignore_path: cwd.join(".picketignore") });
        loop {
            match rx.recv().await.expect("an answer") {
                Action::FindingsLoaded { request: 7, result } => {
                    let data = result.expect("findings");
                    let json = serde_json::to_value(&data.findings).unwrap();
                    let suppressed = serde_json::to_value(&data.suppressed).unwrap();
                    break (ids(&json, None), ids(&suppressed, Some("finding")));
                }
                _ => continue,
            }
        }
    });
    assert_eq!(active, cli_active, "active findings");
    assert_eq!(suppressed, cli_suppressed, "suppressed findings");
}

/// A server that accepts and never answers: `db import URL` gives up within seconds, naming
/// the deadline, instead of waiting minutes.
#[test]
fn db_import_from_a_silent_server_gives_up_within_seconds() {
    let port = common::silent_server();
    let data = tempfile::tempdir().expect("data dir");
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["db", "import", &format!("http://127.0.0.1:{port}/all.zip")])
        .output()
        .expect("picket runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no answer came within 8 s"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
}

/// Every ecosystem's OSV export is called `all.zip`: importing PyPI's, Go's and crates.io's in
/// turn, each downloaded to the same path, keeps all three; importing one again replaces only
/// itself. (Named by file alone, each import used to replace the one before.)
#[test]
fn importing_each_ecosystems_all_zip_keeps_every_ecosystem() {
    let data = tempfile::tempdir().expect("data dir");
    let downloads = tempfile::tempdir().expect("downloads");
    let zip = downloads.path().join("all.zip");
    let import = |ecosystem: &str| {
        std::fs::copy(shared_data().join("allzip").join(ecosystem).join("all.zip"), &zip).expect("copy");
        let (code, _, stderr) = picket(data.path(), downloads.path(), &["db", "import", "all.zip"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains(&format!("as import:{ecosystem}/all.zip")), "{stderr}");
    };
    for ecosystem in ["PyPI", "Go", "crates.io", "PyPI"] {
        import(ecosystem);
    }
    let (code, status, stderr) = picket(data.path(), downloads.path(), &["db", "status"]);
    assert_eq!(code, 0, "{stderr}");
    let sources: Vec<&str> = status.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(sources, ["import:Go/all.zip", "import:PyPI/all.zip", "import:crates.io/all.zip"], "{status}");
}

/// `picket scan sbom`: the app image's CycloneDX and SPDX (as `picket sbom` writes them) and its
/// Syft JSON give the same findings as scanning the image, from the package URLs alone.
#[test]
fn scanning_an_sbom_finds_what_scanning_the_image_finds() {
    let data = tempfile::tempdir().expect("data dir");
    let work = tempfile::tempdir().expect("work dir");
    for ecosystem in ["Debian", "PyPI", "npm"] {
        let dir = shared_data().join("osv").join(ecosystem);
        let (code, _, stderr) = picket(data.path(), work.path(), &["db", "import", &dir.display().to_string()]);
        assert_eq!(code, 0, "{stderr}");
    }
    let image = common::fixtures::images().join("oci").display().to_string();
    let findings = |args: &[&str]| -> BTreeSet<(String, String, String)> {
        let (code, out, stderr) = picket(data.path(), work.path(), args);
        assert!(code == 0, "{args:?}: {stderr}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["kind"] == "vulnerability")
            .map(|f| {
                let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_string();
                (text(&f["id"]), text(&f["package"]["name"]), text(&f["package"]["version"]))
            })
            .collect()
    };
    let of_image = findings(&["scan", "image", &image, "-o", "json", "--scanners", "vuln", "--no-store"]);
    assert!(of_image.len() > 10, "{of_image:?}");
    for format in ["cyclonedx", "spdx"] {
        let (code, document, stderr) = picket(data.path(), work.path(), &["sbom", &image, "-o", format]);
        assert_eq!(code, 0, "{stderr}");
        let file = work.path().join(format!("{format}.json"));
        std::fs::write(&file, document).expect("write");
        let of_sbom = findings(&["scan", "sbom", &file.display().to_string(), "-o", "json"]);
        assert_eq!(of_sbom, of_image, "{format}");
    }
    if let Some(syft) = common::fixtures::syft() {
        let out = Command::new(syft)
            .args(["scan", &format!("oci-dir:{image}"), "-o", "syft-json", "-q"])
            .output()
            .expect("syft");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let file = work.path().join("syft.json");
        std::fs::write(&file, &out.stdout).expect("write");
        let of_syft = findings(&["scan", "sbom", &file.display().to_string(), "-o", "json"]);
        // Syft catalogs the same packages by its own means (and spells names its own way): the
        // application's findings agree.
        let apps = |set: &BTreeSet<(String, String, String)>| -> BTreeSet<(String, String, String)> {
            set.iter()
                .filter(|(_, package, _)| {
                    ["django", "requests", "urllib3", "lodash", "minimist"].contains(&package.to_lowercase().as_str())
                })
                .map(|(id, package, version)| (id.clone(), package.to_lowercase(), version.clone()))
                .collect()
        };
        assert!(!apps(&of_image).is_empty());
        assert_eq!(apps(&of_syft), apps(&of_image), "syft-json");
    }
    let bad = work.path().join("bad.json");
    std::fs::write(&bad, "{\"components\": 1}").expect("write");
    let (code, _, stderr) = picket(data.path(), work.path(), &["scan", "sbom", &bad.display().to_string()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("bad.json: neither CycloneDX"), "{stderr}");
}

/// Rewrites an export's tar with `change` applied to each entry (name, bytes) → entries to write.
fn rewrite_export(from: &Path, to: &Path, change: impl Fn(&str, Vec<u8>) -> Vec<(String, Vec<u8>)>) {
    use std::io::Read;
    let decoder = zstd::Decoder::new(std::fs::File::open(from).expect("export")).expect("zstd");
    let mut archive = tar::Archive::new(decoder);
    let mut builder = tar::Builder::new(Vec::new());
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read");
        for (name, bytes) in change(&name, bytes) {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, bytes.as_slice()).expect("append");
        }
    }
    let tar = builder.into_inner().expect("tar");
    std::fs::write(to, zstd::encode_all(tar.as_slice(), 3).expect("compress")).expect("write");
}

/// `picket db export` → `picket db import` on a machine with no network: the same sources and
/// the same findings; a file altered, extended or cut short is refused and changes nothing.
#[test]
fn a_database_export_is_taken_whole_and_refused_when_altered() {
    let work = tempfile::tempdir().expect("work dir");
    let (origin, copy, empty) = (work.path().join("origin"), work.path().join("copy"), work.path().join("empty"));
    for ecosystem in ["Debian", "PyPI", "npm"] {
        let dir = shared_data().join("osv").join(ecosystem);
        let (code, _, stderr) = picket(&origin, work.path(), &["db", "import", &dir.display().to_string()]);
        assert_eq!(code, 0, "{stderr}");
    }
    let export = work.path().join("picket-db.tar.zst");
    let (code, _, stderr) = picket(&origin, work.path(), &["db", "export", "picket-db.tar.zst"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("exported 3 sources"), "{stderr}");
    let check = Command::new("sha256sum").arg("-c").arg("picket-db.tar.zst.sha256").current_dir(work.path()).output();
    if let Ok(check) = check {
        assert!(check.status.success(), "sha256sum -c: {}", String::from_utf8_lossy(&check.stdout));
    }

    // A local source the export lacks stays; the exported ones arrive whole.
    let local = shared_data().join("osv").join("Go");
    let (code, _, stderr) =
        picket(&copy, work.path(), &["db", "import", &local.display().to_string(), "--name", "local-go"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = picket(&copy, work.path(), &["db", "import", &export.display().to_string()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("3 sources") && stderr.contains("every hash checked"), "{stderr}");
    let status = |data: &Path| -> BTreeMap<String, String> {
        let (code, out, stderr) = picket(data, work.path(), &["db", "status"]);
        assert_eq!(code, 0, "{stderr}");
        out.lines()
            .skip(1)
            .filter_map(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                Some((cells.first()?.to_string(), format!("{} {}", cells.get(1)?, cells.get(2)?)))
            })
            .collect()
    };
    let mut expected = status(&origin);
    assert_eq!(expected.len(), 3, "{expected:?}");
    let copied = status(&copy);
    assert!(copied.contains_key("local-go"), "{copied:?}");
    expected.insert("local-go".into(), copied["local-go"].clone());
    assert_eq!(copied, expected);
    let image = common::fixtures::images().join("oci").display().to_string();
    let findings = |data: &Path| -> BTreeSet<String> {
        let (code, out, stderr) =
            picket(data, work.path(), &["scan", "image", &image, "-o", "json", "--scanners", "vuln", "--no-store"]);
        assert_eq!(code, 0, "{stderr}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| format!("{} {}", f["id"], f["package"]["name"]))
            .collect()
    };
    let of_origin = findings(&origin);
    assert!(of_origin.len() > 10, "{of_origin:?}");
    assert_eq!(findings(&copy), of_origin);

    // One byte of one advisory changed, an unlisted file added, the file cut short: refused,
    // named, and the database as it was.
    let altered = work.path().join("altered.tar.zst");
    rewrite_export(&export, &altered, |name, mut bytes| {
        if name.ends_with("0001.jsonl")
            && let Some(at) = bytes.windows(4).position(|w| w == b"CVE-")
        {
            bytes[at + 2] = b'F';
        }
        vec![(name.to_string(), bytes)]
    });
    let extended = work.path().join("extended.tar.zst");
    rewrite_export(&export, &extended, |name, bytes| {
        let mut out = vec![(name.to_string(), bytes)];
        if name.ends_with("manifest.json") {
            out.push(("picket-db/sources/9999.jsonl".into(), b"{}\n".to_vec()));
        }
        out
    });
    let cut = work.path().join("cut.tar.zst");
    let whole = std::fs::read(&export).expect("export");
    std::fs::write(&cut, &whole[..whole.len() / 2]).expect("write");
    for (file, says) in [
        (&altered, "picket-db/sources/0001.jsonl: SHA-256"),
        (&extended, "picket-db/sources/9999.jsonl: not listed in the manifest"),
        (&cut, "not a readable picket database export"),
    ] {
        for data in [&empty, &copy] {
            let before = status(data);
            let (code, _, stderr) = picket(data, work.path(), &["db", "import", &file.display().to_string()]);
            assert_ne!(code, 0, "{} was taken: {stderr}", file.display());
            assert!(stderr.contains(says) && !stderr.contains("panicked"), "{stderr}");
            assert_eq!(status(data), before, "a refused export changed the database");
        }
    }
    let (code, _, stderr) =
        picket(&empty, work.path(), &["db", "import", &export.display().to_string(), "--name", "x"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--name does not apply"), "{stderr}");
}

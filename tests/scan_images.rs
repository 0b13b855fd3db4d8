//! Image inventory on real images (built from real Debian, PyPI and npm packages): every source
//! kind, whiteouts, named packages, parity with Syft, SBOM exports read back by Syft, tampering.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::fixtures::{images, shared_data, syft};
use picket::model::Ecosystem;
use picket::scan::{self, ScanOptions, SourceSpec};

type Key = (String, String, String);

fn inventory(source: &str) -> scan::Sbom {
    let spec = SourceSpec::parse(source).unwrap_or_else(|e| panic!("{source}: {e}"));
    scan::inventory(&spec, &ScanOptions::default(), &|_| {}).unwrap_or_else(|e| panic!("{source}: {e}"))
}

/// (ecosystem, name, version), Python names normalised as PyPI does.
fn keys(sbom: &scan::Sbom) -> BTreeSet<Key> {
    sbom.packages
        .iter()
        .map(|p| {
            let name = if p.ecosystem == Ecosystem::PyPI {
                picket::scan::catalogers::python::normalise(&p.name)
            } else {
                p.name.clone()
            };
            (p.ecosystem.osv_name().to_string(), name, p.version.clone())
        })
        .collect()
}

fn installed_in_shared_status() -> usize {
    let status = std::fs::read_to_string(shared_data().join("debian12-dpkg-status")).expect("shared dpkg status");
    status.lines().filter(|l| *l == "Status: install ok installed").count()
}

#[test]
fn every_source_kind_gives_the_same_inventory() {
    let dir = images();
    let p = |name: &str| dir.join(name).display().to_string();
    let oci = inventory(&p("oci"));
    assert_eq!(oci.source.kind, "oci-dir");
    let reference = keys(&oci);
    for source in [
        format!("oci-dir:{}:v1", p("oci")),
        p("app-oci.tar"),
        p("app-docker.tar"),
        p("app-docker.tar.gz"),
        format!("dir:{}", p("rootfs")),
    ] {
        let other = inventory(&source);
        assert_eq!(keys(&other), reference, "{source} differs from the OCI layout");
    }
    assert_eq!(inventory(&p("app-oci.tar")).source.kind, "oci-archive");
    let docker = inventory(&p("app-docker.tar"));
    assert_eq!(docker.source.kind, "docker-archive");
    assert_eq!(
        docker.source.image.as_ref().map(|i| i.tags.clone()),
        Some(vec!["docker.io/testbed/app:v1".to_string()])
    );
    assert_eq!(
        docker.source.image.as_ref().map(|i| i.config_digest.clone()),
        oci.source.image.as_ref().map(|i| i.config_digest.clone()),
        "the same image has the same config digest in every format"
    );
}

#[test]
fn named_packages_are_found_with_locations_and_the_whiteout_holds() {
    let sbom = inventory(&images().join("oci").display().to_string());
    let distro = sbom.distro.clone().expect("distro");
    assert_eq!((distro.id.as_str(), distro.version_id.as_str()), ("debian", "12"));
    let find = |eco: Ecosystem, name: &str| sbom.packages.iter().find(|p| p.ecosystem == eco && p.name == name);
    for (eco, name, version) in [
        (Ecosystem::PyPI, "Django", "2.2"),
        (Ecosystem::PyPI, "requests", "2.19.0"),
        (Ecosystem::PyPI, "urllib3", "1.24.1"),
        (Ecosystem::PyPI, "PyYAML", "5.3.1"),
        (Ecosystem::Npm, "lodash", "4.17.4"),
        (Ecosystem::Npm, "minimist", "0.0.8"),
        (Ecosystem::Npm, "semver", "5.7.1"),
    ] {
        let package = find(eco, name).unwrap_or_else(|| panic!("{name} not found"));
        assert_eq!(package.version, version, "{name}");
    }
    assert!(find(Ecosystem::PyPI, "six").is_none(), "six was deleted by a whiteout in layer 2");
    let image = sbom.source.image.as_ref().expect("image");
    let semver = find(Ecosystem::Npm, "semver").expect("semver");
    assert_eq!(
        semver.locations[0].layer.as_deref(),
        Some(image.layers[1].diff_id.as_str()),
        "semver comes from layer 2"
    );
    assert_eq!(semver.locations[0].path, "/app/node_modules/semver/package.json");
    let lodash = find(Ecosystem::Npm, "lodash").expect("lodash");
    assert_eq!(lodash.locations[0].layer.as_deref(), Some(image.layers[0].diff_id.as_str()));

    let debs: Vec<_> = sbom.packages.iter().filter(|p| p.ecosystem == Ecosystem::Debian).collect();
    assert_eq!(debs.len(), installed_in_shared_status());
    let libc = debs.iter().find(|p| p.name == "libc6").expect("libc6");
    assert_eq!(libc.source.as_ref().map(|s| s.name.as_str()), Some("glibc"));
    assert!(libc.purl.starts_with("pkg:deb/debian/libc6@") && libc.purl.contains("distro=debian-12"), "{}", libc.purl);
}

fn syft_keys(syft: &Path, target: &str) -> BTreeSet<Key> {
    // For directories Syft runs only lock-file catalogers by default; picket also reports
    // installed node_modules there (docs/scanning.md), so ask Syft for its installed-npm cataloger.
    let extra: &[&str] =
        if target.starts_with("dir:") { &["--select-catalogers", "+javascript-package-cataloger"] } else { &[] };
    let out = Command::new(syft)
        .args(["scan", target, "-o", "json", "-q"])
        .args(extra)
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .env("XDG_CACHE_HOME", std::env::temp_dir().join("picket-syft-cache"))
        .output()
        .expect("syft runs");
    assert!(out.status.success(), "syft failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("syft json");
    let mut keys = BTreeSet::new();
    for artifact in doc["artifacts"].as_array().expect("artifacts") {
        let ecosystem = match artifact["type"].as_str() {
            Some("deb") => "Debian",
            Some("python") => "PyPI",
            Some("npm") => "npm",
            Some("go-module") => "Go",
            Some("rust-crate") => "crates.io",
            Some("php-composer") => "Packagist",
            Some("dotnet") => "NuGet",
            Some("gem") => "RubyGems",
            Some("rpm") => "Red Hat",
            Some("java-archive") => "Maven",
            other => panic!("syft found a package type picket does not catalog yet: {other:?}"),
        };
        let name = artifact["name"].as_str().unwrap_or_default();
        let name = match ecosystem {
            "PyPI" => picket::scan::catalogers::python::normalise(name),
            // Syft names Maven packages by artifactId; picket by groupId:artifactId (as OSV does).
            "Maven" => maven_name(artifact),
            _ => name.to_string(),
        };
        keys.insert((ecosystem.to_string(), name, artifact["version"].as_str().unwrap_or_default().to_string()));
    }
    keys
}

#[test]
fn package_set_equals_syfts() {
    let Some(syft) = syft() else { return };
    let dir = images();
    for (ours, theirs) in [
        (dir.join("oci").display().to_string(), format!("oci-dir:{}", dir.join("oci").display())),
        (
            dir.join("app-docker.tar").display().to_string(),
            format!("docker-archive:{}", dir.join("app-docker.tar").display()),
        ),
        (format!("dir:{}", dir.join("rootfs").display()), format!("dir:{}", dir.join("rootfs").display())),
    ] {
        let picket = keys(&inventory(&ours));
        let syft = syft_keys(&syft, &theirs);
        let only_picket: Vec<_> = picket.difference(&syft).collect();
        let only_syft: Vec<_> = syft.difference(&picket).collect();
        assert!(
            only_picket.is_empty() && only_syft.is_empty(),
            "{ours}: only picket {only_picket:?}, only syft {only_syft:?}"
        );
    }
}

#[test]
fn cyclonedx_and_spdx_exports_are_read_back_by_syft() {
    let Some(syft) = syft() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let oci = images().join("oci");
    let expected = inventory(&oci.display().to_string()).packages.len();
    for (format, file) in [("cyclonedx", "bom.cdx.json"), ("spdx", "bom.spdx.json")] {
        let path = tmp.path().join(file);
        let out = Command::new(env!("CARGO_BIN_EXE_picket"))
            .args(["sbom", "--no-store", "-o", format, "--file"])
            .arg(&path)
            .arg(&oci)
            .output()
            .expect("picket sbom");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let converted = Command::new(&syft)
            .args(["convert", &path.display().to_string(), "-o", "json", "-q"])
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
            .output()
            .expect("syft convert");
        assert!(
            converted.status.success(),
            "syft cannot read picket's {format}: {}",
            String::from_utf8_lossy(&converted.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&converted.stdout).expect("json");
        let artifacts = doc["artifacts"].as_array().expect("artifacts");
        assert_eq!(artifacts.len(), expected, "{format}: syft read back a different number of packages");
        assert!(
            artifacts.iter().any(|a| a["purl"].as_str().is_some_and(|p| p.starts_with("pkg:pypi/urllib3@1.24.1"))),
            "{format}"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn a_tampered_layer_is_refused_with_its_digest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = tmp.path().join("oci");
    copy_dir(&images().join("oci"), &layout);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index")).expect("json");
    let manifest_digest = index["manifests"][0]["digest"].as_str().expect("digest").to_string();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&manifest_digest[7..])).expect("manifest"),
    )
    .expect("json");
    let layer = manifest["layers"][1]["digest"].as_str().expect("layer").to_string();
    let blob = layout.join("blobs/sha256").join(&layer[7..]);
    let mut bytes = std::fs::read(&blob).expect("blob");
    let last = bytes.len() - 20;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).expect("write");
    let err = scan::inventory(
        &SourceSpec::parse(&layout.display().to_string()).expect("spec"),
        &ScanOptions::default(),
        &|_| {},
    )
    .expect_err("tampered layer");
    let msg = err.to_string();
    assert!(
        msg.contains("layer 2") && (msg.contains(&layer) || msg.contains("digest") || msg.contains("corrupt")),
        "{msg}"
    );
}

#[test]
fn missing_and_ambiguous_sources_say_what_is_wrong() {
    let err = SourceSpec::parse("/no/such/image.tar").expect_err("missing");
    assert!(err.to_string().contains("/no/such/image.tar"), "{err}");
    let spec = SourceSpec::parse(&format!("oci-dir:{}:v9", images().join("oci").display())).expect("spec");
    let err = scan::inventory(&spec, &ScanOptions::default(), &|_| {}).expect_err("no such ref");
    assert!(err.to_string().contains("'v9'") && err.to_string().contains("testbed/app:v1"), "{err}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let junk = tmp.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar file at all").expect("write");
    assert!(
        scan::inventory(
            &SourceSpec::parse(&junk.display().to_string()).expect("spec"),
            &ScanOptions::default(),
            &|_| {}
        )
        .is_err()
    );
}

#[test]
fn sbom_command_stores_by_manifest_digest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["sbom", "--data-dir"])
        .arg(tmp.path())
        .arg(images().join("oci"))
        .env("XDG_CONFIG_HOME", tmp.path().join("config"))
        .output()
        .expect("picket sbom");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: scan::Sbom = serde_json::from_slice(&out.stdout).expect("picket json on stdout");
    let key = printed.store_key();
    assert!(key.starts_with("sha256:"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("stored as {key}")) && stderr.contains("715 packages"), "{stderr}");
    let store = picket::store::Store::open(&tmp.path().join("store")).expect("store");
    let stored = store.tree::<scan::Sbom>(picket::store::TreeName::Sboms).expect("tree").get(&key).expect("get");
    assert_eq!(stored, Some(printed));
}

#[test]
fn debootstrap_image_matches_syft_and_the_rootfs() {
    let Some(debian) = common::fixtures::debian() else { return };
    let image = inventory(&debian.join("oci").display().to_string());
    let rootfs = inventory(&format!("dir:{}", debian.join("rootfs").display()));
    assert_eq!(keys(&image), keys(&rootfs), "the image and the directory it was made from agree");
    let status = std::fs::read_to_string(debian.join("rootfs/var/lib/dpkg/status")).expect("status");
    let installed = status.lines().filter(|l| *l == "Status: install ok installed").count();
    assert_eq!(image.packages.len(), installed);
    assert!(image.warnings.iter().any(|w| w.contains("device or FIFO entries were skipped")), "{:?}", image.warnings);
    let bash = image.packages.iter().find(|p| p.name == "bash").expect("bash");
    assert!(
        bash.licenses.iter().any(|l| l.starts_with("GPL-3")),
        "licences from the copyright file: {:?}",
        bash.licenses
    );
    // Each package's programs and shared objects, from its dpkg file list (for "in use").
    assert!(bash.files.iter().any(|f| f == "/bin/bash"), "{:?}", bash.files);
    assert!(!bash.files.iter().any(|f| f.contains("/share/")), "only programs and libraries: {:?}", bash.files);
    let libc = image.packages.iter().find(|p| p.name == "libc6").expect("libc6");
    assert!(libc.files.iter().any(|f| f.ends_with("/libc.so.6")), "{:?}", libc.files);
    if let Some(syft) = syft() {
        assert_eq!(keys(&image), syft_keys(&syft, &format!("oci-dir:{}", debian.join("oci").display())));
    }
}

#[test]
fn go_and_rust_binaries_match_syft() {
    let Some(dir) = common::fixtures::binaries() else { return };
    let sbom = inventory(&dir.join("oci").display().to_string());
    let find = |eco: Ecosystem, name: &str| sbom.packages.iter().find(|p| p.ecosystem == eco && p.name == name);
    let stdlib = find(Ecosystem::Go, "stdlib").expect("stdlib");
    assert_eq!(stdlib.locations[0].path, "/usr/local/bin/syft");
    assert_eq!(
        find(Ecosystem::Go, "github.com/anchore/syft").map(|p| p.version.as_str()),
        Some("v1.18.1"),
        "from -ldflags"
    );
    assert_eq!(find(Ecosystem::CratesIo, "smallvec").map(|p| p.purl.as_str()), Some("pkg:cargo/smallvec@1.6.0"));
    assert_eq!(find(Ecosystem::CratesIo, "base64").map(|p| p.version.as_str()), Some("0.5.1"));
    assert_eq!(
        keys(&sbom),
        keys(&inventory(&format!("dir:{}", dir.join("rootfs").display()))),
        "image and directory agree"
    );
    if let Some(syft) = syft() {
        assert_eq!(keys(&sbom), syft_keys(&syft, &format!("oci-dir:{}", dir.join("oci").display())));
    }
}

/// A source tree: this repository's own Cargo.lock, an npm v3 lock file, composer.lock, a .NET
/// deps.json, pinned requirements and a go.mod.
fn source_tree(dir: &Path) {
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    std::fs::create_dir_all(dir.join("rust")).expect("mkdir");
    std::fs::copy(common::fixtures::manifest_dir().join("Cargo.lock"), dir.join("rust/Cargo.lock"))
        .expect("Cargo.lock");
    write(
        "web/package-lock.json",
        r#"{"name":"web","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{
            "":{"name":"web","version":"1.0.0","dependencies":{"lodash":"4.17.4","minimist":"0.0.8"}},
            "node_modules/lodash":{"version":"4.17.4","resolved":"https://registry.npmjs.org/lodash/-/lodash-4.17.4.tgz","integrity":"sha512-x"},
            "node_modules/minimist":{"version":"0.0.8","resolved":"https://registry.npmjs.org/minimist/-/minimist-0.0.8.tgz","integrity":"sha512-y"}}}"#,
    );
    write(
        "php/composer.lock",
        r#"{"content-hash":"x","packages":[{"name":"monolog/monolog","version":"2.9.1","type":"library","license":["MIT"]}],"packages-dev":[{"name":"phpunit/phpunit","version":"9.5.0","type":"library"}]}"#,
    );
    write(
        "dotnet/App.deps.json",
        r#"{"runtimeTarget":{"name":".NETCoreApp,Version=v6.0"},"targets":{".NETCoreApp,Version=v6.0":{"App/1.0.0":{"dependencies":{"Newtonsoft.Json":"12.0.1"}},"Newtonsoft.Json/12.0.1":{"runtime":{"lib/netstandard2.0/Newtonsoft.Json.dll":{}}}}},"libraries":{"App/1.0.0":{"type":"project","serviceable":false,"sha512":""},"Newtonsoft.Json/12.0.1":{"type":"package","serviceable":true,"sha512":"sha512-abc","path":"newtonsoft.json/12.0.1"}}}"#,
    );
    write(
        "yarn/yarn.lock",
        "# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.\n# yarn lockfile v1\n\n\n\
         \"@babel/helper-validator-identifier@7.22.5\":\n  version \"7.22.5\"\n  resolved \"https://registry.yarnpkg.com/@babel/helper-validator-identifier/-/helper-validator-identifier-7.22.5.tgz#9544ef6a33999343c8740fa51350f30eeaaaf193\"\n  integrity sha512-aJXu\n\n\
         lodash@4.17.4:\n  version \"4.17.4\"\n  resolved \"https://registry.yarnpkg.com/lodash/-/lodash-4.17.4.tgz#78203a4d1c328ae1d86dca6460e369b57f4055ae\"\n  integrity sha512-6X37\n\n\
         minimist@0.0.8:\n  version \"0.0.8\"\n  resolved \"https://registry.yarnpkg.com/minimist/-/minimist-0.0.8.tgz#857fcabfc3397d2625b8228262e86aa7a011b05d\"\n  integrity sha512-miQK\n",
    );
    write(
        "pnpm/pnpm-lock.yaml",
        "lockfileVersion: '6.0'\n\nsettings:\n  autoInstallPeers: true\n  excludeLinksFromLockfile: false\n\ndependencies:\n  lodash:\n    specifier: 4.17.4\n    version: 4.17.4\n  semver:\n    specifier: 5.7.1\n    version: 5.7.1\n\n\
         packages:\n\n  /lodash@4.17.4:\n    resolution: {integrity: sha512-6X37}\n    dev: false\n\n  /semver@5.7.1:\n    resolution: {integrity: sha512-sauq}\n    hasBin: true\n    dev: false\n",
    );
    write(
        "poetry/poetry.lock",
        "[[package]]\nname = \"pyyaml\"\nversion = \"5.3.1\"\ndescription = \"YAML parser and emitter for Python\"\noptional = false\npython-versions = \"*\"\nfiles = []\n\n\
         [[package]]\nname = \"six\"\nversion = \"1.16.0\"\ndescription = \"Python 2 and 3 compatibility utilities\"\noptional = false\npython-versions = \">=2.7\"\nfiles = []\n\n\
         [metadata]\nlock-version = \"2.0\"\npython-versions = \"^3.8\"\ncontent-hash = \"x\"\n",
    );
    write(
        "pipenv/Pipfile.lock",
        r#"{"_meta":{"hash":{"sha256":"x"},"pipfile-spec":6,"requires":{"python_version":"3.11"},"sources":[{"name":"pypi","url":"https://pypi.org/simple","verify_ssl":true}]},"default":{"jinja2":{"hashes":["sha256:a"],"index":"pypi","version":"==2.10"}},"develop":{}}"#,
    );
    write(
        "ruby/usr/local/bundle/specifications/rack-2.2.3.gemspec",
        "# -*- encoding: utf-8 -*-\n# stub: rack 2.2.3 ruby lib\n\nGem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  \
         s.version = \"2.2.3\"\n\n  s.required_rubygems_version = Gem::Requirement.new(\">= 0\".freeze) if s.respond_to? :required_rubygems_version=\n  \
         s.require_paths = [\"lib\".freeze]\n  s.authors = [\"Leah Neukirchen\".freeze]\n  s.licenses = [\"MIT\".freeze]\n  \
         s.summary = \"a modular Ruby webserver interface\".freeze\nend\n",
    );
    write("py/requirements.txt", "Django==2.2.0\nrequests==2.19.0\nurllib3==1.24.1\n");
    write(
        "go/go.mod",
        "module example.com/app\n\ngo 1.21\n\nrequire (\n\tgithub.com/pkg/errors v0.9.1\n\tgolang.org/x/net v0.17.0 // indirect\n)\n",
    );
}

#[test]
fn lock_files_in_a_source_tree_match_syft() {
    let tmp = tempfile::tempdir().expect("tempdir");
    source_tree(tmp.path());
    let sbom = inventory(&format!("dir:{}", tmp.path().display()));
    let cargo_lock = std::fs::read_to_string(tmp.path().join("rust/Cargo.lock")).expect("lock");
    let crates = sbom.packages.iter().filter(|p| p.ecosystem == Ecosystem::CratesIo).count();
    assert_eq!(crates, cargo_lock.matches("[[package]]").count());
    assert!(sbom.packages.iter().any(|p| p.name == "ratatui" && p.locations[0].path.ends_with("/rust/Cargo.lock")));
    if let Some(syft) = syft() {
        let (ours, theirs) = (keys(&sbom), syft_keys(&syft, &format!("dir:{}", tmp.path().display())));
        let only_picket: Vec<_> = ours.difference(&theirs).collect();
        let only_syft: Vec<_> = theirs.difference(&ours).collect();
        assert!(only_picket.is_empty() && only_syft.is_empty(), "only picket {only_picket:?}, only syft {only_syft:?}");
    }
    // An image holding the same files reports none of them: lock files describe a build, the
    // image's installed records are what it holds.
    let image_like = picket::scan::inventory(
        &SourceSpec::parse(&images().join("oci").display().to_string()).expect("spec"),
        &ScanOptions::default(),
        &|_| {},
    )
    .expect("image");
    assert!(image_like.catalogers.iter().all(|c| !c.starts_with("cargo-lock") && !c.starts_with("npm-lock")));
}

#[test]
fn rpm_database_matches_syft() {
    let Some(dir) = common::fixtures::rpm() else { return };
    let sbom = inventory(&dir.join("oci").display().to_string());
    assert_eq!(sbom.distro.as_ref().map(|d| d.id.as_str()), Some("rocky"));
    let openssl = sbom.packages.iter().find(|p| p.name == "openssl-libs").expect("openssl-libs");
    assert_eq!(openssl.version, "1:3.0.7-16.el9");
    assert_eq!(openssl.ecosystem, Ecosystem::RedHat);
    assert!(openssl.purl.contains("epoch=1") && openssl.purl.contains("distro=rocky-9.3"), "{}", openssl.purl);
    assert_eq!(sbom.packages.len(), 3);
    assert_eq!(keys(&sbom), keys(&inventory(&format!("dir:{}", dir.join("rootfs").display()))));
    if let Some(syft) = syft() {
        assert_eq!(keys(&sbom), syft_keys(&syft, &format!("oci-dir:{}", dir.join("oci").display())));
    }
}

/// `GROUP:ARTIFACT` when Syft read a pom.properties (its groupId), else the artifact name alone.
fn maven_name(artifact: &serde_json::Value) -> String {
    let name = artifact["name"].as_str().unwrap_or_default();
    match artifact["metadata"]["pomProperties"]["groupId"].as_str() {
        Some(group) => format!("{group}:{name}"),
        None => name.to_string(),
    }
}

#[test]
fn java_archives_and_nested_jars_match_syft() {
    use std::io::Write;
    let jars =
        ["guava.jar", "commons-lang3.jar", "commons-io.jar", "jansi.jar"].map(|j| Path::new("/usr/share/java").join(j));
    if jars.iter().any(|j| !j.is_file()) {
        assert!(std::env::var_os("CI").is_none(), "the Debian jar packages are required in CI: run ./install.sh --dev");
        eprintln!(
            "SKIPPED: Debian's libguava-java, libcommons-lang3-java, libcommons-io-java, libjansi-java are needed"
        );
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).expect("mkdir");
    for jar in &jars[..3] {
        std::fs::copy(jar, app.join(jar.file_name().expect("name"))).expect("copy");
    }
    // a war with a manifest of its own and two jars inside, one named with its version
    let war = std::fs::File::create(app.join("shop.war")).expect("war");
    let mut zip = zip::ZipWriter::new(war);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("META-INF/MANIFEST.MF", options).expect("entry");
    zip.write_all(b"Manifest-Version: 1.0\r\nImplementation-Title: shop\r\nImplementation-Version: 2.0.1\r\n\r\n")
        .expect("write");
    for (inner, jar) in [("WEB-INF/lib/commons-lang3-3.12.0.jar", &jars[1]), ("WEB-INF/lib/jansi.jar", &jars[3])] {
        zip.start_file(inner, options).expect("entry");
        zip.write_all(&std::fs::read(jar).expect("jar")).expect("write");
    }
    zip.finish().expect("zip");
    let sbom = inventory(&format!("dir:{}", tmp.path().display()));
    let nested = sbom.packages.iter().find(|p| p.name == "org.fusesource.jansi:jansi").expect("nested jansi");
    assert!(nested.locations[0].path.ends_with("/app/shop.war:WEB-INF/lib/jansi.jar"), "{:?}", nested.locations);
    assert!(sbom.packages.iter().any(|p| p.name == "shop" && p.version == "2.0.1"));
    if let Some(syft) = syft() {
        let (ours, theirs) = (keys(&sbom), syft_keys(&syft, &format!("dir:{}", tmp.path().display())));
        let only_picket: Vec<_> = ours.difference(&theirs).collect();
        let only_syft: Vec<_> = theirs.difference(&ours).collect();
        assert!(only_picket.is_empty() && only_syft.is_empty(), "only picket {only_picket:?}, only syft {only_syft:?}");
    }
}

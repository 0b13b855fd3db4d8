//! Secret scanning through `scan::inventory`: a three-layer OCI layout built here (a key added,
//! deleted by a whiteout, a placeholder), a directory, and the debootstrap image (no findings, and
//! what scanning costs).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use oci_spec::image::{
    ConfigBuilder, DescriptorBuilder, Digest, ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder,
    MediaType, RootFsBuilder,
};
use picket::model::{FindingKind, Severity};
use picket::scan::{self, Platform, ScanOptions, SourceSpec};
use sha2::{Digest as _, Sha256};

/// An RSA key made by OpenSSL, in the traditional `BEGIN RSA PRIVATE KEY` form.
fn rsa_key() -> String {
    let out = Command::new("openssl").args(["genrsa", "-traditional", "2048"]).output().expect("openssl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pem = String::from_utf8(out.stdout).expect("PEM is ASCII");
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"), "{pem}");
    pem
}

/// Built at run time so that no complete credential sits in the repository.
fn aws_key_id() -> String {
    format!("AKIA{}", "Q7M4XZ2RB5KT3NWD")
}

fn aws_secret() -> String {
    format!("{}{}", "tR8fWq2ZkLx9vB3nHc7Y", "Pd4sGe6Ja1Ku5oNi0bVE")
}

fn github_token() -> String {
    format!("ghp_{}", "Zr8Kd2LqW9mXc4Vb7Nt1Hy6Gf3Js5Pa0Ue2R")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

struct File<'a> {
    path: &'a str,
    body: &'a [u8],
    mode: u32,
}

fn file<'a>(path: &'a str, body: &'a [u8]) -> File<'a> {
    File { path, body, mode: 0o644 }
}

fn layer_tar(files: &[File<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for f in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(f.body.len() as u64);
        header.set_mode(f.mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, f.path, f.body).expect("writes to memory");
    }
    builder.into_inner().expect("writes to memory")
}

/// Writes an OCI image layout (gzip layers, ref `secrets:v1`) and returns the layers' diff ids.
fn oci_layout(dir: &Path, layers: &[Vec<u8>]) -> Vec<String> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("the temp dir is writable");
    let put = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), bytes).expect("the temp dir is writable");
        (Digest::from_str(&digest).expect("a sha256 digest"), bytes.len() as u64)
    };
    let mut diff_ids = Vec::new();
    let mut descriptors = Vec::new();
    for tar in layers {
        diff_ids.push(sha256(tar));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(tar).expect("writes to memory");
        let (digest, size) = put(&gz.finish().expect("writes to memory"));
        descriptors.push(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageLayerGzip)
                .digest(digest)
                .size(size)
                .build()
                .expect("the OCI document is valid"),
        );
    }
    let config = ImageConfigurationBuilder::default()
        .architecture("amd64")
        .os("linux")
        .config(ConfigBuilder::default().cmd(vec!["/app/run".to_string()]).build().expect("the OCI document is valid"))
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids.clone())
                .build()
                .expect("the OCI document is valid"),
        )
        .build()
        .expect("the OCI document is valid");
    let (config_digest, config_size) = put(&serde_json::to_vec(&config).expect("serialises"));
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageConfig)
                .digest(config_digest)
                .size(config_size)
                .build()
                .expect("the OCI document is valid"),
        )
        .layers(descriptors)
        .build()
        .expect("the OCI document is valid");
    let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&manifest).expect("serialises"));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![
            DescriptorBuilder::default()
                .media_type(MediaType::ImageManifest)
                .digest(manifest_digest)
                .size(manifest_size)
                .annotations([("org.opencontainers.image.ref.name".to_string(), "secrets:v1".to_string())])
                .build()
                .expect("the OCI document is valid"),
        ])
        .build()
        .expect("the OCI document is valid");
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).expect("the temp dir is writable"))
        .expect("the temp dir is writable");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("the temp dir is writable");
    diff_ids
}

fn options(secrets: bool) -> ScanOptions {
    ScanOptions { secrets, platform: Platform::parse("linux/amd64").expect("a platform"), ..ScanOptions::default() }
}

fn inventory(spec: &str, secrets: bool) -> scan::Sbom {
    let spec = SourceSpec::parse(spec).expect("a source");
    scan::inventory(&spec, &options(secrets), &|_| {}).unwrap_or_else(|e| panic!("{e}"))
}

/// (id, path, line, layer, evidence) of each finding.
fn summary(sbom: &scan::Sbom) -> Vec<(String, String, u32, Option<String>, String)> {
    sbom.secrets
        .iter()
        .map(|f| {
            assert_eq!((f.kind, f.data_source.as_str()), (FindingKind::Secret, "picket-secrets"));
            assert_eq!(f.locations.len(), 1);
            let location = &f.locations[0];
            (
                f.id.clone(),
                location.path.clone(),
                f.line.expect("secrets have a line"),
                location.layer.clone(),
                f.evidence.clone().expect("secrets have a line"),
            )
        })
        .collect()
}

/// No full secret (nor a long piece of one) in the SBOM's JSON or Debug output.
fn assert_masked(sbom: &scan::Sbom, secrets: &[String]) {
    let json = serde_json::to_string_pretty(sbom).expect("serialises");
    let debug = format!("{sbom:?}");
    for output in [&json, &debug] {
        for secret in secrets {
            for line in secret.lines().filter(|l| l.len() >= 12 && !l.starts_with("-----")) {
                assert!(!output.contains(&line[4..]), "'{line}' leaked");
            }
        }
    }
}

#[test]
fn every_layer_is_scanned_deleted_files_included_placeholders_not_reported() {
    if !common::have_tool("openssl") {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let key = rsa_key();
    let env = format!(
        "# production\nAWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\nLOG_LEVEL=info\n",
        aws_key_id(),
        aws_secret()
    );
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend_from_slice(format!("token={}", github_token()).as_bytes());
    let doc = format!("Use a token such as {} to log in.\n", github_token());
    let base = layer_tar(&[
        file("app/.env", env.as_bytes()),
        File { mode: 0o600, ..file("root/.ssh/id_rsa", key.as_bytes()) },
        File { mode: 0o755, ..file("app/run", &elf) },
        file("usr/share/doc/app/README", doc.as_bytes()),
    ]);
    let delete = layer_tar(&[file("root/.ssh/.wh.id_rsa", b"")]);
    let placeholder = "aws_access_key_id: AKIAIOSFODNN7EXAMPLE\naws_secret_access_key: ${AWS_SECRET_ACCESS_KEY}\n\
                       password: changeme\napi_key: <your-api-key>\ntoken: xxxxxxxxxxxxxxxxxxxxxxxx\n";
    let settings = layer_tar(&[file("app/config.yaml", placeholder.as_bytes())]);
    let layout = temp.path().join("oci");
    let diff_ids = oci_layout(&layout, &[base, delete, settings]);
    if Command::new("sh").args(["-c", "command -v skopeo"]).output().is_ok_and(|o| o.status.success()) {
        let inspected = Command::new("skopeo")
            .args(["inspect", "--config", &format!("oci:{}:secrets:v1", layout.display())])
            .output()
            .unwrap();
        assert!(
            inspected.status.success(),
            "skopeo rejects the layout: {}",
            String::from_utf8_lossy(&inspected.stderr)
        );
    }

    let sbom = inventory(&layout.display().to_string(), true);
    let base_layer = Some(diff_ids[0].clone());
    assert_eq!(
        summary(&sbom),
        [
            ("aws-access-key-id".into(), "/app/.env".into(), 2, base_layer.clone(), "AKIA****************".into()),
            (
                "aws-secret-access-key".into(),
                "/app/.env".into(),
                3,
                base_layer.clone(),
                format!("AWS_SECRET_ACCESS_KEY=tR8f{}", "*".repeat(32)),
            ),
            (
                "private-key".into(),
                "/root/.ssh/id_rsa".into(),
                1,
                base_layer,
                format!("-----BEGIN RSA PRIVATE KEY----- {}{}", &key[32..36], "*".repeat(32)),
            ),
        ]
    );
    let severities: Vec<Severity> = sbom.secrets.iter().map(|f| f.severity).collect();
    assert_eq!(severities, [Severity::High, Severity::Critical, Severity::High]);
    assert!(sbom.secrets.iter().all(|f| f.remediation.as_deref().is_some_and(|r| r.contains("rotate"))));
    assert!(sbom.catalogers.iter().any(|c| c.starts_with("secrets@")));
    assert_masked(&sbom, &[key, aws_secret(), aws_key_id(), github_token()]);
    let json: serde_json::Value = serde_json::to_value(&sbom).unwrap();
    assert_eq!(json["secrets"][2]["locations"][0]["layer"], diff_ids[0].as_str());

    let off = inventory(&layout.display().to_string(), false);
    assert!(off.secrets.is_empty() && !off.catalogers.iter().any(|c| c.starts_with("secrets@")));
    assert!(serde_json::to_value(&off).unwrap().get("secrets").is_none(), "an empty list is not serialised");
    assert_eq!(off.packages, sbom.packages);
}

#[test]
fn a_directory_is_scanned_file_by_file() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    let write = |path: &str, body: &[u8]| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    };
    let npmrc = format!("registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={}\n", github_token());
    write("home/ci/.npmrc", npmrc.as_bytes());
    write("usr/share/doc/tool/README", github_token().as_bytes());
    write("usr/lib/python3.11/test/keycert.pem", b"-----BEGIN PRIVATE KEY-----\n");
    let mut binary = vec![0u8; 16];
    binary.extend_from_slice(github_token().as_bytes());
    write("usr/bin/tool", &binary);
    let big = format!("{}\n{}\n", "#".repeat(11 * 1024 * 1024), github_token());
    write("srv/dump.sql", big.as_bytes());
    std::os::unix::fs::symlink("../home/ci/.npmrc", root.join("srv/npmrc")).unwrap();

    let sbom = inventory(&format!("dir:{}", root.display()), true);
    assert_eq!(summary(&sbom), [("github-pat".into(), "/home/ci/.npmrc".into(), 2, None, mask_github())]);
    assert_masked(&sbom, &[github_token()]);
    assert!(sbom.warnings.contains(&"1 files over 10485760 bytes were not scanned for secrets".to_string()));
}

fn mask_github() -> String {
    format!("ghp_{}", "*".repeat(32))
}

/// The debootstrap bookworm minbase image (built by the shared fixtures; needs root and
/// debootstrap): a clean Debian has no secrets, and scanning for them adds little. Prints the
/// timings; run with `--release --nocapture` for numbers worth quoting.
#[test]
fn debian_minbase_has_no_secrets_and_scanning_costs_little() {
    let Some(debian) = common::fixtures::debian() else { return };
    let spec = debian.join("oci").display().to_string();
    let time = |secrets: bool| {
        (0..3)
            .map(|_| {
                let start = Instant::now();
                let sbom = inventory(&spec, secrets);
                (start.elapsed(), sbom)
            })
            .min_by_key(|(elapsed, _)| *elapsed)
            .unwrap()
    };
    let (without, plain) = time(false);
    let (with, scanned) = time(true);
    assert!(scanned.secrets.is_empty(), "{:#?}", summary(&scanned));
    assert_eq!(plain.packages, scanned.packages);
    let added = with.saturating_sub(without);
    eprintln!(
        "debian minbase: inventory {:.3}s, with secrets {:.3}s (+{:.3}s, {:+.1}%)",
        without.as_secs_f64(),
        with.as_secs_f64(),
        added.as_secs_f64(),
        100.0 * added.as_secs_f64() / without.as_secs_f64()
    );
    // Generous: a debug build on a loaded machine; the prefilter keeps this far lower.
    assert!(added < without + Duration::from_secs(2), "secret scanning took {added:?} over {without:?}");
}

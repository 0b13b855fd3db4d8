use std::io::Write;

use super::*;
use crate::scan::blobs::{Verifying, sha256_digest};

/// One tar entry, written with raw header fields so that hostile names can be expressed.
struct Raw<'a> {
    name: &'a str,
    kind: tar::EntryType,
    body: &'a [u8],
    link: &'a str,
    /// Size to claim in the header (defaults to the body length).
    claimed: Option<u64>,
}

fn entry<'a>(name: &'a str, body: &'a [u8]) -> Raw<'a> {
    Raw { name, kind: tar::EntryType::Regular, body, link: "", claimed: None }
}

fn raw_tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut header = tar::Header::new_old();
        let old = header.as_old_mut();
        old.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        old.linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        header.set_mode(0o644);
        header.set_size(e.claimed.unwrap_or(e.body.len() as u64));
        header.set_entry_type(e.kind);
        header.set_mtime(0);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(e.body);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn apply(fs: &mut VirtualFs, id: &str, blob: &[u8], limits: &Limits) -> Result<LayerStats, ScanError> {
    let wants = |p: &str| p.ends_with("status") || p.ends_with(".txt");
    apply_layer(fs, LayerInput { id: id.into(), label: &format!("layer {id} of test") }, blob, &wants, limits, u64::MAX)
}

#[test]
fn layers_apply_in_order_with_whiteouts_links_and_compression() {
    let mut fs = VirtualFs::new();
    let base = raw_tar(&[
        Raw { kind: tar::EntryType::Directory, ..entry("var/lib/dpkg/", b"") },
        entry("var/lib/dpkg/status", b"Package: a\n"),
        entry("etc/motd", b"welcome"),
        entry("usr/bin/wall", b"\x7fELF"),
        entry("./notes.txt", b"kept"),
        Raw { kind: tar::EntryType::Link, link: "notes.txt", ..entry("hard.txt", b"") },
        Raw { kind: tar::EntryType::Symlink, link: "../var/lib/dpkg/status", ..entry("etc/status", b"") },
        Raw { kind: tar::EntryType::Char, ..entry("dev/null", b"") },
    ]);
    let stats = apply(&mut fs, "sha256:base", &gzip(&base), &Limits::default()).unwrap();
    assert_eq!(stats.skipped_special, 1);
    assert_eq!(stats.entries, 8);
    assert!(fs.get("dev/null").is_none());
    assert_eq!(fs.read("hard.txt").as_deref().map(Vec::as_slice), Some(&b"kept"[..]));
    assert_eq!(fs.read("etc/status").as_deref().map(Vec::as_slice), Some(&b"Package: a\n"[..]));
    assert!(fs.get("etc/motd").unwrap().content.is_none(), "only wanted files are kept in memory");

    let app = raw_tar(&[
        entry("etc/.wh.motd", b""),
        entry("usr/bin/.wh.wall", b""),
        entry("var/lib/dpkg/status", b"Package: b\n"),
    ]);
    let zstd_blob = zstd::encode_all(app.as_slice(), 3).unwrap();
    apply(&mut fs, "sha256:app", &zstd_blob, &Limits::default()).unwrap();
    assert!(fs.get("etc/motd").is_none() && fs.get("usr/bin/wall").is_none());
    assert_eq!(fs.read("var/lib/dpkg/status").as_deref().map(Vec::as_slice), Some(&b"Package: b\n"[..]));
    assert_eq!(fs.location("var/lib/dpkg/status").layer.as_deref(), Some("sha256:app"));
}

#[test]
fn parent_dir_entries_are_refused() {
    let blob = raw_tar(&[entry("ok.txt", b"1"), entry("../../etc/cron.d/evil", b"* * * * * root sh")]);
    let err = apply(&mut VirtualFs::new(), "sha256:x", &blob, &Limits::default()).unwrap_err();
    assert!(matches!(&err, ScanError::Hostile { entry, .. } if entry == "../../etc/cron.d/evil"), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("layer sha256:x of test") && msg.contains("'..'"), "{msg}");
}

#[test]
fn absolute_entries_are_refused() {
    let err =
        apply(&mut VirtualFs::new(), "sha256:x", &raw_tar(&[entry("/etc/passwd", b"root::0:0")]), &Limits::default())
            .unwrap_err();
    assert!(err.to_string().contains("absolute path"), "{err}");
}

#[test]
fn hardlink_targets_outside_are_refused() {
    let blob = raw_tar(&[Raw { kind: tar::EntryType::Link, link: "../../etc/shadow", ..entry("shadow", b"") }]);
    let err = apply(&mut VirtualFs::new(), "sha256:x", &blob, &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("hardlink target"), "{err}");
}

#[test]
fn oversized_entries_are_refused_before_reading() {
    // The header claims 1 TiB; the check must not try to read it.
    let blob = raw_tar(&[Raw { claimed: Some(1 << 40), ..entry("huge.bin", b"") }]);
    let limits = Limits { max_entry_bytes: 1 << 30, ..Limits::default() };
    let err = apply(&mut VirtualFs::new(), "sha256:x", &blob, &limits).unwrap_err();
    assert!(matches!(err, ScanError::Hostile { .. }) && err.to_string().contains("over the"), "{err}");
}

#[test]
fn decompression_bombs_stop_at_the_layer_limit() {
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let blob = gzip(&raw_tar(&[entry("zeros.txt", &zeros)]));
    assert!(blob.len() < 64 * 1024, "the bomb is small compressed: {}", blob.len());
    let limits = Limits { max_layer_bytes: 1024 * 1024, ..Limits::default() };
    let err = apply(&mut VirtualFs::new(), "sha256:bomb", &blob, &limits).unwrap_err();
    assert!(matches!(&err, ScanError::Limit { message, .. } if message.contains("expands past")), "{err}");
}

#[test]
fn too_many_entries_are_refused() {
    let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    let entries: Vec<Raw<'_>> = names.iter().map(|n| entry(n, b"x")).collect();
    let limits = Limits { max_entries: 10, ..Limits::default() };
    let err = apply(&mut VirtualFs::new(), "sha256:x", &raw_tar(&entries), &limits).unwrap_err();
    assert!(err.to_string().contains("more than 10 entries"), "{err}");
}

#[test]
fn truncated_and_garbage_layers_are_errors_not_panics() {
    let full = gzip(&raw_tar(&[entry("a.txt", &[7u8; 5000])]));
    for blob in [&full[..full.len() / 2], b"\x1f\x8b\x08garbage".as_slice(), b"\x28\xb5\x2f\xfdjunk".as_slice()] {
        assert!(apply(&mut VirtualFs::new(), "sha256:x", blob, &Limits::default()).is_err());
    }
}

#[test]
fn a_tampered_blob_fails_its_digest_check() {
    let blob = gzip(&raw_tar(&[entry("a.txt", b"original")]));
    let digest = sha256_digest(&blob);
    let verified = Verifying::new(blob.as_slice(), &digest, Some(blob.len() as u64));
    let wants = |_: &str| true;
    apply_layer(
        &mut VirtualFs::new(),
        LayerInput { id: "ok".into(), label: "ok" },
        verified,
        &wants,
        &Limits::default(),
        u64::MAX,
    )
    .unwrap();
    let other = sha256_digest(b"something else");
    let tampered = Verifying::new(blob.as_slice(), &other, None);
    let err = apply_layer(
        &mut VirtualFs::new(),
        LayerInput { id: "t".into(), label: "layer t" },
        tampered,
        &wants,
        &Limits::default(),
        u64::MAX,
    )
    .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
}

#[test]
fn tar_metadata_is_capped_and_long_names_still_work() {
    // A long name a real tool writes (GNU tar, for paths over 100 bytes) names its member.
    let long = format!("usr/share/{}notes.txt", "deep/".repeat(40));
    let mut named = format!("{long}\0").into_bytes();
    let layer = raw_tar(&[
        Raw { kind: tar::EntryType::GNULongName, ..entry("././@LongLink", &named) },
        entry("placeholder", b"kept"),
    ]);
    let mut fs = VirtualFs::new();
    apply(&mut fs, "long", &gzip(&layer), &Limits::default()).expect("a long name is fine");
    assert!(fs.get(&long).is_some(), "the member has its long name");
    // 1 MiB of long name: refused before it is read, naming what it is.
    named = vec![b'a'; 1 << 20];
    let bomb = raw_tar(&[Raw { kind: tar::EntryType::GNULongName, ..entry("././@LongLink", &named) }, entry("x", b"")]);
    let err = apply(&mut VirtualFs::new(), "bomb", &gzip(&bomb), &Limits::default()).unwrap_err().to_string();
    assert!(err.contains("layer bomb of test") && err.contains("GNU long name of 1048576 bytes"), "{err}");
}

#[test]
fn files_kept_for_the_catalogers_have_a_total_budget() {
    let kib = vec![b'x'; 1024];
    let limits = Limits { max_kept_bytes: 2048, ..Limits::default() };
    let mut fs = VirtualFs::new();
    let first = raw_tar(&[entry("a.txt", &kib), entry("b.txt", &kib)]);
    apply(&mut fs, "1", &first, &limits).expect("two files fit");
    assert_eq!(fs.kept_bytes(), 2048);
    // A whiteout frees what it hides, so a third file fits after it.
    let second = raw_tar(&[entry(".wh.a.txt", b""), entry("c.txt", &kib)]);
    apply(&mut fs, "2", &second, &limits).expect("a deleted file no longer counts");
    let third = raw_tar(&[entry("d.txt", &kib)]);
    let err = apply(&mut fs, "3", &third, &limits).unwrap_err().to_string();
    assert!(
        err.contains("layer 3 of test") && err.contains("scan.limits.maxKeptBytes") && err.contains("d.txt"),
        "{err}"
    );
}

#[test]
fn files_over_the_read_limit_are_named() {
    let limits = Limits { max_read_bytes: 4, ..Limits::default() };
    let layer = raw_tar(&[entry("var/lib/dpkg/status", b"Package: a\n"), entry("small.txt", b"ok")]);
    let stats = apply(&mut VirtualFs::new(), "big", &layer, &limits).expect("applied");
    assert_eq!(stats.skipped_large, ["var/lib/dpkg/status"]);
}

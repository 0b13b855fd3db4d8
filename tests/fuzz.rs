//! Fuzz targets, one per parser that reads input, on stable Rust: proptest feeds each parser
//! random bytes and mutations (flipped, inserted, cut and duplicated bytes) of the seed corpus
//! in `tests/fuzz/<target>/`. Every input must give a value or an error: no panic, and no input
//! may take more than 2 s. A failing input is printed shrunk; put it in the corpus once fixed.
//! `PICKET_FUZZ_CASES` sets the cases per target (CI runs the default, 64, in seconds).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PICKET_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz").join(target);
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| (e.path(), std::fs::read(e.path()).expect("a seed")))
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "{} holds no seeds", dir.display());
    seeds.into_iter().map(|(_, bytes)| bytes).collect()
}

/// One edit of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Cut(usize, usize),
    Repeat(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to the formats here more often than chance would give them.
    let special = prop_oneof![
        any::<u8>(),
        Just(b'\n'),
        Just(b'\0'),
        Just(b'"'),
        Just(b'\\'),
        Just(b'('),
        Just(b'['),
        Just(b'{'),
        Just(b':'),
        Just(b' '),
        Just(0xff)
    ];
    prop_oneof![
        (any::<usize>(), special.clone()).prop_map(|(at, byte)| Edit::Flip(at, byte)),
        (any::<usize>(), prop::collection::vec(special, 1..64)).prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        (any::<usize>(), 0usize..256).prop_map(|(at, len)| Edit::Cut(at, len)),
        (any::<usize>(), 1usize..64, 1usize..200).prop_map(|(at, len, times)| Edit::Repeat(at, len, times)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let at = |n: usize| if bytes.is_empty() { 0 } else { n % (bytes.len() + 1) };
        match edit {
            Edit::Flip(n, byte) => {
                if !bytes.is_empty() {
                    let i = n % bytes.len();
                    bytes[i] = *byte;
                }
            }
            Edit::Insert(n, more) => {
                let i = at(*n);
                bytes.splice(i..i, more.iter().copied());
            }
            Edit::Cut(n, len) => {
                let i = at(*n);
                let end = (i + len).min(bytes.len());
                bytes.drain(i..end);
            }
            Edit::Repeat(n, len, times) => {
                let i = at(*n);
                let end = (i + len).min(bytes.len());
                let piece = bytes[i..end].to_vec();
                for _ in 0..*times {
                    bytes.splice(end..end, piece.iter().copied());
                }
            }
        }
    }
    bytes
}

/// Random bytes, or a seed of `target` with a few edits.
fn input(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = corpus(target);
    let count = seeds.len();
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..2048),
        4 => (0..count, prop::collection::vec(edit(), 0..8)).prop_map(move |(i, edits)| apply(seeds[i].clone(), &edits)),
    ]
}

/// Runs `parse`, failing past 2 s (a hang or a blow-up is as bad as a panic).
fn bounded<T>(what: &str, parse: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = parse();
    assert!(started.elapsed() < Duration::from_secs(2), "{what} took {:?}", started.elapsed());
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn dockerfiles(bytes in input("dockerfile")) {
        let _ = bounded("a Dockerfile", || picket::scan::dockerfile::check_str("Dockerfile", &text(&bytes)));
    }

    #[test]
    fn vulnerability_records(bytes in input("records")) {
        let _ = bounded("a record", || picket::vulndb::import::load_bytes("record", bytes.clone()));
    }

    #[test]
    fn dns_answers(bytes in input("dns")) {
        let _ = bounded("a DNS answer", || picket::agent::dns::read_answer(&bytes));
    }

    /// What the L7 rung reads back from the kernel and answers: an event record, a refused
    /// query's question and its REFUSED answer, the datagram that carries it.
    #[test]
    fn l7_records_and_refused_queries(bytes in input("dns")) {
        bounded("an L7 record or query", || {
            let _ = picket::agent::enforce::l7::decode(&bytes);
            let _ = picket::agent::enforce::l7::question_name(&bytes);
            if let Some(answer) = picket::agent::enforce::refusals::refused_answer(&bytes) {
                assert_eq!(answer.get(..2), bytes.get(..2), "the answer keeps the query's id");
                let _ = picket::agent::enforce::refusals::datagram(
                    "127.0.0.1:53".parse().expect("address"),
                    "127.0.0.1:40000".parse().expect("address"),
                    &answer,
                );
            }
        });
    }

    #[test]
    fn flow_first_bytes(bytes in input("protocols")) {
        for direction in [picket::agent::protocols::Direction::Client, picket::agent::protocols::Direction::Server] {
            let _ = bounded("a flow's first bytes", || picket::agent::protocols::identify(&bytes, direction));
        }
    }

    #[test]
    fn agent_policies(bytes in input("policy")) {
        let _ = bounded("a policy", || picket::agent::policy::PolicyFile::parse(Path::new("policy.yaml"), &text(&bytes)));
    }

    #[test]
    fn response_rules(bytes in input("response")) {
        let _ = bounded("response rules", || {
            picket::alert::respond::ResponseConfig::from_texts(&[(PathBuf::from("response.yaml"), text(&bytes))])
        });
    }

    #[test]
    fn captured_frames(bytes in input("frames")) {
        for filter in ["tcp and port 80", "not host 10.0.0.1 and udp", "icmp", "host ::1"] {
            let filter = picket::alert::capture::Filter::parse(filter).expect("a filter");
            let _ = bounded("a captured frame", || filter.admits(&bytes));
        }
    }

    #[test]
    fn capture_filters(bytes in input("capture-filter")) {
        let _ = bounded("a capture filter", || picket::alert::capture::Filter::parse(&text(&bytes)));
    }

    #[test]
    fn detection_rules(bytes in input("rules")) {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("user.yaml"), &bytes).expect("write");
        let _ = bounded("rules", || picket::rules::RuleSet::load(dir.path(), true));
    }

    #[test]
    fn cel_expressions(bytes in input("cel")) {
        let _ = bounded("a CEL expression", || picket::bench::k8s::custom::compile(&text(&bytes)));
    }

    #[test]
    fn picketignore_files(bytes in input("ignore")) {
        let today = jiff::civil::date(2026, 12, 4);
        let _ = bounded(".picketignore", || picket::gate::ignorefile::IgnoreFile::parse(Path::new(".picketignore"), &text(&bytes), today));
    }

    #[test]
    fn sbom_documents(bytes in input("sbom")) {
        let _ = bounded("an SBOM", || picket::scan::sbom_input::parse("sbom.json", &bytes));
    }

    #[test]
    fn vex_documents(bytes in input("vex")) {
        let _ = bounded("a VEX document", || picket::gate::openvex::VexDocument::parse(Path::new("vex.json"), &bytes));
    }

    #[test]
    fn agent_lines_and_records(bytes in input("wire")) {
        bounded("agent input", || {
            for line in text(&bytes).lines() {
                let _ = serde_json::from_str::<picket::agent::wire::WireEvent>(line);
            }
            let _ = picket::agent::events::decode_process_event(&bytes);
            let _ = picket::agent::net::decode_net_event(&bytes);
            let _ = picket::agent::files::decode_file_event(&bytes);
            let _ = picket::agent::enforce::decode_violation(&bytes);
        });
    }

    /// Every cataloger, on the same bytes at each of their paths (a directory scan, so the
    /// lock-file catalogers run too), with secrets scanning on.
    #[test]
    fn package_catalogers(bytes in input("packages")) {
        let dir = tempfile::tempdir().expect("dir");
        let paths = [
            "var/lib/dpkg/status",
            "lib/apk/db/installed",
            "var/lib/rpm/rpmdb.sqlite",
            "usr/lib/python3/site-packages/x-1.0.dist-info/METADATA",
            "usr/lib/python3/dist-packages/y.egg-info",
            "app/node_modules/x/package.json",
            "app/package-lock.json",
            "app/yarn.lock",
            "app/pnpm-lock.yaml",
            "app/Cargo.lock",
            "app/poetry.lock",
            "app/Pipfile.lock",
            "app/requirements.txt",
            "app/go.mod",
            "app/composer.lock",
            "app/x.deps.json",
            "app/lib/x.jar",
            "usr/lib/ruby/gems/3.1.0/specifications/x-1.0.gemspec",
            "usr/local/bin/tool",
        ];
        for path in paths {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&file, &bytes).expect("write");
        }
        std::fs::set_permissions(dir.path().join("usr/local/bin/tool"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let spec = picket::scan::SourceSpec::parse(&format!("dir:{}", dir.path().display())).expect("spec");
        let options = picket::scan::ScanOptions { secrets: true, ..picket::scan::ScanOptions::default() };
        let _ = bounded("the catalogers", || picket::scan::inventory(&spec, &options, &|_| {}));
    }

    /// Image layers: tar members with random names, kinds, sizes and data, raw or gzipped.
    #[test]
    fn image_layers(entries in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..120), any::<u8>(), 0u64..4096, prop::collection::vec(any::<u8>(), 0..600)), 0..12), gzip in any::<bool>(), tail in prop::collection::vec(any::<u8>(), 0..700)) {
        let mut tar = Vec::new();
        for (name, kind, size, data) in &entries {
            let mut header = tar::Header::new_old();
            let raw = header.as_old_mut();
            let n = name.len().min(99);
            raw.name[..n].copy_from_slice(&name[..n]);
            raw.linkname[..n.min(99)].copy_from_slice(&name[..n.min(99)]);
            header.set_entry_type(tar::EntryType::new(*kind));
            header.set_size(*size);
            header.set_mode(0o755);
            header.set_cksum();
            tar.extend_from_slice(header.as_bytes());
            tar.extend_from_slice(data);
            tar.resize(tar.len().div_ceil(512) * 512, 0);
        }
        tar.extend_from_slice(&tail);
        let blob = if gzip {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut encoder, &tar).expect("gzip");
            encoder.finish().expect("gzip")
        } else {
            tar
        };
        let mut fs = picket::scan::vfs::VirtualFs::new();
        let input = picket::scan::layers::LayerInput { id: "sha256:fuzz".into(), label: "layer 1 of fuzz" };
        let wants = |_: &str| true;
        let limits = picket::scan::limits::Limits::default();
        let _ = bounded("a layer", || picket::scan::layers::apply_layer(&mut fs, input, blob.as_slice(), &wants, &limits, u64::MAX));
    }
}

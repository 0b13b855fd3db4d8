//! `picket report --html|--markdown` over a real store (a real advisory database, an SBOM of a
//! fixture image, alerts over two days) and a real API server's workloads, opened in headless
//! Chromium: the screenshot shows every chart drawn (their colours are on the page).

mod common;

use std::path::Path;
use std::process::Command;

fn picket(data: &Path, config: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(args)
        .env("XDG_DATA_HOME", data)
        .env("XDG_CONFIG_HOME", config)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("picket runs");
    assert!(out.status.success(), "picket {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// Pixels of `rgb` (within a small tolerance) in a PNG screenshot.
fn pixels_of(png_path: &Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).expect("the screenshot")));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buffer).expect("a frame");
    let channels = info.color_type.samples();
    buffer[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p.len() >= 3 && (0..3).all(|i| p[i].abs_diff(rgb[i]) <= 6))
        .count()
}

#[test]
fn the_html_report_renders_its_charts_in_a_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, config) = (dir.path().join("data"), dir.path().join("config"));
    let none = dir.path().join("none");
    let npm = common::fixtures::shared_data().join("osv/npm");
    picket(&data, &config, &none, &["db", "import", &npm.display().to_string(), "--name", "osv:npm"]);
    let image = common::fixtures::images().join("oci");
    picket(
        &data,
        &config,
        &none,
        &["sbom", &image.display().to_string(), "--file", &dir.path().join("sbom.json").display().to_string()],
    );
    {
        use picket::agent::alert::{Action, Alert, Trigger};
        let store = picket::store::Store::open(&data.join("picket/store")).expect("store");
        let now = picket::alert::now_unix_ms();
        let events: Vec<_> = (0..12u64)
            .map(|i| {
                let alert = Alert {
                    id: format!("r{i}"),
                    at_unix_ms: now - (i % 2) * 86_400_000 - i * 1000,
                    rule: "shell-from-server".into(),
                    title: "shell".into(),
                    severity: if i % 3 == 0 {
                        picket::model::Severity::Critical
                    } else {
                        picket::model::Severity::High
                    },
                    technique: String::new(),
                    why: "w".into(),
                    mode: picket::agent::enforce::Mode::Monitor,
                    action: Action::Alerted,
                    policy: String::new(),
                    event: Trigger { kind: "exec".into(), exe: "/bin/sh".into(), ..Trigger::default() },
                    ancestry: Vec::new(),
                    count: 1,
                };
                picket::agent::wire::WireEvent::alert("node-r", alert, None)
            })
            .collect();
        picket::alert::AlertLog::open(&store).and_then(|log| log.record(&events, now)).expect("kept");
        store.flush().expect("flush");
    }
    // A real API server for the workloads and the benchmark, when it can run here.
    let server = common::kube_real::RealApiServer::start();
    let kubeconfig = match &server {
        Some(server) => {
            let objects = dir.path().join("objects.yaml");
            std::fs::write(
                &objects,
                "apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: exposed, namespace: shop }\nspec:\n  selector: { matchLabels: { app: exposed } }\n  template:\n    metadata: { labels: { app: exposed } }\n    spec:\n      hostNetwork: true\n      containers: [{ name: app, image: registry.example/exposed:1, securityContext: { privileged: true } }]\n",
            )
            .expect("write");
            let out = server.kubectl(&["apply", "-f", &objects.display().to_string()]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            server.kubeconfig.clone()
        }
        None => none.clone(),
    };
    let html = dir.path().join("report.html");
    let md = dir.path().join("report.md");
    let said = picket(
        &data,
        &config,
        &kubeconfig,
        &["report", "--html", &html.display().to_string(), "--markdown", &md.display().to_string()],
    );
    assert!(said.contains("wrote"), "{said}");
    let page = std::fs::read_to_string(&html).expect("the HTML");
    assert!(
        page.contains("<svg id=\"severity-by-image\"") && page.contains("<svg id=\"alerts-over-time\""),
        "the charts"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("<script"),
        "nothing fetched at view time"
    );
    let markdown = std::fs::read_to_string(&md).expect("the Markdown");
    assert!(markdown.contains("## Vulnerabilities by image") && markdown.contains("| 2"), "{markdown}");
    if server.is_some() {
        assert!(
            page.contains("<svg id=\"top-workloads\"") && page.contains("Deployment shop/exposed"),
            "the workloads chart"
        );
        assert!(page.contains("<svg id=\"compliance-by-section\""), "the compliance chart");
    } else {
        assert!(page.contains("the cluster could not be read"), "said why the cluster is left out");
    }

    let Some(chromium) = chromium() else {
        eprintln!("skipped: the browser check needs chromium (./install.sh --dev)");
        return;
    };
    let shot = dir.path().join("shot.png");
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,3200"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .env("HOME", dir.path())
        .output()
        .expect("chromium runs");
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    // Critical red (images with a critical advisory, critical alerts) and high red are drawn.
    assert!(pixels_of(&shot, [0x8b, 0x00, 0x00]) > 500, "critical bars drawn");
    assert!(pixels_of(&shot, [0xd9, 0x53, 0x4f]) > 500, "high bars drawn");
    if server.is_some() {
        assert!(pixels_of(&shot, [0x5c, 0xb8, 0x5c]) > 500, "passing compliance drawn");
        assert!(pixels_of(&shot, [0x7b, 0x4f, 0xa0]) > 100, "workload exposure drawn");
    }
}

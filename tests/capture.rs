//! Packet capture of a real container's traffic (`picket respond capture`), read back with
//! tshark: the container's own loopback HTTP traffic is in the file, what the filter leaves out
//! is not, and the size bound holds. Needs root, podman and tshark (./install.sh --dev).

mod common;

use std::process::Command;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark").args(args).output().expect("tshark runs");
    assert!(out.status.success(), "tshark {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_containers_traffic_is_captured_into_a_pcap_tshark_reads() {
    if !is_root() {
        eprintln!("skipped: entering a container's network namespace needs root");
        return;
    }
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("skipped: needs tshark (./install.sh --dev)");
        return;
    }
    let Some(podman) = common::engines::Podman::start() else {
        eprintln!("skipped: needs podman and runc (./install.sh --dev)");
        return;
    };
    let script = "mkdir -p /www && echo hello > /www/index.html && httpd -p 127.0.0.1:8080 -h /www && \
                  while true; do wget -q -O /dev/null http://127.0.0.1:8080/index.html; \
                  wget -q -O /dev/null http://127.0.0.1:8081/ 2>/dev/null; sleep 0.2; done";
    podman.podman(&["run", "-d", "--name", "captured", common::engines::Podman::IMAGE, "sh", "-c", script]);
    let pid = podman.podman(&["inspect", "-f", "{{.State.Pid}}", "captured"]).trim().to_string();
    assert!(pid.parse::<u32>().is_ok_and(|p| p > 0), "a pid: {pid}");
    let dir = tempfile::tempdir().expect("dir");
    let capture = |name: &str, extra: &[&str]| {
        let file = dir.path().join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_picket"))
            .args(["respond", "capture", "--pid", &pid, "-o"])
            .arg(&file)
            .args(extra)
            .output()
            .expect("picket runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (file, String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (file, said) = capture("web.pcap", &["--duration", "3s", "--filter", "tcp and port 8080"]);
    assert!(said.contains("packets"), "{said}");
    let uris =
        tshark(&["-r", &file.display().to_string(), "-Y", "http.request", "-T", "fields", "-e", "http.request.uri"]);
    let requests = uris.lines().filter(|l| *l == "/index.html").count();
    assert!(requests >= 3, "the container's requests are in the capture: {uris}");
    let responses = tshark(&["-r", &file.display().to_string(), "-Y", "http.response.code == 200"]);
    assert!(!responses.trim().is_empty(), "and its answers");
    // Each packet once (loopback shows them going out and coming in).
    let first = tshark(&["-r", &file.display().to_string(), "-Y", "http.request", "-T", "fields", "-e", "tcp.stream"]);
    let streams: Vec<&str> = first.lines().collect();
    let mut unique = streams.clone();
    unique.dedup();
    assert_eq!(streams.len(), unique.len(), "one request per stream: {first}");
    let other = tshark(&["-r", &file.display().to_string(), "-Y", "tcp.port == 8081"]);
    assert!(other.trim().is_empty(), "the filter left port 8081 out: {other}");

    // The size bound: the file never grows past it.
    let (small, said) = capture("small.pcap", &["--duration", "10s", "--max-size", "2K"]);
    let size = std::fs::metadata(&small).expect("the file").len();
    assert!(size <= 2048 && size > 24, "{size} bytes");
    assert!(said.contains("stopped at the size bound"), "{said}");
    tshark(&["-r", &small.display().to_string()]);

    // A file that exists is not overwritten; a bad filter is refused before anything starts.
    let out = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["respond", "capture", "--pid", &pid, "--duration", "1s", "-o"])
        .arg(&small)
        .output()
        .expect("picket runs");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("cannot create"));
    let out = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["respond", "capture", "--pid", &pid, "--filter", "port http", "-o"])
        .arg(dir.path().join("x.pcap"))
        .output()
        .expect("picket runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("'http' is not a port"));
    assert!(!dir.path().join("x.pcap").exists());
}

//! The real binary in a real terminal (tmux): opens on the local Overview, `?` shows help,
//! `/` filters, `:q` quits with status 0 and the terminal restored.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Tmux, have_tool, wait_for};

const KUBECONFIG: &str = r#"apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: prod-eu1
  cluster: { server: "https://10.0.0.1:6443" }
- name: kind-dev
  cluster: { server: "https://127.0.0.1:40123" }
contexts:
- name: prod
  context: { cluster: prod-eu1, user: sre, namespace: payments }
- name: dev
  context: { cluster: kind-dev, user: kind }
users:
- name: sre
  user: { token: x }
- name: kind
  user: { token: y }
"#;

fn os_pretty_name() -> String {
    let text = std::fs::read_to_string("/etc/os-release").expect("os-release");
    let line = text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).expect("PRETTY_NAME");
    line.trim_matches('"').to_string()
}

/// `:q`, then the command line `picket_command` wrapped it in records status 0.
fn quit_with_status_0(tmux: &Tmux, dir: &Path) {
    tmux.send(&[":", "q", "Enter"]);
    let exit = wait_for(Duration::from_secs(10), || std::fs::read_to_string(dir.join("exit")).ok()).expect("exit");
    assert_eq!(exit.trim(), "EXIT=0");
}

fn picket_command(dir: &Path) -> String {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, KUBECONFIG).expect("kubeconfig");
    format!(
        "env -u DOCKER_HOST -u CONTAINER_HOST XDG_CONFIG_HOME={d}/config XDG_DATA_HOME={d}/data KUBECONFIG={k} {bin}; \
         echo \"EXIT=$?\" > {d}/exit; stty -a > {d}/stty; sleep 60",
        d = dir.display(),
        k = kubeconfig.display(),
        bin = env!("CARGO_BIN_EXE_picket"),
    )
}

#[test]
fn console_opens_filters_helps_and_quits_cleanly() {
    if !have_tool("tmux") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tmux = Tmux::start(dir.path(), 120, 40, &picket_command(dir.path()));

    let screen = tmux.expect(&os_pretty_name());
    assert!(screen.contains("Local host") && screen.contains("overview"), "{screen}");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    tmux.expect(kernel.trim());
    tmux.expect("2 contexts, active: prod");
    assert_eq!(tmux.display("#{alternate_on}"), "1", "the console uses the alternate screen");

    tmux.send(&["?"]);
    let help = tmux.expect("Help (esc to close)");
    assert!(help.contains("Filter rows") && help.contains(":contexts"), "{help}");
    tmux.send(&["Escape"]);
    tmux.expect_gone("Help (esc to close)");

    tmux.send(&[":", "c", "t", "x", "Enter"]);
    let contexts = tmux.expect("Contexts [2/2]");
    assert!(contexts.contains("kind-dev") && contexts.contains("prod-eu1"), "{contexts}");
    tmux.send(&["/", "k", "i", "n", "d"]);
    let filtered = tmux.expect("Contexts [1/2] </kind>");
    assert!(filtered.contains("kind-dev") && !filtered.contains("prod-eu1"), "{filtered}");
    tmux.send(&["Enter"]);
    tmux.send(&["Escape"]);
    tmux.expect("Contexts [2/2]");

    tmux.send(&[":", "q"]);
    tmux.expect(":quit");
    tmux.send(&["Enter"]);
    let exit_file = dir.path().join("exit");
    let exit = wait_for(Duration::from_secs(10), || std::fs::read_to_string(&exit_file).ok())
        .unwrap_or_else(|| panic!("picket did not exit:\n{}", tmux.screen()));
    assert_eq!(exit.trim(), "EXIT=0");
    let stty =
        wait_for(Duration::from_secs(5), || std::fs::read_to_string(dir.path().join("stty")).ok()).expect("stty");
    assert!(stty.contains(" icanon") && stty.contains(" echo "), "terminal left in raw mode: {stty}");
    assert_eq!(tmux.display("#{alternate_on}"), "0", "alternate screen left");
}

#[test]
fn bad_config_is_reported_with_its_position_and_status_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "theme: dark\nrefreshSeconds: [1\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .arg("--config")
        .arg(&config)
        .env("XDG_DATA_HOME", dir.path())
        .output()
        .expect("run picket");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with(&format!("picket: {}:", config.display())), "{stderr}");
    assert!(stderr.contains(":2:") || stderr.contains(":3:"), "{stderr}");
}

#[test]
fn second_console_on_the_same_store_is_refused() {
    if !have_tool("tmux") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tmux = Tmux::start(dir.path(), 120, 40, &picket_command(dir.path()));
    tmux.expect("Local host");
    let second = format!(
        "XDG_CONFIG_HOME={d}/config XDG_DATA_HOME={d}/data {bin} 2> {d}/out2; echo $? > {d}/exit2",
        d = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_picket")
    );
    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&second_dir).expect("dir");
    let other = Tmux::start(&second_dir, 100, 20, &second);
    let exit_file = dir.path().join("exit2");
    let code = wait_for(Duration::from_secs(10), || std::fs::read_to_string(&exit_file).ok()).expect("second exits");
    drop(other);
    assert_eq!(code.trim(), "2");
    let out = std::fs::read_to_string(dir.path().join("out2")).expect("out2");
    assert!(out.contains("in use by another picket (pid "), "{out}");
    tmux.send(&["C-c"]);
    wait_for(Duration::from_secs(10), || std::fs::read_to_string(dir.path().join("exit")).ok()).expect("first exits");
}

#[test]
fn version_and_completions() {
    let run =
        |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_picket")).args(args).output().expect("run");
    let out = run(&["version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("picket {}", env!("CARGO_PKG_VERSION"))));
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("completions"), "{shell} script lacks subcommands");
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn console_without_a_terminal_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .env("XDG_CONFIG_HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a terminal"));
    assert!(!dir.path().join("picket").exists(), "nothing is written before the console can start");
}

#[test]
fn console_lists_real_podman_containers_and_opens_one() {
    let Some(podman) = common::engines::Podman::start() else { return };
    if !have_tool("tmux") {
        return;
    }
    podman.podman(&[
        "run",
        "-d",
        "--name",
        "e2e-web",
        "--cap-add",
        "NET_ADMIN",
        common::engines::Podman::IMAGE,
        "sleep",
        "600",
    ]);
    podman.podman(&["create", "--name", "e2e-idle", common::engines::Podman::IMAGE, "true"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let command = format!(
        "env DOCKER_HOST=unix://{sock} XDG_CONFIG_HOME={d}/config XDG_DATA_HOME={d}/data KUBECONFIG={d}/none {bin}; sleep 60",
        sock = podman.socket.display(),
        d = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_picket"),
    );
    let tmux = Tmux::start(dir.path(), 120, 40, &command);
    let overview = tmux.expect("1 running / 2 total");
    assert!(overview.contains("Podman"), "{overview}");
    assert!(overview.contains("e2e-web") && overview.contains("e2e-idle"), "{overview}");

    tmux.send(&["Tab"]);
    tmux.expect("Containers [2/2]");
    tmux.send(&["/", "w", "e", "b", "Enter"]);
    let filtered = tmux.expect("Containers [1/2] </web>");
    assert!(!filtered.contains("e2e-idle"), "{filtered}");
    tmux.send(&["Enter"]);
    let detail = tmux.expect("NET_ADMIN");
    assert!(detail.contains("sleep 600") && detail.contains("Privileged"), "{detail}");
    tmux.send(&["Escape"]);
    tmux.expect("Containers [1/2] </web>");
    tmux.send(&["C-c"]);
}

#[test]
fn foreground_plugin_gets_the_terminal_and_the_console_comes_back() {
    if !have_tool("tmux") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config_dir = dir.path().join("config/picket");
    std::fs::create_dir_all(&config_dir).expect("config dir");
    let marker = dir.path().join("plugin-ran");
    // The plugin prints, then waits for a line on the terminal: it only sees the key if picket
    // really handed stdin over.
    std::fs::write(
        config_dir.join("plugins.yaml"),
        format!(
            "plugins:\n  whoami:\n    shortCut: w\n    description: Who\n    scopes: [contexts]\n    command: sh\n    \
             args: ['-c', 'echo \"PLUGIN SAYS $NAME on $CLUSTER\"; read answer; echo \"$answer $NAME\" > {}']\n",
            marker.display()
        ),
    )
    .expect("plugins.yaml");
    let tmux = Tmux::start(dir.path(), 120, 40, &picket_command(dir.path()));
    tmux.expect("Local host");
    tmux.send(&[":", "c", "t", "x", "Enter"]);
    tmux.expect("Contexts [2/2]");
    tmux.send(&["j", "w"]);
    tmux.expect("PLUGIN SAYS dev on kind-dev");
    assert_eq!(tmux.display("#{alternate_on}"), "0", "the plugin runs on the normal screen");
    tmux.send(&["o", "k", "Enter"]);
    let written = wait_for(Duration::from_secs(10), || std::fs::read_to_string(&marker).ok()).expect("plugin finished");
    assert_eq!(written.trim(), "ok dev");
    let back = tmux.expect("Contexts [2/2]");
    assert!(back.contains("kind-dev"), "{back}");
    assert_eq!(tmux.display("#{alternate_on}"), "1", "the console took the screen back");
    tmux.send(&["j"]);
    quit_with_status_0(&tmux, dir.path());
}

#[test]
fn images_pane_scans_a_podman_image_and_lists_its_packages() {
    let Some(podman) = common::engines::Podman::start() else { return };
    if !have_tool("tmux") {
        return;
    }
    let archive = common::fixtures::images().join("app-docker.tar");
    podman.podman(&["load", "-q", "-i", &archive.display().to_string()]);
    let dir = tempfile::tempdir().expect("tempdir");
    let command = format!(
        "env DOCKER_HOST=unix://{sock} XDG_CONFIG_HOME={d}/config XDG_DATA_HOME={d}/data KUBECONFIG={d}/none {bin}; \
         echo \"EXIT=$?\" > {d}/exit; sleep 60",
        sock = podman.socket.display(),
        d = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_picket"),
    );
    let tmux = Tmux::start(dir.path(), 140, 40, &command);
    tmux.expect("Local host");
    tmux.send(&[":", "i", "m", "g", "Enter"]);
    tmux.expect("Images [2/2]");
    tmux.send(&["/", "a", "p", "p", "Enter"]);
    let images = tmux.expect("Images [1/2] </app>");
    assert!(images.contains("testbed/app:v1") && images.contains("not scanned"), "{images}");
    tmux.send(&["s"]);
    let done = tmux.expect("testbed/app:v1: 715 packages");
    assert!(done.contains("Debian GNU/Linux 12 (bookworm)"), "{done}");
    tmux.send(&["Enter"]);
    let packages = tmux.expect("Packages of docker.io/testbed/app:v1 [715/715]");
    assert!(
        packages.contains("Debian 707 · PyPI 4 · npm 4") && packages.contains("layer 1: 714 · layer 2: 1"),
        "{packages}"
    );
    tmux.send(&["/", "l", "o", "d", "a", "s", "h"]);
    let lodash = tmux.expect("[1/715] </lodash>");
    assert!(lodash.contains("4.17.4") && lodash.contains("/app/node_modules/lodash/package.json"), "{lodash}");
    tmux.send(&["Enter"]);
    tmux.send(&["Escape"]);
    tmux.send(&["Escape"]);
    tmux.expect("Images [1/2] </app>");
    quit_with_status_0(&tmux, dir.path());
    // The scan was kept: the store holds it under the image's config digest.
    let store = picket::store::Store::open(&dir.path().join("data/picket/store")).expect("store");
    let stored =
        store.tree::<picket::scan::Sbom>(picket::store::TreeName::Sboms).expect("tree").entries().expect("entries");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1.packages.len(), 715);
}

#[test]
fn findings_of_a_stored_image_and_accepting_one_writes_picketignore() {
    if !have_tool("tmux") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let image = common::fixtures::images().join("oci");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .args(args)
            .env("XDG_DATA_HOME", &data)
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .output()
            .expect("picket");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let npm = common::fixtures::shared_data().join("osv/npm");
    run(&["db", "import", &npm.display().to_string(), "--name", "osv:npm"]);
    run(&["sbom", &image.display().to_string(), "--file", &dir.path().join("sbom.json").display().to_string()]);
    let command = format!(
        "cd {d} && env -u DOCKER_HOST -u CONTAINER_HOST XDG_CONFIG_HOME={d}/config XDG_DATA_HOME={d}/data \
         KUBECONFIG={d}/none {bin}; echo \"EXIT=$?\" > {d}/exit; sleep 60",
        d = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_picket"),
    );
    let tmux = Tmux::start(dir.path(), 140, 40, &command);
    let header = tmux.expect("vuln db: 5 advisories");
    assert!(header.contains("Local host"), "{header}");
    tmux.send(&[":", "i", "m", "g", "Enter"]);
    tmux.expect("Images [1/1]");
    tmux.send(&["v"]);
    let findings = tmux.expect("CVE-2021-44906");
    assert!(findings.contains("CRITICAL") && findings.contains("minimist") && findings.contains("0.2.4"), "{findings}");
    assert!(findings.contains("lodash") && findings.contains("3 findings"), "{findings}");
    tmux.send(&["Enter"]);
    let detail = tmux.expect("Prototype Pollution in minimist");
    assert!(detail.contains("fixed in 0.2.4") && detail.contains("GHSA-xvch-5gv4-984h"), "{detail}");
    tmux.send(&["a"]);
    tmux.expect("Accept finding");
    for c in "build only".chars() {
        let key = if c == ' ' { "Space".to_string() } else { c.to_string() };
        tmux.send(&[&key]);
    }
    tmux.send(&["Enter", "Enter"]);
    tmux.expect("CVE-2021-44906 accepted in");
    tmux.send(&["Escape"]);
    let after = tmux.expect("1 accepted");
    assert!(after.contains("2 findings"), "{after}");
    quit_with_status_0(&tmux, dir.path());
    let written = std::fs::read_to_string(dir.path().join(".picketignore")).expect(".picketignore");
    assert!(written.contains("id: \"CVE-2021-44906\"") && written.contains("reason: \"build only\""), "{written}");
    assert!(written.contains("package: \"minimist\""), "{written}");
}

#[test]
fn compliance_pane_runs_cis_docker_on_podman_and_opens_a_check() {
    let Some(podman) = common::engines::Podman::start() else { return };
    if !have_tool("tmux") {
        return;
    }
    podman.podman(&["run", "-d", "--name", "e2e-priv", "--privileged", common::engines::Podman::IMAGE, "sleep", "600"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let command = format!(
        "env DOCKER_HOST=unix://{sock} XDG_CONFIG_HOME={d}/config XDG_DATA_HOME={d}/data KUBECONFIG={d}/none {bin}; \
         echo \"EXIT=$?\" > {d}/exit; sleep 60",
        sock = podman.socket.display(),
        d = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_picket"),
    );
    let tmux = Tmux::start(dir.path(), 140, 40, &command);
    tmux.expect("Local host");
    tmux.send(&[":", "b", "e", "n", "c", "h", "Enter"]);
    tmux.expect("No benchmark has been run yet");
    tmux.send(&["1"]);
    let report = tmux.expect("CIS Docker Benchmark v1.6.0");
    assert!(report.contains("Podman") && report.contains(&podman.socket.display().to_string()), "{report}");
    assert!(report.contains("Container Runtime") && report.contains("all checks"), "{report}");
    tmux.send(&["/", "5", ".", "5", "Enter"]);
    let filtered = tmux.expect("</5.5>");
    let row = filtered
        .lines()
        .find(|l| l.contains("Ensure that privileged containers are not used"))
        .unwrap_or_else(|| panic!("no 5.5 row:\n{filtered}"));
    assert!(row.contains("FAIL") && row.contains("5.5") && row.contains("CRITICAL") && row.contains("1/1"), "{row}");
    tmux.send(&["Enter"]);
    let detail = tmux.expect("Remediation");
    assert!(detail.contains("Do not run containers with `--privileged`"), "{detail}");
    assert!(detail.contains("container e2e-priv") && detail.contains("privileged: true"), "{detail}");
    tmux.send(&["Escape"]);
    tmux.expect("</5.5>");
    quit_with_status_0(&tmux, dir.path());
}

#[test]
fn workloads_of_an_unreachable_context_say_so_and_the_console_stays_usable() {
    if !have_tool("tmux") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tmux = Tmux::start(dir.path(), 140, 40, &picket_command(dir.path()));
    tmux.expect("Local host");
    // The dev context's server, 127.0.0.1:40123, has nobody listening.
    tmux.send(&[":", "c", "t", "x", " ", "d", "e", "v", "Enter"]);
    tmux.send(&[":", "w", "o", "r", "k", "l", "o", "a", "d", "s", "Enter"]);
    // Past "listing the workloads of context dev…": the answer, however long the refusal takes.
    let screen = wait_for(Duration::from_secs(15), || {
        let screen = tmux.screen();
        (screen.contains("context dev") && !screen.contains("listing the workloads")).then_some(screen)
    })
    .unwrap_or_else(|| panic!("the context's failure never showed:\n{}", tmux.screen()));
    assert!(screen.contains("Connection refused") || screen.contains("40123"), "{screen}");
    assert!(!screen.contains("ServiceError"), "no kube internals: {screen}");
    assert_eq!(screen.matches("Connection refused").count(), 1, "one line for every kind: {screen}");
    quit_with_status_0(&tmux, dir.path());
}

/// The Nodes pane as root: no agent at first (the node fails open, and the pane says so); `a`
/// starts one as the console's child; a Podman container started then shows up by name with
/// its live processes, and the Behaviour pane shows what the agent learned of its group; when
/// the console quits, its agent stops.
#[test]
fn nodes_pane_starts_the_agent_and_shows_a_containers_processes() {
    if !can_run_the_agent() {
        return;
    }
    let Some(podman) = common::engines::Podman::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("agent.sock");
    let command = console_with_agent(dir.path(), &socket, Some(&podman));
    let tmux = Tmux::start(dir.path(), 140, 40, &command);
    tmux.send(&[":", "n", "o", "d", "e", "s", "Enter"]);
    let down = tmux.expect(&format!("no agent is serving {}", socket.display()));
    assert!(down.contains("it fails open") && down.contains("agent: not running"), "{down}");

    tmux.send(&["a"]);
    let started = tmux.expect("sensing (process, network, fil");
    assert!(started.contains("streaming"), "{started}");
    let pid: u32 = started
        .split("agent started by the console (pid ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the pane names the agent's pid: {started}"));
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    podman.podman(&[
        "run",
        "-d",
        "--name",
        "e2e-watched",
        common::engines::Podman::IMAGE,
        "sh",
        "-c",
        "while true; do /bin/true; sleep 0.3; done",
    ]);
    tmux.expect("e2e-watched");
    tmux.send(&["/", "w", "a", "t", "c", "h", "e", "d", "Enter"]);
    tmux.expect("Seen by the agent [1/");
    tmux.send(&["Enter"]);
    let activity = tmux.expect("Processes of e2e-watched");
    assert!(activity.contains("Events, newest first"), "{activity}");
    let activity = tmux.expect("sleep 0.3");
    assert!(activity.contains("sh -c while true"), "the container's shell is the tree's root: {activity}");
    assert!(!activity.contains("/proc/self/exe"), "executables are resolved files: {activity}");

    // The Behaviour pane asks the same agent what it learned: the container's group, and in it
    // the program its loop runs.
    tmux.send(&["Escape", ":", "b", "e", "h", "Enter"]);
    tmux.expect("local/localhost/picket-test:1");
    tmux.send(&["/", "p", "i", "c", "k", "e", "t", "-", "t", "e", "s", "t", "Enter", "Enter"]);
    let group = tmux.expect("Programs");
    assert!(group.contains("/bin/busybox") && group.contains("local/localhost/picket-test:1"), "{group}");

    tmux.send(&["C-c"]);
    wait_for(Duration::from_secs(10), || dir.path().join("exit").exists().then_some(())).expect("picket quits");
    let gone =
        wait_for(Duration::from_secs(10), || (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(()));
    assert!(gone.is_some(), "the agent the console started stops with it (pid {pid})");
    assert!(!socket.exists(), "a clean stop: the agent took its socket with it");
}

/// The Registries pane against a real registry: `s` crawls it from the console, enter lists its
/// tags, enter on a tag opens the image's findings.
#[test]
fn registries_pane_crawls_a_real_registry_and_opens_a_tags_findings() {
    if !have_tool("tmux") {
        return;
    }
    let Some(registry) = common::registry::Registry::start(false) else {
        eprintln!("skipped: docker-registry or skopeo missing");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let image = common::fixtures::images().join("oci");
    registry.push(&format!("oci:{}", image.display()), "app/web:1", false);
    std::fs::create_dir_all(dir.path().join("config/picket")).expect("config dir");
    std::fs::write(
        dir.path().join("config/picket/config.yaml"),
        format!("registries:\n- name: lab\n  url: http://{}\n", registry.host),
    )
    .expect("config");
    let npm = common::fixtures::shared_data().join("osv/npm");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["db", "import", &npm.display().to_string(), "--name", "osv:npm"])
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .output()
        .expect("picket");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let command = format!(
        "cd {d} && env -u DOCKER_HOST -u CONTAINER_HOST XDG_CONFIG_HOME={d}/config XDG_DATA_HOME={d}/data \
         KUBECONFIG={d}/none {bin}; echo \"EXIT=$?\" > {d}/exit; sleep 60",
        d = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_picket"),
    );
    let tmux = Tmux::start(dir.path(), 140, 40, &command);
    tmux.expect("Local host");
    tmux.send(&[":", "r", "e", "g", "Enter"]);
    let pane = tmux.expect("never crawled");
    assert!(pane.contains("Registries [1/1]") && pane.contains(&registry.host), "{pane}");
    tmux.send(&["s"]);
    let crawled = tmux.expect("crawled 20");
    assert!(crawled.contains("lab: 1 tags, 1 images scanned"), "the crawl's toast: {crawled}");
    tmux.send(&["Enter"]);
    let tags = tmux.expect("app/web");
    assert!(tags.contains("lab tags [1/1]"), "{tags}");
    tmux.send(&["Enter"]);
    let findings = tmux.expect("CVE-2021-44906");
    assert!(findings.contains("lab/app/web:1") && findings.contains("minimist"), "{findings}");
    tmux.send(&["Escape"]);
    tmux.expect("lab tags [1/1]");
    quit_with_status_0(&tmux, dir.path());
}

/// The Policies pane against a real agent: enter opens the policy in force in the editor; a
/// mistake typed in is marked at its line and refused by `a` with the agent's policy unchanged;
/// fixed, `d` previews the change, `a` asks, `y` applies through the agent's socket, and the CLI
/// then finds the edited text in force.
#[test]
fn policies_pane_edits_diffs_and_applies_a_policy_to_a_real_agent() {
    if !can_run_the_agent() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("agent.sock");
    let policy = dir.path().join("web.yaml");
    let original = "containers:\n  - name: e2e-web\n    mode: monitor\n    allowExec:\n      - /usr/sbin/nginx\n";
    std::fs::write(&policy, original).expect("policy");
    let policy_arg = policy.display().to_string();
    let _agent = start_agent(dir.path(), &["--no-learn", "--policy", &policy_arg], None);
    let in_force = |file: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
            .args(["policy", "diff", "--in-force", "--agent"])
            .arg(&socket)
            .arg(file)
            .output()
            .expect("picket policy diff runs")
    };
    assert!(in_force(&policy).status.success(), "the agent holds the file it started with");

    let command = console_with_agent(dir.path(), &socket, None);
    let tmux = Tmux::start(dir.path(), 140, 40, &command);
    tmux.send(&[":", "p", "o", "l", "i", "c", "i", "e", "s", "Enter"]);
    let list = tmux.expect("Policies [1/1]");
    assert!(list.contains(&socket.display().to_string()), "{list}");
    tmux.send(&["Enter"]);
    let editor = tmux.expect("valid · in force");
    assert!(editor.contains("/usr/sbin/nginx") && editor.contains("e2e-web"), "the policy in force: {editor}");

    // A relative path is not an executable the agent can hold: marked at line 6, refused.
    tmux.send(&["j", "j", "j", "j", "i", "End", "Enter", "-", " ", "s", "h"]);
    let marked = tmux.expect("allowlist path \"sh\"");
    assert!(marked.contains("INSERT"), "{marked}");
    assert!(marked.contains("✗"), "the line is marked: {marked}");
    tmux.send(&["Escape", "a"]);
    let refused = tmux.expect("not applied: 1 problem(s), first at line 6");
    assert!(refused.contains("line 6:9"), "the problem is placed at the bad path: {refused}");
    assert!(!refused.contains("Apply the edited policy"), "no question for a policy with problems: {refused}");
    assert!(in_force(&policy).status.success(), "a refused edit leaves the agent's policy as it was");

    // Fixed: the diff shows the one added line, and applying puts it in force.
    tmux.send(&["i", "BSpace", "BSpace", "/", "b", "i", "n", "/", "s", "h", "Escape"]);
    tmux.expect("valid · edited");
    tmux.send(&["d"]);
    let diff = tmux.expect("What applying to agent");
    assert!(diff.contains("+      - /bin/sh") && diff.contains("+++ edited"), "{diff}");
    assert!(!diff.contains("-      - /usr/sbin/nginx"), "only the new line changes: {diff}");
    tmux.send(&["a"]);
    let question = tmux.expect("Apply the edited policy to agent");
    assert!(question.contains("+1 -0 lines"), "{question}");
    tmux.send(&["y"]);
    let applied = tmux.expect("in force on the agent");
    assert!(applied.contains("valid · in force"), "back in the editor, nothing left to apply: {applied}");

    let edited = dir.path().join("edited.yaml");
    std::fs::write(&edited, format!("{original}      - /bin/sh\n")).expect("edited");
    let out = in_force(&edited);
    assert!(out.status.success(), "the agent holds the edited text: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!in_force(&policy).status.success(), "and no longer the file it started with");

    // The history names the pane as the change's source.
    tmux.send(&["Escape"]);
    let list = tmux.expect("Policies pane");
    assert!(list.contains("Policies [1/1]"), "{list}");
    quit_with_status_0(&tmux, dir.path());
}

/// Root, BTF and tmux, or the test ends saying which is missing.
fn can_run_the_agent() -> bool {
    if !common::is_root() || !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        eprintln!("skipped: the agent needs root and /sys/kernel/btf/vmlinux");
        return false;
    }
    have_tool("tmux")
}

/// The console's command line with its agent at `socket` (and its engine `podman`, or none).
fn console_with_agent(dir: &Path, socket: &Path, podman: Option<&common::engines::Podman>) -> String {
    let engine = match podman {
        Some(podman) => format!("CONTAINER_HOST=unix://{}", podman.socket.display()),
        None => "-u DOCKER_HOST -u CONTAINER_HOST".to_string(),
    };
    format!(
        "env {engine} PICKET_AGENT_SOCKET={agent} XDG_CONFIG_HOME={d}/config XDG_DATA_HOME={d}/data KUBECONFIG={d}/none {bin}; echo \"EXIT=$?\" > {d}/exit; sleep 60",
        agent = socket.display(),
        d = dir.display(),
        bin = env!("CARGO_BIN_EXE_picket"),
    )
}

/// `picket agent run` serving DIR/agent.sock with its state in DIR/state (and `extra` flags),
/// once it serves; stopped when the test ends.
fn start_agent(dir: &Path, extra: &[&str], podman: Option<&common::engines::Podman>) -> StopOnDrop {
    let socket = dir.join("agent.sock");
    let log = dir.join("agent.log");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_picket"));
    command
        .args(["agent", "run", "--for", "180", "--quiet", "--socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("agent log"));
    if let Some(podman) = podman {
        command.env("CONTAINER_HOST", format!("unix://{}", podman.socket.display()));
    }
    let agent = StopOnDrop(command.spawn().expect("agent starts"));
    if wait_for(Duration::from_secs(30), || socket.exists().then_some(())).is_none() {
        panic!("the agent never served its socket: {}", std::fs::read_to_string(&log).unwrap_or_default());
    }
    agent
}

/// Stops a child process (SIGINT, as an operator would) when the test ends, passing or failing.
struct StopOnDrop(std::process::Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").arg("-INT").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// The Behaviour pane's keys against a real agent and a real Podman container: `m` asks and
/// sets the group to monitor, then protect; a program the container never ran is refused and
/// shows up as the group's violation; `a` accepts it and the program runs.
#[test]
fn behaviour_pane_sets_a_groups_mode_and_accepts_a_violation() {
    if !can_run_the_agent() {
        return;
    }
    let Some(podman) = common::engines::Podman::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("agent.sock");
    let _agent = start_agent(dir.path(), &["--containers-only", "--no-rules"], Some(&podman));
    let image = "localhost/picket-e2e-modes:1";
    podman.podman(&["tag", common::engines::Podman::IMAGE, image]);
    podman.podman(&[
        "run",
        "-d",
        "--name",
        "e2e-modes",
        image,
        "sh",
        "-c",
        "mkdir -p /opt && cp /bin/busybox /opt/echo; while true; do date > /dev/null; sleep 0.3; done",
    ]);
    let group = format!("local/{image}");
    let command = console_with_agent(dir.path(), &socket, Some(&podman));
    let tmux = Tmux::start(dir.path(), 140, 40, &command);
    // Learning takes a moment: ask again until the group is there.
    tmux.send(&[":", "b", "e", "h", "Enter"]);
    let listed = wait_for(Duration::from_secs(30), || {
        tmux.send(&["C-r"]);
        std::thread::sleep(Duration::from_millis(500));
        let screen = tmux.screen();
        screen.contains(&group).then_some(screen)
    })
    .unwrap_or_else(|| panic!("the group never showed:\n{}", tmux.screen()));
    assert!(listed.contains("MODE") && listed.contains("discover"), "{listed}");
    tmux.send(&["/", "e", "2", "e", "-", "m", "o", "d", "e", "s", "Enter", "Enter"]);
    tmux.expect("Mode: discover");
    tmux.send(&["m"]);
    let asked = tmux.expect(&format!("Set {group} from discover to monitor?"));
    assert!(asked.contains("learned policy goes in force"), "{asked}");
    tmux.send(&["y"]);
    tmux.expect(&format!("discover → monitor: {group}"));
    tmux.expect("Mode: monitor since");
    tmux.send(&["m", "y"]);
    tmux.expect("Mode: protect since");

    let refused = wait_for(Duration::from_secs(10), || {
        let (ran, said) = podman.try_podman(&["exec", "e2e-modes", "/opt/echo", "ran"]);
        (!ran).then_some(said)
    })
    .expect("a program the group never ran is refused in protect mode");
    assert!(refused.to_lowercase().contains("permission denied") || refused.contains("not permitted"), "{refused}");
    let shown = wait_for(Duration::from_secs(15), || {
        tmux.send(&["C-r"]);
        std::thread::sleep(Duration::from_millis(400));
        let screen = tmux.screen();
        screen.contains("exec:/opt/echo").then_some(screen)
    })
    .unwrap_or_else(|| panic!("the violation never showed:\n{}", tmux.screen()));
    assert!(shown.contains("denied"), "{shown}");
    tmux.send(&["a"]);
    tmux.expect(&format!("Accept exec:/opt/echo into {group}'s policy?"));
    tmux.send(&["y"]);
    tmux.expect(&format!("accepted exec:/opt/echo into {group}"));
    let (ran, said) = podman.try_podman(&["exec", "e2e-modes", "/opt/echo", "ran"]);
    assert!(ran && said.contains("ran"), "accepted, the program runs: {said}");
    let screen = tmux.expect_gone("exec:/opt/echo  denied");
    assert!(screen.contains("Mode: protect"), "{screen}");
    quit_with_status_0(&tmux, dir.path());
}

/// The Alerts pane over alerts a console kept: folded, one opened with its process tree,
/// acknowledged (it leaves the open list, and `A` shows it), the severity floor; the response
/// sinks' state in the header.
#[test]
fn alerts_pane_folds_opens_and_acknowledges() {
    use picket::agent::alert::{Action, Alert, Trigger};
    use picket::agent::processes::Ancestor;
    if !have_tool("tmux") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    {
        let store = picket::store::Store::open(&d.join("data/picket/store")).expect("store");
        let now = picket::alert::now_unix_ms();
        let alert = |id: &str, rule: &str, severity, exe: &str, at: u64| {
            let container = picket::agent::attribution::ContainerRef {
                runtime: picket::agent::attribution::Runtime::Podman,
                id: "f".repeat(64),
                pod_uid: None,
                name: Some("web".into()),
                image: Some("docker.io/library/nginx:1.27".into()),
                pod_namespace: None,
                pod_name: None,
                pod_owner: None,
            };
            let alert = Alert {
                id: id.into(),
                at_unix_ms: at,
                rule: rule.into(),
                title: format!("{rule} fired"),
                severity,
                technique: String::new(),
                why: "servers do not start shells".into(),
                mode: picket::agent::enforce::Mode::Monitor,
                action: Action::Alerted,
                policy: String::new(),
                event: Trigger {
                    kind: "exec".into(),
                    pid: 42,
                    exe: exe.into(),
                    comm: "sh".into(),
                    ..Trigger::default()
                },
                ancestry: vec![
                    Ancestor {
                        pid: 42,
                        exe: exe.into(),
                        args: vec!["sh".into()],
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
            };
            picket::agent::wire::WireEvent::alert("node-e2e", alert, Some(container))
        };
        let events = vec![
            alert("e1", "shell-from-server", picket::model::Severity::High, "/bin/sh", now - 3000),
            alert("e2", "shell-from-server", picket::model::Severity::High, "/bin/sh", now - 2000),
            alert(
                "e3",
                "package-manager-in-container",
                picket::model::Severity::Medium,
                "/usr/bin/apt-get",
                now - 1000,
            ),
        ];
        picket::alert::AlertLog::open(&store).and_then(|log| log.record(&events, now)).expect("kept");
        store.flush().expect("flush");
    }
    std::fs::create_dir_all(d.join("config/picket/response")).expect("dir");
    std::fs::write(
        d.join("config/picket/response/hook.yaml"),
        "version: 1\nsinks:\n  - { name: hook, type: webhook, url: 'http://127.0.0.1:9/hook' }\nrules:\n  - name: all\n    actions: [ { notify: hook } ]\n",
    )
    .expect("write");
    let command = format!(
        "cd {d} && env -u DOCKER_HOST -u CONTAINER_HOST XDG_CONFIG_HOME={d}/config XDG_DATA_HOME={d}/data \
         KUBECONFIG={d}/none {bin}; echo \"EXIT=$?\" > {d}/exit; sleep 60",
        d = d.display(),
        bin = env!("CARGO_BIN_EXE_picket"),
    );
    let tmux = Tmux::start(d, 140, 40, &command);
    tmux.expect("Local host");
    tmux.send(&[":", "a", "l", "e", "r", "t", "s", "Enter"]);
    let pane = tmux.expect("package-manager-in-container");
    assert!(pane.contains("open 2") && pane.contains("3 alerts"), "{pane}");
    assert!(pane.contains("sinks hook ok, 0 sent"), "{pane}");
    let shell_line = pane.lines().find(|l| l.contains("shell-from-server")).expect("the shell fold");
    assert!(shell_line.contains(" 2 ") && shell_line.contains("/bin/sh"), "{shell_line}");
    // The shell fold in full (it fired last but one: second row).
    tmux.send(&["j", "Enter"]);
    let detail = tmux.expect("process tree:");
    assert!(detail.contains("[7] /usr/sbin/nginx") && detail.contains("└─ [42] /bin/sh"), "{detail}");
    assert!(detail.contains("never scanned here"), "{detail}");
    tmux.send(&["Escape"]);
    tmux.expect("SEVERITY");
    // Acknowledge it: gone from the open list; A shows it acknowledged.
    tmux.send(&["a"]);
    tmux.expect("acknowledged");
    let after = tmux.expect_gone("shell-from-server");
    assert!(after.contains("open 1"), "{after}");
    tmux.send(&["A"]);
    let all = tmux.expect("shell-from-server");
    assert!(all.lines().any(|l| l.contains("shell-from-server") && l.contains("acked")), "{all}");
    // The severity floor: high and worse hides the medium one.
    tmux.send(&["v", "v"]);
    tmux.expect_gone("package-manager-in-container");
    quit_with_status_0(&tmux, d);
    // The acknowledgement is in the store: the CLI twin sees it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(["alerts", "list", "--all", "--json"])
        .env("XDG_DATA_HOME", d.join("data"))
        .env("XDG_CONFIG_HOME", d.join("config"))
        .output()
        .expect("picket");
    let folds: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let shell = folds.as_array().and_then(|f| f.iter().find(|f| f["rule"] == "shell-from-server")).expect("the fold");
    assert_eq!(shell["state"], "acknowledged");
}

/// The Risk pane over a real API server: workloads ranked, one explained.
#[test]
fn risk_pane_ranks_a_real_clusters_workloads() {
    if !have_tool("tmux") {
        return;
    }
    let Some(server) = common::kube_real::RealApiServer::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let objects = d.join("objects.yaml");
    std::fs::write(
        &objects,
        "apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: exposed, namespace: shop }\nspec:\n  selector: { matchLabels: { app: exposed } }\n  template:\n    metadata: { labels: { app: exposed } }\n    spec:\n      hostNetwork: true\n      containers: [{ name: app, image: registry.example/exposed:1, securityContext: { privileged: true } }]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: quiet, namespace: shop }\nspec:\n  selector: { matchLabels: { app: quiet } }\n  template:\n    metadata: { labels: { app: quiet } }\n    spec:\n      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: RuntimeDefault } }\n      containers: [{ name: app, image: registry.example/quiet:1, securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } } }]\n",
    )
    .expect("write");
    let out = server.kubectl(&["apply", "-f", &objects.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let command = format!(
        "cd {d} && env -u DOCKER_HOST -u CONTAINER_HOST XDG_CONFIG_HOME={d}/config XDG_DATA_HOME={d}/data \
         KUBECONFIG={k} {bin}; echo \"EXIT=$?\" > {d}/exit; sleep 60",
        d = d.display(),
        k = server.kubeconfig.display(),
        bin = env!("CARGO_BIN_EXE_picket"),
    );
    let tmux = Tmux::start(d, 160, 45, &command);
    tmux.expect("Local host");
    tmux.send(&[":", "r", "i", "s", "k", "Enter"]);
    let pane = tmux.expect("Deployment shop/quiet");
    let exposed = pane.lines().position(|l| l.contains("Deployment shop/exposed")).expect("the exposed one");
    let quiet = pane.lines().position(|l| l.contains("Deployment shop/quiet")).expect("the quiet one");
    assert!(exposed < quiet, "the riskiest first: {pane}");
    // Open the exposed one: its parts explained.
    tmux.send(&["/", "e", "x", "p", "o", "s", "e", "d", "Enter", "Enter"]);
    let detail = tmux.expect("privileged container app: 15");
    assert!(detail.contains("host network: 10") && detail.contains("not known: vulnerabilities"), "{detail}");
    tmux.send(&["Escape", "Escape"]);
    quit_with_status_0(&tmux, d);
}

/// The Network pane over a real agent holding a real container to an HTTP rule: the client's
/// connection to the server shows with its protocol, its last request and its verdict; the
/// refused request marks it denied; `m` draws the map; the connection opened in full names the
/// policy line that decided.
#[test]
fn network_pane_shows_a_containers_connections_their_verdict_and_the_map() {
    if !can_run_the_agent() {
        return;
    }
    if !std::path::Path::new("/usr/bin/curl").exists() || !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("skipped: needs curl and python3 on the host (./install.sh --dev)");
        return;
    }
    let Some(podman) = common::engines::Podman::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let tools = ["-v", "/usr:/usr:ro", "-v", "/lib:/lib:ro", "-v", "/lib64:/lib64:ro"];
    let mut web = vec!["run", "-d", "--name", "e2e-web"];
    web.extend_from_slice(&tools);
    web.extend_from_slice(&[common::engines::Podman::IMAGE, "python3", "-m", "http.server", "8080", "-b", "127.0.0.1"]);
    podman.podman(&web);
    let mut client = vec!["run", "-d", "--name", "e2e-client", "--network", "container:e2e-web"];
    client.extend_from_slice(&tools);
    client.extend_from_slice(&[common::engines::Podman::IMAGE, "sleep", "600"]);
    podman.podman(&client);
    let curl = |args: &[&str]| {
        let mut command = vec!["exec", "e2e-client", "curl", "-s", "-m", "5", "-o", "/dev/null"];
        command.extend_from_slice(args);
        podman.try_podman(&command)
    };
    wait_for(Duration::from_secs(20), || curl(&["http://127.0.0.1:8080/"]).0.then_some(()))
        .expect("the server answers");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "containers:\n  - name: e2e-client\n    mode: protect\n    http:\n      deny:\n        - { method: DELETE, path: \"/admin*\" }\n",
    )
    .expect("policy");
    let policy_arg = policy.display().to_string();
    let socket = dir.path().join("agent.sock");
    let _agent = start_agent(dir.path(), &["--containers-only", "--no-rules", "--policy", &policy_arg], Some(&podman));
    let command = console_with_agent(dir.path(), &socket, Some(&podman));
    let tmux = Tmux::start(dir.path(), 160, 40, &command);
    tmux.send(&[":", "n", "e", "t", "w", "o", "r", "k", "Enter"]);
    tmux.expect("connections");
    // The agent may still be putting the policy in force: ask until the DELETE is refused.
    wait_for(Duration::from_secs(20), || {
        curl(&["http://127.0.0.1:8080/orders"]);
        let (ok, _) = curl(&["-X", "DELETE", "http://127.0.0.1:8080/admin/users"]);
        (!ok).then_some(())
    })
    .expect("the DELETE is refused");
    let shown = wait_for(Duration::from_secs(20), || {
        let screen = tmux.screen();
        (screen.contains("e2e-client") && screen.contains("HTTP") && screen.contains("denied")).then_some(screen)
    })
    .unwrap_or_else(|| panic!("the refused connection never showed:\n{}", tmux.screen()));
    assert!(shown.contains("8080"), "{shown}");
    tmux.send(&["m"]);
    let map = tmux.expect("Network map");
    assert!(map.contains("│ e2e-client │") && map.contains("──HTTP──▶ [127.0.0.1:8080]"), "{map}");
    assert!(map.contains("✗ denied"), "{map}");
    tmux.send(&["m", "/", "d", "e", "n", "i", "e", "d", "Enter", "Enter"]);
    let detail = tmux.expect("decided by  policy-http");
    assert!(detail.contains(&format!("{policy_arg} containers[0] http: deny DELETE /admin*")), "{detail}");
    assert!(detail.contains("DELETE /admin/users (denied)"), "{detail}");
    tmux.send(&["Escape"]);
    quit_with_status_0(&tmux, dir.path());
}

//! Shared helpers for integration tests against real programs.
#![allow(dead_code)]

pub mod engines;
pub mod fault_proxy;
pub mod file_server;
pub mod fixtures;
pub mod kube_mock;
pub mod kube_real;
pub mod registry;
pub mod token_server;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// True when `tool` can run. Missing tools skip a test with a message on a developer machine,
/// and fail it in CI (`CI` set), where `install.sh --dev` must have provided them.
pub fn have_tool(tool: &str) -> bool {
    let found =
        Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{tool} is required in CI: run ./install.sh --dev");
        eprintln!("SKIPPED: {tool} is not installed (./install.sh --dev installs it)");
    }
    found
}

/// True when running as root. Tests that need root skip (with a message) otherwise; CI runs as root.
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root =
        status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1)) == Some("0");
    if !root {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        eprintln!("SKIPPED: needs root");
    }
    root
}

/// Polls `check` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A tmux server of the test's own (its socket in a temp dir), killed on drop.
pub struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    pub fn start(dir: &Path, width: u16, height: u16, command: &str) -> Self {
        let tmux = Self { socket: dir.join("tmux.sock") };
        let status = tmux
            .cmd()
            .args(["new-session", "-d", "-s", "t", "-x", &width.to_string(), "-y", &height.to_string(), command])
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket);
        cmd
    }

    pub fn screen(&self) -> String {
        let out = self.cmd().args(["capture-pane", "-t", "t", "-p"]).output().expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends keys one call at a time, so that `Escape` is never glued to the next key.
    pub fn send(&self, keys: &[&str]) {
        for key in keys {
            let status = self.cmd().args(["send-keys", "-t", "t", key]).status().expect("send-keys");
            assert!(status.success());
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    pub fn display(&self, format: &str) -> String {
        let out = self.cmd().args(["display", "-p", "-t", "t", format]).output().expect("display");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until the screen contains `needle`; panics with the screen if it never does.
    pub fn expect(&self, needle: &str) -> String {
        wait_for(Duration::from_secs(15), || {
            let screen = self.screen();
            screen.contains(needle).then_some(screen)
        })
        .unwrap_or_else(|| panic!("screen never showed {needle:?}:\n{}", self.screen()))
    }

    pub fn expect_gone(&self, needle: &str) -> String {
        wait_for(Duration::from_secs(15), || {
            let screen = self.screen();
            (!screen.contains(needle)).then_some(screen)
        })
        .unwrap_or_else(|| panic!("screen kept showing {needle:?}:\n{}", self.screen()))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// A TCP server on loopback that accepts connections and never says a word: its port.
pub fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

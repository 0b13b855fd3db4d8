//! Probe commands: what a container's own platform runs in it by itself, the kubelet's exec
//! probes (liveness, readiness, startup) and an engine's HEALTHCHECK. They are part of the
//! workload as deployed, so they are learned as probes and allowed under a policy that does not
//! name them (a refused liveness probe restarts the pod), never reported as violations.

use std::collections::HashMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Pod};

/// A command as it is executed: its argv.
pub type Command = Vec<String>;

/// The search path a probe's command is looked up in when it names no directory: the one
/// runc and the engines give a container whose image sets none.
const DEFAULT_PATH: [&str; 6] = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// Symlinks followed at most while resolving one path (as the kernel's ELOOP bound).
const MAX_LINKS: usize = 40;

/// Words of a shell script that the shell runs itself: never a program to allow.
const SHELL_BUILTINS: [&str; 16] = [
    "[", "[[", "test", "echo", "printf", "true", "false", "exit", ":", ".", "cd", "export", "set", "source", "exec",
    "read",
];

/// The exec probes of a pod's containers (init containers have none), by container name.
pub fn of_pod(pod: &Pod) -> HashMap<String, Vec<Command>> {
    let Some(spec) = &pod.spec else { return HashMap::new() };
    spec.containers.iter().map(|c| (c.name.clone(), of_container(c))).filter(|(_, p)| !p.is_empty()).collect()
}

fn of_container(container: &Container) -> Vec<Command> {
    let probes = [&container.liveness_probe, &container.readiness_probe, &container.startup_probe];
    let mut commands: Vec<Command> = probes
        .into_iter()
        .flatten()
        .filter_map(|p| p.exec.as_ref()?.command.clone())
        .filter(|c| !c.is_empty())
        .collect();
    commands.dedup();
    commands
}

/// The command an engine runs for a healthcheck's `Test`: `["CMD", argv…]`, or
/// `["CMD-SHELL", script]` run by `/bin/sh -c`. None for `NONE`, an inherited or an empty test.
pub fn of_healthcheck(test: &[String]) -> Option<Command> {
    match test.split_first()? {
        (kind, argv) if kind == "CMD" && !argv.is_empty() => Some(argv.to_vec()),
        (kind, [script]) if kind == "CMD-SHELL" && !script.trim().is_empty() => {
            Some(vec!["/bin/sh".into(), "-c".into(), script.clone()])
        }
        _ => None,
    }
}

/// Whether an exec's argv is one of `probes`. The sensor bounds argv (512 bytes), so an argv
/// that ends early matches a probe it is the start of.
pub fn is_probe(probes: &[Command], argv: &[String]) -> bool {
    let bound = super::events::ARGS_MAX;
    let cut = argv.iter().map(|a| a.len() + 1).sum::<usize>() >= bound - 1;
    probes.iter().any(|probe| {
        if probe.as_slice() == argv {
            return true;
        }
        let Some((last, whole)) = argv.split_last() else { return false };
        cut && probe.len() >= argv.len()
            && probe[..whole.len()] == *whole
            && probe[whole.len()].starts_with(last.as_str())
    })
}

/// The programs a probe runs, as paths in the container whose root is `root` (`/proc/PID/root`),
/// symlinks resolved as an exec sees them: its first word looked up on the search path, and for
/// `sh -c SCRIPT` also the first word of each simple command of the script. What cannot be found
/// in the container is left out (it would not run there either).
pub fn programs(root: &Path, command: &[String]) -> Vec<String> {
    let mut words: Vec<&str> = Vec::new();
    if let Some(first) = command.first() {
        words.push(first);
    }
    if let [shell, flag, script, ..] = command
        && flag == "-c"
        && is_shell(shell)
    {
        words.extend(script_programs(script));
    }
    let mut found: Vec<String> = words.into_iter().filter_map(|w| find_program(root, w)).collect();
    found.sort();
    found.dedup();
    found
}

fn is_shell(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    matches!(name, "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh")
}

/// The first word of each simple command of a shell script (split on `;`, `&&`, `||`, `|`, `&`
/// and new lines; leading `VAR=value` assignments and builtins skipped, `exec PROGRAM` kept).
fn script_programs(script: &str) -> Vec<&str> {
    let mut programs = Vec::new();
    for part in script.split(['\n', ';', '|', '&']) {
        let mut words = part.split_whitespace().map(|w| w.trim_matches(['"', '\'', '(', ')', '{', '}']));
        let program = loop {
            match words.next() {
                Some("exec") => continue,
                Some(w) if w.is_empty() || (w.contains('=') && !w.starts_with('/')) => continue,
                other => break other,
            }
        };
        if let Some(program) = program.filter(|p| !SHELL_BUILTINS.contains(p) && !p.starts_with('$')) {
            programs.push(program);
        }
    }
    programs
}

/// Where `word` runs from in the container: as given when it names a directory, else the first
/// match on the search path; symlinks resolved inside `root`.
fn find_program(root: &Path, word: &str) -> Option<String> {
    if word.contains('/') {
        return word.starts_with('/').then(|| resolve_in_root(root, word)).flatten();
    }
    DEFAULT_PATH.iter().find_map(|dir| resolve_in_root(root, &format!("{dir}/{word}")))
}

/// `path` with every symlink resolved as the container sees it (an absolute target starts again
/// at `root`, never at the host's `/`); a regular file's path, or None.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<String> {
    let mut pending: Vec<String> = path.split('/').rev().map(String::from).collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(resolved.iter().chain([&part]).map(String::as_str).collect::<Vec<_>>().join("/"));
        let meta = std::fs::symlink_metadata(&candidate).ok()?;
        if !meta.file_type().is_symlink() {
            resolved.push(part);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return None;
        }
        let target = std::fs::read_link(&candidate).ok()?;
        let target = target.to_str()?;
        if target.starts_with('/') {
            resolved.clear();
        }
        pending.extend(target.split('/').rev().map(String::from));
    }
    let full = root.join(resolved.join("/"));
    std::fs::metadata(&full).ok().filter(std::fs::Metadata::is_file)?;
    Some(format!("/{}", resolved.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &[&str]) -> Command {
        text.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn healthchecks_are_argv_or_a_shell_script() {
        assert_eq!(
            of_healthcheck(&words(&["CMD", "/bin/ping", "-c1", "db"])),
            Some(words(&["/bin/ping", "-c1", "db"]))
        );
        assert_eq!(
            of_healthcheck(&words(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"])),
            Some(words(&["/bin/sh", "-c", "curl -f http://localhost/ || exit 1"]))
        );
        assert_eq!(of_healthcheck(&words(&["NONE"])), None);
        assert_eq!(of_healthcheck(&words(&["CMD"])), None);
        assert_eq!(of_healthcheck(&[]), None);
    }

    #[test]
    fn pod_probes_are_the_exec_probes_of_each_container() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "spec": { "containers": [
                { "name": "api",
                  "livenessProbe": { "exec": { "command": ["cat", "/tmp/healthy"] } },
                  "readinessProbe": { "httpGet": { "port": 8080 } },
                  "startupProbe": { "exec": { "command": ["/bin/sh", "-c", "test -f /ready"] } } },
                { "name": "sidecar" }
            ] }
        }))
        .unwrap();
        let probes = of_pod(&pod);
        assert_eq!(probes.len(), 1, "a container without exec probes has none: {probes:?}");
        assert_eq!(probes["api"], [words(&["cat", "/tmp/healthy"]), words(&["/bin/sh", "-c", "test -f /ready"])]);
    }

    #[test]
    fn an_argv_cut_by_the_sensor_still_matches_its_probe() {
        let long = "x".repeat(600);
        let probes = vec![words(&["/bin/sh", "-c", &long]), words(&["cat", "/tmp/healthy"])];
        assert!(is_probe(&probes, &words(&["cat", "/tmp/healthy"])));
        assert!(!is_probe(&probes, &words(&["cat", "/etc/shadow"])));
        assert!(!is_probe(&probes, &words(&["cat"])), "a shorter argv that was not cut is another command");
        let cut = &long[..500];
        assert!(is_probe(&probes, &words(&["/bin/sh", "-c", cut])));
        assert!(!is_probe(&probes, &words(&["/bin/sh", "-c", "y"])));
    }

    #[test]
    fn programs_are_found_in_the_containers_root_with_its_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for dir in ["bin", "usr/bin", "etc"] {
            std::fs::create_dir_all(r.join(dir)).unwrap();
        }
        std::fs::write(r.join("bin/busybox"), b"\x7fELF").unwrap();
        std::fs::write(r.join("usr/bin/curl"), b"\x7fELF").unwrap();
        std::os::unix::fs::symlink("/bin/busybox", r.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("busybox", r.join("bin/cat")).unwrap();
        // A link out to the host's files resolves inside the root, where there is none.
        std::os::unix::fs::symlink("/usr/bin/env", r.join("bin/env")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("bin/loop")).unwrap();

        assert_eq!(programs(r, &words(&["cat", "/tmp/healthy"])), ["/bin/busybox"]);
        let script = words(&["/bin/sh", "-c", "A=1 curl -sf http://localhost/ && test -f /x || exit 1; exec cat /y"]);
        assert_eq!(programs(r, &script), ["/bin/busybox", "/usr/bin/curl"]);
        assert_eq!(programs(r, &words(&["env", "true"])), Vec::<String>::new(), "no /usr/bin/env in the container");
        assert_eq!(programs(r, &words(&["/bin/loop"])), Vec::<String>::new(), "a symlink loop ends");
        assert_eq!(programs(r, &words(&["../../bin/busybox"])), Vec::<String>::new(), "relative names are not run");
        assert_eq!(resolve_in_root(r, "/bin/../bin/./sh"), Some("/bin/busybox".into()));
        assert_eq!(resolve_in_root(r, "/etc"), None, "a directory is not a program");
    }
}

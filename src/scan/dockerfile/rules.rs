//! The rule set. Each rule has a stable id; `check` returns where rules fire, the caller turns
//! that into findings (suppressions, evidence, order).

use std::collections::{HashMap, HashSet};

use super::parse::{Dockerfile, Instruction, Keyword, ShellCommand, Stage, shell_commands, unquote};
use crate::model::Severity;

/// A rule, for findings and for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    pub id: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub description: &'static str,
    pub fix: &'static str,
    /// hadolint rules that check the same thing (`# hadolint ignore=` also suppresses this rule).
    pub hadolint: &'static [&'static str],
}

const fn rule(
    id: &'static str,
    severity: Severity,
    title: &'static str,
    description: &'static str,
    fix: &'static str,
    hadolint: &'static [&'static str],
) -> RuleInfo {
    RuleInfo { id, title, severity, description, fix, hadolint }
}

use Severity::{High, Low, Medium};

pub static RULES: [RuleInfo; 25] = [
    rule(
        "PKT-DF-001",
        High,
        "Image runs as root: the last USER is root",
        "The last USER of the final stage is root, so the container's processes run as uid 0.",
        "Create an unprivileged user and end with `USER <name>` (or a numeric uid), e.g. `RUN useradd -r app` then `USER app`.",
        &["DL3002"],
    ),
    rule(
        "PKT-DF-002",
        Medium,
        "Image runs as root: no USER",
        "The final stage (and the stages it builds on) never sets USER, so the container runs as root unless the base image sets a user.",
        "Add `USER <non-root user or uid>` after the steps that need root.",
        &[],
    ),
    rule(
        "PKT-DF-003",
        Medium,
        "Base image without a tag",
        "FROM names an image without a tag or digest, which means `latest`: builds are not reproducible and can change under you.",
        "Pin a version tag, ideally with a digest: `FROM debian:12.7@sha256:…`.",
        &["DL3006"],
    ),
    rule(
        "PKT-DF-004",
        Medium,
        "Base image uses the latest tag",
        "FROM uses the mutable `latest` tag: builds are not reproducible and can change under you.",
        "Pin a version tag, ideally with a digest: `FROM node:22.11-bookworm@sha256:…`.",
        &["DL3007"],
    ),
    rule(
        "PKT-DF-005",
        Medium,
        "ADD used to copy local files",
        "ADD also unpacks archives and fetches URLs; for plain local files that implicit behaviour is a surprise waiting to happen.",
        "Use COPY for local files and directories.",
        &["DL3020"],
    ),
    rule(
        "PKT-DF-006",
        Low,
        "ADD fetches a URL or unpacks an archive",
        "ADD downloads a remote file without verifying it (no --checksum), or unpacks a local archive into the image.",
        "Download with `ADD --checksum=sha256:… <url>` or a RUN step that verifies the file; for archives keep ADD only if unpacking is intended.",
        &[],
    ),
    rule(
        "PKT-DF-007",
        Low,
        "apt-get install without --no-install-recommends",
        "apt-get installs recommended packages too: a larger image and attack surface.",
        "`apt-get install -y --no-install-recommends <packages>`.",
        &["DL3015"],
    ),
    rule(
        "PKT-DF-008",
        Low,
        "apt lists not removed in the same RUN",
        "apt-get update downloads package lists that stay in the layer when they are not removed by the same RUN.",
        "End the RUN with `&& rm -rf /var/lib/apt/lists/*`, or use `--mount=type=cache,target=/var/lib/apt/lists`.",
        &["DL3009"],
    ),
    rule(
        "PKT-DF-009",
        Low,
        "apt-get upgrade in a Dockerfile",
        "Upgrading all packages inside the build makes the image depend on the day it was built and hides what the base image ships.",
        "Rebuild on an updated base image instead; install specific package versions if needed.",
        &[],
    ),
    rule(
        "PKT-DF-010",
        Low,
        "apk add without --no-cache",
        "apk keeps its index in /var/cache/apk in the layer.",
        "`apk add --no-cache <packages>`.",
        &["DL3019"],
    ),
    rule(
        "PKT-DF-011",
        Low,
        "pip install without --no-cache-dir",
        "pip keeps downloaded wheels in its cache inside the layer.",
        "`pip install --no-cache-dir …`, or `ENV PIP_NO_CACHE_DIR=1`.",
        &["DL3042"],
    ),
    rule(
        "PKT-DF-012",
        High,
        "Remote script piped into a shell",
        "A script downloaded with curl or wget runs unverified: whoever controls the URL or the network controls the build.",
        "Download to a file, verify its checksum or signature, then run it (or use a package manager).",
        &[],
    ),
    rule(
        "PKT-DF-013",
        High,
        "Secret in ENV or ARG",
        "A credential-like variable is given a literal value: it is stored in the image config or history for anyone who can pull the image.",
        "Pass secrets at build time with `RUN --mount=type=secret,id=…` and at run time through the environment or a secret store.",
        &["DL3064"],
    ),
    rule(
        "PKT-DF-014",
        Low,
        "No HEALTHCHECK",
        "The final stage has no HEALTHCHECK, so Docker cannot tell a hung container from a healthy one (orchestrators with their own probes may not need it).",
        "Add `HEALTHCHECK CMD <command that fails when the service is unhealthy>`, or `HEALTHCHECK NONE` to say it is deliberate.",
        &[],
    ),
    rule(
        "PKT-DF-015",
        Medium,
        "sudo in RUN",
        "RUN already runs as the current USER; sudo adds a setuid binary to the image and unpredictable TTY and environment behaviour.",
        "Drop sudo; switch with `USER root` … `USER app` around the steps that need it (or gosu at run time).",
        &["DL3004"],
    ),
    rule(
        "PKT-DF-016",
        Low,
        "cd in RUN instead of WORKDIR",
        "cd only lasts for one RUN; later instructions silently run elsewhere.",
        "Use `WORKDIR /path`.",
        &["DL3003"],
    ),
    rule(
        "PKT-DF-017",
        Low,
        "MAINTAINER is deprecated",
        "MAINTAINER is deprecated and not shown by most tools.",
        "`LABEL org.opencontainers.image.authors=\"…\"`.",
        &["DL4000"],
    ),
    rule(
        "PKT-DF-018",
        Medium,
        "SSH port exposed",
        "EXPOSE 22 suggests an SSH server in the container: one more daemon and set of credentials to protect.",
        "Remove the SSH server; use `docker exec` or `kubectl exec` to get a shell.",
        &[],
    ),
    rule(
        "PKT-DF-019",
        Low,
        "Relative WORKDIR",
        "A relative WORKDIR depends on the previous WORKDIR, which is easy to break when instructions move.",
        "Use an absolute path: `WORKDIR /app`.",
        &["DL3000"],
    ),
    rule(
        "PKT-DF-020",
        Medium,
        "COPY --from names no earlier stage",
        "`COPY --from` names no stage defined before it; BuildKit then pulls an image of that name, which may not be what was meant.",
        "Use the name (or index) of an earlier stage, or a tagged image reference such as `nginx:1.27`.",
        &["DL3022"],
    ),
    rule(
        "PKT-DF-021",
        Low,
        "More than one CMD in a stage",
        "Only the last CMD of a stage takes effect.",
        "Keep one CMD per stage.",
        &["DL4003"],
    ),
    rule(
        "PKT-DF-022",
        Low,
        "More than one ENTRYPOINT in a stage",
        "Only the last ENTRYPOINT of a stage takes effect.",
        "Keep one ENTRYPOINT per stage.",
        &["DL4004"],
    ),
    rule(
        "PKT-DF-023",
        Low,
        "CMD or ENTRYPOINT in shell form",
        "Shell form runs the command under `/bin/sh -c`: the process does not get signals such as SIGTERM, so stops are slow and unclean.",
        "Use the JSON form: `CMD [\"executable\", \"arg\"]`.",
        &["DL3025"],
    ),
    rule(
        "PKT-DF-024",
        Medium,
        "Malformed JSON array",
        "The arguments start with `[` but are not a valid JSON array of strings, so Docker runs them as a shell command line instead.",
        "Write a valid JSON array with double quotes: `[\"executable\", \"arg\"]`.",
        &[],
    ),
    rule(
        "PKT-DF-025",
        Medium,
        "Download piped into another command without pipefail",
        "A RUN pipes curl or wget into another command (`curl … | sh`, `wget -O- … | tar x`): the pipe's status is the last command's, so a failed or cut download goes unnoticed and the build carries on with whatever arrived.",
        "Set `SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]` before the RUN (or `set -o pipefail` at its start), or download to a file, verify it, then use it.",
        &["DL4006"],
    ),
];

/// Where a rule fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub id: &'static str,
    /// Index of the instruction in `Dockerfile::instructions`.
    pub instruction: usize,
    /// A sentence about this occurrence, appended to the rule's description.
    pub detail: Option<String>,
    /// Replaces the instruction text as evidence (secrets are masked).
    pub evidence: Option<String>,
}

pub fn info(id: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.id == id)
}

const SHELLS: [&str; 6] = ["sh", "bash", "ash", "dash", "zsh", "ksh"];

struct Checker<'a> {
    df: &'a Dockerfile,
    stages: Vec<Stage>,
    /// Each stage's image with global ARG defaults substituted; None when a variable has none.
    images: Vec<Option<String>>,
    /// The earlier stage each stage is built FROM.
    parents: Vec<Option<usize>>,
    /// The first stage of each name (BuildKit refuses duplicate names).
    named: HashMap<String, usize>,
    /// The final stage and the earlier stages it is built FROM, final first.
    final_chain: Vec<usize>,
    in_final_chain: Vec<bool>,
    /// The current stage's SHELL sets `-o pipefail`.
    pipefail: bool,
    hits: Vec<Hit>,
}

pub fn check(df: &Dockerfile) -> Vec<Hit> {
    let stages = df.stages();
    let args: HashMap<String, Option<String>> = df.global_args().into_iter().collect();
    let images: Vec<Option<String>> = stages.iter().map(|s| substitute(&s.image, &args)).collect();
    let mut named = HashMap::new();
    for stage in &stages {
        if let Some(name) = &stage.name {
            named.entry(name.clone()).or_insert(stage.index);
        }
    }
    let parents = stages
        .iter()
        .map(|s| {
            let image = images[s.index].as_ref()?.to_ascii_lowercase();
            named.get(&image).copied().filter(|&p| p < s.index)
        })
        .collect();
    let mut checker = Checker {
        df,
        images,
        parents,
        named,
        final_chain: Vec::new(),
        in_final_chain: vec![false; stages.len()],
        pipefail: false,
        stages,
        hits: Vec::new(),
    };
    if let Some(last) = checker.stages.len().checked_sub(1) {
        checker.final_chain = checker.chain(last);
    }
    for &stage in &checker.final_chain {
        checker.in_final_chain[stage] = true;
    }
    checker.final_stage_user();
    checker.final_stage_healthcheck();
    let mut pip_env = Vec::with_capacity(checker.stages.len());
    for stage in 0..checker.stages.len() {
        let inherited = checker.parents[stage].is_some_and(|p: usize| pip_env[p]);
        pip_env.push(checker.stage(stage, inherited));
    }
    checker.hits
}

impl Checker<'_> {
    fn hit(&mut self, id: &'static str, instruction: usize, detail: Option<String>) {
        self.hits.push(Hit { id, instruction, detail, evidence: None });
    }

    fn chain(&self, stage: usize) -> Vec<usize> {
        let mut chain = vec![stage];
        while let Some(parent) = chain.last().and_then(|&s| self.parents[s]) {
            chain.push(parent);
        }
        chain
    }

    fn instructions(&self, stage: usize) -> impl DoubleEndedIterator<Item = (usize, &Instruction)> {
        self.stages[stage].instructions.clone().map(|n| (n, &self.df.instructions[n]))
    }

    fn final_stage_user(&mut self) {
        let Some(&last) = self.final_chain.first() else { return };
        let user =
            self.final_chain.iter().find_map(|&s| self.instructions(s).rev().find(|(_, i)| i.keyword == Keyword::User));
        match user {
            Some((n, instruction)) => {
                let name = unquote(instruction.args.trim());
                let name = name.split(':').next().unwrap_or("");
                if name == "root" || name == "0" {
                    self.hit("PKT-DF-001", n, None);
                }
            }
            None => {
                let root = self.final_chain.last().copied().unwrap_or(last);
                let base = self.images[root].clone().unwrap_or_default();
                if !base.contains("nonroot") && !base.contains("rootless") {
                    self.hit("PKT-DF-002", self.stages[last].from, None);
                }
            }
        }
    }

    fn final_stage_healthcheck(&mut self) {
        let Some(&last) = self.final_chain.first() else { return };
        let has =
            self.final_chain.iter().any(|&s| self.instructions(s).any(|(_, i)| i.keyword == Keyword::Healthcheck));
        if !has {
            self.hit("PKT-DF-014", self.stages[last].from, None);
        }
    }

    /// Checks a stage's instructions; returns whether PIP_NO_CACHE_DIR is set at its end.
    fn stage(&mut self, stage: usize, mut pip_no_cache: bool) -> bool {
        self.from(stage);
        let mut cmd: Option<u32> = None;
        let mut entrypoint: Option<u32> = None;
        let mut posix_shell = true;
        self.pipefail = false;
        let range = self.stages[stage].instructions.clone();
        for n in range {
            let instruction = &self.df.instructions[n];
            if instruction.bad_json {
                self.hit("PKT-DF-024", n, None);
            }
            match instruction.keyword {
                Keyword::Run if posix_shell => self.run(stage, n, pip_no_cache),
                Keyword::Shell => {
                    let shell =
                        instruction.exec.as_ref().and_then(|e| e.first()).map(|s| basename(s).to_ascii_lowercase());
                    posix_shell = shell.is_none_or(|s| !["powershell", "pwsh", "cmd"].iter().any(|w| s.starts_with(w)));
                    self.pipefail = instruction.exec.as_ref().is_some_and(|e| e.iter().any(|w| w == "pipefail"));
                }
                Keyword::Add => self.add(n),
                Keyword::Copy => self.copy_from(stage, n),
                Keyword::Env | Keyword::Arg => {
                    pip_no_cache |= instruction.keyword == Keyword::Env
                        && instruction.variables().iter().any(|(k, _)| k == "PIP_NO_CACHE_DIR");
                    self.secrets(n);
                }
                Keyword::Cmd | Keyword::Entrypoint => {
                    let (earlier, id) = match instruction.keyword {
                        Keyword::Cmd => (&mut cmd, "PKT-DF-021"),
                        _ => (&mut entrypoint, "PKT-DF-022"),
                    };
                    let previous = earlier.replace(instruction.start_line);
                    if let Some(line) = previous {
                        self.hit(id, n, Some(format!("It overrides the one at line {line}.")));
                    }
                    if instruction.exec.is_none() {
                        self.hit("PKT-DF-023", n, None);
                    }
                }
                Keyword::Maintainer => self.hit("PKT-DF-017", n, None),
                Keyword::Expose if instruction.words().iter().any(|w| exposes_ssh(w)) => {
                    self.hit("PKT-DF-018", n, None);
                }
                Keyword::Workdir if is_relative(&instruction.args) => self.hit("PKT-DF-019", n, None),
                _ => {}
            }
        }
        pip_no_cache
    }

    fn from(&mut self, stage: usize) {
        let from = self.stages[stage].from;
        if self.parents[stage].is_some() {
            return;
        }
        let Some(image) = self.images[stage].clone() else { return };
        if image.eq_ignore_ascii_case("scratch") || image.contains('@') {
            return;
        }
        let detail = (image != self.stages[stage].image)
            .then(|| format!("The image resolves to '{image}' through ARG defaults."));
        let name = image.rsplit('/').next().unwrap_or(&image);
        match name.split_once(':') {
            Some((_, "latest")) => self.hit("PKT-DF-004", from, detail),
            Some(_) => {}
            None => self.hit("PKT-DF-003", from, detail),
        }
    }

    fn add(&mut self, n: usize) {
        let instruction = &self.df.instructions[n];
        let mut sources = instruction.words();
        sources.pop();
        let (mut local, mut remote) = (Vec::new(), Vec::new());
        for source in sources.iter().filter(|s| !s.starts_with("<<")) {
            if source.contains("://") || source.starts_with("git@") {
                if instruction.flag("checksum").is_none() {
                    remote.push(source.clone());
                }
            } else if is_archive(source) {
                remote.push(source.clone());
            } else {
                local.push(source.clone());
            }
        }
        if !instruction.heredocs.is_empty() {
            local.push("a heredoc".into());
        }
        if !local.is_empty() {
            self.hit("PKT-DF-005", n, Some(format!("Local sources: {}.", local.join(", "))));
        }
        if !remote.is_empty() {
            self.hit("PKT-DF-006", n, Some(format!("Sources: {}.", remote.join(", "))));
        }
    }

    fn copy_from(&mut self, stage: usize, n: usize) {
        let instruction = &self.df.instructions[n];
        let Some(from) = instruction.flag("from").and_then(|f| f.value.clone()) else { return };
        if from.contains('$') || from.contains(':') || from.contains('@') {
            return;
        }
        if let Ok(index) = from.parse::<usize>() {
            if index >= stage {
                self.hit("PKT-DF-020", n, Some(format!("Stage {index} is not defined before this one.")));
            }
            return;
        }
        let name = from.to_ascii_lowercase();
        let defined = self.named.get(&name).copied();
        if defined.is_some_and(|s| s < stage) {
            return;
        }
        let detail = match defined {
            Some(s) => {
                let line = self.df.instructions[self.stages[s].from].start_line;
                format!("Stage '{from}' is defined at line {line}, not before.")
            }
            None => format!("No stage is named '{from}'; BuildKit will pull the image '{from}' instead."),
        };
        self.hit("PKT-DF-020", n, Some(detail));
    }

    fn secrets(&mut self, n: usize) {
        let instruction = &self.df.instructions[n];
        let keyword = if instruction.keyword == Keyword::Env { "ENV" } else { "ARG" };
        for (name, value) in instruction.variables() {
            let literal = value.as_deref().is_some_and(is_literal);
            if literal && is_secret_name(&name) {
                self.hits.push(Hit {
                    id: "PKT-DF-013",
                    instruction: n,
                    detail: Some(format!("'{name}' is set to a literal value.")),
                    evidence: Some(format!("{keyword} {name}=****")),
                });
            }
        }
    }

    fn run(&mut self, stage: usize, n: usize, pip_no_cache: bool) {
        let instruction = &self.df.instructions[n];
        let commands = run_commands(instruction);
        let mounts: Vec<String> = instruction
            .flags
            .iter()
            .filter(|f| f.name == "mount")
            .filter_map(|f| f.value.clone())
            .filter(|m| m.contains("type=cache") || m.contains("type=tmpfs"))
            .collect();
        let mounted = |dir: &str| mounts.iter().any(|m| m.contains(dir));
        let mut found: HashSet<&'static str> = HashSet::new();
        // `set -o pipefail` (or `-eo`, `-euo` ...) earlier in the same RUN.
        let mut pipefail = self.pipefail;
        for (k, command) in commands.iter().enumerate() {
            let words = program(&command.words);
            if words.first().is_some_and(|w| w == "set") && words.iter().any(|w| w == "pipefail") {
                pipefail = true;
            }
            let downloads = words.first().is_some_and(|w| matches!(basename(w), "curl" | "wget"));
            if downloads && !pipefail && commands.get(k + 1).is_some_and(|next| next.piped) {
                found.insert("PKT-DF-025");
            }
        }
        let mut apt_update = false;
        let mut lists_removed = false;
        for (k, command) in commands.iter().enumerate() {
            let raw = skip_assignments(&command.words);
            if raw.first().is_some_and(|w| basename(w) == "sudo") {
                found.insert("PKT-DF-015");
            }
            let words = program(&command.words);
            let Some(first) = words.first() else { continue };
            let (prog, args) = (basename(first), &words[1..]);
            let has = |w: &str| args.iter().any(|a| a == w);
            let subcommand = args.iter().find(|a| !a.starts_with('-')).map(String::as_str);
            match prog {
                "cd" => {
                    found.insert("PKT-DF-016");
                }
                "apt-get" | "apt" => {
                    let install = subcommand == Some("install");
                    let recommends_off = has("--no-install-recommends")
                        || args
                            .iter()
                            .any(|a| a.contains("Install-Recommends=false") || a.contains("Install-Recommends=0"));
                    if install && !recommends_off {
                        found.insert("PKT-DF-007");
                    }
                    // APT 2.7.8 and later remove the package lists with `dist-clean`.
                    lists_removed |= subcommand == Some("dist-clean");
                    if matches!(subcommand, Some("upgrade" | "dist-upgrade" | "full-upgrade")) {
                        found.insert("PKT-DF-009");
                    }
                    apt_update |= subcommand == Some("update");
                }
                "rm" => lists_removed |= args.iter().any(|a| a.starts_with("/var/lib/apt/lists")),
                // `--no-network` downloads nothing, so it leaves no index cache either.
                "apk"
                    if subcommand == Some("add")
                        && !has("--no-cache")
                        && !has("--no-network")
                        && !mounted("/var/cache/apk") =>
                {
                    found.insert("PKT-DF-010");
                }
                _ => {}
            }
            if is_pip_install(prog, args)
                && !has("--no-cache-dir")
                && !pip_no_cache
                && !command.words.iter().any(|w| w.starts_with("PIP_NO_CACHE_DIR="))
                && !mounted("/.cache/pip")
            {
                found.insert("PKT-DF-011");
            }
            let next_is_shell = commands
                .get(k + 1)
                .is_some_and(|c| c.piped && program(&c.words).first().is_some_and(|w| SHELLS.contains(&basename(w))));
            let fetches = |w: &String| {
                ["$(curl", "$(wget", "<(curl", "<(wget", "`curl", "`wget"].iter().any(|p| w.starts_with(p))
            };
            if (matches!(prog, "curl" | "wget") && next_is_shell)
                || (SHELLS.contains(&prog) && args.iter().any(fetches))
            {
                found.insert("PKT-DF-012");
            }
        }
        if self.in_final_chain[stage] && apt_update && !lists_removed && !mounted("/var/lib/apt") {
            found.insert("PKT-DF-008");
        }
        let mut found: Vec<_> = found.into_iter().collect();
        found.sort_unstable();
        for id in found {
            self.hit(id, n, None);
        }
    }
}

/// The simple commands a RUN executes: its shell-form line, heredoc bodies run by a shell, and
/// the scripts of `sh -c '…'` (one level deep, like the commands they replace).
pub fn run_commands(instruction: &Instruction) -> Vec<ShellCommand> {
    let mut commands = match &instruction.exec {
        Some(words) => vec![ShellCommand { words: words.clone(), piped: false }],
        None => {
            let line = shell_commands(&instruction.args);
            let runs_body = line.first().is_none_or(|c| SHELLS.contains(&basename(&c.words[0])));
            let mut commands = line;
            for heredoc in &instruction.heredocs {
                let shebang = heredoc.body.lines().next().and_then(|l| l.strip_prefix("#!"));
                let shell_script = shebang.is_none_or(|s| s.split_whitespace().any(|w| SHELLS.contains(&basename(w))));
                if runs_body && shell_script {
                    commands.extend(shell_commands(&heredoc.body));
                }
            }
            commands
        }
    };
    let mut nested = Vec::new();
    for command in &commands {
        let words = program(&command.words);
        if words.first().is_some_and(|w| SHELLS.contains(&basename(w))) {
            let flag = words.iter().position(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('c'));
            if let Some(script) = flag.and_then(|f| words.get(f + 1)) {
                nested.extend(shell_commands(script));
            }
        }
    }
    commands.extend(nested);
    commands
}

fn basename(word: &str) -> &str {
    word.rsplit(['/', '\\']).next().unwrap_or(word)
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

const RESERVED: [&str; 11] = ["{", "}", "!", "if", "then", "else", "elif", "do", "while", "until", "time"];

fn skip_assignments(words: &[String]) -> &[String] {
    let start = words.iter().position(|w| !is_assignment(w) && !RESERVED.contains(&w.as_str())).unwrap_or(words.len());
    &words[start..]
}

/// The words from the program that actually runs: without variable assignments, shell reserved
/// words and wrappers (`sudo -u x`, `env A=1`, `exec`, `command`, `nohup`).
fn program(words: &[String]) -> &[String] {
    let mut words = skip_assignments(words);
    loop {
        let Some(first) = words.first() else { return words };
        match basename(first) {
            "sudo" | "env" | "exec" | "command" | "nohup" => {
                let mut k = 1;
                while let Some(w) = words.get(k) {
                    if matches!(w.as_str(), "-u" | "-g" | "-C" | "-D" | "-p" | "-r" | "-t" | "-U" | "-h") {
                        k += 2;
                    } else if w.starts_with('-') || is_assignment(w) {
                        k += 1;
                    } else {
                        break;
                    }
                }
                words = words.get(k..).unwrap_or(&[]);
            }
            _ => return words,
        }
    }
}

fn is_pip_install(prog: &str, args: &[String]) -> bool {
    let is_pip = |p: &str| p.strip_prefix("pip").is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'));
    let args = if is_pip(prog) {
        args
    } else if prog.strip_prefix("python").is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.')) {
        match args.iter().position(|a| a == "-m") {
            Some(m) if args.get(m + 1).is_some_and(|p| is_pip(p)) => &args[m + 2..],
            _ => return false,
        }
    } else {
        return false;
    };
    args.iter().find(|a| !a.starts_with('-')).is_some_and(|a| a == "install")
}

const ARCHIVES: [&str; 16] = [
    ".tar", ".gz", ".tgz", ".bz2", ".tbz", ".tbz2", ".tb2", ".xz", ".txz", ".zst", ".tzst", ".lz", ".lzma", ".tlz",
    ".z", ".tpz",
];

fn is_archive(source: &str) -> bool {
    let lower = source.to_ascii_lowercase();
    ARCHIVES.iter().any(|ext| lower.ends_with(ext))
}

/// Not absolute (Unix or Windows) and not starting with a variable, which may be absolute.
fn is_relative(dir: &str) -> bool {
    let dir = unquote(dir.trim());
    !(dir.starts_with('/') || dir.starts_with('$') || dir.get(1..2) == Some(":"))
}

fn exposes_ssh(port: &str) -> bool {
    let (port, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
    if !protocol.eq_ignore_ascii_case("tcp") {
        return false;
    }
    match port.split_once('-') {
        Some((low, high)) => matches!((low.parse::<u32>(), high.parse::<u32>()), (Ok(l), Ok(h)) if l <= 22 && 22 <= h),
        None => port == "22",
    }
}

const SECRET_WORDS: [&str; 10] = [
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
    "ACCESS_KEY",
    "CREDENTIAL",
];
const NOT_SECRET_SUFFIXES: [&str; 14] = [
    "_FILE",
    "_PATH",
    "_DIR",
    "_URL",
    "_URI",
    "_ENDPOINT",
    "_NAME",
    "_ID",
    "_HOST",
    "_PORT",
    "_USER",
    "_USERNAME",
    "_ENABLED",
    "_TYPE",
];

fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if NOT_SECRET_SUFFIXES.iter().any(|s| upper.ends_with(s)) {
        return false;
    }
    SECRET_WORDS.iter().any(|w| upper.contains(w))
        || upper.split(['_', '-']).any(|part| part == "PASS" || part == "PWD") && upper != "PWD" && upper != "OLDPWD"
}

/// A value written out, not a reference to another variable or a switch.
fn is_literal(value: &str) -> bool {
    let value = value.trim();
    let switch = ["true", "false", "yes", "no", "on", "off", "0", "1", "none", "null"];
    !value.is_empty() && !value.starts_with('$') && !switch.iter().any(|s| value.eq_ignore_ascii_case(s))
}

/// `$NAME`, `${NAME}` and `${NAME:-default}` replaced from ARG defaults; None when one has none.
fn substitute(text: &str, args: &HashMap<String, Option<String>>) -> Option<String> {
    let lookup = |name: &str| args.get(name).cloned().flatten();
    let mut out = String::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (expr, tail) = if let Some(braced) = after.strip_prefix('{') {
            let close = braced.find('}')?;
            (&braced[..close], &braced[close + 1..])
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let (name, default) = match expr.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expr, None),
        };
        let value = lookup(name).filter(|v| !v.is_empty()).or_else(|| default.map(str::to_string))?;
        out.push_str(&value);
        rest = tail;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines where `id` fires in `text`.
    fn lines(text: &str, id: &str) -> Vec<u32> {
        let df = Dockerfile::parse(text).unwrap();
        check(&df).into_iter().filter(|h| h.id == id).map(|h| df.instructions[h.instruction].start_line).collect()
    }

    /// Whether `id` fires on the instruction after a `FROM debian:12`.
    fn fires(body: &str, id: &str) -> bool {
        !lines(&format!("FROM debian:12\n{body}\n"), id).is_empty()
    }

    #[test]
    fn downloads_piped_without_pipefail() {
        assert!(fires("RUN curl -fsSL https://get.example.com | sh", "PKT-DF-025"));
        assert!(fires("RUN wget -qO- https://x/y.tgz | tar xz -C /opt", "PKT-DF-025"));
        assert!(fires("RUN apt-get update && curl -sL https://x | bash -", "PKT-DF-025"));
        assert!(!fires("RUN echo \"$SUM  f\" | sha256sum -c", "PKT-DF-025"), "no download in the pipe");
        assert!(!fires("RUN curl -fsSLo f https://x && sh f", "PKT-DF-025"), "no pipe");
        assert!(!fires("RUN set -o pipefail && curl -fsSL https://x | sh", "PKT-DF-025"));
        assert!(!fires("RUN set -euo pipefail; wget -O- https://x | tar x", "PKT-DF-025"));
        assert!(!fires(
            "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN curl -fsSL https://x | sh",
            "PKT-DF-025"
        ));
        assert!(fires("RUN curl https://x | sh; set -o pipefail", "PKT-DF-025"), "set after the pipe is too late");
    }

    #[test]
    fn rule_table_is_consistent() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        for (n, rule) in RULES.iter().enumerate() {
            assert_eq!(rule.id, format!("PKT-DF-{:03}", n + 1));
            assert!(!rule.title.is_empty() && !rule.description.is_empty() && !rule.fix.is_empty());
        }
    }

    #[test]
    fn user() {
        assert_eq!(lines("FROM a:1\nUSER app\nUSER root:root\n", "PKT-DF-001"), vec![3]);
        assert_eq!(lines("FROM a:1\nUSER 0\n", "PKT-DF-001"), vec![2]);
        assert!(lines("FROM a:1\nUSER root\nRUN x\nUSER 1000\n", "PKT-DF-001").is_empty());
        // The final stage inherits USER from the stage it is built on, not from others.
        assert!(lines("FROM a:1 AS base\nUSER app\nFROM base\nRUN x\n", "PKT-DF-002").is_empty());
        assert_eq!(lines("FROM a:1 AS b\nUSER app\nFROM c:1\n", "PKT-DF-002"), vec![3]);
        assert!(lines("FROM a:1 AS b\nUSER root\nFROM c:1\nUSER app\n", "PKT-DF-001").is_empty());
        assert!(lines("FROM gcr.io/distroless/static:nonroot\n", "PKT-DF-002").is_empty());
    }

    #[test]
    fn base_image_tags() {
        assert_eq!(lines("FROM debian\n", "PKT-DF-003"), vec![1]);
        assert_eq!(lines("FROM registry:5000/team/app\n", "PKT-DF-003"), vec![1]);
        assert!(lines("FROM registry:5000/team/app:1.2\n", "PKT-DF-003").is_empty());
        assert!(lines("FROM debian@sha256:abcd\nFROM scratch\n", "PKT-DF-003").is_empty());
        assert_eq!(lines("FROM node:latest\n", "PKT-DF-004"), vec![1]);
        assert!(lines("FROM node:latest-slim\n", "PKT-DF-004").is_empty());
        // ARG defaults are substituted; a variable without default is not judged.
        assert_eq!(lines("ARG BASE=debian\nFROM ${BASE}\n", "PKT-DF-003"), vec![2]);
        assert_eq!(lines("ARG V=latest\nFROM node:$V\n", "PKT-DF-004"), vec![2]);
        assert!(lines("ARG V=22\nFROM node:${V}\n", "PKT-DF-003").is_empty());
        assert!(lines("ARG BASE\nFROM $BASE\n", "PKT-DF-003").is_empty());
        // An earlier stage is not an image.
        assert!(lines("FROM golang:1.23 AS builder\nFROM builder\nFROM BUILDER AS x\n", "PKT-DF-003").is_empty());
        assert_eq!(lines("FROM builder\nFROM golang:1.23 AS builder\n", "PKT-DF-003"), vec![1]);
    }

    #[test]
    fn add() {
        assert!(fires("ADD app.py /app/", "PKT-DF-005"));
        assert!(fires("ADD [\"a b.txt\", \"/x/\"]", "PKT-DF-005"));
        assert!(!fires("ADD app.tar.gz /app/", "PKT-DF-005"));
        assert!(fires("ADD app.tar.gz /app/", "PKT-DF-006"));
        assert!(fires("ADD https://example.com/x.sh /x.sh", "PKT-DF-006"));
        assert!(!fires("ADD https://example.com/x.sh /x.sh", "PKT-DF-005"));
        assert!(!fires("ADD --checksum=sha256:00 https://example.com/x.sh /x.sh", "PKT-DF-006"));
        assert!(!fires("COPY app.py /app/", "PKT-DF-005"));
    }

    #[test]
    fn apt() {
        assert!(fires("RUN apt-get update && apt-get install -y curl", "PKT-DF-007"));
        assert!(fires("RUN sudo -E apt-get -y install curl", "PKT-DF-007"));
        assert!(fires("RUN apt install -y gcc", "PKT-DF-007"), "apt as well as apt-get");
        assert!(!fires(
            "RUN apt-get update && apt-get install -y --no-install-recommends a && apt-get dist-clean",
            "PKT-DF-008"
        ));
        assert!(!fires("RUN apk add --no-network ./local.apk", "PKT-DF-010"));
        assert!(!fires("RUN [ -e /etc/nsswitch.conf ] && grep hosts /etc/nsswitch.conf", "PKT-DF-024"));
        assert!(fires("RUN ['echo', 'x']", "PKT-DF-024"), "single quotes are still a broken exec form");
        assert!(!fires("RUN apt-get install -y --no-install-recommends curl", "PKT-DF-007"));
        assert!(!fires("RUN apt-get -o APT::Install-Recommends=false install curl", "PKT-DF-007"));
        assert!(!fires("RUN echo 'apt-get install curl'", "PKT-DF-007"));
        assert!(!fires("RUN apt-get update # && apt-get install curl", "PKT-DF-007"));
        assert!(fires("RUN apt-get update && apt-get install -y --no-install-recommends a", "PKT-DF-008"));
        assert!(!fires("RUN apt-get update && apt-get install -y a && rm -rf /var/lib/apt/lists/*", "PKT-DF-008"));
        assert!(!fires("RUN --mount=type=cache,target=/var/lib/apt/lists apt-get update", "PKT-DF-008"));
        assert!(!fires("RUN apt-get install -y ./local.deb", "PKT-DF-008"));
        // Only the stages the final image is built from keep their layers.
        assert!(lines("FROM a:1 AS build\nRUN apt-get update\nFROM b:1\n", "PKT-DF-008").is_empty());
        assert!(fires("RUN apt-get -y dist-upgrade", "PKT-DF-009"));
        assert!(fires("RUN apt upgrade", "PKT-DF-009"));
        assert!(!fires("RUN apt-get install -y --only-upgrade openssl", "PKT-DF-009"));
    }

    #[test]
    fn apk_and_pip() {
        assert!(fires("RUN apk add curl", "PKT-DF-010"));
        assert!(fires("RUN apk update && apk add --virtual .deps gcc", "PKT-DF-010"));
        assert!(!fires("RUN apk add --no-cache curl", "PKT-DF-010"));
        assert!(!fires("RUN --mount=type=cache,target=/var/cache/apk apk add curl", "PKT-DF-010"));
        assert!(!fires("RUN apk del curl", "PKT-DF-010"));
        assert!(fires("RUN pip install flask", "PKT-DF-011"));
        assert!(fires("RUN python3 -m pip install -r requirements.txt", "PKT-DF-011"));
        assert!(fires("RUN /usr/local/bin/pip3.12 install x", "PKT-DF-011"));
        assert!(!fires("RUN pip install --no-cache-dir flask", "PKT-DF-011"));
        assert!(!fires("RUN pip freeze", "PKT-DF-011"));
        assert!(!fires("ENV PIP_NO_CACHE_DIR=1\nRUN pip install flask", "PKT-DF-011"));
        assert!(!fires("RUN PIP_NO_CACHE_DIR=1 pip install flask", "PKT-DF-011"));
        assert!(!fires("RUN --mount=type=cache,target=/root/.cache/pip pip install flask", "PKT-DF-011"));
        assert!(!fires("RUN pipenv install", "PKT-DF-011"));
    }

    #[test]
    fn pipe_to_shell() {
        assert!(fires("RUN curl -fsSL https://get.example.com | sh", "PKT-DF-012"));
        assert!(fires("RUN wget -qO- https://x | sudo bash -s -- --yes", "PKT-DF-012"));
        assert!(fires("RUN sh -c \"$(curl -fsSL https://x)\"", "PKT-DF-012"));
        assert!(fires("RUN bash <(curl -s https://x)", "PKT-DF-012"));
        assert!(!fires("RUN curl -fsSLo /tmp/i.sh https://x && sha256sum -c sums && sh /tmp/i.sh", "PKT-DF-012"));
        assert!(!fires("RUN curl https://x | tar -xz", "PKT-DF-012"));
        assert!(!fires("RUN echo 'curl https://x | sh'", "PKT-DF-012"));
    }

    #[test]
    fn secrets() {
        assert!(fires("ENV DB_PASSWORD=hunter2", "PKT-DF-013"));
        assert!(fires("ENV MYSQL_ROOT_PASSWORD changeme", "PKT-DF-013"));
        assert!(fires("ARG NPM_TOKEN=abc123", "PKT-DF-013"));
        assert!(fires("ENV A=1 api_key=\"x y\"", "PKT-DF-013"));
        assert!(fires("ENV DB_PASS=x", "PKT-DF-013"));
        assert!(!fires("ARG NPM_TOKEN", "PKT-DF-013"));
        assert!(!fires("ENV DB_PASSWORD=$DB_PASSWORD", "PKT-DF-013"));
        assert!(!fires("ENV DB_PASSWORD_FILE=/run/secrets/db", "PKT-DF-013"));
        assert!(!fires("ENV TOKEN_ENABLED=true", "PKT-DF-013"));
        assert!(!fires("ENV GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D", "PKT-DF-013"));
        assert!(!fires("ENV PASSWORD=\"\"", "PKT-DF-013"));
        let df = Dockerfile::parse("FROM a:1\nENV DB_PASSWORD=hunter2\n").unwrap();
        let hit = check(&df).into_iter().find(|h| h.id == "PKT-DF-013").unwrap();
        assert_eq!(hit.evidence.as_deref(), Some("ENV DB_PASSWORD=****"));
    }

    #[test]
    fn healthcheck() {
        assert_eq!(lines("FROM a:1 AS x\nHEALTHCHECK CMD true\nFROM b:1\n", "PKT-DF-014"), vec![3]);
        assert!(lines("FROM a:1 AS x\nHEALTHCHECK CMD true\nFROM x\n", "PKT-DF-014").is_empty());
        assert!(lines("FROM a:1\nHEALTHCHECK NONE\n", "PKT-DF-014").is_empty());
    }

    #[test]
    fn powershell_runs_are_not_read_as_posix_shell() {
        assert!(!fires("SHELL [\"powershell\", \"-Command\"]\nRUN cd C:\\app; sudo x", "PKT-DF-016"));
        assert!(fires("SHELL [\"C:\\\\bin\\\\pwsh.exe\"]\nSHELL [\"/bin/bash\", \"-c\"]\nRUN cd /x", "PKT-DF-016"));
        assert!(!fires("ARG API_TOKEN OTHER", "PKT-DF-013"));
    }

    #[test]
    fn sudo_and_cd() {
        assert!(fires("RUN sudo make install", "PKT-DF-015"));
        assert!(fires("RUN DEBIAN_FRONTEND=noninteractive sudo apt-get update", "PKT-DF-015"));
        assert!(!fires("RUN apt-get install -y sudo", "PKT-DF-015"));
        assert!(!fires("RUN echo \"sudo make\"", "PKT-DF-015"));
        assert!(fires("RUN cd /src && make", "PKT-DF-016"));
        assert!(fires("RUN if true; then cd /src; fi", "PKT-DF-016"));
        assert!(fires("RUN [\"sh\", \"-c\", \"cd /src && make\"]", "PKT-DF-016"));
        assert!(!fires("RUN make -C /src", "PKT-DF-016"));
        assert!(!fires("RUN echo $(cd /src && pwd)", "PKT-DF-016"));
        assert!(!fires("RUN git clone x # then cd x", "PKT-DF-016"));
    }

    #[test]
    fn heredoc_scripts() {
        assert!(fires("RUN <<EOF\napt-get update\ncd /x\nEOF", "PKT-DF-016"));
        assert!(fires("RUN bash <<EOF\ncd /x\nEOF", "PKT-DF-016"));
        assert!(!fires("RUN cat <<EOF > /etc/motd\ncd /x\nEOF", "PKT-DF-016"));
        assert!(!fires("RUN <<EOF\n#!/usr/bin/env python3\nimport os; os.chdir('/x')\ncd = 1\nEOF", "PKT-DF-016"));
        assert!(!fires("COPY <<EOF /x\nsudo cd\nEOF", "PKT-DF-015"));
    }

    #[test]
    fn instruction_rules() {
        assert!(fires("MAINTAINER me", "PKT-DF-017"));
        assert!(!fires("LABEL maintainer=me", "PKT-DF-017"));
        assert!(fires("EXPOSE 80 22/tcp", "PKT-DF-018"));
        assert!(fires("EXPOSE 20-30", "PKT-DF-018"));
        assert!(!fires("EXPOSE 2222 22/udp 220", "PKT-DF-018"));
        assert!(fires("WORKDIR app", "PKT-DF-019"));
        assert!(!fires("WORKDIR /app", "PKT-DF-019"));
        assert!(!fires("WORKDIR $HOME/app", "PKT-DF-019"));
        assert!(!fires("WORKDIR \"/my app\"", "PKT-DF-019"));
    }

    #[test]
    fn copy_from() {
        let text = "FROM a:1 AS build\nFROM b:1\nCOPY --from=build /a /a\nCOPY --from=0 /a /a\nCOPY --from=nginx:1.27 /a /a\nCOPY --from=buidl /a /a\nCOPY --from=1 /a /a\nCOPY --from=later /a /a\nFROM c:1 AS later\n";
        assert_eq!(lines(text, "PKT-DF-020"), vec![6, 7, 8]);
    }

    #[test]
    fn cmd_and_entrypoint() {
        let text =
            "FROM a:1 AS x\nCMD [\"a\"]\nFROM b:1\nCMD [\"b\"]\nCMD [\"c\"]\nENTRYPOINT [\"d\"]\nENTRYPOINT e\nCMD f\n";
        assert_eq!(lines(text, "PKT-DF-021"), vec![5, 8]);
        assert_eq!(lines(text, "PKT-DF-022"), vec![7]);
        assert_eq!(lines(text, "PKT-DF-023"), vec![7, 8]);
        assert_eq!(lines("FROM a:1\nCMD [\"a\", b]\n", "PKT-DF-024"), vec![2]);
        assert_eq!(lines("FROM a:1\nCMD [\"a\", b]\n", "PKT-DF-023"), vec![2]);
        assert!(lines("FROM a:1\nCMD [\"a\", \"b\"]\n", "PKT-DF-024").is_empty());
    }
}

//! How a node check is judged: which files a file rule looks at, how a flag's value is tested,
//! and the remediation text that follows from both.

use std::path::{Path, PathBuf};

use super::{Component, ComponentKind, NodeFacts};
use crate::bench::docker::parse_go_bool;
use crate::bench::files::HostFiles;
use crate::bench::{CheckResult, Status};

#[derive(Debug, Clone, Copy)]
pub enum Files {
    /// These paths, those that exist.
    Paths(&'static [&'static str]),
    /// A control-plane component's static pod manifest.
    Manifest(ComponentKind),
    /// etcd's `--data-dir` (default /var/lib/etcd).
    EtcdDataDir,
    /// Files in /etc/cni/net.d and /var/lib/cni/networks.
    Cni,
    /// /etc/kubernetes/pki and everything in it, or only the files with this suffix.
    Pki(Option<&'static str>),
    KubeletService,
    /// kubelet's `--kubeconfig` (default /etc/kubernetes/kubelet.conf).
    KubeletKubeconfig,
    /// kube-proxy's `--kubeconfig` (default /etc/kubernetes/proxy.conf), when it exists.
    ProxyKubeconfig,
    /// kubelet's client CA (`--client-ca-file`, `authentication.x509.clientCAFile`, default
    /// /etc/kubernetes/pki/ca.crt).
    KubeletClientCa,
    /// kubelet's `--config` (default /var/lib/kubelet/config.yaml).
    KubeletConfig,
}

#[derive(Debug, Clone, Copy)]
pub enum Test {
    Eq(&'static str),
    Set,
    Unset,
    /// A comma-separated list holds the item.
    Has(&'static str),
    /// A comma-separated list lacks the item (an unset flag lacks it too).
    HasNot(&'static str),
    Gte(i64),
    /// Every item of the list is one of these.
    ValidElements(&'static [&'static str]),
    /// `--feature-gates` does not turn this gate off.
    GateNotFalse(&'static str),
    /// An authorization mode list without AlwaysAllow. Unset, kube-apiserver's default is
    /// AlwaysAllow (unless `--authorization-config` is used), kubelet's flag default too, but a
    /// kubelet config file defaults it to Webhook.
    NotAlwaysAllow,
    /// The host part of an address (`127.0.0.1:10249`) is this one.
    HostIs(&'static str),
    /// A duration that is not zero. Zero in kubelet's config file means its default (4h for
    /// the streaming idle timeout); zero on the command line means no timeout.
    NonZeroDuration,
}

#[derive(Debug, Clone)]
pub enum Rule {
    Mode {
        files: Files,
        max: u32,
    },
    Owner {
        files: Files,
        user: &'static str,
        group: &'static str,
    },
    Flag {
        component: ComponentKind,
        flag: &'static str,
        config: Option<&'static str>,
        test: Test,
        unset_passes: bool,
    },
    AllSet {
        component: ComponentKind,
        flags: Vec<(&'static str, Option<&'static str>)>,
    },
    /// The first provider of the API server's encryption config encrypts (aescbc, aesgcm,
    /// secretbox, kms).
    EncryptionProvider,
    Manual {
        review: &'static str,
    },
}

impl Rule {
    /// An unset flag passes (the component's default is the recommended value).
    pub fn or_unset(self) -> Self {
        match self {
            Rule::Flag { component, flag, config, test, .. } => {
                Rule::Flag { component, flag, config, test, unset_passes: true }
            }
            other => other,
        }
    }

    /// The remediation for this node: a flag is set where the component was started from (its
    /// static pod manifest, its systemd unit, or the command line of a plain process).
    pub fn remediation_on(&self, facts: &NodeFacts) -> String {
        let component = match self {
            Rule::Flag { component, .. } | Rule::AllSet { component, .. } => *component,
            _ => return self.remediation(),
        };
        match facts.get(component) {
            Some(found) => self.remediation_with(&where_started(found)),
            None => self.remediation(),
        }
    }

    pub fn remediation(&self) -> String {
        let component = match self {
            Rule::Flag { component, .. } | Rule::AllSet { component, .. } => Some(*component),
            _ => None,
        };
        self.remediation_with(&component.map(where_configured).unwrap_or_default())
    }

    fn remediation_with(&self, place: &str) -> String {
        match self {
            Rule::Mode { files, max } => format!("chmod {max:o} {} (or more restrictive)", files.describe()),
            Rule::Owner { files, user, group } => format!("chown {user}:{group} {}", files.describe()),
            Rule::Flag { flag, config, test, .. } => {
                let wanted = match test {
                    Test::Eq(v) => format!("--{flag}={v}"),
                    Test::Set => format!("--{flag} to the right value"),
                    Test::Unset => format!("no --{flag}"),
                    Test::Has(item) => format!("--{flag} including {item}"),
                    Test::HasNot(item) => format!("--{flag} without {item}"),
                    Test::Gte(n) => format!("--{flag}={n} or more"),
                    Test::ValidElements(_) => format!("--{flag} to strong cipher suites only"),
                    Test::GateNotFalse(gate) => format!("--{flag} without {gate}=false"),
                    Test::NotAlwaysAllow => format!("--{flag} without AlwaysAllow (e.g. Node,RBAC)"),
                    Test::HostIs(host) => format!("--{flag} to {host}:PORT"),
                    Test::NonZeroDuration => format!("--{flag} to a duration above zero (e.g. 4h0m0s)"),
                };
                let config = config.map(|c| format!(" (or `{c}` in its config file)")).unwrap_or_default();
                format!("{place}: set {wanted}{config}, then restart it")
            }
            Rule::AllSet { flags, .. } => {
                let flags: Vec<String> = flags.iter().map(|(f, _)| format!("--{f}")).collect();
                format!("{place}: set {}, then restart it", flags.join(" and "))
            }
            Rule::EncryptionProvider => {
                "Put aescbc, secretbox or kms first in the providers of the file named by --encryption-provider-config"
                    .into()
            }
            Rule::Manual { review } => format!("Review that {review}"),
        }
    }
}

/// Where this node's component takes its flags, from how it was started.
fn where_started(found: &Component) -> String {
    use super::StartedBy;
    let binary = found.kind.binary();
    match &found.started_by {
        StartedBy::StaticPod => match found.kind.manifest() {
            Some(manifest) => format!("In {manifest} (the {binary} static pod; the kubelet restarts it)"),
            None => format!("In {binary}'s static pod manifest (in the kubelet's --pod-manifest-path)"),
        },
        StartedBy::Systemd(unit) => {
            format!("In {binary}'s systemd unit {unit} (its ExecStart, or a drop-in: systemctl edit {binary})")
        }
        StartedBy::Process => format!(
            "{binary} runs as a plain process ({}: not from a static pod or a systemd unit): in the command or \
             script that starts it",
            found.source
        ),
        StartedBy::Unknown => where_configured(found.kind),
    }
}

fn where_configured(component: ComponentKind) -> String {
    match component.manifest() {
        Some(manifest) => format!("In {manifest} (the {} static pod)", component.binary()),
        None if component == ComponentKind::Kubelet => {
            "In the kubelet's config file or its systemd unit (/etc/systemd/system/kubelet.service.d/10-kubeadm.conf)"
                .into()
        }
        None => format!("In {}'s configuration", component.binary()),
    }
}

impl Files {
    fn describe(&self) -> String {
        match self {
            Files::Paths(paths) => paths.join(" "),
            Files::Manifest(kind) => kind.manifest().unwrap_or_default().to_string(),
            Files::EtcdDataDir => "<etcd --data-dir>".into(),
            Files::Cni => "/etc/cni/net.d/* /var/lib/cni/networks/*".into(),
            Files::Pki(None) => "-R /etc/kubernetes/pki".into(),
            Files::Pki(Some(suffix)) => format!("/etc/kubernetes/pki/**/*{suffix}"),
            Files::KubeletService => "<kubelet unit>".into(),
            Files::KubeletKubeconfig => "<kubelet --kubeconfig>".into(),
            Files::ProxyKubeconfig => "<kube-proxy --kubeconfig>".into(),
            Files::KubeletClientCa => "<kubelet client CA>".into(),
            Files::KubeletConfig => "<kubelet --config>".into(),
        }
    }

    /// The host paths this rule looks at on this node (existing or not).
    fn resolve(&self, facts: &NodeFacts, files: &HostFiles) -> Vec<PathBuf> {
        let kubelet = facts.get(ComponentKind::Kubelet);
        let kubelet_flag = |flag: &str| kubelet.and_then(|k| k.flag(flag));
        match self {
            Files::Paths(paths) => paths.iter().map(PathBuf::from).collect(),
            Files::Manifest(kind) => kind.manifest().map(PathBuf::from).into_iter().collect(),
            Files::EtcdDataDir => {
                let dir = facts.get(ComponentKind::Etcd).and_then(|e| e.flag_or_env("data-dir"));
                vec![PathBuf::from(dir.unwrap_or_else(|| "/var/lib/etcd".into()))]
            }
            Files::Cni => {
                let conf_dir = kubelet_flag("cni-conf-dir").unwrap_or_else(|| "/etc/cni/net.d".into());
                [PathBuf::from(conf_dir), PathBuf::from("/var/lib/cni/networks")]
                    .iter()
                    .flat_map(|dir| regular_files_under(files, dir))
                    .collect()
            }
            Files::Pki(suffix) => {
                let pki = PathBuf::from("/etc/kubernetes/pki");
                let mut all = vec![pki.clone()];
                all.extend(entries_under(files, &pki).into_iter().map(|(path, _)| path));
                match suffix {
                    Some(suffix) => all.into_iter().filter(|p| p.to_string_lossy().ends_with(suffix)).collect(),
                    None => all,
                }
            }
            Files::KubeletService => match kubelet.filter(|k| !k.source.starts_with("process")) {
                Some(k) => vec![PathBuf::from(&k.source)],
                None => super::KUBELET_UNITS.iter().map(PathBuf::from).collect(),
            },
            Files::KubeletKubeconfig => {
                vec![PathBuf::from(kubelet_flag("kubeconfig").unwrap_or_else(|| "/etc/kubernetes/kubelet.conf".into()))]
            }
            Files::ProxyKubeconfig => {
                let flag = facts.get(ComponentKind::Proxy).and_then(|p| p.flag("kubeconfig"));
                vec![PathBuf::from(flag.unwrap_or_else(|| "/etc/kubernetes/proxy.conf".into()))]
            }
            Files::KubeletClientCa => {
                let ca = kubelet_flag("client-ca-file")
                    .or_else(|| kubelet.and_then(|k| k.config_field("authentication.x509.clientCAFile")))
                    .unwrap_or_else(|| "/etc/kubernetes/pki/ca.crt".into());
                vec![PathBuf::from(ca)]
            }
            Files::KubeletConfig => match kubelet.and_then(|k| k.config_path.clone()) {
                Some(path) => vec![path],
                None => vec![PathBuf::from("/var/lib/kubelet/config.yaml")],
            },
        }
    }
}

/// Everything under `dir` with whether it is a directory, sorted, at most 8 levels down (a
/// symlink loop ends there).
fn entries_under(files: &HostFiles, dir: &Path) -> Vec<(PathBuf, bool)> {
    let mut found = Vec::new();
    let mut queue = vec![(dir.to_path_buf(), 0)];
    while let Some((dir, depth)) = queue.pop() {
        for entry in files.list_dir(&dir) {
            let Ok(Some(stat)) = files.stat(&entry) else { continue };
            if stat.is_dir && depth < 8 {
                queue.push((entry.clone(), depth + 1));
            }
            found.push((entry, stat.is_dir));
        }
    }
    found.sort();
    found
}

/// Regular files anywhere under `dir` (host-local IPAM keeps one directory per network).
fn regular_files_under(files: &HostFiles, dir: &Path) -> Vec<PathBuf> {
    entries_under(files, dir).into_iter().filter(|(_, is_dir)| !is_dir).map(|(path, _)| path).collect()
}

pub fn judge(rule: &Rule, facts: &NodeFacts, files: &HostFiles) -> Vec<CheckResult> {
    match rule {
        Rule::Mode { files: set, max } => file_results(set, facts, files, |path| files.mode_at_most(path, *max)),
        Rule::Owner { files: set, user, group } => {
            file_results(set, facts, files, |path| files.owned_by(path, user, Some(group)))
        }
        Rule::Flag { component, flag, config, test, unset_passes } => match facts.get(*component) {
            None => vec![not_on_node(*component)],
            Some(c) => vec![judge_flag(c, flag, *config, *test, *unset_passes)],
        },
        Rule::AllSet { component, flags } => match facts.get(*component) {
            None => vec![not_on_node(*component)],
            Some(c) => {
                let missing: Vec<String> = flags
                    .iter()
                    .filter(|(flag, config)| value_of(c, flag, *config).is_none())
                    .map(|(flag, _)| format!("--{flag}"))
                    .collect();
                let status = if missing.is_empty() { Status::Pass } else { Status::Fail };
                let evidence =
                    if missing.is_empty() { "all set".to_string() } else { format!("not set: {}", missing.join(", ")) };
                vec![CheckResult::new(status, subject(c), evidence)]
            }
        },
        Rule::EncryptionProvider => match facts.get(ComponentKind::ApiServer) {
            None => vec![not_on_node(ComponentKind::ApiServer)],
            Some(api) => vec![encryption_provider(api, files)],
        },
        Rule::Manual { review } => {
            vec![CheckResult::new(Status::Warn, "node", format!("manual: review that {review}"))]
        }
    }
}

fn subject(component: &Component) -> String {
    format!("{} ({})", component.kind.binary(), component.source)
}

fn not_on_node(kind: ComponentKind) -> CheckResult {
    CheckResult::new(Status::Skip, kind.binary(), format!("{} does not run on this node", kind.binary()))
}

fn file_results(
    set: &Files,
    facts: &NodeFacts,
    files: &HostFiles,
    judge: impl Fn(&Path) -> CheckResult,
) -> Vec<CheckResult> {
    let paths = set.resolve(facts, files);
    let present: Vec<&PathBuf> = paths.iter().filter(|p| files.stat(p).ok().flatten().is_some()).collect();
    if present.is_empty() {
        let shown = if paths.is_empty() {
            set.describe()
        } else {
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        };
        return vec![CheckResult::new(Status::Skip, shown, "not present")];
    }
    present.into_iter().map(|p| judge(p)).collect()
}

/// The flag (or, for etcd, its environment variable), else the config file field.
fn value_of(component: &Component, flag: &str, config: Option<&str>) -> Option<(String, String)> {
    let from_flag =
        if component.kind == ComponentKind::Etcd { component.flag_or_env(flag) } else { component.flag(flag) };
    if let Some(value) = from_flag {
        return Some((value, format!("--{flag}")));
    }
    let field = config?;
    let value = component.config_field(field)?;
    let file = component.config_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    Some((value, format!("{field} in {file}")))
}

fn judge_flag(component: &Component, flag: &str, config: Option<&str>, test: Test, unset_passes: bool) -> CheckResult {
    let subject = subject(component);
    if let (Some(_), Some(error)) = (config, &component.config_error) {
        return CheckResult::new(Status::Warn, subject, format!("config file could not be read: {error}"));
    }
    let Some((value, from)) = value_of(component, flag, config) else {
        if let Test::NotAlwaysAllow = test {
            return not_always_allow_by_default(component, flag, subject);
        }
        let status = match test {
            Test::Unset | Test::HasNot(_) => Status::Pass,
            _ if unset_passes => Status::Pass,
            _ => Status::Fail,
        };
        let place = config.map(|c| format!(" (nor {c} in the config file)")).unwrap_or_default();
        return CheckResult::new(status, subject, format!("--{flag} is not set{place}"));
    };
    let items = || value.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>();
    let ok = match test {
        // Flags are Go bools: `--profiling=0` is `false`.
        Test::Eq(want) => match (parse_go_bool(want), parse_go_bool(&value)) {
            (Some(want), Some(got)) => want == got,
            _ => value.eq_ignore_ascii_case(want),
        },
        Test::NotAlwaysAllow => !items().contains(&"AlwaysAllow"),
        Test::HostIs(host) => address_host(&value) == host,
        Test::Set => !value.is_empty(),
        Test::Unset => false,
        Test::Has(item) => items().contains(&item),
        Test::HasNot(item) => !items().contains(&item),
        Test::Gte(n) => value.parse::<i64>().is_ok_and(|v| v >= n),
        Test::ValidElements(allowed) => !items().is_empty() && items().iter().all(|i| allowed.contains(i)),
        Test::NonZeroDuration => !from.starts_with("--") || !is_zero_duration(&value),
        Test::GateNotFalse(gate) => {
            // A config file's featureGates field holds just this gate's value.
            if from.starts_with("--") {
                !items().iter().any(|kv| kv.replace(' ', "").eq_ignore_ascii_case(&format!("{gate}=false")))
            } else {
                !value.eq_ignore_ascii_case("false")
            }
        }
    };
    CheckResult::new(if ok { Status::Pass } else { Status::Fail }, subject, format!("{from}={value}"))
}

fn not_always_allow_by_default(component: &Component, flag: &str, subject: String) -> CheckResult {
    match component.kind {
        ComponentKind::ApiServer if component.flag("authorization-config").is_some() => {
            CheckResult::new(Status::Pass, subject, "--authorization-config sets the authorizers")
        }
        ComponentKind::Kubelet if component.config.is_some() => {
            CheckResult::new(Status::Pass, subject, "not set: the config file's default, Webhook")
        }
        _ => CheckResult::new(Status::Fail, subject, format!("--{flag} is not set: the default is AlwaysAllow")),
    }
}

/// `127.0.0.1:10249` → `127.0.0.1`; `[::1]:10249` → `::1`; `0.0.0.0` → `0.0.0.0`.
fn address_host(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) && !host.contains(':') => host,
        _ => address,
    }
}

/// `0`, `0s`, `0m0s`, `0h0m0s`, …
fn is_zero_duration(text: &str) -> bool {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    !digits.is_empty() && digits.chars().all(|c| c == '0')
}

fn encryption_provider(api: &Component, files: &HostFiles) -> CheckResult {
    let subject = subject(api);
    let Some(path) = api.flag("encryption-provider-config") else {
        return CheckResult::new(Status::Fail, subject, "--encryption-provider-config is not set");
    };
    let text = match files.read_to_string(Path::new(&path)) {
        Ok(Some(text)) => text,
        Ok(None) => return CheckResult::new(Status::Fail, path, "the file does not exist"),
        Err(e) => return CheckResult::new(Status::Warn, path, format!("cannot read: {e}")),
    };
    let config: serde_json::Value = match serde_saphyr::from_str(&text) {
        Ok(config) => config,
        Err(e) => return CheckResult::new(Status::Fail, path, format!("not a valid EncryptionConfiguration: {e}")),
    };
    let resources = config.get("resources").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    let secrets = resources.iter().find(|r| {
        r.get("resources")
            .and_then(|l| l.as_array())
            .is_some_and(|l| l.iter().any(|v| v == "secrets" || v == "*.*" || v == "*."))
    });
    let first = secrets
        .and_then(|r| r.get("providers"))
        .and_then(|p| p.as_array())
        .and_then(|p| p.first())
        .and_then(|p| p.as_object())
        .and_then(|p| p.keys().next().cloned());
    match first {
        Some(provider) if ["aescbc", "secretbox", "kms"].contains(&provider.as_str()) => {
            CheckResult::new(Status::Pass, path, format!("secrets are written with {provider}"))
        }
        Some(provider) => CheckResult::new(Status::Fail, path, format!("secrets are written with {provider}")),
        None => CheckResult::new(Status::Fail, path, "no provider for secrets"),
    }
}

//! A baseline as a policy (`picket policy learn`): what the group was seen doing is allowed,
//! the rest is what the policy's mode acts on.
//!
//! - programs: one Allow rule listing every program and the paths it was run by;
//! - files: the whole filesystem read-only, except what the group wrote (folded into at most
//!   [`MAX_WRITE_RULES`] entries so the kernel rungs hold it);
//! - egress: the learned peers and ports, plus name lookups (port 53) to any resolver: the
//!   network rung sees a lookup only when it is refused, so a policy that learned none would
//!   break every name the workload resolves;
//! - ingress: the ports it accepted connections on.

use std::collections::BTreeMap;

use kube::api::ObjectMeta;

use super::baseline::{Baseline, Proto};
use super::paths::PathSet;
use crate::policy::spec::{
    Action, DirectoryMatch, FileRule, Mode, NetworkRule, Owner, OwnerKind, Peer, PicketPolicy, PolicySpec, PortRule,
    ProcessRule, Protocol, Selector,
};

/// Write exceptions at most: with the read-only rule they fill the kernel rungs' eight file
/// rules of a container.
pub const MAX_WRITE_RULES: usize = 7;
/// The annotation naming the group a policy was learned for.
pub use crate::policy::spec::GROUP_ANNOTATION;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LearnError {
    #[error("group {0}: pods nothing owns have no selector yet (select them by labels in a hand-written policy)")]
    NoSelector(String),
}

/// The policy of what `baseline` learned, in `mode`.
pub fn policy_of(baseline: &Baseline, mode: Mode) -> Result<PicketPolicy, LearnError> {
    let group = &baseline.group;
    let selector = match (&group.owner_kind, &group.owner_name, &group.image) {
        (Some(kind), Some(name), _) => {
            let kind = owner_kind(kind).ok_or_else(|| LearnError::NoSelector(group.key.clone()))?;
            Selector { owner: Some(Owner { kind, name: name.clone() }), ..Default::default() }
        }
        (_, _, Some(image)) => Selector { image: Some(image.clone()), ..Default::default() },
        _ => return Err(LearnError::NoSelector(group.key.clone())),
    };
    let spec = PolicySpec {
        selector,
        mode,
        process: process_rules(baseline),
        file: file_rules(baseline),
        ingress: ingress_rules(baseline),
        egress: egress_rules(baseline),
    };
    let mut annotations = BTreeMap::new();
    annotations.insert(GROUP_ANNOTATION.to_string(), group.key.clone());
    let metadata = ObjectMeta {
        name: Some(policy_name(baseline)),
        namespace: group.namespace.clone(),
        annotations: Some(annotations),
        ..Default::default()
    };
    Ok(PicketPolicy { metadata, spec })
}

fn owner_kind(kind: &str) -> Option<OwnerKind> {
    Some(match kind {
        "Deployment" => OwnerKind::Deployment,
        "StatefulSet" => OwnerKind::StatefulSet,
        "DaemonSet" => OwnerKind::DaemonSet,
        "CronJob" => OwnerKind::CronJob,
        "Job" => OwnerKind::Job,
        _ => return None,
    })
}

/// A DNS-1123 name: the owner's name, or the image's repository name for a local group.
pub fn policy_name(baseline: &Baseline) -> String {
    let group = &baseline.group;
    let raw = match (&group.owner_name, &group.image) {
        (Some(name), _) => name.clone(),
        (None, Some(image)) => {
            let without_digest = image.split('@').next().unwrap_or(image);
            let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
            let repository = last.split(':').next().unwrap_or(last);
            format!("local-{repository}")
        }
        _ => group.key.clone(),
    };
    let mut name: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
        .collect();
    name.truncate(253);
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    if name.is_empty() { "learned".into() } else { name }
}

fn process_rules(baseline: &Baseline) -> Vec<ProcessRule> {
    let mut paths: Vec<String> = Vec::new();
    for (exe, seen) in &baseline.processes {
        paths.push(exe.clone());
        paths.extend(seen.paths.iter().cloned());
    }
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        return Vec::new();
    }
    vec![ProcessRule {
        match_paths: paths,
        match_directories: Vec::new(),
        from_source: Vec::new(),
        user: None,
        action: Action::Allow,
    }]
}

fn file_rules(baseline: &Baseline) -> Vec<FileRule> {
    let everything_read_only = FileRule {
        match_paths: Vec::new(),
        match_directories: vec![DirectoryMatch { dir: "/".into(), recursive: true }],
        read_only: true,
        from_source: Vec::new(),
        action: Action::Allow,
    };
    let mut writes: PathSet = baseline.writes.clone();
    writes.fold_to(MAX_WRITE_RULES);
    let mut rules = vec![everything_read_only];
    for path in writes.iter() {
        let (match_paths, match_directories) = if path.ends_with('/') {
            (Vec::new(), vec![DirectoryMatch { dir: path.to_string(), recursive: true }])
        } else {
            (vec![path.to_string()], Vec::new())
        };
        rules.push(FileRule {
            match_paths,
            match_directories,
            read_only: false,
            from_source: Vec::new(),
            action: Action::Allow,
        });
    }
    rules
}

fn protocol(proto: Proto) -> Protocol {
    match proto {
        Proto::Tcp => Protocol::Tcp,
        Proto::Udp => Protocol::Udp,
    }
}

fn egress_rules(baseline: &Baseline) -> Vec<NetworkRule> {
    let mut by_peer: BTreeMap<&str, Vec<PortRule>> = BTreeMap::new();
    for flow in &baseline.egress {
        by_peer
            .entry(flow.peer.as_str())
            .or_default()
            .push(PortRule { port: flow.port.to_string(), protocol: Some(protocol(flow.protocol)) });
    }
    let mut rules: Vec<NetworkRule> = by_peer
        .into_iter()
        .map(|(peer, ports)| NetworkRule {
            peers: vec![match peer.parse::<ipnet::IpNet>() {
                Ok(_) => Peer { cidr: Some(peer.to_string()), ..Default::default() },
                Err(_) => Peer { group: Some(peer.to_string()), ..Default::default() },
            }],
            ports,
            applications: Vec::new(),
            http: Vec::new(),
            dns: Vec::new(),
            server_names: Vec::new(),
            action: Action::Allow,
        })
        .collect();
    // The names the addresses were resolved from, with the same ports: the name's addresses of
    // later (a CDN's, a cloud API's) are allowed too, and Cilium's export says `toFQDNs`.
    let mut by_name: BTreeMap<&str, Vec<PortRule>> = BTreeMap::new();
    for flow in &baseline.egress {
        for name in baseline.names_of(flow).into_iter().flatten() {
            let port = PortRule { port: flow.port.to_string(), protocol: Some(protocol(flow.protocol)) };
            let ports = by_name.entry(name.as_str()).or_default();
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
    }
    rules.extend(by_name.into_iter().map(|(name, ports)| NetworkRule {
        peers: vec![Peer { fqdn: Some(name.to_string()), ..Default::default() }],
        ports,
        applications: Vec::new(),
        http: Vec::new(),
        dns: Vec::new(),
        server_names: Vec::new(),
        action: Action::Allow,
    }));
    rules.push(NetworkRule {
        peers: Vec::new(),
        ports: vec![
            PortRule { port: "53".into(), protocol: Some(Protocol::Udp) },
            PortRule { port: "53".into(), protocol: Some(Protocol::Tcp) },
        ],
        applications: Vec::new(),
        http: Vec::new(),
        dns: Vec::new(),
        server_names: Vec::new(),
        action: Action::Allow,
    });
    rules
}

fn ingress_rules(baseline: &Baseline) -> Vec<NetworkRule> {
    if baseline.listening.is_empty() {
        return Vec::new();
    }
    let ports = baseline
        .listening
        .iter()
        .map(|l| PortRule { port: l.port.to_string(), protocol: Some(protocol(l.protocol)) })
        .collect();
    vec![NetworkRule {
        peers: Vec::new(),
        ports,
        applications: Vec::new(),
        http: Vec::new(),
        dns: Vec::new(),
        server_names: Vec::new(),
        action: Action::Allow,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::baseline::{GroupRef, Observed};

    #[test]
    fn a_learned_policy_allows_what_was_seen_and_validates() {
        let mut b = Baseline::new(GroupRef::local("registry.example/team/web:1.2"), 0);
        b.observe(
            1,
            &Observed::Exec {
                exe: "/bin/busybox".into(),
                path: "/bin/httpd".into(),
                parent: "".into(),
                uid: 0,
                probe: false,
            },
        );
        for i in 0..6 {
            b.observe(1, &Observed::Open { path: format!("/var/log/web/{i}.log"), write: true });
        }
        b.observe(1, &Observed::Open { path: "/tmp/pid".into(), write: true });
        b.observe(
            1,
            &Observed::Connect {
                address: "10.1.2.3".parse().unwrap(),
                port: 5432,
                protocol: Proto::Tcp,
                peer: None,
                name: None,
            },
        );
        b.observe(1, &Observed::Accept { port: 80, protocol: Proto::Tcp });
        b.observe(
            1,
            &Observed::Connect {
                address: "10.1.9.9".parse().unwrap(),
                port: 6379,
                protocol: Proto::Tcp,
                peer: Some("local/registry.example/team/cache:7".into()),
                name: None,
            },
        );
        b.observe(
            1,
            &Observed::Connect {
                address: "192.0.2.7".parse().unwrap(),
                port: 443,
                protocol: Proto::Tcp,
                peer: None,
                name: Some("api.payments.example".into()),
            },
        );
        let policy = policy_of(&b, Mode::Protect).expect("a policy");
        let named = policy.spec.egress.iter().find(|r| r.peers[0].fqdn.is_some()).expect("a rule by name");
        assert_eq!(named.peers[0].fqdn.as_deref(), Some("api.payments.example"));
        assert_eq!(named.ports[0].port, "443");
        assert!(
            policy.spec.egress.iter().any(|r| r.peers[0].cidr.as_deref() == Some("192.0.2.7/32")),
            "and the address it was met at"
        );
        let cache = policy.spec.egress.iter().find(|r| r.ports[0].port == "6379").expect("the cache rule");
        assert_eq!(cache.peers[0].group.as_deref(), Some("local/registry.example/team/cache:7"));
        assert_eq!(cache.peers[0].cidr, None, "a peer group, not its address");
        assert_eq!(policy.metadata.name.as_deref(), Some("local-web"));
        assert_eq!(policy.spec.selector.image.as_deref(), Some("registry.example/team/web:1.2"));
        assert_eq!(policy.spec.process[0].match_paths, ["/bin/busybox", "/bin/httpd"]);
        let written: Vec<String> = policy.spec.file[1..]
            .iter()
            .flat_map(|r| r.match_paths.iter().cloned().chain(r.match_directories.iter().map(|d| d.dir.clone())))
            .collect();
        assert_eq!(written, ["/tmp/pid", "/var/log/web/"]);
        assert_eq!(policy.spec.egress[0].peers[0].cidr.as_deref(), Some("10.1.2.3/32"));
        assert_eq!(policy.spec.ingress[0].ports[0].port, "80");
        let text = serde_saphyr::to_string(&policy).expect("yaml");
        let (documents, problems) = crate::policy::validate::validate_text(std::path::Path::new("learned.yaml"), &text);
        assert!(problems.is_empty(), "{problems:?}\n{text}");
        assert_eq!(documents.len(), 1);
    }

    #[test]
    fn workloads_are_selected_by_owner_and_unowned_pods_are_said() {
        let b = Baseline::new(GroupRef::workload("shop", "Deployment", "web"), 0);
        let policy = policy_of(&b, Mode::Monitor).expect("a policy");
        assert_eq!(policy.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(policy.spec.selector.owner.as_ref().map(|o| o.kind), Some(OwnerKind::Deployment));
        let bare = Baseline::new(GroupRef::workload("shop", "Pod", "debug"), 0);
        assert!(matches!(policy_of(&bare, Mode::Monitor), Err(LearnError::NoSelector(_))));
    }
}

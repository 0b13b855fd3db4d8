//! `picket policy test FILE --events RECORDED`: what a policy would alert on or deny in a
//! recorded stream, offline, with the agent's own rules: the container a rule names, the exec
//! allowlist, the longest file prefix, the connect rules (a deny wins) and the inbound list.
//! A CI step for policy changes: record a workload once, test every change against it.
//!
//! A recording made in discover or monitor mode holds every event; one made in protect mode
//! lacks what was refused (it never happened), which its alerts then show.

use serde::Serialize;

use super::enforce::network::ConnectRules;
use super::enforce::{ContainerPolicy, Mode};
use super::net::NetEventKind;
use super::policy::{PolicyFile, PolicyRule, RunningContainer};
use super::wire::WireEvent;

/// One thing the policy would not allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The line of the recording (1-based).
    pub line: usize,
    /// `policy-exec`, `policy-file`, `policy-connect`, `policy-accept`: the rule the live agent's
    /// alert would carry.
    pub rule: String,
    /// `recorded`, `alerted` or `denied` (what the mode does; inbound connections are alerted).
    pub action: String,
    /// The container, by name (else its id's first 12 digits).
    pub container: String,
    /// The program, file or address.
    pub subject: String,
    /// `containers[N] allowExec` and so on.
    pub policy: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Replayed {
    pub verdicts: Vec<Verdict>,
    /// Events judged (in a container a rule names).
    pub judged: usize,
    /// Lines that are not events of this picket's stream.
    pub unread: usize,
}

fn running(container: &super::attribution::ContainerRef) -> RunningContainer {
    RunningContainer {
        id: container.id.clone(),
        name: container.name.clone(),
        namespace: container.pod_namespace.clone(),
        image: container.image.clone(),
        owner: container.pod_owner.clone(),
        cgroups: vec![1],
        probe_programs: Vec::new(),
        labels: Default::default(),
    }
}

fn action(mode: Mode, inbound: bool) -> &'static str {
    match mode {
        Mode::Discover => "recorded",
        Mode::Monitor => "alerted",
        Mode::Protect if inbound => "alerted",
        Mode::Protect => "denied",
    }
}

/// Replays `lines` against `policy`.
pub fn replay(policy: &PolicyFile, lines: impl Iterator<Item = String>) -> Replayed {
    let mut out = Replayed::default();
    // Peer groups and DNS names are put as the addresses the recording showed them holding (the
    // events' `peer`, the `dns` answers), as the agent puts them as the addresses they hold.
    let names_groups = policy.names_peer_groups();
    let mut peers = super::policy::PeerAddresses::new();
    let mut expanded = policy.clone();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(event) = serde_json::from_str::<WireEvent>(&line) else {
            out.unread += 1;
            continue;
        };
        // (the group or the name, the address): as the event showed it held.
        let held_by: Vec<(String, std::net::IpAddr)> = match &event {
            WireEvent::Network { event, peer: Some(group), .. } => vec![(group.clone(), event.remote.0)],
            WireEvent::Dns { answer, .. } => answer.addresses.iter().map(|a| (answer.query.clone(), *a)).collect(),
            _ => Vec::new(),
        };
        if names_groups && !held_by.is_empty() {
            let mut changed = false;
            for (key, address) in held_by {
                let held = peers.entry(key).or_default();
                let address = address.to_canonical();
                if !held.contains(&address) {
                    held.push(address);
                    changed = true;
                }
            }
            if changed {
                expanded = policy.with_peers(&peers);
            }
        }
        let Some(container) = event.container() else { continue };
        let Some((index, rule, kernel)) = rule_for(&expanded, &running(container)) else { continue };
        if matches!(event, WireEvent::Alert { .. } | WireEvent::Stats { .. } | WireEvent::Lagged { .. }) {
            continue;
        }
        out.judged += 1;
        let who = container.name.clone().unwrap_or_else(|| container.id.chars().take(12).collect());
        let verdict = |rule_name: &str, subject: String, what: String, inbound: bool| Verdict {
            line: n + 1,
            rule: rule_name.into(),
            action: action(kernel.mode, inbound).into(),
            container: who.clone(),
            subject,
            policy: format!("containers[{index}] {what}"),
        };
        match &event {
            WireEvent::Process { event, .. } if event.kind == super::events::ProcessEventKind::Exec => {
                let exe = if event.exe.starts_with('/') { &event.exe } else { &event.filename };
                if kernel.exec_allowlist.as_ref().is_some_and(|list| !list.contains(exe)) {
                    out.verdicts.push(verdict("policy-exec", exe.clone(), "allowExec".into(), false));
                }
            }
            WireEvent::File { event, .. } => {
                let writes = event.write || event.create || event.truncate;
                if let Some(deciding) = super::enforce::deciding_rule(&kernel.file_rules, &event.path)
                    && (deciding.deny_read || (deciding.deny_write && writes))
                {
                    let what = format!("files {}", deciding.prefix);
                    out.verdicts.push(verdict("policy-file", event.path.clone(), what, false));
                }
            }
            WireEvent::Network { event, .. } => {
                let remote = std::net::SocketAddr::new(event.remote.0, event.remote.1);
                match event.kind {
                    NetEventKind::Connect | NetEventKind::Send => {
                        if let Some(rules) = &kernel.connect
                            && let Some(why) = refused_by(rules, event.remote.0, event.remote.1, event.protocol)
                        {
                            out.verdicts.push(verdict(
                                "policy-connect",
                                remote.to_string(),
                                format!("connect: {why}"),
                                false,
                            ));
                        }
                    }
                    NetEventKind::Accept => {
                        if let Some((_, port)) = event.local
                            && !rule.accepts(event.remote.0, port, event.protocol)
                        {
                            let what = format!("accept: port {port} is not listed");
                            out.verdicts.push(verdict("policy-accept", remote.to_string(), what, true));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The first rule naming the container, with its index and its kernel policy.
fn rule_for<'a>(
    policy: &'a PolicyFile,
    container: &RunningContainer,
) -> Option<(usize, &'a PolicyRule, ContainerPolicy)> {
    let resolved = policy.resolve_indexed(std::slice::from_ref(container));
    let (index, kernel) = resolved.into_iter().next()?;
    Some((index, policy.containers.get(index)?, kernel))
}

/// Why the connect rules refuse a destination (a deny wins; then the allowlist), as the agent
/// describes it; None: allowed.
fn refused_by(rules: &ConnectRules, address: std::net::IpAddr, port: u16, protocol: u32) -> Option<String> {
    if let Some(denied) = rules.deny.iter().find(|d| d.covers(address, port, protocol)) {
        return Some(format!("deny {denied}"));
    }
    match &rules.allow {
        Some(list) if !list.iter().any(|d| d.covers(address, port, protocol)) => Some("not allowed".into()),
        _ => None,
    }
}

/// What a group was seen doing that a policy would flag, and what the policy allows that was
/// never seen (`picket policy diff FILE`).
#[derive(Debug, Default, Serialize)]
pub struct BaselineDiff {
    pub group: String,
    /// The rule of the policy that names the group (None: no rule does).
    pub rule: Option<usize>,
    /// Learned, and outside the policy: `exec /usr/bin/curl`, `write /var/cache/x`, `connect
    /// 10.0.0.5:5432/tcp`, `accept 9090/tcp`.
    pub flagged: Vec<String>,
    /// Allowed by the policy, never seen: programs on the allowlist nobody ran.
    pub unused: Vec<String>,
}

/// Judges each learned baseline with `policy`, as the agent would judge the same behaviour.
pub fn against_baselines(policy: &PolicyFile, baselines: &crate::learn::Baselines) -> Vec<BaselineDiff> {
    let mut out = Vec::new();
    // A learned peer group is judged by name: each gets a stand-in address of its own (from the
    // benchmarking range 198.18.0.0/15, no workload's), which only rules naming that group (or
    // any address) cover.
    let mut stand_ins = super::policy::PeerAddresses::new();
    let groups: std::collections::BTreeSet<&str> =
        baselines.groups.values().flat_map(|b| b.egress.iter().filter_map(|f| f.group())).collect();
    for (n, group) in groups.into_iter().enumerate() {
        let n = u32::try_from(n).unwrap_or(u32::MAX) & 0x1_ffff;
        stand_ins.insert(group.to_string(), vec![std::net::Ipv4Addr::from(0xc612_0000 | n).into()]);
    }
    let expanded = policy.with_peers(&stand_ins);
    let policy = &expanded;
    for (key, baseline) in &baselines.groups {
        let group = &baseline.group;
        let container = RunningContainer {
            id: String::new(),
            name: None,
            namespace: group.namespace.clone(),
            image: group.image.clone(),
            owner: group.owner_kind.as_ref().zip(group.owner_name.as_ref()).map(|(k, n)| format!("{k}/{n}")),
            cgroups: vec![1],
            probe_programs: Vec::new(),
            labels: Default::default(),
        };
        let mut diff = BaselineDiff { group: key.clone(), ..Default::default() };
        let Some((index, rule, kernel)) = rule_for(policy, &container) else {
            out.push(diff);
            continue;
        };
        diff.rule = Some(index);
        if let Some(list) = &kernel.exec_allowlist {
            for exe in baseline.processes.keys().filter(|exe| !list.contains(exe)) {
                diff.flagged.push(format!("exec {exe}"));
            }
            let seen: std::collections::BTreeSet<&str> = baseline
                .processes
                .iter()
                .flat_map(|(exe, s)| std::iter::once(exe.as_str()).chain(s.paths.iter().map(String::as_str)))
                .collect();
            diff.unused.extend(list.iter().filter(|p| !seen.contains(p.as_str())).map(|p| format!("exec {p}")));
        }
        for path in baseline.writes.iter() {
            if super::enforce::deciding_rule(&kernel.file_rules, path).is_some_and(|r| r.deny_write) {
                diff.flagged.push(format!("write {path}"));
            }
        }
        for path in baseline.reads.iter() {
            if super::enforce::deciding_rule(&kernel.file_rules, path).is_some_and(|r| r.deny_read) {
                diff.flagged.push(format!("read {path}"));
            }
        }
        for flow in &baseline.egress {
            let address = match flow.group() {
                Some(group) => stand_ins.get(group).and_then(|a| a.first().copied()),
                None => flow.peer.parse::<ipnet::IpNet>().ok().map(|net| net.network()),
            };
            let Some(address) = address else { continue };
            let number = match flow.protocol {
                crate::learn::baseline::Proto::Tcp => 6,
                crate::learn::baseline::Proto::Udp => 17,
            };
            if let Some(rules) = &kernel.connect
                && refused_by(rules, address, flow.port, number).is_some()
            {
                diff.flagged.push(format!("connect {}:{}/{}", flow.peer, flow.port, flow.protocol));
            }
        }
        for listen in &baseline.listening {
            let number = match listen.protocol {
                crate::learn::baseline::Proto::Tcp => 6,
                crate::learn::baseline::Proto::Udp => 17,
            };
            if !rule.accepts(std::net::Ipv4Addr::UNSPECIFIED.into(), listen.port, number) {
                diff.flagged.push(format!("accept {}/{:?}", listen.port, listen.protocol).to_lowercase());
            }
        }
        out.push(diff);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_is_judged_as_the_agent_would() {
        let policy = PolicyFile::parse(
            std::path::Path::new("p.yaml"),
            "containers:
  - image: web:*
    mode: protect
    allowExec: [/bin/busybox]
    files:
      - { prefix: /, deny: [write] }
      - { prefix: /tmp/, deny: [] }
    connect:
      allow: [{ to: 10.0.0.0/8, ports: [80] }]
    accept: [{ ports: [8080] }]
",
        )
        .expect("policy");
        let container = r#""container":{"runtime":"podman","id":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","pod_uid":null,"name":"web","image":"web:1"}"#;
        let exec = |exe: &str| {
            format!(
                r#"{{"type":"process","v":2,"node":"n","kind":"exec","pid":5,"tid":5,"ppid":1,"uid":0,"exit_status":0,"cgroup_id":9,"timestamp_ns":1,"comm":"x","filename":"{exe}","args":[],"exe":"{exe}",{container}}}"#
            )
        };
        let open = |path: &str, write: bool| {
            format!(
                r#"{{"type":"file","v":2,"node":"n","pid":5,"tid":5,"uid":0,"cgroup_id":9,"timestamp_ns":1,"comm":"x","path":"{path}","read":{},"write":{write},"create":false,"truncate":false,"truncated_path":false,{container}}}"#,
                !write
            )
        };
        let net = |kind: &str, remote: &str, port: u16, local: &str| {
            format!(
                r#"{{"type":"network","v":2,"node":"n","kind":"{kind}","pid":5,"uid":0,"protocol":6,"local":{local},"remote":["{remote}",{port}],"cgroup_id":9,"timestamp_ns":1,"comm":"x",{container}}}"#
            )
        };
        let lines = vec![
            exec("/bin/busybox"),
            exec("/tmp/miner"),
            open("/etc/passwd", false),
            open("/etc/passwd", true),
            open("/tmp/scratch", true),
            net("connect", "10.1.2.3", 80, "null"),
            net("connect", "192.0.2.1", 443, "null"),
            net("accept", "10.0.0.9", 40000, r#"["10.0.0.2",8080]"#),
            net("accept", "10.0.0.9", 40001, r#"["10.0.0.2",22]"#),
            "not json".to_string(),
        ];
        let replayed = replay(&policy, lines.into_iter());
        let got: Vec<(usize, &str, &str, &str)> = replayed
            .verdicts
            .iter()
            .map(|v| (v.line, v.rule.as_str(), v.action.as_str(), v.subject.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (2, "policy-exec", "denied", "/tmp/miner"),
                (4, "policy-file", "denied", "/etc/passwd"),
                (7, "policy-connect", "denied", "192.0.2.1:443"),
                (9, "policy-accept", "alerted", "10.0.0.9:40001"),
            ]
        );
        assert_eq!((replayed.judged, replayed.unread), (9, 1));
    }

    #[test]
    fn a_peer_group_is_judged_at_the_addresses_the_recording_showed_it_holding() {
        let policy = PolicyFile::parse(
            std::path::Path::new("p.yaml"),
            "containers:\n  - image: web:*\n    mode: protect\n    connect:\n      allow: [{ group: shop/StatefulSet/db, ports: [5432] }]\n",
        )
        .expect("policy");
        let container = r#""container":{"runtime":"podman","id":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","pod_uid":null,"name":"web","image":"web:1"}"#;
        let connect = |remote: &str, peer: &str| {
            format!(
                r#"{{"type":"network","v":2,"node":"n","kind":"connect","pid":5,"uid":0,"protocol":6,"local":null,"remote":["{remote}",5432],"cgroup_id":9,"timestamp_ns":1,"comm":"x",{container}{peer}}}"#
            )
        };
        let lines = vec![
            connect("10.244.1.7", r#","peer":"shop/StatefulSet/db""#),
            connect("10.244.2.9", r#","peer":"shop/StatefulSet/db""#),
            connect("10.244.3.3", r#","peer":"shop/Deployment/other""#),
            connect("10.244.1.8", ""),
        ];
        let replayed = replay(&policy, lines.into_iter());
        let got: Vec<(usize, &str)> = replayed.verdicts.iter().map(|v| (v.line, v.subject.as_str())).collect();
        assert_eq!(got, [(3, "10.244.3.3:5432"), (4, "10.244.1.8:5432")], "the group's pods pass, others do not");

        let mut baselines = crate::learn::Baselines::default();
        for (peer, port) in
            [("shop/StatefulSet/db", 5432), ("shop/StatefulSet/db", 6432), ("shop/Deployment/other", 5432)]
        {
            baselines.observe(&crate::learn::Observation {
                group: crate::learn::GroupRef::local("web:1"),
                at_ms: 1,
                what: crate::learn::Observed::Connect {
                    address: "10.244.1.7".parse().unwrap(),
                    port,
                    protocol: crate::learn::baseline::Proto::Tcp,
                    peer: Some(peer.into()),
                    name: None,
                },
            });
        }
        let diff = against_baselines(&policy, &baselines);
        assert_eq!(
            diff[0].flagged,
            ["connect shop/Deployment/other:5432/tcp", "connect shop/StatefulSet/db:6432/tcp"],
            "judged by name and port"
        );
    }
}

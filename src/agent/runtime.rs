//! The node agent's runtime, `picket agent run`: the sensors' loop, attribution and names, the
//! policy in force, and the outputs (standard output, the socket, the loopback listener). The CLI
//! parses flags and calls [`run`]; nothing here knows about clap.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;

use super::alert::Alert;
use super::attribution::CgroupResolver;
use super::enforce::network::NetworkControl;
use super::enforce::{ExecFileEnforcer, Mode, Violation};
use super::files::{FileEvent, FileSensor, FileSensorError, Watch};
use super::names::ContainerNames;
use super::net::NetSensor;
use super::policy::{PolicyFile, RunningContainer};
use super::sensor::ProcessSensor;
use super::wire::{AgentStats, Enforcement, WireEvent};

/// How often the agent sends its state (and applies its policy to containers started since).
const STATS_EVERY: Duration = Duration::from_secs(2);
/// After a new container's first events, policing is brought up to date again this often, this
/// many times: a `name:` rule applies once the engine has named the container.
const ARRIVAL_RECHECK: Duration = Duration::from_millis(100);
const ARRIVAL_RECHECKS: u32 = 20;

/// The containers running now that a policy's rules name, and the cgroups they hold.
pub struct PolicyPreview {
    pub named: Vec<RunningContainer>,
    pub cgroups: usize,
}

/// What `policy` would enforce on the containers running now (names from the engines, given
/// up to five seconds to answer).
pub async fn preview_policy(policy: &PolicyFile) -> PolicyPreview {
    let names = ContainerNames::start(crate::engine::candidate_sockets(&[]));
    names.ready(Duration::from_secs(5)).await;
    let mut resolver = CgroupResolver::new();
    let running = running_containers(&mut resolver, &names);
    let policies = policy.resolve(&running);
    let named = running.into_iter().filter(|c| policies.iter().any(|p| c.cgroups.contains(&p.cgroup_id))).collect();
    PolicyPreview { named, cgroups: policies.len() }
}

/// The containers running now, with their names from the engines, as policy rules see them.
pub fn running_containers(resolver: &mut CgroupResolver, names: &ContainerNames) -> Vec<RunningContainer> {
    let named = names.all();
    resolver
        .containers()
        .into_iter()
        .map(|(id, found)| {
            let probes = named.get(&id).map(|n| n.probes.as_slice()).unwrap_or_default();
            // Probe programs are looked up in the container's own files, through one of its
            // processes' root.
            let probe_programs = match probes.is_empty() {
                true => Vec::new(),
                false => resolver.process_in(&found.cgroups).map_or_else(Vec::new, |pid| {
                    let root = std::path::PathBuf::from(format!("/proc/{pid}/root"));
                    let mut programs: Vec<String> =
                        probes.iter().flat_map(|probe| super::probes::programs(&root, probe)).collect();
                    programs.sort();
                    programs.dedup();
                    programs
                }),
            };
            let labels = match found.pod_uid.as_deref() {
                Some(uid) => names.pod_labels(uid).unwrap_or_default(),
                None => named.get(&id).map(|n| n.labels.clone()).unwrap_or_default(),
            };
            RunningContainer {
                labels,
                name: named.get(&id).map(|n| n.name.clone()),
                image: named.get(&id).map(|n| n.image.clone()),
                owner: found.pod_uid.as_deref().and_then(|uid| names.owner(uid)),
                namespace: found.pod_uid.as_deref().and_then(|uid| names.pod(uid)).map(|(namespace, _)| namespace),
                id,
                cgroups: found.cgroups,
                probe_programs,
            }
        })
        .collect()
}

/// In a pod of the agent's DaemonSet (service account, NODE_NAME from the downward API), names
/// also come from the API server.
async fn with_cluster_names(names: ContainerNames) -> ContainerNames {
    let (Some(_), Ok(node)) = (std::env::var_os("KUBERNETES_SERVICE_HOST"), std::env::var("NODE_NAME")) else {
        return names;
    };
    match kube::Client::try_default().await {
        Ok(client) => names.with_cluster(client, node),
        Err(err) => {
            crate::say!("picket: no API server client ({err}); events keep pod UIDs only");
            names
        }
    }
}

/// What `picket agent run` was asked to do.
pub struct RunOptions {
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Only events attributed to a container.
    pub containers_only: bool,
    /// Also serve the events on this unix socket.
    pub socket: Option<std::path::PathBuf>,
    /// Do not print events on standard output.
    pub quiet: bool,
    /// The policy file to enforce, already checked.
    pub policy: Option<(std::path::PathBuf, PolicyFile)>,
    /// Also serve the socket's lines on this loopback address.
    pub listen: Option<std::net::SocketAddr>,
    /// File prefixes whose opens are reported.
    pub watch: Vec<String>,
    /// The detection rules (None: none run).
    pub rules: Option<crate::rules::RuleSet>,
    /// Whether deniable detections are stopped.
    pub protect: super::detect::Protect,
    /// The rung for exec and file rules (None: the strongest that loads).
    pub enforce_with: Option<super::enforce::Rung>,
    /// Where the baselines and a policy applied through the socket are kept (None: nowhere;
    /// nothing is learned and an applied policy lasts until the agent stops).
    pub state_dir: Option<std::path::PathBuf>,
    /// Learn what each group of containers does (needs `state_dir`).
    pub learn: bool,
    /// Enforce the cluster's policy objects, watched through this context (None inside: the
    /// current one, or the pod's service account).
    pub cluster_policies: Option<Option<String>>,
    /// Promote a group nothing polices from discover to monitor after this long without
    /// anything new learned (its learned policy), and from monitor to protect after this long
    /// without a violation.
    pub promote_after: Option<Duration>,
    pub protect_after: Option<Duration>,
}

/// The file sensor's next batch; never, when no prefix is watched.
async fn next_flows(
    flows: &mut Option<super::flows::FlowSensor>,
) -> Result<Vec<super::flows::FlowRecord>, super::ring::RingError> {
    match flows {
        Some(flows) => flows.next_batch().await,
        None => std::future::pending().await,
    }
}

async fn next_dns(
    dns: &mut Option<super::dns::DnsSensor>,
) -> Result<Vec<super::dns::DnsDatagram>, super::ring::RingError> {
    match dns {
        Some(dns) => dns.next_batch().await,
        None => std::future::pending().await,
    }
}

async fn next_files(files: &mut Option<FileSensor>) -> Result<Vec<FileEvent>, FileSensorError> {
    match files {
        Some(files) => files.next_batch().await,
        None => std::future::pending().await,
    }
}

/// (dropped, malformed) over the sensors.
fn counters(
    sensor: &ProcessSensor,
    net: &NetSensor,
    files: Option<&FileSensor>,
    enforcer: Option<&ExecFileEnforcer>,
    guard: Option<&super::enforce::fanotify::FanotifyEnforcer>,
) -> anyhow::Result<(u64, u64)> {
    let (mut dropped, mut malformed) = (sensor.dropped()? + net.dropped()?, sensor.malformed + net.malformed);
    if let Some(files) = files {
        dropped += files.dropped()?;
        malformed += files.malformed;
    }
    if let Some(enforcer) = enforcer {
        dropped += enforcer.dropped()?;
        malformed += enforcer.malformed();
    }
    // Refusals the guard could not report (its queue was full).
    dropped += guard.map_or(0, |g| g.dropped());
    Ok((dropped, malformed))
}

/// Every cgroup of every running container, with the container's name and image (for the
/// rules' exceptions).
fn guarded_containers(
    resolver: &mut CgroupResolver,
    names: &ContainerNames,
) -> std::collections::HashMap<u64, (Option<String>, Option<String>)> {
    let mut out = std::collections::HashMap::new();
    for (id, found) in resolver.containers() {
        let named = names.get(&id);
        for cgroup in found.cgroups {
            out.insert(cgroup, (named.as_ref().map(|n| n.name.clone()), named.as_ref().map(|n| n.image.clone())));
        }
    }
    out
}

/// For each running container's cgroups, which of the network guard's kernel rules apply
/// (bit i: kernel rule i); a rule's exceptions for the container or its image leave its bits out.
fn guard_masks(out: &mut Emitter, network: &NetworkControl) -> std::collections::HashMap<u64, u32> {
    let rules = out.detector.rules();
    guarded_containers(&mut out.resolver, &out.names)
        .into_iter()
        .map(|(cgroup, (name, image))| {
            let whose = crate::rules::Whose { container: name.as_deref(), image: image.as_deref() };
            let mask = network.guard_rules().iter().enumerate().fold(0u32, |mask, (i, guard)| {
                let excepted = rules.rules.iter().find(|r| r.info.id == guard.rule).is_none_or(|r| r.excepted(&whose));
                if excepted { mask } else { mask | (1 << i) }
            });
            (cgroup, mask)
        })
        .collect()
}

/// Each violation with the policy rule that decided it.
fn described(enforcing: Option<&Enforcing>, violations: Vec<Violation>) -> Vec<(Violation, String)> {
    violations
        .into_iter()
        .map(|v| {
            let policy = match v.kind {
                super::enforce::AlertKind::Quarantined => v.rule.clone(),
                _ => enforcing.map(|e| e.describe(&v)).unwrap_or_default(),
            };
            (v, policy)
        })
        .collect()
}

/// The connects and sends a container's network policy objected to.
fn network_violations(events: &[crate::agent::net::NetEvent], network: &NetworkControl) -> Vec<Violation> {
    events
        .iter()
        .filter_map(|e| {
            let verdict = e.policy?;
            if verdict.quarantined {
                let rule = "quarantine: every connection refused until released".to_string();
                return Some(net_violation(e, super::enforce::AlertKind::Quarantined, verdict.action, rule));
            }
            let rule = network.describe(e.cgroup_id, verdict.rule);
            Some(net_violation(e, super::enforce::AlertKind::Connect, verdict.action, rule))
        })
        .collect()
}

/// Inbound connections the inbound rung refused (protect mode): violations of the accept rules.
fn inbound_violations(refused: &[super::enforce::inbound::Refused]) -> Vec<Violation> {
    refused
        .iter()
        .map(|r| {
            let event = crate::agent::net::NetEvent {
                kind: crate::agent::net::NetEventKind::Accept,
                pid: 0,
                uid: 0,
                protocol: r.protocol,
                local: Some((r.local.ip(), r.local.port())),
                remote: (r.remote.ip(), r.remote.port()),
                cgroup_id: r.cgroup_id,
                timestamp_ns: crate::agent::events::boottime_ns(),
                comm: String::new(),
                policy: None,
                guard: None,
            };
            let rule = format!("port {}", r.local.port());
            net_violation(&event, super::enforce::AlertKind::Accept, super::enforce::AlertAction::Denied, rule)
        })
        .collect()
}

/// The HTTP requests and DNS queries a container's L7 rules objected to.
fn l7_violations(events: &[super::enforce::l7::L7Event], network: &NetworkControl) -> Vec<Violation> {
    use super::enforce::l7::L7Kind;
    events
        .iter()
        .map(|e| Violation {
            kind: match e.kind {
                L7Kind::Http => super::enforce::AlertKind::Http,
                L7Kind::HttpIn => super::enforce::AlertKind::HttpIn,
                L7Kind::Dns => super::enforce::AlertKind::Dns,
                L7Kind::Tls => super::enforce::AlertKind::Tls,
            },
            action: e.action,
            pid: e.pid,
            uid: e.uid,
            cgroup_id: e.cgroup_id,
            timestamp_ns: e.timestamp_ns,
            read: false,
            write: false,
            comm: e.comm.clone(),
            path: e.text.clone(),
            remote: e.remote.map(|r| r.to_string()).unwrap_or_default(),
            local: e.local.map(|l| l.to_string()).unwrap_or_default(),
            rule: network.l7.describe(e),
        })
        .collect()
}

/// A violation of a connect, send or accept: the event's process and its peer.
fn net_violation(
    e: &crate::agent::net::NetEvent,
    kind: super::enforce::AlertKind,
    action: super::enforce::AlertAction,
    rule: String,
) -> Violation {
    Violation {
        kind,
        action,
        pid: e.pid,
        uid: e.uid,
        cgroup_id: e.cgroup_id,
        timestamp_ns: e.timestamp_ns,
        read: false,
        write: false,
        comm: e.comm.clone(),
        path: String::new(),
        remote: std::net::SocketAddr::new(e.remote.0, e.remote.1).to_string(),
        local: e.local.map(|(ip, port)| std::net::SocketAddr::new(ip, port).to_string()).unwrap_or_default(),
        rule,
    }
}

/// Connections accepted that the container's policy does not list among its inbound ones:
/// alerted (recorded in discover mode); in protect mode the inbound rung refuses them before
/// they are accepted, so those seen here were let through.
fn accept_violations(events: &[crate::agent::net::NetEvent], enforcing: Option<&Enforcing>) -> Vec<Violation> {
    let Some(enforcing) = enforcing else { return Vec::new() };
    if !events.iter().any(|e| e.kind == crate::agent::net::NetEventKind::Accept) {
        return Vec::new();
    }
    let rules = enforcing.rules();
    events
        .iter()
        .filter(|e| e.kind == crate::agent::net::NetEventKind::Accept)
        .filter_map(|e| {
            let rule = rules.containers.get(*enforcing.rule_of.get(&e.cgroup_id)?)?;
            let policy = enforcing.applied.iter().find(|p| p.cgroup_id == e.cgroup_id)?;
            let (_, port) = e.local?;
            if rule.accepts(e.remote.0, port, e.protocol) {
                return None;
            }
            let action = match policy.mode {
                Mode::Discover => super::enforce::AlertAction::Recorded,
                Mode::Monitor | Mode::Protect => super::enforce::AlertAction::Alerted,
            };
            Some(net_violation(e, super::enforce::AlertKind::Accept, action, format!("port {port}")))
        })
        .collect()
}

/// What the agent's loop answers on the socket (the bench is answered by the server itself).
enum Answer {
    Ready(Box<super::wire::AgentReply>),
    /// Applied: the summary is made once the policy has been brought to the containers.
    Applied,
    Refused(String),
}

impl Answer {
    /// The answer's line; `kind` is the request's answer type.
    fn finish(self, enforcing: Option<&Enforcing>, kind: &str) -> String {
        use super::wire::AgentReply;
        let reply = match self {
            Answer::Ready(reply) => *reply,
            Answer::Refused(error) => AgentReply::refused(kind, error),
            Answer::Applied => match enforcing {
                Some(e) if e.error.is_some() => AgentReply::refused("applied", e.error.clone().unwrap_or_default()),
                Some(e) => {
                    let s = e.summary();
                    AgentReply {
                        policy_file: Some(e.path.display().to_string()),
                        summary: Some(format!(
                            "{} containers' cgroups: {} discover, {} monitor, {} protect; rung {}",
                            s.discover + s.monitor + s.protect,
                            s.discover,
                            s.monitor,
                            s.protect,
                            s.rung.as_deref().unwrap_or("none needed"),
                        )),
                        ..AgentReply::new("applied")
                    }
                }
                None => AgentReply::refused("applied", "no policy in force".into()),
            },
        };
        serde_json::to_string(&reply).unwrap_or_default()
    }
}

fn ready(reply: super::wire::AgentReply) -> Answer {
    Answer::Ready(Box::new(reply))
}

fn answer(
    request: super::wire::Request,
    enforcing: &mut Option<Enforcing>,
    out: &mut Emitter,
    state_dir: &Option<std::path::PathBuf>,
    enforce_with: Option<super::enforce::Rung>,
) -> Answer {
    use super::wire::{AgentReply, Request};
    match request {
        Request::BenchNode => Answer::Refused("bench-node is answered by the socket's server".into()),
        Request::Baselines => match &out.learning {
            Some(learning) => {
                ready(AgentReply { baselines: Some(learning.baselines().clone()), ..AgentReply::new("baselines") })
            }
            None => ready(AgentReply::refused("baselines", "this agent learns nothing (--no-learn)".into())),
        },
        Request::Policy => match enforcing.as_ref() {
            Some(e) => ready(AgentReply {
                policy_file: Some(e.path.display().to_string()),
                policy: crate::input::read_text(&e.path, crate::input::MAX_TEXT).ok(),
                ..AgentReply::new("policy")
            }),
            None => ready(AgentReply::refused("policy", "no policy is in force".into())),
        },
        Request::ApplyPolicy { yaml } => {
            let Some(dir) = state_dir else {
                return Answer::Refused("this agent keeps no state (no --state-dir): nowhere to keep a policy".into());
            };
            let path = applied_policy_file(dir);
            let file = match PolicyFile::parse(&path, &yaml) {
                Ok(file) => file,
                Err(e) => return Answer::Refused(format!("{e}; the policy in force stays")),
            };
            let checked = match enforcing.as_mut() {
                Some(e) => e.replace(path.clone(), file),
                None => start_enforcing(path.clone(), file, enforce_with).map(|e| {
                    *enforcing = Some(e);
                }),
            };
            if let Err(e) = checked {
                return Answer::Refused(format!("{e}; the policy in force stays"));
            }
            let kept = std::fs::create_dir_all(dir).and_then(|()| {
                let temporary = path.with_extension(format!("yaml.new.{}", std::process::id()));
                std::fs::write(&temporary, &yaml)?;
                std::fs::rename(&temporary, &path)
            });
            if let Err(e) = kept {
                crate::say!(
                    "picket: cannot keep the applied policy in {}: {e}; it is in force until the agent stops",
                    path.display()
                );
            }
            Answer::Applied
        }
        Request::Modes => {
            let Some(promotion) = out.promotion.as_ref() else { return Answer::Refused(NO_MODES.into()) };
            let modes = promotion.groups.clone();
            let mut held: Vec<String> = held_groups(out, enforcing.as_ref()).into_iter().collect();
            held.sort();
            ready(AgentReply { modes: Some(modes), held, ..AgentReply::new("modes") })
        }
        Request::SetMode { group, mode, who } => {
            if held_groups(out, enforcing.as_ref()).contains(&group) {
                let file = enforcing.as_ref().map(|e| e.path.display().to_string()).unwrap_or_default();
                return Answer::Refused(format!(
                    "group {group} is held by the policy in force ({file}): change its mode there (:policies, or picket policy apply)"
                ));
            }
            let now_ms = crate::agent::events::wall_ms_of_boottime(crate::agent::events::boottime_ns());
            change_modes(out, enforcing, state_dir, enforce_with, |promotion, baselines| {
                promotion.set_mode(&group, mode, baselines, now_ms, &who)
            })
        }
        Request::Accept { group, violations, who } => {
            let now_ms = crate::agent::events::wall_ms_of_boottime(crate::agent::events::boottime_ns());
            change_modes(out, enforcing, state_dir, enforce_with, |promotion, _| {
                promotion.accept(&group, &violations, now_ms, &who).map(Some)
            })
        }
        Request::Quarantine { container, reason, who } => {
            let known: Vec<(String, Option<String>)> = out
                .resolver
                .containers()
                .into_keys()
                .map(|id| (id.clone(), out.names.get(&id).map(|n| n.name)))
                .collect();
            let id = match super::quarantine::find(&container, &known) {
                Ok(id) => id,
                Err(e) => return Answer::Refused(format!("{e} running on node {}", out.node)),
            };
            let name = known.into_iter().find(|(k, _)| *k == id).and_then(|(_, name)| name);
            let since_ms = crate::agent::events::wall_ms_of_boottime(crate::agent::events::boottime_ns());
            let entry = super::quarantine::Quarantined { id, name, since_ms, who: who.clone(), reason };
            let label = entry.label();
            let summary = match out.quarantine.add(entry) {
                true => {
                    crate::say!("picket: {label} quarantined (by {who})");
                    format!(
                        "{label} quarantined on node {}: its connects and sends are refused and its packets dropped",
                        out.node
                    )
                }
                false => format!("{label} was quarantined already"),
            };
            ready(AgentReply {
                summary: Some(summary),
                quarantined: Some(out.quarantine.list()),
                ..AgentReply::new("quarantine")
            })
        }
        Request::Release { container, who } => match out.quarantine.release(&container) {
            Ok(released) => {
                crate::say!("picket: {} released from quarantine (by {who})", released.label());
                ready(AgentReply {
                    summary: Some(format!("{} released: its network is back", released.label())),
                    quarantined: Some(out.quarantine.list()),
                    ..AgentReply::new("quarantine")
                })
            }
            Err(e) => Answer::Refused(e),
        },
        Request::Quarantined => {
            ready(AgentReply { quarantined: Some(out.quarantine.list()), ..AgentReply::new("quarantine") })
        }
    }
}

const NO_MODES: &str = "this agent keeps no modes: it learns nothing (--no-learn) or keeps no state (no --state-dir)";

/// The groups of running containers the policy in force (a file, an apply, the cluster's) names.
fn held_groups(out: &mut Emitter, enforcing: Option<&Enforcing>) -> std::collections::HashSet<String> {
    let Some(enforcing) = enforcing else { return Default::default() };
    let running = running_containers(&mut out.resolver, &out.names);
    enforcing.policed_groups(&running)
}

/// A change of the kept modes made by `change`: put in force (or undone when the enforcing rung
/// cannot hold it), kept, and logged.
fn change_modes(
    out: &mut Emitter,
    enforcing: &mut Option<Enforcing>,
    state_dir: &Option<std::path::PathBuf>,
    enforce_with: Option<super::enforce::Rung>,
    change: impl FnOnce(
        &mut super::promotion::Promotion,
        &crate::learn::Baselines,
    ) -> Result<Option<super::promotion::ModeChange>, super::promotion::PromotionError>,
) -> Answer {
    use super::wire::AgentReply;
    let (Some(dir), Some(promotion), Some(learning)) = (state_dir, out.promotion.as_mut(), out.learning.as_ref())
    else {
        return Answer::Refused(NO_MODES.into());
    };
    let before = promotion.groups.clone();
    let change = match change(promotion, learning.baselines()) {
        Ok(Some(change)) => change,
        Ok(None) => return ready(AgentReply { summary: Some("no change".into()), ..AgentReply::new("mode") }),
        Err(e) => return Answer::Refused(e.to_string()),
    };
    if let Err(e) = put_promoted(promotion, enforcing, dir, enforce_with) {
        promotion.groups = before;
        if let Err(again) = put_promoted(promotion, enforcing, dir, enforce_with) {
            crate::say!("picket: the modes as they were: {again}");
        }
        return Answer::Refused(format!("{e}; the modes in force stay"));
    }
    crate::say!("picket: {} (by {})", change.said(), change.who);
    if let Err(e) = promotion.save(std::slice::from_ref(&change)) {
        crate::say!("picket: cannot keep the modes in {}: {e}", dir.display());
    }
    ready(AgentReply { summary: Some(change.said()), ..AgentReply::new("mode") })
}

/// What the running containers' cgroups called since the last look, learned into their groups.
fn learn_syscalls(out: &mut Emitter, sensor: &mut super::syscalls::SyscallSensor) {
    let running = running_containers(&mut out.resolver, &out.names);
    let mut group_of_cgroup = std::collections::HashMap::new();
    let every: std::collections::HashSet<u64> = running.iter().flat_map(|c| c.cgroups.iter().copied()).collect();
    for container in &running {
        if let Some(group) = super::learning::group_key_of_running(container) {
            for cgroup in &container.cgroups {
                group_of_cgroup.insert(*cgroup, group.clone());
            }
        }
    }
    // A container not named yet keeps its set until it is (its first calls are its runtime's
    // and its entrypoint's).
    let new = match sensor.new_syscalls(&every, |cgroup| group_of_cgroup.contains_key(&cgroup)) {
        Ok(new) => new,
        Err(e) => {
            crate::say!("picket: {e}");
            return;
        }
    };
    let Some(learning) = out.learning.as_mut() else { return };
    for (cgroup, set) in new {
        if let Some(group) = group_of_cgroup.get(&cgroup) {
            learning.take_syscalls(group, cgroup, set.names());
        }
    }
}

/// Promotions due now: logged, kept, and their policies put in force; whether any happened.
fn promote(
    out: &mut Emitter,
    enforcing: &mut Option<Enforcing>,
    state_dir: Option<&std::path::Path>,
    enforce_with: Option<super::enforce::Rung>,
) -> bool {
    let Some(dir) = state_dir else { return false };
    // Modes are kept for operators too; only --promote-after/--protect-after promote by time,
    // and without them there is nothing to look at on each tick.
    if out.promotion.as_ref().is_none_or(|p| p.quiet.is_none() && p.clean.is_none()) {
        return false;
    }
    let running = running_containers(&mut out.resolver, &out.names);
    let policed = enforcing.as_ref().map(|e| e.policed_groups(&running)).unwrap_or_default();
    let (Some(promotion), Some(learning)) = (out.promotion.as_mut(), out.learning.as_ref()) else { return false };
    let now_ms = crate::agent::events::wall_ms_of_boottime(crate::agent::events::boottime_ns());
    let changes = promotion.tick(learning.baselines(), &policed, now_ms);
    if changes.is_empty() {
        return false;
    }
    for change in &changes {
        crate::say!("picket: {} ({})", change.said(), change.why);
    }
    if let Err(e) = promotion.save(&changes) {
        crate::say!("picket: cannot keep the promotions in {}: {e}", dir.display());
    }
    if let Err(e) = put_promoted(promotion, enforcing, dir, enforce_with) {
        crate::say!("picket: the promoted groups' policies: {e}");
        return false;
    }
    true
}

/// The promoted groups' rules beside the policy in force (or alone, kept readable as
/// `STATE_DIR/promoted-policy.yaml`).
fn put_promoted(
    promotion: &super::promotion::Promotion,
    enforcing: &mut Option<Enforcing>,
    dir: &std::path::Path,
    enforce_with: Option<super::enforce::Rung>,
) -> anyhow::Result<()> {
    let rules = promotion.policy_file()?;
    let path = dir.join("promoted-policy.yaml");
    if let Err(e) = std::fs::write(&path, promotion.yaml()) {
        crate::say!("picket: cannot write {}: {e}", path.display());
    }
    if enforcing.is_none() {
        *enforcing = Some(start_enforcing(path, PolicyFile { containers: Vec::new() }, enforce_with)?);
    }
    if let Some(e) = enforcing.as_mut() {
        if let Some(enforcer) = &e.enforcer {
            let held: Vec<_> = rules.resolve_all().into_iter().filter(|p| p.has_exec_or_file_rules()).collect();
            enforcer.check(&held).map_err(|err| checked_error(&dir.join("promoted-policy.yaml"), err))?;
        }
        e.promoted = rules.containers;
        e.dirty = true;
    }
    Ok(())
}

/// Puts `yaml` in force, kept as `path` (its file, for SIGHUP and the `policy` request): checked
/// first, so a policy that does not check leaves the one in force.
fn apply_text(
    yaml: &str,
    path: std::path::PathBuf,
    enforcing: &mut Option<Enforcing>,
    enforce_with: Option<super::enforce::Rung>,
) -> anyhow::Result<()> {
    let file = PolicyFile::parse(&path, yaml)?;
    match enforcing.as_mut() {
        Some(e) => e.replace(path.clone(), file)?,
        None => *enforcing = Some(start_enforcing(path.clone(), file, enforce_with)?),
    }
    let kept = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| {
        let temporary = path.with_extension(format!("yaml.new.{}", std::process::id()));
        std::fs::write(&temporary, yaml)?;
        std::fs::rename(&temporary, &path)
    });
    if let Err(e) = kept {
        crate::say!("picket: cannot keep the policy in {}: {e}; it is in force until the agent stops", path.display());
    }
    Ok(())
}

/// Publishes the node's baselines to the cluster when something new was learned, at most every
/// ten seconds, one write at a time and never in the loop's way.
struct Publisher {
    client: kube::Client,
    node: String,
    namespace: String,
    published: u64,
    last: Option<std::time::Instant>,
    writing: Option<tokio::task::JoinHandle<()>>,
    said: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Publisher {
    const EVERY: Duration = Duration::from_secs(10);

    fn new(client: kube::Client, node: String) -> Self {
        let namespace = std::env::var("POD_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| super::manifest::NAMESPACE.to_string());
        Self { client, node, namespace, published: 0, last: None, writing: None, said: Default::default() }
    }

    fn maybe(&mut self, learning: &super::learning::Learning) {
        let busy = self.writing.as_ref().is_some_and(|w| !w.is_finished());
        let soon = self.last.is_some_and(|at| at.elapsed() < Self::EVERY);
        if busy || soon || learning.generation() == self.published || learning.baselines().groups.is_empty() {
            return;
        }
        self.published = learning.generation();
        self.last = Some(std::time::Instant::now());
        let (client, namespace, node, said) =
            (self.client.clone(), self.namespace.clone(), self.node.clone(), std::sync::Arc::clone(&self.said));
        let baselines = learning.baselines().clone();
        self.writing = Some(tokio::spawn(async move {
            if let Err(e) = super::publish::publish(&client, &namespace, &node, &baselines).await
                && !said.swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                crate::say!("picket: publishing the node's baselines: {e}; they stay on the node");
            }
        }));
    }

    /// The last write, as the agent stops (bounded).
    async fn last(&mut self, learning: &super::learning::Learning) {
        if let Some(writing) = self.writing.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), writing).await;
        }
        if learning.generation() != self.published && !learning.baselines().groups.is_empty() {
            let write = super::publish::publish(&self.client, &self.namespace, &self.node, learning.baselines());
            if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(5), write).await {
                crate::say!("picket: publishing the node's baselines: {e}");
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The node's name: the DaemonSet's `NODE_NAME` (a pod's own hostname is the pod's name), else
/// the host name.
pub fn node_name() -> String {
    std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty()).unwrap_or_else(crate::local::hostname)
}

/// The rungs for `file`'s rules, checked before anything is enforced: a rule the rung cannot
/// hold is an error naming it.
fn start_enforcing(
    path: std::path::PathBuf,
    file: PolicyFile,
    enforce_with: Option<super::enforce::Rung>,
) -> anyhow::Result<Enforcing> {
    let everything = file.resolve_all();
    let mut rungs = Vec::new();
    let enforcer = if everything.iter().any(|p| p.has_exec_or_file_rules()) {
        let enforcer = ExecFileEnforcer::start(enforce_with)?;
        enforcer.check(&everything).map_err(|e| checked_error(&path, e))?;
        rungs.push(enforcer.rung().as_str());
        Some(enforcer)
    } else {
        None
    };
    if everything.iter().any(|p| p.connect.is_some()) {
        rungs.push(super::enforce::Rung::CgroupHooks.as_str());
    }
    if rungs.is_empty() {
        rungs.push("nothing in the kernel");
    }
    crate::say!("picket: enforcing {} with {}", path.display(), rungs.join(" and "));
    Ok(Enforcing {
        path,
        file,
        enforcer,
        enforce_with,
        rule_of: std::collections::HashMap::new(),
        applied: Vec::new(),
        dirty: true,
        error: None,
        promoted: Vec::new(),
    })
}

fn checked_error(path: &std::path::Path, e: super::enforce::EnforceError) -> anyhow::Error {
    match e {
        super::enforce::EnforceError::Unsupported { index, message, .. } => {
            anyhow::anyhow!("{}: containers[{index}]: {message}", path.display())
        }
        other => anyhow::anyhow!("{}: {other}", path.display()),
    }
}

/// The file a policy applied through the socket is kept in.
fn applied_policy_file(state_dir: &std::path::Path) -> std::path::PathBuf {
    state_dir.join("policy.yaml")
}

/// The policy applied last through the socket, if one is kept (a kept file that no longer
/// checks is said and not used).
fn applied_policy(state_dir: &Option<std::path::PathBuf>) -> Option<(std::path::PathBuf, PolicyFile)> {
    let path = applied_policy_file(state_dir.as_ref()?);
    if !path.exists() {
        return None;
    }
    match PolicyFile::load(&path) {
        Ok(file) => Some((path, file)),
        Err(e) => {
            crate::say!("picket: {e}; not in force");
            None
        }
    }
}

/// The policy file in force and the enforcers that hold it in the kernel.
struct Enforcing {
    path: std::path::PathBuf,
    file: PolicyFile,
    /// The exec and file rules' rung; None while no rule has any.
    enforcer: Option<ExecFileEnforcer>,
    /// The rung asked for (None: the strongest).
    enforce_with: Option<super::enforce::Rung>,
    /// What the kernel holds (only ever set from a successful apply).
    applied: Vec<crate::agent::enforce::ContainerPolicy>,
    /// The file changed: apply even when the resolved policies look the same as before.
    dirty: bool,
    /// The rule of the file (index) each policed cgroup is under.
    rule_of: std::collections::HashMap<u64, usize>,
    error: Option<String>,
    /// The rules of groups the agent promoted itself (after the file's: the file's win).
    promoted: Vec<super::policy::PolicyRule>,
}

impl Enforcing {
    /// Applies the file to the containers running now, when that changes what the kernel holds:
    /// exec and file rules to their rung, connect rules to the network hooks.
    fn refresh(
        &mut self,
        running: &[RunningContainer],
        peers: &super::policy::PeerAddresses,
        net: &mut NetSensor,
        network: &mut NetworkControl,
    ) {
        if let Some(enforcer) = self.enforcer.as_mut() {
            enforcer.mark_new_mounts();
        }
        let rules = self.rules();
        let rules = if rules.names_peer_groups() { rules.with_peers(peers) } else { rules };
        let indexed = rules.resolve_indexed(running);
        let policies: Vec<_> = indexed.iter().map(|(_, p)| p.clone()).collect();
        // Containers whose mounts could not be marked yet (fanotify) are tried again.
        let pending = self.enforcer.as_ref().is_some_and(|e| !e.pending().is_empty());
        if policies == self.applied && !self.dirty && !pending {
            return;
        }
        let exec_file: Vec<_> = policies.iter().filter(|p| p.has_exec_or_file_rules()).cloned().collect();
        if self.enforcer.is_none() && rules.resolve_all().iter().any(|p| p.has_exec_or_file_rules()) {
            // A reload brought the first exec or file rules.
            match ExecFileEnforcer::start(self.enforce_with) {
                Ok(enforcer) => self.enforcer = Some(enforcer),
                Err(e) => {
                    crate::say!("picket: policy {}: {e}; the policy in force stays", self.path.display());
                    self.error = Some(e.to_string());
                    return;
                }
            }
        }
        let applied = match self.enforcer.as_mut() {
            Some(enforcer) => enforcer.check(&exec_file).and_then(|()| enforcer.apply(&exec_file)),
            None => Ok(()),
        };
        match applied.and_then(|()| network.apply(net.programs_mut(), &policies)) {
            Ok(()) => {
                self.rule_of = indexed.iter().map(|(i, p)| (p.cgroup_id, *i)).collect();
                self.applied = policies;
                self.dirty = false;
                self.error = None;
            }
            Err(e) => {
                crate::say!("picket: policy {}: {e}; the policy in force stays", self.path.display());
                self.error = Some(e.to_string());
            }
        }
    }

    /// Programs run from memory (memfd_create) in a container under an exec allowlist held by
    /// the fanotify rung: a memfd is on no mount the rung marks, so these are judged from the exec
    /// events instead, and killed in protect mode (just after their exec). The other rungs see
    /// them in the kernel (`/memfd:NAME` is on no allowlist). runc's copy of itself is spared.
    fn memfd_execs(
        &self,
        events: &[crate::agent::events::ProcessEvent],
        detector: &mut super::detect::Detector,
    ) -> Vec<Violation> {
        use crate::agent::events::ProcessEventKind;
        if self.enforcer.as_ref().is_none_or(|e| e.rung() != super::enforce::Rung::Fanotify) {
            return Vec::new();
        }
        let mut found = Vec::new();
        for event in events.iter().filter(|e| e.kind == ProcessEventKind::Exec && e.exe.starts_with("/memfd:")) {
            let Some(policy) = self.applied.iter().find(|p| p.cgroup_id == event.cgroup_id) else { continue };
            let allowed = policy.exec_allowlist.as_ref().is_none_or(|list| list.contains(&event.exe));
            if allowed || super::detect::runtime_self_copy(&event.exe, &detector.parent_exe(event.pid)) {
                continue;
            }
            let action = match policy.mode {
                Mode::Discover => super::enforce::AlertAction::Recorded,
                Mode::Monitor => super::enforce::AlertAction::Alerted,
                Mode::Protect if kill_memfd_program(event.pid) => super::enforce::AlertAction::Killed,
                // Gone already: it ran, and is reported as such.
                Mode::Protect => super::enforce::AlertAction::Alerted,
            };
            found.push(Violation {
                kind: super::enforce::AlertKind::Exec,
                action,
                pid: event.pid,
                uid: event.uid,
                cgroup_id: event.cgroup_id,
                timestamp_ns: event.timestamp_ns,
                read: false,
                write: false,
                comm: event.comm.clone(),
                path: event.exe.clone(),
                remote: String::new(),
                local: String::new(),
                rule: String::new(),
            });
        }
        found
    }

    /// Puts another policy in force (applied through the socket): checked against the rung
    /// first, so one it cannot hold leaves the policy in force as it was.
    fn replace(&mut self, path: std::path::PathBuf, file: PolicyFile) -> anyhow::Result<()> {
        if let Some(enforcer) = &self.enforcer {
            let everything: Vec<_> = file.resolve_all().into_iter().filter(|p| p.has_exec_or_file_rules()).collect();
            enforcer.check(&everything).map_err(|e| checked_error(&path, e))?;
        }
        self.path = path;
        self.file = file;
        self.dirty = true;
        self.error = None;
        Ok(())
    }

    /// The file's rules, then the promoted groups'.
    /// Whether the file's or a promoted group's rules name a peer group or a DNS name (without
    /// copying them, as `rules` does).
    fn names_peer_groups(&self) -> bool {
        self.file.names_peer_groups() || self.promoted.iter().any(super::policy::PolicyRule::names_peer_groups)
    }

    /// The running containers whose accept rules the inbound rung holds (protect mode), each
    /// with a process to find its network namespace by.
    fn inbound_wanted(
        &self,
        running: &[RunningContainer],
        resolver: &CgroupResolver,
    ) -> Vec<super::enforce::inbound::Wanted> {
        let rules = self.rules();
        running
            .iter()
            .filter_map(|c| {
                let index = c.cgroups.iter().find_map(|g| self.rule_of.get(g))?;
                let sources = rules.containers.get(*index)?.accept_sources()?;
                let policy = self.applied.iter().find(|p| c.cgroups.contains(&p.cgroup_id))?;
                let pid = resolver.process_in(&c.cgroups)?;
                Some(super::enforce::inbound::Wanted { pid, cgroup_id: policy.cgroup_id, mode: policy.mode, sources })
            })
            .collect()
    }

    fn rules(&self) -> PolicyFile {
        let mut rules = self.file.clone();
        rules.containers.extend(self.promoted.iter().cloned());
        rules
    }

    /// The groups of the running containers the file's own rules name (never promoted).
    fn policed_groups(&self, running: &[RunningContainer]) -> std::collections::HashSet<String> {
        running
            .iter()
            .filter(|c| !self.file.resolve(std::slice::from_ref(c)).is_empty())
            .filter_map(super::learning::group_key_of_running)
            .collect()
    }

    /// The cgroups whose policy judges what they do (monitor and protect).
    fn judged(&self) -> std::collections::HashSet<u64> {
        self.applied.iter().filter(|p| p.mode != Mode::Discover).map(|p| p.cgroup_id).collect()
    }

    /// SIGHUP: the file again. A bad file is reported and the policy in force stays.
    fn reload(&mut self) {
        match PolicyFile::load(&self.path) {
            Ok(file) => {
                self.file = file;
                self.dirty = true;
                self.error = None;
            }
            Err(e) => {
                crate::say!("picket: {e}; the policy in force stays");
                self.error = Some(e.to_string());
            }
        }
    }

    /// The policy rule behind a violation: `FILE containers[N] allowExec`, `... files /etc/`,
    /// `... connect: deny 10.0.0.0/8 port 22`.
    fn describe(&self, violation: &Violation) -> String {
        use super::enforce::AlertKind;
        let Some(&index) = self.rule_of.get(&violation.cgroup_id) else { return self.path.display().to_string() };
        let what = match violation.kind {
            AlertKind::Exec => "allowExec".to_string(),
            AlertKind::File => {
                let rules = self.rules();
                let rule = rules.containers.get(index);
                let prefix = rule.and_then(|r| {
                    r.files.iter().filter(|f| violation.path.starts_with(&f.prefix)).max_by_key(|f| f.prefix.len())
                });
                prefix.map_or_else(|| "files".to_string(), |f| format!("files {}", f.prefix))
            }
            AlertKind::Connect => format!("connect: {}", violation.rule),
            AlertKind::Accept => format!("accept: {} is not listed", violation.rule),
            AlertKind::Quarantined | AlertKind::Http | AlertKind::HttpIn | AlertKind::Dns | AlertKind::Tls => {
                violation.rule.clone()
            }
        };
        format!("{} containers[{index}] {what}", self.path.display())
    }

    fn summary(&self) -> Enforcement {
        let count =
            |mode: Mode| u32::try_from(self.applied.iter().filter(|p| p.mode == mode).count()).unwrap_or(u32::MAX);
        let mut rungs: Vec<&str> = self.enforcer.iter().map(|e| e.rung().as_str()).collect();
        if self.applied.iter().any(|p| p.connect.is_some()) {
            rungs.push(super::enforce::Rung::CgroupHooks.as_str());
        }
        let pending = self.enforcer.as_ref().map(ExecFileEnforcer::pending).unwrap_or_default();
        Enforcement {
            pending: u32::try_from(pending.len()).unwrap_or(u32::MAX),
            unjudged: self.enforcer.as_ref().map_or(0, ExecFileEnforcer::unjudged),
            rung: (!rungs.is_empty()).then(|| rungs.join("+")),
            policy: self.path.display().to_string(),
            discover: count(Mode::Discover),
            monitor: count(Mode::Monitor),
            protect: count(Mode::Protect),
            error: self.error.clone(),
        }
    }
}

/// Where the event lines go: standard output, the socket's readers, or both.
struct Outputs {
    stdout: Option<std::io::BufWriter<std::io::StdoutLock<'static>>>,
    server: Option<crate::agent::stream::EventServer>,
}

impl Outputs {
    fn emit(&mut self, event: &WireEvent) -> anyhow::Result<()> {
        let line = serde_json::to_string(event)?;
        if let Some(out) = &mut self.stdout {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        if let Some(server) = &self.server {
            match event {
                WireEvent::Alert { .. } => server.send_kept(line.into()),
                _ => server.send(line.into()),
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(out) = &mut self.stdout {
            out.flush()?;
        }
        Ok(())
    }
}

/// One batch from one of the kernel programs.
enum Batch {
    Process(Vec<crate::agent::events::ProcessEvent>),
    Network(Vec<crate::agent::net::NetEvent>),
    File(Vec<FileEvent>),
    /// What a rung found outside a policy, each with the policy rule that decided.
    Violations(Vec<(Violation, String)>),
}

/// Sends batches as event lines, each with the container it happened in.
struct Emitter {
    outputs: Outputs,
    resolver: CgroupResolver,
    names: ContainerNames,
    node: String,
    /// `--containers-only`: host events are not sent (alerts always are: they are a container's).
    containers_only: bool,
    /// The detection rules (none with `--no-rules`) and the process table every alert's
    /// ancestry comes from.
    detector: super::detect::Detector,
    /// For alert ids: when this agent started (Unix ms) and how many alerts it sent.
    started_ms: u64,
    alerts: u64,
    /// The containers events have come from, and whether one came for the first time since
    /// `take_arrivals` was last asked.
    containers_seen: std::collections::HashSet<String>,
    arrived: bool,
    /// What each group does, learned from what goes out (None: `--no-learn`).
    learning: Option<super::learning::Learning>,
    /// Groups the agent moves between modes itself (`--promote-after`, `--protect-after`).
    promotion: Option<super::promotion::Promotion>,
    /// The names containers resolved addresses to (from the DNS answers they received).
    dns_names: super::dns::DnsNames,
    /// Flows sent lately, so a busy service is told once per window.
    flow_folds: super::flows::FlowFolds,
    /// HTTP/2 prefaces waiting for their first request's headers.
    h2_assembly: super::flows::Http2Assembly,
    /// Open sockets' protocols, and the bytes of those that ended this period.
    flow_ledger: super::flow_bytes::FlowLedger,
    /// Containers a response cut off the network.
    quarantine: super::quarantine::Quarantine,
    /// The prefixes file events are sent for (those asked for and the rules'); of the
    /// write-opens learning alone watches, the containers' are sent and the host's dropped.
    sent_watches: Vec<(String, Watch)>,
}

impl Emitter {
    /// Each peer group's addresses and each DNS name's (as the node's containers resolved it),
    /// for rules naming peers by group or name.
    fn peer_addresses(&self) -> super::policy::PeerAddresses {
        let mut peers = self.names.peer_addresses();
        peers.extend(self.dns_names.addresses_by_name());
        peers
    }

    /// Sends what containers' connections' first bytes speak (`flow` events); the host's are not
    /// sent.
    fn send_flows(&mut self, batch: Vec<super::flows::FlowRecord>) -> anyhow::Result<u64> {
        use super::flows::FlowRecord;
        let now = std::time::Instant::now();
        let (mut ready, mut sent) = (Vec::new(), 0);
        for record in batch {
            match record {
                FlowRecord::First(first) => ready.extend(self.h2_assembly.take(first, now)),
                FlowRecord::End(end) => {
                    // A short connection's first bytes and its end often come in one batch: the
                    // socket is known to the ledger before its end is taken.
                    if !ready.is_empty() {
                        sent += self.send_first_bytes(std::mem::take(&mut ready), now)?;
                    }
                    let (names, resolver) = (&self.names, &mut self.resolver);
                    self.flow_ledger.ended(end, |cgroup| names.name(resolver.container_of(cgroup)));
                }
            }
        }
        Ok(sent + self.send_first_bytes(ready, now)?)
    }

    /// Sends the HTTP/2 prefaces that waited long enough and the connections that ended this
    /// period (`flow_ended`).
    fn send_flow_periods(&mut self) -> anyhow::Result<u64> {
        let now = std::time::Instant::now();
        let late = self.h2_assembly.expired(now);
        let mut sent = self.send_first_bytes(late, now)?;
        for tally in self.flow_ledger.take_tallies() {
            self.outputs.emit(&WireEvent::FlowEnded {
                v: super::wire::WIRE_VERSION,
                node: self.node.clone(),
                flow: tally.flow,
                container: Some(tally.container),
                connections: tally.connections,
                sent: tally.sent,
                received: tally.received,
            })?;
            sent += 1;
        }
        self.outputs.flush()?;
        Ok(sent)
    }

    fn send_first_bytes(
        &mut self,
        batch: Vec<super::flows::FirstBytes>,
        now: std::time::Instant,
    ) -> anyhow::Result<u64> {
        let mut sent = 0;
        for first in batch {
            let Some(container) = self.names.name(self.resolver.container_of(first.cgroup_id)) else { continue };
            let flow = first.identify();
            self.flow_ledger.opened(&first, &flow);
            let Some(folded) = self.flow_folds.admit(&container.id, &flow, now) else { continue };
            let line = WireEvent::Flow {
                v: super::wire::WIRE_VERSION,
                node: self.node.clone(),
                flow,
                container: Some(container),
                folded,
            };
            self.outputs.emit(&line)?;
            sent += 1;
        }
        self.outputs.flush()?;
        Ok(sent)
    }

    /// Takes DNS answers: what each container resolved, sent as `dns` events (learning and
    /// the names on later connects). Returns how many went out and whether an address is new
    /// for its name.
    fn send_dns(&mut self, datagrams: Vec<super::dns::DnsDatagram>) -> anyhow::Result<(u64, bool)> {
        let (mut sent, mut new) = (0, false);
        for datagram in datagrams {
            let Some(container) = self.names.name(self.resolver.container_of(datagram.cgroup_id)) else { continue };
            let Some(answer) = super::dns::read_answer(&datagram.payload) else { continue };
            new |= self.dns_names.learn(&container.id, &answer);
            let line = WireEvent::Dns {
                v: super::wire::WIRE_VERSION,
                node: self.node.clone(),
                server: datagram.server,
                answer,
                container: Some(container),
            };
            if let Some(learning) = self.learning.as_mut() {
                learning.take(&line, Some(datagram.cgroup_id));
            }
            self.outputs.emit(&line)?;
            sent += 1;
        }
        self.outputs.flush()?;
        Ok((sent, new))
    }

    /// Whether a file event is one of those asked for (not only one learning watches).
    fn file_asked(&self, event: &FileEvent) -> bool {
        let writes = event.write || event.create || event.truncate;
        event.truncated_path
            || self
                .sent_watches
                .iter()
                .any(|(prefix, watch)| event.path.starts_with(prefix.as_str()) && (*watch == Watch::Any || writes))
    }

    /// Returns how many events went out.
    fn send(&mut self, batch: Batch) -> anyhow::Result<u64> {
        self.resolver.new_batch();
        let node = self.node.clone();
        let sent = match batch {
            Batch::Process(events) => self.send_each(
                events,
                true,
                |e| e.cgroup_id,
                |d, e, c| d.on_process(e, c),
                |e, c| WireEvent::process(&node, e, c),
            )?,
            Batch::Network(events) => self.send_each(
                events,
                true,
                |e| e.cgroup_id,
                |d, e, c| d.on_network(e, c),
                |e, c| WireEvent::network(&node, e, c),
            )?,
            Batch::File(events) => {
                // Write-opens learning watches go out from containers (what a group writes is
                // part of its stream, and `policy test` replays it); the host's are dropped.
                let events: Vec<FileEvent> = events
                    .into_iter()
                    .filter(|e| self.file_asked(e) || self.resolver.container_of(e.cgroup_id).is_some())
                    .collect();
                self.send_each(
                    events,
                    true,
                    |e| e.cgroup_id,
                    |d, e, c| d.on_file(e, c),
                    |e, c| WireEvent::file(&node, e, c),
                )?
            }
            Batch::Violations(violations) => {
                let mut sent = 0;
                for (violation, policy) in violations {
                    let container = self.names.name(self.resolver.container_of(violation.cgroup_id));
                    if let Some(alert) = self.detector.on_violation(&violation, container.as_ref(), policy) {
                        sent += 1;
                        self.alert(alert, container)?;
                    }
                }
                sent
            }
        };
        self.outputs.flush()?;
        Ok(sent)
    }

    fn send_each<E>(
        &mut self,
        events: Vec<E>,
        host_filtered: bool,
        cgroup_of: impl Fn(&E) -> u64,
        detect: impl Fn(&mut super::detect::Detector, &E, Option<&crate::agent::attribution::ContainerRef>) -> Vec<Alert>,
        wire: impl Fn(E, Option<crate::agent::attribution::ContainerRef>) -> WireEvent,
    ) -> anyhow::Result<u64> {
        let mut sent = 0;
        for event in events {
            let container = self.names.name(self.resolver.container_of(cgroup_of(&event)));
            if let Some(c) = &container
                && !self.containers_seen.contains(&c.id)
            {
                // Bounded: a node's churn of short-lived containers must not grow it for ever.
                if self.containers_seen.len() >= 65536 {
                    self.containers_seen.clear();
                }
                self.containers_seen.insert(c.id.clone());
                self.arrived = true;
            }
            // Rules see every event, the host's too, whatever is printed.
            let detections = detect(&mut self.detector, &event, container.as_ref());
            let cgroup = cgroup_of(&event);
            let mut line = wire(event, container.clone());
            if let WireEvent::Network { event, peer, fqdn, .. } = &mut line {
                *peer = self.names.group_of_address(event.remote.0);
                *fqdn =
                    container.as_ref().and_then(|c| self.dns_names.name_of(&c.id, event.remote.0)).map(String::from);
            }
            // What a detection rule flags is never learned as normal.
            if let Some(learning) = self.learning.as_mut()
                && container.is_some()
                && detections.is_empty()
            {
                // A probe's exec is known by its argv: the container's probes as its sources say
                // them now (a healthcheck is read a moment after the container starts).
                if let (WireEvent::Process { event, .. }, Some(c)) = (&line, &container)
                    && event.kind == super::events::ProcessEventKind::Exec
                {
                    learning.set_probes_of(&c.id, self.names.get(&c.id).map(|n| n.probes).unwrap_or_default());
                }
                learning.take(&line, Some(cgroup));
            }
            if !(host_filtered && self.containers_only && container.is_none()) {
                sent += 1;
                self.outputs.emit(&line)?;
            }
            for detection in detections {
                sent += 1;
                self.alert(detection, container.clone())?;
            }
        }
        Ok(sent)
    }

    /// Sends an alert, stamped with its id and wall-clock time.
    fn alert(
        &mut self,
        mut alert: Alert,
        container: Option<crate::agent::attribution::ContainerRef>,
    ) -> anyhow::Result<()> {
        self.alerts += 1;
        alert.id = format!("{}-{}-{}", self.node, self.started_ms, self.alerts);
        alert.at_unix_ms = crate::agent::events::wall_ms_of_boottime(alert.event.timestamp_ns);
        if let (Some(promotion), Some(group)) =
            (self.promotion.as_mut(), container.as_ref().and_then(super::learning::group_of))
            && alert.rule.starts_with("policy-")
        {
            promotion.violation(&group.key, &alert);
        }
        let line = WireEvent::alert(&self.node, alert, container);
        if let Some(learning) = self.learning.as_mut() {
            learning.take(&line, None);
        }
        self.outputs.emit(&line)
    }

    /// Whether a container's first events went out since the last call.
    fn take_arrivals(&mut self) -> bool {
        std::mem::take(&mut self.arrived)
    }

    /// Alerts whose fold window closed with repeats in it.
    fn send_folds(&mut self) -> anyhow::Result<u64> {
        let folds = self.detector.expired_folds();
        let count = folds.len() as u64;
        for (detection, container) in folds {
            self.alert(detection, container)?;
        }
        Ok(count)
    }
}

/// Sends process events, and what the policy in force finds among them that its rung cannot see.
fn send_processes(
    out: &mut Emitter,
    enforcing: Option<&Enforcing>,
    batch: Vec<crate::agent::events::ProcessEvent>,
) -> anyhow::Result<u64> {
    let from_memory = enforcing.map(|e| e.memfd_execs(&batch, &mut out.detector)).unwrap_or_default();
    let sent = out.send(Batch::Process(batch))?;
    Ok(sent + out.send(Batch::Violations(described(enforcing, from_memory)))?)
}

/// Sends what the sensors' rings hold now, without waiting: execs first (for the ancestry of
/// what follows), then connects and opens.
fn send_waiting(
    out: &mut Emitter,
    enforcing: Option<&Enforcing>,
    sensor: &mut ProcessSensor,
    net: &mut NetSensor,
    network: &NetworkControl,
    files: Option<&mut FileSensor>,
) -> anyhow::Result<u64> {
    let mut sent = send_processes(out, enforcing, sensor.remaining())?;
    let connects = net.remaining();
    let violations = described(enforcing, network_violations(&connects, network));
    sent += out.send(Batch::Network(connects))?;
    sent += out.send(Batch::Violations(violations))?;
    sent += out.send(Batch::File(files.map(FileSensor::remaining).unwrap_or_default()))?;
    Ok(sent)
}

/// Kills `pid` if it still runs a program from memory (not a process that took its pid since).
fn kill_memfd_program(pid: u32) -> bool {
    let running =
        std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe.to_string_lossy().starts_with("/memfd:"));
    let Ok(raw) = i32::try_from(pid) else { return false };
    running && nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), nix::sys::signal::Signal::SIGKILL).is_ok()
}

/// Brings protect's exec-time refusal, the policy's rungs and protect's network refusals up to
/// date with the containers running now. An exec-time refusal that fails is stopped (deniable
/// detections are then killed after exec).
fn police(
    out: &mut Emitter,
    guard: &mut Option<super::enforce::fanotify::FanotifyEnforcer>,
    enforcing: &mut Option<Enforcing>,
    net: &mut NetSensor,
    network: &mut NetworkControl,
    network_guard: bool,
) {
    if let Some(refusing) = guard.as_mut()
        && let Err(e) = refusing.guard_containers(guarded_containers(&mut out.resolver, &out.names))
    {
        crate::say!("picket: exec-time refusal stopped ({e}); deniable detections are killed after exec");
        *guard = None;
    }
    if let Some(enforcing) = enforcing.as_mut() {
        let running = running_containers(&mut out.resolver, &out.names);
        enforcing.refresh(&running, &out.peer_addresses(), net, network);
        if let Some(learning) = out.learning.as_mut() {
            learning.set_judged(enforcing.judged());
        }
        let wanted = enforcing.inbound_wanted(&running, &out.resolver);
        // Said when it first fails (or fails anew), not at every look at the containers.
        if let Err(e) = network.inbound.apply(&wanted)
            && network.inbound.first_time(&e.to_string())
        {
            crate::say!("picket: inbound connections are alerted, not refused ({e})");
        }
    }
    if network_guard && let Err(e) = network.guard_cgroups(net.programs_mut(), guard_masks(out, network)) {
        crate::say!("picket: protect's network refusals: {e}");
    }
    let running = out.resolver.containers();
    let cut = out.quarantine.cgroups(running.iter().map(|(id, found)| (id.as_str(), found.cgroups.as_slice())));
    if let Err(e) = network.set_quarantined(net.programs_mut(), cut) {
        crate::say!("picket: quarantine: {e}");
    }
}

/// Loads the sensors (and the enforcer, with a policy), then streams events to standard output
/// and the socket until the duration ends or SIGINT/SIGTERM arrives.
pub async fn run(options: RunOptions) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    crate::agent::files::validate_prefixes(&options.watch)?;
    let mut sensor = ProcessSensor::start()?;
    let mut net = NetSensor::start()?;
    // Each container connection's first bytes say its protocol; without them, flows are unnamed.
    let mut flows = match super::flows::FlowSensor::start() {
        Ok(flows) => Some(flows),
        Err(e) => {
            crate::say!("picket: connections' protocols are not identified ({e})");
            None
        }
    };
    // DNS answers name the addresses containers connect to; without them, peers stay addresses.
    let mut dns = match super::dns::DnsSensor::start() {
        Ok(dns) => Some(dns),
        Err(e) => {
            crate::say!("picket: DNS answers are not read ({e}); peers are named by address only");
            None
        }
    };
    // The prefixes asked for, and those the rules need (writes only where only writes matter).
    // Each under its other names too (`/var/run/` is `/run/` in most images).
    let mut watches: Vec<(String, Watch)> = Vec::new();
    let asked = options.watch.iter().map(|p| (p.clone(), false));
    let rules = options.rules.as_ref().map(crate::rules::RuleSet::watches).unwrap_or_default();
    for (given, writes_only) in asked.chain(rules) {
        for prefix in crate::rules::path_aliases(&given) {
            let watch = if writes_only { Watch::Writes } else { Watch::Any };
            match watches.iter_mut().find(|(p, _)| *p == prefix) {
                Some((_, existing)) if watch == Watch::Any => *existing = Watch::Any,
                Some(_) => {}
                None => watches.push((prefix, watch)),
            }
        }
    }
    let sent_watches = watches.clone();
    let learning = match (&options.state_dir, options.learn) {
        (Some(dir), true) => match super::learning::Learning::start(dir.clone()) {
            Ok((learning, note)) => {
                if let Some(note) = note {
                    crate::say!("picket: {note}");
                }
                crate::say!("picket: learning what each group does, kept in {}", dir.display());
                // Every container's write-opens, to learn where each group writes (the host's
                // are left in the kernel).
                if !watches.iter().any(|(p, _)| p == "/") {
                    watches.push(("/".to_string(), Watch::ContainerWrites));
                }
                Some(learning)
            }
            Err(e) => {
                crate::say!("picket: {e}; nothing is learned");
                None
            }
        },
        _ => None,
    };
    // Not started without a prefix: its tracepoint would run on every syscall for nothing.
    let mut files = if watches.is_empty() { None } else { Some(FileSensor::start_with(&watches)?) };
    // The syscalls each group makes, for seccomp profiles: counted only while learning.
    let mut syscall_sensor = match learning.is_some() {
        true => match super::syscalls::SyscallSensor::start() {
            Ok(sensor) => Some(sensor),
            Err(e) => {
                crate::say!("picket: {e}; the syscalls groups make are not learned (no seccomp profiles)");
                None
            }
        },
        false => None,
    };
    let mut network = NetworkControl::default();
    let mut enforcing = match options.policy {
        Some((path, file)) => Some(start_enforcing(path, file, options.enforce_with)?),
        None => match applied_policy(&options.state_dir) {
            Some((path, file)) => {
                crate::say!("picket: the policy applied last ({}) is in force again", path.display());
                Some(start_enforcing(path, file, options.enforce_with)?)
            }
            None => None,
        },
    };
    let server = match &options.socket {
        Some(path) => {
            let mut server = crate::agent::stream::EventServer::bind(path, crate::agent::stream::BACKLOG)?;
            if let Some(addr) = options.listen {
                server.listen_tcp(addr).await?;
            }
            Some(server)
        }
        None => None,
    };
    let stdout = (!options.quiet).then(|| std::io::BufWriter::new(std::io::stdout().lock()));
    let (quarantine, note) = super::quarantine::Quarantine::load(options.state_dir.as_deref());
    if let Some(note) = note {
        crate::say!("picket: {note}");
    }
    let node = node_name();
    let names = with_cluster_names(ContainerNames::start(crate::engine::candidate_sockets(&[]))).await;
    // Names before the first event: policy rules name containers, and an alert on a container
    // that was already running should say which one it is (the engines answer in milliseconds;
    // one that does not costs at most this wait).
    names.ready(Duration::from_secs(5)).await;
    let mut out = Emitter {
        outputs: Outputs { stdout, server },
        resolver: CgroupResolver::new(),
        names,
        node: node.clone(),
        containers_only: options.containers_only,
        detector: super::detect::Detector::new(options.rules.clone().unwrap_or_default(), options.protect),
        started_ms: crate::agent::events::wall_ms_of_boottime(crate::agent::events::boottime_ns()),
        alerts: 0,
        containers_seen: Default::default(),
        arrived: false,
        learning,
        sent_watches,
        promotion: None,
        dns_names: Default::default(),
        flow_folds: Default::default(),
        h2_assembly: Default::default(),
        flow_ledger: Default::default(),
        quarantine,
    };
    // Modes are kept whenever the agent learns and keeps state, so an operator can set one
    // (`picket policy mode`) even when the agent promotes nothing by itself.
    if let (Some(dir), true) = (&options.state_dir, out.learning.is_some()) {
        let promotion = super::promotion::Promotion::load(dir, options.promote_after, options.protect_after);
        if !promotion.groups.is_empty() {
            crate::say!("picket: {} groups promoted earlier are in their modes again", promotion.groups.len());
            if let Err(e) = put_promoted(&promotion, &mut enforcing, dir, options.enforce_with) {
                crate::say!("picket: the promoted groups' policies: {e}");
            }
        }
        out.promotion = Some(promotion);
    }
    if options.rules.is_some() {
        let detector = &out.detector;
        let protect = match (options.protect.containers, options.protect.host) {
            (true, true) => "; protect: containers and host",
            (true, false) => "; protect: containers",
            _ => "",
        };
        crate::say!("picket: {} detection rules{protect}", detector.rules().rules.len());
    }
    // Protect mode refuses at exec time, where fanotify allows, what a file alone shows
    // (drift, package managers, miners by name); the rest is killed just after its exec.
    let (guard_tx, mut guard_rx) = tokio::sync::mpsc::channel(1024);
    let mut guard = match options.protect.containers {
        true => {
            let rules = super::detect::exec_time_rules(out.detector.rules());
            match super::enforce::fanotify::FanotifyEnforcer::start() {
                Ok(mut enforcer) => {
                    enforcer.guard(rules, guard_tx)?;
                    crate::say!("picket: protect refuses execs at exec time (fanotify)");
                    Some(enforcer)
                }
                Err(e) => {
                    crate::say!("picket: no exec-time refusal ({e}); deniable detections are killed just after exec");
                    None
                }
            }
        }
        _ => None,
    };
    if let Some(guard) = guard.as_mut()
        && let Err(e) = guard.guard_containers(guarded_containers(&mut out.resolver, &out.names))
    {
        crate::say!("picket: exec-time refusal: {e}");
    }
    if let (Some(guard), true) = (guard.as_mut(), options.protect.host) {
        let allow = super::enforce::fanotify::HostAllowlist::standard();
        match guard.guard_host(allow) {
            Ok(mounts) => crate::say!(
                "picket: protect on the host: execs on its {mounts} mounts are judged (never this agent, its parents, init or the container runtimes); stopping the agent lets everything run"
            ),
            Err(e) => crate::say!(
                "picket: protect on the host refuses nothing at exec time ({e}); deniable detections are killed after exec"
            ),
        }
    }
    // And refuses, in the connect hooks, the deniable connect rules' destinations.
    let mut network_guard = false;
    if options.protect.containers {
        let rules = super::detect::connect_guard_rules(out.detector.rules());
        if !rules.is_empty() {
            let left_out = network.set_guard(net.programs_mut(), rules)?;
            for rule in &left_out {
                crate::say!(
                    "picket: {} ({}) is not refused in the kernel (no room); its processes are killed",
                    rule.rule,
                    rule.destination
                );
            }
            out.detector.set_network_guard(network.guard_rules().iter().map(|r| r.rule.clone()).collect());
            network_guard = true;
            network.guard_cgroups(net.programs_mut(), guard_masks(&mut out, &network))?;
            crate::say!("picket: protect refuses deniable connects in the kernel (cgroup hooks)");
        }
    }
    // A container's first events: police it now, and again while its name may still be coming.
    let mut arrival_checks: Option<(tokio::time::Instant, u32)> = None;
    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut events = 0u64;
    let mut stats_every = tokio::time::interval(STATS_EVERY);
    // SIGHUP reloads the policy (none in force: nothing to reload).
    let mut hangup =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let mut asks = out.outputs.server.as_mut().and_then(crate::agent::stream::EventServer::take_asks);
    let (cluster_tx, mut from_cluster) = tokio::sync::mpsc::channel(4);
    let mut cluster_client = None;
    let _watching = match &options.cluster_policies {
        Some(context) => {
            let (client, name) = crate::cluster::client_for(context.as_deref())
                .await
                .context("cannot reach the cluster whose policies this agent enforces")?;
            crate::say!("picket: enforcing the PicketPolicies of context {name} (watched)");
            cluster_client = Some(client.clone());
            Some(AbortOnDrop(tokio::spawn(super::cluster_policies::watch(client, name, cluster_tx))))
        }
        None => None,
    };
    // What this node learned goes to the cluster too (for `picket policy learn --cluster`).
    let mut publisher = match (cluster_client, out.learning.is_some()) {
        (Some(client), true) => Some(Publisher::new(client, node.clone())),
        _ => None,
    };
    let mut learning_error = false;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let mut sensors = vec!["process".to_string(), "network".to_string()];
    if files.is_some() {
        sensors.push("file".to_string());
    }
    if syscall_sensor.is_some() {
        sensors.push("syscalls".to_string());
    }
    let state = |events: u64, dropped: u64, malformed: u64, enforcing: Option<&Enforcing>| AgentStats {
        events,
        dropped,
        malformed,
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s: started.elapsed().as_secs(),
        sensors: sensors.clone(),
        enforcement: enforcing.map(Enforcing::summary),
    };
    loop {
        let until_deadline = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let alerts = async {
            match enforcing.as_mut().and_then(|e| e.enforcer.as_mut()) {
                Some(enforcer) => enforcer.next_alerts().await,
                None => std::future::pending().await,
            }
        };
        let until_arrival_check = async {
            match arrival_checks {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let asked = async {
            match asks.as_mut() {
                Some(asks) => asks.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            batch = sensor.next_batch() => {
                events += send_processes(&mut out, enforcing.as_ref(), batch?)?;
                if out.take_arrivals() && (guard.is_some() || enforcing.is_some() || !out.quarantine.is_empty()) {
                    police(&mut out, &mut guard, &mut enforcing, &mut net, &mut network, network_guard);
                    arrival_checks = Some((tokio::time::Instant::now() + ARRIVAL_RECHECK, ARRIVAL_RECHECKS));
                }
            }
            _ = until_arrival_check => {
                police(&mut out, &mut guard, &mut enforcing, &mut net, &mut network, network_guard);
                arrival_checks = match arrival_checks {
                    Some((_, left)) if left > 1 => Some((tokio::time::Instant::now() + ARRIVAL_RECHECK, left - 1)),
                    _ => None,
                };
            }
            batch = net.next_batch() => {
                let batch = batch?;
                // The execs before these connects first, so that a process that connected and
                // exited at once still has its ancestry (the rings are read in any order).
                events += send_processes(&mut out, enforcing.as_ref(), sensor.remaining())?;
                let mut violations = network_violations(&batch, &network);
                violations.extend(accept_violations(&batch, enforcing.as_ref()));
                let violations = described(enforcing.as_ref(), violations);
                events += out.send(Batch::Network(batch))?;
                events += out.send(Batch::Violations(violations))?;
            }
            refused = network.inbound.next_batch() => {
                let violations = described(enforcing.as_ref(), inbound_violations(&refused));
                events += out.send(Batch::Violations(violations))?;
            }
            batch = network.l7.next_batch() => {
                let violations = described(enforcing.as_ref(), l7_violations(&batch?, &network));
                events += send_processes(&mut out, enforcing.as_ref(), sensor.remaining())?;
                events += out.send(Batch::Violations(violations))?;
            }
            batch = next_flows(&mut flows) => events += out.send_flows(batch?)?,
            batch = next_dns(&mut dns) => {
                let (sent, new) = out.send_dns(batch?)?;
                events += sent;
                // A name a policy allows may have new addresses: they are put in at once.
                if new && enforcing.as_ref().is_some_and(Enforcing::names_peer_groups) {
                    police(&mut out, &mut guard, &mut enforcing, &mut net, &mut network, network_guard);
                }
            }
            batch = next_files(&mut files) => {
                let batch = batch?;
                events += send_processes(&mut out, enforcing.as_ref(), sensor.remaining())?;
                events += out.send(Batch::File(batch))?;
            }
            batch = alerts => events += out.send(Batch::Violations(described(enforcing.as_ref(), batch?)))?,
            Some((detection, cgroup_id)) = guard_rx.recv() => {
                let container = out.names.name(out.resolver.container_of(cgroup_id));
                out.alert(detection, container)?;
                out.outputs.flush()?;
                events += 1;
            }
            _ = stats_every.tick() => {
                // Whatever a busy ring kept the loop from reading goes out before the state line:
                // no event waits longer than a state period, however the loop's turns fell.
                events += send_waiting(&mut out, enforcing.as_ref(), &mut sensor, &mut net, &network, files.as_mut())?;
                events += out.send_folds()?;
                events += out.send_flow_periods()?;
                police(&mut out, &mut guard, &mut enforcing, &mut net, &mut network, network_guard);
                let (dropped, malformed) = counters(&sensor, &net, files.as_ref(), enforcing.as_ref().and_then(|e| e.enforcer.as_ref()), guard.as_ref())?;
                let stats = WireEvent::stats(&node, state(events, dropped, malformed, enforcing.as_ref()));
                out.outputs.emit(&stats)?;
                if let Some(server) = &out.outputs.server {
                    server.set_greeting(serde_json::to_string(&stats)?.into());
                }
                out.outputs.flush()?;
                if let Some(syscalls) = syscall_sensor.as_mut() {
                    learn_syscalls(&mut out, syscalls);
                }
                if let Some(learning) = out.learning.as_mut() {
                    learning.take_mapped(|c| out.names.name(Some(c)));
                }
                if let Some(learning) = out.learning.as_mut()
                    && let Err(e) = learning.save_if_changed()
                    && !std::mem::replace(&mut learning_error, true)
                {
                    crate::say!("picket: {e}; learning goes on in memory");
                }
                if let (Some(publisher), Some(learning)) = (publisher.as_mut(), out.learning.as_ref()) {
                    publisher.maybe(learning);
                }
                if out.promotion.is_some() && promote(&mut out, &mut enforcing, options.state_dir.as_deref(), options.enforce_with) {
                    police(&mut out, &mut guard, &mut enforcing, &mut net, &mut network, network_guard);
                }
            }
            _ = hangup.recv() => {
                if let Some(enforcing) = enforcing.as_mut() {
                    enforcing.reload();
                    enforcing.refresh(&running_containers(&mut out.resolver, &out.names), &out.peer_addresses(), &mut net, &mut network);
                }
            }
            Some(policies) = from_cluster.recv() => {
                for left in &policies.left_out {
                    crate::say!("picket: left out: {left}");
                }
                let Some(dir) = options.state_dir.as_ref() else { continue };
                let path = dir.join("cluster-policy.yaml");
                match apply_text(&policies.yaml, path, &mut enforcing, options.enforce_with) {
                    Ok(()) => {
                        crate::say!("picket: {} cluster policies in force ({} left out)", policies.count, policies.left_out.len());
                        police(&mut out, &mut guard, &mut enforcing, &mut net, &mut network, network_guard);
                    }
                    Err(e) => crate::say!("picket: the cluster's policies: {e}; the policy in force stays"),
                }
                if let (Some(e), Some(left)) = (enforcing.as_mut(), policies.left_out.first()) {
                    e.error = Some(format!("left out: {left}"));
                }
            }
            Some(ask) = asked => {
                let kind = ask.request.reply_kind();
                let quarantining = matches!(ask.request, super::wire::Request::Quarantine { .. } | super::wire::Request::Release { .. });
                let reply = answer(ask.request, &mut enforcing, &mut out, &options.state_dir, options.enforce_with);
                if quarantining || matches!(enforcing.as_ref(), Some(e) if e.dirty) {
                    police(&mut out, &mut guard, &mut enforcing, &mut net, &mut network, network_guard);
                }
                let _ = ask.reply.send(reply.finish(enforcing.as_ref(), kind));
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = until_deadline => break,
        }
    }
    if let Some(learning) = out.learning.as_mut()
        && let Err(e) = learning.save_if_changed()
    {
        crate::say!("picket: {e}");
    }
    if let (Some(publisher), Some(learning)) = (publisher.as_mut(), out.learning.as_ref()) {
        publisher.last(learning).await;
    }
    // What the rings still hold goes out before the last state line.
    events += send_waiting(&mut out, enforcing.as_ref(), &mut sensor, &mut net, &network, files.as_mut())?;
    events += out.send_flow_periods()?;
    let remaining = enforcing.as_mut().and_then(|e| e.enforcer.as_mut()).map(ExecFileEnforcer::remaining);
    events += out.send(Batch::Violations(described(enforcing.as_ref(), remaining.unwrap_or_default())))?;
    let (dropped, malformed) =
        counters(&sensor, &net, files.as_ref(), enforcing.as_ref().and_then(|e| e.enforcer.as_ref()), guard.as_ref())?;
    out.outputs.emit(&WireEvent::stats(&node, state(events, dropped, malformed, enforcing.as_ref())))?;
    out.outputs.flush()?;
    if dropped > 0 {
        crate::say!("picket: {dropped} events were dropped: the ring buffer was full");
    }
    Ok(())
}

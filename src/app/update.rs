//! Pure state transitions: `update(state, action) -> effects`. No I/O, no tokio.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::action::{Action, Command, Effect, PluginRun};
use crate::app::state::{AppState, BenchKind, Confirmation, FindingSort, Loadable, Mode, PaneId, TOP_PANES, Toast};
use crate::config::keymap::KeySpec;

const TOAST_INFO: Duration = Duration::from_secs(4);
const TOAST_ERROR: Duration = Duration::from_secs(8);

/// A `:` command: its name, aliases, and what it does.
pub struct PromptCommand {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub help: &'static str,
}

pub const PROMPT_COMMANDS: &[PromptCommand] = &[
    PromptCommand { name: "overview", aliases: &["ov", "home", "local"], help: "Local host overview" },
    PromptCommand { name: "containers", aliases: &["co", "ctr", "ps"], help: "Containers of local engines" },
    PromptCommand { name: "images", aliases: &["img", "im"], help: "Engine images and stored SBOMs" },
    PromptCommand { name: "registries", aliases: &["reg", "registry"], help: "Registries picket crawls, their tags" },
    PromptCommand {
        name: "behaviour",
        aliases: &["beh", "behavior", "learned"],
        help: "What the agent learned each group of containers does",
    },
    PromptCommand {
        name: "policies",
        aliases: &["pol", "policy"],
        help: "Policies in force, their history, the YAML editor",
    },
    PromptCommand {
        name: "alerts",
        aliases: &["al", "alert", "alarms"],
        help: "Alerts from the agents, folded; triage them",
    },
    PromptCommand { name: "risk", aliases: &["ri", "score"], help: "Workloads ranked by risk score, explained" },
    PromptCommand {
        name: "network",
        aliases: &["net", "netpol", "firewall"],
        help: "Connections the agents see: peers, protocols, L7 detail, verdicts; m for the map",
    },
    PromptCommand {
        name: "admission",
        aliases: &["adm", "webhook"],
        help: "Admission decisions, and the rules over running workloads",
    },
    PromptCommand { name: "compliance", aliases: &["bench", "cis"], help: "Benchmarks: 1 docker, 2 node, 3 cluster" },
    PromptCommand {
        name: "contexts",
        aliases: &["ctx", "context"],
        help: "Contexts; ':ctx NAME' switches, ':ctx a,b' compares",
    },
    PromptCommand { name: "workloads", aliases: &["wl", "workload"], help: "Workloads of the context, by risk" },
    PromptCommand { name: "nodes", aliases: &["no", "node", "agent"], help: "Node agent: processes, events, start it" },
    PromptCommand { name: "refresh", aliases: &["r"], help: "Reload everything shown" },
    PromptCommand { name: "help", aliases: &["h", "?"], help: "Show help" },
    PromptCommand { name: "quit", aliases: &["q", "q!", "exit"], help: "Quit picket" },
];

/// Start-up: what every pane needs, and the connection to the local agent (for the header).
pub fn startup(state: &mut AppState) -> Vec<Effect> {
    let mut effects = initial_effects();
    effects.extend(nodes::connect(state, Duration::ZERO));
    effects
}

/// The effects to run at start-up and on refresh.
pub fn initial_effects() -> Vec<Effect> {
    vec![
        Effect::LoadHostFacts,
        Effect::LoadEngines,
        Effect::LoadContexts,
        Effect::LoadStoreSize,
        Effect::LoadStoredSboms,
        Effect::LoadVulnDb,
    ]
}

pub fn update(state: &mut AppState, action: Action) -> Vec<Effect> {
    match action {
        Action::Key(key) => on_key(state, key),
        Action::Resize { height, .. } => {
            state.page_size = usize::from(height.saturating_sub(8)).max(1);
            vec![]
        }
        Action::HostFacts(facts) => {
            state.host = Loadable::Ready(*facts);
            vec![]
        }
        Action::Engines(probes) => containers::engines(state, probes),
        Action::Contexts(result) => contexts::listed(state, result),
        Action::ContainerDetail { request, result } => containers::detail(state, request, result),
        Action::StoredSboms(result) => images::stored(state, result),
        Action::ScanProgress { request, progress } => images::progress(state, request, progress),
        Action::ScanFinished { request, name, result } => images::scan_finished(state, request, name, result),
        Action::SbomLoaded { request, result } => images::sbom_loaded(state, request, result),
        Action::StoreSize(result) => match result {
            Ok(size) => {
                state.store.size = Some(size);
                vec![]
            }
            Err(err) => toast(state, err, true),
        },
        Action::AlertsNotKept(err) => toast(state, format!("alerts not kept: {err}"), true),
        Action::PluginFinished { name, result } => match result {
            Ok(msg) => toast(state, format!("{name}: {msg}"), false),
            Err(msg) => toast(state, format!("{name}: {msg}"), true),
        },
        Action::VulnDb(result) => {
            state.vulndb = match result {
                Ok(summary) => Loadable::Ready(summary),
                Err(err) => Loadable::Failed(err),
            };
            vec![]
        }
        Action::FindingsLoaded { request, result } => {
            findings::loaded(state, request, result);
            vec![]
        }
        Action::FindingAccepted { id, result } => findings::accepted(state, id, result),
        Action::BenchFinished { request, kind, result } => compliance::finished(state, request, kind, result),
        Action::InventoryLoaded { request, result } => {
            if !compare::loaded(state, request, &result) {
                workloads::loaded(state, request, result);
            }
            vec![]
        }
        Action::AgentLines { conn, events, unreadable } => {
            alerts::lines(state, &events);
            network::lines(state, &events, crate::alert::now_unix_ms());
            nodes::lines(state, conn, events, unreadable);
            vec![]
        }
        Action::AgentDown { conn, reason } => {
            nodes::down(state, conn, reason);
            vec![]
        }
        Action::ClusterAgentsListed { conn, result } => {
            nodes::cluster_listed(state, conn, result);
            vec![]
        }
        Action::ClusterAgentDown { conn, pod, reason } => {
            nodes::cluster_down(state, conn, pod, reason);
            vec![]
        }
        Action::AgentStarted(result) => nodes::started(state, result),
        Action::AgentDeployed { context, result } => nodes::deployed(state, context, result),
        Action::AlertsLoaded { request, result } => {
            alerts::loaded(state, request, result);
            vec![]
        }
        Action::AlertDetailLoaded { id, result } => {
            alerts::detail_loaded(state, &id, result);
            vec![]
        }
        Action::FalsePositiveProposed(result) => alerts::proposed(state, result),
        Action::AlertTriaged(result) => alerts::triaged(state, result),
        Action::RiskLoaded { request, result } => {
            risk::loaded(state, request, result);
            vec![]
        }
        Action::ForensicsDone(result) => match result {
            Ok(said) => toast(state, said, false),
            Err(e) => toast(state, e, true),
        },
        Action::SinkStatus(status) => {
            if let Some(alerts) = state.alerts.as_mut() {
                alerts.sinks = status;
            }
            vec![]
        }
        Action::AdmissionLoaded { request, result } => {
            admission::loaded(state, request, result);
            vec![]
        }
        Action::BaselinesLoaded { request, result } => {
            behaviour::loaded(state, request, result);
            vec![]
        }
        Action::ModesLoaded { request, result } => {
            behaviour::modes_loaded(state, request, result);
            vec![]
        }
        Action::GroupChanged { result } => behaviour::changed(state, result),
        Action::RegistriesLoaded { request, result } => {
            registries::loaded(state, request, result);
            vec![]
        }
        Action::ClusterRegistriesLoaded { request, result } => {
            registries::cluster_loaded(state, request, result);
            vec![]
        }
        Action::RegistryTagsLoaded { request, result } => {
            registries::tags_loaded(state, request, result);
            vec![]
        }
        Action::CrawlProgress { request, name, progress } => {
            registries::progress(state, request, &name, progress);
            vec![]
        }
        Action::CrawlFinished { request, name, result } => registries::finished(state, request, name, result),
        Action::PoliciesLoaded { request, result } => {
            policies::loaded(state, request, result);
            vec![]
        }
        Action::PolicyChecked { request, problems } => {
            policies::checked(state, request, problems);
            vec![]
        }
        Action::PolicyApplied { result, .. } => policies::applied(state, result),
        Action::EditedExternally(result) => policies::edited_externally(state, result),
        Action::ExpireToast(id) => {
            state.toasts.retain(|t| t.id != id);
            vec![]
        }
        Action::RefreshTick => {
            // The Admission pane on screen follows new decisions and workloads (once the last
            // reading is in).
            let mut effects = if state.pane() == PaneId::Admission
                && state.admission.as_ref().is_some_and(|a| !matches!(a.data, Loadable::Loading) && !a.loading)
            {
                admission::load(state)
            } else {
                vec![]
            };
            if matches!(state.pane(), PaneId::Alerts | PaneId::AlertDetail) {
                alerts::tick(state, crate::alert::now_unix_ms());
                effects.push(Effect::LoadSinkStatus);
            }
            if state.engines_loading {
                return effects;
            }
            state.engines_loading = true;
            effects.extend([Effect::LoadEngines, Effect::LoadStoreSize]);
            effects
        }
    }
}

pub fn toast(state: &mut AppState, text: String, is_error: bool) -> Vec<Effect> {
    let id = state.take_id();
    state.toasts.push(Toast { id, text, is_error });
    vec![Effect::ExpireToast { id, after: if is_error { TOAST_ERROR } else { TOAST_INFO } }]
}

fn refilter_current(state: &mut AppState) {
    match state.pane() {
        PaneId::Containers => containers::refilter(state),
        PaneId::Contexts => contexts::refilter(state),
        PaneId::Images => images::refilter(state),
        PaneId::Packages => images::refilter_packages(state),
        PaneId::Findings => findings::refilter(state),
        PaneId::Compliance => compliance::refilter(state),
        PaneId::ComplianceCheck => {
            if let Some(check) = state.check.as_mut() {
                check.refilter();
            }
        }
        PaneId::Workloads => {
            if let Some(workloads) = state.workloads.as_mut() {
                workloads.refilter();
            }
        }
        PaneId::WorkloadChecks => {
            if let Some(workloads) = state.workloads.as_mut() {
                workloads.refilter_checks();
            }
        }
        PaneId::Nodes => {
            if let Some(nodes) = state.nodes.as_mut() {
                nodes.refilter();
            }
        }
        PaneId::Registries => {
            if let Some(registries) = state.registries.as_mut() {
                registries.refilter();
            }
        }
        PaneId::Behaviour => {
            if let Some(behaviour) = state.behaviour.as_mut() {
                behaviour.refilter();
            }
        }
        PaneId::Policies => {
            if let Some(policies) = state.policies.as_mut() {
                policies.refilter();
            }
        }
        PaneId::Admission => {
            if let Some(admission) = state.admission.as_mut() {
                admission.refilter();
            }
        }
        PaneId::Alerts => {
            if let Some(alerts) = state.alerts.as_mut() {
                alerts.refresh();
            }
        }
        PaneId::Risk => {
            if let Some(risk) = state.risk.as_mut() {
                risk.refilter();
            }
        }
        PaneId::Network => {
            if let Some(network) = state.network.as_mut() {
                network.refilter();
            }
        }
        PaneId::Compare => {
            if let Some(compare) = state.compare.as_mut() {
                compare.refilter();
            }
        }
        PaneId::RegistryTags => {
            if let Some(tags) = state.registries.as_mut().and_then(|r| r.tags.as_mut()) {
                tags.refilter();
            }
        }
        PaneId::Overview
        | PaneId::ContainerDetail
        | PaneId::FindingDetail
        | PaneId::NodeActivity
        | PaneId::CompareWorkload
        | PaneId::BehaviourGroup
        | PaneId::PolicyEditor
        | PaneId::PolicyDiff
        | PaneId::AdmissionDecision
        | PaneId::AlertDetail
        | PaneId::NetworkFlow
        | PaneId::RiskDetail => {}
    }
}

fn on_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
    match state.mode.clone() {
        Mode::Normal => on_normal_key(state, key),
        Mode::Help => {
            if matches!(key.code, KeyCode::Esc | KeyCode::Char('q' | '?')) || key.code == KeyCode::Enter {
                state.mode = Mode::Normal;
            }
            vec![]
        }
        Mode::Accept(form) => findings::on_accept_key(state, form, key),
        Mode::Insert => policies::on_insert_key(state, key),
        Mode::Confirm(confirmation) => match key.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => {
                state.mode = Mode::Normal;
                vec![confirmation.effect]
            }
            KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                state.mode = Mode::Normal;
                vec![]
            }
            _ => vec![],
        },
        Mode::Filter { mut input } => {
            match edit_line(&mut input, key) {
                LineEdit::Edited => {
                    set_filter(state, &input);
                    state.mode = Mode::Filter { input };
                }
                LineEdit::Submit => state.mode = Mode::Normal,
                LineEdit::Cancel => {
                    set_filter(state, "");
                    state.mode = Mode::Normal;
                }
                LineEdit::Complete | LineEdit::Ignored => {}
            }
            vec![]
        }
        Mode::Command { mut input } => match edit_line(&mut input, key) {
            LineEdit::Edited => {
                state.mode = Mode::Command { input };
                vec![]
            }
            LineEdit::Complete => {
                if let Some(done) = complete(&input) {
                    input = done.to_string();
                }
                state.mode = Mode::Command { input };
                vec![]
            }
            LineEdit::Submit => {
                state.mode = Mode::Normal;
                run_prompt(state, &input)
            }
            LineEdit::Cancel => {
                state.mode = Mode::Normal;
                vec![]
            }
            LineEdit::Ignored => vec![],
        },
    }
}

enum LineEdit {
    Edited,
    Submit,
    Cancel,
    Complete,
    Ignored,
}

/// The prompt line editor: the one place that reads raw keys, as an editor in insert mode.
fn edit_line(input: &mut String, key: KeyEvent) -> LineEdit {
    match key.code {
        KeyCode::Enter => LineEdit::Submit,
        KeyCode::Esc => LineEdit::Cancel,
        KeyCode::Tab => LineEdit::Complete,
        KeyCode::Backspace => {
            if input.pop().is_none() {
                return LineEdit::Cancel;
            }
            LineEdit::Edited
        }
        KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            input.clear();
            LineEdit::Edited
        }
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => LineEdit::Cancel,
        KeyCode::Char(c) if !key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => {
            input.push(c);
            LineEdit::Edited
        }
        _ => LineEdit::Ignored,
    }
}

fn set_filter(state: &mut AppState, filter: &str) {
    if let Some(view) = state.list_view_mut() {
        view.filter = filter.to_string();
        view.selected = 0;
    }
    refilter_current(state);
}

/// The first command whose name or alias starts with `input` (the greyed suggestion; `tab`
/// accepts it). Only the first word is completed.
pub fn complete(input: &str) -> Option<&'static str> {
    let word = input.trim_start();
    if word.is_empty() || word.contains(' ') {
        return None;
    }
    PROMPT_COMMANDS
        .iter()
        .find(|c| c.name.starts_with(word) || c.aliases.iter().any(|a| a.starts_with(word)))
        .map(|c| c.name)
}

fn resolve(word: &str) -> Option<&'static PromptCommand> {
    PROMPT_COMMANDS.iter().find(|c| c.name == word || c.aliases.contains(&word))
}

fn run_prompt(state: &mut AppState, input: &str) -> Vec<Effect> {
    let mut words = input.split_whitespace();
    let Some(word) = words.next() else { return vec![] };
    let argument = words.next();
    let Some(command) = resolve(word) else {
        return toast(state, format!("unknown command ':{word}' (try :help)"), true);
    };
    match (command.name, argument) {
        ("overview", _) => go_to(state, PaneId::Overview),
        ("containers", _) => go_to(state, PaneId::Containers),
        ("images", _) => go_to(state, PaneId::Images),
        ("registries", _) => go_to(state, PaneId::Registries),
        ("behaviour", _) => go_to(state, PaneId::Behaviour),
        ("policies", _) => go_to(state, PaneId::Policies),
        ("admission", _) => go_to(state, PaneId::Admission),
        ("alerts", _) => go_to(state, PaneId::Alerts),
        ("risk", _) => go_to(state, PaneId::Risk),
        ("network", _) => go_to(state, PaneId::Network),
        ("compliance", _) => go_to(state, PaneId::Compliance),
        ("workloads", _) => go_to(state, PaneId::Workloads),
        ("nodes", _) => go_to(state, PaneId::Nodes),
        ("contexts", None) => go_to(state, PaneId::Contexts),
        ("contexts", Some(names)) if names.contains(',') => compare::open(state, names),
        ("contexts", Some(name)) => contexts::switch(state, name),
        ("refresh", _) => run_command(state, Command::Refresh),
        ("help", _) => run_command(state, Command::Help),
        ("quit", _) => run_command(state, Command::Quit),
        _ => vec![],
    }
}

fn go_to(state: &mut AppState, pane: PaneId) -> Vec<Effect> {
    state.nav = vec![pane];
    state.check = None;
    pane_shown(state)
}

/// A top pane came on screen: load what it shows the first time.
fn pane_shown(state: &mut AppState) -> Vec<Effect> {
    match state.pane() {
        PaneId::Workloads => workloads::ensure_loaded(state),
        PaneId::Nodes => nodes::ensure_connected(state),
        PaneId::Registries => registries::ensure_loaded(state),
        PaneId::Behaviour => behaviour::ensure_loaded(state),
        PaneId::Policies => policies::ensure_loaded(state),
        PaneId::Admission => admission::ensure_loaded(state),
        PaneId::Alerts => alerts::ensure_loaded(state),
        PaneId::Risk => risk::ensure_loaded(state),
        PaneId::Network => {
            network::refresh(state);
            network::ensure_shown(state)
        }
        _ => vec![],
    }
}

fn on_normal_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
    let spec = KeySpec::from_event(&key);
    if let Some(command) = state.keymap.command_for(spec, state.pane().scope()) {
        return run_command(state, command);
    }
    if let Some(plugin) = state.plugins.for_key(spec, state.pane().scope()).cloned() {
        if plugin.scopes.iter().all(|s| s == "containers") && state.selected_container().is_none() {
            return toast(state, format!("{}: no container selected", plugin.name), true);
        }
        let env = state.plugin_vars();
        let (command, args) = plugin.expand(&env);
        let run = PluginRun {
            name: plugin.name.clone(),
            description: plugin.description.clone(),
            command,
            args,
            env,
            background: plugin.background,
        };
        if plugin.confirm {
            let command_line = std::iter::once(run.command.as_str())
                .chain(run.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            state.mode = Mode::Confirm(Confirmation {
                question: format!("Run '{}'?", run.description),
                detail: command_line,
                effect: Effect::RunPlugin(run),
            });
            return vec![];
        }
        return vec![Effect::RunPlugin(run)];
    }
    vec![]
}

pub fn run_command(state: &mut AppState, command: Command) -> Vec<Effect> {
    let page = isize::try_from(state.page_size).unwrap_or(20);
    match command {
        Command::Quit => state.should_quit = true,
        Command::Help => state.mode = Mode::Help,
        Command::CommandMode => state.mode = Mode::Command { input: String::new() },
        Command::FilterMode => match state.list_view() {
            Some(view) => state.mode = Mode::Filter { input: view.filter.clone() },
            None => return toast(state, format!("the {} pane has no rows to filter", state.pane().title()), false),
        },
        Command::Back => {
            if let Some(view) = state.list_view_mut().filter(|v| !v.filter.is_empty()) {
                view.filter.clear();
                refilter_current(state);
            } else if state.nav.len() > 1 {
                state.nav.pop();
                if state.pane() != PaneId::ContainerDetail {
                    state.detail = None;
                }
                if state.pane() != PaneId::Packages && !state.nav.contains(&PaneId::Packages) {
                    state.packages = None;
                }
                if !matches!(state.pane(), PaneId::Findings | PaneId::FindingDetail) {
                    state.findings = None;
                }
                if state.pane() != PaneId::ComplianceCheck {
                    state.check = None;
                }
                if state.pane() == PaneId::Workloads
                    && let Some(workloads) = state.workloads.as_mut()
                {
                    workloads.opened = None;
                }
                if state.pane() == PaneId::Nodes
                    && let Some(nodes) = state.nodes.as_mut()
                {
                    nodes.opened = None;
                }
                if !state.nav.contains(&PaneId::RegistryTags)
                    && let Some(registries) = state.registries.as_mut()
                {
                    registries.tags = None;
                }
            }
        }
        Command::Up => move_selection(state, -1),
        Command::Down => move_selection(state, 1),
        Command::PageUp if state.pane() == PaneId::BehaviourGroup => behaviour::scroll(state, -page),
        Command::PageDown if state.pane() == PaneId::BehaviourGroup => behaviour::scroll(state, page),
        Command::PageUp if state.pane() == PaneId::AdmissionDecision => return admission::scroll(state, -page),
        Command::PageUp if state.pane() == PaneId::AlertDetail => return alerts::scroll(state, -page),
        Command::PageUp if state.pane() == PaneId::RiskDetail => return risk::scroll(state, -page),
        Command::PageUp if state.pane() == PaneId::NetworkFlow => return network::scroll(state, -page),
        Command::PageDown if state.pane() == PaneId::NetworkFlow => return network::scroll(state, page),
        Command::PageDown if state.pane() == PaneId::RiskDetail => return risk::scroll(state, page),
        Command::PageDown if state.pane() == PaneId::AlertDetail => return alerts::scroll(state, page),
        Command::PageDown if state.pane() == PaneId::AdmissionDecision => return admission::scroll(state, page),
        Command::PageUp => move_selection(state, -page),
        Command::PageDown => move_selection(state, page),
        Command::Top => move_selection(state, isize::MIN / 2),
        Command::Bottom => move_selection(state, isize::MAX / 2),
        Command::NextPane | Command::PrevPane => {
            let top = state.nav.first().copied().unwrap_or(PaneId::Overview);
            let index = TOP_PANES.iter().position(|p| *p == top).unwrap_or(0);
            let step = if command == Command::NextPane { 1 } else { TOP_PANES.len() - 1 };
            state.nav = vec![TOP_PANES[(index + step) % TOP_PANES.len()]];
            state.check = None;
            return pane_shown(state);
        }
        Command::Refresh => {
            state.engines_loading = true;
            let mut effects = initial_effects();
            if let Some(detail) = &state.detail {
                effects.push(Effect::InspectContainer {
                    request: detail.request,
                    socket: detail.container.socket.clone(),
                    id: detail.container.id.clone(),
                });
            }
            match state.nav.first() {
                Some(PaneId::Compliance) => effects.extend(compliance::rerun_shown(state)),
                Some(PaneId::Workloads) => effects.extend(workloads::load(state)),
                Some(PaneId::Registries) => effects.extend(registries::load(state)),
                Some(PaneId::Behaviour) => effects.extend(behaviour::load(state)),
                Some(PaneId::Policies) => effects.extend(policies::load(state)),
                Some(PaneId::Admission) => effects.extend(admission::load(state)),
                Some(PaneId::Alerts) => effects.extend(alerts::load(state)),
                Some(PaneId::Risk) => effects.extend(risk::load(state)),
                Some(PaneId::Compare) => effects.extend(compare::reload(state)),
                Some(PaneId::Nodes | PaneId::Network) => {
                    effects.extend(nodes::connect(state, Duration::ZERO));
                    effects.extend(nodes::connect_cluster(state, true));
                }
                _ => {}
            }
            return effects;
        }
        Command::Enter => return enter(state),
        Command::Scan if state.pane() == PaneId::Registries => return registries::crawl_selected(state),
        Command::Scan => return images::scan_selected(state),
        Command::Findings if state.pane() == PaneId::RegistryTags => return registries::open_findings(state),
        Command::Findings => return findings::open(state),
        Command::SortSeverity => return findings::sort(state, FindingSort::Severity),
        Command::SortPackage => return findings::sort(state, FindingSort::Package),
        Command::SortFixed => return findings::sort(state, FindingSort::Fixed),
        Command::Accept => return findings::accept(state),
        Command::BenchDocker => return compliance::run(state, BenchKind::Docker),
        Command::BenchNode => return compliance::run(state, BenchKind::Node),
        Command::BenchCluster => return compliance::run(state, BenchKind::Cluster),
        Command::PrevReport => return compliance::cycle(state, false),
        Command::NextReport => return compliance::cycle(state, true),
        Command::NextNamespace if state.pane() == PaneId::Admission => return admission::next_namespace(state),
        Command::NextNamespace if state.pane() == PaneId::Alerts => return alerts::next_namespace(state),
        Command::AckAlert => return alerts::acknowledge(state, crate::alert::now_unix_ms()),
        Command::SnoozeAlert => return alerts::snooze(state, crate::alert::now_unix_ms()),
        Command::FalsePositive => return alerts::false_positive(state),
        Command::ReopenAlert => return alerts::reopen(state),
        Command::NextSeverity => return alerts::next_severity(state),
        Command::ToggleTriaged => return alerts::toggle_all(state),
        Command::ToggleMap => return network::toggle_map(state),
        Command::CaptureAlert => return alerts::capture(state),
        Command::QuarantineAlert => return alerts::quarantine(state),
        Command::BundleAlert => return alerts::bundle(state),
        Command::UndoActions => return alerts::undo_actions(state),
        Command::NextNamespace => return workloads::next_namespace(state),
        Command::StartAgent => return nodes::start(state),
        Command::DeployAgent => return nodes::deploy(state),
        Command::EditText if in_editor(state) => return policies::start_typing(state),
        Command::EditText if state.pane() == PaneId::Policies => return policies::enter(state),
        Command::DiffPolicy if in_editor(state) => return policies::diff(state),
        Command::ApplyPolicy if in_editor(state) => return policies::apply(state),
        Command::ExternalEditor if in_editor(state) => return policies::external(state),
        Command::NextProblem if in_editor(state) => return policies::next_problem(state),
        Command::NextMode => return behaviour::next_mode(state),
        Command::AcceptViolation => return behaviour::accept(state),
        Command::EditText
        | Command::DiffPolicy
        | Command::ApplyPolicy
        | Command::ExternalEditor
        | Command::NextProblem => {
            return toast(state, "open a policy first (enter on the Policies pane)".into(), false);
        }
    }
    vec![]
}

/// Whether a policy is open in the editor or its diff.
fn in_editor(state: &AppState) -> bool {
    matches!(state.pane(), PaneId::PolicyEditor | PaneId::PolicyDiff)
}

fn move_selection(state: &mut AppState, delta: isize) {
    if state.pane() == PaneId::PolicyEditor {
        policies::move_cursor(state, delta);
        return;
    }
    if state.pane() == PaneId::BehaviourGroup {
        behaviour::move_violation(state, delta);
        return;
    }
    if state.pane() == PaneId::AdmissionDecision {
        admission::scroll(state, delta);
        return;
    }
    if state.pane() == PaneId::AlertDetail {
        alerts::scroll(state, delta);
        return;
    }
    if state.pane() == PaneId::RiskDetail {
        risk::scroll(state, delta);
        return;
    }
    if state.pane() == PaneId::NetworkFlow {
        network::scroll(state, delta);
        return;
    }
    if let Some(view) = state.list_view_mut() {
        view.move_by(delta);
    }
}

fn enter(state: &mut AppState) -> Vec<Effect> {
    match state.pane() {
        PaneId::Overview => go_to(state, PaneId::Containers),
        PaneId::Containers => containers::enter(state),
        PaneId::Contexts => contexts::enter(state),
        PaneId::Images => images::enter(state),
        PaneId::Findings => findings::enter(state),
        PaneId::Compliance => compliance::enter(state),
        PaneId::Workloads => workloads::enter(state),
        PaneId::WorkloadChecks => workloads::enter_check(state),
        PaneId::Nodes => nodes::enter(state),
        PaneId::Registries => registries::enter(state),
        PaneId::Behaviour => behaviour::enter(state),
        PaneId::Policies => policies::enter(state),
        PaneId::Admission => admission::enter(state),
        PaneId::Alerts => alerts::enter(state),
        PaneId::Risk => risk::enter(state),
        PaneId::Network => network::enter(state),
        PaneId::PolicyEditor | PaneId::PolicyDiff => policies::start_typing(state),
        PaneId::RegistryTags => registries::open_findings(state),
        PaneId::Compare => compare::enter(state),
        PaneId::ContainerDetail
        | PaneId::Packages
        | PaneId::FindingDetail
        | PaneId::ComplianceCheck
        | PaneId::NodeActivity
        | PaneId::CompareWorkload
        | PaneId::BehaviourGroup
        | PaneId::AdmissionDecision
        | PaneId::AlertDetail
        | PaneId::NetworkFlow
        | PaneId::RiskDetail => vec![],
    }
}

mod admission;
mod alerts;
mod behaviour;
mod compare;
mod compliance;
mod containers;
mod contexts;
mod findings;
mod images;
mod network;
mod nodes;
mod policies;
mod registries;
mod risk;
mod workloads;

#[cfg(test)]
pub use nodes::tests::sample_lines as nodes_sample_lines;

#[cfg(test)]
mod tests;

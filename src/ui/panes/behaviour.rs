//! What the local agent learned each group of containers does (`picket policy show` in a pane),
//! and one group in full: its programs as a tree from those the runtime started, where it
//! writes, the sensitive files it reads, where it connects, the ports it accepts on, and what
//! detections kept out of it; each group's mode and what broke its policy lately.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Row, Wrap};

use crate::app::state::{AppState, BehaviourState, GroupMode, Loadable};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::learn::Baseline;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

/// `2026-12-05 12:40` of Unix milliseconds (UTC).
fn when(at_ms: u64) -> String {
    jiff::Timestamp::from_millisecond(i64::try_from(at_ms).unwrap_or(i64::MAX))
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn count<'a>(n: usize, theme: &Theme) -> Text<'a> {
    match n {
        0 => Text::styled("·", theme.style(Slot::Dim)),
        n => Text::from(n.to_string()),
    }
}

fn mode_text<'a>(mode: GroupMode, theme: &Theme) -> Text<'a> {
    match mode {
        GroupMode::Held => Text::styled("policy", theme.style(Slot::Value)),
        GroupMode::Kept(crate::policy::spec::Mode::Discover) => Text::styled("discover", theme.style(Slot::Dim)),
        GroupMode::Kept(crate::policy::spec::Mode::Monitor) => Text::styled("monitor", theme.style(Slot::StatusWarn)),
        GroupMode::Kept(crate::policy::spec::Mode::Protect) => Text::styled("protect", theme.style(Slot::StatusOk)),
    }
}

fn group_row<'a>(b: &Baseline, behaviour: &BehaviourState, theme: &Theme) -> Row<'a> {
    let violations = behaviour.violations_of(&b.group.key).len();
    Row::new(vec![
        Text::from(b.group.key.clone()),
        mode_text(behaviour.mode_of(&b.group.key), theme),
        match violations {
            0 => Text::styled("·", theme.style(Slot::Dim)),
            n => Text::styled(n.to_string(), theme.style(Slot::StatusWarn)),
        },
        count(b.processes.len(), theme),
        count(b.writes.len(), theme),
        count(b.egress.len(), theme),
        count(b.listening.len(), theme),
        match b.suspicious.len() {
            0 => Text::styled("·", theme.style(Slot::Dim)),
            n => Text::styled(n.to_string(), theme.style(Slot::StatusError)),
        },
        Text::from(b.observations.to_string()),
        Text::styled(when(b.last_change_ms), theme.style(Slot::Dim)),
    ])
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(behaviour) = &state.behaviour else {
        frame.render_widget(Paragraph::new("loading…").block(pane_block(" Behaviour ", theme, true)), area);
        return;
    };
    let view = &behaviour.view;
    let title = format!(
        " Behaviour [{}/{}]{}{} ",
        view.visible.len(),
        behaviour.list().len(),
        filter_badge(view),
        if matches!(behaviour.groups, Loadable::Loading) { " asking the agent…" } else { "" }
    );
    let message = match &behaviour.groups {
        Loadable::Failed(err) => Some(vec![
            Line::from(Span::styled(err.clone(), theme.style(Slot::StatusError))),
            Line::from(""),
            Line::from("The agent learns while it runs (`picket agent run --socket …`, or press a on the Nodes pane)."),
        ]),
        Loadable::Ready(groups) if groups.is_empty() => Some(vec![
            Line::from("Nothing learned yet."),
            Line::from(""),
            Line::from("The agent learns what each group of containers does while they run; come back after they"),
            Line::from("have worked a while, then `picket policy learn` turns it into a policy."),
        ]),
        _ => None,
    };
    if let Some(lines) = message {
        frame.render_widget(Paragraph::new(lines).block(pane_block(title, theme, true)), area);
        return;
    }
    let rows =
        view.visible.iter().filter_map(|&i| behaviour.list().get(i)).map(|b| group_row(b, behaviour, theme)).collect();
    let spec = TableSpec {
        header: &[
            "GROUP",
            "MODE",
            "VIOLATIONS",
            "PROGRAMS",
            "WRITES",
            "PEERS",
            "PORTS",
            "KEPT OUT",
            "SEEN",
            "LAST LEARNED",
        ],
        widths: &[
            Constraint::Fill(1),
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(16),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, area, pane_block(title, theme, true), spec, theme);
}

/// The programs as a tree: those started from outside the container first, then each one's
/// children; programs whose parent was not learned after, with their parents named.
fn program_lines<'a>(b: &Baseline, theme: &Theme) -> Vec<Line<'a>> {
    fn walk<'a>(
        b: &Baseline,
        exe: &str,
        depth: usize,
        shown: &mut Vec<String>,
        out: &mut Vec<Line<'a>>,
        theme: &Theme,
    ) {
        if shown.iter().any(|s| s == exe) || depth > 8 {
            return;
        }
        shown.push(exe.to_string());
        let seen = &b.processes[exe];
        let mut spans = vec![Span::raw(format!("  {}{exe}", "  ".repeat(depth)))];
        let users: Vec<String> = seen.users.iter().map(u32::to_string).collect();
        spans.push(Span::styled(format!("  uid {} · {}×", users.join(","), seen.count), theme.style(Slot::Dim)));
        if !seen.paths.is_empty() {
            let paths: Vec<&str> = seen.paths.iter().map(String::as_str).collect();
            spans.push(Span::styled(format!(" · as {}", paths.join(", ")), theme.style(Slot::Dim)));
        }
        if seen.is_probe() {
            spans.push(Span::styled(" · probe", theme.style(Slot::StatusOk)));
        } else if seen.probe_runs > 0 {
            spans.push(Span::styled(format!(" · {} by probes", seen.probe_runs), theme.style(Slot::Dim)));
        }
        out.push(Line::from(spans));
        for (child, child_seen) in &b.processes {
            if child != exe && child_seen.parents.contains(exe) {
                walk(b, child, depth + 1, shown, out, theme);
            }
        }
    }
    let mut out = Vec::new();
    let mut shown = Vec::new();
    for (exe, seen) in &b.processes {
        if seen.parents.contains("") {
            walk(b, exe, 0, &mut shown, &mut out, theme);
        }
    }
    for (exe, seen) in &b.processes {
        if !shown.contains(exe) {
            let parents: Vec<&str> = seen.parents.iter().map(String::as_str).collect();
            out.push(Line::from(vec![
                Span::raw(format!("  {exe}")),
                Span::styled(format!("  from {}", parents.join(", ")), theme.style(Slot::Dim)),
            ]));
        }
    }
    out
}

/// The group's mode, and its violations with the selected one marked.
fn mode_lines<'a>(behaviour: &BehaviourState, group: &str, theme: &Theme) -> Vec<Line<'a>> {
    let heading = |text: &str| Line::from(Span::styled(text.to_string(), theme.style(Slot::Header)));
    let mode = behaviour.mode_of(group);
    let mut spans = vec![Span::raw("Mode: ")];
    spans.extend(mode_text(mode, theme).lines.into_iter().flat_map(|l| l.spans));
    match (&behaviour.modes, mode, behaviour.promoted(group)) {
        (Loadable::Failed(why), _, _) => {
            spans.push(Span::styled(format!(" (the agent keeps no modes: {why})"), theme.style(Slot::Dim)));
        }
        (_, GroupMode::Held, _) => spans.push(Span::styled(
            " (the policy in force holds it: change it on the Policies pane)",
            theme.style(Slot::Dim),
        )),
        (_, _, Some(promoted)) => {
            spans.push(Span::styled(
                format!(" since {} · m: next mode", when(promoted.since_ms)),
                theme.style(Slot::Dim),
            ));
        }
        _ => spans.push(Span::styled(" · m: monitor it with what it learned", theme.style(Slot::Dim))),
    }
    let mut lines = vec![Line::from(spans)];
    let violations = behaviour.violations_of(group);
    if !violations.is_empty() {
        lines.push(Line::from(""));
        lines.push(heading("Violations (j/k to pick, a: accept into the policy)"));
        for (i, v) in violations.iter().enumerate() {
            let selected = i == behaviour.violation;
            let style = match selected {
                true => theme.style(Slot::TableSelected),
                false => theme.style(Slot::StatusWarn),
            };
            lines.push(Line::from(vec![
                Span::raw(if selected { " ▌" } else { "  " }),
                Span::styled(v.key(), style),
                Span::styled(
                    format!("  {} · {}× · last {}", v.action, v.count, when(v.last_ms)),
                    theme.style(Slot::Dim),
                ),
            ]));
        }
    }
    lines
}

pub fn render_group(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(behaviour) = state.behaviour.as_ref() else { return };
    let Some(b) = behaviour.opened() else {
        frame.render_widget(Paragraph::new("no group open").block(pane_block(" Group ", theme, true)), area);
        return;
    };
    let heading = |text: &str| Line::from(Span::styled(text.to_string(), theme.style(Slot::Header)));
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{} observations · learning since {} · last new {}",
            b.observations,
            when(b.first_ms),
            when(b.last_change_ms)
        ),
        theme.style(Slot::Dim),
    ))];
    lines.extend(mode_lines(behaviour, &b.group.key, theme));
    lines.push(Line::from(""));
    lines.push(heading("Programs"));
    lines.extend(program_lines(b, theme));
    lines.push(Line::from(""));
    lines.push(heading("Writes"));
    match b.writes.is_empty() {
        true => lines.push(Line::from(Span::styled("  none", theme.style(Slot::Dim)))),
        false => lines.extend(b.writes.iter().map(|p| Line::from(format!("  {p}")))),
    }
    if !b.reads.is_empty() {
        lines.push(Line::from(""));
        lines.push(heading("Sensitive reads"));
        lines.extend(b.reads.iter().map(|p| Line::from(format!("  {p}"))));
    }
    lines.push(Line::from(""));
    lines.push(heading("Network"));
    for flow in &b.egress {
        let names = b.names_of(flow).map(|n| format!(" ({})", n.iter().cloned().collect::<Vec<_>>().join(", ")));
        lines.push(Line::from(format!("  → {flow}{}", names.unwrap_or_default())));
    }
    for listen in &b.listening {
        lines.push(Line::from(format!("  ← accepts on port {} {:?}", listen.port, listen.protocol).to_lowercase()));
    }
    if b.egress.is_empty() && b.listening.is_empty() {
        lines.push(Line::from(Span::styled("  none", theme.style(Slot::Dim))));
    }
    if !b.suspicious.is_empty() {
        lines.push(Line::from(""));
        lines.push(heading("Kept out (detections, never learned)"));
        lines.extend(
            b.suspicious.iter().map(|s| Line::from(Span::styled(format!("  {s}"), theme.style(Slot::StatusError)))),
        );
    }
    if b.overflow > 0 {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            format!("{} observations past the bounds were counted, not learned", b.overflow),
            theme.style(Slot::StatusWarn),
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        format!("As a policy: picket policy learn --group {} --mode monitor", b.group.key),
        theme.style(Slot::Dim),
    )));
    // Page keys scroll; never past the last page.
    let shown = usize::from(area.height.saturating_sub(2)).max(1);
    let scroll = behaviour.scroll.min(lines.len().saturating_sub(shown));
    let title = match lines.len() > shown {
        true => format!(
            " {} · lines {}–{} of {} (page keys scroll) ",
            b.group.key,
            scroll + 1,
            (scroll + shown).min(lines.len()),
            lines.len()
        ),
        false => format!(" {} ", b.group.key),
    };
    let offset = u16::try_from(scroll).unwrap_or(u16::MAX);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((offset, 0)).block(pane_block(title, theme, true)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures;
    use crate::app::state::Mode;
    use crate::app::state::PaneId;
    use crate::app::update::{run_command, update};
    use crate::learn::{Baselines, GroupRef, Observation, Observed};

    fn baselines() -> Baselines {
        let mut all = Baselines::default();
        let web = GroupRef::workload("shop", "Deployment", "web");
        let at = 1_764_930_000_000;
        let mut observe = |group: &GroupRef, what: Observed| {
            all.observe(&Observation { group: group.clone(), at_ms: at, what });
        };
        let exec = |exe: &str, parent: &str| Observed::Exec {
            exe: exe.into(),
            path: exe.into(),
            parent: parent.into(),
            uid: 101,
            probe: false,
        };
        observe(&web, exec("/usr/sbin/nginx", ""));
        observe(&web, exec("/bin/sh", "/usr/sbin/nginx"));
        observe(&web, exec("/usr/bin/logrotate", "/bin/sh"));
        // The liveness probe's `curl -sf localhost:8080/healthz`, started by the kubelet.
        observe(
            &web,
            Observed::Exec {
                exe: "/usr/bin/curl".into(),
                path: "/usr/bin/curl".into(),
                parent: "".into(),
                uid: 101,
                probe: true,
            },
        );
        observe(&web, Observed::Open { path: "/var/cache/nginx/a".into(), write: true });
        observe(&web, Observed::Open { path: "/run/nginx.pid".into(), write: true });
        observe(&web, Observed::Accept { port: 8080, protocol: crate::learn::baseline::Proto::Tcp });
        observe(
            &web,
            Observed::Connect {
                address: "10.20.0.5".parse().expect("address"),
                port: 5432,
                protocol: crate::learn::baseline::Proto::Tcp,
                peer: Some("shop/StatefulSet/postgres".into()),
                name: None,
            },
        );
        observe(
            &web,
            Observed::Connect {
                address: "203.0.113.7".parse().expect("address"),
                port: 443,
                protocol: crate::learn::baseline::Proto::Tcp,
                peer: None,
                name: Some("api.payments.example".into()),
            },
        );
        observe(&web, Observed::Suspicious { exe: Some("/tmp/xmrig".into()), path: None, remote: None });
        let local = GroupRef::local("localhost/batch:2");
        observe(&local, exec("/bin/busybox", ""));
        all
    }

    /// The agent keeps shop/Deployment/web in protect with two violations; a policy in force
    /// holds another group.
    fn modes(all: &Baselines) -> crate::agent::client::Modes {
        use crate::agent::promotion::{Promoted, Violation, ViolationKind};
        let web = all.get("shop/Deployment/web").expect("web");
        let policy = crate::learn::to_policy::policy_of(web, crate::policy::spec::Mode::Protect).expect("policy");
        let at = 1_764_930_600_000;
        let violation = |kind, subject: &str, count| Violation {
            kind,
            subject: subject.into(),
            first_ms: at,
            last_ms: at,
            count,
            action: "denied".into(),
        };
        let promoted = Promoted {
            policy,
            mode: crate::policy::spec::Mode::Protect,
            since_ms: at - 60_000,
            last_violation_ms: at,
            violations: vec![
                violation(ViolationKind::Exec, "/usr/bin/curl", 3),
                violation(ViolationKind::Connect, "192.0.2.7:443", 1),
            ],
        };
        crate::agent::client::Modes {
            groups: [("shop/Deployment/web".to_string(), promoted)].into(),
            held: vec!["shop/Deployment/api".into()],
        }
    }

    /// The pane with what the agent answered: the baselines and the modes.
    fn shown() -> crate::app::state::AppState {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, PaneId::Behaviour);
        let Some(Effect::LoadBaselines { request, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        let all = baselines();
        update(&mut state, Action::BaselinesLoaded { request, result: Ok(all.clone()) });
        update(&mut state, Action::ModesLoaded { request, result: Ok(modes(&all)) });
        state
    }

    #[test]
    fn groups_then_one_group_in_full() {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, PaneId::Behaviour);
        assert_eq!(state.pane(), PaneId::Behaviour, "the last top pane");
        let Some(Effect::LoadBaselines { request, socket }) = effects.first().cloned() else { panic!("{effects:?}") };
        assert_eq!(socket, state.agent_socket);
        let all = baselines();
        update(&mut state, Action::BaselinesLoaded { request, result: Ok(all.clone()) });
        update(&mut state, Action::ModesLoaded { request, result: Ok(modes(&all)) });
        crate::assert_screen!("behaviour", &state);
        run_command(&mut state, Command::Down);
        let effects = run_command(&mut state, Command::Enter);
        assert!(effects.is_empty(), "{effects:?}");
        assert_eq!(state.pane(), PaneId::BehaviourGroup);
        crate::assert_screen!("behaviour_group", &state);
        let theme = crate::config::Theme::load("dark", std::path::Path::new("/nonexistent"), false).expect("theme");
        for (width, height) in [(1, 1), (10, 3), (40, 10), (300, 100)] {
            let mut terminal =
                ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).expect("test backend");
            terminal.draw(|frame| crate::ui::render(frame, &state, &theme)).expect("draw at any size");
        }
    }

    #[test]
    fn no_agent_is_said_with_what_to_do() {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, PaneId::Behaviour);
        let Some(Effect::LoadBaselines { request, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        let said = "agent at /run/picket/agent.sock: cannot connect: No such file or directory".to_string();
        update(&mut state, Action::BaselinesLoaded { request, result: Err(said) });
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("cannot connect") && screen.contains("picket agent run"), "{screen}");
    }

    #[test]
    fn keys_set_the_next_mode_and_accept_the_picked_violation_after_asking() {
        let mut state = shown();
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("protect") && screen.contains("discover"), "{screen}");

        // The first row is local/localhost/batch:2, in discover: m asks to monitor it.
        let key = |state: &mut crate::app::state::AppState, c: char| {
            update(state, Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)))
        };
        key(&mut state, 'm');
        let Mode::Confirm(asked) = state.mode.clone() else { panic!("a question: {:?}", state.mode) };
        assert_eq!(asked.question, "Set local/localhost/batch:2 from discover to monitor?");
        assert_eq!(
            asked.effect,
            Effect::SetGroupMode {
                socket: state.agent_socket.clone(),
                group: "local/localhost/batch:2".into(),
                mode: crate::policy::spec::Mode::Monitor
            }
        );
        let effects = key(&mut state, 'y');
        assert!(effects.contains(&asked.effect), "{effects:?}");
        let effects = update(
            &mut state,
            Action::GroupChanged { result: Ok("discover → monitor: local/localhost/batch:2".into()) },
        );
        assert!(effects.iter().any(|e| matches!(e, Effect::LoadBaselines { .. })), "asked again: {effects:?}");
        assert!(state.toasts.iter().any(|t| t.text.contains("discover → monitor")));

        // web, in protect: its second violation accepted.
        run_command(&mut state, Command::Down);
        run_command(&mut state, Command::Enter);
        assert_eq!(state.pane(), PaneId::BehaviourGroup);
        run_command(&mut state, Command::Down);
        crate::assert_screen!("behaviour_violations", &state);
        key(&mut state, 'a');
        let Mode::Confirm(asked) = state.mode.clone() else { panic!("a question: {:?}", state.mode) };
        assert_eq!(asked.question, "Accept connect:192.0.2.7:443 into shop/Deployment/web's policy?");
        assert!(
            matches!(&asked.effect, Effect::AcceptViolation { violation, .. } if violation == "connect:192.0.2.7:443")
        );
        key(&mut state, 'n');
        assert_eq!(state.mode, Mode::Normal, "no: nothing sent");
        key(&mut state, 'm');
        let Mode::Confirm(asked) = state.mode.clone() else { panic!("a question: {:?}", state.mode) };
        assert_eq!(asked.question, "Set shop/Deployment/web from protect to discover?");
        key(&mut state, 'n');

        // A group the policy in force holds is not the agent's to set.
        if let Some(behaviour) = state.behaviour.as_mut() {
            behaviour.open = Some("shop/Deployment/api".into());
        }
        key(&mut state, 'm');
        assert_eq!(state.mode, Mode::Normal);
        assert!(state.toasts.iter().any(|t| t.is_error && t.text.contains("held by the policy in force")));
    }

    #[test]
    fn a_long_group_scrolls_with_the_page_keys() {
        let mut state = shown();
        run_command(&mut state, Command::Down);
        run_command(&mut state, Command::Enter);
        let draw = |state: &crate::app::state::AppState| crate::ui::snapshot::screen_at(state, 100, 14);
        let top = draw(&state);
        assert!(top.contains("Mode: protect") && top.contains("(page keys scroll)"), "{top}");
        assert!(!top.contains("Kept out"), "the end is below: {top}");
        for _ in 0..5 {
            run_command(&mut state, Command::PageDown);
        }
        let bottom = draw(&state);
        assert!(bottom.contains("Kept out") && !bottom.contains("Mode: protect"), "{bottom}");
        for _ in 0..5 {
            run_command(&mut state, Command::PageUp);
        }
        assert!(draw(&state).contains("Mode: protect"), "back to the top");
    }
}

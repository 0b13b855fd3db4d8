//! The Alerts pane: folds of alerts, the most recently fired first, with counts, severity, triage
//! state, rule, container and program; a header with the open counts and the filters in force;
//! and one fold in full (the event, the process tree, the container, its image's findings, the
//! rule's why and the policy line that decided).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Wrap};

use super::findings::severity_style;
use crate::alert::fold::State;
use crate::app::action::Command;
use crate::app::state::{AppState, Loadable};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

fn message(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line<'static>>, theme: &Theme) {
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(title, theme, true));
    frame.render_widget(paragraph, area);
}

fn state_style(state: State, blocked: bool, theme: &Theme) -> Style {
    theme.style(match state {
        State::Open if blocked => Slot::StatusWarn,
        State::Open => Slot::StatusError,
        State::Acknowledged | State::Snoozed | State::FalsePositive => Slot::Dim,
    })
}

/// `12-04 12:03:07` (UTC, as the agents' times and `picket alerts` are).
fn when(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(0))
        .map(|at| at.strftime("%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(alerts) = &state.alerts else { return };
    match &alerts.loaded {
        Loadable::Ready(()) => {}
        Loadable::Loading => {
            let line = Line::from(Span::styled("reading the kept alerts…", theme.style(Slot::Dim)));
            message(frame, area, " Alerts ", vec![line], theme);
            return;
        }
        Loadable::Failed(err) => {
            let refresh = state.keymap.hint(Command::Refresh).unwrap_or_default();
            let lines = vec![
                Line::from(Span::styled(err.clone(), theme.style(Slot::StatusError))),
                Line::from(""),
                Line::from(Span::styled(format!("{refresh} tries again"), theme.style(Slot::Dim))),
            ];
            message(frame, area, " Alerts ", lines, theme);
            return;
        }
    }
    let ([open, acked, snoozed, false_positive], critical, high) = alerts.counts();
    let floor = alerts.min_severity.map_or("all severities".to_string(), |s| format!("{s} and worse"));
    let triaged = if alerts.show_all { "triaged shown" } else { "triaged hidden" };
    let header = Line::from(vec![
        Span::styled(" open ", theme.style(Slot::Label)),
        Span::styled(format!("{open}"), theme.style(if open > 0 { Slot::StatusError } else { Slot::StatusOk })),
        Span::raw(format!(" ({critical} critical, {high} high)   ")),
        Span::styled("acked ", theme.style(Slot::Label)),
        Span::raw(format!("{acked}   ")),
        Span::styled("snoozed ", theme.style(Slot::Label)),
        Span::raw(format!("{snoozed}   ")),
        Span::styled("false positive ", theme.style(Slot::Label)),
        Span::raw(format!("{false_positive}   ")),
        Span::styled(format!("{} alerts · {floor} · {triaged}", alerts.taken), theme.style(Slot::Dim)),
    ]);
    let mut lines = vec![header];
    if !alerts.sinks.is_empty() {
        lines.push(sinks_line(&alerts.sinks, theme));
    }
    let height = u16::try_from(lines.len()).unwrap_or(1);
    let [top, body] = Layout::vertical([Constraint::Length(height), Constraint::Min(3)]).areas(area);
    frame.render_widget(Paragraph::new(lines), top);

    let view = &alerts.view;
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| alerts.rows.get(i))
        .map(|f| {
            let state = if f.blocked { format!("{} ■", f.state.as_str()) } else { f.state.as_str().to_string() };
            let count = if f.since_ack > 0 { format!("{} (+{})", f.count, f.since_ack) } else { f.count.to_string() };
            Row::new(vec![
                Span::styled(f.severity.to_string(), severity_style(f.severity, theme)),
                Span::styled(when(f.last_ms), theme.style(Slot::Dim)),
                Span::raw(count),
                Span::styled(state, state_style(f.state, f.blocked, theme)),
                Span::raw(f.rule.clone()),
                Span::raw(f.container.clone()),
                Span::raw(f.process.clone()),
                Span::styled(f.node.clone(), theme.style(Slot::Dim)),
            ])
        })
        .collect();
    let namespace = alerts.namespace.as_deref().unwrap_or("all");
    let title = format!(
        " Alerts ({namespace}) [{}/{}]{} · ■ refused or killed ",
        view.visible.len(),
        alerts.rows.len(),
        filter_badge(view)
    );
    let spec = TableSpec {
        header: &["SEVERITY", "LAST", "COUNT", "STATE", "RULE", "CONTAINER", "PROCESS", "NODE"],
        widths: &[
            Constraint::Length(8),
            Constraint::Length(14),
            Constraint::Length(7),
            Constraint::Length(15),
            Constraint::Fill(4),
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(10),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, body, pane_block(title, theme, true), spec, theme);
}

/// Each response sink: delivering (with how many sent), or failing with what is queued and why.
fn sinks_line(sinks: &[crate::alert::outbox::SinkStatus], theme: &Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(" sinks ", theme.style(Slot::Label))];
    for sink in sinks {
        match (&sink.failing_since_ms, &sink.last_error) {
            (Some(_), error) => {
                spans.push(Span::styled(
                    format!("{} failing, {} queued", sink.name, sink.queued),
                    theme.style(Slot::StatusError),
                ));
                if let Some(error) = error {
                    spans.push(Span::styled(format!(" ({error})"), theme.style(Slot::Dim)));
                }
            }
            (None, _) => {
                let mut text = format!("{} ok, {} sent", sink.name, sink.delivered);
                if sink.queued > 0 {
                    text.push_str(&format!(", {} queued", sink.queued));
                }
                if sink.rejected > 0 {
                    text.push_str(&format!(", {} rejected", sink.rejected));
                }
                spans.push(Span::styled(
                    text,
                    theme.style(if sink.rejected > 0 { Slot::StatusWarn } else { Slot::StatusOk }),
                ));
            }
        }
        spans.push(Span::raw("   "));
    }
    Line::from(spans)
}

/// One fold in full: the lines `picket alerts show` prints.
pub fn render_detail(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(alerts) = &state.alerts else { return };
    let Some(opened) = &alerts.opened else { return };
    let fold = alerts.opened_fold();
    let title = match fold {
        Some(f) => format!(" {} · {} · {} ", f.rule, f.container, f.state.as_str()),
        None => format!(" fold {} ", opened.id),
    };
    let lines: Vec<Line> = match &opened.lines {
        Loadable::Loading => vec![Line::from(Span::styled("reading the alert…", theme.style(Slot::Dim)))],
        Loadable::Failed(e) => vec![Line::from(Span::styled(e.clone(), theme.style(Slot::StatusError)))],
        Loadable::Ready(lines) => lines
            .iter()
            .enumerate()
            .skip(alerts.scroll)
            .map(|(i, l)| {
                if i == 0 || (l.ends_with(':') && !l.starts_with(' ')) {
                    Line::from(Span::styled(l.clone(), theme.style(Slot::Label)))
                } else {
                    Line::from(l.clone())
                }
            })
            .collect(),
    };
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(title, theme, true));
    frame.render_widget(paragraph, area);
}

#[cfg(test)]
mod tests {
    use crate::agent::alert::{Action as Done, Alert, Trigger};
    use crate::agent::attribution::{ContainerRef, Runtime};
    use crate::agent::enforce::Mode as PolicyMode;
    use crate::agent::processes::Ancestor;
    use crate::agent::wire::WireEvent;
    use crate::alert::StoredAlert;
    use crate::alert::fold::State;
    use crate::alert::outbox::SinkStatus;
    use crate::alert::triage::{Triage, TriageRecord};
    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures;
    use crate::app::state::{AlertsLoad, Loadable, Mode, PaneId};
    use crate::app::update::{run_command, update};
    use crate::model::Severity;

    /// 2026-12-06 10:00:00 UTC.
    const T0: u64 = 1_796_551_200_000;

    fn pod(name: &str, image: &str) -> ContainerRef {
        ContainerRef {
            runtime: Runtime::Containerd,
            id: format!("{:a<64}", name.len()),
            pod_uid: Some("0d5c2f6e".into()),
            name: Some(name.into()),
            image: Some(image.into()),
            pod_namespace: Some("shop".into()),
            pod_name: Some(format!("{name}-6f7b9")),
            pod_owner: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn alert(
        seq: u64,
        rule: &str,
        title: &str,
        severity: Severity,
        container: Option<ContainerRef>,
        trigger: Trigger,
        done: Done,
        at: u64,
    ) -> WireEvent {
        let ancestry = vec![
            Ancestor {
                pid: trigger.pid,
                exe: trigger.exe.clone(),
                args: trigger.args.clone(),
                uid: 0,
                start_ns: 9,
                exited: false,
                replaced: false,
            },
            Ancestor {
                pid: 311,
                exe: "/usr/sbin/nginx".into(),
                args: vec!["nginx: worker process".into()],
                uid: 101,
                start_ns: 5,
                exited: false,
                replaced: false,
            },
            Ancestor {
                pid: 300,
                exe: "/usr/sbin/nginx".into(),
                args: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
                uid: 0,
                start_ns: 1,
                exited: false,
                replaced: false,
            },
        ];
        WireEvent::alert(
            "node-1",
            Alert {
                id: format!("node-1-1796551000000-{seq}"),
                at_unix_ms: at,
                rule: rule.into(),
                title: title.into(),
                severity,
                technique: "T1059.004".into(),
                why: "Web servers do not start shells; an exploited one does.".into(),
                mode: PolicyMode::Monitor,
                action: done,
                policy: String::new(),
                event: trigger,
                ancestry,
                count: 1,
            },
            container,
        )
    }

    fn exec(pid: u32, exe: &str, args: &[&str]) -> Trigger {
        Trigger {
            kind: "exec".into(),
            pid,
            comm: exe.rsplit('/').next().unwrap_or(exe).into(),
            exe: exe.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Trigger::default()
        }
    }

    fn events() -> Vec<WireEvent> {
        let web = || Some(pod("web", "docker.io/library/nginx:1.27"));
        let shell = |seq, at| {
            alert(
                seq,
                "shell-from-server",
                "A shell started by a server process",
                Severity::High,
                web(),
                exec(420, "/bin/sh", &["sh", "-c", "id"]),
                Done::Alerted,
                at,
            )
        };
        vec![
            shell(1, T0),
            shell(2, T0 + 61_000),
            shell(3, T0 + 122_000),
            alert(
                4,
                "crypto-pool-port",
                "Connection to a port mining pools use",
                Severity::Critical,
                Some(pod("worker", "registry.local/shop/worker:2.3")),
                Trigger {
                    kind: "connect".into(),
                    pid: 77,
                    comm: "xmrig".into(),
                    exe: "/tmp/xmrig".into(),
                    remote: "10.9.8.7:3333".into(),
                    ..Trigger::default()
                },
                Done::Denied,
                T0 + 90_000,
            ),
            alert(
                5,
                "package-manager-in-container",
                "A package manager ran in a container",
                Severity::Medium,
                web(),
                exec(500, "/usr/bin/apt-get", &["apt-get", "install", "-y", "netcat"]),
                Done::Alerted,
                T0 + 30_000,
            ),
            alert(
                6,
                "read-password-files",
                "A process read the password files",
                Severity::Medium,
                None,
                exec(900, "/usr/bin/cat", &["cat", "/etc/shadow"]),
                Done::Alerted,
                T0 + 10_000,
            ),
        ]
    }

    fn stored(events: &[WireEvent]) -> Vec<StoredAlert> {
        let mut alerts: Vec<StoredAlert> = events.iter().filter_map(StoredAlert::from_wire).collect();
        alerts.sort_by_key(|a| std::cmp::Reverse(a.alert.at_unix_ms));
        alerts
    }

    #[test]
    fn alerts_fold_live_filter_triage_and_open() {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, PaneId::Alerts);
        let Some(Effect::LoadAlerts { request }) = effects.first().cloned() else { panic!("{effects:?}") };
        assert!(crate::ui::snapshot::screen(&state).contains("reading the kept alerts"));
        let all = events();
        // The store held the first five; the sixth comes live, and so does one already loaded
        // (the feed keeps alerts before it hands them on): counted once.
        let load = AlertsLoad::of(&stored(&all[..5]), Triage::new(Default::default(), T0 + 200_000));
        update(&mut state, Action::AlertsLoaded { request, result: Ok(Box::new(load)) });
        update(&mut state, Action::AgentLines { conn: 0, events: vec![all[5].clone(), all[2].clone()], unreadable: 0 });
        // The response sinks' state, as the effect reads it from the responder.
        update(
            &mut state,
            Action::SinkStatus(vec![
                SinkStatus { name: "oncall".into(), kind: "slack".into(), delivered: 12, ..SinkStatus::default() },
                SinkStatus {
                    name: "am".into(),
                    kind: "alertmanager".into(),
                    queued: 35,
                    failing_since_ms: Some(T0),
                    last_error: Some("POST http://alertmanager:9093/api/v2/alerts: connection refused".into()),
                    ..SinkStatus::default()
                },
            ]),
        );
        let alerts = state.alerts.as_ref().expect("state");
        assert_eq!(alerts.taken, 6);
        let shell = alerts.rows.iter().find(|f| f.rule == "shell-from-server").expect("folded");
        assert_eq!((shell.count, shell.first_ms, shell.last_ms), (3, T0, T0 + 122_000));
        assert_eq!(
            alerts.rows.first().map(|f| f.rule.as_str()),
            Some("shell-from-server"),
            "most recently fired first"
        );
        crate::assert_screen!("alerts", &state);

        // Forensics from the pane: the bundle and the capture of the selected fold, here.
        let effects = run_command(&mut state, Command::BundleAlert);
        let shell_id = state.alerts.as_ref().and_then(|a| a.selected()).map(|f| f.id.clone()).expect("selected");
        assert!(matches!(effects.as_slice(), [Effect::BundleAlert { id, .. }] if *id == shell_id), "{effects:?}");
        let effects = run_command(&mut state, Command::CaptureAlert);
        assert!(effects.iter().any(|e| matches!(e, Effect::CaptureAlert { id, .. } if *id == shell_id)), "{effects:?}");
        update(
            &mut state,
            Action::ForensicsDone(Err("container shop/web-6f7b9/web is not running on a local engine here".into())),
        );
        assert!(state.latest_toast().is_some_and(|t| t.is_error && t.text.contains("not running on a local engine")));
        // `Q` asks before quarantining the fold's container, naming it; the yes sends the effect.
        assert!(run_command(&mut state, Command::QuarantineAlert).is_empty());
        let crate::app::state::Mode::Confirm(asked) = &state.mode else { panic!("asks first") };
        assert!(asked.question.contains("Quarantine container shop/web-6f7b9/web?"), "{}", asked.question);
        assert!(matches!(&asked.effect, Effect::QuarantineAlert { id, .. } if *id == shell_id));
        state.mode = crate::app::state::Mode::Normal;

        // The severity floor, then every severity again.
        run_command(&mut state, Command::NextSeverity);
        let rules = |state: &crate::app::state::AppState| {
            let a = state.alerts.as_ref().expect("state");
            a.view.visible.iter().map(|&i| a.rows[i].rule.clone()).collect::<Vec<_>>()
        };
        assert_eq!(rules(&state), ["crypto-pool-port"]);
        for _ in 0..3 {
            run_command(&mut state, Command::NextSeverity);
        }
        assert_eq!(rules(&state).len(), 4);
        // `n`: one namespace (the host's alert has none).
        run_command(&mut state, Command::NextNamespace);
        assert_eq!(rules(&state).len(), 3);
        run_command(&mut state, Command::NextNamespace);

        // Acknowledge the selected (the shell): the effect keeps the record by the fold's key;
        // with it in, the fold leaves the open list, and comes back with `A`.
        run_command(&mut state, Command::Top);
        let effects = run_command(&mut state, Command::AckAlert);
        let Some(Effect::TriageAlert { key, record: Some(record @ TriageRecord::Acknowledged { .. }), .. }) =
            effects.first().cloned()
        else {
            panic!("{effects:?}")
        };
        assert!(key.starts_with("shell-from-server\0shop/web-6f7b9/web\0/bin/sh"), "{key:?}");
        let record = match record {
            TriageRecord::Acknowledged { by, .. } => TriageRecord::Acknowledged { at_ms: T0 + 130_000, by },
            other => other,
        };
        let triage = Triage::new([(key, record)].into(), T0 + 130_000);
        update(&mut state, Action::AlertTriaged(Ok((triage, "acknowledged".into()))));
        assert!(!rules(&state).contains(&"shell-from-server".to_string()));
        run_command(&mut state, Command::ToggleTriaged);
        let alerts = state.alerts.as_ref().expect("state");
        assert_eq!(
            alerts.rows.iter().find(|f| f.rule == "shell-from-server").map(|f| f.state),
            Some(State::Acknowledged)
        );
        // It fires again: open, one new since.
        update(
            &mut state,
            Action::AgentLines {
                conn: 0,
                events: vec![{
                    let WireEvent::Alert { node, mut alert, container, v } = all[0].clone() else { panic!() };
                    alert.id = "node-1-1796551000000-9".into();
                    alert.at_unix_ms = T0 + 140_000;
                    WireEvent::Alert { node, alert, container, v }
                }],
                unreadable: 0,
            },
        );
        let shell = state
            .alerts
            .as_ref()
            .and_then(|a| a.rows.iter().find(|f| f.rule == "shell-from-server").cloned())
            .expect("fold");
        assert_eq!((shell.state, shell.count, shell.since_ack), (State::Open, 4, 1));

        // False positive on the package manager: the effect works the exception out; its diff
        // is shown to confirm; yes writes it.
        let apt = state
            .alerts
            .as_ref()
            .and_then(|a| a.rows.iter().position(|f| f.rule == "package-manager-in-container"))
            .expect("row");
        if let Some(alerts) = state.alerts.as_mut() {
            alerts.view.select_row(apt);
        }
        let effects = run_command(&mut state, Command::FalsePositive);
        let Some(Effect::ProposeFalsePositive { id }) = effects.first().cloned() else { panic!("{effects:?}") };
        let alert = stored(&all).into_iter().find(|a| a.alert.rule == "package-manager-in-container").expect("alert");
        let proposed = crate::alert::exception::propose(&alert, std::path::Path::new("/nonexistent/picket/rules"))
            .expect("proposed");
        assert_eq!(crate::alert::fold::fold_id(&crate::alert::fold::fold_key(&alert)), id);
        update(&mut state, Action::FalsePositiveProposed(Ok((crate::alert::fold::fold_key(&alert), proposed))));
        let Mode::Confirm(confirmation) = &state.mode else { panic!("{:?}", state.mode) };
        assert!(confirmation.detail.contains("+  - id: \"package-manager-in-container\""), "{}", confirmation.detail);
        crate::assert_screen!("alerts_false_positive", &state);
        let effects =
            update(&mut state, Action::Key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char('y'))));
        assert!(matches!(effects.first(), Some(Effect::WriteFalsePositive { .. })), "{effects:?}");

        // Enter: the fold in full, read by the effect.
        run_command(&mut state, Command::Top);
        let effects = run_command(&mut state, Command::Enter);
        let Some(Effect::LoadAlertDetail { id }) = effects.first().cloned() else { panic!("{effects:?}") };
        assert_eq!(state.pane(), PaneId::AlertDetail);
        let dir = tempfile::tempdir().expect("dir");
        let store = crate::store::Store::open(dir.path()).expect("store");
        crate::alert::AlertLog::open(&store).and_then(|log| log.record(&all, T0 + 200_000)).expect("kept");
        let detail = crate::alert::detail::find(&store, &id, T0 + 200_000).expect("found");
        update(&mut state, Action::AlertDetailLoaded { id, result: Ok(detail.lines()) });
        assert!(matches!(
            state.alerts.as_ref().and_then(|a| a.opened.as_ref()).map(|o| &o.lines),
            Some(Loadable::Ready(_))
        ));
        crate::assert_screen!("alert_detail", &state);
    }
}

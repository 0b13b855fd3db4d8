//! The Admission pane: the webhook's decisions and the dry run over running workloads, one
//! table with the verdict, the namespace, what was judged and the rules that matched; and one
//! decision in full.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Wrap};

use crate::app::action::Command;
use crate::app::state::{AppState, Loadable, RowSource};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

fn message(frame: &mut Frame, area: Rect, lines: Vec<Line<'static>>, theme: &Theme) {
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(" Admission ", theme, true));
    frame.render_widget(paragraph, area);
}

fn verdict_style(verdict: &str, theme: &Theme) -> Style {
    theme.style(match verdict {
        "denied" => Slot::StatusError,
        "warned" => Slot::StatusWarn,
        "allowed" => Slot::StatusOk,
        _ => Slot::Dim,
    })
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(admission) = &state.admission else { return };
    let data = match &admission.data {
        Loadable::Ready(data) => data,
        Loadable::Loading => {
            let line =
                Line::from(Span::styled("reading decisions and judging running workloads…", theme.style(Slot::Dim)));
            message(frame, area, vec![line], theme);
            return;
        }
        Loadable::Failed(err) => {
            let refresh = state.keymap.hint(Command::Refresh).unwrap_or_default();
            let lines = vec![
                Line::from(Span::styled(err.clone(), theme.style(Slot::StatusError))),
                Line::from(""),
                Line::from(Span::styled(format!("{refresh} tries again"), theme.style(Slot::Dim))),
            ];
            message(frame, area, lines, theme);
            return;
        }
    };
    let (wa, ww, wd) = admission.counts(RowSource::Webhook);
    let (da, dw, dd) = admission.counts(RowSource::DryRun);
    let mut lines = vec![Line::from(vec![
        Span::styled(" webhook ", theme.style(Slot::Label)),
        Span::styled(format!("{wd} denied"), theme.style(Slot::StatusError)),
        Span::raw(format!(", {ww} warned, {wa} allowed   ")),
        Span::styled("dry run ", theme.style(Slot::Label)),
        Span::styled(format!("{dd} would be denied"), theme.style(Slot::StatusError)),
        Span::raw(format!(", {dw} warned, {da} allowed   ")),
        Span::styled(data.rules.clone(), theme.style(Slot::Dim)),
    ])];
    lines.extend(
        data.notes.iter().take(2).map(|n| Line::from(Span::styled(format!(" {n}"), theme.style(Slot::StatusWarn)))),
    );
    let height = u16::try_from(lines.len()).unwrap_or(3);
    let [notes, body] = Layout::vertical([Constraint::Length(height), Constraint::Min(3)]).areas(area);
    frame.render_widget(Paragraph::new(lines), notes);

    let view = &admission.view;
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| data.rows.get(i))
        .map(|r| {
            let when = match (&r.source, &r.at) {
                (RowSource::Webhook, Some(at)) => at.get(..19).unwrap_or(at).replace('T', " "),
                _ => "dry run".into(),
            };
            Row::new(vec![
                Span::styled(r.verdict.clone(), verdict_style(&r.verdict, theme)),
                Span::styled(when, theme.style(Slot::Dim)),
                Span::raw(r.operation.clone()),
                Span::raw(r.subject.clone()),
                Span::raw(r.rules.join(", ")),
                Span::styled(r.message.clone(), theme.style(Slot::Dim)),
            ])
        })
        .collect();
    let namespace = admission.namespace.as_deref().unwrap_or("all");
    let title = format!(" Admission ({namespace}) [{}/{}]{} ", view.visible.len(), data.rows.len(), filter_badge(view));
    let spec = TableSpec {
        header: &["VERDICT", "WHEN", "OP", "OBJECT", "RULES", "MESSAGE"],
        widths: &[
            Constraint::Length(7),
            Constraint::Length(19),
            Constraint::Length(7),
            Constraint::Length(34),
            Constraint::Length(24),
            Constraint::Fill(1),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, body, pane_block(title, theme, true), spec, theme);
}

/// One decision in full: the stored record (or the dry run's decision) as JSON.
pub fn render_decision(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(admission) = &state.admission else { return };
    let Some(row) = admission.opened() else { return };
    let title = format!(" {} · {} ", row.subject, row.verdict);
    let mut lines = vec![
        Line::from(vec![
            Span::styled("verdict  ", theme.style(Slot::Label)),
            Span::styled(row.verdict.clone(), verdict_style(&row.verdict, theme)),
        ]),
        Line::from(vec![Span::styled("message  ", theme.style(Slot::Label)), Span::raw(row.message.clone())]),
        Line::from(""),
    ];
    lines.extend(row.detail.lines().skip(admission.scroll).map(|l| Line::from(l.to_string())));
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(title, theme, true));
    frame.render_widget(paragraph, area);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::admission::review::DecisionRecord;
    use crate::admission::rules::{RuleSet, parse_text};
    use crate::admission::{Judge, dry_run};
    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures;
    use crate::app::state::{AdmissionData, AdmissionRow, PaneId};
    use crate::app::update::{run_command, update};

    const RULES: &str = "---\napiVersion: picket.dev/v1\nkind: PicketAdmissionRule\nmetadata:\n  name: no-root\nspec:\n  type: deny\n  criteria:\n    - { name: runAsRoot, op: '=' }\n---\napiVersion: picket.dev/v1\nkind: PicketAdmissionRule\nmetadata:\n  name: limits\nspec:\n  type: deny\n  mode: monitor\n  criteria:\n    - { name: noResourceLimits, op: '=' }\n";

    /// The fixture cluster judged by real rules, beside two decisions a webhook kept.
    fn data() -> AdmissionData {
        let (rules, config, problems) = parse_text(std::path::Path::new("rules.yaml"), RULES);
        assert!(problems.is_empty(), "{problems:?}");
        let judge = Judge::new(RuleSet { rules, config: config.map(|(_, c)| c).unwrap_or_default() }, None);
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let outcomes = runtime.block_on(dry_run::judge_inventory(&judge, &fixtures::inventory()));
        let record = |at: &str, verdict: &str, subject: &str, message: &str, rules: Vec<String>| DecisionRecord {
            at: at.into(),
            uid: format!("uid-{at}"),
            operation: "CREATE".into(),
            user: "alice".into(),
            namespace: "shop".into(),
            subject: subject.into(),
            verdict: verdict.into(),
            message: message.into(),
            warnings: vec![],
            rules,
            object: None,
        };
        let mut rows = vec![
            AdmissionRow::of_record(record(
                "2026-12-06T10:15:02.118Z",
                "denied",
                "Pod shop/debug",
                "picket denied Pod shop/debug: rule \"no-privileged\" (rules.yaml:1): container app (spec.containers[0]): privileged is true",
                vec!["no-privileged (rules.yaml:1)".into()],
            )),
            AdmissionRow::of_record(record(
                "2026-12-06T10:14:40.002Z",
                "allowed",
                "Deployment shop/api",
                "allowed",
                vec![],
            )),
        ];
        rows.extend(outcomes.into_iter().map(AdmissionRow::of_dry_run));
        AdmissionData { rows, rules: "2 rules from ~/.config/picket/admission".into(), notes: vec![] }
    }

    #[test]
    fn decisions_and_the_dry_run_with_one_in_full() {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, PaneId::Admission);
        let Some(Effect::LoadAdmission { request, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("reading decisions and judging running workloads"), "{screen}");
        let data = data();
        assert!(data.rows.iter().any(|r| r.verdict == "denied" && r.operation == "running"), "the dry run denies some");
        assert!(
            update(&mut state, Action::RefreshTick).iter().all(|e| !matches!(e, Effect::LoadAdmission { .. })),
            "no second reading while one is under way"
        );
        update(&mut state, Action::AdmissionLoaded { request, result: Ok(Arc::new(data.clone())) });
        crate::assert_screen!("admission", &state);
        // On screen, the refresh tick reads again; the rows stay meanwhile.
        let effects = update(&mut state, Action::RefreshTick);
        let Some(Effect::LoadAdmission { request, .. }) =
            effects.iter().find(|e| matches!(e, Effect::LoadAdmission { .. })).cloned()
        else {
            panic!("{effects:?}")
        };
        assert_eq!(state.admission.as_ref().map(|a| a.rows().len()), Some(data.rows.len()));
        update(&mut state, Action::AdmissionLoaded { request, result: Ok(Arc::new(data)) });

        // `n` keeps one namespace's rows.
        run_command(&mut state, Command::NextNamespace);
        let admission = state.admission.as_ref().expect("state");
        let namespace = admission.namespace.clone().expect("a namespace picked");
        assert!(admission.view.visible.iter().all(|&i| admission.rows()[i].namespace == namespace));
        assert!(admission.view.visible.len() < admission.rows().len());
        run_command(&mut state, Command::Top);
        while state.admission.as_ref().is_some_and(|a| a.namespace.is_some()) {
            run_command(&mut state, Command::NextNamespace);
        }

        run_command(&mut state, Command::Enter);
        assert_eq!(state.pane(), PaneId::AdmissionDecision);
        crate::assert_screen!("admission_decision", &state);
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("\"user\": \"alice\""), "{screen}");
    }
}

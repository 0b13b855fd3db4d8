//! Where policies are in force (the local agent, cluster objects picket applied) with their
//! history; one policy in the YAML editor with its problems; the diff applying would make.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Row};

use crate::app::state::{AppState, Loadable, PolicyRow, PolicyTarget};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

fn when(at_ms: u64) -> String {
    jiff::Timestamp::from_millisecond(i64::try_from(at_ms).unwrap_or(i64::MAX))
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn policy_row<'a>(row: &PolicyRow, theme: &Theme) -> Row<'a> {
    let (kind, target) = match &row.target {
        PolicyTarget::Agent(socket) => ("agent", socket.display().to_string()),
        PolicyTarget::Cluster { context, object } => ("cluster", format!("{context} {object}")),
    };
    let in_force = match (&row.text, &row.kept_as) {
        (Err(why), _) => Text::styled(why.clone(), theme.style(Slot::StatusError)),
        (Ok(text), _) if text.trim().is_empty() => Text::styled("none", theme.style(Slot::Dim)),
        (Ok(_), Some(file)) => Text::from(file.clone()),
        (Ok(text), None) => Text::from(format!("{} lines", text.lines().count())),
    };
    let dim = |s: String| if s.is_empty() { Text::styled("·", theme.style(Slot::Dim)) } else { Text::from(s) };
    Row::new(vec![
        Text::from(kind),
        Text::from(target),
        in_force,
        dim(if row.versions == 0 { String::new() } else { row.versions.to_string() }),
        dim(row.last_applied_ms.map(when).unwrap_or_default()),
        dim(row.who.clone()),
        dim(row.source.clone()),
    ])
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(policies) = &state.policies else {
        frame.render_widget(Paragraph::new("loading…").block(pane_block(" Policies ", theme, true)), area);
        return;
    };
    let view = &policies.view;
    let title = format!(
        " Policies [{}/{}]{}{} ",
        view.visible.len(),
        policies.rows().len(),
        filter_badge(view),
        if matches!(policies.data, Loadable::Loading) { " asking the agent…" } else { "" }
    );
    if let Loadable::Failed(err) = &policies.data {
        let lines = vec![Line::from(Span::styled(err.clone(), theme.style(Slot::StatusError)))];
        frame.render_widget(Paragraph::new(lines).block(pane_block(title, theme, true)), area);
        return;
    }
    let rows = view.visible.iter().filter_map(|&i| policies.rows().get(i)).map(|r| policy_row(r, theme)).collect();
    let spec = TableSpec {
        header: &["WHERE", "TARGET", "IN FORCE", "VERSIONS", "LAST APPLIED", "BY", "FROM"],
        widths: &[
            Constraint::Length(7),
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Length(8),
            Constraint::Length(16),
            Constraint::Length(10),
            Constraint::Fill(1),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, area, pane_block(title, theme, true), spec, theme);
}

/// The editor, with the problems of the text under it.
pub fn render_editor(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(editor) = state.policies.as_ref().and_then(|p| p.editor.as_ref()) else { return };
    let problem_count = u16::try_from(editor.problems.len().min(5)).unwrap_or(5);
    let [text_area, problems_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(problem_count + 2)]).areas(area);
    let status = match (editor.checked, editor.problems.len(), editor.modified()) {
        (false, _, _) => "checking…".to_string(),
        (true, 0, true) => "valid · edited".into(),
        (true, 0, false) => "valid · in force".into(),
        (true, n, _) => format!("{n} problem(s)"),
    };
    let title = format!(
        " {} · line {}/{} · {status} ",
        editor.target.label(),
        editor.buffer.row + 1,
        editor.buffer.lines.len()
    );
    let lines: Vec<u64> = editor.problems.iter().map(|p| p.line).collect();
    let block = pane_block(title, theme, true);
    crate::ui::widgets::editor::render(frame, text_area, block, &editor.buffer, &lines, theme);
    let problems: Vec<Line> = match editor.problems.is_empty() {
        true if editor.checked => {
            vec![Line::from(Span::styled("the agent would take this policy", theme.style(Slot::StatusOk)))]
        }
        true => vec![Line::from(Span::styled("checking…", theme.style(Slot::Dim)))],
        false => editor
            .problems
            .iter()
            .take(5)
            .map(|p| {
                Line::from(vec![
                    Span::styled(format!("line {}:{} ", p.line, p.column), theme.style(Slot::StatusError)),
                    Span::raw(p.message.clone()),
                ])
            })
            .collect(),
    };
    frame.render_widget(Paragraph::new(problems).block(pane_block(" Problems ", theme, false)), problems_area);
}

/// What applying would change: the unified diff, coloured.
pub fn render_diff(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(editor) = state.policies.as_ref().and_then(|p| p.editor.as_ref()) else { return };
    let title = format!(" What applying to {} changes ", editor.target.label());
    let lines: Vec<Line> = if editor.diff.is_empty() {
        vec![Line::from("No change: the text is the policy in force.")]
    } else {
        editor
            .diff
            .iter()
            .map(|line| {
                let slot = match line.chars().next() {
                    Some('+') => Slot::StatusOk,
                    Some('-') => Slot::StatusError,
                    Some('@') => Slot::Label,
                    _ => Slot::Value,
                };
                Line::from(Span::styled(line.clone(), theme.style(slot)))
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines).block(pane_block(title, theme, true)), area);
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures;
    use crate::app::state::{AppState, Mode, PaneId, PoliciesData, PolicyRow, PolicyTarget};
    use crate::app::update::{run_command, update};

    const IN_FORCE: &str = "containers:\n  - name: web\n    mode: monitor\n    allowExec:\n      - /usr/sbin/nginx\n";

    fn data() -> PoliciesData {
        let agent = PolicyRow {
            target: PolicyTarget::Agent("/run/picket/agent.sock".into()),
            versions: 2,
            last_applied_ms: Some(1_764_900_000_000),
            who: "alice".into(),
            source: "web-policy.yaml".into(),
            summary: "1 containers: 1 monitor".into(),
            text: Ok(IN_FORCE.into()),
            kept_as: Some("/var/lib/picket/agent/policy.yaml".into()),
        };
        let object = PolicyRow {
            target: PolicyTarget::Cluster { context: "prod".into(), object: "PicketPolicy shop/web".into() },
            versions: 1,
            last_applied_ms: Some(1_764_800_000_000),
            who: "bob".into(),
            source: "shop.yaml".into(),
            summary: String::new(),
            text: Ok("apiVersion: picket.dev/v1\nkind: PicketPolicy\n".into()),
            kept_as: None,
        };
        PoliciesData { rows: vec![agent, object] }
    }

    fn key(state: &mut AppState, code: KeyCode) -> Vec<Effect> {
        update(state, Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    fn type_text(state: &mut AppState, text: &str) -> Vec<Effect> {
        let mut effects = Vec::new();
        for c in text.chars() {
            effects = key(state, if c == '\n' { KeyCode::Enter } else { KeyCode::Char(c) });
        }
        effects
    }

    /// Answers the latest check with what the agent's own check says of the text.
    fn answer_check(state: &mut AppState, effects: &[Effect]) {
        let Some(Effect::CheckPolicy { request, text }) = effects.last().cloned() else { panic!("{effects:?}") };
        let problems = crate::app::effects::policies::check(&text);
        update(state, Action::PolicyChecked { request, problems });
    }

    #[test]
    fn edit_check_diff_and_apply_a_policy() {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, PaneId::Policies);
        let Some(Effect::LoadPolicies { request, socket }) = effects.first().cloned() else { panic!("{effects:?}") };
        assert_eq!(socket, state.agent_socket);
        update(&mut state, Action::PoliciesLoaded { request, result: Ok(data()) });
        crate::assert_screen!("policies", &state);

        let effects = run_command(&mut state, Command::Enter);
        assert_eq!(state.pane(), PaneId::PolicyEditor);
        answer_check(&mut state, &effects);
        crate::assert_screen!("policy_editor", &state);

        // A mistake typed is marked at its line as soon as the check answers.
        run_command(&mut state, Command::EditText);
        assert_eq!(state.mode, Mode::Insert);
        key(&mut state, KeyCode::Down);
        key(&mut state, KeyCode::Down);
        key(&mut state, KeyCode::End);
        for _ in 0.."monitor".len() {
            key(&mut state, KeyCode::Backspace);
        }
        let effects = type_text(&mut state, "sideways");
        answer_check(&mut state, &effects);
        let editor = state.policies.as_ref().and_then(|p| p.editor.as_ref()).expect("editor");
        assert_eq!(editor.problems.first().map(|p| p.line), Some(3), "{:?}", editor.problems);
        key(&mut state, KeyCode::Esc);
        assert_eq!(state.mode, Mode::Normal);
        assert!(run_command(&mut state, Command::ApplyPolicy).iter().all(|e| matches!(e, Effect::ExpireToast { .. })));
        assert!(state.latest_toast().is_some_and(|t| t.is_error && t.text.contains("line 3")), "{:?}", state.toasts);

        // Fixed, and a program added: the diff shows both, and apply asks first.
        run_command(&mut state, Command::EditText);
        for _ in 0.."sideways".len() {
            key(&mut state, KeyCode::Backspace);
        }
        type_text(&mut state, "protect");
        key(&mut state, KeyCode::Down);
        key(&mut state, KeyCode::Down);
        key(&mut state, KeyCode::End);
        let effects = type_text(&mut state, "\n- /bin/sh");
        answer_check(&mut state, &effects);
        key(&mut state, KeyCode::Esc);
        run_command(&mut state, Command::DiffPolicy);
        assert_eq!(state.pane(), PaneId::PolicyDiff);
        crate::assert_screen!("policy_diff", &state);
        run_command(&mut state, Command::ApplyPolicy);
        let Mode::Confirm(confirmation) = state.mode.clone() else { panic!("{:?}", state.mode) };
        assert!(confirmation.detail.starts_with("+2 -1"), "{}", confirmation.detail);
        let Effect::ApplyPolicy { request, target, text } = confirmation.effect else { panic!() };
        assert_eq!(target, PolicyTarget::Agent("/run/picket/agent.sock".into()));
        assert!(text.contains("mode: protect\n") && text.contains("      - /bin/sh\n"), "{text}");
        key(&mut state, KeyCode::Char('y'));
        let effects = update(&mut state, Action::PolicyApplied { request, result: Ok("in force".into()) });
        assert!(effects.iter().any(|e| matches!(e, Effect::LoadPolicies { .. })), "the rows are read again");
        let editor = state.policies.as_ref().and_then(|p| p.editor.as_ref()).expect("editor");
        assert!(!editor.modified(), "what was applied is now what is in force");
        assert_eq!(state.pane(), PaneId::PolicyEditor);
    }

    #[test]
    fn an_external_editors_text_replaces_the_buffer_and_is_checked() {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, PaneId::Policies);
        let Some(Effect::LoadPolicies { request, .. }) = effects.first().cloned() else { panic!() };
        update(&mut state, Action::PoliciesLoaded { request, result: Ok(data()) });
        run_command(&mut state, Command::Enter);
        let effects = run_command(&mut state, Command::ExternalEditor);
        let [Effect::EditExternally { text }] = effects.as_slice() else { panic!("{effects:?}") };
        assert_eq!(text, IN_FORCE);
        let effects = update(&mut state, Action::EditedExternally(Ok(IN_FORCE.replace("monitor", "protect"))));
        assert!(matches!(effects.as_slice(), [Effect::CheckPolicy { text, .. }] if text.contains("protect")));
        let failed = update(&mut state, Action::EditedExternally(Err("vi exited with 1".into())));
        assert!(!failed.is_empty() && state.latest_toast().is_some_and(|t| t.is_error));
        let editor = state.policies.as_ref().and_then(|p| p.editor.as_ref()).expect("editor");
        assert!(editor.buffer.text().contains("protect"), "a failed editor leaves the text as it was");
    }
}

//! The findings of one scanned image: a severity bar chart over a sortable table.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph, Row};

use crate::app::state::{AppState, FindingsData, Loadable};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::model::{Finding, FindingKind, Severity};
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

pub fn severity_style(severity: Severity, theme: &Theme) -> Style {
    theme.style(match severity {
        Severity::Critical => Slot::SeverityCritical,
        Severity::High => Slot::SeverityHigh,
        Severity::Medium => Slot::SeverityMedium,
        Severity::Low => Slot::SeverityLow,
        Severity::Unknown => Slot::SeverityUnknown,
    })
}

fn chart<'a>(data: &FindingsData, theme: &Theme) -> BarChart<'a> {
    let bars: Vec<Bar> = Severity::ALL
        .iter()
        .map(|&severity| {
            let count = data.findings.iter().filter(|f| f.severity == severity).count();
            Bar::default()
                .value(count as u64)
                .label(Line::from(severity.as_str()))
                .style(severity_style(severity, theme))
                .value_style(severity_style(severity, theme).patch(theme.style(Slot::TableSelected)))
        })
        .collect();
    BarChart::default()
        .data(BarGroup::default().bars(&bars))
        .direction(ratatui::layout::Direction::Horizontal)
        .bar_width(1)
        .bar_gap(0)
        .label_style(theme.style(Slot::Label))
}

fn kind_label(finding: &Finding) -> &'static str {
    match finding.kind {
        FindingKind::Vulnerability => "vuln",
        FindingKind::Advisory => "advisory",
        FindingKind::Secret => "secret",
        FindingKind::Misconfiguration => "config",
    }
}

fn summary<'a>(data: &FindingsData, theme: &Theme) -> Vec<Line<'a>> {
    let accepted = data.suppressed.len();
    let mut lines = vec![Line::from(vec![
        Span::styled(format!(" {} findings", data.findings.len()), theme.style(Slot::Value)),
        Span::styled(format!("  ·  {accepted} accepted"), theme.style(Slot::Dim)),
    ])];
    for database in data.databases.iter().take(3) {
        lines.push(Line::from(Span::styled(format!(" {database}"), theme.style(Slot::Dim))));
    }
    lines
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(findings) = &state.findings else { return };
    let data = match &findings.data {
        Loadable::Ready(data) => data,
        Loadable::Loading => {
            let text = Span::styled(" matching against the vulnerability database…", theme.style(Slot::Dim));
            frame.render_widget(Paragraph::new(text), area);
            return;
        }
        Loadable::Failed(err) => {
            frame.render_widget(Paragraph::new(Span::styled(format!(" {err}"), theme.style(Slot::StatusError))), area);
            return;
        }
    };
    let [head, body] = Layout::vertical([Constraint::Length(5), Constraint::Min(3)]).areas(area);
    let [bars, facts] = Layout::horizontal([Constraint::Length(40), Constraint::Min(10)]).areas(head);
    frame.render_widget(chart(data, theme), bars);
    frame.render_widget(Paragraph::new(summary(data, theme)), facts);
    let all = findings.rows();
    let view = &findings.view;
    let title = format!(
        " Findings of {} [{}/{}] by {}{} ",
        findings.title,
        view.visible.len(),
        all.len(),
        findings.sort.label(),
        filter_badge(view)
    );
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| all.get(i))
        .map(|f| {
            let (package, version) = f
                .package
                .as_ref()
                .map_or_else(|| (String::new(), String::new()), |p| (p.name.clone(), p.version.clone()));
            let package = if package.is_empty() {
                f.locations.first().map(|l| l.path.clone()).unwrap_or_default()
            } else {
                package
            };
            Row::new(vec![
                Span::styled(f.severity.as_str(), severity_style(f.severity, theme)),
                Span::raw(f.id.clone()),
                Span::raw(kind_label(f)),
                Span::raw(package),
                Span::raw(version),
                Span::raw(f.fixed_versions.first().cloned().unwrap_or_default()),
                Span::raw(f.title.clone()),
            ])
        })
        .collect();
    let spec = TableSpec {
        header: &["SEVERITY", "ID", "KIND", "PACKAGE", "VERSION", "FIXED", "TITLE"],
        widths: &[
            Constraint::Length(8),
            Constraint::Length(19),
            Constraint::Length(8),
            Constraint::Length(22),
            Constraint::Length(16),
            Constraint::Length(16),
            Constraint::Fill(1),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, body, pane_block(title, theme, true), spec, theme);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crossterm::event::KeyCode;

    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures::{self, code, key};
    use crate::app::state::{FindingsData, Mode, PaneId};
    use crate::app::update::{run_command, update};

    fn data() -> FindingsData {
        let report = crate::report::findings::fixtures::report();
        FindingsData { findings: report.findings, suppressed: report.suppressed, databases: report.databases }
    }

    use crate::app::fixtures::type_text;

    #[test]
    fn findings_sort_detail_and_accept() {
        let mut state = fixtures::state();
        state.ignore_path = "/work/app/.picketignore".into();
        run_command(&mut state, Command::NextPane);
        run_command(&mut state, Command::NextPane);
        run_command(&mut state, Command::Down);
        let effects = update(&mut state, Action::Key(key('v')));
        let Some(Effect::LoadFindings { request, key: sbom_key, ignore_path }) = effects.first().cloned() else {
            panic!("{effects:?}")
        };
        assert_eq!(sbom_key, "sha256:1111111111111111111111111111111111111111111111111111111111111111");
        assert_eq!(ignore_path, std::path::PathBuf::from("/work/app/.picketignore"));
        assert_eq!(state.pane(), PaneId::Findings);
        update(&mut state, Action::FindingsLoaded { request, result: Ok(Arc::new(data())) });
        crate::assert_screen!("findings", &state);

        // Severity order first; `P` sorts by package and keeps the selected finding selected.
        let first = state.findings.as_ref().unwrap().selected().unwrap().id.clone();
        let severities: Vec<_> = state.findings.as_ref().unwrap().rows().iter().map(|f| f.severity).collect();
        assert!(severities.windows(2).all(|w| w[0] >= w[1]), "{severities:?}");
        update(&mut state, Action::Key(key('P')));
        let findings = state.findings.as_ref().unwrap();
        assert_eq!(findings.selected().unwrap().id, first);
        let packages: Vec<String> =
            findings.rows().iter().filter_map(|f| f.package.as_ref().map(|p| p.name.to_lowercase())).collect();
        assert!(packages.windows(2).all(|w| w[0] <= w[1]), "{packages:?}");
        update(&mut state, Action::Key(key('S')));

        run_command(&mut state, Command::Enter);
        assert_eq!(state.pane(), PaneId::FindingDetail);
        crate::assert_screen!("finding_detail", &state);

        // Accept: a reason is required, the expiry must be a date.
        update(&mut state, Action::Key(key('a')));
        assert!(matches!(state.mode, Mode::Accept(_)));
        assert!(update(&mut state, Action::Key(code(KeyCode::Enter))).is_empty());
        let Mode::Accept(form) = &state.mode else { panic!() };
        assert!(form.error.as_deref().is_some_and(|e| e.contains("say why")));
        type_text(&mut state, "only reachable from the build stage");
        update(&mut state, Action::Key(code(KeyCode::Enter)));
        type_text(&mut state, "soon");
        crate::assert_screen!("finding_accept", &state);
        assert!(update(&mut state, Action::Key(code(KeyCode::Enter))).is_empty());
        let Mode::Accept(form) = &state.mode else { panic!() };
        assert!(form.error.as_deref().is_some_and(|e| e.contains("'soon'")), "{form:?}");
        for _ in 0..4 {
            update(&mut state, Action::Key(code(KeyCode::Backspace)));
        }
        type_text(&mut state, "2027-01-31");
        let effects = update(&mut state, Action::Key(code(KeyCode::Enter)));
        let Some(Effect::AcceptFinding { path, id, reason, expires, .. }) = effects.first().cloned() else {
            panic!("{effects:?}")
        };
        assert_eq!((id.as_str(), reason.as_str()), (first.as_str(), "only reachable from the build stage"));
        assert_eq!(expires.map(|d| d.to_string()).as_deref(), Some("2027-01-31"));
        assert_eq!(path, std::path::PathBuf::from("/work/app/.picketignore"));
        assert_eq!(state.mode, Mode::Normal);

        // Written: a toast, and the findings are matched again.
        let effects =
            update(&mut state, Action::FindingAccepted { id: first.clone(), result: Ok(path.display().to_string()) });
        assert!(effects.iter().any(|e| matches!(e, Effect::LoadFindings { .. })), "{effects:?}");
        assert!(state.latest_toast().unwrap().text.contains("accepted"));

        run_command(&mut state, Command::Back);
        run_command(&mut state, Command::Back);
        assert_eq!(state.pane(), PaneId::Images);
        assert!(state.findings.is_none());
    }

    #[test]
    fn unscanned_images_and_failures_say_what_to_do() {
        let mut state = fixtures::state();
        run_command(&mut state, Command::NextPane);
        run_command(&mut state, Command::NextPane);
        let effects = update(&mut state, Action::Key(key('v')));
        assert!(!effects.iter().any(|e| matches!(e, Effect::LoadFindings { .. })));
        assert!(state.latest_toast().unwrap().text.contains("not been scanned"));
        run_command(&mut state, Command::Down);
        let effects = update(&mut state, Action::Key(key('v')));
        let Some(Effect::LoadFindings { request, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        let message = "the vulnerability database is empty: run `picket db update`".to_string();
        update(&mut state, Action::FindingsLoaded { request, result: Err(message) });
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("picket db update"), "{screen}");
    }
}

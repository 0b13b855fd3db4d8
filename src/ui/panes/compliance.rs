//! Benchmark reports: tabs for the three benchmarks, the shown report's header, a summary per
//! section, and its checks.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Wrap};

use crate::app::action::Command;
use crate::app::state::{AppState, BenchDone, BenchKind, Loadable};
use crate::bench::{CheckOutcome, Status, Tally};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::panes::findings::severity_style;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

/// Colours of the statuses, as `picket bench` paints them: FAIL red, WARN yellow, PASS green,
/// INFO blue, SKIP dim.
pub fn status_style(status: Status, theme: &Theme) -> Style {
    theme.style(match status {
        Status::Fail => Slot::StatusError,
        Status::Warn => Slot::StatusWarn,
        Status::Pass => Slot::StatusOk,
        Status::Info => Slot::SeverityLow,
        Status::Skip => Slot::Dim,
    })
}

fn key_of(state: &AppState, kind: BenchKind) -> String {
    let command = match kind {
        BenchKind::Docker => Command::BenchDocker,
        BenchKind::Node => Command::BenchNode,
        BenchKind::Cluster => Command::BenchCluster,
    };
    state.keymap.hint(command).unwrap_or_else(|| "?".into())
}

/// ` 1 docker   2 node …   3 cluster ` with the shown one highlighted.
fn tabs<'a>(state: &AppState, theme: &Theme) -> Line<'a> {
    let compliance = &state.compliance;
    let mut spans = vec![Span::raw(" ")];
    for kind in BenchKind::ALL {
        let (suffix, style) = match compliance.run(kind).map(|r| &r.result) {
            None => ("", theme.style(Slot::Dim)),
            Some(Loadable::Loading) => (" …", theme.style(Slot::Value)),
            Some(Loadable::Failed(_)) => (" !", theme.style(Slot::StatusError)),
            Some(Loadable::Ready(_)) => ("", theme.style(Slot::Value)),
        };
        let style = if compliance.shown == Some(kind) { theme.style(Slot::TableSelected) } else { style };
        spans.push(Span::styled(format!(" {} {}{suffix} ", key_of(state, kind), kind.label()), style));
        spans.push(Span::raw(" "));
    }
    if compliance.run_kinds().len() > 1 {
        let prev = state.keymap.hint(Command::PrevReport).unwrap_or_default();
        let next = state.keymap.hint(Command::NextReport).unwrap_or_default();
        spans.push(Span::styled(format!(" {prev} {next} switch report"), theme.style(Slot::Dim)));
    }
    Line::from(spans)
}

fn intro<'a>(state: &AppState, theme: &Theme) -> Vec<Line<'a>> {
    let context = state.active_context().unwrap_or("none");
    let row = |kind: BenchKind, text: String| {
        Line::from(vec![
            Span::styled(format!("  {:<4}", key_of(state, kind)), theme.style(Slot::FooterKey)),
            Span::styled(text, theme.style(Slot::Value)),
        ])
    };
    vec![
        Line::from(Span::styled("No benchmark has been run yet. Press", theme.style(Slot::Dim))),
        Line::from(""),
        row(BenchKind::Docker, "CIS Docker Benchmark v1.6.0 on the first local engine socket".into()),
        row(BenchKind::Node, "CIS Kubernetes Benchmark (control plane, etcd, worker) on this node, root /".into()),
        row(BenchKind::Cluster, format!("cluster checks (CIS 5, Pod Security Standards, RBAC) on context {context}")),
        Line::from(""),
        Line::from(Span::styled(
            "The same checks as `picket bench docker|node|k8s`; enter opens a check with its evidence.",
            theme.style(Slot::Dim),
        )),
    ]
}

fn count<'a>(n: usize, status: Status, theme: &Theme) -> Span<'a> {
    let style = if n == 0 { theme.style(Slot::Dim) } else { status_style(status, theme) };
    Span::styled(n.to_string(), style)
}

fn tally_cells<'a>(tally: &Tally, theme: &Theme) -> Vec<Span<'a>> {
    Status::ALL.iter().map(|&s| count(tally.get(s), s, theme)).collect()
}

fn summary<'a>(done: &BenchDone, theme: &Theme) -> Table<'a> {
    let mut rows: Vec<Row> = done
        .report
        .tally_by_section()
        .into_iter()
        .map(|(section, tally)| {
            let mut cells = vec![Span::raw(section.id.clone()), Span::raw(section.title.clone())];
            cells.extend(tally_cells(&tally, theme));
            Row::new(cells)
        })
        .collect();
    let mut total =
        vec![Span::styled("", theme.style(Slot::Label)), Span::styled("all checks", theme.style(Slot::Label))];
    total.extend(tally_cells(&done.report.tally_checks(), theme));
    rows.push(Row::new(total));
    let header = ["SECTION", "TITLE", "FAIL", "WARN", "PASS", "INFO", "SKIP"];
    Table::new(
        rows,
        [
            Constraint::Length(14),
            Constraint::Length(44),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(5),
        ],
    )
    .header(Row::new(header).style(theme.style(Slot::TableHeader)))
    .style(theme.style(Slot::TableRow))
    .column_spacing(2)
}

/// Results per namespace, most failures first, as many as fit.
fn namespaces<'a>(done: &BenchDone, rows: usize, theme: &Theme) -> Table<'a> {
    let shown = if done.namespaces.len() > rows { rows.saturating_sub(1) } else { rows };
    let mut table_rows: Vec<Row> = done
        .namespaces
        .iter()
        .take(shown)
        .map(|(namespace, tally)| {
            let mut cells = vec![Span::raw(namespace.clone())];
            cells.extend([Status::Fail, Status::Warn, Status::Pass].map(|s| count(tally.get(s), s, theme)));
            Row::new(cells)
        })
        .collect();
    if done.namespaces.len() > shown {
        table_rows.push(Row::new(vec![Span::styled(
            format!("+{} more", done.namespaces.len() - shown),
            theme.style(Slot::Dim),
        )]));
    }
    Table::new(
        table_rows,
        [Constraint::Length(20), Constraint::Length(5), Constraint::Length(5), Constraint::Length(5)],
    )
    .header(Row::new(["NAMESPACE", "FAIL", "WARN", "PASS"]).style(theme.style(Slot::TableHeader)))
    .style(theme.style(Slot::TableRow))
    .column_spacing(1)
}

/// `1/2`: failed subjects of all subjects looked at.
pub fn failed_of(check: &CheckOutcome) -> String {
    if check.results.is_empty() {
        return String::new();
    }
    let failed = check.results.iter().filter(|r| r.status == Status::Fail).count();
    format!("{failed}/{}", check.results.len())
}

fn checks_table(frame: &mut Frame, area: Rect, state: &AppState, done: &BenchDone, theme: &Theme) {
    let view = &state.compliance.view;
    let checks = &done.report.checks;
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| checks.get(i))
        .map(|c| {
            let status = c.status();
            Row::new(vec![
                Span::styled(status.as_str(), status_style(status, theme)),
                Span::raw(c.meta.id.clone()),
                Span::styled(c.meta.severity.as_str(), severity_style(c.meta.severity, theme)),
                Span::raw(c.meta.title.clone()),
                Span::raw(failed_of(c)),
            ])
        })
        .collect();
    let title = format!(" Checks [{}/{}]{} ", view.visible.len(), checks.len(), filter_badge(view));
    let spec = TableSpec {
        header: &["STATUS", "ID", "SEVERITY", "TITLE", "FAILED"],
        widths: &[
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Fill(1),
            Constraint::Length(9),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, area, pane_block(title, theme, true), spec, theme);
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let [tab_line, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    frame.render_widget(Paragraph::new(tabs(state, theme)), tab_line);
    let compliance = &state.compliance;
    let message = |lines: Vec<Line<'static>>| {
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(" Compliance ", theme, true))
    };
    let Some(kind) = compliance.shown else {
        frame.render_widget(message(intro(state, theme)), body);
        return;
    };
    let done = match compliance.shown_run().map(|r| &r.result) {
        Some(Loadable::Ready(done)) => done,
        Some(Loadable::Failed(err)) => {
            let lines = vec![
                Line::from(Span::styled(err.clone(), theme.style(Slot::StatusError))),
                Line::from(""),
                Line::from(Span::styled(
                    format!("press {} to run it again", key_of(state, kind)),
                    theme.style(Slot::Dim),
                )),
            ];
            frame.render_widget(message(lines), body);
            return;
        }
        Some(Loadable::Loading) | None => {
            let mut text = format!("running… {}", kind.describe());
            if kind == BenchKind::Cluster {
                text = format!("running… cluster checks on context {}", state.active_context().unwrap_or("(current)"));
            }
            frame.render_widget(message(vec![Line::from(Span::styled(text, theme.style(Slot::Dim)))]), body);
            return;
        }
    };
    let partial = u16::from(!done.report.unread.is_empty());
    let notes = u16::try_from(done.notes.len().min(3)).unwrap_or(3) + partial;
    let sections = u16::try_from(done.report.sections.len()).unwrap_or(8).min(8) + 2;
    let [head, summary_area, checks] =
        Layout::vertical([Constraint::Length(1 + notes), Constraint::Length(sections + 1), Constraint::Min(4)])
            .areas(body);
    let report = &done.report;
    let mut lines = vec![Line::from(vec![
        Span::styled(format!(" {} v{}", report.benchmark, report.version), theme.style(Slot::PaneTitle)),
        Span::styled(format!("  ·  {}", report.target), theme.style(Slot::Value)),
    ])];
    if partial > 0 {
        let kinds: Vec<&str> = report.unread.iter().map(|u| u.what.as_str()).collect();
        lines.push(Line::from(Span::styled(
            format!(" PARTIAL: not read, so the checks that needed them are incomplete: {}", kinds.join(", ")),
            theme.style(Slot::StatusWarn),
        )));
    }
    lines.extend(
        done.notes.iter().take(3).map(|n| Line::from(Span::styled(format!(" {n}"), theme.style(Slot::StatusWarn)))),
    );
    frame.render_widget(Paragraph::new(lines), head);
    let [_, summary_area] = Layout::horizontal([Constraint::Length(1), Constraint::Min(1)]).areas(summary_area);
    if done.namespaces.is_empty() {
        frame.render_widget(summary(done, theme), summary_area);
    } else {
        // Cluster reports: results per namespace beside the sections.
        let [sections_area, namespaces_area] =
            Layout::horizontal([Constraint::Min(60), Constraint::Length(40)]).areas(summary_area);
        frame.render_widget(summary(done, theme), sections_area);
        let rows = usize::from(namespaces_area.height.saturating_sub(1));
        frame.render_widget(namespaces(done, rows, theme), namespaces_area);
    }
    checks_table(frame, checks, state, done, theme);
}

#[cfg(test)]
mod tests {
    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures::{self, key};
    use crate::app::state::{AppState, PaneId};
    use crate::app::update::{run_command, update};

    fn compliance() -> AppState {
        let mut state = fixtures::state();
        for _ in 0..3 {
            run_command(&mut state, Command::NextPane);
        }
        assert_eq!(state.pane(), PaneId::Compliance);
        state
    }

    fn run(state: &mut AppState, c: char) -> Action {
        let effects = update(state, Action::Key(key(c)));
        let Some(Effect::RunBench { request, kind, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        Action::BenchFinished { request, kind, result: Err(String::new()) }
    }

    #[test]
    fn report_summary_checks_and_detail() {
        let mut state = compliance();
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("No benchmark has been run yet") && screen.contains("on context prod"), "{screen}");
        let Action::BenchFinished { request, kind, .. } = run(&mut state, '1') else { unreachable!() };
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("running… CIS Docker Benchmark"), "{screen}");
        update(&mut state, Action::BenchFinished { request, kind, result: Ok(fixtures::bench_done().into()) });
        run_command(&mut state, Command::Down);
        crate::assert_screen!("compliance", &state);
        run_command(&mut state, Command::Enter);
        assert_eq!(state.pane(), PaneId::ComplianceCheck);
        crate::assert_screen!("compliance_check", &state);
    }

    #[test]
    fn cluster_reports_show_results_per_namespace() {
        let mut state = compliance();
        let Action::BenchFinished { request, kind, .. } = run(&mut state, '3') else { unreachable!() };
        let report = crate::bench::k8s::judge(&fixtures::inventory());
        let done = crate::app::state::BenchDone::new(report, vec![]);
        update(&mut state, Action::BenchFinished { request, kind, result: Ok(done.into()) });
        let screen = crate::ui::snapshot::screen(&state);
        let position = |ns: &str| screen.find(&format!(" {ns} ")).unwrap_or_else(|| panic!("no {ns} row:\n{screen}"));
        assert!(screen.contains("NAMESPACE"), "{screen}");
        assert!(position("legacy") < position("payments"), "most failures first:\n{screen}");
        crate::assert_screen!("compliance_cluster", &state);
    }

    #[test]
    fn a_partial_report_says_what_it_could_not_read() {
        let mut state = compliance();
        let Action::BenchFinished { request, kind, .. } = run(&mut state, '3') else { unreachable!() };
        let mut inventory = fixtures::inventory();
        inventory.unlisted.push(crate::cluster::inventory::Unlisted {
            resource: "secrets".into(),
            why: crate::cluster::inventory::Why::Forbidden,
            message: "secrets is forbidden".into(),
        });
        let done = crate::app::state::BenchDone::new(crate::bench::k8s::judge(&inventory), vec![]);
        update(&mut state, Action::BenchFinished { request, kind, result: Ok(done.into()) });
        let screen = crate::ui::snapshot::screen(&state);
        assert!(
            screen.contains("PARTIAL: not read, so the checks that needed them are incomplete: secrets"),
            "{screen}"
        );
    }

    #[test]
    fn errors_are_shown_in_the_pane() {
        let mut state = compliance();
        let Action::BenchFinished { request, kind, .. } = run(&mut state, '3') else { unreachable!() };
        let error = "no Kubernetes context: no kubeconfig ($KUBECONFIG, ~/.kube/config) and not running in a pod";
        update(&mut state, Action::BenchFinished { request, kind, result: Err(error.into()) });
        crate::assert_screen!("compliance_error", &state);
    }
}

//! The footer: key hints from the keymap (or the prompt being typed), and the latest toast.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::action::Command;
use crate::app::state::{AppState, Mode, PaneId};
use crate::app::update::complete;
use crate::config::Theme;
use crate::config::theme::Slot;

fn short_label(command: Command) -> &'static str {
    match command {
        Command::Help => "help",
        Command::CommandMode => "cmd",
        Command::FilterMode => "filter",
        Command::Enter => "open",
        Command::Back => "back",
        Command::NextPane => "next pane",
        Command::Quit => "quit",
        Command::Refresh => "refresh",
        Command::Findings => "findings",
        Command::SortSeverity => "by severity",
        Command::SortPackage => "by package",
        Command::SortFixed => "by fix",
        Command::BenchDocker => "docker",
        Command::BenchNode => "node",
        Command::BenchCluster => "cluster",
        Command::PrevReport => "prev report",
        Command::NextReport => "next report",
        Command::NextNamespace => "namespace",
        Command::StartAgent => "start agent",
        Command::DeployAgent => "deploy to cluster",
        Command::ExternalEditor => "$EDITOR",
        Command::NextProblem => "next problem",
        Command::NextMode => "next mode",
        Command::AcceptViolation => "accept violation",
        _ => command.name(),
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let toast = state.latest_toast();
    let toast_width =
        toast.map_or(0, |t| u16::try_from(t.text.chars().count() + 2).unwrap_or(u16::MAX)).min(area.width / 2);
    let [left, right] = Layout::horizontal([Constraint::Min(1), Constraint::Length(toast_width)]).areas(area);

    let line = match &state.mode {
        Mode::Filter { input } => Line::from(vec![
            Span::styled("/", theme.style(Slot::Prompt)),
            Span::styled(input.clone(), theme.style(Slot::Value)),
            Span::styled("▏", theme.style(Slot::Prompt)),
            Span::styled("  enter keep · esc clear", theme.style(Slot::Dim)),
        ]),
        Mode::Command { input } => {
            let rest = complete(input).and_then(|c| c.strip_prefix(input.trim_start())).unwrap_or_default();
            Line::from(vec![
                Span::styled(":", theme.style(Slot::Prompt)),
                Span::styled(input.clone(), theme.style(Slot::Value)),
                Span::styled(rest.to_string(), theme.style(Slot::Suggestion)),
                Span::styled("▏", theme.style(Slot::Prompt)),
                Span::styled("  tab complete · enter run · esc cancel", theme.style(Slot::Dim)),
            ])
        }
        Mode::Insert => Line::from(vec![
            Span::styled("-- INSERT --", theme.style(Slot::Prompt)),
            Span::styled("  esc stop typing · then d diff · a apply", theme.style(Slot::Dim)),
        ]),
        Mode::Normal | Mode::Help | Mode::Confirm(_) | Mode::Accept(_) => hints(state, theme),
    };
    frame.render_widget(Paragraph::new(line), left);
    if let Some(toast) = toast {
        let style = theme.style(if toast.is_error { Slot::ToastError } else { Slot::ToastInfo });
        frame.render_widget(Paragraph::new(Span::styled(format!(" {} ", toast.text), style)), right);
    }
}

fn hints(state: &AppState, theme: &Theme) -> Line<'static> {
    let mut commands = vec![Command::Help, Command::CommandMode];
    if state.list_view().is_some() {
        commands.extend([Command::FilterMode, Command::Enter]);
    }
    if state.nav.len() > 1 || state.list_view().is_some_and(|v| !v.filter.is_empty()) {
        commands.push(Command::Back);
    }
    commands.extend(match state.pane() {
        PaneId::Images => &[Command::Scan, Command::Findings][..],
        PaneId::Findings => &[Command::Accept, Command::SortSeverity, Command::SortPackage, Command::SortFixed][..],
        PaneId::FindingDetail => &[Command::Accept][..],
        PaneId::Compliance => {
            &[Command::BenchDocker, Command::BenchNode, Command::BenchCluster, Command::NextReport][..]
        }
        PaneId::Workloads => &[Command::NextNamespace][..],
        PaneId::Nodes => &[Command::StartAgent, Command::DeployAgent][..],
        PaneId::Behaviour => &[Command::NextMode][..],
        PaneId::BehaviourGroup => &[Command::NextMode, Command::AcceptViolation][..],
        PaneId::PolicyEditor | PaneId::PolicyDiff => &[
            Command::EditText,
            Command::DiffPolicy,
            Command::ApplyPolicy,
            Command::NextProblem,
            Command::ExternalEditor,
        ][..],
        _ => &[][..],
    });
    commands.extend([Command::NextPane, Command::Quit]);
    let mut spans = Vec::new();
    let mut push = |key: String, label: String| {
        spans.push(Span::styled(format!(" <{key}>"), theme.style(Slot::FooterKey)));
        spans.push(Span::styled(format!(" {label}"), theme.style(Slot::FooterDesc)));
    };
    for command in commands {
        if let Some(key) = state.keymap.hint(command) {
            push(key, short_label(command).to_string());
        }
    }
    for plugin in state.plugins.in_scope(state.pane().scope()) {
        push(plugin.shortcut.to_string(), plugin.description.to_lowercase());
    }
    Line::from(spans)
}

//! One container's security-relevant settings, from the engine's inspect.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::app::state::{AppState, Loadable};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::engine::ContainerDetail;
use crate::model::human_bytes;
use crate::ui::widgets::table::pane_block;

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(detail) = &state.detail else { return };
    let title = format!(" {} ({}) ", detail.container.name, detail.container.short_id());
    let lines = match &detail.detail {
        Loadable::Ready(d) => lines(d, theme),
        Loadable::Loading => vec![Line::from(Span::styled("inspecting…", theme.style(Slot::Dim)))],
        Loadable::Failed(err) => vec![Line::from(Span::styled(err.clone(), theme.style(Slot::StatusError)))],
    };
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(title, theme, true));
    frame.render_widget(paragraph, area);
}

fn state_line(d: &ContainerDetail) -> String {
    match (d.pid, d.started_at.is_empty()) {
        (0, true) => format!("{} (never started)", d.state),
        (0, false) => format!("{} (last started {})", d.state, d.started_at),
        (pid, _) => format!("{} (pid {pid}, since {})", d.state, d.started_at),
    }
}

fn lines<'a>(d: &ContainerDetail, theme: &Theme) -> Vec<Line<'a>> {
    let ok = theme.style(Slot::Value);
    let warn = theme.style(Slot::StatusWarn);
    let bad = theme.style(Slot::StatusError);
    let row = |label: &str, value: String, style: Style| {
        Line::from(vec![Span::styled(format!("{label:<16}"), theme.style(Slot::Label)), Span::styled(value, style)])
    };
    let host_ns = |mode: &str| if mode == "host" { warn } else { ok };
    let limit =
        |value: i64, show: fn(i64) -> String| if value > 0 { (show(value), ok) } else { ("none".to_string(), warn) };
    let (memory, memory_style) = limit(d.memory_limit, |v| human_bytes(u64::try_from(v).unwrap_or_default()));
    let (pids, pids_style) = limit(d.pids_limit, |v| v.to_string());
    let list = |items: &[String]| if items.is_empty() { "-".to_string() } else { items.join(", ") };
    let mut lines = vec![
        row("Id", d.id.clone(), ok),
        row("Image", format!("{} ({})", d.image, d.image_id), ok),
        row("State", state_line(d), ok),
        row("Command", d.command.clone(), ok),
        row("User", d.user.clone(), if d.user.starts_with("root") || d.user == "0" { warn } else { ok }),
        row("Privileged", d.privileged.to_string(), if d.privileged { bad } else { ok }),
        row("Read-only root", d.read_only_rootfs.to_string(), if d.read_only_rootfs { ok } else { warn }),
        row("Caps added", list(&d.cap_add), if d.cap_add.is_empty() { ok } else { warn }),
        row("Caps dropped", list(&d.cap_drop), ok),
        row(
            "Security opts",
            list(&d.security_opt),
            if d.security_opt.iter().any(|o| o.contains("unconfined")) { bad } else { ok },
        ),
        row("Network", d.network_mode.clone(), host_ns(&d.network_mode)),
        row("PID namespace", d.pid_mode.clone(), host_ns(&d.pid_mode)),
        row("IPC namespace", d.ipc_mode.clone(), host_ns(&d.ipc_mode)),
        row("Memory limit", memory, memory_style),
        row("PIDs limit", pids, pids_style),
        row("Env (names)", list(&d.env_names), ok),
        row("Mounts", if d.mounts.is_empty() { "-".into() } else { String::new() }, ok),
    ];
    for mount in &d.mounts {
        let style = if mount.contains(".sock") || mount.starts_with("/ ") { bad } else { ok };
        lines.push(row("", mount.clone(), style));
    }
    lines.push(row("Labels", if d.labels.is_empty() { "-".into() } else { String::new() }, ok));
    for (key, value) in &d.labels {
        lines.push(row("", format!("{key}={value}"), theme.style(Slot::Dim)));
    }
    lines
}

#[cfg(test)]
mod tests {
    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures;
    use crate::app::update::{run_command, update};

    #[test]
    fn container_detail_loaded() {
        let mut state = fixtures::state();
        run_command(&mut state, Command::NextPane);
        let effects = run_command(&mut state, Command::Enter);
        let Some(Effect::InspectContainer { request, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        crate::assert_screen!("container_detail_loading", &state);
        update(&mut state, Action::ContainerDetail { request, result: Ok(Box::new(fixtures::detail())) });
        crate::assert_screen!("container_detail", &state);
    }
}

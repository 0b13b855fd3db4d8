//! Overview of the local target: host facts, store, Kubernetes contexts, engines, containers.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row};

use crate::app::state::{AppState, Loadable};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::model::{human_age, human_bytes};
use crate::ui::panes::containers::container_row;
use crate::ui::widgets::table::{self, TableSpec, pane_block};

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let engine_rows = state.engines.ready().map_or(1, |e| e.len().max(1));
    let engines_height = u16::try_from(engine_rows).unwrap_or(8).min(8) + 3;
    let [top, engines, containers] =
        Layout::vertical([Constraint::Length(9), Constraint::Length(engines_height), Constraint::Min(4)]).areas(area);
    let [host, right] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
    render_host(frame, host, state, theme);
    render_store_and_kube(frame, right, state, theme);
    render_engines(frame, engines, state, theme);
    render_containers(frame, containers, state, theme);
}

fn kv<'a>(label: &str, value: String, theme: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{label:<10}"), theme.style(Slot::Label)),
        Span::styled(value, theme.style(Slot::Value)),
    ])
}

fn dim<'a>(text: String, theme: &Theme) -> Line<'a> {
    Line::from(Span::styled(text, theme.style(Slot::Dim)))
}

fn render_host(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let lines = match &state.host {
        Loadable::Ready(h) => vec![
            kv("OS", h.os_name(), theme),
            kv("Kernel", h.kernel.clone(), theme),
            kv("Host", h.hostname.clone(), theme),
            kv("CPU", format!("{} × {} ({})", h.cpus, h.cpu_model, h.arch), theme),
            kv(
                "Memory",
                format!("{} available of {}", human_bytes(h.memory_available), human_bytes(h.memory_total)),
                theme,
            ),
            kv("Uptime", human_age(h.uptime_secs), theme),
        ],
        Loadable::Loading => vec![dim("reading host facts…".into(), theme)],
        Loadable::Failed(err) => vec![Line::from(Span::styled(err.clone(), theme.style(Slot::StatusError)))],
    };
    frame.render_widget(Paragraph::new(lines).block(pane_block(" Local host ", theme, true)), area);
}

fn render_store_and_kube(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let size = state.store.size.map_or_else(|| "…".to_string(), human_bytes);
    let mut lines = vec![
        kv("Store", state.store.path.display().to_string(), theme),
        kv("", format!("{size}, schema {}", state.store.schema), theme),
        kv("Vuln DB", "not imported".into(), theme),
    ];
    match &state.contexts {
        Loadable::Ready(k) if k.contexts.is_empty() => {
            lines.push(kv("Kube", "no kubeconfig contexts (KUBECONFIG, ~/.kube/config)".into(), theme));
        }
        Loadable::Ready(k) => {
            let current = state.active_context().unwrap_or("none");
            lines.push(kv("Kube", format!("{} contexts, active: {current}", k.contexts.len()), theme));
            let files: Vec<String> = k.files.iter().map(|f| f.display().to_string()).collect();
            lines.push(kv("", files.join(", "), theme));
        }
        Loadable::Loading => lines.push(kv("Kube", "reading kubeconfig…".into(), theme)),
        Loadable::Failed(err) => {
            lines.push(Line::from(vec![
                Span::styled(format!("{:<10}", "Kube"), theme.style(Slot::Label)),
                Span::styled(err.clone(), theme.style(Slot::StatusError)),
            ]));
        }
    }
    let paragraph = Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false });
    frame.render_widget(paragraph.block(pane_block(" Store and targets ", theme, true)), area);
}

fn render_engines(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let block = pane_block(" Container engines ", theme, true);
    let probes = match &state.engines {
        Loadable::Ready(probes) if probes.is_empty() => {
            let searched: Vec<String> = state.engine_sockets_searched.iter().map(|p| p.display().to_string()).collect();
            let text = format!("no engine API socket found; looked at {}", searched.join(", "));
            frame.render_widget(
                Paragraph::new(dim(text, theme)).wrap(ratatui::widgets::Wrap { trim: true }).block(block),
                area,
            );
            return;
        }
        Loadable::Ready(probes) => probes,
        Loadable::Loading => {
            frame.render_widget(Paragraph::new(dim("probing engine sockets…".into(), theme)).block(block), area);
            return;
        }
        Loadable::Failed(err) => {
            frame.render_widget(Paragraph::new(err.clone()).block(block), area);
            return;
        }
    };
    let rows = probes
        .iter()
        .map(|probe| {
            let socket = probe.socket.display().to_string();
            match &probe.result {
                Ok(engine) => {
                    let running = engine.containers.iter().filter(|c| c.state == "running").count();
                    Row::new(vec![
                        socket,
                        engine.kind.as_str().to_string(),
                        engine.version.clone(),
                        engine.api_version.clone(),
                        format!(
                            "{running} running / {} total · {} images",
                            engine.containers.len(),
                            engine.images.len()
                        ),
                    ])
                    .style(theme.style(Slot::TableRow))
                }
                Err(err) => Row::new(vec![socket, "?".into(), String::new(), String::new(), err.clone()])
                    .style(theme.style(Slot::StatusError)),
            }
        })
        .collect();
    let spec = TableSpec {
        header: &["SOCKET", "ENGINE", "VERSION", "API", "CONTAINERS"],
        widths: &[
            Constraint::Length(34),
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Min(20),
        ],
        rows,
        selected: None,
    };
    table::render(frame, area, block, spec, theme);
}

fn render_containers(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let title = format!(" Containers ({}) — tab or :co to browse ", state.containers.len());
    let rows = state.containers.iter().map(|c| container_row(c, theme)).collect();
    let spec = TableSpec { header: super::containers::HEADER, widths: super::containers::WIDTHS, rows, selected: None };
    table::render(frame, area, pane_block(title, theme, false), spec, theme);
}

#[cfg(test)]
mod tests {
    use crate::app::fixtures;
    use crate::app::state::Loadable;

    #[test]
    fn overview_ready() {
        crate::assert_screen!("overview_ready", &fixtures::state());
    }

    #[test]
    fn overview_loading() {
        crate::assert_screen!("overview_loading", &fixtures::loading_state());
    }

    #[test]
    fn overview_without_engines_lists_the_sockets_it_tried() {
        let mut state = fixtures::state();
        state.engines = Loadable::Ready(vec![]);
        state.containers.clear();
        crate::assert_screen!("overview_no_engines", &state);
    }
}

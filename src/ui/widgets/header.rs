//! The two header lines: target, store, DB and agent state; then the pane tabs.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::state::{AppState, Loadable, PaneId, TOP_PANES};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::model::human_bytes;

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let base = theme.style(Slot::Header);
    let accent = theme.style(Slot::HeaderAccent);
    let sep = || Span::styled(" │ ", base);
    let host = match &state.host {
        Loadable::Ready(facts) => facts.hostname.clone(),
        Loadable::Loading => "…".into(),
        Loadable::Failed(_) => "?".into(),
    };
    let store_size = state.store.size.map_or_else(|| "…".to_string(), human_bytes);
    let line = Line::from(vec![
        Span::styled(format!(" picket {}", state.version), accent),
        sep(),
        Span::styled("local: ", base),
        Span::styled(host, accent),
        sep(),
        Span::styled("ctx: ", base),
        Span::styled(state.active_context().unwrap_or("none").to_string(), accent),
        sep(),
        Span::styled(format!("store: {store_size}"), base),
        sep(),
        Span::styled(format!("vuln db: {}", vulndb_text(state)), base),
        sep(),
        agent_span(state, theme),
    ])
    .style(base);

    let mut tabs = vec![Span::styled(" ", base)];
    let top = state.nav.first().copied().unwrap_or(PaneId::Overview);
    // A space between tabs when every tab fits with it, else none (narrow terminals).
    let wide: usize = TOP_PANES.iter().map(|p| p.title().chars().count() + 3).sum::<usize>() + 1;
    let gap = wide <= usize::from(area.width);
    for pane in TOP_PANES {
        let style = if pane == top { theme.style(Slot::TableSelected) } else { theme.style(Slot::Dim) };
        tabs.push(Span::styled(format!(" {} ", pane.title()), style));
        if gap {
            tabs.push(Span::raw(" "));
        }
    }
    if state.pane() == PaneId::ContainerDetail
        && let Some(detail) = &state.detail
    {
        tabs.push(Span::styled(format!("› {}", detail.container.name), theme.style(Slot::PaneTitle)));
    }
    frame.render_widget(Paragraph::new(vec![line, Line::from(tabs)]), area);
}

fn vulndb_text(state: &AppState) -> String {
    match &state.vulndb {
        Loadable::Loading => "…".into(),
        Loadable::Failed(_) => "unreadable".into(),
        Loadable::Ready(summary) if summary.sources == 0 => "empty".into(),
        Loadable::Ready(summary) => {
            let age = summary.oldest_age.map(|a| format!(", {} old", crate::model::human_age(a))).unwrap_or_default();
            let stale = summary.oldest_age.is_some_and(|a| a > crate::vulndb::db::STALE_AFTER_DAYS as u64 * 86_400);
            format!("{} advisories{age}{}", summary.advisories, if stale { " (stale)" } else { "" })
        }
    }
}

/// The local agent at a glance: what it enforces and its event rate, or that there is none.
fn agent_span(state: &AppState, theme: &Theme) -> Span<'static> {
    use crate::app::state::AgentLink;
    let base = theme.style(Slot::Header);
    let Some(nodes) = &state.nodes else { return Span::styled("agent: …", base) };
    match (&nodes.link, &nodes.agent) {
        (AgentLink::Connected, Some(agent)) => {
            let mode = match &agent.stats.enforcement {
                Some(e) if e.error.is_some() => "policy error".to_string(),
                Some(e) => format!("protect {} monitor {}", e.protect, e.monitor),
                None => "sensing".to_string(),
            };
            let lost =
                if agent.stats.dropped > 0 { format!(", {} dropped", agent.stats.dropped) } else { String::new() };
            let style = if agent.stats.dropped > 0 { theme.style(Slot::StatusWarn) } else { base };
            Span::styled(format!("agent: {mode} {}/s{lost}", agent.rate_tenths / 10), style)
        }
        (AgentLink::Connected, None) | (AgentLink::Connecting, _) => Span::styled("agent: connecting", base),
        (AgentLink::Down(_), _) => Span::styled("agent: not running", theme.style(Slot::StatusWarn)),
    }
}

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
    let width = usize::from(area.width);
    // A space between tabs when every tab fits with it, else none; when even that does not fit
    // (narrow terminals), the tabs around the current one, with ‹ › where some are hidden.
    let tab_width = |p: &PaneId| p.title().chars().count() + 2;
    let wide: usize = TOP_PANES.iter().map(|p| tab_width(p) + 1).sum::<usize>() + 1;
    let gap = wide <= width;
    let narrow: usize = TOP_PANES.iter().map(tab_width).sum::<usize>() + 1;
    let (first, last) = if narrow <= width {
        (0, TOP_PANES.len())
    } else {
        let room = width.saturating_sub(3);
        let current = TOP_PANES.iter().position(|p| *p == top).unwrap_or(0);
        let mut first = 0;
        while first < current && TOP_PANES[first..=current].iter().map(tab_width).sum::<usize>() > room {
            first += 1;
        }
        let mut last = first;
        let mut used = 0;
        while last < TOP_PANES.len() && used + tab_width(&TOP_PANES[last]) <= room {
            used += tab_width(&TOP_PANES[last]);
            last += 1;
        }
        (first, last.max(first + 1).min(TOP_PANES.len()))
    };
    if first > 0 {
        tabs.push(Span::styled("‹", theme.style(Slot::Dim)));
    }
    for pane in &TOP_PANES[first..last] {
        let style = if *pane == top { theme.style(Slot::TableSelected) } else { theme.style(Slot::Dim) };
        tabs.push(Span::styled(format!(" {} ", pane.title()), style));
        if gap {
            tabs.push(Span::raw(" "));
        }
    }
    if last < TOP_PANES.len() {
        tabs.push(Span::styled("›", theme.style(Slot::Dim)));
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

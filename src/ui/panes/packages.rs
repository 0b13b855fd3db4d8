//! The packages of one scanned image, grouped by ecosystem and layer.

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row};

use crate::app::state::{AppState, Loadable, PackagesState};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

fn summary<'a>(packages: &PackagesState, theme: &Theme) -> Line<'a> {
    let mut by_ecosystem: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_layer: BTreeMap<Option<usize>, usize> = BTreeMap::new();
    for (package, layer) in packages.rows() {
        *by_ecosystem.entry(package.ecosystem.osv_name()).or_default() += 1;
        *by_layer.entry(layer).or_default() += 1;
    }
    let ecosystems: Vec<String> = by_ecosystem.iter().map(|(e, n)| format!("{e} {n}")).collect();
    let layers: Vec<String> =
        by_layer.iter().map(|(l, n)| l.map_or_else(|| format!("dir {n}"), |l| format!("layer {l}: {n}"))).collect();
    let distro = match &packages.sbom {
        Loadable::Ready(sbom) => sbom.distro.as_ref().map(|d| format!("{}  │  ", d.pretty_name)).unwrap_or_default(),
        _ => String::new(),
    };
    Line::from(vec![
        Span::styled(format!(" {distro}"), theme.style(Slot::Value)),
        Span::styled(ecosystems.join(" · "), theme.style(Slot::Label)),
        Span::styled("  │  ", theme.style(Slot::Dim)),
        Span::styled(layers.join(" · "), theme.style(Slot::Dim)),
    ])
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(packages) = &state.packages else { return };
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    match &packages.sbom {
        Loadable::Loading => {
            frame.render_widget(Paragraph::new(Span::styled(" loading the SBOM…", theme.style(Slot::Dim))), head);
            return;
        }
        Loadable::Failed(err) => {
            frame.render_widget(Paragraph::new(Span::styled(err.clone(), theme.style(Slot::StatusError))), head);
            return;
        }
        Loadable::Ready(_) => frame.render_widget(Paragraph::new(summary(packages, theme)), head),
    }
    let all = packages.rows();
    let view = &packages.view;
    let title =
        format!(" Packages of {} [{}/{}]{} ", packages.title, view.visible.len(), all.len(), filter_badge(view));
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| all.get(i))
        .map(|(p, layer)| {
            Row::new(vec![
                p.ecosystem.osv_name().to_string(),
                p.name.clone(),
                p.version.clone(),
                p.source.as_ref().filter(|s| s.name != p.name).map(|s| s.name.clone()).unwrap_or_default(),
                layer.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                p.locations.first().map(|l| l.path.clone()).unwrap_or_default(),
            ])
        })
        .collect();
    let spec = TableSpec {
        header: &["ECOSYSTEM", "NAME", "VERSION", "SOURCE", "LAYER", "PATH"],
        widths: &[
            Constraint::Length(9),
            Constraint::Length(26),
            Constraint::Length(22),
            Constraint::Length(14),
            Constraint::Length(5),
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

    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures;
    use crate::app::state::PaneId;
    use crate::app::update::{run_command, update};

    #[test]
    fn packages_of_a_scanned_image() {
        let mut state = fixtures::state();
        run_command(&mut state, Command::NextPane);
        run_command(&mut state, Command::NextPane);
        run_command(&mut state, Command::Down);
        let effects = run_command(&mut state, Command::Enter);
        let Some(Effect::LoadSbom { request, key }) = effects.first().cloned() else { panic!("{effects:?}") };
        assert_eq!(key, "sha256:1111111111111111111111111111111111111111111111111111111111111111");
        assert_eq!(state.pane(), PaneId::Packages);
        update(&mut state, Action::SbomLoaded { request, result: Ok(Arc::new(crate::report::fixtures::sbom())) });
        crate::assert_screen!("packages", &state);
        run_command(&mut state, Command::Back);
        assert_eq!(state.pane(), PaneId::Images);
        assert!(state.packages.is_none());
    }
}

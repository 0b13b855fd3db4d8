//! Images of the local engines and earlier scans; `s` scans with live progress, `enter` opens
//! the packages of a scanned image.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Text;
use ratatui::widgets::Row;

use crate::app::state::{AppState, ImageRow, Loadable, ScanState};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::model::human_bytes;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

fn scan_status(scan: &ScanState) -> String {
    if scan.cataloging {
        return "cataloging…".into();
    }
    if scan.layers_total == 0 {
        return match scan.pulled {
            Some((bytes, 0)) => format!("reading image: {}", human_bytes(bytes)),
            Some((bytes, of)) => format!("reading image: {} of {}", human_bytes(bytes), human_bytes(of)),
            None => "asking the engine…".into(),
        };
    }
    format!(
        "scanning layer {}/{} ({})",
        scan.layers_done.min(scan.layers_total),
        scan.layers_total,
        human_bytes(scan.expanded_bytes)
    )
}

fn row<'a>(image: &ImageRow, state: &AppState, theme: &Theme) -> Row<'a> {
    let source = match (&image.engine, &image.stored) {
        (Some((kind, _)), _) => kind.as_str().to_string(),
        (None, Some(stored)) => stored.kind.clone(),
        (None, None) => String::new(),
    };
    let (status, style) = match (state.scans.get(&image.name), &image.stored) {
        (Some(scan), _) => (scan_status(scan), theme.style(Slot::StatusWarn)),
        (None, Some(stored)) => {
            (stored.distro.clone().unwrap_or_else(|| "scanned".into()), theme.style(Slot::StatusOk))
        }
        (None, None) => ("not scanned".into(), theme.style(Slot::Dim)),
    };
    Row::new(vec![
        Text::from(image.name.clone()),
        Text::from(short_id(&image.id).to_string()),
        Text::from(image.size.map(|s| human_bytes(u64::try_from(s).unwrap_or_default())).unwrap_or_default()),
        Text::from(source),
        Text::from(image.stored.as_ref().map(|s| s.packages.to_string()).unwrap_or_default()),
        Text::styled(status, style),
    ])
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let view = &state.images_view;
    let loading = matches!(state.engines, Loadable::Loading) || matches!(state.stored, Loadable::Loading);
    let title = format!(
        " Images [{}/{}]{}{} ",
        view.visible.len(),
        state.images.len(),
        filter_badge(view),
        if loading { " loading…" } else { "" }
    );
    let rows = view.visible.iter().filter_map(|&i| state.images.get(i)).map(|image| row(image, state, theme)).collect();
    let spec = TableSpec {
        header: &["NAME", "ID", "SIZE", "SOURCE", "PACKAGES", "STATUS"],
        widths: &[
            Constraint::Fill(1),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Length(14),
            Constraint::Length(8),
            Constraint::Length(34),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, area, pane_block(title, theme, true), spec, theme);
}

#[cfg(test)]
mod tests {
    use crate::app::action::{Action, Command};
    use crate::app::fixtures;
    use crate::app::state::PaneId;
    use crate::app::update::{run_command, update};
    use crate::scan::Progress;

    #[test]
    fn images_with_a_scan_in_progress() {
        let mut state = fixtures::state();
        run_command(&mut state, Command::NextPane);
        run_command(&mut state, Command::NextPane);
        assert_eq!(state.pane(), PaneId::Images);
        let effects = run_command(&mut state, Command::Scan);
        let Some(crate::app::action::Effect::ScanImage { request, name, .. }) = effects.first().cloned() else {
            panic!("{effects:?}")
        };
        assert_eq!(name, "localhost/testbed/debian:bookworm");
        update(
            &mut state,
            Action::ScanProgress { request, progress: Progress::Pulled { bytes: 40_000_000, of: 127_000_000 } },
        );
        assert_eq!(super::scan_status(&state.scans[&name]), "reading image: 38.1 MiB of 121.1 MiB");
        update(&mut state, Action::ScanProgress { request, progress: Progress::Opened { layers: 2 } });
        update(
            &mut state,
            Action::ScanProgress {
                request,
                progress: Progress::Layer { index: 0, of: 2, expanded_bytes: 130_000_000 },
            },
        );
        crate::assert_screen!("images_scanning", &state);
    }
}
